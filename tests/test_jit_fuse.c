/* jit plan rewrites (core/jit_fuse.c): a TRANSPOSE of the last two dims read only by a MATMUL becomes the matmul's
   trans flag. Each case jits the same graph twice, once with the transposes also marked as outputs (a second
   reader, so they stay kernels): the folded plan must have one kernel fewer per transpose and the same values
   (1e-6 relative: OpenBLAS may sum in another order with a transposed operand). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/backend.h"
#include "evoc/graph.h"
#include "evoc/jit.h"

#define SEED 977u

static evo_backend *be;
static void setup(void) { be = evo_backend_cpu_new(NULL); }
static void teardown(void) { evo_backend_free(be); }
TestSuite(jit_fuse, .init = setup, .fini = teardown);

static uint64_t rng_state;
static float frand(void) { /* uniform in [-1, 1) */
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng_state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

/* Swap of the last two dims of an nd-dim node. */
static evo_node swap_last(evo_graph *g, evo_node x) {
  const int nd = evo_node_ndim(g, x);
  int perm[EVO_MAX_DIMS];
  for (int d = 0; d < nd; d++) perm[d] = d;
  perm[nd - 2] = nd - 1, perm[nd - 1] = nd - 2;
  return evo_transpose(g, x, perm);
}

/* y = op(a) @ op(b) with a stored as sa, b as sb; `keep` also outputs the transposes. Returns the number of
   transposes. */
static int build(evo_graph *g, int ta, int tb, int na, const int64_t *sa, int nb, const int64_t *sb, int keep) {
  evo_node a = evo_input(g, "a", EVO_F32, na, sa), b = evo_input(g, "b", EVO_F32, nb, sb);
  evo_node at = ta ? swap_last(g, a) : a, bt = tb ? swap_last(g, b) : b;
  evo_output(g, evo_matmul(g, at, bt));
  if (keep && ta) evo_output(g, at);
  if (keep && tb) evo_output(g, bt);
  cr_assert_eq(evo_graph_status(g), EVO_STATUS_OK, "%s", evo_graph_error(g));
  return ta + tb;
}

/* Runs the plan of g on a, b; returns the first output in a malloc'd buffer. */
static float *run(evo_graph *g, evo_plan *p, evo_tensor *ta, evo_tensor *tb, int64_t *n_out) {
  const int no = evo_graph_n_outputs(g);
  evo_tensor *outs[3] = {0};
  for (int j = 0; j < no; j++) {
    const evo_node o = evo_graph_output(g, j);
    outs[j] = evo_tensor_new(be, EVO_F32, evo_node_ndim(g, o), evo_node_shape(g, o));
  }
  evo_tensor *ins[2] = {ta, tb};
  cr_assert_eq(evo_plan_run(p, ins, outs), EVO_STATUS_OK, "%s", evo_last_error());
  *n_out = evo_tensor_numel(outs[0]);
  float *y = malloc(sizeof(float) * (size_t)*n_out);
  cr_assert_eq(evo_tensor_copy_to_host(outs[0], y, sizeof(float) * (size_t)*n_out), EVO_STATUS_OK);
  for (int j = 0; j < no; j++) evo_tensor_free(outs[j]);
  return y;
}

static int64_t numel(int nd, const int64_t *s) {
  int64_t n = 1;
  for (int d = 0; d < nd; d++) n *= s[d];
  return n;
}

static void check_fold(int ta, int tb, int na, const int64_t *sa, int nb, const int64_t *sb) {
  evo_graph *gf = evo_graph_new(), *gu = evo_graph_new();
  const int nt = build(gf, ta, tb, na, sa, nb, sb, 0);
  build(gu, ta, tb, na, sa, nb, sb, 1);
  evo_plan *pf, *pu;
  cr_assert_eq(evo_jit(gf, be, &pf), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_jit(gu, be, &pu), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect_eq(evo_plan_n_kernels(pu), 1 + nt);
  cr_expect_eq(evo_plan_n_kernels(pf), 1, "ta %d tb %d: %d kernels", ta, tb, evo_plan_n_kernels(pf));

  const int64_t la = numel(na, sa), lb = numel(nb, sb);
  float *ha = malloc(sizeof(float) * (size_t)la), *hb = malloc(sizeof(float) * (size_t)lb);
  for (int64_t i = 0; i < la; i++) ha[i] = frand();
  for (int64_t i = 0; i < lb; i++) hb[i] = frand();
  evo_tensor *xa = evo_tensor_from_host(be, EVO_F32, na, sa, ha), *xb = evo_tensor_from_host(be, EVO_F32, nb, sb, hb);
  int64_t n1, n2;
  float *yf = run(gf, pf, xa, xb, &n1), *yu = run(gu, pu, xa, xb, &n2);
  cr_assert_eq(n1, n2);
  double scale = 0, err = 0;
  for (int64_t i = 0; i < n1; i++) scale = fmax(scale, fabs(yu[i]));
  for (int64_t i = 0; i < n1; i++) err = fmax(err, fabs((double)yf[i] - yu[i]) / (scale > 0 ? scale : 1));
  cr_expect(err <= 1e-6, "ta %d tb %d a%dD b%dD: rel err %g (seed %u)", ta, tb, na, nb, err, SEED);
  free(yf), free(yu), free(ha), free(hb);
  evo_tensor_free(xa), evo_tensor_free(xb);
  evo_plan_free(pf), evo_plan_free(pu);
  evo_graph_free(gf), evo_graph_free(gu);
}

/* Stored shapes: a transposed operand is given as [.., k, m] / [.., n, k]. */
Test(jit_fuse, transposed_operand_folds_into_matmul) {
  rng_state = SEED;
  /* dense backward on the tiles: dX = g W^T, dW = x^T g */
  check_fold(0, 1, 2, (int64_t[]){16, 64}, 2, (int64_t[]){5, 64});
  check_fold(1, 0, 2, (int64_t[]){16, 5}, 2, (int64_t[]){16, 64});
  check_fold(1, 1, 2, (int64_t[]){30, 7}, 2, (int64_t[]){9, 30});
  /* population of members, broadcast loop dims, a shared operand */
  check_fold(0, 1, 3, (int64_t[]){37, 16, 64}, 3, (int64_t[]){37, 64, 64});
  check_fold(1, 0, 3, (int64_t[]){37, 64, 16}, 3, (int64_t[]){37, 64, 64});
  check_fold(1, 1, 4, (int64_t[]){2, 1, 6, 5}, 3, (int64_t[]){3, 7, 6});
  check_fold(1, 0, 3, (int64_t[]){6, 30, 20}, 2, (int64_t[]){30, 40});
  check_fold(0, 1, 3, (int64_t[]){6, 20, 30}, 2, (int64_t[]){40, 30});
  /* OpenBLAS sizes (the CNN train step's dense layer) */
  check_fold(0, 1, 2, (int64_t[]){128, 10}, 2, (int64_t[]){300, 10});
  check_fold(0, 1, 2, (int64_t[]){200, 256}, 2, (int64_t[]){300, 256});
  check_fold(1, 0, 2, (int64_t[]){256, 200}, 2, (int64_t[]){256, 300});
  check_fold(1, 1, 3, (int64_t[]){2, 160, 128}, 3, (int64_t[]){2, 144, 160});
}

/* Only a swap of the last two dims with the matmul as its single reader folds; the rest stay kernels and the
   values stay right. */
Test(jit_fuse, other_transposes_stay) {
  rng_state = SEED + 1;
  int64_t sx[3] = {4, 3, 5}, sw[3] = {3, 5, 6};
  float hx[60], hw[90];
  for (int i = 0; i < 60; i++) hx[i] = frand();
  for (int i = 0; i < 90; i++) hw[i] = frand();
  evo_graph *g = evo_graph_new();
  evo_node x = evo_input(g, "x", EVO_F32, 3, sx), w = evo_input(g, "w", EVO_F32, 3, sw);
  evo_node xt = evo_transpose(g, x, (int[]){1, 0, 2}); /* [3, 4, 5]: moves a loop dim */
  evo_node y1 = evo_matmul(g, xt, w);                  /* [3, 4, 6] */
  evo_node ws = swap_last(g, w);                       /* [3, 6, 5], read twice */
  evo_node y2 = evo_matmul(g, y1, ws);                 /* [3, 4, 5] */
  evo_node y3 = evo_add(g, y2, evo_sum(g, ws, 1, (int[]){1}, true)); /* + [3, 1, 5] */
  evo_output(g, y3);
  evo_plan *p;
  cr_assert_eq(evo_jit(g, be, &p), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect_eq(evo_plan_n_kernels(p), 6, "%d kernels", evo_plan_n_kernels(p));
  evo_tensor *tx = evo_tensor_from_host(be, EVO_F32, 3, sx, hx), *tw = evo_tensor_from_host(be, EVO_F32, 3, sw, hw);
  int64_t n;
  float *y = run(g, p, tx, tw, &n);
  cr_assert_eq(n, 60);
  for (int l = 0; l < 3; l++)
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 5; j++) {
        double s = 0, cs = 0;
        for (int c = 0; c < 6; c++) {
          double h = 0;
          for (int k = 0; k < 5; k++) h += (double)hx[(i * 3 + l) * 5 + k] * hw[(l * 5 + k) * 6 + c];
          s += h * hw[(l * 5 + j) * 6 + c];
          cs += hw[(l * 5 + j) * 6 + c];
        }
        cr_expect(fabs(y[(l * 4 + i) * 5 + j] - (s + cs)) < 1e-4, "[%d,%d,%d]: %g vs %g", l, i, j,
                  y[(l * 4 + i) * 5 + j], s + cs);
      }
  free(y);
  evo_tensor_free(tx), evo_tensor_free(tw);
  evo_plan_free(p);
  evo_graph_free(g);
}
