import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '../tensor/tf.ts';
import { loadModel, saveModel, registerFileRouter, hasModel, MODEL_JSON, WEIGHTS_BIN } from './model-files.ts';
import { tempDir } from '../testing.ts';

test('save -> load gives identical weights, topology and metadata', async () => {
  const dir = join(tempDir(), 'm');
  const w = { 'a/kernel': tf.randomNormal([3, 4], 0, 1, 'float32', 1), 'b/bias': tf.tensor1d([1, -2, 3], 'int32') };
  await saveModel(dir, { topology: { architecture: 'ndt1', config: { d: 8 } }, metadata: { sessions: ['s1'] }, weights: w });
  assert.ok(await hasModel(dir));
  assert.equal(readdirSync(dir).sort(), [MODEL_JSON, WEIGHTS_BIN], 'no temporary files left');
  const back = await loadModel(dir);
  assert.equal(back.topology, { architecture: 'ndt1', config: { d: 8 } });
  assert.equal(back.metadata, { sessions: ['s1'] });
  assert.equal(Object.keys(back.weights).sort(), ['a/kernel', 'b/bias']);
  assert.equal(Array.from(back.weights['a/kernel'].dataSync()), Array.from(w['a/kernel'].dataSync()));
  assert.is(back.weights['b/bias'].dtype, 'int32');
  const json = JSON.parse(readFileSync(join(dir, MODEL_JSON), 'utf8'));
  assert.equal(json.weightsManifest[0].paths, ['./weights.bin'], 'relative path: a browser can fetch it next to model.json');
  tf.dispose([...Object.values(w), ...Object.values(back.weights)]);
});

test('file:// URLs route to the handler (no tfjs-node needed)', async () => {
  registerFileRouter();
  const dir = join(tempDir(), 'routed');
  const url = pathToFileURL(dir).href;
  const [saver] = tf.io.getSaveHandlers(url);
  assert.ok(saver);
  const { data, specs } = await tf.io.encodeWeights({ x: tf.tensor1d([5, 6]) });
  await saver.save!({ modelTopology: { k: 1 }, weightSpecs: specs, weightData: data });
  const [loader] = tf.io.getLoadHandlers(url);
  const a = await loader.load!();
  assert.equal(a.modelTopology, { k: 1 });
  assert.equal(Array.from(new Float32Array(a.weightData as ArrayBuffer)), [5, 6]);
});

test('missing or truncated files are errors naming the file', async () => {
  const dir = join(tempDir(), 'bad');
  try {
    await loadModel(dir);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /cannot read model file .*bad\/model\.json/);
  }
  await saveModel(dir, { topology: {}, metadata: {}, weights: { x: tf.zeros([10]) } });
  writeFileSync(join(dir, WEIGHTS_BIN), Buffer.alloc(12));
  try {
    await loadModel(dir);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /weights\.bin holds 12 bytes but .*model\.json describes 40: truncated or mismatched/);
  }
  assert.ok(existsSync(join(dir, MODEL_JSON)));
});

test.run();
