import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeNpy } from '../io/npy.ts';
import { tempDir } from '../testing.ts';
import { readPhyFolder } from './kilosort.ts';
import { alfSpikeSource, phySpikeSource, syntheticSpikeSource, type SpikeChunk, type SpikeSource } from './spike-chunks.ts';

const FIXTURE = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'kilosort');

async function collect(it: AsyncIterable<SpikeChunk>): Promise<SpikeChunk[]> {
  const out: SpikeChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}

/** Chunks tile [startS, endS) with no gap or overlap, and each spike lies in its own chunk. */
function checkTiling(chunks: SpikeChunk[], startS: number, endS: number): void {
  assert.ok(chunks.length > 0);
  assert.is(chunks[0].t0, startS);
  assert.is(chunks[chunks.length - 1].t1, endS);
  for (let k = 0; k < chunks.length; k++) {
    const c = chunks[k];
    assert.ok(c.t1 > c.t0 || (c.t1 === c.t0 && chunks.length === 1), `chunk ${k} is empty or reversed`);
    if (k > 0) assert.is(c.t0, chunks[k - 1].t1, `chunk ${k} does not start where chunk ${k - 1} ends`);
    assert.is(c.times.length, c.clusters.length);
    for (let i = 0; i < c.times.length; i++) {
      assert.ok(c.times[i] >= c.t0 && c.times[i] < c.t1, `spike at ${c.times[i]} outside chunk [${c.t0}, ${c.t1})`);
      if (i > 0) assert.ok(c.times[i] >= c.times[i - 1]);
    }
  }
}

function concat(chunks: SpikeChunk[]): { times: number[]; clusters: number[] } {
  return { times: chunks.flatMap((c) => [...c.times]), clusters: chunks.flatMap((c) => [...c.clusters]) };
}

test('phy source: chunks cover the recording exactly once, every spike in exactly one chunk', async () => {
  const phy = await readPhyFolder(FIXTURE);
  const src = await phySpikeSource(FIXTURE);
  assert.is(src.startS, 0);
  assert.is(src.endS, (phy.samples[phy.samples.length - 1] + 1) / 30000);
  assert.is(src.units.length, 13);
  assert.equal(src.units.find((u) => u.id === 4), { id: 4, clusterId: 4, probe: 'kilosort', group: 'noise', depthUm: 2980 });
  for (const chunkS of [0.1, 0.37, 25]) {
    const chunks = await collect(src.chunks({ chunkS }));
    assert.is(chunks.length, Math.ceil(src.endS / chunkS));
    checkTiling(chunks, src.startS, src.endS);
    const all = concat(chunks);
    assert.equal(all.times, [...phy.times], `chunkS ${chunkS}`);
    assert.equal(all.clusters, [...phy.clusters]);
  }
  // Chunks are views into the whole recording's arrays, not copies.
  const two = await collect(src.chunks({ chunkS: 1, endS: 2 }));
  assert.is(two[0].times.buffer, two[1].times.buffer);
  assert.ok(two[0].times.buffer.byteLength >= 8 * phy.times.length);
  assert.is(two[1].times.byteOffset, 8 * two[0].times.length);
});

test('a sub-span streams only the spikes inside [startS, endS)', async () => {
  const phy = await readPhyFolder(FIXTURE);
  const src = await phySpikeSource(FIXTURE);
  const chunks = await collect(src.chunks({ chunkS: 0.25, startS: 5, endS: 6.1 }));
  checkTiling(chunks, 5, 6.1);
  const want = [...phy.times].filter((t) => t >= 5 && t < 6.1);
  assert.equal(concat(chunks).times, want);
  assert.ok(want.length > 50);
});

async function makeAlfSession(): Promise<string> {
  const session = join(tempDir('mtm-alf-'), 'lab', 'Subjects', 'M1', '2024-01-02', '001');
  const write = async (probe: string, times: number[], clusters: number[], nClusters: number) => {
    const dir = join(session, 'alf', probe, 'pykilosort');
    await writeNpy(join(dir, 'spikes.times.npy'), new Float64Array(times), [times.length]);
    await writeNpy(join(dir, 'spikes.clusters.npy'), new Float64Array(clusters), [clusters.length], { dtype: '<i8' });
    await writeNpy(join(dir, 'clusters.depths.npy'), Float64Array.from({ length: nClusters }, (_, i) => 100 * i), [nClusters]);
  };
  await write('probe00', [0.01, 0.5, 0.5, 1.2, 2.9], [0, 2, 1, 2, 0], 3);
  await write('probe01', [0.02, 0.5, 1.0, 3.05], [1, 0, 1, 1], 2);
  return session;
}

test('ALF source: probes merged in time order, cluster ids offset per probe and mapped back by units', async () => {
  const src = await alfSpikeSource(await makeAlfSession());
  assert.equal(
    src.units.map((u) => [u.id, u.probe, u.clusterId, u.depthUm]),
    [[0, 'probe00', 0, 0], [1, 'probe00', 1, 100], [2, 'probe00', 2, 200], [3, 'probe01', 0, 0], [4, 'probe01', 1, 100]],
  );
  assert.is(src.startS, 0);
  assert.ok(src.endS > 3.05 && src.endS < 3.05 + 1e-12);
  const chunks = await collect(src.chunks({ chunkS: 0.5 }));
  checkTiling(chunks, src.startS, src.endS);
  const all = concat(chunks);
  assert.equal(all.times, [0.01, 0.02, 0.5, 0.5, 0.5, 1.0, 1.2, 2.9, 3.05]);
  // Ties keep probe order; probe01's clusters come back as 3 + id.
  assert.equal(all.clusters, [0, 4, 2, 1, 3, 4, 2, 0, 4]);
  // 0.5 sits on a chunk edge: it belongs to the chunk starting there.
  assert.equal([...chunks[1].times], [0.5, 0.5, 0.5]);
});

test('synthetic source: deterministic, Poisson rates as asked, tiles its span', async () => {
  const src = syntheticSpikeSource({ durationS: 100, nNeurons: 3, ratesHz: [50, 5, 0], seed: 7 });
  const a = await collect(src.chunks({ chunkS: 0.7 }));
  checkTiling(a, 0, 100);
  const counts = [0, 0, 0];
  for (const c of a) for (const id of c.clusters) counts[id]++;
  // Poisson: 5000 +- 71 and 500 +- 22; 5 sd bounds.
  assert.ok(Math.abs(counts[0] - 5000) < 355, `neuron 0 fired ${counts[0]} times`);
  assert.ok(Math.abs(counts[1] - 500) < 112, `neuron 1 fired ${counts[1]} times`);
  assert.is(counts[2], 0);
  const b = await collect(src.chunks({ chunkS: 0.7 }));
  assert.equal(concat(b), concat(a));
  const other = await collect(syntheticSpikeSource({ durationS: 100, nNeurons: 3, ratesHz: [50, 5, 0], seed: 8 }).chunks({ chunkS: 0.7 }));
  assert.not.equal(concat(other).times, concat(a).times);
  assert.throws(() => syntheticSpikeSource({ durationS: 1, nNeurons: 2, ratesHz: [1, -1] }), /rate of neuron 1 is -1/);
});

async function timed(src: SpikeSource, speed: number, chunkS = 0.05): Promise<number> {
  const t = performance.now();
  await collect(src.chunks({ chunkS, speed }));
  return (performance.now() - t) / 1000;
}

test('speed 1 paces chunks at real time; faster speeds scale it; Infinity does not wait', async () => {
  const src = syntheticSpikeSource({ durationS: 0.3, nNeurons: 5, ratesHz: 20 });
  const real = await timed(src, 1);
  assert.ok(real >= 0.25 && real < 1.5, `0.3 s at speed 1 took ${real} s`);
  const fast = await timed(syntheticSpikeSource({ durationS: 3, nNeurons: 5, ratesHz: 20 }), 10, 0.1);
  assert.ok(fast >= 0.25 && fast < 1.5, `3 s at speed 10 took ${fast} s`);
  const free = await timed(syntheticSpikeSource({ durationS: 30, nNeurons: 5, ratesHz: 20 }), Infinity);
  assert.ok(free < 0.25, `30 s at speed Infinity took ${free} s`);
});

test('an abort signal stops the stream, also while it waits for the clock', async () => {
  const src = syntheticSpikeSource({ durationS: 60, nNeurons: 2, ratesHz: 10 });
  const ac = new AbortController();
  const seen: SpikeChunk[] = [];
  const t = performance.now();
  setTimeout(() => ac.abort(new Error('user stop')), 120);
  try {
    for await (const c of src.chunks({ chunkS: 0.05, speed: 1, signal: ac.signal })) seen.push(c);
    assert.unreachable('should have been aborted');
  } catch (e) {
    assert.ok((e as Error).name === 'AbortError' || (e as Error).message === 'user stop', String(e));
  }
  assert.ok(performance.now() - t < 1000);
  assert.ok(seen.length >= 1 && seen.length <= 4, `${seen.length} chunks before the abort`);
  // Already aborted: nothing is emitted.
  await collect(src.chunks({ signal: AbortSignal.abort() })).then(
    () => assert.unreachable('should have thrown'),
    (e: Error) => assert.ok(e.name === 'AbortError'),
  );
});

test('bad stream options are refused at once, with the source named', async () => {
  const src = syntheticSpikeSource({ durationS: 1, nNeurons: 1 });
  assert.throws(() => src.chunks({ chunkS: 0 }), /synthetic\(1 neurons, 1 s, seed 1\): chunkS must be a positive number/);
  assert.throws(() => src.chunks({ speed: 0 }), /speed must be > 0/);
  const phy = await phySpikeSource(FIXTURE);
  assert.throws(() => phy.chunks({ startS: 3, endS: 2 }), /kilosort: stream span 3\.\.2 s is not a valid interval/);
});

test.run();
