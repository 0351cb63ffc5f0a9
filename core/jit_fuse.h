/* Internal: plan-level rewrites the jit applies to its copy of the graph's nodes (core/jit_fuse.c). */
#ifndef EVOC_JIT_FUSE_H
#define EVOC_JIT_FUSE_H
#include "backend_impl.h"

/* Folds TRANSPOSE nodes that swap only the last two dims into the MATMUL reading them (its trans flags, ops.h)
   when the matmul is their only reader and the backend accepts the flagged matmul. live[] marks the nodes the
   plan computes; a folded transpose is marked dead. Returns the number of transposes folded. */
int evo_jit_fold_transposes(evo_node_t *nodes, int n_nodes, char *live, const evo_node *outputs, int n_outputs,
                            evo_backend *be);

/* Fuses a binary elementwise op (ADD..MIN) whose only reader is a unary elementwise op into one
   EVO_OP_FUSED_BINARY_UNARY node (ops.h) in the unary's place (bias add + activation), where the backend
   accepts it; the binary is marked dead. Returns the number of pairs fused. */
int evo_jit_fuse_elementwise(evo_node_t *nodes, int n_nodes, char *live, const evo_node *outputs, int n_outputs,
                             evo_backend *be);

/* Fuses MATMUL -> ADD (a bias constant along the product's rows) -> unary activation, each read only by the
   next, into one EVO_OP_FUSED_MATMUL_BIAS_ACT node (ops.h) in the unary's place, where the backend accepts it;
   the matmul and the add are marked dead. Run before evo_jit_fuse_elementwise, which would take the add. Returns
   the number of layers fused. */
int evo_jit_fuse_matmul_bias_act(evo_node_t *nodes, int n_nodes, char *live, const evo_node *outputs, int n_outputs,
                                 evo_backend *be);

#endif
