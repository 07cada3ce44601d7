// Slice, SplitV and Concat as strided copies in the addon: tfjs-wasm's Slice reads the whole input
// back into JavaScript on every call (SplitV of the fused q/k/v projection: ~30 ms a step).
import * as tf from '../tf.ts';
import type { TensorInfo } from './access.ts';
import type { KernelFactory } from './elementwise.ts';

const strides = (shape: number[]) => {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
};

/** The addon's copy dims for `shape` read with src strides and written with dst strides, merging what it can. */
export function planCopy(shape: number[], src: number[], dst: number[]): Int32Array {
  const dims: { n: number; s: number; d: number }[] = [];
  shape.forEach((n, i) => {
    if (n === 1) return;
    const last = dims[dims.length - 1];
    if (last && last.s === src[i] * n && last.d === dst[i] * n) {
      last.n *= n;
      last.s = src[i];
      last.d = dst[i];
    } else {
      dims.push({ n, s: src[i], d: dst[i] });
    }
  });
  if (!dims.length) dims.push({ n: 1, s: 1, d: 1 });
  const k = dims.length;
  return Int32Array.from([k, ...dims.map((e) => e.n), ...dims.map((e) => e.s), ...dims.map((e) => e.d)]);
}

interface Args {
  inputs: Record<string, TensorInfo> | TensorInfo[];
  backend: unknown;
  attrs?: Record<string, unknown>;
}

const fallback = (builtin: tf.KernelFunc, args: Args) => builtin(args as unknown as Parameters<tf.KernelFunc>[0]);
const fourBytes = (t: TensorInfo) => t.dtype === 'float32' || t.dtype === 'int32';
const flatOffset = (begin: number[], st: number[]) => begin.reduce((p, b, i) => p + b * st[i], 0);

export const sliceKernel: KernelFactory = (native, builtin, access) =>
  ((args: Args) => {
    const { x } = args.inputs as Record<string, TensorInfo>;
    if (!fourBytes(x)) return fallback(builtin, args);
    const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, args.attrs!.begin as number[], args.attrs!.size as number[]);
    const st = strides(x.shape);
    const dims = planCopy(size, st, strides(size));
    const off = 4 * flatOffset(begin, st);
    const out = access(args.backend).run([x], size, ([xm], ym) => native.copy(xm.buf, xm.off + off, ym.buf, ym.off, dims), x.dtype as 'float32' | 'int32');
    return out ?? fallback(builtin, args);
  }) as unknown as tf.KernelFunc;

export const splitVKernel: KernelFactory = (native, builtin, access) =>
  ((args: Args) => {
    const { x } = args.inputs as Record<string, TensorInfo>;
    if (!fourBytes(x)) return fallback(builtin, args);
    const axis = tf.util.parseAxisParam(args.attrs!.axis as number, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, args.attrs!.numOrSizeSplits as number | number[], axis);
    const st = strides(x.shape);
    const acc = access(args.backend);
    const outs: TensorInfo[] = [];
    let start = 0;
    for (const s of sizes) {
      const shape = x.shape.slice();
      shape[axis] = s;
      const dims = planCopy(shape, st, strides(shape));
      const off = 4 * start * st[axis];
      const out = acc.run([x], shape, ([xm], ym) => native.copy(xm.buf, xm.off + off, ym.buf, ym.off, dims), x.dtype as 'float32' | 'int32');
      if (!out) {
        outs.forEach((o) => (args.backend as { disposeData(id: object): void }).disposeData(o.dataId));
        return fallback(builtin, args);
      }
      outs.push(out);
      start += s;
    }
    return outs;
  }) as unknown as tf.KernelFunc;

export const concatKernel: KernelFactory = (native, builtin, access) =>
  ((args: Args) => {
    const inputs = args.inputs as TensorInfo[];
    if (!Array.isArray(inputs) || !inputs.length || !inputs.every((t) => fourBytes(t) && t.dtype === inputs[0].dtype && t.shape.length === inputs[0].shape.length)) return fallback(builtin, args);
    const axis = tf.util.parseAxisParam(args.attrs!.axis as number, inputs[0].shape)[0];
    const outShape = tf.backend_util.computeOutShape(inputs.map((t) => t.shape), axis);
    const live = inputs.filter((t) => t.shape.every((d) => d > 0));
    const acc = access(args.backend);
    if (live.length === 1 && live[0].shape.every((d, i) => d === outShape[i])) return acc.alias(live[0]);
    const ost = strides(outShape);
    const out = acc.run(live, outShape, (ins, ym) => {
      let start = 0;
      live.forEach((t, i) => {
        native.copy(ins[i].buf, ins[i].off, ym.buf, ym.off + 4 * start * ost[axis], planCopy(t.shape, strides(t.shape), ost));
        start += t.shape[axis];
      });
    }, inputs[0].dtype as 'float32' | 'int32');
    return out ?? fallback(builtin, args);
  }) as unknown as tf.KernelFunc;

/** Tile (and so broadcastTo) as one strided copy whose source strides are 0 along the repeats. */
export const tileKernel: KernelFactory = (native, builtin, access) =>
  ((args: Args) => {
    const { x } = args.inputs as Record<string, TensorInfo>;
    const reps = args.attrs?.reps as number[];
    if (!fourBytes(x) || !Array.isArray(reps) || reps.length !== x.shape.length || x.shape.length > 4) return fallback(builtin, args);
    const outShape = x.shape.map((d, i) => d * reps[i]);
    const xst = strides(x.shape), ost = strides(outShape);
    const shape: number[] = [], src: number[] = [], dst: number[] = [];
    x.shape.forEach((d, i) => {
      shape.push(reps[i], d);
      src.push(0, xst[i]);
      dst.push(d * ost[i], ost[i]);
    });
    const dims = planCopy(shape, src, dst);
    const out = access(args.backend).run([x], outShape, ([xm], ym) => native.copy(xm.buf, xm.off, ym.buf, ym.off, dims), x.dtype as 'float32' | 'int32');
    return out ?? fallback(builtin, args);
  }) as unknown as tf.KernelFunc;
