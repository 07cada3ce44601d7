import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Metrics } from '../payloads.ts';
import { buildSweep, DEFAULT_SWEEP_PATTERN, orderXs, parseSweepLabel, sweepLeads, sweepMarkdown, sweepMetricPlot, sweepPanelsPlot, sweepPattern, sweepSentence } from './sweep.ts';

const ev = (sessionId: string, label: string, values: Record<string, number>): Metrics => ({ kind: 'metrics', sessionId, label, values });

/** mtm and temporal at n = 1, 4, 8 on two sessions; mtm co-smoothing = 0.1 + 0.01 n (+0.002 on sB), temporal 0.09 + 0.005 n. */
function items(): Metrics[] {
  const out: Metrics[] = [];
  for (const n of [8, 1, 4]) {
    for (const sid of ['sA', 'sB']) {
      const bump = sid === 'sB' ? 0.002 : 0;
      out.push(ev(sid, `mtm-n${n}`, { co_smoothing_bps: 0.1 + 0.01 * n + bump, choice_accuracy: 0.7, oracle_co_smoothing_bps: sid === 'sA' ? 0.3 : 0.5 }));
      out.push(ev(sid, `temporal-n${n}`, { co_smoothing_bps: 0.09 + 0.005 * n + bump, choice_accuracy: 0.75 }));
    }
  }
  // A separate item for the same (session, label) is merged; a training item and an unmatched label are not points.
  out.push(ev('sA', 'mtm-n1', { wme_r2: 0.4 }));
  out.push({ kind: 'metrics', sessionId: 'all', label: 'mtm-n1', values: { epoch: 1, trainLoss: 0.5 } });
  out.push(ev('sA', 'pretrained', { co_smoothing_bps: 9 }));
  return out;
}

const close = (a: number | null, b: number) => a !== null && Math.abs(a - b) < 1e-12;

test('labels: the default pattern reads <series>-n<x>; numbers stay numbers, words stay words', () => {
  const re = sweepPattern(DEFAULT_SWEEP_PATTERN);
  assert.equal(parseSweepLabel('mtm-n4', re), { series: 'mtm', x: 4 });
  assert.equal(parseSweepLabel('mtm-scratch-n16', re), { series: 'mtm-scratch', x: 16 });
  assert.equal(parseSweepLabel('temporal-n0.5', re), { series: 'temporal', x: 0.5 });
  assert.is(parseSweepLabel('pretrained', re), undefined);
  assert.is(parseSweepLabel('mtm-n', re), undefined);
  const k = sweepPattern('^(?<series>.+)-k(?<x>[^-]+)$');
  assert.equal(parseSweepLabel('scratch-kall', k), { series: 'scratch', x: 'all' });
  assert.equal(orderXs([32, 'all', 8, 32, 'half']), [8, 32, 'all', 'half']);
  assert.throws(() => sweepPattern('^(?<series>.+)-n(\\d+)$'), /has no named group \(\?<x>\.\.\.\)/);
  assert.throws(() => sweepPattern('(?<series>(?<x>'), /is not a regular expression/);
});

test('aggregation: mean over sessions and each session per (series, x, metric); items merged; others left out', () => {
  const d = buildSweep(items(), { metrics: ['co_smoothing_bps', 'choice_accuracy', 'wme_r2', 'wheel_r2'], xTitle: 'pretraining sessions' });
  assert.equal(d.series, ['mtm', 'temporal']);
  assert.equal(d.xs, [1, 4, 8]);
  assert.ok(d.numericX);
  assert.equal(d.sessions, ['sA', 'sB']);
  assert.equal(d.unmatched, ['pretrained']);
  assert.equal(d.metrics, ['co_smoothing_bps', 'choice_accuracy', 'wme_r2']);
  assert.equal(d.missingMetrics, ['wheel_r2']);
  assert.equal(d.points.map((p) => `${p.series}@${p.x}`), ['mtm@1', 'mtm@4', 'mtm@8', 'temporal@1', 'temporal@4', 'temporal@8']);
  const m4 = d.points.find((p) => p.label === 'mtm-n4')!.values.co_smoothing_bps;
  assert.ok(close(m4.mean, 0.141), `mean ${m4.mean}`);
  assert.is(m4.sessions, 2);
  assert.ok(close(m4.perSession.sA, 0.14) && close(m4.perSession.sB, 0.142));
  const wme = d.points.find((p) => p.label === 'mtm-n1')!.values.wme_r2;
  assert.equal([wme.mean, wme.sessions, wme.perSession], [0.4, 1, { sA: 0.4, sB: null }]);
  assert.ok(close(d.oracle.co_smoothing_bps, 0.4), 'oracle: mean over sessions');
});

test('leads and sentences are computed: swapping the series swaps the words', () => {
  const d = buildSweep(items(), { metrics: ['co_smoothing_bps', 'choice_accuracy'] });
  const leads = sweepLeads(d, 'co_smoothing_bps');
  assert.equal(leads.map((l) => l.ranking[0].series), ['mtm', 'mtm', 'mtm']);
  assert.ok(close(leads[2].margin, 0.18 - 0.13));
  assert.equal([leads[0].sessionsAhead, leads[0].sessionsCompared], [2, 2]);
  const s = sweepSentence(d, 'co_smoothing_bps');
  assert.match(s, /^Co-smoothing bits\/spike \(per-neuron mean\): at x = 1 mtm leads temporal by 0\.015 \(0\.111 vs 0\.096, ahead on 2 of 2 sessions\)/);
  assert.match(s, /Overall: mtm ahead at 3 of 3 x values and temporal ahead at 0 of 3 x values\./);
  assert.match(s, /From x = 1 to 8: mtm 0\.111 → 0\.181 \(\+0\.070\) and temporal 0\.096 → 0\.131 \(\+0\.035\)\.$/);
  assert.match(sweepSentence(d, 'choice_accuracy'), /at x = 1 temporal leads mtm by 0\.050 \(0\.750 vs 0\.700/);
  const swapped = buildSweep(
    items().map((m) => ({ ...m, label: m.label?.replace(/^mtm/, 'X').replace(/^temporal/, 'mtm').replace(/^X/, 'temporal') })),
    { metrics: ['co_smoothing_bps'] },
  );
  assert.match(sweepSentence(swapped, 'co_smoothing_bps'), /at x = 1 temporal leads mtm by 0\.015/);
  // Equal to 3 decimals is called level, not a lead.
  const level = buildSweep([ev('s', 'a-n1', { co_smoothing_bps: 0.1001 }), ev('s', 'b-n1', { co_smoothing_bps: 0.1002 })], { metrics: ['co_smoothing_bps'] });
  assert.match(sweepSentence(level, 'co_smoothing_bps'), /at x = 1 b and a are level to 3 decimals \(0\.100\)\.$/);
});

test('series order: alphabetical whatever the arrival order, or as named', () => {
  const rev = [...items()].reverse();
  assert.equal(buildSweep(rev).series, ['mtm', 'temporal']);
  assert.equal(buildSweep(items(), { seriesOrder: ['temporal'] }).series, ['temporal', 'mtm']);
  assert.equal(buildSweep(rev).points.map((p) => p.label), buildSweep(items()).points.map((p) => p.label));
});

test('errors: no label matches, or two labels are one point', () => {
  assert.throws(() => buildSweep([ev('s', 'mtm', { co_smoothing_bps: 1 })]), /no evaluated model label matches the pattern .*; labels: mtm/);
  assert.throws(() => buildSweep([]), /no evaluation metrics arrived/);
  assert.throws(() => buildSweep([ev('s', 'mtm-n4', { co_smoothing_bps: 1 }), ev('s', 'mtm-n04', { co_smoothing_bps: 1 })]), /labels 'mtm-n4' and 'mtm-n04' are the same sweep point \(series mtm, x 4\)/);
});

/** Well-formed XML with a root <svg> (every tag closed in order). */
function checkSvg(svg: string): void {
  assert.ok(svg.startsWith('<svg'));
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([A-Za-z][\w:-]*)[^>]*?(\/?)>/g)) {
    const [, closing, name, self] = m;
    if (self) continue;
    if (closing) assert.is(stack.pop(), name);
    else stack.push(name);
  }
  assert.equal(stack, []);
}
const count = (svg: string, s: string) => svg.split(s).length - 1;

test('plots: a line per series, a dot per (session, point); panels per metric; ordinal axis for word x', async () => {
  const d = buildSweep(items(), { metrics: ['co_smoothing_bps', 'choice_accuracy'], xTitle: 'pretraining sessions' });
  const one = await sweepMetricPlot(d, 'co_smoothing_bps', { title: 'Scaling' });
  checkSvg(one);
  assert.ok(one.includes('>co-smoothing bits/spike (per-neuron mean)</text>') && one.includes('<tspan>Scaling</tspan>'), 'metric as title, the sweep title under it');
  assert.is(count(one, 'aria-roledescription="line mark"'), 2, 'one line per series');
  assert.is(count(one, 'aria-roledescription="circle"'), 2 * 3 * 2, 'a dot per series, x and session');
  for (const t of ['1', '4', '8', 'pretraining sessions', 'mtm', 'temporal']) assert.ok(one.includes(`>${t}</text>`), t);
  assert.is(count(one, 'aria-roledescription="rule mark"'), 1, 'bits/spike: the null model at 0');
  const acc = await sweepMetricPlot(d, 'choice_accuracy');
  assert.is(count(acc, 'aria-roledescription="rule mark"'), 0, 'no zero line for accuracy');
  const panels = await sweepPanelsPlot(d);
  checkSvg(panels);
  assert.is(count(panels, 'aria-roledescription="line mark"'), 4, 'two metrics x two series');
  assert.ok(panels.includes('>choice decoding accuracy</text>'));
  const k = buildSweep([ev('s', 'pre-k8', { co_smoothing_bps: 0.1 }), ev('s', 'pre-kall', { co_smoothing_bps: 0.2 }), ev('s', 'pre-k32', { co_smoothing_bps: 0.15 })], { pattern: '^(?<series>.+)-k(?<x>[^-]+)$', metrics: ['co_smoothing_bps'] });
  assert.equal(k.xs, [8, 32, 'all']);
  assert.not.ok(k.numericX);
  const ord = await sweepMetricPlot(k, 'co_smoothing_bps');
  checkSvg(ord);
  assert.ok(ord.includes('>all</text>'));
  await sweepMetricPlot(k, 'co_smoothing_bps', { xScale: 'log' }).then(
    () => assert.unreachable('log scale with a word x'),
    (e: Error) => assert.match(e.message, /x scale 'log' needs numeric x values; got 8, 32, all/),
  );
});

test('sweep.md: a table and the computed sentence per metric, notes on what was left out', () => {
  const d = buildSweep(items(), { metrics: ['co_smoothing_bps', 'wheel_r2'], xTitle: 'pretraining sessions' });
  const md = sweepMarkdown(d, { title: 'Scaling', plots: [['all metrics', 'sweep.svg'], ['co-smoothing', 'sweep-co_smoothing_bps.svg']], notes: [] });
  assert.match(md, /^# Scaling\n/);
  assert.ok(md.includes('| pretraining sessions | mtm | temporal |'));
  assert.ok(md.includes('| 4 | 0.141 (0.140, 0.142) | 0.111 (0.110, 0.112) |'), md);
  assert.ok(md.includes('Oracle (true rates): 0.400.'));
  assert.ok(md.includes(sweepSentence(d, 'co_smoothing_bps')));
  assert.ok(md.includes('![all metrics](sweep.svg)') && md.includes('- [co-smoothing](sweep-co_smoothing_bps.svg)'));
  assert.ok(md.includes('no model has wheel_r2: not plotted'));
  assert.ok(md.includes('labels outside the sweep (the pattern does not match them): pretrained'));
});

test.run();
