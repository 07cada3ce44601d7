import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ArchitectureContribution } from '../../../core/architecture.ts';
import { tempDir } from '../../../core/testing.ts';
import { initBackend } from '../../../core/tensor/backend.ts';
import * as tf from '../../../core/tensor/tf.ts';
import { ndt1Architecture } from '../../../plugins/ndt1/architecture.ts';
import { AdamW } from '../../../core/train/adamw.ts';
import { loadTrainedModel, loadTrainingCheckpoint, recoverDir, replaceDirAtomic, saveModelFolder, saveTrainingCheckpoint } from '../../../core/train/checkpoint.ts';

await initBackend();

const archs = new Map<string, ArchitectureContribution>([['ndt1', ndt1Architecture as ArchitectureContribution]]);
const sessions = [{ sessionId: 'a', nNeurons: 5, nBins: 6 }, { sessionId: 'b', nNeurons: 3, nBins: 6 }];
const build = (seed: number) => ndt1Architecture.build({ dModel: 8, layers: 1, heads: 2, mlpDim: 8, maxBins: 6 }, { sessions, seed });
const values = (m: tf.NamedTensorMap) => Object.fromEntries(Object.entries(m).map(([k, t]) => [k, Array.from(t.dataSync())]));

test('a folder is replaced whole; a crash between the renames is rolled back to the old folder', async () => {
  const dir = join(tempDir(), 'last');
  await replaceDirAtomic(dir, async (tmp) => writeFileSync(join(tmp, 'x'), '1'));
  await replaceDirAtomic(dir, async (tmp) => writeFileSync(join(tmp, 'y'), '2'));
  assert.equal(readdirSync(dir), ['y'], 'the old content is gone, not merged');
  assert.equal(readdirSync(join(dir, '..')), ['last'], 'no .partial or .old left');
  // Killed after moving the old folder aside, before the new one was renamed in.
  const { renameSync } = await import('node:fs');
  renameSync(dir, dir + '.old');
  mkdirSync(dir + '.partial');
  writeFileSync(join(dir + '.partial', 'half'), '');
  await recoverDir(dir);
  assert.equal(readdirSync(dir), ['y']);
  assert.not.ok(existsSync(dir + '.partial'));
  // A failing writer leaves the previous folder in place.
  try {
    await replaceDirAtomic(dir, async () => {
      throw new Error('disk full');
    });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /disk full/);
  }
  assert.equal(readdirSync(dir), ['y']);
});

test('training checkpoint round trip: weights, optimiser moments and loop state', async () => {
  const dir = join(tempDir(), 'ckpt');
  const model = build(3);
  const opt = new AdamW({ weightDecay: 0.05 });
  const vars = model.trainableVariables();
  const grads = tf.tidy(() => vars.map((v) => tf.onesLike(v)));
  const names = new Map(Object.entries(model.weights()).map(([k, v]) => [v, k]));
  opt.apply(vars.map((v, i) => ({ name: names.get(v as tf.Variable)!, variable: v, grad: grads[i] })), 0.01);
  tf.dispose(grads);
  const state = { step: 7, epoch: 1, history: [{ trainLoss: 0.5 }], best: null };
  await saveTrainingCheckpoint(dir, { model, metadata: { sessions: model.sessions(), label: 'mtm' }, optimizer: opt, state });
  assert.equal(readdirSync(dir).sort(), ['model.json', 'optimizer.bin', 'training.json', 'weights.bin']);
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  assert.is(json.modelTopology.architecture, 'ndt1');
  assert.is(json.userDefinedMetadata.label, 'mtm');

  const c = (await loadTrainingCheckpoint<typeof state>(dir))!;
  assert.equal(c.state, state);
  assert.is(c.optimizer.step, 1);
  assert.equal(values(c.optimizer.moments), values(opt.state().moments));
  assert.is(Object.keys(c.optimizer.moments).length, 2 * vars.length);
  assert.equal(values(c.saved.weights), values(model.weights()));
  c.dispose();
  assert.is(await loadTrainingCheckpoint(join(tempDir(), 'none')), undefined, 'no checkpoint: undefined');
  writeFileSync(join(dir, 'training.json'), '{oops');
  try {
    await loadTrainingCheckpoint(dir);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /cannot read checkpoint .*ckpt\/training\.json/);
  }
  model.dispose();
  opt.dispose();
});

test('a saved model folder loads back into a model that predicts the same; unknown architectures are named', async () => {
  const dir = join(tempDir(), 'best');
  const model = build(5);
  await saveModelFolder(dir, model, { sessions: model.sessions() });
  const before = tf.memory().numTensors;
  const { model: back, metadata } = await loadTrainedModel(dir, archs);
  assert.equal((metadata.sessions as { sessionId: string }[]).map((s) => s.sessionId), ['a', 'b']);
  const input = tf.tidy(() => tf.randomUniform([2, 6, 3], 0, 3, 'float32', 1)) as tf.Tensor3D;
  const x = { sessionId: 'b', input, mode: 'neuron' as const, causal: false };
  const y1 = model.forward(x, { training: false });
  const y2 = back.forward(x, { training: false });
  assert.equal(Array.from(y2.dataSync()), Array.from(y1.dataSync()));
  tf.dispose([input, y1, y2]);
  back.dispose();
  assert.is(tf.memory().numTensors, before, 'loading leaves nothing behind once the model is disposed');
  try {
    await loadTrainedModel(dir, new Map());
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /architecture 'ndt1' is not registered \(known: \(none\)\)/);
  }
  model.dispose();
});

test.run();
