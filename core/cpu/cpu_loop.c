/* Loop-dim offsets, broadcast strides and the strided N-operand iterator used by the CPU kernels. */
#include <omp.h>
#include <string.h>
#include "cpu_util.h"

int64_t evo_cpu_loop_offset(int nloop, const int64_t *out_loop, int in_nloop, const int64_t *in_loop, int64_t flat) {
  int64_t off = 0, stride = 1;
  for (int d = nloop - 1; d >= 0; d--) {
    int64_t c = flat % out_loop[d];
    flat /= out_loop[d];
    int di = d - (nloop - in_nloop);
    if (di < 0) break; /* missing leading dims broadcast */
    if (in_loop[di] != 1) off += c * stride;
    stride *= in_loop[di];
  }
  return off;
}

int64_t evo_cpu_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  return n;
}

bool evo_cpu_same_shape(int na, const int64_t *a, int nb, const int64_t *b) {
  return na == nb && (na == 0 || memcmp(a, b, sizeof(int64_t) * (size_t)na) == 0);
}

void evo_cpu_contig_strides(int ndim, const int64_t *shape, int64_t *strides) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
}

void evo_cpu_bcast_strides(int out_ndim, const int64_t *out_shape, int in_ndim, const int64_t *in_shape,
                           int64_t *strides) {
  int64_t s = 1;
  for (int d = out_ndim - 1; d >= 0; d--) {
    int di = d - (out_ndim - in_ndim);
    if (di < 0) {
      strides[d] = 0;
      continue;
    }
    strides[d] = (in_shape[di] == 1 && out_shape[d] != 1) ? 0 : s;
    s *= in_shape[di];
  }
}

void evo_cpu_axis_split(int ndim, const int64_t *shape, int axis, int64_t *outer, int64_t *n, int64_t *inner) {
  *outer = evo_cpu_numel(axis, shape);
  *n = shape[axis];
  *inner = evo_cpu_numel(ndim - axis - 1, shape + axis + 1);
}

void evo_cpu_thread_range(int64_t n, int t, int nt, int64_t align, int64_t *lo, int64_t *hi) {
  int64_t per = (n / nt + align - 1) / align * align;
  *lo = per * t < n ? per * t : n;
  *hi = t == nt - 1 ? n : (per * (t + 1) < n ? per * (t + 1) : n);
}

void evo_cpu_iter_init(evo_cpu_iter *it, int ndim, const int64_t *shape) {
  memset(it, 0, sizeof *it);
  it->ndim = ndim;
  if (ndim) memcpy(it->shape, shape, sizeof(int64_t) * (size_t)ndim);
}

int evo_cpu_iter_add(evo_cpu_iter *it, const void *data, size_t esize, const int64_t *strides) {
  int k = it->nop++;
  it->base[k] = (char *)(uintptr_t)data; /* inputs are only read; one pointer type keeps the row API simple */
  it->esize[k] = esize;
  if (it->ndim) memcpy(it->stride[k], strides, sizeof(int64_t) * (size_t)it->ndim);
  return k;
}

int evo_cpu_iter_add_contig(evo_cpu_iter *it, const void *data, size_t esize) {
  int64_t st[EVO_MAX_DIMS];
  evo_cpu_contig_strides(it->ndim, it->shape, st);
  return evo_cpu_iter_add(it, data, esize, st);
}

int evo_cpu_iter_add_bcast(evo_cpu_iter *it, const void *data, size_t esize, int ndim, const int64_t *shape) {
  int64_t st[EVO_MAX_DIMS];
  evo_cpu_bcast_strides(it->ndim, it->shape, ndim, shape, st);
  return evo_cpu_iter_add(it, data, esize, st);
}

void evo_cpu_iter_coalesce(evo_cpu_iter *it) {
  int nd = 0;
  for (int d = 0; d < it->ndim; d++) {
    if (it->shape[d] == 1) continue;
    if (nd > 0) {
      /* merge d into the previous kept dim when every operand steps through both as one run */
      bool merge = true;
      for (int k = 0; k < it->nop; k++)
        if (it->stride[k][nd - 1] != it->stride[k][d] * it->shape[d]) merge = false;
      if (merge) {
        it->shape[nd - 1] *= it->shape[d];
        for (int k = 0; k < it->nop; k++) it->stride[k][nd - 1] = it->stride[k][d];
        continue;
      }
    }
    it->shape[nd] = it->shape[d];
    for (int k = 0; k < it->nop; k++) it->stride[k][nd] = it->stride[k][d];
    nd++;
  }
  if (nd == 0) { /* all dims were 1 (or a scalar): one row of one element */
    it->shape[0] = 1;
    for (int k = 0; k < it->nop; k++) it->stride[k][0] = 0;
    nd = 1;
  }
  it->ndim = nd;
}

int64_t evo_cpu_iter_numel(const evo_cpu_iter *it) { return evo_cpu_numel(it->ndim, it->shape); }

/* Elements [e0, e1) of the iteration, in row order. */
static void iter_range(const evo_cpu_iter *it, evo_cpu_row_fn fn, const void *ctx, int64_t e0, int64_t e1) {
  const int last = it->ndim - 1, nop = it->nop;
  const int64_t len = it->shape[last];
  int64_t idx[EVO_MAX_DIMS] = {0}, off[EVO_CPU_MAX_OPS] = {0}, s[EVO_CPU_MAX_OPS];
  char *p[EVO_CPU_MAX_OPS];
  int64_t row = e0 / len, col = e0 % len;
  for (int d = last - 1; d >= 0; d--) {
    idx[d] = row % it->shape[d];
    row /= it->shape[d];
    for (int k = 0; k < nop; k++) off[k] += idx[d] * it->stride[k][d];
  }
  for (int k = 0; k < nop; k++) s[k] = it->stride[k][last];
  while (e0 < e1) {
    int64_t cnt = len - col < e1 - e0 ? len - col : e1 - e0;
    for (int k = 0; k < nop; k++) p[k] = it->base[k] + (size_t)((off[k] + col * s[k]) * (int64_t)it->esize[k]);
    fn(ctx, cnt, p, s);
    e0 += cnt;
    col = 0;
    /* odometer step over the outer dims */
    for (int d = last - 1; d >= 0; d--) {
      for (int k = 0; k < nop; k++) off[k] += it->stride[k][d];
      if (++idx[d] < it->shape[d]) break;
      for (int k = 0; k < nop; k++) off[k] -= it->stride[k][d] * it->shape[d];
      idx[d] = 0;
    }
  }
}

/* Short rows with an operand repeated across the row dim above them ([M, 5] * [5], [P, R, 64] + [P, 1, 64]) pay
   the per-row call for a handful of elements. Such a pair of dims is walked as one wide row instead: the repeated
   operands' row is copied WIDE_REP times into a stack buffer, so every operand steps with stride 1 (or 0) through
   chunks of up to WIDE_BUF elements. Only for iterators marked elementwise (a gather would read past the copy).
   Returns the row length K when the innermost pair qualifies, else 0. */
#define WIDE_MAX_K 64
#define WIDE_BUF 256

static int64_t wide_k(const evo_cpu_iter *it, bool *rep) {
  const int last = it->ndim - 1;
  if (!it->elementwise || it->ndim < 2) return 0;
  const int64_t K = it->shape[last];
  bool any = false;
  if (K > WIDE_MAX_K) return 0;
  for (int k = 0; k < it->nop; k++) {
    const int64_t s1 = it->stride[k][last], s2 = it->stride[k][last - 1];
    rep[k] = s1 == 1 && s2 == 0;
    if (rep[k]) any = true;
    else if (!(s1 == 1 && s2 == K) && !(s1 == 0 && s2 == 0)) return 0;
    if (it->esize[k] > 4) return 0;
  }
  return any ? K : 0;
}

static void iter_range_wide(const evo_cpu_iter *it, evo_cpu_row_fn fn, const void *ctx, int64_t e0, int64_t e1,
                            int64_t K, const bool *rep) {
  const int last = it->ndim - 1, nop = it->nop;
  const int64_t W = it->shape[last - 1] * K;
  const int64_t rows = it->shape[last - 1] < WIDE_BUF / K ? it->shape[last - 1] : WIDE_BUF / K;
  const int64_t L = rows * K; /* replicated length, a multiple of K */
  _Alignas(64) char buf[EVO_CPU_MAX_OPS][WIDE_BUF * 4];
  int64_t idx[EVO_MAX_DIMS] = {0}, off[EVO_CPU_MAX_OPS] = {0}, s[EVO_CPU_MAX_OPS];
  char *p[EVO_CPU_MAX_OPS];
  int64_t row = e0 / W, col = e0 % W;
  for (int d = last - 2; d >= 0; d--) {
    idx[d] = row % it->shape[d];
    row /= it->shape[d];
    for (int k = 0; k < nop; k++) off[k] += idx[d] * it->stride[k][d];
  }
  for (int k = 0; k < nop; k++) s[k] = it->stride[k][last];
  while (e0 < e1) {
    for (int k = 0; k < nop; k++) {
      if (!rep[k]) continue;
      const size_t es = it->esize[k], rb = (size_t)K * es;
      const char *src = it->base[k] + (size_t)(off[k] * (int64_t)es);
      for (int64_t r = 0; r < rows; r++) memcpy(buf[k] + (size_t)r * rb, src, rb);
    }
    while (col < W && e0 < e1) {
      const int64_t c0 = col % K;
      int64_t cnt = W - col < e1 - e0 ? W - col : e1 - e0;
      cnt = cnt < L - c0 ? cnt : L - c0;
      for (int k = 0; k < nop; k++)
        p[k] = rep[k] ? buf[k] + (size_t)c0 * it->esize[k]
                      : it->base[k] + (size_t)((off[k] + col * s[k]) * (int64_t)it->esize[k]);
      fn(ctx, cnt, p, s);
      e0 += cnt;
      col += cnt;
    }
    col = 0;
    for (int d = last - 2; d >= 0; d--) {
      for (int k = 0; k < nop; k++) off[k] += it->stride[k][d];
      if (++idx[d] < it->shape[d]) break;
      for (int k = 0; k < nop; k++) off[k] -= it->stride[k][d] * it->shape[d];
      idx[d] = 0;
    }
  }
}

static void iter_any(const evo_cpu_iter *it, evo_cpu_row_fn fn, const void *ctx, int64_t e0, int64_t e1) {
  bool rep[EVO_CPU_MAX_OPS];
  const int64_t K = wide_k(it, rep);
  if (K)
    iter_range_wide(it, fn, ctx, e0, e1, K, rep);
  else
    iter_range(it, fn, ctx, e0, e1);
}

void evo_cpu_iter_run(const evo_cpu_iter *it, evo_cpu_row_fn fn, const void *ctx, int64_t par_min) {
  int64_t n = evo_cpu_iter_numel(it);
  if (n <= 0) return;
  if (n <= par_min || omp_in_parallel() || omp_get_max_threads() == 1) {
    iter_any(it, fn, ctx, 0, n);
    return;
  }
#pragma omp parallel
  {
    int64_t lo, hi;
    evo_cpu_thread_range(n, omp_get_thread_num(), omp_get_num_threads(), 64, &lo, &hi);
    if (lo < hi) iter_any(it, fn, ctx, lo, hi);
  }
}
