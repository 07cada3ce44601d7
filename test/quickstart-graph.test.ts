// graphs/quickstart.yaml end to end as the README runs it, with small sizes: simulate -> bin ->
// label -> NDT1 with MtM and with temporal masking -> evaluate -> report. Checks that `mtm run`
// points at the report and that the report holds every docs/method.md §6.2 key, the oracle ratios and the plots.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../core/testing.ts';

const root = join(import.meta.dirname, '..');

test('graphs/quickstart.yaml: both models trained, evaluated and reported', () => {
  const out = join(tempDir(), 'quickstart');
  const sets = ['sessions=1', 'trials=[70,80]', 'neurons=[30,36]', 'epochs=2', 'evaluate.maxLeftOutNeurons=6', 'evaluate.decodingFolds=2'];
  const r = spawnSync(process.execPath, ['bin/mtm.js', 'run', 'graphs/quickstart.yaml', '--out', out, ...sets.flatMap((s) => ['--set', s])], {
    cwd: root, encoding: 'utf8', env: { ...process.env, CI: 'true' }, timeout: 10 * 60_000,
  });
  assert.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
  const reportMd = join(out, 'report', 'report.md');
  assert.match(r.stdout, `report: ${reportMd}`, 'mtm run prints where the report is');
  assert.match(r.stdout, `completed: ${out}`);

  const rep = JSON.parse(readFileSync(join(out, 'report', 'report.json'), 'utf8'));
  assert.equal([...rep.labels].sort(), ['mtm', 'temporal']);
  assert.is(rep.sessionIds.length, 1);
  const sid = rep.sessionIds[0];
  const keys = ['co_smoothing_bps', 'forward_prediction_bps', 'intra_region_bps', 'inter_region_bps'];
  for (const label of ['mtm', 'temporal']) {
    const s = rep.perSession[sid][label];
    const m = rep.mean[label];
    for (const k of [...keys, ...keys.map((k) => `${k}_pooled`), 'choice_accuracy', 'wme_r2', 'wheel_r2']) {
      assert.type(s[k], 'number', `${label} ${k} per session`);
      assert.ok(Number.isFinite(m[k]), `${label} ${k} mean`);
    }
    for (const t of ['co_smoothing', 'forward_prediction', 'intra_region', 'inter_region']) {
      const ratio = s[`${t}_oracle_ratio`];
      assert.ok(Number.isFinite(ratio), `${label} ${t} oracle ratio`);
      assert.ok(Math.abs(ratio - s[`${t}_bps`] / rep.oracle[t].bps) < 1e-9 || rep.oracle[t].bps <= 0, `${label} ${t}: ratio = model / oracle`);
    }
    assert.ok(rep.training[label].epochs === 2, `${label} training history`);
  }
  // The oracle of the simulated session's true rates is in the report, and positive.
  for (const t of ['co_smoothing', 'forward_prediction', 'intra_region', 'inter_region']) assert.ok(rep.oracle[t].bps > 0, `oracle ${t}`);
  assert.ok(rep.backend.length > 0);
  assert.ok(rep.comparisons.length > 0, 'MtM vs temporal comparisons');

  const files = readdirSync(join(out, 'report'));
  for (const base of ['training-loss', 'per-neuron-bps', 'bps-summary']) {
    assert.ok(files.includes(`${base}.svg`) && files.includes(`${base}.png`), `${base} plot`);
  }
  assert.ok(files.some((f) => /^raster-.+\.svg$/.test(f)), 'raster plot of one region');
  const md = readFileSync(reportMd, 'utf8');
  assert.match(md, /co-smoothing/);
  assert.match(md, /mtm/);
  assert.match(md, /temporal/);
  // The recipe, budget and seed the models ran with, read back from the resolved graph.
  assert.match(md, '## Recipe and budget');
  assert.match(md, /\| mtm \| ndt1 .* \| mtm masking, 2 epochs of batch/);
  assert.match(md, /\| temporal \| ndt1 .* \| temporal masking, 2 epochs of batch/);
  assert.match(md, /2 epochs, \d+ steps, \d+ s of training/);
  assert.match(md, /Graph seed: \d+/);
  // Both models are saved in the tfjs layout.
  for (const node of ['mtm', 'temporal']) assert.ok(existsSync(join(out, 'artifacts', node, 'best', 'model.json')), `${node} model saved`);
});

test.run();
