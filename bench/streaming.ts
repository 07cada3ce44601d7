// Streaming benchmark (docs/method.md §1.3; results: docs/performance.md §7): a simulated one-hour recording streamed at
// full speed through an NDT1 of the default config, at 300 and 1,000 neurons: forward-pass time
// per 20 ms bin (msPerBin, goal < 2 ms = 10 % of real time), pass latency, whole-pipeline time per
// bin, and peak resident memory with its slope over the hour. Each neuron count runs in its own
// process so peakRssMb is that run's alone. Predictions and counts are written (as `mtm stream`
// does) to a temporary folder, removed afterwards.
// Usage: node --import tsx bench/streaming.ts [--minutes 60] [--neurons 300,1000] [--stride 10]
// Writes bench/results/streaming.json.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { arch, cpus, loadavg, platform, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/io/atomic.ts';
import { ndt1Architecture } from '../plugins/ndt1/architecture.ts';
import { initBackend } from '../core/tensor/backend.ts';
import { runStream } from '../core/stream/run-stream.ts';
import { syntheticSpikeSource } from '../core/stream/spike-chunks.ts';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
};
const minutes = Number(arg('minutes', '60'));
const strideBins = Number(arg('stride', '10'));
const windowBins = 100;
const binSizeMs = 20;
const calibration = { kind: 'masked' as const, seconds: 60, steps: 100, learningRate: 3e-3, batchSize: 8, scheme: 'causal' as const };

/** One neuron count, in this process: prints its result as one JSON line. */
async function child(nNeurons: number): Promise<void> {
  const backend = await initBackend();
  const model = ndt1Architecture.build({}, { sessions: [{ sessionId: 'pretrained', nNeurons: 64, nBins: windowBins }], seed: 1 });
  const source = syntheticSpikeSource({ durationS: minutes * 60, nNeurons, seed: 11 });
  const out = mkdtempSync(join(tmpdir(), 'mtm-bench-stream-'));
  const rss: { streamMin: number; rssMb: number }[] = [];
  const every = Math.round((5 * 60 * 1000) / binSizeMs);
  try {
    const s = await runStream({
      model, source, out, windowBins, strideBins, calibration, sessionId: 'stream:bench', seed: 1,
      onBin: (b) => {
        if (b.binIndex % every === 0 || b.binIndex === calibration.seconds * (1000 / binSizeMs)) rss.push({ streamMin: (b.binIndex * binSizeMs) / 60000, rssMb: process.memoryUsage().rss / 2 ** 20 });
      },
    });
    rss.push({ streamMin: (s.bins * binSizeMs) / 60000, rssMb: process.memoryUsage().rss / 2 ** 20 });
    // Least-squares slope of RSS against stream time after the first 10 minutes (warm-up,
    // allocator settling): RSS saws up and down with garbage collection, so two end points mislead.
    const late = rss.filter((r) => r.streamMin >= 10);
    const mx = late.reduce((a, r) => a + r.streamMin, 0) / late.length;
    const my = late.reduce((a, r) => a + r.rssMb, 0) / late.length;
    const sxx = late.reduce((a, r) => a + (r.streamMin - mx) ** 2, 0);
    const slope = late.length >= 3 && sxx > 0 ? (late.reduce((a, r) => a + (r.streamMin - mx) * (r.rssMb - my), 0) / sxx) * 60 : NaN;
    const result = {
      nNeurons,
      backend: backend.name,
      streamedMinutes: s.streamS / 60,
      bins: s.bins,
      predictedBins: s.predictedBins,
      msPerBin: round(s.msPerBin, 4),
      wallMsPerBin: round(s.wallMsPerBin, 4),
      passMs: Object.fromEntries(Object.entries(s.passMs).map(([k, v]) => [k, round(v, 3)])),
      realTimeFactor: round(s.realTimeFactor, 1),
      wallS: round(s.wallS, 1),
      calibrationSeconds: round(s.calibration?.seconds ?? NaN, 2),
      calibrationLoss: s.calibration ? [round(s.calibration.firstLoss, 4), round(s.calibration.lastLoss, 4)] : null,
      peakRssMb: round(process.resourceUsage().maxRSS / 1024, 1),
      rssSamplesMb: rss.map((r) => ({ streamMin: round(r.streamMin, 1), rssMb: round(r.rssMb, 1) })),
      rssSlopeMbPerHour: round(slope, 2),
      rssRangeAfter10MinMb: late.length ? [round(Math.min(...late.map((r) => r.rssMb)), 1), round(Math.max(...late.map((r) => r.rssMb)), 1)] : null,
      modelParams: model.paramCount(),
    };
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  } finally {
    model.dispose();
    rmSync(out, { recursive: true, force: true });
  }
}

function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

async function main(): Promise<void> {
  const counts = arg('neurons', '300,1000').split(',').map(Number);
  const byNeurons: Record<string, unknown> = {};
  for (const n of counts) {
    const load = loadavg()[0];
    console.log(`streaming ${minutes} min of ${n} neurons (load average ${load.toFixed(2)})...`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--child', String(n), '--minutes', String(minutes), '--stride', String(strideBins)], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (r.status !== 0 || !line) {
      process.stderr.write(r.stderr);
      throw new Error(`bench child for ${n} neurons failed (exit ${r.status})`);
    }
    const res = JSON.parse(line.slice(7));
    byNeurons[String(n)] = { ...res, loadAverageAtStart: round(load, 2) };
    console.log(`  ${res.msPerBin} ms/bin (passes p50 ${res.passMs.p50Ms} ms, p99 ${res.passMs.p99Ms} ms), ${res.wallMsPerBin} ms/bin whole pipeline, ${res.realTimeFactor}x real time, peak RSS ${res.peakRssMb} MB, RSS ${res.rssRangeAfter10MinMb?.join('-')} MB after 10 min, slope ${res.rssSlopeMbPerHour} MB/h`);
  }
  const result = {
    what: 'simulated recording streamed at full speed through NDT1 (default config) with causal forward prediction',
    minutes,
    binSizeMs,
    windowBins,
    strideBins,
    calibration,
    goalMsPerBin: 2,
    model: { architecture: 'ndt1', config: 'defaults (dModel 64, layers 2, heads 4, mlpDim 128, embedHiddenFactor 2)' },
    msPerBinMeans: 'forward-pass time / predicted bins (one pass of windowBins bins every strideBins bins)',
    wallMsPerBinMeans: 'whole pipeline per bin: spike generation, online binning, passes, writing predictions.npy and counts.npy',
    passLatencyMeans: "passMs: time from a context bin's completion to the next strideBins predictions being ready; the predicted bins have not started yet",
    byNeurons,
    machine: { platform: platform(), arch: arch(), cpus: cpus().length, cpuModel: cpus()[0]?.model, memGb: round(totalmem() / 2 ** 30, 1), node: process.versions.node },
    date: new Date().toISOString(),
  };
  await writeFileAtomic(join(import.meta.dirname, 'results', 'streaming.json'), JSON.stringify(result, null, 2) + '\n');
  console.log('wrote bench/results/streaming.json');
}

const childArg = arg('child', '');
if (childArg) await child(Number(childArg));
else await main();
