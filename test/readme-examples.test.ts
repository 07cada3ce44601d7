// The README's "Writing a stage" examples are real code: each ```ts block under that heading is
// written to a temporary folder, type-checked against core/ with the project's tsc settings,
// imported, and its stages run (unit-style and, for the source, through the runtime).
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import { sectionBlocks, writeExamples } from './readme-blocks.ts';
import * as assert from 'uvu/assert';
import demo from './fixtures/demo-plugin/plugin.ts';
import { Registry } from '../core/registry.ts';
import { loadGraphText } from '../core/graph/load.ts';
import { runGraph } from '../core/runtime/run-graph.ts';
import { silentLogger } from '../core/log.ts';
import { runStage, tempDir, testContext } from '../core/testing.ts';
import type { BinnedSession, Metrics } from '../core/payloads.ts';
import type { StageDescriptor } from '../core/stage.ts';

const root = join(fileURLToPath(import.meta.url), '..', '..');

const blocks = sectionBlocks('## Writing a stage');
const { dir, files } = writeExamples(blocks);

const stages = new Map<string, StageDescriptor<any>>();
for (const f of files) {
  for (const [name, value] of Object.entries(await import(pathToFileURL(f).href))) stages.set(name, value as StageDescriptor<any>);
}
const stage = (name: string) => {
  const s = stages.get(name);
  assert.ok(s, `the README defines ${name}`);
  return s!;
};

function session(sessionId: string, nNeurons: number, split: BinnedSession['trials']['split']): BinnedSession {
  const nTrials = split.length;
  const nBins = 2;
  return {
    kind: 'binned-session',
    sessionId,
    binSizeMs: 20,
    windowS: [0, 0.04],
    nTrials,
    nBins,
    nNeurons,
    counts: Int32Array.from({ length: nTrials * nBins * nNeurons }, (_, i) => i % 3),
    trials: { trialIndex: Int32Array.from(split, (_, i) => i), split, columns: {} },
    neurons: [],
    perBin: {},
  };
}

test('the examples type-check against core/', () => {
  assert.ok(blocks.length >= 3, `found ${blocks.length} ts blocks`);
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir, '--noEmit'], { encoding: 'utf8' });
  assert.is(tsc.status, 0, tsc.stdout + tsc.stderr);
});

test('map: spike-count counts each session', async () => {
  const s = session('a', 2, ['train', 'test']);
  const out = await runStage(stage('spikeCount'), { scale: 2 }, { sessions: [s, session('b', 1, ['val'])] });
  const sum = s.counts.reduce((a, b) => a + b, 0);
  assert.equal((out.metrics as Metrics[]).map((m) => [m.sessionId, m.values.spikes]), [['a', 2 * sum], ['b', 2 * (0 + 1)]]);
});

test('generate over a collected port: largest-sessions keeps the largest', async () => {
  const input = [session('small', 1, ['train']), session('big', 5, ['train']), session('mid', 3, ['train'])];
  const out = await runStage(stage('largestSessions'), { keep: 2 }, { sessions: input });
  assert.equal((out.sessions as BinnedSession[]).map((s) => s.sessionId), ['big', 'mid']);
});

test('run with send: split-counts passes sessions on and counts their splits', async () => {
  const out = await runStage(stage('splitCounts'), {}, { sessions: [session('a', 1, ['train', 'train', 'val', 'test']), session('b', 1, ['test'])] });
  assert.equal((out.sessions as BinnedSession[]).map((s) => s.sessionId), ['a', 'b']);
  assert.equal((out.metrics as Metrics[]).map((m) => m.values), [{ train: 2, val: 1, test: 1 }, { train: 0, val: 0, test: 1 }]);
});

test('a source: count-up feeds a graph through the runtime', async () => {
  const registry = new Registry([...demo.stages, stage('countUp')], []);
  const yaml = `
nodes:
  count: { stage: count-up@1, params: { count: 4 } }
  sum: { stage: sum-all@1, in: { items: count.items } }
  write: { stage: write-json@1, in: { items: sum.total } }
`;
  const { graph, diagnostics } = loadGraphText(yaml, 'inline.yaml', registry);
  assert.equal(diagnostics, []);
  const run = testContext().run;
  const outcome = await runGraph({ graph: graph!, run, logger: silentLogger, progress: () => ({ increment() {}, setTotal() {}, stop() {} }), signal: new AbortController().signal });
  assert.is(outcome.status, 'completed');
  assert.equal(outcome.nodes.count.emitted, { items: 4 });
  const total = JSON.parse(readFileSync(join(run.root, 'artifacts', 'write', 'all.json'), 'utf8'));
  assert.equal(total.values, { sum: 0 + 1 + 2 + 3, n: 4 });
});

test.run();
