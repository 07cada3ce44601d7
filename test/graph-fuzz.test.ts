// Throws generated malformed graph files at the loader: every one must come back as located
// diagnostics (or, if a mutation happened to keep it valid, as a graph) — never as an exception.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parse, stringify } from 'yaml';
import demo from './fixtures/demo-plugin/plugin.ts';
import { Registry } from '../core/registry.ts';
import { GraphSource, graphPluginPaths, loadGraphSource } from '../core/graph/load.ts';
import { MAX_ALIAS_COUNT, MAX_GRAPH_BYTES } from '../core/graph/source.ts';
import { createRng, type Rng } from '../core/rng.ts';

const registry = new Registry(demo.stages, []);
const fixture = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', 'graphs', name), 'utf8');

const junkValues = (r: Rng): unknown[] => [null, 0, -1, 3.5, '', 'x', '${nope}', '${count}', 'count.items', 'a.b.c', [], [1, 'two'], {}, { stage: 'sum-all@1' }, true, 'count-source@1', 'count-source@0', '@1', '1e9', 'n'.repeat(r.int(40))];

function pick<T>(r: Rng, a: T[]): T {
  return a[r.int(a.length)];
}

/** Random walk to a node of a nested object, then one structural mutation there. */
function mutateObject(obj: any, r: Rng): void {
  let cur = obj;
  for (let depth = 0; depth < 1 + r.int(4); depth++) {
    if (!cur || typeof cur !== 'object') break;
    const keys = Object.keys(cur);
    if (!keys.length) break;
    const k = pick(r, keys);
    if (!cur[k] || typeof cur[k] !== 'object' || r.next() < 0.3) {
      switch (r.int(6)) {
        case 0: delete cur[k]; break;
        case 1: cur[k] = pick(r, junkValues(r)); break;
        case 2: cur[k + pick(r, ['s', 'X', '_', ''])] = cur[k]; if (r.next() < 0.5) delete cur[k]; break;
        case 3: cur[pick(r, ['in', 'params', 'stage', 'nodes', 'seed', 'plugins', 'zz', 'items', 'count', 'use', 'foreach', 'blocks'])] = pick(r, junkValues(r)); break;
        case 4: cur[k.slice(0, -1)] = cur[k]; delete cur[k]; break;
        default: cur[k] = Array.isArray(cur[k]) ? cur[k][0] : [cur[k], pick(r, junkValues(r))];
      }
      return;
    }
    cur = cur[k];
  }
  // Fell through: add an edge to something random, possibly making a cycle.
  const nodes = obj?.nodes;
  if (nodes && typeof nodes === 'object') {
    const ids = Object.keys(nodes);
    const n = nodes[pick(r, ids)];
    if (n && typeof n === 'object') n.in = { items: `${pick(r, [...ids, 'ghost'])}.${pick(r, ['items', 'total', 'files', 'nope'])}` };
  }
}

function mutateText(text: string, r: Rng): string {
  const at = r.int(text.length + 1);
  switch (r.int(6)) {
    case 0: return text.slice(0, at) + text.slice(at + 1 + r.int(5));
    case 1: return text.slice(0, at) + pick(r, [':', '{', '[', '"', "'", '\t', '\n  ', '- ', '&a ', '*b', '%', '@', '#', '}', ']']) + text.slice(at);
    case 2: return text.slice(0, at);
    case 3: {
      const lines = text.split('\n');
      const i = r.int(lines.length);
      lines.splice(i, 0, lines[i]);
      return lines.join('\n');
    }
    case 4: {
      const lines = text.split('\n');
      const i = r.int(lines.length);
      lines[i] = ' '.repeat(r.int(7)) + lines[i].trimStart();
      return lines.join('\n');
    }
    default: return text.replace(/count/g, () => (r.next() < 0.3 ? 'cuont' : 'count'));
  }
}

function fuzz(base: string, seed: number, cases: number): void {
  const baseObj = parse(base);
  const r = createRng(seed);
  let rejected = 0;
  let accepted = 0;
  let tries = 0;
  while (rejected < cases && tries < 5000) {
    tries++;
    let text: string;
    if (r.next() < 0.5) {
      const obj = structuredClone(baseObj);
      for (let m = 0; m < 1 + r.int(3); m++) mutateObject(obj, r);
      text = stringify(obj);
    } else {
      text = base;
      for (let m = 0; m < 1 + r.int(3); m++) text = mutateText(text, r);
    }
    const file = `fuzz-${tries}.yaml`;
    let result;
    try {
      const src = new GraphSource(text, file);
      graphPluginPaths(src);
      result = loadGraphSource(src, registry, { overrides: r.next() < 0.2 ? { count: pick(r, ['3', 'x', '[1', '']), 'zz.y': '1' } : {} });
    } catch (e) {
      assert.unreachable(`loader threw on case ${tries}: ${(e as Error).stack}\n---\n${text}`);
      return;
    }
    if (result.graph) {
      accepted++;
      assert.is(result.diagnostics.length, 0);
      continue;
    }
    rejected++;
    assert.ok(result.diagnostics.length > 0, `case ${tries}: no graph and no diagnostics`);
    for (const d of result.diagnostics) {
      assert.ok(d.file === file || d.file === '--set', `case ${tries}: file ${d.file}`);
      assert.ok(Number.isInteger(d.line) && d.line >= 0 && Number.isInteger(d.col) && d.col >= 0, `case ${tries}: position ${d.line}:${d.col}`);
      if (d.file === file) assert.ok(d.line >= 1 && d.line <= text.split('\n').length + 1, `case ${tries}: line ${d.line} outside the file`);
      assert.type(d.message, 'string');
      assert.ok(d.message.length > 5);
      assert.not.match(d.message, /\[object Object\]|undefined|TypeError|\n\s+at /, `case ${tries}: ${d.message}`);
    }
  }
  assert.ok(rejected >= cases * 0.8, `only ${rejected} of ${tries} mutations were rejected`);
  assert.ok(accepted < tries, 'sanity');
}

test('1,000+ malformed graph files all give clean, located errors', () => fuzz(fixture('good.yaml'), 20241, 1200));

test('600 malformed graph files with blocks all give clean, located errors', () => fuzz(fixture('blocks.yaml'), 7, 600));

test('YAML anchors and aliases: a few are read, alias bombs of any shape are refused cleanly; oversized files too', () => {
  const base = fixture('good.yaml');
  const r = createRng(99);
  const load = (text: string, file: string) => {
    const src = new GraphSource(text, file);
    graphPluginPaths(src);
    return loadGraphSource(src, registry);
  };
  // A graph that shares a value through an anchor stays valid.
  const withAnchor = base.replace(/^name: (.*)$/m, 'name: &n $1').replace(/^description: .*$/m, 'description: *n');
  assert.ok(load(withAnchor, 'anchor.yaml').graph, 'one anchor and one alias are fine');
  for (let c = 0; c < 40; c++) {
    const width = 2 + r.int(9);
    const depth = 2 + r.int(8);
    const lines = [`l0: &l0 [${Array(width).fill('"x"').join(',')}]`];
    for (let i = 1; i <= depth; i++) lines.push(`l${i}: &l${i} [${Array(width).fill(`*l${i - 1}`).join(',')}]`);
    const text = r.next() < 0.5 ? `${base}zz:\n${lines.map((l) => `  ${l}`).join('\n')}\n` : base.replace(/^description: .*$/m, `description:\n${lines.map((l) => `  ${l}`).join('\n')}`);
    const expansions = Array.from({ length: depth }, (_, i) => width ** (i + 1)).reduce((a, b) => a + b, 0);
    const file = `bomb-${c}.yaml`;
    let result;
    try {
      result = load(text, file);
    } catch (e) {
      assert.unreachable(`loader threw on ${file} (${width} x ${depth}): ${(e as Error).stack}`);
      return;
    }
    assert.not.ok(result.graph, `${file} accepted`);
    if (expansions > MAX_ALIAS_COUNT * 10) assert.ok(result.diagnostics.some((d) => /alias/i.test(d.message)), `${file}: ${result.diagnostics.map((d) => d.message).join('; ')}`);
    for (const d of result.diagnostics) {
      assert.is(d.file, file);
      assert.ok(d.line >= 1, `${file}: line ${d.line}`);
      assert.not.match(d.message, /\n\s+at /);
    }
  }
  const big = `${base}# ${'x'.repeat(MAX_GRAPH_BYTES)}\n`;
  const result = load(big, 'big.yaml');
  assert.not.ok(result.graph);
  assert.match(result.diagnostics[0].message, /graph file too large: \d+ bytes/);
});

test.run();
