// `npm run bench -- realism`: how far the simulator's sessions are from real IBL recordings.
// Simulates sessions with the default sizes, computes the realism statistics (core/sim/realism.ts)
// for them and for the real files in the shared fixtures, and writes bench/results/realism.json:
// each statistic, simulated vs real, with its distance and whether it is inside the tolerance the
// simulator's test holds it to.
//   REALISM_SESSIONS (default 4) and REALISM_SEED (default 1) change the simulated set.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAllenRegions } from '../core/atlas/regions.ts';
import { createRng, hashString } from '../core/rng.ts';
import { DEFAULT_SIZES, simulateSession, simulateTrials } from '../core/sim/model.ts';
import { loadRealData, realismTable, realSide, simSide, type RealismRow } from '../core/sim/realism-data.ts';
import { REALISM_TOLERANCES, withinTolerance, type Tolerance } from '../core/sim/realism-tolerances.ts';

const here = import.meta.dirname;
const fixtures = fileURLToPath(new URL('../../shared/fixtures/', import.meta.url));
const sessions = Number(process.env.REALISM_SESSIONS ?? 4);
const seed = Number(process.env.REALISM_SEED ?? 1);

const started = performance.now();
const regions = await loadAllenRegions();
const atlasIdOf = (a: string) => regions.idOf(a)!;
// The same per-session seeds as `mtm simulate --seed <seed>`.
const sims = Array.from({ length: sessions }, (_, s) => simulateSession(hashString(`session ${s}`, seed >>> 0), DEFAULT_SIZES, atlasIdOf));
// Trial statistics over a long run of the same task model (4000 trials), not only the sessions' own.
const simS = simSide(sims, { trials: simulateTrials(4000, createRng(hashString('realism trials', seed >>> 0))).trials });
const realS = realSide(await loadRealData(fixtures), regions);
const rows: (RealismRow & { tolerance?: Tolerance; ok?: boolean })[] = realismTable(simS, realS).map((r) => {
  const tol = REALISM_TOLERANCES[r.stat];
  return tol === undefined ? r : { ...r, tolerance: tol, ok: withinTolerance(r, tol) };
});

const round = (x: number | null) => (x === null || !Number.isFinite(x) ? x : Number(x.toPrecision(4)));
const result = {
  benchmark: 'realism',
  date: new Date().toISOString().slice(0, 10),
  machine: `${cpus()[0]?.model ?? 'unknown'} x ${cpus().length}`,
  simulated: { sessions, seed, units: simS.rates.n, probes: simS.anatomy.probes, trials: simS.trials.trials, sizes: DEFAULT_SIZES },
  real: {
    clusters: 'clusters_re_147.pqt: 78 repeated-site probes, rates and quality metrics of every cluster (active ones: >= 0.03 Hz)',
    channels: 'channels_re.pqt: 80 probes x 384 channels with their Allen region',
    spikes: 'ibl-real-spikes: 289 clusters of one probe, 120 s',
    trials: 'trials_df_test.csv: 500 ephysChoiceWorld trials (another session)',
    activeUnits: realS.rates.n,
  },
  summary: {
    checked: rows.filter((r) => r.ok !== undefined).length,
    inside: rows.filter((r) => r.ok === true).length,
    outside: rows.filter((r) => r.ok === false).map((r) => r.stat),
  },
  rows: rows.map((r) => ({ ...r, sim: round(r.sim), real: round(r.real), distance: round(r.distance) })),
  seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
};
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'realism.json'), JSON.stringify(result, null, 1) + '\n');

const fmt = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3));
console.log(`realism: ${sessions} simulated sessions (seed ${seed}), ${simS.rates.n} units vs ${realS.rates.n} real active units`);
for (const r of rows) {
  const flag = r.ok === undefined ? '  ' : r.ok ? 'ok' : 'XX';
  console.log(`${flag} ${r.group.padEnd(12)} ${r.stat.padEnd(58)} sim ${fmt(r.sim).padStart(8)}  real ${fmt(r.real).padStart(8)}  ${r.distanceKind} ${fmt(r.distance)}${r.tolerance !== undefined ? ` (tol ${r.tolerance})` : ''}`);
}
console.log(`${result.summary.inside}/${result.summary.checked} inside tolerance; ${result.seconds} s`);
