// The ONE client façade: search sessions, list insertions and datasets, resolve sessions to cache folders,
// download into ONE's cache layout; `local` mode reads the cache and never touches the network (docs/method.md §2.1).
import { readdir, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Logger } from 'pino';
import { silentLogger } from '../log.ts';
import type { SessionRef } from '../payloads.ts';
import { listProbes } from '../alf/session.ts';
import { AlyxClient } from './alyx.ts';
import { isInside, parseSessionPath, sessionRelPath, splitDatasetPath } from './alf-path.ts';
import { loadCacheTables, mergeIntoCacheTables, scanSessionFolders, type CacheDataset, type CacheTables } from './cache-tables.ts';
import { isResolvedConfig, resolveOneConfig, type OneConfig, type OneOptions } from './config.ts';
import { downloadAll, type DownloadResult } from './download.ts';
import { OneError } from './errors.ts';
import { datasetFromRest, insertionFromRest, sessionFromRest, type DatasetRecord, type InsertionRecord, type RestDataset, type RestInsertion, type RestSession, type SessionRecord } from './records.ts';
import { isUuid } from './uuid.ts';

export interface SearchFilters {
  eid?: string;
  /** Exact subject nickname. */
  subject?: string;
  /** Exact lab name. */
  lab?: string;
  /** Inclusive, 'YYYY-MM-DD'. */
  dateRange?: [string, string];
  /** A project the session belongs to. */
  project?: string;
  /** File names (e.g. 'spikes.times.npy') the session must have, all of them. */
  datasets?: string[];
}

export interface DownloadRow {
  eid: string | null;
  datasetId: string | null;
  relativePath: string;
  path: string;
  url: string | null;
  size: number | null;
  hash: string | null;
  status: DownloadResult['status'];
  reason?: string;
  bytesFetched: number;
  attempts: number;
  resumedFrom?: number;
}

export interface DownloadReport {
  rows: DownloadRow[];
  downloaded: number;
  cached: number;
  failed: DownloadRow[];
}

/** Raised after every row was tried, when some failed; `report` has all rows. */
export class OneDownloadError extends OneError {
  constructor(readonly report: DownloadReport) {
    const lines = report.failed.map((r) => `  ${r.reason ?? r.relativePath}`);
    super('download', `${report.failed.length} of ${report.rows.length} file(s) could not be downloaded:\n${lines.join('\n')}`);
    this.name = 'OneDownloadError';
  }
}

export interface DownloadCallOptions {
  onProgress?: (bytesDone: number, bytesTotal: number, file: string) => void;
  /** Default true: throw OneDownloadError after all rows when any failed. */
  throwOnFailure?: boolean;
  /** Default true: record downloaded files in the cache tables (current layout). */
  updateCacheTables?: boolean;
}

export interface OneClientOptions extends OneOptions {
  logger?: Logger;
  signal?: AbortSignal;
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null))?.isDirectory() ?? false;
}

async function sizeOf(p: string): Promise<number | undefined> {
  const s = await stat(p).catch(() => null);
  return s?.isFile() ? s.size : undefined;
}

export class OneClient {
  readonly config: OneConfig;
  readonly #log: Logger;
  readonly #signal?: AbortSignal;
  #alyx?: AlyxClient;
  #tables?: Promise<CacheTables | undefined>;
  readonly #sessions = new Map<string, SessionRecord>();

  constructor(config: OneConfig | OneClientOptions = {}, opts: { logger?: Logger; signal?: AbortSignal } = {}) {
    this.config = isResolvedConfig(config) ? config : resolveOneConfig(config);
    const o = config as OneClientOptions;
    this.#log = (opts.logger ?? o.logger ?? silentLogger).child({ component: 'one' });
    this.#signal = opts.signal ?? o.signal;
  }

  get mode() {
    return this.config.mode;
  }

  get cacheDir(): string {
    return this.config.cacheDir;
  }

  /** The REST client; an error in local mode, which must never reach the network. */
  get alyx(): AlyxClient {
    if (this.config.mode === 'local') throw new OneError('offline', `ONE is in local mode (cache ${this.config.cacheDir}): no requests to ${this.config.baseUrl}`);
    this.#alyx ??= new AlyxClient({
      baseUrl: this.config.baseUrl,
      username: this.config.username,
      password: this.config.password,
      tokenFile: this.config.tokenFile,
      timeoutMs: this.config.timeoutMs,
      retries: this.config.retries,
      retryBaseMs: this.config.retryBaseMs,
      retryMaxMs: this.config.retryMaxMs,
      maxRetryAfterMs: this.config.maxRetryAfterMs,
      logger: this.#log,
      signal: this.#signal,
    });
    return this.#alyx;
  }

  /** The cache tables of the cache folder, read once (undefined when there are none). */
  cacheTables(): Promise<CacheTables | undefined> {
    this.#tables ??= loadCacheTables(this.config.cacheDir);
    return this.#tables;
  }

  /** Forget what was read from the cache tables (after another process wrote them). */
  reloadCache(): void {
    this.#tables = undefined;
  }

  async searchSessions(f: SearchFilters = {}): Promise<SessionRecord[]> {
    if (f.dateRange) {
      const [a, b] = f.dateRange;
      if (!/^\d{4}-\d{2}-\d{2}$/.test(a) || !/^\d{4}-\d{2}-\d{2}$/.test(b)) {
        throw new OneError('config', `dateRange must be two 'YYYY-MM-DD' dates, got ${JSON.stringify(f.dateRange)}`);
      }
    }
    if (this.config.mode === 'remote') {
      const rows = await this.alyx.list<RestSession>('/sessions', {
        id: f.eid,
        subject: f.subject,
        lab: f.lab,
        date_range: f.dateRange,
        project: f.project,
        datasets: f.datasets?.length ? f.datasets : undefined,
      });
      const out = rows.map(sessionFromRest);
      for (const s of out) if (s.eid) this.#sessions.set(s.eid, s);
      return out;
    }
    const tables = await this.cacheTables();
    const all = tables ? tables.sessions : await scanSessionFolders(this.config.cacheDir);
    let hits = all.filter(
      (s) =>
        (!f.eid || s.eid === f.eid.toLowerCase()) &&
        (!f.subject || s.subject === f.subject) &&
        (!f.lab || s.lab === f.lab) &&
        (!f.dateRange || (s.date >= f.dateRange[0] && s.date <= f.dateRange[1])) &&
        (!f.project || s.projects.includes(f.project)),
    );
    if (f.datasets?.length) {
      const byEid = new Map<string, string[]>();
      for (const d of tables?.datasets ?? []) if (d.exists) byEid.set(d.eid, [...(byEid.get(d.eid) ?? []), d.relativePath]);
      const kept: SessionRecord[] = [];
      for (const s of hits) {
        // A session the datasets table does not describe is judged by the files in its folder.
        const rels = (s.eid && byEid.get(s.eid)) || (await this.#scanFiles(join(this.config.cacheDir, s.relativePath)));
        const have = new Set(rels.flatMap((r) => [r, splitDatasetPath(r).name]));
        if (f.datasets.every((w) => have.has(w))) kept.push(s);
      }
      hits = kept;
    }
    return hits.sort((a, b) => (a.date < b.date ? 1 : a.date > b.date ? -1 : a.subject.localeCompare(b.subject) || a.number - b.number));
  }

  /** The session record of an eid: the cache tables in local mode, Alyx in remote mode. */
  async session(eid: string): Promise<SessionRecord> {
    if (!isUuid(eid)) throw new OneError('config', `not an experiment id (UUID): '${eid}'`);
    const id = eid.toLowerCase();
    const known = this.#sessions.get(id);
    if (known) return known;
    let rec: SessionRecord | undefined;
    if (this.config.mode === 'remote') {
      rec = (await this.alyx.list<RestSession>('/sessions', { id })).map(sessionFromRest).find((s) => s.eid === id);
      if (!rec) throw new OneError('not-found', `session ${id} not found on ${this.config.baseUrl}`);
    } else {
      const tables = await this.cacheTables();
      rec = tables?.sessions.find((s) => s.eid === id);
      if (!rec) {
        const where = tables ? `${join(this.config.cacheDir, 'sessions.pqt')}` : `${this.config.cacheDir} (no sessions.pqt there)`;
        throw new OneError('not-found', `session ${id} not found in ${where}; in local mode only sessions in the cache tables can be named by eid (give the session folder instead, or use remote mode)`);
      }
    }
    this.#sessions.set(id, rec);
    return rec;
  }

  /** `<cacheDir>/<lab>/Subjects/<subject>/<date>/<NNN>` of a session. */
  async sessionPath(eid: string): Promise<string> {
    const s = await this.session(eid);
    return join(this.config.cacheDir, ...s.relativePath.split('/'));
  }

  /**
   * A session named by eid or by folder (absolute, relative to the working folder, or relative to
   * the cache) as the SessionRef payload. A folder is used as it is; its eid comes from the cache
   * tables when it lies in this cache.
   */
  async resolveSession(spec: string): Promise<SessionRef> {
    const s = spec.trim();
    if (!s) throw new OneError('config', 'empty session name (give an eid or a session folder)');
    if (isUuid(s)) {
      const eid = s.toLowerCase();
      return { kind: 'session-ref', sessionId: eid, eid, path: await this.sessionPath(eid), cacheDir: this.config.cacheDir };
    }
    const candidates = isAbsolute(s) ? [resolve(s)] : [resolve(s), resolve(this.config.cacheDir, s)];
    let path: string | undefined;
    for (const c of candidates) if (await isDir(c)) { path = c; break; }
    if (!path) {
      throw new OneError('not-found', `session folder not found: '${s}' (looked at ${candidates.join(' and ')}); give an eid (UUID) or an existing folder`);
    }
    const rel = relative(this.config.cacheDir, path);
    const inCache = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
    const parts = parseSessionPath(path);
    let eid: string | undefined;
    if (inCache && parts) {
      const tables = await this.cacheTables();
      const want = sessionRelPath(parts);
      eid = tables?.sessions.find((x) => x.relativePath === want)?.eid ?? undefined;
    }
    const sessionId = eid ?? (inCache ? rel.split(sep).join('/') : parts ? sessionRelPath(parts) : path);
    const ref: SessionRef = { kind: 'session-ref', sessionId, path };
    if (eid) ref.eid = eid;
    if (inCache) ref.cacheDir = this.config.cacheDir;
    return ref;
  }

  /** Probe insertions of a session: Alyx `/insertions?session=` remotely, the alf/<probe> folders locally. */
  async listInsertions(eid: string): Promise<InsertionRecord[]> {
    if (this.config.mode === 'remote') {
      if (!isUuid(eid)) throw new OneError('config', `not an experiment id (UUID): '${eid}'`);
      return (await this.alyx.list<RestInsertion>('/insertions', { session: eid.toLowerCase() })).map(insertionFromRest);
    }
    const ref = await this.resolveSession(eid);
    return (await listProbes(ref.path)).map((name) => ({ id: null, name, session: ref.eid ?? null }));
  }

  /**
   * Datasets of a session. Remote: Alyx `/datasets?session=<eid>&exists=True`. Local: the cache
   * tables' rows for the eid, or the files in the session folder. `exists` says whether the file
   * is in the local cache (with the expected size when one is known).
   */
  async listDatasets(eidOrFolder: string): Promise<DatasetRecord[]> {
    let out: DatasetRecord[];
    if (this.config.mode === 'remote' && isUuid(eidOrFolder)) {
      const eid = eidOrFolder.toLowerCase();
      const dir = await this.sessionPath(eid);
      const rows = await this.alyx.list<RestDataset>('/datasets', { session: eid, exists: true });
      out = rows.map((d) => datasetFromRest(d, dir, eid));
    } else {
      const ref = await this.resolveSession(eidOrFolder);
      const tables = await this.cacheTables();
      const rows: CacheDataset[] = ref.eid ? (tables?.datasets ?? []).filter((d) => d.eid === ref.eid) : [];
      if (rows.length) {
        out = rows.map((d) => {
          const p = splitDatasetPath(d.relativePath);
          return {
            id: d.id,
            eid: d.eid,
            name: p.name,
            collection: p.collection,
            revision: p.revision,
            relativePath: d.relativePath,
            size: d.size,
            hash: d.hash,
            url: null,
            exists: false,
            defaultRevision: d.defaultRevision,
            path: join(ref.path, ...d.relativePath.split('/')),
          };
        });
      } else {
        out = (await this.#scanFiles(ref.path)).map((rel) => {
          const p = splitDatasetPath(rel);
          return { id: null, eid: ref.eid ?? null, name: p.name, collection: p.collection, revision: p.revision, relativePath: rel, size: null, hash: null, url: null, exists: false, defaultRevision: true, path: join(ref.path, ...rel.split('/')) };
        });
      }
    }
    for (const d of out) {
      const size = await sizeOf(d.path);
      d.exists = size !== undefined && (d.size === null || size === d.size);
    }
    return out;
  }

  /** Files under a session folder, '/'-separated relative paths (hidden files and .part files skipped). */
  async #scanFiles(dir: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (d: string, prefix: string) => {
      let entries;
      try {
        entries = await readdir(d, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
        if (e.name.startsWith('.') || e.name.endsWith('.part')) continue;
        const rel = prefix ? `${prefix}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(join(d, e.name), rel);
        else if (e.isFile()) out.push(rel);
      }
    };
    await walk(dir, '');
    return out;
  }

  /**
   * Brings datasets into the cache: each row ends `downloaded`, `cached` or `failed` (with the
   * reason); one failure does not stop the others. Then, unless told not to, throws one
   * OneDownloadError naming every failure. Local mode only checks what is already there.
   */
  async download(datasets: readonly DatasetRecord[], opts: DownloadCallOptions = {}): Promise<DownloadReport> {
    const rows: DownloadRow[] = datasets.map((d) => ({
      eid: d.eid,
      datasetId: d.id,
      relativePath: d.relativePath,
      path: d.path,
      url: d.url,
      size: d.size,
      hash: d.hash,
      status: 'failed',
      bytesFetched: 0,
      attempts: 0,
    }));
    if (this.config.mode === 'local') {
      for (const r of rows) {
        const size = await sizeOf(r.path);
        if (size !== undefined && (r.size === null || size === r.size)) r.status = 'cached';
        else r.reason = `${r.relativePath}: not in the cache ${this.config.cacheDir} (local mode does not download)`;
      }
    } else {
      // The last guard against a record that climbs out of the cache: nothing is fetched then.
      const outside = rows.filter((r) => !isInside(this.config.cacheDir, r.path));
      if (outside.length) {
        throw new OneError('unsafe-path', `refusing to download outside the cache ${this.config.cacheDir}: ${outside.map((r) => `${r.relativePath} -> ${r.path}`).join(', ')}`);
      }
      const fetchable = rows.filter((r) => r.url);
      for (const r of rows) if (!r.url) r.reason = `${r.relativePath}: no file record with a URL on ${this.config.baseUrl}`;
      const results = await downloadAll(
        fetchable.map((r) => ({ url: r.url!, path: r.path, size: r.size, hash: r.hash, label: r.relativePath })),
        {
          parallel: this.config.parallelDownloads,
          retries: this.config.retries,
          retryBaseMs: this.config.retryBaseMs,
          retryMaxMs: this.config.retryMaxMs,
          maxRetryAfterMs: this.config.maxRetryAfterMs,
          timeoutMs: this.config.timeoutMs,
          deadlineMs: this.config.downloadDeadlineMs,
          signal: this.#signal,
          logger: this.#log,
          onProgress: opts.onProgress,
        },
      );
      results.forEach((res, i) => {
        const r = fetchable[i];
        r.status = res.status;
        r.bytesFetched = res.bytesFetched;
        r.attempts = res.attempts;
        if (res.reason) r.reason = res.reason;
        if (res.resumedFrom !== undefined) r.resumedFrom = res.resumedFrom;
      });
      if (opts.updateCacheTables ?? true) await this.#recordInTables(datasets, rows);
    }
    const report: DownloadReport = {
      rows,
      downloaded: rows.filter((r) => r.status === 'downloaded').length,
      cached: rows.filter((r) => r.status === 'cached').length,
      failed: rows.filter((r) => r.status === 'failed'),
    };
    this.#log.info({ downloaded: report.downloaded, cached: report.cached, failed: report.failed.length }, 'download finished');
    if (report.failed.length && (opts.throwOnFailure ?? true)) throw new OneDownloadError(report);
    return report;
  }

  /** So that local mode later finds these sessions by eid. */
  async #recordInTables(datasets: readonly DatasetRecord[], rows: DownloadRow[]): Promise<void> {
    const present: CacheDataset[] = [];
    const sessions = new Map<string, SessionRecord>();
    datasets.forEach((d, i) => {
      if (!d.eid || rows[i].status === 'failed') return;
      const s = this.#sessions.get(d.eid);
      if (!s) return;
      sessions.set(d.eid, s);
      present.push({ eid: d.eid, id: d.id, relativePath: d.relativePath, size: d.size, hash: d.hash, exists: true, defaultRevision: d.defaultRevision });
    });
    if (!present.length) return;
    try {
      await mergeIntoCacheTables(this.config.cacheDir, [...sessions.values()], present);
      this.reloadCache();
    } catch (e) {
      // The files are in place and verified; a table we cannot update only costs a later lookup.
      this.#log.warn({ error: (e as Error).message }, 'could not update the ONE cache tables');
    }
  }
}
