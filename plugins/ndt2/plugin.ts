// The NDT2 plugin manifest: contributes the ndt2 architecture (docs/method.md §4.2).
import { definePlugin } from '../../core/plugin.ts';
import pkg from './package.json' with { type: 'json' };
import { ndt2Architecture } from './architecture.ts';

export const plugin = definePlugin({
  name: 'ndt2',
  version: pkg.version,
  description: 'NDT2: space-time patch tokens (1 bin x P neurons), shared patch embedding and readout, learned MtM prompt and session tokens',
  architectures: [ndt2Architecture],
});

export default plugin;
