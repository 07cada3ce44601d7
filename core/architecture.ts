// The one interface every model architecture implements (NDT1, NDT2, or a third-party plugin;
// docs/architecture.md §7).
// The masking sampler never sees it: masking acts on the data (docs/method.md §3), and a model only
// receives masked counts plus the mode, which picks its prompt token and causal attention.
import type { z } from 'zod';
import type * as tf from './tensor/tf.ts';
import type { MaskingMode } from './masking/types.ts';
import type { SessionSpec } from './payloads.ts';

// SessionSpec is a data type (payloads.ts, where a ModelRef lists them); re-exported here because
// every architecture builds from it.
export type { SessionSpec };

/**
 * Each neuron's mean count per bin over the given trials (rows of row-major [trial][bin][neuron]
 * counts), for SessionSpec.meanCounts. A neuron with no spike in them gets half a spike over all
 * their bins instead of 0: its log must be finite, and half a spike is below anything those
 * trials could have shown. Empty `rows` gives undefined (nothing to initialise from).
 */
export function trainingMeanCounts(counts: ArrayLike<number>, nBins: number, nNeurons: number, rows: ArrayLike<number>): number[] | undefined {
  if (!rows.length) return undefined;
  const sums = new Float64Array(nNeurons);
  const TN = nBins * nNeurons;
  for (let i = 0; i < rows.length; i++) {
    const off = rows[i] * TN;
    if (!(Number.isInteger(rows[i]) && rows[i] >= 0 && off + TN <= counts.length)) throw new Error(`trainingMeanCounts: trial row ${rows[i]} is outside the counts (${counts.length / TN} trials)`);
    for (let e = 0; e < TN; e++) sums[e % nNeurons] += counts[off + e];
  }
  const bins = rows.length * nBins;
  return Array.from(sums, (x) => Math.max(x, 0.5) / bins);
}

/** log of each neuron's mean training count, checked: one positive finite value per neuron. */
export function logMeanCounts(spec: SessionSpec): Float32Array {
  const m = spec.meanCounts!;
  if (m.length !== spec.nNeurons) throw new Error(`session ${spec.sessionId}: meanCounts has ${m.length} values for ${spec.nNeurons} neurons`);
  return Float32Array.from(m, (x, n) => {
    if (!(Number.isFinite(x) && x > 0)) throw new Error(`session ${spec.sessionId}: meanCounts[${n}] is ${x}; every mean count must be positive and finite (trainingMeanCounts floors silent neurons)`);
    return Math.log(x);
  });
}

/**
 * An architecture's config, validated with its schema (defaults filled); a bad field throws
 * naming the architecture and the field, as `build` must.
 */
export function parseArchitectureConfig<S extends z.ZodObject>(name: string, schema: S, config: Record<string, unknown>): z.output<S> {
  const parsed = schema.safeParse(config);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`).join('; ');
    throw new Error(`${name} config: ${issues}`);
  }
  return parsed.data;
}

/** One batch, as tensors, from one session (batches never mix sessions). */
export interface ModelInput {
  sessionId: string;
  /** Masked counts [B, T, N_s], float32; masked entries are 0. */
  input: tf.Tensor3D;
  /** The task: selects the learned prompt token; 'temporal' has none. */
  mode: MaskingMode;
  /** Use causal attention: no output at bin t may depend on input after t. */
  causal: boolean;
  /** Optional [B * T] 1 = real bin, 0 = padding; padding is never attended to. */
  binValid?: Uint8Array;
}

/**
 * A leave-one-out batch: B output rows, each a copy of one of U base inputs with one neuron
 * zeroed in every bin (co-smoothing, intra-region). Rows sharing a base should be adjacent.
 */
export interface LeaveOneOutInput extends Omit<ModelInput, 'input'> {
  /** Base counts [U, T, N_s], float32, nothing left out yet (other masked entries already 0). */
  input: tf.Tensor3D;
  /** [B]: the base row (in [0, U)) each output row copies. */
  baseRow: Int32Array;
  /** [B]: the neuron (in [0, N_s)) zeroed in every bin of each output row. */
  leftOut: Int32Array;
}

/** What an incremental causal stream reads and predicts (ArchitectureModel.openCausalStream). */
export interface CausalStreamOptions {
  /** The session whose per-session weights read the stream's neurons. */
  sessionId: string;
  /** Prompt mode, as ModelInput.mode ('causal', or 'temporal' for a model without prompts). */
  mode: MaskingMode;
  /** Independent caches to keep (a predictor staggers their restarts; see core/stream/cached-predictor.ts). */
  caches: number;
  /** Most bins one cache holds; a prediction then sits at position maxBins, inside the model's positions. */
  maxBins: number;
}

/**
 * Causal prediction one bin at a time from key/value caches: each cache holds the bins appended
 * since its last reset at positions 0, 1, ..., and every appended bin costs one token's work.
 * The contract, which a test must show for an implementation: predictNext(k) equals, to float32
 * rounding, the last time step of `forward({ input: [cache k's bins, then one zeroed bin], mode,
 * causal: true }, { training: false })`, i.e. a windowed causal pass over exactly that span.
 * Weights are read when the stream is opened: open a new one after changing them. Uses no
 * tensors after opening (plain typed arrays), so nothing is left to dispose but the caches.
 */
export interface CausalStream {
  readonly caches: number;
  /** Most bins one cache holds (CausalStreamOptions.maxBins). */
  readonly maxBins: number;
  /** Bins cache k holds. */
  length(cache: number): number;
  /** Empties cache k: its next bin takes position 0. */
  reset(cache: number): void;
  /** Appends one observed bin (counts per neuron) to every cache; a full cache throws. */
  append(counts: ArrayLike<number>): void;
  /** Log-rates of the next bin (position length(k) of cache k) into `out`, without appending it. */
  predictNext(cache: number, out: Float32Array): void;
  dispose(): void;
}

export interface ForwardOptions {
  /** Dropout on when true; evaluation passes false. */
  training: boolean;
  /**
   * Seeds this call's dropout draws. The trainer passes one per step (derived from the graph
   * seed and the step number), so a run resumed from a checkpoint drops exactly the units an
   * uninterrupted run would. Without it the model draws from its own seeded generator.
   */
  seed?: number;
}

/** A built model: weights it owns, and a forward pass from masked counts to log-rates. */
export interface ArchitectureModel {
  /** The contribution's name ('ndt1'). */
  readonly architecture: string;
  /** Config with every default filled: saved with the model and enough to rebuild it. */
  readonly config: Record<string, unknown>;
  /** What this model has: training, evaluation and streaming read this, never config field names. */
  readonly capabilities: ModelCapabilities;
  /** The sessions it has per-session weights for, in the order they were added. */
  sessions(): SessionSpec[];
  hasSession(sessionId: string): boolean;
  /** Adds per-session weights for a new session (fine-tuning on held-out sessions). */
  addSession(session: SessionSpec): void;
  /**
   * Poisson log-rates [B, T, N_s] for the batch's session. Records on the gradient tape like any
   * tf op: call it inside tf.tidy / optimizer.minimize, or dispose the result.
   */
  forward(input: ModelInput, opts: ForwardOptions): tf.Tensor3D;
  /**
   * Optional fast path for leave-one-out evaluation: log-rates [B, T, N_s] as if neuron
   * leftOut[b] were zeroed in row b (a copy of base row baseRow[b]), equal to `forward` on the
   * B materialised copies to float32 rounding. An architecture whose input enters through a
   * linear map can subtract the left-out neuron's rank-1 term instead of recomputing the map per
   * copy. Without it, evaluation runs `forward` on every copy. `binValid`, when given, is per
   * output row ([B * T]).
   */
  forwardLeaveOneOut?(input: LeaveOneOutInput, opts: ForwardOptions): tf.Tensor3D;
  /**
   * Optional incremental causal prediction (per-bin streaming with a key/value cache): see
   * CausalStream for the contract. Without it, streaming runs the windowed causal pass
   * (core/stream/predictor.ts) at every stride, stride 1 included.
   */
  openCausalStream?(opts: CausalStreamOptions): CausalStream;
  /**
   * Trainable variables: 'all', 'sessions' (per-session weights only, for a frozen core), or the
   * per-session weights of one session id.
   */
  trainableVariables(scope?: 'all' | 'sessions' | { sessionId: string }): tf.Variable[];
  /** Every weight by a stable name, for saving. These are the variables: do not dispose them. */
  weights(): tf.NamedTensorMap;
  /**
   * Assigns saved weights by name, checking names and shapes. `allowMissing` leaves weights the
   * map lacks as initialised (e.g. a pretrained core loaded into a model with new sessions).
   */
  loadWeights(map: tf.NamedTensorMap, opts?: { allowMissing?: boolean; source?: string }): void;
  /** Number of scalar weights. */
  paramCount(): number;
  dispose(): void;
}

/**
 * What a built model has. The optional methods of ArchitectureModel are capabilities too: an
 * exact leave-one-out fast path (forwardLeaveOneOut) and per-bin causal streaming
 * (openCausalStream).
 */
export interface ModelCapabilities {
  /**
   * Learned MtM prompt tokens, one per mode of MTM_MODES: evaluation then runs each task with its
   * mode's prompt; without them `temporal` is the no-prompt mode (docs/method.md §3.3, §5.2).
   */
  promptTokens: boolean;
  /** A learned token per session. */
  sessionTokens: boolean;
  /** The longest input in bins the model accepts (its position embedding); Infinity when unbounded. */
  maxBins: number;
}

/** The keys of T whose values are booleans. */
export type BooleanKeys<T> = { [K in keyof T]-?: T[K] extends boolean ? K : never }[keyof T] & string;

export interface BuildOptions {
  /** Sessions to create per-session weights for (more may be added later). */
  sessions: SessionSpec[];
  /** Seeds weight initialisation and dropout. */
  seed: number;
}

export interface ArchitectureContribution<S extends z.ZodObject = z.ZodObject> {
  /** Name used by the model stage's `architecture` param (e.g. 'ndt1'). */
  name: string;
  summary: string;
  /** How the model cuts (time x neurons) into tokens, for docs and `mtm stages`. */
  tokenLayout: string;
  /** Config schema: every field has a default and a description (like a stage's params). */
  configSchema: S;
  /**
   * The boolean config fields that switch MtM prompt tokens and per-session tokens on, for an
   * architecture that has them (typed against configSchema). The training stage sets them from
   * its `prompts` and `sessionTokens` params unless the user's config sets them itself; one the
   * architecture lacks is left out, and asking the trainer for it only logs a warning.
   */
  switches?: { promptTokens?: BooleanKeys<z.output<S>>; sessionTokens?: BooleanKeys<z.output<S>> };
  /**
   * Builds a model with fresh weights. `config` is validated with configSchema (defaults filled);
   * bad fields throw naming the field.
   */
  build(config: Record<string, unknown>, opts: BuildOptions): ArchitectureModel;
}
