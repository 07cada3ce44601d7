import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { datasetPathFromUrl, joinDatasetPath, parseSessionPath, removeUuidFromName, sessionRelPath, splitDatasetPath } from './alf-path.ts';
import { datasetFromRest, insertionFromRest, sessionFromRest, type RestDataset } from './records.ts';
import { int64PairFromUuid, isUuid, uuidFromInt64Pair, uuidFromUrl } from './uuid.ts';
import { REST_FIXTURES } from './testing/alyx-server.ts';

const fixture = (name: string) => JSON.parse(readFileSync(join(REST_FIXTURES, name), 'utf8'))[0];

test('legacy int64 id pairs decode to the UUIDs Alyx uses', () => {
  // The pair is ONE's own test id for the dataset that GET /datasets/0b305d2f-... returns (test_one.py, checked with numpy).
  assert.is(uuidFromInt64Pair(-1058666951852871669n, -6012002505064768322n), '0b305d2f-04dc-4ef1-be1c-db18931391ac');
  assert.equal(int64PairFromUuid('0b305d2f-04dc-4ef1-be1c-db18931391ac'), [-1058666951852871669n, -6012002505064768322n]);
  assert.is(uuidFromInt64Pair('8737712210713458643', '-4920882604093676133'), 'd3372b15-f696-4279-9be5-98f15783b5bb');
  assert.ok(isUuid('D3372B15-F696-4279-9BE5-98F15783B5BB'));
  assert.not.ok(isUuid('KS005/2019-04-01/001'));
  assert.is(uuidFromUrl('https://test.alyx.internationalbrainlab.org/sessions/01390fcc-4f86-4707-8a3b-4d9309feb0a1'), '01390fcc-4f86-4707-8a3b-4d9309feb0a1');
  assert.is(uuidFromUrl('https://x/sessions/'), null);
});

test('session paths: with and without lab, in file paths and URLs, numbers padded to 3', () => {
  const m = parseSessionPath('/data/ONE/host/cortexlab/Subjects/KS005/2019-04-01/001/alf/probe00/spikes.times.npy')!;
  assert.equal([m.lab, m.subject, m.date, m.number, m.rest], ['cortexlab', 'KS005', '2019-04-01', 1, 'alf/probe00/spikes.times.npy']);
  assert.is(m.sessionPath, '/data/ONE/host/cortexlab/Subjects/KS005/2019-04-01/001');
  const n = parseSessionPath('ZFM-01935/2021-02-05/1')!;
  assert.equal([n.lab, n.subject, n.number, n.rest], ['', 'ZFM-01935', 1, '']);
  assert.is(parseSessionPath('/tmp/nothing/here'), undefined);
  assert.is(sessionRelPath({ lab: 'mainenlab', subject: 'clns0730', date: '2018-08-24', number: 1 }), 'mainenlab/Subjects/clns0730/2018-08-24/001');
});

test('dataset paths: uuid removed from served names, revisions split out', () => {
  assert.is(removeUuidFromName('_ibl_wheel.timestamps.07be0a88-ea2d-472b-aad2-db1b52bdf004.npy'), '_ibl_wheel.timestamps.npy');
  assert.is(removeUuidFromName('spikes.times.npy'), 'spikes.times.npy');
  const p = splitDatasetPath('alf/probe00/pykilosort/#2024-05-06#/spikes.times.npy');
  assert.equal(p, { collection: 'alf/probe00/pykilosort', revision: '2024-05-06', name: 'spikes.times.npy' });
  assert.is(joinDatasetPath(p), 'alf/probe00/pykilosort/#2024-05-06#/spikes.times.npy');
  assert.equal(splitDatasetPath('spikes.amps.npy'), { collection: '', revision: '', name: 'spikes.amps.npy' });
  const u = datasetPathFromUrl('https://ibl.flatironinstitute.org/cortexlab/Subjects/KS005/2019-04-01/001/alf/_ibl_wheel.timestamps.07be0a88-ea2d-472b-aad2-db1b52bdf004.npy')!;
  assert.is(u.relativePath, 'alf/_ibl_wheel.timestamps.npy');
  assert.equal(u.session, { lab: 'cortexlab', subject: 'KS005', date: '2019-04-01', number: 1 });
});

test('REST records from the real fixtures: /datasets file_records, insertion datasets, session_info', () => {
  const page = fixture('6dc96f7e9bcc6ac2e7581489b9580a6cd3f28293') as { results: RestDataset[] };
  const d = datasetFromRest(page.results[1], '/cache/cortexlab/Subjects/KS005/2019-04-01/001', null);
  assert.is(d.id, '07be0a88-ea2d-472b-aad2-db1b52bdf004');
  assert.is(d.eid, '01390fcc-4f86-4707-8a3b-4d9309feb0a1');
  assert.is(d.relativePath, 'alf/_ibl_wheel.timestamps.npy');
  assert.is(d.collection, 'alf');
  assert.is(d.name, '_ibl_wheel.timestamps.npy');
  // ONE takes the first file record that has a URL and exists: the Flatiron one, not the AWS one.
  assert.ok(d.url!.startsWith('https://ibl.flatironinstitute.org/cortexlab/'));
  assert.is(d.path, '/cache/cortexlab/Subjects/KS005/2019-04-01/001/alf/_ibl_wheel.timestamps.npy');
  assert.is(d.size, null);

  const one = fixture('47893cf67c985e6361cdee009334963f49fb0746') as RestDataset;
  const w = datasetFromRest(one, '/c', null);
  assert.is(w.size, 14176);
  assert.is(w.hash, '3bc0be50415804d65dd3547eaedc2ce6');
  assert.is(w.relativePath, 'alf/_ibl_wheelMoves.peakAmplitude.npy');
  assert.is(w.eid, 'd3372b15-f696-4279-9be5-98f15783b5bb');

  const ins = fixture('f530d6022f61cdc9e38cc66beb3cb71f3003c9a1');
  const spikes = (ins.datasets as RestDataset[]).map((x) => datasetFromRest(x, '/c', ins.session)).find((x) => x.name === 'spikes.times.npy')!;
  assert.is(spikes.relativePath, 'alf/probe00/spikes.times.npy');
  assert.is(spikes.eid, 'fc737f3c-2a57-4165-9763-905413e7e341');
  assert.ok(spikes.size! > 0 && /^[0-9a-f]{32}$/.test(spikes.hash!));
  assert.equal(insertionFromRest(ins), { id: 'b529f2d8-cdae-4d59-aba2-cbd1b5572e36', name: 'probe00', session: 'fc737f3c-2a57-4165-9763-905413e7e341', model: '3B2' });
  const s = sessionFromRest(ins.session_info);
  assert.equal([s.eid, s.date, s.number, s.relativePath, s.projects], ['fc737f3c-2a57-4165-9763-905413e7e341', '2021-05-10', 1, 'cortexlab/Subjects/KS055/2021-05-10/001', ['ibl_neuropixel_brainwide_01']]);
});

test.run();
