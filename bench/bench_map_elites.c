/* MAP-Elites ask + tell per generation against EvoJAX's MAPElites (bench/map_elites_peers.py, the same shapes and
   descriptors): P = 64 and 1,024 members of n = 4,609 parameters (EvoJAX's CartPole MLP), a 32 x 32 grid over two
   descriptors, iso_sigma 0.05, line_sigma 0.5 (Iso+LineDD; EvoJAX draws its line factor U[0, 0.5] once per
   generation, evoc N(0, 0.5) per member), starting from x = 0.

   Member i's fitness is -sum x^2 and its descriptors are sigmoid(20 x_0), sigmoid(20 x_1), both computed outside
   the timed region; a generation times evo_algo_ask (whole population) + evo_algo_tell_bd. `warmup` untimed
   generations fill the archive first. Prints median and min ms per generation and the filled cells at the end.

   usage: bench_map_elites [--quick] [--runs N] [--warmup N] [--threads N] (bench_util.h) */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#ifdef _OPENMP
#include <omp.h>
#endif
#pragma GCC diagnostic ignored "-Wunused-function" /* bench_util.h: only its options and timing */
#include "bench_util.h"
#include "evoc/algo.h"

static void die(const char *what) {
  fprintf(stderr, "bench_map_elites: %s failed: %s\n", what, evo_last_error());
  exit(1);
}

int main(int argc, char **argv) {
  const bench_opts o = bench_parse(argc, argv);
  const int runs = o.runs > 0 ? o.runs : o.quick ? 5 : 51, warmup = o.warmup >= 0 ? o.warmup : 10;
#ifdef _OPENMP
  if (o.threads > 0) omp_set_num_threads(o.threads);
  const int nthreads = omp_get_max_threads();
#else
  const int nthreads = 1;
#endif
  const int pops[2] = {64, 1024};
  const int64_t n = 4609;
  evo_backend *be = evo_backend_cpu_new(NULL);
  if (!be) die("backend");
  printf("MAP-Elites ask + tell_bd per generation (threads %d); 32 x 32 grid, iso 0.05, line 0.5\n", nthreads);
  printf("%-28s %10s %10s %8s\n", "workload", "median ms", "min ms", "cells");
  for (int c = 0; c < 2; c++) {
    const int P = pops[c];
    const evo_option opts[] = {{"bd_dim", 2}, {"cells_per_dim", 32}, {"line_sigma", 0.5}};
    evo_algo_params p = evo_algo_default_params();
    p.name = "map_elites";
    p.num_params = n;
    p.pop_size = P;
    p.init_stdev = 0.05;
    p.maximize = true;
    p.key = evo_key_from_seed(1);
    p.options = opts;
    p.n_options = 3;
    evo_algo *a;
    if (evo_algo_new(&p, &a) != EVO_STATUS_OK) die("evo_algo_new");
    const int64_t shape[2] = {P, n};
    evo_tensor *pop = evo_tensor_new(be, EVO_F32, 2, shape);
    float *fit = malloc(sizeof(float) * (size_t)P), *bd = malloc(sizeof(float) * 2 * (size_t)P);
    double *t = malloc(sizeof(double) * (size_t)runs);
    if (!pop || !fit || !bd || !t) die("alloc");
    for (int g = -warmup; g < runs; g++) {
      const double t0 = bench_now();
      if (evo_algo_ask(a, 0, P, pop) != EVO_STATUS_OK) die("ask");
      const double t1 = bench_now();
      const float *x = evo_tensor_data(pop);
      for (int i = 0; i < P; i++) {
        double s = 0;
        for (int64_t j = 0; j < n; j++) s += (double)x[i * n + j] * x[i * n + j];
        fit[i] = (float)-s;
        for (int d = 0; d < 2; d++) bd[2 * i + d] = (float)(1 / (1 + exp(-20.0 * x[i * n + d])));
      }
      const double t2 = bench_now();
      if (evo_algo_tell_bd(a, fit, bd, 2) != EVO_STATUS_OK) die("tell_bd");
      const double t3 = bench_now();
      if (g >= 0) t[g] = (t1 - t0) + (t3 - t2);
    }
    const double med = bench_median(t, runs); /* sorts t */
    evo_algo_archive ar;
    if (evo_algo_archive_get(a, &ar) != EVO_STATUS_OK) die("archive");
    char name[64];
    snprintf(name, sizeof name, "me_P%d_n%lld", P, (long long)n);
    printf("%-28s %10.3f %10.3f %8lld\n", name, 1e3 * med, 1e3 * t[0], (long long)ar.filled);
    fflush(stdout);
    evo_tensor_free(pop);
    free(fit), free(bd), free(t);
    evo_algo_free(a);
  }
  evo_backend_free(be);
  return 0;
}
