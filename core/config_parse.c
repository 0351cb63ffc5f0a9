/* libyaml event stream -> config tree. The event API (not the document API) gives us every node's and key's mark
   directly, lets us reject duplicate keys with both positions, and lets aliases be expanded by copying. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "config_impl.h"

typedef struct {
  evo_cfg *node;
  char *key;       /* map: key read, value pending */
  evo_cfg_loc kloc;
  bool merge_key;  /* pending key is a plain "<<" */
  char *anchor;    /* registered when the collection ends, so an alias cannot refer to its own ancestor */
} evo_cfg_frame;

typedef struct {
  char *name;
  evo_cfg *node;
} evo_cfg_anchor;

typedef struct {
  evo_config *doc;
  const char *text;
  size_t len;
  const char *set_origin;
  evo_cfg_frame st[EVO_CFG_MAX_DEPTH + 1];
  int depth;
  evo_cfg *root;
  evo_cfg_anchor *anchors;
  int n_anchors, cap_anchors;
  int n_docs;
} evo_cfg_parser;

static evo_cfg_loc evo_cfg_mark_loc(const evo_cfg_parser *p, yaml_mark_t m) {
  evo_cfg_loc l = {0, 0, NULL};
  if (p->set_origin) l.origin = p->set_origin;
  else l.line = (int)m.line + 1, l.col = (int)m.column + 1;
  return l;
}

/* "file:3:5" for the document, "--set a.b (column 5 of the value)" for a --set value. */
static evo_status evo_cfg_parse_error(const evo_cfg_parser *p, evo_status st, yaml_mark_t m, const char *fmt,
                                      const char *a, const char *b) {
  char msg[320];
  snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
  if (p->set_origin) {
    (void)m; /* positions inside a one-line value add little; quote the value instead */
    return evo_error(st, "%s: %s in value '%.*s'", p->set_origin, msg, (int)(p->len > 80 ? 80 : p->len), p->text);
  }
  return evo_error(st, "%s:%d:%d: %s", p->doc->name, (int)m.line + 1, (int)m.column + 1, msg);
}

static evo_status evo_cfg_syntax_error(const evo_cfg_parser *p, const yaml_parser_t *ps) {
  if (ps->error == YAML_MEMORY_ERROR) return evo_cfg_oom();
  const char *problem = ps->problem ? ps->problem : "invalid YAML";
  if (ps->error == YAML_READER_ERROR) { /* bad encoding: libyaml has only a byte offset */
    if (p->set_origin) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: %s", p->set_origin, problem);
    return evo_error(EVO_STATUS_FORMAT, "%s: %s (byte %zu)", p->doc->name, problem, ps->problem_offset);
  }
  evo_status st = p->set_origin ? EVO_STATUS_INVALID_ARGUMENT : EVO_STATUS_FORMAT;
  yaml_mark_t m = ps->problem_mark;
  char extra[160] = "";
  if (m.index < p->len && p->text[m.index] == '\t')
    snprintf(extra, sizeof extra, " (tabs are not allowed for indentation)");
  else if (ps->context && !p->set_origin)
    snprintf(extra, sizeof extra, " (%s at %d:%d)", ps->context, (int)ps->context_mark.line + 1,
             (int)ps->context_mark.column + 1);
  else if (ps->context)
    snprintf(extra, sizeof extra, " (%s)", ps->context);
  return evo_cfg_parse_error(p, st, m, "%s%s", problem, extra);
}

static long evo_cfg_tree_size(const evo_cfg *n) {
  long c = 1;
  for (int i = 0; i < n->n; i++) c += evo_cfg_tree_size(n->kind == EVO_CFG_MAP ? n->entries[i].val : n->items[i]);
  return c;
}

/* Counted before a copy is made, so an exponential alias chain fails before it allocates. */
static evo_status evo_cfg_count_nodes(evo_cfg_parser *p, long count, yaml_mark_t m) {
  p->doc->n_nodes += count;
  if (p->doc->n_nodes > EVO_CFG_MAX_NODES)
    return evo_cfg_parse_error(p, p->set_origin ? EVO_STATUS_INVALID_ARGUMENT : EVO_STATUS_FORMAT, m,
                               "the document is too large (over %s nodes, alias expansion?)", "1000000", NULL);
  return EVO_STATUS_OK;
}

static evo_status evo_cfg_anchor_add(evo_cfg_parser *p, char *name, evo_cfg *node) {
  if (p->n_anchors == p->cap_anchors) {
    int cap = p->cap_anchors ? 2 * p->cap_anchors : 8;
    evo_cfg_anchor *a = realloc(p->anchors, (size_t)cap * sizeof *a);
    if (!a) return evo_cfg_oom();
    p->anchors = a, p->cap_anchors = cap;
  }
  p->anchors[p->n_anchors++] = (evo_cfg_anchor){name, node}; /* later definitions shadow earlier ones */
  return EVO_STATUS_OK;
}

static evo_cfg *evo_cfg_anchor_find(const evo_cfg_parser *p, const char *name) {
  for (int i = p->n_anchors - 1; i >= 0; i--)
    if (!strcmp(p->anchors[i].name, name)) return p->anchors[i].node;
  return NULL;
}

/* Places a finished or just-opened node: as the root, a list item, a map key (scalars only) or a map value.
   Takes ownership of node in every case. */
static evo_status evo_cfg_place(evo_cfg_parser *p, evo_cfg *node, yaml_mark_t m) {
  evo_status st;
  if (p->depth == 0) {
    p->root = node;
    return EVO_STATUS_OK;
  }
  evo_cfg_frame *f = &p->st[p->depth - 1];
  if (f->node->kind == EVO_CFG_LIST) {
    if ((st = evo_cfg_list_append(f->node, node))) evo_cfg_node_free(node);
    return st;
  }
  if (!f->key) { /* key position */
    evo_status bad = p->set_origin ? EVO_STATUS_INVALID_ARGUMENT : EVO_STATUS_FORMAT;
    if (node->kind != EVO_CFG_SCALAR || !node->text[0]) {
      evo_cfg_node_free(node);
      return evo_cfg_parse_error(p, bad, m, "a key must be a non-empty string%s%s", NULL, NULL);
    }
    int dup = evo_cfg_map_find(f->node, node->text);
    if (dup >= 0) {
      char first[64] = "";
      const evo_cfg_loc *l = &f->node->entries[dup].loc;
      if (l->line) snprintf(first, sizeof first, " (first at line %d)", l->line);
      st = evo_cfg_parse_error(p, bad, m, "duplicate key '%s'%s", node->text, first);
      evo_cfg_node_free(node);
      return st;
    }
    f->key = node->text;
    f->kloc = node->loc;
    f->merge_key = !node->quoted && !strcmp(node->text, "<<");
    node->text = NULL;
    evo_cfg_node_free(node);
    return EVO_STATUS_OK;
  }
  st = evo_cfg_map_append(f->node, f->key, node, f->kloc);
  if (st) evo_cfg_node_free(node);
  else if (f->merge_key) f->node->entries[f->node->n - 1].used = true; /* resolved at the map's end */
  free(f->key);
  f->key = NULL;
  return st;
}

static bool evo_cfg_is_key_position(const evo_cfg_parser *p) {
  return p->depth > 0 && p->st[p->depth - 1].node->kind == EVO_CFG_MAP && !p->st[p->depth - 1].key;
}

/* YAML merge keys: `<<: *base` (or a list of them) adds the base's entries that the map does not set itself,
   in place of the "<<" entry; earlier bases win over later ones, explicit keys over all. */
static evo_status evo_cfg_resolve_merges(evo_cfg_parser *p, evo_cfg *map, yaml_mark_t m) {
  int mi = evo_cfg_map_find(map, "<<");
  if (mi < 0 || !map->entries[mi].used) return EVO_STATUS_OK; /* a quoted "<<" is an ordinary key */
  evo_cfg *src = map->entries[mi].val;
  int n_src = src->kind == EVO_CFG_LIST ? src->n : 1;
  evo_cfg **srcs = src->kind == EVO_CFG_LIST ? src->items : &map->entries[mi].val;
  evo_status bad = p->set_origin ? EVO_STATUS_INVALID_ARGUMENT : EVO_STATUS_FORMAT;
  for (int s = 0; s < n_src; s++)
    if (srcs[s]->kind != EVO_CFG_MAP) {
      if (srcs[s]->loc.line) /* point at the offending value, not at the end of the map */
        m.line = (size_t)srcs[s]->loc.line - 1, m.column = (size_t)srcs[s]->loc.col - 1;
      return evo_cfg_parse_error(p, bad, m, "a merge key '<<' needs a map or a list of maps%s%s", NULL, NULL);
    }
  evo_cfg *out = evo_cfg_node_new(p->doc, EVO_CFG_MAP, map->loc);
  if (!out) return evo_cfg_oom();
  evo_status st = EVO_STATUS_OK;
  for (int i = 0; i < map->n && !st; i++) {
    if (i != mi) {
      st = evo_cfg_map_append(out, map->entries[i].key, map->entries[i].val, map->entries[i].loc);
      if (!st) map->entries[i].val = NULL;
      continue;
    }
    for (int s = 0; s < n_src && !st; s++)
      for (int j = 0; j < srcs[s]->n && !st; j++) {
        const evo_cfg_entry *e = &srcs[s]->entries[j];
        if (evo_cfg_map_find(map, e->key) >= 0 || evo_cfg_map_find(out, e->key) >= 0) continue;
        if ((st = evo_cfg_count_nodes(p, evo_cfg_tree_size(e->val), m))) break;
        evo_cfg *v = evo_cfg_node_copy(e->val, NULL);
        if (!v) st = evo_cfg_oom();
        else if ((st = evo_cfg_map_append(out, e->key, v, e->loc))) evo_cfg_node_free(v);
      }
  }
  if (!st) { /* swap the merged entries into the original node, which its parent already points to */
    evo_cfg tmp = *map;
    map->entries = out->entries, map->n = out->n, map->cap = out->cap;
    out->entries = tmp.entries, out->n = tmp.n, out->cap = tmp.cap;
    for (int i = 0; i < map->n; i++) map->entries[i].val->parent = map;
  }
  evo_cfg_node_free(out);
  return st;
}

static evo_status evo_cfg_on_scalar(evo_cfg_parser *p, const yaml_event_t *ev) {
  const char *tag = (const char *)ev->data.scalar.tag;
  bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  bool str_tag = tag && (!strcmp(tag, "tag:yaml.org,2002:str") || !strcmp(tag, "!"));
  bool null_tag = tag && !strcmp(tag, "tag:yaml.org,2002:null");
  const char *text = (const char *)ev->data.scalar.value;
  evo_status st = evo_cfg_count_nodes(p, 1, ev->start_mark);
  if (st) return st;
  if (ev->data.scalar.anchor && evo_cfg_is_key_position(p))
    return evo_cfg_parse_error(p, p->set_origin ? EVO_STATUS_INVALID_ARGUMENT : EVO_STATUS_FORMAT, ev->start_mark,
                               "anchors on keys are not supported%s%s", NULL, NULL);
  bool is_null = null_tag || (plain && !str_tag && evo_cfg_is_null_text(text));
  evo_cfg *n = evo_cfg_node_new(p->doc, is_null ? EVO_CFG_NULL : EVO_CFG_SCALAR, evo_cfg_mark_loc(p, ev->start_mark));
  if (!n) return evo_cfg_oom();
  n->quoted = !plain || str_tag;
  n->text = evo_cfg_strndup(text, ev->data.scalar.length);
  if (!n->text) {
    evo_cfg_node_free(n);
    return evo_cfg_oom();
  }
  if (memchr(text, '\0', ev->data.scalar.length)) { /* "\0" escapes would silently truncate every later use */
    evo_cfg_node_free(n);
    return evo_cfg_parse_error(p, p->set_origin ? EVO_STATUS_INVALID_ARGUMENT : EVO_STATUS_FORMAT, ev->start_mark,
                               "NUL characters are not allowed in values%s%s", NULL, NULL);
  }
  st = evo_cfg_place(p, n, ev->start_mark);
  if (!st && ev->data.scalar.anchor) {
    char *a = evo_cfg_strndup((const char *)ev->data.scalar.anchor, strlen((const char *)ev->data.scalar.anchor));
    if (!a) return evo_cfg_oom();
    if ((st = evo_cfg_anchor_add(p, a, n))) free(a);
  }
  return st;
}

static evo_status evo_cfg_on_start(evo_cfg_parser *p, const yaml_event_t *ev, evo_cfg_kind kind) {
  evo_status bad = p->set_origin ? EVO_STATUS_INVALID_ARGUMENT : EVO_STATUS_FORMAT;
  if (evo_cfg_is_key_position(p))
    return evo_cfg_parse_error(p, bad, ev->start_mark, "a key must be a non-empty string%s%s", NULL, NULL);
  if (p->depth == EVO_CFG_MAX_DEPTH)
    return evo_cfg_parse_error(p, bad, ev->start_mark, "nesting deeper than %s levels%s", "256", NULL);
  if (p->set_origin && p->depth == 0) {
    bool flow = kind == EVO_CFG_MAP ? ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE
                                    : ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
    if (!flow)
      return evo_error(bad, "%s: the value must be a scalar, [a, b] or {k: v} (quote it if it contains ': ' or "
                       "starts with '- ')", p->set_origin);
  }
  evo_status st = evo_cfg_count_nodes(p, 1, ev->start_mark);
  if (st) return st;
  evo_cfg *n = evo_cfg_node_new(p->doc, kind, evo_cfg_mark_loc(p, ev->start_mark));
  if (!n) return evo_cfg_oom();
  st = evo_cfg_place(p, n, ev->start_mark);
  if (st) return st;
  const yaml_char_t *anchor = kind == EVO_CFG_MAP ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
  char *a = NULL;
  if (anchor && !(a = evo_cfg_strndup((const char *)anchor, strlen((const char *)anchor)))) return evo_cfg_oom();
  p->st[p->depth++] = (evo_cfg_frame){.node = n, .anchor = a};
  return EVO_STATUS_OK;
}

static evo_status evo_cfg_on_end(evo_cfg_parser *p, const yaml_event_t *ev) {
  evo_cfg_frame *f = &p->st[p->depth - 1];
  evo_status st = EVO_STATUS_OK;
  if (f->node->kind == EVO_CFG_MAP) st = evo_cfg_resolve_merges(p, f->node, ev->start_mark);
  if (!st && f->anchor) {
    if (!(st = evo_cfg_anchor_add(p, f->anchor, f->node))) f->anchor = NULL;
  }
  if (!st) p->depth--;
  return st;
}

static evo_status evo_cfg_on_alias(evo_cfg_parser *p, const yaml_event_t *ev) {
  const char *name = (const char *)ev->data.alias.anchor;
  evo_cfg *target = evo_cfg_anchor_find(p, name);
  if (!target)
    return evo_cfg_parse_error(p, p->set_origin ? EVO_STATUS_INVALID_ARGUMENT : EVO_STATUS_FORMAT, ev->start_mark,
                               "unknown anchor '%s'%s", name, NULL);
  if (evo_cfg_is_key_position(p) && target->kind != EVO_CFG_SCALAR)
    return evo_cfg_parse_error(p, p->set_origin ? EVO_STATUS_INVALID_ARGUMENT : EVO_STATUS_FORMAT, ev->start_mark,
                               "a key must be a non-empty string%s%s", NULL, NULL);
  /* The copy lands p->depth levels deep: without this check, aliases of aliases nest without bound and overflow
     the stack of the recursive walks (and the written document would not read back). */
  if (p->depth + evo_cfg_depth(target) > EVO_CFG_MAX_DEPTH)
    return evo_cfg_parse_error(p, p->set_origin ? EVO_STATUS_INVALID_ARGUMENT : EVO_STATUS_FORMAT, ev->start_mark,
                               "alias '*%s' would nest deeper than %s levels", name, "256");
  evo_status st = evo_cfg_count_nodes(p, evo_cfg_tree_size(target), ev->start_mark);
  if (st) return st;
  evo_cfg *copy = evo_cfg_node_copy(target, NULL);
  if (!copy) return evo_cfg_oom();
  return evo_cfg_place(p, copy, ev->start_mark);
}

static evo_status evo_cfg_on_event(evo_cfg_parser *p, const yaml_event_t *ev) {
  switch (ev->type) {
  case YAML_DOCUMENT_START_EVENT:
    if (++p->n_docs > 1)
      return evo_cfg_parse_error(p, p->set_origin ? EVO_STATUS_INVALID_ARGUMENT : EVO_STATUS_FORMAT,
                                 ev->start_mark, "only one YAML document is allowed%s%s", NULL, NULL);
    return EVO_STATUS_OK;
  case YAML_SCALAR_EVENT: return evo_cfg_on_scalar(p, ev);
  case YAML_MAPPING_START_EVENT: return evo_cfg_on_start(p, ev, EVO_CFG_MAP);
  case YAML_SEQUENCE_START_EVENT: return evo_cfg_on_start(p, ev, EVO_CFG_LIST);
  case YAML_MAPPING_END_EVENT:
  case YAML_SEQUENCE_END_EVENT: return evo_cfg_on_end(p, ev);
  case YAML_ALIAS_EVENT: return evo_cfg_on_alias(p, ev);
  default: return EVO_STATUS_OK;
  }
}

static const char *evo_cfg_kind_word(evo_cfg_kind k) {
  return k == EVO_CFG_LIST ? "a list" : k == EVO_CFG_SCALAR ? "a scalar" : "a map";
}

evo_status evo_cfg_yaml_parse(evo_config *doc, const char *text, size_t len, const char *set_origin, evo_cfg **out) {
  *out = NULL;
  evo_cfg_parser *p = calloc(1, sizeof *p);
  if (!p) return evo_cfg_oom();
  p->doc = doc, p->text = text, p->len = len, p->set_origin = set_origin;
  yaml_parser_t ps;
  if (!yaml_parser_initialize(&ps)) {
    free(p);
    return evo_cfg_oom();
  }
  yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
  evo_status st = EVO_STATUS_OK;
  for (bool done = false; !done && !st;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&ps, &ev)) {
      st = evo_cfg_syntax_error(p, &ps);
      break;
    }
    done = ev.type == YAML_STREAM_END_EVENT;
    st = evo_cfg_on_event(p, &ev);
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&ps);
  for (int i = 0; i < p->depth; i++) {
    free(p->st[i].key);
    free(p->st[i].anchor);
  }
  for (int i = 0; i < p->n_anchors; i++) free(p->anchors[i].name);
  free(p->anchors);
  evo_cfg *root = p->root;
  free(p);
  if (st) {
    evo_cfg_node_free(root);
    return st;
  }
  if (set_origin) {
    if (!root && !(root = evo_cfg_node_new(doc, EVO_CFG_NULL, (evo_cfg_loc){0, 0, set_origin}))) return evo_cfg_oom();
    *out = root;
    return EVO_STATUS_OK;
  }
  if (root && root->kind == EVO_CFG_NULL) { /* an empty document: every section takes its defaults */
    evo_cfg_node_free(root);
    root = NULL;
  }
  if (!root) {
    if (!(root = evo_cfg_node_new(doc, EVO_CFG_MAP, (evo_cfg_loc){1, 1, NULL}))) return evo_cfg_oom();
  } else if (root->kind != EVO_CFG_MAP) {
    st = evo_error(EVO_STATUS_FORMAT, "%s:%d:%d: the top level must be a map of sections (key: value), got %s",
                   doc->name, root->loc.line, root->loc.col, evo_cfg_kind_word(root->kind));
    evo_cfg_node_free(root);
    return st;
  }
  *out = root;
  return EVO_STATUS_OK;
}
