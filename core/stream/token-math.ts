// Per-token arithmetic for incremental causal streaming (an architecture's CausalStream): one
// bin is one row, so tfjs's per-op dispatch (tens of µs an op, a few hundred µs a token) would
// cost more than the arithmetic. Plain Float32Array math instead, with the two products that
// scale with the neuron count (the stitcher's sparse input product, the readout) and every other
// matrix-vector product in native kernels when the addon has them (native/src/stream_step.h).
//
// Decisions:
// - Float32 storage, float32 accumulation in index order for products (like a one-row GEMM), so
//   results agree with the tfjs path to float32 rounding; LayerNorm statistics, softmax sums and
//   erf run in double (JS numbers), which only makes them closer to exact.
// - GELU is exact (erf), as the model's: erf from its odd Taylor series near 0 and from the
//   Chebyshev fit of erfc (fractional error < 1.2e-7) beyond, the same split the native kernels use.
import { loadNative, type NativeBuffer } from '../tensor/kernels/native.ts';

/** The kernels this module adds to the addon (absent from an older build). */
interface StreamNative {
  streamMatVec(x: NativeBuffer, xOff: number, w: NativeBuffer, wOff: number, b: NativeBuffer, bOff: number, y: NativeBuffer, yOff: number, inDim: number, outDim: number, hasBias: boolean): void;
  streamSparseRows(
    w: NativeBuffer, wOff: number, idx: NativeBuffer, idxOff: number, v: NativeBuffer, vOff: number, nnz: number,
    b: NativeBuffer, bOff: number, y: NativeBuffer, yOff: number, rows: number, outDim: number, hasBias: boolean,
  ): void;
}

export interface TokenMath {
  /** 'native' (addon kernels) or 'js'. */
  readonly kind: 'native' | 'js';
  /** y = x W + b for x [in], W row-major [in, out]. */
  matVec(x: Float32Array, w: Float32Array, b: Float32Array | null, y: Float32Array, inDim: number, outDim: number): void;
  /** y = b + sum_k v[k] W[idx[k], :] for W [rows, out]: x W with x zero outside idx. */
  sparseRows(w: Float32Array, idx: Int32Array, v: Float32Array, nnz: number, b: Float32Array | null, y: Float32Array, rows: number, outDim: number): void;
}

const EMPTY = new Float32Array(1);

const jsMath: TokenMath = {
  kind: 'js',
  matVec(x, w, b, y, inDim, outDim) {
    if (b) y.set(b.subarray(0, outDim));
    else y.fill(0, 0, outDim);
    for (let i = 0; i < inDim; i++) {
      const xi = x[i];
      if (xi === 0) continue;
      const off = i * outDim;
      for (let o = 0; o < outDim; o++) y[o] += xi * w[off + o];
    }
  },
  sparseRows(w, idx, v, nnz, b, y, rows, outDim) {
    if (b) y.set(b.subarray(0, outDim));
    else y.fill(0, 0, outDim);
    for (let k = 0; k < nnz; k++) {
      const r = idx[k];
      if (!(r >= 0 && r < rows)) throw new Error(`sparseRows: row ${r} is outside the weight's ${rows} rows`);
      const vk = v[k];
      const off = r * outDim;
      for (let o = 0; o < outDim; o++) y[o] += vk * w[off + o];
    }
  },
};

function nativeMath(n: StreamNative): TokenMath {
  return {
    kind: 'native',
    matVec(x, w, b, y, inDim, outDim) {
      n.streamMatVec(x, 0, w, 0, b ?? EMPTY, 0, y, 0, inDim, outDim, b !== null);
    },
    sparseRows(w, idx, v, nnz, b, y, rows, outDim) {
      n.streamSparseRows(w, 0, idx, 0, v, 0, nnz, b ?? EMPTY, 0, y, 0, rows, outDim, b !== null);
    },
  };
}

/** Why tokenMath('auto') runs what it runs. */
export function tokenMathReason(): string {
  const { native, reason } = loadNative();
  if (!native) return `js (${reason})`;
  return typeof (native as unknown as Partial<StreamNative>).streamMatVec === 'function' ? 'native' : 'js (the native build predates its stream kernels; rebuild with node native/build.mjs)';
}

/** The native kernels when the addon has them ('auto'), or the plain JS loops ('js', for tests). */
export function tokenMath(want: 'auto' | 'js' = 'auto'): TokenMath {
  if (want === 'js') return jsMath;
  const { native } = loadNative();
  const n = native as unknown as Partial<StreamNative> | undefined;
  return n && typeof n.streamMatVec === 'function' && typeof n.streamSparseRows === 'function' ? nativeMath(n as StreamNative) : jsMath;
}

/** y = LayerNorm(x) over its first d values, with scale gamma and shift beta. */
export function layerNormRow(x: Float32Array, gamma: Float32Array, beta: Float32Array, eps: number, y: Float32Array, d: number): void {
  let mean = 0;
  for (let i = 0; i < d; i++) mean += x[i];
  mean /= d;
  let v = 0;
  for (let i = 0; i < d; i++) v += (x[i] - mean) ** 2;
  const r = 1 / Math.sqrt(v / d + eps);
  for (let i = 0; i < d; i++) y[i] = (x[i] - mean) * r * gamma[i] + beta[i];
}

/** erf(x) to about float32 precision (see the file comment). */
export function erf(x: number): number {
  const z = Math.abs(x);
  if (z < 0.5) {
    // erf x = 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1)); 8 terms reach 1e-12 below 0.5.
    const x2 = x * x;
    let term = x;
    let sum = x;
    for (let n = 1; n < 9; n++) {
      term *= -x2 / n;
      sum += term / (2 * n + 1);
    }
    return 1.1283791670955126 * sum;
  }
  const t = 1 / (1 + 0.5 * z);
  const poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const erfc = t * Math.exp(poly);
  return x >= 0 ? 1 - erfc : erfc - 1;
}

/** Exact GELU in place over the first n values: 0.5 x (1 + erf(x / sqrt 2)). */
export function geluInPlace(x: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i];
    x[i] = 0.5 * v * (1 + erf(v * Math.SQRT1_2));
  }
}
