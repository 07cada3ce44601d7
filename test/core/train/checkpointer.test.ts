import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../../../core/testing.ts';
import { initBackend } from '../../../core/tensor/backend.ts';
import { ndt1Architecture } from '../../../plugins/ndt1/architecture.ts';
import { AdamW } from '../../../core/train/adamw.ts';
import { Checkpointer, fingerprintDiffs, stableJson } from '../../../core/train/checkpointer.ts';

await initBackend();

test('stableJson: key order at any depth does not matter, values and array order do', () => {
  assert.is(stableJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } }), stableJson({ a: { c: null, d: [1, { x: 1, y: 2 }] }, b: 1 }));
  assert.is.not(stableJson([1, 2]), stableJson([2, 1]));
  assert.is(stableJson(undefined), undefined);
});

test('fingerprintDiffs: each differing field of the new fingerprint, there and now; fields it lacks are not compared', () => {
  const old = { lr: 0.003, config: { a: 1, b: 2 }, extra: 'old' };
  assert.equal(fingerprintDiffs(old, { config: { b: 2, a: 1 }, lr: 0.003 }), []);
  assert.equal(fingerprintDiffs(old, { lr: 0.01, config: { a: 1, b: 3 }, trainScope: 'sessions' }), [
    'lr 0.003 there, 0.01 now',
    'config {"a":1,"b":2} there, {"a":1,"b":3} now',
    'trainScope undefined there, "sessions" now',
  ]);
});

test('refusal names the folders; saveBest and saveLast write best/ and last/, load reads last/ back', async () => {
  const dir = tempDir();
  const c = new Checkpointer(dir);
  assert.equal([c.lastDir, c.bestDir], [join(dir, 'last'), join(dir, 'best')]);
  assert.is(c.refusal({ seed: 1 }, { seed: 1 }), undefined);
  assert.is(c.refusal({ seed: 1 }, { seed: 2 }), `${c.lastDir} holds a checkpoint of a different training (seed 1 there, 2 now): run into a new --out folder, or delete ${dir} to start over`);
  assert.is(await c.load(), undefined, 'nothing to resume from yet');
  const model = ndt1Architecture.build({ dModel: 8, layers: 1, heads: 2, mlpDim: 8, maxBins: 4 }, { sessions: [{ sessionId: 'a', nNeurons: 3, nBins: 4 }], seed: 1 });
  const opt = new AdamW({ weightDecay: 0.01 });
  const metadata = { sessions: model.sessions() };
  await c.saveBest(model, metadata);
  assert.ok(existsSync(join(c.bestDir, 'weights.bin')));
  assert.not.ok(existsSync(c.lastDir), 'best/ alone');
  await c.saveLast(model, metadata, opt, { step: 3, fingerprint: { seed: 1 } });
  const back = await c.load<{ step: number; fingerprint: Record<string, unknown> }>();
  assert.equal(back?.state, { step: 3, fingerprint: { seed: 1 } });
  back?.dispose();
  model.dispose();
  opt.dispose();
});

test.run();
