// What the plugins contributed, indexed for the loader and the CLI. Built once at start-up.
import { z } from 'zod';
import type { StageDescriptor } from './stage.ts';
import { stageKey } from './stage.ts';
import type { ArchitectureContribution } from './architecture.ts';
import type { PluginManifest } from './plugin.ts';
import { isPayloadType } from './payloads.ts';

export interface LoadedPlugin {
  manifest: PluginManifest;
  /** Folder the plugin was loaded from ('builtin' for stages/). */
  source: string;
}

export class Registry {
  private readonly stages = new Map<string, StageDescriptor<any>>();
  private readonly byId = new Map<string, StageDescriptor<any>[]>();
  readonly architectures = new Map<string, ArchitectureContribution>();

  constructor(
    stages: StageDescriptor<any>[],
    architectures: ArchitectureContribution[],
    readonly plugins: LoadedPlugin[] = [],
  ) {
    for (const s of stages) {
      checkStageDescriptor(s);
      const key = stageKey(s);
      if (this.stages.has(key)) throw new Error(`stage ${key} is contributed twice (check the plugins: ${plugins.map((p) => p.manifest.name).join(', ')})`);
      this.stages.set(key, s);
      const list = this.byId.get(s.id) ?? [];
      list.push(s);
      list.sort((a, b) => a.version - b.version);
      this.byId.set(s.id, list);
    }
    for (const a of architectures) {
      if (this.architectures.has(a.name)) throw new Error(`architecture '${a.name}' is contributed twice`);
      this.architectures.set(a.name, a);
    }
  }

  stage(id: string, version: number): StageDescriptor<any> | undefined {
    return this.stages.get(`${id}@${version}`);
  }

  versions(id: string): number[] {
    return (this.byId.get(id) ?? []).map((s) => s.version);
  }

  stageIds(): string[] {
    return [...this.byId.keys()].sort();
  }

  allStages(): StageDescriptor<any>[] {
    return [...this.stages.values()].sort((a, b) => a.id.localeCompare(b.id) || a.version - b.version);
  }
}

/** Peels default/optional/nullable wrappers to reach the schema that carries the type. */
export function unwrapSchema(s: z.ZodType): { inner: z.ZodType; hasDefault: boolean; defaultValue: unknown; description?: string } {
  let cur: any = s;
  let hasDefault = false;
  let defaultValue: unknown;
  let description: string | undefined = cur.description;
  for (;;) {
    const t = cur?.def?.type;
    if (t === 'default' || t === 'prefault') {
      hasDefault = true;
      const d = cur.def.defaultValue;
      defaultValue = typeof d === 'function' ? d() : d;
    } else if (t !== 'optional' && t !== 'nullable' && t !== 'readonly') break;
    cur = cur.def.innerType;
    description ??= cur.description;
  }
  return { inner: cur, hasDefault, defaultValue, description };
}

/** Catches a plugin author's mistakes at start-up, with the stage named. */
export function checkStageDescriptor(s: StageDescriptor<any>): void {
  const where = `stage '${s?.id}'`;
  if (!s || typeof s.id !== 'string' || !/^[a-z][a-z0-9-]*$/.test(s.id)) throw new Error(`${where}: id must be kebab-case`);
  if (!Number.isInteger(s.version) || s.version < 1) throw new Error(`${where}: version must be a positive integer`);
  if (typeof s.summary !== 'string' || !s.summary) throw new Error(`${where}: summary is missing`);
  if (typeof s.create !== 'function') throw new Error(`${where}: create() is missing`);
  for (const [kind, ports] of [['input', s.inputs], ['output', s.outputs]] as const) {
    for (const [name, p] of Object.entries(ports ?? {})) {
      if (!isPayloadType(p.type)) throw new Error(`${where}: ${kind} port '${name}' has unknown payload type '${p.type}'`);
      if (!/^[a-zA-Z][a-zA-Z0-9]*$/.test(name)) throw new Error(`${where}: ${kind} port '${name}' must be camelCase`);
    }
  }
  if (!(s.params instanceof z.ZodObject)) throw new Error(`${where}: params must be a zod object`);
  for (const [name, field] of Object.entries(s.params.shape)) {
    const u = unwrapSchema(field as z.ZodType);
    if (!u.description) throw new Error(`${where}: param '${name}' has no description`);
    if (!u.hasDefault && !(field as any).safeParse(undefined).success) throw new Error(`${where}: param '${name}' has no default`);
  }
}
