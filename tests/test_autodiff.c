/* grad / value_and_grad as a transform: gradients of composite functions (MLP, softmax cross-entropy, a small CNN,
   broadcasting, slicing, masks) against central finite differences of the f32 forward graph, a few hand-derived
   gradients, second derivatives (grad of a grad graph), argument errors, and composition with vmap. The per-op
   harness (test_ops.c) checks each rule in double precision; this suite checks the transform. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/backend.h"
#include "evoc/graph.h"
#include "evoc/jit.h"
#include "evoc/transform.h"
#include "graph_impl.h" /* node ops, for the structure of gradient graphs */

#define NONE EVO_VMAP_NONE
#define MAXIO 16

static evo_backend *be;
static void setup(void) { be = evo_backend_cpu_new(NULL); }
static void teardown(void) { evo_backend_free(be); }
TestSuite(autodiff, .init = setup, .fini = teardown);

/* ---- helpers ---- */

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Random host data for a graph input: f32 in [-1, 1), i32 in [0, imax). */
static void *rand_host(evo_dtype t, int64_t n, int imax, uint64_t *st) {
  void *p = malloc((size_t)(n ? n : 1) * evo_dtype_size(t));
  for (int64_t k = 0; k < n; k++) {
    uint64_t r = rng_next(st);
    if (t == EVO_F32)
      ((float *)p)[k] = (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    else
      ((int32_t *)p)[k] = (int32_t)(r % (uint64_t)imax);
  }
  return p;
}

static size_t node_bytes(const evo_graph *g, evo_node x) {
  return (size_t)evo_node_numel(g, x) * evo_dtype_size(evo_node_dtype(g, x));
}

/* A compiled graph with bound tensors, run many times from host data (finite differences need hundreds of runs). */
typedef struct {
  const evo_graph *g;
  evo_plan *plan;
  int ni, no;
  evo_tensor *in[MAXIO], *out[MAXIO];
} runner;

static void runner_init(runner *r, const evo_graph *g) {
  cr_assert_eq(evo_graph_status(g), EVO_STATUS_OK, "trace: %s", evo_graph_error(g));
  r->g = g;
  r->ni = evo_graph_n_inputs(g);
  r->no = evo_graph_n_outputs(g);
  cr_assert(r->ni <= MAXIO && r->no <= MAXIO);
  cr_assert_eq(evo_jit(g, be, &r->plan), EVO_STATUS_OK, "jit: %s", evo_last_error());
  for (int i = 0; i < r->ni; i++) {
    evo_node x = evo_graph_input(g, i);
    r->in[i] = evo_tensor_new(be, evo_node_dtype(g, x), evo_node_ndim(g, x), evo_node_shape(g, x));
    cr_assert_not_null(r->in[i]);
  }
  for (int j = 0; j < r->no; j++) {
    evo_node y = evo_graph_output(g, j);
    r->out[j] = evo_tensor_new(be, evo_node_dtype(g, y), evo_node_ndim(g, y), evo_node_shape(g, y));
    cr_assert_not_null(r->out[j]);
  }
}

static void runner_free(runner *r) {
  for (int i = 0; i < r->ni; i++) evo_tensor_free(r->in[i]);
  for (int j = 0; j < r->no; j++) evo_tensor_free(r->out[j]);
  evo_plan_free(r->plan);
}

/* Runs on host inputs; output j is copied to out[j] when out[j] is not NULL. */
static void runner_run(runner *r, void *const *in, void **out) {
  for (int i = 0; i < r->ni; i++)
    cr_assert_eq(evo_tensor_copy_from_host(r->in[i], in[i], node_bytes(r->g, evo_graph_input(r->g, i))),
                 EVO_STATUS_OK);
  cr_assert_eq(evo_plan_run(r->plan, r->in, r->out), EVO_STATUS_OK, "run: %s", evo_last_error());
  for (int j = 0; j < r->no; j++)
    if (out[j])
      cr_assert_eq(evo_tensor_copy_to_host(r->out[j], out[j], node_bytes(r->g, evo_graph_output(r->g, j))),
                   EVO_STATUS_OK);
}

/* Evaluates g once; returns malloc'd host outputs (free with free_outputs). */
static void **eval_host(const evo_graph *g, void *const *in) {
  runner r;
  runner_init(&r, g);
  void **out = calloc(MAXIO, sizeof *out);
  for (int j = 0; j < r.no; j++) out[j] = malloc(node_bytes(g, evo_graph_output(g, j)) + 1);
  runner_run(&r, in, out);
  runner_free(&r);
  return out;
}

static void free_outputs(void **out) {
  for (int j = 0; j < MAXIO; j++) free(out[j]);
  free(out);
}

static float scalar_out(runner *r, void *const *in, int out_index) {
  void *out[MAXIO] = {0};
  float v;
  out[out_index] = &v;
  runner_run(r, in, out);
  return v;
}

typedef struct {
  float step; /* central difference step (default 1e-2) */
  float rtol; /* relative tolerance (default 2e-2) */
  float atol; /* absolute tolerance (default 2e-3) */
  const int *imax; /* i32 input ranges (NULL: 4) */
} fd_opts;

/* Checks grad(g)[out_index] w.r.t. wrt[] against central finite differences of g on seeded random inputs, and that
   value_and_grad gives the same value and gradients. Inputs can be given (in[i] non-NULL) or are random. */
static void check_grad_with(const char *what, const evo_graph *g, int out_index, int n_wrt, const int *wrt,
                            void *const *given, fd_opts o, uint64_t seed) {
  if (o.step == 0) o.step = 1e-2f;
  if (o.rtol == 0) o.rtol = 2e-2f;
  if (o.atol == 0) o.atol = 2e-3f;
  cr_assert_eq(evo_graph_status(g), EVO_STATUS_OK, "%s: trace: %s", what, evo_graph_error(g));
  int n_nodes = evo_graph_n_nodes(g);
  evo_graph *gg = evo_grad(g, out_index, n_wrt, wrt);
  cr_assert_not_null(gg, "%s: grad: %s", what, evo_last_error());
  cr_assert_eq(evo_graph_n_nodes(g), n_nodes, "%s: grad changed its input graph", what);
  cr_assert_eq(evo_graph_n_inputs(gg), evo_graph_n_inputs(g));
  cr_assert_eq(evo_graph_n_outputs(gg), n_wrt);

  int ni = evo_graph_n_inputs(g);
  void *in[MAXIO];
  uint64_t st = seed;
  for (int i = 0; i < ni; i++) {
    evo_node x = evo_graph_input(g, i);
    in[i] = rand_host(evo_node_dtype(g, x), evo_node_numel(g, x), o.imax ? o.imax[i] : 4, &st);
    if (given && given[i]) memcpy(in[i], given[i], node_bytes(g, x));
  }
  void **grads = eval_host(gg, in);

  runner fwd;
  runner_init(&fwd, g);
  float f0 = scalar_out(&fwd, in, out_index);
  for (int k = 0; k < n_wrt; k++) {
    evo_node x = evo_graph_input(g, wrt[k]);
    cr_assert_eq(evo_node_ndim(gg, evo_graph_output(gg, k)), evo_node_ndim(g, x), "%s: gradient %d rank", what, k);
    cr_assert_arr_eq(evo_node_shape(gg, evo_graph_output(gg, k)), evo_node_shape(g, x),
                     sizeof(int64_t) * (size_t)evo_node_ndim(g, x), "%s: gradient %d shape", what, k);
    float *xv = in[wrt[k]];
    const float *gk = grads[k];
    for (int64_t e = 0; e < evo_node_numel(g, x); e++) {
      float keep = xv[e];
      xv[e] = keep + o.step;
      float fp = scalar_out(&fwd, in, out_index);
      xv[e] = keep - o.step;
      float fm = scalar_out(&fwd, in, out_index);
      xv[e] = keep;
      float fd = (fp - fm) / (2.f * o.step);
      float tol = o.rtol * fmaxf(fabsf(fd), fabsf(gk[e])) + o.atol * (1.f + fabsf(f0));
      cr_assert(fabsf(fd - gk[e]) <= tol, "%s (seed %llu): d out%d / d in%d[%lld]: grad %.6g, finite difference %.6g",
                what, (unsigned long long)seed, out_index, wrt[k], (long long)e, gk[e], fd);
    }
  }
  runner_free(&fwd);

  /* value_and_grad: the value first, then the same gradients. */
  evo_graph *vg = evo_value_and_grad(g, out_index, n_wrt, wrt);
  cr_assert_not_null(vg, "%s: value_and_grad: %s", what, evo_last_error());
  cr_assert_eq(evo_graph_n_outputs(vg), n_wrt + 1);
  void **vout = eval_host(vg, in);
  cr_assert_float_eq(*(float *)vout[0], f0, 1e-5f * (1.f + fabsf(f0)), "%s: value %g vs %g", what,
                     *(float *)vout[0], f0);
  for (int k = 0; k < n_wrt; k++)
    cr_assert_arr_eq(vout[k + 1], grads[k], node_bytes(g, evo_graph_input(g, wrt[k])), "%s: gradient %d", what, k);
  free_outputs(vout);
  evo_graph_free(vg);

  free_outputs(grads);
  for (int i = 0; i < ni; i++) free(in[i]);
  evo_graph_free(gg);
}

static void check_grad(const char *what, const evo_graph *g, int n_wrt, const int *wrt, uint64_t seed) {
  check_grad_with(what, g, 0, n_wrt, wrt, NULL, (fd_opts){0}, seed);
}

static evo_node in_f32(evo_graph *g, const char *name, int nd, const int64_t *s) {
  return evo_input(g, name, EVO_F32, nd, s);
}

static evo_node constant_f32(evo_graph *g, int nd, const int64_t *s, uint64_t seed) {
  uint64_t st = seed;
  int64_t n = 1;
  for (int d = 0; d < nd; d++) n *= s[d];
  float *v = rand_host(EVO_F32, n, 0, &st);
  evo_node c = evo_constant(g, EVO_F32, nd, s, v);
  free(v);
  return c;
}

/* ---- finite-difference checks of composite functions ---- */

Test(autodiff, mlp_tanh_relu_loss) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 2, (int64_t[]){4, 3});
  evo_node w1 = in_f32(g, "w1", 2, (int64_t[]){3, 6}), b1 = in_f32(g, "b1", 1, (int64_t[]){6});
  evo_node w2 = in_f32(g, "w2", 2, (int64_t[]){6, 2}), b2 = in_f32(g, "b2", 1, (int64_t[]){2});
  evo_node t = in_f32(g, "t", 2, (int64_t[]){4, 2});
  evo_node h = evo_tanh(g, evo_add(g, evo_matmul(g, x, w1), b1));
  evo_node o = evo_relu(g, evo_add(g, evo_matmul(g, h, w2), b2));
  evo_output(g, evo_mean(g, evo_square(g, evo_sub(g, o, t)), 0, NULL, false));
  check_grad("mlp", g, 6, (int[]){1, 2, 3, 4, 0, 5}, 11);
  evo_graph_free(g);
}

Test(autodiff, mlp_batched_loop_dims_and_vector_matmul) {
  /* x [2, 3, 4] against shared w [4, 5] (loop dims on one side), and a 1-D vector times a matrix */
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 3, (int64_t[]){2, 3, 4}), w = in_f32(g, "w", 2, (int64_t[]){4, 5});
  evo_node v = in_f32(g, "v", 1, (int64_t[]){5}), u = in_f32(g, "u", 3, (int64_t[]){2, 5, 1});
  evo_node h = evo_sigmoid(g, evo_matmul(g, x, w));                    /* [2,3,5] */
  evo_node a = evo_matmul(g, h, v);                                    /* [2,3] */
  evo_node b = evo_matmul(g, h, u);                                    /* [2,3,1] */
  evo_node c = evo_matmul(g, v, evo_transpose(g, h, (int[]){0, 2, 1})); /* [2,3] */
  evo_node s = evo_add(g, evo_sum(g, evo_mul(g, a, c), 0, NULL, false), evo_sum(g, evo_sin(g, b), 0, NULL, false));
  evo_output(g, s);
  check_grad("batched matmul", g, 4, (int[]){0, 1, 2, 3}, 12);
  evo_graph_free(g);
}

Test(autodiff, softmax_cross_entropy) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 2, (int64_t[]){5, 4});
  evo_node w = in_f32(g, "w", 2, (int64_t[]){4, 3}), b = in_f32(g, "b", 1, (int64_t[]){3});
  evo_node y = evo_input(g, "labels", EVO_I32, 1, (int64_t[]){5});
  evo_node logits = evo_mul_scalar(g, evo_add(g, evo_matmul(g, x, w), b), 3.f);
  evo_output(g, evo_mean(g, evo_softmax_cross_entropy(g, logits, y), 0, NULL, false));
  check_grad_with("softmax xent", g, 0, 3, (int[]){1, 2, 0}, NULL, (fd_opts){.imax = (int[]){0, 0, 0, 3}}, 13);
  evo_graph_free(g);
}

Test(autodiff, softmax_logsumexp_and_reductions) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 3, (int64_t[]){2, 3, 4});
  evo_node c = constant_f32(g, 3, (int64_t[]){2, 3, 4}, 99);
  evo_node sm = evo_softmax(g, x, 1), lsm = evo_log_softmax(g, x, -1);
  evo_node lse = evo_logsumexp(g, x, 2, (int[]){0, 2}, false); /* [3] */
  evo_node mx = evo_max(g, x, 1, (int[]){1}, true);            /* [2,1,4] */
  evo_node mn = evo_min(g, x, 0, NULL, false);                 /* [] */
  evo_node s = evo_sum(g, evo_mul(g, evo_add(g, sm, lsm), c), 0, NULL, false);
  s = evo_add(g, s, evo_sum(g, evo_square(g, lse), 0, NULL, false));
  s = evo_add(g, s, evo_sum(g, evo_mul(g, mx, evo_slice(g, c, 1, 0, 1)), 0, NULL, false));
  s = evo_add(g, s, evo_mul_scalar(g, mn, 2.f));
  s = evo_add(g, s, evo_sum(g, evo_mean(g, evo_exp(g, x), 1, (int[]){-1}, false), 0, NULL, false));
  evo_output(g, s);
  check_grad("softmax/logsumexp/max/min", g, 1, (int[]){0}, 14);
  evo_graph_free(g);
}

Test(autodiff, conv_relu_maxpool_dense) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 4, (int64_t[]){2, 6, 6, 2});
  evo_node w = in_f32(g, "w", 4, (int64_t[]){3, 3, 2, 4}), bias = in_f32(g, "bias", 1, (int64_t[]){4});
  evo_node d = in_f32(g, "d", 2, (int64_t[]){36, 3});
  evo_node t = in_f32(g, "t", 2, (int64_t[]){2, 3});
  evo_node h = evo_relu(g, evo_add(g, evo_conv2d(g, x, w, 1, 1, EVO_PAD_SAME), bias)); /* [2,6,6,4] */
  evo_node p = evo_max_pool2d(g, h, 2, 2, 2, 2, EVO_PAD_VALID);                      /* [2,3,3,4] */
  evo_node o = evo_matmul(g, evo_flatten(g, p, 1), d);                               /* [2,3] */
  evo_output(g, evo_sum(g, evo_square(g, evo_sub(g, o, t)), 0, NULL, false));
  check_grad_with("cnn", g, 0, 4, (int[]){1, 2, 3, 0}, NULL, (fd_opts){.step = 2e-3f, .atol = 3e-3f}, 15);
  evo_graph_free(g);
}

Test(autodiff, conv_strided_valid_avgpool_and_per_image_kernels) {
  /* stride 2 VALID conv, SAME average pooling, kernels with their own loop dim (one kernel per image: the kernel
     gradient keeps it) and a shared kernel (its gradient sums over the images) */
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 4, (int64_t[]){2, 7, 6, 3});
  evo_node w = in_f32(g, "w", 5, (int64_t[]){2, 3, 2, 3, 2});
  evo_node w2 = in_f32(g, "w2", 4, (int64_t[]){2, 2, 3, 2});
  evo_node y = evo_conv2d(g, x, w, 2, 2, EVO_PAD_VALID);     /* [2,3,3,2] */
  evo_node z = evo_conv2d(g, x, w2, 1, 2, EVO_PAD_SAME);     /* [2,7,3,2] */
  evo_node p = evo_avg_pool2d(g, evo_tanh(g, z), 3, 2, 2, 2, EVO_PAD_SAME);
  evo_node s = evo_add(g, evo_sum(g, evo_square(g, y), 0, NULL, false), evo_sum(g, evo_exp(g, p), 0, NULL, false));
  evo_output(g, s);
  check_grad("strided conv + avg pool", g, 3, (int[]){0, 1, 2}, 16);
  evo_graph_free(g);
}

Test(autodiff, broadcasting_arithmetic) {
  evo_graph *g = evo_graph_new();
  evo_node a = in_f32(g, "a", 3, (int64_t[]){3, 1, 4}), b = in_f32(g, "b", 2, (int64_t[]){2, 1});
  evo_node c = in_f32(g, "c", 0, NULL), d = in_f32(g, "d", 1, (int64_t[]){4});
  evo_node pos = evo_add_scalar(g, evo_square(g, d), 0.5f); /* > 0: a valid base for pow and log */
  evo_node e1 = evo_mul(g, evo_add(g, a, b), c);            /* [3,2,4] */
  evo_node e2 = evo_div(g, evo_sub(g, b, a), evo_add_scalar(g, pos, 1.f));
  evo_node e3 = evo_pow(g, pos, evo_add(g, b, c));          /* [2,4] */
  evo_node e4 = evo_sqrt(g, evo_add(g, pos, evo_square(g, a)));
  evo_node e5 = evo_broadcast_to(g, evo_log(g, pos), 3, (int64_t[]){3, 2, 4});
  evo_node e6 = evo_mul(g, evo_neg(g, evo_abs(g, a)), evo_cos(g, b));
  evo_node s = evo_sum(g, e1, 0, NULL, false);
  s = evo_add(g, s, evo_sum(g, evo_sin(g, e2), 0, NULL, false));
  s = evo_add(g, s, evo_mean(g, e3, 0, NULL, false));
  s = evo_add(g, s, evo_sum(g, evo_mul(g, e4, e5), 0, NULL, false));
  s = evo_add(g, s, evo_sum(g, e6, 0, NULL, false));
  evo_output(g, s);
  check_grad("broadcasting", g, 4, (int[]){0, 1, 2, 3}, 23); /* seed 17 puts a[0] within the step of abs's kink */
  evo_graph_free(g);
}

Test(autodiff, slices_concat_pad_transpose_reshape) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 2, (int64_t[]){3, 4}), y = in_f32(g, "y", 2, (int64_t[]){3, 2});
  evo_node a = evo_slice(g, x, 1, 0, 2), b = evo_square(g, evo_slice(g, x, -1, 1, 4));
  evo_node cat = evo_concat(g, 3, (evo_node[]){a, y, b}, 1);                     /* [3,7] */
  evo_node pd = evo_pad(g, evo_tanh(g, cat), 0, 1, 2);                            /* [6,7] */
  evo_node tr = evo_transpose(g, pd, (int[]){1, 0});                              /* [7,6] */
  evo_node rs = evo_reshape(g, tr, 3, (int64_t[]){3, -1, 7});                     /* [3,2,7] */
  evo_node sq = evo_squeeze(g, evo_expand_dims(g, rs, 1), 1);
  evo_node c = constant_f32(g, 3, (int64_t[]){3, 2, 7}, 5);
  evo_node s = evo_sum(g, evo_mul(g, evo_sin(g, sq), c), 0, NULL, false);
  evo_output(g, evo_add(g, s, evo_sum(g, evo_concat(g, 2, (evo_node[]){x, x}, 0), 0, NULL, false)));
  check_grad("slice/concat/pad/transpose/reshape", g, 2, (int[]){0, 1}, 18);
  evo_graph_free(g);
}

Test(autodiff, where_clip_maximum_minimum) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 2, (int64_t[]){4, 5}), y = in_f32(g, "y", 1, (int64_t[]){5});
  evo_node w = evo_where(g, evo_gt(g, x, y), evo_mul(g, x, y), evo_exp(g, y));
  evo_node c = evo_clip(g, evo_mul_scalar(g, x, 2.f), -0.7f, 0.9f);
  evo_node m = evo_maximum(g, x, evo_sin(g, y)), n = evo_minimum(g, evo_cos(g, x), y);
  evo_node s = evo_sum(g, evo_mul(g, evo_add(g, w, c), evo_sub(g, m, n)), 0, NULL, false);
  s = evo_add(g, s, evo_sum(g, evo_cast(g, evo_square(g, x), EVO_F32), 0, NULL, false));
  /* non-differentiable branches on the path: gradient flows around them */
  evo_node am = evo_cast(g, evo_argmax(g, x, 1, false), EVO_F32); /* [4] */
  s = evo_add(g, s, evo_sum(g, evo_mul(g, am, evo_squeeze(g, evo_slice(g, x, 1, 0, 1), 1)), 0, NULL, false));
  evo_output(g, s);
  /* a small step keeps the difference from straddling a kink of where/clip/max/min on these seeded inputs */
  check_grad_with("where/clip/max/min", g, 0, 2, (int[]){0, 1}, NULL, (fd_opts){.step = 1e-3f, .atol = 3e-3f}, 19);
  evo_graph_free(g);
}

Test(autodiff, take_along_axis_with_broadcast) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 3, (int64_t[]){1, 3, 5});                       /* dim 0 broadcasts against idx */
  evo_node idx = evo_input(g, "idx", EVO_I32, 3, (int64_t[]){2, 3, 4});
  evo_node t = evo_take_along_axis(g, evo_tanh(g, x), idx, 2);                /* [2,3,4], repeated indices */
  evo_node c = constant_f32(g, 3, (int64_t[]){2, 3, 4}, 7);
  evo_output(g, evo_sum(g, evo_mul(g, t, c), 0, NULL, false));
  check_grad_with("take_along_axis", g, 0, 1, (int[]){0}, NULL, (fd_opts){.imax = (int[]){0, 5}}, 20);
  evo_graph_free(g);
}

/* ---- hand-derived gradients ---- */

/* A flat vector read as layers (slices with gaps, reshaped, each through its own function): the slices' adjoints
   are joined into one pad of a concat (autodiff_join.c; nested concats for more pieces than one takes), so the
   gradient graph adds nothing of the vector's size; slices that overlap are added instead. All against finite
   differences. */
static evo_graph *flat_layers(int n_slices, const int64_t (*r)[2], int64_t d) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "flat", 1, (int64_t[]){d}), loss = EVO_NODE_INVALID;
  for (int i = 0; i < n_slices; i++) {
    evo_node s = evo_slice(g, x, 0, r[i][0], r[i][1]), f;
    const int64_t len = r[i][1] - r[i][0];
    switch (i % 3) {
    case 0: f = evo_sin(g, s); break;
    case 1: f = evo_square(g, evo_reshape(g, s, 2, (int64_t[]){len / 2, 2})); break;
    default: f = evo_mul(g, evo_tanh(g, s), constant_f32(g, 1, (int64_t[]){len}, 7 + (uint64_t)i)); break;
    }
    evo_node t = evo_sum(g, f, 0, NULL, false);
    loss = i ? evo_add(g, loss, t) : t;
  }
  evo_output(g, loss);
  return g;
}

static int full_size_adds(const evo_graph *gg, int64_t d) {
  int n = 0;
  for (int i = 0; i < evo_graph_n_nodes(gg); i++)
    n += gg->nodes[i].op == EVO_OP_ADD && evo_node_numel(gg, i) == d;
  return n;
}

Test(autodiff, flat_vector_slices_join_into_one_pad) {
  const int64_t gaps[][2] = {{0, 6}, {8, 20}, {20, 26}, {30, 34}, {34, 40}, {44, 48}};
  evo_graph *g = flat_layers(6, gaps, 50);
  check_grad("disjoint slices", g, 1, (int[]){0}, 31);
  evo_graph *gg = evo_grad(g, 0, 1, (int[]){0});
  cr_assert_not_null(gg, "%s", evo_last_error());
  cr_assert_eq(full_size_adds(gg, 50), 0, "the slices' adjoints were added, not joined");
  evo_graph_free(gg), evo_graph_free(g);
  const int64_t overlap[][2] = {{0, 6}, {4, 12}, {20, 26}, {30, 34}};
  g = flat_layers(4, overlap, 40);
  check_grad("overlapping slices", g, 1, (int[]){0}, 32);
  evo_graph_free(g);
  int64_t many[12][2];
  for (int i = 0; i < 12; i++) many[i][0] = 6 * i, many[i][1] = 6 * i + 4; /* 12 pieces and 11 gaps */
  g = flat_layers(12, many, 72);
  check_grad("more pieces than one concat takes", g, 1, (int[]){0}, 33);
  gg = evo_grad(g, 0, 1, (int[]){0});
  cr_assert_not_null(gg, "%s", evo_last_error());
  cr_assert_eq(full_size_adds(gg, 72), 0, "23 pieces: added, not joined");
  evo_graph_free(gg), evo_graph_free(g);
}

static void grad_outputs(evo_graph *g, int n_wrt, const int *wrt, void *const *in, float **out) {
  evo_graph *gg = evo_grad(g, 0, n_wrt, wrt);
  cr_assert_not_null(gg, "grad: %s", evo_last_error());
  void **o = eval_host(gg, in);
  for (int k = 0; k < n_wrt; k++) memcpy(out[k], o[k], node_bytes(gg, evo_graph_output(gg, k)));
  free_outputs(o);
  evo_graph_free(gg);
}

Test(autodiff, analytic_square_and_matmul) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 2, (int64_t[]){2, 3}), w = in_f32(g, "w", 2, (int64_t[]){3, 2});
  evo_node xw = evo_sum(g, evo_matmul(g, x, w), 0, NULL, false);
  evo_output(g, evo_add(g, xw, evo_sum(g, evo_square(g, x), 0, NULL, false)));
  float xv[6] = {1, 2, 3, -1, 0.5f, 4}, wv[6] = {1, -2, 0.25f, 3, 2, 2};
  float gx[6], gw[6];
  grad_outputs(g, 2, (int[]){0, 1}, (void *[]){xv, wv}, (float *[]){gx, gw});
  /* d/dx[i,k] = sum_j w[k,j] + 2 x[i,k]; d/dw[k,j] = sum_i x[i,k] */
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 3; k++)
      cr_assert_float_eq(gx[i * 3 + k], wv[k * 2] + wv[k * 2 + 1] + 2 * xv[i * 3 + k], 1e-6f);
  for (int k = 0; k < 3; k++)
    for (int j = 0; j < 2; j++) cr_assert_float_eq(gw[k * 2 + j], xv[k] + xv[3 + k], 1e-6f);
  evo_graph_free(g);
}

Test(autodiff, analytic_ties_stop_gradient_and_no_path) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 1, (int64_t[]){4}), a = in_f32(g, "a", 0, NULL), b = in_f32(g, "b", 0, NULL);
  evo_node unused = in_f32(g, "unused", 2, (int64_t[]){2, 2});
  evo_node s = evo_max(g, x, 0, NULL, false);                  /* ties split evenly */
  s = evo_add(g, s, evo_maximum(g, a, b));                     /* ties go to a */
  s = evo_add(g, s, evo_sum(g, evo_mul(g, x, evo_stop_gradient(g, x)), 0, NULL, false)); /* d = x, not 2x */
  evo_output(g, s);
  (void)unused;
  float xv[4] = {1, 3, 3, 2}, av = 0.5f, bv = 0.5f, uv[4] = {0};
  float gx[4], ga, gb, gu[4] = {1, 1, 1, 1};
  grad_outputs(g, 4, (int[]){0, 1, 2, 3}, (void *[]){xv, &av, &bv, uv}, (float *[]){gx, &ga, &gb, gu});
  float want[4] = {1, 3.5f, 3.5f, 2};
  for (int k = 0; k < 4; k++) cr_assert_float_eq(gx[k], want[k], 1e-6f, "gx[%d] = %g", k, gx[k]);
  cr_assert_float_eq(ga, 1.f, 1e-6f);
  cr_assert_float_eq(gb, 0.f, 1e-6f);
  for (int k = 0; k < 4; k++) cr_assert_float_eq(gu[k], 0.f, 0.f, "no path: zero gradient");
  evo_graph_free(g);
}

Test(autodiff, analytic_relu_sigmoid_log) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 1, (int64_t[]){3});
  evo_node s = evo_sum(g, evo_add(g, evo_relu(g, x), evo_add(g, evo_sigmoid(g, x), evo_log(g, evo_abs(g, x)))), 0,
                       NULL, false);
  evo_output(g, s);
  float xv[3] = {-2.f, 0.5f, 3.f}, gx[3];
  grad_outputs(g, 1, (int[]){0}, (void *[]){xv}, (float *[]){gx});
  for (int k = 0; k < 3; k++) {
    float sg = 1.f / (1.f + expf(-xv[k]));
    float want = (xv[k] > 0 ? 1.f : 0.f) + sg * (1 - sg) + 1.f / xv[k];
    cr_assert_float_eq(gx[k], want, 1e-5f, "gx[%d] = %g, want %g", k, gx[k], want);
  }
  evo_graph_free(g);
}

/* ---- grad of a grad graph (second derivatives) ---- */

Test(autodiff, grad_of_grad_hessian_vector_product) {
  /* f(x, w) = sum(avg_pool(tanh(x * w))^2) + sum(take(x, idx)^3); h = sum(grad_x f * v). The second pass
     differentiates the backward ops (avg_pool2d_grad, scatter_add, where, ...). */
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 3, (int64_t[]){4, 4, 2}), w = in_f32(g, "w", 1, (int64_t[]){2});
  evo_node idx = evo_input(g, "idx", EVO_I32, 3, (int64_t[]){4, 4, 3});
  evo_node p = evo_avg_pool2d(g, evo_tanh(g, evo_mul(g, x, w)), 2, 2, 2, 2, EVO_PAD_VALID);
  evo_node t = evo_take_along_axis(g, x, idx, 2);
  evo_node f = evo_add(g, evo_sum(g, evo_square(g, p), 0, NULL, false),
                       evo_sum(g, evo_mul(g, t, evo_square(g, t)), 0, NULL, false));
  evo_output(g, f);
  evo_graph *gg = evo_value_and_grad(g, 0, 1, (int[]){0});
  cr_assert_not_null(gg, "%s", evo_last_error());
  evo_node v = constant_f32(gg, 3, (int64_t[]){4, 4, 2}, 3);
  evo_output(gg, evo_sum(gg, evo_mul(gg, evo_graph_output(gg, 1), v), 0, NULL, false));
  check_grad_with("hvp", gg, 2, 2, (int[]){0, 1}, NULL, (fd_opts){.imax = (int[]){0, 0, 2}}, 21);
  evo_graph_free(gg);
  evo_graph_free(g);
}

static void check_vmap_of_grad(const char *what, const evo_graph *gg, int64_t B, const int *in_axes, uint64_t seed);

/* Adds to a gradient graph (outputs: gradients of inputs wrt[0..n)) the output sum_k sum(out_k * V_k) with seeded
   constants V_k: a Hessian-vector product once differentiated again. Returns its output index. */
static int add_hvp_output(evo_graph *gg, int first_grad, int n, uint64_t seed) {
  evo_node h = EVO_NODE_INVALID;
  for (int k = 0; k < n; k++) {
    evo_node gk = evo_graph_output(gg, first_grad + k);
    evo_node v = constant_f32(gg, evo_node_ndim(gg, gk), evo_node_shape(gg, gk), seed + (uint64_t)k);
    evo_node t = evo_sum(gg, evo_mul(gg, gk, v), 0, NULL, false);
    h = k ? evo_add(gg, h, t) : t;
  }
  evo_output(gg, h);
  return evo_graph_n_outputs(gg) - 1;
}

/* Second derivatives through conv2d (the rules of conv2d_grad_input and conv2d_grad_kernel): the HVP of
   f(x, w) = sum(tanh(conv2d(x, w))) in x and w against finite differences, over strides, SAME and VALID padding,
   a minibatch against a shared kernel, per-member kernels and loop dims that broadcast ([3] images x [2, 1]
   kernels); and vmap of the HVP graph equals a loop over examples. */
Test(autodiff, grad_of_grad_through_conv2d) {
  static const struct {
    int xn, wn, sh, sw;
    int64_t xs[5], ws[6];
    evo_padding pad;
  } cases[] = {
      {3, 4, 1, 1, {5, 5, 2}, {3, 3, 2, 2}, EVO_PAD_VALID},
      {4, 4, 2, 2, {2, 5, 6, 2}, {3, 2, 2, 3}, EVO_PAD_SAME},
      {4, 5, 2, 1, {2, 4, 5, 1}, {2, 2, 2, 1, 2}, EVO_PAD_SAME},
      {4, 6, 1, 1, {3, 4, 4, 2}, {2, 1, 3, 3, 2, 2}, EVO_PAD_SAME},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    evo_graph *g = evo_graph_new();
    evo_node x = in_f32(g, "x", cases[i].xn, cases[i].xs), w = in_f32(g, "w", cases[i].wn, cases[i].ws);
    evo_node y = evo_conv2d(g, x, w, cases[i].sh, cases[i].sw, cases[i].pad);
    evo_output(g, evo_sum(g, evo_tanh(g, evo_mul(g, y, evo_scalar(g, 0.5f))), 0, NULL, false));
    evo_graph *gg = evo_grad(g, 0, 2, (int[]){0, 1});
    cr_assert_not_null(gg, "%s", evo_last_error());
    const int h = add_hvp_output(gg, 0, 2, 100 + i);
    char what[64];
    snprintf(what, sizeof what, "conv2d hvp case %zu", i);
    check_grad_with(what, gg, h, 2, (int[]){0, 1}, NULL, (fd_opts){.step = 5e-3f}, 40 + i);
    if (i == 1) { /* vmap of the second-derivative graph: per example (x batched) and per member (w batched) */
      evo_graph *hg = evo_grad(gg, h, 2, (int[]){0, 1});
      cr_assert_not_null(hg, "%s", evo_last_error());
      check_vmap_of_grad("conv2d hvp per example", hg, 3, (int[]){0, NONE}, 35);
      check_vmap_of_grad("conv2d hvp per member", hg, 2, (int[]){NONE, 0}, 36);
      evo_graph_free(hg);
    }
    evo_graph_free(gg);
    evo_graph_free(g);
  }
}

/* Second and third derivatives through max_pool2d (max_pool2d_grad's rule emits max_pool2d_gather, whose rule
   emits max_pool2d_grad): overlapping SAME windows, x with values 0.1 apart so that no finite-difference step
   changes a window's argmax. f(x, a) = sum(tanh(max_pool2d(x) * a)). */
Test(autodiff, grad_of_grad_through_max_pool2d) {
  enum { H = 6, W = 5, C = 2, N = H * W * C };
  float xv[N];
  for (int i = 0; i < N; i++) xv[i] = 0.1f * (float)((i * 37) % N) - 3.0f; /* a permutation of 0.1 k - 3 */
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 3, (int64_t[]){H, W, C}), a = in_f32(g, "a", 3, (int64_t[]){3, 3, C});
  evo_node p = evo_max_pool2d(g, x, 3, 3, 2, 2, EVO_PAD_SAME); /* [3, 3, C], windows overlap and pad */
  evo_output(g, evo_sum(g, evo_tanh(g, evo_mul(g, p, a)), 0, NULL, false));
  evo_graph *gg = evo_grad(g, 0, 2, (int[]){0, 1});
  cr_assert_not_null(gg, "%s", evo_last_error());
  const int h = add_hvp_output(gg, 0, 2, 200);
  void *given[2] = {xv, NULL};
  check_grad_with("max_pool2d hvp", gg, h, 2, (int[]){0, 1}, given, (fd_opts){.step = 1e-2f}, 51);
  /* one level up: the gradient graph of the HVP holds max_pool2d_gather, differentiated here */
  evo_graph *hg = evo_grad(gg, h, 2, (int[]){0, 1});
  cr_assert_not_null(hg, "%s", evo_last_error());
  const int h3 = add_hvp_output(hg, 0, 2, 300);
  check_grad_with("max_pool2d third derivative", hg, h3, 2, (int[]){0, 1}, given, (fd_opts){.step = 1e-2f}, 52);
  check_vmap_of_grad("max_pool2d hvp per example", hg, 3, (int[]){0, 0}, 37);
  evo_graph_free(hg);
  evo_graph_free(gg);
  evo_graph_free(g);
}

/* With ties (x from {0, 1, 2}) max_pool2d_gather must pick the pixel max_pool2d_grad routes to (the first max of
   each window): it is that op's adjoint, <gather(x, v), gy> = <v, max_pool2d_grad(x, gy)> for every v and gy.
   A gather that took another maximum of a tied window breaks the identity by O(1). */
Test(autodiff, max_pool2d_gather_is_the_adjoint_with_ties) {
  enum { H = 7, W = 6, C = 3, OH = 4, OW = 3, N = H * W * C, M = OH * OW * C };
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 3, (int64_t[]){H, W, C}), gy = in_f32(g, "gy", 3, (int64_t[]){OH, OW, C});
  evo_node p = evo_max_pool2d(g, x, 3, 2, 2, 2, EVO_PAD_SAME); /* overlapping rows, padded */
  cr_assert_eq(evo_node_shape(g, p)[0], OH);
  cr_assert_eq(evo_node_shape(g, p)[1], OW);
  evo_output(g, evo_sum(g, evo_mul(g, p, gy), 0, NULL, false));
  evo_graph *gg = evo_grad(g, 0, 1, (int[]){0}); /* output 0: max_pool2d_grad(x, gy) */
  cr_assert_not_null(gg, "%s", evo_last_error());
  evo_node v = constant_f32(gg, 3, (int64_t[]){H, W, C}, 7);
  evo_output(gg, evo_sum(gg, evo_mul(gg, evo_graph_output(gg, 0), v), 0, NULL, false));
  evo_graph *hg = evo_grad(gg, 1, 1, (int[]){1}); /* output 0: max_pool2d_gather(x, v) */
  cr_assert_not_null(hg, "%s", evo_last_error());
  float xv[N], gv[M], vv[N];
  uint64_t st = 11;
  for (int i = 0; i < N; i++) xv[i] = (float)(rng_next(&st) % 3);
  for (int i = 0; i < M; i++) gv[i] = (float)((double)(rng_next(&st) >> 11) / 9007199254740992.0 - 0.5);
  void *in[2] = {xv, gv};
  void **mg = eval_host(gg, in), **ga = eval_host(hg, in);
  /* v's values: evaluate the constant through a graph that returns it */
  evo_graph *vg = evo_graph_new();
  evo_output(vg, constant_f32(vg, 3, (int64_t[]){H, W, C}, 7));
  void **vo = eval_host(vg, NULL);
  memcpy(vv, vo[0], sizeof vv);
  double lhs = 0, rhs = 0, mag = 0;
  for (int i = 0; i < M; i++) lhs += (double)((float *)ga[0])[i] * gv[i], mag += fabs(gv[i]);
  for (int i = 0; i < N; i++) rhs += (double)vv[i] * ((float *)mg[0])[i];
  cr_assert(fabs(lhs - rhs) <= 1e-6 * mag, "<gather(x, v), gy> = %.9g, <v, max_pool2d_grad(x, gy)> = %.9g", lhs, rhs);
  free_outputs(mg), free_outputs(ga), free_outputs(vo);
  evo_graph_free(vg), evo_graph_free(hg), evo_graph_free(gg), evo_graph_free(g);
}

/* ---- errors ---- */

Test(autodiff, errors) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 1, (int64_t[]){3});
  evo_node k = evo_input(g, "k", EVO_I32, 1, (int64_t[]){3});
  evo_output(g, evo_tanh(g, x));                                         /* 0: not a scalar */
  evo_output(g, evo_sum(g, evo_mul(g, x, evo_cast(g, k, EVO_F32)), 0, NULL, false)); /* 1: fine */
  evo_output(g, evo_argmax(g, x, 0, false));                             /* 2: i32 scalar */

  evo_clear_error();
  cr_assert_null(evo_grad(g, 0, 1, (int[]){0}));
  cr_assert(strstr(evo_last_error(), "scalar") != NULL, "message: %s", evo_last_error());
  cr_assert_null(evo_value_and_grad(g, 2, 1, (int[]){0}));
  cr_assert(strstr(evo_last_error(), "f32 scalar") != NULL, "message: %s", evo_last_error());
  cr_assert_null(evo_grad(g, 1, 1, (int[]){1}));
  cr_assert(strstr(evo_last_error(), "f32") != NULL && strstr(evo_last_error(), "(k)") != NULL, "message: %s",
            evo_last_error());
  cr_assert_null(evo_grad(g, 1, 1, (int[]){5}));
  cr_assert(strstr(evo_last_error(), "not an input") != NULL, "message: %s", evo_last_error());
  cr_assert_null(evo_grad(g, 7, 1, (int[]){0}));
  cr_assert(strstr(evo_last_error(), "does not exist") != NULL, "message: %s", evo_last_error());
  cr_assert_null(evo_grad(NULL, 0, 1, (int[]){0}));

  evo_graph *ok = evo_grad(g, 1, 1, (int[]){0});
  cr_assert_not_null(ok, "%s", evo_last_error());
  evo_graph_free(ok);

  /* a graph that failed to trace is refused with its error */
  evo_graph *bad = evo_graph_new();
  evo_node a = in_f32(bad, "a", 2, (int64_t[]){2, 3});
  evo_output(bad, evo_matmul(bad, a, a));
  cr_assert_null(evo_grad(bad, 0, 1, (int[]){0}));
  cr_assert(strstr(evo_last_error(), "inner dims") != NULL, "message: %s", evo_last_error());
  evo_graph_free(bad);

  evo_graph_free(g);
}

/* ---- composition with vmap (needs core/vmap.c) ----
   vmap(grad(f)) gives per-example gradients: each slice must equal grad(f) run on that example alone. */

/* Runs vmap(grad) on batched random inputs and compares every slice with a loop of grad on that example. Mapped
   inputs carry the batch on axis 0. */
static void check_vmap_of_grad(const char *what, const evo_graph *gg, int64_t B, const int *in_axes, uint64_t seed) {
  evo_graph *vg = evo_vmap(gg, B, in_axes, NULL);
  cr_assert_not_null(vg, "%s: vmap: %s", what, evo_last_error());
  int ni = evo_graph_n_inputs(gg), no = evo_graph_n_outputs(gg);
  void *vin[MAXIO] = {0}, *ex[MAXIO] = {0};
  uint64_t st = seed;
  for (int i = 0; i < ni; i++) {
    evo_node x = evo_graph_input(vg, i);
    vin[i] = rand_host(evo_node_dtype(vg, x), evo_node_numel(vg, x), 3, &st);
    ex[i] = malloc(node_bytes(gg, evo_graph_input(gg, i)));
  }
  void **vout = eval_host(vg, vin);
  for (int64_t b = 0; b < B; b++) {
    for (int i = 0; i < ni; i++) {
      size_t nb = node_bytes(gg, evo_graph_input(gg, i));
      memcpy(ex[i], (char *)vin[i] + (in_axes[i] == NONE ? 0 : (size_t)b * nb), nb);
    }
    void **out = eval_host(gg, ex);
    for (int j = 0; j < no; j++) {
      int64_t n = evo_node_numel(gg, evo_graph_output(gg, j));
      const float *got = (const float *)vout[j] + b * n, *want = out[j];
      for (int64_t e = 0; e < n; e++)
        cr_assert(fabsf(got[e] - want[e]) <= 1e-5f * fmaxf(fabsf(got[e]), fabsf(want[e])) + 1e-6f,
                  "%s: output %d example %lld element %lld: vmap %.9g, loop %.9g", what, j, (long long)b,
                  (long long)e, got[e], want[e]);
    }
    free_outputs(out);
  }
  for (int i = 0; i < ni; i++) free(vin[i]), free(ex[i]);
  free_outputs(vout);
  evo_graph_free(vg);
}

Test(autodiff, vmap_of_grad_per_example_gradients) {
  /* per-example loss of one observation x [3] with shared weights: vmap over (x, t) */
  evo_graph *g = evo_graph_new();
  evo_node w = in_f32(g, "w", 2, (int64_t[]){3, 4}), b = in_f32(g, "b", 1, (int64_t[]){4});
  evo_node x = in_f32(g, "x", 1, (int64_t[]){3}), t = evo_input(g, "t", EVO_I32, 0, NULL);
  evo_node logits = evo_add(g, evo_matmul(g, evo_tanh(g, x), w), b);
  evo_node loss = evo_softmax_cross_entropy(g, evo_expand_dims(g, logits, 0), evo_expand_dims(g, t, 0)); /* [1] */
  evo_output(g, evo_sum(g, loss, 0, NULL, false));
  evo_graph *gg = evo_value_and_grad(g, 0, 3, (int[]){0, 1, 2});
  cr_assert_not_null(gg, "%s", evo_last_error());
  check_vmap_of_grad("per-example mlp grads", gg, 5, (int[]){NONE, NONE, 0, 0}, 31);
  /* and over the weights instead (one parameter set per population member, shared data) */
  check_vmap_of_grad("per-member mlp grads", gg, 3, (int[]){0, 0, NONE, NONE}, 32);
  evo_graph_free(gg);
  evo_graph_free(g);
}

Test(autodiff, vmap_of_grad_conv) {
  evo_graph *g = evo_graph_new();
  evo_node w = in_f32(g, "w", 4, (int64_t[]){3, 3, 2, 3}), x = in_f32(g, "x", 3, (int64_t[]){5, 5, 2});
  evo_node h = evo_max_pool2d(g, evo_relu(g, evo_conv2d(g, x, w, 1, 1, EVO_PAD_SAME)), 2, 2, 2, 2, EVO_PAD_SAME);
  evo_output(g, evo_sum(g, evo_square(g, evo_avg_pool2d(g, h, 2, 2, 1, 1, EVO_PAD_VALID)), 0, NULL, false));
  evo_graph *gg = evo_grad(g, 0, 2, (int[]){0, 1});
  cr_assert_not_null(gg, "%s", evo_last_error());
  check_vmap_of_grad("per-example conv grads", gg, 4, (int[]){NONE, 0}, 33);
  check_vmap_of_grad("per-member conv grads", gg, 3, (int[]){0, NONE}, 34);
  evo_graph_free(gg);
  evo_graph_free(g);
}
