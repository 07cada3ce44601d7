// A whole IBL session folder in ALF layout -> the SpikeTrains payload (docs/method.md §2.2):
// spikes and clusters per probe, the trials object, wheel and whisker motion energy.
import { readdir, stat } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import type { ProbeSpikes, SpikeTrains, TimeSeries } from '../payloads.ts';
import { readNpy, type NpyArray } from '../io/npy.ts';
import { readParquet, type ParquetTable } from '../io/parquet.ts';
import { loadTrials, npyToFloat64, trialsFiles, type Trials } from './trials.ts';

export interface LoadSpikeTrainsOptions {
  /** Load only these probes (e.g. ['probe00']); each must exist. Default: every probe found. */
  probes?: string[];
  /** Id carried downstream; default the eid, else `<lab>/Subjects/<subject>/<date>/<number>`. */
  sessionId?: string;
  eid?: string;
  /** Told about choices and repairs made on the way (sorter picked, spikes re-sorted, files skipped). */
  log?: (msg: string) => void;
  /** When false, a session with no trials object loads with empty trials instead of failing. Default true. */
  requireTrials?: boolean;
}

/** Spike sorters in order of preference when a probe has several sorter folders. */
export const SORTER_PREFERENCE = ['pykilosort', 'iblsorter'];

const SPIKES_TIMES = 'spikes.times.npy';
const SPIKES_CLUSTERS = 'spikes.clusters.npy';

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw new Error(`${dir}: cannot list folder (${(e as Error).message})`);
  }
}

async function subfolders(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await listDir(dir)).sort()) {
    // ALF revision folders (#2023-01-01#) and hidden folders are not collections.
    if (name.startsWith('#') || name.startsWith('.')) continue;
    if ((await stat(join(dir, name)).catch(() => null))?.isDirectory()) out.push(name);
  }
  return out;
}

async function hasFile(dir: string, name: string): Promise<boolean> {
  return (await stat(join(dir, name)).catch(() => null))?.isFile() ?? false;
}

/**
 * Probe names of a session: folders of `<session>/alf/` named probe* or holding spikes.times.npy
 * (directly or in a sorter subfolder). Sorted by name.
 */
export async function listProbes(sessionPath: string): Promise<string[]> {
  const alf = join(sessionPath, 'alf');
  const probes: string[] = [];
  for (const name of await subfolders(alf)) {
    const dir = join(alf, name);
    if (/^probe/i.test(name) || (await hasFile(dir, SPIKES_TIMES))) {
      probes.push(name);
      continue;
    }
    for (const sub of await subfolders(dir)) {
      if (await hasFile(join(dir, sub), SPIKES_TIMES)) {
        probes.push(name);
        break;
      }
    }
  }
  return probes;
}

/**
 * The folder holding a probe's spike sorting: a sorter subfolder when there is one (pykilosort, then
 * iblsorter, then the first by name), else the probe folder itself.
 */
export async function probeCollection(sessionPath: string, probe: string, log: (msg: string) => void = () => {}): Promise<string> {
  const dir = join(sessionPath, 'alf', probe);
  if (!(await stat(dir).catch(() => null))?.isDirectory()) {
    const known = await listProbes(sessionPath);
    throw new Error(`${dir}: probe folder not found (probes in this session: ${known.length ? known.join(', ') : 'none'})`);
  }
  const sorters: string[] = [];
  for (const sub of await subfolders(dir)) if (await hasFile(join(dir, sub), SPIKES_TIMES)) sorters.push(sub);
  if (sorters.length === 0) return dir;
  const pick = SORTER_PREFERENCE.find((s) => sorters.includes(s)) ?? sorters[0];
  if (sorters.length > 1) log(`${probe}: several spike sortings (${sorters.join(', ')}); using ${pick}`);
  if (await hasFile(dir, SPIKES_TIMES)) log(`${probe}: spikes both in ${dir} and in its ${pick} subfolder; using ${pick}`);
  return join(dir, pick);
}

/** Integer ids as int32, refusing fractions and values out of range (they would wrap silently). */
function toInt32(a: NpyArray, file: string): Int32Array {
  const d = a.data;
  if (d instanceof Int32Array) return d;
  if (Array.isArray(d)) throw new Error(`${file}: holds ${a.dtype} values, expected integers`);
  const out = new Int32Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
      throw new Error(`${file}: value ${v} at index ${i} is not an int32 integer`);
    }
    out[i] = v;
  }
  return out;
}

function checkOneDim(a: NpyArray, file: string): void {
  const ok = a.shape.length === 1 || (a.shape.length === 2 && a.shape[1] === 1);
  if (!ok) throw new Error(`${file}: has shape (${a.shape.join(', ')}); expected a 1-D array`);
}

async function readRequired(dir: string, name: string, what: string): Promise<NpyArray> {
  const file = join(dir, name);
  if (!(await hasFile(dir, name))) throw new Error(`${dir}: missing ${name} (${what})`);
  const a = await readNpy(file);
  checkOneDim(a, file);
  return a;
}

async function readOptional(dir: string, name: string): Promise<{ a: NpyArray; file: string } | undefined> {
  if (!(await hasFile(dir, name))) return undefined;
  const file = join(dir, name);
  const a = await readNpy(file);
  checkOneDim(a, file);
  return { a, file };
}

/** Sort spikes by time (stable, clusters follow). */
function sortSpikes(times: Float64Array, clusters: Int32Array): { times: Float64Array; clusters: Int32Array } {
  const order = new Uint32Array(times.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((a, b) => times[a] - times[b] || a - b);
  const t = new Float64Array(times.length);
  const c = new Int32Array(times.length);
  for (let i = 0; i < order.length; i++) {
    t[i] = times[order[i]];
    c[i] = clusters[order[i]];
  }
  return { times: t, clusters: c };
}

/** Load one probe's spike sorting from its collection folder (see probeCollection). */
export async function loadProbeSpikes(dir: string, probe: string, log: (msg: string) => void = () => {}): Promise<ProbeSpikes> {
  const { times, clusters } = await readSpikes(dir, log);
  const tables = await readClusterTables(dir);
  const nClusters = clusterCount(tables, clusters, dir, log);
  for (let i = 0; i < clusters.length; i++) {
    const c = clusters[i];
    if (c < 0 || c >= nClusters) {
      throw new Error(`${join(dir, SPIKES_CLUSTERS)}: spike ${i} has cluster id ${c}, outside the clusters table (0..${nClusters - 1})`);
    }
  }

  const out: ProbeSpikes = {
    probe,
    times,
    clusters,
    clusterIds: Int32Array.from({ length: nClusters }, (_, i) => i),
  };
  const { channels, depths, clusterAtlas, channelAtlas, metrics } = tables;
  if (channels) out.clusterChannels = toInt32(channels.a, channels.file);
  if (depths) out.clusterDepthsUm = npyToFloat64(depths.a, depths.file);
  if (clusterAtlas) out.clusterAtlasIds = toInt32(clusterAtlas.a, clusterAtlas.file);
  if (channelAtlas) {
    out.channelAtlasIds = toInt32(channelAtlas.a, channelAtlas.file);
    if (out.clusterChannels) checkChannels(out.clusterChannels, out.channelAtlasIds.length, channels!.file, channelAtlas.file);
  }
  if (metrics) {
    const good = goodUnits(metrics, tables.metricsFile, nClusters, log);
    if (good) out.clusterGood = good;
  }
  return out;
}

/** spikes.times and spikes.clusters, checked parallel and free of NaN, sorted by time when they were not. */
async function readSpikes(dir: string, log: (msg: string) => void): Promise<{ times: Float64Array; clusters: Int32Array }> {
  const timesFile = join(dir, SPIKES_TIMES);
  const clustersFile = join(dir, SPIKES_CLUSTERS);
  const timesArr = await readRequired(dir, SPIKES_TIMES, 'spike times in seconds');
  const clustersArr = await readRequired(dir, SPIKES_CLUSTERS, 'cluster id of each spike');
  if (Array.isArray(timesArr.data)) throw new Error(`${timesFile}: holds ${timesArr.dtype} values, expected float64 seconds`);
  if (/[iu]\d+$/.test(timesArr.dtype)) {
    // Kilosort's spike_times.npy counts samples; read as seconds they would bin to all zeros.
    throw new Error(`${timesFile}: holds integer (${timesArr.dtype}) spike times, which look like sample indices; ALF spikes.times are float64 seconds: divide by the sampling rate (params.py sample_rate, 30000 Hz on Neuropixels), e.g. np.save(path, (samples / 30000.0).astype('<f8')), or stream the phy folder with mtm stream, which reads params.py`);
  }
  const times = timesArr.data instanceof Float64Array ? timesArr.data : Float64Array.from(timesArr.data);
  const clusters = toInt32(clustersArr, clustersFile);
  if (times.length !== clusters.length) {
    throw new Error(`${clustersFile}: has ${clusters.length} spikes but ${SPIKES_TIMES} has ${times.length}`);
  }
  let sorted = true;
  for (let i = 0; i < times.length; i++) {
    const t = times[i];
    if (Number.isNaN(t)) throw new Error(`${timesFile}: spike ${i} has a NaN time`);
    if (!Number.isFinite(t)) throw new Error(`${timesFile}: spike ${i} has an infinite time (${t})`);
    if (i > 0 && t < times[i - 1]) sorted = false;
  }
  if (sorted) return { times, clusters };
  const resorted = sortSpikes(times, clusters);
  log(`${timesFile}: spike times were not sorted; sorted them (with their clusters)`);
  return resorted;
}

type Optional = Awaited<ReturnType<typeof readOptional>>;

/** The probe's optional per-cluster and per-channel tables. */
interface ClusterTables {
  channels: Optional;
  depths: Optional;
  clusterAtlas: Optional;
  channelAtlas: Optional;
  metrics: ParquetTable | undefined;
  metricsFile: string;
}

async function readClusterTables(dir: string): Promise<ClusterTables> {
  // The clusters.* arrays are parallel tables: row i describes cluster id i.
  const channels = await readOptional(dir, 'clusters.channels.npy');
  const depths = await readOptional(dir, 'clusters.depths.npy');
  const clusterAtlas = await readOptional(dir, 'clusters.brainLocationIds_ccf_2017.npy');
  const channelAtlas = await readOptional(dir, 'channels.brainLocationIds_ccf_2017.npy');
  const metricsFile = join(dir, 'clusters.metrics.pqt');
  const metrics = (await hasFile(dir, 'clusters.metrics.pqt')) ? await readParquet(metricsFile) : undefined;
  return { channels, depths, clusterAtlas, channelAtlas, metrics, metricsFile };
}

/** The clusters table's length: the clusters.* arrays (which must agree), else the metrics rows, else the largest spike cluster id + 1. */
function clusterCount(tables: ClusterTables, clusters: Int32Array, dir: string, log: (msg: string) => void): number {
  const { channels, depths, clusterAtlas, metrics } = tables;
  const sizes: Array<[string, number]> = [];
  if (channels) sizes.push([channels.file, channels.a.data.length]);
  if (depths) sizes.push([depths.file, depths.a.data.length]);
  if (clusterAtlas) sizes.push([clusterAtlas.file, clusterAtlas.a.data.length]);
  if (sizes.length) {
    const nClusters = sizes[0][1];
    for (const [file, n] of sizes) {
      if (n !== nClusters) throw new Error(`${file}: has ${n} clusters but ${basename(sizes[0][0])} has ${nClusters}`);
    }
    return nClusters;
  }
  if (metrics && !metrics.columnNames.includes('cluster_id')) return metrics.numRows;
  let max = -1;
  for (const c of clusters) if (c > max) max = c;
  log(`${dir}: no clusters.* arrays; assuming clusters 0..${max} from ${SPIKES_CLUSTERS}`);
  return max + 1;
}

/** Every cluster's channel must be a row of the channels' atlas table. */
function checkChannels(clusterChannels: Int32Array, nCh: number, channelsFile: string, channelAtlasFile: string): void {
  clusterChannels.forEach((ch, i) => {
    if (ch < 0 || ch >= nCh) {
      throw new Error(`${channelsFile}: cluster ${i} is on channel ${ch}, outside ${basename(channelAtlasFile)} (${nCh} channels)`);
    }
  });
}

/** Good-unit flags per cluster from clusters.metrics.pqt's label column; undefined (with a log line) without one. */
function goodUnits(metrics: ParquetTable, metricsFile: string, nClusters: number, log: (msg: string) => void): Uint8Array | undefined {
  if (!metrics.columnNames.includes('label')) {
    log(`${metricsFile}: no "label" column; good-unit flags unavailable`);
    return undefined;
  }
  const good = new Uint8Array(nClusters);
  const label = metrics.columns.label;
  const ids = metrics.columns.cluster_id;
  if (!ids && metrics.numRows !== nClusters) {
    throw new Error(`${metricsFile}: has ${metrics.numRows} rows but the clusters table has ${nClusters} (and no cluster_id column to match them)`);
  }
  for (let r = 0; r < metrics.numRows; r++) {
    const id = ids ? ids[r] : r;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= nClusters) {
      throw new Error(`${metricsFile}: column "cluster_id" row ${r} is ${JSON.stringify(id)}, outside the clusters table (0..${nClusters - 1})`);
    }
    // IBL's label is the fraction of quality metrics passed: only 1 is a good unit.
    good[id] = label[r] === 1 || label[r] === true ? 1 : 0;
  }
  return good;
}

/** A behaviour time series from two parallel files; absent (with a log line) if either is missing or they disagree. */
async function loadSeries(
  dirs: string[],
  timesNames: string[],
  valuesNames: string[],
  what: string,
  log: (msg: string) => void,
): Promise<TimeSeries | undefined> {
  for (const dir of dirs) {
    const names = await listDir(dir);
    const tName = timesNames.find((n) => names.includes(n));
    const vName = valuesNames.find((n) => names.includes(n));
    if (!tName && !vName) continue;
    if (!tName || !vName) {
      log(`${dir}: ${what} has ${tName ?? vName} but not ${tName ? valuesNames[0] : timesNames[0]}; ${what} not loaded`);
      return undefined;
    }
    const tFile = join(dir, tName);
    const vFile = join(dir, vName);
    const t = await readNpy(tFile);
    const v = await readNpy(vFile);
    checkOneDim(t, tFile);
    checkOneDim(v, vFile);
    if (t.data.length !== v.data.length) {
      // A misaligned behaviour signal would silently corrupt decoding: better none than wrong.
      log(`${vFile}: ${v.data.length} samples but ${tName} has ${t.data.length}; ${what} not loaded`);
      return undefined;
    }
    return { times: npyToFloat64(t, tFile), values: npyToFloat64(v, vFile) };
  }
  return undefined;
}

/** `<lab>/Subjects/<subject>/<date>/<number>` when the path has that shape (ONE's relative session path). */
export function relativeSessionPath(sessionPath: string): string | undefined {
  const parts = resolve(sessionPath).split(sep).filter(Boolean);
  const n = parts.length;
  if (n >= 5 && parts[n - 4] === 'Subjects' && /^\d{4}-\d{2}-\d{2}$/.test(parts[n - 2]) && /^\d{1,3}$/.test(parts[n - 1])) {
    return parts.slice(n - 5).join('/');
  }
  return undefined;
}

/** Folders that may hold the session-level task objects: alf/ first, then alf/task_NN/ collections. */
async function taskFolders(sessionPath: string): Promise<string[]> {
  const alf = join(sessionPath, 'alf');
  const tasks = (await subfolders(alf)).filter((n) => /^task_\d+$/.test(n)).map((n) => join(alf, n));
  return [alf, ...tasks];
}

/** Load a session folder's spike sorting for every probe (or opts.probes), its trials, wheel and whisker motion energy. */
export async function loadSpikeTrains(sessionPath: string, opts: LoadSpikeTrainsOptions = {}): Promise<SpikeTrains> {
  const log = opts.log ?? (() => {});
  const path = resolve(sessionPath);
  if (!(await stat(path).catch(() => null))?.isDirectory()) throw new Error(`${path}: session folder not found`);
  if (!(await stat(join(path, 'alf')).catch(() => null))?.isDirectory()) throw new Error(`${path}: no alf/ folder in this session`);

  const found = await listProbes(path);
  const wanted = opts.probes ?? found;
  for (const p of wanted) {
    if (!found.includes(p)) {
      throw new Error(`${join(path, 'alf', p)}: probe folder not found (probes in this session: ${found.length ? found.join(', ') : 'none'})`);
    }
  }
  if (wanted.length === 0) throw new Error(`${join(path, 'alf')}: no probe folders (expected alf/<probe>/spikes.times.npy or alf/<probe>/<sorter>/spikes.times.npy)`);
  const probes: ProbeSpikes[] = [];
  for (const p of wanted) {
    const dir = await probeCollection(path, p, log);
    probes.push(await loadProbeSpikes(dir, p, log));
  }

  const folders = await taskFolders(path);
  let trials: Trials = {};
  let trialsDir: string | undefined;
  for (const dir of folders) {
    const f = trialsFiles(await listDir(dir));
    if (f.table || f.npy.length) {
      trialsDir = dir;
      break;
    }
  }
  if (trialsDir) {
    trials = await loadTrials(trialsDir, { log });
  } else if (opts.requireTrials === false) {
    log(`${join(path, 'alf')}: no trials object; loading spikes only`);
  } else {
    throw new Error(`${join(path, 'alf')}: no trials object (expected _ibl_trials.table.pqt or _ibl_trials.<attribute>.npy files)`);
  }

  const wheelPosition = await loadSeries(folders, ['_ibl_wheel.timestamps.npy', 'wheel.timestamps.npy'], ['_ibl_wheel.position.npy', 'wheel.position.npy'], 'wheel', log);
  const whiskerMotionEnergy = await loadSeries(
    folders,
    ['_ibl_leftCamera.times.npy', 'leftCamera.times.npy'],
    ['leftCamera.ROIMotionEnergy.npy', '_ibl_leftCamera.ROIMotionEnergy.npy'],
    'whisker motion energy',
    log,
  );

  const sessionId = opts.sessionId ?? opts.eid ?? relativeSessionPath(path) ?? path;
  const out: SpikeTrains = { kind: 'spike-trains', sessionId, path, probes, trials };
  if (opts.eid) out.eid = opts.eid;
  if (wheelPosition) out.wheelPosition = wheelPosition;
  if (whiskerMotionEnergy) out.whiskerMotionEnergy = whiskerMotionEnergy;
  return out;
}
