import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Artifact, BinnedSession, Metrics, ModelRef, Split } from '../core/payloads.ts';
import type { ArchitectureModel } from '../core/architecture.ts';
import { createRng } from '../core/rng.ts';
import { initBackend } from '../core/tensor/backend.ts';
import * as tf from '../core/tensor/tf.ts';
import { readNpy } from '../core/io/npy.ts';
import { readParquet } from '../core/io/parquet.ts';
import { saveModelFolder } from '../core/train/checkpoint.ts';
import { runStage, tempDir, testContext } from '../core/testing.ts';
import { ndt1Architecture } from '../plugins/ndt1/architecture.ts';
import { evaluate, evaluateParams } from './evaluate.ts';

await initBackend();

const T = 8;
const REGIONS = ['CA1', 'LP', 'CA1', 'VISp', 'LP', 'CA1'];
const N = REGIONS.length;
const TN = T * N;

function session(id = 's1', nTrials = 30, seed = 3): BinnedSession {
  const rng = createRng(seed);
  const trueRates = new Float32Array(nTrials * TN);
  const counts = new Int32Array(nTrials * TN);
  for (let i = 0; i < trueRates.length; i++) {
    const r = Math.floor(i / TN);
    trueRates[i] = Math.exp(0.2 + 0.8 * Math.sin(((i % TN) / N) / 2 + (i % N) + r / 3));
    counts[i] = rng.poisson(trueRates[i]);
  }
  const split: Split[] = Array.from({ length: nTrials }, (_, r) => (r % 5 === 4 ? 'test' : r % 10 === 3 ? 'val' : 'train'));
  return {
    kind: 'binned-session', sessionId: id, binSizeMs: 20, windowS: [0, T * 0.02], nTrials, nBins: T, nNeurons: N, counts,
    trials: { trialIndex: Int32Array.from({ length: nTrials }, (_, i) => i), split, columns: { choice: Float64Array.from({ length: nTrials }, (_, r) => (r % 2 ? 1 : -1)) } },
    neurons: REGIONS.map((a, i) => ({ probe: 'probe00', clusterId: 10 + i, atlasId: -1, acronym: a, beryl: a, cosmos: a, depthUm: 0, good: true })),
    perBin: { wheelSpeed: Float32Array.from({ length: nTrials * T }, () => rng.normal()) },
    trueRates,
  };
}

async function savedModel(config: Record<string, unknown> = {}, sessionId = 's1', label?: string): Promise<ModelRef> {
  const model: ArchitectureModel = ndt1Architecture.build({ dModel: 16, layers: 1, heads: 2, mlpDim: 32, maxBins: T, ...config }, { sessions: [{ sessionId, nNeurons: N, nBins: T }], seed: 1 });
  const dir = join(tempDir(), 'best');
  await saveModelFolder(dir, model, { sessions: model.sessions() });
  const ref: ModelRef = {
    kind: 'model', path: dir, architecture: 'ndt1', config: model.config, sessions: model.sessions(), label,
    epoch: 1, score: 1, scoreOn: 'val', trainLoss: 1,
  };
  model.dispose();
  return ref;
}

const ctxWithNdt1 = () => ({ ...testContext('evaluate'), architectures: new Map([['ndt1', ndt1Architecture]]) });
const fast = { batchSize: 16, forwardPredictionBins: 2, decodingFolds: 3, decodingLambdas: [0.1, 10] };

test('params: every field has a default; the defaults are those of docs/method.md §5', () => {
  const p = evaluateParams.parse({});
  assert.equal(p.tasks, ['coSmoothing', 'forwardPrediction', 'interRegion', 'intraRegion']);
  assert.is(p.forwardPredictionBins, 10);
  assert.is(p.coSmoothingPrompt, 'neuron');
  assert.is(p.forwardPredictionPrompt, 'causal');
  assert.is(p.choicePrompt, 'neuron');
  assert.is(p.continuousPrompt, 'causal');
  for (const [k, f] of Object.entries(evaluateParams.shape)) assert.ok((f as { description?: string }).description, `${k} has a description`);
});

test('end to end with an untrained NDT1: metrics, oracle forms, skipped targets, artifacts, no tensor leak', async () => {
  const ref = await savedModel({}, 's1', 'mtm');
  const s = session();
  const ctx = ctxWithNdt1();
  const before = tf.memory().numTensors;
  const out = await runStage(evaluate, fast, { model: [ref], sessions: [s] }, ctx);
  assert.is(tf.memory().numTensors, before);
  const [m] = out.metrics as Metrics[];
  assert.is(out.metrics.length, 1);
  assert.is(m.sessionId, 's1');
  assert.is(m.label, 'mtm');
  for (const stem of ['co_smoothing', 'forward_prediction', 'inter_region', 'intra_region']) {
    for (const k of [`${stem}_bps`, `${stem}_bps_pooled`, `${stem}_oracle_bps`, `${stem}_oracle_bps_pooled`, `${stem}_oracle_ratio`, `${stem}_seconds`, `${stem}_excluded`]) {
      assert.ok(Number.isFinite(m.values[k]), `${k} = ${m.values[k]}`);
    }
    assert.ok(m.values[`${stem}_oracle_bps`] > 0);
    assert.is(m.values[`${stem}_evaluated`] + m.values[`${stem}_excluded`], N);
    assert.is(m.values[`${stem}_silent`] + m.values[`${stem}_unscored`], m.values[`${stem}_excluded`]);
    // Per-unit quantiles beside the mean, in order, bracketing the median of the per-neuron table.
    const qs = ['q10', 'q25', 'q50', 'q75', 'q90'].map((q) => m.values[`${stem}_bps_${q}`]);
    assert.ok(qs.every(Number.isFinite) && qs.every((v, i) => i === 0 || v >= qs[i - 1]), `${stem} quantiles ${qs}`);
  }
  assert.ok(m.values.choice_accuracy >= 0 && m.values.choice_accuracy <= 1);
  assert.ok(Number.isFinite(m.values.choice_chance));
  assert.ok(Number.isFinite(m.values.wheel_r2));
  assert.is(m.values.wme_r2, undefined, 'the session has no whisker motion energy');
  assert.is(m.values.test_trials, 6);

  const [a] = out.artifacts as Artifact[];
  assert.is(out.artifacts.length, 1);
  assert.ok(a.path.startsWith(join(ctx.run.root, 'artifacts', 'evaluate')));
  const summary = JSON.parse(readFileSync(join(a.path, 'evaluation.json'), 'utf8'));
  assert.ok(summary.notes.some((n: string) => /whiskerMotionEnergy decoding skipped/.test(n)));
  assert.is(summary.tasks.forwardPrediction.mode, 'causal');
  assert.is(summary.tasks.forwardPrediction.causal, true);
  assert.equal(summary.metrics, m.values);
  const table = await readParquet(join(a.path, 'per-neuron.parquet'));
  assert.is(table.numRows, N);
  const scored = (table.columns.co_smoothing_bps as (number | null)[]).filter((v): v is number => v !== null).sort((x, y) => x - y);
  assert.is(scored.length, m.values.co_smoothing_evaluated);
  const h = 0.5 * (scored.length - 1);
  const median = scored[Math.floor(h)] + (h - Math.floor(h)) * ((scored[Math.ceil(h)] ?? 0) - scored[Math.floor(h)]);
  assert.ok(Math.abs(m.values.co_smoothing_bps_q50 - median) < 1e-9, 'the median is that of the per-neuron values written');
  assert.equal(summary.tasks.coSmoothing.quantiles.q50, m.values.co_smoothing_bps_q50);
  assert.equal(table.columns.region, REGIONS);
  assert.ok(table.columnNames.includes('intra_region_oracle_bps'));
  const pred = await readNpy(join(a.path, 'predictions-co-smoothing.npy'));
  assert.equal(pred.shape, [6, T, N]);
  assert.ok(Array.from(pred.data as Float32Array).every(Number.isFinite));
  const fwd = await readNpy(join(a.path, 'predictions-forward-prediction.npy'));
  assert.ok(Number.isNaN((fwd.data as Float32Array)[0]), 'unscored entries are NaN');
  assert.equal((await readNpy(join(a.path, 'test-counts.npy'))).shape, [6, T, N]);
  assert.ok(existsSync(join(a.path, 'true-rates.npy')));
  const lines = readFileSync(join(ctx.run.root, 'metrics.jsonl'), 'utf8').trim().split('\n');
  assert.is(JSON.parse(lines[0]).co_smoothing_bps, m.values.co_smoothing_bps);
});

test('task selection, no decoding, no true rates: only the asked figures, no oracle keys', async () => {
  const ref = await savedModel();
  const s = { ...session(), trueRates: undefined };
  const out = await runStage(evaluate, { ...fast, tasks: ['forwardPrediction'], decoding: false, writePredictions: false }, { model: [ref], sessions: [s] }, ctxWithNdt1());
  const keys = Object.keys((out.metrics[0] as Metrics).values);
  assert.ok(keys.includes('forward_prediction_bps'));
  assert.not.ok(keys.some((k) => k.startsWith('co_smoothing') || k.includes('oracle') || k.startsWith('choice')));
  assert.not.ok(existsSync(join((out.artifacts[0] as Artifact).path, 'predictions-forward-prediction.npy')));
});

test('maxLeftOutNeurons: a seeded subset is left out in co-smoothing and intra-region, every neuron elsewhere', async () => {
  const ref = await savedModel();
  const out = await runStage(evaluate, { ...fast, decoding: false, maxLeftOutNeurons: 2 }, { model: [ref], sessions: [session()] }, ctxWithNdt1());
  const v = (out.metrics[0] as Metrics).values;
  assert.is(v.left_out_neurons, 2);
  assert.ok(v.co_smoothing_evaluated <= 2 && v.intra_region_evaluated <= 2);
  assert.is(v.co_smoothing_evaluated + v.co_smoothing_excluded, N);
  const table = await readParquet(join((out.artifacts[0] as Artifact).path, 'per-neuron.parquet'));
  const co = table.columns.co_smoothing_bps;
  const intra = table.columns.intra_region_bps;
  assert.is(co.filter((x) => x !== null).length, v.co_smoothing_evaluated);
  assert.equal(co.map((x) => x === null), intra.map((x) => x === null), 'the same neurons in both tasks');
  assert.is(table.columns.inter_region_bps.filter((x) => x !== null).length, v.inter_region_evaluated);
  assert.ok(v.inter_region_evaluated > 2);
});

test('fastLeaveOneOut: the same leave-one-out figures as the plain path, the only difference being speed', async () => {
  const ref = await savedModel({ sessionTokens: true });
  const run = async (fastLeaveOneOut: boolean) =>
    (await runStage(evaluate, { ...fast, decoding: false, writePredictions: false, tasks: ['coSmoothing', 'intraRegion'], fastLeaveOneOut }, { model: [ref], sessions: [session()] }, ctxWithNdt1())).metrics[0] as Metrics;
  const [on, off] = [await run(true), await run(false)];
  for (const k of ['co_smoothing_bps', 'co_smoothing_bps_pooled', 'intra_region_bps', 'co_smoothing_oracle_bps', 'intra_region_oracle_ratio']) {
    assert.ok(Number.isFinite(on.values[k]), k);
    assert.ok(Math.abs(on.values[k] - off.values[k]) < 1e-4, `${k}: ${on.values[k]} vs ${off.values[k]}`);
  }
  assert.is(on.values.co_smoothing_evaluated, off.values.co_smoothing_evaluated);
});

test('a temporal-only model (no prompt tokens) is evaluated in temporal mode', async () => {
  const ref = await savedModel({ promptTokens: false });
  const out = await runStage(evaluate, { ...fast, decoding: false }, { model: [ref], sessions: [session()] }, ctxWithNdt1());
  const summary = JSON.parse(readFileSync(join((out.artifacts[0] as Artifact).path, 'evaluation.json'), 'utf8'));
  for (const t of ['coSmoothing', 'forwardPrediction', 'interRegion', 'intraRegion']) assert.is(summary.tasks[t].mode, 'temporal');
  assert.ok(Number.isFinite((out.metrics[0] as Metrics).values.forward_prediction_bps));
});

test('a session the model has no weights for, and no model at all, are clear errors', async () => {
  const ref = await savedModel({}, 'other');
  await runStage(evaluate, fast, { model: [ref], sessions: [session('s1')] }, ctxWithNdt1()).then(
    () => assert.unreachable(),
    (e) => assert.match(e.message, /no per-session weights for session s1 \(it has: other\)/),
  );
  await runStage(evaluate, fast, { model: [], sessions: [session()] }, ctxWithNdt1()).then(
    () => assert.unreachable(),
    (e) => assert.match(e.message, /no model arrived/),
  );
});

test('split: val scores the validation trials (for choosing a recipe), test by default', async () => {
  const ref = await savedModel();
  const s = session();
  const count = (split: string) => s.trials.split.filter((x) => x === split).length;
  const run = async (extra: Record<string, unknown>) => {
    const out = await runStage(evaluate, { ...fast, tasks: ['forwardPrediction'], decoding: false, writePredictions: false, ...extra }, { model: [ref], sessions: [s] }, ctxWithNdt1());
    return (out.metrics as Metrics[])[0].values;
  };
  const test_ = await run({});
  const val = await run({ split: 'val' });
  assert.is(test_.test_trials, count('test'));
  assert.is(val.test_trials, count('val'));
  assert.ok(count('val') !== count('test'));
  assert.is.not(val.forward_prediction_bps, test_.forward_prediction_bps);
});

test.run();
