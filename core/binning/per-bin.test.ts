import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { expectedCountsFromGrid, meanPerBin, wheelSpeedPerBin, type RateGrid } from './per-bin.ts';

const close = (a: number, b: number, tol = 1e-6) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

test('wheel speed: a constant-velocity stretch gives |v| in its bins and 0 where the wheel rests', () => {
  // 1 kHz samples: still until t=10, then 2 rad/s backwards until t=11, then still.
  const times = Float64Array.from({ length: 20000 }, (_, i) => i / 1000);
  const pos = times.map((t) => (t < 10 ? 0 : t < 11 ? -2 * (t - 10) : -2));
  const v = wheelSpeedPerBin(times, pos, { alignTimes: new Float64Array([10]), windowS: [-0.2, 1.2], binSizeMs: 20 });
  assert.is(v.length, 70);
  assert.ok(close(v[0], 0) && close(v[9], 0), 'still before the movement');
  for (let b = 10; b < 60; b++) assert.ok(close(v[b], 2, 1e-4), `bin ${b}: ${v[b]}`);
  assert.ok(close(v[65], 0));
});

test('wheel speed interpolates irregular samples at the bin edges', () => {
  // Two samples only: linear position 0 -> 3 rad over [0, 3] s: speed 1 rad/s everywhere inside.
  const v = wheelSpeedPerBin(new Float64Array([0, 3]), new Float64Array([0, 3]), { alignTimes: new Float64Array([1, 2.5]), windowS: [0, 1], binSizeMs: 250 });
  assert.equal(Array.from(v.slice(0, 4)).map((x) => Math.round(x * 1e6) / 1e6), [1, 1, 1, 1]);
  // Second trial runs past the last sample: position held, speed 0 after t=3.
  assert.equal(Array.from(v.slice(4)).map((x) => Math.round(x * 1e6) / 1e6), [1, 1, 0, 0]);
});

test('motion energy: mean of the samples in each bin, [start, end); empty bins interpolate', () => {
  const times = new Float64Array([0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.6]);
  const vals = new Float64Array([1, 3, 10, 20, 5, NaN, 9]);
  const m = meanPerBin(times, vals, { alignTimes: new Float64Array([0]), windowS: [0, 0.5], binSizeMs: 100 });
  // [0,0.1): 1,3 -> 2; [0.1,0.2): 10,20 -> 15; [0.2,0.3): 5 (NaN skipped); [0.3,0.4) and [0.4,0.5): none
  // -> interpolated at 0.35 and 0.45 between (0.25, NaN)... the neighbours of 0.35 are 0.25 (NaN) and 0.6.
  assert.ok(close(m[0], 2) && close(m[1], 15) && close(m[2], 5));
  assert.ok(Number.isNaN(m[3]), 'interpolating next to a NaN sample stays NaN');
  const m2 = meanPerBin(new Float64Array([0, 1]), new Float64Array([0, 10]), { alignTimes: new Float64Array([0]), windowS: [0.3, 0.5], binSizeMs: 100 });
  assert.ok(close(m2[0], 3.5) && close(m2[1], 4.5), `${m2[0]} ${m2[1]}`);
});

function grid(nTrials: number, nSteps: number, nNeurons: number, f: (i: number, j: number, n: number) => number, stepMs = 20, gridStartS = -0.5): RateGrid {
  const rates = new Float32Array(nTrials * nSteps * nNeurons);
  for (let i = 0; i < nTrials; i++) for (let j = 0; j < nSteps; j++) for (let n = 0; n < nNeurons; n++) rates[(i * nSteps + j) * nNeurons + n] = f(i, j, n);
  return { rates, nTrials, nSteps, nNeurons, stepMs, gridStartS };
}

test('expected counts: aligned bins take rate x width; neurons can be reordered', () => {
  const g = grid(3, 100, 2, (i, j, n) => 10 * (n + 1) + j + 100 * i);
  const stimOn = new Float64Array([5, 9, 14]);
  const out = expectedCountsFromGrid(g, stimOn, Int32Array.from([2, 0]), { alignTimes: new Float64Array([14, 5]), windowS: [-0.5, 1.5], binSizeMs: 20 }, Int32Array.from([1, 0]))!;
  assert.ok(out);
  // kept trial 0 is grid trial 2, bin 7, output neuron 0 = grid neuron 1
  assert.ok(close(out[(0 * 100 + 7) * 2 + 0], (20 + 7 + 200) * 0.02));
  assert.ok(close(out[(1 * 100 + 99) * 2 + 1], (10 + 99) * 0.02));
});

test('expected counts integrate exactly across unaligned steps and coarser bins', () => {
  // Rate = step index j (Hz) on 10 ms steps; a 30 ms bin offset by 5 ms covers halves and wholes.
  const g = grid(1, 200, 1, (_i, j) => j, 10, -0.5);
  const stimOn = new Float64Array([3]);
  // align at stimOn + 0.105 with window [-0.5, 0.1]: window start in grid time = 0.105 s (step 10.5).
  const out = expectedCountsFromGrid(g, stimOn, Int32Array.from([0]), { alignTimes: new Float64Array([3.105]), windowS: [-0.5, 0.1], binSizeMs: 30 }, Int32Array.from([0]))!;
  // bin 0 covers steps 10.5..13.5: 0.005*10 + 0.01*(11+12+13)... precisely half of 10 and half of 13
  const want0 = 0.005 * 10 + 0.01 * 11 + 0.01 * 12 + 0.005 * 13;
  assert.ok(close(out[0], want0, 1e-5), `${out[0]} vs ${want0}`);
  // Total over the window = integral of the step function over [0.105, 0.705).
  let total = 0;
  for (const x of out) total += x;
  let want = 0;
  for (let t = 0.105; t < 0.705 - 1e-12; t += 0.0005) want += Math.floor(t / 0.01 + 1e-9) * 0.0005;
  assert.ok(close(total, want, 1e-4), `${total} vs ${want}`);
});

test('expected counts: null when the bins leave the grid; NaN for a neuron with no grid column', () => {
  const g = grid(1, 100, 1, () => 5);
  const stimOn = new Float64Array([3]);
  assert.is(expectedCountsFromGrid(g, stimOn, Int32Array.from([0]), { alignTimes: new Float64Array([3]), windowS: [-0.6, 1.4], binSizeMs: 20 }, Int32Array.from([0])), null);
  const out = expectedCountsFromGrid(g, stimOn, Int32Array.from([0]), { alignTimes: new Float64Array([3]), windowS: [-0.5, 1.5], binSizeMs: 20 }, Int32Array.from([0, -1]))!;
  assert.ok(close(out[0], 0.1) && Number.isNaN(out[1]));
});

test.run();
