import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tempDir } from '../testing.ts';
import { downloadAll, downloadFile, type DownloadItem, type DownloadOptions } from './download.ts';
import { startAlyxServer, type AlyxServer } from './testing/alyx-server.ts';

let server: AlyxServer;
let seq = 0;
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

const opts = (over: Partial<DownloadOptions> = {}): DownloadOptions => ({
  parallel: 4,
  retries: 3,
  retryBaseMs: 5,
  retryMaxMs: 20,
  maxRetryAfterMs: 5000,
  timeoutMs: 2000,
  ...over,
});

/** A fresh file on the server and where it goes in a fresh cache. */
function served(bytes = randomBytes(96 * 1024)): { item: DownloadItem; bytes: Buffer; name: string } {
  const name = `lab/Subjects/S1/2024-01-0${(seq % 9) + 1}/001/alf/probe00/f${seq++}.npy`;
  const url = server.addFile(name, bytes);
  const path = join(tempDir('mtm-dl-'), ...name.split('/'));
  return { item: { url, path, size: bytes.length, hash: md5(bytes), label: name }, bytes, name };
}

const forFile = (name: string) => server.requests.filter((r) => r.url === `/files/${name}`);

test.before(async () => {
  server = await startAlyxServer({ seedSessions: false });
});
test.after(async () => {
  await server.close();
});

test('downloads, verifies and renames; a second call finds it cached without a request', async () => {
  const { item, bytes, name } = served();
  const r = await downloadFile(item, opts());
  assert.is(r.status, 'downloaded');
  assert.is(r.bytesFetched, bytes.length);
  assert.ok(readFileSync(item.path).equals(bytes));
  assert.not.ok(existsSync(`${item.path}.part`));
  const again = await downloadFile(item, opts());
  assert.is(again.status, 'cached');
  assert.is(forFile(name).length, 1);
});

test('nothing appears under the final name before it is verified: a cut-off download leaves only the .part', async () => {
  const { item, name } = served();
  server.inject({ match: name, dropAfterBytes: 20000 });
  const r = await downloadFile(item, opts({ retries: 0 }));
  assert.is(r.status, 'failed');
  assert.not.ok(existsSync(item.path), 'no file under the final name');
  assert.is(statSync(`${item.path}.part`).size, 20000, 'what arrived is kept for resuming');
  assert.match(r.reason!, name);
});

test('resumes a dropped download with Range: bytes already received are not fetched again', async () => {
  const { item, bytes, name } = served();
  server.inject({ match: name, dropAfterBytes: 30000 });
  const r = await downloadFile(item, opts());
  assert.is(r.status, 'downloaded');
  assert.is(r.resumedFrom, 30000);
  const reqs = forFile(name);
  assert.is(reqs.length, 2);
  assert.is(reqs[0].range, undefined);
  assert.is(reqs[1].range, 'bytes=30000-');
  assert.is(reqs[1].status, 206);
  assert.is(reqs[0].bytesSent + reqs[1].bytesSent, bytes.length, 'each byte sent once');
  assert.is(r.bytesFetched, bytes.length);
  assert.is(md5(readFileSync(item.path)), item.hash);
});

test('a .part left by an earlier run is resumed; a server that ignores Range (200) restarts cleanly', async () => {
  const a = served();
  mkdirSync(dirname(a.item.path), { recursive: true });
  writeFileSync(`${a.item.path}.part`, a.bytes.subarray(0, 50000));
  const r1 = await downloadFile(a.item, opts());
  assert.is(r1.status, 'downloaded');
  assert.is(r1.bytesFetched, a.bytes.length - 50000);
  assert.is(forFile(a.name)[0].range, 'bytes=50000-');

  const b = served();
  mkdirSync(dirname(b.item.path), { recursive: true });
  writeFileSync(`${b.item.path}.part`, b.bytes.subarray(0, 50000));
  server.inject({ match: b.name, ignoreRange: true });
  const r2 = await downloadFile(b.item, opts());
  assert.is(r2.status, 'downloaded');
  const reqs = forFile(b.name);
  assert.is(reqs.length, 1);
  assert.is(reqs[0].range, 'bytes=50000-');
  assert.is(reqs[0].status, 200);
  assert.is(r2.bytesFetched, b.bytes.length, 'whole file taken from the 200 answer');
  assert.ok(readFileSync(b.item.path).equals(b.bytes), 'not the old prefix followed by the whole file');
});

test('the md5 covers the whole file after a resume: a bad prefix is caught, deleted and fetched again', async () => {
  const { item, bytes, name } = served();
  mkdirSync(dirname(item.path), { recursive: true });
  writeFileSync(`${item.path}.part`, randomBytes(40000));
  const r = await downloadFile(item, opts());
  assert.is(r.status, 'downloaded');
  const reqs = forFile(name);
  assert.equal(reqs.map((x) => x.range), ['bytes=40000-', undefined]);
  assert.ok(readFileSync(item.path).equals(bytes));
});

test('a wrong checksum is retried; when it stays wrong the row fails and no bad file is left', async () => {
  const one = served();
  server.inject({ match: one.name, corrupt: true });
  const r1 = await downloadFile(one.item, opts());
  assert.is(r1.status, 'downloaded');
  assert.is(forFile(one.name).length, 2);
  assert.is(md5(readFileSync(one.item.path)), one.item.hash);

  const bad = served();
  server.inject({ match: bad.name, corrupt: true, times: Infinity });
  const r2 = await downloadFile(bad.item, opts({ retries: 2 }));
  assert.is(r2.status, 'failed');
  assert.match(r2.reason!, /checksum mismatch/);
  assert.is(forFile(bad.name).length, 3);
  assert.not.ok(existsSync(bad.item.path));
  assert.not.ok(existsSync(`${bad.item.path}.part`));
});

test('a bad file already under the final name is replaced, not trusted', async () => {
  const { item, bytes } = served();
  mkdirSync(dirname(item.path), { recursive: true });
  const wrong = Buffer.from(bytes);
  wrong[10] ^= 1;
  writeFileSync(item.path, wrong);
  const r = await downloadFile(item, opts());
  assert.is(r.status, 'downloaded');
  assert.ok(readFileSync(item.path).equals(bytes));
});

test('5xx, resets and stalls are retried; 429 Retry-After is honoured; 404 fails at once', async () => {
  const a = served();
  server.inject({ match: a.name, status: 503 });
  server.inject({ match: a.name, reset: true });
  assert.is((await downloadFile(a.item, opts())).status, 'downloaded');
  assert.equal(forFile(a.name).map((r) => r.status), [503, -1, 200]);

  const b = served();
  server.inject({ match: b.name, delayMs: 600 });
  assert.is((await downloadFile(b.item, opts({ timeoutMs: 200 }))).status, 'downloaded');

  const c = served();
  server.inject({ match: c.name, status: 429, retryAfterS: 1 });
  const t0 = Date.now();
  assert.is((await downloadFile(c.item, opts())).status, 'downloaded');
  assert.ok(Date.now() - t0 >= 950, 'waited for Retry-After');

  const d = served();
  const r = await downloadFile({ ...d.item, url: d.item.url.replace('/files/', '/files/missing/') }, opts());
  assert.is(r.status, 'failed');
  assert.is(r.attempts, 1);
  assert.match(r.reason!, /HTTP 404/);
});

test('a size the server cannot match fails with a reason about size', async () => {
  const { item } = served();
  const r = await downloadFile({ ...item, size: item.size! + 100, hash: null }, opts({ retries: 1 }));
  assert.is(r.status, 'failed');
  assert.match(r.reason!, /shorter than|size mismatch/);
  assert.not.ok(existsSync(item.path));
});

test('many files: parallelism bounded, a failed row does not stop the others, progress reaches the total', async () => {
  const files = Array.from({ length: 6 }, () => served(randomBytes(20000)));
  // One fault per request: files[2] always fails, the others are slowed so that they overlap.
  server.inject({ match: files[2].name, status: 500, times: Infinity });
  for (const f of files) if (f !== files[2]) server.inject({ match: f.name, delayMs: 60 });
  const seen: [number, number][] = [];
  server.resetInFlight();
  const res = await downloadAll(
    files.map((f) => f.item),
    opts({ parallel: 2, retries: 1, onProgress: (d, t) => seen.push([d, t]) }),
  );
  assert.ok(server.maxInFlight() <= 2, `max in flight ${server.maxInFlight()}`);
  assert.equal(res.map((r) => r.status), ['downloaded', 'downloaded', 'failed', 'downloaded', 'downloaded', 'downloaded']);
  assert.match(res[2].reason!, /HTTP 500/);
  const last = seen.at(-1)!;
  assert.is(last[0], 5 * 20000);
  assert.is(last[1], 6 * 20000);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i][0] >= 0 && seen[i][0] <= seen[i][1]);
});

test.run();
