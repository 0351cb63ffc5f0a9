/* Plan-level rewrites.
   - A transposed matmul operand becomes a flag instead of a copy. The backward pass of every dense layer reads
     W^T and x^T (dX = g W^T, dW = x^T g); with the flag the GEMM reads the operand in place (cblas Trans, cuBLAS
     op T) and the plan saves a kernel and a buffer per transpose.
   - A binary op feeding only a unary op (bias add + tanh/relu) becomes one kernel that applies the unary to each
     row while it is in cache: one pass over the activations instead of two. */
#include <stdlib.h>
#include "jit_fuse.h"

/* perm swaps the last two dims and keeps the others. */
static int swaps_last_two(const evo_node_t *t) {
  const int nd = t->ndim;
  if (t->op != EVO_OP_TRANSPOSE || nd < 2) return 0;
  for (int d = 0; d < nd - 2; d++)
    if (t->p.i[d] != d) return 0;
  return t->p.i[nd - 2] == nd - 1 && t->p.i[nd - 1] == nd - 2;
}

/* How many live nodes read each node; an output counts as two readers, so it is never fused away. NULL when out
   of memory: the passes are optimisations only, the unfused plan is still correct. */
static int *count_readers(const evo_node_t *nodes, int n_nodes, const char *live, const evo_node *outputs,
                          int n_outputs) {
  int *readers = calloc((size_t)n_nodes, sizeof(int));
  if (!readers) return NULL;
  for (int i = 0; i < n_nodes; i++)
    if (live[i])
      for (int k = 0; k < nodes[i].n_in; k++) readers[nodes[i].in[k]]++;
  for (int j = 0; j < n_outputs; j++) readers[outputs[j]] += 2;
  return readers;
}

int evo_jit_fold_transposes(evo_node_t *nodes, int n_nodes, char *live, const evo_node *outputs, int n_outputs,
                            evo_backend *be) {
  int *readers = count_readers(nodes, n_nodes, live, outputs, n_outputs);
  if (!readers) return 0;
  int folded = 0;
  for (int i = 0; i < n_nodes; i++) {
    evo_node_t *mm = &nodes[i];
    if (!live[i] || mm->op != EVO_OP_MATMUL || mm->n_in != 2 || mm->dtype != EVO_F32) continue;
    for (int k = 0; k < 2; k++) {
      const evo_node t = mm->in[k];
      if (readers[t] != 1 || mm->p.i[k] || !swaps_last_two(&nodes[t])) continue;
      evo_node_t cand = *mm;
      cand.in[k] = nodes[t].in[0];
      cand.p.i[k] = 1;
      const evo_node_t *ins[EVO_MAX_INPUTS] = {&nodes[cand.in[0]], &nodes[cand.in[1]]};
      if (!be->iface->supports_op(be->ctx, &cand, ins)) continue;
      *mm = cand;
      readers[t] = 0;
      readers[cand.in[k]]++;
      live[t] = 0;
      folded++;
    }
  }
  free(readers);
  return folded;
}

static int is_binary(evo_op op) { return op >= EVO_OP_ADD && op <= EVO_OP_MIN; }
static int is_unary(evo_op op) { return op >= EVO_OP_NEG && op <= EVO_OP_SIGN; }

/* The input of node i when i is a live f32 unary op and that input, also f32, is read by i alone; else -1. */
static evo_node sole_f32_input_of_unary(const evo_node_t *nodes, const char *live, const int *readers, int i) {
  const evo_node_t *u = &nodes[i];
  if (!live[i] || !is_unary(u->op) || u->dtype != EVO_F32) return -1;
  const evo_node x = u->in[0];
  return readers[x] == 1 && nodes[x].dtype == EVO_F32 ? x : -1;
}

int evo_jit_fuse_elementwise(evo_node_t *nodes, int n_nodes, char *live, const evo_node *outputs, int n_outputs,
                             evo_backend *be) {
  int *readers = count_readers(nodes, n_nodes, live, outputs, n_outputs);
  if (!readers) return 0;
  int fused = 0;
  for (int i = 0; i < n_nodes; i++) {
    evo_node_t *u = &nodes[i];
    const evo_node b = sole_f32_input_of_unary(nodes, live, readers, i);
    if (b < 0 || !is_binary(nodes[b].op)) continue;
    const evo_node_t *bn = &nodes[b];
    evo_node_t cand = *bn;
    cand.op = EVO_OP_FUSED_BINARY_UNARY;
    cand.p.i[0] = bn->op;
    cand.p.i[1] = u->op;
    const evo_node_t *ins[EVO_MAX_INPUTS] = {&nodes[cand.in[0]], &nodes[cand.in[1]]};
    if (!be->iface->supports_op(be->ctx, &cand, ins)) continue;
    *u = cand;
    live[b] = 0;
    fused++;
  }
  free(readers);
  return fused;
}

static int same_shape(const evo_node_t *a, const evo_node_t *b) {
  if (a->ndim != b->ndim) return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return 0;
  return 1;
}

int evo_jit_fuse_matmul_bias_act(evo_node_t *nodes, int n_nodes, char *live, const evo_node *outputs, int n_outputs,
                                 evo_backend *be) {
  int *readers = count_readers(nodes, n_nodes, live, outputs, n_outputs);
  if (!readers) return 0;
  int fused = 0;
  for (int i = 0; i < n_nodes; i++) {
    evo_node_t *u = &nodes[i];
    const evo_node ad = sole_f32_input_of_unary(nodes, live, readers, i);
    if (ad < 0 || nodes[ad].op != EVO_OP_ADD) continue;
    const evo_node_t *an = &nodes[ad];
    for (int side = 0; side < 2; side++) {
      const evo_node m = an->in[side], bias = an->in[1 - side];
      const evo_node_t *mn = &nodes[m];
      if (mn->op != EVO_OP_MATMUL || readers[m] != 1 || mn->dtype != EVO_F32 || !same_shape(mn, an)) continue;
      evo_node_t cand = *mn;
      cand.op = EVO_OP_FUSED_MATMUL_BIAS_ACT;
      cand.n_in = 3;
      cand.in[2] = bias;
      cand.p.i[2] = u->op;
      const evo_node_t *ins[EVO_MAX_INPUTS] = {&nodes[cand.in[0]], &nodes[cand.in[1]], &nodes[bias]};
      if (!be->iface->supports_op(be->ctx, &cand, ins)) continue;
      *u = cand;
      live[ad] = live[m] = 0;
      fused++;
      break;
    }
  }
  free(readers);
  return fused;
}
