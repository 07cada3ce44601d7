// The generative model of simulated IBL-like sessions (docs/method.md §2.6).
//
// Generative model, per session (all draws from one seeded generator, forked per part):
// 1. Task. IBL-style blocks of probabilityLeft (90 trials at 0.5, then 0.2/0.8 alternating,
//    lengths 20-100, truncated exponential of mean 60). Per trial: a stimulus on the left with
//    probability probabilityLeft, contrast in {0, 0.0625, 0.125, 0.25, 1} (0 half as often as each
//    other level). Choice from a psychometric curve P(rightward) = lapse + (1 - 2 lapse)
//    Phi((s - bias(prior)) / width) of the signed contrast s = right - left; rightward is choice -1
//    (ALF). Reaction times log-normal (faster at high contrast), 22.8 % of first movements under
//    80 ms after the stimulus (as in the IBL brain-wide map), ~4 % slow (> 2 s) and ~1 % no-go
//    trials (choice 0, no movement, feedback 60 s later); feedback at the end of a ~150 ms wheel
//    turn; 1.5 s after a reward or 2.5 s after an error the next trial starts, and its stimulus
//    comes after a quiet period with a long tail (feedback to next stimulus: median ~2.8 s / 3.8 s).
// 2. Latents. Each region r has a d-dimensional linear dynamical system on a grid of simDtMs:
//      x_r[k+1] = A_r x_r[k] + B_r u[k] + sum_{p -> r} K_rp x_p[k - lag] + noise,
//    A_r a damped rotation (time constant 0.1-0.4 s, 1-4 Hz) plus a decaying axis, noise scaled so
//    the stationary variance is ~1. u[k] carries the task: left / right stimulus (sqrt contrast,
//    alpha kernel), signed and unsigned movement around firstMovement, feedback, and the block
//    prior held over the trial. Regions form a random directed tree: every region but the first
//    is driven by one earlier region with a lag (couplingLagMs), so one region is predictable
//    from another's past.
//    Shared dynamics (an option, `world`): by default every session draws its own A_r, B_r and
//    tree, so two sessions ("animals") share nothing a model could carry across. With a world
//    seed, A_r and B_r come from a generator keyed by (world seed, region acronym), the coupling
//    K_rp from one keyed by (world seed, parent, child), and the tree from world-keyed ranks (a
//    fixed order of regions, and a fixed preference of each region for its driver among those
//    present): the same region behaves alike in every session, and the same pair of regions is
//    coupled alike whenever both are present. Neurons, readouts, trials, latent noise and the
//    region mix still differ per session.
// 3. Neurons. Each neuron reads out its region's latents and a slow brain-wide latent z (arousal-
//    like, time constants 2 s and 20 s): rate = exp(beta + g w . x + a z) Hz with w a unit vector,
//    gain g, loading a, and beta set so the mean rate meets a target drawn per unit: log-normal
//    (median 8.5 Hz) or, for 34 % of units, log-uniform in 0.03-3 Hz, times the region's factor
//    (thalamus faster, cortex slower). The exponential saturates smoothly at 200 Hz. Good-unit
//    labels depend on the rate as in real sorting output (17 % good). Spikes are drawn by time
//    rescaling with a refractory hazard (silent 1.5-2.5 ms after a spike, then recovering with
//    2.5 ms), the hazard raised so the mean rate is the true rate: continuous float64 times, far
//    finer than 1 ms. With refractoryMs [0, 0] they are an exact Poisson process. The realism of all
//    this is measured against real recordings by realism.ts (bench/realism.ts writes the table).
// 4. Anatomy. Regions are stacked along each probe (1 or 2 probes, 384 channels, 20 um rows),
//    dorsal regions on high channels; the top 2-22 channels are above the brain, void (Allen id 0),
//    and a few units sit there. Channel Allen ids come from the region's id in the shipped atlas.
// 5. Behaviour. Wheel position (rad, counter-clockwise positive) moves by a smooth ramp towards the
//    choice between firstMovement and response; whisker motion energy at ~60 Hz rises with
//    movement and follows one latent of one region.
// True rates are kept on a grid of stepMs per trial (mean rate over each step, exact to integrate).
import { createRng, hashString, type Rng } from '../rng.ts';

export interface SimSizes {
  /** Trials per session, drawn uniformly in [min, max]. */
  trials: readonly [number, number];
  /** Neurons per session (void units included), uniform in [min, max]. */
  neurons: readonly [number, number];
  /** Regions per session, uniform in [min, max] (3-6 by default). */
  regions: readonly [number, number];
  /** At most this many probes (1 or 2); a second probe needs at least 2 regions. */
  maxProbes: number;
  latentDim: number;
  /** Resolution of the latent dynamics and of the piecewise-constant rates, ms. */
  simDtMs: number;
  /** Step of the saved true-rate grid, ms. */
  stepMs: number;
  /** True-rate grid window around stimOn, seconds. */
  gridWindowS: readonly [number, number];
  /** Scale of the inter-region drive (0 switches coupling off). */
  couplingStrength: number;
  couplingLagMs: number;
  /**
   * Median, Hz, of the main (log-normal) component of the target firing rates, before each
   * region's factor (REGION_RATE_FACTOR).
   */
  medianRateHz: number;
  /** Standard deviation of ln(rate) in the main component. */
  rateLogSd: number;
  /** Fraction of low-rate units, their rates log-uniform in [0.03, 3] Hz (times the region's factor). */
  sparseFraction: number;
  /** Fraction of units the spike sorter calls good (label 1); it varies with the rate as in real data. */
  goodFraction: number;
  /** Units placed above the brain surface (Allen id 0, void). */
  voidUnits: number;
  /**
   * Refractoriness: after a spike a unit is silent for an absolute period drawn per unit in this
   * range (ms), then recovers with a 2.5 ms time constant. [0, 0] switches it off (Poisson spikes).
   */
  refractoryMs: readonly [number, number];
  /**
   * Scale of each unit's loading on a slow, brain-wide latent (arousal-like fluctuations over
   * seconds, see slowLatent). 0 switches it off.
   */
  slowGain: number;
  wheelHz: number;
  cameraHz: number;
}

export const DEFAULT_SIZES: SimSizes = {
  trials: [180, 260],
  neurons: [80, 200],
  regions: [3, 6],
  maxProbes: 2,
  latentDim: 3,
  simDtMs: 5,
  stepMs: 20,
  gridWindowS: [-0.5, 1.5],
  couplingStrength: 3,
  couplingLagMs: 50,
  medianRateHz: 8.5,
  rateLogSd: 0.7,
  sparseFraction: 0.34,
  goodFraction: 0.17,
  voidUnits: 3,
  refractoryMs: [1.5, 2.5],
  slowGain: 0.6,
  wheelHz: 100,
  cameraHz: 60,
};

/**
 * Candidate regions, dorsal to ventral along a repeated-site-like trajectory, with the Allen
 * acronym the simulator looks up in the atlas. Sessions draw an ordered subset.
 */
export const REGION_POOL = ['VISa', 'VISam', 'CA1', 'DG', 'LP', 'LGd', 'PO', 'VPM', 'VPL', 'APN'] as const;

/**
 * Each region's typical firing rate relative to the pool's: the median rate of the active units
 * (>= 0.03 Hz) in that Beryl region over the 78 repeated-site probes of the IBL reproducible-ephys
 * cluster table, divided by the median over all of the pool's regions (5.5 Hz). Cortex and
 * hippocampus fire slower than the thalamus.
 */
export const REGION_RATE_FACTOR: Readonly<Record<string, number>> = {
  VISa: 0.72,
  VISam: 0.53,
  CA1: 0.8,
  DG: 0.88,
  LP: 1.3,
  LGd: 1.33,
  PO: 1.23,
  VPM: 1.51,
  VPL: 0.88,
  APN: 1.09,
};

/**
 * The spike sorter's label against the unit's rate, from the same real table: the good fraction in
 * each rate band (< 1, 1-5, 5-20, >= 20 Hz) relative to the overall one (16.6 %), and the shares
 * of labels 0, 1/3 and 2/3 among the units that are not good.
 */
export const GOOD_BY_RATE = { bandsHz: [1, 5, 20], relative: [0.9, 1.43, 0.82, 1.04], notGood: [0.31, 0.39, 0.3] } as const;

/** The recovery time constant after the absolute refractory period, s (see refractoryMs). */
export const REFRACTORY_RECOVERY_S = 0.0025;
/** Past dead + SETTLED recovery constants the recovery counts as complete (the neglected intensity is 6e-6 of a constant). */
const SETTLED = 12;

export const CHANNELS_PER_PROBE = 384;
export const ROW_PITCH_UM = 20;

export const TRIAL_ATTRIBUTES = [
  'intervals_0',
  'intervals_1',
  'goCue_times',
  'stimOn_times',
  'firstMovement_times',
  'response_times',
  'feedback_times',
  'choice',
  'feedbackType',
  'rewardVolume',
  'contrastLeft',
  'contrastRight',
  'probabilityLeft',
] as const;

export interface SimRegion {
  acronym: string;
  atlasId: number;
  probe: string;
  /** Channels [lo, hi) of the region's band on its probe. */
  channels: [number, number];
  nNeurons: number;
}

export interface SimCoupling {
  from: string;
  to: string;
  lagMs: number;
  /** Frobenius norm of the coupling matrix (0 when coupling is off). */
  strength: number;
}

export interface SimProbe {
  probe: string;
  times: Float64Array;
  clusters: Int32Array;
  /** Per cluster id 0..n-1. */
  clusterChannels: Int32Array;
  clusterDepthsUm: Float64Array;
  clusterLabel: Float64Array;
  clusterRateHz: Float64Array;
  channelAtlasIds: Int32Array;
}

export interface SimNeuron {
  probe: string;
  clusterId: number;
  /** Region index, or -1 for a void unit. */
  region: number;
  targetRateHz: number;
}

/** Options beyond the sizes: shared dynamics across sessions (see the file comment). */
export interface SimWorld {
  /** Keys every region's dynamics (and each parent -> child coupling) across sessions. */
  worldSeed: number;
}

/** A region's latent system as simulated (A, B row-major; K the coupling from its parent). */
export interface SimRegionDynamics {
  acronym: string;
  /** d x d. */
  a: Float64Array;
  /** d x 6 task-input gains (stimLeft, stimRight, moveSigned, moveAbs, feedback, prior). */
  b: Float64Array;
  /** The driving region's acronym, or null for the tree's root. */
  parent: string | null;
  /** d x d, zeros for the root. */
  k: Float64Array;
}

export interface SimSession {
  seed: number;
  durationS: number;
  trials: Record<(typeof TRIAL_ATTRIBUTES)[number], Float64Array>;
  regions: SimRegion[];
  coupling: SimCoupling[];
  /** Each region's latent system, in the order of `regions` (kept in memory, not written). */
  dynamics: SimRegionDynamics[];
  /** Neurons in (probe, clusterId) order: the column order of trueRates. */
  neurons: SimNeuron[];
  probes: SimProbe[];
  wheel: { times: Float64Array; position: Float64Array };
  camera: { times: Float64Array; motionEnergy: Float64Array };
  /** Hz, [trial][step][neuron]; step j of trial i covers stimOn_i + gridStartS + [j, j+1) * stepMs. */
  trueRates: Float32Array;
  stepMs: number;
  gridStartS: number;
  nSteps: number;
}

const CONTRASTS = [0, 0.0625, 0.125, 0.25, 1];
/** Zero contrast is drawn half as often as each other level (it has no side), as in the IBL task. */
const CONTRAST_WEIGHTS = [1, 2, 2, 2, 2];
/**
 * Fraction of trials whose first wheel movement comes under 80 ms after stimulus onset (too fast
 * to be a response to it): 22.8 % over the 459 sessions of the IBL brain-wide map.
 */
export const EARLY_MOVEMENT_FRACTION = 0.228;
const MAX_RATE_HZ = 200;

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 on erf; error < 1.5e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-z * z);
  return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** Psychometric curve of the simulated mouse: P(rightward choice) given signed contrast and prior. */
export function pRightward(signedContrast: number, probabilityLeft: number): number {
  const lapse = 0.05;
  const width = 0.12;
  // A left-biased block (probabilityLeft 0.8) shifts the curve right: more contrast needed to go right.
  const bias = 0.1 * ((probabilityLeft - 0.5) / 0.3);
  return lapse + (1 - 2 * lapse) * normalCdf((signedContrast - bias) / width);
}

const uniform = (rng: Rng, a: number, b: number) => a + (b - a) * rng.next();
const intIn = (rng: Rng, [a, b]: readonly [number, number]) => a + rng.int(b - a + 1);

/** IBL block structure: 90 unbiased trials, then alternating 0.2 / 0.8 blocks of 20-100 trials. */
export function blockPriors(n: number, rng: Rng): Float64Array {
  const out = new Float64Array(n);
  let i = 0;
  for (; i < Math.min(90, n); i++) out[i] = 0.5;
  let p = rng.next() < 0.5 ? 0.2 : 0.8;
  while (i < n) {
    let len: number;
    do len = Math.round(-60 * Math.log(1 - rng.next()));
    while (len < 20 || len > 100);
    for (let j = 0; j < len && i < n; j++, i++) out[i] = p;
    p = p === 0.2 ? 0.8 : 0.2;
  }
  return out;
}

export function simulateTrials(n: number, rng: Rng): { trials: SimSession['trials']; endS: number } {
  const t = Object.fromEntries(TRIAL_ATTRIBUTES.map((k) => [k, new Float64Array(n)])) as SimSession['trials'];
  const prior = blockPriors(n, rng);
  let clock = 5 + uniform(rng, 0, 5);
  const weightSum = CONTRAST_WEIGHTS.reduce((a, b) => a + b, 0);
  for (let i = 0; i < n; i++) {
    const pL = prior[i];
    const start = clock;
    // The quiet period before the stimulus: it restarts whenever the mouse moves the wheel, so
    // its length has a long tail (feedback to next stimulus in real sessions: median 2.8 s after a
    // reward, 3.8 s after an error, 5 % above 5 s).
    const goCue = start + 0.8 + 0.15 + Math.min(10, 0.35 * Math.exp(rng.normal()));
    const stimOn = goCue + uniform(rng, 0.0005, 0.002);
    let pick = rng.next() * weightSum;
    let ci = 0;
    while (pick >= CONTRAST_WEIGHTS[ci]) pick -= CONTRAST_WEIGHTS[ci++];
    const contrast = CONTRASTS[ci];
    const left = rng.next() < pL;
    const signed = left ? -contrast : contrast;
    let choice = rng.next() < pRightward(signed, pL) ? -1 : 1;
    const roll = rng.next();
    let rt: number;
    if (roll < 0.01) {
      choice = 0;
      rt = NaN;
    } else if (roll < 0.05) rt = uniform(rng, 2.2, 6); // disengaged: outside the reference filter
    else if (roll < 0.05 + EARLY_MOVEMENT_FRACTION) rt = uniform(rng, -0.05, 0.08); // too early: outside the filter
    else rt = Math.min(2, Math.max(0.08, Math.exp(Math.log(0.25 - 0.1 * Math.sqrt(contrast)) + 0.5 * rng.normal())));
    const correct = choice !== 0 && (left ? choice === 1 : choice === -1);
    const move = stimOn + rt;
    // The wheel turn to the response threshold: log-normal, median 150 ms (stimulus to feedback in
    // real sessions: median 0.33 s, 10 % under 0.15 s).
    const response = choice === 0 ? stimOn + 60 : Math.max(move, stimOn + 0.02) + 0.15 * Math.exp(0.6 * rng.normal());
    const feedback = response + uniform(rng, 0, 0.002);
    const end = feedback + (correct ? 1.5 : 2.5) + uniform(rng, 0, 0.05);
    t.intervals_0[i] = start;
    t.intervals_1[i] = end;
    t.goCue_times[i] = goCue;
    t.stimOn_times[i] = stimOn;
    t.firstMovement_times[i] = move;
    t.response_times[i] = response;
    t.feedback_times[i] = feedback;
    t.choice[i] = choice;
    t.feedbackType[i] = correct ? 1 : -1;
    t.rewardVolume[i] = correct ? 1.5 : 0;
    t.contrastLeft[i] = left ? contrast : NaN;
    t.contrastRight[i] = left ? NaN : contrast;
    t.probabilityLeft[i] = pL;
    clock = end;
  }
  return { trials: t, endS: clock + 2 };
}

/** Alpha kernel peaking at tau (value 1), zero before 0, cut at 6 tau. */
function alpha(dt: number, tau: number): number {
  if (dt <= 0 || dt > 6 * tau) return 0;
  const x = dt / tau;
  return x * Math.exp(1 - x);
}

const N_INPUTS = 6; // stimLeft, stimRight, moveSigned, moveAbs, feedback, prior

/** Task inputs u[k][c] on the simulation grid. */
function taskInputs(trials: SimSession['trials'], nSeg: number, dtS: number): Float64Array {
  const u = new Float64Array(nSeg * N_INPUTS);
  const n = trials.stimOn_times.length;
  const add = (t0: number, tau: number, ch: number, scale: number) => {
    if (!Number.isFinite(t0) || scale === 0) return;
    const k0 = Math.max(0, Math.floor(t0 / dtS));
    const k1 = Math.min(nSeg - 1, Math.ceil((t0 + 6 * tau) / dtS));
    for (let k = k0; k <= k1; k++) u[k * N_INPUTS + ch] += scale * alpha((k + 0.5) * dtS - t0, tau);
  };
  for (let i = 0; i < n; i++) {
    const cl = trials.contrastLeft[i];
    const cr = trials.contrastRight[i];
    add(trials.stimOn_times[i], 0.06, 0, Number.isFinite(cl) ? Math.sqrt(cl) : 0);
    add(trials.stimOn_times[i], 0.06, 1, Number.isFinite(cr) ? Math.sqrt(cr) : 0);
    const choice = trials.choice[i];
    if (choice !== 0) {
      add(trials.firstMovement_times[i], 0.12, 2, -choice);
      add(trials.firstMovement_times[i], 0.12, 3, 1);
    }
    add(trials.feedback_times[i], 0.1, 4, trials.feedbackType[i]);
    // The prior is held from this trial's start to the next one's.
    const from = Math.max(0, Math.floor(trials.intervals_0[i] / dtS));
    const to = i + 1 < n ? Math.floor(trials.intervals_0[i + 1] / dtS) : nSeg;
    const level = (0.5 - trials.probabilityLeft[i]) / 0.3;
    for (let k = from; k < Math.min(to, nSeg); k++) u[k * N_INPUTS + 5] = level;
  }
  return u;
}

interface RegionDynamics {
  a: Float64Array; // d x d
  b: Float64Array; // d x N_INPUTS
  noise: number;
  parent: number; // -1 for none
  k: Float64Array; // d x d coupling from parent
}

function regionDynamics(d: number, dtS: number, rng: Rng): Omit<RegionDynamics, 'parent' | 'k'> & { rho: number } {
  const tau = uniform(rng, 0.1, 0.4);
  const rho = Math.exp(-dtS / tau);
  const theta = 2 * Math.PI * uniform(rng, 1, 4) * dtS;
  const a = new Float64Array(d * d);
  // A rotation in the first plane (an oscillatory mode), pure decay on the other axes.
  for (let i = 0; i < d; i++) a[i * d + i] = rho;
  if (d >= 2) {
    a[0] = rho * Math.cos(theta);
    a[1] = -rho * Math.sin(theta);
    a[d] = rho * Math.sin(theta);
    a[d + 1] = rho * Math.cos(theta);
  }
  // Input gains: a sustained unit input moves the state by about `gain` (steady-state gain 1/(1-rho)).
  const gains = [uniform(rng, 1.5, 4), uniform(rng, 1.5, 4), uniform(rng, 1.5, 3.5), uniform(rng, 0.5, 2), uniform(rng, 0.5, 1.5), uniform(rng, 0.3, 0.8)];
  const b = new Float64Array(d * N_INPUTS);
  for (let i = 0; i < d; i++) for (let c = 0; c < N_INPUTS; c++) b[i * N_INPUTS + c] = (1 - rho) * gains[c] * rng.normal();
  return { a, b, noise: Math.sqrt(1 - rho * rho), rho };
}

export interface SessionPlan {
  nTrials: number;
  nNeurons: number;
  regionAcronyms: string[];
  nProbes: number;
}

/** Session-level sizes and region mix: like different animals and insertions. */
export function planSession(sizes: SimSizes, rng: Rng): SessionPlan {
  const nTrials = intIn(rng, sizes.trials);
  const nNeurons = intIn(rng, sizes.neurons);
  const nRegions = Math.min(REGION_POOL.length, intIn(rng, sizes.regions));
  const picked = rng.shuffle([...REGION_POOL.keys()]).slice(0, nRegions).sort((a, b) => a - b);
  const nProbes = nRegions >= 2 && sizes.maxProbes >= 2 && rng.next() < 0.5 ? 2 : 1;
  return { nTrials, nNeurons, regionAcronyms: picked.map((i) => REGION_POOL[i]), nProbes };
}

/** Draws of the world (shared dynamics): one generator per key, the same in every session. */
const worldRng = (world: SimWorld, key: string) => createRng(hashString(key, world.worldSeed >>> 0));

/** The tree over a session's regions under shared dynamics: world order, each region's preferred driver among the earlier ones. */
function worldTree(acronyms: readonly string[], world: SimWorld): { order: number[]; parentOf: number[] } {
  const rank = (a: string) => worldRng(world, `order:${a}`).next();
  const order = [...acronyms.keys()].sort((i, j) => rank(acronyms[i]) - rank(acronyms[j]) || (acronyms[i] < acronyms[j] ? -1 : 1));
  const parentOf = new Array<number>(acronyms.length).fill(-1);
  order.forEach((r, pos) => {
    if (pos === 0) return;
    const affinity = (p: number) => worldRng(world, `driver:${acronyms[p]}->${acronyms[r]}`).next();
    parentOf[r] = order.slice(0, pos).reduce((best, p) => (affinity(p) > affinity(best) ? p : best));
  });
  return { order, parentOf };
}

/**
 * Simulates one session. `atlasIdOf` maps an acronym to its Allen id (from the shipped atlas).
 * With `world`, region dynamics are shared across sessions (see the file comment); without it
 * (the default) every draw is the session's own, exactly as before the option existed.
 * The parts below run in a fixed order: the generators they share (anat, rates, beh) are drawn from in exactly this sequence.
 */
export function simulateSession(seed: number, sizes: SimSizes, atlasIdOf: (acronym: string) => number, world?: SimWorld): SimSession {
  const root = createRng(seed);
  const plan = planSession(sizes, root.fork('plan'));
  const d = Math.max(1, Math.round(sizes.latentDim));
  const dtS = sizes.simDtMs / 1000;
  const { trials, endS } = simulateTrials(plan.nTrials, root.fork('trials'));
  const nSeg = Math.ceil(endS / dtS);
  const R = plan.regionAcronyms.length;

  // --- Anatomy: neurons per region, probes, channel bands.
  const anat = root.fork('anatomy');
  const layout = layoutAnatomy(plan, sizes, anat, atlasIdOf);
  const { regions, probeNames } = layout;
  const units = drawUnits(plan, sizes, d, layout, anat, root.fork('rates'));
  const { neuronsByProbe, ordered, neurons } = assignClusterIds(units, probeNames, anat);

  // --- Latent dynamics with directed, lagged coupling.
  const { systems, coupling, dynamics, lag } = latentSystems(plan, sizes, d, dtS, root.fork('dynamics'), world);
  const u = taskInputs(trials, nSeg, dtS);
  const D = R * d;
  const x = integrateLatents(systems, u, nSeg, d, lag, root.fork('latent-noise'));
  const { readout, deadS } = unitReadout(root, sizes, ordered, x, nSeg, dtS, D, d);

  // --- Spikes: Poisson counts per step, uniform times inside the step, in time order per probe.
  const probes = spikeProbes(readout, regions, probeNames, neuronsByProbe, nSeg, dtS, root.fork('spikes'), deadS);

  // --- True rates on the per-trial grid: the exact mean of the piecewise-constant rate per step.
  const stepS = sizes.stepMs / 1000;
  const gridStartS = sizes.gridWindowS[0];
  const nSteps = Math.round(((sizes.gridWindowS[1] - sizes.gridWindowS[0]) * 1000) / sizes.stepMs);
  const trueRates = gridRates(readout, trials.stimOn_times, gridStartS, stepS, nSteps, nSeg, dtS);

  // --- Behaviour traces.
  const beh = root.fork('behaviour');
  const ramps = wheelRamps(trials, plan.nTrials, beh);
  const wheel = wheelTrace(ramps, Math.floor(endS * sizes.wheelHz), sizes.wheelHz, beh);
  const camera = cameraTrace(ramps, { nCam: Math.floor(endS * sizes.cameraHz), cameraHz: sizes.cameraHz, nSeg, dtS, x, D, d, R }, beh);

  return {
    seed,
    durationS: endS,
    trials,
    regions,
    coupling,
    dynamics,
    neurons,
    probes,
    wheel,
    camera,
    trueRates,
    stepMs: sizes.stepMs,
    gridStartS,
    nSteps,
  };
}

/** Where a session's neurons sit: how many per region (and in no region), which probe holds which regions, each region's channel band. */
interface AnatomyLayout {
  perRegion: number[];
  nVoid: number;
  probeNames: string[];
  regions: SimRegion[];
  /** Each probe's first void channel (the brain surface). */
  surface: Map<string, number>;
}

/** Shares the neurons out over the regions and lays the regions along the probes (draws from `anat`). */
function layoutAnatomy(plan: SessionPlan, sizes: SimSizes, anat: Rng, atlasIdOf: (acronym: string) => number): AnatomyLayout {
  const R = plan.regionAcronyms.length;
  const nVoid = Math.min(sizes.voidUnits, Math.max(0, plan.nNeurons - 3 * R));
  const nRegionNeurons = plan.nNeurons - nVoid;
  const share = Array.from({ length: R }, () => 0.5 + anat.next());
  const shareSum = share.reduce((s, x) => s + x, 0);
  const perRegion = share.map((s) => Math.max(3, Math.floor((s / shareSum) * nRegionNeurons)));
  let excess = perRegion.reduce((s, x) => s + x, 0) - nRegionNeurons;
  for (let r = 0; excess !== 0; r = (r + 1) % R) {
    if (excess > 0 && perRegion[r] > 3) {
      perRegion[r]--;
      excess--;
    } else if (excess < 0) {
      perRegion[r]++;
      excess++;
    }
  }
  // Probe 0 takes the dorsal regions, probe 1 (if any) the rest.
  const split = plan.nProbes === 2 ? 1 + anat.int(R - 1) : R;
  const probeNames = plan.nProbes === 2 ? ['probe00', 'probe01'] : ['probe00'];
  const regions: SimRegion[] = [];
  const surface = new Map<string, number>();
  for (let p = 0; p < plan.nProbes; p++) {
    const members = p === 0 ? [...Array(split).keys()] : [...Array(R - split).keys()].map((i) => i + split);
    // First void channel: the brain surface. Real repeated-site probes have 94-100 % of their
    // channels in the brain; a few stay above it here so that void units have somewhere to be.
    const top = 362 + 2 * anat.int(11);
    surface.set(probeNames[p], top);
    const weights = members.map((r) => perRegion[r] + 4);
    const wSum = weights.reduce((s, x) => s + x, 0);
    let hi = top;
    members.forEach((r, j) => {
      const lo = j === members.length - 1 ? 0 : Math.max(0, hi - Math.max(8, Math.round((weights[j] / wSum) * top)));
      regions[r] = { acronym: plan.regionAcronyms[r], atlasId: atlasIdOf(plan.regionAcronyms[r]), probe: probeNames[p], channels: [lo, hi], nNeurons: perRegion[r] };
      hi = lo;
    });
  }
  return { perRegion, nVoid, probeNames, regions, surface };
}

/** One simulated unit before cluster ids: its place, rate, readout and quality label. */
interface Unit { region: number; probe: string; channel: number; depth: number; rate: number; gain: number; w: Float64Array; label: number; latentRegion: number }

/** Units: region, channel, depth, rate, readout weights and label; region units first, then void ones (draws from `anat` and `rates`). */
function drawUnits(plan: SessionPlan, sizes: SimSizes, d: number, layout: AnatomyLayout, anat: Rng, rates: Rng): Unit[] {
  const { perRegion, nVoid, probeNames, regions, surface } = layout;
  const R = plan.regionAcronyms.length;
  const units: Unit[] = [];
  // Target rates: a log-normal main component and a low-rate tail, log-uniform in [0.03, 3] Hz,
  // both times the region's factor. The mixture fitted to the real active units' rates has a tail
  // weight of 0.34, a main median of 8.5 Hz and a log-sd of 0.65-0.7 (KS distance ~0.01).
  const drawRate = (region: number) => {
    const f = region >= 0 ? (REGION_RATE_FACTOR[plan.regionAcronyms[region]] ?? 1) : 1;
    const r = rates.next() < sizes.sparseFraction ? 0.03 * 100 ** rates.next() : sizes.medianRateHz * Math.exp(sizes.rateLogSd * rates.normal());
    return Math.min(80, f * r);
  };
  const unitVec = () => {
    const w = new Float64Array(d);
    let s = 0;
    for (let i = 0; i < d; i++) s += (w[i] = rates.normal()) ** 2;
    s = Math.sqrt(s) || 1;
    for (let i = 0; i < d; i++) w[i] /= s;
    return w;
  };
  const labelOf = (rate: number) => {
    const band = GOOD_BY_RATE.bandsHz.filter((b) => rate >= b).length;
    if (anat.next() < Math.min(1, sizes.goodFraction * GOOD_BY_RATE.relative[band])) return 1;
    const u = anat.next();
    return u < GOOD_BY_RATE.notGood[0] ? 0 : u < GOOD_BY_RATE.notGood[0] + GOOD_BY_RATE.notGood[1] ? 1 / 3 : 2 / 3;
  };
  for (let r = 0; r < R; r++) {
    const [lo, hi] = regions[r].channels;
    for (let j = 0; j < perRegion[r]; j++) {
      const channel = lo + anat.int(hi - lo);
      const rate = drawRate(r);
      units.push({ region: r, probe: regions[r].probe, channel, depth: 0, rate, gain: uniform(rates, 0.3, 0.9), w: unitVec(), label: labelOf(rate), latentRegion: r });
    }
  }
  for (let j = 0; j < nVoid; j++) {
    const probe = probeNames[anat.int(plan.nProbes)];
    const top = surface.get(probe)!;
    const channel = top + anat.int(Math.min(16, CHANNELS_PER_PROBE - top));
    // Units above the histology surface are real neurons mislocated: they follow a nearby region.
    const near = regions.findIndex((g) => g.probe === probe);
    const rate = drawRate(-1);
    units.push({ region: -1, probe, channel, depth: 0, rate, gain: uniform(rates, 0.2, 0.6), w: unitVec(), label: labelOf(rate), latentRegion: near });
  }
  for (const u of units) u.depth = ROW_PITCH_UM * Math.floor(u.channel / 2) + uniform(anat, -8, 8);
  return units;
}

/** Cluster ids shuffled against depth as a sorter's are: each probe's units in cluster-id order, all of them probe by probe, and their neuron rows. */
function assignClusterIds(units: Unit[], probeNames: string[], anat: Rng): { neuronsByProbe: Map<string, Unit[]>; ordered: Unit[]; neurons: SimNeuron[] } {
  const neuronsByProbe = new Map<string, Unit[]>();
  for (const name of probeNames) {
    const mine = units.filter((u) => u.probe === name);
    const ids = anat.shuffle([...mine.keys()]);
    const ordered: Unit[] = new Array(mine.length);
    mine.forEach((u, j) => (ordered[ids[j]] = u)); // unit j gets cluster id ids[j]
    neuronsByProbe.set(name, ordered);
  }
  const ordered: Unit[] = probeNames.flatMap((n) => neuronsByProbe.get(n)!);
  const neurons: SimNeuron[] = probeNames.flatMap((name) =>
    neuronsByProbe.get(name)!.map((u, clusterId) => ({ probe: name, clusterId, region: u.region, targetRateHz: u.rate })),
  );
  return { neuronsByProbe, ordered, neurons };
}

/**
 * Each region's latent system and its coupling from a parent region.
 * Session-own draws come from `dyn` in a fixed sequence; shared ones from world-keyed generators.
 */
function latentSystems(
  plan: SessionPlan,
  sizes: SimSizes,
  d: number,
  dtS: number,
  dyn: Rng,
  world: SimWorld | undefined,
): { systems: RegionDynamics[]; coupling: SimCoupling[]; dynamics: SimRegionDynamics[]; lag: number } {
  const R = plan.regionAcronyms.length;
  const acr = plan.regionAcronyms;
  const tree = world ? worldTree(acr, world) : undefined;
  const order = tree ? tree.order : dyn.shuffle([...Array(R).keys()]);
  const systems: RegionDynamics[] = new Array(R);
  const coupling: SimCoupling[] = [];
  const lag = Math.max(1, Math.round(sizes.couplingLagMs / sizes.simDtMs));
  order.forEach((r, pos) => {
    const base = regionDynamics(d, dtS, world ? worldRng(world, `region:${acr[r]}`) : dyn);
    const parent = tree ? tree.parentOf[r] : pos === 0 ? -1 : order[dyn.int(pos)];
    const k = new Float64Array(d * d);
    let norm = 0;
    if (parent >= 0) {
      const kr = world ? worldRng(world, `coupling:${acr[parent]}->${acr[r]}`) : dyn;
      for (let i = 0; i < d * d; i++) {
        k[i] = (1 - base.rho) * sizes.couplingStrength * (kr.normal() / Math.sqrt(d) + (i % (d + 1) === 0 ? 0.5 : 0));
        norm += k[i] * k[i];
      }
      coupling.push({ from: plan.regionAcronyms[parent], to: plan.regionAcronyms[r], lagMs: lag * sizes.simDtMs, strength: Math.sqrt(norm) / (1 - base.rho) });
    }
    systems[r] = { a: base.a, b: base.b, noise: base.noise, parent, k };
  });
  const dynamics: SimRegionDynamics[] = systems.map((s, r) => ({ acronym: acr[r], a: s.a, b: s.b, parent: s.parent >= 0 ? acr[s.parent] : null, k: s.k }));
  return { systems, coupling, dynamics, lag };
}

/** Each unit's rate as a readout of the latents, with the slow latent and its refractory period (forks of `root`, in this order). */
function unitReadout(root: Rng, sizes: SimSizes, ordered: Unit[], x: Float64Array, nSeg: number, dtS: number, D: number, d: number): { readout: Readout; deadS: number[] } {
  // A slow, brain-wide latent (own generators: the draws above are unchanged with it on or off).
  const slow = sizes.slowGain > 0 ? slowLatent(nSeg, dtS, root.fork('slow-latent')) : null;
  const slowRng = root.fork('slow-loadings');
  const slowLoad = ordered.map(() => (slow ? sizes.slowGain * (SLOW_LOADING_MEAN + SLOW_LOADING_SD * slowRng.normal()) : 0));
  const refractoryRng = root.fork('refractory');
  const deadS = ordered.map(() => (sizes.refractoryMs[1] > 0 ? uniform(refractoryRng, sizes.refractoryMs[0], sizes.refractoryMs[1]) / 1000 : 0));
  const readout = new Readout(
    x,
    nSeg,
    D,
    d,
    ordered.map((un, j) => ({ offset: Math.max(0, un.latentRegion) * d, weights: un.w.map((w) => w * un.gain), rateHz: un.rate, slowLoad: slowLoad[j] })),
    slow,
  );
  return { readout, deadS };
}

/** Draws the spikes and builds each probe's spike, cluster and channel tables. */
function spikeProbes(
  readout: Readout,
  regions: SimRegion[],
  probeNames: string[],
  neuronsByProbe: Map<string, Unit[]>,
  nSeg: number,
  dtS: number,
  spikeRng: Rng,
  deadS: number[],
): SimProbe[] {
  const N = readout.n;
  const probeOf = new Int32Array(N);
  const clusterOf = new Int32Array(N);
  {
    let n = 0;
    probeNames.forEach((name, p) => {
      for (let c = 0; c < neuronsByProbe.get(name)!.length; c++, n++) {
        probeOf[n] = p;
        clusterOf[n] = c;
      }
    });
  }
  const { times: spikeTimes, clusters: spikeClusters } = drawSpikes(readout, nSeg, dtS, probeOf, clusterOf, probeNames.length, spikeRng, Float64Array.from(deadS));
  const probes: SimProbe[] = [];
  probeNames.forEach((name, p) => {
    const mine = neuronsByProbe.get(name)!;
    const channelAtlasIds = new Int32Array(CHANNELS_PER_PROBE);
    for (const g of regions) if (g.probe === name) channelAtlasIds.fill(g.atlasId, g.channels[0], g.channels[1]);
    const times = spikeTimes[p];
    const clusters = spikeClusters[p];
    const counts = new Float64Array(mine.length);
    for (let i = 0; i < clusters.length; i++) counts[clusters[i]]++;
    probes.push({
      probe: name,
      times,
      clusters,
      clusterChannels: Int32Array.from(mine, (m) => m.channel),
      clusterDepthsUm: Float64Array.from(mine, (m) => m.depth),
      clusterLabel: Float64Array.from(mine, (m) => m.label),
      clusterRateHz: Float64Array.from(counts, (c) => c / (nSeg * dtS)),
      channelAtlasIds,
    });
  });
  return probes;
}

/** One wheel turn per trial with a choice: from first movement to response, its amplitude drawn from `beh`. */
type WheelRamp = { t0: number; t1: number; amp: number };

function wheelRamps(trials: SimSession['trials'], nT: number, beh: Rng): WheelRamp[] {
  const ramps: WheelRamp[] = [];
  for (let i = 0; i < nT; i++) {
    const c = trials.choice[i];
    if (c === 0) continue;
    const t0 = trials.firstMovement_times[i];
    const t1 = trials.response_times[i];
    ramps.push({ t0, t1, amp: -c * uniform(beh, 0.25, 0.45) });
  }
  return ramps;
}

/** The wheel position: the turns so far, a slow drift and the turn in progress, sampled at `wheelHz`. */
function wheelTrace(ramps: WheelRamp[], nWheel: number, wheelHz: number, beh: Rng): SimSession['wheel'] {
  const wheelTimes = new Float64Array(nWheel);
  const wheelPos = new Float64Array(nWheel);
  let drift = 0;
  let offset = 0;
  let r = 0;
  for (let j = 0; j < nWheel; j++) {
    const t = j / wheelHz;
    wheelTimes[j] = t;
    drift = 0.98 * drift + 0.0005 * beh.normal();
    while (r < ramps.length && ramps[r].t1 <= t) offset += ramps[r++].amp;
    let pos = offset + drift;
    if (r < ramps.length && t > ramps[r].t0) {
      const f = (t - ramps[r].t0) / (ramps[r].t1 - ramps[r].t0);
      pos += ramps[r].amp * 0.5 * (1 - Math.cos(Math.PI * Math.min(1, f)));
    }
    wheelPos[j] = pos;
  }
  return { times: wheelTimes, position: wheelPos };
}

/** Motion energy: bumps at movements plus one region's latent and noise, through a softplus, on jittered camera frames. */
function cameraTrace(
  ramps: WheelRamp[],
  g: { nCam: number; cameraHz: number; nSeg: number; dtS: number; x: Float64Array; D: number; d: number; R: number },
  beh: Rng,
): SimSession['camera'] {
  const { nCam, cameraHz, nSeg, dtS, x, D, d, R } = g;
  const camTimes = new Float64Array(nCam);
  const me = new Float64Array(nCam);
  const moveTimes = ramps.map((m) => m.t0);
  let mIdx = 0;
  const meRegion = beh.int(R);
  for (let j = 0; j < nCam; j++) {
    const t = j / cameraHz + beh.next() * 0.0002;
    camTimes[j] = t;
    while (mIdx < moveTimes.length && moveTimes[mIdx] + 1.2 < t) mIdx++;
    let bump = 0;
    for (let q = mIdx; q < moveTimes.length && moveTimes[q] <= t + 0.2; q++) bump += alpha(t + 0.05 - moveTimes[q], 0.15);
    const kk = Math.min(nSeg - 1, Math.floor(t / dtS));
    const latent = x[kk * D + meRegion * d];
    const z = 0.5 + 1.5 * bump + 0.4 * latent + 0.2 * beh.normal();
    me[j] = 1000 * Math.log1p(Math.exp(z)); // softplus keeps motion energy positive
  }
  return { times: camTimes, motionEnergy: me };
}

/**
 * Integrates every region's latent system over the whole session: row k of the result holds
 * all regions' states at step k ([step][region * d + dim]).
 */
function integrateLatents(systems: RegionDynamics[], u: Float64Array, nSeg: number, d: number, lag: number, rng: Rng): Float64Array {
  const R = systems.length;
  const D = R * d;
  const x = new Float64Array(nSeg * D);
  for (let kk = 0; kk + 1 < nSeg; kk++) {
    const cur = kk * D;
    const nxt = cur + D;
    const past = (kk - lag) * D;
    const uk = kk * N_INPUTS;
    for (let r = 0; r < R; r++) {
      const s = systems[r];
      const o = r * d;
      const coupled = s.parent >= 0 && kk >= lag;
      const po = s.parent * d;
      for (let i = 0; i < d; i++) {
        let v = s.noise * rng.normal();
        for (let j = 0; j < d; j++) v += s.a[i * d + j] * x[cur + o + j];
        for (let c = 0; c < N_INPUTS; c++) v += s.b[i * N_INPUTS + c] * u[uk + c];
        if (coupled) for (let j = 0; j < d; j++) v += s.k[i * d + j] * x[past + po + j];
        x[nxt + o + i] = v;
      }
    }
  }
  // Coupling piles variance up along the chain of regions; rescaling each region's whole
  // trajectory to unit variance is linear, so it keeps every dependency and bounds the rates.
  for (let r = 0; r < R; r++) {
    let m2 = 0;
    for (let kk = 0; kk < nSeg; kk++) for (let i = 0; i < d; i++) m2 += x[kk * D + r * d + i] ** 2;
    const scale = 1 / Math.sqrt(m2 / (nSeg * d) || 1);
    for (let kk = 0; kk < nSeg; kk++) for (let i = 0; i < d; i++) x[kk * D + r * d + i] *= scale;
  }
  return x;
}

/** Each neuron's rate at each simulation step: exp(beta + w . x), saturating at MAX_RATE_HZ. */
class Readout {
  readonly n: number;
  private readonly beta: Float64Array;
  private readonly wts: Float64Array;
  private readonly offs: Int32Array;
  private readonly slowLoad: Float64Array;

  constructor(
    private readonly x: Float64Array,
    nSeg: number,
    private readonly D: number,
    private readonly d: number,
    units: { offset: number; weights: Float64Array; rateHz: number; slowLoad?: number }[],
    private readonly slow: Float64Array | null = null,
  ) {
    const n = (this.n = units.length);
    this.beta = new Float64Array(n);
    this.wts = new Float64Array(n * d);
    this.offs = new Int32Array(n);
    this.slowLoad = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      this.offs[j] = units[j].offset;
      this.wts.set(units[j].weights, j * d);
      this.slowLoad[j] = slow ? (units[j].slowLoad ?? 0) : 0;
      // The projection's mean and variance (sampled) set beta so the mean rate meets the target.
      let m = 0;
      let m2 = 0;
      let cnt = 0;
      for (let kk = 0; kk < nSeg; kk += 20) {
        const v = this.project(j, kk);
        m += v;
        m2 += v * v;
        cnt++;
      }
      m /= cnt;
      this.beta[j] = Math.log(units[j].rateHz) - m - Math.max(0, m2 / cnt - m * m) / 2;
    }
  }

  private project(j: number, kk: number): number {
    const d = this.d;
    const base = kk * this.D + this.offs[j];
    let v = this.slow ? this.slowLoad[j] * this.slow[kk] : 0;
    for (let i = 0; i < d; i++) v += this.wts[j * d + i] * this.x[base + i];
    return v;
  }

  rateHz(j: number, kk: number): number {
    // The exponential saturates smoothly towards MAX_RATE_HZ.
    const e = Math.exp(this.beta[j] + this.project(j, kk));
    return e / (1 + e / MAX_RATE_HZ);
  }
}

/** Mean and spread of the units' loadings on the slow latent (times slowGain): mostly positive, as real slow co-fluctuations are. */
const SLOW_LOADING_MEAN = 0.4;
const SLOW_LOADING_SD = 0.9;
/** Time constants of the slow latent's two components, s. */
const SLOW_TAUS_S = [2, 20] as const;

/**
 * A slow latent shared by the whole brain (arousal, engagement): the sum of two Ornstein-Uhlenbeck
 * processes with time constants of seconds and tens of seconds, unit variance. Real spike counts
 * grow more variable with the counting window far past the task's fast dynamics (Fano factor about
 * 1.2 in 100 ms, 2.8 in 1 s and 6 in 10 s) and co-fluctuate across units at those scales.
 */
function slowLatent(nSeg: number, dtS: number, rng: Rng): Float64Array {
  const out = new Float64Array(nSeg);
  for (const tau of SLOW_TAUS_S) {
    const rho = Math.exp(-dtS / tau);
    const noise = Math.sqrt((1 - rho * rho) / SLOW_TAUS_S.length);
    let v = rng.normal() / Math.sqrt(SLOW_TAUS_S.length);
    for (let k = 0; k < nSeg; k++) {
      out[k] += v;
      v = rho * v + noise * rng.normal();
    }
  }
  return out;
}

/** Integrated recovery after a spike: integral over [0, u] of the hazard's refractory factor (0 before `dead`, then 1 - exp(-(t - dead) / tau)). */
function recovered(u: number, dead: number): number {
  if (u <= dead) return 0;
  const x = u - dead;
  const tau = REFRACTORY_RECOVERY_S;
  return x > SETTLED * tau ? x - tau : x - tau * (1 - Math.exp(-x / tau));
}

/** Inverse of recovered(., dead) for a value v > 0 (Newton on a convex, increasing function). */
function recoveredInverse(v: number, dead: number): number {
  const tau = REFRACTORY_RECOVERY_S;
  if (v > (SETTLED - 1) * tau) return dead + v + tau;
  let x = Math.min(v + tau, Math.sqrt(2 * tau * v) + v);
  for (let it = 0; it < 50; it++) {
    const e = Math.exp(-x / tau);
    const f = x - tau * (1 - e) - v;
    const step = f / (1 - e || 1e-300);
    x -= step;
    if (x <= 0) x = 1e-12;
    if (Math.abs(step) < 1e-13) break;
  }
  return dead + x;
}

/**
 * Spikes by time rescaling: each neuron waits for its integrated intensity to grow by an Exp(1)
 * draw, the spike landing where that happens inside the step. Without refractoriness (dead 0) this
 * is an exact Poisson process for the piecewise-constant rate. With it, the hazard after a spike
 * is zero for the unit's absolute period, then recovers with REFRACTORY_RECOVERY_S; the hazard is
 * raised to rate / (1 - rate * (dead + recovery)) so the mean rate stays the true rate (to within
 * 1 % below 50 Hz). Costs one comparison per neuron and step away from a spike (no draw unless it spikes).
 */
export function drawSpikes(readout: Pick<Readout, "n" | "rateHz">, nSeg: number, dtS: number, probeOf: Int32Array, clusterOf: Int32Array, nProbes: number, rng: Rng, deadS: Float64Array): { times: Float64Array[]; clusters: Int32Array[] } {
  const bufT = Array.from({ length: nProbes }, () => new GrowF64());
  const bufC = Array.from({ length: nProbes }, () => new GrowI32());
  const segT: number[][] = Array.from({ length: nProbes }, () => []);
  const segC: number[][] = Array.from({ length: nProbes }, () => []);
  const N = readout.n;
  const expDraw = () => -Math.log(1 - rng.next());
  const remaining = Float64Array.from({ length: N }, expDraw);
  // Refractory units: the time of the last spike; the hazard's recovery has settled (factor 1)
  // once it lies more than dead + SETTLED recovery constants back.
  const last = new Float64Array(N).fill(-Infinity);
  const settleS = Float64Array.from(deadS, (d) => d + SETTLED * REFRACTORY_RECOVERY_S);
  for (let kk = 0; kk < nSeg; kk++) {
    const t0 = kk * dtS;
    const t1 = t0 + dtS;
    for (let n = 0; n < N; n++) {
      const rate = readout.rateHz(n, kk);
      if (deadS[n] === 0) {
        const lambda = rate * dtS;
        let rem = remaining[n];
        if (rem > lambda) {
          remaining[n] = rem - lambda;
          continue;
        }
        let used = 0;
        while (rem <= lambda - used) {
          used += rem;
          segT[probeOf[n]].push(t0 + (used / lambda) * dtS);
          segC[probeOf[n]].push(clusterOf[n]);
          rem = expDraw();
        }
        remaining[n] = rem - (lambda - used);
        continue;
      }
      const h = hazardOf(rate, deadS[n]);
      let rem = remaining[n];
      const dead = deadS[n];
      if (t0 - last[n] > settleS[n] && rem > h * dtS) {
        remaining[n] = rem - h * dtS;
        continue;
      }
      let a = t0;
      for (;;) {
        // Integrated intensity over [a, t1), and the time it reaches rem past a.
        const isSettled = a - last[n] > settleS[n];
        const ga = isSettled ? 0 : recovered(a - last[n], dead);
        const avail = h * (isSettled ? t1 - a : recovered(t1 - last[n], dead) - ga);
        if (rem > avail) {
          remaining[n] = rem - avail;
          break;
        }
        const t = isSettled ? a + rem / h : last[n] + recoveredInverse(ga + rem / h, dead);
        const at = Math.min(t1, Math.max(a, t));
        segT[probeOf[n]].push(at);
        segC[probeOf[n]].push(clusterOf[n]);
        last[n] = at;
        a = at;
        rem = expDraw();
      }
    }
    for (let p = 0; p < nProbes; p++) {
      const ts = segT[p];
      if (!ts.length) continue;
      const idx = [...ts.keys()].sort((a, b) => ts[a] - ts[b]);
      for (const i of idx) {
        bufT[p].push(ts[i]);
        bufC[p].push(segC[p][i]);
      }
      ts.length = 0;
      segC[p].length = 0;
    }
  }
  return { times: bufT.map((b) => b.take()), clusters: bufC.map((b) => b.take()) };
}

/** The hazard that gives a refractory unit the mean rate `rate` (capped where the rate nears 1 / refractory time). */
function hazardOf(rate: number, dead: number): number {
  return rate / Math.max(0.3, 1 - rate * (dead + REFRACTORY_RECOVERY_S));
}

/** True rates on the per-trial grid: the exact mean of the piecewise-constant rate over each step. */
function gridRates(readout: Readout, stimOn: Float64Array, gridStartS: number, stepS: number, nSteps: number, nSeg: number, dtS: number): Float32Array {
  const N = readout.n;
  const nT = stimOn.length;
  const out = new Float32Array(nT * nSteps * N);
  const acc = new Float64Array(N);
  for (let i = 0; i < nT; i++) {
    for (let j = 0; j < nSteps; j++) {
      const a0 = stimOn[i] + gridStartS + j * stepS;
      const a1 = a0 + stepS;
      acc.fill(0);
      const k1 = Math.min(nSeg - 1, Math.floor(a1 / dtS));
      for (let kk = Math.max(0, Math.floor(a0 / dtS)); kk <= k1; kk++) {
        const w = Math.min(a1, (kk + 1) * dtS) - Math.max(a0, kk * dtS);
        if (w <= 0) continue;
        for (let n = 0; n < N; n++) acc[n] += w * readout.rateHz(n, kk);
      }
      const row = (i * nSteps + j) * N;
      for (let n = 0; n < N; n++) out[row + n] = acc[n] / stepS;
    }
  }
  return out;
}

class GrowF64 {
  private a = new Float64Array(1024);
  private n = 0;
  push(v: number) {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
  take(): Float64Array {
    return this.a.slice(0, this.n);
  }
}

class GrowI32 {
  private a = new Int32Array(1024);
  private n = 0;
  push(v: number) {
    if (this.n === this.a.length) {
      const b = new Int32Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
  take(): Int32Array {
    return this.a.slice(0, this.n);
  }
}
