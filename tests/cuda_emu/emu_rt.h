/* Internal to the emulator's runtime and cuBLAS: recorded work and the pointer registry. */
#ifndef EVOC_CUDA_EMU_RT_H
#define EVOC_CUDA_EMU_RT_H
#include <cuda_runtime.h>
#include <functional>

namespace evo_emu {
enum op_kind { OP_KERNEL, OP_COPY, OP_MEMSET, OP_GEMM };
struct op {
  op_kind kind;
  const void *key = nullptr; /* kernels: which kernel (graph updates keep the topology only if these match) */
  std::function<cudaError_t()> run;
};
/* Runs o on s now, or records it while s captures; errors go to cudaGetLastError too. */
cudaError_t enqueue(cudaStream_t s, op o);
/* Whether [p, p + n) lies in one live device allocation. */
bool is_device_ptr(const void *p, size_t n);
} // namespace evo_emu
#endif
