// Graph files through the same loader `mtm` uses: every problem found, each located.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import demo from './fixtures/demo-plugin/plugin.ts';
import { Registry } from '../core/registry.ts';
import { loadGraphText, resolvedGraphObject } from '../core/graph/load.ts';
import { formatDiagnostic } from '../core/graph/diagnostics.ts';

const registry = new Registry(demo.stages, []);
const dir = join(import.meta.dirname, 'fixtures', 'graphs');
const load = (name: string, opts = {}) => {
  const file = join(dir, name);
  return loadGraphText(readFileSync(file, 'utf8'), file, registry, opts);
};
const lines = (r: { diagnostics: any[] }) => r.diagnostics.map(formatDiagnostic);

test('a good graph resolves with defaults, params and edges filled in', () => {
  const { graph, diagnostics } = load('good.yaml');
  assert.equal(diagnostics, []);
  assert.ok(graph);
  assert.is(graph!.name, 'demo-good');
  assert.is(graph!.seed, 7);
  assert.equal(graph!.nodes.map((n) => n.id), ['count', 'double', 'sum', 'write']);
  const count = graph!.nodes[0];
  assert.equal(count.params, { count: 4, delayMs: 0, label: 'run-4' }, 'whole reference keeps the type; embedded one interpolates; default filled');
  assert.equal(graph!.nodes[3].inputs.items, [{ node: 'double', port: 'items' }, { node: 'sum', port: 'total' }]);
  const resolved = resolvedGraphObject(graph!) as any;
  assert.is(resolved.nodes.double.params.failOn, -1);
  assert.equal(resolved.nodes.write.in.items, ['double.items', 'sum.total']);
});

test('--set overrides graph params and node params, typed by YAML', () => {
  const { graph, diagnostics } = load('good.yaml', { overrides: { count: '9', 'double.failOn': '3' }, seed: 11 });
  assert.equal(diagnostics, []);
  assert.is(graph!.nodes[0].params.count, 9);
  assert.is(graph!.nodes[1].params.failOn, 3);
  assert.is(graph!.seed, 11);
});

test('unknown --set keys are errors with suggestions', () => {
  const r = load('good.yaml', { overrides: { cuont: '3', 'double.failon': '1', 'nope.x': '1' } });
  const text = lines(r).join('\n');
  assert.match(text, /--set  cuont  unknown graph param 'cuont' \(did you mean 'count'\?\)/);
  assert.match(text, /double\.failon  stage slow-double@1 has no param 'failon' \(did you mean 'failOn'\?\)/);
  assert.match(text, /unknown node 'nope'/);
});

test('unknown stage: located, with a suggestion', () => {
  const r = load('unknown-stage.yaml');
  assert.equal(lines(r), [`${join(dir, 'unknown-stage.yaml')}:4:12  nodes.count.stage  unknown stage 'count-sorce' (did you mean 'count-source'?); run 'mtm stages' to list them`]);
});

test('misspelt param: located at the key, with a suggestion', () => {
  const r = load('misspelt-param.yaml');
  assert.is(r.diagnostics.length, 1);
  assert.match(lines(r)[0], /misspelt-param\.yaml:7:7  nodes\.count\.params\.delyMs  unknown param 'delyMs' for stage count-source@1 \(did you mean 'delayMs'\?\)/);
});

test('wrong-type edge names both ends and both types', () => {
  const r = load('wrong-type-edge.yaml');
  assert.is(r.diagnostics.length, 1);
  assert.match(lines(r)[0], /wrong-type-edge\.yaml:8:14  nodes\.files\.in\.files  type mismatch: count\.items carries metrics but files\.files expects artifact/);
});

test('a cycle lists its members in order', () => {
  const r = load('cycle.yaml');
  assert.is(r.diagnostics.length, 1);
  assert.match(lines(r)[0], /cycle\.yaml:\d+:\d+  nodes\.a  cycle: a -> b -> c -> a/);
});

test('YAML syntax errors carry line and column', () => {
  const r = load('yaml-syntax.yaml');
  assert.ok(r.diagnostics.length >= 1);
  for (const d of r.diagnostics) {
    assert.ok(d.line >= 5, `line ${d.line}`);
    assert.ok(d.col >= 1);
    assert.match(d.message, /^YAML syntax: /);
  }
});

test('every problem in one file is reported, not just the first', () => {
  const r = load('many-problems.yaml');
  const text = lines(r).join('\n');
  assert.match(text, /nodes\.count\.stage  unknown stage 'count-sorce' \(did you mean 'count-source'\?\)/);
  assert.match(text, /nodes\.double\.in\.itemz  stage slow-double@1 has no input port 'itemz' \(did you mean 'items'\?\)/);
  assert.match(text, /nodes\.double\.params\.delayMS  unknown param 'delayMS' .*\(did you mean 'delayMs'\?\)/);
  assert.match(text, /nodes\.double\.params\.failOn  Invalid input: expected number, received string/);
  assert.match(text, /nodes\.double\.in  input port 'items' \(metrics\) is not connected/);
  assert.match(text, /cycle: loop1 -> loop2 -> loop1/);
  assert.match(text, /nodes\.files\.in\.files  type mismatch: loop1\.items carries metrics but files\.files expects artifact/);
  assert.match(text, /nodes\.write\.in\.items  unknown node 'dubble' \(did you mean 'double'\?\)/);
  assert.ok(r.diagnostics.length >= 8);
});

test('graph-param references: unknown names and typed substitution errors are located', () => {
  const text = `params:\n  n: "many"\nnodes:\n  count:\n    stage: count-source@1\n    params:\n      count: \${n}\n      label: \${lable}\n`;
  const r = loadGraphText(text, 'inline.yaml', registry);
  const out = lines(r).join('\n');
  assert.match(out, /inline\.yaml:8:14  nodes\.count\.params\.label  unknown graph param '\$\{lable\}'/);
  assert.match(out, /inline\.yaml:7:14  nodes\.count\.params\.count  Invalid input: expected number, received string \(value from graph param 'n'\)/);
});

test('a graph param left as ~ must be given with --set', () => {
  const text = `params:\n  n: ~\nnodes:\n  count:\n    stage: count-source@1\n    params:\n      count: \${n}\n`;
  const r = loadGraphText(text, 'req.yaml', registry);
  assert.match(lines(r).join('\n'), /req\.yaml:7:14  nodes\.count\.params\.count  graph param 'n' has no value: give it with --set n=<value>/);
  const ok = loadGraphText(text, 'req.yaml', registry, { overrides: { n: '4' } });
  assert.is(ok.graph!.nodes[0].params.count, 4);
});

test('structural mistakes: unpinned stage, bad node shape, unknown keys', () => {
  const text = `nodez: {}\nnodes:\n  a:\n    stage: count-source\n  b: 3\n  c:\n    stage: count-source@9\n    param: {}\n`;
  const out = lines(loadGraphText(text, 'x.yaml', registry)).join('\n');
  assert.match(out, /x\.yaml:1:1  nodez  unknown top-level key 'nodez' \(did you mean 'nodes'\?\)/);
  assert.match(out, /nodes\.a\.stage  stage versions must be pinned: write count-source@1/);
  assert.match(out, /nodes\.b  a node is a mapping/);
  assert.match(out, /nodes\.c\.stage  stage 'count-source' has no version 9; available: count-source@1/);
  assert.match(out, /nodes\.c\.param  unknown node key 'param' \(did you mean 'params'\?\)/);
});

test.run();
