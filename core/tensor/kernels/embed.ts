// NDT1's token embedding as one native kernel each way (native/src/model_kernels.h): the
// per-session stitcher (Linear, softsign, Linear), the learned positions, the prefix tokens
// (session / prompt) in front, and the embedding dropout with exactly tf.dropout's units. The
// plain path (plugins/ndt1/model.ts) runs ~12 tfjs kernels forward and ~20 backward for it, and
// computes a gradient for the counts that nothing uses.
import * as tf from '../tf.ts';
import type { Mem, Access, KernelArgs } from './access.ts';
import { aleaState, fusedPathOn } from './layer.ts';
import type { NativeKernels } from './native.ts';

export const EMBED_KERNEL = 'MtmEmbed';
export const EMBED_GRAD_KERNEL = 'MtmEmbedGrad';

const has = (kernel: string) => tf.getKernel(kernel, tf.getBackend()) !== undefined;
const run = (kernel: string, inputs: tf.NamedTensorMap, attrs: object) => tf.engine().runKernel(kernel, inputs, attrs as tf.NamedAttrMap) as tf.Tensor[];

/** True when the fused embedding runs natively (and is switched on). */
export function fusedEmbedAvailable(): boolean {
  return fusedPathOn('embed') && has(EMBED_KERNEL);
}

export interface EmbedWeights {
  /** Stitcher: in1 [N, H] + [H], in2 [H, D] + [D]. */
  w1: tf.Tensor;
  b1: tf.Tensor;
  w2: tf.Tensor;
  b2: tf.Tensor;
  /** Learned positions [maxBins, D]; bin t gets row t. */
  position: tf.Tensor;
}

interface EmbedAttrs {
  dims: number[];
}

/**
 * tokens [B, P + T, D] from counts x [B, T, N]: rows 0..P-1 of each sequence are `prefix`
 * ([P, D], or none), row P + t is in2(softsign(in1(x[b, t]))) + position[t]; then dropout at
 * `rate` with tf.dropout's units for `seed` (null: no dropout). Gradients for every weight and
 * the prefix; none for x (counts are data).
 */
export function fusedEmbed(x: tf.Tensor3D, w: EmbedWeights, prefix: tf.Tensor | null, o: { rate: number; seed: number | null }): tf.Tensor3D {
  const [B, T, N] = x.shape;
  const H = w.w1.shape[1] as number;
  const D = w.w2.shape[1] as number;
  const P = prefix ? prefix.shape[0] : 0;
  const drop = o.seed !== null && o.rate > 0;
  const st = drop ? aleaState(o.seed!) : { c: 0, s0: 0, s1: 0, s2: 0 };
  const attrs: EmbedAttrs = { dims: [B, T, N, H, D, P, w.position.shape[0], drop ? 1 : 0, drop ? Math.fround(1 - o.rate) : 1, st.c, st.s0, st.s1, st.s2] };
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [w1, b1, w2, b2, pos, pre] = args as tf.Tensor[];
    const inputs: tf.NamedTensorMap = { x, w1, b1, w2, b2, pos };
    if (P > 0) inputs.prefix = pre;
    const [y, a1, s, mask] = run(EMBED_KERNEL, inputs, attrs);
    save(mask ? [x, w2, a1, s, mask] : [x, w2, a1, s]);
    return {
      value: y as tf.Tensor3D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, w2s, a1s, ss, ms] = saved;
        const gin: tf.NamedTensorMap = { dy, x: xs, w2: w2s, a1: a1s, s: ss };
        if (ms) gin.mask = ms;
        const [dw1, db1, dw2, db2, dpos, dpre] = run(EMBED_GRAD_KERNEL, gin, attrs);
        return P > 0 ? [dw1, db1, dw2, db2, dpos, dpre] : [dw1, db1, dw2, db2, dpos];
      },
    };
  });
  const ins = [w.w1, w.b1, w.w2, w.b2, w.position];
  return (P > 0 ? f(...ins, prefix!) : f(...ins)) as tf.Tensor3D;
}

// ---- the kernels (registered by index.ts) ----

type Args = KernelArgs;

function call(native: NativeKernels, mode: 0 | 1, mems: Mem[], dims: number[]): void {
  native.embed(mode, mems.map((m) => m.buf), Float64Array.from(mems, (m) => m.off), Float64Array.from(dims));
}

export function embedKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  return ((args: Args) => {
    const dims = (args.attrs as unknown as EmbedAttrs).dims;
    const [B, T, , H, D, P, , drop] = dims;
    const { x, w1, b1, w2, b2, pos, prefix } = args.inputs;
    const ins = P > 0 ? [x, w1, b1, w2, b2, pos, prefix] : [x, w1, b1, w2, b2, pos];
    const outShapes = [[B, P + T, D], [B * T, H], [B * T, H], ...(drop ? [[B, P + T, D]] : [])];
    return access(args.backend).runMulti(ins, outShapes, (im, om) => {
      // Absent operands (no prefix, no mask) get a buffer the kernel never reads.
      call(native, 0, [...im.slice(0, 6), P > 0 ? im[6] : im[0], om[0], om[1], om[2], drop ? om[3] : om[0]], dims);
    })!;
  }) as unknown as tf.KernelFunc;
}

export function embedGradKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  return ((args: Args) => {
    const dims = (args.attrs as unknown as EmbedAttrs).dims;
    const [, , N, H, D, P, maxPos, drop] = dims;
    const { dy, x, w2, a1, s, mask } = args.inputs;
    const ins = drop ? [dy, x, w2, a1, s, mask] : [dy, x, w2, a1, s];
    const outShapes = [[N, H], [H], [H, D], [D], [maxPos, D], ...(P > 0 ? [[P, D]] : [])];
    return access(args.backend).runMulti(ins, outShapes, (im, om) => {
      call(native, 1, [...im.slice(0, 5), drop ? im[5] : im[0], ...om.slice(0, 5), P > 0 ? om[5] : om[0]], dims);
    })!;
  }) as unknown as tf.KernelFunc;
}
