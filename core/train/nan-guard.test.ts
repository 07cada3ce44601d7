import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { MaskedBatch } from '../masking/types.ts';
import { NanGuard, type NanPolicy } from './nan-guard.ts';

const batch = { epoch: 1, batchIndex: 2, batchesInEpoch: 6, sessionId: 's1', mode: 'neuron' } as MaskedBatch;

function guard(policy: NanPolicy) {
  const warnings: string[] = [];
  const g = new NanGuard({ policy, lastDir: '/run/last', fail: (m) => new Error(`node: ${m}`), warn: (_f, m) => warnings.push(m) });
  return { g, warnings };
}

test('a good step passes under either policy', () => {
  for (const p of ['stop', 'skip'] as const) assert.ok(guard(p).g.stepOk({ ok: true, loss: 1, gradNorm: 2, scored: 3 }, batch, 8, 1));
});

test('stop: names what was non-finite, where, and the last good checkpoint', () => {
  const { g } = guard('stop');
  assert.throws(() => g.stepOk({ ok: false, loss: NaN, gradNorm: 1, scored: 3, badWeights: [] }, batch, 8, 1), (e: Error) =>
    e.message === 'node: loss is NaN at epoch 2, step 9 (batch 3/6, session s1, mode neuron); training stopped, the last good checkpoint is /run/last (epoch 1); try a lower learningRate or clipNorm');
  const weights = ['a', 'b', 'c', 'd', 'e', 'f'];
  assert.throws(() => g.stepOk({ ok: false, loss: 1, gradNorm: Infinity, scored: 3, badWeights: weights }, batch, 0, 0), /gradient norm is Infinity \(non-finite in a, b, c, d, e\) at .* \/run\/last \(none yet\)/);
});

test('skip: the step is reported and skipped, no error', () => {
  const { g, warnings } = guard('skip');
  assert.not.ok(g.stepOk({ ok: false, loss: NaN, gradNorm: NaN, scored: 3, badWeights: [] }, batch, 8, 1));
  assert.equal(warnings, ['loss is NaN at epoch 2, step 9 (batch 3/6, session s1, mode neuron): batch skipped (nanPolicy skip), no weight changed']);
});

test('a non-finite validation loss stops under either policy; none (null) is fine', () => {
  for (const p of ['stop', 'skip'] as const) {
    const { g } = guard(p);
    g.checkValidation(null, 0, 6);
    g.checkValidation(0.5, 0, 6);
    assert.throws(() => g.checkValidation(Infinity, 2, 18), /validation loss is Infinity after epoch 3 \(step 18\); the last good checkpoint is \/run\/last/);
  }
});

test.run();
