// Binning throughput (SPEC.md §2 reference settings): our one-pass binning against numpy's
// searchsorted + bincount on the same >= 20 M spikes, both best of a few runs, I/O excluded.
// Headline: each run returns a fresh counts array on both sides (as the stage does per session).
// Also timed: counting into a reused, re-zeroed output, which shows the counting itself; fresh
// 4 KiB pages cost V8 a page fault each, where numpy asks the kernel for huge pages.
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
let countsPlain: Int32Array = new Int32Array(0);
let countsTable: Int32Array = new Int32Array(0);
let countsSplit: Int32Array = new Int32Array(0);
const base = { times: s.times, clusters: s.clusters, nNeurons, alignTimes: s.align, windowS, binSizeMs };
const timed = await interleaved({
  mtm: () => (counts = binSpikes(base)),
  mtmNoPrefault: () => (countsPlain = binSpikes({ ...base, prefault: false })),
  mtmWithClusterTable: () => (countsTable = binSpikes({ ...base, columnOf: table })),
  mtmSplitCount: async () => (countsSplit = await split.count(sharedTimes, sharedClusters, s.align)),
  mtmReusedOutput: () => {
    reused.fill(0);
    binSpikes({ ...base, out: reused });
  },
});
await split.stop();
const { mtm, mtmNoPrefault, mtmWithClusterTable: mtmTable, mtmSplitCount, mtmReusedOutput: mtmReused } = timed;
let inWindows = 0;
for (const c of counts) inWindows += c;
const same = (a: Int32Array, b: Int32Array) => a.length === b.length && a.every((x, i) => x === b[i]);
for (const [name, c] of [['no prefault', countsPlain], ['cluster table', countsTable], ['split count', countsSplit], ['reused output', reused]] as const) {
  if (!same(counts, c)) throw new Error(`binning variants disagree: ${name}`);
}
const mps = (b: { bestS: number }) => `${(s.times.length / b.bestS / 1e6).toFixed(1)} M spikes/s`;
console.log(`mtm-flow: best ${(mtm.bestS * 1000).toFixed(0)} ms = ${mps(mtm)}; no prefault ${mps(mtmNoPrefault)}, cluster table ${mps(mtmTable)}, counting split over 2 threads ${mps(mtmSplitCount)} (+${(splitInputCopyS * 1000).toFixed(0)} ms to share the spikes), reused output ${mps(mtmReused)}; ${inWindows} spike-window counts`);

// Where the helper thread starts to pay: the same binning on the first k trials, helper on / off.
const bySize: { trials: number; outputMiB: number; prefaultOffMs: number; prefaultOnMs: number }[] = [];
for (const trials of [10, 40, 80, 160, 640]) {
  if (trials > s.align.length) break;
  const sub = { ...base, alignTimes: s.align.subarray(0, trials) };
  const r = await interleaved({ off: () => binSpikes({ ...sub, prefault: false }), on: () => binSpikes({ ...sub, prefault: true }) }, Math.max(repeats * 4, 20));
  bySize.push({ trials, outputMiB: Number(((trials * nBins * nNeurons * 4) / 2 ** 20).toFixed(1)), prefaultOffMs: Number((r.off.bestS * 1000).toFixed(2)), prefaultOnMs: Number((r.on.bestS * 1000).toFixed(2)) });
}
console.log(`helper on/off by output size: ${bySize.map((b) => `${b.outputMiB} MiB ${b.prefaultOffMs}/${b.prefaultOnMs} ms`).join(', ')}`);
await stopPrefaultHelper();

// numpy on the same spikes, in one child process.
const dir = mkdtempSync(join(tmpdir(), 'mtm-bench-binning-'));
let numpy: { bestS: number; runsS: number[]; numpy: string; python: string } | null = null;
let countsMatch: boolean | null = null;
let numpyError: string | undefined;
try {
  await writeNpy(join(dir, 'times.npy'), s.times, [s.times.length]);
  await writeNpy(join(dir, 'clusters.npy'), s.clusters, [s.clusters.length]);
  await writeNpy(join(dir, 'align.npy'), s.align, [s.align.length]);
  const r = spawnSync(python, [join(import.meta.dirname, 'binning_numpy.py'), dir, String(nNeurons), String(windowS[0]), String(windowS[1]), String(binSizeMs), String(repeats)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${python} bench/binning_numpy.py failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  numpy = JSON.parse(r.stdout.trim().split('\n').pop()!);
  const theirs = await readNpy(join(dir, 'counts_numpy.npy'));
  const expectShape = [s.align.length, nBins, nNeurons];
  if (JSON.stringify(theirs.shape) !== JSON.stringify(expectShape)) throw new Error(`numpy counts have shape ${theirs.shape}, expected ${expectShape}`);
  countsMatch = same(counts, theirs.data as Int32Array);
  console.log(`numpy ${numpy!.numpy}: best ${(numpy!.bestS * 1000).toFixed(0)} ms = ${(s.times.length / numpy!.bestS / 1e6).toFixed(1)} M spikes/s; counts ${countsMatch ? 'identical' : 'DIFFER'}`);
} catch (e) {
  numpyError = (e as Error).message;
  console.error(`numpy side skipped: ${numpyError}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
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
  mtmNoPrefaultSpikesPerS: Math.round(s.times.length / mtmNoPrefault.bestS),
  mtmWithClusterTableSpikesPerS: Math.round(s.times.length / mtmTable.bestS),
  mtmSplitCountSpikesPerS: Math.round(s.times.length / mtmSplitCount.bestS),
  splitCountInputCopyS: Number(splitInputCopyS.toFixed(4)),
  mtmReusedOutputSpikesPerS: Math.round(mtmReusedSpikesPerS),
  numpySpikesPerS: numpySpikesPerS === null ? null : Math.round(numpySpikesPerS),
  binningVsNumpy: numpySpikesPerS === null ? null : Number((mtmSpikesPerS / numpySpikesPerS).toFixed(2)),
  binningVsNumpyNoPrefault: numpySpikesPerS === null ? null : Number((s.times.length / mtmNoPrefault.bestS / numpySpikesPerS).toFixed(2)),
  binningVsNumpyReusedOutput: numpySpikesPerS === null ? null : Number((mtmReusedSpikesPerS / numpySpikesPerS).toFixed(2)),
  countsMatch,
  prefaultMinBytes: PREFAULT_MIN_BYTES,
  prefaultBySize: bySize,
  runsS: { mtm: mtm.runsS, mtmNoPrefault: mtmNoPrefault.runsS, mtmWithClusterTable: mtmTable.runsS, mtmSplitCount: mtmSplitCount.runsS, mtmReusedOutput: mtmReused.runsS, numpy: numpy?.runsS ?? null },
  method: {
    mtm: 'core/binning/bin-spikes.ts binSpikes: one pass over sorted spikes, trials as a sliding run of open windows; the fresh counts array is a SharedArrayBuffer whose pages a helper thread (core/binning/prefault.ts) faults in from the far end while this thread counts',
    mtmNoPrefault: 'the same, counts in a plain Int32Array (every page fault on the counting thread)',
    mtmSplitCount: 'counting split over two threads by trial halves into one SharedArrayBuffer; spikes pre-copied into SharedArrayBuffers, copy time (splitCountInputCopyS) not in the figure',
    prefaultBySize: 'best time binning the first k trials with the helper off / on: where PREFAULT_MIN_BYTES comes from',
    numpy: 'bench/binning_numpy.py: searchsorted per trial window, repeat/arange spike indices, floor bin index, one bincount',
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
