// NDT1 training throughput (issue 4): mtm-flow's real training step (core/train trainStep: forward,
// Poisson NLL, gradients, global-norm clipping, AdamW) against the same model in PyTorch on this
// CPU (bench/torch-peer.ts), at two sizes, in one process run. Warm-up steps are excluded. Also
// records which tensor backend ran, whether the native kernels (core/tensor/kernels) were on, a
// per-kernel profile of one mtm step, and optionally the same step on tfjs's built-in kernels.
// Usage: node --import tsx bench/training.ts [--sizes small,reference] [--steps 10] [--warmup 2]
//          [--baseline small|all|none] [--no-torch] [--note "machine quiet"]
// Writes bench/results/training.json.
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../core/io/atomic.ts';
import type { MaskedBatch } from '../core/masking/types.ts';
import { createRng } from '../core/rng.ts';
import { initBackend } from '../core/tensor/backend.ts';
import { fastKernelStatus, registerFastKernels, unregisterFastKernels } from '../core/tensor/kernels/index.ts';
import { profileKernels, type KernelProfile } from '../core/tensor/kernels/profile.ts';
import * as tf from '../core/tensor/tf.ts';
import { AdamW } from '../core/train/adamw.ts';
import { trainStep } from '../core/train/step.ts';
import { ndt1Architecture } from '../plugins/ndt1/architecture.ts';
import { BENCH_SIZES, machineInfo, runTorchPeer, type TorchResult } from './torch-peer.ts';

type SizeName = keyof typeof BENCH_SIZES;
type Size = (typeof BENCH_SIZES)[SizeName];

const { values: a } = parseArgs({
  options: {
    sizes: { type: 'string', default: 'small,reference' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    baseline: { type: 'string', default: 'small' },
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
if (!(steps >= 1 && warmup >= 0 && baselineSteps >= 1)) throw new Error('--steps and --baseline-steps must be >= 1, --warmup >= 0');
const baselineFor = (s: SizeName) => a.baseline === 'all' || a.baseline.split(',').includes(s);
const log = (m: string) => console.error(m);

const MASK_RATIO = 0.3;
const RATE = 0.3;
const N_BATCHES = 4;
const LR = 1e-3;
const WEIGHT_DECAY = 0.01;
const CLIP_NORM = 1;

/** Fixed synthetic batches (drawn up front, as the peer does): Poisson counts, temporal masking. */
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
      input, target, lossMask: masked.slice(), masked, mode: 'temporal', causal: false, regions: new Array<string>(N).fill('unknown'),
    };
  });
}

interface MtmResult {
  kernels: 'native' | 'builtin';
  trialsPerS: number;
  msPerStep: number;
  steps: number;
  params: number;
  lossFirst: number;
  lossLast: number;
  /** Tensors alive after the run minus before: 0 when nothing leaks. */
  leakedTensors: number;
  rssMiB: number;
  profile: KernelProfile;
}

async function measureMtm(size: Size, kernels: 'native' | 'builtin', nSteps: number): Promise<MtmResult> {
  if (kernels === 'builtin') unregisterFastKernels();
  else registerFastKernels(tf.getBackend());
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
    for (let i = 0; i < nSteps; i++) await step(warmup + i);
    const msPerStep = (performance.now() - t0) / nSteps;
    const profile = await profileKernels(() => step(warmup + nSteps), 15);
    result = {
      kernels,
      trialsPerS: round((1000 * size.batch) / msPerStep, 2),
      msPerStep: round(msPerStep, 1),
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

const results: Record<string, unknown> = {};
let torchFailed = false;
for (const name of sizes) {
  const size = BENCH_SIZES[name];
  log(`\n== ${name}: D${size.d}, ${size.layers} layers, ${size.heads} heads, MLP ${size.mlp}; T${size.bins} N${size.neurons} batch ${size.batch}`);
  const mtm = await measureMtm(size, status.enabled ? 'native' : 'builtin', steps);
  log(`mtm-flow (${mtm.kernels} kernels): ${mtm.trialsPerS} trials/s, ${mtm.msPerStep} ms/step`);
  let builtin: MtmResult | undefined;
  if (status.enabled && baselineFor(name)) {
    builtin = await measureMtm(size, 'builtin', baselineSteps);
    log(`mtm-flow (built-in kernels): ${builtin.trialsPerS} trials/s, ${builtin.msPerStep} ms/step`);
  }
  let torch: TorchResult | { error: string } | undefined;
  if (!a['no-torch']) {
    try {
      torch = await runTorchPeer({ ...size, steps, warmup }, { log });
      log(`PyTorch: ${torch.trialsPerS} trials/s, ${torch.msPerStep} ms/step`);
    } catch (e) {
      torchFailed = true;
      torch = { error: (e as Error).message };
      log(`PyTorch peer failed: ${(e as Error).message}`);
    }
  }
  const torchRate = torch && 'trialsPerS' in torch ? torch.trialsPerS : undefined;
  results[name] = {
    config: size,
    mtm: { ...mtm, profile: undefined },
    mtmBuiltinKernels: builtin ? { ...builtin, profile: undefined } : undefined,
    torch: torch && 'trialsPerS' in torch
      ? { trialsPerS: torch.trialsPerS, msPerStep: torch.msPerStep, params: torch.params, torchVersion: torch.torchVersion, blas: torch.blas, threads: torch.threads, lossFirst: torch.lossFirst, lossLast: torch.lossLast }
      : torch,
    trainVsTorch: torchRate ? round(mtm.trialsPerS / torchRate, 3) : null,
    nativeVsBuiltinKernels: builtin ? round(mtm.trialsPerS / builtin.trialsPerS, 2) : undefined,
    profile: mtm.profile,
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
  settings: {
    steps, warmup, baselineSteps, masking: `temporal, ${MASK_RATIO} of bins`, counts: `Poisson(${RATE})`, batches: N_BATCHES,
    optimizer: `AdamW lr ${LR} weight decay ${WEIGHT_DECAY}`,
    mtmStep: `core/train trainStep: forward, Poisson NLL, gradients, global-norm clipping at ${CLIP_NORM}, AdamW (the peer does no clipping)`,
    tokens: 'mtm-flow: temporal masking has no prompt token (100 tokens); the peer always prepends one (101)',
  },
  sizes: results,
};
await writeFileAtomic(a.out, JSON.stringify(out, null, 2) + '\n');
log(`\nwrote ${a.out}`);
for (const name of sizes) {
  const r = results[name] as { mtm: MtmResult; torch?: { trialsPerS?: number }; trainVsTorch: number | null };
  console.log(`${name.padEnd(10)} mtm ${r.mtm.trialsPerS} trials/s (${r.mtm.msPerStep} ms/step)  torch ${r.torch?.trialsPerS ?? '-'} trials/s  trainVsTorch ${r.trainVsTorch ?? '-'}`);
}
if (torchFailed) process.exitCode = 1;
