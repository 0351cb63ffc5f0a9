/* The noise memo (zcache.h): a row pointer, a key and a flag per direction; rows allocated on first use and kept
   across generations (the same directions are asked every generation) until the strategy is freed. */
#include "zcache.h"
#include <stdlib.h>
#include <string.h>

struct evo_zcache {
  float **rows;          /* nd: direction k's row, NULL until kept */
  evo_key *keys;         /* nd */
  unsigned char *full;   /* nd: row holds keys[k]'s normals */
  const float **lookup;  /* nd scratch for evo_zc_lookup */
  int64_t nd, bytes;     /* directions; bytes of rows allocated */
};

void evo_zc_free(evo_zcache *zc) {
  if (!zc) return;
  for (int64_t k = 0; k < zc->nd; k++) free(zc->rows[k]);
  free(zc->rows), free(zc->keys), free(zc->full), free(zc->lookup), free(zc);
}

/* The memo for nd directions (grown, kept rows stay); NULL when memory is short. */
static evo_zcache *zc_reserve(evo_algo *a, int64_t nd) {
  evo_zcache *zc = a->zc;
  if (!zc && !(zc = a->zc = calloc(1, sizeof *zc))) return NULL;
  if (zc->nd >= nd) return zc;
  float **rows = realloc(zc->rows, sizeof *rows * (size_t)nd);
  if (rows) zc->rows = rows;
  evo_key *keys = rows ? realloc(zc->keys, sizeof *keys * (size_t)nd) : NULL;
  if (keys) zc->keys = keys;
  unsigned char *full = keys ? realloc(zc->full, (size_t)nd) : NULL;
  if (full) zc->full = full;
  const float **lookup = full ? realloc(zc->lookup, sizeof *lookup * (size_t)nd) : NULL;
  if (!lookup) return NULL; /* the arrays that did grow keep their old entries: the memo stays usable at zc->nd */
  zc->lookup = lookup;
  for (int64_t k = zc->nd; k < nd; k++) zc->rows[k] = NULL, zc->full[k] = 0;
  zc->nd = nd;
  return zc;
}

float *const *evo_zc_begin(evo_algo *a, int64_t nd, int64_t k0, int64_t k1) {
  evo_zcache *zc = zc_reserve(a, nd);
  if (!zc) return NULL;
  const int64_t row = (int64_t)sizeof(float) * a->n;
  for (int64_t k = k0; k < k1; k++) {
    zc->full[k] = 0;
    if (!zc->rows[k] && zc->bytes + row <= a->zc_bytes && (zc->rows[k] = malloc((size_t)row))) zc->bytes += row;
  }
  return zc->rows;
}

void evo_zc_end(evo_algo *a, int64_t k0, int64_t k1, const evo_key *keys) {
  evo_zcache *zc = a->zc;
  if (!zc) return;
  for (int64_t k = k0; k < k1 && k < zc->nd; k++)
    if (zc->rows[k]) zc->keys[k] = keys[k - k0], zc->full[k] = 1;
}

const float *const *evo_zc_lookup(evo_algo *a, const int *dirs, const evo_key *keys, int nd) {
  evo_zcache *zc = a->zc;
  if (!zc || nd < 1 || nd > zc->nd) return NULL;
  int any = 0;
  for (int t = 0; t < nd; t++) {
    const int64_t k = dirs ? dirs[t] : t;
    const int hit = k < zc->nd && zc->full[k] && zc->keys[k].w[0] == keys[t].w[0] &&
                    zc->keys[k].w[1] == keys[t].w[1];
    zc->lookup[t] = hit ? zc->rows[k] : NULL;
    any |= hit;
  }
  return any ? zc->lookup : NULL;
}

float *evo_zc_row(evo_algo *a, int64_t k) {
  evo_zcache *zc = a->zc;
  return zc && k >= 0 && k < zc->nd && zc->full[k] ? zc->rows[k] : NULL;
}

void evo_zc_clear(evo_algo *a) {
  evo_zcache *zc = a->zc;
  if (zc) memset(zc->full, 0, (size_t)zc->nd);
}
