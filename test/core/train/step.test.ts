import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyMask, sampleMask } from '../../../core/masking/masking.ts';
import type { MaskedBatch, MaskingMode } from '../../../core/masking/types.ts';
import { createRng } from '../../../core/rng.ts';
import { initBackend } from '../../../core/tensor/backend.ts';
import * as tf from '../../../core/tensor/tf.ts';
import { ndt1Architecture } from '../../../plugins/ndt1/architecture.ts';
import { AdamW } from '../../../core/train/adamw.ts';
import { clipScale, evaluateLoss, globalNorm, scoredCount, trainStep } from '../../../core/train/step.ts';

await initBackend();

const B = 4, T = 8, N = 6;
const regions = Array.from({ length: N }, (_, n) => ['CA1', 'LP'][n % 2]);

function batch(seed: number, mode: MaskingMode = 'neuron'): MaskedBatch {
  const rng = createRng(seed);
  const target = Int32Array.from({ length: B * T * N }, (_, i) => rng.poisson(Math.exp(0.3 * ((i % N) - 2))));
  const shape = { trials: B, bins: T, neurons: N };
  const d = sampleMask(shape, regions, mode, createRng(seed + 100));
  return {
    kind: 'masked-batch', sessionId: 's', split: 'train', epoch: 0, epochs: 1, batchIndex: 0, batchesInEpoch: 1,
    trialIndex: Int32Array.from({ length: B }, (_, i) => i), shape, binSizeMs: 20,
    input: applyMask(target, d.masked), target, lossMask: d.lossMask, masked: d.masked, mode: d.mode, causal: d.causal, regions,
  };
}

const build = () => ndt1Architecture.build({ dModel: 16, layers: 1, heads: 2, mlpDim: 16, maxBins: T, dropout: 0.1, embedDropout: 0.1 }, { sessions: [{ sessionId: 's', nNeurons: N, nBins: T }], seed: 2 });

test('global norm and clip factor', () => {
  const n = globalNorm([tf.tensor1d([3, 0]), tf.tensor2d([[4]])]);
  assert.ok(Math.abs(n.dataSync()[0] - 5) < 1e-6);
  n.dispose();
  assert.is(clipScale(0.5, 1), 1);
  assert.ok(Math.abs(clipScale(5, 1) * 5 - 1) < 1e-6);
  assert.is(clipScale(5, 0), 1, 'clipNorm 0: off');
});

test('steps lower the loss on a fixed batch, with the same result for the same dropout seeds; no tensors leak', async () => {
  const b = batch(1);
  const runSteps = async () => {
    const model = build();
    const opt = new AdamW();
    const first = await evaluateLoss(model, [b]);
    const before = tf.memory().numTensors;
    let count = 0;
    for (let s = 0; s < 15; s++) {
      const r = await trainStep(model, opt, b, { lr: 1e-2, clipNorm: 1, dropoutSeed: s });
      assert.ok(r.ok);
      assert.is(r.scored, scoredCount(b));
      if (s === 0) count = tf.memory().numTensors; // the moments appear at the first step
    }
    assert.is(tf.memory().numTensors, count, 'flat across steps');
    assert.ok(count - before === opt.size, 'only the optimiser moments were added');
    const last = await evaluateLoss(model, [b]);
    const w = Array.from((Object.values(model.weights())[0] as tf.Tensor).dataSync());
    model.dispose();
    opt.dispose();
    return { first: first.loss, last: last.loss, w };
  };
  const a = await runSteps();
  assert.ok(a.last < a.first - 0.05, `loss ${a.first} -> ${a.last}`);
  const again = await runSteps();
  assert.equal(again.w, a.w, 'deterministic');
});

test('a NaN in the batch is reported and changes no weight or moment', async () => {
  const model = build();
  const opt = new AdamW();
  const good = batch(2);
  await trainStep(model, opt, good, { lr: 1e-2, clipNorm: 1, dropoutSeed: 0 });
  const snapshot = () => [...Object.values(model.weights()), ...Object.values(opt.state().moments)].map((t) => Array.from(t.dataSync()));
  const before = snapshot();
  const bad = batch(3);
  bad.input[0] = NaN;
  const r = await trainStep(model, opt, bad, { lr: 1e-2, clipNorm: 1, dropoutSeed: 1 });
  assert.not.ok(r.ok);
  assert.ok(!Number.isFinite(r.loss));
  if (!r.ok) assert.ok(r.badWeights.length > 0);
  assert.equal(snapshot(), before);
  assert.is(opt.step, 1);
  model.dispose();
  opt.dispose();
});

test('evaluation loss is the mean over every scored entry of all batches', async () => {
  const model = build();
  const bs = [batch(4, 'temporal'), batch(5, 'causal')];
  const each = await Promise.all(bs.map((b) => evaluateLoss(model, [b])));
  const both = await evaluateLoss(model, bs);
  const want = (each[0].loss * each[0].scored + each[1].loss * each[1].scored) / (each[0].scored + each[1].scored);
  assert.ok(Math.abs(both.loss - want) < 1e-6);
  assert.is(both.scored, scoredCount(bs[0]) + scoredCount(bs[1]));
  model.dispose();
});

test.run();
