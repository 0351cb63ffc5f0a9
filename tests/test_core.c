/* Graph building errors, tensors, and jit: buffer reuse, zero allocations per run, peak memory. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>
#include "evoc/backend.h"
#include "evoc/graph.h"
#include "backend_impl.h" /* evo_tensor_read / evo_tensor_write */
#include "evoc/jit.h"

static evo_backend *be;
static void setup(void) { be = evo_backend_cpu_new(NULL); }
static void teardown(void) { evo_backend_free(be); }
TestSuite(core, .init = setup, .fini = teardown);

Test(core, tensor_roundtrip) {
  int64_t s[2] = {2, 3};
  float src[6] = {1, 2, 3, 4, 5, 6}, dst[6] = {0};
  evo_tensor *t = evo_tensor_from_host(be, EVO_F32, 2, s, src);
  cr_assert_not_null(t);
  cr_assert_eq(evo_tensor_numel(t), 6);
  cr_assert_eq(evo_tensor_nbytes(t), 24);
  cr_assert_eq(evo_tensor_copy_to_host(t, dst, sizeof dst), EVO_STATUS_OK);
  cr_assert_arr_eq(dst, src, sizeof src);
  cr_assert_neq(evo_tensor_copy_to_host(t, dst, 8), EVO_STATUS_OK, "short copy must be refused");
  evo_tensor_free(t);
}

/* Part of a tensor to and from the host (a row, a prefix); ranges past the end are refused, not clipped. */
Test(core, tensor_read_write_ranges) {
  float src[6] = {1, 2, 3, 4, 5, 6}, row[3] = {7, 8, 9}, got[6] = {0};
  evo_tensor *t = evo_tensor_from_host(be, EVO_F32, 2, (int64_t[]){2, 3}, src);
  cr_assert_eq(evo_tensor_write(t, 3 * sizeof(float), row, sizeof row), EVO_STATUS_OK);
  cr_assert_eq(evo_tensor_read(t, sizeof(float), got, 4 * sizeof(float)), EVO_STATUS_OK);
  cr_assert(got[0] == 2 && got[1] == 3 && got[2] == 7 && got[3] == 8, "%g %g %g %g", got[0], got[1], got[2], got[3]);
  cr_assert_eq(evo_tensor_read(t, 5 * sizeof(float), got, 2 * sizeof(float)), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "bytes [20, 28) outside a tensor of 24"), "%s", evo_last_error());
  cr_assert_eq(evo_tensor_write(t, 25, row, 0), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert_eq(evo_tensor_write(t, 24, row, 0), EVO_STATUS_OK); /* an empty range at the end */
  evo_tensor_free(t);
}

Test(core, trace_errors_are_reported_not_fatal) {
  evo_graph *g = evo_graph_new();
  int64_t sa[2] = {3, 4}, sb[2] = {5, 6};
  evo_node a = evo_input(g, "a", EVO_F32, 2, sa), b = evo_input(g, "b", EVO_F32, 2, sb);
  evo_node c = evo_matmul(g, a, b);
  cr_assert_eq(c, EVO_NODE_INVALID);
  cr_assert_neq(evo_graph_status(g), EVO_STATUS_OK);
  cr_assert(strstr(evo_graph_error(g), "inner dims") != NULL, "message: %s", evo_graph_error(g));
  /* Later builders propagate the failure instead of crashing. */
  cr_assert_eq(evo_tanh(g, c), EVO_NODE_INVALID);
  cr_assert_neq(evo_output(g, c), EVO_STATUS_OK);
  evo_plan *p;
  cr_assert_neq(evo_jit(g, be, &p), EVO_STATUS_OK);
  evo_graph_free(g);

  g = evo_graph_new();
  a = evo_input(g, "a", EVO_F32, 2, sa);
  int axis = 2;
  cr_assert_eq(evo_sum(g, a, 1, &axis, false), EVO_NODE_INVALID);
  cr_assert(strstr(evo_graph_error(g), "axis") != NULL);
  evo_graph_free(g);
}

Test(core, shapes_inferred) {
  evo_graph *g = evo_graph_new();
  int64_t sx[4] = {7, 28, 28, 1}, sw[4] = {5, 5, 1, 16};
  evo_node x = evo_input(g, "x", EVO_F32, 4, sx), w = evo_input(g, "w", EVO_F32, 4, sw);
  evo_node y = evo_conv2d(g, x, w, 1, 1, EVO_PAD_SAME);
  evo_node z = evo_max_pool2d(g, y, 2, 2, 2, 2, EVO_PAD_VALID);
  const int64_t *s = evo_node_shape(g, z);
  cr_assert_eq(evo_node_ndim(g, z), 4);
  cr_assert(s[0] == 7 && s[1] == 14 && s[2] == 14 && s[3] == 16);
  evo_node v = evo_matmul(g, evo_flatten(g, z, 1), evo_input(g, "d", EVO_F32, 2, (int64_t[]){3136, 10}));
  cr_assert_eq(evo_node_shape(g, v)[1], 10);
  cr_assert_eq(evo_graph_status(g), EVO_STATUS_OK);
  evo_graph_free(g);
}

/* A chain long enough that reuse matters: y = tanh(tanh(...(x W)...)). */
Test(core, jit_reuses_buffers_and_run_allocates_nothing) {
  evo_graph *g = evo_graph_new();
  int64_t sx[2] = {64, 32}, sw[2] = {32, 32};
  evo_node x = evo_input(g, "x", EVO_F32, 2, sx), w = evo_input(g, "w", EVO_F32, 2, sw);
  evo_node h = x;
  for (int i = 0; i < 10; i++) h = evo_tanh(g, evo_matmul(g, h, w));
  cr_assert_eq(evo_output(g, h), EVO_STATUS_OK);
  evo_plan *p;
  cr_assert_eq(evo_jit(g, be, &p), EVO_STATUS_OK, "%s", evo_last_error());
  /* 20 intermediates of 8 KiB each; with reuse at most three are alive at once. */
  cr_assert_eq(evo_plan_n_kernels(p), 20);
  cr_assert_eq(evo_plan_naive_bytes(p) - evo_plan_scratch_bytes(p), 20 * 64 * 32 * 4);
  cr_assert_leq(evo_plan_peak_bytes(p) - evo_plan_scratch_bytes(p), 3 * 64 * 32 * 4, "peak %zu", evo_plan_peak_bytes(p));

  float xs[64 * 32], ws[32 * 32], ys[64 * 32];
  for (int i = 0; i < 64 * 32; i++) xs[i] = (float)((i % 13) - 6) * 0.05f;
  for (int i = 0; i < 32 * 32; i++) ws[i] = (float)((i % 7) - 3) * 0.04f;
  evo_tensor *tx = evo_tensor_from_host(be, EVO_F32, 2, sx, xs);
  evo_tensor *tw = evo_tensor_from_host(be, EVO_F32, 2, sw, ws);
  evo_tensor *ty = evo_tensor_new(be, EVO_F32, 2, sx);
  evo_tensor *in[2] = {tx, tw}, *out[1] = {ty};
  uint64_t before = evo_backend_alloc_count(be);
  for (int r = 0; r < 5; r++) cr_assert_eq(evo_plan_run(p, in, out), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_backend_alloc_count(be), before, "plan_run allocated");

  /* Reference in double. */
  static double hcur[64 * 32], hnext[64 * 32];
  for (int i = 0; i < 64 * 32; i++) hcur[i] = xs[i];
  for (int l = 0; l < 10; l++) {
    for (int r = 0; r < 64; r++)
      for (int c = 0; c < 32; c++) {
        double acc = 0;
        for (int k = 0; k < 32; k++) acc += hcur[r * 32 + k] * ws[k * 32 + c];
        hnext[r * 32 + c] = tanh(acc);
      }
    memcpy(hcur, hnext, sizeof hcur);
  }
  evo_tensor_copy_to_host(ty, ys, sizeof ys);
  for (int i = 0; i < 64 * 32; i++) cr_assert_float_eq(ys[i], hcur[i], 1e-5, "i=%d", i);
  evo_tensor_free(tx);
  evo_tensor_free(tw);
  evo_tensor_free(ty);
  evo_plan_free(p);
  evo_graph_free(g);
}

Test(core, plan_run_checks_tensors) {
  evo_graph *g = evo_graph_new();
  int64_t s[1] = {4}, s2[1] = {5};
  evo_node x = evo_input(g, "x", EVO_F32, 1, s);
  evo_output(g, evo_exp(g, x));
  evo_plan *p;
  cr_assert_eq(evo_jit(g, be, &p), EVO_STATUS_OK);
  evo_tensor *bad = evo_tensor_new(be, EVO_F32, 1, s2), *y = evo_tensor_new(be, EVO_F32, 1, s);
  evo_tensor *in[1] = {bad}, *out[1] = {y};
  cr_assert_eq(evo_plan_run(p, in, out), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "shape") != NULL);
  evo_tensor_free(bad);
  evo_tensor_free(y);
  evo_plan_free(p);
  evo_graph_free(g);
}

Test(core, dead_code_and_aliases) {
  evo_graph *g = evo_graph_new();
  int64_t s[2] = {2, 3};
  evo_node x = evo_input(g, "x", EVO_F32, 2, s);
  evo_exp(g, x); /* dead */
  evo_node r = evo_reshape(g, evo_neg(g, x), 1, (int64_t[]){6});
  evo_output(g, r);
  evo_plan *p;
  cr_assert_eq(evo_jit(g, be, &p), EVO_STATUS_OK);
  cr_assert_eq(evo_plan_n_kernels(p), 1, "only neg runs: exp is dead and reshape aliases");
  float xs[6] = {1, -2, 3, -4, 5, -6}, ys[6];
  evo_tensor *tx = evo_tensor_from_host(be, EVO_F32, 2, s, xs), *ty = evo_tensor_new(be, EVO_F32, 1, (int64_t[]){6});
  evo_tensor *in[1] = {tx}, *out[1] = {ty};
  cr_assert_eq(evo_plan_run(p, in, out), EVO_STATUS_OK);
  evo_tensor_copy_to_host(ty, ys, sizeof ys);
  for (int i = 0; i < 6; i++) cr_assert_eq(ys[i], -xs[i]);
  evo_tensor_free(tx);
  evo_tensor_free(ty);
  evo_plan_free(p);
  evo_graph_free(g);
}
