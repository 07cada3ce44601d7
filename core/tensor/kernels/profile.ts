// Time per tfjs kernel of one call of a function (docs/performance.md §1: measure per kernel before and after a change): tf.profile's
// records grouped by kernel name, largest first, with the time spent outside any kernel.
import * as tf from '../tf.ts';
import { loadNative } from './native.ts';

export interface KernelTime {
  name: string;
  ms: number;
  calls: number;
  /** Share of the summed kernel time. */
  share: number;
}

export interface KernelProfile {
  /** Wall time of the profiled call (profiling itself adds a little). */
  wallMs: number;
  /** Sum over kernels (nested kernels, e.g. a custom gradient's forward, are not double counted). */
  kernelMs: number;
  /** wallMs - kernelMs: JavaScript around the kernels (tape, allocation, tensor creation, GC). */
  outsideKernelsMs: number;
  kernelCalls: number;
  top: KernelTime[];
}

/** Profiles one call of `f` (sync or async); `top` keeps the largest `topN` kernels. */
export async function profileKernels(f: () => unknown, topN = 15): Promise<KernelProfile> {
  const t0 = performance.now();
  const info = await tf.profile(f as () => tf.TensorContainer);
  const wallMs = performance.now() - t0;
  const by = new Map<string, { ms: number; calls: number }>();
  let kernelMs = 0;
  let calls = 0;
  for (const k of info.kernels) {
    // tf.customGrad's forward shows as a scope wrapping kernels that are also listed themselves.
    if (!k.name || k.name === 'unnamed scope') continue;
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const e = by.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += ms;
    e.calls++;
    by.set(k.name, e);
    kernelMs += ms;
    calls++;
  }
  const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
  const top = [...by]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, topN)
    .map(([name, e]) => ({ name, ms: round(e.ms), calls: e.calls, share: round(kernelMs ? e.ms / kernelMs : 0, 3) }));
  return { wallMs: round(wallMs, 1), kernelMs: round(kernelMs, 1), outsideKernelsMs: round(wallMs - kernelMs, 1), kernelCalls: calls, top };
}

/**
 * Like profileKernels, but times each kernel with `clock` (default: the calling thread's CPU time
 * from the addon, else wall time) by wrapping every kernel registered for the current backend
 * for the duration of the call. With one native thread (MTM_NATIVE_THREADS=1) thread CPU time
 * is the work itself, unaffected by other processes sharing the machine; wallMs is then the
 * thread's CPU time for the whole call.
 */
export async function profileKernelsCpu(
  f: () => unknown,
  clock: () => number = defaultClock(),
  topN = 15,
  /** Groups calls by this key instead of the kernel name (e.g. name and input shapes). */
  keyOf: (kernelName: string, args: Parameters<tf.KernelFunc>[0]) => string = (name) => name,
): Promise<KernelProfile> {
  const backendName = tf.getBackend();
  const configs = tf.getKernelsForBackend(backendName);
  const by = new Map<string, { ms: number; calls: number }>();
  let depth = 0;
  for (const c of configs) {
    const inner = c.kernelFunc;
    tf.unregisterKernel(c.kernelName, backendName);
    tf.registerKernel({
      ...c,
      kernelFunc: ((args: Parameters<tf.KernelFunc>[0]) => {
        if (depth > 0) return inner(args);
        depth++;
        const t0 = clock();
        try {
          return inner(args);
        } finally {
          const key = keyOf(c.kernelName, args);
          const e = by.get(key) ?? { ms: 0, calls: 0 };
          e.ms += clock() - t0;
          e.calls++;
          by.set(key, e);
          depth--;
        }
      }) as tf.KernelFunc,
    });
  }
  let wallMs: number;
  try {
    const t0 = clock();
    await f();
    wallMs = clock() - t0;
  } finally {
    for (const c of configs) {
      tf.unregisterKernel(c.kernelName, backendName);
      tf.registerKernel(c);
    }
  }
  let kernelMs = 0;
  let calls = 0;
  for (const e of by.values()) {
    kernelMs += e.ms;
    calls += e.calls;
  }
  const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
  const top = [...by]
    .sort((p, q) => q[1].ms - p[1].ms)
    .slice(0, topN)
    .map(([name, e]) => ({ name, ms: round(e.ms), calls: e.calls, share: round(kernelMs ? e.ms / kernelMs : 0, 3) }));
  return { wallMs: round(wallMs, 1), kernelMs: round(kernelMs, 1), outsideKernelsMs: round(wallMs - kernelMs, 1), kernelCalls: calls, top };
}

function defaultClock(): () => number {
  const { native } = loadNative();
  return native ? () => native.threadCpuMs() : () => performance.now();
}
