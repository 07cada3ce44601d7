// The `mtm` command line as a user runs it: exit codes, located errors, no stack traces,
// plugins from a path, run directories, Ctrl-C.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from 'yaml';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { tempDir } from '../core/testing.ts';

const root = join(import.meta.dirname, '..');
const graphs = join('test', 'fixtures', 'graphs');
const demo = join('test', 'fixtures', 'demo-plugin');

function mtm(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/mtm.js', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const noStack = (s: string) => assert.not.match(s, /\n\s+at .+:\d+:\d+/, `stack trace printed:\n${s}`);

test('validate: each broken graph reports located problems, exit 2, no stack trace', () => {
  const cases: [string, RegExp][] = [
    ['unknown-stage.yaml', /unknown-stage\.yaml:4:12  nodes\.count\.stage  unknown stage 'count-sorce' \(did you mean 'count-source'\?\)/],
    ['misspelt-param.yaml', /misspelt-param\.yaml:7:7  nodes\.count\.params\.delyMs  unknown param 'delyMs'/],
    ['wrong-type-edge.yaml', /wrong-type-edge\.yaml:8:14  nodes\.files\.in\.files  type mismatch/],
    ['cycle.yaml', /cycle\.yaml:\d+:\d+  nodes\.a  cycle: a -> b -> c -> a/],
    ['yaml-syntax.yaml', /yaml-syntax\.yaml:5:\d+  YAML syntax: /],
  ];
  for (const [file, expected] of cases) {
    const r = mtm('validate', join(graphs, file));
    assert.is(r.code, 2, file);
    assert.match(r.err, expected);
    noStack(r.err);
  }
});

test('validate: all problems of several files at once; a good file says ok', () => {
  const r = mtm('validate', join(graphs, 'many-problems.yaml'), join(graphs, 'good.yaml'));
  assert.is(r.code, 2);
  assert.match(r.out, /ok  test\/fixtures\/graphs\/good\.yaml  \(4 nodes\)/);
  assert.match(r.err, /8 problems in test\/fixtures\/graphs\/many-problems\.yaml/);
  assert.is(r.err.split('\n').filter((l) => l.startsWith(join(graphs, 'many-problems.yaml') + ':')).length, 8);
  assert.is(mtm('validate', join(graphs, 'good.yaml')).code, 0);
});

test('bad flags, missing files and unknown --set keys exit 2 without a stack', () => {
  for (const args of [['frob'], ['run'], ['run', 'nope.yaml'], ['run', join(graphs, 'good.yaml'), '--set', 'cuont=3'], ['run', join(graphs, 'good.yaml'), '--set', 'novalue'], ['stages', '--plugin', 'no/such/plugin']]) {
    const r = mtm(...args);
    assert.is(r.code, 2, args.join(' '));
    noStack(r.err);
  }
  assert.match(mtm('run', join(graphs, 'good.yaml'), '--set', 'cuont=3').err, /did you mean 'count'/);
});

test('stages and schema reflect a plugin loaded from the command line', () => {
  const without = mtm('stages');
  assert.is(without.code, 0);
  assert.not.match(without.out, /count-source@1/);
  const withPlugin = mtm('stages', '--plugin', demo);
  assert.is(withPlugin.code, 0);
  assert.match(withPlugin.out, /count-source@1  Emits `count` numbered metrics items/);
  assert.match(withPlugin.out, /param delayMs: number = 0  pause before each item/);
  const json = JSON.parse(mtm('stages', 'slow-double', '--plugin', demo, '--json').out);
  assert.equal(json.stages[0].params.failOn, { type: 'integer', default: -1, description: 'throw on the item with this i (-1: never)' });

  const schemaOut = mtm('schema', '--plugin', demo);
  assert.is(schemaOut.code, 0);
  const schema = JSON.parse(schemaOut.out);
  const titles = schema.properties.nodes.additionalProperties.oneOf.map((v: any) => v.title);
  assert.ok(titles.includes('count-source@1') && titles.includes('write-json@1'));
  assert.not.ok(JSON.parse(mtm('schema').out).properties.nodes.additionalProperties.oneOf.some((v: any) => v.title === 'count-source@1'));
  // The schema accepts the good graph and rejects broken ones.
  const validate = new Ajv2020({ strict: false }).compile(schema);
  assert.ok(validate(parse(readFileSync(join(root, graphs, 'good.yaml'), 'utf8'))), JSON.stringify(validate.errors));
  for (const bad of ['unknown-stage.yaml', 'misspelt-param.yaml']) assert.not.ok(validate(parse(readFileSync(join(root, graphs, bad), 'utf8'))), bad);
});

test('run: a run directory with resolved graph, run.json, logs, metrics and artifacts; re-running the resolved graph repeats it', () => {
  const out = join(tempDir(), 'run1');
  const r = mtm('run', join(graphs, 'good.yaml'), '--out', out, '--set', 'count=3');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`run directory: ${out}`));
  const info = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
  assert.is(info.status, 'completed');
  assert.is(info.seed, 7);
  assert.is(info.stages.double, 'slow-double@1');
  assert.ok(info.versions['mtm-flow']);
  assert.ok(readFileSync(join(out, 'logs.jsonl'), 'utf8').trim().split('\n').every((l) => typeof JSON.parse(l).msg === 'string'));
  assert.equal(readdirSync(join(out, 'artifacts', 'write')).sort(), ['all.json', 's0.json', 's1.json', 's2.json']);

  const again = join(tempDir(), 'run2');
  assert.is(mtm('run', join(out, 'graph.resolved.yaml'), '--out', again).code, 0);
  for (const f of ['all.json', 's0.json', 's1.json', 's2.json']) {
    assert.is(readFileSync(join(again, 'artifacts', 'write', f), 'utf8'), readFileSync(join(out, 'artifacts', 'write', f), 'utf8'));
  }
});

test('run: a failing stage exits 1 and run.json names the node and item', () => {
  const out = join(tempDir(), 'fail');
  const r = mtm('run', join(graphs, 'good.yaml'), '--out', out, '--set', 'double.failOn=1');
  assert.is(r.code, 1);
  assert.match(r.err, /run failed: node 'double' \(slow-double@1\) on metrics s1: asked to fail on i=1/);
  noStack(r.err);
  const info = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
  assert.is(info.status, 'failed');
  assert.equal({ node: info.error.node, item: info.error.item }, { node: 'double', item: 'metrics s1' });
  assert.match(readFileSync(join(out, 'logs.jsonl'), 'utf8'), /"stack":/, 'the stack goes to the log file');
});

test('run: SIGINT finishes the current item and leaves a consistent run directory', async () => {
  const out = join(tempDir(), 'sigint');
  const child = spawn(process.execPath, ['bin/mtm.js', 'run', join(graphs, 'good.yaml'), '--out', out, '--set', 'count=500', '--set', 'delay=20'], { cwd: root, env: { ...process.env, CI: 'true' } });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  const code: number = await new Promise((resolve) => {
    const poll = setInterval(() => {
      // Interrupt once a few items went through.
      if (existsSync(join(out, 'artifacts', 'write', 's3.json'))) {
        clearInterval(poll);
        child.kill('SIGINT');
      }
    }, 10);
    child.on('close', (c) => {
      clearInterval(poll);
      resolve(c ?? -1);
    });
  });
  assert.is(code, 130, stdout);
  const info = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
  assert.is(info.status, 'interrupted');
  const files = readdirSync(join(out, 'artifacts', 'write'));
  const n = files.length - 1; // minus all.json
  assert.ok(n >= 4 && n < 500, `wrote ${n}`);
  assert.is(info.nodes.double.emitted.items, n);
  const total = JSON.parse(readFileSync(join(out, 'artifacts', 'write', 'all.json'), 'utf8'));
  assert.is(total.values.n, n, 'the sum covers exactly the finished items');
});

test.run();
