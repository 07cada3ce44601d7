// graphs/train.yaml through the CLI: a training killed with SIGKILL after its first epoch
// checkpoint, rerun into the same run folder, resumes (does not restart) and ends with exactly
// the weights of an uninterrupted run — for each built-in architecture, since each must seed its
// dropout from the trainer's per-step ForwardOptions.seed.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../core/testing.ts';

const root = join(import.meta.dirname, '..');
const cacheDir = tempDir('mtm-train-cache-');
const EPOCHS = 6;
// Tiny everything: one small session, a one-layer model; the simulated cache is shared by the runs.
const common = [
  `cacheDir=${cacheDir}`,
  `epochs=${EPOCHS}`,
  'sessions=1',
  'trials=[80, 90]',
  'neurons=[20, 26]',
  'batchSize=8',
];
const cases: Record<string, string[]> = {
  ndt1: ['train.config={dModel: 16, layers: 1, heads: 2, mlpDim: 32}'],
  // 40 ms bins and 16-neuron patches: 50 bins x 2 patches = 100 tokens, several patches per bin.
  ndt2: ['architecture=ndt2', 'bin.binSizeMs=40', 'train.config={patchSize: 16, dModel: 16, layers: 1, heads: 2, mlpDim: 32}'],
};
const args = (arch: string, out: string) => ['bin/mtm.js', 'run', 'graphs/train.yaml', ...[...common, ...cases[arch]].flatMap((s) => ['--set', s]), '--out', out];
const env = { ...process.env, CI: 'true' };

function run(arch: string, out: string) {
  const r = spawnSync(process.execPath, args(arch, out), { cwd: root, encoding: 'utf8', env });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const train = (dir: string, ...p: string[]) => join(dir, 'artifacts', 'train', ...p);
const trainMetrics = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((m) => m.node === 'train');

/** Starts a run and SIGKILLs it as soon as its first training checkpoint exists. */
async function runKilledAfterFirstCheckpoint(arch: string, out: string): Promise<void> {
  const child = spawn(process.execPath, args(arch, out), { cwd: root, env, stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((res) => child.on('exit', (_code, signal) => res(signal)));
  const marker = train(out, 'last', 'training.json');
  const started = Date.now();
  while (!existsSync(marker)) {
    if (child.exitCode !== null) throw new Error('the run ended before writing a checkpoint');
    if (Date.now() - started > 120_000) {
      child.kill('SIGKILL');
      throw new Error('no checkpoint after 120 s');
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill('SIGKILL');
  assert.is(await exited, 'SIGKILL');
}

for (const arch of Object.keys(cases)) {
  test(`${arch}: killed after its first epoch, rerun into the same folder: resumes and ends with the uninterrupted weights`, async () => {
    const reference = join(tempDir(), `${arch}-reference`);
    const r = run(arch, reference);
    assert.is(r.code, 0, r.err);
    assert.is(trainMetrics(reference).length, EPOCHS);

    const dir = join(tempDir(), `${arch}-killed`);
    await runKilledAfterFirstCheckpoint(arch, dir);
    const killed = JSON.parse(readFileSync(train(dir, 'last', 'training.json'), 'utf8')).state;
    assert.not.ok(killed.finished, 'killed before the end of training');
    assert.ok(killed.epoch >= 1 && killed.epoch < EPOCHS, `checkpoint at epoch ${killed.epoch}`);
    assert.is(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')).status, 'running', 'the killed run never closed its record');

    const again = run(arch, dir);
    assert.is(again.code, 0, again.err);
    const info = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
    assert.is(info.status, 'completed');
    assert.is(info.previousAttempts?.at(-1)?.status, 'killed', 'the killed attempt is on record as killed, not running');
    const logs = readFileSync(join(dir, 'logs.jsonl'), 'utf8');
    assert.match(logs, new RegExp(`resuming from .*last: epoch ${killed.epoch + 1}`));
    // Resumed, not restarted: no epoch was trained (and logged) twice.
    const epochs = trainMetrics(dir).map((m) => m.epoch);
    assert.equal(epochs, [...new Set(epochs)].sort((a, b) => a - b), `epochs logged: ${epochs}`);
    assert.is(epochs.at(-1), EPOCHS);
    assert.ok(epochs.length < 2 * EPOCHS);

    for (const f of [['last', 'weights.bin'], ['last', 'optimizer.bin'], ['best', 'weights.bin']]) {
      assert.ok(readFileSync(train(dir, ...f)).equals(readFileSync(train(reference, ...f))), `${f.join('/')} equals the uninterrupted run's`);
    }
    const state = JSON.parse(readFileSync(train(dir, 'last', 'training.json'), 'utf8')).state;
    const refState = JSON.parse(readFileSync(train(reference, 'last', 'training.json'), 'utf8')).state;
    assert.equal(
      state.history.map((h: { trainLoss: number; valLoss: number }) => [h.trainLoss, h.valLoss]),
      refState.history.map((h: { trainLoss: number; valLoss: number }) => [h.trainLoss, h.valLoss]),
    );
  });
}

test.run();
