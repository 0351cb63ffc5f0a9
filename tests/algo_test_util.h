/* Helpers shared by the algorithm tests: create a strategy, ask into host memory, evaluate benchmark functions. */
#ifndef EVOC_ALGO_TEST_UTIL_H
#define EVOC_ALGO_TEST_UTIL_H
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "algo_impl.h"
#include "evoc/algo.h"
#include "evoc/backend.h"
#include "evoc/functions.h"

static evo_backend *test_backend(void) {
  static evo_backend *be;
  if (!be) {
    evo_backend_params p = evo_backend_default_params();
    p.n_threads = 1;
    be = evo_backend_cpu_new(&p);
    cr_assert_not_null(be);
  }
  return be;
}

/* Rows [begin, end) of the current generation into out. */
static evo_status test_ask(evo_algo *a, int begin, int end, float *out) {
  int64_t shape[2] = {end - begin, evo_algo_num_params(a)};
  evo_tensor *t = evo_tensor_new(test_backend(), EVO_F32, 2, shape);
  cr_assert_not_null(t);
  evo_status st = evo_algo_ask(a, begin, end, t);
  if (st == EVO_STATUS_OK) memcpy(out, evo_tensor_data(t), evo_tensor_nbytes(t));
  evo_tensor_free(t);
  return st;
}

static evo_algo *test_algo(const char *name, int64_t n, int pop, double stdev, const float *mean, bool maximize,
                           uint64_t seed, const evo_option *opts, int n_opts) {
  evo_algo_params p = evo_algo_default_params();
  p.name = name, p.num_params = n, p.pop_size = pop, p.init_stdev = stdev, p.init_mean = mean;
  p.maximize = maximize, p.key = evo_key_from_seed(seed), p.options = opts, p.n_options = n_opts;
  evo_algo *a = NULL;
  evo_status st = evo_algo_new(&p, &a);
  cr_assert_eq(st, EVO_STATUS_OK, "%s: %s", name, evo_last_error());
  return a;
}

/* f over the rows of pop (minimised). */
static void test_eval(const evo_fn *f, const float *pop, int rows, float *fit) {
  const int64_t n = evo_fn_dim(f);
  for (int r = 0; r < rows; r++) fit[r] = (float)evo_fn_eval_f32(f, pop + (int64_t)r * n);
}

/* tell, with descriptors when the algorithm needs them (MAP-Elites): the first bd_dim coordinates of each of the
   pop_size rows of pop (wrapping around when bd_dim > num_params). */
static evo_status test_tell(evo_algo *a, const float *pop, const float *fit) {
  const int d = evo_algo_bd_dim(a), P = evo_algo_pop_size(a);
  if (d == 0) return evo_algo_tell(a, fit);
  const int64_t n = evo_algo_num_params(a);
  float *bd = malloc(sizeof(float) * (size_t)P * (size_t)d);
  for (int i = 0; i < P; i++)
    for (int j = 0; j < d; j++) bd[i * d + j] = pop[i * n + j % n];
  evo_status st = evo_algo_tell_bd(a, fit, bd, d);
  free(bd);
  return st;
}

/* One generation on f (minimised, so the algorithm must have maximize = false). Returns f at the best point. */
static inline double test_generation(evo_algo *a, const evo_fn *f, float *pop, float *fit) {
  const int P = evo_algo_pop_size(a);
  cr_assert_eq(test_ask(a, 0, P, pop), EVO_STATUS_OK, "%s", evo_last_error());
  test_eval(f, pop, P, fit);
  cr_assert_eq(test_tell(a, pop, fit), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_algo_best(a, pop), EVO_STATUS_OK);
  return evo_fn_eval_f32(f, pop);
}

/* A strategy's f64 state array by name, read through its registration list (the checkpoints' view); n: its length. */
static inline void *test_state_entry(evo_algo *a, const char *name, evo_dtype dtype, int64_t *n) {
  evo_state_list l = {0};
  a->vt->state(a, &l);
  for (int i = 0; i < l.n; i++)
    if (strcmp(l.e[i].name, name) == 0) {
      cr_assert_eq(l.e[i].dtype, dtype, "%s has dtype %d, not %d", name, (int)l.e[i].dtype, (int)dtype);
      if (n) *n = l.e[i].n;
      return l.e[i].data;
    }
  cr_assert_fail("%s has no state array %s", evo_algo_name(a), name);
  return NULL;
}
static inline double *test_state_array(evo_algo *a, const char *name, int64_t *n) {
  return test_state_entry(a, name, EVO_F64, n);
}

/* Buffers big enough for any population a strategy may grow to in these tests (restarts enlarge it). */
#define TEST_MAX_POP 4096

#endif
