// Types of the architecture-agnostic masking of docs/method.md §3, shared by the sampler stage, the
// model stages and the evaluator.
import type { Split } from '../split.ts';

/**
 * What one batch is masked with. `token` masks random (bin, block of consecutive neurons) cells:
 * NDT2's own random-token pretraining, stated on the data so any architecture can train with it.
 */
export type MaskingMode = 'temporal' | 'neuron' | 'causal' | 'inter-region' | 'intra-region' | 'token';
/** A masking param: one mode, or `mtm` (one of the four MtM modes per batch, uniformly). */
export type MaskingScheme = MaskingMode | 'mtm';

export const MASKING_MODES: readonly MaskingMode[] = ['temporal', 'neuron', 'causal', 'inter-region', 'intra-region', 'token'];
export const MASKING_SCHEMES: readonly MaskingScheme[] = [...MASKING_MODES, 'mtm'];
/** The modes `mtm` draws from; each has a learned prompt token in the models (docs/method.md §3.3). */
export const MTM_MODES: readonly MaskingMode[] = ['neuron', 'causal', 'inter-region', 'intra-region'];

/** Whether a mode has a prompt token (the MtM modes); temporal and token are prompt-free baselines. */
export function isPromptedMode(mode: MaskingMode): boolean {
  return MTM_MODES.includes(mode);
}

/** Bernoulli probabilities of the random modes (defaults: docs/method.md §3.1). */
export interface MaskRatios {
  /** Per time bin, temporal mode. */
  temporal: number;
  /** Per neuron, neuron mode. */
  neuron: number;
  /** Per time bin, causal mode. */
  causal: number;
  /** Per neuron inside the chosen region, intra-region mode. */
  intraRegion: number;
  /** Per (bin, neuron block) cell, token mode. */
  token: number;
}

export const DEFAULT_RATIOS: MaskRatios = { temporal: 0.3, neuron: 0.3, causal: 0.6, intraRegion: 0.3, token: 0.3 };

/** How the bins of the time modes (temporal, causal) and the cells of token mode are chosen. */
export interface TimeMaskShape {
  /** Longest span of consecutive bins one draw masks: each span's length is uniform in 1..span (1: single bins). */
  span: number;
  /**
   * Causal mode only: the probability a trial is masked as a forecast instead, every bin from a
   * cut point on zeroed and scored, the cut uniform over the trial (at least one bin before it).
   */
  forecast: number;
  /** Token mode: consecutive neurons per cell (NDT2's patch size; the last block may be shorter). */
  tokenNeurons: number;
}

export const DEFAULT_TIME_SHAPE: TimeMaskShape = { span: 1, forecast: 0, tokenNeurons: 64 };

/** Shape of a batch of binned counts, row-major [trial][bin][neuron]. */
export interface BatchShape {
  trials: number;
  bins: number;
  neurons: number;
}

/** One drawn mask. Both arrays are [trial][bin][neuron], 1 = yes. */
export interface MaskDraw {
  /** The mode actually used (for `mtm`, the one drawn; see sampleMask for fallbacks). */
  mode: MaskingMode;
  /** The model must use causal attention (causal mode). */
  causal: boolean;
  /** Entries set to 0 in the model's input. */
  masked: Uint8Array;
  /** Entries the loss (and evaluation) scores. */
  lossMask: Uint8Array;
  /** The region chosen by the region modes. */
  region?: string;
}

/** The `masked-batch` payload: one batch of trials from one session, masked. */
export interface MaskedBatch {
  kind: 'masked-batch';
  sessionId: string;
  split: Split;
  /** 0-based epoch this batch belongs to. */
  epoch: number;
  /** Epochs the sampler produces in all: with batchesInEpoch, the length of a training schedule. */
  epochs: number;
  /** Position of this batch in its epoch (all sessions counted), and the epoch's batch count. */
  batchIndex: number;
  batchesInEpoch: number;
  /** Rows of the session's `counts` (its trial axis) that make up this batch, in batch order. */
  trialIndex: Int32Array;
  shape: BatchShape;
  binSizeMs: number;
  /** Model input: counts with masked entries set to 0, [trial][bin][neuron]. */
  input: Float32Array;
  /** Unmasked counts, [trial][bin][neuron]. */
  target: Int32Array;
  /** 1 where the loss scores the entry. */
  lossMask: Uint8Array;
  /** 1 where the input was zeroed (differs from lossMask in intra-region mode). */
  masked: Uint8Array;
  mode: MaskingMode;
  causal: boolean;
  /** Region chosen by the region modes. */
  maskedRegion?: string;
  /** Region label of each neuron (at the sampler's `regionLevel`), shared by all batches of a session. */
  regions: string[];
}
