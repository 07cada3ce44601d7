// Streaming benchmark (docs/method.md §1.3; results: docs/performance.md §7): a simulated recording
// streamed at full speed through an NDT1 of the default config, two ways:
// - perBin: a prediction every bin (stride 1) from the staggered key/value caches
//   (core/stream/cached-predictor.ts), at 1,000 and 5,000 neurons (the latter the size of several
//   probes streamed as one): latency from a bin's completion to the next bin's prediction (p50,
//   p99; goal p99 < 2 ms at 1,000 and < 8 ms at 5,000 neurons), whole-pipeline time per bin, and
//   resident and heap memory sampled over the stream with their slope (flat = no growth).
// - windowed: one 100-bin pass every 10 bins (the path before the caches), at 300 and 1,000
//   neurons: pass time per predicted bin (goal < 2 ms), pass latency, memory.
// Each (path, neuron count) runs in its own process so its peak RSS is its own. Predictions and
// counts are written (as `mtm stream` does) to a temporary folder, removed afterwards. The load
// average is recorded at the start and end of each run, and the run's CPU time over its wall time
// (about 1 when it had a core to itself; the stream is single-threaded): on a shared machine the
// latencies are upper bounds.
// Usage: node --import tsx bench/streaming.ts [--minutes 60] [--only perBin|windowed]
//   [--per-bin-neurons 1000,5000] [--neurons 300,1000] [--stride 10] [--calibrate] [--no-write]
// --only keeps the other part from the existing bench/results/streaming.json (with its own date);
// per-bin rows of neuron counts not rerun are kept too.
// Writes bench/results/streaming.json.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { arch, cpus, loadavg, platform, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/io/atomic.ts';
import { ndt1Architecture } from '../plugins/ndt1/architecture.ts';
import { initBackend } from '../core/tensor/backend.ts';
import { runStream, type CalibrationSettings } from '../core/stream/run-stream.ts';
import { syntheticSpikeSource } from '../core/stream/spike-chunks.ts';
import { tokenMathReason } from '../core/stream/token-math.ts';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
};
const flag = (name: string) => process.argv.includes(`--${name}`);
const minutes = Number(arg('minutes', '60'));
const windowedStride = Number(arg('stride', '10'));
const windowBins = 100;
const binSizeMs = 20;
const caches = 2;
const masked: CalibrationSettings = { kind: 'masked', seconds: 60, steps: 100, learningRate: 3e-3, batchSize: 8, scheme: 'causal' };
const RESULT = join(import.meta.dirname, 'results', 'streaming.json');

type Path = 'perBin' | 'windowed';

/** One (path, neuron count), in this process: prints its result as one JSON line. */
async function child(path: Path, nNeurons: number): Promise<void> {
  const backend = await initBackend();
  const model = ndt1Architecture.build({}, { sessions: [{ sessionId: 'pretrained', nNeurons: 64, nBins: windowBins }], seed: 1 });
  const source = syntheticSpikeSource({ durationS: minutes * 60, nNeurons, seed: 11 });
  const write = !flag('no-write');
  const out = write ? mkdtempSync(join(tmpdir(), 'mtm-bench-stream-')) : undefined;
  // The windowed rows keep their calibration (as before); the per-bin rows skip it unless asked:
  // its fit does not change what a bin costs, and at 5,000 neurons it is minutes of its own.
  const calibration: CalibrationSettings = path === 'windowed' || flag('calibrate') ? masked : { kind: 'none' };
  const calBins = calibration.kind === 'masked' ? calibration.seconds * (1000 / binSizeMs) : 0;
  const lastBin = Math.floor((minutes * 60 * 1000) / binSizeMs) - 1;
  const samples: { streamMin: number; rssMb: number; heapMb: number; externalMb: number }[] = [];
  const every = Math.max(1, Math.round(((minutes >= 30 ? 5 : minutes >= 5 ? 1 : 0.25) * 60 * 1000) / binSizeMs));
  const sample = (bin: number) => {
    const m = process.memoryUsage();
    samples.push({ streamMin: (bin * binSizeMs) / 60000, rssMb: m.rss / 2 ** 20, heapMb: m.heapUsed / 2 ** 20, externalMb: (m.external + m.arrayBuffers) / 2 ** 20 });
  };
  const loadStart = loadavg()[0];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    const s = await runStream({
      model, source, out, windowBins, strideBins: path === 'perBin' ? 1 : windowedStride, cache: 'auto', caches, calibration, sessionId: 'stream:bench', seed: 1,
      onBin: (b) => {
        // The last sample is the stream's last bin, taken while the predictor still holds its
        // weights and caches (after runStream they are released, which is not flat memory either).
        if (b.binIndex % every === 0 || b.binIndex === calBins || b.binIndex === lastBin) sample(b.binIndex + 1);
      },
    });
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    // Least-squares slope against stream time after the first sixth of the stream (10 min of an
    // hour: warm-up, allocator settling); RSS saws with garbage collection, so end points mislead.
    const slope = (key: 'rssMb' | 'heapMb') => {
      const late = samples.filter((r) => r.streamMin >= minutes / 6);
      const mx = late.reduce((a, r) => a + r.streamMin, 0) / late.length;
      const my = late.reduce((a, r) => a + r[key], 0) / late.length;
      const sxx = late.reduce((a, r) => a + (r.streamMin - mx) ** 2, 0);
      return late.length >= 3 && sxx > 0 ? (late.reduce((a, r) => a + (r.streamMin - mx) * (r[key] - my), 0) / sxx) * 60 : NaN;
    };
    const late = samples.filter((r) => r.streamMin >= minutes / 6);
    const range = (key: 'rssMb' | 'heapMb') => (late.length ? [round(Math.min(...late.map((r) => r[key])), 1), round(Math.max(...late.map((r) => r[key])), 1)] : null);
    const result = {
      nNeurons,
      predictor: s.predictor,
      ...(s.predictor === 'cached' ? { caches, contextBins: [windowBins - 1 - Math.round((windowBins - 1) / caches) + 1, windowBins - 1], tokenKernels: tokenMathReason(), predictorOpenMs: round(s.predictorOpenMs ?? NaN, 1) } : {}),
      backend: backend.name,
      strideBins: s.strideBins,
      streamedMinutes: round(s.streamS / 60, 2),
      bins: s.bins,
      predictedBins: s.predictedBins,
      msPerBin: round(s.msPerBin, 4),
      wallMsPerBin: round(s.wallMsPerBin, 4),
      passMs: Object.fromEntries(Object.entries(s.passMs).map(([k, v]) => [k, round(v, 3)])),
      ...(s.passCpuMs ? { passCpuMs: Object.fromEntries(Object.entries(s.passCpuMs).map(([k, v]) => [k, round(v, 3)])) } : {}),
      realTimeFactor: round(s.realTimeFactor, 1),
      wallS: round(wall, 1),
      cpuPerWall: round((cpu.user + cpu.system) / 1e6 / wall, 2),
      calibration: calibration.kind,
      calibrationSeconds: s.calibration ? round(s.calibration.seconds, 2) : null,
      calibrationLoss: s.calibration ? [round(s.calibration.firstLoss, 4), round(s.calibration.lastLoss, 4)] : null,
      wroteFiles: write,
      peakRssMb: round(process.resourceUsage().maxRSS / 1024, 1),
      memorySamplesMb: samples.map((r) => ({ streamMin: round(r.streamMin, 2), rss: round(r.rssMb, 1), heap: round(r.heapMb, 1), external: round(r.externalMb, 1) })),
      rssSlopeMbPerHour: round(slope('rssMb'), 2),
      heapSlopeMbPerHour: round(slope('heapMb'), 2),
      rssRangeAfterWarmupMb: range('rssMb'),
      heapRangeAfterWarmupMb: range('heapMb'),
      modelParams: model.paramCount(),
      loadAverage: [round(loadStart, 2), round(loadavg()[0], 2)],
      date: new Date().toISOString(),
    };
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  } finally {
    model.dispose();
    if (out) rmSync(out, { recursive: true, force: true });
  }
}

function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

function runChild(path: Path, n: number): Record<string, unknown> {
  console.log(`${path}: streaming ${minutes} min of ${n} neurons (load average ${loadavg()[0].toFixed(2)})...`);
  const args = ['--import', 'tsx', import.meta.filename, '--child', String(n), '--path', path, '--minutes', String(minutes), '--stride', String(windowedStride)];
  if (flag('calibrate')) args.push('--calibrate');
  if (flag('no-write')) args.push('--no-write');
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (r.status !== 0 || !line) {
    process.stderr.write(r.stderr);
    throw new Error(`bench child (${path}, ${n} neurons) failed (exit ${r.status})`);
  }
  const res = JSON.parse(line.slice(7));
  const p = res.passMs;
  console.log(
    `  ${res.predictor}: per pass p50 ${p.p50Ms} ms, p99 ${p.p99Ms} ms, max ${p.maxMs} ms` +
      (res.passCpuMs ? ` (CPU time p50 ${res.passCpuMs.p50Ms}, p99 ${res.passCpuMs.p99Ms}, max ${res.passCpuMs.maxMs})` : '') +
      `; ${res.msPerBin} ms/bin in passes, ${res.wallMsPerBin} ms/bin whole pipeline; ` +
      `peak RSS ${res.peakRssMb} MB, RSS slope ${res.rssSlopeMbPerHour} MB/h, heap slope ${res.heapSlopeMbPerHour} MB/h; load ${res.loadAverage.join(' -> ')}, CPU/wall ${res.cpuPerWall}`,
  );
  return res;
}

/** The part of an earlier result file that is not rerun (older files have the windowed rows at the top level). */
function previous(part: Path): unknown {
  if (!existsSync(RESULT)) return null;
  const old = JSON.parse(readFileSync(RESULT, 'utf8'));
  if (old[part]) return old[part];
  if (part === 'windowed' && old.byNeurons) {
    const { what, minutes, binSizeMs, windowBins, strideBins, calibration, goalMsPerBin, msPerBinMeans, wallMsPerBinMeans, passLatencyMeans, byNeurons, machine, date } = old;
    return { what, minutes, binSizeMs, windowBins, strideBins, calibration, goalMsPerBin, msPerBinMeans, wallMsPerBinMeans, passLatencyMeans, byNeurons, machine, date };
  }
  return null;
}

async function main(): Promise<void> {
  const only = arg('only', '') as Path | '';
  if (only && only !== 'perBin' && only !== 'windowed') throw new Error(`--only perBin or --only windowed, got ${only}`);
  const machine = { platform: platform(), arch: arch(), cpus: cpus().length, cpuModel: cpus()[0]?.model, memGb: round(totalmem() / 2 ** 30, 1), node: process.versions.node };
  const date = new Date().toISOString();
  let perBin: unknown = previous('perBin');
  let windowed: unknown = previous('windowed');
  if (only !== 'windowed') {
    // Rows not rerun (a --per-bin-neurons subset) stay from the previous results, each with its own date.
    const byNeurons: Record<string, unknown> = { ...((perBin as { byNeurons?: Record<string, unknown> } | null)?.byNeurons ?? {}) };
    for (const n of arg('per-bin-neurons', '1000,5000').split(',').map(Number)) byNeurons[String(n)] = runChild('perBin', n);
    perBin = {
      what: 'a prediction every bin (stride 1) from 2 staggered key/value caches of a 100-bin window, NDT1 default config',
      minutes, binSizeMs, windowBins, strideBins: 1, caches,
      goalP99Ms: { 1000: 2, 5000: 8 },
      passLatencyMeans: "passMs: from a bin's completion to the next bin's prediction being ready (the bin appended to both caches, then one query token), wall clock; one sample per bin. passCpuMs: the same in the stream thread's CPU time, i.e. without the time the thread waited for a core (the stream is single-threaded)",
      msPerBinMeans: 'mean of passMs',
      wallMsPerBinMeans: 'whole pipeline per bin: spike generation, online binning, the pass, writing predictions.npy and counts.npy',
      memoryMeans: 'memorySamplesMb: process RSS, V8 heap used, and external + ArrayBuffer memory (the weight copies and caches) during the stream; slopes are least-squares fits after the first sixth of the stream',
      byNeurons, machine, date,
    };
  }
  if (only !== 'perBin') {
    const byNeurons: Record<string, unknown> = {};
    for (const n of arg('neurons', '300,1000').split(',').map(Number)) byNeurons[String(n)] = runChild('windowed', n);
    windowed = {
      what: 'one causal forward pass of a 100-bin window every strideBins bins (the last strideBins zeroed), NDT1 default config, calibrated fresh stitcher',
      minutes, binSizeMs, windowBins, strideBins: windowedStride, calibration: masked, goalMsPerBin: 2,
      msPerBinMeans: 'forward-pass time / predicted bins (one pass of windowBins bins every strideBins bins)',
      wallMsPerBinMeans: 'whole pipeline per bin: spike generation, online binning, passes, writing predictions.npy and counts.npy',
      passLatencyMeans: "passMs: time from a context bin's completion to the next strideBins predictions being ready; the predicted bins have not started yet",
      byNeurons, machine, date,
    };
  }
  const result = {
    what: 'simulated recordings streamed at full speed through NDT1 (default config: dModel 64, layers 2, heads 4, mlpDim 128, embedHiddenFactor 2) with causal forward prediction',
    perBin,
    windowed,
    machine,
    date,
  };
  await writeFileAtomic(RESULT, JSON.stringify(result, null, 2) + '\n');
  console.log('wrote bench/results/streaming.json');
}

const childArg = arg('child', '');
if (childArg) await child(arg('path', 'perBin') as Path, Number(childArg));
else await main();
