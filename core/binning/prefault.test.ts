import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { allocCounts, PREFAULT_MIN_BYTES, startPrefaultHelper, stopPrefaultHelper } from './prefault.ts';
import { binSpikes } from './bin-spikes.ts';
import { createRng } from '../rng.ts';

test('plain Int32Arrays by default and for small arrays; large ones shared and zero-filled with auto', () => {
  assert.not.ok(allocCounts(PREFAULT_MIN_BYTES).prefaulting, 'off by default');
  const small = allocCounts(1000, { prefault: 'auto' });
  assert.not.ok(small.prefaulting);
  assert.ok(small.array.buffer instanceof ArrayBuffer);
  const big = allocCounts(PREFAULT_MIN_BYTES / 4, { prefault: 'auto' });
  assert.ok(big.prefaulting);
  assert.ok(big.array.buffer instanceof SharedArrayBuffer);
  big.done();
  assert.is(big.array.length, PREFAULT_MIN_BYTES / 4);
  assert.ok(big.array.every((x) => x === 0));
  assert.not.ok(allocCounts(PREFAULT_MIN_BYTES, { prefault: false }).prefaulting);
});

test('the helper thread touches every page when left alone, and never changes a value', async () => {
  assert.ok(await startPrefaultHelper(), 'helper thread starts');
  const n = 3 * 2 ** 20 + 5; // 12 MiB and a bit: 3073 pages of 1024 counts
  const c = allocCounts(n, { prefault: true });
  c.array[0] = 7;
  c.array[n - 1] = -3;
  const touched = await c.settled();
  c.done();
  assert.is(touched, Math.ceil(n / 1024));
  assert.is(c.array[0], 7);
  assert.is(c.array[n - 1], -3);
});

test('counting while the helper runs gives exactly the single-thread counts', async () => {
  await startPrefaultHelper();
  const rng = createRng(11);
  const nNeurons = 97;
  const nSpikes = 600_000;
  const spanS = 900;
  const times = Float64Array.from({ length: nSpikes }, () => rng.next() * spanS).sort();
  const clusters = Int32Array.from({ length: nSpikes }, () => rng.int(nNeurons));
  // 420 trials x 100 bins x 97 neurons = 16 MB of counts; windows overlap now and then.
  const alignTimes = Float64Array.from({ length: 420 }, (_, i) => 1 + i * 2.1 + rng.next() * 0.3);
  const input = { times, clusters, nNeurons, alignTimes, windowS: [-0.5, 1.5] as [number, number], binSizeMs: 20 };
  const plain = binSpikes({ ...input, prefault: false });
  for (let round = 0; round < 3; round++) {
    const threaded = binSpikes({ ...input, prefault: true });
    assert.ok(threaded.buffer instanceof SharedArrayBuffer, 'the threaded path ran');
    assert.is(threaded.length, plain.length);
    let diff = 0;
    for (let i = 0; i < plain.length; i++) if (plain[i] !== threaded[i]) diff++;
    assert.is(diff, 0, `round ${round}: ${diff} counts differ`);
  }
  let total = 0;
  for (const x of plain) total += x;
  assert.ok(total > 200_000, `the windows hold spikes (${total})`);
});

test.after(async () => {
  await stopPrefaultHelper();
});

test.run();
