// The NDT2 architecture contribution (docs/method.md §4.2): config schema and builder for the model stage.
import { parseArchitectureConfig, type ArchitectureContribution } from '../../core/architecture.ts';
import { TOKEN_SWITCHES } from '../../core/model/transformer-config.ts';
import { Ndt2Model, ndt2ConfigSchema } from './model.ts';

export const ndt2Architecture: ArchitectureContribution<typeof ndt2ConfigSchema> = {
  name: 'ndt2',
  summary: 'Neural Data Transformer 2: space-time patch tokens, patch MLP with learned time- and space-patch embeddings, pre-LN transformer encoder, per-token readout to Poisson log-rates',
  tokenLayout: 'one token per (time bin x patchSize neurons) patch, time-major; the last patch of a session is zero-padded and its padding cropped from the output; optional session and MtM prompt tokens in front with no position',
  configSchema: ndt2ConfigSchema,
  switches: TOKEN_SWITCHES,
  build(config, opts) {
    return new Ndt2Model(parseArchitectureConfig('ndt2', ndt2ConfigSchema, config), opts);
  },
};
