// Adapts a stage body (map, generate or run; core/stage.ts) into the operator the runtime wires,
// so that stages never touch subscriptions, subjects or collecting (docs/architecture.md §4.4).
//
// What the adapter guarantees, for every body:
// - Inputs are subscribed while the graph is wired (an item sent before a late subscription
//   would be lost): `collect` ports through collectNow, the others through ctx.pull, so each item
//   a body takes counts as the node's progress and paces the sources above.
// - The body starts when its (first) output is first pulled, as a generator would; output on
//   that port is pulled one value at a time through ctx.source (back-pressure); the other ports
//   replay everything sent to them, so a consumer reading only one port never holds the body back.
// - An error thrown by the body fails every output port; an early stop downstream (a `take`,
//   the run ending) unsubscribes the inputs and stops the body at its next send.
import { EMPTY, ReplaySubject, concatMap, type Observable } from 'rxjs';
// The adapter sees stages structurally (these few fields), so core/stage.ts can import it without
// a circle between the contract and the runtime.
type Streams = Record<string, Observable<any>>;
type StageOperator = (inputs: Streams) => Streams;
type Ports = Record<string, { collect?: boolean; optional?: boolean }>;
interface StageContext {
  source<T>(items: AsyncIterable<T> | Iterable<T>): Observable<T>;
  pull<T>(stream: Observable<T>): AsyncIterable<T>;
}
import { collectNow } from './collect.ts';

interface StageShape {
  id: string;
  inputs: Ports;
  outputs: Ports;
}

/** The adapted operator: any subset of the input streams in (absent ones are empty). */
type Adapted = (streams: Partial<Streams>) => Streams;

type AnyBody =
  | { map(item: unknown): unknown }
  | { generate(inputs: Record<string, unknown>): AsyncIterable<unknown> }
  | { run(inputs: Record<string, unknown>, send: (port: string, value: unknown) => Promise<void>): Promise<void> };

/** Returns the operator of a body; an operator (the escape hatch) gets every declared input, absent ones empty. */
export function bodyOperator(stage: StageShape, body: unknown, ctx: StageContext): Adapted {
  if (typeof body === 'function') {
    const op = body as StageOperator;
    return (streams) => op(Object.fromEntries(Object.keys(stage.inputs).map((port) => [port, streams[port] ?? EMPTY])));
  }
  const b = body as AnyBody;
  if (b && 'map' in b) return mapOperator(stage, b.map.bind(b));
  if (b && 'generate' in b) return generateOperator(stage, b.generate.bind(b), ctx);
  if (b && 'run' in b) return runOperator(stage, b.run.bind(b), ctx);
  throw new Error(`stage ${stage.id}: create must return an operator or an object with map, generate or run`);
}

function onlyPort(stage: StageShape, side: 'inputs' | 'outputs', kind: string): string {
  const ports = Object.keys(stage[side]);
  if (ports.length !== 1) throw new Error(`stage ${stage.id}: a ${kind} body needs exactly one ${side === 'inputs' ? 'input' : 'output'} port, it declares ${ports.length}`);
  return ports[0];
}

function mapOperator(stage: StageShape, map: (item: unknown) => unknown): Adapted {
  const inPort = onlyPort(stage, 'inputs', 'map');
  const outPort = onlyPort(stage, 'outputs', 'map');
  if (stage.inputs[inPort].collect) throw new Error(`stage ${stage.id}: a map body takes items one by one; its input '${inPort}' cannot be collect`);
  // concatMap: one item at a time, in order; what the body throws fails the stream.
  return (streams: Partial<Streams>) => ({ [outPort]: (streams[inPort] ?? EMPTY).pipe(concatMap(async (item) => map(item))) });
}

function generateOperator(stage: StageShape, generate: (inputs: Record<string, unknown>) => AsyncIterable<unknown>, ctx: StageContext): Adapted {
  const outPort = onlyPort(stage, 'outputs', 'generate');
  return (streams: Partial<Streams>) => {
    const inputs = subscribeInputs(stage.inputs, streams, ctx);
    async function* items(): AsyncGenerator<unknown> {
      try {
        yield* generate(await inputs.ready());
      } finally {
        await inputs.close();
      }
    }
    return { [outPort]: ctx.source(items()) };
  };
}

type RunFn = (inputs: Record<string, unknown>, send: (port: string, value: unknown) => Promise<void>) => Promise<void>;

function runOperator(stage: StageShape, run: RunFn, ctx: StageContext): Adapted {
  const [main, ...others] = Object.keys(stage.outputs);
  if (main === undefined) throw new Error(`stage ${stage.id}: a run body needs at least one output port`);
  return (streams: Partial<Streams>) => {
    const inputs = subscribeInputs(stage.inputs, streams, ctx);
    const side = new Map(others.map((port) => [port, new ReplaySubject<unknown>()]));
    const mainItems = paced(async (sendMain) => {
      const send = (port: string, value: unknown): Promise<void> => {
        if (port === main) return sendMain(value);
        const subject = side.get(port);
        if (!subject) throw new Error(`stage ${stage.id}: send on '${port}', which is not an output port (${Object.keys(stage.outputs).join(', ')})`);
        subject.next(value);
        return Promise.resolve();
      };
      try {
        await run(await inputs.ready(), send);
        for (const s of side.values()) s.complete();
      } catch (err) {
        for (const s of side.values()) err instanceof OutputStopped ? s.complete() : s.error(err);
        throw err;
      } finally {
        await inputs.close();
      }
    });
    return { [main]: ctx.source(mainItems), ...Object.fromEntries(side) };
  };
}

/** What send rejects with once the main output's consumer has gone. */
class OutputStopped extends Error {
  constructor() {
    super('the output is no longer read');
  }
}

/**
 * The values a `send`-style body passes to `send`, as an async generator with `yield`'s timing:
 * the body starts on the first pull, and each send resolves when the next value is pulled.
 */
export async function* paced<T>(body: (send: (value: T) => Promise<void>) => Promise<void>): AsyncGenerator<T> {
  let offered: { value: T; resume: () => void; stop: (e: Error) => void } | undefined;
  let waiting: { resume: () => void; stop: (e: Error) => void } | undefined;
  let wake: (() => void) | undefined;
  let state: { done: true } | { failed: unknown } | undefined;
  let stopped = false;
  const send = (value: T) =>
    new Promise<void>((resume, stop) => {
      if (stopped) return stop(new OutputStopped());
      offered = { value, resume, stop };
      wake?.();
    });
  body(send).then(
    () => (state = { done: true }),
    (failed) => (state = { failed }),
  ).finally(() => wake?.());
  try {
    for (;;) {
      while (!offered && !state) await new Promise<void>((r) => (wake = r));
      wake = undefined;
      if (offered) {
        const { value, resume, stop } = offered;
        offered = undefined;
        waiting = { resume, stop };
        yield value;
        waiting = undefined;
        resume();
        continue;
      }
      if (state && 'failed' in state && !(state.failed instanceof OutputStopped)) throw state.failed;
      return;
    }
  } finally {
    // The consumer left (or the body ended): a body still waiting in send stops there.
    stopped = true;
    waiting?.stop(new OutputStopped());
    offered?.stop(new OutputStopped());
  }
}

interface SubscribedInputs {
  /** The body's inputs, once every collected port has completed. */
  ready(): Promise<Record<string, unknown>>;
  /** Unsubscribes the streaming ports (the body is done with them). */
  close(): Promise<void>;
}

function subscribeInputs(ports: Ports, streams: Partial<Streams>, ctx: StageContext): SubscribedInputs {
  const inputs: Record<string, unknown> = {};
  const collected: [string, Promise<unknown[]>][] = [];
  const iterators: AsyncIterator<unknown>[] = [];
  for (const [port, spec] of Object.entries(ports)) {
    const stream: Observable<unknown> = streams[port] ?? EMPTY;
    if (spec.collect) {
      collected.push([port, collectNow(stream)]);
      continue;
    }
    const it = ctx.pull(stream)[Symbol.asyncIterator](); // subscribes now
    iterators.push(it);
    inputs[port] = { [Symbol.asyncIterator]: () => it };
  }
  return {
    async ready() {
      for (const [port, all] of collected) inputs[port] = await all;
      return inputs;
    },
    async close() {
      await Promise.all(iterators.map((it) => it.return?.()));
    },
  };
}
