#!/usr/bin/env node
// Builds mtm-flow's native kernels (native/src/kernels.cc -> native/build/mtm_kernels.node) at
// install time. Never fails the install: when no C++ compiler or no Node headers are found, or
// the build or its load check fails, it says so and mtm-flow runs on tfjs's own kernels.
// The addon needs no BLAS: its own blocked GEMM (AVX2+FMA when the CPU has it) is the default, as
// fast as OpenBLAS on one core here; MTM_BLAS=openblas opens Debian's libopenblas0 at run time
// instead. So a machine without libopenblas-dev builds and runs exactly the same code.
//
// Usage: node native/build.mjs [--force] [--quiet]
//   MTM_NATIVE_BUILD=skip   skip the build (the project then uses tfjs's kernels)
//   CXX=...                 compiler to use (default: c++, g++, then clang++)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src', 'kernels.cc');
const outDir = join(here, 'build');
const out = join(outDir, 'mtm_kernels.node');
const args = new Set(process.argv.slice(2));
const quiet = args.has('--quiet');

const say = (msg) => console.log(`mtm-flow native kernels: ${msg}`);

function finish(msg) {
  say(msg);
  process.exit(0);
}

function headerDirs() {
  const dirs = [];
  if (process.env.npm_config_nodedir) dirs.push(join(process.env.npm_config_nodedir, 'include', 'node'));
  dirs.push(join(dirname(process.execPath), '..', 'include', 'node'));
  dirs.push('/usr/include/node', '/usr/local/include/node');
  return dirs.filter((d) => existsSync(join(d, 'node_api.h')));
}

const compilers = process.env.CXX ? [process.env.CXX] : ['c++', 'g++', 'clang++'];

function findCompiler() {
  for (const name of compilers) {
    const r = spawnSync(name, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return { name, version: r.stdout.split('\n')[0] };
  }
  return undefined;
}

function newestSourceMs() {
  return Math.max(...readdirSync(join(here, 'src')).map((f) => statSync(join(here, 'src', f)).mtimeMs), statSync(fileURLToPath(import.meta.url)).mtimeMs);
}

if (process.env.MTM_NATIVE_BUILD === 'skip') finish('skipped (MTM_NATIVE_BUILD=skip); tfjs kernels will be used');
if (process.platform === 'win32') finish('not built on Windows (no build recipe); tfjs kernels will be used');
if (!args.has('--force') && existsSync(out) && statSync(out).mtimeMs >= newestSourceMs()) {
  if (!quiet) say(`up to date (${out})`);
  process.exit(0);
}

const include = headerDirs();
if (!include.length) finish('Node headers (node_api.h) not found; not built, tfjs kernels will be used');
const cxx = findCompiler();
if (!cxx) finish(`no C++ compiler found (tried ${compilers.join(', ')}); not built, tfjs kernels will be used`);

mkdirSync(outDir, { recursive: true });
const tmp = join(outDir, `mtm_kernels.${process.pid}.tmp.node`);
const flags = ['-O3', '-std=c++17', '-fPIC', '-shared', '-pthread', '-fvisibility=hidden', '-Wno-psabi', '-fno-math-errno', ...include.map((d) => `-I${d}`), src, '-o', tmp];
if (process.platform === 'darwin') flags.push('-undefined', 'dynamic_lookup');
else flags.push('-ldl');
say(`compiling with ${cxx.version}`);
const t0 = Date.now();
const built = spawnSync(cxx.name, flags, { encoding: 'utf8' });
if (built.status !== 0) {
  rmSync(tmp, { force: true });
  console.log((built.stderr || built.error?.message || '').split('\n').slice(0, 20).join('\n'));
  finish(`compilation failed; not built, tfjs kernels will be used`);
}

// A library that compiles but cannot load (wrong ABI, missing symbol) must not be left in place.
const check = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(tmp)}); console.log(JSON.stringify(m.info()));`], { encoding: 'utf8' });
if (check.status !== 0) {
  rmSync(tmp, { force: true });
  console.log((check.stderr || '').split('\n').slice(0, 10).join('\n'));
  finish('built but failed to load; removed, tfjs kernels will be used');
}
renameSync(tmp, out);
let info = {};
try {
  info = JSON.parse(check.stdout.trim().split('\n').pop());
} catch {
  /* the load check printed something else; the addon still loaded */
}
const gemm = info.gemm === 'openblas' ? `GEMM from OpenBLAS (${info.blasPath}, MTM_BLAS)` : `built-in GEMM (${info.isa ?? '?'})`;
finish(`built ${out} in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${gemm}, ${info.threads ?? '?'} threads; loaded by core/tensor/kernels`);
