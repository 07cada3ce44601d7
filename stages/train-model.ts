// Trains a registered architecture on masked batches with AdamW, a one-cycle schedule, clipping, early stopping, checkpoints and resume (docs/method.md §4).
//
// Decisions:
// - Resume: `last/` in the node's artifact folder is rewritten after every epoch (and at the
//   exact batch reached when the run is interrupted). When it exists at start, the model, the
//   AdamW moments and the loop state are restored and the batches already trained are skipped.
//   Masks depend only on (seed, epoch, batch), and dropout is seeded per step, so a resumed run
//   ends with the same weights as an uninterrupted one. A checkpoint of a different training
//   (other params, seed or batch count) is refused rather than silently mixed.
// - Prompts: `auto` turns the architecture's prompt tokens on when the first training batch has
//   an MtM mode (not temporal or token). A masking scheme is either one prompt-free mode or never
//   prompt-free (mtm draws among neuron, causal, inter-region, intra-region), so the first batch
//   decides for the run. A baseline thus has no untrained prompt tokens an evaluator could
//   switch to.
// - Best checkpoint on the validation loss (the train loss when no val batches arrive), mean
//   Poisson NLL over every scored entry; ties keep the earlier epoch. Early stopping is off by
//   default (patience 0): with a one-cycle schedule the last epochs are the low-rate ones.
// - Interruption (ctx.signal): the step in progress finishes, `last/` is written at that batch,
//   and the node completes without emitting a model (a rerun into the same folder resumes).
// - Session tokens: `auto` turns the architecture's sessionTokens on when the model is built for
//   more than one session (those on the sessions port, the val batches and the first training
//   batch), so a multi-session model tells its sessions apart beyond their stitchers.
// - Fine-tuning (`init`, docs/method.md §4.7, §5.5): the model is rebuilt from the pretrained folder's config and
//   sessions and every saved weight is loaded (a missing, extra or reshaped weight is an error
//   naming the file); each session of the batches the model does not know gets fresh per-session
//   weights (stitchers, session token) drawn from the graph seed. `trainScope: all` trains every
//   weight (the paper's fine-tuning); `sessions` trains only the per-session ones. The saved model
//   lists every session, pretrained and new, with the neuron layouts of both. Config fields given
//   with init override the saved ones (e.g. dropout); prompts and sessionTokens follow the
//   pretrained model unless set to true/false. The pretrained model may instead arrive on the
//   `init` port (e.g. from a pretraining node in the same graph, as graphs/scaling.yaml does):
//   training then waits for it, and uses the folder it names exactly as the param's.
// - The model port comes from ctx.source; the metrics port is a replayed subject filled by the
//   same loop, so a node downstream that reads only the model never holds training back.
import { EMPTY, ReplaySubject } from 'rxjs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { defineStage, type StageContext } from '../core/stage.ts';
import { trainingMeanCounts, type ArchitectureContribution, type ArchitectureModel, type SessionSpec } from '../core/architecture.ts';
import type { BinnedSession, Metrics, ModelRef } from '../core/payloads.ts';
import { isPromptedMode, type MaskedBatch, type MaskingMode } from '../core/masking/types.ts';
import { didYouMean, listOf } from '../core/graph/diagnostics.ts';
import { hashString } from '../core/rng.ts';
import { AdamW } from '../core/train/adamw.ts';
import { loadTrainedModel, loadTrainingCheckpoint, modelFromSaved, saveModelFolder, saveTrainingCheckpoint } from '../core/train/checkpoint.ts';
import { oneCycleLr } from '../core/train/schedule.ts';
import { evaluateLoss, scoredCount, trainStep } from '../core/train/step.ts';
import * as tf from '../core/tensor/tf.ts';
import { collectNow } from '../core/runtime/collect.ts';

export const trainModelParams = z.object({
  architecture: z.string().default('ndt1').describe("model architecture, by the name a plugin registered (see `mtm stages`)"),
  config: z.record(z.string(), z.unknown()).default({}).describe("the architecture's config (e.g. dModel, layers); missing fields take the architecture's defaults"),
  learningRate: z.number().positive().default(1e-3).describe('peak learning rate of the one-cycle schedule'),
  weightDecay: z.number().min(0).default(0.01).describe('AdamW decoupled weight decay'),
  warmupFraction: z.number().min(0).max(1).default(0.15).describe('fraction of all steps spent warming the learning rate up linearly to its peak; a cosine brings it down to ~0 after'),
  clipNorm: z.number().min(0).default(1).describe('clip the global gradient norm to this value; 0 turns clipping off'),
  patience: z.number().int().min(0).default(0).describe('stop after this many epochs without a better validation loss; 0 trains every epoch'),
  prompts: z
    .union([z.literal('auto'), z.boolean()])
    .default('auto')
    .describe("learned MtM prompt tokens: auto turns them on unless the batches are temporal- or token-masked (sets the architecture's promptTokens)"),
  sessionTokens: z
    .union([z.literal('auto'), z.boolean()])
    .default('auto')
    .describe("learned per-session tokens: auto turns them on when more than one session is trained (sets the architecture's sessionTokens)"),
  init: z.string().default('').describe("fine-tune: a trained model folder (model.json + weights.bin) to start from; new sessions get fresh stitchers and session tokens; '' trains from scratch"),
  trainScope: z.enum(['all', 'sessions']).default('all').describe('which weights train: all (fine-tuning as in the paper), or only the per-session weights (stitchers, session tokens) around a frozen core'),
  label: z.string().default('').describe("name of this model variant in outputs and reports (e.g. mtm, temporal); empty: the masking mode of the batches, or mtm when they mix modes"),
});

export type TrainModelParams = z.output<typeof trainModelParams>;

/** One epoch's numbers, as recorded in the checkpoint and sent on the metrics port. */
export interface EpochRecord {
  /** 1-based. */
  epoch: number;
  step: number;
  trainLoss: number;
  valLoss: number | null;
  /** Learning rate of the epoch's last step. */
  lr: number;
  gradNormMean: number;
  seconds: number;
  best: boolean;
}

/** The loop's state, saved in training.json: everything besides weights and moments. */
interface LoopState {
  fingerprint: Record<string, unknown>;
  step: number;
  /** 0-based epoch in progress (equals the epoch count once all are done). */
  epoch: number;
  /** Batches of `epoch` already trained. */
  nextBatch: number;
  acc: { lossSum: number; scored: number; gradNormSum: number; steps: number; seconds: number; modes: MaskingMode[] };
  best: { epoch: number; score: number; trainLoss: number; valLoss: number | null } | null;
  badEpochs: number;
  history: EpochRecord[];
  label: string;
  /** Every masking mode trained so far, saved with the model so evaluation runs each task in a mode it knows. */
  trainedModes?: MaskingMode[];
  finished: boolean;
  stopReason?: 'completed' | 'early-stop';
}

const emptyAcc = (): LoopState['acc'] => ({ lossSum: 0, scored: 0, gradNormSum: 0, steps: 0, seconds: 0, modes: [] });

function fail(ctx: StageContext, msg: string): Error {
  return new Error(`train-model '${ctx.nodeId}': ${msg}`);
}

/** Looks the architecture up and checks the user's config against its schema, naming bad fields. */
export function checkArchitecture(p: TrainModelParams, ctx: StageContext): ArchitectureContribution {
  const arch = ctx.architectures.get(p.architecture);
  if (!arch) {
    throw fail(ctx, `unknown architecture '${p.architecture}'${didYouMean(p.architecture, ctx.architectures.keys())}; registered: ${listOf(ctx.architectures.keys())}`);
  }
  const fields = Object.keys(arch.configSchema.shape);
  const problems: string[] = [];
  for (const k of Object.keys(p.config)) {
    if (!fields.includes(k)) problems.push(`config.${k}: not a field of ${arch.name}${didYouMean(k, fields)}; its fields are ${listOf(fields)}`);
  }
  const parsed = arch.configSchema.safeParse(p.config);
  if (!parsed.success) for (const i of parsed.error.issues) problems.push(`config.${i.path.join('.')}: ${i.message}`);
  if (problems.length) throw fail(ctx, problems.join('; '));
  const hasSwitch = fields.includes('promptTokens');
  if (hasSwitch && typeof p.prompts === 'boolean' && 'promptTokens' in p.config && p.config.promptTokens !== p.prompts) {
    throw fail(ctx, `prompts is ${p.prompts} but config.promptTokens is ${p.config.promptTokens}: set one of them`);
  }
  if (fields.includes('sessionTokens') && typeof p.sessionTokens === 'boolean' && 'sessionTokens' in p.config && p.config.sessionTokens !== p.sessionTokens) {
    throw fail(ctx, `sessionTokens is ${p.sessionTokens} but config.sessionTokens is ${p.config.sessionTokens}: set one of them`);
  }
  return arch;
}

/** Config fields a fine-tuning run changes from the pretrained model's: the user's, and prompts / sessionTokens when set. */
function initOverrides(arch: ArchitectureContribution, p: TrainModelParams): Record<string, unknown> {
  const config = { ...p.config };
  const fields = arch.configSchema.shape;
  if (typeof p.prompts === 'boolean' && 'promptTokens' in fields) config.promptTokens = p.prompts;
  if (typeof p.sessionTokens === 'boolean' && 'sessionTokens' in fields) config.sessionTokens = p.sessionTokens;
  return config;
}

/** The config the model is built with: the user's, plus promptTokens from `prompts`. */
function modelConfig(arch: ArchitectureContribution, p: TrainModelParams, first: MaskedBatch, nSessions: number, ctx: StageContext): Record<string, unknown> {
  const config = { ...p.config };
  const want = p.prompts === 'auto' ? isPromptedMode(first.mode) : p.prompts;
  if ('promptTokens' in arch.configSchema.shape) {
    if (!('promptTokens' in config)) config.promptTokens = want;
  } else if (p.prompts === true) {
    ctx.logger.warn(`architecture ${arch.name} has no promptTokens switch: prompts=true changes nothing`);
  }
  const tokens = p.sessionTokens === 'auto' ? nSessions > 1 : p.sessionTokens;
  if ('sessionTokens' in arch.configSchema.shape) {
    if (!('sessionTokens' in config)) config.sessionTokens = tokens;
  } else if (p.sessionTokens === true) {
    ctx.logger.warn(`architecture ${arch.name} has no sessionTokens switch: sessionTokens=true changes nothing`);
  }
  return config;
}

function specFromBatch(b: MaskedBatch): SessionSpec {
  return { sessionId: b.sessionId, nNeurons: b.shape.neurons, nBins: b.shape.bins, regions: [...b.regions] };
}

/**
 * A session's layout, and each neuron's mean count per bin over the session's training trials,
 * which seeds the architecture's readout (SessionSpec.meanCounts). Few-shot samplers train on a
 * subset of those trials; the mean still comes from all of them (the same for a pretrained and a
 * scratch model, so their comparison is unaffected).
 */
function specFromSession(s: BinnedSession): SessionSpec {
  const trainRows = [...Array(s.nTrials).keys()].filter((t) => s.trials.split[t] === 'train');
  const meanCounts = trainingMeanCounts(s.counts, s.nBins, s.nNeurons, trainRows);
  return { sessionId: s.sessionId, nNeurons: s.nNeurons, nBins: s.nBins, regions: s.neurons.map((n) => n.acronym || 'unlabelled'), ...(meanCounts ? { meanCounts } : {}) };
}

/** A stable JSON text for comparing fingerprints (keys sorted at every level). */
function stable(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(stable).join(',')}]`;
  if (x && typeof x === 'object') {
    return `{${Object.keys(x)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable((x as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(x);
}

function labelOf(modes: MaskingMode[]): string {
  const distinct = [...new Set(modes)];
  return distinct.length === 1 ? distinct[0] : 'mtm';
}

export const trainModel = defineStage({
  id: 'train-model',
  version: 1,
  summary: 'Trains a model architecture on masked batches (AdamW, one-cycle schedule, clipping), keeps the best checkpoint on validation loss, resumes after a crash',
  spec: 'docs/method.md §4',
  inputs: {
    train: { type: 'masked-batch', description: 'training batches, epoch after epoch, pulled as fast as training goes' },
    val: { type: 'masked-batch', description: 'a fixed validation set (a sampler with epochs 1), scored after every epoch', collect: true, optional: true },
    sessions: { type: 'binned-session', description: 'the sessions, for the neuron and region layout saved with the model', collect: true, optional: true },
    init: { type: 'model', description: 'fine-tune: the pretrained model to start from (instead of the init param); training waits for it', collect: true, optional: true },
  },
  outputs: {
    model: { type: 'model', description: 'the best checkpoint, once training ends' },
    metrics: { type: 'metrics', description: 'one item per epoch: trainLoss, valLoss, lr, seconds, ...' },
  },
  params: trainModelParams,
  create(p, ctx) {
    const arch = checkArchitecture(p, ctx);
    return (inputs) => {
      // Subscribe to every input now, while the graph is being wired: a sampler may emit as soon
      // as it starts, and an item sent before we subscribe would be lost.
      const train = ctx.pull<MaskedBatch>(inputs.train ?? EMPTY)[Symbol.asyncIterator]();
      const valItems = collectNow<MaskedBatch>(inputs.val);
      const sessionItems = collectNow<BinnedSession>(inputs.sessions);
      const initPort = ctx.connectedInputs.has('init');
      if (initPort && p.init) throw fail(ctx, `both the init param (${p.init}) and the init port are set; use one`);
      const initItems = initPort ? collectNow<ModelRef>(inputs.init) : undefined;
      const metrics = new ReplaySubject<Metrics>();

      async function* run(): AsyncGenerator<ModelRef> {
        try {
          let init = p.init;
          if (initItems) {
            const refs = await initItems;
            if (refs.length > 1) throw fail(ctx, `${refs.length} models arrived on the init port (${refs.map((r) => r.path).join(', ')}); fine-tuning starts from one`);
            if (!refs.length) {
              if (!ctx.signal.aborted) throw fail(ctx, `no model arrived on the init port: the node feeding it ended without a model`);
              ctx.logger.warn('interrupted before the pretrained model arrived on the init port: nothing trained');
              metrics.complete();
              return;
            }
            init = refs[0].path;
          }
          const ref = await trainLoop(arch, { ...p, init }, ctx, train, await valItems, await sessionItems, (m) => metrics.next(m));
          metrics.complete();
          if (ref) yield ref;
        } catch (e) {
          metrics.error(e);
          throw e;
        } finally {
          await train.return?.();
        }
      }
      return { model: ctx.source(run()), metrics };
    };
  },
});

async function trainLoop(
  arch: ArchitectureContribution,
  p: TrainModelParams,
  ctx: StageContext,
  train: AsyncIterator<MaskedBatch>,
  valAll: MaskedBatch[],
  binned: BinnedSession[],
  emit: (m: Metrics) => void,
): Promise<ModelRef | undefined> {
  const log = ctx.logger;
  const dir = ctx.run.artifactDir(ctx.nodeId);
  const lastDir = join(dir, 'last');
  const bestDir = join(dir, 'best');

  const val = valAll.filter((b) => b.epoch === 0);
  if (val.length < valAll.length) log.warn(`the val sampler produced ${valAll.length - val.length} batches after its first epoch: only epoch 1 is used (set its epochs to 1)`);
  const neurons: Record<string, unknown> = {};
  for (const s of binned) {
    neurons[s.sessionId] = s.neurons.map((n) => ({ probe: n.probe, clusterId: n.clusterId, atlasId: n.atlasId, acronym: n.acronym, beryl: n.beryl, cosmos: n.cosmos }));
  }

  const checkpoint = await loadTrainingCheckpoint<LoopState>(lastDir);
  // A resumed run restores its own checkpoint, which already holds the pretrained weights.
  const initDir = p.init ? resolve(p.init) : '';
  let pretrained: { model: ArchitectureModel; metadata: Record<string, unknown> } | undefined;
  if (initDir && !checkpoint) {
    try {
      pretrained = await loadTrainedModel(initDir, ctx.architectures, { architecture: p.architecture, config: initOverrides(arch, p), seed: ctx.seed });
    } catch (e) {
      throw fail(ctx, `init: ${(e as Error).message}`);
    }
  }
  // Layouts of sessions this run does not bin (the pretrained ones) come from the model's files.
  const earlier = (pretrained?.metadata ?? checkpoint?.saved.metadata)?.neurons;
  if (earlier && typeof earlier === 'object') for (const [id, rows] of Object.entries(earlier)) if (!(id in neurons)) neurons[id] = rows;
  const initInfo = !initDir
    ? undefined
    : pretrained
      ? { path: initDir, sessions: pretrained.model.sessions().map((x) => x.sessionId) }
      : (checkpoint?.saved.metadata.init as Record<string, unknown> | undefined);
  let model: ArchitectureModel | undefined;
  const opt = new AdamW({ weightDecay: p.weightDecay });
  let state: LoopState | undefined;
  let totalEpochs = 0;
  let perEpoch = 0;
  let bar: ReturnType<StageContext['progress']> | undefined;
  let warnedSplit = false;

  const metadata = (extra: Record<string, unknown> = {}) => ({
    sessions: model!.sessions(),
    ...(Object.keys(neurons).length ? { neurons } : {}),
    label: state!.label,
    ...(state!.trainedModes ? { trainedModes: state!.trainedModes } : {}),
    seed: ctx.seed,
    ...(initInfo ? { init: initInfo } : {}),
    training: { node: ctx.nodeId, params: p, step: state!.step, epoch: state!.epoch, history: state!.history, ...extra },
  });
  const saveLast = () => saveTrainingCheckpoint(lastDir, { model: model!, metadata: metadata(), optimizer: opt, state: state as unknown as Record<string, unknown> });

  const ensureSession = (spec: SessionSpec) => {
    if (!model!.hasSession(spec.sessionId)) {
      log.debug({ session: spec.sessionId }, 'adding per-session weights');
      try {
        model!.addSession(spec);
      } catch (e) {
        throw initDir ? fail(ctx, `cannot add session ${spec.sessionId} to the model from ${join(initDir, 'model.json')}: ${(e as Error).message}`) : e;
      }
    }
  };

  const start = (first: MaskedBatch) => {
    if (!Number.isInteger(first.epochs) || !Number.isInteger(first.batchesInEpoch)) {
      throw fail(ctx, `masked batch of session ${first.sessionId} carries no epochs/batchesInEpoch: the training schedule needs them (feed train from a masking-sampler)`);
    }
    totalEpochs = first.epochs;
    perEpoch = first.batchesInEpoch;
    const fingerprint = {
      architecture: p.architecture,
      // Defaults filled, so spelling out a default on the rerun is not a different training.
      config: arch.configSchema.parse(p.config),
      prompts: p.prompts,
      learningRate: p.learningRate,
      weightDecay: p.weightDecay,
      warmupFraction: p.warmupFraction,
      clipNorm: p.clipNorm,
      seed: ctx.seed,
      epochs: totalEpochs,
      batchesInEpoch: perEpoch,
      // Only when not the default, so checkpoints written before these params existed still resume.
      ...(p.sessionTokens !== 'auto' ? { sessionTokens: p.sessionTokens } : {}),
      ...(initDir ? { init: initDir } : {}),
      ...(p.trainScope !== 'all' ? { trainScope: p.trainScope } : {}),
    };
    if (checkpoint) {
      try {
        const old = checkpoint.state.fingerprint;
        const diffs = Object.keys(fingerprint)
          .filter((k) => stable(old[k]) !== stable((fingerprint as Record<string, unknown>)[k]))
          .map((k) => `${k} ${stable(old[k])} there, ${stable((fingerprint as Record<string, unknown>)[k])} now`);
        if (diffs.length) {
          throw fail(ctx, `${lastDir} holds a checkpoint of a different training (${diffs.join('; ')}): run into a new --out folder, or delete ${dir} to start over`);
        }
        model = modelFromSaved(checkpoint.saved, ctx.architectures, join(lastDir, 'model.json'), ctx.seed);
        opt.load(checkpoint.optimizer);
        state = checkpoint.state;
        if (p.label) state.label = p.label;
      } finally {
        checkpoint.dispose();
      }
      log.info({ epoch: state.epoch, batch: state.nextBatch, step: state.step, finished: state.finished }, state.finished ? 'training already finished in this run folder: emitting its best model' : `resuming from ${lastDir}: epoch ${state.epoch + 1}, batch ${state.nextBatch + 1}`);
      for (const r of state.history) emit(metricsItem(r, state.label));
    } else {
      const specs = binned.length ? binned.map(specFromSession) : [specFromBatch(first)];
      for (const b of [first, ...val]) if (!specs.some((x) => x.sessionId === b.sessionId)) specs.push(specFromBatch(b));
      if (pretrained) {
        model = pretrained.model;
        pretrained = undefined;
        const known = model.sessions().length;
        const added = specs.filter((x) => !model!.hasSession(x.sessionId)).map((x) => x.sessionId);
        for (const spec of specs) ensureSession(spec);
        log.info({ from: initDir, pretrainedSessions: known, newSessions: added, trainScope: p.trainScope }, `fine-tuning a pretrained ${model.architecture} model`);
      } else {
        model = arch.build(modelConfig(arch, p, first, specs.length, ctx), { sessions: specs, seed: ctx.seed });
      }
      state = { fingerprint, step: 0, epoch: 0, nextBatch: 0, acc: emptyAcc(), best: null, badEpochs: 0, history: [], label: p.label, finished: false };
      const trainable = model.trainableVariables(p.trainScope).reduce((n, v) => n + v.size, 0);
      log.info({ architecture: arch.name, params: model.paramCount(), trainable, epochs: totalEpochs, batchesPerEpoch: perEpoch, config: model.config }, 'training');
    }
  };

  const totalSteps = () => totalEpochs * perEpoch;
  const lrAt = (step: number) => oneCycleLr(step, { peak: p.learningRate, totalSteps: totalSteps(), warmupFraction: p.warmupFraction });

  const endEpoch = async () => {
    const s = state!;
    bar?.stop();
    bar = undefined;
    const trainLoss = s.acc.scored ? s.acc.lossSum / s.acc.scored : NaN;
    if (!s.label) s.label = labelOf(s.acc.modes);
    s.trainedModes = [...new Set([...(s.trainedModes ?? []), ...s.acc.modes])].sort();
    for (const b of val) ensureSession(specFromBatch(b));
    const v = val.length ? await evaluateLoss(model!, val) : undefined;
    const valLoss = v && v.scored > 0 ? v.loss : null;
    if (valLoss !== null && !Number.isFinite(valLoss)) throw fail(ctx, `validation loss is ${valLoss} after epoch ${s.epoch + 1} (step ${s.step}); the last good checkpoint is ${lastDir}`);
    const score = valLoss ?? trainLoss;
    const improved = s.best === null || score < s.best.score;
    const record: EpochRecord = {
      epoch: s.epoch + 1,
      step: s.step,
      trainLoss,
      valLoss,
      lr: lrAt(Math.max(0, s.step - 1)),
      gradNormMean: s.acc.steps ? s.acc.gradNormSum / s.acc.steps : NaN,
      seconds: s.acc.seconds,
      best: improved,
    };
    if (improved) {
      s.best = { epoch: s.epoch + 1, score, trainLoss, valLoss };
      s.badEpochs = 0;
    } else s.badEpochs++;
    s.history.push(record);
    s.epoch++;
    s.nextBatch = 0;
    s.acc = emptyAcc();
    const early = p.patience > 0 && s.badEpochs >= p.patience && s.epoch < totalEpochs;
    if (s.epoch >= totalEpochs || early) {
      s.finished = true;
      s.stopReason = early ? 'early-stop' : 'completed';
    }
    // best/ before last/: a crash between the two redoes this epoch, which rewrites best/ alike.
    if (improved) await saveModelFolder(bestDir, model!, metadata({ best: s.best }));
    await saveLast();
    ctx.run.metric(ctx.nodeId, { ...record, label: s.label, scoreOn: valLoss === null ? 'train' : 'val', tensors: tf.memory().numTensors });
    emit(metricsItem(record, s.label));
    log.info(
      { epoch: record.epoch, of: totalEpochs, trainLoss: round(trainLoss), valLoss: valLoss === null ? undefined : round(valLoss), lr: record.lr, seconds: round(record.seconds, 1) },
      `epoch ${record.epoch}/${totalEpochs}${improved ? ' (best)' : ''}`,
    );
    if (early) log.info({ patience: p.patience, bestEpoch: s.best!.epoch }, `early stop: no better ${valLoss === null ? 'train' : 'validation'} loss for ${p.patience} epochs`);
  };

  let interrupted = false;
  let sawBatch = false;
  try {
    for (;;) {
      const r = await train.next();
      if (r.done) break;
      const b = r.value;
      if (!sawBatch) {
        sawBatch = true;
        start(b);
        if (state!.finished) break;
      }
      const s = state!;
      if (b.epoch < s.epoch || (b.epoch === s.epoch && b.batchIndex < s.nextBatch)) continue; // trained before the restart
      if (b.epoch >= totalEpochs) continue;
      if (b.epoch > s.epoch) {
        // The stream skipped the rest of an epoch (it should not): close the open one first.
        if (s.acc.steps > 0) await endEpoch();
        if (s.finished) break;
        s.epoch = b.epoch;
      }
      if (b.split !== 'train' && !warnedSplit) {
        warnedSplit = true;
        log.warn(`the train port receives ${b.split} batches: check which sampler feeds it`);
      }
      if (!bar) {
        bar = ctx.progress(`epoch ${s.epoch + 1}/${totalEpochs}`, perEpoch);
        if (s.nextBatch > 0) bar.increment(s.nextBatch);
      }
      ensureSession(specFromBatch(b));
      const lr = lrAt(s.step);
      const started = performance.now();
      const res = await trainStep(model!, opt, b, { lr, clipNorm: p.clipNorm, dropoutSeed: hashString(`dropout:${s.step}`, ctx.seed), scope: p.trainScope });
      if (!res.ok) {
        const what = !Number.isFinite(res.loss) ? `loss is ${res.loss}` : `gradient norm is ${res.gradNorm}${res.badWeights.length ? ` (non-finite in ${res.badWeights.slice(0, 5).join(', ')})` : ''}`;
        throw fail(
          ctx,
          `${what} at epoch ${b.epoch + 1}, step ${s.step + 1} (batch ${b.batchIndex + 1}/${b.batchesInEpoch}, session ${b.sessionId}, mode ${b.mode}); ` +
            `training stopped, the last good checkpoint is ${lastDir}${s.history.length ? ` (epoch ${s.history.length})` : ' (none yet)'}; try a lower learningRate or clipNorm`,
        );
      }
      s.acc.lossSum += res.loss * res.scored;
      s.acc.scored += res.scored;
      s.acc.gradNormSum += res.gradNorm;
      s.acc.steps++;
      s.acc.seconds += (performance.now() - started) / 1000;
      if (!s.acc.modes.includes(b.mode)) s.acc.modes.push(b.mode);
      s.step++;
      s.nextBatch = b.batchIndex + 1;
      bar.increment(1, `loss ${res.loss.toFixed(4)}`);
      if (s.nextBatch >= perEpoch) {
        await endEpoch();
        if (s.finished) break;
      }
      if (ctx.signal.aborted) {
        interrupted = true;
        break;
      }
    }
    if (!sawBatch) {
      if (ctx.signal.aborted) {
        log.warn('interrupted before the first training batch: nothing trained');
        return undefined;
      }
      throw fail(ctx, `no training batches arrived on 'train' (does the sampler's split have trials?)`);
    }
    const s = state!;
    if (!s.finished && (interrupted || ctx.signal.aborted)) {
      bar?.stop();
      await saveLast();
      log.warn({ epoch: s.epoch + 1, batch: s.nextBatch, step: s.step }, `interrupted: checkpoint saved in ${lastDir}; run again with the same --out to resume`);
      return undefined;
    }
    if (!s.finished) {
      // The stream ended early without an interruption: close what was trained and stop there.
      if (s.acc.steps > 0) await endEpoch();
      if (!s.finished) {
        log.warn({ epochs: s.epoch, of: totalEpochs }, 'the train stream ended before its last epoch');
        s.finished = true;
        s.stopReason = 'completed';
        await saveLast();
      }
    }
    const best = s.best;
    if (!best) throw fail(ctx, 'no epoch completed: there is no model to emit');
    log.info({ bestEpoch: best.epoch, score: round(best.score), stopReason: s.stopReason, path: bestDir }, 'training done');
    return {
      kind: 'model',
      path: bestDir,
      architecture: model!.architecture,
      config: model!.config,
      sessions: model!.sessions(),
      label: s.label,
      epoch: best.epoch,
      score: best.score,
      scoreOn: best.valLoss === null ? 'train' : 'val',
      trainLoss: best.trainLoss,
      ...(best.valLoss === null ? {} : { valLoss: best.valLoss }),
    };
  } finally {
    bar?.stop();
    checkpoint?.dispose(); // unused when no batch arrived; disposing twice is harmless
    pretrained?.model.dispose(); // still here only when no batch arrived
    model?.dispose();
    opt.dispose();
  }
}

function metricsItem(r: EpochRecord, label: string): Metrics {
  const values: Record<string, number> = { epoch: r.epoch, step: r.step, trainLoss: r.trainLoss, lr: r.lr, gradNormMean: r.gradNormMean, seconds: r.seconds, best: r.best ? 1 : 0 };
  if (r.valLoss !== null) values.valLoss = r.valLoss;
  return { kind: 'metrics', sessionId: 'all', label, values };
}

function round(x: number, digits = 5): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
