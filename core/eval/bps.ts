// bits/spike (SPEC.md §5): how much better than a neuron's own mean rate a prediction explains
// its spikes, per spike. Poisson NLL with rates in counts per bin; the log(y!) terms cancel.

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
  evaluatedNeurons: number;
  /** Neurons skipped because they had no evaluated spikes (or no evaluated entries). */
  excludedNeurons: number;
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
  for (let n = 0; n < nNeurons; n++) {
    if (spikes[n] <= 0 || entries[n] === 0) continue;
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
    evaluatedNeurons: evaluated,
    excludedNeurons: nNeurons - evaluated,
    spikes: pooledSpikes,
  };
}
