// Loads the native kernel addon (native/build/mtm_kernels.node, built at install by
// native/build.mjs) and says why when it cannot; every caller has a tfjs fallback.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** What the addon runs on, as it reports it. */
export interface NativeInfo {
  /** Matrix products: the addon's own blocked GEMM (default) or OpenBLAS (MTM_BLAS=openblas, opened at run time). */
  gemm: 'openblas' | 'builtin';
  /** OpenBLAS library opened ('' when none). */
  blasPath: string;
  blasConfig: string;
  blasThreads: number;
  /** Why OpenBLAS is not used ('' when it is available). */
  blasError: string;
  /** Instruction set of the built-in GEMM: 'avx512f', 'avx2+fma' or 'baseline' (element-wise kernels: AVX2 when the CPU has it). */
  isa: string;
  /** The widest instruction set the CPU has (isa can be capped below it by MTM_NATIVE_ISA or configure). */
  cpuIsa?: string;
  /** Threads of the addon's pool (the calling thread included). */
  threads: number;
  /** Tasks the pool's worker threads have run so far (0 when nothing ran in parallel). */
  workerTasks: number;
}

/** A buffer the addon reads or writes in place: an ArrayBuffer (e.g. wasm memory) or a typed array. */
export type NativeBuffer = ArrayBufferLike | ArrayBufferView;

export interface NativeKernels {
  /**
   * C[i] = op(A[i]) . op(B[i]) for i < batch, row-major float32, op = transpose when asked.
   * Offsets are in bytes from the start of each buffer (typed arrays add their own), batch strides
   * in elements (0 repeats one operand over the batch). C gets batch x M x N values.
   */
  gemm(
    a: NativeBuffer, aByteOffset: number, aBatchStride: number,
    b: NativeBuffer, bByteOffset: number, bBatchStride: number,
    c: NativeBuffer, cByteOffset: number,
    batch: number, m: number, n: number, k: number, transposeA: boolean, transposeB: boolean,
  ): void;
  /** y = op(x) over n float32 values; op is a UNARY_OPS index, alpha its parameter (Step). */
  unary(op: number, x: NativeBuffer, xByteOffset: number, y: NativeBuffer, yByteOffset: number, n: number, alpha: number): void;
  /**
   * y = a op b with broadcasting; dims = [rank, outShape(rank), aStrides(rank), bStrides(rank)]
   * in elements, innermost strides 0 or 1. op is a BINARY_OPS index.
   */
  binary(op: number, a: NativeBuffer, aByteOffset: number, b: NativeBuffer, bByteOffset: number, y: NativeBuffer, yByteOffset: number, dims: Int32Array): void;
  /** y[o, i] = reduce over r < n of x[o, r, i]; op 0 sum, 1 mean, 2 max (max needs inner 1). */
  reduce(op: number, x: NativeBuffer, xByteOffset: number, y: NativeBuffer, yByteOffset: number, outer: number, n: number, inner: number): void;
  /** Softmax over the last axis of a [rows, cols] block. */
  softmax(x: NativeBuffer, xByteOffset: number, y: NativeBuffer, yByteOffset: number, rows: number, cols: number): void;
  /** y = x with axes permuted; dims = [rank, inShape(rank), perm(rank)]; any 4-byte element type. */
  transpose(x: NativeBuffer, xByteOffset: number, y: NativeBuffer, yByteOffset: number, dims: Int32Array): void;
  /** Strided copy of 4-byte elements; dims = [rank, shape(rank), srcStrides(rank), dstStrides(rank)]. */
  copy(x: NativeBuffer, xByteOffset: number, y: NativeBuffer, yByteOffset: number, dims: Int32Array): void;
  /** n float32 values: scale where the mixed hash of (key, index) >> 8 is >= threshold, else 0 (see dropout.ts). */
  dropoutMask(y: NativeBuffer, yByteOffset: number, n: number, key: number, threshold: number, scale: number): void;
  /** CPU time of the calling thread in ms (precise, unaffected by other processes' load). */
  threadCpuMs(): number;
  /** Softmax backward over the last axis: dx = (dy - sum(dy y)) y. */
  softmaxGrad(y: NativeBuffer, yOff: number, dy: NativeBuffer, dyOff: number, dx: NativeBuffer, dxOff: number, rows: number, cols: number): void;
  /** LayerNorm over rows of width d; also writes each row's mean and 1 / sqrt(var + eps). */
  layerNorm(
    x: NativeBuffer, xOff: number, gamma: NativeBuffer, gOff: number, beta: NativeBuffer, bOff: number,
    y: NativeBuffer, yOff: number, mean: NativeBuffer, mOff: number, rstd: NativeBuffer, rOff: number, rows: number, d: number, eps: number,
  ): void;
  layerNormGrad(
    x: NativeBuffer, xOff: number, dy: NativeBuffer, dyOff: number, gamma: NativeBuffer, gOff: number, mean: NativeBuffer, mOff: number,
    rstd: NativeBuffer, rOff: number, dx: NativeBuffer, dxOff: number, dgamma: NativeBuffer, dgOff: number, dbeta: NativeBuffer, dbOff: number,
    rows: number, d: number,
  ): void;
  /** One AdamW update of n values into p1, m1, v1 (see core/tensor/kernels/fused.ts). */
  adamw(
    p: NativeBuffer, pOff: number, g: NativeBuffer, gOff: number, m: NativeBuffer, mOff: number, v: NativeBuffer, vOff: number,
    p1: NativeBuffer, p1Off: number, m1: NativeBuffer, m1Off: number, v1: NativeBuffer, v1Off: number, n: number,
    gradScale: number, beta1: number, beta2: number, sqrtBc2: number, epsilon: number, decay: number, stepSize: number,
  ): void;
  /** Sum over every listed tensor of x^2 (double accumulation, tensor by tensor in order); sizes in floats. */
  sumSquares(bufs: NativeBuffer[], offs: Float64Array, sizes: Float64Array): number;
  /**
   * AdamW over several weights at once, in place: bufs/offs list p, g, m, v of each weight in
   * turn, sizes one entry per weight; params [gradScale, beta1, beta2, sqrtBc2, epsilon, decay, stepSize].
   */
  adamwInPlace(bufs: NativeBuffer[], offs: Float64Array, sizes: Float64Array, params: Float64Array): void;
  /** loss = mean over scored entries of mask (exp(x) - y x); count = the scored count (core/tensor/kernels/train.ts). */
  poissonNll(x: NativeBuffer, xOff: number, y: NativeBuffer, yOff: number, mask: NativeBuffer, mOff: number, loss: NativeBuffer, lossOff: number, count: NativeBuffer, countOff: number, n: number): void;
  /** dx = scale mask (exp(x) - y). */
  poissonNllGrad(x: NativeBuffer, xOff: number, y: NativeBuffer, yOff: number, mask: NativeBuffer, mOff: number, dx: NativeBuffer, dxOff: number, n: number, scale: number): void;
  /** NDT1's stitcher embedding (core/tensor/kernels/embed.ts): mode 0 forward, 1 backward, operands in native/src/model_kernels.h's order. */
  embed(mode: 0 | 1, bufs: NativeBuffer[], offs: Float64Array, dims: Float64Array): void;
  info(): NativeInfo;
  /**
   * Switch between OpenBLAS (opened on first request; stays built-in when none is installed) and
   * the built-in GEMM, cap the instruction set ('avx512' = the widest, 'avx2', 'baseline'), or
   * resize the thread pool; returns the new info.
   */
  configure(opts: { blas?: boolean; threads?: number; isa?: 'avx512' | 'avx2' | 'baseline' }): NativeInfo;
  /**
   * fp32 FMA throughput of `bits`-wide vectors (512: AVX-512, 256: AVX2) on `threads` pool
   * threads (0: all), best ~4 ms burst over about `ms`; gflops 0 when the CPU lacks the ISA.
   */
  peak(bits: 512 | 256, ms: number, threads?: number): { gflops: number; perThreadGflops?: number; bits: number; threads: number; bursts?: number; seconds?: number };
  /**
   * A whole encoder layer (core/tensor/kernels/layer.ts): mode 0 forward, 1 backward, on the
   * operands bufs[i] at byte offsets offs[i] in native/src/encoder_layer.h's order; dims =
   * [B, S, D, heads, F, nb, dropout, keep, eps, then 3 x (c, s0, s1, s2) dropout generator states].
   */
  encoderLayer(mode: 0 | 1, bufs: NativeBuffer[], offs: Float64Array, dims: Float64Array): void;
  /** y = x times tf.dropout's mask for generator state (c, s0, s1, s2) and keep probability; the mask too. */
  aleaDropout(x: NativeBuffer, xOff: number, y: NativeBuffer, yOff: number, mask: NativeBuffer, maskOff: number, n: number, c: number, s0: number, s1: number, s2: number, keep: number): void;
  /** y = x w (+ b) for x [rows, in], w [in, out]. */
  linear(x: NativeBuffer, xOff: number, w: NativeBuffer, wOff: number, b: NativeBuffer, bOff: number, y: NativeBuffer, yOff: number, rows: number, inDim: number, outDim: number, hasBias: boolean): void;
  /** dx = dy w^T, dw = x^T dy, db = column sums of dy (when hasBias). */
  linearGrad(
    dy: NativeBuffer, dyOff: number, x: NativeBuffer, xOff: number, w: NativeBuffer, wOff: number, dx: NativeBuffer, dxOff: number,
    dw: NativeBuffer, dwOff: number, db: NativeBuffer, dbOff: number, rows: number, inDim: number, outDim: number, hasBias: boolean,
  ): void;
}

/** Operation codes of unary() and binary(), in the addon's order (native/src/elementwise_impl.h). */
export const UNARY_OPS = ['Exp', 'Erf', 'Neg', 'Abs', 'Square', 'Sqrt', 'Rsqrt', 'Floor', 'Step', 'Log', 'Reciprocal', 'Relu', 'Sigmoid', 'Gelu'] as const;
/** ErfGrad and GeluGrad take (x, dy) and give dy times the derivative at x. */
export const BINARY_OPS = ['Add', 'Sub', 'Multiply', 'RealDiv', 'Maximum', 'Minimum', 'SquaredDifference', 'ErfGrad', 'GeluGrad'] as const;

export const ADDON_PATH = join(import.meta.dirname, '..', '..', '..', 'native', 'build', 'mtm_kernels.node');

let loaded: { native?: NativeKernels; reason: string } | undefined;

/**
 * The addon, or undefined with the reason. Env MTM_NATIVE_KERNELS=off disables it; any other value
 * is a path to load instead of the default build output.
 */
export function loadNative(): { native?: NativeKernels; reason: string } {
  if (loaded) return loaded;
  const env = process.env.MTM_NATIVE_KERNELS;
  if (env === 'off' || env === '0' || env === 'false') return (loaded = { reason: `native kernels off (MTM_NATIVE_KERNELS=${env})` });
  const path = env || ADDON_PATH;
  if (!existsSync(path)) return (loaded = { reason: `native kernels not built (${path} missing; run \`node native/build.mjs\`)` });
  try {
    const native = createRequire(import.meta.url)(path) as NativeKernels;
    const info = native.info();
    return (loaded = { native, reason: `native kernels loaded (gemm ${info.gemm}, ${info.isa}, ${info.threads} threads)` });
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return (loaded = { reason: `native kernels failed to load from ${path}: ${msg}` });
  }
}
