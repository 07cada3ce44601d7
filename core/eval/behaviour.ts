// Behaviour decoding of docs/method.md §5.4 from a frozen model: its unmasked predicted log-rates,
// flattened over bins x neurons per trial, decode choice (L2 logistic regression: accuracy and
// chance) and whisker motion energy and wheel speed (ridge: R^2 pooled over trials x bins), fit
// on train+val trials and scored on test trials, regularisation chosen by cross-validation.
//
// Decisions: the prompt per target is a parameter (defaults: `neuron` for choice, `causal` for
// the continuous targets); a model without prompt tokens uses 'temporal', and causal attention
// goes with the causal prompt (see tasks.ts). Targets the session lacks, or trials whose target is
// missing (NaN choice, NaN in any bin), are left out and the reason is reported, never guessed.
import type { BinnedSession } from '../payloads.ts';
import type { MaskingMode } from '../masking/types.ts';
import type { Rng } from '../rng.ts';
import * as tf from '../tensor/tf.ts';
import { decodeBinary, decodeRidge, gram } from './decoders.ts';
import { resolvePrompt, type LogRatePredictor } from './tasks.ts';

/** The targets decoded here; their metric keys and titles are the task registry's decoding tasks (core/eval/task-registry.ts). */
export type BehaviourTarget = 'choice' | 'whiskerMotionEnergy' | 'wheelSpeed';
export const BEHAVIOUR_TARGETS: readonly BehaviourTarget[] = ['choice', 'whiskerMotionEnergy', 'wheelSpeed'];

export interface BehaviourOptions {
  targets?: readonly BehaviourTarget[];
  /** Requested prompt for choice and for the per-bin targets. */
  choicePrompt: MaskingMode;
  continuousPrompt: MaskingMode;
  promptTokens: boolean;
  /** Masking modes the model was trained with (see resolvePrompt in tasks.ts). */
  trainedModes?: readonly MaskingMode[];
  batchSize: number;
  rng: Rng;
  lambdas?: number[];
  folds?: number;
  signal?: AbortSignal;
}

export interface DecodeOutcome {
  target: BehaviourTarget;
  mode: MaskingMode;
  causal: boolean;
  lambda: number;
  nTrain: number;
  nTest: number;
  /** Choice: test accuracy and majority-class chance. */
  accuracy?: number;
  chance?: number;
  /** Per-bin targets: R^2 pooled over test trials x bins. */
  r2?: number;
}

export interface BehaviourResult {
  decoded: Partial<Record<BehaviourTarget, DecodeOutcome>>;
  /** Why a target was not decoded. */
  skipped: Partial<Record<BehaviourTarget, string>>;
  /** Seconds spent on forward passes and on fitting. */
  predictSeconds: number;
  fitSeconds: number;
}

/** Unmasked log-rates of the given trials, [row][bin][neuron]. */
export async function predictTrials(s: BinnedSession, predictor: LogRatePredictor, rows: Int32Array, mode: MaskingMode, causal: boolean, batchSize: number, signal?: AbortSignal): Promise<Float32Array> {
  const TN = s.nBins * s.nNeurons;
  const out = new Float32Array(rows.length * TN);
  for (let start = 0; start < rows.length; start += batchSize) {
    if (signal?.aborted) throw new Error(`behaviour decoding of session ${s.sessionId} interrupted`);
    const b = Math.min(batchSize, rows.length - start);
    const batchRows = rows.subarray(start, start + b);
    const input = new Float32Array(b * TN);
    for (let i = 0; i < b; i++) {
      const src = batchRows[i] * TN;
      for (let e = 0; e < TN; e++) input[i * TN + e] = s.counts[src + e];
    }
    const y = tf.tidy(() => predictor({ input: tf.tensor3d(input, [b, s.nBins, s.nNeurons], 'float32'), mode, causal, rows: batchRows }));
    try {
      if (y.size !== b * TN) throw new Error(`the model returned shape [${y.shape.join(', ')}] for a batch of [${b}, ${s.nBins}, ${s.nNeurons}]`);
      out.set((await y.data()) as Float32Array, start * TN);
    } finally {
      y.dispose();
    }
    await new Promise<void>((res) => setImmediate(res));
  }
  return out;
}

/** Subtracts each column's mean in place: the decoders re-centre anyway, this keeps the Gram well conditioned. */
function centreColumns(x: Float32Array, n: number, p: number): void {
  const mean = new Float64Array(p);
  for (let i = 0; i < n; i++) for (let k = 0; k < p; k++) mean[k] += x[i * p + k];
  for (let k = 0; k < p; k++) mean[k] /= n;
  for (let i = 0; i < n; i++) for (let k = 0; k < p; k++) x[i * p + k] -= mean[k];
}

const NO_FEATURES = new Float32Array(0);
const isFit = (split: string) => split === 'train' || split === 'val';

export async function decodeBehaviour(s: BinnedSession, predictor: LogRatePredictor, o: BehaviourOptions): Promise<BehaviourResult> {
  const targets = o.targets ?? BEHAVIOUR_TARGETS;
  const result: BehaviourResult = { decoded: {}, skipped: {}, predictSeconds: 0, fitSeconds: 0 };
  const folds = o.folds ?? 5;

  const usable: Partial<Record<BehaviourTarget, TargetTrials>> = {};
  for (const target of targets) {
    const u = usableTrials(s, target, folds);
    if (typeof u === 'string') result.skipped[target] = u;
    else usable[target] = u;
  }

  // One forward pass over all trials per distinct (mode, causal); one Gram matrix per pass.
  // Only the Gram matrix is kept: the decoders need nothing else of the features when given it,
  // and the features (trials x bins x neurons) are the large part.
  const features = new Map<string, Features>();
  for (const target of Object.keys(usable) as BehaviourTarget[]) {
    const { mode, causal } = resolvePrompt(target === 'choice' ? o.choicePrompt : o.continuousPrompt, o.promptTokens, o.trainedModes);
    const f = await featuresFor(features, s, predictor, { mode, causal }, o, result);
    const t0 = performance.now();
    result.decoded[target] = decodeTarget(s, target, f, usable[target]!, o, folds);
    result.fitSeconds += (performance.now() - t0) / 1000;
    await new Promise<void>((res) => setImmediate(res));
  }
  return result;
}

/** Train+val and test trials a target can use. */
interface TargetTrials {
  train: number[];
  test: number[];
}

/** The features of one (mode, causal): the Gram matrix of every trial's centred log-rates. */
interface Features {
  g: Float64Array;
  mode: MaskingMode;
  causal: boolean;
}

/** The trials with a value of the target, split for fitting and testing; or why the target cannot be decoded. */
function usableTrials(s: BinnedSession, target: BehaviourTarget, folds: number): TargetTrials | string {
  const T = s.nBins;
  let ok: (t: number) => boolean;
  if (target === 'choice') {
    const c = s.trials.columns.choice;
    if (!c) return 'the session has no choice column';
    ok = (t) => c[t] === 1 || c[t] === -1;
  } else {
    const v = s.perBin[target];
    if (!v) return `the session has no per-bin ${target}`;
    ok = (t) => {
      for (let b = 0; b < T; b++) if (!Number.isFinite(v[t * T + b])) return false;
      return true;
    };
  }
  const train: number[] = [];
  const test: number[] = [];
  for (let t = 0; t < s.nTrials; t++) {
    if (!ok(t)) continue;
    if (isFit(s.trials.split[t])) train.push(t);
    else if (s.trials.split[t] === 'test') test.push(t);
  }
  if (train.length < Math.max(2, folds) || test.length === 0) {
    return `too few trials with a ${target} value: ${train.length} train+val (need ${Math.max(2, folds)}), ${test.length} test (need 1)`;
  }
  if (target === 'choice' && new Set(train.map((t) => s.trials.columns.choice[t])).size < 2) return 'every train+val trial has the same choice';
  return { train, test };
}

/** The features of (mode, causal), computed on first use and kept in `cache`; the time it takes goes to `result`. */
async function featuresFor(
  cache: Map<string, Features>, s: BinnedSession, predictor: LogRatePredictor, prompt: { mode: MaskingMode; causal: boolean }, o: BehaviourOptions, result: BehaviourResult,
): Promise<Features> {
  const { mode, causal } = prompt;
  const key = `${mode}:${causal}`;
  const have = cache.get(key);
  if (have) return have;
  const p = s.nBins * s.nNeurons;
  const allRows = Int32Array.from({ length: s.nTrials }, (_, i) => i);
  let t0 = performance.now();
  const x = await predictTrials(s, predictor, allRows, mode, causal, o.batchSize, o.signal);
  result.predictSeconds += (performance.now() - t0) / 1000;
  t0 = performance.now();
  centreColumns(x, s.nTrials, p);
  const f = { g: gram(x, s.nTrials, p), mode, causal };
  result.fitSeconds += (performance.now() - t0) / 1000;
  cache.set(key, f);
  return f;
}

/** Fits the target's decoder on the train+val trials and scores it on the test trials. */
function decodeTarget(s: BinnedSession, target: BehaviourTarget, f: Features, trials: TargetTrials, o: BehaviourOptions, folds: number): DecodeOutcome {
  const { train, test } = trials;
  const inp = { x: NO_FEATURES, nRows: s.nTrials, nFeatures: s.nBins * s.nNeurons, train, test, gram: f.g, rng: o.rng.fork(target), lambdas: o.lambdas, folds };
  const base = { target, mode: f.mode, causal: f.causal, nTrain: train.length, nTest: test.length };
  if (target === 'choice') {
    const r = decodeBinary(inp, s.trials.columns.choice);
    return { ...base, lambda: r.lambda, accuracy: r.accuracy, chance: r.chance };
  }
  const r = decodeRidge(inp, s.perBin[target], s.nBins);
  return { ...base, lambda: r.lambda, r2: r.r2 };
}
