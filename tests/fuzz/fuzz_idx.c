/* IDX reader: the input is the file (plain IDX starts with 0, gzip with 0x1f); an input starting with 'Z' has the
   rest gzip'd first, so the fuzzer also explores IDX headers and short data behind the gzip path. */
#include "fuzz_util.h"
#include <zlib.h>
#include "idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path;
  if (size > 0 && data[0] == 'Z') {
    path = fuzz_tmp_write(NULL, 0); /* creates the file name */
    gzFile g = gzopen(path, "wb1");
    if (!g || (size > 1 && gzwrite(g, data + 1, (unsigned)(size - 1)) != (int)(size - 1)) || gzclose(g) != Z_OK)
      abort();
  } else {
    path = fuzz_tmp_write(data, size);
  }
  evo_idx x;
  evo_clear_error();
  evo_status st = evo_idx_read(path, &x);
  fuzz_check_error(st);
  if (!st) {
    int64_t numel = 1;
    for (int d = 0; d < x.ndim; d++) numel *= x.dims[d];
    if (x.ndim < 1 || x.ndim > EVO_IDX_MAX_DIMS || numel != x.numel || !x.data) abort();
    volatile uint8_t sink = x.data[0] ^ x.data[x.numel - 1]; /* every promised byte is there */
    (void)sink;
  }
  evo_idx_free(&x);
  return 0;
}
