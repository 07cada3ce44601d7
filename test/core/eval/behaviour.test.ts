import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BinnedSession, Split } from '../../../core/payloads.ts';
import { createRng } from '../../../core/rng.ts';
import { initBackend } from '../../../core/tensor/backend.ts';
import * as tf from '../../../core/tensor/tf.ts';
import { ndt1Architecture } from '../../../plugins/ndt1/architecture.ts';
import { decodeBehaviour, predictTrials, type BehaviourOptions } from '../../../core/eval/behaviour.ts';
import { modelPredictor, type LogRatePredictor } from '../../../core/eval/tasks.ts';

await initBackend();

const T = 6;
const N = 5;
const TN = T * N;

/**
 * A session whose trial-level latent `a` drives both the (fake) model's log-rates and the
 * behaviour: choice = sign(a), wheel speed = a x a ramp over bins. Whisker motion energy is
 * unrelated noise. Returns the predictor that encodes `a`.
 */
function known(nTrials = 80, seed = 1): { s: BinnedSession; predictor: LogRatePredictor; calls: { mode: string; causal: boolean }[] } {
  const rng = createRng(seed);
  const a = Float64Array.from({ length: nTrials }, () => rng.normal());
  const wheel = new Float32Array(nTrials * T);
  const wme = new Float32Array(nTrials * T);
  for (let r = 0; r < nTrials; r++) for (let b = 0; b < T; b++) {
    wheel[r * T + b] = a[r] * (1 + b / T);
    wme[r * T + b] = rng.normal();
  }
  const noise = Float32Array.from({ length: nTrials * TN }, () => 0.1 * rng.normal());
  const pattern = Float32Array.from({ length: TN }, (_, e) => Math.cos(e));
  const split: Split[] = Array.from({ length: nTrials }, (_, r) => (r % 5 === 4 ? 'test' : r % 10 === 3 ? 'val' : 'train'));
  const s: BinnedSession = {
    kind: 'binned-session', sessionId: 'k', binSizeMs: 20, windowS: [0, T * 0.02], nTrials, nBins: T, nNeurons: N,
    counts: Int32Array.from({ length: nTrials * TN }, () => rng.poisson(1)),
    trials: { trialIndex: Int32Array.from({ length: nTrials }, (_, i) => i), split, columns: { choice: Float64Array.from(a, (v) => (v > 0 ? 1 : -1)) } },
    neurons: Array.from({ length: N }, (_, i) => ({ probe: 'p', clusterId: i, atlasId: -1, acronym: 'CA1', beryl: 'CA1', cosmos: 'HPF', depthUm: 0, good: true })),
    perBin: { wheelSpeed: wheel, whiskerMotionEnergy: wme },
  };
  const calls: { mode: string; causal: boolean }[] = [];
  const predictor: LogRatePredictor = (req) => {
    calls.push({ mode: req.mode, causal: req.causal });
    const out = new Float32Array(req.rows.length * TN);
    req.rows.forEach((row, i) => {
      for (let e = 0; e < TN; e++) out[i * TN + e] = a[row] * pattern[e] + noise[row * TN + e];
    });
    return tf.tensor3d(out, [req.rows.length, T, N]);
  };
  return { s, predictor, calls };
}

const opts = (o: Partial<BehaviourOptions> = {}): BehaviourOptions => ({
  // A short penalty grid and 3 folds keep the logistic fits quick; the answers are not borderline.
  choicePrompt: 'neuron', continuousPrompt: 'causal', promptTokens: true, batchSize: 16, rng: createRng(9), lambdas: [1e-2, 1, 100], folds: 3, ...o,
});

test('known answer: choice and wheel speed decoded from rates that carry them; unrelated motion energy is not', async () => {
  const { s, predictor, calls } = known();
  const r = await decodeBehaviour(s, predictor, opts());
  const c = r.decoded.choice!;
  assert.ok(c.accuracy! >= 0.9, `choice accuracy ${c.accuracy}`);
  // Chance: answering the train+val majority class on every test trial.
  const ch = s.trials.columns.choice;
  const fit = [...ch].filter((_, t) => s.trials.split[t] !== 'test');
  const major = fit.filter((v) => v === 1).length * 2 >= fit.length ? 1 : -1;
  const testCh = [...ch].filter((_, t) => s.trials.split[t] === 'test');
  assert.is(c.chance, testCh.filter((v) => v === major).length / testCh.length);
  assert.is(c.nTest, 16);
  assert.is(c.nTrain, 64);
  assert.ok(r.decoded.wheelSpeed!.r2! > 0.95, `wheel r2 ${r.decoded.wheelSpeed!.r2}`);
  assert.ok(r.decoded.whiskerMotionEnergy!.r2! < 0.1, `wme r2 ${r.decoded.whiskerMotionEnergy!.r2}`);
  assert.equal(r.skipped, {});
  // Two prompts, one pass each over all 80 trials (batches of 16).
  assert.equal([...new Set(calls.map((x) => `${x.mode}:${x.causal}`))].sort(), ['causal:true', 'neuron:false']);
  assert.is(calls.length, 10);
  assert.is(c.mode, 'neuron');
  assert.is(r.decoded.wheelSpeed!.mode, 'causal');
  assert.ok(r.decoded.wheelSpeed!.causal);
});

test('no prompt tokens: one temporal pass serves every target', async () => {
  const { s, predictor, calls } = known(40, 2);
  const r = await decodeBehaviour(s, predictor, opts({ promptTokens: false }));
  assert.ok(calls.every((x) => x.mode === 'temporal' && !x.causal));
  assert.is(calls.length, 3);
  assert.is(r.decoded.choice!.mode, 'temporal');
});

test('missing targets are skipped with a reason; trials with missing values are left out', async () => {
  const { s, predictor } = known(50, 3);
  const wheel = s.perBin.wheelSpeed.slice();
  wheel[4 * T + 2] = NaN; // trial 4 is a test trial
  wheel[0] = NaN; // trial 0 a train trial
  const choice = s.trials.columns.choice.slice();
  choice[1] = NaN;
  const lacking: BinnedSession = { ...s, perBin: { wheelSpeed: wheel }, trials: { ...s.trials, columns: { choice } } };
  const r = await decodeBehaviour(lacking, predictor, opts());
  assert.match(r.skipped.whiskerMotionEnergy!, /no per-bin whiskerMotionEnergy/);
  assert.is(r.decoded.whiskerMotionEnergy, undefined);
  assert.is(r.decoded.wheelSpeed!.nTest, 9);
  assert.is(r.decoded.wheelSpeed!.nTrain, 39);
  assert.is(r.decoded.choice!.nTrain, 39);
  const none = await decodeBehaviour({ ...s, trials: { ...s.trials, columns: {} }, perBin: {} }, predictor, opts());
  assert.equal(Object.keys(none.decoded), []);
  assert.match(none.skipped.choice!, /no choice column/);
  const same = await decodeBehaviour({ ...s, trials: { ...s.trials, columns: { choice: new Float64Array(50).fill(1) } } }, predictor, opts({ targets: ['choice'] }));
  assert.match(same.skipped.choice!, /same choice/);
});

test('untrained NDT1: unmasked predictions match a direct forward pass; decoding runs with no tensor leak', async () => {
  const { s } = known(30, 4);
  const model = ndt1Architecture.build({ dModel: 16, layers: 1, heads: 2, mlpDim: 32, maxBins: T }, { sessions: [{ sessionId: 'k', nNeurons: N, nBins: T }], seed: 3 });
  const p = modelPredictor(model, 'k');
  const before = tf.memory().numTensors;
  const rows = Int32Array.from([3, 7, 8]);
  const x = await predictTrials(s, p, rows, 'neuron', false, 2);
  const input = tf.tensor3d(Float32Array.from(s.counts.subarray(7 * TN, 8 * TN)), [1, T, N]);
  const direct = model.forward({ sessionId: 'k', input, mode: 'neuron', causal: false }, { training: false });
  const d = direct.dataSync();
  tf.dispose([input, direct]);
  for (let e = 0; e < TN; e++) assert.ok(Math.abs(x[TN + e] - d[e]) < 1e-4);
  const r = await decodeBehaviour(s, p, opts());
  assert.is(tf.memory().numTensors, before);
  assert.ok(r.decoded.choice!.accuracy! >= 0 && r.decoded.choice!.accuracy! <= 1);
  assert.ok(Number.isFinite(r.decoded.wheelSpeed!.r2!));
  assert.ok(r.predictSeconds > 0 && r.fitSeconds > 0);
  model.dispose();
});

test.run();
