// The `mtm` command line. Exit codes: 0 ok, 1 run failed, 2 bad input (graph, flags, plugin).
import yargs from 'yargs';
import { GraphError, formatDiagnostic } from '../../core/graph/diagnostics.ts';
import { redactUrlCredentials } from '../../core/one/errors.ts';
import { findInputFileError } from '../../core/io/input-error.ts';
import * as run from './commands/run.ts';
import * as validate from './commands/validate.ts';
import * as stages from './commands/stages.ts';
import * as schema from './commands/schema.ts';
import * as simulate from './commands/simulate.ts';
import * as stream from './commands/stream.ts';

export async function main(args: string[]): Promise<number> {
  try {
    await yargs(args)
      .scriptName('mtm')
      .usage('$0 <command> [options]\n\nmtm-flow: multi-task-masking foundation models of neural spiking data, as graph files of typed stages.')
      .command(run as any)
      .command(validate as any)
      .command(stages as any)
      .command(schema as any)
      .command(simulate as any)
      .command(stream as any)
      .demandCommand(1, 'name a command (mtm --help lists them)')
      .strict()
      .help()
      .alias('h', 'help')
      .version()
      .wrap(Math.min(110, process.stdout.columns || 110))
      .fail((msg, err) => {
        if (err) throw err;
        throw new UsageError(msg);
      })
      .parseAsync();
    return Number(process.exitCode ?? 0);
  } catch (e) {
    if (e instanceof GraphError) {
      for (const d of e.diagnostics) process.stderr.write(redactUrlCredentials(formatDiagnostic(d)) + '\n');
      return 2;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\nRun 'mtm --help' for usage.\n`);
      return 2;
    }
    const bad = findInputFileError(e);
    if (bad) {
      process.stderr.write(`${redactUrlCredentials(bad.message)}\n`);
      return 2;
    }
    // The stack is for developers (MTM_DEBUG=1); a user gets the message. Either way without credentials.
    const text = process.env.MTM_DEBUG ? ((e as Error)?.stack ?? String(e)) : ((e as Error)?.message ?? String(e));
    process.stderr.write(`mtm: ${redactUrlCredentials(text)}\n`);
    return 1;
  }
}

class UsageError extends Error {}
