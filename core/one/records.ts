// What the ONE client returns: sessions, probe insertions and datasets, from Alyx REST answers (docs/method.md §2.1).
import { join } from 'node:path';
import { checkPathPart, checkRelPath, checkSessionParts, datasetPathFromUrl, isInside, joinDatasetPath, removeUuidFromName, sessionRelPath, splitDatasetPath } from './alf-path.ts';
import { OneError } from './errors.ts';
import { uuidFromUrl } from './uuid.ts';

export interface SessionRecord {
  /** null for a session found only as a folder (no cache table names it). */
  eid: string | null;
  lab: string;
  subject: string;
  /** YYYY-MM-DD */
  date: string;
  number: number;
  projects: string[];
  taskProtocol: string;
  /** `<lab>/Subjects/<subject>/<date>/<NNN>` inside the cache. */
  relativePath: string;
}

export interface InsertionRecord {
  /** null when found only as a folder (local mode). */
  id: string | null;
  /** Probe name, e.g. 'probe00'. */
  name: string;
  /** eid of the session. */
  session: string | null;
  model?: string;
}

export interface DatasetRecord {
  id: string | null;
  eid: string | null;
  /** File name without the dataset uuid, e.g. 'spikes.times.npy'. */
  name: string;
  collection: string;
  /** '' for the default, unrevised copy. */
  revision: string;
  /** Path inside the session folder: `<collection>/#<revision>#/<name>`. */
  relativePath: string;
  size: number | null;
  /** md5 hex, when the database has one. */
  hash: string | null;
  /** Where the file server has it; null when no file record is reachable. */
  url: string | null;
  /** The file is in the local cache (right size when known). */
  exists: boolean;
  /** Alyx's default_dataset flag: the copy to use when several revisions exist. */
  defaultRevision: boolean;
  /** Absolute path the file has (or will have) in the cache. */
  path: string;
}

/** Alyx `/sessions` list item (SessionList in the OpenAPI schema). */
export interface RestSession {
  id: string;
  lab: string;
  subject: string;
  start_time: string | null;
  number: number | null;
  projects?: string[] | string | null;
  task_protocol?: string | null;
}

/**
 * Converts one REST session. Its lab, subject, date and number become folders of the cache, so
 * each is checked (OneError 'unsafe-path' naming the field and value): a record must not be able
 * to place files outside the cache.
 */
export function sessionFromRest(s: RestSession): SessionRecord {
  const where = `session ${typeof s.id === 'string' ? s.id : JSON.stringify(s.id)} from the server`;
  if (typeof s.id !== 'string') throw new OneError('unsafe-path', `${where}: id is not a string`);
  const startTime = s.start_time ?? '';
  if (typeof startTime !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(startTime)) {
    throw new OneError('unsafe-path', `${where}: start_time ${JSON.stringify(String(startTime))} does not start with a date (YYYY-MM-DD)`);
  }
  const date = startTime.slice(0, 10);
  const number = s.number ?? 1;
  checkSessionParts({ lab: s.lab, subject: s.subject, date, number }, where, { lab: 'lab', subject: 'subject', date: 'start_time', number: 'number' });
  const projects = Array.isArray(s.projects) ? s.projects : typeof s.projects === 'string' && s.projects ? s.projects.split(',') : [];
  return {
    eid: s.id.toLowerCase(),
    lab: s.lab,
    subject: s.subject,
    date,
    number,
    projects,
    taskProtocol: s.task_protocol ?? '',
    relativePath: sessionRelPath({ lab: s.lab, subject: s.subject, date, number }),
  };
}

export interface RestInsertion {
  id: string;
  name: string;
  session?: string | null;
  session_info?: { id?: string } | null;
  model?: string | null;
}

export function insertionFromRest(r: RestInsertion): InsertionRecord {
  const session = uuidFromUrl(r.session ?? r.session_info?.id ?? null);
  const out: InsertionRecord = { id: r.id.toLowerCase(), name: r.name, session };
  if (r.model) out.model = r.model;
  return out;
}

export interface RestFileRecord {
  id?: string;
  data_repository?: string;
  data_url: string | null;
  exists: boolean;
  relative_path?: string;
}

/**
 * A dataset as Alyx gives it: either from `/datasets` (with `file_records`) or from a session's
 * or insertion's dataset list (with `data_url` directly).
 */
export interface RestDataset {
  id?: string;
  url?: string;
  name: string;
  collection?: string | null;
  revision?: string | null;
  session?: string | null;
  file_size?: number | null;
  hash?: string | null;
  default_dataset?: boolean;
  default_revision?: boolean;
  data_url?: string | null;
  file_records?: RestFileRecord[];
}

/**
 * Converts one REST dataset; `sessionDir` is the session's folder in the cache. Like ONE, the
 * file URL is the first file record that has one and exists; without it the dataset cannot be
 * fetched (url null).
 */
export function datasetFromRest(d: RestDataset, sessionDir: string, eid: string | null): DatasetRecord {
  let url: string | null = null;
  if (d.file_records) url = d.file_records.find((fr) => fr.data_url && fr.exists)?.data_url ?? null;
  else if (d.data_url) url = d.data_url;
  const where = `dataset ${JSON.stringify(d.id ?? d.url ?? d.name)} of ${sessionDir}`;
  let relativePath: string | undefined;
  if (url) relativePath = datasetPathFromUrl(url)?.relativePath;
  if (relativePath) checkRelPath('file URL', relativePath, where);
  else {
    // Each part of the path comes from the server; a record must not climb out of the session folder.
    checkRelPath('collection', d.collection ?? '', where, true);
    if (d.revision) checkPathPart('revision', d.revision, where);
    relativePath = joinDatasetPath({ collection: d.collection ?? '', revision: d.revision ?? '', name: checkPathPart('name', removeUuidFromName(d.name), where) });
  }
  const parts = splitDatasetPath(relativePath);
  const path = join(sessionDir, ...relativePath.split('/'));
  if (!isInside(sessionDir, path)) throw new OneError('unsafe-path', `${where}: ${path} is not inside the session folder`);
  return {
    id: uuidFromUrl(d.id ?? d.url ?? null),
    eid: eid ?? uuidFromUrl(d.session ?? null),
    name: parts.name,
    collection: parts.collection,
    revision: parts.revision || (d.revision ?? ''),
    relativePath,
    size: typeof d.file_size === 'number' ? d.file_size : null,
    hash: d.hash ?? null,
    url,
    exists: false,
    defaultRevision: d.default_dataset ?? d.default_revision ?? true,
    path,
  };
}
