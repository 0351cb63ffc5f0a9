/* Maps each op to its CUDA kernel family (as core/cpu/cpu_dispatch.c does for the CPU), says which nodes the
   backend runs, and how much scratch a node needs. */
#include "cuda_impl.h"

static size_t node_bytes(const evo_node_t *n) {
  return (size_t)evo_shape_numel(n->ndim, n->shape) * evo_dtype_size(n->dtype);
}

/* Identity ops: the jit aliases them and never asks, but a node run on its own (tests) is a stream-ordered copy. */
static evo_status identity(evo_cuda_ctx *c, const evo_kernel_args *a) {
  return evo_cuda_check(cudaMemcpyAsync(a->dst, a->src[0], node_bytes(a->node), cudaMemcpyDeviceToDevice, c->stream),
                        evo_op_name(a->node->op));
}

evo_status evo_cuda_run(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *n = a->node;
  if (n->op == EVO_OP_INPUT || node_bytes(n) == 0) return EVO_STATUS_OK; /* nothing to write: launch nothing */
  if (n->op == EVO_OP_FUSED_MATMUL_BIAS_ACT) return evo_cuda_mm_bias_act(c, a);
  if (n->op == EVO_OP_FUSED_BINARY_UNARY) return evo_cuda_fused_binary_unary(c, a);
  switch (n->op) {
  case EVO_OP_INPUT: return EVO_STATUS_OK;
  case EVO_OP_RESHAPE: case EVO_OP_STOP_GRADIENT: return identity(c, a);
  case EVO_OP_NEG: case EVO_OP_ABS: case EVO_OP_EXP: case EVO_OP_LOG: case EVO_OP_SQRT: case EVO_OP_TANH:
  case EVO_OP_SIGMOID: case EVO_OP_RELU: case EVO_OP_SIN: case EVO_OP_COS: case EVO_OP_SQUARE: case EVO_OP_SIGN:
    return evo_cuda_unary(c, a);
  case EVO_OP_ADD: case EVO_OP_SUB: case EVO_OP_MUL: case EVO_OP_DIV: case EVO_OP_POW: case EVO_OP_MAX:
  case EVO_OP_MIN:
    return evo_cuda_binary(c, a);
  case EVO_OP_LT: case EVO_OP_LE: case EVO_OP_GT: case EVO_OP_GE: case EVO_OP_EQ: case EVO_OP_NE:
    return evo_cuda_compare(c, a);
  case EVO_OP_WHERE: return evo_cuda_where(c, a);
  case EVO_OP_CLIP: return evo_cuda_clip(c, a);
  case EVO_OP_CAST: return evo_cuda_cast(c, a);
  case EVO_OP_REDUCE_SUM: case EVO_OP_REDUCE_MAX: case EVO_OP_REDUCE_MIN: case EVO_OP_LOGSUMEXP:
    return evo_cuda_reduce(c, a);
  case EVO_OP_ARGMAX: return evo_cuda_argmax(c, a);
  case EVO_OP_SOFTMAX: case EVO_OP_LOG_SOFTMAX: return evo_cuda_softmax(c, a);
  case EVO_OP_MATMUL: return evo_cuda_matmul(c, a);
  case EVO_OP_CONV2D: case EVO_OP_CONV2D_GRAD_INPUT: case EVO_OP_CONV2D_GRAD_KERNEL: return evo_cuda_conv2d(c, a);
  case EVO_OP_MAX_POOL2D: case EVO_OP_MAX_POOL2D_GRAD: case EVO_OP_AVG_POOL2D: case EVO_OP_AVG_POOL2D_GRAD:
  case EVO_OP_MAX_POOL2D_GATHER:
    return evo_cuda_pool2d(c, a);
  case EVO_OP_CONST: case EVO_OP_TRANSPOSE: case EVO_OP_BROADCAST_TO: case EVO_OP_CONCAT: case EVO_OP_SLICE:
  case EVO_OP_PAD: case EVO_OP_TAKE_ALONG_AXIS: case EVO_OP_SCATTER_ADD_ALONG_AXIS: case EVO_OP_ONE_HOT:
    return evo_cuda_shape_op(c, a);
  case EVO_OP_RNG_UNIFORM: case EVO_OP_RNG_NORMAL: case EVO_OP_RNG_TRUNC_NORMAL: return evo_cuda_rng(c, a);
  case EVO_OP_COUNT: break;
  }
  return evo_error(EVO_STATUS_UNSUPPORTED, "cuda: no kernel for op %s", evo_op_name(n->op));
}

size_t evo_cuda_scratch_bytes(const evo_node_t *node, const evo_node_t *const *in) {
  switch (node->op) {
  case EVO_OP_MATMUL: return evo_cuda_matmul_scratch(node, in);
  case EVO_OP_REDUCE_SUM: case EVO_OP_REDUCE_MAX: case EVO_OP_REDUCE_MIN: case EVO_OP_LOGSUMEXP:
    return evo_cuda_reduce_scratch(node, in);
  case EVO_OP_CONV2D: case EVO_OP_CONV2D_GRAD_INPUT: case EVO_OP_CONV2D_GRAD_KERNEL:
    return evo_cuda_conv2d_scratch(node, in);
  default: return 0;
  }
}

/* The builders already pin each op's dtypes; the kernels cover those for the 1- and 4-byte dtypes. f64/i64 are
   host-side state with no kernels on any backend. */
static int device_dtype(evo_dtype t) { return t == EVO_F32 || t == EVO_I32 || t == EVO_U8 || t == EVO_U32; }

int evo_cuda_supports(const evo_node_t *node, const evo_node_t *const *in) {
  if (node->op == EVO_OP_FUSED_MATMUL_BIAS_ACT) return evo_cuda_mm_bias_act_supported(node, in);
  if (node->op == EVO_OP_FUSED_BINARY_UNARY)
    return evo_cuda_fused_pair_supported(node) && in[0] && in[1] && in[0]->dtype == EVO_F32 && in[1]->dtype == EVO_F32;
  if ((unsigned)node->op >= EVO_OP_COUNT || !device_dtype(node->dtype)) return 0;
  for (int k = 0; k < node->n_in; k++)
    if (!in[k] || !device_dtype(in[k]->dtype)) return 0;
  return 1;
}
