// ONE client settings: built-in defaults < JSON config file < environment < explicit options (docs/method.md §2.1).
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_DEADLINE_MS } from './download.ts';
import { OneError, redactUrlCredentials } from './errors.ts';

export type OneMode = 'remote' | 'local';

const RESOLVED = Symbol.for('mtm.one.resolvedConfig');

/** True for what resolveOneConfig returned (as opposed to options still to resolve). */
export function isResolvedConfig(x: unknown): x is OneConfig {
  return !!x && typeof x === 'object' && (x as Record<symbol, unknown>)[RESOLVED] === true;
}

/** The public IBL database and the login IBL publishes for it (ONE's README, one/params.py). */
export const PUBLIC_BASE_URL = 'https://openalyx.internationalbrainlab.org';
export const PUBLIC_USERNAME = 'intbrainlab';
export const PUBLIC_PASSWORD = 'international';

export interface OneConfig {
  baseUrl: string;
  username: string;
  /** Not enumerable: JSON.stringify and loggers never see it. */
  readonly password: string;
  cacheDir: string;
  mode: OneMode;
  parallelDownloads: number;
  retries: number;
  /** First back-off delay; later ones double, with jitter. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Longest Retry-After we agree to wait; a longer one fails the request. */
  maxRetryAfterMs: number;
  /** Whole REST request, and the longest silence while a file streams. */
  timeoutMs: number;
  /** Longest time one file download may take, retries included (a trickling server ends there). */
  downloadDeadlineMs: number;
  /** Where the Alyx token is kept (mode 0600). */
  tokenFile: string;
  /** The config file that was read, if any. */
  configFile?: string;
}

export interface OneOptions {
  baseUrl?: string;
  username?: string;
  password?: string;
  cacheDir?: string;
  mode?: OneMode;
  parallelDownloads?: number;
  retries?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  maxRetryAfterMs?: number;
  timeoutMs?: number;
  downloadDeadlineMs?: number;
  tokenFile?: string;
  /** A JSON config file; default `~/.mtm/one.json` when it exists. */
  configFile?: string;
  /** For tests: stand-ins for process.env and the home folder. */
  env?: Record<string, string | undefined>;
  homeDir?: string;
}

const FileSchema = z
  .object({
    baseUrl: z.string().url(),
    username: z.string().min(1),
    password: z.string(),
    cacheDir: z.string().min(1),
    mode: z.enum(['remote', 'local']),
    parallelDownloads: z.number().int().min(1).max(64),
    retries: z.number().int().min(0).max(20),
    timeoutMs: z.number().int().positive(),
    downloadDeadlineMs: z.number().int().positive(),
  })
  .partial()
  .strict();

/** ONE's cache key for a server: the host (and path) of the URL, lower case, filename-safe. */
export function hostKey(url: string): string {
  return url
    .replace(/^https?:\/\//, '')
    .replace(/\/+$/, '')
    .toLowerCase()
    .replace(/[^.\w\s-]/g, '_')
    .replace(/[-\s]+/g, '-');
}

function readConfigFile(path: string): z.infer<typeof FileSchema> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new OneError('config', `cannot read ONE config file ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new OneError('config', `ONE config file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  const parsed = FileSchema.safeParse(json);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const field = i.path.length ? i.path.join('.') : '(top level)';
      // Never echo a value: the field could be the password.
      return `  ${field}: ${i.code === 'unrecognized_keys' ? `unknown field(s) ${(i as { keys: string[] }).keys.join(', ')}` : i.message}`;
    });
    throw new OneError('config', `ONE config file ${path} has bad fields:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** Resolves every setting; the result holds the password as a hidden property. */
export function resolveOneConfig(opts: OneOptions = {}): OneConfig {
  const env = opts.env ?? process.env;
  const home = opts.homeDir ?? homedir();
  const defaultFile = join(home, '.mtm', 'one.json');
  const configFile = opts.configFile ? resolve(opts.configFile) : exists(defaultFile) ? defaultFile : undefined;
  const file = configFile ? readConfigFile(configFile) : {};
  const pick = <T>(...vals: (T | undefined)[]): T | undefined => {
    for (let i = vals.length - 1; i >= 0; i--) if (vals[i] !== undefined && vals[i] !== '') return vals[i];
    return undefined;
  };
  const nonEmpty = (s: string | undefined) => (s === '' ? undefined : s);
  let baseUrl = (pick(PUBLIC_BASE_URL, file.baseUrl, env.ONE_BASE_URL, nonEmpty(opts.baseUrl)) as string).replace(/\/+$/, '');
  // Credentials written into the URL (http://user:pass@host) are taken out of it: the URL appears
  // in messages and logs, and fetch refuses such URLs (echoing them) anyway. They serve as the
  // login unless a username / password is given on its own.
  let urlUser: string | undefined;
  let urlPassword: string | undefined;
  try {
    const u = new URL(baseUrl);
    if (u.username || u.password) {
      urlUser = decodeURIComponent(u.username) || undefined;
      urlPassword = decodeURIComponent(u.password) || undefined;
      u.username = '';
      u.password = '';
      baseUrl = u.toString().replace(/\/+$/, '');
    }
  } catch {
    throw new OneError('config', `ONE base URL is not a URL: ${JSON.stringify(redactUrlCredentials(baseUrl))}`);
  }
  const username = pick(PUBLIC_USERNAME, file.username, env.ONE_USERNAME, urlUser, nonEmpty(opts.username)) as string;
  // The public password only goes with the public login: a user who set their own name must set its password too.
  const defaultPassword = username === PUBLIC_USERNAME ? PUBLIC_PASSWORD : '';
  const password = pick(defaultPassword, file.password, env.ONE_PASSWORD, urlPassword, opts.password) ?? '';
  const defaultCache = join(home, 'Downloads', 'ONE', hostKey(baseUrl));
  let cacheDir = pick(defaultCache, file.cacheDir, env.ONE_CACHE_DIR, nonEmpty(opts.cacheDir)) as string;
  if (cacheDir.startsWith('~/')) cacheDir = join(home, cacheDir.slice(2));
  cacheDir = isAbsolute(cacheDir) ? cacheDir : resolve(cacheDir);
  const mode = pick<OneMode>('remote', file.mode, opts.mode) as OneMode;
  if (mode !== 'remote' && mode !== 'local') throw new OneError('config', `ONE mode must be 'remote' or 'local', got '${mode}'`);
  const parallelDownloads = pick(4, file.parallelDownloads, opts.parallelDownloads) as number;
  if (!Number.isInteger(parallelDownloads) || parallelDownloads < 1) throw new OneError('config', `parallelDownloads must be a whole number >= 1, got ${parallelDownloads}`);
  const retries = pick(5, file.retries, opts.retries) as number;
  if (!Number.isInteger(retries) || retries < 0) throw new OneError('config', `retries must be a whole number >= 0, got ${retries}`);
  const cfg = {
    baseUrl,
    username,
    cacheDir,
    mode,
    parallelDownloads,
    retries,
    retryBaseMs: opts.retryBaseMs ?? 500,
    retryMaxMs: opts.retryMaxMs ?? 30_000,
    maxRetryAfterMs: opts.maxRetryAfterMs ?? 120_000,
    timeoutMs: pick(60_000, file.timeoutMs, opts.timeoutMs) as number,
    downloadDeadlineMs: pick(DEFAULT_DEADLINE_MS, file.downloadDeadlineMs, opts.downloadDeadlineMs) as number,
    tokenFile: opts.tokenFile ?? join(cacheDir, '.mtm-token.json'),
    configFile,
  } as OneConfig;
  Object.defineProperty(cfg, 'password', { value: password, enumerable: false, writable: false });
  Object.defineProperty(cfg, RESOLVED, { value: true, enumerable: false });
  return cfg;
}

function exists(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Settings safe to print or log (no password). */
export function describeConfig(cfg: OneConfig): Record<string, unknown> {
  return { ...cfg, password: cfg.password ? '[set]' : '[empty]' };
}
