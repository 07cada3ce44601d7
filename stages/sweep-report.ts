// Writes sweep.json, sweep.md and plots of each metric against a swept variable encoded in the model labels (docs/method.md §5.5: scaling with pretraining sessions, few-shot curves).
//
// Decisions (see core/report/sweep.ts for the numbers):
// - The swept variable lives in the model label (`mtm-n4`: series mtm, x 4), parsed by `pattern`
//   with named groups series and x, so any graph can sweep anything by naming its models; labels
//   the pattern does not match are listed and left out, and a label set with no match at all is
//   an error (a sweep of nothing is a wiring mistake).
// - Plots: one faceted figure of every metric (sweep.svg/png, own y scale per panel) and one per
//   metric (sweep-<metric>.svg/png), through the report's vega-lite -> SVG -> resvg path.
// - sweep.md's sentences are computed from the same numbers as sweep.json.
import { join } from 'node:path';
import { z } from 'zod';
import { defineStage, type StageContext } from '../core/stage.ts';
import type { Metrics, ReportRef } from '../core/payloads.ts';
import { writeFileAtomic } from '../core/io/atomic.ts';
import { recipeSection } from '../core/report/recipe.ts';
import { plotWriter, reportDir } from '../core/report/plots.ts';
import { buildSweep, DEFAULT_SWEEP_METRICS, DEFAULT_SWEEP_PATTERN, metricTitle, sweepLeads, sweepMarkdown, sweepMetricPlot, sweepPanelsPlot, sweepPattern, sweepSentence } from '../core/report/sweep.ts';

export const sweepReportParams = z.object({
  title: z.string().default('mtm-flow sweep').describe('heading of sweep.md and of the plots'),
  pattern: z.string().default(DEFAULT_SWEEP_PATTERN).describe('regular expression over model labels with named groups series and x (default: <series>-n<x>, e.g. mtm-n4)'),
  xTitle: z.string().default('x').describe('what x is, for the axis and sweep.md (e.g. pretraining sessions)'),
  xScale: z.enum(['auto', 'linear', 'log', 'ordinal']).default('auto').describe('x axis: auto is linear when every x is a number, ordinal otherwise (e.g. k = 8, 32, all)'),
  seriesOrder: z.array(z.string()).default([]).describe('series to list and colour first, in this order; the rest follow alphabetically'),
  metrics: z.array(z.string()).default([...DEFAULT_SWEEP_METRICS]).describe('evaluation metrics to tabulate and plot (keys of the evaluate stage, e.g. co_smoothing_bps, choice_accuracy)'),
  outDir: z.string().default('').describe('folder for sweep.json, sweep.md and the plots, relative to the run directory (or absolute); empty: the run directory itself'),
  png: z.boolean().default(true).describe('also write every plot as PNG beside its SVG'),
  pngScale: z.number().positive().default(2).describe('PNG pixels per SVG pixel'),
});

export type SweepReportParams = z.output<typeof sweepReportParams>;

async function writeSweep(p: SweepReportParams, ctx: StageContext, items: Metrics[]): Promise<ReportRef> {
  const dir = await reportDir(ctx.run.root, p.outDir);
  const d = buildSweep(items, { pattern: p.pattern, metrics: p.metrics, xTitle: p.xTitle, seriesOrder: p.seriesOrder });
  const { files, plots, plot } = plotWriter(dir, { png: p.png, scale: p.pngScale });
  const notes: string[] = [];
  if (d.metrics.length) {
    await plot(`every metric against ${d.xTitle}`, 'sweep', sweepPanelsPlot(d, { title: p.title, xScale: p.xScale }));
    for (const m of d.metrics) await plot(`${metricTitle(m)} against ${d.xTitle}`, `sweep-${m.replace(/[^A-Za-z0-9._-]/g, '_')}`, sweepMetricPlot(d, m, { title: p.title, xScale: p.xScale }));
  } else notes.push(`none of the metrics ${p.metrics.join(', ')} arrived: no plots`);
  const leads = Object.fromEntries(d.metrics.map((m) => [m, { sentence: sweepSentence(d, m), perX: sweepLeads(d, m) }]));
  const json = { ...d, title: p.title, createdAt: new Date().toISOString(), leads, plots: plots.map(([, f]) => f), notes };
  const jsonPath = join(dir, 'sweep.json');
  await writeFileAtomic(jsonPath, JSON.stringify(json, null, 2) + '\n');
  const mdPath = join(dir, 'sweep.md');
  await writeFileAtomic(mdPath, sweepMarkdown(d, { title: p.title, plots, notes }) + recipeSection(ctx.run.root, items));
  files.unshift(jsonPath, mdPath);
  ctx.run.announce?.(ctx.nodeId, 'sweep', mdPath);
  ctx.logger.info({ dir, series: d.series, xs: d.xs, sessions: d.sessions.length, metrics: d.metrics.length, unmatched: d.unmatched }, 'sweep written');
  for (const m of d.metrics) ctx.logger.info(sweepSentence(d, m));
  return { kind: 'report', path: dir, files };
}

export const sweepReport = defineStage({
  id: 'sweep-report',
  version: 1,
  summary: 'Plots each evaluation metric against a variable swept across models (read from their labels, e.g. mtm-n4), one line per series; writes sweep.json, sweep.md and the plots',
  spec: 'docs/method.md §5.5',
  inputs: {
    metrics: { type: 'metrics', description: 'evaluation metrics per (session, model label); training metrics are ignored', collect: true },
  },
  outputs: { report: { type: 'report', description: 'the folder written and its files' } },
  params: sweepReportParams,
  create(p, ctx) {
    try {
      sweepPattern(p.pattern);
    } catch (e) {
      throw new Error(`sweep-report '${ctx.nodeId}': ${(e as Error).message}`);
    }
    return {
      async *generate({ metrics }) {
        let written: ReportRef;
        try {
          written = await writeSweep(p, ctx, metrics);
        } catch (e) {
          throw new Error(`sweep-report '${ctx.nodeId}': ${(e as Error).message}`);
        }
        yield written;
      },
    };
  },
});
