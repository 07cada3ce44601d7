// The model side of a training run (docs/method.md §4.7, §5.5): the model and optimiser a run
// trains, built from scratch, restored from its own checkpoint, or loaded from a pretrained folder
// for fine-tuning; the sessions it knows; and the metadata saved with every checkpoint.
//
// Decisions:
// - Resume: when last/ holds a checkpoint, the model, the AdamW moments and the loop state are
//   restored from it (it already holds any pretrained weights, so the init folder is not read).
//   Its fingerprint must match this run's (Checkpointer.refusal).
// - Prompts: `auto` turns the architecture's prompt tokens on when the first training batch has
//   an MtM mode (not temporal or token). A masking scheme is either one prompt-free mode or never
//   prompt-free (mtm draws among neuron, causal, inter-region, intra-region), so the first batch
//   decides for the run. A baseline thus has no untrained prompt tokens an evaluator could
//   switch to.
// - Session tokens: `auto` turns the architecture's sessionTokens on when the model is built for
//   more than one session (those on the sessions port, the val batches and the first training
//   batch), so a multi-session model tells its sessions apart beyond their stitchers.
// - Fine-tuning (`init`): the model is rebuilt from the pretrained folder's config and sessions and
//   every saved weight is loaded (a missing, extra or reshaped weight is an error naming the file);
//   each session the model does not know gets fresh per-session weights (stitchers, session
//   token) drawn from the graph seed. Config fields given with init override the saved ones (e.g.
//   dropout); prompts and sessionTokens follow the pretrained model unless set to true/false. The
//   saved model lists every session, pretrained and new, with the neuron layouts of both.
// - The data is fingerprinted too (`data`): per session its id, neuron count, trials per split and
//   a digest of the counts and the split, from the sessions port, else from the first training
//   batch (the val batches stay out: with a sessions port the split already covers them). A rerun with other data (another seed, another firing rate,
//   another split) is refused like any other change, naming the sessions there and now, rather
//   than continuing a training of other data and keeping its best model. A checkpoint written
//   before data was fingerprinted has no `data`; it resumes as before, with a warning.
// - The fingerprint holds sessionTokens, init and trainScope only when not the default, so
//   checkpoints written before those params existed still resume. nanPolicy is left out: rerunning
//   a run stopped by a NaN with `skip` resumes it from its last good checkpoint.
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { trainingMeanCounts, type ArchitectureContribution, type ArchitectureModel, type SessionSpec } from '../architecture.ts';
import { isPromptedMode, type MaskedBatch } from '../masking/types.ts';
import type { BinnedSession, ModelRef } from '../payloads.ts';
import { AdamW } from './adamw.ts';
import { loadTrainedModel, modelFromSaved, type LoadedCheckpoint } from './checkpoint.ts';
import type { Checkpointer } from './checkpointer.ts';
import { newLoopState, type BestEpoch, type LoopState } from './loop-state.ts';

/** The params of a training run that shape the model and its fingerprint (train-model's). */
export interface TrainingParams {
  architecture: string;
  config: Record<string, unknown>;
  learningRate: number;
  weightDecay: number;
  warmupFraction: number;
  clipNorm: number;
  prompts: 'auto' | boolean;
  sessionTokens: 'auto' | boolean;
  init: string;
  trainScope: 'all' | 'sessions';
  label: string;
}

export interface SetupContext {
  nodeId: string;
  seed: number;
  logger: Logger;
  architectures: ReadonlyMap<string, ArchitectureContribution>;
  /** Makes an error naming the node. */
  fail(msg: string): Error;
}

export function specFromBatch(b: MaskedBatch): SessionSpec {
  return { sessionId: b.sessionId, nNeurons: b.shape.neurons, nBins: b.shape.bins, regions: [...b.regions] };
}

/**
 * A session's layout, and each neuron's mean count per bin over the session's training trials,
 * which seeds the architecture's readout (SessionSpec.meanCounts). Few-shot samplers train on a
 * subset of those trials; the mean still comes from all of them (the same for a pretrained and a
 * scratch model, so their comparison is unaffected).
 */
export function specFromSession(s: BinnedSession): SessionSpec {
  const trainRows = [...Array(s.nTrials).keys()].filter((t) => s.trials.split[t] === 'train');
  const meanCounts = trainingMeanCounts(s.counts, s.nBins, s.nNeurons, trainRows);
  return { sessionId: s.sessionId, nNeurons: s.nNeurons, nBins: s.nBins, regions: s.neurons.map((n) => n.acronym || 'unlabelled'), ...(meanCounts ? { meanCounts } : {}) };
}

/** What a training's numbers depend on in its data, compact enough to print in a refusal. */
export function dataFingerprint(binned: readonly BinnedSession[], first: MaskedBatch): Record<string, unknown>[] {
  const digest = (parts: ArrayBufferView[], text: string) => {
    const h = createHash('sha256').update(text);
    for (const p of parts) h.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
    return h.digest('hex').slice(0, 16);
  };
  if (binned.length) {
    return binned.map((s) => {
      const trials: Record<string, number> = {};
      for (const sp of s.trials.split) trials[sp] = (trials[sp] ?? 0) + 1;
      return { id: s.sessionId, neurons: s.nNeurons, bins: s.nBins, trials, digest: digest([s.counts, s.trials.trialIndex], s.trials.split.join(',')) };
    });
  }
  return [{ id: first.sessionId, split: first.split, neurons: first.shape.neurons, bins: first.shape.bins, digest: digest([first.target, first.trialIndex], '') }];
}

/** Config fields a fine-tuning run changes from the pretrained model's: the user's, and prompts / sessionTokens when set. */
function initOverrides(arch: ArchitectureContribution, p: TrainingParams): Record<string, unknown> {
  const config = { ...p.config };
  const sw = arch.switches ?? {};
  if (typeof p.prompts === 'boolean' && sw.promptTokens) config[sw.promptTokens] = p.prompts;
  if (typeof p.sessionTokens === 'boolean' && sw.sessionTokens) config[sw.sessionTokens] = p.sessionTokens;
  return config;
}

/** The config the model is built with: the user's, plus promptTokens from `prompts`. */
function modelConfig(arch: ArchitectureContribution, p: TrainingParams, first: MaskedBatch, nSessions: number, log: Logger): Record<string, unknown> {
  const config = { ...p.config };
  const sw = arch.switches ?? {};
  const want = p.prompts === 'auto' ? isPromptedMode(first.mode) : p.prompts;
  if (sw.promptTokens) {
    if (!(sw.promptTokens in config)) config[sw.promptTokens] = want;
  } else if (p.prompts === true) {
    log.warn(`architecture ${arch.name} has no promptTokens switch: prompts=true changes nothing`);
  }
  const tokens = p.sessionTokens === 'auto' ? nSessions > 1 : p.sessionTokens;
  if (sw.sessionTokens) {
    if (!(sw.sessionTokens in config)) config[sw.sessionTokens] = tokens;
  } else if (p.sessionTokens === true) {
    log.warn(`architecture ${arch.name} has no sessionTokens switch: sessionTokens=true changes nothing`);
  }
  return config;
}

/** Each session's neuron rows as saved with the model. */
function neuronLayouts(binned: BinnedSession[]): Record<string, unknown> {
  const neurons: Record<string, unknown> = {};
  for (const s of binned) {
    neurons[s.sessionId] = s.neurons.map((n) => ({ probe: n.probe, clusterId: n.clusterId, atlasId: n.atlasId, acronym: n.acronym, beryl: n.beryl, cosmos: n.cosmos }));
  }
  return neurons;
}

export class TrainingSetup {
  readonly opt: AdamW;
  private model_: ArchitectureModel | undefined;
  private pretrained: { model: ArchitectureModel; metadata: Record<string, unknown> } | undefined;
  private initInfo: Record<string, unknown> | undefined;
  private readonly initDir: string;

  private constructor(
    private arch: ArchitectureContribution,
    private p: TrainingParams,
    private ctx: SetupContext,
    private binned: BinnedSession[],
    private checkpoint: LoadedCheckpoint<LoopState> | undefined,
    private neurons: Record<string, unknown>,
  ) {
    this.initDir = p.init ? resolve(p.init) : '';
    this.opt = new AdamW({ weightDecay: p.weightDecay });
  }

  /** Reads what exists before the first batch: the run's checkpoint, else the pretrained model. */
  static async open(arch: ArchitectureContribution, p: TrainingParams, ctx: SetupContext, ckpt: Checkpointer, binned: BinnedSession[]): Promise<TrainingSetup> {
    const setup = new TrainingSetup(arch, p, ctx, binned, await ckpt.load<LoopState>(), neuronLayouts(binned));
    const { initDir, checkpoint } = setup;
    if (initDir && !checkpoint) {
      try {
        setup.pretrained = await loadTrainedModel(initDir, ctx.architectures, { architecture: p.architecture, config: initOverrides(arch, p), seed: ctx.seed });
      } catch (e) {
        setup.opt.dispose();
        throw ctx.fail(`init: ${(e as Error).message}`);
      }
    }
    // Layouts of sessions this run does not bin (the pretrained ones) come from the model's files.
    const earlier = (setup.pretrained?.metadata ?? checkpoint?.saved.metadata)?.neurons;
    if (earlier && typeof earlier === 'object') for (const [id, rows] of Object.entries(earlier)) if (!(id in setup.neurons)) setup.neurons[id] = rows;
    setup.initInfo = !initDir
      ? undefined
      : setup.pretrained
        ? { path: initDir, sessions: setup.pretrained.model.sessions().map((x) => x.sessionId) }
        : (checkpoint?.saved.metadata.init as Record<string, unknown> | undefined);
    return setup;
  }

  get model(): ArchitectureModel {
    if (!this.model_) throw new Error('TrainingSetup: no model before the first batch');
    return this.model_;
  }

  /** What the numbers of this run depend on; a checkpoint of another fingerprint is refused. */
  private fingerprint(totalEpochs: number, perEpoch: number, first: MaskedBatch): Record<string, unknown> {
    const p = this.p;
    return {
      data: dataFingerprint(this.binned, first),
      architecture: p.architecture,
      // Defaults filled, so spelling out a default on the rerun is not a different training.
      config: this.arch.configSchema.parse(p.config),
      prompts: p.prompts,
      learningRate: p.learningRate,
      weightDecay: p.weightDecay,
      warmupFraction: p.warmupFraction,
      clipNorm: p.clipNorm,
      seed: this.ctx.seed,
      epochs: totalEpochs,
      batchesInEpoch: perEpoch,
      ...(p.sessionTokens !== 'auto' ? { sessionTokens: p.sessionTokens } : {}),
      ...(this.initDir ? { init: this.initDir } : {}),
      ...(p.trainScope !== 'all' ? { trainScope: p.trainScope } : {}),
    };
  }

  /**
   * On the first batch: the loop state, restored from the checkpoint (resumed: true) or new with
   * a model built or fine-tuned from `init`.
   */
  begin(first: MaskedBatch, val: MaskedBatch[], ckpt: Checkpointer, totalEpochs: number, perEpoch: number): { state: LoopState; resumed: boolean } {
    const fingerprint = this.fingerprint(totalEpochs, perEpoch, first);
    const checkpoint = this.checkpoint;
    if (!checkpoint) return { state: this.start(first, val, fingerprint), resumed: false };
    let state: LoopState;
    try {
      const now = { ...fingerprint };
      if (!('data' in (checkpoint.state.fingerprint ?? {}))) {
        delete now.data;
        this.ctx.logger.warn({ checkpoint: ckpt.lastDir }, 'the checkpoint predates data fingerprints: resuming without checking that the sessions are the same');
      }
      const refusal = ckpt.refusal(checkpoint.state.fingerprint, now);
      if (refusal) throw this.ctx.fail(refusal);
      this.model_ = modelFromSaved(checkpoint.saved, this.ctx.architectures, join(ckpt.lastDir, 'model.json'), this.ctx.seed);
      this.opt.load(checkpoint.optimizer);
      state = checkpoint.state;
      if (this.p.label) state.label = this.p.label;
    } finally {
      checkpoint.dispose();
      this.checkpoint = undefined;
    }
    const msg = state.finished ? 'training already finished in this run folder: emitting its best model' : `resuming from ${ckpt.lastDir}: epoch ${state.epoch + 1}, batch ${state.nextBatch + 1}`;
    this.ctx.logger.info({ epoch: state.epoch, batch: state.nextBatch, step: state.step, finished: state.finished }, msg);
    return { state, resumed: true };
  }

  private start(first: MaskedBatch, val: MaskedBatch[], fingerprint: Record<string, unknown>): LoopState {
    const { p, arch, ctx } = this;
    const specs = this.binned.length ? this.binned.map(specFromSession) : [specFromBatch(first)];
    for (const b of [first, ...val]) if (!specs.some((x) => x.sessionId === b.sessionId)) specs.push(specFromBatch(b));
    if (this.pretrained) {
      const model = (this.model_ = this.pretrained.model);
      this.pretrained = undefined;
      const known = model.sessions().length;
      const added = specs.filter((x) => !model.hasSession(x.sessionId)).map((x) => x.sessionId);
      for (const spec of specs) this.ensureSession(spec);
      ctx.logger.info({ from: this.initDir, pretrainedSessions: known, newSessions: added, trainScope: p.trainScope }, `fine-tuning a pretrained ${model.architecture} model`);
    } else {
      this.model_ = arch.build(modelConfig(arch, p, first, specs.length, ctx.logger), { sessions: specs, seed: ctx.seed });
    }
    const model = this.model;
    const state = newLoopState(fingerprint, p.label);
    const trainable = model.trainableVariables(p.trainScope).reduce((n, v) => n + v.size, 0);
    const { epochs, batchesInEpoch: batchesPerEpoch } = fingerprint;
    ctx.logger.info({ architecture: arch.name, params: model.paramCount(), trainable, epochs, batchesPerEpoch, config: model.config }, 'training');
    return state;
  }

  /** Adds per-session weights for a session the model does not know yet. */
  ensureSession(spec: SessionSpec): void {
    const model = this.model;
    if (model.hasSession(spec.sessionId)) return;
    this.ctx.logger.debug({ session: spec.sessionId }, 'adding per-session weights');
    try {
      model.addSession(spec);
    } catch (e) {
      throw this.initDir ? this.ctx.fail(`cannot add session ${spec.sessionId} to the model from ${join(this.initDir, 'model.json')}: ${(e as Error).message}`) : e;
    }
  }

  /** The metadata saved in model.json with every checkpoint. */
  metadata(s: LoopState, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const { neurons, initInfo } = this;
    return {
      sessions: this.model.sessions(),
      ...(Object.keys(neurons).length ? { neurons } : {}),
      label: s.label,
      ...(s.trainedModes ? { trainedModes: s.trainedModes } : {}),
      seed: this.ctx.seed,
      ...(initInfo ? { init: initInfo } : {}),
      training: { node: this.ctx.nodeId, params: this.p, step: s.step, epoch: s.epoch, history: s.history, ...extra },
    };
  }

  /** The model port's item: the best checkpoint, at `path`. */
  modelRef(best: BestEpoch, label: string, path: string): ModelRef {
    const model = this.model;
    return {
      kind: 'model',
      path,
      architecture: model.architecture,
      config: model.config,
      sessions: model.sessions(),
      label,
      epoch: best.epoch,
      score: best.score,
      scoreOn: best.valLoss === null ? 'train' : 'val',
      trainLoss: best.trainLoss,
      ...(best.valLoss === null ? {} : { valLoss: best.valLoss }),
    };
  }

  /** Frees every tensor: the model, the moments, and a checkpoint or pretrained model never used. */
  dispose(): void {
    this.checkpoint?.dispose();
    this.pretrained?.model.dispose();
    this.model_?.dispose();
    this.opt.dispose();
  }
}
