import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { listProbes, loadSpikeTrains, probeCollection, relativeSessionPath } from './session.ts';
import { writeNpy } from '../io/npy.ts';
import { writeParquet } from '../io/parquet.ts';
import { tempDir } from '../testing.ts';

interface ProbeSpec {
  times: number[];
  clusters: number[];
  channels?: number[];
  depths?: number[];
  channelAtlas?: number[];
  clusterAtlas?: number[];
  metrics?: { label: number[]; cluster_id?: number[] };
}

/** Write one probe's ALF files the way ibllib does (int64 ids, float64 times). */
async function writeProbe(dir: string, p: ProbeSpec): Promise<void> {
  await writeNpy(join(dir, 'spikes.times.npy'), new Float64Array(p.times), [p.times.length]);
  await writeNpy(join(dir, 'spikes.clusters.npy'), new Float64Array(p.clusters), [p.clusters.length], { dtype: '<i8' });
  if (p.channels) await writeNpy(join(dir, 'clusters.channels.npy'), new Float64Array(p.channels), [p.channels.length], { dtype: '<i8' });
  if (p.depths) await writeNpy(join(dir, 'clusters.depths.npy'), new Float64Array(p.depths), [p.depths.length]);
  if (p.channelAtlas) await writeNpy(join(dir, 'channels.brainLocationIds_ccf_2017.npy'), new Float64Array(p.channelAtlas), [p.channelAtlas.length], { dtype: '<i8' });
  if (p.clusterAtlas) await writeNpy(join(dir, 'clusters.brainLocationIds_ccf_2017.npy'), new Int32Array(p.clusterAtlas), [p.clusterAtlas.length]);
  if (p.metrics) {
    const cols: Parameters<typeof writeParquet>[1] = { label: { type: 'DOUBLE', data: p.metrics.label } };
    if (p.metrics.cluster_id) cols.cluster_id = { type: 'INT64', data: p.metrics.cluster_id };
    await writeParquet(join(dir, 'clusters.metrics.pqt'), cols);
  }
}

/** A session folder in ONE's cache layout with per-attribute trials files. */
async function makeSession(root = tempDir()): Promise<string> {
  const session = join(root, 'mainenlab', 'Subjects', 'ZFM-01935', '2021-02-05', '001');
  const alf = join(session, 'alf');
  await writeNpy(join(alf, '_ibl_trials.stimOn_times.npy'), new Float64Array([1, 3, 5]), [3]);
  await writeNpy(join(alf, '_ibl_trials.intervals.npy'), new Float64Array([0.5, 2, 2.5, 4, 4.5, 6]), [3, 2]);
  await writeNpy(join(alf, '_ibl_wheel.timestamps.npy'), new Float64Array([0, 0.5, 1]), [3]);
  await writeNpy(join(alf, '_ibl_wheel.position.npy'), new Float64Array([0, 0.1, 0.3]), [3]);
  await writeNpy(join(alf, '_ibl_leftCamera.times.npy'), new Float64Array([0, 0.02, 0.04, 0.06]), [4]);
  await writeNpy(join(alf, 'leftCamera.ROIMotionEnergy.npy'), new Float32Array([5, 6, 7, 8]), [4]);
  // probe00: sorter subfolders, pykilosort preferred over the others.
  await writeProbe(join(alf, 'probe00', 'pykilosort'), {
    times: [0.1, 0.2, 0.35, 0.9],
    clusters: [2, 0, 1, 2],
    channels: [0, 3, 1],
    depths: [20, 60, 40],
    channelAtlas: [128, 128, 382, 312782562],
    metrics: { label: [1, 0.6666, 1] },
  });
  await writeProbe(join(alf, 'probe00', 'ks2'), { times: [9], clusters: [0], channels: [0] });
  // probe01: files directly in the probe folder, metrics table in cluster_id order, unsorted spikes.
  await writeProbe(join(alf, 'probe01'), {
    times: [0.5, 0.1, 0.3, 0.3],
    clusters: [0, 1, 0, 1],
    channels: [1, 0],
    depths: [100, 80],
    clusterAtlas: [721, 0],
    channelAtlas: [721, 0],
    metrics: { label: [1, 0.33], cluster_id: [1, 0] },
  });
  return session;
}

test('two probes, sorter subfolder preferred, unsorted spikes sorted, trials/wheel/whisker loaded', async () => {
  const session = await makeSession();
  const logs: string[] = [];
  const st = await loadSpikeTrains(session, { log: (m) => logs.push(m) });
  assert.is(st.kind, 'spike-trains');
  assert.is(st.sessionId, 'mainenlab/Subjects/ZFM-01935/2021-02-05/001');
  assert.is(st.path, session);
  assert.equal(st.probes.map((p) => p.probe), ['probe00', 'probe01']);

  const [p0, p1] = st.probes;
  assert.equal(Array.from(p0.times), [0.1, 0.2, 0.35, 0.9]);
  assert.equal(Array.from(p0.clusters), [2, 0, 1, 2]);
  assert.ok(p0.clusters instanceof Int32Array);
  assert.equal(Array.from(p0.clusterIds), [0, 1, 2]);
  assert.equal(Array.from(p0.clusterChannels!), [0, 3, 1]);
  assert.equal(Array.from(p0.clusterDepthsUm!), [20, 60, 40]);
  assert.equal(Array.from(p0.channelAtlasIds!), [128, 128, 382, 312782562]);
  assert.equal(Array.from(p0.clusterGood!), [1, 0, 1]);
  assert.is(p0.clusterAtlasIds, undefined);
  assert.ok(logs.some((m) => m.includes('probe00') && m.includes('ks2, pykilosort') && m.includes('using pykilosort')), logs.join('\n'));

  // Sorted by time; equal times keep their file order (stable).
  assert.equal(Array.from(p1.times), [0.1, 0.3, 0.3, 0.5]);
  assert.equal(Array.from(p1.clusters), [1, 0, 1, 0]);
  assert.ok(logs.some((m) => m.includes(join('probe01', 'spikes.times.npy')) && m.includes('not sorted')), logs.join('\n'));
  assert.equal(Array.from(p1.clusterGood!), [0, 1], 'metrics rows matched by cluster_id');
  assert.equal(Array.from(p1.clusterAtlasIds!), [721, 0]);

  assert.equal(Array.from(st.trials.stimOn_times), [1, 3, 5]);
  assert.equal(Array.from(st.trials.intervals_0), [0.5, 2.5, 4.5]);
  assert.equal(Array.from(st.trials.intervals_1), [2, 4, 6]);
  assert.equal(Array.from(st.wheelPosition!.values), [0, 0.1, 0.3]);
  assert.equal(Array.from(st.wheelPosition!.times), [0, 0.5, 1]);
  assert.equal(Array.from(st.whiskerMotionEnergy!.values), [5, 6, 7, 8]);
  assert.equal(Array.from(st.whiskerMotionEnergy!.times), [0, 0.02, 0.04, 0.06]);
});

test('probe selection, ids and sorter order (pykilosort, then iblsorter, then by name)', async () => {
  const session = await makeSession();
  const st = await loadSpikeTrains(session, { probes: ['probe01'], eid: 'd3372b15-f696-4279-9be5-98f15783b5bb' });
  assert.equal(st.probes.map((p) => p.probe), ['probe01']);
  assert.is(st.eid, 'd3372b15-f696-4279-9be5-98f15783b5bb');
  assert.is(st.sessionId, 'd3372b15-f696-4279-9be5-98f15783b5bb');
  assert.is((await loadSpikeTrains(session, { probes: ['probe01'], sessionId: 'mine', eid: 'x' })).sessionId, 'mine');
  assert.equal(await listProbes(session), ['probe00', 'probe01']);

  const p00 = join(session, 'alf', 'probe00');
  rmSync(join(p00, 'pykilosort'), { recursive: true });
  await writeProbe(join(p00, 'iblsorter'), { times: [1], clusters: [0], channels: [0] });
  assert.is(await probeCollection(session, 'probe00'), join(p00, 'iblsorter'));
  rmSync(join(p00, 'iblsorter'), { recursive: true });
  await writeProbe(join(p00, 'aaa'), { times: [1], clusters: [0], channels: [0] });
  assert.is(await probeCollection(session, 'probe00'), join(p00, 'aaa'));
  assert.is(await probeCollection(session, 'probe01'), join(session, 'alf', 'probe01'));
});

test('missing spikes file: error names the folder and the file', async () => {
  const session = await makeSession();
  const dir = join(session, 'alf', 'probe01');
  rmSync(join(dir, 'spikes.clusters.npy'));
  await loadSpikeTrains(session).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, `${dir}: missing spikes.clusters.npy (cluster id of each spike)`),
  );
  // A probe folder with no spike sorting at all.
  const empty = join(session, 'alf', 'probe02');
  await writeNpy(join(empty, 'channels.brainLocationIds_ccf_2017.npy'), new Int32Array([1]), [1]);
  await loadSpikeTrains(session, { probes: ['probe02'] }).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, `${empty}: missing spikes.times.npy (spike times in seconds)`),
  );
  await loadSpikeTrains(session, { probes: ['probe07'] }).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /probe07: probe folder not found \(probes in this session: probe00, probe01, probe02\)/),
  );
});

test('cluster ids outside the clusters table and inconsistent tables are errors naming the file', async () => {
  const root = tempDir();
  const session = join(root, 'lab', 'Subjects', 's', '2020-01-01', '002');
  const alf = join(session, 'alf');
  await writeNpy(join(alf, '_ibl_trials.stimOn_times.npy'), new Float64Array([1]), [1]);
  const dir = join(alf, 'probe00');
  await writeProbe(dir, { times: [0.1, 0.2], clusters: [0, 3], channels: [0, 1], depths: [10, 20] });
  await loadSpikeTrains(session).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, `${join(dir, 'spikes.clusters.npy')}: spike 1 has cluster id 3, outside the clusters table (0..1)`),
  );
  await writeProbe(dir, { times: [0.1, 0.2], clusters: [0, 1], channels: [0, 1], depths: [10, 20, 30] });
  await loadSpikeTrains(session).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, `${join(dir, 'clusters.depths.npy')}: has 3 clusters but clusters.channels.npy has 2`),
  );
  await writeProbe(dir, { times: [0.1, 0.2, 0.3], clusters: [0, 1], channels: [0, 1], depths: [10, 20] });
  await loadSpikeTrains(session).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, `${join(dir, 'spikes.clusters.npy')}: has 2 spikes but spikes.times.npy has 3`),
  );
  await writeProbe(dir, { times: [0.1, 0.2], clusters: [0, 1], channels: [0, 5], depths: [10, 20], channelAtlas: [1, 2] });
  await loadSpikeTrains(session).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /clusters\.channels\.npy: cluster 1 is on channel 5, outside channels\.brainLocationIds_ccf_2017\.npy \(2 channels\)/),
  );
});

test('trials in a task collection, a table form, and a session with no trials', async () => {
  const root = tempDir();
  const session = join(root, 'lab', 'Subjects', 's', '2020-01-01', '003');
  await writeProbe(join(session, 'alf', 'probe00'), { times: [0.1], clusters: [0], channels: [0], depths: [5] });
  await loadSpikeTrains(session).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /alf: no trials object/),
  );
  const logs: string[] = [];
  const noTrials = await loadSpikeTrains(session, { requireTrials: false, log: (m) => logs.push(m) });
  assert.equal(noTrials.trials, {});
  assert.is(noTrials.wheelPosition, undefined);
  assert.is(noTrials.whiskerMotionEnergy, undefined);
  assert.ok(logs.some((m) => m.includes('no trials object')));

  const task = join(session, 'alf', 'task_00');
  await writeParquet(join(task, '_ibl_trials.table.pqt'), {
    stimOn_times: { type: 'DOUBLE', data: [2, null] },
    choice: { type: 'INT64', data: [1, -1] },
  });
  await writeNpy(join(task, '_ibl_wheel.timestamps.npy'), new Float64Array([0, 1]), [2]);
  await writeNpy(join(task, '_ibl_wheel.position.npy'), new Float64Array([0, 2, 4]), [3]);
  // Camera times without motion energy: whisker signal absent, with a log line.
  await writeNpy(join(session, 'alf', '_ibl_leftCamera.times.npy'), new Float64Array([0]), [1]);
  logs.length = 0;
  const st = await loadSpikeTrains(session, { log: (m) => logs.push(m) });
  assert.equal(Array.from(st.trials.choice), [1, -1]);
  assert.ok(Number.isNaN(st.trials.stimOn_times[1]));
  assert.is(st.wheelPosition, undefined, 'wheel with mismatched lengths is left out');
  assert.ok(logs.some((m) => m.includes('_ibl_wheel.position.npy') && m.includes('3 samples but _ibl_wheel.timestamps.npy has 2')), logs.join('\n'));
  assert.is(st.whiskerMotionEnergy, undefined);
  assert.ok(logs.some((m) => m.includes('whisker motion energy') && m.includes('not loaded')), logs.join('\n'));
});

test('no session folder, no alf folder, no probes', async () => {
  const root = tempDir();
  await loadSpikeTrains(join(root, 'nope')).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, `${join(root, 'nope')}: session folder not found`),
  );
  await loadSpikeTrains(root).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, `${root}: no alf/ folder in this session`),
  );
  await writeNpy(join(root, 'alf', '_ibl_trials.choice.npy'), new Float64Array([1]), [1]);
  await loadSpikeTrains(root).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /alf: no probe folders/),
  );
});

test('relativeSessionPath recognises ONE layout only', () => {
  assert.is(relativeSessionPath('/cache/cortexlab/Subjects/KS005/2019-04-04/004'), 'cortexlab/Subjects/KS005/2019-04-04/004');
  assert.is(relativeSessionPath('/cache/cortexlab/Subjects/KS005/2019-04-04'), undefined);
  assert.is(relativeSessionPath('/data/my-session'), undefined);
});

test.run();
