/* Internal: a small reader/writer of the safetensors format (https://github.com/huggingface/safetensors):
   8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
   "__metadata__": {str: str}}, then the raw little-endian tensor data (offsets are relative to its start).
   The reader validates the whole header against the file size before any data is read, so a bad file fails with
   EVO_STATUS_FORMAT naming the path and the problem instead of reading out of bounds. */
#ifndef EVOC_SAFETENSORS_H
#define EVOC_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "evoc/status.h"
#include "evoc/tensor.h"

/* ---- writing ---- */

typedef struct {
  const char *name;
  evo_dtype dtype;
  int ndim;
  const int64_t *shape;
  const void *data; /* numel * evo_dtype_size(dtype) bytes, host order (little-endian hosts only) */
} evo_st_tensor;

/* Writes tensors (in the given order) and metadata (n_meta key/value pairs: meta[2k] -> meta[2k+1]) to path,
   atomically: "<path>.tmp.<pid>", fflush + fsync, rename. Names must be unique and not "__metadata__". */
evo_status evo_st_write(const char *path, const evo_st_tensor *tensors, int n, const char *const *meta, int n_meta);

/* ---- reading ---- */

typedef struct {
  const char *name;
  const char *dtype_name; /* as in the file: "F32", "I32", "U8", "F64", ... */
  evo_dtype dtype;        /* EVO_DTYPE_COUNT when the file's dtype has no evo_dtype (F64, F16, ...) */
  size_t itemsize;
  int ndim;
  int64_t shape[EVO_MAX_DIMS];
  int64_t numel;
  uint64_t begin, end; /* byte range in the data section */
} evo_st_info;

typedef struct evo_st_reader evo_st_reader;

/* Opens and validates path. IO if it cannot be opened/read, FORMAT if malformed, OUT_OF_MEMORY. */
evo_status evo_st_open(const char *path, evo_st_reader **out);
void evo_st_close(evo_st_reader *r);
const char *evo_st_path(const evo_st_reader *r);
int evo_st_count(const evo_st_reader *r);
const evo_st_info *evo_st_info_at(const evo_st_reader *r, int i); /* in header order; NULL if out of range */
int evo_st_find(const evo_st_reader *r, const char *name);        /* index or -1 */
const char *evo_st_metadata(const evo_st_reader *r, const char *key); /* NULL if absent */
/* Copies tensor i's bytes into dst (dst_bytes must equal end - begin). */
evo_status evo_st_read(evo_st_reader *r, int i, void *dst, size_t dst_bytes);

#endif
