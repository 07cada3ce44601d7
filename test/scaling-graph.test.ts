// graphs/scaling.yaml and graphs/fewshot.yaml through the CLI, as a user runs them, with tiny
// sizes (seconds): every (series, x) reaches sweep.json, the plots exist, the pretraining sets are
// nested, and each fine-tuned model starts from the pretrained model its init port received.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../core/testing.ts';

const root = join(import.meta.dirname, '..');
const tiny = ['heldOut=1', 'simTrials=[40, 50]', 'neurons=[18, 24]', 'model={dModel: 16, layers: 1, heads: 2, mlpDim: 32}', 'batchSize=8', 'maxLeftOutNeurons=4', 'pretrainEpochs=1'];

function mtm(graph: string, out: string, sets: string[]) {
  const r = spawnSync(process.execPath, ['bin/mtm.js', 'run', graph, '--out', out, ...sets.flatMap((s) => ['--set', s])], { cwd: root, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  return { code: r.status, text: `${r.stdout}\n${r.stderr}` };
}

const json = (...p: string[]) => JSON.parse(readFileSync(join(...p), 'utf8'));
const meta = (out: string, node: string) => json(out, 'artifacts', node, 'best', 'model.json').userDefinedMetadata;
const sessionIds = (m: { sessions: { sessionId: string }[] }) => m.sessions.map((s) => s.sessionId);

function checkRun(out: string) {
  const info = json(out, 'run.json');
  assert.is(info.status, 'completed');
  for (const [node, stats] of Object.entries(info.nodes as Record<string, { emitted: Record<string, number> }>)) {
    assert.ok(Object.values(stats.emitted).reduce((a, b) => a + b, 0) > 0, `node ${node} emitted nothing`);
  }
}

function checkSweep(dir: string, series: string[], xs: (number | string)[]) {
  const sweep = json(dir, 'sweep.json');
  assert.equal(sweep.series, series);
  assert.equal(sweep.xs, xs);
  const got = sweep.points.map((p: { series: string; x: unknown }) => `${p.series}@${p.x}`);
  assert.equal(got, series.flatMap((s) => xs.map((x) => `${s}@${x}`)), 'every (series, x)');
  for (const p of sweep.points) {
    assert.ok(Number.isFinite(p.values.co_smoothing_bps.mean), `${p.label}: co-smoothing mean`);
    assert.equal(Object.keys(p.values.co_smoothing_bps.perSession), sweep.sessions, `${p.label}: a value per held-out session`);
  }
  const files = readdirSync(dir);
  for (const f of ['sweep.md', 'sweep.svg', 'sweep.png', ...sweep.metrics.flatMap((m: string) => [`sweep-${m}.svg`, `sweep-${m}.png`])]) assert.ok(files.includes(f), f);
  assert.ok(sweep.metrics.includes('co_smoothing_bps') && sweep.metrics.includes('choice_accuracy'), `metrics ${sweep.metrics}`);
  return sweep;
}

test('scaling.yaml: pretrain on the first 1, 2, 3 sessions (mtm, temporal), fine-tune on held-out, sweep over N', () => {
  const out = join(tempDir('mtm-scaling-'), 'run');
  const r = mtm('graphs/scaling.yaml', out, [...tiny, 'finetuneEpochs=1', 'small=1', 'medium=2', 'large=3']);
  assert.is(r.code, 0, r.text);
  checkRun(out);
  const sweep = checkSweep(join(out, 'sweep'), ['mtm', 'temporal'], [0, 1, 2, 3]);
  assert.is(sweep.xTitle, 'pretraining sessions');
  assert.ok(existsSync(join(out, 'report', 'report.json')));

  // Nested pretraining sets in simulation order; held-out sessions are none of them.
  const pre = Object.fromEntries(['Small', 'Medium', 'Large'].map((s) => [s, sessionIds(meta(out, `mtm${s}`))]));
  assert.equal([pre.Small.length, pre.Medium.length, pre.Large.length], [1, 2, 3]);
  assert.equal(pre.Medium.slice(0, 1), pre.Small);
  assert.equal(pre.Large.slice(0, 2), pre.Medium);
  assert.equal(sessionIds(meta(out, 'temporalLarge')), pre.Large);
  for (const id of sweep.sessions) assert.not.ok(pre.Large.includes(id), `held-out ${id} is not a pretraining session`);

  // Fine-tuned models start from the model on their init port; scratch models from nothing.
  for (const [node, from] of [['mtmMediumFt', 'mtmMedium'], ['temporalLargeFt', 'temporalLarge']]) {
    const m = meta(out, node);
    assert.is(m.init.path, join(out, 'artifacts', from, 'best'), node);
    assert.equal(sessionIds(m), [...sessionIds(meta(out, from)), ...sweep.sessions], `${node}: pretrained sessions, then the held-out ones`);
  }
  assert.is(meta(out, 'mtmScratch').init, undefined);
  assert.equal(sessionIds(meta(out, 'mtmScratch')), sweep.sessions);

  // Both simulations share one world of region dynamics.
  const simMeta = (node: string) => {
    const info = json(out, 'artifacts', node, 'mtm_sim.json');
    return json(out, 'artifacts', node, info.sessions[0].sessionPath, 'alf', '_mtm_sim.meta.json');
  };
  for (const node of ['simulate', 'heldOutSim']) assert.equal([simMeta(node).sharedDynamics, simMeta(node).worldSeed], [true, 7], node);
});

test('fewshot.yaml: MtM-pretrained vs scratch at k = 4, 8 and all trials, sweep over k', () => {
  const out = join(tempDir('mtm-fewshot-'), 'run');
  const r = mtm('graphs/fewshot.yaml', out, [...tiny, 'pretrainSessions=2', 'kSmall=4', 'kMedium=8', 'kSmallEpochs=2', 'kMediumEpochs=1', 'kAllEpochs=1']);
  assert.is(r.code, 0, r.text);
  checkRun(out);
  const sweep = checkSweep(join(out, 'sweep'), ['pretrained', 'scratch'], [4, 8, 'all']);
  assert.is(sweep.numericX, false);
  assert.is(meta(out, 'pretrainedKSmall').init.path, join(out, 'artifacts', 'pretrain', 'best'));
  // batchSize 8, one held-out session: k = 4 and 8 are one batch per epoch (2 and 1 epochs), all trials more.
  const steps = (node: string) => meta(out, node).training.step;
  assert.equal([steps('pretrainedKSmall'), steps('scratchKSmall'), steps('pretrainedKMedium')], [2, 2, 1]);
  assert.ok(steps('scratchKAll') > 1);
});

test.run();
