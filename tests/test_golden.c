/* Golden values from an independent implementation (JAX in float64, scripts/golden_nets.py) for whole networks:
   an MLP (forward, value_and_grad w.r.t. every parameter and the observations, and a vmapped population with
   per-member value_and_grad) and the seed CNN of the MNIST tutorial (logits, loss, gradients of every parameter).
   The nets are built here with evoc's builders and transforms, jitted and run on the CPU backend.

   Tolerances: |evoc - golden| <= rtol * (|golden| + 0.01 * max|golden of that tensor|), rtol = 1e-4 for forward
   values (outputs, logits, loss) and 1e-3 for gradients. The floor term keeps entries that are tiny next to the
   rest of their tensor from demanding a precision float32 cannot give them.

   Data file format and the parameter generator: see scripts/golden_nets.py. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/backend.h"
#include "evoc/graph.h"
#include "evoc/jit.h"
#include "evoc/transform.h"

#ifndef EVOC_TEST_DATA
#error "EVOC_TEST_DATA must name the tests/data folder (tests/CMakeLists.txt defines it)"
#endif

static evo_backend *be;
static void setup(void) { be = evo_backend_cpu_new(NULL); }
static void teardown(void) { evo_backend_free(be); }
TestSuite(golden, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------ golden file reader */

#define GOLD_MAX 64
typedef struct {
  char name[96];
  char dtype[4]; /* f32, f64, i32 */
  int ndim;
  int64_t shape[EVO_MAX_DIMS];
  int64_t numel;
  const void *data;
} gold_tensor;

typedef struct {
  unsigned char *raw;
  int n;
  gold_tensor t[GOLD_MAX];
} gold_file;

static void gold_load(gold_file *f, const char *fname) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", EVOC_TEST_DATA, fname);
  FILE *fp = fopen(path, "rb");
  cr_assert_not_null(fp, "cannot open %s (regenerate with scripts/golden_nets.py)", path);
  fseek(fp, 0, SEEK_END);
  long size = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  f->raw = malloc((size_t)size + 1);
  cr_assert_eq(fread(f->raw, 1, (size_t)size, fp), (size_t)size, "short read of %s", path);
  fclose(fp);
  f->raw[size] = 0;
  f->n = 0;

  /* Header: lines up to "end\n"; data follows. */
  char *p = (char *)f->raw;
  char *nl = strchr(p, '\n');
  cr_assert(nl && !strncmp(p, "evoc-golden 1", 13), "%s: not an evoc-golden v1 file", path);
  p = nl + 1;
  int64_t total = 0;
  for (;;) {
    nl = memchr(p, '\n', (size_t)((char *)f->raw + size - p));
    cr_assert_not_null(nl, "%s: header not terminated", path);
    *nl = 0;
    if (!strcmp(p, "end")) {
      p = nl + 1;
      break;
    }
    cr_assert_lt(f->n, GOLD_MAX, "%s: too many tensors", path);
    gold_tensor *t = &f->t[f->n++];
    int used = 0;
    cr_assert_eq(sscanf(p, "%95s %3s %d%n", t->name, t->dtype, &t->ndim, &used), 3, "%s: bad line '%s'", path, p);
    cr_assert(t->ndim >= 0 && t->ndim <= EVO_MAX_DIMS);
    char *q = p + used;
    t->numel = 1;
    for (int d = 0; d < t->ndim; d++) {
      t->shape[d] = strtoll(q, &q, 10);
      t->numel *= t->shape[d];
    }
    total += t->numel * (strcmp(t->dtype, "f64") ? 4 : 8);
    p = nl + 1;
  }
  cr_assert_eq((char *)f->raw + size - p, total, "%s: data size mismatch", path);
  /* The header has any length: move the data to the (malloc-aligned) start so every tensor is aligned. */
  memmove(f->raw, p, (size_t)total);
  p = (char *)f->raw;
  for (int i = 0; i < f->n; i++) {
    f->t[i].data = p; /* little-endian raw data, as on x86-64/aarch64 */
    p += f->t[i].numel * (strcmp(f->t[i].dtype, "f64") ? 4 : 8);
  }
}

static void gold_free(gold_file *f) { free(f->raw); }

static const gold_tensor *gold_get(const gold_file *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (!strcmp(f->t[i].name, name)) return &f->t[i];
  cr_assert_fail("golden tensor '%s' missing (regenerate with scripts/golden_nets.py)", name);
  return NULL;
}

static double gold_f64(const gold_file *f, const char *name) {
  const gold_tensor *t = gold_get(f, name);
  cr_assert(!strcmp(t->dtype, "f64") && t->numel == 1);
  double v;
  memcpy(&v, t->data, sizeof v);
  return v;
}

/* A backend tensor holding a golden tensor (f32 or i32). */
static evo_tensor *gold_tensor_new(const gold_file *f, const char *name) {
  const gold_tensor *t = gold_get(f, name);
  evo_dtype dt = !strcmp(t->dtype, "i32") ? EVO_I32 : EVO_F32;
  cr_assert(strcmp(t->dtype, "f64"), "%s is f64", name);
  evo_tensor *x = evo_tensor_from_host(be, dt, t->ndim, t->shape, t->data);
  cr_assert_not_null(x, "%s: %s", name, evo_last_error());
  return x;
}

/* ------------------------------------------------------------------ comparison */

/* Compares n floats; reports the worst entry. */
static void expect_close(const char *what, const float *got, const float *ref, int64_t n, double rtol) {
  double maxref = 0;
  for (int64_t i = 0; i < n; i++) maxref = fmax(maxref, fabs((double)ref[i]));
  double floor_ = 0.01 * maxref, worst = 0;
  int64_t wi = -1;
  for (int64_t i = 0; i < n; i++) {
    cr_assert(isfinite(got[i]), "%s[%lld] = %g is not finite", what, (long long)i, (double)got[i]);
    double err = fabs((double)got[i] - (double)ref[i]) / (fabs((double)ref[i]) + floor_ + 1e-30);
    if (err > worst) worst = err, wi = i;
  }
  cr_log_info("%-32s n=%-8lld worst scaled error %.2e%s", what, (long long)n, worst, worst > rtol ? "  FAIL" : "");
  cr_expect_leq(worst, rtol, "%s: entry %lld: evoc %.8g vs golden %.8g (scaled error %.3g > %.1g)", what,
                (long long)wi, wi >= 0 ? (double)got[wi] : 0.0, wi >= 0 ? (double)ref[wi] : 0.0, worst, rtol);
}

static void expect_tensor(const char *what, evo_tensor *got, const gold_file *f, const char *ref_name, double rtol) {
  const gold_tensor *r = gold_get(f, ref_name);
  cr_assert_eq(evo_tensor_ndim(got), r->ndim, "%s: ndim %d vs golden %d", what, evo_tensor_ndim(got), r->ndim);
  for (int d = 0; d < r->ndim; d++)
    cr_assert_eq(evo_tensor_shape(got)[d], r->shape[d], "%s: dim %d is %lld, golden %lld", what, d,
                 (long long)evo_tensor_shape(got)[d], (long long)r->shape[d]);
  expect_close(what, evo_tensor_data(got), r->data, r->numel, rtol);
}

static evo_tensor *new_like_output(const evo_graph *g, int i) {
  evo_node o = evo_graph_output(g, i);
  evo_tensor *t = evo_tensor_new(be, evo_node_dtype(g, o), evo_node_ndim(g, o), evo_node_shape(g, o));
  cr_assert_not_null(t);
  return t;
}

static void run_graph(const evo_graph *g, evo_tensor *const *in, evo_tensor *const *out) {
  cr_assert_eq(evo_graph_status(g), EVO_STATUS_OK, "trace: %s", evo_graph_error(g));
  evo_plan *p = NULL;
  evo_status s = evo_jit(g, be, &p);
  cr_assert_eq(s, EVO_STATUS_OK, "jit: %s: %s", evo_status_str(s), evo_last_error());
  s = evo_plan_run(p, in, out);
  cr_assert_eq(s, EVO_STATUS_OK, "run: %s: %s", evo_status_str(s), evo_last_error());
  evo_plan_free(p);
}

/* ------------------------------------------------------------------ MLP 5 -> 16 -> 16 -> 3, tanh */

static const char *mlp_names[6] = {"w1", "b1", "w2", "b2", "w3", "b3"};

/* Inputs: w1 b1 w2 b2 w3 b3 obs target; outputs: y [8, 3] (and the loss when with_loss). */
static evo_graph *mlp_graph(const gold_file *f, int with_loss) {
  evo_graph *g = evo_graph_new();
  evo_node prm[6];
  for (int i = 0; i < 6; i++) {
    const gold_tensor *t = gold_get(f, mlp_names[i]);
    prm[i] = evo_input(g, mlp_names[i], EVO_F32, t->ndim, t->shape);
  }
  evo_node obs = evo_input(g, "obs", EVO_F32, 2, gold_get(f, "obs")->shape);
  evo_node target = evo_input(g, "target", EVO_F32, 2, gold_get(f, "target")->shape);
  evo_node h = obs;
  for (int l = 0; l < 3; l++) h = evo_tanh(g, evo_add(g, evo_matmul(g, h, prm[2 * l]), prm[2 * l + 1]));
  if (with_loss)
    evo_output(g, evo_mean(g, evo_square(g, evo_sub(g, h, target)), 0, NULL, false));
  else
    evo_output(g, h);
  cr_assert_eq(evo_graph_status(g), EVO_STATUS_OK, "trace: %s", evo_graph_error(g));
  return g;
}

static void mlp_inputs(const gold_file *f, const char *prefix, evo_tensor **in) {
  char name[64];
  for (int i = 0; i < 6; i++) {
    snprintf(name, sizeof name, "%s%s", prefix, mlp_names[i]);
    in[i] = gold_tensor_new(f, name);
  }
  in[6] = gold_tensor_new(f, "obs");
  in[7] = gold_tensor_new(f, "target");
}

Test(golden, mlp_forward) {
  gold_file f;
  gold_load(&f, "golden_mlp.bin");
  evo_graph *g = mlp_graph(&f, 0);
  evo_tensor *in[8], *out[1];
  mlp_inputs(&f, "", in);
  out[0] = new_like_output(g, 0);
  run_graph(g, in, out);
  expect_tensor("mlp y", out[0], &f, "y", 1e-4);
  for (int i = 0; i < 8; i++) evo_tensor_free(in[i]);
  evo_tensor_free(out[0]);
  evo_graph_free(g);
  gold_free(&f);
}

Test(golden, mlp_value_and_grad) {
  gold_file f;
  gold_load(&f, "golden_mlp.bin");
  evo_graph *g = mlp_graph(&f, 1);
  int wrt[7] = {0, 1, 2, 3, 4, 5, 6}; /* every parameter and the observations */
  evo_graph *vg = evo_value_and_grad(g, 0, 7, wrt);
  cr_assert_not_null(vg, "value_and_grad: %s", evo_last_error());
  cr_assert_eq(evo_graph_n_outputs(vg), 8);
  evo_tensor *in[8], *out[8];
  mlp_inputs(&f, "", in);
  for (int i = 0; i < 8; i++) out[i] = new_like_output(vg, i);
  run_graph(vg, in, out);
  expect_tensor("mlp loss", out[0], &f, "loss", 1e-4);
  char what[64], ref[64];
  for (int i = 0; i < 6; i++) {
    snprintf(what, sizeof what, "mlp d loss / d %s", mlp_names[i]);
    snprintf(ref, sizeof ref, "grad.%s", mlp_names[i]);
    expect_tensor(what, out[1 + i], &f, ref, 1e-3);
  }
  expect_tensor("mlp d loss / d obs", out[7], &f, "grad.obs", 1e-3);
  for (int i = 0; i < 8; i++) evo_tensor_free(in[i]), evo_tensor_free(out[i]);
  evo_graph_free(vg);
  evo_graph_free(g);
  gold_free(&f);
}

/* Population of 4 members: vmap over the parameters (observations and targets shared). */
Test(golden, mlp_population_forward) {
  gold_file f;
  gold_load(&f, "golden_mlp.bin");
  evo_graph *g = mlp_graph(&f, 0);
  int in_axes[8] = {0, 0, 0, 0, 0, 0, EVO_VMAP_NONE, EVO_VMAP_NONE};
  evo_graph *pop = evo_vmap(g, 4, in_axes, NULL);
  cr_assert_not_null(pop, "vmap: %s", evo_last_error());
  evo_tensor *in[8], *out[1];
  mlp_inputs(&f, "pop.", in);
  out[0] = new_like_output(pop, 0);
  run_graph(pop, in, out);
  expect_tensor("mlp population y", out[0], &f, "pop.y", 1e-4);
  for (int i = 0; i < 8; i++) evo_tensor_free(in[i]);
  evo_tensor_free(out[0]);
  evo_graph_free(pop);
  evo_graph_free(g);
  gold_free(&f);
}

/* vmap(value_and_grad): per-member losses and gradients. */
Test(golden, mlp_population_value_and_grad) {
  gold_file f;
  gold_load(&f, "golden_mlp.bin");
  evo_graph *g = mlp_graph(&f, 1);
  int wrt[6] = {0, 1, 2, 3, 4, 5};
  evo_graph *vg = evo_value_and_grad(g, 0, 6, wrt);
  cr_assert_not_null(vg, "value_and_grad: %s", evo_last_error());
  int in_axes[8] = {0, 0, 0, 0, 0, 0, EVO_VMAP_NONE, EVO_VMAP_NONE};
  evo_graph *pop = evo_vmap(vg, 4, in_axes, NULL);
  cr_assert_not_null(pop, "vmap: %s", evo_last_error());
  evo_tensor *in[8], *out[7];
  mlp_inputs(&f, "pop.", in);
  for (int i = 0; i < 7; i++) out[i] = new_like_output(pop, i);
  run_graph(pop, in, out);
  expect_tensor("mlp population loss", out[0], &f, "pop.loss", 1e-4);
  char what[64], ref[64];
  for (int i = 0; i < 6; i++) {
    snprintf(what, sizeof what, "mlp population d loss / d %s", mlp_names[i]);
    snprintf(ref, sizeof ref, "pop.grad.%s", mlp_names[i]);
    expect_tensor(what, out[1 + i], &f, ref, 1e-3);
  }
  for (int i = 0; i < 8; i++) evo_tensor_free(in[i]);
  for (int i = 0; i < 7; i++) evo_tensor_free(out[i]);
  evo_graph_free(pop);
  evo_graph_free(vg);
  evo_graph_free(g);
  gold_free(&f);
}

/* ------------------------------------------------------------------ seed CNN */

/* The generator of scripts/golden_nets.py (gen_params), bit-exact. */
static void gen_params(uint64_t seed, float *out, int64_t n, float scale) {
  for (int64_t i = 0; i < n; i++) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + (uint64_t)(i + 1) * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    int64_t u = (int64_t)(x >> 40) - (1 << 23);
    float v = (float)u * 0x1p-23f;
    out[i] = v * scale;
  }
}

Test(golden, generator_matches_python) {
  float v[4];
  gen_params(1, v, 4, 1.0f);
  /* Printed by scripts/golden_nets.py: gen_params(1, (4,), 1.0). */
  const float ref[4] = {0.7869508266448975f, -0.9574412107467651f, -0.5913903713226318f, -0.6645245552062988f};
  for (int i = 0; i < 4; i++) cr_assert_eq(v[i], ref[i], "i=%d: %.9g vs %.9g", i, (double)v[i], (double)ref[i]);
}

static const char *cnn_names[6] = {"conv.kernel", "conv.bias", "dense1.kernel", "dense1.bias", "dense2.kernel",
                                   "dense2.bias"};

/* Inputs: the six parameters, x [2, 28, 28, 1], labels i32 [2]; outputs: loss (mean CE), logits [2, 10]. */
static evo_graph *cnn_graph(void) {
  evo_graph *g = evo_graph_new();
  evo_node cw = evo_input(g, "conv.kernel", EVO_F32, 4, (int64_t[]){5, 5, 1, 16});
  evo_node cb = evo_input(g, "conv.bias", EVO_F32, 1, (int64_t[]){16});
  evo_node w1 = evo_input(g, "dense1.kernel", EVO_F32, 2, (int64_t[]){3136, 1024});
  evo_node b1 = evo_input(g, "dense1.bias", EVO_F32, 1, (int64_t[]){1024});
  evo_node w2 = evo_input(g, "dense2.kernel", EVO_F32, 2, (int64_t[]){1024, 10});
  evo_node b2 = evo_input(g, "dense2.bias", EVO_F32, 1, (int64_t[]){10});
  evo_node x = evo_input(g, "x", EVO_F32, 4, (int64_t[]){2, 28, 28, 1});
  evo_node y = evo_input(g, "labels", EVO_I32, 1, (int64_t[]){2});
  evo_node h = evo_relu(g, evo_add(g, evo_conv2d(g, x, cw, 1, 1, EVO_PAD_SAME), cb));
  h = evo_max_pool2d(g, h, 2, 2, 2, 2, EVO_PAD_VALID);
  h = evo_flatten(g, h, 1);
  h = evo_relu(g, evo_add(g, evo_matmul(g, h, w1), b1));
  evo_node logits = evo_add(g, evo_matmul(g, h, w2), b2);
  evo_output(g, evo_mean(g, evo_softmax_cross_entropy(g, logits, y), 0, NULL, false));
  evo_output(g, logits);
  cr_assert_eq(evo_graph_status(g), EVO_STATUS_OK, "trace: %s", evo_graph_error(g));
  return g;
}

/* Parameters (dense1.kernel generated, checked against the stored sum and sum of squares), images, labels. */
static void cnn_inputs(const gold_file *f, evo_tensor **in) {
  for (int i = 0; i < 6; i++) {
    if (i == 2) {
      int64_t n = 3136 * 1024;
      float *w = malloc(sizeof(float) * (size_t)n);
      gen_params(30 + 2, w, n, 0.04f);
      double s = 0, s2 = 0;
      for (int64_t k = 0; k < n; k++) s += w[k], s2 += (double)w[k] * w[k];
      double rs = gold_f64(f, "dense1.kernel.sum"), rs2 = gold_f64(f, "dense1.kernel.sumsq");
      cr_assert(fabs(s - rs) <= 1e-9 * fmax(1, fabs(rs)) && fabs(s2 - rs2) <= 1e-9 * rs2,
                "generated dense1.kernel differs from the script's: sum %.12g vs %.12g, sumsq %.12g vs %.12g", s, rs,
                s2, rs2);
      in[i] = evo_tensor_from_host(be, EVO_F32, 2, (int64_t[]){3136, 1024}, w);
      free(w);
      cr_assert_not_null(in[i]);
    } else {
      in[i] = gold_tensor_new(f, cnn_names[i]);
    }
  }
  in[6] = gold_tensor_new(f, "x");
  in[7] = gold_tensor_new(f, "labels");
}

Test(golden, cnn_forward) {
  gold_file f;
  gold_load(&f, "golden_cnn.bin");
  evo_graph *g = cnn_graph();
  evo_tensor *in[8], *out[2];
  cnn_inputs(&f, in);
  for (int i = 0; i < 2; i++) out[i] = new_like_output(g, i);
  run_graph(g, in, out);
  expect_tensor("cnn loss", out[0], &f, "loss", 1e-4);
  expect_tensor("cnn logits", out[1], &f, "logits", 1e-4);
  for (int i = 0; i < 8; i++) evo_tensor_free(in[i]);
  for (int i = 0; i < 2; i++) evo_tensor_free(out[i]);
  evo_graph_free(g);
  gold_free(&f);
}

Test(golden, cnn_value_and_grad) {
  gold_file f;
  gold_load(&f, "golden_cnn.bin");
  evo_graph *g = cnn_graph();
  int wrt[6] = {0, 1, 2, 3, 4, 5};
  evo_graph *vg = evo_value_and_grad(g, 0, 6, wrt);
  cr_assert_not_null(vg, "value_and_grad: %s", evo_last_error());
  cr_assert_eq(evo_graph_n_outputs(vg), 7);
  evo_tensor *in[8], *out[7];
  cnn_inputs(&f, in);
  for (int i = 0; i < 7; i++) out[i] = new_like_output(vg, i);
  run_graph(vg, in, out);
  expect_tensor("cnn loss (value_and_grad)", out[0], &f, "loss", 1e-4);
  char what[64], ref[64];
  for (int i = 0; i < 6; i++) {
    if (i == 2) continue;
    snprintf(what, sizeof what, "cnn d loss / d %s", cnn_names[i]);
    snprintf(ref, sizeof ref, "grad.%s", cnn_names[i]);
    expect_tensor(what, out[1 + i], &f, ref, 1e-3);
  }

  /* dense1.kernel [3136, 1024]: row sums, column sums, sampled entries, squared norm. */
  const float *gd = evo_tensor_data(out[3]);
  cr_assert_eq(evo_tensor_numel(out[3]), 3136 * 1024);
  float *rows = calloc(3136, sizeof(float)), *cols = calloc(1024, sizeof(float));
  double *rowd = calloc(3136, sizeof(double)), *cold = calloc(1024, sizeof(double)), sumsq = 0;
  for (int64_t r = 0; r < 3136; r++)
    for (int64_t c = 0; c < 1024; c++) {
      double v = gd[r * 1024 + c];
      rowd[r] += v, cold[c] += v, sumsq += v * v;
    }
  for (int r = 0; r < 3136; r++) rows[r] = (float)rowd[r];
  for (int c = 0; c < 1024; c++) cols[c] = (float)cold[c];
  expect_close("cnn d loss / d dense1.kernel rowsum", rows, gold_get(&f, "grad.dense1.kernel.rowsum")->data, 3136,
               1e-3);
  expect_close("cnn d loss / d dense1.kernel colsum", cols, gold_get(&f, "grad.dense1.kernel.colsum")->data, 1024,
               1e-3);
  const gold_tensor *idx = gold_get(&f, "grad.dense1.kernel.sample_idx");
  float *sample = malloc(sizeof(float) * (size_t)idx->numel);
  for (int64_t k = 0; k < idx->numel; k++) {
    int32_t j = ((const int32_t *)idx->data)[k];
    cr_assert(j >= 0 && j < 3136 * 1024);
    sample[k] = gd[j];
  }
  expect_close("cnn d loss / d dense1.kernel sample", sample, gold_get(&f, "grad.dense1.kernel.sample")->data,
               idx->numel, 1e-3);
  double rsq = gold_f64(&f, "grad.dense1.kernel.sumsq");
  cr_log_info("%-32s %.6g vs golden %.6g", "cnn |d dense1.kernel|^2", sumsq, rsq);
  cr_expect(fabs(sumsq - rsq) <= 1e-3 * rsq, "|grad dense1.kernel|^2: %.8g vs golden %.8g", sumsq, rsq);
  free(rows), free(cols), free(rowd), free(cold), free(sample);

  for (int i = 0; i < 8; i++) evo_tensor_free(in[i]);
  for (int i = 0; i < 7; i++) evo_tensor_free(out[i]);
  evo_graph_free(vg);
  evo_graph_free(g);
  gold_free(&f);
}
