// Registers mtm-flow's fast kernels over tfjs's built-in ones on the running backend (why each
// exists: docs/performance.md §3), and can put the built-ins back. Without the native addon nothing changes.
import * as tf from '../tf.ts';
import { ACCESS } from './access.ts';
import { batchMatMulKernel } from './batch-matmul.ts';
import { binaryKernel, castKernel, identityKernel, meanKernel, softmaxKernel, sumKernel, transposeKernel, unaryKernel, type KernelFactory } from './elementwise.ts';
import { concatKernel, sliceKernel, splitVKernel, tileKernel } from './copy.ts';
import { DROPOUT_MASK_KERNEL, dropoutMaskKernel } from './dropout.ts';
import { adamwKernel, ADAMW_KERNEL, GELU_GRAD_KERNEL, GELU_KERNEL, geluGradKernel, geluKernel, LAYER_NORM_GRAD_KERNEL, LAYER_NORM_KERNEL, layerNormGradKernel, layerNormKernel } from './fused.ts';
import { ERF_GRAD_KERNEL, erfGradKernel, GRADIENTS, SOFTMAX_GRAD_KERNEL, softmaxGradKernel } from './gradients.ts';
import {
  ALEA_DROPOUT_KERNEL, aleaDropoutKernel, ENCODER_LAYER_GRAD_KERNEL, ENCODER_LAYER_KERNEL, encoderLayerGradKernel, encoderLayerKernel, LINEAR_GRAD_KERNEL,
  LINEAR_KERNEL, linearGradKernel, linearKernel,
} from './layer.ts';
import { EMBED_GRAD_KERNEL, EMBED_KERNEL, embedGradKernel, embedKernel } from './embed.ts';
import { POISSON_NLL_GRAD_KERNEL, POISSON_NLL_KERNEL, poissonNllGradKernel, poissonNllKernel } from './train.ts';
import type { BackendAccess } from './access.ts';
import { loadNative, type NativeInfo, type NativeKernels } from './native.ts';

export interface FastKernelStatus {
  /** Backend the kernels are registered on ('' before any registration). */
  backend: string;
  /** True when at least one fast kernel replaces a built-in on that backend. */
  enabled: boolean;
  /** Kernel names replaced. */
  kernels: string[];
  native?: NativeInfo;
  /** One line saying what runs and why. */
  reason: string;
}

/** The kernels we replace, on every backend ACCESS knows. */
const FACTORIES: Record<string, KernelFactory> = {
  BatchMatMul: batchMatMulKernel,
  Exp: unaryKernel('Exp'),
  Erf: unaryKernel('Erf'),
  Neg: unaryKernel('Neg'),
  Abs: unaryKernel('Abs'),
  Square: unaryKernel('Square'),
  Sqrt: unaryKernel('Sqrt'),
  Rsqrt: unaryKernel('Rsqrt'),
  Floor: unaryKernel('Floor'),
  Step: unaryKernel('Step'),
  Log: unaryKernel('Log'),
  Reciprocal: unaryKernel('Reciprocal'),
  Relu: unaryKernel('Relu'),
  Sigmoid: unaryKernel('Sigmoid'),
  Add: binaryKernel('Add'),
  Sub: binaryKernel('Sub'),
  Multiply: binaryKernel('Multiply'),
  RealDiv: binaryKernel('RealDiv'),
  Maximum: binaryKernel('Maximum'),
  Minimum: binaryKernel('Minimum'),
  SquaredDifference: binaryKernel('SquaredDifference'),
  Sum: sumKernel,
  Mean: meanKernel,
  Softmax: softmaxKernel,
  Transpose: transposeKernel,
  Identity: identityKernel,
  Cast: castKernel,
  Slice: sliceKernel,
  SplitV: splitVKernel,
  Concat: concatKernel,
  Tile: tileKernel,
};

/** Built-in configs we replaced, keyed backend/kernel, to restore them. */
const replaced = new Map<string, tf.KernelConfig>();
/** Kernels of our own, with no tfjs counterpart: fused ops (fused.ts), gradients, dropout masks. */
const OWN: Record<string, (native: NativeKernels, access: (backend: unknown) => BackendAccess) => tf.KernelFunc> = {
  [DROPOUT_MASK_KERNEL]: dropoutMaskKernel,
  [SOFTMAX_GRAD_KERNEL]: softmaxGradKernel,
  [ERF_GRAD_KERNEL]: erfGradKernel,
  [GELU_KERNEL]: geluKernel,
  [GELU_GRAD_KERNEL]: geluGradKernel,
  [LAYER_NORM_KERNEL]: layerNormKernel,
  [LAYER_NORM_GRAD_KERNEL]: layerNormGradKernel,
  [ADAMW_KERNEL]: adamwKernel,
  [ENCODER_LAYER_KERNEL]: encoderLayerKernel,
  [ENCODER_LAYER_GRAD_KERNEL]: encoderLayerGradKernel,
  [ALEA_DROPOUT_KERNEL]: aleaDropoutKernel,
  [LINEAR_KERNEL]: linearKernel,
  [LINEAR_GRAD_KERNEL]: linearGradKernel,
  [POISSON_NLL_KERNEL]: poissonNllKernel,
  [POISSON_NLL_GRAD_KERNEL]: poissonNllGradKernel,
  [EMBED_KERNEL]: embedKernel,
  [EMBED_GRAD_KERNEL]: embedGradKernel,
};

/** Kernels of our own (no built-in), keyed backend/kernel. */
const added = new Set<string>();
/** Built-in gradients we replaced (they are global, not per backend), to restore them. */
const replacedGrads = new Map<string, tf.GradConfig>();
let status: FastKernelStatus = { backend: '', enabled: false, kernels: [], reason: 'fast kernels not registered' };

/** What is registered now. */
export function fastKernelStatus(): FastKernelStatus {
  return { ...status, kernels: [...status.kernels] };
}

/**
 * Replaces the built-in kernels of `backendName` with native ones when the addon loads (env
 * MTM_NATIVE_KERNELS=off keeps the built-ins). Idempotent. Returns a short note for logs
 * (' + native kernels (...)' or '').
 */
export function registerFastKernels(backendName: string, log: (msg: string) => void = () => {}): string {
  const access = ACCESS[backendName];
  if (!access) {
    status = { backend: backendName, enabled: false, kernels: [], reason: `no fast kernels for backend ${backendName}` };
    return '';
  }
  const { native, reason } = loadNative();
  if (!native) {
    status = { backend: backendName, enabled: false, kernels: [], reason };
    log(`fast kernels off: ${reason}`);
    return '';
  }
  const names: string[] = [];
  for (const [kernelName, factory] of Object.entries(FACTORIES)) {
    const key = `${backendName}/${kernelName}`;
    if (!replaced.has(key)) {
      const builtin = tf.getKernel(kernelName, backendName);
      if (!builtin) continue;
      tf.unregisterKernel(kernelName, backendName);
      tf.registerKernel({ ...builtin, kernelFunc: factory(native, builtin.kernelFunc, access) });
      replaced.set(key, builtin);
    }
    names.push(kernelName);
  }
  for (const [kernelName, make] of Object.entries(OWN)) {
    const key = `${backendName}/${kernelName}`;
    if (added.has(key)) continue;
    tf.registerKernel({ kernelName, backendName, kernelFunc: make(native, access) });
    added.add(key);
  }
  for (const grad of GRADIENTS) {
    const builtin = tf.getGradient(grad.kernelName);
    if (!replacedGrads.has(grad.kernelName) && builtin) replacedGrads.set(grad.kernelName, builtin);
    tf.registerGradient(grad);
  }
  const info = native.info();
  const note = `native kernels (${names.length}: gemm ${info.gemm}, ${info.isa}, ${info.threads} threads)`;
  status = { backend: backendName, enabled: names.length > 0, kernels: names, native: info, reason: note };
  log(`fast kernels: ${note}`);
  return names.length ? ` + ${note}` : '';
}

/** Puts tfjs's own kernels back (all backends, or one). */
export function unregisterFastKernels(backendName?: string): void {
  for (const [key, builtin] of [...replaced]) {
    const [backend, kernelName] = key.split('/');
    if (backendName && backend !== backendName) continue;
    tf.unregisterKernel(kernelName, backend);
    tf.registerKernel(builtin);
    replaced.delete(key);
  }
  for (const key of [...added]) {
    const [backend, kernelName] = key.split('/');
    if (backendName && backend !== backendName) continue;
    tf.unregisterKernel(kernelName, backend);
    added.delete(key);
  }
  if (!replaced.size) {
    for (const grad of replacedGrads.values()) tf.registerGradient(grad);
    replacedGrads.clear();
  }
  if (!backendName || status.backend === backendName) status = { backend: status.backend, enabled: false, kernels: [], reason: 'fast kernels unregistered' };
}
