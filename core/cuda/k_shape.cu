/* Shape CUDA kernels (every dtype; elements are 1 or 4 bytes): CONST, RESHAPE, TRANSPOSE, BROADCAST_TO, CONCAT,
   SLICE, PAD, TAKE_ALONG_AXIS, SCATTER_ADD_ALONG_AXIS, ONE_HOT, with the CPU kernels' semantics (k_shape.c).
   Strided copies gather through an evo_cuda_index; a transpose of the two innermost (coalesced) dims goes through
   shared-memory tiles so reads and writes both coalesce; CONCAT/SLICE/PAD are one kernel over the output viewed
   as [outer, row] with up to EVO_MAX_INPUTS source segments per row. SCATTER_ADD never uses atomics: each output
   element is written by one thread that adds its contributions in index order, as the CPU loop does, so the sums
   are the CPU's bit for bit. */
#include "cuda_util.cuh"

namespace {

constexpr int BLOCK = EVO_CUDA_BLOCK, TILE = 32, TROWS = BLOCK / TILE;

/* ---- strided gather: y[i] = x[offset of i] (TRANSPOSE, BROADCAST_TO) ---- */

template <typename T, typename I>
__global__ void k_gather(evo_cuda_index ix, const T *__restrict__ x, T *__restrict__ y, I n) {
  EVO_CUDA_FOR(I, i, n) {
    I off[EVO_CUDA_MAX_OPS];
    evo_cuda_offsets(ix, i, off);
    y[i] = x[off[1]];
  }
}

/* out[b][r][c] = in[batch offset + r + c * sc]: a TILE x TILE tile is read along r and written along c. */
template <typename T, typename I>
__global__ void __launch_bounds__(BLOCK) k_transpose(evo_cuda_index batch, const T *__restrict__ x, T *__restrict__ y,
                                                     I nb, I R, I C, I sc) {
  __shared__ T tile[TILE][TILE + 1];
  const I tr = (R + TILE - 1) / TILE, tc = (C + TILE - 1) / TILE, tx = threadIdx.x % TILE, ty = threadIdx.x / TILE;
  for (I it = blockIdx.x; it < nb * tr * tc; it += gridDim.x) {
    const I b = it / (tr * tc), t = it % (tr * tc), r0 = (t / tc) * TILE, c0 = (t % tc) * TILE;
    I bo[EVO_CUDA_MAX_OPS];
    evo_cuda_offsets(batch, b, bo);
    __syncthreads(); /* the previous tile's writes are done reading */
    for (I k = ty; k < TILE; k += TROWS)
      if (r0 + tx < R && c0 + k < C) tile[k][tx] = x[bo[0] + (r0 + tx) + (c0 + k) * sc];
    __syncthreads();
    T *yb = y + b * R * C;
    for (I k = ty; k < TILE; k += TROWS)
      if (r0 + k < R && c0 + tx < C) yb[(r0 + k) * C + c0 + tx] = tile[tx][k];
  }
}

/* ---- CONCAT / SLICE / PAD: output row o, column col; segment s covers columns [start, start + width) and reads
   src[o * pitch + skip + (col - start)]; columns outside every segment are zero (PAD) ---- */

struct segs {
  int n;
  const void *src[EVO_MAX_INPUTS];
  int64_t start[EVO_MAX_INPUTS], width[EVO_MAX_INPUTS], pitch[EVO_MAX_INPUTS], skip[EVO_MAX_INPUTS];
};

template <typename T, typename I>
__global__ void k_segments(segs s, T *__restrict__ y, I row, I n) {
  EVO_CUDA_FOR(I, i, n) {
    const I o = i / row, col = i - o * row;
    T v = 0;
    for (int k = 0; k < s.n; k++) {
      const I c = col - (I)s.start[k];
      if (col >= (I)s.start[k] && c < (I)s.width[k]) v = ((const T *)s.src[k])[o * (I)s.pitch[k] + (I)s.skip[k] + c];
    }
    y[i] = v;
  }
}

/* ---- TAKE_ALONG_AXIS: operands out (contiguous), idx, x with the axis stride zeroed ---- */

template <typename T, typename I>
__global__ void k_take(evo_cuda_index ix, const int32_t *__restrict__ idx, const T *__restrict__ x,
                       T *__restrict__ y, I n, I axis_stride, I axis_n) {
  EVO_CUDA_FOR(I, i, n) {
    I off[EVO_CUDA_MAX_OPS];
    evo_cuda_offsets(ix, i, off);
    const int32_t j = idx[off[1]];
    const bool ok = j >= 0 && (I)j < axis_n;
    y[i] = ok ? x[off[2] + (I)j * axis_stride] : (T)0;
  }
}

/* ---- SCATTER_ADD_ALONG_AXIS: g, idx [outer, J, inner] -> out [outer, K, inner] ---- */

/* One thread per column (o, i): zero the column, then add g along j in order (many columns). */
template <typename I>
__global__ void k_scatter_cols(const float *__restrict__ g, const int32_t *__restrict__ idx, float *__restrict__ y,
                               I cols, I J, I K, I inner) {
  EVO_CUDA_FOR(I, c, cols) {
    const I o = c / inner, i = c - o * inner;
    float *yc = y + o * K * inner + i;
    for (I k = 0; k < K; k++) yc[k * inner] = 0.0f;
    const I base = o * J * inner + i;
    for (I j = 0; j < J; j++) {
      const int32_t k = idx[base + j * inner];
      if (k >= 0 && (I)k < K) yc[(I)k * inner] += g[base + j * inner];
    }
  }
}

/* One thread per output element (o, k, i), scanning the column's indices (few columns, short axes). */
template <typename I>
__global__ void k_scatter_elems(const float *__restrict__ g, const int32_t *__restrict__ idx, float *__restrict__ y,
                                I n, I J, I K, I inner) {
  EVO_CUDA_FOR(I, e, n) {
    const I o = e / (K * inner), r = e - o * K * inner, k = r / inner, i = r - k * inner;
    const I base = o * J * inner + i;
    float acc = 0.0f;
    for (I j = 0; j < J; j++)
      if ((I)idx[base + j * inner] == k && idx[base + j * inner] >= 0) acc += g[base + j * inner];
    y[e] = acc;
  }
}

/* ---- ONE_HOT ---- */

template <typename I>
__global__ void k_one_hot(const int32_t *__restrict__ idx, float *__restrict__ y, I n, I depth) {
  EVO_CUDA_FOR(I, e, n) {
    const I i = e / depth, k = e - i * depth;
    y[e] = idx[i] >= 0 && (I)idx[i] == k ? 1.0f : 0.0f;
  }
}

/* ---- launchers ---- */

int64_t numel(const evo_node_t *n) { return evo_cpu_numel(n->ndim, n->shape); }

evo_status d2d(evo_cuda_ctx *c, void *dst, const void *src, size_t bytes, const char *what) {
  if (!bytes) return EVO_STATUS_OK;
  return evo_cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream), what);
}

/* Gathers y (contiguous, node shape) from x through operand 1 of ix; a flat index is a plain copy. */
template <typename T>
evo_status gather(evo_cuda_ctx *c, const evo_cuda_index &ix, const void *x, void *y, int64_t n, const char *what) {
  if (evo_cuda_index_is_flat(&ix)) return d2d(c, y, x, (size_t)n * sizeof(T), what);
  const unsigned g = evo_cuda_grid(c, n, BLOCK);
  if (evo_cuda_fits32(n) && evo_cuda_fits32(evo_cuda_index_span(&ix)))
    k_gather<<<g, BLOCK, 0, c->stream>>>(ix, (const T *)x, (T *)y, (uint32_t)n);
  else
    k_gather<<<g, BLOCK, 0, c->stream>>>(ix, (const T *)x, (T *)y, (uint64_t)n);
  return EVO_CUDA_LAUNCHED(what);
}

template <typename T, typename I>
void launch_transpose(evo_cuda_ctx *c, const evo_cpu_iter &it, const void *x, void *y) {
  const int nd = it.ndim;
  const int64_t R = it.shape[nd - 2], C = it.shape[nd - 1], sc = it.stride[1][nd - 1];
  evo_cpu_iter bit; /* the batch dims above the tile, with the input's strides */
  evo_cpu_iter_init(&bit, nd - 2, it.shape);
  evo_cpu_iter_add(&bit, NULL, 1, it.stride[1]);
  evo_cpu_iter_coalesce(&bit);
  evo_cuda_index batch;
  evo_cuda_index_from_iter(&batch, &bit);
  const int64_t nb = evo_cpu_numel(nd - 2, it.shape), items = nb * ((R + TILE - 1) / TILE) * ((C + TILE - 1) / TILE);
  k_transpose<T, I><<<evo_cuda_grid(c, items * BLOCK, BLOCK), BLOCK, 0, c->stream>>>(batch, (const T *)x, (T *)y,
                                                                                      (I)nb, (I)R, (I)C, (I)sc);
}

template <typename T>
evo_status shape_transpose(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node, *in = a->in[0];
  int64_t cst[EVO_MAX_DIMS], st[EVO_MAX_DIMS];
  evo_cpu_contig_strides(in->ndim, in->shape, cst);
  for (int d = 0; d < node->ndim; d++) st[d] = cst[node->p.i[d]];
  evo_cpu_iter it;
  evo_cpu_iter_init(&it, node->ndim, node->shape);
  evo_cpu_iter_add_contig(&it, NULL, 1);
  evo_cpu_iter_add(&it, NULL, 1, st);
  evo_cpu_iter_coalesce(&it);
  const int nd = it.ndim;
  const int64_t n = numel(node);
  if (nd >= 2 && it.stride[1][nd - 1] != 1 && it.stride[1][nd - 2] == 1) {
    if (evo_cuda_fits32(n))
      launch_transpose<T, uint32_t>(c, it, a->src[0], a->dst);
    else
      launch_transpose<T, uint64_t>(c, it, a->src[0], a->dst);
    return EVO_CUDA_LAUNCHED("transpose kernel");
  }
  evo_cuda_index ix;
  evo_cuda_index_from_iter(&ix, &it);
  return gather<T>(c, ix, a->src[0], a->dst, n, "transpose kernel");
}

template <typename T>
evo_status shape_segments(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node, *in = a->in[0];
  const int ax = node->p.axis;
  int64_t outer, nout, inner;
  evo_cpu_axis_split(node->ndim, node->shape, ax, &outer, &nout, &inner);
  const int64_t nin = in->shape[ax];
  segs s;
  memset(&s, 0, sizeof s);
  if (node->op == EVO_OP_CONCAT) {
    int64_t start = 0;
    s.n = node->n_in;
    for (int k = 0; k < node->n_in; k++) {
      const int64_t w = a->in[k]->shape[ax] * inner;
      s.src[k] = a->src[k];
      s.start[k] = start;
      s.width[k] = s.pitch[k] = w;
      start += w;
    }
  } else { /* SLICE keeps [i0, i1) of the input's axis; PAD puts the input at i0 */
    const bool pad = node->op == EVO_OP_PAD;
    s.n = 1;
    s.src[0] = a->src[0];
    s.start[0] = pad ? node->p.i[0] * inner : 0;
    s.width[0] = (pad ? nin : nout) * inner;
    s.pitch[0] = nin * inner;
    s.skip[0] = pad ? 0 : node->p.i[0] * inner;
  }
  const int64_t n = outer * nout * inner, row = nout * inner;
  int64_t src_max = 0;
  for (int k = 0; k < s.n; k++) src_max = src_max > outer * s.pitch[k] ? src_max : outer * s.pitch[k];
  const unsigned g = evo_cuda_grid(c, n, BLOCK);
  if (evo_cuda_fits32(n) && evo_cuda_fits32(src_max))
    k_segments<T><<<g, BLOCK, 0, c->stream>>>(s, (T *)a->dst, (uint32_t)row, (uint32_t)n);
  else
    k_segments<T><<<g, BLOCK, 0, c->stream>>>(s, (T *)a->dst, (uint64_t)row, (uint64_t)n);
  return EVO_CUDA_LAUNCHED("concat/slice/pad kernel");
}

template <typename T>
evo_status shape_take(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node, *x = a->in[0], *idx = a->in[1];
  const int ax = node->p.axis;
  if (x->ndim != node->ndim || ax < 0 || ax >= node->ndim)
    return evo_error(EVO_STATUS_INTERNAL, "cuda take_along_axis: bad axis or rank");
  int64_t xst[EVO_MAX_DIMS], cst[EVO_MAX_DIMS];
  evo_cpu_bcast_strides(node->ndim, node->shape, x->ndim, x->shape, xst);
  evo_cpu_contig_strides(x->ndim, x->shape, cst);
  xst[ax] = 0;
  evo_cpu_iter it;
  evo_cpu_iter_init(&it, node->ndim, node->shape);
  evo_cpu_iter_add_contig(&it, NULL, 1);
  evo_cpu_iter_add_bcast(&it, NULL, 1, idx->ndim, idx->shape);
  evo_cpu_iter_add(&it, NULL, 1, xst);
  evo_cpu_iter_coalesce(&it);
  evo_cuda_index ix;
  evo_cuda_index_from_iter(&ix, &it);
  const int64_t n = numel(node);
  const unsigned g = evo_cuda_grid(c, n, BLOCK);
  const int32_t *pi = (const int32_t *)a->src[1];
  const T *px = (const T *)a->src[0];
  T *py = (T *)a->dst;
  if (evo_cuda_fits32(n) && evo_cuda_fits32(numel(x)) && evo_cuda_fits32(numel(idx)))
    k_take<<<g, BLOCK, 0, c->stream>>>(ix, pi, px, py, (uint32_t)n, (uint32_t)cst[ax], (uint32_t)x->shape[ax]);
  else
    k_take<<<g, BLOCK, 0, c->stream>>>(ix, pi, px, py, (uint64_t)n, (uint64_t)cst[ax], (uint64_t)x->shape[ax]);
  return EVO_CUDA_LAUNCHED("take_along_axis kernel");
}

/* Few columns with short axes: a thread per output element exposes more parallelism than a thread per column. */
constexpr int64_t SCATTER_FEW_COLS = 2048, SCATTER_MAX_SCAN = 1 << 24;

template <typename I>
void launch_scatter(evo_cuda_ctx *c, const evo_kernel_args *a, int64_t outer, int64_t J, int64_t K, int64_t inner) {
  const float *g = (const float *)a->src[0];
  const int32_t *idx = (const int32_t *)a->src[1];
  float *y = (float *)a->dst;
  const int64_t cols = outer * inner;
  if (cols < SCATTER_FEW_COLS && K * J <= SCATTER_MAX_SCAN) {
    const int64_t n = cols * K;
    k_scatter_elems<<<evo_cuda_grid(c, n, BLOCK), BLOCK, 0, c->stream>>>(g, idx, y, (I)n, (I)J, (I)K, (I)inner);
  } else {
    k_scatter_cols<<<evo_cuda_grid(c, cols, BLOCK), BLOCK, 0, c->stream>>>(g, idx, y, (I)cols, (I)J, (I)K,
                                                                           (I)inner);
  }
}

evo_status shape_scatter_add(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node, *g = a->in[0];
  if (node->dtype != EVO_F32 || g->dtype != EVO_F32 || a->in[1]->dtype != EVO_I32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda scatter_add_along_axis: needs (f32, i32) -> f32");
  const int ax = node->p.axis;
  bool ok = g->ndim == node->ndim && ax >= 0 && ax < node->ndim;
  for (int d = 0; ok && d < node->ndim; d++) ok = d == ax || g->shape[d] == node->shape[d];
  if (!ok) return evo_error(EVO_STATUS_INTERNAL, "cuda scatter_add_along_axis: g must match the output off the axis");
  int64_t outer, J, inner;
  evo_cpu_axis_split(g->ndim, g->shape, ax, &outer, &J, &inner);
  const int64_t K = node->shape[ax], nout = numel(node), ng = numel(g);
  if (ng == 0 || outer * inner == 0) /* nothing to add: the output is zeros */
    return evo_cuda_check(cudaMemsetAsync(a->dst, 0, (size_t)nout * 4, c->stream), "scatter_add fill");
  if (evo_cuda_fits32(ng) && evo_cuda_fits32(nout))
    launch_scatter<uint32_t>(c, a, outer, J, K, inner);
  else
    launch_scatter<uint64_t>(c, a, outer, J, K, inner);
  return EVO_CUDA_LAUNCHED("scatter_add_along_axis kernel");
}

evo_status shape_one_hot(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node, *in = a->in[0];
  if (node->dtype != EVO_F32 || in->dtype != EVO_I32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda one_hot: i32 -> f32 only");
  const int64_t n = numel(node), depth = node->shape[node->ndim - 1];
  const unsigned g = evo_cuda_grid(c, n, BLOCK);
  if (evo_cuda_fits32(n))
    k_one_hot<<<g, BLOCK, 0, c->stream>>>((const int32_t *)a->src[0], (float *)a->dst, (uint32_t)n, (uint32_t)depth);
  else
    k_one_hot<<<g, BLOCK, 0, c->stream>>>((const int32_t *)a->src[0], (float *)a->dst, (uint64_t)n, (uint64_t)depth);
  return EVO_CUDA_LAUNCHED("one_hot kernel");
}

template <typename T>
evo_status shape_typed(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  switch (node->op) {
  case EVO_OP_TRANSPOSE: return shape_transpose<T>(c, a);
  case EVO_OP_BROADCAST_TO: {
    evo_cuda_index ix;
    evo_cuda_index_bcast(&ix, a, 1);
    return gather<T>(c, ix, a->src[0], a->dst, numel(node), "broadcast_to kernel");
  }
  case EVO_OP_CONCAT: case EVO_OP_SLICE: case EVO_OP_PAD: return shape_segments<T>(c, a);
  case EVO_OP_TAKE_ALONG_AXIS:
    if (a->in[1]->dtype != EVO_I32)
      return evo_error(EVO_STATUS_UNSUPPORTED, "cuda take_along_axis: i32 indices only");
    return shape_take<T>(c, a);
  default: return evo_error(EVO_STATUS_INTERNAL, "cuda shape op: bad op %s", evo_op_name(node->op));
  }
}

} // namespace

extern "C" evo_status evo_cuda_shape_op(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  const size_t es = evo_dtype_size(node->dtype);
  if (es != 1 && es != 4) return evo_error(EVO_STATUS_UNSUPPORTED, "cuda %s: bad dtype", evo_op_name(node->op));
  const size_t nbytes = (size_t)numel(node) * es;
  if (nbytes == 0) return EVO_STATUS_OK;
  switch (node->op) {
  case EVO_OP_CONST: /* normally uploaded once by the jit; a run on its own copies from the graph's host data */
    if (!node->cdata) return evo_error(EVO_STATUS_INTERNAL, "cuda const: node has no data");
    return evo_cuda_check(cudaMemcpyAsync(a->dst, node->cdata, nbytes, cudaMemcpyHostToDevice, c->stream),
                          "const upload");
  case EVO_OP_RESHAPE: case EVO_OP_STOP_GRADIENT: return d2d(c, a->dst, a->src[0], nbytes, "reshape copy");
  case EVO_OP_SCATTER_ADD_ALONG_AXIS: return shape_scatter_add(c, a);
  case EVO_OP_ONE_HOT: return shape_one_hot(c, a);
  default: return es == 4 ? shape_typed<uint32_t>(c, a) : shape_typed<uint8_t>(c, a);
  }
}
