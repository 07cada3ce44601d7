// `mtm validate <graph...>`: every problem in every file, located, then exit 2 if any.
import type { Argv } from 'yargs';
import { GraphError, formatDiagnostic } from '../../../core/graph/diagnostics.ts';
import { loadGraphForCli } from '../load-graph.ts';

export const command = 'validate <graphs..>';
export const describe = 'Check graph files without running them';

export function builder(y: Argv) {
  return y
    .positional('graphs', { type: 'string', array: true, demandOption: true, describe: 'graph files' })
    .option('profile', { type: 'string', describe: 'check with this profile of the graph file applied' })
    .option('set', { type: 'string', array: true, describe: 'check with these overrides applied' })
    .option('plugin', { type: 'string', array: true, describe: 'extra plugin folder or package (repeatable)' });
}

export async function handler(argv: { graphs: string[]; set?: string[]; plugin?: string[] }): Promise<void> {
  let bad = 0;
  for (const file of argv.graphs) {
    try {
      // Required graph params (~) may be unset here: they are checked when the graph is run.
      const { graph } = await loadGraphForCli(file, { ...argv, allowUnsetParams: true });
      process.stdout.write(`ok  ${file}  (${graph.nodes.length} nodes)\n`);
    } catch (e) {
      if (!(e instanceof GraphError)) throw e;
      bad++;
      for (const d of e.diagnostics) process.stderr.write(formatDiagnostic(d) + '\n');
      process.stderr.write(`${e.diagnostics.length} problem${e.diagnostics.length === 1 ? '' : 's'} in ${file}\n`);
    }
  }
  if (bad) process.exitCode = 2;
}
