// Spike times that are not seconds: integer sample indices (as Kilosort writes spike_times.npy)
// and infinite times are refused with a message saying what to do (docs/method.md §2.2).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../testing.ts';
import { encodeNpy } from '../io/npy.ts';
import { tinySessionFiles, writeSessionFiles } from '../one/testing/alf-session.ts';
import { loadSpikeTrains } from './session.ts';

async function sessionWithTimes(bytes: Uint8Array): Promise<string> {
  const dir = join(tempDir('mtm-times-'), 'lab', 'Subjects', 'T1', '2024-01-01', '001');
  const files = tinySessionFiles({ seed: 3, nSpikes: 400 });
  await writeSessionFiles(dir, files);
  writeFileSync(join(dir, 'alf', 'probe00', 'spikes.times.npy'), bytes);
  return dir;
}

async function error(dir: string): Promise<string> {
  try {
    await loadSpikeTrains(dir, {});
  } catch (e) {
    return (e as Error).message;
  }
  assert.unreachable('loaded');
  return '';
}

test('integer spike times (samples) are refused, saying how to convert them to seconds', async () => {
  for (const dtype of ['<i8', '<u8'] as const) {
    const samples = Float64Array.from({ length: 400 }, (_, i) => i * 300);
    const msg = await error(await sessionWithTimes(encodeNpy(samples, [400], { dtype })));
    assert.match(msg, /spikes\.times\.npy/);
    assert.match(msg, /integer/);
    assert.match(msg, /sample/);
    assert.match(msg, /divide by the sampling rate/);
  }
  const int32 = Int32Array.from({ length: 400 }, (_, i) => i * 300);
  assert.match(await error(await sessionWithTimes(encodeNpy(int32, [400]))), /sample/);
});

test('an infinite spike time is refused like a NaN, not dropped', async () => {
  for (const bad of [Infinity, -Infinity]) {
    const t = Float64Array.from({ length: 400 }, (_, i) => i * 0.01);
    t[123] = bad;
    const msg = await error(await sessionWithTimes(encodeNpy(t, [400])));
    assert.match(msg, /spike 123 has an infinite time/);
  }
});

test.run();
