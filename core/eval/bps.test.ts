import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bitsPerSpike, MIN_RATE, QUANTILE_LEVELS, quantileKey, quantiles } from './bps.ts';

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);

test('one neuron, hand-computed', () => {
  // counts 0,1,2,1 over 4 bins; null rate = 1; model rates 0.5,1,2,1.
  const r = bitsPerSpike({ counts: [0, 1, 2, 1], predicted: [0.5, 1, 2, 1], nTrials: 1, nBins: 4, nNeurons: 1 });
  const nllNull = 4 * 1 - 4 * Math.log(1);
  const nllModel = 0.5 + 1 + (2 - 2 * Math.log(2)) + 1;
  close(r.perNeuron[0], (nllNull - nllModel) / (4 * Math.LN2));
  close(r.mean, r.perNeuron[0]);
  close(r.pooled, r.perNeuron[0]);
});

test('predicting the mean scores exactly 0; the truth scores above 0; log-rates give the same', () => {
  const counts = [0, 3, 0, 3];
  close(bitsPerSpike({ counts, predicted: [1.5, 1.5, 1.5, 1.5], nTrials: 2, nBins: 2, nNeurons: 1 }).mean, 0, 1e-12);
  const good = bitsPerSpike({ counts, predicted: [0.1, 2.9, 0.1, 2.9], nTrials: 2, nBins: 2, nNeurons: 1 });
  assert.ok(good.mean > 0);
  const viaLog = bitsPerSpike({ counts, predicted: [0.1, 2.9, 0.1, 2.9].map(Math.log), logRates: true, nTrials: 2, nBins: 2, nNeurons: 1 });
  close(viaLog.mean, good.mean, 1e-12);
});

test('silent neurons are excluded and counted; pooled weights neurons by spikes', () => {
  // 2 neurons interleaved [bin][neuron]: neuron 0 fires, neuron 1 is silent.
  const counts = [2, 0, 0, 0, 4, 0];
  const pred = [2, 0.3, 0.5, 0.1, 3, 0.2];
  const r = bitsPerSpike({ counts, predicted: pred, nTrials: 1, nBins: 3, nNeurons: 2 });
  assert.ok(Number.isNaN(r.perNeuron[1]));
  assert.is(r.excludedNeurons, 1);
  assert.is(r.evaluatedNeurons, 1);
  close(r.mean, r.perNeuron[0]);
  assert.is(r.spikes, 6);
  assert.is(r.silentNeurons, 1);
  assert.is(r.unscoredNeurons, 0);
});

test('exclusion rule: silent (entries, no spike) and unscored (no entry) are told apart; the rest always count', () => {
  // 3 neurons over 4 bins: 0 fires once (the sparsest scorable unit), 1 is silent, 2 has no evaluated entry.
  const counts = [0, 0, 5, 1, 0, 5, 0, 0, 5, 0, 0, 5];
  const pred = [0.25, 0.1, 1, 0.25, 0.1, 1, 0.25, 0.1, 1, 0.25, 0.1, 1];
  const mask = [1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0];
  const r = bitsPerSpike({ counts, predicted: pred, mask, nTrials: 1, nBins: 4, nNeurons: 3 });
  assert.is(r.evaluatedNeurons, 1);
  assert.is(r.silentNeurons, 1);
  assert.is(r.unscoredNeurons, 1);
  assert.is(r.excludedNeurons, 2);
  assert.is(r.evaluatedNeurons + r.excludedNeurons, 3);
  // One spike is enough to be scored: predicting its mean (1/4) scores 0 exactly.
  close(r.perNeuron[0], 0, 1e-12);
  assert.ok(Number.isNaN(r.perNeuron[1]) && Number.isNaN(r.perNeuron[2]));
  for (const q of r.quantiles) close(q, 0, 1e-12);
});

test('quantiles: linear interpolation between order statistics, NaN skipped, NaN when empty', () => {
  // numpy.percentile([1, 2, 3, 4, 10], [10, 25, 50, 75, 90]) = [1.4, 2, 3, 4, 7.6]
  const q = quantiles([4, Number.NaN, 1, 10, 3, 2]);
  [1.4, 2, 3, 4, 7.6].forEach((v, i) => close(q[i], v, 1e-12));
  assert.equal(quantiles([7]), [7, 7, 7, 7, 7]);
  assert.ok(quantiles([Number.NaN]).every(Number.isNaN));
  assert.equal(quantiles([0, 10], [0, 0.5, 1]), [0, 5, 10]);
  assert.throws(() => quantiles([1], [1.5]), /not in \[0, 1\]/);
  assert.equal(QUANTILE_LEVELS.map(quantileKey), ['q10', 'q25', 'q50', 'q75', 'q90']);
});

test('one very bad unit drags the mean, not the median: the quantiles show the rest', () => {
  // 9 neurons predicted at their mean (0 bits/spike) and one sparse unit predicted 100x too high.
  const nN = 10;
  const nB = 100;
  const counts = new Array(nB * nN).fill(0);
  const pred = new Array(nB * nN).fill(0);
  for (let t = 0; t < nB; t++) {
    for (let n = 0; n < nN; n++) {
      counts[t * nN + n] = n < 9 ? (t % 2) * 2 : t === 0 ? 1 : 0;
      pred[t * nN + n] = 1; // the sparse unit's mean is 0.01
    }
  }
  const r = bitsPerSpike({ counts, predicted: pred, nTrials: 1, nBins: nB, nNeurons: nN });
  assert.ok(r.mean < -10, `mean ${r.mean}`);
  close(r.quantiles[2], 0, 1e-12); // the median is one of the nine good units
  close(r.quantiles[1], 0, 1e-12);
  assert.ok(r.quantiles[0] < 0 && r.quantiles[0] > r.perNeuron[9], 'the 10 % quantile sits between the bad unit and the rest');
});

test('zero predicted rate under a spike is clamped, not infinite', () => {
  const r = bitsPerSpike({ counts: [1, 0], predicted: [0, 1], nTrials: 1, nBins: 2, nNeurons: 1 });
  const nllModel = MIN_RATE - Math.log(MIN_RATE) + 1;
  const nllNull = 2 * 0.5 - Math.log(0.5);
  close(r.perNeuron[0], (nllNull - nllModel) / Math.LN2, 1e-6);
  assert.ok(Number.isFinite(r.mean) && r.mean < -20);
});

test('the mask limits evaluation to chosen entries, the null included', () => {
  const counts = [5, 1, 1, 1];
  const pred = [9, 1, 1, 1];
  const masked = bitsPerSpike({ counts, predicted: pred, mask: [0, 1, 1, 1], nTrials: 1, nBins: 4, nNeurons: 1 });
  close(masked.mean, 0, 1e-12); // on the 3 evaluated bins the prediction equals the null (mean 1)
  assert.throws(() => bitsPerSpike({ counts, predicted: [1, 2], nTrials: 1, nBins: 4, nNeurons: 1 }), /must hold 1x4x1=4 entries/);
  assert.throws(() => bitsPerSpike({ counts, predicted: [1, -1, 1, 1], nTrials: 1, nBins: 4, nNeurons: 1 }), /negative or NaN/);
});

test.run();
