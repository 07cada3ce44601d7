// A whole pre-LayerNorm transformer encoder layer in one call each way (forward, backward), and
// the pieces the rest of a model uses on their own: seeded dropout that draws exactly the units
// tf.dropout draws, and a linear layer (GEMM + bias) with its whole backward pass.
// Included by kernels.cc inside its anonymous namespace (uses its pool, GEMM and row kernels).
//
// The layer (core/tensor/layers.ts EncoderLayer; B sequences of S tokens of width D, H heads,
// MLP width F, rows R = B S):
//   h1 = LN1(x); qkv = h1 Wqkv + bqkv; per (b, h): P = softmax(q k^T / sqrt(dh) + bias), ctx = P v
//   x1 = x + drop1(ctx Wo + bo); h2 = LN2(x1); pre = h2 W1 + b1; ud = drop2(gelu(pre))
//   y  = x1 + drop3(ud W2 + b2)
// The forward pass also writes what the backward pass needs (h1, LN statistics, qkv, P, ctx, x1,
// h2, pre, ud and the dropout masks). Every product is the GEMM tfjs's BatchMatMul runs here on
// the same operands, with the same reduction order, so the attention and linear parts agree with
// the op-by-op path bit for bit; LayerNorm and GELU use the fused row kernels (float32 rounding).

// ---- tf.dropout's random draws: seedrandom's Alea, as tf.randomUniform runs it ----
// State (c, s0, s1, s2) comes from Mash of the seed's decimal string (core/tensor/kernels/dropout.ts).
// Double precision, no contraction (the baseline build has no FMA), so the stream is identical.
struct Alea {
  double c, s0, s1, s2;
  double next() {
    const double t = 2091639.0 * s0 + c * 2.3283064365386963e-10;  // 2^-32
    s0 = s1;
    s1 = s2;
    c = (double)(int32_t)t;
    s2 = t - c;
    return s2;
  }
};

// mask[i] = floor(float(u_i) + keep) / keep as float32, i.e. 1/keep or 0: tf.dropout's multiplier.
// Alea's state values are multiples of 2^-32 (Mash returns 32-bit fractions) and every value it
// computes stays exact in double precision: t = (2091639 x + c) / 2^32 with x = s0 2^32 < 2^32,
// numerator < 2^53. So Alea is the integer lag-3 multiply-with-carry generator
//   v = 2091639 x[n-3] + c;  c = v >> 32;  x[n] = v mod 2^32;  u = x[n] / 2^32
// and runs as such: a 2-cycle carry chain instead of the double path's ~20 (convert, floor, ...),
// with the same values bit for bit. A state that is not of that form takes the double path.
void alea_mask(Alea st, float keep, float* mask, long n) {
  const float scale = 1.0f / keep;
  const double two32 = 4294967296.0;
  const double d0 = st.s0 * two32, d1 = st.s1 * two32, d2 = st.s2 * two32;
  const bool exact = d0 == (double)(uint64_t)d0 && d1 == (double)(uint64_t)d1 && d2 == (double)(uint64_t)d2 && st.c == (double)(uint64_t)st.c &&
                     d0 < two32 && d1 < two32 && d2 < two32 && st.c < 2091639.0;
  if (exact) {
    uint32_t scale_bits;
    __builtin_memcpy(&scale_bits, &scale, 4);
    uint64_t x0 = (uint64_t)d0, x1 = (uint64_t)d1, x2 = (uint64_t)d2, c = (uint64_t)st.c;
    for (long i = 0; i < n; i++) {
      const uint64_t v = 2091639ULL * x0 + c;
      c = v >> 32;
      x0 = x1;
      x1 = x2;
      x2 = v & 0xffffffffULL;
      const float u = (float)((double)(int64_t)x2 * 2.3283064365386963e-10);
      // Branch-free select: keep/drop is random, a branch would mispredict a third of the time.
      const uint32_t bits = (0u - (uint32_t)(u + keep >= 1.0f)) & scale_bits;
      __builtin_memcpy(mask + i, &bits, 4);
    }
    return;
  }
  for (long i = 0; i < n; i++) {
    const float u = (float)st.next();
    mask[i] = u + keep >= 1.0f ? scale : 0.0f;
  }
}

// Grow-only scratch buffers, reused across calls (calls come one at a time from the JS thread).
float* scratch(int slot, size_t floats) {
  static std::vector<float> bufs[16];
  auto& b = bufs[slot];
  if (b.size() < floats + 16) b.resize(floats + 16);
  uintptr_t p = reinterpret_cast<uintptr_t>(b.data());
  return reinterpret_cast<float*>((p + 63) & ~uintptr_t(63));
}

std::vector<float>& thread_scratch(int thread, int which, size_t floats) {
  static std::vector<float> bufs[64][4];
  auto& b = bufs[thread & 63][which];
  if (b.size() < floats) b.resize(floats);
  return b;
}

// C[M,N] = op(A) op(B), contiguous operands: the same path tfjs's BatchMatMul takes here.
void gemm_c(int M, int N, int K, const float* A, bool tA, const float* B, bool tB, float* C) {
  GemmArgs a;
  a.batch = 1;
  a.M = M;
  a.N = N;
  a.K = K;
  a.tA = tA;
  a.tB = tB;
  a.A = A;
  a.aStride = 0;
  a.B = B;
  a.bStride = 0;
  a.C = C;
  if (M == 0 || N == 0) return;
  run_gemm(a);
}

// Row-parallel loop over [0, rows) of width `width` (a hint for the chunk count).
template <class F>
void for_rows(long rows, long width, F&& f) {
  const int want = chunks_for(rows * width);
  const int chunks = (int)(want < rows ? want : (rows ? rows : 1));
  g.pool->run(chunks, [&](int c, int) { f(rows * c / chunks, rows * (c + 1) / chunks); });
}

// y[r, :] = y[r, :] + b for r < rows (the bias add of tf.add(matMul(x, w), b)).
void add_bias(float* y, const float* b, long rows, long n) {
  for_rows(rows, n, [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) MTM_DISPATCH(binary_row, isa_base::B_ADD, y + r * n, 1, b, 1, y + r * n, n);
  });
}

// out[j] = sum over rows of x[r, j] (bias gradients), split by column bands.
void col_sums(const float* x, long rows, long n, float* out) {
  const long band = 64;
  const long bands = (n + band - 1) / band;
  const int want = chunks_for(rows * n);
  const int chunks = (int)(want < bands ? want : bands);
  g.pool->run(chunks, [&](int c, int) {
    const long b0 = bands * c / chunks, b1 = bands * (c + 1) / chunks;
    const long c0 = b0 * band, c1 = b1 * band < n ? b1 * band : n;
    if (c1 > c0) MTM_DISPATCH(sum_cols, x, rows, n, c0, c1, out + c0);
  });
}

// y = a op b element-wise over n values (op a BinaryOp).
void ew(int op, const float* a, const float* b, float* y, long n) {
  const int chunks = chunks_for(n);
  g.pool->run(chunks, [&](int c, int) {
    const long lo = n * c / chunks, hi = n * (c + 1) / chunks;
    MTM_DISPATCH(binary_row, op, a + lo, 1, b + lo, 1, y + lo, hi - lo);
  });
}

void layer_norm(const float* x, const float* gm, const float* bt, float* y, float* mean, float* rstd, long rows, long d, float eps) {
  for_rows(rows, d, [&](long r0, long r1) { MTM_DISPATCH(layernorm_rows, x, gm, bt, y, mean, rstd, d, eps, r0, r1); });
}

// LayerNorm backward; dgamma / dbeta from per-chunk partial sums added in chunk order.
void layer_norm_grad(const float* x, const float* dy, const float* gm, const float* mean, const float* rstd, float* dx, float* dg,
                     float* db, long rows, long d) {
  const int want = chunks_for(rows * d);
  const int chunks = (int)(want < rows ? want : (rows ? rows : 1));
  float* partial = scratch(15, (size_t)chunks * 2 * d);
  std::memset(partial, 0, sizeof(float) * (size_t)chunks * 2 * d);
  g.pool->run(chunks, [&](int c, int) {
    const long r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks;
    float* pg = partial + (size_t)c * 2 * d;
    MTM_DISPATCH(layernorm_grad_rows, x, dy, gm, mean, rstd, dx, pg, pg + d, d, r0, r1);
  });
  for (long i = 0; i < d; i++) {
    float sg = 0.f, sb = 0.f;
    for (int c = 0; c < chunks; c++) {
      sg += partial[(size_t)c * 2 * d + i];
      sb += partial[(size_t)c * 2 * d + d + i];
    }
    dg[i] = sg;
    db[i] = sb;
  }
}

struct LayerDims {
  long B, S, D, H, F, nb;
  bool dropout;
  float keep, eps;
  Alea alea[3];
  long R() const { return B * S; }
  long dh() const { return D / H; }
};

// Attention forward for all (b, h): P [B, H, S, S] and ctx [R, D] (heads merged) from qkv [R, 3D].
void attention_forward(const LayerDims& L, const float* qkv, const float* bias, float* P, float* ctx) {
  const long S = L.S, D = L.D, dh = L.dh(), H = L.H;
  // tfjs scales q by the float32 of 1 / sqrt(dh) computed in double.
  const float qscale = (float)(1.0 / __builtin_sqrt((double)dh));
  g.pool->run((int)(L.B * H), [&](int task, int thread) {
    const long b = task / H, h = task % H;
    const float* q = qkv + b * S * 3 * D + h * dh;
    const float* k = q + D;
    const float* v = q + 2 * D;
    auto& qs_buf = thread_scratch(thread, 0, (size_t)S * dh);
    float* qs = qs_buf.data();
    for (long s = 0; s < S; s++)
      for (long j = 0; j < dh; j++) qs[s * dh + j] = q[s * 3 * D + j] * qscale;
    float* p = P + (b * H + h) * S * S;
    const float* bb = bias ? bias + (L.nb > 1 ? b : 0) * S * S : nullptr;
    // Head widths 8..64 (multiples of 8): the unpacked per-head kernels (attention_impl.h).
    float* work = thread_scratch(thread, 3, (size_t)dh * ((S + 7) & ~7L)).data();
    const bool done = MTM_DISPATCH(att_head_forward, (int)S, (int)dh, qs, k, v, 3 * D, bb, p, ctx + b * S * D + h * dh, D, work);
    if (done) return;
    serial_gemm(thread, (int)S, (int)S, (int)dh, qs, dh, false, k, 3 * D, true, p, S);
    if (bb)
      for (long i = 0; i < S * S; i += S) MTM_DISPATCH(binary_row, isa_base::B_ADD, p + i, 1, bb + i, 1, p + i, S);
    MTM_DISPATCH(softmax_rows, p, p, S, 0, S);
    serial_gemm(thread, (int)S, (int)dh, (int)S, p, S, false, v, 3 * D, false, ctx + b * S * D + h * dh, D);
  });
}

// Attention backward: dqkv [R, 3D] from qkv, P and dctx [R, D].
void attention_backward(const LayerDims& L, const float* qkv, const float* P, const float* dctx, float* dqkv) {
  const long S = L.S, D = L.D, dh = L.dh(), H = L.H;
  const float qscale = (float)(1.0 / __builtin_sqrt((double)dh));
  g.pool->run((int)(L.B * H), [&](int task, int thread) {
    const long b = task / H, h = task % H;
    const float* q = qkv + b * S * 3 * D + h * dh;
    const float* k = q + D;
    const float* v = q + 2 * D;
    const float* p = P + (b * H + h) * S * S;
    const float* dc = dctx + b * S * D + h * dh;
    float* dq = dqkv + b * S * 3 * D + h * dh;
    float* dk = dq + D;
    float* dv = dq + 2 * D;
    float* qs = thread_scratch(thread, 0, (size_t)S * dh).data();
    float* ds = thread_scratch(thread, 1, (size_t)S * S).data();
    float* dqs = thread_scratch(thread, 2, (size_t)S * dh).data();
    for (long s = 0; s < S; s++)
      for (long j = 0; j < dh; j++) qs[s * dh + j] = q[s * 3 * D + j] * qscale;
    float* work = thread_scratch(thread, 3, (size_t)dh * ((S + 7) & ~7L)).data();
    const bool done = MTM_DISPATCH(att_head_backward, (int)S, (int)dh, qs, k, v, 3 * D, p, dc, D, dqs, dk, dv, ds, work);
    if (done) {
      for (long s = 0; s < S; s++)
        for (long j = 0; j < dh; j++) dq[s * 3 * D + j] = dqs[s * dh + j] * qscale;
      return;
    }
    // dP = dctx v^T; dv = P^T dctx; dS = softmax backward; dqs = dS k; dk = dS^T qs; dq = dqs * scale.
    serial_gemm(thread, (int)S, (int)S, (int)dh, dc, D, false, v, 3 * D, true, ds, S);
    serial_gemm(thread, (int)S, (int)dh, (int)S, p, S, true, dc, D, false, dv, 3 * D);
    MTM_DISPATCH(softmax_grad_rows, p, ds, ds, S, 0, S);
    serial_gemm(thread, (int)S, (int)dh, (int)S, ds, S, false, k, 3 * D, false, dqs, dh);
    serial_gemm(thread, (int)S, (int)dh, (int)S, ds, S, true, qs, dh, false, dk, 3 * D);
    for (long s = 0; s < S; s++)
      for (long j = 0; j < dh; j++) dq[s * 3 * D + j] = dqs[s * dh + j] * qscale;
  });
}

enum LayerFwd {
  F_X, F_G1, F_BE1, F_WQKV, F_BQKV, F_WO, F_BO, F_G2, F_BE2, F_W1, F_B1, F_W2, F_B2, F_BIAS,
  F_Y, F_H1, F_MEAN1, F_RSTD1, F_QKV, F_P, F_CTX, F_M1, F_X1, F_H2, F_MEAN2, F_RSTD2, F_PRE, F_UD, F_M2, F_M3, F_COUNT
};
enum LayerBwd {
  G_DY, G_X, G_G1, G_WQKV, G_WO, G_G2, G_W1, G_W2, G_H1, G_MEAN1, G_RSTD1, G_QKV, G_P, G_CTX, G_M1, G_X1, G_H2, G_MEAN2, G_RSTD2,
  G_PRE, G_UD, G_M2, G_M3,
  G_DX, G_DG1, G_DBE1, G_DWQKV, G_DBQKV, G_DWO, G_DBO, G_DG2, G_DBE2, G_DW1, G_DB1, G_DW2, G_DB2, G_COUNT
};

void layer_forward(const LayerDims& L, float** p) {
  const long R = L.R(), D = L.D, F = L.F;
  if (L.dropout) {
    // The three draws are independent streams: one task each, on the pool's threads at once.
    g.pool->run(3, [&](int task, int) {
      if (task == 0) alea_mask(L.alea[0], L.keep, p[F_M1], R * D);
      if (task == 1) alea_mask(L.alea[1], L.keep, p[F_M2], R * F);
      if (task == 2) alea_mask(L.alea[2], L.keep, p[F_M3], R * D);
    });
  }
  layer_norm(p[F_X], p[F_G1], p[F_BE1], p[F_H1], p[F_MEAN1], p[F_RSTD1], R, D, L.eps);
  gemm_c((int)R, (int)(3 * D), (int)D, p[F_H1], false, p[F_WQKV], false, p[F_QKV]);
  add_bias(p[F_QKV], p[F_BQKV], R, 3 * D);
  attention_forward(L, p[F_QKV], L.nb > 0 ? p[F_BIAS] : nullptr, p[F_P], p[F_CTX]);
  float* a = scratch(0, (size_t)R * D);
  gemm_c((int)R, (int)D, (int)D, p[F_CTX], false, p[F_WO], false, a);
  add_bias(a, p[F_BO], R, D);
  if (L.dropout) {
    ew(isa_base::B_MUL, a, p[F_M1], a, R * D);
  }
  ew(isa_base::B_ADD, p[F_X], a, p[F_X1], R * D);
  layer_norm(p[F_X1], p[F_G2], p[F_BE2], p[F_H2], p[F_MEAN2], p[F_RSTD2], R, D, L.eps);
  gemm_c((int)R, (int)F, (int)D, p[F_H2], false, p[F_W1], false, p[F_PRE]);
  add_bias(p[F_PRE], p[F_B1], R, F);
  {
    const long n = R * F;
    const float* pre = p[F_PRE];
    float* ud = p[F_UD];
    const int chunks = chunks_for(n);
    g.pool->run(chunks, [&](int c, int) {
      const long lo = n * c / chunks, hi = n * (c + 1) / chunks;
      MTM_DISPATCH(unary_range, isa_base::U_GELU, pre + lo, ud + lo, hi - lo, 0.f);
    });
  }
  if (L.dropout) {
    ew(isa_base::B_MUL, p[F_UD], p[F_M2], p[F_UD], R * F);
  }
  float* m = scratch(1, (size_t)R * D);
  gemm_c((int)R, (int)D, (int)F, p[F_UD], false, p[F_W2], false, m);
  add_bias(m, p[F_B2], R, D);
  if (L.dropout) {
    ew(isa_base::B_MUL, m, p[F_M3], m, R * D);
  }
  ew(isa_base::B_ADD, p[F_X1], m, p[F_Y], R * D);
}

void layer_backward(const LayerDims& L, float** p) {
  const long R = L.R(), D = L.D, F = L.F;
  // MLP: dm = dy * m3; dW2 = ud^T dm; db2; dud = dm W2^T; du = dud * m2; dpre = gelu'(pre) du.
  const float* dm = p[G_DY];
  if (L.dropout) {
    float* t = scratch(0, (size_t)R * D);
    ew(isa_base::B_MUL, p[G_DY], p[G_M3], t, R * D);
    dm = t;
  }
  gemm_c((int)F, (int)D, (int)R, p[G_UD], true, dm, false, p[G_DW2]);
  col_sums(dm, R, D, p[G_DB2]);
  float* dud = scratch(1, (size_t)R * F);
  gemm_c((int)R, (int)F, (int)D, dm, false, p[G_W2], true, dud);
  if (L.dropout) ew(isa_base::B_MUL, dud, p[G_M2], dud, R * F);
  ew(isa_base::B_GELU_GRAD, p[G_PRE], dud, dud, R * F);  // dud now holds dpre
  gemm_c((int)D, (int)F, (int)R, p[G_H2], true, dud, false, p[G_DW1]);
  col_sums(dud, R, F, p[G_DB1]);
  float* dh2 = scratch(2, (size_t)R * D);
  gemm_c((int)R, (int)D, (int)F, dud, false, p[G_W1], true, dh2);
  // dx1 = dy + LN2'(dh2).
  float* dx1 = scratch(3, (size_t)R * D);
  layer_norm_grad(p[G_X1], dh2, p[G_G2], p[G_MEAN2], p[G_RSTD2], dx1, p[G_DG2], p[G_DBE2], R, D);
  ew(isa_base::B_ADD, p[G_DY], dx1, dx1, R * D);
  // Attention output projection: da = dx1 * m1; dWo = ctx^T da; dbo; dctx = da Wo^T.
  const float* da = dx1;
  if (L.dropout) {
    float* t = scratch(4, (size_t)R * D);
    ew(isa_base::B_MUL, dx1, p[G_M1], t, R * D);
    da = t;
  }
  gemm_c((int)D, (int)D, (int)R, p[G_CTX], true, da, false, p[G_DWO]);
  col_sums(da, R, D, p[G_DBO]);
  float* dctx = scratch(5, (size_t)R * D);
  gemm_c((int)R, (int)D, (int)D, da, false, p[G_WO], true, dctx);
  float* dqkv = scratch(6, (size_t)R * 3 * D);
  attention_backward(L, p[G_QKV], p[G_P], dctx, dqkv);
  gemm_c((int)D, (int)(3 * D), (int)R, p[G_H1], true, dqkv, false, p[G_DWQKV]);
  col_sums(dqkv, R, 3 * D, p[G_DBQKV]);
  float* dh1 = scratch(2, (size_t)R * D);
  gemm_c((int)R, (int)D, (int)(3 * D), dqkv, false, p[G_WQKV], true, dh1);
  layer_norm_grad(p[G_X], dh1, p[G_G1], p[G_MEAN1], p[G_RSTD1], p[G_DX], p[G_DG1], p[G_DBE1], R, D);
  ew(isa_base::B_ADD, dx1, p[G_DX], p[G_DX], R * D);
}

// Float counts of each pointer, for the bounds checks.
void layer_sizes(const LayerDims& L, int mode, std::vector<long>* out) {
  const long R = L.R(), D = L.D, F = L.F, S = L.S;
  const long mD = L.dropout ? R * D : 0, mF = L.dropout ? R * F : 0;
  const long P = L.B * L.H * S * S, bias = L.nb > 0 ? L.nb * S * S : 0;
  if (mode == 0) {
    *out = {R * D, D, D, D * 3 * D, 3 * D, D * D, D, D, D, D * F, F, F * D, D, bias,
            R * D, R * D, R, R, R * 3 * D, P, R * D, mD, R * D, R * D, R, R, R * F, R * F, mF, mD};
  } else {
    *out = {R * D, R * D, D, D * 3 * D, D * D, D, D * F, F * D, R * D, R, R, R * 3 * D, P, R * D, mD, R * D, R * D, R, R,
            R * F, R * F, mF, mD,
            R * D, D, D, D * 3 * D, 3 * D, D * D, D, D, D, D * F, F, F * D, D};
  }
}

// encoderLayer(mode, bufs, offs, dims): mode 0 forward, 1 backward; bufs[i] / offs[i] (bytes) the
// i-th operand (LayerFwd / LayerBwd order); dims Float64Array [B, S, D, H, F, nb, dropout, keep,
// eps, then c, s0, s1, s2 of each of the 3 dropout draws].
napi_value EncoderLayer(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const int mode = (int)num(env, argv[0]);
  bool is_ta = false;
  napi_is_typedarray(env, argv[3], &is_ta);
  napi_typedarray_type type;
  size_t len = 0, off0;
  void* data = nullptr;
  napi_value ab;
  if (!is_ta || napi_get_typedarray_info(env, argv[3], &type, &len, &data, &ab, &off0) != napi_ok || type != napi_float64_array || len < 21) {
    napi_throw_type_error(env, nullptr, "encoderLayer: dims must be a Float64Array of 21 values");
    return nullptr;
  }
  const double* d = static_cast<const double*>(data);
  LayerDims L;
  L.B = (long)d[0];
  L.S = (long)d[1];
  L.D = (long)d[2];
  L.H = (long)d[3];
  L.F = (long)d[4];
  L.nb = (long)d[5];
  L.dropout = d[6] != 0;
  L.keep = (float)d[7];
  L.eps = (float)d[8];
  for (int i = 0; i < 3; i++) L.alea[i] = Alea{d[9 + 4 * i], d[10 + 4 * i], d[11 + 4 * i], d[12 + 4 * i]};
  if ((mode != 0 && mode != 1) || L.B < 1 || L.S < 1 || L.D < 1 || L.H < 1 || L.F < 1 || L.D % L.H != 0 || L.nb < 0 ||
      (L.nb > 1 && L.nb != L.B) || (L.dropout && !(L.keep > 0.f && L.keep <= 1.f))) {
    napi_throw_range_error(env, nullptr, "encoderLayer: bad mode or dims");
    return nullptr;
  }
  std::vector<long> sizes;
  layer_sizes(L, mode, &sizes);
  uint32_t n = 0;
  bool is_arr = false;
  napi_is_array(env, argv[1], &is_arr);
  if (is_arr) napi_get_array_length(env, argv[1], &n);
  if (!is_arr || n != sizes.size()) {
    napi_throw_type_error(env, nullptr, "encoderLayer: wrong number of buffers");
    return nullptr;
  }
  napi_is_typedarray(env, argv[2], &is_ta);
  const double* offs = nullptr;
  if (is_ta && napi_get_typedarray_info(env, argv[2], &type, &len, &data, &ab, &off0) == napi_ok && type == napi_float64_array && len == n)
    offs = static_cast<const double*>(data);
  if (!offs) {
    napi_throw_type_error(env, nullptr, "encoderLayer: offsets must be a Float64Array, one per buffer");
    return nullptr;
  }
  std::vector<float*> ptrs(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value b, o;
    napi_get_element(env, argv[1], i, &b);
    napi_create_double(env, offs[i], &o);
    Ptr p;
    if (!get_ptr(env, b, o, 4 * (size_t)sizes[i], "encoderLayer operand", &p)) return nullptr;
    ptrs[i] = reinterpret_cast<float*>(p.base);
  }
  if (mode == 0)
    layer_forward(L, ptrs.data());
  else
    layer_backward(L, ptrs.data());
  return nullptr;
}

// aleaDropout(x, xOff, y, yOff, mask, maskOff, n, c, s0, s1, s2, keep): mask = tf.dropout's
// multiplier for that generator state, y = x * mask.
napi_value AleaDropout(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const long n = (long)num(env, argv[6]);
  const float keep = (float)num(env, argv[11]);
  if (n < 0 || !(keep > 0.f && keep <= 1.f)) {
    napi_throw_range_error(env, nullptr, "aleaDropout: bad size or keep probability");
    return nullptr;
  }
  float *x, *y, *mask;
  if (!pair_ptr(env, argv, 0, n, "aleaDropout x", &x) || !pair_ptr(env, argv, 2, n, "aleaDropout y", &y) ||
      !pair_ptr(env, argv, 4, n, "aleaDropout mask", &mask))
    return nullptr;
  alea_mask(Alea{num(env, argv[7]), num(env, argv[8]), num(env, argv[9]), num(env, argv[10])}, keep, mask, n);
  ew(isa_base::B_MUL, x, mask, y, n);
  return nullptr;
}

// linear(x, xOff, w, wOff, b, bOff, y, yOff, rows, in, out, hasBias): y = x w (+ b).
napi_value LinearFwd(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const long rows = (long)num(env, argv[8]), in = (long)num(env, argv[9]), out = (long)num(env, argv[10]);
  bool has_bias = false;
  napi_get_value_bool(env, argv[11], &has_bias);
  if (rows < 0 || in < 0 || out < 0) {
    napi_throw_range_error(env, nullptr, "linear: negative size");
    return nullptr;
  }
  float *x, *w, *b = nullptr, *y;
  if (!pair_ptr(env, argv, 0, rows * in, "linear x", &x) || !pair_ptr(env, argv, 2, in * out, "linear w", &w) ||
      (has_bias && !pair_ptr(env, argv, 4, out, "linear b", &b)) || !pair_ptr(env, argv, 6, rows * out, "linear y", &y))
    return nullptr;
  gemm_c((int)rows, (int)out, (int)in, x, false, w, false, y);
  if (has_bias) add_bias(y, b, rows, out);
  return nullptr;
}

// linearGrad(dy, dyOff, x, xOff, w, wOff, dx, dxOff, dw, dwOff, db, dbOff, rows, in, out, hasBias):
// dx = dy w^T, dw = x^T dy, db = column sums of dy.
napi_value LinearGrad(napi_env env, napi_callback_info info) {
  size_t argc = 16;
  napi_value argv[16];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const long rows = (long)num(env, argv[12]), in = (long)num(env, argv[13]), out = (long)num(env, argv[14]);
  bool has_bias = false;
  napi_get_value_bool(env, argv[15], &has_bias);
  if (rows < 0 || in < 0 || out < 0) {
    napi_throw_range_error(env, nullptr, "linearGrad: negative size");
    return nullptr;
  }
  float *dy, *x, *w, *dx, *dw, *db = nullptr;
  if (!pair_ptr(env, argv, 0, rows * out, "linearGrad dy", &dy) || !pair_ptr(env, argv, 2, rows * in, "linearGrad x", &x) ||
      !pair_ptr(env, argv, 4, in * out, "linearGrad w", &w) || !pair_ptr(env, argv, 6, rows * in, "linearGrad dx", &dx) ||
      !pair_ptr(env, argv, 8, in * out, "linearGrad dw", &dw) || (has_bias && !pair_ptr(env, argv, 10, out, "linearGrad db", &db)))
    return nullptr;
  gemm_c((int)rows, (int)in, (int)out, dy, false, w, true, dx);
  if (rows == 0)
    std::memset(dw, 0, sizeof(float) * in * out);
  else
    gemm_c((int)in, (int)out, (int)rows, x, true, dy, false, dw);
  if (has_bias) {
    if (rows == 0)
      std::memset(db, 0, sizeof(float) * out);
    else
      col_sums(dy, rows, out, db);
  }
  return nullptr;
}
