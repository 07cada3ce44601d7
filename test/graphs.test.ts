// Every graph in graphs/ is validated and smoke-run (with small settings) exactly as a user runs it.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../core/testing.ts';
import { SMOKE_SETTINGS } from './graph-smoke-settings.ts';

const root = join(import.meta.dirname, '..');
const graphs = readdirSync(join(root, 'graphs')).filter((f) => f.endsWith('.yaml')).sort();

function mtm(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/mtm.js', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, CI: 'true' }, timeout: 10 * 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('graphs/ is not empty and every graph has smoke settings', () => {
  assert.ok(graphs.length > 0);
  for (const g of graphs) assert.ok(Object.hasOwn(SMOKE_SETTINGS, g), `add smoke settings for graphs/${g} to test/graph-smoke-settings.ts`);
});

test('every graph validates', () => {
  const r = mtm('validate', ...graphs.map((g) => join('graphs', g)));
  assert.is(r.code, 0, r.err);
});

for (const g of graphs) {
  const settings = SMOKE_SETTINGS[g];
  if (settings && !Array.isArray(settings)) {
    test(`graphs/${g} is run end to end by ${settings.runBy}`, () => {
      assert.match(readFileSync(join(root, settings.runBy), 'utf8'), new RegExp(`graphs/${g.replace('.', '\\.')}`));
    });
    continue;
  }
  test(`smoke run: graphs/${g}`, () => {
    const out = join(tempDir(), g.replace(/\.yaml$/, ''));
    const work = tempDir();
    const sets = ((settings as string[] | undefined) ?? []).flatMap((s) => ['--set', s.replaceAll('$TMP', work)]);
    const r = mtm('run', join('graphs', g), '--out', out, ...sets);
    assert.is(r.code, 0, `${r.out}\n${r.err}`);
    const info = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    assert.is(info.status, 'completed');
    for (const [node, stats] of Object.entries(info.nodes as Record<string, { emitted: Record<string, number> }>)) {
      const total = Object.values(stats.emitted).reduce((a, b) => a + b, 0);
      assert.ok(total > 0 || Object.keys(stats.emitted).length === 0, `node ${node} emitted nothing`);
    }
  });
}

test.run();
