// How realistic is a session? Pure statistics computed the same way for simulated sessions and for
// real IBL recordings, so the two can be set side by side (bench/realism.ts writes the table, and
// core/sim/realism.test.ts holds the simulator to it).
//
// Every statistic takes plain arrays: spike times (s, sorted), cluster ids, per-cluster labels and
// rates, trial event times. Loading real files lives in realism-data.ts; nothing here touches disk.
//
// The definitions follow the IBL's own analyses where there is one:
// - the good-unit label is the fraction of three quality metrics passed (sliding refractory-period
//   contamination, noise cutoff < 5, median amplitude > 50 uV): only 1 is a good unit;
// - task modulation uses the windows and tests of the IBL reproducible-ephys analysis: correct
//   trials with a non-zero contrast, baseline = [-0.2, 0] s before stimulus onset, post-stimulus =
//   [0.05, 0.15] s after it, pre-movement = [-0.1, 0.05] s around the first wheel movement, each
//   against the baseline with a Wilcoxon signed-rank test; left vs right choice before the movement
//   with a rank-sum test; significant at p < 0.05.

// ---------------------------------------------------------------------------------------------
// Basic statistics

/** Linear-interpolated quantile of an ascending array (numpy's default); NaN for an empty one. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (!n) return NaN;
  const h = (n - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** The finite values of `xs`, ascending. */
export function sortedFinite(xs: ArrayLike<number>): Float64Array {
  const out: number[] = [];
  for (let i = 0; i < xs.length; i++) if (Number.isFinite(xs[i])) out.push(xs[i]);
  return Float64Array.from(out).sort();
}

export function median(xs: ArrayLike<number>): number {
  return quantileSorted(sortedFinite(xs), 0.5);
}

export function meanOf(xs: ArrayLike<number>): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isFinite(xs[i])) continue;
    s += xs[i];
    n++;
  }
  return n ? s / n : NaN;
}

/** Population standard deviation of the finite values. */
export function sdOf(xs: ArrayLike<number>): number {
  const m = meanOf(xs);
  let s = 0;
  let n = 0;
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isFinite(xs[i])) continue;
    s += (xs[i] - m) ** 2;
    n++;
  }
  return n ? Math.sqrt(s / n) : NaN;
}

/** Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs (NaN if either is empty). */
export function ksStatistic(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const x = sortedFinite(a);
  const y = sortedFinite(b);
  if (!x.length || !y.length) return NaN;
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < x.length && j < y.length) {
    const v = Math.min(x[i], y[j]);
    while (i < x.length && x[i] <= v) i++;
    while (j < y.length && y[j] <= v) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  return d;
}

/** Standard normal upper-tail probability, for the rank tests' normal approximations. */
function normalSf(z: number): number {
  // erfc by the Numerical Recipes Chebyshev fit (relative error < 1.2e-7).
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc =
    t *
    Math.exp(
      -x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}

/** Average ranks (1-based) of `v`, ties sharing their mean rank; also the tie-group sizes. */
function ranks(v: ArrayLike<number>): { r: Float64Array; ties: number[] } {
  const n = v.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => v[a] - v[b]);
  const r = new Float64Array(n);
  const ties: number[] = [];
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && v[idx[j + 1]] === v[idx[i]]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[idx[k]] = rank;
    if (j > i) ties.push(j - i + 1);
    i = j + 1;
  }
  return { r, ties };
}

/**
 * Two-sided Wilcoxon signed-rank test of paired samples (zero differences dropped, as scipy's
 * default): exact null distribution for up to 50 pairs without ties, otherwise the normal
 * approximation with the tie correction. Returns 1 when no pair differs.
 */
export function signedRankP(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const d: number[] = [];
  for (let i = 0; i < x.length; i++) {
    const v = y[i] - x[i];
    if (Number.isFinite(v) && v !== 0) d.push(v);
  }
  const n = d.length;
  if (!n) return 1;
  const { r, ties } = ranks(d.map(Math.abs));
  let wPlus = 0;
  for (let i = 0; i < n; i++) if (d[i] > 0) wPlus += r[i];
  const total = (n * (n + 1)) / 2;
  const w = Math.min(wPlus, total - wPlus);
  if (n <= 50 && !ties.length) {
    // Exact: number of subsets of {1..n} with each rank sum, by dynamic programming.
    const counts = new Float64Array(total + 1);
    counts[0] = 1;
    for (let k = 1; k <= n; k++) for (let s = total; s >= k; s--) counts[s] += counts[s - k];
    let tail = 0;
    for (let s = 0; s <= Math.floor(w); s++) tail += counts[s];
    return Math.min(1, (2 * tail) / 2 ** n);
  }
  let varW = (n * (n + 1) * (2 * n + 1)) / 24;
  for (const t of ties) varW -= (t * t * t - t) / 48;
  if (varW <= 0) return 1;
  const z = (wPlus - total / 2) / Math.sqrt(varW);
  return Math.min(1, 2 * normalSf(Math.abs(z)));
}

/** Two-sided Wilcoxon rank-sum (Mann-Whitney) test, normal approximation with the tie correction. */
export function rankSumP(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const a = Array.from(x).filter(Number.isFinite);
  const b = Array.from(y).filter(Number.isFinite);
  const n1 = a.length;
  const n2 = b.length;
  if (!n1 || !n2) return 1;
  const { r, ties } = ranks([...a, ...b]);
  let r1 = 0;
  for (let i = 0; i < n1; i++) r1 += r[i];
  const u = r1 - (n1 * (n1 + 1)) / 2;
  const n = n1 + n2;
  let tieTerm = 0;
  for (const t of ties) tieTerm += t * t * t - t;
  const varU = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  if (varU <= 0) return 1;
  const z = (u - (n1 * n2) / 2) / Math.sqrt(varU);
  return Math.min(1, 2 * normalSf(Math.abs(z)));
}

// ---------------------------------------------------------------------------------------------
// Firing-rate distribution

export interface RateSummary {
  n: number;
  /** Quantiles of the per-unit rate, Hz. */
  q05: number;
  q10: number;
  q25: number;
  q50: number;
  q75: number;
  q90: number;
  q95: number;
  /** Mean and standard deviation of ln(rate / Hz) over units with a positive rate. */
  logMean: number;
  logSd: number;
  fracBelow0p1Hz: number;
  fracBelow1Hz: number;
}

export function summarizeRates(rates: ArrayLike<number>): RateSummary {
  const s = sortedFinite(rates);
  const logs = Array.from(s).filter((r) => r > 0).map(Math.log);
  const below = (t: number) => (s.length ? s.filter((r) => r < t).length / s.length : NaN);
  return {
    n: s.length,
    q05: quantileSorted(s, 0.05),
    q10: quantileSorted(s, 0.1),
    q25: quantileSorted(s, 0.25),
    q50: quantileSorted(s, 0.5),
    q75: quantileSorted(s, 0.75),
    q90: quantileSorted(s, 0.9),
    q95: quantileSorted(s, 0.95),
    logMean: meanOf(logs),
    logSd: sdOf(logs),
    fracBelow0p1Hz: below(0.1),
    fracBelow1Hz: below(1),
  };
}

/**
 * The lowest rate of a cluster that carries spiking activity. Real spike sorting also returns
 * fragments with a handful of spikes in an hour: the log-rate histogram of the real clusters
 * is bimodal with its trough at about 0.03 Hz (1.5 decades below 1 Hz). Clusters below that are
 * not simulated; every rate statistic of real clusters is taken over the clusters at or above it.
 */
export const ACTIVE_MIN_RATE_HZ = 0.03;

// ---------------------------------------------------------------------------------------------
// Good units

/** The IBL quality label: the fraction of the three metrics passed (0, 1/3, 2/3 or 1). */
export function qualityLabel(slidingRpPass: number, noiseCutoff: number, ampMedianV: number): number {
  const passes = (slidingRpPass === 1 ? 1 : 0) + (noiseCutoff < 5 ? 1 : 0) + (ampMedianV > 50e-6 ? 1 : 0);
  return passes / 3;
}

export interface LabelSummary {
  n: number;
  /** Fraction labelled 1 (good units). */
  good: number;
  /** Fractions of labels 0, 1/3, 2/3, 1. */
  levels: [number, number, number, number];
  /** Good fraction by rate band: [< 1 Hz, 1-5 Hz, 5-20 Hz, >= 20 Hz]. */
  goodByRate: [number, number, number, number];
}

export const RATE_BANDS_HZ = [1, 5, 20] as const;

export function summarizeLabels(labels: ArrayLike<number>, rates: ArrayLike<number>): LabelSummary {
  const lv = [0, 0, 0, 0];
  const bandN = [0, 0, 0, 0];
  const bandGood = [0, 0, 0, 0];
  let n = 0;
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!Number.isFinite(l)) continue;
    n++;
    lv[Math.min(3, Math.max(0, Math.round(l * 3)))]++;
    const r = rates[i];
    const b = r < RATE_BANDS_HZ[0] ? 0 : r < RATE_BANDS_HZ[1] ? 1 : r < RATE_BANDS_HZ[2] ? 2 : 3;
    bandN[b]++;
    if (l === 1) bandGood[b]++;
  }
  const f = (k: number, of: number) => (of ? k / of : NaN);
  return {
    n,
    good: f(lv[3], n),
    levels: [f(lv[0], n), f(lv[1], n), f(lv[2], n), f(lv[3], n)],
    goodByRate: [0, 1, 2, 3].map((b) => f(bandGood[b], bandN[b])) as LabelSummary['goodByRate'],
  };
}

// ---------------------------------------------------------------------------------------------
// Spike trains

/** Each cluster's spike times (ascending), from time-sorted spikes. */
export function splitByCluster(times: ArrayLike<number>, clusters: ArrayLike<number>): Map<number, Float64Array> {
  const counts = new Map<number, number>();
  for (let i = 0; i < clusters.length; i++) counts.set(clusters[i], (counts.get(clusters[i]) ?? 0) + 1);
  const out = new Map<number, Float64Array>();
  const fill = new Map<number, number>();
  for (const [c, n] of counts) {
    out.set(c, new Float64Array(n));
    fill.set(c, 0);
  }
  for (let i = 0; i < times.length; i++) {
    const c = clusters[i];
    const k = fill.get(c)!;
    out.get(c)![k] = times[i];
    fill.set(c, k + 1);
  }
  for (const a of out.values()) a.sort();
  return out;
}

/** First index of `a` (ascending) with a[i] >= v. */
export function lowerBound(a: ArrayLike<number>, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Spikes in [t0, t1). */
export function countIn(times: ArrayLike<number>, t0: number, t1: number): number {
  return lowerBound(times, t1) - lowerBound(times, t0);
}

/** var / mean of counts (population variance); NaN when the mean is 0. */
export function fanoOf(counts: ArrayLike<number>): number {
  const m = meanOf(counts);
  if (!(m > 0)) return NaN;
  let v = 0;
  let n = 0;
  for (let i = 0; i < counts.length; i++) {
    if (!Number.isFinite(counts[i])) continue;
    v += (counts[i] - m) ** 2;
    n++;
  }
  return v / n / m;
}

export interface UnitTrainStats {
  rateHz: number;
  /** Fano factor of counts in consecutive windows of 20 ms, 100 ms and 1 s (see unitTrainStats). */
  fano20ms: number;
  fano100ms: number;
  fano1s: number;
  fano10s: number;
  /** Fraction of inter-spike intervals shorter than 1.5 ms (refractory-period violations). */
  isiViolation: number;
  /** Coefficient of variation of the inter-spike intervals. */
  isiCv: number;
  /** Fraction of inter-spike intervals shorter than 10 ms (bursts). */
  burstFraction: number;
  /** burstFraction over what a Poisson train of the unit's mean rate would give (1 - exp(-rate * 10 ms)). */
  burstRatio: number;
}

export const ISI_VIOLATION_S = 0.0015;
export const BURST_ISI_S = 0.01;

/**
 * One unit's spike-train statistics over [t0, t1). Fano factors are computed in consecutive
 * segments of `segmentS` seconds and averaged over segments, so a long recording compares with a
 * short one (the real spike fixture is 120 s): drifts slower than the segment do not count.
 */
export function unitTrainStats(times: ArrayLike<number>, t0: number, t1: number, segmentS = 120): UnitTrainStats {
  const i0 = lowerBound(times, t0);
  const i1 = lowerBound(times, t1);
  const n = i1 - i0;
  const fano = (w: number) => {
    const vals: number[] = [];
    for (let s = t0; s + segmentS <= t1 + 1e-9; s += segmentS) {
      const nb = Math.floor(segmentS / w + 1e-9);
      const counts = new Float64Array(nb);
      for (let i = lowerBound(times, s), e = lowerBound(times, s + nb * w); i < e; i++) counts[Math.min(nb - 1, Math.floor((times[i] - s) / w))]++;
      const f = fanoOf(counts);
      if (Number.isFinite(f)) vals.push(f);
    }
    return vals.length ? meanOf(vals) : NaN;
  };
  let viol = 0;
  let burst = 0;
  let s1 = 0;
  let s2 = 0;
  for (let i = i0 + 1; i < i1; i++) {
    const d = times[i] - times[i - 1];
    if (d < ISI_VIOLATION_S) viol++;
    if (d < BURST_ISI_S) burst++;
    s1 += d;
    s2 += d * d;
  }
  const nIsi = Math.max(0, n - 1);
  const mIsi = nIsi ? s1 / nIsi : NaN;
  const sdIsi = nIsi ? Math.sqrt(Math.max(0, s2 / nIsi - mIsi * mIsi)) : NaN;
  return {
    rateHz: n / (t1 - t0),
    fano20ms: fano(0.02),
    fano100ms: fano(0.1),
    fano1s: fano(1),
    fano10s: fano(10),
    isiViolation: nIsi ? viol / nIsi : NaN,
    isiCv: nIsi ? sdIsi / mIsi : NaN,
    burstFraction: nIsi ? burst / nIsi : NaN,
    burstRatio: nIsi ? burst / nIsi / (1 - Math.exp((-n / (t1 - t0)) * BURST_ISI_S)) : NaN,
  };
}

export interface DistSummary {
  n: number;
  q10: number;
  q25: number;
  q50: number;
  q75: number;
  q90: number;
  mean: number;
}

export function summarizeDist(xs: ArrayLike<number>): DistSummary {
  const s = sortedFinite(xs);
  return { n: s.length, q10: quantileSorted(s, 0.1), q25: quantileSorted(s, 0.25), q50: quantileSorted(s, 0.5), q75: quantileSorted(s, 0.75), q90: quantileSorted(s, 0.9), mean: meanOf(s) };
}

/** Units at or above this rate enter the spike-train statistics (few spikes make Fano factors and ISIs noise). */
export const TRAIN_MIN_RATE_HZ = 1;

export interface TrainSummary {
  units: number;
  fano20ms: DistSummary;
  fano100ms: DistSummary;
  fano1s: DistSummary;
  fano10s: DistSummary;
  isiViolation: DistSummary;
  isiCv: DistSummary;
  burstFraction: DistSummary;
  burstRatio: DistSummary;
  /** Mean correlation of two units' counts in 100 ms and in 1 s windows (see meanPairCorrelation). */
  pairCorrelation100ms: number;
  pairCorrelation1s: number;
  /** Per-unit values, for KS distances. */
  perUnit: UnitTrainStats[];
}

/**
 * Mean Pearson correlation over all pairs of the units' counts in windows of `w` s, per segment of
 * `segmentS` s (at most `maxSegments` of them), averaged over segments. Computed from the sum of
 * the z-scored count vectors: mean over pairs of z_i . z_j = (|sum z|^2 - sum |z_i|^2) / (n (n - 1)).
 */
export function meanPairCorrelation(units: Float64Array[], t0: number, t1: number, w: number, segmentS = 120, maxSegments = 4): number {
  const vals: number[] = [];
  for (let s = t0, k = 0; s + segmentS <= t1 + 1e-9 && k < maxSegments; s += segmentS, k++) {
    const nb = Math.floor(segmentS / w + 1e-9);
    const sum = new Float64Array(nb);
    let self = 0;
    let n = 0;
    for (const times of units) {
      const c = new Float64Array(nb);
      for (let i = lowerBound(times, s), e = lowerBound(times, s + nb * w); i < e; i++) c[Math.min(nb - 1, Math.floor((times[i] - s) / w))]++;
      const m = meanOf(c);
      const sd = sdOf(c);
      if (!(sd > 0)) continue;
      n++;
      for (let b = 0; b < nb; b++) {
        const z = (c[b] - m) / sd;
        sum[b] += z;
        self += z * z;
      }
    }
    if (n < 2) continue;
    let tot = 0;
    for (let b = 0; b < nb; b++) tot += sum[b] * sum[b];
    vals.push((tot - self) / (n * (n - 1) * nb));
  }
  return vals.length ? meanOf(vals) : NaN;
}

/** Spike-train statistics of every unit firing at least TRAIN_MIN_RATE_HZ over [t0, t1). */
export function summarizeTrains(byCluster: Map<number, Float64Array>, t0: number, t1: number, segmentS = 120): TrainSummary {
  const perUnit: UnitTrainStats[] = [];
  const kept: Float64Array[] = [];
  for (const times of byCluster.values()) {
    if (countIn(times, t0, t1) / (t1 - t0) < TRAIN_MIN_RATE_HZ) continue;
    perUnit.push(unitTrainStats(times, t0, t1, segmentS));
    kept.push(times);
  }
  return trainSummary(perUnit, meanPairCorrelation(kept, t0, t1, 0.1, segmentS), meanPairCorrelation(kept, t0, t1, 1, segmentS));
}

/** The summary of per-unit spike-train statistics (pooled over recordings, or of one). */
export function trainSummary(perUnit: UnitTrainStats[], pairCorrelation100ms: number, pairCorrelation1s: number): TrainSummary {
  const col = (k: keyof UnitTrainStats) => summarizeDist(perUnit.map((u) => u[k]));
  return {
    units: perUnit.length,
    fano20ms: col('fano20ms'),
    fano100ms: col('fano100ms'),
    fano1s: col('fano1s'),
    fano10s: col('fano10s'),
    isiViolation: col('isiViolation'),
    isiCv: col('isiCv'),
    burstFraction: col('burstFraction'),
    burstRatio: col('burstRatio'),
    pairCorrelation100ms,
    pairCorrelation1s,
    perUnit,
  };
}

// ---------------------------------------------------------------------------------------------
// Trial-aligned statistics

export interface TaskTrials {
  stimOn_times: ArrayLike<number>;
  firstMovement_times: ArrayLike<number>;
  feedbackType: ArrayLike<number>;
  contrastLeft: ArrayLike<number>;
  contrastRight: ArrayLike<number>;
  choice: ArrayLike<number>;
}

/** Counts in [event + w0, event + w1) per trial (NaN for a trial without the event). */
export function trialCounts(times: ArrayLike<number>, events: ArrayLike<number>, w0: number, w1: number): Float64Array {
  const out = new Float64Array(events.length);
  for (let i = 0; i < events.length; i++) out[i] = Number.isFinite(events[i]) ? countIn(times, events[i] + w0, events[i] + w1) : NaN;
  return out;
}

/** The trials the IBL modulation tests use: correct, non-zero contrast, stimulus and movement times known. */
export function modulationTrials(t: TaskTrials): number[] {
  const keep: number[] = [];
  for (let i = 0; i < t.stimOn_times.length; i++) {
    const c = Math.max(Number.isFinite(t.contrastLeft[i]) ? t.contrastLeft[i] : 0, Number.isFinite(t.contrastRight[i]) ? t.contrastRight[i] : 0);
    if (t.feedbackType[i] === 1 && c > 0 && Number.isFinite(t.stimOn_times[i]) && Number.isFinite(t.firstMovement_times[i])) keep.push(i);
  }
  return keep;
}

export interface UnitModulation {
  pPostStim: number;
  pPreMove: number;
  pLeftRight: number;
  /** Trial-aligned Fano factor of counts in 100 ms before and 100 ms after (50-150 ms) stimulus onset. */
  fanoPreStim: number;
  fanoPostStim: number;
}

/** IBL-style modulation tests and trial-aligned Fano factors for one unit (rates in each window, as the IBL computes them). */
export function unitModulation(times: ArrayLike<number>, t: TaskTrials, trials: number[]): UnitModulation {
  const pick = (a: ArrayLike<number>) => trials.map((i) => a[i]);
  const stim = pick(t.stimOn_times);
  const move = pick(t.firstMovement_times);
  const base = Array.from(trialCounts(times, stim, -0.2, 0), (c) => c / 0.2);
  const post = Array.from(trialCounts(times, stim, 0.05, 0.15), (c) => c / 0.1);
  const pre = Array.from(trialCounts(times, move, -0.1, 0.05), (c) => c / 0.15);
  const choice = pick(t.choice);
  const left = pre.filter((_, k) => choice[k] === 1);
  const right = pre.filter((_, k) => choice[k] === -1);
  return {
    pPostStim: signedRankP(base, post),
    pPreMove: signedRankP(base, pre),
    pLeftRight: rankSumP(left, right),
    fanoPreStim: fanoOf(trialCounts(times, stim, -0.1, 0)),
    fanoPostStim: fanoOf(trialCounts(times, stim, 0.05, 0.15)),
  };
}

export interface ModulationSummary {
  units: number;
  /** Trials entering the tests (per session, mean over sessions). */
  trials: number;
  /** Fraction of units with p < 0.05 in each test. */
  postStim: number;
  preMove: number;
  leftRight: number;
  /** Fraction significant in the post-stimulus or the pre-movement test. */
  anyTask: number;
  fanoPreStim: DistSummary;
  fanoPostStim: DistSummary;
}

export const MODULATION_ALPHA = 0.05;

/** Modulation of the given units' spike trains, those firing at least `minRateHz` over `durationS`. */
export function modulationRows(units: Float64Array[], t: TaskTrials, durationS: number, minRateHz = TRAIN_MIN_RATE_HZ): UnitModulation[] {
  const trials = modulationTrials(t);
  return units.filter((times) => times.length / durationS >= minRateHz).map((times) => unitModulation(times, t, trials));
}

/** Fractions of significant units, and trial-aligned Fano factors, over per-unit results (of one or more sessions). */
export function summarizeModulation(rows: UnitModulation[], trials: number): ModulationSummary {
  const frac = (f: (u: UnitModulation) => boolean) => (rows.length ? rows.filter(f).length / rows.length : NaN);
  return {
    units: rows.length,
    trials,
    postStim: frac((u) => u.pPostStim < MODULATION_ALPHA),
    preMove: frac((u) => u.pPreMove < MODULATION_ALPHA),
    leftRight: frac((u) => u.pLeftRight < MODULATION_ALPHA),
    anyTask: frac((u) => u.pPostStim < MODULATION_ALPHA || u.pPreMove < MODULATION_ALPHA),
    fanoPreStim: summarizeDist(rows.map((u) => u.fanoPreStim)),
    fanoPostStim: summarizeDist(rows.map((u) => u.fanoPostStim)),
  };
}

// ---------------------------------------------------------------------------------------------
// Anatomy: units per probe and per region

/** A region holds at least this share of its probe's in-brain units to count as one of the probe's regions. */
export const REGION_MIN_SHARE = 0.02;

export interface AnatomySummary {
  probes: number;
  unitsPerProbe: DistSummary;
  /** Regions per probe holding at least REGION_MIN_SHARE of its in-brain units. */
  regionsPerProbe: DistSummary;
  /** Units per (probe, region), over those regions. */
  unitsPerRegion: DistSummary;
  /** Each such region's share of its probe's in-brain units. */
  regionShare: DistSummary;
  /** Share of the largest region on each probe. */
  largestShare: DistSummary;
  /** Fraction of units outside any grey-matter region (void, root, fibre tracts, unlabelled). */
  outsideFraction: number;
  /** Raw per-region shares, for KS distances. */
  shares: number[];
}

/** `regions[i]` is unit i's region on probe `probes[i]`; `null` for a unit outside grey matter. */
export function summarizeAnatomy(probes: ArrayLike<string>, regions: ArrayLike<string | null>): AnatomySummary {
  const byProbe = new Map<string, Map<string, number>>();
  const totals = new Map<string, number>();
  let outside = 0;
  for (let i = 0; i < probes.length; i++) {
    totals.set(probes[i], (totals.get(probes[i]) ?? 0) + 1);
    const r = regions[i];
    if (r === null) {
      outside++;
      continue;
    }
    const m = byProbe.get(probes[i]) ?? new Map<string, number>();
    m.set(r, (m.get(r) ?? 0) + 1);
    byProbe.set(probes[i], m);
  }
  const perProbe: number[] = [];
  const regionsPer: number[] = [];
  const perRegion: number[] = [];
  const shares: number[] = [];
  const largest: number[] = [];
  for (const [p, total] of totals) {
    perProbe.push(total);
    const m = byProbe.get(p) ?? new Map<string, number>();
    const inBrain = [...m.values()].reduce((s, x) => s + x, 0);
    if (!inBrain) continue;
    const kept = [...m.values()].filter((c) => c / inBrain >= REGION_MIN_SHARE);
    regionsPer.push(kept.length);
    for (const c of kept) {
      perRegion.push(c);
      shares.push(c / inBrain);
    }
    largest.push(Math.max(...m.values()) / inBrain);
  }
  return {
    probes: totals.size,
    unitsPerProbe: summarizeDist(perProbe),
    regionsPerProbe: summarizeDist(regionsPer),
    unitsPerRegion: summarizeDist(perRegion),
    regionShare: summarizeDist(shares),
    largestShare: summarizeDist(largest),
    outsideFraction: probes.length ? outside / probes.length : NaN,
    shares,
  };
}

// ---------------------------------------------------------------------------------------------
// Behaviour (the real trials table has no movement times: response = feedback - stimulus onset)

export interface TrialTable {
  stimOn_times: ArrayLike<number>;
  feedback_times: ArrayLike<number>;
  feedbackType: ArrayLike<number>;
  contrastLeft: ArrayLike<number>;
  contrastRight: ArrayLike<number>;
  probabilityLeft: ArrayLike<number>;
  choice: ArrayLike<number>;
}

export interface TrialSummary {
  trials: number;
  fractionCorrect: number;
  /** Fraction correct on trials with contrast >= 0.25 (the easy ones) and on zero-contrast ones. */
  correctEasy: number;
  correctZero: number;
  /** Fraction of no-go trials (choice 0). */
  noGo: number;
  /** feedback - stimOn, s. */
  responseS: DistSummary;
  /** next stimOn - feedback, s. */
  interTrialS: DistSummary;
  responses: number[];
  interTrials: number[];
}

export function summarizeTrials(t: TrialTable): TrialSummary {
  const n = t.stimOn_times.length;
  let correct = 0;
  let easyN = 0;
  let easyC = 0;
  let zeroN = 0;
  let zeroC = 0;
  let nogo = 0;
  const responses: number[] = [];
  const iti: number[] = [];
  for (let i = 0; i < n; i++) {
    const ok = t.feedbackType[i] === 1;
    if (ok) correct++;
    if (t.choice[i] === 0) nogo++;
    const c = Math.max(Number.isFinite(t.contrastLeft[i]) ? t.contrastLeft[i] : 0, Number.isFinite(t.contrastRight[i]) ? t.contrastRight[i] : 0);
    if (c >= 0.25) {
      easyN++;
      if (ok) easyC++;
    } else if (c === 0) {
      zeroN++;
      if (ok) zeroC++;
    }
    const r = t.feedback_times[i] - t.stimOn_times[i];
    // No-go trials time out after a minute: not a response.
    if (Number.isFinite(r) && t.choice[i] !== 0) responses.push(r);
    if (i + 1 < n) {
      const g = t.stimOn_times[i + 1] - t.feedback_times[i];
      if (Number.isFinite(g)) iti.push(g);
    }
  }
  return {
    trials: n,
    fractionCorrect: n ? correct / n : NaN,
    correctEasy: easyN ? easyC / easyN : NaN,
    correctZero: zeroN ? zeroC / zeroN : NaN,
    noGo: n ? nogo / n : NaN,
    responseS: summarizeDist(responses),
    interTrialS: summarizeDist(iti),
    responses,
    interTrials: iti,
  };
}
