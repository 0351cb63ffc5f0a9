/* The noise memo (zcache.h): one allocation of cap rows of n floats, sized on first use for the population (or
   as many rows as EVO_ZC_MAX_BYTES allows), and a key and a flag per row. */
#include "zcache.h"
#include <stdlib.h>

struct evo_zcache {
  float *rows;           /* cap x n */
  evo_key *keys;         /* cap */
  unsigned char *full;   /* cap: row holds keys[k]'s normals */
  const float **lookup;  /* nd scratch for evo_zc_lookup */
  int64_t cap, lookup_cap;
};

void evo_zc_free(evo_zcache *zc) {
  if (!zc) return;
  free(zc->rows), free(zc->keys), free(zc->full), free(zc->lookup), free(zc);
}

/* Grows the memo to min(want, a->zc_bytes / row) rows; kept rows are dropped (only when the population grows). */
static evo_zcache *zc_reserve(evo_algo *a, int64_t want) {
  const int64_t fit = a->zc_bytes / ((int64_t)sizeof(float) * a->n);
  const int64_t cap = want < fit ? want : fit;
  if (cap < 1) return NULL;
  evo_zcache *zc = a->zc;
  if (zc && zc->cap >= cap) return zc;
  evo_zc_free(zc), a->zc = NULL;
  zc = calloc(1, sizeof *zc);
  if (!zc) return NULL;
  zc->rows = malloc(sizeof(float) * (size_t)(cap * a->n));
  zc->keys = malloc(sizeof(evo_key) * (size_t)cap);
  zc->full = calloc((size_t)cap, 1);
  if (!zc->rows || !zc->keys || !zc->full) {
    evo_zc_free(zc);
    return NULL;
  }
  zc->cap = cap;
  return a->zc = zc;
}

float *evo_zc_begin(evo_algo *a, int64_t nd, int64_t k0, int64_t k1, int64_t *cap) {
  *cap = 0;
  evo_zcache *zc = zc_reserve(a, nd);
  if (!zc) return NULL;
  for (int64_t k = k0; k < k1 && k < zc->cap; k++) zc->full[k] = 0;
  *cap = zc->cap;
  return zc->rows;
}

void evo_zc_end(evo_algo *a, int64_t k0, int64_t k1, const evo_key *keys) {
  evo_zcache *zc = a->zc;
  if (!zc) return;
  for (int64_t k = k0; k < k1 && k < zc->cap; k++) zc->keys[k] = keys[k - k0], zc->full[k] = 1;
}

const float *const *evo_zc_lookup(evo_algo *a, const int *dirs, const evo_key *keys, int nd) {
  evo_zcache *zc = a->zc;
  if (!zc || nd < 1) return NULL;
  if (zc->lookup_cap < nd) {
    const float **p = realloc(zc->lookup, sizeof *p * (size_t)nd);
    if (!p) return NULL;
    zc->lookup = p, zc->lookup_cap = nd;
  }
  int any = 0;
  for (int t = 0; t < nd; t++) {
    const int64_t k = dirs ? dirs[t] : t;
    const int hit = k < zc->cap && zc->full[k] && zc->keys[k].w[0] == keys[t].w[0] &&
                    zc->keys[k].w[1] == keys[t].w[1];
    zc->lookup[t] = hit ? zc->rows + k * a->n : NULL;
    any |= hit;
  }
  return any ? zc->lookup : NULL;
}

float *evo_zc_row(evo_algo *a, int64_t k) {
  evo_zcache *zc = a->zc;
  return zc && k >= 0 && k < zc->cap && zc->full[k] ? zc->rows + k * a->n : NULL;
}

void evo_zc_clear(evo_algo *a) {
  evo_zcache *zc = a->zc;
  if (!zc) return;
  for (int64_t k = 0; k < zc->cap; k++) zc->full[k] = 0;
}
