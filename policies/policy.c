/* Policy object, shared helpers and the graph wrappers: the per-member graph and its vmap over the population. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/transform.h"
#include "policy_impl.h"

const char *evo_policy_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
  size_t used = (size_t)snprintf(buf, cap, "[");
  for (int d = 0; d < ndim && used < cap; d++)
    used += (size_t)snprintf(buf + used, cap - used, d ? ", %lld" : "%lld", (long long)shape[d]);
  if (used < cap) snprintf(buf + used, cap - used, "]");
  return buf;
}

static evo_status check_io(const evo_policy_io *io) {
  if (!io) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy: io is NULL");
  if (io->obs_ndim < 1 || io->obs_ndim > EVO_POLICY_MAX_DIMS)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy: observation rank %d (1..%d allowed)", io->obs_ndim,
                     EVO_POLICY_MAX_DIMS);
  if (io->act_ndim < (io->discrete ? 1 : 0) || io->act_ndim > EVO_POLICY_MAX_DIMS)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy: action rank %d (%d..%d allowed)", io->act_ndim,
                     io->discrete ? 1 : 0, EVO_POLICY_MAX_DIMS);
  for (int d = 0; d < io->obs_ndim; d++)
    if (io->obs_shape[d] <= 0)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy: observation dim %d is %lld (must be > 0)", d,
                       (long long)io->obs_shape[d]);
  for (int d = 0; d < io->act_ndim; d++)
    if (io->act_shape[d] <= 0)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy: action dim %d is %lld (must be > 0)", d,
                       (long long)io->act_shape[d]);
  return EVO_STATUS_OK;
}

evo_status evo_policy_alloc(evo_policy_kind kind, const evo_policy_io *io, evo_policy **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy: out is NULL");
  *out = NULL;
  evo_status s = check_io(io);
  if (s) return s;
  evo_policy *pol = calloc(1, sizeof *pol);
  if (!pol || !(pol->tree = evo_ptree_new())) {
    free(pol);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "policy: out of memory");
  }
  pol->kind = kind;
  pol->io = *io;
  pol->act_dtype = EVO_F32;
  *out = pol;
  return EVO_STATUS_OK;
}

void evo_policy_free(evo_policy *pol) {
  if (!pol) return;
  evo_ptree_free(pol->tree);
  free(pol);
}

evo_status evo_policy_add_kernel(evo_policy *pol, const char *name, int ndim, const int64_t *shape) {
  evo_param_spec s = {.name = name, .ndim = ndim, .init = EVO_INIT_LECUN_NORMAL, .scale = 1.0f};
  memcpy(s.shape, shape, sizeof(int64_t) * (size_t)ndim);
  return evo_ptree_add(pol->tree, &s);
}

evo_status evo_policy_add_bias(evo_policy *pol, const char *name, int64_t n) {
  evo_param_spec s = {.name = name, .ndim = 1, .shape = {n}, .init = EVO_INIT_ZEROS};
  return evo_ptree_add(pol->tree, &s);
}

evo_node evo_policy_param_node(const evo_policy *pol, evo_graph *g, const evo_policy_src *params, int i) {
  const evo_param_spec *s = evo_ptree_spec(pol->tree, i);
  if (!s) return EVO_NODE_INVALID;
  if (params->entries) return params->entries[i];
  int64_t off = evo_ptree_offset(pol->tree, i), n = 1;
  for (int d = 0; d < s->ndim; d++) n *= s->shape[d];
  evo_node x = evo_slice(g, params->flat, 0, off, off + n);
  return s->ndim == 1 ? x : evo_reshape(g, x, s->ndim, s->shape);
}

evo_node evo_policy_dense(const evo_policy *pol, evo_graph *g, const evo_policy_src *params, int i, evo_node x) {
  evo_node w = evo_policy_param_node(pol, g, params, i);
  evo_node b = evo_policy_param_node(pol, g, params, i + 1);
  return evo_add(g, evo_matmul(g, x, w), b);
}

int64_t evo_policy_obs_numel(const evo_policy_io *io) {
  int64_t n = 1;
  for (int d = 0; d < io->obs_ndim; d++) n *= io->obs_shape[d];
  return n;
}

int64_t evo_policy_act_units(const evo_policy_io *io) {
  if (io->discrete) return io->act_shape[0];
  int64_t n = 1;
  for (int d = 0; d < io->act_ndim; d++) n *= io->act_shape[d];
  return n;
}

evo_status evo_policy_resolve_output(evo_policy *pol, evo_policy_output requested) {
  evo_policy_output o = requested;
  if (o == EVO_POLICY_OUT_AUTO) o = pol->io.discrete ? EVO_POLICY_OUT_ARGMAX : EVO_POLICY_OUT_TANH;
  if ((unsigned)o > (unsigned)EVO_POLICY_OUT_ARGMAX)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy %s: unknown output head %d", evo_policy_name(pol), (int)o);
  if (o == EVO_POLICY_OUT_ARGMAX && !pol->io.discrete)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT,
                     "policy %s: output argmax gives an action index and needs a discrete action space "
                     "(this one is continuous: use tanh, linear, softmax or log_softmax)",
                     evo_policy_name(pol));
  pol->output = o;
  pol->act_dtype = o == EVO_POLICY_OUT_ARGMAX ? EVO_I32 : EVO_F32;
  return EVO_STATUS_OK;
}

evo_node evo_policy_apply_head(const evo_policy *pol, evo_graph *g, evo_node y) {
  if (evo_graph_status(g)) return EVO_NODE_INVALID;
  if (pol->output == EVO_POLICY_OUT_ARGMAX) return evo_argmax(g, y, -1, false);
  if (!pol->io.discrete && pol->io.act_ndim != 1) {
    int64_t s[EVO_POLICY_MAX_DIMS + 1];
    s[0] = evo_node_shape(g, y)[0];
    memcpy(s + 1, pol->io.act_shape, sizeof(int64_t) * (size_t)pol->io.act_ndim);
    y = evo_reshape(g, y, pol->io.act_ndim + 1, s);
  }
  switch (pol->output) {
  case EVO_POLICY_OUT_TANH: return evo_tanh(g, y);
  case EVO_POLICY_OUT_SOFTMAX: return evo_softmax(g, y, -1);
  case EVO_POLICY_OUT_LOG_SOFTMAX: return evo_log_softmax(g, y, -1);
  default: return y; /* linear */
  }
}

/* ---------------------------------------------------------------- queries */

evo_policy_kind evo_policy_kind_of(const evo_policy *pol) { return pol->kind; }

const char *evo_policy_name(const evo_policy *pol) {
  switch (pol->kind) {
  case EVO_POLICY_MLP: return "mlp";
  case EVO_POLICY_CNN: return "cnn";
  case EVO_POLICY_LSTM: return "lstm";
  }
  return "?";
}

const evo_policy_io *evo_policy_get_io(const evo_policy *pol) { return &pol->io; }
int64_t evo_policy_num_params(const evo_policy *pol) { return evo_ptree_size(pol->tree); }
const evo_ptree *evo_policy_ptree(const evo_policy *pol) { return pol->tree; }
int evo_policy_state_count(const evo_policy *pol) { return pol->kind == EVO_POLICY_LSTM ? 2 : 0; }
int64_t evo_policy_state_size(const evo_policy *pol) { return pol->kind == EVO_POLICY_LSTM ? pol->p.lstm.hidden : 0; }
evo_dtype evo_policy_action_dtype(const evo_policy *pol) { return pol->act_dtype; }

evo_status evo_policy_init(const evo_policy *pol, evo_key key, float *flat) {
  if (!pol) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy_init: policy is NULL");
  return evo_ptree_init(pol->tree, key, flat);
}

/* ---------------------------------------------------------------- graphs */

/* Checks obs against the io and dispatches to the kind's trace. */
static evo_node trace_src(const evo_policy *pol, evo_graph *g, const evo_policy_src *src, evo_node obs,
                          const evo_node *state_in, evo_node *state_out) {
  const evo_policy_io *io = &pol->io;
  int ok = evo_node_dtype(g, obs) == EVO_F32 && evo_node_ndim(g, obs) == io->obs_ndim + 1;
  for (int k = 0; ok && k < io->obs_ndim; k++) ok = evo_node_shape(g, obs)[k + 1] == io->obs_shape[k];
  if (!ok) {
    char buf[96];
    evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy %s: obs must be f32 [N] + %s", evo_policy_name(pol),
              evo_policy_shape_str(buf, sizeof buf, io->obs_ndim, io->obs_shape));
    return EVO_NODE_INVALID;
  }
  switch (pol->kind) {
  case EVO_POLICY_MLP: return evo_policy_mlp_trace(pol, g, src, obs);
  case EVO_POLICY_CNN: return evo_policy_cnn_trace(pol, g, src, obs);
  case EVO_POLICY_LSTM:
    if (!state_in || !state_out) {
      evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy lstm: state_in and state_out (h, c) are required");
      return EVO_NODE_INVALID;
    }
    return evo_policy_lstm_trace(pol, g, src, obs, state_in, state_out);
  }
  return EVO_NODE_INVALID;
}

evo_node evo_policy_trace(const evo_policy *pol, evo_graph *g, evo_node params, evo_node obs,
                          const evo_node *state_in, evo_node *state_out) {
  if (!pol || !g || evo_graph_status(g)) return EVO_NODE_INVALID;
  if (params < 0 || params >= evo_graph_n_nodes(g) || obs < 0 || obs >= evo_graph_n_nodes(g)) return EVO_NODE_INVALID;
  /* Input mismatches are reported through evo_error (the graph API has no public way to record them). */
  int64_t d = evo_policy_num_params(pol);
  if (d > INT32_MAX) { /* slice offsets are 32-bit */
    evo_error(EVO_STATUS_UNSUPPORTED, "policy %s: %lld parameters (at most 2^31 - 1)", evo_policy_name(pol),
              (long long)d);
    return EVO_NODE_INVALID;
  }
  if (evo_node_dtype(g, params) != EVO_F32 || evo_node_ndim(g, params) != 1 || evo_node_shape(g, params)[0] != d) {
    evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy %s: params must be f32 [%lld]", evo_policy_name(pol),
              (long long)d);
    return EVO_NODE_INVALID;
  }
  evo_policy_src src = {.flat = params};
  return trace_src(pol, g, &src, obs, state_in, state_out);
}

evo_node evo_policy_trace_entries(const evo_policy *pol, evo_graph *g, const evo_node *entries, evo_node obs,
                                  const evo_node *state_in, evo_node *state_out) {
  if (!pol || !g || !entries || evo_graph_status(g)) return EVO_NODE_INVALID;
  if (obs < 0 || obs >= evo_graph_n_nodes(g)) return EVO_NODE_INVALID;
  for (int i = 0; i < evo_ptree_count(pol->tree); i++) {
    const evo_param_spec *s = evo_ptree_spec(pol->tree, i);
    evo_node e = entries[i];
    int ok = e >= 0 && e < evo_graph_n_nodes(g) && evo_node_dtype(g, e) == EVO_F32 && evo_node_ndim(g, e) == s->ndim;
    for (int d = 0; ok && d < s->ndim; d++) ok = evo_node_shape(g, e)[d] == s->shape[d];
    if (!ok) {
      char buf[96];
      evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy %s: entry %d (%s) must be f32 %s", evo_policy_name(pol), i,
                s->name, evo_policy_shape_str(buf, sizeof buf, s->ndim, s->shape));
      return EVO_NODE_INVALID;
    }
  }
  evo_policy_src src = {.flat = EVO_NODE_INVALID, .entries = entries};
  return trace_src(pol, g, &src, obs, state_in, state_out);
}

evo_status evo_policy_graph(const evo_policy *pol, int64_t n_obs, evo_graph **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy_graph: out is NULL");
  *out = NULL;
  if (!pol) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy_graph: policy is NULL");
  if (n_obs < 1) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy_graph: n_obs must be >= 1");
  evo_graph *g = evo_graph_new();
  if (!g) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "policy_graph: out of memory");
  int64_t d = evo_policy_num_params(pol), s[EVO_POLICY_MAX_DIMS + 1] = {n_obs};
  memcpy(s + 1, pol->io.obs_shape, sizeof(int64_t) * (size_t)pol->io.obs_ndim);
  evo_node params = evo_input(g, "params", EVO_F32, 1, &d);
  evo_node obs = evo_input(g, "obs", EVO_F32, pol->io.obs_ndim + 1, s);
  evo_node st_in[2], st_out[2];
  int ns = evo_policy_state_count(pol);
  int64_t hs[2] = {n_obs, evo_policy_state_size(pol)};
  static const char *const st_names[2] = {"h", "c"};
  for (int i = 0; i < ns; i++) st_in[i] = evo_input(g, st_names[i], EVO_F32, 2, hs);
  evo_node act = evo_policy_trace(pol, g, params, obs, ns ? st_in : NULL, ns ? st_out : NULL);
  if (act != EVO_NODE_INVALID) {
    evo_output(g, act);
    for (int i = 0; i < ns; i++) evo_output(g, st_out[i]);
  }
  evo_status st = evo_graph_status(g);
  if (st) evo_error(st, "policy %s: %s", evo_policy_name(pol), evo_graph_error(g));
  else if (act == EVO_NODE_INVALID) st = EVO_STATUS_INVALID_ARGUMENT; /* the cause is in evo_last_error */
  if (st) {
    evo_graph_free(g);
    return st;
  }
  *out = g;
  return EVO_STATUS_OK;
}

evo_status evo_policy_population_graph(const evo_policy *pol, int64_t pop, int64_t n_obs, bool shared_obs,
                                       evo_graph **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy_population_graph: out is NULL");
  *out = NULL;
  if (pop < 1) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy_population_graph: pop must be >= 1");
  evo_graph *g = NULL;
  evo_status st = evo_policy_graph(pol, n_obs, &g);
  if (st) return st;
  /* params and recurrent state are per member; observations are shared or per member */
  int in_axes[4] = {0, shared_obs ? EVO_VMAP_NONE : 0, 0, 0};
  evo_graph *vg = evo_vmap(g, pop, in_axes, NULL);
  evo_graph_free(g);
  if (!vg) return evo_error(EVO_STATUS_INTERNAL, "policy %s: vmap over %lld members failed: %s",
                            evo_policy_name(pol), (long long)pop, evo_last_error());
  *out = vg;
  return EVO_STATUS_OK;
}

/* ---------------------------------------------------------------- construction from config */

evo_status evo_policy_output_from_cfg(evo_cfg *cfg, evo_policy_output *out) {
  static const char *const names[] = {"auto", "tanh", "linear", "softmax", "log_softmax", "argmax", NULL};
  const char *v = NULL;
  evo_status s = evo_cfg_string(cfg, "output", "auto", names, &v);
  if (s) return s;
  for (int i = 0; names[i]; i++)
    if (!strcmp(v, names[i])) *out = (evo_policy_output)i;
  return EVO_STATUS_OK;
}

evo_status evo_policy_new(evo_cfg *cfg, const evo_policy_io *io, evo_policy **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy_new: out is NULL");
  *out = NULL;
  static const char *const kinds[] = {"mlp", "cnn", "lstm", NULL};
  const char *name = "mlp";
  evo_status s = EVO_STATUS_OK;
  if (cfg) s = evo_cfg_string(cfg, "name", "mlp", kinds, &name);
  if (s) return s;
  if (!strcmp(name, "cnn")) {
    evo_policy_cnn_params p = evo_policy_cnn_default_params();
    if (cfg) s = evo_policy_cnn_params_from_cfg(cfg, &p);
    if (!s && cfg) s = evo_cfg_check_unused(cfg);
    if (!s) s = evo_policy_cnn_new(&p, io, out);
  } else if (!strcmp(name, "lstm")) {
    evo_policy_lstm_params p = evo_policy_lstm_default_params();
    if (cfg) s = evo_policy_lstm_params_from_cfg(cfg, &p);
    if (!s && cfg) s = evo_cfg_check_unused(cfg);
    if (!s) s = evo_policy_lstm_new(&p, io, out);
  } else {
    evo_policy_mlp_params p = evo_policy_mlp_default_params();
    if (cfg) s = evo_policy_mlp_params_from_cfg(cfg, &p);
    if (!s && cfg) s = evo_cfg_check_unused(cfg);
    if (!s) s = evo_policy_mlp_new(&p, io, out);
  }
  return s;
}
