// The one-cycle learning-rate schedule of the MtM training recipe (docs/method.md §4.5):
// a linear warm-up to the peak over the first warmupFraction of the steps, then a cosine down to
// nearly zero. Start and end values follow PyTorch's OneCycleLR defaults (peak / 25 at the start,
// start / 1e4 at the end), so a warm-up step never has a zero learning rate.

export interface OneCycleOptions {
  /** Peak learning rate, reached at the end of the warm-up. */
  peak: number;
  /** Optimiser steps in the whole run (epochs x batches per epoch). */
  totalSteps: number;
  /** Fraction of the steps spent warming up (0.15 in the reference). */
  warmupFraction: number;
  /** The first step's rate is peak / startDivisor. */
  startDivisor?: number;
  /** The last step's rate is the first step's / endDivisor. */
  endDivisor?: number;
}

/** Learning rate of 0-based optimiser step `step`; steps past the end keep the final rate. */
export function oneCycleLr(step: number, o: OneCycleOptions): number {
  const total = Math.max(1, Math.floor(o.totalSteps));
  const start = o.peak / (o.startDivisor ?? 25);
  const end = start / (o.endDivisor ?? 1e4);
  if (total === 1) return o.peak;
  const last = total - 1;
  // The peak is step `warm`; at least one warm-up step when a warm-up is asked for, and at least
  // one step left to anneal.
  const warm = o.warmupFraction > 0 ? Math.min(last - 1, Math.max(1, Math.round(o.warmupFraction * last))) : 0;
  const s = Math.min(Math.max(step, 0), last);
  if (s < warm) return start + ((o.peak - start) * s) / warm;
  const progress = (s - warm) / Math.max(1, last - warm);
  return end + ((o.peak - end) * (1 + Math.cos(Math.PI * progress))) / 2;
}

/** The learning rate as a function of the 0-based step, for one run's options. */
export function oneCycleSchedule(o: OneCycleOptions): (step: number) => number {
  return (step) => oneCycleLr(step, o);
}
