// NDT1 training throughput: mtm-flow's real training step (core/train trainStep: forward, Poisson
// NLL, gradients, global-norm clipping, AdamW) against the same model in PyTorch on this CPU
// (bench/torch-peer.ts: bench/.venv's pip torch, else Debian's), at three sizes (the quickstart's,
// D 128 / 4 layers, the reference D 512 / 5 layers), in one process run. Each side runs at 1 thread
// and at every core, runs interleaved (ours, peer, ours, peer, ...), and the best of each is the
// fair comparison. Also: the machine's measured peak (bench/peak.ts) and each step's achieved
// FLOP/s as a fraction of it, per-kernel profiles with the fused kernels on and off, and
// optionally the step on tfjs's built-in kernels. Warm-up steps are excluded.
// Usage: node --import tsx bench/training.ts [--sizes quickstart,small,reference] [--steps 10]
//          [--warmup 2] [--rounds 2] [--baseline quickstart|all|none] [--no-torch] [--note "..."]
// Writes bench/results/training.json (and bench/results/peak.json).
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../core/io/atomic.ts';
import type { MaskedBatch } from '../core/masking/types.ts';
import { createRng } from '../core/rng.ts';
import { initBackend } from '../core/tensor/backend.ts';
import { fastKernelStatus, registerFastKernels, unregisterFastKernels } from '../core/tensor/kernels/index.ts';
import { restoreFusedKernels, setFusedKernels } from '../core/tensor/kernels/layer.ts';
import { loadNative } from '../core/tensor/kernels/native.ts';
import { profileKernels, type KernelProfile } from '../core/tensor/kernels/profile.ts';
import * as tf from '../core/tensor/tf.ts';
import { AdamW } from '../core/train/adamw.ts';
import { trainStep } from '../core/train/step.ts';
import { ndt1Architecture } from '../plugins/ndt1/architecture.ts';
import { measurePeak, type PeakResult } from './peak.ts';
import { BENCH_SIZES, bestTorchPeer, machineInfo, type BestPeer } from './torch-peer.ts';

type SizeName = keyof typeof BENCH_SIZES;
type Size = (typeof BENCH_SIZES)[SizeName];

const { values: a } = parseArgs({
  options: {
    sizes: { type: 'string', default: 'quickstart,small,reference' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
    baseline: { type: 'string', default: 'quickstart' },
    'baseline-steps': { type: 'string', default: '3' },
    'no-torch': { type: 'boolean', default: false },
    note: { type: 'string', default: process.env.MTM_BENCH_NOTE ?? '' },
    out: { type: 'string', default: join(import.meta.dirname, 'results', 'training.json') },
  },
});
const sizes = a.sizes.split(',').map((s) => s.trim()) as SizeName[];
for (const s of sizes) if (!(s in BENCH_SIZES)) throw new Error(`--sizes: unknown size '${s}' (known: ${Object.keys(BENCH_SIZES).join(', ')})`);
const steps = Number(a.steps);
const warmup = Number(a.warmup);
const baselineSteps = Number(a['baseline-steps']);
const rounds = Math.max(1, Number(a.rounds));
if (!(steps >= 1 && warmup >= 0 && baselineSteps >= 1)) throw new Error('--steps and --baseline-steps must be >= 1, --warmup >= 0');
const baselineFor = (s: SizeName) => a.baseline === 'all' || a.baseline.split(',').includes(s);
const log = (m: string) => console.error(m);

const MASK_RATIO = 0.3;
const RATE = 0.3;
const N_BATCHES = 4;
const LR = 1e-3;
const WEIGHT_DECAY = 0.01;
const CLIP_NORM = 1;

/**
 * Model FLOPs of one training step, counted analytically (multiply-adds x 2; element-wise ops,
 * softmax, LayerNorm and the optimiser not counted). B trials of T bins, S = T + 1 tokens (the
 * prompt token), N neurons, width D, MLP width F, L layers:
 *   forward  = 2 B T (N 2N + 2N D + D N)           stitcher in1, in2 and readout, on the T bin tokens
 *            + L [ 2 B S (3D D + D D + 2 D F)        q/k/v, output projection, MLP fc1 and fc2
 *                + 2 B S^2 D x 2 ]                  attention: q k^T and P v, all heads
 *   backward = 2 x forward (the input and the weight gradient of every product)
 *   step     = 3 x forward
 */
export function stepFlops(size: Size, tokens = size.bins + 1): { forward: number; step: number } {
  const { batch: B, bins: T, neurons: N, d: D, mlp: F, layers: L } = size;
  const S = tokens;
  const stitcher = 2 * B * T * (N * 2 * N + 2 * N * D + D * N);
  const linears = 2 * B * S * (3 * D * D + D * D + 2 * D * F);
  const attention = 2 * 2 * B * S * S * D;
  const forward = stitcher + L * (linears + attention);
  return { forward, step: 3 * forward };
}

/**
 * Fixed synthetic batches (drawn up front, as the peer does): Poisson counts, whole bins masked
 * (the peer's pattern), run in mode 'neuron' so the model prepends its prompt token as the peer
 * does (101 tokens on both sides).
 */
function makeBatches(size: Size, seed: number): MaskedBatch[] {
  const rng = createRng(seed);
  const { batch: B, bins: T, neurons: N } = size;
  return Array.from({ length: N_BATCHES }, (_, bi) => {
    const target = Int32Array.from({ length: B * T * N }, () => rng.poisson(RATE));
    const masked = new Uint8Array(B * T * N);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) if (rng.next() < MASK_RATIO) masked.fill(1, (b * T + t) * N, (b * T + t + 1) * N);
    const input = Float32Array.from(target, (c, i) => (masked[i] ? 0 : c));
    return {
      kind: 'masked-batch', sessionId: 'bench', split: 'train', epoch: 0, epochs: 1, batchIndex: bi, batchesInEpoch: N_BATCHES,
      trialIndex: Int32Array.from({ length: B }, (_, i) => bi * B + i), shape: { trials: B, bins: T, neurons: N }, binSizeMs: 20,
      input, target, lossMask: masked.slice(), masked, mode: 'neuron', causal: false, regions: new Array<string>(N).fill('unknown'),
    };
  });
}

interface MtmResult {
  kernels: 'native' | 'builtin';
  /** Fused layer / linear / dropout kernels (core/tensor/kernels/layer.ts) on. */
  fused: boolean;
  threads: number;
  trialsPerS: number;
  msPerStep: number;
  /** CPU time of this thread per step; the whole work only with one native thread (else null). */
  cpuMsPerStep: number | null;
  steps: number;
  params: number;
  lossFirst: number;
  lossLast: number;
  /** Tensors alive after the run minus before: 0 when nothing leaks. */
  leakedTensors: number;
  rssMiB: number;
  profile: KernelProfile;
}

async function measureMtm(size: Size, kernels: 'native' | 'builtin', nSteps: number, o: { fused?: boolean; threads?: number } = {}): Promise<MtmResult> {
  if (kernels === 'builtin') unregisterFastKernels();
  else registerFastKernels(tf.getBackend());
  const fused = o.fused ?? true;
  const prevFused = setFusedKernels(fused);
  const { native } = loadNative();
  const threads0 = native?.info().threads ?? 1;
  if (native && o.threads) native.configure({ threads: o.threads });
  const threads = native?.info().threads ?? 1;
  const before = tf.memory().numTensors;
  const model = ndt1Architecture.build(
    { dModel: size.d, layers: size.layers, heads: size.heads, mlpDim: size.mlp, dropout: size.dropout, embedDropout: size.dropout, attentionDropout: 0, maxBins: size.bins },
    { sessions: [{ sessionId: 'bench', nNeurons: size.neurons, nBins: size.bins }], seed: 1 },
  );
  const opt = new AdamW({ weightDecay: WEIGHT_DECAY });
  const batches = makeBatches(size, 2);
  const losses: number[] = [];
  const step = async (i: number) => {
    const r = await trainStep(model, opt, batches[i % N_BATCHES], { lr: LR, clipNorm: CLIP_NORM, dropoutSeed: 1000 + i });
    if (!r.ok) throw new Error(`mtm step ${i}: non-finite loss or gradient (loss ${r.loss})`);
    losses.push(r.loss);
  };
  let result: MtmResult;
  try {
    for (let i = 0; i < warmup; i++) await step(i);
    const t0 = performance.now();
    const c0 = native?.threadCpuMs() ?? 0;
    for (let i = 0; i < nSteps; i++) await step(warmup + i);
    const msPerStep = (performance.now() - t0) / nSteps;
    const cpuMsPerStep = native && threads === 1 ? round((native.threadCpuMs() - c0) / nSteps, 1) : null;
    const profile = await profileKernels(() => step(warmup + nSteps), 15);
    result = {
      kernels,
      fused: kernels === 'native' && fused,
      threads,
      trialsPerS: round((1000 * size.batch) / msPerStep, 2),
      msPerStep: round(msPerStep, 1),
      cpuMsPerStep,
      steps: nSteps,
      params: model.paramCount(),
      lossFirst: round(losses[0], 5),
      lossLast: round(losses[losses.length - 1], 5),
      leakedTensors: 0,
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
      profile,
    };
  } finally {
    opt.dispose();
    model.dispose();
    registerFastKernels(tf.getBackend());
    restoreFusedKernels(prevFused);
    if (native) native.configure({ threads: threads0 });
  }
  result.leakedTensors = tf.memory().numTensors - before;
  if (result.leakedTensors) log(`warning: ${result.leakedTensors} tensors left after the ${kernels} run`);
  return result;
}

function round(x: number, d: number): number {
  return Math.round(x * 10 ** d) / 10 ** d;
}

const started = new Date();
const load0 = loadavg();
const backend = await initBackend({ log });
const status = fastKernelStatus();
log(`tensor backend ${backend.name}: ${backend.reason}`);
log(`native kernels: ${status.enabled ? 'on' : 'off'} (${status.reason})`);

let peak: PeakResult | undefined;
try {
  peak = await measurePeak({ torch: !a['no-torch'], log });
  await writeFileAtomic(join(import.meta.dirname, 'results', 'peak.json'), JSON.stringify({ benchmark: 'peak', date: started.toISOString(), machine: machineInfo(), ...peak }, null, 2) + '\n');
} catch (e) {
  log(`peak not measured: ${(e as Error).message}`);
}
const cores = machineInfo().cores;
const threadCounts = [...new Set([1, cores])];

const results: Record<string, unknown> = {};
let torchFailed = false;
for (const name of sizes) {
  const size = BENCH_SIZES[name];
  const flops = stepFlops(size);
  log(`\n== ${name}: D${size.d}, ${size.layers} layers, ${size.heads} heads, MLP ${size.mlp}; T${size.bins} N${size.neurons} batch ${size.batch}; ${(flops.step / 1e9).toFixed(2)} GFLOP/step`);
  const kernels = status.enabled ? 'native' : 'builtin';
  const ours: MtmResult[] = [];
  const peers: BestPeer[] = [];
  let torchError: string | undefined;
  // Interleaved: each round runs ours at every thread count, then the peer at every setting.
  for (let r = 0; r < rounds; r++) {
    for (const t of threadCounts) {
      const m = await measureMtm(size, kernels, steps, { threads: t });
      log(`round ${r + 1}: mtm-flow (${m.kernels}${m.fused ? ', fused' : ''}, ${m.threads} threads): ${m.trialsPerS} trials/s, ${m.msPerStep} ms/step (load ${loadavg()[0].toFixed(2)})`);
      ours.push(m);
    }
    if (!a['no-torch'] && !torchError) {
      try {
        const p = await bestTorchPeer({ ...size, steps, warmup }, { log });
        log(`round ${r + 1}: PyTorch best ${p.best.trialsPerS} trials/s (threads ${p.variant.threads}, attention ${p.variant.attention}; load ${loadavg()[0].toFixed(2)})`);
        peers.push(p);
      } catch (e) {
        torchFailed = true;
        torchError = (e as Error).message;
        log(`PyTorch peer failed: ${torchError}`);
      }
    }
  }
  const mtm = ours.reduce((x, y) => (y.trialsPerS > x.trialsPerS ? y : x));
  const bestByThreads = Object.fromEntries(threadCounts.map((t) => [`threads${t}`, Math.max(...ours.filter((m) => m.threads === t).map((m) => m.trialsPerS))]));
  // The op-by-op path on the same native kernels (fused kernels off): the "before" of the fused kernels.
  let unfused: MtmResult | undefined;
  let builtin: MtmResult | undefined;
  if (status.enabled && baselineFor(name)) {
    unfused = await measureMtm(size, 'native', baselineSteps, { fused: false, threads: mtm.threads });
    log(`mtm-flow (native kernels, fused off): ${unfused.trialsPerS} trials/s, ${unfused.msPerStep} ms/step`);
    builtin = await measureMtm(size, 'builtin', baselineSteps, { threads: mtm.threads });
    log(`mtm-flow (built-in kernels): ${builtin.trialsPerS} trials/s, ${builtin.msPerStep} ms/step`);
  }
  const peer = peers.length ? peers.reduce((x, y) => (y.best.trialsPerS > x.best.trialsPerS ? y : x)) : undefined;
  const torch = peer?.best;
  const peerTried = peers.flatMap((p) => p.tried);
  const torchBest = Object.fromEntries(
    [...new Set(peerTried.map((t) => `threads${t.threads}/${t.attention}`))].map((k) => [k, Math.max(...peerTried.filter((t) => `threads${t.threads}/${t.attention}` === k).map((t) => t.trialsPerS ?? 0))]),
  );
  const achieved = (m: MtmResult) => flops.step / (m.msPerStep / 1000) / 1e9;
  // Load-independent view (the machine is shared): one thread each, CPU time per step.
  const oursCpu = Math.min(...ours.map((m) => m.cpuMsPerStep ?? Infinity));
  const torchCpu = Math.min(...peerTried.filter((t) => t.threads === 1 && t.cpuMsPerStep).map((t) => t.cpuMsPerStep!), Infinity);
  const cpuView = Number.isFinite(oursCpu)
    ? {
        mtmCpuMsPerStep: oursCpu,
        torchCpuMsPerStep: Number.isFinite(torchCpu) ? torchCpu : null,
        trainVsTorchCpu: Number.isFinite(torchCpu) ? round(torchCpu / oursCpu, 3) : null,
        mtmGflopsPerCore: round(flops.step / (oursCpu / 1000) / 1e9, 1),
        mtmPeakFractionPerCore: peak ? round(flops.step / (oursCpu / 1000) / 1e9 / peak.fmaGflops1, 3) : null,
        torchPeakFractionPerCore: peak && Number.isFinite(torchCpu) ? round(flops.step / (torchCpu / 1000) / 1e9 / peak.fmaGflops1, 3) : null,
      }
    : undefined;
  const gflops = (ms: number) => round(flops.step / (ms / 1000) / 1e9, 1);
  results[name] = {
    config: size,
    flopsPerStep: flops.step,
    mtm: { ...mtm, profile: undefined, gflops: gflops(mtm.msPerStep), peakFraction: peak ? round(achieved(mtm) / peak.peakGflops, 3) : null },
    mtmBestByThreads: bestByThreads,
    mtmUnfused: unfused ? { ...unfused, profile: undefined, gflops: gflops(unfused.msPerStep) } : undefined,
    mtmBuiltinKernels: builtin ? { ...builtin, profile: undefined } : undefined,
    torch: torch
      ? {
          trialsPerS: torch.trialsPerS, msPerStep: torch.msPerStep, params: torch.params, torchVersion: torch.torchVersion, python: torch.python, pythonSource: torch.pythonSource,
          variant: peer!.variant, bestBySetting: torchBest, parallel: torch.parallel, blas: torch.blas, threads: torch.threads, lossFirst: torch.lossFirst, lossLast: torch.lossLast,
          gflops: gflops(torch.msPerStep), peakFraction: peak ? round(flops.step / (torch.msPerStep / 1000) / 1e9 / peak.peakGflops, 3) : null,
        }
      : torchError ? { error: torchError } : undefined,
    trainVsTorch: torch ? round(mtm.trialsPerS / torch.trialsPerS, 3) : null,
    oneThreadCpu: cpuView,
    fusedVsUnfused: unfused ? round(mtm.trialsPerS / unfused.trialsPerS, 2) : undefined,
    nativeVsBuiltinKernels: builtin ? round(mtm.trialsPerS / builtin.trialsPerS, 2) : undefined,
    profile: mtm.profile,
    profileUnfused: unfused?.profile,
    profileBuiltinKernels: builtin?.profile,
  };
}

const out = {
  benchmark: 'ndt1-training',
  date: started.toISOString(),
  machine: machineInfo(),
  loadAverage: { start: load0.map((x) => round(x, 2)), end: loadavg().map((x) => round(x, 2)) },
  note: a.note || undefined,
  backend: { name: backend.name, package: backend.package, reason: backend.reason },
  nativeKernels: status,
  peak,
  settings: {
    steps, warmup, baselineSteps, rounds, threads: threadCounts, masking: `whole bins, ${MASK_RATIO} of them (run as mode 'neuron': prompt token prepended)`, counts: `Poisson(${RATE})`, batches: N_BATCHES,
    optimizer: `AdamW lr ${LR} weight decay ${WEIGHT_DECAY}`,
    mtmStep: `core/train trainStep: forward, Poisson NLL, gradients, global-norm clipping at ${CLIP_NORM}, AdamW (the peer does no clipping)`,
    tokens: 'both sides: 100 bin tokens after one prompt token (101)',
    flops: 'stepFlops() in bench/training.ts: 3 x forward multiply-adds x 2 (linears and attention products); fraction = achieved / peak.peakGflops',
    fair: 'each side at 1 thread and at every core (the peer also with F.scaled_dot_product_attention on torch >= 2), interleaved; the best of each',
  },
  sizes: results,
};
await writeFileAtomic(a.out, JSON.stringify(out, null, 2) + '\n');
log(`\nwrote ${a.out}`);
if (peak) console.log(`peak ${peak.isa} ${peak.peakGflops} GFLOP/s (${peak.fmaGflops1} on one thread); GEMM ${peak.gemm.n}: ours ${JSON.stringify(peak.gemm.ours)} torch ${JSON.stringify(peak.gemm.torch ?? peak.gemm.torchError)}`);
for (const name of sizes) {
  const r = results[name] as {
    mtm: MtmResult & { gflops: number; peakFraction: number | null }; torch?: { trialsPerS?: number; peakFraction?: number }; trainVsTorch: number | null;
    oneThreadCpu?: { mtmCpuMsPerStep: number; torchCpuMsPerStep: number | null; trainVsTorchCpu: number | null; mtmPeakFractionPerCore: number | null };
  };
  const c = r.oneThreadCpu;
  console.log(`${name.padEnd(10)} mtm ${r.mtm.trialsPerS} trials/s (${r.mtm.msPerStep} ms/step, ${r.mtm.gflops} GFLOP/s, ${r.mtm.peakFraction ?? '-'} of peak)  torch ${r.torch?.trialsPerS ?? '-'} trials/s (${r.torch?.peakFraction ?? '-'})  trainVsTorch ${r.trainVsTorch ?? '-'}` +
    (c ? `  | 1 thread CPU ms/step: mtm ${c.mtmCpuMsPerStep} torch ${c.torchCpuMsPerStep ?? '-'} ratio ${c.trainVsTorchCpu ?? '-'}, ${c.mtmPeakFractionPerCore ?? '-'} of one core's peak` : ''));
}
if (torchFailed) process.exitCode = 1;
