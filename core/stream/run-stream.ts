// Applies a trained model to a new recording read as a stream (docs/method.md §1.3): spike chunks
// -> online bins -> calibration of a fresh stitcher -> causal predictions written as they come.
//
// Output folder (every file valid while the stream runs, finalised at the end):
// - predictions.npy: float32 (bins x neurons) predicted log-rates (log spikes per bin), a row per
//   predicted bin, appended and its header's row count updated after every pass;
// - counts.npy: int32 (bins x neurons) observed counts of the same bins, same rows;
// - stream.json: neuron table (stream ids, cluster ids, probe, group), binSizeMs, startS and the
//   first predicted bin (row r is bin firstPredictedBin + r, starting at startS + bin binSizeMs),
//   the settings, calibration result and, once finished, the summary (status, bins, timings).
// Nothing grows with the recording: the binner holds the bins in flight, the predictor one
// window, calibration one bounded buffer that is freed once fitted.
import { existsSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { ArchitectureModel } from '../architecture.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import type { MaskingScheme } from '../masking/types.ts';
import * as tf from '../tensor/tf.ts';
import { CalibrationBuffer, fitStitcher, type FitStitcherResult } from './calibrate.ts';
import { OnlineBinner } from './online-binner.ts';
import { GrowingNpy } from './prediction-writer.ts';
import { createStreamPredictor } from './cached-predictor.ts';
import type { LatencyStats, PredictedBin } from './predictor.ts';
import { alfSpikeSource, phySpikeSource, syntheticSpikeSource, type SpikeSource, type StreamUnit } from './spike-chunks.ts';

export type UnitFilter = 'all' | 'good' | 'not-noise';

export interface OpenSourceOptions {
  /** Neurons of a synthetic source. */
  syntheticNeurons?: number;
  seed?: number;
  log?: (msg: string) => void;
}

/**
 * `synthetic:<minutes>` (Poisson spikes, syntheticNeurons neurons), a phy / Kilosort folder
 * (holds spike_times.npy) or an ALF session folder (holds alf/).
 */
export async function openSource(spec: string, o: OpenSourceOptions = {}): Promise<SpikeSource> {
  const syn = /^synthetic:(.*)$/.exec(spec);
  if (syn) {
    const minutes = Number(syn[1]);
    if (!(minutes > 0) || !Number.isFinite(minutes)) throw new Error(`source '${spec}': expected synthetic:<minutes> with minutes > 0`);
    return syntheticSpikeSource({ durationS: minutes * 60, nNeurons: o.syntheticNeurons ?? 100, seed: o.seed ?? 1 });
  }
  const dir = resolve(spec);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`source '${spec}': no such folder (expected a phy/Kilosort folder, an ALF session folder or synthetic:<minutes>)`);
  if (existsSync(join(dir, 'spike_times.npy'))) return phySpikeSource(dir, { log: o.log });
  if (existsSync(join(dir, 'alf'))) return alfSpikeSource(dir, { log: o.log });
  throw new Error(`source '${spec}': ${dir} holds neither spike_times.npy (phy/Kilosort) nor alf/ (ALF session)`);
}

/** The units a filter keeps: 'not-noise' drops the sorter's noise clusters, 'good' keeps only good ones. */
export function selectUnits(units: StreamUnit[], filter: UnitFilter): StreamUnit[] {
  if (filter === 'all') return units;
  if (filter === 'good') return units.filter((u) => u.group === 'good');
  return units.filter((u) => u.group !== 'noise');
}

export type CalibrationSettings =
  | { kind: 'none' }
  | { kind: 'masked'; seconds: number; steps: number; learningRate: number; batchSize: number; scheme: MaskingScheme };

export interface RunStreamOptions {
  model: ArchitectureModel;
  source: SpikeSource;
  /** Output folder; undefined writes nothing (benchmarks of the model alone). */
  out?: string;
  units?: UnitFilter;
  binSizeMs?: number;
  chunkS?: number;
  /** 1 = real time, Infinity = as fast as possible. */
  speed?: number;
  /** Stream only [startS, endS) of the source. */
  startS?: number;
  endS?: number;
  windowBins: number;
  strideBins: number;
  /**
   * 'auto' (default): at strideBins 1, predict from key/value caches where the architecture has
   * them (core/stream/cached-predictor.ts); 'off': always the windowed pass.
   */
  cache?: 'auto' | 'off';
  /** Staggered caches of the cached path (default 2). */
  caches?: number;
  calibration: CalibrationSettings;
  /** The stitcher: a session the model has (reused as is unless calibrated), else a fresh one of this id. */
  sessionId: string;
  seed?: number;
  signal?: AbortSignal;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** Every predicted bin, in order, as it is written (tests, live consumers). */
  onBin?: (b: PredictedBin) => void;
  /** Called about once per second of wall time with the bins done so far. */
  onProgress?: (p: { bins: number; totalBins: number; streamS: number; wallS: number }) => void;
  /** Extra fields for stream.json (model path, source spec). */
  describe?: Record<string, unknown>;
}

export interface StreamSummary {
  status: 'completed' | 'interrupted';
  sessionId: string;
  freshStitcher: boolean;
  nNeurons: number;
  binSizeMs: number;
  windowBins: number;
  strideBins: number;
  /** Which predictor ran: 'cached' (per-bin key/value caches) or 'windowed' (a pass over the window every stride). */
  predictor: 'cached' | 'windowed';
  /** Cached path: time to copy the weights and build the caches at the first prediction, ms. */
  predictorOpenMs?: number;
  mode: string;
  /** Bins the binner completed (calibration included) and bins predicted. */
  bins: number;
  predictedBins: number;
  firstPredictedBin: number;
  calibration: (FitStitcherResult & { bins: number }) | null;
  /** Forward-pass time per predicted bin (pass time / strideBins, averaged), ms. */
  msPerBin: number;
  /** Whole-pipeline wall time per predicted bin after calibration (spike reading, binning, passes, writing), ms. */
  wallMsPerBin: number;
  /** Time from a context bin's completion to its next strideBins predictions (the pass; cached path: per bin), ms. */
  passMs: ReturnType<LatencyStats['summary']>;
  /** Cached path with the native addon: the same passes in the stream thread's CPU time (no waiting for a core), ms. */
  passCpuMs?: ReturnType<LatencyStats['summary']>;
  streamS: number;
  wallS: number;
  /** Stream seconds per wall second. */
  realTimeFactor: number;
  /** Mean Poisson NLL (exp(x) - y x, the constant log y! left out) of the predictions against the observed counts, per entry. */
  meanPoissonNll: number;
  droppedSpikes: number;
  files?: { predictions: string; counts: string; header: string };
}

/** Streams a recording through the model; see the file comment for what it writes. */
export async function runStream(o: RunStreamOptions): Promise<StreamSummary> {
  const log = o.log ?? (() => {});
  const binSizeMs = o.binSizeMs ?? 20;
  const units = selectUnits(o.source.units, o.units ?? 'not-noise');
  if (!units.length) throw new Error(`${o.source.name}: no units left after the '${o.units ?? 'not-noise'}' filter (of ${o.source.units.length})`);
  const n = units.length;
  const startS = o.startS ?? o.source.startS;
  const model = o.model;

  const fresh = !model.hasSession(o.sessionId);
  if (fresh) {
    model.addSession({ sessionId: o.sessionId, nNeurons: n, nBins: o.windowBins, regions: units.map(() => 'unlabelled') });
  } else {
    const have = model.sessions().find((s) => s.sessionId === o.sessionId)!;
    if (have.nNeurons !== n) throw new Error(`session '${o.sessionId}' of the model reads ${have.nNeurons} neurons, the stream has ${n} (${o.source.name})`);
  }

  const binner = new OnlineBinner({ clusterIds: units.map((u) => u.id), binSizeMs, startS });
  const predictor = createStreamPredictor({ model, sessionId: o.sessionId, nNeurons: n, windowBins: o.windowBins, strideBins: o.strideBins, cache: o.cache, caches: o.caches });
  log(
    predictor.path === 'cached'
      ? `predicting every bin from ${o.caches ?? 2} staggered key/value caches (context ${predictor.contextRange.join('-')} bins)`
      : `predicting ${o.strideBins} bin(s) per windowed pass over ${o.windowBins} bins`,
    { predictor: predictor.path, contextBins: predictor.contextRange },
  );
  const cal = o.calibration;
  const calBins = cal.kind === 'masked' ? Math.round((cal.seconds * 1000) / binSizeMs) : 0;
  let calBuf: CalibrationBuffer | undefined = calBins > 0 ? new CalibrationBuffer(calBins, n) : undefined;
  let calResult: StreamSummary['calibration'] = null;

  const header: Record<string, unknown> = {
    format: 'mtm-flow-stream',
    version: 1,
    status: 'running',
    source: o.source.name,
    ...(o.describe ?? {}),
    sessionId: o.sessionId,
    freshStitcher: fresh,
    binSizeMs,
    startS,
    firstPredictedBin: calBins,
    windowBins: o.windowBins,
    strideBins: o.strideBins,
    predictor: predictor.path,
    ...(predictor.path === 'cached' ? { caches: o.caches ?? 2 } : {}),
    contextBins: predictor.contextRange,
    mode: predictor.mode,
    causalAttention: true,
    calibration: cal,
    neurons: units.map((u) => ({ id: u.id, clusterId: u.clusterId, probe: u.probe, group: u.group, ...(u.depthUm === undefined ? {} : { depthUm: u.depthUm }) })),
    files: { predictions: 'predictions.npy', counts: 'counts.npy' },
    rows: 'row r of predictions.npy and counts.npy is bin firstPredictedBin + r: [startS + (firstPredictedBin + r) binSizeMs / 1000, + binSizeMs / 1000) s',
  };
  const out = o.out ? resolve(o.out) : undefined;
  const preds = out ? new GrowingNpy(join(out, 'predictions.npy'), '<f4', n) : undefined;
  const counts = out ? new GrowingNpy(join(out, 'counts.npy'), '<i4', n) : undefined;
  const headerPath = out ? join(out, 'stream.json') : undefined;
  if (headerPath) await writeFileAtomic(headerPath, JSON.stringify(header, null, 1) + '\n');

  // Rows collect here between passes and are written together, once per stride.
  const predBuf = new Float32Array(o.strideBins * n);
  const countBuf = new Int32Array(o.strideBins * n);
  let buffered = 0;
  const flush = () => {
    if (!buffered) return;
    preds?.append(predBuf.subarray(0, buffered * n));
    counts?.append(countBuf.subarray(0, buffered * n));
    preds?.flush();
    counts?.flush();
    buffered = 0;
  };

  let bins = 0;
  let predicted = 0;
  let nllSum = 0;
  let status: StreamSummary['status'] = 'completed';
  const wallStart = performance.now();
  let predictStart = wallStart;
  let lastProgress = wallStart;
  const tensorsAtStart = tf.memory().numTensors;
  const totalBins = Math.floor((((o.endS ?? o.source.endS) - startS) * 1000) / binSizeMs);
  try {
    const chunks = o.source.chunks({ chunkS: o.chunkS ?? 0.1, speed: o.speed ?? Number.POSITIVE_INFINITY, startS, endS: o.endS, signal: o.signal });
    try {
      for await (const chunk of chunks) {
        for (const bin of binner.push(chunk)) {
          bins++;
          if (calBuf) {
            calBuf.push(bin);
            predictor.prime(bin);
            if (calBuf.full && cal.kind === 'masked') {
              log(`calibrating the stitcher on ${calBins} bins (${cal.seconds} s), ${cal.steps} steps`, { bins: calBins });
              const r = await fitStitcher(model, calBuf.counts, calBins, {
                sessionId: o.sessionId, windowBins: o.windowBins, steps: cal.steps, learningRate: cal.learningRate, batchSize: cal.batchSize, scheme: cal.scheme, seed: o.seed ?? 1, signal: o.signal,
              });
              calResult = { ...r, bins: calBins };
              predictStart = performance.now();
              calBuf = undefined;
              log(`calibrated: masked loss ${r.firstLoss.toFixed(4)} -> ${r.lastLoss.toFixed(4)} in ${r.seconds.toFixed(1)} s`, { ...r });
              if (headerPath) await writeFileAtomic(headerPath, JSON.stringify({ ...header, calibrationResult: calResult }, null, 1) + '\n');
            }
            continue;
          }
          const p = await predictor.push(bin);
          for (let i = 0; i < n; i++) nllSum += Math.exp(p.logRates[i]) - p.counts[i] * p.logRates[i];
          predBuf.set(p.logRates, buffered * n);
          countBuf.set(p.counts, buffered * n);
          buffered++;
          predicted++;
          o.onBin?.(p);
          if (p.horizonBins === o.strideBins) flush();
        }
        const now = performance.now();
        if (o.onProgress && now - lastProgress > 1000) {
          lastProgress = now;
          o.onProgress({ bins, totalBins, streamS: (bins * binSizeMs) / 1000, wallS: (now - wallStart) / 1000 });
        }
      }
    } catch (e) {
      if (!o.signal?.aborted) throw e;
      status = 'interrupted';
    }
    flush();
  } finally {
    preds?.close();
    counts?.close();
    predictor.dispose();
  }
  if (calBuf) log(`the stream ended after ${calBuf.filled} of ${calBins} calibration bins: nothing was predicted`);
  const wallS = (performance.now() - wallStart) / 1000;
  const leaked = tf.memory().numTensors - tensorsAtStart;
  if (leaked !== 0) log(`tensor count changed by ${leaked} over the stream`, { leaked });
  const streamS = (bins * binSizeMs) / 1000;
  const summary: StreamSummary = {
    status,
    sessionId: o.sessionId,
    freshStitcher: fresh,
    nNeurons: n,
    binSizeMs,
    windowBins: o.windowBins,
    strideBins: o.strideBins,
    predictor: predictor.path,
    ...('openMs' in predictor ? { predictorOpenMs: predictor.openMs as number } : {}),
    mode: predictor.mode,
    bins,
    predictedBins: predicted,
    firstPredictedBin: calBins,
    calibration: calResult,
    msPerBin: predicted ? predictor.passes.sumMs / predicted : NaN,
    wallMsPerBin: predicted ? (performance.now() - predictStart) / predicted : NaN,
    passMs: predictor.passes.summary(),
    ...('cpuPasses' in predictor && predictor.cpuPasses ? { passCpuMs: (predictor.cpuPasses as LatencyStats).summary() } : {}),
    streamS,
    wallS,
    realTimeFactor: wallS > 0 ? streamS / wallS : NaN,
    meanPoissonNll: predicted ? nllSum / (predicted * n) : NaN,
    droppedSpikes: binner.dropped,
  };
  if (out && headerPath) {
    summary.files = { predictions: join(out, 'predictions.npy'), counts: join(out, 'counts.npy'), header: headerPath };
    await writeFileAtomic(headerPath, JSON.stringify({ ...header, status, calibrationResult: calResult, summary }, null, 1) + '\n');
  }
  return summary;
}

/** The window the model was trained on: its longest session's bins, within its position embedding. */
export function trainingWindowBins(model: Pick<ArchitectureModel, 'sessions' | 'capabilities'>): number {
  const lengths = model.sessions().map((s) => s.nBins);
  const maxBins = model.capabilities.maxBins;
  const w = lengths.length ? Math.max(...lengths) : maxBins;
  return Math.min(w, maxBins);
}

/** A stitcher id for a recording: 'stream:<folder or source name>'. */
export function streamSessionId(source: SpikeSource): string {
  return `stream:${basename(source.name)}`;
}
