// The evaluation tasks and their metric keys, declared once (docs/method.md §5). The evaluate
// stage, the report (summary, markdown tables, detail files, plots), the sweep report and the
// benches read their task lists, keys and titles from here.
//
// What a task declares:
// - activity task (bits/spike on masked inputs): `id` (the evaluate stage's `tasks` value, its
//   `<id>Prompt` parameter and the key in evaluation.json), `stem` (every metric key is
//   `<stem>_<suffix>` with a suffix of ACTIVITY_METRICS below; predictions-<stem, dashes>.npy),
//   `title` (report tables and plots), `prose` (the evaluate stage's parameter docs),
//   `defaultPrompt`, `reportOrder` (position in the report's tables; the registry's own order is
//   the order evaluate runs the tasks and writes their keys), `oracle` (whether the true rates of
//   a simulated session are scored on the same entries: the `<stem>_oracle_*` keys), `needs`
//   (regions it needs; whether it leaves neurons out one at a time and so honours
//   `maxLeftOutNeurons`), and `plan` (its masks; the built-in tasks are planned in
//   core/eval/tasks.ts).
// - decoding task (a behaviour target decoded from predicted rates): `id` (the evaluate stage's
//   `behaviourTargets` value), `stem` and `score` (key `<stem>_<score>`, plus `<stem>_chance`
//   with `chance`), `title` (comparison sentences, sweep plots), `tableTitle` (report.md's
//   behaviour table), `column` (report.md's per-session table, when shown there), `always`
//   (every report.json entry carries the key, null when not measured; otherwise only when some
//   entry of the run has it), `swept` (in the sweep report's default metrics) and `needs` (the
//   session column it decodes). Its decoder lives in core/eval/behaviour.ts.
//
// Adding a task: declare it in ACTIVITY_TASKS or DECODING_TASKS below and write its scoring code
// (a planner in core/eval/tasks.ts, or a decoder in core/eval/behaviour.ts). A task that brings
// its own `plan` can instead be registered with registerTask before the evaluation and report
// modules load (they read the registry when they load; a registration after the first read is
// refused rather than silently missing from their lists).
import { QUANTILE_LEVELS, quantileKey, type BpsResult } from './bps.ts';
import type { MaskingMode } from '../masking/types.ts';
import type { OracleResult } from './oracle.ts';
import type { TaskPlan } from './tasks.ts';

/** What a task's masks are made from. */
export interface PlanInput {
  nBins: number;
  /** Region label per neuron. */
  regions: readonly string[];
  /** Forward prediction's held-out bins (the evaluate stage's forwardPredictionBins). */
  forwardBins: number;
  /** Leave-one-out tasks: only these neurons (checked to be neuron indices). */
  leaveOut?: readonly number[];
}

export interface ActivityTask {
  kind: 'activity';
  id: string;
  stem: string;
  title: string;
  prose: string;
  defaultPrompt: MaskingMode;
  reportOrder: number;
  oracle: boolean;
  needs: { regions?: number; leaveOneOut?: boolean };
  plan?: (x: PlanInput) => TaskPlan;
}

export interface DecodingTask {
  kind: 'decoding';
  id: string;
  stem: string;
  score: 'accuracy' | 'r2';
  chance: boolean;
  title: string;
  tableTitle: string;
  column?: string;
  always: boolean;
  swept: boolean;
  needs: { trialColumn?: string; perBin?: string };
}

export type EvaluationTask = ActivityTask | DecodingTask;

const ACTIVITY_TASKS: ActivityTask[] = [
  { kind: 'activity', id: 'coSmoothing', stem: 'co_smoothing', title: 'co-smoothing', prose: 'co-smoothing', defaultPrompt: 'neuron', reportOrder: 1, oracle: true, needs: { leaveOneOut: true } },
  { kind: 'activity', id: 'forwardPrediction', stem: 'forward_prediction', title: 'forward prediction', prose: 'forward prediction', defaultPrompt: 'causal', reportOrder: 2, oracle: true, needs: {} },
  { kind: 'activity', id: 'interRegion', stem: 'inter_region', title: 'inter-region', prose: 'inter-region prediction', defaultPrompt: 'inter-region', reportOrder: 4, oracle: true, needs: { regions: 2 } },
  { kind: 'activity', id: 'intraRegion', stem: 'intra_region', title: 'intra-region', prose: 'intra-region prediction', defaultPrompt: 'intra-region', reportOrder: 3, oracle: true, needs: { leaveOneOut: true } },
];

const DECODING_TASKS: DecodingTask[] = [
  { kind: 'decoding', id: 'choice', stem: 'choice', score: 'accuracy', chance: true, title: 'choice decoding accuracy', tableTitle: 'choice accuracy', column: 'choice', always: true, swept: true, needs: { trialColumn: 'choice' } },
  { kind: 'decoding', id: 'whiskerMotionEnergy', stem: 'wme', score: 'r2', chance: false, title: 'whisker motion energy R²', tableTitle: 'whisker motion energy R²', always: false, swept: true, needs: { perBin: 'whiskerMotionEnergy' } },
  { kind: 'decoding', id: 'wheelSpeed', stem: 'wheel', score: 'r2', chance: false, title: 'wheel speed R²', tableTitle: 'wheel speed R²', always: false, swept: false, needs: { perBin: 'wheelSpeed' } },
];

// ---------------------------------------------------------------------------------------------
// Metric keys of an activity task: `<stem>_<suffix>`.

/** A metric key's meaning. higherIsBetter: true for scores, null for counts, timings and references. */
export interface MetricInfo {
  key: string;
  meaning: string;
  unit: string;
  higherIsBetter: boolean | null;
}

type QuantileSuffix = `bps_q${number}`;
export type ActivityMetric = 'seconds' | 'bps' | 'bps_pooled' | 'evaluated' | 'excluded' | 'silent' | 'unscored' | QuantileSuffix | 'oracle_bps' | 'oracle_bps_pooled' | 'oracle_ratio' | 'oracle_ratio_pooled';

interface SuffixInfo<R> {
  suffix: ActivityMetric;
  meaning: string;
  unit: string;
  higherIsBetter: boolean | null;
  /** Headline figure: every report.json entry carries it, and 0 (the null model) is drawn beside it on sweep plots. */
  core?: boolean;
  /** Title template for comparison sentences and sweep plots (given the task's title). */
  title?: (task: string) => string;
  of: (r: R) => number;
}

/** The figures of a scored task, in the order evaluate writes them (after `<stem>_seconds`). */
export const BPS_METRICS: readonly SuffixInfo<BpsResult>[] = [
  { suffix: 'bps', meaning: 'mean over scored neurons of the per-neuron bits/spike (the headline)', unit: 'bits/spike', higherIsBetter: true, core: true, title: (t) => `${t} bits/spike (per-neuron mean)`, of: (b) => b.mean },
  { suffix: 'bps_pooled', meaning: 'NLL differences and spikes summed over every scored neuron first (NLB style)', unit: 'bits/spike', higherIsBetter: true, core: true, title: (t) => `${t} bits/spike (pooled)`, of: (b) => b.pooled },
  { suffix: 'evaluated', meaning: 'neurons scored (at least one spike in the evaluated entries)', unit: 'neurons', higherIsBetter: null, of: (b) => b.evaluatedNeurons },
  { suffix: 'excluded', meaning: 'neurons left out: silent + unscored', unit: 'neurons', higherIsBetter: null, of: (b) => b.excludedNeurons },
  { suffix: 'silent', meaning: 'neurons with evaluated entries but no spike in them', unit: 'neurons', higherIsBetter: null, of: (b) => b.silentNeurons },
  { suffix: 'unscored', meaning: 'neurons the task evaluated no entry of', unit: 'neurons', higherIsBetter: null, of: (b) => b.unscoredNeurons },
  ...QUANTILE_LEVELS.map((q, i): SuffixInfo<BpsResult> => ({
    suffix: `bps_${quantileKey(q)}` as QuantileSuffix, meaning: `${Math.round(q * 100)} % quantile of the per-neuron bits/spike`, unit: 'bits/spike', higherIsBetter: true,
    ...(q === 0.5 ? { title: (t: string) => `${t} bits/spike (per-neuron median)` } : {}), of: (b) => b.quantiles[i],
  })),
];

/** The oracle counterpart (true rates on the same entries), in the order evaluate writes it. */
export const ORACLE_METRICS: readonly SuffixInfo<OracleResult>[] = [
  { suffix: 'oracle_bps', meaning: 'the true rates scored like the model (per-neuron mean)', unit: 'bits/spike', higherIsBetter: null, of: (o) => o.bps.mean },
  { suffix: 'oracle_bps_pooled', meaning: 'the true rates scored like the model (pooled)', unit: 'bits/spike', higherIsBetter: null, of: (o) => o.bps.pooled },
  { suffix: 'oracle_ratio', meaning: 'model / oracle per-neuron mean', unit: 'fraction', higherIsBetter: true, of: (o) => o.ratio },
  { suffix: 'oracle_ratio_pooled', meaning: 'model / oracle pooled figure', unit: 'fraction', higherIsBetter: true, of: (o) => o.pooledRatio },
];

const SECONDS: Omit<SuffixInfo<never>, 'of'> = { suffix: 'seconds', meaning: 'wall time of the task', unit: 's', higherIsBetter: null };

/** The activity metrics the report compares models on, in report.md's order (each over every task). */
export const COMPARED_ACTIVITY_METRICS: readonly ActivityMetric[] = ['bps', 'bps_q50', 'bps_pooled'];

/** `<stem>_<suffix>`: an activity task's metric key. */
export function key(task: ActivityTask | string, metric: ActivityMetric): string {
  return `${typeof task === 'string' ? task : task.stem}_${metric}`;
}

/** The oracle counterparts a sweep looks up for a `<stem>_bps` metric: `<stem>_oracle_bps`, then the older `oracle_<stem>_bps`. */
export function oracleKeysOf(metric: string): string[] {
  const tail = '_bps';
  if (!metric.endsWith(tail)) return [];
  const stem = metric.slice(0, -tail.length);
  return [key(stem, 'oracle_bps'), `oracle_${stem}_bps`];
}

/** Whether a metric key is a headline bits/spike figure of some stem (its null model scores 0). */
export function isHeadlineBps(metric: string): boolean {
  return BPS_METRICS.some((m) => m.core && metric.endsWith(`_${m.suffix}`));
}

/** A decoding task's score key (choice_accuracy, wme_r2, ...). */
export const scoreKey = (d: DecodingTask) => `${d.stem}_${d.score}`;
/** A decoding task's chance key (choice_chance). */
export const chanceKey = (d: DecodingTask) => `${d.stem}_chance`;

// ---------------------------------------------------------------------------------------------
// Reading and registering.

let sealed = false;

/** Activity tasks in evaluation order (the order evaluate runs them and writes their keys). */
export function activityTasks(): readonly ActivityTask[] {
  sealed = true;
  return ACTIVITY_TASKS;
}

/** Activity tasks in the report's order (tables, plots, sweep defaults). */
export function reportTasks(): readonly ActivityTask[] {
  return [...activityTasks()].sort((a, b) => a.reportOrder - b.reportOrder); // stable: ties keep registry order
}

export function decodingTasks(): readonly DecodingTask[] {
  sealed = true;
  return DECODING_TASKS;
}

/** The activity task with this id; an unknown id is an error naming the known ones. */
export function activityTask(id: string): ActivityTask {
  const t = activityTasks().find((x) => x.id === id);
  if (!t) throw new Error(`unknown evaluation task '${id}' (known: ${ACTIVITY_TASKS.map((x) => x.id).join(', ')})`);
  return t;
}

/** Every metric key a task can write, with its meaning. */
export function metricsOf(task: EvaluationTask): MetricInfo[] {
  const info = (m: Omit<SuffixInfo<never>, 'of'>): MetricInfo => ({ key: key(task.stem, m.suffix), meaning: m.meaning, unit: m.unit, higherIsBetter: m.higherIsBetter });
  if (task.kind === 'activity') return [SECONDS, ...BPS_METRICS, ...(task.oracle ? ORACLE_METRICS : [])].map(info);
  const score: MetricInfo = { key: scoreKey(task), meaning: task.title, unit: task.score === 'r2' ? 'R²' : 'fraction', higherIsBetter: true };
  return task.chance ? [score, { key: chanceKey(task), meaning: 'accuracy of always answering the training majority class', unit: 'fraction', higherIsBetter: null }] : [score];
}

/** Titles of the compared metrics (comparison sentences, sweep plots), keyed by metric key. */
export function metricTitles(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of BPS_METRICS) for (const t of reportTasks()) if (m.title) out[key(t, m.suffix)] = m.title(t.title);
  for (const d of decodingTasks()) out[scoreKey(d)] = d.title;
  return out;
}

const STEM = /^[a-z][a-z0-9_]*$/;
const ID = /^[a-z][A-Za-z0-9]*$/;

/**
 * Adds a task (a test's toy task, a plugin's task with its own `plan`). Refused once any module
 * has read the registry, for an id or stem already taken, or a malformed one.
 */
export function registerTask(task: EvaluationTask): void {
  if (sealed) throw new Error(`registerTask('${task.id}'): the task registry was already read; register tasks before the evaluation and report modules load`);
  const all: EvaluationTask[] = [...ACTIVITY_TASKS, ...DECODING_TASKS];
  if (!ID.test(task.id) || !STEM.test(task.stem)) throw new Error(`registerTask: id '${task.id}' must be camelCase and stem '${task.stem}' snake_case`);
  const clash = all.find((t) => t.id === task.id || t.stem === task.stem);
  if (clash) throw new Error(`registerTask('${task.id}'): id or stem already used by '${clash.id}' (stem ${clash.stem})`);
  if (task.kind === 'activity' && !task.plan) throw new Error(`registerTask('${task.id}'): an activity task registered from outside needs its own plan`);
  if (task.kind === 'activity') ACTIVITY_TASKS.push(task);
  else DECODING_TASKS.push(task);
}
