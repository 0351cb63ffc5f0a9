/* Policies (policies/): parameter counts and layout, forward values against an independent NumPy implementation
   (scripts/golden_policies.py -> tests/data/golden_policies.bin), population graphs (vmap) against a loop over
   members, gradients through the policy graph, construction errors and config parsing.

   Golden tolerance: |evoc - golden| <= rtol * (|golden| + 0.1 max|golden|), rtol = 1e-4 (float32 vs float64). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/backend.h"
#include "evoc/config.h"
#include "evoc/jit.h"
#include "evoc/policy.h"
#include "evoc/transform.h"

#ifndef EVOC_TEST_DATA
#error "EVOC_TEST_DATA must name the tests/data folder (tests/CMakeLists.txt defines it)"
#endif

static evo_backend *be;
static void setup(void) { be = evo_backend_cpu_new(NULL); }
static void teardown(void) { evo_backend_free(be); }
TestSuite(policies, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------ golden file (format: golden_nets.py) */

#define GOLD_MAX 128
typedef struct {
  char name[96], dtype[4];
  int ndim;
  int64_t shape[EVO_MAX_DIMS], numel;
  const void *data;
} gold_tensor;
typedef struct {
  unsigned char *raw, *data; /* data: the tensor bytes copied to an aligned buffer (the header has any length) */
  int n;
  gold_tensor t[GOLD_MAX];
} gold_file;

static gold_file gf; /* loaded once per test by gold() */

static void gold_load(gold_file *f) {
  char path[1024];
  snprintf(path, sizeof path, "%s/golden_policies.bin", EVOC_TEST_DATA);
  FILE *fp = fopen(path, "rb");
  cr_assert_not_null(fp, "cannot open %s (regenerate with scripts/golden_policies.py)", path);
  fseek(fp, 0, SEEK_END);
  long size = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  f->raw = malloc((size_t)size + 1);
  cr_assert_eq(fread(f->raw, 1, (size_t)size, fp), (size_t)size);
  fclose(fp);
  f->raw[size] = 0;
  f->n = 0;
  char *p = (char *)f->raw, *nl = strchr(p, '\n');
  cr_assert(nl && !strncmp(p, "evoc-golden 1", 13), "%s: not an evoc-golden v1 file", path);
  p = nl + 1;
  for (;;) {
    nl = strchr(p, '\n');
    cr_assert_not_null(nl, "%s: header not terminated", path);
    *nl = 0;
    if (!strcmp(p, "end")) break;
    cr_assert_lt(f->n, GOLD_MAX);
    gold_tensor *t = &f->t[f->n++];
    int used = 0;
    cr_assert_eq(sscanf(p, "%95s %3s %d%n", t->name, t->dtype, &t->ndim, &used), 3, "bad line '%s'", p);
    char *q = p + used;
    t->numel = 1;
    for (int d = 0; d < t->ndim; d++) t->numel *= (t->shape[d] = strtoll(q, &q, 10));
    p = nl + 1;
  }
  p = nl + 1;
  size_t rest = (size_t)((char *)f->raw + size - p), off = 0;
  f->data = malloc(rest + 1);
  memcpy(f->data, p, rest);
  for (int i = 0; i < f->n; i++) {
    f->t[i].data = f->data + off;
    off += (size_t)f->t[i].numel * (strcmp(f->t[i].dtype, "f64") ? 4 : 8);
  }
  cr_assert_eq(off, rest, "%s: data size mismatch", path);
}

static const gold_tensor *gold(const char *net, const char *what) {
  if (!gf.raw) gold_load(&gf);
  char name[96];
  snprintf(name, sizeof name, "%s.%s", net, what);
  for (int i = 0; i < gf.n; i++)
    if (!strcmp(gf.t[i].name, name)) return &gf.t[i];
  cr_assert_fail("golden tensor '%s' missing (regenerate with scripts/golden_policies.py)", name);
  return NULL;
}

/* The generator of scripts/golden_nets.py (gen_params), bit-exact. */
static void gen_params(uint64_t seed, float *out, int64_t n, float scale) {
  for (int64_t i = 0; i < n; i++) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + (uint64_t)(i + 1) * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    out[i] = (float)((int64_t)(x >> 40) - (1 << 23)) * 0x1p-23f * scale;
  }
}

/* Checks the policy's layout against the script's "<net>:<entry>" tensors and generates its flat parameters. */
static float *golden_params(const evo_policy *pol, const char *net) {
  if (!gf.raw) gold_load(&gf);
  const evo_ptree *t = evo_policy_ptree(pol);
  const gold_tensor *scales = gold(net, "scales"), *seed0 = gold(net, "seed0");
  cr_assert_eq(scales->numel, evo_ptree_count(t), "%s: %d entries, the script has %lld", net, evo_ptree_count(t),
               (long long)scales->numel);
  size_t plen = strlen(net);
  int k = 0;
  for (int i = 0; i < gf.n; i++) {
    if (strncmp(gf.t[i].name, net, plen) || gf.t[i].name[plen] != ':') continue;
    const evo_param_spec *s = evo_ptree_spec(t, k);
    cr_assert_not_null(s);
    cr_assert_str_eq(s->name, gf.t[i].name + plen + 1, "%s entry %d", net, k);
    cr_assert_eq(s->ndim, gf.t[i].numel, "%s: %s rank", net, s->name);
    for (int d = 0; d < s->ndim; d++)
      cr_assert_eq(s->shape[d], ((const int32_t *)gf.t[i].data)[d], "%s: %s dim %d", net, s->name, d);
    k++;
  }
  cr_assert_eq(k, evo_ptree_count(t));
  int64_t d = evo_policy_num_params(pol);
  float *flat = malloc(sizeof *flat * (size_t)d);
  for (int i = 0; i < k; i++) {
    const evo_param_spec *s = evo_ptree_spec(t, i);
    int64_t n = 1;
    for (int j = 0; j < s->ndim; j++) n *= s->shape[j];
    gen_params((uint64_t)(((const int32_t *)seed0->data)[0] + i), flat + evo_ptree_offset(t, i), n,
               ((const float *)scales->data)[i]);
  }
  double sum = 0, ref;
  for (int64_t i = 0; i < d; i++) sum += flat[i];
  memcpy(&ref, gold(net, "params.sum")->data, sizeof ref);
  cr_assert(fabs(sum - ref) <= 1e-9 * fmax(1.0, fabs(ref)), "%s: params sum %.12g vs script %.12g", net, sum, ref);
  return flat;
}

/* ------------------------------------------------------------------ running graphs */

static evo_tensor *tensor_of(evo_dtype dt, int ndim, const int64_t *shape, const void *src) {
  evo_tensor *x = src ? evo_tensor_from_host(be, dt, ndim, shape, src) : evo_tensor_new(be, dt, ndim, shape);
  cr_assert_not_null(x, "%s", evo_last_error());
  return x;
}

/* Runs g; inputs from host arrays (shapes from the graph), outputs copied into host arrays. */
static void run_host(const evo_graph *g, const void *const *in, void *const *out) {
  int ni = evo_graph_n_inputs(g), no = evo_graph_n_outputs(g);
  evo_tensor *ti[8], *to[8];
  for (int i = 0; i < ni; i++) {
    evo_node x = evo_graph_input(g, i);
    ti[i] = tensor_of(evo_node_dtype(g, x), evo_node_ndim(g, x), evo_node_shape(g, x), in[i]);
  }
  for (int i = 0; i < no; i++) {
    evo_node x = evo_graph_output(g, i);
    to[i] = tensor_of(evo_node_dtype(g, x), evo_node_ndim(g, x), evo_node_shape(g, x), NULL);
  }
  evo_status s = evo_eval(g, be, ti, to);
  cr_assert_eq(s, EVO_STATUS_OK, "eval: %s", evo_last_error());
  for (int i = 0; i < no; i++) {
    memcpy(out[i], evo_tensor_data(to[i]), evo_tensor_nbytes(to[i]));
    evo_tensor_free(to[i]);
  }
  for (int i = 0; i < ni; i++) evo_tensor_free(ti[i]);
}

static void expect_close(const char *what, const float *got, const float *ref, int64_t n, double rtol) {
  double maxref = 0, worst = 0;
  int64_t wi = 0;
  for (int64_t i = 0; i < n; i++) maxref = fmax(maxref, fabs((double)ref[i]));
  for (int64_t i = 0; i < n; i++) {
    cr_assert(isfinite(got[i]), "%s[%lld] = %g", what, (long long)i, (double)got[i]);
    double e = fabs((double)got[i] - ref[i]) / (fabs((double)ref[i]) + 0.1 * maxref + 1e-30);
    if (e > worst) worst = e, wi = i;
  }
  cr_expect_leq(worst, rtol, "%s: entry %lld: %.8g vs %.8g (scaled error %.3g)", what, (long long)wi,
                (double)got[wi], (double)ref[wi], worst);
}

static evo_policy_io io_make(int on, const int64_t *os, int an, const int64_t *as, bool discrete) {
  evo_policy_io io = {.obs_ndim = on, .act_ndim = an, .discrete = discrete};
  memcpy(io.obs_shape, os, sizeof(int64_t) * (size_t)on);
  memcpy(io.act_shape, as, sizeof(int64_t) * (size_t)an);
  return io;
}

/* ------------------------------------------------------------------ the nets of golden_policies.py */

static evo_policy *make_net(const char *net) {
  evo_policy *pol = NULL;
  evo_status s = EVO_STATUS_INTERNAL;
  if (!strcmp(net, "mlp_tanh")) {
    evo_policy_mlp_params p = {.n_hidden = 2, .hidden = {8, 8}, .output = EVO_POLICY_OUT_TANH};
    evo_policy_io io = io_make(1, (int64_t[]){6}, 1, (int64_t[]){3}, false);
    s = evo_policy_mlp_new(&p, &io, &pol);
  } else if (!strcmp(net, "mlp_relu_sm") || !strcmp(net, "mlp_argmax")) {
    bool disc = !strcmp(net, "mlp_argmax");
    evo_policy_mlp_params p = {.n_hidden = 1, .hidden = {5}, .activation = EVO_POLICY_ACT_RELU,
                               .output = disc ? EVO_POLICY_OUT_AUTO : EVO_POLICY_OUT_SOFTMAX};
    evo_policy_io io = io_make(2, (int64_t[]){2, 3}, 1, (int64_t[]){4}, disc);
    s = evo_policy_mlp_new(&p, &io, &pol);
  } else if (!strcmp(net, "evojax_convnet") || !strcmp(net, "seed_cnn")) {
    evo_policy_cnn_params p;
    cr_assert_eq(evo_policy_cnn_preset(net, &p), EVO_STATUS_OK);
    evo_policy_io io = io_make(3, (int64_t[]){28, 28, 1}, 1, (int64_t[]){10}, false);
    s = evo_policy_cnn_new(&p, &io, &pol);
  } else if (!strcmp(net, "cnn_misc")) {
    evo_policy_cnn_params p = {.n_layers = 6,
                               .layers = {{EVO_POLICY_LAYER_CONV, 4, {3, 3}, {2, 2}, EVO_PAD_VALID},
                                          {.kind = EVO_POLICY_LAYER_TANH},
                                          {EVO_POLICY_LAYER_AVGPOOL, 0, {3, 3}, {1, 1}, EVO_PAD_SAME},
                                          {EVO_POLICY_LAYER_MAXPOOL, 0, {2, 2}, {1, 1}, EVO_PAD_SAME},
                                          {.kind = EVO_POLICY_LAYER_DENSE, .features = 5},
                                          {.kind = EVO_POLICY_LAYER_SOFTMAX}}};
    evo_policy_io io = io_make(3, (int64_t[]){12, 10, 3}, 1, (int64_t[]){5}, false);
    s = evo_policy_cnn_new(&p, &io, &pol);
  } else if (!strcmp(net, "lstm")) {
    evo_policy_lstm_params p = {.hidden = 5, .output = EVO_POLICY_OUT_TANH};
    evo_policy_io io = io_make(1, (int64_t[]){4}, 1, (int64_t[]){2}, false);
    s = evo_policy_lstm_new(&p, &io, &pol);
  }
  cr_assert_eq(s, EVO_STATUS_OK, "%s: %s", net, evo_last_error());
  /* the kind and name queries agree with the constructor that made it */
  const evo_policy_kind kind = evo_policy_kind_of(pol);
  const char *want = kind == EVO_POLICY_MLP ? "mlp" : kind == EVO_POLICY_CNN ? "cnn" : "lstm";
  cr_assert_str_eq(evo_policy_name(pol), want, "%s", net);
  cr_assert_eq(kind, !strncmp(net, "mlp", 3) ? EVO_POLICY_MLP : !strncmp(net, "lstm", 4) ? EVO_POLICY_LSTM
                                                                                           : EVO_POLICY_CNN, "%s", net);
  return pol;
}

/* Forward of a stateless golden net against <net>.y. */
static void check_forward(const char *net) {
  evo_policy *pol = make_net(net);
  float *flat = golden_params(pol, net);
  const gold_tensor *obs = gold(net, "obs"), *y = gold(net, "y");
  evo_graph *g = NULL;
  cr_assert_eq(evo_policy_graph(pol, obs->shape[0], &g), EVO_STATUS_OK, "%s", evo_last_error());
  evo_node o = evo_graph_output(g, 0);
  cr_assert_eq(evo_node_numel(g, o), y->numel, "%s: output size", net);
  void *out = malloc(4 * (size_t)y->numel);
  run_host(g, (const void *[]){flat, obs->data}, (void *[]){out});
  if (!strcmp(y->dtype, "i32")) {
    cr_assert_eq(evo_node_dtype(g, o), EVO_I32);
    for (int64_t i = 0; i < y->numel; i++)
      cr_expect_eq(((int32_t *)out)[i], ((const int32_t *)y->data)[i], "%s: action %lld", net, (long long)i);
  } else {
    expect_close(net, out, y->data, y->numel, 1e-4);
  }
  free(out);
  free(flat);
  evo_graph_free(g);
  evo_policy_free(pol);
}

Test(policies, golden_mlp_tanh) { check_forward("mlp_tanh"); }
Test(policies, golden_mlp_relu_softmax_flattened_obs) { check_forward("mlp_relu_sm"); }
Test(policies, golden_mlp_argmax_discrete) { check_forward("mlp_argmax"); }
Test(policies, golden_evojax_convnet) { check_forward("evojax_convnet"); }
Test(policies, golden_seed_cnn) { check_forward("seed_cnn"); }
Test(policies, golden_cnn_stride_valid_avgpool_same) { check_forward("cnn_misc"); }

Test(policies, golden_lstm_two_steps_carry_state) {
  evo_policy *pol = make_net("lstm");
  float *flat = golden_params(pol, "lstm");
  evo_graph *g = NULL;
  cr_assert_eq(evo_policy_graph(pol, 3, &g), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_graph_n_inputs(g), 4);
  cr_assert_eq(evo_graph_n_outputs(g), 3);
  float zero[15] = {0}, y[6], h[15], c[15], y2[6], h2[15], c2[15];
  run_host(g, (const void *[]){flat, gold("lstm", "obs")->data, zero, zero}, (void *[]){y, h, c});
  expect_close("lstm y1", y, gold("lstm", "y")->data, 6, 1e-4);
  expect_close("lstm h1", h, gold("lstm", "h1")->data, 15, 1e-4);
  expect_close("lstm c1", c, gold("lstm", "c1")->data, 15, 1e-4);
  run_host(g, (const void *[]){flat, gold("lstm", "obs2")->data, h, c}, (void *[]){y2, h2, c2});
  expect_close("lstm y2", y2, gold("lstm", "y2")->data, 6, 1e-4);
  expect_close("lstm h2", h2, gold("lstm", "h2")->data, 15, 1e-4);
  expect_close("lstm c2", c2, gold("lstm", "c2")->data, 15, 1e-4);
  free(flat);
  evo_graph_free(g);
  evo_policy_free(pol);
}

/* ------------------------------------------------------------------ counts and layout */

Test(policies, parameter_counts) {
  evo_policy *pol;
  evo_policy_cnn_params cp = evo_policy_cnn_default_params();
  evo_policy_io img = io_make(3, (int64_t[]){28, 28, 1}, 1, (int64_t[]){10}, false);
  cr_assert_eq(evo_policy_cnn_new(&cp, &img, &pol), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect_eq(evo_policy_num_params(pol), 11274, "evojax_convnet: %lld", (long long)evo_policy_num_params(pol));
  evo_policy_free(pol);
  /* a batch of images per observation (the MNIST task's obs): same parameters, action [B, 10] */
  evo_policy_io batch = io_make(4, (int64_t[]){7, 28, 28, 1}, 2, (int64_t[]){7, 10}, false);
  cr_assert_eq(evo_policy_cnn_new(&cp, &batch, &pol), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect_eq(evo_policy_num_params(pol), 11274);
  evo_policy_free(pol);
  cr_assert_eq(evo_policy_cnn_preset("seed_cnn", &cp), EVO_STATUS_OK);
  cr_assert_eq(evo_policy_cnn_new(&cp, &img, &pol), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect_eq(evo_policy_num_params(pol), 416 + 3136 * 1024 + 1024 + 10250);
  evo_policy_free(pol);
  evo_policy_mlp_params mp = evo_policy_mlp_default_params();
  evo_policy_io cart = io_make(1, (int64_t[]){5}, 1, (int64_t[]){1}, false);
  cr_assert_eq(evo_policy_mlp_new(&mp, &cart, &pol), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect_eq(evo_policy_num_params(pol), 5 * 64 + 64 + 64 * 64 + 64 + 64 + 1);
  cr_expect_eq(evo_policy_action_dtype(pol), EVO_F32);
  evo_policy_free(pol);
  evo_policy_lstm_params lp = {.hidden = 5};
  evo_policy_io l = io_make(1, (int64_t[]){4}, 1, (int64_t[]){2}, false);
  cr_assert_eq(evo_policy_lstm_new(&lp, &l, &pol), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect_eq(evo_policy_num_params(pol), 4 * 20 + 5 * 20 + 20 + 5 * 2 + 2);
  cr_expect_eq(evo_policy_state_count(pol), 2);
  cr_expect_eq(evo_policy_state_size(pol), 5);
  evo_policy_free(pol);
}

Test(policies, init_is_deterministic_with_zero_biases) {
  evo_policy *pol = make_net("evojax_convnet");
  int64_t d = evo_policy_num_params(pol);
  float *a = malloc(sizeof *a * (size_t)d), *b = malloc(sizeof *b * (size_t)d);
  cr_assert_eq(evo_policy_init(pol, evo_key_from_seed(7), a), EVO_STATUS_OK);
  cr_assert_eq(evo_policy_init(pol, evo_key_from_seed(7), b), EVO_STATUS_OK);
  cr_assert_eq(memcmp(a, b, sizeof *a * (size_t)d), 0);
  const evo_ptree *t = evo_policy_ptree(pol);
  for (int i = 0; i < evo_ptree_count(t); i++) {
    const evo_param_spec *s = evo_ptree_spec(t, i);
    int64_t off = evo_ptree_offset(t, i), n = 1;
    for (int k = 0; k < s->ndim; k++) n *= s->shape[k];
    double ss = 0;
    for (int64_t k = 0; k < n; k++) ss += (double)a[off + k] * a[off + k];
    if (strstr(s->name, ".bias")) {
      cr_expect_eq(ss, 0.0, "%s must start at zero", s->name);
    } else { /* LeCun normal: variance 1 / fan_in */
      double fan_in = (double)n / (double)s->shape[s->ndim - 1], var = ss / (double)n;
      cr_expect(fabs(var * fan_in - 1.0) < 0.35, "%s: variance %g, expected about %g", s->name, var, 1 / fan_in);
    }
  }
  free(a);
  free(b);
  evo_policy_free(pol);
}

/* A batch of images per observation gives the same per-image values as images one per observation. */
Test(policies, cnn_leading_obs_dims_are_loop_dims) {
  evo_policy *flat_pol = make_net("evojax_convnet"), *pol;
  evo_policy_cnn_params cp = evo_policy_cnn_default_params();
  evo_policy_io io = io_make(4, (int64_t[]){3, 28, 28, 1}, 2, (int64_t[]){3, 10}, false);
  cr_assert_eq(evo_policy_cnn_new(&cp, &io, &pol), EVO_STATUS_OK, "%s", evo_last_error());
  float *w = golden_params(flat_pol, "evojax_convnet"), *x = malloc(sizeof *x * 6 * 784), ya[60], yb[60];
  gen_params(9, x, 6 * 784, 1.0f);
  evo_graph *ga, *gb;
  cr_assert_eq(evo_policy_graph(flat_pol, 6, &ga), EVO_STATUS_OK);
  cr_assert_eq(evo_policy_graph(pol, 2, &gb), EVO_STATUS_OK, "%s", evo_last_error());
  run_host(ga, (const void *[]){w, x}, (void *[]){ya});
  run_host(gb, (const void *[]){w, x}, (void *[]){yb});
  expect_close("[2, 3 images] vs [6 images]", yb, ya, 60, 1e-6);
  free(w);
  free(x);
  evo_graph_free(ga);
  evo_graph_free(gb);
  evo_policy_free(pol);
  evo_policy_free(flat_pol);
}

/* ------------------------------------------------------------------ population = loop over members */

/* Runs the vmapped population graph once and the per-member graph for each member; every output must agree. */
static void check_population(const char *net, int64_t n_obs, bool shared) {
  enum { P = 3 };
  evo_policy *pol = make_net(net);
  const evo_policy_io *io = evo_policy_get_io(pol);
  int64_t d = evo_policy_num_params(pol), on = n_obs, hs = n_obs * evo_policy_state_size(pol);
  for (int k = 0; k < io->obs_ndim; k++) on *= io->obs_shape[k];
  int ns = evo_policy_state_count(pol);
  float *params = malloc(sizeof(float) * (size_t)(P * d)), *obs = malloc(sizeof(float) * (size_t)(P * on));
  float *state[2] = {malloc(sizeof(float) * (size_t)(P * hs + 1)), malloc(sizeof(float) * (size_t)(P * hs + 1))};
  for (int m = 0; m < P; m++) {
    cr_assert_eq(evo_policy_init(pol, evo_key_fold_in(evo_key_from_seed(3), (uint32_t)m), params + m * d), 0);
    for (int64_t i = 0; i < d; i++) params[m * d + i] += 0.01f * (float)((i * 7 + m) % 13 - 6); /* nonzero biases */
  }
  gen_params(11, obs, P * on, 1.0f);
  for (int k = 0; k < ns; k++) gen_params(12 + (uint64_t)k, state[k], P * hs, 0.5f);
  evo_graph *g, *pg;
  cr_assert_eq(evo_policy_graph(pol, n_obs, &g), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_policy_population_graph(pol, P, n_obs, shared, &pg), EVO_STATUS_OK, "%s", evo_last_error());
  int no = evo_graph_n_outputs(g);
  cr_assert_eq(evo_graph_n_outputs(pg), no);
  int64_t osz[3];
  void *pout[3], *mout[3];
  for (int j = 0; j < no; j++) {
    osz[j] = evo_node_numel(g, evo_graph_output(g, j));
    cr_assert_eq(evo_node_numel(pg, evo_graph_output(pg, j)), P * osz[j]);
    cr_assert_eq(evo_node_shape(pg, evo_graph_output(pg, j))[0], P);
    pout[j] = malloc(4 * (size_t)(P * osz[j]));
    mout[j] = malloc(4 * (size_t)osz[j]);
  }
  run_host(pg, (const void *[]){params, obs, state[0], state[1]}, pout);
  bool is_i32 = evo_policy_action_dtype(pol) == EVO_I32;
  for (int m = 0; m < P; m++) {
    const void *in[4] = {params + m * d, obs + (shared ? 0 : m * on), state[0] + m * hs, state[1] + m * hs};
    run_host(g, in, mout);
    for (int j = 0; j < no; j++) {
      char what[96];
      snprintf(what, sizeof what, "%s member %d output %d (%s obs)", net, m, j, shared ? "shared" : "own");
      if (j == 0 && is_i32)
        cr_expect_eq(memcmp((int32_t *)pout[j] + m * osz[j], mout[j], 4 * (size_t)osz[j]), 0, "%s", what);
      else
        expect_close(what, (float *)pout[j] + m * osz[j], mout[j], osz[j], 1e-5);
    }
  }
  for (int j = 0; j < no; j++) free(pout[j]), free(mout[j]);
  free(params), free(obs), free(state[0]), free(state[1]);
  evo_graph_free(g);
  evo_graph_free(pg);
  evo_policy_free(pol);
}

Test(policies, population_mlp_equals_loop) {
  check_population("mlp_tanh", 4, true);
  check_population("mlp_tanh", 4, false);
  check_population("mlp_argmax", 5, true);
}
Test(policies, population_cnn_equals_loop) {
  check_population("evojax_convnet", 2, true);
  check_population("evojax_convnet", 2, false);
  check_population("cnn_misc", 3, false);
}
Test(policies, population_lstm_equals_loop) {
  check_population("lstm", 3, true);
  check_population("lstm", 3, false);
}

/* ------------------------------------------------------------------ gradients through the policy graph */

/* loss(params) = mean((policy(params, obs) - target)^2), traced around evo_policy_trace. */
static evo_graph *loss_graph(const evo_policy *pol, int64_t n_obs) {
  const evo_policy_io *io = evo_policy_get_io(pol);
  evo_graph *g = evo_graph_new();
  int64_t d = evo_policy_num_params(pol), os[5] = {n_obs}, as[5] = {n_obs};
  memcpy(os + 1, io->obs_shape, sizeof(int64_t) * (size_t)io->obs_ndim);
  memcpy(as + 1, io->act_shape, sizeof(int64_t) * (size_t)io->act_ndim);
  evo_node params = evo_input(g, "params", EVO_F32, 1, &d);
  evo_node obs = evo_input(g, "obs", EVO_F32, io->obs_ndim + 1, os);
  evo_node target = evo_input(g, "target", EVO_F32, io->act_ndim + 1, as);
  evo_node y = evo_policy_trace(pol, g, params, obs, NULL, NULL);
  evo_output(g, evo_mean(g, evo_square(g, evo_sub(g, y, target)), 0, NULL, false));
  cr_assert_eq(evo_graph_status(g), EVO_STATUS_OK, "%s", evo_graph_error(g));
  return g;
}

Test(policies, grad_matches_finite_differences) {
  evo_policy *pol = make_net("mlp_tanh");
  float *w = golden_params(pol, "mlp_tanh");
  int64_t d = evo_policy_num_params(pol);
  float obs[24], target[12], grad[256], loss;
  gen_params(21, obs, 24, 1.0f);
  gen_params(22, target, 12, 0.5f);
  cr_assert_leq(d, 256);
  evo_graph *g = loss_graph(pol, 4), *gg = evo_grad(g, 0, 1, (int[]){0});
  cr_assert_not_null(gg, "%s", evo_last_error());
  run_host(gg, (const void *[]){w, obs, target}, (void *[]){grad});
  for (int64_t i = 0; i < d; i += 3) { /* central differences in float32 */
    const float eps = 1e-2f, w0 = w[i];
    float lp, lm;
    w[i] = w0 + eps;
    run_host(g, (const void *[]){w, obs, target}, (void *[]){&lp});
    w[i] = w0 - eps;
    run_host(g, (const void *[]){w, obs, target}, (void *[]){&lm});
    w[i] = w0;
    double fd = ((double)lp - lm) / (2 * eps);
    cr_expect(fabs(fd - grad[i]) <= 2e-3 * (fabs(fd) + 1e-2), "d loss / d params[%lld]: grad %g, finite diff %g",
              (long long)i, (double)grad[i], fd);
  }
  run_host(g, (const void *[]){w, obs, target}, (void *[]){&loss});
  cr_expect(loss > 0);
  free(w);
  evo_graph_free(gg);
  evo_graph_free(g);
  evo_policy_free(pol);
}

/* vmap(grad): per-member gradients of the ConvNet equal one grad per member. */
Test(policies, per_member_grad_cnn) {
  enum { P = 2, N = 2 };
  evo_policy *pol = make_net("evojax_convnet");
  int64_t d = evo_policy_num_params(pol);
  float *w = malloc(sizeof *w * P * (size_t)d), *gp = malloc(sizeof *gp * P * (size_t)d);
  float *gm = malloc(sizeof *gm * (size_t)d), obs[N * 784], target[N * 10];
  for (int m = 0; m < P; m++) evo_policy_init(pol, evo_key_from_seed(40 + (uint64_t)m), w + m * d);
  gen_params(23, obs, N * 784, 1.0f);
  gen_params(24, target, N * 10, 1.0f);
  evo_graph *g = loss_graph(pol, N), *gg = evo_grad(g, 0, 1, (int[]){0});
  cr_assert_not_null(gg, "%s", evo_last_error());
  evo_graph *vg = evo_vmap(gg, P, (int[]){0, EVO_VMAP_NONE, EVO_VMAP_NONE}, NULL);
  cr_assert_not_null(vg, "%s", evo_last_error());
  run_host(vg, (const void *[]){w, obs, target}, (void *[]){gp});
  double norm = 0;
  for (int m = 0; m < P; m++) {
    run_host(gg, (const void *[]){w + m * d, obs, target}, (void *[]){gm});
    for (int64_t i = 0; i < d; i++) norm += (double)gm[i] * gm[i];
    char what[64];
    snprintf(what, sizeof what, "member %d gradient", m);
    expect_close(what, gp + m * d, gm, d, 1e-4);
  }
  cr_expect_gt(norm, 0.0);
  free(w), free(gp), free(gm);
  evo_graph_free(vg);
  evo_graph_free(gg);
  evo_graph_free(g);
  evo_policy_free(pol);
}

/* ------------------------------------------------------------------ errors */

Test(policies, construction_errors_name_the_cause) {
  evo_policy *pol = NULL;
  evo_policy_mlp_params mp = evo_policy_mlp_default_params();
  mp.output = EVO_POLICY_OUT_ARGMAX;
  evo_policy_io cont = io_make(1, (int64_t[]){5}, 1, (int64_t[]){2}, false);
  cr_expect_eq(evo_policy_mlp_new(&mp, &cont, &pol), EVO_STATUS_INVALID_ARGUMENT);
  cr_expect(strstr(evo_last_error(), "discrete"), "%s", evo_last_error());
  cr_expect_null(pol);
  evo_policy_cnn_params cp = evo_policy_cnn_default_params();
  evo_policy_io img = io_make(3, (int64_t[]){28, 28, 1}, 1, (int64_t[]){4}, false);
  cr_expect_eq(evo_policy_cnn_new(&cp, &img, &pol), EVO_STATUS_INVALID_ARGUMENT);
  cr_expect(strstr(evo_last_error(), "[10]") && strstr(evo_last_error(), "[4]"), "%s", evo_last_error());
  evo_policy_io vec = io_make(1, (int64_t[]){28}, 1, (int64_t[]){10}, false);
  cr_expect_eq(evo_policy_cnn_new(&cp, &vec, &pol), EVO_STATUS_INVALID_ARGUMENT);
  cr_expect(strstr(evo_last_error(), "layer 0 (conv)"), "%s", evo_last_error());
  cr_expect_eq(evo_policy_cnn_preset("lenet", &cp), EVO_STATUS_NOT_FOUND);
  evo_policy_io big = io_make(3, (int64_t[]){3, 3, 1}, 1, (int64_t[]){10}, false);
  cp.layers[0].padding = EVO_PAD_VALID; /* a 5x5 VALID conv on 3x3 */
  cr_expect_eq(evo_policy_cnn_new(&cp, &big, &pol), EVO_STATUS_INVALID_ARGUMENT);
  cr_expect(strstr(evo_last_error(), "does not fit"), "%s", evo_last_error());
  /* tracing with inputs of the wrong shape */
  cr_assert_eq(evo_policy_mlp_new(&(evo_policy_mlp_params){.n_hidden = 1, .hidden = {4}}, &cont, &pol), 0);
  evo_graph *g = evo_graph_new();
  evo_node w = evo_input(g, "params", EVO_F32, 1, (int64_t[]){evo_policy_num_params(pol)});
  evo_node x = evo_input(g, "obs", EVO_F32, 2, (int64_t[]){3, 6});
  cr_expect_eq(evo_policy_trace(pol, g, w, x, NULL, NULL), EVO_NODE_INVALID);
  cr_expect(strstr(evo_last_error(), "obs must be f32 [N] + [5]"), "%s", evo_last_error());
  evo_node w2 = evo_input(g, "params2", EVO_F32, 1, (int64_t[]){7});
  cr_expect_eq(evo_policy_trace(pol, g, w2, x, NULL, NULL), EVO_NODE_INVALID);
  cr_expect(strstr(evo_last_error(), "params must be f32 [34]"), "%s", evo_last_error());
  evo_graph_free(g);
  evo_policy_free(pol);
  pol = NULL;
  evo_policy_lstm_params lp = {.hidden = 0};
  cr_expect_eq(evo_policy_lstm_new(&lp, &cont, &pol), EVO_STATUS_INVALID_ARGUMENT);
  cr_expect_null(pol);
}

/* ------------------------------------------------------------------ config */

static evo_status policy_from_yaml(const char *yaml, const evo_policy_io *io, evo_policy **pol) {
  evo_config *c = NULL;
  evo_status s = evo_config_parse(yaml, "policy.yaml", &c);
  cr_assert_eq(s, EVO_STATUS_OK, "%s", evo_last_error());
  s = evo_policy_new(evo_cfg_get(evo_config_root(c), "policy"), io, pol);
  evo_config_free(c);
  return s;
}

Test(policies, from_config) {
  evo_policy *pol = NULL;
  evo_policy_io img = io_make(3, (int64_t[]){28, 28, 1}, 1, (int64_t[]){10}, false);
  evo_policy_io cart = io_make(1, (int64_t[]){5}, 1, (int64_t[]){1}, false);
  cr_assert_eq(evo_policy_new(NULL, &cart, &pol), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect_eq(evo_policy_num_params(pol), 4609);
  evo_policy_free(pol);
  cr_assert_eq(policy_from_yaml("policy: {name: cnn, preset: evojax_convnet}\n", &img, &pol), EVO_STATUS_OK, "%s",
               evo_last_error());
  cr_expect_eq(evo_policy_num_params(pol), 11274);
  evo_policy_free(pol);
  const char *layers = "policy:\n  name: cnn\n  layers:\n"
                       "    - {type: conv, features: 8, kernel: 5}\n    - relu\n    - {type: maxpool, window: 2}\n"
                       "    - {type: conv, features: 16, kernel: [5, 5], stride: 1, padding: same}\n    - relu\n"
                       "    - {type: maxpool, window: 2, stride: 2, padding: valid}\n"
                       "    - {type: dense, features: 10}\n    - log_softmax\n";
  cr_assert_eq(policy_from_yaml(layers, &img, &pol), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect_eq(evo_policy_num_params(pol), 11274);
  evo_policy_free(pol);
  cr_assert_eq(policy_from_yaml("policy: {name: mlp, hidden: [16], activation: relu, output: linear}\n", &cart,
                                &pol), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect_eq(evo_policy_num_params(pol), 5 * 16 + 16 + 16 + 1);
  evo_policy_free(pol);
  cr_assert_eq(policy_from_yaml("policy: {name: lstm, hidden: 3}\n", &cart, &pol), EVO_STATUS_OK, "%s",
               evo_last_error());
  cr_expect_eq(evo_policy_num_params(pol), 5 * 12 + 3 * 12 + 12 + 3 + 1);
  evo_policy_free(pol);
  /* errors carry the config location */
  cr_expect_neq(policy_from_yaml("policy: {name: mlp, hiden: [16]}\n", &cart, &pol), EVO_STATUS_OK);
  cr_expect(strstr(evo_last_error(), "hiden"), "%s", evo_last_error());
  cr_expect_neq(policy_from_yaml("policy:\n  name: cnn\n  layers: [relu, {type: conv, featurs: 3}]\n", &img, &pol),
                EVO_STATUS_OK);
  cr_expect(strstr(evo_last_error(), "policy.yaml:"), "%s", evo_last_error());
  cr_expect_neq(policy_from_yaml("policy: {name: cnn, layers: [rleu]}\n", &img, &pol), EVO_STATUS_OK);
  cr_expect(strstr(evo_last_error(), "rleu"), "%s", evo_last_error());
  cr_expect_neq(policy_from_yaml("policy: {name: mlp, hidden: [0]}\n", &cart, &pol), EVO_STATUS_OK);
}
