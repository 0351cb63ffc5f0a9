/* Sweep files: the grid expanded into runs (names, overrides), each run's config, its state on disk, and the
   results table (include/evoc/sweep.h). */
#define _POSIX_C_SOURCE 200809L
#include "evoc/sweep.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/run.h"

#define SWEEP_MAX_RUNS 100000

typedef struct {
  char *key, *value, *where; /* "algo.center_lr", "0.05", "sweep.yaml:7:20" */
} assignment;

typedef struct {
  char *key;
  int n;
  assignment *values; /* n choices */
} grid_axis;

struct evo_sweep {
  char *name, *base, *file;
  assignment *fixed;
  int n_fixed;
  grid_axis *axes;
  int n_axes, count;
  char **run_names;
  char **scratch; /* per run: "key=value" strings, n_fixed + n_axes each */
};

static evo_status oom(void) { return evo_error(EVO_STATUS_OUT_OF_MEMORY, "sweep: out of memory"); }

/* Flow YAML text of a scalar or a (nested) list of scalars: "0.05", "[64, 64]". */
static evo_status value_text(evo_cfg *n, char *buf, size_t cap, size_t *used) {
  char where[300];
  if (evo_cfg_kind_of(n) == EVO_CFG_SCALAR) {
    int w = snprintf(buf + *used, cap - *used, "%s", evo_cfg_scalar(n));
    if (w < 0 || (size_t)w >= cap - *used) goto too_long;
    *used += (size_t)w;
    return EVO_STATUS_OK;
  }
  if (evo_cfg_kind_of(n) != EVO_CFG_LIST)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: a sweep value must be a number, a string or a list of them",
                     evo_cfg_where(n, where, sizeof where));
  if (*used + 2 >= cap) goto too_long;
  buf[(*used)++] = '[';
  for (int i = 0; i < evo_cfg_list_size(n); i++) {
    if (i && *used + 2 < cap) buf[(*used)++] = ',', buf[(*used)++] = ' ';
    evo_status st = value_text(evo_cfg_list_at(n, i), buf, cap, used);
    if (st) return st;
  }
  if (*used + 2 >= cap) goto too_long;
  buf[(*used)++] = ']';
  buf[*used] = 0;
  return EVO_STATUS_OK;
too_long:
  return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: sweep value longer than %zu characters",
                   evo_cfg_where(n, where, sizeof where), cap - 1);
}

static evo_status make_assignment(const char *key, evo_cfg *val, assignment *a) {
  char text[1024], where[300];
  size_t used = 0;
  text[0] = 0;
  if (!key[0] || strchr(key, '=') || strchr(key, ' '))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: '%s' is not a config key (dotted path such as "
                     "algo.pop_size)", evo_cfg_where(val, where, sizeof where), key);
  evo_status st = value_text(val, text, sizeof text, &used);
  if (st) return st;
  a->key = strdup(key), a->value = strdup(text), a->where = strdup(evo_cfg_where(val, where, sizeof where));
  return a->key && a->value && a->where ? EVO_STATUS_OK : oom();
}

static evo_status read_fixed(evo_sweep *s, evo_cfg *root) {
  evo_cfg *set = evo_cfg_get(root, "set");
  char where[300];
  if (!set || evo_cfg_kind_of(set) == EVO_CFG_NULL) return EVO_STATUS_OK;
  if (evo_cfg_kind_of(set) != EVO_CFG_MAP)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: set must be a map of config keys to values",
                     evo_cfg_where(set, where, sizeof where));
  int n = evo_cfg_map_size(set);
  if (!(s->fixed = calloc((size_t)n + 1, sizeof *s->fixed))) return oom();
  for (int i = 0; i < n; i++) {
    s->n_fixed = i + 1; /* counted before it is filled: a failure frees what there is */
    evo_status st = make_assignment(evo_cfg_map_key(set, i), evo_cfg_map_value(set, i), &s->fixed[i]);
    if (st) return st;
  }
  return EVO_STATUS_OK;
}

static evo_status read_grid(evo_sweep *s, evo_cfg *root) {
  evo_cfg *grid = evo_cfg_get(root, "grid");
  char where[300];
  s->count = 1;
  if (!grid || evo_cfg_kind_of(grid) == EVO_CFG_NULL) return EVO_STATUS_OK;
  if (evo_cfg_kind_of(grid) != EVO_CFG_MAP)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: grid must be a map of config keys to lists of values",
                     evo_cfg_where(grid, where, sizeof where));
  int n = evo_cfg_map_size(grid);
  if (!(s->axes = calloc((size_t)n + 1, sizeof *s->axes))) return oom();
  for (int k = 0; k < n; k++) {
    grid_axis *ax = &s->axes[k];
    s->n_axes = k + 1; /* counted before it is filled: a failure frees what there is */
    evo_cfg *list = evo_cfg_map_value(grid, k);
    const char *key = evo_cfg_map_key(grid, k);
    if (!(ax->key = strdup(key))) return oom();
    if (evo_cfg_kind_of(list) != EVO_CFG_LIST || evo_cfg_list_size(list) < 1)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: grid.%s must be a non-empty list of values, e.g. [1, 2]",
                       evo_cfg_where(list, where, sizeof where), key);
    ax->n = evo_cfg_list_size(list);
    if (!(ax->values = calloc((size_t)ax->n, sizeof *ax->values))) return oom();
    for (int j = 0; j < ax->n; j++) {
      evo_status st = make_assignment(key, evo_cfg_list_at(list, j), &ax->values[j]);
      if (st) return st;
    }
    if ((int64_t)s->count * ax->n > SWEEP_MAX_RUNS)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: the grid has more than %d runs",
                       evo_cfg_where(list, where, sizeof where), SWEEP_MAX_RUNS);
    s->count *= ax->n;
  }
  return EVO_STATUS_OK;
}

/* Choice of axis k in run i: the first axis varies slowest. */
static int choice(const evo_sweep *s, int i, int k) {
  int stride = 1;
  for (int j = s->n_axes - 1; j > k; j--) stride *= s->axes[j].n;
  return i / stride % s->axes[k].n;
}

/* Override k of run i: the fixed ones (set) first, then one value per grid axis. */
static const assignment *override_of(const evo_sweep *s, int i, int k) {
  return k < s->n_fixed ? &s->fixed[k] : &s->axes[k - s->n_fixed].values[choice(s, i, k - s->n_fixed)];
}

/* "004-seed=1,center_lr=0.02": the last part of each key, characters outside [A-Za-z0-9._=+-] as '_'. */
static char *run_name(const evo_sweep *s, int i) {
  char buf[160];
  int w = snprintf(buf, sizeof buf, "%03d", i);
  for (int k = 0; k < s->n_axes && w < (int)sizeof buf - 1; k++) {
    const char *key = strrchr(s->axes[k].key, '.') ? strrchr(s->axes[k].key, '.') + 1 : s->axes[k].key;
    w += snprintf(buf + w, sizeof buf - (size_t)w, "%s%s=", k ? "," : "-", key);
    /* a list value reads 64x64; other characters outside [A-Za-z0-9._+-] become '_' */
    for (const char *v = s->axes[k].values[choice(s, i, k)].value; *v && w < (int)sizeof buf - 1; v++) {
      if (*v == '[' || *v == ']' || *v == ' ') continue;
      buf[w++] = *v == ',' ? 'x' : isalnum((unsigned char)*v) || strchr("._+-", *v) ? *v : '_';
    }
    buf[w] = 0;
  }
  return strdup(buf);
}

static evo_status expand(evo_sweep *s) {
  const int per = s->n_fixed + s->n_axes;
  s->run_names = calloc((size_t)s->count, sizeof *s->run_names);
  s->scratch = calloc((size_t)s->count * (size_t)(per > 0 ? per : 1), sizeof *s->scratch);
  if (!s->run_names || !s->scratch) return oom();
  for (int i = 0; i < s->count; i++) {
    if (!(s->run_names[i] = run_name(s, i))) return oom();
    for (int k = 0; k < per; k++) {
      const assignment *a = override_of(s, i, k);
      size_t n = strlen(a->key) + strlen(a->value) + 2;
      char *t = malloc(n);
      if (!t) return oom();
      snprintf(t, n, "%s=%s", a->key, a->value);
      s->scratch[(size_t)i * (size_t)per + (size_t)k] = t;
    }
  }
  return EVO_STATUS_OK;
}

/* base relative to the sweep file's folder (unless absolute). */
static char *resolve(const char *sweep_path, const char *base) {
  const char *slash = strrchr(sweep_path, '/');
  if (base[0] == '/' || !slash) return strdup(base);
  size_t n = (size_t)(slash - sweep_path) + strlen(base) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%.*s/%s", (int)(slash - sweep_path), sweep_path, base);
  return p;
}

static char *stem(const char *path) {
  const char *b = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  const char *dot = strrchr(b, '.');
  size_t n = dot && dot > b ? (size_t)(dot - b) : strlen(b);
  char *s = malloc(n + 1);
  if (s) memcpy(s, b, n), s[n] = 0;
  return s;
}

static evo_status read_sweep(evo_sweep *s, evo_config *doc, const char *path) {
  evo_cfg *root = evo_config_root(doc);
  if (evo_cfg_kind_of(root) != EVO_CFG_MAP)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: a sweep file is a map with base, and optionally name, set "
                     "and grid", path);
  const char *base, *name;
  evo_status st = evo_cfg_require(root, "base");
  if (!st) st = evo_cfg_string(root, "base", NULL, NULL, &base);
  if (!st) st = evo_cfg_string(root, "name", NULL, NULL, &name);
  if (!st) st = read_fixed(s, root);
  if (!st) st = read_grid(s, root);
  if (!st) st = evo_cfg_check_unused(root);
  if (st) return st;
  s->base = resolve(path, base);
  s->name = name ? strdup(name) : stem(path);
  s->file = strdup(path);
  if (!s->base || !s->name || !s->file) return oom();
  if (!evo_run_file_exists(s->base)) {
    char where[300];
    return evo_error(EVO_STATUS_NOT_FOUND, "%s: base config %s does not exist (paths are relative to the sweep "
                     "file)", evo_cfg_where(evo_cfg_get(root, "base"), where, sizeof where), s->base);
  }
  return expand(s);
}

evo_status evo_sweep_load(const char *path, evo_sweep **out) {
  if (!path || !out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sweep: NULL argument");
  *out = NULL;
  evo_config *doc;
  evo_status st = evo_config_load(path, &doc);
  if (st) return st;
  evo_sweep *s = calloc(1, sizeof *s);
  st = s ? read_sweep(s, doc, path) : oom();
  evo_config_free(doc);
  if (st) {
    evo_sweep_free(s);
    return st;
  }
  *out = s;
  return EVO_STATUS_OK;
}

static void free_assignment(assignment *a) { free(a->key), free(a->value), free(a->where); }

void evo_sweep_free(evo_sweep *s) {
  if (!s) return;
  const int per = s->n_fixed + s->n_axes;
  for (int i = 0; s->run_names && i < s->count; i++) free(s->run_names[i]);
  for (size_t j = 0; s->scratch && j < (size_t)s->count * (size_t)per; j++) free(s->scratch[j]);
  for (int k = 0; k < s->n_fixed; k++) free_assignment(&s->fixed[k]);
  for (int k = 0; k < s->n_axes; k++) {
    for (int j = 0; s->axes[k].values && j < s->axes[k].n; j++) free_assignment(&s->axes[k].values[j]);
    free(s->axes[k].values), free(s->axes[k].key);
  }
  free(s->run_names), free(s->scratch), free(s->fixed), free(s->axes);
  free(s->name), free(s->base), free(s->file), free(s);
}

const char *evo_sweep_name(const evo_sweep *s) { return s->name; }
const char *evo_sweep_base(const evo_sweep *s) { return s->base; }
int evo_sweep_count(const evo_sweep *s) { return s->count; }
int evo_sweep_grid_keys(const evo_sweep *s) { return s->n_axes; }
const char *evo_sweep_grid_key(const evo_sweep *s, int k) { return s->axes[k].key; }
const char *evo_sweep_run_name(const evo_sweep *s, int i) { return s->run_names[i]; }
const char *evo_sweep_run_value(const evo_sweep *s, int i, int k) { return s->axes[k].values[choice(s, i, k)].value; }

int evo_sweep_run_sets(const evo_sweep *s, int i, const char **sets, int cap) {
  const int per = s->n_fixed + s->n_axes;
  for (int k = 0; k < per && k < cap; k++) sets[k] = s->scratch[(size_t)i * (size_t)per + (size_t)k];
  return per;
}

evo_status evo_sweep_config(const evo_sweep *s, int i, evo_config **out) {
  if (!s || !out || i < 0 || i >= s->count) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sweep: no run %d", i);
  *out = NULL;
  evo_config *cfg;
  evo_status st = evo_config_load(s->base, &cfg);
  if (st) return st;
  const int per = s->n_fixed + s->n_axes;
  for (int k = 0; k < per && !st; k++) {
    const assignment *a = override_of(s, i, k);
    if ((st = evo_config_set(cfg, s->scratch[(size_t)i * (size_t)per + (size_t)k])))
      st = evo_error(st, "%s: %s", a->where, evo_last_error());
  }
  if (st) {
    evo_config_free(cfg);
    return st;
  }
  *out = cfg;
  return EVO_STATUS_OK;
}
