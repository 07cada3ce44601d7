import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { binSpikes, columnTable } from '../binning/bin-spikes.ts';
import { readPhyFolder } from './kilosort.ts';
import { binChunks, OnlineBinner, SlidingWindow, type Bin } from './online-binner.ts';
import { phySpikeSource, syntheticSpikeSource, type SpikeChunk } from './spike-chunks.ts';

const FIXTURE = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'kilosort');

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const chunk = (t0: number, t1: number, times: number[], clusters: number[]): SpikeChunk => ({ t0, t1, times: new Float64Array(times), clusters: new Int32Array(clusters) });

test('online bins equal the offline count of the same spikes, whatever the chunk size', async () => {
  const phy = await readPhyFolder(FIXTURE);
  const src = await phySpikeSource(FIXTURE);
  // Neuron list without the noise clusters, in an order unlike the ids.
  const kept = src.units.filter((u) => u.group !== 'noise').map((u) => u.id).reverse();
  const noiseSpikes = [...phy.clusters].filter((c) => c === 4 || c === 11).length;
  for (const chunkS of [0.1, 0.033, 1.7]) {
    const binner = new OnlineBinner({ clusterIds: kept });
    const bins = await collect(binChunks(src.chunks({ chunkS }), binner));
    const nBins = Math.floor(src.endS / 0.02 + 1e-9);
    assert.is(bins.length, nBins, `chunkS ${chunkS}`);
    bins.forEach((b, k) => {
      assert.is(b.binIndex, k);
      assert.is(b.t0, k * 0.02);
    });
    assert.is(binner.dropped, noiseSpikes);
    const offline = binSpikes({
      times: phy.times,
      clusters: phy.clusters,
      columnOf: columnTable(kept, kept.map((_, i) => i)),
      nNeurons: kept.length,
      alignTimes: new Float64Array([0]),
      windowS: [0, nBins * 0.02],
      binSizeMs: 20,
    });
    const online = new Int32Array(nBins * kept.length);
    bins.forEach((b, k) => online.set(b.counts, k * kept.length));
    assert.equal(online, offline, `chunkS ${chunkS}`);
    // Every kept spike before the last complete bin's end is counted once.
    const inRange = [...phy.times].filter((t, i) => t < nBins * 0.02 && phy.clusters[i] !== 4 && phy.clusters[i] !== 11).length;
    assert.is(online.reduce((a, b) => a + b, 0), inRange);
  }
});

test('a bin is emitted once a chunk reaches its end; spikes on an edge go to the later bin', () => {
  const b = new OnlineBinner({ clusterIds: [5, 9], binSizeMs: 20 });
  assert.equal(b.push(chunk(0, 0.015, [0, 0.01], [5, 9])), []);
  const first = b.push(chunk(0.015, 0.03, [0.02, 0.029], [5, 7]));
  assert.is(first.length, 1);
  assert.equal(first[0], { binIndex: 0, t0: 0, counts: new Int32Array([1, 1]) });
  assert.is(b.dropped, 1); // cluster 7 is not in the neuron list
  const second = b.push(chunk(0.03, 0.04, [0.039], [9]));
  // The chunk ends exactly on bin 1's end: bin 1 is complete.
  assert.equal(second.map((x) => [x.binIndex, [...x.counts]]), [[1, [1, 1]]]);
  assert.is(b.pendingBins, 0);
  // A long silent chunk completes every bin it passes.
  const third = b.push(chunk(0.04, 0.1, [], []));
  assert.equal(third.map((x) => x.binIndex), [2, 3, 4]);
  assert.ok(third.every((x) => x.counts.every((v) => v === 0)));
  assert.equal(b.end(), []);
});

test('keepPartial emits the last, cut-short bin; startS shifts the edges and counts earlier spikes apart', () => {
  const b = new OnlineBinner({ clusterIds: [0], binSizeMs: 100, startS: 1, keepPartial: true });
  const bins = [...b.push(chunk(0.5, 1.25, [0.9, 1.0, 1.1, 1.2], [0, 0, 0, 0])), ...b.end()];
  assert.is(b.early, 1);
  assert.equal(bins.map((x) => [x.binIndex, x.t0, x.counts[0], x.partial]), [[0, 1, 1, undefined], [1, 1.1, 1, undefined], [2, 1.2, 1, true]]);
});

test('out-of-order chunks, spikes outside their chunk and bad neuron lists are refused', () => {
  const b = new OnlineBinner({ clusterIds: [1] });
  b.push(chunk(0, 0.1, [], []));
  assert.throws(() => b.push(chunk(0.05, 0.2, [], [])), /starts before the previous chunk's end 0\.1/);
  assert.throws(() => b.push(chunk(0.1, 0.2, [0.25], [1])), /spike 0 of chunk \[0\.1, 0\.2\) is at 0\.25 s, outside the chunk/);
  assert.throws(() => new OnlineBinner({ clusterIds: [1, 2, 1] }), /cluster id 1 appears twice/);
  assert.throws(() => new OnlineBinner({ clusterIds: [-1] }), /clusterIds\[0\] is -1/);
  assert.throws(() => new OnlineBinner({ clusterIds: [1], binSizeMs: 0 }), /binSizeMs must be a positive number/);
});

test('SlidingWindow hands out the last W bins oldest first, zero-padded while filling', () => {
  const w = new SlidingWindow(3, 2);
  const bin = (i: number): Bin => ({ binIndex: i, t0: i * 0.02, counts: new Int32Array([i, 10 * i]) });
  w.push(bin(0));
  w.push(bin(1));
  assert.is(w.filled, 2);
  assert.not.ok(w.full);
  assert.equal([...w.toArray()], [0, 0, 0, 0, 1, 10]);
  w.push(bin(2));
  w.push(bin(3));
  w.push(bin(4));
  assert.ok(w.full);
  assert.is(w.firstBinIndex, 2);
  const out = w.toArray();
  assert.equal([...out], [2, 20, 3, 30, 4, 40]);
  // A copy: later pushes do not change it.
  w.push(bin(5));
  assert.equal([...out], [2, 20, 3, 30, 4, 40]);
  assert.equal([...w.toArray(new Float32Array(6))], [3, 30, 4, 40, 5, 50]);
  assert.throws(() => w.push(bin(7)), /got bin 7 after bin 5; bins must be consecutive/);
  assert.throws(() => w.push({ binIndex: 6, counts: new Int32Array(3) }), /has 3 neurons, the window 2/);
  w.reset();
  assert.equal([...w.toArray()], [0, 0, 0, 0, 0, 0]);
});

test('one hour of synthetic spikes streamed through the binner and a window keeps the heap flat', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const nNeurons = 200;
  const src = syntheticSpikeSource({ durationS: 3600, nNeurons, seed: 3 });
  const binner = new OnlineBinner({ clusterIds: src.units.map((u) => u.id) });
  const window = new SlidingWindow(100, nNeurons);
  const input = new Float32Array(100 * nNeurons);
  const heap: number[] = [];
  let nBins = 0;
  let spikes = 0;
  let emittedSpikes = 0;
  const chunks = src.chunks({ chunkS: 1 });
  const counted = (async function* () {
    for await (const c of chunks) {
      spikes += c.times.length;
      yield c;
    }
  })();
  const t = performance.now();
  for await (const bin of binChunks(counted, binner)) {
    window.push(bin);
    for (let i = 0; i < nNeurons; i++) emittedSpikes += bin.counts[i];
    if (++nBins % 1800 === 0) {
      window.toArray(input);
      gc();
      // Typed arrays over 64 bytes keep their data outside the JS heap: count it too.
      const m = process.memoryUsage();
      heap.push(m.heapUsed + m.arrayBuffers);
    }
  }
  const seconds = (performance.now() - t) / 1000;
  assert.is(nBins, 180000);
  assert.is(emittedSpikes, spikes);
  assert.ok(spikes > 2_000_000, `${spikes} spikes`);
  const at10 = heap[Math.floor(heap.length / 10)];
  const growthMB = (heap[heap.length - 1] - at10) / 2 ** 20;
  const peakMB = (Math.max(...heap) - at10) / 2 ** 20;
  console.log(`  1 h stream: ${spikes} spikes, ${nBins} bins in ${seconds.toFixed(1)} s; heap + array buffers ${(at10 / 2 ** 20).toFixed(1)} MB at 10 %, growth to end ${growthMB.toFixed(2)} MB, peak above ${peakMB.toFixed(2)} MB`);
  assert.ok(growthMB < 20, `memory grew ${growthMB} MB`);
  assert.ok(peakMB < 20, `memory peaked ${peakMB} MB above its 10 % level`);
});

test.run();
