// Named, seeded model weights as tf.Variables: one store per model, so saving, loading, counting
// and disposing never depend on tfjs-layers or on tfjs's global variable names.
import type { Rng } from '../rng.ts';
import * as tf from './tf.ts';

export type Init =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  /** Uniform in [-bound, bound] (PyTorch's Linear default uses 1/sqrt(fanIn)). */
  | { kind: 'uniform'; bound: number }
  | { kind: 'normal'; std: number };

export const zeros: Init = { kind: 'zeros' };
export const ones: Init = { kind: 'ones' };

function initValues(shape: number[], init: Init, rng: Rng): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  switch (init.kind) {
    case 'zeros':
      break;
    case 'ones':
      v.fill(1);
      break;
    case 'uniform':
      for (let i = 0; i < n; i++) v[i] = (2 * rng.next() - 1) * init.bound;
      break;
    case 'normal':
      for (let i = 0; i < n; i++) v[i] = rng.normal() * init.std;
      break;
  }
  return v;
}

/**
 * Holds a model's variables under stable dotted names ('encoder.0.attn.qkv.weight'). Values are
 * drawn from the project's seeded Rng in JS, so the same seed gives the same weights on every
 * backend. tfjs variable names are left to tfjs (they must be globally unique per process).
 */
export class ParamStore {
  private readonly vars = new Map<string, tf.Variable>();
  constructor(private readonly rng: Rng) {}

  /** Creates a variable; each name may be created once. */
  add(name: string, shape: number[], init: Init, trainable = true): tf.Variable {
    if (this.vars.has(name)) throw new Error(`parameter '${name}' is defined twice`);
    // Forking by name keeps a parameter's initial value independent of creation order.
    const values = initValues(shape, init, this.rng.fork(name));
    const v = tf.tidy(() => tf.variable(tf.tensor(values, shape, 'float32'), trainable));
    this.vars.set(name, v);
    return v;
  }

  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`no parameter '${name}'`);
    return v;
  }

  has(name: string): boolean {
    return this.vars.has(name);
  }

  names(): string[] {
    return [...this.vars.keys()];
  }

  /** Trainable variables, optionally only those whose name starts with one of `prefixes`. */
  trainable(prefixes?: string[]): tf.Variable[] {
    const out: tf.Variable[] = [];
    for (const [name, v] of this.vars) {
      if (!v.trainable) continue;
      if (prefixes && !prefixes.some((p) => name.startsWith(p))) continue;
      out.push(v);
    }
    return out;
  }

  /** Total number of scalar weights. */
  count(): number {
    let n = 0;
    for (const v of this.vars.values()) n += v.size;
    return n;
  }

  /** The variables themselves, by name (not copies: read them, do not dispose them). */
  weights(): tf.NamedTensorMap {
    return Object.fromEntries(this.vars);
  }

  /**
   * Assigns saved values by name. Every stored name must be present with the same shape unless
   * `allowMissing` (used when loading a pretrained core before adding new sessions); names in
   * `map` that the store lacks are an error, since they mean a different architecture or config.
   */
  load(map: tf.NamedTensorMap, opts: { allowMissing?: boolean; source?: string } = {}): void {
    const where = opts.source ? ` in ${opts.source}` : '';
    const problems: string[] = [];
    for (const [name, t] of Object.entries(map)) {
      const v = this.vars.get(name);
      if (!v) problems.push(`unexpected weight '${name}'`);
      else if (!tf.util.arraysEqual(v.shape, t.shape)) problems.push(`weight '${name}' has shape [${t.shape}], the model expects [${v.shape}]`);
    }
    if (!opts.allowMissing) for (const name of this.vars.keys()) if (!(name in map)) problems.push(`missing weight '${name}'`);
    if (problems.length) throw new Error(`cannot load weights${where}: ${problems.join('; ')}`);
    tf.tidy(() => {
      for (const [name, t] of Object.entries(map)) this.vars.get(name)!.assign(t.dtype === 'float32' ? t : tf.cast(t, 'float32'));
    });
  }

  /** Disposes the variables whose names start with `prefix` (all when omitted). */
  dispose(prefix = ''): void {
    for (const [name, v] of [...this.vars]) {
      if (!name.startsWith(prefix)) continue;
      v.dispose();
      this.vars.delete(name);
    }
  }
}
