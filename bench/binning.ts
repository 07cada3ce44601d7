// Binning throughput (SPEC.md §2 reference settings): our one-pass binning against numpy's
// searchsorted + bincount on the same >= 20 M spikes, both best of a few runs, I/O excluded.
// Headline: each run returns a fresh counts array on both sides (as the stage does per session).
// Also timed: counting into a reused, re-zeroed output, which shows the counting itself; fresh
// 4 KiB pages cost V8 a page fault each, where numpy asks the kernel for huge pages.
// Usage: node --import tsx bench/binning.ts [--spikes 20000000] [--repeats 5] [--python python3]
// Writes bench/results/binning.json.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, totalmem, tmpdir, platform, arch, loadavg } from 'node:os';
import { join } from 'node:path';
import { binCount, binSpikes, columnTable } from '../core/binning/bin-spikes.ts';
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

function best(fn: () => void): { bestS: number; runsS: number[] } {
  const runsS: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    fn();
    runsS.push((performance.now() - t0) / 1000);
  }
  return { bestS: Math.min(...runsS), runsS };
}

const load0 = loadavg()[0];
const t0 = performance.now();
const s = makeSession(targetSpikes);
const nBins = binCount(windowS, binSizeMs);
console.log(`session: ${s.times.length} spikes, ${nNeurons} neurons, ${s.align.length} trials x ${nBins} bins, ${s.durationS.toFixed(0)} s (made in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);

let counts: Int32Array = new Int32Array(0);
const mtm = best(() => {
  counts = binSpikes({ times: s.times, clusters: s.clusters, nNeurons, alignTimes: s.align, windowS, binSizeMs });
});
// The stage's path: cluster ids through a lookup table (ids 0..n-1 here, so the same counts).
const table = columnTable(Int32Array.from({ length: nNeurons }, (_, i) => i), Int32Array.from({ length: nNeurons }, (_, i) => i));
let counts2: Int32Array = new Int32Array(0);
const mtmTable = best(() => {
  counts2 = binSpikes({ times: s.times, clusters: s.clusters, columnOf: table, nNeurons, alignTimes: s.align, windowS, binSizeMs });
});
const reused = new Int32Array(counts.length);
const mtmReused = best(() => {
  reused.fill(0);
  binSpikes({ times: s.times, clusters: s.clusters, nNeurons, alignTimes: s.align, windowS, binSizeMs, out: reused });
});
let inWindows = 0;
for (const c of counts) inWindows += c;
const same = (a: Int32Array, b: Int32Array) => a.length === b.length && a.every((x, i) => x === b[i]);
if (!same(counts, counts2) || !same(counts, reused)) throw new Error('binning variants disagree');
const mps = (b: { bestS: number }) => `${(s.times.length / b.bestS / 1e6).toFixed(1)} M spikes/s`;
console.log(`mtm-flow: best ${(mtm.bestS * 1000).toFixed(0)} ms = ${mps(mtm)} (cluster table ${mps(mtmTable)}, reused output ${mps(mtmReused)}); ${inWindows} spike-window counts`);

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
  mtmWithClusterTableSpikesPerS: Math.round(s.times.length / mtmTable.bestS),
  mtmReusedOutputSpikesPerS: Math.round(mtmReusedSpikesPerS),
  numpySpikesPerS: numpySpikesPerS === null ? null : Math.round(numpySpikesPerS),
  binningVsNumpy: numpySpikesPerS === null ? null : Number((mtmSpikesPerS / numpySpikesPerS).toFixed(2)),
  binningVsNumpyReusedOutput: numpySpikesPerS === null ? null : Number((mtmReusedSpikesPerS / numpySpikesPerS).toFixed(2)),
  countsMatch,
  runsS: { mtm: mtm.runsS, mtmWithClusterTable: mtmTable.runsS, mtmReusedOutput: mtmReused.runsS, numpy: numpy?.runsS ?? null },
  method: {
    mtm: 'core/binning/bin-spikes.ts binSpikes: one pass over sorted spikes, trials as a sliding run of open windows',
    numpy: 'bench/binning_numpy.py: searchsorted per trial window, repeat/arange spike indices, floor bin index, one bincount',
    timing: `best of ${repeats} runs each, in-process, file I/O excluded; throughput = all session spikes / time; headline runs allocate a fresh counts array (numpy: bincount's int64 array), the reused-output runs re-zero one array inside the timer`,
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
