/* Parameter trees: named parameter specs (like a Flax params dict) flattened to one f32 vector in a stable order
   (the order specs were added), saved and loaded as safetensors. This is what algorithms see (a flat vector) and
   what makes "replace the last layer and fine-tune" easy: load_matching copies the entries whose names and shapes
   match, and reports the rest. */
#ifndef EVOC_PTREE_H
#define EVOC_PTREE_H
#include <stdint.h>
#include "evoc/rng.h"
#include "evoc/status.h"
#include "evoc/tensor.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  EVO_INIT_ZEROS = 0,
  EVO_INIT_ONES,
  EVO_INIT_CONSTANT,        /* value = scale */
  EVO_INIT_UNIFORM,         /* U(-scale, scale) */
  EVO_INIT_NORMAL,          /* N(0, scale^2) */
  EVO_INIT_TRUNCATED_NORMAL,/* scale * truncated N(0,1) in [-2, 2] */
  EVO_INIT_GLOROT_UNIFORM,  /* U(-a, a), a = sqrt(6 / (fan_in + fan_out)) */
  EVO_INIT_GLOROT_NORMAL,   /* N(0, 2 / (fan_in + fan_out)) */
  EVO_INIT_LECUN_NORMAL,    /* truncated normal with variance 1 / fan_in (as flax/jax) */
  EVO_INIT_HE_NORMAL,       /* truncated normal with variance 2 / fan_in */
  EVO_INIT_HE_UNIFORM       /* U(-a, a), a = sqrt(6 / fan_in) */
} evo_init;

/* fan_in = product of all dims but the last; fan_out = last dim (dense [in, out] and conv [kh, kw, c, f] alike). */
typedef struct {
  const char *name; /* e.g. "conv1.kernel" */
  int ndim;
  int64_t shape[EVO_MAX_DIMS];
  evo_init init;
  float scale;
} evo_param_spec;

typedef struct evo_ptree evo_ptree;

evo_ptree *evo_ptree_new(void);
void evo_ptree_free(evo_ptree *t);
/* Names must be unique; returns INVALID_ARGUMENT otherwise. */
evo_status evo_ptree_add(evo_ptree *t, const evo_param_spec *spec);
int evo_ptree_count(const evo_ptree *t);
int64_t evo_ptree_size(const evo_ptree *t); /* total number of floats */
const evo_param_spec *evo_ptree_spec(const evo_ptree *t, int i);
int evo_ptree_find(const evo_ptree *t, const char *name); /* index or -1 */
int64_t evo_ptree_offset(const evo_ptree *t, int i);      /* offset of entry i in the flat vector */

/* Initialises flat[0..size) from the specs; entry i uses key fold_in(k, i). */
evo_status evo_ptree_init(const evo_ptree *t, evo_key k, float *flat);

/* safetensors I/O of a flat vector (F32, one tensor per entry, metadata {"format":"evoc"}). Writes atomically
   (temp file + fsync + rename). load requires every entry present with the right shape and dtype F32. */
evo_status evo_ptree_save(const evo_ptree *t, const float *flat, const char *path);
evo_status evo_ptree_load(const evo_ptree *t, float *flat, const char *path);
/* Loads entries whose name and shape match; *n_loaded gets how many; the others are left untouched. */
evo_status evo_ptree_load_matching(const evo_ptree *t, float *flat, const char *path, int *n_loaded);

#ifdef __cplusplus
}
#endif
#endif
