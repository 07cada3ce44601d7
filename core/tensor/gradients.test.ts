// Forward + backward of every op the layers use, on wasm and on cpu: a kernel a backend lacks
// (e.g. UnsortedSegmentSum, which tf.gather's gradient needs, is missing on wasm) or computes
// wrongly shows up here rather than in a user's training run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng } from '../rng.ts';
import { initBackend } from './backend.ts';
import { attentionBias, dropout, Encoder, LayerNorm, softsign, type ForwardContext } from './layers.ts';
import { Linear } from './linear.ts';
import { poissonNll } from './loss.ts';
import { ParamStore } from './params.ts';
import * as tf from './tf.ts';
import { restoreFusedKernels, setFusedKernels } from './kernels/layer.ts';
import { loadNative } from './kernels/native.ts';

const B = 2;
const T = 5;
const N = 6;
const D = 8;

/** A miniature NDT1 built from the shared layers, exercising each op they use. */
function lossAndGrads() {
  const store = new ParamStore(createRng(1));
  const in1 = new Linear(store, 'in1', N, 2 * N);
  const in2 = new Linear(store, 'in2', 2 * N, D);
  const position = store.add('position', [T + 2, D], { kind: 'normal', std: 0.5 });
  const prompt = store.add('prompt', [3, D], { kind: 'normal', std: 0.5 });
  const encoder = new Encoder(store, 'enc', 2, { dim: D, heads: 2, mlpDim: 16, dropout: 0.2, attentionDropout: 0.1 });
  const norm = new LayerNorm(store, 'norm', D);
  const readout = new Linear(store, 'readout', D, N, { bias: false });
  const rng = createRng(2);
  const counts = tf.tensor3d(Float32Array.from({ length: B * T * N }, () => rng.poisson(1.5)), [B, T, N]);
  const mask = tf.tensor3d(Float32Array.from({ length: B * T * N }, (_, i) => (i % 3 === 0 ? 1 : 0)), [B, T, N]);
  const ctx: ForwardContext = { training: true, rng: createRng(3) };
  const f = () => {
    let h = in2.apply(softsign(in1.apply(tf.mul(counts, tf.sub(1, mask))))) as tf.Tensor3D;
    h = tf.add(h, tf.slice(position, [0, 0], [T, D]));
    const pre = tf.broadcastTo(tf.reshape(tf.slice(prompt, [1, 0], [1, D]), [1, 1, D]), [B, 1, D]);
    let tokens = dropout(tf.concat([pre, h], 1), 0.1, ctx) as tf.Tensor3D;
    const bias = attentionBias({ batch: B, prefix: 1, length: T, causal: true, keyValid: Uint8Array.from([1, 1, 1, 1, 0, 1, 1, 1, 1, 1]) });
    tokens = norm.apply(encoder.apply(tokens, bias, ctx)) as tf.Tensor3D;
    return poissonNll(readout.apply(tf.slice(tokens, [0, 1, 0], [B, T, D])), counts, mask);
  };
  const names = store.names();
  const vars = names.map((n) => store.get(n));
  let kernels: string[] = [];
  const out: { loss: number; grads: Record<string, Float32Array> } = { loss: NaN, grads: {} };
  return tf
    .profile(() => {
      const { value, grads } = tf.variableGrads(f, vars);
      out.loss = value.dataSync()[0];
      for (const n of names) out.grads[n] = grads[store.get(n).name].dataSync() as Float32Array;
      tf.dispose([value, ...Object.values(grads)]);
    })
    .then((p) => {
      // tf.customGrad's own nodes are profiled as 'forward' / 'unnamed scope': not kernels.
      kernels = [...new Set(p.kernels.map((k) => k.name))].filter((k) => k !== 'unnamed scope' && k !== 'forward');
      tf.dispose([counts, mask]);
      store.dispose();
      return { ...out, kernels };
    });
}

/** lossAndGrads with the fused kernels (core/tensor/kernels/layer.ts) on or off. */
async function lossAndGradsWith(fused: boolean) {
  const prev = setFusedKernels(fused);
  try {
    return await lossAndGrads();
  } finally {
    restoreFusedKernels(prev);
  }
}

test('fused kernels on: cpu and wasm agree with each other and with the op-by-op path', async () => {
  if (!loadNative().native) return; // MTM_NATIVE_KERNELS=off: nothing fused to compare
  await initBackend({ force: 'cpu' });
  const cpu = await lossAndGradsWith(true);
  await initBackend({ force: 'wasm' });
  const wasm = await lossAndGradsWith(true);
  const plain = await lossAndGradsWith(false);
  assert.ok(wasm.kernels.includes('MtmLinear') && wasm.kernels.includes('MtmAleaDropout'), `fused kernels not used: ${wasm.kernels.join(', ')}`);
  for (const other of [cpu, plain]) {
    assert.ok(Math.abs(other.loss - wasm.loss) < 1e-4 * Math.abs(wasm.loss), `loss ${other.loss} vs ${wasm.loss}`);
    for (const [name, g] of Object.entries(wasm.grads)) {
      const o = other.grads[name];
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < g.length; i++) {
        diff = Math.max(diff, Math.abs(g[i] - o[i]));
        scale = Math.max(scale, Math.abs(g[i]));
      }
      assert.ok(diff <= 1e-3 * scale + 1e-7, `${name}: gradients differ by ${diff} (scale ${scale})`);
    }
  }
});

test('every kernel of a forward + backward pass is registered on wasm and cpu, and both agree', async () => {
  // The op-by-op path (fused kernels off): every tf op the layers fall back to must exist on both.
  await initBackend({ force: 'cpu' });
  const cpu = await lossAndGradsWith(false);
  await initBackend({ force: 'wasm' });
  const wasm = await lossAndGradsWith(false);
  assert.ok(cpu.kernels.length > 20, `only ${cpu.kernels.length} kernels seen`);
  for (const k of ['BatchMatMul', 'Softmax', 'Erf', 'Transpose', 'Slice', 'Concat', 'Tile', 'SplitV', 'Exp', 'Rsqrt', 'PadV2']) {
    assert.ok(cpu.kernels.includes(k), `${k} not exercised`);
  }
  for (const k of cpu.kernels) {
    assert.ok(tf.getKernel(k, 'wasm'), `kernel ${k} is missing on wasm`);
    assert.ok(tf.getKernel(k, 'cpu'), `kernel ${k} is missing on cpu`);
  }
  assert.equal(wasm.kernels.sort(), cpu.kernels.sort());
  assert.ok(Number.isFinite(cpu.loss));
  assert.ok(Math.abs(cpu.loss - wasm.loss) < 1e-4 * Math.abs(cpu.loss), `loss cpu ${cpu.loss} wasm ${wasm.loss}`);
  for (const [name, g] of Object.entries(cpu.grads)) {
    const w = wasm.grads[name];
    let scale = 0;
    let diff = 0;
    let nonzero = false;
    for (let i = 0; i < g.length; i++) {
      assert.ok(Number.isFinite(g[i]) && Number.isFinite(w[i]), `${name}: non-finite gradient`);
      scale = Math.max(scale, Math.abs(g[i]));
      diff = Math.max(diff, Math.abs(g[i] - w[i]));
      nonzero ||= g[i] !== 0;
    }
    assert.ok(nonzero, `${name} gets no gradient`);
    assert.ok(diff <= 1e-3 * scale, `${name}: cpu and wasm gradients differ by ${diff} (scale ${scale})`);
  }
});

test.run();
