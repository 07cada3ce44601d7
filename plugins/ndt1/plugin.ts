// The NDT1 plugin manifest: contributes the ndt1 architecture (docs/method.md §4.1).
import { definePlugin } from '../../core/plugin.ts';
import pkg from './package.json' with { type: 'json' };
import { ndt1Architecture } from './architecture.ts';

export const plugin = definePlugin({
  name: 'ndt1',
  version: pkg.version,
  description: 'NDT1: one token per time bin, per-session stitchers, learned MtM prompt and session tokens',
  architectures: [ndt1Architecture],
});

export default plugin;
