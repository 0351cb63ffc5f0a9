/* Internal: state shared by the autodiff driver (autodiff.c) and the backward rules (autodiff_rules.c). */
#ifndef EVOC_AUTODIFF_IMPL_H
#define EVOC_AUTODIFF_IMPL_H
#include <stdbool.h>
#include "graph_impl.h"

typedef struct {
  evo_graph *g;      /* clone of the forward graph being extended: forward node ids are valid in it */
  const bool *needs; /* per forward node: lies on a path from a wrt input and is differentiable */
  evo_node *adj;     /* per forward node: accumulated adjoint in g, or EVO_NODE_INVALID */
} evo_ad_ctx;

/* a + b as one pad of the joined pieces when a and b are pads (f32, same shape and axis) whose non-zero pieces do
   not overlap (autodiff_join.c); EVO_NODE_INVALID when they cannot be joined (then add them). */
evo_node evo_ad_join_pads(evo_graph *g, evo_node a, evo_node b);

/* true if op can pass gradient to any of its inputs (comparisons, argmax, RNG, ... cannot). */
bool evo_ad_differentiable(const evo_node_t *n);

/* Emits the backward rule of forward node `id` given its adjoint `gy`, accumulating into c->adj of the inputs
   that need gradients. Returns a status (UNSUPPORTED for ops without a rule, with evo_last_error set). */
evo_status evo_ad_backward(evo_ad_ctx *c, evo_node id, evo_node gy);

/* Sums x over the dims that broadcasting added to reach it from `shape` (extra leading dims and dims that are 1
   in `shape`), giving exactly `shape`. */
evo_node evo_ad_sum_to_shape(evo_graph *g, evo_node x, int ndim, const int64_t *shape);

#endif
