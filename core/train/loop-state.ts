// The training loop's state (docs/method.md §4.7): what training.json holds besides the weights and
// moments, and the per-epoch totals the loop adds each step to. Pure: no tensors, no files.
//
// Decisions:
// - The field names and their order are those of checkpoints already on disk (a rerun into an old
//   run folder resumes), so fields are only ever added, never renamed.
// - An epoch's train loss is the mean over every scored entry of its steps (loss x scored, summed,
//   over the scored count), not the mean of the step losses; NaN when nothing was scored.
import type { MaskedBatch, MaskingMode } from '../masking/types.ts';

/** One epoch's numbers, as recorded in the checkpoint and sent on the metrics port. */
export interface EpochRecord {
  /** 1-based. */
  epoch: number;
  step: number;
  trainLoss: number;
  valLoss: number | null;
  /** Learning rate of the epoch's last step. */
  lr: number;
  gradNormMean: number;
  seconds: number;
  best: boolean;
}

/** Sums over the steps of the epoch in progress. */
export interface EpochTotals {
  lossSum: number;
  scored: number;
  gradNormSum: number;
  steps: number;
  seconds: number;
  modes: MaskingMode[];
}

/** The best epoch so far, on `score` (the val loss, or the train loss without val batches). */
export interface BestEpoch {
  epoch: number;
  score: number;
  trainLoss: number;
  valLoss: number | null;
}

/** The loop's state, saved in training.json: everything besides weights and moments. */
export interface LoopState {
  fingerprint: Record<string, unknown>;
  step: number;
  /** 0-based epoch in progress (equals the epoch count once all are done). */
  epoch: number;
  /** Batches of `epoch` already trained. */
  nextBatch: number;
  acc: EpochTotals;
  best: BestEpoch | null;
  badEpochs: number;
  history: EpochRecord[];
  label: string;
  /** Every masking mode trained so far, saved with the model so evaluation runs each task in a mode it knows. */
  trainedModes?: MaskingMode[];
  finished: boolean;
  stopReason?: 'completed' | 'early-stop';
  /** Steps left out by the NaN guard's skip policy (absent when none). */
  skippedSteps?: number;
}

export const emptyTotals = (): EpochTotals => ({ lossSum: 0, scored: 0, gradNormSum: 0, steps: 0, seconds: 0, modes: [] });

export function newLoopState(fingerprint: Record<string, unknown>, label: string): LoopState {
  return { fingerprint, step: 0, epoch: 0, nextBatch: 0, acc: emptyTotals(), best: null, badEpochs: 0, history: [], label, finished: false };
}

/** A batch the run trained before it was interrupted (skipped on resume). */
export function trainedBefore(s: LoopState, b: MaskedBatch): boolean {
  return b.epoch < s.epoch || (b.epoch === s.epoch && b.batchIndex < s.nextBatch);
}

/** Adds one successful step on `b` to the epoch's totals and moves the position past it. */
export function addStep(s: LoopState, b: MaskedBatch, r: { loss: number; scored: number; gradNorm: number }, seconds: number): void {
  s.acc.lossSum += r.loss * r.scored;
  s.acc.scored += r.scored;
  s.acc.gradNormSum += r.gradNorm;
  s.acc.steps++;
  s.acc.seconds += seconds;
  if (!s.acc.modes.includes(b.mode)) s.acc.modes.push(b.mode);
  s.step++;
  s.nextBatch = b.batchIndex + 1;
}

/** Moves the position past a batch whose step the NaN guard skipped: the step counts, its numbers do not. */
export function skipStep(s: LoopState, b: MaskedBatch): void {
  s.skippedSteps = (s.skippedSteps ?? 0) + 1;
  s.step++;
  s.nextBatch = b.batchIndex + 1;
}

/** The epoch's mean train loss and gradient norm (NaN when it has no steps or scored nothing). */
export function epochMeans(t: EpochTotals): { trainLoss: number; gradNormMean: number } {
  return { trainLoss: t.scored ? t.lossSum / t.scored : NaN, gradNormMean: t.steps ? t.gradNormSum / t.steps : NaN };
}

/** The masking mode when the run trained one, else mtm. */
export function labelOf(modes: MaskingMode[]): string {
  const distinct = [...new Set(modes)];
  return distinct.length === 1 ? distinct[0] : 'mtm';
}

/** At the end of an epoch: the run's label (when none was given) and every mode trained so far. */
export function noteModes(s: LoopState): void {
  if (!s.label) s.label = labelOf(s.acc.modes);
  s.trainedModes = [...new Set([...(s.trainedModes ?? []), ...s.acc.modes])].sort();
}

/** Closes the open epoch: history appended, position at the next epoch's start, totals reset. */
export function closeEpoch(s: LoopState, record: EpochRecord): void {
  s.history.push(record);
  s.epoch++;
  s.nextBatch = 0;
  s.acc = emptyTotals();
}
