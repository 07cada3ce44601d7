// The simulator writing into a cache that already holds other sessions: their rows in sessions.pqt
// and datasets.pqt survive (docs/method.md §2.6).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../testing.ts';
import { loadCacheTables } from '../one/cache-tables.ts';
import { ONE_FIXTURES } from '../one/testing/alyx-server.ts';
import { simulateCache } from './cache.ts';

const small = { trials: [6, 6] as [number, number], neurons: [12, 12] as [number, number], regions: [2, 2] as [number, number], maxProbes: 1 };

function realCache(): string {
  const dir = tempDir('mtm-simcache-');
  copyFileSync(join(ONE_FIXTURES, 'sessions.pqt'), join(dir, 'sessions.pqt'));
  copyFileSync(join(ONE_FIXTURES, 'datasets.pqt'), join(dir, 'datasets.pqt'));
  return dir;
}

test('simulating into a cache with real sessions keeps their rows; a second simulation replaces only its own', async () => {
  const dir = realCache();
  const real = (await loadCacheTables(dir))!;
  const realEids = new Set(real.sessions.map((s) => s.eid));
  assert.ok(realEids.size > 10);

  const first = await simulateCache({ ...small, out: dir, sessions: 2, seed: 1 });
  let t = (await loadCacheTables(dir))!;
  const eidsNow = new Set(t.sessions.map((s) => s.eid));
  for (const e of realEids) assert.ok(eidsNow.has(e), `real session ${e} kept`);
  for (const s of first) assert.ok(eidsNow.has(s.eid), `simulated ${s.eid} added`);
  assert.is(t.sessions.length, realEids.size + 2);
  assert.is(t.datasets.filter((d) => realEids.has(d.eid)).length, real.datasets.length, 'every real dataset row kept');
  const simRows = t.datasets.filter((d) => d.eid === first[0].eid);
  assert.ok(simRows.some((d) => d.relativePath === 'alf/probe00/pykilosort/spikes.times.npy'), simRows.map((d) => d.relativePath).join(' '));
  assert.is(t.sessions.find((s) => s.eid === first[0].eid)!.relativePath, first[0].sessionPath);

  const second = await simulateCache({ ...small, out: dir, sessions: 1, seed: 2 });
  t = (await loadCacheTables(dir))!;
  const after = new Set(t.sessions.map((s) => s.eid));
  for (const e of realEids) assert.ok(after.has(e), `real session ${e} kept after a second simulation`);
  assert.ok(after.has(second[0].eid));
  for (const s of first) assert.not.ok(after.has(s.eid), 'the previous simulation rows are replaced');
  assert.is(t.sessions.length, realEids.size + 1);
});

test('a cache written only by the simulator is rewritten byte for byte as before', async () => {
  const a = tempDir('mtm-simcache-');
  const b = tempDir('mtm-simcache-');
  await simulateCache({ ...small, out: a, sessions: 1, seed: 3 });
  await simulateCache({ ...small, out: a, sessions: 1, seed: 3 });
  await simulateCache({ ...small, out: b, sessions: 1, seed: 3 });
  for (const f of ['sessions.pqt', 'datasets.pqt']) assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), f);
});

test('a session folder the simulator did not write is never overwritten', async () => {
  const dir = tempDir('mtm-simcache-');
  const [info] = await simulateCache({ ...small, out: dir, sessions: 1, seed: 4 });
  const other = tempDir('mtm-simcache-');
  // Someone else's session at the very folder the simulator would write.
  const target = join(other, info.sessionPath, 'alf');
  mkdirSync(target, { recursive: true });
  writeFileSync(join(target, 'notes.txt'), 'real data');
  try {
    await simulateCache({ ...small, out: other, sessions: 1, seed: 4 });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /not written by the simulator/);
    assert.ok((e as Error).message.includes(info.sessionPath));
  }
  assert.is(readFileSync(join(target, 'notes.txt'), 'utf8'), 'real data');
});

test.run();
