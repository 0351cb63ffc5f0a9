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

/* CUDA backend on device `ordinal` (one stream, one cuBLAS handle). Without a usable GPU (a build without CUDA, no
   driver, no device) returns EVO_STATUS_UNSUPPORTED with the reason in evo_last_error(); never crashes. */
evo_status evo_backend_cuda_new(int ordinal, evo_backend **out);
/* Number of usable CUDA devices: 0 in a build without CUDA or on a machine without a driver or GPU. */
int evo_cuda_device_count(void);
/* The cudaStream_t (as void *) the backend enqueues on; NULL for host backends. Device tasks step on it. */
void *evo_backend_stream(const evo_backend *be);
/* The CUDA device ordinal the backend runs on; -1 for host backends. */
int evo_backend_device(const evo_backend *be);
/* Makes the backend's device the calling thread's current one (a no-op on host backends and when it is current
   already). A thread may drive backends on several GPUs, and a kernel launches only into a stream of the current
   device: code that launches on evo_backend_stream (device tasks, plugins) calls this first. Safe while a stream
   captures a graph. */
evo_status evo_backend_use(evo_backend *be);
/* Waits until all work enqueued on the backend has finished (a no-op on the CPU). Device plans run asynchronously:
   time them with a sync, and read results through evo_tensor_copy (which waits). */
evo_status evo_backend_sync(evo_backend *be);
/* 1 when tensors of this backend are plain host memory (the CPU backend). */
int evo_backend_is_host(const evo_backend *be);

/* Opens the backend a device spec names: "auto" | "cpu" | "cuda" | "cuda:N". auto picks CUDA when a usable GPU is
   present, else the CPU. `note` (may be NULL) receives one line saying what was chosen and why, e.g.
   "device auto: using cpu (cuda: CUDA driver version is insufficient for CUDA runtime version)". An explicit
   "cuda" without a usable GPU is an error (EVO_STATUS_UNSUPPORTED), a malformed spec or a device number this
   machine does not have EVO_STATUS_INVALID_ARGUMENT. */
evo_status evo_device_open(const char *spec, const evo_backend_params *params, evo_backend **out, char *note,
                           size_t note_size);

/* Number of buffer allocations made on this backend so far (used to prove that running a plan allocates nothing). */
uint64_t evo_backend_alloc_count(const evo_backend *be);

#ifdef __cplusplus
}
#endif
#endif
