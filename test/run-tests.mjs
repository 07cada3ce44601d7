#!/usr/bin/env node
// Runs every *.test.ts under app/, core/, stages/, plugins/, test/ and bench/ with uvu, one process per file
// (no state leaks between files; two at a time on a 2-core machine), then prints uvu's counts
// summed, and a closing `N passed, N failed` line that CI reads.
// Usage: node test/run-tests.mjs [substring filter...]
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const filters = process.argv.slice(2);

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const files = ['app', 'core', 'stages', 'plugins', 'test', 'bench']
  .flatMap((d) => { try { return find(join(root, d)); } catch { return []; } })
  .map((f) => relative(root, f))
  .filter((f) => !filters.length || filters.some((s) => f.includes(s)))
  .sort();

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: root, env: { ...process.env, FORCE_COLOR: '0' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => {
      const text = strip(out);
      const num = (label) => Number((text.match(new RegExp(`${label}:\\s+(\\d+)`)) ?? [])[1] ?? NaN);
      const total = num('Total'), passed = num('Passed'), skipped = num('Skipped');
      let failed = Number.isFinite(total) ? total - passed - (skipped || 0) : 1;
      if (code !== 0 && failed === 0) failed = 1; // crashed after its tests, or exited badly
      resolve({ file, code, text, total: Number.isFinite(total) ? total : 0, passed: Number.isFinite(passed) ? passed : 0, skipped: skipped || 0, failed, ms: Date.now() - started });
    });
  });
}

const results = [];
let next = 0;
const workers = Math.max(1, Math.min(Number(process.env.TEST_JOBS) || cpus().length, 2));
await Promise.all(
  Array.from({ length: workers }, async () => {
    while (next < files.length) {
      const f = files[next++];
      const r = await runFile(f);
      results.push(r);
      const mark = r.failed ? 'FAIL' : 'ok  ';
      process.stdout.write(`${mark} ${f}  ${r.passed}/${r.total}  ${(r.ms / 1000).toFixed(1)}s\n`);
      if (r.failed) process.stdout.write(r.text.split('\n').map((l) => `     | ${l}`).join('\n') + '\n');
    }
  }),
);

const sum = (k) => results.reduce((s, r) => s + r[k], 0);
const passed = sum('passed'), failed = sum('failed'), skipped = sum('skipped');
process.stdout.write(`\n${files.length} test files, ${sum('total')} tests\n`);
process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exitCode = failed || !files.length ? 1 : 0;
