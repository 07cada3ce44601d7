import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ArchitectureModel, CausalStream } from '../../core/architecture.ts';
import type { MaskingMode } from '../../core/masking/types.ts';
import { createRng } from '../../core/rng.ts';
import { initBackend } from '../../core/tensor/backend.ts';
import * as tf from '../../core/tensor/tf.ts';
import { ndt1Architecture } from './architecture.ts';
import type { Ndt1Model } from './model.ts';

await initBackend();

const N = 11;
const MAX = 20;

function build(config: Record<string, unknown> = {}, seed = 4): Ndt1Model {
  return ndt1Architecture.build({ dModel: 16, layers: 2, heads: 4, mlpDim: 24, maxBins: MAX, ...config }, { sessions: [{ sessionId: 's', nNeurons: N, nBins: MAX }], seed }) as Ndt1Model;
}

function randomBins(count: number, seed: number, rate = 0.7): Int32Array[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, () => Int32Array.from({ length: N }, () => rng.poisson(rate)));
}

/** The windowed reference: the last time step of a causal forward pass over bins + one zeroed bin. */
function windowed(model: ArchitectureModel, bins: Int32Array[], mode: MaskingMode): Float32Array {
  const t = bins.length + 1;
  const x = new Float32Array(t * N);
  bins.forEach((b, r) => x.set(b, r * N));
  const y = tf.tidy(() => tf.slice(model.forward({ sessionId: 's', input: tf.tensor3d(x, [1, t, N]), mode, causal: true }, { training: false }), [0, t - 1, 0], [1, 1, N]));
  const v = y.dataSync() as Float32Array;
  y.dispose();
  return Float32Array.from(v);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// Observed: ~5e-7 (float32 rounding of sums in another order).
const TOL = 1e-5;

for (const kernels of ['auto', 'js'] as const) {
  for (const [label, config, mode] of [
    ['prompt + session token', { sessionTokens: true }, 'causal'],
    ['prompt only', {}, 'causal'],
    ['no prefix (temporal)', { promptTokens: false }, 'temporal'],
    ['one layer', { layers: 1 }, 'causal'],
  ] as [string, Record<string, unknown>, MaskingMode][]) {
    test(`${kernels} kernels, ${label}: every prediction equals the windowed causal pass over the cache's span, up to the last position`, () => {
      const model = build(config);
      const bins = randomBins(MAX - 1, 7);
      const s = model.openCausalStream({ sessionId: 's', mode, caches: 1, maxBins: MAX - 1, kernels });
      const out = new Float32Array(N);
      let worst = 0;
      for (let len = 0; len <= MAX - 1; len++) {
        assert.is(s.length(0), len);
        s.predictNext(0, out);
        const want = windowed(model, bins.slice(0, len), mode);
        worst = Math.max(worst, maxDiff(out, want));
        if (len < MAX - 1) s.append(bins[len]);
      }
      assert.ok(worst < TOL, `max |cached - windowed| = ${worst}`);
      // predictNext does not append: asking twice gives the same numbers.
      const again = new Float32Array(N);
      s.predictNext(0, again);
      assert.equal([...again], [...out]);
      s.dispose();
      model.dispose();
    });
  }
}

test('caches are independent: a reset cache restarts at position 0 while the other keeps its span', () => {
  const model = build({ sessionTokens: true });
  const bins = randomBins(30, 8, 1.5);
  const s = model.openCausalStream({ sessionId: 's', mode: 'causal', caches: 2, maxBins: 12 });
  const out = new Float32Array(N);
  for (let i = 0; i < 10; i++) s.append(bins[i]);
  s.reset(1);
  s.append(bins[10]);
  s.append(bins[11]);
  assert.throws(() => s.append(bins[12]), /cache 0 is full \(12 bins\)/);
  s.reset(0);
  for (let i = 12; i < 16; i++) s.append(bins[i]);
  // Cache 0 was reset after bin 11 and holds 12..15; cache 1 was reset after bin 9 and holds 10..15.
  assert.is(s.length(0), 4);
  assert.is(s.length(1), 6);
  s.predictNext(0, out);
  assert.ok(maxDiff(out, windowed(model, bins.slice(12, 16), 'causal')) < TOL);
  s.predictNext(1, out);
  assert.ok(maxDiff(out, windowed(model, bins.slice(10, 16), 'causal')) < TOL);
  s.dispose();
  model.dispose();
});

test('native and JS kernels agree; a spike only changes what comes after it', () => {
  const model = build();
  const bins = randomBins(12, 9);
  const run = (kernels: 'auto' | 'js', bs: Int32Array[]) => {
    const s: CausalStream = model.openCausalStream({ sessionId: 's', mode: 'causal', caches: 1, maxBins: 15, kernels });
    const preds: Float32Array[] = [];
    for (const b of bs) {
      const o = new Float32Array(N);
      s.predictNext(0, o);
      preds.push(o);
      s.append(b);
    }
    s.dispose();
    return preds;
  };
  const a = run('auto', bins);
  const j = run('js', bins);
  for (let i = 0; i < a.length; i++) assert.ok(maxDiff(a[i], j[i]) < 1e-5, `bin ${i}`);
  const changed = bins.map((b) => b.slice());
  changed[5][2] += 4;
  const c = run('auto', changed);
  for (let i = 0; i <= 5; i++) assert.equal([...c[i]], [...a[i]], `prediction ${i} saw the spike at bin 5`);
  assert.ok(maxDiff(c[6], a[6]) > 1e-6, 'prediction 6 should see bin 5');
  model.dispose();
});

test('opening copies the weights: later weight changes reach only a newly opened stream; no tensors are left', () => {
  const model = build();
  const bins = randomBins(6, 10);
  const before = tf.memory().numTensors;
  const s = model.openCausalStream({ sessionId: 's', mode: 'causal', caches: 2, maxBins: 10 });
  assert.is(tf.memory().numTensors, before);
  for (const b of bins) s.append(b);
  const old = new Float32Array(N);
  s.predictNext(0, old);
  const bias = model.weights()['sessions.s.readout.bias'];
  const shifted = tf.tidy(() => tf.add(bias, 1));
  (bias as tf.Variable).assign(shifted);
  shifted.dispose();
  const same = new Float32Array(N);
  s.predictNext(0, same);
  assert.equal([...same], [...old]);
  const s2 = model.openCausalStream({ sessionId: 's', mode: 'causal', caches: 1, maxBins: 10 });
  for (const b of bins) s2.append(b);
  const fresh = new Float32Array(N);
  s2.predictNext(0, fresh);
  for (let i = 0; i < N; i++) assert.ok(Math.abs(fresh[i] - old[i] - 1) < 1e-5);
  assert.ok(maxDiff(fresh, windowed(model, bins, 'causal')) < TOL);
  s.dispose();
  s2.dispose();
  model.dispose();
});

test('bad requests are refused with the reason', () => {
  const model = build();
  assert.throws(() => model.openCausalStream({ sessionId: 's', mode: 'causal', caches: 1, maxBins: MAX }), /need 21 positions, the position embedding has 20/);
  assert.throws(() => model.openCausalStream({ sessionId: 'x', mode: 'causal', caches: 1, maxBins: 5 }), /no stitcher for session x/);
  assert.throws(() => model.openCausalStream({ sessionId: 's', mode: 'causal', caches: 0, maxBins: 5 }), /caches must be a positive integer/);
  const s = model.openCausalStream({ sessionId: 's', mode: 'causal', caches: 1, maxBins: 5 });
  assert.throws(() => s.append(new Int32Array(N + 1)), /a bin of 12 counts, the stitcher reads 11 neurons/);
  assert.throws(() => s.predictNext(1, new Float32Array(N)), /no cache 1/);
  s.dispose();
  assert.throws(() => s.append(new Int32Array(N)), /used after dispose/);
  model.dispose();
});

test.run();
