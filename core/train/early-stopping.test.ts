import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EarlyStopping, type StoppingState } from './early-stopping.ts';

const epoch = (n: number, score: number) => ({ epoch: n, score, trainLoss: score, valLoss: null });

function run(patience: number, scores: number[], total = scores.length) {
  const es = new EarlyStopping(patience);
  const s: StoppingState = { best: null, badEpochs: 0 };
  const improved: boolean[] = [];
  let stoppedAfter = 0;
  for (let i = 0; i < scores.length; i++) {
    improved.push(es.observe(s, epoch(i + 1, scores[i])));
    if (es.stopsEarly(s, i + 1, total)) {
      stoppedAfter = i + 1;
      break;
    }
  }
  return { improved, best: s.best?.epoch, stoppedAfter, bad: s.badEpochs };
}

test('the best epoch is the strictly lowest score; a tie keeps the earlier one', () => {
  assert.equal(run(0, [3, 2, 2, 1, 1.5]), { improved: [true, true, false, true, false], best: 4, stoppedAfter: 0, bad: 1 });
});

test('the first epoch is the best even when NaN; a later NaN never is', () => {
  assert.equal(run(0, [NaN, 1]).improved, [true, false], 'NaN < anything is false');
  assert.equal(run(0, [2, NaN, 1]).improved, [true, false, true]);
});

test('patience: stops after that many epochs without improvement, never on the last epoch, 0 never stops', () => {
  assert.equal(run(2, [1, 1, 1, 1, 1]).stoppedAfter, 3);
  assert.equal(run(2, [3, 2, 2.5, 1, 2, 2]).stoppedAfter, 0, 'the second bad run ends on the last epoch: completed');
  assert.equal(run(2, [3, 2, 2.5, 1, 2, 2], 7).stoppedAfter, 6);
  assert.equal(run(0, [1, 1, 1, 1, 1]).stoppedAfter, 0);
  assert.equal(run(1, [1, 2], 3).stoppedAfter, 2);
});

test('resumes counting from a restored state', () => {
  const es = new EarlyStopping(2);
  const s: StoppingState = { best: epoch(1, 1), badEpochs: 1 };
  assert.not.ok(es.observe(s, epoch(3, 1.2)));
  assert.ok(es.stopsEarly(s, 3, 5));
});

test.run();
