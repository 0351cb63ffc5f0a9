/* What a distributed generation sends: time of the trainer's exchanges per generation under mpirun (or alone, the
   local comm): the status agreement, the allgather of P fitness values, and with a normaliser the allgather of P
   members' observation statistics (1 + 2m doubles each). Median over --runs generations, in microseconds.
     mpirun -np 2 build/bench/bench_comm [--runs N] [--quick] [--comm nccl] (OMPI_ALLOW_RUN_AS_ROOT=1 ... as root) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "evoc/comm.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e6 * (double)ts.tv_sec + 1e-3 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median over runs of one generation's exchanges for population P and observation size m (0: no normaliser). */
static double generation_us(evo_comm *c, int P, int m, int runs, int *failed) {
  float *fit = calloc((size_t)P, sizeof *fit);
  const size_t w = 1 + 2 * (size_t)m;
  double *stats = m ? calloc((size_t)P * w, sizeof *stats) : NULL, *t = calloc((size_t)runs, sizeof *t);
  for (int r = 0; r < runs + 3; r++) {
    evo_comm_barrier(c);
    double t0 = now_us();
    evo_status st = evo_comm_agree(c, EVO_STATUS_OK);
    if (!st) st = evo_comm_allgather(c, fit, P, sizeof *fit);
    if (!st && m) st = evo_comm_allgather(c, stats, P, sizeof(double) * w);
    double dt = now_us() - t0;
    if (st) *failed = 1;
    if (r >= 3) t[r - 3] = dt; /* three warm-up generations */
  }
  qsort(t, (size_t)runs, sizeof *t, cmp);
  double med = t[runs / 2];
  free(fit), free(stats), free(t);
  return med;
}

int main(int argc, char **argv) {
  int runs = 201;
  const char *comm = "auto"; /* mpi under mpirun; --comm nccl for NCCL (one GPU per rank) */
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--quick")) runs = 21; /* a smoke run, as the other benches take it */
    else if (!strcmp(argv[i], "--comm") && i + 1 < argc) comm = argv[++i];
    else {
      fprintf(stderr, "usage: [mpirun -np R] %s [--runs N] [--quick] [--comm auto|local|mpi|nccl]\n", argv[0]);
      return 2;
    }
  }
  if (runs < 1) runs = 1;
  evo_comm *c;
  if (evo_comm_open(comm, &c)) {
    fprintf(stderr, "bench_comm: %s\n", evo_last_error());
    return 1;
  }
  /* (P, m): ARS Hopper (16 members, 11 obs), Walker2d (80, 17), Humanoid (460, 348), EvoJAX CartPole (64, 5),
     a large GPU population (16384, 0) */
  const int cases[][2] = {{16, 11}, {80, 17}, {460, 348}, {64, 5}, {1024, 0}, {16384, 0}};
  int failed = 0;
  if (evo_comm_rank(c) == 0)
    printf("comm %s, %d ranks; median of %d generations\n%8s %6s %14s %12s\n", evo_comm_name(c), evo_comm_size(c),
           runs, "P", "obs", "bytes", "us/gen");
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    const int P = cases[k][0], m = cases[k][1];
    double us = generation_us(c, P, m, runs, &failed);
    size_t bytes = (size_t)P * (sizeof(float) + (m ? sizeof(double) * (1 + 2 * (size_t)m) : 0));
    if (evo_comm_rank(c) == 0) printf("%8d %6d %14zu %12.1f\n", P, m, bytes, us);
  }
  if (failed) fprintf(stderr, "bench_comm: a collective failed: %s\n", evo_last_error());
  evo_comm_free(c);
  return failed;
}
