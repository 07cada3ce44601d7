// The built-in stages, contributed like any plugin's.
import { definePlugin } from '../core/plugin.ts';
import pkg from '../package.json' with { type: 'json' };
import { maskingSampler } from './masking-sampler.ts';
import { oneDownload } from './one-download.ts';

export const builtinPlugin = definePlugin({
  name: 'builtin',
  version: pkg.version,
  description: 'The stages that ship with mtm-flow: data path, masking, training, evaluation, writers',
  stages: [oneDownload, maskingSampler],
});
