// ALF paths in a ONE cache: <lab>/Subjects/<subject>/<date>/<number>/<collection>/#<revision>#/<file> (docs/method.md §2.1).
import { isAbsolute, join, relative, sep } from 'node:path';
import { OneError } from './errors.ts';

export interface SessionParts {
  /** Empty when the path has no `<lab>/Subjects/` prefix (allowed by ALF). */
  lab: string;
  subject: string;
  /** YYYY-MM-DD */
  date: string;
  number: number;
}

export interface SessionPathMatch extends SessionParts {
  /** The path up to and including the session's number folder. */
  sessionPath: string;
  /** What follows the session folder ('' for the folder itself), '/'-separated. */
  rest: string;
}

// Subject names may contain anything but a slash; dates and 1-3 digit numbers pin the session.
const SESSION_RE = /(^|\/)(?:([^/]+)\/Subjects\/)?([^/]+)\/(\d{4}-\d{2}-\d{2})\/(\d{1,3})(?=\/|$)/;

// Path parts come from the server (or a cache table someone else wrote) and become folders and
// files under the cache: each must be one plain name, never '.', '..', a separator, or a control
// character, so that no record can place a file outside the cache (docs/method.md §2.1).
// eslint-disable-next-line no-control-regex
const UNSAFE_PART = /[/\\\u0000-\u001f\u007f]/;

/** Throws OneError('unsafe-path') unless `value` is one safe folder or file name. */
export function checkPathPart(field: string, value: unknown, where: string): string {
  const ok = typeof value === 'string' && value !== '' && value !== '.' && value !== '..' && value.length <= 255 && !UNSAFE_PART.test(value) && value.trim() === value;
  if (!ok) throw new OneError('unsafe-path', `${where}: ${field} ${JSON.stringify(typeof value === 'string' ? value : String(value))} is not a safe folder or file name (one path part: no '/', '\\', '.', '..', control characters or surrounding spaces)`);
  return value as string;
}

/** Checks a '/'-separated path made of safe parts ('' allowed when `allowEmpty`). */
export function checkRelPath(field: string, value: unknown, where: string, allowEmpty = false): string {
  if (allowEmpty && value === '') return '';
  const bad = () => new OneError('unsafe-path', `${where}: ${field} ${JSON.stringify(String(value))} is not a safe relative path (parts separated by '/', none of them '', '.', '..' or holding '\\' or control characters)`);
  if (typeof value !== 'string' || value === '') throw bad();
  for (const part of value.split('/')) {
    try {
      checkPathPart(field, part, where);
    } catch {
      throw bad();
    }
  }
  return value;
}

/** Session path parts as ALF allows them: safe names, a YYYY-MM-DD date and a 0-999 number. */
export function checkSessionParts(p: { lab: unknown; subject: unknown; date: unknown; number: unknown }, where: string, fields = { lab: 'lab', subject: 'subject', date: 'date', number: 'number' }): void {
  if (p.lab !== '') checkPathPart(fields.lab, p.lab, where);
  checkPathPart(fields.subject, p.subject, where);
  if (typeof p.date !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(p.date)) {
    throw new OneError('unsafe-path', `${where}: ${fields.date} ${JSON.stringify(String(p.date))} is not a date (YYYY-MM-DD)`);
  }
  if (typeof p.number !== 'number' || !Number.isInteger(p.number) || p.number < 0 || p.number > 999) {
    throw new OneError('unsafe-path', `${where}: ${fields.number} ${JSON.stringify(String(p.number))} is not a session number (an integer 0-999)`);
  }
}

/** True when `path` lies strictly inside `dir`. */
export function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

export function padNumber(n: number): string {
  return String(n).padStart(3, '0');
}

/** `<lab>/Subjects/<subject>/<date>/<NNN>`, '/'-separated, as ONE lays out its cache. */
export function sessionRelPath(p: SessionParts): string {
  const tail = `${p.subject}/${p.date}/${padNumber(p.number)}`;
  return p.lab ? `${p.lab}/Subjects/${tail}` : tail;
}

export function sessionFolder(cacheDir: string, p: SessionParts): string {
  return join(cacheDir, ...sessionRelPath(p).split('/'));
}

/** Finds the session part of a path (file system path or URL path); undefined when none. */
export function parseSessionPath(path: string): SessionPathMatch | undefined {
  const posix = sep === '\\' ? path.replace(/\\/g, '/') : path;
  const m = SESSION_RE.exec(posix);
  if (!m) return undefined;
  const end = m.index + m[0].length;
  return {
    lab: m[2] ?? '',
    subject: m[3],
    date: m[4],
    number: Number(m[5]),
    sessionPath: posix.slice(0, end),
    rest: posix.slice(end).replace(/^\/+/, ''),
  };
}

const UUID_IN_NAME = /\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=\.[^.]+$)/i;

/** File servers name files `<object>.<attribute>.<dataset uuid>.<ext>`; the cache drops the uuid. */
export function removeUuidFromName(name: string): string {
  return name.replace(UUID_IN_NAME, '');
}

export interface DatasetPathParts {
  collection: string;
  /** Without the surrounding '#'; '' for the default (unrevised) dataset. */
  revision: string;
  name: string;
}

/** Splits a path relative to the session folder into collection, revision and file name. */
export function splitDatasetPath(relPath: string): DatasetPathParts {
  const parts = relPath.split('/').filter(Boolean);
  const name = parts.pop() ?? '';
  let revision = '';
  const last = parts[parts.length - 1];
  if (last && /^#.+#$/.test(last)) {
    revision = last.slice(1, -1);
    parts.pop();
  }
  return { collection: parts.join('/'), revision, name };
}

export function joinDatasetPath(p: DatasetPathParts): string {
  return [p.collection, p.revision ? `#${p.revision}#` : '', p.name].filter(Boolean).join('/');
}

/**
 * The session and the path inside it of a file URL as served by IBL's file server, e.g.
 * `.../cortexlab/Subjects/KS005/2019-04-01/001/alf/_ibl_wheel.timestamps.<uuid>.npy`.
 */
export function datasetPathFromUrl(url: string): { session: SessionParts; relativePath: string } | undefined {
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(url).pathname);
  } catch {
    return undefined;
  }
  const m = parseSessionPath(pathname);
  if (!m || !m.rest) return undefined;
  const parts = m.rest.split('/');
  parts[parts.length - 1] = removeUuidFromName(parts[parts.length - 1]);
  return { session: { lab: m.lab, subject: m.subject, date: m.date, number: m.number }, relativePath: parts.join('/') };
}
