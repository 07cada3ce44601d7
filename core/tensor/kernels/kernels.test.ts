// The native kernels must give tfjs's built-in results (to float32 rounding) on both backends
// they replace, forward and through gradients, and everything must keep working without them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createRng, type Rng } from '../../rng.ts';
import { initBackend } from '../backend.ts';
import { attentionBias, Encoder, LayerNorm, softsign, type ForwardContext } from '../layers.ts';
import { Linear } from '../linear.ts';
import { poissonNll } from '../loss.ts';
import { ParamStore } from '../params.ts';
import * as tf from '../tf.ts';
import { fastKernelStatus, registerFastKernels, unregisterFastKernels } from './index.ts';
import { loadNative, type NativeKernels } from './native.ts';
import { planBinary, planReduce, planTranspose } from './elementwise.ts';
import { dropoutMask, dropoutMaskValues, fastDropout } from './dropout.ts';
import { adamwUpdate, fusedKernelsActive, gelu, layerNorm } from './fused.ts';
import { gelu as layersGelu } from '../layers.ts';
import { AdamW } from '../../train/adamw.ts';

const { native, reason } = loadNative();
const rng = createRng(7);
const randn = (n: number, r: Rng = rng, scale = 1) => Float32Array.from({ length: n }, () => r.normal() * scale);

/** Max |a - e| must stay within atol + rtol * max|e| (float32 rounding of a different sum order). */
function close(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, what: string) {
  assert.is(actual.length, expected.length, `${what}: length`);
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) if (Number.isFinite(expected[i])) maxRef = Math.max(maxRef, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e)) {
      assert.ok(Number.isNaN(a), `${what}[${i}]: expected NaN, got ${a}`);
      continue;
    }
    if (!Number.isFinite(e)) {
      assert.is(a, e, `${what}[${i}]`);
      continue;
    }
    const err = Math.abs(a - e);
    if (!(err <= atol + rtol * Math.max(Math.abs(e), maxRef))) assert.unreachable(`${what}[${i}]: ${a} vs built-in ${e} (|diff| ${err})`);
  }
}

/** Runs f with the native kernels and with the built-ins on the current backend. */
function both(f: () => tf.Tensor | tf.Tensor[]): { fast: Float32Array[]; builtin: Float32Array[] } {
  const read = () => {
    const out = tf.tidy(f);
    const list = Array.isArray(out) ? out : [out];
    const vals = list.map((t) => Float32Array.from(t.dataSync()));
    tf.dispose(list);
    return vals;
  };
  const backend = tf.getBackend();
  registerFastKernels(backend);
  assert.ok(fastKernelStatus().enabled, 'fast kernels are on');
  const fast = read();
  unregisterFastKernels();
  const builtin = read();
  registerFastKernels(backend);
  return { fast, builtin };
}

function refGemm(A: Float32Array, B: Float32Array, batch: number, M: number, N: number, K: number, tA: boolean, tB: boolean, aS: number, bS: number) {
  const C = new Float64Array(batch * M * N);
  for (let b = 0; b < batch; b++)
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let p = 0; p < K; p++) s += (tA ? A[b * aS + p * M + i] : A[b * aS + i * K + p]) * (tB ? B[b * bS + j * K + p] : B[b * bS + p * N + j]);
        C[(b * M + i) * N + j] = s;
      }
  return C;
}

test('the addon is built and loads here (CI builds it at npm install)', () => {
  assert.ok(native, reason);
});

test('gemm: every transpose, odd sizes, batch strides (0 = broadcast), on each GEMM path and thread count', () => {
  const n = native as NativeKernels;
  const before = n.info();
  // OpenBLAS is opened on request when installed (Debian's libopenblas0); the built-in GEMM always.
  const hasBlas = n.configure({ blas: true }).gemm === 'openblas';
  const paths = hasBlas ? [true, false] : [false];
  const cases: [number, number, number, number, boolean, boolean, boolean][] = [
    // batch, M, N, K, tA, tB, broadcast B
    [1, 1, 1, 1, false, false, false],
    [3, 7, 5, 9, true, false, false],
    [2, 13, 17, 300, false, true, false], // K past one packed block (256)
    [4, 33, 19, 5, true, true, false],
    [5, 6, 16, 1, false, false, true],
    [1, 101, 97, 100, false, false, false], // large enough for the parallel path
    [2, 9, 2050, 3, false, true, false], // N past one packed block (2048)
    [1, 4, 3, 0, false, false, false], // K = 0: zeros
  ];
  try {
    for (const blas of paths) {
      for (const threads of [1, 2]) {
        n.configure({ blas, threads });
        for (const [batch, M, N, K, tA, tB, bcast] of cases) {
          const aS = M * K, bS = bcast ? 0 : K * N;
          const A = randn(batch * aS), B = randn(bcast ? K * N : batch * bS);
          const C = new Float32Array(batch * M * N).fill(Number.NaN);
          n.gemm(A, 0, aS, B, 0, bS, C, 0, batch, M, N, K, tA, tB);
          close(C, refGemm(A, B, batch, M, N, K, tA, tB, aS, bS), 2e-6 * Math.max(K, 1), 1e-6, `gemm ${blas ? 'openblas' : 'builtin'} x${threads} ${batch}x${M}x${N}x${K} tA=${tA} tB=${tB}`);
        }
      }
    }
    assert.throws(() => n.gemm(new Float32Array(4), 0, 4, new Float32Array(4), 0, 4, new Float32Array(4), 0, 2, 2, 2, 2, false, false), /past the end/);
  } finally {
    n.configure({ blas: before.gemm === 'openblas', threads: before.threads });
  }
});

test('plans: broadcasts merged, reductions as [outer, n, inner], transposes with merged axes', () => {
  assert.equal(Array.from(planBinary([2, 3, 4], [4])!.dims), [2, 6, 4, 4, 1, 0, 1]);
  assert.equal(Array.from(planBinary([5, 1], [1, 6])!.dims), [2, 5, 6, 1, 0, 0, 1]);
  assert.equal(planBinary([2, 3], [4]), undefined);
  assert.equal(planReduce([7, 9], [0], false), { outShape: [9], outer: 1, n: 7, inner: 9 });
  assert.equal(planReduce([3, 1, 4, 5], [1, 2], true), { outShape: [3, 1, 1, 5], outer: 3, n: 4, inner: 5 });
  assert.equal(planReduce([3, 4, 5], [0, 2], false), undefined);
  assert.equal(Array.from(planTranspose([2, 3, 4, 5], [0, 2, 1, 3])), [4, 2, 3, 4, 5, 0, 2, 1, 3]);
  assert.equal(Array.from(planTranspose([2, 3, 4], [1, 2, 0])), [2, 2, 12, 1, 0]);
  assert.equal(Array.from(planTranspose([1, 5, 1], [2, 1, 0])), [1, 5, 0]);
});

const rn = (shape: number[], scale = 1) => tf.tensor(randn(shape.reduce((p, d) => p * d, 1), rng, scale), shape);

for (const backend of ['wasm', 'cpu'] as const) {
  test(`${backend}: matMul of every shape and transpose gives the built-in result`, async () => {
    await initBackend({ force: backend });
    const cases: [number[], number[], boolean, boolean][] = [
      [[1, 5, 7], [1, 7, 3], false, false],
      [[13, 1], [1, 9], false, false],
      [[7, 13], [9, 13], false, true],
      [[13, 7], [13, 9], true, false],
      [[13, 7], [9, 13], true, true],
      [[2, 3, 5, 4], [2, 3, 4, 6], false, false],
      [[2, 3, 5, 4], [2, 3, 6, 4], false, true],
      [[5, 4], [2, 3, 4, 6], false, false], // one matrix times a batch
      [[2, 3, 4, 5], [5, 6], false, false],
      [[2, 1, 5, 4], [1, 3, 4, 6], false, false], // general broadcast: the built-in handles it
      [[3, 101, 32], [3, 101, 32], false, true],
    ];
    for (const [as, bs, tA, tB] of cases) {
      const a = rn(as), b = rn(bs);
      const { fast, builtin } = both(() => tf.matMul(a, b, tA, tB));
      close(fast[0], builtin[0], 1e-5, 1e-5, `${backend} matMul ${as} x ${bs} tA=${tA} tB=${tB}`);
      tf.dispose([a, b]);
    }
  });

  test(`${backend}: unary, binary, reductions, softmax, transpose match the built-ins (odd and large sizes)`, async () => {
    await initBackend({ force: backend });
    const special = tf.tensor1d([0, -0, 1e-30, -1e-30, 0.5, -0.5, 1.5, -2.5, 30, -30, 88, 89, -87, -104, 1e-40, Number.NaN, Infinity, -Infinity]);
    const wide = rn([40001], 3); // past the threshold for using both threads
    const odd = rn([3, 7, 5], 2);
    const positive = tf.add(tf.abs(rn([40001], 3)), 1e-3);
    const unary: [string, (x: tf.Tensor) => tf.Tensor][] = [
      ['exp', tf.exp], ['erf', tf.erf], ['neg', tf.neg], ['abs', tf.abs], ['square', tf.square], ['floor', tf.floor],
      ['step', (x) => tf.step(x, 0.25)], ['reciprocal', tf.reciprocal], ['relu', tf.relu], ['sigmoid', tf.sigmoid],
    ];
    for (const [name, f] of unary) {
      for (const x of [special, wide, odd]) {
        const { fast, builtin } = both(() => f(x));
        close(fast[0], builtin[0], 2e-6, 3e-7, `${backend} ${name} [${x.shape}]`);
      }
    }
    for (const [name, f] of [['sqrt', tf.sqrt], ['rsqrt', tf.rsqrt], ['log', tf.log]] as const) {
      const { fast, builtin } = both(() => [f(positive), f(tf.tensor1d([0, 1, 2, 1e-30, 3e-39, Infinity, -1]))]);
      close(fast[0], builtin[0], 2e-6, 3e-7, `${backend} ${name}`);
      close(fast[1], builtin[1], 2e-6, 3e-7, `${backend} ${name} special`);
    }
    const pairs: [number[], number[]][] = [[[3, 7], [3, 7]], [[3, 1], [1, 4]], [[2, 3, 5], [5]], [[], [5, 6]], [[2, 1, 4], [2, 3, 1]], [[1], [1]], [[200, 300], [300]], [[200, 1], [200, 300]]];
    const binary: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
      ['add', tf.add], ['sub', tf.sub], ['mul', tf.mul], ['div', tf.div], ['maximum', tf.maximum], ['minimum', tf.minimum], ['squaredDifference', tf.squaredDifference],
    ];
    for (const [as, bs] of pairs) {
      const a = rn(as), b = rn(bs);
      for (const [name, f] of binary) {
        const { fast, builtin } = both(() => f(a, b));
        close(fast[0], builtin[0], 1e-6, 1e-7, `${backend} ${name} [${as}] [${bs}]`);
      }
      tf.dispose([a, b]);
    }
    const big = rn([4, 30, 500]);
    const reductions: [tf.Tensor, number | number[] | undefined, boolean][] = [
      [odd, undefined, false], [odd, 0, false], [odd, 1, true], [odd, -1, false], [odd, [0, 1], false], [odd, [1, 2], true], [odd, [0, 2], false],
      [rn([3, 1, 4]), 1, false], [big, 0, false], [big, 2, false], [big, [0, 1], true], [big, undefined, false],
    ];
    for (const [x, axis, keep] of reductions) {
      const { fast, builtin } = both(() => [tf.sum(x, axis, keep), tf.mean(x, axis, keep)]);
      close(fast[0], builtin[0], 1e-5, 1e-6, `${backend} sum [${x.shape}] axis ${axis}`);
      close(fast[1], builtin[1], 1e-5, 1e-6, `${backend} mean [${x.shape}] axis ${axis}`);
    }
    const masked = tf.add(rn([2, 3, 101, 101], 4), tf.mul(tf.cast(tf.greater(rn([1, 1, 101, 101]), 1), 'float32'), -1e9));
    for (const x of [rn([4, 7]), masked, rn([2, 5])]) {
      const { fast, builtin } = both(() => tf.softmax(x));
      close(fast[0], builtin[0], 1e-6, 1e-7, `${backend} softmax [${x.shape}]`);
    }
    const perms: [number[], number[]][] = [[[2, 3, 4, 5], [0, 2, 1, 3]], [[300, 200], [1, 0]], [[3, 4, 5], [2, 0, 1]], [[3, 1, 5], [2, 1, 0]], [[16, 4, 101, 32], [0, 2, 1, 3]], [[5, 7], [0, 1]], [[2, 3, 9, 11], [0, 1, 3, 2]], [[3, 17, 20], [0, 2, 1]]];
    for (const [shape, perm] of perms) {
      const x = rn(shape);
      const xi = tf.cast(tf.mul(x, 100), 'int32');
      const { fast, builtin } = both(() => [tf.transpose(x, perm), tf.cast(tf.transpose(xi, perm), 'float32')]);
      close(fast[0], builtin[0], 0, 0, `${backend} transpose [${shape}] ${perm}`);
      close(fast[1], builtin[1], 0, 0, `${backend} transpose int32 [${shape}] ${perm}`);
    }
    tf.dispose([special, wide, odd, positive, big, masked]);
  });

  test(`${backend}: slice, split and concat (and their gradients, and Mean/Sum gradients) match the built-ins`, async () => {
    await initBackend({ force: backend });
    const x = rn([4, 7, 9]);
    const xi = tf.cast(tf.mul(x, 50), 'int32');
    const [wide, y, empty, p, q, r] = [rn([1616, 384]), rn([4, 2, 9]), rn([4, 0, 9]), rn([2, 3]), rn([2, 5]), rn([2, 1])];
    const { fast, builtin } = both(() => [
      tf.slice(x, [1, 2, 3], [2, 4, 5]),
      tf.slice(x, [0, 3, 0], [-1, 2, -1]),
      tf.slice(x, [2], [1]),
      tf.cast(tf.slice(xi, [1, 0, 2], [3, 7, 4]), 'float32'),
      ...tf.split(x, 3, 2),
      ...tf.split(x, [1, 3, 3], 1),
      ...tf.split(wide, 3, 1),
      tf.concat([x, y, empty], 1),
      tf.concat([p, q, r], -1),
      tf.concat([p], 0),
      tf.cast(tf.concat([xi, xi], 0), 'float32'),
      tf.tile(x, [2, 1, 3]),
      tf.tile(p, [1, 1]),
      tf.broadcastTo(r, [4, 2, 6]),
      tf.broadcastTo(tf.reshape(q, [2, 1, 5]), [2, 7, 5]),
      tf.cast(tf.tile(xi, [1, 2, 1]), 'float32'),
    ]);
    fast.forEach((v, i) => close(v, builtin[i], 0, 0, `${backend} copy #${i}`));
    const v = tf.variable(rn([3, 6, 8]));
    const g = both(() => {
      const { value, grads } = tf.variableGrads(() => {
        const [a, b] = tf.split(v, [2, 4], 1);
        const c = tf.concat([tf.slice(b, [0, 1, 0], [3, 2, 8]), a], 2);
        return tf.add(tf.sum(tf.square(tf.sub(c, tf.mean(c, -1, true)))), tf.mean(tf.mul(tf.sum(v, [0, 1]), tf.mean(v, 0).sum(0)))) as tf.Scalar;
      }, [v]);
      return [value, grads[v.name]];
    });
    close(g.fast[0], g.builtin[0], 1e-5, 1e-6, `${backend} copy loss`);
    close(g.fast[1], g.builtin[1], 1e-5, 1e-6, `${backend} copy grads`);
    tf.dispose([x, xi, v, wide, y, empty, p, q, r]);
  });

  test(`${backend}: Identity and same-dtype Cast share values safely (source disposed, memory balanced)`, async () => {
    await initBackend({ force: backend });
    registerFastKernels(backend);
    const before = tf.memory();
    const x = tf.tensor2d([[1, 2], [3, 4]]);
    const c = tf.clone(x);
    const k = tf.cast(x, 'float32');
    const i = tf.cast(x, 'int32');
    x.dispose();
    assert.equal(Array.from(c.dataSync()), [1, 2, 3, 4]);
    assert.equal(Array.from(k.dataSync()), [1, 2, 3, 4]);
    assert.is(i.dtype, 'int32');
    tf.dispose([c, k, i]);
    const after = tf.memory();
    assert.is(after.numTensors, before.numTensors);
    assert.is(after.numBytes, before.numBytes);
  });

  test(`${backend}: gradients of a small NDT1-like model match the built-ins`, async () => {
    await initBackend({ force: backend });
    const B = 2, T = 6, N = 7, D = 8;
    const store = new ParamStore(createRng(1));
    const in1 = new Linear(store, 'in1', N, 2 * N);
    const in2 = new Linear(store, 'in2', 2 * N, D);
    const encoder = new Encoder(store, 'enc', 2, { dim: D, heads: 2, mlpDim: 12, dropout: 0, attentionDropout: 0 });
    const norm = new LayerNorm(store, 'norm', D);
    const readout = new Linear(store, 'readout', D, N);
    const r = createRng(2);
    const counts = tf.tensor3d(Float32Array.from({ length: B * T * N }, () => r.poisson(1.2)), [B, T, N]);
    const mask = tf.tensor3d(Float32Array.from({ length: B * T * N }, (_, i) => (i % 3 === 0 ? 1 : 0)), [B, T, N]);
    const ctx: ForwardContext = { training: true, rng: createRng(3) };
    const bias = attentionBias({ batch: B, prefix: 0, length: T, causal: true });
    const vars = store.trainable();
    const f = () => {
      const h = in2.apply(softsign(in1.apply(tf.mul(counts, tf.sub(1, mask))))) as tf.Tensor3D;
      // A batched product with transposes on both sides, so its gradient uses all four forms.
      const mixed = tf.matMul(tf.transpose(h, [0, 2, 1]), h, false, false);
      const extra = tf.mul(tf.mean(tf.square(mixed)), 1e-3);
      const logRates = readout.apply(norm.apply(encoder.apply(h, bias, ctx)));
      return tf.add(poissonNll(logRates, counts, mask), extra) as tf.Scalar;
    };
    const { fast, builtin } = both(() => {
      const { value, grads } = tf.variableGrads(f, vars);
      return [value, ...vars.map((v) => grads[v.name])];
    });
    close(fast[0], builtin[0], 1e-5, 1e-6, `${backend} loss`);
    for (let i = 0; i < vars.length; i++) close(fast[i + 1], builtin[i + 1], 1e-4, 1e-6, `${backend} grad ${vars[i].name}`);
    store.dispose();
    tf.dispose([counts, mask, bias as tf.Tensor]);
  });
}

test('dropout mask: the same bits from the addon and the JavaScript fallback, on both backends; keeps ~1 - rate', async () => {
  const shape = [16, 101, 128];
  const n = 16 * 101 * 128;
  const ref = dropoutMaskValues(n, 0.1, 42);
  for (const backend of ['wasm', 'cpu'] as const) {
    await initBackend({ force: backend });
    registerFastKernels(backend);
    const m = dropoutMask(shape, 0.1, 42);
    assert.equal(m.shape, shape);
    const v = m.dataSync();
    for (let i = 0; i < n; i++) if (v[i] !== ref[i]) assert.unreachable(`${backend} mask[${i}] ${v[i]} vs ${ref[i]}`);
    m.dispose();
    unregisterFastKernels();
    const js = dropoutMask([7, 3], 0.5, 9);
    assert.equal(Array.from(js.dataSync()), Array.from(dropoutMaskValues(21, 0.5, 9)));
    js.dispose();
  }
  const kept = ref.reduce((p, x) => p + (x > 0 ? 1 : 0), 0) / n;
  assert.ok(Math.abs(kept - 0.9) < 0.003, `kept ${kept}`);
  assert.ok(ref.every((x) => x === 0 || Math.abs(x - 1 / 0.9) < 1e-6));
  const other = dropoutMaskValues(n, 0.1, 43);
  assert.ok(other.some((x, i) => x !== ref[i]), 'another seed, another mask');
  // Neighbouring elements are independent: the same fraction survives in pairs as singly.
  let both2 = 0;
  for (let i = 0; i + 1 < n; i += 2) if (ref[i] > 0 && ref[i + 1] > 0) both2++;
  assert.ok(Math.abs(both2 / (n / 2) - 0.81) < 0.005, `pairs kept ${both2 / (n / 2)}`);
  assert.throws(() => dropoutMaskValues(4, 1, 1), /rate/);
});

test('fastDropout: identity at rate 0, gradient is the mask', async () => {
  await initBackend({ force: 'wasm' });
  registerFastKernels('wasm');
  const x = tf.variable(rn([5, 9]));
  assert.is(fastDropout(x, 0, 1), x);
  const { value, grads } = tf.variableGrads(() => tf.sum(fastDropout(x, 0.3, 5)) as tf.Scalar, [x]);
  const mask = dropoutMaskValues(45, 0.3, 5);
  close(grads[x.name].dataSync(), mask, 0, 0, 'dropout grad');
  const xs = Array.from(x.dataSync());
  close(value.dataSync(), [xs.reduce((p, v, i) => p + v * mask[i], 0)], 1e-5, 1e-6, 'dropout value');
  tf.dispose([x, value, grads[x.name]]);
});

for (const backend of ['wasm', 'cpu'] as const) {
  test(`${backend}: fused gelu and layerNorm match the layers' tf-op versions, values and gradients`, async () => {
    await initBackend({ force: backend });
    const x = tf.variable(rn([3, 5, 19], 2));
    const gamma = tf.variable(tf.add(rn([19], 0.3), 1));
    const beta = tf.variable(rn([19], 0.3));
    const w = rn([3, 5, 19]);
    const ln = new LayerNorm(new ParamStore(createRng(4)), 'ln', 19);
    ln.gamma.assign(gamma);
    ln.beta.assign(beta);
    const vars = [x, gamma, beta];
    const run = (g: (t: tf.Tensor) => tf.Tensor, l: (t: tf.Tensor) => tf.Tensor) => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.add(g(x), l(x)), w)) as tf.Scalar, vars);
      return [value, g(x), l(x), ...vars.map((v) => grads[v.name] ?? tf.zerosLike(v))];
    };
    registerFastKernels(backend);
    assert.ok(fusedKernelsActive());
    const fusedVals = tf.tidy(() => run(gelu, (t) => layerNorm(t, gamma, beta, 1e-5))).map((t) => Float32Array.from(t.dataSync()));
    // The layers' own GELU and LayerNorm (plain tf ops), with the same weights.
    const opsVals = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.add(layersGelu(x), ln.apply(x)), w)) as tf.Scalar, [x, ln.gamma, ln.beta]);
      return [value, layersGelu(x), ln.apply(x), grads[x.name], grads[ln.gamma.name], grads[ln.beta.name]];
    }).map((t) => Float32Array.from(t.dataSync()));
    const names = ['loss', 'gelu', 'layerNorm', 'dx', 'dgamma', 'dbeta'];
    fusedVals.forEach((v, i) => close(v, opsVals[i], 2e-5, 1e-6, `${backend} fused ${names[i]}`));
    // Without the kernels the same functions fall back to tf ops.
    unregisterFastKernels();
    assert.not.ok(fusedKernelsActive());
    const fallback = tf.tidy(() => run(gelu, (t) => layerNorm(t, gamma, beta, 1e-5))).map((t) => Float32Array.from(t.dataSync()));
    fallback.forEach((v, i) => close(v, opsVals[i], 2e-5, 1e-6, `${backend} fallback ${names[i]}`));
    registerFastKernels(backend);
    tf.dispose([x, gamma, beta, w, ln.gamma, ln.beta]);
  });

  test(`${backend}: adamwUpdate equals core/train AdamW's update, fused and fallback`, async () => {
    await initBackend({ force: backend });
    for (const fused of [true, false]) {
      if (fused) registerFastKernels(backend);
      else unregisterFastKernels();
      const p0 = rn([37, 11]);
      const grads = [rn([37, 11]), rn([37, 11], 3)];
      const ref = tf.variable(p0.clone());
      const opt = new AdamW({ weightDecay: 0.01 });
      let p = p0.clone(), m = tf.zerosLike(p0), v = tf.zerosLike(p0);
      const lr = 1e-2, scale = 0.7;
      for (let t = 1; t <= grads.length; t++) {
        opt.apply([{ name: 'w', variable: ref, grad: grads[t - 1] }], lr, scale);
        const [p1, m1, v1] = adamwUpdate(p, grads[t - 1], m, v, {
          gradScale: scale, beta1: 0.9, beta2: 0.999, sqrtBc2: Math.sqrt(1 - 0.999 ** t), epsilon: 1e-8, decay: 1 - lr * 0.01, stepSize: lr / (1 - 0.9 ** t),
        });
        tf.dispose([p, m, v]);
        [p, m, v] = [p1, m1, v1];
      }
      assert.equal(p.shape, [37, 11]);
      close(p.dataSync(), ref.dataSync(), 1e-6, 1e-7, `${backend} adamw ${fused ? 'fused' : 'fallback'} weights`);
      close(m.dataSync(), opt.state().moments['m/w'].dataSync(), 1e-6, 1e-8, `${backend} adamw m`);
      close(v.dataSync(), opt.state().moments['v/w'].dataSync(), 1e-6, 1e-10, `${backend} adamw v`);
      opt.dispose();
      tf.dispose([p, m, v, p0, ref, ...grads]);
    }
    registerFastKernels(backend);
  });
}

test('softmax and erf gradients: one native kernel each, equal to tfjs\'s multi-op versions', async () => {
  await initBackend({ force: 'wasm' });
  const logits = tf.variable(tf.add(rn([2, 3, 17, 17], 3), tf.mul(tf.cast(tf.greater(rn([1, 1, 17, 17]), 0.8), 'float32'), -1e9)));
  const x = tf.variable(rn([4, 33], 2));
  const w = rn([2, 3, 17, 17]);
  const u = rn([4, 33]);
  const { fast, builtin } = both(() => {
    const { grads } = tf.variableGrads(() => tf.add(tf.sum(tf.mul(tf.softmax(logits), w)), tf.sum(tf.mul(tf.erf(x), u))) as tf.Scalar, [logits, x]);
    return [grads[logits.name], grads[x.name]];
  });
  close(fast[0], builtin[0], 1e-5, 1e-7, 'softmax grad');
  close(fast[1], builtin[1], 1e-5, 1e-7, 'erf grad');
  tf.dispose([logits, x, w, u]);
});

test('unregistering restores the built-in kernels exactly', async () => {
  await initBackend({ force: 'wasm' });
  unregisterFastKernels('wasm');
  const original = tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc;
  registerFastKernels('wasm');
  assert.is.not(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc, original);
  unregisterFastKernels('wasm');
  assert.is(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc, original);
  assert.not.ok(fastKernelStatus().enabled);
});

test('with the addon off, registration is a no-op that says why and training ops still run', () => {
  const script = `
    import { initBackend } from './core/tensor/backend.ts';
    import { fastKernelStatus } from './core/tensor/kernels/index.ts';
    import * as tf from './core/tensor/tf.ts';
    const info = await initBackend({ force: 'wasm' });
    const s = fastKernelStatus();
    const v = tf.variable(tf.tensor2d([[1, 2], [3, 4]]));
    const g = tf.grad((x) => tf.sum(tf.matMul(x, v, false, true)))(tf.ones([3, 2]));
    console.log(JSON.stringify({ reason: info.reason, enabled: s.enabled, why: s.reason, grad: Array.from(g.dataSync()) }));
  `;
  const root = join(import.meta.dirname, '..', '..', '..');
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', env: { ...process.env, MTM_NATIVE_KERNELS: 'off' } });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.not.ok(out.enabled);
  assert.match(out.why, /MTM_NATIVE_KERNELS=off/);
  assert.not.match(out.reason, /native kernels/);
  assert.equal(out.grad, [4, 6, 4, 6, 4, 6]);
});

test.run();
