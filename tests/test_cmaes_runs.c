/* CMA-ES and sep-CMA-ES runs: convergence with fixed seeds at evaluation limits no looser than pycma's own
   asserted ones, IPOP / BIPOP restarts, and bit-identical save / load / continue (including across restarts);
   Cholesky-CMA-ES's stop criteria and restarts, which it shares.
   Parameters and the update itself: tests/test_cmaes.c. */
#include <criterion/criterion.h>
#include "cmaes_test_util.h"

static void setup(void) { be = evo_backend_cpu_new(NULL); }
static void teardown(void) { evo_backend_free(be); }
TestSuite(cmaes, .init = setup, .fini = teardown);

/* ---- convergence (fixed seeds; pycma's asserted limits) ---- */

static int64_t median_i64(int64_t *v, int k) {
  for (int i = 0; i < k; i++)
    for (int j = i + 1; j < k; j++)
      if (v[j] < v[i]) {
        int64_t t = v[i];
        v[i] = v[j], v[j] = t;
      }
  return v[k / 2];
}

static void converge(const char *name, objfn f, int n, double x0, double sigma, double target, int64_t limit,
                     const evo_option *opt, int n_opt, int seeds, const char *what) {
  int64_t ev[16];
  for (int s = 0; s < seeds; s++) {
    evo_algo *a = make_algo(name, n, x0, sigma, 0, 1000 + s, opt, n_opt);
    ev[s] = evals_to_target(a, f, target, limit);
    cr_assert(ev[s] > 0, "%s seed %d: target %g not reached within %lld evaluations", what, 1000 + s, target,
              (long long)limit);
    evo_algo_free(a);
  }
  int64_t med = median_i64(ev, seeds);
  cr_log_info("%s: evaluations median %lld, max %lld over %d seeds (limit %lld)", what, (long long)med,
              (long long)ev[seeds - 1], seeds, (long long)limit);
}

Test(cmaes, converges_sphere_10d) { converge("cmaes", f_sphere, 10, 1, 1, 1e-10, 2000, NULL, 0, 5, "sphere 10-D"); }

Test(cmaes, converges_ellipsoid_7d_under_pycma_limit) {
  /* pycma logger.py doctest: cma.fmin(cma.ff.elli, 7 * [0.1], 1) ... assert res[1] < 1e-9, res[2] < 4400. */
  converge("cmaes", f_elli, 7, 0.1, 1, 1e-9, 4400, NULL, 0, 5, "ellipsoid 7-D");
}

Test(cmaes, converges_rosenbrock_10d_under_pycma_limit) {
  converge("cmaes", f_rosen, 10, 0.1, 0.3, 1e-12, 8000, NULL, 0, 5, "Rosenbrock 10-D");
}

Test(cmaes, pycma_cmu_variant_converges) {
  static const evo_option o[] = {{"pycma_cmu", 1}};
  converge("cmaes", f_elli, 7, 0.1, 1, 1e-9, 4400, o, 1, 5, "ellipsoid 7-D, pycma c_mu");
}

Test(cmaes, converges_without_active_weights) {
  static const evo_option o[] = {{"active", 0}};
  converge("cmaes", f_elli, 7, 0.1, 1, 1e-9, 6000, o, 1, 3, "ellipsoid 7-D, passive");
}

Test(cmaes, ipop_solves_rastrigin_5d) {
  /* 21/21 seeds solve it in 2,608..34,904 evaluations (median 19,720); the budget leaves room. */
  static const evo_option o[] = {{"restarts", 1}};
  int64_t ev[5];
  for (int s = 0; s < 5; s++) {
    evo_algo *a = make_algo("cmaes", 5, 3, 2, 0, 1 + s, o, 1);
    ev[s] = evals_to_target(a, f_rastrigin, 1e-8, 60000);
    evo_algo_stats stats;
    evo_algo_stats_get(a, &stats);
    cr_assert(ev[s] > 0, "seed %d: Rastrigin not solved (restarts %d)", 1 + s, stats.restarts);
    cr_assert_eq(evo_algo_pop_size(a), 8 << stats.restarts, "IPOP doubles lambda");
    evo_algo_free(a);
  }
  cr_log_info("IPOP Rastrigin 5-D: median %lld evaluations", (long long)median_i64(ev, 5));
}

Test(cmaes, restarts_reset_the_run_and_stop_when_exhausted) {
  /* Sphere to convergence: TolFun/TolX fire; IPOP doubles lambda, resets sigma, keeps the best member. */
  static const evo_option o[] = {{"restarts", 1}, {"max_restarts", 2}};
  evo_algo *a = make_algo("cmaes", 4, 1, 1, 0, 4, o, 2);
  cmaes_state *s = st_of(a);
  int last = 0, P0 = evo_algo_pop_size(a);
  for (int gen = 0; gen < 20000 && !a->stop; gen++) {
    step(a, f_sphere);
    if (a->restarts != last) {
      last = a->restarts;
      cr_assert_eq(evo_algo_pop_size(a), P0 << last);
      cr_assert_eq(s->sc.sigma, 1.0);
      cr_assert_eq(s->sc.run_gen, 0);
      cr_assert(s->sc.has_best && s->sc.best_f > -1e-15, "best kept across restarts");
      cr_assert(((int)s->sc.last_stop & (CMAES_STOP_TOLFUN | CMAES_STOP_TOLX | CMAES_STOP_EQUALFUN)) != 0,
                "stop reason %g", s->sc.last_stop);
    }
  }
  evo_algo_stats stats;
  evo_algo_stats_get(a, &stats);
  cr_assert(stats.stop && stats.restarts == 2, "stop %d restarts %d", stats.stop, stats.restarts);
  evo_algo_free(a);
  /* No restart strategy: the first criterion sets stop. */
  a = make_algo("cmaes", 4, 1, 1, 0, 4, NULL, 0);
  for (int gen = 0; gen < 20000 && !a->stop; gen++) step(a, f_sphere);
  cr_assert(a->stop && a->restarts == 0);
  evo_algo_free(a);
}

Test(cmaes, bipop_interleaves_regimes) {
  static const evo_option o[] = {{"restarts", 2}, {"max_restarts", 12}};
  evo_algo *a = make_algo("cmaes", 5, 3, 2, 0, 6, o, 2);
  cmaes_state *s = st_of(a);
  int last = 0, n_small = 0, n_large = 0, solved = 0;
  const int lam_def = evo_algo_pop_size(a);
  for (int gen = 0; gen < 200000 && !a->stop && !solved; gen++) {
    solved = step(a, f_rastrigin) <= 1e-8;
    if (a->restarts != last) {
      last = a->restarts;
      int P = evo_algo_pop_size(a);
      if (s->sc.regime == 1) {
        n_large++;
        cr_assert_eq(P, lam_def << (int)s->sc.n_large, "large run lambda");
        cr_assert_eq(s->sc.sigma0, 2.0);
        cr_assert_eq(s->sc.run_maxgen, 0);
      } else {
        n_small++;
        cr_assert(P >= lam_def && P <= lam_def << (int)s->sc.n_large, "small run lambda %d", P);
        cr_assert(s->sc.sigma0 <= 2.0 && s->sc.sigma0 >= 0.02, "small run sigma0 %g", s->sc.sigma0);
        cr_assert(s->sc.run_maxgen > 0);
      }
      cr_assert(s->sc.budget_small >= 1 || s->sc.budget_large >= 1);
    }
  }
  cr_assert(n_large >= 1 && n_small >= 1, "regimes: %d large, %d small", n_large, n_small);
  cr_log_info("BIPOP Rastrigin 5-D: solved %d after %d large and %d small runs, %lld evaluations", solved, n_large,
              n_small, (long long)a->evals);
  evo_algo_free(a);
}

Test(cmaes, sep_cmaes_on_separable_ellipsoid_30d) {
  /* Diagonal covariance learns a separable problem ~ n times faster per evaluation than full CMA. */
  int64_t sep = 0, full = 0;
  for (int s = 0; s < 3; s++) {
    evo_algo *a = make_algo("sep_cmaes", 30, 1, 1, 0, 50 + s, NULL, 0);
    int64_t e = evals_to_target(a, f_elli, 1e-8, 40000);
    cr_assert(e > 0, "sep-CMA seed %d: not solved", 50 + s);
    sep += e;
    evo_algo_free(a);
  }
  evo_algo *a = make_algo("cmaes", 30, 1, 1, 0, 50, NULL, 0);
  full = evals_to_target(a, f_elli, 1e-8, 200000);
  evo_algo_free(a);
  cr_assert(full > 0);
  cr_log_info("30-D separable ellipsoid to 1e-8: sep-CMA mean %lld evaluations, full CMA %lld", (long long)sep / 3,
              (long long)full);
  cr_assert(sep / 3 * 2 < full, "sep %lld vs full %lld", (long long)sep / 3, (long long)full);
}

/* ---- save / load / continue ---- */

static void tmp_path(char *buf, size_t cap, const char *tag) {
  snprintf(buf, cap, "/tmp/evoc_test_cmaes_%d_%s.safetensors", (int)getpid(), tag);
}

/* Runs `a` for `first` generations, saves, runs `more`; a fresh instance loads and runs `more`; populations asked
   and the final states must agree bit for bit. */
static void resume_case(const char *name, int n, double x0, double sigma, const evo_option *o, int n_o, objfn f,
                        int first, int more, int save_between_ask_and_tell, int min_new_restarts) {
  char path[256];
  tmp_path(path, sizeof path, name);
  evo_algo *a = make_algo(name, n, x0, sigma, 0, 21, o, n_o);
  for (int g = 0; g < first; g++) step(a, f);
  if (save_between_ask_and_tell) {
    int P;
    free(ask_all(a, &P));
  }
  cr_assert_eq(evo_algo_save(a, path), EVO_STATUS_OK, "save: %s", evo_last_error());
  evo_algo *b = make_algo(name, n, x0, sigma, 0, 21, o, n_o);
  cr_assert_eq(evo_algo_load(b, path), EVO_STATUS_OK, "load: %s", evo_last_error());
  assert_same_state(a, b, "right after load");
  const int restarts_at_save = a->restarts;
  for (int g = 0; g < more; g++) {
    int Pa, Pb;
    float *xa = ask_all(a, &Pa), *xb = ask_all(b, &Pb);
    cr_assert_eq(Pa, Pb);
    cr_assert_eq(memcmp(xa, xb, sizeof(float) * (size_t)(Pa * n)), 0, "%s: generation %d after load differs", name, g);
    float *fit = malloc(sizeof(float) * (size_t)Pa);
    for (int i = 0; i < Pa; i++) fit[i] = (float)f(xa + (size_t)i * n, n);
    evo_algo_tell(a, fit);
    evo_algo_tell(b, fit);
    free(fit);
    free(xa);
    free(xb);
  }
  assert_same_state(a, b, "after continuing");
  cr_assert(a->restarts >= restarts_at_save + min_new_restarts, "%s: %d restarts at the save, %d at the end", name,
            restarts_at_save, a->restarts);
  evo_algo_stats sa, sb;
  evo_algo_stats_get(a, &sa);
  evo_algo_stats_get(b, &sb);
  cr_assert(sa.evaluations == sb.evaluations && sa.best_fitness == sb.best_fitness && sa.restarts == sb.restarts);
  unlink(path);
  evo_algo_free(a);
  evo_algo_free(b);
}

Test(cmaes, save_load_continue_is_bit_identical) {
  resume_case("cmaes", 12, 0.5, 0.5, NULL, 0, f_elli, 37, 45, 0, 0);
  resume_case("cmaes", 12, 0.5, 0.5, NULL, 0, f_elli, 20, 30, 1, 0);
  resume_case("sep_cmaes", 20, 0.5, 0.5, NULL, 0, f_elli, 33, 40, 0, 0);
}

/* Generations until the second restart on the 4-D Rastrigin (the runs of resume_case: seed 21, x0 3, sigma0 2). */
static int gens_to_two_restarts(const char *name, const evo_option *o, int n_o) {
  evo_algo *probe = make_algo(name, 4, 3, 2, 0, 21, o, n_o);
  int g = 0;
  while (probe->restarts < 2 && g < 20000) step(probe, f_rastrigin), g++;
  cr_assert(probe->restarts >= 2, "%s: need restarts before the save point", name);
  evo_algo_free(probe);
  return g;
}

Test(cmaes, save_load_continue_across_restarts) {
  /* IPOP and BIPOP on Rastrigin: the save falls after restarts (changed lambda, sigma0, budgets) and the
     continuation crosses more restarts. */
  static const evo_option ipop[] = {{"restarts", 1}, {"restart_box", 2}};
  static const evo_option bipop[] = {{"restarts", 2}};
  const int g = gens_to_two_restarts("cmaes", ipop, 2);
  resume_case("cmaes", 4, 3, 2, ipop, 2, f_rastrigin, g + 5, 300, 0, 1);
  resume_case("cmaes", 4, 3, 2, bipop, 1, f_rastrigin, g + 5, 300, 1, 1);
  resume_case("sep_cmaes", 4, 3, 2, ipop, 2, f_rastrigin, g + 5, 300, 0, 1);
}

/* Cholesky-CMA-ES has cmaes' stop criteria and restarts (its covariance as a Cholesky factor): IPOP solves the
   5-D Rastrigin (seeds 1-3), doubling lambda and resetting sigma, and then recommends the best-ever member; without
   a restart strategy the first criterion sets stop and the mean is the recommendation; a save / load / continue
   across restarts is bit-identical, for IPOP and BIPOP. */
Test(cmaes, cholesky_cmaes_stops_and_restarts) {
  static const evo_option ipop[] = {{"restarts", 1}, {"restart_box", 2}};
  static const evo_option bipop[] = {{"restarts", 2}};
  for (int seed = 1; seed <= 3; seed++) {
    evo_algo *a = make_algo("cholesky_cmaes", 5, 3, 2, 0, (uint64_t)seed, ipop, 1);
    const int64_t ev = evals_to_target(a, f_rastrigin, 1e-8, 60000);
    cr_assert(ev > 0, "seed %d: Rastrigin not solved (restarts %d)", seed, a->restarts);
    cr_assert_eq(evo_algo_pop_size(a), 8 << a->restarts, "IPOP doubles lambda");
    cr_assert_eq(st_of(a)->sc.sigma0, 2.0);
    float best[5]; /* after a restart the recommendation is the best-ever member, not the fresh run's mean */
    cr_assert_eq(evo_algo_best(a, best), EVO_STATUS_OK);
    cr_assert(a->restarts > 0 && memcmp(best, st_of(a)->best_x, sizeof best) == 0, "best is not the best-ever member");
    cr_log_info("cholesky_cmaes IPOP Rastrigin 5-D, seed %d: %lld evaluations, %d restarts", seed, (long long)ev,
                a->restarts);
    evo_algo_free(a);
  }
  evo_algo *a = make_algo("cholesky_cmaes", 4, 1, 1, 0, 4, NULL, 0);
  int gen = 0;
  for (; gen < 20000 && !a->stop; gen++) step(a, f_sphere);
  cr_assert(a->stop && a->restarts == 0, "no stop in %d generations", gen);
  float best[4]; /* without restarts: the mean, as Krause et al. */
  cr_assert_eq(evo_algo_best(a, best), EVO_STATUS_OK);
  for (int j = 0; j < 4; j++) cr_assert_eq(best[j], (float)st_of(a)->mean[j]);
  cr_assert(((int)st_of(a)->sc.stop_flags & (CMAES_STOP_TOLFUN | CMAES_STOP_TOLX | CMAES_STOP_EQUALFUN)) != 0,
            "stop reason %g", st_of(a)->sc.stop_flags);
  evo_algo_free(a);
  const int g = gens_to_two_restarts("cholesky_cmaes", ipop, 2);
  resume_case("cholesky_cmaes", 4, 3, 2, ipop, 2, f_rastrigin, g + 5, 300, 0, 1);
  resume_case("cholesky_cmaes", 4, 3, 2, bipop, 1, f_rastrigin, g + 5, 300, 1, 1);
  resume_case("cholesky_cmaes", 12, 0.5, 0.5, NULL, 0, f_elli, 37, 45, 0, 0);
}
