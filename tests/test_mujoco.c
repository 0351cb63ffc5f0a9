/* MuJoCo locomotion tasks (tasks/mujoco, specs/mujoco.md): model facts, reset distribution, and every environment's
   observation, reward and termination against a loop written here from the Gymnasium v5 formulas on raw MuJoCo
   calls; done masking, truncation, step_range partitions, divergence and config errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/config.h"
#include "evoc/task.h"

#ifdef EVOC_HAVE_MUJOCO
#include "../tasks/mujoco/mj_impl.h"
#include "../tasks/task_impl.h"

static const char *const ENVS[] = {"swimmer", "hopper", "halfcheetah", "walker2d", "ant", "humanoid"};
enum { NENV = 6 };

static evo_config *parse(const char *text) {
  evo_config *c = NULL;
  cr_assert_eq(evo_config_parse(text, "test.yaml", &c), EVO_STATUS_OK, "%s", evo_last_error());
  return c;
}

static evo_task *mj_task(const char *yaml) {
  evo_config *c = parse(yaml);
  evo_task *t = NULL;
  cr_assert_eq(evo_task_new(evo_cfg_get(evo_config_root(c), "task"), NULL, &t), EVO_STATUS_OK, "%s",
               evo_last_error());
  evo_config_free(c);
  return t;
}

static evo_task *env_task(const char *env, const char *extra) {
  char y[256];
  snprintf(y, sizeof y, "task: {name: mujoco, env: %s%s}\n", env, extra ? extra : "");
  return mj_task(y);
}

static evo_key *keys_new(uint64_t seed, int n) {
  evo_key *k = malloc((size_t)n * sizeof *k);
  evo_key_split(evo_key_from_seed(seed), n, k);
  return k;
}

/* A deterministic, bounded action sequence that exercises every actuator. */
static float action_at(int t, int j, float amp) { return amp * (float)sin(0.37 * t + 1.3 * j + 0.2); }

/* ---------------- model facts (spec table) ---------------- */

Test(mujoco, models_match_the_spec_table) {
  const int nq[NENV] = {5, 6, 9, 9, 15, 24}, nv[NENV] = {5, 6, 9, 9, 14, 23}, nu[NENV] = {2, 3, 6, 6, 8, 17};
  const int obs[NENV] = {8, 11, 17, 17, 105, 348};
  const double dt[NENV] = {0.04, 0.008, 0.05, 0.008, 0.05, 0.015};
  const double mass[NENV] = {3 * 35.6, 15.82, 14.0, 23.68, 0.911, 42.12}; /* 0: spec "35.6 kg each" */
  const double ctrl[NENV] = {1, 1, 1, 1, 1, 0.4};
  for (int e = 0; e < NENV; e++) {
    const evo_mj_env *env = evo_mj_env_find(ENVS[e]);
    cr_assert_not_null(env, "%s", ENVS[e]);
    mjModel *m = NULL;
    cr_assert_eq(evo_mj_model_load(env->model, &m), EVO_STATUS_OK, "%s", evo_last_error());
    cr_expect_eq(m->nq, nq[e], "%s nq %d", ENVS[e], m->nq);
    cr_expect_eq(m->nv, nv[e], "%s nv %d", ENVS[e], m->nv);
    cr_expect_eq(m->nu, nu[e], "%s nu %d", ENVS[e], m->nu);
    cr_expect_eq(env->obs_dim, obs[e], "%s", ENVS[e]);
    cr_expect(fabs(m->opt.timestep * env->frame_skip - dt[e]) < 1e-12, "%s dt", ENVS[e]);
    if (e == 4) cr_expect_str_eq(mj_id2name(m, mjOBJ_BODY, 1), "torso", "Ant's forward position is body 1's");
    const double tm = mj_getTotalmass(m);
    cr_expect(fabs(tm - mass[e]) < 0.02 * mass[e], "%s total mass %g, spec %g", ENVS[e], tm, mass[e]);
    for (int j = 0; j < m->nu; j++)
      cr_expect(m->actuator_ctrllimited[j] && m->actuator_ctrlrange[2 * j] == -ctrl[e] &&
                m->actuator_ctrlrange[2 * j + 1] == ctrl[e], "%s actuator %d range", ENVS[e], j);
    evo_task *t = env_task(ENVS[e], NULL);
    const evo_task_spec *s = evo_task_get_spec(t);
    cr_expect(s->obs_shape[0] == obs[e] && s->act_shape[0] == nu[e] && s->max_steps == 1000 &&
              s->place == EVO_TASK_HOST && (s->flags & EVO_TASK_FLAG_STEP_RANGE), "%s spec", ENVS[e]);
    evo_task_free(t);
    mj_deleteModel(m);
  }
}

/* ---------------- the reference loop (Gymnasium v5 formulas on raw MuJoCo) ---------------- */

typedef struct {
  mjModel *m;
  mjData *d;
  int e, skip;
} ref_env;

static double ref_x(const ref_env *r) {
  const mjModel *m = r->m;
  const mjData *d = r->d;
  if (r->e == 4) return d->xpos[3]; /* ant: torso body */
  if (r->e == 5) {                  /* humanoid: centre of mass */
    double s = 0, w = 0;
    for (int b = 0; b < m->nbody; b++) s += m->body_mass[b] * d->xipos[3 * b], w += m->body_mass[b];
    return s / w;
  }
  return d->qpos[0];
}

static int ref_obs(const ref_env *r, double *o) {
  const mjModel *m = r->m;
  const mjData *d = r->d;
  int k = 0;
  const int q0 = (r->e == 0 || r->e >= 4) ? 2 : 1;
  for (int i = q0; i < m->nq; i++) o[k++] = d->qpos[i];
  for (int i = 0; i < m->nv; i++) o[k++] = (r->e == 1 || r->e == 3) ? fmax(-10, fmin(10, d->qvel[i])) : d->qvel[i];
  if (r->e == 4)
    for (int i = 6; i < 6 * m->nbody; i++) o[k++] = fmax(-1, fmin(1, d->cfrc_ext[i]));
  if (r->e == 5) {
    for (int i = 10; i < 10 * m->nbody; i++) o[k++] = d->cinert[i];
    for (int i = 6; i < 6 * m->nbody; i++) o[k++] = d->cvel[i];
    for (int i = 6; i < m->nv; i++) o[k++] = d->qfrc_actuator[i];
    for (int i = 6; i < 6 * m->nbody; i++) o[k++] = d->cfrc_ext[i];
  }
  return k;
}

static int ref_healthy(const ref_env *r) {
  const mjData *d = r->d;
  switch (r->e) {
  case 1: {
    for (int i = 2; i < r->m->nq; i++) if (fabs(d->qpos[i]) >= 100) return 0;
    for (int i = 0; i < r->m->nv; i++) if (fabs(d->qvel[i]) >= 100) return 0;
    return d->qpos[1] > 0.7 && fabs(d->qpos[2]) < 0.2;
  }
  case 3: return d->qpos[1] > 0.8 && d->qpos[1] < 2 && fabs(d->qpos[2]) < 1;
  case 4: return d->qpos[2] >= 0.2 && d->qpos[2] <= 1;
  case 5: return d->qpos[2] > 1 && d->qpos[2] < 2;
  default: return 1;
  }
}

/* One step from the current state with action a: returns the reward, sets *healthy. */
static double ref_step(ref_env *r, const float *a, int *healthy) {
  const mjModel *m = r->m;
  mjData *d = r->d;
  double a2 = 0, cf = 0;
  for (int j = 0; j < m->nu; j++) d->ctrl[j] = a[j], a2 += (double)a[j] * a[j];
  const double x0 = ref_x(r);
  for (int f = 0; f < r->skip; f++) mj_step(m, d);
  mj_rnePostConstraint(m, d);
  const double v = (ref_x(r) - x0) / (m->opt.timestep * r->skip);
  *healthy = ref_healthy(r);
  switch (r->e) {
  case 0: return v - 1e-4 * a2;
  case 2: return v - 0.1 * a2;
  case 1: case 3: return v + *healthy - 1e-3 * a2;
  case 4:
    for (int i = 0; i < 6 * m->nbody; i++) cf += pow(fmax(-1, fmin(1, d->cfrc_ext[i])), 2);
    return v + *healthy - 0.5 * a2 - 5e-4 * cf;
  default:
    for (int i = 0; i < 6 * m->nbody; i++) cf += d->cfrc_ext[i] * d->cfrc_ext[i];
    return 1.25 * v + 5.0 * *healthy - 0.1 * a2 - fmin(5e-7 * cf, 10);
  }
}

/* Feet of the behaviour descriptor, by geom name, in the descriptor's order (Swimmer: none). */
static const char *const FEET[NENV][4] = {{NULL}, {"foot_geom"}, {"bfoot", "ffoot"}, {"foot_geom", "foot_left_geom"},
                                          {"left_ankle_geom", "right_ankle_geom", "third_ankle_geom",
                                           "fourth_ankle_geom"},
                                          {"right_foot", "left_foot"}};

/* Whether the geom named foot touches the geom named floor now. */
static int ref_touches(const ref_env *r, const char *foot) {
  for (int c = 0; c < r->d->ncon; c++) {
    const char *a = mj_id2name(r->m, mjOBJ_GEOM, r->d->contact[c].geom1);
    const char *b = mj_id2name(r->m, mjOBJ_GEOM, r->d->contact[c].geom2);
    if (a && b && ((!strcmp(a, "floor") && !strcmp(b, foot)) || (!strcmp(b, "floor") && !strcmp(a, foot)))) return 1;
  }
  return 0;
}

/* From qpos0 at rest (reset_noise_scale 0), 40 steps of action_at: the task's obs, reward and done equal the
   reference loop's, the reset observation is qpos0's, and the behaviour descriptor is each foot's fraction of steps
   on the floor (Swimmer: its final x, y). */
Test(mujoco, every_env_matches_the_gymnasium_formulas) {
  enum { T = 40 };
  const float amp[NENV] = {1, 0.8f, 1, 0.8f, 0.8f, 0.05f}; /* a gentle humanoid stands long enough to land */
  for (int e = 0; e < NENV; e++) {
    const evo_mj_env *env = evo_mj_env_find(ENVS[e]);
    ref_env r = {NULL, NULL, e, env->frame_skip};
    cr_assert_eq(evo_mj_model_load(env->model, &r.m), EVO_STATUS_OK, "%s", evo_last_error());
    r.d = mj_makeData(r.m);
    mj_forward(r.m, r.d);
    mj_rnePostConstraint(r.m, r.d);
    evo_task *t = env_task(ENVS[e], ", reset_noise_scale: 0");
    const int od = env->obs_dim, nu = r.m->nu;
    float *obs = malloc(sizeof(float) * od), *a = malloc(sizeof(float) * nu), rew;
    double *ro = malloc(sizeof(double) * od);
    uint8_t done;
    evo_key k = evo_key_from_seed(3);
    cr_assert_eq(evo_task_reset(t, 1, &k, obs), EVO_STATUS_OK, "%s", evo_last_error());
    cr_assert_eq(ref_obs(&r, ro), od, "%s: reference obs size", ENVS[e]);
    for (int i = 0; i < od; i++)
      cr_assert(obs[i] == (float)ro[i], "%s reset obs[%d] %g vs %g", ENVS[e], i, obs[i], ro[i]);
    int steps = 0, ref_done = 0, touch[4] = {0};
    for (int s = 0; s < T && !ref_done; s++, steps++) {
      for (int j = 0; j < nu; j++) a[j] = action_at(s, j, amp[e]);
      int healthy;
      const double rr = ref_step(&r, a, &healthy);
      ref_done = !healthy;
      for (int f = 0; f < 4 && FEET[e][f]; f++) touch[f] += ref_touches(&r, FEET[e][f]);
      cr_assert_eq(evo_task_step(t, a, obs, &rew, &done), EVO_STATUS_OK, "%s", evo_last_error());
      ref_obs(&r, ro);
      cr_assert(fabs(rew - rr) <= 1e-5 * fmax(1, fabs(rr)), "%s step %d reward %.9g vs %.9g", ENVS[e], s, rew, rr);
      for (int i = 0; i < od; i++)
        cr_assert(obs[i] == (float)ro[i], "%s step %d obs[%d] %g vs %g", ENVS[e], s, i, obs[i], ro[i]);
      cr_assert_eq(done, ref_done, "%s step %d done", ENVS[e], s);
    }
    cr_assert_gt(steps, 5, "%s terminated at once", ENVS[e]);
    float bd[4];
    const int nf = e == 0 ? 0 : (int)(FEET[e][1] ? FEET[e][2] ? 4 : 2 : 1);
    cr_assert_eq(evo_task_get_spec(t)->bd_dim, nf ? nf : 2, "%s bd_dim", ENVS[e]);
    cr_assert_eq(evo_task_descriptor(t, bd), EVO_STATUS_OK, "%s", evo_last_error());
    int any = 0;
    for (int f = 0; f < nf; f++) {
      cr_expect(bd[f] == (float)touch[f] / (float)steps, "%s foot %d: %g vs %d / %d", ENVS[e], f, bd[f], touch[f],
                steps);
      any |= touch[f] > 0;
    }
    if (nf == 0) cr_expect(bd[0] == (float)r.d->qpos[0] && bd[1] == (float)r.d->qpos[1], "swimmer final x, y");
    else cr_expect(any, "%s: no foot ever touched the floor (%d steps)", ENVS[e], steps);
    free(obs), free(a), free(ro);
    evo_task_free(t);
    mj_deleteData(r.d);
    mj_deleteModel(r.m);
  }
}

/* ---------------- reset distribution ---------------- */

/* Hopper: obs = qpos[1:] and qvel, each U(qpos0 - 0.005, qpos0 + 0.005); mean and bounds over many episodes; the
   same key gives the same episode, another key another one. HalfCheetah's qvel is 0.1 N(0, 1). */
Test(mujoco, reset_noise_follows_the_spec) {
  enum { N = 1000 };
  evo_key *k = keys_new(7, N);
  evo_task *t = env_task("hopper", NULL);
  float *obs = malloc(sizeof(float) * N * 17);
  cr_assert_eq(evo_task_reset(t, N, k, obs), EVO_STATUS_OK, "%s", evo_last_error());
  const double centre[11] = {1.25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (int c = 0; c < 11; c++) {
    double s = 0, s2 = 0, lo = 1e9, hi = -1e9;
    for (int i = 0; i < N; i++) {
      const double x = obs[i * 11 + c] - centre[c];
      s += x, s2 += x * x, lo = fmin(lo, x), hi = fmax(hi, x);
    }
    const double mean = s / N, sd = sqrt(s2 / N - mean * mean);
    cr_expect(lo >= -0.005 - 1e-6 && hi <= 0.005 + 1e-6 && hi - lo > 0.0098, "hopper obs %d range [%g, %g]", c, lo, hi);
    cr_expect(fabs(mean) < 4 * 0.00289 / sqrt(N) && fabs(sd - 0.00289) < 4 * 0.00289 / sqrt(2 * N),
              "hopper obs %d mean %g sd %g", c, mean, sd);
  }
  float again[11];
  cr_assert_eq(evo_task_reset(t, 1, k + 5, again), EVO_STATUS_OK);
  cr_expect(memcmp(again, obs + 5 * 11, sizeof again) == 0, "same key, same initial state");
  cr_expect(memcmp(again, obs + 6 * 11, sizeof again) != 0, "another key, another initial state");
  evo_task_free(t);

  t = env_task("halfcheetah", NULL);
  cr_assert_eq(evo_task_reset(t, N, k, obs), EVO_STATUS_OK, "%s", evo_last_error());
  for (int c = 8; c < 17; c++) { /* qvel: 0.1 N(0, 1) */
    double s = 0, s2 = 0;
    for (int i = 0; i < N; i++) s += obs[i * 17 + c], s2 += (double)obs[i * 17 + c] * obs[i * 17 + c];
    const double mean = s / N, sd = sqrt(s2 / N - mean * mean);
    cr_expect(fabs(mean) < 4 * 0.1 / sqrt(N) && fabs(sd - 0.1) < 4 * 0.1 / sqrt(2 * N), "cheetah qvel %d mean %g sd %g",
              c, mean, sd);
  }
  evo_task_free(t);
  free(obs);
  free(k);
}

/* ---------------- termination, masking, truncation ---------------- */

/* A hopper with zero action topples: the terminal step is done with reward v - 0 (no healthy bonus); later steps
   return reward 0, done 1 and the terminal observation again. */
Test(mujoco, unhealthy_hopper_terminates_and_stays_done) {
  evo_task *t = env_task("hopper", NULL);
  evo_key k = evo_key_from_seed(1);
  float obs[11], last[11], a[3] = {0, 0, 0}, r;
  uint8_t done = 0;
  cr_assert_eq(evo_task_reset(t, 1, &k, obs), EVO_STATUS_OK);
  int s = 0;
  for (; s < 1000 && !done; s++) cr_assert_eq(evo_task_step(t, a, obs, &r, &done), EVO_STATUS_OK);
  cr_assert(done && s < 1000, "zero action: done after %d steps", s);
  cr_expect(obs[0] <= 0.7 || fabsf(obs[1]) >= 0.2, "terminal state unhealthy: z %g angle %g", obs[0], obs[1]);
  cr_expect(r < 0.9f, "no healthy bonus on the terminal step (reward %g)", r);
  memcpy(last, obs, sizeof last);
  for (int j = 0; j < 3; j++) {
    cr_assert_eq(evo_task_step(t, a, obs, &r, &done), EVO_STATUS_OK);
    cr_expect(done == 1 && r == 0.0f && memcmp(obs, last, sizeof obs) == 0, "done episodes stay put");
  }
  evo_task_free(t);
  /* Without termination the same episode runs on, unhealthy. */
  t = env_task("hopper", ", terminate_when_unhealthy: false, max_steps: 300");
  cr_assert_eq(evo_task_reset(t, 1, &k, obs), EVO_STATUS_OK);
  for (s = 0, done = 0; !done; s++) cr_assert_eq(evo_task_step(t, a, obs, &r, &done), EVO_STATUS_OK);
  cr_expect_eq(s, 300, "truncated at max_steps, not before (%d)", s);
  evo_task_free(t);
}

/* ARS's shift of the survival bonus: training episodes score reward - shift, test episodes the standard reward. */
Test(mujoco, train_reward_shift_applies_to_training_only) {
  evo_config *c = parse("task: {name: mujoco, env: hopper, train_reward_shift: 1.0}\n");
  evo_task_args train = {NULL, EVO_TASK_TRAIN, 0}, test = {NULL, EVO_TASK_TEST, 0};
  evo_task *a = NULL, *b = NULL;
  cr_assert_eq(evo_task_new(evo_cfg_get(evo_config_root(c), "task"), &train, &a), EVO_STATUS_OK, "%s",
               evo_last_error());
  cr_assert_eq(evo_task_new(evo_cfg_get(evo_config_root(c), "task"), &test, &b), EVO_STATUS_OK, "%s",
               evo_last_error());
  evo_key k = evo_key_from_seed(4);
  float oa[11], ob[11], act[3], ra, rb;
  uint8_t da, db;
  cr_assert_eq(evo_task_reset(a, 1, &k, oa), EVO_STATUS_OK);
  cr_assert_eq(evo_task_reset(b, 1, &k, ob), EVO_STATUS_OK);
  for (int s = 0; s < 10; s++) {
    for (int j = 0; j < 3; j++) act[j] = action_at(s, j, 0.5f);
    cr_assert_eq(evo_task_step(a, act, oa, &ra, &da), EVO_STATUS_OK);
    cr_assert_eq(evo_task_step(b, act, ob, &rb, &db), EVO_STATUS_OK);
    cr_assert(memcmp(oa, ob, sizeof oa) == 0 && da == db, "same physics");
    cr_expect(fabsf(ra - (rb - 1.0f)) < 1e-5f, "step %d: train %g, test %g", s, ra, rb);
  }
  evo_task_free(a);
  evo_task_free(b);
  evo_config_free(c);
}

/* ---------------- step_range ---------------- */

/* Stepping [0, n) whole equals stepping it in uneven ranges (what the simulation's task threads do). */
Test(mujoco, step_range_partitions_equal_step) {
  enum { N = 7, T = 30 };
  const int od = 105, nu = 8;
  evo_key *k = keys_new(11, N);
  evo_task *a = env_task("ant", NULL), *b = env_task("ant", NULL);
  float oa[N * 105], ob[N * 105], act[N * 8], ra[N], rb[N];
  uint8_t da[N], db[N];
  cr_assert_eq(evo_task_reset(a, N, k, oa), EVO_STATUS_OK);
  cr_assert_eq(evo_task_reset(b, N, k, ob), EVO_STATUS_OK);
  const int cut[] = {0, 1, 4, 7};
  for (int s = 0; s < T; s++) {
    for (int i = 0; i < N * nu; i++) act[i] = action_at(s + i, i % nu, 1.0f);
    cr_assert_eq(evo_task_step(a, act, oa, ra, da), EVO_STATUS_OK);
    for (int c = 0; c + 1 < 4; c++)
      cr_assert_eq(evo_task_step_range(b, cut[c], cut[c + 1], act, ob, rb, db), EVO_STATUS_OK, "%s", evo_last_error());
    cr_assert(memcmp(oa, ob, sizeof(float) * N * od) == 0 && memcmp(ra, rb, sizeof ra) == 0 &&
              memcmp(da, db, sizeof da) == 0, "step %d", s);
  }
  cr_expect_neq(evo_task_step_range(b, 3, 8, act, ob, rb, db), EVO_STATUS_OK, "a range past n is refused");
  evo_task_free(a);
  evo_task_free(b);
  free(k);
}

/* ---------------- divergence and MuJoCo errors ---------------- */

/* The task's own state (not the evo_task wrapper), so a test can reach an episode's mjData: two hopper episodes. */
static void *two_hoppers(const evo_key k[2], float obs[22]) {
  void *st = NULL;
  cr_assert_eq(evo_task_mujoco.create(NULL, NULL, &st), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_task_mujoco.reset(st, 2, k, obs), EVO_STATUS_OK);
  return st;
}

/* A velocity MuJoCo rejects (it resets the data and counts BADQVEL) ends the episode with a NaN reward, which the
   simulation manager reports as a NaN member; the other episode is unaffected. */
Test(mujoco, divergence_ends_the_episode_with_nan) {
  evo_key k[2] = {evo_key_from_seed(1), evo_key_from_seed(2)};
  float obs[22], a[6] = {0}, r[2];
  uint8_t done[2];
  void *st = two_hoppers(k, obs);
  evo_mj_task_data(st, 0)->qvel[3] = 1e30;
  cr_assert_eq(evo_task_mujoco.step(st, a, obs, r, done), EVO_STATUS_OK);
  cr_expect(isnan(r[0]) && done[0] == 1, "diverged: reward %g done %d", r[0], done[0]);
  cr_expect(isfinite(r[1]) && done[1] == 0, "other episode: reward %g done %d", r[1], done[1]);
  cr_assert_eq(evo_task_mujoco.step(st, a, obs, r, done), EVO_STATUS_OK);
  cr_expect(r[0] == 0.0f && done[0] == 1, "stays done");
  evo_task_mujoco.destroy(st);
}

/* MuJoCo's fatal errors (here its per-episode stack exhausted inside mj_step) would exit the process; the task
   ends that episode with a NaN reward instead, and a later reset starts it afresh. */
Test(mujoco, fatal_mujoco_error_fails_the_episode_not_the_process) {
  evo_key k[2] = {evo_key_from_seed(1), evo_key_from_seed(2)};
  float obs[22], a[6] = {0}, r[2];
  uint8_t done[2];
  void *st = two_hoppers(k, obs);
  mjData *d = evo_mj_task_data(st, 1);
  d->pstack = d->nstack - 4; /* as if MuJoCo's stack were nearly full */
  float reset_obs[11];
  memcpy(reset_obs, obs + 11, sizeof reset_obs);
  obs[11] = NAN; /* whatever the caller's buffer held */
  cr_assert_eq(evo_task_mujoco.step(st, a, obs, r, done), EVO_STATUS_OK);
  cr_expect(memcmp(obs + 11, reset_obs, sizeof reset_obs) == 0, "the failed episode shows its last sound state");
  cr_expect(isfinite(r[0]) && done[0] == 0, "other episode: reward %g done %d", r[0], done[0]);
  cr_expect(isnan(r[1]) && done[1] == 1, "stack exhausted: reward %g done %d", r[1], done[1]);
  cr_expect(strstr(evo_mj_guard_message(), "overflow"), "MuJoCo's message kept: %s", evo_mj_guard_message());
  cr_assert_eq(evo_task_mujoco.reset(st, 2, k, obs), EVO_STATUS_OK);
  cr_assert_eq(evo_task_mujoco.step(st, a, obs, r, done), EVO_STATUS_OK);
  cr_expect(isfinite(r[1]) && done[1] == 0, "after a reset: reward %g done %d", r[1], done[1]);
  evo_task_mujoco.destroy(st);
}

/* ---------------- config errors ---------------- */

Test(mujoco, bad_options_name_file_line_col) {
  evo_config *c = parse("task:\n  name: mujoco\n  env: hoper\n");
  evo_task *t = NULL;
  cr_assert_neq(evo_task_new(evo_cfg_get(evo_config_root(c), "task"), NULL, &t), EVO_STATUS_OK);
  cr_expect(strstr(evo_last_error(), "test.yaml:3:") && strstr(evo_last_error(), "hopper"), "%s", evo_last_error());
  evo_config_free(c);
  c = parse("task: {name: mujoco, env: ant, frame_skip: 3}\n");
  cr_assert_neq(evo_task_new(evo_cfg_get(evo_config_root(c), "task"), NULL, &t), EVO_STATUS_OK);
  cr_expect(strstr(evo_last_error(), "frame_skip"), "%s", evo_last_error());
  evo_config_free(c);
}

#else

Test(mujoco, without_mujoco_the_task_says_how_to_get_it) {
  evo_task *t = NULL;
  cr_assert_eq(evo_task_new_builtin("mujoco", NULL, NULL, &t), EVO_STATUS_UNSUPPORTED);
  cr_expect(strstr(evo_last_error(), "libmujoco-dev"), "%s", evo_last_error());
}

#endif
