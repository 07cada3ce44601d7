// Transformer building blocks with weights we own (docs/method.md §4.1): LayerNorm, GELU MLP, multi-head
// self-attention with causal and key-padding masks, and the pre-LayerNorm encoder layer.
import type { Rng } from '../rng.ts';
import { gelu as fusedGelu, layerNorm as fusedLayerNorm } from './kernels/fused.ts';
import { fusedDropoutAvailable, fusedEncoderLayer, fusedLayerAvailable, seededDropout } from './kernels/layer.ts';
import { Linear } from './linear.ts';
import { ones, zeros, type ParamStore } from './params.ts';
import * as tf from './tf.ts';

/** What every layer's forward pass needs besides its input. */
export interface ForwardContext {
  /** Dropout is applied only when true. */
  training: boolean;
  /** Seeds for dropout draws, so a seeded run drops the same units on every backend and rerun. */
  rng: Rng;
}

/**
 * Seeded dropout; identity outside training or at rate 0. With the native kernels one kernel
 * (core/tensor/kernels/layer.ts seededDropout) drops exactly the units tf.dropout would.
 */
export function dropout(x: tf.Tensor, rate: number, ctx: ForwardContext): tf.Tensor {
  if (!ctx.training || rate <= 0) return x;
  const seed = ctx.rng.int(2 ** 31);
  return fusedDropoutAvailable() ? seededDropout(x, rate, seed) : tf.dropout(x, rate, undefined, seed);
}

/** Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), as PyTorch's default (one native kernel each way when available). */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (fusedLayerAvailable()) return fusedGelu(x);
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/** x / (1 + |x|). */
export function softsign(x: tf.Tensor): tf.Tensor {
  return tf.div(x, tf.add(tf.abs(x), 1));
}

/** LayerNorm over the last axis, with learned scale and shift. */
export class LayerNorm {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  constructor(store: ParamStore, readonly name: string, readonly dim: number, readonly eps = 1e-5) {
    this.gamma = store.add(`${name}.weight`, [dim], ones);
    this.beta = store.add(`${name}.bias`, [dim], zeros);
  }

  apply(x: tf.Tensor): tf.Tensor {
    if (fusedLayerAvailable()) return fusedLayerNorm(x, this.gamma, this.beta, this.eps);
    const mean = tf.mean(x, -1, true);
    const centred = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centred), -1, true);
    return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, this.eps))), this.gamma), this.beta);
  }
}

const BLOCKED = -1e9;

/**
 * Additive attention bias [1 or B, 1, S, S] for a sequence of `prefix` extra tokens (prompt,
 * session) followed by `length` time tokens, or null when nothing is masked.
 * - causal: time token t sees the prefix and time tokens <= t; prefix tokens see only the prefix.
 *   Prefix tokens must not see any time token, or they would carry the future to earlier bins
 *   (the reference model's leak, docs/method.md §3.3).
 * - keyValid [B * length] (1 = real bin, 0 = padding): no token attends to a padded bin.
 */
export function attentionBias(opts: { batch: number; prefix: number; length: number; causal: boolean; keyValid?: Uint8Array }): tf.Tensor4D | null {
  const { batch, prefix, length, causal, keyValid } = opts;
  if (!causal && !keyValid) return null;
  if (keyValid && keyValid.length !== batch * length) throw new Error(`attentionBias: keyValid has ${keyValid.length} entries, expected ${batch} x ${length}`);
  const s = prefix + length;
  const nb = keyValid ? batch : 1;
  const bias = new Float32Array(nb * s * s);
  for (let b = 0; b < nb; b++) {
    const base = b * s * s;
    for (let i = 0; i < s; i++) {
      for (let j = 0; j < s; j++) {
        let allowed = true;
        if (causal) allowed = j < prefix || (i >= prefix && j <= i);
        if (allowed && keyValid && j >= prefix) allowed = keyValid[b * length + (j - prefix)] !== 0;
        if (!allowed) bias[base + i * s + j] = BLOCKED;
      }
    }
  }
  return tf.tensor4d(bias, [nb, 1, s, s]);
}

/** Multi-head self-attention: one fused q/k/v projection, heads split by 4-D reshapes only. */
export class MultiHeadAttention {
  readonly qkv: Linear;
  readonly out: Linear;
  readonly headDim: number;
  constructor(
    store: ParamStore,
    readonly name: string,
    readonly dim: number,
    readonly heads: number,
    readonly attentionDropout = 0,
  ) {
    if (dim % heads !== 0) throw new Error(`${name}: model dimension ${dim} is not divisible by ${heads} heads`);
    this.headDim = dim / heads;
    this.qkv = new Linear(store, `${name}.qkv`, dim, 3 * dim);
    this.out = new Linear(store, `${name}.out`, dim, dim);
  }

  /** x [B, S, D]; bias from attentionBias (or null). */
  apply(x: tf.Tensor3D, bias: tf.Tensor4D | null, ctx: ForwardContext): tf.Tensor3D {
    const [b, s, d] = x.shape;
    const h = this.heads;
    const dh = this.headDim;
    // Split first, then one 4-D transpose per tensor: a 5-D transpose of the fused [B,S,3,H,dh]
    // costs ~100x more on wasm (docs/performance.md §2.2).
    const [q, k, v] = tf.split(this.qkv.apply(tf.reshape(x, [b * s, d])), 3, 1);
    const toHeads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [b, s, h, dh]), [0, 2, 1, 3]) as tf.Tensor4D;
    let scores = tf.matMul(toHeads(tf.mul(q, 1 / Math.sqrt(dh))), toHeads(k), false, true);
    if (bias) scores = tf.add(scores, bias);
    const probs = dropout(tf.softmax(scores, -1), this.attentionDropout, ctx) as tf.Tensor4D;
    const ctxt = tf.transpose(tf.matMul(probs, toHeads(v)), [0, 2, 1, 3]);
    return tf.reshape(this.out.apply(tf.reshape(ctxt, [b * s, d])), [b, s, d]);
  }
}

export interface EncoderLayerConfig {
  dim: number;
  heads: number;
  mlpDim: number;
  dropout: number;
  attentionDropout: number;
}

/** Pre-LayerNorm transformer encoder layer: x + attn(LN(x)), then x + MLP(LN(x)) with GELU. */
export class EncoderLayer {
  readonly ln1: LayerNorm;
  readonly attn: MultiHeadAttention;
  readonly ln2: LayerNorm;
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(store: ParamStore, readonly name: string, readonly cfg: EncoderLayerConfig) {
    this.ln1 = new LayerNorm(store, `${name}.ln1`, cfg.dim);
    this.attn = new MultiHeadAttention(store, `${name}.attn`, cfg.dim, cfg.heads, cfg.attentionDropout);
    this.ln2 = new LayerNorm(store, `${name}.ln2`, cfg.dim);
    this.fc1 = new Linear(store, `${name}.mlp.fc1`, cfg.dim, cfg.mlpDim);
    this.fc2 = new Linear(store, `${name}.mlp.fc2`, cfg.mlpDim, cfg.dim);
  }

  apply(x: tf.Tensor3D, bias: tf.Tensor4D | null, ctx: ForwardContext): tf.Tensor3D {
    const p = this.cfg.dropout;
    // One native kernel each way for the whole layer (attention dropout excepted): the same
    // dropout draws, in the same order, as the op-by-op path below.
    if (fusedLayerAvailable() && x.dtype === 'float32' && !(ctx.training && this.cfg.attentionDropout > 0) && this.ln1.eps === this.ln2.eps) {
      const drop = ctx.training && p > 0;
      const seeds: [number, number, number] | null = drop ? [ctx.rng.int(2 ** 31), ctx.rng.int(2 ** 31), ctx.rng.int(2 ** 31)] : null;
      const w = {
        ln1Gamma: this.ln1.gamma, ln1Beta: this.ln1.beta, qkvW: this.attn.qkv.weight, qkvB: this.attn.qkv.bias!, outW: this.attn.out.weight, outB: this.attn.out.bias!,
        ln2Gamma: this.ln2.gamma, ln2Beta: this.ln2.beta, fc1W: this.fc1.weight, fc1B: this.fc1.bias!, fc2W: this.fc2.weight, fc2B: this.fc2.bias!,
      };
      return fusedEncoderLayer(x, w, bias, { heads: this.cfg.heads, eps: this.ln1.eps, rate: p, seeds });
    }
    const a = this.attn.apply(this.ln1.apply(x) as tf.Tensor3D, bias, ctx);
    const x1 = tf.add(x, dropout(a, p, ctx));
    const m = this.fc2.apply(dropout(gelu(this.fc1.apply(this.ln2.apply(x1))), p, ctx));
    return tf.add(x1, dropout(m, p, ctx)) as tf.Tensor3D;
  }
}

/** A stack of pre-LN encoder layers (the caller applies the final LayerNorm). */
export class Encoder {
  readonly layers: EncoderLayer[];
  constructor(store: ParamStore, name: string, nLayers: number, cfg: EncoderLayerConfig) {
    this.layers = Array.from({ length: nLayers }, (_, i) => new EncoderLayer(store, `${name}.${i}`, cfg));
  }

  apply(x: tf.Tensor3D, bias: tf.Tensor4D | null, ctx: ForwardContext): tf.Tensor3D {
    let h = x;
    for (const layer of this.layers) h = layer.apply(h, bias, ctx);
    return h;
  }
}
