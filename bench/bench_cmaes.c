/* ask + tell time per generation of CMA-ES and Cholesky-CMA-ES (full covariance, n = 100 and 1,000), sep-CMA-ES
   (n = 10,000), LM-MA-ES (n = 10,000 and 1,000,000), PGPE (n = 10,000 and 1,000,000), CEM (n = 10,000 and
   1,000,000, its default pop 4 (4 + floor(3 ln n))), SNES, OpenES, ARS and SimpleGA (n = 10,000), xNES (n = 100) and
   CR-FM-NES (n = 1,000), each with its default population; peers: bench/cma_peers.py (pycma for the CMA rows, evosax
   for the others but CEM) and bench/evotorch_es_peers.py (EvoTorch's CEM, PGPE, SNES, xNES and CMA-ES) with the
   same n, population, x0, sigma0, objective and generation counts.

   Method: x0 = 0.5 (all coordinates), sigma0 = 0.5, default lambda = 4 + floor(3 ln n) (PGPE: pop 2 (4 + floor(3 ln
   n)), its default), sphere objective evaluated outside the timed region. `warmup` untimed generations (see the
   cases below), then `gens` timed generations; each generation times evo_algo_ask (whole population) + evo_algo_tell
   with clock_gettime. We report the mean (which includes the eigendecompositions, amortised over a whole number of
   periods) and the median per generation (a generation without one), plus the mean of ask and tell alone.

   usage: bench_cmaes [--quick] [--csv] [--threads N] [--case ALGO:N]...
     --case ALGO:N  run only this row (repeatable); bench/cma_peers.py runs each row just before its peers, so a
                    change in the load of a shared machine hits both sides of a row alike
     --threads N  OpenMP threads, which the openmp build of OpenBLAS follows too (default: OMP_NUM_THREADS or all
                  cores); the peers use one BLAS thread, so compare against --threads 1. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "evoc/algo.h"
#include "evoc/backend.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void die(const char *what) {
  fprintf(stderr, "bench_cmaes: %s failed: %s\n", what, evo_last_error());
  exit(1);
}

typedef struct {
  const char *algo;
  int64_t n;
  int warmup, gens, quick_gens;
} bench_case;

int main(int argc, char **argv) {
  int quick = 0, csv = 0, threads = 0, n_sel = 0;
  const char *sel[16];
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--csv"))
      csv = 1;
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--case") && i + 1 < argc && n_sel < 16)
      sel[n_sel++] = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--quick] [--csv] [--threads N] [--case ALGO:N]...\n", argv[0]);
      return strcmp(argv[i], "--help") && strcmp(argv[i], "-h") ? 2 : 0;
    }
  }
#ifdef _OPENMP
  if (threads > 0) omp_set_num_threads(threads);
  int nthreads = omp_get_max_threads();
#else
  int nthreads = 1;
  (void)threads;
#endif
  /* warmup: CMA-ES one eigendecomposition period (1 at n = 100, 8 at n = 1000; gens = whole periods); LM-MA-ES at
     n = 10,000 its m = 31 generations, after which every member goes through all m direction vectors (at
     n = 1,000,000 the rows time generations 2-11, which use only that many of the m = 45 vectors). */
  static const bench_case cases[] = {{"cmaes", 100, 1, 400, 100},    {"cmaes", 1000, 8, 96, 32},
                                     {"sep_cmaes", 10000, 1, 200, 50}, {"lmmaes", 10000, 32, 100, 20},
                                     {"lmmaes", 1000000, 1, 10, 3},    {"pgpe", 1000000, 1, 10, 3},
                                     {"cem", 10000, 2, 100, 20},       {"cem", 1000000, 1, 10, 3},
                                     {"pgpe", 10000, 2, 100, 20},      {"snes", 10000, 2, 100, 20},
                                     {"xnes", 100, 2, 200, 50},        {"openes", 10000, 2, 100, 20},
                                     {"ars", 10000, 2, 100, 20},       {"crfmnes", 1000, 2, 100, 20},
                                     {"simple_ga", 10000, 2, 100, 20},
                                     {"cholesky_cmaes", 100, 1, 400, 100}, {"cholesky_cmaes", 1000, 8, 96, 32}};
  evo_backend_params bp = evo_backend_default_params();
  evo_backend *be = evo_backend_cpu_new(&bp);
  if (!be) die("backend");
  if (!csv) {
    printf("CMA-ES ask + tell per generation (threads %d); sphere, x0 0.5, sigma0 0.5, default lambda\n", nthreads);
    printf("%-10s %7s %6s %6s %8s %12s %12s %10s %10s\n", "algo", "n", "lambda", "gens", "eigens", "mean ms/gen",
           "median ms", "ask ms", "tell ms");
  }
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    const bench_case *k = &cases[c];
    char name[64];
    snprintf(name, sizeof name, "%s:%lld", k->algo, (long long)k->n);
    int wanted = n_sel == 0;
    for (int s = 0; s < n_sel; s++) wanted |= !strcmp(sel[s], name);
    if (!wanted) continue;
    const int64_t n = k->n;
    const int gens = quick ? k->quick_gens : k->gens;
    float *x0 = malloc(sizeof(float) * (size_t)n);
    for (int64_t j = 0; j < n; j++) x0[j] = 0.5f;
    evo_algo_params p = evo_algo_default_params();
    p.name = k->algo;
    p.num_params = n;
    p.init_stdev = 0.5;
    p.init_mean = x0;
    p.maximize = false;
    p.key = evo_key_from_seed(1);
    evo_algo *a;
    if (evo_algo_new(&p, &a) != EVO_STATUS_OK) die("evo_algo_new");
    const int P = evo_algo_pop_size(a);
    int64_t shape[2] = {P, n};
    evo_tensor *pop = evo_tensor_new(be, EVO_F32, 2, shape);
    float *fit = malloc(sizeof(float) * (size_t)P);
    double *t_gen = malloc(sizeof(double) * (size_t)gens), t_ask = 0, t_tell = 0;
    if (!pop || !fit || !t_gen) die("alloc");
    for (int g = -k->warmup; g < gens; g++) {
      double t0 = now_s();
      if (evo_algo_ask(a, 0, P, pop) != EVO_STATUS_OK) die("ask");
      double t1 = now_s();
      const float *x = evo_tensor_data(pop);
      for (int i = 0; i < P; i++) {
        double s = 0;
        for (int64_t j = 0; j < n; j++) s += (double)x[i * n + j] * x[i * n + j];
        fit[i] = (float)s;
      }
      double t2 = now_s();
      if (evo_algo_tell(a, fit) != EVO_STATUS_OK) die("tell");
      double t3 = now_s();
      if (g >= 0) {
        t_gen[g] = (t1 - t0) + (t3 - t2);
        t_ask += t1 - t0;
        t_tell += t3 - t2;
      }
    }
    double mean = 0;
    for (int g = 0; g < gens; g++) mean += t_gen[g];
    mean /= gens;
    qsort(t_gen, (size_t)gens, sizeof(double), cmp_d);
    double med = gens % 2 ? t_gen[gens / 2] : 0.5 * (t_gen[gens / 2 - 1] + t_gen[gens / 2]);
    /* eigendecompositions in the timed generations: every gap-th generation of the run */
    int eig = 0;
    if (!strcmp(k->algo, "cmaes")) {
      int gap = k->warmup; /* warmup was chosen as one period */
      eig = gens / gap;
    }
    if (csv)
      printf("evoc,%s,%lld,%d,%d,%d,%.4f,%.4f,%.4f,%.4f,%d\n", k->algo, (long long)n, P, gens, eig, 1e3 * mean,
             1e3 * med, 1e3 * t_ask / gens, 1e3 * t_tell / gens, nthreads);
    else
      printf("%-10s %7lld %6d %6d %8d %12.3f %12.3f %10.3f %10.3f\n", k->algo, (long long)n, P, gens, eig, 1e3 * mean,
             1e3 * med, 1e3 * t_ask / gens, 1e3 * t_tell / gens);
    fflush(stdout);
    evo_tensor_free(pop);
    free(fit);
    free(t_gen);
    free(x0);
    evo_algo_free(a);
  }
  evo_backend_free(be);
  return 0;
}
