/* The heavy CPU kernels (matmul, conv2d and its gradients, pooling) called directly on hand-built nodes, against
   naive double-precision loops. Shapes are picked to reach every path: tile kernels with row/column tails and k
   blocks, batched small GEMMs, the folded shared-weight GEMM, OpenBLAS (single and batched), broadcast loop dims,
   shared images against per-member kernels, the summing kernel gradient, strided/padded convs, row-blocked views,
   overlapping and non-overlapping pooling windows with ties. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cpu/cpu_kernels.h"
#include "cpu/gemm.h"

#define SEED 20240611u
#define TOL 1e-4

/* ---- helpers ---------------------------------------------------------------------------------------------------- */

static uint64_t rng_state;
static float frand(void) { /* uniform in [-1, 1) */
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng_state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
static float *rand_buf(int64_t n, int ties) {
  float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
  for (int64_t i = 0; i < n; i++) p[i] = ties ? (float)(int)(4.0f * frand()) : frand();
  return p;
}

static evo_node_t mk(evo_op op, int ndim, const int64_t *shape) {
  evo_node_t n;
  memset(&n, 0, sizeof n);
  n.op = op;
  n.dtype = EVO_F32;
  n.ndim = ndim;
  memcpy(n.shape, shape, sizeof(int64_t) * (size_t)ndim);
  return n;
}
static int64_t numel(const evo_node_t *n) { return evo_shape_numel(n->ndim, n->shape); }

/* Offset (in loop units) of an input's loop dims at flat index `flat` of an output loop shape, NumPy rules. */
static int64_t bcast_index(int ond, const int64_t *oshape, int64_t flat, int ind, const int64_t *ishape) {
  int64_t idx = 0, step = 1;
  for (int d = ond - 1; d >= 0; d--) {
    int64_t od = flat % oshape[d];
    flat /= oshape[d];
    int id = d - (ond - ind);
    if (id < 0) continue;
    if (ishape[id] != 1) idx += od * step;
    step *= ishape[id];
  }
  return idx;
}

/* Broadcast of two loop shapes. */
static int bcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int64_t *out) {
  int n = na > nb ? na : nb;
  for (int d = 0; d < n; d++) {
    int ia = d - (n - na), ib = d - (n - nb);
    int64_t sa = ia >= 0 ? a[ia] : 1, sb = ib >= 0 ? b[ib] : 1;
    out[d] = sa > sb ? sa : sb;
  }
  return n;
}

static double max_rel_err(const float *got, const double *ref, int64_t n) {
  double scale = 1e-30, err = 0.0;
  for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - ref[i]);
    if (!(e <= err)) err = e; /* NaN sticks */
  }
  return err / scale;
}

static void run_kernel(evo_status (*fn)(const evo_kernel_args *), size_t scratch, const evo_node_t *node,
                       const evo_node_t *a, const evo_node_t *b, const float *sa, const float *sb, float *dst) {
  evo_kernel_args args;
  memset(&args, 0, sizeof args);
  args.node = node;
  args.in[0] = a, args.in[1] = b;
  args.src[0] = sa, args.src[1] = sb;
  args.dst = dst;
  args.scratch = scratch ? malloc(scratch) : NULL;
  args.scratch_bytes = scratch;
  evo_status st = fn(&args);
  free(args.scratch);
  cr_assert_eq(st, EVO_STATUS_OK, "kernel failed: %s", evo_last_error());
}

/* ---- matmul ----------------------------------------------------------------------------------------------------- */

/* as/bs are the logical shapes; with ta/tb (MATMUL's trans flags) the operand is stored with its last two dims
   swapped. */
static void check_matmul_t(int ta, int tb, int na, const int64_t *as, int nb, const int64_t *bs) {
  const int64_t m = as[na - 2], k = as[na - 1], n = bs[nb - 1];
  int64_t sa[EVO_MAX_DIMS], sb[EVO_MAX_DIMS];
  memcpy(sa, as, sizeof(int64_t) * (size_t)na);
  memcpy(sb, bs, sizeof(int64_t) * (size_t)nb);
  if (ta) sa[na - 2] = k, sa[na - 1] = m;
  if (tb) sb[nb - 2] = n, sb[nb - 1] = k;
  evo_node_t an = mk(EVO_OP_INPUT, na, sa), bn = mk(EVO_OP_INPUT, nb, sb);
  int64_t ys[EVO_MAX_DIMS];
  int nl = bcast_shape(na - 2, as, nb - 2, bs, ys);
  ys[nl] = m, ys[nl + 1] = n;
  evo_node_t y = mk(EVO_OP_MATMUL, nl + 2, ys);
  y.n_in = 2;
  y.p.i[0] = ta, y.p.i[1] = tb;
  float *a = rand_buf(numel(&an), 0), *b = rand_buf(numel(&bn), 0), *c = malloc(sizeof(float) * (size_t)numel(&y));
  const evo_node_t *ins[2] = {&an, &bn};
  run_kernel(evo_cpu_matmul, evo_cpu_matmul_scratch(&y, ins), &y, &an, &bn, a, b, c);
  const int64_t L = evo_shape_numel(nl, ys);
  double *ref = malloc(sizeof(double) * (size_t)numel(&y));
  for (int64_t l = 0; l < L; l++) {
    const float *al = a + bcast_index(nl, ys, l, na - 2, as) * m * k;
    const float *bl = b + bcast_index(nl, ys, l, nb - 2, bs) * k * n;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t p = 0; p < k; p++)
          s += (double)(ta ? al[p * m + i] : al[i * k + p]) * (tb ? bl[j * k + p] : bl[p * n + j]);
        ref[(l * m + i) * n + j] = s;
      }
  }
  double err = max_rel_err(c, ref, numel(&y));
  cr_expect(err < TOL, "matmul ta%d tb%d a%dD[..,%lld,%lld] b[..,%lld]: rel err %g (seed %u)", ta, tb, na,
            (long long)m, (long long)k, (long long)n, err, SEED);
  free(a), free(b), free(c), free(ref);
}

static void check_matmul(int na, const int64_t *as, int nb, const int64_t *bs) {
  check_matmul_t(0, 0, na, as, nb, bs);
}

TestSuite(cpu_heavy, .init = NULL);

Test(cpu_heavy, matmul_small_tails) {
  rng_state = SEED;
  check_matmul(2, (int64_t[]){3, 4}, 2, (int64_t[]){4, 5});       /* n < 8: padded tail panel */
  check_matmul(2, (int64_t[]){16, 5}, 2, (int64_t[]){5, 64});     /* MLP first layer */
  check_matmul(2, (int64_t[]){7, 33}, 2, (int64_t[]){33, 19});    /* 16 + tail 3 */
  check_matmul(2, (int64_t[]){29, 17}, 2, (int64_t[]){17, 57});   /* 32 + 16 + 8 + 1 columns, row tails */
  check_matmul(2, (int64_t[]){10, 300}, 2, (int64_t[]){300, 40}); /* k blocks of 256 + 44 */
  check_matmul(2, (int64_t[]){5, 70}, 2, (int64_t[]){70, 1});     /* gemv */
  check_matmul(2, (int64_t[]){1, 9}, 2, (int64_t[]){9, 33});      /* one row */
}

Test(cpu_heavy, matmul_batched_members) {
  rng_state = SEED + 1;
  check_matmul(3, (int64_t[]){37, 16, 5}, 3, (int64_t[]){37, 5, 64});
  check_matmul(3, (int64_t[]){37, 16, 64}, 3, (int64_t[]){37, 64, 64});
  check_matmul(3, (int64_t[]){37, 16, 64}, 3, (int64_t[]){37, 64, 1});
  check_matmul(2, (int64_t[]){16, 5}, 3, (int64_t[]){9, 5, 64}); /* shared observations, per-member weights */
}

Test(cpu_heavy, matmul_broadcast_loops) {
  rng_state = SEED + 2;
  check_matmul(4, (int64_t[]){2, 1, 5, 6}, 3, (int64_t[]){3, 6, 7});
  check_matmul(4, (int64_t[]){4, 1, 3, 8}, 4, (int64_t[]){1, 5, 8, 2});
  check_matmul(3, (int64_t[]){1, 4, 6}, 4, (int64_t[]){2, 3, 6, 9});
}

Test(cpu_heavy, matmul_fold_shared_weights) {
  rng_state = SEED + 3;
  check_matmul(3, (int64_t[]){6, 20, 30}, 2, (int64_t[]){30, 40});
  check_matmul(4, (int64_t[]){2, 3, 10, 17}, 3, (int64_t[]){1, 17, 9});
  check_matmul(3, (int64_t[]){64, 16, 5}, 2, (int64_t[]){5, 64}); /* [P*N, k] rows split over threads */
  check_matmul(2, (int64_t[]){40, 200}, 2, (int64_t[]){200, 96});  /* few rows: column panels split */
  check_matmul(3, (int64_t[]){2, 100, 70}, 3, (int64_t[]){2, 70, 90}); /* fewer GEMMs than threads (3+) */
}

Test(cpu_heavy, matmul_blas) {
  rng_state = SEED + 4;
  check_matmul(2, (int64_t[]){256, 300}, 2, (int64_t[]){300, 200}); /* one big GEMM */
  check_matmul(3, (int64_t[]){3, 128, 128}, 3, (int64_t[]){3, 128, 128}); /* batched, one per thread */
  check_matmul(3, (int64_t[]){1, 128, 160}, 3, (int64_t[]){1, 160, 128});
  check_matmul(3, (int64_t[]){8, 64, 64}, 2, (int64_t[]){64, 64}); /* folded: [512, 64] @ [64, 64] on the tiles */
}

/* Every path with each operand stored transposed: tiles (B packed in 64-column x 256-row blocks), gemv, the
   batched and broadcast loops, fewer GEMMs than threads, the folded shared-weight GEMM (a transposed a cannot
   fold), OpenBLAS single and batched. */
Test(cpu_heavy, matmul_trans_flags) {
  rng_state = SEED + 7;
  for (int t = 1; t < 4; t++) {
    const int ta = t & 1, tb = t >> 1;
    check_matmul_t(ta, tb, 2, (int64_t[]){3, 4}, 2, (int64_t[]){4, 5});
    check_matmul_t(ta, tb, 2, (int64_t[]){29, 17}, 2, (int64_t[]){17, 57});
    check_matmul_t(ta, tb, 2, (int64_t[]){10, 300}, 2, (int64_t[]){300, 140}); /* k and n blocks with tails */
    check_matmul_t(ta, tb, 2, (int64_t[]){5, 70}, 2, (int64_t[]){70, 1});
    check_matmul_t(ta, tb, 3, (int64_t[]){37, 16, 64}, 3, (int64_t[]){37, 64, 64});
    check_matmul_t(ta, tb, 4, (int64_t[]){2, 1, 5, 6}, 3, (int64_t[]){3, 6, 7});
    check_matmul_t(ta, tb, 3, (int64_t[]){2, 100, 70}, 3, (int64_t[]){2, 70, 90});
    check_matmul_t(ta, tb, 3, (int64_t[]){6, 20, 30}, 2, (int64_t[]){30, 40});
    check_matmul_t(ta, tb, 2, (int64_t[]){40, 200}, 2, (int64_t[]){200, 96});
    check_matmul_t(ta, tb, 2, (int64_t[]){256, 300}, 2, (int64_t[]){300, 200});
    check_matmul_t(ta, tb, 3, (int64_t[]){3, 128, 128}, 3, (int64_t[]){3, 128, 160});
    check_matmul_t(ta, tb, 2, (int64_t[]){4, 0}, 2, (int64_t[]){0, 9}); /* k = 0: zeros */
  }
}

Test(cpu_heavy, gemm_transposed_a) {
  rng_state = SEED + 5;
  const int64_t m = 23, n = 37, k = 301; /* A stored [k, m]: A[i,p] at a[p*m + i] */
  float *a = rand_buf(m * k, 0), *b = rand_buf(k * n, 0), *c = rand_buf(m * n, 0);
  double *ref = malloc(sizeof(double) * (size_t)(m * n));
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = c[i * n + j]; /* accumulate mode */
      for (int64_t p = 0; p < k; p++) s += (double)a[p * m + i] * b[p * n + j];
      ref[i * n + j] = s;
    }
  evo_cpu_gemm(m, n, k, a, 1, m, b, n, c, n, 1);
  double err = max_rel_err(c, ref, m * n);
  cr_expect(err < TOL, "transposed gemm: rel err %g", err);
  free(a), free(b), free(c), free(ref);
}

/* ---- conv2d ----------------------------------------------------------------------------------------------------- */

typedef struct {
  int xnl, wnl;               /* loop dims of x and w */
  int64_t xl[3], wl[3];       /* loop shapes */
  int64_t H, W, C, KH, KW, F;
  int sh, sw, same;
} conv_case;

static void same_pad(int64_t in, int64_t k, int64_t s, int32_t *lo, int32_t *hi) {
  int64_t out = (in + s - 1) / s, total = (out - 1) * s + k - in;
  if (total < 0) total = 0;
  *lo = (int32_t)(total / 2);
  *hi = (int32_t)(total - total / 2);
}

/* Reference forward over the full broadcast loop: y[l, oh, ow, f] in double. */
static void conv_ref(const conv_case *cc, const evo_op_params *p, int nl, const int64_t *ls, int64_t OH, int64_t OW,
                     const float *x, const float *w, double *y) {
  const int64_t L = evo_shape_numel(nl, ls), H = cc->H, W = cc->W, C = cc->C, KW = cc->KW, F = cc->F;
  for (int64_t l = 0; l < L; l++) {
    const float *xi = x + bcast_index(nl, ls, l, cc->xnl, cc->xl) * H * W * C;
    const float *wk = w + bcast_index(nl, ls, l, cc->wnl, cc->wl) * cc->KH * KW * C * F;
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++)
        for (int64_t f = 0; f < F; f++) {
          double s = 0;
          for (int64_t a = 0; a < cc->KH; a++)
            for (int64_t b = 0; b < KW; b++) {
              int64_t ih = oh * p->i[0] - p->i[2] + a, iw = ow * p->i[1] - p->i[3] + b;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              for (int64_t c = 0; c < C; c++)
                s += (double)xi[(ih * W + iw) * C + c] * wk[((a * KW + b) * C + c) * F + f];
            }
          y[((l * OH + oh) * OW + ow) * F + f] = s;
        }
  }
}

/* Runs forward, grad_input (full loop and, when x broadcasts, summed to x's loop dims) and grad_kernel (summed to
   w's loop dims) for one case. */
static void check_conv(const conv_case *cc) {
  evo_op_params p;
  memset(&p, 0, sizeof p);
  p.i[0] = cc->sh, p.i[1] = cc->sw;
  if (cc->same) {
    same_pad(cc->H, cc->KH, cc->sh, &p.i[2], &p.i[4]);
    same_pad(cc->W, cc->KW, cc->sw, &p.i[3], &p.i[5]);
  }
  p.i[6] = (int32_t)cc->KH, p.i[7] = (int32_t)cc->KW;
  const int64_t OH = (cc->H + p.i[2] + p.i[4] - cc->KH) / cc->sh + 1;
  const int64_t OW = (cc->W + p.i[3] + p.i[5] - cc->KW) / cc->sw + 1;
  int64_t xs[8], ws[8], ys[8], ls[8];
  memcpy(xs, cc->xl, sizeof(int64_t) * 3), memcpy(ws, cc->wl, sizeof(int64_t) * 3);
  int nl = bcast_shape(cc->xnl, cc->xl, cc->wnl, cc->wl, ls);
  memcpy(ys, ls, sizeof(int64_t) * (size_t)nl);
  xs[cc->xnl] = cc->H, xs[cc->xnl + 1] = cc->W, xs[cc->xnl + 2] = cc->C;
  ws[cc->wnl] = cc->KH, ws[cc->wnl + 1] = cc->KW, ws[cc->wnl + 2] = cc->C, ws[cc->wnl + 3] = cc->F;
  ys[nl] = OH, ys[nl + 1] = OW, ys[nl + 2] = cc->F;
  evo_node_t xn = mk(EVO_OP_INPUT, cc->xnl + 3, xs), wn = mk(EVO_OP_INPUT, cc->wnl + 4, ws);
  evo_node_t yn = mk(EVO_OP_CONV2D, nl + 3, ys);
  yn.p = p;
  const int64_t L = evo_shape_numel(nl, ls), ny = numel(&yn), nx = numel(&xn), nw = numel(&wn);
  const int64_t img = cc->H * cc->W * cc->C, oimg = OH * OW * cc->F, ker = cc->KH * cc->KW * cc->C * cc->F;
  float *x = rand_buf(nx, 0), *w = rand_buf(nw, 0), *gy = rand_buf(ny, 0), *y = malloc(sizeof(float) * (size_t)ny);
  char what[160];
  snprintf(what, sizeof what, "x loop %d w loop %d %lldx%lldx%lld k%lldx%lld F%lld s%d,%d %s", cc->xnl, cc->wnl,
           (long long)cc->H, (long long)cc->W, (long long)cc->C, (long long)cc->KH, (long long)cc->KW,
           (long long)cc->F, cc->sh, cc->sw, cc->same ? "SAME" : "VALID");

  /* forward */
  const evo_node_t *fin[2] = {&xn, &wn};
  run_kernel(evo_cpu_conv2d, evo_cpu_conv2d_scratch(&yn, fin), &yn, &xn, &wn, x, w, y);
  double *ref = malloc(sizeof(double) * (size_t)ny);
  conv_ref(cc, &p, nl, ls, OH, OW, x, w, ref);
  double err = max_rel_err(y, ref, ny);
  cr_expect(err < TOL, "conv2d %s: rel err %g (seed %u)", what, err, SEED);
  free(ref);

  /* grad_input with the node over the full loop, then summed onto x's own loop dims */
  for (int summed = 0; summed < 2; summed++) {
    int dnl = summed ? cc->xnl : nl;
    int64_t ds[8];
    memcpy(ds, summed ? cc->xl : ls, sizeof(int64_t) * (size_t)dnl);
    ds[dnl] = cc->H, ds[dnl + 1] = cc->W, ds[dnl + 2] = cc->C;
    evo_node_t gyn = mk(EVO_OP_INPUT, nl + 3, ys), dxn = mk(EVO_OP_CONV2D_GRAD_INPUT, dnl + 3, ds);
    dxn.p = p;
    const int64_t ndx = numel(&dxn);
    float *dx = malloc(sizeof(float) * (size_t)ndx);
    const evo_node_t *gin[2] = {&gyn, &wn};
    run_kernel(evo_cpu_conv2d, evo_cpu_conv2d_scratch(&dxn, gin), &dxn, &gyn, &wn, gy, w, dx);
    double *dref = calloc((size_t)ndx, sizeof(double));
    for (int64_t l = 0; l < L; l++) {
      const float *wk = w + bcast_index(nl, ls, l, cc->wnl, cc->wl) * ker, *g = gy + l * oimg;
      double *d = dref + bcast_index(nl, ls, l, dnl, ds) * img;
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++)
          for (int64_t a = 0; a < cc->KH; a++)
            for (int64_t b = 0; b < cc->KW; b++) {
              int64_t ih = oh * cc->sh - p.i[2] + a, iw = ow * cc->sw - p.i[3] + b;
              if (ih < 0 || ih >= cc->H || iw < 0 || iw >= cc->W) continue;
              for (int64_t c = 0; c < cc->C; c++)
                for (int64_t f = 0; f < cc->F; f++)
                  d[(ih * cc->W + iw) * cc->C + c] +=
                      (double)g[(oh * OW + ow) * cc->F + f] * wk[((a * cc->KW + b) * cc->C + c) * cc->F + f];
            }
    }
    err = max_rel_err(dx, dref, ndx);
    cr_expect(err < TOL, "conv2d_grad_input (%s) %s: rel err %g (seed %u)", summed ? "summed" : "full", what, err,
              SEED);
    free(dx), free(dref);
  }

  /* grad_kernel in w's shape: sums over the loop positions w broadcasts along */
  {
    evo_node_t gyn = mk(EVO_OP_INPUT, nl + 3, ys), dwn = mk(EVO_OP_CONV2D_GRAD_KERNEL, cc->wnl + 4, ws);
    dwn.p = p;
    float *dw = malloc(sizeof(float) * (size_t)nw);
    const evo_node_t *kin[2] = {&xn, &gyn};
    run_kernel(evo_cpu_conv2d, evo_cpu_conv2d_scratch(&dwn, kin), &dwn, &xn, &gyn, x, gy, dw);
    double *kref = calloc((size_t)nw, sizeof(double));
    for (int64_t l = 0; l < L; l++) {
      const float *xi = x + bcast_index(nl, ls, l, cc->xnl, cc->xl) * img, *g = gy + l * oimg;
      double *d = kref + bcast_index(nl, ls, l, cc->wnl, cc->wl) * ker;
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++)
          for (int64_t a = 0; a < cc->KH; a++)
            for (int64_t b = 0; b < cc->KW; b++) {
              int64_t ih = oh * cc->sh - p.i[2] + a, iw = ow * cc->sw - p.i[3] + b;
              if (ih < 0 || ih >= cc->H || iw < 0 || iw >= cc->W) continue;
              for (int64_t c = 0; c < cc->C; c++)
                for (int64_t f = 0; f < cc->F; f++)
                  d[((a * cc->KW + b) * cc->C + c) * cc->F + f] +=
                      (double)xi[(ih * cc->W + iw) * cc->C + c] * g[(oh * OW + ow) * cc->F + f];
            }
    }
    err = max_rel_err(dw, kref, nw);
    cr_expect(err < TOL, "conv2d_grad_kernel %s: rel err %g (seed %u)", what, err, SEED);
    free(dw), free(kref);
  }
  free(x), free(w), free(gy), free(y);
}

Test(cpu_heavy, conv_shared_kernel) {
  rng_state = SEED + 10;
  /* images [N, H, W, C] against one kernel; SAME/VALID, stride 1 and 2, odd sizes */
  const conv_case cases[] = {
      {1, 0, {3}, {0}, 9, 11, 3, 3, 3, 5, 1, 1, 1},
      {1, 0, {3}, {0}, 9, 11, 3, 3, 3, 5, 1, 1, 0},
      {1, 0, {2}, {0}, 10, 9, 2, 3, 2, 4, 2, 2, 1},
      {1, 0, {2}, {0}, 11, 10, 4, 3, 3, 6, 2, 1, 0},
      {1, 0, {4}, {0}, 12, 12, 1, 5, 5, 8, 1, 1, 1},   /* EvoJAX conv1 shape, smaller */
      {1, 0, {2}, {0}, 7, 7, 8, 5, 5, 16, 1, 1, 1},    /* conv2 */
      {1, 0, {3}, {0}, 6, 5, 7, 1, 1, 9, 1, 1, 0},     /* 1x1 */
      {0, 0, {0}, {0}, 13, 8, 3, 4, 2, 33, 3, 2, 1},   /* no loop dims, even kernel, stride 3 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_conv(&cases[i]);
}

Test(cpu_heavy, conv_per_member_kernels) {
  rng_state = SEED + 11;
  const conv_case cases[] = {
      {2, 2, {3, 2}, {3, 1}, 8, 8, 3, 3, 3, 4, 1, 1, 1}, /* [P,N] images, [P,1] kernels */
      {1, 2, {2}, {3, 1}, 8, 9, 2, 3, 3, 5, 1, 1, 1},    /* shared images [N] against [P,1] kernels */
      {2, 2, {1, 3}, {2, 1}, 9, 8, 1, 5, 5, 8, 2, 2, 1}, /* shared images [1,N], stride 2 */
      {2, 2, {1, 2}, {3, 2}, 7, 6, 2, 3, 2, 3, 1, 2, 0}, /* a kernel per (member, image) */
      {2, 1, {2, 1}, {3}, 6, 6, 3, 3, 3, 4, 1, 1, 0},    /* loop [2,1] x [3] -> [2,3] */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_conv(&cases[i]);
}

Test(cpu_heavy, conv_row_blocks) {
  rng_state = SEED + 12;
  /* one image: the rows are split across threads; a large padded view is split to fit the cache budget */
  const conv_case cases[] = {
      {0, 0, {0}, {0}, 20, 17, 3, 3, 3, 8, 1, 1, 1},
      {1, 0, {1}, {0}, 70, 66, 16, 3, 3, 8, 1, 1, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_conv(&cases[i]);
}

Test(cpu_heavy, conv_scratch_from_fewer_threads) {
  /* The plan sized scratch when fewer threads were configured: the kernel must use fewer threads, not overrun. */
  rng_state = SEED + 13;
  const int64_t xs[4] = {6, 8, 8, 2}, gs[4] = {6, 8, 8, 3}, ws[4] = {3, 3, 2, 3};
  evo_node_t xn = mk(EVO_OP_INPUT, 4, xs), gyn = mk(EVO_OP_INPUT, 4, gs), dwn = mk(EVO_OP_CONV2D_GRAD_KERNEL, 4, ws);
  dwn.p.i[0] = dwn.p.i[1] = 1, dwn.p.i[2] = dwn.p.i[3] = dwn.p.i[4] = dwn.p.i[5] = 1, dwn.p.i[6] = dwn.p.i[7] = 3;
  float *x = rand_buf(numel(&xn), 0), *gy = rand_buf(numel(&gyn), 0), dw1[54], dw2[54];
  const evo_node_t *in[2] = {&xn, &gyn};
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  size_t small = evo_cpu_conv2d_scratch(&dwn, in);
  run_kernel(evo_cpu_conv2d, small, &dwn, &xn, &gyn, x, gy, dw1);
  omp_set_num_threads(4);
  run_kernel(evo_cpu_conv2d, small, &dwn, &xn, &gyn, x, gy, dw2);
  omp_set_num_threads(saved);
  double ref[54];
  for (int i = 0; i < 54; i++) ref[i] = dw1[i];
  cr_expect(max_rel_err(dw2, ref, 54) < TOL, "results differ with the thread count");
  evo_kernel_args args;
  memset(&args, 0, sizeof args);
  args.node = &dwn, args.in[0] = &xn, args.in[1] = &gyn, args.src[0] = x, args.src[1] = gy, args.dst = dw2;
  cr_expect_neq(evo_cpu_conv2d(&args), EVO_STATUS_OK, "no scratch must be refused, not overrun");
  free(x), free(gy);
}

/* ---- pooling ---------------------------------------------------------------------------------------------------- */

static void check_pool(int nl, const int64_t *loop, int64_t H, int64_t W, int64_t C, int wh, int ww, int sh, int sw,
                       int same) {
  evo_op_params p;
  memset(&p, 0, sizeof p);
  p.i[0] = wh, p.i[1] = ww, p.i[2] = sh, p.i[3] = sw;
  if (same) {
    same_pad(H, wh, sh, &p.i[4], &p.i[6]);
    same_pad(W, ww, sw, &p.i[5], &p.i[7]);
  }
  const int64_t OH = (H + p.i[4] + p.i[6] - wh) / sh + 1, OW = (W + p.i[5] + p.i[7] - ww) / sw + 1;
  int64_t xs[8], ys[8];
  memcpy(xs, loop, sizeof(int64_t) * (size_t)nl), memcpy(ys, loop, sizeof(int64_t) * (size_t)nl);
  xs[nl] = H, xs[nl + 1] = W, xs[nl + 2] = C, ys[nl] = OH, ys[nl + 1] = OW, ys[nl + 2] = C;
  const int64_t N = evo_shape_numel(nl, loop), nx = N * H * W * C, ny = N * OH * OW * C;
  for (int avg = 0; avg < 2; avg++) {
    evo_node_t xn = mk(EVO_OP_INPUT, nl + 3, xs), yn = mk(avg ? EVO_OP_AVG_POOL2D : EVO_OP_MAX_POOL2D, nl + 3, ys);
    evo_node_t gyn = mk(EVO_OP_INPUT, nl + 3, ys);
    evo_node_t dxn = mk(avg ? EVO_OP_AVG_POOL2D_GRAD : EVO_OP_MAX_POOL2D_GRAD, nl + 3, xs);
    yn.p = dxn.p = p;
    float *x = rand_buf(nx, !avg), *gy = rand_buf(ny, 0); /* ties for max: the first max must win */
    float *y = malloc(sizeof(float) * (size_t)ny), *dx = malloc(sizeof(float) * (size_t)nx);
    run_kernel(evo_cpu_pool2d, 0, &yn, &xn, NULL, x, NULL, y);
    if (avg) run_kernel(evo_cpu_pool2d, 0, &dxn, &gyn, NULL, gy, NULL, dx);
    else run_kernel(evo_cpu_pool2d, 0, &dxn, &xn, &gyn, x, gy, dx);
    double *yr = malloc(sizeof(double) * (size_t)ny), *dr = calloc((size_t)nx, sizeof(double));
    for (int64_t n = 0; n < N; n++)
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++)
          for (int64_t c = 0; c < C; c++) {
            double best = -INFINITY, sum = 0;
            int64_t at = -1, cnt = 0;
            for (int64_t a = 0; a < wh; a++)
              for (int64_t b = 0; b < ww; b++) {
                int64_t ih = oh * sh - p.i[4] + a, iw = ow * sw - p.i[5] + b;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                int64_t e = ((n * H + ih) * W + iw) * C + c;
                if (at < 0 || x[e] > best) best = x[e], at = e;
                sum += x[e], cnt++;
              }
            int64_t o = ((n * OH + oh) * OW + ow) * C + c;
            yr[o] = avg ? sum / (double)cnt : best;
            if (!avg) dr[at] += gy[o];
            else
              for (int64_t a = 0; a < wh; a++)
                for (int64_t b = 0; b < ww; b++) {
                  int64_t ih = oh * sh - p.i[4] + a, iw = ow * sw - p.i[5] + b;
                  if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                  dr[((n * H + ih) * W + iw) * C + c] += gy[o] / (double)cnt;
                }
          }
    double e1 = max_rel_err(y, yr, ny), e2 = max_rel_err(dx, dr, nx);
    cr_expect(e1 < TOL, "%s pool %lldx%lldx%lld win %dx%d stride %d,%d %s: rel err %g", avg ? "avg" : "max",
              (long long)H, (long long)W, (long long)C, wh, ww, sh, sw, same ? "SAME" : "VALID", e1);
    cr_expect(e2 < TOL, "%s pool grad %lldx%lldx%lld win %dx%d stride %d,%d %s: rel err %g", avg ? "avg" : "max",
              (long long)H, (long long)W, (long long)C, wh, ww, sh, sw, same ? "SAME" : "VALID", e2);
    free(x), free(gy), free(y), free(dx), free(yr), free(dr);
  }
}

Test(cpu_heavy, pooling) {
  rng_state = SEED + 20;
  check_pool(1, (int64_t[]){3}, 8, 8, 5, 2, 2, 2, 2, 0);         /* non-overlapping, rows in parallel */
  check_pool(2, (int64_t[]){2, 3}, 9, 7, 4, 2, 2, 2, 2, 1);      /* odd sizes, SAME */
  check_pool(1, (int64_t[]){2}, 9, 10, 3, 3, 3, 2, 2, 1);        /* overlapping windows, padding */
  check_pool(1, (int64_t[]){2}, 7, 6, 70, 3, 2, 1, 1, 1);        /* stride 1, > 64 channels */
  check_pool(0, (int64_t[]){1}, 11, 9, 2, 3, 3, 3, 2, 0);        /* no loop dims, gaps between windows */
  check_pool(1, (int64_t[]){64}, 28, 28, 8, 2, 2, 2, 2, 1);      /* EvoJAX maxpool, OpenMP path */
}

Test(cpu_heavy, max_pool_nan) {
  /* NaN propagates through the max and takes the gradient of its window, like the max/argmax reductions. */
  const int64_t xs[4] = {1, 4, 4, 1}, ys[4] = {1, 2, 2, 1};
  evo_node_t xn = mk(EVO_OP_INPUT, 4, xs), yn = mk(EVO_OP_MAX_POOL2D, 4, ys), gyn = mk(EVO_OP_INPUT, 4, ys);
  evo_node_t dxn = mk(EVO_OP_MAX_POOL2D_GRAD, 4, xs);
  yn.p.i[0] = yn.p.i[1] = yn.p.i[2] = yn.p.i[3] = 2;
  dxn.p = yn.p;
  float x[16], y[4], gy[4] = {1, 2, 3, 4}, dx[16];
  for (int i = 0; i < 16; i++) x[i] = (float)i;
  x[4] = NAN; /* row 1, col 0: window 0 */
  run_kernel(evo_cpu_pool2d, 0, &yn, &xn, NULL, x, NULL, y);
  run_kernel(evo_cpu_pool2d, 0, &dxn, &xn, &gyn, x, gy, dx);
  cr_expect(isnan(y[0]) && y[1] == 7.0f && y[2] == 13.0f && y[3] == 15.0f, "y = %g %g %g %g", y[0], y[1], y[2], y[3]);
  cr_expect(dx[4] == 1.0f && dx[5] == 0.0f && dx[7] == 2.0f && dx[13] == 3.0f && dx[15] == 4.0f, "gradient routing");
}
