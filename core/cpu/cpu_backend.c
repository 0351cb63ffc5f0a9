/* The CPU backend: 64-byte aligned host buffers, kernels from core/cpu/. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "../backend_impl.h"

static void *cpu_alloc(void *ctx, size_t n) {
  (void)ctx;
  return aligned_alloc(64, (n + 63) / 64 * 64);
}
static void cpu_free(void *ctx, void *p) {
  (void)ctx;
  free(p);
}
static evo_status cpu_copy(void *ctx, void *dst, const void *src, size_t n) {
  (void)ctx;
  if (n) memcpy(dst, src, n);
  return EVO_STATUS_OK;
}
static int cpu_supports(void *ctx, const evo_node_t *node, const evo_node_t *const *in) {
  (void)ctx;
  return evo_cpu_supports(node, in);
}
static size_t cpu_scratch(void *ctx, const evo_node_t *node, const evo_node_t *const *in) {
  (void)ctx;
  return evo_cpu_scratch_bytes(node, in);
}
static evo_status cpu_run(void *ctx, const evo_kernel_args *a) {
  (void)ctx;
  return evo_cpu_run(a);
}
static evo_status cpu_sync(void *ctx) {
  (void)ctx;
  return EVO_STATUS_OK;
}

static const evo_backend_iface cpu_iface = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_host = cpu_copy,
    .from_host = cpu_copy,
    .copy = cpu_copy,
    .supports_op = cpu_supports,
    .scratch_bytes = cpu_scratch,
    .run = cpu_run,
    .sync = cpu_sync,
    .destroy = NULL,
    .host_addressable = 1,
};

evo_backend *evo_backend_cpu_new(const evo_backend_params *params) {
  evo_backend *be = calloc(1, sizeof *be);
  if (!be) return NULL;
  be->iface = &cpu_iface;
  /* OpenMP's thread count is process-wide; only set it when asked. */
  if (params && params->n_threads > 0) omp_set_num_threads(params->n_threads);
  return be;
}
