// graphs/train.yaml trains both architectures with MtM and with temporal masking, and saves a
// model that loads back (the resume case is in train-resume.test.ts).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../core/testing.ts';
import { loadModel } from '../core/io/model-files.ts';

const root = join(import.meta.dirname, '..');
const cacheDir = tempDir('mtm-train-cache-');
const tiny = ['epochs=2', 'sessions=1', 'trials=[70, 80]', 'neurons=[20, 26]', 'batchSize=8', `cacheDir=${cacheDir}`];

for (const [architecture, mode, config] of [
  ['ndt1', 'temporal', '{dModel: 16, layers: 1, heads: 2, mlpDim: 32}'],
  ['ndt2', 'mtm', '{dModel: 16, layers: 1, heads: 2, mlpDim: 32}'],
  ['ndt2', 'temporal', '{dModel: 16, layers: 1, heads: 2, mlpDim: 32}'],
]) {
  test(`train.yaml trains ${architecture} with ${mode} masking and saves a loadable model`, async () => {
    const out = join(tempDir(), 'run');
    const sets = [...tiny, `architecture=${architecture}`, `mode=${mode}`, `train.config=${config}`].flatMap((s) => ['--set', s]);
    const r = spawnSync(process.execPath, ['bin/mtm.js', 'run', 'graphs/train.yaml', '--out', out, ...sets], { cwd: root, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
    assert.is(r.status, 0, r.stderr);
    const info = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    assert.is(info.status, 'completed');
    const epochs = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.node === 'train' && 'trainLoss' in m);
    assert.is(epochs.length, 2);
    for (const e of epochs) assert.ok(Number.isFinite(e.trainLoss) && Number.isFinite(e.valLoss));
    const saved = await loadModel(join(out, 'artifacts', 'train', 'best'));
    assert.is((saved.topology as { architecture: string }).architecture, architecture);
    assert.ok(Object.keys(saved.weights).length > 4);
  });
}

test.run();
