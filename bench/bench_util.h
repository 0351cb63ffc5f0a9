/* Shared helpers for the bench_*.c programs: command-line options, a monotonic clock, median timing, a
   deterministic input generator, and the result table. Header-only so each benchmark stays one program.

   Timing method (the same in bench/jax_peers.py): `warmup` untimed runs, then `runs` timed runs, each timed alone
   with clock_gettime(CLOCK_MONOTONIC); we report the median (and min) in milliseconds and
   GFLOP/s = flop / median_seconds / 1e9. FLOPs count one multiply-add as 2 FLOPs for matmul and conv; the exact
   formula of each workload is written in its program. */
#ifndef EVOC_BENCH_UTIL_H
#define EVOC_BENCH_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include "evoc/backend.h"
#include "evoc/graph.h"
#include "evoc/jit.h"
#include "evoc/status.h"
#include "evoc/tensor.h"
#include "evoc/transform.h"

typedef struct {
  int quick;   /* --quick: fewer runs, main sizes only */
  int csv;     /* --csv: machine-readable rows (used by bench/run_peers.sh) */
  int runs;    /* --runs N (0 = program default) */
  int warmup;  /* --warmup N (-1 = program default) */
  int threads; /* --threads N (0 = OpenMP default) */
  const char *device; /* --device cpu|cuda|cuda:N|auto (default cpu) */
} bench_opts;

static void bench_usage(const char *prog) {
  fprintf(stderr,
          "usage: %s [--quick] [--csv] [--runs N] [--warmup N] [--threads N] [--device D]\n"
          "  --quick     fewer timed runs and only the main size (a smoke run)\n"
          "  --csv       print rows as evoc,workload,config,flop,median_ms,min_ms,gflops (bench/run_peers.sh)\n"
          "  --runs N    timed runs (median reported)\n"
          "  --warmup N  untimed runs before timing\n"
          "  --threads N CPU backend threads (default: OpenMP default, i.e. OMP_NUM_THREADS or all cores)\n"
          "  --device D  cpu (default), cuda, cuda:N or auto; without a usable GPU a cuda run prints\n"
          "              \"skipped: no usable CUDA device\" and exits 0\n",
          prog);
}

static bench_opts bench_parse(int argc, char **argv) {
  bench_opts o = {0, 0, 0, -1, 0, "cpu"};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) o.quick = 1;
    else if (!strcmp(argv[i], "--csv")) o.csv = 1;
    else if (!strcmp(argv[i], "--runs") && i + 1 < argc) o.runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) o.warmup = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) o.threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--device") && i + 1 < argc) o.device = argv[++i];
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      bench_usage(argv[0]);
      exit(0);
    } else {
      bench_usage(argv[0]);
      exit(2);
    }
  }
  return o;
}

static double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double bench_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void bench_die(const char *what) {
  const char *e = evo_last_error();
  fprintf(stderr, "bench: %s failed: %s\n", what, e && *e ? e : "(no message)");
  exit(1);
}

/* Deterministic inputs (splitmix64 -> uniform in [lo, hi)); independent of the library's RNG so the benchmarks
   do not depend on it. */
static uint64_t bench_splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void bench_fill(float *x, int64_t n, uint64_t seed, float lo, float hi) {
  uint64_t s = seed;
  for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)((bench_splitmix(&s) >> 40) * (1.0 / 16777216.0));
}

/* A tensor of the given shape filled with uniform values in [lo, hi). */
static evo_tensor *bench_tensor(evo_backend *be, int ndim, const int64_t *shape, uint64_t seed, float lo, float hi) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  float *h = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
  if (!h) bench_die("malloc");
  bench_fill(h, n, seed, lo, hi);
  evo_tensor *t = evo_tensor_from_host(be, EVO_F32, ndim, shape, h);
  free(h);
  if (!t) bench_die("evo_tensor_from_host");
  return t;
}

/* Output tensors shaped like graph g's outputs. */
static void bench_outputs_for(evo_backend *be, const evo_graph *g, evo_tensor **out) {
  for (int i = 0; i < evo_graph_n_outputs(g); i++) {
    evo_node o = evo_graph_output(g, i);
    out[i] = evo_tensor_new(be, evo_node_dtype(g, o), evo_node_ndim(g, o), evo_node_shape(g, o));
    if (!out[i]) bench_die("evo_tensor_new (output)");
  }
}

typedef struct {
  double median_ms, min_ms, gflops;
} bench_result;

/* Times evo_plan_run: warmup untimed runs, then `runs` timed ones. */
static bench_result bench_time_plan(evo_plan *p, evo_tensor *const *in, evo_tensor *const *out, int warmup, int runs,
                                    double flop) {
  for (int i = 0; i < warmup; i++)
    if (evo_plan_run(p, in, out) != EVO_STATUS_OK) bench_die("evo_plan_run (warmup)");
  evo_backend *be = evo_tensor_backend(out[0]);
  if (evo_backend_sync(be) != EVO_STATUS_OK) bench_die("evo_backend_sync");
  double *t = malloc(sizeof(double) * (size_t)runs);
  if (!t) bench_die("malloc");
  for (int i = 0; i < runs; i++) {
    double t0 = bench_now();
    if (evo_plan_run(p, in, out) != EVO_STATUS_OK) bench_die("evo_plan_run");
    if (evo_backend_sync(be) != EVO_STATUS_OK) bench_die("evo_backend_sync"); /* device plans run async */
    t[i] = bench_now() - t0;
  }
  bench_result r;
  r.median_ms = 1e3 * bench_median(t, runs);
  r.min_ms = 1e3 * t[0];
  r.gflops = flop / (r.median_ms * 1e-3) / 1e9;
  free(t);
  return r;
}

static void bench_header(const bench_opts *o, const char *title) {
  if (o->csv) return;
  printf("%s\n", title);
  printf("%-14s %-34s %12s %10s %10s %9s %10s\n", "workload", "config", "MFLOP/call", "median ms", "min ms",
         "GFLOP/s", "peak MiB");
}

static void bench_row(const bench_opts *o, const char *workload, const char *config, double flop, bench_result r,
                      const evo_plan *p) {
  if (o->csv) {
    printf("evoc,%s,%s,%.0f,%.4f,%.4f,%.3f\n", workload, config, flop, r.median_ms, r.min_ms, r.gflops);
  } else {
    printf("%-14s %-34s %12.1f %10.3f %10.3f %9.2f %10.1f\n", workload, config, flop / 1e6, r.median_ms, r.min_ms,
           r.gflops, (double)evo_plan_peak_bytes(p) / (1024.0 * 1024.0));
  }
  fflush(stdout);
}

/* The backend --device names. A GPU device that cannot be opened (no GPU, no driver, a build without CUDA) is not
   an error for a benchmark: it prints one "skipped" line and exits 0, so scripts can run every program everywhere. */
static evo_backend *bench_backend(const bench_opts *o) {
  evo_backend_params bp = evo_backend_default_params();
  if (o->threads > 0) bp.n_threads = o->threads;
  if (!strcmp(o->device, "cpu")) {
    evo_backend *be = evo_backend_cpu_new(&bp);
    if (!be) bench_die("evo_backend_cpu_new");
    return be;
  }
  evo_backend *be = NULL;
  char note[256] = "";
  evo_status st = evo_device_open(o->device, &bp, &be, note, sizeof note);
  if (st == EVO_STATUS_UNSUPPORTED) {
    printf("skipped: no usable CUDA device (%s)\n", evo_last_error());
    exit(0);
  }
  if (st != EVO_STATUS_OK) bench_die("evo_device_open");
  if (!o->csv && note[0]) printf("# %s\n", note);
  return be;
}

/* The backend, for the table titles. */
static const char *bench_device_label(const evo_backend *be) {
  return evo_backend_is_host(be) ? "CPU backend" : "CUDA backend";
}

#endif
