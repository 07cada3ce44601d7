// Element-wise, reduction, softmax, transpose and copy kernels through the native addon: after
// the matrix products, these were most of an NDT1 step on wasm (scalar exp/erf, sums over a
// non-last axis done as transpose + sum, and Identity/Cast making full copies).
import * as tf from '../tf.ts';
import type { BackendAccess, TensorInfo } from './access.ts';
import { BINARY_OPS, UNARY_OPS, type NativeKernels } from './native.ts';

type Access = (backend: unknown) => BackendAccess;
export type KernelFactory = (native: NativeKernels, builtin: tf.KernelFunc, access: Access) => tf.KernelFunc;

interface Args {
  inputs: Record<string, TensorInfo>;
  backend: unknown;
  attrs?: Record<string, unknown>;
}

const size = (shape: number[]) => shape.reduce((p, d) => p * d, 1);
const fallback = (builtin: tf.KernelFunc, args: Args) => builtin(args as unknown as Parameters<tf.KernelFunc>[0]);

export function unaryKernel(name: (typeof UNARY_OPS)[number]): KernelFactory {
  const op = UNARY_OPS.indexOf(name);
  return (native, builtin, access) =>
    ((args: Args) => {
      const { x } = args.inputs;
      if (x.dtype !== 'float32') return fallback(builtin, args);
      const alpha = name === 'Step' ? Number(args.attrs?.alpha ?? 0) : 0;
      const n = size(x.shape);
      const out = access(args.backend).run([x], x.shape, ([xm], ym) => native.unary(op, xm.buf, xm.off, ym.buf, ym.off, n, alpha));
      return out ?? fallback(builtin, args);
    }) as unknown as tf.KernelFunc;
}

/**
 * The broadcast of a and b, with runs of axes that broadcast alike merged, as the addon's dims
 * ([rank, shape, aStrides, bStrides]); undefined when the shapes do not broadcast.
 */
export function planBinary(aShape: number[], bShape: number[]): { outShape: number[]; dims: Int32Array } | undefined {
  let outShape: number[];
  try {
    outShape = tf.broadcast_util.assertAndGetBroadcastShape(aShape, bShape);
  } catch {
    return undefined;
  }
  const r = outShape.length;
  const pad = (s: number[]) => [...new Array(r - s.length).fill(1), ...s];
  const a = pad(aShape), b = pad(bShape);
  const runs: { n: number; aFull: boolean; bFull: boolean }[] = [];
  for (let i = 0; i < r; i++) {
    if (outShape[i] === 1) continue;
    const aFull = a[i] !== 1, bFull = b[i] !== 1;
    const last = runs[runs.length - 1];
    if (last && last.aFull === aFull && last.bFull === bFull) last.n *= outShape[i];
    else runs.push({ n: outShape[i], aFull, bFull });
  }
  if (!runs.length) runs.push({ n: 1, aFull: true, bFull: true });
  const k = runs.length;
  const dims = new Int32Array(1 + 3 * k);
  dims[0] = k;
  let accA = 1, accB = 1;
  for (let i = k - 1; i >= 0; i--) {
    const { n, aFull, bFull } = runs[i];
    dims[1 + i] = n;
    dims[1 + k + i] = aFull ? accA : 0;
    dims[1 + 2 * k + i] = bFull ? accB : 0;
    if (aFull) accA *= n;
    if (bFull) accB *= n;
  }
  return { outShape, dims };
}

const binaryPlans = new Map<string, ReturnType<typeof planBinary>>();

/** planBinary, remembered per shape pair (a step repeats the same few dozen). */
function cachedPlanBinary(aShape: number[], bShape: number[]) {
  const key = `${aShape}|${bShape}`;
  let plan = binaryPlans.get(key);
  if (plan === undefined && !binaryPlans.has(key)) {
    plan = planBinary(aShape, bShape);
    if (binaryPlans.size > 4096) binaryPlans.clear();
    binaryPlans.set(key, plan);
  }
  return plan;
}

export function binaryKernel(name: (typeof BINARY_OPS)[number]): KernelFactory {
  const op = BINARY_OPS.indexOf(name);
  return (native, builtin, access) =>
    ((args: Args) => {
      const { a, b } = args.inputs;
      if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback(builtin, args);
      const plan = cachedPlanBinary(a.shape, b.shape);
      const out = plan && access(args.backend).run([a, b], plan.outShape.slice(), ([am, bm], ym) => native.binary(op, am.buf, am.off, bm.buf, bm.off, ym.buf, ym.off, plan.dims));
      return out ?? fallback(builtin, args);
    }) as unknown as tf.KernelFunc;
}

/**
 * A reduction over `axes` of x as [outer, n, inner] (the reduced axes, size-1 axes ignored, must
 * be one contiguous block), with tfjs's output shape; undefined otherwise.
 */
export function planReduce(shape: number[], axis: number | number[] | undefined, keepDims: boolean): { outShape: number[]; outer: number; n: number; inner: number } | undefined {
  const r = shape.length;
  const raw = axis == null ? shape.map((_, i) => i) : Array.isArray(axis) ? axis : [axis];
  const axes = new Set(raw.map((ax) => (ax < 0 ? ax + r : ax)));
  for (const ax of axes) if (!(ax >= 0 && ax < r)) return undefined;
  const live = shape.map((d, i) => ({ d, i, red: axes.has(i) })).filter((e) => e.d !== 1);
  const first = live.findIndex((e) => e.red);
  let last = -1;
  for (let j = live.length - 1; j >= 0; j--) if (live[j].red) { last = j; break; }
  if (first >= 0 && live.slice(first, last + 1).some((e) => !e.red)) return undefined;
  const prod = (es: { d: number }[]) => es.reduce((p, e) => p * e.d, 1);
  const outer = first < 0 ? prod(live) : prod(live.slice(0, first));
  const n = first < 0 ? 1 : prod(live.slice(first, last + 1));
  const inner = first < 0 ? 1 : prod(live.slice(last + 1));
  const outShape = keepDims ? shape.map((d, i) => (axes.has(i) ? 1 : d)) : shape.filter((_, i) => !axes.has(i));
  return { outShape, outer, n, inner };
}

function reduceKernel(op: 0 | 1, axisAttr: string): KernelFactory {
  return (native, builtin, access) =>
    ((args: Args) => {
      const { x } = args.inputs;
      if (x.dtype !== 'float32') return fallback(builtin, args);
      const plan = planReduce(x.shape, args.attrs?.[axisAttr] as number | number[] | undefined, Boolean(args.attrs?.keepDims));
      const out = plan && access(args.backend).run([x], plan.outShape, ([xm], ym) => native.reduce(op, xm.buf, xm.off, ym.buf, ym.off, plan.outer, plan.n, plan.inner));
      return out ?? fallback(builtin, args);
    }) as unknown as tf.KernelFunc;
}

export const sumKernel = reduceKernel(0, 'axis');
export const meanKernel = reduceKernel(1, 'axis');

export const softmaxKernel: KernelFactory = (native, builtin, access) =>
  ((args: Args) => {
    const { logits } = args.inputs;
    const r = logits.shape.length;
    const dim = Number(args.attrs?.dim ?? -1);
    if (logits.dtype !== 'float32' || r === 0 || (dim !== -1 && dim !== r - 1)) return fallback(builtin, args);
    const cols = logits.shape[r - 1];
    const rows = cols ? size(logits.shape) / cols : 0;
    const out = access(args.backend).run([logits], logits.shape, ([xm], ym) => native.softmax(xm.buf, xm.off, ym.buf, ym.off, rows, cols));
    return out ?? fallback(builtin, args);
  }) as unknown as tf.KernelFunc;

/** Drops size-1 axes and merges input axes that stay adjacent under perm: the addon's dims. */
export function planTranspose(shape: number[], perm: number[]): Int32Array {
  const kept = perm.filter((p) => shape[p] !== 1);
  // Renumber the kept input axes 0..k-1 in input order.
  const order = [...kept].sort((x, y) => x - y);
  let p = kept.map((ax) => order.indexOf(ax));
  let s = order.map((ax) => shape[ax]);
  // Merge input axes i, i+1 that appear consecutively in p.
  for (let i = 0; i < s.length - 1; ) {
    const at = p.indexOf(i);
    if (p[at + 1] === i + 1) {
      s = [...s.slice(0, i), s[i] * s[i + 1], ...s.slice(i + 2)];
      p = p.filter((_, j) => j !== at + 1).map((ax) => (ax > i ? ax - 1 : ax));
    } else {
      i++;
    }
  }
  if (!s.length) {
    s = [1];
    p = [0];
  }
  return Int32Array.from([s.length, ...s, ...p]);
}

export const transposeKernel: KernelFactory = (native, builtin, access) =>
  ((args: Args) => {
    const { x } = args.inputs;
    const perm = args.attrs?.perm as number[];
    if ((x.dtype !== 'float32' && x.dtype !== 'int32') || !Array.isArray(perm) || perm.length !== x.shape.length) return fallback(builtin, args);
    const outShape = perm.map((p) => x.shape[p]);
    const dims = planTranspose(x.shape, perm);
    const acc = access(args.backend);
    if (dims[0] === 1) return acc.alias(x, outShape);
    const out = acc.run([x], outShape, ([xm], ym) => native.transpose(xm.buf, xm.off, ym.buf, ym.off, dims), x.dtype);
    return out ?? fallback(builtin, args);
  }) as unknown as tf.KernelFunc;

/** tfjs never writes a tensor's values in place, so Identity can share them, as Reshape does. */
export const identityKernel: KernelFactory = (_native, builtin, access) =>
  ((args: Args) => {
    const { x } = args.inputs;
    if (x.dtype === 'string') return fallback(builtin, args);
    return access(args.backend).alias(x);
  }) as unknown as tf.KernelFunc;

/** A cast to the same dtype (every Mul/Div gradient casts its operands to float32) shares values. */
export const castKernel: KernelFactory = (_native, builtin, access) =>
  ((args: Args) => {
    const { x } = args.inputs;
    if (x.dtype !== args.attrs?.dtype || x.dtype === 'string') return fallback(builtin, args);
    return access(args.backend).alias(x);
  }) as unknown as tf.KernelFunc;
