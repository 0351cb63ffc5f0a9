/* LM-MA-ES (algos/es/lmmaes.c) against Loshchilov, Glasmachers & Beyer 2019, Algorithm 1, recomputed here in plain
   loops: every asked member is m + sigma d with d the paper's sequential transform of the member's z (the
   evo_algo_normals stream of its key), and one tell moves the mean, p_sigma, every M_i and sigma as the paper's
   update lines do, with the paper's parameters written out again. After generations that filled some or all of the
   m directions, and with an m option smaller than the generation count. M_i are kept in float and the transform
   runs in float (lmmaes.c): the reference runs in double, within float rounding. */
#include <float.h>
#include <stdio.h>
#include <unistd.h>
#include "algo_test_util.h"
#include "safetensors.h"

static void one_generation(int n, int gens_before, int m_opt) {
  float *x0 = malloc(sizeof(float) * (size_t)n);
  for (int i = 0; i < n; i++) x0[i] = (float)(0.2 * cos(i + 0.5));
  const evo_option opt[] = {{"m", m_opt}};
  evo_algo *a = test_algo("lmmaes", n, 0, 0.6, x0, true, 9, opt, 1);
  const int P = evo_algo_pop_size(a), mu = P / 2;
  float *pop = malloc(sizeof(float) * (size_t)(P * n)), fit[64];
  for (int g = 0; g < gens_before; g++) {
    test_ask(a, 0, P, pop);
    for (int r = 0; r < P; r++) fit[r] = (float)(pop[r * n] - 0.5 * pop[r * n + 1] * pop[r * n + 1] + 0.01 * r);
    cr_assert_eq(evo_algo_tell(a, fit), EVO_STATUS_OK);
  }
  int64_t mlen;
  const float *Ms = test_state_entry(a, "lmmaes.M", EVO_F32, &mlen);
  const int m = (int)(mlen / n);
  double *M = malloc(sizeof(double) * (size_t)mlen), *mean = malloc(sizeof(double) * (size_t)n);
  double *ps = malloc(sizeof(double) * (size_t)n), *Z = malloc(sizeof(double) * (size_t)(P * n));
  double *D = malloc(sizeof(double) * (size_t)(P * n)), sigma = test_state_array(a, "lmmaes.sigma", NULL)[0];
  for (int64_t i = 0; i < mlen; i++) M[i] = Ms[i];
  memcpy(mean, test_state_array(a, "lmmaes.mean", NULL), sizeof(double) * (size_t)n);
  memcpy(ps, test_state_array(a, "lmmaes.p_sigma", NULL), sizeof(double) * (size_t)n);
  const int64_t gen = evo_algo_generation(a), k = gen < m ? gen : m;
  test_ask(a, 0, P, pop);
  for (int r = 0; r < P; r++) {
    double *z = Z + (size_t)r * n, *d = D + (size_t)r * n;
    evo_algo_normals_f64(evo_algo_member_key(a, gen, r), n, z);
    memcpy(d, z, sizeof(double) * (size_t)n);
    for (int64_t j = 0; j < k; j++) { /* d <- (1 - c_d,j) d + c_d,j M_j (M_j^T d), c_d,j = 1 / (1.5^(j-1) n) */
      const double cd = fmin(0.5, 1 / (pow(1.5, (double)j) * n));
      double dot = 0;
      for (int i = 0; i < n; i++) dot += M[j * n + i] * d[i];
      for (int i = 0; i < n; i++) d[i] = (1 - cd) * d[i] + cd * dot * M[j * n + i];
    }
    for (int i = 0; i < n; i++) {
      const double want = mean[i] + sigma * d[i];
      cr_assert(fabs(pop[r * n + i] - want) <= 1e-6 * (1 + fabs(want)), "gen %lld member %d [%d]: %.9g want %.9g",
                (long long)gen, r, i, pop[r * n + i], want);
    }
  }
  /* tell: the mu best with w_i = ln(mu + 1/2) - ln i, normalised; mu_w = 1 / sum w^2 */
  for (int r = 0; r < P; r++) fit[r] = (float)sin(2.3 * r + 0.1);
  int order[64];
  for (int r = 0; r < P; r++) order[r] = r;
  for (int i = 0; i < P; i++)
    for (int j = i + 1; j < P; j++)
      if (fit[order[j]] > fit[order[i]]) {
        const int t = order[i];
        order[i] = order[j], order[j] = t;
      }
  double w[64], sw = 0, sw2 = 0;
  for (int i = 0; i < mu; i++) w[i] = log(mu + 0.5) - log(i + 1.0), sw += w[i];
  for (int i = 0; i < mu; i++) w[i] /= sw, sw2 += w[i] * w[i];
  const double muw = 1 / sw2, cs = fmin(1, 2.0 * P / n);
  double psn = 0, *dws = malloc(sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++) {
    double zw = 0, dw = 0;
    for (int q = 0; q < mu; q++) zw += w[q] * Z[(size_t)order[q] * n + i], dw += w[q] * D[(size_t)order[q] * n + i];
    mean[i] += sigma * dw, dws[i] = dw;
    ps[i] = (1 - cs) * ps[i] + sqrt(muw * cs * (2 - cs)) * zw;
    psn += ps[i] * ps[i];
    for (int j = 0; j < m; j++) { /* c_c,j = lambda / (4^(j-1) n) */
      const double cc = fmin(1, P / (pow(4.0, j) * n));
      M[j * n + i] = (1 - cc) * M[j * n + i] + sqrt(muw * cc * (2 - cc)) * zw;
    }
  }
  const double sigma1 = sigma * exp(cs / 2 * (psn / n - 1));
  cr_assert_eq(evo_algo_tell(a, fit), EVO_STATUS_OK);
  const double *m1 = test_state_array(a, "lmmaes.mean", NULL), *ps1 = test_state_array(a, "lmmaes.p_sigma", NULL);
  const float *M1 = test_state_entry(a, "lmmaes.M", EVO_F32, NULL);
  /* The transform runs in float: d_w within (k + 2) float roundings; M_i is rounded to float once. */
  for (int i = 0; i < n; i++) {
    const double tol_m = (double)(k + 2) * FLT_EPSILON * sigma * (1 + fabs(dws[i])) + 1e-12 * (1 + fabs(mean[i]));
    cr_assert(fabs(m1[i] - mean[i]) <= tol_m, "mean[%d] %.17g want %.17g", i, m1[i], mean[i]);
    cr_assert(fabs(ps1[i] - ps[i]) <= 1e-12 * (1 + fabs(ps[i])), "p_sigma[%d] %.17g want %.17g", i, ps1[i], ps[i]);
    for (int j = 0; j < m; j++)
      cr_assert(fabs(M1[j * n + i] - M[j * n + i]) <= FLT_EPSILON * fabs(M[j * n + i]) + 1e-15, "M_%d[%d]", j + 1, i);
  }
  const double s1 = test_state_array(a, "lmmaes.sigma", NULL)[0];
  cr_assert(fabs(s1 - sigma1) <= 1e-12 * sigma1, "sigma %.17g want %.17g", s1, sigma1);
  evo_algo_free(a);
  free(x0), free(pop), free(M), free(mean), free(ps), free(Z), free(D), free(dws);
}

Test(lmmaes, first_generation_is_the_papers) { one_generation(40, 0, 0); }
Test(lmmaes, members_and_tell_with_some_directions_filled) { one_generation(40, 3, 0); }
Test(lmmaes, members_and_tell_with_every_direction_filled) { one_generation(30, 9, 4); }

/* path's state with lmmaes.M widened to double, as versions before M was kept in float wrote it, written to out. */
static void widen_m(const char *path, const char *out) {
  evo_st_reader *r;
  cr_assert_eq(evo_st_open(path, &r), EVO_STATUS_OK, "%s", evo_last_error());
  const int nt = evo_st_count(r);
  evo_st_tensor t[32];
  void *data[32];
  cr_assert_leq(nt, 32);
  for (int i = 0; i < nt; i++) {
    const evo_st_info *in = evo_st_info_at(r, i);
    data[i] = malloc(sizeof(double) * (size_t)in->numel + 1);
    cr_assert_eq(evo_st_read(r, i, data[i], in->end - in->begin), EVO_STATUS_OK);
    evo_dtype dt = in->dtype;
    if (strcmp(in->name, "lmmaes.M") == 0) {
      cr_assert_eq(dt, EVO_F32);
      for (int64_t j = in->numel - 1; j >= 0; j--) ((double *)data[i])[j] = ((float *)data[i])[j]; /* in place */
      dt = EVO_F64;
    }
    t[i] = (evo_st_tensor){in->name, dt, in->ndim, in->shape, data[i]};
  }
  const char *meta[4] = {"format", evo_st_metadata(r, "format"), "algo", evo_st_metadata(r, "algo")};
  cr_assert_eq(evo_st_write(out, t, nt, meta, 2), EVO_STATUS_OK, "%s", evo_last_error());
  for (int i = 0; i < nt; i++) free(data[i]);
  evo_st_close(r);
}

/* A checkpoint from before M was kept in float (lmmaes.M in double) loads, and continues exactly as the float
   checkpoint of the same state does. */
Test(lmmaes, checkpoint_with_m_in_double_loads) {
  enum { n = 50, gens = 6 };
  char path[256], old[256];
  snprintf(path, sizeof path, "/tmp/evoc_test_lmmaes_%d.safetensors", (int)getpid());
  snprintf(old, sizeof old, "/tmp/evoc_test_lmmaes_f64_%d.safetensors", (int)getpid());
  evo_fn *f;
  cr_assert_eq(evo_fn_new(EVO_FN_ELLIPSOID, n, 0, 0, evo_key_from_seed(3), &f), EVO_STATUS_OK);
  float x0[n], pop[64 * n], fit[64];
  for (int i = 0; i < n; i++) x0[i] = 1;
  evo_algo *a = test_algo("lmmaes", n, 0, 0.5, x0, false, 4, NULL, 0);
  for (int g = 0; g < gens; g++) test_generation(a, f, pop, fit);
  cr_assert_eq(evo_algo_save(a, path), EVO_STATUS_OK, "%s", evo_last_error());
  widen_m(path, old);
  evo_algo *b = test_algo("lmmaes", n, 0, 0.5, x0, false, 4, NULL, 0);
  evo_algo *c = test_algo("lmmaes", n, 0, 0.5, x0, false, 4, NULL, 0);
  cr_assert_eq(evo_algo_load(b, path), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_algo_load(c, old), EVO_STATUS_OK, "%s", evo_last_error());
  int64_t len;
  const float *Ma = test_state_entry(a, "lmmaes.M", EVO_F32, &len);
  const float *Mc = test_state_entry(c, "lmmaes.M", EVO_F32, NULL);
  cr_assert_gt(len, 0);
  cr_assert(memcmp(Ma, Mc, sizeof(float) * (size_t)len) == 0, "M read back from double differs");
  for (int g = 0; g < 3; g++) test_generation(b, f, pop, fit), test_generation(c, f, pop, fit);
  const double *mb = test_state_array(b, "lmmaes.mean", NULL), *mc = test_state_array(c, "lmmaes.mean", NULL);
  cr_assert(memcmp(mb, mc, sizeof(double) * n) == 0, "runs resumed from the two checkpoints differ");
  evo_algo_free(a), evo_algo_free(b), evo_algo_free(c), evo_fn_free(f);
  unlink(path), unlink(old);
}
