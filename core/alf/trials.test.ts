import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTrials, trialsFiles } from './trials.ts';
import { writeNpy } from '../io/npy.ts';
import { writeParquet, type ParquetColumn } from '../io/parquet.ts';
import { tempDir } from '../testing.ts';

const FIX = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));
const CSV = join(FIX, 'ibllib/brainbox/tests/fixtures/trials_df_test.csv');

/** The real trials CSV as columns of numbers (empty cell -> NaN). It has no quoting. */
function readCsv(path: string): { names: string[]; cols: Record<string, number[]> } {
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  const names = lines[0].split(',');
  const cols: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const line of lines.slice(1)) {
    const cells = line.split(',');
    names.forEach((n, j) => cols[n].push(cells[j] === '' ? NaN : Number(cells[j])));
  }
  return { names, cols };
}

test('trialsFiles picks the table and per-attribute npy files, with namespaces and extra parts', () => {
  const f = trialsFiles([
    '_ibl_trials.table.pqt',
    '_ibl_trials.goCueTrigger_times.npy',
    'trials.choice.npy',
    '_ibl_trials.intervals.2023-01-01.npy',
    '_ibl_wheel.position.npy',
    'spikes.times.npy',
    '_ibl_trials.table.json',
  ]);
  assert.is(f.table, '_ibl_trials.table.pqt');
  assert.equal(f.npy.map((x) => x.attribute).sort(), ['choice', 'goCueTrigger_times', 'intervals']);
});

test('the real IBL trials CSV written as _ibl_trials.table.pqt (pandas style: NaN -> null, ints as INT64) loads back', async () => {
  const { names, cols } = readCsv(CSV);
  const alf = join(tempDir(), 'alf');
  const table: Record<string, ParquetColumn> = {};
  for (const n of names) {
    if (n === '') {
      // pandas' index: stored as __index_level_0__ when it is not a plain range.
      table.__index_level_0__ = { type: 'INT64', data: cols[n] };
      continue;
    }
    const isInt = cols[n].every((v) => Number.isInteger(v));
    table[n] = isInt ? { type: 'INT64', data: cols[n] } : { type: 'DOUBLE', data: cols[n].map((v) => (Number.isNaN(v) ? null : v)) };
  }
  table.label = { type: 'STRING', data: cols.choice.map((c) => (c > 0 ? 'L' : 'R')) };
  await writeParquet(join(alf, '_ibl_trials.table.pqt'), table);
  const logs: string[] = [];
  const trials = await loadTrials(alf, { log: (m) => logs.push(m) });
  assert.ok(!('__index_level_0__' in trials));
  assert.ok(!('label' in trials), 'string columns are skipped');
  assert.ok(logs.some((m) => m.includes('"label" holds strings')), logs.join('\n'));
  assert.is(Object.keys(trials).length, 12);
  for (const n of names.filter((x) => x !== '')) assert.equal(Array.from(trials[n]), cols[n], n);
  // From pandas.read_csv of the same file: 500 trials, 213 NaN in contrastLeft, choice +1 x258 / -1 x242.
  assert.is(trials.stimOn_times.length, 500);
  assert.is(trials.contrastLeft.filter(Number.isNaN).length, 213);
  assert.is(trials.choice.filter((c) => c === 1).length, 258);
  assert.is(trials.probabilityLeft.filter((p) => p === 0.2).length, 152);
  assert.ok(Math.abs(trials.stimOn_times.reduce((a, b) => a + b, 0) - 506075.0531) < 1e-6);
  assert.is(trials.goCue_times[0], 25.0528);
});

test('per-attribute npy files only: intervals (n,2) splits, bools and ints become float64', async () => {
  const alf = join(tempDir(), 'alf');
  await writeNpy(join(alf, '_ibl_trials.stimOn_times.npy'), new Float64Array([1.5, 4.5, 7.5]), [3]);
  await writeNpy(join(alf, '_ibl_trials.choice.npy'), new Float64Array([-1, 1, 0]), [3], { dtype: '<i8' });
  await writeNpy(join(alf, '_ibl_trials.intervals.npy'), new Float64Array([1, 3, 4, 6, 7, 9]), [3, 2]);
  await writeNpy(join(alf, '_ibl_trials.included.npy'), [true, false, true], [3]);
  await writeNpy(join(alf, '_ibl_trials.feedbackType.npy'), new Int16Array([1, -1, 1]), [3, 1]);
  await writeNpy(join(alf, '_ibl_wheel.position.npy'), new Float64Array(10), [10]);
  const trials = await loadTrials(alf);
  assert.equal(Object.keys(trials).sort(), ['choice', 'feedbackType', 'included', 'intervals_0', 'intervals_1', 'stimOn_times']);
  assert.equal(Array.from(trials.intervals_0), [1, 4, 7]);
  assert.equal(Array.from(trials.intervals_1), [3, 6, 9]);
  assert.equal(Array.from(trials.choice), [-1, 1, 0]);
  assert.equal(Array.from(trials.included), [1, 0, 1]);
  assert.equal(Array.from(trials.feedbackType), [1, -1, 1]);
});

test('table plus extra npy files: the table wins on a clash, npy adds the rest', async () => {
  const alf = join(tempDir(), 'alf');
  await writeParquet(join(alf, '_ibl_trials.table.pqt'), {
    stimOn_times: { type: 'DOUBLE', data: [1, 2] },
    intervals_0: { type: 'DOUBLE', data: [0.5, 1.5] },
    intervals_1: { type: 'DOUBLE', data: [1.4, 2.4] },
  });
  await writeNpy(join(alf, '_ibl_trials.stimOn_times.npy'), new Float64Array([99, 99]), [2]);
  await writeNpy(join(alf, '_ibl_trials.quiescencePeriod.npy'), new Float32Array([0.25, 0.5]), [2]);
  const logs: string[] = [];
  const trials = await loadTrials(alf, { log: (m) => logs.push(m) });
  assert.equal(Array.from(trials.stimOn_times), [1, 2]);
  assert.equal(Array.from(trials.quiescencePeriod), [0.25, 0.5]);
  assert.ok(logs.some((m) => m.includes('_ibl_trials.stimOn_times.npy') && m.includes('also in')), logs.join('\n'));
});

test('columns of unequal length are an error naming the file', async () => {
  const alf = join(tempDir(), 'alf');
  await writeNpy(join(alf, '_ibl_trials.choice.npy'), new Float64Array([1, -1, 1]), [3]);
  await writeNpy(join(alf, '_ibl_trials.stimOn_times.npy'), new Float64Array([1, 2]), [2]);
  await loadTrials(alf).then(
    () => assert.unreachable(),
    (e: Error) => {
      assert.ok(e.message.startsWith(join(alf, '_ibl_trials.stimOn_times.npy')), e.message);
      assert.match(e.message, /has 2 trials but "choice" .* has 3/);
    },
  );
});

test('no trials object, a missing folder or string attributes are errors naming the folder/file', async () => {
  const alf = join(tempDir(), 'alf');
  await writeNpy(join(alf, 'spikes.times.npy'), new Float64Array([1]), [1]);
  await loadTrials(alf).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, `${alf}: no trials object (expected _ibl_trials.table.pqt or _ibl_trials.<attribute>.npy files)`),
  );
  const gone = join(alf, 'nope');
  await loadTrials(gone).then(
    () => assert.unreachable(),
    (e: Error) => assert.ok(e.message.startsWith(`${gone}: folder not found`), e.message),
  );
  await writeNpy(join(alf, '_ibl_trials.stimType.npy'), ['G', 'V'], [2]);
  await loadTrials(alf).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, `${join(alf, '_ibl_trials.stimType.npy')}: holds strings (<U1), expected numbers`),
  );
});

test.run();
