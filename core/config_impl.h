/* Private layout of the config tree, shared by config.c (tree, --set, write), config_parse.c (libyaml -> tree)
   and config_read.c (typed readers, unused-key check). */
#ifndef EVOC_CONFIG_IMPL_H
#define EVOC_CONFIG_IMPL_H
#include <stdbool.h>
#include <stddef.h>
#include "evoc/config.h"

/* Deeper documents are rejected, so the recursive walks (free, copy, write) have a bounded stack. */
#define EVO_CFG_MAX_DEPTH 256
/* Alias expansion copies nodes; the cap stops "billion laughs" documents. */
#define EVO_CFG_MAX_NODES 1000000

/* Where a node or key came from: the file (line > 0), a --set (origin, owned by the document) or a reader's
   default (line == 0, origin NULL). */
typedef struct {
  int line, col;
  const char *origin;
} evo_cfg_loc;

typedef struct {
  char *key;
  evo_cfg *val;
  evo_cfg_loc loc; /* of the key */
  bool used;       /* asked for by a reader (or iterated), so not a typo */
} evo_cfg_entry;

struct evo_cfg {
  evo_cfg_kind kind;
  bool quoted; /* scalar quoted (or !!str) in the source: written back quoted so it stays a string */
  evo_cfg_loc loc;
  evo_config *doc;
  evo_cfg *parent;
  char *text;   /* scalar */
  int n, cap;   /* entries (map) or items (list) */
  evo_cfg_entry *entries;
  evo_cfg **items;
  char **asked; /* map: every key a reader asked for, present or not, for "did you mean" */
  int n_asked, cap_asked;
};

struct evo_config {
  char *name; /* file name used in messages */
  evo_cfg *root;
  char **origins; /* "--set a.b" strings that nodes point to */
  int n_origins, cap_origins;
  long n_nodes;
};

char *evo_cfg_strndup(const char *s, size_t n);
evo_cfg *evo_cfg_node_new(evo_config *doc, evo_cfg_kind kind, evo_cfg_loc loc);
void evo_cfg_node_free(evo_cfg *n);
/* Deep copy with parent links; locations are kept (they name where the text really is). */
evo_cfg *evo_cfg_node_copy(const evo_cfg *n, evo_cfg *parent);
/* Collections nested in n's subtree: 0 for a scalar, 1 + the deepest child for a map or list. An alias copy or a
   --set value is checked with it, so no way of building a document gets past EVO_CFG_MAX_DEPTH. */
int evo_cfg_depth(const evo_cfg *n);
/* Appends an entry (no duplicate check); takes ownership of val on success. */
evo_status evo_cfg_map_append(evo_cfg *map, const char *key, evo_cfg *val, evo_cfg_loc kloc);
evo_status evo_cfg_list_append(evo_cfg *list, evo_cfg *item);
/* Entry index of key in map, or -1; marks nothing. */
int evo_cfg_map_find(const evo_cfg *map, const char *key);
evo_status evo_cfg_oom(void);
/* Plain scalar text that YAML resolves to null. */
bool evo_cfg_is_null_text(const char *s);

/* Parses text into a node. With set_origin (a --set value) every node gets that origin, errors name it, and the value
   must be a scalar or a flow collection; otherwise the node is the document root (a map). */
evo_status evo_cfg_yaml_parse(evo_config *doc, const char *text, size_t len, const char *set_origin, evo_cfg **out);

/* "file:line:col", "--set a.b" or, for a default, the file name. */
const char *evo_cfg_loc_str(const evo_config *doc, evo_cfg_loc loc, char *buf, size_t cap);
/* "algo.pop_size" for key in map, "pop_size" at the top level. */
const char *evo_cfg_key_path(const evo_cfg *map, const char *key, char *buf, size_t cap);
/* Edit distance with transpositions (optimal string alignment). */
int evo_cfg_edit_distance(const char *a, const char *b);
/* Whether a "did you mean" is worth showing: a distance of at most 2 or a third of the candidate, and shorter than
   the candidate (so "xy" does not suggest "lr"). */
bool evo_cfg_close_enough(const char *candidate, int dist);

#endif
