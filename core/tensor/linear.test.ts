import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng } from '../rng.ts';
import { initBackend } from './backend.ts';
import { Linear, linear, linear2d } from './linear.ts';
import { ParamStore } from './params.ts';
import * as tf from './tf.ts';

function randomTensor(shape: number[], seed: number): tf.Tensor {
  const rng = createRng(seed);
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);
}

function maxRelDiff(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  assert.is(x.length, y.length);
  let scale = 0;
  for (let i = 0; i < y.length; i++) scale = Math.max(scale, Math.abs(y[i]));
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]));
  return d / Math.max(scale, 1e-12);
}

for (const backend of ['wasm', 'cpu'] as const) {
  test(`${backend}: linear's value and gradients match tf.matMul's to float32 rounding`, async () => {
    await initBackend({ force: backend });
    const x = randomTensor([37, 23], 1);
    const w = randomTensor([23, 19], 2);
    const b = randomTensor([19], 3);
    const dy = randomTensor([37, 19], 4);
    // Weighting the output by a fixed random dy makes every gradient entry distinct.
    const ours = tf.grads((x_: tf.Tensor, w_: tf.Tensor, b_: tf.Tensor) => tf.sum(tf.mul(linear2d(x_ as tf.Tensor2D, w_ as tf.Tensor2D, b_ as tf.Tensor1D), dy)));
    const ref = tf.grads((x_: tf.Tensor, w_: tf.Tensor, b_: tf.Tensor) => tf.sum(tf.mul(tf.add(tf.matMul(x_ as tf.Tensor2D, w_ as tf.Tensor2D), b_), dy)));
    const g = ours([x, w, b]);
    const r = ref([x, w, b]);
    for (let i = 0; i < 3; i++) assert.ok(maxRelDiff(g[i], r[i]) < 1e-5, `gradient ${i}: ${maxRelDiff(g[i], r[i])}`);
    assert.ok(maxRelDiff(linear2d(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D), tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b)) < 1e-6);
    // No bias, and a 3-D input folded to 2-D.
    const x3 = randomTensor([4, 9, 23], 5);
    const dy3 = randomTensor([4, 9, 19], 6);
    const g3 = tf.grads((x_: tf.Tensor, w_: tf.Tensor) => tf.sum(tf.mul(linear(x_, w_ as tf.Tensor2D), dy3)))([x3, w]);
    const r3 = tf.grads((x_: tf.Tensor, w_: tf.Tensor) => tf.sum(tf.mul(tf.matMul(tf.reshape(x_, [36, 23]), w_ as tf.Tensor2D).reshape([4, 9, 19]), dy3)))([x3, w]);
    assert.equal(g3[0].shape, [4, 9, 23]);
    for (let i = 0; i < 2; i++) assert.ok(maxRelDiff(g3[i], r3[i]) < 1e-5);
    tf.disposeVariables();
  });
}

test('Linear: seeded PyTorch-style init, shape errors name the layer sizes', async () => {
  await initBackend({ force: 'wasm' });
  const a = new ParamStore(createRng(1));
  const l = new Linear(a, 'fc', 16, 8);
  const w = l.weight.dataSync();
  assert.ok(w.every((v) => Math.abs(v) <= 0.25));
  assert.ok(Math.max(...w) > 0.2 && Math.min(...w) < -0.2, 'spreads over the bound');
  const b = new ParamStore(createRng(1));
  new Linear(b, 'other', 3, 3);
  // Values depend on the seed and the parameter name, not on what was created before.
  const l2 = new Linear(b, 'fc', 16, 8);
  assert.equal(Array.from(l2.weight.dataSync()), Array.from(w));
  assert.equal(l.apply(tf.zeros([2, 5, 16])).shape, [2, 5, 8]);
  assert.throws(() => l.apply(tf.zeros([2, 15])), /input has 15 features, weight expects 16/);
  assert.throws(() => a.add('fc.weight', [1], { kind: 'zeros' }), /defined twice/);
  assert.is(a.count(), 16 * 8 + 8);
  a.dispose();
  assert.is(a.names().length, 0);
});

test('ParamStore.load checks names and shapes and assigns values', async () => {
  await initBackend({ force: 'wasm' });
  const s = new ParamStore(createRng(2));
  s.add('a', [2], { kind: 'zeros' });
  s.add('b', [3], { kind: 'ones' });
  assert.throws(() => s.load({ a: tf.tensor1d([1, 2]) }, { source: 'x/model.json' }), /cannot load weights in x\/model.json: missing weight 'b'/);
  assert.throws(() => s.load({ a: tf.tensor1d([1, 2, 3]) }, { allowMissing: true }), /'a' has shape \[3\], the model expects \[2\]/);
  assert.throws(() => s.load({ c: tf.tensor1d([1]) }, { allowMissing: true }), /unexpected weight 'c'/);
  s.load({ a: tf.tensor1d([1, 2]) }, { allowMissing: true });
  assert.equal(Array.from(s.get('a').dataSync()), [1, 2]);
  assert.equal(Array.from(s.get('b').dataSync()), [1, 1, 1]);
  s.dispose();
});

test.run();
