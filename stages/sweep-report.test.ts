import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checkStageDescriptor } from '../core/registry.ts';
import { runStage, tempDir, testContext } from '../core/testing.ts';
import type { Metrics } from '../core/payloads.ts';
import { sweepReport } from './sweep-report.ts';
import type { ReportRef } from './report.ts';

const ev = (sessionId: string, label: string, values: Record<string, number>): Metrics => ({ kind: 'metrics', sessionId, label, values });
const metrics: Metrics[] = [];
for (const k of ['8', '32', 'all']) {
  for (const sid of ['s1', 's2']) {
    const more = k === 'all' ? 0.05 : Number(k) / 1000;
    metrics.push(ev(sid, `pretrained-k${k}`, { co_smoothing_bps: 0.1 + more, forward_prediction_bps: 0.02, choice_accuracy: 0.8, wme_r2: 0.3 }));
    metrics.push(ev(sid, `scratch-k${k}`, { co_smoothing_bps: 0.05 + more, forward_prediction_bps: 0.03, choice_accuracy: 0.7, wme_r2: 0.2 }));
  }
}
metrics.push({ kind: 'metrics', sessionId: 'all', label: 'scratch-k8', values: { epoch: 1, trainLoss: 0.4 } });

async function run(params: Record<string, unknown>, items: Metrics[] = metrics): Promise<{ ref: ReportRef; root: string }> {
  const root = tempDir();
  const out = await runStage(sweepReport, params, { metrics: items }, testContext('sweep', 1, root));
  return { ref: (out.report as ReportRef[])[0], root };
}

test('descriptor', () => {
  checkStageDescriptor(sweepReport);
  assert.ok(sweepReport.inputs.metrics.collect);
});

test('writes sweep.json with every (series, x), sweep.md and a plot per metric plus the panels, SVG and PNG', async () => {
  const { ref, root } = await run({ pattern: '^(?<series>.+)-k(?<x>[^-]+)$', xTitle: 'trials per session (k)', outDir: 'fewshot', title: 'Few-shot' });
  const dir = join(root, 'fewshot');
  assert.is(ref.path, dir);
  const json = JSON.parse(readFileSync(join(dir, 'sweep.json'), 'utf8'));
  assert.is(json.format, 'mtm-sweep@1');
  assert.equal(json.series, ['pretrained', 'scratch']);
  assert.equal(json.xs, [8, 32, 'all']);
  assert.equal(json.points.map((p: { series: string; x: unknown }) => `${p.series}@${p.x}`), ['pretrained@8', 'pretrained@32', 'pretrained@all', 'scratch@8', 'scratch@32', 'scratch@all']);
  assert.ok(Math.abs(json.points[1].values.co_smoothing_bps.mean - 0.132) < 1e-12);
  assert.equal(Object.keys(json.points[0].values.co_smoothing_bps.perSession), ['s1', 's2']);
  assert.equal(json.metrics, ['co_smoothing_bps', 'forward_prediction_bps', 'choice_accuracy', 'wme_r2']);
  assert.equal(json.missingMetrics, ['intra_region_bps', 'inter_region_bps']);
  assert.match(json.leads.forward_prediction_bps.sentence, /at x = 8 scratch leads pretrained by 0\.010/);
  const files = ['sweep.json', 'sweep.md', 'sweep.svg', 'sweep.png', ...json.metrics.flatMap((m: string) => [`sweep-${m}.svg`, `sweep-${m}.png`])];
  assert.equal([...readdirSync(dir)].sort(), [...files].sort());
  assert.equal(ref.files.map((f) => f.slice(dir.length + 1)).sort(), [...files].sort());
  for (const f of files) assert.ok(statSync(join(dir, f)).size > 200, f);
  assert.equal([...readFileSync(join(dir, 'sweep.png')).subarray(1, 4)].map((b) => String.fromCharCode(b)).join(''), 'PNG');
  const md = readFileSync(join(dir, 'sweep.md'), 'utf8');
  assert.ok(md.includes('| trials per session (k) | pretrained | scratch |'));
  assert.ok(md.includes(json.leads.co_smoothing_bps.sentence));
});

test('png off writes SVG only, into the run folder by default', async () => {
  const { root } = await run({ pattern: '^(?<series>.+)-k(?<x>[^-]+)$', png: false, metrics: ['co_smoothing_bps'] });
  assert.ok(existsSync(join(root, 'sweep.svg')) && existsSync(join(root, 'sweep-co_smoothing_bps.svg')));
  assert.not.ok(existsSync(join(root, 'sweep.png')));
});

test('errors name the node: a pattern without groups at create, labels that never match at run', async () => {
  assert.throws(() => sweepReport.create(sweepReport.params.parse({ pattern: '^(.+)-n(\\d+)$' }), testContext('sweep')), /sweep-report 'sweep': pattern .* has no named group \(\?<series>/);
  await run({}).then(
    () => assert.unreachable('default pattern <series>-n<x> matches none of the -k labels'),
    (e: Error) => assert.match(e.message, /sweep-report 'sweep': no evaluated model label matches the pattern .*; labels: pretrained-k8, scratch-k8/),
  );
});

test.run();
