/* The CUDA jit's fused kernels against the CPU: act(op(x) @ op(w) + b) as one kernel (EVO_OP_FUSED_MATMUL_BIAS_ACT,
   core/cuda/k_matmul_epi.cu) over shapes, transposes and its row limit; the population MLP at one kernel per layer;
   a binary op read only by an activation as one kernel (EVO_OP_FUSED_BINARY_UNARY). GPU tests: they skip with the
   reason where no CUDA device is usable, and run on the emulated device in emulator builds (tests/cuda_emu). */
#define OP_TABLE_ROWS_ONLY
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/backend.h"
#include "evoc/graph.h"
#include "evoc/jit.h"
#include "evoc/rng.h"
#include "evoc/transform.h"

/* the op harness's host buffers, generator and eval_on; its table machinery is not used here */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "op_ref.inc"

#include "op_harness.inc"
#pragma GCC diagnostic pop

#include "cuda_test_util.h"

static evo_backend *cpu, *gpu;
static void setup(void) { cpu = evo_backend_cpu_new(NULL); }
static void teardown(void) {
  evo_backend_free(gpu);
  evo_backend_free(cpu);
}
TestSuite(cuda_fused, .init = setup, .fini = teardown);

#define NEED_GPU() (gpu = cuda_or_skip())

/* ---- the fused layer: act(op(x) @ op(w) + b) in one kernel (EVO_OP_FUSED_MATMUL_BIAS_ACT, k_matmul_epi.cu) ---- */

typedef struct {
  int xn, wn, bn;
  int64_t xs[4], ws[4], bs[4];
  int ta, tb; /* x / w stored transposed: an evo_transpose the jit folds into the matmul's flags */
  int act;    /* 0 tanh, 1 relu, 2 sigmoid */
  int fused;  /* the CUDA jit must make it one kernel */
} layer_case;

static evo_node swap_last_two(evo_graph *g, evo_node x, int nd) {
  int perm[4] = {0, 1, 2, 3};
  perm[nd - 2] = nd - 1, perm[nd - 1] = nd - 2;
  return evo_transpose(g, x, perm);
}

/* Evaluates g (f32 inputs of the given shapes, uniform in [-1, 1) from seed, the last input shifted by `shift`) on
   the CPU and on the GPU, expects the outputs within tol (relative), and returns the kernels of g's CUDA plan. */
static int gpu_matches_cpu(const evo_graph *g, int n_in, const int *nds, const int64_t *const *shapes, float tol,
                           uint64_t seed, float shift, int idx) {
  cr_assert_eq(evo_graph_status(g), EVO_STATUS_OK, "case %d: %s", idx, evo_graph_error(g));
  hbuf in[4], want, got;
  for (int k = 0; k < n_in; k++) {
    hb_init(&in[k], EVO_F32, nds[k], shapes[k]);
    uint64_t r = seed + (uint64_t)k;
    for (int64_t j = 0; j < hb_numel(&in[k]); j++)
      ((float *)in[k].p)[j] = (float)uni(&r, -1.0, 1.0) + (k == n_in - 1 ? shift : 0.0f);
  }
  cr_assert_eq(eval_on(cpu, g, in, &want), EVO_STATUS_OK, "case %d: %s", idx, evo_last_error());
  cr_assert_eq(eval_on(gpu, g, in, &got), EVO_STATUS_OK, "case %d: %s", idx, evo_last_error());
  for (int64_t i = 0; i < hb_numel(&want); i++) {
    const float w = ((float *)want.p)[i], v = ((float *)got.p)[i];
    cr_assert(fabsf(v - w) <= tol * (1 + fabsf(w)), "case %d [%lld]: cuda %.9g, cpu %.9g", idx, (long long)i, v, w);
  }
  evo_plan *p;
  cr_assert_eq(evo_jit(g, gpu, &p), EVO_STATUS_OK, "case %d: %s", idx, evo_last_error());
  const int kernels = evo_plan_n_kernels(p);
  evo_plan_free(p);
  for (int k = 0; k < n_in; k++) hb_free(&in[k]);
  hb_free(&want), hb_free(&got);
  return kernels;
}

static void check_layer(const layer_case *c, int idx) {
  evo_graph *g = evo_graph_new();
  evo_node x = evo_input(g, "x", EVO_F32, c->xn, c->xs), w = evo_input(g, "w", EVO_F32, c->wn, c->ws);
  evo_node b = evo_input(g, "b", EVO_F32, c->bn, c->bs);
  evo_node h = evo_add(g, evo_matmul(g, c->ta ? swap_last_two(g, x, c->xn) : x,
                                     c->tb ? swap_last_two(g, w, c->wn) : w), b);
  evo_output(g, c->act == 0 ? evo_tanh(g, h) : c->act == 1 ? evo_relu(g, h) : evo_sigmoid(g, h));
  const int nds[3] = {c->xn, c->wn, c->bn};
  const int64_t *shapes[3] = {c->xs, c->ws, c->bs};
  const int kernels = gpu_matches_cpu(g, 3, nds, shapes, 1e-5f, 100 * (uint64_t)idx, 0.0f, idx);
  cr_assert(c->fused ? kernels == 1 : kernels > 1, "case %d: %d kernels (fused expected: %d)", idx, kernels, c->fused);
  evo_graph_free(g);
}

/* Shared and per-member inputs, both transpose flags, several column and K tiles, M at its limit and past it
   (then the unfused kernels run), biases per member, shared and broadcast along the columns; N <= 16 takes the
   warp-per-member kernel. */
Test(cuda_fused, fused_matmul_bias_activation_matches_the_cpu) {
  NEED_GPU();
  const layer_case cases[] = {
      {2, 3, 3, {16, 5}, {64, 5, 64}, {64, 1, 64}, 0, 0, 0, 1},     /* the population MLP's first layer */
      {3, 3, 1, {64, 16, 64}, {64, 64, 64}, {64}, 0, 0, 1, 1},      /* per-member rows, a shared bias */
      {3, 3, 3, {7, 3, 70}, {7, 70, 150}, {7, 1, 150}, 0, 0, 2, 1}, /* 3 K tiles, 3 column tiles */
      {3, 3, 2, {5, 64, 33}, {5, 33, 20}, {1, 20}, 0, 0, 0, 1},     /* M = 64, the limit */
      {3, 3, 2, {5, 65, 33}, {5, 33, 20}, {1, 20}, 0, 0, 0, 0},     /* M = 65: not fused */
      {3, 3, 3, {9, 12, 16}, {9, 24, 12}, {9, 1, 24}, 1, 1, 0, 1},  /* both operands stored transposed */
      {2, 3, 3, {10, 4}, {6, 4, 1}, {6, 1, 1}, 0, 0, 0, 1},         /* one output column */
      {4, 4, 4, {2, 3, 4, 8}, {2, 3, 8, 5}, {2, 3, 1, 1}, 0, 0, 1, 1}, /* two loop dims, bias broadcast on cols */
      {3, 2, 1, {4, 1, 6}, {6, 3}, {3}, 0, 0, 2, 1},                 /* M = 1, shared weights */
      {3, 3, 1, {6, 24, 40}, {6, 40, 33}, {33}, 0, 0, 1, 1},         /* M = 24: 8 rows per thread */
      {3, 3, 3, {3, 40, 32}, {3, 40, 17}, {3, 1, 17}, 1, 0, 2, 1},   /* M = 32 stored transposed */
      {3, 3, 3, {4, 64, 40}, {4, 16, 40}, {4, 1, 16}, 0, 1, 0, 1},   /* N = 16: a warp per member, w transposed */
      {3, 3, 1, {5, 12, 7}, {5, 12, 2}, {2}, 1, 0, 2, 1},            /* a warp per member, x transposed */
  };
  for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) check_layer(&cases[i], i);
}

/* The population MLP as the benchmarks and the simulation build it (one member's policy under evo_vmap, the
   observations shared): one kernel per layer. */
Test(cuda_fused, population_mlp_runs_one_kernel_per_layer) {
  NEED_GPU();
  evo_graph *m = evo_graph_new();
  evo_node w1 = evo_input(m, "w1", EVO_F32, 2, (int64_t[]){5, 64});
  evo_node b1 = evo_input(m, "b1", EVO_F32, 1, (int64_t[]){64});
  evo_node w2 = evo_input(m, "w2", EVO_F32, 2, (int64_t[]){64, 1});
  evo_node b2 = evo_input(m, "b2", EVO_F32, 1, (int64_t[]){1});
  evo_node obs = evo_input(m, "obs", EVO_F32, 2, (int64_t[]){16, 5});
  evo_node h = evo_tanh(m, evo_add(m, evo_matmul(m, obs, w1), b1));
  evo_output(m, evo_tanh(m, evo_add(m, evo_matmul(m, h, w2), b2)));
  evo_graph *g = evo_vmap(m, 32, (int[]){0, 0, 0, 0, EVO_VMAP_NONE}, NULL);
  cr_assert_not_null(g, "%s", evo_last_error());
  evo_plan *p;
  cr_assert_eq(evo_jit(g, gpu, &p), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_plan_n_kernels(p), 2, "population MLP: %d kernels for 2 layers", evo_plan_n_kernels(p));
  evo_plan_free(p);
  evo_graph_free(g);
  evo_graph_free(m);
}

/* A binary op read only by an activation runs as one kernel (EVO_OP_FUSED_BINARY_UNARY) for the pairs CUDA covers,
   with NumPy broadcasting; other pairs stay two kernels. Values against the CPU. */
Test(cuda_fused, fused_binary_activation_matches_the_cpu) {
  NEED_GPU();
  typedef evo_node (*bin_fn)(evo_graph *, evo_node, evo_node);
  typedef evo_node (*un_fn)(evo_graph *, evo_node);
  const struct {
    bin_fn bin;
    un_fn un;
    int kernels;
  } pairs[] = {{evo_add, evo_relu, 1}, {evo_sub, evo_tanh, 1}, {evo_mul, evo_sigmoid, 1}, {evo_div, evo_exp, 2}};
  const int64_t xs[3] = {7, 100, 33}, bs[2] = {1, 33};
  for (int i = 0; i < (int)(sizeof pairs / sizeof pairs[0]); i++) {
    evo_graph *g = evo_graph_new();
    evo_node x = evo_input(g, "x", EVO_F32, 3, xs), b = evo_input(g, "b", EVO_F32, 2, bs);
    evo_output(g, pairs[i].un(g, pairs[i].bin(g, x, b)));
    const int nds[2] = {3, 2};
    const int64_t *shapes[2] = {xs, bs};
    /* divisors kept away from 0 */
    const int kernels = gpu_matches_cpu(g, 2, nds, shapes, 1e-6f, 500 + 10 * (uint64_t)i,
                                        pairs[i].bin == evo_div ? 2.0f : 0.0f, i);
    cr_assert_eq(kernels, pairs[i].kernels, "pair %d: %d kernels", i, kernels);
    evo_graph_free(g);
  }
}
