// Streams a new recording through a trained model: online binning, a calibrated fresh stitcher, causal predictions written as they come (docs/method.md §1.3).
//
// Decisions:
// - Chunks and bins stay inside this one stage (no new payload types): the source is a param
//   (`synthetic:<minutes>`, a phy/Kilosort folder or an ALF session folder), the model a folder
//   param or a `model` item from upstream (e.g. train-model), the output one artifact (the folder
//   of predictions.npy, counts.npy, stream.json; see core/stream/run-stream.ts) and one metrics item.
// - The new recording's neurons get a fresh stitcher (session `stream:<source name>`) fitted on
//   the first calibrationS seconds (calibrationSteps Adam steps of masked modelling, core
//   frozen); predictions start with the first bin after calibration. `calibration: none` keeps the
//   untrained stitcher (tests, or `session` naming a stitcher the model already has).
// - Prediction: one causal pass every strideBins bins over windowBins bins (default the model's
//   training length) whose last strideBins bins are zeroed: the forward-prediction task, so each
//   bin is predicted from bins strictly before it (core/stream/predictor.ts).
// - strideBins 1 (a prediction every bin) runs from key/value caches when the architecture has
//   them (NDT1; NDT2 stays windowed): each bin costs a few tokens' work, not a window's pass, and
//   each prediction equals the windowed pass over its cache's span, between about half and all of
//   the window (core/stream/cached-predictor.ts). `cache: off` keeps the windowed pass. The log,
//   stream.json and the run's metrics say which predictor ran.
import { z } from 'zod';
import { defineStage, type StageContext } from '../core/stage.ts';
import type { ArchitectureContribution } from '../core/architecture.ts';
import { MASKING_SCHEMES, type MaskingScheme } from '../core/masking/types.ts';
import { loadTrainedModel } from '../core/train/checkpoint.ts';
import { openSource, runStream, streamSessionId, trainingWindowBins, type StreamSummary } from '../core/stream/run-stream.ts';

export const streamPredictParams = z.object({
  model: z.string().default('').describe('trained model folder (model.json + weights.bin); empty: the model arriving on the `model` port'),
  source: z.string().default('synthetic:1').describe('the recording: synthetic:<minutes> (Poisson spikes), a phy/Kilosort output folder, or an ALF session folder'),
  syntheticNeurons: z.number().int().min(1).default(100).describe('neurons of a synthetic source'),
  units: z.enum(['all', 'good', 'not-noise']).default('not-noise').describe("which units of the recording become the model's neurons: all, the sorter's good ones, or all but noise"),
  speed: z.number().min(0).default(0).describe('replay speed: 1 = real time, 10 = ten times faster, 0 = as fast as the model goes'),
  durationS: z.number().min(0).default(0).describe('stream only the first durationS seconds of the recording; 0 streams all of it'),
  chunkMs: z.number().positive().default(100).describe('length of the spike chunks the source delivers, ms'),
  binSizeMs: z.number().positive().default(20).describe('bin width, ms (the model was trained on 20 ms bins in the reference)'),
  windowBins: z.number().int().min(0).default(0).describe("bins per forward pass (context plus predicted bins); 0: the model's training length"),
  strideBins: z.number().int().min(1).default(10).describe('bins predicted per forward pass and the pass period: per-bin cost is pass time / strideBins, and bin k of a pass is predicted k bins ahead; 1 predicts every bin, from key/value caches where the architecture has them'),
  cache: z.enum(['auto', 'off']).default('auto').describe('auto: at strideBins 1, predict from staggered key/value caches when the architecture supports it (context windowBins/2 to windowBins - 1 bins); off: always a windowed pass'),
  calibration: z.enum(['masked', 'none']).default('masked').describe("fit the recording's fresh stitcher on its first calibrationS seconds (masked), or keep it untrained (none)"),
  calibrationS: z.number().positive().default(60).describe('seconds at the start of the recording used to fit the stitcher; predictions start after them'),
  calibrationSteps: z.number().int().min(1).default(100).describe('Adam steps of the stitcher fit (only the new session\'s weights train)'),
  calibrationLr: z.number().positive().default(3e-3).describe('learning rate of the stitcher fit'),
  calibrationBatchSize: z.number().int().min(1).default(8).describe('random windows of the calibration span per step'),
  calibrationMasking: z.enum(MASKING_SCHEMES as [MaskingScheme, ...MaskingScheme[]]).default('causal').describe('masking scheme of the stitcher fit (causal matches how the stream predicts; mtm mixes modes)'),
  session: z.string().default('').describe("stitcher to read the recording with: empty gives a fresh one (stream:<source name>); a session id of the model reuses its stitcher (same neurons)"),
  out: z.string().default('').describe("folder for predictions.npy, counts.npy and stream.json; empty: this node's folder in the run directory"),
});

export type StreamPredictParams = z.output<typeof streamPredictParams>;

export interface StreamPredictEnv {
  architectures: ReadonlyMap<string, ArchitectureContribution>;
  seed: number;
  signal: AbortSignal;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  onProgress?: (p: { bins: number; totalBins: number; streamS: number; wallS: number }) => void;
}

/** Loads the model, opens the source and streams it into `out` (shared by the stage and `mtm stream`). */
export async function runStreamPredict(p: StreamPredictParams, modelPath: string, out: string, env: StreamPredictEnv): Promise<StreamSummary> {
  const source = await openSource(p.source, { syntheticNeurons: p.syntheticNeurons, seed: env.seed, log: (m) => env.log(m) });
  const { model } = await loadTrainedModel(modelPath, env.architectures);
  try {
    const maxBins = typeof model.config.maxBins === 'number' ? model.config.maxBins : Number.POSITIVE_INFINITY;
    const windowBins = p.windowBins || trainingWindowBins(model);
    if (windowBins > maxBins) throw new Error(`windowBins ${windowBins} is longer than the model's position embedding (maxBins ${maxBins})`);
    if (windowBins <= p.strideBins) throw new Error(`strideBins ${p.strideBins} must be smaller than windowBins ${windowBins}, to leave observed bins to predict from`);
    const sessionId = p.session || streamSessionId(source);
    if (p.session && !model.hasSession(p.session)) {
      throw new Error(`session '${p.session}' is not one the model was trained on (it has ${model.sessions().map((s) => s.sessionId).join(', ') || 'none'}); leave session empty for a fresh stitcher`);
    }
    if (!model.hasSession(sessionId) && p.calibration === 'none') env.log(`calibration is none: the fresh stitcher of ${sessionId} is untrained, so its predictions are not meaningful`);
    env.log(`streaming ${source.name} through ${modelPath}`, { windowBins, strideBins: p.strideBins, sessionId });
    return await runStream({
      model,
      source,
      out,
      units: p.units,
      binSizeMs: p.binSizeMs,
      chunkS: p.chunkMs / 1000,
      speed: p.speed === 0 ? Number.POSITIVE_INFINITY : p.speed,
      endS: p.durationS > 0 ? Math.min(source.endS, source.startS + p.durationS) : undefined,
      windowBins,
      strideBins: p.strideBins,
      cache: p.cache,
      calibration:
        p.calibration === 'none'
          ? { kind: 'none' }
          : { kind: 'masked', seconds: p.calibrationS, steps: p.calibrationSteps, learningRate: p.calibrationLr, batchSize: p.calibrationBatchSize, scheme: p.calibrationMasking },
      sessionId,
      seed: env.seed,
      signal: env.signal,
      log: env.log,
      onProgress: env.onProgress,
      describe: { model: modelPath, sourceSpec: p.source },
    });
  } finally {
    model.dispose();
  }
}

function summaryMetrics(s: StreamSummary): Record<string, number> {
  const v: Record<string, number> = {
    bins: s.bins,
    predictedBins: s.predictedBins,
    nNeurons: s.nNeurons,
    msPerBin: s.msPerBin,
    wallMsPerBin: s.wallMsPerBin,
    passP50Ms: s.passMs.p50Ms,
    passP99Ms: s.passMs.p99Ms,
    passMaxMs: s.passMs.maxMs,
    ...(s.passCpuMs ? { passCpuP50Ms: s.passCpuMs.p50Ms, passCpuP99Ms: s.passCpuMs.p99Ms } : {}),
    realTimeFactor: s.realTimeFactor,
    meanPoissonNll: s.meanPoissonNll,
  };
  if (s.calibration) {
    v.calibrationFirstLoss = s.calibration.firstLoss;
    v.calibrationLastLoss = s.calibration.lastLoss;
    v.calibrationSeconds = s.calibration.seconds;
  }
  return Object.fromEntries(Object.entries(v).filter(([, x]) => Number.isFinite(x)));
}

/** Runs the stream with a progress bar of bins streamed. */
async function streamWithProgress(p: StreamPredictParams, modelPath: string, out: string, ctx: StageContext): Promise<StreamSummary> {
  const bar = ctx.progress('stream', 0);
  let lastBins = 0;
  const s = await runStreamPredict(p, modelPath, out, {
    architectures: ctx.architectures,
    seed: ctx.seed,
    signal: ctx.signal,
    log: (m, f) => ctx.logger.info(f ?? {}, m),
    onProgress: (pr) => {
      if (lastBins === 0) bar.setTotal(pr.totalBins);
      bar.increment(pr.bins - lastBins, `${pr.streamS.toFixed(0)} s streamed, ${(pr.streamS / pr.wallS).toFixed(1)}x real time`);
      lastBins = pr.bins;
    },
  });
  bar.stop();
  return s;
}

export const streamPredict = defineStage({
  id: 'stream-predict',
  version: 1,
  summary: 'Streams a new recording (synthetic, phy/Kilosort or ALF) through a trained model: online bins, calibrated fresh stitcher, causal rate predictions written as they come',
  spec: 'docs/method.md §1.3',
  inputs: {
    model: { type: 'model', description: 'the trained model to stream with (instead of the `model` param)', optional: true, collect: true },
  },
  outputs: {
    predictions: { type: 'artifact', description: 'the output folder: predictions.npy (log-rates), counts.npy, stream.json' },
    metrics: { type: 'metrics', description: 'timings (msPerBin, pass latency, real-time factor), calibration losses and the mean Poisson NLL of the predictions' },
  },
  params: streamPredictParams,
  create(p, ctx) {
    const connected = ctx.connectedInputs.has('model');
    if (p.model && connected) throw new Error(`stream-predict '${ctx.nodeId}': both the model param and the model port are set; use one`);
    return {
      async run({ model: refs }, send) {
        if (refs.length > 1) throw new Error(`stream-predict '${ctx.nodeId}': a second model arrived on the model port (${refs[1].path}); this stage streams one model`);
        const path = refs[0]?.path ?? p.model;
        if (!path) throw new Error(`stream-predict '${ctx.nodeId}': no model: set the model param to a model folder, or connect the model port`);
        const out = p.out || ctx.run.artifactDir(ctx.nodeId);
        const s = await streamWithProgress(p, path, out, ctx);
        ctx.logger.info(
          { bins: s.bins, predicted: s.predictedBins, predictor: s.predictor, msPerBin: s.msPerBin, passP99Ms: s.passMs.p99Ms, realTimeFactor: s.realTimeFactor, status: s.status },
          `streamed ${s.streamS.toFixed(1)} s in ${s.wallS.toFixed(1)} s (${s.predictor} predictor): ${s.msPerBin.toFixed(3)} ms per bin`,
        );
        ctx.run.metric(ctx.nodeId, { ...summaryMetrics(s), status: s.status, predictor: s.predictor });
        await send('metrics', { kind: 'metrics', sessionId: s.sessionId, label: 'stream', values: summaryMetrics(s) });
        await send('predictions', { kind: 'artifact', path: out, description: `streamed predictions of ${s.predictedBins} bins x ${s.nNeurons} neurons (predictions.npy, counts.npy, stream.json)`, sessionId: s.sessionId });
      },
    };
  },
});
