/* Internal: plan-level rewrites the jit applies to its copy of the graph's nodes (core/jit_fuse.c). */
#ifndef EVOC_JIT_FUSE_H
#define EVOC_JIT_FUSE_H
#include "backend_impl.h"

/* Folds TRANSPOSE nodes that swap only the last two dims into the MATMUL reading them (its trans flags, ops.h)
   when the matmul is their only reader and the backend accepts the flagged matmul. live[] marks the nodes the
   plan computes; a folded transpose is marked dead. Returns the number of transposes folded. */
int evo_jit_fold_transposes(evo_node_t *nodes, int n_nodes, char *live, const evo_node *outputs, int n_outputs,
                            evo_backend *be);

/* Fuses each f32 unary op (an activation) with the node it reads, when it is that node's only reader, into one
   plan-only node in the unary's place (ops.h), where the backend accepts it:
   - MATMUL -> ADD (a bias constant along the product's rows) -> unary: EVO_OP_FUSED_MATMUL_BIAS_ACT, the matmul
     read by the add alone; the matmul and the add are marked dead;
   - otherwise binary (ADD..MIN) -> unary: EVO_OP_FUSED_BINARY_UNARY; the binary is marked dead.
   Returns the number of nodes fused. */
int evo_jit_fuse_activations(evo_node_t *nodes, int n_nodes, char *live, const evo_node *outputs, int n_outputs,
                             evo_backend *be);

#endif
