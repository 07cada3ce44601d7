// Linear layers whose every matrix product is a plain 2-D one (docs/performance.md §2.1: the wasm backend
// sends only untransposed 2-D products to XNNPACK; tf.matMul's own gradient uses transposed ones).
import { fusedLinear2d, fusedLinearAvailable } from './kernels/layer.ts';
import type { ParamStore } from './params.ts';
import * as tf from './tf.ts';

type Arg = tf.Tensor | tf.GradSaveFunc;

// Backward: dx = dy . W^T and dW = x^T . dy, with the transposes made explicitly so the products
// themselves are untransposed (3.7-4.5x faster training on wasm, same values to rounding).
const linearWithBias = tf.customGrad((...args: Arg[]) => {
  const [x, w, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.add(tf.matMul(x, w), b) as tf.Tensor2D,
    gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as tf.Tensor2D[];
      return [tf.matMul(dy, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy), tf.sum(dy, 0)];
    },
  };
});

const linearNoBias = tf.customGrad((...args: Arg[]) => {
  const [x, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.matMul(x, w) as tf.Tensor2D,
    gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as tf.Tensor2D[];
      return [tf.matMul(dy, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy)];
    },
  };
});

/** `x . w (+ b)` for x [rows, in], w [in, out], b [out], with the fast backward pass. */
export function linear2d(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  // Native: one kernel forward (product + bias), one backward (dx, dw, db).
  if (fusedLinearAvailable() && x.dtype === 'float32') return fusedLinear2d(x, w, b);
  return (b ? linearWithBias(x, w, b) : linearNoBias(x, w)) as tf.Tensor2D;
}

/** `x . w (+ b)` over the last axis of x of any rank, through 2-D products. */
export function linear(x: tf.Tensor, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor {
  const inDim = x.shape[x.rank - 1];
  if (inDim !== w.shape[0]) throw new Error(`linear: input has ${inDim} features, weight expects ${w.shape[0]}`);
  const lead = x.shape.slice(0, -1);
  const y = linear2d(x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, inDim]), w, b);
  return x.rank === 2 ? y : tf.reshape(y, [...lead, w.shape[1]]);
}

/** A Linear(inDim -> outDim) layer with PyTorch's default init (uniform, bound 1/sqrt(inDim)). */
export class Linear {
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;
  constructor(
    store: ParamStore,
    readonly name: string,
    readonly inDim: number,
    readonly outDim: number,
    opts: { bias?: boolean } = {},
  ) {
    const bound = 1 / Math.sqrt(inDim);
    this.weight = store.add(`${name}.weight`, [inDim, outDim], { kind: 'uniform', bound });
    if (opts.bias ?? true) this.bias = store.add(`${name}.bias`, [outDim], { kind: 'uniform', bound });
  }

  apply(x: tf.Tensor): tf.Tensor {
    return linear(x, this.weight as tf.Tensor2D, this.bias as tf.Tensor1D | undefined);
  }
}
