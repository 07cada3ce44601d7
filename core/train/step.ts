// One optimiser step and one validation pass on masked batches (docs/method.md §4.4, §4.5): Poisson NLL on the
// scored entries, gradients of every trainable weight, global-norm clipping, AdamW.
import type { ArchitectureModel } from '../architecture.ts';
import type { MaskedBatch } from '../masking/types.ts';
import { batchTensors } from '../tensor/batch.ts';
import { sumOfSquares } from '../tensor/kernels/train.ts';
import { poissonNll } from '../tensor/loss.ts';
import * as tf from '../tensor/tf.ts';
import type { AdamW, ParamGrad } from './adamw.ts';

/** Entries a batch scores (its loss is normalised by this count). */
export function scoredCount(b: MaskedBatch): number {
  let n = 0;
  for (let i = 0; i < b.lossMask.length; i++) n += b.lossMask[i];
  return n;
}

/** sqrt of the sum of squares of every tensor, as one scalar (no read-back). */
export function globalNorm(tensors: tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => {
    if (!tensors.length) return tf.scalar(0);
    const squares = tensors.map((t) => tf.sum(tf.square(t)));
    return tf.sqrt(squares.length === 1 ? squares[0] : tf.addN(squares)) as tf.Scalar;
  });
}

/** Factor that brings a gradient of norm `norm` down to `maxNorm` (1 when already below; clipping off when maxNorm <= 0). */
export function clipScale(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0) || !(norm > maxNorm)) return 1;
  return maxNorm / (norm + 1e-6);
}

export interface StepOptions {
  lr: number;
  /** Global-norm clipping threshold; 0 turns clipping off. */
  clipNorm: number;
  /** Seeds this step's dropout (ForwardOptions.seed). */
  dropoutSeed: number;
  /** Which weights train: every one (default), or only the per-session ones (a frozen core). */
  scope?: 'all' | 'sessions';
}

export type StepResult =
  | { ok: true; loss: number; gradNorm: number; scored: number }
  /** The loss or a gradient was NaN/Inf: nothing was updated. */
  | { ok: false; loss: number; gradNorm: number; scored: number; badWeights: string[] };

/**
 * Forward, backward, clip and AdamW update on one batch. Reads back the loss and the gradient
 * norm before updating, so a non-finite value leaves the weights and moments untouched.
 */
export async function trainStep(model: ArchitectureModel, opt: AdamW, batch: MaskedBatch, o: StepOptions): Promise<StepResult> {
  const names = new Map<tf.Variable, string>();
  for (const [name, v] of Object.entries(model.weights())) names.set(v as tf.Variable, name);
  const vars = model.trainableVariables(o.scope ?? 'all');
  const t = batchTensors(batch);
  let value: tf.Scalar | undefined;
  let grads: tf.NamedTensorMap = {};
  let norm: tf.Scalar | undefined;
  try {
    ({ value, grads } = tf.variableGrads(() => poissonNll(model.forward(t.model, { training: true, seed: o.dropoutSeed }), t.target, t.lossMask), vars));
    // Gradients in the model's own weight order, so the norm sums the same way in every process.
    const present: ParamGrad[] = [];
    for (const v of vars) {
      const g = grads[v.name];
      if (g) present.push({ name: names.get(v) ?? v.name, variable: v, grad: g });
    }
    // One native call over every gradient when it can (else ~2 tfjs kernels per weight).
    const squares = sumOfSquares(present.map((p) => p.grad));
    let loss: number;
    let gradNorm: number;
    if (squares !== undefined) {
      loss = (await value.data())[0];
      gradNorm = Math.fround(Math.sqrt(squares));
    } else {
      norm = globalNorm(present.map((p) => p.grad));
      [loss, gradNorm] = await Promise.all([value.data(), norm.data()]).then(([a, b]) => [a[0], b[0]]);
    }
    const scored = scoredCount(batch);
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      const badWeights: string[] = [];
      for (const p of present) {
        const s = tf.tidy(() => tf.sum(tf.cast(tf.logicalNot(tf.isFinite(p.grad)), 'int32')));
        if (s.dataSync()[0] > 0) badWeights.push(p.name);
        s.dispose();
      }
      return { ok: false, loss, gradNorm, scored, badWeights };
    }
    opt.apply(present, o.lr, clipScale(gradNorm, o.clipNorm));
    return { ok: true, loss, gradNorm, scored };
  } finally {
    tf.dispose([value, norm, ...Object.values(grads)].filter((x): x is tf.Tensor => x !== undefined && x !== null));
    t.dispose();
  }
}

/** Mean Poisson NLL over every scored entry of `batches`, model in eval mode (no dropout). */
export async function evaluateLoss(model: ArchitectureModel, batches: MaskedBatch[]): Promise<{ loss: number; scored: number }> {
  let sum = 0;
  let scored = 0;
  for (const b of batches) {
    const n = scoredCount(b);
    if (n === 0) continue;
    const t = batchTensors(b);
    const l = tf.tidy(() => poissonNll(model.forward(t.model, { training: false }), t.target, t.lossMask));
    try {
      sum += (await l.data())[0] * n;
      scored += n;
    } finally {
      l.dispose();
      t.dispose();
    }
  }
  return { loss: scored ? sum / scored : NaN, scored };
}
