// Plugins contribute stages and architectures through one inversify ContainerModule
// (docs/architecture.md §6, §7). The container is built once, in app/di/bootstrap.ts.
import { ContainerModule } from 'inversify';
import type { StageDescriptor } from './stage.ts';
import type { ArchitectureContribution } from './architecture.ts';

/** Multi-injection token: every stage any plugin contributes. */
export const StageContribution = Symbol('StageContribution');
export type StageContribution = StageDescriptor;

/** Multi-injection token: every model architecture any plugin contributes. */
export const ArchitectureToken = Symbol('ArchitectureContribution');

export interface PluginManifest {
  name: string;
  version: string;
  description: string;
  stages: StageDescriptor<any>[];
  architectures: ArchitectureContribution[];
  /** Binds the contributions above (and anything else the plugin needs). */
  module: ContainerModule;
}

/**
 * Builds a manifest whose ContainerModule binds each stage and architecture to the shared
 * multi-injection tokens. `extra` may add further bindings of the plugin's own.
 */
export function definePlugin(p: {
  name: string;
  version: string;
  description: string;
  stages?: StageDescriptor<any>[];
  architectures?: ArchitectureContribution[];
  extra?: ConstructorParameters<typeof ContainerModule>[0];
}): PluginManifest {
  const stages = p.stages ?? [];
  const architectures = p.architectures ?? [];
  const module = new ContainerModule(async (options) => {
    for (const s of stages) options.bind<StageContribution>(StageContribution).toConstantValue(s);
    for (const a of architectures) options.bind<ArchitectureContribution>(ArchitectureToken).toConstantValue(a);
    if (p.extra) await p.extra(options);
  });
  return { name: p.name, version: p.version, description: p.description, stages, architectures, module };
}
