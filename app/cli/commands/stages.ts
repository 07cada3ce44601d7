// `mtm stages [id]`: what is registered — ports, params with defaults and descriptions.
import type { Argv } from 'yargs';
import { registryForCli } from '../load-graph.ts';
import { unwrapSchema } from '../../../core/registry.ts';
import { GraphError } from '../../../core/graph/diagnostics.ts';
import { didYouMean } from '../../../core/graph/diagnostics.ts';
import { stageKey, type StageDescriptor } from '../../../core/stage.ts';
import { z } from 'zod';

export const command = 'stages [id]';
export const describe = 'List the registered stages (and architectures), or show one stage';

export function builder(y: Argv) {
  return y
    .positional('id', { type: 'string', describe: 'show only this stage' })
    .option('plugin', { type: 'string', array: true, describe: 'extra plugin folder or package (repeatable)' })
    .option('json', { type: 'boolean', default: false, describe: 'machine-readable output' });
}

function typeLabel(s: z.ZodType): string {
  const j = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Record<string, any>;
  if (j.enum) return j.enum.map((e: unknown) => JSON.stringify(e)).join('|');
  if (j.type === 'array') return `${j.items?.type ?? 'any'}[]`;
  return j.type ?? (j.anyOf ? 'union' : 'any');
}

export function describeStage(s: StageDescriptor<any>) {
  return {
    stage: stageKey(s),
    summary: s.summary,
    spec: s.spec,
    inputs: Object.fromEntries(Object.entries(s.inputs).map(([k, p]) => [k, { ...p }])),
    outputs: Object.fromEntries(Object.entries(s.outputs).map(([k, p]) => [k, { ...p }])),
    params: Object.fromEntries(
      Object.entries(s.params.shape).map(([k, f]) => {
        const u = unwrapSchema(f as z.ZodType);
        return [k, { type: typeLabel(u.inner), default: u.defaultValue, description: u.description }];
      }),
    ),
  };
}

export async function handler(argv: { id?: string; plugin?: string[]; json: boolean }): Promise<void> {
  const registry = await registryForCli(argv.plugin ?? []);
  let stages = registry.allStages();
  if (argv.id) {
    const [id, v] = argv.id.split('@');
    stages = stages.filter((s) => s.id === id && (v === undefined || String(s.version) === v));
    if (!stages.length) throw new GraphError([{ file: 'mtm stages', line: 0, col: 0, path: argv.id, message: `no such stage${didYouMean(id, registry.stageIds())}` }]);
  }
  const described = stages.map(describeStage);
  const archs = [...registry.architectures.values()].map((a) => ({ name: a.name, summary: a.summary, tokenLayout: a.tokenLayout }));
  if (argv.json) {
    process.stdout.write(JSON.stringify({ stages: described, architectures: argv.id ? undefined : archs }, null, 2) + '\n');
    return;
  }
  const lines: string[] = [];
  for (const d of described) {
    lines.push(`${d.stage}  ${d.summary}${d.spec ? `  [${d.spec}]` : ''}`);
    for (const [k, p] of Object.entries(d.inputs)) lines.push(`    in   ${k}: ${p.type}${p.collect ? ' (whole stream)' : ''}${p.optional ? ' (optional)' : ''}  ${p.description}`);
    for (const [k, p] of Object.entries(d.outputs)) lines.push(`    out  ${k}: ${p.type}  ${p.description}`);
    for (const [k, p] of Object.entries(d.params)) lines.push(`    param ${k}: ${p.type} = ${JSON.stringify(p.default)}  ${p.description}`);
    lines.push('');
  }
  if (!argv.id) {
    lines.push(archs.length ? 'architectures:' : 'architectures: (none registered)');
    for (const a of archs) lines.push(`    ${a.name}  ${a.summary}  (tokens: ${a.tokenLayout})`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}
