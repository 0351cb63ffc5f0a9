/* Backends: where tensors live and kernels run. The CPU backend is always available. */
#ifndef EVOC_BACKEND_H
#define EVOC_BACKEND_H
#include <stddef.h>
#include <stdint.h>
#include "evoc/status.h"
#include "evoc/tensor.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int n_threads; /* OpenMP threads for the CPU backend; 0 = OpenMP default */
} evo_backend_params;

evo_backend_params evo_backend_default_params(void);

/* CPU backend. Returns NULL only on out-of-memory. */
evo_backend *evo_backend_cpu_new(const evo_backend_params *params);
void evo_backend_free(evo_backend *be);
const char *evo_backend_name(const evo_backend *be);

/* Number of buffer allocations made on this backend so far (used to prove that running a plan allocates nothing). */
uint64_t evo_backend_alloc_count(const evo_backend *be);

#ifdef __cplusplus
}
#endif
#endif
