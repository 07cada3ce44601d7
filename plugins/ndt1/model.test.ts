import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { trainingMeanCounts, type ArchitectureModel, type ModelInput, type SessionSpec } from '../../core/architecture.ts';
import type { z } from 'zod';
import { loadPlugin } from '../../app/di/bootstrap.ts';
import { unwrapSchema } from '../../core/registry.ts';
import { applyMask, sampleMask } from '../../core/masking/masking.ts';
import { MASKING_MODES, type MaskedBatch, type MaskingMode } from '../../core/masking/types.ts';
import { createRng } from '../../core/rng.ts';
import { initBackend } from '../../core/tensor/backend.ts';
import { batchTensors } from '../../core/tensor/batch.ts';
import { poissonNll } from '../../core/tensor/loss.ts';
import * as tf from '../../core/tensor/tf.ts';
import { ndt1Architecture } from './architecture.ts';

await initBackend();

const B = 6;
const T = 12;
const N = 9;
const tiny = { dModel: 16, layers: 2, heads: 2, mlpDim: 32, maxBins: T };
const regions = Array.from({ length: N }, (_, n) => ['CA1', 'LP', 'VISp'][n % 3]);

function build(config: Record<string, unknown> = {}, sessions: SessionSpec[] = [{ sessionId: 's1', nNeurons: N, nBins: T }], seed = 1): ArchitectureModel {
  return ndt1Architecture.build({ ...tiny, ...config }, { sessions, seed });
}

/** Counts drawn from a known rate: a per-neuron baseline times a shared slow oscillation. */
function simulated(seed: number, nNeurons = N): Int32Array {
  const rng = createRng(seed);
  const out = new Int32Array(B * T * nNeurons);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let n = 0; n < nNeurons; n++) {
        const rate = Math.exp(-0.5 + 0.15 * n - 0.1 * nNeurons * 0.15 + Math.sin((2 * Math.PI * t) / T + n));
        out[(b * T + t) * nNeurons + n] = rng.poisson(rate);
      }
    }
  }
  return out;
}

function maskedBatch(mode: MaskingMode, seed: number, sessionId = 's1'): MaskedBatch {
  const target = simulated(seed);
  const shape = { trials: B, bins: T, neurons: N };
  const d = sampleMask(shape, regions, mode, createRng(seed));
  return {
    kind: 'masked-batch', sessionId, split: 'train', epoch: 0, epochs: 1, batchIndex: 0, batchesInEpoch: 1,
    trialIndex: Int32Array.from({ length: B }, (_, i) => i), shape, binSizeMs: 20,
    input: applyMask(target, d.masked), target, lossMask: d.lossMask, masked: d.masked, mode: d.mode, causal: d.causal, maskedRegion: d.region, regions,
  };
}

function loss(model: ArchitectureModel, batch: MaskedBatch, training: boolean): number {
  const t = batchTensors(batch);
  const l = tf.tidy(() => poissonNll(model.forward(t.model, { training }), t.target, t.lossMask));
  const v = l.dataSync()[0];
  l.dispose();
  t.dispose();
  return v;
}

function step(model: ArchitectureModel, opt: tf.Optimizer, batch: MaskedBatch): number {
  const t = batchTensors(batch);
  const l = opt.minimize(() => poissonNll(model.forward(t.model, { training: true }), t.target, t.lossMask), true, model.trainableVariables())!;
  const v = l.dataSync()[0];
  l.dispose();
  t.dispose();
  return v;
}

function predict(model: ArchitectureModel, x: ModelInput): Float32Array {
  const y = model.forward(x, { training: false });
  const v = y.dataSync() as Float32Array;
  y.dispose();
  return v;
}

test('shapes: log-rates [B, T, N_s] per session; config defaults filled; names stable', () => {
  const model = build({ sessionTokens: true }, [{ sessionId: 'a', nNeurons: N, nBins: T }, { sessionId: 'b', nNeurons: 4, nBins: 20 }]);
  assert.is(model.config.maxBins, 20, 'position embedding grows to the longest session');
  assert.is(model.config.dropout, 0.2);
  const ya = model.forward({ sessionId: 'a', input: tf.zeros([3, T, N]) as tf.Tensor3D, mode: 'neuron', causal: false }, { training: false });
  const yb = model.forward({ sessionId: 'b', input: tf.zeros([2, 20, 4]) as tf.Tensor3D, mode: 'temporal', causal: true }, { training: true });
  assert.equal(ya.shape, [3, T, N]);
  assert.equal(yb.shape, [2, 20, 4]);
  tf.dispose([ya, yb]);
  const names = Object.keys(model.weights());
  for (const n of ['position', 'prompts', 'encoder.1.attn.qkv.weight', 'finalNorm.weight', 'sessions.a.in1.weight', 'sessions.b.readout.bias', 'sessions.b.token']) assert.ok(names.includes(n), n);
  const count = Object.values(model.weights()).reduce((s, w) => s + w.size, 0);
  assert.is(model.paramCount(), count);
  assert.equal(model.weights()['sessions.a.in1.weight'].shape, [N, 2 * N]);
  assert.equal(model.weights()['sessions.a.in2.weight'].shape, [2 * N, 16]);
  assert.equal(model.weights()['prompts'].shape, [4, 16]);
  assert.throws(() => model.forward({ sessionId: 'zz', input: tf.zeros([1, T, N]) as tf.Tensor3D, mode: 'neuron', causal: false }, { training: false }), /no stitcher for session zz \(known: a, b\)/);
  assert.throws(() => model.forward({ sessionId: 'b', input: tf.zeros([1, T, N]) as tf.Tensor3D, mode: 'neuron', causal: false }, { training: false }), /has 9 neurons, its stitcher 4/);
  model.dispose();
});

test('one Adam step lowers the loss on Poisson counts; training approaches the known rates', () => {
  const model = build({ dropout: 0, embedDropout: 0 });
  const opt = tf.train.adam(1e-2);
  const batch = maskedBatch('neuron', 3);
  const before = loss(model, batch, false);
  step(model, opt, batch);
  const after = loss(model, batch, false);
  assert.ok(after < before, `loss ${before} -> ${after}`);
  for (let i = 0; i < 40; i++) step(model, opt, maskedBatch('temporal', 10 + i));
  assert.ok(loss(model, batch, false) < after - 0.05, 'keeps improving over steps');
  opt.dispose();
  model.dispose();
});

test('dropout follows ForwardOptions.seed when given (resumable training), the model\'s own generator otherwise', () => {
  const model = build({ dropout: 0.3, embedDropout: 0.3 });
  const x: ModelInput = { sessionId: 's1', input: tf.tensor3d(maskedBatch('neuron', 4).input, [B, T, N]), mode: 'neuron', causal: false };
  const run = (seed?: number) => {
    const y = model.forward(x, { training: true, seed });
    const v = Array.from(y.dataSync());
    y.dispose();
    return v;
  };
  assert.equal(run(11), run(11), 'same seed, same dropout');
  assert.not.equal(run(11), run(12));
  assert.not.equal(run(), run(), 'unseeded calls draw on');
  x.input.dispose();
  model.dispose();
});

test('no tensors leak across 20 training steps', () => {
  const model = build();
  const opt = tf.train.adam(1e-3);
  step(model, opt, maskedBatch('neuron', 1));
  const n = tf.memory().numTensors;
  for (let i = 0; i < 20; i++) step(model, opt, maskedBatch(MASKING_MODES[i % 5], i));
  assert.is(tf.memory().numTensors, n);
  opt.dispose();
  model.dispose();
});

test('every masking mode trains a step (prompt and causal paths included)', () => {
  const model = build({ sessionTokens: true });
  for (const mode of MASKING_MODES) {
    // A fresh plain SGD per mode, so only weights with a gradient from this batch move.
    const opt = tf.train.sgd(0.05);
    const before = Object.fromEntries(Object.entries(model.weights()).map(([k, v]) => [k, v.dataSync().slice()]));
    const batch = maskedBatch(mode, 5);
    assert.is(batch.causal, mode === 'causal');
    const l = step(model, opt, batch);
    assert.ok(Number.isFinite(l) && l > 0, `${mode}: loss ${l}`);
    const changed = (name: string) => model.weights()[name].dataSync().some((v, i) => v !== before[name][i]);
    assert.ok(changed('encoder.0.attn.qkv.weight') && changed('sessions.s1.in1.weight') && changed('sessions.s1.token'), `${mode} did not update`);
    // Only the batch's own prompt token learns (temporal has none).
    const rows = model.weights()['prompts'].arraySync() as number[][];
    const prevRows = Array.from({ length: 4 }, (_, r) => Array.from(before['prompts'].slice(r * 16, (r + 1) * 16)));
    const moved = rows.map((row, r) => row.some((v, i) => v !== prevRows[r][i]));
    assert.equal(moved, ['neuron', 'causal', 'inter-region', 'intra-region'].map((m) => m === mode), `${mode}: prompt rows moved ${moved}`);
    opt.dispose();
  }
  model.dispose();
});

test('causal mode: changing future bins never changes an earlier prediction, prompt and session tokens included', () => {
  const model = build({ sessionTokens: true, layers: 3 }, [{ sessionId: 's1', nNeurons: N, nBins: T }], 4);
  const base = simulated(7);
  const input = (counts: Int32Array) => tf.tensor3d(Float32Array.from(counts), [B, T, N]);
  for (const mode of ['causal', 'neuron', 'inter-region'] as const) {
    const x0 = input(base);
    const y0 = predict(model, { sessionId: 's1', input: x0, mode, causal: true });
    for (const k of [1, 5, T - 1]) {
      const changed = base.slice();
      for (let b = 0; b < B; b++) for (let t = k; t < T; t++) for (let n = 0; n < N; n++) changed[(b * T + t) * N + n] += 3;
      const x1 = input(changed);
      const y1 = predict(model, { sessionId: 's1', input: x1, mode, causal: true });
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          for (let n = 0; n < N; n++) {
            const i = (b * T + t) * N + n;
            if (t < k) assert.ok(Math.abs(y1[i] - y0[i]) < 1e-5, `${mode}: bin ${t} changed when bins >= ${k} did`);
          }
        }
      }
      assert.ok(y1.some((v, i) => Math.floor(i / N) % T >= k && Math.abs(v - y0[i]) > 1e-4), 'later bins do change');
      // The same change without causal attention reaches earlier bins: the check above can fail.
      const open0 = predict(model, { sessionId: 's1', input: x0, mode, causal: false });
      const open1 = predict(model, { sessionId: 's1', input: x1, mode, causal: false });
      assert.ok(Math.abs(open1[0] - open0[0]) > 1e-5);
      x1.dispose();
    }
    x0.dispose();
  }
  model.dispose();
});

test('stitchers are per session id: two sessions with the same neuron count get their own', () => {
  const model = build({}, [{ sessionId: 'left', nNeurons: N, nBins: T }, { sessionId: 'right', nNeurons: N, nBins: T }]);
  const w = model.weights();
  assert.not.equal(Array.from(w['sessions.left.in1.weight'].dataSync()), Array.from(w['sessions.right.in1.weight'].dataSync()));
  const x = tf.tensor3d(Float32Array.from(simulated(2)), [B, T, N]);
  const yl = predict(model, { sessionId: 'left', input: x, mode: 'neuron', causal: false });
  const yr = predict(model, { sessionId: 'right', input: x, mode: 'neuron', causal: false });
  assert.not.equal(Array.from(yl), Array.from(yr));
  // Training on one session leaves the other's stitcher alone.
  const rightBefore = Array.from(w['sessions.right.in1.weight'].dataSync());
  const opt = tf.train.adam(1e-2);
  step(model, opt, maskedBatch('neuron', 4, 'left'));
  assert.equal(Array.from(model.weights()['sessions.right.in1.weight'].dataSync()), rightBefore);
  assert.equal(model.trainableVariables({ sessionId: 'left' }).length, 6);
  assert.equal(model.trainableVariables('sessions').length, 12);
  assert.ok(model.trainableVariables('all').length > 12);
  // Ids with dots or slashes cannot collide with each other's weight names.
  model.addSession({ sessionId: 'a.b/c', nNeurons: 3, nBins: T });
  model.addSession({ sessionId: 'a', nNeurons: 3, nBins: T });
  assert.is(model.trainableVariables({ sessionId: 'a' }).length, 6);
  assert.throws(() => model.addSession({ sessionId: 'a', nNeurons: 3, nBins: T }), /session a already has a stitcher/);
  assert.throws(() => model.addSession({ sessionId: 'long', nNeurons: 3, nBins: T + 1 }), /13 bins, more than the position embedding's maxBins 12/);
  assert.equal(model.sessions().map((s) => s.sessionId), ['left', 'right', 'a.b/c', 'a']);
  opt.dispose();
  x.dispose();
  model.dispose();
});

test('weights load by name into a fresh model (and into one with an extra session)', () => {
  const a = build({}, undefined, 1);
  const b = build({}, undefined, 2);
  const x = tf.tensor3d(Float32Array.from(simulated(3)), [B, T, N]);
  const input: ModelInput = { sessionId: 's1', input: x, mode: 'intra-region', causal: false };
  assert.not.equal(Array.from(predict(a, input)), Array.from(predict(b, input)));
  b.loadWeights(a.weights());
  assert.equal(Array.from(predict(b, input)), Array.from(predict(a, input)));
  const c = build({}, [{ sessionId: 's1', nNeurons: N, nBins: T }, { sessionId: 'new', nNeurons: 5, nBins: T }], 3);
  assert.throws(() => c.loadWeights(a.weights(), { source: 'run/model.json' }), /in run\/model.json: missing weight 'sessions.new.in1.weight'/);
  c.loadWeights(a.weights(), { allowMissing: true });
  assert.equal(Array.from(predict(c, input)), Array.from(predict(a, input)));
  const bigger = build({ dModel: 32 });
  assert.throws(() => bigger.loadWeights(a.weights()), /'position' has shape \[12,16\], the model expects \[12,32\]/);
  for (const m of [a, b, c, bigger]) m.dispose();
  x.dispose();
});

test('readout init: meanCounts puts each neuron at its own mean rate, at build and when a session is added', () => {
  // Neuron 0 is a 0.25 Hz unit at 20 ms bins (0.005 counts/bin); the others fire 0.1-1.6 counts/bin.
  const means = Array.from({ length: N }, (_, n) => (n === 0 ? 0.005 : 0.1 * 2 ** (n % 5)));
  const x = tf.tensor3d(Float32Array.from(simulated(5)), [B, T, N]);
  const meanRates = (m: ArchitectureModel, sessionId: string) => {
    const y = predict(m, { sessionId, input: x, mode: 'neuron', causal: false });
    return Array.from({ length: N }, (_, n) => {
      let s = 0;
      for (let i = n; i < y.length; i += N) s += Math.exp(y[i]);
      return s / (B * T);
    });
  };
  const plain = build();
  const seeded = build({}, [{ sessionId: 's1', nNeurons: N, nBins: T, meanCounts: means }]);
  const bias = Array.from(seeded.weights()['sessions.s1.readout.bias'].dataSync());
  bias.forEach((b, n) => assert.ok(Math.abs(b - Math.log(means[n])) < 1e-6, `bias ${n}: ${b} vs log ${means[n]}`));
  // Every other weight is the default init: the same seed gives the same weights.
  for (const [name, w] of Object.entries(plain.weights())) {
    if (name !== 'sessions.s1.readout.bias') assert.equal(Array.from(w.dataSync()), Array.from(seeded.weights()[name].dataSync()), name);
  }
  const withInit = meanRates(seeded, 's1');
  const without = meanRates(plain, 's1');
  for (let n = 0; n < N; n++) {
    const ratio = withInit[n] / means[n];
    assert.ok(ratio > 1 / 3 && ratio < 3, `neuron ${n}: predicted ${withInit[n]} for a mean of ${means[n]}`);
  }
  assert.ok(without[0] / means[0] > 30, `without the init the sparse unit is predicted at ${without[0]} counts/bin`);
  assert.equal(seeded.sessions(), [{ sessionId: 's1', nNeurons: N, nBins: T }], 'the means seed the bias; the model keeps only the layout');

  // Fine-tuning: a session added to a (pretrained) model gets its own bias; the others keep theirs.
  const before = Array.from(plain.weights()['sessions.s1.readout.bias'].dataSync());
  const n0 = tf.memory().numTensors;
  plain.addSession({ sessionId: 'new', nNeurons: N, nBins: T, meanCounts: means });
  assert.is(tf.memory().numTensors, n0 + 6, 'only the new stitcher\'s six variables are created');
  assert.equal(Array.from(plain.weights()['sessions.s1.readout.bias'].dataSync()), before);
  const added = meanRates(plain, 'new');
  for (let n = 0; n < N; n++) assert.ok(added[n] / means[n] > 1 / 3 && added[n] / means[n] < 3, `added session, neuron ${n}: ${added[n]} vs ${means[n]}`);

  // Bad means are refused before anything is created.
  const n1 = tf.memory().numTensors;
  assert.throws(() => plain.addSession({ sessionId: 'bad', nNeurons: N, nBins: T, meanCounts: means.slice(1) }), /meanCounts has 8 values for 9 neurons/);
  assert.throws(() => plain.addSession({ sessionId: 'bad', nNeurons: N, nBins: T, meanCounts: means.map((m, n) => (n === 3 ? 0 : m)) }), /meanCounts\[3\] is 0/);
  assert.is(tf.memory().numTensors, n1);
  assert.not.ok(plain.hasSession('bad'));
  x.dispose();
  plain.dispose();
  seeded.dispose();
});

test('trainingMeanCounts: mean count per bin over the given trials; a silent neuron gets half a spike', () => {
  // 3 trials x 2 bins x 2 neurons; neuron 1 never fires in trials 0 and 2.
  const counts = [1, 0, 3, 0, /* trial 1 */ 9, 9, 9, 9, /* trial 2 */ 0, 0, 2, 0];
  assert.equal(trainingMeanCounts(counts, 2, 2, [0, 2]), [6 / 4, 0.5 / 4]);
  assert.equal(trainingMeanCounts(counts, 2, 2, [1]), [9, 9]);
  assert.is(trainingMeanCounts(counts, 2, 2, []), undefined);
  assert.throws(() => trainingMeanCounts(counts, 2, 2, [3]), /trial row 3 is outside the counts \(3 trials\)/);
});

test('bad config is refused naming the field', () => {
  const sessions = [{ sessionId: 's', nNeurons: 2, nBins: 2 }];
  assert.throws(() => ndt1Architecture.build({ dModel: 10, heads: 4 }, { sessions, seed: 1 }), /dModel 10 is not divisible by heads 4/);
  assert.throws(() => ndt1Architecture.build({ layers: 'two' }, { sessions, seed: 1 }), /ndt1 config: layers:/);
  assert.throws(() => ndt1Architecture.build({ dropout: 2 }, { sessions, seed: 1 }), /ndt1 config: dropout:/);
  for (const [k, v] of Object.entries(ndt1Architecture.configSchema.shape)) {
    const u = unwrapSchema(v as z.ZodType);
    assert.ok(u.description && u.hasDefault, `${k} needs a default and a description`);
  }
  assert.equal(ndt1Architecture.configSchema.parse({}).layers, 2);
});

test('plugin manifest: plugins/ndt1 loads through the plugin loader and contributes ndt1', async () => {
  const { manifest } = await loadPlugin(dirname(fileURLToPath(import.meta.url)));
  assert.is(manifest.name, 'ndt1');
  assert.equal(manifest.architectures.map((a) => a.name), ['ndt1']);
  assert.is(manifest.architectures[0], ndt1Architecture);
});

test.run();
