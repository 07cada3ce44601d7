import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BinnedSession, Split } from '../payloads.ts';
import { createRng } from '../rng.ts';
import { initBackend } from '../tensor/backend.ts';
import * as tf from '../tensor/tf.ts';
import { DEFAULT_TASK_PROMPTS, EVAL_TASKS, gatherTrials, regionLabels, runTask, type LogRatePredictor } from './tasks.ts';
import { oracleForTask } from './oracle.ts';

await initBackend();

const T = 10;
const REGIONS = ['CA1', 'LP', 'CA1', 'VISp', 'LP', 'CA1'];
const N = REGIONS.length;
const TN = T * N;

/** Poisson counts from known rates that vary with trial, bin and neuron. */
function session(nTrials: number, seed: number): BinnedSession {
  const rng = createRng(seed);
  const trueRates = new Float32Array(nTrials * TN);
  const counts = new Int32Array(nTrials * TN);
  for (let i = 0; i < trueRates.length; i++) {
    const r = Math.floor(i / TN);
    const t = Math.floor((i % TN) / N);
    const n = i % N;
    trueRates[i] = Math.exp(0.2 + 0.9 * Math.sin(t / 2 + n + r / 3));
    counts[i] = rng.poisson(trueRates[i]);
  }
  const split: Split[] = Array.from({ length: nTrials }, (_, r) => (r % 2 ? 'test' : 'train'));
  return {
    kind: 'binned-session', sessionId: 'sim', binSizeMs: 20, windowS: [0, T * 0.02], nTrials, nBins: T, nNeurons: N, counts,
    trials: { trialIndex: Int32Array.from({ length: nTrials }, (_, i) => i), split, columns: {} },
    neurons: REGIONS.map((a, i) => ({ probe: 'p', clusterId: i, atlasId: -1, acronym: a, beryl: a, cosmos: a, depthUm: 0, good: true })),
    perBin: {}, trueRates,
  };
}

test('a model returning the true log-rates scores exactly the oracle on every task (ratio 1); a flat one less', async () => {
  const s = session(14, 7);
  const regions = regionLabels(s);
  // Answers from the session trial each batch row copies, ignoring the (masked) input.
  const truth: LogRatePredictor = (r) => tf.log(tf.tensor3d(gatherTrials(s.trueRates!, r.rows, TN), [r.rows.length, T, N])) as tf.Tensor3D;
  const flat: LogRatePredictor = (r) => tf.zerosLike(r.input) as tf.Tensor3D;
  for (const task of EVAL_TASKS) {
    const opts = { mode: DEFAULT_TASK_PROMPTS[task], causal: task === 'forwardPrediction', batchSize: 5 };
    const r = await runTask(s, task, truth, regions, 3, opts);
    const o = oracleForTask(s, r)!;
    assert.ok(o.bps.evaluatedNeurons > 0);
    assert.is(o.bps.evaluatedNeurons, r.bps.evaluatedNeurons);
    assert.ok(o.bps.mean > 0, `${task}: the truth beats the mean`);
    assert.ok(Math.abs(o.bps.mean - r.bps.mean) < 1e-5, `${task}: ${o.bps.mean} vs ${r.bps.mean}`);
    assert.ok(Math.abs(o.ratio - 1) < 1e-4 && Math.abs(o.pooledRatio - 1) < 1e-4, `${task} ratio ${o.ratio}`);
    const worse = oracleForTask(s, await runTask(s, task, flat, regions, 3, opts))!;
    assert.ok(worse.ratio < 1, `${task} flat ratio ${worse.ratio}`);
    // Same entries scored: the oracle does not depend on what the model predicted.
    assert.equal(worse.bps.perNeuron, o.bps.perNeuron);
  }
});

test('the oracle scores only the task\'s entries (forward prediction: the last bins)', async () => {
  const s = session(8, 9);
  const r = await runTask(s, 'forwardPrediction', (x) => tf.zerosLike(x.input) as tf.Tensor3D, regionLabels(s), 3, { mode: 'causal', causal: true, batchSize: 8 });
  // Corrupt the true rates of the unscored bins: the oracle must not change.
  const o1 = oracleForTask(s, r)!;
  const rates = s.trueRates!.slice();
  for (let i = 0; i < rates.length; i++) if (Math.floor((i % TN) / N) < T - 3) rates[i] = 1e-3;
  const o2 = oracleForTask({ ...s, trueRates: rates }, r)!;
  assert.equal(o2.bps.perNeuron, o1.bps.perNeuron);
  for (let i = 0; i < rates.length; i++) if (Math.floor((i % TN) / N) >= T - 3) rates[i] = 1e-3;
  assert.ok(oracleForTask({ ...s, trueRates: rates }, r)!.bps.mean < o1.bps.mean);
});

test('no true rates: no oracle; wrongly sized true rates: an error naming the session', async () => {
  const s = session(6, 3);
  const r = await runTask(s, 'coSmoothing', (x) => tf.zerosLike(x.input) as tf.Tensor3D, regionLabels(s), 3, { mode: 'neuron', causal: false, batchSize: 8 });
  assert.is(oracleForTask({ ...s, trueRates: undefined }, r), undefined);
  assert.throws(() => oracleForTask({ ...s, trueRates: new Float32Array(5) }, r), /session sim: trueRates has 5 entries/);
});

test.run();
