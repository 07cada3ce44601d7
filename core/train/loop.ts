// The training loop (docs/method.md §4): batches in, optimiser steps, an epoch end after each
// epoch's last batch, and a model reference out. Each concern is a named part the loop calls:
// TrainingSetup (the model: built, fine-tuned or restored), Checkpointer (last/ and best/,
// fingerprints), EarlyStopping (best epoch, patience), NanGuard (non-finite steps), the one-cycle
// schedule, and TrainingReporter (progress, metrics lines and port, logs).
//
// Decisions:
// - Resume: masks depend only on (seed, epoch, batch) and dropout is seeded per step, so skipping
//   the batches a checkpoint already trained and going on gives the weights an uninterrupted run
//   ends with.
// - Interruption (signal): the step in progress finishes, last/ is written at that batch, and no
//   model is returned (a rerun into the same folder resumes).
// - Epoch end order: validate, pick best, then best/ before last/ (a crash between the two
//   redoes the epoch, which rewrites best/ alike), then the metrics line, port item and log.
// - A stream that skips the rest of an epoch closes the open epoch at the next epoch's first
//   batch; a stream that ends early closes what was trained and completes there (a warning).
import type { Logger } from 'pino';
import type { MaskedBatch } from '../masking/types.ts';
import type { ModelRef } from '../payloads.ts';
import { hashString } from '../rng.ts';
import type { Checkpointer } from './checkpointer.ts';
import type { EarlyStopping } from './early-stopping.ts';
import { addStep, closeEpoch, epochMeans, noteModes, skipStep, trainedBefore, type EpochRecord, type LoopState } from './loop-state.ts';
import type { NanGuard } from './nan-guard.ts';
import { round, type TrainingReporter } from './reporter.ts';
import { oneCycleSchedule } from './schedule.ts';
import { specFromBatch, type TrainingSetup } from './setup.ts';
import { evaluateLoss, trainStep } from './step.ts';

export interface TrainLoopOptions {
  batches: AsyncIterator<MaskedBatch>;
  /** A fixed validation set, scored after every epoch (may be empty: best on the train loss). */
  val: MaskedBatch[];
  signal: AbortSignal;
  logger: Logger;
  seed: number;
  /** Makes an error naming the node. */
  fail(msg: string): Error;
  learningRate: number;
  warmupFraction: number;
  clipNorm: number;
  trainScope: 'all' | 'sessions';
}

export interface TrainLoopParts {
  setup: TrainingSetup;
  checkpointer: Checkpointer;
  stopping: EarlyStopping;
  guard: NanGuard;
  reporter: TrainingReporter;
}

/** Trains until the batches end, the last epoch ends, early stopping or an interruption; the best model, or undefined when interrupted. */
export async function trainLoop(o: TrainLoopOptions, parts: TrainLoopParts): Promise<ModelRef | undefined> {
  const run = new LoopRun(o, parts);
  try {
    for (;;) {
      const r = await o.batches.next();
      if (r.done) break;
      const b = r.value;
      if (!run.begun && run.begin(b).finished) break;
      const s = run.state;
      if (trainedBefore(s, b) || b.epoch >= run.totalEpochs) continue; // trained before the restart, or past the end
      if (b.epoch > s.epoch) {
        // The stream skipped the rest of an epoch (it should not): close the open one first.
        if (s.acc.steps > 0) await run.endEpoch();
        if (s.finished) break;
        s.epoch = b.epoch;
      }
      await run.trainOn(b);
      if (s.nextBatch >= run.perEpoch) {
        await run.endEpoch();
        if (s.finished) break;
      }
      if (o.signal.aborted) break;
    }
    return await run.finish(o.signal.aborted);
  } finally {
    parts.reporter.stop();
    parts.setup.dispose();
  }
}

/** One run's position and the steps between batches; trainLoop is the order they happen in. */
class LoopRun {
  begun = false;
  totalEpochs = 0;
  perEpoch = 0;
  private state_: LoopState | undefined;
  private lrAt: (step: number) => number = () => NaN;
  private warnedSplit = false;

  constructor(
    private o: TrainLoopOptions,
    private parts: TrainLoopParts,
  ) {}

  get state(): LoopState {
    return this.state_!;
  }

  /** On the first batch: the run's length, the schedule, and the model and state (new or resumed). */
  begin(first: MaskedBatch): LoopState {
    this.begun = true;
    if (!Number.isInteger(first.epochs) || !Number.isInteger(first.batchesInEpoch)) {
      throw this.o.fail(`masked batch of session ${first.sessionId} carries no epochs/batchesInEpoch: the training schedule needs them (feed train from a masking-sampler)`);
    }
    this.totalEpochs = first.epochs;
    this.perEpoch = first.batchesInEpoch;
    this.lrAt = oneCycleSchedule({ peak: this.o.learningRate, totalSteps: this.totalEpochs * this.perEpoch, warmupFraction: this.o.warmupFraction });
    this.parts.reporter.begin(this.totalEpochs, this.perEpoch);
    const { state, resumed } = this.parts.setup.begin(first, this.o.val, this.parts.checkpointer, this.totalEpochs, this.perEpoch);
    this.state_ = state;
    if (resumed) this.parts.reporter.replay(state.history, state.label);
    return state;
  }

  /** One optimiser step on `b` (or a skipped one, per the NaN guard). */
  async trainOn(b: MaskedBatch): Promise<void> {
    const { setup, guard, reporter } = this.parts;
    const s = this.state;
    if (b.split !== 'train' && !this.warnedSplit) {
      this.warnedSplit = true;
      this.o.logger.warn(`the train port receives ${b.split} batches: check which sampler feeds it`);
    }
    reporter.stepStarting(s.epoch, s.nextBatch);
    setup.ensureSession(specFromBatch(b));
    const started = performance.now();
    const res = await trainStep(setup.model, setup.opt, b, { lr: this.lrAt(s.step), clipNorm: this.o.clipNorm, dropoutSeed: hashString(`dropout:${s.step}`, this.o.seed), scope: this.o.trainScope });
    if (guard.stepOk(res, b, s.step, s.history.length)) addStep(s, b, res, (performance.now() - started) / 1000);
    else skipStep(s, b);
    reporter.stepDone(res.loss);
  }

  /** Validates, keeps the best, decides whether training stops, writes the checkpoints and reports the epoch. */
  async endEpoch(): Promise<void> {
    const { setup, checkpointer, stopping, guard, reporter } = this.parts;
    const s = this.state;
    reporter.stop();
    const { trainLoss, gradNormMean } = epochMeans(s.acc);
    noteModes(s);
    for (const b of this.o.val) setup.ensureSession(specFromBatch(b));
    const v = this.o.val.length ? await evaluateLoss(setup.model, this.o.val) : undefined;
    const valLoss = v && v.scored > 0 ? v.loss : null;
    guard.checkValidation(valLoss, s.epoch, s.step);
    const epoch = s.epoch + 1;
    const best = stopping.observe(s, { epoch, score: valLoss ?? trainLoss, trainLoss, valLoss });
    const record: EpochRecord = { epoch, step: s.step, trainLoss, valLoss, lr: this.lrAt(Math.max(0, s.step - 1)), gradNormMean, seconds: s.acc.seconds, best };
    closeEpoch(s, record);
    const early = stopping.stopsEarly(s, s.epoch, this.totalEpochs);
    if (s.epoch >= this.totalEpochs || early) {
      s.finished = true;
      s.stopReason = early ? 'early-stop' : 'completed';
    }
    if (best) await checkpointer.saveBest(setup.model, setup.metadata(s, { best: s.best }));
    await this.saveLast();
    reporter.epochEnd(record, s.label, early ? { patience: stopping.patience, best: s.best! } : undefined);
  }

  private saveLast(): Promise<void> {
    const { setup, checkpointer } = this.parts;
    return checkpointer.saveLast(setup.model, setup.metadata(this.state), setup.opt, this.state);
  }

  /** After the last batch taken: the best model, or undefined when interrupted (last/ written at the batch reached). */
  async finish(interrupted: boolean): Promise<ModelRef | undefined> {
    const log = this.o.logger;
    if (!this.begun) {
      if (this.o.signal.aborted) {
        log.warn('interrupted before the first training batch: nothing trained');
        return undefined;
      }
      throw this.o.fail(`no training batches arrived on 'train' (does the sampler's split have trials?)`);
    }
    const s = this.state;
    const { lastDir, bestDir } = this.parts.checkpointer;
    if (!s.finished && interrupted) {
      this.parts.reporter.stop();
      await this.saveLast();
      log.warn({ epoch: s.epoch + 1, batch: s.nextBatch, step: s.step }, `interrupted: checkpoint saved in ${lastDir}; run again with the same --out to resume`);
      return undefined;
    }
    if (!s.finished) {
      // The stream ended early without an interruption: close what was trained and stop there.
      if (s.acc.steps > 0) await this.endEpoch();
      if (!s.finished) {
        log.warn({ epochs: s.epoch, of: this.totalEpochs }, 'the train stream ended before its last epoch');
        s.finished = true;
        s.stopReason = 'completed';
        await this.saveLast();
      }
    }
    const best = s.best;
    if (!best) throw this.o.fail('no epoch completed: there is no model to emit');
    log.info({ bestEpoch: best.epoch, score: round(best.score), stopReason: s.stopReason, path: bestDir }, 'training done');
    return this.parts.setup.modelRef(best, s.label, bestDir);
  }
}
