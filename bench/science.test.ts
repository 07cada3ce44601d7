import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import YAML from 'yaml';
import { tempDir } from '../core/testing.ts';
import { createRng } from '../core/rng.ts';
import { sampleMask } from '../core/masking/masking.ts';
import * as maskTypes from '../core/masking/types.ts';
import type { BinnedSession, Split } from '../core/payloads.ts';
import { writeBinnedSessionFolder } from '../stages/write-binned-session.ts';
import {
  PEER_SCRIPT, SYSTEM_PYTHON, TASKS, VENV_PYTHON, dataPins, findPeerPython, nodeSeed, peerEnv, peerRecipe, replayStepParity, runPeer, scienceGraph, spread, writeStepParity,
  type PeerRecipe,
} from './science.ts';

/** A Python with torch for the peer, or undefined (tests that need it then skip, saying so). */
const peerPython = (() => {
  try {
    return findPeerPython({ setup: false }).python;
  } catch (e) {
    console.log(`SKIP (no torch): ${(e as Error).message}`);
    return undefined;
  }
})();

/** A Python with numpy for the masking comparison (torch not needed). */
const numpyPython = [VENV_PYTHON, SYSTEM_PYTHON, 'python3'].find((p) => (p.startsWith('/') ? existsSync(p) : true) && spawnSync(p, ['-c', 'import numpy'], { env: peerEnv(1), stdio: 'ignore' }).status === 0);

test('the science graph is the quickstart plus a write node, with its data seeds pinned', () => {
  const g = scienceGraph();
  assert.is(g.nodes.write.stage, 'write-binned-session@1');
  assert.equal(g.nodes.write.in, { sessions: 'label.sessions' });
  assert.ok(g.nodes.mtm && g.nodes.temporal && g.nodes.evaluate);
  assert.equal(dataPins(1), [`simulate.seed=${nodeSeed('simulate', 1)}`, `bin.seed=${nodeSeed('bin', 1)}`]);
  const extra = scienceGraph(['/data/lab/Subjects/x/2024-01-01/001'], '/data');
  assert.equal(extra.nodes.bin.in, { sessions: ['source.sessions', 'extra.sessions'] });
  assert.equal(extra.nodes.extra.params, { sessions: ['/data/lab/Subjects/x/2024-01-01/001'], mode: 'local', cacheDir: '/data' });
});

test('peerRecipe reads the sampler, trainer and evaluation params, and refuses what it does not port', () => {
  const g = YAML.parse(YAML.stringify(scienceGraph())) as Parameters<typeof peerRecipe>[0];
  const sampler = { split: 'train', batchSize: 8, mode: 'mtm', epochs: 5, shuffle: true, dropLast: false, temporalRatio: 0.3, neuronRatio: 0.3, causalRatio: 0.6, intraRegionRatio: 0.3, sessionBalance: 'proportional', maxTrials: 0, regionLevel: 'acronym' };
  const trainer = { architecture: 'ndt1', config: { dModel: 32 }, learningRate: 0.003, weightDecay: 0.01, warmupFraction: 0.15, clipNorm: 1, patience: 0, prompts: 'auto', sessionTokens: 'auto', init: '', trainScope: 'all', label: 'mtm' };
  g.nodes.mtmTrain.params = sampler;
  g.nodes.mtmVal.params = { ...sampler, split: 'val', epochs: 1 };
  g.nodes.mtm.params = trainer;
  g.nodes.evaluate.params = { forwardPredictionBins: 10, regionLevel: 'acronym' };
  const r = peerRecipe(g, 'mtm');
  assert.is(r.sampler.mode, 'mtm');
  assert.is(r.sampler.epochs, 5);
  assert.equal(r.sampler.ratios, { temporal: 0.3, neuron: 0.3, causal: 0.6, intraRegion: 0.3 });
  assert.equal(r.sampler.timeShape, { span: 1, forecast: 0 });
  assert.is(r.model.dModel, 32);
  assert.is(r.model.mlpDim, 128); // NDT1 defaults filled
  assert.not.ok('promptTokens' in r.model); // left to train-model's auto rule
  g.nodes.mtmTrain.params = { ...sampler, newMaskKnob: 2 };
  assert.throws(() => peerRecipe(g, 'mtm'), /does not port mtmTrain\.newMaskKnob/);
  g.nodes.mtmTrain.params = { ...sampler, neuronRatio: 0.5 };
  assert.throws(() => peerRecipe(g, 'mtm'), /mtmVal\.neuronRatio/);
});

test('spread gives mean, sample sd and range', () => {
  const s = spread([1, 2, 3, NaN]);
  assert.is(s.n, 3);
  assert.is(s.mean, 2);
  assert.is(s.sd, 1);
  assert.is(s.min, 1);
  assert.is(s.max, 3);
});

// ---------------------------------------------------------------------------------------------
// The peer's masking function against core/masking/masking.ts: fraction of entries masked and
// scored, and how often mtm draws each mode.

const STATS_SHAPE = { trials: 4, bins: 40, neurons: 24 };
const STATS_REGIONS = [...Array(4).fill('CA1'), ...Array(8).fill('LP'), ...Array(11).fill('PO'), 'unlabelled'];
const SCHEMES = ['temporal', 'neuron', 'causal', 'inter-region', 'intra-region', 'mtm'] as const;
const DRAWS = 1500;

function tsStats(timeShape: Record<string, number>) {
  const rng = createRng(11);
  const out: Record<string, { masked: number; scored: number; maskedSd: number; scoredSd: number; modes: Record<string, number> }> = {};
  for (const scheme of SCHEMES) {
    const masked: number[] = [];
    const scored: number[] = [];
    const modes: Record<string, number> = {};
    for (let i = 0; i < DRAWS; i++) {
      // The sixth argument (the time modes' shape) is what the sampler passes; older signatures ignore it.
      const d = (sampleMask as (...a: unknown[]) => ReturnType<typeof sampleMask>)(STATS_SHAPE, STATS_REGIONS, scheme, rng, {}, timeShape);
      masked.push(d.masked.reduce((a, b) => a + b, 0) / d.masked.length);
      scored.push(d.lossMask.reduce((a, b) => a + b, 0) / d.lossMask.length);
      modes[d.mode] = (modes[d.mode] ?? 0) + 1;
    }
    const m = spread(masked);
    const s = spread(scored);
    const sd = (xs: number[], mean: number) => Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1));
    for (const k of Object.keys(modes)) modes[k] /= DRAWS;
    out[scheme] = { masked: masked.reduce((a, b) => a + b, 0) / DRAWS, scored: scored.reduce((a, b) => a + b, 0) / DRAWS, maskedSd: sd(masked, m.mean), scoredSd: sd(scored, s.mean), modes };
  }
  return out;
}

function pyStats(python: string, timeShape: Record<string, number>) {
  const spec = { ...STATS_SHAPE, regions: STATS_REGIONS, schemes: SCHEMES, draws: DRAWS, seed: 5, timeShape };
  const r = spawnSync(python, [PEER_SCRIPT, '--mask-stats', JSON.stringify(spec)], { env: peerEnv(1), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`torch_science.py --mask-stats failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, { masked: number; scored: number; modes: Record<string, number> }>;
}

const timeShapes: Record<string, number>[] = [{}];
// The time modes' span and forecast options, where core/masking has them.
if ('DEFAULT_TIME_SHAPE' in maskTypes) timeShapes.push({ span: 4 }, { span: 3, forecast: 0.5 });

for (const ts of timeShapes) {
  test(`the peer's sample_mask masks and scores the same fractions as sampleMask, per mode ${JSON.stringify(ts)}`, () => {
    if (!numpyPython) {
      console.log('SKIP: no Python with numpy for the masking comparison');
      return;
    }
    const a = tsStats(ts);
    const b = pyStats(numpyPython, ts);
    for (const scheme of SCHEMES) {
      // Five standard errors of the difference of two means of DRAWS draws each, plus rounding slack.
      const tolM = 5 * Math.SQRT2 * (a[scheme].maskedSd / Math.sqrt(DRAWS)) + 1e-3;
      const tolS = 5 * Math.SQRT2 * (a[scheme].scoredSd / Math.sqrt(DRAWS)) + 1e-3;
      assert.ok(Math.abs(a[scheme].masked - b[scheme].masked) <= tolM, `${scheme}: masked ${a[scheme].masked.toFixed(4)} (TS) vs ${b[scheme].masked.toFixed(4)} (peer), tolerance ${tolM.toFixed(4)}`);
      assert.ok(Math.abs(a[scheme].scored - b[scheme].scored) <= tolS, `${scheme}: scored ${a[scheme].scored.toFixed(4)} (TS) vs ${b[scheme].scored.toFixed(4)} (peer), tolerance ${tolS.toFixed(4)}`);
      assert.equal(Object.keys(b[scheme].modes).sort(), Object.keys(a[scheme].modes).sort(), `${scheme}: modes drawn`);
      for (const [mode, f] of Object.entries(a[scheme].modes)) {
        const tol = 5 * Math.sqrt((2 * f * (1 - f)) / DRAWS) + 1e-9;
        assert.ok(Math.abs(f - b[scheme].modes[mode]) <= tol, `${scheme}: mode ${mode} drawn ${f.toFixed(3)} (TS) vs ${b[scheme].modes[mode].toFixed(3)} (peer)`);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The peer on a tiny binned session, two epochs.

function tinySession(): BinnedSession {
  const rng = createRng(3);
  const nTrials = 30;
  const nBins = 20;
  const nNeurons = 9;
  const regions = ['CA1', 'CA1', 'CA1', 'LP', 'LP', 'LP', 'PO', 'PO', 'PO'];
  const counts = new Int32Array(nTrials * nBins * nNeurons);
  const trueRates = new Float32Array(counts.length);
  for (let i = 0; i < counts.length; i++) {
    const n = i % nNeurons;
    const b = Math.floor(i / nNeurons) % nBins;
    trueRates[i] = 0.2 + 0.15 * n * (1 + Math.sin(b / 3));
    counts[i] = rng.poisson(trueRates[i]);
  }
  const split: Split[] = Array.from({ length: nTrials }, (_, t) => (t < 18 ? 'train' : t < 22 ? 'val' : 'test'));
  return {
    kind: 'binned-session', sessionId: 'tiny-session', binSizeMs: 20, windowS: [-0.1, 0.3], nTrials, nBins, nNeurons, counts, trueRates, perBin: {},
    trials: { trialIndex: Int32Array.from({ length: nTrials }, (_, t) => t), split, columns: {} },
    neurons: regions.map((r, i) => ({ probe: 'probe00', clusterId: i, atlasId: 1, acronym: r, beryl: r, cosmos: 'HPF', depthUm: 100 * i, good: true })),
  };
}

const TINY_RECIPE = (mode: string): PeerRecipe => ({
  sampler: { mode, epochs: 2, batchSize: 4, shuffle: true, dropLast: false, sessionBalance: 'proportional', maxTrials: 0, regionLevel: 'acronym', ratios: { temporal: 0.3, neuron: 0.3, causal: 0.6, intraRegion: 0.3 }, timeShape: { span: 2, forecast: 0.3 } },
  train: { learningRate: 0.003, weightDecay: 0.01, warmupFraction: 0.15, clipNorm: 1, prompts: 'auto', sessionTokens: 'auto', readoutInit: mode === 'temporal' ? 'meanCounts' : 'default' },
  model: { dModel: 16, layers: 1, heads: 2, mlpDim: 32, dropout: 0.2, attentionDropout: 0, embedDropout: 0.2, embedHiddenFactor: 2, maxBins: 100 },
  evaluate: { forwardPredictionBins: 5, regionLevel: 'acronym' },
});

for (const scheme of ['mtm', 'temporal']) {
  test(`the peer trains ${scheme} on a tiny binned session and reports finite bits/spike for every task`, async () => {
    if (!peerPython) {
      console.log('SKIP: no Python with torch (run bash bench/setup-peer.sh): the peer was not run');
      return;
    }
    const dir = join(tempDir('mtm-science-'), 'tiny-session');
    await writeBinnedSessionFolder(tinySession(), dir);
    const r = await runPeer(peerPython, [dir], TINY_RECIPE(scheme), 1, { quiet: true, timeoutMs: 5 * 60_000 });
    assert.is(r.format, 'mtm-science-peer@1');
    assert.is(r.scheme, scheme);
    assert.match(r.torchVersion, /^\d+\.\d+/);
    assert.is(r.training.history.length, 2);
    assert.is(r.training.batchesPerEpoch, 5); // 18 training trials in batches of 4
    assert.is(r.model.config.promptTokens, scheme === 'mtm');
    assert.is(r.model.config.sessionTokens, false); // one session
    assert.equal(r.sessions.map((s) => s.sessionId), ['tiny-session']);
    assert.equal(r.sessions[0].trials, { train: 18, val: 4, test: 8 });
    const ev = r.evaluation['tiny-session'];
    for (const task of TASKS) {
      const t = ev[task]!;
      assert.ok(Number.isFinite(t.bps), `${task} bps ${t.bps}`);
      assert.ok(Number.isFinite(r.mean[task]), `${task} mean ${r.mean[task]}`);
      assert.ok(Number.isFinite(t.oracle), `${task} oracle ${t.oracle}`);
      assert.is(t.evaluated + t.excluded, 9);
      // Each task runs in a mode the model was trained with (resolvePrompt).
      if (scheme === 'temporal') assert.is(t.mode, 'temporal');
    }
    if (scheme === 'mtm') {
      const want = (prompt: string) => (r.training.trainedModes.includes(prompt) ? prompt : 'temporal');
      assert.is(ev.coSmoothing!.mode, want('neuron'));
      assert.is(ev.forwardPrediction!.mode, want('causal'));
      assert.is(ev.forwardPrediction!.causal, want('causal') === 'causal');
      assert.is(ev.interRegion!.mode, want('inter-region'));
      assert.is(ev.intraRegion!.mode, want('intra-region'));
    }
  });
}

test('the peer replays mtm-flow training steps from the same weights with the same losses and gradient norms', async () => {
  if (!peerPython) {
    console.log('SKIP: no Python with torch (run bash bench/setup-peer.sh): steps not replayed');
    return;
  }
  const dir = join(tempDir('mtm-science-'), 'steps');
  await writeStepParity(dir, { steps: 10 });
  const r = replayStepParity(peerPython, dir);
  assert.is(r.steps, 10);
  assert.ok(r.maxLossRelDiff < 1e-4, `loss relative difference ${r.maxLossRelDiff}`);
  assert.ok(r.maxGradNormRelDiff < 1e-4, `gradient norm relative difference ${r.maxGradNormRelDiff}`);
  assert.ok(r.maxFinalWeightAbsDiff < 1e-2, `final weights differ by up to ${r.maxFinalWeightAbsDiff}`);
  assert.ok(r.clippedSteps >= 1, 'clipping exercised');
});

test.run();
