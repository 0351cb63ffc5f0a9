/* The emulator's CUDA runtime: the cudart calls evoc makes, on host memory. Streams run work at once unless they
   are capturing; then launches, copies and memsets are recorded into a graph that cudaGraphLaunch replays.
   What real CUDA refuses is refused here too, with the same error codes: unsafe calls while this thread captures
   in thread-local or global mode (cudaMalloc, cudaFree, synchronising a stream, synchronous copies, copies from
   pageable host memory), work on the legacy stream during a capture, copies whose pointers do not match their
   kind, launches with a bad configuration. Environment: EVO_EMU_DEVICES (default 1) and EVO_EMU_SMS (default 2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>
#include "emu.h"
#include "emu_rt.h"

struct CUstream_st {
  int device;
  bool capturing;
  bool invalid;
  cudaStreamCaptureMode mode;
  std::vector<evo_emu::op> rec;
};
struct CUgraph_st {
  std::vector<evo_emu::op> ops;
};
struct CUgraphExec_st {
  std::vector<evo_emu::op> ops;
};
struct CUevent_st {
  double t;
};

namespace evo_emu {
namespace {

std::mutex mu;
std::map<uintptr_t, size_t> allocs; /* device allocations: start -> size */
thread_local cudaError_t last = cudaSuccess;
thread_local int cur_device = 0;
thread_local cudaStream_t capture_of_thread = nullptr; /* a thread-local or global capture begun by this thread */

int env_int(const char *name, int dflt) {
  const char *v = getenv(name);
  return v && *v ? atoi(v) : dflt;
}

cudaError_t set(cudaError_t e) {
  if (e != cudaSuccess) last = e;
  return e;
}

/* A call that is unsafe during capture: invalidates this thread's capture and fails. */
bool unsafe_now() {
  cudaStream_t s = capture_of_thread;
  if (!s || s->mode == cudaStreamCaptureModeRelaxed) return false;
  s->invalid = true;
  return true;
}

} // namespace

bool is_device_ptr(const void *p, size_t n) {
  std::lock_guard<std::mutex> g(mu);
  const uintptr_t a = (uintptr_t)p;
  auto it = allocs.upper_bound(a);
  if (it == allocs.begin()) return false;
  --it;
  return a >= it->first && a + n <= it->first + it->second + (n == 0);
}

cudaError_t enqueue(cudaStream_t s, op o) {
  if (!s && capture_of_thread) { /* the legacy stream joins nothing: real CUDA invalidates the capture */
    capture_of_thread->invalid = true;
    return set(cudaErrorStreamCaptureImplicit);
  }
  if (s && s->capturing) {
    if (s->invalid) return set(cudaErrorStreamCaptureInvalidated);
    s->rec.push_back(std::move(o));
    return cudaSuccess;
  }
  return set(o.run());
}

bool pointer_arg_ok(const void *p, int k) {
  if (!p || is_device_ptr(p, 0)) return true;
  fprintf(stderr, "cuda emulator: kernel argument %d is a host pointer (%p)\n", k, p);
  set(cudaErrorIllegalAddress);
  return false;
}

void launch(const launch_cfg &c, std::function<void()> body, const void *key) {
  const launch_cfg cfg = c;
  op o;
  o.kind = OP_KERNEL;
  o.key = key;
  o.run = [cfg, body]() { return run_grid(cfg, body); };
  /* a bad configuration fails at launch, recorded or not */
  if (const cudaError_t e = config_error(c)) {
    set(e);
    return;
  }
  /* as on a GPU, a kernel goes only into a stream of the current device (copies may cross) */
  if (c.stream && c.stream->device != cur_device) {
    set(cudaErrorInvalidResourceHandle);
    return;
  }
  enqueue(c.stream, std::move(o));
}

} // namespace evo_emu

using namespace evo_emu;

extern "C" {

cudaError_t cudaGetLastError(void) {
  const cudaError_t e = last;
  last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError(void) { return last; }

const char *cudaGetErrorName(cudaError_t e) {
  switch (e) {
  case cudaSuccess: return "cudaSuccess";
  case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
  case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
  case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
  case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
  case cudaErrorNoDevice: return "cudaErrorNoDevice";
  case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
  case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
  case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
  case cudaErrorGraphExecUpdateFailure: return "cudaErrorGraphExecUpdateFailure";
  case cudaErrorIllegalState: return "cudaErrorIllegalState";
  case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
  default: return "cudaErrorUnknown";
  }
}
const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
  case cudaSuccess: return "no error";
  case cudaErrorInvalidValue: return "invalid argument";
  case cudaErrorMemoryAllocation: return "out of memory";
  case cudaErrorInvalidConfiguration: return "invalid configuration argument";
  case cudaErrorNoDevice: return "no CUDA-capable device is detected";
  case cudaErrorInvalidResourceHandle: return "invalid resource handle";
  case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
  case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
  case cudaErrorStreamCaptureImplicit:
    return "operation would make the legacy stream depend on a capturing blocking stream";
  default: return cudaGetErrorName(e);
  }
}

cudaError_t cudaGetDeviceCount(int *n) {
  *n = env_int("EVO_EMU_DEVICES", 1);
  return *n > 0 ? cudaSuccess : set(cudaErrorNoDevice);
}
cudaError_t cudaSetDevice(int d) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return set(cudaErrorNoDevice);
  if (d < 0 || d >= n) return set(cudaErrorInvalidDevice);
  cur_device = d;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int *d) {
  *d = cur_device;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int d) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return set(cudaErrorNoDevice);
  if (d < 0 || d >= n) return set(cudaErrorInvalidDevice);
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "evoc CUDA emulator");
  p->major = 9, p->minor = 0;
  p->multiProcessorCount = env_int("EVO_EMU_SMS", 2);
  p->totalGlobalMem = (size_t)8 << 30;
  p->sharedMemPerBlock = 48 << 10;
  p->maxThreadsPerBlock = 1024;
  p->warpSize = 32;
  return cudaSuccess;
}
cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *a, const void *f) {
  memset(a, 0, sizeof *a);
  a->maxThreadsPerBlock = 1024;
  return f ? cudaSuccess : set(cudaErrorInvalidDeviceFunction);
}
cudaError_t cudaDeviceSynchronize(void) { return unsafe_now() ? set(cudaErrorStreamCaptureUnsupported) : cudaSuccess; }

cudaError_t cudaMalloc(void **p, size_t n) {
  *p = nullptr;
  if (unsafe_now()) return set(cudaErrorStreamCaptureUnsupported);
  const size_t limit = (size_t)env_int("EVO_EMU_MEM_MB", 8192) << 20;
  if (n > limit) return set(cudaErrorMemoryAllocation);
  if (n == 0) return cudaSuccess;
  void *q = nullptr;
  if (posix_memalign(&q, 256, n) != 0) return set(cudaErrorMemoryAllocation);
  memset(q, 0xA5, n); /* uninitialised device memory is garbage, not zeros */
  std::lock_guard<std::mutex> g(mu);
  allocs[(uintptr_t)q] = n;
  *p = q;
  return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
  if (unsafe_now()) return set(cudaErrorStreamCaptureUnsupported);
  if (!p) return cudaSuccess;
  {
    std::lock_guard<std::mutex> g(mu);
    auto it = allocs.find((uintptr_t)p);
    if (it == allocs.end()) return set(cudaErrorInvalidValue);
    allocs.erase(it);
  }
  free(p);
  return cudaSuccess;
}
cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a, const void *p) {
  memset(a, 0, sizeof *a);
  if (is_device_ptr(p, 0)) {
    a->type = cudaMemoryTypeDevice;
    a->device = 0;
    a->devicePointer = (void *)p;
  } else {
    a->type = cudaMemoryTypeUnregistered;
    a->hostPointer = (void *)p;
  }
  return cudaSuccess;
}

/* Checks the pointers against the kind, as the driver would find out (a wrong kind faults or is refused). */
static cudaError_t check_copy(void *dst, const void *src, size_t n, cudaMemcpyKind *kind) {
  if (!n) return cudaSuccess;
  const bool dd = is_device_ptr(dst, n), sd = is_device_ptr(src, n);
  if (*kind == cudaMemcpyDefault) *kind = sd ? (dd ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
                                             : (dd ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
  const bool want_dd = *kind == cudaMemcpyDeviceToDevice || *kind == cudaMemcpyHostToDevice;
  const bool want_sd = *kind == cudaMemcpyDeviceToDevice || *kind == cudaMemcpyDeviceToHost;
  if (dd != want_dd || sd != want_sd) {
    fprintf(stderr, "cuda emulator: cudaMemcpy kind %d with dst %s and src %s (%zu bytes)\n", (int)*kind,
            dd ? "device" : "host", sd ? "device" : "host", n);
    return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, cudaStream_t s) {
  cudaError_t e = check_copy(dst, src, n, &kind);
  if (e != cudaSuccess) return set(e);
  if (!n) return cudaSuccess;
  const bool capturing = (s && s->capturing) || (!s && capture_of_thread);
  if (capturing && kind != cudaMemcpyDeviceToDevice) { /* all host memory here is pageable */
    if (s) s->invalid = true;
    return set(cudaErrorStreamCaptureUnsupported);
  }
  op o;
  o.kind = OP_COPY;
  o.run = [dst, src, n]() {
    memmove(dst, src, n);
    return cudaSuccess;
  };
  return enqueue(s, std::move(o));
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind) {
  if (unsafe_now()) return set(cudaErrorStreamCaptureUnsupported);
  return cudaMemcpyAsync(dst, src, n, kind, nullptr);
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s) {
  if (n && !is_device_ptr(p, n)) return set(cudaErrorInvalidValue);
  op o;
  o.kind = OP_MEMSET;
  o.run = [p, v, n]() {
    memset(p, v, n);
    return cudaSuccess;
  };
  return n ? enqueue(s, std::move(o)) : cudaSuccess;
}
cudaError_t cudaMemset(void *p, int v, size_t n) {
  if (unsafe_now()) return set(cudaErrorStreamCaptureUnsupported);
  return cudaMemsetAsync(p, v, n, nullptr);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
  (void)flags;
  *s = new CUstream_st{cur_device, false, false, cudaStreamCaptureModeGlobal, {}};
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (!s) return set(cudaErrorInvalidResourceHandle);
  if (capture_of_thread == s) capture_of_thread = nullptr;
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  if ((s && s->capturing) || unsafe_now()) {
    if (s) s->invalid = true;
    return set(cudaErrorStreamCaptureUnsupported);
  }
  return cudaSuccess;
}
cudaError_t cudaStreamGetDevice(cudaStream_t s, int *d) {
  *d = s ? s->device : cur_device;
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus *st) {
  *st = s && s->capturing ? (s->invalid ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive)
                          : cudaStreamCaptureStatusNone;
  if (!s && capture_of_thread) return set(cudaErrorStreamCaptureImplicit);
  return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode) {
  if (!s) return set(cudaErrorStreamCaptureUnsupported); /* the legacy stream cannot be captured */
  if (s->capturing) return set(cudaErrorIllegalState);
  s->capturing = true, s->invalid = false, s->mode = mode;
  s->rec.clear();
  if (mode != cudaStreamCaptureModeRelaxed) capture_of_thread = s;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) {
  *g = nullptr;
  if (!s || !s->capturing) return set(cudaErrorIllegalState);
  s->capturing = false;
  if (capture_of_thread == s) capture_of_thread = nullptr;
  if (s->invalid) {
    s->rec.clear();
    return set(cudaErrorStreamCaptureInvalidated);
  }
  *g = new CUgraph_st{std::move(s->rec)};
  s->rec.clear();
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  delete g;
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long flags) {
  (void)flags;
  if (!g) return set(cudaErrorInvalidValue);
  *e = new CUgraphExec_st{g->ops};
  return cudaSuccess;
}
cudaError_t cudaGraphExecUpdate(cudaGraphExec_t e, cudaGraph_t g, cudaGraphExecUpdateResultInfo *info) {
  if (info) memset(info, 0, sizeof *info);
  bool same = e && g && e->ops.size() == g->ops.size();
  for (size_t i = 0; same && i < g->ops.size(); i++)
    same = e->ops[i].kind == g->ops[i].kind && e->ops[i].key == g->ops[i].key;
  if (!same) {
    if (info) info->result = cudaGraphExecUpdateErrorTopologyChanged;
    return set(cudaErrorGraphExecUpdateFailure);
  }
  e->ops = g->ops;
  if (info) info->result = cudaGraphExecUpdateSuccess;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s) {
  if (!e) return set(cudaErrorInvalidValue);
  if (s && s->capturing) { /* a graph launched into a capture becomes a child graph: record its ops */
    for (const op &o : e->ops) enqueue(s, o);
    return cudaSuccess;
  }
  for (const op &o : e->ops) {
    const cudaError_t r = enqueue(s, o);
    if (r != cudaSuccess) return r;
  }
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *ev) {
  *ev = new CUevent_st{0.0};
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t ev) {
  delete ev;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t s) {
  (void)s;
  ev->t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t ev) {
  (void)ev;
  return unsafe_now() ? set(cudaErrorStreamCaptureUnsupported) : cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = (float)(b->t - a->t);
  return cudaSuccess;
}

} // extern "C"
