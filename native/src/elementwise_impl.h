// Element-wise, reduction, softmax and transpose loops over float32, vectorised with GCC/Clang
// vector extensions. Included once per instruction-set namespace by kernels.cc (needs MTM_NS and
// gemm_impl.h's v8f/load8/store8/bcast in the same namespace). Each function handles one range;
// kernels.cc splits work across threads.

namespace MTM_NS {

typedef int v8i __attribute__((vector_size(32)));

enum UnaryOp { U_EXP = 0, U_ERF, U_NEG, U_ABS, U_SQUARE, U_SQRT, U_RSQRT, U_FLOOR, U_STEP, U_LOG, U_RECIPROCAL, U_RELU, U_SIGMOID, U_GELU, U_COUNT };
// B_ERF_GRAD and B_GELU_GRAD take (x, dy): the fused backward passes of erf and exact GELU.
enum BinaryOp { B_ADD = 0, B_SUB, B_MUL, B_DIV, B_MAX, B_MIN, B_SQDIFF, B_ERF_GRAD, B_GELU_GRAD, B_COUNT };

static inline v8f vselect(v8i mask, v8f a, v8f b) { return mask ? a : b; }
static inline v8f vabs(v8f x) {
  v8i bits;
  __builtin_memcpy(&bits, &x, sizeof bits);
  bits &= (v8i){0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff};
  v8f r;
  __builtin_memcpy(&r, &bits, sizeof r);
  return r;
}
static inline v8f vfloor(v8f x) {
  // Exact for |x| < 2^31; larger floats are already integers (or inf/NaN) and pass through.
  const v8f big = bcast(2147483648.f);
  v8f t = __builtin_convertvector(__builtin_convertvector(x, v8i), v8f);
  t = vselect(t > x, t - 1.f, t);
  return vselect(vabs(x) < big, t, x);
}

// exp with Cephes' expf polynomial (about 1 ulp); exact 0 below the float range, inf above, NaN kept.
static inline v8f vexp(v8f x) {
  // hi keeps round(x log2 e) <= 127 so 2^n stays a normal float (Cephes clamps at 88.3762626647949).
  const v8f hi = bcast(88.37626f), lo = bcast(-87.3365447505531f);
  v8f xc = vselect(x > hi, hi, x);
  xc = vselect(xc < lo, lo, xc);
  // Round x log2(e) to the nearest integer n by adding 1.5 * 2^23: n then sits in the low
  // mantissa bits of t, which also gives 2^n without a float-to-int conversion.
  const float magic = 12582912.f;
  const v8f t = xc * 1.44269504088896341f + magic;
  const v8f fx = t - magic;
  v8f r = xc - fx * 0.693359375f;
  r = r - fx * -2.12194440e-4f;
  v8f p = bcast(1.9875691500E-4f);
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r * r + r + 1.f;
  v8i n;
  __builtin_memcpy(&n, &t, sizeof n);
  n = (n - 0x4b400000 + 127) << 23;
  v8f scale;
  __builtin_memcpy(&scale, &n, sizeof scale);
  v8f y = p * scale;
  const v8f inf = bcast(__builtin_inff());
  y = vselect(x > hi, inf, y);
  y = vselect(x < lo, bcast(0.f), y);
  return vselect(x != x, x, y);
}

// erf: odd Taylor series near 0 (relative accuracy), 1 - erfc (Numerical Recipes' Chebyshev fit,
// fractional error < 1.2e-7 in erfc) beyond.
static inline v8f verf(v8f x) {
  const v8f a = vabs(x);
  const v8f z = x * x;
  // sum_{n<=10} (-1)^n z^n / (n! (2n+1)) times 2/sqrt(pi)
  // Horner from the highest term; coefficients c_n = (-1)^n / (n! (2n+1)).
  v8f s = bcast(1.0f / (3628800.0f * 21.0f));       // n = 10
  s = s * z - 1.0f / (362880.0f * 19.0f);           // n = 9
  s = s * z + 1.0f / (40320.0f * 17.0f);            // n = 8
  s = s * z - 1.0f / (5040.0f * 15.0f);             // n = 7
  s = s * z + 1.0f / (720.0f * 13.0f);              // n = 6
  s = s * z - 1.0f / (120.0f * 11.0f);              // n = 5
  s = s * z + 1.0f / (24.0f * 9.0f);                // n = 4
  s = s * z - 1.0f / (6.0f * 7.0f);                 // n = 3
  s = s * z + 1.0f / (2.0f * 5.0f);                 // n = 2
  s = s * z - 1.0f / 3.0f;                          // n = 1
  s = s * z + 1.0f;                                 // n = 0
  const v8f small = x * s * 1.12837916709551257f;
  const v8f t = 1.f / (a * 0.5f + 1.f);
  v8f q = bcast(0.17087277f);
  q = q * t - 0.82215223f;
  q = q * t + 1.48851587f;
  q = q * t - 1.13520398f;
  q = q * t + 0.27886807f;
  q = q * t - 0.18628806f;
  q = q * t + 0.09678418f;
  q = q * t + 0.37409196f;
  q = q * t + 1.00002368f;
  q = q * t - 1.26551223f;
  const v8f erfc = t * vexp(q - z);
  v8f large = 1.f - erfc;
  large = vselect(x < 0.f, -large, large);
  v8f y = vselect(a < 0.875f, small, large);
  return vselect(x != x, x, y);
}

static inline v8f vlog(v8f x) {
  // Cephes logf: x = m 2^e with m in [sqrt(1/2), sqrt(2)), polynomial in m - 1.
  v8i bits;
  __builtin_memcpy(&bits, &x, sizeof bits);
  v8i e = ((bits >> 23) & 0xff) - 126;
  v8i mbits = (bits & 0x007fffff) | 0x3f000000;
  v8f m;
  __builtin_memcpy(&m, &mbits, sizeof m);  // m in [0.5, 1)
  v8i lt = m < 0.707106781186547524f;
  v8f ef = __builtin_convertvector(e, v8f);
  ef = vselect(lt, ef - 1.f, ef);
  m = vselect(lt, m + m - 1.f, m - 1.f);
  const v8f z = m * m;
  v8f p = bcast(7.0376836292E-2f);
  p = p * m - 1.1514610310E-1f;
  p = p * m + 1.1676998740E-1f;
  p = p * m - 1.2420140846E-1f;
  p = p * m + 1.4249322787E-1f;
  p = p * m - 1.6668057665E-1f;
  p = p * m + 2.0000714765E-1f;
  p = p * m - 2.4999993993E-1f;
  p = p * m + 3.3333331174E-1f;
  v8f y = p * m * z;
  y = y + ef * -2.12194440e-4f;
  y = y - z * 0.5f;
  y = m + y + ef * 0.693359375f;
  const v8f inf = bcast(__builtin_inff());
  y = vselect(x == 0.f, -inf, y);
  y = vselect(x < 0.f, bcast(__builtin_nanf("")), y);
  y = vselect(x == inf, inf, y);
  // Subnormals fall outside the bit trick; they are rare enough to take the slow path below.
  return vselect(x != x, x, y);
}

static inline __attribute__((always_inline)) v8f unary_v(int op, v8f x, float alpha) {
  switch (op) {
    case U_EXP: return vexp(x);
    case U_ERF: return verf(x);
    case U_NEG: return -x;
    case U_ABS: return vabs(x);
    case U_SQUARE: return x * x;
    case U_SQRT:
    case U_RSQRT: return x;  // unary_range runs these as exact scalar loops
    case U_FLOOR: return vfloor(x);
    case U_STEP: return vselect(x != x, x, vselect(x > 0.f, bcast(1.f), bcast(alpha)));
    case U_LOG: return vlog(x);
    case U_RECIPROCAL: return 1.f / x;
    case U_RELU: return vselect(x != x, x, vselect(x > 0.f, x, bcast(0.f)));
    case U_SIGMOID: return 1.f / (1.f + vexp(-x));
    case U_GELU: return x * 0.5f * (verf(x * 0.70710678118654752f) + 1.f);
  }
  return x;
}

static inline float unary_s(int op, float x, float alpha) {
  float in[8] = {x, x, x, x, x, x, x, x}, out[8];
  store8(out, unary_v(op, load8(in), alpha));
  return out[0];
}

template <int OP>
static void unary_loop(const float* x, float* y, long n, float alpha) {
  long i = 0;
  for (; i + 8 <= n; i += 8) store8(y + i, unary_v(OP, load8(x + i), alpha));
  if (i < n) {
    float in[8] = {0, 0, 0, 0, 0, 0, 0, 0}, out[8];
    for (long j = i; j < n; j++) in[j - i] = x[j];
    store8(out, unary_v(OP, load8(in), alpha));
    for (long j = i; j < n; j++) y[j] = out[j - i];
  }
}

static void unary_range(int op, const float* x, float* y, long n, float alpha) {
  switch (op) {
    case U_SQRT:
      // Exact sqrt (vectorised by the compiler); an approximate rsqrt would differ from tfjs.
      for (long i = 0; i < n; i++) y[i] = __builtin_sqrtf(x[i]);
      return;
    case U_RSQRT:
      for (long i = 0; i < n; i++) y[i] = 1.f / __builtin_sqrtf(x[i]);
      return;
    case U_LOG:
      unary_loop<U_LOG>(x, y, n, alpha);
      // Subnormal inputs fall outside vlog's exponent trick.
      for (long j = 0; j < n; j++)
        if (x[j] > 0.f && x[j] < 1.17549435e-38f) y[j] = __builtin_logf(x[j]);
      return;
    case U_EXP: return unary_loop<U_EXP>(x, y, n, alpha);
    case U_ERF: return unary_loop<U_ERF>(x, y, n, alpha);
    case U_NEG: return unary_loop<U_NEG>(x, y, n, alpha);
    case U_ABS: return unary_loop<U_ABS>(x, y, n, alpha);
    case U_SQUARE: return unary_loop<U_SQUARE>(x, y, n, alpha);
    case U_FLOOR: return unary_loop<U_FLOOR>(x, y, n, alpha);
    case U_STEP: return unary_loop<U_STEP>(x, y, n, alpha);
    case U_RECIPROCAL: return unary_loop<U_RECIPROCAL>(x, y, n, alpha);
    case U_RELU: return unary_loop<U_RELU>(x, y, n, alpha);
    case U_SIGMOID: return unary_loop<U_SIGMOID>(x, y, n, alpha);
    case U_GELU: return unary_loop<U_GELU>(x, y, n, alpha);
  }
}

static inline __attribute__((always_inline)) v8f binary_v(int op, v8f a, v8f b) {
  switch (op) {
    case B_ADD: return a + b;
    case B_SUB: return a - b;
    case B_MUL: return a * b;
    case B_DIV: return a / b;
    // NaN in either operand gives NaN, as tfjs does.
    case B_MAX: return vselect(a != a, a, vselect(b != b, b, vselect(a > b, a, b)));
    case B_MIN: return vselect(a != a, a, vselect(b != b, b, vselect(a < b, a, b)));
    case B_SQDIFF: { const v8f d = a - b; return d * d; }
    case B_ERF_GRAD: return b * 1.12837916709551257f * vexp(-(a * a));
    case B_GELU_GRAD: {
      const v8f cdf = (verf(a * 0.70710678118654752f) + 1.f) * 0.5f;
      const v8f pdf = vexp(a * a * -0.5f) * 0.39894228040143268f;
      return b * (cdf + a * pdf);
    }
  }
  return a;
}

static inline float binary_s(int op, float a, float b) {
  switch (op) {
    case B_ADD: return a + b;
    case B_SUB: return a - b;
    case B_MUL: return a * b;
    case B_DIV: return a / b;
    case B_MAX: return a != a ? a : b != b ? b : a > b ? a : b;
    case B_MIN: return a != a ? a : b != b ? b : a < b ? a : b;
    case B_SQDIFF: { const float d = a - b; return d * d; }
    case B_ERF_GRAD:
    case B_GELU_GRAD: {
      float in_a[8] = {a, a, a, a, a, a, a, a}, in_b[8] = {b, b, b, b, b, b, b, b}, out[8];
      store8(out, binary_v(op, load8(in_a), load8(in_b)));
      return out[0];
    }
  }
  return a;
}

template <int OP>
static void binary_loop(const float* a, int sa, const float* b, int sb, float* y, long n) {
  long i = 0;
  if (sa && sb) {
    for (; i + 8 <= n; i += 8) store8(y + i, binary_v(OP, load8(a + i), load8(b + i)));
    for (; i < n; i++) y[i] = binary_s(OP, a[i], b[i]);
  } else if (sa) {
    const v8f bv = bcast(b[0]);
    for (; i + 8 <= n; i += 8) store8(y + i, binary_v(OP, load8(a + i), bv));
    for (; i < n; i++) y[i] = binary_s(OP, a[i], b[0]);
  } else if (sb) {
    const v8f av = bcast(a[0]);
    for (; i + 8 <= n; i += 8) store8(y + i, binary_v(OP, av, load8(b + i)));
    for (; i < n; i++) y[i] = binary_s(OP, a[0], b[i]);
  } else {
    const float v = binary_s(OP, a[0], b[0]);
    for (; i < n; i++) y[i] = v;
  }
}

// y[i] = a[i*sa] op b[i*sb] for i < n, with sa, sb in {0, 1}.
static void binary_row(int op, const float* a, int sa, const float* b, int sb, float* y, long n) {
  switch (op) {
    case B_ADD: return binary_loop<B_ADD>(a, sa, b, sb, y, n);
    case B_SUB: return binary_loop<B_SUB>(a, sa, b, sb, y, n);
    case B_MUL: return binary_loop<B_MUL>(a, sa, b, sb, y, n);
    case B_DIV: return binary_loop<B_DIV>(a, sa, b, sb, y, n);
    case B_MAX: return binary_loop<B_MAX>(a, sa, b, sb, y, n);
    case B_MIN: return binary_loop<B_MIN>(a, sa, b, sb, y, n);
    case B_SQDIFF: return binary_loop<B_SQDIFF>(a, sa, b, sb, y, n);
    case B_ERF_GRAD: return binary_loop<B_ERF_GRAD>(a, sa, b, sb, y, n);
    case B_GELU_GRAD: return binary_loop<B_GELU_GRAD>(a, sa, b, sb, y, n);
  }
}

// out[r] = sum of x[r*cols .. r*cols+cols) for r in [r0, r1).
static void sum_rows(const float* x, long cols, long r0, long r1, float* out) {
  for (long r = r0; r < r1; r++) {
    const float* row = x + r * cols;
    v8f s0 = {}, s1 = {}, s2 = {}, s3 = {};
    long i = 0;
    for (; i + 32 <= cols; i += 32) {
      s0 += load8(row + i);
      s1 += load8(row + i + 8);
      s2 += load8(row + i + 16);
      s3 += load8(row + i + 24);
    }
    for (; i + 8 <= cols; i += 8) s0 += load8(row + i);
    v8f s = (s0 + s1) + (s2 + s3);
    float lanes[8];
    store8(lanes, s);
    float total = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    for (; i < cols; i++) total += row[i];
    out[r] = total;
  }
}

// out[j - c0] = sum over r < rows of x[r*stride + j], for j in [c0, c1).
static void sum_cols(const float* x, long rows, long stride, long c0, long c1, float* out) {
  long j = c0;
  for (; j + 32 <= c1; j += 32) {
    v8f s0 = {}, s1 = {}, s2 = {}, s3 = {};
    for (long r = 0; r < rows; r++) {
      const float* p = x + r * stride + j;
      s0 += load8(p);
      s1 += load8(p + 8);
      s2 += load8(p + 16);
      s3 += load8(p + 24);
    }
    store8(out + (j - c0), s0);
    store8(out + (j - c0) + 8, s1);
    store8(out + (j - c0) + 16, s2);
    store8(out + (j - c0) + 24, s3);
  }
  for (; j + 8 <= c1; j += 8) {
    v8f s = {};
    for (long r = 0; r < rows; r++) s += load8(x + r * stride + j);
    store8(out + (j - c0), s);
  }
  for (; j < c1; j++) {
    float s = 0.f;
    for (long r = 0; r < rows; r++) s += x[r * stride + j];
    out[j - c0] = s;
  }
}

// Row-wise max of x over cols, for rows [r0, r1).
static void max_rows(const float* x, long cols, long r0, long r1, float* out) {
  for (long r = r0; r < r1; r++) {
    const float* row = x + r * cols;
    float m = -__builtin_inff();
    bool nan = false;
    long i = 0;
    if (cols >= 8) {
      v8f mv = load8(row);
      v8i nv = mv != mv;
      for (i = 8; i + 8 <= cols; i += 8) {
        const v8f v = load8(row + i);
        nv |= v != v;
        mv = vselect(v > mv, v, mv);
      }
      float lanes[8];
      int nl[8];
      store8(lanes, mv);
      __builtin_memcpy(nl, &nv, sizeof nl);
      for (int l = 0; l < 8; l++) {
        m = lanes[l] > m ? lanes[l] : m;
        nan |= nl[l] != 0;
      }
    }
    for (; i < cols; i++) {
      nan |= row[i] != row[i];
      m = row[i] > m ? row[i] : m;
    }
    out[r] = nan ? __builtin_nanf("") : m;
  }
}

// Softmax over the last axis for rows [r0, r1).
static void softmax_rows(const float* x, float* y, long cols, long r0, long r1) {
  const long full = cols & ~7L;
  const float ninf = -__builtin_inff();
  for (long r = r0; r < r1; r++) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    float m;
    max_rows(xr, cols, 0, 1, &m);
    const v8f mv = bcast(m);
    v8f sv = {};
    for (long i = 0; i < full; i += 8) {
      const v8f e = vexp(load8(xr + i) - mv);
      store8(yr + i, e);
      sv += e;
    }
    if (full < cols) {
      // The ragged end as one padded vector: exp(-inf) = 0 adds nothing to the sum.
      float in[8] = {ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf}, out[8];
      for (long i = full; i < cols; i++) in[i - full] = xr[i];
      const v8f e = vexp(load8(in) - mv);
      store8(out, e);
      sv += e;
      for (long i = full; i < cols; i++) yr[i] = out[i - full];
    }
    float lanes[8];
    store8(lanes, sv);
    const float s = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    const float inv = 1.f / s;
    const v8f iv = bcast(inv);
    long i = 0;
    for (; i < full; i += 8) store8(yr + i, load8(yr + i) * iv);
    for (; i < cols; i++) yr[i] *= inv;
  }
}

typedef unsigned v8u __attribute__((vector_size(32)));

// The dropout mask of kernels.cc's DropoutMask, eight elements at a time.
static void dropout_range(float* y, long lo, long hi, uint32_t key, uint32_t threshold, float scale) {
  long i = lo;
  const v8u golden = {0x9e3779b9U, 0x9e3779b9U, 0x9e3779b9U, 0x9e3779b9U, 0x9e3779b9U, 0x9e3779b9U, 0x9e3779b9U, 0x9e3779b9U};
  const v8f sv = bcast(scale), zero = bcast(0.f);
  for (; i + 8 <= hi; i += 8) {
    const uint32_t b = (uint32_t)i;
    v8u x = (v8u){b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7} * golden + key;
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    const v8i keep = (x >> 8) >= threshold;
    store8(y + i, vselect(keep, sv, zero));
  }
  for (; i < hi; i++) {
    uint32_t x = (uint32_t)i * 0x9e3779b9U + key;
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    y[i] = (x >> 8) >= threshold ? scale : 0.f;
  }
}


// Softmax backward over the last axis: dx = (dy - sum(dy * y)) * y, rows [r0, r1).
static void softmax_grad_rows(const float* y, const float* dy, float* dx, long cols, long r0, long r1) {
  const long full = cols & ~7L;
  for (long r = r0; r < r1; r++) {
    const float* yr = y + r * cols;
    const float* dr = dy + r * cols;
    float* xr = dx + r * cols;
    v8f sv = {};
    for (long i = 0; i < full; i += 8) sv += load8(yr + i) * load8(dr + i);
    float lanes[8];
    store8(lanes, sv);
    float s = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    for (long i = full; i < cols; i++) s += yr[i] * dr[i];
    const v8f ss = bcast(s);
    for (long i = 0; i < full; i += 8) store8(xr + i, (load8(dr + i) - ss) * load8(yr + i));
    for (long i = full; i < cols; i++) xr[i] = (dr[i] - s) * yr[i];
  }
}

static inline float hsum(v8f v) {
  float l[8];
  store8(l, v);
  return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

// LayerNorm forward over rows [r0, r1) of width d: y = (x - mean) * rstd * gamma + beta, with
// rstd = 1 / sqrt(mean((x - mean)^2) + eps); mean and rstd are kept for the backward pass.
static void layernorm_rows(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd, long d, float eps,
                           long r0, long r1) {
  const long full = d & ~7L;
  const float inv_d = 1.f / (float)d;
  for (long r = r0; r < r1; r++) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    v8f sv = {};
    for (long i = 0; i < full; i += 8) sv += load8(xr + i);
    float s = hsum(sv);
    for (long i = full; i < d; i++) s += xr[i];
    const float mu = s * inv_d;
    const v8f mv = bcast(mu);
    v8f qv = {};
    for (long i = 0; i < full; i += 8) {
      const v8f c = load8(xr + i) - mv;
      qv += c * c;
    }
    float q = hsum(qv);
    for (long i = full; i < d; i++) q += (xr[i] - mu) * (xr[i] - mu);
    const float rs = 1.f / __builtin_sqrtf(q * inv_d + eps);
    mean[r] = mu;
    rstd[r] = rs;
    const v8f rv = bcast(rs);
    for (long i = 0; i < full; i += 8) store8(yr + i, (load8(xr + i) - mv) * rv * load8(gamma + i) + load8(beta + i));
    for (long i = full; i < d; i++) yr[i] = (xr[i] - mu) * rs * gamma[i] + beta[i];
  }
}

// LayerNorm backward for rows [r0, r1): dx, and dgamma / dbeta added into the given partial sums.
static void layernorm_grad_rows(const float* x, const float* dy, const float* gamma, const float* mean, const float* rstd, float* dx,
                                float* dgamma, float* dbeta, long d, long r0, long r1) {
  const long full = d & ~7L;
  const float inv_d = 1.f / (float)d;
  for (long r = r0; r < r1; r++) {
    const float* xr = x + r * d;
    const float* dr = dy + r * d;
    float* out = dx + r * d;
    const float mu = mean[r], rs = rstd[r];
    const v8f mv = bcast(mu), rv = bcast(rs);
    v8f s1 = {}, s2 = {};
    for (long i = 0; i < full; i += 8) {
      const v8f xh = (load8(xr + i) - mv) * rv;
      const v8f dyv = load8(dr + i);
      const v8f gv = dyv * load8(gamma + i);
      s1 += gv;
      s2 += gv * xh;
      store8(dgamma + i, load8(dgamma + i) + dyv * xh);
      store8(dbeta + i, load8(dbeta + i) + dyv);
    }
    float a1 = hsum(s1), a2 = hsum(s2);
    for (long i = full; i < d; i++) {
      const float xh = (xr[i] - mu) * rs, gv = dr[i] * gamma[i];
      a1 += gv;
      a2 += gv * xh;
      dgamma[i] += dr[i] * xh;
      dbeta[i] += dr[i];
    }
    const float m1 = a1 * inv_d, m2 = a2 * inv_d;
    const v8f m1v = bcast(m1), m2v = bcast(m2);
    for (long i = 0; i < full; i += 8) {
      const v8f xh = (load8(xr + i) - mv) * rv;
      store8(out + i, (load8(dr + i) * load8(gamma + i) - m1v - xh * m2v) * rv);
    }
    for (long i = full; i < d; i++) {
      const float xh = (xr[i] - mu) * rs;
      out[i] = (dr[i] * gamma[i] - m1 - xh * m2) * rs;
    }
  }
}

// One AdamW update over [lo, hi) (decoupled decay), as core/train/adamw.ts computes it:
// g *= gradScale; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p = p decay - m / (sqrt(v) / sqrtBc2 + eps) * stepSize.
// c1 = 1 - b1 and c2 = 1 - b2 come from the caller in double precision: 1 - float(0.999) is off by 1e-5.
static void adamw_range(const float* p, const float* g, const float* m, const float* v, float* p1, float* m1, float* v1, long lo, long hi,
                        float gradScale, float b1, float c1, float b2, float c2, float sqrtBc2, float eps, float decay, float stepSize) {
  for (long i = lo; i < hi; i++) {
    const float gi = g[i] * gradScale;
    const float mi = m[i] * b1 + gi * c1;
    const float vi = v[i] * b2 + gi * gi * c2;
    const float denom = __builtin_sqrtf(vi) / sqrtBc2 + eps;
    m1[i] = mi;
    v1[i] = vi;
    p1[i] = p[i] * decay - mi / denom * stepSize;
  }
}


// 8x8 block transpose in registers: dst row j = src column j.
static inline void transpose8x8(const float* src, long ss, float* dst, long ds) {
  const v8i lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
  const v8i l2 = {0, 1, 8, 9, 4, 5, 12, 13}, h2 = {2, 3, 10, 11, 6, 7, 14, 15};
  const v8i l4 = {0, 1, 2, 3, 8, 9, 10, 11}, h4 = {4, 5, 6, 7, 12, 13, 14, 15};
  const v8f r0 = load8(src), r1 = load8(src + ss), r2 = load8(src + 2 * ss), r3 = load8(src + 3 * ss);
  const v8f r4 = load8(src + 4 * ss), r5 = load8(src + 5 * ss), r6 = load8(src + 6 * ss), r7 = load8(src + 7 * ss);
  const v8f t0 = __builtin_shuffle(r0, r1, lo), t1 = __builtin_shuffle(r0, r1, hi);
  const v8f t2 = __builtin_shuffle(r2, r3, lo), t3 = __builtin_shuffle(r2, r3, hi);
  const v8f t4 = __builtin_shuffle(r4, r5, lo), t5 = __builtin_shuffle(r4, r5, hi);
  const v8f t6 = __builtin_shuffle(r6, r7, lo), t7 = __builtin_shuffle(r6, r7, hi);
  const v8f u0 = __builtin_shuffle(t0, t2, l2), u1 = __builtin_shuffle(t0, t2, h2);
  const v8f u2 = __builtin_shuffle(t1, t3, l2), u3 = __builtin_shuffle(t1, t3, h2);
  const v8f u4 = __builtin_shuffle(t4, t6, l2), u5 = __builtin_shuffle(t4, t6, h2);
  const v8f u6 = __builtin_shuffle(t5, t7, l2), u7 = __builtin_shuffle(t5, t7, h2);
  store8(dst, __builtin_shuffle(u0, u4, l4));
  store8(dst + ds, __builtin_shuffle(u1, u5, l4));
  store8(dst + 2 * ds, __builtin_shuffle(u2, u6, l4));
  store8(dst + 3 * ds, __builtin_shuffle(u3, u7, l4));
  store8(dst + 4 * ds, __builtin_shuffle(u0, u4, h4));
  store8(dst + 5 * ds, __builtin_shuffle(u1, u5, h4));
  store8(dst + 6 * ds, __builtin_shuffle(u2, u6, h4));
  store8(dst + 7 * ds, __builtin_shuffle(u3, u7, h4));
}

// B = A^T for rows [i0, i1) of A (cols n of A become rows of B): A row stride sa, B row stride sb.
static void transpose_band(const float* A, long sa, float* B, long sb, long n, long i0, long i1) {
  long j = 0;
  for (; j + 8 <= n; j += 8) {
    long i = i0;
    for (; i + 8 <= i1; i += 8) transpose8x8(A + i * sa + j, sa, B + j * sb + i, sb);
    for (; i < i1; i++)
      for (long jj = j; jj < j + 8; jj++) B[jj * sb + i] = A[i * sa + jj];
  }
  for (; j < n; j++)
    for (long i = i0; i < i1; i++) B[j * sb + i] = A[i * sa + j];
}

}  // namespace MTM_NS
