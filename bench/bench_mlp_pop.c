/* Population MLP forward (the neuroevolution inner loop for control tasks).
 *
 * The policy is written for ONE member and one batch of N = 16 observations:
 *     obs [16, 5] -> tanh(obs W1 + b1) [16, 64] -> tanh(. W2 + b2) [16, 64] -> tanh(. W3 + b3) [16, 1]
 * then evo_vmap adds the population axis to the six parameters (in_axes 0; observations shared, EVO_VMAP_NONE),
 * and evo_jit compiles it. Timed: evo_plan_run of the jitted population forward, median of `runs`.
 *
 * FLOPs per call (multiply-add = 2 FLOPs; bias adds and tanh not counted):
 *     flop = 2 * P * N * (5*64 + 64*64 + 64*1) = 2 * P * 16 * 4480
 *     P = 1024: 146.8 MFLOP; P = 4096: 587.2 MFLOP; P = 16384: 2348.8 MFLOP.
 * The same formula is used by bench/jax_peers.py (jax.jit(jax.vmap(mlp, in_axes=(0, None)))).
 *
 * Usage: bench_mlp_pop [--quick] [--csv] [--runs N] [--warmup N] [--threads N] [--device cpu|cuda]
 */
#include "bench_util.h"

enum { N_OBS = 16, D_IN = 5, D_H = 64, D_OUT = 1 };

static double mlp_flop(int64_t pop) { return 2.0 * (double)pop * N_OBS * (D_IN * D_H + D_H * D_H + D_H * D_OUT); }

/* One member: inputs w1, b1, w2, b2, w3, b3, obs; output actions [N_OBS, D_OUT]. */
static evo_graph *mlp_member(void) {
  evo_graph *g = evo_graph_new();
  evo_node w1 = evo_input(g, "w1", EVO_F32, 2, (int64_t[]){D_IN, D_H});
  evo_node b1 = evo_input(g, "b1", EVO_F32, 1, (int64_t[]){D_H});
  evo_node w2 = evo_input(g, "w2", EVO_F32, 2, (int64_t[]){D_H, D_H});
  evo_node b2 = evo_input(g, "b2", EVO_F32, 1, (int64_t[]){D_H});
  evo_node w3 = evo_input(g, "w3", EVO_F32, 2, (int64_t[]){D_H, D_OUT});
  evo_node b3 = evo_input(g, "b3", EVO_F32, 1, (int64_t[]){D_OUT});
  evo_node obs = evo_input(g, "obs", EVO_F32, 2, (int64_t[]){N_OBS, D_IN});
  evo_node h = evo_tanh(g, evo_add(g, evo_matmul(g, obs, w1), b1));
  h = evo_tanh(g, evo_add(g, evo_matmul(g, h, w2), b2));
  evo_node y = evo_tanh(g, evo_add(g, evo_matmul(g, h, w3), b3));
  evo_output(g, y);
  if (evo_graph_status(g) != EVO_STATUS_OK) {
    fprintf(stderr, "bench: trace failed: %s\n", evo_graph_error(g));
    exit(1);
  }
  return g;
}

static void run_pop(const bench_opts *o, evo_backend *be, const evo_graph *member, int64_t pop, int warmup,
                    int runs) {
  int in_axes[7] = {0, 0, 0, 0, 0, 0, EVO_VMAP_NONE};
  evo_graph *g = evo_vmap(member, pop, in_axes, NULL);
  if (!g) bench_die("evo_vmap");
  evo_plan *p;
  if (evo_jit(g, be, &p) != EVO_STATUS_OK) bench_die("evo_jit");

  /* Parameters ~ U(-a, a) with a = 1/sqrt(fan_in), observations ~ U(-1, 1). */
  evo_tensor *in[7];
  const int64_t fan_in[3] = {D_IN, D_H, D_H};
  for (int l = 0; l < 3; l++) {
    const int64_t *ws = evo_node_shape(g, evo_graph_input(g, 2 * l));
    const int64_t *bs = evo_node_shape(g, evo_graph_input(g, 2 * l + 1));
    float a = 1.0f / sqrtf((float)fan_in[l]);
    in[2 * l] = bench_tensor(be, 3, ws, 100 + (uint64_t)l, -a, a);
    in[2 * l + 1] = bench_tensor(be, 2, bs, 200 + (uint64_t)l, -a, a);
  }
  in[6] = bench_tensor(be, 2, (int64_t[]){N_OBS, D_IN}, 7, -1.f, 1.f);
  evo_tensor *out[1];
  bench_outputs_for(be, g, out);

  double flop = mlp_flop(pop);
  bench_result r = bench_time_plan(p, in, out, warmup, runs, flop);
  char cfg[64];
  snprintf(cfg, sizeof cfg, "P=%lld x %d obs; 5-64-64-1", (long long)pop, N_OBS);
  char wl[32];
  snprintf(wl, sizeof wl, "mlp_pop_%lld", (long long)pop);
  bench_row(o, wl, cfg, flop, r, p);

  for (int i = 0; i < 7; i++) evo_tensor_free(in[i]);
  evo_tensor_free(out[0]);
  evo_plan_free(p);
  evo_graph_free(g);
}

int main(int argc, char **argv) {
  bench_opts o = bench_parse(argc, argv);
  evo_backend *be = bench_backend(&o);
  evo_graph *member = mlp_member();
  char title[128];
  snprintf(title, sizeof title, "population MLP forward: vmap over params, jit (evo_plan_run), %s",
           bench_device_label(be));
  bench_header(&o, title);
  const int64_t pops[3] = {1024, 4096, 16384};
  int n_pops = o.quick ? 1 : 3;
  for (int i = 0; i < n_pops; i++) {
    int runs = o.runs > 0 ? o.runs : (o.quick ? 20 : (pops[i] <= 1024 ? 200 : pops[i] <= 4096 ? 100 : 40));
    int warmup = o.warmup >= 0 ? o.warmup : (o.quick ? 3 : 10);
    run_pop(&o, be, member, pops[i], warmup, runs);
  }
  evo_graph_free(member);
  evo_backend_free(be);
  return 0;
}
