/* IDX files (LeCun's MNIST format), plain or gzip'd (told apart by content, not by name).
   Layout: magic = [0, 0, type, ndim] (big-endian 0x00000801 for a 1-D u8 file, 0x00000803 for 3-D), ndim
   big-endian u32 dims, then prod(dims) elements in C order. Only unsigned-byte data (type 0x08) is read. */
#ifndef EVOC_IDX_H
#define EVOC_IDX_H
#include <stdint.h>
#include "evoc/status.h"

#define EVO_IDX_MAX_DIMS 4

typedef struct {
  int ndim;
  int64_t dims[EVO_IDX_MAX_DIMS];
  int64_t numel;
  uint8_t *data; /* numel bytes, owned */
} evo_idx;

/* Reads the whole file. NOT_FOUND: no such file; IO: unreadable; FORMAT (message names the path and the defect):
   bad magic, unsupported type, a zero dim, a short file (fewer data bytes than the dims promise), trailing bytes,
   corrupt gzip data. */
evo_status evo_idx_read(const char *path, evo_idx *out);
void evo_idx_free(evo_idx *x);

#endif
