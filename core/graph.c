/* Graph storage: node array, inputs/outputs, first-error recording, shape helpers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "graph_impl.h"

static const char *const op_names[EVO_OP_COUNT] = {
    [EVO_OP_INPUT] = "input", [EVO_OP_CONST] = "const", [EVO_OP_NEG] = "neg", [EVO_OP_ABS] = "abs",
    [EVO_OP_EXP] = "exp", [EVO_OP_LOG] = "log", [EVO_OP_SQRT] = "sqrt", [EVO_OP_TANH] = "tanh",
    [EVO_OP_SIGMOID] = "sigmoid", [EVO_OP_RELU] = "relu", [EVO_OP_SIN] = "sin", [EVO_OP_COS] = "cos",
    [EVO_OP_SQUARE] = "square", [EVO_OP_SIGN] = "sign", [EVO_OP_STOP_GRADIENT] = "stop_gradient",
    [EVO_OP_ADD] = "add", [EVO_OP_SUB] = "sub", [EVO_OP_MUL] = "mul", [EVO_OP_DIV] = "div", [EVO_OP_POW] = "pow",
    [EVO_OP_MAX] = "maximum", [EVO_OP_MIN] = "minimum", [EVO_OP_LT] = "lt", [EVO_OP_LE] = "le", [EVO_OP_GT] = "gt",
    [EVO_OP_GE] = "ge", [EVO_OP_EQ] = "eq", [EVO_OP_NE] = "ne", [EVO_OP_WHERE] = "where", [EVO_OP_CLIP] = "clip",
    [EVO_OP_CAST] = "cast", [EVO_OP_REDUCE_SUM] = "sum", [EVO_OP_REDUCE_MAX] = "max", [EVO_OP_REDUCE_MIN] = "min",
    [EVO_OP_LOGSUMEXP] = "logsumexp", [EVO_OP_ARGMAX] = "argmax", [EVO_OP_MATMUL] = "matmul",
    [EVO_OP_CONV2D] = "conv2d", [EVO_OP_CONV2D_GRAD_INPUT] = "conv2d_grad_input",
    [EVO_OP_CONV2D_GRAD_KERNEL] = "conv2d_grad_kernel", [EVO_OP_MAX_POOL2D] = "max_pool2d",
    [EVO_OP_MAX_POOL2D_GRAD] = "max_pool2d_grad", [EVO_OP_AVG_POOL2D] = "avg_pool2d",
    [EVO_OP_AVG_POOL2D_GRAD] = "avg_pool2d_grad", [EVO_OP_MAX_POOL2D_GATHER] = "max_pool2d_gather",
    [EVO_OP_RESHAPE] = "reshape", [EVO_OP_TRANSPOSE] = "transpose",
    [EVO_OP_BROADCAST_TO] = "broadcast_to", [EVO_OP_CONCAT] = "concat", [EVO_OP_SLICE] = "slice",
    [EVO_OP_PAD] = "pad", [EVO_OP_TAKE_ALONG_AXIS] = "take_along_axis",
    [EVO_OP_SCATTER_ADD_ALONG_AXIS] = "scatter_add_along_axis", [EVO_OP_ONE_HOT] = "one_hot",
    [EVO_OP_SOFTMAX] = "softmax", [EVO_OP_LOG_SOFTMAX] = "log_softmax", [EVO_OP_RNG_UNIFORM] = "random_uniform",
    [EVO_OP_RNG_NORMAL] = "random_normal", [EVO_OP_RNG_TRUNC_NORMAL] = "random_truncated_normal",
};

const char *evo_op_name(evo_op op) {
  return (op >= 0 && op < EVO_OP_COUNT && op_names[op]) ? op_names[op] : "?";
}

evo_graph *evo_graph_new(void) {
  evo_graph *g = calloc(1, sizeof *g);
  return g;
}

void evo_graph_free(evo_graph *g) {
  if (!g) return;
  for (int i = 0; i < g->n_nodes; i++) {
    free(g->nodes[i].cdata);
    free(g->nodes[i].name);
  }
  free(g->nodes);
  free(g->inputs);
  free(g->outputs);
  free(g);
}

evo_status evo_graph_status(const evo_graph *g) { return g ? g->status : EVO_STATUS_INVALID_ARGUMENT; }
const char *evo_graph_error(const evo_graph *g) { return g ? g->error : "null graph"; }

evo_node evo_graph_fail(evo_graph *g, const char *fmt, ...) {
  if (g->status == EVO_STATUS_OK) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->error, sizeof g->error, fmt, ap);
    va_end(ap);
    g->status = EVO_STATUS_INVALID_ARGUMENT;
    evo_error(g->status, "%s", g->error);
  }
  return EVO_NODE_INVALID;
}

static bool grow(void **buf, int *cap, int need, size_t elem) {
  if (need <= *cap) return true;
  int nc = *cap ? *cap * 2 : 64;
  while (nc < need) nc *= 2;
  void *nb = realloc(*buf, (size_t)nc * elem);
  if (!nb) return false;
  *buf = nb;
  *cap = nc;
  return true;
}

evo_node evo_graph_push(evo_graph *g, const evo_node_t *n) {
  if (!grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes)) {
    g->status = EVO_STATUS_OUT_OF_MEMORY;
    snprintf(g->error, sizeof g->error, "out of memory adding a node");
    return EVO_NODE_INVALID;
  }
  g->nodes[g->n_nodes] = *n;
  return g->n_nodes++;
}

bool evo_graph_check_ids(evo_graph *g, int n, const evo_node *ids) {
  if (!g || g->status != EVO_STATUS_OK) return false;
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= g->n_nodes) {
      if (ids[i] != EVO_NODE_INVALID) evo_graph_fail(g, "node id %d is not in this graph", (int)ids[i]);
      return false;
    }
  return true;
}

evo_node evo_input(evo_graph *g, const char *name, evo_dtype dtype, int ndim, const int64_t *shape) {
  if (!g || g->status != EVO_STATUS_OK) return EVO_NODE_INVALID;
  if (ndim < 0 || ndim > EVO_MAX_DIMS) return evo_graph_fail(g, "input: ndim %d out of range", ndim);
  if ((unsigned)dtype >= EVO_DTYPE_COUNT) return evo_graph_fail(g, "input: bad dtype");
  evo_node_t n = {.op = EVO_OP_INPUT, .dtype = dtype, .ndim = ndim};
  for (int d = 0; d < ndim; d++) {
    if (shape[d] <= 0) return evo_graph_fail(g, "input %s: dim %d is %lld", name ? name : "", d, (long long)shape[d]);
    n.shape[d] = shape[d];
  }
  if (!grow((void **)&g->inputs, &g->cap_inputs, g->n_inputs + 1, sizeof *g->inputs))
    return evo_graph_fail(g, "out of memory");
  if (name) {
    n.name = malloc(strlen(name) + 1);
    if (n.name) strcpy(n.name, name);
  }
  evo_node id = evo_graph_push(g, &n);
  if (id == EVO_NODE_INVALID) {
    free(n.name);
    return id;
  }
  g->inputs[g->n_inputs++] = id;
  return id;
}

evo_status evo_output(evo_graph *g, evo_node x) {
  if (!g) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "null graph");
  if (!evo_graph_check_ids(g, 1, &x)) {
    if (g->status == EVO_STATUS_OK) evo_graph_fail(g, "output: invalid node");
    return g->status;
  }
  if (!grow((void **)&g->outputs, &g->cap_outputs, g->n_outputs + 1, sizeof *g->outputs))
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "out of memory");
  g->outputs[g->n_outputs++] = x;
  return EVO_STATUS_OK;
}

int evo_graph_n_inputs(const evo_graph *g) { return g->n_inputs; }
int evo_graph_n_outputs(const evo_graph *g) { return g->n_outputs; }
evo_node evo_graph_input(const evo_graph *g, int i) { return (i >= 0 && i < g->n_inputs) ? g->inputs[i] : -1; }
evo_node evo_graph_output(const evo_graph *g, int i) { return (i >= 0 && i < g->n_outputs) ? g->outputs[i] : -1; }
int evo_graph_n_nodes(const evo_graph *g) { return g->n_nodes; }

evo_dtype evo_node_dtype(const evo_graph *g, evo_node x) { return g->nodes[x].dtype; }
int evo_node_ndim(const evo_graph *g, evo_node x) { return g->nodes[x].ndim; }
const int64_t *evo_node_shape(const evo_graph *g, evo_node x) { return g->nodes[x].shape; }
int64_t evo_node_numel(const evo_graph *g, evo_node x) {
  return evo_shape_numel(g->nodes[x].ndim, g->nodes[x].shape);
}

int64_t evo_shape_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  return n;
}

bool evo_broadcast_shapes(int na, const int64_t *a, int nb, const int64_t *b, int *nout, int64_t *out) {
  int n = na > nb ? na : nb;
  int64_t tmp[EVO_MAX_DIMS];
  for (int i = 0; i < n; i++) {
    int64_t da = i < na ? a[na - 1 - i] : 1, db = i < nb ? b[nb - 1 - i] : 1;
    if (da != db && da != 1 && db != 1) return false;
    tmp[n - 1 - i] = da == 1 ? db : da;
  }
  memcpy(out, tmp, sizeof(int64_t) * (size_t)n);
  *nout = n;
  return true;
}
