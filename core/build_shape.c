/* Public builders for constants, shape ops, indexing and random numbers. */
#include <stdlib.h>
#include <string.h>
#include "graph_impl.h"

evo_node evo_constant(evo_graph *g, evo_dtype dtype, int ndim, const int64_t *shape, const void *data) {
  if (!g || g->status != EVO_STATUS_OK) return EVO_NODE_INVALID;
  if (ndim < 0 || ndim > EVO_MAX_DIMS || (unsigned)dtype >= EVO_DTYPE_COUNT || (!data))
    return evo_graph_fail(g, "constant: bad rank, dtype or data");
  evo_node_t n = {.op = EVO_OP_CONST, .dtype = dtype, .ndim = ndim};
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 1) return evo_graph_fail(g, "constant: dim %d is %lld", d, (long long)shape[d]);
    n.shape[d] = shape[d];
  }
  size_t bytes = (size_t)evo_shape_numel(ndim, shape) * evo_dtype_size(dtype);
  n.cdata = malloc(bytes ? bytes : 1);
  if (!n.cdata) return evo_graph_fail(g, "constant: out of memory");
  memcpy(n.cdata, data, bytes);
  evo_node id = evo_graph_push(g, &n);
  if (id == EVO_NODE_INVALID) free(n.cdata);
  return id;
}

evo_node evo_scalar(evo_graph *g, float value) { return evo_constant(g, EVO_F32, 0, NULL, &value); }

evo_node evo_full(evo_graph *g, float value, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > EVO_MAX_DIMS) return evo_graph_fail(g, "full: rank %d out of range", ndim);
  /* Copy first: `shape` may point into this graph's nodes, which the next push can move. */
  int64_t s[EVO_MAX_DIMS];
  if (ndim) memcpy(s, shape, sizeof(int64_t) * (size_t)ndim);
  evo_node c = evo_scalar(g, value);
  return ndim == 0 ? c : evo_broadcast_to(g, c, ndim, s);
}

static const evo_node_t *node(evo_graph *g, evo_node x) {
  return evo_graph_check_ids(g, 1, &x) ? &g->nodes[x] : NULL;
}

static int norm_axis(evo_graph *g, int nd, int axis, const char *what) {
  int a = axis < 0 ? axis + nd : axis;
  if (a < 0 || a >= nd) {
    evo_graph_fail(g, "%s: axis %d out of range for rank %d", what, axis, nd);
    return -1;
  }
  return a;
}

evo_node evo_reshape(evo_graph *g, evo_node x, int ndim, const int64_t *shape) {
  const evo_node_t *xn = node(g, x);
  if (!xn) return EVO_NODE_INVALID;
  if (ndim < 0 || ndim > EVO_MAX_DIMS) return evo_graph_fail(g, "reshape: rank %d out of range", ndim);
  int64_t s[EVO_MAX_DIMS], known = 1;
  int infer = -1;
  for (int d = 0; d < ndim; d++) {
    s[d] = shape[d];
    if (s[d] == -1) {
      if (infer >= 0) return evo_graph_fail(g, "reshape: more than one -1");
      infer = d;
    } else {
      known *= s[d];
    }
  }
  if (infer >= 0) {
    int64_t total = evo_shape_numel(xn->ndim, xn->shape);
    if (known <= 0 || total % known) return evo_graph_fail(g, "reshape: cannot infer the -1 dim");
    s[infer] = total / known;
  }
  return evo_graph_emit(g, EVO_OP_RESHAPE, xn->dtype, 1, &x, NULL, ndim, s);
}

evo_node evo_transpose(evo_graph *g, evo_node x, const int *perm) {
  const evo_node_t *xn = node(g, x);
  if (!xn) return EVO_NODE_INVALID;
  evo_op_params p = {0};
  for (int d = 0; d < xn->ndim; d++) p.i[d] = perm[d] < 0 ? perm[d] + xn->ndim : perm[d];
  return evo_graph_emit(g, EVO_OP_TRANSPOSE, xn->dtype, 1, &x, &p, 0, NULL);
}

evo_node evo_broadcast_to(evo_graph *g, evo_node x, int ndim, const int64_t *shape) {
  const evo_node_t *xn = node(g, x);
  if (!xn) return EVO_NODE_INVALID;
  if (xn->ndim == ndim && memcmp(xn->shape, shape, sizeof(int64_t) * (size_t)ndim) == 0) return x;
  return evo_graph_emit(g, EVO_OP_BROADCAST_TO, xn->dtype, 1, &x, NULL, ndim, shape);
}

evo_node evo_concat(evo_graph *g, int n, const evo_node *xs, int axis) {
  if (n < 1 || n > EVO_MAX_INPUTS) return evo_graph_fail(g, "concat: %d inputs (1..%d allowed)", n, EVO_MAX_INPUTS);
  const evo_node_t *xn = node(g, xs[0]);
  if (!xn) return EVO_NODE_INVALID;
  int a = norm_axis(g, xn->ndim, axis, "concat");
  if (a < 0) return EVO_NODE_INVALID;
  evo_op_params p = {.axis = a};
  return evo_graph_emit(g, EVO_OP_CONCAT, xn->dtype, n, xs, &p, 0, NULL);
}

evo_node evo_slice(evo_graph *g, evo_node x, int axis, int64_t start, int64_t stop) {
  const evo_node_t *xn = node(g, x);
  if (!xn) return EVO_NODE_INVALID;
  int a = norm_axis(g, xn->ndim, axis, "slice");
  if (a < 0) return EVO_NODE_INVALID;
  evo_op_params p = {.axis = a, .i = {(int32_t)start, (int32_t)stop}};
  return evo_graph_emit(g, EVO_OP_SLICE, xn->dtype, 1, &x, &p, 0, NULL);
}

evo_node evo_pad(evo_graph *g, evo_node x, int axis, int64_t lo, int64_t hi) {
  const evo_node_t *xn = node(g, x);
  if (!xn) return EVO_NODE_INVALID;
  int a = norm_axis(g, xn->ndim, axis, "pad");
  if (a < 0) return EVO_NODE_INVALID;
  evo_op_params p = {.axis = a, .i = {(int32_t)lo, (int32_t)hi}};
  return evo_graph_emit(g, EVO_OP_PAD, xn->dtype, 1, &x, &p, 0, NULL);
}

evo_node evo_expand_dims(evo_graph *g, evo_node x, int axis) {
  const evo_node_t *xn = node(g, x);
  if (!xn) return EVO_NODE_INVALID;
  int a = norm_axis(g, xn->ndim + 1, axis, "expand_dims");
  if (a < 0) return EVO_NODE_INVALID;
  int64_t s[EVO_MAX_DIMS + 1];
  for (int d = 0, k = 0; d <= xn->ndim; d++) s[d] = d == a ? 1 : xn->shape[k++];
  return evo_reshape(g, x, xn->ndim + 1, s);
}

evo_node evo_squeeze(evo_graph *g, evo_node x, int axis) {
  const evo_node_t *xn = node(g, x);
  if (!xn) return EVO_NODE_INVALID;
  int a = norm_axis(g, xn->ndim, axis, "squeeze");
  if (a < 0) return EVO_NODE_INVALID;
  if (xn->shape[a] != 1) return evo_graph_fail(g, "squeeze: dim %d has size %lld", a, (long long)xn->shape[a]);
  int64_t s[EVO_MAX_DIMS];
  for (int d = 0, k = 0; d < xn->ndim; d++)
    if (d != a) s[k++] = xn->shape[d];
  return evo_reshape(g, x, xn->ndim - 1, s);
}

evo_node evo_flatten(evo_graph *g, evo_node x, int start_axis) {
  const evo_node_t *xn = node(g, x);
  if (!xn) return EVO_NODE_INVALID;
  int a = norm_axis(g, xn->ndim, start_axis, "flatten");
  if (a < 0) return EVO_NODE_INVALID;
  int64_t s[EVO_MAX_DIMS];
  for (int d = 0; d < a; d++) s[d] = xn->shape[d];
  s[a] = evo_shape_numel(xn->ndim - a, xn->shape + a);
  return evo_reshape(g, x, a + 1, s);
}

evo_node evo_take_along_axis(evo_graph *g, evo_node x, evo_node idx, int axis) {
  const evo_node_t *xn = node(g, x);
  if (!xn) return EVO_NODE_INVALID;
  int a = norm_axis(g, xn->ndim, axis, "take_along_axis");
  if (a < 0) return EVO_NODE_INVALID;
  evo_node in[2] = {x, idx};
  evo_op_params p = {.axis = a};
  return evo_graph_emit(g, EVO_OP_TAKE_ALONG_AXIS, xn->dtype, 2, in, &p, 0, NULL);
}

evo_node evo_one_hot(evo_graph *g, evo_node idx, int depth) {
  evo_op_params p = {.i = {depth}};
  return evo_graph_emit(g, EVO_OP_ONE_HOT, EVO_F32, 1, &idx, &p, 0, NULL);
}

static evo_node rng(evo_graph *g, evo_op op, evo_node key, int ndim, const int64_t *shape, float lo, float hi) {
  const evo_node_t *k = node(g, key);
  if (!k) return EVO_NODE_INVALID;
  if (k->ndim < 1 || k->ndim - 1 + ndim > EVO_MAX_DIMS)
    return evo_graph_fail(g, "%s: key must be u32 [..., 2] and the result at most %d-D", evo_op_name(op),
                          EVO_MAX_DIMS);
  int64_t s[EVO_MAX_DIMS];
  int nl = k->ndim - 1;
  memcpy(s, k->shape, sizeof(int64_t) * (size_t)nl);
  memcpy(s + nl, shape, sizeof(int64_t) * (size_t)ndim);
  evo_op_params p = {.i = {ndim}, .f = {lo, hi}};
  return evo_graph_emit(g, op, EVO_F32, 1, &key, &p, nl + ndim, s);
}

evo_node evo_random_uniform(evo_graph *g, evo_node key, int ndim, const int64_t *shape, float lo, float hi) {
  return rng(g, EVO_OP_RNG_UNIFORM, key, ndim, shape, lo, hi);
}
evo_node evo_random_normal(evo_graph *g, evo_node key, int ndim, const int64_t *shape) {
  return rng(g, EVO_OP_RNG_NORMAL, key, ndim, shape, 0.f, 1.f);
}
evo_node evo_random_truncated_normal(evo_graph *g, evo_node key, int ndim, const int64_t *shape, float lo,
                                     float hi) {
  return rng(g, EVO_OP_RNG_TRUNC_NORMAL, key, ndim, shape, lo, hi);
}
