/* CartPole tasks (../shared/specs/cartpole.md): `cartpole_swingup` (EvoJAX's benchmark, variants easy|hard) and
   `cartpole_balance` (Gym CartPole-v1). The physics lives in cartpole_physics.h, shared with the CUDA kernels.
   With a CUDA backend the episodes live on the device and step there (cartpole_cuda.cu); otherwise on the host,
   where the batched step is also offered in sub-ranges (step_range) for the simulation's task threads.

   Episodes that are done stay frozen: their state no longer changes, they report done = 1 and reward 0, so the
   task itself never counts anything after done (the simulation manager masks as well) and never produces NaN. */
#include <stdlib.h>
#include <string.h>
#include "backend_impl.h"
#include "cartpole_impl.h"
#include "task_impl.h"

/* Below this many episodes a step is too cheap (~50 flops each) to be worth waking the OpenMP team. */
#define EVO_CARTPOLE_OMP_MIN 4096

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
  /* Host memory is the CPU backend's device memory. On a CUDA backend the arrays and kernels go to its device;
     any other backend gets a host task (the simulation manager copies). */
  evo_backend *be = args ? args->backend : NULL;
  c->place = evo_task_backend_is_host(be) ? EVO_TASK_DEVICE : EVO_TASK_HOST;
#ifdef EVOC_HAVE_CUDA
  if (!evo_task_backend_is_host(be) && evo_backend_stream(be)) {
    c->dev = be;
    c->stream = evo_backend_stream(be);
    c->place = EVO_TASK_DEVICE;
  }
#endif
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
  out->flags = c->dev ? EVO_TASK_FLAG_GRAPH_SAFE : EVO_TASK_FLAG_STEP_RANGE; /* its kernels only enqueue */
}

static const char *evo_cartpole_name(evo_cartpole_kind k) {
  return k == EVO_CARTPOLE_SWINGUP ? "cartpole_swingup" : "cartpole_balance";
}

static int64_t evo_cartpole_obs_dim(const evo_cartpole *c) { return c->kind == EVO_CARTPOLE_SWINGUP ? 5 : 4; }

static void evo_cartpole_free_arrays(evo_cartpole *c) {
  if (c->dev) {
    evo_backend_release(c->dev, c->s);
    evo_backend_release(c->dev, c->steps);
    evo_backend_release(c->dev, c->done);
  } else {
    free(c->s);
    free(c->steps);
    free(c->done);
  }
  c->s = NULL, c->steps = NULL, c->done = NULL;
  c->n = c->cap = 0;
}

static void *evo_cartpole_alloc(evo_cartpole *c, size_t nbytes) {
  return c->dev ? evo_backend_alloc(c->dev, nbytes) : malloc(nbytes);
}

/* Room for n episodes (the old contents need not survive: reset rewrites them). */
static evo_status evo_cartpole_reserve(evo_cartpole *c, int64_t n) {
  if (n <= c->cap) return EVO_STATUS_OK;
  evo_cartpole_free_arrays(c);
  c->s = evo_cartpole_alloc(c, (size_t)n * sizeof *c->s);
  c->steps = evo_cartpole_alloc(c, (size_t)n * sizeof *c->steps);
  c->done = evo_cartpole_alloc(c, (size_t)n);
  if (!c->s || !c->steps || !c->done) {
    evo_cartpole_free_arrays(c);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of %s memory for %lld episodes",
                     evo_cartpole_name(c->kind), c->dev ? "device" : "host", (long long)n);
  }
  c->cap = n;
  return EVO_STATUS_OK;
}

static evo_status evo_cartpole_reset(void *state, int64_t n, const evo_key *keys, float *obs) {
  evo_cartpole *c = state;
  if (n <= 0 || !keys || !obs)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cartpole: reset needs n > 0 (got %lld), keys and obs",
                     (long long)n);
  c->n = 0;
  evo_status st = evo_cartpole_reserve(c, n);
  if (st) return st;
#ifdef EVOC_HAVE_CUDA
  if (c->dev) {
    if ((st = evo_cartpole_cuda_reset(c, n, keys, obs))) return st;
    c->n = n;
    return EVO_STATUS_OK;
  }
#endif
  c->n = n;
  const int64_t od = evo_cartpole_obs_dim(c);
#pragma omp parallel for if (n >= EVO_CARTPOLE_OMP_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    c->s[i] = evo_cartpole_initial(c->kind, c->hard, keys[i].w[0], keys[i].w[1]);
    c->steps[i] = 0;
    c->done[i] = 0;
    evo_cartpole_obs(c->kind, c->s[i], obs + i * od);
  }
  return EVO_STATUS_OK;
}

static evo_status evo_cartpole_step_check(const evo_cartpole *c, const void *actions, float *obs, float *reward,
                                          uint8_t *done) {
  if (c->n == 0) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: step before reset", evo_cartpole_name(c->kind));
  if (!actions || !obs || !reward || !done)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: step needs actions, obs, reward and done",
                     evo_cartpole_name(c->kind));
  return EVO_STATUS_OK;
}

/* Balance actions are validated before anything moves, so that a bad call changes nothing (in its range). */
static evo_status evo_cartpole_check_actions(const evo_cartpole *c, int64_t begin, int64_t end, const void *actions) {
  if (c->kind != EVO_CARTPOLE_BALANCE) return EVO_STATUS_OK;
  const int32_t *a = actions;
  for (int64_t i = begin; i < end; i++)
    if (!c->done[i] && a[i] != 0 && a[i] != 1)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cartpole_balance: action of episode %lld is %d, not 0 or 1",
                       (long long)i, (int)a[i]);
  return EVO_STATUS_OK;
}

static inline void evo_cartpole_advance(evo_cartpole *c, int64_t i, const void *actions, float *obs, float *reward,
                                        uint8_t *done) {
  if (c->kind == EVO_CARTPOLE_SWINGUP)
    reward[i] = evo_cartpole_swingup_advance(&c->s[i], &c->steps[i], &c->done[i], ((const float *)actions)[i],
                                             c->max_steps, obs + i * 5);
  else
    reward[i] = evo_cartpole_balance_advance(&c->s[i], &c->steps[i], &c->done[i], ((const int32_t *)actions)[i],
                                             c->max_steps, obs + i * 4);
  done[i] = c->done[i];
}

static evo_status evo_cartpole_step(void *state, const void *actions, float *obs, float *reward, uint8_t *done) {
  evo_cartpole *c = state;
  const int64_t n = c->n;
  evo_status st = evo_cartpole_step_check(c, actions, obs, reward, done);
  if (st) return st;
#ifdef EVOC_HAVE_CUDA
  if (c->dev) return evo_cartpole_cuda_step(c, actions, obs, reward, done);
#endif
  if ((st = evo_cartpole_check_actions(c, 0, n, actions))) return st;
#pragma omp parallel for if (n >= EVO_CARTPOLE_OMP_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) evo_cartpole_advance(c, i, actions, obs, reward, done);
  return EVO_STATUS_OK;
}

/* The simulation's task threads call this concurrently on disjoint ranges: per-episode state only, no OpenMP. */
static evo_status evo_cartpole_step_range(void *state, int64_t begin, int64_t end, const void *actions, float *obs,
                                          float *reward, uint8_t *done) {
  evo_cartpole *c = state;
  evo_status st = evo_cartpole_step_check(c, actions, obs, reward, done);
  if (st) return st;
  if (c->dev || begin < 0 || begin > end || end > c->n)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: step_range [%lld, %lld) of %lld host episodes",
                     evo_cartpole_name(c->kind), (long long)begin, (long long)end, (long long)c->n);
  if ((st = evo_cartpole_check_actions(c, begin, end, actions))) return st;
  for (int64_t i = begin; i < end; i++) evo_cartpole_advance(c, i, actions, obs, reward, done);
  return EVO_STATUS_OK;
}

static void evo_cartpole_destroy(void *state) {
  evo_cartpole *c = state;
  if (!c) return;
  evo_cartpole_free_arrays(c);
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
    .step_range = evo_cartpole_step_range,
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
    .step_range = evo_cartpole_step_range,
};
