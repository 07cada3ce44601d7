import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { bpsSummaryPlot, perNeuronBpsPlot, rasterPlot, svgToPng, trainingLossPlot, writePlot, type NeuronBps } from './plots.ts';
import { TASKS } from './summary.ts';
import { tempDir } from '../testing.ts';

/** Well-formed XML: every tag closed in order (enough to catch a broken SVG), root <svg>. */
function checkSvg(svg: string): void {
  assert.ok(svg.startsWith('<svg'), 'starts with <svg');
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([A-Za-z][\w:-]*)[^>]*?(\/?)>/g)) {
    const [, close, name, self] = m;
    if (self) continue;
    if (close) assert.is(stack.pop(), name, `closing </${name}>`);
    else stack.push(name);
  }
  assert.equal(stack, [], 'every tag closed');
}
const count = (svg: string, s: string) => svg.split(s).length - 1;
const text = (svg: string, s: string) => svg.includes(`>${s}</text>`);

test('training loss: one line per model and split, titled', async () => {
  const curve = (k: number) => [1, 2, 3].map((e) => ({ epoch: e, trainLoss: k / e, valLoss: k / e + 0.1, seconds: 1, best: e === 3 }));
  const svg = await trainingLossPlot({ mtm: curve(1), temporal: curve(2) }, ['mtm', 'temporal']);
  checkSvg(svg);
  assert.ok(text(svg, 'Training and validation loss'));
  assert.is(count(svg, 'aria-roledescription="line mark"'), 4, 'two models x training/validation');
  assert.ok(text(svg, 'mtm') && text(svg, 'temporal') && text(svg, 'validation'));
});

test('per-neuron bps: a panel per task, a point per neuron, regions on x', async () => {
  const rows: NeuronBps[] = [];
  for (const task of TASKS) for (const region of ['CA1', 'LP']) for (const label of ['mtm', 'temporal']) for (let n = 0; n < 3; n++) rows.push({ task, region, label, bps: 0.1 * n - 0.05 });
  rows.push({ task: 'co_smoothing', region: 'CA1', label: 'mtm', bps: NaN }); // excluded neuron: not drawn
  const svg = await perNeuronBpsPlot(rows, ['mtm', 'temporal']);
  checkSvg(svg);
  assert.ok(text(svg, 'Per-neuron bits/spike by region'));
  for (const t of ['co-smoothing', 'forward prediction', 'intra-region', 'inter-region']) assert.ok(text(svg, t), `panel ${t}`);
  assert.ok(text(svg, 'CA1') && text(svg, 'LP'));
  assert.is(count(svg, 'aria-roledescription="circle"'), TASKS.length * 2 * 2 * 3);
});

test('raster: one heatmap cell per drawn (panel, neuron, bin); blanks left out', async () => {
  const obs = [[0.1, 0.2, 0.3], [0.4, null, 0.6]];
  const svg = await rasterPlot({
    region: 'CA1', sessionId: 'sess', trials: 5, binSizeMs: 20, windowStartS: -0.5, neuronNames: ['#3', '#7'],
    panels: [{ title: 'observed', values: obs }, { title: 'true rates', values: [[1, 1, 1], [1, 1, 1]] }, { title: 'mtm (co-smoothing)', values: [[0.2, 0.2, 0.2], [0.5, 0.5, 0.5]] }],
  });
  checkSvg(svg);
  assert.ok(text(svg, 'Region CA1: observed vs predicted activity'));
  assert.ok(text(svg, 'observed') && text(svg, 'true rates') && text(svg, 'mtm (co-smoothing)'));
  assert.is(count(svg, 'aria-roledescription="rect mark"'), 5 + 6 + 6);
  const err = await rasterPlot({ region: 'x', sessionId: 's', trials: 1, binSizeMs: 20, windowStartS: 0, neuronNames: ['#0'], panels: [{ title: 'bad', values: [] }] }).then(() => null, (e: Error) => e);
  assert.match(err?.message ?? '', /panel 'bad'/);
});

test('bps summary: a bar per (task, model) and an oracle mark per task', async () => {
  const means = TASKS.flatMap((task, i) => ['mtm', 'temporal'].map((label, j) => ({ task, label, bps: 0.1 + 0.01 * i - 0.02 * j })));
  const withOracle = await bpsSummaryPlot(means, TASKS.map((task) => ({ task, bps: 0.3 })), ['mtm', 'temporal']);
  checkSvg(withOracle);
  assert.ok(text(withOracle, 'Bits/spike per task and model'));
  assert.is(count(withOracle, 'aria-roledescription="bar"'), 8);
  assert.is(count(withOracle, 'aria-roledescription="tick"'), 4);
  assert.ok(text(withOracle, '0.130'), 'bar values written');
  const without = await bpsSummaryPlot(means, [], ['mtm', 'temporal']);
  assert.is(count(without, 'aria-roledescription="tick"'), 0);
});

test('writePlot writes the SVG and a PNG of it', async () => {
  const dir = tempDir();
  const svg = await bpsSummaryPlot([{ task: 'co_smoothing', label: 'mtm', bps: 0.2 }], [], ['mtm']);
  const files = await writePlot(dir, 'bars', svg, { scale: 2 });
  assert.equal(files.map((f) => f.slice(dir.length + 1)), ['bars.svg', 'bars.png']);
  assert.is(readFileSync(files[0], 'utf8'), svg);
  const png = readFileSync(files[1]);
  assert.equal([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  assert.ok(statSync(files[1]).size > 5000, `non-trivial PNG (${statSync(files[1]).size} bytes)`);
  const svgWidth = Number(/width="(\d+)"/.exec(svg)![1]);
  assert.is(png.readUInt32BE(16), svgWidth * 2, 'PNG width = SVG width x scale');
  const only = await writePlot(dir, 'svg-only', svg, { png: false });
  assert.is(only.length, 1);
  assert.not.ok(existsSync(`${dir}/svg-only.png`));
  assert.ok(svgToPng(svg, 1).length < png.length, 'scale 1 is smaller');
});

test.run();
