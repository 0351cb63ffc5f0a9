/* The parameters of gradient training: one tensor per tree entry (the plans take them as separate inputs), filled
   from the init seed and init_from, selected by name for reinit and freeze, and updated by chunked optimizers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "gradtrain_impl.h"
#include "safetensors.h"

static const evo_ptree *tree(const evo_gradtrain *t) { return evo_policy_ptree(t->pol); }

static int64_t numel(const evo_param_spec *s) {
  int64_t n = 1;
  for (int d = 0; d < s->ndim; d++) n *= s->shape[d];
  return n;
}

static float *pdata(const evo_gradtrain *t, int i) { return evo_tensor_data(t->param[i]); }

static const char *shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
  size_t used = (size_t)snprintf(buf, cap, "[");
  for (int d = 0; d < ndim && used < cap; d++)
    used += (size_t)snprintf(buf + used, cap - used, d ? ", %lld" : "%lld", (long long)shape[d]);
  if (used < cap) snprintf(buf + used, cap - used, "]");
  return buf;
}

/* "dense2" selects dense2.kernel and dense2.bias; "dense2.bias" only itself. */
static bool name_selects(const char *name, const char *entry) {
  size_t n = strlen(name);
  return !strcmp(name, entry) || (!strncmp(name, entry, n) && entry[n] == '.');
}

/* "conv1, dense1, dense2": the layer part of every entry name, each once. */
static void layer_list(const evo_gradtrain *t, char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < t->n_entries; i++) {
    const char *nm = evo_ptree_spec(tree(t), i)->name;
    int len = (int)strcspn(nm, ".");
    bool seen = false;
    for (int j = 0; j < i && !seen; j++) {
      const char *o = evo_ptree_spec(tree(t), j)->name;
      seen = (int)strcspn(o, ".") == len && !strncmp(o, nm, (size_t)len);
    }
    if (!seen && used < cap) used += (size_t)snprintf(buf + used, cap - used, "%s%.*s", used ? ", " : "", len, nm);
  }
}

evo_status evo_gradtrain_select(evo_gradtrain *t, evo_cfg *root, const char *key, bool *sel) {
  evo_cfg *node = evo_cfg_get(root, key);
  if (!node || evo_cfg_kind_of(node) == EVO_CFG_NULL) return EVO_STATUS_OK;
  bool list = evo_cfg_kind_of(node) == EVO_CFG_LIST;
  int n = list ? evo_cfg_list_size(node) : 1;
  char where[512], layers[512];
  for (int k = 0; k < n; k++) {
    evo_cfg *item = list ? evo_cfg_list_at(node, k) : node;
    const char *name = evo_cfg_scalar(item);
    if (!name || evo_cfg_kind_of(item) != EVO_CFG_SCALAR)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: %s must list layer or entry names, e.g. [dense2]",
                       evo_cfg_where(item, where, sizeof where), key);
    bool hit = false;
    for (int i = 0; i < t->n_entries; i++)
      if (name_selects(name, evo_ptree_spec(tree(t), i)->name)) sel[i] = hit = true;
    if (!hit) {
      layer_list(t, layers, sizeof layers);
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: %s: policy %s has no layer or entry '%s' (its layers: %s)",
                       evo_cfg_where(item, where, sizeof where), key, t->policy_name, name, layers);
    }
  }
  return EVO_STATUS_OK;
}

/* init_from may name a run folder: its best.safetensors. */
static void resolve_init_path(const char *path, char *buf, size_t cap) {
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(buf, cap, "%s/best.safetensors", path);
  else snprintf(buf, cap, "%s", path);
}

/* Every entry not in reinit must be in the file as F32 with the policy's shape; all are checked before any is read,
   so a bad file leaves the fresh initialisation untouched. */
static evo_status load_init_from(evo_gradtrain *t, const char *path, const bool *reinit) {
  evo_st_reader *r;
  evo_status st = evo_st_open(path, &r);
  if (st == EVO_STATUS_IO) {
    char why[1024];
    snprintf(why, sizeof why, "%s", evo_last_error()); /* evo_error reuses the buffer evo_last_error returns */
    return evo_error(EVO_STATUS_NOT_FOUND, "%s; train the source run first or point init_from at its "
                     "best.safetensors", why);
  }
  if (st) return st;
  char want[96], got[96];
  for (int i = 0; !st && i < t->n_entries; i++) {
    const evo_param_spec *s = evo_ptree_spec(tree(t), i);
    const evo_st_info *in = reinit[i] ? NULL : evo_st_info_at(r, evo_st_find(r, s->name));
    if (reinit[i]) continue;
    shape_str(want, sizeof want, s->ndim, s->shape);
    if (!in)
      st = evo_error(EVO_STATUS_NOT_FOUND, "%s has no entry '%s' %s; add it to reinit to draw it fresh",
                     path, s->name, want);
    else if (in->dtype != EVO_F32 || in->ndim != s->ndim ||
             memcmp(in->shape, s->shape, sizeof(int64_t) * (size_t)s->ndim))
      st = evo_error(EVO_STATUS_FORMAT, "%s holds '%s' as %s %s, the policy needs F32 %s; add it to reinit to "
                     "draw it fresh", path, s->name, in->dtype_name,
                     shape_str(got, sizeof got, in->ndim, in->shape), want);
  }
  for (int i = 0; !st && i < t->n_entries; i++)
    if (!reinit[i])
      st = evo_st_read(r, evo_st_find(r, evo_ptree_spec(tree(t), i)->name), pdata(t, i),
                       evo_tensor_nbytes(t->param[i]));
  t->frozen_stale = true;
  evo_st_close(r);
  return st;
}

evo_status evo_gradtrain_params_init(evo_gradtrain *t, const char *init_from, const bool *reinit) {
  int n = t->n_entries;
  t->param = calloc((size_t)n, sizeof *t->param);
  t->space_off = calloc((size_t)n, sizeof *t->space_off);
  t->trained_idx = calloc((size_t)n, sizeof *t->trained_idx);
  float *flat = malloc(sizeof(float) * (size_t)evo_ptree_size(tree(t)));
  evo_status st = t->param && t->space_off && t->trained_idx && flat ? EVO_STATUS_OK
                  : evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory for the parameters");
  /* the fresh draw comes first, so reinit entries equal a fresh run's with the same seed */
  if (!st) st = evo_policy_init(t->pol, t->init_key, flat);
  if (!st) st = evo_gradtrain_set_params(t, flat);
  free(flat);
  if (!st && init_from) {
    char path[4200];
    resolve_init_path(init_from, path, sizeof path);
    st = load_init_from(t, path, reinit);
  }
  t->n_trained = 0, t->trained_size = 0;
  for (int i = 0; !st && i < n; i++) {
    if (!t->trained[i]) continue;
    t->trained_idx[t->n_trained++] = i;
    t->space_off[i] = t->trained_size;
    t->trained_size += numel(evo_ptree_spec(tree(t), i));
  }
  return st;
}

const evo_ptree *evo_gradtrain_ptree(const evo_gradtrain *t) { return tree(t); }
bool evo_gradtrain_trainable(const evo_gradtrain *t, int i) { return i >= 0 && i < t->n_entries && t->trained[i]; }

evo_status evo_gradtrain_get_params(const evo_gradtrain *t, float *flat) {
  evo_status st = EVO_STATUS_OK;
  for (int i = 0; !st && i < t->n_entries; i++)
    st = evo_gradtrain_dev_read_params(t, i, flat + evo_ptree_offset(tree(t), i));
  return st;
}

evo_status evo_gradtrain_set_params(evo_gradtrain *t, const float *flat) {
  evo_status st = evo_gradtrain_dev_sync(t); /* the device's moments are kept; its parameters are replaced */
  if (st) return st;
  for (int i = 0; i < t->n_entries; i++) {
    if (!t->param[i]) {
      const evo_param_spec *s = evo_ptree_spec(tree(t), i);
      if (!(t->param[i] = evo_tensor_new(t->be, EVO_F32, s->ndim, s->shape)))
        return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory for %s", s->name);
    }
    memcpy(pdata(t, i), flat + evo_ptree_offset(tree(t), i), evo_tensor_nbytes(t->param[i]));
  }
  t->frozen_stale = true;
  evo_gradtrain_dev_host_changed(t);
  return EVO_STATUS_OK;
}

evo_status evo_gradtrain_save_params(const evo_gradtrain *t, const char *path, const char *const *meta, int n_meta) {
  evo_st_tensor *ts = calloc((size_t)t->n_entries, sizeof *ts);
  if (!ts) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory");
  for (int i = 0; i < t->n_entries; i++) {
    const evo_param_spec *s = evo_ptree_spec(tree(t), i);
    ts[i] = (evo_st_tensor){s->name, EVO_F32, s->ndim, s->shape, pdata(t, i)};
  }
  evo_status st = evo_st_write(path, ts, t->n_entries, meta, n_meta);
  free(ts);
  return st;
}

/* ---------------------------------------------------------------- optimizer */

enum { CHUNK = 1 << 16 };

static evo_status add_chunk(evo_gradtrain *t, const evo_optim_params *p, int64_t start, int64_t n, int k,
                            int64_t offset) {
  evo_gradtrain_chunk *c = &t->chunks[t->n_chunks];
  *c = (evo_gradtrain_chunk){.start = start, .n = n, .entry = k < 0 ? -1 : t->trained_idx[k], .grad_k = k,
                      .offset = offset};
  evo_status st = evo_optim_new(p, n, &c->o);
  if (!st) t->n_chunks++;
  return st;
}

evo_status evo_gradtrain_optim_init(evo_gradtrain *t) {
  evo_optim_params p = t->op;
  p.clip_norm = 0; /* clipped once over the whole trained space, before the chunks step */
  bool gather = p.kind == EVO_OPTIM_CLIPUP;
  int64_t cap = gather ? 1 : t->trained_size / CHUNK + t->n_trained;
  t->chunks = calloc((size_t)cap, sizeof *t->chunks);
  t->chunk_sq = calloc((size_t)cap, sizeof *t->chunk_sq);
  if (gather) {
    t->gather_p = malloc(sizeof(float) * (size_t)t->trained_size);
    t->gather_g = malloc(sizeof(float) * (size_t)t->trained_size);
  }
  if (!t->chunks || !t->chunk_sq || (gather && (!t->gather_p || !t->gather_g)))
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory for the optimizer");
  if (gather) return add_chunk(t, &p, 0, t->trained_size, -1, 0);
  evo_status st = EVO_STATUS_OK;
  for (int k = 0; !st && k < t->n_trained; k++) {
    int i = t->trained_idx[k];
    int64_t n = numel(evo_ptree_spec(tree(t), i));
    for (int64_t off = 0; !st && off < n; off += CHUNK)
      st = add_chunk(t, &p, t->space_off[i] + off, n - off < CHUNK ? n - off : CHUNK, k, off);
  }
  return st;
}

/* Parameter and gradient memory of chunk c (the gathered copies for ClipUp). */
static void chunk_mem(const evo_gradtrain *t, const evo_gradtrain_chunk *c, float **p, float **g) {
  if (c->entry < 0) {
    *p = t->gather_p, *g = t->gather_g;
    return;
  }
  *p = pdata(t, c->entry) + c->offset;
  *g = (float *)evo_tensor_data(t->grad[c->grad_k]) + c->offset;
}

/* Copies between the trained entries and the gathered buffers (ClipUp). */
static void gather(evo_gradtrain *t, bool in) {
  for (int k = 0; k < t->n_trained; k++) {
    int i = t->trained_idx[k];
    int64_t off = t->space_off[i];
    size_t bytes = evo_tensor_nbytes(t->param[i]);
    if (in) {
      memcpy(t->gather_p + off, pdata(t, i), bytes);
      memcpy(t->gather_g + off, evo_tensor_data(t->grad[k]), bytes);
    } else {
      memcpy(pdata(t, i), t->gather_p + off, bytes);
    }
  }
}

evo_status evo_gradtrain_optim_step(evo_gradtrain *t) {
  if (t->res) return evo_gradtrain_dev_step(t);
  bool gathered = t->chunks[0].entry < 0;
  if (gathered) gather(t, true);
  const int nc = t->n_chunks;
  /* optax.clip_by_global_norm over everything trained; the partial sums are added in a fixed order so the result
     does not depend on the thread schedule */
  double scale = 1;
  if (t->op.clip_norm > 0) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < nc; c++) {
      float *p, *g;
      chunk_mem(t, &t->chunks[c], &p, &g);
      double s = 0;
      for (int64_t j = 0; j < t->chunks[c].n; j++) s += (double)g[j] * g[j];
      t->chunk_sq[c] = s;
    }
    double sq = 0;
    for (int c = 0; c < nc; c++) sq += t->chunk_sq[c];
    double norm = sqrt(sq);
    if (norm >= t->op.clip_norm) scale = t->op.clip_norm / norm;
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (int c = 0; c < nc; c++) {
    float *p, *g;
    chunk_mem(t, &t->chunks[c], &p, &g);
    if (scale != 1)
      for (int64_t j = 0; j < t->chunks[c].n; j++) g[j] = (float)(g[j] * scale);
    evo_optim_step(t->chunks[c].o, p, g); /* cannot fail once created */
  }
  if (gathered) gather(t, false);
  return EVO_STATUS_OK;
}

int64_t evo_gradtrain_optim_count(const evo_gradtrain *t) { return evo_optim_steps(t->chunks[0].o); }

int evo_gradtrain_optim_state(evo_gradtrain *t, int k, const char **name, int64_t *n, double *buf, bool to_buf) {
  int count = evo_optim_state_count(t->chunks[0].o);
  if (k < 0 || k >= count) return count;
  for (int c = 0; c < t->n_chunks; c++) {
    const char *nm;
    double *data;
    int64_t len;
    evo_optim_state_at(t->chunks[c].o, k, &nm, &data, &len);
    bool counter = !strcmp(nm, "optim.count"); /* one per chunk, all equal */
    *name = nm;
    *n = counter ? 1 : t->trained_size;
    if (!buf) continue;
    double *b = counter ? buf : buf + t->chunks[c].start;
    if (to_buf) memcpy(b, data, sizeof(double) * (size_t)len);
    else memcpy(data, b, sizeof(double) * (size_t)len);
  }
  return count;
}
