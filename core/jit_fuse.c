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

static int same_shape(const evo_node_t *a, const evo_node_t *b) {
  if (a->ndim != b->ndim) return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return 0;
  return 1;
}

/* Activation u (node i) of ad = ADD(matmul, bias), the matmul read by the add alone: one FUSED_MATMUL_BIAS_ACT in
   u's place, if the backend takes it. */
static int fuse_layer(evo_node_t *nodes, char *live, const int *readers, int i, evo_backend *be) {
  evo_node_t *u = &nodes[i];
  const evo_node ad = u->in[0];
  const evo_node_t *an = &nodes[ad];
  if (an->op != EVO_OP_ADD) return 0;
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
    return 1;
  }
  return 0;
}

/* Unary u (node i) of a binary op b: one FUSED_BINARY_UNARY in u's place, if the backend takes it. */
static int fuse_pair(evo_node_t *nodes, char *live, int i, evo_backend *be) {
  evo_node_t *u = &nodes[i];
  const evo_node b = u->in[0];
  const evo_node_t *bn = &nodes[b];
  if (!is_binary(bn->op)) return 0;
  evo_node_t cand = *bn;
  cand.op = EVO_OP_FUSED_BINARY_UNARY;
  cand.p.i[0] = bn->op;
  cand.p.i[1] = u->op;
  const evo_node_t *ins[EVO_MAX_INPUTS] = {&nodes[cand.in[0]], &nodes[cand.in[1]]};
  if (!be->iface->supports_op(be->ctx, &cand, ins)) return 0;
  *u = cand;
  live[b] = 0;
  return 1;
}

int evo_jit_fuse_activations(evo_node_t *nodes, int n_nodes, char *live, const evo_node *outputs, int n_outputs,
                             evo_backend *be) {
  int *readers = count_readers(nodes, n_nodes, live, outputs, n_outputs);
  if (!readers) return 0;
  int fused = 0;
  for (int i = 0; i < n_nodes; i++) {
    const evo_node_t *u = &nodes[i];
    if (!live[i] || !is_unary(u->op) || u->dtype != EVO_F32) continue;
    const evo_node x = u->in[0];
    if (readers[x] != 1 || nodes[x].dtype != EVO_F32) continue;
    fused += fuse_layer(nodes, live, readers, i, be) || fuse_pair(nodes, live, i, be);
  }
  free(readers);
  return fused;
}
