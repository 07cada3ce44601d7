// report.md: the run's numbers as tables and one computed sentence per metric (docs/method.md §6.2).
import { compare, COMPARISON_KEYS, comparisonSentence, fmt, QUANTILE_KEYS, TASK_TITLES, TASKS, type ReportSummary } from './summary.ts';
import { chanceKey, decodingTasks, key, scoreKey } from '../eval/task-registry.ts';

export interface MarkdownInput {
  title: string;
  summary: ReportSummary;
  backend: string | null;
  /** Plot files beside report.md: [caption, file name]. */
  plots: [string, string][];
  /** Lines saying what could not be drawn or measured, and why. */
  notes: string[];
}

const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
const table = (head: string[], rows: string[][]) => [row(head), row(head.map(() => '---')), ...rows.map(row)].join('\n');

export function reportMarkdown(x: MarkdownInput): string {
  const s = x.summary;
  const evaluated = s.labels.filter((l) => s.mean[l]);
  const out: string[] = [`# ${x.title}`, ''];
  out.push(
    `Models: ${s.labels.join(', ') || 'none'}. Sessions evaluated: ${s.sessions.length}${s.sessions.length ? ` (${s.sessions.join(', ')})` : ''}. ` +
      `Tensor backend: ${x.backend ?? 'unknown'}. All figures are on the test split, means over sessions; higher is better for every metric below.`,
    '',
  );
  if (evaluated.length) {
    out.push(...activitySection(s, evaluated), ...behaviourSection(s, evaluated), ...comparisonSection(s, evaluated));
    if (s.sessions.length > 1) out.push(...perSessionSection(s, evaluated));
  } else {
    out.push('No evaluation metrics arrived: only training is reported.', '');
  }
  out.push(...trainingSection(s), ...timingSection(s));
  if (x.plots.length) {
    out.push('## Plots', '');
    for (const [caption, file] of x.plots) out.push(`![${caption}](${file})`, '');
  }
  if (x.notes.length) {
    out.push('## Notes', '');
    for (const n of x.notes) out.push(`- ${n}`);
    out.push('');
  }
  return out.join('\n');
}

/** Bits/spike per task: the per-neuron mean, its spread, the pooled figure and the fraction of the oracle. */
function activitySection(s: ReportSummary, evaluated: string[]): string[] {
  const hasOracle = TASKS.some((t) => s.oracle[t]);
  const out: string[] = ['## Neural activity (bits/spike)', ''];
  out.push('Per-neuron mean (neurons with no test spikes excluded and counted, see the spread below), the headline figure:', '');
  out.push(
    table(
      ['task', ...evaluated, ...(hasOracle ? ['oracle'] : [])],
      TASKS.map((t) => [TASK_TITLES[t], ...evaluated.map((l) => fmt(s.mean[l][key(t, 'bps')])), ...(hasOracle ? [fmt(s.oracle[t]?.bps)] : [])]),
    ),
    '',
  );
  out.push(...spreadSection(s, evaluated));
  out.push('Pooled over all evaluated neurons (NLB style):', '');
  out.push(
    table(
      ['task', ...evaluated, ...(hasOracle ? ['oracle'] : [])],
      TASKS.map((t) => [TASK_TITLES[t], ...evaluated.map((l) => fmt(s.mean[l][key(t, 'bps_pooled')])), ...(hasOracle ? [fmt(s.oracle[t]?.pooled)] : [])]),
    ),
    '',
  );
  if (hasOracle) {
    out.push('Fraction of the oracle (model / oracle per-neuron mean, per session, then averaged):', '');
    out.push(table(['task', ...evaluated], TASKS.map((t) => [TASK_TITLES[t], ...evaluated.map((l) => pct(s.mean[l][key(t, 'oracle_ratio')]))])), '');
  }
  return out;
}

/** A chance key's mean over the evaluated labels that have it. */
function meanChance(s: ReportSummary, evaluated: string[], k: string): number | null {
  const xs = evaluated.map((l) => s.mean[l][k]).filter((v): v is number => v !== null && v !== undefined);
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

/** One row per decoding target against its chance level, or a line when nothing was decoded. */
function behaviourSection(s: ReportSummary, evaluated: string[]): string[] {
  const behaviour: [string, string, string | null][] = decodingTasks().map((d) => [d.tableTitle, scoreKey(d), d.chance ? chanceKey(d) : null]);
  const decoded = behaviour.some(([, k]) => evaluated.some((l) => s.mean[l][k] !== null && s.mean[l][k] !== undefined));
  const out: string[] = ['## Behaviour decoding', ''];
  // A run without decoding (evaluate's decoding: false) gets a line, not a table of n/a.
  if (!decoded) out.push('No behaviour was decoded in this run.', '');
  else {
    out.push(
      table(
        ['target', ...evaluated, 'chance'],
        behaviour.map(([name, k, chance]) => [name, ...evaluated.map((l) => fmt(s.mean[l][k])), chance ? fmt(meanChance(s, evaluated, chance)) : '0 (R²)']),
      ),
      '',
    );
  }
  return out;
}

/** One computed sentence per compared metric, then accuracy against chance and the share of the oracle reached. */
function comparisonSection(s: ReportSummary, evaluated: string[]): string[] {
  const out: string[] = ['## Which model is better', ''];
  for (const k of COMPARISON_KEYS) {
    const c = compare(s, k);
    if (c) out.push(`- ${comparisonSentence(c)}`);
  }
  for (const d of decodingTasks().filter((x) => x.chance)) out.push(...chanceLines(s, evaluated, d.column ?? d.stem, scoreKey(d), meanChance(s, evaluated, chanceKey(d))));
  for (const t of TASKS) {
    const o = s.oracle[t];
    if (!o || o.bps === null) continue;
    const parts = evaluated.map((l) => `${l} ${pct(s.mean[l][key(t, 'oracle_ratio')])}`);
    out.push(`- ${cap(TASK_TITLES[t])}: the oracle (true rates) scores ${fmt(o.bps)}; share of it reached: ${parts.join(', ')}.`);
  }
  out.push('');
  return out;
}

/** One row per (session, model): bits/spike per task and the decoding columns. */
function perSessionSection(s: ReportSummary, evaluated: string[]): string[] {
  const shown = decodingTasks().filter((d) => d.column);
  const head = ['session', 'model', ...TASKS.map((t) => TASK_TITLES[t]), ...shown.map((d) => d.column!)];
  const rows: string[][] = [];
  for (const sid of s.sessions) {
    for (const l of evaluated) {
      const e = s.perSession[sid][l];
      if (e) rows.push([sid, l, ...TASKS.map((t) => fmt(e[key(t, 'bps')])), ...shown.map((d) => fmt(e[scoreKey(d)]))]);
    }
  }
  return ['## Per session', '', table(head, rows), ''];
}

function trainingSection(s: ReportSummary): string[] {
  const trained = Object.entries(s.training);
  if (!trained.length) return [];
  return [
    '## Training',
    '',
    table(
      ['model', 'epochs', 'best epoch', 'final training loss', 'best validation loss', 'training time (s)'],
      trained.map(([l, t]) => [l, String(t.epochs), t.bestEpoch === null ? 'n/a' : String(t.bestEpoch), fmt(t.finalTrainLoss, 4), fmt(t.bestValLoss, 4), t.seconds.toFixed(1)]),
    ),
    '',
  ];
}

function timingSection(s: ReportSummary): string[] {
  const timed = Object.entries(s.timings);
  if (!timed.length) return [];
  return ['## Evaluation time', '', table(['model', 'measure', 'seconds (sum over sessions)'], timed.flatMap(([l, t]) => Object.entries(t).map(([k, v]) => [l, k, v.toFixed(2)]))), ''];
}

/**
 * The spread of per-unit bits/spike beside the mean, per task and model, with the units behind
 * it: one unit far below the rest moves the mean, not the quantiles.
 */
function spreadSection(s: ReportSummary, labels: string[]): string[] {
  const rows: string[][] = [];
  let overSessions = false;
  const unscored = TASKS.some((t) => labels.some((l) => (s.spread[l]?.[t]?.unscored ?? 0) > 0));
  for (const t of TASKS) {
    for (const l of labels) {
      const x = s.spread[l]?.[t];
      if (!x) continue;
      overSessions ||= x.quantilesOver === 'sessions' && s.sessions.length > 1;
      const count = (v: number | null) => (v === null ? 'n/a' : String(v));
      rows.push([TASK_TITLES[t], l, count(x.scored), count(x.silent), ...(unscored ? [count(x.unscored)] : []), fmt(x.mean), ...QUANTILE_KEYS.map((q) => fmt(x.quantiles[q]))]);
    }
  }
  if (!rows.length) return [];
  return [
    `Spread over units: quantiles of the per-unit bits/spike beside their mean${overSessions ? ' (each quantile the mean of the sessions\' quantiles: no per-neuron detail files arrived)' : ', over every scored unit'}. ` +
      'A unit is scored when it has at least one spike in the evaluated test entries; a unit without one has no defined bits/spike and is excluded, and counted here (no test spikes).',
    '',
    table(['task', 'model', 'units scored', 'excluded: no test spikes', ...(unscored ? ['not scored by the task'] : []), 'mean', ...QUANTILE_KEYS.map((q) => (q === 'q50' ? 'median' : `${q.slice(1)} %`))], rows),
    '',
  ];
}

/** One line per model: its accuracy against chance. */
function chanceLines(s: ReportSummary, labels: string[], name: string, scoreKey: string, chance: number | null): string[] {
  if (chance === null) return [];
  return labels.flatMap((l) => {
    const acc = s.mean[l][scoreKey];
    if (acc === null || acc === undefined) return [];
    const side = acc > chance ? `${fmt(acc - chance)} above` : acc < chance ? `${fmt(chance - acc)} below` : 'exactly at';
    return [`- ${cap(name)}: ${l} decodes at ${fmt(acc)} against a chance of ${fmt(chance)} (${side} chance).`];
  });
}

const cap = (x: string) => x.charAt(0).toUpperCase() + x.slice(1);
const pct = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : `${(100 * x).toFixed(1)} %`);
