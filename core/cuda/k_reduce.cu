/* Reduction CUDA kernels: REDUCE_SUM/MAX/MIN, LOGSUMEXP, ARGMAX, SOFTMAX, LOG_SOFTMAX.
   The input is split into a kept index (one entry per output) and a reduced index, both coalesced like the CPU
   iterator. Three layouts:
   - ROW: each output's reduced set is one contiguous run (reduce over the last axes, full reduce);
   - COL: [outer, R, inner] with inner > 1 (reduce over leading axes): 32 columns per block, 8 row groups;
   - GEN: anything else, the reduced index walked with divisions.
   ROW/GEN give each output a group of 1, 32 or 256 threads depending on the run length. When there are few
   outputs and long runs, the runs are cut into S chunks whose partials go to scratch and a second kernel combines
   them. Sums accumulate in double like the CPU's; every combine follows a tree fixed by the sizes alone (never the
   device or an atomic), so reruns are bit-identical. */
#include <type_traits>
#include "cuda_util.cuh"

namespace {

constexpr int BLOCK = 256, WARPS = BLOCK / 32;
constexpr unsigned FULL = 0xffffffffu;

typedef enum { RK_SUM, RK_MAX, RK_MIN, RK_SUMEXP, RK_LSE } rkind; /* RK_LSE: max then sumexp in one pass */

/* ---- combines ---- */

template <int K>
struct rop {
  static __device__ double id() { return K == RK_MAX ? -INFINITY : (K == RK_MIN ? INFINITY : 0.0); }
  /* NaN-propagating extremes (as the CPU's combine); sums add */
  __device__ double operator()(double a, double b) const {
    if (K == RK_SUM || K == RK_SUMEXP) return a + b;
    if (a != a || b != b) return a != a ? a : b;
    return K == RK_MAX ? (b > a ? b : a) : (b < a ? b : a);
  }
};

/* argmax state: first maximum wins, a NaN counts as the maximum (first NaN wins), as on the CPU. The combine is an
   exact total order (NaN first, then value, then lower index), so any tree gives the sequential answer. */
struct amax {
  float v;
  int32_t i;
};
struct amax_op {
  __device__ amax operator()(amax a, amax b) const {
    const bool an = a.v != a.v, bn = b.v != b.v;
    if (an != bn) return an ? a : b;
    if (!an && a.v != b.v) return a.v > b.v ? a : b;
    return a.i <= b.i ? a : b;
  }
};

__device__ __forceinline__ double shfl_xor(double v, int m) { return __shfl_xor_sync(FULL, v, m); }
__device__ __forceinline__ amax shfl_xor(amax v, int m) {
  return amax{__shfl_xor_sync(FULL, v.v, m), __shfl_xor_sync(FULL, v.i, m)};
}
__device__ __forceinline__ double shfl0(double v) { return __shfl_sync(FULL, v, 0); }
__device__ __forceinline__ amax shfl0(amax v) { return amax{__shfl_sync(FULL, v.v, 0), __shfl_sync(FULL, v.i, 0)}; }

/* Combines v over a group of G consecutive threads (1, 32 or the whole block); every thread of the group gets
   the same result. sm holds WARPS values (G == BLOCK only). */
template <int G, typename T, class F>
__device__ T group_reduce(T v, F f, T *sm) {
  if constexpr (G == 1) {
    return v;
  } else {
    for (int m = 16; m >= 1; m >>= 1) v = f(v, shfl_xor(v, m));
    v = shfl0(v); /* lanes can differ in a tie of +0/-0 or NaN payloads: take lane 0's */
    if constexpr (G == 32) {
      return v;
    } else {
      __syncthreads(); /* sm may still be read from the previous call */
      if (threadIdx.x % 32 == 0) sm[threadIdx.x / 32] = v;
      __syncthreads();
      T r = sm[0];
      for (int w = 1; w < WARPS; w++) r = f(r, sm[w]);
      return r;
    }
  }
}

/* Column tiles: thread (tx = col in tile, ty = row group) of a 256-thread block. Combines the 8 row groups of a
   column in order; every thread of the column gets the result. sm is [WARPS][33]. */
template <typename T, class F>
__device__ T col_reduce(T v, F f, T (*sm)[33]) {
  const int tx = threadIdx.x % 32, ty = threadIdx.x / 32;
  __syncthreads();
  sm[ty][tx] = v;
  __syncthreads();
  T r = sm[0][tx];
  for (int w = 1; w < WARPS; w++) r = f(r, sm[w][tx]);
  return r;
}

/* ---- REDUCE_* / LOGSUMEXP ---- */

typedef enum { L_ROW, L_COL, L_GEN } layout;

template <typename I>
struct rargs {
  evo_cuda_index kept, red; /* operand 0: input offsets */
  const float *x;
  float *y;
  double *part; /* [nout, S] partials when S > 1 */
  I nout, R, S, C;  /* outputs, reduced count, chunks per output, chunk length */
  I outer, inner;   /* L_COL */
};

__device__ __forceinline__ float finite_or0(float m) { return isfinite(m) ? m : 0.0f; }

/* Accumulates kind K over reduced positions [j0, j1) of one output, thread `lane` of a group of G taking every
   G-th; `at(j)` is the element. */
template <int K, int G, typename I, class At>
__device__ double accumulate(I j0, I j1, I lane, float shift, At at) {
  rop<K> f;
  double acc = rop<K>::id();
  for (I j = j0 + lane; j < j1; j += G) {
    const float x = at(j);
    acc = f(acc, K == RK_SUMEXP ? (double)evo_expf(x - shift) : (double)x);
  }
  return acc;
}

/* The value written for an output of an unsplit reduction (or a partial). */
template <typename I>
__device__ void emit(const rargs<I> &p, I o, I s, double v) {
  if (p.S > 1)
    p.part[o * p.S + s] = v;
  else
    p.y[o] = (float)v;
}

template <int K, int G, bool ROW, typename I>
__global__ void __launch_bounds__(BLOCK) k_reduce_group(rargs<I> p) {
  __shared__ double sm[WARPS];
  const I gpb = BLOCK / G, items = p.nout * p.S, lane = threadIdx.x % G;
  for (I it = (I)blockIdx.x * gpb + threadIdx.x / G; it < items; it += (I)gridDim.x * gpb) {
    const I o = it / p.S, s = it - o * p.S;
    I ko[EVO_CUDA_MAX_OPS];
    evo_cuda_offsets(p.kept, o, ko);
    const float *xb = p.x + ko[0];
    auto at = [&](I j) -> float {
      if constexpr (ROW) {
        return xb[j];
      } else {
        I ro[EVO_CUDA_MAX_OPS];
        evo_cuda_offsets(p.red, j, ro);
        return xb[ro[0]];
      }
    };
    const I j0 = s * p.C, j1 = p.R - j0 < p.C ? p.R : j0 + p.C;
    if constexpr (K == RK_LSE) {
      const float m = (float)group_reduce<G>(accumulate<RK_MAX, G>(j0, j1, lane, 0.0f, at), rop<RK_MAX>(), sm);
      const double sum = group_reduce<G>(accumulate<RK_SUMEXP, G>(j0, j1, lane, m, at), rop<RK_SUMEXP>(), sm);
      if (lane == 0) p.y[o] = isfinite(m) ? m + (float)log(sum) : m;
    } else {
      const float shift = K == RK_SUMEXP ? finite_or0(p.y[o]) : 0.0f; /* split LSE: the max is in y already */
      const double v = group_reduce<G>(accumulate<K, G>(j0, j1, lane, shift, at), rop<K>(), sm);
      if (lane == 0) emit(p, o, s, v);
    }
  }
}

template <int K, typename I>
__global__ void __launch_bounds__(BLOCK) k_reduce_cols(rargs<I> p) {
  __shared__ double sm[WARPS][33];
  const I tx = threadIdx.x % 32, ty = threadIdx.x / 32;
  const I ntiles = (p.inner + 31) / 32, items = p.outer * ntiles * p.S;
  for (I it = blockIdx.x; it < items; it += gridDim.x) {
    const I s = it % p.S, t = it / p.S, tile = t % ntiles, o = t / ntiles;
    const I col = tile * 32 + tx, out = o * p.inner + col;
    const bool ok = col < p.inner;
    const float *xb = p.x + o * p.R * p.inner + col;
    const I inner = p.inner;
    auto at = [&](I j) -> float { return xb[j * inner]; };
    const I j0 = s * p.C, j1 = !ok ? j0 : (p.R - j0 < p.C ? p.R : j0 + p.C); /* idle columns add nothing */
    if constexpr (K == RK_LSE) {
      const float m = (float)col_reduce(accumulate<RK_MAX, WARPS>(j0, j1, ty, 0.0f, at), rop<RK_MAX>(), sm);
      const double sum = col_reduce(accumulate<RK_SUMEXP, WARPS>(j0, j1, ty, m, at), rop<RK_SUMEXP>(), sm);
      if (ok && ty == 0) p.y[out] = isfinite(m) ? m + (float)log(sum) : m;
    } else {
      const float shift = K == RK_SUMEXP && ok ? finite_or0(p.y[out]) : 0.0f;
      const double v = col_reduce(accumulate<K, WARPS>(j0, j1, ty, shift, at), rop<K>(), sm);
      if (ok && ty == 0) emit(p, out, s, v);
    }
  }
}

/* Second pass of a split reduction: a warp per output combines its S partials (S <= SPLIT_TARGET). */
template <int K, typename I>
__global__ void __launch_bounds__(BLOCK) k_reduce_combine(const double *part, float *y, I nout, I S) {
  const I lane = threadIdx.x % 32;
  for (I o = (I)blockIdx.x * WARPS + threadIdx.x / 32; o < nout; o += (I)gridDim.x * WARPS) {
    rop<K> f;
    double acc = rop<K>::id();
    for (I j = lane; j < S; j += 32) acc = f(acc, part[o * S + j]);
    acc = group_reduce<32>(acc, f, (double *)nullptr);
    if (lane != 0) continue;
    if (K == RK_SUMEXP) {
      const float m = y[o];
      y[o] = isfinite(m) ? m + (float)log(acc) : m;
    } else {
      y[o] = (float)acc;
    }
  }
}

__global__ void k_fill(float *y, int64_t n, float v) {
  EVO_CUDA_FOR(int64_t, i, n) y[i] = v;
}

/* ---- planning (shared by the launcher and the scratch query) ---- */

constexpr int64_t SPLIT_MIN_OUT = 512;   /* at least this many outputs (column tiles: 256): no split */
constexpr int64_t SPLIT_TARGET = 1024;   /* aim for about this many work items */
constexpr int64_t ROW_CHUNK_MIN = 4096;  /* chunks of a split run are at least this long */
constexpr int64_t COL_CHUNK_MIN = 256;   /* rows per chunk of a split column tile */

int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct rplan {
  layout lay;
  evo_cuda_index kept, red;
  int64_t nin, nout, R, outer, inner, S, C;
};

/* The coalesced index over the input's `keep` (or reduced) axes, other axes set to 1. */
void axes_index(evo_cuda_index *ix, const evo_node_t *in, uint32_t axes, bool reduced) {
  int64_t shape[EVO_MAX_DIMS], st[EVO_MAX_DIMS];
  evo_cpu_contig_strides(in->ndim, in->shape, st);
  for (int d = 0; d < in->ndim; d++) shape[d] = (((axes >> d) & 1u) != 0) == reduced ? in->shape[d] : 1;
  evo_cpu_iter it;
  evo_cpu_iter_init(&it, in->ndim, shape);
  evo_cpu_iter_add(&it, NULL, 1, st);
  evo_cpu_iter_coalesce(&it);
  evo_cuda_index_from_iter(ix, &it);
}

void plan_init(rplan *p, const evo_node_t *node, const evo_node_t *in) {
  const uint32_t axes = node->p.axes;
  axes_index(&p->kept, in, axes, false);
  axes_index(&p->red, in, axes, true);
  p->nin = evo_cpu_numel(in->ndim, in->shape);
  p->nout = evo_cpu_numel(node->ndim, node->shape);
  p->R = evo_cpu_numel(p->red.ndim, p->red.shape);
  p->outer = p->inner = 1;
  const evo_cuda_index &k = p->kept, &r = p->red;
  const int64_t rs = r.stride[0][0], kl = k.ndim - 1;
  if (r.ndim == 1 && (rs == 1 || p->R == 1)) {
    p->lay = L_ROW;
  } else if (r.ndim == 1 && k.stride[0][kl] == 1 && k.shape[kl] == rs &&
             (k.ndim == 1 || (k.ndim == 2 && k.stride[0][0] == p->R * rs))) {
    p->lay = L_COL; /* [outer, R, inner] */
    p->inner = rs;
    p->outer = p->nout / rs;
  } else {
    p->lay = L_GEN;
  }
  /* split long runs when outputs are few: sizes alone decide, so every device cuts the same way */
  const int64_t items = p->lay == L_COL ? p->outer * cdiv(p->inner, 32) : p->nout;
  const int64_t min_items = p->lay == L_COL ? SPLIT_MIN_OUT / 2 : SPLIT_MIN_OUT;
  const int64_t chunk = p->lay == L_COL ? COL_CHUNK_MIN : ROW_CHUNK_MIN;
  p->S = 1;
  if (items > 0 && items < min_items && p->R > chunk) {
    int64_t s = cdiv(p->R, chunk), want = cdiv(SPLIT_TARGET, items);
    p->S = s < want ? s : want;
  }
  p->C = cdiv(p->R, p->S);
  p->S = p->R ? cdiv(p->R, p->C) : 1;
}

size_t plan_scratch(const rplan *p) { return p->S > 1 ? (size_t)(p->nout * p->S) * sizeof(double) : 0; }

template <typename I>
rargs<I> plan_args(const rplan *p, const evo_kernel_args *a) {
  rargs<I> r;
  r.kept = p->kept;
  r.red = p->red;
  r.x = (const float *)a->src[0];
  r.y = (float *)a->dst;
  r.part = (double *)a->scratch;
  r.nout = (I)p->nout;
  r.R = (I)p->R;
  r.S = (I)p->S;
  r.C = (I)p->C;
  r.outer = (I)p->outer;
  r.inner = (I)p->inner;
  return r;
}

/* Threads per output for a run of n elements, passed to f as a compile-time constant (f(std::integral_constant)). */
template <class F>
void by_group(int64_t n, F f) {
  if (n <= 16)
    f(std::integral_constant<int, 1>());
  else if (n <= 1024)
    f(std::integral_constant<int, 32>());
  else
    f(std::integral_constant<int, BLOCK>());
}

/* One pass of kind K over the plan (writing outputs, or partials when S > 1). */
template <int K, typename I>
void launch_pass(evo_cuda_ctx *c, const rplan *p, const rargs<I> &r) {
  if (p->lay == L_COL) {
    const int64_t items = p->outer * cdiv(p->inner, 32) * p->S;
    k_reduce_cols<K><<<evo_cuda_grid(c, items * BLOCK, BLOCK), BLOCK, 0, c->stream>>>(r);
    return;
  }
  by_group(p->C, [&](auto G) {
    const unsigned grid = evo_cuda_grid(c, p->nout * p->S * G.value, BLOCK);
    if (p->lay == L_ROW)
      k_reduce_group<K, G.value, true><<<grid, BLOCK, 0, c->stream>>>(r);
    else
      k_reduce_group<K, G.value, false><<<grid, BLOCK, 0, c->stream>>>(r);
  });
}

template <int K, typename I>
void launch_combine(evo_cuda_ctx *c, const rplan *p, const rargs<I> &r) {
  k_reduce_combine<K><<<evo_cuda_grid(c, p->nout * 32, BLOCK), BLOCK, 0, c->stream>>>(r.part, r.y, r.nout, r.S);
}

template <typename I>
void launch_reduce(evo_cuda_ctx *c, evo_op op, const rplan *p, const evo_kernel_args *a) {
  const rargs<I> r = plan_args<I>(p, a);
  switch (op) {
  case EVO_OP_REDUCE_SUM:
    launch_pass<RK_SUM>(c, p, r);
    if (p->S > 1) launch_combine<RK_SUM>(c, p, r);
    break;
  case EVO_OP_REDUCE_MAX:
    launch_pass<RK_MAX>(c, p, r);
    if (p->S > 1) launch_combine<RK_MAX>(c, p, r);
    break;
  case EVO_OP_REDUCE_MIN:
    launch_pass<RK_MIN>(c, p, r);
    if (p->S > 1) launch_combine<RK_MIN>(c, p, r);
    break;
  default: /* LOGSUMEXP */
    if (p->S == 1) {
      launch_pass<RK_LSE>(c, p, r);
      break;
    }
    launch_pass<RK_MAX>(c, p, r); /* max into y, then sum exp(x - y) and finish */
    launch_combine<RK_MAX>(c, p, r);
    launch_pass<RK_SUMEXP>(c, p, r);
    launch_combine<RK_SUMEXP>(c, p, r);
    break;
  }
}

/* ---- ARGMAX ---- */

template <int G, typename I>
__global__ void __launch_bounds__(BLOCK) k_argmax_rows(const float *__restrict__ x, int32_t *__restrict__ y, I rows,
                                                        I n) {
  __shared__ amax sm[WARPS];
  const I gpb = BLOCK / G, lane = threadIdx.x % G;
  for (I o = (I)blockIdx.x * gpb + threadIdx.x / G; o < rows; o += (I)gridDim.x * gpb) {
    amax best{-INFINITY, INT32_MAX};
    amax_op f;
    for (I j = lane; j < n; j += G) best = f(best, amax{x[o * n + j], (int32_t)j});
    best = group_reduce<G>(best, f, sm);
    if (lane == 0) y[o] = best.i;
  }
}

template <typename I>
__global__ void __launch_bounds__(BLOCK) k_argmax_cols(const float *__restrict__ x, int32_t *__restrict__ y, I outer,
                                                        I n, I inner) {
  __shared__ amax sm[WARPS][33];
  const I tx = threadIdx.x % 32, ty = threadIdx.x / 32, ntiles = (inner + 31) / 32;
  for (I it = blockIdx.x; it < outer * ntiles; it += gridDim.x) {
    const I o = it / ntiles, col = (it % ntiles) * 32 + tx;
    amax best{-INFINITY, INT32_MAX};
    amax_op f;
    if (col < inner)
      for (I r = ty; r < n; r += WARPS) best = f(best, amax{x[(o * n + r) * inner + col], (int32_t)r});
    best = col_reduce(best, f, sm);
    if (col < inner && ty == 0) y[o * inner + col] = best.i;
  }
}

template <typename I>
void launch_argmax(evo_cuda_ctx *c, const float *x, int32_t *y, int64_t outer, int64_t n, int64_t inner) {
  if (inner == 1) {
    by_group(n, [&](auto G) {
      k_argmax_rows<G.value><<<evo_cuda_grid(c, outer * G.value, BLOCK), BLOCK, 0, c->stream>>>(x, y, (I)outer, (I)n);
    });
  } else {
    const int64_t items = outer * cdiv(inner, 32);
    k_argmax_cols<<<evo_cuda_grid(c, items * BLOCK, BLOCK), BLOCK, 0, c->stream>>>(x, y, (I)outer, (I)n, (I)inner);
  }
}

/* ---- SOFTMAX / LOG_SOFTMAX: max, sum of exp(x - max) in double, then the outputs (as the CPU) ---- */

template <bool LOG>
__device__ __forceinline__ float softmax_out(float x, float shift, double sum) {
  return LOG ? (x - shift) - (float)log(sum) : evo_expf(x - shift) / (float)sum;
}

template <bool LOG, int G, typename I>
__global__ void __launch_bounds__(BLOCK) k_softmax_rows(const float *__restrict__ x, float *__restrict__ y, I rows,
                                                         I n) {
  __shared__ double sm[WARPS];
  const I gpb = BLOCK / G, lane = threadIdx.x % G;
  for (I o = (I)blockIdx.x * gpb + threadIdx.x / G; o < rows; o += (I)gridDim.x * gpb) {
    const float *xr = x + o * n;
    auto at = [&](I j) -> float { return xr[j]; };
    const float shift = finite_or0((float)group_reduce<G>(accumulate<RK_MAX, G>((I)0, n, lane, 0.0f, at),
                                                          rop<RK_MAX>(), sm));
    const double sum = group_reduce<G>(accumulate<RK_SUMEXP, G>((I)0, n, lane, shift, at), rop<RK_SUMEXP>(), sm);
    for (I j = lane; j < n; j += G) y[o * n + j] = softmax_out<LOG>(xr[j], shift, sum);
  }
}

template <bool LOG, typename I>
__global__ void __launch_bounds__(BLOCK) k_softmax_cols(const float *__restrict__ x, float *__restrict__ y, I outer,
                                                         I n, I inner) {
  __shared__ double sm[WARPS][33];
  const I tx = threadIdx.x % 32, ty = threadIdx.x / 32, ntiles = (inner + 31) / 32;
  for (I it = blockIdx.x; it < outer * ntiles; it += gridDim.x) {
    const I o = it / ntiles, col = (it % ntiles) * 32 + tx;
    const bool ok = col < inner;
    const float *xb = x + o * n * inner + col;
    auto at = [&](I r) -> float { return xb[r * inner]; };
    const I nr = ok ? n : 0;
    const float shift = finite_or0((float)col_reduce(accumulate<RK_MAX, WARPS>((I)0, nr, ty, 0.0f, at),
                                                     rop<RK_MAX>(), sm));
    const double sum = col_reduce(accumulate<RK_SUMEXP, WARPS>((I)0, nr, ty, shift, at), rop<RK_SUMEXP>(), sm);
    for (I r = ty; r < nr; r += WARPS) y[o * n * inner + r * inner + col] = softmax_out<LOG>(at(r), shift, sum);
  }
}

template <bool LOG, typename I>
void launch_softmax(evo_cuda_ctx *c, const float *x, float *y, int64_t outer, int64_t n, int64_t inner) {
  if (inner == 1) {
    by_group(n, [&](auto G) {
      k_softmax_rows<LOG, G.value><<<evo_cuda_grid(c, outer * G.value, BLOCK), BLOCK, 0, c->stream>>>(x, y, (I)outer,
                                                                                                      (I)n);
    });
  } else {
    const int64_t items = outer * cdiv(inner, 32);
    k_softmax_cols<LOG><<<evo_cuda_grid(c, items * BLOCK, BLOCK), BLOCK, 0, c->stream>>>(x, y, (I)outer, (I)n,
                                                                                          (I)inner);
  }
}

} // namespace

extern "C" size_t evo_cuda_reduce_scratch(const evo_node_t *node, const evo_node_t *const *in) {
  if (node->op < EVO_OP_REDUCE_SUM || node->op > EVO_OP_LOGSUMEXP) return 0;
  rplan p;
  plan_init(&p, node, in[0]);
  return plan_scratch(&p);
}

extern "C" evo_status evo_cuda_reduce(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node, *in = a->in[0];
  if (node->dtype != EVO_F32 || in->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda %s: f32 only", evo_op_name(node->op));
  if (node->op < EVO_OP_REDUCE_SUM || node->op > EVO_OP_LOGSUMEXP)
    return evo_error(EVO_STATUS_INTERNAL, "cuda reduce: bad op %s", evo_op_name(node->op));
  rplan p;
  plan_init(&p, node, in);
  if (p.nout == 0) return EVO_STATUS_OK;
  if (p.nin == 0) { /* empty reductions give the identity (logsumexp of nothing is -inf) */
    const float id = node->op == EVO_OP_REDUCE_SUM ? 0.0f : (node->op == EVO_OP_REDUCE_MIN ? INFINITY : -INFINITY);
    k_fill<<<evo_cuda_grid(c, p.nout, BLOCK), BLOCK, 0, c->stream>>>((float *)a->dst, p.nout, id);
    return EVO_CUDA_LAUNCHED("reduce fill");
  }
  if (p.R == 1) /* only size-1 axes reduced: every op is the identity on one element */
    return evo_cuda_check(cudaMemcpyAsync(a->dst, a->src[0], (size_t)p.nin * 4, cudaMemcpyDeviceToDevice, c->stream),
                          "reduce copy");
  if (p.S > 1 && (!a->scratch || a->scratch_bytes < plan_scratch(&p))) { /* no scratch: one group per output */
    p.S = 1;
    p.C = p.R;
  }
  if (evo_cuda_fits32(p.nin) && evo_cuda_fits32(p.nout * p.S))
    launch_reduce<uint32_t>(c, node->op, &p, a);
  else
    launch_reduce<uint64_t>(c, node->op, &p, a);
  return EVO_CUDA_LAUNCHED("reduce kernel");
}

extern "C" evo_status evo_cuda_argmax(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node, *in = a->in[0];
  if (node->dtype != EVO_I32 || in->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda argmax: f32 -> i32 only");
  int64_t outer, n, inner;
  evo_cpu_axis_split(in->ndim, in->shape, node->p.axis, &outer, &n, &inner);
  if (outer * inner == 0) return EVO_STATUS_OK;
  if (n == 0) /* argmax over an empty axis: nothing to point at, give index 0 */
    return evo_cuda_check(cudaMemsetAsync(a->dst, 0, (size_t)(outer * inner) * 4, c->stream), "argmax fill");
  const float *x = (const float *)a->src[0];
  int32_t *y = (int32_t *)a->dst;
  if (evo_cuda_fits32(outer * n * inner))
    launch_argmax<uint32_t>(c, x, y, outer, n, inner);
  else
    launch_argmax<uint64_t>(c, x, y, outer, n, inner);
  return EVO_CUDA_LAUNCHED("argmax kernel");
}

extern "C" evo_status evo_cuda_softmax(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node, *in = a->in[0];
  if (node->dtype != EVO_F32 || in->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda %s: f32 only", evo_op_name(node->op));
  int64_t outer, n, inner;
  evo_cpu_axis_split(in->ndim, in->shape, node->p.axis, &outer, &n, &inner);
  if (outer * n * inner == 0) return EVO_STATUS_OK;
  const float *x = (const float *)a->src[0];
  float *y = (float *)a->dst;
  const bool logsm = node->op == EVO_OP_LOG_SOFTMAX, small = evo_cuda_fits32(outer * n * inner);
  if (logsm && small)
    launch_softmax<true, uint32_t>(c, x, y, outer, n, inner);
  else if (logsm)
    launch_softmax<true, uint64_t>(c, x, y, outer, n, inner);
  else if (small)
    launch_softmax<false, uint32_t>(c, x, y, outer, n, inner);
  else
    launch_softmax<false, uint64_t>(c, x, y, outer, n, inner);
  return EVO_CUDA_LAUNCHED("softmax kernel");
}
