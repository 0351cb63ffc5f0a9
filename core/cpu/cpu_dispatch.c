/* Maps each op to its CPU kernel family. */
#include "cpu_kernels.h"

evo_status evo_cpu_run(const evo_kernel_args *a) {
  if (a->node->op == EVO_OP_FUSED_BINARY_UNARY) return evo_cpu_fused_binary_unary(a);
  switch (a->node->op) {
  case EVO_OP_INPUT: return EVO_STATUS_OK; /* inputs are bound, not computed */
  case EVO_OP_NEG: case EVO_OP_ABS: case EVO_OP_EXP: case EVO_OP_LOG: case EVO_OP_SQRT: case EVO_OP_TANH:
  case EVO_OP_SIGMOID: case EVO_OP_RELU: case EVO_OP_SIN: case EVO_OP_COS: case EVO_OP_SQUARE: case EVO_OP_SIGN:
  case EVO_OP_STOP_GRADIENT:
    return evo_cpu_unary(a);
  case EVO_OP_ADD: case EVO_OP_SUB: case EVO_OP_MUL: case EVO_OP_DIV: case EVO_OP_POW: case EVO_OP_MAX:
  case EVO_OP_MIN:
    return evo_cpu_binary(a);
  case EVO_OP_LT: case EVO_OP_LE: case EVO_OP_GT: case EVO_OP_GE: case EVO_OP_EQ: case EVO_OP_NE:
    return evo_cpu_compare(a);
  case EVO_OP_WHERE: return evo_cpu_where(a);
  case EVO_OP_CLIP: return evo_cpu_clip(a);
  case EVO_OP_CAST: return evo_cpu_cast(a);
  case EVO_OP_REDUCE_SUM: case EVO_OP_REDUCE_MAX: case EVO_OP_REDUCE_MIN: case EVO_OP_LOGSUMEXP:
    return evo_cpu_reduce(a);
  case EVO_OP_ARGMAX: return evo_cpu_argmax(a);
  case EVO_OP_SOFTMAX: case EVO_OP_LOG_SOFTMAX: return evo_cpu_softmax(a);
  case EVO_OP_MATMUL: return evo_cpu_matmul(a);
  case EVO_OP_CONV2D: case EVO_OP_CONV2D_GRAD_INPUT: case EVO_OP_CONV2D_GRAD_KERNEL: return evo_cpu_conv2d(a);
  case EVO_OP_MAX_POOL2D: case EVO_OP_MAX_POOL2D_GRAD: case EVO_OP_AVG_POOL2D: case EVO_OP_AVG_POOL2D_GRAD:
  case EVO_OP_MAX_POOL2D_GATHER:
    return evo_cpu_pool2d(a);
  case EVO_OP_CONST: case EVO_OP_RESHAPE: case EVO_OP_TRANSPOSE: case EVO_OP_BROADCAST_TO: case EVO_OP_CONCAT:
  case EVO_OP_SLICE: case EVO_OP_PAD: case EVO_OP_TAKE_ALONG_AXIS: case EVO_OP_SCATTER_ADD_ALONG_AXIS:
  case EVO_OP_ONE_HOT:
    return evo_cpu_shape_op(a);
  case EVO_OP_RNG_UNIFORM: case EVO_OP_RNG_NORMAL: case EVO_OP_RNG_TRUNC_NORMAL: return evo_cpu_rng(a);
  case EVO_OP_COUNT: break;
  }
  return evo_error(EVO_STATUS_UNSUPPORTED, "cpu: no kernel for op %s", evo_op_name(a->node->op));
}

size_t evo_cpu_scratch_bytes(const evo_node_t *node, const evo_node_t *const *in) {
  switch (node->op) {
  case EVO_OP_MATMUL: return evo_cpu_matmul_scratch(node, in);
  case EVO_OP_CONV2D: case EVO_OP_CONV2D_GRAD_INPUT: case EVO_OP_CONV2D_GRAD_KERNEL:
    return evo_cpu_conv2d_scratch(node, in);
  default: return 0;
  }
}

int evo_cpu_supports(const evo_node_t *node, const evo_node_t *const *in) {
  (void)in;
  if (node->op == EVO_OP_FUSED_BINARY_UNARY)
    return evo_cpu_fusable_pair((evo_op)node->p.i[0], (evo_op)node->p.i[1]) && node->dtype == EVO_F32;
  return node->op < EVO_OP_COUNT;
}
