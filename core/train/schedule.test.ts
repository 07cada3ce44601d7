import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { oneCycleLr, oneCycleSchedule } from './schedule.ts';

test('linear warm-up over 15% of the steps to the peak, then cosine down to ~0', () => {
  const o = { peak: 1e-3, totalSteps: 201, warmupFraction: 0.15 };
  const lr = Array.from({ length: 201 }, (_, s) => oneCycleLr(s, o));
  assert.ok(Math.abs(lr[0] - 1e-3 / 25) < 1e-12, 'starts at peak / 25');
  assert.is(lr[30], 1e-3, 'peak at 15% of the steps');
  for (let s = 1; s <= 30; s++) assert.ok(Math.abs(lr[s] - lr[s - 1] - (lr[30] - lr[0]) / 30) < 1e-12, `linear warm-up at ${s}`);
  for (let s = 31; s < 201; s++) assert.ok(lr[s] < lr[s - 1], `decreasing at ${s}`);
  assert.ok(lr[200] < 1e-8, 'ends near zero');
  // Half-way through the annealing the cosine is at the mean of its ends.
  assert.ok(Math.abs(lr[115] - (1e-3 + lr[200]) / 2) < 1e-9);
  assert.is(oneCycleLr(500, o), lr[200], 'past the end it holds the final rate');
});

test('tiny runs still warm up and anneal; no warm-up when the fraction is 0', () => {
  assert.is(oneCycleLr(0, { peak: 1, totalSteps: 1, warmupFraction: 0.15 }), 1);
  const three = [0, 1, 2].map((s) => oneCycleLr(s, { peak: 1, totalSteps: 3, warmupFraction: 0.15 }));
  assert.is(three[1], 1);
  assert.ok(three[0] < 1 && three[2] < 1e-4);
  assert.is(oneCycleLr(0, { peak: 2, totalSteps: 10, warmupFraction: 0 }), 2);
});

test('oneCycleSchedule is oneCycleLr bound to one run', () => {
  const o = { peak: 3e-3, totalSteps: 18, warmupFraction: 0.15 };
  const lrAt = oneCycleSchedule(o);
  for (let s = 0; s < 20; s++) assert.is(lrAt(s), oneCycleLr(s, o));
});

test.run();
