import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { lastValueFrom, take, toArray } from 'rxjs';
import type { SpikeTrains } from '../core/payloads.ts';
import { parseNpy } from '../core/io/npy.ts';
import { runStage, tempDir, testContext } from '../core/testing.ts';
import { tinySessionFiles, writeSessionFiles } from '../core/one/testing/alf-session.ts';
import { startAlyxServer, type AlyxServer } from '../core/one/testing/alyx-server.ts';
import { oneDownload, oneDownloadParams } from './one-download.ts';

let server: AlyxServer;
let closed: string;
const saved = { u: process.env.ONE_USERNAME, p: process.env.ONE_PASSWORD };
const files1 = tinySessionFiles({ probes: ['probe00', 'probe01'], sorter: 'pykilosort', seed: 11 });
const files2 = tinySessionFiles({ seed: 12, nSpikes: 250 });
let eid1: string;
let eid2: string;
const cache = tempDir('mtm-stage-one-');

const npy = (files: typeof files1, rel: string) => parseNpy(files.find((f) => f.relativePath === rel)!.bytes, rel).data;

test.before(async () => {
  server = await startAlyxServer({ seedSessions: false });
  // The stage has no credential params by design: they come from the environment or the config file.
  process.env.ONE_USERNAME = server.username;
  process.env.ONE_PASSWORD = server.password;
  eid1 = server.addSession({ lab: 'lab1', subject: 'A1', date: '2024-04-01', number: 1, projects: ['mtm'], files: files1 }).eid;
  eid2 = server.addSession({ lab: 'lab1', subject: 'A2', date: '2024-04-02', number: 1, projects: ['mtm'], files: files2 }).eid;
  const port = await new Promise<number>((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
  closed = `http://127.0.0.1:${port}`;
});
test.after(async () => {
  await server.close();
  process.env.ONE_USERNAME = saved.u;
  process.env.ONE_PASSWORD = saved.p;
  if (saved.u === undefined) delete process.env.ONE_USERNAME;
  if (saved.p === undefined) delete process.env.ONE_PASSWORD;
});

test('params: every field has a default and a description; local mode is the default', () => {
  const p = oneDownloadParams.parse({});
  assert.is(p.mode, 'local');
  assert.equal(p.sessions, []);
  assert.is(p.parallelDownloads, 4);
  assert.is(p.failFast, false);
  for (const [k, f] of Object.entries(oneDownloadParams.shape)) assert.ok((f as { description?: string }).description, k);
});

test('sessions are pulled on demand: taking one session downloads only that session', async () => {
  const ctx = testContext('one');
  const op = oneDownload.create(oneDownloadParams.parse({ mode: 'remote', baseUrl: server.url, cacheDir: tempDir('mtm-stage-one-'), sessions: [eid1, eid2] }), ctx);
  const before = server.requests.length;
  const out = op({}).sessions;
  assert.is(server.requests.length, before, 'nothing happens before subscription');
  const first = await lastValueFrom(out.pipe(take(1), toArray()));
  assert.is(first.length, 1);
  const fetched = server.requests.slice(before).filter((r) => r.url.startsWith('/files/'));
  assert.ok(fetched.length > 0);
  assert.ok(fetched.every((r) => r.url.includes('/A1/')), 'no file of the second session was fetched');
});

test('remote: downloads what the loader needs, verified, and emits one SpikeTrains per session', async () => {
  const ctx = testContext('one');
  const before = server.requests.length;
  const { sessions } = await runStage(oneDownload, { mode: 'remote', baseUrl: server.url, cacheDir: cache, sessions: [eid1, eid2] }, {}, ctx);
  const out = sessions as SpikeTrains[];
  assert.equal(out.map((s) => s.eid), [eid1, eid2]);
  assert.equal(out.map((s) => s.sessionId), [eid1, eid2]);
  assert.is(out[0].path, join(cache, 'lab1', 'Subjects', 'A1', '2024-04-01', '001'));
  assert.equal(out[0].probes.map((p) => p.probe), ['probe00', 'probe01']);
  assert.equal(Array.from(out[0].probes[1].times), Array.from(npy(files1, 'alf/probe01/pykilosort/spikes.times.npy') as Float64Array));
  assert.is(out[1].probes[0].times.length, 250);
  assert.is(out[1].trials.stimOn_times.length, 12);
  assert.ok(out[1].wheelPosition && out[1].wheelPosition.values.length === 200);
  const urls = server.requests.slice(before).map((r) => r.url);
  assert.not.ok(urls.some((u) => u.includes('spikes.amps') || u.includes('raw_ephys_data') || u.includes('wheelMoves')), 'only needed files');
  assert.not.ok(urls.some((u) => u.includes('/alf/probe01/spikes.times')), 'the pykilosort copy only');
  const manifest = readFileSync(join(ctx.run.root, 'artifacts', 'one', 'downloads.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(manifest.length > 10);
  assert.ok(manifest.every((r) => r.status === 'downloaded' && (r.session === eid1 || r.session === eid2)));
  assert.equal([...new Set(manifest.map((r) => r.probe))].sort(), [null, 'probe00', 'probe01']);
});

test('a failing session is logged and skipped; with failFast it stops the stream', async () => {
  const missing = '00000000-0000-4000-8000-000000000001';
  const { sessions } = await runStage(oneDownload, { mode: 'remote', baseUrl: server.url, cacheDir: cache, sessions: [missing, eid2] });
  assert.equal((sessions as SpikeTrains[]).map((s) => s.eid), [eid2]);
  try {
    await runStage(oneDownload, { mode: 'remote', baseUrl: server.url, cacheDir: cache, sessions: [missing, eid2], failFast: true });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, `session ${missing}: session ${missing} not found`);
  }
  try {
    await runStage(oneDownload, { mode: 'remote', baseUrl: server.url, cacheDir: cache, sessions: [missing] });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /none of the 1 session/);
  }
});

test('local: every session of the cache, by eid from the cache tables, with no network at all', async () => {
  const { sessions } = await runStage(oneDownload, { mode: 'local', baseUrl: closed, cacheDir: cache });
  const out = sessions as SpikeTrains[];
  assert.equal(out.map((s) => s.eid).sort(), [eid1, eid2].sort());
  const some = await runStage(oneDownload, { mode: 'local', baseUrl: closed, cacheDir: cache, search: { subject: 'A2' }, probes: ['probe00'] });
  assert.equal((some.sessions as SpikeTrains[]).map((s) => s.eid), [eid2]);
});

test('local: a session folder outside any cache table loads as it is', async () => {
  const dir = join(tempDir('mtm-stage-one-'), 'labZ', 'Subjects', 'Z1', '2022-02-02', '003');
  await writeSessionFiles(dir, tinySessionFiles({ seed: 4 }));
  const { sessions } = await runStage(oneDownload, { mode: 'local', baseUrl: closed, sessions: [dir] });
  const [s] = sessions as SpikeTrains[];
  assert.is(s.sessionId, 'labZ/Subjects/Z1/2022-02-02/003');
  assert.is(s.eid, undefined);
  assert.is(s.probes[0].clusterChannels!.length, 5);
  assert.ok(existsSync(join(dir, 'alf', 'probe00', 'spikes.times.npy')));
});

test('remote mode without sessions or search is refused before anything runs', () => {
  assert.throws(() => oneDownload.create(oneDownloadParams.parse({ mode: 'remote', baseUrl: closed }), testContext('one')), /needs 'sessions' or 'search'/);
});

test.run();
