/* One gradient training step of the seed CNN (the JAX/Flax MNIST tutorial network) at batch 128:
 *     x [128, 28, 28, 1] -> conv 16@5x5 SAME (+bias) -> relu -> maxpool 2x2/2 -> flatten [128, 3136]
 *     -> dense 1024 (+bias) -> relu -> dense 10 (+bias) -> logits; loss = mean softmax cross-entropy
 * evo_value_and_grad over all six parameters (value + gradients), evo_jit, timed evo_plan_run (median of `runs`).
 * The optimizer update is EXCLUDED (forward + backward only), as in bench/jax_peers.py (jax.value_and_grad).
 *
 * FLOPs per call (multiply-add = 2 FLOPs; bias, relu, pooling, softmax and their gradients not counted):
 *     forward, per image:  conv = 2 * 28*28*16 * (5*5*1) = 627,200
 *                          d1   = 2 * 3136 * 1024        = 6,422,528
 *                          d2   = 2 * 1024 * 10          = 20,480
 *     backward: the weight gradient of every layer (same FLOPs as its forward) plus the input gradient of every
 *     layer but the first (the images are not differentiated): conv + d1 + d2 + d1 + d2.
 *     flop = B * (2*conv + 3*d1 + 3*d2) = 128 * 20,583,424 = 2.635 GFLOP per step.
 *
 * Usage: bench_train_step [--quick] [--csv] [--runs N] [--warmup N] [--threads N] [--device cpu|cuda]
 */
#include "bench_util.h"

enum { BATCH = 128, IMG = 28 };

static double step_flop(void) {
  double conv = 2.0 * 28 * 28 * 16 * (5 * 5 * 1);
  double d1 = 2.0 * 3136 * 1024;
  double d2 = 2.0 * 1024 * 10;
  return (double)BATCH * (2 * conv + 3 * d1 + 3 * d2);
}

/* Inputs: conv.kernel, conv.bias, dense1.kernel, dense1.bias, dense2.kernel, dense2.bias, x, labels (i32);
   output: mean cross-entropy (scalar). */
static evo_graph *seed_cnn_loss(int64_t batch) {
  evo_graph *g = evo_graph_new();
  evo_node cw = evo_input(g, "conv.kernel", EVO_F32, 4, (int64_t[]){5, 5, 1, 16});
  evo_node cb = evo_input(g, "conv.bias", EVO_F32, 1, (int64_t[]){16});
  evo_node w1 = evo_input(g, "dense1.kernel", EVO_F32, 2, (int64_t[]){3136, 1024});
  evo_node b1 = evo_input(g, "dense1.bias", EVO_F32, 1, (int64_t[]){1024});
  evo_node w2 = evo_input(g, "dense2.kernel", EVO_F32, 2, (int64_t[]){1024, 10});
  evo_node b2 = evo_input(g, "dense2.bias", EVO_F32, 1, (int64_t[]){10});
  evo_node x = evo_input(g, "x", EVO_F32, 4, (int64_t[]){batch, IMG, IMG, 1});
  evo_node y = evo_input(g, "labels", EVO_I32, 1, (int64_t[]){batch});
  evo_node h = evo_relu(g, evo_add(g, evo_conv2d(g, x, cw, 1, 1, EVO_PAD_SAME), cb));
  h = evo_max_pool2d(g, h, 2, 2, 2, 2, EVO_PAD_VALID);
  h = evo_flatten(g, h, 1);
  h = evo_relu(g, evo_add(g, evo_matmul(g, h, w1), b1));
  evo_node logits = evo_add(g, evo_matmul(g, h, w2), b2);
  evo_output(g, evo_mean(g, evo_softmax_cross_entropy(g, logits, y), 0, NULL, false));
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
  snprintf(title, sizeof title, "seed CNN training step (value_and_grad, optimizer update excluded), batch 128%s%s",
           evo_backend_is_host(be) ? "" : ", ", evo_backend_is_host(be) ? "" : bench_device_label(be));
  bench_header(&o, title);

  evo_graph *f = seed_cnn_loss(BATCH);
  int wrt[6] = {0, 1, 2, 3, 4, 5};
  evo_graph *g = evo_value_and_grad(f, 0, 6, wrt);
  if (!g) bench_die("evo_value_and_grad");
  evo_plan *p;
  if (evo_jit(g, be, &p) != EVO_STATUS_OK) bench_die("evo_jit");

  const float fan_in[3] = {25.f, 3136.f, 1024.f};
  evo_tensor *in[8];
  for (int l = 0; l < 3; l++) {
    float a = 1.0f / sqrtf(fan_in[l]);
    evo_node wn = evo_graph_input(g, 2 * l), bn = evo_graph_input(g, 2 * l + 1);
    in[2 * l] = bench_tensor(be, evo_node_ndim(g, wn), evo_node_shape(g, wn), 500 + (uint64_t)l, -a, a);
    in[2 * l + 1] = bench_tensor(be, evo_node_ndim(g, bn), evo_node_shape(g, bn), 600 + (uint64_t)l, -a, a);
  }
  in[6] = bench_tensor(be, 4, (int64_t[]){BATCH, IMG, IMG, 1}, 11, 0.f, 1.f);
  int32_t labels[BATCH];
  for (int i = 0; i < BATCH; i++) labels[i] = (i * 7 + 3) % 10;
  in[7] = evo_tensor_from_host(be, EVO_I32, 1, (int64_t[]){BATCH}, labels);
  if (!in[7]) bench_die("evo_tensor_from_host (labels)");
  evo_tensor *out[7];
  bench_outputs_for(be, g, out);

  double flop = step_flop();
  int runs = o.runs > 0 ? o.runs : (o.quick ? 5 : 30);
  int warmup = o.warmup >= 0 ? o.warmup : (o.quick ? 1 : 3);
  bench_result r = bench_time_plan(p, in, out, warmup, runs, flop);
  bench_row(&o, "train_step", "B=128; conv16-d1024-d10; fwd+grad", flop, r, p);
  float loss = NAN;
  if (evo_tensor_copy_to_host(out[0], &loss, sizeof loss) != EVO_STATUS_OK) bench_die("evo_tensor_copy_to_host");
  if (!o.csv) printf("loss %.5f (sanity: ~log(10) = 2.303 for a fresh net)\n", loss);

  for (int i = 0; i < 8; i++) evo_tensor_free(in[i]);
  for (int i = 0; i < 7; i++) evo_tensor_free(out[i]);
  evo_plan_free(p);
  evo_graph_free(g);
  evo_graph_free(f);
  evo_backend_free(be);
  return 0;
}
