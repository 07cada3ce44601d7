// Poisson negative log-likelihood on log-rates over the scored entries (docs/method.md §4.4).
import { fusedLossAvailable, fusedPoissonNll } from './kernels/train.ts';
import * as tf from './tf.ts';

/**
 * mean over scored entries of exp(x) - y x (the log(y!) term is constant in the model and left
 * out, as in the reference). `lossMask` is 1 where scored; the sum is divided by the number of
 * scored entries (at least 1, so a batch with nothing scored gives 0, not NaN).
 */
export function poissonNll(logRates: tf.Tensor, target: tf.Tensor, lossMask: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const mask = lossMask.dtype === 'float32' ? lossMask : tf.cast(lossMask, 'float32');
    const y = target.dtype === 'float32' ? target : tf.cast(target, 'float32');
    // One native kernel each way (core/tensor/kernels/train.ts), where tfjs runs ~8 and their gradients.
    const same = tf.util.arraysEqual(logRates.shape, y.shape) && tf.util.arraysEqual(logRates.shape, mask.shape);
    if (same && logRates.dtype === 'float32' && fusedLossAvailable()) return fusedPoissonNll(logRates, y, mask);
    const perEntry = tf.sub(tf.exp(logRates), tf.mul(y, logRates));
    const total = tf.sum(tf.mul(perEntry, mask));
    return tf.div(total, tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
  });
}
