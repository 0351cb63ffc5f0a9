/* The CUDA emulator's internal interface, shared by the rewritten kernels (cuda_emu.h) and the fake runtime
   (emu_runtime.cc, emu_cublas.cc, emu_exec.cc). A development tool: it lets the CUDA backend's host logic and
   kernels run on a machine without a GPU (see cuda_emu.cmake); it does not model timing, memory ordering or
   CUDA's own math functions (libm's stand in). */
#ifndef EVOC_CUDA_EMU_H
#define EVOC_CUDA_EMU_H
#include <cuda_runtime.h>
#include <functional>

namespace evo_emu {

struct launch_cfg {
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
};
inline launch_cfg make_cfg(dim3 g, dim3 b, size_t smem = 0, cudaStream_t s = 0) { return {g, b, smem, s}; }

/* The ids the kernel code reads as threadIdx/blockIdx/blockDim/gridDim. */
struct thread_ids {
  uint3 t, b;
  dim3 bd, gd;
};
/* The running thread's ids (a call, not an extern thread_local: that one came back null from fibers under
   ASan). */
const thread_ids *ids();

/* Runs `body` for every thread of the grid (recorded instead while `c.stream` is capturing); `key` tells
   kernels apart for graph updates. Launch errors go to cudaGetLastError. */
void launch(const launch_cfg &c, std::function<void()> body, const void *key);

/* Whether kernel argument k (a pointer) may be passed: null or device memory; otherwise reports it and sets
   cudaErrorIllegalAddress, as the faulting kernel would. */
bool pointer_arg_ok(const void *p, int k);

/* A block's shared variable p (n bytes) as a GPU leaves it at the block's start: garbage (0xFF bytes: NaN floats,
   -1 integers), written once per block, by the first of its threads to pass the declaration (cu2cc.py adds the
   call after each __shared__ declaration). */
void poison_shared(void *p, size_t n);

/* Block and warp synchronisation for the running kernel. */
void sync_block();
/* Exchanges n <= 8 bytes with the lanes of `mask`: returns, in out, lane src's value. */
void warp_exchange(unsigned mask, const void *mine, void *out, unsigned n, int src);
int lane_id();

/* What a GPU says to a launch with this configuration: cudaSuccess, or the error it fails with at once. */
cudaError_t config_error(const launch_cfg &c);
/* Runs a grid now (emu_exec.cc); its configuration passed config_error. */
cudaError_t run_grid(const launch_cfg &c, const std::function<void()> &body);

} // namespace evo_emu
#endif
