/* Internal: the CUDA backend's context and its kernel families. One .cu file per op family (k_*.cu) implements the
   functions below; cuda_dispatch.c maps ops to them exactly as core/cpu/cpu_dispatch.c does for the CPU.
   Contract for every kernel function:
   - buffers in a->src/a->dst/a->scratch are device pointers; shapes and params come from the host-side nodes;
   - work is enqueued on ctx->stream only (no cudaDeviceSynchronize, no cudaMalloc, no host<->device copies), so a
     whole plan can be captured into a CUDA Graph;
   - launch errors are checked with cudaGetLastError() and returned as EVO_STATUS_BACKEND with a message;
   - an unsupported dtype returns EVO_STATUS_UNSUPPORTED (the supports function below must refuse it first);
   - results equal the CPU kernels' up to float rounding (per-element math comes from core/elementwise_math.h and
     core/rng_math.h, which are __host__ __device__). */
#ifndef EVOC_CUDA_IMPL_H
#define EVOC_CUDA_IMPL_H
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include "../backend_impl.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int device;
  cudaStream_t stream;
  cublasHandle_t cublas;
  int sm_count;
  char name[128];
} evo_cuda_ctx;

/* Turns a CUDA error into a status with "cuda: <what>: <cudaGetErrorString>" (cuda_backend.c). */
evo_status evo_cuda_check(cudaError_t e, const char *what);
evo_status evo_cublas_check(cublasStatus_t s, const char *what);

/* k_elementwise.cu: unary, binary, compare, where, clip, cast, and the plan-only FUSED_BINARY_UNARY (ops.h) for
   the pairs _supported names */
evo_status evo_cuda_unary(evo_cuda_ctx *c, const evo_kernel_args *a);
evo_status evo_cuda_binary(evo_cuda_ctx *c, const evo_kernel_args *a);
evo_status evo_cuda_compare(evo_cuda_ctx *c, const evo_kernel_args *a);
evo_status evo_cuda_where(evo_cuda_ctx *c, const evo_kernel_args *a);
evo_status evo_cuda_clip(evo_cuda_ctx *c, const evo_kernel_args *a);
evo_status evo_cuda_cast(evo_cuda_ctx *c, const evo_kernel_args *a);
int evo_cuda_fused_pair_supported(const evo_node_t *node);
evo_status evo_cuda_fused_binary_unary(evo_cuda_ctx *c, const evo_kernel_args *a);
/* k_reduce.cu: REDUCE_SUM/MAX/MIN, LOGSUMEXP, ARGMAX, SOFTMAX, LOG_SOFTMAX */
evo_status evo_cuda_reduce(evo_cuda_ctx *c, const evo_kernel_args *a);
evo_status evo_cuda_argmax(evo_cuda_ctx *c, const evo_kernel_args *a);
evo_status evo_cuda_softmax(evo_cuda_ctx *c, const evo_kernel_args *a);
/* Scratch a REDUCE_SUM/MAX/MIN or LOGSUMEXP node wants (few outputs, long runs: split partials); 0 for other
   ops. Given less, the kernel still runs correctly with one thread group per output. */
size_t evo_cuda_reduce_scratch(const evo_node_t *node, const evo_node_t *const *in);
/* k_shape.cu: TRANSPOSE, BROADCAST_TO, CONCAT, SLICE, PAD, TAKE_ALONG_AXIS, SCATTER_ADD_ALONG_AXIS, ONE_HOT
   (RESHAPE and STOP_GRADIENT are aliases in the jit; CONST is uploaded at compile time, but a plain copy is
   accepted too). */
evo_status evo_cuda_shape_op(evo_cuda_ctx *c, const evo_kernel_args *a);
/* k_rng.cu: RNG_UNIFORM/NORMAL/TRUNC_NORMAL; the same Philox4x32-10 stream and transforms as core/cpu/k_rng.c. */
evo_status evo_cuda_rng(evo_cuda_ctx *c, const evo_kernel_args *a);
/* k_matmul.cu: cuBLAS strided-batched SGEMM over loop dims (broadcast loop dims by stride 0 or per-batch calls). */
evo_status evo_cuda_matmul(evo_cuda_ctx *c, const evo_kernel_args *a);
size_t evo_cuda_matmul_scratch(const evo_node_t *node, const evo_node_t *const *in);
/* k_matmul_epi.cu: EVO_OP_FUSED_MATMUL_BIAS_ACT (ops.h) for small row counts; _supported says where. */
int evo_cuda_mm_bias_act_supported(const evo_node_t *node, const evo_node_t *const *in);
evo_status evo_cuda_mm_bias_act(evo_cuda_ctx *c, const evo_kernel_args *a);
/* k_conv.cu: CONV2D, CONV2D_GRAD_INPUT, CONV2D_GRAD_KERNEL with per-member (loop-dim) weights. */
evo_status evo_cuda_conv2d(evo_cuda_ctx *c, const evo_kernel_args *a);
size_t evo_cuda_conv2d_scratch(const evo_node_t *node, const evo_node_t *const *in);
/* k_pool.cu: MAX_POOL2D(+_GRAD), AVG_POOL2D(+_GRAD) */
evo_status evo_cuda_pool2d(evo_cuda_ctx *c, const evo_kernel_args *a);

/* cudaSuccess when the build holds kernel code for the current device (cuda_probe.cu). */
cudaError_t evo_cuda_probe_image(void);

/* Which (op, dtype) pairs each family handles; the backend refuses the rest at jit time. */
int evo_cuda_supports(const evo_node_t *node, const evo_node_t *const *in);
/* cuda_dispatch.c: runs one node through its family (enqueued on c->stream), and the scratch it needs. */
evo_status evo_cuda_run(evo_cuda_ctx *c, const evo_kernel_args *a);
size_t evo_cuda_scratch_bytes(const evo_node_t *node, const evo_node_t *const *in);

#ifdef __cplusplus
}
#endif
#endif
