/* Tracing: a function is a graph built from typed inputs to outputs.
 *
 * Every op has core dims and loop dims (NumPy gufunc style): elementwise ops have no core dims; matmul has
 * (m,k),(k,n)->(m,n); conv2d (H,W,C),(KH,KW,C,F)->(OH,OW,F); reductions reduce chosen axes. All leading dims in
 * front of the core dims are loop dims and broadcast across inputs NumPy-style (right-aligned, size 1 stretches).
 *
 * Builders never abort: on a bad shape, dtype or axis they record the first error in the graph and return
 * EVO_NODE_INVALID; any builder given an invalid input returns EVO_NODE_INVALID too, so a trace can be written
 * straight through and checked once with evo_graph_status().
 *
 * Axes may be negative (counted from the end) and are normalised to non-negative at trace time.
 * dtypes: arithmetic, unary, reductions, matmul, conv, pooling, softmax: f32. Comparisons accept f32/i32 and give
 * u8 (0/1). Shape ops (reshape, transpose, broadcast_to, concat, slice, pad) accept every dtype.
 */
#ifndef EVOC_GRAPH_H
#define EVOC_GRAPH_H
#include <stdbool.h>
#include <stdint.h>
#include "evoc/status.h"
#include "evoc/tensor.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t evo_node;
#define EVO_NODE_INVALID ((evo_node)-1)

typedef struct evo_graph evo_graph; /* opaque */

evo_graph *evo_graph_new(void);
void evo_graph_free(evo_graph *g);
/* First error recorded while tracing (EVO_STATUS_OK if none); the message is in evo_graph_error(). */
evo_status evo_graph_status(const evo_graph *g);
const char *evo_graph_error(const evo_graph *g);

/* Inputs are numbered in creation order; outputs in the order they are marked. */
evo_node evo_input(evo_graph *g, const char *name, evo_dtype dtype, int ndim, const int64_t *shape);
evo_status evo_output(evo_graph *g, evo_node x);
int evo_graph_n_inputs(const evo_graph *g);
int evo_graph_n_outputs(const evo_graph *g);
evo_node evo_graph_input(const evo_graph *g, int i);
evo_node evo_graph_output(const evo_graph *g, int i);
int evo_graph_n_nodes(const evo_graph *g);

/* Shape queries on any node. The returned shape pointer is valid until the next builder call on the same graph
   (nodes live in a growing array): copy it before building more nodes. */
evo_dtype evo_node_dtype(const evo_graph *g, evo_node x);
int evo_node_ndim(const evo_graph *g, evo_node x);
const int64_t *evo_node_shape(const evo_graph *g, evo_node x);
int64_t evo_node_numel(const evo_graph *g, evo_node x);

/* Constants: copied into the graph. */
evo_node evo_constant(evo_graph *g, evo_dtype dtype, int ndim, const int64_t *shape, const void *data);
evo_node evo_scalar(evo_graph *g, float value); /* f32, shape [] */
evo_node evo_full(evo_graph *g, float value, int ndim, const int64_t *shape); /* f32 */

/* Unary (f32). */
evo_node evo_neg(evo_graph *g, evo_node x);
evo_node evo_abs(evo_graph *g, evo_node x);
evo_node evo_exp(evo_graph *g, evo_node x);
evo_node evo_log(evo_graph *g, evo_node x);
evo_node evo_sqrt(evo_graph *g, evo_node x);
evo_node evo_tanh(evo_graph *g, evo_node x);
evo_node evo_sigmoid(evo_graph *g, evo_node x);
evo_node evo_relu(evo_graph *g, evo_node x);
evo_node evo_sin(evo_graph *g, evo_node x);
evo_node evo_cos(evo_graph *g, evo_node x);
evo_node evo_square(evo_graph *g, evo_node x); /* x*x */

/* Binary with broadcasting (f32). max/min: gradient goes to `a` on ties. */
evo_node evo_add(evo_graph *g, evo_node a, evo_node b);
evo_node evo_sub(evo_graph *g, evo_node a, evo_node b);
evo_node evo_mul(evo_graph *g, evo_node a, evo_node b);
evo_node evo_div(evo_graph *g, evo_node a, evo_node b);
evo_node evo_pow(evo_graph *g, evo_node a, evo_node b);
evo_node evo_maximum(evo_graph *g, evo_node a, evo_node b);
evo_node evo_minimum(evo_graph *g, evo_node a, evo_node b);
evo_node evo_add_scalar(evo_graph *g, evo_node x, float s);
evo_node evo_mul_scalar(evo_graph *g, evo_node x, float s);

/* Comparisons with broadcasting: f32 or i32 in (both the same dtype), u8 0/1 out. */
evo_node evo_lt(evo_graph *g, evo_node a, evo_node b);
evo_node evo_le(evo_graph *g, evo_node a, evo_node b);
evo_node evo_gt(evo_graph *g, evo_node a, evo_node b);
evo_node evo_ge(evo_graph *g, evo_node a, evo_node b);
evo_node evo_eq(evo_graph *g, evo_node a, evo_node b);
evo_node evo_ne(evo_graph *g, evo_node a, evo_node b);
/* where(cond u8, a, b) with broadcasting of all three; a and b f32. */
evo_node evo_where(evo_graph *g, evo_node cond, evo_node a, evo_node b);
evo_node evo_clip(evo_graph *g, evo_node x, float lo, float hi);
evo_node evo_cast(evo_graph *g, evo_node x, evo_dtype to);

/* Reductions over the axes listed (naxes == 0 means all axes). */
evo_node evo_sum(evo_graph *g, evo_node x, int naxes, const int *axes, bool keepdims);
evo_node evo_mean(evo_graph *g, evo_node x, int naxes, const int *axes, bool keepdims);
evo_node evo_max(evo_graph *g, evo_node x, int naxes, const int *axes, bool keepdims);
evo_node evo_min(evo_graph *g, evo_node x, int naxes, const int *axes, bool keepdims);
evo_node evo_logsumexp(evo_graph *g, evo_node x, int naxes, const int *axes, bool keepdims);
evo_node evo_argmax(evo_graph *g, evo_node x, int axis, bool keepdims); /* i32, first max wins */

/* Linear algebra: a [..., m, k] @ b [..., k, n] -> [..., m, n]; a 1-D a is [k] (treated as [1,k], result
   squeezed), a 1-D b is [k] (treated as [k,1], result squeezed), as in NumPy. */
evo_node evo_matmul(evo_graph *g, evo_node a, evo_node b);

typedef enum { EVO_PAD_VALID = 0, EVO_PAD_SAME = 1 } evo_padding;
/* x [..., H, W, C] (NHWC), w [..., KH, KW, C, F] -> [..., OH, OW, F]. SAME pads like TF/JAX (pad_before =
   total/2). Loop dims broadcast: a batch of images against one kernel, or per-member kernels. */
evo_node evo_conv2d(evo_graph *g, evo_node x, evo_node w, int stride_h, int stride_w, evo_padding pad);
/* x [..., H, W, C] -> [..., OH, OW, C]. Max pooling pads with -inf; average pooling divides by the number of
   non-padding elements in the window. */
evo_node evo_max_pool2d(evo_graph *g, evo_node x, int win_h, int win_w, int stride_h, int stride_w,
                        evo_padding pad);
evo_node evo_avg_pool2d(evo_graph *g, evo_node x, int win_h, int win_w, int stride_h, int stride_w,
                        evo_padding pad);

/* Shape ops. reshape: one entry may be -1 (inferred). */
evo_node evo_reshape(evo_graph *g, evo_node x, int ndim, const int64_t *shape);
evo_node evo_transpose(evo_graph *g, evo_node x, const int *perm); /* perm has ndim(x) entries */
evo_node evo_broadcast_to(evo_graph *g, evo_node x, int ndim, const int64_t *shape);
evo_node evo_concat(evo_graph *g, int n, const evo_node *xs, int axis); /* n <= EVO_MAX_INPUTS */
evo_node evo_slice(evo_graph *g, evo_node x, int axis, int64_t start, int64_t stop); /* [start, stop) */
/* Zero padding of `axis`: lo elements before, hi after (the gradient of slice). */
evo_node evo_pad(evo_graph *g, evo_node x, int axis, int64_t lo, int64_t hi);
evo_node evo_expand_dims(evo_graph *g, evo_node x, int axis);
evo_node evo_squeeze(evo_graph *g, evo_node x, int axis);
evo_node evo_flatten(evo_graph *g, evo_node x, int start_axis); /* merges start_axis..end */
/* x and idx (i32) have the same ndim; dims other than `axis` broadcast; out[..., j, ...] = x[..., idx[..., j,
   ...], ...]. Out-of-range indices give 0 (and no gradient). */
evo_node evo_take_along_axis(evo_graph *g, evo_node x, evo_node idx, int axis);
evo_node evo_one_hot(evo_graph *g, evo_node idx, int depth); /* i32 [...] -> f32 [..., depth] */

/* Normalisation and losses along one axis. */
evo_node evo_softmax(evo_graph *g, evo_node x, int axis);
evo_node evo_log_softmax(evo_graph *g, evo_node x, int axis);
/* logits f32 [..., C], labels i32 [...] -> per-example loss f32 [...] = -log_softmax(logits)[label]. */
evo_node evo_softmax_cross_entropy(evo_graph *g, evo_node logits, evo_node labels);

/* Random numbers from Philox4x32-10 (rng.h). key: u32 [..., 2]; leading dims of key are loop dims (one stream per
   key), the result is [key loop dims..., shape...]. Element j of a stream is a pure function of (key, j). */
evo_node evo_random_uniform(evo_graph *g, evo_node key, int ndim, const int64_t *shape, float lo, float hi);
evo_node evo_random_normal(evo_graph *g, evo_node key, int ndim, const int64_t *shape);
/* Standard normal truncated to [lo, hi] (inverse-CDF, as jax.random.truncated_normal). */
evo_node evo_random_truncated_normal(evo_graph *g, evo_node key, int ndim, const int64_t *shape, float lo,
                                     float hi);

/* Marks gradients as not flowing through x (identity in value). */
evo_node evo_stop_gradient(evo_graph *g, evo_node x);

#ifdef __cplusplus
}
#endif
#endif
