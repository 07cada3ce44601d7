import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeBinnedSession, sessionFolderName } from './write-binned-session.ts';
import { runStage, tempDir, testContext } from '../core/testing.ts';
import { readNpy } from '../core/io/npy.ts';
import { readParquet } from '../core/io/parquet.ts';
import type { Artifact, BinnedSession } from '../core/payloads.ts';
import { createRng } from '../core/rng.ts';

function session(id: string, withTruth: boolean): BinnedSession {
  const rng = createRng(3);
  const [T, B, N] = [5, 4, 3];
  const counts = Int32Array.from({ length: T * B * N }, () => rng.poisson(2));
  return {
    kind: 'binned-session',
    sessionId: id,
    eid: id.includes('/') ? undefined : id,
    binSizeMs: 20,
    windowS: [-0.04, 0.04],
    nTrials: T,
    nBins: B,
    nNeurons: N,
    counts,
    trials: {
      trialIndex: Int32Array.from([0, 2, 3, 7, 9]),
      split: ['train', 'test', 'train', 'val', 'train'],
      columns: { choice: Float64Array.from([1, -1, -1, 1, 1]), block: Float64Array.from([0.5, 0.5, 0.2, 0.2, 0.8]), contrast: Float64Array.from([0, 0.25, -1, 0.0625, NaN]) },
    },
    neurons: [
      { probe: 'probe00', clusterId: 4, atlasId: 382, acronym: 'CA1', beryl: 'CA1', cosmos: 'HPF', depthUm: 2000.5, good: true },
      { probe: 'probe00', clusterId: 9, atlasId: 0, acronym: 'void', beryl: 'void', cosmos: 'void', depthUm: 3800, good: false },
      { probe: 'probe01', clusterId: 1, atlasId: -1, acronym: 'unlocated', beryl: 'unlocated', cosmos: 'unlocated', depthUm: NaN, good: true },
    ],
    perBin: { wheelSpeed: Float32Array.from({ length: T * B }, (_, i) => i / 10), whiskerMotionEnergy: Float32Array.from({ length: T * B }, (_, i) => 1000 + i) },
    ...(withTruth ? { trueRates: Float32Array.from(counts, (c) => c + 0.5) } : {}),
  };
}

test('writes counts, per-bin series, true rates, trials and neurons tables and meta, then emits the folder', async () => {
  const out = tempDir();
  const s = session('0a1b2c3d-0000-4000-8000-000000000001', true);
  const { files } = await runStage(writeBinnedSession, { out }, { sessions: [s] });
  const art = files[0] as Artifact;
  assert.is(art.kind, 'artifact');
  assert.is(art.sessionId, s.sessionId);
  assert.is(art.path, join(out, s.sessionId));
  assert.equal(readdirSync(art.path).sort(), ['counts.npy', 'meta.json', 'neurons.parquet', 'trials.parquet', 'trueRates.npy', 'wheelSpeed.npy', 'whiskerMotionEnergy.npy']);

  const counts = await readNpy(join(art.path, 'counts.npy'));
  assert.is(counts.dtype, '<i4');
  assert.equal(counts.shape, [5, 4, 3]);
  assert.equal(Array.from(counts.data as Int32Array), Array.from(s.counts));
  const wheel = await readNpy(join(art.path, 'wheelSpeed.npy'));
  assert.equal([wheel.dtype, wheel.shape], ['<f4', [5, 4]]);
  assert.equal(Array.from(wheel.data as Float32Array), Array.from(s.perBin.wheelSpeed));
  const truth = await readNpy(join(art.path, 'trueRates.npy'));
  assert.equal(truth.shape, [5, 4, 3]);
  assert.equal(Array.from(truth.data as Float32Array), Array.from(s.trueRates!));

  const trials = await readParquet(join(art.path, 'trials.parquet'));
  assert.equal(trials.columnNames, ['trialIndex', 'split', 'choice', 'block', 'contrast']);
  assert.equal(trials.columns.trialIndex, [0, 2, 3, 7, 9]);
  assert.equal(trials.columns.split, s.trials.split);
  assert.equal(trials.columns.contrast.slice(0, 4), [0, 0.25, -1, 0.0625]);
  const neurons = await readParquet(join(art.path, 'neurons.parquet'));
  assert.equal(neurons.columnNames, ['probe', 'clusterId', 'acronym', 'beryl', 'cosmos', 'depthUm', 'good', 'atlasId']);
  assert.equal(neurons.columns.acronym, ['CA1', 'void', 'unlocated']);
  assert.equal(neurons.columns.atlasId, [382, 0, -1]);
  assert.equal(neurons.columns.good, [true, false, true]);
  assert.equal(neurons.columns.clusterId, [4, 9, 1]);

  const meta = JSON.parse(readFileSync(join(art.path, 'meta.json'), 'utf8'));
  assert.equal([meta.sessionId, meta.eid, meta.binSizeMs, meta.windowS, meta.nTrials, meta.nBins, meta.nNeurons], [s.sessionId, s.eid, 20, [-0.04, 0.04], 5, 4, 3]);
  assert.equal(meta.splits, { train: 3, val: 1, test: 1 });
  assert.equal(meta.shapes['counts.npy'], [5, 4, 3]);
  assert.equal(meta.shapes['wheelSpeed.npy'], [5, 4]);
});

test('default folder is the node artifact dir; path-like ids become one folder; no true rates when absent', async () => {
  const ctx = testContext('writer');
  const s = session('lab/Subjects/M1/2024-01-01/001', false);
  const { files } = await runStage(writeBinnedSession, {}, { sessions: [s, session('b', false)] }, ctx);
  assert.is(files.length, 2);
  const art = files[0] as Artifact;
  assert.is(art.path, join(ctx.run.root, 'artifacts', 'writer', 'lab_Subjects_M1_2024-01-01_001'));
  assert.ok(!readdirSync(art.path).includes('trueRates.npy'));
  assert.ok(readdirSync(art.path).every((f) => !f.endsWith('.tmp')), 'no temporary files left');
  // No id can climb out of the output folder or hide itself.
  assert.is(sessionFolderName('../x'), '__x');
  assert.is(sessionFolderName('..'), '_');
  assert.is(sessionFolderName('a b/c'), 'a_b_c');
});

test('inconsistent sessions are refused with the session named', async () => {
  const s = session('bad', false);
  const broken = { ...s, counts: new Int32Array(7) };
  await runStage(writeBinnedSession, { out: tempDir() }, { sessions: [broken] }).then(
    () => assert.unreachable('should fail'),
    (e: Error) => assert.match(e.message, /session bad: counts hold 7/),
  );
  const badName = { ...s, perBin: { 'wheel/speed': new Float32Array(20) } };
  await runStage(writeBinnedSession, { out: tempDir() }, { sessions: [badName] }).then(
    () => assert.unreachable('should fail'),
    (e: Error) => assert.match(e.message, /wheel\/speed/),
  );
});

test.run();
