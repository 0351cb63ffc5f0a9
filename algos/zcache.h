/* Internal: a memo of the current generation's noise directions, written by ask and read by tell (algos/zcache.c).
   Slot k holds direction k's normals (evo_algo_normals of one key, elements [0, n)) and that key; a lookup returns
   them only when the key matches, so a new generation, a loaded state or another seed never reads stale noise and
   nothing needs invalidating. Tell sums the same floats in the same order as when it regenerates them, so the memo
   changes no bits; it saves tell the Philox + Box-Muller work (about half of an antithetic strategy's generation).
   A slot's row is allocated when ask first draws that direction, so a rank that asks a slice keeps only its slice;
   at most a->zc_bytes (EVO_ZC_MAX_BYTES) of rows per strategy (no more than the population it asks, which holds
   the same number of floats or twice as many): directions beyond it are regenerated, as without the memo. */
#ifndef EVOC_ALGOS_ZCACHE_H
#define EVOC_ALGOS_ZCACHE_H
#include "algo_impl.h"

#define EVO_ZC_MAX_BYTES ((int64_t)1 << 30)

typedef struct evo_zcache evo_zcache;

/* Before ask writes directions [k0, k1) of a generation of nd: marks them empty and returns the memo's rows
   (rows[k]: where to draw direction k, NULL when it is not kept), or NULL when nothing is kept (memory short). */
float *const *evo_zc_begin(evo_algo *a, int64_t nd, int64_t k0, int64_t k1);
/* After ask drew directions [k0, k1) into their rows: those rows now hold the normals of keys[k - k0]. */
void evo_zc_end(evo_algo *a, int64_t k0, int64_t k1, const evo_key *keys);
/* For tell: out[t] = direction dirs[t]'s kept normals (dirs NULL: direction t) when its slot holds keys[t], else
   NULL; returns out, or NULL when nothing is kept. out: scratch of nd pointers owned by the memo. */
const float *const *evo_zc_lookup(evo_algo *a, const int *dirs, const evo_key *keys, int nd);
/* Slot k's row when it holds a direction, else NULL (tests). */
float *evo_zc_row(evo_algo *a, int64_t k);
/* Forgets every kept direction (tests compare a run with and without the memo). */
void evo_zc_clear(evo_algo *a);
void evo_zc_free(evo_zcache *zc);

/* rows[k] + i0 when direction k is kept (rows from evo_zc_begin), else buf. */
static inline float *evo_zc_at(float *const *rows, int64_t k, int64_t i0, float *buf) {
  return rows && rows[k] ? rows[k] + i0 : buf;
}

#endif
