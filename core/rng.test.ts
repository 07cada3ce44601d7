import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng } from './rng.ts';

test('same seed gives the same sequence, another seed another one', () => {
  const a = createRng(7), b = createRng(7), c = createRng(8);
  const sa = Array.from({ length: 5 }, () => a.next());
  const sb = Array.from({ length: 5 }, () => b.next());
  const sc = Array.from({ length: 5 }, () => c.next());
  assert.equal(sa, sb);
  assert.not.equal(sa, sc);
});

test('poisson draws have the right mean for small and large rates', () => {
  const r = createRng(3);
  for (const lambda of [0.05, 2, 50]) {
    let s = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) s += r.poisson(lambda);
    const mean = s / n;
    assert.ok(Math.abs(mean - lambda) < 4 * Math.sqrt(lambda / n) + 1e-3, `mean ${mean} for ${lambda}`);
  }
});

test('normal draws have mean 0 and variance 1', () => {
  const r = createRng(11);
  let s = 0, s2 = 0;
  const n = 40000;
  for (let i = 0; i < n; i++) { const x = r.normal(); s += x; s2 += x * x; }
  assert.ok(Math.abs(s / n) < 0.03);
  assert.ok(Math.abs(s2 / n - 1) < 0.05);
});

test.run();
