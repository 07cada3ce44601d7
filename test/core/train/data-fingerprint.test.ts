// Resume and changed data (docs/method.md §4.7): a rerun into the same folder with other sessions,
// other neurons, another split or other counts is refused instead of resuming the old checkpoint.
process.env.MTM_NATIVE_KERNELS = 'off';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ArchitectureContribution } from '../../../core/architecture.ts';
import type { MaskedBatch } from '../../../core/masking/types.ts';
import type { BinnedSession, NeuronInfo, Split } from '../../../core/payloads.ts';
import { createRng } from '../../../core/rng.ts';
import { runStage, tempDir, testContext } from '../../../core/testing.ts';
import { initBackend } from '../../../core/tensor/backend.ts';
import { ndt1Architecture } from '../../../plugins/ndt1/architecture.ts';
import { maskingSampler } from '../../../stages/masking-sampler.ts';
import { trainModel } from '../../../stages/train-model.ts';

await initBackend({ force: 'cpu' });
const T = 6;

function session(id: string, nNeurons: number, seed: number, valFrom = 12): BinnedSession {
  const nTrials = 16;
  const rng = createRng(seed);
  const counts = new Int32Array(nTrials * T * nNeurons);
  for (let i = 0; i < counts.length; i++) counts[i] = rng.poisson(1);
  const neurons: NeuronInfo[] = Array.from({ length: nNeurons }, (_, n) => ({ probe: 'probe00', clusterId: n, atlasId: 1, acronym: ['CA1', 'LP'][n % 2], beryl: 'CA1', cosmos: 'HPF', depthUm: n, good: true }));
  const split: Split[] = Array.from({ length: nTrials }, (_, t) => (t < valFrom ? 'train' : 'val'));
  return { kind: 'binned-session', sessionId: id, binSizeMs: 20, windowS: [0, 0.12], nTrials, nBins: T, nNeurons, counts, trials: { trialIndex: Int32Array.from({ length: nTrials }, (_, i) => i), split, columns: {} }, neurons, perBin: {} };
}

async function train(root: string, sessions: BinnedSession[], withSessions = true): Promise<void> {
  const batches = (await runStage(maskingSampler, { batchSize: 4, epochs: 1, mode: 'temporal' }, { sessions }, testContext('sampler', 3))).batches as MaskedBatch[];
  const ctx = testContext('train', 7, root);
  ctx.architectures = new Map([['ndt1', ndt1Architecture as ArchitectureContribution]]);
  await runStage(trainModel, { config: { dModel: 8, layers: 1, heads: 2, mlpDim: 8, maxBins: T } }, withSessions ? { train: batches, sessions } : { train: batches }, ctx);
}

async function refused(root: string, sessions: BinnedSession[], withSessions = true): Promise<string> {
  try {
    await train(root, sessions, withSessions);
  } catch (e) {
    return (e as Error).message;
  }
  assert.unreachable('resumed a checkpoint of other data');
  return '';
}

test('same data resumes; other counts, neurons, sessions or split are refused, naming the data', async () => {
  const root = tempDir('mtm-fp-');
  await train(root, [session('s1', 4, 1)]);
  await train(root, [session('s1', 4, 1)]); // the finished run is found again, not refused
  const msgs = [
    await refused(root, [session('s1', 4, 2)]), // other counts (another seed, another rate)
    await refused(root, [session('s1', 5, 1)]), // other neurons
    await refused(root, [session('s2', 4, 1)]), // another session
    await refused(root, [session('s1', 4, 1, 10)]), // another split
  ];
  for (const m of msgs) {
    assert.match(m, /different training/);
    assert.match(m, /data/);
  }
  assert.match(msgs[1], /"neurons":5/);
  assert.match(msgs[2], /s2/);
});

test('without a sessions port the training batches stand for the data', async () => {
  const root = tempDir('mtm-fp-');
  await train(root, [session('s1', 4, 1)], false);
  const m = await refused(root, [session('s1', 4, 3)], false);
  assert.match(m, /different training/);
  assert.match(m, /data/);
});

test.run();
