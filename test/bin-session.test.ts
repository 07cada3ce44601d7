// The data path end to end: `mtm simulate`, then graphs/bin-session.yaml on the result, gives
// counts equal to an independent count of the same spikes read straight from the cache.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../core/testing.ts';
import { readNpy } from '../core/io/npy.ts';
import { readParquet } from '../core/io/parquet.ts';
import { loadTrials } from '../core/alf/trials.ts';

const root = join(import.meta.dirname, '..');
const mtm = (...args: string[]) => spawnSync(process.execPath, ['bin/mtm.js', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, CI: 'true' } });

test('simulate -> bin-session graph -> counts equal a naive count of the raw spikes', async () => {
  const cache = join(tempDir(), 'cache');
  const sim = mtm('simulate', '--out', cache, '--sessions', '1', '--seed', '5', '--set', 'trials=[70,90]', '--set', 'neurons=[30,50]', '--json');
  assert.is(sim.status, 0, sim.stderr);
  const [info] = JSON.parse(sim.stdout);
  const out = join(tempDir(), 'binned');
  const run = mtm('run', 'graphs/bin-session.yaml', '--out', join(tempDir(), 'run'), '--set', `session=${info.eid}`, '--set', `cacheDir=${cache}`, '--set', `out=${out}`);
  assert.is(run.status, 0, run.stderr);

  const folder = join(out, readdirSync(out)[0]);
  const counts = await readNpy(join(folder, 'counts.npy'));
  const [nTrials, nBins, nNeurons] = counts.shape;
  assert.is(counts.dtype, '<i4');
  const trials = await readParquet(join(folder, 'trials.parquet'));
  const neurons = await readParquet(join(folder, 'neurons.parquet'));
  assert.is(trials.numRows, nTrials);
  assert.is(neurons.numRows, nNeurons);
  assert.equal([...new Set(trials.columns.split)].sort(), ['test', 'train', 'val']);

  // Independent count: every probe's raw spikes, 20 ms bins over [-0.5, 1.5) s around stimOn.
  const sessionDir = info.path;
  const stimOn = (await loadTrials(join(sessionDir, 'alf'))).stimOn_times;
  const expected = new Int32Array(nTrials * nBins * nNeurons);
  const column = new Map<string, number>();
  neurons.columns.probe.forEach((p, j) => column.set(`${p}/${neurons.columns.clusterId[j]}`, j));
  for (const probe of readdirSync(join(sessionDir, 'alf')).filter((d) => d.startsWith('probe'))) {
    const dir = join(sessionDir, 'alf', probe, readdirSync(join(sessionDir, 'alf', probe))[0]);
    const times = (await readNpy(join(dir, 'spikes.times.npy'))).data as Float64Array;
    const clusters = (await readNpy(join(dir, 'spikes.clusters.npy'))).data as ArrayLike<number>;
    trials.columns.trialIndex.forEach((ti, k) => {
      const t0 = stimOn[ti as number] - 0.5;
      for (let s = 0; s < times.length; s++) {
        const bin = Math.floor((times[s] - t0) / 0.02);
        if (bin < 0 || bin >= nBins || times[s] - t0 >= 2.0) continue;
        const j = column.get(`${probe}/${clusters[s]}`);
        if (j !== undefined) expected[(k * nBins + bin) * nNeurons + j]++;
      }
    });
  }
  const got = counts.data as Int32Array;
  let diff = 0;
  for (let i = 0; i < got.length; i++) if (got[i] !== expected[i]) diff++;
  assert.is(diff, 0, `${diff} of ${got.length} counts differ`);
  assert.ok(expected.reduce((a, b) => a + b, 0) > 1000, 'the session has spikes in its windows');
  assert.match(readFileSync(join(folder, 'meta.json'), 'utf8'), /"binSizeMs": 20/);
});

test.run();
