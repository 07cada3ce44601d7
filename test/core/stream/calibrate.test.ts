import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ndt1Architecture } from '../../../plugins/ndt1/architecture.ts';
import { createRng } from '../../../core/rng.ts';
import { initBackend } from '../../../core/tensor/backend.ts';
import { poissonNll } from '../../../core/tensor/loss.ts';
import * as tf from '../../../core/tensor/tf.ts';
import { CalibrationBuffer, MAX_CALIBRATION_VALUES, fitStitcher } from '../../../core/stream/calibrate.ts';

await initBackend();

const N = 6;
const BINS = 200;

/** Counts with very different rates per neuron: an untrained stitcher predicts them badly. */
function calibrationCounts(seed: number): Int32Array {
  const rng = createRng(seed);
  const rates = [0.05, 0.2, 0.5, 1, 2, 4];
  const c = new Int32Array(BINS * N);
  for (let b = 0; b < BINS; b++) for (let n = 0; n < N; n++) c[b * N + n] = rng.poisson(rates[n]);
  return c;
}

function build() {
  const model = ndt1Architecture.build({ dModel: 16, layers: 1, heads: 2, mlpDim: 32, maxBins: 20 }, { sessions: [{ sessionId: 'old', nNeurons: 4, nBins: 20 }], seed: 2 });
  model.addSession({ sessionId: 'new', nNeurons: N, nBins: 20 });
  return model;
}

/** Unmasked eval-mode loss of all neurons on fixed windows (what the stream's rates are scored on). */
function heldOutLoss(model: ReturnType<typeof build>, counts: Int32Array): number {
  const w = 20;
  const windows = BINS / w;
  return tf.tidy(() => {
    const y = tf.tensor3d(Float32Array.from(counts), [windows, w, N]);
    const out = model.forward({ sessionId: 'new', input: y, mode: 'causal', causal: true }, { training: false });
    return poissonNll(out, y, tf.onesLike(y));
  }).dataSync()[0];
}

test('fitting the fresh stitcher lowers the loss on new data of the recording and leaves every other weight untouched', async () => {
  const model = build();
  const weightsBefore = Object.fromEntries(Object.entries(model.weights()).map(([k, v]) => [k, v.dataSync().slice()]));
  const held = calibrationCounts(99);
  const before = heldOutLoss(model, held);
  const tensors = tf.memory().numTensors;
  const losses: number[] = [];
  const r = await fitStitcher(model, calibrationCounts(1), BINS, { sessionId: 'new', windowBins: 20, steps: 60, learningRate: 1e-2, batchSize: 4, scheme: 'causal', seed: 1, onStep: (_, l) => losses.push(l) });
  assert.is(tf.memory().numTensors, tensors, 'tensors leaked by calibration');
  assert.is(r.steps, 60);
  assert.is(losses.length, 60);
  assert.ok(r.lastLoss < r.firstLoss, `masked loss ${r.firstLoss} -> ${r.lastLoss}`);
  const after = heldOutLoss(model, held);
  assert.ok(after < before - 0.05, `held-out loss ${before} -> ${after}`);
  let changed = 0;
  for (const [k, v] of Object.entries(model.weights())) {
    const same = v.dataSync().every((x, i) => x === weightsBefore[k][i]);
    if (k.startsWith('sessions.new.')) changed += same ? 0 : 1;
    else assert.ok(same, `${k} changed during calibration`);
  }
  assert.ok(changed >= 3, 'the new stitcher did not train');
  assert.is(r.trainedWeights, model.trainableVariables({ sessionId: 'new' }).reduce((s, v) => s + v.size, 0));
  model.dispose();
});

test('calibration with the mtm scheme on unlabelled neurons, and a span shorter than the window', async () => {
  const model = build();
  const counts = calibrationCounts(4).subarray(0, 12 * N);
  const r = await fitStitcher(model, counts, 12, { sessionId: 'new', windowBins: 20, steps: 5, learningRate: 1e-3, batchSize: 2, scheme: 'mtm', seed: 3 });
  assert.is(r.windowBins, 12);
  assert.ok(Number.isFinite(r.lastLoss));
  model.dispose();
});

test('CalibrationBuffer keeps consecutive bins and refuses a buffer too large to hold', () => {
  const buf = new CalibrationBuffer(3, 2);
  buf.push({ binIndex: 5, counts: Int32Array.from([1, 2]) });
  buf.push({ binIndex: 6, counts: Int32Array.from([3, 4]) });
  assert.throws(() => buf.push({ binIndex: 8, counts: Int32Array.from([0, 0]) }), /got bin 8, expected 7/);
  buf.push({ binIndex: 7, counts: Int32Array.from([5, 6]) });
  assert.ok(buf.full);
  assert.equal([...buf.counts], [1, 2, 3, 4, 5, 6]);
  assert.is(buf.firstBinIndex, 5);
  assert.throws(() => new CalibrationBuffer(MAX_CALIBRATION_VALUES, 2), /shorten calibrationS/);
});

test.run();
