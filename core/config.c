/* Config documents: the node tree, loading, locations and paths for messages, --set overrides and writing the
   resolved document back as YAML. Parsing is in config_parse.c, typed readers in config_read.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "config_impl.h"

evo_status evo_cfg_oom(void) { return evo_error(EVO_STATUS_OUT_OF_MEMORY, "config: out of memory"); }

char *evo_cfg_strndup(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

bool evo_cfg_is_null_text(const char *s) {
  return !s[0] || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* ---------------------------------------------------------------- nodes */

evo_cfg *evo_cfg_node_new(evo_config *doc, evo_cfg_kind kind, evo_cfg_loc loc) {
  evo_cfg *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  n->kind = kind;
  n->loc = loc;
  n->doc = doc;
  return n;
}

void evo_cfg_node_free(evo_cfg *n) {
  if (!n) return;
  for (int i = 0; i < n->n; i++) {
    if (n->kind == EVO_CFG_MAP) {
      free(n->entries[i].key);
      evo_cfg_node_free(n->entries[i].val);
    } else {
      evo_cfg_node_free(n->items[i]);
    }
  }
  for (int i = 0; i < n->n_asked; i++) free(n->asked[i]);
  free(n->asked);
  free(n->entries);
  free(n->items);
  free(n->text);
  free(n);
}

evo_cfg *evo_cfg_node_copy(const evo_cfg *n, evo_cfg *parent) {
  evo_cfg *c = evo_cfg_node_new(n->doc, n->kind, n->loc);
  if (!c) return NULL;
  c->parent = parent;
  c->quoted = n->quoted;
  if (n->text && !(c->text = evo_cfg_strndup(n->text, strlen(n->text)))) goto fail;
  for (int i = 0; i < n->n; i++) {
    evo_cfg *v = evo_cfg_node_copy(n->kind == EVO_CFG_MAP ? n->entries[i].val : n->items[i], NULL);
    if (!v) goto fail;
    evo_status st = n->kind == EVO_CFG_MAP ? evo_cfg_map_append(c, n->entries[i].key, v, n->entries[i].loc)
                                           : evo_cfg_list_append(c, v);
    if (st) {
      evo_cfg_node_free(v);
      goto fail;
    }
  }
  return c;
fail:
  evo_cfg_node_free(c);
  return NULL;
}

int evo_cfg_depth(const evo_cfg *n) {
  if (n->kind != EVO_CFG_MAP && n->kind != EVO_CFG_LIST) return 0;
  int d = 0;
  for (int i = 0; i < n->n; i++) {
    int di = evo_cfg_depth(n->kind == EVO_CFG_MAP ? n->entries[i].val : n->items[i]);
    if (di > d) d = di;
  }
  return d + 1;
}

static bool evo_cfg_grow(void **p, int *cap, int need, size_t elem) {
  if (need <= *cap) return true;
  int cap2 = *cap ? 2 * *cap : 4;
  void *q = realloc(*p, (size_t)cap2 * elem);
  if (!q) return false;
  *p = q, *cap = cap2;
  return true;
}

evo_status evo_cfg_map_append(evo_cfg *map, const char *key, evo_cfg *val, evo_cfg_loc kloc) {
  int cap = map->cap;
  if (!evo_cfg_grow((void **)&map->entries, &cap, map->n + 1, sizeof *map->entries)) return evo_cfg_oom();
  map->cap = cap;
  char *k = evo_cfg_strndup(key, strlen(key));
  if (!k) return evo_cfg_oom();
  map->entries[map->n++] = (evo_cfg_entry){k, val, kloc, false};
  val->parent = map;
  return EVO_STATUS_OK;
}

evo_status evo_cfg_list_append(evo_cfg *list, evo_cfg *item) {
  int cap = list->cap;
  if (!evo_cfg_grow((void **)&list->items, &cap, list->n + 1, sizeof *list->items)) return evo_cfg_oom();
  list->cap = cap;
  list->items[list->n++] = item;
  item->parent = list;
  return EVO_STATUS_OK;
}

int evo_cfg_map_find(const evo_cfg *map, const char *key) {
  if (!map || map->kind != EVO_CFG_MAP) return -1;
  for (int i = 0; i < map->n; i++)
    if (!strcmp(map->entries[i].key, key)) return i;
  return -1;
}

/* ---------------------------------------------------------------- documents */

static evo_status evo_config_new(const char *name, evo_config **out) {
  evo_config *c = calloc(1, sizeof *c);
  if (!c || !(c->name = evo_cfg_strndup(name, strlen(name)))) {
    free(c);
    return evo_cfg_oom();
  }
  *out = c;
  return EVO_STATUS_OK;
}

static evo_status evo_config_parse_n(const char *text, size_t len, const char *name, evo_config **out) {
  evo_config *c = NULL;
  evo_status st = evo_config_new(name ? name : "<string>", &c);
  if (st) return st;
  if ((st = evo_cfg_yaml_parse(c, text, len, NULL, &c->root))) {
    evo_config_free(c);
    return st;
  }
  *out = c;
  return EVO_STATUS_OK;
}

evo_status evo_config_parse(const char *text, const char *name, evo_config **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_config_parse: NULL out");
  *out = NULL;
  if (!text) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_config_parse: NULL text");
  return evo_config_parse_n(text, strlen(text), name, out);
}

evo_status evo_config_load(const char *path, evo_config **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_config_load: NULL out");
  *out = NULL;
  if (!path) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_config_load: NULL path");
  FILE *f = fopen(path, "rb");
  if (!f) return evo_error(EVO_STATUS_IO, "%s: cannot open config: %s", path, strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  evo_status st = EVO_STATUS_OK;
  for (;;) {
    if (len + 4096 > cap) {
      size_t cap2 = cap ? 2 * cap : 16384;
      char *b = realloc(buf, cap2);
      if (!b) {
        st = evo_cfg_oom();
        break;
      }
      buf = b, cap = cap2;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) {
      if (ferror(f)) st = evo_error(EVO_STATUS_IO, "%s: cannot read config: %s", path, strerror(errno));
      break;
    }
  }
  fclose(f);
  if (!st) st = evo_config_parse_n(buf ? buf : "", len, path, out);
  free(buf);
  return st;
}

void evo_config_free(evo_config *c) {
  if (!c) return;
  evo_cfg_node_free(c->root);
  for (int i = 0; i < c->n_origins; i++) free(c->origins[i]);
  free(c->origins);
  free(c->name);
  free(c);
}

evo_cfg *evo_config_root(evo_config *c) { return c ? c->root : NULL; }

/* ---------------------------------------------------------------- access */

evo_cfg_kind evo_cfg_kind_of(const evo_cfg *n) { return n ? n->kind : EVO_CFG_NULL; }

int evo_cfg_map_size(const evo_cfg *map) { return map && map->kind == EVO_CFG_MAP ? map->n : 0; }

const char *evo_cfg_map_key(const evo_cfg *map, int i) {
  return map && map->kind == EVO_CFG_MAP && i >= 0 && i < map->n ? map->entries[i].key : NULL;
}

evo_cfg *evo_cfg_map_value(evo_cfg *map, int i) {
  if (!map || map->kind != EVO_CFG_MAP || i < 0 || i >= map->n) return NULL;
  map->entries[i].used = true; /* iterating a map consumes its keys */
  return map->entries[i].val;
}

int evo_cfg_list_size(const evo_cfg *list) { return list && list->kind == EVO_CFG_LIST ? list->n : 0; }

evo_cfg *evo_cfg_list_at(evo_cfg *list, int i) {
  return list && list->kind == EVO_CFG_LIST && i >= 0 && i < list->n ? list->items[i] : NULL;
}

const char *evo_cfg_scalar(const evo_cfg *n) { return n && n->kind == EVO_CFG_SCALAR ? n->text : NULL; }

/* ---------------------------------------------------------------- locations and paths */

const char *evo_cfg_loc_str(const evo_config *doc, evo_cfg_loc loc, char *buf, size_t cap) {
  if (loc.origin) snprintf(buf, cap, "%s", loc.origin);
  else if (loc.line > 0) snprintf(buf, cap, "%s:%d:%d", doc->name, loc.line, loc.col);
  else snprintf(buf, cap, "%s", doc->name); /* a default a reader filled in: no line of its own */
  return buf;
}

const char *evo_cfg_where(const evo_cfg *n, char *buf, size_t cap) {
  if (!buf || !cap) return "";
  if (!n) snprintf(buf, cap, "(config)");
  else evo_cfg_loc_str(n->doc, n->loc, buf, cap);
  return buf;
}

const char *evo_cfg_path(const evo_cfg *n, char *buf, size_t cap) {
  if (!buf || !cap) return "";
  buf[0] = '\0';
  const evo_cfg *chain[EVO_CFG_MAX_DEPTH + 80];
  int depth = 0;
  for (const evo_cfg *p = n; p && p->parent && depth < (int)(sizeof chain / sizeof *chain); p = p->parent)
    chain[depth++] = p;
  size_t len = 0;
  for (int d = depth - 1; d >= 0; d--) {
    const evo_cfg *c = chain[d], *parent = c->parent;
    int w = 0;
    if (parent->kind == EVO_CFG_MAP) {
      for (int i = 0; i < parent->n; i++)
        if (parent->entries[i].val == c)
          w = snprintf(buf + len, cap - len, "%s%s", len ? "." : "", parent->entries[i].key);
    } else {
      for (int i = 0; i < parent->n; i++)
        if (parent->items[i] == c) w = snprintf(buf + len, cap - len, "[%d]", i);
    }
    if (w < 0 || (size_t)w >= cap - len) break; /* truncated: keep what fits */
    len += (size_t)w;
  }
  return buf;
}

const char *evo_cfg_key_path(const evo_cfg *map, const char *key, char *buf, size_t cap) {
  char p[256];
  evo_cfg_path(map, p, sizeof p);
  snprintf(buf, cap, "%s%s%s", p, p[0] ? "." : "", key);
  return buf;
}

/* ---------------------------------------------------------------- --set */

static evo_status evo_cfg_set_error(const char *assignment, const char *why) {
  return evo_error(EVO_STATUS_INVALID_ARGUMENT, "--set '%s': %s", assignment, why);
}

/* One step of a --set path: a key, or a list index [N]. */
typedef struct {
  char key[128];
  int index;
  bool is_index;
} evo_cfg_step;

static evo_status evo_cfg_set_split(const char *a, const char *path, size_t plen, evo_cfg_step *steps, int *n) {
  *n = 0;
  size_t i = 0;
  while (i < plen) {
    if (*n == 64) return evo_cfg_set_error(a, "the key path is too deep");
    evo_cfg_step *s = &steps[(*n)++];
    if (path[i] == '[') {
      size_t j = i + 1;
      long v = 0;
      while (j < plen && path[j] >= '0' && path[j] <= '9' && v < 100000000) v = v * 10 + (path[j++] - '0');
      if (j == i + 1 || j >= plen || path[j] != ']') return evo_cfg_set_error(a, "a list index is written [N]");
      *s = (evo_cfg_step){.index = (int)v, .is_index = true};
      i = j + 1;
      if (i < plen && path[i] == '.') {
        if (++i == plen) return evo_cfg_set_error(a, "empty key in the path");
      } else if (i < plen && path[i] != '[') {
        return evo_cfg_set_error(a, "expected '.' or '[' after ']'");
      }
      continue;
    }
    size_t j = i;
    while (j < plen && path[j] != '.' && path[j] != '[' && path[j] != ']') j++;
    if (j == i) return evo_cfg_set_error(a, "empty key in the path");
    if (j - i >= sizeof s->key) return evo_cfg_set_error(a, "a key in the path is too long");
    if (j < plen && path[j] == ']') return evo_cfg_set_error(a, "unbalanced ']' in the path");
    memcpy(s->key, path + i, j - i);
    s->key[j - i] = '\0';
    s->is_index = false;
    i = j;
    if (i < plen && path[i] == '.' && ++i == plen) return evo_cfg_set_error(a, "empty key in the path");
  }
  if (*n == 0) return evo_cfg_set_error(a, "expected key.path=value");
  return EVO_STATUS_OK;
}

static evo_status evo_cfg_set_origin(evo_config *c, const char *path, size_t plen, const char **out) {
  int cap = c->cap_origins;
  if (!evo_cfg_grow((void **)&c->origins, &cap, c->n_origins + 1, sizeof *c->origins)) return evo_cfg_oom();
  c->cap_origins = cap;
  char *o = malloc(plen + 7);
  if (!o) return evo_cfg_oom();
  snprintf(o, plen + 7, "--set %.*s", (int)plen, path);
  c->origins[c->n_origins++] = o;
  *out = o;
  return EVO_STATUS_OK;
}

/* Puts val at step s of container cur (replacing what was there); takes ownership of val on success. */
static evo_status evo_cfg_set_at(const char *a, evo_cfg *cur, const evo_cfg_step *s, evo_cfg *val) {
  char path[256], where[256], msg[640];
  if (s->is_index) {
    if (cur->kind != EVO_CFG_LIST || s->index > cur->n) {
      if (cur->kind != EVO_CFG_LIST)
        snprintf(msg, sizeof msg, "%s is not a list (%s)", evo_cfg_path(cur, path, sizeof path),
                 evo_cfg_where(cur, where, sizeof where));
      else
        snprintf(msg, sizeof msg, "index %d is out of range: %s has %d entries", s->index,
                 evo_cfg_path(cur, path, sizeof path), cur->n);
      return evo_cfg_set_error(a, msg);
    }
    if (s->index == cur->n) return evo_cfg_list_append(cur, val);
    evo_cfg_node_free(cur->items[s->index]);
    cur->items[s->index] = val;
    val->parent = cur;
    return EVO_STATUS_OK;
  }
  if (cur->kind != EVO_CFG_MAP) {
    snprintf(msg, sizeof msg, "%s is not a map (%s)", cur->parent ? evo_cfg_path(cur, path, sizeof path) : "the top level",
             evo_cfg_where(cur, where, sizeof where));
    return evo_cfg_set_error(a, msg);
  }
  int i = evo_cfg_map_find(cur, s->key);
  if (i < 0) return evo_cfg_map_append(cur, s->key, val, val->loc);
  evo_cfg_node_free(cur->entries[i].val);
  cur->entries[i].val = val;
  val->parent = cur;
  return EVO_STATUS_OK;
}

static evo_cfg *evo_cfg_step_get(evo_cfg *cur, const evo_cfg_step *s) {
  if (s->is_index) return cur->kind == EVO_CFG_LIST && s->index < cur->n ? cur->items[s->index] : NULL;
  int i = evo_cfg_map_find(cur, s->key);
  return i < 0 ? NULL : cur->entries[i].val;
}

evo_status evo_config_set(evo_config *c, const char *assignment) {
  if (!c || !assignment) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_config_set: NULL argument");
  const char *a = assignment, *eq = strchr(a, '=');
  if (!eq) return evo_cfg_set_error(a, "expected key.path=value");
  const char *p0 = a, *p1 = eq, *v0 = eq + 1;
  while (*p0 == ' ') p0++;
  while (p1 > p0 && p1[-1] == ' ') p1--;
  while (*v0 == ' ') v0++;
  size_t vlen = strlen(v0);
  while (vlen && v0[vlen - 1] == ' ') vlen--;
  evo_cfg_step steps[64];
  int n;
  const char *origin = NULL;
  evo_status st = evo_cfg_set_split(a, p0, (size_t)(p1 - p0), steps, &n);
  if (st || (st = evo_cfg_set_origin(c, p0, (size_t)(p1 - p0), &origin))) return st;
  evo_cfg *val;
  if ((st = evo_cfg_yaml_parse(c, v0, vlen, origin, &val))) return st;
  /* The value's container sits n levels deep (the root is level 1); a deeper document would be written to
     config.yaml and then refused when read back (and the recursive walks assume the bound). */
  int vdepth = evo_cfg_depth(val);
  if (n + vdepth > EVO_CFG_MAX_DEPTH) { /* named by origin: quoting a value that deep would fill the message */
    evo_cfg_node_free(val);
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: the value would nest deeper than %d levels (%d of key path, %d "
                     "in the value)", origin, EVO_CFG_MAX_DEPTH, n, vdepth);
  }
  evo_cfg_loc loc = {0, 0, origin};
  evo_cfg *cur = c->root;
  for (int i = 0; i < n - 1 && !st; i++) {
    evo_cfg *next = evo_cfg_step_get(cur, &steps[i]);
    if (next && next->kind == EVO_CFG_NULL) next = NULL; /* `algo:` with nothing under it: fill it */
    if (!next) {
      evo_cfg *made = evo_cfg_node_new(c, steps[i + 1].is_index ? EVO_CFG_LIST : EVO_CFG_MAP, loc);
      if (!made) st = evo_cfg_oom();
      else if ((st = evo_cfg_set_at(a, cur, &steps[i], made))) evo_cfg_node_free(made);
      else next = made;
    }
    cur = next;
  }
  if (!st) st = evo_cfg_set_at(a, cur, &steps[n - 1], val);
  if (st) evo_cfg_node_free(val);
  return st;
}

/* ---------------------------------------------------------------- writing */

static int evo_cfg_emit(yaml_emitter_t *em, const evo_cfg *n) {
  yaml_event_t ev;
  if (n->kind == EVO_CFG_NULL || n->kind == EVO_CFG_SCALAR) {
    const char *t = n->kind == EVO_CFG_NULL ? "null" : n->text;
    /* quoted_implicit keeps the emitter from adding a "!" tag; plain_implicit = 0 forces quotes */
    /* multi-line text: escaped "\n" reads better than single-quoted line folding */
    yaml_scalar_style_t style = strchr(t, '\n') ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE;
    return yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)t, (int)strlen(t),
                                        n->kind == EVO_CFG_NULL || !n->quoted, 1, style) &&
           yaml_emitter_emit(em, &ev);
  }
  if (n->kind == EVO_CFG_MAP) {
    if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                             n->n ? YAML_BLOCK_MAPPING_STYLE : YAML_FLOW_MAPPING_STYLE) ||
        !yaml_emitter_emit(em, &ev))
      return 0;
    for (int i = 0; i < n->n; i++) {
      const char *k = n->entries[i].key; /* a plain "<<" or "null" key would read back as something else */
      bool plain = strcmp(k, "<<") && !evo_cfg_is_null_text(k);
      if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)k, (int)strlen(k), plain, 1,
                                        YAML_ANY_SCALAR_STYLE) ||
          !yaml_emitter_emit(em, &ev) || !evo_cfg_emit(em, n->entries[i].val))
        return 0;
    }
    return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev);
  }
  /* short lists of scalars read best inline: hidden: [64, 64] */
  size_t chars = 0;
  bool flow = true;
  for (int i = 0; i < n->n && flow; i++) {
    flow = n->items[i]->kind == EVO_CFG_SCALAR || n->items[i]->kind == EVO_CFG_NULL;
    if (flow) chars += n->items[i]->text ? strlen(n->items[i]->text) + 2 : 6;
  }
  flow = flow && chars <= 72;
  if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                            flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE) ||
      !yaml_emitter_emit(em, &ev))
    return 0;
  for (int i = 0; i < n->n; i++)
    if (!evo_cfg_emit(em, n->items[i])) return 0;
  return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev);
}

evo_status evo_config_write(const evo_config *c, FILE *f) {
  if (!c || !f) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_config_write: NULL argument");
  yaml_emitter_t em;
  if (!yaml_emitter_initialize(&em)) return evo_cfg_oom();
  yaml_emitter_set_output_file(&em, f);
  yaml_emitter_set_unicode(&em, 1);
  yaml_emitter_set_width(&em, -1); /* no folding: one value per line */
  yaml_emitter_set_indent(&em, 2);
  yaml_event_t ev;
  int ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) && yaml_emitter_emit(&em, &ev) &&
           yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) && yaml_emitter_emit(&em, &ev) &&
           evo_cfg_emit(&em, c->root) && yaml_document_end_event_initialize(&ev, 1) &&
           yaml_emitter_emit(&em, &ev) && yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev) &&
           yaml_emitter_flush(&em);
  evo_status st = EVO_STATUS_OK;
  if (!ok)
    st = em.error == YAML_MEMORY_ERROR ? evo_cfg_oom()
                                       : evo_error(EVO_STATUS_IO, "%s: cannot write config: %s", c->name,
                                                   em.problem ? em.problem : "write failed");
  else if (ferror(f))
    st = evo_error(EVO_STATUS_IO, "%s: cannot write config: %s", c->name, strerror(errno));
  yaml_emitter_delete(&em);
  return st;
}
