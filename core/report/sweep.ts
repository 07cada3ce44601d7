// A sweep over one variable (pretraining sessions, few-shot trials, ...) read from model labels: sweep.json, its plots and sweep.md (docs/method.md §5.5).
//
// Each evaluated model's label encodes its point of the sweep, e.g. `mtm-n4` = series mtm at
// x = 4, parsed by a regular expression with named groups `series` and `x`. Evaluation items are
// merged per (session, label) by core/report/summary.ts, so the numbers here are the ones a run
// report would show. Per (series, x, metric): the mean over the sessions that have the metric,
// and every session's value. x values that are all numbers are drawn on a numeric axis; any
// word among them (e.g. `all` trials) makes the axis ordinal: numbers ascending, words after in
// order of first appearance. Every metric is higher-is-better (bits/spike, accuracy, R²).
import type { TopLevelSpec } from 'vega-lite';
import type { Metrics } from '../payloads.ts';
import { fmt, METRIC_TITLES, namedFirst, summarise, TASKS } from './summary.ts';
import { renderSvg } from './plots.ts';
import { decodingTasks, isHeadlineBps, key, oracleKeysOf, scoreKey } from '../eval/task-registry.ts';

export const SWEEP_FORMAT = 'mtm-sweep@1';

/** `<series>-n<x>`: e.g. mtm-n4, temporal-n16, mtm-scratch-n1. */
export const DEFAULT_SWEEP_PATTERN = '^(?<series>.+)-n(?<x>[^-]+)$';

/** The metrics a sweep plots by default: every activity task's headline and the decoders the task registry marks `swept`. */
export const DEFAULT_SWEEP_METRICS: readonly string[] = [...TASKS.map((t) => key(t, 'bps')), ...decodingTasks().filter((d) => d.swept).map(scoreKey)];

export type SweepX = number | string;

export interface SweepCell {
  /** Mean over the sessions that have the metric; null when none has it. */
  mean: number | null;
  /** Sessions that have it. */
  sessions: number;
  /** Each evaluated session's value (null: not measured there). */
  perSession: Record<string, number | null>;
}

export interface SweepPoint {
  series: string;
  x: SweepX;
  /** The model label the point was parsed from. */
  label: string;
  values: Record<string, SweepCell>;
}

export interface SweepData {
  format: typeof SWEEP_FORMAT;
  pattern: string;
  xTitle: string;
  /** Series: those named in seriesOrder first, in that order, then the rest alphabetically. */
  series: string[];
  /** x values in axis order. */
  xs: SweepX[];
  numericX: boolean;
  sessions: string[];
  metrics: string[];
  /** Requested metrics that no point has: left out of the plots. */
  missingMetrics: string[];
  points: SweepPoint[];
  /** Mean oracle (true rates) bits/spike per activity metric, when the sessions have true rates. */
  oracle: Record<string, number>;
  /** Labels the pattern did not match (e.g. the pretrained models): not part of the sweep. */
  unmatched: string[];
}

/** Compiles a sweep pattern, checking it names the groups `series` and `x`. */
export function sweepPattern(source: string): RegExp {
  let re: RegExp;
  try {
    re = new RegExp(source);
  } catch (e) {
    throw new Error(`pattern ${JSON.stringify(source)} is not a regular expression: ${(e as Error).message}`);
  }
  for (const g of ['series', 'x']) if (!source.includes(`(?<${g}>`)) throw new Error(`pattern ${JSON.stringify(source)} has no named group (?<${g}>...): it needs both series and x`);
  return re;
}

/** The (series, x) a label encodes, or undefined when the pattern does not match it. */
export function parseSweepLabel(label: string, re: RegExp): { series: string; x: SweepX } | undefined {
  const m = re.exec(label);
  const series = m?.groups?.series;
  const raw = m?.groups?.x;
  if (!series || raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  return { series, x: Number.isFinite(n) && /^[\d.eE+-]+$/.test(raw) ? n : raw };
}

/** Axis order: numbers ascending, then words in order of first appearance. */
export function orderXs(xs: readonly SweepX[]): SweepX[] {
  const nums = [...new Set(xs.filter((x): x is number => typeof x === 'number'))].sort((a, b) => a - b);
  const words = [...new Set(xs.filter((x): x is string => typeof x === 'string'))];
  return [...nums, ...words];
}

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** The oracle's value of a metric in one evaluation entry (both spellings the evaluator has used). */
function oracleOf(entry: Record<string, number | null>, metric: string): number | null {
  const [current, older] = oracleKeysOf(metric);
  if (!current) return null;
  const v = entry[current] ?? entry[older];
  return finite(v) ? v : null;
}

/** Groups evaluation Metrics items into sweep points. Training items (per epoch) are ignored. */
export function buildSweep(items: readonly Metrics[], opts: { pattern?: string; metrics?: readonly string[]; xTitle?: string; seriesOrder?: readonly string[] } = {}): SweepData {
  const pattern = opts.pattern ?? DEFAULT_SWEEP_PATTERN;
  const re = sweepPattern(pattern);
  const s = summarise(items);
  const evaluated = s.labels.filter((l) => s.mean[l]);
  const wanted = [...(opts.metrics ?? DEFAULT_SWEEP_METRICS)];
  const points: SweepPoint[] = [];
  const unmatched: string[] = [];
  const byKey = new Map<string, string>();
  for (const label of evaluated) {
    const at = parseSweepLabel(label, re);
    if (!at) {
      unmatched.push(label);
      continue;
    }
    const key = `${at.series}\u0000${String(at.x)}`;
    if (byKey.has(key)) throw new Error(`labels '${byKey.get(key)}' and '${label}' are the same sweep point (series ${at.series}, x ${at.x})`);
    byKey.set(key, label);
    const values: Record<string, SweepCell> = {};
    for (const metric of wanted) {
      const perSession: Record<string, number | null> = {};
      const xs: number[] = [];
      for (const sid of s.sessions) {
        const entry = s.perSession[sid]?.[label];
        if (!entry) continue;
        const v = entry[metric];
        perSession[sid] = finite(v) ? v : null;
        if (finite(v)) xs.push(v);
      }
      values[metric] = { mean: xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null, sessions: xs.length, perSession };
    }
    points.push({ series: at.series, x: at.x, label, values });
  }
  if (!points.length) {
    throw new Error(`no evaluated model label matches the pattern ${pattern}${evaluated.length ? `; labels: ${evaluated.join(', ')}` : ' (no evaluation metrics arrived)'}`);
  }
  // Models arrive in the order they finish training: sort, so colours and tables are stable.
  const series = namedFirst([...new Set(points.map((p) => p.series))].sort(), opts.seriesOrder ?? []);
  const xs = orderXs(points.map((p) => p.x));
  const order = (p: SweepPoint) => series.indexOf(p.series) * xs.length + xs.indexOf(p.x);
  points.sort((a, b) => order(a) - order(b));
  const metrics = wanted.filter((m) => points.some((p) => p.values[m].mean !== null));
  const oracle: Record<string, number> = {};
  for (const metric of metrics) {
    const vals = s.sessions.flatMap((sid) => {
      const entry = Object.values(s.perSession[sid] ?? {}).find((e) => oracleOf(e, metric) !== null);
      return entry ? [oracleOf(entry, metric)!] : [];
    });
    if (vals.length) oracle[metric] = vals.reduce((a, b) => a + b, 0) / vals.length;
  }
  return {
    format: SWEEP_FORMAT,
    pattern,
    xTitle: opts.xTitle ?? 'x',
    series,
    xs,
    numericX: xs.every((x) => typeof x === 'number'),
    sessions: s.sessions,
    metrics,
    missingMetrics: wanted.filter((m) => !metrics.includes(m)),
    points,
    oracle,
    unmatched,
  };
}

export function metricTitle(metric: string): string {
  return METRIC_TITLES[metric] ?? metric;
}

/** Who is ahead at one x on one metric: series ranked by mean, the margin, and the session count behind it. */
export interface SweepLead {
  metric: string;
  x: SweepX;
  ranking: { series: string; value: number }[];
  /** First minus second; null with fewer than two series. */
  margin: number | null;
  /** Sessions where the first beats the second, of those both have. */
  sessionsAhead: number;
  sessionsCompared: number;
}

export function sweepLeads(d: SweepData, metric: string): SweepLead[] {
  return d.xs.map((x) => {
    const here = d.points.filter((p) => p.x === x && p.values[metric]?.mean !== null && p.values[metric] !== undefined);
    const ranking = here.map((p) => ({ series: p.series, value: p.values[metric].mean! })).sort((a, b) => b.value - a.value || d.series.indexOf(a.series) - d.series.indexOf(b.series));
    let ahead = 0;
    let both = 0;
    if (ranking.length > 1) {
      const [a, b] = [ranking[0], ranking[1]].map((r) => here.find((p) => p.series === r.series)!.values[metric].perSession);
      for (const sid of d.sessions) {
        if (!finite(a[sid]) || !finite(b[sid])) continue;
        both++;
        if (a[sid]! > b[sid]!) ahead++;
      }
    }
    return { metric, x, ranking, margin: ranking.length > 1 ? ranking[0].value - ranking[1].value : null, sessionsAhead: ahead, sessionsCompared: both };
  });
}

const list = (xs: string[]) => (xs.length <= 1 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);
const signed = (x: number) => `${x >= 0 ? '+' : ''}${fmt(x)}`;

/** One sentence per metric, computed from the numbers: who leads at each x, by how much, and how each series moves across x. */
export function sweepSentence(d: SweepData, metric: string): string {
  const title = metricTitle(metric);
  const head = title.charAt(0).toUpperCase() + title.slice(1);
  const leads = sweepLeads(d, metric).filter((l) => l.ranking.length > 0);
  if (!leads.length) return `${head}: no series has it.`;
  // A lead counts only when it shows at the 3 decimals the sentence prints.
  const leader = (l: SweepLead) => (l.ranking.length > 1 && fmt(l.ranking[0].value) !== fmt(l.ranking[1].value) ? l.ranking[0].series : undefined);
  const parts = leads.map((l) => {
    const [first, second] = l.ranking;
    if (!second) return `at x = ${l.x} only ${first.series} has it (${fmt(first.value)})`;
    if (!leader(l)) return `at x = ${l.x} ${first.series} and ${second.series} are level to 3 decimals (${fmt(first.value)})`;
    const sessions = l.sessionsCompared > 1 ? `, ahead on ${l.sessionsAhead} of ${l.sessionsCompared} sessions` : '';
    return `at x = ${l.x} ${first.series} leads ${second.series} by ${fmt(l.margin)} (${fmt(first.value)} vs ${fmt(second.value)}${sessions})`;
  });
  let text = `${head}: ${parts.join('; ')}.`;
  const compared = leads.filter((l) => l.ranking.length > 1);
  if (compared.length > 1) {
    text += ` Overall: ${list(d.series.map((s) => `${s} ahead at ${compared.filter((l) => leader(l) === s).length} of ${compared.length} x values`))}.`;
  }
  const [lo, hi] = [d.xs[0], d.xs[d.xs.length - 1]];
  const moves = d.series.flatMap((s) => {
    const a = d.points.find((p) => p.series === s && p.x === lo)?.values[metric]?.mean;
    const b = d.points.find((p) => p.series === s && p.x === hi)?.values[metric]?.mean;
    return finite(a) && finite(b) ? [`${s} ${fmt(a)} → ${fmt(b)} (${signed(b - a)})`] : [];
  });
  if (d.xs.length > 1 && moves.length) text += ` From x = ${lo} to ${hi}: ${list(moves)}.`;
  return text;
}

// ---------------------------------------------------------------------------------------------
// Plots: mean per (series, x) as lines with points, each session's value as a faint dot, and
// for bits/spike a dashed rule at 0 (the null model); colours by series, in series order.

interface Row {
  metric: string;
  series: string;
  x: SweepX;
  xLabel: string;
  value: number;
  kind: 'mean' | 'session' | 'zero';
  session?: string;
}

const isBps = isHeadlineBps;

function rows(d: SweepData, metrics: readonly string[]): Row[] {
  const out: Row[] = [];
  for (const metric of metrics) {
    const title = metricTitle(metric);
    for (const p of d.points) {
      const c = p.values[metric];
      if (!c) continue;
      if (c.mean !== null) out.push({ metric: title, series: p.series, x: p.x, xLabel: String(p.x), value: c.mean, kind: 'mean' });
      for (const [session, v] of Object.entries(c.perSession)) if (finite(v)) out.push({ metric: title, series: p.series, x: p.x, xLabel: String(p.x), value: v, kind: 'session', session });
    }
    // 0 bits/spike is the null model (each neuron's mean rate): a model below it predicts worse.
    if (isBps(metric)) out.push({ metric: title, series: '', x: d.xs[0], xLabel: String(d.xs[0]), value: 0, kind: 'zero' });
  }
  return out;
}

export type SweepXScale = 'auto' | 'linear' | 'log' | 'ordinal';

function xEncoding(d: SweepData, scale: SweepXScale): Record<string, unknown> {
  const ordinal = scale === 'ordinal' || (scale === 'auto' && !d.numericX);
  if (ordinal) return { field: 'xLabel', type: 'ordinal', title: d.xTitle, sort: d.xs.map(String), axis: { labelAngle: 0 } };
  if (!d.numericX) throw new Error(`x scale '${scale}' needs numeric x values; got ${d.xs.join(', ')}`);
  const log = scale === 'log';
  if (log && (d.xs as number[]).some((x) => x <= 0)) throw new Error(`x scale 'log' needs positive x values; got ${d.xs.join(', ')}`);
  return { field: 'x', type: 'quantitative', title: d.xTitle, scale: { type: log ? 'log' : 'linear', zero: false, nice: false, padding: 12 }, axis: { values: d.xs, format: '~g', grid: false } };
}

function layers(d: SweepData, scale: SweepXScale): unknown[] {
  const x = xEncoding(d, scale);
  // One legend for both layers; full opacity so it matches the lines, not the faint dots.
  const colour = { field: 'series', type: 'nominal', title: 'series', scale: { domain: d.series, scheme: 'tableau10' }, legend: { symbolOpacity: 1, symbolSize: 80 } };
  const y = { field: 'value', type: 'quantitative', title: null, scale: { zero: false } };
  return [
    { transform: [{ filter: "datum.kind === 'zero'" }], mark: { type: 'rule', color: '#999', strokeDash: [4, 3] }, encoding: { y: { field: 'value', type: 'quantitative' } } },
    { transform: [{ filter: "datum.kind === 'session'" }], mark: { type: 'circle', size: 22, opacity: 0.35 }, encoding: { x, y, color: colour } },
    { transform: [{ filter: "datum.kind === 'mean'" }], mark: { type: 'line', point: { size: 45 }, strokeWidth: 2.2 }, encoding: { x, y, color: colour } },
  ];
}

// The oracle stays out of the plots (sweep.md and sweep.json give it): on the same axis its
// ceiling would flatten the differences between series that the sweep is about.
function subtitle(d: SweepData, metrics: readonly string[]): string {
  const zero = metrics.some(isBps) ? '; dashed: 0 bits/spike (each neuron\'s mean rate)' : '';
  return `lines: mean over ${d.sessions.length} held-out session(s); dots: each session${zero}`;
}

/** One metric against x, one line per series. */
export async function sweepMetricPlot(d: SweepData, metric: string, opts: { title?: string; xScale?: SweepXScale } = {}): Promise<string> {
  return renderSvg({
    title: { text: metricTitle(metric), subtitle: [...(opts.title ? [opts.title] : []), subtitle(d, [metric])] },
    width: 360,
    height: 240,
    data: { values: rows(d, [metric]) },
    layer: layers(d, opts.xScale ?? 'auto'),
  } as TopLevelSpec);
}

/** Every metric against x, one panel each (own y scale), one line per series. */
export async function sweepPanelsPlot(d: SweepData, opts: { title?: string; xScale?: SweepXScale; columns?: number } = {}): Promise<string> {
  return renderSvg({
    title: { text: opts.title ?? `Metrics against ${d.xTitle}`, subtitle: subtitle(d, d.metrics) },
    data: { values: rows(d, d.metrics) },
    facet: { field: 'metric', type: 'nominal', title: null, sort: d.metrics.map(metricTitle) },
    columns: opts.columns ?? 3,
    spec: { width: 240, height: 170, layer: layers(d, opts.xScale ?? 'auto') },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec);
}

// ---------------------------------------------------------------------------------------------

const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
const table = (head: string[], body: string[][]) => [row(head), row(head.map(() => '---')), ...body.map(row)].join('\n');

/** sweep.md: one table and one computed sentence per metric, the plots, and what was left out. */
export function sweepMarkdown(d: SweepData, x: { title: string; plots: [string, string][]; notes: string[] }): string {
  const out = [`# ${x.title}`, ''];
  out.push(
    `x: ${d.xTitle} (from the model labels, pattern \`${d.pattern}\`). Series: ${d.series.join(', ')}. ` +
      `Held-out sessions: ${d.sessions.length} (${d.sessions.join(', ')}). Figures are test-split means over those sessions; higher is better for every metric.`,
    '',
  );
  for (const [caption, file] of x.plots.slice(0, 1)) out.push(`![${caption}](${file})`, '');
  for (const metric of d.metrics) {
    out.push(`## ${metricTitle(metric)}`, '');
    const body = d.xs.map((xv) => [
      String(xv),
      ...d.series.map((s) => {
        const c = d.points.find((p) => p.series === s && p.x === xv)?.values[metric];
        if (!c || c.mean === null) return 'n/a';
        const each = Object.values(c.perSession).map((v) => fmt(v));
        return each.length > 1 ? `${fmt(c.mean)} (${each.join(', ')})` : fmt(c.mean);
      }),
    ]);
    const oracle = finite(d.oracle[metric]) ? ` Oracle (true rates): ${fmt(d.oracle[metric])}.` : '';
    out.push(table([d.xTitle, ...d.series], body), '', `Mean (each session in brackets).${oracle}`, '', sweepSentence(d, metric), '');
  }
  if (x.plots.length > 1) {
    out.push('## Plots', '');
    for (const [caption, file] of x.plots.slice(1)) out.push(`- [${caption}](${file})`);
    out.push('');
  }
  const notes = [...x.notes];
  if (d.missingMetrics.length) notes.push(`no model has ${d.missingMetrics.join(', ')}: not plotted`);
  if (d.unmatched.length) notes.push(`labels outside the sweep (the pattern does not match them): ${d.unmatched.join(', ')}`);
  if (notes.length) out.push('## Notes', '', ...notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}
