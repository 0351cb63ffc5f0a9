/* Shape CPU kernels (every dtype; elements are 1 or 4 bytes): CONST, RESHAPE, TRANSPOSE, BROADCAST_TO, CONCAT,
   SLICE, PAD, TAKE_ALONG_AXIS, SCATTER_ADD_ALONG_AXIS, ONE_HOT. Strided copies go through the iterator
   (cpu_loop.c); a transpose that swaps the two innermost (coalesced) dims runs in cache-sized tiles. */
#include <string.h>
#include "cpu_util.h"

#define TILE 32

/* Copies a row of 1- or 4-byte elements: memcpy when contiguous, a fill when broadcast. */
static void copy_row(const void *ctx, int64_t n, char *const *p, const int64_t *s) {
  const size_t es = *(const size_t *)ctx;
  if (s[1] == 1) {
    memcpy(p[0], p[1], (size_t)n * es);
  } else if (es == 4) {
    uint32_t *d = (uint32_t *)p[0];
    const uint32_t *x = (const uint32_t *)p[1];
    if (s[1] == 0) {
      const uint32_t v = x[0];
      for (int64_t i = 0; i < n; i++) d[i] = v;
    } else {
      for (int64_t i = 0; i < n; i++) d[i] = x[i * s[1]];
    }
  } else {
    uint8_t *d = (uint8_t *)p[0];
    const uint8_t *x = (const uint8_t *)p[1];
    for (int64_t i = 0; i < n; i++) d[i] = x[i * s[1]];
  }
}

#define TRANSPOSE_TILE(T)                                                                                      \
  do {                                                                                                         \
    T *d = (T *)dst;                                                                                           \
    const T *x = (const T *)src;                                                                               \
    for (int64_t r = r0; r < r1; r++)                                                                          \
      for (int64_t c = c0; c < c1; c++) d[r * C + c] = x[r + c * sc];                                          \
  } while (0)

/* out[b][r][c] = in[b-offset + r + c*sc] over the iterator's last two dims (out contiguous, the input
   contiguous along r): tiles keep both the strided reads and the writes in cache. */
static void transpose_tiled(const evo_cpu_iter *it, size_t es) {
  const int nd = it->ndim;
  const int64_t R = it->shape[nd - 2], C = it->shape[nd - 1], sc = it->stride[1][nd - 1];
  const int64_t batch = evo_cpu_numel(nd - 2, it->shape);
  const int64_t tr = (R + TILE - 1) / TILE, tc = (C + TILE - 1) / TILE, items = batch * tr * tc;
#pragma omp parallel for if (batch * R * C > EVO_CPU_PAR_MIN) schedule(static)
  for (int64_t item = 0; item < items; item++) {
    int64_t b = item / (tr * tc), t = item % (tr * tc);
    int64_t r0 = (t / tc) * TILE, c0 = (t % tc) * TILE;
    int64_t r1 = r0 + TILE < R ? r0 + TILE : R, c1 = c0 + TILE < C ? c0 + TILE : C;
    int64_t in_off = 0, rem = b;
    for (int d = nd - 3; d >= 0; d--) {
      in_off += (rem % it->shape[d]) * it->stride[1][d];
      rem /= it->shape[d];
    }
    char *dst = it->base[0] + (size_t)(b * R * C) * es;
    const char *src = it->base[1] + (size_t)in_off * es;
    if (es == 4)
      TRANSPOSE_TILE(uint32_t);
    else
      TRANSPOSE_TILE(uint8_t);
  }
}

static evo_status shape_transpose(const evo_kernel_args *a, size_t es) {
  const evo_node_t *node = a->node, *in = a->in[0];
  int64_t cst[EVO_MAX_DIMS], st[EVO_MAX_DIMS];
  evo_cpu_contig_strides(in->ndim, in->shape, cst);
  for (int d = 0; d < node->ndim; d++) st[d] = cst[node->p.i[d]];
  evo_cpu_iter it;
  evo_cpu_iter_init(&it, node->ndim, node->shape);
  evo_cpu_iter_add_contig(&it, a->dst, es);
  evo_cpu_iter_add(&it, a->src[0], es, st);
  evo_cpu_iter_coalesce(&it);
  const int nd = it.ndim;
  it.elementwise = true;
  if (nd >= 2 && it.stride[1][nd - 1] != 1 && it.stride[1][nd - 2] == 1 && it.shape[nd - 1] >= 4)
    transpose_tiled(&it, es);
  else
    evo_cpu_iter_run(&it, copy_row, &es, EVO_CPU_PAR_MIN);
  return EVO_STATUS_OK;
}

static evo_status shape_broadcast(const evo_kernel_args *a, size_t es) {
  const evo_node_t *node = a->node, *in = a->in[0];
  evo_cpu_iter it;
  evo_cpu_iter_init(&it, node->ndim, node->shape);
  evo_cpu_iter_add_contig(&it, a->dst, es);
  evo_cpu_iter_add_bcast(&it, a->src[0], es, in->ndim, in->shape);
  evo_cpu_iter_coalesce(&it);
  it.elementwise = true;
  evo_cpu_iter_run(&it, copy_row, &es, EVO_CPU_PAR_MIN);
  return EVO_STATUS_OK;
}

static evo_status shape_concat(const evo_kernel_args *a, size_t es) {
  const evo_node_t *node = a->node;
  int64_t outer, ntot, inner;
  evo_cpu_axis_split(node->ndim, node->shape, node->p.axis, &outer, &ntot, &inner);
  const size_t row = (size_t)(ntot * inner) * es;
  size_t off = 0;
  for (int i = 0; i < node->n_in; i++) {
    const size_t len = (size_t)(a->in[i]->shape[node->p.axis] * inner) * es;
    const char *src = a->src[i];
    char *dst = (char *)a->dst + off;
#pragma omp parallel for if (outer > 1 && outer * (int64_t)len > 4 * EVO_CPU_PAR_MIN) schedule(static)
    for (int64_t o = 0; o < outer; o++) memcpy(dst + (size_t)o * row, src + (size_t)o * len, len);
    off += len;
  }
  return EVO_STATUS_OK;
}

/* SLICE and PAD: per outer index, copy the kept block (and zero the padding). */
static evo_status shape_slice_pad(const evo_kernel_args *a, size_t es) {
  const evo_node_t *node = a->node, *in = a->in[0];
  const bool pad = node->op == EVO_OP_PAD;
  int64_t outer, nin, inner;
  evo_cpu_axis_split(in->ndim, in->shape, node->p.axis, &outer, &nin, &inner);
  const int64_t nout = node->shape[node->p.axis];
  const size_t blk = (size_t)inner * es;
  const size_t lo = pad ? (size_t)node->p.i[0] * blk : 0, hi = pad ? (size_t)node->p.i[1] * blk : 0;
  const size_t copy = pad ? (size_t)nin * blk : (size_t)nout * blk;
  const size_t skip = pad ? 0 : (size_t)node->p.i[0] * blk;
  const char *src = a->src[0];
  char *dst = a->dst;
#pragma omp parallel for if (outer > 1 && outer * (int64_t)copy > 4 * EVO_CPU_PAR_MIN) schedule(static)
  for (int64_t o = 0; o < outer; o++) {
    char *d = dst + (size_t)o * (size_t)nout * blk;
    const char *s = src + (size_t)o * (size_t)nin * blk + skip;
    if (lo) memset(d, 0, lo);
    memcpy(d + lo, s, copy);
    if (hi) memset(d + lo + copy, 0, hi);
  }
  return EVO_STATUS_OK;
}

/* Gather/scatter along one axis: the iterator carries the offsets of every operand except along the axis, whose
   position comes from the index. */
typedef struct {
  size_t es;
  int64_t axis_stride, axis_n;
} axis_ctx;

static void take_row(const void *ctx, int64_t n, char *const *p, const int64_t *s) {
  const axis_ctx *c = ctx;
  const int32_t *idx = (const int32_t *)p[1];
  for (int64_t i = 0; i < n; i++) {
    const int64_t j = idx[i * s[1]];
    const bool ok = j >= 0 && j < c->axis_n;
    const int64_t off = i * s[2] + (ok ? j * c->axis_stride : 0);
    if (c->es == 4)
      ((uint32_t *)p[0])[i] = ok ? ((const uint32_t *)p[2])[off] : 0u;
    else
      ((uint8_t *)p[0])[i] = ok ? ((const uint8_t *)p[2])[off] : 0u;
  }
}

static evo_status shape_take(const evo_kernel_args *a, size_t es) {
  const evo_node_t *node = a->node, *x = a->in[0], *idx = a->in[1];
  const int ax = node->p.axis;
  int64_t xst[EVO_MAX_DIMS], cst[EVO_MAX_DIMS];
  evo_cpu_bcast_strides(node->ndim, node->shape, x->ndim, x->shape, xst);
  evo_cpu_contig_strides(x->ndim, x->shape, cst);
  xst[ax] = 0;
  axis_ctx c = {es, cst[ax], x->shape[ax]};
  evo_cpu_iter it;
  evo_cpu_iter_init(&it, node->ndim, node->shape);
  evo_cpu_iter_add_contig(&it, a->dst, es);
  evo_cpu_iter_add_bcast(&it, a->src[1], 4, idx->ndim, idx->shape);
  evo_cpu_iter_add(&it, a->src[0], es, xst);
  evo_cpu_iter_coalesce(&it);
  evo_cpu_iter_run(&it, take_row, &c, EVO_CPU_PAR_MIN);
  return EVO_STATUS_OK;
}

static void scatter_row(const void *ctx, int64_t n, char *const *p, const int64_t *s) {
  const axis_ctx *c = ctx;
  float *out = (float *)p[0];
  const float *g = (const float *)p[1];
  const int32_t *idx = (const int32_t *)p[2];
  for (int64_t i = 0; i < n; i++) {
    const int64_t j = idx[i * s[2]];
    if (j >= 0 && j < c->axis_n) out[i * s[0] + j * c->axis_stride] += g[i * s[1]];
  }
}

static evo_status shape_scatter_add(const evo_kernel_args *a) {
  const evo_node_t *node = a->node, *g = a->in[0];
  if (node->dtype != EVO_F32 || g->dtype != EVO_F32 || a->in[1]->dtype != EVO_I32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cpu scatter_add_along_axis: needs (f32, i32) -> f32");
  const int ax = node->p.axis;
  int64_t ost[EVO_MAX_DIMS];
  evo_cpu_contig_strides(node->ndim, node->shape, ost);
  axis_ctx c = {4, ost[ax], node->shape[ax]};
  ost[ax] = 0;
  memset(a->dst, 0, (size_t)evo_cpu_numel(node->ndim, node->shape) * 4);
  evo_cpu_iter it;
  evo_cpu_iter_init(&it, g->ndim, g->shape);
  evo_cpu_iter_add(&it, a->dst, 4, ost);
  evo_cpu_iter_add_contig(&it, a->src[0], 4);
  evo_cpu_iter_add_contig(&it, a->src[1], 4);
  evo_cpu_iter_coalesce(&it);
  /* single-threaded: indices may collide, and a fixed order keeps the sums deterministic */
  evo_cpu_iter_run(&it, scatter_row, &c, INT64_MAX);
  return EVO_STATUS_OK;
}

static evo_status shape_one_hot(const evo_kernel_args *a) {
  const evo_node_t *node = a->node, *in = a->in[0];
  if (node->dtype != EVO_F32 || in->dtype != EVO_I32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cpu one_hot: i32 -> f32 only");
  const int64_t n = evo_cpu_numel(in->ndim, in->shape), depth = node->shape[node->ndim - 1];
  const int32_t *idx = a->src[0];
  float *y = a->dst;
#pragma omp parallel for if (n * depth > EVO_CPU_PAR_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float *row = y + i * depth;
    for (int64_t k = 0; k < depth; k++) row[k] = 0.0f;
    if (idx[i] >= 0 && idx[i] < depth) row[idx[i]] = 1.0f;
  }
  return EVO_STATUS_OK;
}

evo_status evo_cpu_shape_op(const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  const size_t es = evo_dtype_size(node->dtype);
  if (es != 1 && es != 4) return evo_error(EVO_STATUS_UNSUPPORTED, "cpu %s: bad dtype", evo_op_name(node->op));
  const size_t nbytes = (size_t)evo_cpu_numel(node->ndim, node->shape) * es;
  switch (node->op) {
  case EVO_OP_CONST:
    if (nbytes && !node->cdata) return evo_error(EVO_STATUS_INTERNAL, "cpu const: node has no data");
    if (nbytes) memcpy(a->dst, node->cdata, nbytes);
    return EVO_STATUS_OK;
  case EVO_OP_RESHAPE:
    if (nbytes) memcpy(a->dst, a->src[0], nbytes);
    return EVO_STATUS_OK;
  case EVO_OP_TRANSPOSE: return shape_transpose(a, es);
  case EVO_OP_BROADCAST_TO: return shape_broadcast(a, es);
  case EVO_OP_CONCAT: return shape_concat(a, es);
  case EVO_OP_SLICE: case EVO_OP_PAD: return shape_slice_pad(a, es);
  case EVO_OP_TAKE_ALONG_AXIS:
    if (a->in[1]->dtype != EVO_I32) return evo_error(EVO_STATUS_UNSUPPORTED, "cpu take_along_axis: i32 indices only");
    return shape_take(a, es);
  case EVO_OP_SCATTER_ADD_ALONG_AXIS: return shape_scatter_add(a);
  case EVO_OP_ONE_HOT: return shape_one_hot(a);
  default: return evo_error(EVO_STATUS_INTERNAL, "cpu shape op: bad op %s", evo_op_name(node->op));
  }
}
