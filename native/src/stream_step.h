// Kernels for one streamed token (causal prediction with a key/value cache, core/stream): a
// dense matrix-vector product and a product with a sparse input vector. Included by kernels.cc
// inside its anonymous namespace (uses its pointer checks and ISA flags); nothing else shared.
#if defined(MTM_HAVE_AVX512_BUILD)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx2,fma")
#define MTM_SNS stream_avx512
#include "stream_step_impl.h"
#undef MTM_SNS
#pragma GCC pop_options
#endif
#if defined(MTM_HAVE_AVX2_BUILD)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define MTM_SNS stream_avx2
#include "stream_step_impl.h"
#undef MTM_SNS
#pragma GCC pop_options
#endif
#define MTM_SNS stream_base
#include "stream_step_impl.h"
#undef MTM_SNS

#if defined(MTM_HAVE_AVX512_BUILD)
#define MTM_STREAM_CALL(fn, ...) (g.avx512 ? stream_avx512::fn(__VA_ARGS__) : g.avx2 ? stream_avx2::fn(__VA_ARGS__) : stream_base::fn(__VA_ARGS__))
#else
#define MTM_STREAM_CALL(fn, ...) stream_base::fn(__VA_ARGS__)
#endif

// streamMatVec(x, xOff, w, wOff, b, bOff, y, yOff, inDim, outDim, hasBias): y = x w (+ b) for one
// row x [in], w [in, out].
napi_value StreamMatVec(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const long in = (long)num(env, argv[8]), out = (long)num(env, argv[9]);
  bool has_bias = false;
  napi_get_value_bool(env, argv[10], &has_bias);
  if (in < 0 || out < 0) {
    napi_throw_range_error(env, nullptr, "streamMatVec: negative size");
    return nullptr;
  }
  float *x, *w, *b = nullptr, *y;
  if (!pair_ptr(env, argv, 0, in, "streamMatVec x", &x) || !pair_ptr(env, argv, 2, in * out, "streamMatVec w", &w) ||
      (has_bias && !pair_ptr(env, argv, 4, out, "streamMatVec b", &b)) || !pair_ptr(env, argv, 6, out, "streamMatVec y", &y))
    return nullptr;
  MTM_STREAM_CALL(matvec, x, w, b, y, in, out);
  return nullptr;
}

// streamSparseRows(w, wOff, idx, idxOff, v, vOff, nnz, b, bOff, y, yOff, rows, outDim, hasBias):
// y = b + sum_k v[k] w[idx[k], :] for w [rows, out] and int32 row indices idx (checked < rows).
napi_value StreamSparseRows(napi_env env, napi_callback_info info) {
  size_t argc = 14;
  napi_value argv[14];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const long nnz = (long)num(env, argv[6]), rows = (long)num(env, argv[11]), out = (long)num(env, argv[12]);
  bool has_bias = false;
  napi_get_value_bool(env, argv[13], &has_bias);
  if (nnz < 0 || rows < 0 || out < 0) {
    napi_throw_range_error(env, nullptr, "streamSparseRows: negative size");
    return nullptr;
  }
  float *w, *idxf, *v, *b = nullptr, *y;
  if (!pair_ptr(env, argv, 0, rows * out, "streamSparseRows w", &w) || !pair_ptr(env, argv, 2, nnz, "streamSparseRows idx", &idxf) ||
      !pair_ptr(env, argv, 4, nnz, "streamSparseRows v", &v) || (has_bias && !pair_ptr(env, argv, 7, out, "streamSparseRows b", &b)) ||
      !pair_ptr(env, argv, 9, out, "streamSparseRows y", &y))
    return nullptr;
  const int32_t* idx = reinterpret_cast<const int32_t*>(idxf);
  for (long k = 0; k < nnz; k++) {
    if (idx[k] < 0 || idx[k] >= rows) {
      napi_throw_range_error(env, nullptr, "streamSparseRows: a row index is outside the weight");
      return nullptr;
    }
  }
  MTM_STREAM_CALL(sparse_rows, w, idx, v, nnz, b, y, out);
  return nullptr;
}
