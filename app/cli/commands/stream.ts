// `mtm stream`: a new recording streamed through a trained model, causal predictions written as they come (the stream-predict stage without a graph).
import type { Argv } from 'yargs';
import { resolve, join } from 'node:path';
import { registryForCli } from '../load-graph.ts';
import { GraphError, didYouMean } from '../../../core/graph/diagnostics.ts';
import { createLogger } from '../../../core/log.ts';
import { createProgress } from '../../../core/progress.ts';
import { BACKEND_CHOICES, initBackend, type BackendChoice } from '../../../core/tensor/backend.ts';
import { runStreamPredict, streamPredictParams } from '../../../stages/stream-predict.ts';

export const command = 'stream';
const MIN_SPEED = 0.01;
const MAX_SPEED = 1e6;
export const describe = 'Stream a recording (phy/Kilosort folder, ALF session or synthetic:<minutes>) through a trained model: causal rate predictions, written as they come';

export function builder(y: Argv) {
  return y
    .option('model', { type: 'string', demandOption: true, describe: 'trained model folder (model.json + weights.bin)' })
    .option('source', { type: 'string', demandOption: true, describe: 'phy/Kilosort output folder, ALF session folder, or synthetic:<minutes>' })
    .option('speed', { type: 'number', default: 0, describe: 'replay speed: 1 = real time, 10 = ten times faster, 0 = as fast as the model goes' })
    .option('out', { type: 'string', describe: 'output folder (default runs/<time>-stream/)' })
    .option('set', { type: 'string', array: true, describe: "other stream-predict params, e.g. --set strideBins=5 --set calibrationS=30 (see 'mtm stages stream-predict')" })
    .option('seed', { type: 'number', default: 1, describe: 'seeds the calibration and a synthetic source' })
    .option('plugin', { type: 'string', array: true, describe: 'extra plugin folder or package providing the architecture (repeatable)' })
    .option('backend', { type: 'string', choices: [...BACKEND_CHOICES], describe: 'force a tensor backend (default: the best that loads)' })
    .option('json', { type: 'boolean', default: false, describe: 'print the summary as JSON' })
    .option('log-level', { type: 'string', default: 'info', choices: ['debug', 'info', 'warn', 'error'], describe: 'level of the log lines on stderr' });
}

interface StreamArgs {
  model: string;
  source: string;
  speed: number;
  out?: string;
  set?: string[];
  seed: number;
  plugin?: string[];
  backend?: string;
  json: boolean;
  logLevel: string;
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
}

export async function handler(argv: StreamArgs): Promise<void> {
  const { parse } = await import('yaml');
  const extra: Record<string, unknown> = {};
  for (const s of argv.set ?? []) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new GraphError([{ file: '--set', line: 0, col: 0, path: s, message: 'expected key=value (e.g. --set strideBins=5)' }]);
    extra[s.slice(0, eq).trim()] = parse(s.slice(eq + 1));
  }
  // 0 is as fast as the model goes; anything else is a replay speed a timer can keep (a speed of
  // 1e-9 would ask for waits of years, which overflow the timer and then fire at once).
  if (!(argv.speed === 0 || (Number.isFinite(argv.speed) && argv.speed >= MIN_SPEED && argv.speed <= MAX_SPEED))) {
    throw new GraphError([{ file: '--speed', line: 0, col: 0, path: 'speed', message: `replay speed ${argv.speed} is out of range: 0 (as fast as possible) or ${MIN_SPEED} to ${MAX_SPEED}` }]);
  }
  const out = resolve(argv.out ?? join('runs', `${stamp()}-stream`));
  const parsed = streamPredictParams.strict().safeParse({ ...extra, model: resolve(argv.model), source: argv.source, speed: argv.speed, out });
  if (!parsed.success) {
    const known = Object.keys(streamPredictParams.shape);
    throw new GraphError(
      parsed.error.issues.map((i) => {
        const keys = i.code === 'unrecognized_keys' ? (i as { keys: string[] }).keys : [];
        return { file: '--set', line: 0, col: 0, path: keys.join(',') || i.path.join('.'), message: `${i.message}${keys.map((k) => didYouMean(k, known)).join('')}` };
      }),
    );
  }
  const p = parsed.data;
  const progress = createProgress();
  const logger = createLogger({ level: argv.logLevel, write: (l) => progress.log(l) });
  const registry = await registryForCli(argv.plugin ?? []);
  const backend = await initBackend({ force: argv.backend as BackendChoice | undefined, log: (m) => logger.debug(m) });
  logger.info({ backend: backend.name }, `tensor backend: ${backend.name} — ${backend.reason}`);

  const abort = new AbortController();
  const onSigint = () => {
    if (abort.signal.aborted) process.exit(130);
    logger.warn('interrupted: closing the output files (Ctrl-C again to stop at once)');
    abort.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  const bar = progress('stream', 0);
  let done = 0;
  try {
    const s = await runStreamPredict(p, p.model, out, {
      architectures: registry.architectures,
      seed: argv.seed,
      signal: abort.signal,
      log: (m, f) => logger.info(f ?? {}, m),
      onProgress: (pr) => {
        if (done === 0) bar.setTotal(pr.totalBins);
        bar.increment(pr.bins - done, `${pr.streamS.toFixed(0)} s, ${(pr.streamS / pr.wallS).toFixed(1)}x real time`);
        done = pr.bins;
      },
    });
    bar.stop();
    progress.stopAll();
    if (argv.json) process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    else {
      process.stdout.write(
        `${s.status}: ${s.predictedBins} bins x ${s.nNeurons} neurons predicted (${s.streamS.toFixed(1)} s of recording in ${s.wallS.toFixed(1)} s, ${s.realTimeFactor.toFixed(1)}x real time)\n` +
          `  ${s.msPerBin.toFixed(3)} ms per bin (pass p50 ${s.passMs.p50Ms.toFixed(2)} ms, p99 ${s.passMs.p99Ms.toFixed(2)} ms, every ${s.strideBins} bins)\n` +
          (s.calibration ? `  calibration: ${s.calibration.bins} bins, ${s.calibration.steps} steps, masked loss ${s.calibration.firstLoss.toFixed(4)} -> ${s.calibration.lastLoss.toFixed(4)}\n` : '') +
          `  ${out}\n`,
      );
    }
    if (s.status === 'interrupted') process.exitCode = 130;
  } finally {
    bar.stop();
    progress.stopAll();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}
