import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { DEFAULT_ATLAS_DIR, loadAllenRegions, parseCsv, UNKNOWN, UNLOCATED } from './regions.ts';
import { clusterAtlasIds } from './label.ts';

// Expected values read by hand from allen_structure_tree.csv (structure_id_path) and the Beryl /
// Cosmos columns of mappings.pqt, e.g. VISa5 = 312782562, path /.../315 Isocortex/.../312782546 VISa/.
const CASES: [number, string, string, string][] = [
  [312782562, 'VISa5', 'VISa', 'Isocortex'],
  [10703, 'DG-mo', 'DG', 'HPF'],
  [382, 'CA1', 'CA1', 'HPF'],
  [218, 'LP', 'LP', 'TH'],
  [851, 'SCop', 'SCs', 'MB'],
  [962, 'MOs2/3', 'MOs', 'Isocortex'],
  [466, 'alv', 'root', 'root'], // fibre tracts have no Beryl / Cosmos region
];

test('the shipped tables are the iblatlas files (same bytes as the fixtures)', () => {
  for (const f of ['allen_structure_tree.csv', 'mappings.pqt']) {
    const md5 = (p: string) => createHash('md5').update(readFileSync(p)).digest('hex');
    assert.is(md5(join(DEFAULT_ATLAS_DIR, f)), md5(join('..', 'shared', 'fixtures', 'iblatlas', 'iblatlas', f)), f);
  }
});

test('Allen, Beryl and Cosmos acronyms of real ids, both hemispheres', async () => {
  const r = await loadAllenRegions();
  assert.is(r.size, 2655);
  for (const [id, allen, beryl, cosmos] of CASES) {
    for (const signed of [id, -id]) {
      const l = r.label(signed);
      assert.equal([l.allen, l.beryl, l.cosmos, l.status], [allen, beryl, cosmos, 'ok'], `id ${signed}`);
    }
  }
  assert.is(r.mapId(-10703, 'beryl'), -726, 'a left-hemisphere id maps to a left-hemisphere id');
  assert.is(r.mapId(10703, 'cosmos'), 1089);
  assert.is(r.idOf('VISa'), 312782546);
  assert.is(r.acronym(312782562, 'beryl'), 'VISa');
});

test('void, unknown and unlocated ids', async () => {
  const r = await loadAllenRegions();
  assert.equal(r.label(0), { atlasId: 0, allen: 'void', beryl: 'void', cosmos: 'void', status: 'void' });
  const u = r.label(123456789);
  assert.equal([u.allen, u.beryl, u.cosmos, u.status], [UNKNOWN, UNKNOWN, UNKNOWN, 'unknown']);
  assert.is(r.label(-123456789).status, 'unknown');
  assert.is(r.mapId(123456789, 'beryl'), undefined);
  const n = r.label(-1);
  assert.equal([n.allen, n.status], [UNLOCATED, 'unlocated']);
  assert.is(r.label(NaN).status, 'unlocated');
});

test('cluster ids: cluster-level ids first, else through the channel, else unlocated', () => {
  const base = { probe: 'p', times: new Float64Array(), clusters: new Int32Array(), clusterIds: Int32Array.from([0, 1, 2, 3]) };
  const viaChannel = clusterAtlasIds({ ...base, clusterChannels: Int32Array.from([0, 2, 5, -1]), channelAtlasIds: Int32Array.from([382, 0, 218]) });
  assert.equal(Array.from(viaChannel), [382, 218, -1, -1]);
  const direct = clusterAtlasIds({ ...base, clusterAtlasIds: Int32Array.from([10703, -10703, 0, 7]), clusterChannels: Int32Array.from([0, 0, 0, 0]), channelAtlasIds: Int32Array.from([382]) });
  assert.equal(Array.from(direct), [10703, -10703, 0, 7]);
  assert.equal(Array.from(clusterAtlasIds(base)), [-1, -1, -1, -1]);
});

test('CSV parser handles quotes, commas and CRLF', () => {
  assert.equal(parseCsv('a,b\r\n"x, y","say ""hi"""\n1,\n'), [['a', 'b'], ['x, y', 'say "hi"'], ['1', '']]);
});

test('a broken table is refused with the file named', async () => {
  await loadAllenRegions('/nonexistent-atlas').then(
    () => assert.unreachable('should fail'),
    (e: Error) => assert.match(e.message, /nonexistent-atlas/),
  );
});

test.run();
