/* jit hoisting (evo_jit_params.static_inputs, core/jit.c): kernels that depend only on static inputs and
   constants run once and are skipped by later runs until a static input is rebound or evo_plan_static_changed is
   called. The graph is a policy's shape: a flat parameter row per member sliced into a weight matrix and a bias,
   a static-only chain (tanh of the weights), a static-only output, and a non-static tail long enough for the arena
   to reuse space. Every run must equal the plan without hoisting, bit for bit (same kernels, same order), on the
   CPU and on a device (plain runs, and runs inside a recording of the caller's). */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/backend.h"
#include "evoc/graph.h"
#include "evoc/jit.h"
#include "backend_impl.h"
#include "cuda_test_util.h"

enum { M = 3, NP = 25 };

/* y = tanh(x @ tanh(W) + b) ... ; W = w[:, 0:15] as [M, 5, 3], b = w[:, 15:18] as [M, 1, 3]; out2 = exp(w[:, 18:]). */
static evo_graph *policy_graph(void) {
  evo_graph *g = evo_graph_new();
  const int64_t sw[2] = {M, NP}, sx[3] = {M, 4, 5};
  evo_node w = evo_input(g, "w", EVO_F32, 2, sw), x = evo_input(g, "x", EVO_F32, 3, sx);
  evo_node W = evo_tanh(g, evo_reshape(g, evo_slice(g, w, 1, 0, 15), 3, (int64_t[]){M, 5, 3}));
  evo_node b = evo_reshape(g, evo_slice(g, w, 1, 15, 18), 3, (int64_t[]){M, 1, 3});
  evo_node y = evo_tanh(g, evo_add(g, evo_matmul(g, x, W), b));
  for (int k = 0; k < 3; k++) y = evo_add(g, evo_mul(g, y, y), evo_add_scalar(g, y, 0.25f)); /* arena churn */
  evo_output(g, y);
  evo_output(g, evo_exp(g, evo_slice(g, w, 1, 18, NP)));
  cr_assert_eq(evo_graph_status(g), EVO_STATUS_OK, "%s", evo_graph_error(g));
  return g;
}

static evo_tensor *filled(evo_backend *be, int ndim, const int64_t *shape, float seed) {
  evo_tensor *t = evo_tensor_new(be, EVO_F32, ndim, shape);
  cr_assert(t);
  const int64_t n = evo_tensor_numel(t);
  float *h = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) h[i] = sinf(seed + 0.37f * (float)i);
  cr_assert_eq(evo_tensor_copy_from_host(t, h, sizeof(float) * (size_t)n), EVO_STATUS_OK);
  free(h);
  return t;
}

/* Two sets of g's two outputs on be: out[0] for the plan under test, out[1] for the reference. */
static void new_outputs(const evo_graph *g, evo_backend *be, evo_tensor *out[2][2]) {
  for (int r = 0; r < 2; r++)
    for (int j = 0; j < 2; j++) {
      const evo_node o = evo_graph_output(g, j);
      out[r][j] = evo_tensor_new(be, EVO_F32, evo_node_ndim(g, o), evo_node_shape(g, o));
    }
}

/* Runs p and q (the reference plan) on (w, x): both outputs equal bit for bit. */
static void same_as_reference(evo_graph *g, evo_plan *p, evo_plan *q, evo_tensor *w, evo_tensor *x) {
  evo_backend *be = evo_tensor_backend(w);
  evo_tensor *out[2][2];
  new_outputs(g, be, out);
  evo_tensor *in[2] = {w, x};
  cr_assert_eq(evo_plan_run(p, in, out[0]), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_plan_run(q, in, out[1]), EVO_STATUS_OK, "%s", evo_last_error());
  for (int j = 0; j < 2; j++) {
    const int64_t n = evo_tensor_numel(out[0][j]);
    float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
    cr_assert_eq(evo_tensor_copy_to_host(out[0][j], a, sizeof(float) * (size_t)n), EVO_STATUS_OK);
    cr_assert_eq(evo_tensor_copy_to_host(out[1][j], b, sizeof(float) * (size_t)n), EVO_STATUS_OK);
    for (int64_t i = 0; i < n; i++)
      cr_assert(memcmp(&a[i], &b[i], sizeof(float)) == 0, "output %d[%lld]: %.9g, reference %.9g", j, (long long)i,
                a[i], b[i]);
    free(a), free(b);
  }
  for (int r = 0; r < 2; r++) evo_tensor_free(out[r][0]), evo_tensor_free(out[r][1]);
}

Test(jit_hoist, static_kernels_run_once_until_the_parameters_change) {
  evo_backend *be = evo_backend_cpu_new(NULL);
  evo_graph *g = policy_graph();
  evo_jit_params jp = evo_jit_default_params();
  jp.static_inputs = 1; /* w */
  evo_plan *p, *q;
  cr_assert_eq(evo_jit_with(g, be, &jp, &p), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_jit(g, be, &q), EVO_STATUS_OK, "%s", evo_last_error());
  int kernels, runs;
  evo_plan_static_stats(q, &kernels, &runs);
  cr_assert_eq(kernels, 0, "no static inputs, nothing hoisted");
  evo_plan_static_stats(p, &kernels, &runs);
  cr_assert_eq(kernels, 5, "hoisted: 3 slices, tanh(W), exp; got %d", kernels);
  cr_assert_eq(evo_plan_n_kernels(p), evo_plan_n_kernels(q));

  const int64_t sw[2] = {M, NP}, sx[3] = {M, 4, 5};
  evo_tensor *w = filled(be, 2, sw, 0.1f), *w2 = filled(be, 2, sw, 2.0f), *x = filled(be, 3, sx, 0.7f);
  same_as_reference(g, p, q, w, x);
  evo_plan_static_stats(p, NULL, &runs);
  cr_assert_eq(runs, 1);
  for (int k = 0; k < 3; k++) { /* new observations, same parameters: the hoisted kernels are skipped */
    evo_tensor_free(x);
    x = filled(be, 3, sx, 1.3f + (float)k);
    same_as_reference(g, p, q, w, x);
  }
  evo_plan_static_stats(p, NULL, &runs);
  cr_assert_eq(runs, 1, "hoisted kernels ran %d times", runs);

  float *h = evo_tensor_data(w); /* new parameters in place, announced */
  for (int i = 0; i < M * NP; i++) h[i] = cosf(0.5f * (float)i);
  evo_plan_static_changed(p);
  same_as_reference(g, p, q, w, x);
  evo_plan_static_stats(p, NULL, &runs);
  cr_assert_eq(runs, 2);
  same_as_reference(g, p, q, w2, x); /* another parameter tensor: recomputed without being told */
  evo_plan_static_stats(p, NULL, &runs);
  cr_assert_eq(runs, 3);

  evo_tensor_free(w), evo_tensor_free(w2), evo_tensor_free(x);
  evo_plan_free(p), evo_plan_free(q);
  evo_graph_free(g);
  evo_backend_free(be);
}

/* Runs p inside a recording of the caller's (as a simulation chunk records its steps), launches it, and compares
   with the reference plan q run plainly. */
static void recorded_same_as_reference(evo_graph *g, evo_plan *p, evo_plan *q, evo_tensor *w, evo_tensor *x) {
  evo_backend *be = evo_tensor_backend(w);
  const evo_backend_iface *f = be->iface;
  evo_tensor *out[2][2];
  new_outputs(g, be, out);
  evo_tensor *in[2] = {w, x};
  void *exec = NULL;
  cr_assert_eq(f->graph_begin(be->ctx), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_plan_run(p, in, out[0]), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_neq(evo_plan_run_static(p, in), EVO_STATUS_OK, "refused while recording");
  cr_assert_eq(f->graph_end(be->ctx, 1, &exec), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(f->graph_launch(be->ctx, exec), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_plan_run(q, in, out[1]), EVO_STATUS_OK, "%s", evo_last_error());
  for (int j = 0; j < 2; j++) {
    const int64_t n = evo_tensor_numel(out[0][j]);
    float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
    cr_assert_eq(evo_tensor_copy_to_host(out[0][j], a, sizeof(float) * (size_t)n), EVO_STATUS_OK);
    cr_assert_eq(evo_tensor_copy_to_host(out[1][j], b, sizeof(float) * (size_t)n), EVO_STATUS_OK);
    for (int64_t i = 0; i < n; i++)
      cr_assert(memcmp(&a[i], &b[i], sizeof(float)) == 0, "recorded output %d[%lld]: %.9g, reference %.9g", j,
                (long long)i, a[i], b[i]);
    free(a), free(b);
  }
  f->graph_destroy(be->ctx, exec);
  for (int r = 0; r < 2; r++) evo_tensor_free(out[r][0]), evo_tensor_free(out[r][1]);
}

/* On a device the hoisted kernels run outside the plan's CUDA Graph, and outside a caller's recording once
   evo_plan_run_static has run them: the recordings hold only the rest. */
Test(jit_hoist, device_plans_record_without_the_hoisted_kernels) {
  evo_backend *be = cuda_or_skip();
  evo_graph *g = policy_graph();
  evo_jit_params jp = evo_jit_default_params();
  jp.static_inputs = 1;
  evo_plan *p, *q;
  cr_assert_eq(evo_jit_with(g, be, &jp, &p), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_jit(g, be, &q), EVO_STATUS_OK, "%s", evo_last_error());
  int kernels, runs;
  evo_plan_static_stats(p, &kernels, NULL);
  cr_assert_eq(kernels, 5);
  const int64_t sw[2] = {M, NP}, sx[3] = {M, 4, 5};
  evo_tensor *w = filled(be, 2, sw, 0.1f), *x = filled(be, 3, sx, 0.7f), *x2 = filled(be, 3, sx, 1.9f);
  same_as_reference(g, p, q, w, x);
  same_as_reference(g, p, q, w, x);
  evo_plan_static_stats(p, NULL, &runs);
  cr_assert_eq(runs, 1);
  float h[M * NP]; /* new parameters in place: the hoisted kernels run again */
  for (int i = 0; i < M * NP; i++) h[i] = cosf(0.5f * (float)i);
  cr_assert_eq(evo_tensor_copy_from_host(w, h, sizeof h), EVO_STATUS_OK);
  evo_plan_static_changed(p);
  same_as_reference(g, p, q, w, x);
  evo_plan_static_stats(p, NULL, &runs);
  cr_assert_eq(runs, 2);
  recorded_same_as_reference(g, p, q, w, x2); /* current: the caller's recording leaves them out */
  for (int i = 0; i < M * NP; i++) h[i] = sinf(0.3f * (float)i) - 0.2f;
  cr_assert_eq(evo_tensor_copy_from_host(w, h, sizeof h), EVO_STATUS_OK);
  evo_plan_static_changed(p); /* not current: recorded with the rest, so each replay computes them */
  recorded_same_as_reference(g, p, q, w, x);
  evo_tensor *in[2] = {w, x};
  cr_assert_eq(evo_plan_run_static(p, in), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_plan_run_static(p, in), EVO_STATUS_OK, "%s", evo_last_error()); /* current: nothing to do */
  evo_plan_static_stats(p, NULL, &runs);
  cr_assert_eq(runs, 3);
  recorded_same_as_reference(g, p, q, w, x2);
  evo_tensor_free(w), evo_tensor_free(x), evo_tensor_free(x2);
  evo_plan_free(p), evo_plan_free(q);
  evo_graph_free(g);
  evo_backend_free(be);
}

/* One thread driving two GPUs (two emulated ones in emulator builds): a plan's kernels go to its backend's device
   whatever device the thread last used. Hoisted kernels run outside the plan's CUDA Graph, straight from
   evo_plan_run_static, right after the thread worked on the other GPU; the results equal the reference plan's. */
Test(jit_hoist, kernels_run_on_the_plans_gpu_whatever_is_current) {
  setenv("EVO_EMU_DEVICES", "2", 1); /* the emulator's GPU count; real CUDA ignores it */
  if (evo_cuda_device_count() < 2) cr_skip_test("needs two GPUs, this machine has %d", evo_cuda_device_count());
  evo_backend *b0, *b1;
  cr_assert_eq(evo_backend_cuda_new(0, &b0), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_backend_cuda_new(1, &b1), EVO_STATUS_OK, "%s", evo_last_error());
  evo_graph *g = policy_graph();
  evo_jit_params jp = evo_jit_default_params();
  jp.static_inputs = 1; /* w */
  evo_plan *p, *q;
  cr_assert_eq(evo_jit_with(g, b0, &jp, &p), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_jit(g, b0, &q), EVO_STATUS_OK, "%s", evo_last_error());
  const int64_t sw[2] = {M, NP}, sx[3] = {M, 4, 5};
  evo_tensor *w = filled(b0, 2, sw, 0.5f), *x = filled(b0, 3, sx, 1.5f);
  evo_tensor *in[2] = {w, x};
  for (int k = 0; k < 2; k++) {
    evo_tensor *elsewhere = filled(b1, 2, sw, 2.5f); /* the thread's current device is now GPU 1 */
    if (k == 1) evo_plan_static_changed(p);
    cr_assert_eq(evo_plan_run_static(p, in), EVO_STATUS_OK, "%s", evo_last_error());
    int kernels, runs;
    evo_plan_static_stats(p, &kernels, &runs);
    cr_assert_eq(runs, k + 1);
    same_as_reference(g, p, q, w, x);
    evo_tensor_free(elsewhere);
  }
  evo_tensor_free(w), evo_tensor_free(x);
  evo_plan_free(p), evo_plan_free(q);
  evo_graph_free(g);
  evo_backend_free(b1), evo_backend_free(b0);
}
