// Portable blocked single-precision GEMM (the fallback when no OpenBLAS can be loaded), written
// with GCC/Clang vector extensions so one source compiles to AVX-512, AVX2+FMA or baseline SIMD.
// Included once per instruction-set namespace by kernels.cc; needs MTM_NS defined, and MTM_VW
// (floats per vector: 16 for AVX-512, else 8). Every width accumulates each element of C over k
// in the same order (one multiply-add per k, K split into the same blocks), so the products are
// the same whichever ISA runs them (given FMA on both).
// Layout: row-major, C[M,N] = op(A)[M,K] . op(B)[K,N], op = optional transpose.

#ifndef MTM_VW
#define MTM_VW 8
#endif

namespace MTM_NS {

typedef float v8f __attribute__((vector_size(32)));
typedef float vwf __attribute__((vector_size(MTM_VW * 4)));

constexpr int VW = MTM_VW;
// Rows of C per micro-tile: 2 MR accumulators + 2 B vectors + 1 A broadcast fit the register
// file (16 ymm: MR 6; 32 zmm: MR 12).
constexpr int MR = VW == 16 ? 12 : 6;
constexpr int NR = 2 * VW;  // columns of C per micro-tile: two vectors
constexpr int KC = 256;  // depth of one packed block: an A micro-panel (MR x 256) and a B micro-panel (256 x NR) stay in L1/L2
constexpr int MC = 96;   // rows of A packed at once (a multiple of MR)
// Columns of B packed at once: AVX-512's KC x NC block (512 KB) stays in the 1 MB L2 of the
// AVX-512 machines measured (about 15 % faster on NDT1's D 512 products than 2048).
constexpr int NC = VW == 16 ? 512 : 2048;

static inline v8f load8(const float* p) {
  v8f v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
static inline void store8(float* p, v8f v) { __builtin_memcpy(p, &v, sizeof v); }
static inline v8f bcast(float x) { return (v8f){x, x, x, x, x, x, x, x}; }
static inline vwf loadw(const float* p) {
  vwf v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
static inline void storew(float* p, vwf v) { __builtin_memcpy(p, &v, sizeof v); }
static inline vwf bcastw(float x) { return x - (vwf){}; }

// One MR x NR tile of C from packed panels a (kc x MR) and b (kc x NR).
static inline void micro_kernel(int kc, const float* __restrict a, const float* __restrict b, float* c, long ldc, int mr, int nr,
                                bool accumulate) {
  vwf acc[MR][2];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = (vwf){};
  // C's rows are far apart (ldc): fetch them while the k loop runs (~6 % on 1600 x 1536 x 512).
  for (int i = 0; i < mr; i++) {
    __builtin_prefetch(c + i * ldc, 1);
    __builtin_prefetch(c + i * ldc + NR - 1, 1);
  }
  for (int p = 0; p < kc; p++) {
    const vwf b0 = loadw(b), b1 = loadw(b + VW);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      const vwf ai = bcastw(a[i]);
      acc[i][0] += ai * b0;
      acc[i][1] += ai * b1;
    }
    a += MR;
    b += NR;
  }
  if (mr == MR && nr == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      float* ci = c + i * ldc;
      if (accumulate) {
        storew(ci, loadw(ci) + acc[i][0]);
        storew(ci + VW, loadw(ci + VW) + acc[i][1]);
      } else {
        storew(ci, acc[i][0]);
        storew(ci + VW, acc[i][1]);
      }
    }
    return;
  }
  float tile[MR * NR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) {
    storew(tile + i * NR, acc[i][0]);
    storew(tile + i * NR + VW, acc[i][1]);
  }
  for (int i = 0; i < mr; i++) {
    float* ci = c + i * ldc;
    const float* ti = tile + i * NR;
    if (accumulate)
      for (int j = 0; j < nr; j++) ci[j] += ti[j];
    else
      for (int j = 0; j < nr; j++) ci[j] = ti[j];
  }
}

// Packs op(A)[i0:i0+mc, p0:p0+kc] into MR-row panels, zero-padded: panel r holds kc groups of MR.
static void pack_a(const float* A, long lda, bool transA, int i0, int mc, int p0, int kc, float* __restrict out) {
  for (int ir = 0; ir < mc; ir += MR) {
    const int mr = mc - ir < MR ? mc - ir : MR;
    float* dst = out + (long)ir * kc;
    if (!transA) {
      for (int i = 0; i < MR; i++) {
        if (i < mr) {
          const float* src = A + (long)(i0 + ir + i) * lda + p0;
          for (int p = 0; p < kc; p++) dst[p * MR + i] = src[p];
        } else {
          for (int p = 0; p < kc; p++) dst[p * MR + i] = 0.f;
        }
      }
    } else {
      for (int p = 0; p < kc; p++) {
        const float* src = A + (long)(p0 + p) * lda + i0 + ir;
        for (int i = 0; i < MR; i++) dst[p * MR + i] = i < mr ? src[i] : 0.f;
      }
    }
  }
}

// Packs op(B)[p0:p0+kc, j0+jr0 : j0+jr1] into NR-column panels, zero-padded.
static void pack_b(const float* B, long ldb, bool transB, int p0, int kc, int j0, int nc, int panel0, int panel1,
                   float* __restrict out) {
  for (int panel = panel0; panel < panel1; panel++) {
    const int jr = panel * NR;
    const int nr = nc - jr < NR ? nc - jr : NR;
    float* dst = out + (long)jr * kc;
    if (!transB) {
      for (int p = 0; p < kc; p++) {
        const float* src = B + (long)(p0 + p) * ldb + j0 + jr;
        if (nr == NR) {
          storew(dst + p * NR, loadw(src));
          storew(dst + p * NR + VW, loadw(src + VW));
        } else {
          for (int j = 0; j < NR; j++) dst[p * NR + j] = j < nr ? src[j] : 0.f;
        }
      }
    } else {
      for (int j = 0; j < NR; j++) {
        if (j < nr) {
          const float* src = B + (long)(j0 + jr + j) * ldb + p0;
          for (int p = 0; p < kc; p++) dst[p * NR + j] = src[p];
        } else {
          for (int p = 0; p < kc; p++) dst[p * NR + j] = 0.f;
        }
      }
    }
  }
}

// C[ic:ic+mc, jc:jc+nc] (+)= packed A block x packed B block.
static void macro_kernel(int mc, int nc, int kc, const float* Ap, const float* Bp, float* C, long ldc, int ic, int jc,
                         bool accumulate) {
  for (int jr = 0; jr < nc; jr += NR) {
    const int nr = nc - jr < NR ? nc - jr : NR;
    for (int ir = 0; ir < mc; ir += MR) {
      const int mr = mc - ir < MR ? mc - ir : MR;
      micro_kernel(kc, Ap + (long)ir * kc, Bp + (long)jr * kc, C + (long)(ic + ir) * ldc + jc + jr, ldc, mr, nr, accumulate);
    }
  }
}

// Depth of each packed block: K split into equal blocks of at most KC, so no block is a thin
// remainder (K = 300 as 150 + 150, not 256 + 44).
static inline int block_depth(int K) {
  const int blocks = (K + KC - 1) / KC;
  return (K + blocks - 1) / blocks;
}

// One whole product on the calling thread. `work` holds at least gemm_work_floats() floats.
static void gemm_serial(int M, int N, int K, const float* A, long lda, bool transA, const float* B, long ldb, bool transB,
                        float* C, long ldc, float* work) {
  if (K == 0) {
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) C[(long)i * ldc + j] = 0.f;
    return;
  }
  float* Bp = work;
  float* Ap = work + (long)KC * (NC + NR);
  const int KB = block_depth(K);
  for (int jc = 0; jc < N; jc += NC) {
    const int nc = N - jc < NC ? N - jc : NC;
    const int panels = (nc + NR - 1) / NR;
    for (int pc = 0; pc < K; pc += KB) {
      const int kc = K - pc < KB ? K - pc : KB;
      pack_b(B, ldb, transB, pc, kc, jc, nc, 0, panels, Bp);
      for (int ic = 0; ic < M; ic += MC) {
        const int mc = M - ic < MC ? M - ic : MC;
        pack_a(A, lda, transA, ic, mc, pc, kc, Ap);
        macro_kernel(mc, nc, kc, Ap, Bp, C, ldc, ic, jc, pc > 0);
      }
    }
  }
}

// The same product spread over a pool: B is packed by all threads, then row blocks of C are shared out.
template <class Pool>
static void gemm_parallel(Pool& pool, int M, int N, int K, const float* A, long lda, bool transA, const float* B, long ldb,
                          bool transB, float* C, long ldc, float* shared_b, float* const* thread_a) {
  if (K == 0) {
    gemm_serial(M, N, K, A, lda, transA, B, ldb, transB, C, ldc, shared_b);
    return;
  }
  const int KB = block_depth(K);
  // Row blocks of up to MC rows, so each packed B micro-panel is reused as often as in the serial
  // product (blocks of 24 rows made a 1600 x 1536 product stream B from L3 four times as often);
  // their count a multiple of the thread count, so no thread idles at the end.
  const int threads = pool.size();
  int blocks = (M + MC - 1) / MC;
  blocks = (blocks + threads - 1) / threads * threads;
  int rows = (M + blocks - 1) / blocks;
  rows = (rows + MR - 1) / MR * MR;
  blocks = (M + rows - 1) / rows;
  for (int jc = 0; jc < N; jc += NC) {
    const int nc = N - jc < NC ? N - jc : NC;
    const int panels = (nc + NR - 1) / NR;
    for (int pc = 0; pc < K; pc += KB) {
      const int kc = K - pc < KB ? K - pc : KB;
      pool.run(panels, [&](int task, int) { pack_b(B, ldb, transB, pc, kc, jc, nc, task, task + 1, shared_b); });
      pool.run(blocks, [&](int task, int thread) {
        const int ic = task * rows;
        const int mc = M - ic < rows ? M - ic : rows;
        float* Ap = thread_a[thread];
        pack_a(A, lda, transA, ic, mc, pc, kc, Ap);
        macro_kernel(mc, nc, kc, Ap, shared_b, C, ldc, ic, jc, pc > 0);
      });
    }
  }
}

}  // namespace MTM_NS
