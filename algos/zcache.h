/* Internal: a memo of the current generation's noise directions, written by ask and read by tell (algos/zcache.c).
   Slot k holds direction k's normals (evo_algo_normals of one key, elements [0, n)) and that key; a lookup returns
   them only when the key matches, so a new generation, a loaded state or another seed never reads stale noise and
   nothing needs invalidating. Tell sums the same floats in the same order as when it regenerates them, so the memo
   changes no bits; it saves tell the Philox + Box-Muller work (about half of an antithetic strategy's generation).
   At most a->zc_bytes (EVO_ZC_MAX_BYTES) per strategy: directions beyond it are regenerated, as without the memo. */
#ifndef EVOC_ALGOS_ZCACHE_H
#define EVOC_ALGOS_ZCACHE_H
#include "algo_impl.h"

#define EVO_ZC_MAX_BYTES ((int64_t)32 << 20)

typedef struct evo_zcache evo_zcache;

/* Before ask writes directions [k0, k1) of a generation of nd: returns the memo's rows (slot k at base + k n) and
   in *cap how many slots exist (directions >= *cap are not kept), and marks [k0, k1) empty. NULL (and *cap 0)
   when no slot fits or memory is short: ask goes on without the memo. */
float *evo_zc_begin(evo_algo *a, int64_t nd, int64_t k0, int64_t k1, int64_t *cap);
/* After ask wrote slots [k0, min(k1, cap)): they now hold the normals of keys[k - k0]. */
void evo_zc_end(evo_algo *a, int64_t k0, int64_t k1, const evo_key *keys);
/* For tell: out[t] = direction dirs[t]'s kept normals (dirs NULL: direction t) when its slot holds keys[t], else
   NULL; returns out, or NULL when nothing is kept. out: scratch of nd pointers owned by the memo. */
const float *const *evo_zc_lookup(evo_algo *a, const int *dirs, const evo_key *keys, int nd);
/* Slot k's row when it holds a direction, else NULL (tests). */
float *evo_zc_row(evo_algo *a, int64_t k);
/* Forgets every kept direction (tests compare a run with and without the memo). */
void evo_zc_clear(evo_algo *a);
void evo_zc_free(evo_zcache *zc);

#endif
