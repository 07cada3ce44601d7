// Large count arrays whose memory pages a helper thread faults in while the caller counts (docs/performance.md §6).
//
// Why it exists: a fresh 100+ MB counts array costs the kernel one page fault per 4 KiB page on
// first write (V8 gets no transparent huge pages, numpy asks for them), and on the project's
// 2-core VMs that is more than half of binning a session. Here the array is backed by a
// SharedArrayBuffer and one long-lived worker thread walks it from the far end, touching each
// page with an atomic `or 0` (a write that never changes a value, so it cannot lose a count the
// caller is adding), while the caller counts from the near end. Nothing waits on the helper: if
// it has not started, or no core is idle, the caller takes the faults itself, and the counts are
// the same either way because only the caller ever changes a value.
//
// Why it is off by default: on the project's shared 2-core VM (bench/results/binning.json, 20 M
// spikes, 142 MB of counts) it made binning slower, median 275 ms against 226 ms single-threaded,
// and so did splitting the counting itself over two threads (282 ms, plus 180 ms to copy the
// spikes into shared memory): the second core is rarely idle there. The same run's raw probe
// shows page faults do overlap when a core is free (160 MB touched: 390 ms from one thread, 199
// ms from two), so it stays an opt-in (`prefault: 'auto' | true`, stage param prefaultThread)
// for machines with idle cores; rerun the bench there before turning it on.
import { Worker } from 'node:worker_threads';

/**
 * With `prefault: 'auto'`, arrays below this many bytes stay plain Int32Arrays: in every run of
 * bench/binning.ts (prefaultBySize, 1 to 61 MiB of counts) the helper never paid below 8 MiB, its
 * message and shared buffer costing more than the few faults they could take over; above it,
 * whether it pays depends on an idle core.
 */
export const PREFAULT_MIN_BYTES = 8 * 2 ** 20;

const PAGE_INTS = 1024; // 4 KiB pages of 4-byte counts

// Plain JavaScript so the thread needs no TypeScript loader (and starts in a few ms).
const HELPER_SOURCE = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ({ data, control, step }) => {
  const a = new Int32Array(data);
  const c = new Int32Array(control);
  let touched = 0;
  for (let i = a.length - 1; i >= 0; i -= step) {
    if (Atomics.load(c, 0) !== 0) break;
    Atomics.or(a, i, 0);
    touched++;
  }
  Atomics.store(c, 1, touched);
  Atomics.store(c, 2, 1);
});
`;

let helper: Worker | undefined;
let helperFailed = false;
let helperOnline: Promise<boolean> | undefined;

function getHelper(): Worker | undefined {
  if (helper || helperFailed) return helper;
  try {
    // execArgv: [] keeps the parent's --import tsx out of a thread that runs plain JS.
    const w = new Worker(HELPER_SOURCE, { eval: true, execArgv: [] });
    w.unref(); // never keeps the process alive
    helperOnline = new Promise((resolve) => {
      w.once('online', () => resolve(true));
      w.once('error', () => resolve(false));
    });
    w.on('error', () => {
      // A helper that dies only costs speed: later arrays are plain ones.
      helperFailed = true;
      helper = undefined;
    });
    helper = w;
  } catch {
    helperFailed = true;
  }
  return helper;
}

/** Starts the helper thread now (it otherwise starts with the first large array) and resolves once it runs. */
export async function startPrefaultHelper(): Promise<boolean> {
  const w = getHelper();
  if (!w || !helperOnline) return false;
  w.ref(); // an unref'd thread would let the process exit while we wait
  try {
    return await helperOnline;
  } finally {
    w.unref();
  }
}

/** Stops the helper thread (tests; a process may also just exit, the thread is unref'd). */
export async function stopPrefaultHelper(): Promise<void> {
  const w = helper;
  helper = undefined;
  helperOnline = undefined;
  if (w) await w.terminate();
}

export interface CountsBuffer {
  /** Zero-filled counts, row-major as the caller lays them out. */
  array: Int32Array;
  /** True when a helper thread was asked to fault the pages in. */
  prefaulting: boolean;
  /**
   * Tells the helper to stop (call once the caller has written everything). Returns the number
   * of pages the helper touched so far, or -1 when it has not reported yet (it may not have
   * started); never waits.
   */
  done(): number;
  /** Waits (up to `timeoutMs`) for the helper to report; for tests and benchmarks. */
  settled(timeoutMs?: number): Promise<number>;
}

export interface AllocCountsOptions {
  /** false (default): a plain Int32Array; 'auto': the helper from PREFAULT_MIN_BYTES up; true: always. */
  prefault?: boolean | 'auto';
}

/** A zero-filled Int32Array of `length` counts; with `prefault`, large ones are prefaulted by the helper thread. */
export function allocCounts(length: number, options: AllocCountsOptions = {}): CountsBuffer {
  const mode = options.prefault ?? false;
  const want = mode === true || (mode === 'auto' && length * 4 >= PREFAULT_MIN_BYTES);
  const w = want && length > 0 ? getHelper() : undefined;
  if (!w) {
    const array = new Int32Array(length);
    return { array, prefaulting: false, done: () => 0, settled: async () => 0 };
  }
  const data = new SharedArrayBuffer(length * 4);
  const control = new Int32Array(new SharedArrayBuffer(12)); // [stop, pages touched, reported]
  w.postMessage({ data, control: control.buffer, step: PAGE_INTS });
  const report = () => (Atomics.load(control, 2) ? Atomics.load(control, 1) : -1);
  return {
    array: new Int32Array(data),
    prefaulting: true,
    done() {
      Atomics.store(control, 0, 1);
      return report();
    },
    async settled(timeoutMs = 5000) {
      const until = performance.now() + timeoutMs;
      while (Atomics.load(control, 2) === 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 1));
      return report();
    },
  };
}
