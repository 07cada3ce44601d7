import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import yargs from 'yargs';
import { readNpy } from '../../../core/io/npy.ts';
import { tempDir } from '../../../core/testing.ts';
import { initBackend } from '../../../core/tensor/backend.ts';
import { GraphError } from '../../../core/graph/diagnostics.ts';
import * as stream from './stream.ts';

import { KILOSORT, modelFolder } from '../../../test/fixtures/stream-model.ts';

await initBackend();



/** Runs `mtm stream ...` in-process (as app/cli/main.ts wires it), capturing stdout. */
async function mtmStream(args: string[]): Promise<string> {
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  try {
    await yargs(['stream', ...args, '--log-level', 'error']).command(stream as any).strict().fail((msg, err) => {
      throw err ?? new Error(msg);
    }).parseAsync();
  } finally {
    process.stdout.write = write;
  }
  return out;
}

test('mtm stream --model M --source <Kilosort folder> writes the predictions and says how fast', async () => {
  const model = await modelFolder();
  const out = join(tempDir('mtm-cli-stream-'), 'run');
  const text = await mtmStream(['--model', model, '--source', KILOSORT, '--out', out, '--set', 'calibrationS=4', '--set', 'calibrationSteps=3', '--set', 'units=good']);
  assert.match(text, /^completed: 799 bins x 6 neurons predicted/);
  assert.match(text, /ms per bin \(pass p50/);
  assert.match(text, /calibration: 200 bins, 3 steps/);
  const preds = await readNpy(join(out, 'predictions.npy'));
  assert.equal(preds.shape, [799, 6]);
  const header = JSON.parse(readFileSync(join(out, 'stream.json'), 'utf8'));
  assert.equal(header.neurons.map((u: { clusterId: number }) => u.clusterId), [0, 3, 7, 10, 12, 14]);
  assert.is(header.summary.predictedBins, 799);
});

test('mtm stream --json on a synthetic source at 10x real time; unknown --set names are refused with a suggestion', async () => {
  const model = await modelFolder();
  const out = join(tempDir('mtm-cli-stream-'), 'syn');
  const started = performance.now();
  const text = await mtmStream(['--model', model, '--source', 'synthetic:0.05', '--speed', '10', '--out', out, '--json', '--set', 'calibration=none', '--set', 'syntheticNeurons=9']);
  const wallS = (performance.now() - started) / 1000;
  const s = JSON.parse(text);
  assert.is(s.predictedBins, 150);
  assert.is(s.nNeurons, 9);
  // 3 s of recording replayed at 10x takes at least 0.3 s.
  assert.ok(wallS >= 0.29, `took ${wallS} s`);
  try {
    await mtmStream(['--model', model, '--source', 'synthetic:1', '--set', 'strideBin=3']);
    assert.unreachable('expected an error');
  } catch (e) {
    assert.instance(e, GraphError);
    assert.match((e as GraphError).diagnostics[0].message, /did you mean 'strideBins'/);
  }
});

test.run();
