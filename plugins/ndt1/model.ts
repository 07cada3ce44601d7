// NDT1 (docs/method.md §4.1): one token per time bin, per-session stitchers keyed by session id, learned
// position, prompt and session tokens, and a pre-LayerNorm transformer encoder.
//
// Readout init, decided here: when a session arrives with its neurons' mean training counts
// (SessionSpec.meanCounts), each neuron's readout bias starts at the log of its mean count per
// bin, so every neuron starts at its own mean rate and the weights only have to learn the
// modulation around it. Without that, every neuron starts near one count per bin (50 Hz at
// 20 ms); a 0.1 Hz unit sits 6 log units lower, which a bias moving by about the learning rate
// per step does not reach in a short run, so the readout weights carry the offset instead and
// blow up on inputs unlike the training ones (tens of counts per bin predicted for such units).
// The same holds for a session added to a pretrained model for fine-tuning. The weights keep
// their default init; without meanCounts the bias does too.
import { z } from 'zod';
import { logMeanCounts, type ArchitectureModel, type ModelCapabilities, type BuildOptions, type CausalStream, type CausalStreamOptions, type ForwardOptions, type LeaveOneOutInput, type ModelInput, type SessionSpec } from '../../core/architecture.ts';
import { tokenMath } from '../../core/stream/token-math.ts';
import { MTM_MODES } from '../../core/masking/types.ts';
import { createRng, type Rng } from '../../core/rng.ts';
import { fusedEmbedAvailable, fusedEmbed } from '../../core/tensor/kernels/embed.ts';
import { attentionBias, dropout, Encoder, LayerNorm, softsign, type ForwardContext } from '../../core/tensor/layers.ts';
import { Linear } from '../../core/tensor/linear.ts';
import { SessionModel, sessionKey } from '../../core/model/session-model.ts';
import { encoderConfigFields, tokenConfigFields } from '../../core/model/transformer-config.ts';
import * as tf from '../../core/tensor/tf.ts';
import { Ndt1CausalStream, type Ndt1StreamWeights } from './causal-stream.ts';

export const ndt1ConfigSchema = z.object({
  ...encoderConfigFields,
  embedHiddenFactor: z.number().int().min(1).default(2).describe('the stitcher\'s first Linear maps N neurons to this many times N (reference: 2)'),
  maxBins: z.number().int().min(1).default(100).describe('length of the learned position embedding; raised to the longest session\'s bin count'),
  ...tokenConfigFields,
});

export type Ndt1Config = z.output<typeof ndt1ConfigSchema>;

export { sessionKey };

interface Stitcher {
  spec: SessionSpec;
  in1: Linear;
  in2: Linear;
  readout: Linear;
  token?: tf.Variable;
}

export class Ndt1Model extends SessionModel<Stitcher> implements ArchitectureModel {
  readonly config: Ndt1Config;
  readonly capabilities: ModelCapabilities;
  private readonly position: tf.Variable;
  private readonly prompts?: tf.Variable;
  private readonly encoder: Encoder;
  private readonly finalNorm: LayerNorm;
  private readonly dropoutRng: Rng;

  constructor(config: Ndt1Config, opts: BuildOptions) {
    super('ndt1', createRng(opts.seed).fork('weights'), { has: 'a stitcher', none: 'stitcher' });
    const maxBins = Math.max(config.maxBins, ...opts.sessions.map((s) => s.nBins));
    this.config = { ...config, maxBins };
    const c = this.config;
    this.capabilities = { promptTokens: c.promptTokens, sessionTokens: c.sessionTokens, maxBins };
    if (c.dModel % c.heads !== 0) throw new Error(`ndt1 config: dModel ${c.dModel} is not divisible by heads ${c.heads}`);
    this.dropoutRng = createRng(opts.seed).fork('dropout');
    // Small normal init for learned tokens and positions, as in GPT-style models.
    this.position = this.store.add('position', [maxBins, c.dModel], { kind: 'normal', std: 0.02 });
    if (c.promptTokens) this.prompts = this.store.add('prompts', [MTM_MODES.length, c.dModel], { kind: 'normal', std: 0.02 });
    this.encoder = new Encoder(this.store, 'encoder', c.layers, { dim: c.dModel, heads: c.heads, mlpDim: c.mlpDim, dropout: c.dropout, attentionDropout: c.attentionDropout });
    this.finalNorm = new LayerNorm(this.store, 'finalNorm', c.dModel);
    for (const s of opts.sessions) this.addSession(s);
  }

  addSession(spec: SessionSpec): void {
    this.checkNewSession(spec);
    if (spec.nBins > this.config.maxBins) {
      throw new Error(`ndt1: session ${spec.sessionId} has ${spec.nBins} bins, more than the position embedding's maxBins ${this.config.maxBins}`);
    }
    const logMeans = spec.meanCounts && logMeanCounts(spec);
    const c = this.config;
    const key = sessionKey(spec.sessionId);
    const hidden = c.embedHiddenFactor * spec.nNeurons;
    const kept: SessionSpec = { ...spec };
    delete kept.meanCounts; // the means only seed the bias; the model keeps the layout
    const st: Stitcher = {
      spec: kept,
      in1: new Linear(this.store, `${key}.in1`, spec.nNeurons, hidden),
      in2: new Linear(this.store, `${key}.in2`, hidden, c.dModel),
      readout: new Linear(this.store, `${key}.readout`, c.dModel, spec.nNeurons),
      token: c.sessionTokens ? this.store.add(`${key}.token`, [1, c.dModel], { kind: 'normal', std: 0.02 }) : undefined,
    };
    if (logMeans) {
      const b = tf.tensor1d(logMeans, 'float32');
      st.readout.bias!.assign(b);
      b.dispose();
    }
    this.setSession(spec.sessionId, st);
  }

  private stitcher(sessionId: string): Stitcher {
    return this.session(sessionId);
  }

  forward(x: ModelInput, opts: ForwardOptions): tf.Tensor3D {
    return this.forwardFrom(x, opts, x.input.shape[0], (st) => st.in1.apply(x.input), true);
  }

  /**
   * The forward pass of `b` rows from the stitcher's first Linear on: `firstLayer` returns its
   * output [b, T, hidden] before softsign (the leave-one-out path supplies its own). `ownInput`:
   * firstLayer is the stitcher's in1 on x.input, so the fused embedding may replace the lot.
   */
  private forwardFrom(x: ModelInput, opts: ForwardOptions, b: number, firstLayer: (st: Stitcher) => tf.Tensor, ownInput = false): tf.Tensor3D {
    const st = this.stitcher(x.sessionId);
    const [, t, n] = x.input.shape;
    if (n !== st.spec.nNeurons) throw new Error(`ndt1: batch of session ${x.sessionId} has ${n} neurons, its stitcher ${st.spec.nNeurons}`);
    if (t > this.config.maxBins) throw new Error(`ndt1: batch has ${t} bins, the position embedding ${this.config.maxBins}`);
    const d = this.config.dModel;
    const rng = opts.training && opts.seed !== undefined ? createRng(opts.seed) : this.dropoutRng;
    const ctx: ForwardContext = { training: opts.training, rng };
    return tf.tidy(() => {
      // Prompt and session tokens are prepended after the position embedding: they carry none.
      const prefix: tf.Tensor[] = [];
      if (st.token) prefix.push(st.token);
      const promptIndex = MTM_MODES.indexOf(x.mode);
      if (this.prompts && promptIndex >= 0) prefix.push(tf.slice(this.prompts, [promptIndex, 0], [1, d]));
      const p = prefix.length;
      const rate = this.config.embedDropout;
      let tokens: tf.Tensor3D;
      if (ownInput && rate < 1 && x.input.dtype === 'float32' && fusedEmbedAvailable()) {
        // One native kernel each way for stitcher, positions, prefix and dropout (same draw as below).
        const seed = ctx.training && rate > 0 ? ctx.rng.int(2 ** 31) : null;
        const w = { w1: st.in1.weight, b1: st.in1.bias!, w2: st.in2.weight, b2: st.in2.bias!, position: this.position };
        tokens = fusedEmbed(x.input, w, p === 0 ? null : p === 1 ? prefix[0] : tf.concat(prefix, 0), { rate, seed });
      } else {
        const embedded = st.in2.apply(softsign(firstLayer(st)));
        tokens = tf.add(embedded, tf.slice(this.position, [0, 0], [t, d])) as tf.Tensor3D;
        if (p > 0) {
          const pre = tf.broadcastTo(tf.reshape(p === 1 ? prefix[0] : tf.concat(prefix, 0), [1, p, d]), [b, p, d]);
          tokens = tf.concat([pre, tokens], 1) as tf.Tensor3D;
        }
        tokens = dropout(tokens, rate, ctx) as tf.Tensor3D;
      }
      const bias = attentionBias({ batch: b, prefix: p, length: t, causal: x.causal, keyValid: x.binValid });
      let h = this.finalNorm.apply(this.encoder.apply(tokens, bias, ctx)) as tf.Tensor3D;
      if (p > 0) h = tf.slice(h, [0, p, 0], [b, t, d]);
      return st.readout.apply(h) as tf.Tensor3D;
    });
  }

  /**
   * Leave-one-out fast path (ArchitectureModel.forwardLeaveOneOut). Counts enter only through the
   * stitcher's first Linear, which is linear: zeroing neuron n subtracts x[:, :, n] * W1[n, :]
   * from its output. So that N -> hidden product runs once per base input, and each copy
   * subtracts its own rank-1 term from its base's; the rest runs per copy as in forward.
   */
  forwardLeaveOneOut(x: LeaveOneOutInput, opts: ForwardOptions): tf.Tensor3D {
    const [u, t, n] = x.input.shape;
    const b = x.leftOut.length;
    if (x.baseRow.length !== b) throw new Error(`ndt1: leave-one-out batch has ${x.baseRow.length} base rows for ${b} left-out neurons`);
    if (b === 0) throw new Error('ndt1: leave-one-out batch has no copies');
    // One-hot matrices select W1's rows, x's columns and each copy's base by plain products (no gather).
    const pick = new Float32Array(b * n); // [B, N]
    const pickT = new Float32Array(n * b); // [N, B]
    const ownBase = new Float32Array(u * b); // [U, 1, B]
    for (let i = 0; i < b; i++) {
      if (!(Number.isInteger(x.baseRow[i]) && x.baseRow[i] >= 0 && x.baseRow[i] < u)) throw new Error(`ndt1: leave-one-out row ${i} copies base row ${x.baseRow[i]}, not in [0, ${u})`);
      if (!(Number.isInteger(x.leftOut[i]) && x.leftOut[i] >= 0 && x.leftOut[i] < n)) throw new Error(`ndt1: leave-one-out row ${i} leaves out neuron ${x.leftOut[i]}, not in [0, ${n})`);
      pick[i * n + x.leftOut[i]] = 1;
      pickT[x.leftOut[i] * b + i] = 1;
      ownBase[x.baseRow[i] * b + i] = 1;
    }
    const runs = copyRuns(x.baseRow);
    return this.forwardFrom(x, opts, b, (st) => {
      const h = st.in1.outDim;
      const base = st.in1.apply(x.input); // [U, T, H]
      // Column leftOut[i] of every base ([U*T, B], small), then each copy's own base: [B, T, 1].
      const cols = tf.matMul(tf.reshape(x.input, [u * t, n]), tf.tensor2d(pickT, [n, b]));
      const own = u === 1 ? cols : tf.sum(tf.mul(tf.reshape(cols, [u, t, b]), tf.tensor3d(ownBase, [u, 1, b])), 0);
      const column = tf.reshape(tf.transpose(own), [b, t, 1]);
      const weightRow = tf.reshape(tf.matMul(tf.tensor2d(pick, [b, n]), st.in1.weight), [b, 1, h]);
      // The [B, T, H] passes dominate what is left of the first layer: with equal runs of copies
      // over bases 0..U-1 in order (what evaluation sends), one product and one broadcast subtraction.
      const k = b / u;
      if (runs.length === u && runs.every((r, j) => r.base === j && r.count === k)) {
        return tf.reshape(tf.sub(tf.reshape(base, [u, 1, t, h]), tf.reshape(tf.mul(column, weightRow), [u, k, t, h])), [b, t, h]);
      }
      const parts = runs.map((r) =>
        tf.sub(tf.slice(base, [r.base, 0, 0], [1, t, h]), tf.mul(tf.slice(column, [r.start, 0, 0], [r.count, t, 1]), tf.slice(weightRow, [r.start, 0, 0], [r.count, 1, h]))),
      );
      return parts.length === 1 ? parts[0] : tf.concat(parts, 0);
    });
  }

  /**
   * Per-bin causal streaming (ArchitectureModel.openCausalStream; plugins/ndt1/causal-stream.ts):
   * copies this session's weights out once. `kernels: 'js'` forces the plain JS arithmetic (tests).
   */
  openCausalStream(o: CausalStreamOptions & { kernels?: 'auto' | 'js' }): CausalStream {
    const st = this.stitcher(o.sessionId);
    const c = this.config;
    const read = (t: tf.Tensor) => t.dataSync() as Float32Array;
    const prefix: Float32Array[] = [];
    if (st.token) prefix.push(read(st.token));
    const promptIndex = MTM_MODES.indexOf(o.mode);
    if (this.prompts && promptIndex >= 0) prefix.push(read(this.prompts).slice(promptIndex * c.dModel, (promptIndex + 1) * c.dModel));
    const w: Ndt1StreamWeights = {
      nNeurons: st.spec.nNeurons,
      dModel: c.dModel,
      heads: c.heads,
      mlpDim: c.mlpDim,
      hidden: st.in1.outDim,
      in1W: read(st.in1.weight),
      in1B: read(st.in1.bias!),
      in2W: read(st.in2.weight),
      in2B: read(st.in2.bias!),
      position: read(this.position),
      positions: c.maxBins,
      prefix,
      layers: this.encoder.layers.map((l) => ({
        ln1Gamma: read(l.ln1.gamma), ln1Beta: read(l.ln1.beta), ln1Eps: l.ln1.eps,
        qkvW: read(l.attn.qkv.weight), qkvB: read(l.attn.qkv.bias!), outW: read(l.attn.out.weight), outB: read(l.attn.out.bias!),
        ln2Gamma: read(l.ln2.gamma), ln2Beta: read(l.ln2.beta), ln2Eps: l.ln2.eps,
        fc1W: read(l.fc1.weight), fc1B: read(l.fc1.bias!), fc2W: read(l.fc2.weight), fc2B: read(l.fc2.bias!),
      })),
      finalGamma: read(this.finalNorm.gamma),
      finalBeta: read(this.finalNorm.beta),
      finalEps: this.finalNorm.eps,
      readoutW: read(st.readout.weight),
      readoutB: read(st.readout.bias!),
    };
    return new Ndt1CausalStream(w, { caches: o.caches, maxBins: o.maxBins }, tokenMath(o.kernels ?? 'auto'));
  }
}

/** Runs of adjacent copies of one base: copies start..start+count-1 all copy `base`. */
function copyRuns(baseRow: Int32Array): { base: number; start: number; count: number }[] {
  const runs: { base: number; start: number; count: number }[] = [];
  for (let i = 0; i < baseRow.length; i++) {
    const last = runs[runs.length - 1];
    if (last && last.base === baseRow[i]) last.count++;
    else runs.push({ base: baseRow[i], start: i, count: 1 });
  }
  return runs;
}
