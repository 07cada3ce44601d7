// Fused operations for model and optimiser code: exact GELU, LayerNorm and the AdamW update as
// one native kernel each (forward and backward), where tfjs runs 5-25 small kernels with a JS
// round trip and a pass over memory each. Every function falls back to the same arithmetic in
// plain tf ops when the native kernels are not registered for the running backend, so callers
// need no branch of their own.
import * as tf from '../tf.ts';
import { type Access, type KernelArgs, size } from './access.ts';
import { BINARY_OPS, UNARY_OPS, type NativeKernels } from './native.ts';

export const GELU_KERNEL = 'MtmGelu';
export const GELU_GRAD_KERNEL = 'MtmGeluGrad';
export const LAYER_NORM_KERNEL = 'MtmLayerNorm';
export const LAYER_NORM_GRAD_KERNEL = 'MtmLayerNormGrad';
export const ADAMW_KERNEL = 'MtmAdamW';

const has = (kernel: string) => tf.getKernel(kernel, tf.getBackend()) !== undefined;
const run = (kernel: string, inputs: tf.NamedTensorMap, attrs: object = {}) =>
  tf.engine().runKernel(kernel, inputs, attrs as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];

/** True when the fused kernels run natively on the current backend (else the tf-op fallbacks do). */
export function fusedKernelsActive(): boolean {
  return has(GELU_KERNEL) && has(LAYER_NORM_KERNEL) && has(ADAMW_KERNEL);
}

const geluOps = (x: tf.Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));

const geluNative = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  return {
    value: run(GELU_KERNEL, { x }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => run(GELU_GRAD_KERNEL, { x: saved[0], dy }) as tf.Tensor,
  };
});

/** Exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (PyTorch's default), one kernel each way. */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (x.dtype !== 'float32' || !has(GELU_KERNEL)) return geluOps(x);
  return geluNative(x) as tf.Tensor;
}

function layerNormOps(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), -1, true);
  return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

/**
 * LayerNorm over the last axis with scale `gamma` and shift `beta` ([D] each), variance without
 * Bessel's correction, as torch.nn.LayerNorm: forward one kernel, backward one kernel.
 */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-5): tf.Tensor {
  const d = x.shape[x.rank - 1];
  if (x.dtype !== 'float32' || !has(LAYER_NORM_KERNEL) || gamma.size !== d || beta.size !== d) return layerNormOps(x, gamma, beta, eps);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const [y, mean, rstd] = run(LAYER_NORM_KERNEL, { x: xi, gamma: g, beta: b }, { eps }) as tf.Tensor[];
    save([xi, g, mean, rstd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, gs, ms, rs] = saved;
        const [dx, dg, db] = run(LAYER_NORM_GRAD_KERNEL, { x: xs, dy, gamma: gs, mean: ms, rstd: rs }) as tf.Tensor[];
        return [dx, tf.reshape(dg, g.shape), tf.reshape(db, b.shape)];
      },
    };
  });
  return f(x, gamma, beta) as tf.Tensor;
}

export interface AdamWStep {
  /** Gradient multiplier (global-norm clipping), applied first. */
  gradScale: number;
  beta1: number;
  beta2: number;
  /** sqrt(1 - beta2^t). */
  sqrtBc2: number;
  epsilon: number;
  /** 1 - lr * weightDecay. */
  decay: number;
  /** lr / (1 - beta1^t). */
  stepSize: number;
}

/**
 * One AdamW update as core/train/adamw.ts writes it: returns [p1, m1, v1] with
 * g' = g gradScale, m1 = b1 m + (1 - b1) g', v1 = b2 v + (1 - b2) g'^2,
 * p1 = p decay - m1 / (sqrt(v1) / sqrtBc2 + epsilon) stepSize. One kernel instead of ~12.
 */
export function adamwUpdate(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: AdamWStep): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const same = g.size === p.size && m.size === p.size && v.size === p.size;
  if (same && p.dtype === 'float32' && g.dtype === 'float32' && has(ADAMW_KERNEL)) {
    const [p1, m1, v1] = run(ADAMW_KERNEL, { p, g, m, v }, s) as tf.Tensor[];
    return [tf.reshape(p1, p.shape), tf.reshape(m1, p.shape), tf.reshape(v1, p.shape)];
  }
  return tf.tidy(() => {
    const gs = s.gradScale === 1 ? g : tf.mul(g, s.gradScale);
    const m1 = tf.add(tf.mul(m, s.beta1), tf.mul(gs, 1 - s.beta1));
    const v1 = tf.add(tf.mul(v, s.beta2), tf.mul(tf.square(gs), 1 - s.beta2));
    const denom = tf.add(tf.div(tf.sqrt(v1), s.sqrtBc2), s.epsilon);
    const p1 = tf.sub(tf.mul(p, s.decay), tf.mul(tf.div(m1, denom), s.stepSize));
    return [p1, m1, v1] as [tf.Tensor, tf.Tensor, tf.Tensor];
  });
}

// ---- the kernels behind them (registered by index.ts on backends with native access) ----

type Args = KernelArgs<Record<string, number>>;

export function geluKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  const op = UNARY_OPS.indexOf('Gelu');
  return ((args: Args) => {
    const { x } = args.inputs;
    return access(args.backend).run([x], x.shape, ([xm], ym) => native.unary(op, xm.buf, xm.off, ym.buf, ym.off, size(x.shape), 0))!;
  }) as unknown as tf.KernelFunc;
}

export function geluGradKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  const op = BINARY_OPS.indexOf('GeluGrad');
  return ((args: Args) => {
    const { x, dy } = args.inputs;
    const dims = Int32Array.from([1, size(x.shape), 1, 1]);
    return access(args.backend).run([x, dy], x.shape, ([xm, dm], ym) => native.binary(op, xm.buf, xm.off, dm.buf, dm.off, ym.buf, ym.off, dims))!;
  }) as unknown as tf.KernelFunc;
}

export function layerNormKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  return ((args: Args) => {
    const { x, gamma, beta } = args.inputs;
    const d = x.shape[x.shape.length - 1];
    const rows = size(x.shape) / d;
    const stats = x.shape.slice(0, -1);
    return access(args.backend).runMulti([x, gamma, beta], [x.shape, stats, stats], ([xm, gm, bm], [ym, mm, rm]) =>
      native.layerNorm(xm.buf, xm.off, gm.buf, gm.off, bm.buf, bm.off, ym.buf, ym.off, mm.buf, mm.off, rm.buf, rm.off, rows, d, args.attrs.eps),
    )!;
  }) as unknown as tf.KernelFunc;
}

export function layerNormGradKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  return ((args: Args) => {
    const { x, dy, gamma, mean, rstd } = args.inputs;
    const d = x.shape[x.shape.length - 1];
    const rows = size(x.shape) / d;
    return access(args.backend).runMulti([x, dy, gamma, mean, rstd], [x.shape, [d], [d]], ([xm, dm, gm, mm, rm], [dxm, dgm, dbm]) =>
      native.layerNormGrad(xm.buf, xm.off, dm.buf, dm.off, gm.buf, gm.off, mm.buf, mm.off, rm.buf, rm.off, dxm.buf, dxm.off, dgm.buf, dgm.off, dbm.buf, dbm.off, rows, d),
    )!;
  }) as unknown as tf.KernelFunc;
}

export function adamwKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  return ((args: Args) => {
    const { p, g, m, v } = args.inputs;
    const s = args.attrs as unknown as AdamWStep;
    const n = size(p.shape);
    return access(args.backend).runMulti([p, g, m, v], [p.shape, p.shape, p.shape], ([pm, gm, mm, vm], [p1, m1, v1]) =>
      native.adamw(pm.buf, pm.off, gm.buf, gm.off, mm.buf, mm.off, vm.buf, vm.off, p1.buf, p1.off, m1.buf, m1.off, v1.buf, v1.off, n,
        s.gradScale, s.beta1, s.beta2, s.sqrtBc2, s.epsilon, s.decay, s.stepSize),
    )!;
  }) as unknown as tf.KernelFunc;
}
