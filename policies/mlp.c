/* MLP policy: flattened obs -> dense layers with tanh/relu -> output head. */
#include <stdio.h>
#include <string.h>
#include "policy_impl.h"

evo_policy_mlp_params evo_policy_mlp_default_params(void) {
  return (evo_policy_mlp_params){.n_hidden = 2, .hidden = {64, 64}, .activation = EVO_POLICY_ACT_TANH,
                                 .output = EVO_POLICY_OUT_AUTO};
}

evo_status evo_policy_mlp_new(const evo_policy_mlp_params *p, const evo_policy_io *io, evo_policy **out) {
  if (!p) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy mlp: params is NULL");
  if (p->n_hidden < 0 || p->n_hidden > EVO_POLICY_MAX_HIDDEN)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy mlp: %d hidden layers (0..%d allowed)", p->n_hidden,
                     EVO_POLICY_MAX_HIDDEN);
  for (int l = 0; l < p->n_hidden; l++)
    if (p->hidden[l] <= 0)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy mlp: hidden[%d] = %lld must be > 0", l,
                       (long long)p->hidden[l]);
  if ((unsigned)p->activation > (unsigned)EVO_POLICY_ACT_RELU)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy mlp: unknown activation %d", (int)p->activation);
  evo_policy *pol;
  evo_status s = evo_policy_alloc(EVO_POLICY_MLP, io, &pol);
  if (s) return s;
  pol->p.mlp = *p;
  s = evo_policy_resolve_output(pol, p->output);
  int64_t in = evo_policy_obs_numel(io), units = evo_policy_act_units(io);
  for (int l = 0; !s && l <= p->n_hidden; l++) {
    int64_t o = l < p->n_hidden ? p->hidden[l] : units, shape[2] = {in, o};
    char name[32];
    snprintf(name, sizeof name, "dense%d.kernel", l + 1);
    s = evo_policy_add_kernel(pol, name, 2, shape);
    snprintf(name, sizeof name, "dense%d.bias", l + 1);
    if (!s) s = evo_policy_add_bias(pol, name, o);
    in = o;
  }
  if (s) {
    evo_policy_free(pol);
    return s;
  }
  *out = pol;
  return EVO_STATUS_OK;
}

evo_node evo_policy_mlp_trace(const evo_policy *pol, evo_graph *g, const evo_policy_src *params, evo_node obs) {
  const evo_policy_mlp_params *p = &pol->p.mlp;
  int64_t s[2] = {evo_node_shape(g, obs)[0], evo_policy_obs_numel(&pol->io)};
  evo_node x = pol->io.obs_ndim == 1 ? obs : evo_reshape(g, obs, 2, s);
  for (int l = 0; l <= p->n_hidden; l++) {
    x = evo_policy_dense(pol, g, params, 2 * l, x);
    if (l < p->n_hidden) x = p->activation == EVO_POLICY_ACT_RELU ? evo_relu(g, x) : evo_tanh(g, x);
  }
  return evo_policy_apply_head(pol, g, x);
}

/* hidden: a list of positive integers (or one number); activation; output. */
evo_status evo_policy_mlp_params_from_cfg(evo_cfg *cfg, evo_policy_mlp_params *p) {
  evo_cfg *h = evo_cfg_get(cfg, "hidden");
  if (h) {
    int n = evo_cfg_kind_of(h) == EVO_CFG_LIST ? evo_cfg_list_size(h) : 1;
    char where[256], path[128];
    if (n > EVO_POLICY_MAX_HIDDEN)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: %s has %d layers (at most %d)",
                       evo_cfg_where(h, where, sizeof where), evo_cfg_path(h, path, sizeof path), n,
                       EVO_POLICY_MAX_HIDDEN);
    double v[EVO_POLICY_MAX_HIDDEN];
    evo_status s = n > 0 ? evo_cfg_doubles(cfg, "hidden", 0, n, v) : EVO_STATUS_OK;
    if (s) return s;
    for (int i = 0; i < n; i++)
      if (!(v[i] >= 1 && v[i] <= 1e9) || v[i] != (double)(int64_t)v[i])
        return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: %s must list positive integers (entry %d is %g)",
                         evo_cfg_where(h, where, sizeof where), evo_cfg_path(h, path, sizeof path), i, v[i]);
    p->n_hidden = n;
    for (int i = 0; i < n; i++) p->hidden[i] = (int64_t)v[i];
  }
  static const char *const acts[] = {"tanh", "relu", NULL};
  const char *a = NULL;
  evo_status s = evo_cfg_string(cfg, "activation", "tanh", acts, &a);
  if (s) return s;
  p->activation = strcmp(a, "relu") ? EVO_POLICY_ACT_TANH : EVO_POLICY_ACT_RELU;
  return evo_policy_output_from_cfg(cfg, &p->output);
}
