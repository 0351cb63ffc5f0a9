/* PGPE, OpenES and ARS specifics: PGPE's update against its formulas and its stdev bound; OpenES's gradient
   estimate on a linear function; ARS's top-b selection and step; argument checks; convergence with fixed seeds to
   stated targets within stated generation budgets. State arrays are read through the strategy's registration
   list (the same one the checkpoints use). */
#include <omp.h>

#include "algo_test_util.h"
#include "algo_impl.h"
#include "evoc/optim.h"
#include "normal_math.h"
#include "rng_math.h"

/* Centered ranks of distinct values, as EvoJAX's process_scores: rank / (n - 1) - 0.5. */
static void ranks(const float *f, int n, double *u) {
  for (int i = 0; i < n; i++) {
    int below = 0;
    for (int j = 0; j < n; j++) below += f[j] < f[i];
    u[i] = (double)below / (n - 1) - 0.5;
  }
}

/* z-scores of finite values, population std (evosax's z_score_fitness_shaping) */
static void zscores(const float *f, int n, double *u) {
  double m = 0, v = 0;
  for (int i = 0; i < n; i++) m += f[i];
  m /= n;
  for (int i = 0; i < n; i++) v += (f[i] - m) * (f[i] - m);
  for (int i = 0; i < n; i++) u[i] = (f[i] - m) / sqrt(v / n);
}

/* the fitness_shaping option: 0 centered ranks (default), 1 z-scores */
static void shaped(int shaping, const float *f, int n, double *u) {
  if (shaping) zscores(f, n, u);
  else ranks(f, n, u);
}

/* ---- PGPE ---- */

/* One tell recomputed from the asked rows with EvoJAX's compute_reinforce_update, update_stdev and ClipUp. */
static void pgpe_one_step(int shaping) {
  enum { n = 6, P = 10, D = P / 2 };
  const float mean[n] = {0.5f, -0.3f, 0.0f, 1.0f, 0.2f, -0.7f};
  const evo_option opt = {"fitness_shaping", shaping};
  evo_algo *a = test_algo("pgpe", n, P, 0.1, mean, true, 11, &opt, 1);
  float pop[P * n], fit[P];
  test_ask(a, 0, P, pop);
  for (int j = 0; j < P; j++) fit[j] = (float)(sin(1.7 * j + 0.3) + 0.01 * j); /* distinct, unordered */
  double u[P], gc[n] = {0}, gs[n] = {0}, base = 0;
  shaped(shaping, fit, P, u);
  for (int j = 0; j < P; j++) base += u[j] / P;
  for (int k = 0; k < D; k++)
    for (int i = 0; i < n; i++) {
      const double d = 0.5 * ((double)pop[2 * k * n + i] - pop[(2 * k + 1) * n + i]); /* scaled noise */
      gc[i] += d * 0.5 * (u[2 * k] - u[2 * k + 1]) / D;
      gs[i] += (0.5 * (u[2 * k] + u[2 * k + 1]) - base) * (d * d - 0.01) / 0.1 / D;
    }
  /* ClipUp's first step: v = alpha g / ||g|| with alpha = center_lr = 0.15 = max_speed, so no clipping. */
  double gn = 0;
  for (int i = 0; i < n; i++) gn += gc[i] * gc[i];
  gn = sqrt(gn);
  cr_assert_eq(evo_algo_tell(a, fit), EVO_STATUS_OK);
  float center[n];
  evo_algo_best(a, center);
  const double *stdev = test_state_array(a, "pgpe.stdev", NULL);
  for (int i = 0; i < n; i++) {
    const double want_c = mean[i] + 0.15 * gc[i] / gn;
    const double want_s = fmin(fmax(0.1 + 0.1 * gs[i], 0.08), 0.12);
    cr_assert(fabs(center[i] - want_c) < 2e-6, "center[%d] %.9g want %.9g", i, center[i], want_c);
    cr_assert(fabs(stdev[i] - want_s) < 1e-6, "stdev[%d] %.9g want %.9g", i, stdev[i], want_s);
  }
  evo_algo_free(a);
}

Test(pgpe, one_step_matches_the_formulas) { pgpe_one_step(0); }
Test(pgpe, one_step_with_z_scores_matches_the_formulas) { pgpe_one_step(1); }

/* With a large stdev learning rate and random fitness the clip is active, but no step changes a stdev by more
   than stdev_max_change (20%) either way. */
Test(pgpe, stdev_changes_stay_within_bounds) {
  enum { n = 40, P = 32 };
  const double lrs[] = {0.1, 50.0};
  for (int li = 0; li < 2; li++) {
    evo_option opt = {"stdev_lr", lrs[li]};
    evo_algo *a = test_algo("pgpe", n, P, 0.5, NULL, true, 5, &opt, 1);
    double *stdev = test_state_array(a, "pgpe.stdev", NULL), prev[n];
    float pop[P * n], fit[P];
    int at_bound = 0;
    for (int g = 0; g < 200; g++) {
      memcpy(prev, stdev, sizeof prev);
      test_ask(a, 0, P, pop);
      evo_rng_fill_uniform(evo_key_from_seed(1000 + (uint64_t)g), fit, P, -1, 1);
      if (g % 2) /* alternate with a structured fitness that drives the stdevs one way */
        for (int j = 0; j < P; j++) fit[j] = -fabsf(pop[j * n]);
      cr_assert_eq(evo_algo_tell(a, fit), EVO_STATUS_OK);
      for (int i = 0; i < n; i++) {
        const double r = stdev[i] / prev[i];
        cr_assert(r >= 0.8 - 1e-12 && r <= 1.2 + 1e-12, "stdev_lr %g gen %d coord %d: ratio %.17g", lrs[li], g, i,
                  r);
        at_bound += fabs(r - 0.8) < 1e-12 || fabs(r - 1.2) < 1e-12;
      }
    }
    if (li == 1) cr_assert_gt(at_bound, 1000, "the clip should be active at stdev_lr 50 (%d hits)", at_bound);
    evo_algo_free(a);
  }
}

/* With optimizer = 1 (Adam) the step counter advances every generation (EvoJAX passes t // decay_steps). */
Test(pgpe, adam_counter_advances_every_generation) {
  evo_option opt[] = {{"optimizer", 1}, {"center_lr", 0.05}};
  evo_algo *a = test_algo("pgpe", 4, 8, 0, NULL, true, 2, opt, 2);
  float pop[8 * 4], fit[8];
  for (int g = 0; g < 25; g++) {
    test_ask(a, 0, 8, pop);
    for (int j = 0; j < 8; j++) fit[j] = -pop[j * 4] * pop[j * 4];
    evo_algo_tell(a, fit);
  }
  cr_assert_eq(test_state_array(a, "optim.count", NULL)[0], 25.0);
  test_state_array(a, "optim.mu", NULL);
  evo_algo_free(a);
}

/* adam_count_every = 1000 runs Adam as EvoJAX's PGPE does (its step index t // 1000): the first generation is the
   same as standard Adam (both correct at step 1), later ones differ; the option must be an integer. */
Test(pgpe, adam_count_every_is_evojax_step_index) {
  evo_option std_opt[] = {{"optimizer", 1}, {"center_lr", 0.05}};
  evo_option ejx_opt[] = {{"optimizer", 1}, {"center_lr", 0.05}, {"adam_count_every", 1000}};
  evo_algo *a = test_algo("pgpe", 4, 8, 0, NULL, true, 2, std_opt, 2);
  evo_algo *b = test_algo("pgpe", 4, 8, 0, NULL, true, 2, ejx_opt, 3);
  float pop[8 * 4], fit[8], ca[4], cb[4];
  for (int g = 0; g < 3; g++) {
    test_ask(a, 0, 8, pop);
    for (int j = 0; j < 8; j++) fit[j] = -pop[j * 4] * pop[j * 4] + pop[j * 4 + 1];
    evo_algo_tell(a, fit);
    evo_algo_tell(b, fit); /* same members: b's center and stdev equal a's until the steps differ */
    evo_algo_best(a, ca);
    evo_algo_best(b, cb);
    if (g == 0) cr_assert(memcmp(ca, cb, sizeof ca) == 0, "generation 0 must match standard Adam");
  }
  cr_assert(memcmp(ca, cb, sizeof ca) != 0, "later generations must differ from standard Adam");
  cr_assert_eq(evo_algo_option(b, "adam_count_every"), 1000);
  evo_algo_free(a);
  evo_algo_free(b);
  evo_algo_params p = evo_algo_default_params();
  evo_option bad = {"adam_count_every", 2.5};
  p.name = "pgpe", p.num_params = 3, p.pop_size = 8, p.options = &bad, p.n_options = 1;
  evo_algo *c = NULL;
  cr_assert_eq(evo_algo_new(&p, &c), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "adam_count_every"), "%s", evo_last_error());
}

Test(pgpe, argument_checks) {
  evo_algo_params p = evo_algo_default_params();
  p.name = "pgpe", p.num_params = 3, p.pop_size = 7;
  evo_algo *a = NULL;
  cr_assert_eq(evo_algo_new(&p, &a), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "even"), "%s", evo_last_error());
  p.pop_size = 8;
  evo_option half = {"optimizer", 0.5};
  p.options = &half, p.n_options = 1;
  cr_assert_eq(evo_algo_new(&p, &a), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "optimizer"), "%s", evo_last_error());
  cr_assert_null(a);
  /* Defaults from EvoJAX. */
  p.n_options = 0;
  cr_assert_eq(evo_algo_new(&p, &a), EVO_STATUS_OK);
  cr_assert_eq(evo_algo_option(a, "center_lr"), 0.15);
  cr_assert_eq(evo_algo_option(a, "stdev_lr"), 0.1);
  cr_assert_eq(evo_algo_option(a, "max_speed"), 0.15);
  cr_assert_eq(evo_algo_option(a, "stdev_max_change"), 0.2);
  evo_algo_stats s;
  evo_algo_stats_get(a, &s);
  cr_assert_eq(s.sigma, 0.1, "init_stdev default 0.1");
  evo_algo_free(a);
}

/* ---- OpenES ---- */

/* On f(x) = c.x the estimate g = sum_k (u+ - u-) eps_k / (N sigma) points along c. Adam's first moment after one
   step is (1 - beta1) (-g + c theta); with weight_decay c = 0 it is -0.1 g. */
Test(openes, gradient_estimate_on_linear_function_points_along_c) {
  enum { n = 50, P = 2000 };
  float c[n];
  for (int i = 0; i < n; i++) c[i] = (float)(cos(0.9 * i) * (1 + i % 4));
  const evo_option opt = {"weight_decay", 0};
  evo_algo *a = test_algo("openes", n, P, 0.001, NULL, true, 9, &opt, 1);
  float *pop = malloc(sizeof(float) * P * n), fit[P];
  test_ask(a, 0, P, pop);
  for (int j = 0; j < P; j++) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)c[i] * pop[j * n + i];
    fit[j] = (float)s;
  }
  cr_assert_eq(evo_algo_tell(a, fit), EVO_STATUS_OK);
  const double *mu = test_state_array(a, "optim.mu", NULL);
  double dot = 0, gg = 0, cc = 0;
  for (int i = 0; i < n; i++) dot += -mu[i] * c[i], gg += mu[i] * mu[i], cc += (double)c[i] * c[i];
  const double cosine = dot / sqrt(gg * cc);
  cr_log_info("openes: cosine(g, c) = %.4f (n %d, pop %d)", cosine, n, P);
  cr_assert_gt(cosine, 0.95, "cosine between the estimate and c is %.4f", cosine);
  /* And the first Adam step moves theta along sign(g) by lr = 0.01. */
  float theta[n];
  evo_algo_best(a, theta);
  for (int i = 0; i < n; i++)
    cr_assert(fabsf(fabsf(theta[i]) - 0.01f) < 1e-6f && (theta[i] > 0) == (mu[i] < 0), "theta[%d] = %g", i,
              theta[i]);
  free(pop);
  evo_algo_free(a);
}

/* One tell recomputed from the asked rows: g = sum_k (u_2k - u_2k+1) eps_k / (N sigma), and Adam's first moments
   after one step are (1 - beta1) G and (1 - beta2) G^2 with G = -g + c theta (weight_decay c, default 0.005). */
static void openes_one_step(int shaping) {
  enum { n = 8, P = 20 };
  const double sigma = 0.02, l2 = 0.005;
  float theta0[n];
  for (int i = 0; i < n; i++) theta0[i] = (float)(0.3 * i - 1.0);
  const evo_option opt = {"fitness_shaping", shaping};
  evo_algo *a = test_algo("openes", n, P, sigma, theta0, true, 17, &opt, 1);
  float pop[P * n], fit[P];
  test_ask(a, 0, P, pop);
  for (int j = 0; j < P; j++) fit[j] = (float)(cos(2.1 * j) + 0.001 * j);
  double u[P], g[n] = {0};
  shaped(shaping, fit, P, u);
  for (int k = 0; k < P / 2; k++)
    for (int i = 0; i < n; i++) {
      const double eps = ((double)pop[2 * k * n + i] - pop[(2 * k + 1) * n + i]) / (2 * sigma);
      g[i] += (u[2 * k] - u[2 * k + 1]) * eps / (P * sigma);
    }
  cr_assert_eq(evo_algo_tell(a, fit), EVO_STATUS_OK);
  const double *mu = test_state_array(a, "optim.mu", NULL), *nu = test_state_array(a, "optim.nu", NULL);
  for (int i = 0; i < n; i++) {
    const double G = -g[i] + l2 * theta0[i];
    cr_assert(fabs(mu[i] - 0.1 * G) < 1e-5 * (1 + fabs(G)), "mu[%d] %.9g want %.9g", i, mu[i], 0.1 * G);
    cr_assert(fabs(nu[i] - 0.001 * G * G) < 1e-5 * (1 + G * G) * 0.001 * 2, "nu[%d] %.9g want %.9g", i, nu[i],
              0.001 * G * G);
  }
  evo_algo_free(a);
}

Test(openes, one_step_matches_the_formulas) { openes_one_step(0); }
Test(openes, one_step_with_z_scores_matches_the_formulas) { openes_one_step(1); }

Test(openes, sigma_decay_and_floor) {
  const evo_option opt[] = {{"sigma_decay", 0.5}, {"sigma_min", 0.004}};
  evo_algo *a = test_algo("openes", 3, 4, 0.02, NULL, true, 1, opt, 2);
  const float fit[4] = {1, 2, 3, 4};
  const double want[] = {0.01, 0.005, 0.004, 0.004};
  for (int g = 0; g < 4; g++) {
    evo_algo_tell(a, fit);
    evo_algo_stats s;
    evo_algo_stats_get(a, &s);
    cr_assert(fabs(s.sigma - want[g]) < 1e-15, "gen %d: sigma %g want %g", g, s.sigma, want[g]);
  }
  evo_algo_free(a);
}

/* ---- ARS ---- */

/* 6 directions, b = 2. By max(r+, r-) the top two are k = 4 (5.0) and k = 1 (2.0); k = 3 has the second largest
   |r+ - r-| (3.5) but a low max and must be left out. sigma_R = std of {0.7, 5.0, 2.0, -1.0}. */
Test(ars, keeps_the_top_b_directions_by_max_reward) {
  enum { n = 4, P = 12 };
  const float theta0[n] = {0.1f, -0.2f, 0.3f, 0.0f};
  const double nu = 0.05, alpha = 0.02;
  const evo_option opt[] = {{"top_b", 2}, {"step_size", alpha}};
  evo_algo *a = test_algo("ars", n, P, nu, theta0, true, 4, opt, 2);
  float pop[P * n];
  test_ask(a, 0, P, pop);
  const float fit[P] = {0.1f, 0.3f, 2.0f, -1.0f, 0.5f, 0.2f, -3.5f, 0.0f, 0.7f, 5.0f, 0.6f, 0.65f};
  cr_assert_eq(evo_algo_tell(a, fit), EVO_STATUS_OK);
  const double sel[4] = {0.7, 5.0, 2.0, -1.0};
  double m = 0, v = 0;
  for (int i = 0; i < 4; i++) m += sel[i] / 4;
  for (int i = 0; i < 4; i++) v += (sel[i] - m) * (sel[i] - m) / 4;
  const double sr = sqrt(v);
  float theta[n];
  evo_algo_best(a, theta);
  for (int i = 0; i < n; i++) {
    const double d4 = ((double)pop[8 * n + i] - pop[9 * n + i]) / (2 * nu);
    const double d1 = ((double)pop[2 * n + i] - pop[3 * n + i]) / (2 * nu);
    const double want = theta0[i] + alpha / (2 * sr) * ((0.7 - 5.0) * d4 + (2.0 - -1.0) * d1);
    cr_assert(fabs(theta[i] - want) < 1e-5, "theta[%d] %.9g want %.9g", i, theta[i], want);
  }
  evo_algo_free(a);
}

/* Ties in max(r+, r-) go to the lower direction index; b = 1 uses only that direction. */
Test(ars, ties_prefer_the_lower_index) {
  enum { n = 3, P = 6 };
  const evo_option opt = {"top_b", 1};
  evo_algo *a = test_algo("ars", n, P, 0.1, NULL, true, 8, &opt, 1);
  float pop[P * n], theta[n];
  test_ask(a, 0, P, pop);
  const float fit[P] = {1.0f, 0.0f, 0.0f, 1.0f, 0.5f, 0.5f}; /* k = 0 and k = 1 tie at 1.0 */
  evo_algo_tell(a, fit);
  evo_algo_best(a, theta);
  /* sigma_R of {1, 0} is 0.5: theta = 0.02 / 0.5 * (1 - 0) delta_0 = 0.04 delta_0. */
  for (int i = 0; i < n; i++) {
    const double d0 = ((double)pop[i] - pop[n + i]) / 0.2;
    cr_assert(fabs(theta[i] - 0.04 * d0) < 1e-6, "theta[%d] %.9g want %.9g (direction 0)", i, theta[i], 0.04 * d0);
  }
  evo_algo_free(a);
}

Test(ars, argument_checks_and_defaults) {
  evo_algo_params p = evo_algo_default_params();
  p.name = "ars", p.num_params = 3, p.pop_size = 8;
  evo_option opt = {"top_b", 5};
  p.options = &opt, p.n_options = 1;
  evo_algo *a = NULL;
  cr_assert_eq(evo_algo_new(&p, &a), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "top_b"), "%s", evo_last_error());
  p.n_options = 0, p.pop_size = 0;
  cr_assert_eq(evo_algo_new(&p, &a), EVO_STATUS_OK);
  cr_assert_eq(evo_algo_pop_size(a), 16, "8 directions by default (ARS code)");
  cr_assert_eq(evo_algo_option(a, "step_size"), 0.02);
  evo_algo_stats s;
  evo_algo_stats_get(a, &s);
  cr_assert_eq(s.sigma, 0.03, "nu = delta_std 0.03 by default");
  /* All rewards equal: sigma_R = 0, theta stays. */
  float pop[16 * 3], fit[16], theta[3];
  test_ask(a, 0, 16, pop);
  for (int j = 0; j < 16; j++) fit[j] = 2.5f;
  evo_algo_tell(a, fit);
  evo_algo_best(a, theta);
  cr_assert(theta[0] == 0 && theta[1] == 0 && theta[2] == 0);
  evo_algo_free(a);
}

/* ---- weight decay (the shared gradient form, algos/weight_decay.c) ---- */

/* Equal fitnesses share their centered rank (all zeros), ties in general the mean of their ranks. */
Test(shaping, centered_ranks_average_ties) {
  const float f[6] = {3, 1, 3, 3, -INFINITY, 0};
  double u[6];
  evo_shape_centered_ranks(f, 6, u);
  /* ranks from the worst (0): -inf 0, 0 1, 1 2, the three 3s share (3 + 4 + 5) / 3 = 4 */
  const double want[6] = {4.0 / 5 - 0.5, 2.0 / 5 - 0.5, 4.0 / 5 - 0.5, 4.0 / 5 - 0.5, -0.5, 1.0 / 5 - 0.5};
  for (int i = 0; i < 6; i++) cr_assert(fabs(u[i] - want[i]) < 1e-15, "u[%d] = %g want %g", i, u[i], want[i]);
  const float flat[4] = {2, 2, 2, 2};
  evo_shape_centered_ranks(flat, 4, u);
  for (int i = 0; i < 4; i++) cr_assert_eq(u[i], 0.0);
}

/* z-scores against a two-pass computation in long double; -inf scores as the worst finite value, +inf as the best;
   a flat fitness, or a single finite value, gives zeros. */
Test(shaping, z_scores_against_two_pass) {
  const float f[7] = {3.5f, -1.25f, 8.0f, -INFINITY, 0.5f, INFINITY, 2.0f};
  long double mean = 0, var = 0;
  const int fin[5] = {0, 1, 2, 4, 6};
  for (int k = 0; k < 5; k++) mean += f[fin[k]] / 5.0L;
  for (int k = 0; k < 5; k++) var += (f[fin[k]] - mean) * (f[fin[k]] - mean) / 5.0L;
  const long double sd = sqrtl(var);
  double u[7];
  evo_shape(EVO_SHAPE_ZSCORE, f, 7, u);
  for (int i = 0; i < 7; i++) {
    const long double v = i == 3 ? -1.25L : i == 5 ? 8.0L : f[i];
    const double want = (double)((v - mean) / sd);
    cr_assert(fabs(u[i] - want) < 1e-14, "u[%d] = %.17g want %.17g", i, u[i], want);
  }
  const float flat[4] = {2, 2, 2, 2}, one[3] = {-INFINITY, 5, -INFINITY};
  evo_shape(EVO_SHAPE_ZSCORE, flat, 4, u);
  for (int i = 0; i < 4; i++) cr_assert_eq(u[i], 0.0);
  evo_shape(EVO_SHAPE_ZSCORE, one, 3, u);
  for (int i = 0; i < 3; i++) cr_assert_eq(u[i], 0.0);
  evo_shape(EVO_SHAPE_CENTERED_RANKS, f, 7, u); /* the other kind is the centered ranks */
  cr_assert_eq(u[5], 0.5);
  cr_assert_eq(u[3], -0.5);
}

/* On a flat fitness the strategy's own gradient is 0 and the mean follows its optimizer on the loss
   c ||theta||^2 / 2 alone, i.e. on the gradient c theta: replayed here with an independent evo_optim built from
   the documented defaults. */
static void decay_follows_optimizer(const char *name, evo_optim_params op, double c, const evo_option *extra,
                                    int n_extra) {
  enum { n = 5, P = 8, G = 30 };
  const float x0[n] = {1.0f, -2.0f, 0.5f, 3.0f, -0.25f};
  evo_option opts[4] = {{"weight_decay", c}};
  for (int i = 0; i < n_extra; i++) opts[1 + i] = extra[i];
  evo_algo *a = test_algo(name, n, P, 0.1, x0, true, 5, opts, 1 + n_extra);
  cr_assert_eq(evo_algo_option(a, "weight_decay"), c);
  evo_optim *o;
  cr_assert_eq(evo_optim_new(&op, n, &o), EVO_STATUS_OK);
  float ref[n], g[n], theta[n], pop[P * n], fit[P];
  memcpy(ref, x0, sizeof ref);
  double norm0 = 0, norm = 0;
  for (int i = 0; i < n; i++) norm0 += (double)x0[i] * x0[i];
  for (int t = 0; t < G; t++) {
    test_ask(a, 0, P, pop);
    for (int j = 0; j < P; j++) fit[j] = 7.0f;
    cr_assert_eq(evo_algo_tell(a, fit), EVO_STATUS_OK);
    for (int i = 0; i < n; i++) g[i] = (float)(c * ref[i]);
    evo_optim_step(o, ref, g);
    evo_algo_best(a, theta);
    for (int i = 0; i < n; i++)
      cr_assert(fabsf(theta[i] - ref[i]) <= 1e-6f * (1 + fabsf(ref[i])), "%s gen %d: theta[%d] = %.9g want %.9g",
                name, t, i, theta[i], ref[i]);
  }
  for (int i = 0; i < n; i++) norm += (double)theta[i] * theta[i];
  cr_assert_lt(norm, 0.5 * norm0, "%s: ||theta||^2 %g from %g: decay must pull the mean toward 0", name, norm, norm0);
  evo_optim_free(o);
  evo_algo_free(a);
}

Test(weight_decay, defaults_and_sources) {
  const char *names[] = {"pgpe", "openes", "ars"};
  const double defs[] = {0, 0.005, 0};
  for (int k = 0; k < 3; k++) {
    const evo_algo_info *info = evo_algo_find(names[k]);
    int found = 0;
    for (int i = 0; i < info->n_options; i++)
      if (!strcmp(info->options[i].key, "weight_decay")) {
        found = 1;
        cr_assert_eq(info->options[i].def, defs[k], "%s default", names[k]);
        cr_assert(strstr(info->options[i].doc, "gradient form") && strchr(info->options[i].doc, '('),
                  "%s: the doc names the form and the source: %s", names[k], info->options[i].doc);
      }
    cr_assert(found, "%s declares weight_decay", names[k]);
  }
}

/* PGPE with ClipUp: every step moves the center by at most max_speed, straight toward 0 on a flat fitness. */
Test(weight_decay, pgpe_clipup_on_flat_fitness) {
  evo_optim_params op = evo_optim_default_params(EVO_OPTIM_CLIPUP);
  op.lr = 0.15, op.max_speed = 0.15, op.momentum = 0.9;
  decay_follows_optimizer("pgpe", op, 0.5, NULL, 0);
  /* and the stdevs do not move: their gradient is 0 too */
  evo_algo *a = test_algo("pgpe", 3, 4, 0.1, NULL, true, 1, &(evo_option){"weight_decay", 1}, 1);
  const float fit[4] = {1, 1, 1, 1};
  evo_algo_tell(a, fit);
  const double *sd = test_state_array(a, "pgpe.stdev", NULL);
  cr_assert(sd[0] == 0.1 && sd[1] == 0.1 && sd[2] == 0.1);
  evo_algo_free(a);
}

Test(weight_decay, pgpe_adam_on_flat_fitness) {
  evo_optim_params op = evo_optim_default_params(EVO_OPTIM_ADAM);
  op.lr = 0.05;
  const evo_option extra[] = {{"optimizer", 1}, {"center_lr", 0.05}};
  decay_follows_optimizer("pgpe", op, 0.1, extra, 2);
}

/* OpenES: Adam (lr 0.01) on c theta; its first step moves every coordinate by lr toward 0. */
Test(weight_decay, openes_adam_on_flat_fitness) {
  evo_optim_params op = evo_optim_default_params(EVO_OPTIM_ADAM);
  op.lr = 0.05;
  const evo_option extra[] = {{"lr", 0.05}};
  decay_follows_optimizer("openes", op, 0.2, extra, 1);
  const float x0[2] = {1, -2}, fit[4] = {0, 0, 0, 0};
  evo_algo *a = test_algo("openes", 2, 4, 0.02, x0, true, 1, NULL, 0); /* default c = 0.005 */
  evo_algo_tell(a, fit);
  float th[2];
  evo_algo_best(a, th);
  cr_assert(fabsf(th[0] - 0.99f) < 1e-6f && fabsf(th[1] + 1.99f) < 1e-6f, "theta %g %g", th[0], th[1]);
  evo_algo_free(a);
}

/* ARS: theta_t = (1 - alpha c)^t theta_0 exactly as documented (flat rewards: sigma_R = 0, no reward step). */
Test(weight_decay, ars_shrinks_at_one_minus_alpha_c) {
  enum { n = 4, P = 8 };
  const float x0[n] = {1.0f, -2.0f, 0.5f, 4.0f};
  const evo_option opt[] = {{"weight_decay", 0.5}, {"step_size", 0.1}};
  evo_algo *a = test_algo("ars", n, P, 0.03, x0, true, 2, opt, 2);
  float pop[P * n], fit[P], theta[n];
  for (int t = 1; t <= 20; t++) {
    test_ask(a, 0, P, pop);
    for (int j = 0; j < P; j++) fit[j] = -1.5f;
    cr_assert_eq(evo_algo_tell(a, fit), EVO_STATUS_OK);
    evo_algo_best(a, theta);
    for (int i = 0; i < n; i++) {
      const double want = x0[i] * pow(1 - 0.1 * 0.5, t);
      cr_assert(fabs(theta[i] - want) < 1e-6 * fabs(want) + 1e-7, "gen %d theta[%d] %.9g want %.9g", t, i,
                theta[i], want);
    }
  }
  evo_algo_free(a);
}

/* With rewards, the decay adds -alpha c theta to ARS's step: the difference between runs with and without decay
   (same key, same rewards) after one generation is exactly that. */
Test(weight_decay, ars_decay_adds_to_the_reward_step) {
  enum { n = 3, P = 6 };
  const float x0[n] = {0.3f, -0.6f, 0.9f};
  const evo_option on[] = {{"weight_decay", 0.25}}, off[] = {{"weight_decay", 0}};
  evo_algo *a = test_algo("ars", n, P, 0.05, x0, true, 9, on, 1);
  evo_algo *b = test_algo("ars", n, P, 0.05, x0, true, 9, off, 1);
  float pop[P * n], ta[n], tb[n];
  test_ask(a, 0, P, pop);
  const float fit[P] = {0.2f, 1.0f, -0.4f, 0.7f, 0.0f, 0.1f};
  evo_algo_tell(a, fit), evo_algo_tell(b, fit);
  evo_algo_best(a, ta), evo_algo_best(b, tb);
  for (int i = 0; i < n; i++)
    cr_assert(fabs((ta[i] - tb[i]) - (-0.02 * 0.25 * x0[i])) < 1e-6, "coord %d: %g", i, ta[i] - tb[i]);
  evo_algo_free(a), evo_algo_free(b);
}

/* ---- the strategies' noise stream (algos/normals.c) ---- */

/* Element 4b + 2p + t is Box-Muller on words (2p, 2p + 1) of Philox block b, cos (t = 0) or sin (t = 1) branch:
   compared with the same formula in double precision with libm, so the vectorised polynomials are checked to
   float accuracy over a million elements (including both ends of the radius and every quadrant). */
Test(normals, stream_matches_box_muller_in_double) {
  enum { N = 1 << 20 };
  const evo_key key = evo_key_from_seed(12345);
  float *z = malloc(sizeof(float) * N);
  evo_algo_normals(key, 0, N, z);
  double worst = 0, m1 = 0, m2 = 0, m4 = 0;
  for (int64_t b = 0; b < N / 4; b++) {
    const evo_philox_block r = evo_rng_block(key.w[0], key.w[1], (uint64_t)b);
    for (int p = 0; p < 2; p++) {
      const double u1 = 1.0 - (double)(r.w[2 * p] >> 8) * 0x1p-24, u2 = (double)(r.w[2 * p + 1] >> 8) * 0x1p-24;
      const double rad = sqrt(-2 * log(u1)), th = 6.283185307179586 * u2;
      const double want[2] = {rad * cos(th), rad * sin(th)};
      for (int t = 0; t < 2; t++) {
        const double got = z[4 * b + 2 * p + t], err = fabs(got - want[t]) / fmax(1, fabs(want[t]));
        if (err > worst) worst = err;
        cr_assert(err < 1e-6, "element %lld: %.9g want %.9g", (long long)(4 * b + 2 * p + t), got, want[t]);
      }
    }
  }
  for (int i = 0; i < N; i++) m1 += z[i], m2 += (double)z[i] * z[i], m4 += pow(z[i], 4);
  m1 /= N, m2 /= N, m4 /= N;
  cr_log_info("normals: worst scaled error %.3g; mean %.5f var %.5f 4th moment %.4f", worst, m1, m2, m4);
  /* standard errors over 2^20 samples: 0.001, 0.0014, 0.01 */
  cr_assert(fabs(m1) < 0.005 && fabs(m2 - 1) < 0.007 && fabs(m4 - 3) < 0.05, "moments %g %g %g", m1, m2, m4);
  free(z);
}

/* Bit for bit, element 4b + 2p + t is evo_nm_pair on words (2p, 2p + 1) of the scalar Philox block b (core's
   evo_rng_block): the vectorised Philox rounds of algos/normals.c (AVX2 or the portable loop) reorder nothing. */
Test(normals, stream_is_scalar_philox_then_the_pair_formula_bit_for_bit) {
  enum { N = 1 << 16 };
  const evo_key keys[2] = {evo_key_from_seed(3), {{0xffffffffu, 0x80000001u}}};
  float *z = malloc(sizeof(float) * N);
  for (int k = 0; k < 2; k++) {
    evo_algo_normals(keys[k], 0, N, z);
    for (int64_t b = 0; b < N / 4; b++) {
      const evo_philox_block r = evo_rng_block(keys[k].w[0], keys[k].w[1], (uint64_t)b);
      float want[4];
      evo_nm_pair(r.w[0], r.w[1], &want[0], &want[1]);
      evo_nm_pair(r.w[2], r.w[3], &want[2], &want[3]);
      cr_assert(memcmp(want, z + 4 * b, sizeof want) == 0, "key %d block %lld: %.9g %.9g %.9g %.9g, want %.9g %.9g "
                "%.9g %.9g", k, (long long)b, z[4 * b], z[4 * b + 1], z[4 * b + 2], z[4 * b + 3], want[0], want[1],
                want[2], want[3]);
    }
  }
  free(z);
}

/* Any range (any offset and length, across group boundaries) gives the same bits for the same elements, and the
   double variant is the float stream widened. */
Test(normals, ranges_are_bit_identical_to_the_full_stream) {
  enum { N = 1000 };
  const evo_key key = evo_key_from_seed(7);
  float full[N], part[N];
  double d[N];
  evo_algo_normals(key, 0, N, full);
  const int64_t cuts[][2] = {{0, 1}, {1, 2}, {3, 67}, {63, 65}, {64, 128}, {100, 1000}, {999, 1000}, {5, 5}};
  for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
    evo_algo_normals(key, cuts[c][0], cuts[c][1], part);
    cr_assert_eq(memcmp(part, full + cuts[c][0], sizeof(float) * (size_t)(cuts[c][1] - cuts[c][0])), 0,
                 "range [%lld, %lld)", (long long)cuts[c][0], (long long)cuts[c][1]);
  }
  for (int n = 1; n <= N; n += 37) {
    evo_algo_normals_f64(key, n, d);
    for (int i = 0; i < n; i++) cr_assert_eq(d[i], (double)full[i], "f64 n %d element %d", n, i);
  }
  /* another key gives another stream */
  evo_algo_normals(evo_key_from_seed(8), 0, N, part);
  int same = 0;
  for (int i = 0; i < N; i++) same += part[i] == full[i];
  cr_assert_lt(same, 5);
}

/* ---- sampling at scale ---- */

/* Member 2k (2k + 1) of generation g is mean +- s eps_k with eps_k the evo_algo_normals stream of
   fold_in(fold_in(key, g), k), so anyone holding the key can regenerate it; with n above the parallel threshold and
   not a multiple of the block size, populations and updates are identical with 1 and 2 threads. */
Test(antithetic, large_n_stream_and_thread_count_independence) {
  enum { n = 100003, P = 6 };
  const char *names[] = {"pgpe", "openes", "ars"};
  float *pop1 = malloc(sizeof(float) * P * n), *pop2 = malloc(sizeof(float) * P * n);
  float *eps = malloc(sizeof(float) * n), *best1 = malloc(sizeof(float) * n), *best2 = malloc(sizeof(float) * n);
  float fit[P];
  for (int ai = 0; ai < 3; ai++) {
    evo_algo *a = test_algo(names[ai], n, P, 1.0, NULL, true, 77, NULL, 0);
    evo_algo *b = test_algo(names[ai], n, P, 1.0, NULL, true, 77, NULL, 0);
    test_ask(a, 0, P, pop1);
    evo_key key = evo_key_from_seed(77);
    for (int k = 0; k < P / 2; k++) {
      evo_algo_normals(evo_key_fold_in(evo_key_fold_in(key, 0), (uint32_t)k), 0, n, eps);
      int64_t bad = 0;
      for (int64_t i = 0; i < n; i++) bad += pop1[2 * k * n + i] != eps[i] || pop1[(2 * k + 1) * n + i] != -eps[i];
      cr_assert_eq(bad, 0, "%s: pair %d differs from the documented stream at %lld coordinates", names[ai], k,
                   (long long)bad);
    }
    for (int g = 0; g < 3; g++) {
      omp_set_num_threads(1);
      test_ask(a, 0, P, pop1);
      for (int j = 0; j < P; j++) fit[j] = (float)(pop1[(int64_t)j * n + 5] + 0.1 * j);
      evo_algo_tell(a, fit);
      evo_algo_best(a, best1);
      omp_set_num_threads(2);
      test_ask(b, 1, P, pop2 + n); /* a slice starting inside a pair */
      test_ask(b, 0, 1, pop2);
      cr_assert_eq(memcmp(pop1, pop2, sizeof(float) * P * n), 0, "%s gen %d: populations differ", names[ai], g);
      evo_algo_tell(b, fit);
      evo_algo_best(b, best2);
      cr_assert_eq(memcmp(best1, best2, sizeof(float) * n), 0, "%s gen %d: updates differ", names[ai], g);
    }
    evo_algo_free(a);
    evo_algo_free(b);
  }
  free(pop1);
  free(pop2);
  free(eps);
  free(best1);
  free(best2);
}

/* A generation in which every member failed carries no ranking: state (and so the next population) stays. */
Test(antithetic, all_nan_generation_changes_nothing) {
  const char *names[] = {"pgpe", "openes", "ars"};
  enum { n = 5, P = 8 };
  float before[P * n], after[P * n], fit[P];
  for (int ai = 0; ai < 3; ai++) {
    evo_algo *a = test_algo(names[ai], n, P, 0, NULL, true, 3, NULL, 0);
    for (int j = 0; j < P; j++) fit[j] = (float)j;
    evo_algo_tell(a, fit); /* leave the initial state first */
    evo_algo_best(a, before);
    for (int j = 0; j < P; j++) fit[j] = NAN;
    cr_assert_eq(evo_algo_tell(a, fit), EVO_STATUS_OK);
    evo_algo_best(a, after);
    cr_assert_eq(memcmp(before, after, sizeof(float) * n), 0, "%s moved on an all-NaN generation", names[ai]);
    evo_algo_stats st;
    evo_algo_stats_get(a, &st);
    cr_assert(st.nan_count == P && st.generation == 2, "%s: nan_count %lld generation %lld", names[ai],
              (long long)st.nan_count, (long long)st.generation);
    evo_algo_free(a);
  }
}

/* ---- convergence with fixed seeds (10-d, x0 = 1, default population) ---- */

typedef struct {
  const char *algo;
  evo_fn_kind fn;
  double target;
  int gens;
  evo_option opt[2];
  int n_opt;
} conv_case;

/* Budgets are about 1.2x the worst generation at which seeds 1-5 reached the target when measured (the test runs
   seed 1, which reached them at 24, 118, 324, 461, 190, 403, 106 and 166; the worst of seeds 1-5 now: 24, 172, 328,
   605, 193, 477, 125, 204). With fitness_shaping: z_score (z-score rows, same order) seed 1 reached them at 23, 94, 195
   and 614, the worst of seeds 1-5 at 24, 127, 200 and 743. f0 = 10 (sphere), 1.47e6 (ellipsoid). */
static const conv_case conv_cases[] = {
    {"pgpe", EVO_FN_SPHERE, 1e-1, 40, {{0}}, 0},
    {"pgpe", EVO_FN_SPHERE, 1e-4, 230, {{"optimizer", 1}, {"center_lr", 0.05}}, 2},
    {"pgpe", EVO_FN_ELLIPSOID, 10, 550, {{0}}, 0},
    {"pgpe", EVO_FN_ELLIPSOID, 1e-3, 750, {{"optimizer", 1}, {"center_lr", 0.05}}, 2},
    {"pgpe", EVO_FN_SPHERE, 1e-1, 30, {{"fitness_shaping", 1}}, 1},
    {"pgpe", EVO_FN_ELLIPSOID, 10, 155, {{"fitness_shaping", 1}}, 1},
    {"openes", EVO_FN_SPHERE, 1e-4, 250, {{0}}, 0},
    {"openes", EVO_FN_SPHERE, 1e-4, 240, {{"fitness_shaping", 1}}, 1},
    {"openes", EVO_FN_ELLIPSOID, 100, 900, {{"fitness_shaping", 1}}, 1},
    {"openes", EVO_FN_ELLIPSOID, 100, 620, {{0}}, 0},
    {"ars", EVO_FN_SPHERE, 1e-8, 180, {{0}}, 0},
    {"ars", EVO_FN_ELLIPSOID, 1000, 280, {{0}}, 0},
};

Test(convergence, fixed_seed_targets) {
  enum { n = 10 };
  float x0[n], pop[TEST_MAX_POP * n], fit[TEST_MAX_POP];
  for (int i = 0; i < n; i++) x0[i] = 1;
  for (size_t c = 0; c < sizeof conv_cases / sizeof *conv_cases; c++) {
    const conv_case *k = &conv_cases[c];
    evo_fn *f;
    cr_assert_eq(evo_fn_new(k->fn, n, 0, 0, evo_key_from_seed(0), &f), EVO_STATUS_OK);
    evo_algo *a = test_algo(k->algo, n, 0, 0, x0, false, 1, k->opt, k->n_opt);
    double fb = evo_fn_eval_f32(f, x0);
    int g = 0;
    while (g < k->gens && fb > k->target) fb = test_generation(a, f, pop, fit), g++;
    const char *variant = !k->n_opt ? "" : strcmp(k->opt[0].key, "fitness_shaping") ? " (adam)" : " (z-scores)";
    cr_log_info("%s%s on %s-10: f %.3g at generation %d (target %g within %d)", k->algo, variant,
                evo_fn_name(k->fn), fb, g, k->target, k->gens);
    cr_assert(fb <= k->target, "%s on %s: f = %g after %d generations, target %g", k->algo, evo_fn_name(k->fn), fb,
              g, k->target);
    evo_algo_free(a);
    evo_fn_free(f);
  }
}
