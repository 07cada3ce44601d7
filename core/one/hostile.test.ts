// A hostile Alyx / file server on loopback: path parts that climb out of the cache, oversized and
// trickling bodies, redirect loops. Nothing may be written outside the cache (docs/method.md §2.1).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../testing.ts';
import { OneError } from './errors.ts';
import { OneClient } from './one.ts';
import { createHash, randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { downloadFile, type DownloadItem, type DownloadOptions } from './download.ts';
import { datasetFromRest, sessionFromRest, type RestDataset, type RestSession } from './records.ts';
import { spikeSessionDatasets } from './spike-datasets.ts';
import { tinySessionFiles, writeSessionFiles } from './testing/alf-session.ts';
import { loadSpikeTrains } from '../alf/session.ts';
import { startAlyxServer, type AlyxServer } from './testing/alyx-server.ts';

let server: AlyxServer;

function remote(cacheDir = tempDir('mtm-hostile-'), over: Record<string, unknown> = {}): OneClient {
  return new OneClient({ baseUrl: server.url, username: server.username, password: server.password, cacheDir, mode: 'remote', retries: 2, retryBaseMs: 5, retryMaxMs: 20, env: {}, homeDir: cacheDir, ...over });
}

/** Every file under `dir`, recursively ('' when it does not exist). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

function unsafe(fn: () => unknown, field: string, value: string): void {
  try {
    fn();
    assert.unreachable(`accepted ${field} ${JSON.stringify(value)}`);
  } catch (e) {
    assert.instance(e, OneError);
    assert.is((e as OneError).code, 'unsafe-path', (e as Error).message);
    assert.ok((e as Error).message.includes(field), (e as Error).message);
    assert.ok((e as Error).message.includes(JSON.stringify(value)), (e as Error).message);
  }
}

test.before(async () => {
  server = await startAlyxServer({ seedSessions: false });
});
test.after(async () => {
  await server.close();
});

const okSession: RestSession = { id: '0a6b0d2e-4f8b-4b1f-9d2b-5b1b5e0a7f11', lab: 'lab', subject: 'M1', start_time: '2024-01-02T10:00:00', number: 1 };

test('session records from the server: every path part is checked, the error names the field and value', () => {
  assert.is(sessionFromRest(okSession).relativePath, 'lab/Subjects/M1/2024-01-02/001');
  // Real subject names hold dashes, underscores and dots; those stay accepted.
  assert.is(sessionFromRest({ ...okSession, subject: 'ZFM-01935.b_2' }).subject, 'ZFM-01935.b_2');
  unsafe(() => sessionFromRest({ ...okSession, subject: '../../../../tmp/x' }), 'subject', '../../../../tmp/x');
  unsafe(() => sessionFromRest({ ...okSession, subject: '..' }), 'subject', '..');
  unsafe(() => sessionFromRest({ ...okSession, subject: 'a\\..\\b' }), 'subject', 'a\\..\\b');
  unsafe(() => sessionFromRest({ ...okSession, subject: '' }), 'subject', '');
  unsafe(() => sessionFromRest({ ...okSession, lab: '../..' }), 'lab', '../..');
  unsafe(() => sessionFromRest({ ...okSession, lab: 'a\u0000b' }), 'lab', 'a\u0000b');
  unsafe(() => sessionFromRest({ ...okSession, start_time: '../../../etc' }), 'start_time', '../../../etc');
  unsafe(() => sessionFromRest({ ...okSession, number: '1/../../x' as unknown as number }), 'number', '1/../../x');
  unsafe(() => sessionFromRest({ ...okSession, number: 12345 }), 'number', '12345');
});

test('dataset records from the server: collection, revision, name and the file URL path are checked', () => {
  const dir = join(tempDir('mtm-hostile-'), 'lab', 'Subjects', 'M1', '2024-01-02', '001');
  const base: RestDataset = { name: 'spikes.times.npy', collection: 'alf/probe00', revision: null, file_size: 8, hash: null, data_url: null };
  assert.is(datasetFromRest(base, dir, null).relativePath, 'alf/probe00/spikes.times.npy');
  unsafe(() => datasetFromRest({ ...base, collection: 'alf/../../../../..' }, dir, null), 'collection', 'alf/../../../../..');
  unsafe(() => datasetFromRest({ ...base, collection: '/etc' }, dir, null), 'collection', '/etc');
  unsafe(() => datasetFromRest({ ...base, revision: '../../x' }, dir, null), 'revision', '../../x');
  unsafe(() => datasetFromRest({ ...base, name: '../../../x.npy' }, dir, null), 'name', '../../../x.npy');
  unsafe(() => datasetFromRest({ ...base, name: '..' }, dir, null), 'name', '..');
  // %2F survives URL parsing and becomes '/' when decoded: the path from the URL is checked too.
  const url = `${server.url}/files/lab/Subjects/M1/2024-01-02/001/alf%2F..%2F..%2F..%2F..%2F..%2Fx/spikes.times.npy`;
  unsafe(() => datasetFromRest({ ...base, data_url: url }, dir, null), 'file URL', 'alf/../../../../../x/spikes.times.npy');
});

test('a session whose subject climbs out of the cache: refused before any file request, nothing written outside', async () => {
  const root = tempDir('mtm-hostile-');
  const cache = join(root, 'cache');
  const outside = join(root, 'outside');
  const subject = `../../../outside/x`;
  const { eid } = server.addSession({ lab: 'lab', subject, date: '2024-03-04', number: 1, files: tinySessionFiles({ seed: 2 }) });
  const before = server.requests.length;
  const r = remote(cache);
  try {
    const wanted = spikeSessionDatasets(await r.listDatasets(eid));
    await r.download(wanted);
    assert.unreachable('downloaded a session with a climbing subject');
  } catch (e) {
    assert.is((e as OneError).code, 'unsafe-path', (e as Error).message);
    assert.match((e as Error).message, /subject/);
    assert.ok((e as Error).message.includes(JSON.stringify(subject)));
  }
  assert.equal(filesUnder(outside), []);
  assert.equal(filesUnder(join(root, 'x')), []);
  assert.not.ok(server.requests.slice(before).some((q) => q.url.startsWith('/files/')), 'no file was fetched');
});

test('a dataset row pointing outside the cache is refused by download even when built by hand', async () => {
  const root = tempDir('mtm-hostile-');
  const cache = join(root, 'cache');
  const r = remote(cache);
  const url = server.addFile('lab/Subjects/M1/2024-01-02/001/alf/x.npy', new Uint8Array(8));
  const row = { id: null, eid: null, name: 'x.npy', collection: 'alf', revision: '', relativePath: 'alf/x.npy', size: 8, hash: null, url, exists: false, defaultRevision: true, path: join(root, 'elsewhere', 'x.npy') };
  try {
    await r.download([row]);
    assert.unreachable();
  } catch (e) {
    assert.is((e as OneError).code, 'unsafe-path', (e as Error).message);
    assert.ok((e as Error).message.includes(join(root, 'elsewhere', 'x.npy')));
  }
  assert.equal(filesUnder(join(root, 'elsewhere')), []);
});

let seq = 0;
function served(size: number): { item: DownloadItem; name: string; dir: string } {
  const bytes = randomBytes(size);
  const name = `lab/Subjects/H1/2024-05-06/001/alf/h${seq++}.bin`;
  const url = server.addFile(name, bytes);
  const dir = tempDir('mtm-hostile-');
  return { item: { url, path: join(dir, 'cache', ...name.split('/')), size, hash: createHash('md5').update(bytes).digest('hex'), label: name }, name, dir };
}
const dlOpts = (over: Partial<DownloadOptions> = {}): DownloadOptions => ({ parallel: 1, retries: 5, retryBaseMs: 5, retryMaxMs: 20, maxRetryAfterMs: 1000, timeoutMs: 5000, ...over });
const forFile = (name: string) => server.requests.filter((r) => r.url === `/files/${name}`);

test('a server sending 1000x the announced size: stopped at the announced size, not retried, nothing kept', async () => {
  for (const announce of [false, true]) {
    const { item, name, dir } = served(1000);
    server.inject({ match: name, oversize: 1000, announceOversize: announce, times: Infinity });
    const r = await downloadFile(item, dlOpts());
    assert.is(r.status, 'failed');
    assert.match(r.reason!, /more than the 1000 bytes/);
    assert.is(r.attempts, 1, 'not fetched again: the server does not send what it announced');
    // Read up to the first chunk that crossed the announced size (chunks are at most 64 kB), not the 1 MB sent.
    assert.ok(r.bytesFetched < 300_000, `read ${r.bytesFetched} bytes`);
    assert.not.ok(existsSync(item.path));
    assert.not.ok(existsSync(`${item.path}.part`), 'the oversized body is not kept');
    assert.ok(filesUnder(dir).every((f) => statSync(f).size <= 1000));
    assert.is(forFile(name).length, 1);
  }
});

test('a server trickling a byte at a time: the per-file deadline ends it though the idle timeout never fires', async () => {
  const { item, name } = served(5000);
  server.inject({ match: name, trickleMs: 20, times: Infinity });
  const r = await downloadFile(item, dlOpts({ timeoutMs: 5000, deadlineMs: 150 }));
  assert.is(r.status, 'failed');
  assert.match(r.reason!, /deadline of 150 ms/);
  assert.is(r.attempts, 1, 'a spent deadline is not retried');
  assert.not.ok(existsSync(item.path));
});

test('a silent server: the idle timeout ends the request, and the file then fails', async () => {
  const { item, name } = served(100);
  server.inject({ match: name, delayMs: 2000, times: Infinity });
  const r = await downloadFile(item, dlOpts({ timeoutMs: 50, retries: 1 }));
  assert.is(r.status, 'failed');
  assert.match(r.reason!, /no data for 50 ms/);
});

test('the ONE client passes its download deadline on (config downloadDeadlineMs)', async () => {
  const c = remote(tempDir('mtm-hostile-'), { downloadDeadlineMs: 1234 });
  assert.is(c.config.downloadDeadlineMs, 1234);
  assert.ok(remote().config.downloadDeadlineMs >= 60_000, 'a default that a large file fits in');
});

test('a redirect loop is not retried: one request chain, and the reason says so', async () => {
  const { item, name } = served(100);
  server.inject({ match: name, redirectLoop: true, times: Infinity });
  const r = await downloadFile(item, dlOpts({ retries: 5 }));
  assert.is(r.status, 'failed');
  assert.is(r.attempts, 1);
  assert.match(r.reason!, /redirect/);
  // fetch follows 20 redirects: 21 requests for the one attempt, not 6 x 21.
  assert.ok(forFile(name).length <= 21, `${forFile(name).length} requests`);
});

test('a probe whose spikes.times is missing from the dataset list fails the session in remote mode as in local mode', async () => {
  const files = tinySessionFiles({ probes: ['probe00', 'probe01'], sorter: 'pykilosort', seed: 4 }).filter((f) => !f.relativePath.startsWith('alf/probe01/') || !f.relativePath.endsWith('spikes.times.npy'));
  const { eid } = server.addSession({ lab: 'lab', subject: 'P1', date: '2024-07-01', number: 1, files });
  const cache = tempDir('mtm-hostile-');
  const r = remote(cache);
  let remoteMsg = '';
  try {
    spikeSessionDatasets(await r.listDatasets(eid));
    assert.unreachable('probe01 dropped silently');
  } catch (e) {
    remoteMsg = (e as Error).message;
  }
  assert.match(remoteMsg, /alf[/\\]probe01: missing spikes\.times\.npy/);
  // The same files in a local folder: the loader's error, the same words.
  const dir = join(tempDir('mtm-hostile-'), 'lab', 'Subjects', 'P1', '2024-07-01', '001');
  await writeSessionFiles(dir, files);
  let localMsg = '';
  try {
    await loadSpikeTrains(dir, {});
    assert.unreachable();
  } catch (e) {
    localMsg = (e as Error).message;
  }
  assert.match(localMsg, /alf[/\\]probe01: missing spikes\.times\.npy/);
  // Naming only the probes that are whole still works.
  assert.ok(spikeSessionDatasets(await r.listDatasets(eid), ['probe00']).some((d) => d.relativePath === 'alf/probe00/pykilosort/spikes.times.npy'));
});

test.run();
