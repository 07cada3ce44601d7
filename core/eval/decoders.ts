// Behaviour decoders (SPEC.md §5): L2 logistic regression for choice, ridge regression for
// per-bin targets, regularisation chosen by k-fold cross-validation on the training pool.
//
// Features are flattened (bins x neurons) predictions: thousands of columns for a few hundred
// trials. Both models have an unpenalised intercept and an L2 penalty on the weights, so the
// weights lie in the span of the centred training rows. We therefore map rows to exact
// low-dimensional coordinates through the eigendecomposition of the centred Gram matrix
// (K = U S U^T, z = U^T k / sqrt(s)): dot products are preserved, so solving in z-space gives the
// same fit as in feature space, at O(n^3) instead of O(n^2 p) per solve.
import { EigenvalueDecomposition, Matrix, solve } from 'ml-matrix';
import type { Rng } from '../rng.ts';

/** Gram matrix G[i][j] = x_i . x_j of row-major features (n x p). */
export function gram(x: Float32Array | Float64Array, n: number, p: number): Float64Array {
  const g = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const oi = i * p;
    for (let j = 0; j <= i; j++) {
      const oj = j * p;
      let s = 0;
      for (let k = 0; k < p; k++) s += x[oi + k] * x[oj + k];
      g[i * n + j] = s;
      g[j * n + i] = s;
    }
  }
  return g;
}

/**
 * Coordinates z (rows x r) in which dot products equal those of the features centred on the
 * mean of `train` rows. `g` is the Gram matrix over all rows (n x n).
 */
export function centredCoordinates(g: Float64Array, n: number, train: number[], rows: number[], relTol = 1e-10): { z: Matrix; rank: number } {
  const m = train.length;
  // Centred kernel between any row a and training row b: g_ab - mean_b' g_ab' - mean_a' g_a'b + mean g.
  const rowMean = (a: number) => train.reduce((s, b) => s + g[a * n + b], 0) / m;
  const trainMeans = train.map(rowMean);
  const grand = trainMeans.reduce((s, v) => s + v, 0) / m;
  const kc = (a: number, aMean: number, j: number) => g[a * n + train[j]] - aMean - trainMeans[j] + grand;
  const K = new Matrix(m, m);
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) K.set(i, j, kc(train[i], trainMeans[i], j));
  const evd = new EigenvalueDecomposition(K, { assumeSymmetric: true });
  const vals = evd.realEigenvalues;
  const vecs = evd.eigenvectorMatrix;
  const top = Math.max(...vals);
  const keep = vals.map((v, k) => [v, k] as const).filter(([v]) => v > relTol * top);
  const z = new Matrix(rows.length, keep.length);
  rows.forEach((a, r) => {
    const aMean = rowMean(a);
    const kv = train.map((_, j) => kc(a, aMean, j));
    keep.forEach(([s, k], c) => {
      let dot = 0;
      for (let j = 0; j < m; j++) dot += vecs.get(j, k) * kv[j];
      z.set(r, c, dot / Math.sqrt(s));
    });
  });
  return { z, rank: keep.length };
}

/** Ridge with unpenalised intercept on centred coordinates: returns predictions for `testZ`. */
export function ridgeFitPredict(trainZ: Matrix, y: Matrix, testZ: Matrix, lambda: number): Matrix {
  const r = trainZ.columns;
  const yMean = y.mean('column');
  const yc = y.clone().subRowVector(yMean);
  const a = trainZ.transpose().mmul(trainZ).add(Matrix.eye(r, r).mul(lambda));
  const w = solve(a, trainZ.transpose().mmul(yc), r === 0);
  return testZ.mmul(w).addRowVector(yMean);
}

/** L2 logistic regression by Newton's method; labels 0/1; returns P(label = 1) for `testZ`. */
export function logisticFitPredict(trainZ: Matrix, y01: number[], testZ: Matrix, lambda: number, maxIter = 50): Float64Array {
  const n = trainZ.rows;
  const r = trainZ.columns;
  // Parameters: r weights, then the intercept (not penalised).
  let theta = new Float64Array(r + 1);
  const design = new Matrix(n, r + 1);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < r; j++) design.set(i, j, trainZ.get(i, j));
    design.set(i, r, 1);
  }
  for (let it = 0; it < maxIter; it++) {
    const grad = new Float64Array(r + 1);
    const hess = new Matrix(r + 1, r + 1);
    for (let i = 0; i < n; i++) {
      let f = 0;
      for (let j = 0; j <= r; j++) f += design.get(i, j) * theta[j];
      const p = 1 / (1 + Math.exp(-f));
      const wgt = Math.max(p * (1 - p), 1e-12);
      for (let j = 0; j <= r; j++) {
        const dj = design.get(i, j);
        grad[j] += (p - y01[i]) * dj;
        for (let k = 0; k <= j; k++) hess.set(j, k, hess.get(j, k) + wgt * dj * design.get(i, k));
      }
    }
    for (let j = 0; j <= r; j++) {
      for (let k = 0; k < j; k++) hess.set(k, j, hess.get(j, k));
      if (j < r) {
        grad[j] += lambda * theta[j];
        hess.set(j, j, hess.get(j, j) + lambda);
      } else hess.set(j, j, hess.get(j, j) + 1e-9);
    }
    const step = solve(hess, Matrix.columnVector(Array.from(grad)), true).to1DArray();
    theta = theta.map((t, j) => t - step[j]);
    if (Math.max(...step.map(Math.abs)) < 1e-8) break;
  }
  const out = new Float64Array(testZ.rows);
  for (let i = 0; i < testZ.rows; i++) {
    let f = theta[r];
    for (let j = 0; j < r; j++) f += testZ.get(i, j) * theta[j];
    out[i] = 1 / (1 + Math.exp(-f));
  }
  return out;
}

/** Pooled R^2 over all entries: 1 - SSE / SS around the mean of the truth. */
export function pooledR2(truth: ArrayLike<number>, pred: ArrayLike<number>): number {
  let mean = 0;
  for (let i = 0; i < truth.length; i++) mean += truth[i];
  mean /= truth.length;
  let sse = 0;
  let sst = 0;
  for (let i = 0; i < truth.length; i++) {
    sse += (truth[i] - pred[i]) ** 2;
    sst += (truth[i] - mean) ** 2;
  }
  return sst > 0 ? 1 - sse / sst : NaN;
}

function folds(idx: number[], k: number, rng: Rng): number[][] {
  const shuffled = rng.shuffle([...idx]);
  return Array.from({ length: Math.min(k, shuffled.length) }, (_, f) => shuffled.filter((_, i) => i % k === f));
}

export interface DecodeInput {
  /** Row-major features, one row per trial. */
  x: Float32Array | Float64Array;
  nRows: number;
  nFeatures: number;
  /** Rows to fit on (train + val) and to score on (test). */
  train: number[];
  test: number[];
  lambdas?: number[];
  folds?: number;
  rng: Rng;
  /** Precomputed Gram matrix of x (n x n), when several targets share the features. */
  gram?: Float64Array;
}

export const DEFAULT_LAMBDAS = [1e-3, 1e-2, 1e-1, 1, 10, 100, 1e3, 1e4];

function chooseLambda(inp: DecodeInput, g: Float64Array, score: (trainRows: number[], heldRows: number[], lambda: number, coords: { trainZ: Matrix; heldZ: Matrix }) => number): number {
  const lambdas = inp.lambdas ?? DEFAULT_LAMBDAS;
  const totals = new Float64Array(lambdas.length);
  for (const held of folds(inp.train, inp.folds ?? 5, inp.rng)) {
    const fit = inp.train.filter((i) => !held.includes(i));
    const { z } = centredCoordinates(g, inp.nRows, fit, [...fit, ...held]);
    const trainZ = z.subMatrix(0, fit.length - 1, 0, z.columns - 1);
    const heldZ = z.subMatrix(fit.length, z.rows - 1, 0, z.columns - 1);
    lambdas.forEach((l, k) => (totals[k] += score(fit, held, l, { trainZ, heldZ })));
  }
  let best = 0;
  for (let k = 1; k < lambdas.length; k++) if (totals[k] > totals[best]) best = k;
  return lambdas[best];
}

/** Ridge regression of targets y (rows x q, row-major) with CV-chosen lambda; R^2 pooled over test rows x q. */
export function decodeRidge(inp: DecodeInput, y: Float32Array | Float64Array, q: number): { lambda: number; r2: number; predicted: Float64Array } {
  const g = inp.gram ?? gram(inp.x, inp.nRows, inp.nFeatures);
  const rowsOf = (rows: number[]) => new Matrix(rows.map((i) => Array.from(y.subarray(i * q, i * q + q))));
  const lambda = chooseLambda(inp, g, (fit, held, l, { trainZ, heldZ }) => {
    const pred = ridgeFitPredict(trainZ, rowsOf(fit), heldZ, l);
    return pooledR2(rowsOf(held).to1DArray(), pred.to1DArray());
  });
  const { z } = centredCoordinates(g, inp.nRows, inp.train, [...inp.train, ...inp.test]);
  const trainZ = z.subMatrix(0, inp.train.length - 1, 0, z.columns - 1);
  const testZ = z.subMatrix(inp.train.length, z.rows - 1, 0, z.columns - 1);
  const pred = ridgeFitPredict(trainZ, rowsOf(inp.train), testZ, lambda);
  const predicted = Float64Array.from(pred.to1DArray());
  return { lambda, r2: pooledR2(rowsOf(inp.test).to1DArray(), predicted), predicted };
}

/** Binary logistic regression (labels any two values, e.g. choice -1/+1) with CV-chosen lambda. */
export function decodeBinary(inp: DecodeInput, labels: ArrayLike<number>): { lambda: number; accuracy: number; chance: number; predicted: Float64Array } {
  const g = inp.gram ?? gram(inp.x, inp.nRows, inp.nFeatures);
  const classes = [...new Set(inp.train.map((i) => labels[i]))].sort((a, b) => a - b);
  if (classes.length !== 2) throw new Error(`decodeBinary needs two classes in the training rows, found ${classes.length}`);
  const to01 = (i: number) => (labels[i] === classes[1] ? 1 : 0);
  const acc = (rows: number[], p: ArrayLike<number>) => rows.reduce((s, i, k) => s + ((p[k] >= 0.5 ? 1 : 0) === to01(i) ? 1 : 0), 0) / rows.length;
  const lambda = chooseLambda(inp, g, (fit, held, l, { trainZ, heldZ }) => acc(held, logisticFitPredict(trainZ, fit.map(to01), heldZ, l)));
  const { z } = centredCoordinates(g, inp.nRows, inp.train, [...inp.train, ...inp.test]);
  const trainZ = z.subMatrix(0, inp.train.length - 1, 0, z.columns - 1);
  const testZ = z.subMatrix(inp.train.length, z.rows - 1, 0, z.columns - 1);
  const p = logisticFitPredict(trainZ, inp.train.map(to01), testZ, lambda);
  // Chance: always answering the training set's majority class.
  const ones = inp.train.reduce((s, i) => s + to01(i), 0);
  const majority = ones * 2 >= inp.train.length ? 1 : 0;
  const chance = inp.test.reduce((s, i) => s + (to01(i) === majority ? 1 : 0), 0) / inp.test.length;
  return { lambda, accuracy: acc(inp.test, p), chance, predicted: p };
}
