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
import { OnlineBinner, type Bin } from './online-binner.ts';
import { GrowingNpy } from './prediction-writer.ts';
import { createStreamPredictor, type StreamPredictor } from './cached-predictor.ts';
import type { LatencyStats, PredictedBin } from './predictor.ts';
import { alfSpikeSource, phySpikeSource, syntheticSpikeSource, type SpikeSource, type StreamUnit } from './spike-chunks.ts';
import { UNLISTED } from './kilosort.ts';

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

/**
 * The units a filter keeps: 'not-noise' drops the sorter's noise clusters and the clusters no
 * table lists (group 'unlisted': nothing vouches for them), 'good' keeps only good ones.
 */
export function selectUnits(units: StreamUnit[], filter: UnitFilter): StreamUnit[] {
  if (filter === 'all') return units;
  if (filter === 'good') return units.filter((u) => u.group === 'good');
  return units.filter((u) => u.group !== 'noise' && u.group !== UNLISTED);
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
  const units = streamUnits(o.source, o.units ?? 'not-noise');
  const n = units.length;
  const startS = o.startS ?? o.source.startS;
  const fresh = attachStitcher(o.model, o.sessionId, n, o.windowBins, o.source.name);

  const binner = new OnlineBinner({ clusterIds: units.map((u) => u.id), binSizeMs, startS });
  const predictor = createStreamPredictor({ model: o.model, sessionId: o.sessionId, nNeurons: n, windowBins: o.windowBins, strideBins: o.strideBins, cache: o.cache, caches: o.caches });
  logPredictor(log, predictor, o);
  const calBins = o.calibration.kind === 'masked' ? Math.round((o.calibration.seconds * 1000) / binSizeMs) : 0;
  const calBuf = calBins > 0 ? new CalibrationBuffer(calBins, n) : undefined;
  const header = streamHeader(o, { fresh, binSizeMs, startS, calBins, predictor, units });
  const files = await StreamFiles.open(o.out, n, o.strideBins, header);

  const wallStart = performance.now();
  const tally: StreamTally = { bins: 0, predicted: 0, nllSum: 0, calBuf, calResult: null, predictStart: wallStart, lastProgress: wallStart };
  const tensorsAtStart = tf.memory().numTensors;
  const parts: StreamParts = { o, log, n, binSizeMs, startS, calBins, binner, predictor, files, wallStart };
  const status = await pumpStream(parts, tally);

  if (tally.calBuf) log(`the stream ended after ${tally.calBuf.filled} of ${calBins} calibration bins: nothing was predicted`);
  const wallS = (performance.now() - wallStart) / 1000;
  const leaked = tf.memory().numTensors - tensorsAtStart;
  if (leaked !== 0) log(`tensor count changed by ${leaked} over the stream`, { leaked });
  const summary = streamSummary(parts, tally, { status, fresh, wallS });
  if (files.headerPath) {
    summary.files = files.paths();
    await files.writeHeader({ status, calibrationResult: tally.calResult, summary });
  }
  return summary;
}

/** The source's units that pass the filter; none left is an error. */
function streamUnits(source: SpikeSource, filter: UnitFilter): StreamUnit[] {
  const units = selectUnits(source.units, filter);
  if (!units.length) throw new Error(`${source.name}: no units left after the '${filter}' filter (of ${source.units.length})`);
  return units;
}

/** Adds a fresh stitcher for the session, or checks the model's own reads as many neurons; true when fresh. */
function attachStitcher(model: ArchitectureModel, sessionId: string, n: number, windowBins: number, sourceName: string): boolean {
  const fresh = !model.hasSession(sessionId);
  if (fresh) {
    model.addSession({ sessionId, nNeurons: n, nBins: windowBins, regions: Array.from({ length: n }, () => 'unlabelled') });
  } else {
    const have = model.sessions().find((s) => s.sessionId === sessionId)!;
    if (have.nNeurons !== n) throw new Error(`session '${sessionId}' of the model reads ${have.nNeurons} neurons, the stream has ${n} (${sourceName})`);
  }
  return fresh;
}

/** Says which predictor runs and over what context. */
function logPredictor(log: NonNullable<RunStreamOptions['log']>, predictor: StreamPredictor, o: RunStreamOptions): void {
  log(
    predictor.path === 'cached'
      ? `predicting every bin from ${o.caches ?? 2} staggered key/value caches (context ${predictor.contextRange.join('-')} bins)`
      : `predicting ${o.strideBins} bin(s) per windowed pass over ${o.windowBins} bins`,
    { predictor: predictor.path, contextBins: predictor.contextRange },
  );
}

/** stream.json while the stream runs (see the file comment). */
function streamHeader(
  o: RunStreamOptions,
  s: { fresh: boolean; binSizeMs: number; startS: number; calBins: number; predictor: StreamPredictor; units: StreamUnit[] },
): Record<string, unknown> {
  return {
    format: 'mtm-flow-stream',
    version: 1,
    status: 'running',
    source: o.source.name,
    ...(o.describe ?? {}),
    sessionId: o.sessionId,
    freshStitcher: s.fresh,
    binSizeMs: s.binSizeMs,
    startS: s.startS,
    firstPredictedBin: s.calBins,
    windowBins: o.windowBins,
    strideBins: o.strideBins,
    predictor: s.predictor.path,
    ...(s.predictor.path === 'cached' ? { caches: o.caches ?? 2 } : {}),
    contextBins: s.predictor.contextRange,
    mode: s.predictor.mode,
    causalAttention: true,
    calibration: o.calibration,
    neurons: s.units.map((u) => ({ id: u.id, clusterId: u.clusterId, probe: u.probe, group: u.group, ...(u.depthUm === undefined ? {} : { depthUm: u.depthUm }) })),
    files: { predictions: 'predictions.npy', counts: 'counts.npy' },
    rows: 'row r of predictions.npy and counts.npy is bin firstPredictedBin + r: [startS + (firstPredictedBin + r) binSizeMs / 1000, + binSizeMs / 1000) s',
  };
}

/**
 * The output folder (or none: then rows are only counted). Rows collect here between passes and
 * are written together, once per stride.
 */
class StreamFiles {
  private readonly predBuf: Float32Array;
  private readonly countBuf: Int32Array;
  private buffered = 0;

  private constructor(
    private readonly n: number,
    strideBins: number,
    private readonly header: Record<string, unknown>,
    private readonly out?: string,
    private readonly preds?: GrowingNpy,
    private readonly counts?: GrowingNpy,
    readonly headerPath?: string,
  ) {
    this.predBuf = new Float32Array(strideBins * n);
    this.countBuf = new Int32Array(strideBins * n);
  }

  /** Creates the two .npy files and writes the running header. */
  static async open(outOption: string | undefined, n: number, strideBins: number, header: Record<string, unknown>): Promise<StreamFiles> {
    const out = outOption ? resolve(outOption) : undefined;
    const preds = out ? new GrowingNpy(join(out, 'predictions.npy'), '<f4', n) : undefined;
    const counts = out ? new GrowingNpy(join(out, 'counts.npy'), '<i4', n) : undefined;
    const headerPath = out ? join(out, 'stream.json') : undefined;
    const files = new StreamFiles(n, strideBins, header, out, preds, counts, headerPath);
    if (headerPath) await files.writeHeader({});
    return files;
  }

  /** stream.json: the running header with `extra` over it. */
  async writeHeader(extra: Record<string, unknown>): Promise<void> {
    if (this.headerPath) await writeFileAtomic(this.headerPath, JSON.stringify({ ...this.header, ...extra }, null, 1) + '\n');
  }

  add(p: PredictedBin): void {
    this.predBuf.set(p.logRates, this.buffered * this.n);
    this.countBuf.set(p.counts, this.buffered * this.n);
    this.buffered++;
  }

  flush(): void {
    if (!this.buffered) return;
    this.preds?.append(this.predBuf.subarray(0, this.buffered * this.n));
    this.counts?.append(this.countBuf.subarray(0, this.buffered * this.n));
    this.preds?.flush();
    this.counts?.flush();
    this.buffered = 0;
  }

  close(): void {
    this.preds?.close();
    this.counts?.close();
  }

  paths(): NonNullable<StreamSummary['files']> {
    return { predictions: join(this.out!, 'predictions.npy'), counts: join(this.out!, 'counts.npy'), header: this.headerPath! };
  }
}

/** What the stream's parts are, fixed for its length. */
interface StreamParts {
  o: RunStreamOptions;
  log: NonNullable<RunStreamOptions['log']>;
  n: number;
  binSizeMs: number;
  startS: number;
  calBins: number;
  binner: OnlineBinner;
  predictor: StreamPredictor;
  files: StreamFiles;
  wallStart: number;
}

/** What the stream counts as it goes. */
interface StreamTally {
  bins: number;
  predicted: number;
  /** Sum of exp(x) - y x over every predicted entry. */
  nllSum: number;
  /** Set until calibration is fitted. */
  calBuf: CalibrationBuffer | undefined;
  calResult: StreamSummary['calibration'];
  /** When prediction began (calibration done), for wallMsPerBin. */
  predictStart: number;
  lastProgress: number;
}

/** Reads the source chunk by chunk through the binner to the end (or the abort); closes the files and the predictor. */
async function pumpStream(p: StreamParts, t: StreamTally): Promise<StreamSummary['status']> {
  const { o } = p;
  let status: StreamSummary['status'] = 'completed';
  const totalBins = Math.floor((((o.endS ?? o.source.endS) - p.startS) * 1000) / p.binSizeMs);
  try {
    const chunks = o.source.chunks({ chunkS: o.chunkS ?? 0.1, speed: o.speed ?? Number.POSITIVE_INFINITY, startS: p.startS, endS: o.endS, signal: o.signal });
    try {
      for await (const chunk of chunks) {
        for (const bin of p.binner.push(chunk)) await takeBin(p, t, bin);
        reportProgress(p, t, totalBins);
      }
    } catch (e) {
      if (!o.signal?.aborted) throw e;
      status = 'interrupted';
    }
    p.files.flush();
  } finally {
    p.files.close();
    p.predictor.dispose();
  }
  return status;
}

/** One completed bin: into calibration while it fills, else predicted, scored and written. */
async function takeBin(p: StreamParts, t: StreamTally, bin: Bin): Promise<void> {
  t.bins++;
  if (t.calBuf) {
    await calibrationBin(p, t, t.calBuf, bin);
    return;
  }
  const pred = await p.predictor.push(bin);
  for (let i = 0; i < p.n; i++) t.nllSum += Math.exp(pred.logRates[i]) - pred.counts[i] * pred.logRates[i];
  p.files.add(pred);
  t.predicted++;
  p.o.onBin?.(pred);
  if (pred.horizonBins === p.o.strideBins) p.files.flush();
}

/** A calibration bin primes the predictor; the last one fits the stitcher and records the result in stream.json. */
async function calibrationBin(p: StreamParts, t: StreamTally, calBuf: CalibrationBuffer, bin: Bin): Promise<void> {
  const { o, log, calBins } = p;
  const cal = o.calibration;
  calBuf.push(bin);
  p.predictor.prime(bin);
  if (!calBuf.full || cal.kind !== 'masked') return;
  log(`calibrating the stitcher on ${calBins} bins (${cal.seconds} s), ${cal.steps} steps`, { bins: calBins });
  const r = await fitStitcher(o.model, calBuf.counts, calBins, {
    sessionId: o.sessionId, windowBins: o.windowBins, steps: cal.steps, learningRate: cal.learningRate, batchSize: cal.batchSize, scheme: cal.scheme, seed: o.seed ?? 1, signal: o.signal,
  });
  t.calResult = { ...r, bins: calBins };
  t.predictStart = performance.now();
  t.calBuf = undefined;
  log(`calibrated: masked loss ${r.firstLoss.toFixed(4)} -> ${r.lastLoss.toFixed(4)} in ${r.seconds.toFixed(1)} s`, { ...r });
  await p.files.writeHeader({ calibrationResult: t.calResult });
}

/** onProgress about once per second of wall time. */
function reportProgress(p: StreamParts, t: StreamTally, totalBins: number): void {
  const now = performance.now();
  if (p.o.onProgress && now - t.lastProgress > 1000) {
    t.lastProgress = now;
    p.o.onProgress({ bins: t.bins, totalBins, streamS: (t.bins * p.binSizeMs) / 1000, wallS: (now - p.wallStart) / 1000 });
  }
}

/** The summary: counts, timings and the fit of the predictions, from the tally. */
function streamSummary(p: StreamParts, t: StreamTally, s: { status: StreamSummary['status']; fresh: boolean; wallS: number }): StreamSummary {
  const { o, predictor, n } = p;
  const { predicted } = t;
  const { wallS } = s;
  const streamS = (t.bins * p.binSizeMs) / 1000;
  return {
    status: s.status,
    sessionId: o.sessionId,
    freshStitcher: s.fresh,
    nNeurons: n,
    binSizeMs: p.binSizeMs,
    windowBins: o.windowBins,
    strideBins: o.strideBins,
    predictor: predictor.path,
    ...('openMs' in predictor ? { predictorOpenMs: predictor.openMs as number } : {}),
    mode: predictor.mode,
    bins: t.bins,
    predictedBins: predicted,
    firstPredictedBin: p.calBins,
    calibration: t.calResult,
    msPerBin: predicted ? predictor.passes.sumMs / predicted : NaN,
    wallMsPerBin: predicted ? (performance.now() - t.predictStart) / predicted : NaN,
    passMs: predictor.passes.summary(),
    ...('cpuPasses' in predictor && predictor.cpuPasses ? { passCpuMs: (predictor.cpuPasses as LatencyStats).summary() } : {}),
    streamS,
    wallS,
    realTimeFactor: wallS > 0 ? streamS / wallS : NaN,
    meanPoissonNll: predicted ? t.nllSum / (predicted * n) : NaN,
    droppedSpikes: p.binner.dropped,
  };
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
