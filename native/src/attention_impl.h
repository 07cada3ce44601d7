// One attention head's forward and backward for head widths that are a multiple of 8 up to 64
// (NDT1: 16 at the quickstart's size), without the GEMM's packing: at S ~ 100 tokens and 16
// dims per head, packing P (S x S) for P v cost as much as the product itself, and the GEMM's
// 32-column tiles were half empty for 16-column results. Every output element is accumulated in
// the same order as the GEMM accumulates it (over the inner index, in order, one multiply-add
// per step, from zero), so the results are the GEMM path's.
// Included by kernels.cc once per instruction-set namespace, after gemm_impl.h and
// elementwise_impl.h (uses v8f, load8, store8, bcast, binary_row, softmax_rows, softmax_grad_rows).

namespace MTM_NS {

// out[i, j] = sum over d < 8 DV of a[i, d] b[j, d], for i < M, j < N. bt: scratch of
// 8 DV x round8(N) floats (b transposed, zero-padded).
template <int DV>
static void att_rowdot(int M, int N, const float* a, long lda, const float* b, long ldb, float* out, long ldo, float* bt) {
  constexpr int dh = 8 * DV;
  const int np = (N + 7) & ~7;
  for (int d = 0; d < dh; d++) {
    float* row = bt + (long)d * np;
    for (int j = 0; j < N; j++) row[j] = b[(long)j * ldb + d];
    for (int j = N; j < np; j++) row[j] = 0.f;
  }
  const int nb = np / 8;
  auto put = [&](float* o, int j0, v8f c) {
    if (j0 + 8 <= N) {
      store8(o + j0, c);
    } else {
      float t[8];
      store8(t, c);
      for (int j = j0; j < N; j++) o[j] = t[j - j0];
    }
  };
  int i = 0;
  // Two rows x four column blocks: eight independent multiply-add chains.
  for (; i + 2 <= M; i += 2) {
    const float* a0 = a + (long)i * lda;
    const float* a1 = a0 + lda;
    float* o0 = out + (long)i * ldo;
    float* o1 = o0 + ldo;
    int jb = 0;
    for (; jb + 4 <= nb; jb += 4) {
      v8f c00 = {}, c01 = {}, c02 = {}, c03 = {}, c10 = {}, c11 = {}, c12 = {}, c13 = {};
      for (int d = 0; d < dh; d++) {
        const float* r = bt + (long)d * np + jb * 8;
        const v8f b0 = load8(r), b1 = load8(r + 8), b2 = load8(r + 16), b3 = load8(r + 24);
        const v8f x0 = bcast(a0[d]), x1 = bcast(a1[d]);
        c00 += x0 * b0;
        c01 += x0 * b1;
        c02 += x0 * b2;
        c03 += x0 * b3;
        c10 += x1 * b0;
        c11 += x1 * b1;
        c12 += x1 * b2;
        c13 += x1 * b3;
      }
      put(o0, jb * 8, c00);
      put(o0, jb * 8 + 8, c01);
      put(o0, jb * 8 + 16, c02);
      put(o0, jb * 8 + 24, c03);
      put(o1, jb * 8, c10);
      put(o1, jb * 8 + 8, c11);
      put(o1, jb * 8 + 16, c12);
      put(o1, jb * 8 + 24, c13);
    }
    for (; jb < nb; jb++) {
      v8f c0 = {}, c1 = {};
      for (int d = 0; d < dh; d++) {
        const v8f bv = load8(bt + (long)d * np + jb * 8);
        c0 += bcast(a0[d]) * bv;
        c1 += bcast(a1[d]) * bv;
      }
      put(o0, jb * 8, c0);
      put(o1, jb * 8, c1);
    }
  }
  for (; i < M; i++) {
    const float* a0 = a + (long)i * lda;
    float* o0 = out + (long)i * ldo;
    for (int jb = 0; jb < nb; jb++) {
      v8f c0 = {};
      for (int d = 0; d < dh; d++) c0 += bcast(a0[d]) * load8(bt + (long)d * np + jb * 8);
      put(o0, jb * 8, c0);
    }
  }
}

// out[i, :] = sum over j < K of w[i, j] b[j, :] (rows of 8 DV), for i < M.
template <int DV, int RB>
static inline void att_rowcomb_rows(int K, const float* w, long ldw, const float* b, long ldb, float* out, long ldo) {
  v8f acc[RB][DV];
  for (int r = 0; r < RB; r++)
    for (int v = 0; v < DV; v++) acc[r][v] = (v8f){};
  for (int j = 0; j < K; j++) {
    v8f bj[DV];
    for (int v = 0; v < DV; v++) bj[v] = load8(b + (long)j * ldb + 8 * v);
    for (int r = 0; r < RB; r++) {
      const v8f x = bcast(w[(long)r * ldw + j]);
      for (int v = 0; v < DV; v++) acc[r][v] += x * bj[v];
    }
  }
  for (int r = 0; r < RB; r++)
    for (int v = 0; v < DV; v++) store8(out + (long)r * ldo + 8 * v, acc[r][v]);
}

template <int DV>
static void att_rowcomb(int M, int K, const float* w, long ldw, const float* b, long ldb, float* out, long ldo) {
  constexpr int RB = DV <= 2 ? 4 : DV <= 4 ? 2 : 1;
  int i = 0;
  for (; i + RB <= M; i += RB) att_rowcomb_rows<DV, RB>(K, w + (long)i * ldw, ldw, b, ldb, out + (long)i * ldo, ldo);
  for (; i < M; i++) att_rowcomb_rows<DV, 1>(K, w + (long)i * ldw, ldw, b, ldb, out + (long)i * ldo, ldo);
}

// out[j, :] = sum over i < M of w[i, j] a[i, :] (w^T a), for j < N; each out[j] accumulates over
// i in order.
template <int DV>
static void att_colcomb(int M, int N, const float* w, long ldw, const float* a, long lda, float* out, long ldo) {
  constexpr int RB = DV <= 2 ? 4 : DV <= 4 ? 2 : 1;
  for (int j = 0; j < N; j++)
    for (int v = 0; v < DV; v++) store8(out + (long)j * ldo + 8 * v, (v8f){});
  int i = 0;
  for (; i + RB <= M; i += RB) {
    v8f ar[RB][DV];
    for (int r = 0; r < RB; r++)
      for (int v = 0; v < DV; v++) ar[r][v] = load8(a + (long)(i + r) * lda + 8 * v);
    for (int j = 0; j < N; j++) {
      float* oj = out + (long)j * ldo;
      v8f o[DV];
      for (int v = 0; v < DV; v++) o[v] = load8(oj + 8 * v);
      for (int r = 0; r < RB; r++) {
        const v8f x = bcast(w[(long)(i + r) * ldw + j]);
        for (int v = 0; v < DV; v++) o[v] += x * ar[r][v];
      }
      for (int v = 0; v < DV; v++) store8(oj + 8 * v, o[v]);
    }
  }
  for (; i < M; i++) {
    v8f ar[DV];
    for (int v = 0; v < DV; v++) ar[v] = load8(a + (long)i * lda + 8 * v);
    for (int j = 0; j < N; j++) {
      float* oj = out + (long)j * ldo;
      const v8f x = bcast(w[(long)i * ldw + j]);
      for (int v = 0; v < DV; v++) store8(oj + 8 * v, load8(oj + 8 * v) + x * ar[v]);
    }
  }
}

template <int DV>
static void att_head_forward_t(int S, const float* qs, const float* k, const float* v, long ld, const float* bias, float* p, float* ctx, long ldc,
                               float* work) {
  constexpr int dh = 8 * DV;
  att_rowdot<DV>(S, S, qs, dh, k, ld, p, S, work);
  if (bias)
    for (long i = 0; i < (long)S * S; i += S) binary_row(B_ADD, p + i, 1, bias + i, 1, p + i, S);
  softmax_rows(p, p, S, 0, S);
  att_rowcomb<DV>(S, S, p, S, v, ld, ctx, ldc);
}

// One head, forward: P = softmax(qs k^T + bias) [S, S], ctx = P v. qs [S, dh] contiguous (already
// scaled), k and v rows of stride ld, ctx rows of stride ldc; work >= dh x round8(S) floats.
// False when dh is not handled here (the caller takes the GEMM path).
static bool att_head_forward(int S, int dh, const float* qs, const float* k, const float* v, long ld, const float* bias, float* p, float* ctx,
                             long ldc, float* work) {
  switch (dh) {
    case 8: att_head_forward_t<1>(S, qs, k, v, ld, bias, p, ctx, ldc, work); return true;
    case 16: att_head_forward_t<2>(S, qs, k, v, ld, bias, p, ctx, ldc, work); return true;
    case 24: att_head_forward_t<3>(S, qs, k, v, ld, bias, p, ctx, ldc, work); return true;
    case 32: att_head_forward_t<4>(S, qs, k, v, ld, bias, p, ctx, ldc, work); return true;
    case 48: att_head_forward_t<6>(S, qs, k, v, ld, bias, p, ctx, ldc, work); return true;
    case 64: att_head_forward_t<8>(S, qs, k, v, ld, bias, p, ctx, ldc, work); return true;
    default: return false;
  }
}

template <int DV>
static void att_head_backward_t(int S, const float* qs, const float* k, const float* v, long ld, const float* p, const float* dc, long ldc,
                                float* dqs, float* dk, float* dv, float* ds, float* work) {
  constexpr int dh = 8 * DV;
  // dP = dctx v^T; dv = P^T dctx; dS = softmax backward; dqs = dS k; dk = dS^T qs.
  att_rowdot<DV>(S, S, dc, ldc, v, ld, ds, S, work);
  att_colcomb<DV>(S, S, p, S, dc, ldc, dv, ld);
  softmax_grad_rows(p, ds, ds, S, 0, S);
  att_rowcomb<DV>(S, S, ds, S, k, ld, dqs, dh);
  att_colcomb<DV>(S, S, ds, S, qs, dh, dk, ld);
}

// One head, backward, from qs (scaled queries, contiguous), k, v (stride ld), P and dctx (stride
// ldc): dqs [S, dh] contiguous (the caller scales it into dq), dk and dv (stride ld). ds: S x S
// scratch; work >= dh x round8(S) floats.
static bool att_head_backward(int S, int dh, const float* qs, const float* k, const float* v, long ld, const float* p, const float* dc, long ldc,
                              float* dqs, float* dk, float* dv, float* ds, float* work) {
  switch (dh) {
    case 8: att_head_backward_t<1>(S, qs, k, v, ld, p, dc, ldc, dqs, dk, dv, ds, work); return true;
    case 16: att_head_backward_t<2>(S, qs, k, v, ld, p, dc, ldc, dqs, dk, dv, ds, work); return true;
    case 24: att_head_backward_t<3>(S, qs, k, v, ld, p, dc, ldc, dqs, dk, dv, ds, work); return true;
    case 32: att_head_backward_t<4>(S, qs, k, v, ld, p, dc, ldc, dqs, dk, dv, ds, work); return true;
    case 48: att_head_backward_t<6>(S, qs, k, v, ld, p, dc, ldc, dqs, dk, dv, ds, work); return true;
    case 64: att_head_backward_t<8>(S, qs, k, v, ld, p, dc, ldc, dqs, dk, dv, ds, work); return true;
    default: return false;
  }
}

}  // namespace MTM_NS
