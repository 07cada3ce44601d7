import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ArchitectureModel, LeaveOneOutInput } from '../../core/architecture.ts';
import { createRng } from '../../core/rng.ts';
import { initBackend } from '../../core/tensor/backend.ts';
import * as tf from '../../core/tensor/tf.ts';
import { ndt1Architecture } from './architecture.ts';

await initBackend();

const T = 10;

function build(nNeurons: number, config: Record<string, unknown> = {}, seed = 1): ArchitectureModel {
  return ndt1Architecture.build({ dModel: 16, layers: 2, heads: 2, mlpDim: 32, maxBins: T, ...config }, { sessions: [{ sessionId: 's1', nNeurons, nBins: T }], seed });
}

function counts(u: number, n: number, seed: number, mean = 1.5): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: u * T * n }, () => rng.poisson(mean));
}

/** The reference: every copy materialised with its neuron zeroed, through the plain forward pass. */
function plain(model: ArchitectureModel, base: Float32Array, n: number, x: Omit<LeaveOneOutInput, 'input'>): Float32Array {
  const TN = T * n;
  const b = x.leftOut.length;
  const copies = new Float32Array(b * TN);
  for (let i = 0; i < b; i++) {
    copies.set(base.subarray(x.baseRow[i] * TN, (x.baseRow[i] + 1) * TN), i * TN);
    for (let t = 0; t < T; t++) copies[i * TN + t * n + x.leftOut[i]] = 0;
  }
  const y = tf.tidy(() => model.forward({ ...x, input: tf.tensor3d(copies, [b, T, n]) }, { training: false }));
  const v = y.dataSync() as Float32Array;
  y.dispose();
  return v;
}

function fast(model: ArchitectureModel, base: Float32Array, u: number, n: number, x: Omit<LeaveOneOutInput, 'input'>): Float32Array {
  const y = tf.tidy(() => model.forwardLeaveOneOut!({ ...x, input: tf.tensor3d(base, [u, T, n]) }, { training: false }));
  assert.equal(y.shape, [x.leftOut.length, T, n]);
  const v = y.dataSync() as Float32Array;
  y.dispose();
  return v;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.is(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('leave-one-out pass equals the plain pass on materialised copies, for any base layout', () => {
  const n = 9;
  const u = 3;
  const model = build(n, { sessionTokens: true });
  const base = counts(u, n, 2);
  const layouts: [number[], number[]][] = [
    [[0, 0, 1, 1, 2, 2], [0, 4, 8, 1, 2, 2]], // equal runs over every base in order, as evaluation sends them
    [[0, 0, 0, 1, 1, 2], [0, 4, 8, 1, 2, 3]], // unequal runs
    [[2, 0, 1, 1, 0, 2, 2], [5, 5, 0, 8, 3, 1, 7]], // arbitrary order, repeats and singles
    [[0, 1, 2], [3, 3, 3]], // one copy per base, in order (the identity layout)
    [[1], [6]],
  ];
  const before = tf.memory().numTensors;
  for (const [rows, left] of layouts) {
    for (const [mode, causal] of [['neuron', false], ['causal', true], ['temporal', false]] as const) {
      const x = { sessionId: 's1', mode, causal, baseRow: Int32Array.from(rows), leftOut: Int32Array.from(left) };
      const d = maxDiff(fast(model, base, u, n, x), plain(model, base, n, x));
      assert.ok(d < 1e-4, `rows ${rows} left ${left} ${mode}: max difference ${d}`);
    }
  }
  assert.is(tf.memory().numTensors, before);
  model.dispose();
});

test('the left-out neuron really is removed: its own counts do not reach any copy', () => {
  const n = 9;
  const model = build(n, {}, 3);
  const base = counts(1, n, 4);
  const changed = base.slice();
  for (let t = 0; t < T; t++) changed[t * n + 2] += 7;
  const x = { sessionId: 's1', mode: 'neuron' as const, causal: false, baseRow: Int32Array.from([0, 0]), leftOut: Int32Array.from([2, 5]) };
  const a = fast(model, base, 1, n, x);
  const b = fast(model, changed, 1, n, x);
  const TN = T * n;
  // Copy 0 leaves neuron 2 out: identical to float rounding. Copy 1 sees it: outputs move.
  assert.ok(maxDiff(a.subarray(0, TN), b.subarray(0, TN)) < 1e-5);
  assert.ok(maxDiff(a.subarray(TN), b.subarray(TN)) > 1e-3);
  model.dispose();
});

test('exact at a realistic width and padded bins (binValid per copy)', () => {
  const n = 120;
  const u = 2;
  const model = build(n, { dModel: 32, heads: 4, mlpDim: 64 }, 5);
  const base = counts(u, n, 6, 3);
  const rows = [0, 0, 0, 0, 1, 1, 1];
  const binValid = new Uint8Array(rows.length * T).fill(1);
  binValid.fill(0, T - 3, T); // the first copy's last 3 bins are padding
  const x = { sessionId: 's1', mode: 'intra-region' as const, causal: false, baseRow: Int32Array.from(rows), leftOut: Int32Array.from([0, 17, 64, 119, 0, 55, 90]), binValid };
  const d = maxDiff(fast(model, base, u, n, x), plain(model, base, n, x));
  assert.ok(d < 1e-4, `max difference ${d}`);
  model.dispose();
});

test('bad leave-one-out batches are refused naming the row', () => {
  const n = 5;
  const model = build(n);
  const input = tf.tensor3d(counts(2, n, 1), [2, T, n]);
  const call = (baseRow: number[], leftOut: number[]) =>
    model.forwardLeaveOneOut!({ sessionId: 's1', mode: 'neuron', causal: false, input, baseRow: Int32Array.from(baseRow), leftOut: Int32Array.from(leftOut) }, { training: false });
  assert.throws(() => call([0, 2], [1, 1]), /row 1 copies base row 2/);
  assert.throws(() => call([0, 1], [1, 5]), /row 1 leaves out neuron 5/);
  assert.throws(() => call([0], [1, 2]), /1 base rows for 2/);
  assert.throws(() => call([], []), /no copies/);
  assert.throws(
    () => model.forwardLeaveOneOut!({ sessionId: 'nope', mode: 'neuron', causal: false, input, baseRow: Int32Array.from([0]), leftOut: Int32Array.from([0]) }, { training: false }),
    /no stitcher for session nope/,
  );
  input.dispose();
  model.dispose();
});

test.run();
