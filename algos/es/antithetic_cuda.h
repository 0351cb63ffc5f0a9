/* Internal: the antithetic strategies' population-sized work on a CUDA device (antithetic_cuda.cu). The kernels
   compute what antithetic.h's host loops compute, element for element and in the same order (anti_order.h), from the
   same noise (algos/normal_math.h, built without FMA contraction), so members and gradient sums are bit-identical to
   the host's. Every pointer is device memory; every call only enqueues on `stream` (a cudaStream_t) and checks the
   launch. keys are evo_key values (two words each). */
#ifndef EVOC_ES_ANTITHETIC_CUDA_H
#define EVOC_ES_ANTITHETIC_CUDA_H
#include <stdbool.h>
#include <stdint.h>
#include "anti_order.h"
#include "evoc/status.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Rows [begin, end) of the generation into pop [end - begin, n]: row r = mean +- s eps_{r/2} (+ for even r), s =
   stdev[i] (stdev not NULL) or sigma; keys[k - begin / 2] = the key of pair k. */
evo_status evo_anti_cuda_ask(void *stream, const uint32_t *keys, const float *mean, const double *stdev,
                             double sigma, int64_t n, int begin, int end, float *pop);
/* Rows [begin, end) of a Gaussian without mirroring (SNES): row r = mean + sigma (.) eps_r, eps_r from
   keys[r - begin], in double, rounded to float. */
evo_status evo_anti_cuda_ask_plain(void *stream, const uint32_t *keys, const double *mean, const double *sigma,
                                   int64_t n, int begin, int end, float *pop);
/* sc[i] = sum_t h[t] eps_t[i] over t = 0 .. nd - 1, eps_t from keys[t]; with c (PGPE, SNES), also ss[i] = sum_t
   c[t] (eps_t[i]^2 - 1); in evo_anti_sums' order (anti_order.h). Directions with h[t] == 0 are skipped when c is
   NULL or skip_zero. part: scratch for evo_anti_cuda_part_len(n, nd, c != NULL) doubles. */
evo_status evo_anti_cuda_sums(void *stream, const uint32_t *keys, int nd, const double *h, const double *c,
                              bool skip_zero, int64_t n, double *sc, double *ss, double *part);
static inline int64_t evo_anti_cuda_part_len(int64_t n, int nd, bool two) {
  const int groups = evo_anti_groups(n, nd);
  return groups > 1 ? (two ? 2 : 1) * groups * n : 0;
}

#ifdef __cplusplus
}
#endif
#endif
