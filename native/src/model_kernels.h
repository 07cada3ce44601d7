// The small pieces around the encoder layers of a training step, each as one call so a step is a
// handful of native calls instead of hundreds of tfjs kernels (core/tensor/kernels/step.ts,
// embed.ts):
//   - the sum of squares of every gradient (the global norm) and the AdamW update of every
//     weight in place, each over a list of tensors;
//   - the masked Poisson NLL and its gradient;
//   - the per-session stitcher embedding of NDT1: Linear, softsign, Linear, + position,
//     prefix tokens, embedding dropout (tf.dropout's units), forward and backward.
// Included by kernels.cc after encoder_layer.h (uses its pool, GEMM, scratch and Alea).

// A Float64Array argument's values.
bool get_f64(napi_env env, napi_value v, std::vector<double>* out) {
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) return false;
  napi_typedarray_type type;
  size_t len = 0, off = 0;
  void* data = nullptr;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, &ab, &off) != napi_ok || type != napi_float64_array) return false;
  const double* d = static_cast<const double*>(data);
  out->assign(d, d + len);
  return true;
}

// Pointers of operands given as an Array of buffers and a Float64Array of byte offsets, each
// checked to hold sizes[i] floats.
bool get_ptr_list(napi_env env, napi_value bufs, napi_value offs, const std::vector<long>& sizes, const char* what, std::vector<float*>* out) {
  bool is_arr = false;
  uint32_t n = 0;
  napi_is_array(env, bufs, &is_arr);
  if (is_arr) napi_get_array_length(env, bufs, &n);
  std::vector<double> o;
  if (!is_arr || n != sizes.size() || !get_f64(env, offs, &o) || o.size() != n) {
    std::string m = std::string(what) + ": expected " + std::to_string(sizes.size()) + " buffers and as many offsets";
    napi_throw_type_error(env, nullptr, m.c_str());
    return false;
  }
  out->resize(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value b, ov;
    napi_get_element(env, bufs, i, &b);
    napi_create_double(env, o[i], &ov);
    Ptr p;
    if (!get_ptr(env, b, ov, 4 * (size_t)sizes[i], what, &p)) return false;
    (*out)[i] = reinterpret_cast<float*>(p.base);
  }
  return true;
}

// ---- optimiser: global norm and AdamW over every weight ----

// sumSquares(bufs, offs, sizes): sum over all tensors of x^2, in double, tensor by tensor in order.
napi_value SumSquares(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  std::vector<double> sz;
  if (!get_f64(env, argv[2], &sz)) {
    napi_throw_type_error(env, nullptr, "sumSquares: sizes must be a Float64Array");
    return nullptr;
  }
  std::vector<long> sizes(sz.begin(), sz.end());
  std::vector<float*> ptrs;
  if (!get_ptr_list(env, argv[0], argv[1], sizes, "sumSquares", &ptrs)) return nullptr;
  const int k = (int)sizes.size();
  std::vector<double> part(k, 0.0);
  g.pool->run(k, [&](int i, int) {
    const float* x = ptrs[i];
    // Four partial sums: the adds pipeline, and double keeps the total exact enough for any size.
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    long j = 0;
    for (; j + 4 <= sizes[i]; j += 4) {
      s0 += (double)x[j] * x[j];
      s1 += (double)x[j + 1] * x[j + 1];
      s2 += (double)x[j + 2] * x[j + 2];
      s3 += (double)x[j + 3] * x[j + 3];
    }
    for (; j < sizes[i]; j++) s0 += (double)x[j] * x[j];
    part[i] = (s0 + s1) + (s2 + s3);
  });
  double total = 0;
  for (double p : part) total += p;
  napi_value r;
  napi_create_double(env, total, &r);
  return r;
}

// AdamW in place over [lo, hi): adamw_range's arithmetic, written for p == p1 (etc.) so the
// compiler vectorises it (adamw_range's separate outputs alias here, which forces its scalar loop).
#define MTM_ADAMW_INPLACE_BODY                                              \
  for (long i = lo; i < hi; i++) {                                          \
    const float gi = g[i] * gs;                                             \
    const float mi = m[i] * b1 + gi * c1;                                   \
    const float vi = v[i] * b2 + gi * gi * c2;                              \
    const float denom = __builtin_sqrtf(vi) / sbc2 + eps;                   \
    m[i] = mi;                                                              \
    v[i] = vi;                                                              \
    p[i] = p[i] * decay - mi / denom * step;                                \
  }
#ifdef MTM_HAVE_AVX2_BUILD
__attribute__((target("avx2,fma"))) void adamw_inplace_avx2(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                                                             long lo, long hi, float gs, float b1, float c1, float b2, float c2, float sbc2,
                                                             float eps, float decay, float step) {
  MTM_ADAMW_INPLACE_BODY
}
#endif
void adamw_inplace_base(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, long lo, long hi, float gs,
                        float b1, float c1, float b2, float c2, float sbc2, float eps, float decay, float step) {
  MTM_ADAMW_INPLACE_BODY
}
#undef MTM_ADAMW_INPLACE_BODY

// adamwInPlace(bufs, offs, sizes, params): bufs/offs hold p, g, m, v of each weight in turn;
// p, m, v are updated in place (adamw_range's arithmetic, vectorised for in-place use). params =
// [gradScale, beta1, beta2, sqrtBc2, epsilon, decay, stepSize]. The four arrays of a weight must
// not overlap (the caller checks that no other tensor shares p, m or v).
napi_value AdamWInPlace(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  std::vector<double> sz, pr;
  if (!get_f64(env, argv[2], &sz) || !get_f64(env, argv[3], &pr) || pr.size() != 7) {
    napi_throw_type_error(env, nullptr, "adamwInPlace: sizes and params (7 values) must be Float64Arrays");
    return nullptr;
  }
  std::vector<long> sizes;
  for (double s : sz)
    for (int r = 0; r < 4; r++) sizes.push_back((long)s);
  std::vector<float*> ptrs;
  if (!get_ptr_list(env, argv[0], argv[1], sizes, "adamwInPlace", &ptrs)) return nullptr;
  const float gs = (float)pr[0], b1 = (float)pr[1], b2 = (float)pr[2], c1 = (float)(1.0 - pr[1]), c2 = (float)(1.0 - pr[2]);
  const float sbc2 = (float)pr[3], eps = (float)pr[4], decay = (float)pr[5], step = (float)pr[6];
  // Tasks of about equal size: each weight split into pieces of at most kChunkElems.
  struct Piece {
    int w;
    long lo, hi;
  };
  std::vector<Piece> pieces;
  for (int w = 0; w < (int)sz.size(); w++) {
    const long n = (long)sz[w];
    for (long lo = 0; lo < n; lo += kChunkElems) pieces.push_back({w, lo, lo + kChunkElems < n ? lo + kChunkElems : n});
  }
  long total = 0;
  for (double s : sz) total += (long)s;
  const int chunks = chunks_for(total) > 1 ? (int)pieces.size() : 1;
  g.pool->run(chunks, [&](int c, int) {
    const int p0 = chunks == 1 ? 0 : c, p1 = chunks == 1 ? (int)pieces.size() : c + 1;
    for (int q = p0; q < p1; q++) {
      const Piece& pc = pieces[q];
      float* const* t = &ptrs[4 * pc.w];
#ifdef MTM_HAVE_AVX2_BUILD
      if (g.avx2) {
        adamw_inplace_avx2(t[0], t[1], t[2], t[3], pc.lo, pc.hi, gs, b1, c1, b2, c2, sbc2, eps, decay, step);
        continue;
      }
#endif
      adamw_inplace_base(t[0], t[1], t[2], t[3], pc.lo, pc.hi, gs, b1, c1, b2, c2, sbc2, eps, decay, step);
    }
  });
  return nullptr;
}

// ---- masked Poisson NLL: mean over scored entries of exp(x) - y x ----

// poissonNll(x, xOff, y, yOff, mask, mOff, loss, lossOff, count, countOff, n): the loss and the scored count.
napi_value PoissonNll(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const long n = (long)num(env, argv[10]);
  float *x, *y, *mk, *loss, *count;
  if (n < 0 || !pair_ptr(env, argv, 0, n, "poissonNll x", &x) || !pair_ptr(env, argv, 2, n, "poissonNll y", &y) ||
      !pair_ptr(env, argv, 4, n, "poissonNll mask", &mk) || !pair_ptr(env, argv, 6, 1, "poissonNll loss", &loss) ||
      !pair_ptr(env, argv, 8, 1, "poissonNll count", &count))
    return nullptr;
  const int chunks = chunks_for(n);
  std::vector<double> sums(2 * chunks, 0.0);
  g.pool->run(chunks, [&](int c, int) {
    const long lo = n * c / chunks, hi = n * (c + 1) / chunks;
    double s = 0, cnt = 0;
    float e[256];
    for (long i0 = lo; i0 < hi; i0 += 256) {
      const long len = hi - i0 < 256 ? hi - i0 : 256;
      MTM_DISPATCH(unary_range, isa_base::U_EXP, x + i0, e, len, 0.f);
      for (long j = 0; j < len; j++) {
        const float m = mk[i0 + j];
        // A zero mask entry adds nothing (not even a NaN from an unscored inf).
        if (m != 0.f) {
          s += (double)(m * (e[j] - y[i0 + j] * x[i0 + j]));
          cnt += m;
        }
      }
    }
    sums[2 * c] = s;
    sums[2 * c + 1] = cnt;
  });
  double s = 0, cnt = 0;
  for (int c = 0; c < chunks; c++) {
    s += sums[2 * c];
    cnt += sums[2 * c + 1];
  }
  loss[0] = (float)(s / (cnt > 1 ? cnt : 1));
  count[0] = (float)cnt;
  return nullptr;
}

// poissonNllGrad(x, xOff, y, yOff, mask, mOff, dx, dxOff, n, scale): dx = scale mask (exp(x) - y),
// scale = upstream gradient / max(count, 1).
napi_value PoissonNllGrad(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const long n = (long)num(env, argv[8]);
  const float scale = (float)num(env, argv[9]);
  float *x, *y, *mk, *dx;
  if (n < 0 || !pair_ptr(env, argv, 0, n, "poissonNllGrad x", &x) || !pair_ptr(env, argv, 2, n, "poissonNllGrad y", &y) ||
      !pair_ptr(env, argv, 4, n, "poissonNllGrad mask", &mk) || !pair_ptr(env, argv, 6, n, "poissonNllGrad dx", &dx))
    return nullptr;
  const int chunks = chunks_for(n);
  g.pool->run(chunks, [&](int c, int) {
    const long lo = n * c / chunks, hi = n * (c + 1) / chunks;
    MTM_DISPATCH(unary_range, isa_base::U_EXP, x + lo, dx + lo, hi - lo, 0.f);
    for (long i = lo; i < hi; i++) dx[i] = mk[i] != 0.f ? scale * mk[i] * (dx[i] - y[i]) : 0.f;
  });
  return nullptr;
}

// ---- NDT1 stitcher embedding ----
// x [B, T, N] counts; a1 = x W1 + b1 [R = B T, H]; s = a1 / (1 + |a1|); e = s W2 + b2 [R, D];
// tokens [B, S = P + T, D]: rows 0..P-1 the prefix tokens, row P + t = e[b, t] + pos[t];
// y = tokens * mask (tf.dropout's multiplier for the generator state) when dropout is on.

struct EmbedDims {
  long B, T, N, H, D, P, maxPos;
  bool dropout;
  float keep;
  Alea alea;
  long R() const { return B * T; }
  long S() const { return P + T; }
};

bool embed_dims(napi_env env, napi_value v, EmbedDims* e) {
  std::vector<double> d;
  if (!get_f64(env, v, &d) || d.size() != 13) {
    napi_throw_type_error(env, nullptr, "embed: dims must be a Float64Array of 13 values");
    return false;
  }
  *e = EmbedDims{(long)d[0], (long)d[1], (long)d[2], (long)d[3], (long)d[4], (long)d[5], (long)d[6], d[7] != 0, (float)d[8], Alea{d[9], d[10], d[11], d[12]}};
  if (e->B < 1 || e->T < 1 || e->N < 1 || e->H < 1 || e->D < 1 || e->P < 0 || e->maxPos < e->T || (e->dropout && !(e->keep > 0.f && e->keep <= 1.f))) {
    napi_throw_range_error(env, nullptr, "embed: bad dims");
    return false;
  }
  return true;
}

enum EmbedFwd { EF_X, EF_W1, EF_B1, EF_W2, EF_B2, EF_POS, EF_PREFIX, EF_Y, EF_A1, EF_S, EF_MASK, EF_COUNT };
enum EmbedBwd { EB_DY, EB_X, EB_W2, EB_A1, EB_S, EB_MASK, EB_DW1, EB_DB1, EB_DW2, EB_DB2, EB_DPOS, EB_DPREFIX, EB_COUNT };

void embed_forward(const EmbedDims& E, float** p) {
  const long R = E.R(), H = E.H, D = E.D, T = E.T, P = E.P, S = E.S();
  if (E.dropout) alea_mask(E.alea, E.keep, p[EF_MASK], E.B * S * D);
  gemm_c((int)R, (int)H, (int)E.N, p[EF_X], false, p[EF_W1], false, p[EF_A1]);
  add_bias(p[EF_A1], p[EF_B1], R, H);
  const float* a1 = p[EF_A1];
  float* s = p[EF_S];
  for_rows(R, H, [&](long r0, long r1) {
    for (long i = r0 * H; i < r1 * H; i++) s[i] = a1[i] / (__builtin_fabsf(a1[i]) + 1.f);
  });
  float* e = scratch(0, (size_t)R * D);
  gemm_c((int)R, (int)D, (int)H, s, false, p[EF_W2], false, e);
  add_bias(e, p[EF_B2], R, D);
  const float* pos = p[EF_POS];
  const float* pre = p[EF_PREFIX];
  const float* mask = p[EF_MASK];
  float* y = p[EF_Y];
  const bool drop = E.dropout;
  for_rows(E.B * S, D, [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) {
      const long b = r / S, t = r % S;
      float* yr = y + r * D;
      if (t < P) {
        for (long j = 0; j < D; j++) yr[j] = pre[t * D + j];
      } else {
        const float* er = e + (b * T + t - P) * D;
        const float* pr = pos + (t - P) * D;
        for (long j = 0; j < D; j++) yr[j] = er[j] + pr[j];
      }
      if (drop)
        for (long j = 0; j < D; j++) yr[j] *= mask[r * D + j];
    }
  });
}

void embed_backward(const EmbedDims& E, float** p) {
  const long R = E.R(), H = E.H, D = E.D, T = E.T, P = E.P, S = E.S(), B = E.B;
  const float* dy = p[EB_DY];
  const float* mask = p[EB_MASK];
  const bool drop = E.dropout;
  // de [R, D]: the bin tokens' gradient (times the dropout mask).
  float* de = scratch(1, (size_t)R * D);
  for_rows(R, D, [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) {
      const long b = r / T, t = r % T;
      const float* src = dy + (b * S + P + t) * D;
      float* dst = de + r * D;
      if (drop) {
        const float* mr = mask + (b * S + P + t) * D;
        for (long j = 0; j < D; j++) dst[j] = src[j] * mr[j];
      } else {
        for (long j = 0; j < D; j++) dst[j] = src[j];
      }
    }
  });
  // Prefix tokens and positions: sums over the batch, in batch order.
  float* dpre = p[EB_DPREFIX];
  for (long t = 0; t < P; t++) {
    float* out = dpre + t * D;
    for (long j = 0; j < D; j++) out[j] = 0.f;
    for (long b = 0; b < B; b++) {
      const long o = (b * S + t) * D;
      for (long j = 0; j < D; j++) out[j] += drop ? dy[o + j] * mask[o + j] : dy[o + j];
    }
  }
  float* dpos = p[EB_DPOS];
  std::memset(dpos, 0, sizeof(float) * (size_t)E.maxPos * D);
  for_rows(T, D * B, [&](long t0, long t1) {
    for (long t = t0; t < t1; t++)
      for (long b = 0; b < B; b++) {
        const float* src = de + (b * T + t) * D;
        for (long j = 0; j < D; j++) dpos[t * D + j] += src[j];
      }
  });
  gemm_c((int)H, (int)D, (int)R, p[EB_S], true, de, false, p[EB_DW2]);
  col_sums(de, R, D, p[EB_DB2]);
  float* da = scratch(2, (size_t)R * H);
  gemm_c((int)R, (int)H, (int)D, de, false, p[EB_W2], true, da);
  const float* a1 = p[EB_A1];
  for_rows(R, H, [&](long r0, long r1) {
    for (long i = r0 * H; i < r1 * H; i++) {
      const float q = __builtin_fabsf(a1[i]) + 1.f;
      da[i] = da[i] / (q * q);
    }
  });
  gemm_c((int)E.N, (int)H, (int)R, p[EB_X], true, da, false, p[EB_DW1]);
  col_sums(da, R, H, p[EB_DB1]);
}

// embed(mode, bufs, offs, dims): mode 0 forward, 1 backward; operands in EmbedFwd / EmbedBwd
// order (an absent prefix or mask may be any buffer); dims Float64Array [B, T, N, H, D, P,
// maxPos, dropout, keep, c, s0, s1, s2].
napi_value Embed(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const int mode = (int)num(env, argv[0]);
  EmbedDims E;
  if (!embed_dims(env, argv[3], &E)) return nullptr;
  const long R = E.R(), N = E.N, H = E.H, D = E.D, P = E.P, SD = E.B * E.S() * D;
  const long mk = E.dropout ? SD : 0;
  std::vector<long> sizes;
  if (mode == 0)
    sizes = {R * N, N * H, H, H * D, D, E.maxPos * D, P * D, SD, R * H, R * H, mk};
  else if (mode == 1)
    sizes = {SD, R * N, H * D, R * H, R * H, mk, N * H, H, H * D, D, E.maxPos * D, P * D};
  else {
    napi_throw_range_error(env, nullptr, "embed: mode must be 0 or 1");
    return nullptr;
  }
  std::vector<float*> ptrs;
  if (!get_ptr_list(env, argv[1], argv[2], sizes, "embed operand", &ptrs)) return nullptr;
  if (mode == 0)
    embed_forward(E, ptrs.data());
  else
    embed_backward(E, ptrs.data());
  return nullptr;
}
