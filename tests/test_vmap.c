/* vmap as a transform: for representative functions the vmapped graph must equal a loop of unbatched evaluations
   on slices (exactly for integer/RNG outputs, within 1e-5 relative for f32, where a batched GEMM may sum in
   another order). The per-op
   table harness (test_ops.c) checks every op's rule; this suite checks whole functions, nesting, in/out axes,
   shared inputs, RNG streams, errors, and that batched weights give batched ops rather than loops. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/backend.h"
#include "evoc/graph.h"
#include "evoc/jit.h"
#include "evoc/transform.h"
#include "graph_impl.h"

#define NONE EVO_VMAP_NONE

static evo_backend *be;
static void setup(void) { be = evo_backend_cpu_new(NULL); }
static void teardown(void) { evo_backend_free(be); }
TestSuite(vmap, .init = setup, .fini = teardown);

/* ---- helpers ---- */

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Random host data for a graph input: f32 in [-1.5, 1.5), i32 in [0, imax), u8 0/1, u32 any. */
static void *rand_host(evo_dtype t, int64_t n, int imax, uint64_t *st) {
  void *p = malloc((size_t)(n ? n : 1) * evo_dtype_size(t));
  for (int64_t k = 0; k < n; k++) {
    uint64_t r = rng_next(st);
    switch (t) {
    case EVO_F32: ((float *)p)[k] = (float)((double)(r >> 11) / 9007199254740992.0 * 3.0 - 1.5); break;
    case EVO_I32: ((int32_t *)p)[k] = (int32_t)(r % (uint64_t)imax); break;
    case EVO_U8: ((uint8_t *)p)[k] = (uint8_t)(r & 1); break;
    default: ((uint32_t *)p)[k] = (uint32_t)r; break;
    }
  }
  return p;
}

static size_t node_bytes(const evo_graph *g, evo_node x) {
  return (size_t)evo_node_numel(g, x) * evo_dtype_size(evo_node_dtype(g, x));
}

/* Evaluates g on host inputs; returns malloc'd host outputs (caller frees each and the array). */
static void **eval_host(const evo_graph *g, void *const *in) {
  int ni = evo_graph_n_inputs(g), no = evo_graph_n_outputs(g);
  evo_tensor *ti[16], *to[16];
  for (int i = 0; i < ni; i++) {
    evo_node x = evo_graph_input(g, i);
    ti[i] = evo_tensor_from_host(be, evo_node_dtype(g, x), evo_node_ndim(g, x), evo_node_shape(g, x), in[i]);
    cr_assert_not_null(ti[i], "%s", evo_last_error());
  }
  for (int j = 0; j < no; j++) {
    evo_node y = evo_graph_output(g, j);
    to[j] = evo_tensor_new(be, evo_node_dtype(g, y), evo_node_ndim(g, y), evo_node_shape(g, y));
    cr_assert_not_null(to[j], "%s", evo_last_error());
  }
  cr_assert_eq(evo_eval(g, be, ti, to), EVO_STATUS_OK, "eval: %s", evo_last_error());
  void **out = calloc((size_t)no, sizeof *out);
  for (int j = 0; j < no; j++) {
    size_t nb = node_bytes(g, evo_graph_output(g, j));
    out[j] = malloc(nb ? nb : 1);
    cr_assert_eq(evo_tensor_copy_to_host(to[j], out[j], nb), EVO_STATUS_OK);
    evo_tensor_free(to[j]);
  }
  for (int i = 0; i < ni; i++) evo_tensor_free(ti[i]);
  return out;
}

static void free_all(void **p, int n) {
  for (int i = 0; i < n; i++) free(p[i]);
  free(p);
}

/* Copies index b of axis ax of a [shape] array into dst (the slice, contiguous). */
static void take_slice(const void *src, size_t es, int nd, const int64_t *shape, int ax, int64_t b, void *dst) {
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; d++) outer *= shape[d];
  for (int d = ax + 1; d < nd; d++) inner *= shape[d];
  for (int64_t o = 0; o < outer; o++)
    memcpy((char *)dst + (size_t)(o * inner) * es, (const char *)src + (size_t)((o * shape[ax] + b) * inner) * es,
           (size_t)inner * es);
}

static void assert_close(evo_dtype t, const void *got, const void *want, int64_t n, float rtol, const char *what,
                         int64_t b, int j) {
  if (t != EVO_F32) {
    cr_assert(memcmp(got, want, (size_t)n * evo_dtype_size(t)) == 0, "%s: output %d, example %lld differs", what, j,
              (long long)b);
    return;
  }
  /* relative to the element or to the largest magnitude in the array: a batched GEMM / conv may block its sums
     differently, which moves a small entry that came out of cancelling large terms by rounding of those terms */
  const float *g = got, *w = want;
  float scale = 0.0f;
  for (int64_t k = 0; k < n; k++) scale = isnan(w[k]) ? scale : fmaxf(scale, fabsf(w[k]));
  for (int64_t k = 0; k < n; k++) {
    if (isnan(g[k]) && isnan(w[k])) continue;
    float tol = rtol * fmaxf(fmaxf(fabsf(g[k]), fabsf(w[k])), scale) + 1e-6f;
    cr_assert(fabsf(g[k] - w[k]) <= tol, "%s: output %d, example %lld, element %lld: vmap %.9g, loop %.9g", what,
              j, (long long)b, (long long)k, g[k], w[k]);
  }
}

static int norm_axis(int ax, int nd) { return ax < 0 ? ax + nd : ax; }

/* vmap(g) on random inputs equals, for every b, g on the b-th slices. imax: i32 input ranges (NULL: 4). Returns
   the vmapped graph (caller frees). */
static evo_graph *check_vmap(const char *what, const evo_graph *g, int64_t B, const int *in_axes,
                             const int *out_axes, const int *imax, float rtol, uint64_t seed) {
  cr_assert_eq(evo_graph_status(g), EVO_STATUS_OK, "%s: trace: %s", what, evo_graph_error(g));
  evo_graph *vg = evo_vmap(g, B, in_axes, out_axes);
  cr_assert_not_null(vg, "%s: vmap: %s", what, evo_last_error());
  int ni = evo_graph_n_inputs(g), no = evo_graph_n_outputs(g);
  cr_assert_eq(evo_graph_n_inputs(vg), ni);
  cr_assert_eq(evo_graph_n_outputs(vg), no);
  void *vin[16], *ex[16], *want_slice[16];
  uint64_t st = seed;
  for (int i = 0; i < ni; i++) {
    evo_node x = evo_graph_input(vg, i);
    vin[i] = rand_host(evo_node_dtype(vg, x), evo_node_numel(vg, x), imax ? imax[i] : 4, &st);
    ex[i] = malloc(node_bytes(g, evo_graph_input(g, i)) + 1);
  }
  void **vout = eval_host(vg, vin);
  for (int j = 0; j < no; j++) want_slice[j] = malloc(node_bytes(g, evo_graph_output(g, j)) + 1);
  for (int64_t b = 0; b < B; b++) {
    for (int i = 0; i < ni; i++) {
      evo_node x = evo_graph_input(vg, i);
      int ax = in_axes ? in_axes[i] : 0;
      if (ax == NONE)
        memcpy(ex[i], vin[i], node_bytes(vg, x));
      else
        take_slice(vin[i], evo_dtype_size(evo_node_dtype(vg, x)), evo_node_ndim(vg, x), evo_node_shape(vg, x),
                   norm_axis(ax, evo_node_ndim(vg, x)), b, ex[i]);
    }
    void **out = eval_host(g, ex);
    for (int j = 0; j < no; j++) {
      evo_node y = evo_graph_output(vg, j);
      int ax = out_axes ? out_axes[j] : 0;
      evo_dtype t = evo_node_dtype(vg, y);
      if (ax == NONE)
        memcpy(want_slice[j], vout[j], node_bytes(vg, y));
      else
        take_slice(vout[j], evo_dtype_size(t), evo_node_ndim(vg, y), evo_node_shape(vg, y),
                   norm_axis(ax, evo_node_ndim(vg, y)), b, want_slice[j]);
      assert_close(t, want_slice[j], out[j], evo_node_numel(g, evo_graph_output(g, j)), rtol, what, b, j);
    }
    free_all(out, no);
  }
  for (int i = 0; i < ni; i++) free(vin[i]), free(ex[i]);
  for (int j = 0; j < no; j++) free(want_slice[j]);
  free_all(vout, no);
  return vg;
}

static void check_and_free(const char *what, const evo_graph *g, int64_t B, const int *in_axes,
                           const int *out_axes, const int *imax, uint64_t seed) {
  evo_graph_free(check_vmap(what, g, B, in_axes, out_axes, imax, 1e-5f, seed));
}

static evo_node in_f32(evo_graph *g, const char *name, int nd, const int64_t *s) {
  return evo_input(g, name, EVO_F32, nd, s);
}

static int count_op(const evo_graph *g, evo_op op) {
  int n = 0;
  for (int k = 0; k < g->n_nodes; k++) n += g->nodes[k].op == op;
  return n;
}

/* ---- functions under test ---- */

/* x [4] -> tanh(x W1 + b1) W2 + b2 [3]; inputs x, W1, b1, W2, b2. */
static evo_graph *mlp_graph(void) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 1, (int64_t[]){4});
  evo_node w1 = in_f32(g, "w1", 2, (int64_t[]){4, 8}), b1 = in_f32(g, "b1", 1, (int64_t[]){8});
  evo_node w2 = in_f32(g, "w2", 2, (int64_t[]){8, 3}), b2 = in_f32(g, "b2", 1, (int64_t[]){3});
  evo_node h = evo_tanh(g, evo_add(g, evo_matmul(g, x, w1), b1));
  evo_output(g, evo_add(g, evo_matmul(g, h, w2), b2));
  return g;
}

Test(vmap, elementwise_chain_with_shared_inputs) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 2, (int64_t[]){3, 4}), y = in_f32(g, "y", 1, (int64_t[]){4});
  evo_node z = in_f32(g, "z", 1, (int64_t[]){4}), k = in_f32(g, "k", 2, (int64_t[]){3, 1});
  evo_node a = evo_tanh(g, evo_add(g, evo_mul(g, x, y), z)); /* z: batched, rank 1 under a rank-2 result */
  evo_node b = evo_where(g, evo_gt(g, x, y), evo_exp(g, x), evo_sub(g, a, k));
  evo_node c = evo_clip(g, evo_add_scalar(g, b, 0.25f), -0.5f, 2.0f);
  evo_node pos = evo_add_scalar(g, evo_abs(g, c), 1.0f);
  evo_node d = evo_add(g, evo_div(g, evo_log(g, pos), evo_sqrt(g, pos)), evo_pow(g, pos, evo_sigmoid(g, z)));
  evo_node e = evo_maximum(g, evo_relu(g, evo_sin(g, d)), evo_minimum(g, evo_cos(g, k), evo_square(g, evo_neg(g, y))));
  evo_output(g, e);
  evo_output(g, evo_le(g, x, z));
  evo_output(g, evo_cast(g, evo_mul_scalar(g, x, 10.0f), EVO_I32));
  evo_output(g, evo_stop_gradient(g, evo_mul(g, evo_full(g, 2.0f, 1, (int64_t[]){4}), z)));
  check_and_free("x,z batched", g, 5, (int[]){0, NONE, 0, NONE}, NULL, NULL, 11);
  check_and_free("y,k batched", g, 3, (int[]){NONE, 0, NONE, 0}, NULL, NULL, 12);
  check_and_free("all batched", g, 4, NULL, NULL, NULL, 13);
  evo_graph_free(g);
}

Test(vmap, mlp_over_params_is_one_batched_gemm_per_layer) {
  evo_graph *g = mlp_graph();
  const int64_t P = 5;
  evo_graph *vg = check_vmap("mlp over params", g, P, (int[]){NONE, 0, 0, 0, 0}, NULL, NULL, 1e-5f, 21);
  cr_assert_eq(count_op(vg, EVO_OP_MATMUL), count_op(g, EVO_OP_MATMUL));
  for (int k = 0; k < vg->n_nodes; k++) {
    const evo_node_t *n = &vg->nodes[k];
    if (n->op != EVO_OP_MATMUL) continue;
    cr_assert_eq(n->ndim, 3, "a batched-weight matmul must have one leading loop dim");
    cr_assert_eq(n->shape[0], P);
  }
  const int64_t *s = evo_node_shape(vg, evo_graph_output(vg, 0));
  cr_assert(evo_node_ndim(vg, evo_graph_output(vg, 0)) == 2 && s[0] == P && s[1] == 3);
  evo_graph_free(vg);
  evo_graph_free(g);
}

Test(vmap, mlp_over_observations) {
  evo_graph *g = mlp_graph();
  evo_graph *vg = check_vmap("mlp over obs", g, 6, (int[]){0, NONE, NONE, NONE, NONE}, NULL, NULL, 1e-5f, 31);
  cr_assert_eq(count_op(vg, EVO_OP_MATMUL), count_op(g, EVO_OP_MATMUL));
  evo_graph_free(vg);
  evo_graph_free(g);
}

/* vmap(vmap(mlp, envs), population): out[p, e] = mlp(x[e], W[p]), checked against a double loop. */
Test(vmap, nested_population_by_environment) {
  const int64_t P = 3, E = 4;
  evo_graph *g = mlp_graph();
  evo_graph *inner = check_vmap("inner (env)", g, E, (int[]){0, NONE, NONE, NONE, NONE}, NULL, NULL, 1e-5f, 41);
  evo_graph *outer = check_vmap("outer (pop)", inner, P, (int[]){NONE, 0, 0, 0, 0}, NULL, NULL, 1e-5f, 42);
  const int64_t *os = evo_node_shape(outer, evo_graph_output(outer, 0));
  cr_assert(os[0] == P && os[1] == E && os[2] == 3);
  cr_assert_eq(count_op(outer, EVO_OP_MATMUL), count_op(g, EVO_OP_MATMUL));

  uint64_t st = 43;
  void *vin[5], *ex[5];
  for (int i = 0; i < 5; i++) {
    evo_node x = evo_graph_input(outer, i);
    vin[i] = rand_host(EVO_F32, evo_node_numel(outer, x), 4, &st);
    ex[i] = malloc(node_bytes(g, evo_graph_input(g, i)));
  }
  void **vout = eval_host(outer, vin);
  for (int64_t p = 0; p < P; p++)
    for (int64_t e = 0; e < E; e++) {
      for (int i = 0; i < 5; i++) {
        evo_node x = evo_graph_input(outer, i);
        take_slice(vin[i], 4, evo_node_ndim(outer, x), evo_node_shape(outer, x), 0, i == 0 ? e : p, ex[i]);
      }
      void **out = eval_host(g, ex);
      assert_close(EVO_F32, (float *)vout[0] + (p * E + e) * 3, out[0], 3, 1e-5f, "nested", p * E + e, 0);
      free_all(out, 1);
    }
  for (int i = 0; i < 5; i++) free(vin[i]), free(ex[i]);
  free_all(vout, 1);
  evo_graph_free(outer);
  evo_graph_free(inner);
  evo_graph_free(g);
}

/* A population of MLPs applied to a shared minibatch: x [N, 4] unbatched against per-member weights. */
Test(vmap, mlp_minibatch_shared_across_population) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 2, (int64_t[]){7, 4});
  evo_node w1 = in_f32(g, "w1", 2, (int64_t[]){4, 8}), b1 = in_f32(g, "b1", 1, (int64_t[]){8});
  evo_node w2 = in_f32(g, "w2", 2, (int64_t[]){8, 3});
  evo_node h = evo_relu(g, evo_add(g, evo_matmul(g, x, w1), b1));
  evo_output(g, evo_log_softmax(g, evo_matmul(g, h, w2), -1));
  check_and_free("minibatch shared", g, 4, (int[]){NONE, 0, 0, 0}, NULL, NULL, 51);
  check_and_free("weights shared", g, 4, (int[]){0, NONE, NONE, NONE}, NULL, NULL, 52);
  check_and_free("layer 1 shared", g, 3, (int[]){0, NONE, NONE, 0}, NULL, NULL, 53);
  evo_graph_free(g);
}

/* x [6,6,2] -> conv SAME -> relu -> maxpool 2x2/2 -> conv VALID -> avgpool SAME -> flatten -> dense [5]
   (or the sum of its squares, to differentiate). */
static evo_graph *cnn_graph(bool scalar_loss) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 3, (int64_t[]){6, 6, 2});
  evo_node k1 = in_f32(g, "k1", 4, (int64_t[]){3, 3, 2, 4}), k2 = in_f32(g, "k2", 4, (int64_t[]){2, 2, 4, 3});
  evo_node w = in_f32(g, "w", 2, (int64_t[]){12, 5});
  evo_node h = evo_relu(g, evo_conv2d(g, x, k1, 1, 1, EVO_PAD_SAME));
  h = evo_max_pool2d(g, h, 2, 2, 2, 2, EVO_PAD_VALID);
  h = evo_conv2d(g, h, k2, 1, 1, EVO_PAD_VALID);
  h = evo_avg_pool2d(g, h, 2, 2, 1, 1, EVO_PAD_SAME);
  evo_node y = evo_matmul(g, evo_flatten(g, h, 0), w);
  evo_output(g, scalar_loss ? evo_sum(g, evo_square(g, y), 0, NULL, false) : y);
  return g;
}

Test(vmap, conv_net_with_per_member_kernels) {
  evo_graph *g = cnn_graph(false);
  evo_graph *vg = check_vmap("kernels batched", g, 3, (int[]){NONE, 0, 0, 0}, NULL, NULL, 1e-5f, 61);
  cr_assert_eq(count_op(vg, EVO_OP_CONV2D), 2);
  for (int k = 0; k < vg->n_nodes; k++)
    if (vg->nodes[k].op == EVO_OP_CONV2D) cr_assert_eq(vg->nodes[k].ndim, 4, "one grouped conv, not a loop");
  evo_graph_free(vg);
  check_and_free("images batched", g, 4, (int[]){0, NONE, NONE, NONE}, NULL, NULL, 62);
  check_and_free("images and k1 batched", g, 2, (int[]){0, 0, NONE, NONE}, NULL, NULL, 63);
  check_and_free("image axis 2", g, 3, (int[]){2, NONE, NONE, NONE}, NULL, NULL, 64);
  evo_graph_free(g);
}

Test(vmap, reductions_with_keepdims) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 3, (int64_t[]){3, 4, 5});
  evo_output(g, evo_sum(g, x, 2, (int[]){0, 2}, true));
  evo_output(g, evo_mean(g, x, 1, (int[]){1}, false));
  evo_output(g, evo_max(g, x, 0, NULL, false));
  evo_output(g, evo_min(g, x, 1, (int[]){-1}, true));
  evo_output(g, evo_logsumexp(g, x, 1, (int[]){0}, false));
  evo_output(g, evo_argmax(g, x, 1, true));
  evo_output(g, evo_argmax(g, x, -1, false));
  evo_output(g, evo_sum(g, x, 0, NULL, true));
  check_and_free("axis 0", g, 4, NULL, NULL, NULL, 71);
  check_and_free("axis 1", g, 4, (int[]){1}, (int[]){1, 1, 0, 2, 1, 0, -1, 3}, NULL, 72);
  check_and_free("axis -1", g, 2, (int[]){-1}, (int[]){-1, 0, 0, -1, 0, 1, 0, 0}, NULL, 73);
  evo_graph_free(g);
}

Test(vmap, softmax_cross_entropy_with_labels) {
  evo_graph *g = evo_graph_new();
  evo_node logits = in_f32(g, "logits", 2, (int64_t[]){4, 6});
  evo_node labels = evo_input(g, "labels", EVO_I32, 1, (int64_t[]){4});
  evo_output(g, evo_mean(g, evo_softmax_cross_entropy(g, logits, labels), 0, NULL, false));
  evo_output(g, evo_softmax(g, logits, 0));
  evo_output(g, evo_log_softmax(g, logits, 1));
  evo_output(g, evo_one_hot(g, labels, 6));
  const int imax[2] = {0, 6};
  check_and_free("both batched", g, 5, NULL, NULL, imax, 81);
  check_and_free("labels shared", g, 5, (int[]){0, NONE}, NULL, imax, 82);
  check_and_free("logits shared", g, 5, (int[]){NONE, 0}, NULL, imax, 83);
  evo_graph_free(g);
}

Test(vmap, shape_ops) {
  evo_graph *g = evo_graph_new();
  evo_node a = in_f32(g, "a", 2, (int64_t[]){3, 4}), b = in_f32(g, "b", 2, (int64_t[]){3, 2});
  evo_node c = in_f32(g, "c", 1, (int64_t[]){4});
  evo_node idx = evo_input(g, "idx", EVO_I32, 2, (int64_t[]){3, 2});
  evo_output(g, evo_concat(g, 2, (evo_node[]){a, b}, 1));
  evo_output(g, evo_concat(g, 2, (evo_node[]){a, evo_expand_dims(g, c, 0)}, 0));
  evo_output(g, evo_slice(g, evo_transpose(g, a, (int[]){1, 0}), 1, 1, 3));
  evo_output(g, evo_reshape(g, a, 3, (int64_t[]){2, -1, 3}));
  evo_output(g, evo_pad(g, evo_squeeze(g, evo_expand_dims(g, b, 1), 1), 0, 1, 2));
  evo_output(g, evo_take_along_axis(g, a, idx, 1));
  evo_output(g, evo_broadcast_to(g, c, 3, (int64_t[]){2, 3, 4}));
  evo_output(g, evo_flatten(g, evo_broadcast_to(g, evo_expand_dims(g, b, 0), 3, (int64_t[]){2, 3, 2}), 1));
  const int imax[4] = {0, 0, 0, 5}; /* 4 is out of range for a's axis 1: gives 0 */
  check_and_free("a,c,idx batched", g, 3, (int[]){0, NONE, 0, 0}, NULL, imax, 91);
  check_and_free("idx batched only", g, 3, (int[]){NONE, NONE, NONE, 0}, NULL, imax, 92);
  check_and_free("b batched only", g, 2, (int[]){NONE, 1, NONE, NONE}, NULL, imax, 93);
  check_and_free("all batched, axis 1 out", g, 2, (int[]){1, 0, 0, -1}, (int[]){1, 1, 1, 1, 1, 1, 1, 1}, imax, 94);
  evo_graph_free(g);
}

Test(vmap, random_streams_per_key) {
  evo_graph *g = evo_graph_new();
  evo_node key = evo_input(g, "key", EVO_U32, 1, (int64_t[]){2});
  evo_node shared = evo_input(g, "shared_key", EVO_U32, 1, (int64_t[]){2});
  evo_output(g, evo_random_normal(g, key, 2, (int64_t[]){3, 4}));
  evo_output(g, evo_random_uniform(g, key, 1, (int64_t[]){5}, -2.0f, 3.0f));
  evo_output(g, evo_random_truncated_normal(g, key, 2, (int64_t[]){2, 3}, -1.0f, 2.0f));
  evo_output(g, evo_random_normal(g, shared, 1, (int64_t[]){4}));
  evo_graph *vg = check_vmap("keys [B,2]", g, 4, (int[]){0, NONE}, NULL, NULL, 0.0f, 101);
  /* different keys, different streams; a shared key gives the same stream in every row */
  uint32_t keys[8] = {1, 2, 3, 4, 5, 6, 7, 8}, sk[2] = {9, 9};
  void *in[2] = {keys, sk};
  void **out = eval_host(vg, in);
  const float *n0 = out[0], *sh = out[3];
  cr_assert(memcmp(n0, n0 + 12, 12 * sizeof(float)) != 0, "keys 0 and 1 gave the same stream");
  cr_assert(memcmp(sh, sh + 4, 4 * sizeof(float)) == 0, "a shared key must give one stream for every row");
  free_all(out, 4);
  evo_graph_free(vg);
  /* keys with their own loop dims: key [3, 2] mapped on axis 1 */
  evo_graph *g2 = evo_graph_new();
  evo_node k2 = evo_input(g2, "key", EVO_U32, 2, (int64_t[]){3, 2});
  evo_output(g2, evo_random_uniform(g2, k2, 1, (int64_t[]){6}, 0.0f, 1.0f));
  evo_graph_free(check_vmap("keys [3,B,2]", g2, 2, (int[]){1}, (int[]){-1}, NULL, 0.0f, 102));
  evo_graph_free(g2);
  evo_graph_free(g);
}

Test(vmap, nonzero_in_and_out_axes) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 2, (int64_t[]){4, 3}), w = in_f32(g, "w", 2, (int64_t[]){3, 2});
  evo_node y = evo_matmul(g, x, w);
  evo_output(g, y);
  evo_output(g, evo_sum(g, y, 1, (int[]){0}, false));
  check_and_free("in 2,-1 out 1,-1", g, 5, (int[]){2, -1}, (int[]){1, -1}, NULL, 111);
  check_and_free("in 1,NONE out 2,0", g, 3, (int[]){1, NONE}, (int[]){2, 0}, NULL, 112);
  /* nesting with non-zero axes on both levels */
  evo_graph *inner = check_vmap("inner", g, 3, (int[]){-1, NONE}, (int[]){1, 1}, NULL, 1e-5f, 113);
  evo_graph_free(check_vmap("outer", inner, 2, (int[]){1, 0}, (int[]){2, -1}, NULL, 1e-5f, 114));
  evo_graph_free(inner);
  evo_graph_free(g);
}

Test(vmap, unbatched_outputs_are_broadcast_or_kept) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 1, (int64_t[]){3}), y = in_f32(g, "y", 2, (int64_t[]){2, 3});
  evo_output(g, evo_mul_scalar(g, x, 2.0f));
  evo_output(g, evo_exp(g, y));
  evo_output(g, evo_full(g, 1.5f, 1, (int64_t[]){2}));
  check_and_free("broadcast at 0", g, 4, (int[]){0, NONE}, NULL, NULL, 121);
  check_and_free("broadcast at 1, 2", g, 4, (int[]){0, NONE}, (int[]){0, 2, 1}, NULL, 122);
  evo_graph *vg = check_vmap("kept", g, 4, (int[]){0, NONE}, (int[]){0, NONE, NONE}, NULL, 0.0f, 123);
  cr_assert_eq(evo_node_ndim(vg, evo_graph_output(vg, 1)), 2, "out_axes none keeps the per-example shape");
  evo_graph_free(vg);
  /* nothing mapped at all: every output broadcast */
  check_and_free("no mapped input", g, 2, (int[]){NONE, NONE}, NULL, NULL, 124);
  evo_graph_free(g);
}

Test(vmap, per_example_gradients) {
  /* loss(x, label; W) = softmax_ce(mlp(x), label); vmap of its gradient over examples, then over members */
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 1, (int64_t[]){4});
  evo_node lab = evo_input(g, "label", EVO_I32, 0, NULL);
  evo_node w1 = in_f32(g, "w1", 2, (int64_t[]){4, 8}), b1 = in_f32(g, "b1", 1, (int64_t[]){8});
  evo_node w2 = in_f32(g, "w2", 2, (int64_t[]){8, 3});
  evo_node h = evo_tanh(g, evo_add(g, evo_matmul(g, x, w1), b1));
  evo_output(g, evo_sum(g, evo_softmax_cross_entropy(g, evo_matmul(g, h, w2), lab), 0, NULL, false));
  evo_graph *dg = evo_value_and_grad(g, 0, 3, (int[]){2, 3, 4});
  cr_assert_not_null(dg, "%s", evo_last_error());
  const int imax[5] = {0, 3, 0, 0, 0};
  evo_graph *pe = check_vmap("per example", dg, 6, (int[]){0, 0, NONE, NONE, NONE}, NULL, imax, 1e-5f, 131);
  check_and_free("per member", dg, 3, (int[]){NONE, NONE, 0, 0, 0}, NULL, imax, 132);
  check_and_free("members x examples", pe, 3, (int[]){NONE, NONE, 0, 0, 0}, NULL, imax, 133);
  evo_graph_free(pe);
  evo_graph_free(dg);
  evo_graph_free(g);
}

Test(vmap, conv_net_gradients_per_member) {
  evo_graph *sg = cnn_graph(true);
  evo_graph *dg = evo_grad(sg, 0, 4, (int[]){0, 1, 2, 3});
  cr_assert_not_null(dg, "%s", evo_last_error());
  check_and_free("kernels batched", dg, 3, (int[]){NONE, 0, 0, 0}, NULL, NULL, 141);
  check_and_free("images batched", dg, 3, (int[]){0, NONE, NONE, NONE}, NULL, NULL, 142);
  check_and_free("image and k2 batched", dg, 2, (int[]){0, NONE, 0, NONE}, NULL, NULL, 143);
  evo_graph_free(dg);
  evo_graph_free(sg);
}

/* A shared kernel over a minibatch: the kernel gradient sums over the minibatch loop dim, so under vmap the batch
   must sit under the output's batch dim, not under the minibatch dim. */
Test(vmap, kernel_gradient_summed_over_a_minibatch) {
  evo_graph *g = evo_graph_new();
  evo_node x = in_f32(g, "x", 4, (int64_t[]){2, 5, 5, 2}), k = in_f32(g, "k", 4, (int64_t[]){3, 3, 2, 3});
  evo_node h = evo_max_pool2d(g, evo_relu(g, evo_conv2d(g, x, k, 1, 1, EVO_PAD_SAME)), 2, 2, 1, 1, EVO_PAD_VALID);
  evo_output(g, evo_sum(g, evo_square(g, h), 0, NULL, false));
  evo_graph *dg = evo_value_and_grad(g, 0, 2, (int[]){0, 1});
  cr_assert_not_null(dg, "%s", evo_last_error());
  check_and_free("population gradients", dg, 3, (int[]){NONE, 0}, NULL, NULL, 151);
  check_and_free("minibatches", dg, 3, (int[]){0, NONE}, NULL, NULL, 152);
  check_and_free("both", dg, 2, (int[]){1, 0}, (int[]){0, 0, 4}, NULL, 153);
  evo_graph_free(dg);
  evo_graph_free(g);
}

Test(vmap, errors_return_null_with_a_message) {
  evo_graph *g = mlp_graph();
  evo_clear_error();
  cr_assert_null(evo_vmap(g, 4, (int[]){2, NONE, NONE, NONE, NONE}, NULL));
  cr_assert(strstr(evo_last_error(), "in_axes[0]") != NULL, "message: %s", evo_last_error());
  cr_assert_null(evo_vmap(g, 0, NULL, NULL));
  cr_assert(strstr(evo_last_error(), "batch") != NULL, "message: %s", evo_last_error());
  cr_assert_null(evo_vmap(g, 4, NULL, (int[]){2}));
  cr_assert(strstr(evo_last_error(), "out_axes[0]") != NULL, "message: %s", evo_last_error());
  cr_assert_null(evo_vmap(g, 4, NULL, (int[]){NONE}));
  cr_assert(strstr(evo_last_error(), "out_axes[0]") != NULL, "message: %s", evo_last_error());
  cr_assert_null(evo_vmap(NULL, 4, NULL, NULL));
  evo_graph_free(g);
  /* no room for the batch dim */
  g = evo_graph_new();
  int64_t s8[8] = {1, 1, 1, 1, 1, 1, 1, 2};
  evo_output(g, evo_exp(g, in_f32(g, "x", 8, s8)));
  cr_assert_null(evo_vmap(g, 2, NULL, NULL));
  cr_assert(strstr(evo_last_error(), "dims") != NULL, "message: %s", evo_last_error());
  evo_graph_free(g);
}
