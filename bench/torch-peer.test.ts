import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../core/testing.ts';
import { BENCH_SIZES, choosePython, DEFAULT_TORCH_CONFIG, machineInfo, parsePeerOutput, peerArgs, peerEnv, peerVariants, runTorchPeer, SYSTEM_PYTHON } from './torch-peer.ts';

const quiet = () => {};

/** A stand-in interpreter: answers the torch import check, then echoes its args and thread env as a result line. */
function fakePython(body: string): string {
  const p = join(tempDir('mtm-peer-'), 'python');
  writeFileSync(p, `#!/bin/sh\nif [ "$1" = "-c" ]; then exit 0; fi\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

test('peerArgs passes every size flag the script takes', () => {
  assert.equal(Object.keys(BENCH_SIZES), ['quickstart', 'small', 'reference']);
  const args = peerArgs({ ...DEFAULT_TORCH_CONFIG, ...BENCH_SIZES.reference, steps: 3 });
  const flag = (name: string) => args[args.indexOf(name) + 1];
  assert.is(flag('--d'), '512');
  assert.is(flag('--layers'), '5');
  assert.is(flag('--heads'), '8');
  assert.is(flag('--mlp'), '1024');
  assert.is(flag('--neurons'), '300');
  assert.is(flag('--bins'), '100');
  assert.is(flag('--batch'), '16');
  assert.is(flag('--steps'), '3');
  assert.is(flag('--dropout'), '0.1');
  assert.throws(() => peerArgs({ ...DEFAULT_TORCH_CONFIG, d: Number.NaN }), /d must be a number/);
});

test('peerEnv pins BLAS and torch threads and drops foreign Python settings', () => {
  const env = peerEnv({ threads: 1, blasThreads: 2 }, { PATH: '/bin', PYTHONPATH: '/x', PYTHONHOME: '/y', OPENBLAS_NUM_THREADS: '8' });
  assert.is(env.OPENBLAS_NUM_THREADS, '2');
  assert.is(env.OMP_NUM_THREADS, '1');
  assert.is(env.PYTHONPATH, undefined);
  assert.is(env.PYTHONHOME, undefined);
  assert.is(env.PATH, '/bin');
});

test('parsePeerOutput takes the last result line and ignores other output', () => {
  const out = 'warming up\n{"note": 1}\n{"trialsPerS": 5, "msPerStep": 3200, "params": 7}\n{not json\n';
  const r = parsePeerOutput(out);
  assert.is(r.trialsPerS, 5);
  assert.is(r.params, 7);
  assert.throws(() => parsePeerOutput('Traceback ...\n{"note": 1}\n'), /no result line/);
});

test('runTorchPeer spawns the interpreter with the config and its thread environment', async () => {
  const py = fakePython(
    'echo "loading"; echo "{\\"trialsPerS\\": 42, \\"msPerStep\\": 380.9, \\"params\\": 1, \\"args\\": \\"$*\\", ' +
      '\\"blas\\": {\\"openblas\\": true, \\"loadedLibraries\\": []}, \\"threads\\": {\\"openblasEnv\\": \\"$OPENBLAS_NUM_THREADS\\"}}"',
  );
  const r = await runTorchPeer({ d: 96, steps: 4, blasThreads: 3 }, { python: py, install: false, log: quiet });
  assert.is(r.trialsPerS, 42);
  assert.is(r.threads.openblasEnv, '3');
  const args = (r as unknown as { args: string }).args;
  assert.match(args, /torch_ndt1\.py/);
  assert.match(args, /--d 96 /);
  assert.match(args, /--steps 4 /);
});

test('runTorchPeer reports a failing peer with its stderr', async () => {
  const py = fakePython('echo "RuntimeError: out of memory" >&2; exit 3');
  try {
    await runTorchPeer({ steps: 1 }, { python: py, install: false, log: quiet });
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.match((e as Error).message, /exited with 3/);
    assert.match((e as Error).message, /out of memory/);
  }
});

test('without torch and with installing off, the error says what to install', async () => {
  try {
    await runTorchPeer({ steps: 1 }, { python: join(tempDir(), 'no-such-python'), install: false, log: quiet });
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.match((e as Error).message, /cannot import torch/);
    assert.match((e as Error).message, /python3-torch/);
  }
});

test('choosePython prefers a venv python that imports torch, else Debian\'s; peerVariants tries 1 thread and every core', () => {
  const venv = fakePython('exit 0');
  assert.equal(choosePython(undefined, venv), { python: venv, source: 'bench/.venv' });
  assert.equal(choosePython(undefined, join(tempDir(), 'missing', 'python')), { python: SYSTEM_PYTHON, source: 'debian' });
  assert.equal(choosePython('/x/python'), { python: '/x/python', source: 'given' });
  assert.equal(peerVariants('bench/.venv', 2, 2), [
    { threads: 1, blasThreads: 1, attention: 'manual' }, { threads: 1, blasThreads: 1, attention: 'sdpa' },
    { threads: 2, blasThreads: 2, attention: 'manual' }, { threads: 2, blasThreads: 2, attention: 'sdpa' },
  ]);
  // Debian's torch 1.13 + OpenBLAS: the BLAS gets the cores torch leaves; no sdpa before torch 2.
  assert.equal(peerVariants('debian', 1, 2), [{ threads: 1, blasThreads: 2, attention: 'manual' }, { threads: 2, blasThreads: 1, attention: 'manual' }]);
  assert.ok(peerArgs({ ...DEFAULT_TORCH_CONFIG, attention: 'sdpa' }).join(' ').endsWith('--attention sdpa'));
});

test('machineInfo describes this machine', () => {
  const m = machineInfo();
  assert.ok(m.cores >= 1);
  assert.ok(m.memoryGiB > 0);
  assert.ok(m.cpuModel.length > 0);
  assert.is(m.node, process.version);
  assert.is(m.loadAverage.length, 3);
});

test.run();
