/* SimpleGA and MAP-Elites specifics: convergence with fixed seeds to stated targets; elitism keeps the best
   fitness monotone; crossover mixes two elites; MAP-Elites fills a 2-d descriptor grid with a monotone QD score;
   the archive is sparse (memory grows with filled cells, not with cells); tell without descriptors is rejected;
   determinism, slices and save/load with a non-empty archive are bit-identical; the shared weight decay. */
#define _POSIX_C_SOURCE 200809L /* getpid, unlink */
#include <stdio.h>
#include <unistd.h>

#include "algo_test_util.h"
#include "algo_impl.h"

static evo_fn *fn(evo_fn_kind k, int64_t n) {
  evo_fn *f;
  cr_assert_eq(evo_fn_new(k, n, 0, 0, evo_key_from_seed(0), &f), EVO_STATUS_OK);
  return f;
}

/* Generations until f(best) <= target (gens + 1 when not reached); *fb: f(best) at the end. */
static int run_to(evo_algo *a, const evo_fn *f, double target, int gens, double *fb) {
  const int64_t n = evo_algo_num_params(a);
  float *pop = malloc(sizeof(float) * (size_t)evo_algo_pop_size(a) * (size_t)n);
  float *fit = malloc(sizeof(float) * (size_t)evo_algo_pop_size(a));
  int g = 0;
  *fb = INFINITY;
  while (g < gens && *fb > target) *fb = test_generation(a, f, pop, fit), g++;
  free(pop);
  free(fit);
  return *fb <= target ? g : gens + 1;
}

/* ---- SimpleGA ---- */

/* Seeds 0-9 reach the targets at generations 207-230 (sphere) and 241-270 (Rastrigin). */
Test(simple_ga, sphere_5d_reaches_1e_8) {
  evo_fn *f = fn(EVO_FN_SPHERE, 5);
  const float x0[5] = {1, 1, 1, 1, 1};
  const evo_option o[] = {{"elitism", 1}, {"sigma_decay", 0.97}};
  evo_algo *a = test_algo("simple_ga", 5, 64, 0.1, x0, false, 1, o, 2);
  double fb;
  const int g = run_to(a, f, 1e-8, 300, &fb);
  cr_log_info("simple_ga sphere-5: f %.3g after %d generations", fb, g);
  cr_assert_leq(g, 300, "f(best) = %g after 300 generations, want <= 1e-8", fb);
  evo_algo_free(a);
  evo_fn_free(f);
}

Test(simple_ga, rastrigin_3d_reaches_1e_6) {
  evo_fn *f = fn(EVO_FN_RASTRIGIN, 3);
  const float x0[3] = {2.2f, -1.8f, 2.9f}; /* f = 30.6, several basins away from 0 */
  const evo_option o[] = {{"elitism", 1}, {"crossover_rate", 0.5}, {"sigma_decay", 0.97}, {"sigma_min", 1e-4}};
  evo_algo *a = test_algo("simple_ga", 3, 128, 1.0, x0, false, 3, o, 4);
  double fb;
  const int g = run_to(a, f, 1e-6, 350, &fb);
  cr_log_info("simple_ga rastrigin-3: f %.3g after %d generations", fb, g);
  cr_assert_leq(g, 350, "f(best) = %g after 350 generations, want <= 1e-6", fb);
  evo_algo_free(a);
  evo_fn_free(f);
}

/* Member 0 is the previous best elite, unchanged: the generation's best never gets worse. */
Test(simple_ga, elitism_keeps_the_best_monotone) {
  enum { n = 8, P = 20 };
  evo_fn *f = fn(EVO_FN_RASTRIGIN, n);
  const evo_option o[] = {{"elitism", 1}, {"elite_ratio", 0.2}};
  evo_algo *a = test_algo("simple_ga", n, P, 0.5, NULL, true, 9, o, 2);
  float pop[P * n], fit[P], prev_best[n];
  double prev = -INFINITY;
  for (int g = 0; g < 60; g++) {
    cr_assert_eq(test_ask(a, 0, P, pop), EVO_STATUS_OK);
    if (g > 0) cr_assert_eq(memcmp(pop, prev_best, sizeof prev_best), 0, "gen %d: member 0 is not the elite", g);
    double best = -INFINITY;
    int bi = 0;
    for (int i = 0; i < P; i++) {
      fit[i] = (float)-evo_fn_eval_f32(f, pop + i * n);
      if (fit[i] > best) best = fit[i], bi = i;
    }
    cr_assert_geq(best, prev, "gen %d: best %g fell below %g", g, best, prev);
    prev = best;
    memcpy(prev_best, pop + bi * n, sizeof prev_best);
    cr_assert_eq(evo_algo_tell(a, fit), EVO_STATUS_OK);
  }
  cr_log_info("simple_ga elitism: rastrigin-8 best %g after 60 generations", -prev);
  evo_algo_free(a);
  evo_fn_free(f);
}

/* With a tiny sigma every child coordinate is (nearly) one of two parents' coordinates; without crossover all of a
   child's coordinates come from one parent. */
Test(simple_ga, crossover_mixes_two_elites) {
  enum { n = 16, P = 8 };
  for (int cross = 0; cross <= 1; cross++) {
    const evo_option o[] = {{"elite_ratio", 0.25}, {"sigma", 1e-7}, {"crossover_rate", cross ? 0.5 : 0}};
    evo_algo *a = test_algo("simple_ga", n, P, 1.0, NULL, true, 4, o, 3);
    float pop[P * n], fit[P], elites[2][n];
    test_ask(a, 0, P, pop);
    for (int i = 0; i < P; i++) fit[i] = (float)i; /* members 7 and 6 are the elites */
    memcpy(elites[0], pop + 7 * n, sizeof elites[0]);
    memcpy(elites[1], pop + 6 * n, sizeof elites[1]);
    cr_assert_eq(evo_algo_tell(a, fit), EVO_STATUS_OK);
    test_ask(a, 0, P, pop);
    int mixed = 0;
    for (int i = 0; i < P; i++) {
      int from[2] = {0, 0};
      for (int j = 0; j < n; j++)
        for (int e = 0; e < 2; e++)
          if (fabsf(pop[i * n + j] - elites[e][j]) < 1e-5f) from[e]++;
      cr_assert(from[0] + from[1] >= n, "child %d: a coordinate from neither elite", i);
      mixed += from[0] > 0 && from[1] > 0;
    }
    if (cross)
      cr_assert_geq(mixed, P / 2, "crossover 0.5: only %d of %d children mix both elites", mixed, P);
    else
      cr_assert_eq(mixed, 0, "no crossover: %d children mix two elites", mixed);
    evo_algo_free(a);
  }
}

/* ---- MAP-Elites: x in R^n, descriptor = (x0, x1) clipped to [-1, 1], fitness = -sphere ---- */

#define ME_N 4

static void me_eval(const float *pop, int P, float *fit, float *bd) {
  for (int i = 0; i < P; i++) {
    double s = 0;
    for (int j = 0; j < ME_N; j++) s += (double)pop[i * ME_N + j] * pop[i * ME_N + j];
    fit[i] = (float)-s;
    for (int j = 0; j < 2; j++) bd[2 * i + j] = fminf(1.0f, fmaxf(-1.0f, pop[i * ME_N + j]));
  }
}

static evo_algo *me_new(int P, double line, uint64_t seed, int cpd) {
  const evo_option o[] = {{"bd_lo", -1}, {"bd_hi", 1}, {"cells_per_dim", cpd}, {"iso_sigma", 0.1},
                          {"line_sigma", line}, {"qd_offset", -100}};
  return test_algo("map_elites", ME_N, P, 0.05, NULL, true, seed, o, 6);
}

/* One generation; returns the archive after it. */
static evo_algo_archive me_gen(evo_algo *a, float *pop, float *fit, float *bd) {
  const int P = evo_algo_pop_size(a);
  cr_assert_eq(test_ask(a, 0, P, pop), EVO_STATUS_OK);
  me_eval(pop, P, fit, bd);
  cr_assert_eq(evo_algo_tell_bd(a, fit, bd, 2), EVO_STATUS_OK, "%s", evo_last_error());
  evo_algo_archive ar;
  cr_assert_eq(evo_algo_archive_get(a, &ar), EVO_STATUS_OK);
  return ar;
}

Test(map_elites, fills_the_grid_with_a_monotone_qd_score) {
  enum { P = 64 };
  for (int line = 0; line <= 1; line++) {
    evo_algo *a = me_new(P, line ? 0.2 : 0, 5, 10);
    float pop[P * ME_N], fit[P], bd[P * 2];
    double qd = 0, cov = 0;
    int g = 0, g90 = -1;
    for (; g < 150; g++) {
      evo_algo_archive ar = me_gen(a, pop, fit, bd);
      cr_assert_eq(ar.cells, 100);
      cr_assert_geq(ar.qd_score, qd, "gen %d: QD score fell from %g to %g", g, qd, ar.qd_score);
      cr_assert_geq(ar.coverage, cov, "gen %d: coverage fell", g);
      qd = ar.qd_score, cov = ar.coverage;
      if (g90 < 0 && cov >= 0.9) g90 = g + 1;
    }
    evo_algo_archive ar;
    evo_algo_archive_get(a, &ar);
    cr_log_info("map_elites (%s): coverage %.2f (0.9 at generation %d), QD score %.1f, %lld filled",
                line ? "iso+line" : "iso", ar.coverage, g90, ar.qd_score, (long long)ar.filled);
    cr_assert(g90 > 0 && g90 <= 100, "coverage 0.9 reached at generation %d, want <= 100", g90);
    /* QD score = sum (fitness - qd_offset), each term positive; the best elite is the best member. */
    double sum = 0, bestf = -INFINITY;
    float x[ME_N], best[ME_N], d[2], f;
    int64_t cell;
    for (int64_t k = 0; k < ar.filled; k++) {
      cr_assert_eq(evo_algo_archive_elite(a, k, &cell, &f, d, x), EVO_STATUS_OK);
      cr_assert_gt(f, -100.0f);
      sum += (double)f + 100;
      const int c0 = (int)fminf(9, floorf((d[0] + 1) / 2 * 10)), c1 = (int)fminf(9, floorf((d[1] + 1) / 2 * 10));
      cr_assert_eq(cell, c0 * 10 + c1, "elite %lld: cell %lld, descriptor (%g, %g)", (long long)k, (long long)cell,
                   d[0], d[1]);
      cr_assert_eq(d[0], fminf(1.0f, fmaxf(-1.0f, x[0])));
      bestf = fmax(bestf, f);
    }
    cr_assert_leq(fabs(sum - ar.qd_score), 1e-9 * fabs(sum));
    evo_algo_best(a, best);
    double fb = 0;
    for (int j = 0; j < ME_N; j++) fb += (double)best[j] * best[j];
    cr_assert_eq((float)-fb, (float)bestf);
    evo_algo_stats st;
    evo_algo_stats_get(a, &st);
    cr_assert_eq((float)st.best_fitness, (float)bestf);
    cr_assert_eq(evo_algo_archive_elite(a, ar.filled, NULL, NULL, NULL, NULL), EVO_STATUS_INVALID_ARGUMENT);
    evo_algo_free(a);
  }
}

/* 10^6 cells with a few hundred filled: memory follows the filled cells; 10^12 empty cells cost nothing. */
Test(map_elites, sparse_archive_memory) {
  enum { P = 64 };
  evo_algo *e = test_algo("map_elites", ME_N, P, 0, NULL, true, 0, &(evo_option){"cells_per_dim", 1e6}, 1);
  evo_algo_archive ar;
  cr_assert_eq(evo_algo_archive_get(e, &ar), EVO_STATUS_OK);
  cr_assert(ar.cells == 1000000000000LL && ar.filled == 0 && ar.bytes == 0 && ar.coverage == 0);
  evo_algo_free(e);

  evo_algo *a = me_new(P, 0, 2, 1000);
  float pop[P * ME_N], fit[P], bd[P * 2];
  for (int g = 0; g < 6; g++) ar = me_gen(a, pop, fit, bd);
  const size_t slot = sizeof(int64_t) + sizeof(float) * (1 + 2 + ME_N);
  cr_log_info("map_elites sparse: %lld of %lld cells filled, %zu bytes (dense: %zu)", (long long)ar.filled,
              (long long)ar.cells, ar.bytes, (size_t)ar.cells * slot);
  cr_assert(ar.cells == 1000000 && ar.filled >= 200 && ar.filled <= 1000, "filled %lld", (long long)ar.filled);
  /* slots grow by 1.5x, the index keeps load in (1/4, 1/2] */
  cr_assert_leq(ar.bytes, (size_t)(1.5 * ar.filled + 8) * slot + (size_t)(4 * ar.filled + 16) * sizeof(int64_t));
  evo_algo_free(a);
}

Test(map_elites, tell_without_descriptors_is_rejected) {
  enum { P = 8 };
  evo_algo *a = me_new(P, 0, 1, 10);
  cr_assert_eq(evo_algo_bd_dim(a), 2);
  float pop[P * ME_N], fit[P], bd[P * 2];
  test_ask(a, 0, P, pop);
  me_eval(pop, P, fit, bd);
  fit[0] = NAN;
  cr_assert_eq(evo_algo_tell(a, fit), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "evo_algo_tell_bd"), "message: %s", evo_last_error());
  cr_assert_eq(evo_algo_tell_bd(a, fit, bd, 3), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert_eq(evo_algo_tell_bd(a, fit, NULL, 2), EVO_STATUS_INVALID_ARGUMENT);
  evo_algo_stats st;
  evo_algo_stats_get(a, &st);
  cr_assert(st.generation == 0 && st.nan_count == 0 && isnan(st.best_fitness), "a rejected tell changed counters");
  /* NaN fitness or descriptor: not archived. */
  bd[3] = NAN;
  cr_assert_eq(evo_algo_tell_bd(a, fit, bd, 2), EVO_STATUS_OK);
  for (int64_t k = 0; k < P; k++) {
    int64_t cell;
    float x[ME_N];
    if (evo_algo_archive_elite(a, k, &cell, NULL, NULL, x) != EVO_STATUS_OK) break;
    cr_assert(memcmp(x, pop, sizeof x) && memcmp(x, pop + ME_N, sizeof x), "a NaN member was archived");
  }
  evo_algo_free(a);
  /* Other strategies: no descriptors, no archive; tell_bd ignores descriptors. */
  evo_algo *g = test_algo("simple_ga", ME_N, P, 0, NULL, true, 1, NULL, 0);
  evo_algo_archive ar;
  cr_assert_eq(evo_algo_bd_dim(g), 0);
  cr_assert_eq(evo_algo_archive_get(g, &ar), EVO_STATUS_UNSUPPORTED);
  test_ask(g, 0, P, pop);
  me_eval(pop, P, fit, bd);
  cr_assert_eq(evo_algo_tell_bd(g, fit, bd, 2), EVO_STATUS_OK);
  cr_assert_eq(evo_algo_generation(g), 1);
  evo_algo_free(g);
}

/* Populations, best and archive of `gens` generations appended to log. */
static size_t me_logged(evo_algo *a, int gens, float *log) {
  enum { P = 32 };
  float pop[P * ME_N], fit[P], bd[P * 2], part[P * ME_N];
  size_t at = 0;
  for (int g = 0; g < gens; g++) {
    me_gen(a, pop, fit, bd);
    memcpy(log + at, pop, sizeof pop), at += P * ME_N;
    test_ask(a, 5, 17, part); /* a slice of the next generation equals its rows of the full one */
    test_ask(a, 0, P, pop);
    cr_assert_eq(memcmp(part, pop + 5 * ME_N, sizeof(float) * 12 * ME_N), 0);
    evo_algo_best(a, log + at), at += ME_N;
  }
  evo_algo_archive ar;
  evo_algo_archive_get(a, &ar);
  for (int64_t k = 0; k < ar.filled; k++) {
    int64_t cell;
    evo_algo_archive_elite(a, k, &cell, log + at, log + at + 1, log + at + 3);
    log[at + 3 + ME_N] = (float)cell, at += 4 + ME_N;
  }
  memcpy(log + at, &ar.qd_score, sizeof(double));
  return at + 2;
}

Test(map_elites, deterministic_and_save_load_bit_identical) {
  const size_t cap = 100000;
  float *l1 = malloc(sizeof(float) * cap), *l2 = malloc(sizeof(float) * cap);
  char path[256];
  snprintf(path, sizeof path, "/tmp/evoc_test_me_%d.safetensors", (int)getpid());
  for (int line = 0; line <= 1; line++) {
    evo_algo *a = me_new(32, line ? 0.2 : 0, 8, 10), *b = me_new(32, line ? 0.2 : 0, 8, 10);
    size_t n1 = me_logged(a, 10, l1), n2 = me_logged(b, 10, l2);
    cr_assert(n1 == n2 && memcmp(l1, l2, sizeof(float) * n1) == 0, "two identical runs differ");
    evo_algo_archive ar;
    evo_algo_archive_get(a, &ar);
    cr_assert_gt(ar.filled, 10);
    cr_assert_eq(evo_algo_save(a, path), EVO_STATUS_OK, "%s", evo_last_error());
    evo_algo_free(b);
    b = me_new(32, line ? 0.2 : 0, 8, 10);
    me_logged(b, 3, l2); /* a non-empty archive of another size is replaced by the loaded one */
    cr_assert_eq(evo_algo_load(b, path), EVO_STATUS_OK, "%s", evo_last_error());
    n1 = me_logged(a, 15, l1), n2 = me_logged(b, 15, l2);
    cr_assert(n1 == n2 && memcmp(l1, l2, sizeof(float) * n1) == 0, "resumed run differs (line %d)", line);
    /* Loading into a fresh algorithm (empty archive) works too. */
    evo_algo *c = me_new(32, line ? 0.2 : 0, 8, 10);
    cr_assert_eq(evo_algo_load(c, path), EVO_STATUS_OK, "%s", evo_last_error());
    evo_algo_archive ac;
    evo_algo_archive_get(c, &ac);
    cr_assert(ac.filled == ar.filled && ac.qd_score == ar.qd_score);
    /* An archive saved empty loads empty. */
    evo_algo *d = me_new(32, 0, 8, 10);
    cr_assert_eq(evo_algo_save(d, path), EVO_STATUS_OK, "%s", evo_last_error());
    cr_assert_eq(evo_algo_load(c, path), EVO_STATUS_OK, "%s", evo_last_error());
    evo_algo_archive_get(c, &ac);
    cr_assert_eq(ac.filled, 0);
    unlink(path);
    evo_algo_free(a);
    evo_algo_free(b);
    evo_algo_free(c);
    evo_algo_free(d);
  }
  free(l1);
  free(l2);
}

/* ---- shared weight decay ---- */

Test(weight_decay, penalty_and_its_use) {
  evo_algo *a = test_algo("simple_ga", 4, 16, 0.3, NULL, true, 1, &(evo_option){"weight_decay", 0.5}, 1);
  const float x[4] = {1, -2, 3, 0};
  cr_assert_eq(evo_algo_weight_decay_coef(a), 0.5);
  cr_assert_eq(evo_algo_weight_decay(a, x, 4), 0.5 * 14 / 4);
  float g[4] = {1, 1, 1, 1};
  evo_algo_weight_decay_grad(a, x, 4, g);
  cr_assert(g[0] == 1.5f && g[1] == 0.0f && g[2] == 2.5f && g[3] == 1.0f);
  evo_algo *p = test_algo("pgpe", 4, 0, 0, NULL, true, 1, NULL, 0);
  cr_assert_eq(evo_algo_weight_decay(p, x, 4), 0); /* no such option: off */
  evo_algo_free(p);
  /* On a flat fitness the penalty alone drives SimpleGA to small weights. */
  const float x0[4] = {2, 2, 2, 2};
  evo_algo_free(a);
  a = test_algo("simple_ga", 4, 32, 0.3, x0, true, 1, &(evo_option){"weight_decay", 0.5}, 1);
  float pop[32 * 4], fit[32] = {0}, best[4];
  for (int k = 0; k < 40; k++) {
    test_ask(a, 0, 32, pop);
    evo_algo_tell(a, fit);
  }
  evo_algo_best(a, best);
  cr_assert_lt(evo_algo_weight_decay(a, best, 4), 0.5 * 0.1, "mean x^2 of the best = %g",
               evo_algo_weight_decay(a, best, 4) / 0.5);
  evo_algo_free(a);
  /* MAP-Elites stores the penalised fitness. */
  const evo_option o[] = {{"bd_lo", -1}, {"bd_hi", 1}, {"weight_decay", 2}};
  evo_algo *m = test_algo("map_elites", ME_N, 16, 0.5, NULL, true, 3, o, 3);
  float mp[16 * ME_N], mf[16], mb[32], xe[ME_N], fe;
  test_ask(m, 0, 16, mp);
  me_eval(mp, 16, mf, mb);
  cr_assert_eq(evo_algo_tell_bd(m, mf, mb, 2), EVO_STATUS_OK);
  cr_assert_eq(evo_algo_archive_elite(m, 0, NULL, &fe, NULL, xe), EVO_STATUS_OK);
  double s = 0;
  for (int j = 0; j < ME_N; j++) s += (double)xe[j] * xe[j];
  cr_assert_float_eq(fe, (float)(-s - 2 * s / ME_N), 1e-5);
  evo_algo_free(m);
}
