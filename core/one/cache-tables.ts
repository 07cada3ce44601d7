// ONE cache tables (sessions.pqt, datasets.pqt) in both layouts: legacy int64 id pairs and string ids (docs/method.md §2.1).
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readParquet, writeParquet, type ParquetTable } from '../io/parquet.ts';
import { checkSessionParts, parseSessionPath, sessionRelPath } from './alf-path.ts';
import { OneError } from './errors.ts';
import type { SessionRecord } from './records.ts';
import { isUuid, uuidFromInt64Pair } from './uuid.ts';

export type CacheLayout = 'legacy' | 'current';

/** One row of datasets.pqt, ids as UUID strings whatever the layout. */
export interface CacheDataset {
  eid: string;
  id: string | null;
  /** Inside the session folder (ONE's rel_path). */
  relativePath: string;
  size: number | null;
  hash: string | null;
  exists: boolean;
  defaultRevision: boolean;
  qc?: string;
}

export interface CacheTables {
  dir: string;
  layout: CacheLayout;
  sessions: SessionRecord[];
  datasets: CacheDataset[];
}

const ID_PAIRS = ['id_0', 'id_1', 'eid_0', 'eid_1'];

async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null))?.isFile() ?? false;
}

function col(t: ParquetTable, name: string): (string | number | boolean | null)[] | undefined {
  return t.columns[name];
}

/** The UUID of row `i`: a string column `<name>`, or the legacy pair `<name>_0`/`<name>_1`. */
function idAt(t: ParquetTable, name: string, i: number, file: string): string | null {
  const s = col(t, name);
  if (s) {
    const v = s[i];
    if (v === null || v === '') return null;
    return String(v).toLowerCase();
  }
  const a = col(t, `${name}_0`);
  const b = col(t, `${name}_1`);
  if (!a || !b) throw new OneError('cache-table', `${file}: no "${name}" column and no "${name}_0"/"${name}_1" pair`);
  if (a[i] === null || b[i] === null) return null;
  return uuidFromInt64Pair(a[i] as string, b[i] as string);
}

function str(v: unknown): string {
  return v === null || v === undefined ? '' : String(v);
}

function num(v: unknown): number | null {
  if (v === null || v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** Reads sessions.pqt; rows without a usable date or subject are errors naming the file and row. */
export async function readSessionsTable(file: string): Promise<{ layout: CacheLayout; sessions: SessionRecord[] }> {
  const t = await readParquet(file, { int64AsString: ID_PAIRS });
  const layout: CacheLayout = t.columns.id_0 ? 'legacy' : 'current';
  const projectsCol = col(t, 'projects') ?? col(t, 'project');
  const sessions: SessionRecord[] = [];
  for (let i = 0; i < t.numRows; i++) {
    const eid = idAt(t, 'id', i, file);
    const lab = str(col(t, 'lab')?.[i]);
    const subject = str(col(t, 'subject')?.[i]);
    const date = str(col(t, 'date')?.[i]).slice(0, 10);
    const number = num(col(t, 'number')?.[i]) ?? 1;
    if (!subject || !/^\d{4}-\d{2}-\d{2}$/.test(date)) {
      throw new OneError('cache-table', `${file}: row ${i} has no usable subject/date (subject ${JSON.stringify(subject)}, date ${JSON.stringify(date)})`);
    }
    // The parts become folders of the cache: a table written elsewhere must not lead outside it.
    checkSessionParts({ lab, subject, date, number }, `${file}: row ${i}`);
    // pandas writes a missing project as the string 'None'.
    const projectsRaw = str(projectsCol?.[i]);
    const projects = projectsRaw && projectsRaw !== 'None' ? projectsRaw.split(',').map((p) => p.trim()).filter(Boolean) : [];
    sessions.push({
      eid: eid && isUuid(eid) ? eid : null,
      lab,
      subject,
      date,
      number,
      projects,
      taskProtocol: str(col(t, 'task_protocol')?.[i]),
      relativePath: sessionRelPath({ lab, subject, date, number }),
    });
  }
  return { layout, sessions };
}

/** Reads datasets.pqt. Legacy tables also carry session_path, returned for rows whose eid is missing. */
export async function readDatasetsTable(file: string): Promise<{ layout: CacheLayout; datasets: (CacheDataset & { sessionPath?: string })[] }> {
  const t = await readParquet(file, { int64AsString: ID_PAIRS });
  const layout: CacheLayout = t.columns.id_0 ? 'legacy' : 'current';
  const rel = col(t, 'rel_path');
  if (!rel) throw new OneError('cache-table', `${file}: no "rel_path" column (columns: ${t.columnNames.join(', ')})`);
  const datasets: (CacheDataset & { sessionPath?: string })[] = [];
  for (let i = 0; i < t.numRows; i++) {
    const eid = idAt(t, 'eid', i, file);
    if (!eid) continue;
    const defaultRevision = col(t, 'default_revision')?.[i];
    const row: CacheDataset & { sessionPath?: string } = {
      eid,
      id: idAt(t, 'id', i, file),
      relativePath: str(rel[i]),
      size: num(col(t, 'file_size')?.[i]),
      hash: str(col(t, 'hash')?.[i]) || null,
      exists: col(t, 'exists')?.[i] !== false,
      defaultRevision: defaultRevision === undefined || defaultRevision === null ? true : Boolean(defaultRevision),
    };
    const qc = col(t, 'qc')?.[i];
    if (qc !== undefined && qc !== null) row.qc = String(qc);
    const sp = col(t, 'session_path')?.[i];
    if (sp) row.sessionPath = String(sp);
    datasets.push(row);
  }
  return { layout, datasets };
}

/**
 * Loads `<dir>/sessions.pqt` and `<dir>/datasets.pqt`; undefined when there is no sessions table.
 * Sessions the datasets table knows only by session_path (legacy tables) are added from it.
 */
export async function loadCacheTables(dir: string): Promise<CacheTables | undefined> {
  const sFile = join(dir, 'sessions.pqt');
  const dFile = join(dir, 'datasets.pqt');
  if (!(await isFile(sFile))) return undefined;
  const { layout, sessions } = await readSessionsTable(sFile);
  let datasets: CacheDataset[] = [];
  if (await isFile(dFile)) {
    const d = await readDatasetsTable(dFile);
    const known = new Set(sessions.map((s) => s.eid));
    for (const row of d.datasets) {
      if (row.sessionPath && !known.has(row.eid)) {
        const m = parseSessionPath(row.sessionPath);
        if (m) {
          sessions.push({ eid: row.eid, lab: m.lab, subject: m.subject, date: m.date, number: m.number, projects: [], taskProtocol: '', relativePath: sessionRelPath(m) });
          known.add(row.eid);
        }
      }
      delete row.sessionPath;
    }
    datasets = d.datasets;
  }
  return { dir, layout, sessions, datasets };
}

/**
 * Writes both tables in the current ONE layout (string ids, rel_path relative to the session)
 * with the footer metadata ONE looks for (`date_created`), atomically.
 */
export async function writeCacheTables(dir: string, sessions: SessionRecord[], datasets: CacheDataset[], origin = 'mtm-flow'): Promise<void> {
  const now = new Date();
  const created = `${now.toISOString().slice(0, 10)} ${now.toISOString().slice(11, 16)}`;
  const metadata = { one_metadata: JSON.stringify({ date_created: created, origin, min_api_version: '3.0.0' }) };
  const withEid = sessions.filter((s): s is SessionRecord & { eid: string } => s.eid !== null);
  await writeParquet(
    join(dir, 'sessions.pqt'),
    {
      id: { type: 'STRING', data: withEid.map((s) => s.eid) },
      lab: { type: 'STRING', data: withEid.map((s) => s.lab) },
      subject: { type: 'STRING', data: withEid.map((s) => s.subject) },
      date: { type: 'STRING', data: withEid.map((s) => s.date) },
      number: { type: 'INT32', data: withEid.map((s) => s.number) },
      task_protocol: { type: 'STRING', data: withEid.map((s) => s.taskProtocol) },
      projects: { type: 'STRING', data: withEid.map((s) => s.projects.join(',')) },
    },
    { metadata },
  );
  await writeParquet(
    join(dir, 'datasets.pqt'),
    {
      eid: { type: 'STRING', data: datasets.map((d) => d.eid) },
      id: { type: 'STRING', data: datasets.map((d) => d.id) },
      rel_path: { type: 'STRING', data: datasets.map((d) => d.relativePath) },
      file_size: { type: 'INT64', data: datasets.map((d) => d.size) },
      hash: { type: 'STRING', data: datasets.map((d) => d.hash) },
      exists: { type: 'BOOLEAN', data: datasets.map((d) => d.exists) },
      qc: { type: 'STRING', data: datasets.map((d) => d.qc ?? 'NOT_SET') },
      default_revision: { type: 'BOOLEAN', data: datasets.map((d) => d.defaultRevision) },
    },
    { metadata },
  );
}

/**
 * Adds or replaces sessions (by eid) and datasets (by eid + path) in the tables of `dir`,
 * reading whichever layout is there and writing the current one.
 */
export async function mergeIntoCacheTables(dir: string, sessions: SessionRecord[], datasets: CacheDataset[]): Promise<void> {
  const old = await loadCacheTables(dir);
  const sById = new Map<string, SessionRecord>();
  for (const s of old?.sessions ?? []) if (s.eid) sById.set(s.eid, s);
  for (const s of sessions) if (s.eid) sById.set(s.eid, s);
  const key = (d: CacheDataset) => `${d.eid}/${d.relativePath}`;
  const dByKey = new Map<string, CacheDataset>();
  for (const d of old?.datasets ?? []) dByKey.set(key(d), d);
  for (const d of datasets) dByKey.set(key(d), d);
  await writeCacheTables(dir, [...sById.values()], [...dByKey.values()]);
}

/**
 * Session folders under a cache with no tables: `<lab>/Subjects/<subject>/<date>/<NNN>`.
 * Their eid is unknown (null).
 */
export async function scanSessionFolders(dir: string): Promise<SessionRecord[]> {
  const out: SessionRecord[] = [];
  const list = async (p: string) => {
    try {
      return (await readdir(p, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
    } catch {
      return [];
    }
  };
  for (const lab of await list(dir)) {
    const subjectsDir = join(dir, lab, 'Subjects');
    for (const subject of await list(subjectsDir)) {
      for (const date of (await list(join(subjectsDir, subject))).filter((d) => /^\d{4}-\d{2}-\d{2}$/.test(d))) {
        for (const n of (await list(join(subjectsDir, subject, date))).filter((x) => /^\d{1,3}$/.test(x))) {
          const number = Number(n);
          out.push({ eid: null, lab, subject, date, number, projects: [], taskProtocol: '', relativePath: `${lab}/Subjects/${subject}/${date}/${n}` });
        }
      }
    }
  }
  return out;
}

