/* Typed readers of config maps, required keys and the unknown-key check. A reader marks its key used and records it
   as asked for even when absent, so a leftover key can be matched against what the program actually reads. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config_impl.h"

#define EVO_CFG_WHERE 256
#define EVO_CFG_PATH 256

/* ---------------------------------------------------------------- edit distance */

int evo_cfg_edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return 1000; /* no key is that long; no suggestion */
  int d[65][65];
  for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int cost = a[i - 1] != b[j - 1], v = d[i - 1][j - 1] + cost;
      if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1; /* swapped neighbours are one typo, not two */
      d[i][j] = v;
    }
  return d[la][lb];
}

bool evo_cfg_close_enough(const char *candidate, int dist) {
  int len = (int)strlen(candidate);
  return dist > 0 && (dist <= 2 || dist <= len / 3) && dist < len;
}

/* Closest of n candidates to typed, or NULL when none is close. */
static const char *evo_cfg_suggest(const char *typed, const char *const *cands, int n) {
  const char *best = NULL;
  int best_d = 0;
  for (int i = 0; i < n; i++) {
    int d = evo_cfg_edit_distance(typed, cands[i]);
    if (evo_cfg_close_enough(cands[i], d) && (!best || d < best_d)) best = cands[i], best_d = d;
  }
  return best;
}

/* ---------------------------------------------------------------- lookup */

/* Only the suggestions depend on this list, so running out of memory here just loses a suggestion. */
static void evo_cfg_note_asked(evo_cfg *map, const char *key) {
  for (int i = 0; i < map->n_asked; i++)
    if (!strcmp(map->asked[i], key)) return;
  if (map->n_asked == map->cap_asked) {
    int cap = map->cap_asked ? 2 * map->cap_asked : 8;
    char **a = realloc(map->asked, (size_t)cap * sizeof *a);
    if (!a) return;
    map->asked = a, map->cap_asked = cap;
  }
  char *k = evo_cfg_strndup(key, strlen(key));
  if (k) map->asked[map->n_asked++] = k;
}

static evo_cfg_entry *evo_cfg_lookup(evo_cfg *map, const char *key) {
  evo_cfg_note_asked(map, key);
  int i = evo_cfg_map_find(map, key);
  if (i < 0) return NULL;
  map->entries[i].used = true;
  return &map->entries[i];
}

evo_cfg *evo_cfg_get(evo_cfg *map, const char *key) {
  if (!map || map->kind != EVO_CFG_MAP || !key) return NULL;
  evo_cfg_entry *e = evo_cfg_lookup(map, key);
  return e ? e->val : NULL;
}

static const char *evo_cfg_got(const evo_cfg *n, char *buf, size_t cap) {
  if (n->kind == EVO_CFG_MAP) return "a map";
  if (n->kind == EVO_CFG_LIST) return "a list";
  if (n->kind == EVO_CFG_NULL) return "nothing";
  if (strlen(n->text) > 60) snprintf(buf, cap, "'%.57s...'", n->text);
  else snprintf(buf, cap, "'%s'", n->text);
  return buf;
}

static const char *evo_cfg_map_name(const evo_cfg *map, char *buf, size_t cap) {
  if (!map->parent) return "the top level";
  return evo_cfg_path(map, buf, cap);
}

/* Finds map[key] for a reader; *node stays NULL when the key is absent or null, i.e. the default applies. */
static evo_status evo_cfg_begin(evo_cfg *map, const char *key, evo_cfg **node) {
  *node = NULL;
  if (!key) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "config reader: NULL key");
  if (!map) return EVO_STATUS_OK;
  if (map->kind == EVO_CFG_NULL) { /* `algo:` left empty is an empty section */
    free(map->text);
    map->text = NULL;
    map->kind = EVO_CFG_MAP;
    map->quoted = false;
  }
  if (map->kind != EVO_CFG_MAP) {
    char where[EVO_CFG_WHERE], path[EVO_CFG_PATH], got[80];
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: %s must be a map (with key '%s'), got %s",
                     evo_cfg_where(map, where, sizeof where), evo_cfg_map_name(map, path, sizeof path), key,
                     evo_cfg_got(map, got, sizeof got));
  }
  evo_cfg_entry *e = evo_cfg_lookup(map, key);
  if (e && e->val->kind != EVO_CFG_NULL) *node = e->val;
  return EVO_STATUS_OK;
}

/* Records the default into the document, so the resolved config shows every value the run used. A null value is
   filled in place and keeps its line. */
static evo_status evo_cfg_put_default(evo_cfg *map, const char *key, const char *text, bool quoted, evo_cfg **out) {
  if (out) *out = NULL;
  if (!map) return EVO_STATUS_OK;
  char *t = evo_cfg_strndup(text, strlen(text));
  if (!t) return evo_cfg_oom();
  int i = evo_cfg_map_find(map, key);
  evo_cfg *v = i >= 0 ? map->entries[i].val : evo_cfg_node_new(map->doc, EVO_CFG_SCALAR, (evo_cfg_loc){0, 0, NULL});
  if (!v) {
    free(t);
    return evo_cfg_oom();
  }
  free(v->text);
  v->text = t;
  v->kind = EVO_CFG_SCALAR;
  v->quoted = quoted;
  if (i < 0) {
    evo_status st = evo_cfg_map_append(map, key, v, v->loc);
    if (st) {
      evo_cfg_node_free(v);
      return st;
    }
    map->entries[map->n - 1].used = true;
  }
  if (out) *out = v;
  return EVO_STATUS_OK;
}

/* ---------------------------------------------------------------- scalar syntax */

typedef enum { EVO_CFG_NUM_NONE, EVO_CFG_NUM_INT, EVO_CFG_NUM_FLOAT } evo_cfg_numkind;

/* YAML 1.2 core numbers (plus 1.1's digit separators "1_000"): 12, -3, 0x1F, 0o17, 1.5, 1e-3, .5, .inf, .nan.
   Integers too large for int64 come back as floats. */
static evo_cfg_numkind evo_cfg_parse_number(const char *s, int64_t *iv, double *dv) {
  char buf[128];
  size_t n = 0;
  if (s[0] == '_') return EVO_CFG_NUM_NONE;
  for (const char *p = s; *p; p++) {
    if (*p == '_') continue;
    if (n + 1 >= sizeof buf) return EVO_CFG_NUM_NONE;
    buf[n++] = *p;
  }
  buf[n] = '\0';
  const char *p = buf;
  int sign = 1;
  if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
  if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
    *dv = sign * INFINITY;
    return EVO_CFG_NUM_FLOAT;
  }
  if (p == buf && (!strcmp(p, ".nan") || !strcmp(p, ".NaN") || !strcmp(p, ".NAN"))) {
    *dv = NAN;
    return EVO_CFG_NUM_FLOAT;
  }
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o')) {
    int base = p[1] == 'x' ? 16 : 8;
    const char *q = p + 2;
    if (!*q) return EVO_CFG_NUM_NONE;
    uint64_t v = 0;
    bool big = false;
    for (; *q; q++) {
      int d = *q >= '0' && *q <= '9' ? *q - '0' : *q >= 'a' && *q <= 'f' ? *q - 'a' + 10
            : *q >= 'A' && *q <= 'F' ? *q - 'A' + 10 : 99;
      if (d >= base) return EVO_CFG_NUM_NONE;
      if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) big = true;
      v = v * (uint64_t)base + (uint64_t)d;
    }
    *dv = sign * (double)v;
    if (big || v > (uint64_t)INT64_MAX) return EVO_CFG_NUM_FLOAT;
    *iv = sign * (int64_t)v;
    return EVO_CFG_NUM_INT;
  }
  size_t digits = 0;
  bool is_float = false;
  const char *q = p;
  while (*q >= '0' && *q <= '9') q++, digits++;
  if (*q == '.') {
    is_float = true;
    for (q++; *q >= '0' && *q <= '9'; q++) digits++;
  }
  if (!digits) return EVO_CFG_NUM_NONE;
  if (*q == 'e' || *q == 'E') {
    is_float = true;
    q++;
    if (*q == '+' || *q == '-') q++;
    if (!(*q >= '0' && *q <= '9')) return EVO_CFG_NUM_NONE;
    while (*q >= '0' && *q <= '9') q++;
  }
  if (*q) return EVO_CFG_NUM_NONE;
  *dv = strtod(buf, NULL);
  if (is_float) return EVO_CFG_NUM_FLOAT;
  /* digits only: exact when it fits, else a float (and out of any int64 range) */
  if (digits > 18) {
    double lim = 9223372036854775807.0;
    if (fabs(*dv) >= lim) return EVO_CFG_NUM_FLOAT;
  }
  *iv = strtoll(buf, NULL, 10);
  return EVO_CFG_NUM_INT;
}

static int evo_cfg_parse_bool(const char *s) {
  static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
  for (int i = 0; i < 3; i++) {
    size_t l = strlen(yes[i]), k = 0;
    if (strlen(s) == l) {
      for (k = 0; k < l && (s[k] | 0x20) == yes[i][k]; k++) {}
      if (k == l) return 1;
    }
    l = strlen(no[i]);
    if (strlen(s) == l) {
      for (k = 0; k < l && (s[k] | 0x20) == no[i][k]; k++) {}
      if (k == l) return 0;
    }
  }
  return -1;
}

/* Shortest text that reads back as exactly v. */
static void evo_cfg_fmt_double(double v, char *buf, size_t cap) {
  if (isnan(v)) snprintf(buf, cap, ".nan");
  else if (isinf(v)) snprintf(buf, cap, v > 0 ? ".inf" : "-.inf");
  else
    for (int prec = 15; prec <= 17; prec++) {
      snprintf(buf, cap, "%.*g", prec, v);
      if (strtod(buf, NULL) == v) break;
    }
}

/* ---------------------------------------------------------------- typed readers */

static evo_status evo_cfg_bad_value(evo_cfg *map, const char *key, const evo_cfg *node, const char *want,
                                    const char *hint) {
  char where[EVO_CFG_WHERE], path[EVO_CFG_PATH], got[80];
  return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: %s must be %s, got %s%s", evo_cfg_where(node, where, sizeof where),
                   evo_cfg_key_path(map, key, path, sizeof path), want, evo_cfg_got(node, got, sizeof got),
                   hint ? hint : "");
}

static void evo_cfg_range_text(double lo, double hi, char *buf, size_t cap) {
  char l[40], h[40];
  bool positive = lo > 0 && lo < 1e-300; /* DBL_MIN and the like stand for "> 0" */
  snprintf(l, sizeof l, "%g", lo);
  snprintf(h, sizeof h, "%g", hi);
  if (lo == -INFINITY && hi == INFINITY) buf[0] = '\0';
  else if (hi == INFINITY) snprintf(buf, cap, positive ? " > 0" : " >= %s", l);
  else if (lo == -INFINITY) snprintf(buf, cap, " <= %s", h);
  else if (positive) snprintf(buf, cap, " in (0, %s]", h);
  else snprintf(buf, cap, " in [%s, %s]", l, h);
}

evo_status evo_cfg_double(evo_cfg *map, const char *key, double def, double lo, double hi, double *out) {
  evo_cfg *node;
  evo_status st = evo_cfg_begin(map, key, &node);
  if (st) return st;
  if (!node) {
    char t[40];
    evo_cfg_fmt_double(def, t, sizeof t);
    if (out) *out = def;
    return evo_cfg_put_default(map, key, t, false, NULL);
  }
  int64_t iv;
  double v = NAN;
  if (node->kind != EVO_CFG_SCALAR || !evo_cfg_parse_number(node->text, &iv, &v) || !(v >= lo && v <= hi)) {
    char want[128], range[100];
    evo_cfg_range_text(lo, hi, range, sizeof range);
    snprintf(want, sizeof want, "a number%s", range);
    return evo_cfg_bad_value(map, key, node, want, NULL);
  }
  if (out) *out = v;
  return EVO_STATUS_OK;
}

evo_status evo_cfg_int(evo_cfg *map, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out) {
  evo_cfg *node;
  evo_status st = evo_cfg_begin(map, key, &node);
  if (st) return st;
  if (!node) {
    char t[32];
    snprintf(t, sizeof t, "%lld", (long long)def);
    if (out) *out = def;
    return evo_cfg_put_default(map, key, t, false, NULL);
  }
  int64_t v = 0;
  double d = NAN;
  evo_cfg_numkind k = node->kind == EVO_CFG_SCALAR ? evo_cfg_parse_number(node->text, &v, &d) : EVO_CFG_NUM_NONE;
  bool ok = k == EVO_CFG_NUM_INT;
  if (k == EVO_CFG_NUM_FLOAT && d == floor(d) && fabs(d) < 9007199254740992.0) { /* 1e6 is an integer too */
    v = (int64_t)d;
    ok = true;
  }
  if (!ok || v < lo || v > hi) {
    char want[128];
    if (lo == INT64_MIN && hi == INT64_MAX) snprintf(want, sizeof want, "an integer");
    else if (hi == INT64_MAX) snprintf(want, sizeof want, "an integer >= %lld", (long long)lo);
    else if (lo == INT64_MIN) snprintf(want, sizeof want, "an integer <= %lld", (long long)hi);
    else snprintf(want, sizeof want, "an integer in [%lld, %lld]", (long long)lo, (long long)hi);
    return evo_cfg_bad_value(map, key, node, want, NULL);
  }
  if (out) *out = v;
  return EVO_STATUS_OK;
}

evo_status evo_cfg_bool(evo_cfg *map, const char *key, bool def, bool *out) {
  evo_cfg *node;
  evo_status st = evo_cfg_begin(map, key, &node);
  if (st) return st;
  if (!node) {
    if (out) *out = def;
    return evo_cfg_put_default(map, key, def ? "true" : "false", false, NULL);
  }
  int b = node->kind == EVO_CFG_SCALAR ? evo_cfg_parse_bool(node->text) : -1;
  if (b < 0) return evo_cfg_bad_value(map, key, node, "a boolean (true/false, yes/no, on/off)", NULL);
  if (out) *out = b == 1;
  return EVO_STATUS_OK;
}

/* A string default that YAML would read as a number, bool or null is written quoted, so other tools agree. */
static bool evo_cfg_looks_typed(const char *s) {
  int64_t iv;
  double dv;
  return evo_cfg_is_null_text(s) || evo_cfg_parse_bool(s) >= 0 || evo_cfg_parse_number(s, &iv, &dv);
}

evo_status evo_cfg_string(evo_cfg *map, const char *key, const char *def, const char *const *choices,
                          const char **out) {
  evo_cfg *node;
  evo_status st = evo_cfg_begin(map, key, &node);
  if (st) return st;
  if (!node) {
    if (out) *out = def;
    if (!def) return EVO_STATUS_OK; /* optional, no default: absent stays absent */
    evo_cfg *v;
    if ((st = evo_cfg_put_default(map, key, def, evo_cfg_looks_typed(def), &v))) return st;
    if (out && v) *out = v->text; /* the document's copy outlives the caller's default */
    return EVO_STATUS_OK;
  }
  if (node->kind != EVO_CFG_SCALAR) return evo_cfg_bad_value(map, key, node, "a string", NULL);
  if (choices) {
    int n = 0;
    while (choices[n] && strcmp(choices[n], node->text)) n++;
    if (!choices[n]) {
      char want[400] = "one of ", hint[100] = "";
      for (int i = 0; choices[i]; i++) {
        size_t l = strlen(want);
        snprintf(want + l, sizeof want - l, "%s'%s'", i ? ", " : "", choices[i]);
      }
      const char *s = evo_cfg_suggest(node->text, choices, n);
      if (s) snprintf(hint, sizeof hint, " (did you mean '%s'?)", s);
      return evo_cfg_bad_value(map, key, node, want, hint);
    }
  }
  if (out) *out = node->text;
  return EVO_STATUS_OK;
}

evo_status evo_cfg_doubles(evo_cfg *map, const char *key, double def, int64_t n, double *out) {
  if (n < 0 || (n > 0 && !out)) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_cfg_doubles: bad n or out");
  evo_cfg *node;
  evo_status st = evo_cfg_begin(map, key, &node);
  if (st) return st;
  int64_t iv;
  double v = NAN;
  if (!node) {
    char t[40];
    evo_cfg_fmt_double(def, t, sizeof t);
    for (int64_t i = 0; i < n; i++) out[i] = def;
    return evo_cfg_put_default(map, key, t, false, NULL);
  }
  char want[96];
  snprintf(want, sizeof want, "a number or a list of %lld numbers", (long long)n);
  if (node->kind == EVO_CFG_SCALAR) {
    if (!evo_cfg_parse_number(node->text, &iv, &v) || isnan(v)) return evo_cfg_bad_value(map, key, node, want, NULL);
    for (int64_t i = 0; i < n; i++) out[i] = v;
    return EVO_STATUS_OK;
  }
  if (node->kind != EVO_CFG_LIST) return evo_cfg_bad_value(map, key, node, want, NULL);
  if (node->n != n) {
    char where[EVO_CFG_WHERE], path[EVO_CFG_PATH];
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: %s must be %s, got a list of %d",
                     evo_cfg_where(node, where, sizeof where), evo_cfg_key_path(map, key, path, sizeof path), want,
                     node->n);
  }
  for (int i = 0; i < node->n; i++) {
    const evo_cfg *it = node->items[i];
    if (it->kind != EVO_CFG_SCALAR || !evo_cfg_parse_number(it->text, &iv, &v) || isnan(v)) {
      char where[EVO_CFG_WHERE], path[EVO_CFG_PATH], got[80];
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: %s must be a number, got %s",
                       evo_cfg_where(it, where, sizeof where), evo_cfg_path(it, path, sizeof path),
                       evo_cfg_got(it, got, sizeof got));
    }
    out[i] = v;
  }
  return EVO_STATUS_OK;
}

evo_status evo_cfg_section(evo_cfg *map, const char *key, evo_cfg **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_cfg_section: NULL out");
  *out = NULL;
  evo_cfg *node;
  evo_status st = evo_cfg_begin(map, key, &node);
  if (st || !map) return st;
  if (node && node->kind != EVO_CFG_MAP) return evo_cfg_bad_value(map, key, node, "a map (section)", NULL);
  if (!node) { /* absent or null: an empty section that readers fill with defaults */
    if ((st = evo_cfg_put_default(map, key, "", false, &node))) return st;
    free(node->text);
    node->text = NULL;
    node->kind = EVO_CFG_MAP;
  }
  *out = node;
  return EVO_STATUS_OK;
}

evo_status evo_cfg_require(evo_cfg *map, const char *key) {
  char where[EVO_CFG_WHERE], path[EVO_CFG_PATH];
  if (!key) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_cfg_require: NULL key");
  if (!map) return evo_error(EVO_STATUS_NOT_FOUND, "(config): missing required key %s", key);
  if (map->kind == EVO_CFG_MAP) {
    evo_cfg_note_asked(map, key);
    int i = evo_cfg_map_find(map, key);
    if (i >= 0 && map->entries[i].val->kind != EVO_CFG_NULL) return EVO_STATUS_OK;
    if (i >= 0)
      return evo_error(EVO_STATUS_NOT_FOUND, "%s: required key %s has no value",
                       evo_cfg_where(map->entries[i].val, where, sizeof where),
                       evo_cfg_key_path(map, key, path, sizeof path));
  } else if (map->kind != EVO_CFG_NULL) {
    char got[80];
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: %s must be a map (with key '%s'), got %s",
                     evo_cfg_where(map, where, sizeof where), evo_cfg_map_name(map, path, sizeof path), key,
                     evo_cfg_got(map, got, sizeof got));
  }
  /* A leftover key close to the missing one is most likely it, misspelt. */
  char hint[EVO_CFG_WHERE + 80] = "";
  const evo_cfg_entry *typo = NULL;
  int best = 0;
  for (int i = 0; map->kind == EVO_CFG_MAP && i < map->n; i++) {
    int d = evo_cfg_edit_distance(map->entries[i].key, key);
    if (!map->entries[i].used && evo_cfg_close_enough(key, d) && (!typo || d < best))
      typo = &map->entries[i], best = d;
  }
  if (typo) {
    char at[EVO_CFG_WHERE];
    snprintf(hint, sizeof hint, " (is '%s' at %s a typo?)", typo->key, evo_cfg_loc_str(map->doc, typo->loc, at, sizeof at));
  }
  return evo_error(EVO_STATUS_NOT_FOUND, "%s: missing required key %s%s", evo_cfg_where(map, where, sizeof where),
                   evo_cfg_key_path(map, key, path, sizeof path), hint);
}

/* ---------------------------------------------------------------- unknown keys */

evo_status evo_cfg_check_unused(evo_cfg *n) {
  if (!n) return EVO_STATUS_OK;
  if (n->kind == EVO_CFG_LIST) {
    for (int i = 0; i < n->n; i++) {
      evo_status st = evo_cfg_check_unused(n->items[i]);
      if (st) return st;
    }
    return EVO_STATUS_OK;
  }
  if (n->kind != EVO_CFG_MAP) return EVO_STATUS_OK;
  for (int i = 0; i < n->n; i++) {
    const evo_cfg_entry *e = &n->entries[i];
    if (e->used) { /* a key a reader took: its value may still hide typos deeper down */
      evo_status st = evo_cfg_check_unused(e->val);
      if (st) return st;
      continue;
    }
    char where[EVO_CFG_WHERE], path[EVO_CFG_PATH], hint[100] = "";
    const char *s = evo_cfg_suggest(e->key, (const char *const *)n->asked, n->n_asked);
    if (s) snprintf(hint, sizeof hint, " (did you mean '%s'?)", s);
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: unknown key '%s' %s%s%s",
                     evo_cfg_loc_str(n->doc, e->loc, where, sizeof where), e->key, n->parent ? "in " : "at ",
                     evo_cfg_map_name(n, path, sizeof path), hint);
  }
  return EVO_STATUS_OK;
}
