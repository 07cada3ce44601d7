// NumPy .npy reader and writer (format versions 1, 2 and 3), enough for IBL's ALF files.
// Parsed by hand: the format is a magic string, a Python-literal header and raw little-endian data.
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { writeFileAtomic } from './atomic.ts';
import { InputFileError } from './input-error.ts';

export type NpyData =
  | Float64Array
  | Float32Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | string[]
  | boolean[];

export interface NpyArray {
  /** The dtype as written in the file's header, e.g. '<f8', '|b1', '<U3'. */
  dtype: string;
  shape: number[];
  /** Always in C (row-major) order, whatever the file's order. int64/uint64 become exact Float64Array values. */
  data: NpyData;
  /** Whether the file stored the data in Fortran order (data above has already been transposed). */
  fortranOrder: boolean;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

// The typed views below reinterpret file bytes in the host's byte order.
const HOST_LITTLE_ENDIAN = endianness() === 'LE';

function fail(name: string, what: string): never {
  throw new InputFileError(`${name}: ${what}`);
}

interface Header {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

/**
 * The header is a Python dict literal written by numpy's repr, e.g.
 * {'descr': '<f8', 'fortran_order': False, 'shape': (2040, 5), }
 * Only these three keys matter; anything we cannot read exactly is refused rather than guessed.
 */
function parseHeader(text: string, name: string): Header {
  const t = text.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) fail(name, `npy header is not a dict literal: ${JSON.stringify(t.slice(0, 80))}`);
  const descrList = /['"]descr['"]\s*:\s*\[/.exec(t);
  if (descrList) fail(name, 'structured (record) dtypes are not supported; save each field as its own .npy');
  const descr = /['"]descr['"]\s*:\s*(['"])([^'"]*)\1/.exec(t);
  if (!descr) fail(name, `npy header has no readable 'descr': ${JSON.stringify(t.slice(0, 120))}`);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)\b/.exec(t);
  if (!fortran) fail(name, `npy header has no readable 'fortran_order': ${JSON.stringify(t.slice(0, 120))}`);
  const shapeM = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(t);
  if (!shapeM) fail(name, `npy header has no readable 'shape': ${JSON.stringify(t.slice(0, 120))}`);
  const parts = shapeM[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const shape = parts.map((p) => {
    // Python 2 era files may write long integers as 306L.
    const m = /^(\d+)L?$/.exec(p);
    if (!m) fail(name, `npy header shape has a bad dimension ${JSON.stringify(p)}`);
    const n = Number(m[1]);
    if (!Number.isSafeInteger(n)) fail(name, `npy header shape dimension ${p} is too large`);
    return n;
  });
  return { descr: descr[2], fortranOrder: fortran[1] === 'True', shape };
}

interface DtypeInfo {
  kind: 'f' | 'i' | 'u' | 'b' | 'U';
  itemSize: number;
}

function parseDtype(descr: string, name: string): DtypeInfo {
  if (descr.includes('O')) fail(name, `object dtype ${descr} is not supported (it holds pickled Python objects, which cannot be read safely)`);
  const m = /^([<>|=]?)([fiubU])(\d+)$/.exec(descr);
  if (!m) fail(name, `unsupported npy dtype ${JSON.stringify(descr)} (supported: <f8 <f4 <i8 <u8 <i4 <u4 <i2 <u2 |i1 |u1 |b1 <U<n>)`);
  const [, order, kind, sizeText] = m;
  const size = Number(sizeText);
  if (kind === 'U') {
    if (order === '>') fail(name, `big-endian dtype ${descr} is not supported; re-save it little-endian, e.g. np.save(path, a.astype('<U${size}'))`);
    if (size < 1) fail(name, `unsupported npy dtype ${descr}`);
    return { kind: 'U', itemSize: size * 4 };
  }
  const allowed: Record<string, number[]> = { f: [4, 8], i: [1, 2, 4, 8], u: [1, 2, 4, 8], b: [1] };
  if (!allowed[kind].includes(size)) fail(name, `unsupported npy dtype ${JSON.stringify(descr)} (supported: <f8 <f4 <i8 <u8 <i4 <u4 <i2 <u2 |i1 |u1 |b1 <U<n>)`);
  if (size > 1 && order === '>') fail(name, `big-endian dtype ${descr} is not supported; re-save it little-endian, e.g. np.save(path, a.astype('<${kind}${size}'))`);
  if (size > 1 && order === '=' && !HOST_LITTLE_ENDIAN) fail(name, `native-order dtype ${descr} from a big-endian machine is not supported`);
  return { kind: kind as DtypeInfo['kind'], itemSize: size };
}

/** A region of memory holding the raw array data: `buf` from byte `off`. */
interface Raw {
  buf: ArrayBuffer;
  off: number;
}

/**
 * The data bytes [start, end) as a Raw region typed views can use. A copy (aligned, independent of
 * the source, e.g. a pooled Node Buffer) unless `share` is set and the bytes are already aligned.
 */
function rawData(bytes: Uint8Array, start: number, end: number, align: number, share: boolean): Raw {
  if (share && (bytes.byteOffset + start) % align === 0) return { buf: bytes.buffer as ArrayBuffer, off: bytes.byteOffset + start };
  const out = new Uint8Array(end - start);
  out.set(bytes.subarray(start, end));
  return { buf: out.buffer, off: 0 };
}

function decodeInt64({ buf, off }: Raw, count: number, unsigned: boolean, name: string): Float64Array {
  const words = new Uint32Array(buf, off, count * 2);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const lo = words[2 * i];
    const hiBits = words[2 * i + 1];
    const hi = unsigned ? hiBits : hiBits | 0;
    // hi * 2^32 is exact in float64; adding lo only rounds when the result is beyond 2^53 anyway.
    const v = hi * 4294967296 + lo;
    if (!Number.isSafeInteger(v)) {
      const exact = new DataView(buf, off).getBigUint64(i * 8, true);
      const shown = unsigned ? exact : BigInt.asIntN(64, exact);
      fail(name, `${unsigned ? 'uint64' : 'int64'} value ${shown} at flat index ${i} is outside the safe integer range (±${Number.MAX_SAFE_INTEGER}) and cannot be represented exactly`);
    }
    out[i] = v;
  }
  return out;
}

function decodeUnicode({ buf, off }: Raw, count: number, chars: number, name: string): string[] {
  const cps = new Uint32Array(buf, off, count * chars);
  const out = new Array<string>(count);
  for (let i = 0; i < count; i++) {
    let end = chars;
    // numpy pads fixed-width strings with NULs; only the trailing ones are padding.
    while (end > 0 && cps[i * chars + end - 1] === 0) end--;
    let s = '';
    for (let c = 0; c < end; c++) {
      const cp = cps[i * chars + c];
      if (cp > 0x10ffff) fail(name, `string element ${i} holds an invalid code point ${cp}`);
      s += String.fromCodePoint(cp);
    }
    out[i] = s;
  }
  return out;
}

function decodeData(raw: Raw, count: number, dt: DtypeInfo, name: string): NpyData {
  const { buf, off } = raw;
  switch (dt.kind) {
    case 'f':
      return dt.itemSize === 8 ? new Float64Array(buf, off, count) : new Float32Array(buf, off, count);
    case 'i':
      if (dt.itemSize === 8) return decodeInt64(raw, count, false, name);
      if (dt.itemSize === 4) return new Int32Array(buf, off, count);
      if (dt.itemSize === 2) return new Int16Array(buf, off, count);
      return new Int8Array(buf, off, count);
    case 'u':
      if (dt.itemSize === 8) return decodeInt64(raw, count, true, name);
      if (dt.itemSize === 4) return new Uint32Array(buf, off, count);
      if (dt.itemSize === 2) return new Uint16Array(buf, off, count);
      return new Uint8Array(buf, off, count);
    case 'b': {
      const u = new Uint8Array(buf, off, count);
      const out = new Array<boolean>(count);
      for (let i = 0; i < count; i++) out[i] = u[i] !== 0;
      return out;
    }
    case 'U':
      return decodeUnicode(raw, count, dt.itemSize / 4, name);
  }
}

/** Reorder a column-major (Fortran) flat array into row-major order. */
function fortranToC<T extends NpyData>(data: T, shape: number[]): T {
  if (shape.length < 2) return data;
  const n = data.length;
  const out = (Array.isArray(data) ? new Array(n) : new (data.constructor as new (n: number) => T)(n)) as T;
  const src = data as ArrayLike<unknown>;
  const dst = out as unknown as { [i: number]: unknown };
  const nd = shape.length;
  // Fortran stride of axis k is the product of the axes before it.
  const fStride = new Array<number>(nd);
  fStride[0] = 1;
  for (let k = 1; k < nd; k++) fStride[k] = fStride[k - 1] * shape[k - 1];
  const idx = new Array<number>(nd).fill(0);
  let f = 0;
  for (let c = 0; c < n; c++) {
    dst[c] = src[f];
    // Advance the row-major multi-index (last axis fastest) and keep the Fortran offset in step.
    for (let k = nd - 1; k >= 0; k--) {
      idx[k]++;
      f += fStride[k];
      if (idx[k] < shape[k]) break;
      f -= fStride[k] * shape[k];
      idx[k] = 0;
    }
  }
  return out;
}

export interface ParseNpyOptions {
  /**
   * Let the returned typed array view `bytes`' memory instead of copying it, when aligned. Only
   * for callers that own `bytes` outright (readNpy does): saves a copy of large spike files.
   */
  shareMemory?: boolean;
}

/** Parse the bytes of a .npy file. `name` (usually the path) prefixes every error message. */
export function parseNpy(bytes: Uint8Array, name: string, opts: ParseNpyOptions = {}): NpyArray {
  if (!HOST_LITTLE_ENDIAN) fail(name, 'reading .npy files needs a little-endian host');
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    fail(name, `not a .npy file (bad magic: expected \\x93NUMPY, found ${JSON.stringify(String.fromCharCode(...bytes.subarray(0, 6)))})`);
  }
  const major = bytes[6];
  const minor = bytes[7];
  if (major < 1 || major > 3) fail(name, `unsupported .npy format version ${major}.${minor} (supported: 1, 2, 3)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    headerStart = 10;
  } else {
    if (bytes.length < 12) fail(name, 'truncated .npy file: header length is cut off');
    headerLen = dv.getUint32(8, true);
    headerStart = 12;
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) fail(name, `truncated .npy file: header says ${headerLen} bytes but only ${bytes.length - headerStart} follow`);
  const headerBytes = bytes.subarray(headerStart, dataStart);
  let headerText: string;
  try {
    // Versions 1 and 2 store the header in latin1; version 3 allows utf8 (e.g. non-ASCII field names).
    headerText = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: major === 3 }).decode(headerBytes);
  } catch {
    fail(name, 'npy header is not valid utf-8');
  }
  const header = parseHeader(headerText, name);
  const dt = parseDtype(header.descr, name);
  const count = header.shape.reduce((a, b) => a * b, 1);
  const needed = count * dt.itemSize;
  const have = bytes.length - dataStart;
  if (have < needed) {
    fail(name, `truncated .npy file: shape (${header.shape.join(', ')}) of ${header.descr} needs ${needed} bytes of data but the file has ${have}`);
  }
  // Decoders that build a new array (int64, bool, strings) only read, so they may always share.
  const makesNewArray = dt.kind === 'b' || dt.kind === 'U' || dt.itemSize === 8 && dt.kind !== 'f';
  const align = dt.kind === 'U' || dt.itemSize === 8 && dt.kind !== 'f' ? 4 : dt.itemSize;
  const raw = rawData(bytes, dataStart, dataStart + needed, align, makesNewArray || opts.shareMemory === true);
  let data = decodeData(raw, count, dt, name);
  if (header.fortranOrder) data = fortranToC(data, header.shape);
  return { dtype: header.descr, shape: header.shape, data, fortranOrder: header.fortranOrder };
}

/** Read a .npy file; errors name the file. */
export async function readNpy(path: string): Promise<NpyArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${path}: file not found`);
    throw new Error(`${path}: cannot read (${(e as Error).message})`);
  }
  // fs.readFile returns a Buffer of its own (never a pooled slice): safe to view instead of copy.
  return parseNpy(bytes, path, { shareMemory: true });
}

export type NpyWritable =
  | Float64Array
  | Float32Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array
  | BigInt64Array
  | BigUint64Array
  | string[]
  | boolean[];

export interface EncodeNpyOptions {
  /**
   * Store under another dtype than the array's own: '<i8' / '<u8' from a Float64Array of integers
   * (ALF uses int64 for ids and counts), '|b1' from a Uint8Array of 0/1.
   */
  dtype?: '<i8' | '<u8' | '|b1';
}

function nativeDtype(data: NpyWritable): string {
  if (data instanceof Float64Array) return '<f8';
  if (data instanceof Float32Array) return '<f4';
  if (data instanceof Int32Array) return '<i4';
  if (data instanceof Uint32Array) return '<u4';
  if (data instanceof Int16Array) return '<i2';
  if (data instanceof Uint16Array) return '<u2';
  if (data instanceof Int8Array) return '|i1';
  if (data instanceof Uint8Array) return '|u1';
  if (data instanceof BigInt64Array) return '<i8';
  if (data instanceof BigUint64Array) return '<u8';
  if (Array.isArray(data)) {
    if (data.every((v) => typeof v === 'boolean')) return '|b1';
    if (data.every((v) => typeof v === 'string')) {
      let width = 1;
      for (const s of data as string[]) width = Math.max(width, [...s].length);
      return `<U${width}`;
    }
    throw new Error('encodeNpy: a plain array must hold only strings or only booleans');
  }
  throw new Error('encodeNpy: unsupported array type');
}

function encodeBody(data: NpyWritable, dtype: string): Uint8Array {
  const n = data.length;
  if (dtype === '<i8' || dtype === '<u8') {
    if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
      return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    }
    if (!(data instanceof Float64Array)) throw new Error(`encodeNpy: dtype ${dtype} needs a Float64Array, BigInt64Array or BigUint64Array`);
    const out = dtype === '<i8' ? new BigInt64Array(n) : new BigUint64Array(n);
    for (let i = 0; i < n; i++) {
      const v = data[i];
      if (!Number.isSafeInteger(v) || (dtype === '<u8' && v < 0)) {
        throw new Error(`encodeNpy: value ${v} at index ${i} cannot be stored exactly as ${dtype}`);
      }
      out[i] = BigInt(v);
    }
    return new Uint8Array(out.buffer);
  }
  if (dtype === '|b1') {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = (data as ArrayLike<unknown>)[i] ? 1 : 0;
    return out;
  }
  if (dtype.startsWith('<U')) {
    const width = Number(dtype.slice(2));
    const out = new Uint32Array(n * width);
    (data as string[]).forEach((s, i) => {
      let c = 0;
      for (const ch of s) out[i * width + c++] = ch.codePointAt(0)!;
    });
    return new Uint8Array(out.buffer);
  }
  const t = data as Exclude<NpyWritable, string[] | boolean[]>;
  return new Uint8Array(t.buffer.slice(t.byteOffset, t.byteOffset + t.byteLength));
}

/** Encode as a version-1 .npy (version 2 if the header would not fit), C order, header padded to 64 bytes as numpy does. */
export function encodeNpy(data: NpyWritable, shape: number[], opts: EncodeNpyOptions = {}): Uint8Array {
  if (!HOST_LITTLE_ENDIAN) throw new Error('writing .npy files needs a little-endian host');
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new Error(`encodeNpy: bad shape (${shape.join(', ')})`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`encodeNpy: shape (${shape.join(', ')}) holds ${count} values but the data has ${data.length}`);
  let dtype = nativeDtype(data);
  if (opts.dtype) {
    if ((opts.dtype === '<i8' || opts.dtype === '<u8') && !(data instanceof Float64Array)) {
      throw new Error(`encodeNpy: dtype ${opts.dtype} override needs a Float64Array of integers (BigInt64Array/BigUint64Array are stored as <i8/<u8 already)`);
    }
    if (opts.dtype === '|b1' && !(data instanceof Uint8Array) && dtype !== '|b1') throw new Error('encodeNpy: dtype |b1 needs a Uint8Array or a boolean[]');
    dtype = opts.dtype;
  }
  const body = encodeBody(data, dtype);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let version = 1;
  let prefix = 10;
  let total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  if (total - prefix > 0xffff) {
    version = 2;
    prefix = 12;
    total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  }
  const headerLen = total - prefix;
  const out = new Uint8Array(total + body.length);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, headerLen, true);
  else dv.setUint32(8, headerLen, true);
  const padded = dict + ' '.repeat(headerLen - dict.length - 1) + '\n';
  for (let i = 0; i < padded.length; i++) out[prefix + i] = padded.charCodeAt(i);
  out.set(body, total);
  return out;
}

/** Write a .npy file atomically (temp file + rename). */
export async function writeNpy(path: string, data: NpyWritable, shape: number[], opts: EncodeNpyOptions = {}): Promise<void> {
  let bytes: Uint8Array;
  try {
    bytes = encodeNpy(data, shape, opts);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  await writeFileAtomic(path, bytes);
}
