// A loopback Alyx + file server for tests: replays IBL's real REST responses, serves generated files
// with their md5, and injects faults (5xx, 429, dropped connections, bad checksums, expired tokens) (docs/method.md §2.1).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { padNumber, splitDatasetPath } from '../alf-path.ts';
import { readSessionsTable } from '../cache-tables.ts';
import type { RestDataset, RestSession } from '../records.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** IBL's ONE test fixtures, as CI lays them out beside the repository. */
export const ONE_FIXTURES = resolve(REPO_ROOT, '..', 'shared', 'fixtures', 'ONE', 'one', 'tests', 'fixtures');
export const REST_FIXTURES = join(ONE_FIXTURES, 'rest_responses');

export interface Fault {
  /** Requests it applies to: a substring of, or a pattern on, the path with its query. */
  match: string | RegExp;
  method?: string;
  /** Answer with this status (and `body` as JSON) instead of serving. */
  status?: number;
  body?: unknown;
  /** With status 429/503: the Retry-After header, in seconds. */
  retryAfterS?: number;
  /** Destroy the connection without answering (the client sees ECONNRESET / "other side closed"). */
  reset?: boolean;
  /** File route: send the headers and this many bytes, then destroy the socket. */
  dropAfterBytes?: number;
  /** File route: serve the file with one byte changed (same size, wrong md5). */
  corrupt?: boolean;
  /** File route: answer 200 with the whole file even to a Range request. */
  ignoreRange?: boolean;
  /** File route: send the file this many times over (a server that sends more than it announces). */
  oversize?: number;
  /** File route, with `oversize`: announce the inflated length in Content-Length (default: chunked, no length). */
  announceOversize?: boolean;
  /** File route: send one byte every this many ms (a trickle that never goes silent). */
  trickleMs?: number;
  /** Answer 302 to this same URL (a redirect loop). */
  redirectLoop?: boolean;
  /** Wait this long before answering. */
  delayMs?: number;
  /** How many matching requests it applies to (default 1; Infinity for all). */
  times?: number;
}

export interface RequestLogEntry {
  method: string;
  /** Path with query. */
  url: string;
  status: number;
  /** The Range header, when sent. */
  range?: string;
  /** The Authorization header the client sent, if any. */
  authorization?: string;
  /** Body bytes written (file route). */
  bytesSent: number;
  fault?: boolean;
}

export interface GeneratedFile {
  /** Inside the session: `<collection>/[#rev#/]<name>`. */
  relativePath: string;
  bytes: Uint8Array;
  /** What the database says; default: the true md5 and size. null: the database does not know. */
  hash?: string | null;
  size?: number | null;
  defaultRevision?: boolean;
}

export interface GeneratedSession {
  eid?: string;
  lab: string;
  subject: string;
  date: string;
  number: number;
  projects?: string[];
  taskProtocol?: string;
  files: GeneratedFile[];
}

export interface AlyxServerOptions {
  username?: string;
  password?: string;
  /** Results per page when the client sends no `limit`. */
  pageSize?: number;
  /** Requests after which the server answers 503 to everything (a runaway client shows in the test). */
  maxRequests?: number;
  /** Seed /sessions from the real legacy sessions.pqt (default true). */
  seedSessions?: boolean;
}

export interface AlyxServer {
  url: string;
  username: string;
  password: string;
  requests: RequestLogEntry[];
  /** Tokens handed out by /auth-token, oldest first. */
  tokens: string[];
  inject(f: Fault): void;
  /** Every token issued so far becomes invalid: Alyx then answers 403 {"detail":"Invalid token."}. */
  expireTokens(): void;
  addSession(s: GeneratedSession): { eid: string; datasets: RestDataset[] };
  /** Serves bytes at /files/<path>. */
  addFile(path: string, bytes: Uint8Array): string;
  sessions: RestSession[];
  datasets: RestDataset[];
  /** Most requests open at once since the last reset. */
  maxInFlight(): number;
  resetInFlight(): void;
  close(): Promise<void>;
}

function md5(b: Uint8Array): string {
  return createHash('md5').update(b).digest('hex');
}

function sha1(s: string): string {
  return createHash('sha1').update(s).digest('hex');
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Everything one server holds: its settings, the replayed fixtures, what tests added, and what it saw. */
interface ServerState {
  username: string;
  password: string;
  pageSize: number;
  maxRequests: number;
  replay: Map<string, unknown>;
  openapi: string;
  sessions: RestSession[];
  datasets: RestDataset[];
  insertions: { id: string; name: string; session: string; model?: string; session_info?: unknown }[];
  files: Map<string, Uint8Array>;
  faults: (Fault & { left: number })[];
  valid: Set<string>;
  expired: Set<string>;
  tokens: string[];
  requests: RequestLogEntry[];
  /** The server's own address, set once it listens. */
  base: string;
  inFlight: number;
  inFlightMax: number;
}

export async function startAlyxServer(opts: AlyxServerOptions = {}): Promise<AlyxServer> {
  const st: ServerState = {
    username: opts.username ?? 'test_user',
    password: opts.password ?? `pw-${randomBytes(6).toString('hex')}`,
    pageSize: opts.pageSize ?? 10,
    maxRequests: opts.maxRequests ?? 1000,
    ...loadReplay(),
    sessions: [],
    datasets: [],
    insertions: [],
    files: new Map(),
    faults: [],
    valid: new Set(),
    expired: new Set(),
    tokens: [],
    requests: [],
    base: '',
    inFlight: 0,
    inFlightMax: 0,
  };
  await seedFromFixtures(st, opts.seedSessions ?? true);
  const server: Server = createServer((req, res) => handleRequest(st, req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  st.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: st.base,
    username: st.username,
    password: st.password,
    requests: st.requests,
    tokens: st.tokens,
    sessions: st.sessions,
    datasets: st.datasets,
    maxInFlight: () => st.inFlightMax,
    resetInFlight() {
      st.inFlightMax = st.inFlight;
    },
    inject(f) {
      st.faults.push({ ...f, left: f.times ?? 1 });
    },
    expireTokens() {
      for (const t of st.valid) st.expired.add(t);
    },
    addFile: (path, bytes) => addFile(st, path, bytes),
    addSession: (s) => addSession(st, s),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Real responses, keyed as ONE's REST cache keys them: sha1 of the request path with its query; and the OpenAPI schema. */
function loadReplay(): { replay: Map<string, unknown>; openapi: string } {
  const replay = new Map<string, unknown>();
  for (const name of readdirSync(REST_FIXTURES)) {
    if (!/^[0-9a-f]{40}$/.test(name)) continue;
    const [response] = JSON.parse(readFileSync(join(REST_FIXTURES, name), 'utf8')) as [unknown, string];
    replay.set(name, response);
  }
  const openapi = readFileSync(join(REST_FIXTURES, 'openapiv3.json'), 'utf8');
  return { replay, openapi };
}

/** Fills /sessions from the real sessions.pqt (when asked), /datasets from the real page and /insertions from the real detail. */
async function seedFromFixtures(st: ServerState, seedSessions: boolean): Promise<void> {
  const { sessions, datasets, insertions, replay } = st;
  if (seedSessions) {
    const { sessions: rows } = await readSessionsTable(join(ONE_FIXTURES, 'sessions.pqt'));
    for (const s of rows) {
      sessions.push({ id: s.eid!, lab: s.lab, subject: s.subject, start_time: `${s.date}T10:00:00`, number: s.number, projects: s.projects, task_protocol: s.taskProtocol });
    }
  }
  // The real /datasets page: its session (KS005 2019-04-01) is in sessions.pqt.
  const page = replay.get('6dc96f7e9bcc6ac2e7581489b9580a6cd3f28293') as { results: RestDataset[] } | undefined;
  if (page) datasets.push(...page.results);
  // The real insertion detail, as a list item.
  const ins = replay.get(sha1('/insertions/b529f2d8-cdae-4d59-aba2-cbd1b5572e36')) as
    | { id: string; name: string; session: string; model: string; session_info: RestSession }
    | undefined;
  if (ins) {
    insertions.push({ id: ins.id, name: ins.name, session: ins.session, model: ins.model, session_info: ins.session_info });
    if (!sessions.some((s) => s.id === ins.session)) sessions.push({ ...ins.session_info });
  }
}

function send(res: ServerResponse, log: RequestLogEntry, status: number, body: unknown, headers: Record<string, string> = {}): void {
  log.status = status;
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** One page of `rows` as Alyx pages them (limit/offset, absolute next/previous links). */
function paginate(st: ServerState, res: ServerResponse, log: RequestLogEntry, url: URL, rows: unknown[]): void {
  const limit = Math.max(1, Number(url.searchParams.get('limit') ?? st.pageSize));
  const offset = Math.max(0, Number(url.searchParams.get('offset') ?? 0));
  const link = (o: number) => {
    const u = new URL(url.toString());
    u.searchParams.set('limit', String(limit));
    u.searchParams.set('offset', String(o));
    return `${st.base}${u.pathname}${u.search}`;
  };
  send(res, log, 200, {
    count: rows.length,
    next: offset + limit < rows.length ? link(offset + limit) : null,
    previous: offset > 0 ? link(Math.max(0, offset - limit)) : null,
    results: rows.slice(offset, offset + limit),
  });
}

const sessionOf = (d: RestDataset) => (d.session ?? '').slice(-36);
const fileName = (d: RestDataset) => d.name;

/** Every request: counted in flight, logged, then faulted or served. */
async function handleRequest(st: ServerState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  st.inFlight++;
  st.inFlightMax = Math.max(st.inFlightMax, st.inFlight);
  let counted = true;
  const done = () => {
    if (counted) st.inFlight--;
    counted = false;
  };
  res.once('close', done);
  const url = new URL(req.url ?? '/', 'http://loopback');
  const log: RequestLogEntry = { method: req.method ?? 'GET', url: url.pathname + url.search, status: 0, bytesSent: 0 };
  if (req.headers.range) log.range = req.headers.range;
  if (req.headers.authorization) log.authorization = req.headers.authorization;
  st.requests.push(log);
  const body = await readBody(req);
  if (st.requests.length > st.maxRequests) return send(res, log, 503, { detail: `loopback server: more than ${st.maxRequests} requests` });
  const fault = takeFault(st, req, log);
  if (fault?.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
  if (res.destroyed) return;
  if (fault && answeredByFault(req, res, log, fault)) return;
  if (url.pathname.startsWith('/files/')) return handleFile(st, req, res, log, decodeURIComponent(url.pathname.slice('/files/'.length)), fault);
  handleRest(st, req, res, log, url, body);
}

/** The first injected fault that matches this request, used up by one. */
function takeFault(st: ServerState, req: IncomingMessage, log: RequestLogEntry): (Fault & { left: number }) | undefined {
  const fault = st.faults.find(
    (f) => f.left > 0 && (!f.method || f.method === req.method) && (typeof f.match === 'string' ? log.url.includes(f.match) : f.match.test(log.url)),
  );
  if (fault) {
    fault.left--;
    log.fault = true;
  }
  return fault;
}

/** Applies a fault that replaces the answer (reset, redirect loop, injected status); false when the fault leaves serving to the routes. */
function answeredByFault(req: IncomingMessage, res: ServerResponse, log: RequestLogEntry, fault: Fault): boolean {
  if (fault.reset) {
    log.status = -1;
    req.socket.destroy();
    return true;
  }
  if (fault.redirectLoop) {
    log.status = 302;
    res.writeHead(302, { Location: req.url ?? '/' });
    res.end();
    return true;
  }
  if (fault.status) {
    const headers: Record<string, string> = {};
    if (fault.retryAfterS !== undefined) headers['Retry-After'] = String(fault.retryAfterS);
    send(res, log, fault.status, fault.body ?? { detail: `injected ${fault.status}` }, headers);
    return true;
  }
  return false;
}

/** The REST routes: /auth-token, the token check, replayed responses, the schema, and the three list endpoints. */
function handleRest(st: ServerState, req: IncomingMessage, res: ServerResponse, log: RequestLogEntry, url: URL, body: string): void {
  if (url.pathname === '/auth-token' && req.method === 'POST') return authToken(st, req, res, log, body);
  const auth = req.headers.authorization ?? '';
  const m = /^Token (\S+)$/.exec(auth);
  if (!m) return send(res, log, 401, { detail: 'Authentication credentials were not provided.' });
  if (!st.valid.has(m[1]) || st.expired.has(m[1])) return send(res, log, 403, { detail: 'Invalid token.' });

  const key = sha1(url.pathname + url.search);
  if (req.method === 'GET' && st.replay.has(key)) return send(res, log, 200, st.replay.get(key));
  if (req.method === 'GET' && url.pathname === '/api/schema') return send(res, log, 200, st.openapi);

  const q = url.searchParams;
  const route = url.pathname.replace(/\/$/, '');
  if (req.method === 'GET' && route === '/sessions') return paginate(st, res, log, url, st.sessions.filter((s) => sessionMatches(st, s, q)));
  if (req.method === 'GET' && route === '/insertions') {
    const rows = st.insertions.filter((i) => !q.get('session') || i.session === q.get('session'));
    return paginate(st, res, log, url, rows);
  }
  if (req.method === 'GET' && route === '/datasets') {
    const exists = q.get('exists');
    const rows = st.datasets.filter((d) => {
      if (q.get('session') && sessionOf(d) !== q.get('session')) return false;
      if (exists === 'True' && !(d.file_records ?? []).some((fr) => fr.exists)) return false;
      return true;
    });
    return paginate(st, res, log, url, rows);
  }
  return send(res, log, 404, { detail: 'Not found.' });
}

/** POST /auth-token: a new token for the right username and password (JSON or form body), else Alyx's 400. */
function authToken(st: ServerState, req: IncomingMessage, res: ServerResponse, log: RequestLogEntry, body: string): void {
  let creds: Record<string, string> = {};
  try {
    creds = req.headers['content-type']?.includes('json') ? JSON.parse(body) : Object.fromEntries(new URLSearchParams(body));
  } catch {
    /* bad body: refused below */
  }
  if (creds.username === st.username && creds.password === st.password) {
    const token = randomBytes(20).toString('hex');
    st.valid.add(token);
    st.tokens.push(token);
    return send(res, log, 200, { token });
  }
  return send(res, log, 400, { non_field_errors: ['Unable to log in with provided credentials.'] });
}

/** Whether a session passes the /sessions filters Alyx supports: id, subject, lab, number, date_range, project(s), datasets. */
function sessionMatches(st: ServerState, s: RestSession, q: URLSearchParams): boolean {
  const [from, to] = (q.get('date_range') ?? '').split(',');
  const project = q.get('project') ?? q.get('projects');
  const need = (q.get('datasets') ?? '').split(',').filter(Boolean);
  const date = (s.start_time ?? '').slice(0, 10);
  const projects = Array.isArray(s.projects) ? s.projects : [];
  if (q.get('id') && s.id !== q.get('id')) return false;
  if (q.get('subject') && s.subject !== q.get('subject')) return false;
  if (q.get('lab') && s.lab !== q.get('lab')) return false;
  if (q.get('number') && String(s.number) !== q.get('number')) return false;
  if (from && (date < from || date > (to || from))) return false;
  if (project && !projects.some((p) => p.toLowerCase().includes(project.toLowerCase()))) return false;
  if (need.length) {
    const have = new Set(st.datasets.filter((d) => sessionOf(d) === s.id).map(fileName));
    if (!need.every((n) => have.has(n))) return false;
  }
  return true;
}

/** The file route: serves a file with Range support, or misbehaves as the fault says. */
function handleFile(st: ServerState, req: IncomingMessage, res: ServerResponse, log: RequestLogEntry, path: string, fault?: Fault): void {
  const bytes = st.files.get(path);
  if (!bytes) return send(res, log, 404, 'not found');
  let data = Buffer.from(bytes);
  if (fault?.corrupt) {
    data = Buffer.from(data);
    data[data.length >> 1] ^= 0xff;
  }
  let start = 0;
  let status = 200;
  const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes' };
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  let end = data.length - 1;
  if (range && !fault?.ignoreRange) {
    start = Number(range[1]);
    if (range[2]) end = Math.min(end, Number(range[2]));
    if (start >= data.length) {
      log.status = 416;
      res.writeHead(416, { 'Content-Range': `bytes */${data.length}` });
      return void res.end();
    }
    status = 206;
    headers['Content-Range'] = `bytes ${start}-${end}/${data.length}`;
  }
  const body = data.subarray(start, end + 1);
  if (fault?.oversize) return sendOversize(res, log, status, headers, body, fault.oversize, fault.announceOversize);
  if (fault?.trickleMs) return sendTrickle(res, log, status, headers, body, fault.trickleMs);
  headers['Content-Length'] = String(body.length);
  log.status = status;
  res.writeHead(status, headers);
  if (fault?.dropAfterBytes !== undefined) {
    const n = Math.min(fault.dropAfterBytes, body.length);
    log.bytesSent = n;
    res.write(body.subarray(0, n), () => setTimeout(() => req.socket.destroy(), 20));
    return;
  }
  log.bytesSent = body.length;
  res.end(body);
}

/** Sends `body` `times` over in 1 KiB writes, announcing the inflated length only when asked. */
function sendOversize(res: ServerResponse, log: RequestLogEntry, status: number, headers: Record<string, string>, body: Buffer, times: number, announce?: boolean): void {
  const big = Buffer.concat(Array.from({ length: times }, () => body));
  if (announce) headers['Content-Length'] = String(big.length);
  log.status = status;
  res.writeHead(status, headers);
  const step = 1024;
  const pump = (at: number) => {
    if (at >= big.length || res.destroyed) return res.end();
    log.bytesSent += Math.min(step, big.length - at);
    res.write(big.subarray(at, at + step), () => setImmediate(() => pump(at + step)));
  };
  pump(0);
}

/** Sends `body` one byte every `everyMs` until done or the client goes away. */
function sendTrickle(res: ServerResponse, log: RequestLogEntry, status: number, headers: Record<string, string>, body: Buffer, everyMs: number): void {
  log.status = status;
  res.writeHead(status, headers);
  let at = 0;
  const timer = setInterval(() => {
    if (res.destroyed || at >= body.length) {
      clearInterval(timer);
      if (!res.destroyed) res.end();
      return;
    }
    log.bytesSent++;
    res.write(body.subarray(at, ++at));
  }, everyMs);
  res.once('close', () => clearInterval(timer));
}

/** Serves bytes at /files/<path>; returns their URL. */
function addFile(st: ServerState, path: string, bytes: Uint8Array): string {
  st.files.set(path, bytes);
  return `${st.base}/files/${path.split('/').map(encodeURIComponent).join('/')}`;
}

/** Adds a session with its files served and listed as Alyx lists datasets, and one insertion per probe collection. */
function addSession(st: ServerState, s: GeneratedSession): { eid: string; datasets: RestDataset[] } {
  const eid = s.eid ?? randomUUID();
  st.sessions.push({ id: eid, lab: s.lab, subject: s.subject, start_time: `${s.date}T12:00:00`, number: s.number, projects: s.projects ?? [], task_protocol: s.taskProtocol ?? '' });
  const sessionRel = `${s.subject}/${s.date}/${padNumber(s.number)}`;
  const made: RestDataset[] = [];
  const probes = new Set<string>();
  for (const f of s.files) {
    const d = addDataset(st, s, eid, sessionRel, f);
    const probe = /^alf\/(probe\w*)/.exec(d.collection ?? '')?.[1];
    if (probe) probes.add(probe);
    st.datasets.push(d);
    made.push(d);
  }
  for (const name of [...probes].sort()) st.insertions.push({ id: randomUUID(), name, session: eid, model: '3B2' });
  return { eid, datasets: made };
}

/** Serves one generated file under its dataset-id name and returns its dataset record. */
function addDataset(st: ServerState, s: GeneratedSession, eid: string, sessionRel: string, f: GeneratedFile): RestDataset & Record<string, unknown> {
  const did = randomUUID();
  const parts = splitDatasetPath(f.relativePath);
  const dot = parts.name.lastIndexOf('.');
  const served = `${parts.name.slice(0, dot)}.${did}${parts.name.slice(dot)}`;
  const dirs = f.relativePath.split('/').slice(0, -1);
  const dataUrl = addFile(st, `${s.lab}/Subjects/${sessionRel}/${[...dirs, served].join('/')}`, f.bytes);
  return {
    url: `${st.base}/datasets/${did}`,
    name: parts.name,
    dataset_type: parts.name.split('.').slice(0, -1).join('.'),
    collection: parts.collection,
    revision: parts.revision || null,
    session: `${st.base}/sessions/${eid}`,
    file_size: f.size === undefined ? f.bytes.length : f.size,
    hash: f.hash === undefined ? md5(f.bytes) : f.hash,
    default_dataset: f.defaultRevision ?? true,
    file_records: [
      { id: randomUUID(), data_repository: `flatiron_${s.lab}`, relative_path: `${sessionRel}/${f.relativePath}`, data_url: dataUrl, exists: true },
      { id: randomUUID(), data_repository: `${s.lab}_SR`, relative_path: `${sessionRel}/${f.relativePath}`, data_url: null, exists: false },
    ],
  };
}
