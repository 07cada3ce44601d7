// bits/spike (docs/method.md §5.1): how much better than a neuron's own mean rate a prediction explains
// its spikes, per spike. Poisson NLL with rates in counts per bin; the log(y!) terms cancel.
//
// Which neurons a figure covers, decided here (every count below is reported, never hidden):
// - A neuron is scored when it has at least one spike among the evaluated entries. With none,
//   its bits/spike is 0/0: the null model's rate is zero and there is no spike to divide by. Such
//   a neuron is excluded from the mean, the pooled figure and the quantiles, its per-neuron value
//   is NaN (null in files), and it is counted: `silentNeurons` when it had evaluated entries but
//   no spike in them (e.g. a unit that never fired in the test trials), `unscoredNeurons` when the
//   task evaluated none of its entries (not left out in a subset, its region task skipped).
//   `excludedNeurons` is their sum, so evaluatedNeurons + excludedNeurons = nNeurons always.
// - No other neuron is dropped, however few its spikes or however low its rate: a unit with one
//   test spike is scored like any other (the published MtM evaluation, too, leaves only undefined
//   figures out of its mean). One such unit can pull the per-neuron mean far down, so the result
//   also carries quantiles of the per-neuron values (`quantiles`, QUANTILE_LEVELS), which one
//   unit cannot move by more than its rank.
// - A zero predicted rate is clamped to MIN_RATE before the log, as in the NLB code: the figure
//   stays finite (very negative) instead of -Infinity.
// - Quantiles interpolate linearly between order statistics (numpy's default, "linear"): the
//   q-quantile of n sorted values v is v[h] + (h - floor h)(v[floor h + 1] - v[floor h]) with
//   h = q (n - 1). NaN when no neuron is scored.

/** The quantiles of the per-neuron values every result carries (10, 25, 50, 75 and 90 %). */
export const QUANTILE_LEVELS = [0.1, 0.25, 0.5, 0.75, 0.9] as const;

/** Metric-key suffix of a quantile level: 0.1 -> 'q10'. */
export function quantileKey(level: number): string {
  return `q${Math.round(level * 100)}`;
}

/**
 * Quantiles of the finite values (NaN skipped), by linear interpolation between order
 * statistics (see the file comment); NaN for each level when no value is finite.
 */
export function quantiles(values: ArrayLike<number>, levels: readonly number[] = QUANTILE_LEVELS): number[] {
  const v = Array.from(values).filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return levels.map((q) => {
    if (!(q >= 0 && q <= 1)) throw new Error(`quantiles: level ${q} is not in [0, 1]`);
    if (!v.length) return NaN;
    const h = q * (v.length - 1);
    const lo = Math.floor(h);
    return lo + 1 < v.length ? v[lo] + (h - lo) * (v[lo + 1] - v[lo]) : v[lo];
  });
}

/** Rates are clamped here before the log: a zero rate under a spike would make the NLL infinite. */
export const MIN_RATE = 1e-9;

export interface BpsInput {
  /** Observed counts, row-major [trial][bin][neuron]. */
  counts: ArrayLike<number>;
  /** Predicted rates in counts per bin (or log-rates with `logRates: true`), same layout. */
  predicted: ArrayLike<number>;
  logRates?: boolean;
  nTrials: number;
  nBins: number;
  nNeurons: number;
  /** 1 where an entry is evaluated; all entries when omitted. Same layout. */
  mask?: ArrayLike<number>;
}

export interface BpsResult {
  /** Per neuron; NaN for neurons with no evaluated spikes (excluded from the mean). */
  perNeuron: Float64Array;
  /** Mean over neurons with evaluated spikes: the headline figure. */
  mean: number;
  /** NLB-style: all evaluated neurons' NLL differences summed over all their spikes. */
  pooled: number;
  /** Quantiles of the scored neurons' values at QUANTILE_LEVELS (NaN when none is scored). */
  quantiles: number[];
  evaluatedNeurons: number;
  /** Neurons skipped: silentNeurons + unscoredNeurons (see the file comment). */
  excludedNeurons: number;
  /** Neurons with evaluated entries but no spike in them. */
  silentNeurons: number;
  /** Neurons with no evaluated entry at all. */
  unscoredNeurons: number;
  spikes: number;
}

export function bitsPerSpike(x: BpsInput): BpsResult {
  const { nTrials, nBins, nNeurons, counts, predicted, mask } = x;
  const total = nTrials * nBins * nNeurons;
  if (counts.length !== total || predicted.length !== total || (mask && mask.length !== total)) {
    throw new Error(`bitsPerSpike: arrays must hold ${nTrials}x${nBins}x${nNeurons}=${total} entries (counts ${counts.length}, predicted ${predicted.length}${mask ? `, mask ${mask.length}` : ''})`);
  }
  const spikes = new Float64Array(nNeurons);
  const entries = new Float64Array(nNeurons);
  const modelTerm = new Float64Array(nNeurons); // sum of rate - y log rate
  for (let i = 0; i < total; i++) {
    if (mask && !mask[i]) continue;
    const n = i % nNeurons;
    const y = counts[i];
    const rate = x.logRates ? Math.exp(predicted[i]) : predicted[i];
    if (!(rate >= 0)) throw new Error(`bitsPerSpike: predicted rate ${rate} at entry ${i} is negative or NaN`);
    const r = Math.max(rate, MIN_RATE);
    spikes[n] += y;
    entries[n] += 1;
    modelTerm[n] += r - y * Math.log(r);
  }
  const perNeuron = new Float64Array(nNeurons).fill(NaN);
  let sum = 0;
  let evaluated = 0;
  let pooledNum = 0;
  let pooledSpikes = 0;
  let silent = 0;
  let unscored = 0;
  for (let n = 0; n < nNeurons; n++) {
    if (entries[n] === 0) {
      unscored++;
      continue;
    }
    if (spikes[n] <= 0) {
      silent++;
      continue;
    }
    // Null model: the neuron's mean count over the evaluated entries; its NLL in closed form.
    const mean = spikes[n] / entries[n];
    const nullTerm = entries[n] * mean - spikes[n] * Math.log(mean);
    const diff = nullTerm - modelTerm[n];
    perNeuron[n] = diff / (spikes[n] * Math.LN2);
    sum += perNeuron[n];
    evaluated++;
    pooledNum += diff;
    pooledSpikes += spikes[n];
  }
  return {
    perNeuron,
    mean: evaluated ? sum / evaluated : NaN,
    pooled: pooledSpikes ? pooledNum / (pooledSpikes * Math.LN2) : NaN,
    quantiles: quantiles(perNeuron),
    evaluatedNeurons: evaluated,
    excludedNeurons: silent + unscored,
    silentNeurons: silent,
    unscoredNeurons: unscored,
    spikes: pooledSpikes,
  };
}
