import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Metrics } from '../payloads.ts';
import type { EpochRecord } from './loop-state.ts';
import { metricsItem, round, TrainingReporter } from './reporter.ts';

const record = (epoch: number, valLoss: number | null, best = true): EpochRecord => ({ epoch, step: 6 * epoch, trainLoss: 1.5, valLoss, lr: 0.001, gradNormMean: 2, seconds: 0.3, best });

function reporter() {
  const calls: unknown[][] = [];
  const lines: Record<string, unknown>[] = [];
  const items: Metrics[] = [];
  const r = new TrainingReporter({
    nodeId: 'train',
    run: { metric: (id, rec) => lines.push({ node: id, ...rec }) },
    progress: (label, total) => {
      calls.push(['start', label, total]);
      return { increment: (n, note) => calls.push(['inc', n, note]), setTotal: () => {}, stop: () => calls.push(['stop']) };
    },
    logger: pino({ level: 'silent' }),
    emit: (m) => items.push(m),
  });
  r.begin(3, 6);
  return { r, calls, lines, items };
}

test('one bar per epoch, opened at the first step, starting at the resumed batch; stop is idempotent', () => {
  const { r, calls } = reporter();
  r.stepStarting(1, 2);
  r.stepDone(0.123456);
  r.stepStarting(1, 3);
  r.stop();
  r.stop();
  assert.equal(calls, [['start', 'epoch 2/3', 6], ['inc', 2, undefined], ['inc', 1, 'loss 0.1235'], ['stop']]);
});

test('an epoch end writes one metrics line and one port item; replay sends items only', () => {
  const { r, lines, items } = reporter();
  r.replay([record(1, 0.9)], 'mtm');
  assert.is(lines.length, 0, 'replayed epochs are in metrics.jsonl already');
  r.epochEnd(record(2, null, false), 'mtm', undefined);
  assert.is(lines.length, 1);
  const { tensors, ...line } = lines[0];
  assert.ok(Number.isInteger(tensors));
  assert.equal(line, { node: 'train', ...record(2, null, false), label: 'mtm', scoreOn: 'train' });
  assert.equal(items.map((m) => m.values.epoch), [1, 2]);
  assert.not.ok('valLoss' in items[1].values, 'no val loss: no valLoss value');
});

test('metricsItem and round', () => {
  assert.equal(metricsItem(record(1, 0.5), 'x'), { kind: 'metrics', sessionId: 'all', label: 'x', values: { epoch: 1, step: 6, trainLoss: 1.5, lr: 0.001, gradNormMean: 2, seconds: 0.3, best: 1, valLoss: 0.5 } });
  assert.is(round(1.234567), 1.23457);
  assert.is(round(12.34, 1), 12.3);
});

test.run();
