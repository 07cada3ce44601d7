import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BinnedSession } from '../payloads.ts';
import type { TaskResult } from '../eval/tasks.ts';
import type { OracleResult } from '../eval/oracle.ts';
import { EVAL_DETAIL_FORMAT, evalDetailFileName, evalDetailFromTasks, readEvalDetail, trialAveraged, withUnitSpread, writeEvalDetail, type EvalDetail } from './detail.ts';
import { summarise } from './summary.ts';
import { tempDir } from '../testing.ts';

const detail = (): EvalDetail => ({
  format: EVAL_DETAIL_FORMAT,
  sessionId: 'sess/1',
  label: 'mtm',
  binSizeMs: 20,
  regions: ['CA1', 'CA1', 'LP'],
  perNeuronBps: { co_smoothing: [0.1234567891, null, -0.2] },
  perNeuronOracleBps: { co_smoothing: [0.3, null, 0.1] },
  raster: { task: 'co_smoothing', trials: 2, windowStartS: -0.5, observed: [[1, 2], [0, 0], [3, null]], predicted: [[1.1, 2], [0.1, 0], [2.9, 3]] },
});

test('trialAveraged: mean over trials as [neuron][bin], NaN skipped, exp for log-rates', () => {
  // 2 trials x 2 bins x 2 neurons, row-major [trial][bin][neuron].
  const v = [1, 10, 2, 20, 3, 30, NaN, NaN];
  assert.equal(trialAveraged(v, 2, 2, 2), [[2, 2], [20, 20]]);
  assert.equal(trialAveraged(v, 2, 2, 2, { neurons: [1] }), [[20, 20]]);
  const logs = [Math.log(2), Math.log(4)];
  assert.equal(trialAveraged(logs, 2, 1, 1, { exp: true }).map((r) => r.map((x) => Number(x!.toFixed(9)))), [[3]]);
  assert.equal(trialAveraged([NaN], 1, 1, 1), [[null]]);
  assert.throws(() => trialAveraged([1, 2], 1, 1, 1), /2 values for 1x1x1/);
});

test('write -> read round trip, file name made safe', async () => {
  const dir = tempDir();
  const name = evalDetailFileName('sess/1', 'mtm v2');
  assert.is(name, 'sess_1.mtm_v2.eval-detail.json');
  await writeEvalDetail(join(dir, name), detail());
  const back = await readEvalDetail(join(dir, name));
  assert.equal(back.regions, ['CA1', 'CA1', 'LP']);
  assert.is(back.perNeuronBps.co_smoothing![0], 0.123457, 'rounded to 6 significant digits');
  assert.equal(back.raster!.observed, [[1, 2], [0, 0], [3, null]]);
});

test('bad files are refused naming the file and the field', async () => {
  const dir = tempDir();
  const f = join(dir, 'x.eval-detail.json');
  writeFileSync(f, '{ not json');
  let e = await readEvalDetail(f).catch((x: Error) => x);
  assert.match(String(e), /x\.eval-detail\.json: not valid JSON/);
  writeFileSync(f, JSON.stringify({ ...detail(), binSizeMs: 'twenty' }));
  e = await readEvalDetail(f).catch((x: Error) => x);
  assert.match(String(e), /x\.eval-detail\.json: .*binSizeMs/);
  writeFileSync(f, JSON.stringify({ ...detail(), perNeuronBps: { co_smoothing: [0.1] } }));
  e = await readEvalDetail(f).catch((x: Error) => x);
  assert.match(String(e), /perNeuronBps\.co_smoothing has 1 entries, expected one per neuron \(3/);
  writeFileSync(f, JSON.stringify({ ...detail(), perNeuronBps: { cosmoothing: [0.1, 0.2, 0.3] } }));
  e = await readEvalDetail(f).catch((x: Error) => x);
  assert.match(String(e), /perNeuronBps.*cosmoothing/);
  e = await readEvalDetail(join(dir, 'missing.json')).catch((x: Error) => x);
  assert.match(String(e), /missing\.json: cannot read .*ENOENT/);
  const bad = detail();
  bad.raster!.predicted = [[1], [1], [1]];
  const w = await writeEvalDetail(join(dir, 'y.json'), bad).then(() => null, (x: Error) => x);
  assert.match(String(w), /raster\.predicted\[0\] has 1 bins/);
});

test('evalDetailFromTasks: per-neuron bps (NaN -> null) and the raster averaged over the task rows', () => {
  // 3 trials x 2 bins x 2 neurons; the task evaluated trials 0 and 2.
  const counts = Int32Array.from([1, 0, 2, 0, 9, 9, 9, 9, 3, 4, 0, 2]);
  const trueRates = Float32Array.from([1, 1, 2, 2, 0, 0, 0, 0, 3, 3, 4, 4]);
  const s = { sessionId: 's', binSizeMs: 20, windowS: [-0.5, -0.46], nTrials: 3, nBins: 2, nNeurons: 2, counts, trueRates } as unknown as BinnedSession;
  const predicted = Float32Array.from([0, Math.log(2), NaN, Math.log(4), 0, Math.log(2), Math.log(3), Math.log(4)]);
  const result = { rows: Int32Array.from([0, 2]), predicted, bps: { perNeuron: Float64Array.from([0.25, NaN]) } } as unknown as TaskResult;
  const oracle = { bps: { perNeuron: Float64Array.from([0.5, 0.1]) } } as unknown as OracleResult;
  const skipped = { skipped: 'only one region', bps: { perNeuron: new Float64Array(2) } } as unknown as TaskResult;
  const d = evalDetailFromTasks(s, 'mtm', ['CA1', 'LP'], { coSmoothing: result, interRegion: skipped }, { coSmoothing: oracle });
  assert.equal(d.perNeuronBps, { co_smoothing: [0.25, null] });
  assert.equal(d.perNeuronOracleBps, { co_smoothing: [0.5, 0.1] });
  assert.is(d.raster!.trials, 2);
  assert.is(d.raster!.windowStartS, -0.5);
  assert.equal(d.raster!.observed, [[2, 1], [2, 1]]);
  assert.equal(d.raster!.trueRates, [[2, 3], [2, 3]]);
  const p = d.raster!.predicted.map((row) => row.map((v) => Number(v!.toFixed(5)))); // float32 log-rates
  assert.equal(p, [[1, 3], [2, 4]], 'exp of log-rates, NaN entries skipped');
});

test('withUnitSpread: quantiles over every unit of every session, excluded units skipped, a repeated file read once', () => {
  const m = (sessionId: string, values: Record<string, number>) => ({ kind: 'metrics' as const, sessionId, label: 'mtm', values });
  const summary = summarise([
    m('s1', { co_smoothing_bps: -9.9, co_smoothing_evaluated: 3, co_smoothing_silent: 1, co_smoothing_unscored: 0, co_smoothing_excluded: 1, co_smoothing_bps_q50: 0.05 }),
    m('s2', { co_smoothing_bps: 0.2, co_smoothing_evaluated: 2, co_smoothing_silent: 0, co_smoothing_unscored: 0, co_smoothing_excluded: 0, co_smoothing_bps_q50: 0.2 }),
  ]);
  assert.is(summary.spread.mtm.co_smoothing!.quantilesOver, 'sessions');
  assert.ok(Math.abs(summary.spread.mtm.co_smoothing!.quantiles.q50! - 0.125) < 1e-12, 'from metrics: the mean of the session medians');
  const one = (sessionId: string, v: (number | null)[]): EvalDetail => ({ ...detail(), sessionId, regions: v.map(() => 'CA1'), perNeuronBps: { co_smoothing: v }, perNeuronOracleBps: undefined, raster: undefined });
  // s1: one unit far below the others (-30), one silent (null); s2: two good units. s1 arrives twice.
  const s1 = one('s1', [-30, 0.1, null, 0.3]);
  withUnitSpread(summary, [s1, s1, one('s2', [0.2, 0.4])]);
  const sp = summary.spread.mtm.co_smoothing!;
  assert.is(sp.quantilesOver, 'units');
  // Units: -30, 0.1, 0.2, 0.3, 0.4 -> median 0.2, 25 % 0.1, 10 % -30 + 0.4 (0.1 + 30) = -17.96.
  assert.ok(Math.abs(sp.quantiles.q50! - 0.2) < 1e-12);
  assert.ok(Math.abs(sp.quantiles.q25! - 0.1) < 1e-12);
  assert.ok(Math.abs(sp.quantiles.q10! - -17.96) < 1e-9);
  assert.ok(Math.abs(sp.quantiles.q90! - 0.36) < 1e-12);
  assert.equal([sp.scored, sp.silent, sp.excluded], [5, 1, 1], 'counts as the metrics summed them');
  assert.ok(Math.abs(sp.mean! - (-9.9 + 0.2) / 2) < 1e-12, 'the mean stays the headline mean over sessions');
  // A label the metrics never mentioned still gets its spread from its detail files.
  withUnitSpread(summary, [{ ...one('s1', [1, 2, 3]), label: 'other' }]);
  assert.equal([summary.spread.other.co_smoothing!.scored, summary.spread.other.co_smoothing!.quantiles.q50], [3, 2]);
});

test.run();
