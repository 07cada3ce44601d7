import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bitsPerSpike, MIN_RATE } from './bps.ts';

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
