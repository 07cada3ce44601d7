// Simulates realistic IBL-like sessions into a ONE-layout cache and emits them (docs/method.md §2.6).
import { z } from 'zod';
import { defineStage } from '../core/stage.ts';
import type { SessionRef } from '../core/payloads.ts';
import { resolvedSizes, SimParamError, simulateCache } from '../core/sim/cache.ts';
import { DEFAULT_SIZES as D } from '../core/sim/model.ts';

const intRange = (def: readonly [number, number], what: string) =>
  z.tuple([z.number().int().min(1), z.number().int().min(1)]).default([def[0], def[1]]).describe(what);

export const simulateParams = z.object({
  out: z.string().default('').describe("root folder of the ONE cache to write; empty uses this node's folder in the run directory"),
  sessions: z.number().int().min(1).default(3).describe('number of sessions to simulate'),
  seed: z.number().int().nullable().default(null).describe('simulation seed; null uses the graph seed'),
  reuse: z.boolean().default(true).describe('keep a cache already written at `out` with the same options instead of simulating again'),
  trials: intRange(D.trials, 'trials per session, drawn uniformly in [min, max]'),
  neurons: intRange(D.neurons, 'units per session (a few above the brain included), drawn uniformly in [min, max]'),
  regions: intRange(D.regions, 'brain regions per session, drawn uniformly in [min, max]'),
  maxProbes: z.number().int().min(1).max(2).default(D.maxProbes).describe('at most this many probes per session (1 or 2)'),
  latentDim: z.number().int().min(1).default(D.latentDim).describe('dimension of each region\'s latent dynamics'),
  simDtMs: z.number().positive().default(D.simDtMs).describe('time step of the latent dynamics and of the piecewise-constant rates, ms'),
  stepMs: z.number().positive().default(D.stepMs).describe('step of the saved true-rate grid, ms'),
  gridWindowS: z.tuple([z.number(), z.number()]).default([D.gridWindowS[0], D.gridWindowS[1]]).describe('window of the true-rate grid around stimOn_times, seconds'),
  couplingStrength: z.number().min(0).default(D.couplingStrength).describe('scale of the lagged drive from one region to the next (0: regions independent)'),
  couplingLagMs: z.number().positive().default(D.couplingLagMs).describe('lag of the inter-region drive, ms'),
  medianRateHz: z.number().positive().default(D.medianRateHz).describe("median of the log-normal main component of the firing rates, Hz, before each region's factor (thalamus faster, cortex slower)"),
  rateLogSd: z.number().min(0).default(D.rateLogSd).describe('standard deviation of ln(rate) in the main component'),
  sparseFraction: z.number().min(0).max(1).default(D.sparseFraction).describe("fraction of low-rate units, log-uniform in 0.03-3 Hz times the region's factor"),
  goodFraction: z.number().min(0).max(1).default(D.goodFraction).describe('fraction of units the spike sorter labels good (label 1); it varies with the rate as in real recordings'),
  voidUnits: z.number().int().min(0).default(D.voidUnits).describe('units placed above the brain surface (Allen id 0)'),
  refractoryMs: z
    .tuple([z.number().min(0), z.number().min(0)])
    .default([D.refractoryMs[0], D.refractoryMs[1]])
    .refine(([a, b]) => a <= b, 'refractoryMs: [min, max] with min <= max')
    .describe('absolute refractory period per unit, drawn in [min, max] ms, then a 2.5 ms recovery; [0, 0]: Poisson spikes'),
  slowGain: z.number().min(0).default(D.slowGain).describe("scale of the units' loadings on a slow brain-wide latent (arousal-like fluctuations over seconds); 0 switches it off"),
  wheelHz: z.number().positive().default(D.wheelHz).describe('sampling rate of the wheel position, Hz'),
  cameraHz: z.number().positive().default(D.cameraHz).describe('frame rate of the camera giving whisker motion energy, Hz'),
  sharedDynamics: z
    .boolean()
    .default(false)
    .describe("draw each region's latent dynamics (A, B, its coupling to a parent region, the region tree) from worldSeed and the region's acronym, so a region behaves alike in every session (animals share brain dynamics); false: every session draws its own"),
  worldSeed: z.number().int().default(0).describe('with sharedDynamics: the seed of the shared dynamics (keep it across simulate nodes whose sessions should share them)'),
}).superRefine((p, ctx) => {
  // The simulator's own range checks (sizes in order, enough neurons for the regions), so
  // `mtm validate` refuses what the run would refuse, at the field.
  try {
    resolvedSizes(p);
  } catch (e) {
    if (!(e instanceof SimParamError)) throw e;
    ctx.addIssue({ code: 'custom', path: [e.field], message: e.message });
  }
});

export const simulate = defineStage({
  id: 'simulate',
  version: 1,
  summary: 'Writes simulated multi-region sessions with known true rates into a ONE-layout cache and emits a reference to each',
  spec: 'docs/method.md §2.6',
  inputs: {},
  outputs: { sessions: { type: 'session-ref', description: 'one reference per simulated session (eid and folder in the cache)' } },
  params: simulateParams,
  create(p, ctx) {
    return {
      async *generate(): AsyncGenerator<SessionRef> {
        const out = p.out || ctx.run.artifactDir(ctx.nodeId);
        const { sessions: count, seed, reuse, out: _out, sharedDynamics, worldSeed, ...sizes } = p;
        const bar = ctx.progress('simulate', count);
        const infos = await simulateCache({ ...sizes, out, sessions: count, seed: seed ?? ctx.seed, reuse, sharedDynamics, worldSeed }, (info) => {
          bar.increment(1, info.subject);
          ctx.logger.info(
            { session: info.eid, path: info.sessionPath, trials: info.nTrials, neurons: info.nNeurons, regions: info.regions, probes: info.probes, spikes: info.spikes },
            'simulated session',
          );
        });
        bar.stop();
        for (const info of infos) {
          if (ctx.signal.aborted) return;
          yield info.ref;
        }
      },
    };
  },
});
