/* Internal: the backend interface (a function-pointer table) and the arguments every kernel receives. */
#ifndef EVOC_BACKEND_IMPL_H
#define EVOC_BACKEND_IMPL_H
#include <stddef.h>
#include <stdint.h>
#include "evoc/backend.h"
#include "evoc/jit.h"
#include "graph_impl.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Everything a kernel needs: the node (op, params, output dtype/shape), its input nodes (dtypes/shapes), the input
   data, the output buffer and scratch memory of the size the backend's scratch_bytes() asked for. Kernels never
   allocate. Output buffers never alias inputs. */
typedef struct {
  const evo_node_t *node;
  const evo_node_t *in[EVO_MAX_INPUTS];
  const void *src[EVO_MAX_INPUTS];
  void *dst;
  void *scratch;
  size_t scratch_bytes;
} evo_kernel_args;

typedef struct {
  const char *name;
  void *(*alloc)(void *ctx, size_t nbytes);
  void (*free)(void *ctx, void *ptr);
  evo_status (*to_host)(void *ctx, void *dst, const void *src, size_t n);
  evo_status (*from_host)(void *ctx, void *dst, const void *src, size_t n);
  evo_status (*copy)(void *ctx, void *dst, const void *src, size_t n); /* device to device */
  int (*supports_op)(void *ctx, const evo_node_t *node, const evo_node_t *const *in);
  size_t (*scratch_bytes)(void *ctx, const evo_node_t *node, const evo_node_t *const *in);
  evo_status (*run)(void *ctx, const evo_kernel_args *args);
  evo_status (*sync)(void *ctx);
  void (*destroy)(void *ctx);
  int host_addressable; /* buffers are plain host pointers */
  /* Optional, NULL on host backends. */
  void *(*stream)(void *ctx);            /* the queue work is enqueued on (a cudaStream_t) */
  const char *(*device_name)(void *ctx); /* e.g. "NVIDIA H100 80GB HBM3" */
  int (*device)(void *ctx);              /* the CUDA device ordinal */
  evo_status (*use)(void *ctx);          /* makes the device current for the calling thread */
  /* Graph replay (CUDA Graphs): the kernels and copies enqueued between graph_begin and graph_end are recorded,
     not run; graph_end(ok = 1) turns them into *exec (updated in place when *exec already exists, else created),
     graph_end(ok = 0) drops the recording after a failure. graph_launch runs *exec on the stream. capturing says
     whether the stream is inside someone else's recording already (then the jit enqueues into it directly). */
  int (*capturing)(void *ctx);
  evo_status (*graph_begin)(void *ctx);
  evo_status (*graph_end)(void *ctx, int ok, void **exec);
  evo_status (*graph_launch)(void *ctx, void *exec);
  void (*graph_destroy)(void *ctx, void *exec);
} evo_backend_iface;

struct evo_backend {
  const evo_backend_iface *iface;
  void *ctx;
  uint64_t n_allocs;
};

void *evo_backend_alloc(evo_backend *be, size_t nbytes); /* counts allocations */
void evo_backend_release(evo_backend *be, void *ptr);
/* The raw buffer of a tensor (a device pointer on device backends). */
void *evo_tensor_buffer(const evo_tensor *t);
/* Bytes [offset, offset + nbytes) of a tensor to or from host memory, on any backend (evo_tensor_copy_*_host move
   whole tensors): a prefix of a buffer grown past what a call uses, one row of a batch. INVALID_ARGUMENT past
   the end. */
evo_status evo_tensor_read(const evo_tensor *t, size_t offset, void *dst, size_t nbytes);
evo_status evo_tensor_write(evo_tensor *t, size_t offset, const void *src, size_t nbytes);

/* How often a plan was recorded into a device graph and how often that graph was replayed (0 on host backends);
   tests use it to show that runs replay and that rebinding tensors re-records. */
void evo_plan_graph_stats(const evo_plan *p, int *records, int *launches);

/* The CPU kernels (core/cpu/), used by the CPU backend. */
evo_status evo_cpu_run(const evo_kernel_args *a);
size_t evo_cpu_scratch_bytes(const evo_node_t *node, const evo_node_t *const *in);
int evo_cpu_supports(const evo_node_t *node, const evo_node_t *const *in);

#ifdef __cplusplus
}
#endif

#endif
