/* The `mujoco` task: Gymnasium v5 locomotion (specs/mujoco.md) on the MuJoCo C library, a host task.
   One const mjModel is shared; every episode owns an mjData, so disjoint episode ranges step on the simulation's
   task threads at once (EVO_TASK_FLAG_STEP_RANGE).

   step(a): ctrl = a (unclipped: MuJoCo clamps to ctrlrange, the control cost uses the raw action); frame_skip
   mj_steps; mj_rnePostConstraint where cfrc_ext is read; reward; terminated when unhealthy (the terminal step's
   reward counts, its healthy bonus does not); truncated at max_steps. A simulation that diverges (MuJoCo 2.2.2 then
   silently resets the data and counts a BADQPOS/BADQVEL/BADQACC warning) ends the episode with a NaN reward, so
   the simulation manager gives the member the worst fitness and counts it in nan_members: the event is reported
   instead of scoring a reset robot. A fatal MuJoCo error inside the step (its stack exhausted) ends the episode the
   same way instead of exiting the process (evo_mj_guard). Episodes already done are not stepped again: they repeat
   their last observation with reward 0 and done 1. The behaviour descriptor (MAP-Elites) is the fraction of steps
   each foot ended touching the floor (QDax's feet contact); Swimmer, without feet, gives its final (x, y).

   Options: env (hopper; swimmer, hopper, halfcheetah, walker2d, ant, humanoid), max_steps (1000),
   terminate_when_unhealthy (true), reset_noise_scale (-1: the environment's own), train_reward_shift (0:
   subtracted from each step's reward in training mode only, as ARS removes the survival bonus; test episodes
   score the standard reward). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../task_impl.h"
#include "mj_impl.h"

typedef struct {
  const evo_mj_env *env;
  mjModel *m;
  int64_t max_steps;
  bool terminate;
  double noise; /* < 0: the environment's */
  double shift; /* subtracted from every training reward (ARS's shift of the survival bonus); 0 when testing */
  int64_t n, cap;
  mjData **d;       /* [cap] */
  int64_t *t;       /* steps taken */
  uint8_t *done;
  float *last_obs;  /* [cap, obs_dim]: repeated for done episodes */
  int floor, feet[4]; /* geom ids of the descriptor's contacts */
  int64_t *touch;   /* [cap, 4]: steps each foot ended touching the floor */
} evo_mj_task;

static void evo_mj_destroy(void *state) {
  evo_mj_task *s = state;
  if (!s) return;
  for (int64_t i = 0; i < s->cap; i++) mj_deleteData(s->d[i]);
  free(s->d);
  free(s->t);
  free(s->done);
  free(s->last_obs);
  free(s->touch);
  mj_deleteModel(s->m);
  free(s);
}

static evo_status evo_mj_create(evo_cfg *cfg, const evo_task_args *args, void **state) {
  const char *choices[8];
  int k = 0;
  for (; evo_mj_envs[k] && k < 7; k++) choices[k] = evo_mj_envs[k]->name;
  choices[k] = NULL;
  const char *name = "hopper";
  int64_t max_steps = 1000;
  bool terminate = true;
  double noise = -1.0, shift = 0.0;
  evo_status st;
  if (!state) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "mujoco: NULL state pointer");
  *state = NULL;
  if (cfg && ((st = evo_cfg_string(cfg, "env", name, choices, &name)) ||
              (st = evo_cfg_int(cfg, "max_steps", max_steps, 1, 1000000000, &max_steps)) ||
              (st = evo_cfg_bool(cfg, "terminate_when_unhealthy", terminate, &terminate)) ||
              (st = evo_cfg_double(cfg, "reset_noise_scale", noise, -1.0, 10.0, &noise)) ||
              (st = evo_cfg_double(cfg, "train_reward_shift", shift, -1e6, 1e6, &shift))))
    return st;
  const evo_mj_env *env = evo_mj_env_find(name);
  if (!env) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "mujoco: unknown env '%s'", name);
  evo_mj_task *s = calloc(1, sizeof *s);
  if (!s) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "mujoco: out of memory");
  s->env = env, s->max_steps = max_steps, s->terminate = terminate, s->noise = noise;
  s->shift = args && args->mode == EVO_TASK_TEST ? 0.0 : shift;
  if ((st = evo_mj_model_load(env->model, &s->m))) {
    free(s);
    return st;
  }
  s->floor = mj_name2id(s->m, mjOBJ_GEOM, "floor");
  for (int f = 0; f < env->n_feet; f++)
    if ((s->feet[f] = mj_name2id(s->m, mjOBJ_GEOM, env->feet[f])) < 0 || s->floor < 0) {
      evo_mj_destroy(s);
      return evo_error(EVO_STATUS_FORMAT, "mujoco: model '%s' has no geom '%s' or 'floor'", env->model,
                       env->feet[f]);
    }
  *state = s;
  return EVO_STATUS_OK;
}

static void evo_mj_spec(const void *state, evo_task_spec *out) {
  const evo_mj_task *s = state;
  memset(out, 0, sizeof *out);
  out->obs_ndim = 1;
  out->obs_shape[0] = s->env->obs_dim;
  out->act_ndim = 1;
  out->act_shape[0] = s->m->nu;
  out->action_kind = EVO_ACTION_CONTINUOUS;
  out->max_steps = s->max_steps;
  out->place = EVO_TASK_HOST;
  out->bd_dim = s->env->n_feet > 0 ? s->env->n_feet : 2;
  out->flags = EVO_TASK_FLAG_STEP_RANGE;
}

static evo_status evo_mj_grow(evo_mj_task *s, int64_t n) {
  if (n <= s->cap) return EVO_STATUS_OK;
  const int od = s->env->obs_dim;
  mjData **d = realloc(s->d, (size_t)n * sizeof *d);
  if (d) s->d = d;
  int64_t *t = realloc(s->t, (size_t)n * sizeof *t);
  if (t) s->t = t;
  uint8_t *done = realloc(s->done, (size_t)n);
  if (done) s->done = done;
  float *lo = realloc(s->last_obs, (size_t)n * (size_t)od * sizeof *lo);
  if (lo) s->last_obs = lo;
  int64_t *touch = realloc(s->touch, (size_t)n * 4 * sizeof *touch);
  if (touch) s->touch = touch;
  if (!d || !t || !done || !lo || !touch) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "mujoco: out of memory for %lld "
                                                 "episodes", (long long)n);
  jmp_buf jb;
  if (setjmp(jb)) {
    evo_mj_guard(NULL);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "mujoco: episode %lld's data: %s", (long long)s->cap,
                     evo_mj_guard_message());
  }
  evo_mj_guard(&jb);
  for (; s->cap < n; s->cap++)
    if (!(s->d[s->cap] = mj_makeData(s->m))) break;
  evo_mj_guard(NULL);
  if (s->cap < n)
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "mujoco: out of memory for episode %lld's data", (long long)s->cap);
  return EVO_STATUS_OK;
}

/* One episode's initial state from its key alone: numbers 0..nq-1 perturb qpos, nq..nq+nv-1 set qvel. */
static void evo_mj_reset_one(evo_mj_task *s, mjData *d, evo_key key, float *obs) {
  const mjModel *m = s->m;
  const evo_mj_env *e = s->env;
  const double noise = s->noise >= 0 ? s->noise : e->reset_noise;
  mj_resetData(m, d);
  for (int i = 0; i < m->nq; i++)
    d->qpos[i] = m->qpos0[i] + noise * (2.0 * evo_rng_uniform01(key.w, (uint64_t)i) - 1.0);
  for (int i = 0; i < m->nv; i++) {
    const uint64_t j = (uint64_t)(m->nq + i);
    d->qvel[i] = noise *
                 (e->qvel_normal ? evo_rng_normal(key.w, j) : 2.0 * evo_rng_uniform01(key.w, j) - 1.0);
  }
  mj_forward(m, d);
  if (e->needs_rne) mj_rnePostConstraint(m, d);
  e->observe(m, d, obs);
}

static evo_status evo_mj_reset(void *state, int64_t n, const evo_key *keys, float *obs) {
  evo_mj_task *s = state;
  evo_status st;
  if (n <= 0 || !keys || !obs)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "mujoco: reset needs n > 0 (got %lld), keys and obs", (long long)n);
  s->n = 0;
  if ((st = evo_mj_grow(s, n))) return st;
  const int od = s->env->obs_dim;
  jmp_buf jb;
  if (setjmp(jb)) {
    evo_mj_guard(NULL);
    return evo_error(EVO_STATUS_BACKEND, "mujoco: reset: %s", evo_mj_guard_message());
  }
  evo_mj_guard(&jb);
  for (int64_t i = 0; i < n; i++) {
    evo_mj_reset_one(s, s->d[i], keys[i], obs + i * od);
    memcpy(s->last_obs + i * od, obs + i * od, (size_t)od * sizeof *obs);
    s->t[i] = 0, s->done[i] = 0;
    memset(s->touch + 4 * i, 0, 4 * sizeof *s->touch);
  }
  evo_mj_guard(NULL);
  s->n = n;
  return EVO_STATUS_OK;
}

/* The warnings MuJoCo counts when it resets a diverged simulation. */
static const int evo_mj_divergence[] = {mjWARN_BADQPOS, mjWARN_BADQVEL, mjWARN_BADQACC};
static int evo_mj_diverged(mjData *d, int clear) {
  int n = 0;
  for (int w = 0; w < 3; w++) {
    n += d->warning[evo_mj_divergence[w]].number;
    if (clear) d->warning[evo_mj_divergence[w]].number = 0;
  }
  return n > 0;
}

/* Adds 1 to touch[f] for each foot f in contact with the floor now. */
static void evo_mj_count_touches(const evo_mj_task *s, const mjData *d, int64_t *touch) {
  for (int f = 0; f < s->env->n_feet; f++) {
    int on = 0;
    for (int c = 0; c < d->ncon && !on; c++) {
      const int g1 = d->contact[c].geom1, g2 = d->contact[c].geom2;
      on = (g1 == s->floor && g2 == s->feet[f]) || (g2 == s->floor && g1 == s->feet[f]);
    }
    touch[f] += on;
  }
}

/* Advances one live episode; returns its reward and sets *done. last: its previous observation. */
static float evo_mj_step_one(evo_mj_task *s, mjData *d, const float *a, int64_t *t, uint8_t *done, float *obs,
                             const float *last, int64_t *touch) {
  const mjModel *m = s->m;
  const evo_mj_env *e = s->env;
  evo_mj_step_info info = {0, 0, 0};
  for (int j = 0; j < m->nu; j++) d->ctrl[j] = a[j], info.ctrl_sq += (double)a[j] * a[j];
  evo_mj_diverged(d, 1);
  const double x0 = e->position(m, d);
  jmp_buf jb;
  if (setjmp(jb)) { /* a fatal MuJoCo error (e.g. its stack exhausted): the episode fails like a divergence */
    evo_mj_guard(NULL);
    memcpy(obs, last, (size_t)e->obs_dim * sizeof *obs); /* the data are mid-step: keep the last sound state */
    *t += 1, *done = 1;
    return NAN;
  }
  evo_mj_guard(&jb);
  for (int f = 0; f < e->frame_skip; f++) mj_step(m, d);
  if (e->needs_rne) mj_rnePostConstraint(m, d);
  evo_mj_guard(NULL);
  e->observe(m, d, obs);
  *t += 1;
  evo_mj_count_touches(s, d, touch);
  if (evo_mj_diverged(d, 0)) {
    *done = 1;
    return NAN;
  }
  info.velocity = (e->position(m, d) - x0) / (m->opt.timestep * e->frame_skip);
  info.healthy = e->healthy(m, d);
  const float r = (float)(e->reward(m, d, &info) - s->shift);
  *done = (s->terminate && !info.healthy) || *t >= s->max_steps;
  return r;
}

static evo_status evo_mj_step_range(void *state, int64_t begin, int64_t end, const void *actions, float *obs,
                                    float *reward, uint8_t *done) {
  evo_mj_task *s = state;
  if (s->n == 0) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "mujoco: step before reset");
  if (begin < 0 || end > s->n || begin > end)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "mujoco: step_range [%lld, %lld) of %lld episodes",
                     (long long)begin, (long long)end, (long long)s->n);
  const float *a = actions;
  const int od = s->env->obs_dim, nu = s->m->nu;
  for (int64_t i = begin; i < end; i++) {
    float *o = obs + i * od, *last = s->last_obs + i * od;
    if (s->done[i]) {
      memcpy(o, last, (size_t)od * sizeof *o);
      reward[i] = 0.0f, done[i] = 1;
      continue;
    }
    reward[i] = evo_mj_step_one(s, s->d[i], a + i * nu, &s->t[i], &s->done[i], o, last,
                                s->touch + 4 * i);
    done[i] = s->done[i];
    memcpy(last, o, (size_t)od * sizeof *o);
  }
  return EVO_STATUS_OK;
}

static evo_status evo_mj_step(void *state, const void *actions, float *obs, float *reward, uint8_t *done) {
  const evo_mj_task *s = state;
  return evo_mj_step_range(state, 0, s->n, actions, obs, reward, done);
}

/* Feet: the fraction of the episode's steps each foot ended on the floor; no feet: the root's final (x, y). */
static evo_status evo_mj_descriptor(void *state, float *bd) {
  const evo_mj_task *s = state;
  const int nf = s->env->n_feet;
  for (int64_t i = 0; i < s->n; i++) {
    if (nf == 0) {
      bd[2 * i] = (float)s->d[i]->qpos[0], bd[2 * i + 1] = (float)s->d[i]->qpos[1];
      continue;
    }
    for (int f = 0; f < nf; f++) bd[i * nf + f] = s->t[i] ? (float)s->touch[4 * i + f] / (float)s->t[i] : 0.0f;
  }
  return EVO_STATUS_OK;
}

mjData *evo_mj_task_data(void *state, int64_t i) {
  evo_mj_task *s = state;
  return i >= 0 && i < s->n ? s->d[i] : NULL;
}

const evo_task_vtable evo_task_mujoco = {
    .abi_version = EVO_TASK_ABI_VERSION,
    .name = "mujoco",
    .doc = "MuJoCo locomotion, Gymnasium v5 semantics (host task): options env (hopper; swimmer, hopper, "
           "halfcheetah, walker2d, ant, humanoid), max_steps (1000), terminate_when_unhealthy (true), "
           "reset_noise_scale (the env's), train_reward_shift (0); descriptor: feet contact (swimmer: final x, y)",
    .create = evo_mj_create,
    .spec = evo_mj_spec,
    .reset = evo_mj_reset,
    .step = evo_mj_step,
    .descriptor = evo_mj_descriptor,
    .destroy = evo_mj_destroy,
    .step_range = evo_mj_step_range,
};
