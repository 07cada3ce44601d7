import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng, type Rng } from '../rng.ts';
import { applyMask, applicableModes, bernoulliSubset, distinctRegions, forecastSubset, sampleMask, spanSubset } from './masking.ts';
import { MTM_MODES, type BatchShape, type MaskDraw, type MaskingMode } from './types.ts';

const idx = (s: BatchShape, t: number, b: number, n: number) => (t * s.bins + b) * s.neurons + n;

/** A random shape, region labels (2-4 regions) and counts. */
function randomCase(rng: Rng, minRegions = 2) {
  const shape: BatchShape = { trials: 1 + rng.int(5), bins: 2 + rng.int(20), neurons: 3 + rng.int(25) };
  const nRegions = minRegions + rng.int(3);
  const names = ['CA1', 'VISp', 'LP', 'PO', 'MOs'].slice(0, nRegions);
  const regions = Array.from({ length: shape.neurons }, (_, n) => names[n < nRegions ? n : rng.int(nRegions)]);
  const counts = Int32Array.from({ length: shape.trials * shape.bins * shape.neurons }, () => 1 + rng.poisson(2));
  return { shape, regions, counts };
}

/** Runs `check` on many seeds and shapes. */
function forSeeds(n: number, mode: MaskingMode | 'mtm', check: (c: ReturnType<typeof randomCase>, d: MaskDraw) => void) {
  for (let seed = 1; seed <= n; seed++) {
    const rng = createRng(seed);
    const c = randomCase(rng);
    check(c, sampleMask(c.shape, c.regions, mode, rng));
  }
}

function binMasked(s: BatchShape, m: Uint8Array, t: number, b: number): 'all' | 'none' | 'some' {
  let k = 0;
  for (let n = 0; n < s.neurons; n++) k += m[idx(s, t, b, n)];
  return k === s.neurons ? 'all' : k === 0 ? 'none' : 'some';
}

function neuronMasked(s: BatchShape, m: Uint8Array, t: number, n: number): 'all' | 'none' | 'some' {
  let k = 0;
  for (let b = 0; b < s.bins; b++) k += m[idx(s, t, b, n)];
  return k === s.bins ? 'all' : k === 0 ? 'none' : 'some';
}

test('masked input is 0 exactly where the mode masks, and counts elsewhere (every mode)', () => {
  for (const mode of ['temporal', 'neuron', 'causal', 'inter-region', 'intra-region', 'token', 'mtm'] as const) {
    forSeeds(40, mode, ({ counts }, d) => {
      const input = applyMask(counts, d.masked);
      // Counts are >= 1 here, so a 0 can only come from the mask.
      for (let i = 0; i < input.length; i++) assert.is(input[i] === 0, d.masked[i] === 1, `${mode} entry ${i}`);
      for (let i = 0; i < input.length; i++) if (!d.masked[i]) assert.is(input[i], counts[i]);
    });
  }
});

test('temporal masks whole bins and scores exactly them; causal too, with the causal flag', () => {
  for (const mode of ['temporal', 'causal'] as const) {
    forSeeds(60, mode, ({ shape }, d) => {
      assert.is(d.mode, mode);
      assert.is(d.causal, mode === 'causal');
      for (let t = 0; t < shape.trials; t++) {
        let masked = 0;
        for (let b = 0; b < shape.bins; b++) {
          const state = binMasked(shape, d.masked, t, b);
          assert.ok(state !== 'some', `${mode}: bin ${b} of trial ${t} partly masked`);
          if (state === 'all') masked++;
        }
        assert.ok(masked >= 1 && masked < shape.bins, `${mode}: ${masked} of ${shape.bins} bins masked`);
      }
      assert.equal(d.lossMask, d.masked, `${mode} scores only (and all) masked bins`);
    });
  }
});

test('neuron masks whole neurons and scores exactly them', () => {
  forSeeds(60, 'neuron', ({ shape }, d) => {
    for (let t = 0; t < shape.trials; t++) {
      let masked = 0;
      for (let n = 0; n < shape.neurons; n++) {
        const state = neuronMasked(shape, d.masked, t, n);
        assert.ok(state !== 'some');
        if (state === 'all') masked++;
      }
      assert.ok(masked >= 1 && masked < shape.neurons);
    }
    assert.equal(d.lossMask, d.masked);
  });
});

test('inter-region scores exactly all neurons of one region present', () => {
  forSeeds(80, 'inter-region', ({ shape, regions }, d) => {
    assert.is(d.mode, 'inter-region');
    assert.ok(d.region !== undefined && regions.includes(d.region));
    for (let t = 0; t < shape.trials; t++) {
      for (let n = 0; n < shape.neurons; n++) {
        const want = regions[n] === d.region ? 'all' : 'none';
        assert.is(neuronMasked(shape, d.lossMask, t, n), want);
        assert.is(neuronMasked(shape, d.masked, t, n), want);
      }
    }
  });
});

test('intra-region zeroes every neuron outside the region and scores only masked neurons inside', () => {
  forSeeds(80, 'intra-region', ({ shape, regions }, d) => {
    assert.ok(d.region !== undefined && regions.includes(d.region));
    const inside = regions.map((r) => r === d.region);
    for (let t = 0; t < shape.trials; t++) {
      let scoredInside = 0;
      for (let n = 0; n < shape.neurons; n++) {
        const scored = neuronMasked(shape, d.lossMask, t, n);
        const zeroed = neuronMasked(shape, d.masked, t, n);
        assert.ok(scored !== 'some' && zeroed !== 'some');
        if (!inside[n]) {
          assert.is(zeroed, 'all', `neuron ${n} outside ${d.region} not zeroed`);
          assert.is(scored, 'none', `neuron ${n} outside ${d.region} scored`);
        } else {
          assert.is(scored, zeroed, `inside neuron ${n}: scored iff masked`);
          if (scored === 'all') scoredInside++;
        }
      }
      assert.ok(scoredInside >= 1);
    }
  });
});

test('ratios follow the params (per-bin and per-neuron frequencies)', () => {
  const rng = createRng(7);
  const shape = { trials: 50, bins: 100, neurons: 40 };
  const regions = Array.from({ length: 40 }, (_, n) => (n < 20 ? 'A' : 'B'));
  const frac = (d: MaskDraw) => d.lossMask.reduce((a, b) => a + b, 0) / d.lossMask.length;
  assert.ok(Math.abs(frac(sampleMask(shape, regions, 'temporal', rng)) - 0.3) < 0.03);
  assert.ok(Math.abs(frac(sampleMask(shape, regions, 'causal', rng)) - 0.6) < 0.03);
  assert.ok(Math.abs(frac(sampleMask(shape, regions, 'neuron', rng)) - 0.3) < 0.04);
  assert.ok(Math.abs(frac(sampleMask(shape, regions, 'temporal', rng, { temporal: 0.1 })) - 0.1) < 0.02);
  // intra-region: 30 % of the 20 neurons of one region, i.e. 15 % of all entries.
  assert.ok(Math.abs(frac(sampleMask(shape, regions, 'intra-region', rng)) - 0.15) < 0.03);
  assert.throws(() => sampleMask(shape, regions, 'neuron', rng, { neuron: 1.5 }), /ratio neuron/);
});

test('mtm picks each of its four modes with about equal frequency', () => {
  const rng = createRng(11);
  const shape = { trials: 2, bins: 5, neurons: 6 };
  const regions = ['A', 'A', 'B', 'B', 'C', 'C'];
  const seen: Record<string, number> = {};
  const draws = 4000;
  for (let i = 0; i < draws; i++) {
    const d = sampleMask(shape, regions, 'mtm', rng);
    seen[d.mode] = (seen[d.mode] ?? 0) + 1;
  }
  assert.equal(Object.keys(seen).sort(), [...MTM_MODES].sort());
  // Binomial sd at n=4000, p=0.25 is ~27; 5 sd = 137.
  for (const m of MTM_MODES) assert.ok(Math.abs(seen[m] - draws / 4) < 137, `${m}: ${seen[m]}`);
});

test('same seed gives the same masks; another seed another', () => {
  const c = randomCase(createRng(3));
  for (const mode of ['temporal', 'neuron', 'causal', 'inter-region', 'intra-region', 'token', 'mtm'] as const) {
    const a = sampleMask(c.shape, c.regions, mode, createRng(99));
    const b = sampleMask(c.shape, c.regions, mode, createRng(99));
    assert.equal(a, b, mode);
  }
  const big = { trials: 4, bins: 50, neurons: 30 };
  const regions = Array.from({ length: 30 }, (_, n) => String(n % 3));
  assert.not.equal(sampleMask(big, regions, 'temporal', createRng(1)).masked, sampleMask(big, regions, 'temporal', createRng(2)).masked);
});

test('one region: inter-region falls back to neuron masking and mtm never draws it', () => {
  const shape = { trials: 3, bins: 6, neurons: 5 };
  const regions = Array(5).fill('CA1');
  assert.equal(applicableModes('inter-region', regions), ['neuron']);
  assert.equal(applicableModes('mtm', regions), ['neuron', 'causal', 'intra-region']);
  const rng = createRng(5);
  assert.is(sampleMask(shape, regions, 'inter-region', rng).mode, 'neuron');
  for (let i = 0; i < 200; i++) assert.is.not(sampleMask(shape, regions, 'mtm', rng).mode, 'inter-region');
  // intra-region with one region: nothing outside, so it is neuron masking inside it.
  const d = sampleMask(shape, regions, 'intra-region', rng);
  assert.equal(d.lossMask, d.masked);
});

test('empty and full draws are corrected: at least one chosen, at least one left', () => {
  const rng = createRng(1);
  for (let i = 0; i < 200; i++) {
    const none = bernoulliSubset(4, 0, rng);
    assert.is(none.reduce((a, b) => a + b, 0), 1);
    const all = bernoulliSubset(4, 1, rng);
    assert.is(all.reduce((a, b) => a + b, 0), 3);
  }
  assert.equal([...bernoulliSubset(1, 1, rng)], [1]);
});

test('bad shapes and labels are refused with a message', () => {
  const rng = createRng(1);
  assert.throws(() => sampleMask({ trials: 1, bins: 2, neurons: 3 }, ['A', 'B'], 'neuron', rng), /2 region labels for 3 neurons/);
  assert.throws(() => sampleMask({ trials: 0, bins: 2, neurons: 2 }, ['A', 'B'], 'neuron', rng), /trials must be a positive integer/);
  assert.throws(() => applyMask(new Int32Array(3), new Uint8Array(4)), /3 counts for a mask of 4/);
  assert.equal(distinctRegions(['b', 'a', 'b']), ['a', 'b']);
});


/** Runs of consecutive 1s in one trial's bin selection. */
function runsOf(sel: Uint8Array): number[] {
  const runs: number[] = [];
  let k = 0;
  for (const v of sel) {
    if (v) k++;
    else if (k) (runs.push(k), (k = 0));
  }
  if (k) runs.push(k);
  return runs;
}

test('spanSubset: span 1 is exactly bernoulliSubset; longer spans cover about the ratio in runs', () => {
  for (let seed = 1; seed <= 20; seed++) {
    assert.equal(spanSubset(30, 0.3, 1, createRng(seed)), bernoulliSubset(30, 0.3, createRng(seed)));
  }
  const rng = createRng(5);
  let covered = 0;
  let total = 0;
  let longest = 0;
  for (let i = 0; i < 400; i++) {
    const sel = spanSubset(100, 0.3, 10, rng);
    covered += sel.reduce((a, b) => a + b, 0);
    total += sel.length;
    longest = Math.max(longest, ...runsOf(sel));
    assert.ok(sel.some((v) => v === 1) && sel.some((v) => v === 0));
  }
  // Overlapping spans cover a little less than the ratio; runs reach beyond one span's length when they touch.
  assert.ok(covered / total > 0.22 && covered / total < 0.31, `coverage ${covered / total}`);
  assert.ok(longest >= 10, `longest run ${longest}`);
});

test('forecastSubset: one trailing block, at least one bin left before it', () => {
  const rng = createRng(9);
  const cuts = new Set<number>();
  for (let i = 0; i < 500; i++) {
    const sel = forecastSubset(12, rng);
    const cut = sel.indexOf(1);
    assert.ok(cut >= 1 && cut <= 11, `cut ${cut}`);
    for (let b = 0; b < 12; b++) assert.is(sel[b], b >= cut ? 1 : 0);
    cuts.add(cut);
  }
  assert.is(cuts.size, 11, 'every cut point is drawn');
  assert.equal(forecastSubset(1, rng), Uint8Array.of(1));
});

test('causal forecast share and time spans reach sampleMask; the defaults keep the old draws', () => {
  const shape: BatchShape = { trials: 200, bins: 40, neurons: 3 };
  const regions = ['CA1', 'LP', 'CA1'];
  assert.equal(sampleMask(shape, regions, 'causal', createRng(3)), sampleMask(shape, regions, 'causal', createRng(3), {}, { span: 1, forecast: 0 }));
  const d = sampleMask(shape, regions, 'causal', createRng(3), {}, { forecast: 1 });
  for (let t = 0; t < shape.trials; t++) {
    const bins = Uint8Array.from({ length: shape.bins }, (_, b) => d.masked[idx(shape, t, b, 0)]);
    assert.is(runsOf(bins).length, 1, 'one block per trial');
    assert.is(bins[shape.bins - 1], 1, 'the block reaches the last bin');
  }
  const half = sampleMask(shape, regions, 'causal', createRng(4), {}, { forecast: 0.5 });
  let forecasts = 0;
  for (let t = 0; t < shape.trials; t++) {
    const bins = Uint8Array.from({ length: shape.bins }, (_, b) => half.masked[idx(shape, t, b, 0)]);
    const r = runsOf(bins);
    if (r.length === 1 && bins[shape.bins - 1] === 1 && r[0] > 3) forecasts++;
  }
  assert.ok(forecasts > 70 && forecasts < 140, `${forecasts} of 200 trials look like forecasts`);
  const spans = sampleMask(shape, regions, 'temporal', createRng(6), {}, { span: 8 });
  const longest = Math.max(...Array.from({ length: shape.trials }, (_, t) => Math.max(0, ...runsOf(Uint8Array.from({ length: shape.bins }, (_, b) => spans.masked[idx(shape, t, b, 0)])))));
  assert.ok(longest >= 8, `temporal spans: longest run ${longest}`);
  assert.throws(() => sampleMask(shape, regions, 'temporal', createRng(1), {}, { span: 0 }), /span must be an integer >= 1/);
  assert.throws(() => sampleMask(shape, regions, 'causal', createRng(1), {}, { forecast: 2 }), /forecast must be in \[0, 1\]/);
});
test('token masks whole (bin, block of tokenNeurons) cells, scores exactly them, never causal', () => {
  for (const tokenNeurons of [1, 4, 7, 64]) {
    for (let seed = 1; seed <= 30; seed++) {
      const rng = createRng(seed);
      const c = randomCase(rng);
      const d = sampleMask(c.shape, c.regions, 'token', rng, {}, { tokenNeurons });
      assert.is(d.mode, 'token');
      assert.is(d.causal, false);
      assert.equal(d.lossMask, d.masked);
      const blocks = Math.ceil(c.shape.neurons / tokenNeurons);
      for (let t = 0; t < c.shape.trials; t++) {
        let cellsMasked = 0;
        for (let b = 0; b < c.shape.bins; b++) {
          for (let k = 0; k < blocks; k++) {
            const n0 = k * tokenNeurons;
            const n1 = Math.min(c.shape.neurons, n0 + tokenNeurons);
            const first = d.masked[idx(c.shape, t, b, n0)];
            for (let n = n0; n < n1; n++) assert.is(d.masked[idx(c.shape, t, b, n)], first, `cell (${b}, ${k}) of trial ${t} partly masked`);
            cellsMasked += first;
          }
        }
        // The at-least-one / not-all rule over the trial's cells.
        assert.ok(cellsMasked >= 1 && cellsMasked < c.shape.bins * blocks, `trial ${t}: ${cellsMasked} of ${c.shape.bins * blocks} cells`);
      }
    }
  }
});

test('token masks about its ratio of cells, and rejects a bad block size', () => {
  const shape: BatchShape = { trials: 50, bins: 40, neurons: 30 };
  const regions = Array.from({ length: 30 }, (_, n) => (n < 15 ? 'A' : 'B'));
  const frac = (m: Uint8Array) => m.reduce((a, v) => a + v, 0) / m.length;
  assert.ok(Math.abs(frac(sampleMask(shape, regions, 'token', createRng(1), {}, { tokenNeurons: 10 }).masked) - 0.3) < 0.03);
  assert.ok(Math.abs(frac(sampleMask(shape, regions, 'token', createRng(2), { token: 0.6 }, { tokenNeurons: 10 }).masked) - 0.6) < 0.03);
  assert.throws(() => sampleMask(shape, regions, 'token', createRng(1), {}, { tokenNeurons: 0 }), /tokenNeurons must be an integer >= 1/);
  // mtm never draws the token baseline.
  for (let i = 0; i < 100; i++) assert.is.not(sampleMask(shape, regions, 'mtm', createRng(i)).mode, 'token');
});

test.run();
