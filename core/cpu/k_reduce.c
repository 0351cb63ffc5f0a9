/* Reduction CPU kernels: REDUCE_SUM/MAX/MIN, LOGSUMEXP, ARGMAX, SOFTMAX, LOG_SOFTMAX.
   The input is coalesced into alternating kept/reduced segments. One reduced segment followed by a kept one
   ([outer, R, inner], inner > 1) runs column-blocked so every load is contiguous; everything else reduces, per
   output element, runs along the innermost reduced dim. Sums accumulate in double, in a block structure fixed by
   the sizes alone, so results do not depend on the thread count. */
#include <math.h>
#include <omp.h>
#include "../elementwise_math.h"
#include "cpu_util.h"

#ifdef __clang__ /* see run_max */
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

typedef enum { RK_SUM, RK_MAX, RK_MIN, RK_SUMEXP } rkind;

#define COLS 256          /* columns per block in the column paths (stack accumulators) */
#define BIG_RUN 65536     /* runs at least this long are split into RUN_BLOCKS partials */
#define RUN_BLOCKS 64

/* ---- one strided run ---- */

static double run_sum(const float *x, int64_t n, int64_t s) {
  double acc = 0.0;
  if (s == 1) {
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < n; i++) acc += x[i];
  } else {
    for (int64_t i = 0; i < n; i++) acc += x[i * s];
  }
  return acc;
}

static double run_sumexp(const float *x, int64_t n, int64_t s, float shift) {
  double acc = 0.0;
  if (s == 1) {
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < n; i++) acc += evo_expf(x[i] - shift);
  } else {
    for (int64_t i = 0; i < n; i++) acc += evo_expf(x[i * s] - shift);
  }
  return acc;
}

/* NaN-propagating extremes: a max/min reduction plus an "any NaN" flag. GCC vectorises the omp simd form (a float
   max reduction otherwise needs -ffast-math); clang vectorises the contiguous case of run_max but not run_min's
   flag, and warns for the pragma (silenced at the top of the file). */
#define PRAGMA_(x) _Pragma(#x)
#define PRAGMA(x) PRAGMA_(x) /* expands macro arguments inside the pragma */
#define RUN_EXTREME(CMP, INIT)                                                                                 \
  do {                                                                                                         \
    float m = (INIT);                                                                                          \
    int nan = 0;                                                                                               \
    if (s == 1) {                                                                                              \
      PRAGMA(omp simd reduction(CMP : m) reduction(| : nan))                                                   \
      for (int64_t i = 0; i < n; i++) {                                                                        \
        m = RUN_TAKE_##CMP(x[i], m) ? x[i] : m;                                                                \
        nan |= x[i] != x[i];                                                                                   \
      }                                                                                                        \
    } else {                                                                                                   \
      for (int64_t i = 0; i < n; i++) {                                                                        \
        m = RUN_TAKE_##CMP(x[i * s], m) ? x[i * s] : m;                                                        \
        nan |= x[i * s] != x[i * s];                                                                           \
      }                                                                                                        \
    }                                                                                                          \
    return nan ? NAN : m;                                                                                      \
  } while (0)
#define RUN_TAKE_max(v, m) ((v) > (m))
#define RUN_TAKE_min(v, m) ((v) < (m))

static float run_max(const float *x, int64_t n, int64_t s) { RUN_EXTREME(max, -INFINITY); }
static float run_min(const float *x, int64_t n, int64_t s) { RUN_EXTREME(min, INFINITY); }

static double identity(rkind k) { return k == RK_MAX ? -INFINITY : (k == RK_MIN ? INFINITY : 0.0); }

static double combine(rkind k, double a, double b) {
  if (k == RK_SUM || k == RK_SUMEXP) return a + b;
  if (a != a || b != b) return a != a ? a : b;
  return k == RK_MAX ? (b > a ? b : a) : (b < a ? b : a);
}

static double run_acc(rkind k, const float *x, int64_t n, int64_t s, float shift) {
  switch (k) {
  case RK_SUM: return run_sum(x, n, s);
  case RK_SUMEXP: return run_sumexp(x, n, s, shift);
  case RK_MAX: return run_max(x, n, s);
  case RK_MIN: return run_min(x, n, s);
  }
  return 0.0;
}

/* A long run as RUN_BLOCKS partials combined in order (parallel when `par`): pairwise-like accuracy, and the
   same answer whether or not threads were used. */
static double big_run(rkind k, const float *x, int64_t n, int64_t s, float shift, bool par) {
  if (n < BIG_RUN) return run_acc(k, x, n, s, shift);
  double part[RUN_BLOCKS];
#pragma omp parallel for if (par) schedule(static)
  for (int b = 0; b < RUN_BLOCKS; b++) {
    int64_t lo = n * b / RUN_BLOCKS, hi = n * (b + 1) / RUN_BLOCKS;
    part[b] = run_acc(k, x + lo * s, hi - lo, s, shift);
  }
  double acc = identity(k);
  for (int b = 0; b < RUN_BLOCKS; b++) acc = combine(k, acc, part[b]);
  return acc;
}

/* ---- the coalesced view ---- */

typedef struct {
  int nk, nr;                      /* kept / reduced dims after coalescing */
  int64_t ks[EVO_MAX_DIMS], kst[EVO_MAX_DIMS];
  int64_t rs[EVO_MAX_DIMS], rst[EVO_MAX_DIMS];
  bool last_reduced;               /* the innermost non-unit dim is reduced */
  int nseg;                        /* alternating kept/reduced segments */
} rview;

static void rview_init(rview *v, int ndim, const int64_t *shape, uint32_t axes) {
  int64_t st[EVO_MAX_DIMS];
  evo_cpu_contig_strides(ndim, shape, st);
  v->nk = v->nr = v->nseg = 0;
  int prev = -1; /* status of the previous non-unit dim: 0 kept, 1 reduced */
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1) continue;
    int red = (axes >> d) & 1u;
    int64_t *s = red ? v->rs : v->ks, *t = red ? v->rst : v->kst;
    int *cnt = red ? &v->nr : &v->nk;
    if (red == prev) { /* adjacent non-unit dims of a contiguous tensor always merge */
      s[*cnt - 1] *= shape[d];
      t[*cnt - 1] = st[d];
    } else {
      s[*cnt] = shape[d];
      t[*cnt] = st[d];
      (*cnt)++;
      v->nseg++;
    }
    prev = red;
  }
  v->last_reduced = prev == 1;
}

/* Combines kind k over the reduced set of the output whose first element is at x. */
static double visit(const rview *v, rkind k, const float *x, float shift, bool par) {
  const int last = v->nr - 1;
  int64_t idx[EVO_MAX_DIMS] = {0}, off = 0;
  double acc = identity(k);
  for (;;) {
    acc = combine(k, acc, big_run(k, x + off, v->rs[last], v->rst[last], shift, par));
    int d = last - 1;
    for (; d >= 0; d--) {
      off += v->rst[d];
      if (++idx[d] < v->rs[d]) break;
      off -= v->rst[d] * v->rs[d];
      idx[d] = 0;
    }
    if (d < 0) return acc;
  }
}

static float reduce_one(const rview *v, evo_op op, const float *x, bool par) {
  switch (op) {
  case EVO_OP_REDUCE_SUM: return (float)visit(v, RK_SUM, x, 0.0f, par);
  case EVO_OP_REDUCE_MAX: return (float)visit(v, RK_MAX, x, 0.0f, par);
  case EVO_OP_REDUCE_MIN: return (float)visit(v, RK_MIN, x, 0.0f, par);
  default: { /* logsumexp = m + log(sum exp(x - m)); +-inf and NaN maxima are the answer themselves */
    float m = (float)visit(v, RK_MAX, x, 0.0f, par);
    if (!isfinite(m)) return m;
    return m + (float)log(visit(v, RK_SUMEXP, x, m, par));
  }
  }
}

/* [outer, R, inner] with inner > 1: COLS columns at a time, rows streamed in order. */
static void reduce_cols(evo_op op, const float *x, float *y, int64_t outer, int64_t R, int64_t inner) {
  const int64_t nblk = (inner + COLS - 1) / COLS, items = outer * nblk;
#pragma omp parallel for if (outer * R * inner > EVO_CPU_PAR_MIN && items > 1) schedule(static)
  for (int64_t it = 0; it < items; it++) {
    const int64_t o = it / nblk, c0 = (it % nblk) * COLS;
    const int64_t nc = inner - c0 < COLS ? inner - c0 : COLS;
    const float *xb = x + o * R * inner + c0;
    float *yb = y + o * inner + c0;
    double acc[COLS];
    float m[COLS];
    if (op == EVO_OP_REDUCE_SUM) {
      for (int64_t c = 0; c < nc; c++) acc[c] = 0.0;
      for (int64_t r = 0; r < R; r++) {
        const float *row = xb + r * inner;
#pragma omp simd
        for (int64_t c = 0; c < nc; c++) acc[c] += row[c];
      }
      for (int64_t c = 0; c < nc; c++) yb[c] = (float)acc[c];
      continue;
    }
    const bool is_min = op == EVO_OP_REDUCE_MIN;
    for (int64_t c = 0; c < nc; c++) m[c] = is_min ? INFINITY : -INFINITY;
    for (int64_t r = 0; r < R; r++) {
      const float *row = xb + r * inner;
      if (is_min) {
        for (int64_t c = 0; c < nc; c++) m[c] = (row[c] < m[c] || row[c] != row[c]) && m[c] == m[c] ? row[c] : m[c];
      } else {
        for (int64_t c = 0; c < nc; c++) m[c] = (row[c] > m[c] || row[c] != row[c]) && m[c] == m[c] ? row[c] : m[c];
      }
    }
    if (op != EVO_OP_LOGSUMEXP) {
      for (int64_t c = 0; c < nc; c++) yb[c] = m[c];
      continue;
    }
    float shift[COLS];
    for (int64_t c = 0; c < nc; c++) {
      acc[c] = 0.0;
      shift[c] = isfinite(m[c]) ? m[c] : 0.0f;
    }
    for (int64_t r = 0; r < R; r++) {
      const float *row = xb + r * inner;
#pragma omp simd
      for (int64_t c = 0; c < nc; c++) acc[c] += evo_expf(row[c] - shift[c]);
    }
    for (int64_t c = 0; c < nc; c++) yb[c] = isfinite(m[c]) ? m[c] + (float)log(acc[c]) : m[c];
  }
}

evo_status evo_cpu_reduce(const evo_kernel_args *a) {
  const evo_node_t *node = a->node, *in = a->in[0];
  if (node->dtype != EVO_F32 || in->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cpu %s: f32 only", evo_op_name(node->op));
  const float *x = a->src[0];
  float *y = a->dst;
  const int64_t nin = evo_cpu_numel(in->ndim, in->shape), nout = evo_cpu_numel(node->ndim, node->shape);
  if (nin == 0) { /* empty reductions give the identity (logsumexp of nothing is -inf) */
    float id = node->op == EVO_OP_REDUCE_SUM ? 0.0f : (node->op == EVO_OP_REDUCE_MIN ? INFINITY : -INFINITY);
    for (int64_t i = 0; i < nout; i++) y[i] = id;
    return EVO_STATUS_OK;
  }
  rview v;
  rview_init(&v, in->ndim, in->shape, node->p.axes);
  if (v.nr == 0) { /* only size-1 axes reduced: every op is the identity on one element */
    for (int64_t i = 0; i < nin; i++) y[i] = x[i];
    return EVO_STATUS_OK;
  }
  if (v.nr == 1 && !v.last_reduced && v.nseg <= 3) {
    /* [outer?, R, inner] */
    const int64_t inner = v.kst[v.nk - 1] == 1 ? v.ks[v.nk - 1] : 1;
    const int64_t R = v.rs[0], outer = nout / inner;
    reduce_cols(node->op, x, y, outer, R, inner);
    return EVO_STATUS_OK;
  }
  /* per output: kept-dim offset by div/mod (outputs are few or runs long in the cases that land here) */
  const bool big = nin > EVO_CPU_PAR_MIN;
  const bool par_out = big && nout >= 4 * omp_get_max_threads();
#pragma omp parallel for if (par_out) schedule(static)
  for (int64_t o = 0; o < nout; o++) {
    int64_t rem = o, off = 0;
    for (int d = v.nk - 1; d >= 0; d--) {
      off += (rem % v.ks[d]) * v.kst[d];
      rem /= v.ks[d];
    }
    y[o] = reduce_one(&v, node->op, x + off, big && !par_out);
  }
  return EVO_STATUS_OK;
}

/* ---- argmax ---- */

evo_status evo_cpu_argmax(const evo_kernel_args *a) {
  const evo_node_t *node = a->node, *in = a->in[0];
  if (node->dtype != EVO_I32 || in->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cpu argmax: f32 -> i32 only");
  const float *x = a->src[0];
  int32_t *y = a->dst;
  int64_t outer, n, inner;
  evo_cpu_axis_split(in->ndim, in->shape, node->p.axis, &outer, &n, &inner);
  if (n == 0) { /* argmax over an empty axis: nothing to point at, give index 0 */
    for (int64_t i = 0; i < outer * inner; i++) y[i] = 0;
    return EVO_STATUS_OK;
  }
  const int64_t nblk = (inner + COLS - 1) / COLS, items = outer * nblk;
  /* first maximum wins; a NaN counts as the maximum (first NaN wins), as in NumPy/JAX */
#pragma omp parallel for if (outer * n * inner > EVO_CPU_PAR_MIN && items > 1) schedule(static)
  for (int64_t it = 0; it < items; it++) {
    const int64_t o = it / nblk, c0 = (it % nblk) * COLS;
    const int64_t nc = inner - c0 < COLS ? inner - c0 : COLS;
    const float *xb = x + o * n * inner + c0;
    float best[COLS];
    int32_t arg[COLS];
    for (int64_t c = 0; c < nc; c++) {
      best[c] = xb[c];
      arg[c] = 0;
    }
    for (int64_t r = 1; r < n; r++) {
      const float *row = xb + r * inner;
      for (int64_t c = 0; c < nc; c++) {
        const bool take = best[c] == best[c] && (row[c] > best[c] || row[c] != row[c]);
        best[c] = take ? row[c] : best[c];
        arg[c] = take ? (int32_t)r : arg[c];
      }
    }
    for (int64_t c = 0; c < nc; c++) y[o * inner + c0 + c] = arg[c];
  }
  return EVO_STATUS_OK;
}

/* ---- softmax / log_softmax ---- */

static void softmax_row(bool logsm, const float *x, float *y, int64_t n) {
  const float m = run_max(x, n, 1);
  const float shift = isfinite(m) ? m : 0.0f;
  double sum = 0.0;
  if (logsm) {
    sum = run_sumexp(x, n, 1, shift);
    const float ls = (float)log(sum);
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - shift) - ls;
    return;
  }
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; i++) {
    y[i] = evo_expf(x[i] - shift);
    sum += y[i];
  }
  const float s = (float)sum;
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = y[i] / s;
}

evo_status evo_cpu_softmax(const evo_kernel_args *a) {
  const evo_node_t *node = a->node, *in = a->in[0];
  if (node->dtype != EVO_F32 || in->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cpu %s: f32 only", evo_op_name(node->op));
  const bool logsm = node->op == EVO_OP_LOG_SOFTMAX;
  const float *x = a->src[0];
  float *y = a->dst;
  int64_t outer, n, inner;
  evo_cpu_axis_split(in->ndim, in->shape, node->p.axis, &outer, &n, &inner);
  const bool par = outer * n * inner > EVO_CPU_PAR_MIN_HEAVY;
  if (inner == 1) {
#pragma omp parallel for if (par && outer > 1) schedule(static)
    for (int64_t o = 0; o < outer; o++) softmax_row(logsm, x + o * n, y + o * n, n);
    return EVO_STATUS_OK;
  }
  const int64_t nblk = (inner + COLS - 1) / COLS, items = outer * nblk;
#pragma omp parallel for if (par && items > 1) schedule(static)
  for (int64_t it = 0; it < items; it++) {
    const int64_t o = it / nblk, c0 = (it % nblk) * COLS;
    const int64_t nc = inner - c0 < COLS ? inner - c0 : COLS;
    const float *xb = x + o * n * inner + c0;
    float *yb = y + o * n * inner + c0;
    float m[COLS];
    double sum[COLS];
    for (int64_t c = 0; c < nc; c++) {
      m[c] = -INFINITY;
      sum[c] = 0.0;
    }
    for (int64_t r = 0; r < n; r++)
      for (int64_t c = 0; c < nc; c++) m[c] = evo_maxf(xb[r * inner + c], m[c]);
    for (int64_t c = 0; c < nc; c++) m[c] = isfinite(m[c]) ? m[c] : 0.0f;
    for (int64_t r = 0; r < n; r++) {
      const float *row = xb + r * inner;
      float *out = yb + r * inner;
#pragma omp simd
      for (int64_t c = 0; c < nc; c++) {
        float e = evo_expf(row[c] - m[c]);
        if (!logsm) out[c] = e;
        sum[c] += e;
      }
    }
    float f[COLS];
    for (int64_t c = 0; c < nc; c++) f[c] = logsm ? (float)log(sum[c]) : (float)sum[c];
    for (int64_t r = 0; r < n; r++) {
      const float *row = xb + r * inner;
      float *out = yb + r * inner;
      if (logsm) {
#pragma omp simd
        for (int64_t c = 0; c < nc; c++) out[c] = (row[c] - m[c]) - f[c];
      } else {
#pragma omp simd
        for (int64_t c = 0; c < nc; c++) out[c] = out[c] / f[c];
      }
    }
  }
  return EVO_STATUS_OK;
}
