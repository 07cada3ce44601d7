// Continuous behaviour resampled onto the trial bins (docs/method.md §2.5), and the
// simulator's ground-truth rate grid integrated over the same bins.
import { binCount } from './bin-spikes.ts';

export interface BinGrid {
  /** Alignment time per kept trial, seconds. */
  alignTimes: Float64Array;
  windowS: readonly [number, number];
  binSizeMs: number;
}

/** Linear interpolation of (times, values) at t, clamped to the first/last sample. `hint` speeds sorted queries. */
function interpAt(times: Float64Array, values: Float64Array, t: number, hint: { i: number }): number {
  const n = times.length;
  if (t <= times[0]) return values[0];
  if (t >= times[n - 1]) return values[n - 1];
  let i = hint.i;
  if (i < 0 || i >= n - 1 || times[i] > t) i = upperBound(times, t) - 1;
  while (i < n - 2 && times[i + 1] <= t) i++;
  hint.i = i;
  const t0 = times[i];
  const t1 = times[i + 1];
  const f = t1 > t0 ? (t - t0) / (t1 - t0) : 0;
  return values[i] + f * (values[i + 1] - values[i]);
}

function upperBound(times: Float64Array, t: number): number {
  let a = 0;
  let b = times.length;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (times[m] <= t) a = m + 1;
    else b = m;
  }
  return a;
}

function checkSeries(times: Float64Array, values: Float64Array, what: string): void {
  if (times.length !== values.length) throw new Error(`${what}: ${times.length} timestamps but ${values.length} values`);
}

/**
 * Wheel speed per bin, rad/s: |x(end) - x(start)| / binSize, with the wheel position linearly
 * interpolated at the bin edges. That is the absolute mean velocity over the bin, which needs no
 * smoothing and is exact for any sampling of the position.
 */
export function wheelSpeedPerBin(times: Float64Array, position: Float64Array, g: BinGrid): Float32Array {
  checkSeries(times, position, 'wheel');
  const nBins = binCount(g.windowS, g.binSizeMs);
  const out = new Float32Array(g.alignTimes.length * nBins);
  if (times.length === 0) return out.fill(NaN);
  const binS = g.binSizeMs / 1000;
  const hint = { i: 0 };
  for (let k = 0; k < g.alignTimes.length; k++) {
    const s = g.alignTimes[k] + g.windowS[0];
    hint.i = -1;
    let prev = interpAt(times, position, s, hint);
    for (let b = 0; b < nBins; b++) {
      const next = interpAt(times, position, s + (b + 1) * binS, hint);
      out[k * nBins + b] = Math.abs(next - prev) / binS;
      prev = next;
    }
  }
  return out;
}

/**
 * Mean of the samples whose time falls in each bin ([start, end), as for spikes); a bin with
 * no finite sample (bins shorter than the sampling period) takes the series linearly
 * interpolated at the bin centre.
 */
export function meanPerBin(times: Float64Array, values: Float64Array, g: BinGrid, what = 'series'): Float32Array {
  checkSeries(times, values, what);
  const nBins = binCount(g.windowS, g.binSizeMs);
  const out = new Float32Array(g.alignTimes.length * nBins);
  if (times.length === 0) return out.fill(NaN);
  const binS = g.binSizeMs / 1000;
  const hint = { i: 0 };
  for (let k = 0; k < g.alignTimes.length; k++) {
    const s = g.alignTimes[k] + g.windowS[0];
    let j = lowerBoundF(times, s);
    for (let b = 0; b < nBins; b++) {
      const e = s + (b + 1) * binS;
      let sum = 0;
      let cnt = 0;
      while (j < times.length && times[j] < e) {
        const v = values[j];
        if (Number.isFinite(v)) {
          sum += v;
          cnt++;
        }
        j++;
      }
      if (cnt > 0) out[k * nBins + b] = sum / cnt;
      else {
        hint.i = -1;
        out[k * nBins + b] = interpAt(times, values, s + (b + 0.5) * binS, hint);
      }
    }
  }
  return out;
}

function lowerBoundF(times: Float64Array, t: number): number {
  let a = 0;
  let b = times.length;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (times[m] < t) a = m + 1;
    else b = m;
  }
  return a;
}

export interface RateGrid {
  /** Rates in Hz, [trial][step][neuron] over every trial of the session. */
  rates: Float32Array;
  nTrials: number;
  nSteps: number;
  nNeurons: number;
  stepMs: number;
  /** Grid of trial i starts at stimOn_times[i] + gridStartS. */
  gridStartS: number;
}

/**
 * Expected spike counts per bin, [kept trial][bin][output neuron]: the piecewise-constant Hz
 * grid integrated exactly over each bin. `trialIndex` picks the grid's trials, `gridOrigin`
 * holds each session trial's stimOn time, and `neuronOf[j]` the grid column of output neuron j
 * (-1 gives NaN). Returns null when some bin falls outside a trial's grid.
 */
export function expectedCountsFromGrid(grid: RateGrid, gridOrigin: Float64Array, trialIndex: Int32Array, g: BinGrid, neuronOf: Int32Array): Float32Array | null {
  const nBins = binCount(g.windowS, g.binSizeMs);
  const nOut = neuronOf.length;
  const binS = g.binSizeMs / 1000;
  const stepS = grid.stepMs / 1000;
  const gridEnd = grid.nSteps * stepS;
  const out = new Float32Array(trialIndex.length * nBins * nOut);
  const acc = new Float64Array(nOut);
  const tol = 1e-9;
  for (let k = 0; k < trialIndex.length; k++) {
    const ti = trialIndex[k];
    if (ti < 0 || ti >= grid.nTrials) return null;
    // Window start in grid time (seconds from the trial's grid origin).
    const rel0 = g.alignTimes[k] + g.windowS[0] - (gridOrigin[ti] + grid.gridStartS);
    if (!Number.isFinite(rel0) || rel0 < -tol || rel0 + nBins * binS > gridEnd + tol) return null;
    const trialBase = ti * grid.nSteps * grid.nNeurons;
    for (let b = 0; b < nBins; b++) {
      const a0 = Math.max(0, rel0 + b * binS);
      const a1 = Math.min(gridEnd, rel0 + (b + 1) * binS);
      acc.fill(0);
      const j0 = Math.max(0, Math.floor(a0 / stepS));
      const j1 = Math.min(grid.nSteps - 1, Math.floor(a1 / stepS));
      for (let j = j0; j <= j1; j++) {
        const w = Math.min(a1, (j + 1) * stepS) - Math.max(a0, j * stepS);
        if (w <= 1e-12 * stepS) continue;
        const row = trialBase + j * grid.nNeurons;
        for (let n = 0; n < nOut; n++) {
          const src = neuronOf[n];
          acc[n] += src >= 0 ? grid.rates[row + src] * w : NaN;
        }
      }
      out.set(acc, (k * nBins + b) * nOut);
    }
  }
  return out;
}
