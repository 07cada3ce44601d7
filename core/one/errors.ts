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

/**
 * Text with every `scheme://user:password@` cut to `scheme://***@`: for anything that echoes what
 * a user typed (command lines, overrides, messages of other libraries) before it is printed or
 * written to a run directory.
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@'"]+@/gi, '$1***@');
}

/** `redactUrlCredentials` over every string of a JSON-like value. */
export function redactDeep<T>(x: T): T {
  if (typeof x === 'string') return redactUrlCredentials(x) as T;
  if (Array.isArray(x)) return x.map(redactDeep) as T;
  if (x && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, redactDeep(v)])) as T;
  }
  return x;
}
