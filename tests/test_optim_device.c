/* The optimizers on the device (algos/optim/optim_cuda.cu, used by gradient training with resident parameters):
   every elementwise rule gives the host's bits for parameters and moments, step after step, with schedules,
   Adam's counting and a clipping factor; the global sum of squares is close to the exact one and the same on every
   call. GPU tests: they skip with the reason where no CUDA device is usable, and run on the emulated device in
   emulator builds (tests/cuda_emu). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "backend_impl.h"
#include "cuda_test_util.h"
#include "evoc/optim.h"
#include "optim/optim_math.h"
#ifdef EVOC_HAVE_CUDA
#include "optim/optim_cuda.h"
#endif

#ifdef EVOC_HAVE_CUDA
enum { N = 5003, STEPS = 7 };

static float grad_at(int step, int64_t i) { return 0.02f * (float)((i * 37 + step * 11) % 29 - 14) + 1e-4f * step; }

/* p's optimizer on the host (evo_optim_step) and on the device (evo_optim_cuda_step with the coefficients of a twin
   evo_optim), STEPS steps; the last with clipping factor `scale`, which the host applies as gradtrain does. */
static void same_trajectory(evo_backend *be, evo_optim_params p, double scale) {
  evo_optim *host, *twin;
  cr_assert_eq(evo_optim_new(&p, N, &host), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_optim_new(&p, N, &twin), EVO_STATUS_OK, "%s", evo_last_error());
  float *ph = malloc(sizeof(float) * N), *pd = malloc(sizeof(float) * N), *g = malloc(sizeof(float) * N);
  double *md = calloc(N, sizeof(double)), *vd = calloc(N, sizeof(double));
  for (int64_t i = 0; i < N; i++) ph[i] = 0.1f * (float)(i % 17) - 0.8f;
  const int64_t shape[1] = {N};
  evo_tensor *tp = evo_tensor_new(be, EVO_F32, 1, shape), *tg = evo_tensor_new(be, EVO_F32, 1, shape);
  evo_tensor *tm = evo_tensor_new(be, EVO_F64, 1, shape), *tv = evo_tensor_new(be, EVO_F64, 1, shape);
  cr_assert(tp && tg && tm && tv);
  cr_assert_eq(evo_tensor_copy_from_host(tp, ph, sizeof(float) * N), EVO_STATUS_OK);
  cr_assert_eq(evo_tensor_copy_from_host(tm, md, sizeof(double) * N), EVO_STATUS_OK);
  cr_assert_eq(evo_tensor_copy_from_host(tv, vd, sizeof(double) * N), EVO_STATUS_OK);
  for (int s = 0; s < STEPS; s++) {
    const double sc = s == STEPS - 1 ? scale : 1;
    for (int64_t i = 0; i < N; i++) g[i] = grad_at(s, i);
    cr_assert_eq(evo_tensor_copy_from_host(tg, g, sizeof(float) * N), EVO_STATUS_OK);
    if (sc != 1)
      for (int64_t i = 0; i < N; i++) g[i] = (float)(g[i] * sc);
    cr_assert_eq(evo_optim_step(host, ph, g), EVO_STATUS_OK);
    evo_optim_coef c;
    cr_assert(evo_optim_coef_next(twin, &c));
    cr_assert_eq(evo_backend_use(be), EVO_STATUS_OK);
    cr_assert_eq(evo_optim_cuda_step(evo_backend_stream(be), &c, sc, N, evo_tensor_buffer(tp), evo_tensor_buffer(tg),
                                     evo_tensor_buffer(tm), evo_tensor_buffer(tv)),
                 EVO_STATUS_OK, "%s", evo_last_error());
    evo_optim_advance(twin);
    cr_assert_eq(evo_optim_steps(twin), evo_optim_steps(host));
  }
  cr_assert_eq(evo_tensor_copy_to_host(tp, pd, sizeof(float) * N), EVO_STATUS_OK);
  cr_assert_eq(evo_tensor_copy_to_host(tm, md, sizeof(double) * N), EVO_STATUS_OK);
  cr_assert_eq(evo_tensor_copy_to_host(tv, vd, sizeof(double) * N), EVO_STATUS_OK);
  const char *kind = evo_optim_kind_name(p.kind);
  for (int64_t i = 0; i < N; i++)
    cr_assert(memcmp(&ph[i], &pd[i], sizeof(float)) == 0, "%s: parameter %lld host %.9g device %.9g", kind,
              (long long)i, ph[i], pd[i]);
  for (int k = 0; k < evo_optim_state_count(host) - 1; k++) { /* the moments (the counter is last) */
    const char *name;
    double *data;
    int64_t len;
    evo_optim_state_at(host, k, &name, &data, &len);
    const double *dev = k == 0 ? md : vd;
    cr_assert_eq(len, N);
    cr_assert(memcmp(data, dev, sizeof(double) * N) == 0, "%s: %s differs", kind, name);
  }
  evo_tensor_free(tp), evo_tensor_free(tg), evo_tensor_free(tm), evo_tensor_free(tv);
  free(ph), free(pd), free(g), free(md), free(vd);
  evo_optim_free(host), evo_optim_free(twin);
}
#endif

Test(optim_device, elementwise_rules_give_the_host_bits) {
  evo_backend *be = cuda_or_skip();
#ifdef EVOC_HAVE_CUDA
  for (int kind = EVO_OPTIM_SGD; kind <= EVO_OPTIM_ADAMW; kind++) {
    evo_optim_params p = evo_optim_default_params((evo_optim_kind)kind);
    same_trajectory(be, p, 1);
    same_trajectory(be, p, 0.37);
    p.schedule = EVO_SCHEDULE_COSINE, p.decay_steps = 5, p.alpha = 0.1, p.warmup_steps = 2;
    if (kind >= EVO_OPTIM_ADAM) p.adam_count_every = 3;
    same_trajectory(be, p, 1);
  }
#endif
  evo_backend_free(be);
}

Test(optim_device, clipup_has_no_elementwise_rule) {
  evo_optim_params p = evo_optim_default_params(EVO_OPTIM_CLIPUP);
  evo_optim *o;
  cr_assert_eq(evo_optim_new(&p, 3, &o), EVO_STATUS_OK);
  evo_optim_coef c;
  cr_assert(!evo_optim_coef_next(o, &c), "ClipUp's norms are global: gradtrain keeps it on the host");
  evo_optim_free(o);
}

Test(optim_device, sum_of_squares_is_close_and_the_same_every_time) {
  evo_backend *be = cuda_or_skip();
#ifdef EVOC_HAVE_CUDA
  const int64_t ns[] = {1, 300, EVO_OPTIM_CUDA_SPAN, 3 * EVO_OPTIM_CUDA_SPAN + 17};
  for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
    const int64_t n = ns[t], np = evo_optim_cuda_parts(n);
    float *g = malloc(sizeof(float) * (size_t)n);
    double want = 0;
    for (int64_t i = 0; i < n; i++) g[i] = grad_at(3, i) * (1 + (float)(i % 5)), want += (double)g[i] * g[i];
    evo_tensor *tg = evo_tensor_new(be, EVO_F32, 1, (int64_t[]){n});
    evo_tensor *part = evo_tensor_new(be, EVO_F64, 1, (int64_t[]){np}), *out = evo_tensor_new(be, EVO_F64, 0, NULL);
    cr_assert(tg && part && out);
    cr_assert_eq(evo_tensor_copy_from_host(tg, g, sizeof(float) * (size_t)n), EVO_STATUS_OK);
    double got[2];
    for (int k = 0; k < 2; k++) {
      void *stream = evo_backend_stream(be);
      cr_assert_eq(evo_optim_cuda_sumsq_parts(stream, evo_tensor_buffer(tg), n, evo_tensor_buffer(part)),
                   EVO_STATUS_OK, "%s", evo_last_error());
      cr_assert_eq(evo_optim_cuda_sum(stream, evo_tensor_buffer(part), np, evo_tensor_buffer(out)), EVO_STATUS_OK,
                   "%s", evo_last_error());
      cr_assert_eq(evo_tensor_read(out, 0, &got[k], sizeof(double)), EVO_STATUS_OK);
    }
    cr_assert(fabs(got[0] - want) <= 1e-12 * want, "n %lld: %.17g, exact %.17g", (long long)n, got[0], want);
    cr_assert(memcmp(&got[0], &got[1], sizeof(double)) == 0, "n %lld: %.17g then %.17g", (long long)n, got[0],
              got[1]);
    evo_tensor_free(tg), evo_tensor_free(part), evo_tensor_free(out);
    free(g);
  }
#endif
  evo_backend_free(be);
}
