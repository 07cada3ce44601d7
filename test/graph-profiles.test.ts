// Graph profiles (core/graph/profiles.ts): named sets of graph-param values, applied with
// --profile before --set, checked against the graph's params, located in the file when wrong.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRegistry } from '../app/di/bootstrap.ts';
import { formatDiagnostic } from '../core/graph/diagnostics.ts';
import { loadGraphText } from '../core/graph/load.ts';

const registry = await createRegistry();
const graph = (profiles: string) => `name: p
params:
  epochs: 250
  batchSize: 8
  sessions: 2
${profiles}
nodes:
  simulate:
    stage: simulate@1
    params: { sessions: "\${sessions}", trials: [20, 20] }
  source:
    stage: one-download@1
    in: { sessions: simulate.sessions }
    params: { mode: local }
  bin:
    stage: spike-binning@1
    in: { sessions: source.sessions }
  sampler:
    stage: masking-sampler@1
    in: { sessions: bin.sessions }
    params: { epochs: "\${epochs}", batchSize: "\${batchSize}" }
`;
const PROFILES = `profiles:
  paper:
    description: the reference's budget
    params: { epochs: 1000, batchSize: 16 }
  tiny:
    params: { epochs: 2 }`;

const sampler = (g: ReturnType<typeof loadGraphText>) => g.graph!.nodes.find((n) => n.id === 'sampler')!.params;

test('a profile sets its params over the defaults; --set wins over the profile; none leaves the defaults', () => {
  const text = graph(PROFILES);
  const plain = loadGraphText(text, 'g.yaml', registry);
  assert.equal(plain.diagnostics, []);
  assert.is(sampler(plain).epochs, 250);
  const paper = loadGraphText(text, 'g.yaml', registry, { profile: 'paper' });
  assert.equal(paper.diagnostics, []);
  assert.is(sampler(paper).epochs, 1000);
  assert.is(sampler(paper).batchSize, 16);
  assert.is(paper.graph!.params.epochs, 1000, 'the resolved params carry the profile, so graph.resolved.yaml reruns it');
  const both = loadGraphText(text, 'g.yaml', registry, { profile: 'paper', overrides: { epochs: '7' } });
  assert.is(sampler(both).epochs, 7);
  assert.is(sampler(both).batchSize, 16);
});

test('errors name the profile, the key and its line; an unknown profile lists the known ones', () => {
  const unknown = loadGraphText(graph(PROFILES), 'g.yaml', registry, { profile: 'papr' });
  assert.match(unknown.diagnostics.map(formatDiagnostic).join('\n'), /unknown profile 'papr' \(did you mean 'paper'\?\); g\.yaml has 'paper' and 'tiny'|unknown profile 'papr'.*paper.*tiny/);
  const none = loadGraphText(graph(''), 'g.yaml', registry, { profile: 'paper' });
  assert.match(none.diagnostics[0].message, /g\.yaml declares no profiles/);
  const bad = loadGraphText(graph(`profiles:\n  paper:\n    params: { epoch: 1000 }\n    note: x`), 'g.yaml', registry);
  const msgs = bad.diagnostics.map(formatDiagnostic);
  assert.ok(msgs.some((m) => /g\.yaml:8:\d+.*profile 'paper' sets 'epoch', which is not a graph param \(did you mean 'epochs'\?\)/.test(m)), msgs.join('\n'));
  assert.ok(msgs.some((m) => /unknown profile key 'note'/.test(m)), msgs.join('\n'));
  const notMap = loadGraphText(graph('profiles: [paper]'), 'g.yaml', registry);
  assert.match(notMap.diagnostics[0].message, /profiles must be a mapping/);
});

test('graphs/quickstart.yaml: the paper profile is the reference recipe and sizes', () => {
  const file = join(import.meta.dirname, '..', 'graphs', 'quickstart.yaml');
  const g = loadGraphText(readFileSync(file, 'utf8'), file, registry, { profile: 'paper' });
  assert.equal(g.diagnostics, []);
  const p = g.graph!.params;
  assert.is(p.epochs, 1000);
  assert.is(p.batchSize, 16);
  assert.is(p.learningRate, 1e-4);
  assert.equal(p.model, { dModel: 512, layers: 5, heads: 8, mlpDim: 1024, dropout: 0.4, embedDropout: 0.4 });
  const mtm = g.graph!.nodes.find((n) => n.id === 'mtm')!.params;
  assert.equal(mtm.config, p.model);
  assert.is(mtm.learningRate, 1e-4);
});

test.run();
