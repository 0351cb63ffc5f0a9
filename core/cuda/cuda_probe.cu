/* Checks that this build holds kernel code the device can run (the build targets CMAKE_CUDA_ARCHITECTURES only, so
   an older GPU would otherwise fail at the first launch of every kernel instead of at backend creation). */
#include "cuda_impl.h"

static __global__ void evo_cuda_probe_kernel(int *x) {
  if (x) *x = 1;
}

extern "C" cudaError_t evo_cuda_probe_image(void) {
  cudaFuncAttributes attr;
  return cudaFuncGetAttributes(&attr, evo_cuda_probe_kernel);
}
