// Seeded dropout whose mask comes from a counter-based hash instead of tf.randomUniform: tfjs
// draws every uniform in JavaScript through seedrandom (~10 ns each: ~55 ms of an NDT1 step at
// D128), and no kernel can replace that. The mask depends only on (seed, element index), so it
// is the same on every backend, with or without the addon (the JavaScript fallback below
// computes the very same bits), and both threads can fill it.
import * as tf from '../tf.ts';
import type { BackendAccess } from './access.ts';
import type { NativeKernels } from './native.ts';

export const DROPOUT_MASK_KERNEL = 'MtmDropoutMask';

/** lowbias32 (Wellons' hash prospector): a 32-bit mixer with full avalanche; the addon uses the same. */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

interface MaskAttrs {
  shape: number[];
  key: number;
  threshold: number;
  scale: number;
}

function maskAttrs(shape: number[], rate: number, seed: number): MaskAttrs {
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropout: rate must be in [0, 1), got ${rate}`);
  if (!Number.isInteger(seed)) throw new Error(`dropout: seed must be an integer, got ${seed}`);
  // Element i is kept when the top 24 bits of mix32(i * golden + key) reach threshold: P = 1 - rate.
  return { shape, key: mix32((seed ^ 0x85ebca6b) >>> 0), threshold: Math.floor(rate * 2 ** 24), scale: 1 / (1 - rate) };
}

/** The mask values (0 or 1 / (1 - rate)) computed in JavaScript: the fallback, and the reference for the addon. */
export function dropoutMaskValues(n: number, rate: number, seed: number): Float32Array {
  const { key, threshold, scale } = maskAttrs([n], rate, seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const h = mix32((Math.imul(i, 0x9e3779b9) + key) >>> 0);
    out[i] = h >>> 8 >= threshold ? scale : 0;
  }
  return out;
}

/** A [shape] tensor of 0 and 1 / (1 - rate), the same for a given seed everywhere. */
export function dropoutMask(shape: number[], rate: number, seed: number): tf.Tensor {
  const attrs = maskAttrs(shape, rate, seed);
  if (tf.getKernel(DROPOUT_MASK_KERNEL, tf.getBackend())) {
    return tf.engine().runKernel(DROPOUT_MASK_KERNEL, {}, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  return tf.tensor(dropoutMaskValues(shape.reduce((p, d) => p * d, 1), rate, seed), shape);
}

/**
 * x times a seeded dropout mask (inverted dropout: kept values scaled by 1 / (1 - rate)); x itself
 * when rate is 0. The gradient flows through the multiplication. A drop-in for
 * tf.dropout(x, rate, undefined, seed) with a different (but as seeded) choice of dropped units.
 */
export function fastDropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  if (rate === 0) return x;
  return tf.tidy(() => tf.mul(x, dropoutMask(x.shape, rate, seed)));
}

/** The kernel behind dropoutMask() on backends with native access. */
export function dropoutMaskKernel(native: NativeKernels, access: (backend: unknown) => BackendAccess): tf.KernelFunc {
  return ((args: { backend: unknown; attrs: MaskAttrs }) => {
    const { shape, key, threshold, scale } = args.attrs;
    const n = shape.reduce((p, d) => p * d, 1);
    return access(args.backend).run([], shape, (_, ym) => native.dropoutMask(ym.buf, ym.off, n, key, threshold, scale))!;
  }) as unknown as tf.KernelFunc;
}
