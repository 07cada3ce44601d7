// Experiment and dataset ids: UUID strings, and the int64 pairs that legacy ONE cache tables use (docs/method.md §2.1).
export { uuidFromInt64Pair, int64PairFromUuid } from '../io/parquet.ts';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: unknown): s is string {
  return typeof s === 'string' && UUID_RE.test(s);
}

/** The UUID at the end of an Alyx URL (`https://.../sessions/<uuid>`), or the string itself if it is one. */
export function uuidFromUrl(s: string | null | undefined): string | null {
  if (!s) return null;
  const tail = s.replace(/\/+$/, '').slice(-36);
  return isUuid(tail) ? tail.toLowerCase() : null;
}
