// Trial-aligned spike counting in one pass over sorted spike times (docs/method.md §2.4).
//
// Bin convention: bin b of a trial aligned at time a covers [e_b, e_{b+1}) with
// e_b = (a + windowS[0]) + b * binS, left edge included, right edge excluded; the window is
// [e_0, e_nBins). A spike exactly on an edge goes to the later bin; a spike exactly at the
// window's end is not counted. The bin index is computed arithmetically, then corrected by one
// against those edges so floating-point division never disagrees with the comparison.
import { allocCounts, type AllocCountsOptions } from './prefault.ts';

export interface BinSpikesInput {
  /** Spike times in seconds, sorted ascending. */
  times: Float64Array;
  /** Cluster id of each spike. */
  clusters: Int32Array;
  /**
   * Output neuron column per cluster id (`columnOf[clusterId]`, -1 to drop the cluster). When
   * omitted, cluster ids are the columns themselves.
   */
  columnOf?: Int32Array;
  nNeurons: number;
  /** Alignment time of each trial in seconds (any order; windows may overlap). */
  alignTimes: Float64Array;
  windowS: readonly [number, number];
  binSizeMs: number;
  /** Add into this [trial][bin][neuron] array instead of a fresh one (several probes). */
  out?: Int32Array;
  /** Fault a fresh output's pages in on a helper thread (prefault.ts; off by default: slower on the shared 2-core VM). */
  prefault?: AllocCountsOptions['prefault'];
}

/** Number of bins a window holds; refuses windows that are not a whole number of bins. */
export function binCount(windowS: readonly [number, number], binSizeMs: number): number {
  const span = (windowS[1] - windowS[0]) * 1000;
  const n = Math.round(span / binSizeMs);
  if (!(binSizeMs > 0) || !(span > 0) || Math.abs(n * binSizeMs - span) > 1e-6 * binSizeMs) {
    throw new Error(`binning: window ${windowS[0]}..${windowS[1]} s is not a positive whole number of ${binSizeMs} ms bins`);
  }
  return n;
}

/**
 * Counts spikes per (trial, bin, neuron), row-major [trial][bin][neuron].
 *
 * Trials are visited in order of window start; the index of a window's first spike therefore
 * only moves forward (found by binary search from the previous one, which skips the spikes
 * between windows), and each window reads its own run of spikes once, the bin coming from index
 * arithmetic. Without overlap that is a single pass over the spikes in windows; a spike shared
 * by overlapping windows is read once per window, as it must be counted once per window.
 */
export function binSpikes(x: BinSpikesInput): Int32Array {
  const { times, clusters, nNeurons, alignTimes, binSizeMs } = x;
  const nBins = binCount(x.windowS, binSizeMs);
  const nTrials = alignTimes.length;
  if (clusters.length !== times.length) {
    throw new Error(`binning: ${times.length} spike times but ${clusters.length} spike clusters`);
  }
  const size = nTrials * nBins * nNeurons;
  if (x.out && x.out.length !== size) throw new Error(`binning: output holds ${x.out.length} entries, expected ${size}`);
  const fresh = x.out ? undefined : allocCounts(size, { prefault: x.prefault });
  const out = x.out ?? fresh!.array;
  try {
    countInto(x, out, nBins);
  } finally {
    fresh?.done();
  }
  return out;
}

function countInto(x: BinSpikesInput, out: Int32Array, nBins: number): void {
  const { times, clusters, columnOf, nNeurons, alignTimes, binSizeMs } = x;
  const nTrials = alignTimes.length;
  if (nTrials === 0 || times.length === 0 || nNeurons === 0) return;

  const binS = binSizeMs / 1000;
  const invBin = 1 / binS;
  // Trials with a NaN alignment time get no spikes (the trial filter normally removes them).
  const order: number[] = [];
  for (let k = 0; k < nTrials; k++) if (Number.isFinite(alignTimes[k])) order.push(k);
  order.sort((a, b) => alignTimes[a] - alignTimes[b]);

  const nSpikes = times.length;
  let first = 0;
  for (const k of order) {
    const s = alignTimes[k] + x.windowS[0];
    const e = s + nBins * binS;
    first = lowerBound(times, s, first, nSpikes);
    const base = k * nBins * nNeurons;
    if (columnOf) countWindowMapped(times, clusters, columnOf, out, first, s, e, binS, invBin, nBins, nNeurons, base);
    else countWindow(times, clusters, out, first, s, e, binS, invBin, nBins, nNeurons, base);
  }
}

// Two copies of the inner loop, so the common case (no cluster table) carries no lookup or branch.
function countWindow(times: Float64Array, clusters: Int32Array, out: Int32Array, i: number, s: number, e: number, binS: number, invBin: number, nBins: number, nNeurons: number, base: number): void {
  const n = times.length;
  for (; i < n; i++) {
    const t = times[i];
    if (t >= e) break;
    const c = clusters[i];
    if (c < 0 || c >= nNeurons) continue;
    let b = ((t - s) * invBin) | 0;
    // Exact edges: the arithmetic index can be off by one within rounding of an edge.
    if (t < s + b * binS) b--;
    else if (t >= s + (b + 1) * binS) b++;
    if (b >= nBins) b = nBins - 1; // t < e, so only rounding can get here
    out[base + b * nNeurons + c]++;
  }
}

function countWindowMapped(times: Float64Array, clusters: Int32Array, columnOf: Int32Array, out: Int32Array, i: number, s: number, e: number, binS: number, invBin: number, nBins: number, nNeurons: number, base: number): void {
  const n = times.length;
  const tableLen = columnOf.length;
  for (; i < n; i++) {
    const t = times[i];
    if (t >= e) break;
    const id = clusters[i];
    if (id < 0 || id >= tableLen) continue;
    const c = columnOf[id];
    if (c < 0) continue;
    let b = ((t - s) * invBin) | 0;
    if (t < s + b * binS) b--;
    else if (t >= s + (b + 1) * binS) b++;
    if (b >= nBins) b = nBins - 1;
    out[base + b * nNeurons + c]++;
  }
}

/** First index in [from, to) whose time is >= t. */
export function lowerBound(times: Float64Array, t: number, from = 0, to = times.length): number {
  let a = from;
  let b = to;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (times[m] < t) a = m + 1;
    else b = m;
  }
  return a;
}

/**
 * A lookup table from cluster id to output column: `table[clusterIds[i]] = columns[i]`, -1
 * elsewhere (clusters not kept, or ids with no row).
 */
export function columnTable(clusterIds: ArrayLike<number>, columns: ArrayLike<number>): Int32Array {
  let maxId = -1;
  for (let i = 0; i < clusterIds.length; i++) if (clusterIds[i] > maxId) maxId = clusterIds[i];
  const table = new Int32Array(maxId + 1).fill(-1);
  for (let i = 0; i < clusterIds.length; i++) if (clusterIds[i] >= 0) table[clusterIds[i]] = columns[i];
  return table;
}
