import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ndt1Architecture } from '../../../plugins/ndt1/architecture.ts';
import type { ArchitectureModel } from '../../../core/architecture.ts';
import { createRng } from '../../../core/rng.ts';
import { initBackend } from '../../../core/tensor/backend.ts';
import * as tf from '../../../core/tensor/tf.ts';
import { CachedCausalPredictor, createStreamPredictor } from '../../../core/stream/cached-predictor.ts';
import type { Bin } from '../../../core/stream/online-binner.ts';
import { CausalPredictor, type PredictedBin } from '../../../core/stream/predictor.ts';

await initBackend();

const N = 7;

function smallModel(config: Record<string, unknown> = {}): ArchitectureModel {
  return ndt1Architecture.build({ dModel: 16, layers: 2, heads: 2, mlpDim: 32, maxBins: 24, ...config }, { sessions: [{ sessionId: 's', nNeurons: N, nBins: 24 }], seed: 3 });
}

function randomBins(count: number, seed: number, first = 0): Bin[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, (_, b) => ({ binIndex: first + b, t0: (first + b) * 0.02, counts: Int32Array.from({ length: N }, () => rng.poisson(0.8)) }));
}

/** Last time step of the windowed causal pass over `bins` followed by one zeroed bin. */
function windowed(model: ArchitectureModel, bins: Bin[]): Float32Array {
  const t = bins.length + 1;
  const x = new Float32Array(t * N);
  bins.forEach((b, r) => x.set(b.counts, r * N));
  const y = tf.tidy(() => tf.slice(model.forward({ sessionId: 's', input: tf.tensor3d(x, [1, t, N]), mode: 'causal', causal: true }, { training: false }), [0, t - 1, 0], [1, 1, N]));
  const v = Float32Array.from(y.dataSync());
  y.dispose();
  return v;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function runAll(p: { push(b: Bin): Promise<PredictedBin> }, bins: Bin[]): Promise<PredictedBin[]> {
  const out: PredictedBin[] = [];
  for (const b of bins) out.push(await p.push(b));
  return out;
}

test('stride 1 with staggered caches: every bin predicted once, each equal to the windowed pass over its context, across restarts', async () => {
  const model = smallModel({ sessionTokens: true });
  const W = 8; // caches restart every 7 bins, offset by 4 (round(3.5))
  const bins = randomBins(60, 1);
  const p = new CachedCausalPredictor({ model, sessionId: 's', nNeurons: N, windowBins: W });
  assert.is(p.path, 'cached');
  assert.is(p.period, 7);
  assert.equal(p.contextRange, [4, 7]);
  const out = await runAll(p, bins);
  assert.equal(out.map((o) => o.binIndex), bins.map((b) => b.binIndex));
  const contexts = out.map((o) => o.contextBins!);
  // Growing from nothing until the first restart (cache 1 at bin 4, cache 0 at bin 7), then
  // between 7 - 4 + 1 = 4 and 7 bins.
  assert.equal(contexts.slice(0, 9), [0, 1, 2, 3, 4, 5, 6, 7, 4]);
  for (const c of contexts.slice(7)) assert.ok(c >= 4 && c <= 7, `context ${c}`);
  assert.ok(contexts.filter((c, i) => i > 0 && c < contexts[i - 1]).length >= 14, 'the caches restart every few bins');
  let worst = 0;
  for (const o of out) {
    const ctx = bins.slice(o.binIndex - o.contextBins!, o.binIndex);
    worst = Math.max(worst, maxDiff(o.logRates, windowed(model, ctx)));
    assert.is(o.horizonBins, 1);
  }
  assert.ok(worst < 1e-5, `max |cached - windowed| = ${worst}`);
  // The windowed path (stride 1) before its window fills predicts from the same spans, so the two agree there.
  const wp = new CausalPredictor({ model, sessionId: 's', nNeurons: N, windowBins: W, strideBins: 1 });
  const wout = await runAll(wp, bins.slice(0, 7));
  for (let i = 0; i < 7; i++) assert.ok(maxDiff(wout[i].logRates, out[i].logRates) < 1e-5, `bin ${i}`);
  p.dispose();
  model.dispose();
});

test('causal: a spike at bin t changes no prediction of a bin <= t, and changes the next one', async () => {
  const model = smallModel();
  const bins = randomBins(30, 2);
  const base = await runAll(new CachedCausalPredictor({ model, sessionId: 's', nNeurons: N, windowBins: 10 }), bins);
  for (const t of [0, 8, 13, 21]) {
    const changed = bins.map((b) => ({ ...b, counts: b.counts.slice() }));
    changed[t].counts[3] += 5;
    const again = await runAll(new CachedCausalPredictor({ model, sessionId: 's', nNeurons: N, windowBins: 10 }), changed);
    for (let b = 0; b <= t; b++) assert.equal([...again[b].logRates], [...base[b].logRates], `bin ${b} changed after a spike at bin ${t}`);
    assert.ok(maxDiff(again[t + 1].logRates, base[t + 1].logRates) > 1e-6, `bin ${t + 1} should react to the spike at bin ${t}`);
  }
  model.dispose();
});

test('primed bins become the caches at the first prediction, with the weights current then (after calibration)', async () => {
  const model = smallModel();
  const bins = randomBins(40, 3, 100);
  const p = new CachedCausalPredictor({ model, sessionId: 's', nNeurons: N, windowBins: 10 });
  for (const b of bins.slice(0, 20)) p.prime(b);
  // A calibration would change the stitcher here, after the primed bins.
  const v = model.weights()['sessions.s.in1.weight'] as tf.Variable;
  const changed = tf.tidy(() => tf.mul(v, 1.5));
  v.assign(changed);
  changed.dispose();
  const out = await runAll(p, bins.slice(20));
  assert.is(out[0].binIndex, 120);
  // The last 9 primed bins are replayed as a stream start: cache 1 restarted at its 5th bin.
  assert.is(out[0].contextBins, 9);
  assert.ok(p.openMs > 0);
  for (const o of out) {
    const ctx = bins.slice(o.binIndex - 100 - o.contextBins!, o.binIndex - 100);
    assert.ok(maxDiff(o.logRates, windowed(model, ctx)) < 1e-5, `bin ${o.binIndex}`);
  }
  assert.throws(() => p.prime(bins[0]), /prime\(\) after predictions started/);
  await p.push(bins[0]).then(
    () => assert.unreachable('expected an error'),
    (e: Error) => assert.match(e.message, /got bin 100, expected bin 140/),
  );
  p.dispose();
  model.dispose();
});

test('no tensors, flat memory and one pass per bin over many bins', async () => {
  const model = smallModel({ promptTokens: false });
  const p = new CachedCausalPredictor({ model, sessionId: 's', nNeurons: N, windowBins: 12, caches: 3 });
  assert.is(p.mode, 'temporal');
  assert.equal(p.contextRange, [8, 11]);
  const bins = randomBins(3000, 4);
  await p.push(bins[0]);
  const before = tf.memory().numTensors;
  const contexts = new Set<number>();
  for (const b of bins.slice(1)) contexts.add((await p.push(b)).contextBins!);
  assert.is(tf.memory().numTensors, before);
  assert.is(p.passes.count, 3000);
  // Three caches restarting every 11 bins, offset by 4 and 7: 8 to 11 bins of context once all have restarted.
  assert.equal([...contexts].filter((c) => c >= 8).sort((a, b) => a - b), [8, 9, 10, 11]);
  assert.ok([...contexts].every((c) => c <= 11));
  p.dispose();
  model.dispose();
});

test('createStreamPredictor: cached at stride 1 where the architecture has it, windowed otherwise', () => {
  const model = smallModel();
  const o = { model, sessionId: 's', nNeurons: N, windowBins: 10 };
  assert.is(createStreamPredictor({ ...o, strideBins: 1 }).path, 'cached');
  assert.is(createStreamPredictor({ ...o, strideBins: 2 }).path, 'windowed');
  assert.is(createStreamPredictor({ ...o, strideBins: 1, cache: 'off' }).path, 'windowed');
  // An architecture without openCausalStream (e.g. NDT2) gets the windowed path at stride 1.
  const plain: ArchitectureModel = Object.create(model, { openCausalStream: { value: undefined } });
  assert.is(createStreamPredictor({ ...o, model: plain, strideBins: 1 }).path, 'windowed');
  assert.throws(() => new CachedCausalPredictor({ ...o, model: plain }), /has no incremental causal prediction/);
  assert.throws(() => new CachedCausalPredictor({ ...o, windowBins: 2 }), /windowBins \(2\) must be an integer of at least caches \+ 1 \(3\)/);
  assert.throws(() => new CachedCausalPredictor({ ...o, sessionId: 'x' }), /no per-session weights for 'x'/);
  model.dispose();
});

test.run();
