// The NaN guard (docs/method.md §4.5): what happens when a step's loss or gradient norm is NaN or
// infinite. trainStep reads both back before it updates anything, so a bad step has changed no
// weight and no moment when the guard sees it.
//
// Decisions:
// - `stop` (the default) ends training with an error naming the epoch, step, batch, session, mode,
//   the first non-finite gradients, and the last good checkpoint (last/ as the previous epoch
//   left it). The run folder resumes from there once the cause is fixed.
// - `skip` leaves the bad batch out and trains on: the step still counts (its position in the
//   schedule and the next steps' dropout seeds are those of a run where it had trained), its loss
//   is in no epoch mean, and each skip is a warning. For long runs on real data where one odd
//   batch should not end a day of training; a run whose every step is bad ends with NaN epochs.
// - A non-finite validation loss always stops: the weights themselves are broken.
import type { MaskedBatch } from '../masking/types.ts';
import type { StepResult } from './step.ts';

export type NanPolicy = 'stop' | 'skip';

export interface NanGuardOptions {
  policy: NanPolicy;
  /** The checkpoint a stopped run resumes from, named in the error. */
  lastDir: string;
  /** Makes the error (the caller prefixes its node). */
  fail(msg: string): Error;
  warn(fields: Record<string, unknown>, msg: string): void;
}

export class NanGuard {
  constructor(private o: NanGuardOptions) {}

  /**
   * After a step at 0-based `step` with `epochsDone` epochs in the checkpoint: true when the step
   * was good, false when it is skipped; throws when training stops.
   */
  stepOk(res: StepResult, b: MaskedBatch, step: number, epochsDone: number): boolean {
    if (res.ok) return true;
    const what = !Number.isFinite(res.loss) ? `loss is ${res.loss}` : `gradient norm is ${res.gradNorm}${res.badWeights.length ? ` (non-finite in ${res.badWeights.slice(0, 5).join(', ')})` : ''}`;
    const at = `at epoch ${b.epoch + 1}, step ${step + 1} (batch ${b.batchIndex + 1}/${b.batchesInEpoch}, session ${b.sessionId}, mode ${b.mode})`;
    if (this.o.policy === 'skip') {
      this.o.warn({ epoch: b.epoch + 1, step: step + 1, batch: b.batchIndex + 1, session: b.sessionId }, `${what} ${at}: batch skipped (nanPolicy skip), no weight changed`);
      return false;
    }
    throw this.o.fail(
      `${what} ${at}; ` +
        `training stopped, the last good checkpoint is ${this.o.lastDir}${epochsDone ? ` (epoch ${epochsDone})` : ' (none yet)'}; try a lower learningRate or clipNorm`,
    );
  }

  /** After validating epoch `epoch` (0-based) at `step`: throws on a non-finite loss. */
  checkValidation(valLoss: number | null, epoch: number, step: number): void {
    if (valLoss !== null && !Number.isFinite(valLoss)) throw this.o.fail(`validation loss is ${valLoss} after epoch ${epoch + 1} (step ${step}); the last good checkpoint is ${this.o.lastDir}`);
  }
}
