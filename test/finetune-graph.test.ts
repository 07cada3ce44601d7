// graphs/pretrain.yaml -> graphs/finetune.yaml through the CLI, as a user runs them: a two-session
// pretrained model is fine-tuned on a held-out simulated session with two few-shot k (docs/method.md §5.5).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../core/testing.ts';

const root = join(import.meta.dirname, '..');
const tiny = ['epochs=2', 'simTrials=[60, 70]', 'neurons=[18, 24]', 'batchSize=8', 'train.config={dModel: 16, layers: 1, heads: 2, mlpDim: 32}'];

function mtm(graph: string, out: string, sets: string[]) {
  const r = spawnSync(process.execPath, ['bin/mtm.js', 'run', graph, '--out', out, ...sets.flatMap((s) => ['--set', s])], { cwd: root, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  return { code: r.status, text: `${r.stdout}\n${r.stderr}` };
}

const meta = (dir: string) => JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
const trainEpochs = (out: string) =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.node === 'train' && 'trainLoss' in m);

const work = tempDir('mtm-finetune-');
const pre = join(work, 'pretrain');
const preModel = join(pre, 'artifacts', 'train', 'best');

test('pretrain.yaml trains one model over K sessions with a stitcher and a session token each', () => {
  const r = mtm('graphs/pretrain.yaml', pre, [...tiny, 'sessions=2']);
  assert.is(r.code, 0, r.text);
  const m = meta(preModel);
  assert.is(m.modelTopology.config.sessionTokens, true, 'auto session tokens for two sessions');
  const ids = m.userDefinedMetadata.sessions.map((s: { sessionId: string }) => s.sessionId);
  assert.is(ids.length, 2);
  const names = m.weightsManifest[0].weights.map((w: { name: string }) => w.name);
  for (const id of ids) for (const part of ['in1.weight', 'readout.weight', 'token']) assert.ok(names.includes(`sessions.${id}.${part}`), `${id} ${part}`);
  assert.is(trainEpochs(pre).length, 2);
});

test('finetune.yaml on the pretrained model: held-out session added, few-shot k trains on k trials', () => {
  const pretrained = meta(preModel).userDefinedMetadata.sessions.map((s: { sessionId: string }) => s.sessionId);
  const steps: Record<number, number> = {};
  for (const k of [8, 16]) {
    const out = join(work, `finetune-k${k}`);
    const r = mtm('graphs/finetune.yaml', out, [...tiny.slice(0, 4), `model=${preModel}`, `trials=${k}`]);
    assert.is(r.code, 0, r.text);
    const m = meta(join(out, 'artifacts', 'train', 'best'));
    const ids = m.userDefinedMetadata.sessions.map((s: { sessionId: string }) => s.sessionId);
    assert.equal(ids.slice(0, 2), pretrained, 'the pretrained sessions stay, first');
    assert.is(ids.length, 3);
    assert.not.ok(pretrained.includes(ids[2]), 'the held-out session is a new one (another simulation seed)');
    assert.equal(Object.keys(m.userDefinedMetadata.neurons).sort(), [...ids].sort());
    assert.is(m.userDefinedMetadata.init.path, preModel);
    assert.equal(m.modelTopology.config, meta(preModel).modelTopology.config, 'the pretrained architecture and config');
    const epochs = trainEpochs(out);
    assert.is(epochs.length, 2);
    for (const e of epochs) assert.ok(Number.isFinite(e.valLoss));
    steps[k] = epochs[1].step;
  }
  // batchSize 8: k = 8 is one batch per epoch, k = 16 two.
  assert.equal(steps, { 8: 2, 16: 4 });
});

test('finetune.yaml requires the model and names a bad model folder', () => {
  const none = mtm('graphs/finetune.yaml', join(work, 'no-model'), tiny.slice(0, 4));
  assert.is.not(none.code, 0);
  assert.match(none.text, /graph param 'model' has no value: give it with --set model=<value>/);
  const missing = join(work, 'nowhere');
  const bad = mtm('graphs/finetune.yaml', join(work, 'bad-model'), [...tiny.slice(0, 4), `model=${missing}`]);
  assert.is.not(bad.code, 0);
  assert.ok(bad.text.includes(`cannot read model file ${join(missing, 'model.json')}`), bad.text);
});

test.run();
