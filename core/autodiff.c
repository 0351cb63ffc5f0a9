/* Reverse-mode autodiff by graph rewriting (as in ggml): the result is a copy of the forward graph extended with
   the backward pass, built from ordinary ops by the rules in autodiff_rules.c. The adjoint of the chosen scalar
   output is seeded with 1 and propagated to inputs in reverse node order (ids are topological), accumulating with
   add; only nodes on a path from a wrt input get adjoints. */
#include <stdlib.h>
#include <string.h>
#include "autodiff_impl.h"
#include "evoc/transform.h"
#include "graph_clone.h"

/* Checks the arguments; on failure sets the last error and returns false. */
static bool check_args(const char *fn, const evo_graph *g, int out_index, int n_wrt, const int *wrt) {
  if (!g) {
    evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: null graph", fn);
    return false;
  }
  if (g->status != EVO_STATUS_OK) {
    evo_error(g->status, "%s: the graph has an error: %s", fn, g->error);
    return false;
  }
  if (out_index < 0 || out_index >= g->n_outputs) {
    evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: output %d does not exist (the graph has %d)", fn, out_index,
              g->n_outputs);
    return false;
  }
  const evo_node_t *y = &g->nodes[g->outputs[out_index]];
  if (y->dtype != EVO_F32 || y->ndim != 0) {
    evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: output %d must be an f32 scalar (is %s with %d dims); reduce it "
              "with evo_sum or evo_mean first", fn, out_index, evo_dtype_name(y->dtype), y->ndim);
    return false;
  }
  if (n_wrt < 1 || !wrt) {
    evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: no inputs to differentiate with respect to", fn);
    return false;
  }
  for (int k = 0; k < n_wrt; k++) {
    if (wrt[k] < 0 || wrt[k] >= g->n_inputs) {
      evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: wrt[%d] = %d is not an input (the graph has %d)", fn, k, wrt[k],
                g->n_inputs);
      return false;
    }
    const evo_node_t *x = &g->nodes[g->inputs[wrt[k]]];
    if (x->dtype != EVO_F32) {
      evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: input %d%s%s%s is %s; only f32 inputs have gradients", fn,
                wrt[k], x->name ? " (" : "", x->name ? x->name : "", x->name ? ")" : "", evo_dtype_name(x->dtype));
      return false;
    }
  }
  return true;
}

static evo_graph *grad_impl(const char *fn, const evo_graph *g, int out_index, int n_wrt, const int *wrt,
                            bool with_value) {
  if (!check_args(fn, g, out_index, n_wrt, wrt)) return NULL;
  evo_node out = g->outputs[out_index];
  int nf = g->n_nodes;
  bool *needs = calloc((size_t)nf, sizeof *needs);
  evo_node *adj = malloc(sizeof *adj * (size_t)nf);
  evo_graph *ng = evo_graph_clone(g);
  if (!needs || !adj || !ng) {
    free(needs);
    free(adj);
    evo_graph_free(ng);
    evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
    return NULL;
  }
  ng->n_outputs = 0;

  /* Forward: which nodes depend on a wrt input through differentiable ops. */
  for (int k = 0; k < n_wrt; k++) needs[g->inputs[wrt[k]]] = true;
  for (int id = 0; id < nf; id++) {
    const evo_node_t *n = &g->nodes[id];
    adj[id] = EVO_NODE_INVALID;
    if (n->op == EVO_OP_INPUT || !evo_ad_differentiable(n)) continue;
    for (int i = 0; i < n->n_in && !needs[id]; i++) needs[id] = needs[n->in[i]];
  }

  /* Backward: nodes after the output cannot affect it. */
  evo_ad_ctx c = {.g = ng, .needs = needs, .adj = adj};
  evo_status st = EVO_STATUS_OK;
  if (needs[out]) adj[out] = evo_scalar(ng, 1.f);
  for (evo_node id = out; id >= 0 && st == EVO_STATUS_OK && ng->status == EVO_STATUS_OK; id--) {
    if (adj[id] == EVO_NODE_INVALID || !needs[id] || g->nodes[id].op == EVO_OP_INPUT) continue;
    st = evo_ad_backward(&c, id, adj[id]);
  }

  if (st == EVO_STATUS_OK && with_value) evo_output(ng, out);
  for (int k = 0; st == EVO_STATUS_OK && k < n_wrt; k++) {
    evo_node x = g->inputs[wrt[k]], gx = adj[x];
    if (gx == EVO_NODE_INVALID) gx = evo_full(ng, 0.f, g->nodes[x].ndim, g->nodes[x].shape); /* no path */
    evo_output(ng, gx);
  }
  if (st == EVO_STATUS_OK && ng->status != EVO_STATUS_OK) {
    st = ng->status;
    evo_error(st, "%s: building the backward pass failed: %s", fn, ng->error);
  }
  free(needs);
  free(adj);
  if (st != EVO_STATUS_OK) {
    evo_graph_free(ng);
    return NULL;
  }
  return ng;
}

evo_graph *evo_grad(const evo_graph *g, int out_index, int n_wrt, const int *wrt) {
  return grad_impl("grad", g, out_index, n_wrt, wrt, false);
}

evo_graph *evo_value_and_grad(const evo_graph *g, int out_index, int n_wrt, const int *wrt) {
  return grad_impl("value_and_grad", g, out_index, n_wrt, wrt, true);
}
