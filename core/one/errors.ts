// Errors of the ONE client: each says what failed and where, never with credentials (docs/method.md §2.1).

export type OneErrorCode =
  | 'config'
  | 'auth'
  | 'http'
  | 'network'
  | 'timeout'
  /** The per-file download deadline passed (not retried). */
  | 'deadline'
  | 'not-found'
  | 'checksum'
  | 'size'
  | 'offline'
  | 'download'
  | 'cache-table'
  /** A path part from the server or a cache table that would leave the cache folder. */
  | 'unsafe-path';

export class OneError extends Error {
  readonly code: OneErrorCode;
  /** HTTP status, when the error came from a response. */
  readonly status?: number;
  constructor(code: OneErrorCode, message: string, opts: { status?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'OneError';
    this.code = code;
    this.status = opts.status;
  }
}

/** A URL fit for messages: any user:password part is dropped. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}
