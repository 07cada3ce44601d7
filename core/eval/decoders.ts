// Behaviour decoders (docs/method.md §5.4): L2 logistic regression for choice, ridge regression for
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

/** Solves the symmetric positive-definite system A x = b in place (Cholesky); A is q x q row-major. */
function choleskySolve(a: Float64Array, b: Float64Array, q: number): Float64Array {
  const l = new Float64Array(q * q);
  for (let j = 0; j < q; j++) {
    let d = a[j * q + j];
    for (let k = 0; k < j; k++) d -= l[j * q + k] ** 2;
    const ljj = Math.sqrt(Math.max(d, 1e-300));
    l[j * q + j] = ljj;
    for (let i = j + 1; i < q; i++) {
      let v = a[i * q + j];
      for (let k = 0; k < j; k++) v -= l[i * q + k] * l[j * q + k];
      l[i * q + j] = v / ljj;
    }
  }
  const y = new Float64Array(q);
  for (let i = 0; i < q; i++) {
    let v = b[i];
    for (let k = 0; k < i; k++) v -= l[i * q + k] * y[k];
    y[i] = v / l[i * q + i];
  }
  const x = new Float64Array(q);
  for (let i = q - 1; i >= 0; i--) {
    let v = y[i];
    for (let k = i + 1; k < q; k++) v -= l[k * q + i] * x[k];
    x[i] = v / l[i * q + i];
  }
  return x;
}

/**
 * L2 logistic regression by damped Newton steps; labels 0/1; returns P(label = 1) for `testZ`.
 * Flat typed arrays throughout: this runs for every fold and penalty of the cross-validation.
 */
export function logisticFitPredict(trainZ: Matrix, y01: number[], testZ: Matrix, lambda: number, maxIter = 50): Float64Array {
  return logisticPredict(logisticFit(trainZ, y01, lambda, maxIter), testZ);
}

/** Weights then intercept. `init` warm-starts Newton (e.g. from the next-larger penalty's fit). */
export function logisticFit(trainZ: Matrix, y01: number[], lambda: number, maxIter = 50, init?: Float64Array): Float64Array {
  const n = trainZ.rows;
  const r = trainZ.columns;
  const q = r + 1; // weights, then the intercept (not penalised)
  const x = new Float64Array(n * q);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < r; j++) x[i * q + j] = trainZ.get(i, j);
    x[i * q + r] = 1;
  }
  const logits = (theta: Float64Array, f: Float64Array) => {
    for (let i = 0; i < n; i++) {
      let v = 0;
      for (let j = 0; j < q; j++) v += x[i * q + j] * theta[j];
      f[i] = v;
    }
  };
  // Penalised negative log-likelihood, for step damping.
  const objective = (theta: Float64Array, f: Float64Array) => {
    let o = 0;
    for (let i = 0; i < n; i++) o += Math.max(f[i], 0) - f[i] * y01[i] + Math.log1p(Math.exp(-Math.abs(f[i])));
    for (let j = 0; j < r; j++) o += 0.5 * lambda * theta[j] ** 2;
    return o;
  };
  let theta = init && init.length === q ? Float64Array.from(init) : new Float64Array(q);
  const f = new Float64Array(n);
  logits(theta, f);
  let obj = objective(theta, f);
  const grad = new Float64Array(q);
  const hess = new Float64Array(q * q);
  for (let it = 0; it < maxIter; it++) {
    grad.fill(0);
    hess.fill(0);
    for (let i = 0; i < n; i++) {
      const p = 1 / (1 + Math.exp(-f[i]));
      const w = Math.max(p * (1 - p), 1e-12);
      const res = p - y01[i];
      const row = i * q;
      for (let j = 0; j < q; j++) {
        const xj = x[row + j];
        grad[j] += res * xj;
        const wx = w * xj;
        for (let k = 0; k <= j; k++) hess[j * q + k] += wx * x[row + k];
      }
    }
    for (let j = 0; j < q; j++) {
      for (let k = 0; k < j; k++) hess[k * q + j] = hess[j * q + k];
      if (j < r) {
        grad[j] += lambda * theta[j];
        hess[j * q + j] += lambda;
      } else hess[j * q + j] += 1e-9;
    }
    const step = choleskySolve(hess, grad, q);
    // Halve the step until the objective does not increase (Newton can overshoot when nearly separable).
    let scale = 1;
    let next = theta;
    const fNext = new Float64Array(n);
    let objNext = Infinity;
    for (let tries = 0; tries < 30; tries++) {
      next = theta.map((t, j) => t - scale * step[j]);
      logits(next, fNext);
      objNext = objective(next, fNext);
      if (objNext <= obj + 1e-12) break;
      scale /= 2;
    }
    const moved = Math.max(...step.map((v) => Math.abs(v * scale)));
    theta = next;
    f.set(fNext);
    const improved = obj - objNext;
    obj = objNext;
    if (moved < 1e-8 || improved < 1e-10 * Math.max(1, Math.abs(obj))) break;
  }
  return theta;
}

export function logisticPredict(theta: Float64Array, testZ: Matrix): Float64Array {
  const r = theta.length - 1;
  const out = new Float64Array(testZ.rows);
  for (let i = 0; i < testZ.rows; i++) {
    let v = theta[r];
    for (let j = 0; j < r; j++) v += testZ.get(i, j) * theta[j];
    out[i] = 1 / (1 + Math.exp(-v));
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
  // Largest penalty first: each fit can then warm-start from the previous, smoother one.
  const lambdas = [...(inp.lambdas ?? DEFAULT_LAMBDAS)].sort((a, b) => b - a);
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
  let warm: { z: Matrix; theta: Float64Array } | undefined;
  const lambda = chooseLambda(inp, g, (fit, held, l, { trainZ, heldZ }) => {
    const theta = logisticFit(trainZ, fit.map(to01), l, 50, warm?.z === trainZ ? warm.theta : undefined);
    warm = { z: trainZ, theta };
    return acc(held, logisticPredict(theta, heldZ));
  });
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
