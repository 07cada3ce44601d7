import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { initBackend } from './backend.ts';
import { poissonNll } from './loss.ts';
import * as tf from './tf.ts';

await initBackend({ force: 'wasm' });

test('poisson NLL: exp(x) - y x summed over scored entries, divided by their count', () => {
  const x = [0.5, -1, 2, 0.1];
  const y = [1, 0, 3, 2];
  const m = [1, 0, 1, 1];
  let want = 0;
  for (let i = 0; i < 4; i++) if (m[i]) want += Math.exp(x[i]) - y[i] * x[i];
  want /= 3;
  const got = poissonNll(tf.tensor1d(x), tf.tensor1d(y), tf.tensor1d(m)).dataSync()[0];
  assert.ok(Math.abs(got - want) < 1e-5, `${got} vs ${want}`);
  // Int and bool-like masks and counts are accepted as they come.
  const got2 = poissonNll(tf.tensor1d(x), tf.tensor1d(y, 'int32'), tf.tensor1d(m, 'int32')).dataSync()[0];
  assert.ok(Math.abs(got2 - want) < 1e-5);
});

test('poisson NLL: nothing scored gives 0; gradient is (exp(x) - y) / n on scored entries only', () => {
  assert.is(poissonNll(tf.tensor1d([1, 2]), tf.tensor1d([1, 1]), tf.tensor1d([0, 0])).dataSync()[0], 0);
  const x = tf.tensor1d([0.3, -0.2, 1]);
  const y = tf.tensor1d([2, 1, 0]);
  const m = tf.tensor1d([1, 1, 0]);
  const g = tf.grad((v: tf.Tensor) => poissonNll(v, y, m))(x).dataSync();
  assert.ok(Math.abs(g[0] - (Math.exp(0.3) - 2) / 2) < 1e-5);
  assert.ok(Math.abs(g[1] - (Math.exp(-0.2) - 1) / 2) < 1e-5);
  assert.is(g[2], 0);
});

test('poisson NLL is minimised at the true log-rate', () => {
  // Mean counts of 2.5: the loss at log(2.5) is below the loss at nearby values.
  const y = tf.tensor1d([2, 3, 2, 3]);
  const m = tf.ones([4]);
  const at = (r: number) => poissonNll(tf.fill([4], Math.log(r)), y, m).dataSync()[0];
  assert.ok(at(2.5) < at(2.3) && at(2.5) < at(2.7));
});

test.run();
