// mtm-flow native kernels: matrix products (OpenBLAS loaded at run time when present, else the
// portable blocked GEMM of gemm_impl.h) run in place on tfjs wasm memory, on a small thread pool.
// Built by native/build.mjs; loaded by core/tensor/kernels/native.ts. No link-time dependency on
// any BLAS: Debian's libopenblas0 is dlopen'ed, so the addon builds and runs without it.
#include <node_api.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <dlfcn.h>
#include <time.h>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MTM_PAUSE() _mm_pause()
#else
#define MTM_PAUSE() ((void)0)
#endif

// ---- GEMM implementations, one per instruction set, chosen at run time ----
// AVX-512 (16-float vectors: the GEMM and the FMA peak loop), AVX2+FMA (8-float vectors: the
// GEMM and every element-wise kernel), and a baseline build for any x86-64 (or other) CPU.
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__clang__)
#define MTM_HAVE_AVX2_BUILD 1
#define MTM_HAVE_AVX512_BUILD 1
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
#define MTM_NS isa_avx512
#define MTM_VW 16
#include "gemm_impl.h"
#undef MTM_VW
#undef MTM_NS
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define MTM_NS isa_avx2
#include "gemm_impl.h"
#include "elementwise_impl.h"
#include "attention_impl.h"
#undef MTM_NS
#pragma GCC pop_options
#endif
#define MTM_NS isa_base
#include "gemm_impl.h"
#include "elementwise_impl.h"
#include "attention_impl.h"
#undef MTM_NS

namespace {

// ---- thread pool: the caller works too; idle workers spin briefly, then sleep ----
// The caller never waits for a worker to wake up: tasks are claimed from a shared counter, so
// on a busy machine (2 cores shared with other processes) the caller simply does them all, and
// waits only for tasks a worker has actually started. Jobs live in two fixed slots so a worker
// that wakes late can never run a stale job.
class Pool {
 public:
  explicit Pool(int threads) { resize(threads); }
  ~Pool() { stop(); }

  int size() const { return (int)workers_.size() + 1; }

  void resize(int threads) {
    stop();
    if (threads < 1) threads = 1;
    stop_ = false;
    for (int t = 1; t < threads; t++) workers_.emplace_back([this, t] { loop(t); });
  }

  // Runs f(task, thread) for task in [0, tasks); returns when all are done.
  template <class F>
  void run(int tasks, F&& f) {
    if (tasks <= 0) return;
    if (tasks == 1 || workers_.empty()) {
      for (int i = 0; i < tasks; i++) f(i, 0);
      return;
    }
    using Fn = typename std::remove_reference<F>::type;
    const uint64_t g = gen_.load(std::memory_order_relaxed) + 1;
    Job& j = slots_[g & 1];
    // A worker still inside this slot from two jobs ago holds no task (they are all done);
    // wait for it to leave before reusing the slot.
    while (j.users.load(std::memory_order_acquire) > 0) MTM_PAUSE();
    j.fn = [](void* ctx, int task, int thread) { (*static_cast<Fn*>(ctx))(task, thread); };
    j.ctx = (void*)&f;
    j.tasks = tasks;
    j.next.store(0, std::memory_order_relaxed);
    j.done.store(0, std::memory_order_relaxed);
    // seq_cst on both sides (here and in loop()): a worker going to sleep either sees the new
    // generation or is seen as sleeping and woken; weaker orders allow a lost wake-up.
    gen_.store(g, std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(m_);
      cv_.notify_all();
    }
    int mine = 0;
    for (;;) {
      const int t = j.next.fetch_add(1, std::memory_order_relaxed);
      if (t >= tasks) break;
      j.fn(j.ctx, t, 0);
      mine++;
    }
    j.done.fetch_add(mine, std::memory_order_acq_rel);
    // A worker still busy with a task may have been preempted (the machine is shared): after a
    // short spin, yield so a descheduled worker gets the core back sooner.
    for (int spins = 0; j.done.load(std::memory_order_acquire) < tasks; spins++) {
      if (spins < 256)
        MTM_PAUSE();
      else
        std::this_thread::yield();
    }
  }

 private:
  struct Job {
    void (*fn)(void*, int, int) = nullptr;
    void* ctx = nullptr;
    int tasks = 0;
    std::atomic<int> next{0};
    std::atomic<int> done{0};
    std::atomic<int> users{0};
  };

  void loop(int thread) {
    uint64_t seen = gen_.load(std::memory_order_acquire);
    for (;;) {
      // Kernels come in bursts (a training step is ~2000 of them): spinning a few tens of
      // microseconds between them saves a futex wake-up per call; after that the worker sleeps.
      for (int spins = 0; spins < 4000 && gen_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed); spins++) {
        MTM_PAUSE();
        if ((spins & 255) == 255) std::this_thread::yield();
      }
      if (gen_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed)) {
        std::unique_lock<std::mutex> lock(m_);
        sleeping_.fetch_add(1, std::memory_order_seq_cst);
        cv_.wait(lock, [&] { return gen_.load(std::memory_order_seq_cst) != seen || stop_.load(std::memory_order_relaxed); });
        sleeping_.fetch_sub(1, std::memory_order_acq_rel);
      }
      if (stop_.load(std::memory_order_relaxed)) return;
      const uint64_t g = gen_.load(std::memory_order_acquire);
      seen = g;
      Job& j = slots_[g & 1];
      j.users.fetch_add(1, std::memory_order_acq_rel);
      if (gen_.load(std::memory_order_acquire) == g) {
        int mine = 0;
        for (;;) {
          const int t = j.next.fetch_add(1, std::memory_order_relaxed);
          if (t >= j.tasks) break;
          j.fn(j.ctx, t, thread);
          mine++;
        }
        if (mine) {
          worker_tasks_.fetch_add(mine, std::memory_order_relaxed);
          j.done.fetch_add(mine, std::memory_order_acq_rel);
        }
      }
      j.users.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable cv_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
  Job slots_[2];

 public:
  std::atomic<long> worker_tasks_{0};  // tasks run by workers, for info()
};

// ---- OpenBLAS, when a shared library can be opened ----
typedef void (*cblas_sgemm_t)(int order, int transA, int transB, int M, int N, int K, float alpha, const float* A, int lda,
                              const float* B, int ldb, float beta, float* C, int ldc);
typedef void (*set_threads_t)(int);
typedef int (*get_threads_t)(void);
typedef char* (*get_config_t)(void);
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

struct Blas {
  void* handle = nullptr;
  std::string path;
  cblas_sgemm_t sgemm = nullptr;
  set_threads_t set_threads = nullptr;
  get_threads_t get_threads = nullptr;
  get_config_t get_config = nullptr;
  int threads = 1;  // OpenBLAS's own threads (kept at 1: the pool splits the work)
  std::string error;
};

struct State {
  Pool* pool = nullptr;
  Blas blas;
  bool use_blas = false;
  bool avx2 = false;
  // AVX-512 GEMM; cpu_avx512 says whether the CPU has it (MTM_NATIVE_ISA=avx2 or configure can turn it off).
  bool avx512 = false;
  bool cpu_avx512 = false;
  bool cpu_avx2 = false;
  std::vector<std::vector<float>> work;  // per pool thread
};

State g;

// The widest packed B panel is 32 columns (AVX-512's NR); the A block follows it.
constexpr long kMaxNR = 32;
constexpr long kWorkFloats = (long)isa_base::KC * (isa_base::NC + kMaxNR) + (long)isa_base::KC * isa_base::MC + 64;

float* work_for(int thread) {
  auto& w = g.work[thread];
  if (w.empty()) w.resize(kWorkFloats);
  // 64-byte alignment for the packed panels' vector loads.
  uintptr_t p = reinterpret_cast<uintptr_t>(w.data());
  return reinterpret_cast<float*>((p + 63) & ~uintptr_t(63));
}

const char* isa_name() { return g.avx512 ? "avx512f" : g.avx2 ? "avx2+fma" : "baseline"; }

// Picks the kernels' instruction set: the widest the CPU has, capped by `cap` ("avx512", "avx2",
// "baseline"; MTM_NATIVE_ISA at start).
void set_isa(const char* cap) {
  const bool want512 = !cap || !*cap || std::strcmp(cap, "avx512") == 0;
  const bool want2 = want512 || std::strcmp(cap, "avx2") == 0;
  g.avx2 = g.cpu_avx2 && want2;
  g.avx512 = g.cpu_avx512 && g.avx2 && want512;
}

// OpenBLAS is opened only when asked for (MTM_BLAS=openblas, or a library path): measured here,
// its single-thread speed equals the built-in GEMM's, and its own spinning worker threads compete
// with the addon's pool for the same cores.
void load_blas(bool asked = false) {
  const char* env = std::getenv("MTM_BLAS");
  if (asked && (!env || !*env || std::strcmp(env, "builtin") == 0 || std::strcmp(env, "off") == 0)) env = "openblas";
  if (!env || !*env || std::strcmp(env, "builtin") == 0 || std::strcmp(env, "off") == 0) {
    g.blas.error = "not requested (MTM_BLAS=openblas to use it)";
    return;
  }
  std::vector<std::string> names;
  if (std::strcmp(env, "openblas") != 0) names.push_back(env);
  names.push_back("libopenblas.so.0");
  names.push_back("libopenblas.so");
  names.push_back("libopenblas.dylib");
  for (const auto& n : names) {
    void* h = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) continue;
    auto sgemm = (cblas_sgemm_t)dlsym(h, "cblas_sgemm");
    if (!sgemm) {
      dlclose(h);
      continue;
    }
    g.blas.handle = h;
    g.blas.path = n;
    g.blas.sgemm = sgemm;
    g.blas.set_threads = (set_threads_t)dlsym(h, "openblas_set_num_threads");
    g.blas.get_threads = (get_threads_t)dlsym(h, "openblas_get_num_threads");
    g.blas.get_config = (get_config_t)dlsym(h, "openblas_get_config");
    // One thread inside OpenBLAS: the addon's pool provides the parallelism.
    if (g.blas.set_threads) g.blas.set_threads(1);
    g.blas.threads = g.blas.get_threads ? g.blas.get_threads() : 1;
    Dl_info info;
    if (dladdr((void*)sgemm, &info) && info.dli_fname) g.blas.path = info.dli_fname;
    return;
  }
  g.blas.error = std::string("MTM_BLAS=") + env + " but no OpenBLAS library could be opened (apt-get install libopenblas0)";
}

int default_threads() {
  const char* env = std::getenv("MTM_NATIVE_THREADS");
  if (env && std::atoi(env) > 0) return std::atoi(env);
  unsigned n = std::thread::hardware_concurrency();
  return n ? (int)n : 1;
}

void ensure_init() {
  if (g.pool) return;
#ifdef MTM_HAVE_AVX2_BUILD
  __builtin_cpu_init();
  g.cpu_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  g.cpu_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512dq");
#endif
  set_isa(std::getenv("MTM_NATIVE_ISA"));
  load_blas();
  g.use_blas = g.blas.sgemm != nullptr;
  const int n = default_threads();
  g.pool = new Pool(n);
  g.work.assign(n, {});
}

void serial_gemm(int thread, int M, int N, int K, const float* A, long lda, bool tA, const float* B, long ldb, bool tB, float* C,
                 long ldc) {
#ifdef MTM_HAVE_AVX512_BUILD
  if (g.avx512) return isa_avx512::gemm_serial(M, N, K, A, lda, tA, B, ldb, tB, C, ldc, work_for(thread));
#endif
#ifdef MTM_HAVE_AVX2_BUILD
  if (g.avx2) return isa_avx2::gemm_serial(M, N, K, A, lda, tA, B, ldb, tB, C, ldc, work_for(thread));
#endif
  isa_base::gemm_serial(M, N, K, A, lda, tA, B, ldb, tB, C, ldc, work_for(thread));
}

void parallel_gemm(int M, int N, int K, const float* A, long lda, bool tA, const float* B, long ldb, bool tB, float* C, long ldc) {
  const int n = g.pool->size();
  std::vector<float*> thread_a(n);
  // Each thread's A block (up to MC rows) sits after the shared B block in its work buffer.
  for (int t = 0; t < n; t++) thread_a[t] = work_for(t) + (long)isa_base::KC * (isa_base::NC + kMaxNR);
  float* shared_b = work_for(0);
#ifdef MTM_HAVE_AVX512_BUILD
  if (g.avx512) return isa_avx512::gemm_parallel(*g.pool, M, N, K, A, lda, tA, B, ldb, tB, C, ldc, shared_b, thread_a.data());
#endif
#ifdef MTM_HAVE_AVX2_BUILD
  if (g.avx2) return isa_avx2::gemm_parallel(*g.pool, M, N, K, A, lda, tA, B, ldb, tB, C, ldc, shared_b, thread_a.data());
#endif
  isa_base::gemm_parallel(*g.pool, M, N, K, A, lda, tA, B, ldb, tB, C, ldc, shared_b, thread_a.data());
}

struct GemmArgs {
  int batch, M, N, K;
  bool tA, tB;
  const float* A;
  long aStride;
  const float* B;
  long bStride;
  float* C;
};

// Products smaller than this many multiply-adds stay on one thread: waking a worker costs more.
constexpr double kParallelMacs = 96.0 * 96.0 * 96.0;

void run_gemm(const GemmArgs& a) {
  const long lda = a.tA ? a.M : a.K, ldb = a.tB ? a.K : a.N, ldc = a.N;
  const long cStride = (long)a.M * a.N;
  const double macs = (double)a.M * a.N * a.K;
  if (a.batch == 1) {
    if (g.use_blas) {
      // OpenBLAS runs single-threaded inside our pool (its own threads would compete with the
      // pool's for the same cores): each task multiplies a band of C's rows.
      const int bands = macs >= kParallelMacs ? g.pool->size() : 1;
      g.pool->run(bands, [&](int t, int) {
        const int r0 = (int)((long)a.M * t / bands), r1 = (int)((long)a.M * (t + 1) / bands);
        if (r1 <= r0) return;
        const float* A = a.tA ? a.A + r0 : a.A + (long)r0 * lda;
        g.blas.sgemm(kRowMajor, a.tA ? kTrans : kNoTrans, a.tB ? kTrans : kNoTrans, r1 - r0, a.N, a.K, 1.f, A, (int)lda, a.B, (int)ldb,
                     0.f, a.C + (long)r0 * ldc, (int)ldc);
      });
    } else if (macs >= kParallelMacs && g.pool->size() > 1) {
      parallel_gemm(a.M, a.N, a.K, a.A, lda, a.tA, a.B, ldb, a.tB, a.C, ldc);
    } else {
      serial_gemm(0, a.M, a.N, a.K, a.A, lda, a.tA, a.B, ldb, a.tB, a.C, ldc);
    }
    return;
  }
  // Batched: one product per task, each on one thread (OpenBLAS asked for one thread meanwhile,
  // so its own pool does not compete with ours for the same cores).
  const bool blas = g.use_blas;
  const bool parallel = macs * a.batch >= kParallelMacs && g.pool->size() > 1;
  auto one = [&](int i, int thread) {
    const float* A = a.A + a.aStride * i;
    const float* B = a.B + a.bStride * i;
    float* C = a.C + cStride * i;
    if (blas)
      g.blas.sgemm(kRowMajor, a.tA ? kTrans : kNoTrans, a.tB ? kTrans : kNoTrans, a.M, a.N, a.K, 1.f, A, (int)lda, B, (int)ldb, 0.f,
                   C, (int)ldc);
    else
      serial_gemm(thread, a.M, a.N, a.K, A, lda, a.tA, B, ldb, a.tB, C, ldc);
  };
  if (parallel)
    g.pool->run(a.batch, one);
  else
    for (int i = 0; i < a.batch; i++) one(i, 0);
}

// ---- peak FMA throughput: 12 independent multiply-add chains per thread, nothing else ----
// 12 chains cover the FMA latency (4 cycles) on two FMA pipes; the result is summed so the loop
// cannot be optimised away. flops = 2 * lanes * 12 per iteration.
#ifdef MTM_HAVE_AVX512_BUILD
__attribute__((target("avx512f"))) float fma_loop_512(long iters) {
  __m512 a[12];
  const __m512 b = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
  for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
  }
  __m512 s = a[0];
  for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
  return _mm512_reduce_add_ps(s);
}
#endif
#ifdef MTM_HAVE_AVX2_BUILD
__attribute__((target("avx2,fma"))) float fma_loop_256(long iters) {
  __m256 a[12];
  const __m256 b = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
  for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
  }
  __m256 s = a[0];
  for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
  float l[8];
  _mm256_storeu_ps(l, s);
  return l[0] + l[1] + l[2] + l[3] + l[4] + l[5] + l[6] + l[7];
}
#endif

// ---- N-API glue ----
#define CHECK(call)                                                  \
  do {                                                               \
    if ((call) != napi_ok) {                                         \
      napi_throw_error(env, nullptr, "mtm native kernels: " #call); \
      return nullptr;                                                \
    }                                                                \
  } while (0)

// Base pointer of an ArrayBuffer or a typed array (its own byte offset included).
bool buffer_ptr(napi_env env, napi_value v, char** out, size_t* bytes) {
  bool is_ab = false;
  napi_is_arraybuffer(env, v, &is_ab);
  if (is_ab) {
    void* data;
    if (napi_get_arraybuffer_info(env, v, &data, bytes) != napi_ok) return false;
    *out = static_cast<char*>(data);
    return true;
  }
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) return false;
  napi_typedarray_type type;
  size_t length, offset;
  void* data;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok) return false;
  void* base;
  size_t ab_bytes;
  if (napi_get_arraybuffer_info(env, ab, &base, &ab_bytes) != napi_ok) return false;
  *out = static_cast<char*>(data);
  *bytes = ab_bytes - offset;
  return true;
}

double num(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

// gemm(aBuf, aByteOffset, aBatchStride, bBuf, bByteOffset, bBatchStride, cBuf, cByteOffset,
//      batch, M, N, K, transA, transB): C[i] = op(A[i]) . op(B[i]) for i < batch, row-major
// float32; batch strides in elements (0 broadcasts one operand over the batch).
napi_value Gemm(napi_env env, napi_callback_info info) {
  size_t argc = 14;
  napi_value argv[14];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 14) {
    napi_throw_type_error(env, nullptr, "gemm expects 14 arguments");
    return nullptr;
  }
  ensure_init();
  char *pa, *pb, *pc;
  size_t na, nb, nc;
  if (!buffer_ptr(env, argv[0], &pa, &na) || !buffer_ptr(env, argv[3], &pb, &nb) || !buffer_ptr(env, argv[6], &pc, &nc)) {
    napi_throw_type_error(env, nullptr, "gemm: operands must be ArrayBuffers or typed arrays");
    return nullptr;
  }
  GemmArgs a;
  const double aOff = num(env, argv[1]), bOff = num(env, argv[4]), cOff = num(env, argv[7]);
  a.aStride = (long)num(env, argv[2]);
  a.bStride = (long)num(env, argv[5]);
  a.batch = (int)num(env, argv[8]);
  a.M = (int)num(env, argv[9]);
  a.N = (int)num(env, argv[10]);
  a.K = (int)num(env, argv[11]);
  bool tA = false, tB = false;
  napi_get_value_bool(env, argv[12], &tA);
  napi_get_value_bool(env, argv[13], &tB);
  a.tA = tA;
  a.tB = tB;
  if (a.batch < 0 || a.M < 0 || a.N < 0 || a.K < 0 || a.aStride < 0 || a.bStride < 0 || aOff < 0 || bOff < 0 || cOff < 0) {
    napi_throw_range_error(env, nullptr, "gemm: negative size, stride or offset");
    return nullptr;
  }
  // Bounds: the last element each operand touches must lie inside its buffer.
  const double aLast = aOff + 4.0 * ((double)a.aStride * (a.batch > 0 ? a.batch - 1 : 0) + (double)a.M * a.K);
  const double bLast = bOff + 4.0 * ((double)a.bStride * (a.batch > 0 ? a.batch - 1 : 0) + (double)a.K * a.N);
  const double cLast = cOff + 4.0 * (double)a.batch * a.M * a.N;
  if (aLast > (double)na || bLast > (double)nb || cLast > (double)nc) {
    napi_throw_range_error(env, nullptr, "gemm: an operand runs past the end of its buffer");
    return nullptr;
  }
  if (a.batch == 0 || a.M == 0 || a.N == 0) return nullptr;
  a.A = reinterpret_cast<const float*>(pa + (size_t)aOff);
  a.B = reinterpret_cast<const float*>(pb + (size_t)bOff);
  a.C = reinterpret_cast<float*>(pc + (size_t)cOff);
  run_gemm(a);
  return nullptr;
}


// ---- element-wise kernels ----
#ifdef MTM_HAVE_AVX2_BUILD
#define MTM_DISPATCH(fn, ...) (g.avx2 ? isa_avx2::fn(__VA_ARGS__) : isa_base::fn(__VA_ARGS__))
#else
#define MTM_DISPATCH(fn, ...) isa_base::fn(__VA_ARGS__)
#endif

// Below this many elements a kernel stays on the calling thread.
constexpr long kParallelElems = 1L << 15;
constexpr long kChunkElems = 1L << 14;

int chunks_for(long n) {
  if (n < kParallelElems || g.pool->size() == 1) return 1;
  long c = n / kChunkElems;
  const long cap = 8L * g.pool->size();
  return (int)(c < cap ? c : cap);
}

struct Ptr {
  char* base = nullptr;
  size_t bytes = 0;
};

bool get_ptr(napi_env env, napi_value buf, napi_value off, size_t need_bytes, const char* what, Ptr* out) {
  char* p;
  size_t n;
  if (!buffer_ptr(env, buf, &p, &n)) {
    std::string m = std::string(what) + ": not an ArrayBuffer or typed array";
    napi_throw_type_error(env, nullptr, m.c_str());
    return false;
  }
  const double o = num(env, off);
  if (o < 0 || o + (double)need_bytes > (double)n) {
    std::string m = std::string(what) + ": runs past the end of its buffer";
    napi_throw_range_error(env, nullptr, m.c_str());
    return false;
  }
  out->base = p + (size_t)o;
  out->bytes = need_bytes;
  return true;
}

bool get_ints(napi_env env, napi_value v, std::vector<long>* out) {
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) return false;
  napi_typedarray_type type;
  size_t length, offset;
  void* data;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok || type != napi_int32_array) return false;
  const int32_t* d = static_cast<const int32_t*>(data);
  out->assign(d, d + length);
  return true;
}

// A dims array [rank, then `groups` arrays of rank entries] (shapes, strides, perms): rank 1-8.
bool get_dims(napi_env env, napi_value v, int groups, std::vector<long>* d) {
  return get_ints(env, v, d) && !d->empty() && (*d)[0] >= 1 && (*d)[0] <= 8 && (long)d->size() == 1 + groups * (*d)[0];
}

// unary(op, x, xByteOffset, y, yByteOffset, n, alpha)
napi_value Unary(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const int op = (int)num(env, argv[0]);
  const long n = (long)num(env, argv[5]);
  const float alpha = (float)num(env, argv[6]);
  if (op < 0 || op >= isa_base::U_COUNT || n < 0) {
    napi_throw_range_error(env, nullptr, "unary: bad op or size");
    return nullptr;
  }
  Ptr x, y;
  if (!get_ptr(env, argv[1], argv[2], 4 * n, "unary x", &x) || !get_ptr(env, argv[3], argv[4], 4 * n, "unary y", &y)) return nullptr;
  const float* xp = reinterpret_cast<const float*>(x.base);
  float* yp = reinterpret_cast<float*>(y.base);
  const int chunks = chunks_for(n);
  g.pool->run(chunks, [&](int c, int) {
    const long lo = n * c / chunks, hi = n * (c + 1) / chunks;
    MTM_DISPATCH(unary_range, op, xp + lo, yp + lo, hi - lo, alpha);
  });
  return nullptr;
}

// binary(op, a, aOff, b, bOff, y, yOff, dims) where dims = Int32Array [rank, shape(rank),
// aStrides(rank), bStrides(rank)] of the (collapsed) output; each operand's innermost stride is 0 or 1.
napi_value Binary(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const int op = (int)num(env, argv[0]);
  std::vector<long> d;
  if (!get_dims(env, argv[7], 3, &d) || op < 0 || op >= isa_base::B_COUNT) {
    napi_throw_type_error(env, nullptr, "binary: bad op or dims");
    return nullptr;
  }
  const int rank = (int)d[0];
  const long* shape = &d[1];
  const long* as = &d[1 + rank];
  const long* bs = &d[1 + 2 * rank];
  long total = 1, aSpan = 1, bSpan = 1;
  for (int i = 0; i < rank; i++) {
    total *= shape[i];
    aSpan += as[i] * (shape[i] - 1);
    bSpan += bs[i] * (shape[i] - 1);
  }
  const long inner = shape[rank - 1];
  const int sa = (int)as[rank - 1], sb = (int)bs[rank - 1];
  if ((sa != 0 && sa != 1) || (sb != 0 && sb != 1)) {
    napi_throw_range_error(env, nullptr, "binary: innermost strides must be 0 or 1");
    return nullptr;
  }
  Ptr a, b, y;
  if (!get_ptr(env, argv[1], argv[2], 4 * aSpan, "binary a", &a) || !get_ptr(env, argv[3], argv[4], 4 * bSpan, "binary b", &b) ||
      !get_ptr(env, argv[5], argv[6], 4 * total, "binary y", &y))
    return nullptr;
  if (total == 0) return nullptr;
  const float* ap = reinterpret_cast<const float*>(a.base);
  const float* bp = reinterpret_cast<const float*>(b.base);
  float* yp = reinterpret_cast<float*>(y.base);
  const long rows = total / inner;
  const int chunks = chunks_for(total);
  g.pool->run(chunks, [&](int c, int) {
    // Flat output range [lo, hi), walked row by row (a row = the innermost dimension).
    const long lo = total * c / chunks, hi = total * (c + 1) / chunks;
    long pos = lo;
    while (pos < hi) {
      const long row = pos / inner, col = pos % inner;
      const long len = (hi - pos) < (inner - col) ? (hi - pos) : (inner - col);
      long ao = 0, bo = 0, rem = row;
      for (int k = rank - 2; k >= 0; k--) {
        const long idx = rem % shape[k];
        rem /= shape[k];
        ao += idx * as[k];
        bo += idx * bs[k];
      }
      MTM_DISPATCH(binary_row, op, ap + ao + col * sa, sa, bp + bo + col * sb, sb, yp + pos, len);
      pos += len;
    }
    (void)rows;
  });
  return nullptr;
}

// reduce(op, x, xOff, y, yOff, outer, n, inner): y[o, i] = reduce over r < n of x[o, r, i];
// op 0 = sum, 1 = mean, 2 = max.
napi_value Reduce(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const int op = (int)num(env, argv[0]);
  const long outer = (long)num(env, argv[5]), n = (long)num(env, argv[6]), inner = (long)num(env, argv[7]);
  if (op < 0 || op > 2 || outer < 0 || n < 0 || inner < 0 || (op == 2 && inner != 1)) {
    napi_throw_range_error(env, nullptr, "reduce: bad op or sizes");
    return nullptr;
  }
  Ptr x, y;
  if (!get_ptr(env, argv[1], argv[2], 4 * outer * n * inner, "reduce x", &x) || !get_ptr(env, argv[3], argv[4], 4 * outer * inner, "reduce y", &y))
    return nullptr;
  const float* xp = reinterpret_cast<const float*>(x.base);
  float* yp = reinterpret_cast<float*>(y.base);
  const long total = outer * n * inner;
  if (n == 0) {
    for (long i = 0; i < outer * inner; i++) yp[i] = op == 1 ? __builtin_nanf("") : op == 2 ? -__builtin_inff() : 0.f;
    return nullptr;
  }
  const float scale = op == 1 ? 1.f / (float)n : 1.f;
  if (inner == 1) {
    const int chunks = (int)(chunks_for(total) < outer ? chunks_for(total) : outer);
    g.pool->run(chunks, [&](int c, int) {
      const long r0 = outer * c / chunks, r1 = outer * (c + 1) / chunks;
      if (op == 2) {
        MTM_DISPATCH(max_rows, xp, n, r0, r1, yp);
      } else {
        MTM_DISPATCH(sum_rows, xp, n, r0, r1, yp);
        if (op == 1)
          for (long r = r0; r < r1; r++) yp[r] *= scale;
      }
    });
    return nullptr;
  }
  // Column sums: split the (outer, inner) outputs into column bands of whole vectors.
  const long band = 64;
  const long bands_per_outer = (inner + band - 1) / band;
  const long tasks = outer * bands_per_outer;
  const int chunks = (int)(chunks_for(total) < tasks ? chunks_for(total) : tasks);
  g.pool->run(chunks, [&](int c, int) {
    const long t0 = tasks * c / chunks, t1 = tasks * (c + 1) / chunks;
    for (long t = t0; t < t1; t++) {
      const long o = t / bands_per_outer, c0 = (t % bands_per_outer) * band;
      const long c1 = c0 + band < inner ? c0 + band : inner;
      float* out = yp + o * inner + c0;
      MTM_DISPATCH(sum_cols, xp + o * n * inner, n, inner, c0, c1, out);
      if (op == 1)
        for (long j = 0; j < c1 - c0; j++) out[j] *= scale;
    }
  });
  return nullptr;
}

// softmax(x, xOff, y, yOff, rows, cols): softmax over the last axis.
napi_value Softmax(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const long rows = (long)num(env, argv[4]), cols = (long)num(env, argv[5]);
  if (rows < 0 || cols < 0) {
    napi_throw_range_error(env, nullptr, "softmax: negative size");
    return nullptr;
  }
  Ptr x, y;
  if (!get_ptr(env, argv[0], argv[1], 4 * rows * cols, "softmax x", &x) || !get_ptr(env, argv[2], argv[3], 4 * rows * cols, "softmax y", &y))
    return nullptr;
  if (cols == 0) return nullptr;
  const float* xp = reinterpret_cast<const float*>(x.base);
  float* yp = reinterpret_cast<float*>(y.base);
  const int want = chunks_for(rows * cols);
  const int chunks = (int)(want < rows ? want : rows);
  g.pool->run(chunks, [&](int c, int) {
    const long r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks;
    MTM_DISPATCH(softmax_rows, xp, yp, cols, r0, r1);
  });
  return nullptr;
}

// transpose(x, xOff, y, yOff, dims) with dims = Int32Array [rank, inShape(rank), perm(rank)]:
// y = x with axes permuted (y's axis i is x's axis perm[i]). 4-byte elements of any type.
napi_value Transpose(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  std::vector<long> d;
  if (!get_dims(env, argv[4], 2, &d)) {
    napi_throw_type_error(env, nullptr, "transpose: bad dims");
    return nullptr;
  }
  const int rank = (int)d[0];
  std::vector<long> in_shape(&d[1], &d[1] + rank), perm(&d[1 + rank], &d[1 + rank] + rank), in_stride(rank), out_shape(rank), src_stride(rank);
  long total = 1;
  for (int i = rank - 1; i >= 0; i--) {
    in_stride[i] = total;
    total *= in_shape[i];
  }
  for (int i = 0; i < rank; i++) {
    if (perm[i] < 0 || perm[i] >= rank) {
      napi_throw_range_error(env, nullptr, "transpose: bad perm");
      return nullptr;
    }
    out_shape[i] = in_shape[perm[i]];
    src_stride[i] = in_stride[perm[i]];
  }
  Ptr x, y;
  if (!get_ptr(env, argv[0], argv[1], 4 * total, "transpose x", &x) || !get_ptr(env, argv[2], argv[3], 4 * total, "transpose y", &y)) return nullptr;
  if (total == 0) return nullptr;
  const float* xp = reinterpret_cast<const float*>(x.base);
  float* yp = reinterpret_cast<float*>(y.base);
  const long inner = out_shape[rank - 1], inner_src = src_stride[rank - 1];
  if (rank >= 2 && inner_src != 1 && src_stride[rank - 2] == 1) {
    // The last two output axes are a plain 2-D transpose: the input holds, per outer index, a
    // C x R block (row stride inner_src) whose transpose is the output's R x C block.
    const long R = out_shape[rank - 2], C = inner;
    const long outer = total / (R * C);
    const long band = 64;
    const long bands = (C + band - 1) / band;
    const long tasks = outer * bands;
    const int want = chunks_for(total);
    const int chunks = (int)(want < tasks ? want : tasks);
    g.pool->run(chunks, [&](int c, int) {
      const long t0 = tasks * c / chunks, t1 = tasks * (c + 1) / chunks;
      for (long t = t0; t < t1; t++) {
        const long o = t / bands, i0 = (t % bands) * band;
        const long i1 = i0 + band < C ? i0 + band : C;
        long src = 0, rem = o;
        for (int k = rank - 3; k >= 0; k--) {
          src += (rem % out_shape[k]) * src_stride[k];
          rem /= out_shape[k];
        }
        MTM_DISPATCH(transpose_band, xp + src, inner_src, yp + o * R * C, C, R, i0, i1);
      }
    });
    return nullptr;
  }
  const long rows = total / inner;
  const int want = chunks_for(total);
  const int chunks = (int)(want < rows ? want : rows);
  g.pool->run(chunks, [&](int c, int) {
    const long r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks;
    for (long r = r0; r < r1; r++) {
      long src = 0, rem = r;
      for (int k = rank - 2; k >= 0; k--) {
        src += (rem % out_shape[k]) * src_stride[k];
        rem /= out_shape[k];
      }
      float* dst = yp + r * inner;
      if (inner_src == 1) {
        std::memcpy(dst, xp + src, 4 * inner);
      } else {
        for (long i = 0; i < inner; i++) dst[i] = xp[src + i * inner_src];
      }
    }
  });
  return nullptr;
}


// copy(x, xOff, y, yOff, dims) with dims = Int32Array [rank, shape(rank), srcStrides(rank),
// dstStrides(rank)] in elements: a strided copy of 4-byte elements (slice, concat, split).
napi_value Copy(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  std::vector<long> d;
  if (!get_dims(env, argv[4], 3, &d)) {
    napi_throw_type_error(env, nullptr, "copy: bad dims");
    return nullptr;
  }
  const int rank = (int)d[0];
  const long* shape = &d[1];
  const long* ss = &d[1 + rank];
  const long* ds = &d[1 + 2 * rank];
  long total = 1, sSpan = 1, dSpan = 1;
  for (int i = 0; i < rank; i++) {
    if (shape[i] < 0 || ss[i] < 0 || ds[i] < 0) {
      napi_throw_range_error(env, nullptr, "copy: negative size or stride");
      return nullptr;
    }
    total *= shape[i];
    sSpan += ss[i] * (shape[i] - 1);
    dSpan += ds[i] * (shape[i] - 1);
  }
  if (total == 0) return nullptr;
  Ptr x, y;
  if (!get_ptr(env, argv[0], argv[1], 4 * sSpan, "copy x", &x) || !get_ptr(env, argv[2], argv[3], 4 * dSpan, "copy y", &y)) return nullptr;
  const float* xp = reinterpret_cast<const float*>(x.base);
  float* yp = reinterpret_cast<float*>(y.base);
  const long inner = shape[rank - 1], si = ss[rank - 1], di = ds[rank - 1];
  const long rows = total / inner;
  const int want = chunks_for(total);
  const int chunks = (int)(want < rows ? want : rows);
  g.pool->run(chunks, [&](int c, int) {
    const long r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks;
    for (long r = r0; r < r1; r++) {
      long so = 0, dof = 0, rem = r;
      for (int k = rank - 2; k >= 0; k--) {
        const long idx = rem % shape[k];
        rem /= shape[k];
        so += idx * ss[k];
        dof += idx * ds[k];
      }
      if (si == 1 && di == 1) {
        std::memcpy(yp + dof, xp + so, 4 * inner);
      } else {
        for (long i = 0; i < inner; i++) yp[dof + i * di] = xp[so + i * si];
      }
    }
  });
  return nullptr;
}


// dropoutMask(y, yOff, n, key, threshold, scale): y[i] = scale when the hash of (key, i) has its
// top 24 bits >= threshold, else 0. The same hash as core/tensor/kernels/dropout.ts's JavaScript
// fallback, so a seed gives the same mask with or without the addon.
napi_value DropoutMask(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const long n = (long)num(env, argv[2]);
  const uint32_t key = (uint32_t)(uint64_t)num(env, argv[3]);
  const uint32_t threshold = (uint32_t)num(env, argv[4]);
  const float scale = (float)num(env, argv[5]);
  if (n < 0) {
    napi_throw_range_error(env, nullptr, "dropoutMask: negative size");
    return nullptr;
  }
  Ptr y;
  if (!get_ptr(env, argv[0], argv[1], 4 * n, "dropoutMask y", &y)) return nullptr;
  float* yp = reinterpret_cast<float*>(y.base);
  const int chunks = chunks_for(n);
  g.pool->run(chunks, [&](int c, int) {
    const long lo = (n * c / chunks) & ~7L, hi = c + 1 == chunks ? n : (n * (c + 1) / chunks) & ~7L;
    MTM_DISPATCH(dropout_range, yp, lo, hi, key, threshold, scale);
  });
  return nullptr;
}


// threadCpuMs(): CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID, not tick-sampled), for
// timing single-threaded work on a machine shared with other processes.
napi_value ThreadCpuMs(napi_env env, napi_callback_info) {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  napi_value v;
  napi_create_double(env, ts.tv_sec * 1e3 + ts.tv_nsec / 1e6, &v);
  return v;
}


// Reads argv[i], argv[i + 1] as (buffer, byte offset) of `floats` float32 values.
bool pair_ptr(napi_env env, napi_value* argv, int i, long floats, const char* what, float** out) {
  Ptr p;
  if (!get_ptr(env, argv[i], argv[i + 1], 4 * (size_t)floats, what, &p)) return false;
  *out = reinterpret_cast<float*>(p.base);
  return true;
}

// softmaxGrad(y, yOff, dy, dyOff, dx, dxOff, rows, cols)
napi_value SoftmaxGrad(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const long rows = (long)num(env, argv[6]), cols = (long)num(env, argv[7]);
  if (rows < 0 || cols < 0) {
    napi_throw_range_error(env, nullptr, "softmaxGrad: negative size");
    return nullptr;
  }
  float *y, *dy, *dx;
  if (!pair_ptr(env, argv, 0, rows * cols, "softmaxGrad y", &y) || !pair_ptr(env, argv, 2, rows * cols, "softmaxGrad dy", &dy) ||
      !pair_ptr(env, argv, 4, rows * cols, "softmaxGrad dx", &dx))
    return nullptr;
  if (cols == 0) return nullptr;
  const int want = chunks_for(rows * cols);
  const int chunks = (int)(want < rows ? want : rows);
  g.pool->run(chunks, [&](int c, int) {
    const long r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks;
    MTM_DISPATCH(softmax_grad_rows, y, dy, dx, cols, r0, r1);
  });
  return nullptr;
}

// layerNorm(x, xOff, gamma, gOff, beta, bOff, y, yOff, mean, mOff, rstd, rOff, rows, d, eps)
napi_value LayerNorm(napi_env env, napi_callback_info info) {
  size_t argc = 15;
  napi_value argv[15];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const long rows = (long)num(env, argv[12]), d = (long)num(env, argv[13]);
  const float eps = (float)num(env, argv[14]);
  if (rows < 0 || d < 1) {
    napi_throw_range_error(env, nullptr, "layerNorm: bad size");
    return nullptr;
  }
  float *x, *gm, *bt, *y, *mean, *rstd;
  if (!pair_ptr(env, argv, 0, rows * d, "layerNorm x", &x) || !pair_ptr(env, argv, 2, d, "layerNorm gamma", &gm) ||
      !pair_ptr(env, argv, 4, d, "layerNorm beta", &bt) || !pair_ptr(env, argv, 6, rows * d, "layerNorm y", &y) ||
      !pair_ptr(env, argv, 8, rows, "layerNorm mean", &mean) || !pair_ptr(env, argv, 10, rows, "layerNorm rstd", &rstd))
    return nullptr;
  const int want = chunks_for(rows * d);
  const int chunks = (int)(want < rows ? want : (rows ? rows : 1));
  g.pool->run(chunks, [&](int c, int) {
    const long r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks;
    MTM_DISPATCH(layernorm_rows, x, gm, bt, y, mean, rstd, d, eps, r0, r1);
  });
  return nullptr;
}

// Defined in encoder_layer.h (included below), which the fused encoder layer also uses.
void layer_norm_grad(const float* x, const float* dy, const float* gm, const float* mean, const float* rstd, float* dx, float* dg,
                     float* db, long rows, long d);

// layerNormGrad(x, xOff, dy, dyOff, gamma, gOff, mean, mOff, rstd, rOff, dx, dxOff, dgamma, dgOff,
//               dbeta, dbOff, rows, d)
napi_value LayerNormGrad(napi_env env, napi_callback_info info) {
  size_t argc = 18;
  napi_value argv[18];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const long rows = (long)num(env, argv[16]), d = (long)num(env, argv[17]);
  if (rows < 0 || d < 1) {
    napi_throw_range_error(env, nullptr, "layerNormGrad: bad size");
    return nullptr;
  }
  float *x, *dy, *gm, *mean, *rstd, *dx, *dg, *db;
  if (!pair_ptr(env, argv, 0, rows * d, "layerNormGrad x", &x) || !pair_ptr(env, argv, 2, rows * d, "layerNormGrad dy", &dy) ||
      !pair_ptr(env, argv, 4, d, "layerNormGrad gamma", &gm) || !pair_ptr(env, argv, 6, rows, "layerNormGrad mean", &mean) ||
      !pair_ptr(env, argv, 8, rows, "layerNormGrad rstd", &rstd) || !pair_ptr(env, argv, 10, rows * d, "layerNormGrad dx", &dx) ||
      !pair_ptr(env, argv, 12, d, "layerNormGrad dgamma", &dg) || !pair_ptr(env, argv, 14, d, "layerNormGrad dbeta", &db))
    return nullptr;
  layer_norm_grad(x, dy, gm, mean, rstd, dx, dg, db, rows, d);
  return nullptr;
}

// adamw(p, pOff, g, gOff, m, mOff, v, vOff, p1, p1Off, m1, m1Off, v1, v1Off, n, gradScale, b1,
//       b2, sqrtBc2, eps, decay, stepSize)
napi_value AdamW(napi_env env, napi_callback_info info) {
  size_t argc = 22;
  napi_value argv[22];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const long n = (long)num(env, argv[14]);
  if (n < 0) {
    napi_throw_range_error(env, nullptr, "adamw: negative size");
    return nullptr;
  }
  float *p, *gr, *m, *v, *p1, *m1, *v1;
  if (!pair_ptr(env, argv, 0, n, "adamw p", &p) || !pair_ptr(env, argv, 2, n, "adamw g", &gr) || !pair_ptr(env, argv, 4, n, "adamw m", &m) ||
      !pair_ptr(env, argv, 6, n, "adamw v", &v) || !pair_ptr(env, argv, 8, n, "adamw p1", &p1) || !pair_ptr(env, argv, 10, n, "adamw m1", &m1) ||
      !pair_ptr(env, argv, 12, n, "adamw v1", &v1))
    return nullptr;
  const double b1d = num(env, argv[16]), b2d = num(env, argv[17]);
  const float gs = (float)num(env, argv[15]), b1 = (float)b1d, b2 = (float)b2d, c1 = (float)(1.0 - b1d), c2 = (float)(1.0 - b2d);
  const float sbc2 = (float)num(env, argv[18]), eps = (float)num(env, argv[19]), decay = (float)num(env, argv[20]), step = (float)num(env, argv[21]);
  const int chunks = chunks_for(n);
  g.pool->run(chunks, [&](int c, int) {
    const long lo = n * c / chunks, hi = n * (c + 1) / chunks;
    MTM_DISPATCH(adamw_range, p, gr, m, v, p1, m1, v1, lo, hi, gs, b1, c1, b2, c2, sbc2, eps, decay, step);
  });
  return nullptr;
}

#include "encoder_layer.h"
#include "model_kernels.h"
#include "stream_step.h"

napi_value set_string(napi_env env, napi_value obj, const char* key, const std::string& v) {
  napi_value s;
  napi_create_string_utf8(env, v.c_str(), v.size(), &s);
  napi_set_named_property(env, obj, key, s);
  return obj;
}

napi_value set_number(napi_env env, napi_value obj, const char* key, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, obj, key, n);
  return obj;
}

// peak(bits, ms, threads): fp32 multiply-add throughput of `bits`-wide FMA (512 or 256) on
// `threads` threads of the pool (0: all) for about ms milliseconds each: {gflops, bits, threads,
// seconds}; gflops 0 when the CPU or the build lacks that ISA.
napi_value Peak(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  const int bits = argc > 0 ? (int)num(env, argv[0]) : 512;
  const double ms = argc > 1 ? num(env, argv[1]) : 200;
  int threads = argc > 2 ? (int)num(env, argv[2]) : 0;
  if (threads <= 0 || threads > g.pool->size()) threads = g.pool->size();
  float (*loop)(long) = nullptr;
#ifdef MTM_HAVE_AVX512_BUILD
  if (bits == 512 && g.cpu_avx512) loop = fma_loop_512;
#endif
#ifdef MTM_HAVE_AVX2_BUILD
  if (bits == 256 && g.cpu_avx2) loop = fma_loop_256;
#endif
  napi_value obj;
  CHECK(napi_create_object(env, &obj));
  set_number(env, obj, "bits", bits);
  set_number(env, obj, "threads", threads);
  if (!loop) {
    set_number(env, obj, "gflops", 0);
    return obj;
  }
  const double lanes = bits / 32.0;
  // Bursts of ~4 ms, all threads at once, for about `ms` in all; the best burst counts. Other
  // processes sharing the cores preempt long runs, short bursts still find quiet slices.
  long iters = 1 << 12;
  volatile float sink = 0;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    sink = sink + loop(iters);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (secs > 0.004) break;
    iters *= 2;
  }
  double best = 0, best_thread = 0, total = 0;
  int bursts = 0;
  std::vector<double> took(threads, 0);
  while (total < ms / 1000.0 || bursts < 3) {
    const auto t0 = std::chrono::steady_clock::now();
    g.pool->run(threads, [&](int task, int) {
      const auto a = std::chrono::steady_clock::now();
      const float r = loop(iters);
      took[task] = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
      if (r == 12345.f) sink = r;
    });
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    total += wall;
    bursts++;
    const double rate = 2.0 * lanes * 12.0 * (double)iters * threads / wall / 1e9;
    if (rate > best) best = rate;
    for (double t : took) {
      const double r1 = 2.0 * lanes * 12.0 * (double)iters / t / 1e9;
      if (r1 > best_thread) best_thread = r1;
    }
  }
  const double wall = total;
  set_number(env, obj, "gflops", best);
  set_number(env, obj, "perThreadGflops", best_thread);
  set_number(env, obj, "bursts", bursts);
  set_number(env, obj, "seconds", wall);
  return obj;
}

// info(): what this build runs: {gemm: 'openblas'|'builtin', blasPath, blasConfig, blasThreads,
// blasError, isa, threads}.
napi_value Info(napi_env env, napi_callback_info) {
  ensure_init();
  napi_value obj;
  CHECK(napi_create_object(env, &obj));
  set_string(env, obj, "gemm", g.use_blas ? "openblas" : "builtin");
  set_string(env, obj, "blasPath", g.blas.path);
  set_string(env, obj, "blasConfig", g.blas.get_config ? std::string(g.blas.get_config()) : std::string());
  set_number(env, obj, "blasThreads", g.blas.threads);
  set_string(env, obj, "blasError", g.blas.error);
  set_string(env, obj, "isa", isa_name());
  set_string(env, obj, "cpuIsa", g.cpu_avx512 ? "avx512f" : g.cpu_avx2 ? "avx2+fma" : "baseline");
  set_number(env, obj, "threads", g.pool->size());
  set_number(env, obj, "workerTasks", (double)g.pool->worker_tasks_.load());
  return obj;
}

// configure({blas?: boolean, threads?: number}): switch OpenBLAS off/on (when loaded) and resize
// the pool; used by tests and benchmarks to compare paths in one process.
napi_value Configure(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  ensure_init();
  if (argc < 1) return Info(env, info);
  bool has = false;
  napi_has_named_property(env, argv[0], "blas", &has);
  if (has) {
    napi_value v;
    bool b = false;
    napi_get_named_property(env, argv[0], "blas", &v);
    napi_get_value_bool(env, v, &b);
    if (b && !g.blas.sgemm) load_blas(true);
    g.use_blas = b && g.blas.sgemm != nullptr;
  }
  napi_has_named_property(env, argv[0], "isa", &has);
  if (has) {
    napi_value v;
    char buf[32] = {0};
    size_t len = 0;
    napi_get_named_property(env, argv[0], "isa", &v);
    napi_get_value_string_utf8(env, v, buf, sizeof buf, &len);
    set_isa(buf);
  }
  napi_has_named_property(env, argv[0], "threads", &has);
  if (has) {
    napi_value v;
    napi_get_named_property(env, argv[0], "threads", &v);
    int n = (int)num(env, v);
    if (n < 1) n = 1;
    g.pool->resize(n);
    g.work.assign(n, {});
  }
  return Info(env, info);
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"gemm", nullptr, Gemm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"configure", nullptr, Configure, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unary", nullptr, Unary, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"binary", nullptr, Binary, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reduce", nullptr, Reduce, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softmax", nullptr, Softmax, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"transpose", nullptr, Transpose, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"copy", nullptr, Copy, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"dropoutMask", nullptr, DropoutMask, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"threadCpuMs", nullptr, ThreadCpuMs, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softmaxGrad", nullptr, SoftmaxGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNorm", nullptr, LayerNorm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNormGrad", nullptr, LayerNormGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamw", nullptr, AdamW, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"peak", nullptr, Peak, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"encoderLayer", nullptr, EncoderLayer, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"aleaDropout", nullptr, AleaDropout, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"linear", nullptr, LinearFwd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"linearGrad", nullptr, LinearGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sumSquares", nullptr, SumSquares, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamwInPlace", nullptr, AdamWInPlace, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"poissonNll", nullptr, PoissonNll, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"poissonNllGrad", nullptr, PoissonNllGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"embed", nullptr, Embed, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamMatVec", nullptr, StreamMatVec, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamSparseRows", nullptr, StreamSparseRows, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
