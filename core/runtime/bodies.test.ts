// The body adapter: what map, generate and run bodies are promised (docs/architecture.md §4.4).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lastValueFrom, of, take, toArray } from 'rxjs';
import { z } from 'zod';
import { defineStage, type StageBody, type Ports } from '../stage.ts';
import type { Metrics } from '../payloads.ts';
import { manualStream, runStage, testContext } from '../testing.ts';
import { pulledIterable } from './demand.ts';
import { paced } from './bodies.ts';
import { runGraph } from './run-graph.ts';
import { Registry } from '../registry.ts';
import { loadGraphText } from '../graph/load.ts';
import { silentLogger } from '../log.ts';

const m = (i: number): Metrics => ({ kind: 'metrics', sessionId: `s${i}`, values: { i } });
const port = () => ({ type: 'metrics', description: 'items' }) as const;
const whole = () => ({ type: 'metrics', description: 'every item', collect: true }) as const;

function stageOf<I extends Ports, O extends Ports>(inputs: I, outputs: O, body: () => StageBody<I, O>) {
  return defineStage({ id: 'probe', version: 1, summary: 'probe', inputs, outputs, params: z.object({}), create: () => body() });
}

test('paced: send resolves only when the next value is pulled, as yield does', async () => {
  const log: string[] = [];
  const it = paced<number>(async (send) => {
    for (const v of [1, 2, 3]) {
      log.push(`send ${v}`);
      await send(v);
    }
    log.push('end');
  });
  assert.equal(log, [], 'nothing runs before the first pull');
  assert.equal((await it.next()).value, 1);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(log, ['send 1'], 'the body waits in send until the next pull');
  assert.equal((await it.next()).value, 2);
  assert.equal((await it.next()).value, 3);
  assert.ok((await it.next()).done);
  assert.equal(log, ['send 1', 'send 2', 'send 3', 'end']);
});

test('paced: a consumer leaving stops the body at its send, and its finally runs', async () => {
  let cleaned = false;
  let sent = 0;
  const it = paced<number>(async (send) => {
    try {
      for (;;) await send(sent++);
    } finally {
      cleaned = true;
    }
  });
  await it.next();
  await it.return(undefined);
  await new Promise((r) => setTimeout(r, 5));
  assert.ok(cleaned);
  assert.is(sent, 1);
});

test('run: every port gets its values, side ports replay to a late subscriber, collect ports arrive whole', async () => {
  const stage = stageOf({ all: whole(), each: port() }, { main: port(), side: port() }, () => ({
    async run({ all, each }, send) {
      await send('side', m(all.length));
      for await (const x of each) await send('main', x);
    },
  }));
  const ctx = testContext();
  const op = stage.create({}, ctx)({ all: of(m(1), m(2)), each: of(m(7), m(8)) });
  const main = await lastValueFrom(op.main.pipe(toArray()));
  const side = await lastValueFrom(op.side.pipe(toArray()));
  assert.equal(main.map((x) => x.values.i), [7, 8]);
  assert.equal(side.map((x) => x.values.i), [2]);
});

test('run: a throw fails every output; send on an undeclared port is an error naming the ports', async () => {
  const failing = stageOf({}, { main: port(), side: port() }, () => ({
    async run() {
      throw new Error('boom');
    },
  }));
  const op = failing.create({}, testContext())({});
  await Promise.all([op.main, op.side].map((s) => lastValueFrom(s).then(() => assert.unreachable('should fail'), (e) => assert.is(e.message, 'boom'))));
  const wrong = stageOf({}, { main: port() }, () => ({ run: (_in, send) => send('nope' as 'main', m(0)) }));
  await runStage(wrong, {}).then(() => assert.unreachable('should fail'), (e) => assert.match(e.message, /send on 'nope', which is not an output port \(main\)/));
});

test('generate: items taken count as progress, and stopping early unsubscribes the input', async () => {
  const input = manualStream<Metrics>();
  let taken = 0;
  const ctx = { ...testContext(), pull: <T>(s: import('rxjs').Observable<T>) => pulledIterable(s, () => void taken++) };
  const stage = stageOf({ items: port() }, { out: port() }, () => ({
    async *generate({ items }) {
      for await (const x of items) if (x.values.i % 2 === 0) yield x;
    },
  }));
  const out = stage.create({}, ctx)({ items: input.stream });
  const first = lastValueFrom(out.out.pipe(take(1)));
  for (const i of [1, 3, 4]) input.push(m(i));
  assert.is((await first).values.i, 4);
  assert.is(taken, 3, 'dropped items count too');
});

test('map: one output per item, in order; shapes that do not fit are refused at create', async () => {
  const double = stageOf({ items: port() }, { items: port() }, () => ({ map: async (x) => m(x.values.i * 2) }));
  const out = await runStage(double, {}, { items: [m(1), m(2), m(3)] });
  assert.equal((out.items as Metrics[]).map((x) => x.values.i), [2, 4, 6]);
  const two = stageOf({ a: port(), b: port() }, { out: port() }, () => ({ map: (x) => x }));
  assert.throws(() => two.create({}, testContext()), /a map body needs exactly one input port, it declares 2/);
  const collected = stageOf({ a: whole() }, { out: port() }, () => ({ map: (x) => x }));
  assert.throws(() => collected.create({}, testContext()), /its input 'a' cannot be collect/);
});

test('an operator (the escape hatch) sees every declared input, an absent one empty', async () => {
  const op = stageOf({ a: port(), b: port() }, { out: port() }, () => (inputs) => ({ out: inputs.b }));
  const out = await runStage(op, {}, { a: [m(1)] });
  assert.equal(out.out, []);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Bodies that work slowly on each item: a run body that loops without emitting (as training
// does) and a map body; through the runtime, the source above must follow their pace.
const slowLoop = defineStage({
  id: 'slow-loop', version: 1, summary: 'takes items slowly, emits one total', params: z.object({}),
  inputs: { items: port() }, outputs: { total: port(), seen: port() },
  create: (_p, ctx) => ({
    async run({ items }, send) {
      let n = 0;
      for await (const x of items) {
        await sleep(10);
        ctx.run.metric(ctx.nodeId, { done: x.values.i });
        await send('seen', x);
        n++;
      }
      await send('total', m(n));
    },
  }),
});
const slowMap = defineStage({
  id: 'slow-map', version: 1, summary: 'passes items on slowly', params: z.object({}),
  inputs: { items: port() }, outputs: { items: port() },
  create: (_p, ctx) => ({
    async map(x) {
      await sleep(10);
      ctx.run.metric(ctx.nodeId, { done: x.values.i });
      return x;
    },
  }),
});

async function paceOf(consumer: string): Promise<{ ahead: number; done: number; emitted: Record<string, number> }> {
  const { default: demo } = await import('../../test/fixtures/demo-plugin/plugin.ts');
  const registry = new Registry([...demo.stages, slowLoop, slowMap], []);
  const { graph } = loadGraphText(`nodes:\n  count: { stage: count-source@1, params: { count: 10 } }\n  slow: { stage: ${consumer}@1, in: { items: count.items } }\n`, 'inline.yaml', registry);
  const run = testContext().run;
  const outcome = await runGraph({ graph: graph!, run, logger: silentLogger, progress: () => ({ increment() {}, setTotal() {}, stop() {} }), signal: new AbortController().signal, maxInFlight: 2 });
  assert.is(outcome.status, 'completed');
  const lines = (await import('node:fs')).readFileSync(`${run.root}/metrics.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  let done = 0;
  let ahead = 0;
  for (const l of lines) {
    if (l.node === 'slow' && 'done' in l) done++;
    if (l.node === 'count' && 'pulled' in l) ahead = Math.max(ahead, l.pulled - done);
  }
  return { ahead, done, emitted: outcome.nodes.slow.emitted };
}

test('through the runtime, a slow run body and a slow map body pace the source above them', async () => {
  const loop = await paceOf('slow-loop');
  assert.is(loop.done, 10);
  assert.ok(loop.ahead <= 3, `source ran ${loop.ahead} items ahead of the run body`);
  assert.equal(loop.emitted, { total: 1, seen: 10 });
  const map = await paceOf('slow-map');
  assert.is(map.done, 10);
  assert.ok(map.ahead <= 2, `source ran ${map.ahead} items ahead of the map body`);
});

test.run();
