// Per-bin causal prediction (stride 1) from key/value caches (ArchitectureModel.openCausalStream):
// each bin costs a few tokens' work instead of a window's pass. The windowed CausalPredictor
// (predictor.ts) stays the path for other strides and for architectures without the capability.
//
// Decisions:
// - Absolute position embeddings make a cached key depend on its position, so one ever-growing
//   cache cannot equal a sliding window (whose positions shift each bin), and recomputing the
//   window is what the cache is meant to avoid. Instead K caches (default 2) restart in turn:
//   cache k is emptied every R = windowBins - 1 bins, at bins offset by round(k R / K), and the
//   prediction comes from the cache holding the most bins. So the context is between
//   R - round(R / K) + 1 and R bins (50 to 99 for the 100-bin window and 2 caches; the windowed
//   path at stride s uses windowBins - s), and every prediction is exactly the windowed causal
//   pass over that cache's span: its bins at positions 0.. and one zeroed bin after them (the
//   forward-prediction task, as the windowed path runs it), which the tests check, restarts included.
// - To predict bin c+1, the zeroed bin's token runs against the cache without being appended;
//   once bin c's counts arrive they are appended to every cache (the bin's embedding once), and
//   the next prediction follows. So a prediction is ready as soon as the previous bin is binned.
// - Priming (calibration bins) keeps raw counts only, the last R bins: calibration changes the
//   stitcher after them, so the caches are built from them at the first prediction, with the
//   weights then current (as if the stream had started R bins before it); that one-off cost is
//   reported as openMs, not as a per-bin latency.
// - Each prediction gets its own array (as the windowed path's views, never overwritten), and
//   the caches are fixed-size typed arrays: memory does not grow with the stream, and no tensor
//   is created after the stream opens.
import type { ArchitectureModel, CausalStream } from '../architecture.ts';
import { loadNative } from '../tensor/kernels/native.ts';
import type { MaskingMode } from '../masking/types.ts';
import { SlidingWindow, type Bin } from './online-binner.ts';
import { CausalPredictor, defaultStreamMode, LatencyStats, type CausalPredictorOptions, type PredictedBin } from './predictor.ts';

/** What run-stream needs of a predictor, windowed or cached. */
export interface StreamPredictor {
  /** 'cached': per-bin key/value caches; 'windowed': a forward pass over the window every strideBins bins. */
  readonly path: 'cached' | 'windowed';
  readonly windowBins: number;
  readonly strideBins: number;
  readonly nNeurons: number;
  readonly mode: MaskingMode;
  /** Latency from a bin's completion to the next prediction(s) being ready, one sample per pass. */
  readonly passes: LatencyStats;
  readonly nextBinIndex: number;
  /** Fewest and most observed bins a prediction uses once the stream is past its first window. */
  readonly contextRange: [number, number];
  prime(bin: Pick<Bin, 'binIndex' | 'counts'>): void;
  push(bin: Bin): Promise<PredictedBin>;
  /** Releases what the predictor holds beyond the model (caches). */
  dispose(): void;
}

export interface CachedCausalPredictorOptions extends Omit<CausalPredictorOptions, 'strideBins'> {
  /** Staggered caches (>= 2 keeps the context at least about half the window). Default 2. */
  caches?: number;
}

export class CachedCausalPredictor implements StreamPredictor {
  readonly path = 'cached';
  readonly windowBins: number;
  readonly strideBins = 1;
  readonly nNeurons: number;
  readonly mode: MaskingMode;
  readonly caches: number;
  /** Most bins a cache holds before it restarts (windowBins - 1). */
  readonly period: number;
  readonly passes = new LatencyStats();
  /**
   * The same passes in CPU time of the calling thread (which does all of a pass's work), when
   * the native addon can read that clock: what a pass costs without the waits a busy machine adds.
   */
  readonly cpuPasses: LatencyStats | undefined;
  readonly contextRange: [number, number];
  /** Time to open the stream (copy the weights) and build the caches from the primed bins, ms. */
  openMs = 0;
  private readonly model: ArchitectureModel;
  private readonly sessionId: string;
  private readonly offsets: number[];
  private readonly primed: SlidingWindow;
  private stream: CausalStream | undefined;
  /** Bins appended to the caches since they started (the restart schedule's clock). */
  private appended = 0;
  private readonly cpuMs: (() => number) | undefined;
  private forecast: Float32Array | undefined;
  private forecastContext = 0;
  private nextBin = -1;

  constructor(o: CachedCausalPredictorOptions) {
    const w = o.windowBins;
    const k = o.caches ?? 2;
    if (!o.model.openCausalStream) throw new Error(`stream predictor: architecture '${o.model.architecture}' has no incremental causal prediction (openCausalStream); use the windowed predictor`);
    if (!(Number.isInteger(k) && k >= 1)) throw new Error(`stream predictor: caches must be a positive integer, got ${k}`);
    if (!(Number.isInteger(w) && w - 1 >= k)) throw new Error(`stream predictor: windowBins (${w}) must be an integer of at least caches + 1 (${k + 1})`);
    if (!o.model.hasSession(o.sessionId)) throw new Error(`stream predictor: the model has no per-session weights for '${o.sessionId}' (add them with addSession first)`);
    this.model = o.model;
    this.sessionId = o.sessionId;
    this.windowBins = w;
    this.nNeurons = o.nNeurons;
    this.mode = o.mode ?? defaultStreamMode(o.model);
    this.caches = k;
    this.period = w - 1;
    this.offsets = Array.from({ length: k }, (_, i) => Math.round((i * this.period) / k));
    this.primed = new SlidingWindow(this.period, o.nNeurons);
    const native = loadNative().native;
    this.cpuMs = native ? () => native.threadCpuMs() : undefined;
    this.cpuPasses = native ? new LatencyStats() : undefined;
    // Right after a cache restarts, the freshest other cache has been filling since the previous restart.
    const gaps = this.offsets.map((off, i) => (i + 1 < k ? this.offsets[i + 1] : this.period) - off);
    this.contextRange = [this.period - Math.max(...gaps) + 1, this.period];
  }

  get nextBinIndex(): number {
    return this.nextBin;
  }

  /** Bins of context the next prediction uses (after the caches are built). */
  get contextBins(): number {
    return this.forecastContext;
  }

  prime(bin: Pick<Bin, 'binIndex' | 'counts'>): void {
    if (this.stream) throw new Error('stream predictor: prime() after predictions started');
    this.expect(bin.binIndex);
    this.primed.push(bin);
    this.nextBin = bin.binIndex + 1;
  }

  async push(bin: Bin): Promise<PredictedBin> {
    this.expect(bin.binIndex);
    if (!this.stream) this.open();
    const logRates = this.forecast!;
    const contextBins = this.forecastContext;
    const started = performance.now();
    const cpu0 = this.cpuMs?.() ?? 0;
    this.append(bin.counts);
    this.nextBin = bin.binIndex + 1;
    this.predict();
    this.passes.add(performance.now() - started);
    if (this.cpuMs) this.cpuPasses!.add(this.cpuMs() - cpu0);
    return { binIndex: bin.binIndex, t0: bin.t0, logRates, counts: bin.counts, horizonBins: 1, contextBins };
  }

  dispose(): void {
    this.stream?.dispose();
    this.stream = undefined;
  }

  private expect(binIndex: number): void {
    if (this.nextBin >= 0 && binIndex !== this.nextBin) throw new Error(`stream predictor: got bin ${binIndex}, expected bin ${this.nextBin}; bins must be consecutive`);
  }

  /** Opens the model's stream with its current weights, replays the primed bins, predicts the next bin. */
  private open(): void {
    const started = performance.now();
    this.stream = this.model.openCausalStream!({ sessionId: this.sessionId, mode: this.mode, caches: this.caches, maxBins: this.period });
    const n = this.nNeurons;
    // Oldest first, right-aligned: the first period - filled rows are padding.
    const rows = this.primed.toArray();
    for (let r = this.period - this.primed.filled; r < this.period; r++) this.append(rows.subarray(r * n, (r + 1) * n));
    this.predict();
    this.openMs = performance.now() - started;
  }

  /** Restarts the caches whose turn it is, then appends the bin to all of them. */
  private append(counts: ArrayLike<number>): void {
    const s = this.stream!;
    const i = this.appended;
    for (let k = 0; k < this.caches; k++) {
      const off = this.offsets[k];
      if (i > 0 && i >= off && (i - off) % this.period === 0) s.reset(k);
    }
    s.append(counts);
    this.appended++;
  }

  /** The prediction of the next bin from the cache with the most bins. */
  private predict(): void {
    const s = this.stream!;
    let best = 0;
    for (let k = 1; k < this.caches; k++) if (s.length(k) > s.length(best)) best = k;
    const out = new Float32Array(this.nNeurons);
    s.predictNext(best, out);
    this.forecast = out;
    this.forecastContext = s.length(best);
  }
}

export interface StreamPredictorOptions extends CausalPredictorOptions {
  /** 'auto' (default): at strideBins 1, the cached path when the architecture has it; 'off': always windowed. */
  cache?: 'auto' | 'off';
  /** Caches of the cached path (default 2). */
  caches?: number;
}

/** The predictor a stream runs: cached at stride 1 where the architecture supports it, else windowed. */
export function createStreamPredictor(o: StreamPredictorOptions): StreamPredictor {
  if (o.strideBins === 1 && (o.cache ?? 'auto') === 'auto' && typeof o.model.openCausalStream === 'function') return new CachedCausalPredictor(o);
  return new CausalPredictor(o);
}
