import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  encodeParquet,
  int64PairFromUuid,
  numericColumn,
  parseParquet,
  readParquet,
  stringColumn,
  uuidFromInt64Pair,
  writeParquet,
} from './parquet.ts';
import { tempDir } from '../testing.ts';

// Real IBL files; CI clones the repo with shared/ beside it.
const FIX = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));
const fx = (p: string) => join(FIX, p);
const SESSIONS = fx('ONE/one/tests/fixtures/sessions.pqt');
const DATASETS = fx('ONE/one/tests/fixtures/datasets.pqt');
const PASSIVE = fx('ibllib/ibllib/io/extractors/ephys_sessions/passiveChoiceWorld_trials_fixtures.pqt');
const MAPPINGS = fx('iblatlas/iblatlas/mappings.pqt');
const CLUSTERS = fx('paper-reproducible-ephys/fig_data_quality/tables/clusters_re_147.pqt');
const CHANNELS = fx('paper-reproducible-ephys/fig_data_quality/tables/channels_re.pqt');

// Every expected value below was read from the fixture with pandas 3.0 + pyarrow 25
// (pd.read_parquet(...).reset_index()) when this test was written.

test('ONE sessions.pqt (legacy layout): int64 UUID halves need int64AsString, DATE -> YYYY-MM-DD', async () => {
  await readParquet(SESSIONS).then(
    () => assert.unreachable('id_0 is outside the safe range'),
    (e: Error) => {
      assert.ok(e.message.startsWith(`${SESSIONS}: column "id_0" row 0: int64 value 8737712210713458643`), e.message);
      assert.match(e.message, /int64AsString/);
    },
  );
  const t = await readParquet(SESSIONS, { int64AsString: ['id_0', 'id_1'] });
  assert.is(t.numRows, 26);
  assert.equal(t.columnNames, ['lab', 'subject', 'date', 'number', 'task_protocol', 'project', 'id_0', 'id_1']);
  assert.is(t.columns.lab[0], 'mainenlab');
  assert.is(t.columns.subject[0], 'ZFM-01935');
  assert.is(t.columns.date[0], '2021-02-05');
  assert.is(t.columns.date[25], '2018-07-13');
  assert.is(t.columns.task_protocol[0], '_iblrig_tasks_ephysChoiceWorld6.4.2');
  assert.is(t.columns.task_protocol[25], '');
  assert.is(t.columns.project[25], 'ibl_mainenlab');
  assert.equal(t.columns.number, [1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 2, 1, 1, 1, 4, 1, 1, 1, 1, 2, 1]);
  assert.is(t.columns.id_0[0], '8737712210713458643');
  assert.is(t.columns.id_1[0], '-4920882604093676133');
  // uuid.UUID(bytes=np.array([id_0, id_1]).tobytes()), as ONE does.
  assert.is(uuidFromInt64Pair(t.columns.id_0[0] as string, t.columns.id_1[0] as string), 'd3372b15-f696-4279-9be5-98f15783b5bb');
  assert.is(uuidFromInt64Pair(t.columns.id_0[25] as string, t.columns.id_1[25] as string), '4e0b3320-47b7-416e-b842-c34dc9004cf8');
  assert.equal(int64PairFromUuid('4e0b3320-47b7-416e-b842-c34dc9004cf8'), [7944832733769042766n, -555067789480344904n]);
});

test('ONE datasets.pqt: doubles with nulls, strings with nulls, bools', async () => {
  const t = await readParquet(DATASETS, { int64AsString: ['id_0', 'id_1', 'eid_0', 'eid_1'] });
  assert.is(t.numRows, 693);
  assert.is(t.columns.file_size[0], null);
  assert.is(t.columns.file_size[1], 1091521152);
  assert.is(t.columns.file_size[692], 1007);
  assert.is(t.columns.rel_path[1], 'alf/probe00/_phy_spikes_subset.waveforms.npy');
  assert.is(t.columns.session_path[692], 'mainenlab/Subjects/ZM_1743/2019-06-11/001');
  assert.is(t.columns.exists.filter((v) => v === true).length, 693);
  assert.is(t.columns.hash.filter((v) => v === null).length, 593);
  const size = numericColumn(t, 'file_size', DATASETS);
  let nan = 0, sum = 0;
  for (const v of size) Number.isNaN(v) ? nan++ : (sum += v);
  assert.is(nan, 301);
  assert.is(sum, 72187241517);
  assert.is(uuidFromInt64Pair(t.columns.eid_0[0] as string, t.columns.eid_1[0] as string), 'aaf101c3-2581-450a-8abd-ddb8f557a5ad');
});

test('passiveChoiceWorld_trials_fixtures.pqt: 3600 rows of int64, double, string, bool with nulls', async () => {
  const t = await readParquet(PASSIVE);
  assert.is(t.numRows, 3600);
  assert.is(t.columnNames.length, 13);
  assert.is(t.columns.stim_type[0], 'V');
  assert.is(t.columns.stim_type[1], 'G');
  assert.is(t.columns.stim_delay[0], 1.4091032319483257);
  assert.is(t.columns.stim_phase[1], 0.26893812009402385);
  assert.is(t.columns.contrast[0], null);
  assert.is(t.columns.position[1], -35);
  assert.is(t.columns.stim_reverse[0], false);
  assert.is(t.columns.session_id[3599], 11);
  assert.is(t.columns.trial_num[1000], 100);
  assert.is(t.columns.trial_num[3599], 299);
  const counts: Record<string, number> = {};
  for (const s of stringColumn(t, 'stim_type', PASSIVE)) counts[s!] = (counts[s!] ?? 0) + 1;
  assert.equal(counts, { V: 480, G: 2160, N: 480, T: 480 });
  assert.is(t.columns.contrast.filter((v) => v === null).length, 1440);
  const contrast = numericColumn(t, 'contrast', PASSIVE);
  assert.is(contrast.reduce((a, v) => (Number.isNaN(v) ? a : a + v), 0), 690);
  const delay = numericColumn(t, 'stim_delay', PASSIVE);
  assert.ok(Math.abs(delay.reduce((a, v) => a + v, 0) - 2797.8766884283373) < 1e-9);
  assert.equal(Array.from(numericColumn(t, 'stim_reverse', PASSIVE).subarray(0, 2)), [0, 0]);
});

test('mappings.pqt: 2655 rows of 8 int64 columns', async () => {
  const t = await readParquet(MAPPINGS);
  assert.is(t.numRows, 2655);
  assert.equal(t.columnNames, ['Allen', 'Allen-lr', 'Beryl', 'Beryl-lr', 'Cosmos', 'Cosmos-lr', 'Swanson', 'Swanson-lr']);
  const row = (i: number) => t.columnNames.map((c) => t.columns[c][i]);
  assert.equal(row(500), [500, 500, 495, 495, 455, 455, 495, 495]);
  assert.equal(row(1327), [1327, 1327, 1, 1, 1, 1, 1327, 1327]);
  assert.equal(row(2654), [1327, 2654, 1, 1, 1, 1, 1327, 2654]);
  const sum = (c: string) => numericColumn(t, c, MAPPINGS).reduce((a, v) => a + v, 0);
  assert.is(sum('Beryl'), 1008968);
  assert.is(sum('Swanson-lr'), 2815171);
});

test('clusters_re_147.pqt: 122,885 clusters, float32/int64/string columns and the pandas index columns', async () => {
  const t = await readParquet(CLUSTERS);
  assert.is(t.numRows, 122885);
  assert.ok(t.columnNames.includes('__index_level_0__') && t.columnNames.includes('__index_level_1__'));
  assert.is(t.columns.acronym[0], 'MRN');
  assert.is(t.columns.acronym[5], 'MRN');
  assert.is(t.columns.acronym[50000], 'CA1');
  assert.is(t.columns.acronym[100000], 'PO');
  assert.is(t.columns.firing_rate[0], 3.0716142654418945);
  assert.is(t.columns.firing_rate[5], 0.000951480062212795);
  assert.is(t.columns.firing_rate[122884], 0.06909206509590149);
  assert.is(t.columns.label[0], 0);
  assert.is(t.columns.label[15], 1);
  assert.is(t.columns.spike_count[60000], 54519);
  assert.is(t.columns.__index_level_0__[60000], '84bb830f-b9ff-4e6b-9296-f458fb41d160');
  assert.is(t.columns.__index_level_1__[60000], 1500);
  assert.is(t.columns.__index_level_1__[122884], 1591);
  const idx = numericColumn(t, '__index_level_1__', CLUSTERS);
  assert.is(idx.reduce((a, v) => a + v, 0), 96876861);
  assert.is(numericColumn(t, 'label', CLUSTERS).reduce((a, v) => a + v, 0), 10192);
  assert.is(t.columns.noise_cutoff.filter((v) => v === null).length, 48607);
  assert.is(numericColumn(t, 'spike_count', CLUSTERS).reduce((a, v) => a + v, 0), 2218168427);
});

test('channels_re.pqt: 30,720 channels; column selection keeps the requested order', async () => {
  const t = await readParquet(CHANNELS, { columns: ['atlas_id', 'acronym', 'x'] });
  assert.is(t.numRows, 30720);
  assert.equal(t.columnNames, ['atlas_id', 'acronym', 'x']);
  assert.equal(Object.keys(t.columns).sort(), ['acronym', 'atlas_id', 'x']);
  assert.is(t.columns.acronym[383], 'VISa5');
  assert.is(t.columns.atlas_id[383], 312782562);
  assert.is(t.columns.x[0], -0.000771);
  assert.is(t.columns.acronym[1000], 'CA1');
  assert.is(t.columns.acronym[30719], 'VISp4');
  assert.is(numericColumn(t, 'atlas_id', CHANNELS).reduce((a, v) => a + v, 0), 1963585622478);
});

test('unknown columns, non-numeric columns and missing files are errors naming file and column', async () => {
  await readParquet(CHANNELS, { columns: ['acronym', 'nope'] }).then(
    () => assert.unreachable(),
    (e: Error) => {
      assert.ok(e.message.startsWith(`${CHANNELS}: no column "nope" (columns: x, y, z, acronym`), e.message);
    },
  );
  const t = await readParquet(CHANNELS, { columns: ['acronym'] });
  assert.throws(() => numericColumn(t, 'acronym', 'channels.pqt'), /channels\.pqt: column "acronym" is not numeric \(row 0 holds the string "MRN"\)/);
  assert.throws(() => numericColumn(t, 'depth', 'channels.pqt'), /channels\.pqt: no column "depth" \(columns: acronym\)/);
  const missing = join(tempDir(), 'clusters.metrics.pqt');
  await readParquet(missing).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, `${missing}: file not found`),
  );
});

test('corrupt and truncated Parquet files are refused with the file name', async () => {
  const dir = tempDir();
  const bytes = readFileSync(PASSIVE);
  const truncated = join(dir, '_ibl_trials.table.pqt');
  writeFileSync(truncated, bytes.subarray(0, bytes.length - 100));
  await readParquet(truncated).then(
    () => assert.unreachable(),
    (e: Error) => assert.ok(e.message.startsWith(`${truncated}: not a readable Parquet file`), e.message),
  );
  // Intact footer, damaged column data: the failure comes from decoding, not from the footer.
  const damaged = Buffer.from(bytes);
  for (let i = 4; i < 20000; i++) damaged[i] = 0xab;
  const damagedPath = join(dir, 'damaged.pqt');
  writeFileSync(damagedPath, damaged);
  await readParquet(damagedPath).then(
    () => assert.unreachable('damaged data must not decode silently'),
    (e: Error) => assert.ok(e.message.startsWith(`${damagedPath}: `), e.message),
  );
  await parseParquet(Buffer.from('this is not parquet at all'), 'x.pqt').then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /^x\.pqt: not a readable Parquet file/),
  );
});

test('write -> read round trip of every column type, with nulls', async () => {
  const path = join(tempDir(), 'sub', 'table.pqt');
  await writeParquet(path, {
    d: { type: 'DOUBLE', data: [1.5, null, NaN, -Infinity, 2] },
    f: { type: 'FLOAT', data: [0.25, 1, null, 3, 4] },
    i32: { type: 'INT32', data: [1, -2147483648, 2147483647, null, 0] },
    i64: { type: 'INT64', data: [9007199254740991, -9007199254740991, null, 0, 2n ** 62n] },
    s: { type: 'STRING', data: ['CA1', '', null, 'é✓ünï', 'VISp2/3'] },
    b: { type: 'BOOLEAN', data: [true, false, null, true, false] },
  });
  assert.equal(readdirSync(join(path, '..')), ['table.pqt'], 'only the final file, no temporary left');
  const t = await readParquet(path, { int64AsString: ['i64'] });
  assert.is(t.numRows, 5);
  assert.equal(t.columnNames, ['d', 'f', 'i32', 'i64', 's', 'b']);
  assert.equal(t.columns.d.slice(0, 2), [1.5, null]);
  assert.ok(Number.isNaN(t.columns.d[2] as number));
  assert.is(t.columns.d[3], -Infinity);
  assert.equal(t.columns.f, [0.25, 1, null, 3, 4]);
  assert.equal(t.columns.i32, [1, -2147483648, 2147483647, null, 0]);
  assert.equal(t.columns.i64, ['9007199254740991', '-9007199254740991', null, '0', '4611686018427387904']);
  assert.equal(t.columns.s, ['CA1', '', null, 'é✓ünï', 'VISp2/3']);
  assert.equal(t.columns.b, [true, false, null, true, false]);
  // Without int64AsString the out-of-range row is refused, naming the column and row.
  await readParquet(path).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /column "i64" row 4: int64 value 4611686018427387904/),
  );
});

test('typed arrays, many rows and several row groups round trip', async () => {
  const n = 120000;
  const times = new Float64Array(n).map((_, i) => i * 0.001);
  const clusters = new Int32Array(n).map((_, i) => (i * 7) % 301);
  const bytes = encodeParquet(
    { times: { type: 'DOUBLE', data: times }, clusters: { type: 'INT32', data: clusters }, rates: { type: 'FLOAT', data: new Float32Array(n).fill(0.5) } },
    { rowGroupSize: 50000, metadata: { source: 'test' } },
  );
  const t = await parseParquet(bytes, 'mem.pqt');
  assert.is(t.numRows, n);
  assert.equal(numericColumn(t, 'times', 'mem.pqt'), times);
  assert.equal(Int32Array.from(numericColumn(t, 'clusters', 'mem.pqt')), clusters);
  assert.is(t.columns.rates[n - 1], 0.5);
});

test('an empty table keeps its columns', async () => {
  const t = await parseParquet(encodeParquet({ a: { type: 'DOUBLE', data: [] }, s: { type: 'STRING', data: [] } }), 'empty.pqt');
  assert.is(t.numRows, 0);
  assert.equal(t.columnNames, ['a', 's']);
  assert.equal(t.columns.a, []);
});

test('bad values and ragged columns are refused, naming the file, column and row', async () => {
  const path = join(tempDir(), 'bad.pqt');
  const fails = async (cols: Parameters<typeof writeParquet>[1], re: RegExp) => {
    await writeParquet(path, cols).then(
      () => assert.unreachable(`should refuse ${re}`),
      (e: Error) => {
        assert.ok(e.message.startsWith(`${path}: `), e.message);
        assert.match(e.message, re);
      },
    );
  };
  await fails({ a: { type: 'INT32', data: [1, 2.5] } }, /column "a" \(INT32\) row 1: 2\.5 is not an int32 or null/);
  await fails({ a: { type: 'INT32', data: [2 ** 31] } }, /row 0: 2147483648 is not an int32/);
  await fails({ a: { type: 'INT64', data: [2 ** 60] } }, /column "a" \(INT64\) row 0: .* is not an exact integer/);
  await fails({ a: { type: 'INT64', data: [2n ** 64n] } }, /is not within the int64 range/);
  await fails({ a: { type: 'DOUBLE', data: [1, 'x'] } }, /column "a" \(DOUBLE\) row 1: "x" is not a number or null/);
  await fails({ a: { type: 'STRING', data: ['x', 3] } }, /row 1: 3 is not a string or null/);
  await fails({ a: { type: 'BOOLEAN', data: [1] } }, /row 0: 1 is not a boolean or null/);
  await fails({ a: { type: 'DOUBLE', data: [1, 2] }, b: { type: 'DOUBLE', data: [1] } }, /column "b" has 1 rows but column "a" has 2/);
  await fails({}, /at least one column/);
  assert.equal(readdirSync(join(path, '..')), [], 'nothing written on failure');
});

test.run();
