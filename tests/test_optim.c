/* Optimizers: trajectories against golden values from scripts/golden_optim.py (NumPy transcription of Optax and
   of ClipUp), ClipUp's speed bound, Adam's step counter, schedules at chosen steps, global-norm clipping,
   parameter validation and the checkpoint state accessors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evoc/optim.h"
#include "evoc/rng.h"

#define N 5
#define MAX_STEPS 16

static float grad_at(const float *p, int t, int zero_step, int i) {
  if (t == zero_step) return 0.0f;
  return (float)((0.5 + 0.3 * i) * (double)p[i] + sin(0.7 * t + 1.3 * i));
}

typedef struct {
  char name[64];
  evo_optim_params p;
  int zero_step;
  int n_steps;
  double lr[MAX_STEPS];
  double want[MAX_STEPS][N];
} golden_case;

static int load_golden(golden_case *cases, int cap) {
  FILE *f = fopen(EVOC_TEST_DATA "/golden_optim.txt", "r");
  cr_assert(f, "cannot open %s/golden_optim.txt", EVOC_TEST_DATA);
  char line[1024];
  int nc = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "case ", 5) == 0) {
      cr_assert(nc < cap);
      golden_case *c = &cases[nc++];
      memset(c, 0, sizeof *c);
      int kind, sched;
      long long decay_steps, warmup;
      int got = sscanf(line + 5, "%63s %d %lf %lf %lf %lf %lf %lf %lf %lf %d %lf %lld %lf %lld %d", c->name, &kind,
                       &c->p.lr, &c->p.momentum, &c->p.beta1, &c->p.beta2, &c->p.eps, &c->p.weight_decay,
                       &c->p.max_speed, &c->p.clip_norm, &sched, &c->p.decay_rate, &decay_steps, &c->p.alpha,
                       &warmup, &c->zero_step);
      cr_assert_eq(got, 16, "bad case line: %s", line);
      c->p.kind = (evo_optim_kind)kind;
      c->p.schedule = (evo_schedule_kind)sched;
      c->p.decay_steps = decay_steps;
      c->p.warmup_steps = warmup;
    } else if (strncmp(line, "step ", 5) == 0) {
      golden_case *c = &cases[nc - 1];
      char name[64];
      int t;
      double *w = c->want[c->n_steps];
      int got = sscanf(line + 5, "%63s %d %lf %lf %lf %lf %lf %lf", name, &t, &c->lr[c->n_steps], &w[0], &w[1],
                       &w[2], &w[3], &w[4]);
      cr_assert_eq(got, 8, "bad step line: %s", line);
      cr_assert_str_eq(name, c->name);
      cr_assert_eq(t, c->n_steps);
      c->n_steps++;
    }
  }
  fclose(f);
  return nc;
}

Test(optim, golden_trajectories) {
  golden_case cases[32];
  int nc = load_golden(cases, 32);
  cr_assert_geq(nc, 12, "expected every optimizer and schedule in the golden file, got %d cases", nc);
  int kinds_seen = 0;
  for (int k = 0; k < nc; k++) {
    golden_case *c = &cases[k];
    kinds_seen |= 1 << c->p.kind;
    evo_optim *o;
    cr_assert_eq(evo_optim_new(&c->p, N, &o), EVO_STATUS_OK, "%s: %s", c->name, evo_last_error());
    float p[N] = {0.5f, -1.25f, 2.0f, 0.0f, 3.5f}, g[N];
    for (int t = 0; t < c->n_steps; t++) {
      cr_assert_eq(evo_optim_steps(o), t);
      double lr = evo_optim_lr(o);
      cr_assert(fabs(lr - c->lr[t]) <= 1e-14 * (1 + fabs(c->lr[t])), "%s step %d: lr %.17g want %.17g", c->name, t,
                lr, c->lr[t]);
      for (int i = 0; i < N; i++) g[i] = grad_at(p, t, c->zero_step, i);
      cr_assert_eq(evo_optim_step(o, p, g), EVO_STATUS_OK);
      for (int i = 0; i < N; i++)
        cr_assert(fabs(p[i] - c->want[t][i]) <= 2e-6 * (1 + fabs(c->want[t][i])),
                  "%s step %d param %d: got %.9g want %.9g", c->name, t, i, p[i], c->want[t][i]);
    }
    evo_optim_free(o);
  }
  cr_assert_eq(kinds_seen, 0x3f, "every kind must have a golden case");
}

/* Gradients of wildly varying size and direction: ||v|| and the parameter change never exceed max_speed. */
Test(optim, clipup_never_exceeds_max_speed) {
  const int64_t n = 100;
  evo_optim_params prm = evo_optim_default_params(EVO_OPTIM_CLIPUP);
  prm.lr = 0.2; /* a large step so the bound is active most of the time */
  evo_optim *o;
  cr_assert_eq(evo_optim_new(&prm, n, &o), EVO_STATUS_OK);
  const char *name = NULL;
  double *vel = NULL;
  int64_t vn = 0;
  for (int i = 0; i < evo_optim_state_count(o); i++) {
    const char *nm;
    double *d;
    int64_t len;
    evo_optim_state_at(o, i, &nm, &d, &len);
    if (strcmp(nm, "optim.velocity") == 0) name = nm, vel = d, vn = len;
  }
  cr_assert(name && vn == n, "clipup exposes its velocity");
  float *p = calloc(n, sizeof(float)), *g = malloc(n * sizeof(float));
  evo_key key = evo_key_from_seed(7);
  int clipped = 0;
  for (int t = 0; t < 300; t++) {
    evo_rng_fill_normal(evo_key_fold_in(key, (uint32_t)t), g, n);
    float scale = powf(10.0f, (float)(t % 13) - 6.0f);
    for (int64_t i = 0; i < n; i++) g[i] = (t % 3 == 2 ? 1.0f : g[i]) * scale; /* also a repeated direction */
    double before[100];
    for (int64_t i = 0; i < n; i++) before[i] = p[i];
    cr_assert_eq(evo_optim_step(o, p, g), EVO_STATUS_OK);
    double vs = 0, ds = 0;
    for (int64_t i = 0; i < n; i++) vs += vel[i] * vel[i], ds += (p[i] - before[i]) * (p[i] - before[i]);
    cr_assert(sqrt(vs) <= prm.max_speed * (1 + 1e-12), "step %d: ||v|| = %.17g > %g", t, sqrt(vs), prm.max_speed);
    cr_assert(sqrt(ds) <= prm.max_speed * (1 + 1e-5), "step %d: ||dparams|| = %.9g", t, sqrt(ds));
    clipped += sqrt(vs) > prm.max_speed * (1 - 1e-9);
  }
  cr_assert_gt(clipped, 100, "the speed bound was active in only %d of 300 steps", clipped);
  free(p);
  free(g);
  evo_optim_free(o);
}

/* A constant gradient: with Adam's bias correction at the true step t, m_hat = g and v_hat = g^2 at every step, so
   each update is lr g / (|g| + eps). A counter that does not advance (EvoJAX PGPE's t // decay_steps) gives
   1.9 / sqrt(1.999) = 1.34 lr at the second step. */
Test(optim, adam_counter_advances_every_step) {
  evo_optim_params prm = evo_optim_default_params(EVO_OPTIM_ADAM);
  prm.lr = 0.5;
  evo_optim *o;
  cr_assert_eq(evo_optim_new(&prm, 2, &o), EVO_STATUS_OK);
  const float g[2] = {0.25f, -3.0f};
  for (int t = 0; t < 1500; t++) {
    cr_assert_eq(evo_optim_steps(o), t);
    float p[2] = {0, 0}; /* Adam's update does not read the parameters */
    cr_assert_eq(evo_optim_step(o, p, g), EVO_STATUS_OK);
    cr_assert(fabs(p[0] + 0.5) < 1e-6 && fabs(p[1] - 0.5) < 1e-6, "step %d: update %.9g %.9g, want -0.5 0.5", t, p[0],
              p[1]);
  }
  cr_assert_eq(evo_optim_steps(o), 1500);
  /* The counter is checkpoint state. */
  const char *nm;
  double *d;
  int64_t len;
  evo_optim_state_at(o, evo_optim_state_count(o) - 1, &nm, &d, &len);
  cr_assert_str_eq(nm, "optim.count");
  cr_assert_eq(len, 1);
  cr_assert_eq(d[0], 1500.0);
  evo_optim_free(o);
}

/* adam_count_every = k: the bias correction uses floor(t / k) + 1, as jax.example_libraries.optimizers.adam does
   when EvoJAX's PGPE passes t // center_lr_decay_steps as its step. Against that formula, run independently in
   double: with a constant gradient the update is lr (1 - b1^(t+1)) / (1 - b1^(i+1)) /
   sqrt((1 - b2^(t+1)) / (1 - b2^(i+1))) (m_t = (1 - b1^(t+1)) g, v_t = (1 - b2^(t+1)) g^2), i = floor(t / k):
   ~2.06 lr at t = 9, ~0.398 lr at t = 999, back to 1 at t = 1000 when i becomes 1 (then 1.0 again only slowly). */
Test(optim, adam_count_every_matches_evojax_step_index) {
  evo_optim_params prm = evo_optim_default_params(EVO_OPTIM_ADAM);
  prm.lr = 0.5;
  prm.adam_count_every = 1000;
  evo_optim *o;
  cr_assert_eq(evo_optim_new(&prm, 1, &o), EVO_STATUS_OK, "%s", evo_last_error());
  const float g = 0.25f;
  double m = 0, v = 0;
  for (int t = 0; t < 1500; t++) {
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * (double)g * g;
    const int i = t / 1000;
    double want = 0.5 * (m / (1 - pow(0.9, i + 1))) / (sqrt(v / (1 - pow(0.999, i + 1))) + 1e-8);
    float p = 0;
    cr_assert_eq(evo_optim_step(o, &p, &g), EVO_STATUS_OK);
    cr_assert(fabs(-p - want) <= 1e-6 * want, "step %d: update %.9g, want %.9g", t, -p, want);
    if (t == 9) cr_assert(fabs(want / 0.5 - 2.06) < 0.01, "t = 9: %.4f lr", want / 0.5);
    if (t == 999) cr_assert(fabs(want / 0.5 - 0.398) < 0.002, "t = 999: %.4f lr", want / 0.5);
  }
  evo_optim_free(o);
  prm.adam_count_every = -1;
  cr_assert_eq(evo_optim_new(&prm, 1, &o), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "adam_count_every"), "%s", evo_last_error());
}

static double lr_at(evo_optim_params prm, int64_t step) {
  evo_optim *o;
  cr_assert_eq(evo_optim_new(&prm, 1, &o), EVO_STATUS_OK, "%s", evo_last_error());
  float p = 0, g = 0;
  for (int64_t t = 0; t < step; t++) evo_optim_step(o, &p, &g);
  double lr = evo_optim_lr(o);
  evo_optim_free(o);
  return lr;
}

#define CHECK_LR(prm, step, want)                                                                                    \
  do {                                                                                                               \
    double got_ = lr_at(prm, step);                                                                                  \
    cr_assert(fabs(got_ - (want)) <= 1e-12, "step %d: lr %.17g want %.17g", (int)(step), got_, (double)(want));      \
  } while (0)

Test(optim, schedules_at_chosen_steps) {
  evo_optim_params p = evo_optim_default_params(EVO_OPTIM_SGD);
  p.lr = 0.1;
  CHECK_LR(p, 0, 0.1);
  CHECK_LR(p, 37, 0.1);
  p.schedule = EVO_SCHEDULE_EXPONENTIAL, p.decay_rate = 0.5, p.decay_steps = 10;
  CHECK_LR(p, 0, 0.1);
  CHECK_LR(p, 10, 0.05);
  CHECK_LR(p, 20, 0.025);
  CHECK_LR(p, 25, 0.1 * pow(0.5, 2.5));
  p = evo_optim_default_params(EVO_OPTIM_SGD);
  p.lr = 1.0, p.schedule = EVO_SCHEDULE_COSINE, p.decay_steps = 100, p.alpha = 0.1;
  CHECK_LR(p, 0, 1.0);
  CHECK_LR(p, 50, 0.55);
  CHECK_LR(p, 100, 0.1);
  CHECK_LR(p, 250, 0.1);
  p.warmup_steps = 10;
  CHECK_LR(p, 0, 0.0);
  CHECK_LR(p, 5, 0.5);
  CHECK_LR(p, 10, 1.0);
  CHECK_LR(p, 60, 0.55);
  CHECK_LR(p, 110, 0.1);
  p.schedule = EVO_SCHEDULE_CONSTANT;
  CHECK_LR(p, 3, 0.3);
  CHECK_LR(p, 1000, 1.0);
}

Test(optim, global_norm_clipping) {
  evo_optim_params prm = evo_optim_default_params(EVO_OPTIM_SGD);
  prm.lr = 1.0, prm.clip_norm = 1.0;
  evo_optim *o;
  cr_assert_eq(evo_optim_new(&prm, 2, &o), EVO_STATUS_OK);
  float p[2] = {0, 0};
  const float big[2] = {3, 4}, small[2] = {0.3f, 0.4f};
  evo_optim_step(o, p, big);
  cr_assert(fabsf(p[0] + 0.6f) < 1e-7f && fabsf(p[1] + 0.8f) < 1e-7f, "clipped to norm 1: %g %g", p[0], p[1]);
  p[0] = p[1] = 0;
  evo_optim_step(o, p, small);
  cr_assert(p[0] == -0.3f && p[1] == -0.4f, "below the bound the gradient is unchanged: %g %g", p[0], p[1]);
  evo_optim_free(o);
}

static void expect_rejected(evo_optim_params p, const char *word) {
  evo_optim *o = NULL;
  evo_status st = evo_optim_new(&p, 3, &o);
  cr_assert_eq(st, EVO_STATUS_INVALID_ARGUMENT, "expected a rejection naming '%s'", word);
  cr_assert_null(o);
  cr_assert(strstr(evo_last_error(), word), "message '%s' does not name '%s'", evo_last_error(), word);
}

Test(optim, invalid_params_rejected_with_names) {
  evo_optim_params p = evo_optim_default_params(EVO_OPTIM_MOMENTUM);
  p.momentum = 1.0;
  expect_rejected(p, "momentum");
  p = evo_optim_default_params(EVO_OPTIM_SGD), p.lr = -1;
  expect_rejected(p, "lr");
  p = evo_optim_default_params(EVO_OPTIM_ADAM), p.beta2 = 1.5;
  expect_rejected(p, "beta2");
  p = evo_optim_default_params(EVO_OPTIM_ADAM), p.weight_decay = 0.1;
  expect_rejected(p, "weight_decay");
  p = evo_optim_default_params(EVO_OPTIM_CLIPUP), p.max_speed = 0;
  expect_rejected(p, "max_speed");
  p = evo_optim_default_params(EVO_OPTIM_SGD), p.schedule = EVO_SCHEDULE_COSINE, p.decay_steps = 0;
  expect_rejected(p, "decay_steps");
  p = evo_optim_default_params(EVO_OPTIM_SGD), p.warmup_steps = -2;
  expect_rejected(p, "warmup_steps");
  p = evo_optim_default_params(EVO_OPTIM_SGD), p.clip_norm = -1;
  expect_rejected(p, "clip_norm");
  p = evo_optim_default_params(EVO_OPTIM_SGD);
  evo_optim *o = NULL;
  cr_assert_eq(evo_optim_new(&p, 0, &o), EVO_STATUS_INVALID_ARGUMENT);
}

Test(optim, kind_names_round_trip) {
  const char *names[] = {"sgd", "momentum", "nesterov", "adam", "adamw", "clipup"};
  for (int k = 0; k < 6; k++) {
    cr_assert_str_eq(evo_optim_kind_name((evo_optim_kind)k), names[k]);
    cr_assert_eq(evo_optim_kind_from_name(names[k]), k);
  }
  cr_assert_eq(evo_optim_kind_from_name("adagrad"), -1);
  cr_assert_eq(evo_optim_kind_from_name(NULL), -1);
}

/* Copying the state arrays into a fresh optimizer and continuing gives the uninterrupted trajectory bit for bit. */
Test(optim, state_round_trip_is_bit_identical) {
  for (int k = 0; k < 6; k++) {
    evo_optim_params prm = evo_optim_default_params((evo_optim_kind)k);
    prm.schedule = EVO_SCHEDULE_COSINE, prm.decay_steps = 20, prm.warmup_steps = 3;
    evo_optim *a, *b;
    cr_assert_eq(evo_optim_new(&prm, N, &a), EVO_STATUS_OK);
    cr_assert_eq(evo_optim_new(&prm, N, &b), EVO_STATUS_OK);
    float pa[N] = {0.5f, -1.25f, 2.0f, 0.0f, 3.5f}, pb[N], g[N];
    for (int t = 0; t < 7; t++) {
      for (int i = 0; i < N; i++) g[i] = grad_at(pa, t, -1, i);
      evo_optim_step(a, pa, g);
    }
    cr_assert_eq(evo_optim_state_count(a), evo_optim_state_count(b));
    for (int s = 0; s < evo_optim_state_count(a); s++) {
      const char *na, *nb;
      double *da, *db;
      int64_t la, lb;
      evo_optim_state_at(a, s, &na, &da, &la);
      evo_optim_state_at(b, s, &nb, &db, &lb);
      cr_assert_str_eq(na, nb);
      cr_assert_eq(la, lb);
      memcpy(db, da, sizeof(double) * (size_t)la);
    }
    memcpy(pb, pa, sizeof pa);
    cr_assert_eq(evo_optim_steps(b), 7);
    for (int t = 7; t < 15; t++) {
      for (int i = 0; i < N; i++) g[i] = grad_at(pa, t, -1, i);
      evo_optim_step(a, pa, g);
      evo_optim_step(b, pb, g);
      cr_assert_eq(memcmp(pa, pb, sizeof pa), 0, "%s diverged at step %d", evo_optim_kind_name(k), t);
    }
    evo_optim_free(a);
    evo_optim_free(b);
  }
}
