// The NDT1 architecture contribution (docs/method.md §4.1): config schema and builder for the model stage.
import { parseArchitectureConfig, type ArchitectureContribution } from '../../core/architecture.ts';
import { TOKEN_SWITCHES } from '../../core/model/transformer-config.ts';
import { Ndt1Model, ndt1ConfigSchema } from './model.ts';

export const ndt1Architecture: ArchitectureContribution<typeof ndt1ConfigSchema> = {
  name: 'ndt1',
  summary: 'Neural Data Transformer: one token per time bin, per-session stitchers, pre-LN transformer encoder, Poisson log-rates',
  tokenLayout: 'one token per time bin (all neurons of the bin), plus optional session and MtM prompt tokens in front with no position',
  configSchema: ndt1ConfigSchema,
  switches: TOKEN_SWITCHES,
  build(config, opts) {
    return new Ndt1Model(parseArchitectureConfig('ndt1', ndt1ConfigSchema, config), opts);
  },
};
