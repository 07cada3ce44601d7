// Binning throughput (docs/method.md §2.4; results: docs/performance.md §6): our one-pass binning against numpy's
// searchsorted + bincount on the same >= 20 M spikes, both best of a few runs, I/O excluded.
// Headline: each run returns a fresh counts array on both sides (as the stage does per session).
// Also timed: counting into a reused, re-zeroed output, which shows the counting itself (fresh
// 4 KiB pages cost V8 a page fault each, where numpy asks the kernel for huge pages); and two
// ways of putting the second core to work on those faults: a helper thread that faults the
// output's pages in while this one counts (core/binning/prefault.ts), and the counting split
// over two threads by trial halves. Variants run interleaved, one of each per round.
// Usage: node --import tsx bench/binning.ts [--spikes 20000000] [--repeats 5] [--python python3]
// Writes bench/results/binning.json.
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, totalmem, tmpdir, platform, arch, loadavg } from 'node:os';
import { join } from 'node:path';
import { binCount, binSpikes, columnTable } from '../core/binning/bin-spikes.ts';
import { PREFAULT_MIN_BYTES, startPrefaultHelper, stopPrefaultHelper } from '../core/binning/prefault.ts';
import { readNpy, writeNpy } from '../core/io/npy.ts';
import { writeFileAtomic } from '../core/io/atomic.ts';
import { createRng } from '../core/rng.ts';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
};
const targetSpikes = Number(arg('spikes', '20000000'));
const repeats = Number(arg('repeats', '5'));
const python = arg('python', process.env.MTM_PYTHON ?? 'python3');
const nNeurons = 250;
const windowS: [number, number] = [-0.5, 1.5];
const binSizeMs = 20;

/** A session's spikes, generated directly: a merged Poisson process with log-normal unit rates. */
function makeSession(nSpikes: number) {
  const rng = createRng(20240);
  const rates = Float64Array.from({ length: nNeurons }, () => 8 * Math.exp(rng.normal()));
  const total = rates.reduce((a, b) => a + b, 0);
  const cdf = new Float64Array(nNeurons);
  let acc = 0;
  rates.forEach((r, i) => (cdf[i] = acc += r / total));
  const times = new Float64Array(nSpikes);
  const clusters = new Int32Array(nSpikes);
  let t = 0;
  for (let i = 0; i < nSpikes; i++) {
    t += -Math.log(1 - rng.next()) / total;
    times[i] = t;
    const u = rng.next();
    let lo = 0;
    let hi = nNeurons - 1;
    while (lo < hi) {
      const m = (lo + hi) >>> 1;
      if (cdf[m] < u) lo = m + 1;
      else hi = m;
    }
    clusters[i] = lo;
  }
  // IBL-like trial rhythm: a stimulus every 2.5-5.5 s (some 2 s windows nearly touch).
  const align: number[] = [];
  for (let a = 2 + rng.next(); a < t - 2; a += 2.5 + 3 * rng.next()) align.push(a);
  return { times, clusters, align: Float64Array.from(align), durationS: t };
}

/** Runs every variant once per round, `repeats` rounds, so a busy neighbour slows all of them alike. */
const median = (xs: number[]) => {
  const a = [...xs].sort((x, y) => x - y);
  return a.length % 2 ? a[a.length >> 1] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
};

async function interleaved<K extends string>(variants: Record<K, () => unknown>, rounds = repeats): Promise<Record<K, { bestS: number; runsS: number[] }>> {
  const out = {} as Record<K, { bestS: number; runsS: number[] }>;
  for (const k of Object.keys(variants) as K[]) out[k] = { bestS: Infinity, runsS: [] };
  for (let r = 0; r < rounds; r++) {
    for (const k of Object.keys(variants) as K[]) {
      const t0 = performance.now();
      await variants[k]();
      const dt = (performance.now() - t0) / 1000;
      out[k].runsS.push(dt);
      out[k].bestS = Math.min(out[k].bestS, dt);
    }
  }
  return out;
}

// Counting split over two threads: this thread counts the first half of the trials, a worker
// the second, into one SharedArrayBuffer. The worker must see the spikes, so they have to live
// in SharedArrayBuffers too; the copy is timed separately (the npy reader gives plain buffers).
const SPLIT_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
// A worker runs plain JS: register tsx there before importing the TypeScript kernel.
import(workerData.tsxUrl).then((tsx) => { tsx.register(); return import(workerData.binSpikesUrl); }).then(({ binSpikes }) => {
  parentPort.on('message', (m) => {
    binSpikes({ times: new Float64Array(m.times), clusters: new Int32Array(m.clusters), nNeurons: m.nNeurons,
      alignTimes: new Float64Array(m.align), windowS: m.windowS, binSizeMs: m.binSizeMs,
      out: new Int32Array(m.out, m.outOffsetBytes, m.outLength) });
    parentPort.postMessage('done');
  });
  parentPort.postMessage('ready');
});
`;

function shareCopy<T extends Float64Array | Int32Array>(a: T): T {
  const c = new (a.constructor as { new (b: SharedArrayBuffer): T })(new SharedArrayBuffer(a.byteLength));
  c.set(a);
  return c;
}

async function splitCounter() {
  const w = new Worker(SPLIT_WORKER, { eval: true, workerData: { tsxUrl: import.meta.resolve('tsx/esm/api'), binSpikesUrl: pathToFileURL(join(import.meta.dirname, '..', 'core', 'binning', 'bin-spikes.ts')).href } });
  await new Promise<void>((resolve, reject) => {
    w.once('message', () => resolve());
    w.once('error', reject);
  });
  return {
    async count(times: Float64Array, clusters: Int32Array, align: Float64Array): Promise<Int32Array> {
      // Trials are in time order here; the second half of the trials is the worker's.
      const per = nBins * nNeurons;
      const half = align.length >> 1;
      const buf = new SharedArrayBuffer(align.length * per * 4);
      const done = new Promise((resolve) => w.once('message', resolve));
      const alignHi = shareCopy(align.subarray(half));
      w.postMessage({ times: times.buffer, clusters: clusters.buffer, align: alignHi.buffer, nNeurons, windowS, binSizeMs, out: buf, outOffsetBytes: half * per * 4, outLength: (align.length - half) * per });
      binSpikes({ times, clusters, nNeurons, alignTimes: align.subarray(0, half), windowS, binSizeMs, out: new Int32Array(buf, 0, half * per) });
      await done;
      return new Int32Array(buf);
    },
    stop: () => w.terminate(),
  };
}

const load0 = loadavg()[0];
const t0 = performance.now();
const s = makeSession(targetSpikes);
const nBins = binCount(windowS, binSizeMs);
console.log(`session: ${s.times.length} spikes, ${nNeurons} neurons, ${s.align.length} trials x ${nBins} bins, ${s.durationS.toFixed(0)} s (made in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);

const numpyDir = mkdtempSync(join(tmpdir(), 'mtm-bench-binning-'));
await writeNpy(join(numpyDir, 'times.npy'), s.times, [s.times.length]);
await writeNpy(join(numpyDir, 'clusters.npy'), s.clusters, [s.clusters.length]);
await writeNpy(join(numpyDir, 'align.npy'), s.align, [s.align.length]);
function runNumpy(): { bestS: number; runsS: number[]; numpy: string; python: string } {
  const r = spawnSync(python, [join(import.meta.dirname, 'binning_numpy.py'), numpyDir, String(nNeurons), String(windowS[0]), String(windowS[1]), String(binSizeMs), String(repeats)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${python} bench/binning_numpy.py failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}
let numpyError: string | undefined;
let numpyBefore: ReturnType<typeof runNumpy> | null = null;
try {
  numpyBefore = runNumpy();
} catch (e) {
  numpyError = (e as Error).message;
}

await startPrefaultHelper(); // a running pipeline has it started by its first large session
const copyT0 = performance.now();
const sharedTimes = shareCopy(s.times);
const sharedClusters = shareCopy(s.clusters);
const splitInputCopyS = (performance.now() - copyT0) / 1000;
const split = await splitCounter();

// The stage's path: cluster ids through a lookup table (ids 0..n-1 here, so the same counts).
const table = columnTable(Int32Array.from({ length: nNeurons }, (_, i) => i), Int32Array.from({ length: nNeurons }, (_, i) => i));
const reused = new Int32Array(s.align.length * nBins * nNeurons);
let counts: Int32Array = new Int32Array(0);
let countsHelper: Int32Array = new Int32Array(0);
let countsTable: Int32Array = new Int32Array(0);
let countsSplit: Int32Array = new Int32Array(0);
const base = { times: s.times, clusters: s.clusters, nNeurons, alignTimes: s.align, windowS, binSizeMs };
const timed = await interleaved({
  mtm: () => (counts = binSpikes(base)),
  mtmPrefaultHelper: () => (countsHelper = binSpikes({ ...base, prefault: true })),
  mtmWithClusterTable: () => (countsTable = binSpikes({ ...base, columnOf: table })),
  mtmSplitCount: async () => (countsSplit = await split.count(sharedTimes, sharedClusters, s.align)),
  mtmReusedOutput: () => {
    reused.fill(0);
    binSpikes({ ...base, out: reused });
  },
});
await split.stop();
const { mtm, mtmPrefaultHelper, mtmWithClusterTable: mtmTable, mtmSplitCount, mtmReusedOutput: mtmReused } = timed;
let inWindows = 0;
for (const c of counts) inWindows += c;
const same = (a: Int32Array, b: Int32Array) => a.length === b.length && a.every((x, i) => x === b[i]);
for (const [name, c] of [['prefault helper', countsHelper], ['cluster table', countsTable], ['split count', countsSplit], ['reused output', reused]] as const) {
  if (!same(counts, c)) throw new Error(`binning variants disagree: ${name}`);
}
const mps = (b: { bestS: number }) => `${(s.times.length / b.bestS / 1e6).toFixed(1)} M spikes/s`;
console.log(`mtm-flow: best ${(mtm.bestS * 1000).toFixed(0)} ms = ${mps(mtm)}; with the prefault helper ${mps(mtmPrefaultHelper)}, cluster table ${mps(mtmTable)}, counting split over 2 threads ${mps(mtmSplitCount)} (+${(splitInputCopyS * 1000).toFixed(0)} ms to share the spikes), reused output ${mps(mtmReused)}; ${inWindows} spike-window counts`);

// Where the helper thread starts to pay: the same binning on the first k trials, helper on / off.
const bySize: { trials: number; outputMiB: number; prefaultOffMs: number; prefaultOnMs: number }[] = [];
for (const trials of [10, 40, 80, 160, 640]) {
  if (trials > s.align.length) break;
  const sub = { ...base, alignTimes: s.align.subarray(0, trials) };
  const r = await interleaved({ off: () => binSpikes({ ...sub, prefault: false }), on: () => binSpikes({ ...sub, prefault: true }) }, Math.max(repeats * 4, 20));
  bySize.push({ trials, outputMiB: Number(((trials * nBins * nNeurons * 4) / 2 ** 20).toFixed(1)), prefaultOffMs: Number((r.off.bestS * 1000).toFixed(2)), prefaultOnMs: Number((r.on.bestS * 1000).toFixed(2)) });
}
// Do page faults run in parallel here at all? Touch every page of a fresh 160 MB buffer from one
// thread, then from two threads (half each). Equal times mean the faults serialise below us,
// and no threading of the binning can hide them.
const FAULT_WORKER = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ({ buf, from, to }) => {
  const a = new Int32Array(buf);
  for (let i = from; i < to; i += 1024) a[i] = 1;
  parentPort.postMessage('done');
});
`;
const faultWorker = new Worker(FAULT_WORKER, { eval: true, execArgv: [] });
await new Promise((r) => faultWorker.once('online', r));
const faultInts = 40_000_000;
const faults = await interleaved({
  oneThread: () => {
    const a = new Int32Array(new SharedArrayBuffer(faultInts * 4));
    for (let i = 0; i < faultInts; i += 1024) a[i] = 1;
  },
  twoThreads: async () => {
    const buf = new SharedArrayBuffer(faultInts * 4);
    const done = new Promise((r) => faultWorker.once('message', r));
    faultWorker.postMessage({ buf, from: faultInts / 2, to: faultInts });
    const a = new Int32Array(buf);
    for (let i = 0; i < faultInts / 2; i += 1024) a[i] = 1;
    await done;
  },
}, Math.max(repeats, 7));
await faultWorker.terminate();
console.log(`faulting 160 MB: one thread ${(median(faults.oneThread.runsS) * 1000).toFixed(0)} ms, two threads ${(median(faults.twoThreads.runsS) * 1000).toFixed(0)} ms (medians)`);
console.log(`helper on/off by output size: ${bySize.map((b) => `${b.outputMiB} MiB ${b.prefaultOffMs}/${b.prefaultOnMs} ms`).join(', ')}`);
await stopPrefaultHelper();

// numpy on the same spikes, in a child process, once before our timings and once after (a busy
// neighbour then has to hit both phases to hurt it); its figure is the best over both.
let numpy: { bestS: number; runsS: number[]; numpy: string; python: string } | null = null;
let countsMatch: boolean | null = null;
try {
  if (!numpyBefore) throw new Error(numpyError);
  const after = runNumpy();
  numpy = { ...after, runsS: [...numpyBefore!.runsS, ...after.runsS], bestS: Math.min(numpyBefore!.bestS, after.bestS) };
  const theirs = await readNpy(join(numpyDir, 'counts_numpy.npy'));
  const expectShape = [s.align.length, nBins, nNeurons];
  if (JSON.stringify(theirs.shape) !== JSON.stringify(expectShape)) throw new Error(`numpy counts have shape ${theirs.shape}, expected ${expectShape}`);
  countsMatch = same(counts, theirs.data as Int32Array);
  console.log(`numpy ${numpy!.numpy}: best ${(numpy!.bestS * 1000).toFixed(0)} ms = ${(s.times.length / numpy!.bestS / 1e6).toFixed(1)} M spikes/s; counts ${countsMatch ? 'identical' : 'DIFFER'}`);
} catch (e) {
  numpyError ??= (e as Error).message;
  console.error(`numpy side skipped: ${numpyError}`);
} finally {
  rmSync(numpyDir, { recursive: true, force: true });
}

const mtmSpikesPerS = s.times.length / mtm.bestS;
const numpySpikesPerS = numpy ? s.times.length / numpy.bestS : null;
const mtmReusedSpikesPerS = s.times.length / mtmReused.bestS;
const result = {
  spikes: s.times.length,
  neurons: nNeurons,
  trials: s.align.length,
  bins: nBins,
  binSizeMs,
  windowS,
  spikeWindowCounts: inWindows,
  repeats,
  mtmSpikesPerS: Math.round(mtmSpikesPerS),
  mtmPrefaultHelperSpikesPerS: Math.round(s.times.length / mtmPrefaultHelper.bestS),
  mtmWithClusterTableSpikesPerS: Math.round(s.times.length / mtmTable.bestS),
  mtmSplitCountSpikesPerS: Math.round(s.times.length / mtmSplitCount.bestS),
  splitCountInputCopyS: Number(splitInputCopyS.toFixed(4)),
  mtmReusedOutputSpikesPerS: Math.round(mtmReusedSpikesPerS),
  numpySpikesPerS: numpySpikesPerS === null ? null : Math.round(numpySpikesPerS),
  binningVsNumpy: numpySpikesPerS === null ? null : Number((mtmSpikesPerS / numpySpikesPerS).toFixed(2)),
  binningVsNumpyPrefaultHelper: numpySpikesPerS === null ? null : Number((s.times.length / mtmPrefaultHelper.bestS / numpySpikesPerS).toFixed(2)),
  binningVsNumpySplitCount: numpySpikesPerS === null ? null : Number((s.times.length / mtmSplitCount.bestS / numpySpikesPerS).toFixed(2)),
  binningVsNumpyReusedOutput: numpySpikesPerS === null ? null : Number((mtmReusedSpikesPerS / numpySpikesPerS).toFixed(2)),
  countsMatch,
  medianS: Object.fromEntries(Object.entries(timed).map(([k, v]) => [k, Number(median(v.runsS).toFixed(4))])),
  pageFaults160MB: {
    oneThreadMedianS: Number(median(faults.oneThread.runsS).toFixed(4)),
    twoThreadsMedianS: Number(median(faults.twoThreads.runsS).toFixed(4)),
    oneThreadBestS: Number(faults.oneThread.bestS.toFixed(4)),
    twoThreadsBestS: Number(faults.twoThreads.bestS.toFixed(4)),
  },
  prefaultMinBytes: PREFAULT_MIN_BYTES,
  prefaultBySize: bySize,
  runsS: { mtm: mtm.runsS, mtmPrefaultHelper: mtmPrefaultHelper.runsS, mtmWithClusterTable: mtmTable.runsS, mtmSplitCount: mtmSplitCount.runsS, mtmReusedOutput: mtmReused.runsS, numpy: numpy?.runsS ?? null },
  method: {
    mtm: 'core/binning/bin-spikes.ts binSpikes as the stage runs it: one pass over sorted spikes, trials as a sliding run of open windows, a fresh plain Int32Array per run',
    mtmPrefaultHelper: 'the same with prefault: true: the counts live in a SharedArrayBuffer whose pages a helper thread (core/binning/prefault.ts) faults in from the far end while this thread counts',
    mtmSplitCount: 'counting split over two threads by trial halves into one SharedArrayBuffer; spikes pre-copied into SharedArrayBuffers, copy time (splitCountInputCopyS) not in the figure',
    prefaultBySize: 'best time binning the first k trials with the prefault helper off / on',
    pageFaults160MB: 'writing one int per 4 KiB page of a fresh 160 MB SharedArrayBuffer from one thread, or from two threads taking half the pages each',
    numpy: 'bench/binning_numpy.py: searchsorted per trial window, repeat/arange spike indices, floor bin index, one bincount; run before and after the mtm timings, best over both',
    timing: `best of ${repeats} interleaved rounds (every variant once per round), in-process, file I/O excluded; throughput = all session spikes / time; headline runs allocate a fresh counts array (numpy: bincount's int64 array), the reused-output runs re-zero one array inside the timer`,
  },
  machine: {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    platform: `${platform()} ${arch()}`,
    node: process.version,
    numpy: numpy?.numpy ?? null,
    python: numpy?.python ?? null,
    loadAverage1mAtStart: Number(load0.toFixed(2)),
    loadAverage1mAtEnd: Number(loadavg()[0].toFixed(2)),
    glibcTunables: process.env.GLIBC_TUNABLES ?? null,
  },
  ...(numpyError ? { numpyError } : {}),
  date: new Date().toISOString(),
};
await writeFileAtomic(join(import.meta.dirname, 'results', 'binning.json'), JSON.stringify(result, null, 2) + '\n');
console.log(`binning vs numpy: ${result.binningVsNumpy ?? 'n/a'}x -> bench/results/binning.json`);
if (countsMatch === false) {
  console.error('counts differ between mtm-flow and numpy');
  process.exitCode = 1;
}
