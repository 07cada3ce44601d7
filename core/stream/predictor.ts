// Causal bin-by-bin prediction over a stream (docs/method.md §1.3, §5.2): one
// forward pass every strideBins bins over a sliding window gives the next strideBins bins' rates.
//
// Decisions:
// - What is masked: exactly the forward-prediction task. A pass runs as soon as bin c is complete:
//   its input is the last (windowBins - strideBins) observed bins followed by strideBins zeroed
//   bins, run with causal attention and the causal prompt; the outputs at the zeroed positions
//   are the predictions of bins c+1 .. c+strideBins. Each prediction therefore depends only on
//   bins <= c, i.e. strictly before the predicted bin (horizon 1 to strideBins bins), and it is
//   ready before the bin starts (one pass later than c's end). Running the pass after bin
//   c+strideBins with those bins zeroed would give identical numbers, only later.
// - Before the window is full (start of a stream without calibration), the pass runs on the
//   bins there are (shorter input, positions from 0, as a trial start), never on zero padding.
// - A model without prompt tokens runs mode 'temporal' (no prompt) but still causal attention:
//   causality is the stream's requirement, not the prompt's.
import type { ArchitectureModel } from '../architecture.ts';
import type { MaskingMode } from '../masking/types.ts';
import * as tf from '../tensor/tf.ts';
import { SlidingWindow, type Bin } from './online-binner.ts';

/** One predicted bin, emitted once its counts are observed. */
export interface PredictedBin {
  binIndex: number;
  t0: number;
  /** Predicted log-rates (log spikes per bin), one per neuron (a view of the pass's own output, never overwritten). */
  logRates: Float32Array;
  counts: Int32Array;
  /** How many bins after the pass's last observed bin this one is (1 .. strideBins). */
  horizonBins: number;
  /** Observed bins the prediction was made from (the pass's context). */
  contextBins?: number;
}

export interface CausalPredictorOptions {
  model: ArchitectureModel;
  /** The session whose stitcher reads this stream's neurons (it must exist in the model). */
  sessionId: string;
  nNeurons: number;
  /** Bins per forward pass, observed context plus the strideBins predicted ones. */
  windowBins: number;
  /** Bins predicted per pass (and the pass period). */
  strideBins: number;
  /** Prompt mode; default 'causal' when the model has prompt tokens, else 'temporal'. */
  mode?: MaskingMode;
}

/** Pass durations in a fixed histogram (10 µs buckets up to 1 s): percentiles without keeping every sample. */
export class LatencyStats {
  private readonly buckets = new Uint32Array(100_001);
  count = 0;
  sumMs = 0;
  maxMs = 0;

  add(ms: number): void {
    this.count++;
    this.sumMs += ms;
    if (ms > this.maxMs) this.maxMs = ms;
    this.buckets[Math.min(this.buckets.length - 1, Math.floor(ms * 100))]++;
  }

  get meanMs(): number {
    return this.count ? this.sumMs / this.count : NaN;
  }

  /** Upper edge of the bucket holding the q-quantile (0 < q <= 1). */
  quantileMs(q: number): number {
    if (!this.count) return NaN;
    const want = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i];
      if (seen >= want) return Math.min((i + 1) / 100, this.maxMs);
    }
    return this.maxMs;
  }

  summary(): { passes: number; meanMs: number; p50Ms: number; p95Ms: number; p99Ms: number; maxMs: number } {
    return { passes: this.count, meanMs: this.meanMs, p50Ms: this.quantileMs(0.5), p95Ms: this.quantileMs(0.95), p99Ms: this.quantileMs(0.99), maxMs: this.maxMs };
  }
}

export function defaultStreamMode(model: Pick<ArchitectureModel, 'capabilities'>): MaskingMode {
  return model.capabilities.promptTokens ? 'causal' : 'temporal';
}

export class CausalPredictor {
  readonly path = 'windowed';
  readonly windowBins: number;
  readonly strideBins: number;
  readonly nNeurons: number;
  readonly mode: MaskingMode;
  readonly passes = new LatencyStats();
  /** A full window's context: windowBins - strideBins bins for every pass. */
  readonly contextRange: [number, number];
  private readonly model: ArchitectureModel;
  private readonly sessionId: string;
  private readonly context: SlidingWindow;
  private readonly input: Float32Array;
  /** Predictions of bins forecastFirst .. forecastFirst + strideBins - 1, row per bin. */
  private forecast: Float32Array;
  private forecastFirst = -1;
  private forecastContext = 0;
  private nextBin = -1;

  constructor(o: CausalPredictorOptions) {
    const { windowBins: w, strideBins: s, nNeurons: n } = o;
    if (!Number.isInteger(s) || s < 1) throw new Error(`stream predictor: strideBins must be a positive integer, got ${s}`);
    if (!Number.isInteger(w) || w <= s) throw new Error(`stream predictor: windowBins (${w}) must be an integer larger than strideBins (${s}), to leave observed bins to predict from`);
    if (!o.model.hasSession(o.sessionId)) throw new Error(`stream predictor: the model has no per-session weights for '${o.sessionId}' (add them with addSession first)`);
    this.model = o.model;
    this.sessionId = o.sessionId;
    this.windowBins = w;
    this.strideBins = s;
    this.nNeurons = n;
    this.mode = o.mode ?? defaultStreamMode(o.model);
    this.context = new SlidingWindow(w - s, n);
    this.contextRange = [w - s, w - s];
    this.input = new Float32Array(w * n);
    this.forecast = new Float32Array(s * n);
  }

  /** Index of the next bin push() expects (-1 before any bin). */
  get nextBinIndex(): number {
    return this.nextBin;
  }

  /** Adds an observed bin as context only, with no prediction (calibration bins before the first prediction). */
  prime(bin: Pick<Bin, 'binIndex' | 'counts'>): void {
    if (this.forecastFirst >= 0) throw new Error('stream predictor: prime() after predictions started');
    this.accept(bin);
  }

  private accept(bin: Pick<Bin, 'binIndex' | 'counts'>): void {
    if (this.nextBin >= 0 && bin.binIndex !== this.nextBin) throw new Error(`stream predictor: got bin ${bin.binIndex}, expected bin ${this.nextBin}; bins must be consecutive`);
    this.context.push(bin);
    this.nextBin = bin.binIndex + 1;
  }

  /**
   * The observed bin, with the prediction made for it before it started. The pass predicting
   * the next strideBins bins runs inside the push of the last bin it depends on.
   */
  async push(bin: Bin): Promise<PredictedBin> {
    if (this.forecastFirst < 0) {
      if (this.nextBin >= 0 && bin.binIndex !== this.nextBin) throw new Error(`stream predictor: got bin ${bin.binIndex}, expected bin ${this.nextBin}; bins must be consecutive`);
      await this.runPass(bin.binIndex);
    }
    const k = bin.binIndex - this.forecastFirst;
    if (k < 0 || k >= this.strideBins) throw new Error(`stream predictor: got bin ${bin.binIndex}, expected bin ${this.nextBin}; bins must be consecutive`);
    const n = this.nNeurons;
    const logRates = this.forecast.subarray(k * n, (k + 1) * n);
    this.accept(bin);
    const out: PredictedBin = { binIndex: bin.binIndex, t0: bin.t0, logRates, counts: bin.counts, horizonBins: k + 1, contextBins: this.forecastContext };
    if (k === this.strideBins - 1) await this.runPass(bin.binIndex + 1);
    return out;
  }

  /** Predicts bins first .. first + strideBins - 1 from the context (every bin before `first`). */
  private async runPass(first: number): Promise<void> {
    const started = performance.now();
    const n = this.nNeurons;
    const s = this.strideBins;
    const ctxRows = this.context.filled;
    const ctxCap = this.context.windowBins;
    // Context rows, oldest first, then strideBins zero rows (the unknown future).
    this.context.toArray(this.input.subarray(0, ctxCap * n));
    this.input.fill(0, ctxCap * n);
    const t = ctxRows + s;
    const view = this.input.subarray((ctxCap - ctxRows) * n);
    const out = tf.tidy(() => {
      const x = tf.tensor3d(view, [1, t, n], 'float32');
      const y = this.model.forward({ sessionId: this.sessionId, input: x, mode: this.mode, causal: true }, { training: false });
      return tf.slice(y, [0, ctxRows, 0], [1, s, n]);
    });
    try {
      const data = (await out.data()) as Float32Array;
      this.forecast = data.length === s * n ? data : Float32Array.from(data);
    } finally {
      out.dispose();
    }
    this.forecastFirst = first;
    this.forecastContext = ctxRows;
    this.passes.add(performance.now() - started);
  }

  /** Nothing to release (each pass disposes its tensors); for the StreamPredictor interface. */
  dispose(): void {}
}
