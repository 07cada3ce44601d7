// The fused pieces of a training step (train.ts, native/src/model_kernels.h) against their tf-op
// paths: the gradient sum of squares, AdamW over every weight in place (and the fallback when a
// weight's values are shared), the masked Poisson NLL and its gradient; no tensor leaks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { initBackend } from '../backend.ts';
import { poissonNll } from '../loss.ts';
import * as tf from '../tf.ts';
import { AdamW } from '../../train/adamw.ts';
import { restoreFusedKernels, setFusedKernels } from './layer.ts';
import { loadNative } from './native.ts';
import { adamwInPlace, fusedLossAvailable, fusedOptimizerAvailable, sumOfSquares } from './train.ts';
import { assertClose } from './assert-close.ts';

const off = !loadNative().native;

const close = assertClose;

const values = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.71 + k) * (1 + (i % 7)));

test('setup', async () => {
  await initBackend({ force: 'wasm' });
  if (!off) {
    assert.ok(fusedOptimizerAvailable());
    assert.ok(fusedLossAvailable());
  }
});

test('sumOfSquares = the tf-op sum of squares over every tensor (sizes from 1 to above the parallel threshold)', () => {
  const ts = [1, 3, 64, 1000, 70000].map((n, k) => tf.tensor1d(values(n, k)));
  const got = sumOfSquares(ts);
  const want = ts.reduce((s, t) => s + Array.from(t.dataSync()).reduce((a, x) => a + x * x, 0), 0);
  if (off) assert.is(got, undefined);
  else close([got!], [want], 1e-12, 0, 'sum of squares');
  const prev = setFusedKernels(false, ['optimizer']);
  assert.is(sumOfSquares(ts), undefined, 'switched off');
  restoreFusedKernels(prev);
  tf.dispose(ts);
});

test('AdamW over every weight in place = the op-by-op update (3 steps, clipping scale, decay); a shared weight falls back', () => {
  const shapes = [[5], [3, 7], [200, 100], [64]];
  const run = (fused: boolean, share: boolean) => {
    const prev = setFusedKernels(fused, ['optimizer']);
    try {
      const ws = shapes.map((s, k) => tf.tidy(() => tf.variable(tf.tensor(values(s.reduce((a, b) => a * b, 1), k), s))));
      // An extra tensor holding one weight's values: that weight must not be written in place.
      const alias = share ? tf.clone(ws[1]) : undefined;
      const opt = new AdamW({ weightDecay: 0.05 });
      for (let step = 0; step < 3; step++) {
        const grads = ws.map((w, k) => tf.tidy(() => tf.mul(tf.sin(tf.add(w, step + k)), 0.3)));
        opt.apply(ws.map((w, k) => ({ name: `w${k}`, variable: w, grad: grads[k] })), 1e-2, step === 1 ? 0.5 : 1);
        tf.dispose(grads);
      }
      const out = ws.map((w) => Float32Array.from(w.dataSync()));
      const aliasValues = alias ? Float32Array.from(alias.dataSync()) : undefined;
      const moments = Object.values(opt.state().moments).map((m) => Float32Array.from(m.dataSync()));
      opt.dispose();
      tf.dispose([...ws, ...(alias ? [alias] : [])]);
      return { out, moments, aliasValues };
    } finally {
      restoreFusedKernels(prev);
    }
  };
  const before = tf.memory().numTensors;
  const plain = run(false, false);
  const fused = run(true, false);
  const shared = run(true, true);
  assert.is(tf.memory().numTensors, before, 'no tensors left behind');
  plain.out.forEach((p, i) => close(fused.out[i], p, 1e-6, 1e-7, `weight ${i}`));
  plain.moments.forEach((p, i) => close(fused.moments[i], p, 1e-6, 1e-9, `moment ${i}`));
  plain.out.forEach((p, i) => close(shared.out[i], p, 1e-6, 1e-7, `weight ${i} (one shared)`));
  // The clone kept the initial values: the shared weight was updated by replacing, not in place.
  close(shared.aliasValues!, values(21, 1), 0, 0, 'the clone of the shared weight');
});

test('adamwInPlace with the optimizer path off updates nothing and hands every weight back', () => {
  const prev = setFusedKernels(false, ['optimizer']);
  const p = tf.tidy(() => tf.variable(tf.ones([4])));
  const items = [{ p, g: tf.ones([4]), m: tf.tidy(() => tf.variable(tf.zeros([4]))), v: tf.tidy(() => tf.variable(tf.zeros([4]))) }];
  assert.is(adamwInPlace(items, { gradScale: 1, beta1: 0.9, beta2: 0.999, sqrtBc2: 1, epsilon: 1e-8, decay: 1, stepSize: 1 }).length, 1);
  assert.equal(Array.from(p.dataSync()), [1, 1, 1, 1]);
  restoreFusedKernels(prev);
  tf.dispose([p, items[0].g, items[0].m, items[0].v]);
});

test('masked Poisson NLL fused = plain: value and gradient, empty mask gives 0, large batch (parallel chunks)', () => {
  for (const [shape, maskAll] of [[[2, 3, 5], false], [[8, 100, 100], false], [[2, 2, 2], true]] as [number[], boolean][]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = tf.tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.3) * 2), shape);
    const y = tf.tensor(Float32Array.from({ length: n }, (_, i) => (i * 7) % 4), shape);
    const m = tf.tensor(Float32Array.from({ length: n }, (_, i) => (maskAll ? 0 : i % 3 === 0 ? 1 : 0)), shape);
    const run = (fused: boolean) => {
      const prev = setFusedKernels(fused, ['loss']);
      try {
        const before = tf.memory().numTensors;
        const l = poissonNll(x, y, m);
        const g = tf.grad((xx: tf.Tensor) => tf.mul(poissonNll(xx, y, m), 3))(x);
        const r = { l: l.dataSync()[0], g: Float32Array.from(g.dataSync()) };
        tf.dispose([l, g]);
        assert.is(tf.memory().numTensors, before, 'no tensors left behind');
        return r;
      } finally {
        restoreFusedKernels(prev);
      }
    };
    const plain = run(false);
    const fused = run(true);
    close([fused.l], [plain.l], 1e-6, 1e-7, `loss ${shape}`);
    close(fused.g, plain.g, 1e-6, 1e-9, `gradient ${shape}`);
    if (maskAll) assert.is(fused.l, 0);
    tf.dispose([x, y, m]);
  }
});

test.run();
