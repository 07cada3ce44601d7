// Cuts binned sessions into shuffled batches of one session's trials and masks each batch (docs/method.md §3; multi-session and few-shot: §5.5).
//
// Decisions:
// - Fair sessions. A batch never mixes sessions, and with shuffle on, each epoch interleaves the
//   sessions' batches by stratified keys: batch j of a session with m batches gets the key
//   (j + u) / m, u drawn per session and epoch, and the epoch runs in key order. So every stretch
//   of an epoch holds each session's batches in proportion to its share (within about one batch),
//   instead of a plain shuffle's random runs of one session. `sessionBalance` says what a
//   session's share is: `proportional` (default) keeps one pass over every trial per epoch, so
//   sessions weigh by their trial counts; `equal` gives every session as many batches as the
//   largest one, a smaller session starting fresh reshuffled passes over its trials to fill them.
// - Few-shot. `maxTrials` k keeps the first k trials of the split of each session after a
//   shuffle seeded by the graph seed and the session id alone (not the epoch), so the subsets of
//   two k are nested (k = 8 is the first 8 of k = 32) and the same in every epoch.
import { z } from 'zod';
import { defineStage } from '../core/stage.ts';
import type { BinnedSession, Split } from '../core/payloads.ts';
import { createRng, hashString } from '../core/rng.ts';
import { applyMask, applicableModes, sampleMask } from '../core/masking/masking.ts';
import { MASKING_SCHEMES, type MaskedBatch, type MaskingScheme, type MaskRatios } from '../core/masking/types.ts';

const ratio = (def: number, what: string) => z.number().min(0).max(1).default(def).describe(what);

export const maskingSamplerParams = z.object({
  split: z.enum(['train', 'val', 'test']).default('train').describe('which trials to batch: the split the binning stage assigned to each trial'),
  batchSize: z.number().int().min(1).default(16).describe('trials per batch; a batch never mixes sessions'),
  mode: z.enum(MASKING_SCHEMES as [MaskingScheme, ...MaskingScheme[]]).default('mtm').describe('masking mode (docs/method.md §3.1); mtm draws one of neuron, causal, inter-region, intra-region per batch'),
  epochs: z.number().int().min(1).default(1).describe('passes over the trials; each epoch is reshuffled and remasked'),
  shuffle: z.boolean().default(true).describe('shuffle trials within each session and the order of batches across sessions, per epoch, from the graph seed'),
  dropLast: z.boolean().default(false).describe("drop each session's last batch when it has fewer than batchSize trials"),
  temporalRatio: ratio(0.3, 'probability a time bin is masked in temporal mode'),
  neuronRatio: ratio(0.3, 'probability a neuron is masked in neuron mode'),
  causalRatio: ratio(0.6, 'probability a time bin is masked in causal mode'),
  intraRegionRatio: ratio(0.3, 'probability a neuron inside the chosen region is masked in intra-region mode'),
  tokenRatio: ratio(0.3, 'probability a (bin, neuron block) cell is masked in token mode'),
  tokenNeurons: z.number().int().min(1).default(64).describe("token mode: consecutive neurons per masked cell; match NDT2's patchSize to mask whole patch tokens"),
  timeSpan: z.number().int().min(1).default(1).describe('temporal and causal modes: longest run of consecutive bins one draw masks (lengths uniform in 1..timeSpan; 1 masks single bins)'),
  causalForecast: ratio(0, 'causal mode: probability a trial is masked as a forecast (every bin from a random cut point on), instead of by random bins'),
  sessionBalance: z
    .enum(['proportional', 'equal'])
    .default('proportional')
    .describe("each session's share of an epoch's batches: proportional (every trial once per epoch) or equal (every session as many batches as the largest, smaller ones resampled); with shuffle on, sessions are interleaved evenly either way"),
  maxTrials: z.number().int().min(0).default(0).describe('few-shot: keep only the first k trials of the split per session, after a seeded shuffle fixed across epochs (smaller k: a nested subset); 0 keeps all'),
  regionLevel: z.enum(['acronym', 'beryl', 'cosmos']).default('acronym').describe("which neuron label defines a region: acronym (the level region-labelling chose), beryl or cosmos"),
});

export type MaskingSamplerParams = z.output<typeof maskingSamplerParams>;

function checkSession(s: BinnedSession): void {
  const where = `binned session ${s.sessionId}`;
  const want = s.nTrials * s.nBins * s.nNeurons;
  if (s.counts.length !== want) throw new Error(`${where}: counts has ${s.counts.length} entries, expected nTrials x nBins x nNeurons = ${want}`);
  if (s.neurons.length !== s.nNeurons) throw new Error(`${where}: neurons has ${s.neurons.length} rows for nNeurons = ${s.nNeurons}`);
  if (s.trials.split.length !== s.nTrials) throw new Error(`${where}: trials.split has ${s.trials.split.length} entries for nTrials = ${s.nTrials}`);
}

interface PlannedBatch {
  session: BinnedSession;
  regions: string[];
  rows: number[];
}

/** The trial rows of `split` a session trains on: all of them, or its few-shot subset of maxTrials. */
export function splitRows(s: BinnedSession, p: Pick<MaskingSamplerParams, 'split' | 'maxTrials'>, seed: number): number[] {
  const rows: number[] = [];
  for (let t = 0; t < s.nTrials; t++) if (s.trials.split[t] === p.split) rows.push(t);
  if (p.maxTrials <= 0 || rows.length <= p.maxTrials) return rows;
  createRng(hashString(`subset:${s.sessionId}`, seed)).shuffle(rows);
  return rows.slice(0, p.maxTrials).sort((a, b) => a - b);
}

/** Cuts rows into batches of batchSize (the last one short, or dropped with dropLast). */
function chunks(rows: number[], p: MaskingSamplerParams): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < rows.length; i += p.batchSize) {
    const chunk = rows.slice(i, i + p.batchSize);
    if (p.dropLast && chunk.length < p.batchSize) break;
    out.push(chunk);
  }
  return out;
}

/** The batches of one epoch, before masking: trial rows per session, interleaved fairly when shuffled (see the file comment). */
export function planEpoch(sessions: BinnedSession[], regions: string[][], p: MaskingSamplerParams, seed: number, epoch: number): PlannedBatch[] {
  const perSession = sessions.map((s) => {
    const rows = splitRows(s, p, seed);
    const pass = (n: number) => {
      const r = [...rows];
      // Pass 0 is seeded as single-pass epochs always were, so a seed keeps giving the same batches.
      if (p.shuffle) createRng(hashString(n === 0 ? `trials:${epoch}:${s.sessionId}` : `trials:${epoch}:${n}:${s.sessionId}`, seed)).shuffle(r);
      return chunks(r, p);
    };
    return { first: pass(0), pass };
  });
  if (p.sessionBalance === 'equal') {
    const most = Math.max(0, ...perSession.map((x) => x.first.length));
    for (const x of perSession) {
      if (x.first.length === 0) continue;
      for (let n = 1; x.first.length < most; n++) x.first.push(...x.pass(n).slice(0, most - x.first.length));
    }
  }
  const batches: (PlannedBatch & { key: number; tie: number })[] = [];
  perSession.forEach((x, si) => {
    const m = x.first.length;
    const u = p.shuffle ? createRng(hashString(`offset:${epoch}:${sessions[si].sessionId}`, seed)).next() : 0;
    x.first.forEach((rows, j) => batches.push({ session: sessions[si], regions: regions[si], rows, key: p.shuffle ? (j + u) / m : si + j / (m + 1), tie: si }));
  });
  // Ties (equal keys) are broken by a per-epoch session order, so no session always goes first.
  const rank = sessions.map((_, i) => i);
  if (p.shuffle) createRng(hashString(`batches:${epoch}`, seed)).shuffle(rank);
  batches.sort((a, b) => a.key - b.key || rank[a.tie] - rank[b.tie]);
  return batches.map(({ session, regions: r, rows }) => ({ session, regions: r, rows }));
}

/** Gathers the rows of one batch and masks it; the mask depends only on seed, epoch and position. */
export function makeBatch(plan: PlannedBatch, p: MaskingSamplerParams, seed: number, epoch: number, batchIndex: number, batchesInEpoch: number): MaskedBatch {
  const s = plan.session;
  const perTrial = s.nBins * s.nNeurons;
  const target = new Int32Array(plan.rows.length * perTrial);
  plan.rows.forEach((row, i) => target.set(s.counts.subarray(row * perTrial, (row + 1) * perTrial), i * perTrial));
  const shape = { trials: plan.rows.length, bins: s.nBins, neurons: s.nNeurons };
  const ratios: MaskRatios = { temporal: p.temporalRatio, neuron: p.neuronRatio, causal: p.causalRatio, intraRegion: p.intraRegionRatio, token: p.tokenRatio };
  const rng = createRng(hashString(`mask:${epoch}:${batchIndex}`, seed));
  const draw = sampleMask(shape, plan.regions, p.mode, rng, ratios, { span: p.timeSpan, forecast: p.causalForecast, tokenNeurons: p.tokenNeurons });
  return {
    kind: 'masked-batch',
    sessionId: s.sessionId,
    split: p.split as Split,
    epoch,
    epochs: p.epochs,
    batchIndex,
    batchesInEpoch,
    trialIndex: Int32Array.from(plan.rows),
    shape,
    binSizeMs: s.binSizeMs,
    input: applyMask(target, draw.masked),
    target,
    lossMask: draw.lossMask,
    masked: draw.masked,
    mode: draw.mode,
    causal: draw.causal,
    maskedRegion: draw.region,
    regions: plan.regions,
  };
}

function regionLabels(s: BinnedSession, level: MaskingSamplerParams['regionLevel']): string[] {
  return s.neurons.map((n) => n[level] || 'unlabelled');
}

export const maskingSampler = defineStage({
  id: 'masking-sampler',
  version: 1,
  summary: 'Batches trials of one split, one session per batch, shuffled per epoch, each batch masked by the chosen mode',
  spec: 'docs/method.md §3',
  inputs: {
    sessions: { type: 'binned-session', description: 'binned, region-labelled sessions (all are needed before the first epoch is shuffled)', collect: true },
  },
  outputs: {
    batches: { type: 'masked-batch', description: 'masked batches, epoch by epoch, each carrying its session id, trial rows, mode and loss mask' },
  },
  params: maskingSamplerParams,
  create(p, ctx) {
    return {
      async *generate({ sessions }) {
        for (const s of sessions) checkSession(s);
        const regions = sessions.map((s) => regionLabels(s, p.regionLevel));
        sessions.forEach((s, i) => {
          const log = ctx.logger.child({ session: s.sessionId });
          const n = s.trials.split.filter((x) => x === p.split).length;
          if (n === 0) log.warn(`no ${p.split} trials: this session contributes no batches`);
          else if (p.maxTrials > 0) log.info({ kept: Math.min(n, p.maxTrials), of: n }, `few-shot: ${p.split} trials kept`);
          const modes = applicableModes(p.mode, regions[i]);
          if (p.mode === 'inter-region' && modes[0] === 'neuron') log.warn('only one region: inter-region batches fall back to neuron masking');
        });
        for (let epoch = 0; epoch < p.epochs; epoch++) {
          const plan = planEpoch(sessions, regions, p, ctx.seed, epoch);
          if (epoch === 0) ctx.logger.info({ sessions: sessions.length, batchesPerEpoch: plan.length, split: p.split, mode: p.mode, sessionBalance: p.sessionBalance, maxTrials: p.maxTrials || undefined }, 'sampling');
          for (let i = 0; i < plan.length; i++) {
            if (ctx.signal.aborted) return;
            yield makeBatch(plan[i], p, ctx.seed, epoch, i, plan.length);
          }
        }
      },
    };
  },
});
