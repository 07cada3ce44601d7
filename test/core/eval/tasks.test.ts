import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BinnedSession, NeuronInfo, Split } from '../../../core/payloads.ts';
import { createRng } from '../../../core/rng.ts';
import { initBackend } from '../../../core/tensor/backend.ts';
import * as tf from '../../../core/tensor/tf.ts';
import { ndt1Architecture } from '../../../plugins/ndt1/architecture.ts';
import {
  coSmoothingMask, DEFAULT_TASK_PROMPTS, EVAL_TASKS, evaluateTasks, forwardPredictionMask, gatherTrials, hasPromptTokens, interRegionMask,
  intraRegionMask, modelPredictor, planTask, regionLabels, resolvePrompt, runTask, testRows, trainedModesOf, type LogRatePredictor,
} from '../../../core/eval/tasks.ts';

await initBackend();

const T = 8;
const REGIONS = ['CA1', 'LP', 'CA1', 'VISp', 'LP', 'CA1', ''];
const N = REGIONS.length;
const at = (t: number, n: number) => t * N + n;

function neuron(acronym: string, i: number): NeuronInfo {
  return { probe: 'probe00', clusterId: i, atlasId: -1, acronym, beryl: acronym, cosmos: acronym, depthUm: 0, good: true };
}

/** Poisson counts from known, trial-varying rates; every third trial is a test trial. */
function session(nTrials = 9, seed = 3): BinnedSession {
  const rng = createRng(seed);
  const trueRates = new Float32Array(nTrials * T * N);
  const counts = new Int32Array(nTrials * T * N);
  for (let r = 0; r < nTrials; r++) {
    for (let t = 0; t < T; t++) {
      for (let n = 0; n < N; n++) {
        const i = (r * T + t) * N + n;
        trueRates[i] = Math.exp(0.3 + 0.8 * Math.sin(t / 2 + n + r / 3));
        counts[i] = rng.poisson(trueRates[i]);
      }
    }
  }
  const split: Split[] = Array.from({ length: nTrials }, (_, r) => (r % 3 === 2 ? 'test' : r % 3 === 1 ? 'val' : 'train'));
  return {
    kind: 'binned-session', sessionId: 's1', binSizeMs: 20, windowS: [-0.04, 0.12], nTrials, nBins: T, nNeurons: N, counts,
    trials: { trialIndex: Int32Array.from({ length: nTrials }, (_, i) => i), split, columns: {} },
    neurons: REGIONS.map(neuron), perBin: {}, trueRates,
  };
}

const regions = regionLabels(session());

test('region labels: unlabelled neurons form their own region, like the sampler', () => {
  assert.equal(regions, ['CA1', 'LP', 'CA1', 'VISp', 'LP', 'CA1', 'unlabelled']);
});

test('co-smoothing mask: only the left-out neuron, every bin, zeroed and scored', () => {
  const m = coSmoothingMask(T, N, 2);
  for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) {
    assert.is(m.masked[at(t, n)], n === 2 ? 1 : 0);
    assert.is(m.scored[at(t, n)], n === 2 ? 1 : 0);
  }
});

test('forward prediction mask: the last k bins of every neuron; bad k refused', () => {
  const m = forwardPredictionMask(T, N, 3);
  for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) {
    assert.is(m.masked[at(t, n)], t >= T - 3 ? 1 : 0);
    assert.is(m.scored[at(t, n)], t >= T - 3 ? 1 : 0);
  }
  assert.throws(() => forwardPredictionMask(T, N, T), /heldOutBins/);
  assert.throws(() => forwardPredictionMask(T, N, 0), /heldOutBins/);
});

test('inter-region mask: every neuron of the region zeroed and scored, the rest untouched', () => {
  const m = interRegionMask(regions, T, 'CA1');
  for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) {
    const inside = regions[n] === 'CA1' ? 1 : 0;
    assert.is(m.masked[at(t, n)], inside);
    assert.is(m.scored[at(t, n)], inside);
  }
});

test('intra-region mask: outside zeroed, the left-out neuron zeroed and alone scored, the rest of the region visible', () => {
  const m = intraRegionMask(regions, T, 'CA1', 5);
  for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) {
    assert.is(m.masked[at(t, n)], regions[n] !== 'CA1' || n === 5 ? 1 : 0, `masked n=${n}`);
    assert.is(m.scored[at(t, n)], n === 5 ? 1 : 0, `scored n=${n}`);
  }
  assert.throws(() => intraRegionMask(regions, T, 'LP', 5), /not 'LP'/);
});

test('task plans: one mask per neuron / region, each neuron scored exactly once; inter-region needs two regions', () => {
  for (const task of ['coSmoothing', 'intraRegion', 'interRegion'] as const) {
    const plan = planTask(task, T, regions, 2);
    const times = new Uint8Array(N);
    for (let k = 0; k < plan.count; k++) {
      const sc = plan.mask(k).scored;
      for (let n = 0; n < N; n++) times[n] += sc[at(0, n)];
    }
    assert.equal([...times], new Array(N).fill(1), task);
  }
  assert.is(planTask('interRegion', T, regions, 2).count, 4);
  const one = planTask('interRegion', T, ['CA1', 'CA1'], 2);
  assert.is(one.count, 0);
  assert.match(one.skipped!, /two regions/);
});

test('leave-out subset: only the chosen neurons are left out and scored, in both leave-one-out tasks', async () => {
  const s = session();
  const rows = testRows(s);
  for (const task of ['coSmoothing', 'intraRegion'] as const) {
    const plan = planTask(task, T, regions, 2, [4, 1]);
    assert.is(plan.count, 2);
    const { seen, p } = recorder();
    const r = await runTask(s, task, p, regions, 2, { mode: DEFAULT_TASK_PROMPTS[task], causal: false, batchSize: 4, leaveOut: [4, 1] });
    assert.is(seen.reduce((a, b) => a + b.rows.length, 0), 2 * rows.length);
    for (let e = 0; e < r.scored.length; e++) assert.is(r.scored[e], e % N === 1 || e % N === 4 ? 1 : 0);
    assert.is(r.bps.evaluatedNeurons + r.bps.excludedNeurons, N);
  }
  assert.throws(() => planTask('coSmoothing', T, regions, 2, [N]), /leaveOut/);
});

test('prompts: model prompt tokens decide; causal attention goes with the causal prompt', () => {
  assert.equal(resolvePrompt('causal', true), { mode: 'causal', causal: true });
  assert.equal(resolvePrompt('neuron', true), { mode: 'neuron', causal: false });
  assert.equal(resolvePrompt('causal', false), { mode: 'temporal', causal: false });
  // Read from the built model's capabilities, which follow its config.
  const sessions = [{ sessionId: 's', nNeurons: 3, nBins: 4 }];
  const off = ndt1Architecture.build({ promptTokens: false }, { sessions, seed: 1 });
  const on = ndt1Architecture.build({}, { sessions, seed: 1 });
  assert.is(hasPromptTokens(off), false);
  assert.is(hasPromptTokens(on), true);
  off.dispose();
  on.dispose();
});

test('prompts: the modes a model was trained with decide when its metadata records them', () => {
  const mtm = ['causal', 'inter-region', 'intra-region', 'neuron'] as const;
  // MtM with prompts: every task as asked.
  assert.equal(resolvePrompt('neuron', true, mtm), { mode: 'neuron', causal: false });
  // MtM without prompt tokens: still causal attention for forward prediction (it trained with it).
  assert.equal(resolvePrompt('causal', false, mtm), { mode: 'causal', causal: true });
  // A causal-only model runs causal for every task; a neuron-only model runs neuron.
  assert.equal(resolvePrompt('neuron', true, ['causal']), { mode: 'causal', causal: true });
  assert.equal(resolvePrompt('causal', false, ['neuron']), { mode: 'neuron', causal: false });
  // A temporal model, and a mixed model asked for a mode it never saw, run temporal.
  assert.equal(resolvePrompt('causal', false, ['temporal']), { mode: 'temporal', causal: false });
  assert.equal(resolvePrompt('neuron', true, ['causal', 'intra-region']), { mode: 'temporal', causal: false });
  assert.equal(trainedModesOf({ trainedModes: ['causal'] }), ['causal']);
  assert.is(trainedModesOf({ trainedModes: 'causal' }), undefined);
  assert.is(trainedModesOf(undefined), undefined);
});

/** Records every batch it sees, and answers log(1 + input) so masked inputs are visible in outputs. */
function recorder() {
  const seen: { input: Float32Array; rows: Int32Array; mode: string; causal: boolean }[] = [];
  const p: LogRatePredictor = (r) => {
    seen.push({ input: r.input.dataSync() as Float32Array, rows: r.rows.slice(), mode: r.mode, causal: r.causal });
    return tf.log1p(r.input) as tf.Tensor3D;
  };
  return { seen, p };
}

test('runTask co-smoothing: each copy has exactly its neuron zeroed, predictions land only on scored entries', async () => {
  const s = session();
  const rows = testRows(s);
  const { seen, p } = recorder();
  const r = await runTask(s, 'coSmoothing', p, regions, 2, { mode: 'neuron', causal: false, batchSize: 5 });
  assert.equal([...r.rows], [...rows]);
  assert.is(r.forwardPasses, N * rows.length);
  assert.is(seen.reduce((a, b) => a + b.rows.length, 0), N * rows.length);
  assert.ok(seen.every((b) => b.mode === 'neuron' && !b.causal));
  const TN = T * N;
  // Job j = neuron floor(j / rows) on test trial j % rows.
  let j = 0;
  for (const b of seen) {
    for (let i = 0; i < b.rows.length; i++, j++) {
      const left = Math.floor(j / rows.length);
      const row = rows[j % rows.length];
      assert.is(b.rows[i], row);
      for (let e = 0; e < TN; e++) {
        const n = e % N;
        assert.is(b.input[i * TN + e], n === left ? 0 : s.counts[row * TN + e]);
      }
    }
  }
  // Every entry scored once, with the value the left-out copy produced (log1p(0) = 0).
  assert.ok(r.scored.every((v) => v === 1));
  assert.ok(r.predicted.every((v) => v === 0));
  assert.is(r.bps.evaluatedNeurons + r.bps.excludedNeurons, N);
});

test('runTask intra-region and forward prediction: inputs and scored entries', async () => {
  const s = session();
  const TN = T * N;
  const rows = testRows(s);
  const { seen, p } = recorder();
  const intra = await runTask(s, 'intraRegion', p, regions, 2, { mode: 'intra-region', causal: false, batchSize: 4 });
  const plan = planTask('intraRegion', T, regions, 2);
  let j = 0;
  for (const b of seen) {
    for (let i = 0; i < b.rows.length; i++, j++) {
      const m = plan.mask(Math.floor(j / rows.length));
      const row = rows[j % rows.length];
      for (let e = 0; e < TN; e++) assert.is(b.input[i * TN + e], m.masked[e] ? 0 : s.counts[row * TN + e]);
    }
  }
  assert.ok(intra.scored.every((v) => v === 1));

  const f = recorder();
  const fwd = await runTask(s, 'forwardPrediction', f.p, regions, 3, { mode: 'causal', causal: true, batchSize: 64 });
  assert.is(f.seen.length, 1);
  assert.ok(f.seen[0].causal);
  for (let r = 0; r < rows.length; r++) {
    for (let e = 0; e < TN; e++) {
      const late = Math.floor(e / N) >= T - 3;
      assert.is(f.seen[0].input[r * TN + e], late ? 0 : s.counts[rows[r] * TN + e]);
      assert.is(fwd.scored[r * TN + e], late ? 1 : 0);
      assert.is(Number.isNaN(fwd.predicted[r * TN + e]), !late);
    }
  }
});

test('a model predicting each neuron\'s mean count scores ~0 bits/spike on every task', async () => {
  const s = session(30, 5);
  const rows = testRows(s);
  const TN = T * N;
  const test = gatherTrials(s.counts, rows, TN);
  const logMean = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let sum = 0;
    for (let i = n; i < test.length; i += N) sum += test[i];
    logMean[n] = Math.log(sum / (rows.length * T));
  }
  const meanModel: LogRatePredictor = (r) => tf.mul(tf.onesLike(r.input), tf.tensor1d(logMean)) as tf.Tensor3D;
  for (const task of ['coSmoothing', 'interRegion', 'intraRegion'] as const) {
    const r = await runTask(s, task, meanModel, regions, 2, { mode: DEFAULT_TASK_PROMPTS[task], causal: false, batchSize: 16 });
    assert.ok(Math.abs(r.bps.mean) < 1e-5, `${task}: ${r.bps.mean}`);
    assert.ok(Math.abs(r.bps.pooled) < 1e-5, `${task} pooled: ${r.bps.pooled}`);
  }
});

const tiny = { dModel: 16, layers: 1, heads: 2, mlpDim: 32, maxBins: T };

test('untrained NDT1 end to end: all four tasks, shapes, finite scores, no tensor leak', async () => {
  const s = session(15, 11);
  const model = ndt1Architecture.build(tiny, { sessions: [{ sessionId: 's1', nNeurons: N, nBins: T }], seed: 2 });
  const before = tf.memory().numTensors;
  const res = await evaluateTasks(s, modelPredictor(model, 's1'), {
    tasks: EVAL_TASKS, prompts: DEFAULT_TASK_PROMPTS, promptTokens: hasPromptTokens(model), batchSize: 8, forwardBins: 2, regions,
  });
  assert.is(tf.memory().numTensors, before);
  const rows = testRows(s).length;
  for (const task of EVAL_TASKS) {
    const r = res[task]!;
    assert.is(r.skipped, undefined);
    assert.is(r.predicted.length, rows * T * N);
    assert.is(r.mode, DEFAULT_TASK_PROMPTS[task]);
    assert.is(r.causal, task === 'forwardPrediction');
    assert.ok(Number.isFinite(r.bps.mean) && Number.isFinite(r.bps.pooled), task);
    for (let i = 0; i < r.scored.length; i++) if (r.scored[i]) assert.ok(Number.isFinite(r.predicted[i]));
    assert.is(r.bps.evaluatedNeurons + r.bps.excludedNeurons, N);
  }
  model.dispose();
});

test('batched leave-one-out equals an unbatched reference (NDT1, co-smoothing and intra-region)', async () => {
  const s = session(9, 13);
  const model = ndt1Architecture.build(tiny, { sessions: [{ sessionId: 's1', nNeurons: N, nBins: T }], seed: 4 });
  const p = modelPredictor(model, 's1');
  const rows = testRows(s);
  const TN = T * N;
  for (const task of ['coSmoothing', 'intraRegion'] as const) {
    const mode = DEFAULT_TASK_PROMPTS[task];
    const batched = await runTask(s, task, p, regions, 2, { mode, causal: false, batchSize: 16 });
    // Reference: one forward pass per (trial, neuron), masks built by hand.
    const plan = planTask(task, T, regions, 2);
    for (const k of [0, 3, plan.count - 1]) {
      const m = plan.mask(k);
      for (let r = 0; r < rows.length; r++) {
        const x = new Float32Array(TN);
        for (let e = 0; e < TN; e++) x[e] = m.masked[e] ? 0 : s.counts[rows[r] * TN + e];
        const y = model.forward({ sessionId: 's1', input: tf.tensor3d(x, [1, T, N]), mode, causal: false }, { training: false });
        const v = y.dataSync();
        y.dispose();
        for (let e = 0; e < TN; e++) {
          if (!m.scored[e]) continue;
          const got = batched.predicted[r * TN + e];
          assert.ok(Math.abs(got - v[e]) < 1e-4, `${task} mask ${k} trial ${r} entry ${e}: ${got} vs ${v[e]}`);
        }
      }
    }
  }
  model.dispose();
});

test('leave-one-out plans describe exactly the masks they stand for', () => {
  for (const leaveOut of [undefined, [6, 0, 4]]) {
    for (const task of ['coSmoothing', 'intraRegion'] as const) {
      const plan = planTask(task, T, regions, 2, leaveOut);
      const loo = plan.leaveOneOut!;
      assert.is(loo.leftOut.length, plan.count);
      for (let k = 0; k < plan.count; k++) {
        const m = plan.mask(k);
        const zeroed = new Set(loo.baseZeroed[loo.group[k]]);
        for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) {
          assert.is(m.masked[at(t, n)], zeroed.has(n) || n === loo.leftOut[k] ? 1 : 0, `${task} mask ${k} n=${n}`);
          assert.is(m.scored[at(t, n)], n === loo.leftOut[k] ? 1 : 0);
        }
      }
    }
  }
  assert.is(planTask('forwardPrediction', T, regions, 2).leaveOneOut, undefined);
  assert.is(planTask('interRegion', T, regions, 2).leaveOneOut, undefined);
});

test('fast leave-one-out path: base inputs keep the left-out neuron, copies of a base are adjacent, results equal the plain path', async () => {
  const s = session();
  const TN = T * N;
  const rows = testRows(s);
  const requests: { base: Float32Array; baseRow: Int32Array; leftOut: Int32Array; rows: Int32Array }[] = [];
  // Answers log1p of each materialised copy, so any difference in what it sees shows in the result.
  const p: LogRatePredictor = (r) => tf.log1p(r.input) as tf.Tensor3D;
  p.leaveOneOut = (r) => {
    const base = r.input.dataSync() as Float32Array;
    requests.push({ base, baseRow: r.baseRow.slice(), leftOut: r.leftOut.slice(), rows: r.rows.slice() });
    const copies = new Float32Array(r.leftOut.length * TN);
    for (let i = 0; i < r.leftOut.length; i++) {
      copies.set(base.subarray(r.baseRow[i] * TN, (r.baseRow[i] + 1) * TN), i * TN);
      for (let t = 0; t < T; t++) copies[i * TN + at(t, r.leftOut[i])] = 0;
    }
    return tf.log1p(tf.tensor3d(copies, [r.leftOut.length, T, N])) as tf.Tensor3D;
  };
  for (const task of ['coSmoothing', 'intraRegion'] as const) {
    for (const leaveOut of [undefined, [1, 5, 6]]) {
      requests.length = 0;
      const o = { mode: DEFAULT_TASK_PROMPTS[task], causal: false, batchSize: leaveOut ? 7 : 5, leaveOut };
      const fast = await runTask(s, task, p, regions, 2, o);
      const slow = await runTask(s, task, p, regions, 2, { ...o, fastLeaveOneOut: false });
      assert.is(fast.predicted.length, slow.predicted.length);
      assert.ok(fast.predicted.every((v, e) => Object.is(v, slow.predicted[e])), `${task}: same predictions, NaN where not scored`);
      assert.equal(fast.scored, slow.scored, task);
      assert.is(fast.forwardPasses, slow.forwardPasses);
      const plan = planTask(task, T, regions, 2, leaveOut);
      assert.is(requests.reduce((a, q) => a + q.leftOut.length, 0), plan.count * rows.length, `${task}: every job through the fast path`);
      const seen = new Set<string>();
      for (const q of requests) {
        assert.ok(q.leftOut.length <= o.batchSize);
        for (let i = 1; i < q.baseRow.length; i++) assert.ok(q.baseRow[i] === q.baseRow[i - 1] || q.baseRow[i] === q.baseRow[i - 1] + 1, 'adjacent copies');
        if (task === 'coSmoothing') {
          // Co-smoothing's copies come in equal runs per base (NDT1's cheapest layout).
          const runs = new Map<number, number>();
          for (const u of q.baseRow) runs.set(u, (runs.get(u) ?? 0) + 1);
          assert.is(new Set(runs.values()).size, 1, `equal runs: ${[...runs.values()]}`);
        }
        for (let i = 0; i < q.leftOut.length; i++) {
          const k = [...plan.leaveOneOut!.leftOut].indexOf(q.leftOut[i]);
          const zeroed = new Set(plan.leaveOneOut!.baseZeroed[plan.leaveOneOut!.group[k]]);
          for (let e = 0; e < TN; e++) {
            const want = zeroed.has(e % N) ? 0 : s.counts[q.rows[i] * TN + e];
            assert.is(q.base[q.baseRow[i] * TN + e], want, `${task} base of copy ${i}, entry ${e}`);
          }
          seen.add(`${q.rows[i]}:${q.leftOut[i]}`);
        }
      }
      assert.is(seen.size, plan.count * rows.length, 'each (trial, neuron) once');
    }
  }
});

test('NDT1 fast leave-one-out path equals the plain path to 1e-4 (co-smoothing, intra-region, subsets, odd batch sizes)', async () => {
  const s = session(12, 19);
  const model = ndt1Architecture.build({ ...tiny, sessionTokens: true }, { sessions: [{ sessionId: 's1', nNeurons: N, nBins: T }], seed: 8 });
  const p = modelPredictor(model, 's1');
  assert.type(p.leaveOneOut, 'function');
  let fastCalls = 0;
  const counted: LogRatePredictor = (r) => p(r);
  counted.leaveOneOut = (r) => {
    fastCalls++;
    return p.leaveOneOut!(r);
  };
  for (const task of ['coSmoothing', 'intraRegion'] as const) {
    for (const [batchSize, leaveOut] of [[7, undefined], [3, [0, 2, 3, 6]], [64, undefined]] as const) {
      const o = { mode: DEFAULT_TASK_PROMPTS[task], causal: false, batchSize, leaveOut };
      fastCalls = 0;
      const before = tf.memory().numTensors;
      const fast = await runTask(s, task, counted, regions, 2, o);
      assert.ok(fastCalls > 0);
      assert.is(tf.memory().numTensors, before);
      const slow = await runTask(s, task, counted, regions, 2, { ...o, fastLeaveOneOut: false });
      assert.equal(fast.scored, slow.scored);
      let worst = 0;
      for (let e = 0; e < fast.predicted.length; e++) {
        if (!slow.scored[e]) continue;
        worst = Math.max(worst, Math.abs(fast.predicted[e] - slow.predicted[e]));
      }
      assert.ok(worst < 1e-4, `${task} batch ${batchSize}: max difference ${worst}`);
      assert.ok(Math.abs(fast.bps.mean - slow.bps.mean) < 1e-4);
    }
  }
  model.dispose();
});

test('a temporal-only model (no prompt tokens) runs every task in temporal mode', async () => {
  const s = session(6, 17);
  const model = ndt1Architecture.build({ ...tiny, promptTokens: false }, { sessions: [{ sessionId: 's1', nNeurons: N, nBins: T }], seed: 5 });
  const res = await evaluateTasks(s, modelPredictor(model, 's1'), {
    tasks: EVAL_TASKS, prompts: DEFAULT_TASK_PROMPTS, promptTokens: hasPromptTokens(model), batchSize: 32, forwardBins: 2, regions,
  });
  for (const task of EVAL_TASKS) {
    assert.is(res[task]!.mode, 'temporal');
    assert.is(res[task]!.causal, false);
    assert.ok(Number.isFinite(res[task]!.bps.mean));
  }
  model.dispose();
});

test('bad predictor output and an aborted signal are refused with a clear error', async () => {
  const s = session();
  const wrong: LogRatePredictor = (r) => tf.zeros([r.rows.length, T, N + 1]) as tf.Tensor3D;
  await runTask(s, 'forwardPrediction', wrong, regions, 2, { mode: 'causal', causal: true, batchSize: 4 }).then(
    () => assert.unreachable(),
    (e) => assert.match(e.message, /returned shape/),
  );
  const ac = new AbortController();
  ac.abort();
  await runTask(s, 'coSmoothing', (r) => tf.zerosLike(r.input) as tf.Tensor3D, regions, 2, { mode: 'neuron', causal: false, batchSize: 4, signal: ac.signal }).then(
    () => assert.unreachable(),
    (e) => assert.match(e.message, /interrupted/),
  );
});

test.run();
