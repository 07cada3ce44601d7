// A third architecture as a plugin outside plugins/ (test/fixtures/timemix-plugin), written
// against the public contract only: it loads through the plugin loader, trains with MtM and with
// temporal masking, is evaluated and reported by graphs/quickstart.yaml, and nothing in core/,
// stages/ or plugins/ knows its name.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRegistry } from '../app/di/bootstrap.ts';
import { tempDir } from '../core/testing.ts';
import * as tf from '../core/tensor/tf.ts';
import { timemixArchitecture } from './fixtures/timemix-plugin/architecture.ts';

const root = join(import.meta.dirname, '..');
const pluginDir = join(import.meta.dirname, 'fixtures', 'timemix-plugin');

/** The .ts files under dir, at any depth. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f));
}

test('the plugin imports only core/ and itself, and no file in core/, stages/ or plugins/ names it', () => {
  for (const f of files(pluginDir)) {
    for (const m of readFileSync(f, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
      const target = relative(root, resolve(join(f, '..'), m[1]));
      assert.ok(target.startsWith('core/') || target.startsWith(relative(root, pluginDir)), `${relative(root, f)} imports ${target}`);
    }
  }
  for (const dir of ['core', 'stages', 'plugins']) {
    for (const f of files(join(root, dir))) assert.not.match(readFileSync(f, 'utf8'), /timemix/i, `${relative(root, f)} mentions the test architecture`);
  }
});

test('its model: causal outputs ignore later bins, weights by name, sessions added for fine-tuning', () => {
  const sessions = [{ sessionId: 'a', nNeurons: 5, nBins: 8, meanCounts: [0.1, 0.2, 0.3, 0.4, 0.5] }];
  const m = timemixArchitecture.build({ dModel: 4 }, { sessions, seed: 3 });
  const n0 = tf.memory().numTensors;
  const x = tf.randomUniform([2, 8, 5], 0, 3) as tf.Tensor3D;
  const later = tf.tidy(() => tf.concat([tf.slice(x, [0, 0, 0], [2, 5, 5]), tf.zeros([2, 3, 5])], 1) as tf.Tensor3D);
  const y1 = m.forward({ sessionId: 'a', input: x, mode: 'causal', causal: true }, { training: false });
  const y2 = m.forward({ sessionId: 'a', input: later, mode: 'causal', causal: true }, { training: false });
  const head = (y: tf.Tensor) => tf.tidy(() => Array.from(tf.slice(y, [0, 0, 0], [2, 5, 5]).dataSync()));
  assert.equal(head(y1), head(y2), 'bins 0-4 do not see bins 5-7');
  assert.equal(m.capabilities, { promptTokens: false, sessionTokens: false, maxBins: 100 });
  assert.equal(Object.keys(m.weights()).sort(), ['mix', 'sessions.a.in.bias', 'sessions.a.in.weight', 'sessions.a.readout.bias', 'sessions.a.readout.weight']);
  m.addSession({ sessionId: 'b', nNeurons: 3, nBins: 8 });
  assert.is(m.trainableVariables({ sessionId: 'b' }).length, 4);
  assert.throws(() => m.addSession({ sessionId: 'b', nNeurons: 3, nBins: 8 }), /timemix: session b already has weights/);
  tf.dispose([x, later, y1, y2]);
  assert.is(tf.memory().numTensors, n0 + 4, "only the new session's four variables remain");
  m.dispose();
});

test('the quickstart trains, evaluates and reports it with MtM and temporal masking, loaded with --plugin', async () => {
  const registry = await createRegistry({ plugins: [pluginDir] });
  assert.ok(registry.architectures.has('timemix'));
  const out = join(tempDir(), 'run');
  const sets = ['mtm.architecture=timemix', 'temporal.architecture=timemix', 'model={dModel: 8}', 'epochs=2', 'sessions=1', 'trials=[60, 60]', 'neurons=[20, 20]', `cacheDir=${tempDir()}`, 'evaluate.decoding=false'];
  const r = spawnSync(process.execPath, ['bin/mtm.js', 'run', 'graphs/quickstart.yaml', '--plugin', pluginDir, '--out', out, ...sets.flatMap((s) => ['--set', s])], { cwd: root, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  assert.is(r.status, 0, r.stderr.slice(-3000));
  const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.node === 'evaluate' && m.label);
  assert.equal(rows.map((x) => x.label).sort(), ['mtm', 'temporal']);
  for (const x of rows) for (const k of ['co_smoothing_bps', 'forward_prediction_bps']) assert.ok(Number.isFinite(x[k]), `${x.label} ${k}: ${x[k]}`);
  const report = readFileSync(join(out, 'report', 'report.md'), 'utf8');
  assert.match(report, /timemix/);
});

test.run();
