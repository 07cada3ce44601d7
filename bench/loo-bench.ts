// Times leave-one-out evaluation (co-smoothing, intra-region) through NDT1's exact rank-1 fast
// path against the plain path, and optionally a whole evaluateSession. Not a test: run by hand,
//   node --import tsx bench/loo-bench.ts --neurons 300 --testTrials 44 [--fastBatches 16,32] [--full]
// Plain and fast paths alternate (--rounds) on the first --compareTrials test trials, every
// neuron left out, compared value by value; times per copy extrapolate to every test trial
// (every trial costs the same). --fastBatches times the fast path on every test trial per batch
// size; --full (or --fullOnly) times a whole evaluateSession with the stage defaults, --fullPlain
// a second one without the fast path.
import { parseArgs } from 'node:util';
import type { BinnedSession, Split } from '../core/payloads.ts';
import { createRng } from '../core/rng.ts';
import { initBackend, type BackendChoice } from '../core/tensor/backend.ts';
import { testContext } from '../core/testing.ts';
import { ndt1Architecture } from '../plugins/ndt1/architecture.ts';
import { evaluateParams, evaluateSession } from '../stages/evaluate.ts';
import { DEFAULT_TASK_PROMPTS, modelPredictor, regionLabels, runTask, testRows } from '../core/eval/tasks.ts';

const { values: a } = parseArgs({
  options: {
    neurons: { type: 'string', default: '300' },
    bins: { type: 'string', default: '100' },
    testTrials: { type: 'string', default: '44' },
    regions: { type: 'string', default: '6' },
    dModel: { type: 'string', default: '64' },
    layers: { type: 'string', default: '2' },
    heads: { type: 'string', default: '4' },
    mlpDim: { type: 'string', default: '128' },
    batch: { type: 'string', default: '32' },
    fastBatches: { type: 'string', default: '' },
    compareTrials: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    full: { type: 'boolean', default: false },
    fullOnly: { type: 'boolean', default: false },
    fullPlain: { type: 'boolean', default: false },
    backend: { type: 'string', default: '' },
  },
});
const num = (s: string | undefined) => Number(s);
const [N, T, nTest, R, B] = [a.neurons, a.bins, a.testTrials, a.regions, a.batch].map(num);
const info = await initBackend({ force: (a.backend || undefined) as BackendChoice | undefined });

/** A simulator-like session: 5x the test trials in all (60/20/20 split), Poisson counts, behaviour. */
function session(): BinnedSession {
  const nTrials = nTest * 5;
  const rng = createRng(7);
  const TN = T * N;
  const counts = new Int32Array(nTrials * TN);
  const trueRates = new Float32Array(nTrials * TN);
  for (let r = 0; r < nTrials; r++) {
    for (let t = 0; t < T; t++) {
      for (let n = 0; n < N; n++) {
        const i = r * TN + t * N + n;
        trueRates[i] = Math.exp(-2 + (n % 7) / 4 + 0.8 * Math.sin(t / 8 + n + r / 5));
        counts[i] = rng.poisson(trueRates[i]);
      }
    }
  }
  const split: Split[] = Array.from({ length: nTrials }, (_, r) => (r % 5 === 4 ? 'test' : r % 5 === 3 ? 'val' : 'train'));
  const names = Array.from({ length: R }, (_, i) => `R${i}`);
  return {
    kind: 'binned-session', sessionId: 'bench', binSizeMs: 20, windowS: [-0.5, -0.5 + T * 0.02], nTrials, nBins: T, nNeurons: N, counts,
    trials: { trialIndex: Int32Array.from({ length: nTrials }, (_, i) => i), split, columns: { choice: Float64Array.from({ length: nTrials }, () => (rng.int(2) ? 1 : -1)) } },
    neurons: Array.from({ length: N }, (_, i) => ({ probe: 'probe00', clusterId: i, atlasId: -1, acronym: names[i % R], beryl: names[i % R], cosmos: names[i % R], depthUm: 0, good: true })),
    perBin: {
      wheelSpeed: Float32Array.from({ length: nTrials * T }, () => rng.normal()),
      whiskerMotionEnergy: Float32Array.from({ length: nTrials * T }, () => rng.normal()),
    },
    trueRates,
  };
}

const s = session();
const config = { dModel: num(a.dModel), layers: num(a.layers), heads: num(a.heads), mlpDim: num(a.mlpDim), maxBins: T };
const model = ndt1Architecture.build(config, { sessions: [{ sessionId: 'bench', nNeurons: N, nBins: T }], seed: 1 });
const predictor = modelPredictor(model, 'bench');
const regions = regionLabels(s);
const rows = testRows(s);
const out: Record<string, unknown> = { backend: info.name, config, session: { neurons: N, bins: T, testTrials: rows.length, regions: R }, batch: B };

if (!a.fullOnly) {
  // Plain and fast alternate on the same few test trials (every neuron, so batches are laid out
  // as in a full run): both see the same machine load, and every trial costs the same.
  const few = rows.slice(0, num(a.compareTrials));
  for (const task of ['coSmoothing', 'intraRegion'] as const) {
    const o = { mode: DEFAULT_TASK_PROMPTS[task], causal: false, batchSize: B, rows: few };
    const ms: Record<'plain' | 'fast', number[]> = { plain: [], fast: [] };
    let worst = 0;
    let jobs = 0;
    for (let round = 0; round < num(a.rounds); round++) {
      const plain = await runTask(s, task, predictor, regions, 10, { ...o, fastLeaveOneOut: false });
      const fast = await runTask(s, task, predictor, regions, 10, o);
      for (let e = 0; e < fast.predicted.length; e++) if (plain.scored[e]) worst = Math.max(worst, Math.abs(fast.predicted[e] - plain.predicted[e]));
      jobs = plain.forwardPasses;
      ms.plain.push((1000 * plain.seconds) / jobs);
      ms.fast.push((1000 * fast.seconds) / jobs);
    }
    const min = (v: number[]) => Math.min(...v);
    const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];
    const allJobs = N * rows.length;
    const res: Record<string, unknown> = {
      comparedCopies: jobs,
      msPerCopy: { plain: ms.plain.map((v) => +v.toFixed(2)), fast: ms.fast.map((v) => +v.toFixed(2)) },
      speedUpOfMin: +(min(ms.plain) / min(ms.fast)).toFixed(2),
      speedUpOfMedian: +(median(ms.plain) / median(ms.fast)).toFixed(2),
      maxAbsDiff: worst,
      allTrialsSExtrapolatedFromMin: { plain: +((min(ms.plain) * allJobs) / 1000).toFixed(1), fast: +((min(ms.fast) * allJobs) / 1000).toFixed(1) },
    };
    if (a.fastBatches) {
      // The fast path over every test trial, per batch size: the real task time.
      const allS: Record<string, number> = {};
      for (const fb of a.fastBatches.split(',').map(Number)) allS[fb] = +(await runTask(s, task, predictor, regions, 10, { ...o, rows, batchSize: fb })).seconds.toFixed(1);
      res.fastAllTrialsSByBatch = allS;
    }
    out[task] = res;
    console.error(task, JSON.stringify(res));
  }
}

if (a.full || a.fullOnly) {
  for (const fastLeaveOneOut of a.fullPlain ? [true, false] : [true]) {
    const p = evaluateParams.parse({ batchSize: B, fastLeaveOneOut });
    const ev = await evaluateSession(model, s, p, testContext('evaluate'));
    const key = fastLeaveOneOut ? 'fullEvaluation' : 'fullEvaluationPlain';
    out[key] = {
      ...Object.fromEntries(Object.entries(ev.values).filter(([k]) => k.endsWith('seconds')).map(([k, v]) => [k, +v.toFixed(1)])),
      behaviour: ev.behaviour && { predictSeconds: +ev.behaviour.predictSeconds.toFixed(1), fitSeconds: +ev.behaviour.fitSeconds.toFixed(1) },
    };
    console.error(key, JSON.stringify(out[key]));
  }
}
out.peakMB = Math.round(process.memoryUsage().rss / 2 ** 20);
console.log(JSON.stringify(out, null, 2));
model.dispose();
