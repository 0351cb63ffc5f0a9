/* vmap as a graph transform (JAX semantics). Every batched value carries the batch as its dim 0, with exactly the
   shape [batch] + per-example shape; unbatched values keep their per-example shape and are re-emitted unchanged.
   Ops with core dims (gufunc style) batch by turning the batch into one more leading loop dim, so batched weights
   become one batched GEMM / grouped conv instead of a loop; ops with axis parameters shift their axes by one.
   Each pass adds one leading dim, so vmap nests, and since the rules emit ordinary ops it composes with grad. */
#include <stdlib.h>
#include <string.h>
#include "evoc/transform.h"
#include "graph_impl.h"

typedef struct {
  const evo_graph *g; /* the per-example graph */
  evo_graph *ng;      /* the batched graph being built */
  int64_t batch;
  evo_node *map; /* old node id -> new node id */
  bool *bat;     /* old node id -> new node carries the batch dim */
} vmap_ctx;

static const evo_node_t *old_node(const vmap_ctx *c, evo_node x) { return &c->g->nodes[x]; }

/* [batch] + shape of old node x; returns the rank. */
static int batched_shape(const vmap_ctx *c, const evo_node_t *x, int64_t *s) {
  s[0] = c->batch;
  for (int d = 0; d < x->ndim && d + 1 < EVO_MAX_DIMS; d++) s[d + 1] = x->shape[d];
  return x->ndim + 1;
}

static evo_node emit_reshape(evo_graph *ng, evo_node x, int nd, const int64_t *s) {
  if (x == EVO_NODE_INVALID) return x;
  return evo_graph_emit(ng, EVO_OP_RESHAPE, ng->nodes[x].dtype, 1, &x, NULL, nd, s);
}

static evo_node emit_transpose(evo_graph *ng, evo_node x, const int *perm) {
  if (x == EVO_NODE_INVALID) return x;
  evo_op_params p = {0};
  for (int d = 0; d < ng->nodes[x].ndim; d++) p.i[d] = perm[d];
  return evo_graph_emit(ng, EVO_OP_TRANSPOSE, ng->nodes[x].dtype, 1, &x, &p, 0, NULL);
}

static evo_node emit_broadcast(evo_graph *ng, evo_node x, int nd, const int64_t *s) {
  if (x == EVO_NODE_INVALID) return x;
  const evo_node_t *n = &ng->nodes[x];
  if (n->ndim == nd && memcmp(n->shape, s, sizeof(int64_t) * (size_t)nd) == 0) return x;
  return evo_graph_emit(ng, EVO_OP_BROADCAST_TO, n->dtype, 1, &x, NULL, nd, s);
}

/* Moves dim `from` of x to position `to` (the other dims keep their order). */
static evo_node move_axis(evo_graph *ng, evo_node x, int from, int to) {
  if (x == EVO_NODE_INVALID || from == to) return x;
  int nd = ng->nodes[x].ndim, perm[EVO_MAX_DIMS], k = 0;
  for (int d = 0; d < nd; d++) {
    if (d == to) continue;
    if (k == from) k++;
    perm[d] = k++;
  }
  perm[to] = from;
  return emit_transpose(ng, x, perm);
}

/* Input i of the old node as a batched value: the batched one itself, or a shared one broadcast over the batch
   (for ops that need the batch on every operand: concat, scatter_add, max_pool2d_grad). */
static evo_node to_batched(const vmap_ctx *c, evo_node old) {
  if (c->bat[old]) return c->map[old];
  int64_t s[EVO_MAX_DIMS + 1];
  const evo_node_t *x = old_node(c, old);
  if (x->ndim + 1 > EVO_MAX_DIMS) return evo_graph_fail(c->ng, "vmap: %d dims plus the batch is too many", x->ndim);
  int nd = batched_shape(c, x, s);
  return emit_broadcast(c->ng, c->map[old], nd, s);
}

/* Lines an operand of a gufunc-style op up with an output of L per-example loop dims, so that right-aligned
   broadcasting puts its batch dim (or a size-1 stand-in) under the output's batch dim. The operand has per-example
   loop rank l = ndim - core. Batched, l < L: 1s go right after the batch. Batched, l > L (ops whose output sums
   over extra leading loop dims, e.g. conv2d_grad_kernel): the batch moves to position l - L. Shared, l > L: a
   size-1 dim is inserted at l - L; shared with l <= L already lines up. */
static evo_node align_operand(const vmap_ctx *c, evo_node nx, bool batched, const evo_node_t *ox, int core, int L) {
  int l = ox->ndim - core;
  if (nx == EVO_NODE_INVALID || l < 0) return nx; /* a rank error the op itself reports */
  int64_t s[EVO_MAX_DIMS + 1];
  if (batched) {
    if (l == L) return nx;
    if (l > L) return move_axis(c->ng, nx, 0, l - L);
    int nd = 0;
    s[nd++] = c->batch;
    for (int k = 0; k < L - l; k++) s[nd++] = 1;
    for (int d = 0; d < ox->ndim; d++) s[nd++] = ox->shape[d];
    if (nd > EVO_MAX_DIMS) return evo_graph_fail(c->ng, "vmap: batched operand needs %d dims", nd);
    return emit_reshape(c->ng, nx, nd, s);
  }
  if (l <= L) return nx;
  if (ox->ndim + 1 > EVO_MAX_DIMS) return evo_graph_fail(c->ng, "vmap: operand needs %d dims", ox->ndim + 1);
  int nd = 0;
  for (int d = 0; d < ox->ndim; d++) {
    if (d == l - L) s[nd++] = 1;
    s[nd++] = ox->shape[d];
  }
  return emit_reshape(c->ng, nx, nd, s);
}

/* Core ranks of gufunc-style ops (inputs, output); false for ops batched by an axis rule. */
static bool core_ranks(const evo_node_t *n, int *in_core, int *out_core) {
  for (int i = 0; i < n->n_in; i++) in_core[i] = 0;
  *out_core = 0;
  switch (n->op) {
  case EVO_OP_MATMUL: in_core[0] = in_core[1] = 2, *out_core = 2; return true;
  case EVO_OP_CONV2D: case EVO_OP_CONV2D_GRAD_INPUT: in_core[0] = 3, in_core[1] = 4, *out_core = 3; return true;
  case EVO_OP_CONV2D_GRAD_KERNEL: in_core[0] = in_core[1] = 3, *out_core = 4; return true;
  case EVO_OP_MAX_POOL2D: case EVO_OP_AVG_POOL2D: case EVO_OP_AVG_POOL2D_GRAD: in_core[0] = 3, *out_core = 3; return true;
  case EVO_OP_MAX_POOL2D_GRAD: case EVO_OP_MAX_POOL2D_GATHER: in_core[0] = in_core[1] = 3, *out_core = 3; return true;
  case EVO_OP_ONE_HOT: *out_core = 1; return true;
  case EVO_OP_RNG_UNIFORM: case EVO_OP_RNG_NORMAL: case EVO_OP_RNG_TRUNC_NORMAL:
    in_core[0] = 1, *out_core = n->p.i[0];
    return true;
  default: /* elementwise unary/binary/compare/where/clip/cast/sign/stop_gradient: all core rank 0 */
    return (n->op >= EVO_OP_NEG && n->op <= EVO_OP_CAST);
  }
}

/* a [B, loop.., m, k] @ shared b [k, n]: the batch and loop dims fold into m, giving one plain GEMM (a backend
   would otherwise see B small products against the same b). */
static evo_node batch_matmul_shared_b(const vmap_ctx *c, const evo_node_t *n, evo_node a) {
  const evo_node_t *oa = old_node(c, n->in[0]);
  int64_t rows = c->batch * evo_shape_numel(oa->ndim - 1, oa->shape), s2[2] = {rows, oa->shape[oa->ndim - 1]};
  evo_node in[2] = {emit_reshape(c->ng, a, 2, s2), c->map[n->in[1]]};
  if (in[0] == EVO_NODE_INVALID) return EVO_NODE_INVALID;
  evo_node y = evo_graph_emit(c->ng, EVO_OP_MATMUL, n->dtype, 2, in, &n->p, 0, NULL);
  int64_t s[EVO_MAX_DIMS + 1];
  return emit_reshape(c->ng, y, batched_shape(c, n, s), s);
}

static evo_node batch_gufunc(const vmap_ctx *c, const evo_node_t *n, const int *core, int out_core) {
  int64_t s[EVO_MAX_DIMS + 1];
  int nd = batched_shape(c, n, s), L = n->ndim - out_core;
  if (n->op == EVO_OP_MATMUL && c->bat[n->in[0]] && !c->bat[n->in[1]] && old_node(c, n->in[1])->ndim == 2)
    return batch_matmul_shared_b(c, n, c->map[n->in[0]]);
  /* max_pool2d_grad takes its output shape from x, so x must carry the batch even when only gy does; gather
     needs x and v of one shape. */
  bool all = n->op == EVO_OP_MAX_POOL2D_GRAD || n->op == EVO_OP_MAX_POOL2D_GATHER;
  evo_node in[EVO_MAX_INPUTS];
  for (int i = 0; i < n->n_in; i++) {
    bool b = c->bat[n->in[i]] || all;
    evo_node x = b ? to_batched(c, n->in[i]) : c->map[n->in[i]];
    in[i] = align_operand(c, x, b, old_node(c, n->in[i]), core[i], L);
    if (in[i] == EVO_NODE_INVALID) return EVO_NODE_INVALID;
  }
  return evo_graph_emit(c->ng, n->op, n->dtype, n->n_in, in, &n->p, nd, s);
}

/* Batching rule for one node with at least one batched input; the result has shape [batch] + n's shape. */
static evo_node batch_node(const vmap_ctx *c, const evo_node_t *n) {
  int core[EVO_MAX_INPUTS], out_core;
  if (core_ranks(n, core, &out_core)) return batch_gufunc(c, n, core, out_core);
  int64_t s[EVO_MAX_DIMS + 1];
  int nd = batched_shape(c, n, s);
  evo_op_params p = n->p;
  evo_node in[EVO_MAX_INPUTS];
  for (int i = 0; i < n->n_in; i++) in[i] = c->map[n->in[i]];
  switch (n->op) {
  case EVO_OP_REDUCE_SUM: case EVO_OP_REDUCE_MAX: case EVO_OP_REDUCE_MIN: case EVO_OP_LOGSUMEXP:
    p.axes <<= 1;
    break;
  case EVO_OP_ARGMAX: case EVO_OP_SOFTMAX: case EVO_OP_LOG_SOFTMAX: case EVO_OP_SLICE: case EVO_OP_PAD:
    p.axis++;
    break;
  case EVO_OP_TRANSPOSE:
    p.i[0] = 0;
    for (int d = 0; d < n->ndim && d + 1 < 8; d++) p.i[d + 1] = n->p.i[d] + 1;
    break;
  case EVO_OP_RESHAPE:
    break; /* the target [batch] + shape is the hint */
  case EVO_OP_BROADCAST_TO: {
    /* rank-extending broadcast: the 1s go after the batch so the batch stays aligned with dim 0 */
    const evo_node_t *x = old_node(c, n->in[0]);
    if (x->ndim < n->ndim) {
      int64_t xs[EVO_MAX_DIMS + 1];
      int xn = 0;
      xs[xn++] = c->batch;
      for (int k = x->ndim; k < n->ndim; k++) xs[xn++] = 1;
      for (int d = 0; d < x->ndim; d++) xs[xn++] = x->shape[d];
      if (xn > EVO_MAX_DIMS) return evo_graph_fail(c->ng, "vmap: broadcast_to needs %d dims", xn);
      in[0] = emit_reshape(c->ng, in[0], xn, xs);
    }
    return emit_broadcast(c->ng, in[0], nd, s);
  }
  case EVO_OP_CONCAT: case EVO_OP_SCATTER_ADD_ALONG_AXIS: /* equal shapes/ranks required: batch every operand */
    for (int i = 0; i < n->n_in; i++) in[i] = to_batched(c, n->in[i]);
    p.axis++;
    break;
  case EVO_OP_TAKE_ALONG_AXIS: /* dims other than axis broadcast, so a shared operand only needs a leading 1 */
    for (int i = 0; i < n->n_in; i++) {
      if (c->bat[n->in[i]]) continue;
      const evo_node_t *x = old_node(c, n->in[i]);
      int64_t xs[EVO_MAX_DIMS + 1] = {1};
      memcpy(xs + 1, x->shape, sizeof(int64_t) * (size_t)x->ndim);
      in[i] = emit_reshape(c->ng, in[i], x->ndim + 1, xs);
    }
    p.axis++;
    break;
  default:
    return evo_graph_fail(c->ng, "vmap: no batching rule for %s", evo_op_name(n->op));
  }
  if (nd > EVO_MAX_DIMS) return evo_graph_fail(c->ng, "vmap: %s with the batch has %d dims", evo_op_name(n->op), nd);
  return evo_graph_emit(c->ng, n->op, n->dtype, n->n_in, in, &p, nd, s);
}

/* A node whose inputs are all unbatched: same op on the mapped inputs. */
static evo_node reemit(const vmap_ctx *c, const evo_node_t *n) {
  if (n->op == EVO_OP_CONST) return evo_constant(c->ng, n->dtype, n->ndim, n->shape, n->cdata);
  evo_node in[EVO_MAX_INPUTS];
  for (int i = 0; i < n->n_in; i++) in[i] = c->map[n->in[i]];
  return evo_graph_emit(c->ng, n->op, n->dtype, n->n_in, in, &n->p, n->ndim, n->shape);
}

/* Checks axes and creates the new graph's inputs (same order as g's), moving each batch axis to dim 0. */
static bool make_inputs(vmap_ctx *c, const int *in_axes) {
  const evo_graph *g = c->g;
  for (int i = 0; i < g->n_inputs; i++) {
    evo_node id = g->inputs[i];
    const evo_node_t *x = old_node(c, id);
    int ax = in_axes ? in_axes[i] : 0;
    if (ax == EVO_VMAP_NONE) {
      c->map[id] = evo_input(c->ng, x->name, x->dtype, x->ndim, x->shape);
      continue;
    }
    if (ax < -(x->ndim + 1) || ax > x->ndim) {
      evo_error(EVO_STATUS_INVALID_ARGUMENT, "vmap: in_axes[%d] = %d is out of range for a %d-D input", i, ax,
                x->ndim);
      return false;
    }
    if (ax < 0) ax += x->ndim + 1;
    if (x->ndim + 1 > EVO_MAX_DIMS) {
      evo_error(EVO_STATUS_INVALID_ARGUMENT, "vmap: input %d has %d dims, no room for the batch", i, x->ndim);
      return false;
    }
    int64_t s[EVO_MAX_DIMS];
    for (int d = 0, k = 0; d <= x->ndim; d++) s[d] = d == ax ? c->batch : x->shape[k++];
    c->map[id] = evo_input(c->ng, x->name, x->dtype, x->ndim + 1, s);
    c->bat[id] = true;
  }
  /* transposes only after every input exists, so input numbering matches g */
  for (int i = 0; i < g->n_inputs; i++) {
    evo_node id = g->inputs[i];
    if (!c->bat[id]) continue;
    int ax = in_axes ? in_axes[i] : 0;
    if (ax < 0) ax += old_node(c, id)->ndim + 1;
    c->map[id] = move_axis(c->ng, c->map[id], ax, 0);
  }
  return true;
}

/* Marks output j: batched outputs get their batch moved to out_axes[j], unbatched ones are broadcast first. */
static bool make_output(vmap_ctx *c, int j, int ax) {
  evo_node id = c->g->outputs[j];
  const evo_node_t *x = old_node(c, id);
  if (ax == EVO_VMAP_NONE) {
    if (c->bat[id]) {
      evo_error(EVO_STATUS_INVALID_ARGUMENT, "vmap: out_axes[%d] is none but output %d depends on a mapped input",
                j, j);
      return false;
    }
    return evo_output(c->ng, c->map[id]) == EVO_STATUS_OK;
  }
  if (ax < -(x->ndim + 1) || ax > x->ndim) {
    evo_error(EVO_STATUS_INVALID_ARGUMENT, "vmap: out_axes[%d] = %d is out of range for a %d-D output", j, ax,
              x->ndim);
    return false;
  }
  if (ax < 0) ax += x->ndim + 1;
  evo_node y = to_batched(c, id);
  y = move_axis(c->ng, y, 0, ax);
  return evo_output(c->ng, y) == EVO_STATUS_OK;
}

evo_graph *evo_vmap(const evo_graph *g, int64_t batch, const int *in_axes, const int *out_axes) {
  if (!g) {
    evo_error(EVO_STATUS_INVALID_ARGUMENT, "vmap: null graph");
    return NULL;
  }
  if (g->status != EVO_STATUS_OK) {
    evo_error(g->status, "vmap: the graph has an error: %s", g->error);
    return NULL;
  }
  if (batch < 1) {
    evo_error(EVO_STATUS_INVALID_ARGUMENT, "vmap: batch must be >= 1 (got %lld)", (long long)batch);
    return NULL;
  }
  vmap_ctx c = {.g = g, .batch = batch};
  c.ng = evo_graph_new();
  c.map = malloc(sizeof *c.map * (size_t)(g->n_nodes + 1));
  c.bat = calloc((size_t)g->n_nodes + 1, sizeof *c.bat);
  bool ok = c.ng && c.map && c.bat;
  if (!ok) evo_error(EVO_STATUS_OUT_OF_MEMORY, "vmap: out of memory");
  if (ok) ok = make_inputs(&c, in_axes);
  for (int id = 0; ok && id < g->n_nodes; id++) {
    const evo_node_t *n = &g->nodes[id];
    if (n->op == EVO_OP_INPUT) continue;
    bool any = false;
    for (int i = 0; i < n->n_in; i++) any |= c.bat[n->in[i]];
    c.map[id] = any ? batch_node(&c, n) : reemit(&c, n);
    c.bat[id] = any;
    if (c.map[id] == EVO_NODE_INVALID) break;
    if (any) { /* every batched value must be exactly [batch] + per-example shape: a rule bug otherwise */
      const evo_node_t *y = &c.ng->nodes[c.map[id]];
      if (y->ndim != n->ndim + 1 || y->shape[0] != batch ||
          memcmp(y->shape + 1, n->shape, sizeof(int64_t) * (size_t)n->ndim) != 0)
        evo_graph_fail(c.ng, "vmap: internal error batching %s (node %d)", evo_op_name(n->op), id);
    }
  }
  for (int j = 0; ok && c.ng->status == EVO_STATUS_OK && j < g->n_outputs; j++)
    ok = make_output(&c, j, out_axes ? out_axes[j] : 0);
  if (ok && c.ng->status != EVO_STATUS_OK) {
    evo_error(c.ng->status, "vmap: %s", c.ng->error);
    ok = false;
  }
  free(c.map);
  free(c.bat);
  if (!ok) {
    evo_graph_free(c.ng);
    return NULL;
  }
  return c.ng;
}
