import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { simulate, simulateParams } from './simulate.ts';
import { runStage, tempDir, testContext } from '../core/testing.ts';
import { loadSpikeTrains } from '../core/alf/session.ts';
import { readParquet } from '../core/io/parquet.ts';
import { readNpy } from '../core/io/npy.ts';
import type { SessionRef } from '../core/payloads.ts';

const SMALL = { sessions: 3, trials: [15, 25], neurons: [20, 40], seed: 5 };

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(root, p));
    }
  };
  walk(root);
  return out;
}
const md5 = (p: string) => createHash('md5').update(readFileSync(p)).digest('hex');

const outA = tempDir();
const outB = tempDir();
const refs = (await runStage(simulate, { ...SMALL, out: outA })).sessions as SessionRef[];

test('emits one session-ref per session, pointing into the cache', () => {
  assert.is(refs.length, 3);
  for (const r of refs) {
    assert.is(r.kind, 'session-ref');
    assert.match(r.eid!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.is(r.sessionId, r.eid);
    assert.is(r.cacheDir, outA);
    assert.match(relative(outA, r.path), /^[a-z]+lab\/Subjects\/SIM00\d\/\d{4}-\d\d-\d\d\/001$/);
  }
  assert.is(new Set(refs.map((r) => r.eid)).size, 3);
});

test('same seed, same bytes; another seed, other data', async () => {
  await runStage(simulate, { ...SMALL, out: outB });
  const a = listFiles(outA);
  assert.equal(a, listFiles(outB));
  for (const f of a) assert.is(md5(join(outA, f)), md5(join(outB, f)), f);
  const outC = tempDir();
  await runStage(simulate, { ...SMALL, out: outC, seed: 6 });
  assert.not.equal(md5(join(outA, 'sessions.pqt')), md5(join(outC, 'sessions.pqt')));
});

test('the graph seed is used when seed is null', async () => {
  const out1 = tempDir();
  const out2 = tempDir();
  await runStage(simulate, { ...SMALL, sessions: 1, seed: null, out: out1 }, {}, testContext('sim', 77));
  await runStage(simulate, { ...SMALL, sessions: 1, seed: 77, out: out2 }, {}, testContext('sim', 1));
  assert.is(md5(join(out1, 'sessions.pqt')), md5(join(out2, 'sessions.pqt')));
});

test('ONE cache tables: sessions.pqt and datasets.pqt list every file with its size and md5', async () => {
  const sessions = await readParquet(join(outA, 'sessions.pqt'));
  assert.equal(sessions.columnNames, ['id', 'lab', 'subject', 'date', 'number', 'task_protocol', 'projects']);
  assert.equal(sessions.columns.id, refs.map((r) => r.eid!));
  for (const d of sessions.columns.date) assert.match(String(d), /^\d{4}-\d\d-\d\d$/);
  const ds = await readParquet(join(outA, 'datasets.pqt'));
  assert.equal(ds.columnNames, ['eid', 'id', 'rel_path', 'session_path', 'file_size', 'hash', 'exists', 'qc']);
  const all = listFiles(outA).filter((f) => f.includes('/Subjects/'));
  assert.is(ds.numRows, all.length);
  for (let i = 0; i < ds.numRows; i++) {
    const file = join(outA, String(ds.columns.session_path[i]), String(ds.columns.rel_path[i]));
    assert.is(ds.columns.file_size[i], statSync(file).size);
    assert.is(ds.columns.hash[i], md5(file));
    assert.is(ds.columns.exists[i], true);
    const ref = refs.find((r) => r.eid === ds.columns.eid[i])!;
    assert.is(join(outA, String(ds.columns.session_path[i])), ref.path);
  }
  const rels = new Set(ds.columns.rel_path.map(String));
  for (const f of ['alf/_ibl_trials.table.pqt', 'alf/probe00/pykilosort/spikes.times.npy', 'alf/probe00/pykilosort/channels.brainLocationIds_ccf_2017.npy', 'alf/_mtm_sim.trueRates.npy', 'alf/_mtm_sim.meta.json', 'alf/leftCamera.ROIMotionEnergy.npy', 'alf/_ibl_wheel.position.npy']) {
    assert.ok(rels.has(f), f);
  }
});

test('sessions load through loadSpikeTrains and differ like different animals', async () => {
  const sizes: number[] = [];
  for (const r of refs) {
    const st = await loadSpikeTrains(r.path, { eid: r.eid, sessionId: r.sessionId });
    const nTrials = st.trials.stimOn_times.length;
    assert.ok(nTrials >= 15 && nTrials <= 25);
    for (const k of ['goCue_times', 'firstMovement_times', 'feedback_times', 'choice', 'feedbackType', 'probabilityLeft', 'contrastLeft', 'contrastRight', 'intervals_0']) assert.ok(st.trials[k], k);
    assert.ok(st.wheelPosition && st.wheelPosition.times.length > 1000);
    assert.ok(st.whiskerMotionEnergy && st.whiskerMotionEnergy.values.every((v) => v > 0));
    let n = 0;
    for (const p of st.probes) {
      n += p.clusterIds.length;
      assert.ok(p.times.length > 100 && p.clusterGood && p.clusterChannels && p.clusterDepthsUm && p.channelAtlasIds);
      assert.is(p.channelAtlasIds!.length, 384);
    }
    sizes.push(n);
    const meta = JSON.parse(readFileSync(join(r.path, 'alf', '_mtm_sim.meta.json'), 'utf8'));
    assert.is(meta.neurons.length, n);
    assert.ok(meta.regions.length >= 3 && meta.regions.length <= 6);
    const rates = await readNpy(join(r.path, 'alf', '_mtm_sim.trueRates.npy'));
    assert.equal(rates.shape, [nTrials, 100, n]);
    assert.is(rates.dtype, '<f4');
  }
  assert.ok(new Set(sizes).size > 1, `neuron counts differ across sessions: ${sizes}`);
});

test('reuse keeps a cache written with the same options; other options simulate again', async () => {
  const file = join(refs[0].path, 'alf', '_mtm_sim.trueRates.npy');
  const before = statSync(file).mtimeMs;
  const again = (await runStage(simulate, { ...SMALL, out: outA })).sessions as SessionRef[];
  assert.equal(again, refs);
  assert.is(statSync(file).mtimeMs, before);
  await runStage(simulate, { ...SMALL, out: outA, reuse: false });
  assert.ok(statSync(file).mtimeMs > before);
});

test('sharedDynamics: recorded in the meta and the cache fingerprint; off leaves both as they were', async () => {
  const metaOf = (r: SessionRef) => JSON.parse(readFileSync(join(r.path, 'alf', '_mtm_sim.meta.json'), 'utf8'));
  assert.not.ok('sharedDynamics' in metaOf(refs[0]) || 'worldSeed' in metaOf(refs[0]), 'default meta has no world keys');
  const out = tempDir();
  const shared = (await runStage(simulate, { ...SMALL, out, sharedDynamics: true, worldSeed: 9 })).sessions as SessionRef[];
  assert.equal(shared.map((r) => r.eid), refs.map((r) => r.eid), 'same session seed: same eids and plans');
  const m = metaOf(shared[0]);
  assert.is(m.sharedDynamics, true);
  assert.is(m.worldSeed, 9);
  assert.not.equal(md5(join(shared[0].path, 'alf', '_mtm_sim.trueRates.npy')), md5(join(refs[0].path, 'alf', '_mtm_sim.trueRates.npy')));
  // Another world is other options: reuse does not keep the cache.
  const file = join(shared[0].path, 'alf', '_mtm_sim.trueRates.npy');
  const before = md5(file);
  await runStage(simulate, { ...SMALL, out, sharedDynamics: true, worldSeed: 10 });
  assert.is.not(md5(file), before);
  assert.is(metaOf(shared[0]).worldSeed, 10);
});

test('bad sizes are refused with the field named', async () => {
  await runStage(simulate, { ...SMALL, out: tempDir(), neurons: [5, 8] }).then(
    () => assert.unreachable('should fail'),
    (e: Error) => assert.match(e.message, /'neurons'/),
  );
  await runStage(simulate, { ...SMALL, out: tempDir(), refractoryMs: [3, 1] }).then(
    () => assert.unreachable('should fail'),
    (e: Error) => assert.match(e.message, /refractoryMs/),
  );
});

test('params: the simulator\'s own range checks, at the field, so validation refuses what a run would', () => {
  const issues = (p: Record<string, unknown>) => (simulateParams.safeParse(p).error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);
  assert.equal(issues({}), []);
  assert.match(issues({ trials: [5, 1] }).join('\n'), /^trials: simulator: 'trials' must be integers \[min, max\] with 1 <= min <= max \(got 5, 1\)/);
  assert.match(issues({ neurons: [4, 5] }).join('\n'), /^neurons: .*too small for 6 regions/);
  assert.equal(issues({ neurons: [4, 5], regions: [1, 1] }), []);
});

test.run();
