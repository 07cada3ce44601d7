// Turns a masked-batch payload into the tensors a model and the loss need (docs/method.md §3-4).
import type { ModelInput } from '../architecture.ts';
import type { MaskedBatch } from '../masking/types.ts';
import * as tf from './tf.ts';

export interface BatchTensors {
  model: ModelInput;
  /** Unmasked counts [B, T, N], float32. */
  target: tf.Tensor3D;
  /** 1 where scored, [B, T, N], float32. */
  lossMask: tf.Tensor3D;
  dispose(): void;
}

/** Tensors for one batch; the caller disposes them (one batch's worth, made once per step). */
export function batchTensors(b: MaskedBatch): BatchTensors {
  const shape: [number, number, number] = [b.shape.trials, b.shape.bins, b.shape.neurons];
  const input = tf.tensor3d(b.input, shape, 'float32');
  // The typed-array constructor converts in one native pass (Float32Array.from iterates).
  const target = tf.tensor3d(new Float32Array(b.target), shape, 'float32');
  const lossMask = tf.tensor3d(new Float32Array(b.lossMask), shape, 'float32');
  return {
    model: { sessionId: b.sessionId, input, mode: b.mode, causal: b.causal },
    target,
    lossMask,
    dispose() {
      tf.dispose([input, target, lossMask]);
    },
  };
}
