/* The CUDA backend: buffers from cudaMalloc, copies with cudaMemcpyAsync on one non-blocking stream, a cuBLAS
   handle bound to that stream with a workspace of its own (so GEMMs can be recorded into CUDA Graphs without
   cuBLAS allocating), and graph record/replay for the jit. Every CUDA failure becomes a status naming the call;
   nothing here prints or aborts. Kernels are in the k_*.cu families, reached through cuda_dispatch.c. */
#include <stdio.h>
#include <stdlib.h>
#include "cuda_impl.h"

#define CUBLAS_WORKSPACE_BYTES ((size_t)32 << 20) /* cuBLAS's recommended workspace for Hopper */

typedef struct {
  evo_cuda_ctx k; /* what the kernel families see */
  void *cublas_ws;
} cuda_ctx;

evo_status evo_cuda_check(cudaError_t e, const char *what) {
  if (e == cudaSuccess) return EVO_STATUS_OK;
  (void)cudaGetLastError(); /* reset a non-sticky error so the next launch check does not report it again */
  return evo_error(e == cudaErrorMemoryAllocation ? EVO_STATUS_OUT_OF_MEMORY : EVO_STATUS_BACKEND, "cuda: %s: %s",
                   what, cudaGetErrorString(e));
}

evo_status evo_cublas_check(cublasStatus_t s, const char *what) {
  if (s == CUBLAS_STATUS_SUCCESS) return EVO_STATUS_OK;
  return evo_error(s == CUBLAS_STATUS_ALLOC_FAILED ? EVO_STATUS_OUT_OF_MEMORY : EVO_STATUS_BACKEND, "cublas: %s: %s",
                   what, cublasGetStatusString(s));
}

/* The runtime's current device is per thread: make it ours before calls that create work or memory. */
static evo_status use_device(const cuda_ctx *c) { return evo_cuda_check(cudaSetDevice(c->k.device), "cudaSetDevice"); }

/* NULL on failure (out of memory included); the caller words the error. */
static void *cu_alloc(void *ctx, size_t n) {
  void *p = NULL;
  if (use_device(ctx) != EVO_STATUS_OK) return NULL;
  if (cudaMalloc(&p, n) != cudaSuccess) {
    (void)cudaGetLastError();
    return NULL;
  }
  return p;
}

static void cu_free(void *ctx, void *p) {
  cuda_ctx *c = ctx;
  if (!p || use_device(c) != EVO_STATUS_OK) return;
  /* Queued work may still read p; frees happen outside the run loop, so waiting costs nothing there. */
  (void)cudaStreamSynchronize(c->k.stream);
  (void)cudaFree(p);
  (void)cudaGetLastError();
}

static evo_status on_stream(cuda_ctx *c, void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
                            const char *what) {
  return n ? evo_cuda_check(cudaMemcpyAsync(dst, src, n, kind, c->k.stream), what) : EVO_STATUS_OK;
}

static evo_status cu_to_host(void *ctx, void *dst, const void *src, size_t n) {
  cuda_ctx *c = ctx;
  evo_status st = use_device(c);
  if (!st) st = on_stream(c, dst, src, n, cudaMemcpyDeviceToHost, "cudaMemcpyAsync to host");
  if (!st && n) st = evo_cuda_check(cudaStreamSynchronize(c->k.stream), "cudaStreamSynchronize");
  return st;
}

/* From pageable memory cudaMemcpyAsync returns once src is staged, so the caller may reuse src at once; from
   page-locked memory the copy is truly asynchronous, so wait for it to keep that promise. */
static evo_status cu_from_host(void *ctx, void *dst, const void *src, size_t n) {
  cuda_ctx *c = ctx;
  evo_status st = use_device(c);
  if (!st) st = on_stream(c, dst, src, n, cudaMemcpyHostToDevice, "cudaMemcpyAsync to device");
  struct cudaPointerAttributes at;
  if (!st && n && cudaPointerGetAttributes(&at, src) == cudaSuccess && at.type != cudaMemoryTypeUnregistered)
    st = evo_cuda_check(cudaStreamSynchronize(c->k.stream), "cudaStreamSynchronize");
  (void)cudaGetLastError();
  return st;
}

/* Device to device, stream-ordered; also recorded when the jit captures a plan (no cudaSetDevice here). */
static evo_status cu_copy(void *ctx, void *dst, const void *src, size_t n) {
  return on_stream(ctx, dst, src, n, cudaMemcpyDeviceToDevice, "cudaMemcpyAsync");
}

static int cu_supports(void *ctx, const evo_node_t *node, const evo_node_t *const *in) {
  (void)ctx;
  return evo_cuda_supports(node, in);
}
static size_t cu_scratch(void *ctx, const evo_node_t *node, const evo_node_t *const *in) {
  (void)ctx;
  return evo_cuda_scratch_bytes(node, in);
}
/* evo_backend_use: checked, set only when another device is current (a plan runs many kernels). */
static evo_status cu_use(void *ctx) {
  const cuda_ctx *c = ctx;
  int cur;
  return cudaGetDevice(&cur) == cudaSuccess && cur == c->k.device ? EVO_STATUS_OK : use_device(c);
}

/* One thread may drive backends on several GPUs: kernels go to this backend's device. */
static evo_status cu_run(void *ctx, const evo_kernel_args *a) {
  evo_status st = cu_use(ctx);
  return st ? st : evo_cuda_run(&((cuda_ctx *)ctx)->k, a);
}

static evo_status cu_sync(void *ctx) {
  cuda_ctx *c = ctx;
  evo_status st = use_device(c);
  return st ? st : evo_cuda_check(cudaStreamSynchronize(c->k.stream), "cudaStreamSynchronize");
}

static void *cu_stream(void *ctx) { return (void *)((cuda_ctx *)ctx)->k.stream; }
static const char *cu_device_name(void *ctx) { return ((cuda_ctx *)ctx)->k.name; }
static int cu_device(void *ctx) { return ((cuda_ctx *)ctx)->k.device; }

static int cu_capturing(void *ctx) {
  enum cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(((cuda_ctx *)ctx)->k.stream, &cs) != cudaSuccess) (void)cudaGetLastError();
  return cs != cudaStreamCaptureStatusNone; /* an invalidated capture is still one: ending it reports the cause */
}

/* Thread-local capture: only this thread's unsafe calls (cudaMalloc, a synchronize) would break the recording. */
static evo_status cu_graph_begin(void *ctx) {
  cuda_ctx *c = ctx;
  evo_status st = use_device(c);
  return st ? st
            : evo_cuda_check(cudaStreamBeginCapture(c->k.stream, cudaStreamCaptureModeThreadLocal),
                             "cudaStreamBeginCapture");
}

static evo_status cu_graph_end(void *ctx, int ok, void **exec) {
  cuda_ctx *c = ctx;
  cudaGraph_t g = NULL;
  if (!ok) { /* a node failed while recording: end the capture, keep that node's message */
    if (cudaStreamEndCapture(c->k.stream, &g) == cudaSuccess && g) (void)cudaGraphDestroy(g);
    (void)cudaGetLastError();
    return EVO_STATUS_OK;
  }
  evo_status st = evo_cuda_check(cudaStreamEndCapture(c->k.stream, &g), "cudaStreamEndCapture");
  if (st) return st;
  if (*exec) { /* same topology, new pointers: patch the instantiated graph instead of rebuilding it */
    cudaGraphExecUpdateResultInfo info;
    if (cudaGraphExecUpdate((cudaGraphExec_t)*exec, g, &info) == cudaSuccess) {
      (void)cudaGraphDestroy(g);
      return EVO_STATUS_OK;
    }
    (void)cudaGetLastError();
    (void)cudaGraphExecDestroy((cudaGraphExec_t)*exec);
    *exec = NULL;
  }
  cudaGraphExec_t ge = NULL;
  st = evo_cuda_check(cudaGraphInstantiate(&ge, g, 0), "cudaGraphInstantiate");
  (void)cudaGraphDestroy(g);
  if (!st) *exec = (void *)ge;
  return st;
}

static evo_status cu_graph_launch(void *ctx, void *exec) {
  cuda_ctx *c = ctx;
  evo_status st = use_device(c);
  return st ? st : evo_cuda_check(cudaGraphLaunch((cudaGraphExec_t)exec, c->k.stream), "cudaGraphLaunch");
}

/* An in-flight graph is freed when it completes. */
static void cu_graph_destroy(void *ctx, void *exec) {
  if (!exec || use_device(ctx) != EVO_STATUS_OK) return;
  (void)cudaGraphExecDestroy((cudaGraphExec_t)exec);
  (void)cudaGetLastError();
}

static void cu_destroy(void *ctx) {
  cuda_ctx *c = ctx;
  if (use_device(c) == EVO_STATUS_OK) {
    if (c->k.stream) (void)cudaStreamSynchronize(c->k.stream);
    if (c->k.cublas) (void)cublasDestroy(c->k.cublas);
    if (c->cublas_ws) (void)cudaFree(c->cublas_ws);
    if (c->k.stream) (void)cudaStreamDestroy(c->k.stream);
    (void)cudaGetLastError();
  }
  free(c);
}

static const evo_backend_iface cuda_iface = {
    .name = "cuda",
    .alloc = cu_alloc,
    .free = cu_free,
    .to_host = cu_to_host,
    .from_host = cu_from_host,
    .copy = cu_copy,
    .supports_op = cu_supports,
    .scratch_bytes = cu_scratch,
    .run = cu_run,
    .sync = cu_sync,
    .destroy = cu_destroy,
    .host_addressable = 0,
    .stream = cu_stream,
    .device_name = cu_device_name,
    .device = cu_device,
    .use = cu_use,
    .capturing = cu_capturing,
    .graph_begin = cu_graph_begin,
    .graph_end = cu_graph_end,
    .graph_launch = cu_graph_launch,
    .graph_destroy = cu_graph_destroy,
};

int evo_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

/* The device probe: no driver, no device or an unusable device is UNSUPPORTED (device "auto" then falls back to
   the CPU); a device number that does not exist is INVALID_ARGUMENT. */
static evo_status probe(int ordinal, struct cudaDeviceProp *prop) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda: %s", cudaGetErrorString(e));
  }
  if (n <= 0) return evo_error(EVO_STATUS_UNSUPPORTED, "cuda: no CUDA device is present");
  if (ordinal < 0 || ordinal >= n)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cuda: there is no device %d (this machine has %d)", ordinal, n);
  e = cudaGetDeviceProperties(prop, ordinal);
  if (e == cudaSuccess) e = cudaSetDevice(ordinal);
  if (e == cudaSuccess) e = cudaFree(NULL); /* creates the context now, so an unusable device fails here */
  if (e == cudaSuccess && (e = evo_cuda_probe_image()) != cudaSuccess) {
    (void)cudaGetLastError();
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda: device %d (%s, sm_%d%d) cannot run this build's kernels (%s); "
                     "rebuild with -DCMAKE_CUDA_ARCHITECTURES=%d%d", ordinal, prop->name, prop->major, prop->minor,
                     cudaGetErrorString(e), prop->major, prop->minor);
  }
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda: device %d is not usable: %s", ordinal, cudaGetErrorString(e));
  }
  return EVO_STATUS_OK;
}

/* One small GEMM outside any capture: cuBLAS's one-time setup (kernel loading, internal state) then happens here,
   not inside the first plan the jit records. */
static evo_status warm_up(cuda_ctx *c) {
  float *m = NULL;
  evo_status st = evo_cuda_check(cudaMalloc((void **)&m, 12 * sizeof(float)), "cudaMalloc (cuBLAS warm-up)");
  if (st) return st;
  const float one = 1.0f, zero = 0.0f;
  st = evo_cuda_check(cudaMemsetAsync(m, 0, 8 * sizeof(float), c->k.stream), "cudaMemsetAsync (cuBLAS warm-up)");
  if (!st)
    st = evo_cublas_check(cublasGemmEx(c->k.cublas, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, m, CUDA_R_32F, 2, m + 4,
                                       CUDA_R_32F, 2, &zero, m + 8, CUDA_R_32F, 2, CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT),
                          "cuBLAS warm-up GEMM");
  if (!st) st = evo_cuda_check(cudaStreamSynchronize(c->k.stream), "cudaStreamSynchronize (cuBLAS warm-up)");
  (void)cudaFree(m);
  return st;
}

evo_status evo_backend_cuda_new(int ordinal, evo_backend **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cuda: out is NULL");
  *out = NULL;
  struct cudaDeviceProp prop;
  evo_status st = probe(ordinal, &prop);
  if (st) return st;
  cuda_ctx *c = calloc(1, sizeof *c);
  evo_backend *be = calloc(1, sizeof *be);
  if (!c || !be) {
    free(c);
    free(be);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "cuda: out of memory");
  }
  c->k.device = ordinal;
  c->k.sm_count = prop.multiProcessorCount;
  snprintf(c->k.name, sizeof c->k.name, "%.127s", prop.name);
  st = evo_cuda_check(cudaStreamCreateWithFlags(&c->k.stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  if (!st) st = evo_cublas_check(cublasCreate(&c->k.cublas), "cublasCreate");
  /* setStream resets the workspace to cuBLAS's own pool, so it comes first */
  if (!st) st = evo_cublas_check(cublasSetStream(c->k.cublas, c->k.stream), "cublasSetStream");
  if (!st) st = evo_cuda_check(cudaMalloc(&c->cublas_ws, CUBLAS_WORKSPACE_BYTES), "cudaMalloc (cuBLAS workspace)");
  if (!st) st = evo_cublas_check(cublasSetWorkspace(c->k.cublas, c->cublas_ws, CUBLAS_WORKSPACE_BYTES),
                                 "cublasSetWorkspace");
  if (!st) st = warm_up(c);
  if (st) {
    cu_destroy(c);
    free(be);
    return st;
  }
  be->iface = &cuda_iface;
  be->ctx = c;
  *out = be;
  return EVO_STATUS_OK;
}
