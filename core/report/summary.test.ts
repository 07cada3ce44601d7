import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compare, comparisonSentence, CORE_KEYS, isTrainingMetrics, namedFirst, summarise, TASKS } from './summary.ts';
import { TASK_METRIC } from '../eval/tasks.ts';
import type { Metrics } from '../payloads.ts';

const m = (sessionId: string, label: string, values: Record<string, number>): Metrics => ({ kind: 'metrics', sessionId, label, values });
const epoch = (label: string, e: number, trainLoss: number, valLoss: number, best = 0) => m('all', label, { epoch: e, step: e * 10, trainLoss, valLoss, lr: 1e-3, seconds: 2, best });

test('task stems match the evaluator’s metric names', () => {
  assert.equal([...TASKS].sort(), Object.values(TASK_METRIC).sort());
});

test('training items are told from evaluation items by their fields', () => {
  assert.ok(isTrainingMetrics(epoch('mtm', 1, 0.5, 0.6)));
  assert.not.ok(isTrainingMetrics(m('s1', 'mtm', { co_smoothing_bps: 0.1, epoch: 3 })));
});

test('summarise: per session, merged items, means, computed oracle ratios, training curves', () => {
  const s = summarise([
    epoch('mtm', 1, 0.5, 0.55),
    epoch('mtm', 2, 0.4, 0.45, 1),
    epoch('mtm', 2, 0.41, 0.44, 1), // a resumed run replays epoch 2: the later record wins
    m('s1', 'mtm', { co_smoothing_bps: 0.2, co_smoothing_oracle_bps: 0.4, eval_seconds: 3 }),
    m('s1', 'mtm', { choice_accuracy: 0.8, choice_chance: 0.6 }),
    m('s2', 'mtm', { co_smoothing_bps: 0.1, co_smoothing_oracle_bps: 0.5, eval_seconds: 4 }),
    m('s1', 'temporal', { co_smoothing_bps: 0.05 }),
  ]);
  assert.equal(s.labels, ['mtm', 'temporal']);
  assert.equal(s.sessions, ['s1', 's2']);
  const e = s.perSession.s1.mtm;
  for (const k of CORE_KEYS) assert.ok(k in e, `key ${k}`);
  assert.is(e.co_smoothing_bps, 0.2);
  assert.is(e.choice_accuracy, 0.8);
  assert.is(e.forward_prediction_bps, null);
  assert.is(e.co_smoothing_oracle_ratio, 0.5);
  assert.not.ok('wme_r2' in e, 'behaviour keys absent from the whole run are left out');
  assert.is(s.perSession.s2.temporal, undefined);
  assert.is(s.mean.mtm.sessions, 2);
  assert.ok(Math.abs(s.mean.mtm.co_smoothing_bps! - 0.15) < 1e-12);
  assert.ok(Math.abs(s.mean.mtm.co_smoothing_oracle_ratio! - 0.35) < 1e-12, 'ratio averaged per session');
  assert.is(s.mean.temporal.sessions, 1);
  assert.ok(Math.abs(s.oracle.co_smoothing!.bps! - 0.45) < 1e-12);
  assert.is(s.oracle.forward_prediction, undefined);
  assert.is(s.training.mtm.epochs, 2);
  assert.is(s.training.mtm.finalTrainLoss, 0.41);
  assert.is(s.training.mtm.bestEpoch, 2);
  assert.is(s.training.mtm.bestValLoss, 0.44);
  assert.equal(s.timings.mtm, { eval_seconds: 7 });
});

test('comparison sentences follow the numbers', () => {
  const run = (a: number, b: number) => {
    const s = summarise([m('s1', 'mtm', { co_smoothing_bps: a }), m('s1', 'temporal', { co_smoothing_bps: b }), m('s2', 'mtm', { co_smoothing_bps: a + 0.01 }), m('s2', 'temporal', { co_smoothing_bps: b - 0.01 })]);
    return comparisonSentence(compare(s, 'co_smoothing_bps')!);
  };
  const fwd = run(0.2, 0.1);
  assert.match(fwd, /mtm is better than temporal by 0\.110 \(0\.205 vs 0\.095/);
  assert.match(fwd, /ahead on 2 of 2 sessions/);
  const rev = run(0.1, 0.2);
  assert.match(rev, /temporal is better than mtm by 0\.090 \(0\.195 vs 0\.105/);
  assert.match(rev, /temporal is ahead on 2 of 2 sessions/);
  const level = summarise([m('s1', 'mtm', { wme_r2: 0.3 }), m('s1', 'temporal', { wme_r2: 0.3 })]);
  assert.match(comparisonSentence(compare(level, 'wme_r2')!), /mtm and temporal are level/);
  // Negative runner-up: no percentage against a negative baseline.
  assert.not.match(run(0.05, -0.1), /%/);
  assert.match(run(0.2, 0.1), /115\.8 % more/);
});

test('namedFirst: named items first in the given order, the rest keep theirs', () => {
  assert.equal(namedFirst(['c', 'a', 'b', 'd'], ['b', 'x', 'c']), ['b', 'c', 'a', 'd']);
  assert.equal(namedFirst(['z', 'y'], []), ['z', 'y']);
});

test('refuses items that are not metrics', () => {
  assert.throws(() => summarise([{ kind: 'artifact' } as unknown as Metrics]), /metrics item 0/);
});

test.run();
