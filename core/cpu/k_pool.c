/* MAX_POOL2D, AVG_POOL2D, their gradients and MAX_POOL2D_GATHER on the CPU (NHWC, f32). Windows are clipped to
   the image, so the -inf padding of max pooling never wins a max (unless a window holds no image pixel at all) and
   average pooling divides by the count of image pixels. Max propagates NaN and its gradient goes to the first NaN
   of a window if there is one (as the max and argmax reductions do); the gather reads the same pixel. Inner loops
   run along channels, which are contiguous. */
#include <math.h>
#include <omp.h>
#include <string.h>
#include "cpu_kernels.h"
#include "gemm.h"

#define CB 64 /* channels per block of the argmax scan: best values and indices live on the stack */

typedef struct {
  int64_t H, W, C, OH, OW, wh, ww, sh, sw, pt, pl;
  int64_t n; /* images */
} pool_geom;

/* The clipped window of output pixel (oh, ow): rows [h0, h1), cols [w0, w1). */
static void pool_window(const pool_geom *g, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1, int64_t *w0,
                        int64_t *w1) {
  int64_t hs = oh * g->sh - g->pt, ws = ow * g->sw - g->pl;
  *h0 = hs < 0 ? 0 : hs;
  *h1 = hs + g->wh < g->H ? hs + g->wh : g->H;
  *w0 = ws < 0 ? 0 : ws;
  *w1 = ws + g->ww < g->W ? ws + g->ww : g->W;
}

static void pool_forward(const pool_geom *g, int is_max, const float *x, float *y) {
  const int64_t C = g->C, T = g->n * g->OH;
#pragma omp parallel for schedule(static) if (T * g->OW * g->wh * g->ww * C > 32768)
  for (int64_t t = 0; t < T; t++) {
    const int64_t n = t / g->OH, oh = t % g->OH;
    const float *xi = x + n * g->H * g->W * C;
    for (int64_t ow = 0; ow < g->OW; ow++) {
      float *o = y + (t * g->OW + ow) * C;
      int64_t h0, h1, w0, w1;
      pool_window(g, oh, ow, &h0, &h1, &w0, &w1);
      for (int64_t c = 0; c < C; c++) o[c] = is_max ? -INFINITY : 0.0f;
      for (int64_t h = h0; h < h1; h++)
        for (int64_t w = w0; w < w1; w++) {
          const float *v = xi + (h * g->W + w) * C;
          if (is_max)
            for (int64_t c = 0; c < C; c++) o[c] = v[c] > o[c] || v[c] != v[c] ? v[c] : o[c];
          else
            for (int64_t c = 0; c < C; c++) o[c] += v[c];
        }
      if (!is_max) {
        const int64_t cnt = (h1 - h0) * (w1 - w0);
        const float inv = cnt > 0 ? 1.0f / (float)cnt : 0.0f;
        for (int64_t c = 0; c < C; c++) o[c] *= inv;
      }
    }
  }
}

/* at[c] = the first max (row-major; the first NaN if any) of channel c0 + c, c < nc <= CB, in the clipped window
   [h0, h1) x [w0, w1) (not empty) of image xi: the pixel a max window's gradient goes to. */
static void window_argmax(const pool_geom *g, const float *xi, int64_t h0, int64_t h1, int64_t w0, int64_t w1,
                          int64_t c0, int64_t nc, int64_t *at) {
  const int64_t C = g->C, first = h0 * g->W + w0;
  float best[CB];
  for (int64_t c = 0; c < nc; c++) best[c] = xi[first * C + c0 + c], at[c] = first;
  for (int64_t h = h0; h < h1; h++)
    for (int64_t w = w0; w < w1; w++) {
      const int64_t pix = h * g->W + w;
      const float *v = xi + pix * C + c0;
      for (int64_t c = 0; c < nc; c++) {
        const int gt = v[c] > best[c] || (v[c] != v[c] && best[c] == best[c]);
        best[c] = gt ? v[c] : best[c];
        at[c] = gt ? pix : at[c];
      }
    }
}

/* dx of one output row (oh) of one image: the gradient of each window goes to the first maximum (row-major) of
   each channel, or is spread evenly over the window (average). Accumulates, as windows may overlap. */
static void pool_grad_row(const pool_geom *g, int is_max, const float *xi, const float *gyr, float *dxi,
                          int64_t oh) {
  const int64_t C = g->C;
  for (int64_t ow = 0; ow < g->OW; ow++) {
    const float *gv = gyr + ow * C;
    int64_t h0, h1, w0, w1;
    pool_window(g, oh, ow, &h0, &h1, &w0, &w1);
    if (h1 <= h0 || w1 <= w0) continue;
    if (!is_max) {
      const float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
      for (int64_t h = h0; h < h1; h++)
        for (int64_t w = w0; w < w1; w++) {
          float *d = dxi + (h * g->W + w) * C;
          for (int64_t c = 0; c < C; c++) d[c] += gv[c] * inv;
        }
      continue;
    }
    for (int64_t c0 = 0; c0 < C; c0 += CB) {
      const int64_t nc = C - c0 < CB ? C - c0 : CB;
      int64_t at[CB];
      window_argmax(g, xi, h0, h1, w0, w1, c0, nc, at);
      for (int64_t c = 0; c < nc; c++) dxi[at[c] * C + c0 + c] += gv[c0 + c];
    }
  }
}

/* y[oh, ow, c] = v at the first max (the pixel pool_grad_row picks) of window (oh, ow) of x, channel c; 0 for a
   window with no image pixel. */
static void pool_gather(const pool_geom *g, const float *x, const float *v, float *y) {
  const int64_t C = g->C, T = g->n * g->OH;
#pragma omp parallel for schedule(static) if (T * g->OW * g->wh * g->ww * C > 32768)
  for (int64_t t = 0; t < T; t++) {
    const int64_t n = t / g->OH, oh = t % g->OH, img = n * g->H * g->W * C;
    const float *xi = x + img, *vi = v + img;
    for (int64_t ow = 0; ow < g->OW; ow++) {
      float *o = y + (t * g->OW + ow) * C;
      int64_t h0, h1, w0, w1;
      pool_window(g, oh, ow, &h0, &h1, &w0, &w1);
      if (h1 <= h0 || w1 <= w0) {
        for (int64_t c = 0; c < C; c++) o[c] = 0.0f;
        continue;
      }
      for (int64_t c0 = 0; c0 < C; c0 += CB) {
        const int64_t nc = C - c0 < CB ? C - c0 : CB;
        int64_t at[CB];
        window_argmax(g, xi, h0, h1, w0, w1, c0, nc, at);
        for (int64_t c = 0; c < nc; c++) o[c0 + c] = vi[at[c] * C + c0 + c];
      }
    }
  }
}

static void pool_backward(const pool_geom *g, int is_max, const float *x, const float *gy, float *dx,
                          const evo_cpu_loops *lp) {
  const int64_t W = g->W, C = g->C, img = g->H * W * C, oimg = g->OH * g->OW * C;
  /* Output rows whose windows do not overlap vertically write disjoint dx rows: each takes the band of dx rows
     from its window's top to the next window's top (the first and last bands reach the image edges), zeroes it
     and accumulates into it while it is in cache. Overlapping windows: one image per piece of work. */
  const int rows_apart = g->sh >= g->wh;
  const int64_t T = rows_apart ? g->n * g->OH : g->n;
#pragma omp parallel for schedule(static) if (g->n * oimg * g->wh * g->ww > 32768)
  for (int64_t t = 0; t < T; t++) {
    const int64_t n = rows_apart ? t / g->OH : t;
    const float *xi = x ? x + evo_cpu_loops_off(lp, 2, n) * img : NULL;
    const float *gyi = gy + evo_cpu_loops_off(lp, 1, n) * oimg;
    float *dxi = dx + n * img;
    int64_t oh0 = 0, oh1 = g->OH, h0 = 0, h1 = g->H;
    if (rows_apart) {
      oh0 = t % g->OH, oh1 = oh0 + 1;
      h0 = oh0 == 0 ? 0 : oh0 * g->sh - g->pt;
      h1 = oh1 == g->OH ? g->H : oh1 * g->sh - g->pt;
      h0 = h0 < 0 ? 0 : h0 > g->H ? g->H : h0;
      h1 = h1 < h0 ? h0 : h1 > g->H ? g->H : h1;
    }
    memset(dxi + h0 * W * C, 0, sizeof(float) * (size_t)((h1 - h0) * W * C));
    for (int64_t oh = oh0; oh < oh1; oh++) pool_grad_row(g, is_max, xi, gyi + oh * g->OW * C, dxi, oh);
  }
}

evo_status evo_cpu_pool2d(const evo_kernel_args *args) {
  const evo_node_t *node = args->node;
  const evo_op op = node->op;
  const int gather = op == EVO_OP_MAX_POOL2D_GATHER, n_in = op == EVO_OP_MAX_POOL2D_GRAD || gather ? 2 : 1;
  for (int i = 0; i < n_in; i++)
    if (args->in[i]->dtype != EVO_F32 || args->in[i]->ndim < 3)
      return evo_error(EVO_STATUS_UNSUPPORTED, "cpu %s: needs f32 [..,H,W,C] inputs", evo_op_name(op));
  if (node->dtype != EVO_F32 || node->ndim < 3)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cpu %s: f32 only", evo_op_name(op));
  const int32_t *pi = node->p.i;
  const int fwd = op == EVO_OP_MAX_POOL2D || op == EVO_OP_AVG_POOL2D || gather; /* gather: shaped as a forward */
  const int is_max = op == EVO_OP_MAX_POOL2D || op == EVO_OP_MAX_POOL2D_GRAD || gather;
  /* The full-size side: the input of a forward op, the output of a gradient. */
  const evo_node_t *big = fwd ? args->in[0] : node;
  const evo_node_t *small = fwd ? node : args->in[n_in - 1];
  const int64_t *bs = big->shape + big->ndim - 3, *ss = small->shape + small->ndim - 3;
  pool_geom g = {.H = bs[0], .W = bs[1], .C = bs[2], .OH = ss[0], .OW = ss[1], .wh = pi[0], .ww = pi[1],
                 .sh = pi[2], .sw = pi[3], .pt = pi[4], .pl = pi[5]};
  if (g.wh < 1 || g.ww < 1 || g.sh < 1 || g.sw < 1 || g.pt < 0 || g.pl < 0 || ss[2] != g.C ||
      (g.H + pi[4] + pi[6] - g.wh) / g.sh + 1 != g.OH || (g.W + pi[5] + pi[7] - g.ww) / g.sw + 1 != g.OW)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cpu %s: inconsistent shapes or window", evo_op_name(op));
  g.n = evo_shape_numel(node->ndim - 3, node->shape);
  if (fwd) {
    if (evo_shape_numel(big->ndim - 3, big->shape) != g.n ||
        (gather && evo_shape_numel(args->in[1]->ndim, args->in[1]->shape) != evo_shape_numel(big->ndim, big->shape)))
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cpu %s: loop dims differ", evo_op_name(op));
    if (gather)
      pool_gather(&g, args->src[0], args->src[1], args->dst);
    else
      pool_forward(&g, is_max, args->src[0], args->dst);
    return EVO_STATUS_OK;
  }
  /* Gradients: operand 0 the node (dx), 1 gy, 2 x; gy and x may only broadcast into the node's loop dims. */
  evo_cpu_loops lp;
  const evo_node_t *xn = is_max ? args->in[0] : node;
  const int nl[3] = {node->ndim - 3, small->ndim - 3, xn->ndim - 3};
  const int64_t *dims[3] = {node->shape, small->shape, xn->shape};
  evo_cpu_loops_init(&lp, 3, nl, dims);
  if (lp.numel != g.n || (is_max && evo_shape_numel(nl[2], xn->shape) != g.n))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cpu %s: loop dims differ", evo_op_name(op));
  pool_backward(&g, is_max, is_max ? args->src[0] : NULL, args->src[n_in - 1], args->dst, &lp);
  return EVO_STATUS_OK;
}
