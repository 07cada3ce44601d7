// Trains a registered architecture on masked batches with AdamW, a one-cycle schedule, clipping, early stopping, checkpoints and resume (docs/method.md §4).
// The loop and its parts are in core/train/ (loop.ts names them); this file holds the ports, the
// params and the wiring.
//
// Decisions:
// - Resume: `last/` in the node's artifact folder is rewritten after every epoch (and at the
//   exact batch reached when the run is interrupted). When it exists at start, the model, the
//   AdamW moments and the loop state are restored and the batches already trained are skipped;
//   a resumed run ends with the same weights as an uninterrupted one. A checkpoint of a different
//   training (other params, seed or batch count) is refused rather than silently mixed
//   (core/train/checkpointer.ts, core/train/setup.ts).
// - Prompts `auto`, session tokens `auto` and fine-tuning (`init`, docs/method.md §4.7, §5.5):
//   core/train/setup.ts. The pretrained model may instead arrive on the `init` port (e.g. from a
//   pretraining node in the same graph, as graphs/scaling.yaml does): training then waits for it,
//   and uses the folder it names exactly as the param's.
// - Best checkpoint on the validation loss (the train loss when no val batches arrive), mean
//   Poisson NLL over every scored entry; ties keep the earlier epoch. Early stopping is off by
//   default (patience 0): with a one-cycle schedule the last epochs are the low-rate ones
//   (core/train/early-stopping.ts).
// - Interruption (ctx.signal): the step in progress finishes, `last/` is written at that batch,
//   and the node completes without emitting a model (a rerun into the same folder resumes).
// - Only the val sampler's first epoch is scored (a val set is fixed).
// - The model is sent on the first output port, the per-epoch metrics on the second, which the
//   runtime replays (docs/architecture.md §4.4): a node downstream that reads only the model
//   never holds training back.
import { z } from 'zod';
import { defineStage, type StageContext } from '../core/stage.ts';
import type { ArchitectureContribution } from '../core/architecture.ts';
import type { BinnedSession, Metrics, ModelRef } from '../core/payloads.ts';
import type { MaskedBatch } from '../core/masking/types.ts';
import { didYouMean, listOf } from '../core/graph/diagnostics.ts';
import { Checkpointer } from '../core/train/checkpointer.ts';
import { EarlyStopping } from '../core/train/early-stopping.ts';
import { trainLoop } from '../core/train/loop.ts';
import { NanGuard } from '../core/train/nan-guard.ts';
import { TrainingReporter } from '../core/train/reporter.ts';
import { TrainingSetup } from '../core/train/setup.ts';

export type { EpochRecord } from '../core/train/loop-state.ts';

export const trainModelParams = z.object({
  architecture: z.string().default('ndt1').describe("model architecture, by the name a plugin registered (see `mtm stages`)"),
  config: z.record(z.string(), z.unknown()).default({}).describe("the architecture's config (e.g. dModel, layers); missing fields take the architecture's defaults"),
  learningRate: z.number().positive().default(1e-3).describe('peak learning rate of the one-cycle schedule'),
  weightDecay: z.number().min(0).default(0.01).describe('AdamW decoupled weight decay'),
  warmupFraction: z.number().min(0).max(1).default(0.15).describe('fraction of all steps spent warming the learning rate up linearly to its peak; a cosine brings it down to ~0 after'),
  clipNorm: z.number().min(0).default(1).describe('clip the global gradient norm to this value; 0 turns clipping off'),
  patience: z.number().int().min(0).default(0).describe('stop after this many epochs without a better validation loss; 0 trains every epoch'),
  nanPolicy: z
    .enum(['stop', 'skip'])
    .default('stop')
    .describe('a step whose loss or gradient is NaN/Inf: stop names it and keeps the last good checkpoint; skip leaves that batch out (no weight changes) and trains on'),
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
    const initPort = ctx.connectedInputs.has('init');
    if (initPort && p.init) throw fail(ctx, `both the init param (${p.init}) and the init port are set; use one`);
    return {
      async run({ train: batches, val, sessions, init: initRefs }, send) {
        let init = p.init;
        if (initPort) {
          if (initRefs.length > 1) throw fail(ctx, `${initRefs.length} models arrived on the init port (${initRefs.map((r) => r.path).join(', ')}); fine-tuning starts from one`);
          if (!initRefs.length) {
            if (!ctx.signal.aborted) throw fail(ctx, `no model arrived on the init port: the node feeding it ended without a model`);
            ctx.logger.warn('interrupted before the pretrained model arrived on the init port: nothing trained');
            return;
          }
          init = initRefs[0].path;
        }
        const ref = await train(arch, { ...p, init }, ctx, batches[Symbol.asyncIterator](), val, sessions, (m) => void send('metrics', m));
        if (ref) await send('model', ref);
      },
    };
  },
});

/** Wires the loop's parts for one node and runs it (core/train/loop.ts). */
async function train(
  arch: ArchitectureContribution,
  p: TrainModelParams,
  ctx: StageContext,
  batches: AsyncIterator<MaskedBatch>,
  valAll: MaskedBatch[],
  binned: BinnedSession[],
  emit: (m: Metrics) => void,
): Promise<ModelRef | undefined> {
  const log = ctx.logger;
  const val = valAll.filter((b) => b.epoch === 0);
  if (val.length < valAll.length) log.warn(`the val sampler produced ${valAll.length - val.length} batches after its first epoch: only epoch 1 is used (set its epochs to 1)`);
  const failHere = (msg: string) => fail(ctx, msg);
  const checkpointer = new Checkpointer(ctx.run.artifactDir(ctx.nodeId));
  const setup = await TrainingSetup.open(arch, p, { nodeId: ctx.nodeId, seed: ctx.seed, logger: log, architectures: ctx.architectures, fail: failHere }, checkpointer, binned);
  const parts = {
    setup,
    checkpointer,
    stopping: new EarlyStopping(p.patience),
    guard: new NanGuard({ policy: p.nanPolicy, lastDir: checkpointer.lastDir, fail: failHere, warn: (f, m) => log.warn(f, m) }),
    reporter: new TrainingReporter({ nodeId: ctx.nodeId, run: ctx.run, progress: (l, n) => ctx.progress(l, n), logger: log, emit }),
  };
  const { learningRate, warmupFraction, clipNorm, trainScope } = p;
  return trainLoop({ batches, val, signal: ctx.signal, logger: log, seed: ctx.seed, fail: failHere, learningRate, warmupFraction, clipNorm, trainScope }, parts);
}
