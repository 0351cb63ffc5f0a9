/* Deep copy of a graph. Node ids stay the same, so a transform that extends the clone can keep using the ids of
   the original graph. */
#include <stdlib.h>
#include <string.h>
#include "graph_clone.h"

static void *dup_bytes(const void *src, size_t n) {
  void *p = malloc(n ? n : 1);
  if (p && n) memcpy(p, src, n);
  return p;
}

static void *dup_array(const evo_node *src, int n, int *cap) {
  *cap = n;
  return n ? dup_bytes(src, sizeof *src * (size_t)n) : NULL;
}

evo_graph *evo_graph_clone(const evo_graph *g) {
  if (!g) {
    evo_error(EVO_STATUS_INVALID_ARGUMENT, "graph_clone: null graph");
    return NULL;
  }
  evo_graph *c = evo_graph_new();
  if (!c) goto oom;
  c->status = g->status;
  memcpy(c->error, g->error, sizeof c->error);
  c->inputs = dup_array(g->inputs, g->n_inputs, &c->cap_inputs);
  c->outputs = dup_array(g->outputs, g->n_outputs, &c->cap_outputs);
  if ((g->n_inputs && !c->inputs) || (g->n_outputs && !c->outputs)) goto oom;
  c->n_inputs = g->n_inputs;
  c->n_outputs = g->n_outputs;
  if (g->n_nodes) {
    c->nodes = calloc((size_t)g->n_nodes, sizeof *c->nodes);
    if (!c->nodes) goto oom;
    c->cap_nodes = g->n_nodes;
  }
  for (int i = 0; i < g->n_nodes; i++) {
    const evo_node_t *n = &g->nodes[i];
    evo_node_t m = *n;
    m.cdata = NULL;
    m.name = NULL;
    /* Only CONST nodes own data: numel elements of the node's dtype. */
    if (n->cdata) m.cdata = dup_bytes(n->cdata, (size_t)evo_shape_numel(n->ndim, n->shape) * evo_dtype_size(n->dtype));
    if (n->name) m.name = dup_bytes(n->name, strlen(n->name) + 1);
    c->nodes[i] = m;
    c->n_nodes = i + 1; /* counted before the check so evo_graph_free releases what was copied */
    if ((n->cdata && !m.cdata) || (n->name && !m.name)) goto oom;
  }
  return c;
oom:
  evo_graph_free(c);
  evo_error(EVO_STATUS_OUT_OF_MEMORY, "graph_clone: out of memory");
  return NULL;
}
