// One token's products for causal streaming (core/stream, plugins/ndt1/causal-stream.ts), built
// once per instruction set by stream_step.h (no include guard on purpose). Single-threaded: a
// one-token product is microseconds, and a hand-off to a pool thread on a busy machine costs more
// than it saves. Every output accumulates over its inputs in index order (FMA where the ISA has
// it), like the row-by-row sum a GEMM of one row does, so results agree with tfjs to rounding.
namespace MTM_SNS {

// y[o] = b[o] + sum_i x[i] w[i * out + o], w row-major [in, out]. 64 outputs at a time stay in
// registers over the whole input; zero inputs are skipped (a softsign of 0, a ReLU-like sparsity).
void matvec(const float* x, const float* w, const float* b, float* y, long in, long out) {
  constexpr long BW = 64;
  long o0 = 0;
  for (; o0 + BW <= out; o0 += BW) {
    float acc[BW];
    for (long j = 0; j < BW; j++) acc[j] = b ? b[o0 + j] : 0.f;
    for (long i = 0; i < in; i++) {
      const float xi = x[i];
      if (xi == 0.f) continue;
      const float* wr = w + i * out + o0;
      for (long j = 0; j < BW; j++) acc[j] += xi * wr[j];
    }
    for (long j = 0; j < BW; j++) y[o0 + j] = acc[j];
  }
  if (o0 < out) {
    const long rest = out - o0;
    float acc[BW];
    for (long j = 0; j < rest; j++) acc[j] = b ? b[o0 + j] : 0.f;
    for (long i = 0; i < in; i++) {
      const float xi = x[i];
      if (xi == 0.f) continue;
      const float* wr = w + i * out + o0;
      for (long j = 0; j < rest; j++) acc[j] += xi * wr[j];
    }
    for (long j = 0; j < rest; j++) y[o0 + j] = acc[j];
  }
}

// y[o] = b[o] + sum_k v[k] w[idx[k] * out + o]: a product with a sparse input (a bin's spike
// counts, mostly zero), reading only the weight rows of the inputs that are not zero. Rows are
// streamed whole, four at a time, so each output is loaded and stored once per four rows.
void sparse_rows(const float* w, const int32_t* idx, const float* v, long nnz, const float* b, float* y, long out) {
  for (long o = 0; o < out; o++) y[o] = b ? b[o] : 0.f;
  long k = 0;
  for (; k + 4 <= nnz; k += 4) {
    const float v0 = v[k], v1 = v[k + 1], v2 = v[k + 2], v3 = v[k + 3];
    const float* w0 = w + (long)idx[k] * out;
    const float* w1 = w + (long)idx[k + 1] * out;
    const float* w2 = w + (long)idx[k + 2] * out;
    const float* w3 = w + (long)idx[k + 3] * out;
    for (long o = 0; o < out; o++) {
      float a = y[o];
      a += v0 * w0[o];
      a += v1 * w1[o];
      a += v2 * w2[o];
      a += v3 * w3[o];
      y[o] = a;
    }
  }
  for (; k < nnz; k++) {
    const float vk = v[k];
    const float* wr = w + (long)idx[k] * out;
    for (long o = 0; o < out; o++) y[o] += vk * wr[o];
  }
}

}  // namespace MTM_SNS
