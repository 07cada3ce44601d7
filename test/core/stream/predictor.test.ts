import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ndt1Architecture } from '../../../plugins/ndt1/architecture.ts';
import type { ArchitectureModel } from '../../../core/architecture.ts';
import { createRng } from '../../../core/rng.ts';
import { initBackend } from '../../../core/tensor/backend.ts';
import * as tf from '../../../core/tensor/tf.ts';
import type { Bin } from '../../../core/stream/online-binner.ts';
import { CausalPredictor, LatencyStats, type PredictedBin } from '../../../core/stream/predictor.ts';

await initBackend();

const N = 7;

function smallModel(promptTokens = true): ArchitectureModel {
  return ndt1Architecture.build({ dModel: 16, layers: 1, heads: 2, mlpDim: 32, maxBins: 24, promptTokens }, { sessions: [{ sessionId: 's', nNeurons: N, nBins: 24 }], seed: 3 });
}

function randomBins(count: number, seed: number): Bin[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, (_, b) => ({ binIndex: b, t0: b * 0.02, counts: Int32Array.from({ length: N }, () => rng.poisson(0.8)) }));
}

async function runAll(model: ArchitectureModel, bins: Bin[], windowBins: number, strideBins: number): Promise<PredictedBin[]> {
  const p = new CausalPredictor({ model, sessionId: 's', nNeurons: N, windowBins, strideBins });
  const out: PredictedBin[] = [];
  for (const b of bins) out.push(await p.push(b));
  return out;
}

test('every bin is predicted exactly once, in order, with horizons 1..stride', async () => {
  const model = smallModel();
  const out = await runAll(model, randomBins(37, 1), 12, 5);
  assert.equal(out.map((p) => p.binIndex), Array.from({ length: 37 }, (_, i) => i));
  assert.equal(out.slice(0, 10).map((p) => p.horizonBins), [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]);
  for (const p of out) {
    assert.is(p.logRates.length, N);
    assert.ok(p.logRates.every(Number.isFinite));
  }
  model.dispose();
});

test('causal: a spike added at bin t never changes the prediction of any bin <= t, and changes later ones', async () => {
  const model = smallModel();
  const bins = randomBins(40, 2);
  const base = await runAll(model, bins, 12, 4);
  for (const t of [0, 9, 17, 22]) {
    const changed = bins.map((b) => ({ ...b, counts: b.counts.slice() }));
    changed[t].counts[3] += 5;
    const again = await runAll(model, changed, 12, 4);
    for (let b = 0; b <= t; b++) assert.equal([...again[b].logRates], [...base[b].logRates], `bin ${b} changed after a spike at bin ${t}`);
    // The first bin of the next pass does depend on bin t (it is inside that pass's context).
    const next = (Math.floor(t / 4) + 1) * 4;
    const diff = Math.max(...again[next].logRates.map((v, i) => Math.abs(v - base[next].logRates[i])));
    assert.ok(diff > 1e-6, `bin ${next} should react to the spike at bin ${t}`);
  }
  model.dispose();
});

test('a prediction equals the forward-prediction task: context bins, then stride zeroed bins, causal prompt', async () => {
  const model = smallModel();
  const bins = randomBins(20, 5);
  const out = await runAll(model, bins, 10, 3);
  // Bins 15..17 are predicted from the 7 bins 8..14 followed by 3 zeros.
  const input = new Float32Array(10 * N);
  for (let r = 0; r < 7; r++) input.set(bins[8 + r].counts, r * N);
  const y = tf.tidy(() => model.forward({ sessionId: 's', input: tf.tensor3d(input, [1, 10, N]), mode: 'causal', causal: true }, { training: false }));
  const want = y.dataSync().slice(7 * N);
  y.dispose();
  for (let k = 0; k < 3; k++) {
    const got = out[15 + k].logRates;
    for (let i = 0; i < N; i++) assert.ok(Math.abs(got[i] - want[k * N + i]) < 1e-5, `bin ${15 + k} neuron ${i}`);
  }
  model.dispose();
});

test('no tensors leak over many passes; a model without prompt tokens runs temporal mode with causal attention', async () => {
  const model = smallModel(false);
  const p = new CausalPredictor({ model, sessionId: 's', nNeurons: N, windowBins: 8, strideBins: 2 });
  assert.is(p.mode, 'temporal');
  const bins = randomBins(300, 9);
  await p.push(bins[0]);
  const before = tf.memory().numTensors;
  for (const b of bins.slice(1)) await p.push(b);
  assert.is(tf.memory().numTensors, before);
  // One pass before bin 0, then one after every second bin (the last one forecasts bins 300-301).
  assert.is(p.passes.count, 151);
  model.dispose();
});

test('bins out of order, bad window sizes and an unknown session are refused', async () => {
  const model = smallModel();
  assert.throws(() => new CausalPredictor({ model, sessionId: 's', nNeurons: N, windowBins: 4, strideBins: 4 }), /windowBins \(4\) must be an integer larger than strideBins/);
  assert.throws(() => new CausalPredictor({ model, sessionId: 'x', nNeurons: N, windowBins: 8, strideBins: 2 }), /no per-session weights for 'x'/);
  const p = new CausalPredictor({ model, sessionId: 's', nNeurons: N, windowBins: 8, strideBins: 2 });
  const bins = randomBins(5, 1);
  await p.push(bins[0]);
  try {
    await p.push(bins[2]);
    assert.unreachable('expected an error');
  } catch (e) {
    assert.match((e as Error).message, /got bin 2, expected bin 1/);
  }
  model.dispose();
});

test('LatencyStats percentiles from its histogram', () => {
  const s = new LatencyStats();
  for (let i = 1; i <= 100; i++) s.add(i / 10);
  assert.is(s.count, 100);
  assert.ok(Math.abs(s.meanMs - 5.05) < 1e-9);
  assert.ok(Math.abs(s.quantileMs(0.5) - 5.0) <= 0.011);
  assert.ok(Math.abs(s.quantileMs(0.99) - 9.9) <= 0.011);
  assert.is(s.maxMs, 10);
});

test.run();
