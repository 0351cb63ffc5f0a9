/* Evaluations to reach a target f with CMA-ES, median over seeds, on the problems bench/cma_peers.py runs with
   pycma (same functions, dimension, x0, sigma0, target; pycma's termination criteria off there, none but the
   target here: restarts 0, and a run that has not reached the target after max_evals counts as a failure).

   Functions (as pycma's cma.ff, evaluated in double at the f32 members that ask returns):
     sphere sum x_i^2; elli sum 1e6^(i/(n-1)) x_i^2; rosen sum 100 (x_i^2 - x_{i+1})^2 + (1 - x_i)^2.
   Counting: whole generations, the first whose best f <= target (pycma's ftarget counts the same way).

   usage: bench_cmaes_evals [--seeds K] [--csv] [--quick]
   Each problem runs with the tutorial's parameters (default), with pycma_cmu = 1 (pycma's c_mu), and with
   cholesky_cmaes (Cholesky-CMA-ES, with its default active weights and with positive ones only as Krause et al.
   2016). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/algo.h"
#include "evoc/backend.h"

typedef double (*objfn)(const float *x, int n);
static double f_sphere(const float *x, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
  return s;
}
static double f_elli(const float *x, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += pow(1e6, n > 1 ? i / (n - 1.0) : 0) * (double)x[i] * x[i];
  return s;
}
static double f_rosen(const float *x, int n) {
  double s = 0;
  for (int i = 0; i < n - 1; i++) {
    double a = (double)x[i] * x[i] - x[i + 1], b = 1 - (double)x[i];
    s += 100 * a * a + b * b;
  }
  return s;
}

typedef struct {
  const char *fname;
  objfn f;
  int n;
  double x0, sigma0, target;
  int64_t max_evals;
} problem;

/* Keep in sync with PROBLEMS in bench/cma_peers.py. */
static const problem problems[] = {
    {"sphere", f_sphere, 10, 1.0, 1.0, 1e-10, 100000}, {"sphere", f_sphere, 20, 1.0, 1.0, 1e-10, 200000},
    {"elli", f_elli, 7, 0.1, 1.0, 1e-9, 100000},       {"elli", f_elli, 10, 0.1, 1.0, 1e-9, 200000},
    {"elli", f_elli, 20, 0.1, 1.0, 1e-9, 400000},      {"rosen", f_rosen, 10, 0.1, 0.3, 1e-12, 200000},
    {"rosen", f_rosen, 5, 0.1, 0.3, 1e-10, 100000},
};

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* variant 0: cmaes with the tutorial's c_mu, 1: cmaes with pycma's c_mu, 2: cholesky_cmaes (active, its default),
   3: cholesky_cmaes with positive weights only (Krause et al.'s algorithm). */
static const char *const variant_names[] = {"tutorial", "pycma_cmu", "cholesky", "chol_passive"};

static int64_t run(evo_backend *be, const problem *pb, int variant, uint64_t seed) {
  const int n = pb->n;
  float *x0 = malloc(sizeof(float) * (size_t)n);
  for (int j = 0; j < n; j++) x0[j] = (float)pb->x0;
  evo_option opt[] = {{"pycma_cmu", variant == 1}}, chol_opt[] = {{"active", variant == 2}};
  evo_algo_params p = evo_algo_default_params();
  p.name = variant >= 2 ? "cholesky_cmaes" : "cmaes", p.num_params = n, p.init_stdev = pb->sigma0;
  p.init_mean = x0, p.maximize = false;
  p.key = evo_key_from_seed(seed), p.options = variant >= 2 ? chol_opt : opt, p.n_options = 1;
  evo_algo *a;
  if (evo_algo_new(&p, &a) != EVO_STATUS_OK) {
    fprintf(stderr, "bench_cmaes_evals: %s\n", evo_last_error());
    exit(1);
  }
  const int P = evo_algo_pop_size(a);
  int64_t shape[2] = {P, n}, evals = 0, result = -1;
  evo_tensor *pop = evo_tensor_new(be, EVO_F32, 2, shape);
  float *fit = malloc(sizeof(float) * (size_t)P);
  while (evals < pb->max_evals && result < 0) {
    evo_algo_ask(a, 0, P, pop);
    const float *x = evo_tensor_data(pop);
    double best = INFINITY;
    for (int i = 0; i < P; i++) {
      double v = pb->f(x + (size_t)i * n, n);
      fit[i] = (float)v;
      best = fmin(best, v);
    }
    evo_algo_tell(a, fit);
    evals += P;
    if (best <= pb->target) result = evals;
  }
  evo_tensor_free(pop);
  free(fit);
  free(x0);
  evo_algo_free(a);
  return result;
}

int main(int argc, char **argv) {
  int seeds = 21, csv = 0, quick = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seeds") && i + 1 < argc)
      seeds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--csv"))
      csv = 1;
    else if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else {
      fprintf(stderr, "usage: %s [--seeds K] [--csv] [--quick]\n", argv[0]);
      return 2;
    }
  }
  if (quick) seeds = 5;
  if (seeds < 1 || seeds > 1000) seeds = 21;
  evo_backend *be = evo_backend_cpu_new(NULL);
  if (!csv)
    printf("%-7s %3s %5s %6s %8s  %-12s %9s %9s %9s %7s\n", "f", "n", "x0", "sigma0", "target", "variant", "median",
           "min", "max", "solved");
  int64_t *ev = malloc(sizeof(int64_t) * (size_t)seeds);
  for (size_t k = 0; k < sizeof problems / sizeof *problems; k++) {
    const problem *pb = &problems[k];
    for (int variant = 0; variant < 4; variant++) {
      int solved = 0;
      for (int s = 0; s < seeds; s++) {
        ev[s] = run(be, pb, variant, (uint64_t)(s + 1));
        if (ev[s] < 0)
          ev[s] = INT64_MAX; /* failures sort last; the median is meaningful while < half fail */
        else
          solved++;
      }
      qsort(ev, (size_t)seeds, sizeof *ev, cmp_i64);
      int64_t med = ev[seeds / 2];
      const char *vname = variant_names[variant];
      if (csv)
        printf("evoc,%s,%d,%g,%g,%g,%s,%lld,%lld,%lld,%d,%d\n", pb->fname, pb->n, pb->x0, pb->sigma0, pb->target, vname,
               (long long)(med == INT64_MAX ? -1 : med), (long long)ev[0], (long long)(solved ? ev[solved - 1] : -1),
               solved, seeds);
      else
        printf("%-7s %3d %5g %6g %8g  %-12s %9lld %9lld %9lld %4d/%d\n", pb->fname, pb->n, pb->x0, pb->sigma0,
               pb->target, vname, (long long)(med == INT64_MAX ? -1 : med), (long long)ev[0],
               (long long)(solved ? ev[solved - 1] : -1), solved, seeds);
      fflush(stdout);
    }
  }
  free(ev);
  evo_backend_free(be);
  return 0;
}
