/* Internal: antithetic (mirrored) sampling shared by PGPE, OpenES and ARS. Pair k of generation g draws
   eps_k = N(0, I) from evo_algo_member_key(a, g, k); member 2k = mean + s eps_k and member 2k + 1 = mean - s eps_k
   (EvoJAX's interleaved order). Any slice, and tell, regenerate exactly the same eps_k. */
#ifndef EVOC_ES_ANTITHETIC_H
#define EVOC_ES_ANTITHETIC_H
#include "algo_impl.h"

/* eps (a->n floats) <- eps_k of generation gen. */
static inline void evo_antithetic_noise(const evo_algo *a, int64_t gen, int k, float *eps) {
  evo_rng_fill_normal(evo_algo_member_key(a, gen, k), eps, a->n);
}

/* Rows [begin, end) of the current generation into pop; s = stdev[i] per coordinate, or sigma when stdev is NULL.
   eps: a->n floats of scratch. */
static inline void evo_antithetic_ask(const evo_algo *a, const float *mean, const double *stdev, double sigma,
                                      int begin, int end, float *pop, float *eps) {
  const int64_t n = a->n;
  int have = -1;
  for (int r = begin; r < end; r++) {
    const int k = r / 2;
    if (k != have) evo_antithetic_noise(a, a->gen, k, eps), have = k;
    const double sign = (r & 1) ? -1.0 : 1.0;
    float *row = pop + (int64_t)(r - begin) * n;
    for (int64_t i = 0; i < n; i++) row[i] = (float)(mean[i] + sign * ((stdev ? stdev[i] : sigma) * eps[i]));
  }
}

/* Pops must hold whole pairs. */
static inline evo_status evo_antithetic_check_pop(const evo_algo *a) {
  if (a->pop < 2 || a->pop % 2)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT,
                     "algo %s: pop_size must be even and >= 2 (antithetic pairs), got %d", a->vt->info.name, a->pop);
  return EVO_STATUS_OK;
}

/* An option that must be an integer (a numeric stand-in for a choice). */
static inline evo_status evo_algo_int_option(const evo_algo *a, const char *key, int *out) {
  double v = evo_algo_opt(a, key);
  if (v != floor(v))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo %s: %s must be an integer, got %g", a->vt->info.name, key, v);
  *out = (int)v;
  return EVO_STATUS_OK;
}

/* 2 (4 + floor(3 ln n)): each sample of CMA-ES's default population (Hansen 2016, Table 1) becomes a pair. */
static inline int evo_antithetic_default_pop(int64_t n) { return 2 * (4 + (int)floor(3 * log((double)n))); }

#endif
