// Plugin discovery and the container: manifests found, mistakes reported with the file named.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRegistry, loadPlugin } from '../app/di/bootstrap.ts';
import { GraphError } from '../core/graph/diagnostics.ts';
import { tempDir } from '../core/testing.ts';

const demo = join(import.meta.dirname, 'fixtures', 'demo-plugin');

async function rejects(p: Promise<unknown>, re: RegExp) {
  try {
    await p;
  } catch (e) {
    assert.instance(e, GraphError);
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable('expected an error');
}

test('a plugin given by path adds its stages to the built-in ones', async () => {
  const base = await createRegistry({ skipBuiltinPlugins: true });
  const withDemo = await createRegistry({ skipBuiltinPlugins: true, plugins: [demo] });
  assert.is(base.stage('count-source', 1), undefined);
  assert.ok(withDemo.stage('count-source', 1));
  assert.equal(withDemo.plugins.map((p) => p.manifest.name), ['builtin', 'demo']);
  // Naming the same folder twice loads it once.
  const twice = await createRegistry({ skipBuiltinPlugins: true, plugins: [demo, demo] });
  assert.is(twice.plugins.length, 2);
});

test('plugin mistakes are reported with the file named', async () => {
  const d = tempDir();
  const noPkg = join(d, 'nopkg');
  mkdirSync(noPkg);
  await rejects(loadPlugin(noPkg), /package\.json is missing/);

  const noField = join(d, 'nofield');
  mkdirSync(noField);
  writeFileSync(join(noField, 'package.json'), '{"name":"x"}');
  await rejects(loadPlugin(noField), /nofield\/package\.json.*no "mtmPlugin" field/s);

  const badExport = join(d, 'badexport');
  mkdirSync(badExport);
  writeFileSync(join(badExport, 'package.json'), '{"name":"x","type":"module","mtmPlugin":"./p.ts"}');
  writeFileSync(join(badExport, 'p.ts'), 'export const nothing = 1;');
  await rejects(loadPlugin(badExport), /p\.ts.*must export/s);

  const throws = join(d, 'throws');
  mkdirSync(throws);
  writeFileSync(join(throws, 'package.json'), '{"name":"x","type":"module","mtmPlugin":"./p.ts"}');
  writeFileSync(join(throws, 'p.ts'), 'throw new Error("boom at import");');
  await rejects(loadPlugin(throws), /failed to load plugin manifest: boom at import/);

  await rejects(createRegistry({ plugins: [join(d, 'does-not-exist')] }), /no plugin folder or installed package/);
});

test('a stage without param descriptions or defaults is refused at start-up', async () => {
  const d = tempDir();
  const dir = join(d, 'lazy');
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), '{"name":"lazy","type":"module","mtmPlugin":"./p.ts"}');
  const core = join(import.meta.dirname, '..', 'core');
  writeFileSync(
    join(dir, 'p.ts'),
    `import { z } from '${core}/../node_modules/zod/index.js';
import { definePlugin } from '${core}/plugin.ts';
export default definePlugin({ name: 'lazy', version: '1', description: 'x', stages: [{
  id: 'lazy', version: 1, summary: 'x', inputs: {}, outputs: {},
  params: z.object({ n: z.number().describe('a number') }), create: () => () => ({}) }] });`,
  );
  await rejects(createRegistry({ skipBuiltinPlugins: true, plugins: [dir] }), /stage 'lazy': param 'n' has no default/);
});

test.run();
