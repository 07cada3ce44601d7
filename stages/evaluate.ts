// Evaluates trained models on the test split of each session: the four bits/spike tasks, the oracle, behaviour decoding (docs/method.md §5).
//
// Decisions:
// - Both inputs are collected: a model usually arrives only after training has read every
//   session, so waiting on it while holding the session stream back would deadlock. Every model
//   is evaluated on every session; the model must have per-session weights for the session
//   (fine-tuning on new sessions is the training stage's job), else the error says so.
// - One `metrics` item per (model, session), keyed as docs/method.md §6.2 names them; a figure that could
//   not be computed (task skipped, no true rates, target missing) is left out, and the reason is
//   logged and written to evaluation.json. Per-neuron results (Parquet), the assembled test-trial
//   predictions per task (.npy log-rates, NaN where not scored), the test counts and true rates
//   go to <artifact dir>/<label>/<session>/ for the report stage; one `artifacts` item per folder.
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { z } from 'zod';
import { defineStage, type StageContext } from '../core/stage.ts';
import type { BinnedSession, ModelRef } from '../core/payloads.ts';
import type { ArchitectureModel } from '../core/architecture.ts';
import { MASKING_MODES, type MaskingMode } from '../core/masking/types.ts';
import { loadTrainedModel } from '../core/train/checkpoint.ts';
import { writeFileAtomic } from '../core/io/atomic.ts';
import { writeNpy } from '../core/io/npy.ts';
import { writeParquet, type ParquetColumn } from '../core/io/parquet.ts';
import { DEFAULT_LAMBDAS } from '../core/eval/decoders.ts';
import { QUANTILE_LEVELS, quantileKey } from '../core/eval/bps.ts';
import { BEHAVIOUR_TARGETS, decodeBehaviour, type BehaviourResult, type BehaviourTarget } from '../core/eval/behaviour.ts';
import { activityTask, activityTasks, BPS_METRICS, chanceKey, decodingTasks, key, ORACLE_METRICS, scoreKey } from '../core/eval/task-registry.ts';
import { oracleForTask, type OracleResult } from '../core/eval/oracle.ts';
import { evalDetailFileName, evalDetailFromTasks, writeEvalDetail } from '../core/report/detail.ts';
import {
  DEFAULT_TASK_PROMPTS, EVAL_TASKS, TASK_METRIC, gatherTrials, hasPromptTokens, modelPredictor, planTask, regionLabels, resolvePrompt, runTask, testRows, trainedModesOf,
  type EvalTask, type TaskResult,
} from '../core/eval/tasks.ts';
import { createRng, hashString } from '../core/rng.ts';

const modeEnum = z.enum(MASKING_MODES as [MaskingMode, ...MaskingMode[]]);
const prompt = (task: string, def: MaskingMode) =>
  modeEnum.default(def).describe(`mode (prompt) the model runs ${task} with; a model without prompt tokens always runs 'temporal'. Causal attention goes with 'causal'`);
/** The parameter holding a task's prompt: coSmoothing -> coSmoothingPrompt. */
const promptParam = (task: EvalTask) => `${task}Prompt` as const;
/** One prompt parameter per registered activity task, in registry order. */
const promptParams = Object.fromEntries(activityTasks().map((t) => [promptParam(t.id), prompt(t.prose, t.defaultPrompt)])) as Record<`${string}Prompt`, ReturnType<typeof prompt>>;
/** The tasks that leave one neuron out at a time, as prose: 'co-smoothing and intra-region'. */
const leaveOneOutTasks = activityTasks().filter((t) => t.needs.leaveOneOut).map((t) => t.title).join(' and ');

const paramSchema = z.object({
  tasks: z.array(z.enum(EVAL_TASKS as [EvalTask, ...EvalTask[]])).default([...EVAL_TASKS]).describe(`which activity tasks to run: ${EVAL_TASKS.join(', ')}`),
  ...promptParams,
  forwardPredictionBins: z.number().int().min(1).default(10).describe('forward prediction: how many final bins are zeroed and predicted (10 x 20 ms = 200 ms)'),
  maxLeftOutNeurons: z.number().int().min(0).default(0).describe(`${leaveOneOutTasks} leave each neuron out in turn, the costliest part; above 0, only this many neurons (a seeded random subset, the same for both tasks) are left out and scored. 0 = all`),
  fastLeaveOneOut: z.boolean().default(true).describe(`${leaveOneOutTasks} use the architecture's exact leave-one-out pass when it has one (NDT1: the left-out neuron's rank-1 term is subtracted from the first layer computed once per trial; equal results to float32 rounding). false runs the plain forward pass on every copy`),
  batchSize: z.number().int().min(1).default(32).describe('trial copies per forward pass (leave-one-out tasks put one (trial, left-out neuron) pair per row)'),
  regionLevel: z.enum(['acronym', 'beryl', 'cosmos']).default('acronym').describe('which neuron label defines a region for the region tasks (as in the masking sampler)'),
  decoding: z.boolean().default(true).describe('decode behaviour (choice, whisker motion energy, wheel speed) from the predicted rates'),
  behaviourTargets: z.array(z.enum(BEHAVIOUR_TARGETS as [BehaviourTarget, ...BehaviourTarget[]])).default([...BEHAVIOUR_TARGETS]).describe('behaviour targets to decode; those a session lacks are skipped'),
  choicePrompt: modeEnum.default('neuron').describe('mode (prompt) of the unmasked pass whose rates decode choice'),
  continuousPrompt: modeEnum.default('causal').describe('mode (prompt) of the unmasked pass whose rates decode whisker motion energy and wheel speed'),
  decodingFolds: z.number().int().min(2).default(5).describe('cross-validation folds that choose each decoder\'s L2 penalty'),
  decodingLambdas: z.array(z.number().positive()).min(1).default([...DEFAULT_LAMBDAS]).describe('L2 penalties the cross-validation chooses among'),
  split: z.enum(['test', 'val']).default('test').describe('which trials the activity tasks score: test (the figures to report) or val (to choose a recipe on; never choose on test)'),
  writePredictions: z.boolean().default(true).describe('write each task\'s assembled test-trial predictions (.npy log-rates) for the report\'s rasters'),
});

/** The parsed params. zod cannot type the prompt parameters' computed keys, so the type adds them. */
export type EvaluateParams = z.output<typeof paramSchema> & Record<`${string}Prompt`, MaskingMode>;
export const evaluateParams = paramSchema as z.ZodType<EvaluateParams, z.input<typeof paramSchema>> & typeof paramSchema;

function promptsOf(p: EvaluateParams): Record<EvalTask, MaskingMode> {
  return Object.fromEntries(EVAL_TASKS.map((t) => [t, p[promptParam(t)] ?? DEFAULT_TASK_PROMPTS[t]]));
}

/** A folder-name-safe form of an id (session ids may be relative paths). */
const safeName = (s: string) => encodeURIComponent(s).replace(/%/g, '_') || '_';

function checkSession(s: BinnedSession): void {
  const where = `binned session ${s.sessionId}`;
  const TN = s.nBins * s.nNeurons;
  if (s.counts.length !== s.nTrials * TN) throw new Error(`${where}: counts has ${s.counts.length} entries, expected nTrials x nBins x nNeurons = ${s.nTrials * TN}`);
  if (s.neurons.length !== s.nNeurons) throw new Error(`${where}: neurons has ${s.neurons.length} rows for nNeurons = ${s.nNeurons}`);
  if (s.trials.split.length !== s.nTrials) throw new Error(`${where}: trials.split has ${s.trials.split.length} entries for nTrials = ${s.nTrials}`);
}

function checkModelFits(model: ArchitectureModel, ref: ModelRef, s: BinnedSession): void {
  const spec = model.sessions().find((x) => x.sessionId === s.sessionId);
  const known = model.sessions().map((x) => x.sessionId);
  if (!spec) {
    throw new Error(`model ${ref.path} has no per-session weights for session ${s.sessionId} (it has: ${known.join(', ') || 'none'}); fine-tune it on this session before evaluating`);
  }
  if (spec.nNeurons !== s.nNeurons) {
    throw new Error(`model ${ref.path} was trained on ${spec.nNeurons} neurons of session ${s.sessionId}, the binned session has ${s.nNeurons}: bin it with the same settings`);
  }
}

export interface SessionEvaluation {
  tasks: Partial<Record<EvalTask, TaskResult>>;
  oracle: Partial<Record<EvalTask, OracleResult>>;
  behaviour?: BehaviourResult;
  values: Record<string, number>;
  /** Why figures are missing. */
  notes: string[];
  seconds: number;
}

/** Runs the chosen tasks, oracles and decoders of one session with a loaded model. */
export async function evaluateSession(model: ArchitectureModel, s: BinnedSession, p: EvaluateParams, ctx: StageContext, trainedModes?: readonly MaskingMode[]): Promise<SessionEvaluation> {
  const started = performance.now();
  const promptTokens = hasPromptTokens(model);
  const predictor = modelPredictor(model, s.sessionId);
  const rows = testRows(s, p.split);
  const values: Record<string, number> = { test_trials: rows.length, neurons: s.nNeurons };
  const notes: string[] = [];
  const out: SessionEvaluation = { tasks: {}, oracle: {}, values, notes, seconds: 0 };
  if (rows.length === 0) notes.push('the session has no test trials: no activity task can be scored');

  const leaveOut = pickLeaveOut(s, p, ctx.seed, notes);
  values.left_out_neurons = leaveOut?.length ?? s.nNeurons;
  await runActivityTasks({ s, p, ctx, out, predictor, rows, leaveOut, promptTokens, trainedModes });
  if (!s.trueRates) notes.push('the session has no true rates: no oracle figures');

  if (p.decoding) await decodeInto(out, s, p, ctx, predictor, promptTokens, trainedModes);
  dropNonFinite(values, notes);
  out.seconds = (performance.now() - started) / 1000;
  values.evaluate_seconds = out.seconds;
  return out;
}

/** The seeded subset of neurons the leave-one-out tasks score, or undefined for all (noted when a subset). */
function pickLeaveOut(s: BinnedSession, p: EvaluateParams, seed: number, notes: string[]): number[] | undefined {
  if (!(p.maxLeftOutNeurons > 0 && p.maxLeftOutNeurons < s.nNeurons)) return undefined;
  const pick = createRng(hashString(`leave-out:${s.sessionId}`, seed));
  const leaveOut = pick.shuffle([...Array(s.nNeurons).keys()]).slice(0, p.maxLeftOutNeurons).sort((a, b) => a - b);
  notes.push(`${leaveOneOutTasks} score a seeded subset of ${leaveOut.length} of ${s.nNeurons} neurons (maxLeftOutNeurons)`);
  return leaveOut;
}

/** What the activity tasks of one session share. */
interface ActivityRun {
  s: BinnedSession;
  p: EvaluateParams;
  ctx: StageContext;
  out: SessionEvaluation;
  predictor: ReturnType<typeof modelPredictor>;
  rows: ReturnType<typeof testRows>;
  leaveOut: number[] | undefined;
  promptTokens: boolean;
  trainedModes: readonly MaskingMode[] | undefined;
}

/** Runs each chosen activity task in registry order under one progress bar, recording figures, oracles and notes into `out`. */
async function runActivityTasks(run: ActivityRun): Promise<void> {
  const { s, p, ctx, rows, leaveOut } = run;
  const regions = regionLabels(s, p.regionLevel);
  const tasks = EVAL_TASKS.filter((t) => p.tasks.includes(t));
  const jobs = rows.length ? tasks.reduce((a, t) => a + planTask(t, s.nBins, regions, p.forwardPredictionBins, leaveOut).count * rows.length, 0) : 0;
  const bar = ctx.progress(`evaluate ${s.sessionId}`, jobs);
  try {
    for (const task of tasks) await runActivityTask(run, task, regions, bar);
  } finally {
    bar.stop();
  }
}

/** Runs one activity task and its oracle, writing its figures into `out.values`. */
async function runActivityTask(run: ActivityRun, task: EvalTask, regions: ReturnType<typeof regionLabels>, bar: ReturnType<StageContext['progress']>): Promise<void> {
  const { s, p, ctx, out, predictor, rows, leaveOut, promptTokens, trainedModes } = run;
  const { values, notes } = out;
  const prompts = promptsOf(p);
  const stem = TASK_METRIC[task];
  const { mode, causal } = resolvePrompt(prompts[task], promptTokens, trainedModes);
  if (mode !== prompts[task]) notes.push(`${task} runs in ${mode} mode, not ${prompts[task]}: the model was trained with ${trainedModes?.join(', ') ?? (promptTokens ? 'prompt tokens' : 'no prompt tokens')}`);
  let last = 0;
  const r = await runTask(s, task, predictor, regions, p.forwardPredictionBins, {
    mode, causal, batchSize: p.batchSize, rows, leaveOut, fastLeaveOneOut: p.fastLeaveOneOut, signal: ctx.signal,
    onBatch: (done) => {
      bar.increment(done - last);
      last = done;
    },
  });
  out.tasks[task] = r;
  values[key(stem, 'seconds')] = r.seconds;
  if (r.skipped) {
    notes.push(`${task} skipped: ${r.skipped}`);
    return;
  }
  // The registry's figures in its order, excluded neurons split by why (core/eval/bps.ts).
  for (const m of BPS_METRICS) values[key(stem, m.suffix)] = m.of(r.bps);
  const o = activityTask(task).oracle ? oracleForTask(s, r) : undefined;
  if (o) {
    out.oracle[task] = o;
    for (const m of ORACLE_METRICS) values[key(stem, m.suffix)] = m.of(o);
  }
  ctx.logger.info({ session: s.sessionId, task, mode, causal, bps: r.bps.mean, pooled: r.bps.pooled, oracle: o?.bps.mean, seconds: r.seconds }, 'task scored');
}

/** Decodes behaviour from the predicted rates, writing the scores, chances and skip notes into `out`. */
async function decodeInto(
  out: SessionEvaluation,
  s: BinnedSession,
  p: EvaluateParams,
  ctx: StageContext,
  predictor: ReturnType<typeof modelPredictor>,
  promptTokens: boolean,
  trainedModes: readonly MaskingMode[] | undefined,
): Promise<void> {
  const { values, notes } = out;
  const rng = createRng(hashString(`decode:${s.sessionId}`, ctx.seed));
  const b = await decodeBehaviour(s, predictor, {
    targets: p.behaviourTargets, choicePrompt: p.choicePrompt, continuousPrompt: p.continuousPrompt, promptTokens, trainedModes,
    batchSize: p.batchSize, rng, lambdas: p.decodingLambdas, folds: p.decodingFolds, signal: ctx.signal,
  });
  out.behaviour = b;
  for (const d of decodingTasks()) {
    const r = b.decoded[d.id as BehaviourTarget];
    if (!r) continue;
    values[scoreKey(d)] = r[d.score]!;
    if (d.chance) values[chanceKey(d)] = r.chance!;
  }
  for (const [t, why] of Object.entries(b.skipped)) notes.push(`${t} decoding skipped: ${why}`);
  values.behaviour_seconds = b.predictSeconds + b.fitSeconds;
}

/** JSON has no NaN: a figure that is not a number is dropped, and said so. */
function dropNonFinite(values: Record<string, number>, notes: string[]): void {
  for (const [k, v] of Object.entries(values)) {
    if (!Number.isFinite(v)) {
      delete values[k];
      notes.push(`${k} is not a finite number (e.g. no evaluated neuron or a zero oracle): left out`);
    }
  }
}

const nullIfNaN = (a: Float64Array) => Array.from(a, (v) => (Number.isFinite(v) ? v : null));

/** Writes the per-neuron table, predictions and a JSON summary; returns the files written. */
export async function writeSessionArtifacts(dir: string, s: BinnedSession, ev: SessionEvaluation, p: EvaluateParams, about: Record<string, unknown>): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  const regions = regionLabels(s, p.regionLevel);
  const cols: Record<string, ParquetColumn> = {
    neuron: { type: 'INT32', data: Int32Array.from({ length: s.nNeurons }, (_, i) => i) },
    probe: { type: 'STRING', data: s.neurons.map((n) => n.probe) },
    cluster_id: { type: 'INT32', data: Int32Array.from(s.neurons, (n) => n.clusterId) },
    region: { type: 'STRING', data: regions },
    acronym: { type: 'STRING', data: s.neurons.map((n) => n.acronym) },
  };
  for (const task of EVAL_TASKS) {
    const r = ev.tasks[task];
    if (!r || r.skipped) continue;
    cols[key(TASK_METRIC[task], 'bps')] = { type: 'DOUBLE', data: nullIfNaN(r.bps.perNeuron) };
    const o = ev.oracle[task];
    if (o) cols[key(TASK_METRIC[task], 'oracle_bps')] = { type: 'DOUBLE', data: nullIfNaN(o.bps.perNeuron) };
  }
  const perNeuron = join(dir, 'per-neuron.parquet');
  await writeParquet(perNeuron, cols);
  files.push(perNeuron);

  const rows = testRows(s, p.split);
  const TN = s.nBins * s.nNeurons;
  const shape = [rows.length, s.nBins, s.nNeurons];
  if (p.writePredictions && rows.length) {
    const put = async (name: string, data: Float32Array | Int32Array) => {
      const f = join(dir, name);
      await writeNpy(f, data, shape);
      files.push(f);
    };
    await put('test-counts.npy', gatherTrials(s.counts, rows, TN));
    if (s.trueRates) await put('true-rates.npy', gatherTrials(s.trueRates, rows, TN));
    for (const task of EVAL_TASKS) {
      const r = ev.tasks[task];
      if (r && !r.skipped) await put(`predictions-${TASK_METRIC[task].replace(/_/g, '-')}.npy`, r.predicted);
    }
  }
  const summary = {
    ...about,
    sessionId: s.sessionId,
    shape: { testTrials: rows.length, bins: s.nBins, neurons: s.nNeurons },
    testTrialRows: Array.from(rows),
    regions,
    tasks: Object.fromEntries(
      (Object.entries(ev.tasks) as [EvalTask, TaskResult][]).map(([task, r]) => [
        task,
        {
          mode: r.mode, causal: r.causal, skipped: r.skipped ?? null, seconds: r.seconds, forwardPasses: r.forwardPasses,
          mean: finiteOrNull(r.bps.mean), pooled: finiteOrNull(r.bps.pooled), evaluatedNeurons: r.bps.evaluatedNeurons, excludedNeurons: r.bps.excludedNeurons,
          silentNeurons: r.bps.silentNeurons, unscoredNeurons: r.bps.unscoredNeurons, quantiles: Object.fromEntries(QUANTILE_LEVELS.map((q, i) => [quantileKey(q), finiteOrNull(r.bps.quantiles[i])])),
          oracle: ev.oracle[task as EvalTask] ? { mean: finiteOrNull(ev.oracle[task as EvalTask]!.bps.mean), pooled: finiteOrNull(ev.oracle[task as EvalTask]!.bps.pooled), ratio: finiteOrNull(ev.oracle[task as EvalTask]!.ratio) } : null,
        },
      ]),
    ),
    behaviour: ev.behaviour ? { decoded: ev.behaviour.decoded, skipped: ev.behaviour.skipped, predictSeconds: ev.behaviour.predictSeconds, fitSeconds: ev.behaviour.fitSeconds } : null,
    metrics: ev.values,
    notes: ev.notes,
    files: files.map((f) => f.slice(dir.length + 1)),
  };
  // The report stage's per-neuron and raster plots read this file (core/report/detail.ts).
  const label = typeof about.label === 'string' ? about.label : 'model';
  const detail = join(dir, evalDetailFileName(s.sessionId, label));
  await writeEvalDetail(detail, evalDetailFromTasks(s, label, regions, ev.tasks, ev.oracle));
  files.push(detail);
  const json = join(dir, 'evaluation.json');
  await writeFileAtomic(json, JSON.stringify(summary, null, 2));
  files.push(json);
  return files;
}

const finiteOrNull = (v: number) => (Number.isFinite(v) ? v : null);

export const evaluate = defineStage({
  id: 'evaluate',
  version: 1,
  summary: 'Scores trained models on each session\'s test trials: co-smoothing, forward prediction, inter- and intra-region bits/spike, oracle ratios, behaviour decoding',
  spec: 'docs/method.md §5',
  inputs: {
    model: { type: 'model', description: 'trained models (usually one); each is evaluated on every session', collect: true },
    sessions: { type: 'binned-session', description: 'binned, region-labelled sessions the models have per-session weights for', collect: true },
  },
  outputs: {
    metrics: { type: 'metrics', description: 'one item per model and session: the four bps figures, pooled forms, oracle forms and ratios, decoding scores, excluded-neuron counts, timings' },
    artifacts: { type: 'artifact', description: 'one folder per model and session: per-neuron Parquet, predictions and counts as .npy, evaluation.json' },
  },
  params: evaluateParams,
  create(p, ctx) {
    return {
      async run({ model: refs, sessions }, send) {
        if (refs.length === 0) throw new Error('no model arrived on the model input: nothing to evaluate');
        for (const s of sessions) checkSession(s);
        if (sessions.length === 0) ctx.logger.warn('no sessions arrived: nothing to evaluate');
        const root = ctx.run.artifactDir(ctx.nodeId);
        for (const [i, ref] of refs.entries()) {
          const label = ref.label ?? (refs.length > 1 ? `model${i + 1}` : 'model');
          const { model, metadata } = await loadTrainedModel(ref.path, ctx.architectures);
          const trainedModes = trainedModesOf(metadata);
          try {
            for (const s of sessions) {
              if (ctx.signal.aborted) return;
              checkModelFits(model, ref, s);
              const log = ctx.logger.child({ session: s.sessionId, label });
              const ev = await evaluateSession(model, s, p, ctx, trainedModes);
              for (const note of ev.notes) log.warn(note);
              const dir = join(root, safeName(label), safeName(s.sessionId));
              await writeSessionArtifacts(dir, s, ev, p, { label, modelPath: ref.path, architecture: model.architecture });
              ctx.run.metric(ctx.nodeId, { sessionId: s.sessionId, label, ...ev.values });
              log.info({ seconds: ev.seconds, ...ev.values }, 'session evaluated');
              await send('artifacts', { kind: 'artifact', path: dir, description: `evaluation of ${label} on ${s.sessionId}: per-neuron bps, predictions, evaluation.json`, sessionId: s.sessionId });
              await send('metrics', { kind: 'metrics', sessionId: s.sessionId, label, values: ev.values });
            }
          } finally {
            model.dispose();
          }
        }
      },
    };
  },
});
