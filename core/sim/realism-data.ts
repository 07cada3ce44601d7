// Inputs of the realism statistics (realism.ts): real IBL recordings read from their files, and
// simulated sessions taken straight from the simulator, both reduced to the same summaries.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { numericColumn, readParquet, stringColumn } from '../io/parquet.ts';
import { readNpy } from '../io/npy.ts';
import { parseCsv, type AllenRegions } from '../atlas/regions.ts';
import type { SimSession } from './model.ts';
import {
  ACTIVE_MIN_RATE_HZ,
  REGION_MIN_SHARE,
  TRAIN_MIN_RATE_HZ,
  ksStatistic,
  median,
  qualityLabel,
  splitByCluster,
  summarizeAnatomy,
  summarizeLabels,
  summarizeModulation,
  summarizeRates,
  summarizeTrains,
  summarizeTrials,
  summarizeDist,
  trainSummary,
  modulationRows,
  modulationTrials,
  type UnitModulation,
  type AnatomySummary,
  type LabelSummary,
  type ModulationSummary,
  type RateSummary,
  type TrainSummary,
  type TrialSummary,
} from './realism.ts';

/** Where each real file sits under the fixtures folder. */
export const REAL_FILES = {
  clusters: 'paper-reproducible-ephys/fig_data_quality/tables/clusters_re_147.pqt',
  channels: 'paper-reproducible-ephys/fig_data_quality/tables/channels_re.pqt',
  spikeTimes: 'ibl-real-spikes/ephys_test.spike_times.npy',
  spikeClusters: 'ibl-real-spikes/ephys_test.spike_clusters.npy',
  trials: 'ibllib/brainbox/tests/fixtures/trials_df_test.csv',
} as const;

/** Length of the real spike recording, s (its spikes span 0.004-120.0 s). */
export const REAL_SPIKES_DURATION_S = 120;

/** The real cluster table, reduced to what the statistics need. */
export interface RealClusters {
  pid: string[];
  rateHz: Float64Array;
  /** The IBL label as stored, and recomputed from the three metrics (0, 1/3, 2/3, 1). */
  label: Float64Array;
  metricLabel: Float64Array;
  atlasId: Float64Array;
}

export async function loadRealClusters(fixtures: string): Promise<RealClusters> {
  const file = join(fixtures, REAL_FILES.clusters);
  const t = await readParquet(file, { columns: ['__index_level_0__', 'firing_rate', 'label', 'slidingRP_viol', 'noise_cutoff', 'amp_median', 'atlas_id'] });
  const rp = numericColumn(t, 'slidingRP_viol', file);
  const nc = numericColumn(t, 'noise_cutoff', file);
  const amp = numericColumn(t, 'amp_median', file);
  return {
    pid: stringColumn(t, '__index_level_0__', file).map(String),
    rateHz: numericColumn(t, 'firing_rate', file),
    label: numericColumn(t, 'label', file),
    // A missing noise cutoff (NaN) fails that metric, as in the IBL's table.
    metricLabel: Float64Array.from(rp, (r, i) => qualityLabel(r, nc[i], amp[i])),
    atlasId: numericColumn(t, 'atlas_id', file),
  };
}

export interface RealChannels {
  pid: string[];
  atlasId: Float64Array;
}

export async function loadRealChannels(fixtures: string): Promise<RealChannels> {
  const file = join(fixtures, REAL_FILES.channels);
  const t = await readParquet(file, { columns: ['__index_level_0__', 'atlas_id'] });
  return { pid: stringColumn(t, '__index_level_0__', file).map(String), atlasId: numericColumn(t, 'atlas_id', file) };
}

export async function loadRealSpikes(fixtures: string): Promise<{ times: Float64Array; clusters: Float64Array }> {
  const times = await readNpy(join(fixtures, REAL_FILES.spikeTimes));
  const clusters = await readNpy(join(fixtures, REAL_FILES.spikeClusters));
  return { times: Float64Array.from(times.data as ArrayLike<number>), clusters: Float64Array.from(clusters.data as ArrayLike<number>) };
}

/** The real trials table (CSV, empty cells NaN). */
export async function loadRealTrials(fixtures: string): Promise<Record<string, Float64Array>> {
  const file = join(fixtures, REAL_FILES.trials);
  const rows = parseCsv(await readFile(file, 'utf8')).filter((r) => r.length > 1);
  const head = rows[0];
  const out: Record<string, Float64Array> = {};
  head.forEach((name, j) => {
    if (!name) return;
    out[name] = Float64Array.from(rows.slice(1), (r) => (r[j] === '' || r[j] === undefined ? NaN : Number(r[j])));
  });
  return out;
}

/** Beryl region of an Allen id, or null outside grey matter (void, root and fibre tracts, unknown ids). */
export function berylOrNull(regions: AllenRegions, atlasId: number): string | null {
  const l = regions.label(atlasId);
  if (l.status !== 'ok') return null;
  return l.beryl === 'root' || l.beryl === 'void' ? null : l.beryl;
}

/** Fraction of each probe's channels inside the brain (Allen id not void). */
export function channelsInBrain(pid: ArrayLike<string>, atlasId: ArrayLike<number>): number[] {
  const n = new Map<string, [number, number]>();
  for (let i = 0; i < pid.length; i++) {
    const e = n.get(pid[i]) ?? [0, 0];
    e[0]++;
    if (atlasId[i] !== 0) e[1]++;
    n.set(pid[i], e);
  }
  return [...n.values()].map(([all, inside]) => inside / all);
}

/** Everything the realism table compares, for one side (simulated or real). */
export interface RealismSide {
  /** Per-unit firing rates of active units (>= ACTIVE_MIN_RATE_HZ), and their raw values for KS. */
  rates: RateSummary;
  rateValues: number[];
  labels: LabelSummary;
  anatomy: AnatomySummary;
  channelsInBrain: number[];
  trains: TrainSummary;
  trials: TrialSummary;
  /** Only where trials and spikes come from the same recording. */
  modulation: ModulationSummary | null;
}

export interface RealData {
  clusters: RealClusters;
  channels: RealChannels;
  spikes: { times: Float64Array; clusters: Float64Array };
  trials: Record<string, Float64Array>;
}

export async function loadRealData(fixtures: string): Promise<RealData> {
  const [clusters, channels, spikes, trials] = await Promise.all([loadRealClusters(fixtures), loadRealChannels(fixtures), loadRealSpikes(fixtures), loadRealTrials(fixtures)]);
  return { clusters, channels, spikes, trials };
}

/** The real side of the table. */
export function realSide(d: RealData, regions: AllenRegions): RealismSide {
  const c = d.clusters;
  const active: number[] = [];
  for (let i = 0; i < c.rateHz.length; i++) if (c.rateHz[i] >= ACTIVE_MIN_RATE_HZ) active.push(i);
  const rateValues = active.map((i) => c.rateHz[i]);
  const t = d.trials;
  return {
    rates: summarizeRates(rateValues),
    rateValues,
    labels: summarizeLabels(
      active.map((i) => c.metricLabel[i]),
      rateValues,
    ),
    anatomy: summarizeAnatomy(
      active.map((i) => c.pid[i]),
      active.map((i) => berylOrNull(regions, c.atlasId[i])),
    ),
    channelsInBrain: channelsInBrain(d.channels.pid, d.channels.atlasId),
    trains: summarizeTrains(splitByCluster(d.spikes.times, d.spikes.clusters), 0, REAL_SPIKES_DURATION_S),
    trials: summarizeTrials({
      stimOn_times: t.stimOn_times,
      feedback_times: t.feedback_times,
      feedbackType: t.feedbackType,
      contrastLeft: t.contrastLeft,
      contrastRight: t.contrastRight,
      probabilityLeft: t.probabilityLeft,
      choice: t.choice,
    }),
    modulation: null,
  };
}

/** The simulated side: every unit of every session (each probe of a session is a probe here too). */
export function simSide(sims: SimSession[], opts: { trials?: SimSession['trials'] } = {}): RealismSide {
  const rates: number[] = [];
  const labels: number[] = [];
  const probeKeys: string[] = [];
  const regionsOf: (string | null)[] = [];
  const inBrain: number[] = [];
  const perUnit: TrainSummary['perUnit'] = [];
  const modulation: UnitModulation[] = [];
  const corr100: [number, number][] = [];
  const corr1s: [number, number][] = [];
  let modulationTrialCount = 0;
  sims.forEach((s, k) => {
    for (const p of s.probes) {
      const byCluster = splitByCluster(p.times, p.clusters);
      const units = s.neurons.filter((n) => n.probe === p.probe);
      units.forEach((n, c) => {
        const r = p.clusterRateHz[c];
        if (r < ACTIVE_MIN_RATE_HZ) return;
        rates.push(r);
        labels.push(p.clusterLabel[c]);
        probeKeys.push(`${k}/${p.probe}`);
        regionsOf.push(n.region >= 0 ? s.regions[n.region].acronym : null);
      });
      let inside = 0;
      for (const id of p.channelAtlasIds) if (id !== 0) inside++;
      inBrain.push(inside / p.channelAtlasIds.length);
      const tr = summarizeTrains(byCluster, 0, s.durationS);
      perUnit.push(...tr.perUnit);
      corr100.push([tr.pairCorrelation100ms, tr.units]);
      corr1s.push([tr.pairCorrelation1s, tr.units]);
      const trains = units.map((_, c) => byCluster.get(c) ?? new Float64Array(0));
      modulation.push(...modulationRows(trains, s.trials, s.durationS));
    }
    modulationTrialCount += modulationTrials(s.trials).length;
  });
  // Trial statistics from a long run of the task model if given (the sessions' few hundred trials are noisy).
  const parts = opts.trials ? [summarizeTrials(opts.trials)] : sims.map((s) => summarizeTrials(s.trials));
  return {
    rates: summarizeRates(rates),
    rateValues: rates,
    labels: summarizeLabels(labels, rates),
    anatomy: summarizeAnatomy(probeKeys, regionsOf),
    channelsInBrain: inBrain,
    trains: trainSummary(perUnit, weighted(corr100), weighted(corr1s)),
    trials: pooledTrials(parts),
    modulation: summarizeModulation(modulation, sims.length ? Math.round(modulationTrialCount / sims.length) : 0),
  };
}

/** Mean of per-probe values weighted by their unit counts (NaNs left out). */
function weighted(xs: [number, number][]): number {
  let s = 0;
  let w = 0;
  for (const [v, n] of xs) {
    if (!Number.isFinite(v)) continue;
    s += v * n;
    w += n;
  }
  return w ? s / w : NaN;
}

/** Sessions' trial summaries pooled (fractions weighted by trials; responses and gaps concatenated). */
function pooledTrials(parts: TrialSummary[]): TrialSummary {
  const n = parts.reduce((a, p) => a + p.trials, 0);
  const w = (f: (p: TrialSummary) => number) => parts.reduce((a, p) => a + (Number.isFinite(f(p)) ? f(p) * p.trials : 0), 0) / n;
  const responses = parts.flatMap((p) => p.responses);
  const interTrials = parts.flatMap((p) => p.interTrials);
  return {
    trials: n,
    fractionCorrect: w((p) => p.fractionCorrect),
    correctEasy: w((p) => p.correctEasy),
    correctZero: w((p) => p.correctZero),
    noGo: w((p) => p.noGo),
    responseS: summarizeDist(responses),
    interTrialS: summarizeDist(interTrials),
    responses,
    interTrials,
  };
}

// ---------------------------------------------------------------------------------------------
// The table: each statistic, simulated vs real, with a distance

export interface RealismRow {
  group: 'rates' | 'labels' | 'anatomy' | 'spike trains' | 'trials' | 'modulation';
  stat: string;
  sim: number;
  /** null where the fixtures hold no real counterpart (see `note`). */
  real: number | null;
  /** How the distance is measured: KS statistic, absolute difference, or |log10(sim / real)| (decades). */
  distanceKind: 'ks' | 'abs' | 'decades';
  distance: number | null;
  note?: string;
}

const decades = (a: number, b: number) => Math.abs(Math.log10(a / b));

export function realismTable(sim: RealismSide, real: RealismSide): RealismRow[] {
  const rows: RealismRow[] = [];
  const add = (group: RealismRow['group'], stat: string, s: number, r: number | null, kind: RealismRow['distanceKind'], note?: string, dist?: number) => {
    const distance = dist ?? (r === null || !Number.isFinite(s) || !Number.isFinite(r) ? null : kind === 'decades' ? decades(s, r) : Math.abs(s - r));
    rows.push({ group, stat, sim: s, real: r, distanceKind: kind, distance, ...(note ? { note } : {}) });
  };
  // Rates of active units (>= ACTIVE_MIN_RATE_HZ) from the cluster table of 78 repeated-site probes.
  add('rates', 'rate distribution (KS)', NaN, NaN, 'ks', 'per-unit firing rate, active units', ksStatistic(sim.rateValues, real.rateValues));
  for (const q of ['q05', 'q10', 'q25', 'q50', 'q75', 'q90', 'q95'] as const) add('rates', `rate ${q} (Hz)`, sim.rates[q], real.rates[q], 'decades');
  add('rates', 'mean ln(rate)', sim.rates.logMean, real.rates.logMean, 'abs');
  add('rates', 'sd ln(rate)', sim.rates.logSd, real.rates.logSd, 'abs');
  add('rates', 'fraction < 0.1 Hz', sim.rates.fracBelow0p1Hz, real.rates.fracBelow0p1Hz, 'abs');
  add('rates', 'fraction < 1 Hz', sim.rates.fracBelow1Hz, real.rates.fracBelow1Hz, 'abs');
  add('labels', 'good-unit fraction', sim.labels.good, real.labels.good, 'abs', 'IBL label == 1: all three quality metrics passed');
  sim.labels.levels.forEach((v, i) => add('labels', `label ${['0', '1/3', '2/3', '1'][i]} fraction`, v, real.labels.levels[i], 'abs'));
  ['< 1 Hz', '1-5 Hz', '5-20 Hz', '>= 20 Hz'].forEach((b, i) => add('labels', `good fraction, units ${b}`, sim.labels.goodByRate[i], real.labels.goodByRate[i], 'abs'));
  const a = sim.anatomy;
  const ra = real.anatomy;
  add('anatomy', 'units per probe (median)', a.unitsPerProbe.q50, ra.unitsPerProbe.q50, 'decades', 'active units; the simulator draws fewer units than a real probe holds, by design (neurons is a size parameter)');
  add('anatomy', 'units per region (median)', a.unitsPerRegion.q50, ra.unitsPerRegion.q50, 'decades', `regions holding >= ${REGION_MIN_SHARE * 100} % of a probe's in-brain units`);
  add('anatomy', 'regions per probe (median)', a.regionsPerProbe.q50, ra.regionsPerProbe.q50, 'abs');
  add('anatomy', "region's share of its probe (KS)", NaN, NaN, 'ks', undefined, ksStatistic(a.shares, ra.shares));
  add('anatomy', 'region share (median)', a.regionShare.q50, ra.regionShare.q50, 'abs');
  add('anatomy', 'largest region share (median)', a.largestShare.q50, ra.largestShare.q50, 'abs');
  add('anatomy', 'units outside grey matter', a.outsideFraction, ra.outsideFraction, 'abs', 'void, root, fibre tracts');
  add('anatomy', 'channels inside the brain (median)', median(sim.channelsInBrain), median(real.channelsInBrain), 'abs');
  const t = sim.trains;
  const rt = real.trains;
  const ksOf = (k: keyof TrainSummary['perUnit'][number]) => ksStatistic(t.perUnit.map((u) => u[k]), rt.perUnit.map((u) => u[k]));
  const trainNote = `units >= ${TRAIN_MIN_RATE_HZ} Hz; real: 289 clusters, 120 s`;
  add('spike trains', 'Fano factor 100 ms (KS)', NaN, NaN, 'ks', trainNote, ksOf('fano100ms'));
  for (const [k, label] of [['fano20ms', '20 ms'], ['fano100ms', '100 ms'], ['fano1s', '1 s'], ['fano10s', '10 s']] as const) {
    add('spike trains', `Fano factor ${label} (median)`, t[k].q50, rt[k].q50, 'abs');
  }
  add('spike trains', 'Fano factor 100 ms (q25)', t.fano100ms.q25, rt.fano100ms.q25, 'abs');
  add('spike trains', 'Fano factor 100 ms (q75)', t.fano100ms.q75, rt.fano100ms.q75, 'abs');
  add('spike trains', 'ISI < 1.5 ms (mean fraction)', t.isiViolation.mean, rt.isiViolation.mean, 'abs', 'refractory-period violations');
  add('spike trains', 'ISI < 1.5 ms (q90)', t.isiViolation.q90, rt.isiViolation.q90, 'abs');
  add('spike trains', 'ISI CV (KS)', NaN, NaN, 'ks', undefined, ksOf('isiCv'));
  add('spike trains', 'ISI CV (median)', t.isiCv.q50, rt.isiCv.q50, 'abs');
  add('spike trains', 'ISI < 10 ms (median fraction)', t.burstFraction.q50, rt.burstFraction.q50, 'abs', 'bursts');
  add('spike trains', 'ISI < 10 ms over Poisson (median)', t.burstRatio.q50, rt.burstRatio.q50, 'abs', 'short intervals relative to a Poisson train of the same rate');
  add('spike trains', 'pair correlation of counts, 100 ms', t.pairCorrelation100ms, rt.pairCorrelation100ms, 'abs', 'mean over pairs of units on one probe');
  add('spike trains', 'pair correlation of counts, 1 s', t.pairCorrelation1s, rt.pairCorrelation1s, 'abs');
  const tr = sim.trials;
  const rtr = real.trials;
  add('trials', 'fraction correct', tr.fractionCorrect, rtr.fractionCorrect, 'abs', 'real: 500 ephysChoiceWorld trials');
  add('trials', 'fraction correct, contrast >= 0.25', tr.correctEasy, rtr.correctEasy, 'abs');
  add('trials', 'fraction correct, contrast 0', tr.correctZero, rtr.correctZero, 'abs');
  add('trials', 'stimulus to feedback (KS)', NaN, NaN, 'ks', 'no movement times in the real table: response = feedback - stimOn', ksStatistic(tr.responses, rtr.responses));
  add('trials', 'stimulus to feedback (median s)', tr.responseS.q50, rtr.responseS.q50, 'abs');
  add('trials', 'feedback to next stimulus (KS)', NaN, NaN, 'ks', undefined, ksStatistic(tr.interTrials, rtr.interTrials));
  add('trials', 'feedback to next stimulus (median s)', tr.interTrialS.q50, rtr.interTrialS.q50, 'abs');
  const m = sim.modulation;
  if (m) {
    const none = 'no real recording with its own trials in the fixtures';
    add('modulation', 'post-stimulus vs baseline (fraction p < 0.05)', m.postStim, null, 'abs', none);
    add('modulation', 'pre-movement vs baseline (fraction p < 0.05)', m.preMove, null, 'abs', none);
    add('modulation', 'left vs right choice before movement (fraction p < 0.05)', m.leftRight, null, 'abs', none);
    add('modulation', 'trial-aligned Fano factor before stimulus (median)', m.fanoPreStim.q50, null, 'abs', none);
    add('modulation', 'trial-aligned Fano factor after / before stimulus', m.fanoPostStim.q50 / m.fanoPreStim.q50, null, 'abs', 'stimulus onset lowers trial-to-trial variability in every dataset of Churchland et al. 2010 (Nat Neurosci 13:369): below 1');
  }
  return rows;
}
