// Blocks (core/graph/blocks.ts) with the demo plugin: expansion, foreach, nesting, and problems
// located in both the block and the instance.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import demo from './fixtures/demo-plugin/plugin.ts';
import { Registry } from '../core/registry.ts';
import { loadGraphText, resolvedGraphObject } from '../core/graph/load.ts';
import { formatDiagnostic } from '../core/graph/diagnostics.ts';
import { graphJsonSchema } from '../core/graph/schema.ts';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';

const registry = new Registry(demo.stages, []);
const file = join(import.meta.dirname, 'fixtures', 'graphs', 'blocks.yaml');
const text = readFileSync(file, 'utf8');
const lines = (r: { diagnostics: any[] }) => r.diagnostics.map(formatDiagnostic);
/** 1-based line of the first line of `text` containing `s`. */
const lineOf = (t: string, s: string) => t.split('\n').findIndex((l) => l.includes(s)) + 1;

test('instances expand in place, in block order, with block and graph params substituted', () => {
  const { graph, diagnostics } = loadGraphText(text, file, registry);
  assert.equal(lines({ diagnostics }), []);
  assert.equal(graph!.nodes.map((n) => n.id), ['count', 'firstDouble', 'first', 'countA', 'bothADouble', 'bothA', 'countB', 'bothBDouble', 'bothB', 'sum']);
  const node = (id: string) => graph!.nodes.find((n) => n.id === id)!;
  assert.equal(node('firstDouble').params, { failOn: 7, delayMs: 0 }, 'a whole "${p}" keeps the type; a graph param inside a block');
  assert.equal(node('firstDouble').inputs.items, [{ node: 'count', port: 'items' }], 'an input given as a block param');
  assert.equal(node('first').inputs.items, [{ node: 'firstDouble', port: 'items' }], "the instance's own node");
  assert.equal(node('countB').params, { count: 2, delayMs: 0, label: 'run-B-4' }, 'block param, then graph param, in one string');
  assert.equal(node('bothBDouble').inputs.items, [{ node: 'countB', port: 'items' }], 'a nested instance gets the outer params');
  assert.is(node('bothBDouble').params.failOn, -1, "the block's default");
  assert.equal(node('sum').inputs.items, [{ node: 'firstDouble', port: 'items' }, { node: 'countA', port: 'items' }]);
  // The resolved graph (graph.resolved.yaml) is the expansion: plain nodes, no blocks.
  const resolved = resolvedGraphObject(graph!) as any;
  assert.not.ok('blocks' in resolved);
  assert.equal(Object.keys(resolved.nodes), graph!.nodes.map((n) => n.id));
  assert.is(resolved.nodes.bothA.stage, 'write-json@1');
  assert.is(resolved.nodes.bothADouble.in.items, 'countA.items');
  // ...and that file loads again to the same graph.
  const again = loadGraphText(JSON.stringify(resolved), 'resolved.yaml', registry);
  assert.equal(resolvedGraphObject(again.graph!), resolved);
});

test('--set reaches nodes a block made, and graph params used inside blocks', () => {
  const { graph } = loadGraphText(text, file, registry, { overrides: { 'bothADouble.failOn': '2', delay: '5' } });
  assert.is(graph!.nodes.find((n) => n.id === 'bothADouble')!.params.failOn, 2);
  assert.is(graph!.nodes.find((n) => n.id === 'firstDouble')!.params.delayMs, 5);
});

test('foreach over a mapping is the product of its axes, first axis outermost', () => {
  const t = `blocks:\n  b:\n    params: { x: ~, y: ~ }\n    nodes:\n      c\${x}\${y}: { stage: count-source@1, params: { count: "\${x}", label: "\${y}" } }\nnodes:\n  all: { use: b, foreach: { x: [1, 2], y: [p, q] } }\n`;
  const { graph, diagnostics } = loadGraphText(t, 'p.yaml', registry);
  assert.equal(lines({ diagnostics }), []);
  assert.equal(graph!.nodes.map((n) => n.id), ['c1p', 'c1q', 'c2p', 'c2q']);
  assert.equal(graph!.nodes.map((n) => [n.params.count, n.params.label]), [[1, 'p'], [1, 'q'], [2, 'p'], [2, 'q']]);
});

test('an error inside a block instance names the block and the instance, each at file:line:col', () => {
  const bad = text.replace('first: { use: doubled, params: { from: count.items, failOn: 7 } }', 'first: { use: doubled, params: { from: count.items, failOn: "seven" } }').replace('delayMs: "${delay}"', 'delyMs: "${delay}"');
  const out = lines(loadGraphText(bad, file, registry));
  const blockLine = lineOf(bad, 'params: { failOn: "${failOn}"');
  const useLine = lineOf(bad, 'first: { use: doubled');
  // The type error: at the block's params.failOn, and at the instance's params.failOn that gave it.
  const typeErr = out.find((l) => l.includes('failOn  Invalid input'));
  assert.ok(typeErr, out.join('\n'));
  assert.match(typeErr!, `${file}:${blockLine}:`);
  assert.match(typeErr!, 'blocks.doubled.nodes.${name}Double.params.failOn');
  assert.match(typeErr!, `(node 'firstDouble' from block 'doubled' used at ${file}:${useLine}:${bad.split('\n')[useLine - 1].indexOf('"seven"') + 1} nodes.first.params.failOn)`);
  // The misspelt key: once per instance, each naming its own instance chain.
  const typos = out.filter((l) => l.includes("unknown param 'delyMs'"));
  assert.is(typos.length, 3, out.join('\n'));
  assert.ok(typos.every((l) => l.startsWith(`${file}:${blockLine}:`)));
  assert.ok(typos.some((l) => l.includes(`(node 'firstDouble' from block 'doubled' used at ${file}:${useLine}:3 nodes.first)`)));
  const nested = typos.find((l) => l.includes("node 'bothBDouble'"));
  assert.match(nested!, `block 'doubled' used at ${file}:${lineOf(bad, 'both${tag}:')}:7 blocks.counted.nodes.both\${tag}, in block 'counted' used at ${file}:${lineOf(bad, 'grid:')}:3 nodes.grid`);
});

test('a block that uses itself, directly or not, is an error', () => {
  const t = `blocks:\n  a:\n    nodes:\n      x: { use: b }\n  b:\n    nodes:\n      y: { use: a }\nnodes:\n  top: { use: a }\n`;
  const out = lines(loadGraphText(t, 'r.yaml', registry)).join('\n');
  assert.match(out, /r\.yaml:7:17  blocks\.b\.nodes\.y\.use  block 'a' uses itself: a -> b -> a/);
  const self = `blocks:\n  a:\n    nodes:\n      x: { use: a }\nnodes:\n  top: { use: a }\n`;
  assert.match(lines(loadGraphText(self, 's.yaml', registry)).join('\n'), /blocks\.a\.nodes\.x\.use  block 'a' uses itself: a -> a/);
});

test('instance mistakes: unknown block, unknown or missing params, stage beside use, foreach shape', () => {
  const t = [
    'blocks:',
    '  b:',
    '    params: { n: ~ }',
    '    nodes:',
    '      ${name}: { stage: count-source@1, params: { count: "${n}" } }',
    '      ${nme}X: { stage: count-source@1 }',
    'nodes:',
    '  u1: { use: bb, params: { n: 1 } }',
    '  u2: { use: b, params: { m: 1 } }',
    '  u3: { use: b, stage: count-source@1, params: { n: 1 } }',
    '  u4: { use: b, foreach: { n: 3 } }',
    '  u5: { use: b, foreach: [{ n: 1 }, { n: 2 }] }',
    '',
  ].join('\n');
  const out = lines(loadGraphText(t, 'm.yaml', registry)).join('\n');
  assert.match(out, /m\.yaml:8:14  nodes\.u1\.use  unknown block 'bb' \(did you mean 'b'\?\); the blocks are 'b'/);
  assert.match(out, /m\.yaml:9:27  nodes\.u2\.params\.m  block 'b' has no param 'm' \(did you mean 'n'\?\); its params are 'n'/);
  assert.match(out, /m\.yaml:9:3  nodes\.u2  block 'b' needs 'n': give it under params: \(or foreach:\)/);
  assert.match(out, /nodes\.u3\.stage  unknown key 'stage' for a block instance \(a node has either 'stage' and 'in', or 'use'\)/);
  assert.match(out, /nodes\.u4\.foreach\.n  foreach\.n must be a non-empty list of values, got a number/);
  assert.match(out, /m\.yaml:6:7  blocks\.b\.nodes\.\$\{nme\}X  node id '\$\{nme\}X' names '\$\{nme\}', which is not a param of block 'b'/);
  assert.match(out, /blocks\.b\.nodes\.\$\{name\}  node id 'u5' is made twice: also at m\.yaml:5:7 blocks\.b\.nodes\.\$\{name\}  \(node 'u5' from block 'b' used at m\.yaml:12:3 nodes\.u5\)/);
});

test('the JSON Schema of graph files accepts blocks and instances', () => {
  const validate = new Ajv2020({ strict: false }).compile(graphJsonSchema(registry));
  assert.ok(validate(parse(text)), JSON.stringify(validate.errors));
  assert.not.ok(validate(parse(text.replace('use: counted', 'uses: counted'))));
});

test.run();
