/* Policies: networks written once for ONE population member, turned into population functions with vmap.
 *
 * A policy sees observations, never a task (DESIGN.md §2): it is created from its config section (or a params
 * struct) plus the observation/action shapes (evo_policy_io; the runner copies them from the task's spec). It owns
 * a named parameter tree (ptree.h) whose flat vector is what algorithms evolve, and it traces its forward pass into
 * a graph whose first input is that flat vector:
 *
 *     per member:   params f32 [D], obs f32 [N, obs...]            -> action f32 [N, act...]  (or i32 [N], argmax)
 *     population:   params f32 [P, D], obs [N, obs...] (shared) or [P, N, obs...]  -> action [P, N, ...]
 *
 * Weights are cut out of the flat vector inside the graph (evo_slice + evo_reshape), so vmapping over params turns
 * every dense layer into one batched GEMM and every conv into a grouped conv, with no per-member copies.
 *
 * Flat layout (stable: entries in this order, each C-order, back to back; see evo_ptree_offset):
 *  - MLP:  dense1.kernel [in, h1], dense1.bias [h1], ..., denseK.kernel [h_{K-1}, out], denseK.bias [out]
 *          (K = number of hidden layers + 1; in = product of the obs dims, which are flattened).
 *  - CNN:  per parametrised layer, in layer order: convI.kernel [KH, KW, C, F], convI.bias [F] or
 *          denseJ.kernel [in, out], denseJ.bias [out]; conv and dense are numbered separately from 1. A dense layer
 *          after spatial layers flattens (H, W, C) in that order (NHWC row-major, as Flax's x.reshape).
 *  - LSTM: lstm.wi [in, 4H], lstm.wh [H, 4H], lstm.bias [4H] (gate blocks i, f, g, o along the last axis),
 *          out.kernel [H, out], out.bias [out].
 * Initialisation (evo_policy_init): kernels LeCun normal (Flax's default), biases zero.
 *
 * Heads: MLP and LSTM end with the `output` head; a CNN ends with its last layer, and for a discrete action space
 * every policy ends with argmax over the last axis (i32 [N]).
 *
 * Observations: MLP and LSTM flatten the obs dims. The CNN reads images from the LAST three obs dims (H, W, C; a
 * 2-D obs is [H, W] with C = 1); any leading obs dims are loop dims carried to the action, so an observation of
 * [B, 28, 28, 1] (a batch of images per episode, as in the MNIST task) gives an action [B, classes].
 *
 * Recurrent state (LSTM): the graph takes h, c f32 [N, H] after obs and returns (action, h', c'). The caller owns
 * the state: zeros at the start of an episode, and the simulation manager resets an episode's state by zeroing its
 * rows of h and c when it is done (the policy never sees `done`).
 */
#ifndef EVOC_POLICY_H
#define EVOC_POLICY_H
#include <stdbool.h>
#include <stdint.h>
#include "evoc/config.h"
#include "evoc/graph.h"
#include "evoc/ptree.h"
#include "evoc/rng.h"
#include "evoc/status.h"
#ifdef __cplusplus
extern "C" {
#endif

#define EVO_POLICY_MAX_DIMS 4     /* obs/action rank per observation (matches EVO_TASK_MAX_DIMS) */
#define EVO_POLICY_MAX_HIDDEN 16  /* MLP hidden layers */
#define EVO_POLICY_MAX_LAYERS 32  /* CNN layer list */

/* What the policy maps: one observation of obs_shape to one action. Mirrors the fields of evo_task_spec. */
typedef struct {
  int obs_ndim;
  int64_t obs_shape[EVO_POLICY_MAX_DIMS];
  int act_ndim; /* continuous: action shape; discrete: act_shape[0] = number of actions */
  int64_t act_shape[EVO_POLICY_MAX_DIMS];
  bool discrete;
} evo_policy_io;

typedef enum { EVO_POLICY_MLP = 0, EVO_POLICY_CNN, EVO_POLICY_LSTM } evo_policy_kind;

typedef enum { EVO_POLICY_ACT_TANH = 0, EVO_POLICY_ACT_RELU } evo_policy_activation;

/* Output head of MLP and LSTM. AUTO: argmax for a discrete action space, tanh for a continuous one. argmax gives
   i32 [N] and needs a discrete action space; the others give f32 (for a discrete space: scores [N, n_actions]). */
typedef enum {
  EVO_POLICY_OUT_AUTO = 0,
  EVO_POLICY_OUT_TANH,
  EVO_POLICY_OUT_LINEAR,
  EVO_POLICY_OUT_SOFTMAX,
  EVO_POLICY_OUT_LOG_SOFTMAX,
  EVO_POLICY_OUT_ARGMAX
} evo_policy_output;

typedef struct {
  int n_hidden; /* 0: a linear policy */
  int64_t hidden[EVO_POLICY_MAX_HIDDEN];
  evo_policy_activation activation;
  evo_policy_output output;
} evo_policy_mlp_params;

/* hidden [64, 64], tanh, output auto. */
evo_policy_mlp_params evo_policy_mlp_default_params(void);

typedef enum {
  EVO_POLICY_LAYER_CONV = 0, /* features, kernel, stride, padding; has conv kernel + bias */
  EVO_POLICY_LAYER_DENSE,    /* features; flattens (H, W, C) first when it follows a spatial layer */
  EVO_POLICY_LAYER_RELU,
  EVO_POLICY_LAYER_TANH,
  EVO_POLICY_LAYER_MAXPOOL, /* window = kernel, stride, padding */
  EVO_POLICY_LAYER_AVGPOOL,
  EVO_POLICY_LAYER_FLATTEN,
  EVO_POLICY_LAYER_SOFTMAX,
  EVO_POLICY_LAYER_LOG_SOFTMAX
} evo_policy_layer_kind;

typedef struct {
  evo_policy_layer_kind kind;
  int64_t features;
  int kernel[2]; /* conv kernel / pool window (h, w) */
  int stride[2];
  evo_padding padding;
} evo_policy_layer;

typedef struct {
  int n_layers;
  evo_policy_layer layers[EVO_POLICY_MAX_LAYERS];
} evo_policy_cnn_params;

/* The `evojax_convnet` preset. */
evo_policy_cnn_params evo_policy_cnn_default_params(void);
/* Presets: "evojax_convnet": conv 8@5x5 SAME, relu, maxpool 2, conv 16@5x5 SAME, relu, maxpool 2, dense 10,
   log_softmax (11,274 parameters on 28x28x1). "seed_cnn" (the Flax MNIST tutorial): conv 16@5x5 SAME, relu,
   maxpool 2, flatten, dense 1024, relu, dense 10 (logits). NOT_FOUND for another name. */
evo_status evo_policy_cnn_preset(const char *name, evo_policy_cnn_params *out);

typedef struct {
  int64_t hidden; /* H */
  evo_policy_output output;
} evo_policy_lstm_params;

/* hidden 32, output auto. */
evo_policy_lstm_params evo_policy_lstm_default_params(void);

typedef struct evo_policy evo_policy; /* opaque */

/* From the `policy` config section (NULL: an MLP with defaults):
     name: mlp | cnn | lstm
     mlp:  hidden: [64, 64], activation: tanh|relu, output: auto|tanh|linear|softmax|log_softmax|argmax
     cnn:  preset: evojax_convnet|seed_cnn   or   layers: [ {type: conv, features: 8, kernel: 5, stride: 1,
           padding: same}, relu, {type: maxpool, window: 2, stride: 2, padding: valid}, flatten,
           {type: dense, features: 10}, log_softmax ]   (kernel/window/stride: a number or [h, w])
     lstm: hidden: 32, output: as mlp
   Keys nobody has read are reported by evo_cfg_check_unused at the end (a caller that keeps its own keys in this
   section reads them first). Shape mismatches (e.g. the net's output vs act_shape) give
   INVALID_ARGUMENT naming both shapes. */
evo_status evo_policy_new(evo_cfg *cfg, const evo_policy_io *io, evo_policy **out);
evo_status evo_policy_mlp_new(const evo_policy_mlp_params *p, const evo_policy_io *io, evo_policy **out);
evo_status evo_policy_cnn_new(const evo_policy_cnn_params *p, const evo_policy_io *io, evo_policy **out);
evo_status evo_policy_lstm_new(const evo_policy_lstm_params *p, const evo_policy_io *io, evo_policy **out);
void evo_policy_free(evo_policy *pol);

evo_policy_kind evo_policy_kind_of(const evo_policy *pol);
const char *evo_policy_name(const evo_policy *pol); /* "mlp", "cnn", "lstm" */
const evo_policy_io *evo_policy_get_io(const evo_policy *pol);
int64_t evo_policy_num_params(const evo_policy *pol); /* D */
const evo_ptree *evo_policy_ptree(const evo_policy *pol);
/* Recurrent state: number of state tensors (0, or 2 for the LSTM: h then c) and their width H. */
int evo_policy_state_count(const evo_policy *pol);
int64_t evo_policy_state_size(const evo_policy *pol);
/* dtype of the action output: EVO_I32 for an argmax head, EVO_F32 otherwise. */
evo_dtype evo_policy_action_dtype(const evo_policy *pol);

/* flat[0..D) from the tree's initialisers; entry i draws from fold_in(key, i). */
evo_status evo_policy_init(const evo_policy *pol, evo_key key, float *flat);

/* Traces one member's forward pass into g (to build a loss or a rollout step around it). params: f32 [D];
   obs: f32 [N, obs...]; state_in/state_out: evo_policy_state_count nodes each (NULL when stateless). Returns the
   action node. On failure returns EVO_NODE_INVALID: an op error is recorded in g (evo_graph_status); a params or
   obs node of the wrong shape leaves g untouched and the cause in evo_last_error(). */
evo_node evo_policy_trace(const evo_policy *pol, evo_graph *g, evo_node params, evo_node obs,
                          const evo_node *state_in, evo_node *state_out);
/* As evo_policy_trace with the parameters given entry by entry: entries[i] is an f32 node of the shape of ptree
   entry i. Gradient training differentiates (or freezes) each entry on its own this way; the gradient of a flat
   vector would be a sum of zero-padded copies of every entry's gradient. */
evo_node evo_policy_trace_entries(const evo_policy *pol, evo_graph *g, const evo_node *entries, evo_node obs,
                                  const evo_node *state_in, evo_node *state_out);

/* Per-member graph. Inputs: "params" [D], "obs" [n_obs, obs...] (+ "h", "c" [n_obs, H]); outputs: action
   (+ h', c'). The caller frees *out. */
evo_status evo_policy_graph(const evo_policy *pol, int64_t n_obs, evo_graph **out);
/* vmap of the per-member graph over params (axis 0, size pop): params [pop, D]; obs [n_obs, obs...] when
   shared_obs (every member sees the same observations) else [pop, n_obs, obs...]; state [pop, n_obs, H] (always
   per member). Outputs gain a leading pop axis. */
evo_status evo_policy_population_graph(const evo_policy *pol, int64_t pop, int64_t n_obs, bool shared_obs,
                                       evo_graph **out);

#ifdef __cplusplus
}
#endif
#endif
