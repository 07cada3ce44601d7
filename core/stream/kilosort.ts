// Reads a Kilosort / phy output folder (spike_times.npy in samples, spike_clusters.npy, cluster_info.tsv,
// params.py) into spike times in seconds and a cluster table, for streaming a new recording (docs/method.md §1.3).
import { InputFileError } from '../io/input-error.ts';
import { readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { ProbeSpikes } from '../payloads.ts';
import { readNpy, type NpyArray } from '../io/npy.ts';

/** A value of params.py: the Python literals phy writes, or the raw text of anything else. */
export type PyValue = number | string | boolean | null | PyValue[];

export interface PhyClusterTable {
  /** The file the table came from (cluster_info.tsv, or cluster_group.tsv / cluster_KSLabel.tsv merged). */
  source: string[];
  ids: Int32Array;
  /** Curation label per cluster: 'good', 'mua', 'noise', 'unsorted' or '' (unlabelled); phy's group, else Kilosort's KSLabel. */
  group: string[];
  /** Kilosort's own label (KSLabel) when the folder has one. */
  ksLabel?: string[];
  depthUm?: Float64Array;
  channel?: Int32Array;
  firingRateHz?: Float64Array;
  nSpikes?: Int32Array;
  /** Every column of the table as text, by header name (phy adds user-defined columns). */
  columns: Record<string, string[]>;
}

export interface PhyFolder {
  folder: string;
  sampleRateHz: number;
  params: Record<string, PyValue>;
  /** Spike times in seconds (sample / sampleRateHz), sorted ascending. */
  times: Float64Array;
  /** Spike sample indices, in the same order as times. */
  samples: Float64Array;
  clusters: Int32Array;
  clustersSource: 'spike_clusters.npy' | 'spike_templates.npy';
  table: PhyClusterTable;
}

export interface ReadPhyOptions {
  /** Told about repairs and fallbacks (re-sorted spikes, missing table, clusters absent from the table). */
  log?: (msg: string) => void;
}

// ---------------------------------------------------------------------------------------------
// params.py

function splitTopLevel(text: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote = '';
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = '';
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '[' || ch === '(') depth++;
    else if (ch === ']' || ch === ')') depth--;
    else if (ch === sep && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** One Python literal as phy writes it; anything else (an expression, a call) is kept as its text, never evaluated. */
export function parsePyLiteral(text: string): PyValue {
  const t = text.trim();
  if (t === 'True') return true;
  if (t === 'False') return false;
  if (t === 'None') return null;
  if (NUMBER.test(t)) return Number(t);
  if (/^[+-]?\d+(_\d+)+$/.test(t)) return Number(t.replace(/_/g, ''));
  const str = /^([rRbBuU]{0,2})(['"])((?:\\.|(?!\2)[^\\])*)\2$/s.exec(t);
  if (str) {
    // Windows paths are common in dat_path; a raw string r'...' keeps its backslashes as they are.
    if (/r/i.test(str[1])) return str[3];
    const escapes: Record<string, string> = { n: '\n', t: '\t', '\\': '\\', "'": "'", '"': '"' };
    return str[3].replace(/\\(.)/g, (_, c: string) => escapes[c] ?? `\\${c}`);
  }
  if ((t.startsWith('[') && t.endsWith(']')) || (t.startsWith('(') && t.endsWith(')'))) {
    const inner = t.slice(1, -1).trim();
    if (!inner) return [];
    return splitTopLevel(inner, ',').map((s) => s.trim()).filter((s) => s.length > 0).map(parsePyLiteral);
  }
  return t;
}

/** Strip a trailing `# comment` that is not inside a string. */
function stripComment(line: string): string {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = '';
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '#') return line.slice(0, i);
  }
  return line;
}

/**
 * params.py is a Python file of `key = value` lines; it is read as data, never run. Lines that are
 * not assignments are refused with their line number, since a misread sample rate would silently
 * scale every spike time.
 */
export function parseParamsPy(text: string, file = 'params.py'): Record<string, PyValue> {
  const out: Record<string, PyValue> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = stripComment(lines[i]).trim();
    if (!line) continue;
    // A list value may run over several lines.
    while ((line.split('[').length > line.split(']').length || line.split('(').length > line.split(')').length) && i + 1 < lines.length) {
      line += ' ' + stripComment(lines[++i]).trim();
    }
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new InputFileError(`${file}: line ${i + 1}: expected \`name = value\`, found ${JSON.stringify(lines[i].trim().slice(0, 80))}`);
    out[m[1]] = parsePyLiteral(m[2]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// cluster tables

export interface Tsv {
  header: string[];
  rows: string[][];
}

/** A tab-separated table with a header line; short rows are padded with '' (phy leaves empty labels). */
export function parseTsv(text: string, file: string): Tsv {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).filter((l) => l.trim().length > 0);
  if (!lines.length) throw new InputFileError(`${file}: empty file (expected a header line such as "cluster_id\tgroup")`);
  const header = lines[0].split('\t').map((h) => h.trim());
  const rows = lines.slice(1).map((l, r) => {
    const cells = l.split('\t').map((c) => c.trim());
    if (cells.length > header.length) throw new InputFileError(`${file}: line ${r + 2} has ${cells.length} fields but the header has ${header.length}`);
    while (cells.length < header.length) cells.push('');
    return cells;
  });
  return { header, rows };
}

function idColumn(t: Tsv, file: string): number[] {
  // phy 2 writes cluster_id; phy 1 and some exporters write id.
  const k = ['cluster_id', 'id', 'cluster'].map((n) => t.header.indexOf(n)).find((k) => k >= 0);
  if (k === undefined) throw new InputFileError(`${file}: no cluster_id column (columns: ${t.header.join(', ')})`);
  return t.rows.map((row, r) => {
    const v = Number(row[k]);
    if (row[k] === '' || !Number.isInteger(v) || v < 0 || v > 2147483647) {
      throw new InputFileError(`${file}: line ${r + 2}, column "${t.header[k]}": ${JSON.stringify(row[k])} is not a cluster id`);
    }
    return v;
  });
}

function numericCol(t: Tsv, name: string, file: string, ints: boolean): number[] | undefined {
  const k = t.header.indexOf(name);
  if (k < 0) return undefined;
  return t.rows.map((row, r) => {
    if (row[k] === '' || /^nan$/i.test(row[k])) return Number.NaN;
    const v = Number(row[k]);
    if (!Number.isFinite(v) || (ints && !Number.isInteger(v))) {
      throw new InputFileError(`${file}: line ${r + 2}, column "${name}": ${JSON.stringify(row[k])} is not ${ints ? 'an integer' : 'a number'}`);
    }
    return v;
  });
}

function textCol(t: Tsv, name: string): string[] | undefined {
  const k = t.header.indexOf(name);
  return k < 0 ? undefined : t.rows.map((row) => row[k]);
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new InputFileError(`${path}: cannot read (${(e as Error).message})`);
  }
}

/** Builds the cluster table from cluster_info.tsv, or else from cluster_group.tsv and cluster_KSLabel.tsv. */
export async function readClusterTable(folder: string): Promise<PhyClusterTable | undefined> {
  const infoFile = join(folder, 'cluster_info.tsv');
  const info = await readText(infoFile);
  if (info !== undefined) {
    const t = parseTsv(info, infoFile);
    const ids = idColumn(t, infoFile);
    const columns: Record<string, string[]> = {};
    t.header.forEach((h, k) => (columns[h] = t.rows.map((row) => row[k])));
    const ksLabel = textCol(t, 'KSLabel');
    const group = textCol(t, 'group') ?? ksLabel ?? ids.map(() => '');
    const table: PhyClusterTable = { source: [infoFile], ids: Int32Array.from(ids), group, columns };
    if (ksLabel) table.ksLabel = ksLabel;
    const depth = numericCol(t, 'depth', infoFile, false);
    if (depth) table.depthUm = Float64Array.from(depth);
    const ch = numericCol(t, 'ch', infoFile, true);
    if (ch) table.channel = Int32Array.from(ch, (v) => (Number.isNaN(v) ? -1 : v));
    const fr = numericCol(t, 'fr', infoFile, false);
    if (fr) table.firingRateHz = Float64Array.from(fr);
    const n = numericCol(t, 'n_spikes', infoFile, true);
    if (n) table.nSpikes = Int32Array.from(n, (v) => (Number.isNaN(v) ? -1 : v));
    checkUniqueIds(table.ids, infoFile);
    return table;
  }

  // Without cluster_info.tsv (phy never opened, or an older phy): the per-label files.
  const labels = new Map<number, { group?: string; ks?: string }>();
  const source: string[] = [];
  const columns: Record<string, string[]> = {};
  for (const [name, field] of [['cluster_group.tsv', 'group'], ['cluster_KSLabel.tsv', 'ks']] as const) {
    const file = join(folder, name);
    const text = await readText(file);
    if (text === undefined) continue;
    const t = parseTsv(text, file);
    const ids = idColumn(t, file);
    // cluster_group.tsv names its column "group"; Kilosort's file "KSLabel"; be lenient with either.
    const k = t.header.findIndex((h, i) => i > 0 && ['group', 'KSLabel', 'label'].includes(h));
    const col = k >= 0 ? k : t.header.length > 1 ? 1 : -1;
    if (col < 0) throw new InputFileError(`${file}: no label column (expected "cluster_id\t${field === 'group' ? 'group' : 'KSLabel'}")`);
    source.push(file);
    ids.forEach((id, r) => {
      const e = labels.get(id) ?? {};
      e[field] = t.rows[r][col];
      labels.set(id, e);
    });
  }
  if (!source.length) return undefined;
  const ids = [...labels.keys()].sort((a, b) => a - b);
  const group = ids.map((id) => labels.get(id)!.group ?? labels.get(id)!.ks ?? '');
  const table: PhyClusterTable = { source, ids: Int32Array.from(ids), group, columns };
  if (ids.some((id) => labels.get(id)!.ks !== undefined)) table.ksLabel = ids.map((id) => labels.get(id)!.ks ?? '');
  columns.cluster_id = ids.map(String);
  columns.group = group;
  if (table.ksLabel) columns.KSLabel = table.ksLabel;
  return table;
}

function checkUniqueIds(ids: Int32Array, file: string): void {
  const seen = new Set<number>();
  for (const id of ids) {
    if (seen.has(id)) throw new InputFileError(`${file}: cluster id ${id} appears more than once`);
    seen.add(id);
  }
}

// ---------------------------------------------------------------------------------------------
// the folder

function oneDim(a: NpyArray, file: string): void {
  // MATLAB-era Kilosort writes (n, 1) columns; Python Kilosort (n,).
  const ok = a.shape.length === 1 || (a.shape.length === 2 && a.shape[1] === 1);
  if (!ok) throw new InputFileError(`${file}: has shape (${a.shape.join(', ')}); expected a 1-D array or an (n, 1) column`);
}

function integerValues(a: NpyArray, file: string, what: string): Float64Array | Int32Array {
  const d = a.data;
  if (Array.isArray(d) || d instanceof Float32Array || (d instanceof Float64Array && !/[iu]8$/.test(a.dtype))) {
    throw new InputFileError(`${file}: holds ${a.dtype} values; expected integer ${what}`);
  }
  if (d instanceof Float64Array || d instanceof Int32Array) return d;
  return Float64Array.from(d);
}

function toClusterIds(a: NpyArray, file: string): Int32Array {
  const v = integerValues(a, file, 'cluster ids');
  if (v instanceof Int32Array) {
    for (let i = 0; i < v.length; i++) if (v[i] < 0) throw new InputFileError(`${file}: spike ${i} has a negative cluster id ${v[i]}`);
    return v;
  }
  const out = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    if (v[i] < 0 || v[i] > 2147483647) throw new InputFileError(`${file}: spike ${i} has cluster id ${v[i]}, outside 0..2147483647`);
    out[i] = v[i];
  }
  return out;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isFile() ?? false;
}

/** Reads a phy folder; every error names the folder or the file at fault. */
export async function readPhyFolder(folder: string, opts: ReadPhyOptions = {}): Promise<PhyFolder> {
  const log = opts.log ?? (() => {});
  const dir = resolve(folder);
  if (!(await stat(dir).catch(() => null))?.isDirectory()) throw new InputFileError(`${dir}: phy folder not found`);

  const paramsFile = join(dir, 'params.py');
  const paramsText = await readText(paramsFile);
  if (paramsText === undefined) throw new InputFileError(`${dir}: missing params.py (it gives sample_rate, needed to turn spike samples into seconds)`);
  const params = parseParamsPy(paramsText, paramsFile);
  const fs = params.sample_rate;
  if (fs === undefined) throw new InputFileError(`${paramsFile}: no sample_rate (expected a line like \`sample_rate = 30000.0\`)`);
  if (typeof fs !== 'number' || !(fs > 0) || !Number.isFinite(fs)) throw new InputFileError(`${paramsFile}: sample_rate is ${JSON.stringify(fs)}; expected a positive number of Hz`);

  const timesFile = join(dir, 'spike_times.npy');
  if (!(await isFile(timesFile))) throw new InputFileError(`${dir}: missing spike_times.npy (spike sample indices)`);
  const timesArr = await readNpy(timesFile);
  oneDim(timesArr, timesFile);
  const samplesRaw = integerValues(timesArr, timesFile, 'sample indices (Kilosort writes uint64 or int64)');

  let clustersName: PhyFolder['clustersSource'] = 'spike_clusters.npy';
  let clustersFile = join(dir, clustersName);
  if (!(await isFile(clustersFile))) {
    // Before any manual curation phy has not written spike_clusters.npy: clusters are the templates.
    const templates = join(dir, 'spike_templates.npy');
    if (!(await isFile(templates))) throw new InputFileError(`${dir}: missing spike_clusters.npy (and no spike_templates.npy to fall back on)`);
    log(`${dir}: no spike_clusters.npy; using spike_templates.npy as the cluster of each spike`);
    clustersName = 'spike_templates.npy';
    clustersFile = templates;
  }
  const clustersArr = await readNpy(clustersFile);
  oneDim(clustersArr, clustersFile);
  let clusters = toClusterIds(clustersArr, clustersFile);
  if (clusters.length !== samplesRaw.length) {
    throw new InputFileError(`${clustersFile}: has ${clusters.length} spikes but spike_times.npy has ${samplesRaw.length}`);
  }

  let samples = samplesRaw instanceof Float64Array ? samplesRaw : Float64Array.from(samplesRaw);
  let sorted = true;
  for (let i = 0; i < samples.length; i++) {
    if (samples[i] < 0) throw new InputFileError(`${timesFile}: spike ${i} has a negative sample index ${samples[i]}`);
    if (i > 0 && samples[i] < samples[i - 1]) sorted = false;
  }
  if (!sorted) {
    const order = Uint32Array.from({ length: samples.length }, (_, i) => i).sort((a, b) => samples[a] - samples[b] || a - b);
    samples = Float64Array.from(order, (k) => samples[k]);
    clusters = Int32Array.from(order, (k) => clusters[k]);
    log(`${timesFile}: spikes were not in time order; sorted them (with their clusters)`);
  }
  const times = new Float64Array(samples.length);
  for (let i = 0; i < samples.length; i++) times[i] = samples[i] / fs;

  let table = await readClusterTable(dir);
  if (!table) {
    log(`${dir}: no cluster_info.tsv, cluster_group.tsv or cluster_KSLabel.tsv; clusters taken from ${clustersName}, unlabelled`);
    const ids = Int32Array.from(new Set(clusters)).sort();
    table = { source: [], ids, group: Array.from(ids, () => ''), columns: { cluster_id: Array.from(ids, String) } };
  } else {
    const known = new Set(table.ids);
    const missing = [...new Set(clusters)].filter((c) => !known.has(c)).sort((a, b) => a - b);
    if (missing.length) {
      log(`${table.source.map((s) => basename(s)).join(', ')}: ${missing.length} cluster(s) with spikes are not listed (${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''}); added as group '${UNLISTED}', which only units: all keeps`);
      table = appendClusters(table, missing);
    }
  }
  return { folder: dir, sampleRateHz: fs, params, times, samples, clusters, clustersSource: clustersName, table };
}

/** The group of a cluster with spikes that the cluster tables do not list: no quality label vouches for it. */
export const UNLISTED = 'unlisted';

function appendClusters(t: PhyClusterTable, ids: number[]): PhyClusterTable {
  const out: PhyClusterTable = {
    ...t,
    ids: Int32Array.from([...t.ids, ...ids]),
    group: [...t.group, ...ids.map(() => UNLISTED)],
    columns: Object.fromEntries(Object.entries(t.columns).map(([k, v]) => [k, [...v, ...ids.map((id) => (k === 'cluster_id' || k === 'id' ? String(id) : ''))]])),
  };
  if (t.ksLabel) out.ksLabel = [...t.ksLabel, ...ids.map(() => '')];
  if (t.depthUm) out.depthUm = Float64Array.from([...t.depthUm, ...ids.map(() => Number.NaN)]);
  if (t.channel) out.channel = Int32Array.from([...t.channel, ...ids.map(() => -1)]);
  if (t.firingRateHz) out.firingRateHz = Float64Array.from([...t.firingRateHz, ...ids.map(() => Number.NaN)]);
  if (t.nSpikes) out.nSpikes = Int32Array.from([...t.nSpikes, ...ids.map(() => -1)]);
  return out;
}

/** The folder as one probe of the SpikeTrains payload: one row per cluster of the table, good = phy's 'good'. */
export function phyToProbeSpikes(phy: PhyFolder, probe = basename(phy.folder)): ProbeSpikes {
  const t = phy.table;
  const out: ProbeSpikes = {
    probe,
    times: phy.times,
    clusters: phy.clusters,
    clusterIds: t.ids,
    clusterGood: Uint8Array.from(t.group, (g) => (g === 'good' ? 1 : 0)),
  };
  if (t.depthUm) out.clusterDepthsUm = t.depthUm;
  if (t.channel) out.clusterChannels = t.channel;
  return out;
}
