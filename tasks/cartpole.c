/* CartPole tasks (../shared/specs/cartpole.md): `cartpole_swingup` (EvoJAX's benchmark, variants easy|hard) and
   `cartpole_balance` (Gym CartPole-v1). The physics lives in cartpole_physics.h, shared with the CUDA kernel.

   Episodes that are done stay frozen: their state no longer changes, they report done = 1 and reward 0, so the
   task itself never counts anything after done (the simulation manager masks as well) and never produces NaN. */
#include <stdlib.h>
#include <string.h>
#include "cartpole_physics.h"
#include "task_impl.h"

/* Below this many episodes a step is too cheap (~50 flops each) to be worth waking the OpenMP team. */
#define EVO_CARTPOLE_OMP_MIN 4096

typedef enum { EVO_CARTPOLE_SWINGUP = 0, EVO_CARTPOLE_BALANCE = 1 } evo_cartpole_kind;

typedef struct {
  evo_cartpole_kind kind;
  int hard; /* swing-up variant */
  int64_t max_steps;
  evo_task_place place;
  int64_t n, cap; /* episodes of the last reset; allocated */
  evo_cartpole_state *s;
  int32_t *steps;
  uint8_t *done;
} evo_cartpole;

static evo_status evo_cartpole_create(evo_cartpole_kind kind, evo_cfg *cfg, const evo_task_args *args,
                                      void **state) {
  static const char *const variants[] = {"easy", "hard", NULL};
  const char *variant = "easy";
  int64_t max_steps = kind == EVO_CARTPOLE_SWINGUP ? 1000 : 500;
  evo_status st;
  if (!state) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cartpole: NULL state pointer");
  *state = NULL;
  if (cfg) {
    if (kind == EVO_CARTPOLE_SWINGUP && (st = evo_cfg_string(cfg, "variant", variant, variants, &variant)))
      return st;
    if ((st = evo_cfg_int(cfg, "max_steps", max_steps, 1, INT32_MAX, &max_steps))) return st;
  }
  evo_cartpole *c = calloc(1, sizeof *c);
  if (!c) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "cartpole: out of memory");
  c->kind = kind;
  c->hard = strcmp(variant, "hard") == 0;
  c->max_steps = max_steps;
  /* The state arrays are host memory: on the CPU backend that is the device memory, elsewhere (until the CUDA
     kernel is wired in) the simulation manager must treat this as a host task and copy. */
  c->place = evo_task_backend_is_host(args ? args->backend : NULL) ? EVO_TASK_DEVICE : EVO_TASK_HOST;
  *state = c;
  return EVO_STATUS_OK;
}

static evo_status evo_cartpole_swingup_create(evo_cfg *cfg, const evo_task_args *args, void **state) {
  return evo_cartpole_create(EVO_CARTPOLE_SWINGUP, cfg, args, state);
}

static evo_status evo_cartpole_balance_create(evo_cfg *cfg, const evo_task_args *args, void **state) {
  return evo_cartpole_create(EVO_CARTPOLE_BALANCE, cfg, args, state);
}

static void evo_cartpole_spec(const void *state, evo_task_spec *out) {
  const evo_cartpole *c = state;
  memset(out, 0, sizeof *out);
  out->obs_ndim = 1;
  out->act_ndim = 1;
  if (c->kind == EVO_CARTPOLE_SWINGUP) {
    out->obs_shape[0] = 5;
    out->act_shape[0] = 1;
    out->action_kind = EVO_ACTION_CONTINUOUS;
  } else {
    out->obs_shape[0] = 4;
    out->act_shape[0] = 2;
    out->action_kind = EVO_ACTION_DISCRETE;
  }
  out->max_steps = c->max_steps;
  out->place = c->place;
}

static const char *evo_cartpole_name(evo_cartpole_kind k) {
  return k == EVO_CARTPOLE_SWINGUP ? "cartpole_swingup" : "cartpole_balance";
}

static int64_t evo_cartpole_obs_dim(const evo_cartpole *c) { return c->kind == EVO_CARTPOLE_SWINGUP ? 5 : 4; }

static void evo_cartpole_write_obs(const evo_cartpole *c, evo_cartpole_state s, float *obs) {
  if (c->kind == EVO_CARTPOLE_SWINGUP)
    evo_cartpole_swingup_obs(s, obs);
  else
    evo_cartpole_balance_obs(s, obs);
}

/* Episode i's initial state from keys[i] alone: element j of its stream perturbs state component j. */
static evo_cartpole_state evo_cartpole_initial(const evo_cartpole *c, evo_key k) {
  float v[4];
  if (c->kind == EVO_CARTPOLE_BALANCE) {
    for (int j = 0; j < 4; j++) v[j] = -0.05f + 0.1f * evo_rng_uniform01(k.w, (uint64_t)j);
  } else if (c->hard) {
    static const float scale[4] = {EVO_CARTPOLE_X_LIMIT, 10.0f, EVO_CARTPOLE_PI / 2.0f, 10.0f};
    for (int j = 0; j < 4; j++) v[j] = (evo_rng_uniform01(k.w, (uint64_t)j) * 2.0f - 1.0f) * scale[j];
    v[2] += EVO_CARTPOLE_PI;
  } else {
    for (int j = 0; j < 4; j++) v[j] = 0.2f * evo_rng_normal(k.w, (uint64_t)j);
    v[2] += EVO_CARTPOLE_PI;
  }
  evo_cartpole_state s = {v[0], v[1], v[2], v[3]};
  return s;
}

static evo_status evo_cartpole_reset(void *state, int64_t n, const evo_key *keys, float *obs) {
  evo_cartpole *c = state;
  if (n <= 0 || !keys || !obs)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cartpole: reset needs n > 0 (got %lld), keys and obs",
                     (long long)n);
  if (n > c->cap) {
    evo_cartpole_state *s = realloc(c->s, (size_t)n * sizeof *s);
    if (s) c->s = s;
    int32_t *steps = realloc(c->steps, (size_t)n * sizeof *steps);
    if (steps) c->steps = steps;
    uint8_t *done = realloc(c->done, (size_t)n);
    if (done) c->done = done;
    if (!s || !steps || !done) {
      c->n = 0;
      return evo_error(EVO_STATUS_OUT_OF_MEMORY, "cartpole: out of memory for %lld episodes", (long long)n);
    }
    c->cap = n;
  }
  c->n = n;
  const int64_t od = evo_cartpole_obs_dim(c);
#pragma omp parallel for if (n >= EVO_CARTPOLE_OMP_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    c->s[i] = evo_cartpole_initial(c, keys[i]);
    c->steps[i] = 0;
    c->done[i] = 0;
    evo_cartpole_write_obs(c, c->s[i], obs + i * od);
  }
  return EVO_STATUS_OK;
}

static evo_status evo_cartpole_step(void *state, const void *actions, float *obs, float *reward, uint8_t *done) {
  evo_cartpole *c = state;
  const int64_t n = c->n, od = evo_cartpole_obs_dim(c), max_steps = c->max_steps;
  if (n == 0) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: step before reset", evo_cartpole_name(c->kind));
  if (!actions || !obs || !reward || !done)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: step needs actions, obs, reward and done",
                     evo_cartpole_name(c->kind));
  if (c->kind == EVO_CARTPOLE_SWINGUP) {
    const float *a = actions;
#pragma omp parallel for if (n >= EVO_CARTPOLE_OMP_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
      float r = 0.0f;
      if (!c->done[i]) {
        evo_cartpole_state s = evo_cartpole_swingup_step(c->s[i], a[i]);
        c->s[i] = s;
        r = evo_cartpole_swingup_reward(s);
        int32_t t = ++c->steps[i];
        c->done[i] = evo_cartpole_out_of_track(s) || t >= max_steps;
      }
      evo_cartpole_swingup_obs(c->s[i], obs + i * od);
      reward[i] = r;
      done[i] = c->done[i];
    }
    return EVO_STATUS_OK;
  }
  const int32_t *a = actions;
  for (int64_t i = 0; i < n; i++) /* validated first so that a bad call changes nothing */
    if (!c->done[i] && a[i] != 0 && a[i] != 1)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cartpole_balance: action of episode %lld is %d, not 0 or 1",
                       (long long)i, (int)a[i]);
#pragma omp parallel for if (n >= EVO_CARTPOLE_OMP_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float r = 0.0f;
    if (!c->done[i]) {
      evo_cartpole_state s = evo_cartpole_balance_step(c->s[i], a[i]);
      c->s[i] = s;
      r = 1.0f; /* Gym pays the terminating step too */
      int32_t t = ++c->steps[i];
      c->done[i] = evo_cartpole_balance_failed(s) || t >= max_steps;
    }
    evo_cartpole_balance_obs(c->s[i], obs + i * od);
    reward[i] = r;
    done[i] = c->done[i];
  }
  return EVO_STATUS_OK;
}

static void evo_cartpole_destroy(void *state) {
  evo_cartpole *c = state;
  if (!c) return;
  free(c->s);
  free(c->steps);
  free(c->done);
  free(c);
}

const evo_task_vtable evo_task_cartpole_swingup = {
    .abi_version = EVO_TASK_ABI_VERSION,
    .name = "cartpole_swingup",
    .doc = "Cart-pole swing-up (EvoJAX): obs 5, continuous action 1, reward up to 1 per step; "
           "options variant: easy|hard (easy), max_steps (1000)",
    .create = evo_cartpole_swingup_create,
    .spec = evo_cartpole_spec,
    .reset = evo_cartpole_reset,
    .step = evo_cartpole_step,
    .descriptor = NULL,
    .destroy = evo_cartpole_destroy,
};

const evo_task_vtable evo_task_cartpole_balance = {
    .abi_version = EVO_TASK_ABI_VERSION,
    .name = "cartpole_balance",
    .doc = "Cart-pole balance (Gym CartPole-v1): obs 4, 2 discrete actions, reward 1 per step; "
           "options max_steps (500)",
    .create = evo_cartpole_balance_create,
    .spec = evo_cartpole_spec,
    .reset = evo_cartpole_reset,
    .step = evo_cartpole_step,
    .descriptor = NULL,
    .destroy = evo_cartpole_destroy,
};
