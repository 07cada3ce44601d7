// Metrics items -> the numbers of a run report: per session and mean per model label, training curves, comparisons (docs/method.md §5, §6.2).
//
// Two kinds of Metrics items arrive on one port and are told apart by their fields:
// - training: `values` has `epoch` and `trainLoss` (stages/train-model.ts: one item per epoch,
//   sessionId 'all', with valLoss, lr, seconds, best, ...);
// - evaluation: anything else; one item per (session, model label) with snake_case keys
//   (EVAL_KEYS below: <task>_bps, <task>_bps_pooled, <task>_oracle_bps, choice_accuracy, ...).
// Several items for the same (session, label) are merged, later values winning, so an evaluator
// may send the activity and the behaviour numbers separately.
//
// Spread over units (`spread`): per label and task, how many units were scored and excluded
// (counts summed over sessions, from <task>_evaluated, _silent, _unscored, _excluded) and the
// quantiles of the per-unit bits/spike beside their mean. From the metrics alone a quantile is
// the mean over sessions of each session's quantile (`quantilesOver: 'sessions'`); with the
// per-neuron values of the detail files (withUnitSpread, core/report/detail.ts) it is the
// quantile over every scored unit of every session (`quantilesOver: 'units'`). With one session
// the two are the same numbers.
import type { Metrics } from '../payloads.ts';
import { QUANTILE_LEVELS, quantileKey, quantiles } from '../eval/bps.ts';
import { BPS_METRICS, chanceKey, COMPARED_ACTIVITY_METRICS, decodingTasks, key, metricTitles, ORACLE_METRICS, reportTasks, scoreKey, type ActivityMetric, type DecodingTask } from '../eval/task-registry.ts';

/** The activity tasks in the report's order, as their metric stems (core/eval/task-registry.ts). */
export const TASKS: readonly string[] = reportTasks().map((t) => t.stem);
/** An activity task's metric stem. */
export type TaskKey = string;

export const TASK_TITLES: Record<TaskKey, string> = Object.fromEntries(reportTasks().map((t) => [t.stem, t.title]));

const decodingKeys = (d: DecodingTask) => (d.chance ? [scoreKey(d), chanceKey(d)] : [scoreKey(d)]);

/** Keys every (session, label) entry and every mean carries in report.json, null when not measured. */
export const CORE_KEYS: readonly string[] = [
  ...BPS_METRICS.filter((m) => m.core).flatMap((m) => TASKS.map((t) => key(t, m.suffix))),
  ...decodingTasks().filter((d) => d.always).flatMap(decodingKeys),
];

/** Keys carried when at least one entry of the run has them (behaviour targets and oracle figures). */
export const OPTIONAL_KEYS: readonly string[] = [
  ...decodingTasks().filter((d) => !d.always).flatMap(decodingKeys),
  ...TASKS.flatMap((t) => ORACLE_METRICS.map((m) => key(t, m.suffix))),
];

/** The keys an evaluation Metrics item is expected to carry (any other numeric key passes through). */
export const EVAL_KEYS: readonly string[] = [...CORE_KEYS, ...OPTIONAL_KEYS];

export type Entry = Record<string, number | null>;

/** Metric-key suffixes of the per-unit quantiles (q10, q25, q50, q75, q90). */
export const QUANTILE_KEYS = QUANTILE_LEVELS.map(quantileKey);

/** One (label, task): the units behind the per-neuron mean and how they spread. */
export interface UnitSpread {
  /** Units scored (at least one test spike), summed over sessions; null when not reported. */
  scored: number | null;
  /** Units excluded because they had no spike in the evaluated entries (undefined bits/spike). */
  silent: number | null;
  /** Units the task evaluated no entry of (not in a leave-out subset, ...). */
  unscored: number | null;
  /** silent + unscored. */
  excluded: number | null;
  /** The per-neuron mean (mean over sessions, as in `mean`). */
  mean: number | null;
  /** Quantiles of the per-unit bits/spike at QUANTILE_LEVELS, keyed q10 ... q90. */
  quantiles: Record<string, number | null>;
  /** 'units': over every scored unit of every session; 'sessions': mean of per-session quantiles. */
  quantilesOver: 'units' | 'sessions';
}

/** Spread from a list of per-unit values (null / NaN = excluded unit), for one (label, task). */
export function spreadOfUnits(values: readonly (number | null)[], mean: number | null): Pick<UnitSpread, 'scored' | 'mean' | 'quantiles' | 'quantilesOver'> {
  const xs = values.filter((v): v is number => v !== null && Number.isFinite(v));
  const q = quantiles(xs);
  return { scored: xs.length, mean, quantiles: Object.fromEntries(QUANTILE_KEYS.map((k, i) => [k, Number.isFinite(q[i]) ? q[i] : null])), quantilesOver: 'units' };
}

export interface TrainingPoint {
  epoch: number;
  trainLoss: number;
  valLoss: number | null;
  seconds: number | null;
  best: boolean;
}

export interface TrainingSummary {
  epochs: number;
  /** Epoch marked best by the trainer (last marked), else the one with the lowest val (or train) loss. */
  bestEpoch: number | null;
  finalTrainLoss: number | null;
  bestValLoss: number | null;
  seconds: number;
  curve: TrainingPoint[];
}

export interface ReportSummary {
  /** Model labels in order of first appearance (evaluation first, then training-only ones). */
  labels: string[];
  /** Evaluated sessions in order of first appearance. */
  sessions: string[];
  perSession: Record<string, Record<string, Entry>>;
  /** Per label: each key's mean over the sessions that have it, and how many sessions that is. */
  mean: Record<string, Entry & { sessions: number }>;
  /** Oracle per task, mean over sessions (identical for every label: it scores the true rates). */
  oracle: Partial<Record<TaskKey, { bps: number | null; pooled: number | null }>>;
  training: Record<string, TrainingSummary>;
  /** Evaluation timings: per label, every `*seconds` / `*Seconds` key summed over sessions. */
  timings: Record<string, Record<string, number>>;
  /** Per label and task: scored and excluded units, and the quantiles of per-unit bits/spike. */
  spread: Record<string, Partial<Record<TaskKey, UnitSpread>>>;
}

/** A training-curve item (one epoch) rather than an evaluation result. */
export function isTrainingMetrics(m: Metrics): boolean {
  return typeof m.values?.epoch === 'number' && typeof m.values?.trainLoss === 'number';
}

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
/** Ratio keys the report computes when the evaluator gave the oracle but not the ratio: [ratio, model, oracle]. */
const RATIOS: [ActivityMetric, ActivityMetric, ActivityMetric][] = [['oracle_ratio', 'bps', 'oracle_bps'], ['oracle_ratio_pooled', 'bps_pooled', 'oracle_bps_pooled']];
const isTiming = (k: string) => /seconds$/i.test(k);
const DEFAULT_LABEL = 'model';

/** Raw evaluation values per session and label, as they arrived (later items win). */
type RawValues = Record<string, Record<string, Record<string, number>>>;

export function summarise(items: readonly Metrics[]): ReportSummary {
  const { labels, sessions, raw, curves } = collectItems(items);
  const keys = reportKeys(raw);
  const perSession = perSessionEntries(raw, sessions, labels, keys);
  const mean = meansOverSessions(perSession, sessions, labels, keys);
  const oracle = oracleMeans(perSession, sessions, labels);
  const training = trainingSummaries(curves);
  const timings = timingSums(raw, sessions, labels);
  const spread = spreadOverSessions(raw, sessions, labels, mean);
  return { labels, sessions, perSession, mean, oracle, training, timings, spread };
}

/** Sorts the items into training curves and evaluation values; labels in order of first appearance, evaluation first. */
function collectItems(items: readonly Metrics[]): { labels: string[]; sessions: string[]; raw: RawValues; curves: Record<string, Map<number, TrainingPoint>> } {
  const labels: string[] = [];
  const sessions: string[] = [];
  const addLabel = (l: string) => {
    if (!labels.includes(l)) labels.push(l);
  };
  const raw: RawValues = {};
  const curves: Record<string, Map<number, TrainingPoint>> = {};

  items.forEach((m, i) => {
    if (!m || m.kind !== 'metrics' || typeof m.values !== 'object' || m.values === null) {
      throw new Error(`report: metrics item ${i} is not a Metrics item ({kind: 'metrics', sessionId, label, values})`);
    }
    const label = m.label || DEFAULT_LABEL;
    if (isTrainingMetrics(m)) {
      const v = m.values;
      // A resumed training replays its history: the same epoch again replaces the earlier record.
      (curves[label] ??= new Map()).set(v.epoch, {
        epoch: v.epoch,
        trainLoss: v.trainLoss,
        valLoss: finite(v.valLoss) ? v.valLoss : null,
        seconds: finite(v.seconds) ? v.seconds : null,
        best: v.best === 1,
      });
      return;
    }
    addLabel(label);
    if (!sessions.includes(m.sessionId)) sessions.push(m.sessionId);
    const entry = ((raw[m.sessionId] ??= {})[label] ??= {});
    for (const [k, x] of Object.entries(m.values)) if (typeof x === 'number') entry[k] = x;
  });
  for (const l of Object.keys(curves)) addLabel(l);
  return { labels, sessions, raw, curves };
}

/** The keys every entry carries: the core keys, the optional keys the run has at all, then any other key it has, sorted. */
function reportKeys(raw: RawValues): string[] {
  const present = new Set<string>();
  for (const s of Object.values(raw)) for (const e of Object.values(s)) for (const k of Object.keys(e)) present.add(k);
  for (const t of TASKS) {
    if (present.has(key(t, 'oracle_bps'))) present.add(key(t, 'oracle_ratio'));
    if (present.has(key(t, 'oracle_bps_pooled'))) present.add(key(t, 'oracle_ratio_pooled'));
  }
  const keys = [...CORE_KEYS, ...OPTIONAL_KEYS.filter((k) => present.has(k))];
  const extra = [...present].filter((k) => !keys.includes(k)).sort();
  return [...keys, ...extra];
}

/** Every (session, label) entry over `keys`, non-finite values as null, the oracle ratios filled in. */
function perSessionEntries(raw: RawValues, sessions: string[], labels: string[], keys: string[]): ReportSummary['perSession'] {
  const perSession: ReportSummary['perSession'] = {};
  for (const sid of sessions) {
    perSession[sid] = {};
    for (const label of labels) {
      const v = raw[sid]?.[label];
      if (!v) continue;
      const entry: Entry = {};
      for (const k of keys) entry[k] = finite(v[k]) ? v[k] : null;
      fillRatios(entry);
      perSession[sid][label] = entry;
    }
  }
  return perSession;
}

/** The model / oracle ratio, when the evaluator gave the oracle but not the ratio. */
function fillRatios(entry: Entry): void {
  for (const t of TASKS) {
    for (const [ratio, bps, of] of RATIOS) {
      const rk = key(t, ratio);
      if (!(rk in entry) || entry[rk] !== null) continue;
      const model = entry[key(t, bps)];
      const oracle = entry[key(t, of)];
      entry[rk] = model !== null && oracle !== null && oracle > 0 ? model / oracle : null;
    }
  }
}

const meanOf = (xs: number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/** Per label, each key's mean over the sessions that have it. */
function meansOverSessions(perSession: ReportSummary['perSession'], sessions: string[], labels: string[], keys: string[]): ReportSummary['mean'] {
  const mean: ReportSummary['mean'] = {};
  for (const label of labels) {
    const rows = sessions.map((s) => perSession[s][label]).filter((e): e is Entry => !!e);
    if (!rows.length) continue;
    const m: Entry & { sessions: number } = { sessions: rows.length };
    for (const k of keys) m[k] = meanOf(rows.map((r) => r[k]).filter(finite));
    mean[label] = m;
  }
  return mean;
}

/** The oracle per task, mean over every (session, label) entry that has it. */
function oracleMeans(perSession: ReportSummary['perSession'], sessions: string[], labels: string[]): ReportSummary['oracle'] {
  const oracle: ReportSummary['oracle'] = {};
  const pick = (k: string) => meanOf(sessions.flatMap((s) => labels.map((l) => perSession[s][l]?.[k])).filter(finite));
  for (const t of TASKS) {
    const bps = pick(key(t, 'oracle_bps'));
    const pooled = pick(key(t, 'oracle_bps_pooled'));
    if (bps !== null || pooled !== null) oracle[t] = { bps, pooled };
  }
  return oracle;
}

/** Per label: the curve by epoch, its best epoch, final and best losses, and the seconds summed. */
function trainingSummaries(curves: Record<string, Map<number, TrainingPoint>>): ReportSummary['training'] {
  const training: ReportSummary['training'] = {};
  for (const [label, byEpoch] of Object.entries(curves)) {
    const curve = [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
    const marked = curve.filter((p) => p.best).pop();
    const score = (p: TrainingPoint) => p.valLoss ?? p.trainLoss;
    const lowest = curve.reduce<TrainingPoint | null>((b, p) => (b === null || score(p) < score(b) ? p : b), null);
    const vals = curve.map((p) => p.valLoss).filter(finite);
    training[label] = {
      epochs: curve.length,
      bestEpoch: (marked ?? lowest)?.epoch ?? null,
      finalTrainLoss: curve.length ? curve[curve.length - 1].trainLoss : null,
      bestValLoss: vals.length ? Math.min(...vals) : null,
      seconds: curve.reduce((s, p) => s + (p.seconds ?? 0), 0),
      curve,
    };
  }
  return training;
}

/** Per label, every timing key summed over sessions. */
function timingSums(raw: RawValues, sessions: string[], labels: string[]): ReportSummary['timings'] {
  const timings: ReportSummary['timings'] = {};
  for (const label of labels) {
    const t: Record<string, number> = {};
    for (const sid of sessions) {
      const v = raw[sid]?.[label];
      if (!v) continue;
      for (const [k, x] of Object.entries(v)) if (isTiming(k) && finite(x)) t[k] = (t[k] ?? 0) + x;
    }
    if (Object.keys(t).length) timings[label] = t;
  }
  return timings;
}

/** Per label and task from the metrics alone: unit counts summed over sessions, quantiles as the mean of each session's. */
function spreadOverSessions(raw: RawValues, sessions: string[], labels: string[], mean: ReportSummary['mean']): ReportSummary['spread'] {
  const spread: ReportSummary['spread'] = {};
  for (const label of labels) {
    const rows = sessions.map((sid) => raw[sid]?.[label]).filter((v): v is Record<string, number> => !!v);
    for (const t of TASKS) {
      if (!rows.some((v) => finite(v[key(t, 'bps')]))) continue;
      const sum = (k: ActivityMetric) => {
        const xs = rows.map((v) => v[key(t, k)]).filter(finite);
        return xs.length ? xs.reduce((a, b) => a + b, 0) : null;
      };
      const avg = (k: string) => meanOf(rows.map((v) => v[k]).filter(finite));
      (spread[label] ??= {})[t] = {
        scored: sum('evaluated'),
        silent: sum('silent'),
        unscored: sum('unscored'),
        excluded: sum('excluded'),
        mean: mean[label]?.[key(t, 'bps')] ?? null,
        quantiles: Object.fromEntries(QUANTILE_KEYS.map((q) => [q, avg(key(t, `bps_${q}` as ActivityMetric))])),
        quantilesOver: 'sessions',
      };
    }
  }
  return spread;
}

/** One metric compared across model labels (higher is better for every metric reported). */
export interface Comparison {
  key: string;
  title: string;
  /** Labels with a value, best first (ties keep label order). */
  ranking: { label: string; value: number }[];
  /** Best minus second best (0 when tied); null with fewer than two labels. */
  margin: number | null;
  /** Sessions where the best label beats the second best, and sessions both have. */
  sessionsAhead: number;
  sessionsCompared: number;
}

/** Titles of the compared metrics, from the task registry. */
export const METRIC_TITLES: Record<string, string> = metricTitles();

/** The keys report.md and report.json compare models on, in that order. */
export const COMPARISON_KEYS: readonly string[] = [
  ...COMPARED_ACTIVITY_METRICS.flatMap((m) => TASKS.map((t) => key(t, m))),
  ...decodingTasks().map(scoreKey),
];

/** Compares labels on one key of the means; undefined when no label has it. */
export function compare(s: ReportSummary, key: string): Comparison | undefined {
  const ranking = s.labels
    .map((label) => ({ label, value: s.mean[label]?.[key] }))
    .filter((r): r is { label: string; value: number } => finite(r.value))
    .sort((a, b) => b.value - a.value);
  if (!ranking.length) return undefined;
  let ahead = 0;
  let both = 0;
  if (ranking.length > 1) {
    for (const sid of s.sessions) {
      const a = s.perSession[sid][ranking[0].label]?.[key];
      const b = s.perSession[sid][ranking[1].label]?.[key];
      if (!finite(a) || !finite(b)) continue;
      both++;
      if (a > b) ahead++;
    }
  }
  return {
    key,
    title: METRIC_TITLES[key] ?? key,
    ranking,
    margin: ranking.length > 1 ? ranking[0].value - ranking[1].value : null,
    sessionsAhead: ahead,
    sessionsCompared: both,
  };
}

/** A number for prose and tables: 3 decimals, or 2 significant digits when smaller. */
export function fmt(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return 'n/a';
  if (x !== 0 && Math.abs(x) < 10 ** -digits) return x.toPrecision(2);
  return x.toFixed(digits);
}

/** One honest sentence on a comparison, computed from the numbers alone. */
export function comparisonSentence(c: Comparison): string {
  const head = c.title.charAt(0).toUpperCase() + c.title.slice(1);
  const [first, second, ...rest] = c.ranking;
  if (!second) return `${head}: only ${first.label} has it (${fmt(first.value)}), nothing to compare.`;
  const across = c.sessionsCompared > 1 ? `; ${first.label} is ahead on ${c.sessionsAhead} of ${c.sessionsCompared} sessions` : '';
  const others = rest.length ? `; then ${rest.map((r) => `${r.label} (${fmt(r.value)})`).join(', ')}` : '';
  if (c.margin === 0 || fmt(first.value) === fmt(second.value)) {
    return `${head}: ${first.label} and ${second.label} are level to 3 decimals (${fmt(first.value)} vs ${fmt(second.value)})${across}${others}.`;
  }
  // A relative change is only meaningful against a positive baseline.
  const rel = second.value > 0 ? `, ${fmt((100 * c.margin!) / second.value, 1)} % more` : '';
  return `${head}: ${first.label} is better than ${second.label} by ${fmt(c.margin)} (${fmt(first.value)} vs ${fmt(second.value)}${rel})${across}${others}.`;
}

/** `items` with those named in `order` first, in that order; the others follow in their own order. */
export function namedFirst(items: readonly string[], order: readonly string[]): string[] {
  const rank = (x: string) => (order.includes(x) ? order.indexOf(x) : order.length);
  return [...items].sort((a, b) => rank(a) - rank(b)); // Array.prototype.sort is stable
}
