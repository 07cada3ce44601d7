// Fewer, fatter kernels for the transformer (native/src/encoder_layer.h): a whole pre-LayerNorm
// encoder layer as one kernel forward and one backward (LayerNorm, q/k/v projection, attention
// with its additive mask, output projection, dropout, residuals, GELU MLP), a linear layer with
// its bias as one kernel each way, and seeded dropout that drops exactly the units tf.dropout
// drops for the same seed (its generator, seedrandom's Alea, run natively). At the quickstart's
// size a training step was ~1,500 tfjs kernels, most of its time dispatch and tape bookkeeping;
// an encoder layer is now 2.
//
// Every function here is used only when its kernel is registered on the running backend
// (core/tensor/kernels/index.ts); callers (core/tensor/layers.ts, linear.ts) keep the plain tf-op
// path otherwise, and tests compare the two.
import * as tf from '../tf.ts';
import { type Mem, type Access, type KernelArgs, size } from './access.ts';
import type { NativeKernels } from './native.ts';

export const ENCODER_LAYER_KERNEL = 'MtmEncoderLayer';
export const ENCODER_LAYER_GRAD_KERNEL = 'MtmEncoderLayerGrad';
export const ALEA_DROPOUT_KERNEL = 'MtmAleaDropout';
export const LINEAR_KERNEL = 'MtmLinear';
export const LINEAR_GRAD_KERNEL = 'MtmLinearGrad';

const has = (kernel: string) => tf.getKernel(kernel, tf.getBackend()) !== undefined;
const run = (kernel: string, inputs: tf.NamedTensorMap, attrs: object = {}) =>
  tf.engine().runKernel(kernel, inputs, attrs as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];

// ---- tf.dropout's generator: seedrandom's Alea seeded by Mash of String(seed) ----

export interface AleaState {
  c: number;
  s0: number;
  s1: number;
  s2: number;
}

function mash(): (data: string) => number {
  let n = 0xefc8249d;
  return (data: string) => {
    for (let i = 0; i < data.length; i++) {
      n += data.charCodeAt(i);
      let h = 0.02519603282416938 * n;
      n = h >>> 0;
      h -= n;
      h *= n;
      n = h >>> 0;
      h -= n;
      n += h * 0x100000000;
    }
    return (n >>> 0) * 2.3283064365386963e-10;
  };
}

/** The state seedrandom.alea(String(seed)) starts from: what tf.randomUniform(..., seed) draws from. */
export function aleaState(seed: number | string): AleaState {
  const m = mash();
  const s = String(seed);
  let s0 = m(' ');
  let s1 = m(' ');
  let s2 = m(' ');
  s0 -= m(s);
  if (s0 < 0) s0 += 1;
  s1 -= m(s);
  if (s1 < 0) s1 += 1;
  s2 -= m(s);
  if (s2 < 0) s2 += 1;
  return { c: 1, s0, s1, s2 };
}

/** The next `n` uniforms of the generator, as JavaScript computes them (tests compare the addon with it). */
export function aleaUniforms(state: AleaState, n: number): Float64Array {
  let { c, s0, s1, s2 } = state;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = 2091639 * s0 + c * 2.3283064365386963e-10;
    s0 = s1;
    s1 = s2;
    c = t | 0;
    s2 = t - c;
    out[i] = s2;
  }
  return out;
}

/** True when the fused layer, linear and dropout kernels run natively on the current backend. */
export function fusedLayerKernelsActive(): boolean {
  return has(ENCODER_LAYER_KERNEL) && has(LINEAR_KERNEL) && has(ALEA_DROPOUT_KERNEL);
}

/** Which fused paths are allowed (both on by default; tests and benchmarks switch them off to compare). */
const enabled = { layer: true, linear: true, dropout: true, optimizer: true, loss: true, embed: true };

/** Turns the fused paths on or off (all when `which` is omitted); returns the previous settings. */
export function setFusedKernels(on: boolean, which?: Array<keyof typeof enabled>): typeof enabled {
  const before = { ...enabled };
  for (const k of which ?? (Object.keys(enabled) as Array<keyof typeof enabled>)) enabled[k] = on;
  return before;
}

/** Restores settings returned by setFusedKernels. */
export function restoreFusedKernels(s: typeof enabled): void {
  Object.assign(enabled, s);
}

function envOff(): boolean {
  const v = process.env.MTM_FUSED_KERNELS;
  return v === 'off' || v === '0' || v === 'false';
}

/** Whether fused path `which` is switched on (setFusedKernels, MTM_FUSED_KERNELS); its kernels may still be missing. */
export function fusedPathOn(which: keyof typeof enabled): boolean {
  return enabled[which] && !envOff();
}

export function fusedLayerAvailable(): boolean {
  return enabled.layer && !envOff() && has(ENCODER_LAYER_KERNEL);
}
export function fusedLinearAvailable(): boolean {
  return enabled.linear && !envOff() && has(LINEAR_KERNEL);
}
export function fusedDropoutAvailable(): boolean {
  return enabled.dropout && !envOff() && has(ALEA_DROPOUT_KERNEL);
}

// ---- seeded dropout, the same units as tf.dropout ----

/**
 * tf.dropout(x, rate, undefined, seed) as one kernel (mask drawn natively from tf.dropout's own
 * generator, so the same seed drops the same units and scales them the same: bit-identical
 * output). The gradient is dy times the same mask. Falls back to tf.dropout.
 */
export function seededDropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  if (x.dtype !== 'float32' || !fusedDropoutAvailable() || !(rate > 0 && rate < 1)) return tf.dropout(x, rate, undefined, seed);
  const st = aleaState(seed);
  const keep = Math.fround(1 - rate);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const [y, mask] = run(ALEA_DROPOUT_KERNEL, { x: xi }, { ...st, keep }) as tf.Tensor[];
    save([mask]);
    return { value: y, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, saved[0]) };
  });
  return f(x) as tf.Tensor;
}

// ---- linear: y = x w + b, one kernel each way ----

/** x [rows, in] . w [in, out] (+ b [out]) with dx, dw, db from one backward kernel. */
export function fusedLinear2d(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  const hasBias = b !== undefined;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [xi, wi, bi] = args as tf.Tensor[];
    save([xi, wi]);
    const inputs: tf.NamedTensorMap = hasBias ? { x: xi, w: wi, b: bi } : { x: xi, w: wi };
    return {
      value: run(LINEAR_KERNEL, inputs, { hasBias }) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [dx, dw, db] = run(LINEAR_GRAD_KERNEL, { dy, x: saved[0], w: saved[1] }, { hasBias }) as tf.Tensor[];
        if (hasBias) return [dx, dw, db];
        db.dispose();
        return [dx, dw];
      },
    };
  });
  return (hasBias ? f(x, w, b) : f(x, w)) as tf.Tensor2D;
}

// ---- the encoder layer ----

/** An encoder layer's weights, in the kernels' input order. */
export interface EncoderLayerWeights {
  ln1Gamma: tf.Tensor;
  ln1Beta: tf.Tensor;
  qkvW: tf.Tensor;
  qkvB: tf.Tensor;
  outW: tf.Tensor;
  outB: tf.Tensor;
  ln2Gamma: tf.Tensor;
  ln2Beta: tf.Tensor;
  fc1W: tf.Tensor;
  fc1B: tf.Tensor;
  fc2W: tf.Tensor;
  fc2B: tf.Tensor;
}

export interface EncoderLayerOptions {
  heads: number;
  eps: number;
  /** Dropout rate after attention and in the MLP; 0 (or no seeds) for none. */
  rate: number;
  /** tf.dropout seeds of the three draws (attention output, MLP hidden, MLP output), in that order; null when not training. */
  seeds: [number, number, number] | null;
}

interface LayerAttrs {
  dims: number[];
}

const WEIGHT_ORDER: Array<keyof EncoderLayerWeights> = ['ln1Gamma', 'ln1Beta', 'qkvW', 'qkvB', 'outW', 'outB', 'ln2Gamma', 'ln2Beta', 'fc1W', 'fc1B', 'fc2W', 'fc2B'];

/**
 * One pre-LayerNorm encoder layer, x [B, S, D] -> [B, S, D]: x1 = x + drop(attn(LN1(x))),
 * y = x1 + drop(fc2(drop(gelu(fc1(LN2(x1)))))). `bias` is attentionBias's [1 or B, 1, S, S]
 * additive mask (or null). Forward one kernel, backward one kernel (gradients of x and all 12
 * weights). Needs fusedLayerAvailable().
 */
export function fusedEncoderLayer(x: tf.Tensor3D, w: EncoderLayerWeights, bias: tf.Tensor4D | null, o: EncoderLayerOptions): tf.Tensor3D {
  const [B, S, D] = x.shape;
  const F = w.fc1W.shape[1] as number;
  const dropout = o.seeds !== null && o.rate > 0;
  const nb = bias ? bias.shape[0] : 0;
  const dims = [B, S, D, o.heads, F, nb, dropout ? 1 : 0, dropout ? Math.fround(1 - o.rate) : 1, o.eps];
  for (let i = 0; i < 3; i++) {
    const st = dropout ? aleaState(o.seeds![i]) : { c: 0, s0: 0, s1: 0, s2: 0 };
    dims.push(st.c, st.s0, st.s1, st.s2);
  }
  const attrs: LayerAttrs = { dims };
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const ts = args.slice(0, -1) as tf.Tensor[];
    const inputs: tf.NamedTensorMap = { x: ts[0] };
    WEIGHT_ORDER.forEach((name, i) => (inputs[name] = ts[i + 1]));
    if (bias) inputs.bias = bias;
    const [y, ...kept] = run(ENCODER_LAYER_KERNEL, inputs, attrs) as tf.Tensor[];
    // x, the weights the backward pass multiplies by, and the forward pass's intermediates.
    save([ts[0], inputs.ln1Gamma, inputs.qkvW, inputs.outW, inputs.ln2Gamma, inputs.fc1W, inputs.fc2W, ...kept]);
    return {
      value: y as tf.Tensor3D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const names = ['x', 'ln1Gamma', 'qkvW', 'outW', 'ln2Gamma', 'fc1W', 'fc2W', ...keptNames(dropout)];
        const gin: tf.NamedTensorMap = { dy };
        names.forEach((n, i) => (gin[n] = saved[i]));
        const grads = run(ENCODER_LAYER_GRAD_KERNEL, gin, attrs) as tf.Tensor[];
        return grads.map((g, i) => (i === 0 ? g : tf.reshape(g, ts[i].shape)));
      },
    };
  });
  return f(x, ...WEIGHT_ORDER.map((k) => w[k])) as tf.Tensor3D;
}

/** Names of the forward kernel's outputs after y (the backward kernel's saved inputs). */
function keptNames(dropout: boolean): string[] {
  return ['h1', 'mean1', 'rstd1', 'qkv', 'probs', 'ctx', ...(dropout ? ['m1'] : []), 'x1', 'h2', 'mean2', 'rstd2', 'pre', 'ud', ...(dropout ? ['m2', 'm3'] : [])];
}

// ---- the kernels (registered by index.ts on backends with native access) ----

type Args = KernelArgs;

function toArgs(mems: Mem[]): { bufs: Array<Mem['buf']>; offs: Float64Array } {
  return { bufs: mems.map((m) => m.buf), offs: Float64Array.from(mems.map((m) => m.off)) };
}

export function encoderLayerKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  return ((args: Args) => {
    const dims = (args.attrs as unknown as LayerAttrs).dims;
    const [B, S, D, H, F, nb, drop] = dims;
    const R = B * S;
    const ins = args.inputs;
    const inList = [ins.x, ...WEIGHT_ORDER.map((k) => ins[k]), ...(nb > 0 ? [ins.bias] : [])];
    const rd = [R, D];
    const outShapes = [[B, S, D], rd, [R], [R], [R, 3 * D], [B, H, S, S], rd, ...(drop ? [rd] : []), rd, rd, [R], [R], [R, F], [R, F], ...(drop ? [[R, F], rd] : [])];
    return access(args.backend).runMulti(inList, outShapes, (im, om) => {
      const none = im[0];
      const bias = nb > 0 ? im[13] : none;
      let k = 0;
      const [y, h1, mean1, rstd1, qkv, probs, ctx] = om.slice(0, 7);
      k = 7;
      const m1 = drop ? om[k++] : none;
      const [x1, h2, mean2, rstd2, pre, ud] = om.slice(k, k + 6);
      k += 6;
      const m2 = drop ? om[k++] : none;
      const m3 = drop ? om[k++] : none;
      const all = [...im.slice(0, 13), bias, y, h1, mean1, rstd1, qkv, probs, ctx, m1, x1, h2, mean2, rstd2, pre, ud, m2, m3];
      const { bufs, offs } = toArgs(all);
      native.encoderLayer(0, bufs, offs, Float64Array.from(dims));
    })!;
  }) as unknown as tf.KernelFunc;
}

export function encoderLayerGradKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  return ((args: Args) => {
    const dims = (args.attrs as unknown as LayerAttrs).dims;
    const [B, S, D, , F, , drop] = dims;
    const ins = args.inputs;
    const names = ['dy', 'x', 'ln1Gamma', 'qkvW', 'outW', 'ln2Gamma', 'fc1W', 'fc2W', ...keptNames(drop !== 0)];
    const inList = names.map((n) => ins[n]);
    const outShapes = [[B, S, D], [D], [D], [D, 3 * D], [3 * D], [D, D], [D], [D], [D], [D, F], [F], [F, D], [D]];
    return access(args.backend).runMulti(inList, outShapes, (im, om) => {
      const get = (n: string) => im[names.indexOf(n)];
      const none = im[0];
      const order = [
        get('dy'), get('x'), get('ln1Gamma'), get('qkvW'), get('outW'), get('ln2Gamma'), get('fc1W'), get('fc2W'), get('h1'), get('mean1'), get('rstd1'),
        get('qkv'), get('probs'), get('ctx'), drop ? get('m1') : none, get('x1'), get('h2'), get('mean2'), get('rstd2'), get('pre'), get('ud'),
        drop ? get('m2') : none, drop ? get('m3') : none, ...om,
      ];
      const { bufs, offs } = toArgs(order);
      native.encoderLayer(1, bufs, offs, Float64Array.from(dims));
    })!;
  }) as unknown as tf.KernelFunc;
}

export function aleaDropoutKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  return ((args: Args) => {
    const { x } = args.inputs;
    const a = args.attrs as unknown as AleaState & { keep: number };
    return access(args.backend).runMulti([x], [x.shape, x.shape], ([xm], [ym, mm]) =>
      native.aleaDropout(xm.buf, xm.off, ym.buf, ym.off, mm.buf, mm.off, size(x.shape), a.c, a.s0, a.s1, a.s2, a.keep),
    )!;
  }) as unknown as tf.KernelFunc;
}

export function linearKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  return ((args: Args) => {
    const { x, w, b } = args.inputs;
    const hasBias = args.attrs.hasBias === true;
    const [rows, inDim] = x.shape;
    const out = w.shape[1];
    const inputs = hasBias ? [x, w, b] : [x, w];
    return access(args.backend).run(inputs, [rows, out], ([xm, wm, bm], ym) => {
      const bb = bm ?? xm;
      native.linear(xm.buf, xm.off, wm.buf, wm.off, bb.buf, bb.off, ym.buf, ym.off, rows, inDim, out, hasBias);
    })!;
  }) as unknown as tf.KernelFunc;
}

export function linearGradKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  return ((args: Args) => {
    const { dy, x, w } = args.inputs;
    const hasBias = args.attrs.hasBias === true;
    const [rows, inDim] = x.shape;
    const out = w.shape[1];
    return access(args.backend).runMulti([dy, x, w], [[rows, inDim], [inDim, out], [hasBias ? out : 0]], ([dm, xm, wm], [dxm, dwm, dbm]) =>
      native.linearGrad(dm.buf, dm.off, xm.buf, xm.off, wm.buf, wm.off, dxm.buf, dxm.off, dwm.buf, dwm.off, dbm.buf, dbm.off, rows, inDim, out, hasBias),
    )!;
  }) as unknown as tf.KernelFunc;
}
