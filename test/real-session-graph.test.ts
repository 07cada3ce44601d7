// graphs/real-session.yaml end to end on a session that already sits in a ONE cache (here one
// written by `mtm simulate`, read back as a stranger's cache would be): no simulate node, both
// models trained, evaluated and reported, with the spread of per-unit bits/spike in the report.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../core/testing.ts';

const root = join(import.meta.dirname, '..');
const mtm = (...args: string[]) => spawnSync(process.execPath, ['bin/mtm.js', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, CI: 'true' }, timeout: 10 * 60_000 });

test('graphs/real-session.yaml: an existing cache session -> MtM and temporal NDT1 -> evaluate -> report with unit spread', () => {
  const cache = join(tempDir(), 'cache');
  const sim = mtm('simulate', '--out', cache, '--sessions', '1', '--seed', '3', '--set', 'trials=[70,70]', '--set', 'neurons=[30,30]', '--json');
  assert.is(sim.status, 0, sim.stderr);
  const [info] = JSON.parse(sim.stdout);
  const out = join(tempDir(), 'real');
  const sets = [`cacheDir=${cache}`, `session=${info.eid}`, 'epochs=2', 'evaluate.maxLeftOutNeurons=6', 'evaluate.decodingFolds=2'];
  const r = mtm('run', 'graphs/real-session.yaml', '--out', out, ...sets.flatMap((s) => ['--set', s]));
  assert.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
  const graph = readFileSync(join(out, 'graph.resolved.yaml'), 'utf8');
  assert.not.match(graph, /simulate@1/, 'the cache is read as is, nothing is simulated');

  const rep = JSON.parse(readFileSync(join(out, 'report', 'report.json'), 'utf8'));
  assert.equal([...rep.labels], ['mtm', 'temporal']);
  assert.is(rep.sessionIds.length, 1);
  for (const label of ['mtm', 'temporal']) {
    assert.is(rep.training[label].epochs, 2);
    for (const t of ['co_smoothing', 'forward_prediction', 'intra_region', 'inter_region']) {
      const sp = rep.spread[label][t];
      assert.is(sp.quantilesOver, 'units');
      const q = ['q10', 'q25', 'q50', 'q75', 'q90'].map((k) => sp.quantiles[k]);
      assert.ok(q.every(Number.isFinite) && q.every((v, i) => i === 0 || v >= q[i - 1]), `${label} ${t} quantiles ${q}`);
      assert.ok(Math.abs(sp.mean - rep.mean[label][`${t}_bps`]) < 1e-12);
      // Every unit is either scored or counted as excluded.
      assert.is(sp.scored + sp.excluded, 30, `${label} ${t}: ${sp.scored} scored + ${sp.excluded} excluded`);
    }
    // Co-smoothing left out a subset of 6: the others are counted as not scored, not hidden.
    assert.is(rep.spread[label].co_smoothing.unscored, 24);
  }
  const md = readFileSync(join(out, 'report', 'report.md'), 'utf8');
  assert.match(md, /\| task \| model \| units scored \| excluded: no test spikes \| not scored by the task \| mean \| 10 % \| 25 % \| median \| 75 % \| 90 % \|/);
  assert.match(md, /\| co-smoothing \| mtm \| \d+ \| \d+ \| 24 \|/);
});

test.run();
