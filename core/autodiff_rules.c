/* Backward rules: one case per op, each emitting ordinary ops (public builders, or evo_graph_emit for the grad ops
   whose output shape is not implied by their inputs), so gradients run on every backend and compose with vmap.
   Node structs and shapes are copied before emitting: emitting may move the node array. */
#include <string.h>
#include "autodiff_impl.h"

bool evo_ad_differentiable(const evo_node_t *n) {
  switch (n->op) {
  case EVO_OP_INPUT: case EVO_OP_CONST: case EVO_OP_SIGN: case EVO_OP_STOP_GRADIENT:
  case EVO_OP_LT: case EVO_OP_LE: case EVO_OP_GT: case EVO_OP_GE: case EVO_OP_EQ: case EVO_OP_NE:
  case EVO_OP_ARGMAX: case EVO_OP_ONE_HOT:
  case EVO_OP_RNG_UNIFORM: case EVO_OP_RNG_NORMAL: case EVO_OP_RNG_TRUNC_NORMAL:
    return false;
  default:
    return n->dtype == EVO_F32; /* integer/u8 results (casts, shape ops on indices) carry no gradient */
  }
}

evo_node evo_ad_sum_to_shape(evo_graph *g, evo_node x, int ndim, const int64_t *shape) {
  if (x == EVO_NODE_INVALID) return x;
  int xn = g->nodes[x].ndim, lead = xn - ndim;
  int64_t xs[EVO_MAX_DIMS];
  memcpy(xs, g->nodes[x].shape, sizeof xs);
  if (lead < 0) return evo_graph_fail(g, "grad: internal error: adjoint has rank %d, value rank %d", xn, ndim);
  uint32_t axes = 0;
  for (int d = 0; d < xn; d++) {
    if (d < lead) {
      axes |= 1u << d;
    } else if (xs[d] != shape[d - lead]) {
      if (shape[d - lead] != 1)
        return evo_graph_fail(g, "grad: internal error: adjoint dim %d is %lld, value dim %lld", d,
                              (long long)xs[d], (long long)shape[d - lead]);
      axes |= 1u << d;
    }
  }
  if (axes) {
    evo_op_params p = {.axes = axes, .keepdims = 1};
    x = evo_graph_emit(g, EVO_OP_REDUCE_SUM, EVO_F32, 1, &x, &p, 0, NULL);
  }
  if (lead) x = evo_reshape(g, x, ndim, shape); /* drop the leading 1s that keepdims left */
  return x;
}

/* Adds a contribution to the adjoint of forward node x, first summing away the dims broadcasting added. */
static void acc(evo_ad_ctx *c, evo_node x, evo_node contrib) {
  if (!c->needs[x]) return;
  int64_t s[EVO_MAX_DIMS];
  int nd = c->g->nodes[x].ndim;
  memcpy(s, c->g->nodes[x].shape, sizeof s);
  contrib = evo_ad_sum_to_shape(c->g, contrib, nd, s);
  if (c->adj[x] == EVO_NODE_INVALID) {
    c->adj[x] = contrib;
    return;
  }
  const evo_node joined = evo_ad_join_pads(c->g, c->adj[x], contrib); /* disjoint slices: no full-size adds */
  c->adj[x] = joined != EVO_NODE_INVALID ? joined : evo_add(c->g, c->adj[x], contrib);
}

static evo_node scalar(evo_graph *g, float v) { return evo_scalar(g, v); }

static evo_node emit1(evo_graph *g, evo_op op, evo_node x, const evo_op_params *p, int nd, const int64_t *s) {
  return evo_graph_emit(g, op, EVO_F32, 1, &x, p, nd, s);
}

static evo_node emit2(evo_graph *g, evo_op op, evo_node a, evo_node b, const evo_op_params *p, int nd,
                      const int64_t *s) {
  evo_node in[2] = {a, b};
  return evo_graph_emit(g, op, EVO_F32, 2, in, p, nd, s);
}

/* where(cond, g, 0) / where(cond, 0, g): routes the adjoint by a mask. */
static evo_node pass_if(evo_graph *g, evo_node cond, evo_node gy) { return evo_where(g, cond, gy, scalar(g, 0.f)); }
static evo_node pass_unless(evo_graph *g, evo_node cond, evo_node gy) {
  return evo_where(g, cond, scalar(g, 0.f), gy);
}

/* Reshapes the result of a reduction over `axes` of x (kept or dropped) to the keepdims shape, so it broadcasts
   against x. */
static evo_node keepdims_of(evo_graph *g, evo_node r, const evo_node_t *x, uint32_t axes, bool kept) {
  if (kept) return r;
  int64_t s[EVO_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) s[d] = (axes & (1u << d)) ? 1 : x->shape[d];
  return evo_reshape(g, r, x->ndim, s);
}

/* Sum over one axis, keeping it. */
static evo_node sum_axis_keep(evo_graph *g, evo_node x, int axis) {
  evo_op_params p = {.axes = 1u << axis, .keepdims = 1};
  return emit1(g, EVO_OP_REDUCE_SUM, x, &p, 0, NULL);
}

/* Swaps the last two dims (matrix transpose of every loop element). */
static evo_node swap_t(evo_graph *g, evo_node x) {
  if (x == EVO_NODE_INVALID) return x;
  int nd = g->nodes[x].ndim, perm[EVO_MAX_DIMS];
  for (int d = 0; d < nd; d++) perm[d] = d;
  perm[nd - 2] = nd - 1;
  perm[nd - 1] = nd - 2;
  return evo_transpose(g, x, perm);
}

static void matmul_backward(evo_ad_ctx *c, const evo_node_t *n, evo_node gy) {
  evo_graph *g = c->g;
  evo_node a = n->in[0], b = n->in[1];
  if (c->needs[a]) acc(c, a, evo_matmul(g, gy, swap_t(g, b)));
  if (!c->needs[b]) return;
  const evo_node_t an = g->nodes[a], bn = g->nodes[b];
  if (bn.ndim == 2 && an.ndim > 2) {
    /* Shared weights against a batch of a: fold the loop dims into the rows, one GEMM instead of a batched
       GEMM followed by a sum over the batch. gy's loop dims equal a's here. */
    int64_t k = an.shape[an.ndim - 1], m = bn.shape[1];
    int64_t sa[2] = {-1, k}, sg[2] = {-1, m};
    acc(c, b, evo_matmul(g, swap_t(g, evo_reshape(g, a, 2, sa)), evo_reshape(g, gy, 2, sg)));
  } else {
    acc(c, b, evo_matmul(g, swap_t(g, a), gy));
  }
}

static void conv2d_backward(evo_ad_ctx *c, const evo_node_t *n, evo_node gy) {
  evo_graph *g = c->g;
  evo_node x = n->in[0], w = n->in[1];
  const evo_node_t xn = g->nodes[x], wn = g->nodes[w];
  if (c->needs[x]) {
    /* The input gradient has the output's loop dims (a broadcast of x's and w's) and x's core dims. */
    int64_t s[EVO_MAX_DIMS];
    int nl = n->ndim - 3;
    memcpy(s, n->shape, sizeof(int64_t) * (size_t)nl);
    memcpy(s + nl, xn.shape + xn.ndim - 3, sizeof(int64_t) * 3);
    acc(c, x, emit2(g, EVO_OP_CONV2D_GRAD_INPUT, gy, w, &n->p, nl + 3, s));
  }
  if (c->needs[w]) {
    /* The kernel gradient is emitted in w's own shape: the kernel sums over loop dims that w lacks. */
    evo_op_params p = n->p;
    p.i[6] = (int32_t)wn.shape[wn.ndim - 4];
    p.i[7] = (int32_t)wn.shape[wn.ndim - 3];
    acc(c, w, emit2(g, EVO_OP_CONV2D_GRAD_KERNEL, x, gy, &p, wn.ndim, wn.shape));
  }
}

/* Second derivatives of conv2d. Both gradient ops are bilinear (gx = J_x(w)^T gy, gw = J_w(x)^T gy with J the
   conv's Jacobians), so the adjoints of each are the family's other two ops with the same stride and padding:
     CONV2D_GRAD_INPUT(gy, w), adjoint G of x's shape:  gy: conv2d(G, w)   w: conv2d_grad_kernel(G, gy)
     CONV2D_GRAD_KERNEL(x, gy), adjoint G of w's shape: gy: conv2d(x, G)   x: conv2d_grad_input(gy, G) */
static void conv2d_grad_backward(evo_ad_ctx *c, const evo_node_t *n, evo_node G) {
  evo_graph *g = c->g;
  const evo_node a = n->in[0], b = n->in[1];
  const evo_op_params p = n->p; /* stride, padding and KH, KW (conv2d's builder sets them on every op) */
  if (n->op == EVO_OP_CONV2D_GRAD_INPUT) { /* a = gy, b = w */
    if (c->needs[a]) acc(c, a, emit2(g, EVO_OP_CONV2D, G, b, &p, 0, NULL));
    if (c->needs[b]) {
      const evo_node_t wn = g->nodes[b];
      acc(c, b, emit2(g, EVO_OP_CONV2D_GRAD_KERNEL, G, a, &p, wn.ndim, wn.shape));
    }
    return;
  }
  /* a = x, b = gy */
  if (c->needs[b]) acc(c, b, emit2(g, EVO_OP_CONV2D, a, G, &p, 0, NULL));
  if (c->needs[a]) {
    /* x's adjoint has gy's loop dims (the broadcast of x's and w's) and x's core dims; acc sums the extra ones */
    const evo_node_t xn = g->nodes[a], gyn = g->nodes[b];
    int64_t s[EVO_MAX_DIMS];
    const int nl = gyn.ndim - 3;
    memcpy(s, gyn.shape, sizeof(int64_t) * (size_t)nl);
    memcpy(s + nl, xn.shape + xn.ndim - 3, sizeof(int64_t) * 3);
    acc(c, a, emit2(g, EVO_OP_CONV2D_GRAD_INPUT, b, G, &p, nl + 3, s));
  }
}

static void take_backward(evo_ad_ctx *c, const evo_node_t *n, evo_node gy) {
  evo_graph *g = c->g;
  evo_node x = n->in[0], idx = n->in[1];
  int ax = n->p.axis;
  /* Scatter into the output's shape with x's length on the axis; broadcast dims of x are summed by acc. */
  int64_t s[EVO_MAX_DIMS];
  memcpy(s, n->shape, sizeof s);
  evo_node idxb = evo_broadcast_to(g, idx, n->ndim, s);
  s[ax] = g->nodes[x].shape[ax];
  evo_op_params p = {.axis = ax};
  evo_node in[2] = {gy, idxb};
  acc(c, x, evo_graph_emit(g, EVO_OP_SCATTER_ADD_ALONG_AXIS, EVO_F32, 2, in, &p, n->ndim, s));
}

evo_status evo_ad_backward(evo_ad_ctx *c, evo_node id, evo_node gy) {
  evo_graph *g = c->g;
  const evo_node_t n = g->nodes[id]; /* a copy: emitting below may move the node array */
  const evo_node_t x = g->nodes[n.in[0]];
  evo_node a = n.in[0], b = n.n_in > 1 ? n.in[1] : EVO_NODE_INVALID;
  switch (n.op) {
  case EVO_OP_NEG: acc(c, a, evo_neg(g, gy)); break;
  case EVO_OP_ABS: acc(c, a, evo_mul(g, gy, emit1(g, EVO_OP_SIGN, a, NULL, 0, NULL))); break;
  case EVO_OP_EXP: acc(c, a, evo_mul(g, gy, id)); break;
  case EVO_OP_LOG: acc(c, a, evo_div(g, gy, a)); break;
  case EVO_OP_SQRT: acc(c, a, evo_div(g, evo_mul_scalar(g, gy, 0.5f), id)); break;
  case EVO_OP_TANH: acc(c, a, evo_mul(g, gy, evo_sub(g, scalar(g, 1.f), evo_square(g, id)))); break;
  case EVO_OP_SIGMOID: acc(c, a, evo_mul(g, gy, evo_mul(g, id, evo_sub(g, scalar(g, 1.f), id)))); break;
  case EVO_OP_RELU: acc(c, a, pass_if(g, evo_gt(g, a, scalar(g, 0.f)), gy)); break;
  case EVO_OP_SIN: acc(c, a, evo_mul(g, gy, evo_cos(g, a))); break;
  case EVO_OP_COS: acc(c, a, evo_neg(g, evo_mul(g, gy, evo_sin(g, a)))); break;
  case EVO_OP_SQUARE: acc(c, a, evo_mul(g, gy, evo_mul_scalar(g, a, 2.f))); break;
  case EVO_OP_CAST: acc(c, a, gy); break; /* only f32 -> f32 casts are differentiable */

  case EVO_OP_ADD:
    acc(c, a, gy);
    acc(c, b, gy);
    break;
  case EVO_OP_SUB:
    acc(c, a, gy);
    if (c->needs[b]) acc(c, b, evo_neg(g, gy));
    break;
  case EVO_OP_MUL:
    if (c->needs[a]) acc(c, a, evo_mul(g, gy, b));
    if (c->needs[b]) acc(c, b, evo_mul(g, gy, a));
    break;
  case EVO_OP_DIV: { /* d(a/b)/db = -y/b, so gb = -(g/b) * y */
    evo_node ga = evo_div(g, gy, b);
    acc(c, a, ga);
    if (c->needs[b]) acc(c, b, evo_neg(g, evo_mul(g, ga, id)));
    break;
  }
  case EVO_OP_POW:
    if (c->needs[a]) acc(c, a, evo_mul(g, gy, evo_mul(g, b, evo_pow(g, a, evo_sub(g, b, scalar(g, 1.f))))));
    /* log(a) is undefined for a <= 0: no gradient to the exponent there */
    if (c->needs[b])
      acc(c, b, pass_if(g, evo_gt(g, a, scalar(g, 0.f)), evo_mul(g, gy, evo_mul(g, evo_log(g, a), id))));
    break;
  case EVO_OP_MAX: case EVO_OP_MIN: { /* ties go to a */
    evo_node m = n.op == EVO_OP_MAX ? evo_ge(g, a, b) : evo_le(g, a, b);
    if (c->needs[a]) acc(c, a, pass_if(g, m, gy));
    if (c->needs[b]) acc(c, b, pass_unless(g, m, gy));
    break;
  }
  case EVO_OP_WHERE:
    if (c->needs[n.in[1]]) acc(c, n.in[1], pass_if(g, a, gy));
    if (c->needs[n.in[2]]) acc(c, n.in[2], pass_unless(g, a, gy));
    break;
  case EVO_OP_CLIP:
    acc(c, a, pass_if(g, evo_ge(g, a, scalar(g, n.p.f[0])), pass_if(g, evo_le(g, a, scalar(g, n.p.f[1])), gy)));
    break;

  case EVO_OP_REDUCE_SUM:
    acc(c, a, evo_broadcast_to(g, keepdims_of(g, gy, &x, n.p.axes, n.p.keepdims), x.ndim, x.shape));
    break;
  case EVO_OP_REDUCE_MAX: case EVO_OP_REDUCE_MIN: { /* split evenly among ties, as JAX does */
    evo_node mask = evo_cast(g, evo_eq(g, a, keepdims_of(g, id, &x, n.p.axes, n.p.keepdims)), EVO_F32);
    evo_op_params p = {.axes = n.p.axes, .keepdims = 1};
    evo_node count = emit1(g, EVO_OP_REDUCE_SUM, mask, &p, 0, NULL);
    acc(c, a, evo_mul(g, evo_div(g, mask, count), keepdims_of(g, gy, &x, n.p.axes, n.p.keepdims)));
    break;
  }
  case EVO_OP_LOGSUMEXP: {
    evo_node yk = keepdims_of(g, id, &x, n.p.axes, n.p.keepdims);
    acc(c, a, evo_mul(g, keepdims_of(g, gy, &x, n.p.axes, n.p.keepdims), evo_exp(g, evo_sub(g, a, yk))));
    break;
  }
  case EVO_OP_SOFTMAX: /* y * (g - sum(g * y)) */
    acc(c, a, evo_mul(g, id, evo_sub(g, gy, sum_axis_keep(g, evo_mul(g, gy, id), n.p.axis))));
    break;
  case EVO_OP_LOG_SOFTMAX: /* g - softmax * sum(g) */
    acc(c, a, evo_sub(g, gy, evo_mul(g, evo_exp(g, id), sum_axis_keep(g, gy, n.p.axis))));
    break;

  case EVO_OP_MATMUL: matmul_backward(c, &n, gy); break;
  case EVO_OP_CONV2D: conv2d_backward(c, &n, gy); break;
  case EVO_OP_CONV2D_GRAD_INPUT: case EVO_OP_CONV2D_GRAD_KERNEL: conv2d_grad_backward(c, &n, gy); break;
  case EVO_OP_MAX_POOL2D: acc(c, a, emit2(g, EVO_OP_MAX_POOL2D_GRAD, a, gy, &n.p, 0, NULL)); break;
  /* max_pool2d_grad(x, gy) is linear in gy and piecewise constant in x (no adjoint for x, as for the argmax): its
     adjoint in gy picks the adjoint at each window's first max, and that gather's adjoint is max_pool2d_grad again */
  case EVO_OP_MAX_POOL2D_GRAD: acc(c, b, emit2(g, EVO_OP_MAX_POOL2D_GATHER, a, gy, &n.p, 0, NULL)); break;
  case EVO_OP_MAX_POOL2D_GATHER: acc(c, b, emit2(g, EVO_OP_MAX_POOL2D_GRAD, a, gy, &n.p, 0, NULL)); break;
  case EVO_OP_AVG_POOL2D: acc(c, a, emit1(g, EVO_OP_AVG_POOL2D_GRAD, gy, &n.p, x.ndim, x.shape)); break;
  case EVO_OP_AVG_POOL2D_GRAD: acc(c, a, emit1(g, EVO_OP_AVG_POOL2D, gy, &n.p, 0, NULL)); break; /* linear */

  case EVO_OP_RESHAPE: acc(c, a, evo_reshape(g, gy, x.ndim, x.shape)); break;
  case EVO_OP_TRANSPOSE: {
    int inv[EVO_MAX_DIMS];
    for (int d = 0; d < n.ndim; d++) inv[n.p.i[d]] = d;
    acc(c, a, evo_transpose(g, gy, inv));
    break;
  }
  case EVO_OP_BROADCAST_TO: acc(c, a, gy); break; /* acc sums the broadcast dims */
  case EVO_OP_CONCAT: {
    int64_t off = 0;
    for (int i = 0; i < n.n_in; i++) {
      int64_t len = g->nodes[n.in[i]].shape[n.p.axis];
      if (c->needs[n.in[i]]) acc(c, n.in[i], evo_slice(g, gy, n.p.axis, off, off + len));
      off += len;
    }
    break;
  }
  case EVO_OP_SLICE: acc(c, a, evo_pad(g, gy, n.p.axis, n.p.i[0], x.shape[n.p.axis] - n.p.i[1])); break;
  case EVO_OP_PAD: acc(c, a, evo_slice(g, gy, n.p.axis, n.p.i[0], n.p.i[0] + x.shape[n.p.axis])); break;
  case EVO_OP_TAKE_ALONG_AXIS: take_backward(c, &n, gy); break;
  case EVO_OP_SCATTER_ADD_ALONG_AXIS: acc(c, a, evo_take_along_axis(g, gy, b, n.p.axis)); break;

  default: /* every op of the set has a rule; this guards ops added later */
    return evo_error(EVO_STATUS_UNSUPPORTED, "grad: no backward rule for %s (node %d)", evo_op_name(n.op), (int)id);
  }
  return EVO_STATUS_OK;
}
