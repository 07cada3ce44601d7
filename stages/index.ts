// The built-in stages, contributed like any plugin's.
import { definePlugin } from '../core/plugin.ts';
import pkg from '../package.json' with { type: 'json' };
import { maskingSampler } from './masking-sampler.ts';
import { trainModel } from './train-model.ts';
import { evaluate } from './evaluate.ts';
import { report } from './report.ts';
import { streamPredict } from './stream-predict.ts';
import { oneDownload } from './one-download.ts';
import { simulate } from './simulate.ts';
import { spikeBinning } from './spike-binning.ts';
import { regionLabelling } from './region-labelling.ts';
import { writeBinnedSession } from './write-binned-session.ts';
import { selectSessions } from './select-sessions.ts';
import { sweepReport } from './sweep-report.ts';

export const builtinPlugin = definePlugin({
  name: 'builtin',
  version: pkg.version,
  description: 'The stages that ship with mtm-flow: data path, masking, training, evaluation, writers',
  // In data-flow order: source, binning, labelling, selection, writing, masking, training, evaluation, reports, streaming.
  stages: [simulate, oneDownload, spikeBinning, regionLabelling, selectSessions, writeBinnedSession, maskingSampler, trainModel, evaluate, report, sweepReport, streamPredict],
});
