import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { createRng, hashString } from '../rng.ts';
import { loadAllenRegions } from '../atlas/regions.ts';
import { DEFAULT_SIZES, simulateSession, simulateTrials, type SimSizes } from './model.ts';
import { loadRealData, realismTable, realSide, simSide, type RealismRow } from './realism-data.ts';
import { REALISM_TOLERANCES, withinTolerance } from './realism-tolerances.ts';
import { ksStatistic, qualityLabel, rankSumP, signedRankP, summarizeRates, unitTrainStats } from './realism.ts';

const FIX = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));
const regions = await loadAllenRegions();
const atlasIdOf = (a: string) => regions.idOf(a)!;
const real = realSide(await loadRealData(FIX), regions);

/** Two small sessions of the given sizes, and a long run of the task model, reduced to the table. */
function tableOf(sizes: SimSizes): RealismRow[] {
  const sims = [0, 1].map((s) => simulateSession(hashString(`realism ${s}`, 5), sizes, atlasIdOf));
  return realismTable(simSide(sims, { trials: simulateTrials(3000, createRng(9)).trials }), real);
}
const failures = (rows: RealismRow[]) =>
  rows.filter((r) => REALISM_TOLERANCES[r.stat] !== undefined && !withinTolerance(r, REALISM_TOLERANCES[r.stat])).map((r) => `${r.stat}: sim ${r.sim}, real ${r.real}, distance ${r.distance}`);

const SMALL: SimSizes = { ...DEFAULT_SIZES, trials: [130, 130], neurons: [120, 120] };

test('statistics: KS, rank tests and the IBL label against hand-computed values', () => {
  assert.is(ksStatistic([1, 2, 3], [1, 2, 3]), 0);
  assert.is(ksStatistic([1, 2], [3, 4]), 1);
  assert.ok(Math.abs(ksStatistic([1, 2, 3, 4], [3, 4, 5, 6]) - 0.5) < 1e-12);
  // Exact signed-rank: 6 pairs all increasing -> p = 2 / 2^6 (scipy.stats.wilcoxon gives 0.03125).
  assert.ok(Math.abs(signedRankP([0, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]) - 0.03125) < 1e-12);
  assert.is(signedRankP([1, 2], [1, 2]), 1);
  // Rank-sum, normal approximation: well separated samples are significant, identical ones not.
  assert.ok(rankSumP([1, 2, 3, 4, 5, 6, 7, 8], [11, 12, 13, 14, 15, 16, 17, 18]) < 0.001);
  assert.ok(rankSumP([1, 2, 3, 4], [1, 2, 3, 4]) > 0.99);
  assert.is(qualityLabel(1, 1, 60e-6), 1);
  assert.is(qualityLabel(0, 10, 60e-6), 1 / 3);
  assert.is(qualityLabel(1, NaN, 10e-6), 1 / 3);
  const r = summarizeRates([0.05, 0.5, 2, 8]);
  assert.is(r.fracBelow0p1Hz, 0.25);
  assert.is(r.fracBelow1Hz, 0.5);
  // A perfectly regular 10 Hz train: Fano factor 0 in 1 s windows, no short intervals.
  const regular = Float64Array.from({ length: 1200 }, (_, i) => 0.05 + i * 0.1);
  const u = unitTrainStats(regular, 0, 120);
  assert.ok(u.fano1s < 1e-9 && u.isiViolation === 0 && u.isiCv < 1e-9, JSON.stringify(u));
});

test('real side: the recomputed quality label is the IBL label, and the real numbers are what the table says', () => {
  assert.ok(real.rates.n > 60000, `${real.rates.n} active clusters`);
  assert.ok(Math.abs(real.rates.q50 - 5.37) < 0.05, `median rate ${real.rates.q50}`);
  assert.ok(Math.abs(real.labels.good - 0.166) < 0.005, `good fraction ${real.labels.good}`);
  assert.ok(Math.abs(real.trains.fano1s.q50 - 2.77) < 0.05, `Fano factor 1 s ${real.trains.fano1s.q50}`);
  assert.is(real.trains.units, 144);
  assert.is(real.trials.trials, 500);
});

test('the simulator with its defaults is held to the real statistics', () => {
  const bad = failures(tableOf(SMALL));
  assert.equal(bad, [], `outside tolerance:\n${bad.join('\n')}`);
});

test('the check can fail: Poisson spikes, no slow latent, one log-normal rate and a third good units are caught', () => {
  const bad = failures(tableOf({ ...SMALL, refractoryMs: [0, 0], slowGain: 0, sparseFraction: 0, goodFraction: 0.35 }));
  for (const stat of ['good-unit fraction', 'ISI < 1.5 ms (mean fraction)', 'Fano factor 1 s (median)', 'fraction < 1 Hz']) {
    assert.ok(bad.some((b) => b.startsWith(`${stat}:`)), `${stat} should be outside tolerance; failures: ${bad.join('; ')}`);
  }
});

test.run();
