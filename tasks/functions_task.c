/* The `functions` task: the benchmark functions of include/evoc/functions.h served through the task interface, so
   that black-box optimisation runs through the same trainer, logging and sweeps as the control tasks.

   Each episode is one evaluation. There is nothing to observe, so the observation is a single 0 and the "policy" is
   the identity on its parameters: the action, continuous [dim], is the point itself. reward = -f(point) (the
   trainer maximises), done after that one step; later steps of a done episode return reward 0. The behaviour
   descriptor (for MAP-Elites) is the first min(dim, 2) coordinates of the evaluated point, the usual projection in
   QD benchmarks on these functions.

   Options: function (sphere), dim (10), rotate (false), shift (0: optimum offset drawn in [-shift, shift]^dim).
   The rotation and shift come from the task seed (evo_task_args.seed), not from the episode keys, so every member
   of every generation sees the same function. */
#include <stdlib.h>
#include <string.h>
#include "task_impl.h"
#include "evoc/functions.h"

#define EVO_FN_TASK_KEY_TAG 0x666e7463u /* 'fntc': keeps this use of the seed apart from others */

typedef struct {
  evo_fn *fn;
  int64_t dim;
  int bd_dim;
  int64_t n, cap;
  uint8_t *done;
  float *bd;  /* [cap, bd_dim] */
  double *f;  /* [cap] function values of one step */
} evo_fn_task;

static void evo_fn_task_destroy(void *state) {
  evo_fn_task *t = state;
  if (!t) return;
  evo_fn_free(t->fn);
  free(t->done);
  free(t->bd);
  free(t->f);
  free(t);
}

static evo_status evo_fn_task_create(evo_cfg *cfg, const evo_task_args *args, void **state) {
  const char *choices[EVO_FN_COUNT + 1];
  for (int k = 0; k < EVO_FN_COUNT; k++) choices[k] = evo_fn_name((evo_fn_kind)k);
  choices[EVO_FN_COUNT] = NULL;
  const char *name = evo_fn_name(EVO_FN_SPHERE);
  int64_t dim = 10;
  bool rotate = false;
  double shift = 0.0;
  evo_status st;
  if (!state) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "functions: NULL state pointer");
  *state = NULL;
  if (cfg && ((st = evo_cfg_string(cfg, "function", name, choices, &name)) ||
              (st = evo_cfg_int(cfg, "dim", dim, 1, 100000000, &dim)) ||
              (st = evo_cfg_bool(cfg, "rotate", rotate, &rotate)) ||
              (st = evo_cfg_double(cfg, "shift", shift, 0.0, 1e6, &shift))))
    return st;
  int kind = evo_fn_from_name(name);
  if (kind < 0) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "functions: unknown function '%s'", name);
  evo_fn_task *t = calloc(1, sizeof *t);
  if (!t) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "functions: out of memory");
  evo_key key = evo_key_fold_in(evo_key_from_seed(args ? args->seed : 0), EVO_FN_TASK_KEY_TAG);
  if ((st = evo_fn_new((evo_fn_kind)kind, dim, rotate, shift, key, &t->fn))) {
    evo_fn_task_destroy(t);
    return st;
  }
  t->dim = dim;
  t->bd_dim = dim < 2 ? (int)dim : 2;
  *state = t;
  return EVO_STATUS_OK;
}

static void evo_fn_task_spec(const void *state, evo_task_spec *out) {
  const evo_fn_task *t = state;
  memset(out, 0, sizeof *out);
  out->obs_ndim = 1;
  out->obs_shape[0] = 1;
  out->act_ndim = 1;
  out->act_shape[0] = t->dim;
  out->action_kind = EVO_ACTION_CONTINUOUS;
  out->max_steps = 1;
  out->place = EVO_TASK_HOST;
  out->bd_dim = t->bd_dim;
}

static evo_status evo_fn_task_reset(void *state, int64_t n, const evo_key *keys, float *obs) {
  evo_fn_task *t = state;
  (void)keys; /* nothing random per episode */
  if (n <= 0 || !obs)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "functions: reset needs n > 0 (got %lld) and obs", (long long)n);
  if (n > t->cap) {
    uint8_t *done = realloc(t->done, (size_t)n);
    if (done) t->done = done;
    float *bd = realloc(t->bd, (size_t)n * (size_t)t->bd_dim * sizeof *bd);
    if (bd) t->bd = bd;
    double *f = realloc(t->f, (size_t)n * sizeof *f);
    if (f) t->f = f;
    if (!done || !bd || !f) {
      t->n = 0;
      return evo_error(EVO_STATUS_OUT_OF_MEMORY, "functions: out of memory for %lld episodes", (long long)n);
    }
    t->cap = n;
  }
  t->n = n;
  memset(t->done, 0, (size_t)n);
  memset(t->bd, 0, (size_t)n * (size_t)t->bd_dim * sizeof *t->bd);
  memset(obs, 0, (size_t)n * sizeof *obs);
  return EVO_STATUS_OK;
}

static evo_status evo_fn_task_step(void *state, const void *actions, float *obs, float *reward, uint8_t *done) {
  evo_fn_task *t = state;
  const int64_t n = t->n, dim = t->dim;
  if (n == 0) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "functions: step before reset");
  if (!actions || !obs || !reward || !done)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "functions: step needs actions, obs, reward and done");
  const float *a = actions;
  int all_live = n <= INT32_MAX;
  for (int64_t i = 0; i < n && all_live; i++) all_live = !t->done[i];
  /* The usual call (every episode at its one step) goes through the batched, threaded evaluation. */
  if (all_live) evo_fn_eval_batch(t->fn, a, (int)n, t->f);
  for (int64_t i = 0; i < n; i++) {
    float r = 0.0f;
    if (!t->done[i]) {
      const float *x = a + i * dim;
      r = (float)-(all_live ? t->f[i] : evo_fn_eval_f32(t->fn, x));
      for (int j = 0; j < t->bd_dim; j++) t->bd[i * t->bd_dim + j] = x[j];
      t->done[i] = 1;
    }
    obs[i] = 0.0f;
    reward[i] = r;
    done[i] = 1;
  }
  return EVO_STATUS_OK;
}

static evo_status evo_fn_task_descriptor(void *state, float *bd) {
  evo_fn_task *t = state;
  memcpy(bd, t->bd, (size_t)t->n * (size_t)t->bd_dim * sizeof *bd);
  return EVO_STATUS_OK;
}

const evo_task_vtable evo_task_functions = {
    .abi_version = EVO_TASK_ABI_VERSION,
    .name = "functions",
    .doc = "Black-box benchmark function as a one-step task: action [dim] = the point, reward = -f(point); "
           "options function (sphere), dim (10), rotate (false), shift (0)",
    .create = evo_fn_task_create,
    .spec = evo_fn_task_spec,
    .reset = evo_fn_task_reset,
    .step = evo_fn_task_step,
    .descriptor = evo_fn_task_descriptor,
    .destroy = evo_fn_task_destroy,
};
