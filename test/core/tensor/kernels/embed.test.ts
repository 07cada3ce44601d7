// NDT1's fused token embedding (embed.ts, native/src/model_kernels.h) against the model's plain
// path: the model's output and every weight's gradient, with 0, 1 and 2 prefix tokens (temporal
// mode, a prompt, a session token and a prompt), dropout on and off; no tensor leaks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { MaskingMode } from '../../../../core/masking/types.ts';
import { initBackend } from '../../../../core/tensor/backend.ts';
import * as tf from '../../../../core/tensor/tf.ts';
import { ndt1Architecture } from '../../../../plugins/ndt1/architecture.ts';
import { fusedEmbedAvailable } from '../../../../core/tensor/kernels/embed.ts';
import { restoreFusedKernels, setFusedKernels } from '../../../../core/tensor/kernels/layer.ts';
import { loadNative } from '../../../../core/tensor/kernels/native.ts';
import { assertClose } from '../../../../core/tensor/kernels/assert-close.ts';

const off = !loadNative().native;

const close = assertClose;

test('setup', async () => {
  await initBackend({ force: 'wasm' });
  if (!off) assert.ok(fusedEmbedAvailable());
});

const B = 3, T = 9, N = 7;
const CASES: Array<{ mode: MaskingMode; sessionTokens: boolean; training: boolean; maxBins: number }> = [
  { mode: 'temporal', sessionTokens: false, training: true, maxBins: T },
  { mode: 'neuron', sessionTokens: false, training: true, maxBins: T + 4 },
  { mode: 'causal', sessionTokens: true, training: true, maxBins: T },
  { mode: 'neuron', sessionTokens: true, training: false, maxBins: T },
];

for (const c of CASES) {
  test(`fused embedding = plain: ${c.mode}${c.sessionTokens ? ' + session token' : ''}, ${c.training ? 'dropout' : 'eval'}, maxBins ${c.maxBins}: output and every gradient`, () => {
    const model = ndt1Architecture.build(
      { dModel: 16, layers: 1, heads: 2, mlpDim: 24, maxBins: c.maxBins, dropout: 0.1, embedDropout: 0.3, sessionTokens: c.sessionTokens },
      { sessions: [{ sessionId: 's', nNeurons: N, nBins: T }], seed: 4 },
    );
    const input = tf.tensor3d(Float32Array.from({ length: B * T * N }, (_, i) => (i * 5) % 3), [B, T, N]);
    const weight = tf.tensor3d(Float32Array.from({ length: B * T * N }, (_, i) => Math.cos(i)), [B, T, N]);
    const vars = model.trainableVariables();
    const run = (fused: boolean) => {
      const prev = setFusedKernels(fused, ['embed']);
      try {
        const before = tf.memory().numTensors;
        const x = { sessionId: 's', input, mode: c.mode, causal: c.mode === 'causal' };
        const f = () => tf.sum(tf.mul(model.forward(x, { training: c.training, seed: 77 }), weight)) as tf.Scalar;
        const { value, grads } = tf.variableGrads(f, vars);
        const out = [Float32Array.of(value.dataSync()[0]), ...vars.map((v) => Float32Array.from(grads[v.name]?.dataSync() ?? []))] // temporal: no prompt, no gradient;
        tf.dispose([value, ...Object.values(grads)]);
        assert.is(tf.memory().numTensors, before, 'no tensors left behind');
        return out;
      } finally {
        restoreFusedKernels(prev);
      }
    };
    const plain = run(false);
    const fused = run(true);
    close(fused[0], plain[0], 1e-5, 1e-6, 'output');
    vars.forEach((v, i) => close(fused[i + 1], plain[i + 1], 1e-4, 1e-6, `gradient of ${v.name}`));
    tf.dispose([input, weight]);
    model.dispose();
  });
}

test('leave-one-out forward keeps the plain embedding and agrees with forward on zeroed copies', () => {
  const model = ndt1Architecture.build({ dModel: 16, layers: 1, heads: 2, mlpDim: 24, maxBins: T }, { sessions: [{ sessionId: 's', nNeurons: N, nBins: T }], seed: 5 });
  const base = Float32Array.from({ length: T * N }, (_, i) => (i * 3) % 4);
  const input = tf.tensor3d(base, [1, T, N]);
  const zeroed = Float32Array.from(base, (v, i) => (i % N === 2 ? 0 : v));
  const y1 = model.forwardLeaveOneOut!({ sessionId: 's', input, mode: 'neuron', causal: false, baseRow: Int32Array.of(0), leftOut: Int32Array.of(2) }, { training: false });
  const zin = tf.tensor3d(zeroed, [1, T, N]);
  const y2 = model.forward({ sessionId: 's', input: zin, mode: 'neuron', causal: false }, { training: false });
  close(y1.dataSync(), y2.dataSync(), 1e-5, 1e-6, 'leave-one-out vs forward');
  tf.dispose([input, zin, y1, y2]);
  model.dispose();
});

test.run();
