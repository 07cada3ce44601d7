// Parquet tables in and out (hyparquet to read, hyparquet-writer to write) as plain JS columns,
// so the rest of the code never meets bigint, Date or a library's own value types.
import { readFile } from 'node:fs/promises';
import { parquetMetadata, parquetRead, parquetSchema, type FileMetaData, type ParquetParsers } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { writeFileAtomic } from './atomic.ts';

export type ColumnValue = number | string | boolean | null;
export type ColumnValues = ColumnValue[];

export interface ParquetTable {
  numRows: number;
  columnNames: string[];
  columns: Record<string, ColumnValues>;
}

export interface ReadParquetOptions {
  /** Read only these top-level columns (in this order); an unknown name is an error. */
  columns?: string[];
  /**
   * int64 columns to return as exact decimal strings instead of numbers. Needed where the whole
   * int64 range is used, e.g. ONE's legacy tables that split a UUID into id_0/id_1
   * (see uuidFromInt64Pair).
   */
  int64AsString?: string[];
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** ISO 8601 in UTC from a count of `unitsPerMs`-sized units since the epoch, keeping sub-millisecond digits. */
function isoFromEpoch(value: bigint, unitsPerMs: bigint, fractionDigits: number): string {
  let ms = value / unitsPerMs;
  let rem = value % unitsPerMs;
  if (rem < 0n) {
    rem += unitsPerMs;
    ms -= 1n;
  }
  const iso = new Date(Number(ms)).toISOString(); // ...T12:34:56.789Z
  if (fractionDigits === 0) return iso;
  return `${iso.slice(0, -1)}${String(rem).padStart(fractionDigits, '0')}Z`;
}

// Dates as 'YYYY-MM-DD' and timestamps as ISO strings, computed in UTC so no time zone shifts them.
const PARSERS: Partial<ParquetParsers> = {
  dateFromDays(days: number) {
    const d = new Date(days * 86400000);
    return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}`;
  },
  timestampFromMilliseconds: (v: bigint) => isoFromEpoch(v, 1n, 0),
  timestampFromMicroseconds: (v: bigint) => isoFromEpoch(v, 1000n, 3),
  timestampFromNanoseconds: (v: bigint) => isoFromEpoch(v, 1000000n, 6),
};

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function jsonSafe(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x instanceof Uint8Array ? toHex(x) : x));
}

function toArrayBuffer(bytes: Uint8Array | ArrayBuffer): ArrayBuffer {
  if (bytes instanceof ArrayBuffer) return bytes;
  // A Node Buffer may be a window on a larger pooled buffer: copy exactly its bytes.
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out.buffer;
}

/** Decode a whole Parquet file held in memory. `name` (usually the path) prefixes every error message. */
export async function parseParquet(bytes: Uint8Array | ArrayBuffer, name: string, opts: ReadParquetOptions = {}): Promise<ParquetTable> {
  const file = toArrayBuffer(bytes);
  let metadata: FileMetaData;
  try {
    metadata = parquetMetadata(file);
  } catch (e) {
    throw new Error(`${name}: not a readable Parquet file (${(e as Error).message})`);
  }
  const allNames = parquetSchema(metadata).children.map((c) => c.element.name);
  const selected = opts.columns ?? allNames;
  const missing = selected.filter((c) => !allNames.includes(c));
  if (missing.length) {
    throw new Error(`${name}: no column ${missing.map((m) => JSON.stringify(m)).join(', ')} (columns: ${allNames.join(', ')})`);
  }
  const asString = new Set(opts.int64AsString ?? []);
  const numRows = Number(metadata.num_rows);
  const columns: Record<string, ColumnValues> = {};
  for (const c of selected) columns[c] = new Array<ColumnValue>(numRows).fill(null);
  const filled = new Map<string, number>(selected.map((c) => [c, 0]));

  let convertError: Error | undefined;
  const convert = (col: string, v: unknown, row: number): ColumnValue => {
    if (v === null || v === undefined) return null;
    switch (typeof v) {
      case 'number':
      case 'string':
      case 'boolean':
        return v;
      case 'bigint':
        if (asString.has(col)) return v.toString();
        if (v > MAX_SAFE || v < MIN_SAFE) {
          throw new Error(
            `${name}: column "${col}" row ${row}: int64 value ${v} is outside the safe integer range (±${Number.MAX_SAFE_INTEGER}); ` +
              `read it with { int64AsString: [${JSON.stringify(col)}] } to get exact strings`,
          );
        }
        return Number(v);
    }
    if (v instanceof Date) return v.toISOString();
    if (v instanceof Uint8Array) return toHex(v);
    return jsonSafe(v);
  };

  try {
    await parquetRead({
      file,
      metadata,
      columns: selected,
      compressors,
      parsers: PARSERS,
      onChunk({ columnName, columnData, rowStart, rowEnd }) {
        // hyparquet does not await this callback, so a throw here would escape as an uncaught
        // exception: keep the first error and raise it once the read is over.
        const out = columns[columnName];
        if (!out || convertError) return;
        try {
          for (let r = rowStart; r < rowEnd; r++) out[r] = convert(columnName, columnData[r - rowStart], r);
        } catch (e) {
          convertError = e as Error;
          return;
        }
        filled.set(columnName, (filled.get(columnName) ?? 0) + (rowEnd - rowStart));
      },
    });
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(msg.startsWith(`${name}:`) ? msg : `${name}: cannot decode Parquet data (${msg})`);
  }
  if (convertError) throw convertError;
  for (const [c, n] of filled) {
    if (n !== numRows) throw new Error(`${name}: column "${c}" has ${n} values but the file says ${numRows} rows`);
  }
  return { numRows, columnNames: selected.slice(), columns };
}

/** Read a Parquet file written by pandas/pyarrow, ONE, or writeParquet. Errors name the file (and column). */
export async function readParquet(path: string, opts: ReadParquetOptions = {}): Promise<ParquetTable> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${path}: file not found`);
    throw new Error(`${path}: cannot read (${(e as Error).message})`);
  }
  return parseParquet(bytes, path, opts);
}

function columnOrThrow(table: ParquetTable, name: string, file: string): ColumnValues {
  const col = table.columns[name];
  if (!col) throw new Error(`${file}: no column "${name}" (columns: ${table.columnNames.join(', ')})`);
  return col;
}

/** A column as float64: null -> NaN, booleans -> 0/1. Strings or a missing column are errors naming the file and column. */
export function numericColumn(table: ParquetTable, name: string, file: string): Float64Array {
  const col = columnOrThrow(table, name, file);
  const out = new Float64Array(col.length);
  for (let i = 0; i < col.length; i++) {
    const v = col[i];
    if (v === null) out[i] = NaN;
    else if (typeof v === 'number') out[i] = v;
    else if (typeof v === 'boolean') out[i] = v ? 1 : 0;
    else throw new Error(`${file}: column "${name}" is not numeric (row ${i} holds the string ${JSON.stringify(v)})`);
  }
  return out;
}

/** A column of strings (null stays null). Numbers or booleans are errors naming the file and column. */
export function stringColumn(table: ParquetTable, name: string, file: string): (string | null)[] {
  const col = columnOrThrow(table, name, file);
  return col.map((v, i) => {
    if (v === null || typeof v === 'string') return v;
    throw new Error(`${file}: column "${name}" is not a string column (row ${i} holds ${JSON.stringify(v)})`);
  });
}

/**
 * The UUID stored by ONE's legacy cache tables as two int64 columns (<x>_0, <x>_1): the 16
 * little-endian bytes of the first followed by the second are the UUID's bytes in order.
 */
export function uuidFromInt64Pair(first: bigint | string | number, second: bigint | string | number): string {
  const bytes = new Uint8Array(16);
  const dv = new DataView(bytes.buffer);
  dv.setBigInt64(0, BigInt.asIntN(64, BigInt(first)), true);
  dv.setBigInt64(8, BigInt.asIntN(64, BigInt(second)), true);
  const h = toHex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The inverse of uuidFromInt64Pair, as exact decimal strings (for writing legacy-layout tables). */
export function int64PairFromUuid(uuid: string): [bigint, bigint] {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a UUID: ${JSON.stringify(uuid)}`);
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  const dv = new DataView(bytes.buffer);
  return [dv.getBigInt64(0, true), dv.getBigInt64(8, true)];
}

export type ParquetColumnType = 'DOUBLE' | 'FLOAT' | 'INT32' | 'INT64' | 'STRING' | 'BOOLEAN';

export interface ParquetColumn {
  type: ParquetColumnType;
  /** Values of one column; null is a missing value. INT64 also takes bigint. */
  data: ArrayLike<number | string | boolean | bigint | null>;
}

export interface WriteParquetOptions {
  /** Rows per row group (pyarrow's default is 1 Mi rows; smaller groups let readers skip). */
  rowGroupSize?: number;
  /** Extra key/value metadata stored in the footer (e.g. provenance). */
  metadata?: Record<string, string>;
}

function checkColumn(col: string, spec: ParquetColumn): unknown[] | ArrayLike<unknown> {
  const { type, data } = spec;
  const n = data.length;
  const bad = (i: number, v: unknown, want: string): never => {
    throw new Error(`column "${col}" (${type}) row ${i}: ${typeof v === 'bigint' ? `${v}n` : JSON.stringify(v) ?? String(v)} is not ${want}`);
  };
  // Typed arrays hold no nulls and already have the right kind of value: pass them through.
  if (type === 'DOUBLE' && data instanceof Float64Array) return data;
  if (type === 'FLOAT' && data instanceof Float32Array) return data;
  if (type === 'INT32' && data instanceof Int32Array) return data;
  switch (type) {
    case 'DOUBLE':
    case 'FLOAT': {
      const out = new Array<number | null>(n);
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (v !== null && typeof v !== 'number') bad(i, v, 'a number or null');
        out[i] = v as number | null;
      }
      return out;
    }
    case 'INT32': {
      const out = new Array<number | null>(n);
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (v !== null && !(typeof v === 'number' && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647)) bad(i, v, 'an int32 or null');
        out[i] = v as number | null;
      }
      return out;
    }
    case 'INT64': {
      const out = new Array<bigint | null>(n);
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (v === null) out[i] = null;
        else if (typeof v === 'bigint') {
          if (v !== BigInt.asIntN(64, v)) bad(i, v, 'within the int64 range');
          out[i] = v;
        } else if (typeof v === 'number' && Number.isSafeInteger(v)) out[i] = BigInt(v);
        else bad(i, v, 'an exact integer (a safe-integer number or a bigint) or null');
      }
      return out;
    }
    case 'STRING': {
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (v !== null && typeof v !== 'string') bad(i, v, 'a string or null');
      }
      return data;
    }
    case 'BOOLEAN': {
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (v !== null && typeof v !== 'boolean') bad(i, v, 'a boolean or null');
      }
      return data;
    }
    default:
      throw new Error(`column "${col}": unknown type ${JSON.stringify(type)} (use DOUBLE, FLOAT, INT32, INT64, STRING or BOOLEAN)`);
  }
}

/** Encode columns as a snappy-compressed Parquet file that pandas/pyarrow read as a plain DataFrame. */
export function encodeParquet(columns: Record<string, ParquetColumn>, opts: WriteParquetOptions = {}): Uint8Array {
  const names = Object.keys(columns);
  if (names.length === 0) throw new Error('a Parquet table needs at least one column');
  const numRows = columns[names[0]].data.length;
  for (const c of names) {
    if (columns[c].data.length !== numRows) {
      throw new Error(`column "${c}" has ${columns[c].data.length} rows but column "${names[0]}" has ${numRows}`);
    }
  }
  const columnData = names.map((name) => ({
    name,
    data: checkColumn(name, columns[name]) as never,
    type: columns[name].type,
    nullable: true,
  }));
  const kvMetadata = Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value }));
  const buf = parquetWriteBuffer({
    columnData,
    codec: 'SNAPPY',
    rowGroupSize: opts.rowGroupSize ?? 100000,
    kvMetadata: kvMetadata.length ? kvMetadata : undefined,
    createdBy: 'mtm-flow (hyparquet-writer)',
  });
  return new Uint8Array(buf);
}

/** Write a Parquet file atomically (temp file + rename). Errors name the file and the column. */
export async function writeParquet(path: string, columns: Record<string, ParquetColumn>, opts: WriteParquetOptions = {}): Promise<void> {
  let bytes: Uint8Array;
  try {
    bytes = encodeParquet(columns, opts);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  await writeFileAtomic(path, bytes);
}
