// Where one NDT1 training step's time goes at a benchmark size: per-kernel CPU time (one native
// thread, so other processes' load does not count), tfjs kernel calls per step, and the wall time
// of the step's phases (forward+backward, gradient norm, AdamW).
// Usage: node --import tsx bench/step-profile.ts [--size quickstart] [--steps 30] [--fused on|off]
import { parseArgs } from 'node:util';
import type { MaskedBatch } from '../core/masking/types.ts';
import { createRng } from '../core/rng.ts';
import { initBackend } from '../core/tensor/backend.ts';
import { setFusedKernels } from '../core/tensor/kernels/layer.ts';
import { loadNative } from '../core/tensor/kernels/native.ts';
import { profileKernelsCpu } from '../core/tensor/kernels/profile.ts';
import * as tf from '../core/tensor/tf.ts';
import { AdamW } from '../core/train/adamw.ts';
import { trainStep } from '../core/train/step.ts';
import { ndt1Architecture } from '../plugins/ndt1/architecture.ts';
import { BENCH_SIZES } from './torch-peer.ts';

const { values: a } = parseArgs({
  options: { size: { type: 'string', default: 'quickstart' }, steps: { type: 'string', default: '30' }, fused: { type: 'string', default: 'on' }, threads: { type: 'string', default: '1' }, cpuprof: { type: 'string' } },
});
const size = BENCH_SIZES[a.size as keyof typeof BENCH_SIZES];
await initBackend();
const { native } = loadNative();
if (!native) throw new Error('native kernels not loaded');
native.configure({ threads: Number(a.threads) });
setFusedKernels(a.fused !== 'off');

const rng = createRng(2);
const { batch: B, bins: T, neurons: N } = size;
const batches: MaskedBatch[] = Array.from({ length: 4 }, (_, bi) => {
  const target = Int32Array.from({ length: B * T * N }, () => rng.poisson(0.3));
  const masked = new Uint8Array(B * T * N);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) if (rng.next() < 0.3) masked.fill(1, (b * T + t) * N, (b * T + t + 1) * N);
  const input = Float32Array.from(target, (c, i) => (masked[i] ? 0 : c));
  return {
    kind: 'masked-batch', sessionId: 'bench', split: 'train', epoch: 0, epochs: 1, batchIndex: bi, batchesInEpoch: 4,
    trialIndex: Int32Array.from({ length: B }, (_, i) => bi * B + i), shape: { trials: B, bins: T, neurons: N }, binSizeMs: 20,
    input, target, lossMask: masked.slice(), masked, mode: 'neuron', causal: false, regions: new Array<string>(N).fill('unknown'),
  };
});
const model = ndt1Architecture.build(
  { dModel: size.d, layers: size.layers, heads: size.heads, mlpDim: size.mlp, dropout: size.dropout, embedDropout: size.dropout, attentionDropout: 0, maxBins: size.bins },
  { sessions: [{ sessionId: 'bench', nNeurons: N, nBins: T }], seed: 1 },
);
const opt = new AdamW({ weightDecay: 0.01 });
let i = 0;
const step = () => trainStep(model, opt, batches[i % 4], { lr: 1e-3, clipNorm: 1, dropoutSeed: 1000 + i++ });
for (let w = 0; w < 5; w++) await step();
// Optional V8 CPU profile of the timed steps (JS self time by function), for chrome://inspect or a script.
const session = a.cpuprof ? new (await import('node:inspector/promises')).Session() : undefined;
if (session) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
}
const n0 = tf.memory().numTensors;
const steps = Number(a.steps);
const c0 = native.threadCpuMs();
const t0 = performance.now();
for (let s = 0; s < steps; s++) await step();
const cpu = (native.threadCpuMs() - c0) / steps;
const wall = (performance.now() - t0) / steps;
const leaked = tf.memory().numTensors - n0;
if (session) {
  const { profile } = await session.post('Profiler.stop');
  (await import('node:fs')).writeFileSync(a.cpuprof!, JSON.stringify(profile));
  session.disconnect();
}
const prof = await profileKernelsCpu(async () => {
  for (let s = 0; s < 5; s++) await step();
}, undefined, 25);
const per = (x: number) => Math.round((x / 5) * 100) / 100;
console.log(`${a.size} fused ${a.fused} threads ${a.threads}: ${wall.toFixed(2)} ms/step wall, ${cpu.toFixed(2)} ms/step CPU (${((cpu / B) * 1000).toFixed(0)} us/trial), ${(1000 * B / wall).toFixed(0)} trials/s; tensors leaked over ${steps} steps: ${leaked}`);
console.log(`per step (CPU): total ${per(prof.wallMs)} ms, in kernels ${per(prof.kernelMs)} ms, outside kernels ${per(prof.outsideKernelsMs)} ms, ${per(prof.kernelCalls)} kernel calls`);
for (const k of prof.top) console.log(`  ${k.name.padEnd(28)} ${per(k.ms).toFixed(3).padStart(7)} ms  ${String(per(k.calls)).padStart(5)} calls`);
opt.dispose();
model.dispose();
