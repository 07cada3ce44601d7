import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readParquet } from '../io/parquet.ts';
import { tempDir } from '../testing.ts';
import { loadCacheTables, mergeIntoCacheTables, scanSessionFolders, writeCacheTables } from './cache-tables.ts';
import { ONE_FIXTURES } from './testing/alyx-server.ts';

test('the legacy fixture tables: int64 id pairs decoded, every row read', async () => {
  const t = (await loadCacheTables(ONE_FIXTURES))!;
  assert.is(t.layout, 'legacy');
  assert.is(t.sessions.length, 26);
  assert.is(t.datasets.length, 693);
  // Session ZFM-01935 2021-02-05/001 is d3372b15-...: that is the session the real GET /datasets/0b305d2f-... names.
  const s = t.sessions.find((x) => x.eid === 'd3372b15-f696-4279-9be5-98f15783b5bb')!;
  assert.equal([s.lab, s.subject, s.date, s.number, s.relativePath], ['mainenlab', 'ZFM-01935', '2021-02-05', 1, 'mainenlab/Subjects/ZFM-01935/2021-02-05/001']);
  assert.equal(s.projects, [], "pandas' 'None' is no project");
  const ks = t.sessions.find((x) => x.eid === '01390fcc-4f86-4707-8a3b-4d9309feb0a1')!;
  assert.equal([ks.lab, ks.subject, ks.date, ks.projects], ['cortexlab', 'KS005', '2019-04-01', ['ibl_neuropixel_brainwide_01']]);
  // ONE's test_load_dataset_from_id: this id pair is _phy_spikes_subset.waveforms of that session.
  const w = t.datasets.find((d) => d.id === 'a61d0b8a-5819-4480-adbc-fe49b48906a7')!;
  assert.is(w.eid, 'd3372b15-f696-4279-9be5-98f15783b5bb');
  assert.is(w.relativePath, 'alf/probe00/_phy_spikes_subset.waveforms.npy');
  assert.is(w.size, 1091521152);
  const p = t.datasets.find((d) => d.id === '0b305d2f-04dc-4ef1-be1c-db18931391ac')!;
  assert.is(p.hash, '3bc0be50415804d65dd3547eaedc2ce6', 'the same md5 as the REST answer for that dataset');
  assert.ok(t.datasets.every((d) => /^[0-9a-f-]{36}$/.test(d.eid)));
});

test('current layout written and read back; a merge over legacy tables keeps old rows and writes string ids', async () => {
  const dir = tempDir('mtm-cache-');
  copyFileSync(join(ONE_FIXTURES, 'sessions.pqt'), join(dir, 'sessions.pqt'));
  copyFileSync(join(ONE_FIXTURES, 'datasets.pqt'), join(dir, 'datasets.pqt'));
  const eid = '11111111-2222-4333-8444-555555555555';
  await mergeIntoCacheTables(
    dir,
    [{ eid, lab: 'lab', subject: 'S1', date: '2024-03-04', number: 2, projects: ['p1', 'p2'], taskProtocol: 'tp', relativePath: 'lab/Subjects/S1/2024-03-04/002' }],
    [{ eid, id: null, relativePath: 'alf/probe00/#2024-01-01#/spikes.times.npy', size: 80, hash: 'ab'.repeat(16), exists: true, defaultRevision: true }],
  );
  const t = (await loadCacheTables(dir))!;
  assert.is(t.layout, 'current');
  assert.is(t.sessions.length, 27);
  assert.is(t.datasets.length, 694);
  const s = t.sessions.find((x) => x.eid === eid)!;
  assert.equal(s.projects, ['p1', 'p2']);
  assert.is(s.relativePath, 'lab/Subjects/S1/2024-03-04/002');
  const d = t.datasets.find((x) => x.eid === eid)!;
  assert.equal([d.relativePath, d.size, d.hash, d.id], ['alf/probe00/#2024-01-01#/spikes.times.npy', 80, 'ab'.repeat(16), null]);
  assert.ok(t.datasets.some((x) => x.id === 'a61d0b8a-5819-4480-adbc-fe49b48906a7'), 'legacy rows carried over');
  const raw = await readParquet(join(dir, 'sessions.pqt'));
  assert.ok(raw.columnNames.includes('id') && !raw.columnNames.includes('id_0'));
});

test('no tables: session folders are found by walking the cache', async () => {
  const dir = tempDir('mtm-cache-');
  mkdirSync(join(dir, 'labA', 'Subjects', 'M1', '2024-01-02', '001', 'alf'), { recursive: true });
  mkdirSync(join(dir, 'labA', 'Subjects', 'M1', '2024-01-02', 'notes'), { recursive: true });
  mkdirSync(join(dir, 'labB', 'Subjects', 'M2', '2023-12-31', '003'), { recursive: true });
  assert.is(await loadCacheTables(dir), undefined);
  const found = await scanSessionFolders(dir);
  assert.equal(found.map((s) => [s.relativePath, s.eid, s.number]), [
    ['labA/Subjects/M1/2024-01-02/001', null, 1],
    ['labB/Subjects/M2/2023-12-31/003', null, 3],
  ]);
  await writeCacheTables(dir, [], []);
  assert.equal((await loadCacheTables(dir))!.sessions, []);
});

test.run();
