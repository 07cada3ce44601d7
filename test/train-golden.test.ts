// A seeded small training compared, bit for bit, with a record taken before the training loop
// was split into named parts (core/train/loop.ts): the final and best weights, the AdamW moments,
// every metrics.jsonl line, the loop state and the emitted model, wall-clock seconds aside.
//
// Decisions:
// - Pure-JS tensor backend, native kernels off: its float arithmetic is the same on every x86
//   machine, so the record does not depend on the CPU's vector unit or thread count. The native
//   path's identity is what the resume tests check (a run against itself).
// - The record is rewritten only on purpose (MTM_WRITE_GOLDEN=1), when a numeric change elsewhere
//   (a kernel, the loss) is intended; a change of the loop alone must leave it as it is.
process.env.MTM_NATIVE_KERNELS = 'off';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ArchitectureContribution } from '../core/architecture.ts';
import type { BinnedSession, NeuronInfo, Split } from '../core/payloads.ts';
import type { MaskedBatch } from '../core/masking/types.ts';
import { createRng } from '../core/rng.ts';
import { runStage, tempDir, testContext } from '../core/testing.ts';
import { initBackend } from '../core/tensor/backend.ts';
import { ndt1Architecture } from '../plugins/ndt1/architecture.ts';
import { maskingSampler } from '../stages/masking-sampler.ts';
import { trainModel } from '../stages/train-model.ts';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'train', 'golden.json');
const backend = await initBackend({ force: 'cpu' });
const T = 8;

function session(id: string, nNeurons: number, seed: number): BinnedSession {
  const nTrials = 20;
  const rng = createRng(seed);
  const counts = new Int32Array(nTrials * T * nNeurons);
  for (let t = 0; t < nTrials; t++) {
    for (let b = 0; b < T; b++) for (let n = 0; n < nNeurons; n++) counts[(t * T + b) * nNeurons + n] = rng.poisson(Math.exp(-0.5 + 0.2 * n + (b > 2 && b < 6 ? 0.8 : 0)));
  }
  const neurons: NeuronInfo[] = Array.from({ length: nNeurons }, (_, n) => ({
    probe: 'probe00', clusterId: n, atlasId: 1, acronym: ['CA1', 'LP', 'VISp'][n % 3], beryl: 'CA1', cosmos: 'HPF', depthUm: 10 * n, good: true,
  }));
  const split: Split[] = Array.from({ length: nTrials }, (_, t) => (t < 12 ? 'train' : t < 16 ? 'val' : 'test'));
  return {
    kind: 'binned-session', sessionId: id, binSizeMs: 20, windowS: [0, 0.16], nTrials, nBins: T, nNeurons, counts,
    trials: { trialIndex: Int32Array.from({ length: nTrials }, (_, i) => i), split, columns: {} }, neurons, perBin: {},
  };
}

const sessions = [session('s1', 6, 1), session('s2', 5, 2)];
const batches = async (params: Record<string, unknown>) =>
  (await runStage(maskingSampler, { batchSize: 4, ...params }, { sessions }, testContext('sampler', 3))).batches as MaskedBatch[];

/** Seconds are wall-clock time, paths name a temp folder: both are set aside. */
function plain(x: unknown, root: string): unknown {
  if (Array.isArray(x)) return x.map((y) => plain(y, root));
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, k === 'seconds' ? 0 : plain(v, root)]));
  return typeof x === 'string' ? x.split(root).join('<root>') : x;
}

async function record(params: Record<string, unknown>, inputs: Record<string, unknown[]>) {
  const root = tempDir();
  const ctx = testContext('train', 7, root);
  ctx.architectures = new Map([['ndt1', ndt1Architecture as ArchitectureContribution]]);
  const out = await runStage(trainModel, { config: { dModel: 16, layers: 1, heads: 2, mlpDim: 16, maxBins: T }, learningRate: 3e-3, ...params }, inputs, ctx);
  const art = (...p: string[]) => join(root, 'artifacts', 'train', ...p);
  const sha = (...p: string[]) => createHash('sha256').update(readFileSync(art(...p))).digest('hex');
  const lines = readFileSync(join(root, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => plain(JSON.parse(l), root));
  return {
    weights: { last: sha('last', 'weights.bin'), optimizer: sha('last', 'optimizer.bin'), best: sha('best', 'weights.bin') },
    lines,
    state: plain(JSON.parse(readFileSync(art('last', 'training.json'), 'utf8')).state, root),
    model: plain(out.model, root),
    metrics: plain(out.metrics, root),
  };
}

const runs = {
  withVal: await record({}, { train: await batches({ epochs: 3, mode: 'mtm' }), val: await batches({ split: 'val', epochs: 1, mode: 'mtm' }), sessions }),
  temporalNoVal: await record({ patience: 1, warmupFraction: 0.3 }, { train: await batches({ epochs: 6, mode: 'temporal' }) }),
};

if (process.env.MTM_WRITE_GOLDEN === '1') {
  mkdirSync(dirname(FIXTURE), { recursive: true });
  writeFileSync(FIXTURE, JSON.stringify({ backend: backend.name, runs }, null, 1) + '\n');
}

test('a seeded training gives the recorded weights, metrics lines, loop state and model', () => {
  assert.ok(existsSync(FIXTURE), `${FIXTURE} missing (MTM_WRITE_GOLDEN=1 writes it)`);
  const want = JSON.parse(readFileSync(FIXTURE, 'utf8'));
  assert.is(backend.name, want.backend);
  for (const [name, got] of Object.entries(runs)) {
    const w = want.runs[name];
    assert.equal(got.lines, w.lines, `${name}: metrics.jsonl`);
    assert.equal(got.metrics, w.metrics, `${name}: metrics port`);
    assert.equal(got.state, w.state, `${name}: loop state`);
    assert.equal(got.model, w.model, `${name}: model ref`);
    assert.equal(got.weights, w.weights, `${name}: weights`);
  }
});

test.run();
