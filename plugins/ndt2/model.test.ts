import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import type { ArchitectureModel, ModelInput, SessionSpec } from '../../core/architecture.ts';
import type { z } from 'zod';
import { loadPlugin } from '../../app/di/bootstrap.ts';
import { unwrapSchema } from '../../core/registry.ts';
import { applyMask, sampleMask } from '../../core/masking/masking.ts';
import { MASKING_MODES, type MaskedBatch, type MaskingMode } from '../../core/masking/types.ts';
import { createRng } from '../../core/rng.ts';
import { initBackend } from '../../core/tensor/backend.ts';
import { batchTensors } from '../../core/tensor/batch.ts';
import { attentionBias } from '../../core/tensor/layers.ts';
import { poissonNll } from '../../core/tensor/loss.ts';
import * as tf from '../../core/tensor/tf.ts';
import { ndt2Architecture } from './architecture.ts';
import { estimatePeakBytes, Ndt2Model, patchAttentionBias } from './model.ts';

await initBackend();

const B = 4;
const T = 8;
const N = 9;
const P = 4; // N = 9 -> 3 patches, the last holding 1 neuron and 3 padded slots
const tiny = { patchSize: P, dModel: 16, layers: 2, heads: 2, mlpDim: 32, maxBins: T, maxNeurons: 16 };
const regions = Array.from({ length: N }, (_, n) => ['CA1', 'LP', 'VISp'][n % 3]);

function build(config: Record<string, unknown> = {}, sessions: SessionSpec[] = [{ sessionId: 's1', nNeurons: N, nBins: T }], seed = 1): Ndt2Model {
  return ndt2Architecture.build({ ...tiny, ...config }, { sessions, seed }) as Ndt2Model;
}

/** Counts drawn from a known rate: a per-neuron baseline times a shared slow oscillation. */
function simulated(seed: number, nNeurons = N): Int32Array {
  const rng = createRng(seed);
  const out = new Int32Array(B * T * nNeurons);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let n = 0; n < nNeurons; n++) {
        const rate = Math.exp(-0.3 + 0.1 * n - 0.45 + Math.sin((2 * Math.PI * t) / T + n));
        out[(b * T + t) * nNeurons + n] = rng.poisson(rate);
      }
    }
  }
  return out;
}

function maskedBatch(mode: MaskingMode, seed: number, sessionId = 's1'): MaskedBatch {
  const target = simulated(seed);
  const shape = { trials: B, bins: T, neurons: N };
  const d = sampleMask(shape, regions, mode, createRng(seed));
  return {
    kind: 'masked-batch', sessionId, split: 'train', epoch: 0, epochs: 1, batchIndex: 0, batchesInEpoch: 1,
    trialIndex: Int32Array.from({ length: B }, (_, i) => i), shape, binSizeMs: 20,
    input: applyMask(target, d.masked), target, lossMask: d.lossMask, masked: d.masked, mode: d.mode, causal: d.causal, maskedRegion: d.region, regions,
  };
}

function loss(model: ArchitectureModel, batch: MaskedBatch, training: boolean): number {
  const t = batchTensors(batch);
  const l = tf.tidy(() => poissonNll(model.forward(t.model, { training }), t.target, t.lossMask));
  const v = l.dataSync()[0];
  l.dispose();
  t.dispose();
  return v;
}

function step(model: ArchitectureModel, opt: tf.Optimizer, batch: MaskedBatch): number {
  const t = batchTensors(batch);
  const l = opt.minimize(() => poissonNll(model.forward(t.model, { training: true }), t.target, t.lossMask), true, model.trainableVariables())!;
  const v = l.dataSync()[0];
  l.dispose();
  t.dispose();
  return v;
}

function predict(model: ArchitectureModel, x: ModelInput): Float32Array {
  const y = model.forward(x, { training: false });
  const v = y.dataSync() as Float32Array;
  y.dispose();
  return v;
}

const counts3d = (c: ArrayLike<number>, n = N) => tf.tensor3d(Float32Array.from(c), [B, T, n]);

test('shapes: log-rates [B, T, N_s] per session, padding cropped; embeddings cover the largest session', () => {
  const model = build({ sessionTokens: true, maxNeurons: 1 }, [{ sessionId: 'a', nNeurons: N, nBins: T }, { sessionId: 'b', nNeurons: 4, nBins: 20 }, { sessionId: 'c', nNeurons: 13, nBins: 5 }]);
  assert.is(model.config.maxBins, 20, 'time embedding grows to the longest session');
  assert.is(model.config.maxNeurons, 13, 'space embedding grows to the largest session');
  assert.is(model.spacePatches, 4);
  assert.equal([model.patchesOf('a'), model.patchesOf('b'), model.patchesOf('c')], [3, 1, 4], 'ceil(N / P): no patch is all padding, an exact multiple has none');
  assert.is(model.config.dropout, 0.2);
  const ya = model.forward({ sessionId: 'a', input: tf.zeros([3, T, N]) as tf.Tensor3D, mode: 'neuron', causal: false }, { training: false });
  const yb = model.forward({ sessionId: 'b', input: tf.zeros([2, 20, 4]) as tf.Tensor3D, mode: 'temporal', causal: true }, { training: true });
  const yc = model.forward({ sessionId: 'c', input: tf.ones([1, 5, 13]) as tf.Tensor3D, mode: 'causal', causal: true }, { training: false });
  assert.equal(ya.shape, [3, T, N]);
  assert.equal(yb.shape, [2, 20, 4]);
  assert.equal(yc.shape, [1, 5, 13]);
  assert.ok((yc.dataSync() as Float32Array).every(Number.isFinite));
  tf.dispose([ya, yb, yc]);
  const w = model.weights();
  for (const n of ['patchEmbed.in1.weight', 'patchEmbed.in2.bias', 'timeEmbed', 'spaceEmbed', 'prompts', 'encoder.1.attn.qkv.weight', 'finalNorm.weight', 'readout.weight', 'sessions.a.token', 'sessions.c.token']) assert.ok(n in w, n);
  assert.equal(w['patchEmbed.in1.weight'].shape, [P, 2 * P]);
  assert.equal(w['patchEmbed.in2.weight'].shape, [2 * P, 16]);
  assert.equal(w['timeEmbed'].shape, [20, 16]);
  assert.equal(w['spaceEmbed'].shape, [4, 16]);
  assert.equal(w['readout.weight'].shape, [16, P], 'per-token readout D -> P');
  assert.equal(w['prompts'].shape, [4, 16]);
  assert.is(model.paramCount(), Object.values(w).reduce((s, v) => s + v.size, 0));
  assert.throws(() => model.forward({ sessionId: 'zz', input: tf.zeros([1, T, N]) as tf.Tensor3D, mode: 'neuron', causal: false }, { training: false }), /no weights for session zz \(known: a, b, c\)/);
  assert.throws(() => model.forward({ sessionId: 'b', input: tf.zeros([1, T, N]) as tf.Tensor3D, mode: 'neuron', causal: false }, { training: false }), /has 9 neurons, its weights 4/);
  assert.throws(() => model.addSession({ sessionId: 'big', nNeurons: 17, nBins: T }), /17 neurons \(5 patches of 4\), more than the space embedding's 4 patches \(maxNeurons 13\)/);
  model.dispose();
});

test('padding: padded slots act exactly as absent neurons, and the output is cropped so the loss never sees them', () => {
  // Same weights (all shared but the [1, D] session token, loaded by name), one session of 9
  // neurons and one of 12 whose last 3 neurons are silent: the 9-neuron session's padded slots
  // must give exactly the 12-neuron session's outputs for the 9 real neurons.
  // neuronBias off: its per-neuron weights have the session's own neuron count.
  const small = build({ sessionTokens: true, neuronBias: false }, [{ sessionId: 's1', nNeurons: N, nBins: T }], 3);
  const full = build({ sessionTokens: true, neuronBias: false }, [{ sessionId: 's1', nNeurons: 12, nBins: T }], 4);
  full.loadWeights(small.weights());
  const base = simulated(5);
  const padded = new Float32Array(B * T * 12);
  for (let r = 0; r < B * T; r++) for (let n = 0; n < N; n++) padded[r * 12 + n] = base[r * N + n];
  for (const [mode, causal] of [['neuron', false], ['causal', true]] as const) {
    const x9 = counts3d(base);
    const x12 = tf.tensor3d(padded, [B, T, 12]);
    const y9 = predict(small, { sessionId: 's1', input: x9, mode, causal });
    const y12 = predict(full, { sessionId: 's1', input: x12, mode, causal });
    assert.is(y9.length, B * T * N);
    for (let r = 0; r < B * T; r++) for (let n = 0; n < N; n++) assert.ok(Math.abs(y9[r * N + n] - y12[r * 12 + n]) < 1e-5, `${mode}: entry ${r},${n}`);
    tf.dispose([x9, x12]);
  }
  // The readout's padded slots get no gradient from a loss over the cropped output: only the
  // last patch has padding, so slots 1..3 of the readout still learn from patches 0 and 1, but
  // a session of exactly 1 neuron (one patch, 3 padded slots) leaves those slots untouched.
  const one = build({}, [{ sessionId: 'one', nNeurons: 1, nBins: T }], 5);
  const before = one.weights()['readout.weight'].arraySync() as number[][];
  const biasBefore = Array.from(one.weights()['readout.bias'].dataSync());
  const x = tf.tensor3d(Float32Array.from({ length: B * T }, (_, i) => i % 3), [B, T, 1]);
  const opt = tf.train.sgd(0.1);
  opt.minimize(() => poissonNll(one.forward({ sessionId: 'one', input: x, mode: 'temporal', causal: false }, { training: true }), x, tf.onesLike(x)), false, one.trainableVariables());
  const after = one.weights()['readout.weight'].arraySync() as number[][];
  const biasAfter = Array.from(one.weights()['readout.bias'].dataSync());
  assert.ok(after.some((row, i) => row[0] !== before[i][0]), 'the real slot learns');
  assert.equal(after.map((row) => row.slice(1)), before.map((row) => row.slice(1)), 'padded slots never trained');
  assert.equal(biasAfter.slice(1), biasBefore.slice(1));
  assert.ok(biasAfter[0] !== biasBefore[0]);
  tf.dispose([x]);
  opt.dispose();
  for (const m of [small, full, one]) m.dispose();
});

test('key padding: tokens of padded bins (binValid = 0) never influence real bins', () => {
  const model = build({ sessionTokens: true, layers: 3 }, undefined, 6);
  const base = simulated(8);
  const binValid = new Uint8Array(B * T).fill(1);
  // Trial 0 loses its last 3 bins, trial 2 its bin 1: a mask is per trial, not per batch.
  for (const t of [5, 6, 7]) binValid[t] = 0;
  binValid[2 * T + 1] = 0;
  const changed = base.slice();
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) if (!binValid[b * T + t]) for (let n = 0; n < N; n++) changed[(b * T + t) * N + n] += 4;
  for (const [mode, causal] of [['neuron', false], ['intra-region', false], ['causal', true]] as const) {
    const x0 = counts3d(base);
    const x1 = counts3d(changed);
    const y0 = predict(model, { sessionId: 's1', input: x0, mode, causal, binValid });
    const y1 = predict(model, { sessionId: 's1', input: x1, mode, causal, binValid });
    for (let r = 0; r < B * T; r++) {
      if (!binValid[r]) continue;
      for (let n = 0; n < N; n++) assert.ok(Math.abs(y1[r * N + n] - y0[r * N + n]) < 1e-5, `${mode}: real bin ${r} neuron ${n} changed`);
    }
    // Without the mask the same change reaches real bins, so the check above can fail.
    const open0 = predict(model, { sessionId: 's1', input: x0, mode, causal });
    const open1 = predict(model, { sessionId: 's1', input: x1, mode, causal });
    assert.ok(open1.some((v, i) => binValid[Math.floor(i / N)] && Math.abs(v - open0[i]) > 1e-4), `${mode}: unmasked change is visible`);
    tf.dispose([x0, x1]);
  }
  assert.throws(() => model.forward({ sessionId: 's1', input: counts3d(base), mode: 'neuron', causal: false, binValid: new Uint8Array(3) }, { training: false }), /binValid has 3 entries, expected 4 x 8/);
  model.dispose();
});

test('attention bias: with one patch per bin it is core attentionBias; with more, a bin sees its own bin whole', () => {
  const valid = Uint8Array.from([1, 1, 0, 1, 1, 0, 1, 1]);
  for (const causal of [false, true]) {
    for (const prefix of [0, 2]) {
      for (const keyValid of [undefined, valid]) {
        const mine = patchAttentionBias({ batch: 2, prefix, bins: 4, patches: 1, causal, binValid: keyValid });
        const core = attentionBias({ batch: 2, prefix, length: 4, causal, keyValid });
        if (!core) {
          assert.is(mine, null);
          continue;
        }
        assert.equal(mine!.shape, core.shape);
        assert.equal(Array.from(mine!.dataSync()), Array.from(core.dataSync()), `causal ${causal} prefix ${prefix} valid ${!!keyValid}`);
        tf.dispose([mine!, core]);
      }
    }
  }
  // 1 prefix token, 3 bins x 2 patches; bin 1 of trial 0 padded.
  const bias = patchAttentionBias({ batch: 1, prefix: 1, bins: 3, patches: 2, causal: true, binValid: Uint8Array.from([1, 0, 1]) })!;
  const rows = (bias.arraySync() as number[][][][])[0][0].map((r) => r.map((v) => (v === 0 ? 1 : 0)).join(''));
  assert.equal(rows, ['1000000', '1110000', '1110000', '1110000', '1110000', '1110011', '1110011']);
  bias.dispose();
});

test('one Adam step lowers the loss on Poisson counts; training keeps improving', () => {
  const model = build({ dropout: 0, embedDropout: 0 });
  const opt = tf.train.adam(1e-2);
  const batch = maskedBatch('neuron', 3);
  const before = loss(model, batch, false);
  step(model, opt, batch);
  const after = loss(model, batch, false);
  assert.ok(after < before, `loss ${before} -> ${after}`);
  for (let i = 0; i < 40; i++) step(model, opt, maskedBatch('temporal', 10 + i));
  assert.ok(loss(model, batch, false) < after - 0.05, 'keeps improving over steps');
  opt.dispose();
  model.dispose();
});

test('dropout follows ForwardOptions.seed when given (resumable training), the model\'s own generator otherwise', () => {
  const x: ModelInput = { sessionId: 's1', input: tf.tensor3d(maskedBatch('neuron', 4).input, [B, T, N]), mode: 'neuron', causal: false };
  const off = { dropout: 0, embedDropout: 0, attentionDropout: 0 };
  // Each dropout site alone: one that drew on the model's generator would differ between two
  // calls with the same seed.
  for (const rates of [{ embedDropout: 0.3 }, { dropout: 0.3 }, { attentionDropout: 0.3 }, { dropout: 0.3, embedDropout: 0.3, attentionDropout: 0.3 }]) {
    const model = build({ ...off, ...rates, sessionTokens: true });
    const run = (training: boolean, seed?: number) => {
      const y = model.forward(x, { training, seed });
      const v = Array.from(y.dataSync());
      y.dispose();
      return v;
    };
    const what = JSON.stringify(rates);
    assert.equal(run(true, 11), run(true, 11), `${what}: same seed, same dropout`);
    assert.not.equal(run(true, 11), run(true, 12), `${what}: another seed, other units dropped`);
    assert.not.equal(run(true), run(true), `${what}: unseeded calls draw on`);
    assert.not.equal(run(true, 11), run(false, 11), `${what}: training drops units`);
    assert.equal(run(false, 11), run(false), `${what}: evaluation has no dropout, seed or not`);
    model.dispose();
  }
  x.input.dispose();
});

test('no tensors leak across 20 training steps', () => {
  const model = build({ sessionTokens: true, sessionInput: true });
  const opt = tf.train.adam(1e-3);
  step(model, opt, maskedBatch('neuron', 1));
  const n = tf.memory().numTensors;
  for (let i = 0; i < 20; i++) step(model, opt, maskedBatch(MASKING_MODES[i % 5], i));
  assert.is(tf.memory().numTensors, n);
  opt.dispose();
  model.dispose();
});

test('every masking mode trains a step (prompt, session and causal paths included)', () => {
  const model = build({ sessionTokens: true, sessionInput: true });
  for (const mode of MASKING_MODES) {
    // A fresh plain SGD per mode, so only weights with a gradient from this batch move.
    const opt = tf.train.sgd(0.05);
    const before = Object.fromEntries(Object.entries(model.weights()).map(([k, v]) => [k, v.dataSync().slice()]));
    const batch = maskedBatch(mode, 5);
    assert.is(batch.causal, mode === 'causal');
    const l = step(model, opt, batch);
    assert.ok(Number.isFinite(l) && l > 0, `${mode}: loss ${l}`);
    const changed = (name: string) => model.weights()[name].dataSync().some((v, i) => v !== before[name][i]);
    for (const name of ['encoder.0.attn.qkv.weight', 'patchEmbed.in1.weight', 'timeEmbed', 'spaceEmbed', 'readout.weight', 'sessions.s1.token', 'sessions.s1.input.weight']) {
      assert.ok(changed(name), `${mode}: ${name} did not update`);
    }
    // Only the batch's own prompt token learns (temporal has none).
    const rows = model.weights()['prompts'].arraySync() as number[][];
    const prevRows = Array.from({ length: 4 }, (_, r) => Array.from(before['prompts'].slice(r * 16, (r + 1) * 16)));
    const moved = rows.map((row, r) => row.some((v, i) => v !== prevRows[r][i]));
    assert.equal(moved, ['neuron', 'causal', 'inter-region', 'intra-region'].map((m) => m === mode), `${mode}: prompt rows moved ${moved}`);
    opt.dispose();
  }
  model.dispose();
});

test('causal mode: future bins never change an earlier prediction (prompt and session tokens included); a bin sees all its patches', () => {
  for (const sessionInput of [false, true]) {
    const model = build({ sessionTokens: true, sessionInput, layers: 3 }, undefined, 4);
    const base = simulated(7);
    for (const mode of ['causal', 'neuron', 'inter-region'] as const) {
      const x0 = counts3d(base);
      const y0 = predict(model, { sessionId: 's1', input: x0, mode, causal: true });
      for (const k of [1, 4, T - 1]) {
        const changed = base.slice();
        for (let b = 0; b < B; b++) for (let t = k; t < T; t++) for (let n = 0; n < N; n++) changed[(b * T + t) * N + n] += 3;
        const x1 = counts3d(changed);
        const y1 = predict(model, { sessionId: 's1', input: x1, mode, causal: true });
        for (let i = 0; i < y0.length; i++) {
          const t = Math.floor(i / N) % T;
          if (t < k) assert.ok(Math.abs(y1[i] - y0[i]) < 1e-5, `${mode}: bin ${t} changed when bins >= ${k} did (sessionInput ${sessionInput})`);
        }
        assert.ok(y1.some((v, i) => Math.floor(i / N) % T >= k && Math.abs(v - y0[i]) > 1e-4), 'later bins do change');
        // The same change without causal attention reaches earlier bins: the check above can fail.
        const open0 = predict(model, { sessionId: 's1', input: x0, mode, causal: false });
        const open1 = predict(model, { sessionId: 's1', input: x1, mode, causal: false });
        assert.ok(Math.abs(open1[0] - open0[0]) > 1e-5);
        x1.dispose();
      }
      // Neuron 8 (the last patch) at bin 3 reaches neuron 0 (the first patch) at bin 3 and later,
      // never earlier: causal attention is by bin, not by token index.
      const changed = base.slice();
      for (let b = 0; b < B; b++) changed[(b * T + 3) * N + 8] += 5;
      const x2 = counts3d(changed);
      const y2 = predict(model, { sessionId: 's1', input: x2, mode, causal: true });
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < 3; t++) assert.ok(Math.abs(y2[(b * T + t) * N] - y0[(b * T + t) * N]) < 1e-5);
        assert.ok(Math.abs(y2[(b * T + 3) * N] - y0[(b * T + 3) * N]) > 1e-5, `${mode}: neuron 0 at bin 3 should see neuron 8 at bin 3`);
      }
      tf.dispose([x0, x2]);
    }
    model.dispose();
  }
});

test('per-session weights by session id: same neuron count, own tokens and input projections', () => {
  const model = build({ sessionTokens: true, sessionInput: true }, [{ sessionId: 'left', nNeurons: N, nBins: T }, { sessionId: 'right', nNeurons: N, nBins: T }]);
  const w = model.weights();
  assert.equal(w['sessions.left.input.weight'].shape, [N, 3 * P], 'N_s -> patches x P');
  assert.not.equal(Array.from(w['sessions.left.token'].dataSync()), Array.from(w['sessions.right.token'].dataSync()));
  const x = counts3d(simulated(2));
  const yl = predict(model, { sessionId: 'left', input: x, mode: 'neuron', causal: false });
  const yr = predict(model, { sessionId: 'right', input: x, mode: 'neuron', causal: false });
  assert.not.equal(Array.from(yl), Array.from(yr));
  // Training on one session leaves the other's weights alone.
  const rightBefore = [Array.from(w['sessions.right.input.weight'].dataSync()), Array.from(w['sessions.right.token'].dataSync())];
  const opt = tf.train.adam(1e-2);
  step(model, opt, maskedBatch('neuron', 4, 'left'));
  assert.equal([Array.from(model.weights()['sessions.right.input.weight'].dataSync()), Array.from(model.weights()['sessions.right.token'].dataSync())], rightBefore);
  assert.is(model.trainableVariables({ sessionId: 'left' }).length, 4, 'input weight, input bias, token, neuron bias');
  assert.is(model.trainableVariables('sessions').length, 8);
  assert.ok(model.trainableVariables('all').length > 8);
  // Ids with dots or slashes cannot collide with each other's weight names.
  model.addSession({ sessionId: 'a.b/c', nNeurons: 3, nBins: T });
  model.addSession({ sessionId: 'a', nNeurons: 3, nBins: T });
  assert.is(model.trainableVariables({ sessionId: 'a' }).length, 4);
  assert.throws(() => model.addSession({ sessionId: 'a', nNeurons: 3, nBins: T }), /session a already has weights/);
  assert.throws(() => model.addSession({ sessionId: 'long', nNeurons: 3, nBins: T + 1 }), /9 bins, more than the time embedding's maxBins 8/);
  assert.equal(model.sessions().map((s) => s.sessionId), ['left', 'right', 'a.b/c', 'a']);
  // Without session weights a session still exists (shared weights only) and has nothing of its own.
  const plain = build({ neuronBias: false });
  assert.is(plain.trainableVariables({ sessionId: 's1' }).length, 0);
  assert.ok(plain.hasSession('s1'));
  opt.dispose();
  x.dispose();
  model.dispose();
  plain.dispose();
});

test('weights save and load by name into a fresh model (and into one with an extra session)', () => {
  const cfg = { sessionTokens: true };
  const a = build(cfg, undefined, 1);
  const b = build(cfg, undefined, 2);
  const x = counts3d(simulated(3));
  const input: ModelInput = { sessionId: 's1', input: x, mode: 'intra-region', causal: false };
  assert.not.equal(Array.from(predict(a, input)), Array.from(predict(b, input)));
  // A saved copy (not the live variables), as a writer would hold it.
  const saved = tf.tidy(() => Object.fromEntries(Object.entries(a.weights()).map(([k, v]) => [k, tf.clone(v)])));
  b.loadWeights(saved);
  assert.equal(Array.from(predict(b, input)), Array.from(predict(a, input)));
  const c = build(cfg, [{ sessionId: 's1', nNeurons: N, nBins: T }, { sessionId: 'new', nNeurons: 5, nBins: T }], 3);
  assert.throws(() => c.loadWeights(saved, { source: 'run/model.json' }), /in run\/model.json: missing weight 'sessions.new.token'/);
  c.loadWeights(saved, { allowMissing: true });
  assert.equal(Array.from(predict(c, input)), Array.from(predict(a, input)));
  const bigger = build({ ...cfg, dModel: 32 });
  assert.throws(() => bigger.loadWeights(saved), /'timeEmbed' has shape \[8,16\], the model expects \[8,32\]/);
  tf.dispose(Object.values(saved));
  for (const m of [a, b, c, bigger]) m.dispose();
  x.dispose();
});

test('a batch whose attention cannot fit the wasm heap is refused with the way out, before it aborts the process', () => {
  // P = 1 on 100 neurons x 100 bins: 10 000 tokens, ~10 GB of attention scores to train.
  const model = build({ patchSize: 1, maxBins: 100, maxNeurons: 100 }, [{ sessionId: 's1', nNeurons: 100, nBins: 100 }]);
  const x = tf.zeros([1, 100, 100]) as tf.Tensor3D;
  const big = { batch: 1, tokens: 10_001, heads: 2, dModel: 16, mlpDim: 32, layers: 2 };
  assert.ok(estimatePeakBytes({ ...big, training: true }) > 4 * 2 ** 30);
  assert.ok(estimatePeakBytes({ ...big, training: false }) < estimatePeakBytes({ ...big, training: true }));
  // Attention dominates: doubling the tokens nearly quadruples the estimate.
  const ratio = estimatePeakBytes({ ...big, tokens: 20_002, training: true }) / estimatePeakBytes({ ...big, training: true });
  assert.ok(ratio > 3.9 && ratio <= 4, `ratio ${ratio}`);
  if (tf.getBackend() === 'wasm') {
    assert.throws(() => model.forward({ sessionId: 's1', input: x, mode: 'neuron', causal: false }, { training: true }), /batch of 1 trials x 10000 tokens \(100 bins x 100 patches of 1 neurons\) needs about \d+\.\d GiB to train, more than the wasm backend's 4 GiB heap: raise patchSize/);
  }
  // The same data in patches of 25 (400 tokens) runs.
  const ok = build({ patchSize: 25, maxBins: 100, maxNeurons: 100 }, [{ sessionId: 's1', nNeurons: 100, nBins: 100 }]);
  const y = ok.forward({ sessionId: 's1', input: x, mode: 'neuron', causal: false }, { training: true });
  assert.equal(y.shape, [1, 100, 100]);
  tf.dispose([x, y]);
  model.dispose();
  ok.dispose();
});

test('readout init without neuronBias: the shared bias starts at the log of the pooled mean training count; later sessions leave it alone', () => {
  const a = Array.from({ length: N }, (_, n) => 0.01 * (n + 1)); // mean 0.05
  const b = [0.2, 0.3, 0.1, 0.2]; // with a: 13 neurons, sum 0.45 + 0.8 = 1.25
  const seeded = build({ neuronBias: false }, [{ sessionId: 's1', nNeurons: N, nBins: T, meanCounts: a }, { sessionId: 's2', nNeurons: 4, nBins: T, meanCounts: b }]);
  const plain = build({ neuronBias: false }, [{ sessionId: 's1', nNeurons: N, nBins: T }, { sessionId: 's2', nNeurons: 4, nBins: T }]);
  const bias = Array.from(seeded.weights()['readout.bias'].dataSync());
  assert.is(bias.length, P);
  for (const v of bias) assert.ok(Math.abs(v - Math.log(1.25 / 13)) < 1e-6, `bias ${v}`);
  for (const [name, w] of Object.entries(plain.weights())) {
    if (name !== 'readout.bias') assert.equal(Array.from(w.dataSync()), Array.from(seeded.weights()[name].dataSync()), name);
  }
  // The predicted rates sit around the pooled mean, not around one count per bin.
  const x = counts3d(simulated(2));
  const y = predict(seeded, { sessionId: 's1', input: x, mode: 'neuron', causal: false });
  const meanRate = y.reduce((s, v) => s + Math.exp(v), 0) / y.length;
  assert.ok(meanRate > 1.25 / 13 / 3 && meanRate < (3 * 1.25) / 13, `mean predicted rate ${meanRate}`);
  assert.equal(seeded.sessions().map((s) => Object.keys(s).sort()), [['nBins', 'nNeurons', 'sessionId'], ['nBins', 'nNeurons', 'sessionId']]);
  seeded.addSession({ sessionId: 'later', nNeurons: 3, nBins: T, meanCounts: [5, 5, 5] });
  assert.equal(Array.from(seeded.weights()['readout.bias'].dataSync()), bias, 'a session added later meets a readout that is already trained');
  assert.throws(() => build({ neuronBias: false }, [{ sessionId: 's1', nNeurons: N, nBins: T, meanCounts: a.map(() => Number.NaN) }]), /meanCounts\[0\] is NaN/);
  x.dispose();
  seeded.dispose();
  plain.dispose();
});

test('neuronBias (default): each neuron starts at its own mean rate, at build and when a session is added; the shared bias stays put', () => {
  // Neuron 0 is a 0.25 Hz unit at 20 ms bins (0.005 counts/bin) sharing a patch with 1-3 counts/bin units.
  const means = Array.from({ length: N }, (_, n) => (n === 0 ? 0.005 : 0.1 * 2 ** (n % 5)));
  const seeded = build({}, [{ sessionId: 's1', nNeurons: N, nBins: T, meanCounts: means }]);
  const plain = build({}, [{ sessionId: 's1', nNeurons: N, nBins: T }]);
  const w = seeded.weights();
  Array.from(w['sessions.s1.neuronBias'].dataSync()).forEach((v, n) => assert.ok(Math.abs(v - Math.log(means[n])) < 1e-6, `neuron ${n}: ${v}`));
  assert.equal(Array.from(w['readout.bias'].dataSync()), Array.from(plain.weights()['readout.bias'].dataSync()), 'the shared bias keeps its default init');
  assert.equal(Array.from(plain.weights()['sessions.s1.neuronBias'].dataSync()), new Array(N).fill(0), 'no means: zeros');
  const x = counts3d(simulated(2));
  const meanRates = (m: Ndt2Model, sessionId: string) => {
    const y = predict(m, { sessionId, input: x, mode: 'neuron', causal: false });
    return Array.from({ length: N }, (_, n) => {
      let s = 0;
      for (let i = n; i < y.length; i += N) s += Math.exp(y[i]);
      return s / (y.length / N);
    });
  };
  const rates = meanRates(seeded, 's1');
  for (let n = 0; n < N; n++) assert.ok(rates[n] / means[n] > 1 / 3 && rates[n] / means[n] < 3, `neuron ${n}: ${rates[n]} vs ${means[n]}`);
  // A session added for fine-tuning gets biases from its own means, in its own (trainable) weights.
  const n0 = tf.memory().numTensors;
  plain.addSession({ sessionId: 'new', nNeurons: N, nBins: T, meanCounts: means });
  assert.is(tf.memory().numTensors, n0 + 1, 'one new variable, no leaked init tensor');
  assert.is(plain.trainableVariables({ sessionId: 'new' }).length, 1, 'the neuron bias trains with the session');
  const added = meanRates(plain, 'new');
  for (let n = 0; n < N; n++) assert.ok(added[n] / means[n] > 1 / 3 && added[n] / means[n] < 3, `added session, neuron ${n}: ${added[n]} vs ${means[n]}`);
  assert.throws(() => plain.addSession({ sessionId: 'bad', nNeurons: N, nBins: T, meanCounts: means.slice(1) }), /meanCounts has 8 values for 9 neurons/);
  assert.not.ok(plain.hasSession('bad'));
  x.dispose();
  seeded.dispose();
  plain.dispose();
});

test('bad config is refused naming the field; every field has a default and a description', () => {
  const sessions = [{ sessionId: 's', nNeurons: 2, nBins: 2 }];
  assert.throws(() => ndt2Architecture.build({ dModel: 10, heads: 4 }, { sessions, seed: 1 }), /dModel 10 is not divisible by heads 4/);
  assert.throws(() => ndt2Architecture.build({ patchSize: 0 }, { sessions, seed: 1 }), /ndt2 config: patchSize:/);
  assert.throws(() => ndt2Architecture.build({ layers: 'two' }, { sessions, seed: 1 }), /ndt2 config: layers:/);
  for (const [k, v] of Object.entries(ndt2Architecture.configSchema.shape)) {
    const u = unwrapSchema(v as z.ZodType);
    assert.ok(u.description && u.hasDefault, `${k} needs a default and a description`);
  }
  const defaults = ndt2Architecture.configSchema.parse({});
  assert.is(defaults.patchSize, 64);
  assert.is(defaults.layers, 2);
});

test('plugin manifest: plugins/ndt2 loads through the plugin loader and contributes ndt2', async () => {
  const { manifest } = await loadPlugin(dirname(fileURLToPath(import.meta.url)));
  assert.is(manifest.name, 'ndt2');
  assert.equal(manifest.architectures.map((a) => a.name), ['ndt2']);
  assert.is(manifest.architectures[0], ndt2Architecture);
});

test.run();
