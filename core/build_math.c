/* Public builders for elementwise math, comparisons, reductions, softmax and losses. */
#include <math.h>
#include <string.h>
#include "graph_impl.h"

static evo_node unary(evo_graph *g, evo_op op, evo_node x) {
  return evo_graph_emit(g, op, EVO_F32, 1, &x, NULL, 0, NULL);
}
static evo_node binary(evo_graph *g, evo_op op, evo_node a, evo_node b) {
  evo_node in[2] = {a, b};
  return evo_graph_emit(g, op, EVO_F32, 2, in, NULL, 0, NULL);
}

evo_node evo_neg(evo_graph *g, evo_node x) { return unary(g, EVO_OP_NEG, x); }
evo_node evo_abs(evo_graph *g, evo_node x) { return unary(g, EVO_OP_ABS, x); }
evo_node evo_exp(evo_graph *g, evo_node x) { return unary(g, EVO_OP_EXP, x); }
evo_node evo_log(evo_graph *g, evo_node x) { return unary(g, EVO_OP_LOG, x); }
evo_node evo_sqrt(evo_graph *g, evo_node x) { return unary(g, EVO_OP_SQRT, x); }
evo_node evo_tanh(evo_graph *g, evo_node x) { return unary(g, EVO_OP_TANH, x); }
evo_node evo_sigmoid(evo_graph *g, evo_node x) { return unary(g, EVO_OP_SIGMOID, x); }
evo_node evo_relu(evo_graph *g, evo_node x) { return unary(g, EVO_OP_RELU, x); }
evo_node evo_sin(evo_graph *g, evo_node x) { return unary(g, EVO_OP_SIN, x); }
evo_node evo_cos(evo_graph *g, evo_node x) { return unary(g, EVO_OP_COS, x); }
evo_node evo_square(evo_graph *g, evo_node x) { return unary(g, EVO_OP_SQUARE, x); }
evo_node evo_stop_gradient(evo_graph *g, evo_node x) { return unary(g, EVO_OP_STOP_GRADIENT, x); }

evo_node evo_add(evo_graph *g, evo_node a, evo_node b) { return binary(g, EVO_OP_ADD, a, b); }
evo_node evo_sub(evo_graph *g, evo_node a, evo_node b) { return binary(g, EVO_OP_SUB, a, b); }
evo_node evo_mul(evo_graph *g, evo_node a, evo_node b) { return binary(g, EVO_OP_MUL, a, b); }
evo_node evo_div(evo_graph *g, evo_node a, evo_node b) { return binary(g, EVO_OP_DIV, a, b); }
evo_node evo_pow(evo_graph *g, evo_node a, evo_node b) { return binary(g, EVO_OP_POW, a, b); }
evo_node evo_maximum(evo_graph *g, evo_node a, evo_node b) { return binary(g, EVO_OP_MAX, a, b); }
evo_node evo_minimum(evo_graph *g, evo_node a, evo_node b) { return binary(g, EVO_OP_MIN, a, b); }
evo_node evo_add_scalar(evo_graph *g, evo_node x, float s) { return evo_add(g, x, evo_scalar(g, s)); }
evo_node evo_mul_scalar(evo_graph *g, evo_node x, float s) { return evo_mul(g, x, evo_scalar(g, s)); }

static evo_node compare(evo_graph *g, evo_op op, evo_node a, evo_node b) {
  evo_node in[2] = {a, b};
  return evo_graph_emit(g, op, EVO_U8, 2, in, NULL, 0, NULL);
}
evo_node evo_lt(evo_graph *g, evo_node a, evo_node b) { return compare(g, EVO_OP_LT, a, b); }
evo_node evo_le(evo_graph *g, evo_node a, evo_node b) { return compare(g, EVO_OP_LE, a, b); }
evo_node evo_gt(evo_graph *g, evo_node a, evo_node b) { return compare(g, EVO_OP_GT, a, b); }
evo_node evo_ge(evo_graph *g, evo_node a, evo_node b) { return compare(g, EVO_OP_GE, a, b); }
evo_node evo_eq(evo_graph *g, evo_node a, evo_node b) { return compare(g, EVO_OP_EQ, a, b); }
evo_node evo_ne(evo_graph *g, evo_node a, evo_node b) { return compare(g, EVO_OP_NE, a, b); }

evo_node evo_where(evo_graph *g, evo_node cond, evo_node a, evo_node b) {
  evo_node in[3] = {cond, a, b};
  return evo_graph_emit(g, EVO_OP_WHERE, EVO_F32, 3, in, NULL, 0, NULL);
}

evo_node evo_clip(evo_graph *g, evo_node x, float lo, float hi) {
  evo_op_params p = {.f = {lo, hi}};
  return evo_graph_emit(g, EVO_OP_CLIP, EVO_F32, 1, &x, &p, 0, NULL);
}

evo_node evo_cast(evo_graph *g, evo_node x, evo_dtype to) {
  return evo_graph_emit(g, EVO_OP_CAST, to, 1, &x, NULL, 0, NULL);
}

/* Turns a list of (possibly negative) axes into a bitmask; naxes == 0 means all. -1 on a bad axis. */
static int64_t axes_mask(evo_graph *g, evo_node x, int naxes, const int *axes) {
  if (!evo_graph_check_ids(g, 1, &x)) return -1;
  int nd = g->nodes[x].ndim;
  if (naxes == 0) return nd ? (int64_t)((1u << nd) - 1) : 0;
  uint32_t m = 0;
  for (int i = 0; i < naxes; i++) {
    int a = axes[i] < 0 ? axes[i] + nd : axes[i];
    if (a < 0 || a >= nd) {
      evo_graph_fail(g, "reduction: axis %d out of range for rank %d", axes[i], nd);
      return -1;
    }
    m |= 1u << a;
  }
  return m;
}

static evo_node reduce(evo_graph *g, evo_op op, evo_node x, int naxes, const int *axes, bool keepdims) {
  int64_t m = axes_mask(g, x, naxes, axes);
  if (m < 0) return EVO_NODE_INVALID;
  if (m == 0) return x; /* a rank-0 input: nothing to reduce */
  evo_op_params p = {.axes = (uint32_t)m, .keepdims = keepdims};
  return evo_graph_emit(g, op, EVO_F32, 1, &x, &p, 0, NULL);
}

evo_node evo_sum(evo_graph *g, evo_node x, int naxes, const int *axes, bool keepdims) {
  return reduce(g, EVO_OP_REDUCE_SUM, x, naxes, axes, keepdims);
}
evo_node evo_max(evo_graph *g, evo_node x, int naxes, const int *axes, bool keepdims) {
  return reduce(g, EVO_OP_REDUCE_MAX, x, naxes, axes, keepdims);
}
evo_node evo_min(evo_graph *g, evo_node x, int naxes, const int *axes, bool keepdims) {
  return reduce(g, EVO_OP_REDUCE_MIN, x, naxes, axes, keepdims);
}
evo_node evo_logsumexp(evo_graph *g, evo_node x, int naxes, const int *axes, bool keepdims) {
  return reduce(g, EVO_OP_LOGSUMEXP, x, naxes, axes, keepdims);
}

evo_node evo_mean(evo_graph *g, evo_node x, int naxes, const int *axes, bool keepdims) {
  int64_t m = axes_mask(g, x, naxes, axes);
  if (m < 0) return EVO_NODE_INVALID;
  int64_t count = 1;
  for (int d = 0; d < g->nodes[x].ndim; d++)
    if (m & (1 << d)) count *= g->nodes[x].shape[d];
  return evo_mul_scalar(g, evo_sum(g, x, naxes, axes, keepdims), (float)(1.0 / (double)count));
}

static int norm_axis(evo_graph *g, evo_node x, int axis, const char *what) {
  if (!evo_graph_check_ids(g, 1, &x)) return -1;
  int nd = g->nodes[x].ndim, a = axis < 0 ? axis + nd : axis;
  if (a < 0 || a >= nd) {
    evo_graph_fail(g, "%s: axis %d out of range for rank %d", what, axis, nd);
    return -1;
  }
  return a;
}

evo_node evo_argmax(evo_graph *g, evo_node x, int axis, bool keepdims) {
  int a = norm_axis(g, x, axis, "argmax");
  if (a < 0) return EVO_NODE_INVALID;
  evo_op_params p = {.axis = a, .keepdims = keepdims};
  return evo_graph_emit(g, EVO_OP_ARGMAX, EVO_I32, 1, &x, &p, 0, NULL);
}

static evo_node softmax_like(evo_graph *g, evo_op op, evo_node x, int axis) {
  int a = norm_axis(g, x, axis, evo_op_name(op));
  if (a < 0) return EVO_NODE_INVALID;
  evo_op_params p = {.axis = a};
  return evo_graph_emit(g, op, EVO_F32, 1, &x, &p, 0, NULL);
}
evo_node evo_softmax(evo_graph *g, evo_node x, int axis) { return softmax_like(g, EVO_OP_SOFTMAX, x, axis); }
evo_node evo_log_softmax(evo_graph *g, evo_node x, int axis) { return softmax_like(g, EVO_OP_LOG_SOFTMAX, x, axis); }

evo_node evo_softmax_cross_entropy(evo_graph *g, evo_node logits, evo_node labels) {
  evo_node ids[2] = {logits, labels};
  if (!evo_graph_check_ids(g, 2, ids)) return EVO_NODE_INVALID;
  const evo_node_t *l = &g->nodes[logits], *y = &g->nodes[labels];
  if (l->ndim < 1 || y->ndim != l->ndim - 1 || y->dtype != EVO_I32)
    return evo_graph_fail(g, "softmax_cross_entropy: logits [..., C] need i32 labels [...]");
  for (int d = 0; d < y->ndim; d++)
    if (y->shape[d] != l->shape[d]) return evo_graph_fail(g, "softmax_cross_entropy: label dim %d differs", d);
  evo_node lsm = evo_log_softmax(g, logits, -1);
  evo_node picked = evo_take_along_axis(g, lsm, evo_expand_dims(g, labels, -1), -1);
  return evo_neg(g, evo_squeeze(g, picked, -1));
}
