// Collects evaluation and training metrics into report.json, report.md and plots (docs/method.md §5, §6.2).
//
// What it reads (see core/report/summary.ts and core/report/detail.ts):
// - `metrics`: every Metrics item of the run, from any number of nodes (list several edges).
//   Training items carry `epoch` and `trainLoss` in values (stages/train-model.ts, sessionId
//   'all'); every other item is an evaluation result for one (sessionId, label) with the
//   snake_case keys of EVAL_KEYS, which the task registry (core/eval/task-registry.ts) makes:
//   co_smoothing_bps, co_smoothing_bps_pooled (and the same for forward_prediction,
//   intra_region, inter_region), choice_accuracy, choice_chance, wme_r2, wheel_r2,
//   <task>_oracle_bps, <task>_oracle_bps_pooled and optionally <task>_oracle_ratio, plus timings
//   as keys ending in `seconds`. Items for one (session, label) are merged.
// - `details` (optional): Artifact items whose path is an `*.eval-detail.json` file (format
//   mtm-eval-detail@1: per-neuron bps per task and trial-averaged rasters), or a folder holding
//   such files. Without them the per-neuron and raster plots are left out, and report.md says so.
// Decisions: numbers are never rounded in report.json; report.md rounds to 3 decimals and its
// comparison sentences are computed from the same means (core/report/summary.ts), so swapping
// two models' numbers flips the sentence. The backend is the tensor backend of this process
// (backend selection is process-wide).
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { defineStage, type StageContext } from '../core/stage.ts';
import type { Artifact, Metrics, ReportRef } from '../core/payloads.ts';
import { writeFileAtomic } from '../core/io/atomic.ts';
import { compare, COMPARISON_KEYS, comparisonSentence, namedFirst, summarise, TASKS, type ReportSummary, type TaskKey } from '../core/report/summary.ts';
import { key } from '../core/eval/task-registry.ts';
import { EVAL_DETAIL_SUFFIX, readEvalDetail, withUnitSpread, type EvalDetail } from '../core/report/detail.ts';
import { bpsSummaryPlot, perNeuronBpsPlot, rasterPlot, trainingLossPlot, plotWriter, reportDir, type NeuronBps, type RasterPanel } from '../core/report/plots.ts';
import { reportMarkdown } from '../core/report/markdown.ts';
import { recipeSection } from '../core/report/recipe.ts';
import * as tf from '../core/tensor/tf.ts';

export const REPORT_FORMAT = 'mtm-report@1';

export type { ReportRef } from '../core/payloads.ts';

export const reportParams = z.object({
  title: z.string().default('mtm-flow report').describe('heading of report.md'),
  outDir: z.string().default('').describe('folder for report.json, report.md and the plots, relative to the run directory (or absolute); empty: the run directory itself'),
  png: z.boolean().default(true).describe('also write every plot as PNG beside its SVG'),
  pngScale: z.number().positive().default(2).describe('PNG pixels per SVG pixel'),
  rasterSession: z.string().default('').describe('session whose raster is drawn; empty: the first evaluated session that has detail files'),
  rasterRegion: z.string().default('').describe('region whose raster is drawn; empty: the region with the most neurons in that session'),
  order: z.array(z.string()).default([]).describe('model labels in the order tables and plots show them (others follow in arrival order); empty: arrival order'),
  maxRasterNeurons: z.number().int().min(1).default(40).describe("most neurons drawn in the raster: the region's most active ones, in their session order"),
});

export type ReportParams = z.output<typeof reportParams>;

/** Expands Artifact items into detail files: a file path as is, a folder into its *.eval-detail.json files. */
async function detailFiles(items: Artifact[]): Promise<string[]> {
  const files: string[] = [];
  for (const a of items) {
    let st;
    try {
      st = await stat(a.path);
    } catch {
      throw new Error(`report: detail artifact ${a.path} (${a.description}) does not exist`);
    }
    if (st.isDirectory()) {
      for (const f of (await readdir(a.path)).sort()) if (f.endsWith(EVAL_DETAIL_SUFFIX)) files.push(join(a.path, f));
    } else if (a.path.endsWith(EVAL_DETAIL_SUFFIX)) {
      files.push(a.path);
    }
  }
  return [...new Set(files)];
}

export const ORACLE_LABEL = 'oracle (true rates)';

/** Plot rows: each model's per-neuron bps, and the oracle's once per session (it is the same for every model). */
function neuronRows(details: EvalDetail[]): NeuronBps[] {
  const rows: NeuronBps[] = [];
  const oracleDone = new Set<string>();
  const add = (values: (number | null)[] | undefined, task: TaskKey, regions: string[], label: string) =>
    values?.forEach((bps, n) => {
      if (bps !== null && Number.isFinite(bps)) rows.push({ task, region: regions[n], label, bps });
    });
  for (const d of details) {
    for (const t of TASKS) {
      add(d.perNeuronBps[t], t, d.regions, d.label);
      const key = `${d.sessionId}\u0000${t}`;
      if (d.perNeuronOracleBps?.[t] && !oracleDone.has(key)) {
        oracleDone.add(key);
        add(d.perNeuronOracleBps[t], t, d.regions, ORACLE_LABEL);
      }
    }
  }
  return rows;
}

interface RasterChoice {
  input: Parameters<typeof rasterPlot>[0];
  notes: string[];
}

/** Picks the session, region and neurons of the raster, and its panels. */
export function chooseRaster(details: EvalDetail[], labels: string[], sessions: string[], p: Pick<ReportParams, 'rasterSession' | 'rasterRegion' | 'maxRasterNeurons'>): RasterChoice | string {
  const withRaster = details.filter((d) => d.raster);
  if (!withRaster.length) return 'no detail file has raster data';
  const order = [...sessions, ...withRaster.map((d) => d.sessionId)];
  const sessionId = p.rasterSession || order.find((s) => withRaster.some((d) => d.sessionId === s))!;
  const mine = withRaster.filter((d) => d.sessionId === sessionId).sort((a, b) => labels.indexOf(a.label) - labels.indexOf(b.label));
  if (!mine.length) return `no raster data for session '${sessionId}' (rasterSession); sessions with rasters: ${[...new Set(withRaster.map((d) => d.sessionId))].join(', ')}`;
  const first = mine[0];
  const notes: string[] = [];
  const consistent = mine.filter((d) => {
    const ok = d.regions.length === first.regions.length && d.raster!.observed[0]?.length === first.raster!.observed[0]?.length;
    if (!ok) notes.push(`raster: ${d.label} on session ${sessionId} has another neuron or bin layout than ${first.label}; left out`);
    return ok;
  });
  const counts = new Map<string, number>();
  for (const r of first.regions) counts.set(r, (counts.get(r) ?? 0) + 1);
  const region = p.rasterRegion || [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0][0];
  if (!counts.has(region)) return `session ${sessionId} has no region '${region}' (rasterRegion); it has ${[...counts.keys()].sort().join(', ')}`;
  const obs = first.raster!.observed;
  const meanOf = (row: (number | null)[]) => row.reduce<number>((s, v) => s + (v ?? 0), 0);
  let neurons = first.regions.flatMap((r, n) => (r === region ? [n] : []));
  if (neurons.length > p.maxRasterNeurons) {
    const keep = new Set([...neurons].sort((a, b) => meanOf(obs[b]) - meanOf(obs[a])).slice(0, p.maxRasterNeurons));
    notes.push(`raster: region ${region} has ${neurons.length} neurons; the ${p.maxRasterNeurons} most active are drawn`);
    neurons = neurons.filter((n) => keep.has(n));
  }
  const take = (m: (number | null)[][]) => neurons.map((n) => m[n]);
  const panels: RasterPanel[] = [{ title: 'observed', values: take(obs) }];
  const truth = consistent.find((d) => d.raster!.trueRates);
  if (truth) panels.push({ title: 'true rates', values: take(truth.raster!.trueRates!) });
  for (const d of consistent) panels.push({ title: `${d.label} (${d.raster!.task.replace('_', '-')})`, values: take(d.raster!.predicted) });
  return {
    input: {
      region,
      sessionId,
      trials: first.raster!.trials,
      binSizeMs: first.binSizeMs,
      windowStartS: first.raster!.windowStartS,
      neuronNames: neurons.map((n) => `#${n}`),
      panels,
    },
    notes,
  };
}

/** Builds everything report.json holds. */
export function reportJson(s: ReportSummary, extra: { title: string; backend: string | null; plots: string[]; notes: string[]; reportSeconds: number }): Record<string, unknown> {
  const comparisons = COMPARISON_KEYS.flatMap((k) => {
    const c = compare(s, k);
    return c ? [{ ...c, sentence: comparisonSentence(c) }] : [];
  });
  return {
    format: REPORT_FORMAT,
    title: extra.title,
    createdAt: new Date().toISOString(),
    backend: extra.backend,
    labels: s.labels,
    sessionIds: s.sessions,
    perSession: s.perSession,
    mean: s.mean,
    oracle: s.oracle,
    // Per label and task: units scored and excluded, quantiles of per-unit bps beside the mean.
    spread: s.spread,
    comparisons,
    training: s.training,
    timings: {
      evaluation: s.timings,
      training: Object.fromEntries(Object.entries(s.training).map(([l, t]) => [l, t.seconds])),
      reportSeconds: extra.reportSeconds,
    },
    plots: extra.plots,
    notes: extra.notes,
  };
}

async function writeReport(p: ReportParams, ctx: StageContext, metrics: Metrics[], artifacts: Artifact[]): Promise<ReportRef> {
  const started = performance.now();
  const dir = await reportDir(ctx.run.root, p.outDir);
  const summary = summarise(metrics);
  // Models arrive in the order they finish training; `order` puts the named ones first, as listed.
  summary.labels = namedFirst(summary.labels, p.order);
  const details: EvalDetail[] = [];
  for (const f of await detailFiles(artifacts)) details.push(await readEvalDetail(f));
  withUnitSpread(summary, details);
  const notes: string[] = [];
  const { files, plots, plot } = plotWriter(dir, { png: p.png, scale: p.pngScale });

  const curves = Object.fromEntries(Object.entries(summary.training).map(([l, t]) => [l, t.curve]));
  if (Object.keys(curves).length) await plot('training and validation loss', 'training-loss', trainingLossPlot(curves, summary.labels));
  else notes.push('no training metrics arrived: no loss curves');

  const labelsEvaluated = summary.labels.filter((l) => summary.mean[l]);
  const means = labelsEvaluated.flatMap((label) => TASKS.map((task: TaskKey) => ({ task, label, bps: summary.mean[label][key(task, 'bps')] ?? NaN })));
  if (means.some((m) => Number.isFinite(m.bps))) {
    const oracle = TASKS.flatMap((task) => (summary.oracle[task]?.bps != null ? [{ task, bps: summary.oracle[task]!.bps! }] : []));
    await plot('bits/spike per task and model', 'bps-summary', bpsSummaryPlot(means, oracle, summary.labels));
  } else notes.push('no bits/spike metrics arrived: no summary bar chart');

  if (!details.length) {
    notes.push(`no evaluation detail files (*${EVAL_DETAIL_SUFFIX}) arrived on the details port: no per-neuron or raster plots`);
  } else {
    const rows = neuronRows(details);
    const plotLabels = rows.some((r) => r.label === ORACLE_LABEL) ? [...summary.labels, ORACLE_LABEL] : summary.labels;
    if (rows.length) await plot('per-neuron bits/spike by region', 'per-neuron-bps', perNeuronBpsPlot(rows, plotLabels));
    else notes.push('the detail files hold no per-neuron bits/spike');
    const raster = chooseRaster(details, summary.labels, summary.sessions, p);
    if (typeof raster === 'string') notes.push(`no raster: ${raster}`);
    else {
      notes.push(...raster.notes);
      const safe = raster.input.region.replace(/[^A-Za-z0-9._-]/g, '_');
      await plot(`trial-averaged activity in ${raster.input.region}`, `raster-${safe}`, rasterPlot(raster.input));
    }
  }

  const backend = tf.getBackend() || null;
  const json = reportJson(summary, { title: p.title, backend, plots: plots.map(([, f]) => f), notes, reportSeconds: (performance.now() - started) / 1000 });
  const jsonPath = join(dir, 'report.json');
  await writeFileAtomic(jsonPath, JSON.stringify(json, null, 2) + '\n');
  const mdPath = join(dir, 'report.md');
  await writeFileAtomic(mdPath, reportMarkdown({ title: p.title, summary, backend, plots, notes }) + recipeSection(ctx.run.root, metrics));
  files.unshift(jsonPath, mdPath);
  ctx.logger.info({ dir, models: summary.labels, sessions: summary.sessions.length, plots: plots.length, notes: notes.length }, 'report written');
  ctx.run.announce?.(ctx.nodeId, 'report', join(dir, 'report.md'));
  return { kind: 'report', path: dir, files };
}

export const report = defineStage({
  id: 'report',
  version: 1,
  summary: 'Writes report.json, report.md and plots (loss curves, per-neuron bps, rasters, bps per model) from the run\'s metrics',
  spec: 'docs/method.md §6.2',
  inputs: {
    metrics: { type: 'metrics', description: 'evaluation metrics per (session, model label) and training metrics per epoch, from any number of nodes', collect: true },
    details: { type: 'artifact', description: 'evaluation detail files (*.eval-detail.json) or folders holding them: per-neuron bps and rasters', collect: true, optional: true },
  },
  outputs: { report: { type: 'report', description: 'the folder written and its files' } },
  params: reportParams,
  create(p, ctx) {
    return {
      async *generate({ metrics, details }) {
        yield await writeReport(p, ctx, metrics, details);
      },
    };
  },
});
