/* Internal: antithetic (mirrored) sampling shared by PGPE, OpenES and ARS. Pair k of generation g draws
   eps_k = N(0, I) from evo_algo_member_key(a, g, k) (the stream of evo_algo_normals); member 2k = mean + s eps_k
   and member 2k + 1 = mean - s eps_k (EvoJAX's interleaved order). Any slice, and tell, regenerate exactly the same
   eps_k.

   Work is split over blocks of EVO_ANTI_BLOCK coordinates: a block regenerates its part of each eps_k itself
   (Philox is counter-based), so threads share nothing and every coordinate sums over k in the same order
   (anti_order.h) whatever the thread count or device. Ask keeps the directions it draws in the strategy's noise
   memo (zcache.h), where tell finds them instead of drawing them again. */
#ifndef EVOC_ES_ANTITHETIC_H
#define EVOC_ES_ANTITHETIC_H
#include <stdbool.h>
#include "algo_impl.h"
#include "anti_order.h"
#include "rng_math.h"
#include "zcache.h"

#define EVO_ANTI_BLOCK 512 /* a multiple of EVO_NORMAL_GROUP: no group is generated twice */
#define EVO_ANTI_PAR_MIN 65536 /* coordinates x directions below which one thread is faster */

/* Elements [i0, i1) of key's normal stream (evo_algo_normals), out[0 .. i1 - i0). */
static inline void evo_anti_normal_range(evo_key key, int64_t i0, int64_t i1, float *out) {
  evo_algo_normals(key, i0, i1, out);
}

/* keys[k - k0] = key of pair k of generation gen, k in [k0, k1). */
static inline void evo_anti_keys(const evo_algo *a, int64_t gen, int k0, int k1, evo_key *keys) {
  for (int k = k0; k < k1; k++) keys[k - k0] = evo_algo_member_key(a, gen, k);
}

static inline int64_t evo_anti_blocks(int64_t n) { return (n + EVO_ANTI_BLOCK - 1) / EVO_ANTI_BLOCK; }

/* Rows [begin, end) of the current generation into pop; s = stdev[i] per coordinate, or sigma when stdev is NULL.
   keys: scratch for (end - begin) / 2 + 2 keys. */
static inline void evo_antithetic_ask(evo_algo *a, const float *mean, const double *stdev, double sigma, int begin,
                                      int end, float *pop, evo_key *keys) {
  const int64_t n = a->n, nb = evo_anti_blocks(n);
  const int k0 = begin / 2, k1 = (end + 1) / 2;
  evo_anti_keys(a, a->gen, k0, k1, keys);
  float *const *memo = evo_zc_begin(a, a->pop / 2, k0, k1);
  const int64_t tasks = (int64_t)(k1 - k0) * nb;
#pragma omp parallel for schedule(static) if ((int64_t)(end - begin) * n >= EVO_ANTI_PAR_MIN)
  for (int64_t t = 0; t < tasks; t++) {
    const int k = k0 + (int)(t / nb);
    const int64_t i0 = (t % nb) * EVO_ANTI_BLOCK, i1 = i0 + EVO_ANTI_BLOCK < n ? i0 + EVO_ANTI_BLOCK : n;
    float buf[EVO_ANTI_BLOCK], *eps = evo_zc_at(memo, k, i0, buf);
    evo_anti_normal_range(keys[k - k0], i0, i1, eps);
    for (int r = 2 * k; r <= 2 * k + 1; r++) {
      if (r < begin || r >= end) continue;
      const double sign = (r & 1) ? -1.0 : 1.0;
      float *row = pop + (int64_t)(r - begin) * n;
      for (int64_t i = i0; i < i1; i++)
        row[i] = (float)(mean[i] + sign * ((stdev ? stdev[i] : sigma) * eps[i - i0]));
    }
  }
  evo_zc_end(a, k0, k1, keys);
}

/* Unmirrored members (SNES, CEM): rows [begin, end), row r = mean + sigma (.) z_r with z_r member r's own stream;
   the host twin of evo_anti_dev_ask_plain. keys: scratch for end - begin keys. */
static inline void evo_anti_ask_plain(evo_algo *a, const double *mean, const double *sigma, int begin, int end,
                                      float *pop, evo_key *keys) {
  const int64_t n = a->n, nb = evo_anti_blocks(n), tasks = (int64_t)(end - begin) * nb;
  evo_anti_keys(a, a->gen, begin, end, keys);
  float *const *memo = evo_zc_begin(a, a->pop, begin, end);
#pragma omp parallel for schedule(static) if ((int64_t)(end - begin) * n >= EVO_ANTI_PAR_MIN)
  for (int64_t t = 0; t < tasks; t++) {
    const int r = (int)(t / nb);
    const int64_t i0 = (t % nb) * EVO_ANTI_BLOCK, i1 = i0 + EVO_ANTI_BLOCK < n ? i0 + EVO_ANTI_BLOCK : n;
    float buf[EVO_ANTI_BLOCK], *z = evo_zc_at(memo, begin + r, i0, buf);
    evo_anti_normal_range(keys[r], i0, i1, z);
    float *row = pop + (int64_t)r * n;
    for (int64_t i = i0; i < i1; i++) row[i] = (float)(mean[i] + sigma[i] * z[i - i0]);
  }
  evo_zc_end(a, begin, end, keys);
}

/* Tell's noise sums over directions t = 0 .. nd - 1, eps_t from keys[t], grouped as anti_order.h says:
   sc[i] = sum_t h[t] eps_t[i] and, with c (PGPE, SNES), ss[i] = sum_t c[t] (eps_t[i]^2 - 1). Directions with
   h[t] == 0 are skipped (they add exactly 0) when c is NULL or skip_zero. kept (may be NULL): kept[t], when not
   NULL, holds eps_t (the noise memo), read instead of drawn. The CUDA kernel evo_anti_cuda_sums computes the same,
   bit for bit. */
static inline void evo_anti_sums(int64_t n, const evo_key *keys, const float *const *kept, int nd, const double *h,
                                 const double *c, bool skip_zero, double *sc, double *ss) {
  const int64_t nb = evo_anti_blocks(n);
  const int gs = evo_anti_group_size(n, nd);
#pragma omp parallel for schedule(static) if (n * nd >= EVO_ANTI_PAR_MIN)
  for (int64_t b = 0; b < nb; b++) {
    const int64_t i0 = b * EVO_ANTI_BLOCK, m = (i0 + EVO_ANTI_BLOCK < n ? i0 + EVO_ANTI_BLOCK : n) - i0;
    float buf[EVO_ANTI_BLOCK];
    double pa[EVO_ANTI_BLOCK], pq[EVO_ANTI_BLOCK];
    for (int64_t i = 0; i < m; i++) sc[i0 + i] = 0;
    if (c)
      for (int64_t i = 0; i < m; i++) ss[i0 + i] = 0;
    for (int g0 = 0; g0 < nd; g0 += gs) {
      const int g1 = g0 + gs < nd ? g0 + gs : nd;
      for (int64_t i = 0; i < m; i++) pa[i] = 0, pq[i] = 0;
      for (int t = g0; t < g1; t++) {
        if ((!c || skip_zero) && h[t] == 0) continue;
        const float *eps = kept && kept[t] ? kept[t] + i0 : buf;
        if (eps == buf) evo_anti_normal_range(keys[t], i0, i0 + m, buf);
        if (c)
          for (int64_t i = 0; i < m; i++) pa[i] += h[t] * eps[i], pq[i] += c[t] * ((double)eps[i] * eps[i] - 1);
        else
          for (int64_t i = 0; i < m; i++) pa[i] += h[t] * eps[i];
      }
      for (int64_t i = 0; i < m; i++) sc[i0 + i] += pa[i];
      if (c)
        for (int64_t i = 0; i < m; i++) ss[i0 + i] += pq[i];
    }
  }
}

/* out[i] = sum_t w[t] eps_{dirs[t]}[i] over t < nd (dirs NULL: direction t), in evo_anti_sums' order.
   keys: scratch for nd keys. */
static inline void evo_antithetic_weighted_sum(evo_algo *a, int64_t gen, const int *dirs, const double *w, int nd,
                                               double *out, evo_key *keys) {
  for (int t = 0; t < nd; t++) keys[t] = evo_algo_member_key(a, gen, dirs ? dirs[t] : t);
  evo_anti_sums(a->n, keys, evo_zc_lookup(a, dirs, keys, nd), nd, w, NULL, true, out, NULL);
}

/* False when every member failed (all NaN, now -inf): their ranks would only reflect member order, so the
   strategies skip such a generation. */
static inline int evo_anti_any_finite(const float *f, int n) {
  for (int j = 0; j < n; j++)
    if (isfinite(f[j])) return 1;
  return 0;
}

/* Pops must hold whole pairs. */
static inline evo_status evo_antithetic_check_pop(const evo_algo *a) {
  if (a->pop < 2 || a->pop % 2)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT,
                     "algo %s: pop_size must be even and >= 2 (antithetic pairs), got %d", a->vt->info.name, a->pop);
  return EVO_STATUS_OK;
}

/* An option that must be an integer (a numeric stand-in for a choice). */
static inline evo_status evo_es_int_option(const evo_algo *a, const char *key, int *out) {
  double v = evo_algo_opt(a, key);
  if (v != floor(v))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo %s: %s must be an integer, got %g", a->vt->info.name, key, v);
  *out = (int)v;
  return EVO_STATUS_OK;
}

/* 2 (4 + floor(3 ln n)): each sample of CMA-ES's default population (Hansen 2016, Table 1) becomes a pair. */
static inline int evo_antithetic_default_pop(int64_t n) { return 2 * (4 + (int)floor(3 * log((double)n))); }

#endif
