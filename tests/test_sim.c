/* Simulation manager (runner/sim.c) against a step-by-step reference: each episode run by hand, one at a time, with
   a second instance of the task and the per-member policy graph (evo_policy_graph, one observation), summing
   rewards until done. The reference shares no code with the sim's lockstep loop, chunking, shared observations,
   masking or normaliser, so equality checks all of them. Returns are compared exactly: both sides do the same
   float operations in the same order (the population GEMM computes each row like the one-row GEMM). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/backend.h"
#include "evoc/config.h"
#include "evoc/jit.h"
#include "evoc/mnist.h"
#include "evoc/policy.h"
#include "evoc/sim.h"
#include "evoc/task.h"

typedef struct {
  evo_backend *be;
  evo_config *doc;
  evo_task *task, *ref; /* the sim's instance and the reference's */
  evo_policy *pol;
  int64_t d, obs_numel, act_numel, max_steps;
  /* reference: per-member graph on one observation */
  evo_plan *plan;
  evo_tensor *params, *obs, *act, *st[2][2];
  int n_state;
} fix;

/* Statistics the reference normalises with (the sim's, copied before an evaluate). */
typedef struct {
  int on;
  float mean[16384], sd[16384];
} ref_norm;

/* Raw observations of the valid steps (for the two-pass statistics). */
typedef struct {
  double *x;
  int64_t rows, cap, m;
} obs_log;

static evo_task *new_task(fix *f, const char *name, const char *yaml) {
  evo_task *t;
  evo_cfg *cfg = NULL;
  if (yaml) {
    evo_config *c;
    cr_assert_eq(evo_config_parse(yaml, "test", &c), EVO_STATUS_OK, "%s", evo_last_error());
    cfg = evo_config_root(c);
    evo_task_args a = {f->be, EVO_TASK_TRAIN, 0};
    evo_status st = evo_task_new_builtin(name, cfg, &a, &t);
    evo_config_free(c);
    cr_assert_eq(st, EVO_STATUS_OK, "%s", evo_last_error());
    return t;
  }
  evo_task_args a = {f->be, EVO_TASK_TRAIN, 0};
  cr_assert_eq(evo_task_new_builtin(name, NULL, &a, &t), EVO_STATUS_OK, "%s", evo_last_error());
  return t;
}

typedef enum { POL_MLP, POL_MLP_LINEAR, POL_LSTM, POL_CNN } pol_kind;

static void fix_init(fix *f, const char *task, const char *yaml, pol_kind pk) {
  memset(f, 0, sizeof *f);
  f->be = evo_backend_cpu_new(NULL);
  f->task = new_task(f, task, yaml);
  f->ref = new_task(f, task, yaml);
  const evo_task_spec *ts = evo_task_get_spec(f->task);
  evo_policy_io io = {.obs_ndim = ts->obs_ndim, .act_ndim = ts->act_ndim,
                      .discrete = ts->action_kind == EVO_ACTION_DISCRETE};
  memcpy(io.obs_shape, ts->obs_shape, sizeof io.obs_shape);
  memcpy(io.act_shape, ts->act_shape, sizeof io.act_shape);
  evo_status st;
  if (pk == POL_LSTM) {
    evo_policy_lstm_params lp = evo_policy_lstm_default_params();
    lp.hidden = 8;
    st = evo_policy_lstm_new(&lp, &io, &f->pol);
  } else if (pk == POL_CNN) {
    evo_policy_cnn_params cp = evo_policy_cnn_default_params();
    st = evo_policy_cnn_new(&cp, &io, &f->pol);
  } else {
    evo_policy_mlp_params mp = evo_policy_mlp_default_params();
    mp.hidden[0] = 16, mp.hidden[1] = 16;
    if (pk == POL_MLP_LINEAR) mp.output = EVO_POLICY_OUT_LINEAR;
    st = evo_policy_mlp_new(&mp, &io, &f->pol);
  }
  cr_assert_eq(st, EVO_STATUS_OK, "%s", evo_last_error());
  f->d = evo_policy_num_params(f->pol);
  f->obs_numel = 1;
  for (int k = 0; k < ts->obs_ndim; k++) f->obs_numel *= ts->obs_shape[k];
  f->act_numel = 1;
  for (int k = 0; k < io.act_ndim; k++) f->act_numel *= io.act_shape[k];
  f->max_steps = ts->max_steps;
  evo_graph *g;
  cr_assert_eq(evo_policy_graph(f->pol, 1, &g), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_jit(g, f->be, &f->plan), EVO_STATUS_OK, "%s", evo_last_error());
  f->n_state = evo_policy_state_count(f->pol);
  evo_tensor **in[3] = {&f->params, &f->obs, NULL};
  for (int i = 0; i < 2; i++) {
    evo_node x = evo_graph_input(g, i);
    *in[i] = evo_tensor_new(f->be, evo_node_dtype(g, x), evo_node_ndim(g, x), evo_node_shape(g, x));
  }
  evo_node a = evo_graph_output(g, 0);
  f->act = evo_tensor_new(f->be, evo_node_dtype(g, a), evo_node_ndim(g, a), evo_node_shape(g, a));
  for (int k = 0; k < f->n_state; k++)
    for (int p = 0; p < 2; p++) {
      evo_node x = evo_graph_input(g, 2 + k);
      f->st[p][k] = evo_tensor_new(f->be, EVO_F32, evo_node_ndim(g, x), evo_node_shape(g, x));
    }
  evo_graph_free(g);
}

static void fix_fini(fix *f) {
  evo_plan_free(f->plan);
  evo_tensor_free(f->params), evo_tensor_free(f->obs), evo_tensor_free(f->act);
  for (int k = 0; k < 2; k++)
    for (int p = 0; p < 2; p++) evo_tensor_free(f->st[p][k]);
  evo_policy_free(f->pol);
  evo_task_free(f->task), evo_task_free(f->ref);
  evo_backend_free(f->be);
}

/* n members: the initialisation plus scale * N(0, 1) noise (member i's noise from seed + i). */
static float *population(const fix *f, int n, float scale, uint64_t seed) {
  float *p = malloc(sizeof(float) * (size_t)(n * f->d)), *z = malloc(sizeof(float) * (size_t)f->d);
  cr_assert(p && z);
  cr_assert_eq(evo_policy_init(f->pol, evo_key_from_seed(seed), p), EVO_STATUS_OK);
  for (int i = n - 1; i >= 0; i--) {
    evo_rng_fill_normal(evo_key_from_seed(seed + 1000 + (uint64_t)i), z, f->d);
    for (int64_t j = 0; j < f->d; j++) p[i * f->d + j] = p[j] + scale * z[j];
  }
  free(z);
  return p;
}

static void log_obs(obs_log *l, const float *o, int64_t m) {
  if (!l) return;
  if (l->rows == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 256;
    l->x = realloc(l->x, sizeof(double) * (size_t)(l->cap * m));
    cr_assert_not_null(l->x);
  }
  for (int64_t j = 0; j < m; j++) l->x[l->rows * m + j] = o[j];
  l->m = m;
  l->rows++;
}

/* One episode by hand. *bad is set when an alive step's output or reward is not finite (the sim's rule);
   *steps counts the valid steps. */
static double ref_episode(fix *f, const float *params, evo_key key, const ref_norm *nz, obs_log *log, int *bad,
                          int64_t *steps) {
  const int64_t m = f->obs_numel;
  float *obs = evo_tensor_data(f->obs), raw[16384];
  cr_assert(m <= 16384);
  memcpy(evo_tensor_data(f->params), params, sizeof(float) * (size_t)f->d);
  for (int k = 0; k < f->n_state; k++) memset(evo_tensor_data(f->st[0][k]), 0, evo_tensor_nbytes(f->st[0][k]));
  cr_assert_eq(evo_task_reset(f->ref, 1, &key, raw), EVO_STATUS_OK, "%s", evo_last_error());
  const evo_task_spec *ts = evo_task_get_spec(f->ref);
  double ret = 0;
  int ping = 0;
  for (int64_t t = 0; t < f->max_steps; t++) {
    log_obs(log, raw, m);
    for (int64_t j = 0; j < m; j++) {
      float v = raw[j];
      if (nz && nz->on) {
        v = (v - nz->mean[j]) / nz->sd[j];
        v = v < -5.0f ? -5.0f : v > 5.0f ? 5.0f : v;
      }
      obs[j] = v;
    }
    evo_tensor *in[4] = {f->params, f->obs, f->st[ping][0], f->st[ping][1]};
    evo_tensor *out[3] = {f->act, f->st[1 - ping][0], f->st[1 - ping][1]};
    cr_assert_eq(evo_plan_run(f->plan, in, out), EVO_STATUS_OK, "%s", evo_last_error());
    ping = f->n_state ? 1 - ping : 0;
    int32_t iact;
    const void *act = evo_tensor_data(f->act);
    if (evo_tensor_dtype(f->act) == EVO_F32) {
      float *a = evo_tensor_data(f->act);
      int finite = 1;
      for (int64_t j = 0; j < f->act_numel; j++) finite &= isfinite(a[j]) != 0;
      if (!finite) {
        *bad = 1;
        memset(a, 0, sizeof(float) * (size_t)f->act_numel);
      }
      if (ts->action_kind == EVO_ACTION_DISCRETE) {
        iact = 0;
        for (int64_t j = 1; j < f->act_numel; j++)
          if (a[j] > a[iact]) iact = (int32_t)j;
        act = &iact;
      }
    }
    float rew;
    uint8_t done;
    cr_assert_eq(evo_task_step(f->ref, act, raw, &rew, &done), EVO_STATUS_OK, "%s", evo_last_error());
    if (!isfinite(rew)) *bad = 1;
    ret += rew;
    ++*steps;
    if (done) break;
  }
  return ret;
}

/* The reference fitness of member `member` (global index) whose params are p. */
static float ref_fitness(fix *f, const float *p, int64_t member, int reps, int crn, evo_key key, const ref_norm *nz,
                         obs_log *log, int64_t *steps) {
  int bad = 0;
  for (int64_t j = 0; j < f->d; j++) bad |= !isfinite(p[j]);
  double sum = 0;
  for (int r = 0; r < reps; r++) {
    evo_key k = crn ? evo_key_fold_in(key, (uint32_t)r) : evo_key_fold_in(key, (uint32_t)(member * reps + r));
    sum += ref_episode(f, p, k, nz, log, &bad, steps);
  }
  return bad ? NAN : (float)(sum / reps);
}

static evo_sim *new_sim(fix *f, int reps, bool crn, bool norm, int chunk) {
  evo_sim_params sp = evo_sim_default_params();
  sp.n_repeats = reps;
  sp.common_random_numbers = crn;
  sp.normalize_obs = norm;
  sp.chunk_members = chunk;
  evo_sim *s;
  cr_assert_eq(evo_sim_new(f->task, f->pol, f->be, &sp, &s), EVO_STATUS_OK, "%s", evo_last_error());
  return s;
}

static void snapshot_norm(evo_sim *s, ref_norm *nz) {
  double *count, *mean, *m2;
  evo_sim_normalizer(s, &count, &mean, &m2);
  nz->on = 1;
  for (int64_t j = 0; j < evo_sim_obs_size(s); j++) {
    double sd = *count > 1 ? sqrt(m2[j] / *count) : 1.0;
    nz->mean[j] = *count > 1 ? (float)mean[j] : 0.0f;
    nz->sd[j] = sd > 1e-8 ? (float)sd : 1.0f;
  }
}

/* Compares the sim's normaliser with a two-pass mean / M2 over the logged observations. */
static void check_norm(evo_sim *s, const obs_log *l) {
  double *count, *mean, *m2;
  evo_sim_normalizer(s, &count, &mean, &m2);
  cr_assert_eq((int64_t)*count, l->rows, "count %g, %lld valid steps", *count, (long long)l->rows);
  for (int64_t j = 0; j < l->m; j++) {
    double mu = 0, ss = 0;
    for (int64_t e = 0; e < l->rows; e++) mu += l->x[e * l->m + j];
    mu /= (double)l->rows;
    for (int64_t e = 0; e < l->rows; e++) ss += (l->x[e * l->m + j] - mu) * (l->x[e * l->m + j] - mu);
    cr_assert(fabs(mean[j] - mu) <= 1e-9 * (1 + fabs(mu)), "mean[%lld] %.17g vs two-pass %.17g", (long long)j,
              mean[j], mu);
    cr_assert(fabs(m2[j] - ss) <= 1e-9 * (1 + ss), "m2[%lld] %.17g vs two-pass %.17g", (long long)j, m2[j], ss);
  }
}

static void check_fitness(const float *got, const float *want, int n) {
  for (int i = 0; i < n; i++) {
    if (isnan(want[i])) {
      cr_assert(isnan(got[i]), "member %d: fitness %g, want NaN", i, got[i]);
      continue;
    }
    cr_assert(got[i] == want[i], "member %d: fitness %.9g, reference %.9g", i, got[i], want[i]);
  }
}

/* Evaluates n members with the sim and the reference and compares; returns the reference's valid steps. */
static int64_t sim_vs_ref(fix *f, evo_sim *s, const float *pop, int n, int64_t first, int reps, int crn,
                          evo_key key) {
  float got[64], want[64];
  cr_assert(n <= 64);
  evo_sim_stats s0, s1;
  evo_sim_stats_get(s, &s0);
  cr_assert_eq(evo_sim_evaluate(s, pop, n, first, key, got), EVO_STATUS_OK, "%s", evo_last_error());
  evo_sim_stats_get(s, &s1);
  int64_t steps = 0;
  for (int i = 0; i < n; i++) want[i] = ref_fitness(f, pop + i * f->d, first + i, reps, crn, key, NULL, NULL, &steps);
  check_fitness(got, want, n);
  cr_assert_eq(s1.env_steps - s0.env_steps, steps, "sim stepped %lld valid steps, reference %lld",
               (long long)(s1.env_steps - s0.env_steps), (long long)steps);
  cr_assert_eq(s1.evaluations - s0.evaluations, (int64_t)n * reps);
  return steps;
}

Test(sim, swingup_easy_early_exit_and_masking) {
  fix f;
  fix_init(&f, "cartpole_swingup", "variant: easy\nmax_steps: 300\n", POL_MLP);
  float *pop = population(&f, 5, 0.8f, 1);
  evo_sim *s = new_sim(&f, 3, true, false, 0);
  int64_t steps = sim_vs_ref(&f, s, pop, 5, 0, 3, 1, evo_key_from_seed(11));
  /* Some episodes leave the track early (masking and early exit matter), not all of them at once. */
  cr_assert(steps < 5 * 3 * 300 && steps > 5 * 3, "valid steps %lld", (long long)steps);
  evo_sim_free(s);
  free(pop);
  fix_fini(&f);
}

Test(sim, swingup_hard_without_crn_uses_first_member) {
  fix f;
  fix_init(&f, "cartpole_swingup", "variant: hard\nmax_steps: 200\n", POL_MLP);
  float *pop = population(&f, 4, 0.5f, 2);
  evo_sim *s = new_sim(&f, 2, false, false, 0);
  sim_vs_ref(&f, s, pop, 4, 7, 2, 0, evo_key_from_seed(12));
  evo_sim_free(s);
  free(pop);
  fix_fini(&f);
}

Test(sim, balance_argmax_policy_with_repeats) {
  fix f;
  fix_init(&f, "cartpole_balance", "max_steps: 200\n", POL_MLP); /* discrete: argmax head, i32 actions */
  cr_assert_eq(evo_policy_action_dtype(f.pol), EVO_I32);
  float *pop = population(&f, 6, 1.0f, 3);
  evo_sim *s = new_sim(&f, 4, true, false, 0);
  int64_t steps = sim_vs_ref(&f, s, pop, 6, 0, 4, 1, evo_key_from_seed(13));
  cr_assert(steps < 6 * 4 * 200, "every balance episode lasted 200 steps; masking untested");
  evo_sim_free(s);
  free(pop);
  fix_fini(&f);
}

Test(sim, balance_scores_head_argmax_in_sim) {
  fix f;
  fix_init(&f, "cartpole_balance", "max_steps: 150\n", POL_MLP_LINEAR); /* f32 scores [2]; the sim takes argmax */
  cr_assert_eq(evo_policy_action_dtype(f.pol), EVO_F32);
  float *pop = population(&f, 3, 1.0f, 4);
  evo_sim *s = new_sim(&f, 3, false, false, 0);
  sim_vs_ref(&f, s, pop, 3, 0, 3, 0, evo_key_from_seed(14));
  evo_sim_free(s);
  free(pop);
  fix_fini(&f);
}

Test(sim, crn_identical_members_identical_fitness) {
  fix f;
  fix_init(&f, "cartpole_swingup", "variant: hard\nmax_steps: 200\n", POL_MLP);
  float *pop = population(&f, 3, 0.5f, 5);
  memcpy(pop + 2 * f.d, pop, sizeof(float) * (size_t)f.d); /* member 2 = member 0 */
  float fit[3];
  evo_sim *crn = new_sim(&f, 2, true, false, 0), *ind = new_sim(&f, 2, false, false, 0);
  cr_assert_eq(evo_sim_evaluate(crn, pop, 3, 0, evo_key_from_seed(15), fit), EVO_STATUS_OK);
  cr_assert(fit[0] == fit[2], "CRN: %g vs %g", fit[0], fit[2]);
  cr_assert_eq(evo_sim_evaluate(ind, pop, 3, 0, evo_key_from_seed(15), fit), EVO_STATUS_OK);
  cr_assert(fit[0] != fit[2], "independent episodes gave equal fitness %g", fit[0]);
  evo_sim_free(crn), evo_sim_free(ind);
  free(pop);
  fix_fini(&f);
}

/* Two evaluates with normalisation: the first normalises with mean 0 / sd 1 (clip only), the second with the
   statistics of the first; after each, the normaliser equals a two-pass computation over exactly the valid steps
   so far, and the returns equal the reference that normalises the same way. Chunks of 3 members for 5 members:
   two chunks, the last padded with a copy whose steps must not count. */
Test(sim, normalizer_matches_two_pass_over_valid_steps) {
  fix f;
  fix_init(&f, "cartpole_swingup", "variant: hard\nmax_steps: 150\n", POL_MLP);
  float *pop = population(&f, 5, 0.7f, 6);
  evo_sim *s = new_sim(&f, 2, true, true, 3);
  obs_log log = {0};
  static ref_norm nz;
  for (int gen = 0; gen < 2; gen++) {
    evo_key key = evo_key_from_seed(16 + (uint64_t)gen);
    snapshot_norm(s, &nz);
    float got[5], want[5];
    cr_assert_eq(evo_sim_evaluate(s, pop, 5, 0, key, got), EVO_STATUS_OK, "%s", evo_last_error());
    int64_t steps = 0;
    for (int i = 0; i < 5; i++) want[i] = ref_fitness(&f, pop + i * f.d, i, 2, 1, key, &nz, &log, &steps);
    check_fitness(got, want, 5);
    cr_assert(steps < 5 * 2 * 150, "no episode ended early: the valid-step mask is untested");
    check_norm(s, &log);
  }
  evo_sim_info info;
  evo_sim_info_get(s, &info);
  cr_assert_eq(info.chunk_members, 3);
  double mean_ret;
  cr_assert_eq(evo_sim_test(s, pop, 3, evo_key_from_seed(30), &mean_ret), EVO_STATUS_OK);
  check_norm(s, &log); /* a test evaluation leaves the normaliser alone */
  free(log.x);
  evo_sim_free(s);
  free(pop);
  fix_fini(&f);
}

Test(sim, nan_and_inf_members_get_nan_fitness) {
  fix f;
  fix_init(&f, "cartpole_swingup", "max_steps: 100\n", POL_MLP_LINEAR);
  float *pop = population(&f, 4, 0.3f, 7);
  pop[1 * f.d + 5] = NAN;                                       /* a NaN parameter */
  for (int64_t j = 0; j < f.d; j++) pop[2 * f.d + j] = 3e38f;   /* finite, but the output overflows */
  evo_sim *s = new_sim(&f, 2, true, false, 0);
  float fit[4], clean[2];
  cr_assert_eq(evo_sim_evaluate(s, pop, 4, 0, evo_key_from_seed(17), fit), EVO_STATUS_OK);
  cr_assert(isnan(fit[1]) && isnan(fit[2]), "fitness %g %g", fit[1], fit[2]);
  cr_assert(isfinite(fit[0]) && isfinite(fit[3]));
  evo_sim_stats st;
  evo_sim_stats_get(s, &st);
  cr_assert_eq(st.nan_members, 2);
  /* The others are unaffected: the same as evaluating them alone. */
  memcpy(pop + f.d, pop + 3 * f.d, sizeof(float) * (size_t)f.d);
  cr_assert_eq(evo_sim_evaluate(s, pop, 2, 0, evo_key_from_seed(17), clean), EVO_STATUS_OK);
  cr_assert(clean[0] == fit[0] && clean[1] == fit[3], "%g %g vs %g %g", clean[0], clean[1], fit[0], fit[3]);
  double r;
  cr_assert_eq(evo_sim_test(s, pop + 2 * f.d, 2, evo_key_from_seed(1), &r), EVO_STATUS_OK);
  cr_assert(isnan(r));
  evo_sim_free(s);
  free(pop);
  fix_fini(&f);
}

Test(sim, nan_params_with_argmax_head) {
  fix f;
  fix_init(&f, "cartpole_balance", "max_steps: 50\n", POL_MLP); /* an argmax head hides NaN outputs */
  float *pop = population(&f, 2, 0.3f, 8);
  pop[f.d + 1] = NAN;
  evo_sim *s = new_sim(&f, 1, true, false, 0);
  float fit[2];
  cr_assert_eq(evo_sim_evaluate(s, pop, 2, 0, evo_key_from_seed(18), fit), EVO_STATUS_OK);
  cr_assert(isfinite(fit[0]) && isnan(fit[1]));
  evo_sim_free(s);
  free(pop);
  fix_fini(&f);
}

/* A slice [lo, hi) evaluated with first_member = lo gives the rows of the full evaluation; so does any chunking
   (including a padded last chunk). */
static void slice_case(bool crn) {
  fix f;
  fix_init(&f, "cartpole_swingup", "variant: hard\nmax_steps: 120\n", POL_MLP);
  float *pop = population(&f, 7, 0.5f, 9), full[7], part[7];
  evo_key key = evo_key_from_seed(19);
  evo_sim *s = new_sim(&f, 2, crn, false, 0);
  cr_assert_eq(evo_sim_evaluate(s, pop, 7, 0, key, full), EVO_STATUS_OK);
  cr_assert_eq(evo_sim_evaluate(s, pop + 2 * f.d, 3, 2, key, part), EVO_STATUS_OK);
  check_fitness(part, full + 2, 3);
  for (int chunk = 1; chunk <= 4; chunk++) {
    evo_sim *c = new_sim(&f, 2, crn, false, chunk);
    cr_assert_eq(evo_sim_evaluate(c, pop, 7, 0, key, part), EVO_STATUS_OK);
    check_fitness(part, full, 7);
    evo_sim_info info;
    evo_sim_info_get(c, &info);
    cr_assert_leq(info.chunk_members, chunk);
    evo_sim_free(c);
  }
  evo_sim_free(s);
  free(pop);
  fix_fini(&f);
}

Test(sim, slice_equals_rows_of_full_with_crn) { slice_case(true); }
Test(sim, slice_equals_rows_of_full_without_crn) { slice_case(false); }

Test(sim, lstm_state_carried_like_manual_loop) {
  fix f;
  fix_init(&f, "cartpole_swingup", "variant: hard\nmax_steps: 150\n", POL_LSTM);
  float *pop = population(&f, 3, 0.5f, 10);
  evo_sim *s = new_sim(&f, 2, false, false, 0);
  sim_vs_ref(&f, s, pop, 3, 0, 2, 0, evo_key_from_seed(20));
  evo_sim_free(s);
  free(pop);
  fix_fini(&f);
}

Test(sim, test_runs_distinct_episodes) {
  fix f;
  fix_init(&f, "cartpole_swingup", "variant: hard\nmax_steps: 120\n", POL_MLP);
  float *pop = population(&f, 1, 0.5f, 11);
  evo_key key = evo_key_from_seed(21);
  double want = 0, first = 0;
  int distinct = 0;
  for (int e = 0; e < 5; e++) {
    int bad = 0;
    int64_t steps = 0;
    double r = ref_episode(&f, pop, evo_key_fold_in(key, (uint32_t)e), NULL, NULL, &bad, &steps);
    if (e == 0) first = r;
    distinct |= r != first;
    want += r;
  }
  want /= 5;
  cr_assert(distinct, "all five test episodes had the same return");
  for (int chunk = 0; chunk <= 1; chunk++) { /* chunk 1 x 2 repeats: test plans of 2 episodes, the last padded */
    evo_sim *s = new_sim(&f, 2, true, false, chunk);
    double got;
    cr_assert_eq(evo_sim_test(s, pop, 5, key, &got), EVO_STATUS_OK, "%s", evo_last_error());
    cr_assert(got == want, "chunk %d: test mean %.17g, reference %.17g", chunk, got, want);
    evo_sim_stats st;
    evo_sim_stats_get(s, &st);
    cr_assert_eq(st.evaluations, 5);
    evo_sim_free(s);
  }
  free(pop);
  fix_fini(&f);
}

/* One-step task under CRN: the shared-observation plan; the functions task needs no data. */
Test(sim, one_step_task_uses_shared_observations) {
  fix f;
  fix_init(&f, "functions", "function: rastrigin\ndim: 3\n", POL_MLP_LINEAR);
  float *pop = population(&f, 5, 1.0f, 12);
  evo_sim *s = new_sim(&f, 2, true, false, 0);
  sim_vs_ref(&f, s, pop, 5, 0, 2, 1, evo_key_from_seed(22));
  evo_sim_info info;
  evo_sim_info_get(s, &info);
  cr_assert(info.shared_obs);
  evo_sim_free(s);
  s = new_sim(&f, 2, false, false, 0);
  sim_vs_ref(&f, s, pop, 5, 0, 2, 0, evo_key_from_seed(22));
  evo_sim_info_get(s, &info);
  cr_assert(!info.shared_obs);
  evo_sim_free(s);
  free(pop);
  fix_fini(&f);
}

/* MAP-Elites through the sim: each member's descriptor is the task's after its episodes (the point's first two
   coordinates), averaged over repeats, across chunks (last one padded); fitness as evo_sim_evaluate's. */
Test(sim, evaluate_bd_gives_each_members_task_descriptor) {
  static const ref_norm no_norm;
  fix f;
  fix_init(&f, "functions", "function: sphere\ndim: 3\n", POL_MLP_LINEAR);
  float *pop = population(&f, 5, 1.0f, 13), fit[5], fit2[5], bd[10], want[2];
  evo_sim *s = new_sim(&f, 2, false, false, 2);
  const evo_key key = evo_key_from_seed(23);
  cr_assert_eq(evo_sim_evaluate_bd(s, pop, 5, 0, key, fit, bd), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_sim_evaluate(s, pop, 5, 0, key, fit2), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert(memcmp(fit, fit2, sizeof fit) == 0, "fitness as evo_sim_evaluate's");
  for (int i = 0; i < 5; i++) {
    int bad = 0;
    int64_t steps = 0;
    ref_episode(&f, pop + i * f.d, evo_key_fold_in(key, (uint32_t)(2 * i)), &no_norm, NULL, &bad, &steps);
    cr_assert_eq(evo_task_descriptor(f.ref, want), EVO_STATUS_OK);
    cr_expect(bd[2 * i] == want[0] && bd[2 * i + 1] == want[1] && want[0] != 0.0f, "member %d: (%g, %g) vs (%g, %g)",
              i, bd[2 * i], bd[2 * i + 1], want[0], want[1]);
  }
  evo_sim_free(s), free(pop), fix_fini(&f);
  fix_init(&f, "cartpole_swingup", NULL, POL_MLP);
  pop = population(&f, 2, 0.1f, 14);
  s = new_sim(&f, 1, true, false, 0);
  cr_expect_eq(evo_sim_evaluate_bd(s, pop, 2, 0, key, fit, bd), EVO_STATUS_UNSUPPORTED); /* no descriptor */
  evo_sim_free(s), free(pop), fix_fini(&f);
}

Test(sim, generations_allocate_nothing_once_planned) {
  fix f;
  fix_init(&f, "cartpole_swingup", "max_steps: 50\n", POL_LSTM);
  float *pop = population(&f, 4, 0.5f, 13), fit[4];
  evo_sim *s = new_sim(&f, 2, true, false, 0);
  cr_assert_eq(evo_sim_evaluate(s, pop, 4, 0, evo_key_from_seed(1), fit), EVO_STATUS_OK);
  uint64_t a0 = evo_backend_alloc_count(f.be);
  for (int g = 0; g < 3; g++) cr_assert_eq(evo_sim_evaluate(s, pop, 4, 0, evo_key_from_seed(2 + g), fit), 0);
  cr_assert_eq(evo_backend_alloc_count(f.be), a0);
  evo_sim_free(s);
  free(pop);
  fix_fini(&f);
}

Test(sim, bad_arguments) {
  fix f;
  fix_init(&f, "cartpole_swingup", NULL, POL_MLP);
  evo_sim_params sp = evo_sim_default_params();
  evo_sim *s;
  sp.n_repeats = 0;
  cr_assert_eq(evo_sim_new(f.task, f.pol, f.be, &sp, &s), EVO_STATUS_INVALID_ARGUMENT);
  sp = evo_sim_default_params();
  sp.chunk_members = -1;
  cr_assert_eq(evo_sim_new(f.task, f.pol, f.be, &sp, &s), EVO_STATUS_INVALID_ARGUMENT);
  /* a policy built for another task */
  evo_policy_io io = {.obs_ndim = 1, .obs_shape = {4}, .act_ndim = 1, .act_shape = {1}};
  evo_policy *other;
  evo_policy_mlp_params mp = evo_policy_mlp_default_params();
  cr_assert_eq(evo_policy_mlp_new(&mp, &io, &other), EVO_STATUS_OK);
  cr_assert_eq(evo_sim_new(f.task, other, f.be, NULL, &s), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "spec"), "%s", evo_last_error());
  evo_policy_free(other);
  s = new_sim(&f, 1, true, false, 0);
  float fit[1];
  double r;
  cr_assert_eq(evo_sim_evaluate(s, NULL, 1, 0, evo_key_from_seed(1), fit), EVO_STATUS_INVALID_ARGUMENT);
  float *pop = population(&f, 1, 0.1f, 1);
  cr_assert_eq(evo_sim_evaluate(s, pop, 0, 0, evo_key_from_seed(1), fit), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert_eq(evo_sim_test(s, pop, 0, evo_key_from_seed(1), &r), EVO_STATUS_INVALID_ARGUMENT);
  evo_sim_free(s);
  free(pop);
  fix_fini(&f);
}

/* ------------------------------------------------------------------ MNIST (Fashion-MNIST package data) */

static int mnist_present(void) {
  evo_mnist_split sp;
  if (evo_mnist_load(NULL, EVO_MNIST_TEST, &sp) != EVO_STATUS_OK) return 0;
  evo_mnist_split_free(&sp);
  return 1;
}

/* One-step episodes of 16 images ([16, 28, 28, 1] observations: a multi-dimensional normaliser), CNN policy;
   with CRN the shared-observation plan, without it one batch per member. */
static void mnist_case(bool crn) {
  if (!mnist_present()) cr_skip_test("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)");
  fix f;
  fix_init(&f, "mnist", "batch_size: 16\n", POL_CNN);
  cr_assert_eq(f.max_steps, 1);
  float *pop = population(&f, 3, 0.05f, 14);
  evo_sim *s = new_sim(&f, 2, crn, true, 0);
  obs_log log = {0};
  static ref_norm nz;
  for (int gen = 0; gen < 2; gen++) {
    evo_key key = evo_key_from_seed(40 + (uint64_t)gen);
    snapshot_norm(s, &nz);
    float got[3], want[3];
    cr_assert_eq(evo_sim_evaluate(s, pop, 3, 0, key, got), EVO_STATUS_OK, "%s", evo_last_error());
    int64_t steps = 0;
    for (int i = 0; i < 3; i++) want[i] = ref_fitness(&f, pop + i * f.d, i, 2, crn, key, &nz, &log, &steps);
    for (int i = 0; i < 3; i++) /* the CNN's GEMMs differ in blocking between 1 and 3 members */
      cr_assert(fabsf(got[i] - want[i]) <= 1e-5f * (1 + fabsf(want[i])), "member %d: %.9g vs %.9g", i, got[i],
                want[i]);
    cr_assert_eq(steps, 3 * 2);
    check_norm(s, &log);
  }
  evo_sim_info info;
  evo_sim_info_get(s, &info);
  cr_assert_eq(info.shared_obs, crn);
  evo_sim_free(s);
  free(log.x);
  /* All-zero parameters predict 1/10 for every class: fitness = mean log-likelihood = -log 10. */
  memset(pop, 0, sizeof(float) * (size_t)f.d);
  s = new_sim(&f, 1, crn, false, 0);
  float fit[1];
  cr_assert_eq(evo_sim_evaluate(s, pop, 1, 0, evo_key_from_seed(3), fit), EVO_STATUS_OK);
  cr_assert_float_eq(fit[0], -logf(10.0f), 1e-5f, "fitness %g", fit[0]);
  evo_sim_free(s);
  free(pop);
  fix_fini(&f);
}

Test(sim, mnist_one_step_shared_observations) { mnist_case(true); }
Test(sim, mnist_one_step_per_member_observations) { mnist_case(false); }

/* ---------------- task threads (evo_sim_params.task_threads, EVO_TASK_FLAG_STEP_RANGE) ---------------- */

typedef struct {
  float fit[2][8]; /* two generations (the second normalises with the first's statistics) */
  double test;
  evo_sim_stats stats;
  double norm[1 + 2 * 8];
} threads_result;

static void run_with_threads(evo_task *task, const evo_policy *pol, evo_backend *be, const float *pop, int n,
                             int threads, threads_result *out) {
  evo_sim_params sp = evo_sim_default_params();
  sp.n_repeats = 3;
  sp.normalize_obs = true;
  sp.task_threads = threads;
  evo_sim *s;
  cr_assert_eq(evo_sim_new(task, pol, be, &sp, &s), EVO_STATUS_OK, "%s", evo_last_error());
  memset(out, 0, sizeof *out);
  for (int g = 0; g < 2; g++)
    cr_assert_eq(evo_sim_evaluate(s, pop, n, 0, evo_key_from_seed(40 + (uint64_t)g), out->fit[g]), EVO_STATUS_OK,
                 "%s", evo_last_error());
  cr_assert_eq(evo_sim_test(s, pop, 7, evo_key_from_seed(50), &out->test), EVO_STATUS_OK, "%s", evo_last_error());
  evo_sim_stats_get(s, &out->stats);
  evo_sim_info info;
  evo_sim_info_get(s, &info);
  cr_assert_eq(info.task_threads, threads < n * 3 ? threads : n * 3, "%d task threads asked, %d used", threads,
               info.task_threads);
  double *count, *mean, *m2;
  evo_sim_normalizer(s, &count, &mean, &m2);
  int64_t m = evo_sim_obs_size(s);
  cr_assert(m <= 8);
  out->norm[0] = *count;
  memcpy(out->norm + 1, mean, sizeof(double) * (size_t)m);
  memcpy(out->norm + 1 + m, m2, sizeof(double) * (size_t)m);
  evo_sim_free(s);
}

/* Same bits for 1 thread and for splits into 2..18 ranges (18 episodes per plan, so also uneven ranges and more
   threads than episodes). */
static void threads_compare(evo_task *task, const evo_policy *pol, evo_backend *be, const float *pop, int n) {
  threads_result one, many;
  run_with_threads(task, pol, be, pop, n, 1, &one);
  cr_assert(one.stats.env_steps > 0);
  const int counts[] = {2, 4, 5, 32};
  for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
    run_with_threads(task, pol, be, pop, n, counts[i], &many);
    cr_assert(memcmp(one.fit, many.fit, sizeof one.fit) == 0, "%d threads: fitness differs from 1 thread",
              counts[i]);
    cr_assert(one.test == many.test, "%d threads: test mean %.17g vs %.17g", counts[i], many.test, one.test);
    cr_assert(memcmp(one.norm, many.norm, sizeof one.norm) == 0, "%d threads: normaliser differs", counts[i]);
    cr_assert(one.stats.env_steps == many.stats.env_steps && one.stats.batch_steps == many.stats.batch_steps &&
                  one.stats.evaluations == many.stats.evaluations,
              "%d threads: stats differ", counts[i]);
  }
}

Test(sim_threads, cartpole_same_returns_for_any_thread_count) {
  const char *yaml[] = {"variant: easy\nmax_steps: 200\n", "variant: hard\nmax_steps: 150\n"};
  for (int v = 0; v < 2; v++) {
    fix f;
    fix_init(&f, "cartpole_swingup", yaml[v], v ? POL_LSTM : POL_MLP);
    cr_assert(evo_task_get_spec(f.task)->flags & EVO_TASK_FLAG_STEP_RANGE);
    float *pop = population(&f, 6, 0.8f, 30);
    threads_compare(f.task, f.pol, f.be, pop, 6);
    free(pop);
    fix_fini(&f);
  }
  fix f;
  fix_init(&f, "cartpole_balance", "max_steps: 200\n", POL_MLP);
  float *pop = population(&f, 6, 0.8f, 31);
  threads_compare(f.task, f.pol, f.be, pop, 6);
  free(pop);
  fix_fini(&f);
}

Test(sim_threads, pendulum_plugin_same_returns_for_any_thread_count) {
  evo_backend *be = evo_backend_cpu_new(NULL);
  evo_task_args a = {be, EVO_TASK_TRAIN, 0};
  evo_task *task;
  cr_assert_eq(evo_task_new_plugin(EVOC_PENDULUM_PLUGIN, NULL, &a, &task), EVO_STATUS_OK, "%s", evo_last_error());
  const evo_task_spec *ts = evo_task_get_spec(task);
  cr_assert(ts->place == EVO_TASK_HOST && (ts->flags & EVO_TASK_FLAG_STEP_RANGE));
  evo_policy_io io = {.obs_ndim = 1, .obs_shape = {ts->obs_shape[0]}, .act_ndim = 1, .act_shape = {1}};
  evo_policy_mlp_params mp = evo_policy_mlp_default_params();
  mp.hidden[0] = 16, mp.hidden[1] = 16;
  evo_policy *pol;
  cr_assert_eq(evo_policy_mlp_new(&mp, &io, &pol), EVO_STATUS_OK, "%s", evo_last_error());
  const int64_t d = evo_policy_num_params(pol);
  float *pop = malloc(sizeof(float) * (size_t)(5 * d)), *z = malloc(sizeof(float) * (size_t)d);
  cr_assert(pop && z);
  cr_assert_eq(evo_policy_init(pol, evo_key_from_seed(3), pop), EVO_STATUS_OK);
  for (int i = 4; i >= 0; i--) {
    evo_rng_fill_normal(evo_key_from_seed(60 + (uint64_t)i), z, d);
    for (int64_t j = 0; j < d; j++) pop[i * d + j] = pop[j] + 0.5f * z[j];
  }
  threads_compare(task, pol, be, pop, 5);
  free(pop), free(z);
  evo_policy_free(pol);
  evo_task_free(task);
  evo_backend_free(be);
}

/* The step_range contract on CartPole: ranges step exactly as the whole batch; bad ranges and bad actions fail. */
Test(sim_threads, cartpole_step_range_equals_step) {
  const char *names[] = {"cartpole_swingup", "cartpole_balance"};
  enum { N = 37 };
  for (int v = 0; v < 2; v++) {
    fix f;
    fix_init(&f, names[v], NULL, POL_MLP);
    evo_key keys[N];
    evo_key_split(evo_key_from_seed(70), N, keys);
    float obs[2][N * 5], rew[2][N];
    uint8_t done[2][N];
    union { float f[N]; int32_t i[N]; } act;
    cr_assert_eq(evo_task_reset(f.task, N, keys, obs[0]), EVO_STATUS_OK);
    cr_assert_eq(evo_task_reset(f.ref, N, keys, obs[1]), EVO_STATUS_OK);
    const int64_t cut[] = {0, 10, 11, N};
    for (int t = 0; t < 120; t++) {
      for (int e = 0; e < N; e++) {
        uint32_t w = evo_key_fold_in(keys[e], (uint32_t)t).w[0];
        if (v) act.i[e] = (int32_t)(w & 1);
        else act.f[e] = (float)w / 2147483648.0f - 1.0f;
      }
      cr_assert_eq(evo_task_step(f.task, &act, obs[0], rew[0], done[0]), EVO_STATUS_OK);
      for (int c = 2; c >= 0; c--) /* out of order on purpose */
        cr_assert_eq(evo_task_step_range(f.ref, cut[c], cut[c + 1], &act, obs[1], rew[1], done[1]), EVO_STATUS_OK,
                     "%s", evo_last_error());
      cr_assert(memcmp(obs[0], obs[1], sizeof obs[0]) == 0 && memcmp(rew[0], rew[1], sizeof rew[0]) == 0 &&
                    memcmp(done[0], done[1], sizeof done[0]) == 0,
                "%s step %d: ranges differ from the whole batch", names[v], t);
    }
    cr_assert_eq(evo_task_step_range(f.ref, 5, 5, &act, obs[1], rew[1], done[1]), EVO_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(evo_task_step_range(f.ref, 30, N + 1, &act, obs[1], rew[1], done[1]), EVO_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(evo_task_step_range(f.ref, 0, N, NULL, obs[1], rew[1], done[1]), EVO_STATUS_INVALID_ARGUMENT);
    if (v) { /* a bad action of an episode still alive fails and names it */
      cr_assert_eq(evo_task_reset(f.ref, N, keys, obs[1]), EVO_STATUS_OK);
      for (int e = 0; e < N; e++) act.i[e] = 0;
      act.i[12] = 3;
      cr_assert_eq(evo_task_step_range(f.ref, 11, N, &act, obs[1], rew[1], done[1]), EVO_STATUS_INVALID_ARGUMENT);
      cr_assert(strstr(evo_last_error(), "episode 12"), "%s", evo_last_error());
      cr_assert_eq(evo_task_step_range(f.ref, 0, 11, &act, obs[1], rew[1], done[1]), EVO_STATUS_OK);
    }
    fix_fini(&f);
  }
  /* A task without the flag: the whole batch only. */
  evo_task *fn;
  cr_assert_eq(evo_task_new_builtin("functions", NULL, NULL, &fn), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_task_get_spec(fn)->flags & EVO_TASK_FLAG_STEP_RANGE, 0u);
  float x[10] = {0}, o[64], r[1];
  uint8_t dn[1];
  evo_key k = evo_key_from_seed(1);
  cr_assert_eq(evo_task_reset(fn, 1, &k, o), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_task_step_range(fn, 0, 1, x, o, r, dn), EVO_STATUS_UNSUPPORTED);
  evo_task_free(fn);
}

Test(sim_threads, negative_task_threads_rejected) {
  fix f;
  fix_init(&f, "cartpole_swingup", NULL, POL_MLP);
  evo_sim_params sp = evo_sim_default_params();
  sp.task_threads = -1;
  evo_sim *s;
  cr_assert_eq(evo_sim_new(f.task, f.pol, f.be, &sp, &s), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "task_threads"), "%s", evo_last_error());
  fix_fini(&f);
}
