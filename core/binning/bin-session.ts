// One session's spike trains -> trial-aligned counts, neuron table, behaviour and (for simulated
// sessions) expected counts from the true rates (docs/method.md §2.4).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BinnedSession, NeuronInfo, SpikeTrains } from '../payloads.ts';
import { readNpy } from '../io/npy.ts';
import { clusterAtlasIds, labelNeurons } from '../atlas/label.ts';
import type { AllenRegions } from '../atlas/regions.ts';
import { binCount, binSpikes, columnTable } from './bin-spikes.ts';
import { allocCounts, type AllocCountsOptions } from './prefault.ts';
import { filterTrials, splitTrials, trialBehaviour, type FilterResult, type TrialFilter } from './trials.ts';
import { expectedCountsFromGrid, meanPerBin, wheelSpeedPerBin, type BinGrid, type RateGrid } from './per-bin.ts';

export interface BinSessionOptions extends TrialFilter {
  binSizeMs: number;
  windowS: readonly [number, number];
  splitFractions: readonly [number, number, number];
  seed: number;
  goodOnly: boolean;
  /** Probe names to keep; empty keeps all. */
  probes: readonly string[];
  /** Fault the counts' pages in on a helper thread (prefault.ts; off by default: slower on the shared 2-core VM). */
  prefault?: AllocCountsOptions['prefault'];
}

/** The simulator's ground truth as found beside a session (see core/sim). */
export interface SimTruth {
  grid: RateGrid;
  /** (probe, clusterId) of each grid column. */
  neurons: { probe: string; clusterId: number }[];
}

export interface BinSessionResult {
  session: BinnedSession;
  filter: FilterResult;
  /** Why trueRates is absent although truth was given, if so. */
  trueRatesSkipped?: string;
}

export const SIM_RATES_FILE = '_mtm_sim.trueRates.npy';
export const SIM_META_FILE = '_mtm_sim.meta.json';

/** Reads `alf/_mtm_sim.trueRates.npy` + `alf/_mtm_sim.meta.json` when the session has them. */
export async function loadSimTruth(sessionPath: string): Promise<SimTruth | undefined> {
  const ratesPath = join(sessionPath, 'alf', SIM_RATES_FILE);
  const metaPath = join(sessionPath, 'alf', SIM_META_FILE);
  if (!existsSync(ratesPath) || !existsSync(metaPath)) return undefined;
  let meta: { stepMs?: unknown; gridStartS?: unknown; neurons?: unknown };
  try {
    meta = JSON.parse(await readFile(metaPath, 'utf8'));
  } catch (e) {
    throw new Error(`${metaPath}: not valid JSON (${(e as Error).message})`);
  }
  const arr = await readNpy(ratesPath);
  if (arr.shape.length !== 3 || !(arr.data instanceof Float32Array || arr.data instanceof Float64Array)) {
    throw new Error(`${ratesPath}: expected a float array [trials, steps, neurons], got ${arr.dtype} ${JSON.stringify(arr.shape)}`);
  }
  const neurons = meta.neurons;
  if (typeof meta.stepMs !== 'number' || typeof meta.gridStartS !== 'number' || !Array.isArray(neurons)) {
    throw new Error(`${metaPath}: needs numeric 'stepMs', 'gridStartS' and a 'neurons' list`);
  }
  const [nTrials, nSteps, nNeurons] = arr.shape;
  if (neurons.length !== nNeurons) throw new Error(`${metaPath}: lists ${neurons.length} neurons but ${ratesPath} has ${nNeurons}`);
  return {
    grid: {
      rates: arr.data instanceof Float32Array ? arr.data : Float32Array.from(arr.data),
      nTrials,
      nSteps,
      nNeurons,
      stepMs: meta.stepMs,
      gridStartS: meta.gridStartS,
    },
    neurons: neurons.map((n: { probe: string; clusterId: number }) => ({ probe: String(n.probe), clusterId: Number(n.clusterId) })),
  };
}

/** Throws, naming the probe, when spike times are not sorted (the one-pass walk relies on it). */
export function checkSorted(times: Float64Array, what: string): void {
  for (let i = 1; i < times.length; i++) {
    if (!(times[i] >= times[i - 1])) {
      throw new Error(`${what}: spike times are not sorted ascending (index ${i}: ${times[i]} after ${times[i - 1]})`);
    }
  }
}

export function binSession(trains: SpikeTrains, o: BinSessionOptions, extras: { regions?: AllenRegions; truth?: SimTruth } = {}): BinSessionResult {
  const where = `session ${trains.sessionId} (${trains.path})`;
  const nBins = binCount(o.windowS, o.binSizeMs);
  const filter = filterTrials(trains.trials, o, `${where} trials`);
  const kept = filter.kept;
  const align = trains.trials[o.alignEvent];
  const alignTimes = Float64Array.from(kept, (i) => align[i]);

  const probes = selectProbes(trains, o.probes, where);
  const { neurons, plans } = neuronTable(probes, o.goodOnly, where);
  const nNeurons = neurons.length;
  const counts = countSpikes(plans, { nNeurons, nBins, alignTimes, o, where });
  const grid: BinGrid = { alignTimes, windowS: o.windowS, binSizeMs: o.binSizeMs };
  const perBin = behaviourPerBin(trains, grid, where);
  const { trueRates, trueRatesSkipped } = extras.truth ? trueRatesOf(extras.truth, neurons, trains, kept, grid) : {};

  let labelled = neurons;
  if (extras.regions) labelled = labelNeurons(neurons, extras.regions, 'allen').neurons;

  const session: BinnedSession = {
    kind: 'binned-session',
    sessionId: trains.sessionId,
    ...(trains.eid ? { eid: trains.eid } : {}),
    binSizeMs: o.binSizeMs,
    windowS: [o.windowS[0], o.windowS[1]],
    nTrials: kept.length,
    nBins,
    nNeurons,
    counts,
    trials: {
      trialIndex: kept,
      split: splitTrials(kept.length, o.splitFractions, o.seed, trains.sessionId),
      columns: trialBehaviour(trains.trials, kept),
    },
    neurons: labelled,
    perBin,
    ...(trueRates ? { trueRates } : {}),
  };
  return { session, filter, ...(trueRatesSkipped ? { trueRatesSkipped } : {}) };
}

type Probe = SpikeTrains['probes'][number];

/** The probes named in `names` (all when empty), sorted by name; a named probe the session lacks is an error. */
function selectProbes(trains: SpikeTrains, names: readonly string[], where: string): Probe[] {
  const wanted = new Set(names);
  const probes = trains.probes.filter((p) => wanted.size === 0 || wanted.has(p.probe)).sort((a, b) => (a.probe < b.probe ? -1 : a.probe > b.probe ? 1 : 0));
  if (wanted.size) {
    const missing = names.filter((name) => !probes.some((p) => p.probe === name));
    if (missing.length) throw new Error(`${where}: no probe ${missing.join(', ')} (it has ${trains.probes.map((p) => p.probe).join(', ') || 'none'})`);
  }
  return probes;
}

/** The neuron table (probes in order, then cluster id ascending) and, per probe, the column of each cluster. */
function neuronTable(probes: Probe[], goodOnly: boolean, where: string): { neurons: NeuronInfo[]; plans: { probe: Probe; table: Int32Array }[] } {
  const neurons: NeuronInfo[] = [];
  const plans: { probe: Probe; table: Int32Array }[] = [];
  for (const p of probes) {
    if (goodOnly && !p.clusterGood) {
      throw new Error(`${where} probe ${p.probe}: goodOnly needs the unit labels of clusters.metrics.pqt, which this probe lacks`);
    }
    const atlas = clusterAtlasIds(p);
    const rows = Array.from(p.clusterIds.keys())
      .filter((i) => !goodOnly || p.clusterGood![i] === 1)
      .sort((a, b) => p.clusterIds[a] - p.clusterIds[b]);
    const columns = new Int32Array(p.clusterIds.length).fill(-1);
    for (const i of rows) {
      columns[i] = neurons.length;
      neurons.push({
        probe: p.probe,
        clusterId: p.clusterIds[i],
        atlasId: atlas[i],
        acronym: '',
        beryl: '',
        cosmos: '',
        depthUm: p.clusterDepthsUm?.[i] ?? NaN,
        good: p.clusterGood ? p.clusterGood[i] === 1 : false,
      });
    }
    plans.push({ probe: p, table: columnTable(p.clusterIds, columns) });
  }
  return { neurons, plans };
}

/** The counts (trials x bins x neurons), every probe binned into its columns. */
function countSpikes(
  plans: { probe: Probe; table: Int32Array }[],
  c: { nNeurons: number; nBins: number; alignTimes: Float64Array; o: BinSessionOptions; where: string },
): Int32Array {
  const { nNeurons, alignTimes, o } = c;
  const alloc = allocCounts(alignTimes.length * c.nBins * nNeurons, { prefault: o.prefault });
  const counts = alloc.array;
  try {
    for (const { probe: p, table } of plans) {
      checkSorted(p.times, `${c.where} probe ${p.probe}`);
      binSpikes({ times: p.times, clusters: p.clusters, columnOf: table, nNeurons, alignTimes, windowS: o.windowS, binSizeMs: o.binSizeMs, out: counts });
    }
  } finally {
    alloc.done();
  }
  return counts;
}

/** Behaviour series sampled on the bins: wheel speed and whisker motion energy, where the session has them. */
function behaviourPerBin(trains: SpikeTrains, grid: BinGrid, where: string): Record<string, Float32Array> {
  const perBin: Record<string, Float32Array> = {};
  if (trains.wheelPosition && trains.wheelPosition.times.length) {
    perBin.wheelSpeed = wheelSpeedPerBin(trains.wheelPosition.times, trains.wheelPosition.values, grid);
  }
  if (trains.whiskerMotionEnergy && trains.whiskerMotionEnergy.times.length) {
    perBin.whiskerMotionEnergy = meanPerBin(trains.whiskerMotionEnergy.times, trains.whiskerMotionEnergy.values, grid, `${where} whisker motion energy`);
  }
  return perBin;
}

/** Expected counts of the kept trials' bins from the simulator's true rates, or why there are none. */
function trueRatesOf(
  t: SimTruth,
  neurons: NeuronInfo[],
  trains: SpikeTrains,
  kept: Int32Array,
  grid: BinGrid,
): { trueRates?: Float32Array; trueRatesSkipped?: string } {
  const index = new Map(t.neurons.map((n, j) => [`${n.probe}\u0000${n.clusterId}`, j]));
  const neuronOf = Int32Array.from(neurons, (n) => index.get(`${n.probe}\u0000${n.clusterId}`) ?? -1);
  const stimOn = trains.trials.stimOn_times;
  if (neuronOf.some((j) => j < 0)) return { trueRatesSkipped: 'some neurons have no true rate' };
  if (!stimOn || t.grid.nTrials !== stimOn.length) return { trueRatesSkipped: `the rate grid has ${t.grid.nTrials} trials, the session ${stimOn?.length ?? 0}` };
  const trueRates = expectedCountsFromGrid(t.grid, stimOn, kept, grid, neuronOf) ?? undefined;
  return trueRates ? { trueRates } : { trueRatesSkipped: 'the bins reach outside the true-rate grid' };
}
