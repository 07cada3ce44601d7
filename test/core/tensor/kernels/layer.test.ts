// The fused kernels (layer.ts, native/src/encoder_layer.h) against the plain tf-op path: the
// encoder layer forward and all 13 gradients, the linear layer, tf.dropout's exact units, a whole
// NDT1 training step; the AVX2 and AVX-512 builds agree; no tensor leaks; the plain path still
// runs without the addon.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng } from '../../../../core/rng.ts';
import { initBackend } from '../../../../core/tensor/backend.ts';
import { attentionBias, dropout, EncoderLayer } from '../../../../core/tensor/layers.ts';
import { linear2d } from '../../../../core/tensor/linear.ts';
import { ParamStore } from '../../../../core/tensor/params.ts';
import * as tf from '../../../../core/tensor/tf.ts';
import { AdamW } from '../../../../core/train/adamw.ts';
import { trainStep } from '../../../../core/train/step.ts';
import type { MaskedBatch } from '../../../../core/masking/types.ts';
import { ndt1Architecture } from '../../../../plugins/ndt1/architecture.ts';
import { registerFastKernels, unregisterFastKernels } from '../../../../core/tensor/kernels/index.ts';
import { aleaState, aleaUniforms, fusedLayerKernelsActive, restoreFusedKernels, seededDropout, setFusedKernels } from '../../../../core/tensor/kernels/layer.ts';
import { loadNative } from '../../../../core/tensor/kernels/native.ts';
import { assertClose } from '../../../../core/tensor/kernels/assert-close.ts';

const { native } = loadNative();
/** MTM_NATIVE_KERNELS=off (or no compiler at install): only the plain path exists; the fused tests check that it runs. */
const off = !native;

const close = assertClose;

function withFused<T>(on: boolean, f: () => T): T {
  const prev = setFusedKernels(on);
  try {
    return f();
  } finally {
    restoreFusedKernels(prev);
  }
}

interface Case {
  B: number;
  S: number;
  D: number;
  H: number;
  F: number;
  causal: boolean;
  keyValid: boolean;
  training: boolean;
}

/** Output, input gradient and every weight gradient of one layer, read back. */
function layerRun(layer: EncoderLayer, store: ParamStore, c: Case, fused: boolean): Float32Array[] {
  return withFused(fused, () =>
    tf.tidy(() => {
      const x = tf.tensor3d(Float32Array.from({ length: c.B * c.S * c.D }, (_, i) => Math.sin(i * 0.37) * 1.3), [c.B, c.S, c.D]);
      const valid = c.keyValid ? Uint8Array.from({ length: c.B * (c.S - 1) }, (_, i) => (i % 5 === 3 ? 0 : 1)) : undefined;
      const bias = attentionBias({ batch: c.B, prefix: 1, length: c.S - 1, causal: c.causal, keyValid: valid });
      const weight = tf.tensor3d(Float32Array.from({ length: c.B * c.S * c.D }, (_, i) => ((i * 7) % 11) - 5), [c.B, c.S, c.D]);
      const f = (xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx as tf.Tensor3D, bias, { training: c.training, rng: createRng(9) }), weight)) as tf.Scalar;
      const vars = store.trainable();
      const { grads } = tf.variableGrads(() => f(x), vars);
      const gx = tf.grad(f)(x);
      const y = layer.apply(x, bias, { training: c.training, rng: createRng(9) });
      return [y, gx, ...vars.map((v) => grads[v.name])];
    }).map((t) => {
      const v = Float32Array.from(t.dataSync());
      t.dispose();
      return v;
    }),
  );
}

test('setup: wasm backend with the native kernels', async () => {
  await initBackend({ force: 'wasm' });
  if (off) {
    assert.not.ok(fusedLayerKernelsActive(), 'no fused kernels without the addon');
    return;
  }
  assert.ok(fusedLayerKernelsActive(), 'fused kernels registered');
});

test('aleaState/aleaUniforms reproduce tf.randomUniform; seeded dropout drops exactly the units of tf.dropout, gradient included', () => {
  for (const seed of [0, 1, 12345, 2 ** 31 - 1]) {
    const r = tf.randomUniform([300], 0, 1, 'float32', seed);
    const want = r.dataSync();
    const got = Float32Array.from(aleaUniforms(aleaState(seed), 300));
    assert.equal(Array.from(got), Array.from(want), `seed ${seed}`);
    r.dispose();
  }
  const before = tf.memory().numTensors;
  for (const rate of [0.1, 0.2, 0.4]) {
    tf.tidy(() => {
      const x = tf.tensor2d(Float32Array.from({ length: 37 * 29 }, (_, i) => Math.cos(i) * 3), [37, 29]);
      const a = tf.dropout(x, rate, undefined, 4242).dataSync();
      const b = seededDropout(x, rate, 4242).dataSync();
      assert.equal(Array.from(b), Array.from(a), `rate ${rate}`);
      const ga = tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.dropout(t, rate, undefined, 7))))(x).dataSync();
      const gb = tf.grad((t: tf.Tensor) => tf.sum(tf.square(seededDropout(t, rate, 7))))(x).dataSync();
      assert.equal(Array.from(gb), Array.from(ga), `gradient, rate ${rate}`);
    });
  }
  // layers.dropout draws its seed from the context's generator either way.
  const x = tf.ones([50]);
  const on = withFused(true, () => dropout(x, 0.3, { training: true, rng: createRng(3) }));
  const off = withFused(false, () => dropout(x, 0.3, { training: true, rng: createRng(3) }));
  assert.equal(Array.from(on.dataSync()), Array.from(off.dataSync()));
  tf.dispose([x, on, off]);
  assert.is(tf.memory().numTensors, before, 'no tensors left behind');
});

const CASES: Case[] = [
  { B: 2, S: 7, D: 16, H: 4, F: 32, causal: false, keyValid: false, training: false },
  { B: 3, S: 11, D: 32, H: 4, F: 64, causal: true, keyValid: false, training: true },
  { B: 2, S: 9, D: 24, H: 3, F: 40, causal: false, keyValid: true, training: true },
  { B: 2, S: 21, D: 64, H: 2, F: 96, causal: true, keyValid: true, training: false },
  // Head widths 16 and 64 at more tokens than one 32-column block (the unpacked attention kernels).
  { B: 2, S: 45, D: 64, H: 4, F: 64, causal: false, keyValid: true, training: true },
  { B: 1, S: 37, D: 64, H: 1, F: 32, causal: true, keyValid: false, training: false },
];

for (const c of CASES) {
  test(`encoder layer fused = plain: B${c.B} S${c.S} D${c.D} H${c.H} F${c.F}${c.causal ? ' causal' : ''}${c.keyValid ? ' padded keys' : ''}${c.training ? ' training (dropout)' : ''}`, () => {
    const store = new ParamStore(createRng(c.D));
    const layer = new EncoderLayer(store, 'l', { dim: c.D, heads: c.H, mlpDim: c.F, dropout: 0.2, attentionDropout: 0 });
    const before = tf.memory().numTensors;
    const plain = layerRun(layer, store, c, false);
    const fused = layerRun(layer, store, c, true);
    assert.is(tf.memory().numTensors, before, 'no tensors left behind');
    const names = ['y', 'dx', ...store.names().map((n) => `d ${n}`)];
    plain.forEach((p, i) => close(fused[i], p, 2e-5, 1e-6, names[i]));
    store.dispose();
  });
}

test('encoder layer: the AVX2 and AVX-512 builds give identical results; one thread and two too', () => {
  if (off) return;
  const info = native!.info();
  const c = CASES[1];
  const store = new ParamStore(createRng(5));
  const layer = new EncoderLayer(store, 'l', { dim: c.D, heads: c.H, mlpDim: c.F, dropout: 0.2, attentionDropout: 0 });
  const ref = layerRun(layer, store, c, true);
  try {
    for (const cfg of [{ isa: 'avx2' as const }, { isa: 'avx512' as const, threads: 1 }]) {
      native!.configure(cfg);
      const got = layerRun(layer, store, c, true);
      got.forEach((g, i) => assert.equal(Array.from(g), Array.from(ref[i]), `${JSON.stringify(cfg)} output ${i}`));
    }
  } finally {
    native!.configure({ isa: 'avx512', threads: info.threads });
  }
  store.dispose();
});

test('fused linear = plain linear, with and without bias, values and gradients', () => {
  for (const hasBias of [true, false]) {
    const run = (fused: boolean) =>
      withFused(fused, () =>
        tf.tidy(() => {
          const x = tf.tensor2d(Float32Array.from({ length: 45 * 23 }, (_, i) => Math.sin(i)), [45, 23]);
          const w = tf.tensor2d(Float32Array.from({ length: 23 * 17 }, (_, i) => Math.cos(i * 0.3)), [23, 17]);
          const b = tf.tensor1d(Float32Array.from({ length: 17 }, (_, i) => i * 0.1 - 0.8));
          const f = (xx: tf.Tensor, ww: tf.Tensor, bb?: tf.Tensor) => tf.sum(tf.square(linear2d(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D | undefined)));
          const g = hasBias ? tf.grads(f)([x, w, b]) : tf.grads((xx: tf.Tensor, ww: tf.Tensor) => f(xx, ww))([x, w]);
          return [linear2d(x, w, hasBias ? b : undefined), g[0], g[1], ...(hasBias ? [g[2]] : [])];
        }).map((t) => {
          const v = Float32Array.from(t.dataSync());
          t.dispose();
          return v;
        }),
      );
    const before = tf.memory().numTensors;
    const plain = run(false);
    const fused = run(true);
    assert.is(tf.memory().numTensors, before, 'no tensors left behind');
    plain.forEach((p, i) => close(fused[i], p, 1e-5, 1e-6, `bias ${hasBias} output ${i}`));
  }
});

function batch(seed: number, B: number, T: number, N: number): MaskedBatch {
  const rng = createRng(seed);
  const target = Int32Array.from({ length: B * T * N }, () => rng.poisson(0.4));
  const masked = new Uint8Array(B * T * N);
  for (let i = 0; i < masked.length; i++) masked[i] = rng.next() < 0.3 ? 1 : 0;
  const input = Float32Array.from(target, (v, i) => (masked[i] ? 0 : v));
  return {
    kind: 'masked-batch', sessionId: 's', split: 'train', epoch: 0, epochs: 1, batchIndex: 0, batchesInEpoch: 1,
    trialIndex: Int32Array.from({ length: B }, (_, i) => i), shape: { trials: B, bins: T, neurons: N }, binSizeMs: 20,
    input, target, lossMask: masked.slice(), masked, mode: 'neuron', causal: false, regions: new Array<string>(N).fill('r'),
  };
}

test('a whole NDT1 training step (dropout on, 3 AdamW steps): fused and plain give the same losses and weights', async () => {
  const run = async (fused: boolean) => {
    const prev = setFusedKernels(fused);
    try {
      const model = ndt1Architecture.build({ dModel: 32, layers: 2, heads: 4, mlpDim: 64, maxBins: 12 }, { sessions: [{ sessionId: 's', nNeurons: 10, nBins: 12 }], seed: 3 });
      const opt = new AdamW({ weightDecay: 0.01 });
      const losses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await trainStep(model, opt, batch(i, 4, 12, 10), { lr: 1e-3, clipNorm: 1, dropoutSeed: 100 + i });
        assert.ok(r.ok);
        losses.push(r.loss);
      }
      const w = Object.fromEntries(Object.entries(model.weights()).map(([k, v]) => [k, Float32Array.from(v.dataSync())]));
      opt.dispose();
      model.dispose();
      return { losses, w };
    } finally {
      restoreFusedKernels(prev);
    }
  };
  const before = tf.memory().numTensors;
  const plain = await run(false);
  const fused = await run(true);
  assert.is(tf.memory().numTensors, before, 'no tensors left behind');
  close(fused.losses, plain.losses, 1e-5, 0, 'losses');
  // The key bias's true gradient is 0 (softmax ignores a shift shared by all keys): its computed
  // gradient is rounding noise either way, which AdamW's normalisation turns into steps of up to
  // lr. Those 32 entries are held to lr x steps; everything else to float32 noise.
  for (const k of Object.keys(plain.w)) {
    if (k.endsWith('attn.qkv.bias')) {
      close(fused.w[k].subarray(0, 32), plain.w[k].subarray(0, 32), 1e-4, 1e-6, `${k} (q)`);
      close(fused.w[k].subarray(32, 64), plain.w[k].subarray(32, 64), 0, 3e-3, `${k} (k)`);
      close(fused.w[k].subarray(64), plain.w[k].subarray(64), 1e-4, 1e-6, `${k} (v)`);
    } else close(fused.w[k], plain.w[k], 1e-4, 1e-6, k);
  }
});

test('without the native kernels the layers run the plain path (same values), and registration restores the fused one', () => {
  const c = CASES[2];
  const store = new ParamStore(createRng(11));
  const layer = new EncoderLayer(store, 'l', { dim: c.D, heads: c.H, mlpDim: c.F, dropout: 0.2, attentionDropout: 0 });
  const fused = layerRun(layer, store, c, true);
  if (off) {
    store.dispose();
    return;
  }
  unregisterFastKernels();
  try {
    assert.not.ok(fusedLayerKernelsActive());
    const plain = layerRun(layer, store, c, true);
    plain.forEach((p, i) => close(fused[i], p, 5e-5, 1e-6, `output ${i}`));
  } finally {
    registerFastKernels(tf.getBackend());
  }
  assert.ok(fusedLayerKernelsActive());
  store.dispose();
});

test.run();
