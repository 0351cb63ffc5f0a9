/* Internal: the policy object and the helpers shared by mlp.c, cnn.c and lstm.c. */
#ifndef EVOC_POLICY_IMPL_H
#define EVOC_POLICY_IMPL_H
#include "evoc/policy.h"

struct evo_policy {
  evo_policy_kind kind;
  evo_policy_io io;
  evo_ptree *tree;
  evo_policy_output output; /* resolved head (never AUTO) of MLP and LSTM */
  evo_dtype act_dtype;
  union {
    evo_policy_mlp_params mlp;
    evo_policy_cnn_params cnn;
    evo_policy_lstm_params lstm;
  } p;
};

/* Validates io and allocates a policy with an empty tree. */
evo_status evo_policy_alloc(evo_policy_kind kind, const evo_policy_io *io, evo_policy **out);
/* Adds a kernel (LeCun normal) or bias (zeros) entry. */
evo_status evo_policy_add_kernel(evo_policy *pol, const char *name, int ndim, const int64_t *shape);
evo_status evo_policy_add_bias(evo_policy *pol, const char *name, int64_t n);
/* Where a trace takes its parameters from: one flat vector, or one node per tree entry (entries != NULL). */
typedef struct {
  evo_node flat;
  const evo_node *entries;
} evo_policy_src;
/* Entry `i` of the tree: cut out of the flat params node and reshaped to its shape, or entries[i]. */
evo_node evo_policy_param_node(const evo_policy *pol, evo_graph *g, const evo_policy_src *params, int i);
/* x [N, in] @ kernel + bias, with the tree entries i (kernel) and i + 1 (bias). */
evo_node evo_policy_dense(const evo_policy *pol, evo_graph *g, const evo_policy_src *params, int i, evo_node x);

/* Product of the obs dims, and of the action dims (the output units of a continuous head). */
int64_t evo_policy_obs_numel(const evo_policy_io *io);
int64_t evo_policy_act_units(const evo_policy_io *io);
/* Resolves AUTO and checks the head against the action space (argmax needs a discrete one). */
evo_status evo_policy_resolve_output(evo_policy *pol, evo_policy_output requested);
/* Applies the resolved head to y [N, units]: reshape to [N, act...] (continuous) and the activation, or argmax. */
evo_node evo_policy_apply_head(const evo_policy *pol, evo_graph *g, evo_node y);

/* "[2, 3]" */
const char *evo_policy_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape);

/* Config readers (cfg != NULL): fill *p from the section, defaults for absent keys. */
evo_status evo_policy_output_from_cfg(evo_cfg *cfg, evo_policy_output *out);
evo_status evo_policy_mlp_params_from_cfg(evo_cfg *cfg, evo_policy_mlp_params *p);
evo_status evo_policy_cnn_params_from_cfg(evo_cfg *cfg, evo_policy_cnn_params *p);
evo_status evo_policy_lstm_params_from_cfg(evo_cfg *cfg, evo_policy_lstm_params *p);

/* Per-kind tracing (policy.c dispatches). */
evo_node evo_policy_mlp_trace(const evo_policy *pol, evo_graph *g, const evo_policy_src *params, evo_node obs);
evo_node evo_policy_cnn_trace(const evo_policy *pol, evo_graph *g, const evo_policy_src *params, evo_node obs);
evo_node evo_policy_lstm_trace(const evo_policy *pol, evo_graph *g, const evo_policy_src *params, evo_node obs,
                               const evo_node *state_in, evo_node *state_out);

#endif
