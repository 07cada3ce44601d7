// `mtm simulate`: writes simulated sessions into a ONE-layout cache (the embedded default data).
import type { Argv } from 'yargs';
import { resolve } from 'node:path';
import { resolvedSizes, SimParamError, simulateCache } from '../../../core/sim/cache.ts';
import { simulateParams } from '../../../stages/simulate.ts';
import { GraphError, didYouMean } from '../../../core/graph/diagnostics.ts';

export const command = 'simulate';
export const describe = 'Write simulated multi-region sessions (with their true rates) into a ONE-layout cache';

export function builder(y: Argv) {
  return y
    .option('out', { type: 'string', demandOption: true, describe: 'cache folder to write (created if missing)' })
    .option('sessions', { type: 'number', default: 3, describe: 'how many sessions' })
    .option('seed', { type: 'number', default: 42, describe: 'simulation seed (same seed, same bytes)' })
    .option('set', { type: 'string', array: true, describe: "other simulate-stage params, e.g. --set trials=[100,150] (see 'mtm stages simulate')" })
    .option('json', { type: 'boolean', default: false, describe: 'print the sessions as JSON' });
}

export async function handler(argv: { out: string; sessions: number; seed: number; set?: string[]; json: boolean }): Promise<void> {
  const { parse } = await import('yaml');
  const extra: Record<string, unknown> = {};
  for (const s of argv.set ?? []) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new GraphError([{ file: '--set', line: 0, col: 0, path: s, message: 'expected key=value' }]);
    extra[s.slice(0, eq)] = parse(s.slice(eq + 1));
  }
  const parsed = simulateParams.strict().safeParse({ ...extra, sessions: argv.sessions, seed: argv.seed, out: resolve(argv.out) });
  if (!parsed.success) {
    const known = Object.keys(simulateParams.shape);
    throw new GraphError(
      parsed.error.issues.map((i) => {
        const keys = i.code === 'unrecognized_keys' ? (i as { keys: string[] }).keys : [];
        const hint = keys.map((k) => didYouMean(k, known)).join('');
        return { file: '--set', line: 0, col: 0, path: keys.join(',') || i.path.join('.'), message: `${i.message}${hint}` };
      }),
    );
  }
  const { sessions, seed, reuse, out, ...sizes } = parsed.data;
  try {
    // Checked before anything is written: a value out of range is bad input (exit 2), not a failed run.
    resolvedSizes(sizes);
  } catch (e) {
    if (e instanceof SimParamError) throw new GraphError([{ file: '--set', line: 0, col: 0, path: e.field, message: e.message }]);
    throw e;
  }
  const infos = await simulateCache({ ...sizes, out, sessions, seed: seed ?? argv.seed, reuse }, (info) => {
    if (!argv.json) process.stderr.write(`simulated ${info.eid}  ${info.sessionPath}  ${info.nTrials} trials, ${info.nNeurons} neurons, regions ${info.regions.join(' ')}\n`);
  });
  if (argv.json) process.stdout.write(JSON.stringify(infos.map(({ ref, ...i }) => ({ ...i, path: ref.path })), null, 2) + '\n');
  else process.stdout.write(`${infos.length} session(s) in ${out}\n`);
}
