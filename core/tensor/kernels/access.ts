// How a native kernel reaches tensor memory on each backend it supports: wasm keeps every tensor
// in one WebAssembly.Memory (the addon reads and writes it in place), the pure-JS cpu backend
// keeps one typed array per tensor. Both give the addon a buffer and a byte offset, no copies.
import type * as tf from '../tf.ts';
import type { NativeBuffer } from './native.ts';

export type TensorInfo = tf.TensorInfo;

/** Where one tensor's values are: a buffer the addon accepts and the byte offset inside it. */
export interface Mem {
  buf: NativeBuffer;
  off: number;
}

export interface BackendAccess {
  /**
   * Allocates a float32 output of `outShape`, hands `fn` the inputs' and the output's memory, and
   * returns the output; undefined when an input's values are not reachable (then the caller
   * falls back to the built-in kernel).
   */
  run(inputs: TensorInfo[], outShape: number[], fn: (ins: Mem[], out: Mem) => void, dtype?: 'float32' | 'int32'): TensorInfo | undefined;
  /** run() with several float32 outputs. */
  runMulti(inputs: TensorInfo[], outShapes: number[][], fn: (ins: Mem[], outs: Mem[]) => void): TensorInfo[] | undefined;
  /** A new tensor info sharing x's values (no copy), with another shape if given. */
  alias(x: TensorInfo, shape?: number[]): TensorInfo;
  /** Where x's float32 values are, for kernels that update tensors in place; undefined when not reachable. */
  mem(x: TensorInfo): Mem | undefined;
  /** How many tensors share x's values (an in-place update is safe only at 1). */
  refCount(x: TensorInfo): number;
}

/** Elements in a shape. */
export const size = (shape: number[]) => shape.reduce((p, d) => p * d, 1);

/** How a kernel reaches its backend's memory (ACCESS has one per backend). */
export type Access = (backend: unknown) => BackendAccess;

/** What tfjs passes a kernel function; `A` types its attrs. */
export interface KernelArgs<A = Record<string, unknown>> {
  inputs: Record<string, TensorInfo>;
  backend: unknown;
  attrs: A;
}

/** The slice of tfjs-backend-wasm's BackendWasm used here. */
interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32' | 'int32'): TensorInfo;
  incRef(dataId: object): void;
  refCount(dataId: object): number;
}

/** The slice of tfjs-backend-cpu's MathBackendCPU used here. */
interface CpuBackendLike {
  data: { get(dataId: object): { values?: unknown } | undefined };
  makeTensorInfo(shape: number[], dtype: 'float32' | 'int32', values: Float32Array | Int32Array): TensorInfo;
  incRef(dataId: object): void;
  refCount(dataId: object): number;
}

export function wasmAccess(backend: unknown): BackendAccess {
  const b = backend as WasmBackendLike;
  return {
    run(inputs, outShape, fn, dtype = 'float32') {
      const out = b.makeOutput(outShape, dtype);
      if (size(outShape) === 0) return out;
      // Read after makeOutput: allocating may grow wasm memory and replace its ArrayBuffer.
      const heap = b.wasm.HEAPU8.buffer;
      fn(inputs.map((t) => ({ buf: heap, off: b.dataIdMap.get(t.dataId)!.memoryOffset })), { buf: heap, off: b.dataIdMap.get(out.dataId)!.memoryOffset });
      return out;
    },
    runMulti(inputs, outShapes, fn) {
      const outs = outShapes.map((s) => b.makeOutput(s, 'float32'));
      const heap = b.wasm.HEAPU8.buffer;
      const mem = (t: TensorInfo) => ({ buf: heap, off: b.dataIdMap.get(t.dataId)!.memoryOffset });
      fn(inputs.map(mem), outs.map(mem));
      return outs;
    },
    alias(x, shape) {
      b.incRef(x.dataId);
      return { dataId: x.dataId, shape: shape ?? x.shape, dtype: x.dtype };
    },
    mem(x) {
      const d = b.dataIdMap.get(x.dataId);
      return d && x.dtype === 'float32' ? { buf: b.wasm.HEAPU8.buffer, off: d.memoryOffset } : undefined;
    },
    refCount: (x) => b.refCount(x.dataId),
  };
}

export function cpuAccess(backend: unknown): BackendAccess {
  const b = backend as CpuBackendLike;
  return {
    run(inputs, outShape, fn, dtype = 'float32') {
      const ins: Mem[] = [];
      for (const t of inputs) {
        const v = b.data.get(t.dataId)?.values;
        if (!(v instanceof Float32Array || v instanceof Int32Array)) return undefined;
        ins.push({ buf: v, off: 0 });
      }
      const values = dtype === 'int32' ? new Int32Array(size(outShape)) : new Float32Array(size(outShape));
      if (values.length) fn(ins, { buf: values, off: 0 });
      return b.makeTensorInfo(outShape, dtype, values);
    },
    runMulti(inputs, outShapes, fn) {
      const ins: Mem[] = [];
      for (const t of inputs) {
        const v = b.data.get(t.dataId)?.values;
        if (!(v instanceof Float32Array)) return undefined;
        ins.push({ buf: v, off: 0 });
      }
      const values = outShapes.map((s) => new Float32Array(size(s)));
      fn(ins, values.map((v) => ({ buf: v, off: 0 })));
      return values.map((v, i) => b.makeTensorInfo(outShapes[i], 'float32', v));
    },
    alias(x, shape) {
      b.incRef(x.dataId);
      return { dataId: x.dataId, shape: shape ?? x.shape, dtype: x.dtype };
    },
    mem(x) {
      const v = b.data.get(x.dataId)?.values;
      return v instanceof Float32Array ? { buf: v, off: 0 } : undefined;
    },
    refCount: (x) => b.refCount(x.dataId),
  };
}

/** One accessor per backend instance (kernels run thousands of times a step). */
function cached(make: (backend: unknown) => BackendAccess): (backend: unknown) => BackendAccess {
  const memo = new WeakMap<object, BackendAccess>();
  return (backend) => {
    let a = memo.get(backend as object);
    if (!a) memo.set(backend as object, (a = make(backend)));
    return a;
  };
}

export const ACCESS: Record<string, (backend: unknown) => BackendAccess> = { wasm: cached(wasmAccess), cpu: cached(cpuAccess) };
