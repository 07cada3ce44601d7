import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { filterTrials, splitTrials, trialBehaviour, type TrialFilter } from './trials.ts';

const REF: TrialFilter = {
  alignEvent: 'stimOn_times',
  reactionTimeRangeS: [0.08, 2],
  requireFinite: ['stimOn_times', 'choice', 'feedback_times', 'probabilityLeft', 'firstMovement_times', 'feedbackType'],
  excludeNoChoice: true,
  maxFeedbackDelayS: 10,
};

// One trial per rule, plus edge cases that must be kept.
function trials() {
  const rows = [
    // stimOn, goCue, move, feedback, choice, fbType, pL, cL, cR
    [10, 9.99, 10.3, 10.8, 1, 1, 0.5, 1, NaN], // 0 kept
    [20, 19.99, 20.05, 20.6, -1, 1, 0.2, NaN, 0.25], // 1 rt 0.05 < 0.08
    [30, 29.99, 33, 33.5, 1, -1, 0.8, 0.125, NaN], // 2 rt 3 > 2
    [40, 39.99, NaN, 100, 0, -1, 0.8, 0, NaN], // 3 NaN firstMovement (no-go)
    [50, 49.99, 50.2, 50.9, 0, -1, 0.8, NaN, 0], // 4 choice 0 with a movement
    [60, 59.9, 60.5, 71, 1, 1, 0.5, 1, NaN], // 5 feedback - goCue = 11.1 > 10
    [70, NaN, 70.5, 71, -1, 1, 0.5, NaN, 1], // 6 goCue NaN: the delay rule cannot drop it
    [80, 79.99, 80.08, 80.5, -1, -1, 0.2, NaN, 0.0625], // 7 rt exactly 0.08 (kept, inclusive)
    [NaN, 89.99, 90.3, 90.6, 1, 1, 0.5, 1, NaN], // 8 NaN stimOn
    [100, 99.99, 100.4, 100.9, 1, 1, NaN, 0.25, NaN], // 9 NaN probabilityLeft
  ];
  const col = (j: number) => Float64Array.from(rows, (r) => r[j]);
  return {
    stimOn_times: col(0),
    goCue_times: col(1),
    firstMovement_times: col(2),
    feedback_times: col(3),
    choice: col(4),
    feedbackType: col(5),
    probabilityLeft: col(6),
    contrastLeft: col(7),
    contrastRight: col(8),
  };
}

test('reference filter keeps exactly the valid trials and counts why the others went', () => {
  const r = filterTrials(trials(), REF);
  // Trial 7's rt is 80.08 - 80 in floating point, a hair under or over 0.08: compare the same way.
  const t7 = 80.08 - 80 >= 0.08;
  assert.equal(Array.from(r.kept), t7 ? [0, 6, 7] : [0, 6]);
  assert.is(r.total, 10);
  assert.equal(r.dropped, { nan: 3, noChoice: 1, reactionTime: t7 ? 2 : 3, feedbackDelay: 1 });
});

test('each rule is a parameter', () => {
  const t = trials();
  const loose = filterTrials(t, { ...REF, reactionTimeRangeS: [0, 5], maxFeedbackDelayS: 100, excludeNoChoice: false, requireFinite: ['stimOn_times'] });
  // Only NaN stimOn remains a reason; trial 3 (no movement) passes because its rt is NaN and NaN never drops.
  assert.equal(Array.from(loose.kept), [0, 1, 2, 3, 4, 5, 6, 7, 9]);
  const r = filterTrials(t, { ...REF, alignEvent: 'firstMovement_times' });
  assert.ok(!Array.from(r.kept).includes(3));
});

test('a missing attribute is an error naming it and the source', () => {
  const t = trials() as Record<string, Float64Array>;
  delete t.feedbackType;
  assert.throws(() => filterTrials(t, REF, 'session X trials'), (e: Error) => /session X trials/.test(e.message) && /'feedbackType'/.test(e.message));
});

test('split: 70/10/20 sizes, seeded, per session, independent of other sessions', () => {
  const a = splitTrials(200, [0.7, 0.1, 0.2], 42, 'eid-a');
  const count = (s: string[], k: string) => s.filter((x) => x === k).length;
  assert.equal([count(a, 'train'), count(a, 'val'), count(a, 'test')], [140, 20, 40]);
  assert.equal(splitTrials(200, [0.7, 0.1, 0.2], 42, 'eid-a'), a);
  assert.not.equal(splitTrials(200, [0.7, 0.1, 0.2], 43, 'eid-a'), a);
  assert.not.equal(splitTrials(200, [0.7, 0.1, 0.2], 42, 'eid-b'), a);
  // Shuffled, not blocks: the test trials are spread over the session.
  const testIdx = a.map((s, i) => (s === 'test' ? i : -1)).filter((i) => i >= 0);
  assert.ok(testIdx[0] < 50 && testIdx[testIdx.length - 1] > 150);
  const small = splitTrials(7, [0.7, 0.1, 0.2], 1, 'x');
  assert.is(small.length, 7);
  assert.equal([count(small, 'train'), count(small, 'val'), count(small, 'test')], [5, 1, 1]);
  assert.throws(() => splitTrials(10, [0.5, 0.1, 0.1], 1, 'x'), /sum to 1/);
});

test('behaviour columns: choice, block, reward, signed contrast, reaction time', () => {
  const t = trials();
  const b = trialBehaviour(t, Int32Array.from([0, 1, 7]));
  assert.equal(Array.from(b.choice), [1, -1, -1]);
  assert.equal(Array.from(b.block), [0.5, 0.2, 0.2]);
  assert.equal(Array.from(b.reward), [1, 1, 0]);
  assert.equal(Array.from(b.contrast), [-1, 0.25, 0.0625]);
  assert.ok(Math.abs(b.reactionTimeS[0] - 0.3) < 1e-12);
});

test.run();
