// Spike sources for applying a model to a recording as a stream (docs/method.md §1.3): chunks of spikes from
// a phy folder, an ALF session or a synthetic Poisson generator, replayed at real time or faster.
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadSpikeTrains, type LoadSpikeTrainsOptions } from '../alf/session.ts';
import { createRng } from '../rng.ts';
import { readPhyFolder, type ReadPhyOptions } from './kilosort.ts';

/** The spikes with t0 <= time < t1, sorted by time; `clusters` are the source's stream ids (see SpikeSource.units). */
export interface SpikeChunk {
  t0: number;
  t1: number;
  times: Float64Array;
  clusters: Int32Array;
}

export interface ChunkOptions {
  /** Chunk length in seconds (default 0.1). */
  chunkS?: number;
  /** Replay speed: 1 = real time (paced with timers), 10 = ten times faster, Infinity (default) = as fast as the consumer pulls. */
  speed?: number;
  /** Stops the stream: the iterator throws the signal's reason at the next chunk or while waiting. */
  signal?: AbortSignal;
  /** Recording span to stream; spikes outside [startS, endS) are left out. Defaults: the source's own span. */
  startS?: number;
  endS?: number;
}

/** One unit of a source: `id` is what chunks carry in `clusters`; the rest says where it came from. */
export interface StreamUnit {
  id: number;
  clusterId: number;
  /** ALF probe name, the phy folder's name, or 'synthetic'. */
  probe: string;
  /** phy group / IBL label: 'good', 'mua', 'noise', '' (unknown). */
  group: string;
  depthUm?: number;
}

export interface SpikeSource {
  /** What the source is, for logs and errors (a folder, or 'synthetic(...)'). */
  name: string;
  units: StreamUnit[];
  /** The recording span [startS, endS): every spike of the source lies inside it. */
  startS: number;
  endS: number;
  /** A fresh pass over the recording; may be called more than once. */
  chunks(opts?: ChunkOptions): AsyncGenerator<SpikeChunk>;
}

/** The smallest double above x: an end bound that keeps the last spike inside [start, end). */
function nextUp(x: number): number {
  if (x === 0) return Number.MIN_VALUE;
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, x);
  dv.setBigInt64(0, dv.getBigInt64(0) + (x > 0 ? 1n : -1n));
  return dv.getFloat64(0);
}

interface Span {
  chunkS: number;
  speed: number;
  startS: number;
  endS: number;
  signal?: AbortSignal;
}

function resolveSpan(name: string, src: { startS: number; endS: number }, opts: ChunkOptions): Span {
  const chunkS = opts.chunkS ?? 0.1;
  const speed = opts.speed ?? Number.POSITIVE_INFINITY;
  const startS = opts.startS ?? src.startS;
  const endS = opts.endS ?? src.endS;
  if (!(chunkS > 0) || !Number.isFinite(chunkS)) throw new Error(`${name}: chunkS must be a positive number of seconds, got ${opts.chunkS}`);
  if (!(speed > 0)) throw new Error(`${name}: speed must be > 0 (1 = real time, Infinity = as fast as possible), got ${opts.speed}`);
  if (!Number.isFinite(startS) || !Number.isFinite(endS) || !(endS >= startS)) throw new Error(`${name}: stream span ${startS}..${endS} s is not a valid interval`);
  return { chunkS, speed, startS, endS, signal: opts.signal };
}

/**
 * Chunk boundaries t_k = startS + k chunkS (computed, not accumulated, so they never drift), the
 * last one cut at endS; pacing waits until the wall clock, scaled by speed, has passed each chunk's
 * end, as a live acquisition would deliver it. A consumer slower than real time is never waited for.
 */
async function* paced(span: Span, emit: (t0: number, t1: number) => SpikeChunk): AsyncGenerator<SpikeChunk> {
  const { chunkS, speed, startS, endS, signal } = span;
  const wallStart = performance.now();
  const n = Math.max(1, Math.ceil((endS - startS) / chunkS - 1e-9));
  for (let k = 0; k < n; k++) {
    signal?.throwIfAborted();
    const t0 = Math.min(startS + k * chunkS, endS);
    const t1 = k === n - 1 ? endS : startS + (k + 1) * chunkS;
    if (Number.isFinite(speed)) {
      const due = wallStart + ((t1 - startS) / speed) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait, undefined, signal ? { signal } : undefined);
    }
    yield emit(t0, t1);
  }
}

/**
 * Chunks over arrays already in memory (sorted by time): each chunk's arrays are views
 * (subarray) into them, no copies.
 */
export async function* chunkSortedSpikes(name: string, times: Float64Array, clusters: Int32Array, span: Span): AsyncGenerator<SpikeChunk> {
  if (times.length !== clusters.length) throw new Error(`${name}: ${times.length} spike times but ${clusters.length} clusters`);
  let i = 0;
  // Skip spikes before the span once; afterwards the index only moves forward.
  while (i < times.length && times[i] < span.startS) i++;
  yield* paced(span, (t0, t1) => {
    const a = i;
    while (i < times.length && times[i] < t1) i++;
    return { t0, t1, times: times.subarray(a, i), clusters: clusters.subarray(a, i) };
  });
}

function spanOf(times: Float64Array): { startS: number; endS: number } {
  if (!times.length) return { startS: 0, endS: 0 };
  return { startS: Math.min(0, times[0]), endS: nextUp(times[times.length - 1]) };
}

/** A phy / Kilosort output folder as a spike source; stream ids are phy's cluster ids. */
export async function phySpikeSource(folder: string, opts: ReadPhyOptions = {}): Promise<SpikeSource> {
  const phy = await readPhyFolder(folder, opts);
  const units: StreamUnit[] = Array.from(phy.table.ids, (id, r) => {
    const u: StreamUnit = { id, clusterId: id, probe: basename(phy.folder), group: phy.table.group[r] };
    const d = phy.table.depthUm?.[r];
    if (d !== undefined && !Number.isNaN(d)) u.depthUm = d;
    return u;
  });
  // The recording runs at least to one sample after the last spike (the raw file's length is not known here).
  const span = phy.times.length ? { startS: 0, endS: (phy.samples[phy.samples.length - 1] + 1) / phy.sampleRateHz } : { startS: 0, endS: 0 };
  const name = phy.folder;
  return {
    name,
    units,
    ...span,
    chunks: (o = {}) => chunkSortedSpikes(name, phy.times, phy.clusters, resolveSpan(name, span, o)),
  };
}

/**
 * An ALF session (every probe, or opts.probes) as one spike source. Cluster ids repeat across
 * probes, so each probe's clusters get stream ids offset past the previous probe's; `units` maps
 * them back to (probe, clusterId). Spikes of all probes are merged in time order once, up front.
 */
export async function alfSpikeSource(sessionPath: string, opts: Pick<LoadSpikeTrainsOptions, 'probes' | 'log'> = {}): Promise<SpikeSource> {
  const st = await loadSpikeTrains(sessionPath, { ...opts, requireTrials: false });
  const units: StreamUnit[] = [];
  const offsets: number[] = [];
  let next = 0;
  for (const p of st.probes) {
    offsets.push(next);
    let maxId = -1;
    for (const id of p.clusterIds) if (id > maxId) maxId = id;
    p.clusterIds.forEach((clusterId, r) => {
      const u: StreamUnit = { id: next + clusterId, clusterId, probe: p.probe, group: p.clusterGood?.[r] ? 'good' : '' };
      const d = p.clusterDepthsUm?.[r];
      if (d !== undefined && !Number.isNaN(d)) u.depthUm = d;
      units.push(u);
    });
    next += maxId + 1;
  }
  const total = st.probes.reduce((s, p) => s + p.times.length, 0);
  const times = new Float64Array(total);
  const clusters = new Int32Array(total);
  // k-way merge of the per-probe sorted arrays (few probes: a linear scan for the minimum is enough).
  const pos = st.probes.map(() => 0);
  for (let o = 0; o < total; o++) {
    let best = -1;
    for (let k = 0; k < st.probes.length; k++) {
      const p = st.probes[k];
      if (pos[k] < p.times.length && (best < 0 || p.times[pos[k]] < st.probes[best].times[pos[best]])) best = k;
    }
    const p = st.probes[best];
    times[o] = p.times[pos[best]];
    clusters[o] = p.clusters[pos[best]] + offsets[best];
    pos[best]++;
  }
  const name = st.path;
  const span = spanOf(times);
  return {
    name,
    units,
    ...span,
    chunks: (o = {}) => chunkSortedSpikes(name, times, clusters, resolveSpan(name, span, o)),
  };
}

export interface SyntheticSourceOptions {
  durationS: number;
  nNeurons: number;
  /** Mean firing rate per neuron in Hz: one value for all, or one per neuron. Default: log-normal around 5 Hz, drawn from the seed. */
  ratesHz?: number | ArrayLike<number>;
  seed?: number;
}

/**
 * Homogeneous Poisson spikes generated chunk by chunk: per chunk and neuron a Poisson count, then
 * that many uniform times, sorted. Exactly a Poisson process, and nothing outlives its chunk, so
 * memory does not depend on the duration. The same seed and chunkS give the same spikes.
 */
export function syntheticSpikeSource(o: SyntheticSourceOptions): SpikeSource {
  const { durationS, nNeurons } = o;
  const seed = o.seed ?? 1;
  const name = `synthetic(${nNeurons} neurons, ${durationS} s, seed ${seed})`;
  if (!(durationS >= 0) || !Number.isFinite(durationS)) throw new Error(`${name}: durationS must be a finite number >= 0`);
  if (!Number.isInteger(nNeurons) || nNeurons < 1) throw new Error(`${name}: nNeurons must be a positive integer`);
  const rates = new Float64Array(nNeurons);
  const rateRng = createRng(seed ^ 0x5eed);
  for (let n = 0; n < nNeurons; n++) {
    const r = o.ratesHz === undefined ? 5 * Math.exp(0.8 * rateRng.normal() - 0.32) : typeof o.ratesHz === 'number' ? o.ratesHz : o.ratesHz[n];
    if (!(r >= 0) || !Number.isFinite(r)) throw new Error(`${name}: rate of neuron ${n} is ${r}; expected a finite rate >= 0 Hz`);
    rates[n] = r;
  }
  const units: StreamUnit[] = Array.from({ length: nNeurons }, (_, id) => ({ id, clusterId: id, probe: 'synthetic', group: 'good' }));
  const span = { startS: 0, endS: durationS };
  return {
    name,
    units,
    ...span,
    chunks(opts = {}) {
      const s = resolveSpan(name, span, opts);
      const rng = createRng(seed);
      return paced(s, (t0, t1) => {
        const dt = t1 - t0;
        let total = 0;
        const counts = new Int32Array(nNeurons);
        for (let n = 0; n < nNeurons; n++) total += counts[n] = rng.poisson(rates[n] * dt);
        const t = new Float64Array(total);
        const c = new Int32Array(total);
        let k = 0;
        for (let n = 0; n < nNeurons; n++) {
          for (let j = 0; j < counts[n]; j++, k++) {
            const x = t0 + rng.next() * dt;
            // Rounding can land t0 + u dt (u < 1) on t1, which belongs to the next chunk.
            t[k] = x < t1 ? x : t0;
            c[k] = n;
          }
        }
        const order = Uint32Array.from({ length: total }, (_, i) => i).sort((a, b) => t[a] - t[b]);
        const times = Float64Array.from(order, (i) => t[i]);
        const clusters = Int32Array.from(order, (i) => c[i]);
        return { t0, t1, times, clusters };
      });
    },
  };
}

/** Every chunk of a source, for callers that do not need the source's unit table. */
export function spikeChunks(source: SpikeSource, opts: ChunkOptions = {}): AsyncGenerator<SpikeChunk> {
  return source.chunks(opts);
}
