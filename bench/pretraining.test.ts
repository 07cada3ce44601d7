import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { byLabel, claims, pairedGap, parseArgs } from './pretraining.ts';

const point = (label: string, series: string, x: number | string, cos: number) => ({
  label, series, x, values: { co_smoothing_bps: { mean: cos, perSession: {} }, forward_prediction_bps: { mean: cos / 2, perSession: {} } },
});

test('parseArgs: defaults, seeds and split, and clear errors', () => {
  const d = parseArgs([]);
  assert.equal(d.seeds, [1, 2, 3]);
  assert.equal(d.graphs, ['scaling', 'fewshot']);
  assert.is(d.split, 'test');
  const o = parseArgs(['--seeds', '4,5', '--split', 'val', '--set', 'pretrainEpochs=9', '--graphs', 'fewshot']);
  assert.equal(o.seeds, [4, 5]);
  assert.is(o.split, 'val');
  assert.equal(o.sets, ['pretrainEpochs=9']);
  assert.throws(() => parseArgs(['--split', 'train']), /--split must be test or val/);
  assert.throws(() => parseArgs(['--graphs', 'ablation']), /scaling and\/or fewshot/);
  assert.throws(() => parseArgs(['--seeds']), /--seeds needs a value/);
});

test('pairedGap: per-seed differences, ahead beyond their spread only when the mean clears the sd', () => {
  const runs = [
    [point('a', 's', 1, 0.3), point('b', 's', 0, 0.1)],
    [point('a', 's', 1, 0.25), point('b', 's', 0, 0.2)],
    [point('a', 's', 1, 0.4), point('b', 's', 0, 0.1)],
  ];
  const g = pairedGap(runs, 'a', 'b', 'co_smoothing_bps');
  assert.equal(g.difference.values, [0.2, 0.05, 0.3]);
  assert.ok(Math.abs(g.difference.mean - 0.18333) < 1e-4);
  assert.ok(g.aheadBeyondSpread);
  assert.ok(g.aheadEverySeed);
  // A noisy gap: positive mean but smaller than its sd.
  const noisy = pairedGap([[point('a', 's', 1, 0.5), point('b', 's', 0, 0)], [point('a', 's', 1, 0), point('b', 's', 0, 0.4)]], 'a', 'b', 'co_smoothing_bps');
  assert.is(noisy.aheadBeyondSpread, false);
  assert.is(noisy.aheadEverySeed, false);
});

test('claims: scaling names the largest set against scratch and checks every fine-tuned model; few-shot pairs each k', () => {
  const scaling = [0, 1].map((i) => [
    point('mtm-n0', 'mtm', 0, 0.1 + i * 0.01), point('mtm-n8', 'mtm', 8, 0.2), point('mtm-n1', 'mtm', 1, -0.01 + i * 0.02),
    point('temporal-n0', 'temporal', 0, 0.1), point('temporal-n8', 'temporal', 8, 0.12),
  ]);
  const c = claims('scaling', scaling, { large: 8 }) as ReturnType<typeof claims> & Record<string, any>;
  assert.is(c.mtmLargeVsScratch.a, 'mtm-n8');
  assert.is(c.mtmLargeVsScratch.aheadBeyondSpread, true);
  assert.equal(Object.keys(c.fineTunedAboveZero).sort(), ['mtm-n1', 'mtm-n8', 'temporal-n8']);
  assert.is(c.fineTunedAboveZero['mtm-n1'].aboveZeroEverySeed, false);
  assert.is(c.fineTunedAboveZero['mtm-n8'].aboveZeroEverySeed, true);
  const fewshot = [[point('pretrained-k8', 'pretrained', 8, 0.1), point('scratch-k8', 'scratch', 8, 0.2)]];
  const f = claims('fewshot', fewshot, {}) as Record<string, any>;
  assert.is(f.k8.co_smoothing_bps.difference.mean, -0.1);
  assert.is(f.k8.co_smoothing_bps.aheadBeyondSpread, false);
  const table = byLabel(fewshot);
  assert.is(table['scratch-k8'].forward_prediction_bps.mean, 0.1);
});

test.run();
