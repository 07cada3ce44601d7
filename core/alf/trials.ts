// IBL trials object from an ALF folder (docs/method.md §2.2): the Parquet table
// `_ibl_trials.table.pqt` and/or one `_ibl_trials.<attribute>.npy` per attribute.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readNpy, type NpyArray } from '../io/npy.ts';
import { readParquet } from '../io/parquet.ts';

export type Trials = Record<string, Float64Array>;

export interface LoadTrialsOptions {
  /** Told about anything skipped or resolved on the way (string columns, duplicates). */
  log?: (msg: string) => void;
}

// `_ibl_trials.stimOn_times.npy`, `trials.choice.npy`, `_ibl_trials.intervals.<extra>.npy`:
// optional namespace, object, attribute, optional ALF extra parts, extension.
const TRIALS_FILE = /^(?:_[A-Za-z0-9]+_)?trials\.([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_-]+)*)\.(npy|pqt)$/;

/** Which of a folder's files hold the trials object: the table (if any) and the per-attribute .npy files. */
export function trialsFiles(names: string[]): { table?: string; npy: Array<{ attribute: string; file: string }> } {
  let table: string | undefined;
  const npy: Array<{ attribute: string; file: string }> = [];
  for (const name of [...names].sort()) {
    const m = TRIALS_FILE.exec(name);
    if (!m) continue;
    const [, attribute, , ext] = m;
    if (ext === 'pqt') {
      if (attribute === 'table' && table === undefined) table = name;
    } else {
      npy.push({ attribute, file: name });
    }
  }
  return { table, npy };
}

/** Numbers of an npy array as float64: integers and booleans convert exactly, strings are refused. */
export function npyToFloat64(a: NpyArray, file: string): Float64Array {
  const d = a.data;
  if (d instanceof Float64Array) return d;
  if (Array.isArray(d)) {
    if (d.length === 0 || typeof d[0] === 'boolean') return Float64Array.from(d as boolean[], (b) => (b ? 1 : 0));
    throw new Error(`${file}: holds strings (${a.dtype}), expected numbers`);
  }
  return Float64Array.from(d);
}

/** Split an (n, k) array into k columns named <attr>_0..<attr>_{k-1}; (n,) and (n, 1) stay one column. */
function npyColumns(attribute: string, a: NpyArray, file: string): Trials {
  const values = npyToFloat64(a, file);
  if (a.shape.length <= 1 || (a.shape.length === 2 && a.shape[1] === 1)) return { [attribute]: values };
  if (a.shape.length !== 2) throw new Error(`${file}: trials attribute has shape (${a.shape.join(', ')}); expected (nTrials,) or (nTrials, k)`);
  const [n, k] = a.shape;
  const out: Trials = {};
  for (let j = 0; j < k; j++) {
    const col = new Float64Array(n);
    for (let i = 0; i < n; i++) col[i] = values[i * k + j];
    out[`${attribute}_${j}`] = col;
  }
  return out;
}

/**
 * Load the trials object of an ALF folder (usually `<session>/alf`). Columns come back as float64
 * (null -> NaN, booleans -> 0/1); `intervals` (n, 2) becomes intervals_0 / intervals_1. When both
 * the table and .npy files exist, the table's columns win and the .npy files add the others.
 */
export async function loadTrials(alfDir: string, opts: LoadTrialsOptions = {}): Promise<Trials> {
  const log = opts.log ?? (() => {});
  let names: string[];
  try {
    names = await readdir(alfDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${alfDir}: folder not found (expected an ALF folder holding the trials object)`);
    throw new Error(`${alfDir}: cannot list folder (${(e as Error).message})`);
  }
  const { table, npy } = trialsFiles(names);
  if (!table && npy.length === 0) {
    throw new Error(`${alfDir}: no trials object (expected _ibl_trials.table.pqt or _ibl_trials.<attribute>.npy files)`);
  }
  const trials: Trials = {};
  const source: Record<string, string> = {};
  if (table) {
    const file = join(alfDir, table);
    const t = await readParquet(file);
    for (const col of t.columnNames) {
      // pandas writes a non-default index as __index_level_N__ columns: not trial attributes.
      if (/^__index_level_\d+__$/.test(col)) continue;
      const values = t.columns[col];
      const firstString = values.find((v) => typeof v === 'string');
      if (firstString !== undefined) {
        log(`${file}: column "${col}" holds strings; skipped (trials columns must be numeric)`);
        continue;
      }
      const out = new Float64Array(values.length);
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        out[i] = v === null ? NaN : typeof v === 'boolean' ? (v ? 1 : 0) : (v as number);
      }
      trials[col] = out;
      source[col] = file;
    }
  }
  for (const { attribute, file: name } of npy) {
    const file = join(alfDir, name);
    const cols = npyColumns(attribute, await readNpy(file), file);
    for (const [col, values] of Object.entries(cols)) {
      if (col in trials) {
        log(`${file}: "${col}" is also in ${source[col]}; keeping the latter`);
        continue;
      }
      trials[col] = values;
      source[col] = file;
    }
  }
  const entries = Object.entries(trials);
  if (entries.length === 0) throw new Error(`${alfDir}: the trials object has no numeric columns`);
  const [firstCol, firstValues] = entries[0];
  for (const [col, values] of entries) {
    if (values.length !== firstValues.length) {
      throw new Error(
        `${source[col]}: trials attribute "${col}" has ${values.length} trials but "${firstCol}" (${source[firstCol]}) has ${firstValues.length}`,
      );
    }
  }
  return trials;
}
