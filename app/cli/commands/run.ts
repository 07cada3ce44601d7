// `mtm run <graph>`: validate, make the run directory, run, and say where everything is.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { createLogger } from '../../../core/log.ts';
import { createProgress } from '../../../core/progress.ts';
import { resolvedGraphObject } from '../../../core/graph/load.ts';
import { RunDirectory, type RunInfo } from '../../../core/run/run-directory.ts';
import { runGraph } from '../../../core/runtime/run-graph.ts';
import { stageKey } from '../../../core/stage.ts';
import { loadGraphForCli } from '../load-graph.ts';
import pkg from '../../../package.json' with { type: 'json' };
import { BACKEND_CHOICES, initBackend, type BackendChoice } from '../../../core/tensor/backend.ts';
import { redactDeep, redactUrlCredentials } from '../../../core/one/errors.ts';

export const command = 'run <graph>';
export const describe = 'Run a graph file';

export function builder(y: Argv) {
  return y
    .positional('graph', { type: 'string', demandOption: true, describe: 'graph file (YAML)' })
    .option('profile', { type: 'string', describe: 'named set of graph-param values from the graph file (its profiles: section, e.g. --profile paper); --set still wins' })
    .option('set', { type: 'string', array: true, describe: 'override a graph param or <node>.<param>: --set epochs=3' })
    .option('out', { type: 'string', describe: 'run directory (default runs/<time>-<graph name>/); an existing one is resumed into' })
    .option('seed', { type: 'number', describe: "override the graph's seed" })
    .option('plugin', { type: 'string', array: true, describe: 'extra plugin folder or package (repeatable)' })
    .option('backend', { type: 'string', choices: [...BACKEND_CHOICES], describe: 'force a tensor backend (default: the best that loads: tensorflow-gpu, tensorflow, wasm, cpu)' })
    .option('max-in-flight', { type: 'number', default: 2, describe: 'items a source may run ahead of the stages below it' })
    .option('log-level', { type: 'string', default: 'info', choices: ['debug', 'info', 'warn', 'error'], describe: 'level of the log lines on stderr (logs.jsonl keeps debug)' });
}

function versions(): Record<string, string> {
  const req = createRequire(import.meta.url);
  const out: Record<string, string> = { 'mtm-flow': pkg.version, node: process.versions.node };
  for (const name of ['@tensorflow/tfjs', 'rxjs', 'inversify']) {
    try {
      out[name] = req(`${name}/package.json`).version;
    } catch {
      /* not installed: nothing to record */
    }
  }
  return out;
}

/**
 * A run.json that still says `running` when a new run starts in its folder belongs to a run that
 * never closed it: killed (SIGKILL, power loss, out of memory). It is recorded as `killed`, so the
 * new run's previousAttempts tell the truth (docs/architecture.md §9).
 */
function markKilledAttempt(out: string): void {
  const file = join(resolve(out), 'run.json');
  if (!existsSync(file)) return;
  try {
    const prev = JSON.parse(readFileSync(file, 'utf8'));
    if (prev?.status === 'running') writeFileSync(file, JSON.stringify({ ...prev, status: 'killed' }, null, 2) + '\n');
  } catch {
    // A damaged record is replaced by the new run anyway.
  }
}

export async function handler(argv: { graph: string; set?: string[]; out?: string; seed?: number; plugin?: string[]; maxInFlight: number; logLevel: string; backend?: string }): Promise<void> {
  const { graph, registry, overrides } = await loadGraphForCli(argv.graph, argv);
  if (argv.out) markKilledAttempt(argv.out);
  const dir = RunDirectory.create(graph.name, argv.out);
  const progress = createProgress();
  const logger = createLogger({ file: dir.logFile, level: argv.logLevel, write: (l) => progress.log(l) });
  const info: RunInfo = {
    graph: graph.name,
    graphFile: argv.graph,
    status: 'running',
    seed: graph.seed,
    startedAt: new Date().toISOString(),
    // What the user typed may hold a URL with a password in it (--set baseUrl=http://u:p@host).
    command: redactDeep(process.argv.slice(2)),
    overrides: redactDeep(overrides),
    versions: versions(),
    stages: Object.fromEntries(graph.nodes.map((n) => [n.id, stageKey(n.stage)])),
    plugins: Object.fromEntries(registry.plugins.map((p) => [p.manifest.name, `${p.manifest.version} (${p.source})`])),
  };
  // The tensor backend is chosen once, before any stage runs, and recorded with the run.
  const backend = await initBackend({ force: argv.backend as BackendChoice | undefined, log: (m) => logger.debug(m) });
  info.backend = `${backend.name} (${backend.package}): ${backend.reason}`;
  logger.info({ backend: backend.name }, `tensor backend: ${backend.name} — ${backend.reason}`);
  await dir.writeResolvedGraph(redactDeep(resolvedGraphObject(graph)));
  await dir.writeInfo(info);
  process.stdout.write(`run directory: ${dir.root}\n`);
  logger.info({ graph: graph.name, nodes: graph.nodes.length, seed: graph.seed }, `running ${graph.name}`);

  // First Ctrl-C: finish the items in flight and close the run properly. Second: stop now.
  const abort = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      logger.warn('interrupted: finishing the current item (Ctrl-C again to stop at once)');
      abort.abort();
    } else {
      progress.stopAll();
      void dir.writeInfo({ ...info, status: 'interrupted', finishedAt: new Date().toISOString() }).finally(() => process.exit(130));
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);

  const outcome = await runGraph({ graph, run: dir, logger, progress, signal: abort.signal, maxInFlight: argv.maxInFlight, architectures: registry.architectures });
  process.off('SIGINT', onSigint);
  process.off('SIGTERM', onSigint);
  progress.stopAll();
  // A stage cut short by Ctrl-C (a download aborted mid-file) fails with the abort: that run was
  // interrupted by its user, not failed (exit 130 like any interrupted run).
  if (outcome.status === 'failed' && abort.signal.aborted) {
    logger.info({ error: outcome.error ? redactUrlCredentials(outcome.error.message) : undefined }, 'the failure came after Ctrl-C: the run is interrupted');
    outcome.status = 'interrupted';
    outcome.error = undefined;
  }
  const e = outcome.error;
  const message = e ? redactUrlCredentials(e.message) : '';
  await dir.writeInfo({
    ...info,
    status: outcome.status,
    finishedAt: new Date().toISOString(),
    nodes: outcome.nodes,
    ...(dir.results.length ? { results: dir.results } : {}),
    ...(e ? { error: { node: e.nodeId, stage: e.stage, item: e.item, message } } : {}),
  });
  if (e) {
    logger.error({ node: e.nodeId, item: e.item }, message);
    // The stack is for developers: logs.jsonl only (it keeps debug), never the terminal.
    logger.debug({ node: e.nodeId, stack: redactUrlCredentials(e.cause instanceof Error ? String(e.cause.stack) : String(e.cause)) }, 'stack of the failure');
    process.stderr.write(`run failed: ${message}\nsee ${dir.logFile}\n`);
    process.exitCode = 1;
    return;
  }
  logger.info({ status: outcome.status }, `run ${outcome.status}`);
  for (const r of dir.results) process.stdout.write(`${r.label}: ${r.path}\n`);
  process.stdout.write(`${outcome.status}: ${dir.root}\n`);
  if (outcome.status === 'interrupted') process.exitCode = 130;
}
