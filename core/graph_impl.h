/* Internal: graph and node layout shared by the builders, transforms, jit and backends. */
#ifndef EVOC_GRAPH_IMPL_H
#define EVOC_GRAPH_IMPL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "evoc/graph.h"
#include "ops.h"
#ifdef __cplusplus
extern "C" {
#endif

#define EVO_MAX_INPUTS 8

typedef struct {
  int32_t axis;     /* single-axis ops (non-negative) */
  uint32_t axes;    /* reductions: bit d set = reduce input axis d */
  int32_t keepdims; /* reductions, argmax */
  int32_t i[8];     /* op-specific, see ops.h */
  float f[2];       /* op-specific, see ops.h */
} evo_op_params;

typedef struct {
  evo_op op;
  evo_dtype dtype;
  int ndim;
  int64_t shape[EVO_MAX_DIMS];
  int n_in;
  evo_node in[EVO_MAX_INPUTS];
  evo_op_params p;
  void *cdata;  /* EVO_OP_CONST: host data, owned by the graph */
  char *name;   /* EVO_OP_INPUT: optional name, owned by the graph */
} evo_node_t;

struct evo_graph {
  evo_node_t *nodes;
  int n_nodes, cap_nodes;
  evo_node *inputs;
  int n_inputs, cap_inputs;
  evo_node *outputs;
  int n_outputs, cap_outputs;
  evo_status status;
  char error[256];
};

static inline const evo_node_t *evo_graph_node(const evo_graph *g, evo_node x) { return &g->nodes[x]; }

/* Appends a node (copied), returns its id; inputs must be valid and shape/dtype already inferred by the caller.
   On OOM records an error and returns EVO_NODE_INVALID. */
evo_node evo_graph_push(evo_graph *g, const evo_node_t *n);
/* Records the first error of a trace (printf-style); returns EVO_NODE_INVALID for convenience. */
evo_node evo_graph_fail(evo_graph *g, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* true if every node id is valid in g (and the graph has no error so far). */
bool evo_graph_check_ids(evo_graph *g, int n, const evo_node *ids);

/* Creates a node for `op` with `params` on `inputs`, inferring dtype and shape exactly as the public builder of
   that op would (the transforms use this to re-emit nodes). `shape_hint`/`ndim_hint` give the output shape for ops
   whose shape is not implied by their inputs (RESHAPE, BROADCAST_TO, grad ops, SCATTER_ADD, RNG, CONST). */
evo_node evo_graph_emit(evo_graph *g, evo_op op, evo_dtype dtype, int n_in, const evo_node *inputs,
                        const evo_op_params *params, int ndim_hint, const int64_t *shape_hint);

/* Broadcast shapes NumPy-style; false if incompatible. */
bool evo_broadcast_shapes(int na, const int64_t *a, int nb, const int64_t *b, int *nout, int64_t *out);
int64_t evo_shape_numel(int ndim, const int64_t *shape);

#ifdef __cplusplus
}
#endif

#endif
