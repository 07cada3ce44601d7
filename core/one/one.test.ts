import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { tempDir } from '../testing.ts';
import { OneError } from './errors.ts';
import { OneClient, OneDownloadError } from './one.ts';
import { spikeSessionDatasets } from './spike-datasets.ts';
import { tinySessionFiles, writeSessionFiles } from './testing/alf-session.ts';
import { ONE_FIXTURES, startAlyxServer, type AlyxServer } from './testing/alyx-server.ts';

let server: AlyxServer;
let closedPort: number;

function remote(cacheDir = tempDir('mtm-one-')): OneClient {
  return new OneClient({ baseUrl: server.url, username: server.username, password: server.password, cacheDir, mode: 'remote', retries: 2, retryBaseMs: 5, retryMaxMs: 20, env: {}, homeDir: cacheDir });
}

/** A cache holding IBL's legacy fixture tables. */
function legacyCache(): string {
  const dir = tempDir('mtm-one-');
  copyFileSync(join(ONE_FIXTURES, 'sessions.pqt'), join(dir, 'sessions.pqt'));
  copyFileSync(join(ONE_FIXTURES, 'datasets.pqt'), join(dir, 'datasets.pqt'));
  return dir;
}

function local(cacheDir: string): OneClient {
  return new OneClient({ baseUrl: `http://127.0.0.1:${closedPort}`, cacheDir, mode: 'local', retries: 0, env: {}, homeDir: cacheDir });
}

const eids = (rows: { eid: string | null }[]) => rows.map((r) => r.eid).sort();

test.before(async () => {
  server = await startAlyxServer({ pageSize: 7 });
  closedPort = await new Promise<number>((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
});
test.after(async () => {
  await server.close();
});

test('searchSessions: remote (REST /sessions, all pages) and local (legacy cache tables) agree', async () => {
  const r = remote();
  const l = local(legacyCache());
  const cases = [
    { subject: 'ZM_335' },
    { lab: 'cortexlab', dateRange: ['2019-04-01', '2019-04-30'] as [string, string] },
    { project: 'ibl_cortexlab' },
    { eid: '01390fcc-4f86-4707-8a3b-4d9309feb0a1' },
  ];
  for (const f of cases) {
    const a = await r.searchSessions(f);
    const b = await l.searchSessions(f);
    assert.ok(b.length > 0, JSON.stringify(f));
    assert.equal(eids(a), eids(b), JSON.stringify(f));
  }
  const ks = (await l.searchSessions({ eid: '01390fcc-4f86-4707-8a3b-4d9309feb0a1' }))[0];
  assert.equal([ks.subject, ks.date, ks.number, ks.relativePath], ['KS005', '2019-04-01', 1, 'cortexlab/Subjects/KS005/2019-04-01/001']);
  const sent = server.requests.filter((x) => x.url.startsWith('/sessions?')).map((x) => x.url);
  assert.ok(sent.includes('/sessions?lab=cortexlab&date_range=2019-04-01%2C2019-04-30'), sent.join('\n'));
  assert.ok(sent.includes('/sessions?project=ibl_cortexlab'));
  assert.ok(sent.some((u) => u.includes('offset=7')), 'followed the pages');
  const all = await r.searchSessions();
  assert.is(all.length, server.sessions.length);
});

test('listInsertions and listDatasets remotely, from the real insertion and /datasets responses', async () => {
  const cache = tempDir('mtm-one-');
  const r = remote(cache);
  assert.equal(await r.listInsertions('fc737f3c-2a57-4165-9763-905413e7e341'), [
    { id: 'b529f2d8-cdae-4d59-aba2-cbd1b5572e36', name: 'probe00', session: 'fc737f3c-2a57-4165-9763-905413e7e341', model: '3B2' },
  ]);
  const ds = await r.listDatasets('01390fcc-4f86-4707-8a3b-4d9309feb0a1');
  assert.equal(ds.map((d) => d.relativePath).sort(), [
    'alf/_ibl_trials.rewardVolume.npy',
    'alf/_ibl_wheel.timestamps.npy',
    'raw_behavior_data/_iblrig_codeFiles.raw.zip',
    'raw_video_data/_iblrig_leftCamera.timestamps.ssv',
    'raw_video_data/_iblrig_videoCodeFiles.raw.zip',
  ]);
  const dir = join(cache, 'cortexlab', 'Subjects', 'KS005', '2019-04-01', '001');
  assert.is(await r.sessionPath('01390fcc-4f86-4707-8a3b-4d9309feb0a1'), dir);
  for (const d of ds) {
    assert.is(d.path, join(dir, ...d.relativePath.split('/')));
    assert.ok(d.url!.startsWith('https://ibl.flatironinstitute.org/cortexlab/Subjects/KS005/2019-04-01/001/'));
    assert.is(d.exists, false);
  }
  const ref = await r.resolveSession('01390FCC-4F86-4707-8A3B-4D9309FEB0A1');
  assert.equal(ref, { kind: 'session-ref', sessionId: '01390fcc-4f86-4707-8a3b-4d9309feb0a1', eid: '01390fcc-4f86-4707-8a3b-4d9309feb0a1', path: dir, cacheDir: cache });
});

test('download: only the files the loader needs, verified, recorded so that local mode finds them later', async () => {
  const files = tinySessionFiles({ probes: ['probe00', 'probe01'], sorter: 'pykilosort', seed: 3 });
  const { eid } = server.addSession({ lab: 'testlab', subject: 'M7', date: '2024-02-03', number: 2, projects: ['mtm'], files });
  const cache = tempDir('mtm-one-');
  const r = remote(cache);
  assert.equal(eids(await r.searchSessions({ datasets: ['spikes.times.npy', '_ibl_trials.stimOn_times.npy'] })), [eid]);
  const all = await r.listDatasets(eid);
  assert.is(all.length, files.length);
  const wanted = spikeSessionDatasets(all);
  const paths = wanted.map((d) => d.relativePath);
  assert.ok(paths.includes('alf/probe01/pykilosort/spikes.times.npy'));
  assert.not.ok(paths.includes('alf/probe01/spikes.times.npy'), 'one spike sorting per probe');
  assert.not.ok(paths.some((p) => p.includes('spikes.amps') || p.startsWith('raw_ephys_data') || p.includes('wheelMoves')));
  assert.ok(paths.includes('alf/_ibl_wheel.position.npy') && paths.includes('alf/_ibl_trials.choice.npy'));

  let last: [number, number] = [0, 0];
  const report = await r.download(wanted, { onProgress: (d, t) => (last = [d, t]) });
  assert.is(report.downloaded, wanted.length);
  assert.is(report.failed.length, 0);
  const total = wanted.reduce((s, d) => s + d.size!, 0);
  assert.equal(last, [total, total]);
  const byPath = new Map(files.map((f) => [f.relativePath, f.bytes]));
  for (const d of wanted) assert.ok(readFileSync(d.path).equals(Buffer.from(byPath.get(d.relativePath)!)), d.relativePath);
  const sessionDir = join(cache, 'testlab', 'Subjects', 'M7', '2024-02-03', '002');
  assert.not.ok(existsSync(join(sessionDir, 'alf', 'probe00', 'spikes.amps.npy')));

  const n = server.requests.length;
  const again = await r.download(wanted);
  assert.is(again.cached, wanted.length);
  assert.is(server.requests.length, n, 'nothing fetched the second time');

  const l = local(cache);
  const ref = await l.resolveSession(eid);
  assert.is(ref.path, sessionDir);
  assert.equal(eids(await l.searchSessions({ subject: 'M7' })), [eid]);
  const listed = await l.listDatasets(eid);
  assert.is(listed.length, wanted.length);
  assert.ok(listed.every((d) => d.exists));
  assert.equal((await l.listInsertions(eid)).map((i) => i.name), ['probe00', 'probe01']);
});

test('download failures: every row is tried, then one error lists all the failures', async () => {
  const files = tinySessionFiles({ seed: 5 });
  const { eid } = server.addSession({ lab: 'testlab', subject: 'M8', date: '2024-02-04', number: 1, files });
  const r = remote();
  const wanted = spikeSessionDatasets(await r.listDatasets(eid));
  const bad = wanted.find((d) => d.name === 'spikes.times.npy')!;
  const gone = wanted.find((d) => d.name === 'clusters.depths.npy')!;
  server.inject({ match: new URL(bad.url!).pathname, corrupt: true, times: Infinity });
  server.inject({ match: new URL(gone.url!).pathname, status: 404, times: Infinity });
  try {
    await r.download(wanted);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, OneDownloadError);
    const rep = (e as OneDownloadError).report;
    assert.is(rep.failed.length, 2);
    assert.is(rep.downloaded, wanted.length - 2);
    assert.match((e as Error).message, /2 of \d+ file\(s\)/);
    assert.match((e as Error).message, /alf\/probe00\/spikes\.times\.npy: checksum mismatch/);
    assert.match((e as Error).message, /alf\/probe00\/clusters\.depths\.npy: HTTP 404/);
    assert.not.ok(existsSync(bad.path));
  }
  const rep = await r.download(wanted, { throwOnFailure: false });
  assert.equal(rep.rows.filter((x) => x.status === 'failed').map((x) => x.relativePath).sort(), [gone.relativePath, bad.relativePath].sort());
  assert.is(rep.cached, wanted.length - 2);
});

test('the token file written by the client is private (0600) and sits in the cache folder', async () => {
  const cache = tempDir('mtm-one-');
  const r = remote(cache);
  await r.searchSessions({ subject: 'KS005' });
  assert.is(statSync(join(cache, '.mtm-token.json')).mode & 0o777, 0o600);
});

test('local mode never touches the network: search, resolve, list and "download" from the cache alone', async () => {
  const cache = legacyCache();
  const l = local(cache);
  assert.throws(() => l.alyx, (e: Error) => e instanceof OneError && e.code === 'offline');
  const eid = 'd3372b15-f696-4279-9be5-98f15783b5bb';
  const sessionDir = join(cache, 'mainenlab', 'Subjects', 'ZFM-01935', '2021-02-05', '001');
  await writeSessionFiles(sessionDir, tinySessionFiles());
  assert.equal(eids(await l.searchSessions({ subject: 'ZFM-01935' })), [eid]);
  assert.equal(await l.resolveSession(eid), { kind: 'session-ref', sessionId: eid, eid, path: sessionDir, cacheDir: cache });
  // A folder inside the cache is matched to its eid, whether given relative to the cache or absolute.
  assert.is((await l.resolveSession('mainenlab/Subjects/ZFM-01935/2021-02-05/001')).eid, eid);
  assert.is((await l.resolveSession(sessionDir)).eid, eid);
  const fromCwd = relative(process.cwd(), sessionDir);
  assert.is((await l.resolveSession(fromCwd)).path, sessionDir);
  assert.equal((await l.listInsertions(eid)).map((i) => i.name), ['probe00']);
  const listed = await l.listDatasets(eid);
  assert.is(listed.length, 106, 'the rows of datasets.pqt for this session');
  const rep = await l.download(listed.slice(0, 3), { throwOnFailure: false });
  assert.is(rep.failed.length, 3);
  assert.match(rep.failed[0].reason!, /local mode does not download/);

  // A folder outside any cache: its id is the ALF session path; files are found by walking it.
  const elsewhere = join(tempDir('mtm-one-'), 'labX', 'Subjects', 'K9', '2023-05-06', '004');
  await writeSessionFiles(elsewhere, tinySessionFiles());
  const ref = await l.resolveSession(elsewhere);
  assert.equal(ref, { kind: 'session-ref', sessionId: 'labX/Subjects/K9/2023-05-06/004', path: elsewhere });
  const scanned = await l.listDatasets(elsewhere);
  assert.ok(scanned.some((d) => d.relativePath === 'alf/probe00/spikes.times.npy' && d.exists));
});

test('clear errors: unknown eid in local mode, missing folder, bad dateRange', async () => {
  const l = local(legacyCache());
  try {
    await l.resolveSession('00000000-0000-4000-8000-000000000000');
    assert.unreachable();
  } catch (e) {
    assert.is((e as OneError).code, 'not-found');
    assert.match((e as Error).message, /sessions\.pqt/);
  }
  try {
    await l.resolveSession('no/such/folder');
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /session folder not found: 'no\/such\/folder'/);
  }
  try {
    await l.searchSessions({ dateRange: ['2020-1-1', '2020-02-01'] });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /dateRange/);
  }
});

test.run();
