/* Tensors: dtype, shape (up to EVO_MAX_DIMS), contiguous row-major storage owned by a backend buffer. */
#ifndef EVOC_TENSOR_H
#define EVOC_TENSOR_H
#include <stddef.h>
#include <stdint.h>
#include "evoc/status.h"
#ifdef __cplusplus
extern "C" {
#endif

#define EVO_MAX_DIMS 8

typedef enum {
  EVO_F32 = 0,
  EVO_I32 = 1,
  EVO_U8 = 2,  /* data and boolean masks (comparisons produce u8 0/1) */
  EVO_U32 = 3, /* RNG keys: [..., 2] */
  EVO_F64 = 4, /* host-side state (algorithms, checkpoints); no kernels */
  EVO_I64 = 5, /* host-side state; no kernels */
  EVO_DTYPE_COUNT
} evo_dtype;

size_t evo_dtype_size(evo_dtype t);
const char *evo_dtype_name(evo_dtype t);

typedef struct evo_backend evo_backend; /* see backend.h */
typedef struct evo_tensor evo_tensor;   /* opaque */

/* New tensor with uninitialized storage on `be`. NULL (and evo_last_error) on failure. */
evo_tensor *evo_tensor_new(evo_backend *be, evo_dtype dtype, int ndim, const int64_t *shape);
/* New tensor initialised from host memory (`src` holds numel elements of dtype). */
evo_tensor *evo_tensor_from_host(evo_backend *be, evo_dtype dtype, int ndim, const int64_t *shape,
                                 const void *src);
void evo_tensor_free(evo_tensor *t);

evo_dtype evo_tensor_dtype(const evo_tensor *t);
int evo_tensor_ndim(const evo_tensor *t);
const int64_t *evo_tensor_shape(const evo_tensor *t);
int64_t evo_tensor_numel(const evo_tensor *t);
size_t evo_tensor_nbytes(const evo_tensor *t);
evo_backend *evo_tensor_backend(const evo_tensor *t);
/* Host-addressable data, or NULL when the tensor lives on a device. */
void *evo_tensor_data(evo_tensor *t);
const void *evo_tensor_data_const(const evo_tensor *t);

/* Copies between host memory and the tensor (nbytes must equal evo_tensor_nbytes). */
evo_status evo_tensor_copy_from_host(evo_tensor *t, const void *src, size_t nbytes);
evo_status evo_tensor_copy_to_host(const evo_tensor *t, void *dst, size_t nbytes);
/* Copies across backends (same dtype and numel). */
evo_status evo_tensor_copy(evo_tensor *dst, const evo_tensor *src);

#ifdef __cplusplus
}
#endif
#endif
