import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { MaskedBatch } from '../masking/types.ts';
import { addStep, closeEpoch, epochMeans, labelOf, newLoopState, noteModes, skipStep, trainedBefore } from './loop-state.ts';

const b = (epoch: number, batchIndex: number, mode = 'neuron') => ({ epoch, batchIndex, mode }) as MaskedBatch;

test('train loss is the mean over scored entries, not over steps; NaN with nothing scored', () => {
  const s = newLoopState({}, '');
  addStep(s, b(0, 0), { loss: 1, scored: 10, gradNorm: 2 }, 0.5);
  addStep(s, b(0, 1, 'causal'), { loss: 4, scored: 30, gradNorm: 4 }, 0.25);
  assert.equal(epochMeans(s.acc), { trainLoss: 3.25, gradNormMean: 3 });
  assert.equal([s.step, s.nextBatch, s.acc.seconds, s.acc.modes], [2, 2, 0.75, ['neuron', 'causal']]);
  assert.ok(Number.isNaN(epochMeans(newLoopState({}, '').acc).trainLoss));
});

test('trainedBefore: every batch before the saved position, none after', () => {
  const s = newLoopState({}, '');
  s.epoch = 1;
  s.nextBatch = 2;
  assert.equal([b(0, 5), b(1, 1), b(1, 2), b(2, 0)].map((x) => trainedBefore(s, x)), [true, true, false, false]);
});

test('a skipped step moves the position and is counted, but is in no mean', () => {
  const s = newLoopState({}, '');
  skipStep(s, b(0, 0));
  assert.equal([s.step, s.nextBatch, s.acc.steps, s.skippedSteps], [1, 1, 0, 1]);
  assert.not.ok('skippedSteps' in newLoopState({}, ''), 'absent until a step is skipped (checkpoints unchanged)');
});

test('epoch end: label from the modes unless given, trained modes accumulate sorted, totals reset', () => {
  const s = newLoopState({}, '');
  addStep(s, b(0, 0, 'temporal'), { loss: 1, scored: 1, gradNorm: 1 }, 0);
  noteModes(s);
  assert.is(s.label, 'temporal');
  closeEpoch(s, { epoch: 1, step: 1, trainLoss: 1, valLoss: null, lr: 1, gradNormMean: 1, seconds: 0, best: true });
  assert.equal([s.epoch, s.nextBatch, s.acc.steps, s.history.length], [1, 0, 0, 1]);
  addStep(s, b(1, 0, 'causal'), { loss: 1, scored: 1, gradNorm: 1 }, 0);
  noteModes(s);
  assert.equal(s.trainedModes, ['causal', 'temporal']);
  assert.is(s.label, 'temporal', 'set once');
  assert.is(labelOf(['neuron', 'causal', 'neuron']), 'mtm');
  const given = newLoopState({}, 'mine');
  noteModes(given);
  assert.is(given.label, 'mine');
});

test.run();
