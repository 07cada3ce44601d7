import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runStage, testContext } from '../core/testing.ts';
import type { BinnedSession, NeuronInfo, Split } from '../core/payloads.ts';
import { createRng } from '../core/rng.ts';
import type { MaskedBatch } from '../core/masking/types.ts';
import { checkStageDescriptor } from '../core/registry.ts';
import { maskingSampler } from './masking-sampler.ts';

function session(id: string, nTrials: number, nBins: number, nNeurons: number, seed: number): BinnedSession {
  const rng = createRng(seed);
  const splits: Split[] = ['train', 'train', 'train', 'train', 'train', 'train', 'train', 'val', 'test', 'test'];
  const neurons: NeuronInfo[] = Array.from({ length: nNeurons }, (_, n) => ({
    probe: 'probe00', clusterId: n, atlasId: 0, acronym: ['CA1', 'LP', 'VISp'][n % 3], beryl: ['CA1', 'LP'][n % 2], cosmos: 'CTX', depthUm: 0, good: true,
  }));
  return {
    kind: 'binned-session', sessionId: id, binSizeMs: 20, windowS: [-0.5, 1.5], nTrials, nBins, nNeurons,
    // Count value encodes (trial, bin, neuron) + 1 so gathered rows can be checked and no count is 0.
    counts: Int32Array.from({ length: nTrials * nBins * nNeurons }, (_, i) => i + 1),
    trials: { trialIndex: Int32Array.from({ length: nTrials }, (_, i) => i), split: Array.from({ length: nTrials }, (_, t) => splits[(t + seed) % 10]), columns: {} },
    neurons,
    perBin: {},
  };
}

const sessions = [session('s1', 23, 6, 7, 1), session('s2', 17, 6, 5, 2)];

async function sample(params: Record<string, unknown>, seed = 1): Promise<MaskedBatch[]> {
  const out = await runStage(maskingSampler, params, { sessions }, testContext('sampler', seed));
  return out.batches as MaskedBatch[];
}

test('each epoch covers every trial of the split once, in batches of one session', async () => {
  const batches = await sample({ batchSize: 4, epochs: 2 });
  for (const epoch of [0, 1]) {
    const inEpoch = batches.filter((b) => b.epoch === epoch);
    assert.ok(inEpoch.length > 0);
    inEpoch.forEach((b, i) => {
      assert.is(b.batchIndex, i);
      assert.is(b.batchesInEpoch, inEpoch.length);
      assert.is(b.epochs, 2);
    });
    for (const s of sessions) {
      const want = s.trials.split.flatMap((x, t) => (x === 'train' ? [t] : [])).sort((a, b) => a - b);
      const got = inEpoch.filter((b) => b.sessionId === s.sessionId).flatMap((b) => [...b.trialIndex]).sort((a, b) => a - b);
      assert.equal(got, want, `${s.sessionId} epoch ${epoch}`);
    }
  }
  for (const b of batches) {
    assert.ok(b.trialIndex.length <= 4 && b.trialIndex.length >= 1);
    assert.is(b.shape.trials, b.trialIndex.length);
  }
});

test('target holds the rows of the batch session, input is target with masked entries zeroed', async () => {
  for (const b of await sample({ batchSize: 3, mode: 'mtm' })) {
    const s = sessions.find((x) => x.sessionId === b.sessionId)!;
    const per = s.nBins * s.nNeurons;
    assert.is(b.shape.neurons, s.nNeurons);
    assert.is(b.regions.length, s.nNeurons);
    b.trialIndex.forEach((row, i) => assert.equal([...b.target.subarray(i * per, (i + 1) * per)], [...s.counts.subarray(row * per, (row + 1) * per)]));
    for (let i = 0; i < b.input.length; i++) assert.is(b.input[i], b.masked[i] ? 0 : b.target[i]);
    assert.ok(b.lossMask.some((x) => x === 1));
    assert.is(b.causal, b.mode === 'causal');
  }
});

test('split, dropLast and mode params are honoured', async () => {
  const test_ = await sample({ split: 'test', batchSize: 100 });
  for (const b of test_) {
    const s = sessions.find((x) => x.sessionId === b.sessionId)!;
    for (const t of b.trialIndex) assert.is(s.trials.split[t], 'test');
  }
  const dropped = await sample({ batchSize: 5, dropLast: true });
  assert.ok(dropped.every((b) => b.trialIndex.length === 5));
  const temporal = await sample({ mode: 'temporal', batchSize: 4 });
  assert.ok(temporal.every((b) => b.mode === 'temporal'));
  const cosmos = await sample({ mode: 'inter-region', regionLevel: 'cosmos' });
  // One Cosmos region: inter-region cannot apply, and the batches say what they used instead.
  assert.ok(cosmos.every((b) => b.mode === 'neuron' && b.regions.every((r) => r === 'CTX')));
  const beryl = await sample({ mode: 'inter-region', regionLevel: 'beryl' });
  assert.ok(beryl.every((b) => b.mode === 'inter-region' && (b.maskedRegion === 'CA1' || b.maskedRegion === 'LP')));
});

test('same graph seed gives the same batches and masks; another seed and each epoch reshuffle', async () => {
  const a = await sample({ batchSize: 4, epochs: 2 }, 5);
  const b = await sample({ batchSize: 4, epochs: 2 }, 5);
  assert.equal(a.map((x) => [x.sessionId, [...x.trialIndex], x.mode, [...x.lossMask]]), b.map((x) => [x.sessionId, [...x.trialIndex], x.mode, [...x.lossMask]]));
  const c = await sample({ batchSize: 4, epochs: 2 }, 6);
  assert.not.equal(a.map((x) => [...x.trialIndex]), c.map((x) => [...x.trialIndex]));
  const e0 = a.filter((x) => x.epoch === 0).map((x) => [x.sessionId, ...x.trialIndex]);
  const e1 = a.filter((x) => x.epoch === 1).map((x) => [x.sessionId, ...x.trialIndex]);
  assert.not.equal(e0, e1);
  const ordered = await sample({ batchSize: 4, shuffle: false });
  assert.equal([...ordered[0].trialIndex], sessions[0].trials.split.flatMap((x, t) => (x === 'train' ? [t] : [])).slice(0, 4));
});

/** Largest gap, over every prefix of an epoch, between a session's batch count and its proportional share. */
function worstShareGap(epoch: MaskedBatch[], share: (id: string) => number): number {
  const seen = new Map<string, number>();
  let worst = 0;
  epoch.forEach((b, i) => {
    seen.set(b.sessionId, (seen.get(b.sessionId) ?? 0) + 1);
    for (const id of new Set(epoch.map((x) => x.sessionId))) worst = Math.max(worst, Math.abs((seen.get(id) ?? 0) - (i + 1) * share(id)));
  });
  return worst;
}

const uneven = [session('big', 57, 2, 3, 1), session('mid', 29, 2, 3, 2), session('small', 14, 2, 3, 3)];
const trainCount = (s: BinnedSession) => s.trials.split.filter((x) => x === 'train').length;

async function sampleUneven(params: Record<string, unknown>, seed = 1): Promise<MaskedBatch[]> {
  const out = await runStage(maskingSampler, { batchSize: 2, epochs: 3, mode: 'temporal', ...params }, { sessions: uneven }, testContext('sampler', seed));
  return out.batches as MaskedBatch[];
}

test('proportional balance: every trial once per epoch, sessions interleaved in proportion all through the epoch', async () => {
  for (const seed of [1, 2, 3]) {
    const batches = await sampleUneven({}, seed);
    for (const epoch of [0, 1, 2]) {
      const e = batches.filter((b) => b.epoch === epoch);
      const m = new Map(uneven.map((s) => [s.sessionId, Math.ceil(trainCount(s) / 2)]));
      const total = [...m.values()].reduce((a, b) => a + b, 0);
      assert.is(e.length, total);
      for (const s of uneven) {
        const got = e.filter((b) => b.sessionId === s.sessionId).flatMap((b) => [...b.trialIndex]).sort((a, b) => a - b);
        assert.is(got.length, trainCount(s), 'each train trial once');
        assert.is(new Set(got).size, got.length);
      }
      // Stratified keys keep each session within about one batch of its share at every point
      // (at most 1.14 over 200 seeds of a 20/10/5-batch epoch); a plain shuffle of the same
      // batches strays 1.7-3.6 batches (10th-90th percentile).
      const gap = worstShareGap(e, (id) => m.get(id)! / total);
      assert.ok(gap <= 1.5, `seed ${seed} epoch ${epoch}: a session strays ${gap.toFixed(2)} batches from its share`);
    }
  }
});

test('equal balance: every session gets as many batches as the largest, smaller ones resampled in fresh passes', async () => {
  const batches = await sampleUneven({ sessionBalance: 'equal' });
  const most = Math.ceil(trainCount(uneven[0]) / 2);
  for (const epoch of [0, 1, 2]) {
    const e = batches.filter((b) => b.epoch === epoch);
    assert.is(e.length, 3 * most);
    e.forEach((b, i) => assert.is(b.batchIndex, i));
    for (const s of uneven) {
      const mine = e.filter((b) => b.sessionId === s.sessionId);
      assert.is(mine.length, most, s.sessionId);
      // Each full pass covers every train trial once: the first ceil(n / 2) batches are a permutation.
      const pass0 = mine.slice(0, Math.ceil(trainCount(s) / 2)).flatMap((b) => [...b.trialIndex]);
      assert.is(new Set(pass0).size, trainCount(s));
    }
    assert.ok(worstShareGap(e, () => 1 / 3) <= 1.5, `epoch ${epoch}: equal shares interleave`);
  }
});

test('maxTrials keeps a nested, epoch-stable subset of k trials per session', async () => {
  const rowsOf = (bs: MaskedBatch[], id: string, epoch: number) =>
    bs.filter((b) => b.sessionId === id && b.epoch === epoch).flatMap((b) => [...b.trialIndex]).sort((a, b) => a - b);
  const k3 = await sampleUneven({ maxTrials: 3 });
  const k8 = await sampleUneven({ maxTrials: 8 });
  for (const s of uneven) {
    const a = rowsOf(k3, s.sessionId, 0);
    const b = rowsOf(k8, s.sessionId, 0);
    assert.is(a.length, 3);
    assert.is(b.length, Math.min(8, trainCount(s)));
    assert.ok(a.every((t) => b.includes(t)), `${s.sessionId}: k=3 trials ${a} are among k=8 trials ${b}`);
    assert.equal(rowsOf(k3, s.sessionId, 2), a, 'the same k trials every epoch');
    assert.ok(a.every((t) => s.trials.split[t] === 'train'));
  }
  // Not just the first k trials in file order.
  assert.not.equal(rowsOf(k8, 'big', 0), uneven[0].trials.split.flatMap((x, t) => (x === 'train' ? [t] : [])).slice(0, 8));
});

test('a malformed session is refused with its id and the field', async () => {
  const bad = { ...session('broken', 4, 3, 2, 1), nNeurons: 3 };
  try {
    await runStage(maskingSampler, {}, { sessions: [bad] });
    assert.unreachable('should throw');
  } catch (e) {
    assert.match((e as Error).message, /binned session broken: counts has 24 entries/);
  }
  assert.throws(() => maskingSampler.params.parse({ mode: 'spatial' }));
});

test('the descriptor passes the registry checks (kebab id, typed ports, every param defaulted and described)', () => {
  checkStageDescriptor(maskingSampler);
  assert.is(maskingSampler.id, 'masking-sampler');
  assert.is(maskingSampler.inputs.sessions.type, 'binned-session');
  assert.is(maskingSampler.outputs.batches.type, 'masked-batch');
});

test('causalForecast and timeSpan reach the masks; the defaults draw the same batches as before', async () => {
  const plain = await sample({ batchSize: 4, mode: 'causal' });
  const explicit = await sample({ batchSize: 4, mode: 'causal', causalForecast: 0, timeSpan: 1 });
  assert.equal(explicit.map((b) => [...b.masked]), plain.map((b) => [...b.masked]));
  const forecast = await sample({ batchSize: 4, mode: 'causal', causalForecast: 1 });
  for (const b of forecast) {
    const { trials, bins, neurons } = b.shape;
    for (let t = 0; t < trials; t++) {
      const binMasked = Array.from({ length: bins }, (_, k) => b.masked[(t * bins + k) * neurons]);
      const cut = binMasked.indexOf(1);
      assert.ok(cut >= 1, 'a forecast keeps at least one bin of past');
      assert.equal(binMasked.slice(cut), Array(bins - cut).fill(1), 'every bin from the cut on is masked');
    }
    assert.ok(b.causal);
  }
});

test.run();
