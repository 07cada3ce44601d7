// Progress and metrics of a training run: one progress bar per epoch, and per finished epoch a
// metrics.jsonl line, an item on the stage's metrics port and a log line.
//
// Decisions:
// - A resumed run replays the finished epochs on the metrics port (a report downstream sees the
//   whole history) but writes no metrics.jsonl line for them: those are in the file already.
// - The metrics.jsonl line carries the live tensor count after the epoch's checkpoints, so a leak
//   shows as a count that grows from epoch to epoch.
// - The bar of a resumed epoch starts at the batch the run resumes from.
import type { Logger } from 'pino';
import type { Metrics } from '../payloads.ts';
import type { Progress, RunDirectoryHandle } from '../stage.ts';
import * as tf from '../tensor/tf.ts';
import type { BestEpoch, EpochRecord } from './loop-state.ts';

export interface ReporterOptions {
  nodeId: string;
  run: Pick<RunDirectoryHandle, 'metric'>;
  progress(label: string, total: number): Progress;
  logger: Logger;
  /** Sends one item on the metrics port. */
  emit(m: Metrics): void;
}

/** The metrics-port item of one epoch. */
export function metricsItem(r: EpochRecord, label: string): Metrics {
  const values: Record<string, number> = { epoch: r.epoch, step: r.step, trainLoss: r.trainLoss, lr: r.lr, gradNormMean: r.gradNormMean, seconds: r.seconds, best: r.best ? 1 : 0 };
  if (r.valLoss !== null) values.valLoss = r.valLoss;
  return { kind: 'metrics', sessionId: 'all', label, values };
}

export function round(x: number, digits = 5): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export class TrainingReporter {
  private bar: Progress | undefined;
  private totalEpochs = 0;
  private perEpoch = 0;

  constructor(private o: ReporterOptions) {}

  /** The run's length, known from its first batch. */
  begin(totalEpochs: number, perEpoch: number): void {
    this.totalEpochs = totalEpochs;
    this.perEpoch = perEpoch;
  }

  /** The finished epochs of a resumed run, on the metrics port. */
  replay(history: EpochRecord[], label: string): void {
    for (const r of history) this.o.emit(metricsItem(r, label));
  }

  /** Before a step of 0-based `epoch`, `done` of its batches trained: opens the epoch's bar. */
  stepStarting(epoch: number, done: number): void {
    if (this.bar) return;
    this.bar = this.o.progress(`epoch ${epoch + 1}/${this.totalEpochs}`, this.perEpoch);
    if (done > 0) this.bar.increment(done);
  }

  stepDone(loss: number): void {
    this.bar?.increment(1, `loss ${loss.toFixed(4)}`);
  }

  /** Closes the bar of the epoch in progress, if open. */
  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }

  /** A finished epoch, once its checkpoints are written. */
  epochEnd(record: EpochRecord, label: string, early: { patience: number; best: BestEpoch } | undefined): void {
    const scoreOn = record.valLoss === null ? 'train' : 'val';
    this.o.run.metric(this.o.nodeId, { ...record, label, scoreOn, tensors: tf.memory().numTensors });
    this.o.emit(metricsItem(record, label));
    this.o.logger.info(
      { epoch: record.epoch, of: this.totalEpochs, trainLoss: round(record.trainLoss), valLoss: record.valLoss === null ? undefined : round(record.valLoss), lr: record.lr, seconds: round(record.seconds, 1) },
      `epoch ${record.epoch}/${this.totalEpochs}${record.best ? ' (best)' : ''}`,
    );
    if (early) this.o.logger.info({ patience: early.patience, bestEpoch: early.best.epoch }, `early stop: no better ${scoreOn === 'train' ? 'train' : 'validation'} loss for ${early.patience} epochs`);
  }
}
