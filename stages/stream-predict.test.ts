import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ndt1Architecture } from '../plugins/ndt1/architecture.ts';
import type { ArchitectureModel } from '../core/architecture.ts';
import type { Artifact, Metrics } from '../core/payloads.ts';
import { readNpy, writeNpy } from '../core/io/npy.ts';
import { loadGraphText } from '../core/graph/load.ts';
import { silentLogger } from '../core/log.ts';
import { Registry } from '../core/registry.ts';
import { runGraph } from '../core/runtime/run-graph.ts';
import { runStage, tempDir, testContext } from '../core/testing.ts';
import { initBackend } from '../core/tensor/backend.ts';
import * as tf from '../core/tensor/tf.ts';
import { saveModelFolder } from '../core/train/checkpoint.ts';
import { readPhyFolder } from '../core/stream/kilosort.ts';
import { runStream } from '../core/stream/run-stream.ts';
import { syntheticSpikeSource } from '../core/stream/spike-chunks.ts';
import { streamPredict } from './stream-predict.ts';

await initBackend();

const ROOT = join(import.meta.dirname, '..');
const KILOSORT = join(ROOT, 'test', 'fixtures', 'kilosort');
const architectures = new Map([[ndt1Architecture.name, ndt1Architecture]]);
const CONFIG = { dModel: 16, layers: 1, heads: 2, mlpDim: 32, maxBins: 30 };

function buildModel(): ArchitectureModel {
  return ndt1Architecture.build(CONFIG, { sessions: [{ sessionId: 'trained', nNeurons: 5, nBins: 30 }], seed: 7 });
}

/** A model folder in the layout train-model writes (model.json with topology + sessions metadata, weights.bin). */
async function modelFolder(): Promise<string> {
  const dir = join(tempDir('mtm-stream-'), 'best');
  const model = buildModel();
  await saveModelFolder(dir, model, { sessions: model.sessions(), label: 'mtm' });
  model.dispose();
  return dir;
}

const ctx = () => ({ ...testContext('stream'), architectures });

test('the Kilosort fixture: calibration, then every later bin predicted once; counts.npy is the offline binning', async () => {
  const model = await modelFolder();
  const out = join(tempDir('mtm-stream-'), 'ks');
  const res = await runStage(streamPredict, { model, source: KILOSORT, calibrationS: 2, calibrationSteps: 4, calibrationBatchSize: 2, strideBins: 5, out }, {}, ctx());
  const art = res.predictions[0] as Artifact;
  assert.is(art.path, out);
  const header = JSON.parse(readFileSync(join(out, 'stream.json'), 'utf8'));
  assert.is(header.status, 'completed');
  assert.is(header.windowBins, 30); // the model's training length
  assert.is(header.firstPredictedBin, 100);
  assert.is(header.calibrationResult.steps, 4);
  // not-noise: 13 clusters, 2 of them noise.
  const ids: number[] = header.neurons.map((u: { id: number }) => u.id);
  assert.is(ids.length, 11);
  const preds = await readNpy(join(out, 'predictions.npy'));
  const counts = await readNpy(join(out, 'counts.npy'));
  const phy = await readPhyFolder(KILOSORT);
  const nBins = Math.floor(((phy.samples[phy.samples.length - 1] + 1) / 30000) / 0.02);
  assert.equal(preds.shape, [nBins - 100, 11]);
  assert.equal(counts.shape, [nBins - 100, 11]);
  assert.is(preds.dtype, '<f4');
  assert.ok((preds.data as Float32Array).every(Number.isFinite));
  // The same spikes binned offline, bin by bin.
  const want = new Int32Array((nBins - 100) * 11);
  for (let i = 0; i < phy.times.length; i++) {
    const b = Math.floor(phy.times[i] / 0.02 + 1e-9);
    const c = ids.indexOf(phy.clusters[i]);
    if (c >= 0 && b >= 100 && b < nBins) want[(b - 100) * 11 + c]++;
  }
  assert.equal([...(counts.data as Int32Array)], [...want]);
  const m = (res.metrics[0] as Metrics).values;
  assert.is(m.predictedBins, nBins - 100);
  assert.ok(m.msPerBin > 0);
  assert.ok(Number.isFinite(m.calibrationLastLoss));
});

test('causal end to end: spikes added late in a recording leave every earlier written prediction unchanged', async () => {
  const model = buildModel();
  const run = async (extra: boolean) => {
    const base = syntheticSpikeSource({ durationS: 4, nNeurons: 5, seed: 3 });
    // The same recording with a burst of spikes at 2.5 s (bin 125) in neuron 2.
    const source = {
      ...base,
      async *chunks(o: Parameters<typeof base.chunks>[0]) {
        for await (const c of base.chunks(o)) {
          if (!extra || !(c.t0 <= 2.5 && 2.5 < c.t1)) yield c;
          else {
            const times = Float64Array.from([...c.times, 2.5, 2.5001, 2.5002]);
            const clusters = Int32Array.from([...c.clusters, 2, 2, 2]);
            const order = [...times.keys()].sort((a, b) => times[a] - times[b]);
            yield { ...c, times: Float64Array.from(order, (i) => times[i]), clusters: Int32Array.from(order, (i) => clusters[i]) };
          }
        }
      },
    };
    const rows: { bin: number; rates: number[] }[] = [];
    const s = await runStream({ model, source, windowBins: 20, strideBins: 4, calibration: { kind: 'none' }, sessionId: 'trained', onBin: (b) => rows.push({ bin: b.binIndex, rates: [...b.logRates] }) });
    return { rows, s };
  };
  const a = await run(false);
  const b = await run(true);
  assert.is(a.s.bins, 200);
  assert.equal(a.rows.map((r) => r.bin), Array.from({ length: 200 }, (_, i) => i));
  for (let i = 0; i <= 125; i++) assert.equal(b.rows[i].rates, a.rows[i].rates, `bin ${i}`);
  assert.not.equal(b.rows[128].rates, a.rows[128].rates);
  model.dispose();
});

test('memory stays flat and no tensor leaks over a long stream at full speed', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const model = buildModel();
  const source = syntheticSpikeSource({ durationS: 600, nNeurons: 20, seed: 5 });
  const heap: number[] = [];
  const tensors: number[] = [];
  const out = join(tempDir('mtm-stream-'), 'long');
  const s = await runStream({
    model, source, out, windowBins: 30, strideBins: 15, sessionId: 'fresh',
    calibration: { kind: 'masked', seconds: 10, steps: 3, learningRate: 1e-3, batchSize: 2, scheme: 'causal' },
    onBin: (b) => {
      if (b.binIndex % 3000 === 0) {
        gc();
        heap.push(process.memoryUsage().heapUsed);
        tensors.push(tf.memory().numTensors);
      }
    },
  });
  assert.is(s.bins, 30_000);
  assert.is(s.predictedBins, 30_000 - 500);
  assert.ok(heap.length >= 9);
  // After warm-up, the heap does not grow with the stream (a leak of 100 bytes a bin would be 2.4 MB here).
  const growth = heap[heap.length - 1] - heap[1];
  assert.ok(growth < 1.5e6, `heap grew ${(growth / 1e6).toFixed(2)} MB over ${s.bins} bins: ${heap.map((h) => (h / 1e6).toFixed(1)).join(', ')}`);
  assert.ok(tensors.every((t) => t === tensors[0]), `tensors: ${tensors.join(', ')}`);
  const counts = await readNpy(join(out, 'counts.npy'));
  assert.equal(counts.shape, [29_500, 20]);
  assert.ok(s.realTimeFactor > 1, `streamed at ${s.realTimeFactor}x real time`);
  model.dispose();
});

test('an ALF session folder is a source: every probe, cluster ids kept apart per probe', async () => {
  const session = join(tempDir('mtm-stream-alf-'), 'lab', 'Subjects', 'M1', '2024-01-02', '001');
  const rng = { x: 1, next() { return (this.x = (this.x * 16807) % 2147483647) / 2147483647; } };
  const spikes: Record<string, number> = {};
  for (const [probe, nClusters] of [['probe00', 3], ['probe01', 2]] as const) {
    const times = Array.from({ length: 400 }, () => rng.next() * 6).sort((a, b) => a - b);
    const clusters = times.map(() => Math.floor(rng.next() * nClusters));
    const dir = join(session, 'alf', probe, 'pykilosort');
    await writeNpy(join(dir, 'spikes.times.npy'), Float64Array.from(times), [times.length]);
    await writeNpy(join(dir, 'spikes.clusters.npy'), Float64Array.from(clusters), [clusters.length], { dtype: '<i8' });
    clusters.forEach((c, i) => {
      if (times[i] >= 2 && times[i] < Math.floor(times[times.length - 1] / 0.02) * 0.02) spikes[`${probe}/${c}`] = (spikes[`${probe}/${c}`] ?? 0) + 1;
    });
  }
  const model = await modelFolder();
  const out = join(tempDir('mtm-stream-'), 'alf');
  await runStage(streamPredict, { model, source: session, calibration: 'none', durationS: 0, out }, {}, ctx());
  const header = JSON.parse(readFileSync(join(out, 'stream.json'), 'utf8'));
  const units: { probe: string; clusterId: number }[] = header.neurons;
  assert.equal(units.map((u) => `${u.probe}/${u.clusterId}`), ['probe00/0', 'probe00/1', 'probe00/2', 'probe01/0', 'probe01/1']);
  const counts = await readNpy(join(out, 'counts.npy'));
  // Without calibration every bin is predicted; compare the per-unit totals from 2 s on.
  const c = counts.data as Int32Array;
  const first = 100;
  units.forEach((u, k) => {
    let total = 0;
    for (let r = first; r < counts.shape[0]; r++) total += c[r * 5 + k];
    assert.is(total, spikes[`${u.probe}/${u.clusterId}`] ?? 0, `${u.probe}/${u.clusterId}`);
  });
});

test('graphs/stream.yaml streams a short synthetic recording, and errors name the param at fault', async () => {
  const model = await modelFolder();
  const registry = new Registry([streamPredict], [ndt1Architecture]);
  const text = readFileSync(join(ROOT, 'graphs', 'stream.yaml'), 'utf8');
  const out = join(tempDir('mtm-stream-'), 'graph');
  const { graph, diagnostics } = loadGraphText(text, 'graphs/stream.yaml', registry, {
    overrides: { model, source: 'synthetic:0.1', calibration: 'none', out, strideBins: '5' },
  });
  assert.equal(diagnostics, []);
  const run = testContext().run;
  const outcome = await runGraph({ graph: graph!, run, logger: silentLogger, progress: () => ({ increment() {}, setTotal() {}, stop() {} }), signal: new AbortController().signal, architectures: registry.architectures });
  assert.is(outcome.status, 'completed', outcome.error?.message);
  const preds = await readNpy(join(out, 'predictions.npy'));
  assert.equal(preds.shape, [300, 100]);

  const fail = async (params: Record<string, unknown>, pattern: RegExp) => {
    try {
      await runStage(streamPredict, params, {}, ctx());
    } catch (e) {
      assert.match((e as Error).message, pattern);
      return;
    }
    assert.unreachable(`expected ${pattern}`);
  };
  await fail({}, /no model: set the model param/);
  await fail({ model, source: '/nope/none' }, /source '\/nope\/none': no such folder/);
  await fail({ model, source: 'synthetic:x' }, /expected synthetic:<minutes>/);
  await fail({ model, strideBins: 30 }, /strideBins 30 must be smaller than windowBins 30/);
  await fail({ model, session: 'other' }, /session 'other' is not one the model was trained on \(it has trained\)/);
  await fail({ model: join(model, 'missing') }, /cannot read model file .*missing\/model\.json/);
});

test('strideBins 1 predicts every bin from the key/value caches (stream.json and metrics say so); cache off runs windowed passes, equal while the window fills', async () => {
  const model = await modelFolder();
  const run = async (cache: 'auto' | 'off') => {
    const out = join(tempDir('mtm-stream-'), `stride1-${cache}`);
    const res = await runStage(streamPredict, { model, source: 'synthetic:0.05', syntheticNeurons: 6, calibration: 'none', strideBins: 1, cache, out }, {}, ctx());
    const header = JSON.parse(readFileSync(join(out, 'stream.json'), 'utf8'));
    const preds = await readNpy(join(out, 'predictions.npy'));
    return { header, preds: preds.data as Float32Array, shape: preds.shape, metrics: (res.metrics[0] as Metrics).values };
  };
  const cached = await run('auto');
  const windowed = await run('off');
  assert.is(cached.header.predictor, 'cached');
  assert.is(cached.header.summary.predictor, 'cached');
  assert.equal(cached.header.contextBins, [15, 29]); // 30-bin window: 29-bin caches, restarts 15 bins apart
  assert.is(windowed.header.predictor, 'windowed');
  assert.equal(cached.shape, [150, 6]);
  assert.equal(windowed.shape, [150, 6]);
  assert.is(cached.metrics.predictedBins, 150);
  // Bins 0..29 are predicted from bins 0.. on both paths (the window is still filling).
  for (let i = 0; i < 30 * 6; i++) assert.ok(Math.abs(cached.preds[i] - windowed.preds[i]) < 1e-5, `entry ${i}`);
  // Later the cached context is shorter than the windowed one's 29 bins, so predictions differ.
  let later = 0;
  for (let i = 40 * 6; i < 150 * 6; i++) later = Math.max(later, Math.abs(cached.preds[i] - windowed.preds[i]));
  assert.ok(later > 1e-6);
});

test('cached stride 1: heap and tensor count flat over a long stream', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const model = buildModel();
  const source = syntheticSpikeSource({ durationS: 600, nNeurons: 20, seed: 6 });
  const heap: number[] = [];
  const tensors: number[] = [];
  const s = await runStream({
    model, source, windowBins: 30, strideBins: 1, sessionId: 'fresh', calibration: { kind: 'none' },
    onBin: (b) => {
      if (b.binIndex % 3000 === 0) {
        gc();
        heap.push(process.memoryUsage().heapUsed);
        tensors.push(tf.memory().numTensors);
      }
    },
  });
  assert.is(s.predictor, 'cached');
  assert.is(s.predictedBins, 30_000);
  assert.is(s.passMs.passes, 30_000);
  const growth = heap[heap.length - 1] - heap[1];
  assert.ok(growth < 1.5e6, `heap grew ${(growth / 1e6).toFixed(2)} MB over ${s.bins} bins: ${heap.map((h) => (h / 1e6).toFixed(1)).join(', ')}`);
  assert.ok(tensors.every((t) => t === tensors[0]), `tensors: ${tensors.join(', ')}`);
  model.dispose();
});

test.run();
