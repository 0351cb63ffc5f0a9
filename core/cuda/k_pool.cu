/* MAX_POOL2D, AVG_POOL2D, their gradients and MAX_POOL2D_GATHER on CUDA (NHWC, f32), with core/cpu/k_pool.c's
   semantics: windows
   clipped to the image (average divides by the count of image pixels), max propagates NaN, and the gradient of a
   max window goes to its first maximum in row-major order (to its first NaN if it has one).
   One thread per output element, channels fastest so neighbouring threads read neighbouring floats. The gradients
   gather rather than scatter: a dx element sums, in (oh, ow) order as the CPU accumulates, the windows that
   contain it (and, for max, pick it as their first maximum), so no atomics and the same rounding as the CPU. */
#include <math.h>
#include "cuda_util.cuh"
extern "C" {
#include "../cpu/gemm.h"
}

namespace {

struct pool_geom {
  int H, W, C, OH, OW, wh, ww, sh, sw, pt, pl;
};

/* Image indices of gy (operand 1) and x (operand 2) for dx image n: the CPU's evo_cpu_loops. */
struct pool_loops {
  int nd;
  int64_t shape[EVO_MAX_DIMS], st[2][EVO_MAX_DIMS];
};

__device__ __forceinline__ void window(const pool_geom &g, int oh, int ow, int *h0, int *h1, int *w0, int *w1) {
  const int hs = oh * g.sh - g.pt, ws = ow * g.sw - g.pl;
  *h0 = hs < 0 ? 0 : hs;
  *h1 = hs + g.wh < g.H ? hs + g.wh : g.H;
  *w0 = ws < 0 ? 0 : ws;
  *w1 = ws + g.ww < g.W ? ws + g.ww : g.W;
}

/* Flat index e of an [n, H, W, C] array -> (n returned, h, w, c). */
template <typename I>
__device__ __forceinline__ I split_nhwc(I e, int H, int W, int C, int *h, int *w, int *c) {
  I t = e / C;
  *c = (int)(e - t * C);
  *w = (int)(t % W);
  t /= W;
  *h = (int)(t % H);
  return t / H;
}

/* y[n, oh, ow, c] over the window of (oh, ow) in image n. */
template <bool MAX, typename I>
__global__ void k_pool_fwd(pool_geom g, const float *__restrict__ x, float *__restrict__ y, I total) {
  EVO_CUDA_FOR(I, e, total) {
    int oh, ow, c;
    const I n = split_nhwc(e, g.OH, g.OW, g.C, &oh, &ow, &c);
    const float *xi = x + (int64_t)n * g.H * g.W * g.C + c;
    int h0, h1, w0, w1;
    window(g, oh, ow, &h0, &h1, &w0, &w1);
    float o = MAX ? -INFINITY : 0.0f;
    for (int h = h0; h < h1; h++)
      for (int w = w0; w < w1; w++) {
        const float v = xi[(int64_t)(h * g.W + w) * g.C];
        if (MAX) o = v > o || v != v ? v : o;
        else o += v;
      }
    if (!MAX) {
      const int cnt = (h1 - h0) * (w1 - w0);
      o *= cnt > 0 ? 1.0f / (float)cnt : 0.0f;
    }
    y[e] = o;
  }
}

/* The first max (row-major; the first NaN if any) of the clipped, non-empty window [h0, h1) x [w0, w1) of one
   channel of an image (xi points at its channel, pixels g.C apart): the pixel a max window's gradient goes to. */
__device__ __forceinline__ int window_argmax(const pool_geom &g, const float *xi, int h0, int h1, int w0, int w1) {
  int at = h0 * g.W + w0;
  float best = xi[(int64_t)at * g.C];
  for (int h = h0; h < h1; h++)
    for (int w = w0; w < w1; w++) {
      const int pix = h * g.W + w;
      const float v = xi[(int64_t)pix * g.C];
      const bool gt = v > best || (v != v && best == best);
      best = gt ? v : best;
      at = gt ? pix : at;
    }
  return at;
}

/* y[n, oh, ow, c] = v at the first max of window (oh, ow) of x (the pixel k_pool_grad routes to); 0 for a window
   with no image pixel. x and v share one shape. */
template <typename I>
__global__ void k_pool_gather(pool_geom g, const float *__restrict__ x, const float *__restrict__ v,
                              float *__restrict__ y, I total) {
  EVO_CUDA_FOR(I, e, total) {
    int oh, ow, c;
    const I n = split_nhwc(e, g.OH, g.OW, g.C, &oh, &ow, &c);
    const int64_t img = (int64_t)n * g.H * g.W * g.C + c;
    const float *xi = x + img;
    int h0, h1, w0, w1;
    window(g, oh, ow, &h0, &h1, &w0, &w1);
    if (h1 <= h0 || w1 <= w0) {
      y[e] = 0.0f;
      continue;
    }
    y[e] = v[img + (int64_t)window_argmax(g, xi, h0, h1, w0, w1) * g.C];
  }
}

/* dx[n, h, w, c]: the sum over the windows containing (h, w) of their gradient share. */
template <bool MAX, typename I>
__global__ void k_pool_grad(pool_geom g, pool_loops lp, const float *__restrict__ x, const float *__restrict__ gy,
                            float *__restrict__ dx, I total) {
  EVO_CUDA_FOR(I, e, total) {
    int h, w, c;
    int64_t n = (int64_t)split_nhwc(e, g.H, g.W, g.C, &h, &w, &c), gimg = 0, ximg = 0;
    for (int d = lp.nd - 1; d >= 0 && n; d--) {
      const int64_t q = n % lp.shape[d];
      gimg += q * lp.st[0][d], ximg += q * lp.st[1][d];
      n /= lp.shape[d];
    }
    const float *gyi = gy + gimg * g.OH * g.OW * g.C + c;
    const float *xi = MAX ? x + ximg * g.H * g.W * g.C + c : NULL;
    /* Windows of rows [oh*sh - pt, oh*sh - pt + wh) containing h (clipping to the image never excludes it). */
    const int th = h + g.pt - g.wh + 1, tw = w + g.pl - g.ww + 1;
    const int oh0 = th <= 0 ? 0 : (th + g.sh - 1) / g.sh, ow0 = tw <= 0 ? 0 : (tw + g.sw - 1) / g.sw;
    const int oh1 = min((h + g.pt) / g.sh, g.OH - 1), ow1 = min((w + g.pl) / g.sw, g.OW - 1);
    const int me = h * g.W + w;
    float acc = 0.0f;
    for (int oh = oh0; oh <= oh1; oh++)
      for (int ow = ow0; ow <= ow1; ow++) {
        int h0, h1, w0, w1;
        window(g, oh, ow, &h0, &h1, &w0, &w1);
        const float gv = gyi[(int64_t)(oh * g.OW + ow) * g.C];
        if (!MAX) {
          acc += gv * (1.0f / (float)((h1 - h0) * (w1 - w0)));
          continue;
        }
        const int at = window_argmax(g, xi, h0, h1, w0, w1);
        if (at == me) acc += gv;
      }
    dx[e] = acc;
  }
}

bool fits_int(int64_t v) { return v >= 0 && v <= INT32_MAX; }

template <bool MAX>
evo_status launch_fwd(evo_cuda_ctx *c, const pool_geom &g, const float *x, float *y, int64_t total) {
  const unsigned grid = evo_cuda_grid(c, total, EVO_CUDA_BLOCK);
  if (evo_cuda_fits32(total)) k_pool_fwd<MAX><<<grid, EVO_CUDA_BLOCK, 0, c->stream>>>(g, x, y, (uint32_t)total);
  else k_pool_fwd<MAX><<<grid, EVO_CUDA_BLOCK, 0, c->stream>>>(g, x, y, (uint64_t)total);
  return EVO_CUDA_LAUNCHED("pool2d: forward kernel");
}

evo_status launch_gather(evo_cuda_ctx *c, const pool_geom &g, const float *x, const float *v, float *y,
                         int64_t total) {
  const unsigned grid = evo_cuda_grid(c, total, EVO_CUDA_BLOCK);
  if (evo_cuda_fits32(total)) k_pool_gather<<<grid, EVO_CUDA_BLOCK, 0, c->stream>>>(g, x, v, y, (uint32_t)total);
  else k_pool_gather<<<grid, EVO_CUDA_BLOCK, 0, c->stream>>>(g, x, v, y, (uint64_t)total);
  return EVO_CUDA_LAUNCHED("pool2d: gather kernel");
}

template <bool MAX>
evo_status launch_grad(evo_cuda_ctx *c, const pool_geom &g, const pool_loops &lp, const float *x, const float *gy,
                       float *dx, int64_t total) {
  const unsigned grid = evo_cuda_grid(c, total, EVO_CUDA_BLOCK);
  if (evo_cuda_fits32(total))
    k_pool_grad<MAX><<<grid, EVO_CUDA_BLOCK, 0, c->stream>>>(g, lp, x, gy, dx, (uint32_t)total);
  else k_pool_grad<MAX><<<grid, EVO_CUDA_BLOCK, 0, c->stream>>>(g, lp, x, gy, dx, (uint64_t)total);
  return EVO_CUDA_LAUNCHED("pool2d: gradient kernel");
}

} // namespace

extern "C" evo_status evo_cuda_pool2d(evo_cuda_ctx *c, const evo_kernel_args *args) {
  const evo_node_t *node = args->node;
  const evo_op op = node->op;
  const bool gather = op == EVO_OP_MAX_POOL2D_GATHER;
  const int n_in = op == EVO_OP_MAX_POOL2D_GRAD || gather ? 2 : 1;
  for (int i = 0; i < n_in; i++)
    if (args->in[i]->dtype != EVO_F32 || args->in[i]->ndim < 3)
      return evo_error(EVO_STATUS_UNSUPPORTED, "cuda %s: needs f32 [..,H,W,C] inputs", evo_op_name(op));
  if (node->dtype != EVO_F32 || node->ndim < 3)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda %s: f32 only", evo_op_name(op));
  const int32_t *pi = node->p.i;
  const bool fwd = op == EVO_OP_MAX_POOL2D || op == EVO_OP_AVG_POOL2D || gather; /* gather: shaped as a forward */
  const bool is_max = op == EVO_OP_MAX_POOL2D || op == EVO_OP_MAX_POOL2D_GRAD || gather;
  /* The full-size side: the input of a forward op, the output of a gradient. */
  const evo_node_t *big = fwd ? args->in[0] : node;
  const evo_node_t *small = fwd ? node : args->in[n_in - 1];
  const int64_t *bs = big->shape + big->ndim - 3, *ss = small->shape + small->ndim - 3;
  const int64_t H = bs[0], W = bs[1], C = bs[2], OH = ss[0], OW = ss[1];
  if (pi[0] < 1 || pi[1] < 1 || pi[2] < 1 || pi[3] < 1 || pi[4] < 0 || pi[5] < 0 || ss[2] != C ||
      (H + pi[4] + pi[6] - pi[0]) / pi[2] + 1 != OH || (W + pi[5] + pi[7] - pi[1]) / pi[3] + 1 != OW)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cuda %s: inconsistent shapes or window", evo_op_name(op));
  if (!fits_int(H * W * C) || !fits_int(OH * OW * C))
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda %s: an image of 2^31 or more elements", evo_op_name(op));
  const pool_geom g = {(int)H, (int)W, (int)C, (int)OH, (int)OW, pi[0], pi[1], pi[2], pi[3], pi[4], pi[5]};
  const int64_t n = evo_shape_numel(node->ndim - 3, node->shape);
  if (fwd) {
    if (evo_shape_numel(big->ndim - 3, big->shape) != n ||
        (gather && evo_shape_numel(args->in[1]->ndim, args->in[1]->shape) != evo_shape_numel(big->ndim, big->shape)))
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cuda %s: loop dims differ", evo_op_name(op));
    const int64_t total = n * OH * OW * C;
    if (total == 0) return EVO_STATUS_OK;
    const float *x = (const float *)args->src[0];
    if (gather) return launch_gather(c, g, x, (const float *)args->src[1], (float *)args->dst, total);
    return is_max ? launch_fwd<true>(c, g, x, (float *)args->dst, total)
                  : launch_fwd<false>(c, g, x, (float *)args->dst, total);
  }
  /* Gradients: operand 0 the node (dx), 1 gy, 2 x; gy and x may only broadcast into the node's loop dims. */
  const evo_node_t *xn = is_max ? args->in[0] : node;
  const int nl[3] = {node->ndim - 3, small->ndim - 3, xn->ndim - 3};
  const int64_t *dims[3] = {node->shape, small->shape, xn->shape};
  evo_cpu_loops cl;
  evo_cpu_loops_init(&cl, 3, nl, dims);
  if (cl.numel != n || (is_max && evo_shape_numel(nl[2], xn->shape) != n))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cuda %s: loop dims differ", evo_op_name(op));
  pool_loops lp;
  memset(&lp, 0, sizeof lp);
  lp.nd = cl.nd;
  for (int d = 0; d < cl.nd; d++) {
    lp.shape[d] = cl.shape[d];
    lp.st[0][d] = cl.stride[1][d], lp.st[1][d] = cl.stride[2][d];
  }
  const int64_t total = n * H * W * C;
  if (total == 0) return EVO_STATUS_OK;
  const float *gy = (const float *)args->src[n_in - 1], *x = is_max ? (const float *)args->src[0] : NULL;
  return is_max ? launch_grad<true>(c, g, lp, x, gy, (float *)args->dst, total)
                : launch_grad<false>(c, g, lp, x, gy, (float *)args->dst, total);
}
