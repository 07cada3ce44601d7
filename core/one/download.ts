// File downloads into the ONE cache: streamed to <file>.part with md5 on the fly, resumed with HTTP Range,
// size and md5 checked, renamed only when verified; bounded parallelism (docs/method.md §2.1).
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { silentLogger } from '../log.ts';
import { OneError, displayUrl } from './errors.ts';
import { backoffMs, describeTransportError, isRetryableStatus, isTransientError, parseRetryAfter, sleep, type RetryPolicy } from './retry.ts';

export interface DownloadItem {
  url: string;
  /** Final absolute path in the cache. */
  path: string;
  /** Expected bytes; null when the database does not say. */
  size?: number | null;
  /** Expected md5 (hex); null when unknown. */
  hash?: string | null;
  /** How to name the file in messages (e.g. its path inside the session). */
  label?: string;
}

export type DownloadStatus = 'downloaded' | 'cached' | 'failed';

export interface DownloadResult {
  item: DownloadItem;
  status: DownloadStatus;
  /** Why it failed (failed rows only). */
  reason?: string;
  /** Bytes received over the network for this file. */
  bytesFetched: number;
  /** HTTP requests made for this file. */
  attempts: number;
  /** Offset of the first resumed request, when a partial file was picked up. */
  resumedFrom?: number;
}

export interface DownloadOptions extends RetryPolicy {
  /** Longest silence while waiting for headers or the next chunk. */
  timeoutMs: number;
  /**
   * Longest time one file may take, all its attempts together (default DEFAULT_DEADLINE_MS): a
   * server that trickles a byte at a time never goes silent, so the idle timeout alone never ends it.
   */
  deadlineMs?: number;
  parallel: number;
  signal?: AbortSignal;
  logger?: Logger;
  /** Bytes in the cache so far over all files of this call, the total expected, and the file that moved. */
  onProgress?: (bytesDone: number, bytesTotal: number, file: string) => void;
  /** Hash files already in the cache before trusting them (default true). */
  verifyCached?: boolean;
}

const MD5_RE = /^[0-9a-f]{32}$/i;

/** One hour per file: a 1 GB spike-sorting file at 0.3 MB/s still fits. */
export const DEFAULT_DEADLINE_MS = 3_600_000;

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

async function hashFile(path: string, into: Hash, end?: number): Promise<void> {
  if (end === 0) return;
  const stream = createReadStream(path, end === undefined ? {} : { start: 0, end: end - 1 });
  for await (const chunk of stream) into.update(chunk as Buffer);
}

export async function md5File(path: string): Promise<string> {
  const h = createHash('md5');
  await hashFile(path, h);
  return h.digest('hex');
}

/** A non-2xx answer from the file server. */
class StatusError extends Error {
  constructor(
    readonly status: number,
    readonly retryAfter: string | null,
  ) {
    super(`HTTP ${status}`);
  }
}

/**
 * Checks a file already at the final path: the right size (when known) and md5 (when known).
 * A file that fails is deleted so that a bad file never stays under the final name.
 */
async function checkCached(item: DownloadItem, verifyHash: boolean, log: Logger): Promise<boolean> {
  const size = await fileSize(item.path);
  if (size === undefined) return false;
  let bad: string | undefined;
  if (item.size != null && size !== item.size) bad = `size ${size} bytes, expected ${item.size}`;
  else if (verifyHash && item.hash && MD5_RE.test(item.hash)) {
    const got = await md5File(item.path);
    if (got !== item.hash.toLowerCase()) bad = `md5 ${got}, expected ${item.hash}`;
  }
  if (!bad) return true;
  log.warn({ file: item.path, problem: bad }, 'cached file is wrong; removing it and downloading again');
  await rm(item.path, { force: true });
  return false;
}

/** What one file's attempts share: their fixed inputs, the result being filled and the loop's state. */
interface Attempts {
  item: DownloadItem;
  opts: DownloadOptions;
  onBytes: (bytesInCache: number) => void;
  log: Logger;
  label: string;
  shown: string;
  part: string;
  wantHash: string | undefined;
  deadline: number;
  deadlineMs: number;
  result: DownloadResult;
  lastProblem: string;
  /** Set by a server that says when to come back (Retry-After); otherwise exponential back-off. */
  askedWaitMs: number | undefined;
}

/** After one attempt: the file is in place, try again, or give up. */
type AttemptOutcome = 'done' | 'retry' | 'stop';

/**
 * Downloads one file. Never throws for a failure of this file: the result says `failed` and why
 * (a user abort does throw). Keeps a `.part` after transport failures so a later call resumes.
 */
export async function downloadFile(item: DownloadItem, opts: DownloadOptions, onBytes: (bytesInCache: number) => void = () => {}): Promise<DownloadResult> {
  const log = (opts.logger ?? silentLogger).child({ component: 'download' });
  const label = item.label ?? item.path;
  const shown = displayUrl(item.url);
  const result: DownloadResult = { item, status: 'failed', bytesFetched: 0, attempts: 0 };
  if (await checkCached(item, opts.verifyCached ?? true, log)) {
    result.status = 'cached';
    onBytes((await fileSize(item.path)) ?? 0);
    return result;
  }
  await mkdir(dirname(item.path), { recursive: true });
  const part = `${item.path}.part`;
  const wantHash = item.hash && MD5_RE.test(item.hash) ? item.hash.toLowerCase() : undefined;
  if (item.hash && !wantHash) log.debug({ file: label }, 'hash is not an md5; checking size only');
  const deadlineMs = opts.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const a: Attempts = {
    item, opts, onBytes, log, label, shown, part, wantHash, deadlineMs, result,
    deadline: Date.now() + deadlineMs, lastProblem: 'no attempt made', askedWaitMs: undefined,
  };
  for (let attempt = 0; attempt <= opts.retries; attempt++) {
    const next = await attemptOnce(a, attempt);
    if (next === 'done') return result;
    if (next === 'stop') break;
  }
  result.reason = `${label}: ${a.lastProblem} (after ${result.attempts} request(s))`;
  log.error({ file: label, reason: a.lastProblem }, 'download failed');
  return result;
}

/** One attempt: waits its turn, resumes the `.part`, fetches the rest unless it is whole, then checks it. */
async function attemptOnce(a: Attempts, attempt: number): Promise<AttemptOutcome> {
  const { item, opts, result } = a;
  if (opts.signal?.aborted) throw opts.signal.reason;
  if (attempt > 0) await sleep(Math.min(a.askedWaitMs ?? backoffMs(attempt - 1, opts), Math.max(0, a.deadline - Date.now())), opts.signal);
  a.askedWaitMs = undefined;
  if (Date.now() >= a.deadline) {
    a.lastProblem = `the per-file deadline of ${a.deadlineMs} ms passed (${a.lastProblem})`;
    return 'stop';
  }
  const { offset, hash } = await resumePoint(a);
  const alreadyWhole = item.size != null && offset === item.size && offset > 0;
  if (!alreadyWhole) {
    result.attempts++;
    try {
      const got = await fetchInto(item, a.part, offset, hash, opts, a.onBytes, a.log, a.deadline, a.deadlineMs);
      result.bytesFetched += got.bytes;
      if (got.resumed && result.resumedFrom === undefined) result.resumedFrom = offset;
    } catch (e) {
      return fetchFailed(a, e, offset, attempt);
    }
  }
  return finishPart(a, hash, attempt);
}

/** Where this attempt starts: the `.part` bytes kept (dropped when longer than the file), already hashed. */
async function resumePoint(a: Attempts): Promise<{ offset: number; hash: { md5: Hash } }> {
  let offset = (await fileSize(a.part)) ?? 0;
  if (a.item.size != null && offset > a.item.size) {
    await rm(a.part, { force: true });
    offset = 0;
  }
  const hash = { md5: createHash('md5') };
  // Hashing the bytes already on disk makes the final digest cover the whole file, not just this request.
  await hashFile(a.part, hash.md5, offset);
  a.onBytes(offset);
  return { offset, hash };
}

/** Sorts a failed request into retry or give up, noting why (a user abort rethrows). */
async function fetchFailed(a: Attempts, e: unknown, offset: number, attempt: number): Promise<'retry' | 'stop'> {
  const { item, opts, log, label, shown } = a;
  if (opts.signal?.aborted) throw opts.signal.reason ?? e;
  const bytes = (e as { bytesFetched?: number }).bytesFetched ?? 0;
  a.result.bytesFetched += bytes;
  if (e instanceof StatusError) {
    a.lastProblem = `HTTP ${e.status} from ${shown}`;
    if (e.status === 416) {
      // The server has fewer bytes than our partial file: it does not fit the server's copy; start over.
      a.lastProblem = `the server's file is shorter than the ${offset} bytes already fetched${item.size != null ? ` (the database says ${item.size})` : ''}`;
      await rm(a.part, { force: true });
      return 'retry';
    }
    if (!isRetryableStatus(e.status)) return 'stop';
    const asked = parseRetryAfter(e.retryAfter);
    if (asked !== undefined && asked > opts.maxRetryAfterMs) {
      a.lastProblem += ` asking to wait ${Math.round(asked / 1000)} s`;
      return 'stop';
    }
    a.askedWaitMs = asked;
    log.warn({ file: label, status: e.status, attempt: attempt + 1, waitMs: asked }, 'file server refused; retrying');
    return 'retry';
  }
  if (e instanceof OneError && (e.code === 'size' || e.code === 'deadline')) {
    // Neither is a passing fault: a server that sends more than it announced is not asked
    // again, and a spent deadline is spent. What it sent is not kept.
    a.lastProblem = e.message;
    if (e.code === 'size') await rm(a.part, { force: true });
    return 'stop';
  }
  if (isTransientError(e)) {
    a.lastProblem = `${describeTransportError(e)} while fetching ${shown}`;
    log.warn({ file: label, error: describeTransportError(e), keptBytes: await fileSize(a.part), attempt: attempt + 1 }, 'download interrupted; will resume');
    return 'retry';
  }
  a.lastProblem = `${describeTransportError(e)} while fetching ${shown}`;
  return 'stop';
}

/** Checks the `.part`'s size and md5 and renames it into place, or notes why it must be fetched again. */
async function finishPart(a: Attempts, hash: { md5: Hash }, attempt: number): Promise<'done' | 'retry'> {
  const { item, log, label, part, wantHash, result } = a;
  const size = (await fileSize(part)) ?? 0;
  if (item.size != null && size !== item.size) {
    a.lastProblem = `size mismatch: got ${size} bytes, expected ${item.size}`;
    if (size < item.size) {
      // A body that ended early without an error: resume from what we have.
      log.warn({ file: label, size, expected: item.size }, 'file shorter than expected; resuming');
      return 'retry';
    }
    await rm(part, { force: true });
    log.warn({ file: label, size, expected: item.size }, 'file longer than expected; deleted, retrying');
    return 'retry';
  }
  if (wantHash) {
    const got = hash.md5.digest('hex');
    if (got !== wantHash) {
      a.lastProblem = `checksum mismatch: md5 ${got}, expected ${wantHash}`;
      await rm(part, { force: true });
      log.warn({ file: label, md5: got, expected: wantHash, attempt: attempt + 1 }, 'checksum mismatch; deleted, retrying');
      return 'retry';
    }
  }
  await rename(part, item.path);
  result.status = 'downloaded';
  a.onBytes(size);
  log.debug({ file: label, bytes: size, attempts: result.attempts, resumedFrom: result.resumedFrom }, 'downloaded');
  return 'done';
}

/** One request: appends to `part` from `offset` (206) or rewrites it (200, a server that ignores Range). */
async function fetchInto(
  item: DownloadItem,
  part: string,
  offset: number,
  hash: { md5: Hash },
  opts: DownloadOptions,
  onBytes: (n: number) => void,
  log: Logger,
  deadline = Date.now() + DEFAULT_DEADLINE_MS,
  deadlineMs = DEFAULT_DEADLINE_MS,
): Promise<{ bytes: number; resumed: boolean }> {
  const idle = new AbortController();
  const timer = setTimeout(() => idle.abort(new OneError('timeout', `no data for ${opts.timeoutMs} ms from ${displayUrl(item.url)}`)), opts.timeoutMs);
  const overall = setTimeout(
    () => idle.abort(new OneError('deadline', `the per-file deadline of ${deadlineMs} ms passed while fetching ${displayUrl(item.url)}`)),
    Math.max(0, Math.min(deadline - Date.now(), 2 ** 31 - 1)),
  );
  const signal = opts.signal ? AbortSignal.any([opts.signal, idle.signal]) : idle.signal;
  const got = { bytes: 0 };
  try {
    const res = await requestFile(item, offset, signal, idle.signal);
    const { resumed, writeFrom } = await placeResponse(res, item, part, offset, hash, log);
    await writeBody(res, item, part, writeFrom, hash, timer, onBytes, got);
    return { bytes: got.bytes, resumed };
  } catch (e) {
    const err = idle.signal.aborted && !(opts.signal?.aborted) ? idle.signal.reason : e;
    if (err && typeof err === 'object') (err as { bytesFetched?: number }).bytesFetched = got.bytes;
    throw err;
  } finally {
    clearTimeout(timer);
    clearTimeout(overall);
  }
}

/** The error for a server that sends more than the database announces. */
const tooMuch = (item: DownloadItem) => new OneError('size', `the server sent more than the ${item.size} bytes the database announces for ${item.label ?? item.path}`);

/** Sends the request (with Range from `offset`) and refuses any answer but 200 or 206; an idle or deadline abort throws its own reason. */
async function requestFile(item: DownloadItem, offset: number, signal: AbortSignal, idle: AbortSignal): Promise<Response> {
  const headers: Record<string, string> = {};
  if (offset > 0) headers.Range = `bytes=${offset}-`;
  let res: Response;
  try {
    res = await fetch(item.url, { headers, signal, redirect: 'follow' });
  } catch (e) {
    throw idle.aborted ? idle.reason : e;
  }
  if (res.status !== 200 && res.status !== 206) {
    await res.body?.cancel().catch(() => {});
    throw new StatusError(res.status, res.headers.get('retry-after'));
  }
  return res;
}

/** Where the answer's bytes go: after `offset` for a matching 206, else from 0 with a fresh hash; refuses a Content-Length past the announced size. */
async function placeResponse(res: Response, item: DownloadItem, part: string, offset: number, hash: { md5: Hash }, log: Logger): Promise<{ resumed: boolean; writeFrom: number }> {
  let resumed = false;
  let writeFrom = 0;
  if (res.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== offset) {
      await res.body?.cancel().catch(() => {});
      await rm(part, { force: true });
      throw new OneError('network', `file server answered a Range request with the wrong part (${res.headers.get('content-range') ?? 'no Content-Range'})`);
    }
    resumed = offset > 0;
    writeFrom = offset;
  } else if (offset > 0) {
    // The server ignored Range and sends the whole file: start the file and its hash again.
    log.info({ file: item.label ?? item.path, offset }, 'server ignored the Range request; restarting from byte 0');
    hash.md5 = createHash('md5');
  }
  // Never more than the database announces: a longer Content-Length is refused before the body.
  const length = Number(res.headers.get('content-length') ?? NaN);
  if (item.size != null && Number.isFinite(length) && writeFrom + length > item.size) {
    await res.body?.cancel().catch(() => {});
    throw tooMuch(item);
  }
  return { resumed, writeFrom };
}

/** Streams the body into `part` from `writeFrom`, hashing it and counting received bytes into `got` (kept on failure). */
async function writeBody(
  res: Response,
  item: DownloadItem,
  part: string,
  writeFrom: number,
  hash: { md5: Hash },
  timer: NodeJS.Timeout,
  onBytes: (n: number) => void,
  got: { bytes: number },
): Promise<void> {
  const fh = await open(part, writeFrom > 0 ? 'a' : 'w');
  try {
    if (!res.body) throw new OneError('network', `empty body from ${displayUrl(item.url)}`);
    let done = writeFrom;
    onBytes(done);
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      timer.refresh();
      // ...and a body that runs past it is stopped at the chunk that would cross it.
      if (item.size != null && done + chunk.byteLength > item.size) {
        got.bytes += chunk.byteLength;
        throw tooMuch(item);
      }
      await fh.write(chunk);
      hash.md5.update(chunk);
      got.bytes += chunk.byteLength;
      done += chunk.byteLength;
      onBytes(done);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/**
 * Downloads every item, at most `opts.parallel` at a time. A failed file does not stop the
 * others: every item gets a result row, in input order.
 */
export async function downloadAll(items: readonly DownloadItem[], opts: DownloadOptions): Promise<DownloadResult[]> {
  const perFile = new Array<number>(items.length).fill(0);
  const total = items.reduce((s, it) => s + (it.size ?? 0), 0);
  let done = 0;
  return mapLimit(items, opts.parallel, (item, i) =>
    downloadFile(item, opts, (bytesInCache) => {
      done += bytesInCache - perFile[i];
      perFile[i] = bytesInCache;
      opts.onProgress?.(done, Math.max(total, done), item.label ?? item.path);
    }),
  );
}
