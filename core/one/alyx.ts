// Alyx REST client: token auth, JSON get/post, pagination, retries with back-off, timeouts (docs/method.md §2.1).
import type { Logger } from 'pino';
import { silentLogger } from '../log.ts';
import { OneError, displayUrl } from './errors.ts';
import { backoffMs, describeTransportError, isRetryableStatus, isTransientError, parseRetryAfter, sleep, type RetryPolicy } from './retry.ts';
import { TokenStore } from './token-store.ts';

export type QueryValue = string | number | boolean | null | undefined | (string | number)[];
export type Query = Record<string, QueryValue>;

export interface AlyxClientOptions extends RetryPolicy {
  baseUrl: string;
  username: string;
  password: string;
  tokenFile: string;
  timeoutMs: number;
  logger?: Logger;
  /** Aborts every request in flight and every back-off wait. */
  signal?: AbortSignal;
}

export interface Paginated<T> {
  count: number;
  next: string | null;
  previous?: string | null;
  results: T[];
}

export function isPaginated(x: unknown): x is Paginated<unknown> {
  return !!x && typeof x === 'object' && Array.isArray((x as Paginated<unknown>).results) && 'count' in x && 'next' in x;
}

/** Alyx (Django REST framework) reads lists as comma-separated values and booleans as True/False. */
export function buildQuery(query: Query = {}): string {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v)) sp.set(k, v.join(','));
    else if (typeof v === 'boolean') sp.set(k, v ? 'True' : 'False');
    else sp.set(k, String(v));
  }
  const s = sp.toString();
  return s ? `?${s}` : '';
}

export class AlyxClient {
  readonly baseUrl: string;
  readonly username: string;
  readonly #password: string;
  #token: string | undefined;
  #authInFlight: Promise<void> | undefined;
  readonly #store: TokenStore;
  readonly #opts: AlyxClientOptions;
  readonly #log: Logger;
  /** Requests sent, retries included (for tests and reports). */
  requestCount = 0;

  constructor(opts: AlyxClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.username = opts.username;
    this.#password = opts.password;
    this.#store = new TokenStore(opts.tokenFile);
    this.#opts = opts;
    this.#log = (opts.logger ?? silentLogger).child({ component: 'alyx' });
  }

  get isLoggedIn(): boolean {
    return this.#token !== undefined;
  }

  /**
   * Gets a token: the cached one unless `force`, else `POST /auth-token` with the username and
   * password (Alyx answers `{"token": ...}`), then caches it in the 0600 token file.
   */
  async authenticate(force = false): Promise<void> {
    if (this.#authInFlight) return this.#authInFlight;
    this.#authInFlight = this.#authenticate(force).finally(() => {
      this.#authInFlight = undefined;
    });
    return this.#authInFlight;
  }

  async #authenticate(force: boolean): Promise<void> {
    if (!force) {
      const cached = await this.#store.get(this.baseUrl, this.username);
      if (cached) {
        this.#token = cached;
        this.#log.debug({ user: this.username }, 'using cached Alyx token');
        return;
      }
    }
    this.#token = undefined;
    if (!this.#password) {
      throw new OneError('auth', `no password for Alyx user '${this.username}' at ${this.baseUrl}: set ONE_PASSWORD or "password" in the ONE config file`);
    }
    const rep = await this.#request<{ token?: unknown }>('POST', '/auth-token', {
      body: { username: this.username, password: this.#password },
      auth: false,
      authFailureIsFinal: true,
    });
    if (!rep || typeof rep.token !== 'string' || !rep.token) {
      throw new OneError('auth', `Alyx at ${this.baseUrl} answered /auth-token without a token`);
    }
    this.#token = rep.token;
    await this.#store.set(this.baseUrl, this.username, rep.token);
    this.#log.info({ user: this.username, server: this.baseUrl }, 'logged in to Alyx');
  }

  /** Forgets the token here and in the token file. */
  async logout(): Promise<void> {
    this.#token = undefined;
    await this.#store.set(this.baseUrl, this.username, undefined);
  }

  async get<T = unknown>(path: string, query?: Query): Promise<T> {
    return this.#request<T>('GET', path + buildQuery(query));
  }

  async post<T = unknown>(path: string, body: unknown): Promise<T> {
    return this.#request<T>('POST', path, { body });
  }

  /**
   * Every record of a list endpoint: follows `next` until the last page. `pageSize` is sent as
   * Alyx's `limit`; `maxResults` stops early. A plain array answer is returned as it is.
   */
  async list<T = unknown>(path: string, query: Query = {}, opts: { pageSize?: number; maxResults?: number } = {}): Promise<T[]> {
    const q: Query = { ...query };
    if (opts.pageSize) q.limit = opts.pageSize;
    let page = await this.get<unknown>(path, q);
    if (Array.isArray(page)) return opts.maxResults === undefined ? (page as T[]) : (page as T[]).slice(0, opts.maxResults);
    if (!isPaginated(page)) throw new OneError('http', `GET ${path} on ${this.baseUrl} did not return a list`);
    const out: T[] = [...(page.results as T[])];
    const limit = opts.maxResults ?? Infinity;
    const seen = new Set<string>();
    while (page.next && out.length < limit) {
      const next = this.#rebase(page.next);
      // A server that points back at a page already read would loop forever.
      if (seen.has(next)) throw new OneError('http', `GET ${path} on ${this.baseUrl}: pagination repeats ${displayUrl(page.next)}`);
      seen.add(next);
      page = await this.#request<unknown>('GET', next);
      if (!isPaginated(page)) throw new OneError('http', `GET ${displayUrl(next)} did not return a page of results`);
      if (page.results.length === 0) break;
      out.push(...(page.results as T[]));
    }
    if (out.length > limit) out.length = limit;
    return out;
  }

  /** `next` links carry the server's own idea of its address; keep ours (proxies, http vs https). */
  #rebase(next: string): string {
    if (next.startsWith(this.baseUrl)) return next.slice(this.baseUrl.length) || '/';
    try {
      const u = new URL(next);
      const basePath = new URL(this.baseUrl).pathname.replace(/\/+$/, '');
      const p = u.pathname.startsWith(basePath) ? u.pathname.slice(basePath.length) : u.pathname;
      return p + u.search;
    } catch {
      return next;
    }
  }

  #scrub(text: string): string {
    let out = text;
    for (const secret of [this.#password, this.#token]) if (secret && secret.length >= 3) out = out.split(secret).join('[redacted]');
    return out;
  }

  async #request<T>(
    method: string,
    pathAndQuery: string,
    o: { body?: unknown; auth?: boolean; authFailureIsFinal?: boolean } = {},
  ): Promise<T> {
    const auth = o.auth ?? true;
    const url = this.baseUrl + (pathAndQuery.startsWith('/') ? pathAndQuery : `/${pathAndQuery}`);
    const shown = displayUrl(url);
    let reauthenticated = false;
    for (let attempt = 0; ; attempt++) {
      if (auth && !this.#token) await this.authenticate();
      const rep = await this.#send(method, url, shown, o.body, auth, attempt);
      if (rep === 'retry') continue;
      const { status, text } = rep;
      if (status >= 200 && status < 300) return parseJsonAnswer<T>(method, shown, status, text);
      // An expired token: Alyx says 403 {"detail":"Invalid token."}; other servers say 401. Log in again, once.
      const tokenRejected = status === 401 || (status === 403 && /Invalid token/i.test(text));
      if (auth && tokenRejected && !reauthenticated) {
        reauthenticated = true;
        this.#log.info({ url: shown, status }, 'Alyx token rejected; logging in again');
        this.#token = undefined;
        await this.authenticate(true);
        attempt--;
        continue;
      }
      await this.#refused({ method, shown, status, text, retryAfter: rep.retryAfter, attempt, auth, authFailureIsFinal: o.authFailureIsFinal, tokenRejected });
    }
  }

  /** Sends one request; 'retry' after waiting out a transient transport failure, which otherwise throws. */
  async #send(
    method: string,
    url: string,
    shown: string,
    body: unknown,
    auth: boolean,
    attempt: number,
  ): Promise<{ status: number; text: string; retryAfter: string | null } | 'retry'> {
    const p = this.#opts;
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth && this.#token) headers.Authorization = `Token ${this.#token}`;
    const signal = p.signal ? AbortSignal.any([p.signal, AbortSignal.timeout(p.timeoutMs)]) : AbortSignal.timeout(p.timeoutMs);
    const started = Date.now();
    let status: number;
    let text: string;
    let retryAfter: string | null = null;
    try {
      this.requestCount++;
      const res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        redirect: 'follow',
      });
      status = res.status;
      retryAfter = res.headers.get('retry-after');
      text = await res.text();
    } catch (e) {
      if (p.signal?.aborted) throw p.signal.reason ?? e;
      const what = (e as Error)?.name === 'TimeoutError' ? `timed out after ${p.timeoutMs} ms` : describeTransportError(e);
      if (isTransientError(e) && attempt < p.retries) {
        const delay = backoffMs(attempt, p);
        this.#log.warn({ method, url: shown, error: what, attempt: attempt + 1, delayMs: delay }, 'Alyx request failed; retrying');
        await sleep(delay, p.signal);
        return 'retry';
      }
      throw new OneError((e as Error)?.name === 'TimeoutError' ? 'timeout' : 'network', `${method} ${shown} failed after ${attempt + 1} attempt(s): ${what}`, { cause: e });
    }
    this.#log.debug({ method, url: shown, status, attempt: attempt + 1, ms: Date.now() - started }, 'Alyx request');
    return { status, text, retryAfter };
  }

  /** A non-2xx answer not cured by logging in again: waits before a retry when the status allows one, else throws the fitting error. */
  async #refused(r: {
    method: string;
    shown: string;
    status: number;
    text: string;
    retryAfter: string | null;
    attempt: number;
    auth: boolean;
    authFailureIsFinal: boolean | undefined;
    tokenRejected: boolean;
  }): Promise<void> {
    const { method, shown, status, attempt } = r;
    const p = this.#opts;
    const detail = this.#scrub(errorDetail(r.text));
    if (isRetryableStatus(status) && attempt < p.retries) {
      const asked = status === 429 || status === 503 ? parseRetryAfter(r.retryAfter) : undefined;
      if (asked !== undefined && asked > p.maxRetryAfterMs) {
        throw new OneError('http', `${method} ${shown}: server asks to wait ${Math.round(asked / 1000)} s (HTTP ${status}), longer than the ${Math.round(p.maxRetryAfterMs / 1000)} s allowed`, { status });
      }
      const delay = asked ?? backoffMs(attempt, p);
      this.#log.warn({ method, url: shown, status, attempt: attempt + 1, delayMs: delay }, 'Alyx request refused; retrying');
      await sleep(delay, p.signal);
      return;
    }
    if (!r.auth && r.authFailureIsFinal && (status === 400 || status === 401 || status === 403)) {
      throw new OneError('auth', `Alyx login failed for user '${this.username}' at ${this.baseUrl} (HTTP ${status}${detail ? `: ${detail}` : ''})`, { status });
    }
    if (r.auth && r.tokenRejected) {
      throw new OneError('auth', `${method} ${shown}: Alyx rejected the new token for user '${this.username}' (HTTP ${status}${detail ? `: ${detail}` : ''})`, { status });
    }
    throw new OneError(status === 404 ? 'not-found' : 'http', `${method} ${shown} failed: HTTP ${status}${detail ? ` ${detail}` : ''}${attempt ? ` (after ${attempt + 1} attempts)` : ''}`, { status });
  }
}

/** A 2xx answer's JSON body; empty (or 204) is undefined. */
function parseJsonAnswer<T>(method: string, shown: string, status: number, text: string): T {
  if (status === 204 || text.trim() === '') return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new OneError('http', `${method} ${shown} answered HTTP ${status} with a body that is not JSON`, { status });
  }
}

/** Django REST framework puts the reason in `detail`; fall back to the first 200 characters. */
function errorDetail(text: string): string {
  try {
    const j = JSON.parse(text);
    if (j && typeof j === 'object') {
      if (typeof j.detail === 'string') return j.detail;
      return JSON.stringify(j).slice(0, 200);
    }
  } catch {
    /* not JSON */
  }
  return text.replace(/\s+/g, ' ').trim().slice(0, 200);
}
