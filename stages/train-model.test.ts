import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { trainingMeanCounts, type ArchitectureContribution } from '../core/architecture.ts';
import type { BinnedSession, Metrics, ModelRef, NeuronInfo, Split } from '../core/payloads.ts';
import type { MaskedBatch } from '../core/masking/types.ts';
import { checkStageDescriptor } from '../core/registry.ts';
import { pulledIterable } from '../core/runtime/demand.ts';
import { createRng } from '../core/rng.ts';
import { runStage, tempDir, testContext } from '../core/testing.ts';
import { initBackend } from '../core/tensor/backend.ts';
import { loadModel } from '../core/io/model-files.ts';
import { loadTrainedModel } from '../core/train/checkpoint.ts';
import { ndt2Architecture } from '../plugins/ndt2/architecture.ts';
import { writeFileSync, cpSync } from 'node:fs';
import { ndt1Architecture } from '../plugins/ndt1/architecture.ts';
import { maskingSampler } from './masking-sampler.ts';
import { trainModel } from './train-model.ts';

await initBackend();

const T = 8;
const archs = new Map<string, ArchitectureContribution>([['ndt1', ndt1Architecture as ArchitectureContribution]]);
const tiny = { dModel: 16, layers: 1, heads: 2, mlpDim: 16, maxBins: T };

/** A session whose counts come from a known per-neuron rate with a bump in the middle bins. */
function session(id: string, nNeurons: number, seed: number): BinnedSession {
  const nTrials = 20;
  const rng = createRng(seed);
  const counts = new Int32Array(nTrials * T * nNeurons);
  for (let t = 0; t < nTrials; t++) {
    for (let b = 0; b < T; b++) for (let n = 0; n < nNeurons; n++) counts[(t * T + b) * nNeurons + n] = rng.poisson(Math.exp(-0.5 + 0.2 * n + (b > 2 && b < 6 ? 0.8 : 0)));
  }
  const neurons: NeuronInfo[] = Array.from({ length: nNeurons }, (_, n) => ({
    probe: 'probe00', clusterId: n, atlasId: 1, acronym: ['CA1', 'LP', 'VISp'][n % 3], beryl: 'CA1', cosmos: 'HPF', depthUm: 10 * n, good: true,
  }));
  const split: Split[] = Array.from({ length: nTrials }, (_, t) => (t < 12 ? 'train' : t < 16 ? 'val' : 'test'));
  return {
    kind: 'binned-session', sessionId: id, binSizeMs: 20, windowS: [0, 0.16], nTrials, nBins: T, nNeurons, counts,
    trials: { trialIndex: Int32Array.from({ length: nTrials }, (_, i) => i), split, columns: {} }, neurons, perBin: {},
  };
}

const sessions = [session('s1', 6, 1), session('s2', 5, 2)];

async function batches(params: Record<string, unknown>): Promise<MaskedBatch[]> {
  const out = await runStage(maskingSampler, { batchSize: 4, ...params }, { sessions }, testContext('sampler', 3));
  return out.batches as MaskedBatch[];
}

const trainBatches = await batches({ epochs: 3, mode: 'mtm' });
const valBatches = await batches({ split: 'val', epochs: 1, mode: 'mtm' });

interface Run {
  model: ModelRef[];
  metrics: Metrics[];
  root: string;
  lines: Record<string, any>[];
}

function context(root: string, seed = 7) {
  const ctx = testContext('train', seed, root);
  ctx.architectures = archs;
  return ctx;
}

async function train(params: Record<string, unknown>, inputs: Record<string, unknown[]>, opts: { root?: string; seed?: number; abortAfter?: number } = {}): Promise<Run> {
  const root = opts.root ?? tempDir();
  const ctx = context(root, opts.seed);
  if (opts.abortAfter) {
    const ac = new AbortController();
    ctx.signal = ac.signal;
    let taken = 0;
    ctx.pull = (s) => pulledIterable(s, () => void (++taken === opts.abortAfter && ac.abort()));
  }
  const out = await runStage(trainModel, { config: tiny, learningRate: 3e-3, ...params }, inputs, ctx);
  const file = join(root, 'metrics.jsonl');
  const lines = existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : [];
  return { model: out.model as ModelRef[], metrics: out.metrics as Metrics[], root, lines };
}

const artifact = (r: Run, ...p: string[]) => join(r.root, 'artifacts', 'train', ...p);
const bytes = (r: Run, ...p: string[]) => readFileSync(artifact(r, ...p));

test('descriptor: ports, defaults and descriptions', () => {
  checkStageDescriptor(trainModel);
  assert.ok(trainModel.inputs.val.collect && trainModel.inputs.val.optional);
  assert.ok(trainModel.inputs.sessions.collect && trainModel.inputs.sessions.optional);
  assert.ok(trainModel.inputs.init.collect && trainModel.inputs.init.optional && trainModel.inputs.init.type === 'model');
  assert.not.ok(trainModel.inputs.train.collect);
});

test('unknown architecture and bad config fields are errors naming them', () => {
  const ctx = context(tempDir());
  assert.throws(() => trainModel.create(trainModel.params.parse({ architecture: 'ndt9' }), ctx), /unknown architecture 'ndt9' \(did you mean 'ndt1'\?\); registered: 'ndt1'/);
  assert.throws(() => trainModel.create(trainModel.params.parse({ config: { dModel: 'big' } }), ctx), /config\.dModel: .*expected number/);
  assert.throws(() => trainModel.create(trainModel.params.parse({ config: { dmodel: 8 } }), ctx), /config\.dmodel: not a field of ndt1 \(did you mean 'dModel'\?\)/);
  assert.throws(() => trainModel.create(trainModel.params.parse({ prompts: false, config: { promptTokens: true } }), ctx), /prompts is false but config\.promptTokens is true/);
});

test('trains: one metrics item per epoch, the best model at the end, checkpoints on disk, no tensor leak', async () => {
  const r = await train({}, { train: trainBatches, val: valBatches, sessions });
  assert.is(r.metrics.length, 3);
  assert.equal(r.metrics.map((m) => m.values.epoch), [1, 2, 3]);
  for (const m of r.metrics) {
    assert.is(m.label, 'mtm', 'label derived from the mixed modes');
    for (const k of ['trainLoss', 'valLoss', 'lr', 'seconds', 'step']) assert.ok(Number.isFinite(m.values[k]), k);
  }
  assert.ok(r.metrics[2].values.trainLoss < r.metrics[0].values.trainLoss, 'train loss falls');
  assert.is(r.metrics[2].values.step, 3 * trainBatches.filter((b) => b.epoch === 0).length);
  assert.is(r.model.length, 1);
  const m = r.model[0];
  assert.is(m.kind, 'model');
  assert.is(m.path, artifact(r, 'best'));
  assert.is(m.scoreOn, 'val');
  assert.is(m.config.promptTokens, true, 'auto prompts: on for mtm batches');
  assert.is(m.config.sessionTokens, true, 'auto session tokens: on for two sessions');
  assert.equal(m.sessions.map((s) => s.sessionId), ['s1', 's2']);
  const bestEpoch = r.metrics.reduce((a, x) => (x.values.valLoss < a.values.valLoss ? x : a));
  assert.is(m.epoch, bestEpoch.values.epoch, 'best = lowest validation loss');
  assert.is(m.valLoss, bestEpoch.values.valLoss);
  for (const f of ['model.json', 'weights.bin']) assert.ok(existsSync(join(m.path, f)));
  for (const f of ['model.json', 'weights.bin', 'optimizer.bin', 'training.json']) assert.ok(existsSync(artifact(r, 'last', f)));
  const meta = JSON.parse(readFileSync(join(m.path, 'model.json'), 'utf8')).userDefinedMetadata;
  assert.is(meta.neurons.s2.length, 5, 'neuron layout of the sessions port is saved');
  assert.is(meta.neurons.s1[1].acronym, 'LP');
  // The modes of the batches the best checkpoint was trained on (epochs up to and including it).
  const seen = [...new Set(trainBatches.filter((b) => b.epoch < m.epoch).map((b) => b.mode))].sort();
  assert.equal(meta.trainedModes, seen, 'the masking modes trained are saved for evaluation');
  // metrics.jsonl: one line per epoch, with the tensor count flat from epoch to epoch.
  assert.is(r.lines.length, 3);
  assert.equal(new Set(r.lines.map((l) => l.tensors)).size, 1, `tensors per epoch: ${r.lines.map((l) => l.tensors)}`);
});

test('same seed, same weights; another seed, other weights', async () => {
  const a = await train({}, { train: trainBatches });
  const b = await train({}, { train: trainBatches });
  const c = await train({}, { train: trainBatches }, { seed: 8 });
  assert.ok(bytes(a, 'last', 'weights.bin').equals(bytes(b, 'last', 'weights.bin')));
  assert.not.ok(bytes(a, 'last', 'weights.bin').equals(bytes(c, 'last', 'weights.bin')));
  assert.is(a.model[0].scoreOn, 'train', 'no val batches: best on the train loss');
});

test('interrupted mid-epoch, then rerun into the same folder: resumes at that batch and ends with identical weights', async () => {
  const full = await train({}, { train: trainBatches, val: valBatches });
  const perEpoch = trainBatches.filter((b) => b.epoch === 0).length;
  const cut = await train({}, { train: trainBatches, val: valBatches }, { abortAfter: perEpoch + 2 });
  assert.is(cut.model.length, 0, 'no model emitted when interrupted');
  assert.is(cut.metrics.length, 1, 'one epoch finished');
  const state = JSON.parse(readFileSync(artifact(cut, 'last', 'training.json'), 'utf8')).state;
  assert.equal([state.epoch, state.nextBatch, state.step], [1, 2, perEpoch + 2]);
  const resumed = await train({}, { train: trainBatches, val: valBatches }, { root: cut.root });
  assert.is(resumed.lines.length, 3, 'epoch 1 was not trained again (one metrics line per epoch in all)');
  assert.equal(resumed.metrics.map((m) => m.values.epoch), [1, 2, 3], 'the metrics port replays the finished epochs');
  assert.equal(resumed.metrics.map((m) => m.values.valLoss), full.metrics.map((m) => m.values.valLoss));
  assert.ok(bytes(resumed, 'last', 'weights.bin').equals(bytes(full, 'last', 'weights.bin')), 'final weights equal the uninterrupted run');
  assert.ok(bytes(resumed, 'last', 'optimizer.bin').equals(bytes(full, 'last', 'optimizer.bin')));
  assert.ok(bytes(resumed, 'best', 'weights.bin').equals(bytes(full, 'best', 'weights.bin')));
  assert.equal({ ...resumed.model[0], path: '' }, { ...full.model[0], path: '' });

  // A finished run rerun again trains nothing and emits the same model.
  const again = await train({}, { train: trainBatches, val: valBatches }, { root: cut.root });
  assert.is(again.lines.length, 3);
  assert.equal(again.model, resumed.model);
  // A different training in the same folder is refused, not mixed.
  try {
    await train({ learningRate: 1e-2 }, { train: trainBatches }, { root: cut.root });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /holds a checkpoint of a different training \(learningRate 0\.003 there, 0\.01 now\)/);
  }
});

test('early stopping after `patience` epochs without improvement keeps the best epoch', async () => {
  // A learning rate far below float32 resolution leaves the weights, hence the loss, unchanged.
  const r = await train({ learningRate: 1e-14, patience: 2 }, { train: await batches({ epochs: 5, mode: 'mtm' }), val: valBatches });
  assert.equal(r.metrics.map((m) => m.values.best), [1, 0, 0], 'stopped after 3 of 5 epochs');
  assert.is(r.model[0].epoch, 1);
  const state = JSON.parse(readFileSync(artifact(r, 'last', 'training.json'), 'utf8')).state;
  assert.is(state.stopReason, 'early-stop');
  const six = await batches({ epochs: 6, mode: 'temporal' });
  // Scored on a val set: a train loss would still move from epoch to epoch with the masks and dropout.
  const s = await train({ learningRate: 1e-14, patience: 2 }, { train: six, val: await batches({ split: 'val', epochs: 1, mode: 'temporal' }) });
  assert.is(s.metrics.length, 3, 'stopped after 3 of 6 epochs');
  assert.is(s.model[0].config.promptTokens, false, 'auto prompts: off for temporal batches');
  assert.is(s.model[0].label, 'temporal');
});

test('a NaN loss stops training with node, epoch, step and session named; the last good checkpoint stays', async () => {
  const perEpoch = trainBatches.filter((b) => b.epoch === 0).length;
  const poisoned = trainBatches.map((b) => (b.epoch === 1 && b.batchIndex === 1 ? { ...b, input: b.input.map((x, i) => (i === 0 ? NaN : x)) } : b));
  const root = tempDir();
  try {
    await train({}, { train: poisoned }, { root });
    assert.unreachable();
  } catch (e) {
    const bad = poisoned.find((b) => b.epoch === 1 && b.batchIndex === 1)!;
    assert.match((e as Error).message, new RegExp(`train-model 'train': loss is NaN at epoch 2, step ${perEpoch + 2} \\(batch 2/${perEpoch}, session ${bad.sessionId}`));
    assert.match((e as Error).message, /last good checkpoint is .*last \(epoch 1\)/);
  }
  const state = JSON.parse(readFileSync(join(root, 'artifacts', 'train', 'last', 'training.json'), 'utf8')).state;
  assert.equal([state.epoch, state.step], [1, perEpoch]);
});

test('nanPolicy skip: the bad batch is left out and training goes on; a run stopped by a NaN resumes under skip', async () => {
  const perEpoch = trainBatches.filter((b) => b.epoch === 0).length;
  const poisoned = trainBatches.map((b) => (b.epoch === 1 && b.batchIndex === 1 ? { ...b, input: b.input.map((x, i) => (i === 0 ? NaN : x)) } : b));
  const skipped = await train({ nanPolicy: 'skip' }, { train: poisoned, val: valBatches });
  assert.equal(skipped.metrics.map((m) => m.values.step), [1, 2, 3].map((e) => e * perEpoch), 'the skipped step still counts');
  assert.ok(skipped.metrics.every((m) => Number.isFinite(m.values.trainLoss) && Number.isFinite(m.values.valLoss)));
  const state = JSON.parse(readFileSync(artifact(skipped, 'last', 'training.json'), 'utf8')).state;
  assert.equal([state.skippedSteps, state.stopReason], [1, 'completed']);

  const root = tempDir();
  await train({}, { train: poisoned, val: valBatches }, { root }).then(() => assert.unreachable(), (e) => assert.match((e as Error).message, /loss is NaN/));
  const resumed = await train({ nanPolicy: 'skip' }, { train: poisoned, val: valBatches }, { root });
  assert.is(resumed.lines.length, 3, 'not refused: epoch 1 from the checkpoint, then 2 and 3');
  assert.ok(bytes(resumed, 'last', 'weights.bin').equals(bytes(skipped, 'last', 'weights.bin')), 'the same weights as skipping from the start');
});

test('an empty train stream is an error, not a silent empty model', async () => {
  try {
    await train({}, { train: [] });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /no training batches arrived on 'train'/);
  }
});

// ---- fine-tuning (init) ----

const heldOut = session('s3', 4, 3);
const ftTrain = (await runStage(maskingSampler, { batchSize: 4, epochs: 2, mode: 'mtm' }, { sessions: [heldOut] }, testContext('sampler', 3))).batches as MaskedBatch[];
const ftVal = (await runStage(maskingSampler, { batchSize: 4, split: 'val', mode: 'mtm' }, { sessions: [heldOut] }, testContext('sampler', 3))).batches as MaskedBatch[];
const pretrainedRun = await train({}, { train: trainBatches, val: valBatches, sessions });
const pretrainedDir = pretrainedRun.model[0].path;
const isSession = (name: string) => name.startsWith('sessions.');

async function weightsOf(dir: string): Promise<Record<string, Float32Array>> {
  const saved = await loadModel(dir);
  const out: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(saved.weights)) {
    out[k] = t.dataSync() as Float32Array;
    t.dispose();
  }
  return out;
}
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

test('loadTrainedModel then addSession: every pretrained weight equal before the first step, the new session fresh', async () => {
  const before = await weightsOf(pretrainedDir);
  const { model } = await loadTrainedModel(pretrainedDir, archs, { seed: 7 });
  model.addSession({ sessionId: 's3', nNeurons: 4, nBins: T });
  const now = model.weights();
  for (const [k, v] of Object.entries(before)) assert.equal(now[k].dataSync(), v, k);
  const fresh = Object.keys(now).filter((k) => !(k in before));
  assert.ok(fresh.length >= 4 && fresh.every((k) => k.startsWith('sessions.s3.')), `new weights: ${fresh}`);
  assert.ok(fresh.includes('sessions.s3.token'), 'a session token for the new session');
  model.dispose();
});

test('fine-tuning: new session gets fresh weights, the saved model knows every session; trainScope sessions freezes the core', async () => {
  const before = await weightsOf(pretrainedDir);
  // learningRate 1e-14 leaves every weight where it started (to float32 rounding): what training starts from.
  const still = await train({ init: pretrainedDir, learningRate: 1e-14 }, { train: ftTrain, val: ftVal, sessions: [heldOut] }, { seed: 11 });
  const start = await weightsOf(still.model[0].path);
  for (const [k, v] of Object.entries(before)) assert.ok(maxDiff(start[k], v) < 1e-6, `${k} starts from the pretrained value`);
  // Fresh: drawn as a model built from scratch with this seed would draw them, not pretrained ones.
  // The readout starts at the held-out session's own training means, as train-model sets it.
  const trainRows = [...Array(heldOut.nTrials).keys()].filter((t) => heldOut.trials.split[t] === 'train');
  const meanCounts = trainingMeanCounts(heldOut.counts, heldOut.nBins, heldOut.nNeurons, trainRows);
  const scratch = ndt1Architecture.build({ ...pretrainedRun.model[0].config }, { sessions: [{ sessionId: 's3', nNeurons: 4, nBins: T, meanCounts }], seed: 11 });
  const scratchW = scratch.weights();
  for (const k of Object.keys(start).filter((x) => x.startsWith('sessions.s3.'))) assert.ok(maxDiff(start[k], scratchW[k].dataSync() as Float32Array) < 1e-6, k);
  scratch.dispose();

  const meta = JSON.parse(readFileSync(join(still.model[0].path, 'model.json'), 'utf8')).userDefinedMetadata;
  assert.equal(meta.sessions.map((x: { sessionId: string }) => x.sessionId), ['s1', 's2', 's3']);
  assert.equal(Object.keys(meta.neurons).sort(), ['s1', 's2', 's3'], 'neuron layouts of pretrained and new sessions');
  assert.is(meta.init.path, pretrainedDir);
  assert.equal(still.model[0].sessions.map((x) => x.sessionId), ['s1', 's2', 's3']);

  const frozen = await train({ init: pretrainedDir, trainScope: 'sessions' }, { train: ftTrain, val: ftVal, sessions: [heldOut] });
  const f = await weightsOf(frozen.model[0].path);
  for (const k of Object.keys(before).filter((x) => !isSession(x))) assert.equal(f[k], before[k], `${k} frozen`);
  assert.ok(maxDiff(f['sessions.s3.readout.weight'], start['sessions.s3.readout.weight']) > 1e-4, 'the new stitcher trains');

  const all = await train({ init: pretrainedDir }, { train: ftTrain, val: ftVal, sessions: [heldOut] });
  const a = await weightsOf(all.model[0].path);
  const moved = Object.keys(before).filter((k) => !isSession(k) && maxDiff(a[k], before[k]) > 1e-4);
  assert.ok(moved.length > 5, `trainScope all trains the core too (moved: ${moved.length})`);
  assert.ok(all.metrics.every((m) => Number.isFinite(m.values.valLoss)));
});

test('an interrupted fine-tuning resumes from its own checkpoint and still saves every session layout', async () => {
  const full = await train({ init: pretrainedDir }, { train: ftTrain, val: ftVal, sessions: [heldOut] });
  const cut = await train({ init: pretrainedDir }, { train: ftTrain, val: ftVal, sessions: [heldOut] }, { abortAfter: 2 });
  assert.is(cut.model.length, 0);
  const resumed = await train({ init: pretrainedDir }, { train: ftTrain, val: ftVal, sessions: [heldOut] }, { root: cut.root });
  assert.ok(bytes(resumed, 'best', 'weights.bin').equals(bytes(full, 'best', 'weights.bin')), 'same weights as the uninterrupted fine-tuning');
  const meta = JSON.parse(readFileSync(artifact(resumed, 'best', 'model.json'), 'utf8')).userDefinedMetadata;
  assert.equal(Object.keys(meta.neurons).sort(), ['s1', 's2', 's3']);
  assert.is(meta.init.path, pretrainedDir);
});

test('init port: the model arriving there is fine-tuned exactly as the same folder given as the init param', async () => {
  const viaParam = await train({ init: pretrainedDir }, { train: ftTrain, val: ftVal, sessions: [heldOut] });
  const viaPort = await train({}, { train: ftTrain, val: ftVal, sessions: [heldOut], init: [pretrainedRun.model[0]] });
  assert.ok(bytes(viaPort, 'best', 'weights.bin').equals(bytes(viaParam, 'best', 'weights.bin')), 'same weights either way');
  const meta = JSON.parse(readFileSync(artifact(viaPort, 'best', 'model.json'), 'utf8')).userDefinedMetadata;
  assert.is(meta.init.path, pretrainedDir);
  assert.equal(viaPort.model[0].sessions.map((x) => x.sessionId), ['s1', 's2', 's3']);
  const fails = async (params: Record<string, unknown>, init: unknown[]) => {
    try {
      await train(params, { train: ftTrain, init });
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('should have failed');
  };
  assert.match(await fails({ init: pretrainedDir }, [pretrainedRun.model[0]]), /train-model 'train': both the init param \(.*\) and the init port are set; use one/);
  assert.match(await fails({}, []), /train-model 'train': no model arrived on the init port/);
  assert.match(await fails({}, [pretrainedRun.model[0], pretrainedRun.model[0]]), /2 models arrived on the init port/);
});

test('fine-tuning from a missing, foreign or mismatched model folder is an error naming the file', async () => {
  const ctxArchs = new Map<string, ArchitectureContribution>([...archs, ['ndt2', ndt2Architecture as ArchitectureContribution]]);
  const run = async (params: Record<string, unknown>): Promise<string> => {
    const ctx = context(tempDir());
    ctx.architectures = ctxArchs;
    try {
      await runStage(trainModel, { config: {}, ...params }, { train: ftTrain }, ctx);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error(`init ${JSON.stringify(params)} should have failed`);
  };
  const file = join(pretrainedDir, 'model.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  assert.match(await run({ init: '/nowhere/model' }), /train-model 'train': init: cannot read model file \/nowhere\/model\/model\.json/);
  assert.match(await run({ init: pretrainedDir, architecture: 'ndt2' }), new RegExp(`${file}: holds a ndt1 model, not ndt2: set architecture to ndt1`));
  assert.match(await run({ init: pretrainedDir, config: { dModel: 32, heads: 2 } }), new RegExp(`cannot load weights in ${file}: weight '.*' has shape`));
  assert.match(await run({ init: pretrainedDir, sessionTokens: false }), new RegExp(`cannot load weights in ${file}: unexpected weight 'sessions\\.s1\\.token'`));
  const foreign = tempDir();
  cpSync(pretrainedDir, foreign, { recursive: true });
  const json = JSON.parse(readFileSync(join(foreign, 'model.json'), 'utf8'));
  json.modelTopology.architecture = 'ndt9';
  writeFileSync(join(foreign, 'model.json'), JSON.stringify(json));
  assert.match(await run({ init: foreign }), new RegExp(`${join(foreign, 'model.json')}: the model's architecture 'ndt9' is not registered`));
});

test('readout init: each neuron\'s readout bias starts at the log of its mean training count', async () => {
  const still = await train({ learningRate: 1e-14 }, { train: ftTrain, val: ftVal, sessions: [heldOut] }, { seed: 5 });
  const w = await weightsOf(still.model[0].path);
  const trainRows = [...Array(heldOut.nTrials).keys()].filter((t) => heldOut.trials.split[t] === 'train');
  const want = trainingMeanCounts(heldOut.counts, heldOut.nBins, heldOut.nNeurons, trainRows)!.map(Math.log);
  const bias = Array.from(w['sessions.s3.readout.bias']);
  assert.is(bias.length, heldOut.nNeurons);
  bias.forEach((b, n) => assert.ok(Math.abs(b - want[n]) < 1e-5, `neuron ${n}: bias ${b}, log mean ${want[n]}`));
});

test.run();
