import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Writable } from 'node:stream';
import { statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import pino from 'pino';
import { tempDir } from '../testing.ts';
import { AlyxClient, buildQuery, type AlyxClientOptions } from './alyx.ts';
import { OneError } from './errors.ts';
import { startAlyxServer, type AlyxServer } from './testing/alyx-server.ts';

let server: AlyxServer;
const lines: string[] = [];
const capture = pino(
  { level: 'debug' },
  new Writable({
    write(chunk, _e, cb) {
      lines.push(String(chunk));
      cb();
    },
  }),
);

function client(over: Partial<AlyxClientOptions> = {}): AlyxClient {
  return new AlyxClient({
    baseUrl: server.url,
    username: server.username,
    password: server.password,
    tokenFile: join(tempDir('mtm-one-'), '.mtm-token.json'),
    timeoutMs: 2000,
    retries: 3,
    retryBaseMs: 5,
    retryMaxMs: 20,
    maxRetryAfterMs: 5000,
    logger: capture,
    ...over,
  });
}

const since = (n: number) => server.requests.slice(n);

test.before(async () => {
  server = await startAlyxServer({ pageSize: 10 });
});
test.after(async () => {
  await server.close();
});

test('query strings: lists comma-joined, booleans as Django reads them, empty values dropped', () => {
  assert.is(buildQuery({ date_range: ['2020-01-01', '2020-02-01'], exists: true, lab: undefined, x: null }), '?date_range=2020-01-01%2C2020-02-01&exists=True');
  assert.is(buildQuery({}), '');
});

test('logs in with POST /auth-token, sends "Token <t>", keeps the token in a 0600 file that a new client reuses', async () => {
  const dir = tempDir('mtm-one-');
  const tokenFile = join(dir, 'sub', '.mtm-token.json');
  const n0 = server.requests.length;
  const a = client({ tokenFile });
  const rows = await a.list<{ id: string }>('/sessions', { subject: 'KS005' });
  assert.ok(rows.length >= 1);
  const sent = since(n0);
  assert.is(sent[0].method, 'POST');
  assert.is(sent[0].url, '/auth-token');
  assert.is(sent[1].authorization, `Token ${server.tokens.at(-1)}`);
  assert.is(statSync(tokenFile).mode & 0o777, 0o600);
  const saved = JSON.parse(readFileSync(tokenFile, 'utf8'));
  assert.is(saved[server.url][server.username], server.tokens.at(-1));

  const n1 = server.requests.length;
  const b = client({ tokenFile });
  await b.get('/sessions', { subject: 'KS005' });
  assert.equal(since(n1).map((r) => r.url.split('?')[0]), ['/sessions'], 'no second login');
});

test('a wrong password is an auth error that names the user and not the password', async () => {
  const c = client({ password: 'not-the-password-123' });
  try {
    await c.get('/sessions');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, OneError);
    assert.is((e as OneError).code, 'auth');
    assert.match((e as Error).message, server.username);
    assert.not.match((e as Error).message, 'not-the-password-123');
  }
});

test('pagination follows next to the end; limit sets the page size; maxResults stops early', async () => {
  const c = client();
  await c.authenticate();
  let n = server.requests.length;
  const all = await c.list<{ id: string }>('/sessions');
  const total = server.sessions.length;
  assert.ok(total > 20, `server holds ${total} sessions`);
  assert.is(all.length, total);
  assert.is(new Set(all.map((s) => s.id)).size, total, 'no page read twice');
  assert.is(since(n).length, Math.ceil(total / 10));

  n = server.requests.length;
  const paged = await c.list<{ id: string }>('/sessions', {}, { pageSize: 4 });
  assert.equal(paged.map((s) => s.id), all.map((s) => s.id));
  const reqs = since(n);
  assert.is(reqs.length, Math.ceil(total / 4));
  assert.ok(reqs.every((r) => r.url.includes('limit=4')), 'every page asked with limit=4');

  n = server.requests.length;
  const few = await c.list('/sessions', {}, { pageSize: 4, maxResults: 7 });
  assert.is(few.length, 7);
  assert.is(since(n).length, 2);
});

test('real REST responses are replayed: GET /insertions/<id> and /datasets/<id>', async () => {
  const c = client();
  const ins = await c.get<{ name: string; session: string; datasets: unknown[] }>('/insertions/b529f2d8-cdae-4d59-aba2-cbd1b5572e36');
  assert.is(ins.name, 'probe00');
  assert.is(ins.session, 'fc737f3c-2a57-4165-9763-905413e7e341');
  assert.is(ins.datasets.length, 41);
  const ds = await c.get<{ name: string; hash: string }>('/datasets/0b305d2f-04dc-4ef1-be1c-db18931391ac');
  assert.is(ds.name, '_ibl_wheelMoves.peakAmplitude.npy');
  assert.is(ds.hash, '3bc0be50415804d65dd3547eaedc2ce6');
});

test('an expired token (403 "Invalid token.") logs in again once and repeats the request', async () => {
  const c = client();
  await c.authenticate();
  const old = server.tokens.at(-1);
  server.expireTokens();
  const n = server.requests.length;
  const rows = await c.list('/sessions', { subject: 'KS005' });
  assert.ok(rows.length >= 1);
  const r = since(n);
  assert.equal(r.map((x) => [x.method, x.url.split('?')[0], x.status]), [
    ['GET', '/sessions', 403],
    ['POST', '/auth-token', 200],
    ['GET', '/sessions', 200],
  ]);
  assert.is(r[0].authorization, `Token ${old}`);
  assert.is(r[2].authorization, `Token ${server.tokens.at(-1)}`);
});

test('a 401 also triggers one new login; a second rejection is an auth error, not a loop', async () => {
  const c = client();
  await c.authenticate();
  server.inject({ match: '/sessions?subject=ZM_335', status: 401, body: { detail: 'Authentication credentials were not provided.' } });
  assert.ok((await c.list('/sessions', { subject: 'ZM_335' })).length >= 1);

  server.inject({ match: '/sessions?subject=ZM_1898', status: 401, times: 2 });
  const n = server.requests.length;
  try {
    await c.list('/sessions', { subject: 'ZM_1898' });
    assert.unreachable();
  } catch (e) {
    assert.is((e as OneError).code, 'auth');
  }
  assert.is(since(n).length, 3, 'GET, login, GET');
});

test('5xx answers are retried with back-off and then succeed; past the retries the error says so', async () => {
  const c = client();
  await c.authenticate();
  server.inject({ match: '/sessions?lab=cortexlab', status: 502, times: 2 });
  const n = server.requests.length;
  const rows = await c.list('/sessions', { lab: 'cortexlab' });
  assert.ok(rows.length > 0);
  assert.equal(since(n).slice(0, 3).map((r) => r.status), [502, 502, 200]);

  server.inject({ match: '/sessions?lab=mainenlab', status: 500, times: Infinity });
  const m = server.requests.length;
  try {
    await c.list('/sessions', { lab: 'mainenlab' });
    assert.unreachable();
  } catch (e) {
    assert.is((e as OneError).status, 500);
    assert.match((e as Error).message, /HTTP 500.*after 4 attempts/);
  }
  assert.is(since(m).length, 4, '1 try + 3 retries');
});

test('429 with Retry-After waits as long as the server asks', async () => {
  const c = client();
  await c.authenticate();
  server.inject({ match: '/sessions?subject=KS005', status: 429, retryAfterS: 1 });
  const t0 = Date.now();
  await c.list('/sessions', { subject: 'KS005' });
  const waited = Date.now() - t0;
  assert.ok(waited >= 950, `waited ${waited} ms`);
  assert.ok(waited < 3000, `waited ${waited} ms`);
});

test('a Retry-After longer than allowed fails at once with a clear message', async () => {
  const c = client({ maxRetryAfterMs: 1000 });
  await c.authenticate();
  server.inject({ match: '/sessions?subject=KS005', status: 429, retryAfterS: 3600 });
  const t0 = Date.now();
  try {
    await c.list('/sessions', { subject: 'KS005' });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /asks to wait 3600 s/);
  }
  assert.ok(Date.now() - t0 < 500);
});

test('a connection reset and a timed-out request are retried', async () => {
  const c = client({ timeoutMs: 300 });
  await c.authenticate();
  server.inject({ match: '/sessions?subject=KS005', reset: true });
  const n = server.requests.length;
  assert.ok((await c.list('/sessions', { subject: 'KS005' })).length >= 1);
  assert.is(since(n).length, 2);

  server.inject({ match: '/sessions?subject=KS005', delayMs: 800 });
  const m = server.requests.length;
  assert.ok((await c.list('/sessions', { subject: 'KS005' })).length >= 1);
  assert.is(since(m).length, 2);

  server.inject({ match: '/sessions?subject=ZM_335', delayMs: 800, times: Infinity });
  try {
    await c.list('/sessions', { subject: 'ZM_335' });
    assert.unreachable();
  } catch (e) {
    assert.is((e as OneError).code, 'timeout');
    assert.match((e as Error).message, /timed out after 300 ms/);
  }
});

test('a closed port is a network error after the retries', async () => {
  const port = await new Promise<number>((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
  const c = client({ baseUrl: `http://127.0.0.1:${port}` });
  try {
    await c.get('/sessions');
    assert.unreachable();
  } catch (e) {
    assert.is((e as OneError).code, 'network');
    assert.match((e as Error).message, /ECONNREFUSED/);
    assert.match((e as Error).message, /after 4 attempt/);
  }
});

test('neither the password nor any token ever reaches the logs', async () => {
  assert.ok(lines.length > 20, `captured ${lines.length} log lines`);
  const all = lines.join('\n');
  assert.not.ok(all.includes(server.password), 'password in logs');
  for (const t of server.tokens) assert.not.ok(all.includes(t), 'token in logs');
  assert.ok(all.includes('Alyx request'), 'the requests were logged');
});

test.run();
