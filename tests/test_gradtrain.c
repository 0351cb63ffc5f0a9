/* Gradient training (gradtrain.h) on a tiny synthetic IDX dataset (gradtrain_test_util.h): the loss falls; the
   gradient, loss and test metrics match an independent double-precision MLP (gradient by central finite
   differences); global-norm clipping over chunked optimizers; freeze keeps entries bit-identical; init_from loads
   and reinit re-draws exactly the named entries; an interrupted run resumes bit-identically (mid-epoch and at an
   epoch end); bad configs and missing data give their location and the fix. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "evoc/backend.h"
#include "evoc/config.h"
#include "evoc/gradtrain.h"
#include "gradtrain_test_util.h"
#include "safetensors.h"

enum { N_TRAIN = 240, N_TEST = 60 };

static char dir[256];

static void setup(void) {
  omp_set_num_threads(1); /* the runs are tiny, and on a busy machine OpenMP threads wait on each other */
  snprintf(dir, sizeof dir, "/tmp/evoc_test_gradtrain_XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  cr_assert_eq(gt_write_dataset(dir, N_TRAIN, N_TEST), 0);
}

static void teardown(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_expect_eq(system(cmd), 0);
}

TestSuite(gradtrain, .init = setup, .fini = teardown, .timeout = 60);

/* The base config (an MLP on the synthetic data, Adam, batch 16, 2 epochs) with NULL-terminated overrides. */
static evo_config *config(const char *first, ...) {
  char text[1024];
  snprintf(text, sizeof text,
           "task: {name: mnist, data_dir: %s}\n"
           "policy: {name: mlp, hidden: [32], activation: relu}\n"
           "optim: {name: adam, lr: 0.01}\n"
           "data: {batch_size: 16}\n"
           "trainer: {epochs: 2, log_interval: 5}\n",
           dir);
  evo_config *c;
  cr_assert_eq(evo_config_parse(text, "gt.yaml", &c), EVO_STATUS_OK, "%s", evo_last_error());
  va_list ap;
  va_start(ap, first);
  for (const char *s = first; s; s = va_arg(ap, const char *))
    cr_assert_eq(evo_config_set(c, s), EVO_STATUS_OK, "%s: %s", s, evo_last_error());
  va_end(ap);
  return c;
}

static evo_gradtrain *trainer(evo_config *c, const char *out, bool resume) {
  evo_gradtrain_params p = evo_gradtrain_default_params();
  char path[512];
  if (out) snprintf(path, sizeof path, "%s/%s", dir, out), p.out_dir = path;
  p.resume = resume;
  evo_gradtrain *t;
  cr_assert_eq(evo_gradtrain_new(c, &p, &t), EVO_STATUS_OK, "%s", evo_last_error());
  return t;
}

static float *params_of(const evo_gradtrain *t) {
  float *flat = malloc(sizeof(float) * (size_t)evo_ptree_size(evo_gradtrain_ptree(t)));
  cr_assert_eq(evo_gradtrain_get_params(t, flat), EVO_STATUS_OK);
  return flat;
}

/* Entry `name` of t's tree: offset and size in the flat layout. */
static int64_t entry_of(const evo_gradtrain *t, const char *name, int64_t *n) {
  const evo_ptree *tr = evo_gradtrain_ptree(t);
  int i = evo_ptree_find(tr, name);
  cr_assert_geq(i, 0, "no entry %s", name);
  *n = (i + 1 < evo_ptree_count(tr) ? evo_ptree_offset(tr, i + 1) : evo_ptree_size(tr)) - evo_ptree_offset(tr, i);
  return evo_ptree_offset(tr, i);
}

static bool entry_equal(const evo_gradtrain *ta, const float *a, const float *b, const char *name) {
  int64_t n, off = entry_of(ta, name, &n);
  return memcmp(a + off, b + off, sizeof(float) * (size_t)n) == 0;
}

/* ---------------------------------------------------------------- learning */

typedef struct {
  double loss[64];
  int n;
  int tests;
} loss_log;

static void collect(const evo_gradtrain_progress *p, void *user) {
  loss_log *l = user;
  if (l->n < 64) l->loss[l->n++] = p->loss;
  l->tests += p->tested;
}

Test(gradtrain, loss_decreases_and_test_accuracy_rises) {
  evo_config *c = config("trainer.epochs=3", "data.drop_last=false", NULL);
  evo_gradtrain_params p = evo_gradtrain_default_params();
  loss_log log = {0};
  p.progress = collect, p.user = &log;
  evo_gradtrain *t;
  cr_assert_eq(evo_gradtrain_new(c, &p, &t), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_gradtrain_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_gradtrain_summary s;
  evo_gradtrain_summary_get(t, &s);
  cr_assert_eq(s.steps_per_epoch, (N_TRAIN + 15) / 16); /* drop_last false: the partial batch trains too */
  cr_assert_eq(s.steps, 3 * s.steps_per_epoch);
  cr_assert_eq(log.n, s.steps);
  cr_assert_eq(log.tests, 3);
  cr_assert_eq(s.stopped_because, EVO_GRADTRAIN_EPOCHS);
  double first = 0, last = 0;
  for (int i = 0; i < 5; i++) first += log.loss[i] / 5, last += log.loss[log.n - 1 - i] / 5;
  cr_assert_lt(last, 0.5 * first, "loss %g -> %g", first, last);
  cr_assert_gt(s.best_test_acc, 0.6, "test accuracy %g (chance 0.1)", s.best_test_acc);
  cr_assert_eq(s.examples, 3 * N_TRAIN);
  evo_gradtrain_free(t);
  evo_config_free(c);
}

/* device: cuda: the plans run on the GPU, and the parameters and the optimizer's step stay there (resident). The
   same run on the CPU differs only by the plans' float rounding: the losses of every step agree closely, and so do
   the final parameters and test metrics. */
Test(gradtrain, device_cuda_trains_as_the_cpu) {
  if (evo_cuda_device_count() == 0) cr_skip_test("no CUDA device here");
  loss_log log[2];
  memset(log, 0, sizeof log);
  evo_gradtrain *t[2];
  evo_config *c[2];
  float *w[2];
  evo_gradtrain_summary s[2];
  for (int d = 0; d < 2; d++) {
    /* test batches of 16: an evaluation runs 4 plans on one upload of the parameters */
    c[d] = config("trainer.epochs=2", "data.eval_batch_size=16", d ? "device=cuda" : "device=cpu", NULL);
    evo_gradtrain_params p = evo_gradtrain_default_params();
    p.progress = collect, p.user = &log[d];
    cr_assert_eq(evo_gradtrain_new(c[d], &p, &t[d]), EVO_STATUS_OK, "%s", evo_last_error());
    cr_assert_eq(evo_gradtrain_run(t[d]), EVO_STATUS_OK, "%s", evo_last_error());
    evo_gradtrain_summary_get(t[d], &s[d]);
    w[d] = params_of(t[d]);
  }
  cr_assert_eq(log[0].n, log[1].n);
  cr_assert_gt(log[0].n, 20);
  for (int i = 0; i < log[0].n; i++)
    cr_assert(fabs(log[0].loss[i] - log[1].loss[i]) <= 1e-4 * (1 + fabs(log[0].loss[i])), "step %d: loss cpu %.9g, "
              "cuda %.9g", i, log[0].loss[i], log[1].loss[i]);
  const int64_t n = evo_ptree_size(evo_gradtrain_ptree(t[0]));
  for (int64_t i = 0; i < n; i++)
    cr_assert(fabsf(w[0][i] - w[1][i]) <= 1e-3f * (1 + fabsf(w[0][i])), "parameter %lld: cpu %.9g, cuda %.9g",
              (long long)i, w[0][i], w[1][i]);
  cr_assert(fabs(s[0].test_acc - s[1].test_acc) <= 2.0 / N_TEST, "test accuracy cpu %g, cuda %g", s[0].test_acc,
            s[1].test_acc);
  cr_assert(fabs(s[0].test_loss - s[1].test_loss) <= 1e-4 * (1 + fabs(s[0].test_loss)), "test loss cpu %.9g, cuda %.9g",
            s[0].test_loss, s[1].test_loss);
  cr_assert_gt(s[1].best_test_acc, 0.5, "cuda test accuracy %g", s[1].best_test_acc);
  for (int d = 0; d < 2; d++) free(w[d]), evo_gradtrain_free(t[d]), evo_config_free(c[d]);
}

/* On a GPU the frozen entries are copied to the device only after the host changed them: parameters set through
   evo_gradtrain_set_params (frozen and resident trained ones) reach the next evaluation and the next gradient. */
Test(gradtrain, device_cuda_sees_frozen_entries_set_on_the_host) {
  if (evo_cuda_device_count() == 0) cr_skip_test("no CUDA device here");
  evo_gradtrain *t[2];
  evo_config *c[2];
  double acc[2], tl[2], loss[2];
  const int64_t idx[4] = {0, 1, 2, 3};
  for (int d = 0; d < 2; d++) {
    c[d] = config("trainer.epochs=1", "freeze=[dense1]", d ? "device=cuda" : "device=cpu", NULL);
    cr_assert_eq(evo_gradtrain_new(c[d], NULL, &t[d]), EVO_STATUS_OK, "%s", evo_last_error());
    cr_assert_eq(evo_gradtrain_run(t[d]), EVO_STATUS_OK, "%s", evo_last_error());
    const int64_t n = evo_ptree_size(evo_gradtrain_ptree(t[d]));
    float *w = params_of(t[d]), *g = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) w[i] = 0.5f * w[i] + 0.01f * (float)(i % 7); /* every entry moves */
    cr_assert_eq(evo_gradtrain_set_params(t[d], w), EVO_STATUS_OK);
    cr_assert_eq(evo_gradtrain_evaluate(t[d], &acc[d], &tl[d]), EVO_STATUS_OK, "%s", evo_last_error());
    cr_assert_eq(evo_gradtrain_loss_grad(t[d], 4, idx, &loss[d], g), EVO_STATUS_OK, "%s", evo_last_error());
    free(w), free(g);
  }
  cr_assert(fabs(tl[0] - tl[1]) <= 1e-4 * (1 + fabs(tl[0])), "test loss cpu %.9g, cuda %.9g", tl[0], tl[1]);
  cr_assert(fabs(loss[0] - loss[1]) <= 1e-4 * (1 + fabs(loss[0])), "loss cpu %.9g, cuda %.9g", loss[0], loss[1]);
  for (int d = 0; d < 2; d++) evo_gradtrain_free(t[d]), evo_config_free(c[d]);
}

/* ---------------------------------------------------------------- the gradient, against a reference */

enum { H = 5, CLASSES = 10 };

/* The MLP dense1 [64, H] tanh -> dense2 [H, 10] (linear), mean softmax cross-entropy of the examples, in double;
   *hits counts correct argmaxes. */
static double ref_loss(const double *w, const int64_t *idx, int n, int test, int *hits) {
  const double *w1 = w, *b1 = w1 + GT_PX * H, *w2 = b1 + H, *b2 = w2 + H * CLASSES;
  double sum = 0;
  if (hits) *hits = 0;
  for (int e = 0; e < n; e++) {
    double h[H], z[CLASSES], mx = -INFINITY, lse = 0;
    for (int j = 0; j < H; j++) {
      h[j] = b1[j];
      for (int p = 0; p < GT_PX; p++) h[j] += (double)(float)(gt_pixel(idx[e], test, p) / 255.0f) * w1[p * H + j];
      h[j] = tanh(h[j]);
    }
    int arg = 0;
    for (int k = 0; k < CLASSES; k++) {
      z[k] = b2[k];
      for (int j = 0; j < H; j++) z[k] += h[j] * w2[j * CLASSES + k];
      if (z[k] > mx) mx = z[k], arg = k;
    }
    for (int k = 0; k < CLASSES; k++) lse += exp(z[k] - mx);
    sum += mx + log(lse) - z[gt_label(idx[e], test)];
    if (hits) *hits += arg == gt_label(idx[e], test);
  }
  return sum / n;
}

Test(gradtrain, gradient_loss_and_test_metrics_match_a_reference_mlp) {
  evo_config *c = config("policy.hidden=[5]", "policy.activation=tanh", NULL);
  evo_gradtrain *t = trainer(c, NULL, false);
  int64_t D = evo_ptree_size(evo_gradtrain_ptree(t));
  cr_assert_eq(D, GT_PX * H + H + H * CLASSES + CLASSES);
  float *p = params_of(t), *g = malloc(sizeof(float) * (size_t)D);
  double *w = malloc(sizeof(double) * (size_t)D);
  for (int64_t i = 0; i < D; i++) w[i] = p[i];
  const int64_t idx[6] = {3, 17, 42, 99, 100, 239};
  double loss;
  cr_assert_eq(evo_gradtrain_loss_grad(t, 6, idx, &loss, g), EVO_STATUS_OK, "%s", evo_last_error());
  double want = ref_loss(w, idx, 6, 0, NULL);
  cr_assert_float_eq(loss, want, 1e-5, "loss %g, reference %g", loss, want);
  const double eps = 1e-5;
  double worst = 0;
  for (int64_t i = 0; i < D; i++) {
    double keep = w[i];
    w[i] = keep + eps;
    double up = ref_loss(w, idx, 6, 0, NULL);
    w[i] = keep - eps;
    double down = ref_loss(w, idx, 6, 0, NULL);
    w[i] = keep;
    double fd = (up - down) / (2 * eps), err = fabs(g[i] - fd) / (2e-4 + 1e-3 * fabs(fd));
    cr_assert_leq(err, 1.0, "param %lld: gradient %g, finite difference %g", (long long)i, g[i], fd);
    worst = err > worst ? err : worst;
  }
  /* test accuracy and loss over the whole test set, chunked by eval_batch_size */
  int64_t all[N_TEST];
  for (int i = 0; i < N_TEST; i++) all[i] = i;
  int hits;
  double ref = ref_loss(w, all, N_TEST, 1, &hits), acc, tl;
  cr_assert_eq(evo_config_set(c, "data.eval_batch_size=25"), EVO_STATUS_OK); /* 25 + 25 + 10 */
  evo_gradtrain_free(t);
  t = trainer(c, NULL, false);
  cr_assert_eq(evo_gradtrain_evaluate(t, &acc, &tl), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(acc, hits / (double)N_TEST);
  cr_assert_float_eq(tl, ref, 1e-5);
  free(p), free(g), free(w);
  evo_gradtrain_free(t);
  evo_config_free(c);
}

/* SGD with lr 1 and clip_norm 0.01 moves the parameters by exactly 0.01 in norm (when the gradient is larger);
   dense1.kernel (64 x 2048) spans two optimizer chunks (on a device: several spans of the device's sum). */
static void clip_bounds_the_step(const char *device) {
  evo_config *c = config("policy.hidden=[2048]", "optim.name=sgd", "optim.lr=1", "optim.clip_norm=0.01",
                         "trainer.max_steps=1", device, NULL);
  evo_gradtrain *t = trainer(c, NULL, false);
  int64_t D = evo_ptree_size(evo_gradtrain_ptree(t));
  float *before = params_of(t);
  cr_assert_eq(evo_gradtrain_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  float *after = params_of(t);
  double sq = 0;
  for (int64_t i = 0; i < D; i++) sq += ((double)after[i] - before[i]) * ((double)after[i] - before[i]);
  cr_assert_float_eq(sqrt(sq), 0.01, 1e-5, "%s: step norm %g", device, sqrt(sq));
  free(before), free(after);
  evo_gradtrain_free(t);
  evo_config_free(c);
}

Test(gradtrain, clip_norm_bounds_the_step_over_all_chunks) { clip_bounds_the_step("device=cpu"); }

/* On a GPU the parameters stay there and the optimizer steps there; its global norm is summed there. */
Test(gradtrain, device_cuda_clip_norm_bounds_the_step) {
  if (evo_cuda_device_count() == 0) cr_skip_test("no CUDA device here");
  clip_bounds_the_step("device=cuda");
}

Test(gradtrain, clipup_trains) {
  evo_config *c = config("optim.name=clipup", "optim.max_speed=0.3", "optim.lr=0.15", "trainer.epochs=3", NULL);
  evo_gradtrain *t = trainer(c, NULL, false);
  cr_assert_eq(evo_gradtrain_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_gradtrain_summary s;
  evo_gradtrain_summary_get(t, &s);
  cr_assert_gt(s.best_test_acc, 0.3, "test accuracy %g", s.best_test_acc);
  evo_gradtrain_free(t);
  evo_config_free(c);
}

/* ---------------------------------------------------------------- transfer learning */

Test(gradtrain, freeze_keeps_frozen_entries_bit_identical) {
  /* adamw: decoupled weight decay would move a frozen entry that merely got a zero gradient */
  evo_config *c = config("optim.name=adamw", "optim.weight_decay=0.1", "freeze=[dense1]", NULL);
  evo_gradtrain *t = trainer(c, NULL, false);
  cr_assert(!evo_gradtrain_trainable(t, 0) && !evo_gradtrain_trainable(t, 1));
  cr_assert(evo_gradtrain_trainable(t, 2) && evo_gradtrain_trainable(t, 3));
  float *before = params_of(t);
  cr_assert_eq(evo_gradtrain_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  float *after = params_of(t);
  cr_assert(entry_equal(t, before, after, "dense1.kernel") && entry_equal(t, before, after, "dense1.bias"));
  cr_assert(!entry_equal(t, before, after, "dense2.kernel") && !entry_equal(t, before, after, "dense2.bias"));
  evo_gradtrain_summary s;
  evo_gradtrain_summary_get(t, &s);
  cr_assert_eq(s.trainable_params, 32 * 10 + 10);
  free(before), free(after);
  evo_gradtrain_free(t);
  evo_config_free(c);
}

Test(gradtrain, init_from_loads_and_reinit_redraws_exactly_the_named_entries) {
  evo_config *ca = config("trainer.epochs=1", NULL);
  evo_gradtrain *a = trainer(ca, "a", false);
  cr_assert_eq(evo_gradtrain_run(a), EVO_STATUS_OK, "%s", evo_last_error());
  float *src = params_of(a); /* about to be compared with best.safetensors */
  char best[600];
  snprintf(best, sizeof best, "%s/a/best.safetensors", dir);
  float *file = malloc(sizeof(float) * (size_t)evo_ptree_size(evo_gradtrain_ptree(a)));
  cr_assert_eq(evo_ptree_load(evo_gradtrain_ptree(a), file, best), EVO_STATUS_OK, "%s", evo_last_error());

  char set[700];
  snprintf(set, sizeof set, "init_from=%s/a", dir); /* a run folder: its best.safetensors */
  evo_config *cb = config("seed=7", set, "reinit=[dense2]", "freeze=[dense1]", NULL);
  evo_gradtrain *b = trainer(cb, NULL, false);
  evo_config *cc = config("seed=7", NULL);
  evo_gradtrain *fresh = trainer(cc, NULL, false);
  float *pb = params_of(b), *pf = params_of(fresh);
  cr_assert(entry_equal(b, pb, file, "dense1.kernel") && entry_equal(b, pb, file, "dense1.bias"));
  cr_assert(entry_equal(b, pb, pf, "dense2.kernel") && entry_equal(b, pb, pf, "dense2.bias"));
  cr_assert(!entry_equal(b, pb, file, "dense2.kernel"));
  cr_assert(!entry_equal(b, pf, file, "dense1.kernel"));
  /* fine-tune the re-drawn head on the frozen body */
  cr_assert_eq(evo_gradtrain_run(b), EVO_STATUS_OK, "%s", evo_last_error());
  float *tuned = params_of(b);
  cr_assert(entry_equal(b, tuned, file, "dense1.kernel"));
  evo_gradtrain_summary s;
  evo_gradtrain_summary_get(b, &s);
  cr_assert_gt(s.best_test_acc, 0.5, "fine-tuned accuracy %g", s.best_test_acc);
  cr_assert_eq(memcmp(src, file, sizeof(float) * (size_t)evo_ptree_size(evo_gradtrain_ptree(a))), 0,
               "best.safetensors of a one-epoch run holds its final parameters");
  free(src), free(file), free(pb), free(pf), free(tuned);
  evo_gradtrain_free(a), evo_gradtrain_free(b), evo_gradtrain_free(fresh);
  evo_config_free(ca), evo_config_free(cb), evo_config_free(cc);
}

static void expect_new_fails(evo_config *c, evo_status want, const char *const *parts) {
  evo_gradtrain *t = NULL;
  evo_status st = evo_gradtrain_new(c, NULL, &t);
  cr_assert_eq(st, want, "status %s: %s", evo_status_str(st), evo_last_error());
  cr_assert_null(t);
  for (; *parts; parts++) cr_assert(strstr(evo_last_error(), *parts), "'%s' not in: %s", *parts, evo_last_error());
  evo_config_free(c);
}

Test(gradtrain, init_from_mismatches_name_the_entry_and_the_fix) {
  evo_config *ca = config("trainer.epochs=1", NULL);
  evo_gradtrain *a = trainer(ca, "a", false);
  cr_assert_eq(evo_gradtrain_run(a), EVO_STATUS_OK, "%s", evo_last_error());
  evo_gradtrain_free(a);
  evo_config_free(ca);
  char set[700];
  snprintf(set, sizeof set, "init_from=%s/a/best.safetensors", dir);
  expect_new_fails(config(set, "policy.hidden=[16]", NULL), EVO_STATUS_FORMAT,
                   (const char *[]){"--set init_from", "'dense1.kernel' as F32 [64, 32], the policy needs F32 [64, 16]",
                                    "add it to reinit", NULL});
  expect_new_fails(config(set, "policy.hidden=[32, 10]", NULL), EVO_STATUS_NOT_FOUND,
                   (const char *[]){"has no entry 'dense3.kernel' [10, 10]", "add it to reinit", NULL});
  snprintf(set, sizeof set, "init_from=%s/nothing_here.safetensors", dir);
  expect_new_fails(config(set, NULL), EVO_STATUS_NOT_FOUND,
                   (const char *[]){"nothing_here.safetensors", "train the source run first", NULL});
}

/* ---------------------------------------------------------------- resume */

static char *slurp(const char *path, long *n) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "no %s", path);
  fseek(f, 0, SEEK_END);
  *n = ftell(f);
  rewind(f);
  char *b = malloc((size_t)*n + 1);
  cr_assert_eq(fread(b, 1, (size_t)*n, f), (size_t)*n);
  b[*n] = '\0';
  fclose(f);
  return b;
}

/* metrics.jsonl without the timing fields (wall_s, epoch_s, eval_s). */
static char *metrics(const char *run) {
  char path[600];
  long n;
  snprintf(path, sizeof path, "%s/%s/metrics.jsonl", dir, run);
  char *text = slurp(path, &n), *out = calloc((size_t)n + 1, 1), *o = out;
  for (char *p = text; *p;) {
    const char *keys[] = {",\"wall_s\":", ",\"epoch_s\":", ",\"eval_s\":"};
    bool skipped = false;
    for (int k = 0; k < 3 && !skipped; k++)
      if (!strncmp(p, keys[k], strlen(keys[k]))) {
        p += strlen(keys[k]);
        while (*p && *p != ',' && *p != '}') p++;
        skipped = true;
      }
    if (!skipped) *o++ = *p++;
  }
  free(text);
  return out;
}

static void same_file(const char *a, const char *b, const char *name) {
  char pa[600], pb[600];
  long na, nb;
  snprintf(pa, sizeof pa, "%s/%s/%s", dir, a, name);
  snprintf(pb, sizeof pb, "%s/%s/%s", dir, b, name);
  char *x = slurp(pa, &na), *y = slurp(pb, &nb);
  cr_assert(na == nb && !memcmp(x, y, (size_t)na), "%s differs between %s and %s", name, a, b);
  free(x), free(y);
}

/* The final checkpoints hold the same parameters, optimizer moments and position (timings aside). */
static void same_final_state(const char *a, const char *b, int64_t step) {
  char pa[600], pb[600];
  snprintf(pa, sizeof pa, "%s/%s/checkpoints/step_%09lld.gradtrain.safetensors", dir, a, (long long)step);
  snprintf(pb, sizeof pb, "%s/%s/checkpoints/step_%09lld.gradtrain.safetensors", dir, b, (long long)step);
  evo_st_reader *ra, *rb;
  cr_assert_eq(evo_st_open(pa, &ra), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_st_open(pb, &rb), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_st_count(ra), evo_st_count(rb));
  cr_assert_geq(evo_st_find(ra, "optim.mu"), 0);
  for (int i = 0; i < evo_st_count(ra); i++) {
    const evo_st_info *ia = evo_st_info_at(ra, i);
    int j = evo_st_find(rb, ia->name);
    cr_assert_geq(j, 0);
    size_t bytes = ia->end - ia->begin;
    char *x = malloc(bytes), *y = malloc(bytes);
    cr_assert_eq(evo_st_read(ra, i, x, bytes), EVO_STATUS_OK);
    cr_assert_eq(evo_st_read(rb, j, y, bytes), EVO_STATUS_OK, "%s", evo_last_error());
    if (!strcmp(ia->name, "gradtrain.state")) { /* wall_s, and the metrics bytes that its printed digits take */
      ((double *)x)[7] = ((double *)y)[7] = 0;
      ((double *)x)[3] = ((double *)y)[3] = 0;
    }
    cr_assert_eq(memcmp(x, y, bytes), 0, "%s differs", ia->name);
    free(x), free(y);
  }
  evo_st_close(ra), evo_st_close(rb);
}

static void run_to_end(evo_config *c, const char *out, bool resume, evo_gradtrain_stop want) {
  evo_gradtrain *t = trainer(c, out, resume);
  cr_assert_eq(evo_gradtrain_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_gradtrain_summary s;
  evo_gradtrain_summary_get(t, &s);
  cr_assert_eq(s.stopped_because, want, "%s stopped because %s", out, evo_gradtrain_stop_name(s.stopped_because));
  evo_gradtrain_free(t);
  evo_config_free(c);
}

/* An uninterrupted run against one stopped mid-epoch and one stopped at an epoch end, both resumed (device: a
   "device=..." override). */
static void resume_matches(const char *device) {
  /* 15 steps per epoch, 2 epochs: log lines at 5, 10, 15 (+ epoch end), 20, 25, 30 */
  run_to_end(config("trainer.log_interval=5", device, NULL), "full", false, EVO_GRADTRAIN_EPOCHS);
  /* stopped after step 7 (mid-epoch, mid-log-interval), resumed to the end */
  run_to_end(config("trainer.max_steps=7", device, NULL), "mid", false, EVO_GRADTRAIN_MAX_STEPS);
  run_to_end(config("trainer.max_steps=0", device, NULL), "mid", true, EVO_GRADTRAIN_EPOCHS);
  /* one epoch, then extended to two */
  run_to_end(config("trainer.epochs=1", device, NULL), "ep", false, EVO_GRADTRAIN_EPOCHS);
  run_to_end(config("trainer.epochs=2", device, NULL), "ep", true, EVO_GRADTRAIN_EPOCHS);
  const char *runs[] = {"mid", "ep"};
  char *want = metrics("full");
  cr_assert(strstr(want, "\"test_acc\":") && strstr(want, "\"step\":30,"), "%s", want);
  for (int i = 0; i < 2; i++) {
    char *got = metrics(runs[i]);
    cr_assert_str_eq(got, want, "%s: metrics differ", runs[i]);
    free(got);
    same_file("full", runs[i], "best.safetensors");
    same_final_state("full", runs[i], 30);
  }
  free(want);
}

Test(gradtrain, resume_is_bit_identical_mid_epoch_and_at_an_epoch_end) {
  resume_matches("device=cpu");
  /* nothing left to do: a resume of a finished run changes nothing */
  run_to_end(config(NULL), "full", true, EVO_GRADTRAIN_EPOCHS);
  /* a fresh run into a used folder is refused */
  evo_config *c = config(NULL);
  evo_gradtrain *t = trainer(c, "full", false);
  cr_assert_eq(evo_gradtrain_run(t), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "already holds a run"), "%s", evo_last_error());
  evo_gradtrain_free(t);
  evo_config_free(c);
}

/* On a GPU the parameters and the optimizer's moments live there between checkpoints: a checkpoint brings them to
   the host and a resume takes them back, bit for bit. */
Test(gradtrain, device_cuda_resume_is_bit_identical) {
  if (evo_cuda_device_count() == 0) cr_skip_test("no CUDA device here");
  resume_matches("device=cuda");
}

Test(gradtrain, interrupt_writes_a_checkpoint_that_resumes) {
  volatile sig_atomic_t flag = 1;
  evo_config *c = config(NULL);
  evo_gradtrain_params p = evo_gradtrain_default_params();
  char out[600];
  snprintf(out, sizeof out, "%s/int", dir);
  p.out_dir = out, p.interrupt = &flag;
  evo_gradtrain *t;
  cr_assert_eq(evo_gradtrain_new(c, &p, &t), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_gradtrain_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_gradtrain_summary s;
  evo_gradtrain_summary_get(t, &s);
  cr_assert_eq(s.stopped_because, EVO_GRADTRAIN_INTERRUPTED);
  cr_assert_eq(s.steps, 0);
  evo_gradtrain_free(t);
  evo_config_free(c);
  run_to_end(config(NULL), "int", true, EVO_GRADTRAIN_EPOCHS);
}

/* ---------------------------------------------------------------- bad input */

static evo_config *parse(const char *yaml) {
  char text[1024];
  snprintf(text, sizeof text, yaml, dir);
  evo_config *c;
  cr_assert_eq(evo_config_parse(text, "bad.yaml", &c), EVO_STATUS_OK, "%s", evo_last_error());
  return c;
}

#define BASE "task: {name: mnist, data_dir: %s}\npolicy: {name: mlp}\n"

Test(gradtrain, bad_configs_name_the_place_and_the_fix) {
  expect_new_fails(parse(BASE "trainer:\n  epoch: 3\n"), EVO_STATUS_INVALID_ARGUMENT,
                   (const char *[]){"bad.yaml:4:3: unknown key 'epoch' in trainer (did you mean 'epochs'?)", NULL});
  expect_new_fails(parse(BASE "optim: {name: adamm}\n"), EVO_STATUS_INVALID_ARGUMENT,
                   (const char *[]){"bad.yaml:3:15: optim.name must be one of", "did you mean 'adam'?", NULL});
  expect_new_fails(parse(BASE "optim: {name: adam, beta1: 1}\n"), EVO_STATUS_INVALID_ARGUMENT,
                   (const char *[]){"bad.yaml:3:8: optim adam: beta1 must be in [0, 1)", NULL});
  expect_new_fails(parse(BASE "optim: {name: sgd, momentum: 0.9}\n"), EVO_STATUS_INVALID_ARGUMENT,
                   (const char *[]){"bad.yaml:3:20: unknown key 'momentum' in optim", NULL});
  expect_new_fails(parse(BASE "data: {batch_size: 0}\n"), EVO_STATUS_INVALID_ARGUMENT,
                   (const char *[]){"bad.yaml:3:20: data.batch_size must be", NULL});
  expect_new_fails(parse(BASE "data: {batch_size: 241}\n"), EVO_STATUS_INVALID_ARGUMENT,
                   (const char *[]){"bad.yaml:3:20: data.batch_size 241 exceeds the 240 training images", NULL});
  expect_new_fails(parse(BASE "freeze: [dense1, dense9]\n"), EVO_STATUS_INVALID_ARGUMENT,
                   (const char *[]){"bad.yaml:3:18: freeze: policy mlp has no layer or entry 'dense9' (its layers: "
                                    "dense1, dense2, dense3)", NULL});
  expect_new_fails(parse(BASE "freeze: [dense1, dense2, dense3]\n"), EVO_STATUS_INVALID_ARGUMENT,
                   (const char *[]){"bad.yaml:3:9: freeze leaves nothing to train", NULL});
  expect_new_fails(parse(BASE "reinit: dense3\n"), EVO_STATUS_INVALID_ARGUMENT,
                   (const char *[]){"bad.yaml:3:9: reinit needs init_from", NULL});
  expect_new_fails(parse("task: {name: mnist, data_dir: %s}\npolicy: {name: lstm}\n"), EVO_STATUS_INVALID_ARGUMENT,
                   (const char *[]){"bad.yaml:2:16: policy.name must be one of 'mlp', 'cnn', got 'lstm'", NULL});
  expect_new_fails(parse(BASE "algo: {name: pgpe}\n"), EVO_STATUS_INVALID_ARGUMENT,
                   (const char *[]){"bad.yaml:3:1: unknown key 'algo'", NULL});
  if (evo_cuda_device_count() == 0) /* with a GPU, device: cuda trains there (device_cuda_trains_as_the_cpu) */
    expect_new_fails(parse(BASE "device: cuda\n"), EVO_STATUS_UNSUPPORTED,
                     (const char *[]){"bad.yaml:3:9: device cuda", "use device: cpu", NULL});
  expect_new_fails(parse(BASE "device: gpu\n"), EVO_STATUS_INVALID_ARGUMENT,
                   (const char *[]){"bad.yaml:3:9: device", "gpu", NULL});
  /* a CNN whose output does not fit the classes: the policy's message, placed at the section */
  expect_new_fails(parse("task: {name: mnist, data_dir: %s}\n"
                         "policy: {name: cnn, layers: [{type: dense, features: 7}]}\n"),
                   EVO_STATUS_INVALID_ARGUMENT,
                   (const char *[]){"bad.yaml:2:9: policy cnn: the net outputs [7]", NULL});
}

Test(gradtrain, missing_data_names_the_path_and_how_to_get_it) {
  expect_new_fails(parse("task: {name: mnist, data_dir: %s/nowhere}\n"), EVO_STATUS_NOT_FOUND,
                   (const char *[]){"bad.yaml:1:31: ", "/nowhere/train-images-idx3-ubyte[.gz] not found",
                                    "dataset-fashion-mnist", "task.data_dir", NULL});
  char path[600];
  snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
  cr_assert_eq(unlink(path), 0);
  expect_new_fails(parse(BASE), EVO_STATUS_NOT_FOUND, (const char *[]){"t10k-labels-idx1-ubyte", NULL});
  expect_new_fails(parse("policy: {name: mlp}\n"), EVO_STATUS_NOT_FOUND,
                   (const char *[]){"missing required key task", NULL});
}
