/* Graph transforms: vmap and reverse-mode autodiff. Each returns a new graph; the input graph is unchanged.
   They compose: vmap(grad(f)) gives per-example gradients, vmap(vmap(f)) nests. */
#ifndef EVOC_TRANSFORM_H
#define EVOC_TRANSFORM_H
#include <stdbool.h>
#include <stdint.h>
#include "evoc/graph.h"
#ifdef __cplusplus
extern "C" {
#endif

#define EVO_VMAP_NONE (-1000) /* in_axes / out_axes entry: input shared (not mapped) */

/* vmap: in_axes[i] is the axis of input i that carries the batch (size `batch`), or EVO_VMAP_NONE for a shared
   input; out_axes[j] is where the batch axis goes in output j (an output that does not depend on a mapped input
   is broadcast). NULL in_axes/out_axes means 0 for all. The new graph's inputs have the batched shapes. */
evo_graph *evo_vmap(const evo_graph *g, int64_t batch, const int *in_axes, const int *out_axes);

/* grad of output `out_index` (must be an f32 scalar; use evo_sum/evo_mean first) w.r.t. inputs wrt[0..n_wrt).
   New graph: same inputs; outputs = gradients in wrt order (each the shape of its input). Gradient graphs are
   ordinary graphs: add an output (e.g. sum(grad * v)) and call evo_grad again for Hessian-vector products and
   higher derivatives, through every op including conv2d and the poolings. Max pooling's derivative is taken at
   each window's first maximum (row-major), at every order. */
evo_graph *evo_grad(const evo_graph *g, int out_index, int n_wrt, const int *wrt);
/* As evo_grad, with output 0 = the value and outputs 1..n_wrt = the gradients. */
evo_graph *evo_value_and_grad(const evo_graph *g, int out_index, int n_wrt, const int *wrt);

#ifdef __cplusplus
}
#endif
#endif
