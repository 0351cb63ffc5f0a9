/* Elementwise CUDA kernels: unary, binary, compare, where, clip, cast, with the CPU kernels' dtypes and per-element
   math (elementwise_math.h). One grid-stride kernel template per arity; the op is a functor template argument so
   each op compiles to its own loop. Broadcasting ops coalesce their operands as the CPU iterator does: inputs of the
   node's shape give a flat loop, anything else an evo_cuda_index walk (32-bit offsets when they fit). */
#include <type_traits>
#include "cuda_util.cuh"
#include "../elementwise_math.h"

namespace {

/* ---- kernels ---- */

template <typename TD, typename TS, class F, typename I>
__global__ void k_map1(const TS *__restrict__ x, TD *__restrict__ y, I n, F f) {
  EVO_CUDA_FOR(I, i, n) y[i] = f(x[i]);
}

template <bool FLAT, typename TD, typename TA, typename TB, class F, typename I>
__global__ void k_zip2(evo_cuda_index ix, const TA *__restrict__ a, const TB *__restrict__ b, TD *__restrict__ d,
                       I n, F f) {
  EVO_CUDA_FOR(I, i, n) {
    if constexpr (FLAT) {
      d[i] = f(a[i], b[i]);
    } else {
      I off[EVO_CUDA_MAX_OPS];
      evo_cuda_offsets(ix, i, off);
      d[i] = f(a[off[1]], b[off[2]]);
    }
  }
}

template <bool FLAT, typename I>
__global__ void k_where(evo_cuda_index ix, const uint8_t *__restrict__ c, const float *__restrict__ a,
                        const float *__restrict__ b, float *__restrict__ d, I n) {
  EVO_CUDA_FOR(I, i, n) {
    if constexpr (FLAT) {
      d[i] = c[i] ? a[i] : b[i];
    } else {
      I off[EVO_CUDA_MAX_OPS];
      evo_cuda_offsets(ix, i, off);
      d[i] = c[off[1]] ? a[off[2]] : b[off[3]];
    }
  }
}

/* ---- launchers: pick 32- or 64-bit indices and the flat form ---- */

template <typename TD, typename TS, class F>
evo_status map1(evo_cuda_ctx *c, const void *x, void *y, int64_t n, F f, const char *what) {
  if (n <= 0) return EVO_STATUS_OK;
  const unsigned g = evo_cuda_grid(c, n, EVO_CUDA_BLOCK);
  if (evo_cuda_fits32(n))
    k_map1<<<g, EVO_CUDA_BLOCK, 0, c->stream>>>((const TS *)x, (TD *)y, (uint32_t)n, f);
  else
    k_map1<<<g, EVO_CUDA_BLOCK, 0, c->stream>>>((const TS *)x, (TD *)y, (uint64_t)n, f);
  return EVO_CUDA_LAUNCHED(what);
}

template <typename TD, typename TA, typename TB, class F>
evo_status zip2(evo_cuda_ctx *c, const evo_kernel_args *a, F f, const char *what) {
  const int64_t n = evo_cpu_numel(a->node->ndim, a->node->shape);
  if (n <= 0) return EVO_STATUS_OK;
  evo_cuda_index ix;
  evo_cuda_index_bcast(&ix, a, 2);
  const bool flat = evo_cuda_index_is_flat(&ix), small = evo_cuda_fits32(n) && evo_cuda_fits32(evo_cuda_index_span(&ix));
  const unsigned g = evo_cuda_grid(c, n, EVO_CUDA_BLOCK);
  const TA *pa = (const TA *)a->src[0];
  const TB *pb = (const TB *)a->src[1];
  TD *pd = (TD *)a->dst;
  if (flat && small)
    k_zip2<true><<<g, EVO_CUDA_BLOCK, 0, c->stream>>>(ix, pa, pb, pd, (uint32_t)n, f);
  else if (flat)
    k_zip2<true><<<g, EVO_CUDA_BLOCK, 0, c->stream>>>(ix, pa, pb, pd, (uint64_t)n, f);
  else if (small)
    k_zip2<false><<<g, EVO_CUDA_BLOCK, 0, c->stream>>>(ix, pa, pb, pd, (uint32_t)n, f);
  else
    k_zip2<false><<<g, EVO_CUDA_BLOCK, 0, c->stream>>>(ix, pa, pb, pd, (uint64_t)n, f);
  return EVO_CUDA_LAUNCHED(what);
}

/* ---- per-element functors (the op is a template argument, so each switch folds away; the unary ones are
   evo_cuda_unary_fn in cuda_util.cuh) ---- */

template <evo_op OP>
struct binary_fn {
  __device__ float operator()(float x, float y) const {
    switch (OP) {
    case EVO_OP_ADD: return x + y;
    case EVO_OP_SUB: return x - y;
    case EVO_OP_MUL: return x * y;
    case EVO_OP_DIV: return x / y;
    case EVO_OP_POW: return powf(x, y);
    case EVO_OP_MAX: return evo_maxf(x, y);
    default: return evo_minf(x, y); /* EVO_OP_MIN */
    }
  }
};

template <evo_op OP, typename T>
struct compare_fn {
  __device__ uint8_t operator()(T x, T y) const {
    switch (OP) {
    case EVO_OP_LT: return (uint8_t)(x < y);
    case EVO_OP_LE: return (uint8_t)(x <= y);
    case EVO_OP_GT: return (uint8_t)(x > y);
    case EVO_OP_GE: return (uint8_t)(x >= y);
    case EVO_OP_EQ: return (uint8_t)(x == y);
    default: return (uint8_t)(x != y); /* EVO_OP_NE */
    }
  }
};

struct clip_fn {
  float lo, hi;
  __device__ float operator()(float x) const { return evo_clipf(x, lo, hi); }
};

/* float -> integer saturates (elementwise_math.h); integer -> integer follows C's conversions, which nvcc (like
   GCC) defines as modulo 2^k for the narrowing and u32 -> i32 cases, matching the CPU's two's complement wrap. */
__device__ __forceinline__ uint8_t cast_f32(float x, uint8_t *) { return evo_f32_to_u8(x); }
__device__ __forceinline__ int32_t cast_f32(float x, int32_t *) { return evo_f32_to_i32(x); }
__device__ __forceinline__ uint32_t cast_f32(float x, uint32_t *) { return evo_f32_to_u32(x); }

template <typename TD, typename TS>
struct cast_fn {
  __device__ TD operator()(TS x) const {
    if constexpr (std::is_same<TS, float>::value && !std::is_same<TD, float>::value)
      return cast_f32(x, (TD *)nullptr);
    else
      return (TD)x;
  }
};

/* ---- dispatch helpers ---- */

template <evo_op OP>
evo_status unary1(evo_cuda_ctx *c, const evo_kernel_args *a, int64_t n) {
  return map1<float, float>(c, a->src[0], a->dst, n, evo_cuda_unary_fn<OP>(), "unary kernel");
}

template <evo_op OP>
evo_status binary1(evo_cuda_ctx *c, const evo_kernel_args *a) {
  return zip2<float, float, float>(c, a, binary_fn<OP>(), "binary kernel");
}

/* FUSED_BINARY_UNARY (ops.h): the unary of the binary, one pass over memory instead of two. */
template <evo_op B, evo_op U>
struct fused_fn {
  __device__ float operator()(float x, float y) const { return evo_cuda_unary_fn<U>()(binary_fn<B>()(x, y)); }
};

template <evo_op B>
evo_status fused1(evo_cuda_ctx *c, const evo_kernel_args *a) {
  switch ((evo_op)a->node->p.i[1]) {
  case EVO_OP_TANH: return zip2<float, float, float>(c, a, fused_fn<B, EVO_OP_TANH>(), "fused binary+unary kernel");
  case EVO_OP_RELU: return zip2<float, float, float>(c, a, fused_fn<B, EVO_OP_RELU>(), "fused binary+unary kernel");
  default:
    return zip2<float, float, float>(c, a, fused_fn<B, EVO_OP_SIGMOID>(), "fused binary+unary kernel");
  }
}

template <evo_op OP>
evo_status compare1(evo_cuda_ctx *c, const evo_kernel_args *a) {
  if (a->in[0]->dtype == EVO_F32) return zip2<uint8_t, float, float>(c, a, compare_fn<OP, float>(), "compare kernel");
  return zip2<uint8_t, int32_t, int32_t>(c, a, compare_fn<OP, int32_t>(), "compare kernel");
}

template <typename TD>
evo_status cast_to(evo_cuda_ctx *c, const evo_kernel_args *a, int64_t n) {
  switch (a->in[0]->dtype) {
  case EVO_F32: return map1<TD, float>(c, a->src[0], a->dst, n, cast_fn<TD, float>(), "cast kernel");
  case EVO_I32: return map1<TD, int32_t>(c, a->src[0], a->dst, n, cast_fn<TD, int32_t>(), "cast kernel");
  case EVO_U8: return map1<TD, uint8_t>(c, a->src[0], a->dst, n, cast_fn<TD, uint8_t>(), "cast kernel");
  case EVO_U32: return map1<TD, uint32_t>(c, a->src[0], a->dst, n, cast_fn<TD, uint32_t>(), "cast kernel");
  default: return evo_error(EVO_STATUS_UNSUPPORTED, "cuda cast: bad source dtype");
  }
}

int64_t node_numel(const evo_node_t *n) { return evo_cpu_numel(n->ndim, n->shape); }

evo_status copy_async(evo_cuda_ctx *c, void *dst, const void *src, size_t bytes, const char *what) {
  if (!bytes) return EVO_STATUS_OK;
  return evo_cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream), what);
}

} // namespace

extern "C" evo_status evo_cuda_unary(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  const int64_t n = node_numel(node);
  if (node->op == EVO_OP_STOP_GRADIENT) /* identity of any dtype */
    return copy_async(c, a->dst, a->src[0], (size_t)n * evo_dtype_size(node->dtype), "stop_gradient copy");
  if (node->dtype != EVO_F32 || a->in[0]->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda %s: f32 only", evo_op_name(node->op));
  switch (node->op) {
  case EVO_OP_NEG: return unary1<EVO_OP_NEG>(c, a, n);
  case EVO_OP_ABS: return unary1<EVO_OP_ABS>(c, a, n);
  case EVO_OP_EXP: return unary1<EVO_OP_EXP>(c, a, n);
  case EVO_OP_LOG: return unary1<EVO_OP_LOG>(c, a, n);
  case EVO_OP_SQRT: return unary1<EVO_OP_SQRT>(c, a, n);
  case EVO_OP_TANH: return unary1<EVO_OP_TANH>(c, a, n);
  case EVO_OP_SIGMOID: return unary1<EVO_OP_SIGMOID>(c, a, n);
  case EVO_OP_RELU: return unary1<EVO_OP_RELU>(c, a, n);
  case EVO_OP_SIN: return unary1<EVO_OP_SIN>(c, a, n);
  case EVO_OP_COS: return unary1<EVO_OP_COS>(c, a, n);
  case EVO_OP_SQUARE: return unary1<EVO_OP_SQUARE>(c, a, n);
  case EVO_OP_SIGN: return unary1<EVO_OP_SIGN>(c, a, n);
  default: return evo_error(EVO_STATUS_INTERNAL, "cuda unary: bad op %s", evo_op_name(node->op));
  }
}

extern "C" evo_status evo_cuda_binary(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  if (node->dtype != EVO_F32 || a->in[0]->dtype != EVO_F32 || a->in[1]->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda %s: f32 only", evo_op_name(node->op));
  switch (node->op) {
  case EVO_OP_ADD: return binary1<EVO_OP_ADD>(c, a);
  case EVO_OP_SUB: return binary1<EVO_OP_SUB>(c, a);
  case EVO_OP_MUL: return binary1<EVO_OP_MUL>(c, a);
  case EVO_OP_DIV: return binary1<EVO_OP_DIV>(c, a);
  case EVO_OP_POW: return binary1<EVO_OP_POW>(c, a);
  case EVO_OP_MAX: return binary1<EVO_OP_MAX>(c, a);
  case EVO_OP_MIN: return binary1<EVO_OP_MIN>(c, a);
  default: return evo_error(EVO_STATUS_INTERNAL, "cuda binary: bad op %s", evo_op_name(node->op));
  }
}

/* The pairs with a CUDA kernel: a bias or scale and the usual activations (a bound on the instantiations). */
extern "C" int evo_cuda_fused_pair_supported(const evo_node_t *node) {
  const evo_op b = (evo_op)node->p.i[0], u = (evo_op)node->p.i[1];
  return node->dtype == EVO_F32 && (b == EVO_OP_ADD || b == EVO_OP_SUB || b == EVO_OP_MUL) &&
         (u == EVO_OP_TANH || u == EVO_OP_RELU || u == EVO_OP_SIGMOID);
}

extern "C" evo_status evo_cuda_fused_binary_unary(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  if (!evo_cuda_fused_pair_supported(node) || a->in[0]->dtype != EVO_F32 || a->in[1]->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda fused binary+unary: pair %s, %s has no kernel",
                     evo_op_name((evo_op)node->p.i[0]), evo_op_name((evo_op)node->p.i[1]));
  switch ((evo_op)node->p.i[0]) {
  case EVO_OP_ADD: return fused1<EVO_OP_ADD>(c, a);
  case EVO_OP_SUB: return fused1<EVO_OP_SUB>(c, a);
  default: return fused1<EVO_OP_MUL>(c, a);
  }
}

extern "C" evo_status evo_cuda_compare(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  const evo_dtype t = a->in[0]->dtype;
  if (node->dtype != EVO_U8 || t != a->in[1]->dtype || (t != EVO_F32 && t != EVO_I32))
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda %s: needs (f32,f32) or (i32,i32) -> u8", evo_op_name(node->op));
  switch (node->op) {
  case EVO_OP_LT: return compare1<EVO_OP_LT>(c, a);
  case EVO_OP_LE: return compare1<EVO_OP_LE>(c, a);
  case EVO_OP_GT: return compare1<EVO_OP_GT>(c, a);
  case EVO_OP_GE: return compare1<EVO_OP_GE>(c, a);
  case EVO_OP_EQ: return compare1<EVO_OP_EQ>(c, a);
  case EVO_OP_NE: return compare1<EVO_OP_NE>(c, a);
  default: return evo_error(EVO_STATUS_INTERNAL, "cuda compare: bad op %s", evo_op_name(node->op));
  }
}

extern "C" evo_status evo_cuda_where(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  if (node->dtype != EVO_F32 || a->in[0]->dtype != EVO_U8 || a->in[1]->dtype != EVO_F32 ||
      a->in[2]->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda where: needs (u8, f32, f32)");
  const int64_t n = node_numel(node);
  if (n <= 0) return EVO_STATUS_OK;
  evo_cuda_index ix;
  evo_cuda_index_bcast(&ix, a, 3);
  const bool flat = evo_cuda_index_is_flat(&ix), small = evo_cuda_fits32(n) && evo_cuda_fits32(evo_cuda_index_span(&ix));
  const unsigned g = evo_cuda_grid(c, n, EVO_CUDA_BLOCK);
  const uint8_t *cond = (const uint8_t *)a->src[0];
  const float *x = (const float *)a->src[1], *y = (const float *)a->src[2];
  float *d = (float *)a->dst;
  if (flat && small)
    k_where<true><<<g, EVO_CUDA_BLOCK, 0, c->stream>>>(ix, cond, x, y, d, (uint32_t)n);
  else if (flat)
    k_where<true><<<g, EVO_CUDA_BLOCK, 0, c->stream>>>(ix, cond, x, y, d, (uint64_t)n);
  else if (small)
    k_where<false><<<g, EVO_CUDA_BLOCK, 0, c->stream>>>(ix, cond, x, y, d, (uint32_t)n);
  else
    k_where<false><<<g, EVO_CUDA_BLOCK, 0, c->stream>>>(ix, cond, x, y, d, (uint64_t)n);
  return EVO_CUDA_LAUNCHED("where kernel");
}

extern "C" evo_status evo_cuda_clip(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  if (node->dtype != EVO_F32 || a->in[0]->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda clip: f32 only");
  return map1<float, float>(c, a->src[0], a->dst, node_numel(node), clip_fn{node->p.f[0], node->p.f[1]},
                            "clip kernel");
}

extern "C" evo_status evo_cuda_cast(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  const evo_dtype to = node->dtype, from = a->in[0]->dtype;
  const int64_t n = node_numel(node);
  if (to == from) return copy_async(c, a->dst, a->src[0], (size_t)n * evo_dtype_size(to), "cast copy");
  switch (to) {
  case EVO_F32: return cast_to<float>(c, a, n);
  case EVO_I32: return cast_to<int32_t>(c, a, n);
  case EVO_U8: return cast_to<uint8_t>(c, a, n);
  case EVO_U32: return cast_to<uint32_t>(c, a, n);
  default: return evo_error(EVO_STATUS_UNSUPPORTED, "cuda cast: bad target dtype");
  }
}
