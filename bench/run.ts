// `npm run bench [name...]`: runs each benchmark script in its own process, one after another
// (timings on a 2-core machine are only meaningful without neighbours), and lists the JSON
// results they wrote under bench/results/.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const here = import.meta.dirname;
const only = process.argv.slice(2);
// The benchmarks, each writing bench/results/<name>.json; other files here are their helpers.
const ALL = ['binning', 'training', 'streaming', 'realism', 'science', 'recipe', 'quickstart', 'pretraining'];
const benches = ALL.filter((name) => existsSync(join(here, `${name}.ts`))).filter((name) => !only.length || only.includes(name));

if (!benches.length) {
  console.error(`no benchmark matches ${only.join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const name of benches) {
  console.log(`\n=== bench ${name}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, `${name}.ts`)], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`bench ${name} failed (exit ${r.status})`);
  }
  const result = join(here, 'results', `${name}.json`);
  if (existsSync(result)) console.log(`results: ${result}`);
}
process.exitCode = failed ? 1 : 0;
