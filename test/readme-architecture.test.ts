// The README's "Writing a plugin" and "Writing an architecture" examples are real code: the
// architecture type-checked against core/ with the project's tsc settings, built, run forward,
// trained one step and extended by a session; the plugin's package.json and manifest, with it,
// loaded by the plugin loader as a folder.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ArchitectureContribution } from '../core/architecture.ts';
import * as tf from '../core/tensor/tf.ts';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createRegistry } from '../app/di/bootstrap.ts';
import { root, sectionBlocks, writeExamples } from './readme-blocks.ts';

const blocks = sectionBlocks('### Writing an architecture');
const { dir, files } = writeExamples(blocks);

test('the section has one example and it type-checks', () => {
  assert.is(blocks.length, 1);
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir, '--noEmit'], { encoding: 'utf8' });
  assert.is(tsc.status, 0, tsc.stdout + tsc.stderr);
});

test('the example architecture builds, predicts, trains one step and takes a new session', async () => {
  const arch = (await import(pathToFileURL(files[0]).href)).perBinArchitecture as ArchitectureContribution;
  assert.is(arch.name, 'perbin');
  const m = arch.build({ dModel: 8 }, { sessions: [{ sessionId: 'a', nNeurons: 5, nBins: 4 }], seed: 1 });
  assert.equal(m.capabilities.promptTokens, false);
  const x = tf.ones([2, 4, 5]) as tf.Tensor3D;
  const y = m.forward({ sessionId: 'a', input: x, mode: 'temporal', causal: false }, { training: true });
  assert.equal(y.shape, [2, 4, 5]);
  const opt = tf.train.adam(0.01);
  const before = Array.from(m.weights()['shared.weight'].dataSync());
  opt.minimize(() => tf.mean(tf.sub(tf.exp(m.forward({ sessionId: 'a', input: x, mode: 'temporal', causal: false }, { training: true })), tf.mul(x, m.forward({ sessionId: 'a', input: x, mode: 'temporal', causal: false }, { training: true })))) as tf.Scalar, false, m.trainableVariables());
  assert.not.equal(Array.from(m.weights()['shared.weight'].dataSync()), before, 'one step moves the shared weights');
  m.addSession({ sessionId: 'b', nNeurons: 3, nBins: 4 });
  assert.is(m.trainableVariables({ sessionId: 'b' }).length, 4);
  assert.throws(() => m.addSession({ sessionId: 'b', nNeurons: 3, nBins: 4 }), /perbin: session b already has weights/);
  tf.dispose([x, y]);
  opt.dispose();
  m.dispose();
});

test('the plugin example, with the architecture, loads as a plugin folder and contributes perbin', async () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Writing a plugin\n'), readme.indexOf('\n### Writing an architecture\n'));
  const pkg = /```json\n([\s\S]*?)```/.exec(section)![1];
  const [manifest] = sectionBlocks('## Writing a plugin').filter((b) => b.includes('definePlugin('));
  const { dir: pdir, files: [manifestFile] } = writeExamples([manifest]);
  writeFileSync(join(pdir, 'examples', 'package.json'), pkg);
  copyFileSync(manifestFile, join(pdir, 'examples', 'plugin.ts'));
  copyFileSync(files[0], join(pdir, 'examples', 'architecture.ts'));
  const registry = await createRegistry({ plugins: [join(pdir, 'examples')] });
  assert.ok(registry.architectures.has('perbin'));
  assert.ok(registry.plugins.some((p) => p.manifest.name === 'perbin'));
});

test.run();
