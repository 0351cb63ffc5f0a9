/* YAML configuration (libyaml) with validated typed access. Every error names the place:
   "config.yaml:12:5: algo.pop_size must be > 0", unknown keys get "did you mean 'pop_size'?", and overrides
   (`--set algo.pop_size=512`) go through the same validation. Readers mark the keys they consume so that, once a
   section has been read, evo_cfg_check_unused reports whatever was not understood. */
#ifndef EVOC_CONFIG_H
#define EVOC_CONFIG_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "evoc/status.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct evo_config evo_config; /* a parsed document; owns every node */
typedef struct evo_cfg evo_cfg;       /* a node (map, list or scalar) inside a document */

/* Parse errors give EVO_STATUS_FORMAT with "path:line:col: message" in evo_last_error() (duplicate keys included);
   a missing file gives EVO_STATUS_IO naming the path. An empty document is an empty map. Anchors, aliases and merge
   keys (<<) are expanded. */
evo_status evo_config_load(const char *path, evo_config **out);
evo_status evo_config_parse(const char *text, const char *name, evo_config **out);
void evo_config_free(evo_config *c);
evo_cfg *evo_config_root(evo_config *c);
/* Applies "section.key=value" (dotted path; value parsed as YAML scalar or flow list); creates missing keys.
   List entries are addressed as "policy.layers[1].features" ([N] with N = length appends). Nodes it creates say
   "--set policy.layers[1].features" where the file would give line:col. */
evo_status evo_config_set(evo_config *c, const char *assignment);
/* Writes the document (with defaults that readers filled in) as block-style YAML that evo_config_parse reads back
   to the same tree (comments and anchors are not kept; aliases were expanded). */
evo_status evo_config_write(const evo_config *c, FILE *f);

typedef enum { EVO_CFG_NULL = 0, EVO_CFG_SCALAR, EVO_CFG_MAP, EVO_CFG_LIST } evo_cfg_kind;
evo_cfg_kind evo_cfg_kind_of(const evo_cfg *n);
/* "path:line:col" of a node (for messages); "--set a.b" for a value from evo_config_set; the file name alone for a
   default a reader filled in. */
const char *evo_cfg_where(const evo_cfg *n, char *buf, size_t cap);
/* Dotted path of a node from the root, e.g. "algo.pop_size", "policy.layers[1]"; "" for the root. */
const char *evo_cfg_path(const evo_cfg *n, char *buf, size_t cap);

/* Map access. NULL when absent (or n is not a map). Marks the key used. */
evo_cfg *evo_cfg_get(evo_cfg *map, const char *key);
int evo_cfg_map_size(const evo_cfg *map);
const char *evo_cfg_map_key(const evo_cfg *map, int i);
/* Also marks entry i used: a caller that iterates a map consumes its keys. */
evo_cfg *evo_cfg_map_value(evo_cfg *map, int i);
/* List access. */
int evo_cfg_list_size(const evo_cfg *list);
evo_cfg *evo_cfg_list_at(evo_cfg *list, int i);
const char *evo_cfg_scalar(const evo_cfg *n); /* scalar text or NULL */

/* Typed readers of map[key]: absent or null -> default (recorded into the document, so the resolved config shows
   it); present but wrong type or out of [lo, hi] -> INVALID_ARGUMENT with "where: path must be ...". A NULL map
   gives the default without recording it (use evo_cfg_section to get a map that records); an empty `algo:` reads
   as an empty map. Numbers are YAML scalars (12, 0x1F, 1_000, 1.5, 1e-3, .inf); an integer reader also takes a
   float with an integral value (1e6). For evo_cfg_double, lo = DBL_MIN means "> 0" in messages; hi = INFINITY
   admits .inf; NaN is never in range. Strings returned point into the document. */
evo_status evo_cfg_double(evo_cfg *map, const char *key, double def, double lo, double hi, double *out);
evo_status evo_cfg_int(evo_cfg *map, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out);
evo_status evo_cfg_bool(evo_cfg *map, const char *key, bool def, bool *out);
/* choices: NULL-terminated list of allowed values, or NULL for any string. def NULL: an absent key gives *out =
   NULL and records nothing (an optional string). A wrong choice gets "did you mean" from the choices. */
evo_status evo_cfg_string(evo_cfg *map, const char *key, const char *def, const char *const *choices,
                          const char **out);
/* Scalar or list of numbers: a scalar fills all n entries, a list must have exactly n. */
evo_status evo_cfg_doubles(evo_cfg *map, const char *key, double def, int64_t n, double *out);
/* A required key: NOT_FOUND "where: missing required key section.key" (naming a leftover key that looks like a typo
   of it). Does not mark the key used; the reader that follows does. */
evo_status evo_cfg_require(evo_cfg *map, const char *key);
/* map[key] as a section map: absent or null -> an empty map inserted into the document (so the defaults its readers
   fill in are recorded); present but not a map -> INVALID_ARGUMENT. Marks the key used. NULL map -> *out = NULL. */
evo_status evo_cfg_section(evo_cfg *map, const char *key, evo_cfg **out);

/* Reports the first key of map that no reader touched: "where: unknown key 'pop_sze' in algo (did you mean
   'pop_size'?)" (suggestion from the keys read so far, by edit distance). Recurses, in document order, into the
   values of keys that were used (nested maps, lists of maps), so call it after the whole subtree has been read. */
evo_status evo_cfg_check_unused(evo_cfg *map);

#ifdef __cplusplus
}
#endif
#endif
