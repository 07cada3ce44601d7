// The evaluation detail file the report's per-neuron and raster plots read (docs/method.md §5.1, §6.2).
//
// Metrics items carry only scalars, so the evaluate stage also writes, per (session, model
// label), one JSON file `<sessionId>.<label>.eval-detail.json` in its artifact folder and sends
// its path as an Artifact item. This module defines that file (format 'mtm-eval-detail@1'), a
// writer for the evaluator, the helper that averages its arrays over trials, and a reader that
// names the file and field of anything wrong.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { writeFileAtomic } from '../io/atomic.ts';
import { spreadOfUnits, TASKS, type ReportSummary, type TaskKey } from './summary.ts';
import type { BinnedSession } from '../payloads.ts';
import type { EvalTask, TaskResult } from '../eval/tasks.ts';
import type { OracleResult } from '../eval/oracle.ts';
import { activityTask, key } from '../eval/task-registry.ts';

export const EVAL_DETAIL_FORMAT = 'mtm-eval-detail@1';
export const EVAL_DETAIL_SUFFIX = '.eval-detail.json';

/** File name for one (session, label): characters outside [A-Za-z0-9._-] become '_'. */
export function evalDetailFileName(sessionId: string, label: string): string {
  const safe = (x: string) => x.replace(/[^A-Za-z0-9._-]/g, '_');
  return `${safe(sessionId)}.${safe(label)}${EVAL_DETAIL_SUFFIX}`;
}

const perNeuron = z.array(z.number().nullable());
const matrix = z.array(z.array(z.number().nullable()));
// Keys in the report's task order: the parsed file (and so the written one) lists tasks in it.
const taskRecord = <T extends z.ZodType>(v: T) => z.object(Object.fromEntries(TASKS.map((t) => [t, v.optional()])) as Record<TaskKey, z.ZodOptional<T>>).strict();

const detailSchema = z.object({
  format: z.literal(EVAL_DETAIL_FORMAT),
  sessionId: z.string(),
  label: z.string(),
  binSizeMs: z.number().positive(),
  /** Region of each neuron, at the level the evaluation used. */
  regions: z.array(z.string()),
  /** Per task, bits/spike of each neuron; null where the neuron was excluded (no evaluated spikes). */
  perNeuronBps: taskRecord(perNeuron),
  /** The same for the true rates of a simulated session. */
  perNeuronOracleBps: taskRecord(perNeuron).optional(),
  /** Trial-averaged activity over the evaluated trials, each [neuron][bin] in counts per bin. */
  raster: z
    .object({
      /** Which task's predictions `predicted` holds (co_smoothing: each neuron predicted while left out). */
      task: z.enum(TASKS as [TaskKey, ...TaskKey[]]),
      trials: z.number().int().min(0),
      /** Time of the first bin's left edge relative to the alignment event, seconds. */
      windowStartS: z.number(),
      observed: matrix,
      predicted: matrix,
      trueRates: matrix.optional(),
    })
    .optional(),
});

export type EvalDetail = z.infer<typeof detailSchema>;

/**
 * Mean over trials of row-major [trial][bin][neuron] values, as [neuron][bin]; entries that are
 * NaN (not predicted) are skipped, and a (bin, neuron) with none is null. `exp` turns log-rates
 * into rates before averaging.
 */
export function trialAveraged(values: ArrayLike<number>, nTrials: number, nBins: number, nNeurons: number, options: { exp?: boolean; neurons?: ArrayLike<number> } = {}): (number | null)[][] {
  if (values.length !== nTrials * nBins * nNeurons) throw new Error(`trialAveraged: ${values.length} values for ${nTrials}x${nBins}x${nNeurons}`);
  const pick = options.neurons ? Array.from(options.neurons) : Array.from({ length: nNeurons }, (_, i) => i);
  return pick.map((n) => {
    const row: (number | null)[] = new Array(nBins);
    for (let b = 0; b < nBins; b++) {
      let sum = 0;
      let k = 0;
      for (let t = 0; t < nTrials; t++) {
        const v = values[(t * nBins + b) * nNeurons + n];
        if (Number.isNaN(v)) continue;
        sum += options.exp ? Math.exp(v) : v;
        k++;
      }
      row[b] = k ? sum / k : null;
    }
    return row;
  });
}

/** The evaluator's task id -> the report's metric stem (core/eval/task-registry.ts). */
const stemOf = (task: EvalTask): TaskKey => activityTask(task).stem;

const nullable = (a: Float64Array) => Array.from(a, (v) => (Number.isFinite(v) ? v : null));

/**
 * Builds a session's detail from the evaluator's task results (core/eval/tasks.ts) and oracles:
 * per-neuron bps per task, and the raster of `rasterTask` (observed counts, predicted rates and
 * true rates, each averaged over the task's trials).
 */
export function evalDetailFromTasks(
  s: BinnedSession,
  label: string,
  regions: readonly string[],
  results: Partial<Record<EvalTask, TaskResult>>,
  oracles: Partial<Record<EvalTask, OracleResult | undefined>> = {},
  rasterTask: EvalTask = 'coSmoothing',
): EvalDetail {
  const perNeuronBps: EvalDetail['perNeuronBps'] = {};
  const perNeuronOracleBps: NonNullable<EvalDetail['perNeuronOracleBps']> = {};
  for (const [task, r] of Object.entries(results) as [EvalTask, TaskResult | undefined][]) {
    if (!r || r.skipped) continue;
    perNeuronBps[stemOf(task)] = nullable(r.bps.perNeuron);
    const o = oracles[task];
    if (o) perNeuronOracleBps[stemOf(task)] = nullable(o.bps.perNeuron);
  }
  const d: EvalDetail = {
    format: EVAL_DETAIL_FORMAT,
    sessionId: s.sessionId,
    label,
    binSizeMs: s.binSizeMs,
    regions: [...regions],
    perNeuronBps,
    ...(Object.keys(perNeuronOracleBps).length ? { perNeuronOracleBps } : {}),
  };
  const r = results[rasterTask];
  if (r && !r.skipped && r.rows.length) {
    const { nBins: T, nNeurons: N } = s;
    const TN = T * N;
    const gather = (src: ArrayLike<number>) => {
      const out = new Float64Array(r.rows.length * TN);
      r.rows.forEach((row, i) => {
        for (let e = 0; e < TN; e++) out[i * TN + e] = src[row * TN + e];
      });
      return out;
    };
    d.raster = {
      task: stemOf(rasterTask),
      trials: r.rows.length,
      windowStartS: s.windowS[0],
      observed: trialAveraged(gather(s.counts), r.rows.length, T, N),
      predicted: trialAveraged(r.predicted, r.rows.length, T, N, { exp: true }),
      ...(s.trueRates ? { trueRates: trialAveraged(gather(s.trueRates), r.rows.length, T, N) } : {}),
    };
  }
  return d;
}

// Six significant digits are plenty for plots and keep the files small.
const round = (_k: string, v: unknown) => (typeof v === 'number' && Number.isFinite(v) && !Number.isInteger(v) ? Number(v.toPrecision(6)) : v);

/** Writes a detail file (atomically), refusing one that does not match the format. */
export async function writeEvalDetail(path: string, d: EvalDetail): Promise<void> {
  const checked = checkDetail(d, path);
  await writeFileAtomic(path, JSON.stringify(checked, round) + '\n');
}

function checkDetail(x: unknown, file: string): EvalDetail {
  const r = detailSchema.safeParse(x);
  if (!r.success) {
    const issues = r.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new Error(`${file}: not a valid ${EVAL_DETAIL_FORMAT} file: ${issues.join('; ')}${r.error.issues.length > 5 ? ` (and ${r.error.issues.length - 5} more)` : ''}`);
  }
  const d = r.data;
  const n = d.regions.length;
  const lengthIssue = (what: string, len: number) => new Error(`${file}: ${what} has ${len} entries, expected one per neuron (${n}, the length of regions)`);
  for (const [t, v] of Object.entries(d.perNeuronBps)) if (v && v.length !== n) throw lengthIssue(`perNeuronBps.${t}`, v.length);
  for (const [t, v] of Object.entries(d.perNeuronOracleBps ?? {})) if (v && v.length !== n) throw lengthIssue(`perNeuronOracleBps.${t}`, v.length);
  if (d.raster) {
    for (const k of ['observed', 'predicted', 'trueRates'] as const) {
      const m = d.raster[k];
      if (!m) continue;
      if (m.length !== n) throw lengthIssue(`raster.${k}`, m.length);
      const nBins = d.raster.observed[0]?.length ?? 0;
      const bad = m.findIndex((row) => row.length !== nBins);
      if (bad >= 0) throw new Error(`${file}: raster.${k}[${bad}] has ${m[bad].length} bins, raster.observed[0] has ${nBins}`);
    }
  }
  return d;
}

/** Reads and checks a detail file; errors name the file and the field. */
export async function readEvalDetail(path: string): Promise<EvalDetail> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read the evaluation detail file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return checkDetail(json, path);
}

/**
 * Replaces the summary's per-session quantile means with the quantiles over every scored unit
 * of every session, from the detail files' per-neuron values (a unit of each session counts
 * once per label and task; a detail file repeated for the same session and label is read once).
 * Labels and tasks without detail values keep what the metrics gave. Counts stay as the metrics
 * summed them. Returns the summary, changed in place.
 */
export function withUnitSpread(summary: ReportSummary, details: readonly EvalDetail[]): ReportSummary {
  const values = new Map<string, (number | null)[]>();
  const seen = new Set<string>();
  for (const d of details) {
    const key = `${d.sessionId}\u0000${d.label}`;
    if (seen.has(key)) continue;
    seen.add(key);
    for (const t of TASKS) {
      const v = d.perNeuronBps[t];
      if (!v) continue;
      const k = `${d.label}\u0000${t}`;
      values.set(k, [...(values.get(k) ?? []), ...v]);
    }
  }
  for (const [k, v] of values) {
    const [label, task] = k.split('\u0000') as [string, TaskKey];
    const current = summary.spread[label]?.[task];
    const units = spreadOfUnits(v, current?.mean ?? summary.mean[label]?.[key(task, 'bps')] ?? null);
    (summary.spread[label] ??= {})[task] = {
      silent: null, unscored: null, excluded: null,
      ...current,
      ...units,
      // The metrics' count, when given, covers the same units; the detail files' otherwise.
      scored: current?.scored ?? units.scored,
    };
  }
  return summary;
}
