/* jit plan rewrites (core/jit_fuse.c): a TRANSPOSE of the last two dims read only by a MATMUL becomes the matmul's
   trans flag, and a binary op read only by a unary one fuses with it. Each case jits the same graph twice, once
   with the intermediates also marked as outputs (a second reader, so they stay kernels): the rewritten plan must
   have one kernel fewer per rewrite and the same values (1e-6 relative for matmul: OpenBLAS may sum in another
   order with a transposed operand; bit for bit for the elementwise pair). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/backend.h"
#include "evoc/graph.h"
#include "evoc/jit.h"
#include "backend_impl.h"

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
static float *run(evo_backend *b, evo_graph *g, evo_plan *p, evo_tensor *ta, evo_tensor *tb, int64_t *n_out) {
  const int no = evo_graph_n_outputs(g);
  evo_tensor *outs[3] = {0};
  for (int j = 0; j < no; j++) {
    const evo_node o = evo_graph_output(g, j);
    outs[j] = evo_tensor_new(b, EVO_F32, evo_node_ndim(g, o), evo_node_shape(g, o));
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

static float *rand_buf(int64_t n) {
  float *h = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) h[i] = frand();
  return h;
}

/* max |got - ref| over max |ref|. */
static double max_rel_err(const float *got, const float *ref, int64_t n) {
  double scale = 0, err = 0;
  for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
  for (int64_t i = 0; i < n; i++) err = fmax(err, fabs((double)got[i] - ref[i]));
  return err / (scale > 0 ? scale : 1);
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

  float *ha = rand_buf(numel(na, sa)), *hb = rand_buf(numel(nb, sb));
  evo_tensor *xa = evo_tensor_from_host(be, EVO_F32, na, sa, ha), *xb = evo_tensor_from_host(be, EVO_F32, nb, sb, hb);
  int64_t n1, n2;
  float *yf = run(be, gf, pf, xa, xb, &n1), *yu = run(be, gu, pu, xa, xb, &n2);
  cr_assert_eq(n1, n2);
  const double err = max_rel_err(yf, yu, n1);
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
  float *y = run(be, g, p, tx, tw, &n);
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

/* Two dense layers of a population MLP, bias add + activation each: h = act(x @ W + b). */
static evo_graph *mlp(int keep, evo_node (*act)(evo_graph *, evo_node), int64_t P) {
  evo_graph *g = evo_graph_new();
  evo_node x = evo_input(g, "x", EVO_F32, 2, (int64_t[]){16, 5});
  evo_node w1 = evo_input(g, "w1", EVO_F32, 3, (int64_t[]){P, 5, 64});
  evo_node b1 = evo_input(g, "b1", EVO_F32, 3, (int64_t[]){P, 1, 64});
  evo_node w2 = evo_input(g, "w2", EVO_F32, 3, (int64_t[]){P, 64, 8});
  evo_node b2 = evo_input(g, "b2", EVO_F32, 1, (int64_t[]){8});
  evo_node z1 = evo_add(g, evo_matmul(g, x, w1), b1);
  evo_node z2 = evo_add(g, evo_matmul(g, act(g, z1), w2), b2);
  evo_output(g, act(g, z2));
  if (keep) evo_output(g, z1), evo_output(g, z2);
  cr_assert_eq(evo_graph_status(g), EVO_STATUS_OK, "%s", evo_graph_error(g));
  return g;
}

/* Runs g's plan on inputs filled from the seed; returns output 0. */
static float *run_mlp(evo_graph *g, evo_backend *b, evo_plan *p, int64_t *n) {
  const int ni = evo_graph_n_inputs(g), no = evo_graph_n_outputs(g);
  evo_tensor *ins[5], *outs[3];
  rng_state = SEED + 2;
  for (int j = 0; j < ni; j++) {
    const evo_node x = evo_graph_input(g, j);
    const int64_t k = evo_node_numel(g, x);
    float *h = malloc(sizeof(float) * (size_t)k);
    for (int64_t i = 0; i < k; i++) h[i] = 2.0f * frand();
    ins[j] = evo_tensor_from_host(b, EVO_F32, evo_node_ndim(g, x), evo_node_shape(g, x), h);
    free(h);
  }
  for (int j = 0; j < no; j++) {
    const evo_node o = evo_graph_output(g, j);
    outs[j] = evo_tensor_new(b, EVO_F32, evo_node_ndim(g, o), evo_node_shape(g, o));
  }
  cr_assert_eq(evo_plan_run(p, ins, outs), EVO_STATUS_OK, "%s", evo_last_error());
  *n = evo_tensor_numel(outs[0]);
  float *y = malloc(sizeof(float) * (size_t)*n);
  evo_tensor_copy_to_host(outs[0], y, sizeof(float) * (size_t)*n);
  for (int j = 0; j < ni; j++) evo_tensor_free(ins[j]);
  for (int j = 0; j < no; j++) evo_tensor_free(outs[j]);
  return y;
}

static void check_mlp(evo_backend *b, evo_node (*act)(evo_graph *, evo_node), int64_t P, int fused_pairs) {
  evo_graph *gf = mlp(0, act, P), *gu = mlp(1, act, P);
  evo_plan *pf, *pu;
  cr_assert_eq(evo_jit(gf, b, &pf), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_jit(gu, b, &pu), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect_eq(evo_plan_n_kernels(pu), 6);
  cr_expect_eq(evo_plan_n_kernels(pf), 6 - fused_pairs, "%d kernels", evo_plan_n_kernels(pf));
  int64_t n1, n2;
  float *yf = run_mlp(gf, b, pf, &n1), *yu = run_mlp(gu, b, pu, &n2);
  cr_assert_eq(n1, n2);
  for (int64_t i = 0; i < n1; i++) cr_assert_eq(yf[i], yu[i], "[%lld]: %.9g vs %.9g", (long long)i, yf[i], yu[i]);
  free(yf), free(yu);
  evo_plan_free(pf), evo_plan_free(pu);
  evo_graph_free(gf), evo_graph_free(gu);
}

Test(jit_fuse, bias_add_and_activation_fuse) {
  check_mlp(be, evo_tanh, 37, 2); /* small: one thread per row block */
  check_mlp(be, evo_relu, 37, 2);
  check_mlp(be, evo_sigmoid, 300, 2); /* [300, 16, 64]: rows split across threads */
}

/* A backend that refuses the fused op (as the CUDA one does) keeps the two kernels. */
static int no_fused(void *ctx, const evo_node_t *node, const evo_node_t *const *in) {
  (void)ctx, (void)in;
  return node->op < EVO_OP_COUNT;
}

Test(jit_fuse, backend_refusal_keeps_pairs) {
  evo_backend_iface iface = *be->iface;
  iface.supports_op = no_fused;
  evo_backend refusing = {.iface = &iface, .ctx = be->ctx};
  check_mlp(&refusing, evo_tanh, 5, 0);
}

/* The pre-activation read by another node (relu's mask in a backward pass, here an exp) stays a kernel. */
Test(jit_fuse, shared_intermediate_stays) {
  evo_graph *g = evo_graph_new();
  int64_t s[2] = {4, 6};
  evo_node x = evo_input(g, "x", EVO_F32, 2, s), b = evo_input(g, "b", EVO_F32, 1, (int64_t[]){6});
  evo_node z = evo_add(g, x, b);
  evo_output(g, evo_mul(g, evo_relu(g, z), evo_exp(g, z))); /* add, relu, exp, mul: nothing fuses */
  evo_node y2 = evo_tanh(g, evo_sub(g, x, b));               /* sub + tanh fuse */
  evo_output(g, y2);
  evo_plan *p;
  cr_assert_eq(evo_jit(g, be, &p), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect_eq(evo_plan_n_kernels(p), 5, "%d kernels", evo_plan_n_kernels(p));
  float hx[24], hb[6], y[24], t[24];
  for (int i = 0; i < 24; i++) hx[i] = (float)(i % 7) * 0.5f - 1.5f;
  for (int i = 0; i < 6; i++) hb[i] = (float)i * 0.25f - 0.5f;
  evo_tensor *tx = evo_tensor_from_host(be, EVO_F32, 2, s, hx);
  evo_tensor *tb = evo_tensor_from_host(be, EVO_F32, 1, (int64_t[]){6}, hb);
  evo_tensor *o1 = evo_tensor_new(be, EVO_F32, 2, s), *o2 = evo_tensor_new(be, EVO_F32, 2, s);
  evo_tensor *ins[2] = {tx, tb}, *outs[2] = {o1, o2};
  cr_assert_eq(evo_plan_run(p, ins, outs), EVO_STATUS_OK, "%s", evo_last_error());
  evo_tensor_copy_to_host(o1, y, sizeof y);
  evo_tensor_copy_to_host(o2, t, sizeof t);
  for (int i = 0; i < 24; i++) {
    const double z0 = (double)hx[i] + hb[i % 6];
    cr_expect(fabs(y[i] - (z0 > 0 ? z0 : 0) * exp(z0)) < 1e-5 * (1 + fabs(y[i])), "[%d] %g", i, y[i]);
    cr_expect(fabs(t[i] - tanh((double)hx[i] - hb[i % 6])) < 1e-6, "[%d] %g", i, t[i]);
  }
  evo_tensor_free(tx), evo_tensor_free(tb), evo_tensor_free(o1), evo_tensor_free(o2);
  evo_plan_free(p);
  evo_graph_free(g);
}

/* On a GPU: cuBLAS takes the trans flags (one kernel per transposed matmul, values as on the CPU up to summation
   order), and the CUDA backend takes matmul + bias + activation as one fused layer (EVO_OP_FUSED_MATMUL_BIAS_ACT):
   the two-layer MLP is two kernels, where the same MLP keeping its pre-activations as outputs cannot fuse and
   stays six. */
Test(jit_fuse, cuda_folds_transposes_and_fuses_layers) {
  evo_backend *gpu = NULL;
  if (evo_backend_cuda_new(0, &gpu) != EVO_STATUS_OK || evo_cuda_device_count() == 0) {
    evo_backend_free(gpu);
    cr_skip_test("no usable CUDA device: %s", evo_last_error());
  }
  rng_state = SEED + 3;
  const struct {
    int ta, tb, na, nb;
    int64_t sa[3], sb[3];
  } cases[] = {{0, 1, 2, 2, {16, 64}, {5, 64}},          {1, 0, 3, 3, {37, 64, 16}, {37, 64, 64}},
               {1, 1, 3, 2, {6, 30, 20}, {40, 30}},      {0, 1, 3, 2, {6, 20, 30}, {40, 30}},
               {1, 1, 3, 3, {2, 160, 128}, {2, 144, 160}}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    evo_graph *g = evo_graph_new();
    build(g, cases[c].ta, cases[c].tb, cases[c].na, cases[c].sa, cases[c].nb, cases[c].sb, 0);
    evo_plan *pc, *pg;
    cr_assert_eq(evo_jit(g, be, &pc), EVO_STATUS_OK, "%s", evo_last_error());
    cr_assert_eq(evo_jit(g, gpu, &pg), EVO_STATUS_OK, "%s", evo_last_error());
    cr_expect_eq(evo_plan_n_kernels(pg), 1, "case %zu: %d kernels", c, evo_plan_n_kernels(pg));
    float *ha = rand_buf(numel(cases[c].na, cases[c].sa)), *hb = rand_buf(numel(cases[c].nb, cases[c].sb));
    evo_tensor *ca = evo_tensor_from_host(be, EVO_F32, cases[c].na, cases[c].sa, ha);
    evo_tensor *cb = evo_tensor_from_host(be, EVO_F32, cases[c].nb, cases[c].sb, hb);
    evo_tensor *ga = evo_tensor_from_host(gpu, EVO_F32, cases[c].na, cases[c].sa, ha);
    evo_tensor *gb = evo_tensor_from_host(gpu, EVO_F32, cases[c].nb, cases[c].sb, hb);
    int64_t n1, n2;
    float *yc = run(be, g, pc, ca, cb, &n1), *yg = run(gpu, g, pg, ga, gb, &n2);
    cr_assert_eq(n1, n2);
    const double err = max_rel_err(yg, yc, n1);
    cr_expect(err <= 1e-5, "case %zu: cuda vs cpu rel err %g", c, err);
    free(yc), free(yg), free(ha), free(hb);
    evo_tensor_free(ca), evo_tensor_free(cb), evo_tensor_free(ga), evo_tensor_free(gb);
    evo_plan_free(pc), evo_plan_free(pg);
    evo_graph_free(g);
  }
  for (int keep = 0; keep < 2; keep++) {
    evo_graph *g = mlp(keep, evo_tanh, 7);
    evo_plan *p;
    cr_assert_eq(evo_jit(g, gpu, &p), EVO_STATUS_OK, "%s", evo_last_error());
    cr_expect_eq(evo_plan_n_kernels(p), keep ? 6 : 2, "keep %d: %d kernels", keep, evo_plan_n_kernels(p));
    evo_plan_free(p);
    evo_graph_free(g);
  }
  evo_backend_free(gpu);
}
