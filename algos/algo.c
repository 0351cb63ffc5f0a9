/* The ask/tell wrapper shared by every strategy: option resolution and validation, the maximize switch, NaN
   handling, counters, and state save/load through one registration list. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "algo_impl.h"
#include "backend_impl.h"
#include "safetensors.h"
#include "zcache.h"

const evo_algo_vtable *evo_algo_vtable_find(const char *name);

evo_algo_params evo_algo_default_params(void) {
  return (evo_algo_params){.name = "pgpe", .maximize = true, .key = evo_key_from_seed(0)};
}

void evo_state_add(evo_state_list *l, const char *name, evo_dtype dtype, void *data, int64_t n) {
  if (l->n < EVO_ALGO_MAX_STATE) l->e[l->n++] = (evo_state_entry){name, dtype, data, n};
}

evo_key evo_algo_member_key(const evo_algo *a, int64_t gen, int64_t i) {
  return evo_key_fold_in(evo_key_fold_in(a->key, (uint32_t)gen), (uint32_t)i);
}

const char *const evo_option_bool[] = {"false", "true", NULL};

static int option_index(const evo_algo_info *info, const char *key) {
  for (int i = 0; i < info->n_options; i++)
    if (strcmp(info->options[i].key, key) == 0) return i;
  return -1;
}

double evo_algo_opt(const evo_algo *a, const char *key) {
  int i = option_index(&a->vt->info, key);
  return i < 0 ? NAN : a->opt[i];
}
double evo_algo_option(const evo_algo *a, const char *key) { return evo_algo_opt(a, key); }

evo_status evo_algo_set_pop(evo_algo *a, int pop) {
  if (pop > a->fit_cap) {
    float *nb = realloc(a->fit_buf, sizeof(float) * (size_t)pop);
    if (!nb) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "algo: out of memory for population %d", pop);
    a->fit_buf = nb;
    a->fit_cap = pop;
  }
  a->pop = pop;
  return EVO_STATUS_OK;
}

void evo_algo_free(evo_algo *a) {
  if (!a) return;
  if (a->vt->destroy) a->vt->destroy(a);
  free(a->init_mean);
  free(a->fit_buf);
  free(a->stage);
  evo_zc_free(a->zc);
  free(a);
}

evo_status evo_algo_new(const evo_algo_params *p, evo_algo **out) {
  *out = NULL;
  const evo_algo_vtable *vt = p->name ? evo_algo_vtable_find(p->name) : NULL;
  if (!vt) return evo_error(EVO_STATUS_NOT_FOUND, "algo: unknown algorithm '%s'", p->name ? p->name : "(null)");
  const evo_algo_info *info = &vt->info;
  if (p->num_params < 1) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo.num_params must be > 0");
  if (p->pop_size < 0) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo.pop_size must be >= 0");
  if (p->init_stdev < 0) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo.init_stdev must be >= 0");
  evo_algo *a = calloc(1, sizeof *a);
  if (!a) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "algo: out of memory");
  a->vt = vt;
  a->n = p->num_params;
  a->key = p->key;
  a->zc_bytes = EVO_ZC_MAX_BYTES;
  a->maximize = p->maximize;
  a->best_fitness = NAN;
  a->init_stdev = p->init_stdev > 0 ? p->init_stdev : vt->default_stdev;
  for (int i = 0; i < info->n_options && i < EVO_ALGO_MAX_OPTIONS; i++) a->opt[i] = info->options[i].def;
  for (int j = 0; j < p->n_options; j++) {
    int i = option_index(info, p->options[j].key);
    if (i < 0) {
      evo_algo_free(a);
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo %s has no option '%s'", info->name, p->options[j].key);
    }
    double v = p->options[j].value;
    if (!(v >= info->options[i].lo && v <= info->options[i].hi)) {
      evo_algo_free(a);
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo %s: %s = %g is outside [%g, %g]", info->name,
                       p->options[j].key, v, info->options[i].lo, info->options[i].hi);
    }
    if (info->options[i].choices && v != floor(v)) { /* a named value's number: lo + the index of its name */
      evo_algo_free(a);
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo %s: %s = %g is not one of its values (%s = %g, ...)",
                       info->name, p->options[j].key, v, info->options[i].choices[0], info->options[i].lo);
    }
    a->opt[i] = v;
  }
  a->init_mean = calloc((size_t)a->n, sizeof(float));
  evo_status st = a->init_mean ? EVO_STATUS_OK : evo_error(EVO_STATUS_OUT_OF_MEMORY, "algo: out of memory");
  if (st == EVO_STATUS_OK && p->init_mean) memcpy(a->init_mean, p->init_mean, sizeof(float) * (size_t)a->n);
  if (st == EVO_STATUS_OK) st = evo_algo_set_pop(a, p->pop_size > 0 ? p->pop_size : vt->default_pop(a->n));
  if (st == EVO_STATUS_OK) st = vt->init(a);
  if (st != EVO_STATUS_OK) {
    evo_algo_free(a);
    return st;
  }
  *out = a;
  return EVO_STATUS_OK;
}

const char *evo_algo_name(const evo_algo *a) { return a->vt->info.name; }
int evo_algo_pop_size(const evo_algo *a) { return a->pop; }
int64_t evo_algo_num_params(const evo_algo *a) { return a->n; }
int64_t evo_algo_generation(const evo_algo *a) { return a->gen; }

evo_status evo_algo_ask(evo_algo *a, int begin, int end, evo_tensor *pop) {
  if (begin < 0 || end > a->pop || begin >= end)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo ask: slice [%d, %d) outside population %d", begin, end,
                     a->pop);
  if (evo_tensor_dtype(pop) != EVO_F32 || evo_tensor_numel(pop) != (int64_t)(end - begin) * a->n)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo ask: pop must be f32 [%d, %lld]", end - begin,
                     (long long)a->n);
  float *dst = evo_tensor_data(pop);
  if (dst) return a->vt->ask(a, begin, end, dst);
  if (a->vt->ask_device) return a->vt->ask_device(a, begin, end, pop);
  const int64_t need = evo_tensor_numel(pop); /* sampled on the host, then one copy */
  if (need > a->stage_cap) {
    float *p = realloc(a->stage, sizeof(float) * (size_t)need);
    if (!p) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "algo ask: out of memory for %lld values", (long long)need);
    a->stage = p, a->stage_cap = need;
  }
  evo_status st = a->vt->ask(a, begin, end, a->stage);
  return st ? st : evo_tensor_copy_from_host(pop, a->stage, sizeof(float) * (size_t)need);
}

bool evo_algo_samples_on_device(const evo_algo *a) { return a->vt->ask_device != NULL; }

/* bd: descriptors for a strategy with tell_bd, else NULL. */
static evo_status tell_common(evo_algo *a, const float *fitness, const float *bd) {
  /* The one place where minimisation and NaN are handled. */
  for (int i = 0; i < a->pop; i++) {
    float f = fitness[i];
    if (isnan(f)) {
      a->nan_count++;
      a->fit_buf[i] = -INFINITY;
      continue;
    }
    if (isnan(a->best_fitness) || (a->maximize ? f > a->best_fitness : f < a->best_fitness)) a->best_fitness = f;
    a->fit_buf[i] = a->maximize ? f : -f;
  }
  int pop = a->pop;
  evo_status st = bd ? a->vt->tell_bd(a, a->fit_buf, bd) : a->vt->tell(a, a->fit_buf);
  if (st != EVO_STATUS_OK) return st;
  a->evals += pop;
  a->gen++;
  return EVO_STATUS_OK;
}

int evo_algo_bd_dim(const evo_algo *a) { return a->vt->bd_dim ? a->vt->bd_dim(a) : 0; }

evo_status evo_algo_tell(evo_algo *a, const float *fitness) {
  if (!a->vt->tell)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT,
                     "algo %s needs behaviour descriptors: call evo_algo_tell_bd with %d per member",
                     a->vt->info.name, evo_algo_bd_dim(a));
  return tell_common(a, fitness, NULL);
}

evo_status evo_algo_tell_bd(evo_algo *a, const float *fitness, const float *bd, int bd_dim) {
  if (!a->vt->tell_bd) return evo_algo_tell(a, fitness); /* takes no descriptors: ignored */
  if (!bd || bd_dim != evo_algo_bd_dim(a))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo %s: descriptors must be f32 [pop_size, %d], got %s%d",
                     a->vt->info.name, evo_algo_bd_dim(a), bd ? "bd_dim " : "NULL, bd_dim ", bd_dim);
  return tell_common(a, fitness, bd);
}

evo_status evo_algo_archive_get(const evo_algo *a, evo_algo_archive *out) {
  if (!a->vt->archive) return evo_error(EVO_STATUS_UNSUPPORTED, "algo %s has no archive", a->vt->info.name);
  return a->vt->archive(a, out);
}

evo_status evo_algo_archive_elite(const evo_algo *a, int64_t k, int64_t *cell, float *fitness, float *bd,
                                  float *params) {
  if (!a->vt->elite) return evo_error(EVO_STATUS_UNSUPPORTED, "algo %s has no archive", a->vt->info.name);
  return a->vt->elite(a, k, cell, fitness, bd, params);
}

evo_status evo_algo_best(const evo_algo *a, float *params) { return a->vt->best(a, params); }

evo_status evo_algo_stats_get(const evo_algo *a, evo_algo_stats *s) {
  *s = (evo_algo_stats){.generation = a->gen, .evaluations = a->evals, .nan_count = a->nan_count,
                        .best_fitness = a->best_fitness, .sigma = a->vt->sigma ? a->vt->sigma(a) : NAN,
                        .restarts = a->restarts, .stop = a->stop};
  return EVO_STATUS_OK;
}

/* The wrapper's own counters travel with the strategy's state. */
typedef struct {
  double v[8];
} counters;

static void pack(const evo_algo *a, counters *c) {
  c->v[0] = (double)a->gen, c->v[1] = (double)a->evals, c->v[2] = (double)a->nan_count;
  c->v[3] = a->best_fitness, c->v[4] = a->restarts, c->v[5] = a->stop, c->v[6] = a->pop;
  c->v[7] = (double)a->n;
}

evo_status evo_algo_save(const evo_algo *a, const char *path) {
  evo_state_list l = {0};
  counters c;
  pack(a, &c);
  evo_state_add(&l, "algo.counters", EVO_F64, c.v, 8);
  a->vt->state((evo_algo *)a, &l);
  evo_st_tensor t[EVO_ALGO_MAX_STATE];
  int64_t shapes[EVO_ALGO_MAX_STATE];
  for (int i = 0; i < l.n; i++) {
    shapes[i] = l.e[i].n;
    t[i] = (evo_st_tensor){l.e[i].name, l.e[i].dtype, 1, &shapes[i], l.e[i].data};
  }
  const char *meta[4] = {"format", "evoc-algo", "algo", a->vt->info.name};
  return evo_st_write(path, t, l.n, meta, 2);
}

/* The counters become integers that steer the run: a corrupt file must not turn NaN or 1e300 into one (undefined
   behaviour), nor size the population at will (restarts at most double it, IPOP's rule). */
static evo_status check_counters(const char *path, const counters *c, const evo_algo *a) {
  static const char *const names[7] = {"generation", "evaluations", "nan_count", "best_fitness", "restarts", "stop",
                                       "population"};
  for (int k = 0; k < 7; k++) {
    const double v = c->v[k];
    if (k == 3) continue; /* best fitness: any value, -inf before the first finite one */
    if (!(v >= 0 && v <= 9007199254740992.0 && v == floor(v)) || (k == 5 && v > 1) || (k == 4 && v > 1e6))
      return evo_error(EVO_STATUS_FORMAT, "%s: algo.counters %s is %g (corrupt state?)", path, names[k], v);
  }
  const int shift = c->v[4] < 24 ? (int)c->v[4] : 24;
  const double most = fmin((double)(a->pop > 0 ? a->pop : 1) * (double)(1 << shift), (double)INT_MAX);
  if (c->v[6] < 1 || c->v[6] > most)
    return evo_error(EVO_STATUS_FORMAT, "%s: algo.counters population %g is outside [1, %.0f] for %g restarts from "
                     "%d (corrupt state?)", path, c->v[6], most, c->v[4], a->pop);
  return EVO_STATUS_OK;
}

/* Entry k of r (n doubles) rounded into dst. */
static evo_status load_f64_as_f32(evo_st_reader *r, int k, float *dst, int64_t n) {
  double *tmp = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  if (!tmp) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory converting state", evo_st_path(r));
  const evo_status st = evo_st_read(r, k, tmp, sizeof(double) * (size_t)n);
  for (int64_t i = 0; st == EVO_STATUS_OK && i < n; i++) dst[i] = (float)tmp[i];
  free(tmp);
  return st;
}

evo_status evo_algo_load(evo_algo *a, const char *path) {
  evo_st_reader *r;
  evo_status st = evo_st_open(path, &r);
  if (st != EVO_STATUS_OK) return st;
  const char *name = evo_st_metadata(r, "algo");
  if (!name || strcmp(name, a->vt->info.name) != 0) {
    st = evo_error(EVO_STATUS_FORMAT, "%s: state is for algorithm '%s', not '%s'", path, name ? name : "?",
                   a->vt->info.name);
    evo_st_close(r);
    return st;
  }
  /* Restarts may have changed the population: restore it before the strategy's arrays are sized. */
  counters c;
  int ci = evo_st_find(r, "algo.counters");
  const evo_st_info *cinf = ci >= 0 ? evo_st_info_at(r, ci) : NULL;
  if (!cinf || cinf->dtype != EVO_F64 || cinf->numel != 8 || evo_st_read(r, ci, c.v, sizeof c.v) != EVO_STATUS_OK ||
      c.v[7] != (double)a->n) {
    evo_st_close(r);
    return evo_error(EVO_STATUS_FORMAT, "%s: missing counters or a different number of parameters", path);
  }
  if ((st = check_counters(path, &c, a)) != EVO_STATUS_OK || (st = evo_algo_set_pop(a, (int)c.v[6])) != EVO_STATUS_OK) {
    evo_st_close(r);
    return st;
  }
  a->gen = (int64_t)c.v[0], a->evals = (int64_t)c.v[1], a->nan_count = (int64_t)c.v[2];
  a->best_fitness = c.v[3], a->restarts = (int)c.v[4], a->stop = c.v[5] != 0;
  evo_state_list l = {0};
  a->vt->state(a, &l);
  for (int i = 0; i < l.n && st == EVO_STATUS_OK; i++) {
    int k = evo_st_find(r, l.e[i].name);
    const evo_st_info *inf = k >= 0 ? evo_st_info_at(r, k) : NULL;
    if (inf && inf->numel != l.e[i].n && a->vt->state_resize) { /* growing state (an archive) */
      if ((st = a->vt->state_resize(a, l.e[i].name, inf->numel)) != EVO_STATUS_OK) break;
      l.n = 0;
      a->vt->state(a, &l); /* same order, new sizes and pointers */
    }
    if (inf && inf->dtype == EVO_F64 && l.e[i].dtype == EVO_F32 && inf->numel == l.e[i].n)
      st = load_f64_as_f32(r, k, l.e[i].data, l.e[i].n); /* state an earlier version kept in double */
    else if (!inf || inf->dtype != l.e[i].dtype || inf->numel != l.e[i].n)
      st = evo_error(EVO_STATUS_FORMAT, "%s: state entry '%s' missing or of the wrong type/size", path,
                     l.e[i].name);
    else
      st = evo_st_read(r, k, l.e[i].data, (size_t)l.e[i].n * evo_dtype_size(l.e[i].dtype));
  }
  evo_st_close(r);
  return st;
}
