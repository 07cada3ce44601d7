// AdamW (Loshchilov & Hutter): Adam with weight decay decoupled from the gradient, as
// torch.optim.AdamW computes it (docs/method.md §4.5). Written here rather than taken from
// tf.train.adam because the moments must be named by the model's stable weight names, so they
// can be checkpointed and restored in another process, and the decay must be decoupled.
import * as tf from '../tensor/tf.ts';
import { adamwUpdate, fusedKernelsActive } from '../tensor/kernels/fused.ts';
import { adamwInPlace, fusedOptimizerAvailable, type AdamWOperands } from '../tensor/kernels/train.ts';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled decay: each step multiplies every updated weight by (1 - lr * weightDecay). */
  weightDecay?: number;
}

/** A weight to update: its stable name, the variable, and its gradient this step. */
export interface ParamGrad {
  name: string;
  variable: tf.Variable;
  grad: tf.Tensor;
}

export interface AdamWState {
  /** Updates applied so far (drives the bias correction). */
  step: number;
  /** First and second moments, named `m/<weight>` and `v/<weight>`. */
  moments: tf.NamedTensorMap;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  /** Updates applied so far. */
  step = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(o: AdamWOptions = {}) {
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.epsilon = o.epsilon ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0.01;
  }

  private moment(store: Map<string, tf.Variable>, name: string, like: tf.Tensor): tf.Variable {
    let x = store.get(name);
    if (!x) {
      x = tf.tidy(() => tf.variable(tf.zerosLike(like), false));
      store.set(name, x);
    }
    return x;
  }

  /**
   * One update at learning rate `lr`. Gradients are first multiplied by `gradScale` (global-norm
   * clipping). Weights with no gradient this step are left alone (neither decayed nor moved), as
   * PyTorch does for parameters whose grad is None.
   */
  apply(params: ParamGrad[], lr: number, gradScale: number | tf.Scalar = 1): void {
    this.step++;
    const t = this.step;
    const b1 = this.beta1;
    const b2 = this.beta2;
    const bc1 = 1 - b1 ** t;
    const bc2 = 1 - b2 ** t;
    const stepSize = lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    const decay = 1 - lr * this.weightDecay;
    if (typeof gradScale === 'number' && fusedOptimizerAvailable()) {
      // Every weight in one native call, in place (core/tensor/kernels/train.ts); any weight it
      // cannot update that way goes through the loop below.
      const items = new Map<AdamWOperands, ParamGrad>();
      for (const pg of params) items.set({ p: pg.variable, g: pg.grad, m: this.moment(this.m, pg.name, pg.variable), v: this.moment(this.v, pg.name, pg.variable) }, pg);
      const rest = adamwInPlace([...items.keys()], { gradScale, beta1: b1, beta2: b2, sqrtBc2, epsilon: this.epsilon, decay, stepSize });
      params = rest.map((it) => items.get(it)!);
    }
    tf.tidy(() => {
      for (const { name, variable, grad } of params) {
        const m = this.moment(this.m, name, variable);
        const v = this.moment(this.v, name, variable);
        if (typeof gradScale === 'number' && fusedKernelsActive()) {
          // One native kernel per weight instead of ~12 ops (core/tensor/kernels/fused.ts, tested equal).
          const [p1, m1, v1] = adamwUpdate(variable, grad, m, v, { gradScale, beta1: b1, beta2: b2, sqrtBc2, epsilon: this.epsilon, decay, stepSize });
          m.assign(m1);
          v.assign(v1);
          variable.assign(p1);
          continue;
        }
        const g = gradScale === 1 ? grad : tf.mul(grad, gradScale);
        const m1 = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1));
        const v1 = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2));
        const denom = tf.add(tf.div(tf.sqrt(v1), sqrtBc2), this.epsilon);
        const p1 = tf.sub(tf.mul(variable, decay), tf.mul(tf.div(m1, denom), stepSize));
        m.assign(m1);
        v.assign(v1);
        variable.assign(p1);
      }
    });
  }

  /** The moments themselves (not copies) and the step count, for a checkpoint. */
  state(): AdamWState {
    const moments: tf.NamedTensorMap = {};
    for (const [k, x] of this.m) moments[`m/${k}`] = x;
    for (const [k, x] of this.v) moments[`v/${k}`] = x;
    return { step: this.step, moments };
  }

  /** Restores a checkpoint's state (values are copied; the caller keeps ownership of `s`). */
  load(s: AdamWState): void {
    this.disposeMoments();
    this.step = s.step;
    for (const [key, t] of Object.entries(s.moments)) {
      const slash = key.indexOf('/');
      const kind = key.slice(0, slash);
      const name = key.slice(slash + 1);
      if (slash < 0 || (kind !== 'm' && kind !== 'v')) throw new Error(`optimizer state: unexpected entry '${key}' (expected m/<weight> or v/<weight>)`);
      (kind === 'm' ? this.m : this.v).set(name, tf.tidy(() => tf.variable(tf.clone(t), false)));
    }
  }

  /** Number of tensors the optimiser holds (two per weight it has updated). */
  get size(): number {
    return this.m.size + this.v.size;
  }

  private disposeMoments(): void {
    for (const x of this.m.values()) x.dispose();
    for (const x of this.v.values()) x.dispose();
    this.m.clear();
    this.v.clear();
  }

  dispose(): void {
    this.disposeMoments();
  }
}
