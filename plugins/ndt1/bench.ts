// Measures NDT1 training throughput (trials/s) and time per tfjs kernel on the selected backend.
// Not a test: run by hand, e.g.
//   node --import tsx plugins/ndt1/bench.ts --dModel 128 --layers 4 --bins 100 --neurons 300 --batch 16
import { parseArgs } from 'node:util';
import { initBackend, type BackendChoice } from '../../core/tensor/backend.ts';
import { poissonNll } from '../../core/tensor/loss.ts';
import * as tf from '../../core/tensor/tf.ts';
import { profileKernels } from '../../core/tensor/kernels/profile.ts';
import { createRng } from '../../core/rng.ts';
import { ndt1Architecture } from './architecture.ts';

const { values: a } = parseArgs({
  options: {
    dModel: { type: 'string', default: '128' },
    layers: { type: 'string', default: '4' },
    heads: { type: 'string', default: '4' },
    mlpDim: { type: 'string', default: '' },
    bins: { type: 'string', default: '100' },
    neurons: { type: 'string', default: '300' },
    batch: { type: 'string', default: '16' },
    steps: { type: 'string', default: '5' },
    backend: { type: 'string', default: '' },
    mode: { type: 'string', default: 'neuron' },
    top: { type: 'string', default: '12' },
    prod: { type: 'boolean', default: false },
  },
});
const num = (s: string | undefined) => Number(s);
const [D, L, H, T, N, B, steps] = [a.dModel, a.layers, a.heads, a.bins, a.neurons, a.batch, a.steps].map(num);
const mlpDim = a.mlpDim ? num(a.mlpDim) : 4 * D;

if (a.prod) tf.enableProdMode();
const info = await initBackend({ force: (a.backend || undefined) as BackendChoice | undefined });
const model = ndt1Architecture.build({ dModel: D, layers: L, heads: H, mlpDim, maxBins: T }, { sessions: [{ sessionId: 'bench', nNeurons: N, nBins: T }], seed: 1 });
const rng = createRng(2);
const counts = Float32Array.from({ length: B * T * N }, () => rng.poisson(0.3));
const x = tf.tensor3d(counts, [B, T, N]);
const maskValues = Float32Array.from({ length: B * T * N }, (_, i) => ((i % N) % 3 === 0 ? 1 : 0));
const mask = tf.tensor3d(maskValues, [B, T, N]);
const input = tf.tidy(() => tf.mul(x, tf.sub(1, mask))) as tf.Tensor3D;
const opt = tf.train.adam(1e-3);
const mode = a.mode as 'neuron' | 'causal';
const step = () => {
  const loss = opt.minimize(() => poissonNll(model.forward({ sessionId: 'bench', input, mode, causal: mode === 'causal' }, { training: true }), x, mask), true, model.trainableVariables())!;
  loss.dataSync();
  loss.dispose();
};

step();
step();
const t0 = performance.now();
for (let i = 0; i < steps; i++) step();
const msPerStep = (performance.now() - t0) / steps;

const prof = await profileKernels(step, num(a.top));
console.log(JSON.stringify({
  backend: info.name,
  reason: info.reason,
  config: { dModel: D, layers: L, heads: H, mlpDim, bins: T, neurons: N, batch: B },
  params: model.paramCount(),
  msPerStep: +msPerStep.toFixed(1),
  trialsPerSecond: +((1000 * B) / msPerStep).toFixed(2),
  profiledKernelMs: prof.kernelMs,
  topKernels: prof.top,
  peakMB: Math.round(process.memoryUsage().rss / 2 ** 20),
}, null, 2));
