/* Internal: deep copy of a graph (used by autodiff, which extends a copy of the forward graph in place). */
#ifndef EVOC_GRAPH_CLONE_H
#define EVOC_GRAPH_CLONE_H
#include "graph_impl.h"

/* A new graph with the same nodes (same ids, inputs and params), inputs, outputs and status; constant data and
   input names are copied, so the clone and g can be freed independently. NULL (and evo_last_error) on OOM. */
evo_graph *evo_graph_clone(const evo_graph *g);

#endif
