import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bySeed, claims, parseArgs, type EvalRow } from './quickstart.ts';

const row = (sessionId: string, label: string, cos: number, fwd: number, intra: number, inter: number, oracle = 0.5): EvalRow => ({
  sessionId, label,
  co_smoothing_bps: cos, forward_prediction_bps: fwd, intra_region_bps: intra, inter_region_bps: inter,
  co_smoothing_oracle_bps: oracle, forward_prediction_oracle_bps: oracle / 2, intra_region_oracle_bps: oracle, inter_region_oracle_bps: oracle,
});

test('parseArgs: defaults, seeds, split and sets; clear errors', () => {
  const d = parseArgs([]);
  assert.equal(d.seeds, [1, 2, 3]);
  assert.is(d.split, 'test');
  assert.equal(d.sets, []);
  const o = parseArgs(['--seeds', '4,5', '--split', 'val', '--set', 'epochs=9', '--set', 'batchSize=4', '--checkout']);
  assert.equal(o.seeds, [4, 5]);
  assert.is(o.split, 'val');
  assert.equal(o.sets, ['epochs=9', 'batchSize=4']);
  assert.ok(o.checkout);
  assert.throws(() => parseArgs(['--split', 'train']), /--split must be test or val/);
  assert.throws(() => parseArgs(['--seeds', '1,x']), /--seeds must be non-negative integers/);
  assert.throws(() => parseArgs(['--nope']), /nope/);
});

test('claims: per task and session MtM at or above temporal (ties count), forecasts above zero, share of the oracle', () => {
  const runs = [
    { seed: 1, rows: [row('a', 'mtm', 0.3, 0.1, 0.3, 0.2), row('a', 'temporal', 0.2, 0.1, 0.1, 0.1), row('b', 'mtm', 0.2, -0.05, 0.2, 0.2, 0.4), row('b', 'temporal', 0.25, 0.02, 0.1, 0.1, 0.4)] },
    { seed: 2, rows: [row('c', 'mtm', 0.4, 0.2, 0.3, 0.3), row('c', 'temporal', 0.1, 0.1, 0.1, 0.1)] },
  ];
  const c = claims(runs);
  assert.is(c.perTask.co_smoothing_bps.sessions, 3);
  assert.is(c.perTask.co_smoothing_bps.aAtOrAbove, 2, 'session b: 0.20 < 0.25');
  assert.is(c.perTask.forward_prediction_bps.aAtOrAbove, 2, 'a tie counts as at or above');
  assert.is(c.perTask.intra_region_bps.aAtOrAbove, 3);
  assert.ok(Math.abs(c.perTask.intra_region_bps.gap.mean - (0.2 + 0.1 + 0.2) / 3) < 1e-4);
  assert.is(c.aAtOrAboveOnEveryTaskAndSession, false);
  assert.equal(c.forwardAboveZero, { mtm: { sessions: 3, aboveZero: 2 }, temporal: { sessions: 3, aboveZero: 3 } });
  assert.equal(c.coSmoothingShareOfOracle.map((x) => x.share), [0.6, 0.5, 0.8]);
  // A session that lacks one of the two models is left out of the pairs, not scored as a loss.
  const partial = claims([{ seed: 1, rows: [row('a', 'mtm', 0.3, 0.1, 0.3, 0.2)] }]);
  assert.is(partial.perTask.co_smoothing_bps.sessions, 0);
  assert.is(partial.aAtOrAboveOnEveryTaskAndSession, false);
});

test('bySeed: each seed is the mean over its sessions, then mean and sd over seeds', () => {
  const runs = [
    { rows: [row('a', 'mtm', 0.2, 0, 0, 0), row('b', 'mtm', 0.4, 0, 0, 0)] },
    { rows: [row('c', 'mtm', 0.5, 0, 0, 0)] },
  ];
  const s = bySeed(runs).mtm.co_smoothing_bps;
  assert.equal(s.values, [0.3, 0.5]);
  assert.ok(Math.abs(s.mean - 0.4) < 1e-9);
  assert.ok(Math.abs(s.sd - Math.SQRT2 * 0.1) < 1e-5);
});

test.run();
