/* evo_graph_emit: validates an op's inputs and infers its output dtype and shape. Every node, whether made by a
   public builder or re-emitted by a transform, goes through here, so shape rules live in one place. */
#include <string.h>
#include "graph_impl.h"

#define N(i) (&g->nodes[in[i]])
#define FAIL(...) return evo_graph_fail(g, __VA_ARGS__)

static bool is_elementwise_unary(evo_op op) { return op >= EVO_OP_NEG && op <= EVO_OP_STOP_GRADIENT; }
static bool is_binary(evo_op op) { return op >= EVO_OP_ADD && op <= EVO_OP_MIN; }
static bool is_compare(evo_op op) { return op >= EVO_OP_LT && op <= EVO_OP_NE; }

/* Loop dims of inputs a (core rank ca) and b (core rank cb), broadcast; false if incompatible. */
static bool loop_broadcast(const evo_node_t *a, int ca, const evo_node_t *b, int cb, int *nl, int64_t *loop) {
  return evo_broadcast_shapes(a->ndim - ca, a->shape, b->ndim - cb, b->shape, nl, loop);
}

static int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t lo, int64_t hi) { return (in + lo + hi - k) / s + 1; }

evo_node evo_graph_emit(evo_graph *g, evo_op op, evo_dtype dtype, int n_in, const evo_node *in,
                        const evo_op_params *params, int ndim_hint, const int64_t *shape_hint) {
  if (!g || g->status != EVO_STATUS_OK) return EVO_NODE_INVALID;
  if (n_in < 0 || n_in > EVO_MAX_INPUTS) FAIL("%s: too many inputs (%d)", evo_op_name(op), n_in);
  if (!evo_graph_check_ids(g, n_in, in)) return EVO_NODE_INVALID;
  evo_node_t n = {.op = op, .dtype = EVO_F32, .n_in = n_in};
  if (params) n.p = *params;
  for (int i = 0; i < n_in; i++) n.in[i] = in[i];
  const char *name = evo_op_name(op);

  if (is_elementwise_unary(op)) {
    if (n_in != 1) FAIL("%s takes 1 input", name);
    if (op != EVO_OP_STOP_GRADIENT && N(0)->dtype != EVO_F32) FAIL("%s: input must be f32", name);
    n.dtype = N(0)->dtype;
    n.ndim = N(0)->ndim;
    memcpy(n.shape, N(0)->shape, sizeof n.shape);
  } else if (is_binary(op) || is_compare(op)) {
    if (n_in != 2) FAIL("%s takes 2 inputs", name);
    if (is_binary(op) && (N(0)->dtype != EVO_F32 || N(1)->dtype != EVO_F32)) FAIL("%s: inputs must be f32", name);
    if (is_compare(op) && (N(0)->dtype != N(1)->dtype || (N(0)->dtype != EVO_F32 && N(0)->dtype != EVO_I32)))
      FAIL("%s: inputs must both be f32 or both i32", name);
    if (!evo_broadcast_shapes(N(0)->ndim, N(0)->shape, N(1)->ndim, N(1)->shape, &n.ndim, n.shape))
      FAIL("%s: shapes do not broadcast", name);
    n.dtype = is_compare(op) ? EVO_U8 : EVO_F32;
  } else {
    switch (op) {
    case EVO_OP_WHERE: {
      if (n_in != 3) FAIL("where takes 3 inputs");
      if (N(0)->dtype != EVO_U8 || N(1)->dtype != EVO_F32 || N(2)->dtype != EVO_F32)
        FAIL("where: cond must be u8 and the branches f32");
      int nd;
      int64_t s[EVO_MAX_DIMS];
      if (!evo_broadcast_shapes(N(0)->ndim, N(0)->shape, N(1)->ndim, N(1)->shape, &nd, s) ||
          !evo_broadcast_shapes(nd, s, N(2)->ndim, N(2)->shape, &n.ndim, n.shape))
        FAIL("where: shapes do not broadcast");
      break;
    }
    case EVO_OP_CLIP:
      if (n_in != 1 || N(0)->dtype != EVO_F32) FAIL("clip: needs one f32 input");
      if (!(n.p.f[0] <= n.p.f[1])) FAIL("clip: lo > hi");
      n.ndim = N(0)->ndim;
      memcpy(n.shape, N(0)->shape, sizeof n.shape);
      break;
    case EVO_OP_CAST:
      if (n_in != 1) FAIL("cast takes 1 input");
      if ((unsigned)dtype >= EVO_DTYPE_COUNT) FAIL("cast: bad dtype");
      n.dtype = dtype;
      n.ndim = N(0)->ndim;
      memcpy(n.shape, N(0)->shape, sizeof n.shape);
      break;
    case EVO_OP_REDUCE_SUM: case EVO_OP_REDUCE_MAX: case EVO_OP_REDUCE_MIN: case EVO_OP_LOGSUMEXP: {
      const evo_node_t *x = N(0);
      if (n_in != 1 || x->dtype != EVO_F32) FAIL("%s: needs one f32 input", name);
      if (x->ndim < 32 && (n.p.axes >> x->ndim) != 0) FAIL("%s: axis out of range", name);
      for (int d = 0; d < x->ndim; d++) {
        if (n.p.axes & (1u << d)) {
          if (n.p.keepdims) n.shape[n.ndim++] = 1;
        } else {
          n.shape[n.ndim++] = x->shape[d];
        }
      }
      break;
    }
    case EVO_OP_ARGMAX: {
      const evo_node_t *x = N(0);
      if (n_in != 1 || x->dtype != EVO_F32) FAIL("argmax: needs one f32 input");
      if (n.p.axis < 0 || n.p.axis >= x->ndim) FAIL("argmax: axis %d out of range", n.p.axis);
      n.dtype = EVO_I32;
      for (int d = 0; d < x->ndim; d++) {
        if (d == n.p.axis) {
          if (n.p.keepdims) n.shape[n.ndim++] = 1;
        } else {
          n.shape[n.ndim++] = x->shape[d];
        }
      }
      break;
    }
    case EVO_OP_MATMUL: {
      const evo_node_t *a = N(0), *b = N(1);
      if (n_in != 2 || a->dtype != EVO_F32 || b->dtype != EVO_F32) FAIL("matmul: needs two f32 inputs");
      if (a->ndim < 2 || b->ndim < 2) FAIL("matmul: inputs must be at least 2-D");
      if (a->shape[a->ndim - 1] != b->shape[b->ndim - 2])
        FAIL("matmul: inner dims differ (%lld vs %lld)", (long long)a->shape[a->ndim - 1],
             (long long)b->shape[b->ndim - 2]);
      int nl;
      if (!loop_broadcast(a, 2, b, 2, &nl, n.shape)) FAIL("matmul: loop dims do not broadcast");
      n.shape[nl] = a->shape[a->ndim - 2];
      n.shape[nl + 1] = b->shape[b->ndim - 1];
      n.ndim = nl + 2;
      break;
    }
    case EVO_OP_CONV2D: case EVO_OP_CONV2D_GRAD_INPUT: case EVO_OP_CONV2D_GRAD_KERNEL: {
      if (n_in != 2 || N(0)->dtype != EVO_F32 || N(1)->dtype != EVO_F32) FAIL("%s: needs two f32 inputs", name);
      const int32_t *pi = n.p.i;
      if (pi[0] < 1 || pi[1] < 1 || pi[2] < 0 || pi[3] < 0 || pi[4] < 0 || pi[5] < 0)
        FAIL("%s: bad stride or padding", name);
      if (op == EVO_OP_CONV2D) {
        const evo_node_t *x = N(0), *w = N(1);
        if (x->ndim < 3 || w->ndim < 4) FAIL("conv2d: x must be [..,H,W,C] and w [..,KH,KW,C,F]");
        const int64_t *xs = x->shape + x->ndim - 3, *ws = w->shape + w->ndim - 4;
        if (xs[2] != ws[2]) FAIL("conv2d: input has %lld channels, kernel expects %lld", (long long)xs[2],
                                 (long long)ws[2]);
        int64_t oh = conv_out(xs[0], ws[0], pi[0], pi[2], pi[4]), ow = conv_out(xs[1], ws[1], pi[1], pi[3], pi[5]);
        if (oh < 1 || ow < 1) FAIL("conv2d: kernel larger than padded input");
        int nl;
        if (!loop_broadcast(x, 3, w, 4, &nl, n.shape)) FAIL("conv2d: loop dims do not broadcast");
        n.shape[nl] = oh;
        n.shape[nl + 1] = ow;
        n.shape[nl + 2] = ws[3];
        n.ndim = nl + 3;
      } else {
        if (!shape_hint || ndim_hint < 3) FAIL("%s: needs an output shape", name);
        n.ndim = ndim_hint;
        memcpy(n.shape, shape_hint, sizeof(int64_t) * (size_t)ndim_hint);
      }
      break;
    }
    case EVO_OP_MAX_POOL2D: case EVO_OP_AVG_POOL2D: case EVO_OP_MAX_POOL2D_GATHER: {
      const evo_node_t *x = N(0);
      if (op == EVO_OP_MAX_POOL2D_GATHER) {
        if (n_in != 2 || x->dtype != EVO_F32 || N(1)->dtype != EVO_F32 || x->ndim < 3 || N(1)->ndim != x->ndim ||
            memcmp(x->shape, N(1)->shape, sizeof(int64_t) * (size_t)x->ndim) != 0)
          FAIL("%s: needs two f32 inputs (x, v) of one shape [..,H,W,C]", name);
      } else if (n_in != 1 || x->dtype != EVO_F32 || x->ndim < 3) {
        FAIL("%s: needs one f32 input [..,H,W,C]", name);
      }
      const int32_t *pi = n.p.i;
      if (pi[0] < 1 || pi[1] < 1 || pi[2] < 1 || pi[3] < 1) FAIL("%s: bad window or stride", name);
      int64_t oh = conv_out(x->shape[x->ndim - 3], pi[0], pi[2], pi[4], pi[6]);
      int64_t ow = conv_out(x->shape[x->ndim - 2], pi[1], pi[3], pi[5], pi[7]);
      if (oh < 1 || ow < 1) FAIL("%s: window larger than padded input", name);
      n.ndim = x->ndim;
      memcpy(n.shape, x->shape, sizeof n.shape);
      n.shape[n.ndim - 3] = oh;
      n.shape[n.ndim - 2] = ow;
      break;
    }
    case EVO_OP_MAX_POOL2D_GRAD:
      if (n_in != 2) FAIL("max_pool2d_grad takes (x, gy)");
      n.ndim = N(0)->ndim;
      memcpy(n.shape, N(0)->shape, sizeof n.shape);
      break;
    case EVO_OP_AVG_POOL2D_GRAD: case EVO_OP_SCATTER_ADD_ALONG_AXIS: case EVO_OP_BROADCAST_TO: case EVO_OP_RESHAPE:
    case EVO_OP_RNG_UNIFORM: case EVO_OP_RNG_NORMAL: case EVO_OP_RNG_TRUNC_NORMAL: {
      if (!shape_hint && ndim_hint != 0) FAIL("%s: needs an output shape", name);
      if (ndim_hint < 0 || ndim_hint > EVO_MAX_DIMS) FAIL("%s: ndim %d out of range", name, ndim_hint);
      n.ndim = ndim_hint;
      if (ndim_hint) memcpy(n.shape, shape_hint, sizeof(int64_t) * (size_t)ndim_hint);
      for (int d = 0; d < n.ndim; d++)
        if (n.shape[d] < 1) FAIL("%s: dim %d is %lld", name, d, (long long)n.shape[d]);
      const evo_node_t *x = N(0);
      if (op == EVO_OP_RESHAPE) {
        n.dtype = x->dtype;
        if (evo_shape_numel(n.ndim, n.shape) != evo_shape_numel(x->ndim, x->shape))
          FAIL("reshape: %lld elements cannot become %lld", (long long)evo_shape_numel(x->ndim, x->shape),
               (long long)evo_shape_numel(n.ndim, n.shape));
      } else if (op == EVO_OP_BROADCAST_TO) {
        int nd;
        int64_t s[EVO_MAX_DIMS];
        n.dtype = x->dtype;
        if (x->ndim > n.ndim || !evo_broadcast_shapes(x->ndim, x->shape, n.ndim, n.shape, &nd, s) ||
            memcmp(s, n.shape, sizeof(int64_t) * (size_t)nd) != 0)
          FAIL("broadcast_to: input shape does not broadcast to the target");
      } else if (op == EVO_OP_SCATTER_ADD_ALONG_AXIS) {
        const evo_node_t *idx = N(1);
        if (n_in != 2 || x->dtype != EVO_F32 || idx->dtype != EVO_I32) FAIL("scatter_add: needs (f32 g, i32 idx)");
        if (idx->ndim != x->ndim || memcmp(idx->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim) != 0)
          FAIL("scatter_add: g and idx must have the same shape");
        if (n.ndim != x->ndim || n.p.axis < 0 || n.p.axis >= n.ndim) FAIL("scatter_add: bad axis or shape");
      } else if (op == EVO_OP_AVG_POOL2D_GRAD) {
        if (x->dtype != EVO_F32 || x->ndim != n.ndim) FAIL("avg_pool2d_grad: bad input");
      } else { /* RNG */
        if (x->dtype != EVO_U32 || x->ndim < 1 || x->shape[x->ndim - 1] != 2) FAIL("%s: key must be u32 [..., 2]", name);
        if (n.p.i[0] < 0 || n.ndim - n.p.i[0] != x->ndim - 1 ||
            memcmp(n.shape, x->shape, sizeof(int64_t) * (size_t)(x->ndim - 1)) != 0)
          FAIL("%s: output must be key loop dims + core shape", name);
        if (op == EVO_OP_RNG_TRUNC_NORMAL && !(n.p.f[0] < n.p.f[1])) FAIL("%s: lo must be < hi", name);
      }
      break;
    }
    case EVO_OP_TRANSPOSE: {
      const evo_node_t *x = N(0);
      unsigned seen = 0;
      n.dtype = x->dtype;
      n.ndim = x->ndim;
      for (int d = 0; d < x->ndim; d++) {
        int p = n.p.i[d];
        if (p < 0 || p >= x->ndim || (seen & (1u << p))) FAIL("transpose: perm is not a permutation");
        seen |= 1u << p;
        n.shape[d] = x->shape[p];
      }
      break;
    }
    case EVO_OP_CONCAT: {
      const evo_node_t *x = N(0);
      int ax = n.p.axis;
      if (n_in < 1) FAIL("concat: no inputs");
      if (ax < 0 || ax >= x->ndim) FAIL("concat: axis %d out of range", ax);
      n.dtype = x->dtype;
      n.ndim = x->ndim;
      memcpy(n.shape, x->shape, sizeof n.shape);
      for (int i = 1; i < n_in; i++) {
        const evo_node_t *y = N(i);
        if (y->dtype != x->dtype || y->ndim != x->ndim) FAIL("concat: input %d differs in dtype or rank", i);
        for (int d = 0; d < x->ndim; d++)
          if (d != ax && y->shape[d] != x->shape[d]) FAIL("concat: input %d differs in dim %d", i, d);
        n.shape[ax] += y->shape[ax];
      }
      break;
    }
    case EVO_OP_SLICE: case EVO_OP_PAD: {
      const evo_node_t *x = N(0);
      int ax = n.p.axis;
      if (n_in != 1 || ax < 0 || ax >= x->ndim) FAIL("%s: axis %d out of range", name, ax);
      n.dtype = x->dtype;
      n.ndim = x->ndim;
      memcpy(n.shape, x->shape, sizeof n.shape);
      if (op == EVO_OP_SLICE) {
        if (n.p.i[0] < 0 || n.p.i[1] > x->shape[ax] || n.p.i[0] >= n.p.i[1])
          FAIL("slice: [%d, %d) is not inside [0, %lld)", n.p.i[0], n.p.i[1], (long long)x->shape[ax]);
        n.shape[ax] = n.p.i[1] - n.p.i[0];
      } else {
        if (n.p.i[0] < 0 || n.p.i[1] < 0) FAIL("pad: negative padding");
        n.shape[ax] += n.p.i[0] + n.p.i[1];
      }
      break;
    }
    case EVO_OP_TAKE_ALONG_AXIS: {
      const evo_node_t *x = N(0), *idx = N(1);
      int ax = n.p.axis;
      if (n_in != 2 || idx->dtype != EVO_I32) FAIL("take_along_axis: indices must be i32");
      if (idx->ndim != x->ndim) FAIL("take_along_axis: x and indices must have the same rank");
      if (ax < 0 || ax >= x->ndim) FAIL("take_along_axis: axis %d out of range", ax);
      n.dtype = x->dtype;
      n.ndim = x->ndim;
      for (int d = 0; d < x->ndim; d++) {
        if (d == ax) {
          n.shape[d] = idx->shape[d];
        } else if (x->shape[d] == idx->shape[d] || idx->shape[d] == 1 || x->shape[d] == 1) {
          n.shape[d] = x->shape[d] == 1 ? idx->shape[d] : x->shape[d];
        } else {
          FAIL("take_along_axis: dim %d does not broadcast", d);
        }
      }
      break;
    }
    case EVO_OP_ONE_HOT: {
      const evo_node_t *x = N(0);
      if (n_in != 1 || x->dtype != EVO_I32) FAIL("one_hot: indices must be i32");
      if (x->ndim >= EVO_MAX_DIMS) FAIL("one_hot: too many dims");
      if (n.p.i[0] < 1) FAIL("one_hot: depth must be >= 1");
      n.ndim = x->ndim + 1;
      memcpy(n.shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
      n.shape[x->ndim] = n.p.i[0];
      break;
    }
    case EVO_OP_SOFTMAX: case EVO_OP_LOG_SOFTMAX: {
      const evo_node_t *x = N(0);
      if (n_in != 1 || x->dtype != EVO_F32) FAIL("%s: needs one f32 input", name);
      if (n.p.axis < 0 || n.p.axis >= x->ndim) FAIL("%s: axis %d out of range", name, n.p.axis);
      n.ndim = x->ndim;
      memcpy(n.shape, x->shape, sizeof n.shape);
      break;
    }
    default:
      FAIL("%s cannot be emitted here", name);
    }
  }
  if (n.ndim > EVO_MAX_DIMS) FAIL("%s: result has more than %d dims", name, EVO_MAX_DIMS);
  return evo_graph_push(g, &n);
}
