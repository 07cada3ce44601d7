// Gradients that tfjs builds from several kernels, replaced by one pass each (same values to
// float32 rounding). Gradients are global in tfjs, not per backend, so each one checks that its
// native kernel runs on the current backend and otherwise computes what tfjs's own does.
// - Mean, Sum: tfjs multiplies dy by tf.ones(x.shape), built in JavaScript and uploaded on every
//   call (LayerNorm's two means per layer: ~10 ms a step); here dy is broadcast by one Tile.
// - Softmax: dx = (dy - sum(dy y)) y in one kernel instead of four.
// - Erf: dx = dy 2/sqrt(pi) exp(-x^2) in one kernel instead of five.
import * as tf from '../tf.ts';
import type { BackendAccess, TensorInfo } from './access.ts';
import { BINARY_OPS, type NativeKernels } from './native.ts';

export const SOFTMAX_GRAD_KERNEL = 'MtmSoftmaxGrad';
export const ERF_GRAD_KERNEL = 'MtmErfGrad';

const has = (kernel: string) => tf.getKernel(kernel, tf.getBackend()) !== undefined;

function expandedShape(shape: number[], axes: number[]): number[] {
  const s = shape.slice();
  for (const a of axes) s[a] = 1;
  return s;
}

export const meanGrad: tf.GradConfig = {
  kernelName: 'Mean',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const axes = tf.util.parseAxisParam((attrs as { axis: number | number[] }).axis, x.shape);
    const n = axes.reduce((p, a) => p * x.shape[a], 1);
    return { x: () => tf.broadcastTo(tf.div(tf.reshape(dy as tf.Tensor, expandedShape(x.shape, axes)), n), x.shape) };
  },
};

export const sumGrad: tf.GradConfig = {
  kernelName: 'Sum',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const axes = tf.util.parseAxisParam((attrs as { axis: number | number[] }).axis, x.shape);
    return { x: () => tf.broadcastTo(tf.reshape(dy as tf.Tensor, expandedShape(x.shape, axes)), x.shape) };
  },
};

export const softmaxGrad: tf.GradConfig = {
  kernelName: 'Softmax',
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [y] = saved;
    const dim = (attrs as { dim: number }).dim;
    const last = dim === -1 || dim === y.rank - 1;
    return {
      logits: () => {
        if (last && y.dtype === 'float32' && has(SOFTMAX_GRAD_KERNEL)) {
          return tf.engine().runKernel(SOFTMAX_GRAD_KERNEL, { y, dy: dy as tf.Tensor }, {}) as tf.Tensor;
        }
        const dyTimesY = tf.mul(dy as tf.Tensor, y);
        return tf.sub(dyTimesY, tf.mul(tf.sum(dyTimesY, [dim], true), y));
      },
    };
  },
};

export const erfGrad: tf.GradConfig = {
  kernelName: 'Erf',
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved;
    return {
      x: () => {
        if (x.dtype === 'float32' && has(ERF_GRAD_KERNEL)) return tf.engine().runKernel(ERF_GRAD_KERNEL, { x, dy: dy as tf.Tensor }, {}) as tf.Tensor;
        return tf.mul(dy as tf.Tensor, tf.mul(tf.exp(tf.neg(tf.square(x))), 2 / Math.sqrt(Math.PI)));
      },
    };
  },
};

export const GRADIENTS: tf.GradConfig[] = [meanGrad, sumGrad, softmaxGrad, erfGrad];

// ---- their kernels ----
type Access = (backend: unknown) => BackendAccess;
interface Args {
  inputs: Record<string, TensorInfo>;
  backend: unknown;
}
const size = (shape: number[]) => shape.reduce((p, d) => p * d, 1);

export function softmaxGradKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  return ((args: Args) => {
    const { y, dy } = args.inputs;
    const cols = y.shape[y.shape.length - 1];
    const rows = cols ? size(y.shape) / cols : 0;
    return access(args.backend).run([y, dy], y.shape, ([ym, dm], xm) => native.softmaxGrad(ym.buf, ym.off, dm.buf, dm.off, xm.buf, xm.off, rows, cols))!;
  }) as unknown as tf.KernelFunc;
}

export function erfGradKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  const op = BINARY_OPS.indexOf('ErfGrad');
  return ((args: Args) => {
    const { x, dy } = args.inputs;
    const dims = Int32Array.from([1, size(x.shape), 1, 1]);
    return access(args.backend).run([x, dy], x.shape, ([xm, dm], ym) => native.binary(op, xm.buf, xm.off, dm.buf, dm.off, ym.buf, ym.off, dims))!;
  }) as unknown as tf.KernelFunc;
}
