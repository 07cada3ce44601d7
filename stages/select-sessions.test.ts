import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkStageDescriptor } from '../core/registry.ts';
import { pulledIterable } from '../core/runtime/demand.ts';
import { manualStream, runStage, testContext } from '../core/testing.ts';
import type { BinnedSession } from '../core/payloads.ts';
import { selectSessions } from './select-sessions.ts';

const session = (i: number): BinnedSession => ({
  kind: 'binned-session', sessionId: `s${i}`, eid: `eid-${i}`, binSizeMs: 20, windowS: [0, 0.02], nTrials: 1, nBins: 1, nNeurons: 1,
  counts: Int32Array.of(i), trials: { trialIndex: Int32Array.of(0), split: ['train'], columns: {} }, neurons: [], perBin: {},
});
const five = [1, 2, 3, 4, 5].map(session);
const ids = (xs: unknown[]) => (xs as BinnedSession[]).map((s) => s.sessionId);
const select = async (params: Record<string, unknown>, items = five) => ids((await runStage(selectSessions, params, { sessions: items })).sessions);
async function failure(params: Record<string, unknown>, items = five): Promise<string> {
  try {
    await select(params, items);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error(`select ${JSON.stringify(params)} should have failed`);
}

test('descriptor', () => {
  checkStageDescriptor(selectSessions);
  assert.is(selectSessions.inputs.sessions.type, 'binned-session');
  assert.is(selectSessions.outputs.sessions.type, 'binned-session');
});

test('first N in order of arrival: nested for growing N, the items unchanged', async () => {
  assert.equal(await select({ first: 1 }), ['s1']);
  assert.equal(await select({ first: 3 }), ['s1', 's2', 's3']);
  assert.equal(await select({ first: 5 }), ['s1', 's2', 's3', 's4', 's5']);
  assert.equal(await select({}), ['s1', 's2', 's3', 's4', 's5'], 'no filter: every session');
  const out = (await runStage(selectSessions, { first: 2 }, { sessions: five })).sessions as BinnedSession[];
  assert.is(out[1], five[1], 'the same object, not a copy');
});

test('ids by session id or eid, kept in order of arrival', async () => {
  assert.equal(await select({ ids: ['s4', 'eid-2'] }), ['s2', 's4']);
});

test('errors: too few sessions, ids that never arrive (with a hint), both params, duplicates', async () => {
  assert.match(await failure({ first: 7 }), /select-sessions 'select-sessions': first is 7 but only 5 session\(s\) arrived/);
  assert.match(await failure({ ids: ['s3', 'unknown-session', 'eid-5x'] }), /session\(s\) 'unknown-session', 'eid-5x' \(did you mean 'eid-5'\?\) never arrived; arrived: s1, s2, s3, s4, s5/);
  assert.match(await failure({ first: 2, ids: ['s1'] }), /both first \(2\) and ids \(1\) are set; use one/);
  assert.match(await failure({ ids: ['s1', 's1'] }), /ids lists a session twice: s1/);
});

test('first N completes once it has N, and every session taken counts as progress (dropped ones too)', async () => {
  const input = manualStream<BinnedSession>();
  let taken = 0;
  const ctx = { ...testContext('pick'), connectedInputs: new Set(['sessions']), pull: <T>(s: import('rxjs').Observable<T>) => pulledIterable(s, () => void taken++) };
  const p = selectSessions.params.parse({ ids: ['s2'] });
  const got: string[] = [];
  const done = new Promise<void>((resolve, reject) => selectSessions.create(p, ctx)({ sessions: input.stream }).sessions.subscribe({ next: (s) => got.push(s.sessionId), error: reject, complete: resolve }));
  for (const s of five) input.push(s);
  input.end();
  await done;
  assert.equal(got, ['s2']);
  assert.is(taken, 5, 'each session pulled counts, kept or not');

  const open = manualStream<BinnedSession>();
  const first = selectSessions.create(selectSessions.params.parse({ first: 2 }), { ...testContext('pick'), connectedInputs: new Set(['sessions']) })({ sessions: open.stream });
  let completed = false;
  const seen: string[] = [];
  first.sessions.subscribe({ next: (s) => seen.push(s.sessionId), complete: () => (completed = true) });
  open.push(five[0]);
  open.push(five[1]);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(seen, ['s1', 's2']);
  assert.ok(completed, 'done before its input ends: the branch below need not wait for the rest');
});

test.run();
