import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng } from '../rng.ts';
import { erf, geluInPlace, layerNormRow, tokenMath, tokenMathReason } from './token-math.ts';

const rng = createRng(5);
const rand = (n: number) => Float32Array.from({ length: n }, () => rng.normal());

function refMatVec(x: Float32Array, w: Float32Array, b: Float32Array | null, inDim: number, outDim: number): Float64Array {
  const y = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let s = b ? b[o] : 0;
    for (let i = 0; i < inDim; i++) s += x[i] * w[i * outDim + o];
    y[o] = s;
  }
  return y;
}

const relErr = (got: Float32Array, want: Float64Array) => Math.max(...Array.from(got, (g, i) => Math.abs(g - want[i]) / (1 + Math.abs(want[i]))));

test(`matVec and sparseRows agree with a double-precision product, native (${tokenMathReason()}) and JS, tails included`, () => {
  for (const kind of ['auto', 'js'] as const) {
    const m = tokenMath(kind);
    for (const [inDim, outDim] of [[16, 48], [33, 64], [70, 131], [5, 1], [200, 7]]) {
      const x = rand(inDim);
      x[3] = 0; // skipped inputs must not change the result
      const w = rand(inDim * outDim);
      const b = rand(outDim);
      const y = new Float32Array(outDim);
      m.matVec(x, w, b, y, inDim, outDim);
      assert.ok(relErr(y, refMatVec(x, w, b, inDim, outDim)) < 1e-5, `${m.kind} matVec ${inDim}x${outDim}`);
      m.matVec(x, w, null, y, inDim, outDim);
      assert.ok(relErr(y, refMatVec(x, w, null, inDim, outDim)) < 1e-5, `${m.kind} matVec without bias`);
      // Sparse input: the nonzero entries of a mostly-zero x.
      const xs = new Float32Array(inDim);
      const idx: number[] = [];
      for (let i = 0; i < inDim; i++) if (rng.next() < 0.3) (xs[i] = 1 + rng.int(3)), idx.push(i);
      const ys = new Float32Array(outDim);
      m.sparseRows(w, Int32Array.from(idx), Float32Array.from(idx, (i) => xs[i]), idx.length, b, ys, inDim, outDim);
      assert.ok(relErr(ys, refMatVec(xs, w, b, inDim, outDim)) < 1e-5, `${m.kind} sparseRows ${inDim}x${outDim} (${idx.length} rows)`);
      assert.throws(() => m.sparseRows(w, Int32Array.of(inDim), Float32Array.of(1), 1, b, ys, inDim, outDim), /outside the weight/);
    }
  }
});

test('erf to float32 precision across its range; GELU and LayerNorm rows', () => {
  // Reference values of erf (to 1e-12).
  const known: [number, number][] = [[0, 0], [0.1, 0.1124629160182849], [0.49, 0.5116683753999219], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [3.5, 0.9999992569016276], [-1.3, -0.9340079449406524]];
  for (const [x, want] of known) assert.ok(Math.abs(erf(x) - want) < 2e-7, `erf(${x}) = ${erf(x)}, want ${want}`);
  const g = Float32Array.of(-3, -0.5, 0, 0.5, 2);
  geluInPlace(g, g.length);
  const wantG = [-0.0040496, -0.1542687, 0, 0.3457312, 1.9544997];
  g.forEach((v, i) => assert.ok(Math.abs(v - wantG[i]) < 1e-6, `gelu ${i}: ${v}`));
  const x = Float32Array.of(1, 2, 3, 4);
  const y = new Float32Array(4);
  layerNormRow(x, Float32Array.of(1, 1, 2, 1), Float32Array.of(0, 0, 0, 0.5), 1e-5, y, 4);
  const r = 1 / Math.sqrt(1.25 + 1e-5);
  [-1.5 * r, -0.5 * r, 2 * 0.5 * r, 1.5 * r + 0.5].forEach((v, i) => assert.ok(Math.abs(y[i] - v) < 1e-6));
});

test.run();
