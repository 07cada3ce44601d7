// Best epoch and early stopping (docs/method.md §4.5). Pure: the caller keeps the state (it is
// part of the checkpointed loop state, so a resumed run counts its bad epochs on).
//
// Decisions:
// - Improved means strictly lower than the best score: a tie keeps the earlier epoch. The first
//   epoch is always the best, whatever its score; a NaN score never beats a best.
// - patience 0 turns early stopping off (the default: under a one-cycle schedule the last epochs
//   are the low-rate ones, and stopping before them wastes the annealing).
// - A stop on the last epoch is not an early stop: the run completed.
import type { BestEpoch } from './loop-state.ts';

export interface StoppingState {
  best: BestEpoch | null;
  /** Epochs since the best one. */
  badEpochs: number;
}

export class EarlyStopping {
  constructor(readonly patience: number) {}

  /** Records one finished epoch; true when it is the new best. */
  observe(s: StoppingState, epoch: BestEpoch): boolean {
    const improved = s.best === null || epoch.score < s.best.score;
    if (improved) {
      s.best = epoch;
      s.badEpochs = 0;
    } else s.badEpochs++;
    return improved;
  }

  /** True when training stops now, after `epochsDone` of `totalEpochs`, short of the end. */
  stopsEarly(s: StoppingState, epochsDone: number, totalEpochs: number): boolean {
    return this.patience > 0 && s.badEpochs >= this.patience && epochsDone < totalEpochs;
  }
}
