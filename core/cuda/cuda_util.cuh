/* Internal: helpers shared by the CUDA kernels (core/cuda/k_*.cu).
   - evo_cuda_index: a by-value shape with per-operand element strides (0 = broadcast), built on the host from the
     CPU iterator (cpu_util.h) so coalescing and broadcast rules are the CPU's own, and passed to kernels as a
     parameter; evo_cuda_offsets32/64 map a flat row-major index of the shape to each operand's element offset.
   - launch configuration for grid-stride loops, a 32-bit index test, and launch-error checks.
   The first part is plain C (no CUDA types) so a host-only test can check the index arithmetic; everything after
   `#ifdef __CUDACC__` is for the .cu files. */
#ifndef EVOC_CUDA_UTIL_CUH
#define EVOC_CUDA_UTIL_CUH
#include <stdint.h>
#include <string.h>

#include "../backend_impl.h"
#include "../cpu/cpu_util.h"

#include "../elementwise_math.h" /* EVO_HD (__host__ __device__ under nvcc) and the per-element math */

#define EVO_CUDA_MAX_OPS EVO_CPU_MAX_OPS

typedef struct {
  int ndim; /* >= 1 */
  int nop;
  int64_t shape[EVO_MAX_DIMS];
  int64_t stride[EVO_CUDA_MAX_OPS][EVO_MAX_DIMS]; /* element strides of each operand */
} evo_cuda_index;

/* Copies a (coalesced) CPU iterator's shape and strides; its base pointers are not used. */
static inline void evo_cuda_index_from_iter(evo_cuda_index *ix, const evo_cpu_iter *it) {
  memset(ix, 0, sizeof *ix);
  ix->ndim = it->ndim;
  ix->nop = it->nop;
  for (int d = 0; d < it->ndim; d++) {
    ix->shape[d] = it->shape[d];
    for (int k = 0; k < it->nop; k++) ix->stride[k][d] = it->stride[k][d];
  }
}

/* The common case: a contiguous output of `node`'s shape (operand 0) and `nin` inputs broadcast NumPy-style to
   it (operands 1..nin), coalesced. */
static inline void evo_cuda_index_bcast(evo_cuda_index *ix, const evo_kernel_args *a, int nin) {
  const evo_node_t *node = a->node;
  evo_cpu_iter it;
  evo_cpu_iter_init(&it, node->ndim, node->shape);
  evo_cpu_iter_add_contig(&it, NULL, 1);
  for (int k = 0; k < nin; k++) evo_cpu_iter_add_bcast(&it, NULL, 1, a->in[k]->ndim, a->in[k]->shape);
  evo_cpu_iter_coalesce(&it);
  evo_cuda_index_from_iter(ix, &it);
}

/* 1 when every operand steps through the index with stride 1 in one dim: a flat loop will do. */
static inline int evo_cuda_index_is_flat(const evo_cuda_index *ix) {
  if (ix->ndim != 1) return 0;
  for (int k = 0; k < ix->nop; k++)
    if (ix->stride[k][0] != 1) return 0;
  return 1;
}

/* Largest element offset any operand reaches (+1), to decide whether 32-bit offsets suffice. */
static inline int64_t evo_cuda_index_span(const evo_cuda_index *ix) {
  int64_t span = 1;
  for (int k = 0; k < ix->nop; k++) {
    int64_t last = 0;
    for (int d = 0; d < ix->ndim; d++) last += (ix->shape[d] - 1) * ix->stride[k][d];
    span = last + 1 > span ? last + 1 : span;
  }
  return span;
}

/* flat (< the shape's numel) -> off[k] for every operand (off has EVO_CUDA_MAX_OPS entries). The 32-bit form
   avoids the slow 64-bit division on the device; use it when the element count and every operand's span fit in
   int32 (evo_cuda_fits32). The body is written once for both widths. */
#define EVO_CUDA_DEF_OFFSETS(NAME, I)                                                                          \
  static inline EVO_HD void NAME(const evo_cuda_index *ix, I flat, I *off) {                                   \
    for (int k = 0; k < EVO_CUDA_MAX_OPS; k++) off[k] = 0;                                                     \
    for (int d = ix->ndim - 1; d >= 0; d--) {                                                                  \
      I c = flat; /* the outermost dim needs no division: flat < shape[0] there */                            \
      if (d > 0) {                                                                                             \
        const I n = (I)ix->shape[d], q = flat / n;                                                             \
        c = flat - q * n;                                                                                      \
        flat = q;                                                                                              \
      }                                                                                                        \
      for (int k = 0; k < EVO_CUDA_MAX_OPS; k++)                                                               \
        if (k < ix->nop) off[k] += c * (I)ix->stride[k][d];                                                    \
    }                                                                                                          \
  }
EVO_CUDA_DEF_OFFSETS(evo_cuda_offsets32, uint32_t)
EVO_CUDA_DEF_OFFSETS(evo_cuda_offsets64, uint64_t)

static inline int evo_cuda_fits32(int64_t n) { return n >= 0 && n <= INT32_MAX; }

#ifdef __CUDACC__
#include "cuda_impl.h"

#define EVO_CUDA_BLOCK 256

/* Blocks for a grid-stride loop over n items with `block` threads: enough for a few waves of full occupancy,
   never more than the items need, at least 1. */
static inline unsigned evo_cuda_grid(const evo_cuda_ctx *c, int64_t n, int block) {
  const int64_t sms = c && c->sm_count > 0 ? c->sm_count : 108;
  const int64_t cap = sms * (2048 / block) * 4;
  int64_t blocks = (n + block - 1) / block;
  blocks = blocks < cap ? blocks : cap;
  return (unsigned)(blocks > 0 ? blocks : 1);
}

/* Returns the status of the launches just made (EVO_STATUS_BACKEND naming `what` on failure). */
#define EVO_CUDA_LAUNCHED(what) evo_cuda_check(cudaGetLastError(), (what))
/* Returns from the calling function when a launch (or any CUDA call whose error is sticky) failed. */
#define EVO_CUDA_TRY_LAUNCH(what)                                                                              \
  do {                                                                                                         \
    const evo_status st_ = EVO_CUDA_LAUNCHED(what);                                                            \
    if (st_ != EVO_STATUS_OK) return st_;                                                                      \
  } while (0)

/* Grid-stride loop over [0, n) with index type I. */
#define EVO_CUDA_FOR(I, i, n)                                                                                  \
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (I)gridDim.x * blockDim.x)

/* Typed overloads so templates can pick the width. */
static __device__ __forceinline__ void evo_cuda_offsets(const evo_cuda_index &ix, uint32_t flat, uint32_t *off) {
  evo_cuda_offsets32(&ix, flat, off);
}
static __device__ __forceinline__ void evo_cuda_offsets(const evo_cuda_index &ix, uint64_t flat, uint64_t *off) {
  evo_cuda_offsets64(&ix, flat, off);
}
/* The unary ops' per-element math as a functor (the op is a template argument, so the switch folds away); used
   by the unary kernels and the fused matmul epilogue. */
template <evo_op OP>
struct evo_cuda_unary_fn {
  __device__ float operator()(float x) const {
    switch (OP) {
    case EVO_OP_NEG: return -x;
    case EVO_OP_ABS: return fabsf(x);
    case EVO_OP_EXP: return evo_expf(x);
    case EVO_OP_LOG: return logf(x);
    case EVO_OP_SQRT: return sqrtf(x);
    case EVO_OP_TANH: return evo_tanhf(x);
    case EVO_OP_SIGMOID: return evo_sigmoidf(x);
    case EVO_OP_RELU: return evo_reluf(x);
    case EVO_OP_SIN: return sinf(x);
    case EVO_OP_COS: return cosf(x);
    case EVO_OP_SQUARE: return x * x;
    default: return evo_signf(x); /* EVO_OP_SIGN */
    }
  }
};

#endif /* __CUDACC__ */

#endif
