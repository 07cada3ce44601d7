import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng } from '../rng.ts';
import { loadAllenRegions } from '../atlas/regions.ts';
import { DEFAULT_SIZES, drawSpikes, pRightward, simulateSession, simulateTrials, type SimSession, type SimSizes } from './model.ts';

const regions = await loadAllenRegions();
const atlasIdOf = (a: string) => regions.idOf(a)!;
const small: SimSizes = { ...DEFAULT_SIZES, trials: [20, 30], neurons: [30, 60], voidUnits: 2 };

test('task: psychometric slope is positive and the block prior biases zero-contrast choices', () => {
  const { trials: t } = simulateTrials(4000, createRng(11));
  const byContrast = new Map<number, [number, number]>();
  const zero: Record<string, [number, number]> = {};
  for (let i = 0; i < 4000; i++) {
    if (t.choice[i] === 0) continue;
    const s = (Number.isFinite(t.contrastRight[i]) ? t.contrastRight[i] : 0) - (Number.isFinite(t.contrastLeft[i]) ? t.contrastLeft[i] : 0);
    const right = t.choice[i] === -1 ? 1 : 0; // ALF: -1 is the rightward (counter-clockwise) turn
    const e = byContrast.get(s) ?? [0, 0];
    byContrast.set(s, [e[0] + right, e[1] + 1]);
    if (s === 0 && t.probabilityLeft[i] !== 0.5) {
      const z = (zero[t.probabilityLeft[i]] ??= [0, 0]);
      z[0] += right;
      z[1]++;
    }
  }
  const levels = [...byContrast.keys()].sort((a, b) => a - b);
  assert.equal(levels, [-1, -0.25, -0.125, -0.0625, 0, 0.0625, 0.125, 0.25, 1]);
  const p = levels.map((s) => byContrast.get(s)![0] / byContrast.get(s)![1]);
  // Least-squares slope of P(right) on signed contrast, and the ends of the curve.
  const mx = levels.reduce((a, b) => a + b) / levels.length;
  const my = p.reduce((a, b) => a + b) / p.length;
  const slope = levels.reduce((s, x, i) => s + (x - mx) * (p[i] - my), 0) / levels.reduce((s, x) => s + (x - mx) ** 2, 0);
  assert.ok(slope > 0.3, `slope ${slope}`);
  assert.ok(p[0] < 0.15 && p[p.length - 1] > 0.85, `ends ${p[0]} ${p[p.length - 1]}`);
  const pr = (pl: number) => zero[pl][0] / zero[pl][1];
  assert.ok(pr(0.2) > pr(0.8) + 0.1, `prior bias: P(right | pL=0.2) ${pr(0.2)} vs pL=0.8 ${pr(0.8)}`);
  assert.ok(pRightward(0.25, 0.5) > pRightward(0.0625, 0.5));
});

test('task: blocks, timing order, reaction times mostly inside the reference filter', () => {
  const { trials: t } = simulateTrials(600, createRng(5));
  const pl = Array.from(t.probabilityLeft);
  assert.ok(pl.slice(0, 90).every((x) => x === 0.5));
  assert.equal(new Set(pl.slice(90)), new Set([0.2, 0.8]));
  let inside = 0;
  let outside = 0;
  let nogo = 0;
  for (let i = 0; i < 600; i++) {
    assert.ok(t.intervals_0[i] < t.goCue_times[i] && t.goCue_times[i] < t.stimOn_times[i] && t.feedback_times[i] < t.intervals_1[i]);
    if (i) assert.ok(t.intervals_0[i] >= t.intervals_1[i - 1]);
    if (t.choice[i] === 0) {
      nogo++;
      assert.ok(Number.isNaN(t.firstMovement_times[i]));
      continue;
    }
    assert.ok(t.firstMovement_times[i] < t.response_times[i] && t.response_times[i] <= t.feedback_times[i]);
    const rt = t.firstMovement_times[i] - t.stimOn_times[i];
    if (rt >= 0.08 && rt <= 2) inside++;
    else outside++;
    assert.is(t.feedbackType[i], (t.choice[i] === 1) === Number.isFinite(t.contrastLeft[i]) ? 1 : -1);
    assert.ok(Number.isFinite(t.contrastLeft[i]) !== Number.isFinite(t.contrastRight[i]));
  }
  // About 72 % inside: 22.8 % of first movements come under 80 ms (as in the IBL brain-wide map), ~4 % after 2 s, ~1 % no-go.
  assert.ok(inside / 600 > 0.65 && outside > 5 && nogo >= 1, `inside ${inside}, outside ${outside}, no-go ${nogo}`);
});

test('neurons: 3-6 regions, sparse units, void units, rates and anatomy consistent', () => {
  const seen = new Set<number>();
  let sparse = 0;
  for (let seed = 1; seed <= 5; seed++) {
    const s = simulateSession(seed, small, atlasIdOf);
    const R = s.regions.length;
    seen.add(R);
    assert.ok(R >= 3 && R <= 6);
    const N = s.neurons.length;
    assert.ok(N >= 30 && N <= 60);
    assert.is(s.neurons.filter((n) => n.region < 0).length, 2);
    assert.is(s.trueRates.length, s.trials.stimOn_times.length * s.nSteps * N);
    // Empirical rates from the spikes: log-normal spread with sparse units below 0.5 Hz.
    const rates = s.probes.flatMap((p) => Array.from(p.clusterRateHz));
    assert.ok(Math.max(...rates) / Math.min(...rates) > 20, 'a wide spread of firing rates');
    sparse += rates.filter((r) => r < 0.5).length;
    for (const p of s.probes) {
      assert.ok(p.times.every((t, i) => i === 0 || t >= p.times[i - 1]), 'spike times sorted');
      // Each cluster's channel carries its region's Allen id; void units sit on id-0 channels.
      const mine = s.neurons.filter((n) => n.probe === p.probe);
      mine.forEach((n, c) => {
        assert.is(n.clusterId, c);
        const want = n.region >= 0 ? s.regions[n.region].atlasId : 0;
        assert.is(p.channelAtlasIds[p.clusterChannels[c]], want);
      });
      // Regions stacked along depth: deeper-listed (dorsal) regions above the later ones.
      const bands = s.regions.filter((g) => g.probe === p.probe);
      for (let j = 1; j < bands.length; j++) assert.ok(bands[j].channels[1] <= bands[j - 1].channels[0]);
    }
  }
  assert.ok(seen.size >= 2, 'region count varies across sessions');
  assert.ok(sparse >= 3, `${sparse} sparse units (< 0.5 Hz)`);
});

/** Held-out R^2 of region `to`'s log true rates from region `from`'s, `lag` grid steps earlier. */
function r2FromPast(s: SimSession, from: number, to: number, lag: number): number {
  const N = s.neurons.length;
  const T = s.trials.stimOn_times.length;
  const S = s.nSteps;
  const cols = (r: number) => s.neurons.flatMap((n, j) => (n.region === r ? [j] : []));
  const xs = cols(from);
  const ys = cols(to);
  const logR = (i: number, j: number, n: number) => Math.log(s.trueRates[(i * S + j) * N + n]);
  // Remove the trial-averaged time course (what the task drives in every region alike).
  const mean = new Float64Array(S * N);
  for (let i = 0; i < T; i++) for (let j = 0; j < S; j++) for (let n = 0; n < N; n++) mean[j * N + n] += logR(i, j, n) / T;
  const resid = (i: number, j: number, n: number) => logR(i, j, n) - mean[j * N + n];
  const p = xs.length + 1;
  const xtx = new Float64Array(p * p);
  const xty = ys.map(() => new Float64Array(p));
  const feat = (i: number, j: number) => [1, ...xs.map((n) => resid(i, j - lag, n))];
  for (let i = 0; i < T; i += 2) {
    for (let j = lag; j < S; j++) {
      const f = feat(i, j);
      for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) xtx[a * p + b] += f[a] * f[b];
      ys.forEach((n, k) => f.forEach((v, a) => (xty[k][a] += v * resid(i, j, n))));
    }
  }
  for (let a = 1; a < p; a++) xtx[a * p + a] += 1e-3 * xtx[a * p + a] + 1e-9;
  const w = xty.map((rhs) => solve(xtx, rhs, p));
  let sse = 0;
  let sst = 0;
  for (let i = 1; i < T; i += 2) {
    for (let j = lag; j < S; j++) {
      const f = feat(i, j);
      ys.forEach((n, k) => {
        const y = resid(i, j, n);
        const yhat = f.reduce((acc, v, a) => acc + v * w[k][a], 0);
        sse += (y - yhat) ** 2;
        sst += y * y;
      });
    }
  }
  return 1 - sse / sst;
}

function solve(m: Float64Array, rhs: Float64Array, p: number): Float64Array {
  const a = Float64Array.from(m);
  const b = Float64Array.from(rhs);
  for (let c = 0; c < p; c++) {
    let piv = c;
    for (let r = c + 1; r < p; r++) if (Math.abs(a[r * p + c]) > Math.abs(a[piv * p + c])) piv = r;
    for (let k = 0; k < p; k++) [a[c * p + k], a[piv * p + k]] = [a[piv * p + k], a[c * p + k]];
    [b[c], b[piv]] = [b[piv], b[c]];
    for (let r = c + 1; r < p; r++) {
      const f = a[r * p + c] / a[c * p + c];
      for (let k = c; k < p; k++) a[r * p + k] -= f * a[c * p + k];
      b[r] -= f * b[c];
    }
  }
  const x = new Float64Array(p);
  for (let r = p - 1; r >= 0; r--) {
    let s = b[r];
    for (let k = r + 1; k < p; k++) s -= a[r * p + k] * x[k];
    x[r] = s / a[r * p + r];
  }
  return x;
}

test("coupling is real and directed: a driven region's rates are predicted from its driver's past, not without coupling", () => {
  const sizes: SimSizes = { ...small, trials: [100, 100], neurons: [45, 45], regions: [3, 3], maxProbes: 1, voidUnits: 0 };
  const coupled = simulateSession(99, sizes, atlasIdOf);
  const control = simulateSession(99, { ...sizes, couplingStrength: 0 }, atlasIdOf);
  assert.is(coupled.coupling.length, 2, 'a tree over 3 regions has 2 directed edges');
  assert.ok(control.coupling.every((c) => c.strength === 0));
  const idx = (a: string) => coupled.regions.findIndex((r) => r.acronym === a);
  const lag = Math.round(coupled.coupling[0].lagMs / coupled.stepMs);
  for (const c of coupled.coupling) {
    const withC = r2FromPast(coupled, idx(c.from), idx(c.to), lag);
    const without = r2FromPast(control, idx(c.from), idx(c.to), lag);
    const reverse = r2FromPast(coupled, idx(c.to), idx(c.from), lag);
    assert.ok(withC > 0.2, `${c.from} -> ${c.to}: held-out R2 ${withC.toFixed(3)} from the driver's past`);
    assert.ok(withC > without + 0.15, `${c.from} -> ${c.to}: R2 ${withC.toFixed(3)} coupled vs ${without.toFixed(3)} uncoupled`);
    assert.ok(withC > reverse, `${c.from} -> ${c.to}: directed (R2 ${withC.toFixed(3)} forward, ${reverse.toFixed(3)} backward)`);
  }
});

test('deterministic for a seed, different across seeds', () => {
  const a = simulateSession(7, small, atlasIdOf);
  const b = simulateSession(7, small, atlasIdOf);
  const c = simulateSession(8, small, atlasIdOf);
  assert.equal(a.probes[0].times, b.probes[0].times);
  assert.equal(a.trueRates, b.trueRates);
  assert.not.equal(a.probes[0].times.length, c.probes[0].times.length);
});

test('shared dynamics: a region has the same A, B (and coupling to the same parent) in every session; without it they differ', () => {
  const sizes: SimSizes = { ...small, regions: [5, 6] };
  const world = { worldSeed: 3 };
  const shared = [1, 2, 3, 4].map((seed) => simulateSession(seed, sizes, atlasIdOf, world));
  const own = [1, 2, 3, 4].map((seed) => simulateSession(seed, sizes, atlasIdOf));
  const common = (ss: SimSession[]) => ss[0].dynamics.map((x) => x.acronym).find((a) => ss[1].dynamics.some((y) => y.acronym === a))!;
  const region = (s: SimSession, a: string) => s.dynamics.find((x) => x.acronym === a)!;
  let pairs = 0;
  let coupledPairs = 0;
  for (let i = 0; i < shared.length; i++) {
    for (let j = i + 1; j < shared.length; j++) {
      for (const r of shared[i].dynamics) {
        const other = shared[j].dynamics.find((x) => x.acronym === r.acronym);
        if (!other) continue;
        pairs++;
        assert.equal(other.a, r.a, `${r.acronym}: A shared`);
        assert.equal(other.b, r.b, `${r.acronym}: B shared`);
        if (r.parent && r.parent === other.parent) {
          coupledPairs++;
          assert.equal(other.k, r.k, `${r.parent} -> ${r.acronym}: coupling shared`);
        }
      }
    }
  }
  assert.ok(pairs >= 6 && coupledPairs >= 1, `compared ${pairs} region pairs, ${coupledPairs} with the same parent`);
  // Everything else stays the session's own: neurons, trials, spikes.
  assert.ok(shared[0].trials.stimOn_times.length !== shared[1].trials.stimOn_times.length || shared[0].neurons.length !== shared[1].neurons.length);
  assert.not.equal(shared[0].probes[0].times.slice(0, 50), shared[1].probes[0].times.slice(0, 50));
  // Default: the same region draws other dynamics in each session.
  const a = common(own);
  assert.not.equal(region(own[0], a).a, region(own[1], a).a, `${a}: A differs without shared dynamics`);
  assert.not.equal(region(own[0], a).b, region(own[1], a).b);
  // Another world, other dynamics; the session's own parts (trials) do not move with the world.
  const w2 = simulateSession(1, sizes, atlasIdOf, { worldSeed: 4 });
  assert.not.equal(region(w2, w2.dynamics[0].acronym).b, region(shared[0], w2.dynamics[0].acronym).b);
  assert.equal(w2.trials.stimOn_times, shared[0].trials.stimOn_times);
});

test('shared dynamics off is the default: the same bytes as a call without the option', () => {
  const a = simulateSession(7, small, atlasIdOf);
  const b = simulateSession(7, small, atlasIdOf, undefined);
  assert.equal(a.trueRates, b.trueRates);
  const s = simulateSession(7, small, atlasIdOf, { worldSeed: 0 });
  assert.equal(s.trials.stimOn_times, a.trials.stimOn_times, 'trials are the session\'s own either way');
  assert.not.equal(s.trueRates, a.trueRates, 'shared dynamics change the rates');
});

test('refractory spikes: no interval shorter than the dead time, and the mean rate is still the true rate', () => {
  for (const [rate, dead] of [[10, 0.002], [40, 0.0015], [5, 0]] as const) {
    const nSeg = 100000; // 500 s in 5 ms steps
    const { times } = drawSpikes({ n: 1, rateHz: () => rate }, nSeg, 0.005, new Int32Array(1), new Int32Array(1), 1, createRng(3), Float64Array.of(dead));
    const t = times[0];
    const observed = t.length / (nSeg * 0.005);
    assert.ok(Math.abs(observed / rate - 1) < 0.02, `rate ${rate} Hz, dead ${dead}: observed ${observed.toFixed(3)} Hz`);
    let shortest = Infinity;
    for (let i = 1; i < t.length; i++) shortest = Math.min(shortest, t[i] - t[i - 1]);
    if (dead > 0) assert.ok(shortest >= dead - 1e-12, `shortest interval ${shortest}`);
    else assert.ok(shortest < 0.0015, 'Poisson spikes without refractoriness have short intervals');
  }
});

test.run();
