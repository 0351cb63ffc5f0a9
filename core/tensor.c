/* Tensors: a dtype, a shape and one backend buffer. */
#include <stdlib.h>
#include <string.h>
#include "backend_impl.h"

struct evo_tensor {
  evo_backend *be;
  evo_dtype dtype;
  int ndim;
  int64_t shape[EVO_MAX_DIMS];
  int64_t numel;
  void *data;
};

size_t evo_dtype_size(evo_dtype t) {
  switch (t) {
  case EVO_F32: case EVO_I32: case EVO_U32: return 4;
  case EVO_U8: return 1;
  case EVO_F64: case EVO_I64: return 8;
  default: return 0;
  }
}

const char *evo_dtype_name(evo_dtype t) {
  switch (t) {
  case EVO_F32: return "f32";
  case EVO_I32: return "i32";
  case EVO_U8: return "u8";
  case EVO_U32: return "u32";
  case EVO_F64: return "f64";
  case EVO_I64: return "i64";
  default: return "?";
  }
}

evo_tensor *evo_tensor_new(evo_backend *be, evo_dtype dtype, int ndim, const int64_t *shape) {
  if (!be || ndim < 0 || ndim > EVO_MAX_DIMS || (unsigned)dtype >= EVO_DTYPE_COUNT) {
    evo_error(EVO_STATUS_INVALID_ARGUMENT, "tensor_new: bad backend, rank or dtype");
    return NULL;
  }
  evo_tensor *t = calloc(1, sizeof *t);
  if (!t) {
    evo_error(EVO_STATUS_OUT_OF_MEMORY, "tensor_new: out of memory");
    return NULL;
  }
  t->be = be;
  t->dtype = dtype;
  t->ndim = ndim;
  t->numel = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0) {
      free(t);
      evo_error(EVO_STATUS_INVALID_ARGUMENT, "tensor_new: negative dim %d", d);
      return NULL;
    }
    t->shape[d] = shape[d];
    t->numel *= shape[d];
  }
  size_t bytes = evo_tensor_nbytes(t);
  t->data = evo_backend_alloc(be, bytes);
  if (!t->data) {
    free(t);
    evo_error(EVO_STATUS_OUT_OF_MEMORY, "tensor_new: cannot allocate %zu bytes", bytes);
    return NULL;
  }
  return t;
}

evo_tensor *evo_tensor_from_host(evo_backend *be, evo_dtype dtype, int ndim, const int64_t *shape,
                                 const void *src) {
  evo_tensor *t = evo_tensor_new(be, dtype, ndim, shape);
  if (t && evo_tensor_copy_from_host(t, src, evo_tensor_nbytes(t)) != EVO_STATUS_OK) {
    evo_tensor_free(t);
    return NULL;
  }
  return t;
}

void evo_tensor_free(evo_tensor *t) {
  if (!t) return;
  evo_backend_release(t->be, t->data);
  free(t);
}

evo_dtype evo_tensor_dtype(const evo_tensor *t) { return t->dtype; }
int evo_tensor_ndim(const evo_tensor *t) { return t->ndim; }
const int64_t *evo_tensor_shape(const evo_tensor *t) { return t->shape; }
int64_t evo_tensor_numel(const evo_tensor *t) { return t->numel; }
size_t evo_tensor_nbytes(const evo_tensor *t) { return (size_t)t->numel * evo_dtype_size(t->dtype); }
evo_backend *evo_tensor_backend(const evo_tensor *t) { return t->be; }
void *evo_tensor_data(evo_tensor *t) { return t->be->iface->host_addressable ? t->data : NULL; }
const void *evo_tensor_data_const(const evo_tensor *t) { return t->be->iface->host_addressable ? t->data : NULL; }

/* Internal: the raw buffer (device pointer on device backends). */
void *evo_tensor_buffer(const evo_tensor *t) { return t->data; }

static evo_status check_range(const evo_tensor *t, size_t offset, size_t nbytes, const char *what) {
  if (offset > evo_tensor_nbytes(t) || nbytes > evo_tensor_nbytes(t) - offset)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: bytes [%zu, %zu) outside a tensor of %zu", what, offset,
                     offset + nbytes, evo_tensor_nbytes(t));
  return EVO_STATUS_OK;
}

evo_status evo_tensor_read(const evo_tensor *t, size_t offset, void *dst, size_t nbytes) {
  evo_status st = check_range(t, offset, nbytes, "tensor_read");
  return st ? st : t->be->iface->to_host(t->be->ctx, dst, (char *)t->data + offset, nbytes);
}

evo_status evo_tensor_write(evo_tensor *t, size_t offset, const void *src, size_t nbytes) {
  evo_status st = check_range(t, offset, nbytes, "tensor_write");
  return st ? st : t->be->iface->from_host(t->be->ctx, (char *)t->data + offset, src, nbytes);
}

evo_status evo_tensor_copy_from_host(evo_tensor *t, const void *src, size_t nbytes) {
  if (nbytes != evo_tensor_nbytes(t))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "copy_from_host: %zu bytes given, tensor has %zu", nbytes,
                     evo_tensor_nbytes(t));
  return t->be->iface->from_host(t->be->ctx, t->data, src, nbytes);
}

evo_status evo_tensor_copy_to_host(const evo_tensor *t, void *dst, size_t nbytes) {
  if (nbytes != evo_tensor_nbytes(t))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "copy_to_host: %zu bytes asked, tensor has %zu", nbytes,
                     evo_tensor_nbytes(t));
  return t->be->iface->to_host(t->be->ctx, dst, t->data, nbytes);
}

evo_status evo_tensor_copy(evo_tensor *dst, const evo_tensor *src) {
  if (dst->dtype != src->dtype || dst->numel != src->numel)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "tensor_copy: dtype or size differs");
  size_t n = evo_tensor_nbytes(src);
  if (dst->be == src->be) return dst->be->iface->copy(dst->be->ctx, dst->data, src->data, n);
  if (src->be->iface->host_addressable) return dst->be->iface->from_host(dst->be->ctx, dst->data, src->data, n);
  if (dst->be->iface->host_addressable) return src->be->iface->to_host(src->be->ctx, dst->data, src->data, n);
  return evo_error(EVO_STATUS_UNSUPPORTED, "tensor_copy: device to other device not supported");
}
