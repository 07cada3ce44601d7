import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic.ts';
import { tempDir } from '../testing.ts';

test('creates parent folders, writes bytes and strings, leaves no temporary file', async () => {
  const dir = tempDir();
  const path = join(dir, 'a', 'b', 'spikes.times.npy');
  await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
  assert.equal(Array.from(readFileSync(path)), [1, 2, 3]);
  await writeFileAtomic(path, 'héllo');
  assert.is(readFileSync(path, 'utf8'), 'héllo');
  assert.equal(readdirSync(join(dir, 'a', 'b')), ['spikes.times.npy']);
});

test('a reader never sees a partial file while a large write is in flight', async () => {
  const dir = tempDir();
  const path = join(dir, 'big.bin');
  const size = 8 * 1024 * 1024;
  writeFileSync(path, Buffer.alloc(16, 1));
  const data = new Uint8Array(size).fill(7);
  let done = false;
  const seen = new Set<number>();
  const writing = writeFileAtomic(path, data).then(() => (done = true));
  while (!done) {
    seen.add(statSync(path).size);
    await new Promise((r) => setImmediate(r));
  }
  await writing;
  for (const s of seen) assert.ok(s === 16 || s === size, `saw a ${s}-byte file`);
  assert.is(statSync(path).size, size);
  assert.equal(readdirSync(dir), ['big.bin']);
});

test('concurrent writers to one name: the result is one complete version', async () => {
  const dir = tempDir();
  const path = join(dir, 'x.json');
  const versions = Array.from({ length: 8 }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(10000 * (i + 1)) }));
  await Promise.all(versions.map((v) => writeFileAtomic(path, v)));
  assert.ok(versions.includes(readFileSync(path, 'utf8')));
  assert.equal(readdirSync(dir), ['x.json']);
});

test('a failed write leaves the old file untouched and no temporary behind', async () => {
  const dir = tempDir();
  const path = join(dir, 'keep.txt');
  writeFileSync(path, 'old');
  // A folder cannot be replaced by a file: the rename fails after the temporary was written.
  const folder = join(dir, 'folder');
  await writeFileAtomic(join(folder, 'inside'), 'x');
  await writeFileAtomic(folder, 'new').then(
    () => assert.unreachable('renaming over a folder must fail'),
    (e: Error) => assert.ok(e.message.includes(folder), e.message),
  );
  assert.is(readFileSync(path, 'utf8'), 'old');
  assert.equal(readdirSync(dir).sort(), ['folder', 'keep.txt']);
  assert.ok(!existsSync(join(dir, 'folder.tmp')));
});

test.run();
