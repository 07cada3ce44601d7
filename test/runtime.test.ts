// The runtime: wiring, results, errors with node and item, back-pressure, interruption, branches.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import demo from './fixtures/demo-plugin/plugin.ts';
import { Registry } from '../core/registry.ts';
import { loadGraphText, type ResolvedGraph } from '../core/graph/load.ts';
import { runGraph } from '../core/runtime/run-graph.ts';
import { testContext } from '../core/testing.ts';
import { silentLogger } from '../core/log.ts';

const registry = new Registry(demo.stages, []);

function graphOf(yaml: string): ResolvedGraph {
  const { graph, diagnostics } = loadGraphText(yaml, 'inline.yaml', registry);
  assert.equal(diagnostics, []);
  return graph!;
}

async function run(yaml: string, opts: { signal?: AbortSignal; maxInFlight?: number } = {}) {
  const run = testContext().run;
  const outcome = await runGraph({
    graph: graphOf(yaml),
    run,
    logger: silentLogger,
    progress: () => ({ increment() {}, setTotal() {}, stop() {} }),
    signal: opts.signal ?? new AbortController().signal,
    maxInFlight: opts.maxInFlight,
  });
  const metrics = (() => {
    try {
      return readFileSync(join(run.root, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    } catch {
      return [];
    }
  })();
  return { outcome, root: run.root, metrics };
}

const chain = (count: number, delay = 0, failOn = -1) => `
nodes:
  count: { stage: count-source@1, params: { count: ${count} } }
  double: { stage: slow-double@1, in: { items: count.items }, params: { delayMs: ${delay}, failOn: ${failOn} } }
  sum: { stage: sum-all@1, in: { items: double.items } }
  write: { stage: write-json@1, in: { items: [double.items, sum.total] } }
`;

test('a graph runs to completion and every node sees every item', async () => {
  const { outcome, root } = await run(chain(4));
  assert.is(outcome.status, 'completed');
  assert.equal(outcome.nodes.count.emitted, { items: 4 });
  assert.equal(outcome.nodes.double.emitted, { items: 4 });
  assert.equal(outcome.nodes.write.emitted, { files: 5 });
  const files = readdirSync(join(root, 'artifacts', 'write')).sort();
  assert.equal(files, ['all.json', 's0.json', 's1.json', 's2.json', 's3.json']);
  const total = JSON.parse(readFileSync(join(root, 'artifacts', 'write', 'all.json'), 'utf8'));
  assert.equal(total.values, { sum: 2 * (0 + 1 + 2 + 3), n: 4 });
});

test('a failing stage stops the run with its node id and the item', async () => {
  const { outcome } = await run(chain(6, 0, 2));
  assert.is(outcome.status, 'failed');
  assert.is(outcome.error?.nodeId, 'double');
  assert.is(outcome.error?.stage, 'slow-double@1');
  assert.is(outcome.error?.item, 'metrics s2');
  assert.match(outcome.error!.message, /node 'double' \(slow-double@1\) on metrics s2: asked to fail on i=2/);
});

test('a source never runs more than the window ahead of a slow stage', async () => {
  const { outcome, metrics } = await run(chain(12, 15), { maxInFlight: 2 });
  assert.is(outcome.status, 'completed');
  let done = 0;
  let maxAhead = 0;
  for (const m of metrics) {
    if (m.node === 'double' && 'done' in m) done++;
    if (m.node === 'count' && 'pulled' in m) maxAhead = Math.max(maxAhead, m.pulled - done);
  }
  assert.is(done, 12);
  // Pulling item i needs i - done < window, i.e. at most `window` items ahead.
  assert.ok(maxAhead <= 2, `source ran ${maxAhead} items ahead`);
  assert.ok(maxAhead >= 1, 'the window allows some overlap');
});

test('a stage looping with ctx.pull paces its source without emitting per item', async () => {
  const { outcome, metrics } = await run(`
nodes:
  count: { stage: count-source@1, params: { count: 10 } }
  loop: { stage: pull-slow@1, in: { items: count.items }, params: { delayMs: 15 } }
`, { maxInFlight: 2 });
  assert.is(outcome.status, 'completed');
  let taken = 0;
  let maxAhead = 0;
  for (const m of metrics) {
    if (m.node === 'loop' && 'done' in m) taken++;
    if (m.node === 'count' && 'pulled' in m) maxAhead = Math.max(maxAhead, m.pulled - taken);
  }
  assert.is(taken, 10);
  assert.ok(maxAhead <= 3, `source ran ${maxAhead} items ahead of the loop`);
  assert.equal(outcome.nodes.loop.emitted, { total: 1 });
});

test('a source feeding a collecting node is not held back by it (no deadlock)', async () => {
  const { outcome } = await run(`
nodes:
  count: { stage: count-source@1, params: { count: 12 } }
  sum: { stage: sum-all@1, in: { items: count.items } }
  after: { stage: slow-double@1, in: { items: [sum.total, count.items] } }
`, { maxInFlight: 1 });
  assert.is(outcome.status, 'completed');
  assert.is(outcome.nodes.after.emitted.items, 13);
});

test('without a slow consumer the source is not throttled below its window (sanity of the measure)', async () => {
  const { metrics } = await run(chain(8, 0), { maxInFlight: 8 });
  assert.is(metrics.filter((m) => 'pulled' in m).length, 8);
});

test('abort (SIGINT) finishes in-flight items and leaves complete outputs', async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 70);
  const { outcome, root } = await run(chain(50, 20), { signal: ac.signal });
  assert.is(outcome.status, 'interrupted');
  const n = outcome.nodes.double.emitted.items;
  assert.ok(n > 0 && n < 50, `processed ${n}`);
  assert.is(outcome.nodes.count.emitted.items, n, 'every item pulled was finished');
  for (const f of readdirSync(join(root, 'artifacts', 'write'))) JSON.parse(readFileSync(join(root, 'artifacts', 'write', f), 'utf8'));
  const total = JSON.parse(readFileSync(join(root, 'artifacts', 'write', 'all.json'), 'utf8'));
  assert.is(total.values.n, n, 'the collecting stage saw exactly the finished items');
});

test('independent branches run concurrently', async () => {
  const { outcome, metrics } = await run(`
nodes:
  a: { stage: count-source@1, params: { count: 5, delayMs: 10 } }
  b: { stage: count-source@1, params: { count: 5, delayMs: 10 } }
  wa: { stage: write-json@1, in: { items: a.items } }
  wb: { stage: write-json@1, in: { items: b.items } }
`);
  assert.is(outcome.status, 'completed');
  const order = metrics.filter((m) => 'pulled' in m).map((m) => m.node).join('');
  assert.is(order.length, 10);
  assert.not.ok(/^a{5}b{5}$|^b{5}a{5}$/.test(order), `branches ran one after the other: ${order}`);
});

test('a stage that throws in create fails the run before anything starts', async () => {
  const bad = { ...demo.stages[0], id: 'broken', create: () => { throw new Error('bad wiring'); } };
  const reg = new Registry([bad as any], []);
  const { graph } = loadGraphText('nodes:\n  x: { stage: broken@1 }\n', 'i.yaml', reg);
  const outcome = await runGraph({ graph: graph!, run: testContext().run, logger: silentLogger, progress: () => ({ increment() {}, setTotal() {}, stop() {} }), signal: new AbortController().signal });
  assert.is(outcome.status, 'failed');
  assert.is(outcome.error?.nodeId, 'x');
  assert.match(outcome.error!.message, /bad wiring/);
});

test.run();
