/* safetensors reader and the parameter-tree load on top of it: the input is the file. Every tensor the reader
   accepts is read back in full, and a small tree (the names of tests/data/numpy_params.safetensors and of the
   seed this harness's README makes) is loaded strictly and leniently. */
#include "fuzz_util.h"
#include "evoc/ptree.h"
#include "safetensors.h"

static evo_ptree *fuzz_tree(void) {
  static evo_ptree *t;
  if (t) return t;
  t = evo_ptree_new();
  static const evo_param_spec specs[] = {
      {"dense1.kernel", 2, {3, 4}, EVO_INIT_ZEROS, 0.0f}, {"dense1.bias", 1, {4}, EVO_INIT_ZEROS, 0.0f},
      {"step", 1, {2}, EVO_INIT_ZEROS, 0.0f},             {"w", 2, {2, 3}, EVO_INIT_ZEROS, 0.0f},
      {"b", 1, {3}, EVO_INIT_ZEROS, 0.0f},                {"s", 0, {0}, EVO_INIT_ZEROS, 0.0f},
  };
  for (size_t i = 0; i < sizeof specs / sizeof *specs; i++)
    if (evo_ptree_add(t, &specs[i])) abort();
  return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_tmp_write(data, size);
  evo_st_reader *r = NULL;
  evo_clear_error();
  evo_status st = evo_st_open(path, &r);
  fuzz_check_error(st);
  if (!st) {
    evo_st_metadata(r, "format");
    for (int i = 0; i < evo_st_count(r); i++) {
      const evo_st_info *in = evo_st_info_at(r, i);
      if (!in || in->end < in->begin || in->end - in->begin > size || evo_st_find(r, in->name) < 0) abort();
      size_t bytes = (size_t)(in->end - in->begin);
      if ((uint64_t)in->numel * in->itemsize != bytes) abort();
      void *buf = malloc(bytes ? bytes : 1);
      if (!buf) abort();
      FUZZ_CALL(evo_st_read(r, i, buf, bytes));
      free(buf);
    }
    evo_st_close(r);
  }
  evo_ptree *t = fuzz_tree();
  float flat[32]; /* evo_ptree_size(t) = 28 */
  int n_loaded;
  FUZZ_CALL(evo_ptree_load(t, flat, path));
  FUZZ_CALL(evo_ptree_load_matching(t, flat, path, &n_loaded));
  return 0;
}
