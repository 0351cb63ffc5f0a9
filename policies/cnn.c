/* CNN policy: a configurable layer list over NHWC images (the last three obs dims; leading obs dims are loop dims
   carried to the action). Shapes are walked once at creation to size the parameters and check the output against
   the action space; tracing repeats the same walk on graph nodes. */
#include <stdio.h>
#include <string.h>
#include "policy_impl.h"

static const evo_policy_layer L_RELU = {.kind = EVO_POLICY_LAYER_RELU};
static const evo_policy_layer L_POOL2 = {.kind = EVO_POLICY_LAYER_MAXPOOL, .kernel = {2, 2}, .stride = {2, 2},
                                         .padding = EVO_PAD_VALID};
static evo_policy_layer conv_same(int64_t f, int k) {
  return (evo_policy_layer){.kind = EVO_POLICY_LAYER_CONV, .features = f, .kernel = {k, k}, .stride = {1, 1},
                            .padding = EVO_PAD_SAME};
}
static evo_policy_layer dense(int64_t f) { return (evo_policy_layer){.kind = EVO_POLICY_LAYER_DENSE, .features = f}; }

evo_status evo_policy_cnn_preset(const char *name, evo_policy_cnn_params *out) {
  if (!name || !out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy cnn: preset name or out is NULL");
  evo_policy_cnn_params p = {0};
  if (!strcmp(name, "evojax_convnet")) {
    evo_policy_layer l[] = {conv_same(8, 5),  L_RELU, L_POOL2, conv_same(16, 5), L_RELU, L_POOL2, dense(10),
                            {.kind = EVO_POLICY_LAYER_LOG_SOFTMAX}};
    p.n_layers = (int)(sizeof l / sizeof l[0]);
    memcpy(p.layers, l, sizeof l);
  } else if (!strcmp(name, "seed_cnn")) {
    evo_policy_layer l[] = {conv_same(16, 5), L_RELU,    L_POOL2, {.kind = EVO_POLICY_LAYER_FLATTEN},
                            dense(1024),      L_RELU,    dense(10)};
    p.n_layers = (int)(sizeof l / sizeof l[0]);
    memcpy(p.layers, l, sizeof l);
  } else {
    return evo_error(EVO_STATUS_NOT_FOUND, "policy cnn: unknown preset '%s' (evojax_convnet, seed_cnn)", name);
  }
  *out = p;
  return EVO_STATUS_OK;
}

evo_policy_cnn_params evo_policy_cnn_default_params(void) {
  evo_policy_cnn_params p;
  evo_policy_cnn_preset("evojax_convnet", &p);
  return p;
}

static const char *const layer_names[] = {"conv",    "dense",   "relu",    "tanh",        "maxpool",
                                          "avgpool", "flatten", "softmax", "log_softmax", NULL};

/* Per-observation activation shape during the walk: lead dims + (H, W, C) when spatial, else + (F). */
typedef struct {
  int spatial;
  int64_t h, w, c, f;
} cnn_shape;

static int64_t out_size(int64_t in, int k, int s, evo_padding pad) {
  return pad == EVO_PAD_SAME ? (in + s - 1) / s : (in - k) / s + 1;
}

/* Checks layer i against shape *x and advances it; adds the layer's parameters when pol != NULL. */
static evo_status walk_layer(evo_policy *pol, const evo_policy_layer *l, int i, cnn_shape *x, int *n_conv,
                             int *n_dense) {
  const char *what = (unsigned)l->kind <= EVO_POLICY_LAYER_LOG_SOFTMAX ? layer_names[l->kind] : "?";
  char name[48];
  evo_status s = EVO_STATUS_OK;
  switch (l->kind) {
  case EVO_POLICY_LAYER_CONV:
  case EVO_POLICY_LAYER_MAXPOOL:
  case EVO_POLICY_LAYER_AVGPOOL: {
    if (!x->spatial)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy cnn: layer %d (%s) needs images [H, W, C] but gets "
                       "flat features (put it before flatten/dense, or give the task's obs as images)", i, what);
    if (l->kernel[0] < 1 || l->kernel[1] < 1 || l->stride[0] < 1 || l->stride[1] < 1 ||
        (unsigned)l->padding > EVO_PAD_SAME)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy cnn: layer %d (%s): kernel/window %dx%d, stride %dx%d "
                       "must be >= 1", i, what, l->kernel[0], l->kernel[1], l->stride[0], l->stride[1]);
    int64_t oh = out_size(x->h, l->kernel[0], l->stride[0], l->padding);
    int64_t ow = out_size(x->w, l->kernel[1], l->stride[1], l->padding);
    if (oh < 1 || ow < 1)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy cnn: layer %d (%s): a %dx%d VALID window does not fit "
                       "a %lldx%lld input", i, what, l->kernel[0], l->kernel[1], (long long)x->h, (long long)x->w);
    if (l->kind == EVO_POLICY_LAYER_CONV) {
      if (l->features < 1)
        return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy cnn: layer %d (conv): features must be >= 1", i);
      int64_t ks[4] = {l->kernel[0], l->kernel[1], x->c, l->features};
      ++*n_conv;
      if (pol) {
        snprintf(name, sizeof name, "conv%d.kernel", *n_conv);
        s = evo_policy_add_kernel(pol, name, 4, ks);
        snprintf(name, sizeof name, "conv%d.bias", *n_conv);
        if (!s) s = evo_policy_add_bias(pol, name, l->features);
      }
      x->c = l->features;
    }
    x->h = oh, x->w = ow;
    return s;
  }
  case EVO_POLICY_LAYER_DENSE: {
    if (l->features < 1)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy cnn: layer %d (dense): features must be >= 1", i);
    if (x->spatial) x->spatial = 0, x->f = x->h * x->w * x->c;
    int64_t ks[2] = {x->f, l->features};
    ++*n_dense;
    if (pol) {
      snprintf(name, sizeof name, "dense%d.kernel", *n_dense);
      s = evo_policy_add_kernel(pol, name, 2, ks);
      snprintf(name, sizeof name, "dense%d.bias", *n_dense);
      if (!s) s = evo_policy_add_bias(pol, name, l->features);
    }
    x->f = l->features;
    return s;
  }
  case EVO_POLICY_LAYER_FLATTEN:
    if (x->spatial) x->spatial = 0, x->f = x->h * x->w * x->c;
    return EVO_STATUS_OK;
  case EVO_POLICY_LAYER_RELU:
  case EVO_POLICY_LAYER_TANH:
  case EVO_POLICY_LAYER_SOFTMAX:
  case EVO_POLICY_LAYER_LOG_SOFTMAX: return EVO_STATUS_OK;
  }
  return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy cnn: layer %d has unknown kind %d", i, (int)l->kind);
}

static cnn_shape input_shape(const evo_policy_io *io, int *lead) {
  const int64_t *s = io->obs_shape;
  int n = io->obs_ndim;
  *lead = n > 3 ? n - 3 : 0;
  if (n == 1) return (cnn_shape){.f = s[0]};
  if (n == 2) return (cnn_shape){.spatial = 1, .h = s[0], .w = s[1], .c = 1};
  return (cnn_shape){.spatial = 1, .h = s[n - 3], .w = s[n - 2], .c = s[n - 1]};
}

evo_status evo_policy_cnn_new(const evo_policy_cnn_params *p, const evo_policy_io *io, evo_policy **out) {
  if (!p) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy cnn: params is NULL");
  if (p->n_layers < 1 || p->n_layers > EVO_POLICY_MAX_LAYERS)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy cnn: %d layers (1..%d allowed)", p->n_layers,
                     EVO_POLICY_MAX_LAYERS);
  evo_policy *pol;
  evo_status s = evo_policy_alloc(EVO_POLICY_CNN, io, &pol);
  if (s) return s;
  pol->p.cnn = *p;
  int lead, n_conv = 0, n_dense = 0;
  cnn_shape x = input_shape(io, &lead);
  for (int i = 0; !s && i < p->n_layers; i++) s = walk_layer(pol, &p->layers[i], i, &x, &n_conv, &n_dense);
  if (!s) {
    /* The net's per-observation output: lead dims + (H, W, C) or (F). */
    int64_t got[EVO_POLICY_MAX_DIMS + 3];
    int nd = lead;
    memcpy(got, io->obs_shape, sizeof(int64_t) * (size_t)lead);
    if (x.spatial) got[nd++] = x.h, got[nd++] = x.w, got[nd++] = x.c;
    else got[nd++] = x.f;
    int64_t numel = 1;
    for (int d = 0; d < nd; d++) numel *= got[d];
    int same = nd == io->act_ndim && !memcmp(got, io->act_shape, sizeof(int64_t) * (size_t)nd);
    char b1[96], b2[96];
    if (io->discrete) {
      pol->output = EVO_POLICY_OUT_ARGMAX;
      pol->act_dtype = EVO_I32;
      if (lead || x.spatial || x.f != io->act_shape[0])
        s = evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy cnn: the net outputs %s per observation but the "
                      "discrete action space needs scores [%lld]", evo_policy_shape_str(b1, sizeof b1, nd, got),
                      (long long)io->act_shape[0]);
    } else {
      pol->output = EVO_POLICY_OUT_LINEAR;
      if (!same && !(lead == 0 && numel == evo_policy_act_units(io)))
        s = evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy cnn: the net outputs %s per observation but the "
                      "action shape is %s", evo_policy_shape_str(b1, sizeof b1, nd, got),
                      evo_policy_shape_str(b2, sizeof b2, io->act_ndim, io->act_shape));
    }
  }
  if (s) {
    evo_policy_free(pol);
    return s;
  }
  *out = pol;
  return EVO_STATUS_OK;
}

evo_node evo_policy_cnn_trace(const evo_policy *pol, evo_graph *g, const evo_policy_src *params, evo_node obs) {
  const evo_policy_io *io = &pol->io;
  int64_t n = evo_node_shape(g, obs)[0];
  evo_node x = obs;
  if (io->obs_ndim == 2) {
    int64_t s[4] = {n, io->obs_shape[0], io->obs_shape[1], 1};
    x = evo_reshape(g, x, 4, s);
  }
  int spatial = io->obs_ndim >= 2, pi = 0;
  for (int i = 0; i < pol->p.cnn.n_layers; i++) {
    const evo_policy_layer *l = &pol->p.cnn.layers[i];
    switch (l->kind) {
    case EVO_POLICY_LAYER_CONV: {
      evo_node w = evo_policy_param_node(pol, g, params, pi);
      evo_node b = evo_policy_param_node(pol, g, params, pi + 1);
      pi += 2;
      x = evo_add(g, evo_conv2d(g, x, w, l->stride[0], l->stride[1], l->padding), b);
      break;
    }
    case EVO_POLICY_LAYER_DENSE:
      if (spatial && evo_graph_status(g) == EVO_STATUS_OK) x = evo_flatten(g, x, evo_node_ndim(g, x) - 3);
      spatial = 0;
      x = evo_policy_dense(pol, g, params, pi, x);
      pi += 2;
      break;
    case EVO_POLICY_LAYER_FLATTEN:
      if (spatial && evo_graph_status(g) == EVO_STATUS_OK) x = evo_flatten(g, x, evo_node_ndim(g, x) - 3);
      spatial = 0;
      break;
    case EVO_POLICY_LAYER_RELU: x = evo_relu(g, x); break;
    case EVO_POLICY_LAYER_TANH: x = evo_tanh(g, x); break;
    case EVO_POLICY_LAYER_MAXPOOL:
      x = evo_max_pool2d(g, x, l->kernel[0], l->kernel[1], l->stride[0], l->stride[1], l->padding);
      break;
    case EVO_POLICY_LAYER_AVGPOOL:
      x = evo_avg_pool2d(g, x, l->kernel[0], l->kernel[1], l->stride[0], l->stride[1], l->padding);
      break;
    case EVO_POLICY_LAYER_SOFTMAX: x = evo_softmax(g, x, -1); break;
    case EVO_POLICY_LAYER_LOG_SOFTMAX: x = evo_log_softmax(g, x, -1); break;
    }
  }
  if (evo_graph_status(g)) return EVO_NODE_INVALID;
  if (io->discrete) return evo_argmax(g, x, -1, false);
  /* a flat output whose size matches a multi-dim action shape (checked at creation) */
  int nd = evo_node_ndim(g, x), same = nd == io->act_ndim + 1;
  for (int d = 0; same && d < io->act_ndim; d++) same = evo_node_shape(g, x)[d + 1] == io->act_shape[d];
  if (!same) {
    int64_t s[EVO_POLICY_MAX_DIMS + 1] = {n};
    memcpy(s + 1, io->act_shape, sizeof(int64_t) * (size_t)io->act_ndim);
    x = evo_reshape(g, x, io->act_ndim + 1, s);
  }
  return x;
}

/* ---------------------------------------------------------------- config */

static evo_status layer_from_cfg(evo_cfg *e, int i, evo_policy_layer *l) {
  char where[256];
  const char *type = NULL;
  evo_status s;
  if (evo_cfg_kind_of(e) == EVO_CFG_SCALAR) {
    type = evo_cfg_scalar(e);
  } else if (evo_cfg_kind_of(e) == EVO_CFG_MAP) {
    if ((s = evo_cfg_require(e, "type"))) return s;
    if ((s = evo_cfg_string(e, "type", NULL, layer_names, &type))) return s;
  } else {
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: policy.layers[%d] must be a layer name or a map with 'type'",
                     evo_cfg_where(e, where, sizeof where), i);
  }
  int k = -1;
  for (int j = 0; layer_names[j]; j++)
    if (type && !strcmp(type, layer_names[j])) k = j;
  if (k < 0)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: policy.layers[%d]: unknown layer '%s' (conv, dense, relu, "
                     "tanh, maxpool, avgpool, flatten, softmax, log_softmax)", evo_cfg_where(e, where, sizeof where),
                     i, type ? type : "");
  *l = (evo_policy_layer){.kind = (evo_policy_layer_kind)k};
  int needs_features = k == EVO_POLICY_LAYER_CONV || k == EVO_POLICY_LAYER_DENSE;
  int windowed = k == EVO_POLICY_LAYER_CONV || k == EVO_POLICY_LAYER_MAXPOOL || k == EVO_POLICY_LAYER_AVGPOOL;
  if (evo_cfg_kind_of(e) == EVO_CFG_SCALAR) {
    if (needs_features || windowed)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: policy.layers[%d]: %s needs options: write {type: %s, ...}",
                       evo_cfg_where(e, where, sizeof where), i, type, type);
    return EVO_STATUS_OK;
  }
  if (needs_features) {
    if ((s = evo_cfg_require(e, "features"))) return s;
    if ((s = evo_cfg_int(e, "features", 1, 1, 1 << 24, &l->features))) return s;
  }
  if (windowed) {
    int conv = k == EVO_POLICY_LAYER_CONV;
    double win[2], st[2];
    if ((s = evo_cfg_doubles(e, conv ? "kernel" : "window", conv ? 3 : 2, 2, win))) return s;
    if ((s = evo_cfg_doubles(e, "stride", conv ? 1 : win[0], 2, st))) return s;
    static const char *const pads[] = {"same", "valid", NULL};
    const char *pad = NULL;
    if ((s = evo_cfg_string(e, "padding", conv ? "same" : "valid", pads, &pad))) return s;
    for (int d = 0; d < 2; d++) {
      if (!(win[d] >= 1 && win[d] <= 4096 && st[d] >= 1 && st[d] <= 4096) || win[d] != (int)win[d] ||
          st[d] != (int)st[d])
        return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: policy.layers[%d]: %s and stride must be integers in "
                         "[1, 4096]", evo_cfg_where(e, where, sizeof where), i, conv ? "kernel" : "window");
      l->kernel[d] = (int)win[d];
      l->stride[d] = (int)st[d];
    }
    l->padding = strcmp(pad, "same") ? EVO_PAD_VALID : EVO_PAD_SAME;
  }
  return evo_cfg_check_unused(e);
}

evo_status evo_policy_cnn_params_from_cfg(evo_cfg *cfg, evo_policy_cnn_params *p) {
  evo_cfg *layers = evo_cfg_get(cfg, "layers");
  char where[256];
  if (!layers) {
    static const char *const presets[] = {"evojax_convnet", "seed_cnn", NULL};
    const char *name = NULL;
    evo_status s = evo_cfg_string(cfg, "preset", "evojax_convnet", presets, &name);
    return s ? s : evo_policy_cnn_preset(name, p);
  }
  if (evo_cfg_get(cfg, "preset"))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: give either policy.preset or policy.layers, not both",
                     evo_cfg_where(layers, where, sizeof where));
  int n = evo_cfg_kind_of(layers) == EVO_CFG_LIST ? evo_cfg_list_size(layers) : -1;
  if (n < 1 || n > EVO_POLICY_MAX_LAYERS)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: policy.layers must be a list of 1..%d layers",
                     evo_cfg_where(layers, where, sizeof where), EVO_POLICY_MAX_LAYERS);
  evo_policy_cnn_params q = {.n_layers = n};
  for (int i = 0; i < n; i++) {
    evo_status s = layer_from_cfg(evo_cfg_list_at(layers, i), i, &q.layers[i]);
    if (s) return s;
  }
  *p = q;
  return EVO_STATUS_OK;
}
