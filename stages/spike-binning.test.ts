import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spikeBinning } from './spike-binning.ts';
import { runStage, tempDir, testContext } from '../core/testing.ts';
import { simulateCache } from '../core/sim/cache.ts';
import { loadSpikeTrains } from '../core/alf/session.ts';
import type { BinnedSession, SpikeTrains } from '../core/payloads.ts';
import { binSession } from '../core/binning/bin-session.ts';
import { startPrefaultHelper, stopPrefaultHelper } from '../core/binning/prefault.ts';

const cache = tempDir();
const infos = await simulateCache({ out: cache, sessions: 2, seed: 21, trials: [40, 40], neurons: [30, 40], maxProbes: 2 });
const trains: SpikeTrains[] = [];
for (const i of infos) trains.push(await loadSpikeTrains(i.ref.path, { eid: i.eid, sessionId: i.eid }));
const twoProbes = trains.find((t) => t.probes.length === 2) ?? trains[0];

async function bin(t: SpikeTrains, params: Record<string, unknown> = {}, seed = 1): Promise<BinnedSession> {
  const out = await runStage(spikeBinning, params, { sessions: [t] }, testContext('bin', seed));
  return out.sessions[0] as BinnedSession;
}

/** The reference trial filter written out longhand. */
function keptByHand(t: Record<string, Float64Array>): number[] {
  const out: number[] = [];
  for (let i = 0; i < t.stimOn_times.length; i++) {
    const need = ['stimOn_times', 'choice', 'feedback_times', 'probabilityLeft', 'firstMovement_times', 'feedbackType'];
    if (need.some((k) => Number.isNaN(t[k][i]))) continue;
    if (t.choice[i] === 0) continue;
    const rt = t.firstMovement_times[i] - t.stimOn_times[i];
    if (rt < 0.08 || rt > 2) continue;
    if (t.feedback_times[i] - t.goCue_times[i] > 10) continue;
    out.push(i);
  }
  return out;
}

test('counts equal an independent count of the same spikes (two probes merged, probe then cluster order)', async () => {
  const s = await bin(twoProbes);
  assert.is(s.nBins, 100);
  assert.equal(s.windowS, [-0.5, 1.5]);
  // Neuron order: probe name, then cluster id.
  const keys = s.neurons.map((n) => `${n.probe}:${String(n.clusterId).padStart(5, '0')}`);
  assert.equal(keys, [...keys].sort());
  assert.is(s.nNeurons, twoProbes.probes.reduce((n, p) => n + p.clusterIds.length, 0));
  // Reference: for every spike and every kept trial, find the bin with explicit edge comparisons.
  const want = new Int32Array(s.counts.length);
  const col = new Map(s.neurons.map((n, j) => [`${n.probe}:${n.clusterId}`, j]));
  for (const p of twoProbes.probes) {
    for (let i = 0; i < p.times.length; i++) {
      const t = p.times[i];
      const j = col.get(`${p.probe}:${p.clusters[i]}`)!;
      s.trials.trialIndex.forEach((ti, k) => {
        const start = twoProbes.trials.stimOn_times[ti] - 0.5;
        for (let b = 0; b < 100; b++) {
          if (t >= start + b * 0.02 && t < start + (b + 1) * 0.02) want[(k * 100 + b) * s.nNeurons + j]++;
        }
      });
    }
  }
  assert.equal(Array.from(s.counts), Array.from(want));
  assert.ok(s.counts.reduce((a, b) => a + b, 0) > 1000, 'enough spikes to mean something');
});

test('trial filter and 70/10/20 split per session', async () => {
  for (const t of trains) {
    const s = await bin(t);
    assert.equal(Array.from(s.trials.trialIndex), keptByHand(t.trials));
    assert.ok(s.nTrials < t.trials.stimOn_times.length, 'the simulator leaves the filter something to drop');
    const n = s.nTrials;
    const count = (k: string) => s.trials.split.filter((x) => x === k).length;
    assert.equal([count('train'), count('val'), count('test')], [Math.round(0.7 * n), Math.round(0.1 * n), n - Math.round(0.7 * n) - Math.round(0.1 * n)]);
    assert.equal(Array.from(s.trials.columns.choice).every((c) => c === 1 || c === -1), true);
    assert.equal(s.trials.columns.reward.length, n);
  }
  const loose = await bin(trains[0], { reactionTimeRangeS: [-1, 100], maxFeedbackDelayS: 1000, excludeNoChoice: false, requireFinite: ['stimOn_times'] });
  assert.is(loose.nTrials, trains[0].trials.stimOn_times.length);
});

test('deterministic; the seed changes only the split', async () => {
  const a = await bin(trains[0]);
  const b = await bin(trains[0]);
  assert.equal(a.trials.split, b.trials.split);
  assert.equal(Array.from(a.counts), Array.from(b.counts));
  const c = await bin(trains[0], {}, 2);
  assert.not.equal(a.trials.split, c.trials.split);
  assert.equal(Array.from(a.counts), Array.from(c.counts));
  const d = await bin(trains[0], { seed: 1 }, 2);
  assert.equal(a.trials.split, d.trials.split, 'an explicit seed overrides the graph seed');
});

test('goodOnly keeps the good units; neuron table carries depth and Allen labels', async () => {
  const all = await bin(twoProbes);
  const good = await bin(twoProbes, { goodOnly: true });
  assert.is(good.nNeurons, all.neurons.filter((n) => n.good).length);
  assert.ok(good.nNeurons > 0 && good.nNeurons < all.nNeurons);
  assert.ok(good.neurons.every((n) => n.good));
  assert.ok(all.neurons.every((n) => Number.isFinite(n.depthUm)));
  assert.ok(all.neurons.some((n) => n.acronym === 'void' && n.atlasId === 0), 'units above the brain are void');
  assert.ok(all.neurons.filter((n) => n.acronym !== 'void').every((n) => n.atlasId > 0 && n.cosmos !== 'unknown'));
});

test('true rates: expected counts per bin agree with the observed counts', async () => {
  const s = await bin(trains[0]);
  assert.ok(s.trueRates, 'simulated session gets true rates');
  assert.is(s.trueRates!.length, s.counts.length);
  let sumRates = 0;
  let sumCounts = 0;
  for (let i = 0; i < s.counts.length; i++) {
    sumRates += s.trueRates![i];
    sumCounts += s.counts[i];
  }
  // Poisson total: within 4 standard deviations.
  assert.ok(Math.abs(sumCounts - sumRates) < 4 * Math.sqrt(sumRates), `counts ${sumCounts} vs expected ${sumRates.toFixed(1)}`);
  // Per neuron, expected and observed totals track each other across the rate range.
  const perN = (arr: ArrayLike<number>) => {
    const out = new Float64Array(s.nNeurons);
    for (let i = 0; i < arr.length; i++) out[i % s.nNeurons] += arr[i];
    return out;
  };
  const e = perN(s.trueRates!);
  const o = perN(s.counts);
  const lo = Array.from(e.keys()).filter((j) => e[j] > 50);
  for (const j of lo) assert.ok(Math.abs(o[j] - e[j]) < 5 * Math.sqrt(e[j]), `neuron ${j}: ${o[j]} vs ${e[j]}`);
  const moved = await bin(trains[0], { alignEvent: 'firstMovement_times' });
  assert.is(moved.trueRates, undefined, 'no true rates when the bins leave the simulated grid');
  const off = await bin(trains[0], { trueRates: false });
  assert.is(off.trueRates, undefined);
});

test('per-bin behaviour: wheel speed peaks after movement onset; motion energy present', async () => {
  const s = await bin(trains[0]);
  const n = s.nTrials * s.nBins;
  assert.is(s.perBin.wheelSpeed.length, n);
  assert.is(s.perBin.whiskerMotionEnergy.length, n);
  assert.ok(s.perBin.whiskerMotionEnergy.every((v) => v > 0));
  // Speed in the 200 ms after firstMovement beats speed in the 200 ms before stimOn.
  let before = 0;
  let after = 0;
  s.trials.trialIndex.forEach((ti, k) => {
    const rt = trains[0].trials.firstMovement_times[ti] - trains[0].trials.stimOn_times[ti];
    const b0 = Math.floor((rt + 0.5) / 0.02);
    for (let b = 0; b < 10; b++) {
      before += s.perBin.wheelSpeed[k * 100 + 15 + b];
      after += s.perBin.wheelSpeed[k * 100 + Math.min(99, b0 + b)];
    }
  });
  assert.ok(after > 5 * before, `after ${after} before ${before}`);
});

test('behaviour is decodable from the binned activity (choice, held-out trials)', async () => {
  const big = await simulateCache({ out: tempDir(), sessions: 1, seed: 4, trials: [160, 160], neurons: [60, 60], maxProbes: 1 });
  const t = await loadSpikeTrains(big[0].ref.path, { eid: big[0].eid });
  const s = await bin(t);
  // Features: each neuron's count from stimOn to +1 s; nearest class mean on z-scored features.
  const feats = Array.from({ length: s.nTrials }, (_, k) => {
    const f = new Float64Array(s.nNeurons);
    for (let b = 25; b < 75; b++) for (let j = 0; j < s.nNeurons; j++) f[j] += s.counts[(k * 100 + b) * s.nNeurons + j];
    return f;
  });
  const train = s.trials.split.map((x, k) => (x !== 'test' ? k : -1)).filter((k) => k >= 0);
  const testK = s.trials.split.map((x, k) => (x === 'test' ? k : -1)).filter((k) => k >= 0);
  const mean = (ks: number[], j: number) => ks.reduce((a, k) => a + feats[k][j], 0) / ks.length;
  const sd = Array.from({ length: s.nNeurons }, (_, j) => Math.sqrt(train.reduce((a, k) => a + (feats[k][j] - mean(train, j)) ** 2, 0) / train.length) || 1);
  const cls = [1, -1].map((c) => train.filter((k) => s.trials.columns.choice[k] === c));
  const centroid = cls.map((ks) => Array.from({ length: s.nNeurons }, (_, j) => mean(ks, j) / sd[j]));
  let correct = 0;
  for (const k of testK) {
    const d = centroid.map((c) => c.reduce((a, m, j) => a + (feats[k][j] / sd[j] - m) ** 2, 0));
    const guess = d[0] < d[1] ? 1 : -1;
    if (guess === s.trials.columns.choice[k]) correct++;
  }
  const majority = Math.max(...[1, -1].map((c) => testK.filter((k) => s.trials.columns.choice[k] === c).length)) / testK.length;
  const acc = correct / testK.length;
  assert.ok(acc > 0.7 && acc > majority + 0.1, `choice accuracy ${acc.toFixed(2)} (majority ${majority.toFixed(2)})`);
});

test('errors name the session and probe', async () => {
  const t = trains[0];
  const bad: SpikeTrains = { ...t, probes: t.probes.map((p) => ({ ...p, times: Float64Array.from(p.times).reverse() })) };
  await bin(bad).then(
    () => assert.unreachable('unsorted spikes must fail'),
    (e: Error) => assert.ok(e.message.includes(t.sessionId) && e.message.includes('probe00') && /not sorted/.test(e.message), e.message),
  );
  await bin(t, { probes: ['probe07'] }).then(
    () => assert.unreachable('unknown probe must fail'),
    (e: Error) => assert.match(e.message, /no probe probe07/),
  );
  const noGood: SpikeTrains = { ...t, probes: t.probes.map((p) => ({ ...p, clusterGood: undefined })) };
  await bin(noGood, { goodOnly: true }).then(
    () => assert.unreachable('goodOnly without labels must fail'),
    (e: Error) => assert.match(e.message, /clusters\.metrics/),
  );
});

test('the prefault thread path (forced on, two probes into one array) gives exactly the same counts', async () => {
  const plain = await bin(twoProbes, {}, 1);
  const p = spikeBinning.params.parse({ seed: 1 });
  await startPrefaultHelper();
  try {
    const threaded = binSession(twoProbes, { ...p, seed: 1, prefault: true }).session;
    assert.ok(threaded.counts.buffer instanceof SharedArrayBuffer, 'the helper path ran');
    assert.is(threaded.counts.length, plain.counts.length);
    assert.ok(threaded.counts.every((c, i) => c === plain.counts[i]));
    const viaParam = await bin(twoProbes, { prefaultThread: true }, 1);
    assert.ok(viaParam.counts.every((c, i) => c === plain.counts[i]));
  } finally {
    await stopPrefaultHelper();
  }
});

test.run();
