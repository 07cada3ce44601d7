import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng } from '../rng.ts';
import { initBackend } from './backend.ts';
import { attentionBias, dropout, Encoder, gelu, LayerNorm, MultiHeadAttention, softsign } from './layers.ts';
import { ParamStore } from './params.ts';
import * as tf from './tf.ts';

await initBackend({ force: 'wasm' });

const ctx = (training = false, seed = 1) => ({ training, rng: createRng(seed) });

function randn(shape: number[], seed: number): tf.Tensor {
  const rng = createRng(seed);
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) > tol) return false;
  return true;
}

test('attentionBias: causal rows see the prefix and the past; prefix sees only the prefix; padding hides keys', () => {
  assert.is(attentionBias({ batch: 2, prefix: 1, length: 3, causal: false }), null);
  const causal = attentionBias({ batch: 2, prefix: 2, length: 3, causal: true })!;
  assert.equal(causal.shape, [1, 1, 5, 5]);
  const allowed = Array.from(causal.dataSync(), (v) => (v === 0 ? 1 : 0));
  // rows: 2 prefix tokens, then bins 0..2
  assert.equal(allowed, [
    1, 1, 0, 0, 0,
    1, 1, 0, 0, 0,
    1, 1, 1, 0, 0,
    1, 1, 1, 1, 0,
    1, 1, 1, 1, 1,
  ]);
  const padded = attentionBias({ batch: 2, prefix: 1, length: 2, causal: false, keyValid: Uint8Array.from([1, 1, 1, 0]) })!;
  assert.equal(padded.shape, [2, 1, 3, 3]);
  const p = Array.from(padded.dataSync(), (v) => (v === 0 ? 1 : 0));
  assert.equal(p.slice(0, 9), [1, 1, 1, 1, 1, 1, 1, 1, 1]);
  assert.equal(p.slice(9), [1, 1, 0, 1, 1, 0, 1, 1, 0]);
  assert.throws(() => attentionBias({ batch: 2, prefix: 0, length: 2, causal: false, keyValid: new Uint8Array(3) }), /keyValid has 3 entries/);
});

test('gelu, softsign and LayerNorm compute their formulas', () => {
  assert.ok(close(gelu(tf.tensor1d([-1, 0, 1, 2])).dataSync(), [-0.1586553, 0, 0.8413447, 1.9544997]));
  assert.ok(close(softsign(tf.tensor1d([-3, 0, 1])).dataSync(), [-0.75, 0, 0.5]));
  const store = new ParamStore(createRng(1));
  const ln = new LayerNorm(store, 'ln', 6);
  const y = ln.apply(randn([3, 6], 4).mul(5).add(2));
  const rows = y.arraySync() as number[][];
  for (const r of rows) {
    const mean = r.reduce((a, b) => a + b, 0) / 6;
    const variance = r.reduce((a, b) => a + (b - mean) ** 2, 0) / 6;
    assert.ok(Math.abs(mean) < 1e-5 && Math.abs(variance - 1) < 1e-3);
  }
  store.dispose();
});

test('dropout: identity in eval, seeded and rescaled in training', () => {
  const x = tf.ones([4000]);
  assert.is(dropout(x, 0.5, ctx(false)), x);
  const a = dropout(x, 0.25, ctx(true, 3)).dataSync();
  const b = dropout(x, 0.25, ctx(true, 3)).dataSync();
  assert.equal(Array.from(a), Array.from(b));
  const zeros = a.filter((v) => v === 0).length;
  assert.ok(Math.abs(zeros / 4000 - 0.25) < 0.03, `${zeros}`);
  assert.ok(a.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6));
});

test('attention: a causal output never depends on later bins; prefix outputs depend on no bin', () => {
  const store = new ParamStore(createRng(5));
  const attn = new MultiHeadAttention(store, 'attn', 8, 2);
  const prefix = 2;
  const len = 6;
  const x = randn([2, prefix + len, 8], 7);
  const bias = attentionBias({ batch: 2, prefix, length: len, causal: true });
  const base = attn.apply(x as tf.Tensor3D, bias, ctx()).arraySync() as number[][][];
  for (let k = 0; k < len; k++) {
    // Change bin k (token prefix + k) only.
    const noise = tf.tensor3d(Array.from({ length: 2 }, () => Array.from({ length: prefix + len }, (_, i) => Array(8).fill(i === prefix + k ? 3 : 0))));
    const out = attn.apply(tf.add(x, noise) as tf.Tensor3D, bias, ctx()).arraySync() as number[][][];
    for (let bi = 0; bi < 2; bi++) {
      for (let i = 0; i < prefix + k; i++) assert.ok(close(out[bi][i], base[bi][i]), `token ${i} changed when bin ${k} did`);
      assert.not.ok(close(out[bi][prefix + k], base[bi][prefix + k]), `bin ${k} itself must change`);
    }
  }
  // Without the causal mask the earlier tokens do change: the check above can fail.
  const open = attn.apply(tf.add(x, tf.mul(tf.oneHot([prefix + len - 1], prefix + len).reshape([1, prefix + len, 1]), 3)) as tf.Tensor3D, null, ctx()).arraySync() as number[][][];
  const openBase = attn.apply(x as tf.Tensor3D, null, ctx()).arraySync() as number[][][];
  assert.not.ok(close(open[0][0], openBase[0][0]));
  store.dispose();
});

test('attention: padded bins are never attended to', () => {
  const store = new ParamStore(createRng(6));
  const attn = new MultiHeadAttention(store, 'attn', 8, 4);
  const x = randn([2, 5, 8], 8);
  const keyValid = Uint8Array.from([1, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
  const bias = attentionBias({ batch: 2, prefix: 0, length: 5, causal: false, keyValid });
  const base = attn.apply(x as tf.Tensor3D, bias, ctx()).arraySync() as number[][][];
  const mask = tf.tensor3d(Array.from({ length: 2 }, (_, b) => Array.from({ length: 5 }, (_, t) => Array(8).fill(keyValid[b * 5 + t] ? 0 : 1))));
  const out = attn.apply(tf.add(x, tf.mul(mask, randn([2, 5, 8], 9))) as tf.Tensor3D, bias, ctx()).arraySync() as number[][][];
  for (let b = 0; b < 2; b++) for (let t = 0; t < 5; t++) if (keyValid[b * 5 + t]) assert.ok(close(out[b][t], base[b][t]));
  assert.throws(() => new MultiHeadAttention(store, 'bad', 10, 4), /not divisible by 4 heads/);
  store.dispose();
});

test('encoder: shape kept, dropout only in training, no tensors left behind', () => {
  const store = new ParamStore(createRng(7));
  const enc = new Encoder(store, 'enc', 2, { dim: 8, heads: 2, mlpDim: 16, dropout: 0.3, attentionDropout: 0.1 });
  const x = randn([3, 4, 8], 1) as tf.Tensor3D;
  const before = tf.memory().numTensors;
  const y1 = tf.tidy(() => enc.apply(x, null, ctx(false)));
  const y2 = tf.tidy(() => enc.apply(x, null, ctx(false)));
  const y3 = tf.tidy(() => enc.apply(x, null, ctx(true)));
  assert.equal(y1.shape, [3, 4, 8]);
  assert.equal(Array.from(y1.dataSync()), Array.from(y2.dataSync()));
  assert.not.ok(close(y1.dataSync(), y3.dataSync()));
  tf.dispose([y1, y2, y3]);
  assert.is(tf.memory().numTensors, before);
  assert.is(store.names().length, 2 * 12);
  store.dispose();
});

test.run();
