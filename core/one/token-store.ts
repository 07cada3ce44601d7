// The Alyx token on disk: one JSON file, mode 0600, keyed by server and user (docs/method.md §2.1).
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

type TokenFile = Record<string, Record<string, string>>;

export class TokenStore {
  constructor(readonly path: string) {}

  private async readAll(): Promise<TokenFile> {
    try {
      const json = JSON.parse(await readFile(this.path, 'utf8'));
      return json && typeof json === 'object' ? (json as TokenFile) : {};
    } catch {
      // A missing or damaged token file only costs one login.
      return {};
    }
  }

  async get(baseUrl: string, username: string): Promise<string | undefined> {
    const all = await this.readAll();
    const t = all[baseUrl]?.[username];
    return typeof t === 'string' && t ? t : undefined;
  }

  async set(baseUrl: string, username: string, token: string | undefined): Promise<void> {
    const all = await this.readAll();
    const forServer = { ...(all[baseUrl] ?? {}) };
    if (token) forServer[username] = token;
    else delete forServer[username];
    all[baseUrl] = forServer;
    await writePrivate(this.path, JSON.stringify(all, null, 2) + '\n');
  }
}

/**
 * Writes a file only its owner can read: the temporary file is created 0600 (so the secret is
 * never world-readable, not even for a moment) and renamed over the old one.
 */
export async function writePrivate(path: string, data: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
  // A token file left by an older version might have been wider; the rename replaced it, but say it twice.
  await chmod(path, 0o600);
}
