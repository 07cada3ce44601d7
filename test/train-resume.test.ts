// graphs/train.yaml through the CLI: a training killed with SIGKILL after its first epoch
// checkpoint, rerun into the same run folder, resumes (does not restart) and ends with exactly
// the weights of an uninterrupted run.
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
const sets = [
  `cacheDir=${cacheDir}`,
  `epochs=${EPOCHS}`,
  'sessions=1',
  'trials=[80, 90]',
  'neurons=[20, 26]',
  'batchSize=8',
  'train.config={dModel: 16, layers: 1, heads: 2, mlpDim: 32}',
].flatMap((s) => ['--set', s]);
const args = (out: string) => ['bin/mtm.js', 'run', 'graphs/train.yaml', ...sets, '--out', out];
const env = { ...process.env, CI: 'true' };

function run(out: string) {
  const r = spawnSync(process.execPath, args(out), { cwd: root, encoding: 'utf8', env });
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
async function runKilledAfterFirstCheckpoint(out: string): Promise<void> {
  const child = spawn(process.execPath, args(out), { cwd: root, env, stdio: 'ignore' });
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

test('killed after its first epoch, rerun into the same folder: resumes and ends with the uninterrupted weights', async () => {
  const reference = join(tempDir(), 'reference');
  const r = run(reference);
  assert.is(r.code, 0, r.err);
  assert.is(trainMetrics(reference).length, EPOCHS);

  const dir = join(tempDir(), 'killed');
  await runKilledAfterFirstCheckpoint(dir);
  const killed = JSON.parse(readFileSync(train(dir, 'last', 'training.json'), 'utf8')).state;
  assert.not.ok(killed.finished, 'killed before the end of training');
  assert.ok(killed.epoch >= 1 && killed.epoch < EPOCHS, `checkpoint at epoch ${killed.epoch}`);
  assert.is(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')).status, 'running', 'the killed run never closed its record');

  const again = run(dir);
  assert.is(again.code, 0, again.err);
  const info = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
  assert.is(info.status, 'completed');
  assert.is(info.previousAttempts?.at(-1)?.status, 'running', 'the killed attempt is on record');
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

test.run();
