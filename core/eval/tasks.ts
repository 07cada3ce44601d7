// The four activity tasks of docs/method.md §5.2 (co-smoothing, forward prediction, inter-region,
// intra-region) on the test split: fixed masks (no random masking), eval-mode forward passes,
// bits/spike on the held-out entries.
//
// Decisions, made here:
// - Work is a list of jobs (test trial, task mask). A batch stacks jobs along the batch axis, so
//   leave-one-out tasks run many (trial, left-out neuron) pairs per forward pass while every copy
//   still has exactly one neuron left out.
// - Leave-one-out fast path: when the predictor has `leaveOneOut` (NDT1's exact rank-1 pass),
//   co-smoothing and intra-region send each base input (a test trial, for intra-region with the
//   region's outside zeroed) once per batch with the neurons its copies leave out, and batches
//   run trial-major in near-equal chunks per base, so a batch holds few bases. Same results to
//   float32 rounding; `fastLeaveOneOut: false` forces the plain path (one materialised copy per row).
// - The model is reached through a `LogRatePredictor`, which also receives the session trial of
//   each batch row: oracles and tests can answer without a model (see modelPredictor).
// - Prompts: each task's prompt is a parameter (defaults: neuron, causal, inter-region,
//   intra-region). A model without prompt tokens (capabilities.promptTokens false) is evaluated with
//   mode 'temporal' for every task: it has no prompt to pick, and 'temporal' is the mode that
//   means "no prompt". Causal attention goes with the causal prompt, as in training (the sampler
//   sets it exactly for causal batches); so a temporal-only model predicts the zeroed last bins
//   with the bidirectional attention it was trained with. Nothing leaks: those bins are zero in
//   the input for every neuron.
// - Inter-region needs two regions (zeroing the only region zeroes the whole input): with one it
//   is skipped and says so. Neurons without a region label form the region 'unlabelled', as in
//   the masking sampler, so the masks match training.
import type { ArchitectureModel } from '../architecture.ts';
import type { BinnedSession } from '../payloads.ts';
import type { MaskingMode } from '../masking/types.ts';
import { bitsPerSpike, type BpsResult } from './bps.ts';
import { activityTask, activityTasks, type PlanInput } from './task-registry.ts';
import * as tf from '../tensor/tf.ts';

/** An activity task's id in the task registry (core/eval/task-registry.ts). */
export type EvalTask = string;
/** The activity tasks in evaluation order, from the task registry. */
export const EVAL_TASKS: readonly EvalTask[] = activityTasks().map((t) => t.id);

/** snake_case stem of each task's metric keys (co_smoothing_bps, ...), from the task registry. */
export const TASK_METRIC: Record<EvalTask, string> = Object.fromEntries(activityTasks().map((t) => [t.id, t.stem]));

/** The prompt each task uses on a model with prompt tokens (docs/method.md §5.2), from the task registry. */
export const DEFAULT_TASK_PROMPTS: Record<EvalTask, MaskingMode> = Object.fromEntries(activityTasks().map((t) => [t.id, t.defaultPrompt]));

export type RegionLevel = 'acronym' | 'beryl' | 'cosmos';

/** Region label per neuron at `level`; unlabelled neurons share one region, as in the masking sampler. */
export function regionLabels(s: Pick<BinnedSession, 'neurons'>, level: RegionLevel = 'acronym'): string[] {
  return s.neurons.map((n) => n[level] || 'unlabelled');
}

/** Whether a model has learned prompt tokens (ModelCapabilities.promptTokens). */
export function hasPromptTokens(model: Pick<ArchitectureModel, 'capabilities'>): boolean {
  return model.capabilities.promptTokens;
}

/**
 * The mode and attention a task runs with, given the requested prompt and the model.
 * `trainedModes` (the masking modes the model was trained with, from its metadata) decides when
 * known: a mode the model was trained with runs as asked (its prompt token when it has them,
 * causal attention for `causal`); otherwise a single-mode model (e.g. causal-only, as in the
 * paper's ablation) runs its own mode, and anything else runs `temporal`. Without that record
 * (older model files) a model with prompt tokens runs the prompt, one without runs `temporal`.
 */
export function resolvePrompt(prompt: MaskingMode, promptTokens: boolean, trainedModes?: readonly MaskingMode[]): { mode: MaskingMode; causal: boolean } {
  let mode: MaskingMode;
  if (trainedModes?.length) mode = trainedModes.includes(prompt) ? prompt : trainedModes.length === 1 ? trainedModes[0] : 'temporal';
  else mode = promptTokens ? prompt : 'temporal';
  return { mode, causal: mode === 'causal' };
}

/** The masking modes a saved model was trained with (train-model's metadata), when recorded. */
export function trainedModesOf(metadata: Record<string, unknown> | undefined): MaskingMode[] | undefined {
  const m = metadata?.trainedModes;
  return Array.isArray(m) && m.every((x) => typeof x === 'string') ? (m as MaskingMode[]) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Masks. One trial's mask, row-major [bin][neuron]; every test trial gets the same one.

export interface TrialMask {
  /** 1 where the input is zeroed. */
  masked: Uint8Array;
  /** 1 where the prediction is scored. */
  scored: Uint8Array;
}

function columnMask(nBins: number, nNeurons: number, pick: (n: number) => boolean): Uint8Array {
  const out = new Uint8Array(nBins * nNeurons);
  for (let n = 0; n < nNeurons; n++) {
    if (!pick(n)) continue;
    for (let t = 0; t < nBins; t++) out[t * nNeurons + n] = 1;
  }
  return out;
}

/** Co-smoothing: neuron `neuron` zeroed in every bin, and only it scored. */
export function coSmoothingMask(nBins: number, nNeurons: number, neuron: number): TrialMask {
  const m = columnMask(nBins, nNeurons, (n) => n === neuron);
  return { masked: m, scored: m };
}

/** Forward prediction: the last `heldOutBins` bins zeroed for every neuron, and scored. */
export function forwardPredictionMask(nBins: number, nNeurons: number, heldOutBins: number): TrialMask {
  if (!(Number.isInteger(heldOutBins) && heldOutBins >= 1 && heldOutBins < nBins)) {
    throw new Error(`forward prediction: heldOutBins must be an integer in [1, ${nBins - 1}] for ${nBins} bins, got ${heldOutBins}`);
  }
  const m = new Uint8Array(nBins * nNeurons);
  m.fill(1, (nBins - heldOutBins) * nNeurons);
  return { masked: m, scored: m };
}

/** Inter-region: every neuron of `region` zeroed and scored; the other regions predict it. */
export function interRegionMask(regions: readonly string[], nBins: number, region: string): TrialMask {
  const m = columnMask(nBins, regions.length, (n) => regions[n] === region);
  return { masked: m, scored: m };
}

/** Intra-region: everything outside `region` zeroed, plus `neuron` (inside it), which alone is scored. */
export function intraRegionMask(regions: readonly string[], nBins: number, region: string, neuron: number): TrialMask {
  if (regions[neuron] !== region) throw new Error(`intra-region: neuron ${neuron} is in region '${regions[neuron]}', not '${region}'`);
  const masked = columnMask(nBins, regions.length, (n) => regions[n] !== region || n === neuron);
  return { masked, scored: columnMask(nBins, regions.length, (n) => n === neuron) };
}

/** A task as a list of masks, each applied to every test trial. */
export interface TaskPlan {
  count: number;
  mask(k: number): TrialMask;
  /** Set when the task cannot run on this session. */
  skipped?: string;
  /** Leave-one-out tasks (co-smoothing, intra-region): the same masks, by structure. */
  leaveOneOut?: LeaveOneOutPlan;
}

/**
 * Mask k zeroes, in every bin, the neurons baseZeroed[group[k]] (shared by every mask of the
 * group) plus neuron leftOut[k], and scores exactly neuron leftOut[k] in every bin.
 */
export interface LeaveOneOutPlan {
  leftOut: Int32Array;
  group: Int32Array;
  baseZeroed: Int32Array[];
}

/**
 * The masks of a task. `leaveOut` restricts the leave-one-out tasks (co-smoothing, intra-region)
 * to those neurons, e.g. a seeded subset when every neuron would take too long; the others are
 * then not scored by those tasks.
 */
export function planTask(task: EvalTask, nBins: number, regions: readonly string[], forwardBins: number, leaveOut?: readonly number[]): TaskPlan {
  const spec = activityTask(task);
  const nNeurons = regions.length;
  const names = regionNames(regions);
  if (leaveOut) for (const n of leaveOut) if (!(Number.isInteger(n) && n >= 0 && n < nNeurons)) throw new Error(`leaveOut: neuron ${n} is not in [0, ${nNeurons})`);
  // Zeroing the only region would zero the whole input: a task needing several is skipped instead.
  const need = spec.needs.regions ?? 1;
  if (names.length < need) {
    return { count: 0, mask: () => { throw new Error('no masks'); }, skipped: `needs at least ${need === 2 ? 'two' : need} regions, the session has ${names.length} (${names.join(', ') || 'none'})` };
  }
  const plan = spec.plan ?? BUILTIN_PLANS[task];
  if (!plan) throw new Error(`evaluation task '${task}' has no plan: give it one in the task registry or in BUILTIN_PLANS (core/eval/tasks.ts)`);
  return plan({ nBins, regions, forwardBins, leaveOut });
}

/** Sorted region names of a session. */
const regionNames = (regions: readonly string[]) => [...new Set(regions)].sort();

/** The masks of the built-in tasks of the registry (core/eval/task-registry.ts). */
const BUILTIN_PLANS: Record<string, (x: PlanInput) => TaskPlan> = {
  coSmoothing({ nBins, regions, leaveOut }) {
    const nNeurons = regions.length;
    const order = leaveOut ? [...new Set(leaveOut)].sort((a, b) => a - b) : [...Array(nNeurons).keys()];
    return {
      count: order.length, mask: (k) => coSmoothingMask(nBins, nNeurons, order[k]),
      leaveOneOut: { leftOut: Int32Array.from(order), group: new Int32Array(order.length), baseZeroed: [new Int32Array(0)] },
    };
  },
  forwardPrediction({ nBins, regions, forwardBins }) {
    forwardPredictionMask(nBins, regions.length, forwardBins); // validates before any work
    return { count: 1, mask: () => forwardPredictionMask(nBins, regions.length, forwardBins) };
  },
  interRegion({ nBins, regions }) {
    const names = regionNames(regions);
    return { count: names.length, mask: (k) => interRegionMask(regions, nBins, names[k]) };
  },
  intraRegion({ nBins, regions, leaveOut }) {
    const names = regionNames(regions);
    const chosen = leaveOut ? new Set(leaveOut) : undefined;
    // Neurons grouped by region, so consecutive jobs share the region's outside mask pattern.
    const order = names.flatMap((r) => regions.flatMap((x, n) => (x === r && (!chosen || chosen.has(n)) ? [n] : [])));
    const outside = names.map((r) => Int32Array.from(regions.flatMap((x, n) => (x !== r ? [n] : []))));
    return {
      count: order.length, mask: (k) => intraRegionMask(regions, nBins, regions[order[k]], order[k]),
      leaveOneOut: { leftOut: Int32Array.from(order), group: Int32Array.from(order, (n) => names.indexOf(regions[n])), baseZeroed: outside },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Running a task.

export interface PredictRequest {
  /** Masked counts [B, T, N]. */
  input: tf.Tensor3D;
  mode: MaskingMode;
  causal: boolean;
  /** Session trial (row of `counts`) each batch row is a copy of. */
  rows: Int32Array;
}

/** A leave-one-out batch: B copies of U base inputs, each with one more neuron zeroed. */
export interface LeaveOneOutRequest extends Omit<PredictRequest, 'input'> {
  /** Base inputs [U, T, N]: the task's shared masked entries zeroed, not the left-out neuron. */
  input: tf.Tensor3D;
  /** [B]: base row each copy is made of; copies of one base are adjacent. */
  baseRow: Int32Array;
  /** [B]: neuron zeroed in every bin of each copy. */
  leftOut: Int32Array;
}

/**
 * Log-rates [B, T, N] for a batch; called inside tf.tidy, so it may create tensors freely.
 * `leaveOneOut`, when present, answers leave-one-out batches without materialising the copies
 * (ArchitectureModel.forwardLeaveOneOut) and must equal the plain call on them.
 */
export type LogRatePredictor = ((req: PredictRequest) => tf.Tensor3D) & {
  leaveOneOut?: (req: LeaveOneOutRequest) => tf.Tensor3D;
};

/** A predictor running the model's forward pass in eval mode (no dropout), with its leave-one-out path when it has one. */
export function modelPredictor(model: Pick<ArchitectureModel, 'forward' | 'forwardLeaveOneOut'>, sessionId: string): LogRatePredictor {
  const p: LogRatePredictor = (r) => model.forward({ sessionId, input: r.input, mode: r.mode, causal: r.causal }, { training: false });
  if (model.forwardLeaveOneOut) {
    p.leaveOneOut = (r) =>
      model.forwardLeaveOneOut!({ sessionId, input: r.input, baseRow: r.baseRow, leftOut: r.leftOut, mode: r.mode, causal: r.causal }, { training: false });
  }
  return p;
}

/** Session trial rows of the test split (or of `split`), in session order. */
export function testRows(s: Pick<BinnedSession, 'trials' | 'nTrials'>, split: 'test' | 'val' = 'test'): Int32Array {
  const rows: number[] = [];
  for (let t = 0; t < s.nTrials; t++) if (s.trials.split[t] === split) rows.push(t);
  return Int32Array.from(rows);
}

/** The given trials of a [trial][...] array, `perTrial` values each, stacked in `rows` order. */
export function gatherTrials<T extends Int32Array | Float32Array>(data: T, rows: ArrayLike<number>, perTrial: number): T {
  const out = new (data.constructor as new (n: number) => T)(rows.length * perTrial);
  for (let i = 0; i < rows.length; i++) out.set(data.subarray(rows[i] * perTrial, (rows[i] + 1) * perTrial), i * perTrial);
  return out;
}

export interface RunOptions {
  /** Mode (prompt) and attention the model runs with. */
  mode: MaskingMode;
  causal: boolean;
  /** Trial copies per forward pass. */
  batchSize: number;
  /** Trials to evaluate (default: the test split). */
  rows?: Int32Array;
  /** Leave-one-out tasks: only these neurons (default: all). */
  leaveOut?: readonly number[];
  /** Leave-one-out tasks use the predictor's leaveOneOut path when it has one (default true). */
  fastLeaveOneOut?: boolean;
  signal?: AbortSignal;
  onBatch?: (jobsDone: number, jobsTotal: number) => void;
}

export interface TaskResult {
  task: EvalTask;
  mode: MaskingMode;
  causal: boolean;
  /** Session trial of each row of `predicted` / `scored`. */
  rows: Int32Array;
  nBins: number;
  nNeurons: number;
  /** Predicted log-rates [row][bin][neuron] at the scored entries; NaN elsewhere. */
  predicted: Float32Array;
  /** 1 where an entry was scored (each scored entry is predicted by exactly one masked copy). */
  scored: Uint8Array;
  bps: BpsResult;
  /** Trial copies run through the model. */
  forwardPasses: number;
  seconds: number;
  skipped?: string;
}

const nextTick = () => new Promise<void>((res) => setImmediate(res));

/** Flat indices where a mask is 1. */
function indicesOf(m: Uint8Array): Int32Array {
  let c = 0;
  for (let i = 0; i < m.length; i++) c += m[i];
  const out = new Int32Array(c);
  c = 0;
  for (let i = 0; i < m.length; i++) if (m[i]) out[c++] = i;
  return out;
}

/** One task's trials and where its results go, shared by its batches. */
interface TaskArrays {
  /** Session trial of each row. */
  rows: Int32Array;
  /** Observed counts [row][bin][neuron]. */
  counts: Int32Array;
  predicted: Float32Array;
  scored: Uint8Array;
}

/**
 * Runs one task's masks over the trials with the predictor and scores it. Yields to the event
 * loop between batches (logs, SIGINT); `signal` stops it between batches with an error.
 */
export async function runTask(s: BinnedSession, task: EvalTask, predictor: LogRatePredictor, regions: readonly string[], forwardBins: number, o: RunOptions): Promise<TaskResult> {
  const started = performance.now();
  const { nBins: T, nNeurons: N } = s;
  const TN = T * N;
  const rows = o.rows ?? testRows(s);
  if (regions.length !== N) throw new Error(`session ${s.sessionId}: ${regions.length} region labels for ${N} neurons`);
  if (!(Number.isInteger(o.batchSize) && o.batchSize >= 1)) throw new Error(`batchSize must be a positive integer, got ${o.batchSize}`);
  const plan = planTask(task, T, regions, forwardBins, o.leaveOut);
  const nRows = rows.length;
  const predicted = new Float32Array(nRows * TN).fill(NaN);
  const scored = new Uint8Array(nRows * TN);
  const counts = gatherTrials(s.counts, rows, TN);
  const done = (skipped?: string): TaskResult => ({
    task, mode: o.mode, causal: o.causal, rows, nBins: T, nNeurons: N, predicted, scored,
    bps: bitsPerSpike({ counts, predicted, logRates: true, nTrials: nRows, nBins: T, nNeurons: N, mask: scored }),
    forwardPasses: plan.count * nRows, seconds: (performance.now() - started) / 1000, skipped,
  });
  if (plan.skipped) return { ...done(plan.skipped), forwardPasses: 0 };
  if (nRows === 0) return { ...done('no test trials'), forwardPasses: 0 };

  const arrays: TaskArrays = { rows, counts, predicted, scored };
  if (plan.leaveOneOut && predictor.leaveOneOut && o.fastLeaveOneOut !== false) {
    await runLeaveOneOut(s, task, plan.leaveOneOut, predictor.leaveOneOut, arrays, o);
  } else {
    await runMasked(s, task, plan, predictor, arrays, o);
  }
  return done();
}

const interrupted = (task: EvalTask, s: BinnedSession) => new Error(`${task} evaluation of session ${s.sessionId} interrupted`);

/** One forward pass inside tf.tidy, its output checked to be [b, T, N], read back and disposed. */
async function passValues(pass: () => tf.Tensor3D, shape: [number, number, number], wrongShape: (got: number[]) => string): Promise<Float32Array> {
  const [b, T, N] = shape;
  const out = tf.tidy(() => {
    const y = pass();
    if (y.shape[0] !== b || y.shape[1] !== T || y.shape[2] !== N) throw new Error(wrongShape(y.shape));
    return y;
  });
  try {
    return (await out.data()) as Float32Array;
  } finally {
    out.dispose();
  }
}

/** A plan's masks as flat index lists, the last one kept: jobs run mask-major, so consecutive jobs share it. */
function cachedMasks(plan: TaskPlan): (k: number) => { masked: Int32Array; scored: Int32Array } {
  let cachedK = -1;
  let cached: { masked: Int32Array; scored: Int32Array } | undefined;
  return (k) => {
    if (k !== cachedK) {
      const m = plan.mask(k);
      cached = { masked: indicesOf(m.masked), scored: indicesOf(m.scored) };
      cachedK = k;
    }
    return cached!;
  };
}

/** The plain path: every job (mask, trial) a materialised masked copy, batchSize copies a pass. */
async function runMasked(s: BinnedSession, task: EvalTask, plan: TaskPlan, predictor: LogRatePredictor, a: TaskArrays, o: RunOptions): Promise<void> {
  const { nBins: T, nNeurons: N } = s;
  const TN = T * N;
  const total = plan.count * a.rows.length;
  const maskOf = cachedMasks(plan);
  const input = new Float32Array(Math.min(o.batchSize, total) * TN);
  for (let start = 0; start < total; start += o.batchSize) {
    if (o.signal?.aborted) throw interrupted(task, s);
    const b = Math.min(o.batchSize, total - start);
    const batchRows = fillMaskedBatch(input, a, maskOf, start, b, TN);
    const values = await passValues(
      () => {
        const x = tf.tensor3d(b === input.length / TN ? input : input.subarray(0, b * TN), [b, T, N], 'float32');
        return predictor({ input: x, mode: o.mode, causal: o.causal, rows: batchRows });
      },
      [b, T, N],
      (got) => `the model returned shape [${got.join(', ')}] for a batch of [${b}, ${T}, ${N}]`,
    );
    storeMaskedBatch(values, a, maskOf, start, b, TN, (v, r) => `${task}: the model predicted a non-finite log-rate (${v}) for session ${s.sessionId}, trial ${r}`);
    o.onBatch?.(start + b, total);
    await nextTick();
  }
}

/** Copies jobs [start, start + b) into `input`, their masked entries zeroed; returns each copy's session trial. */
function fillMaskedBatch(input: Float32Array, a: TaskArrays, maskOf: ReturnType<typeof cachedMasks>, start: number, b: number, TN: number): Int32Array {
  const nRows = a.rows.length;
  const batchRows = new Int32Array(b);
  // Jobs run mask-major: job j is mask floor(j / nRows) on trial j % nRows.
  for (let i = 0; i < b; i++) {
    const j = start + i;
    const r = j % nRows;
    batchRows[i] = a.rows[r];
    const off = i * TN;
    const src = r * TN;
    for (let e = 0; e < TN; e++) input[off + e] = a.counts[src + e];
    const m = maskOf(Math.floor(j / nRows)).masked;
    for (let e = 0; e < m.length; e++) input[off + m[e]] = 0;
  }
  return batchRows;
}

/** Keeps each job's predictions at its scored entries; a non-finite one is an error. */
function storeMaskedBatch(
  values: Float32Array, a: TaskArrays, maskOf: ReturnType<typeof cachedMasks>, start: number, b: number, TN: number,
  nonFinite: (v: number, trial: number) => string,
): void {
  const nRows = a.rows.length;
  for (let i = 0; i < b; i++) {
    const j = start + i;
    const r = j % nRows;
    const sc = maskOf(Math.floor(j / nRows)).scored;
    const off = i * TN;
    const dst = r * TN;
    for (let e = 0; e < sc.length; e++) {
      const v = values[off + sc[e]];
      if (!Number.isFinite(v)) throw new Error(nonFinite(v, a.rows[r]));
      a.predicted[dst + sc[e]] = v;
      a.scored[dst + sc[e]] = 1;
    }
  }
}

/** A run of copies of one base: trial row r with masks [k0, k0 + len) of one group. */
interface LooChunk {
  r: number;
  k0: number;
  len: number;
}

/** What every leave-one-out batch of one task shares. */
interface LooRun {
  s: BinnedSession;
  task: EvalTask;
  loo: LeaveOneOutPlan;
  predict: NonNullable<LogRatePredictor['leaveOneOut']>;
  a: TaskArrays;
  o: RunOptions;
  /** The batch's base inputs [U, T, N], reused. */
  base: Float32Array;
}

/**
 * The leave-one-out jobs of runTask through the predictor's fast path. A base is one trial with
 * one group's shared mask; its copies (one per left-out neuron of the group) go in near-equal
 * chunks of at most batchSize, and consecutive chunks share a batch while they fit. So a batch
 * holds few bases, each chunk is its own base, and co-smoothing's chunks are all equal (the
 * cheapest layout for NDT1: one broadcast subtraction).
 */
async function runLeaveOneOut(
  s: BinnedSession, task: EvalTask, loo: LeaveOneOutPlan, predict: NonNullable<LogRatePredictor['leaveOneOut']>, a: TaskArrays, o: RunOptions,
): Promise<void> {
  const TN = s.nBins * s.nNeurons;
  const total = loo.leftOut.length * a.rows.length;
  const B = o.batchSize;
  const segments = groupSegments(loo);
  const run: LooRun = { s, task, loo, predict, a, o, base: new Float32Array(Math.min(B, total) * TN) };
  let chunks: LooChunk[] = [];
  let size = 0;
  let jobsDone = 0;
  const flush = async () => {
    await runLooBatch(run, chunks, size);
    jobsDone += size;
    chunks = [];
    size = 0;
    o.onBatch?.(jobsDone, total);
    await nextTick();
  };
  for (let r = 0; r < a.rows.length; r++) {
    for (const [k0, k1] of segments) {
      const m = k1 - k0;
      const c = Math.ceil(m / B);
      for (let q = 0; q < c; q++) {
        const start = k0 + Math.floor((q * m) / c);
        const len = k0 + Math.floor(((q + 1) * m) / c) - start;
        if (size + len > B) await flush();
        chunks.push({ r, k0: start, len });
        size += len;
      }
    }
  }
  if (size > 0) await flush();
}

/** Mask ranges [k0, k1) sharing a group (plans list a group's masks together). */
function groupSegments(loo: LeaveOneOutPlan): [number, number][] {
  const count = loo.leftOut.length;
  const segments: [number, number][] = [];
  for (let k = 0; k < count;) {
    let e = k + 1;
    while (e < count && loo.group[e] === loo.group[k]) e++;
    segments.push([k, e]);
    k = e;
  }
  return segments;
}

/** One leave-one-out pass over the chunks' b copies, its predictions kept at each copy's left-out neuron. */
async function runLooBatch(run: LooRun, chunks: LooChunk[], b: number): Promise<void> {
  const { s, task, o } = run;
  const { nBins: T, nNeurons: N } = s;
  const TN = T * N;
  if (o.signal?.aborted) throw interrupted(task, s);
  const batch = fillLooBatch(run, chunks, b);
  const values = await passValues(
    () => {
      const x = tf.tensor3d(run.base.subarray(0, chunks.length * TN), [chunks.length, T, N], 'float32');
      return run.predict({ input: x, mode: o.mode, causal: o.causal, rows: batch.rows, baseRow: batch.baseRow, leftOut: batch.leftOut });
    },
    [b, T, N],
    (got) => `the model's leave-one-out pass returned shape [${got.join(', ')}] for ${b} copies of [${T}, ${N}]`,
  );
  storeLooBatch(run, chunks, batch, values);
}

/** Writes each chunk's base (its trial, its group's shared entries zeroed) and the copies' trial, base and left-out neuron. */
function fillLooBatch(run: LooRun, chunks: LooChunk[], b: number): { rows: Int32Array; baseRow: Int32Array; leftOut: Int32Array } {
  const { loo, a, base } = run;
  const { nBins: T, nNeurons: N } = run.s;
  const TN = T * N;
  const rows = new Int32Array(b);
  const baseRow = new Int32Array(b);
  const leftOut = new Int32Array(b);
  let i = 0;
  chunks.forEach(({ r, k0, len }, u) => {
    const off = u * TN;
    base.set(a.counts.subarray(r * TN, (r + 1) * TN), off);
    for (const n of loo.baseZeroed[loo.group[k0]]) for (let t = 0; t < T; t++) base[off + t * N + n] = 0;
    for (let k = k0; k < k0 + len; k++, i++) {
      rows[i] = a.rows[r];
      baseRow[i] = u;
      leftOut[i] = loo.leftOut[k];
    }
  });
  return { rows, baseRow, leftOut };
}

/** Keeps each copy's predictions of its left-out neuron, every bin; a non-finite one is an error. */
function storeLooBatch(run: LooRun, chunks: LooChunk[], batch: { rows: Int32Array; leftOut: Int32Array }, values: Float32Array): void {
  const { s, task, a } = run;
  const N = s.nNeurons;
  const TN = s.nBins * N;
  for (let c = 0, row = 0; c < chunks.length; c++) {
    const dst = chunks[c].r * TN;
    for (let q = 0; q < chunks[c].len; q++, row++) {
      const n = batch.leftOut[row];
      const off = row * TN;
      for (let e = n; e < TN; e += N) {
        const v = values[off + e];
        if (!Number.isFinite(v)) throw new Error(`${task}: the model predicted a non-finite log-rate (${v}) for session ${s.sessionId}, trial ${batch.rows[row]}`);
        a.predicted[dst + e] = v;
        a.scored[dst + e] = 1;
      }
    }
  }
}

export interface EvaluateTasksOptions {
  tasks: readonly EvalTask[];
  /** Requested prompt per task (resolved against the model's prompt tokens). */
  prompts: Record<EvalTask, MaskingMode>;
  promptTokens: boolean;
  /** Masking modes the model was trained with (see resolvePrompt). */
  trainedModes?: readonly MaskingMode[];
  batchSize: number;
  forwardBins: number;
  regions: readonly string[];
  /** Leave-one-out tasks: only these neurons (default: all). */
  leaveOut?: readonly number[];
  /** Use the predictor's leave-one-out fast path when it has one (default true). */
  fastLeaveOneOut?: boolean;
  signal?: AbortSignal;
  onBatch?: (task: EvalTask, jobsDone: number, jobsTotal: number) => void;
}

/** Runs the chosen tasks in order on the session's test split. */
export async function evaluateTasks(s: BinnedSession, predictor: LogRatePredictor, o: EvaluateTasksOptions): Promise<Partial<Record<EvalTask, TaskResult>>> {
  const out: Partial<Record<EvalTask, TaskResult>> = {};
  const rows = testRows(s);
  for (const task of o.tasks) {
    const { mode, causal } = resolvePrompt(o.prompts[task], o.promptTokens, o.trainedModes);
    out[task] = await runTask(s, task, predictor, o.regions, o.forwardBins, {
      mode, causal, batchSize: o.batchSize, rows, leaveOut: o.leaveOut, fastLeaveOneOut: o.fastLeaveOneOut, signal: o.signal,
      onBatch: o.onBatch && ((d, t) => o.onBatch!(task, d, t)),
    });
  }
  return out;
}
