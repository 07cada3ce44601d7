import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { initBackend } from '../tensor/backend.ts';
import * as tf from '../tensor/tf.ts';
import { AdamW } from './adamw.ts';

await initBackend();

/** torch.optim.AdamW's update, written out in float64 for one weight vector. */
function reference(p0: number[], grads: number[][], lrs: number[], wd: number, scale = 1) {
  const b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g0, i) => {
    const t = i + 1;
    const lr = lrs[i];
    for (let j = 0; j < p.length; j++) {
      const g = g0[j] * scale;
      p[j] *= 1 - lr * wd;
      m[j] = b1 * m[j] + (1 - b1) * g;
      v[j] = b2 * v[j] + (1 - b2) * g * g;
      const denom = Math.sqrt(v[j]) / Math.sqrt(1 - b2 ** t) + eps;
      p[j] -= (lr / (1 - b1 ** t)) * (m[j] / denom);
    }
  });
  return p;
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
  assert.is(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
};

test('matches torch.optim.AdamW: bias correction, decoupled decay, per-step learning rate, gradient scale', () => {
  const p0 = [0.5, -1.2, 2.0, 0.03];
  const grads = [[0.1, -0.4, 1.5, 0], [0.2, 0.3, -0.7, 0.01], [-0.5, 0.1, 0.2, 0.02], [1, 1, 1, 1]];
  const lrs = [0.01, 0.02, 0.005, 0.03];
  const v = tf.variable(tf.tensor1d(p0));
  const opt = new AdamW({ weightDecay: 0.1 });
  grads.forEach((g, i) => {
    const gt = tf.tensor1d(g);
    opt.apply([{ name: 'w', variable: v, grad: gt }], lrs[i], 0.5);
    gt.dispose();
  });
  assert.is(opt.step, 4);
  close(v.dataSync(), reference(p0, grads, lrs, 0.1, 0.5), 1e-5, 'weights');
  opt.dispose();
  v.dispose();
});

test('weight decay is decoupled: a zero gradient only shrinks the weight by lr * wd', () => {
  const v = tf.variable(tf.tensor1d([2, -4]));
  const opt = new AdamW({ weightDecay: 0.5 });
  const g = tf.zeros([2]);
  opt.apply([{ name: 'w', variable: v, grad: g }], 0.1);
  close(v.dataSync(), [2 * 0.95, -4 * 0.95], 1e-6, 'decayed');
  tf.dispose([g, v]);
  opt.dispose();
});

test('state -> load in a fresh optimiser continues exactly; no tensors leak', () => {
  const before = tf.memory().numTensors;
  const grads = [[0.3, -0.2], [0.1, 0.5], [-0.4, 0.2], [0.2, 0.2]];
  const run = (split: boolean) => {
    const v = tf.tidy(() => tf.variable(tf.tensor1d([1, 1])));
    let opt = new AdamW();
    grads.forEach((g, i) => {
      if (split && i === 2) {
        // Copy the state out as a checkpoint would, and continue in another optimiser.
        const s = opt.state();
        const copy = { step: s.step, moments: Object.fromEntries(Object.entries(s.moments).map(([k, t]) => [k, t.clone()])) };
        opt.dispose();
        opt = new AdamW();
        opt.load(copy);
        tf.dispose(Object.values(copy.moments));
      }
      const gt = tf.tensor1d(g);
      opt.apply([{ name: 'w', variable: v, grad: gt }], 0.01);
      gt.dispose();
    });
    const out = Array.from(v.dataSync());
    assert.is(opt.size, 2);
    opt.dispose();
    v.dispose();
    return out;
  };
  assert.equal(run(true), run(false));
  assert.is(tf.memory().numTensors, before);
});

test('a malformed state entry is refused', () => {
  const opt = new AdamW();
  assert.throws(() => opt.load({ step: 1, moments: { 'x/w': tf.zeros([1]) } }), /unexpected entry 'x\/w'/);
});

test.run();
