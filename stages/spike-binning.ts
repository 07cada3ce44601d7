// Spike trains -> trial-aligned binned counts with trial filter, split and behaviour (docs/method.md §2.4).
import { z } from 'zod';
import { defineStage } from '../core/stage.ts';
import { binSession, loadSimTruth } from '../core/binning/bin-session.ts';
import { loadAllenRegions } from '../core/atlas/regions.ts';

const pair = z.tuple([z.number(), z.number()]);

export const spikeBinningParams = z.object({
  binSizeMs: z.number().positive().default(20).describe('bin width in milliseconds'),
  windowS: pair.default([-0.5, 1.5]).describe('window around the alignment event, seconds [start, end]; must hold a whole number of bins'),
  alignEvent: z.string().default('stimOn_times').describe('trials attribute the windows are aligned to'),
  reactionTimeRangeS: pair
    .default([0.08, 2])
    .describe('keep trials whose reaction time (firstMovement_times - stimOn_times) lies in [min, max] seconds'),
  requireFinite: z
    .array(z.string())
    .default(['stimOn_times', 'choice', 'feedback_times', 'probabilityLeft', 'firstMovement_times', 'feedbackType'])
    .describe('trials attributes that must not be NaN for a trial to be kept'),
  excludeNoChoice: z.boolean().default(true).describe('drop no-go trials (choice == 0)'),
  maxFeedbackDelayS: z.number().default(10).describe('drop trials whose feedback_times - goCue_times exceeds this, seconds'),
  splitFractions: z
    .tuple([z.number().min(0), z.number().min(0), z.number().min(0)])
    .default([0.7, 0.1, 0.2])
    .describe('train / val / test fractions of the kept trials, after a seeded shuffle per session'),
  seed: z.number().int().nullable().default(null).describe('seed of the trial split; null uses the graph seed'),
  goodOnly: z.boolean().default(false).describe('keep only units labelled good (clusters.metrics label == 1); the reference keeps all'),
  probes: z.array(z.string()).default([]).describe('probe names to keep (e.g. probe00); empty keeps every probe'),
  trueRates: z.boolean().default(true).describe('fill expected counts from the simulator\'s true rates when the session has them'),
  prefaultThread: z
    .boolean()
    .default(false)
    .describe('fault the memory of large counts arrays in on a helper thread while counting (measured slower on a shared 2-core VM, see bench/results/binning.json; may help where a core is idle)'),
});

export const spikeBinning = defineStage({
  id: 'spike-binning',
  version: 1,
  summary: 'Bins spike trains into trials x bins x neurons counts around an event, filters and splits trials, resamples behaviour',
  spec: 'docs/method.md §2.4',
  inputs: { sessions: { type: 'spike-trains', description: 'one session\'s spikes, clusters, trials and behaviour' } },
  outputs: { sessions: { type: 'binned-session', description: 'binned counts with trial split, behaviour and neuron table (Allen labels)' } },
  params: spikeBinningParams,
  create(p, ctx) {
    const seed = p.seed ?? ctx.seed;
    return {
      async map(trains) {
        const started = performance.now();
        const regions = await loadAllenRegions();
        const truth = p.trueRates ? await loadSimTruth(trains.path) : undefined;
        const { session, filter, trueRatesSkipped } = binSession(trains, { ...p, seed, prefault: p.prefaultThread ? 'auto' : false }, { regions, truth });
        const spikes = trains.probes.reduce((s, pr) => s + pr.times.length, 0);
        const ms = performance.now() - started;
        const log = ctx.logger.child({ session: trains.sessionId });
        if (session.nTrials === 0) log.warn({ dropped: filter.dropped, total: filter.total }, 'no trial passes the trial filter');
        if (trueRatesSkipped) log.warn(`true rates not used: ${trueRatesSkipped}`);
        log.info(
          { trials: session.nTrials, of: filter.total, dropped: filter.dropped, neurons: session.nNeurons, bins: session.nBins, spikes, ms: Math.round(ms) },
          'binned',
        );
        ctx.run.metric(ctx.nodeId, {
          sessionId: trains.sessionId,
          trialsTotal: filter.total,
          trialsKept: session.nTrials,
          dropped: filter.dropped,
          neurons: session.nNeurons,
          spikes,
          binningMs: ms,
        });
        return session;
      },
    };
  },
});
