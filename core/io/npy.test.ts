import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeNpy, parseNpy, readNpy, writeNpy, type NpyWritable } from './npy.ts';
import { tempDir } from '../testing.ts';

// Real IBL files; CI clones the repo with shared/ beside it.
const FIX = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));
const fx = (p: string) => join(FIX, p);

// Every expected number below was read from the fixture with numpy 2.4 (np.load) when this test was written.

test('beryl.npy: Fortran-order <i4 (306,1) with an old 16-byte aligned header', async () => {
  const a = await readNpy(fx('iblatlas/iblatlas/beryl.npy'));
  assert.is(a.dtype, '<i4');
  assert.equal(a.shape, [306, 1]);
  assert.is(a.fortranOrder, true);
  assert.ok(a.data instanceof Int32Array);
  assert.equal(Array.from(a.data.slice(0, 6) as Int32Array), [184, 985, 993, 353, 329, 337]);
  assert.equal(Array.from(a.data.slice(150, 153) as Int32Array), [272, 830, 452]);
  assert.equal(Array.from(a.data.slice(-3) as Int32Array), [91, 846, 589508455]);
});

test('cosmos.npy: the 10 Cosmos ids', async () => {
  const a = await readNpy(fx('iblatlas/iblatlas/cosmos.npy'));
  assert.equal(a.shape, [10, 1]);
  assert.is(a.fortranOrder, true);
  assert.equal(Array.from(a.data as Int32Array), [315, 698, 1089, 703, 623, 549, 1097, 313, 1065, 512]);
});

test('session_0_ephys_pcqs.npy: Fortran <f8 (2040,5) comes back row-major', async () => {
  const a = await readNpy(fx('ibllib/ibllib/io/extractors/ephys_sessions/session_0_ephys_pcqs.npy'));
  assert.is(a.dtype, '<f8');
  assert.equal(a.shape, [2040, 5]);
  assert.is(a.fortranOrder, true);
  assert.ok(a.data instanceof Float64Array);
  const d = a.data as Float64Array;
  const at = (i: number, j: number) => d[i * 5 + j];
  assert.is(at(0, 0), -35.0);
  assert.is(at(0, 4), 0.5);
  assert.is(at(1, 2), 0.603376323613809);
  assert.is(at(17, 1), 0.0);
  assert.is(at(1000, 3), 3.0310110402830954);
  assert.is(at(2039, 0), 35.0);
  assert.is(at(2039, 4), 0.2);
  let s = 0;
  for (const v of d) s += v;
  assert.ok(Math.abs(s - 1883.2193897218017) < 1e-9, `sum ${s}`);
});

test('session_0_ephys_len_blocks.npy: <i8 block lengths as exact numbers', async () => {
  const a = await readNpy(fx('ibllib/ibllib/io/extractors/ephys_sessions/session_0_ephys_len_blocks.npy'));
  assert.is(a.dtype, '<i8');
  assert.equal(a.shape, [43]);
  assert.ok(a.data instanceof Float64Array);
  const d = a.data as Float64Array;
  assert.equal(Array.from(d.slice(0, 4)), [90, 33, 70, 21]);
  assert.equal(Array.from(d.slice(-3)), [74, 63, 46]);
  assert.is(d.reduce((x, y) => x + y, 0), 2040);
});

test('session_0_passive_stimIDs.npy: <U1 strings', async () => {
  const a = await readNpy(fx('ibllib/ibllib/io/extractors/ephys_sessions/session_0_passive_stimIDs.npy'));
  assert.is(a.dtype, '<U1');
  assert.equal(a.shape, [300]);
  const d = a.data as string[];
  assert.is(d.slice(0, 60).join(''), 'GTGNTGGTGNVGNGTVGVGNGTGGGNGTVGNGGGTNVGTGTGNGGGTGTNGGTVGGGNTG');
  assert.equal(d.slice(-3), ['V', 'V', 'V']);
});

test('stimOn_times.npy: <f4', async () => {
  const a = await readNpy(fx('ibllib/ibllib/tests/fixtures/qc/stimOn_times.npy'));
  assert.is(a.dtype, '<f4');
  assert.ok(a.data instanceof Float32Array);
  assert.equal(a.shape, [10]);
  const d = a.data as Float32Array;
  assert.is(d[0], 50.06966781616211);
  assert.is(d[1], 55.885032653808594);
  assert.is(d[9], 91.71786499023438);
});

test('pupil_diameter.npy: Fortran <f8 (200,2) with NaNs', async () => {
  const a = await readNpy(fx('ibllib/ibllib/tests/fixtures/qc/pupil_diameter.npy'));
  assert.equal(a.shape, [200, 2]);
  assert.is(a.fortranOrder, true);
  const d = a.data as Float64Array;
  assert.is(d[0], 16.488252141028084); // [0,0]
  assert.is(d[1], 16.880342203417733); // [0,1]
  assert.is(d[2], 16.841477188439228); // [1,0]
  assert.is(d[100 * 2 + 1], 18.262778606323085); // [100,1]
  assert.is(d[199 * 2 + 1], 20.085343658137823); // [199,1]
  let nan = 0, s = 0;
  for (const v of d) Number.isNaN(v) ? nan++ : (s += v);
  assert.is(nan, 23);
  assert.ok(Math.abs(s - 6817.708911533851) < 1e-8);
});

test('swanson_regions.npy: <i8', async () => {
  const a = await readNpy(fx('iblatlas/iblatlas/swanson_regions.npy'));
  assert.is(a.dtype, '<i8');
  assert.equal(a.shape, [323]);
  const d = a.data as Float64Array;
  assert.equal(Array.from(d.slice(0, 4)), [0, 997, 985, 993]);
  assert.equal(Array.from(d.slice(-3)), [984, 312782546, 417]);
  assert.is(d.reduce((x, y) => x + y, 0), 617286177);
});

test('parseNpy copies out of a Buffer at an odd byteOffset', () => {
  const file = readFileSync(fx('ibllib/ibllib/tests/fixtures/qc/wheel.npy'));
  const big = Buffer.alloc(file.length + 3);
  file.copy(big, 3);
  const view = big.subarray(3);
  const a = parseNpy(view, 'wheel.npy');
  assert.equal(a.shape, [102, 2]);
  const d = a.data as Float64Array;
  assert.is(d[2], 0.010753146162301164);
  assert.is(d[3], -0.00613592315154321);
  assert.is(d[203], -0.006135923151542079);
  big.fill(0);
  assert.is(d[2], 0.010753146162301164, 'data must not alias the source buffer');
});

test('shareMemory views aligned data in place; an unaligned buffer is still copied', () => {
  const bytes = encodeNpy(new Float64Array([1, 2, 3]), [3]);
  const shared = parseNpy(bytes, 's.npy', { shareMemory: true });
  assert.ok((shared.data as Float64Array).buffer === bytes.buffer);
  assert.equal(Array.from(shared.data as Float64Array), [1, 2, 3]);
  const copied = parseNpy(bytes, 'c.npy');
  assert.ok((copied.data as Float64Array).buffer !== bytes.buffer);
  const odd = new Uint8Array(bytes.length + 1);
  odd.set(bytes, 1);
  const unaligned = parseNpy(odd.subarray(1), 'u.npy', { shareMemory: true });
  assert.ok((unaligned.data as Float64Array).buffer !== odd.buffer);
  assert.equal(Array.from(unaligned.data as Float64Array), [1, 2, 3]);
});

const roundTrips: Array<[string, NpyWritable, number[], string, object?]> = [
  ['f8', new Float64Array([1.5, -2.25, NaN, Infinity, 1e-300, 6]), [2, 3], '<f8'],
  ['f4', new Float32Array([0.5, -1, 3.25]), [3], '<f4'],
  ['i4', new Int32Array([-2147483648, 0, 2147483647, 5]), [2, 2], '<i4'],
  ['u4', new Uint32Array([0, 4294967295]), [2], '<u4'],
  ['i2', new Int16Array([-32768, 32767, 1]), [3, 1], '<i2'],
  ['u2', new Uint16Array([0, 65535]), [1, 2], '<u2'],
  ['i1', new Int8Array([-128, 127]), [2], '|i1'],
  ['u1', new Uint8Array([0, 255, 7]), [3], '|u1'],
  ['i8 bigint', new BigInt64Array([-5n, 2n ** 53n - 1n, -(2n ** 53n) + 1n]), [3], '<i8'],
  ['u8 bigint', new BigUint64Array([0n, 2n ** 53n - 1n]), [2], '<u8'],
  ['b1', [true, false, true, true], [2, 2], '|b1'],
  ['U', ['CA1', 'VISp2/3', '', 'é✓'], [4], '<U7'],
  ['scalar', new Float64Array([42]), [], '<f8'],
  ['empty', new Float32Array(0), [0, 4], '<f4'],
];

for (const [label, data, shape, dtype] of roundTrips) {
  test(`round trip ${label}`, async () => {
    const path = join(tempDir(), `x-${label.replace(/ /g, '_')}.npy`);
    await writeNpy(path, data, shape);
    const bytes = readFileSync(path);
    // numpy aligns the data start to 64 bytes.
    const headerLen = bytes.readUInt16LE(8);
    assert.is((10 + headerLen) % 64, 0);
    assert.is(bytes[10 + headerLen - 1], 0x0a);
    const a = await readNpy(path);
    assert.is(a.dtype, dtype);
    assert.equal(a.shape, shape);
    assert.is(a.fortranOrder, false);
    const expected = Array.from(data as ArrayLike<unknown>, (v) => (typeof v === 'bigint' ? Number(v) : v));
    assert.equal(Array.from(a.data as ArrayLike<unknown>), expected);
    assert.is(readdirSync(join(path, '..')).length, 1, 'no temporary file is left behind');
  });
}

test('int64 and uint64 from a Float64Array of integers, and a Uint8Array as |b1', () => {
  const i8 = parseNpy(encodeNpy(new Float64Array([-3, 0, 9007199254740991]), [3], { dtype: '<i8' }), 'i8');
  assert.is(i8.dtype, '<i8');
  assert.equal(Array.from(i8.data as Float64Array), [-3, 0, 9007199254740991]);
  const u8 = parseNpy(encodeNpy(new Float64Array([1, 2]), [2], { dtype: '<u8' }), 'u8');
  assert.is(u8.dtype, '<u8');
  assert.equal(Array.from(u8.data as Float64Array), [1, 2]);
  const b1 = parseNpy(encodeNpy(new Uint8Array([0, 1, 2]), [3], { dtype: '|b1' }), 'b1');
  assert.equal(b1.data, [false, true, true]);
  assert.throws(() => encodeNpy(new Float64Array([1.5]), [1], { dtype: '<i8' }), /1\.5 at index 0/);
  assert.throws(() => encodeNpy(new Float64Array([-1]), [1], { dtype: '<u8' }), /-1 at index 0/);
});

test('writer output is byte-identical to numpy.save', () => {
  // Bytes of np.save(f, np.array([[1.5,2,3],[4,5,6]])) from numpy 2.4: 128-byte header, then the data.
  const out = encodeNpy(new Float64Array([1.5, 2, 3, 4, 5, 6]), [2, 3]);
  const header = "\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }" + ' '.repeat(58) + '\n';
  assert.is(out.length, 128 + 48);
  assert.is(Buffer.from(out.subarray(0, 128)).toString('latin1'), header);
  // Bytes of np.save(f, np.array(['ab', 'é', ''])) from numpy 2.4 (152 bytes, <U2).
  const s = encodeNpy(['ab', 'é', ''], [3]);
  assert.is(s.length, 152);
  assert.equal(Array.from(s.subarray(128)), [97, 0, 0, 0, 98, 0, 0, 0, 233, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
});

test('encodeNpy refuses a shape that does not match the data', () => {
  assert.throws(() => encodeNpy(new Float64Array(5), [2, 3]), /\(2, 3\) holds 6 values but the data has 5/);
});

/** Build a .npy by hand with a given version and header text. */
function handMade(version: number, header: string, body: Uint8Array): Uint8Array {
  const h = Buffer.from(header, version === 3 ? 'utf8' : 'latin1');
  const prefix = version === 1 ? 10 : 12;
  const pad = (64 - ((prefix + h.length + 1) % 64)) % 64;
  const hdr = Buffer.concat([h, Buffer.from(' '.repeat(pad) + '\n')]);
  const out = Buffer.alloc(prefix + hdr.length + body.length);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(out, 0);
  if (version === 1) out.writeUInt16LE(hdr.length, 8);
  else out.writeUInt32LE(hdr.length, 8);
  hdr.copy(out, prefix);
  Buffer.from(body).copy(out, prefix + hdr.length);
  return out;
}

const f8 = (xs: number[]) => new Uint8Array(new Float64Array(xs).buffer);

test('version 2 header (4-byte length)', () => {
  const bytes = handMade(2, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", f8([1, 2]));
  const a = parseNpy(bytes, 'v2.npy');
  assert.equal(Array.from(a.data as Float64Array), [1, 2]);
});

test('version 3 header and Fortran order in 3-D', () => {
  // A (2,3,2) array 0..11 in C order, stored in Fortran order: element [i,j,k] at i + 2j + 6k.
  const c = Array.from({ length: 12 }, (_, i) => i);
  const f = new Array<number>(12);
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 2; k++) f[i + 2 * j + 6 * k] = c[i * 6 + j * 2 + k];
  const bytes = handMade(3, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3, 2), }", f8(f));
  const a = parseNpy(bytes, 'v3.npy');
  assert.equal(a.shape, [2, 3, 2]);
  assert.is(a.fortranOrder, true);
  assert.equal(Array.from(a.data as Float64Array), c);
});

test('python 2 long dims (306L) are accepted', () => {
  const a = parseNpy(handMade(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2L,), }", new Uint8Array(new Int32Array([7, 8]).buffer)), 'old.npy');
  assert.equal(Array.from(a.data as Int32Array), [7, 8]);
});

test('truncated data is refused, naming the file and the sizes', async () => {
  const full = encodeNpy(new Float64Array([1, 2, 3]), [3]);
  const path = join(tempDir(), 'spikes.times.npy');
  writeFileSync(path, full.subarray(0, full.length - 5));
  try {
    await readNpy(path);
    assert.unreachable('should have thrown');
  } catch (e) {
    const m = (e as Error).message;
    assert.ok(m.startsWith(path), m);
    assert.match(m, /truncated/);
    assert.match(m, /needs 24 bytes of data but the file has 19/);
  }
  assert.throws(() => parseNpy(full.subarray(0, 40), 'cut.npy'), /cut\.npy: truncated \.npy file: header/);
  assert.throws(() => parseNpy(full.subarray(0, 8), 'tiny.npy'), /tiny\.npy: not a \.npy file/);
});

test('bad magic, bad version and unreadable headers are refused', () => {
  assert.throws(() => parseNpy(Buffer.from('PK\x03\x04 this is a zip file, not npy'), 'x.npz'), /x\.npz: not a \.npy file \(bad magic/);
  const bad = Buffer.from(encodeNpy(new Float64Array([1]), [1]));
  bad[6] = 9;
  assert.throws(() => parseNpy(bad, 'v9.npy'), /v9\.npy: unsupported \.npy format version 9/);
  assert.throws(() => parseNpy(handMade(1, "{'descr': '<f8', 'shape': (1,), }", f8([1])), 'nofo.npy'), /nofo\.npy: npy header has no readable 'fortran_order'/);
  assert.throws(() => parseNpy(handMade(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (a,), }", f8([1])), 'bs.npy'), /bs\.npy: npy header shape has a bad dimension/);
  assert.throws(() => parseNpy(handMade(1, 'garbage', f8([1])), 'g.npy'), /g\.npy: npy header is not a dict literal/);
  const badUtf8 = handMade(3, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", f8([1]));
  badUtf8[20] = 0xff;
  assert.throws(() => parseNpy(badUtf8, 'u.npy'), /u\.npy: npy header is not valid utf-8/);
});

test('big-endian, object and structured dtypes are refused with a clear message', () => {
  assert.throws(() => parseNpy(handMade(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }", f8([1])), 'be.npy'), /be\.npy: big-endian dtype >f8 is not supported/);
  assert.throws(() => parseNpy(handMade(1, "{'descr': '>U2', 'fortran_order': False, 'shape': (1,), }", f8([1])), 'beu.npy'), /beu\.npy: big-endian/);
  assert.throws(() => parseNpy(handMade(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", f8([1])), 'trials_mask.npy'), /trials_mask\.npy: object dtype \|O is not supported/);
  assert.throws(() => parseNpy(handMade(1, "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }", f8([1])), 'rec.npy'), /rec\.npy: structured/);
  assert.throws(() => parseNpy(handMade(1, "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", f8([1, 2])), 'c.npy'), /c\.npy: unsupported npy dtype "<c16"/);
});

test('int64 outside the safe range is refused, naming the file and the value', () => {
  const body = new BigInt64Array([1n, 2n ** 53n + 1n]);
  const bytes = handMade(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(body.buffer));
  assert.throws(() => parseNpy(bytes, 'ids.npy'), /ids\.npy: int64 value 9007199254740993 at flat index 1 is outside the safe integer range/);
  const neg = new BigInt64Array([-(2n ** 60n)]);
  assert.throws(() => parseNpy(handMade(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(neg.buffer)), 'neg.npy'), /neg\.npy: int64 value -1152921504606846976/);
  const u = new BigUint64Array([2n ** 64n - 1n]);
  assert.throws(() => parseNpy(handMade(1, "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(u.buffer)), 'u.npy'), /u\.npy: uint64 value 18446744073709551615/);
});

test('a missing file is reported by name', async () => {
  const path = join(tempDir(), 'nope.npy');
  await readNpy(path).then(
    () => assert.unreachable('should have thrown'),
    (e: Error) => assert.is(e.message, `${path}: file not found`),
  );
});

test.run();
