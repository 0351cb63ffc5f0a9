/* The JAX/Flax MNIST tutorial in C: a CNN (conv 16@5x5 -> relu -> maxpool 2 -> dense 1024 -> relu -> dense 10),
   a loss_fn with softmax cross-entropy, and a train_step that is value_and_grad plus the optimizer's update. As in
   Flax, the parameters are a named tree kept apart from the model: `cnn` below only says how to use them, so
   swapping a layer for transfer learning is a matter of names (evo_ptree_load_matching). `evoc train` runs the
   same workflow from a config, with checkpoints and a run folder; this is what it does, on one page.

   Usage: seed_cnn [DATA_DIR [STEPS [OUT]]]   (defaults: Fashion-MNIST from the Debian package, 100 steps of batch
   128, the parameters saved to /tmp/seed_cnn.safetensors) */
#include <stdio.h>
#include <stdlib.h>
#include "evoc/backend.h"
#include "evoc/graph.h"
#include "evoc/jit.h"
#include "evoc/mnist.h"
#include "evoc/optim.h"
#include "evoc/ptree.h"
#include "evoc/transform.h"

enum { B = 128, EVAL = 1000 }; /* batch, test images evaluated */

static int fail(const char *what) {
  fprintf(stderr, "seed_cnn: %s: %s\n", what, evo_last_error());
  return 1;
}

/* The parameters, like Flax's params dict: names, shapes and initialisers, flattened in this order. */
static evo_ptree *cnn_params(void) {
  const evo_param_spec spec[] = {
      {"conv1.kernel", 4, {5, 5, 1, 16}, EVO_INIT_LECUN_NORMAL, 1}, {"conv1.bias", 1, {16}, EVO_INIT_ZEROS, 0},
      {"dense1.kernel", 2, {14 * 14 * 16, 1024}, EVO_INIT_LECUN_NORMAL, 1},
      {"dense1.bias", 1, {1024}, EVO_INIT_ZEROS, 0},
      {"dense2.kernel", 2, {1024, 10}, EVO_INIT_LECUN_NORMAL, 1}, {"dense2.bias", 1, {10}, EVO_INIT_ZEROS, 0}};
  evo_ptree *t = evo_ptree_new();
  for (size_t i = 0; t && i < sizeof spec / sizeof *spec; i++)
    if (evo_ptree_add(t, &spec[i])) return evo_ptree_free(t), NULL;
  return t;
}

/* Entry `name` of the flat parameter vector, in its shape. */
static evo_node param(evo_graph *g, const evo_ptree *t, evo_node flat, const char *name) {
  const int i = evo_ptree_find(t, name);
  const evo_param_spec *s = evo_ptree_spec(t, i);
  int64_t n = 1;
  for (int d = 0; d < s->ndim; d++) n *= s->shape[d];
  const int64_t off = evo_ptree_offset(t, i);
  return evo_reshape(g, evo_slice(g, flat, 0, off, off + n), s->ndim, s->shape);
}

/* The model: images [n, 28, 28, 1] -> logits [n, 10]. */
static evo_node cnn(evo_graph *g, const evo_ptree *t, evo_node p, evo_node x, int64_t n) {
  x = evo_conv2d(g, x, param(g, t, p, "conv1.kernel"), 1, 1, EVO_PAD_SAME);
  x = evo_relu(g, evo_add(g, x, param(g, t, p, "conv1.bias")));
  x = evo_max_pool2d(g, x, 2, 2, 2, 2, EVO_PAD_VALID);
  x = evo_reshape(g, x, 2, (int64_t[]){n, 14 * 14 * 16});
  x = evo_relu(g, evo_add(g, evo_matmul(g, x, param(g, t, p, "dense1.kernel")), param(g, t, p, "dense1.bias")));
  return evo_add(g, evo_matmul(g, x, param(g, t, p, "dense2.kernel")), param(g, t, p, "dense2.bias"));
}

/* A batch of n images from the split as f32 in [0, 1], rows idx0, idx0 + 1, ... (wrapping) of the order perm. */
static void batch(const evo_mnist_split *s, const int32_t *perm, int64_t idx0, int64_t n, float *x, int32_t *y) {
  for (int64_t b = 0; b < n; b++) {
    const int64_t i = perm ? perm[(idx0 + b) % s->n] : (idx0 + b) % s->n;
    for (int64_t p = 0; p < 28 * 28; p++) x[b * 784 + p] = (float)s->images[i * 784 + p] / 255.0f;
    y[b] = s->labels[i];
  }
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : NULL;
  const int steps = argc > 2 ? atoi(argv[2]) : 100;
  const char *out = argc > 3 ? argv[3] : "/tmp/seed_cnn.safetensors";
  evo_mnist_split train, test;
  if (evo_mnist_load(dir, EVO_MNIST_TRAIN, &train) || evo_mnist_load(dir, EVO_MNIST_TEST, &test))
    return fail("data");
  if (train.rows != 28 || train.cols != 28) return fprintf(stderr, "seed_cnn: expected 28x28 images\n"), 1;
  evo_ptree *tree = cnn_params();
  if (!tree) return fail("params");
  const int64_t D = evo_ptree_size(tree);

  /* loss_fn(params, images, labels) = mean softmax cross-entropy; train_step's value_and_grad w.r.t. params. */
  evo_graph *loss = evo_graph_new();
  evo_node p = evo_input(loss, "params", EVO_F32, 1, (int64_t[]){D});
  evo_node x = evo_input(loss, "images", EVO_F32, 4, (int64_t[]){B, 28, 28, 1});
  evo_node y = evo_input(loss, "labels", EVO_I32, 1, (int64_t[]){B});
  evo_output(loss, evo_mean(loss, evo_softmax_cross_entropy(loss, cnn(loss, tree, p, x, B), y), 0, NULL, false));
  evo_graph *vg = evo_value_and_grad(loss, 0, 1, (int[]){0});
  /* Evaluation: logits of EVAL test images. */
  evo_graph *ev = evo_graph_new();
  evo_node ep = evo_input(ev, "params", EVO_F32, 1, (int64_t[]){D});
  evo_node ex = evo_input(ev, "images", EVO_F32, 4, (int64_t[]){EVAL, 28, 28, 1});
  evo_output(ev, cnn(ev, tree, ep, ex, EVAL));
  if (!vg) return fail("value_and_grad");

  /* jit: both graphs compiled once for their shapes; a run allocates nothing. */
  evo_backend *be = evo_backend_cpu_new(NULL);
  evo_plan *step_plan, *eval_plan;
  if (evo_jit(vg, be, &step_plan) || evo_jit(ev, be, &eval_plan)) return fail("jit");

  float *params = malloc(sizeof(float) * (size_t)D), *grad = malloc(sizeof(float) * (size_t)D);
  float *xb = malloc(sizeof(float) * EVAL * 784), *logits = malloc(sizeof(float) * EVAL * 10), value;
  int32_t *yb = malloc(sizeof(int32_t) * EVAL), *perm = malloc(sizeof(int32_t) * (size_t)train.n);
  if (!params || !grad || !xb || !logits || !yb || !perm) return fail("malloc");
  if (evo_ptree_init(tree, evo_key_from_seed(0), params)) return fail("init");
  evo_optim_params op = evo_optim_default_params(EVO_OPTIM_ADAM); /* optax.adam(1e-3) */
  op.lr = 1e-3;
  evo_optim *opt;
  if (evo_optim_new(&op, D, &opt)) return fail("optimizer");
  uint32_t s = 1; /* a shuffled epoch order (any order will do for the example) */
  for (int64_t i = 0; i < train.n; i++) perm[i] = (int32_t)i;
  for (int64_t i = train.n - 1; i > 0; i--) {
    s = s * 1664525u + 1013904223u;
    const int64_t j = (int64_t)(s >> 8) % (i + 1);
    const int32_t t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }

  evo_tensor *tp = evo_tensor_new(be, EVO_F32, 1, (int64_t[]){D});
  evo_tensor *tx = evo_tensor_new(be, EVO_F32, 4, (int64_t[]){B, 28, 28, 1});
  evo_tensor *ty = evo_tensor_new(be, EVO_I32, 1, (int64_t[]){B});
  evo_tensor *tv = evo_tensor_new(be, EVO_F32, 0, NULL), *tg = evo_tensor_new(be, EVO_F32, 1, (int64_t[]){D});
  evo_tensor *ex_t = evo_tensor_new(be, EVO_F32, 4, (int64_t[]){EVAL, 28, 28, 1});
  evo_tensor *lg_t = evo_tensor_new(be, EVO_F32, 2, (int64_t[]){EVAL, 10});
  for (int t = 0; t < steps; t++) { /* train_step: value_and_grad, then apply the gradients */
    batch(&train, perm, (int64_t)t * B, B, xb, yb);
    if (evo_tensor_copy_from_host(tp, params, sizeof(float) * (size_t)D) ||
        evo_tensor_copy_from_host(tx, xb, sizeof(float) * B * 784) ||
        evo_tensor_copy_from_host(ty, yb, sizeof(int32_t) * B) ||
        evo_plan_run(step_plan, (evo_tensor *[]){tp, tx, ty}, (evo_tensor *[]){tv, tg}) ||
        evo_tensor_copy_to_host(tv, &value, sizeof value) ||
        evo_tensor_copy_to_host(tg, grad, sizeof(float) * (size_t)D) || evo_optim_step(opt, params, grad))
      return fail("train step");
    if (t % 20 == 0 || t == steps - 1) printf("step %4d  loss %.4f\n", t, value);
  }

  batch(&test, NULL, 0, EVAL, xb, yb);
  if (evo_tensor_copy_from_host(tp, params, sizeof(float) * (size_t)D) ||
      evo_tensor_copy_from_host(ex_t, xb, sizeof(float) * EVAL * 784) ||
      evo_plan_run(eval_plan, (evo_tensor *[]){tp, ex_t}, (evo_tensor *[]){lg_t}) ||
      evo_tensor_copy_to_host(lg_t, logits, sizeof(float) * EVAL * 10))
    return fail("evaluation");
  int correct = 0;
  for (int i = 0; i < EVAL; i++) {
    int best = 0;
    for (int k = 1; k < 10; k++) best = logits[i * 10 + k] > logits[i * 10 + best] ? k : best;
    correct += best == yb[i];
  }
  printf("test accuracy on %d images after %d steps: %.3f\n", EVAL, steps, (double)correct / EVAL);
  if (evo_ptree_save(tree, params, out)) return fail("save");
  printf("parameters saved to %s (named as Flax's params dict: conv1.kernel, ...)\n", out);

  evo_tensor *all[] = {tp, tx, ty, tv, tg, ex_t, lg_t};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) evo_tensor_free(all[i]);
  free(params), free(grad), free(xb), free(logits), free(yb), free(perm);
  evo_optim_free(opt);
  evo_plan_free(step_plan), evo_plan_free(eval_plan);
  evo_graph_free(vg), evo_graph_free(ev), evo_graph_free(loss);
  evo_backend_free(be);
  evo_ptree_free(tree);
  evo_mnist_split_free(&train), evo_mnist_split_free(&test);
  return 0;
}
