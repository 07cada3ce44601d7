// Fits a new recording's fresh stitcher on its first seconds (docs/method.md §1.3; masking
// §3, fine-tuning §4.7): masked modelling on random windows of the calibration bins, core frozen.
//
// Decisions:
// - Only the session's own weights train (trainableVariables({sessionId})); the shared core and
//   the prompt tokens stay as trained, so calibration cannot damage them.
// - Each step draws `batchSize` windows of windowBins bins at random starts in the calibration
//   span (random crops use every offset; the stream's passes see windows at any offset too), and
//   masks them with sampleMask under the chosen scheme. A new recording has no region labels, so
//   every neuron is 'unlabelled' and `mtm` draws among neuron, causal and intra-region.
// - Adam (AdamW with no decay: a fresh stitcher has no prior to decay towards) with global-norm
//   clipping at 1, constant learning rate; dropout on, seeded per step.
// - Memory: the calibration bins are one Int32Array of calibrationBins x neurons, freed after the
//   fit; the caller bounds it (see MAX_CALIBRATION_VALUES).
import type { ArchitectureModel } from '../architecture.ts';
import { applyMask, sampleMask } from '../masking/masking.ts';
import type { MaskingScheme } from '../masking/types.ts';
import { createRng, hashString } from '../rng.ts';
import { poissonNll } from '../tensor/loss.ts';
import * as tf from '../tensor/tf.ts';
import { AdamW, type ParamGrad } from '../train/adamw.ts';
import { clipScale, globalNorm } from '../train/step.ts';
import type { Bin } from './online-binner.ts';

/** Largest calibration buffer (bins x neurons int32 values): 1 GiB. */
export const MAX_CALIBRATION_VALUES = 256 * 1024 * 1024;

/** The calibration span's counts, filled bin by bin. */
export class CalibrationBuffer {
  readonly counts: Int32Array;
  private rows = 0;
  private first = -1;

  constructor(
    readonly nBins: number,
    readonly nNeurons: number,
  ) {
    if (!Number.isInteger(nBins) || nBins < 1) throw new Error(`calibration: needs at least one bin, got ${nBins}`);
    if (nBins * nNeurons > MAX_CALIBRATION_VALUES) {
      throw new Error(`calibration: ${nBins} bins x ${nNeurons} neurons is more than ${MAX_CALIBRATION_VALUES} counts held in memory; shorten calibrationS`);
    }
    this.counts = new Int32Array(nBins * nNeurons);
  }

  get filled(): number {
    return this.rows;
  }

  get full(): boolean {
    return this.rows === this.nBins;
  }

  /** binIndex of the first bin held (-1 before any). */
  get firstBinIndex(): number {
    return this.first;
  }

  push(bin: Pick<Bin, 'binIndex' | 'counts'>): void {
    if (this.full) throw new Error('calibration: buffer already full');
    if (bin.counts.length !== this.nNeurons) throw new Error(`calibration: bin ${bin.binIndex} has ${bin.counts.length} neurons, expected ${this.nNeurons}`);
    if (this.rows === 0) this.first = bin.binIndex;
    else if (bin.binIndex !== this.first + this.rows) throw new Error(`calibration: got bin ${bin.binIndex}, expected ${this.first + this.rows}`);
    this.counts.set(bin.counts, this.rows * this.nNeurons);
    this.rows++;
  }
}

export interface FitStitcherOptions {
  sessionId: string;
  /** Bins per training window (the stream's windowBins); shorter when calibration has fewer bins. */
  windowBins: number;
  steps: number;
  learningRate: number;
  batchSize: number;
  scheme: MaskingScheme;
  seed: number;
  /** Region label per neuron; default all 'unlabelled'. */
  regions?: string[];
  signal?: AbortSignal;
  /** Called after each step with its loss. */
  onStep?: (step: number, loss: number) => void;
}

export interface FitStitcherResult {
  steps: number;
  windowBins: number;
  /** Mean masked loss of the first and the last tenth of the steps (at least one step each). */
  firstLoss: number;
  lastLoss: number;
  seconds: number;
  trainedWeights: number;
}

/** Copies `batchSize` random windows of `w` bins out of counts (nBins x n) into a [B, w, n] array. */
function cropWindows(counts: Int32Array, nBins: number, n: number, w: number, batch: number, rng: ReturnType<typeof createRng>): Int32Array {
  const out = new Int32Array(batch * w * n);
  for (let b = 0; b < batch; b++) {
    const start = rng.int(nBins - w + 1);
    out.set(counts.subarray(start * n, (start + w) * n), b * w * n);
  }
  return out;
}

/** Adam steps on the session's own weights with masked modelling on the calibration counts. */
export async function fitStitcher(model: ArchitectureModel, counts: Int32Array, nBins: number, o: FitStitcherOptions): Promise<FitStitcherResult> {
  const started = performance.now();
  const n = nBins > 0 ? counts.length / nBins : 0;
  if (!Number.isInteger(n) || n < 1 || nBins < 2) throw new Error(`calibration: needs at least 2 bins of at least one neuron, got ${nBins} bins and ${counts.length} counts`);
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new Error(`calibration: steps must be a positive integer, got ${o.steps}`);
  const vars = model.trainableVariables({ sessionId: o.sessionId });
  if (!vars.length) throw new Error(`calibration: the model has no trainable weights for session '${o.sessionId}'`);
  const names = new Map<tf.Variable, string>();
  for (const [name, v] of Object.entries(model.weights())) names.set(v as tf.Variable, name);
  const w = Math.min(o.windowBins, nBins);
  const regions = o.regions ?? Array.from({ length: n }, () => 'unlabelled');
  const rng = createRng(hashString('calibration', o.seed));
  const opt = new AdamW({ weightDecay: 0 });
  const losses: number[] = [];
  try {
    for (let step = 0; step < o.steps; step++) {
      o.signal?.throwIfAborted();
      const target = cropWindows(counts, nBins, n, w, o.batchSize, rng);
      const shape = { trials: o.batchSize, bins: w, neurons: n };
      const draw = sampleMask(shape, regions, o.scheme, rng);
      const input = applyMask(target, draw.masked);
      const dims: [number, number, number] = [o.batchSize, w, n];
      const x = tf.tensor3d(input, dims);
      const y = tf.tensor3d(Float32Array.from(target), dims);
      const m = tf.tensor3d(Float32Array.from(draw.lossMask), dims);
      let value: tf.Scalar | undefined;
      let grads: tf.NamedTensorMap = {};
      let norm: tf.Scalar | undefined;
      try {
        const seed = hashString(`calibration-dropout:${step}`, o.seed);
        ({ value, grads } = tf.variableGrads(() => poissonNll(model.forward({ sessionId: o.sessionId, input: x, mode: draw.mode, causal: draw.causal }, { training: true, seed }), y, m), vars));
        const present: ParamGrad[] = [];
        for (const v of vars) if (grads[v.name]) present.push({ name: names.get(v) ?? v.name, variable: v, grad: grads[v.name] });
        norm = globalNorm(present.map((p) => p.grad));
        const [loss, gn] = await Promise.all([value.data(), norm.data()]).then(([a, b]) => [a[0], b[0]]);
        if (!Number.isFinite(loss) || !Number.isFinite(gn)) {
          throw new Error(`calibration: loss ${loss}, gradient norm ${gn} at step ${step + 1} of ${o.steps}; try a lower calibrationLr`);
        }
        opt.apply(present, o.learningRate, clipScale(gn, 1));
        losses.push(loss);
        o.onStep?.(step + 1, loss);
      } finally {
        tf.dispose([x, y, m, value, norm, ...Object.values(grads)].filter((t): t is tf.Tensor => t != null));
      }
    }
  } finally {
    opt.dispose();
  }
  const tenth = Math.max(1, Math.floor(losses.length / 10));
  const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
  return {
    steps: losses.length,
    windowBins: w,
    firstLoss: mean(losses.slice(0, tenth)),
    lastLoss: mean(losses.slice(-tenth)),
    seconds: (performance.now() - started) / 1000,
    trainedWeights: vars.reduce((s, v) => s + v.size, 0),
  };
}
