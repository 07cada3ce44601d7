import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';
import { initBackend } from './backend.ts';
import * as tf from './tf.ts';

const installed = (pkg: string) => {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
};
const nodeBinding = installed('@tensorflow/tfjs-node-gpu') || installed('@tensorflow/tfjs-node');
const savedEnv = process.env.MTM_TF_BACKEND;
delete process.env.MTM_TF_BACKEND;

test('picks the best backend that starts, verified, and says why the better ones did not', async () => {
  const logs: string[] = [];
  const info = await initBackend({ log: (m) => logs.push(m) });
  if (nodeBinding) {
    // A native binding outranks wasm wherever one is installed.
    assert.is(info.name, 'tensorflow');
    assert.is(tf.getBackend(), 'tensorflow');
    return;
  }
  // Neither tfjs-node binding is installable here, so wasm is the best that can start.
  assert.is(info.name, 'wasm');
  assert.is(tf.getBackend(), 'wasm');
  assert.is(info.package, '@tensorflow/tfjs-backend-wasm');
  assert.match(info.reason, /tfjs-node-gpu is not installed/);
  assert.match(info.reason, /tfjs-node is not installed/);
  assert.match(info.reason, /SIMD on/);
  assert.ok(logs.some((l) => l.includes('tensor backend: wasm')));
  // A second call with the same choice returns the same answer without re-selecting.
  assert.equal(await initBackend(), info);
  const y = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])));
  assert.equal(Array.from(y.dataSync()), [11]);
  y.dispose();
});

test('force picks one backend and fails clearly when it cannot load', async () => {
  const cpu = await initBackend({ force: 'cpu' });
  assert.is(cpu.name, 'cpu');
  assert.is(tf.getBackend(), 'cpu');
  assert.match(cpu.reason, /forced cpu/);
  const forced = await initBackend({ force: 'tensorflow' }).then(
    () => 'started',
    (e: Error) => e.message,
  );
  if (nodeBinding) assert.is(forced, 'started');
  else assert.is(forced, "cannot use tensor backend 'tensorflow': @tensorflow/tfjs-node is not installed");
  if (!nodeBinding) assert.is(tf.getBackend(), 'cpu', 'a failed force leaves the running backend alone');
  const wasm = await initBackend({ force: 'wasm' });
  assert.is(wasm.name, 'wasm');
  assert.is(tf.getBackend(), 'wasm');
});

test('MTM_TF_BACKEND chooses when no force is given, and a bad value is refused', async () => {
  process.env.MTM_TF_BACKEND = 'cpu';
  try {
    assert.is((await initBackend()).name, 'cpu');
    process.env.MTM_TF_BACKEND = 'gpu';
    await initBackend().then(
      () => assert.unreachable('gpu is not a choice'),
      (e: Error) => assert.match(e.message, /unknown tensor backend 'gpu' \(from MTM_TF_BACKEND\)/),
    );
  } finally {
    if (savedEnv === undefined) delete process.env.MTM_TF_BACKEND;
    else process.env.MTM_TF_BACKEND = savedEnv;
  }
});

test.run();
