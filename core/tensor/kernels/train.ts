// The small steps of a training step around the model, each as one native call where tfjs runs
// one kernel (and a tape entry) per weight or per element-wise op (native/src/model_kernels.h):
// the global gradient norm over every weight, AdamW over every weight in place, and the masked
// Poisson NLL with its gradient. Each returns undefined / false, or is not registered, when the
// native kernels are not running; callers (core/train/step.ts, adamw.ts, core/tensor/loss.ts)
// then take their tf-op path, and tests compare the two.
import * as tf from '../tf.ts';
import { ACCESS, type BackendAccess, type Mem, type TensorInfo, type Access, type KernelArgs, size } from './access.ts';
import { fusedPathOn } from './layer.ts';
import { loadNative, type NativeBuffer, type NativeKernels } from './native.ts';

export const POISSON_NLL_KERNEL = 'MtmPoissonNll';
export const POISSON_NLL_GRAD_KERNEL = 'MtmPoissonNllGrad';

const has = (kernel: string) => tf.getKernel(kernel, tf.getBackend()) !== undefined;

/** The addon and the running backend's memory access, when our kernels are registered on it. */
function nativeAccess(): { native: NativeKernels; access: BackendAccess } | undefined {
  if (!has(POISSON_NLL_KERNEL)) return undefined;
  const make = ACCESS[tf.getBackend()];
  const { native } = loadNative();
  if (!make || !native) return undefined;
  return { native, access: make(tf.backend()) };
}

function lists(mems: Mem[]): { bufs: NativeBuffer[]; offs: Float64Array } {
  return { bufs: mems.map((m) => m.buf), offs: Float64Array.from(mems, (m) => m.off) };
}

/** True when the optimiser's fused paths (global norm, AdamW in place) run natively. */
export function fusedOptimizerAvailable(): boolean {
  return fusedPathOn('optimizer') && nativeAccess() !== undefined;
}

/**
 * Sum over `tensors` of every value squared, in one native call (double accumulation), or
 * undefined when that cannot run (then use tf ops).
 */
export function sumOfSquares(tensors: tf.Tensor[]): number | undefined {
  const na = fusedPathOn('optimizer') ? nativeAccess() : undefined;
  if (!na) return undefined;
  const mems: Mem[] = [];
  for (const t of tensors) {
    const m = t.dtype === 'float32' ? na.access.mem(t as unknown as TensorInfo) : undefined;
    if (!m) return undefined;
    mems.push(m);
  }
  const { bufs, offs } = lists(mems);
  return na.native.sumSquares(bufs, offs, Float64Array.from(tensors, (t) => t.size));
}

export interface AdamWParams {
  gradScale: number;
  beta1: number;
  beta2: number;
  sqrtBc2: number;
  epsilon: number;
  decay: number;
  stepSize: number;
}

/** One weight's AdamW operands: the weight, its gradient, its two moments. */
export interface AdamWOperands {
  p: tf.Variable;
  g: tf.Tensor;
  m: tf.Variable;
  v: tf.Variable;
}

/**
 * The AdamW update of every weight in `items` (core/train/adamw.ts's arithmetic, the per-weight
 * kernel's loop) in one native call, writing p, m and v in place. Returns the items it could
 * not update that way (values shared with another tensor, other dtypes, no native kernels): the
 * caller updates those itself.
 */
export function adamwInPlace(items: AdamWOperands[], s: AdamWParams): AdamWOperands[] {
  const na = fusedPathOn('optimizer') ? nativeAccess() : undefined;
  if (!na) return items;
  const { access } = na;
  const rest: AdamWOperands[] = [];
  const mems: Mem[] = [];
  const sizes: number[] = [];
  for (const it of items) {
    const ts = [it.p, it.g, it.m, it.v] as unknown as TensorInfo[];
    const ms = ts.map((t) => access.mem(t));
    // p, m and v are written in place: only when no other tensor shares their values.
    const own = access.refCount(ts[0]) === 1 && access.refCount(ts[2]) === 1 && access.refCount(ts[3]) === 1;
    const size = it.p.size;
    if (!own || ms.some((m) => !m) || it.g.size !== size || it.m.size !== size || it.v.size !== size || it.g.dtype !== 'float32') {
      rest.push(it);
      continue;
    }
    mems.push(...(ms as Mem[]));
    sizes.push(size);
  }
  if (sizes.length) {
    const { bufs, offs } = lists(mems);
    na.native.adamwInPlace(bufs, offs, Float64Array.from(sizes), Float64Array.from([s.gradScale, s.beta1, s.beta2, s.sqrtBc2, s.epsilon, s.decay, s.stepSize]));
  }
  return rest;
}

// ---- masked Poisson NLL ----

/** True when the fused Poisson NLL runs natively. */
export function fusedLossAvailable(): boolean {
  return fusedPathOn('loss') && has(POISSON_NLL_KERNEL);
}

/**
 * mean over scored entries of exp(x) - y x, divided by max(sum(mask), 1), as one kernel forward
 * (the sum in double) and one backward: dx = mask (exp(x) - y) / max(sum(mask), 1). Entries
 * with mask 0 contribute nothing, even where exp(x) overflows. float32 operands of one shape.
 */
export function fusedPoissonNll(logRates: tf.Tensor, target: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const [loss, count] = tf.engine().runKernel(POISSON_NLL_KERNEL, { x, y: target, mask }, {}) as tf.Tensor[];
    save([x, target, mask, count]);
    return {
      value: loss as tf.Scalar,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ys, ms, cs] = saved;
        // Two scalars read back: the kernel needs the scale as a number.
        const scale = dy.dataSync()[0] / Math.max(cs.dataSync()[0], 1);
        return tf.engine().runKernel(POISSON_NLL_GRAD_KERNEL, { x: xs, y: ys, mask: ms }, { scale }) as tf.Tensor;
      },
    };
  });
  return f(logRates) as tf.Scalar;
}

type Args = KernelArgs<Record<string, number>>;

export function poissonNllKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  return ((args: Args) => {
    const { x, y, mask } = args.inputs;
    return access(args.backend).runMulti([x, y, mask], [[], []], ([xm, ym, mm], [lm, cm]) =>
      native.poissonNll(xm.buf, xm.off, ym.buf, ym.off, mm.buf, mm.off, lm.buf, lm.off, cm.buf, cm.off, size(x.shape)),
    )!;
  }) as unknown as tf.KernelFunc;
}

export function poissonNllGradKernel(native: NativeKernels, access: Access): tf.KernelFunc {
  return ((args: Args) => {
    const { x, y, mask } = args.inputs;
    return access(args.backend).run([x, y, mask], x.shape, ([xm, ym, mm], dm) =>
      native.poissonNllGrad(xm.buf, xm.off, ym.buf, ym.off, mm.buf, mm.off, dm.buf, dm.off, size(x.shape), args.attrs.scale),
    )!;
  }) as unknown as tf.KernelFunc;
}
