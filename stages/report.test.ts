import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { report, type ReportRef } from './report.ts';
import { checkStageDescriptor } from '../core/registry.ts';
import { runStage, tempDir, testContext } from '../core/testing.ts';
import { CORE_KEYS, fmt, QUANTILE_KEYS, TASKS } from '../core/report/summary.ts';
import { EVAL_DETAIL_FORMAT, evalDetailFileName, writeEvalDetail } from '../core/report/detail.ts';
import type { Artifact, Metrics } from '../core/payloads.ts';

const LABELS = ['mtm', 'temporal'];
const SESSIONS = ['sessA', 'sessB'];

/** Synthetic evaluation and training metrics; `better` gets the higher activity and behaviour numbers. */
function metrics(better: string): Metrics[] {
  const items: Metrics[] = [];
  for (const label of LABELS) {
    for (let e = 1; e <= 3; e++) {
      items.push({ kind: 'metrics', sessionId: 'all', label, values: { epoch: e, step: 4 * e, trainLoss: 0.4 / e, valLoss: 0.45 / e, lr: 1e-3, gradNormMean: 1, seconds: 1.5, best: e === 3 ? 1 : 0 } });
    }
    SESSIONS.forEach((sessionId, si) => {
      const up = label === better ? 0.05 : 0;
      const values: Record<string, number> = { choice_accuracy: 0.7 + up, choice_chance: 0.55, wme_r2: 0.2 + up, wheel_r2: 0.1 + up, evaluation_seconds: 2 };
      TASKS.forEach((t, ti) => {
        values[`${t}_bps`] = 0.1 + 0.01 * ti + 0.005 * si + up;
        values[`${t}_bps_pooled`] = 0.12 + 0.01 * ti + up;
        values[`${t}_oracle_bps`] = 0.3;
        values[`${t}_oracle_bps_pooled`] = 0.32;
        // As the evaluator sends them: unit counts and per-session quantiles of the per-unit bps.
        Object.assign(values, { [`${t}_evaluated`]: 4, [`${t}_silent`]: 1, [`${t}_unscored`]: 0, [`${t}_excluded`]: 1 });
        QUANTILE_KEYS.forEach((q, qi) => (values[`${t}_bps_${q}`] = -0.2 + 0.1 * qi + 0.02 * si + up));
      });
      items.push({ kind: 'metrics', sessionId, label, values });
    });
  }
  return items;
}

async function details(dir: string): Promise<Artifact[]> {
  const regions = ['CA1', 'CA1', 'CA1', 'LP', 'LP'];
  const nBins = 40;
  const grid = (f: (n: number, b: number) => number) => regions.map((_, n) => Array.from({ length: nBins }, (_, b) => f(n, b)));
  const out: Artifact[] = [];
  for (const sessionId of SESSIONS) {
    for (const label of LABELS) {
      const path = join(dir, evalDetailFileName(sessionId, label));
      await writeEvalDetail(path, {
        format: EVAL_DETAIL_FORMAT, sessionId, label, binSizeMs: 20, regions,
        perNeuronBps: Object.fromEntries(TASKS.map((t) => [t, regions.map((_, n) => (n === 4 ? null : 0.05 * n - 0.02))])),
        perNeuronOracleBps: Object.fromEntries(TASKS.map((t) => [t, regions.map((_, n) => (n === 4 ? null : 0.05 * n + 0.1))])),
        raster: { task: 'co_smoothing', trials: 4, windowStartS: -0.2, observed: grid((n, b) => (n + 1) * 0.1 + 0.2 * Math.exp(-(((b - 15) / 6) ** 2))), predicted: grid((n) => (n + 1) * 0.1), trueRates: grid((n, b) => (n + 1) * 0.1 + 0.18 * Math.exp(-(((b - 15) / 6) ** 2))) },
      });
      if (label === 'mtm') out.push({ kind: 'artifact', path, description: 'evaluation detail' });
    }
  }
  // A folder artifact brings in the rest (the temporal files); the mtm files are not read twice.
  out.push({ kind: 'artifact', path: dir, description: 'evaluation folder' });
  return out;
}

test('descriptor passes the registry checks (defaults, descriptions, ports)', () => {
  checkStageDescriptor(report);
});

test('writes report.json with every key, report.md, and the four plots as SVG + PNG', async () => {
  const root = tempDir();
  const detailDir = tempDir();
  const out = await runStage(report, { outDir: 'report' }, { metrics: metrics('mtm'), details: await details(detailDir) }, testContext('report', 1, root));
  const ref = out.report[0] as ReportRef;
  assert.is(out.report.length, 1);
  assert.is(ref.path, join(root, 'report'));
  const json = JSON.parse(readFileSync(join(ref.path, 'report.json'), 'utf8'));
  assert.is(json.format, 'mtm-report@1');
  assert.ok('backend' in json);
  assert.equal(json.labels, LABELS);
  assert.equal(json.sessionIds, SESSIONS);
  const wanted = [...CORE_KEYS, 'wme_r2', 'wheel_r2', ...TASKS.flatMap((t) => [`${t}_oracle_bps`, `${t}_oracle_bps_pooled`, `${t}_oracle_ratio`, `${t}_oracle_ratio_pooled`])];
  for (const sid of SESSIONS) for (const l of LABELS) for (const k of wanted) assert.type(json.perSession[sid][l][k], 'number', `${sid} ${l} ${k}`);
  for (const l of LABELS) {
    for (const k of wanted) assert.type(json.mean[l][k], 'number', `mean ${l} ${k}`);
    assert.is(json.mean[l].sessions, 2);
  }
  assert.ok(Math.abs(json.mean.mtm.co_smoothing_bps - 0.1525) < 1e-12, 'mean over sessions');
  assert.ok(Math.abs(json.perSession.sessA.mtm.co_smoothing_oracle_ratio - 0.15 / 0.3) < 1e-12, 'ratio computed');
  assert.is(json.training.mtm.epochs, 3);
  assert.is(json.timings.training.mtm, 4.5);
  assert.is(json.timings.evaluation.temporal.evaluation_seconds, 4);
  assert.ok(json.comparisons.length >= 8);
  assert.equal(json.notes, []);
  for (const name of ['training-loss', 'bps-summary', 'per-neuron-bps', 'raster-CA1']) {
    assert.ok(json.plots.includes(`${name}.svg`), name);
    const svg = readFileSync(join(ref.path, `${name}.svg`), 'utf8');
    assert.ok(svg.startsWith('<svg'), `${name}.svg`);
    const png = readFileSync(join(ref.path, `${name}.png`));
    assert.is(png.toString('latin1', 1, 4), 'PNG');
    assert.ok(statSync(join(ref.path, `${name}.png`)).size > 10_000, `${name}.png is not trivial`);
    assert.ok(ref.files.includes(join(ref.path, `${name}.png`)));
  }
  // Per-neuron points: 2 sessions x 4 tasks x 4 neurons with spikes, for each model and once for the oracle.
  const perNeuron = readFileSync(join(ref.path, 'per-neuron-bps.svg'), 'utf8');
  assert.is(perNeuron.split('aria-roledescription="circle"').length - 1, 2 * 4 * 4 * 3);
  assert.ok(perNeuron.includes('>oracle (true rates)</text>'));
  // The raster shows observed, true rates and both models; region CA1 (most neurons) by default.
  const raster = readFileSync(join(ref.path, 'raster-CA1.svg'), 'utf8');
  for (const t of ['observed', 'true rates', 'mtm (co-smoothing)', 'temporal (co-smoothing)']) assert.ok(raster.includes(`>${t}</text>`), t);
  assert.is(raster.split('aria-roledescription="rect mark"').length - 1, 4 * 3 * 40, '4 panels x 3 CA1 neurons x 40 bins');

  const md = readFileSync(join(ref.path, 'report.md'), 'utf8');
  assert.match(md, /\| task \| mtm \| temporal \| oracle \|/);
  assert.match(md, /\| co-smoothing \| 0\.153 \| 0\.103 \| 0\.300 \|/);
  assert.match(md, /\| choice accuracy \| 0\.750 \| 0\.700 \| 0\.550 \|/);
  assert.match(md, /Co-smoothing bits\/spike \(per-neuron mean\): mtm is better than temporal by 0\.050/);
  assert.match(md, /Choice decoding accuracy: mtm is better than temporal by 0\.050/);
  assert.match(md, /!\[per-neuron bits\/spike by region\]\(per-neuron-bps\.svg\)/);

  // Spread over units: with detail files, quantiles over every scored unit of both sessions
  // (8 values per model and task: -0.02, 0.03, 0.08, 0.13 twice; numpy gives these quantiles).
  const sp = json.spread.mtm.co_smoothing;
  assert.is(sp.quantilesOver, 'units');
  [-0.02, 0.0175, 0.055, 0.0925, 0.13].forEach((v, i) => assert.ok(Math.abs(sp.quantiles[QUANTILE_KEYS[i]] - v) < 1e-9, `${QUANTILE_KEYS[i]} ${sp.quantiles[QUANTILE_KEYS[i]]} vs ${v}`));
  assert.equal([sp.scored, sp.silent, sp.unscored, sp.excluded], [8, 2, 0, 2], 'unit counts summed over the two sessions');
  assert.ok(Math.abs(sp.mean - 0.1525) < 1e-12, 'the mean is the headline per-neuron mean');
  assert.match(md, /\| task \| model \| units scored \| excluded: no test spikes \| mean \| 10 % \| 25 % \| median \| 75 % \| 90 % \|/);
  assert.match(md, '| co-smoothing | mtm | 8 | 2 | 0.153 | -0.020 | 0.018 | 0.055 | 0.092 | 0.130 |');
  assert.match(md, /over every scored unit/);
  assert.match(md, /Co-smoothing bits\/spike \(per-neuron median\)/);
});

test('spread without detail files: mean of the sessions\' quantiles, said so; counts summed', async () => {
  const root = tempDir();
  await runStage(report, { png: false }, { metrics: metrics('mtm') }, testContext('report', 1, root));
  const json = JSON.parse(readFileSync(join(root, 'report.json'), 'utf8'));
  const sp = json.spread.temporal.intra_region;
  assert.is(sp.quantilesOver, 'sessions');
  // Per session q_i = -0.2 + 0.1 i + 0.02 si: the mean over sessions 0 and 1 adds 0.01.
  QUANTILE_KEYS.forEach((q, i) => assert.ok(Math.abs(sp.quantiles[q] - (-0.19 + 0.1 * i)) < 1e-12, q));
  assert.equal([sp.scored, sp.silent, sp.excluded], [8, 2, 2]);
  const md = readFileSync(join(root, 'report.md'), 'utf8');
  assert.match(md, /each quantile the mean of the sessions' quantiles/);
  assert.match(md, '| intra-region | temporal | 8 | 2 | ' + fmt(json.mean.temporal.intra_region_bps) + ' | -0.190 | -0.090 | 0.010 | 0.110 | 0.210 |');
  // The medians are compared too, and follow the numbers.
  const median = json.comparisons.find((c: { key: string }) => c.key === 'co_smoothing_bps_q50');
  assert.equal(median.ranking.map((r: { label: string }) => r.label), ['mtm', 'temporal']);
});

test('the sentences flip when the numbers do; missing details are said, not hidden', async () => {
  const root = tempDir();
  const out = await runStage(report, { png: false }, { metrics: metrics('temporal') }, testContext('report', 1, root));
  const ref = out.report[0] as ReportRef;
  assert.is(ref.path, root);
  const md = readFileSync(join(root, 'report.md'), 'utf8');
  assert.match(md, /Co-smoothing bits\/spike \(per-neuron mean\): temporal is better than mtm by 0\.050/);
  assert.match(md, /Wheel speed R²: temporal is better than mtm by 0\.050/);
  assert.not.match(md, /mtm is better than temporal/);
  assert.match(md, /no evaluation detail files/);
  const json = JSON.parse(readFileSync(join(root, 'report.json'), 'utf8'));
  assert.equal(json.plots, ['training-loss.svg', 'bps-summary.svg']);
  assert.not.ok(existsSync(join(root, 'training-loss.png')), 'png: false');
});

test('order puts the named models first in tables and report.json', async () => {
  const root = tempDir();
  await runStage(report, { png: false, order: ['temporal'] }, { metrics: metrics('mtm') }, testContext('report', 1, root));
  const json = JSON.parse(readFileSync(join(root, 'report.json'), 'utf8'));
  assert.equal(json.labels, ['temporal', 'mtm']);
  const md = readFileSync(join(root, 'report.md'), 'utf8');
  assert.match(md, '| task | temporal | mtm | oracle |');
});

test('training only: loss curves, core keys absent with no evaluation, and a clear note', async () => {
  const root = tempDir();
  const only = metrics('mtm').filter((m) => m.sessionId === 'all');
  await runStage(report, { png: false }, { metrics: only }, testContext('report', 1, root));
  const md = readFileSync(join(root, 'report.md'), 'utf8');
  assert.match(md, /No evaluation metrics arrived/);
  assert.match(md, /\| mtm \| 3 \| 3 \| 0\.1333 \| 0\.1500 \| 4\.5 \|/);
});

test('a bad detail artifact names the file', async () => {
  const dir = tempDir();
  const f = join(dir, 'bad.eval-detail.json');
  (await import('node:fs')).writeFileSync(f, '{"format":"mtm-eval-detail@1"}');
  let err: Error | null = null;
  try {
    await runStage(report, { png: false }, { metrics: metrics('mtm'), details: [{ kind: 'artifact', path: f, description: 'x' }] }, testContext('report', 1, tempDir()));
  } catch (e) {
    err = e as Error;
  }
  assert.match(String(err), /bad\.eval-detail\.json: not a valid mtm-eval-detail@1 file/);
});

test.run();
