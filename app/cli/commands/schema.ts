// `mtm schema`: the JSON Schema of graph files for the stages registered now.
import type { Argv } from 'yargs';
import { registryForCli } from '../load-graph.ts';
import { graphJsonSchema } from '../../../core/graph/schema.ts';
import { writeFileAtomic } from '../../../core/io/atomic.ts';

export const command = 'schema';
export const describe = 'Write the JSON Schema of graph files (for editor completion and checks)';

export function builder(y: Argv) {
  return y
    .option('out', { type: 'string', describe: 'write to this file instead of stdout' })
    .option('plugin', { type: 'string', array: true, describe: 'extra plugin folder or package (repeatable)' });
}

export async function handler(argv: { out?: string; plugin?: string[] }): Promise<void> {
  const registry = await registryForCli(argv.plugin ?? []);
  const text = JSON.stringify(graphJsonSchema(registry), null, 2) + '\n';
  if (argv.out) {
    await writeFileAtomic(argv.out, text);
    process.stderr.write(`wrote ${argv.out}\n`);
  } else process.stdout.write(text);
}
