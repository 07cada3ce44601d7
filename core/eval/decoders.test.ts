import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Matrix, solve } from 'ml-matrix';
import { centredCoordinates, decodeBinary, decodeRidge, gram, logisticFitPredict, pooledR2, ridgeFitPredict } from './decoders.ts';
import { createRng } from '../rng.ts';

function data(n: number, p: number, seed: number) {
  const r = createRng(seed);
  const x = new Float64Array(n * p).map(() => r.normal() + 0.5);
  return { x, r };
}
const rowsOf = (x: Float64Array, p: number, rows: number[]) => new Matrix(rows.map((i) => Array.from(x.subarray(i * p, i * p + p))));

/** Primal ridge with an unpenalised intercept: centre on the training means, solve the normal equations. */
function primalRidge(x: Float64Array, p: number, y: number[], train: number[], test: number[], lambda: number) {
  const X = rowsOf(x, p, train);
  const mu = X.mean('column');
  const Xc = X.clone().subRowVector(mu);
  const ym = train.reduce((s, i) => s + y[i], 0) / train.length;
  const yc = Matrix.columnVector(train.map((i) => y[i] - ym));
  const w = solve(Xc.transpose().mmul(Xc).add(Matrix.eye(p).mul(lambda)), Xc.transpose().mmul(yc));
  return rowsOf(x, p, test).subRowVector(mu).mmul(w).add(ym).to1DArray();
}

test('ridge through centred Gram coordinates equals primal ridge, with p < n and p > n', () => {
  for (const [n, p] of [[30, 4], [20, 60]]) {
    const { x, r } = data(n, p, n + p);
    const y = Array.from({ length: n }, () => r.normal());
    const train = Array.from({ length: n - 5 }, (_, i) => i);
    const test = [n - 5, n - 4, n - 3, n - 2, n - 1];
    const g = gram(x, n, p);
    const { z } = centredCoordinates(g, n, train, [...train, ...test]);
    const trainZ = z.subMatrix(0, train.length - 1, 0, z.columns - 1);
    const testZ = z.subMatrix(train.length, z.rows - 1, 0, z.columns - 1);
    const viaZ = ridgeFitPredict(trainZ, Matrix.columnVector(train.map((i) => y[i])), testZ, 0.7).to1DArray();
    const direct = primalRidge(x, p, y, train, test, 0.7);
    viaZ.forEach((v, k) => assert.ok(Math.abs(v - direct[k]) < 1e-8, `${v} vs ${direct[k]}`));
  }
});

test('logistic regression through Gram coordinates meets the primal optimality condition', () => {
  const n = 24, p = 40, lambda = 0.5;
  const { x, r } = data(n, p, 5);
  const y01 = Array.from({ length: n }, () => (r.next() < 0.5 ? 1 : 0));
  const train = Array.from({ length: n }, (_, i) => i);
  const g = gram(x, n, p);
  const { z } = centredCoordinates(g, n, train, train);
  const prob = logisticFitPredict(z, y01, z, lambda);
  // Recover primal weights w = Xc^T beta from z-space, then check grad = Xc^T (p - y) + lambda w = 0.
  // Equivalently, in z-space: Z^T (p - y) + lambda theta = 0 and sum(p - y) = 0 (intercept).
  const resid = prob.map((pi, i) => pi - y01[i]);
  assert.ok(Math.abs(resid.reduce((s, v) => s + v, 0)) < 1e-6, 'intercept condition');
  // Feature-space check: the fitted log-odds are linear in the centred features with weights w
  // satisfying lambda w = -Xc^T resid.
  const X = rowsOf(x, p, train);
  const Xc = X.clone().subRowVector(X.mean('column'));
  const w = Xc.transpose().mmul(Matrix.columnVector(Array.from(resid))).mul(-1 / lambda);
  const logit = Xc.mmul(w).to1DArray();
  const fitted = Array.from(prob).map((q) => Math.log(q / (1 - q)));
  const offset = fitted[0] - logit[0];
  fitted.forEach((f, i) => assert.ok(Math.abs(f - logit[i] - offset) < 1e-5, `row ${i}`));
});

test('decodeRidge recovers a linear multi-output signal and scores noise near or below zero', () => {
  const n = 80, p = 30, q = 3;
  const { x, r } = data(n, p, 9);
  const wTrue = Array.from({ length: p * q }, () => r.normal());
  const y = new Float64Array(n * q);
  const noise = new Float64Array(n * q);
  for (let i = 0; i < n; i++) for (let k = 0; k < q; k++) {
    let s = 0;
    for (let j = 0; j < p; j++) s += x[i * p + j] * wTrue[j * q + k];
    y[i * q + k] = s + 0.1 * r.normal();
    noise[i * q + k] = r.normal();
  }
  const train = Array.from({ length: 60 }, (_, i) => i);
  const test = Array.from({ length: 20 }, (_, i) => 60 + i);
  const good = decodeRidge({ x, nRows: n, nFeatures: p, train, test, rng: createRng(1) }, y, q);
  assert.ok(good.r2 > 0.95, `r2 ${good.r2}`);
  assert.ok(good.lambda <= 1, `lambda ${good.lambda}`);
  const bad = decodeRidge({ x, nRows: n, nFeatures: p, train, test, rng: createRng(1) }, noise, q);
  assert.ok(bad.r2 < 0.2, `noise r2 ${bad.r2}`);
  assert.ok(bad.lambda >= 10, `noise should pick strong regularisation, got ${bad.lambda}`);
});

test('decodeBinary separates a linearly decodable choice and reports chance', () => {
  const n = 160, p = 20;
  const { x, r } = data(n, p, 13);
  const labels = Array.from({ length: n }, (_, i) => (x[i * p] + x[i * p + 1] + 0.2 * r.normal() > 1 ? 1 : -1));
  const train = Array.from({ length: 120 }, (_, i) => i);
  const test = Array.from({ length: 40 }, (_, i) => 120 + i);
  const res = decodeBinary({ x, nRows: n, nFeatures: p, train, test, rng: createRng(2) }, labels);
  assert.ok(res.accuracy >= 0.85 && res.accuracy > res.chance + 0.2, `accuracy ${res.accuracy}`);
  const majority = train.filter((i) => labels[i] === 1).length * 2 >= train.length ? 1 : -1;
  assert.is(res.chance, test.filter((i) => labels[i] === majority).length / test.length);
  assert.throws(() => decodeBinary({ x, nRows: n, nFeatures: p, train, test, rng: createRng(2) }, labels.map(() => 1)), /two classes/);
});

test('pooled R2 by hand', () => {
  assert.is(pooledR2([1, 2, 3], [1, 2, 3]), 1);
  assert.is(pooledR2([1, 2, 3], [2, 2, 2]), 0);
  assert.ok(Math.abs(pooledR2([0, 2], [1, 1]) - 0) < 1e-12);
});

test.run();
