/* A policy written for one member and one observation batch, vmapped over a population of parameter sets, and
   its gradient: the core workflow of evoc in one page. Prints the population's outputs and a gradient check. */
#include <stdio.h>
#include <stdlib.h>
#include "evoc/backend.h"
#include "evoc/graph.h"
#include "evoc/jit.h"
#include "evoc/rng.h"
#include "evoc/transform.h"

enum { P = 256, N = 16, IN = 5, H = 32, OUT = 1 };

static int fail(const char *what) {
  fprintf(stderr, "mlp_population: %s: %s\n", what, evo_last_error());
  return 1;
}

int main(void) {
  /* One member: obs [N, IN] -> tanh(obs W1 + b1) W2 + b2 -> tanh. */
  evo_graph *f = evo_graph_new();
  evo_node w1 = evo_input(f, "w1", EVO_F32, 2, (int64_t[]){IN, H});
  evo_node b1 = evo_input(f, "b1", EVO_F32, 1, (int64_t[]){H});
  evo_node w2 = evo_input(f, "w2", EVO_F32, 2, (int64_t[]){H, OUT});
  evo_node obs = evo_input(f, "obs", EVO_F32, 2, (int64_t[]){N, IN});
  evo_node h = evo_tanh(f, evo_add(f, evo_matmul(f, obs, w1), b1));
  evo_node act = evo_tanh(f, evo_matmul(f, h, w2));
  evo_output(f, act);

  /* Population: params batched (axis 0), observations shared. */
  int in_axes[4] = {0, 0, 0, EVO_VMAP_NONE};
  evo_graph *pop = evo_vmap(f, P, in_axes, NULL);
  if (!pop) return fail("vmap");

  /* Gradient of a scalar loss w.r.t. w1 and w2 for one member: the same graph machinery. */
  evo_graph *l = evo_graph_new();
  evo_node lw1 = evo_input(l, "w1", EVO_F32, 2, (int64_t[]){IN, H});
  evo_node lb1 = evo_input(l, "b1", EVO_F32, 1, (int64_t[]){H});
  evo_node lw2 = evo_input(l, "w2", EVO_F32, 2, (int64_t[]){H, OUT});
  evo_node lobs = evo_input(l, "obs", EVO_F32, 2, (int64_t[]){N, IN});
  evo_node lh = evo_tanh(l, evo_add(l, evo_matmul(l, lobs, lw1), lb1));
  evo_output(l, evo_mean(l, evo_square(l, evo_tanh(l, evo_matmul(l, lh, lw2))), 0, NULL, false));
  evo_graph *vg = evo_value_and_grad(l, 0, 2, (int[]){0, 2});
  if (!vg) return fail("value_and_grad");

  evo_backend *be = evo_backend_cpu_new(NULL);
  evo_plan *pp, *gp;
  if (evo_jit(pop, be, &pp) || evo_jit(vg, be, &gp)) return fail("jit");

  /* Parameters from counter-based noise: member i's weights depend only on (key, i). */
  evo_key key = evo_key_from_seed(42);
  float *hw1 = malloc(sizeof(float) * P * IN * H), *hb1 = calloc(P * H, sizeof(float));
  float *hw2 = malloc(sizeof(float) * P * H * OUT), *hobs = malloc(sizeof(float) * N * IN);
  evo_rng_fill_normal(evo_key_fold_in(key, 1), hw1, P * IN * H);
  evo_rng_fill_normal(evo_key_fold_in(key, 2), hw2, P * H * OUT);
  evo_rng_fill_uniform(evo_key_fold_in(key, 3), hobs, N * IN, -1.f, 1.f);
  evo_tensor *tw1 = evo_tensor_from_host(be, EVO_F32, 3, (int64_t[]){P, IN, H}, hw1);
  evo_tensor *tb1 = evo_tensor_from_host(be, EVO_F32, 2, (int64_t[]){P, H}, hb1);
  evo_tensor *tw2 = evo_tensor_from_host(be, EVO_F32, 3, (int64_t[]){P, H, OUT}, hw2);
  evo_tensor *tobs = evo_tensor_from_host(be, EVO_F32, 2, (int64_t[]){N, IN}, hobs);
  evo_tensor *tact = evo_tensor_new(be, EVO_F32, 3, (int64_t[]){P, N, OUT});
  evo_tensor *pin[4] = {tw1, tb1, tw2, tobs}, *pout[1] = {tact};
  if (evo_plan_run(pp, pin, pout)) return fail("population forward");
  const float *a = evo_tensor_data(tact);
  printf("population forward: %d members x %d observations -> actions [%d, %d, %d]\n", P, N, P, N, OUT);
  printf("member 0, first actions: %.4f %.4f %.4f\n", a[0], a[1], a[2]);
  printf("plan: %d kernels, peak %zu bytes\n", evo_plan_n_kernels(pp), evo_plan_peak_bytes(pp));

  /* value_and_grad for member 0, checked against a finite difference on one weight. */
  evo_tensor *g1 = evo_tensor_from_host(be, EVO_F32, 2, (int64_t[]){IN, H}, hw1);
  evo_tensor *g2 = evo_tensor_from_host(be, EVO_F32, 2, (int64_t[]){H, OUT}, hw2);
  evo_tensor *gb = evo_tensor_from_host(be, EVO_F32, 1, (int64_t[]){H}, hb1);
  evo_tensor *val = evo_tensor_new(be, EVO_F32, 0, NULL);
  evo_tensor *dw1 = evo_tensor_new(be, EVO_F32, 2, (int64_t[]){IN, H});
  evo_tensor *dw2 = evo_tensor_new(be, EVO_F32, 2, (int64_t[]){H, OUT});
  evo_tensor *gin[4] = {g1, gb, g2, tobs}, *gout[3] = {val, dw1, dw2};
  if (evo_plan_run(gp, gin, gout)) return fail("value_and_grad");
  float loss0 = *(float *)evo_tensor_data(val), d = ((float *)evo_tensor_data(dw1))[7];
  float eps = 1e-2f, *pw = evo_tensor_data(g1), keep = pw[7];
  pw[7] = keep + eps;
  evo_plan_run(gp, gin, gout);
  float lp = *(float *)evo_tensor_data(val);
  pw[7] = keep - eps;
  evo_plan_run(gp, gin, gout);
  float lm = *(float *)evo_tensor_data(val);
  printf("member 0: loss %.6f, dloss/dw1[7] = %.6f (finite difference %.6f)\n", loss0, d, (lp - lm) / (2 * eps));

  evo_tensor *all[] = {tw1, tb1, tw2, tobs, tact, g1, g2, gb, val, dw1, dw2};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) evo_tensor_free(all[i]);
  free(hw1), free(hb1), free(hw2), free(hobs);
  evo_plan_free(pp), evo_plan_free(gp);
  evo_graph_free(f), evo_graph_free(pop), evo_graph_free(l), evo_graph_free(vg);
  evo_backend_free(be);
  return 0;
}
