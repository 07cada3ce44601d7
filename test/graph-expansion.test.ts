// graphs/ablation.yaml, scaling.yaml and fewshot.yaml state each repeated part once, as blocks;
// their expansion must be the graph the hand-written files made. Two comparisons:
// - with today's files kept verbatim (test/fixtures/graphs/<g>.flat.yaml), both loaded by the
//   current loader and stages and written as graph.resolved.yaml: the texts must be equal, node
//   order included. Both get every graph param set to graphs/<g>.yaml's default, so a default
//   changed in graphs/ since applies to both.
// - with the resolved graphs saved before blocks existed (test/fixtures/graphs/<g>.resolved.yaml,
//   with the --set variants the headers show): node ids in order, stages, edges and every param the
//   graph file writes. Stage defaults are left out here (a stage may gain a param or change a
//   default later); the first comparison covers them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from 'yaml';
import { createRegistry } from '../app/di/bootstrap.ts';
import { formatDiagnostic } from '../core/graph/diagnostics.ts';
import { GraphSource, loadGraphSource, resolvedGraphObject, type ResolvedGraph } from '../core/graph/load.ts';
import { RunDirectory } from '../core/run/run-directory.ts';
import { graphJsonSchema } from '../core/graph/schema.ts';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { tempDir } from '../core/testing.ts';

const root = join(import.meta.dirname, '..');
const fixtures = join(root, 'test', 'fixtures', 'graphs');
const registry = await createRegistry();

const validateSchema = new Ajv2020({ strict: false }).compile(graphJsonSchema(registry));

const CASES = [
  { graph: 'ablation', lines: 138, variants: { 'ablation.resolved.yaml': [], 'ablation.set.resolved.yaml': ['epochs=100', 'trials=[500, 500]'] } },
  { graph: 'scaling', lines: 236, variants: { 'scaling.resolved.yaml': [], 'scaling.set.resolved.yaml': ['large=16', 'pretrainEpochs=80', 'finetuneEpochs=60'] } },
  // Not halved: its repeated parts are the per-k nodes only (one block now); the rest is one of a kind.
  { graph: 'fewshot', lines: undefined, variants: { 'fewshot.resolved.yaml': [], 'fewshot.set.resolved.yaml': ['kSmall=16', 'kMedium=48'] } },
];

/** Every value is set as YAML text (JSON is YAML). */
const asSets = (values: Record<string, unknown>) => Object.fromEntries(Object.entries(values).map(([k, v]) => [k, JSON.stringify(v)]));

function load(file: string, overrides: Record<string, string>): ResolvedGraph {
  const { graph, diagnostics } = loadGraphSource(new GraphSource(readFileSync(file, 'utf8'), file), registry, { overrides });
  assert.ok(graph, diagnostics.map(formatDiagnostic).join('\n'));
  return graph!;
}

/** The graph.resolved.yaml a run of `graph` writes. */
async function resolvedText(graph: ResolvedGraph): Promise<string> {
  const dir = RunDirectory.create(graph.name, join(tempDir('mtm-expansion-'), 'run'));
  await dir.writeResolvedGraph(resolvedGraphObject(graph));
  return readFileSync(join(dir.root, 'graph.resolved.yaml'), 'utf8');
}

const yamlSets = (sets: string[]) => Object.fromEntries(sets.map((s) => [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)]));

for (const c of CASES) {
  const file = join(root, 'graphs', `${c.graph}.yaml`);
  const flat = join(fixtures, `${c.graph}.flat.yaml`);
  const defaults = parse(readFileSync(file, 'utf8')).params as Record<string, unknown>;

  test(`${c.graph}.yaml: ${c.lines ? 'at most half as long as before blocks, ' : ''}with the same params`, () => {
    const n = readFileSync(file, 'utf8').trimEnd().split('\n').length;
    if (c.lines) assert.ok(n <= c.lines / 2, `${n} lines, was ${c.lines}`);
    assert.equal(Object.keys(defaults), Object.keys(parse(readFileSync(flat, 'utf8')).params));
    assert.ok(validateSchema(parse(readFileSync(file, 'utf8'))), `the JSON Schema: ${JSON.stringify(validateSchema.errors)}`);
  });

  for (const [variant, sets] of Object.entries(c.variants)) {
    test(`${c.graph}.yaml expands to today's graph.resolved.yaml (${sets.length ? sets.join(' ') : 'defaults'})`, async () => {
      const given = { ...asSets(defaults), ...yamlSets(sets) };
      const got = await resolvedText(load(file, given));
      assert.fixture(got, await resolvedText(load(flat, given)));
    });

    test(`${c.graph}.yaml expands to the saved ${variant}: ids in order, stages, edges, written params`, () => {
      const saved = parse(readFileSync(join(fixtures, variant), 'utf8'));
      const written = parse(readFileSync(flat, 'utf8')).nodes as Record<string, { params?: Record<string, unknown> }>;
      const now = resolvedGraphObject(load(file, asSets(saved.params))) as any;
      assert.equal([now.name, now.seed, now.params], [saved.name, saved.seed, saved.params]);
      assert.equal(Object.keys(now.nodes), Object.keys(saved.nodes));
      for (const [id, node] of Object.entries(saved.nodes as Record<string, any>)) {
        const keys = Object.keys(written[id].params ?? {});
        const pick = (n: any) => ({ stage: n.stage, in: n.in, params: Object.fromEntries(keys.map((k) => [k, n.params[k]])) });
        assert.equal(pick(now.nodes[id]), pick(node), id);
      }
    });
  }
}

test.run();
