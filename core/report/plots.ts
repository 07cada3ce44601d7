// The report's plots (docs/method.md §6.2): training curves, per-neuron bits/spike by region, true vs predicted rasters, bps per model.
//
// Each plot is a vega-lite spec compiled to vega and rendered headless to SVG (no canvas
// package); PNGs come from the SVG through resvg. Colours follow the order of the model labels
// passed in, so a label keeps its colour in every plot of a report.
import { mkdir, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { Resvg } from '@resvg/resvg-js';
import { TASK_TITLES, TASKS, type TaskKey, type TrainingPoint } from './summary.ts';

// A font list resvg finds on common Linux, macOS and Windows installs (DejaVu ships with most
// Linux distributions); vega only estimates text widths, so the exact font barely matters.
const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';

const CONFIG = {
  font: FONT,
  background: 'white',
  padding: 12,
  title: { fontSize: 15, anchor: 'start' as const, offset: 10 },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 280 },
  header: { labelFontSize: 13, titleFontSize: 13 },
};

// vega-lite logs spec warnings to the console; a report should not write to stdout.
const QUIET = vega.logger(vega.None);

/** Renders a vega-lite spec to an SVG string. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const full = { ...spec, config: { ...CONFIG, ...(spec.config ?? {}) } } as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(full, { logger: QUIET }).spec), { renderer: 'none' });
  view.logLevel(vega.None);
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterises an SVG to PNG at `scale` times its size, on white. */
export function svgToPng(svg: string, scale = 2): Uint8Array {
  const r = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: scale },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return r.render().asPng();
}

/** Writes `<name>.svg` (and `<name>.png` unless png is false) into dir; returns the paths written. */
export async function writePlot(dir: string, name: string, svg: string, options: { png?: boolean; scale?: number } = {}): Promise<string[]> {
  const svgPath = join(dir, `${name}.svg`);
  await writeFile(svgPath, svg);
  if (options.png === false) return [svgPath];
  const pngPath = join(dir, `${name}.png`);
  await writeFile(pngPath, svgToPng(svg, options.scale ?? 2));
  return [svgPath, pngPath];
}

/** The folder a report stage writes (created): `outDir` relative to the run directory, or absolute; '' is the run directory. */
export async function reportDir(runRoot: string, outDir: string): Promise<string> {
  const dir = outDir ? (isAbsolute(outDir) ? outDir : resolve(runRoot, outDir)) : runRoot;
  await mkdir(dir, { recursive: true });
  return dir;
}

/**
 * Writes plots into `dir` one by one and keeps what a report needs of them: every file written
 * (for the output port) and [caption, SVG name] pairs (for the Markdown).
 */
export function plotWriter(dir: string, options: { png?: boolean; scale?: number }) {
  const files: string[] = [];
  const plots: [string, string][] = [];
  const plot = async (caption: string, name: string, svg: Promise<string>) => {
    files.push(...(await writePlot(dir, name, await svg, options)));
    plots.push([caption, `${name}.svg`]);
  };
  return { files, plots, plot };
}

const labelColour = (labels: readonly string[]) => ({ domain: [...labels], scheme: 'tableau10' });

// ---------------------------------------------------------------------------------------------

/** (1) Training and validation loss per epoch, one colour per model label. */
export async function trainingLossPlot(curves: Record<string, readonly TrainingPoint[]>, labels: readonly string[] = Object.keys(curves)): Promise<string> {
  const values: { label: string; epoch: number; loss: number; split: string }[] = [];
  for (const [label, curve] of Object.entries(curves)) {
    for (const p of curve) {
      if (Number.isFinite(p.trainLoss)) values.push({ label, epoch: p.epoch, loss: p.trainLoss, split: 'training' });
      if (p.valLoss !== null && Number.isFinite(p.valLoss)) values.push({ label, epoch: p.epoch, loss: p.valLoss, split: 'validation' });
    }
  }
  // The first epochs fall steeply and would flatten everything after them: the y range covers
  // the epochs after the first tenth of training, and the earlier points are clipped at the top.
  const lastEpoch = Math.max(0, ...values.map((v) => v.epoch));
  const later = values.filter((v) => v.epoch > Math.max(1, Math.floor(lastEpoch / 10))).map((v) => v.loss);
  const clipped = later.length > 0 && values.some((v) => v.loss > Math.max(...later));
  const lo = later.length ? Math.min(...later) : 0;
  const hi = later.length ? Math.max(...later) : 0;
  const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.01 || 1;
  const yScale = clipped ? { zero: false, domain: [lo - pad, hi + pad] } : { zero: false };
  return renderSvg({
    title: { text: 'Training and validation loss', subtitle: clipped ? 'Poisson NLL per scored entry (first epochs clipped at the top)' : 'Poisson NLL per scored entry' },
    width: 460,
    height: 280,
    data: { values },
    mark: { type: 'line', point: { size: 28 }, strokeWidth: 2, clip: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } },
      y: { field: 'loss', type: 'quantitative', title: 'loss', scale: yScale },
      color: { field: 'label', type: 'nominal', title: 'model', scale: labelColour(labels.filter((l) => l in curves)) },
      strokeDash: { field: 'split', type: 'nominal', title: 'split', scale: { domain: ['training', 'validation'], range: [[1, 0], [5, 3]] }, legend: { symbolType: 'stroke', symbolStrokeWidth: 2, symbolSize: 300, encode: { symbols: { update: { stroke: { value: '#333' } } } } } },
      detail: { field: 'split' },
    },
  } as TopLevelSpec);
}

export interface NeuronBps {
  task: TaskKey;
  region: string;
  label: string;
  bps: number;
}

/** (2) Per-neuron bits/spike by region, one panel per task, boxes and points coloured by model label. */
export async function perNeuronBpsPlot(rows: readonly NeuronBps[], labels: readonly string[]): Promise<string> {
  const values = rows.filter((r) => Number.isFinite(r.bps)).map((r) => ({ ...r, task: TASK_TITLES[r.task] }));
  const regions = [...new Set(values.map((r) => r.region))].sort();
  const tasks = TASKS.map((t) => TASK_TITLES[t]).filter((t) => values.some((r) => r.task === t));
  const x = { field: 'region', type: 'nominal', title: 'region', sort: regions, axis: { labelAngle: -40 } };
  const colour = { field: 'label', type: 'nominal', title: 'model', scale: labelColour(labels) };
  return renderSvg({
    title: { text: 'Per-neuron bits/spike by region', subtitle: 'test trials; each point is one neuron' },
    data: { values },
    facet: { column: { field: 'task', type: 'nominal', title: null, sort: tasks } },
    spec: {
      width: Math.max(140, regions.length * labels.length * 16),
      height: 240,
      layer: [
        { mark: { type: 'rule', color: '#888', strokeDash: [3, 3] }, encoding: { y: { datum: 0 } } },
        {
          mark: { type: 'boxplot', extent: 'min-max', size: 12, opacity: 0.45 },
          encoding: { x, xOffset: { field: 'label', sort: [...labels] }, y: { field: 'bps', type: 'quantitative', title: 'bits/spike' }, color: colour },
        },
        {
          mark: { type: 'circle', size: 14, opacity: 0.75 },
          encoding: { x, xOffset: { field: 'label', sort: [...labels] }, y: { field: 'bps', type: 'quantitative' }, color: colour },
        },
      ],
    },
    resolve: { scale: { y: 'shared' } },
  } as TopLevelSpec);
}

export interface RasterPanel {
  title: string;
  /** [neuron][bin], counts per bin; null is drawn blank. */
  values: readonly (readonly (number | null)[])[];
}

export interface RasterPlotInput {
  region: string;
  sessionId: string;
  trials: number;
  binSizeMs: number;
  windowStartS: number;
  /** Name of each row (neuron), top to bottom. */
  neuronNames: readonly string[];
  panels: readonly RasterPanel[];
}

/**
 * (3) Trial-averaged activity of one region as neurons x time heatmaps side by side (observed,
 * true rates when known, each model's prediction) on one shared colour scale (counts per bin).
 */
export async function rasterPlot(x: RasterPlotInput): Promise<string> {
  const binS = x.binSizeMs / 1000;
  const values: { panel: string; neuron: string; t0: number; t1: number; rate: number }[] = [];
  for (const p of x.panels) {
    if (p.values.length !== x.neuronNames.length) throw new Error(`raster panel '${p.title}': ${p.values.length} rows for ${x.neuronNames.length} neurons`);
    p.values.forEach((row, n) =>
      row.forEach((v, b) => {
        if (v === null || !Number.isFinite(v)) return;
        const t0 = x.windowStartS + b * binS;
        values.push({ panel: p.title, neuron: x.neuronNames[n], t0: Number(t0.toFixed(6)), t1: Number((t0 + binS).toFixed(6)), rate: v });
      }),
    );
  }
  return renderSvg({
    title: { text: `Region ${x.region}: observed vs predicted activity`, subtitle: `session ${x.sessionId}; mean over ${x.trials} test trials; ${x.binSizeMs} ms bins` },
    data: { values },
    facet: { column: { field: 'panel', type: 'nominal', title: null, sort: x.panels.map((p) => p.title) } },
    spec: {
      width: 220,
      height: Math.min(420, Math.max(120, x.neuronNames.length * 7)),
      layer: [
        {
          mark: { type: 'rect' },
          encoding: {
            x: { field: 't0', type: 'quantitative', title: 'time from stimulus (s)', scale: { nice: false, zero: false }, axis: { grid: false } },
            x2: { field: 't1' },
            y: { field: 'neuron', type: 'ordinal', title: 'neuron', sort: [...x.neuronNames], axis: x.neuronNames.length > 40 ? { labels: false, ticks: false } : { labelFontSize: 8 } },
            color: { field: 'rate', type: 'quantitative', title: 'counts / bin', scale: { scheme: 'viridis', zero: true } },
          },
        },
        // The alignment event, when it falls inside the window.
        ...(x.windowStartS < 0 && x.windowStartS + (x.panels[0]?.values[0]?.length ?? 0) * binS > 0
          ? [{ mark: { type: 'rule', color: 'white', strokeDash: [4, 3], opacity: 0.8 }, encoding: { x: { datum: 0, type: 'quantitative' } } }]
          : []),
      ],
    },
    resolve: { scale: { color: 'shared' } },
  } as TopLevelSpec);
}

export interface TaskMean {
  task: TaskKey;
  label: string;
  bps: number;
}

/** (4) The four bits/spike metrics per model (mean over sessions), the oracle as a black mark. */
export async function bpsSummaryPlot(means: readonly TaskMean[], oracle: readonly { task: TaskKey; bps: number }[], labels: readonly string[]): Promise<string> {
  const tasks = TASKS.map((t) => TASK_TITLES[t]);
  const bars = means.filter((m) => Number.isFinite(m.bps)).map((m) => ({ task: TASK_TITLES[m.task], label: m.label, bps: m.bps }));
  const marks = oracle.filter((o) => Number.isFinite(o.bps)).map((o) => ({ task: TASK_TITLES[o.task], what: 'oracle (true rates)', bps: o.bps }));
  const x = { field: 'task', type: 'nominal', title: null, sort: tasks, axis: { labelAngle: 0 }, scale: { domain: tasks } };
  const layer: unknown[] = [
    {
      data: { values: bars },
      mark: { type: 'bar' },
      encoding: {
        x,
        xOffset: { field: 'label', sort: [...labels] },
        y: { field: 'bps', type: 'quantitative', title: 'bits/spike (per-neuron mean)' },
        color: { field: 'label', type: 'nominal', title: 'model', scale: labelColour(labels) },
      },
    },
    {
      data: { values: bars },
      mark: { type: 'text', dy: -7, fontSize: 9 },
      encoding: { x, xOffset: { field: 'label', sort: [...labels] }, y: { field: 'bps', type: 'quantitative' }, text: { field: 'bps', type: 'quantitative', format: '.3f' } },
    },
  ];
  if (marks.length) {
    layer.push({
      data: { values: marks },
      mark: { type: 'tick', thickness: 3, size: 100, color: 'black' },
      encoding: { x, y: { field: 'bps', type: 'quantitative' }, tooltip: { field: 'what' } },
    });
  }
  return renderSvg({
    title: { text: 'Bits/spike per task and model', subtitle: marks.length ? 'test trials, mean over sessions; black mark: oracle' : 'test trials, mean over sessions' },
    width: 130 * tasks.length,
    height: 260,
    layer,
  } as TopLevelSpec);
}
