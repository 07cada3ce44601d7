import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { binCount, binSpikes, columnTable, lowerBound } from './bin-spikes.ts';
import { createRng } from '../rng.ts';

/** Independent reference: for every (trial, bin, neuron), scan all spikes against the bin edges. */
function naiveCounts(times: Float64Array, neuron: ArrayLike<number>, nNeurons: number, align: Float64Array, windowS: [number, number], binSizeMs: number): Int32Array {
  const nBins = Math.round(((windowS[1] - windowS[0]) * 1000) / binSizeMs);
  const w = binSizeMs / 1000;
  const out = new Int32Array(align.length * nBins * nNeurons);
  for (let k = 0; k < align.length; k++) {
    if (!Number.isFinite(align[k])) continue;
    const s = align[k] + windowS[0];
    for (let b = 0; b < nBins; b++) {
      const lo = s + b * w;
      const hi = s + (b + 1) * w;
      for (let i = 0; i < times.length; i++) {
        const n = neuron[i];
        if (n >= 0 && times[i] >= lo && times[i] < hi) out[(k * nBins + b) * nNeurons + n]++;
      }
    }
  }
  return out;
}

function randomSpikes(seed: number, n: number, nNeurons: number, spanS: number) {
  const rng = createRng(seed);
  const times = Float64Array.from({ length: n }, () => rng.next() * spanS).sort();
  const clusters = Int32Array.from({ length: n }, () => rng.int(nNeurons));
  return { times, clusters, rng };
}

test('binCount: 20 ms over [-0.5, 1.5] is 100 bins; refuses partial bins', () => {
  assert.is(binCount([-0.5, 1.5], 20), 100);
  assert.is(binCount([-0.1, 0.2], 10), 30);
  assert.throws(() => binCount([-0.5, 1.5], 30), /whole number/);
  assert.throws(() => binCount([1, 0], 20), /whole number/);
});

test('counts equal a naive count on random data with overlapping, unsorted trial windows', () => {
  const { times, clusters, rng } = randomSpikes(3, 4000, 7, 30);
  // Windows of 2 s every ~0.7 s overlap heavily; shuffled order and one NaN trial.
  const align = Float64Array.from({ length: 30 }, (_, i) => 0.3 + i * 0.7 + rng.next() * 0.2);
  rng.shuffle(align as unknown as number[]);
  align[5] = NaN;
  const got = binSpikes({ times, clusters, nNeurons: 7, alignTimes: align, windowS: [-0.5, 1.5], binSizeMs: 20 });
  const want = naiveCounts(times, clusters, 7, align, [-0.5, 1.5], 20);
  assert.equal(Array.from(got), Array.from(want));
  // Overlap really happened: more counted than there are spikes inside any window once.
  const total = got.reduce((s, x) => s + x, 0);
  assert.ok(total > times.length, `overlapping windows count spikes twice (${total} > ${times.length})`);
});

test('counts equal a naive count for other bin sizes, windows and sparse trials', () => {
  for (const [binSizeMs, windowS] of [[10, [-0.2, 0.3]], [5, [0, 0.5]], [50, [-1, 1]]] as [number, [number, number]][]) {
    const { times, clusters, rng } = randomSpikes(binSizeMs, 3000, 4, 100);
    const align = Float64Array.from({ length: 25 }, () => 1 + rng.next() * 97);
    const got = binSpikes({ times, clusters, nNeurons: 4, alignTimes: align, windowS, binSizeMs });
    assert.equal(Array.from(got), Array.from(naiveCounts(times, clusters, 4, align, windowS, binSizeMs)), `bin ${binSizeMs} ms`);
  }
});

test('edges: [start, end) per bin; a spike on the window end is not counted', () => {
  const align = new Float64Array([10.123]);
  const s = 10.123 - 0.5;
  const w = 0.02;
  // Exactly on the left edge of bins 0, 1, 37, on the window end, and just before the start.
  const times = new Float64Array([s - 1e-9, s, s + 1 * w, s + 37 * w, s + 37 * w + 0.0199, s + 100 * w]);
  const clusters = new Int32Array(times.length);
  const got = binSpikes({ times, clusters, nNeurons: 1, alignTimes: align, windowS: [-0.5, 1.5], binSizeMs: 20 });
  const nonzero = [...got.keys()].filter((b) => got[b]).map((b) => [b, got[b]]);
  assert.equal(nonzero, [[0, 1], [1, 1], [37, 2]]);
  assert.equal(Array.from(got), Array.from(naiveCounts(times, clusters, 1, align, [-0.5, 1.5], 20)));
});

test('columnOf maps cluster ids to columns and drops the rest; `out` accumulates probes', () => {
  const times = new Float64Array([0.1, 0.2, 0.3, 0.4, 0.5]);
  const clusters = new Int32Array([5, 2, 9, 5, 77]);
  const table = columnTable([2, 5, 9], [1, 0, -1]); // cluster 9 dropped, 77 unknown
  const align = new Float64Array([0.5]);
  const out = binSpikes({ times, clusters, columnOf: table, nNeurons: 3, alignTimes: align, windowS: [-0.5, 0.5], binSizeMs: 1000 });
  assert.equal(Array.from(out), [2, 1, 0]);
  binSpikes({ times: new Float64Array([0.9]), clusters: new Int32Array([0]), columnOf: columnTable([0], [2]), nNeurons: 3, alignTimes: align, windowS: [-0.5, 0.5], binSizeMs: 1000, out });
  assert.equal(Array.from(out), [2, 1, 1]);
});

test('lowerBound finds the first index at or after t', () => {
  const t = new Float64Array([1, 2, 2, 3]);
  assert.is(lowerBound(t, 2), 1);
  assert.is(lowerBound(t, 2.5), 3);
  assert.is(lowerBound(t, 9), 4);
  assert.is(lowerBound(t, 0), 0);
});

test('refuses mismatched inputs', () => {
  assert.throws(() => binSpikes({ times: new Float64Array(3), clusters: new Int32Array(2), nNeurons: 1, alignTimes: new Float64Array(1), windowS: [0, 1], binSizeMs: 100 }), /3 spike times but 2/);
});

test.run();
