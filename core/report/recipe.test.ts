import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { recipeMarkdown, recipesFromResolvedGraph, trainingBudgets } from './recipe.ts';

const GRAPH = `
name: g
seed: 7
nodes:
  sampler:
    stage: masking-sampler@1
    params: { split: train, mode: mtm, epochs: 30, batchSize: 8, causalRatio: 0.6, timeSpan: 5 }
  m:
    stage: train-model@1
    in: { train: sampler.batches, val: other.batches }
    params: { architecture: ndt1, config: { dModel: 64 }, learningRate: 0.003, weightDecay: 0.01, warmupFraction: 0.15, clipNorm: 1, label: mtm, init: "" }
  loose:
    stage: train-model@1
    in: { train: notASampler.items }
    params: { architecture: ndt2, config: {}, learningRate: 0.001, weightDecay: 0, warmupFraction: 0.1, clipNorm: 0, label: "", init: /models/pre }
  notASampler:
    stage: something-else@1
`;

test('recipes: every train-model node with its sampler, optimiser and seed', () => {
  const s = recipesFromResolvedGraph(GRAPH);
  assert.is(s.seed, 7);
  assert.is(s.recipes.length, 2);
  const [m, loose] = s.recipes;
  assert.equal(
    { label: m.label, arch: m.architecture, scheme: m.scheme, epochs: m.epochs, batch: m.batchSize, lr: m.learningRate, masking: m.masking },
    { label: 'mtm', arch: 'ndt1', scheme: 'mtm', epochs: 30, batch: 8, lr: 0.003, masking: { causalRatio: 0.6, timeSpan: 5 } },
  );
  assert.is(loose.label, 'loose', 'an empty label falls back to the node id');
  assert.is(loose.scheme, undefined, 'no masking sampler feeds it');
  assert.is(loose.init, '/models/pre');
});

test('budgets: epochs and steps are the last seen, seconds add up, per label', () => {
  const b = trainingBudgets([
    { label: 'mtm', values: { epoch: 1, step: 40, seconds: 1.5 } },
    { label: 'mtm', values: { epoch: 2, step: 80, seconds: 2.5 } },
    { label: 'temporal', values: { epoch: 1, step: 40, seconds: 1 } },
    { label: 'mtm', values: { co_smoothing_bps: 0.1 } },
  ]);
  assert.equal(b.get('mtm'), { epochs: 2, steps: 80, seconds: 4 });
  assert.equal(b.get('temporal'), { epochs: 1, steps: 40, seconds: 1 });
});

test('markdown: one row per model with the budget, and the seed', () => {
  const s = recipesFromResolvedGraph(GRAPH);
  const md = recipeMarkdown(s, new Map([['mtm', { epochs: 30, steps: 1200, seconds: 61.2 }]])).join('\n');
  assert.match(md, '## Recipe and budget');
  assert.match(md, '| mtm | ndt1 {"dModel":64} | mtm masking, 30 epochs of batch 8 (causalRatio 0.6, timeSpan 5) | AdamW lr 0.003');
  assert.match(md, '30 epochs, 1200 steps, 61 s of training');
  assert.match(md, '| loose | ndt2 {} | not from a masking sampler |');
  assert.match(md, 'fine-tuned from /models/pre');
  assert.match(md, 'Graph seed: 7');
  assert.equal(recipeMarkdown({ seed: 1, recipes: [] }), []);
});

test.run();
