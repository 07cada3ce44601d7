// Writes simulated sessions as a ONE-layout cache: ALF files per session plus the sessions.pqt and
// datasets.pqt cache tables, so the ONE client's local mode reads them (docs/method.md §2.6).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeNpy } from '../io/npy.ts';
import { writeParquet } from '../io/parquet.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { createRng, hashString, type Rng } from '../rng.ts';
import type { SessionRef } from '../payloads.ts';
import { loadAllenRegions } from '../atlas/regions.ts';
import { loadCacheTables, writeCacheTables, type CacheTables } from '../one/cache-tables.ts';
import { DEFAULT_SIZES, simulateSession, TRIAL_ATTRIBUTES, type SimSession, type SimSizes, type SimWorld } from './model.ts';

export interface SimulateCacheOptions extends Partial<SimSizes> {
  /** Root folder of the ONE cache to write. */
  out: string;
  /** Number of sessions. */
  sessions: number;
  seed: number;
  /** Keep an existing cache written with the same options instead of simulating again. */
  reuse?: boolean;
  /** Region dynamics shared across sessions, keyed by (worldSeed, region): see core/sim/model.ts. */
  sharedDynamics?: boolean;
  /** The world the shared dynamics come from; only read with sharedDynamics. */
  worldSeed?: number;
}

export interface SimulatedSessionInfo {
  ref: SessionRef;
  /** Session folder relative to the cache root (<lab>/Subjects/<subject>/<date>/<number>). */
  sessionPath: string;
  eid: string;
  lab: string;
  subject: string;
  date: string;
  number: number;
  nTrials: number;
  nNeurons: number;
  regions: string[];
  probes: string[];
  spikes: number;
}

function sessionRef(cacheDir: string, sessionPath: string, eid: string): SessionRef {
  return { kind: 'session-ref', sessionId: eid, eid, path: join(cacheDir, sessionPath), cacheDir };
}

export const SIM_MANIFEST = 'mtm_sim.json';
const SIM_VERSION = 1;
const LABS = ['angelakilab', 'churchlandlab', 'cortexlab', 'danlab', 'hoferlab', 'mainenlab', 'mrsicflogellab', 'steinmetzlab', 'wittenlab', 'zadorlab'];
export const SIM_TASK_PROTOCOL = '_iblrig_tasks_ephysChoiceWorld6.4.2';
export const SIM_PROJECT = 'ibl_neuropixel_brainwide_01';

/** A random (version 4) UUID drawn from a seeded generator, so eids are reproducible. */
export function seededUuid(rng: Rng): string {
  const b = Array.from({ length: 16 }, () => rng.int(256));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function dateAfter(base: string, days: number): string {
  const d = new Date(`${base}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** Writes one simulated session's ALF files; returns their paths relative to the session folder. */
export async function writeSimSession(sim: SimSession, sessionDir: string, seedInfo: Record<string, unknown>): Promise<string[]> {
  const files: string[] = [];
  const put = async (rel: string, write: (p: string) => Promise<void>) => {
    await write(join(sessionDir, rel));
    files.push(rel);
  };
  const trials: Parameters<typeof writeParquet>[1] = {};
  for (const k of TRIAL_ATTRIBUTES) trials[k] = { type: 'DOUBLE', data: sim.trials[k] };
  await put('alf/_ibl_trials.table.pqt', (p) => writeParquet(p, trials));
  await put('alf/_ibl_wheel.timestamps.npy', (p) => writeNpy(p, sim.wheel.times, [sim.wheel.times.length]));
  await put('alf/_ibl_wheel.position.npy', (p) => writeNpy(p, sim.wheel.position, [sim.wheel.position.length]));
  await put('alf/_ibl_leftCamera.times.npy', (p) => writeNpy(p, sim.camera.times, [sim.camera.times.length]));
  await put('alf/leftCamera.ROIMotionEnergy.npy', (p) => writeNpy(p, sim.camera.motionEnergy, [sim.camera.motionEnergy.length]));
  for (const pr of sim.probes) {
    const dir = `alf/${pr.probe}/pykilosort`;
    const n = pr.clusterChannels.length;
    await put(`${dir}/spikes.times.npy`, (p) => writeNpy(p, pr.times, [pr.times.length]));
    await put(`${dir}/spikes.clusters.npy`, (p) => writeNpy(p, Float64Array.from(pr.clusters), [pr.clusters.length], { dtype: '<i8' }));
    await put(`${dir}/clusters.channels.npy`, (p) => writeNpy(p, Float64Array.from(pr.clusterChannels), [n], { dtype: '<i8' }));
    await put(`${dir}/clusters.depths.npy`, (p) => writeNpy(p, pr.clusterDepthsUm, [n]));
    await put(`${dir}/clusters.metrics.pqt`, (p) =>
      writeParquet(p, {
        cluster_id: { type: 'INT64', data: Array.from({ length: n }, (_, i) => i) },
        label: { type: 'DOUBLE', data: pr.clusterLabel },
        firing_rate: { type: 'DOUBLE', data: pr.clusterRateHz },
      }),
    );
    await put(`${dir}/channels.brainLocationIds_ccf_2017.npy`, (p) =>
      writeNpy(p, Float64Array.from(pr.channelAtlasIds), [pr.channelAtlasIds.length], { dtype: '<i8' }),
    );
  }
  const N = sim.neurons.length;
  await put('alf/_mtm_sim.trueRates.npy', (p) => writeNpy(p, sim.trueRates, [sim.trials.stimOn_times.length, sim.nSteps, N]));
  const meta = {
    description: 'Ground truth of a session written by the mtm-flow simulator (core/sim/model.ts)',
    trueRates: '_mtm_sim.trueRates.npy: float32 [trial, step, neuron], Hz; step j of trial i covers stimOn_times[i] + gridStartS + [j, j+1) * stepMs / 1000 s; neurons in the order below',
    stepMs: sim.stepMs,
    gridStartS: sim.gridStartS,
    nSteps: sim.nSteps,
    durationS: sim.durationS,
    neurons: sim.neurons.map((n) => ({ probe: n.probe, clusterId: n.clusterId, region: n.region >= 0 ? sim.regions[n.region].acronym : 'void', targetRateHz: Number(n.targetRateHz.toFixed(4)) })),
    regions: sim.regions,
    coupling: sim.coupling,
    ...seedInfo,
  };
  await put('alf/_mtm_sim.meta.json', (p) => writeFileAtomic(p, JSON.stringify(meta, null, 1) + '\n'));
  return files;
}

/** A simulator setting out of range; `field` names it (bad input, not a failure of the run). */
export class SimParamError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`simulator: ${message}`);
    this.name = 'SimParamError';
  }
}

/** The sizes with defaults filled; a SimParamError naming the field when one is out of range. */
export function resolvedSizes(o: Partial<SimSizes>): SimSizes {
  const s: SimSizes = { ...DEFAULT_SIZES };
  for (const k of Object.keys(DEFAULT_SIZES) as (keyof SimSizes)[]) {
    if (o[k] !== undefined) (s as unknown as Record<string, unknown>)[k] = o[k];
  }
  const range = (name: keyof SimSizes, min: number) => {
    const [a, b] = s[name] as readonly [number, number];
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < min || b < a) throw new SimParamError(name, `'${name}' must be integers [min, max] with ${min} <= min <= max (got ${a}, ${b})`);
  };
  range('trials', 1);
  range('neurons', 1);
  range('regions', 1);
  if (s.neurons[0] < 3 * s.regions[1]) throw new SimParamError('neurons', `'neurons' minimum ${s.neurons[0]} is too small for ${s.regions[1]} regions (3 neurons each at least)`);
  if (!(s.simDtMs > 0 && s.stepMs > 0)) throw new SimParamError(s.simDtMs > 0 ? 'stepMs' : 'simDtMs', 'simDtMs and stepMs must be positive');
  const [r0, r1] = s.refractoryMs;
  if (!(r0 >= 0 && r1 >= r0)) throw new SimParamError('refractoryMs', `'refractoryMs' must be [min, max] with 0 <= min <= max (got ${r0}, ${r1})`);
  if (!(s.slowGain >= 0 && s.rateLogSd >= 0)) throw new SimParamError(s.slowGain >= 0 ? 'rateLogSd' : 'slowGain', "'slowGain' and 'rateLogSd' must be >= 0");
  return s;
}

/**
 * The rows of the cache index at `out` that an earlier simulation did not write (sessions and
 * their datasets), or undefined when there are none: then the simulator owns the whole index and
 * writes it as always (same seed, same bytes). An index that cannot be read is refused rather
 * than replaced, since it may hold someone's real sessions.
 */
async function foreignIndex(out: string, manifestPath: string): Promise<CacheTables | undefined> {
  if (!existsSync(join(out, 'sessions.pqt'))) return undefined;
  let tables: CacheTables | undefined;
  try {
    tables = await loadCacheTables(out);
  } catch (e) {
    throw new Error(`simulator: ${join(out, 'sessions.pqt')} cannot be read (${(e as Error).message}); refusing to replace a cache index the simulator did not write (simulate into another folder)`);
  }
  if (!tables) return undefined;
  const ours = new Set<string>();
  try {
    const prev = JSON.parse(await readFile(manifestPath, 'utf8'));
    for (const i of prev.sessions ?? []) if (typeof i?.eid === 'string') ours.add(i.eid);
  } catch {
    // No manifest: every session in the index is someone else's.
  }
  const sessions = tables.sessions.filter((s) => !s.eid || !ours.has(s.eid));
  if (!sessions.length) return undefined;
  const keep = new Set(sessions.map((s) => s.eid));
  return { ...tables, sessions, datasets: tables.datasets.filter((d) => keep.has(d.eid)) };
}

async function mergeForeign(
  out: string,
  foreign: CacheTables,
  sessionRows: Record<string, (string | number)[]>,
  datasetRows: Record<string, (string | number | boolean)[]>,
): Promise<void> {
  const simEids = new Set(sessionRows.id as string[]);
  const sessions = foreign.sessions.filter((s) => !s.eid || !simEids.has(s.eid));
  sessionRows.id.forEach((id, i) => {
    const [lab, subject, date, number] = [sessionRows.lab[i], sessionRows.subject[i], sessionRows.date[i], sessionRows.number[i]] as [string, string, string, number];
    sessions.push({ eid: id as string, lab, subject, date, number, projects: [String(sessionRows.projects[i])], taskProtocol: String(sessionRows.task_protocol[i]), relativePath: `${lab}/Subjects/${subject}/${date}/${String(number).padStart(3, '0')}` });
  });
  const datasets = foreign.datasets.filter((d) => !simEids.has(d.eid));
  datasetRows.eid.forEach((eid, i) => {
    datasets.push({ eid: eid as string, id: datasetRows.id[i] as string, relativePath: datasetRows.rel_path[i] as string, size: datasetRows.file_size[i] as number, hash: datasetRows.hash[i] as string, exists: true, defaultRevision: true, qc: 'NOT_SET' });
  });
  await writeCacheTables(out, sessions, datasets, 'mtm-flow simulator');
}

type SessionRows = Record<string, (string | number)[]>;
type DatasetRows = Record<string, (string | number | boolean)[]>;

/** What every simulated session of one call shares. */
interface CacheRun {
  o: SimulateCacheOptions;
  sizes: SimSizes;
  world: SimWorld | undefined;
  worldInfo: Record<string, unknown>;
  atlasIdOf: (acronym: string) => number;
  /** Draws eids, labs, dates and dataset ids, in session order. */
  meta: Rng;
  sessionRows: SessionRows;
  datasetRows: DatasetRows;
}

/**
 * Simulates `sessions` sessions into a ONE cache at `out`. The same options and seed always give
 * the same bytes. With `reuse`, a cache already written with identical options is kept. Sessions
 * in the index that the simulator did not write (real ones) keep their rows: the simulated ones
 * are merged in, and a session folder the simulator did not write is never overwritten.
 */
export async function simulateCache(o: SimulateCacheOptions, onSession?: (info: SimulatedSessionInfo) => void): Promise<SimulatedSessionInfo[]> {
  const sizes = resolvedSizes(o);
  const manifestPath = join(o.out, SIM_MANIFEST);
  if (o.sharedDynamics && !Number.isInteger(o.worldSeed ?? 0)) throw new Error(`simulator: 'worldSeed' must be an integer (got ${o.worldSeed})`);
  const world: SimWorld | undefined = o.sharedDynamics ? { worldSeed: o.worldSeed ?? 0 } : undefined;
  // The world enters the fingerprint (and each session's meta) only when on, so caches written
  // without the option keep their bytes and stay reusable.
  const worldInfo = world ? { sharedDynamics: true, worldSeed: world.worldSeed } : {};
  const fingerprint = { version: SIM_VERSION, sessions: o.sessions, seed: o.seed, sizes, ...worldInfo };
  if (o.reuse && existsSync(manifestPath)) {
    const kept = await reusableCache(o.out, manifestPath, fingerprint, onSession);
    if (kept) return kept;
  }
  const foreign = await foreignIndex(o.out, manifestPath);
  const regions = await loadAllenRegions();
  const atlasIdOf = (acronym: string) => {
    const id = regions.idOf(acronym);
    if (id === undefined) throw new Error(`simulator: region '${acronym}' is not in the atlas`);
    return id;
  };
  const run: CacheRun = {
    o, sizes, world, worldInfo, atlasIdOf,
    meta: createRng(hashString('sessions', o.seed >>> 0)),
    sessionRows: { id: [], lab: [], subject: [], date: [], number: [], task_protocol: [], projects: [] },
    datasetRows: { eid: [], id: [], rel_path: [], session_path: [], file_size: [], hash: [], exists: [], qc: [] },
  };
  const infos: SimulatedSessionInfo[] = [];
  for (let s = 0; s < o.sessions; s++) {
    const info = await simulateCachedSession(run, s);
    infos.push(info);
    onSession?.(info);
  }
  await writeIndex(o.out, foreign, run.sessionRows, run.datasetRows);
  // Paths stay relative so the cache can move and two caches of one seed are identical.
  const portable = infos.map(({ ref: _ref, ...rest }) => rest);
  await writeFileAtomic(manifestPath, JSON.stringify({ fingerprint, sessions: portable }, null, 1) + '\n');
  return infos;
}

/** The sessions of an earlier call with the same fingerprint whose folders are all still there (each reported), else undefined. */
async function reusableCache(
  out: string,
  manifestPath: string,
  fingerprint: Record<string, unknown>,
  onSession: ((info: SimulatedSessionInfo) => void) | undefined,
): Promise<SimulatedSessionInfo[] | undefined> {
  try {
    const prev = JSON.parse(await readFile(manifestPath, 'utf8'));
    if (JSON.stringify(prev.fingerprint) === JSON.stringify(fingerprint) && Array.isArray(prev.sessions)) {
      const infos = (prev.sessions as Omit<SimulatedSessionInfo, 'ref'>[]).map((i) => ({ ...i, ref: sessionRef(out, i.sessionPath, i.eid) }));
      if (infos.every((s) => existsSync(join(s.ref.path, 'alf', '_mtm_sim.meta.json')))) {
        for (const i of infos) onSession?.(i);
        return infos;
      }
    }
  } catch {
    // An unreadable manifest just means simulating again.
  }
  return undefined;
}

/** Simulates and writes session `s`, adding its index rows; the draws from `run.meta` keep session order. */
async function simulateCachedSession(run: CacheRun, s: number): Promise<SimulatedSessionInfo> {
  const { o, meta, sessionRows } = run;
  const eid = seededUuid(meta);
  const lab = LABS[meta.int(LABS.length)];
  const subject = `SIM${String(s + 1).padStart(3, '0')}`;
  const date = dateAfter('2024-01-08', s + meta.int(3));
  const number = 1;
  const sessionPath = `${lab}/Subjects/${subject}/${date}/${String(number).padStart(3, '0')}`;
  const dir = join(o.out, sessionPath);
  if (existsSync(dir) && !existsSync(join(dir, 'alf', '_mtm_sim.meta.json'))) {
    throw new Error(`simulator: ${dir} exists and was not written by the simulator (no alf/_mtm_sim.meta.json); refusing to overwrite session ${sessionPath} in ${o.out} (simulate into another folder)`);
  }
  const sessionSeed = hashString(`session ${s}`, o.seed >>> 0);
  const sim = simulateSession(sessionSeed, run.sizes, run.atlasIdOf, run.world);
  const files = await writeSimSession(sim, dir, { seed: o.seed, sessionIndex: s, sessionSeed, eid, sizes: run.sizes, ...run.worldInfo });
  await addDatasetRows(run.datasetRows, meta, eid, dir, sessionPath, files);
  sessionRows.id.push(eid);
  sessionRows.lab.push(lab);
  sessionRows.subject.push(subject);
  sessionRows.date.push(date);
  sessionRows.number.push(number);
  sessionRows.task_protocol.push(SIM_TASK_PROTOCOL);
  sessionRows.projects.push(SIM_PROJECT);
  return {
    ref: sessionRef(o.out, sessionPath, eid),
    sessionPath,
    eid,
    lab,
    subject,
    date,
    number,
    nTrials: sim.trials.stimOn_times.length,
    nNeurons: sim.neurons.length,
    regions: sim.regions.map((r) => r.acronym),
    probes: sim.probes.map((p) => p.probe),
    spikes: sim.probes.reduce((n, p) => n + p.times.length, 0),
  };
}

/** One datasets row per written file (size and md5 read back), each with a dataset id drawn from `meta`. */
async function addDatasetRows(datasetRows: DatasetRows, meta: Rng, eid: string, dir: string, sessionPath: string, files: string[]): Promise<void> {
  for (const rel of files) {
    const bytes = await readFile(join(dir, rel));
    datasetRows.eid.push(eid);
    datasetRows.id.push(seededUuid(meta));
    datasetRows.rel_path.push(rel);
    datasetRows.session_path.push(sessionPath);
    datasetRows.file_size.push((await stat(join(dir, rel))).size);
    datasetRows.hash.push(createHash('md5').update(bytes).digest('hex'));
    datasetRows.exists.push(true);
    datasetRows.qc.push('NOT_SET');
  }
}

/** Writes sessions.pqt and datasets.pqt, or merges into a foreign index so its sessions keep their rows. */
async function writeIndex(out: string, foreign: CacheTables | undefined, sessionRows: SessionRows, datasetRows: DatasetRows): Promise<void> {
  if (foreign) {
    // Sessions someone else put in this cache (real ones, downloaded through ONE) keep their rows.
    await mergeForeign(out, foreign, sessionRows, datasetRows);
    return;
  }
  await writeParquet(join(out, 'sessions.pqt'), {
    id: { type: 'STRING', data: sessionRows.id },
    lab: { type: 'STRING', data: sessionRows.lab },
    subject: { type: 'STRING', data: sessionRows.subject },
    date: { type: 'STRING', data: sessionRows.date },
    number: { type: 'INT64', data: sessionRows.number },
    task_protocol: { type: 'STRING', data: sessionRows.task_protocol },
    projects: { type: 'STRING', data: sessionRows.projects },
  });
  await writeParquet(join(out, 'datasets.pqt'), {
    eid: { type: 'STRING', data: datasetRows.eid },
    id: { type: 'STRING', data: datasetRows.id },
    rel_path: { type: 'STRING', data: datasetRows.rel_path },
    session_path: { type: 'STRING', data: datasetRows.session_path },
    file_size: { type: 'INT64', data: datasetRows.file_size },
    hash: { type: 'STRING', data: datasetRows.hash },
    exists: { type: 'BOOLEAN', data: datasetRows.exists },
    qc: { type: 'STRING', data: datasetRows.qc },
  });
}
