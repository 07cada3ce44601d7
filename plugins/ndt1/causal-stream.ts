// NDT1's incremental causal stream (ArchitectureModel.openCausalStream, contract in
// core/architecture.ts CausalStream): key/value caches per layer, one token's work per bin.
//
// Decisions:
// - Equal to the windowed forward pass, not an approximation of it: with causal attention a time
//   token's keys and values at every layer depend only on the prefix and the tokens before it,
//   and the prefix tokens (session token, prompt; no position) see only the prefix. So the
//   prefix's keys/values are computed once when the stream opens, each appended bin adds one
//   row per layer, and a prediction is the token of a zeroed bin run against those rows. Its
//   embedding is a constant (zero counts give the first Linear's bias), computed once.
// - Absolute positions: a cached row depends on its position, so caches never slide; they are
//   reset and refilled from position 0 (the predictor staggers several, core/stream/cached-predictor.ts).
// - An appended bin's last layer needs only its keys and values (nothing reads that layer's
//   output of an appended token), so attention and MLP of the last layer run only for predictions.
// - The bin's embedding (stitcher: counts -> 2N -> D) is computed once per bin and shared by all
//   caches; its first product reads only the weight rows of neurons that spiked (a 20 ms bin of
//   real or simulated units is mostly zeros), which is what keeps 5,000 neurons within budget.
// - Weights are copied out of the tensors when the stream opens (plain Float32Arrays, backend
//   independent); memory is that copy plus caches of fixed size, nothing grows with the stream.
import type { CausalStream } from '../../core/architecture.ts';
import { geluInPlace, layerNormRow, type TokenMath } from '../../core/stream/token-math.ts';

export interface Ndt1LayerWeights {
  ln1Gamma: Float32Array;
  ln1Beta: Float32Array;
  ln1Eps: number;
  qkvW: Float32Array;
  qkvB: Float32Array;
  outW: Float32Array;
  outB: Float32Array;
  ln2Gamma: Float32Array;
  ln2Beta: Float32Array;
  ln2Eps: number;
  fc1W: Float32Array;
  fc1B: Float32Array;
  fc2W: Float32Array;
  fc2B: Float32Array;
}

/** One session's view of an NDT1, as plain arrays (row-major, Linear weights [in, out]). */
export interface Ndt1StreamWeights {
  nNeurons: number;
  dModel: number;
  heads: number;
  mlpDim: number;
  /** Width of the stitcher's hidden layer (embedHiddenFactor x nNeurons). */
  hidden: number;
  in1W: Float32Array;
  in1B: Float32Array;
  in2W: Float32Array;
  in2B: Float32Array;
  /** Position embedding [positions, dModel]. */
  position: Float32Array;
  positions: number;
  /** Prefix tokens in the forward pass's order (session token, then prompt), dModel each. */
  prefix: Float32Array[];
  layers: Ndt1LayerWeights[];
  finalGamma: Float32Array;
  finalBeta: Float32Array;
  finalEps: number;
  readoutW: Float32Array;
  readoutB: Float32Array;
}

export class Ndt1CausalStream implements CausalStream {
  readonly caches: number;
  readonly maxBins: number;
  private readonly w: Ndt1StreamWeights;
  private readonly math: TokenMath;
  private readonly d: number;
  private readonly p: number;
  /** keys[cache][layer], values[cache][layer]: rows [prefix..., bins..., one query slot] x dModel. */
  private readonly keys: Float32Array[][];
  private readonly values: Float32Array[][];
  private readonly lengths: Int32Array;
  // Scratch rows, allocated once.
  private readonly h: Float32Array;
  private readonly a: Float32Array;
  private readonly qkv: Float32Array;
  private readonly ctx: Float32Array;
  private readonly o: Float32Array;
  private readonly mlp: Float32Array;
  private readonly scores: Float64Array;
  private readonly hidden: Float32Array;
  private readonly emb: Float32Array;
  private readonly queryEmb: Float32Array;
  private readonly idx: Int32Array;
  private readonly vals: Float32Array;
  private disposed = false;

  constructor(w: Ndt1StreamWeights, opts: { caches: number; maxBins: number }, math: TokenMath) {
    const { caches, maxBins } = opts;
    if (!(Number.isInteger(caches) && caches >= 1)) throw new Error(`ndt1 causal stream: caches must be a positive integer, got ${caches}`);
    if (!(Number.isInteger(maxBins) && maxBins >= 1)) throw new Error(`ndt1 causal stream: maxBins must be a positive integer, got ${maxBins}`);
    // A prediction sits one position past the cache's last bin.
    if (maxBins + 1 > w.positions) throw new Error(`ndt1 causal stream: ${maxBins} cached bins plus the predicted one need ${maxBins + 1} positions, the position embedding has ${w.positions}`);
    if (w.dModel % w.heads !== 0) throw new Error(`ndt1 causal stream: dModel ${w.dModel} is not divisible by heads ${w.heads}`);
    this.w = w;
    this.math = math;
    this.caches = caches;
    this.maxBins = maxBins;
    const d = (this.d = w.dModel);
    const p = (this.p = w.prefix.length);
    const rows = p + maxBins + 1;
    this.keys = Array.from({ length: caches }, () => w.layers.map(() => new Float32Array(rows * d)));
    this.values = Array.from({ length: caches }, () => w.layers.map(() => new Float32Array(rows * d)));
    this.lengths = new Int32Array(caches);
    this.h = new Float32Array(d);
    this.a = new Float32Array(d);
    this.qkv = new Float32Array(3 * d);
    this.ctx = new Float32Array(d);
    this.o = new Float32Array(d);
    this.mlp = new Float32Array(w.mlpDim);
    this.scores = new Float64Array(rows);
    this.hidden = new Float32Array(w.hidden);
    this.emb = new Float32Array(d);
    this.queryEmb = new Float32Array(d);
    this.idx = new Int32Array(w.nNeurons);
    this.vals = new Float32Array(w.nNeurons);
    this.fillPrefix();
    // A zeroed bin: the first Linear gives its bias.
    this.embedHidden(this.w.in1B.slice(), this.queryEmb);
  }

  length(cache: number): number {
    return this.lengths[this.check(cache)];
  }

  reset(cache: number): void {
    this.lengths[this.check(cache)] = 0;
  }

  append(counts: ArrayLike<number>): void {
    this.live();
    const w = this.w;
    if (counts.length !== w.nNeurons) throw new Error(`ndt1 causal stream: a bin of ${counts.length} counts, the stitcher reads ${w.nNeurons} neurons`);
    for (let c = 0; c < this.caches; c++) {
      if (this.lengths[c] >= this.maxBins) throw new Error(`ndt1 causal stream: cache ${c} is full (${this.maxBins} bins); reset it first`);
    }
    let nnz = 0;
    for (let n = 0; n < counts.length; n++) {
      const v = counts[n];
      if (v !== 0) {
        this.idx[nnz] = n;
        this.vals[nnz++] = v;
      }
    }
    this.math.sparseRows(w.in1W, this.idx, this.vals, nnz, w.in1B, this.hidden, w.nNeurons, w.hidden);
    this.embedHidden(this.hidden, this.emb);
    const last = w.layers.length - 1;
    for (let c = 0; c < this.caches; c++) {
      const row = this.p + this.lengths[c];
      this.startToken(this.emb, this.lengths[c]);
      for (let l = 0; l <= last; l++) this.layer(c, l, row, l < last);
      this.lengths[c]++;
    }
  }

  predictNext(cache: number, out: Float32Array): void {
    const c = this.check(cache);
    const w = this.w;
    if (out.length < w.nNeurons) throw new Error(`ndt1 causal stream: output of ${out.length} values for ${w.nNeurons} neurons`);
    const pos = this.lengths[c];
    // The query's keys/values go to the slot after the cache's bins; the next append overwrites them.
    this.startToken(this.queryEmb, pos);
    for (let l = 0; l < w.layers.length; l++) this.layer(c, l, this.p + pos, true);
    layerNormRow(this.h, w.finalGamma, w.finalBeta, w.finalEps, this.a, this.d);
    this.math.matVec(this.a, w.readoutW, w.readoutB, out, this.d, w.nNeurons);
  }

  dispose(): void {
    this.disposed = true;
    this.keys.length = 0;
    this.values.length = 0;
  }

  private live(): void {
    if (this.disposed) throw new Error('ndt1 causal stream: used after dispose()');
  }

  private check(cache: number): number {
    this.live();
    if (!(Number.isInteger(cache) && cache >= 0 && cache < this.caches)) throw new Error(`ndt1 causal stream: no cache ${cache} (it has ${this.caches})`);
    return cache;
  }

  /** out = in2(softsign(x)): the stitcher after its first Linear (x is overwritten). */
  private embedHidden(x: Float32Array, out: Float32Array): void {
    const w = this.w;
    for (let i = 0; i < x.length; i++) x[i] = x[i] / (1 + Math.abs(x[i]));
    this.math.matVec(x, w.in2W, w.in2B, out, w.hidden, this.d);
  }

  /** h = embedding + position pos. */
  private startToken(emb: Float32Array, pos: number): void {
    const d = this.d;
    const off = pos * d;
    for (let i = 0; i < d; i++) this.h[i] = emb[i] + this.w.position[off + i];
  }

  /**
   * Layer l for the token in this.h at cache row `row` of cache c: writes its key and value
   * there, then (when full) attends over rows 0..row and updates this.h through the layer.
   */
  private layer(c: number, l: number, row: number, full: boolean): void {
    const L = this.w.layers[l];
    const d = this.d;
    const { h, a, qkv } = this;
    layerNormRow(h, L.ln1Gamma, L.ln1Beta, L.ln1Eps, a, d);
    this.math.matVec(a, L.qkvW, L.qkvB, qkv, d, 3 * d);
    const K = this.keys[c][l];
    const V = this.values[c][l];
    K.set(qkv.subarray(d, 2 * d), row * d);
    V.set(qkv.subarray(2 * d, 3 * d), row * d);
    if (!full) return;
    this.attend(qkv, K, V, row + 1);
    this.rest(L);
  }

  /** Attention output and MLP of one layer after attend() has filled this.ctx (residuals into this.h). */
  private rest(L: Ndt1LayerWeights): void {
    const d = this.d;
    const { h, a, o, mlp } = this;
    this.math.matVec(this.ctx, L.outW, L.outB, o, d, d);
    for (let i = 0; i < d; i++) h[i] += o[i];
    layerNormRow(h, L.ln2Gamma, L.ln2Beta, L.ln2Eps, a, d);
    this.math.matVec(a, L.fc1W, L.fc1B, mlp, d, this.w.mlpDim);
    geluInPlace(mlp, this.w.mlpDim);
    this.math.matVec(mlp, L.fc2W, L.fc2B, o, this.w.mlpDim, d);
    for (let i = 0; i < d; i++) h[i] += o[i];
  }

  /** this.ctx = softmax(q k^T / sqrt(dh)) v per head over key rows 0..rows-1 (q: the first d values of q). */
  private attend(q: Float32Array, K: Float32Array, V: Float32Array, rows: number): void {
    const d = this.d;
    const heads = this.w.heads;
    const dh = d / heads;
    // The tfjs path scales q in float32 before the product.
    const scale = Math.fround(1 / Math.sqrt(dh));
    const s = this.scores;
    const ctx = this.ctx;
    for (let hh = 0; hh < heads; hh++) {
      const base = hh * dh;
      let max = -Infinity;
      for (let j = 0; j < rows; j++) {
        const off = j * d + base;
        let dot = 0;
        for (let e = 0; e < dh; e++) dot += Math.fround(q[base + e] * scale) * K[off + e];
        s[j] = dot;
        if (dot > max) max = dot;
      }
      let sum = 0;
      for (let j = 0; j < rows; j++) sum += s[j] = Math.exp(s[j] - max);
      for (let e = 0; e < dh; e++) ctx[base + e] = 0;
      for (let j = 0; j < rows; j++) {
        const pj = s[j] / sum;
        const off = j * d + base;
        for (let e = 0; e < dh; e++) ctx[base + e] += pj * V[off + e];
      }
    }
  }

  /**
   * The prefix tokens' keys and values at every layer, into every cache. Prefix tokens attend to
   * the whole prefix and nothing else, so each layer first writes all their keys and values.
   */
  private fillPrefix(): void {
    const p = this.p;
    if (p === 0) return;
    const d = this.d;
    const w = this.w;
    const hs = w.prefix.map((t) => Float32Array.from(t.subarray(0, d)));
    const qs = hs.map(() => new Float32Array(d));
    for (let l = 0; l < w.layers.length; l++) {
      const L = w.layers[l];
      const K = this.keys[0][l];
      const V = this.values[0][l];
      for (let i = 0; i < p; i++) {
        layerNormRow(hs[i], L.ln1Gamma, L.ln1Beta, L.ln1Eps, this.a, d);
        this.math.matVec(this.a, L.qkvW, L.qkvB, this.qkv, d, 3 * d);
        qs[i].set(this.qkv.subarray(0, d));
        K.set(this.qkv.subarray(d, 2 * d), i * d);
        V.set(this.qkv.subarray(2 * d, 3 * d), i * d);
      }
      for (let i = 0; i < p; i++) {
        this.attend(qs[i], K, V, p);
        this.h.set(hs[i]);
        this.rest(L);
        hs[i].set(this.h);
      }
      for (let c = 1; c < this.caches; c++) {
        this.keys[c][l].set(K.subarray(0, p * d));
        this.values[c][l].set(V.subarray(0, p * d));
      }
    }
  }
}
