// Helpers for unit tests: a StageContext with no container, no terminal and a throw-away run folder.
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subject, from, lastValueFrom, toArray, type Observable } from 'rxjs';
import pino from 'pino';
import { createRng, hashString } from './rng.ts';
import { pulledIterable } from './runtime/demand.ts';
import type { StageContext, StageDescriptor, Streams } from './stage.ts';

const made: string[] = [];
process.once('exit', () => {
  // Keep them with MTM_KEEP_TEST_DIRS=1 to look at what a test wrote.
  if (!process.env.MTM_KEEP_TEST_DIRS) for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A fresh folder under the system temp dir, removed when the test process exits. */
export function tempDir(prefix = 'mtm-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

export function testContext(nodeId = 'test', seed = 1, root = tempDir()): StageContext {
  return {
    nodeId,
    seed,
    logger: pino({ level: 'silent' }),
    rng: createRng(hashString(nodeId, seed)),
    run: {
      root,
      artifactDir(id) {
        const d = join(root, 'artifacts', id);
        mkdirSync(d, { recursive: true });
        return d;
      },
      metric(id, record) {
        appendFileSync(join(root, 'metrics.jsonl'), JSON.stringify({ node: id, ...record }) + '\n');
      },
    },
    signal: new AbortController().signal,
    progress: () => ({ increment() {}, setTotal() {}, stop() {} }),
    source: <T>(items: AsyncIterable<T> | Iterable<T>): Observable<T> => from(items as Iterable<T>),
    pull: <T>(stream: Observable<T>) => pulledIterable(stream, () => {}),
    architectures: new Map(),
    connectedInputs: new Set(),
  };
}

/** An input stream a test feeds by hand, to see what a stage does before its input ends. */
export function manualStream<T>(): { stream: Observable<T>; push(item: T): void; end(): void } {
  const s = new Subject<T>();
  return { stream: s.asObservable(), push: (item) => s.next(item), end: () => s.complete() };
}

/**
 * Runs one stage between synthetic inputs and capture sinks: validates params through the
 * stage's own schema (defaults filled), then collects every output port into an array.
 */
export async function runStage(
  stage: StageDescriptor<any>,
  params: Record<string, unknown>,
  inputs: Record<string, unknown[]> = {},
  ctx: StageContext = testContext(stage.id),
): Promise<Record<string, unknown[]>> {
  const parsed = stage.params.parse(params);
  ctx = { ...ctx, connectedInputs: new Set(Object.keys(inputs)) };
  const streams: Streams = {};
  for (const [port, items] of Object.entries(inputs)) streams[port] = from(items);
  const outputs = stage.create(parsed, ctx)(streams);
  const result: Record<string, unknown[]> = {};
  await Promise.all(
    Object.entries(outputs).map(async ([port, obs]) => {
      result[port] = await lastValueFrom(obs.pipe(toArray()));
    }),
  );
  return result;
}
