// Retry policy shared by REST calls and file downloads: exponential back-off with jitter, Retry-After honoured (docs/method.md §2.1).
import { OneError } from './errors.ts';

export interface RetryPolicy {
  retries: number;
  retryBaseMs: number;
  retryMaxMs: number;
  maxRetryAfterMs: number;
}

/** Full-range jitter on the upper half, so parallel clients do not retry in lock-step. */
export function backoffMs(attempt: number, p: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(p.retryMaxMs, p.retryBaseMs * 2 ** attempt);
  return Math.round(ceiling * (0.5 + 0.5 * random()));
}

/** Retry-After in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const s = header.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** The system error code behind a fetch failure ('ECONNRESET', ...), looking through causes. */
export function networkCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur; i++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Transient transport failures: reset or refused connections, a body cut short ("terminated"),
 * and our own idle timeouts. A user abort is not transient.
 */
export function isTransientError(e: unknown): boolean {
  if (e instanceof OneError) return e.code === 'network' || e.code === 'timeout';
  if (networkCode(e)) return true;
  // A redirect loop (fetch gives up after 20 hops) is the server's configuration: asking again loops again.
  if (/redirect/i.test(String((e as { cause?: { message?: string } })?.cause?.message ?? ''))) return false;
  const err = e as { name?: string; message?: string };
  if (err?.name === 'TimeoutError') return true;
  return err?.name === 'TypeError' && /fetch failed|terminated|other side closed/i.test(err.message ?? '');
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolveSleep, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolveSleep();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** One short phrase for a transport error, for messages ("ECONNRESET", "timed out after 2000 ms"). */
export function describeTransportError(e: unknown): string {
  if (e instanceof OneError) return e.message;
  const code = networkCode(e);
  if (code) return code;
  const err = e as { message?: string; cause?: { message?: string } };
  return err?.cause?.message ?? err?.message ?? String(e);
}
