// NDT2 (docs/method.md §4.2): space-time patch tokens (1 bin x P neurons), learned time- and space-patch
// embeddings, learned prompt and session tokens, a pre-LayerNorm encoder, per-token readout.
//
// Decisions, made here:
// - A session with N_s neurons is cut into ceil(N_s / P) space patches; only its last patch is
//   partial, and is padded with zeros. No patch is ever all padding, so no token needs a
//   key-padding mask for neurons: padded entries are exact zeros, and a zero enters the patch
//   MLP's first Linear as a zero term, so it carries no information. The readout's padded slots
//   are cropped before the log-rates leave the model, so the loss never sees (or trains) them.
// - Tokens are ordered time-major (bin t, patch s at index t * nPatches + s), so [B, T, nP * P]
//   -> [B, T * nP, P] is a plain reshape (no gather, no 5-D transpose: docs/performance.md §2.2, §2.3).
// - binValid (padded bins) masks every patch token of a padded bin as a key.
// - Per-session weights, keyed by session id: the session token, and optionally a per-session
//   input projection Linear(N_s -> nP * P) in front of the patching (`sessionInput`). The patch
//   MLP, embeddings, encoder and readout are shared by all sessions.
// - Readout: the readout Linear(D -> P) is shared by every session and every slot of a patch, so
//   it cannot hold each neuron's own rate. With `neuronBias` (the default) each session also
//   has one log-rate bias per neuron, added after the readout and started at the log of the
//   neuron's mean training count (SessionSpec.meanCounts), as NDT1's per-session readout bias
//   is: the shared weights then only learn the modulation around every neuron's own mean, and a
//   0.1 Hz unit is not predicted at its patch's pooled rate. A session added for fine-tuning
//   gets its own biases from its own means. Without `neuronBias`, the shared readout's bias
//   starts at the log of the pooled mean count over all neurons (the best single rate for all).
import { z } from 'zod';
import { logMeanCounts, type ArchitectureModel, type ModelCapabilities, type BuildOptions, type ForwardOptions, type ModelInput, type SessionSpec } from '../../core/architecture.ts';
import { MTM_MODES } from '../../core/masking/types.ts';
import { createRng, type Rng } from '../../core/rng.ts';
import { dropout, Encoder, LayerNorm, softsign, type ForwardContext } from '../../core/tensor/layers.ts';
import { Linear } from '../../core/tensor/linear.ts';
import { SessionModel, sessionKey } from '../../core/model/session-model.ts';
import { encoderConfigFields, tokenConfigFields } from '../../core/model/transformer-config.ts';
import * as tf from '../../core/tensor/tf.ts';

export const ndt2ConfigSchema = z.object({
  patchSize: z.number().int().min(1).default(64).describe('neurons per space patch P; a token is 1 bin x P neurons (reference: 128; original NDT2: 32). Attention time and memory grow with (bins x patches)^2: 64 gives the embedded sessions (80-200 neurons) 2-4 patches; use 128 for sessions of several hundred neurons on CPU'),
  ...encoderConfigFields,
  embedHiddenFactor: z.number().int().min(1).default(2).describe('the patch MLP maps P counts to this many times P hidden units, softsign, then to D'),
  maxBins: z.number().int().min(1).default(100).describe('number of learned time-patch embeddings; raised to the longest session\'s bin count'),
  maxNeurons: z.number().int().min(1).default(1024).describe('the learned space-patch embeddings cover ceil(maxNeurons / patchSize) patches; raised to the largest session\'s neuron count'),
  ...tokenConfigFields,
  neuronBias: z.boolean().default(true).describe("a per-session log-rate bias for each neuron, added after the shared readout and started at the log of the neuron's mean training count; off: only the shared readout's bias, started at the pooled mean"),
  sessionInput: z.boolean().default(false).describe('per-session Linear(N_s -> patches x P) applied to the counts before patching, so patches mix a session\'s neurons; off: patches are the neurons in order, zero-padded'),
});

export type Ndt2Config = z.output<typeof ndt2ConfigSchema>;

export { sessionKey };

/** Space patches a session of n neurons is cut into. */
export function patchCount(nNeurons: number, patchSize: number): number {
  return Math.ceil(nNeurons / patchSize);
}

const BLOCKED = -1e9;

/** The wasm backend's heap cannot grow past 4 GiB (docs/performance.md §2.5). */
const WASM_HEAP_BYTES = 4 * 2 ** 30;

/**
 * Approximate peak tensor bytes of one forward pass (training: with its backward pass) through
 * the encoder, fitted to tf.profile peaks on wasm within ~5 %: per layer ~6 attention-sized
 * tensors [B, H, S, S] and ~40 token-sized ones [B, S, D + mlpDim]; a forward pass alone, inside
 * one tf.tidy, holds about a third of that. Attention grows with S^2 = (bins x patches)^2.
 */
export function estimatePeakBytes(o: { batch: number; tokens: number; heads: number; dModel: number; mlpDim: number; layers: number; training: boolean }): number {
  const { batch: b, tokens: s } = o;
  const perLayer = 6 * b * o.heads * s * s + 40 * b * s * (o.dModel + o.mlpDim);
  return (4 * o.layers * perLayer) / (o.training ? 1 : 3);
}

/**
 * Additive attention bias [1 or B, 1, S, S] for `prefix` tokens (prompt, session) followed by
 * `bins` x `patches` patch tokens in time-major order, or null when nothing is masked.
 * - causal: a patch token of bin t sees the prefix and every patch of bins <= t (its own bin's
 *   other patches included); prefix tokens see only the prefix, so they cannot carry a later bin
 *   to an earlier one (docs/method.md §3.3, the reference's leak).
 * - binValid [B * bins] (1 = real bin, 0 = padding): no token attends to a padded bin's patches.
 * With patches = 1 this is core's attentionBias.
 */
export function patchAttentionBias(opts: { batch: number; prefix: number; bins: number; patches: number; causal: boolean; binValid?: Uint8Array }): tf.Tensor4D | null {
  const { batch, prefix, bins, patches, causal, binValid } = opts;
  if (!causal && !binValid) return null;
  if (binValid && binValid.length !== batch * bins) throw new Error(`ndt2 attention: binValid has ${binValid.length} entries, expected ${batch} x ${bins}`);
  const s = prefix + bins * patches;
  const nb = binValid ? batch : 1;
  const bias = new Float32Array(nb * s * s);
  const keyRow = new Float32Array(s);
  for (let b = 0; b < nb; b++) {
    keyRow.fill(0);
    if (binValid) {
      for (let t = 0; t < bins; t++) if (binValid[b * bins + t] === 0) keyRow.fill(BLOCKED, prefix + t * patches, prefix + (t + 1) * patches);
    }
    for (let i = 0; i < s; i++) {
      const row = bias.subarray((b * s + i) * s, (b * s + i + 1) * s);
      row.set(keyRow);
      if (causal) {
        // Keys past the end of the query's own bin are the future.
        const end = i < prefix ? prefix : prefix + (Math.floor((i - prefix) / patches) + 1) * patches;
        row.fill(BLOCKED, end);
      }
    }
  }
  return tf.tensor4d(bias, [nb, 1, s, s]);
}

/**
 * Mean of every neuron's mean training count over the sessions that carry them (each neuron
 * weighs the same); undefined when none does. Refuses a count that is not positive and finite.
 */
export function pooledMeanCount(sessions: readonly SessionSpec[]): number | undefined {
  let sum = 0;
  let n = 0;
  for (const s of sessions) {
    if (!s.meanCounts) continue;
    if (s.meanCounts.length !== s.nNeurons) throw new Error(`session ${s.sessionId}: meanCounts has ${s.meanCounts.length} values for ${s.nNeurons} neurons`);
    s.meanCounts.forEach((x, i) => {
      if (!(Number.isFinite(x) && x > 0)) throw new Error(`session ${s.sessionId}: meanCounts[${i}] is ${x}; every mean count must be positive and finite (trainingMeanCounts floors silent neurons)`);
      sum += x;
      n++;
    });
  }
  return n ? sum / n : undefined;
}

interface SessionWeights {
  spec: SessionSpec;
  patches: number;
  input?: Linear;
  token?: tf.Variable;
  neuronBias?: tf.Variable;
}

export class Ndt2Model extends SessionModel<SessionWeights> implements ArchitectureModel {
  readonly config: Ndt2Config;
  readonly capabilities: ModelCapabilities;
  /** Space-patch embeddings this model has (ceil(maxNeurons / patchSize)). */
  readonly spacePatches: number;
  private readonly timeEmbed: tf.Variable;
  private readonly spaceEmbed: tf.Variable;
  private readonly patchIn: Linear;
  private readonly patchOut: Linear;
  private readonly prompts?: tf.Variable;
  private readonly encoder: Encoder;
  private readonly finalNorm: LayerNorm;
  private readonly readout: Linear;
  private readonly dropoutRng: Rng;

  constructor(config: Ndt2Config, opts: BuildOptions) {
    super('ndt2', createRng(opts.seed).fork('weights'));
    const maxBins = Math.max(config.maxBins, ...opts.sessions.map((s) => s.nBins));
    const maxNeurons = Math.max(config.maxNeurons, ...opts.sessions.map((s) => s.nNeurons));
    this.config = { ...config, maxBins, maxNeurons };
    const c = this.config;
    this.capabilities = { promptTokens: c.promptTokens, sessionTokens: c.sessionTokens, maxBins };
    if (c.dModel % c.heads !== 0) throw new Error(`ndt2 config: dModel ${c.dModel} is not divisible by heads ${c.heads}`);
    this.spacePatches = patchCount(maxNeurons, c.patchSize);
    const pooled = config.neuronBias ? undefined : pooledMeanCount(opts.sessions); // checked before any weight exists
    this.dropoutRng = createRng(opts.seed).fork('dropout');
    const p = c.patchSize;
    const hidden = c.embedHiddenFactor * p;
    this.patchIn = new Linear(this.store, 'patchEmbed.in1', p, hidden);
    this.patchOut = new Linear(this.store, 'patchEmbed.in2', hidden, c.dModel);
    // Small normal init for learned tokens and positions, as in GPT-style models.
    this.timeEmbed = this.store.add('timeEmbed', [maxBins, c.dModel], { kind: 'normal', std: 0.02 });
    this.spaceEmbed = this.store.add('spaceEmbed', [this.spacePatches, c.dModel], { kind: 'normal', std: 0.02 });
    if (c.promptTokens) this.prompts = this.store.add('prompts', [MTM_MODES.length, c.dModel], { kind: 'normal', std: 0.02 });
    this.encoder = new Encoder(this.store, 'encoder', c.layers, { dim: c.dModel, heads: c.heads, mlpDim: c.mlpDim, dropout: c.dropout, attentionDropout: c.attentionDropout });
    this.finalNorm = new LayerNorm(this.store, 'finalNorm', c.dModel);
    this.readout = new Linear(this.store, 'readout', c.dModel, p);
    for (const s of opts.sessions) this.addSession(s);
    if (pooled !== undefined) {
      const b = tf.fill([p], Math.log(pooled), 'float32');
      this.readout.bias!.assign(b);
      b.dispose();
    }
  }

  /** Space patches of a session (ceil(N_s / patchSize)). */
  patchesOf(sessionId: string): number {
    return this.session(sessionId).patches;
  }

  addSession(spec: SessionSpec): void {
    this.checkNewSession(spec);
    const c = this.config;
    if (spec.nBins > c.maxBins) {
      throw new Error(`ndt2: session ${spec.sessionId} has ${spec.nBins} bins, more than the time embedding's maxBins ${c.maxBins}`);
    }
    const patches = patchCount(spec.nNeurons, c.patchSize);
    if (patches > this.spacePatches) {
      throw new Error(`ndt2: session ${spec.sessionId} has ${spec.nNeurons} neurons (${patches} patches of ${c.patchSize}), more than the space embedding's ${this.spacePatches} patches (maxNeurons ${c.maxNeurons})`);
    }
    const logMeans = c.neuronBias && spec.meanCounts ? logMeanCounts(spec) : undefined; // checked before any weight exists
    const key = sessionKey(spec.sessionId);
    const kept: SessionSpec = { ...spec };
    delete kept.meanCounts; // the means only seed a bias; the model keeps the layout
    const weights: SessionWeights = {
      spec: kept,
      patches,
      input: c.sessionInput ? new Linear(this.store, `${key}.input`, spec.nNeurons, patches * c.patchSize) : undefined,
      token: c.sessionTokens ? this.store.add(`${key}.token`, [1, c.dModel], { kind: 'normal', std: 0.02 }) : undefined,
      neuronBias: c.neuronBias ? this.store.add(`${key}.neuronBias`, [spec.nNeurons], { kind: 'zeros' }) : undefined,
    };
    if (logMeans) {
      const init = tf.tensor1d(logMeans);
      weights.neuronBias!.assign(init);
      init.dispose();
    }
    this.setSession(spec.sessionId, weights);
  }

  forward(x: ModelInput, opts: ForwardOptions): tf.Tensor3D {
    const st = this.session(x.sessionId);
    const [b, t, n] = x.input.shape;
    if (n !== st.spec.nNeurons) throw new Error(`ndt2: batch of session ${x.sessionId} has ${n} neurons, its weights ${st.spec.nNeurons}`);
    if (t > this.config.maxBins) throw new Error(`ndt2: batch has ${t} bins, the time embedding ${this.config.maxBins}`);
    const d = this.config.dModel;
    const p = this.config.patchSize;
    const np = st.patches;
    const width = np * p;
    const promptIndex = this.prompts ? MTM_MODES.indexOf(x.mode) : -1;
    const k = (st.token ? 1 : 0) + (promptIndex >= 0 ? 1 : 0);
    this.checkMemory(b, k + t * np, t, np, opts.training);
    // A per-step seed from the trainer makes a resumed run drop what an uninterrupted one would.
    const rng = opts.training && opts.seed !== undefined ? createRng(opts.seed) : this.dropoutRng;
    const ctx: ForwardContext = { training: opts.training, rng };
    return tf.tidy(() => {
      let counts: tf.Tensor = x.input;
      if (st.input) counts = st.input.apply(counts);
      else if (width > n) counts = tf.pad(counts, [[0, 0], [0, 0], [0, width - n]]);
      const embedded = this.patchOut.apply(softsign(this.patchIn.apply(tf.reshape(counts, [b * t * np, p]))));
      const time = tf.reshape(tf.slice(this.timeEmbed, [0, 0], [t, d]), [t, 1, d]);
      const space = tf.reshape(tf.slice(this.spaceEmbed, [0, 0], [np, d]), [1, np, d]);
      const position = tf.reshape(tf.add(time, space), [1, t * np, d]);
      let tokens = tf.add(tf.reshape(embedded, [b, t * np, d]), position) as tf.Tensor3D;
      // Prompt and session tokens are prepended after the position embedding: they carry none.
      const prefix: tf.Tensor[] = [];
      if (st.token) prefix.push(st.token);
      if (this.prompts && promptIndex >= 0) prefix.push(tf.slice(this.prompts, [promptIndex, 0], [1, d]));
      if (k > 0) {
        const pre = tf.broadcastTo(tf.reshape(k === 1 ? prefix[0] : tf.concat(prefix, 0), [1, k, d]), [b, k, d]);
        tokens = tf.concat([pre, tokens], 1) as tf.Tensor3D;
      }
      tokens = dropout(tokens, this.config.embedDropout, ctx) as tf.Tensor3D;
      const bias = patchAttentionBias({ batch: b, prefix: k, bins: t, patches: np, causal: x.causal, binValid: x.binValid });
      let h = this.finalNorm.apply(this.encoder.apply(tokens, bias, ctx)) as tf.Tensor3D;
      if (k > 0) h = tf.slice(h, [0, k, 0], [b, t * np, d]);
      const rates = tf.reshape(this.readout.apply(h), [b, t, width]);
      const cropped = width > n ? tf.slice(rates, [0, 0, 0], [b, t, n]) : rates;
      return (st.neuronBias ? tf.add(cropped, st.neuronBias) : cropped) as tf.Tensor3D;
    });
  }

  /**
   * Refuses, with the way out, a batch whose attention cannot fit the wasm heap: overflowing it
   * aborts the process with only "Aborted()" (patch tokens make S = bins x patches large).
   */
  private checkMemory(b: number, tokens: number, t: number, np: number, training: boolean): void {
    if (tf.getBackend() !== 'wasm') return;
    const c = this.config;
    const bytes = estimatePeakBytes({ batch: b, tokens, heads: c.heads, dModel: c.dModel, mlpDim: c.mlpDim, layers: c.layers, training });
    if (bytes <= WASM_HEAP_BYTES) return;
    const gib = (bytes / 2 ** 30).toFixed(1);
    throw new Error(
      `ndt2: a batch of ${b} trials x ${t * np} tokens (${t} bins x ${np} patches of ${c.patchSize} neurons) needs about ${gib} GiB ` +
        `${training ? 'to train' : 'to run'}, more than the wasm backend's 4 GiB heap: raise patchSize, or lower the batch size, layers or heads`,
    );
  }
}
