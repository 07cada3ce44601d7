// BatchMatMul (every tf.matMul, 2-D or batched, forward and backward) through the native GEMM,
// in place on the backend's memory: tfjs-wasm runs transposed and batched products at ~1.5
// GFLOP/s (docs/performance.md §2.1), 71 % of an NDT1 step; the native GEMM runs them all at BLAS speed.
import * as tf from '../tf.ts';
import type { BackendAccess, TensorInfo } from './access.ts';
import type { NativeKernels } from './native.ts';

/** How one BatchMatMul call maps onto gemm(): batch count, per-operand batch strides, sizes. */
export interface GemmPlan {
  outShape: number[];
  batch: number;
  m: number;
  n: number;
  k: number;
  aStride: number;
  bStride: number;
}

const size = (shape: number[]) => shape.reduce((p, d) => p * d, 1);

/**
 * Plans a product of a [..., M, K] and b [..., K, N] (before transposes). Returns undefined for
 * batch broadcasts other than "same batch" or "one side has a single matrix", which the
 * built-in kernel keeps (as it keeps every malformed call, so its error messages stay).
 */
export function planBatchMatMul(aShape: number[], bShape: number[], transposeA: boolean, transposeB: boolean): GemmPlan | undefined {
  const ar = aShape.length, br = bShape.length;
  if (ar < 2 || br < 2) return undefined;
  const k = transposeA ? aShape[ar - 2] : aShape[ar - 1];
  const kb = transposeB ? bShape[br - 1] : bShape[br - 2];
  if (k !== kb) return undefined;
  const m = transposeA ? aShape[ar - 1] : aShape[ar - 2];
  const n = transposeB ? bShape[br - 2] : bShape[br - 1];
  const outerA = aShape.slice(0, -2), outerB = bShape.slice(0, -2);
  let outer: number[];
  try {
    outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return undefined;
  }
  const batch = size(outer);
  const sameAs = (o: number[]) => size(o) === batch && o.every((d, i) => d === outer[outer.length - o.length + i]);
  let aStride: number, bStride: number;
  if (sameAs(outerA) && sameAs(outerB)) {
    aStride = m * k;
    bStride = k * n;
  } else if (size(outerA) === 1 && sameAs(outerB)) {
    aStride = 0;
    bStride = k * n;
  } else if (size(outerB) === 1 && sameAs(outerA)) {
    aStride = m * k;
    bStride = 0;
  } else {
    return undefined;
  }
  return { outShape: [...outer, m, n], batch, m, n, k, aStride, bStride };
}

interface Args {
  inputs: { a: TensorInfo; b: TensorInfo };
  backend: unknown;
  attrs: { transposeA: boolean; transposeB: boolean };
}

export function batchMatMulKernel(native: NativeKernels, builtin: tf.KernelFunc, access: (backend: unknown) => BackendAccess): tf.KernelFunc {
  return ((args: Args) => {
    const { a, b } = args.inputs;
    const { transposeA, transposeB } = args.attrs;
    const plan = a.dtype === 'float32' && b.dtype === 'float32' ? planBatchMatMul(a.shape, b.shape, transposeA, transposeB) : undefined;
    const out = plan && access(args.backend).run([a, b], plan.outShape, ([am, bm], om) => {
      native.gemm(am.buf, am.off, plan.aStride, bm.buf, bm.off, plan.bStride, om.buf, om.off, plan.batch, plan.m, plan.n, plan.k, transposeA, transposeB);
    });
    return out ?? builtin(args as unknown as Parameters<tf.KernelFunc>[0]);
  }) as unknown as tf.KernelFunc;
}
