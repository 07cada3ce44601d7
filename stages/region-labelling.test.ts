import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Writable } from 'node:stream';
import pino from 'pino';
import { regionLabelling } from './region-labelling.ts';
import { runStage, testContext } from '../core/testing.ts';
import type { BinnedSession, NeuronInfo } from '../core/payloads.ts';

function session(ids: number[]): BinnedSession {
  const neurons: NeuronInfo[] = ids.map((atlasId, i) => ({ probe: 'probe00', clusterId: i, atlasId, acronym: '', beryl: '', cosmos: '', depthUm: 100 * i, good: true }));
  return {
    kind: 'binned-session',
    sessionId: 's1',
    binSizeMs: 20,
    windowS: [-0.5, 1.5],
    nTrials: 1,
    nBins: 1,
    nNeurons: ids.length,
    counts: new Int32Array(ids.length),
    trials: { trialIndex: Int32Array.from([0]), split: ['train'], columns: {} },
    neurons,
    perBin: {},
  };
}

const IDS = [312782562, -10703, 218, 0, -1, 99999999];

test('allen level (default): finest acronym, beryl and cosmos always filled', async () => {
  const { sessions } = await runStage(regionLabelling, {}, { sessions: [session(IDS)] });
  const n = (sessions[0] as BinnedSession).neurons;
  assert.equal(n.map((x) => x.acronym), ['VISa5', 'DG-mo', 'LP', 'void', 'unlocated', 'unknown']);
  assert.equal(n.map((x) => x.beryl), ['VISa', 'DG', 'LP', 'void', 'unlocated', 'unknown']);
  assert.equal(n.map((x) => x.cosmos), ['Isocortex', 'HPF', 'TH', 'void', 'unlocated', 'unknown']);
  assert.equal(n.map((x) => x.atlasId), IDS, 'ids untouched');
});

test('beryl and cosmos levels change only the acronym column', async () => {
  for (const [level, want] of [
    ['beryl', ['VISa', 'DG', 'LP', 'void', 'unlocated', 'unknown']],
    ['cosmos', ['Isocortex', 'HPF', 'TH', 'void', 'unlocated', 'unknown']],
  ] as const) {
    const { sessions } = await runStage(regionLabelling, { level }, { sessions: [session(IDS)] });
    const n = (sessions[0] as BinnedSession).neurons;
    assert.equal(n.map((x) => x.acronym), [...want], level);
    assert.equal(n[1].beryl, 'DG');
    assert.equal(n[1].cosmos, 'HPF');
  }
});

test('unknown ids are counted in a warning and in the metrics', async () => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  const ctx = { ...testContext('label'), logger: pino({ level: 'info' }, sink) };
  await runStage(regionLabelling, {}, { sessions: [session([...IDS, 88888888, 99999999])] }, ctx);
  const warn = lines.map((l) => JSON.parse(l)).find((l) => l.level === 40);
  assert.ok(warn, 'a warning was logged');
  assert.match(warn.msg, /^3 neuron/);
  assert.equal(warn.ids, [88888888, 99999999]);
  const { readFileSync } = await import('node:fs');
  const m = JSON.parse(readFileSync(`${ctx.run.root}/metrics.jsonl`, 'utf8').trim());
  assert.equal([m.unknown, m.void, m.unlocated, m.ok], [3, 1, 1, 3]);
});

test('rejects an unknown level', () => {
  assert.throws(() => regionLabelling.params.parse({ level: 'swanson' }));
});

test.run();
