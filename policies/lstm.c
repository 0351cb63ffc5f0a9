/* LSTM policy: one LSTM layer (hidden H) on the flattened obs, then a dense output head.
     z  = x @ wi + h @ wh + bias            [N, 4H], gate blocks i, f, g, o (PyTorch's order)
     c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
     h' = sigmoid(o) * tanh(c')
     y  = head(h' @ out.kernel + out.bias)
   No forget-gate bias offset: biases start at zero like every other bias. */
#include <string.h>
#include "policy_impl.h"

evo_policy_lstm_params evo_policy_lstm_default_params(void) {
  return (evo_policy_lstm_params){.hidden = 32, .output = EVO_POLICY_OUT_AUTO};
}

evo_status evo_policy_lstm_new(const evo_policy_lstm_params *p, const evo_policy_io *io, evo_policy **out) {
  if (!p) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy lstm: params is NULL");
  if (p->hidden <= 0)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy lstm: hidden = %lld must be > 0", (long long)p->hidden);
  evo_policy *pol;
  evo_status s = evo_policy_alloc(EVO_POLICY_LSTM, io, &pol);
  if (s) return s;
  pol->p.lstm = *p;
  s = evo_policy_resolve_output(pol, p->output);
  int64_t h = p->hidden, wi[2] = {evo_policy_obs_numel(io), 4 * h}, wh[2] = {h, 4 * h};
  int64_t wo[2] = {h, evo_policy_act_units(io)};
  if (!s) s = evo_policy_add_kernel(pol, "lstm.wi", 2, wi);
  if (!s) s = evo_policy_add_kernel(pol, "lstm.wh", 2, wh);
  if (!s) s = evo_policy_add_bias(pol, "lstm.bias", 4 * h);
  if (!s) s = evo_policy_add_kernel(pol, "out.kernel", 2, wo);
  if (!s) s = evo_policy_add_bias(pol, "out.bias", wo[1]);
  if (s) {
    evo_policy_free(pol);
    return s;
  }
  *out = pol;
  return EVO_STATUS_OK;
}

evo_node evo_policy_lstm_trace(const evo_policy *pol, evo_graph *g, const evo_policy_src *params, evo_node obs,
                               const evo_node *state_in, evo_node *state_out) {
  int64_t h = pol->p.lstm.hidden, n = evo_node_shape(g, obs)[0], s[2] = {n, evo_policy_obs_numel(&pol->io)};
  evo_node x = pol->io.obs_ndim == 1 ? obs : evo_reshape(g, obs, 2, s);
  evo_node wi = evo_policy_param_node(pol, g, params, 0);
  evo_node wh = evo_policy_param_node(pol, g, params, 1);
  evo_node b = evo_policy_param_node(pol, g, params, 2);
  evo_node z = evo_add(g, evo_add(g, evo_matmul(g, x, wi), evo_matmul(g, state_in[0], wh)), b);
  evo_node gi = evo_sigmoid(g, evo_slice(g, z, -1, 0, h));
  evo_node gf = evo_sigmoid(g, evo_slice(g, z, -1, h, 2 * h));
  evo_node gg = evo_tanh(g, evo_slice(g, z, -1, 2 * h, 3 * h));
  evo_node go = evo_sigmoid(g, evo_slice(g, z, -1, 3 * h, 4 * h));
  evo_node c = evo_add(g, evo_mul(g, gf, state_in[1]), evo_mul(g, gi, gg));
  evo_node hn = evo_mul(g, go, evo_tanh(g, c));
  state_out[0] = hn;
  state_out[1] = c;
  return evo_policy_apply_head(pol, g, evo_policy_dense(pol, g, params, 3, hn));
}

evo_status evo_policy_lstm_params_from_cfg(evo_cfg *cfg, evo_policy_lstm_params *p) {
  int64_t h = 0;
  evo_status s = evo_cfg_int(cfg, "hidden", p->hidden, 1, 1 << 20, &h);
  if (s) return s;
  p->hidden = h;
  return evo_policy_output_from_cfg(cfg, &p->output);
}
