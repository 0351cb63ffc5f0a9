/* Population CNN forward: the EvoJAX MNIST ConvNet evaluated by a population of 64 members on the SAME batch of
 * 1024 images (common random numbers: the images are shared, only the parameters are vmapped).
 *
 * One member, one batch of B images x [B, 28, 28, 1]:
 *     conv 8@5x5 SAME (+bias) -> relu -> maxpool 2x2/2 -> conv 16@5x5 SAME (+bias) -> relu -> maxpool 2x2/2
 *     -> flatten [B, 784] -> dense 10 (+bias) -> log_softmax
 * Parameters: 5*5*1*8 + 8 + 5*5*8*16 + 16 + 784*10 + 10 = 11,274 (as EvoJAX). evo_vmap over the six parameters
 * (in_axes 0; images EVO_VMAP_NONE), evo_jit, timed evo_plan_run (median of `runs`).
 *
 * FLOPs per call (multiply-add = 2 FLOPs; bias, relu, pooling, log_softmax not counted):
 *     conv1 = 2 * 28*28 * 8  * (5*5*1) = 313,600      per image
 *     conv2 = 2 * 14*14 * 16 * (5*5*8) = 1,254,400    per image
 *     dense = 2 * 784 * 10             = 15,680       per image
 *     flop  = P * B * 1,583,680;  P = 64, B = 1024: 103.79 GFLOP per call.
 * The same formula is used by bench/jax_peers.py (jax.jit(jax.vmap(convnet, in_axes=(0, None)))).
 *
 * Usage: bench_cnn_pop [--quick] [--csv] [--runs N] [--warmup N] [--threads N] [--device cpu|cuda]
 *        (--quick: fewer runs; the shape stays P = 64 x 1024 so the numbers are comparable)
 */
#include "bench_util.h"

enum { POP = 64, BATCH = 1024, IMG = 28 };

static double cnn_flop_per_image(void) {
  double conv1 = 2.0 * 28 * 28 * 8 * (5 * 5 * 1);
  double conv2 = 2.0 * 14 * 14 * 16 * (5 * 5 * 8);
  double dense = 2.0 * 784 * 10;
  return conv1 + conv2 + dense;
}

/* One member: inputs c1w, c1b, c2w, c2b, dw, db, x; output log-probabilities [B, 10]. */
static evo_graph *cnn_member(int64_t batch) {
  evo_graph *g = evo_graph_new();
  evo_node c1w = evo_input(g, "conv1.kernel", EVO_F32, 4, (int64_t[]){5, 5, 1, 8});
  evo_node c1b = evo_input(g, "conv1.bias", EVO_F32, 1, (int64_t[]){8});
  evo_node c2w = evo_input(g, "conv2.kernel", EVO_F32, 4, (int64_t[]){5, 5, 8, 16});
  evo_node c2b = evo_input(g, "conv2.bias", EVO_F32, 1, (int64_t[]){16});
  evo_node dw = evo_input(g, "dense.kernel", EVO_F32, 2, (int64_t[]){784, 10});
  evo_node db = evo_input(g, "dense.bias", EVO_F32, 1, (int64_t[]){10});
  evo_node x = evo_input(g, "x", EVO_F32, 4, (int64_t[]){batch, IMG, IMG, 1});
  evo_node h = evo_relu(g, evo_add(g, evo_conv2d(g, x, c1w, 1, 1, EVO_PAD_SAME), c1b));
  h = evo_max_pool2d(g, h, 2, 2, 2, 2, EVO_PAD_VALID);
  h = evo_relu(g, evo_add(g, evo_conv2d(g, h, c2w, 1, 1, EVO_PAD_SAME), c2b));
  h = evo_max_pool2d(g, h, 2, 2, 2, 2, EVO_PAD_VALID);
  h = evo_flatten(g, h, 1); /* [B, 7*7*16] */
  evo_node logits = evo_add(g, evo_matmul(g, h, dw), db);
  evo_output(g, evo_log_softmax(g, logits, -1));
  if (evo_graph_status(g) != EVO_STATUS_OK) {
    fprintf(stderr, "bench: trace failed: %s\n", evo_graph_error(g));
    exit(1);
  }
  return g;
}

int main(int argc, char **argv) {
  bench_opts o = bench_parse(argc, argv);
  evo_backend *be = bench_backend(&o);
  char title[128];
  snprintf(title, sizeof title,
           "population CNN forward (EvoJAX ConvNet, 11,274 params): vmap over params, images shared%s%s",
           evo_backend_is_host(be) ? "" : ", ", evo_backend_is_host(be) ? "" : bench_device_label(be));
  bench_header(&o, title);

  evo_graph *member = cnn_member(BATCH);
  int in_axes[7] = {0, 0, 0, 0, 0, 0, EVO_VMAP_NONE};
  evo_graph *g = evo_vmap(member, POP, in_axes, NULL);
  if (!g) bench_die("evo_vmap");
  evo_plan *p;
  if (evo_jit(g, be, &p) != EVO_STATUS_OK) bench_die("evo_jit");

  /* Parameters ~ U(-a, a), a = 1/sqrt(fan_in); images ~ U(0, 1) like scaled pixels. */
  const float fan_in[3] = {25.f, 200.f, 784.f};
  evo_tensor *in[7];
  for (int l = 0; l < 3; l++) {
    float a = 1.0f / sqrtf(fan_in[l]);
    evo_node wn = evo_graph_input(g, 2 * l), bn = evo_graph_input(g, 2 * l + 1);
    in[2 * l] = bench_tensor(be, evo_node_ndim(g, wn), evo_node_shape(g, wn), 300 + (uint64_t)l, -a, a);
    in[2 * l + 1] = bench_tensor(be, evo_node_ndim(g, bn), evo_node_shape(g, bn), 400 + (uint64_t)l, -a, a);
  }
  in[6] = bench_tensor(be, 4, (int64_t[]){BATCH, IMG, IMG, 1}, 9, 0.f, 1.f);
  evo_tensor *out[1];
  bench_outputs_for(be, g, out);

  double flop = (double)POP * BATCH * cnn_flop_per_image();
  int runs = o.runs > 0 ? o.runs : (o.quick ? 3 : 10);
  int warmup = o.warmup >= 0 ? o.warmup : (o.quick ? 1 : 2);
  bench_result r = bench_time_plan(p, in, out, warmup, runs, flop);
  bench_row(&o, "cnn_pop", "P=64 x 1024 img; conv8-conv16-d10", flop, r, p);

  for (int i = 0; i < 7; i++) evo_tensor_free(in[i]);
  evo_tensor_free(out[0]);
  evo_plan_free(p);
  evo_graph_free(g);
  evo_graph_free(member);
  evo_backend_free(be);
  return 0;
}
