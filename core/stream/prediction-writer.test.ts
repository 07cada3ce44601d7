import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readNpy } from '../io/npy.ts';
import { tempDir } from '../testing.ts';
import { GrowingNpy } from './prediction-writer.ts';

test('a growing .npy is readable after every flush, before it is closed, and holds the rows in order', async () => {
  const path = join(tempDir('mtm-grow-'), 'sub', 'p.npy');
  const f = new GrowingNpy(path, '<f4', 3);
  assert.equal((await readNpy(path)).shape, [0, 3]);
  f.append(Float32Array.from([1, 2, 3, 4, 5, 6]));
  // Appended but not flushed: the header still says 0 rows.
  assert.equal((await readNpy(path)).shape, [0, 3]);
  f.flush();
  let a = await readNpy(path);
  assert.equal(a.shape, [2, 3]);
  assert.equal([...(a.data as Float32Array)], [1, 2, 3, 4, 5, 6]);
  f.append(Float32Array.from([7.5, 8, 9]));
  f.close();
  a = await readNpy(path);
  assert.equal(a.shape, [3, 3]);
  assert.equal([...(a.data as Float32Array)], [1, 2, 3, 4, 5, 6, 7.5, 8, 9]);
  assert.throws(() => f.append(Float32Array.from([1, 2, 3])), /append after close/);
});

test('int32 rows; partial rows and the wrong array type are refused', async () => {
  const path = join(tempDir('mtm-grow-'), 'c.npy');
  const f = new GrowingNpy(path, '<i4', 2);
  assert.throws(() => f.append(Int32Array.from([1, 2, 3])), /not whole rows of 2/);
  assert.throws(() => f.append(Float32Array.from([1, 2])), /wrong type for dtype <i4/);
  f.append(Int32Array.from([-1, 2147483647]));
  f.close();
  const a = await readNpy(path);
  assert.is(a.dtype, '<i4');
  assert.equal([...(a.data as Int32Array)], [-1, 2147483647]);
});

test.run();
