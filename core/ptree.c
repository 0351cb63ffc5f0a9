/* Parameter trees: named specs laid out back to back in one f32 vector, in the order they were added, so the
   layout (and each entry's RNG stream, fold_in(key, index)) never depends on names or on later additions. */
#include "evoc/ptree.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "safetensors.h"

/* Std of N(0,1) truncated to [-2, 2]: dividing by it restores the requested variance, as
   jax.nn.initializers.variance_scaling does for its "truncated_normal" distribution. */
#define TRUNC_NORMAL_STD 0.87962566103423978

typedef struct {
  evo_param_spec spec; /* spec.name points to an owned copy */
  int64_t offset, numel;
} pt_entry;

struct evo_ptree {
  pt_entry **e; /* one allocation per entry, so evo_ptree_spec pointers survive later adds */
  int n, cap;
  int64_t size;
};

evo_ptree *evo_ptree_new(void) {
  evo_ptree *t = calloc(1, sizeof *t);
  if (!t) evo_error(EVO_STATUS_OUT_OF_MEMORY, "ptree_new: out of memory");
  return t;
}

void evo_ptree_free(evo_ptree *t) {
  if (!t) return;
  for (int i = 0; i < t->n; i++) {
    free((char *)t->e[i]->spec.name);
    free(t->e[i]);
  }
  free(t->e);
  free(t);
}

evo_status evo_ptree_add(evo_ptree *t, const evo_param_spec *spec) {
  if (!t || !spec) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "ptree_add: tree or spec is NULL");
  const char *nm = spec->name;
  if (!nm || !*nm || strcmp(nm, "__metadata__") == 0)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "ptree_add: empty or reserved parameter name");
  if (evo_ptree_find(t, nm) >= 0)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "ptree_add: duplicate parameter name '%s'", nm);
  if (spec->ndim < 0 || spec->ndim > EVO_MAX_DIMS)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "ptree_add: '%s' has rank %d (0..%d allowed)", nm, spec->ndim,
                     EVO_MAX_DIMS);
  if ((unsigned)spec->init > (unsigned)EVO_INIT_HE_UNIFORM)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "ptree_add: '%s' has unknown initializer %d", nm, (int)spec->init);
  if (!isfinite(spec->scale))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "ptree_add: '%s' has a non-finite scale", nm);
  int64_t numel = 1;
  for (int d = 0; d < spec->ndim; d++) {
    /* Zero-sized dims are rejected: they would give fan_in = 0 and a division by zero in the initializers. */
    if (spec->shape[d] <= 0 || numel > INT64_MAX / spec->shape[d])
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "ptree_add: '%s' shape[%d] = %lld is not a positive size", nm,
                       d, (long long)spec->shape[d]);
    numel *= spec->shape[d];
  }
  if (numel > INT64_MAX - t->size)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "ptree_add: '%s' makes the tree too large", nm);
  if (t->n == t->cap) {
    int cap = t->cap ? 2 * t->cap : 16;
    pt_entry **e = realloc(t->e, (size_t)cap * sizeof *e);
    if (!e) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "ptree_add: out of memory");
    t->e = e;
    t->cap = cap;
  }
  size_t len = strlen(nm);
  char *copy = malloc(len + 1);
  pt_entry *e = calloc(1, sizeof *e);
  if (!copy || !e) {
    free(copy);
    free(e);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "ptree_add: out of memory");
  }
  memcpy(copy, nm, len + 1);
  t->e[t->n++] = e;
  e->spec = *spec;
  for (int d = spec->ndim; d < EVO_MAX_DIMS; d++) e->spec.shape[d] = 0; /* unused dims: no stale values */
  e->spec.name = copy;
  e->offset = t->size;
  e->numel = numel;
  t->size += numel;
  return EVO_STATUS_OK;
}

int evo_ptree_count(const evo_ptree *t) { return t ? t->n : 0; }
int64_t evo_ptree_size(const evo_ptree *t) { return t ? t->size : 0; }

const evo_param_spec *evo_ptree_spec(const evo_ptree *t, int i) {
  return (t && i >= 0 && i < t->n) ? &t->e[i]->spec : NULL;
}

int evo_ptree_find(const evo_ptree *t, const char *name) {
  if (!t || !name) return -1;
  for (int i = 0; i < t->n; i++)
    if (strcmp(t->e[i]->spec.name, name) == 0) return i;
  return -1;
}

int64_t evo_ptree_offset(const evo_ptree *t, int i) { return (t && i >= 0 && i < t->n) ? t->e[i]->offset : -1; }

/* ---------------------------------------------------------------- initializers */

static void pt_fill_const(float *x, int64_t n, float v) {
  for (int64_t j = 0; j < n; j++) x[j] = v;
}

static void pt_scale(float *x, int64_t n, double s) {
  for (int64_t j = 0; j < n; j++) x[j] = (float)(x[j] * s);
}

/* As documented in ptree.h: fan_in = product of all dims but the last, fan_out = last dim (1 for scalars). */
static void pt_fans(const evo_param_spec *s, double *fan_in, double *fan_out) {
  double in = 1.0;
  for (int d = 0; d + 1 < s->ndim; d++) in *= (double)s->shape[d];
  *fan_in = in;
  *fan_out = s->ndim > 0 ? (double)s->shape[s->ndim - 1] : 1.0;
}

static void pt_init_entry(const evo_param_spec *s, evo_key k, float *x, int64_t n) {
  double fi, fo, a;
  pt_fans(s, &fi, &fo);
  switch (s->init) {
  case EVO_INIT_ZEROS: pt_fill_const(x, n, 0.0f); break;
  case EVO_INIT_ONES: pt_fill_const(x, n, 1.0f); break;
  case EVO_INIT_CONSTANT: pt_fill_const(x, n, s->scale); break;
  case EVO_INIT_UNIFORM: evo_rng_fill_uniform(k, x, n, -s->scale, s->scale); break;
  case EVO_INIT_NORMAL:
    evo_rng_fill_normal(k, x, n);
    pt_scale(x, n, s->scale);
    break;
  case EVO_INIT_TRUNCATED_NORMAL:
    evo_rng_fill_truncated_normal(k, x, n, -2.0f, 2.0f);
    pt_scale(x, n, s->scale);
    break;
  case EVO_INIT_GLOROT_UNIFORM:
    a = sqrt(6.0 / (fi + fo));
    evo_rng_fill_uniform(k, x, n, (float)-a, (float)a);
    break;
  case EVO_INIT_GLOROT_NORMAL:
    evo_rng_fill_normal(k, x, n);
    pt_scale(x, n, sqrt(2.0 / (fi + fo)));
    break;
  case EVO_INIT_LECUN_NORMAL:
    evo_rng_fill_truncated_normal(k, x, n, -2.0f, 2.0f);
    pt_scale(x, n, sqrt(1.0 / fi) / TRUNC_NORMAL_STD);
    break;
  case EVO_INIT_HE_NORMAL:
    evo_rng_fill_truncated_normal(k, x, n, -2.0f, 2.0f);
    pt_scale(x, n, sqrt(2.0 / fi) / TRUNC_NORMAL_STD);
    break;
  case EVO_INIT_HE_UNIFORM:
    a = sqrt(6.0 / fi);
    evo_rng_fill_uniform(k, x, n, (float)-a, (float)a);
    break;
  }
}

evo_status evo_ptree_init(const evo_ptree *t, evo_key k, float *flat) {
  if (!t || (!flat && t->size > 0)) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "ptree_init: tree or flat is NULL");
  for (int i = 0; i < t->n; i++)
    pt_init_entry(&t->e[i]->spec, evo_key_fold_in(k, (uint32_t)i), flat + t->e[i]->offset, t->e[i]->numel);
  return EVO_STATUS_OK;
}

/* ---------------------------------------------------------------- safetensors I/O */

evo_status evo_ptree_save(const evo_ptree *t, const float *flat, const char *path) {
  if (!t || !path || (!flat && t->size > 0))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "ptree_save %s: tree, flat or path is NULL", path ? path : "");
  evo_st_tensor *ts = calloc(t->n > 0 ? (size_t)t->n : 1, sizeof *ts);
  if (!ts) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
  for (int i = 0; i < t->n; i++) {
    const pt_entry *e = t->e[i];
    ts[i] = (evo_st_tensor){e->spec.name, EVO_F32, e->spec.ndim, e->spec.shape, flat + e->offset};
  }
  static const char *const meta[] = {"format", "evoc"};
  evo_status st = evo_st_write(path, ts, t->n, meta, 1);
  free(ts);
  return st;
}

static int pt_shape_eq(const evo_param_spec *s, const evo_st_info *in) {
  if (s->ndim != in->ndim) return 0;
  for (int d = 0; d < s->ndim; d++)
    if (s->shape[d] != in->shape[d]) return 0;
  return 1;
}

static void pt_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
  size_t used = (size_t)snprintf(buf, cap, "[");
  for (int d = 0; d < ndim && used < cap; d++)
    used += (size_t)snprintf(buf + used, cap - used, d ? ", %lld" : "%lld", (long long)shape[d]);
  if (used < cap) snprintf(buf + used, cap - used, "]");
}

/* strict: every entry must be present as F32 with the right shape; otherwise load what matches. */
static evo_status pt_load(const evo_ptree *t, float *flat, const char *path, int strict, int *n_loaded) {
  if (n_loaded) *n_loaded = 0;
  if (!t || !path || (!flat && t->size > 0))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "ptree_load %s: tree, flat or path is NULL", path ? path : "");
  evo_st_reader *r = NULL;
  evo_status st = evo_st_open(path, &r);
  if (st != EVO_STATUS_OK) return st;
  int *idx = malloc((t->n > 0 ? (size_t)t->n : 1) * sizeof *idx);
  if (!idx) {
    evo_st_close(r);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  /* Check everything before writing anything, so a failed strict load leaves flat untouched. */
  for (int i = 0; i < t->n && st == EVO_STATUS_OK; i++) {
    const evo_param_spec *s = &t->e[i]->spec;
    int j = evo_st_find(r, s->name);
    const evo_st_info *in = evo_st_info_at(r, j);
    idx[i] = -1;
    if (!in) {
      if (strict) st = evo_error(EVO_STATUS_NOT_FOUND, "%s: parameter '%s' is not in the file", path, s->name);
    } else if (in->dtype != EVO_F32) {
      if (strict)
        st = evo_error(EVO_STATUS_FORMAT, "%s: parameter '%s' has dtype %s, expected F32", path, s->name,
                       in->dtype_name);
    } else if (!pt_shape_eq(s, in)) {
      if (strict) {
        char want[160], got[160];
        pt_shape_str(want, sizeof want, s->ndim, s->shape);
        pt_shape_str(got, sizeof got, in->ndim, in->shape);
        st = evo_error(EVO_STATUS_FORMAT, "%s: parameter '%s' has shape %s in the file, the tree expects %s", path,
                       s->name, got, want);
      }
    } else {
      idx[i] = j;
    }
  }
  int loaded = 0;
  for (int i = 0; i < t->n && st == EVO_STATUS_OK; i++) {
    if (idx[i] < 0) continue;
    st = evo_st_read(r, idx[i], flat + t->e[i]->offset, (size_t)t->e[i]->numel * sizeof(float));
    if (st == EVO_STATUS_OK) loaded++;
  }
  if (n_loaded) *n_loaded = loaded;
  free(idx);
  evo_st_close(r);
  return st;
}

evo_status evo_ptree_load(const evo_ptree *t, float *flat, const char *path) { return pt_load(t, flat, path, 1, NULL); }

evo_status evo_ptree_load_matching(const evo_ptree *t, float *flat, const char *path, int *n_loaded) {
  return pt_load(t, flat, path, 0, n_loaded);
}
