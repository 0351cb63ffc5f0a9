/* Second derivatives of a small CNN's loss, as jax.grad of a jax.grad: a Hessian-vector product H v built by
   differentiating the gradient graph once more, checked against a central difference of gradients, and the
   curvature v^T H v / v^T v along v. The CNN: conv 4@3x3 SAME -> tanh -> max pool 2 -> dense 10, softmax
   cross-entropy on a batch of random 8x8 images; parameters: the conv kernel and the dense weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "evoc/backend.h"
#include "evoc/graph.h"
#include "evoc/jit.h"
#include "evoc/rng.h"
#include "evoc/transform.h"

enum { B = 16, S = 8, C = 4, K = 3, NW = K * K * 1 * C, ND = (S / 2) * (S / 2) * C * 10 };

static int fail(const char *what) {
  fprintf(stderr, "hessian_vector: %s: %s\n", what, evo_last_error());
  return 1;
}

/* The loss graph: inputs (w [K,K,1,C], d [ND/10, 10], x [B,S,S,1], y [B] i32), output the mean cross-entropy. */
static evo_graph *loss_graph(void) {
  evo_graph *g = evo_graph_new();
  evo_node w = evo_input(g, "w", EVO_F32, 4, (int64_t[]){K, K, 1, C});
  evo_node d = evo_input(g, "d", EVO_F32, 2, (int64_t[]){ND / 10, 10});
  evo_node x = evo_input(g, "x", EVO_F32, 4, (int64_t[]){B, S, S, 1});
  evo_node y = evo_input(g, "y", EVO_I32, 1, (int64_t[]){B});
  evo_node h = evo_tanh(g, evo_conv2d(g, x, w, 1, 1, EVO_PAD_SAME));
  evo_node p = evo_flatten(g, evo_max_pool2d(g, h, 2, 2, 2, 2, EVO_PAD_VALID), 1); /* [B, ND / 10] */
  evo_output(g, evo_mean(g, evo_softmax_cross_entropy(g, evo_matmul(g, p, d), y), 0, NULL, false));
  return g;
}

/* Runs plan p (jitted from g) on (w, d, x, y) and copies its first n_out outputs into out[j]. */
static int run(const evo_graph *g, evo_plan *p, evo_backend *be, const float *w, const float *d, const float *x,
               const int32_t *y, int n_out, float **out) {
  evo_tensor *in[4] = {evo_tensor_from_host(be, EVO_F32, 4, (int64_t[]){K, K, 1, C}, w),
                       evo_tensor_from_host(be, EVO_F32, 2, (int64_t[]){ND / 10, 10}, d),
                       evo_tensor_from_host(be, EVO_F32, 4, (int64_t[]){B, S, S, 1}, x),
                       evo_tensor_from_host(be, EVO_I32, 1, (int64_t[]){B}, y)};
  evo_tensor *o[4] = {0};
  int rc = 0;
  for (int j = 0; j < evo_graph_n_outputs(g); j++) {
    const evo_node n = evo_graph_output(g, j);
    o[j] = evo_tensor_new(be, EVO_F32, evo_node_ndim(g, n), evo_node_shape(g, n));
  }
  if (evo_plan_run(p, in, o)) rc = fail("run");
  for (int j = 0; !rc && j < n_out; j++)
    if (evo_tensor_copy_to_host(o[j], out[j], evo_tensor_nbytes(o[j]))) rc = fail("copy");
  for (int j = 0; j < 4; j++) evo_tensor_free(in[j]), evo_tensor_free(o[j]);
  return rc;
}

int main(void) {
  evo_key key = evo_key_from_seed(7);
  static float w[NW], d[ND], x[B * S * S], vw[NW], vd[ND];
  int32_t y[B];
  evo_rng_fill_normal(evo_key_fold_in(key, 1), w, NW);
  evo_rng_fill_normal(evo_key_fold_in(key, 2), d, ND);
  evo_rng_fill_uniform(evo_key_fold_in(key, 3), x, B * S * S, -1.f, 1.f);
  evo_rng_fill_normal(evo_key_fold_in(key, 4), vw, NW);
  evo_rng_fill_normal(evo_key_fold_in(key, 5), vd, ND);
  for (int i = 0; i < NW; i++) w[i] *= 0.5f;
  for (int i = 0; i < ND; i++) d[i] *= 0.1f;
  for (int b = 0; b < B; b++) y[b] = b % 10;

  /* grad: outputs dL/dw, dL/dd. Then h = <dL/dw, vw> + <dL/dd, vd> and grad again: (H v)_w, (H v)_d. */
  evo_graph *g = loss_graph();
  evo_graph *gg = evo_grad(g, 0, 2, (int[]){0, 1});
  if (!gg) return fail("grad");
  evo_node cvw = evo_constant(gg, EVO_F32, 4, (int64_t[]){K, K, 1, C}, vw);
  evo_node cvd = evo_constant(gg, EVO_F32, 2, (int64_t[]){ND / 10, 10}, vd);
  evo_node hw = evo_sum(gg, evo_mul(gg, evo_graph_output(gg, 0), cvw), 0, NULL, false);
  evo_node hd = evo_sum(gg, evo_mul(gg, evo_graph_output(gg, 1), cvd), 0, NULL, false);
  evo_output(gg, evo_add(gg, hw, hd));
  evo_graph *hvp = evo_grad(gg, 2, 2, (int[]){0, 1});
  if (!hvp) return fail("grad of grad");

  evo_backend *be = evo_backend_cpu_new(NULL);
  evo_plan *pg, *ph;
  if (evo_jit(gg, be, &pg) || evo_jit(hvp, be, &ph)) return fail("jit");
  static float hv_w[NW], hv_d[ND], gp_w[NW], gp_d[ND], gm_w[NW], gm_d[ND];
  float *hv[2] = {hv_w, hv_d};
  if (run(hvp, ph, be, w, d, x, y, 2, hv)) return 1;

  /* central difference of the gradient along v: (grad(theta + e v) - grad(theta - e v)) / 2e, with a small e: the
     gradient jumps where a pooling window's maximum changes hands, and e = 1e-2 already crosses such a point */
  const float e = 1e-4f;
  static float wp[NW], dp[ND], wm[NW], dm[ND];
  for (int i = 0; i < NW; i++) wp[i] = w[i] + e * vw[i], wm[i] = w[i] - e * vw[i];
  for (int i = 0; i < ND; i++) dp[i] = d[i] + e * vd[i], dm[i] = d[i] - e * vd[i];
  float *gp[2] = {gp_w, gp_d}, *gm[2] = {gm_w, gm_d};
  if (run(gg, pg, be, wp, dp, x, y, 2, gp) || run(gg, pg, be, wm, dm, x, y, 2, gm)) return 1;
  double err = 0, mag = 0, vhv = 0, vv = 0;
  for (int i = 0; i < NW; i++) {
    const double fd = (gp_w[i] - gm_w[i]) / (2.0 * e);
    err = fmax(err, fabs(hv_w[i] - fd)), mag = fmax(mag, fabs(fd));
    vhv += (double)vw[i] * hv_w[i], vv += (double)vw[i] * vw[i];
  }
  for (int i = 0; i < ND; i++) {
    const double fd = (gp_d[i] - gm_d[i]) / (2.0 * e);
    err = fmax(err, fabs(hv_d[i] - fd)), mag = fmax(mag, fabs(fd));
    vhv += (double)vd[i] * hv_d[i], vv += (double)vd[i] * vd[i];
  }
  printf("Hessian-vector product of a CNN loss (%d + %d parameters): graph of %d nodes\n", NW, ND,
         evo_graph_n_nodes(hvp));
  printf("  (H v)_w[0..2] = %.6f %.6f %.6f\n", hv_w[0], hv_w[1], hv_w[2]);
  printf("  max |H v - finite difference of gradients| = %.3g (largest entry %.3g)\n", err, mag);
  printf("  curvature along v: v'Hv / v'v = %.6f\n", vhv / vv);
  evo_plan_free(pg), evo_plan_free(ph), evo_backend_free(be);
  evo_graph_free(hvp), evo_graph_free(gg), evo_graph_free(g);
  return err <= 2e-2 * mag + 1e-4 ? 0 : (fprintf(stderr, "hessian_vector: H v disagrees\n"), 1);
}
