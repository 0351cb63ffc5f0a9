/* Helpers shared by tests/test_cmaes.c and tests/test_cmaes_runs.c: pycma's objective functions in double at the
   f32 members, creating / stepping a strategy, and bitwise comparison of CMA-ES states. Each test file defines
   its suite, whose init sets `be`. */
#ifndef EVOC_CMAES_TEST_UTIL_H
#define EVOC_CMAES_TEST_UTIL_H
#include <criterion/criterion.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "algo_impl.h"
#include "es/cmaes_impl.h"
#include "es/cmaes_params.h"
#include "evoc/algo.h"
#include "evoc/backend.h"

static evo_backend *be; /* set by each suite's init */

/* ---- objective functions (minimised, double precision at the f32 member) ---- */

typedef double (*objfn)(const float *x, int n);
static inline double f_sphere(const float *x, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
  return s;
}
static inline double f_elli(const float *x, int n) { /* pycma cma.ff.elli: cond 1e6 */
  double s = 0;
  for (int i = 0; i < n; i++) s += pow(1e6, n > 1 ? i / (n - 1.0) : 0) * (double)x[i] * x[i];
  return s;
}
static inline double f_rosen(const float *x, int n) {
  double s = 0;
  for (int i = 0; i < n - 1; i++) {
    double a = (double)x[i] * x[i] - x[i + 1], b = 1 - (double)x[i];
    s += 100 * a * a + b * b;
  }
  return s;
}
static inline double f_rastrigin(const float *x, int n) {
  double s = 10.0 * n;
  for (int i = 0; i < n; i++) s += (double)x[i] * x[i] - 10 * cos(6.283185307179586 * x[i]);
  return s;
}

static inline uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static inline double unif(uint64_t *s) { return (double)(splitmix(s) >> 11) / 9007199254740992.0; }

/* ---- helpers ---- */

static inline evo_algo *make_algo(const char *name, int n, double x0, double sigma, int pop, uint64_t seed,
                                  const evo_option *opt, int n_opt) {
  float *m = malloc(sizeof(float) * (size_t)n);
  for (int i = 0; i < n; i++) m[i] = (float)x0;
  evo_algo_params p = evo_algo_default_params();
  p.name = name;
  p.num_params = n;
  p.pop_size = pop;
  p.init_stdev = sigma;
  p.init_mean = m;
  p.key = evo_key_from_seed(seed);
  p.maximize = false;
  p.options = opt;
  p.n_options = n_opt;
  evo_algo *a = NULL;
  evo_status st = evo_algo_new(&p, &a);
  free(m);
  cr_assert_eq(st, EVO_STATUS_OK, "evo_algo_new(%s): %s", name, evo_last_error());
  return a;
}

/* Asks the whole current population into a fresh host array (caller frees). */
static inline float *ask_all(evo_algo *a, int *pop) {
  int P = evo_algo_pop_size(a);
  int64_t n = evo_algo_num_params(a), shape[2] = {P, n};
  evo_tensor *t = evo_tensor_new(be, EVO_F32, 2, shape);
  cr_assert_eq(evo_algo_ask(a, 0, P, t), EVO_STATUS_OK, "ask: %s", evo_last_error());
  float *x = malloc(sizeof(float) * (size_t)(P * n));
  memcpy(x, evo_tensor_data(t), sizeof(float) * (size_t)(P * n));
  evo_tensor_free(t);
  *pop = P;
  return x;
}

/* One generation on f; returns the generation's best f and writes the fitness used (f32). */
static inline double step(evo_algo *a, objfn f) {
  int P;
  int n = (int)evo_algo_num_params(a);
  float *x = ask_all(a, &P), *fit = malloc(sizeof(float) * (size_t)P);
  double best = INFINITY;
  for (int i = 0; i < P; i++) {
    double v = f(x + (size_t)i * n, n);
    fit[i] = (float)v;
    best = fmin(best, v);
  }
  cr_assert_eq(evo_algo_tell(a, fit), EVO_STATUS_OK, "tell: %s", evo_last_error());
  free(x);
  free(fit);
  return best;
}

/* Evaluations until f <= target (counted in whole generations, as pycma's ftarget), or -1 past max_evals. */
static inline int64_t evals_to_target(evo_algo *a, objfn f, double target, int64_t max_evals) {
  int64_t evals = 0;
  while (evals < max_evals) {
    int P = evo_algo_pop_size(a);
    double b = step(a, f);
    evals += P;
    if (b <= target) return evals;
  }
  return -1;
}

static inline cmaes_state *st_of(evo_algo *a) { return a->state; }

/* Bitwise equality of the strategy state. values_too = 0 leaves out what depends on fitness values rather than
   on rankings (best-ever f and member, stop flags from TolFun / EqualFunValues, the f histories). */
static inline void assert_same(evo_algo *x, evo_algo *y, const char *what, int values_too) {
  cmaes_state *s = st_of(x), *t = st_of(y);
  int64_t n = s->n, nn = s->sep ? n : n * n;
  cr_assert_eq(evo_algo_pop_size(x), evo_algo_pop_size(y), "%s: population", what);
  if (values_too) {
    cr_assert_eq(memcmp(&s->sc, &t->sc, sizeof s->sc), 0, "%s: scalars differ", what);
    cr_assert_eq(memcmp(s->best_x, t->best_x, sizeof(float) * (size_t)n), 0, "%s: best_x differs", what);
    cr_assert_eq(memcmp(s->hist_best, t->hist_best, sizeof(double) * CMAES_HIST), 0, "%s: history", what);
    cr_assert_eq(memcmp(s->hist_med, t->hist_med, sizeof(double) * CMAES_HIST), 0, "%s: history", what);
  }
  cr_assert_eq(memcmp(&s->sc.sigma, &t->sc.sigma, sizeof(double)), 0, "%s: sigma %.17g vs %.17g", what, s->sc.sigma,
               t->sc.sigma);
  cr_assert(s->sc.run_gen == t->sc.run_gen && s->sc.eigen_count == t->sc.eigen_count, "%s: counters", what);
  cr_assert_eq(memcmp(s->mean, t->mean, sizeof(double) * (size_t)n), 0, "%s: mean differs", what);
  cr_assert_eq(memcmp(s->ps, t->ps, sizeof(double) * (size_t)n), 0, "%s: p_sigma differs", what);
  cr_assert_eq(memcmp(s->pc, t->pc, sizeof(double) * (size_t)n), 0, "%s: p_c differs", what);
  cr_assert_eq(memcmp(s->C, t->C, sizeof(double) * (size_t)nn), 0, "%s: C differs", what);
  if (s->B) cr_assert_eq(memcmp(s->B, t->B, sizeof(double) * (size_t)nn), 0, "%s: B differs", what);
  cr_assert_eq(memcmp(s->D, t->D, sizeof(double) * (size_t)n), 0, "%s: D differs", what);
  cr_assert_eq(x->restarts, y->restarts, "%s: restarts", what);
  cr_assert_eq(x->gen, y->gen, "%s: generation", what);
}
static inline void assert_same_state(evo_algo *x, evo_algo *y, const char *what) { assert_same(x, y, what, 1); }
static inline void assert_same_distribution(evo_algo *x, evo_algo *y, const char *what) { assert_same(x, y, what, 0); }

static inline int close_rel(double got, double want, double rel) { return fabs(got - want) <= rel * fabs(want); }
/* pycma's doctests print values truncated with "...": got must start with the printed digits. */
#define ASSERT_PREFIX(got, printed, digits)                                                                         \
  cr_assert((got) >= (printed)-1e-15 && (got) < (printed) + pow(10, -(digits)), "%s = %.12g, pycma prints %.*f...", \
            #got, (double)(got), (digits), (double)(printed))
#define ASSERT_REL(got, want, rel)                                                                       \
  cr_assert(close_rel((got), (want), (rel)), "%s = %.10g, expected %.10g (rel %g)", #got, (double)(got), \
            (double)(want), (double)(rel))

#endif
