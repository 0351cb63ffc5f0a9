/* Config reader: parses the input as a YAML config (leading "#set key=value" lines are also applied as --set
   overrides), reads every key with every typed reader the way the run setup does, runs the unused-key check, then
   writes the resolved document and checks that it reads back to the same tree (the writer's promise). */
#include "fuzz_util.h"
#include <float.h>
#include <math.h>
#include "config_impl.h"

static void fuzz_readers(evo_cfg *map, const char *key) {
  static const char *const choices[] = {"pgpe", "cmaes", "mlp", NULL};
  double d, ds[3];
  int64_t i;
  bool b;
  const char *s;
  evo_cfg *sec;
  FUZZ_CALL(evo_cfg_double(map, key, 0.5, DBL_MIN, INFINITY, &d));
  FUZZ_CALL(evo_cfg_int(map, key, 1, -5, 1000, &i));
  FUZZ_CALL(evo_cfg_bool(map, key, true, &b));
  FUZZ_CALL(evo_cfg_string(map, key, NULL, NULL, &s));
  FUZZ_CALL(evo_cfg_string(map, key, "pgpe", choices, &s));
  FUZZ_CALL(evo_cfg_doubles(map, key, 0.0, 3, ds));
  FUZZ_CALL(evo_cfg_require(map, key));
  FUZZ_CALL(evo_cfg_section(map, key, &sec));
}

static void fuzz_walk(evo_cfg *n, int depth) {
  char buf[300];
  evo_cfg_where(n, buf, sizeof buf);
  evo_cfg_path(n, buf, sizeof buf);
  evo_cfg_scalar(n);
  if (evo_cfg_kind_of(n) == EVO_CFG_LIST) {
    for (int i = 0; i < evo_cfg_list_size(n); i++) fuzz_walk(evo_cfg_list_at(n, i), depth + 1);
    return;
  }
  if (evo_cfg_kind_of(n) != EVO_CFG_MAP) return;
  int size = evo_cfg_map_size(n); /* readers may append defaults: walk the original keys only */
  for (int i = 0; i < size; i++) {
    const char *key = evo_cfg_map_key(n, i);
    if (depth < 3 && (i & 1)) fuzz_walk(evo_cfg_map_value(n, i), depth + 1);
    else fuzz_readers(n, key);
  }
  fuzz_readers(n, "pop_size"); /* absent keys: defaults recorded into the document */
  fuzz_readers(n, "algo");
}

static bool fuzz_same(const evo_cfg *a, const evo_cfg *b) {
  if (a->kind != b->kind || a->n != b->n) return false;
  if (a->kind == EVO_CFG_SCALAR && strcmp(a->text, b->text)) return false;
  for (int i = 0; i < a->n; i++) {
    if (a->kind == EVO_CFG_MAP && (strcmp(a->entries[i].key, b->entries[i].key) ||
                                   !fuzz_same(a->entries[i].val, b->entries[i].val)))
      return false;
    if (a->kind == EVO_CFG_LIST && !fuzz_same(a->items[i], b->items[i])) return false;
  }
  return true;
}

static void fuzz_roundtrip(const evo_config *c) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) abort();
  evo_clear_error();
  evo_status st = evo_config_write(c, f);
  fclose(f);
  fuzz_check_error(st);
  if (!st) {
    evo_config *back = NULL;
    if (evo_config_parse(text, "written", &back)) {
      fprintf(stderr, "fuzz: the written config does not parse: %s\n--- written:\n%s\n", evo_last_error(), text);
      abort();
    }
    if (!fuzz_same(c->root, back->root)) {
      fprintf(stderr, "fuzz: the written config reads back differently\n--- written:\n%s\n", text);
      abort();
    }
    evo_config_free(back);
  }
  free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  evo_config *c = NULL;
  evo_clear_error();
  evo_status st;
  if (memchr(data, '\0', size)) { /* raw NULs only reach the parser through a file */
    st = evo_config_load(fuzz_tmp_write(data, size), &c);
  } else {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    st = evo_config_parse(text, "fuzz.yaml", &c);
    free(text);
  }
  fuzz_check_error(st);
  if (st) return 0;
  /* "#set a.b=v" lines at the top: --set overrides (YAML comments, so the parse above ignored them) */
  for (size_t p = 0; p + 5 < size && !memcmp(data + p, "#set ", 5);) {
    const uint8_t *nl = memchr(data + p, '\n', size - p);
    size_t end = nl ? (size_t)(nl - data) : size;
    char a[512];
    size_t n = end - p - 5 < sizeof a - 1 ? end - p - 5 : sizeof a - 1;
    memcpy(a, data + p + 5, n);
    a[n] = '\0';
    FUZZ_CALL(evo_config_set(c, a));
    p = end + 1;
  }
  fuzz_roundtrip(c); /* as parsed (and set) */
  fuzz_walk(evo_config_root(c), 0);
  evo_clear_error();
  FUZZ_CALL(evo_cfg_check_unused(evo_config_root(c)));
  fuzz_roundtrip(c); /* with the defaults the readers recorded */
  evo_config_free(c);
  return 0;
}
