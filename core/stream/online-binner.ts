// Online spike binning for streamed recordings (docs/method.md §1.3, §2.4): counts per (bin, neuron)
// emitted in order as soon as the stream has passed a bin's end, and a ring buffer of the last W bins.
import type { SpikeChunk } from './spike-chunks.ts';

/** One completed bin: [t0, t0 + binSize) of the recording, counts per neuron column. */
export interface Bin {
  binIndex: number;
  t0: number;
  counts: Int32Array;
  /** Set only on a last bin cut short by the end of the stream (see OnlineBinnerOptions.keepPartial). */
  partial?: true;
}

export interface OnlineBinnerOptions {
  /** The neuron list: column i counts the spikes of stream cluster id clusterIds[i]. */
  clusterIds: ArrayLike<number>;
  /** Bin width in milliseconds (default 20, the reference setting). */
  binSizeMs?: number;
  /** Time of bin 0's left edge, seconds (default 0). Bin b is [startS + b binS, startS + (b + 1) binS). */
  startS?: number;
  /** At the end of the stream, emit the last bin even though the recording ended inside it (marked partial). Default false. */
  keepPartial?: boolean;
}

/**
 * Consumes chunks in time order and returns the bins each chunk completes. Only bins the stream
 * has entered but not yet passed are held (about chunkS / binS + 1 of them), so memory does not
 * grow with the recording. Bin edges are [start, end), the same convention as the offline binner
 * (core/binning/bin-spikes.ts): a spike on an edge belongs to the later bin.
 */
export class OnlineBinner {
  readonly nNeurons: number;
  readonly binS: number;
  readonly startS: number;
  readonly keepPartial: boolean;
  /** Spikes whose cluster is not in the neuron list. */
  dropped = 0;
  /** Spikes before startS (before bin 0). */
  early = 0;
  private readonly column: Int32Array;
  private readonly invBin: number;
  /** Index of the first bin not yet emitted; pending[k] holds bin next + k. */
  private next = 0;
  private pending: Int32Array[] = [];
  private lastT1 = Number.NEGATIVE_INFINITY;
  private ended = false;

  constructor(opts: OnlineBinnerOptions) {
    const binSizeMs = opts.binSizeMs ?? 20;
    if (!(binSizeMs > 0) || !Number.isFinite(binSizeMs)) throw new Error(`online binner: binSizeMs must be a positive number, got ${opts.binSizeMs}`);
    this.binS = binSizeMs / 1000;
    this.invBin = 1 / this.binS;
    this.startS = opts.startS ?? 0;
    if (!Number.isFinite(this.startS)) throw new Error(`online binner: startS must be a finite number of seconds, got ${opts.startS}`);
    this.keepPartial = opts.keepPartial ?? false;
    const ids = opts.clusterIds;
    this.nNeurons = ids.length;
    let maxId = -1;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0) throw new Error(`online binner: clusterIds[${i}] is ${id}; expected a cluster id >= 0`);
      if (id > maxId) maxId = id;
    }
    // A dense id -> column table: stream ids are small (cluster ids, offset per probe).
    this.column = new Int32Array(maxId + 1).fill(-1);
    for (let i = 0; i < ids.length; i++) {
      if (this.column[ids[i]] >= 0) throw new Error(`online binner: cluster id ${ids[i]} appears twice in the neuron list (columns ${this.column[ids[i]]} and ${i})`);
      this.column[ids[i]] = i;
    }
  }

  /** Left edge of bin b, computed the same way as the offline binner's edges. */
  edge(b: number): number {
    return this.startS + b * this.binS;
  }

  /** The bin holding time t (t >= startS), exact against edge(). */
  binOf(t: number): number {
    let b = Math.floor((t - this.startS) * this.invBin);
    if (t < this.edge(b)) b--;
    else if (t >= this.edge(b + 1)) b++;
    return b;
  }

  /** Index of the next bin to be emitted. */
  get nextBinIndex(): number {
    return this.next;
  }

  /** Bins currently held (entered by the stream, not yet complete). */
  get pendingBins(): number {
    return this.pending.length;
  }

  private slot(b: number): Int32Array {
    const k = b - this.next;
    while (this.pending.length <= k) this.pending.push(new Int32Array(this.nNeurons));
    return this.pending[k];
  }

  /** Adds a chunk's spikes; returns the bins that are complete once the stream has reached chunk.t1, in order. */
  push(chunk: SpikeChunk): Bin[] {
    if (this.ended) throw new Error('online binner: push after end()');
    const { t0, t1, times, clusters } = chunk;
    if (!(t1 >= t0)) throw new Error(`online binner: chunk [${t0}, ${t1}) has its end before its start`);
    if (t0 < this.lastT1) throw new Error(`online binner: chunk [${t0}, ${t1}) starts before the previous chunk's end ${this.lastT1}; chunks must come in time order`);
    if (times.length !== clusters.length) throw new Error(`online binner: chunk [${t0}, ${t1}) has ${times.length} times but ${clusters.length} clusters`);
    this.lastT1 = t1;
    const col = this.column;
    const nCol = col.length;
    for (let i = 0; i < times.length; i++) {
      const t = times[i];
      if (!(t >= t0 && t < t1)) throw new Error(`online binner: spike ${i} of chunk [${t0}, ${t1}) is at ${t} s, outside the chunk`);
      const id = clusters[i];
      const c = id >= 0 && id < nCol ? col[id] : -1;
      if (c < 0) {
        this.dropped++;
        continue;
      }
      if (t < this.startS) {
        this.early++;
        continue;
      }
      const b = this.binOf(t);
      if (b < this.next) throw new Error(`online binner: spike at ${t} s falls in bin ${b}, already emitted`);
      this.slot(b)[c]++;
    }
    return this.emitThrough(t1);
  }

  /** Emits every bin whose end is <= t. */
  private emitThrough(t: number): Bin[] {
    // The bin holding t is not complete (t < its end); every bin before it is.
    const last = this.binOf(t) - 1;
    const count = last - this.next + 1;
    if (count <= 0) return [];
    this.slot(last);
    const done = this.pending.splice(0, count);
    const out: Bin[] = done.map((counts, k) => ({ binIndex: this.next + k, t0: this.edge(this.next + k), counts }));
    this.next += count;
    return out;
  }

  /** The stream is over: returns the last bin if it is partial and keepPartial is set, else nothing. */
  end(): Bin[] {
    if (this.ended) return [];
    this.ended = true;
    const out: Bin[] = [];
    if (this.keepPartial && this.lastT1 > this.edge(this.next)) {
      out.push({ binIndex: this.next, t0: this.edge(this.next), counts: this.pending[0] ?? new Int32Array(this.nNeurons), partial: true });
    }
    this.pending = [];
    return out;
  }
}

/** Bins a stream of chunks: yields each bin as soon as it is complete. */
export async function* binChunks(chunks: AsyncIterable<SpikeChunk>, binner: OnlineBinner): AsyncGenerator<Bin> {
  for await (const chunk of chunks) yield* binner.push(chunk);
  yield* binner.end();
}

/**
 * The last W bins as a ring buffer of float32 counts, for a model that predicts causally on a
 * fixed-length window. Pushing costs one row copy; reading copies the window out in time order.
 */
export class SlidingWindow {
  private readonly buf: Float32Array;
  /** Row the next bin is written to. */
  private head = 0;
  private filledRows = 0;
  private last = -1;

  constructor(readonly windowBins: number, readonly nNeurons: number) {
    if (!Number.isInteger(windowBins) || windowBins < 1) throw new Error(`sliding window: windowBins must be a positive integer, got ${windowBins}`);
    if (!Number.isInteger(nNeurons) || nNeurons < 0) throw new Error(`sliding window: nNeurons must be an integer >= 0, got ${nNeurons}`);
    this.buf = new Float32Array(windowBins * nNeurons);
  }

  /** Rows holding real bins (up to windowBins). */
  get filled(): number {
    return this.filledRows;
  }

  get full(): boolean {
    return this.filledRows === this.windowBins;
  }

  /** binIndex of the newest bin, -1 before the first push. */
  get lastBinIndex(): number {
    return this.last;
  }

  /** binIndex of the window's first row (may be negative while the window is filling: those rows are zeros). */
  get firstBinIndex(): number {
    return this.last - this.windowBins + 1;
  }

  /** Appends the next bin; bins must be consecutive, or the window would silently misalign time. */
  push(bin: Pick<Bin, 'binIndex' | 'counts'>): void {
    if (bin.counts.length !== this.nNeurons) throw new Error(`sliding window: bin ${bin.binIndex} has ${bin.counts.length} neurons, the window ${this.nNeurons}`);
    if (this.last >= 0 && bin.binIndex !== this.last + 1) throw new Error(`sliding window: got bin ${bin.binIndex} after bin ${this.last}; bins must be consecutive`);
    this.buf.set(bin.counts, this.head * this.nNeurons);
    this.head = (this.head + 1) % this.windowBins;
    if (this.filledRows < this.windowBins) this.filledRows++;
    this.last = bin.binIndex;
  }

  /**
   * A (windowBins x nNeurons) row-major copy, oldest bin first. Before the window is full the
   * missing oldest rows are zeros. Writes into `out` when given (it must have the right length).
   */
  toArray(out?: Float32Array): Float32Array {
    const w = this.windowBins;
    const n = this.nNeurons;
    const dst = out ?? new Float32Array(w * n);
    if (dst.length !== w * n) throw new Error(`sliding window: output holds ${dst.length} values, expected ${w} x ${n}`);
    if (this.filledRows < w) {
      // Rows 0..filled-1 are in order (head == filled): right-align them.
      const pad = (w - this.filledRows) * n;
      dst.fill(0, 0, pad);
      dst.set(this.buf.subarray(0, this.filledRows * n), pad);
    } else {
      const split = this.head * n;
      dst.set(this.buf.subarray(split), 0);
      dst.set(this.buf.subarray(0, split), w * n - split);
    }
    return dst;
  }

  reset(): void {
    this.buf.fill(0);
    this.head = 0;
    this.filledRows = 0;
    this.last = -1;
  }
}
