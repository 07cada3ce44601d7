// `mtm stream` on malformed phy files and out-of-range flags: a message naming the file or flag,
// exit 2, no stack (docs/architecture.md §10).
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../../../core/testing.ts';
import { initBackend } from '../../../core/tensor/backend.ts';
import { main } from '../main.ts';

import { KILOSORT, modelFolder } from '../../../test/fixtures/stream-model.ts';

await initBackend();


/** main() in-process with stderr and stdout captured. */
async function mtm(args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const [w1, w2] = [process.stderr.write.bind(process.stderr), process.stdout.write.bind(process.stdout)];
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  let code: number;
  try {
    code = await main(args);
  } finally {
    process.stderr.write = w1;
    process.stdout.write = w2;
    process.exitCode = 0;
  }
  return { code, err };
}
const noStack = (s: string) => assert.not.match(s, /\n\s+at .+:\d+:\d+/, `stack trace printed:\n${s}`);

/** A copy of the phy fixture with one file replaced. */
function phyWith(file: string, text: string): string {
  const dir = join(tempDir('mtm-phy-'), 'phy');
  cpSync(KILOSORT, dir, { recursive: true });
  writeFileSync(join(dir, file), text);
  return dir;
}

const model = await modelFolder();

test('a malformed cluster_info.tsv or params.py: the file and line named, exit 2, no stack', async () => {
  const info = readFileSync(join(KILOSORT, 'cluster_info.tsv'), 'utf8').split('\n');
  info[2] = `${info[2]}\textra\tcells\tmore\tthan\tthe\theader\thas\tx\ty\tz\tw`;
  const cases: [string, string, RegExp][] = [
    ['cluster_info.tsv', info.join('\n'), /cluster_info\.tsv: line 3 has \d+ fields/],
    ['cluster_info.tsv', 'cluster_id\tgroup\nzero\tgood\n', /cluster_info\.tsv: line 2, column "cluster_id": "zero" is not a cluster id/],
    ['params.py', 'import os\nsample_rate = 30000.0\n', /params\.py: line 1: expected `name = value`/],
    ['params.py', "sample_rate = 'fast'\n", /params\.py: sample_rate is "fast"/],
  ];
  for (const [file, text, want] of cases) {
    const r = await mtm(['stream', '--model', model, '--source', phyWith(file, text), '--out', join(tempDir('mtm-phy-'), 'out'), '--set', 'calibration=none', '--log-level', 'error']);
    assert.is(r.code, 2, `${file}: ${r.err}`);
    assert.match(r.err, want);
    noStack(r.err);
  }
});

test('--speed too small to schedule (1e-9) or negative: refused, exit 2', async () => {
  for (const speed of ['1e-9', '-1']) {
    const r = await mtm(['stream', '--model', model, '--source', 'synthetic:0.05', '--speed', speed, '--set', 'calibration=none', '--log-level', 'error']);
    assert.is(r.code, 2, r.err);
    assert.match(r.err, /speed/);
    noStack(r.err);
  }
});

test.run();
