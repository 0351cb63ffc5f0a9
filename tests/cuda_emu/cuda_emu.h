/* Force-included into every .cu file that the CUDA emulator compiles as C++ (after cu2cc.py rewrote its
   launches): the CUDA keywords become host C++, threadIdx & co. read the emulator's current thread, and block and
   warp synchronisation go through the emulator's fibers. */
#ifndef EVOC_CUDA_EMU_KERNEL_H
#define EVOC_CUDA_EMU_KERNEL_H
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include "emu.h"

/* The CUDA headers are in, on their host path; from here on our own headers take their CUDA path. */
#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __align__
#undef __launch_bounds__
#undef __restrict__
#define __CUDACC__ 1
/* Our headers' device math (core/elementwise_math.h: expf, tanhf instead of the host polynomials) differs from the
   host's by a few ulps on a GPU; libm's functions stand in for CUDA's here, so a test that wants host bits from
   them fails here too. Nothing else reads the architecture number. */
#define __CUDA_ARCH__ 900
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
/* One block runs at a time per OS thread, so a function-local static is the block's shared memory. */
#define __shared__ static thread_local
#define __restrict__ __restrict

#define threadIdx (evo_emu::ids()->t)
#define blockIdx (evo_emu::ids()->b)
#define blockDim (evo_emu::ids()->bd)
#define gridDim (evo_emu::ids()->gd)

namespace evo_emu {
/* `kernel(cfg, f)(args...)`: copies the arguments now, as a launch does, and runs f(args...) per thread. */
/* A pointer argument must be null or device memory (a GPU faults on a host pointer; pointers inside structs are
   not checked). */
template <class T>
bool arg_on_device(const T &a, int k) {
  if constexpr (std::is_pointer_v<T>) return pointer_arg_ok((const void *)a, k);
  return true;
}
template <class F>
struct launcher {
  launch_cfg c;
  F f;
  template <class... A>
  void operator()(A... a) const {
    int k = 0;
    const bool ok = (arg_on_device(a, k++) && ... && true);
    if (!ok) return;
    F g = f;
    launch(c, [g, a...]() { g(a...); }, (const void *)&typeid(F));
  }
};
template <class F>
launcher<F> kernel(launch_cfg c, F f) {
  return launcher<F>{c, f};
}
template <typename T>
T shfl(unsigned mask, T v, int src) {
  static_assert(sizeof(T) <= 8, "emulated shuffles move at most 8 bytes");
  T r;
  warp_exchange(mask, &v, &r, sizeof(T), src);
  return r;
}
} // namespace evo_emu

static inline void __syncthreads() { evo_emu::sync_block(); }
static inline void __syncwarp(unsigned = 0xffffffffu) {}
template <typename T>
static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  const int lane = evo_emu::lane_id();
  return evo_emu::shfl(mask, v, (lane & ~(width - 1)) + (src & (width - 1)));
}
template <typename T>
static inline T __shfl_xor_sync(unsigned mask, T v, int m, int width = 32) {
  const int lane = evo_emu::lane_id();
  const int s = lane ^ m;
  return evo_emu::shfl(mask, v, s < ((lane & ~(width - 1)) + width) ? s : lane);
}
template <typename T>
static inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32) {
  const int lane = evo_emu::lane_id(), s = lane + (int)d;
  return evo_emu::shfl(mask, v, s < ((lane & ~(width - 1)) + width) ? s : lane);
}
template <typename T>
static inline T __ldg(const T *p) { return *p; }
/* CUDA's integer min/max overloads */
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline long min(long a, long b) { return a < b ? a : b; }
static inline long max(long a, long b) { return a > b ? a : b; }
static inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
static inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
/* nvcc's C++ overload (cuda_runtime.h has it only for nvcc) */
template <class T>
static inline cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *a, T *f) {
  return cudaFuncGetAttributes(a, (const void *)f);
}
static inline uint32_t __umulhi(uint32_t a, uint32_t b) { return (uint32_t)(((uint64_t)a * b) >> 32); }

#endif
