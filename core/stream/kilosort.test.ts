import { selectUnits } from './run-stream.ts';
import { UNLISTED } from './kilosort.ts';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readNpy, writeNpy } from '../io/npy.ts';
import { tempDir } from '../testing.ts';
import { makeKilosortFixture } from '../../test/fixtures/kilosort/make-fixture.ts';
import { parseParamsPy, parsePyLiteral, parseTsv, phyToProbeSpikes, readPhyFolder } from './kilosort.ts';

const FIXTURE = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'kilosort');

/** A writable copy of the fixture folder. */
function copyFixture(): string {
  const dir = join(tempDir('mtm-phy-'), 'ks');
  cpSync(FIXTURE, dir, { recursive: true });
  rmSync(join(dir, 'make-fixture.ts'));
  return dir;
}

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected an error matching ${pattern}`);
}

test('parseParamsPy reads the literals phy and Kilosort write, without evaluating anything', () => {
  const p = parseParamsPy(
    [
      "dat_path = r'D:\\data\\run1\\continuous.dat'  # raw string keeps backslashes",
      'n_channels_dat = 385',
      "dtype = 'int16'",
      'offset = 0',
      'sample_rate = 30000.',
      'hp_filtered = False',
      'gain = 2.34e-6',
      'extra = None',
      "paths = ['a.bin',",
      "         \"b#1.bin\"]",
      '',
      '# a comment line',
      'evil = __import__("os").system("rm -rf /")',
    ].join('\n'),
  );
  assert.is(p.dat_path, 'D:\\data\\run1\\continuous.dat');
  assert.is(p.n_channels_dat, 385);
  assert.is(p.dtype, 'int16');
  assert.is(p.sample_rate, 30000);
  assert.is(p.hp_filtered, false);
  assert.is(p.gain, 2.34e-6);
  assert.is(p.extra, null);
  assert.equal(p.paths, ['a.bin', 'b#1.bin']);
  // Not a literal: kept as text.
  assert.is(p.evil, '__import__("os").system("rm -rf /")');
  assert.is(parsePyLiteral("'it\\'s'"), "it's");
  assert.equal(parsePyLiteral('(1, 2.5, True)'), [1, 2.5, true]);
});

test('parseParamsPy names the file and line of a line it cannot read', () => {
  assert.throws(() => parseParamsPy('sample_rate = 30000\nimport numpy\n', '/x/params.py'), /\/x\/params\.py: line 2: expected `name = value`/);
});

test('parseTsv pads empty trailing labels and refuses rows longer than the header', () => {
  const t = parseTsv('cluster_id\tgroup\n0\tgood\n1\n', 'f.tsv');
  assert.equal(t.rows, [['0', 'good'], ['1', '']]);
  assert.throws(() => parseTsv('cluster_id\tgroup\n0\tgood\tx\n', '/d/f.tsv'), /\/d\/f\.tsv: line 2 has 3 fields/);
});

test('readPhyFolder: times are samples / sample_rate, clusters and the table as the files hold them', async () => {
  const phy = await readPhyFolder(FIXTURE);
  assert.is(phy.sampleRateHz, 30000);
  assert.is(phy.params.n_channels_dat, 385);
  const raw = (await readNpy(join(FIXTURE, 'spike_times.npy'))).data as Float64Array;
  const rawClusters = (await readNpy(join(FIXTURE, 'spike_clusters.npy'))).data as Int32Array;
  assert.is(phy.times.length, raw.length);
  for (const i of [0, 1, 100, raw.length - 1]) {
    assert.is(phy.samples[i], raw[i]);
    assert.is(phy.times[i], raw[i] / 30000);
    assert.is(phy.clusters[i], rawClusters[i]);
  }
  for (let i = 1; i < phy.times.length; i++) assert.ok(phy.times[i] >= phy.times[i - 1]);

  const t = phy.table;
  assert.equal(t.source, [join(FIXTURE, 'cluster_info.tsv')]);
  assert.equal([...t.ids], [0, 1, 3, 4, 6, 7, 8, 9, 10, 11, 12, 14, 15]);
  const row = (id: number) => t.ids.indexOf(id);
  assert.is(t.group[row(0)], 'good');
  assert.is(t.group[row(4)], 'noise');
  assert.is(t.group[row(6)], ''); // unlabelled in phy
  assert.is(t.ksLabel![row(6)], 'good');
  assert.is(t.depthUm![row(12)], 300);
  assert.is(t.channel![row(0)] >= 382, true);
  // n_spikes in the table agrees with the spikes actually in spike_clusters.npy.
  const perCluster = new Map<number, number>();
  for (const c of phy.clusters) perCluster.set(c, (perCluster.get(c) ?? 0) + 1);
  t.ids.forEach((id, r) => assert.is(perCluster.get(id) ?? 0, t.nSpikes![r], `cluster ${id}`));
  assert.is(t.columns.Amplitude.length, t.ids.length);
});

test('without cluster_info.tsv: groups from cluster_group.tsv, else KSLabel from cluster_KSLabel.tsv', async () => {
  const dir = copyFixture();
  rmSync(join(dir, 'cluster_info.tsv'));
  const logs: string[] = [];
  const phy = await readPhyFolder(dir, { log: (m) => logs.push(m) });
  const t = phy.table;
  const group = (id: number) => t.group[t.ids.indexOf(id)];
  assert.equal(t.source.map((s) => s.slice(dir.length + 1)), ['cluster_group.tsv', 'cluster_KSLabel.tsv']);
  assert.is(group(4), 'noise'); // phy's label wins over KSLabel mua
  assert.is(group(6), 'good'); // no phy label: Kilosort's
  assert.is(group(14), 'good'); // merged cluster: only in cluster_group.tsv
  assert.ok(t.ids.includes(2)); // merged away: listed by Kilosort, no spikes
  assert.is(logs.length, 0);

  rmSync(join(dir, 'cluster_group.tsv'));
  const logs2: string[] = [];
  const phy2 = await readPhyFolder(dir, { log: (m) => logs2.push(m) });
  // 15 has spikes but is not in cluster_KSLabel.tsv: added as 'unlisted', and said so.
  assert.is(phy2.table.group[phy2.table.ids.indexOf(15)], 'unlisted');
  assert.is(phy2.table.group[phy2.table.ids.indexOf(0)], 'good');
  assert.match(logs2.join('\n'), /cluster_KSLabel\.tsv: 2 cluster\(s\) with spikes are not listed \(14, 15\); added as group 'unlisted', which only units: all keeps/);

  rmSync(join(dir, 'cluster_KSLabel.tsv'));
  const logs3: string[] = [];
  const phy3 = await readPhyFolder(dir, { log: (m) => logs3.push(m) });
  assert.equal([...phy3.table.ids], [0, 1, 3, 4, 6, 7, 8, 9, 10, 11, 12, 14, 15]);
  assert.ok(phy3.table.group.every((g) => g === ''));
  assert.match(logs3.join('\n'), /no cluster_info\.tsv, cluster_group\.tsv or cluster_KSLabel\.tsv/);
});

test('int64 (n,) spike times out of order are sorted with their clusters; spike_templates.npy stands in for spike_clusters.npy', async () => {
  const dir = join(tempDir('mtm-phy-'), 'ks4');
  await writeNpy(join(dir, 'spike_times.npy'), new Float64Array([300, 100, 200]), [3], { dtype: '<i8' });
  await writeNpy(join(dir, 'spike_templates.npy'), new Uint32Array([3, 1, 2]), [3, 1]);
  writeFileSync(join(dir, 'params.py'), 'sample_rate = 1000.0\n');
  const logs: string[] = [];
  const phy = await readPhyFolder(dir, { log: (m) => logs.push(m) });
  assert.equal([...phy.times], [0.1, 0.2, 0.3]);
  assert.equal([...phy.clusters], [1, 2, 3]);
  assert.is(phy.clustersSource, 'spike_templates.npy');
  assert.match(logs.join('\n'), /not in time order; sorted/);
  assert.match(logs.join('\n'), /using spike_templates\.npy/);
});

test('errors name the folder and the file at fault', async () => {
  const dir = copyFixture();
  await rejects(readPhyFolder(join(dir, 'nope')), /nope: phy folder not found/);

  const params = readFileSync(join(dir, 'params.py'), 'utf8');
  writeFileSync(join(dir, 'params.py'), params.replace(/sample_rate.*\n/, ''));
  await rejects(readPhyFolder(dir), /params\.py: no sample_rate/);
  writeFileSync(join(dir, 'params.py'), params.replace(/sample_rate.*\n/, "sample_rate = 'fast'\n"));
  await rejects(readPhyFolder(dir), /params\.py: sample_rate is "fast"/);
  rmSync(join(dir, 'params.py'));
  await rejects(readPhyFolder(dir), new RegExp(`${dir}: missing params\\.py`));
  writeFileSync(join(dir, 'params.py'), params);

  const info = readFileSync(join(dir, 'cluster_info.tsv'), 'utf8');
  writeFileSync(join(dir, 'cluster_info.tsv'), info.replace('\n3\t', '\nthree\t'));
  await rejects(readPhyFolder(dir), /cluster_info\.tsv: line 4, column "cluster_id": "three" is not a cluster id/);
  writeFileSync(join(dir, 'cluster_info.tsv'), info);

  await writeNpy(join(dir, 'spike_clusters.npy'), new Int32Array([1, 2]), [2]);
  await rejects(readPhyFolder(dir), /spike_clusters\.npy: has 2 spikes but spike_times\.npy has 2588/);
  await writeNpy(join(dir, 'spike_times.npy'), new Float64Array([0.1, 0.2]), [2]);
  await rejects(readPhyFolder(dir), /spike_times\.npy: holds <f8 values; expected integer sample indices/);
  rmSync(join(dir, 'spike_times.npy'));
  await rejects(readPhyFolder(dir), new RegExp(`${dir}: missing spike_times\\.npy`));
});

test('phyToProbeSpikes gives the SpikeTrains probe shape, good = phy group good', async () => {
  const phy = await readPhyFolder(FIXTURE);
  const p = phyToProbeSpikes(phy, 'probe00');
  assert.is(p.probe, 'probe00');
  assert.is(p.times, phy.times);
  assert.is(p.clusterIds.length, 13);
  const good = [...p.clusterIds].filter((_, r) => p.clusterGood![r] === 1);
  assert.equal(good, [0, 3, 7, 10, 12, 14]);
  assert.is(p.clusterDepthsUm![p.clusterIds.indexOf(15)], 140);
});

test('the committed fixture is what make-fixture.ts writes', async () => {
  const dir = join(tempDir('mtm-phy-'), 'regen');
  await makeKilosortFixture(dir);
  for (const f of ['spike_times.npy', 'spike_clusters.npy', 'params.py', 'cluster_info.tsv', 'cluster_group.tsv', 'cluster_KSLabel.tsv']) {
    assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(FIXTURE, f))), `${f} differs from a fresh run of make-fixture.ts`);
  }
});

test('units filter: not-noise and good drop the clusters no table lists; all keeps them', () => {
  const u = (id: number, group: string) => ({ id, clusterId: id, probe: 'p', group });
  const units = [u(0, 'good'), u(1, 'mua'), u(2, 'noise'), u(3, UNLISTED), u(4, '')];
  assert.equal(selectUnits(units, 'all').map((x) => x.id), [0, 1, 2, 3, 4]);
  assert.equal(selectUnits(units, 'not-noise').map((x) => x.id), [0, 1, 4], 'an unlabelled row of a table stays; an unlisted cluster does not');
  assert.equal(selectUnits(units, 'good').map((x) => x.id), [0]);
});

test.run();
