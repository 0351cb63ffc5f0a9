/* A complete evoc task plugin: pendulum swing-up with the dynamics of Gym's Pendulum-v1.
 *
 * Build it with the CMakeLists.txt next to this file (a MODULE library, libpendulum_task.so) and load it with
 *     task: {plugin: ./libpendulum_task.so, max_steps: 200}
 * The library exports exactly one symbol, evo_task_plugin_entry, returning the task's vtable (include/evoc/task.h
 * documents the contract). Everything else is static. The evo_* functions it calls (config readers, RNG, errors)
 * are resolved from the program that loads it.
 *
 * Task: theta = 0 is upright. State (theta, theta_dot); observation [cos theta, sin theta, theta_dot]; action [1],
 * a torque clipped to [-2, 2]; reward -(angle_normalize(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2) of the state before
 * the step (as Gym); 200 steps, no other termination. Start: theta ~ U(-pi, pi), theta_dot ~ U(-1, 1).
 * Returns range from about -1600 (never swinging up) to about -150 (swinging up fast and balancing).
 * Options: max_steps (200), g (10).
 *
 * Episodes are independent, so the task also offers step_range (spec flag EVO_TASK_FLAG_STEP_RANGE): evoc then
 * steps its episodes in ranges on several threads (trainer.task_threads). step is step_range over all episodes.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/task.h"

#define PENDULUM_PI 3.14159265358979323846f
#define PENDULUM_MAX_SPEED 8.0f
#define PENDULUM_MAX_TORQUE 2.0f
#define PENDULUM_DT 0.05f
#define PENDULUM_M 1.0f
#define PENDULUM_L 1.0f

typedef struct {
  float g;
  int64_t max_steps;
  int64_t n, cap;
  float *th, *thdot;
  int32_t *t;
  uint8_t *done;
} pendulum;

static void pendulum_destroy(void *state) {
  pendulum *p = state;
  if (!p) return;
  free(p->th);
  free(p->thdot);
  free(p->t);
  free(p->done);
  free(p);
}

/* Options through the config API: a bad value gets the same "file:line:col" error as a built-in task's. */
static evo_status pendulum_create(evo_cfg *cfg, const evo_task_args *args, void **state) {
  (void)args;
  int64_t max_steps = 200;
  double g = 10.0;
  evo_status st;
  if (cfg && ((st = evo_cfg_int(cfg, "max_steps", max_steps, 1, 1000000, &max_steps)) ||
              (st = evo_cfg_double(cfg, "g", g, 0.0, 100.0, &g))))
    return st;
  pendulum *p = calloc(1, sizeof *p);
  if (!p) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "pendulum: out of memory");
  p->g = (float)g;
  p->max_steps = max_steps;
  *state = p;
  return EVO_STATUS_OK;
}

static void pendulum_spec(const void *state, evo_task_spec *out) {
  const pendulum *p = state;
  memset(out, 0, sizeof *out);
  out->obs_ndim = 1;
  out->obs_shape[0] = 3;
  out->act_ndim = 1;
  out->act_shape[0] = 1;
  out->action_kind = EVO_ACTION_CONTINUOUS;
  out->max_steps = p->max_steps;
  out->place = EVO_TASK_HOST; /* plain C on the host; evoc copies obs/actions to and from the device */
  out->bd_dim = 0;
  out->flags = EVO_TASK_FLAG_STEP_RANGE; /* per-episode state only: ranges may step concurrently */
}

static void pendulum_obs(const pendulum *p, int64_t i, float *obs) {
  obs[3 * i + 0] = cosf(p->th[i]);
  obs[3 * i + 1] = sinf(p->th[i]);
  obs[3 * i + 2] = p->thdot[i];
}

static evo_status pendulum_reset(void *state, int64_t n, const evo_key *keys, float *obs) {
  pendulum *p = state;
  if (n > p->cap) {
    float *th = realloc(p->th, (size_t)n * sizeof *th);
    if (th) p->th = th;
    float *thdot = realloc(p->thdot, (size_t)n * sizeof *thdot);
    if (thdot) p->thdot = thdot;
    int32_t *t = realloc(p->t, (size_t)n * sizeof *t);
    if (t) p->t = t;
    uint8_t *done = realloc(p->done, (size_t)n);
    if (done) p->done = done;
    if (!th || !thdot || !t || !done) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "pendulum: out of memory");
    p->cap = n;
  }
  p->n = n;
  for (int64_t i = 0; i < n; i++) {
    /* Episode i's start depends on keys[i] only (elements 0 and 1 of its stream). */
    p->th[i] = (2.0f * evo_rng_uniform01(keys[i].w, 0) - 1.0f) * PENDULUM_PI;
    p->thdot[i] = 2.0f * evo_rng_uniform01(keys[i].w, 1) - 1.0f;
    p->t[i] = 0;
    p->done[i] = 0;
    pendulum_obs(p, i, obs);
  }
  return EVO_STATUS_OK;
}

static float pendulum_angle_normalize(float x) {
  return x - 2.0f * PENDULUM_PI * floorf((x + PENDULUM_PI) / (2.0f * PENDULUM_PI));
}

/* Touches only episodes [begin, end): evoc may run disjoint ranges on several threads at once. */
static evo_status pendulum_step_range(void *state, int64_t begin, int64_t end, const void *actions, float *obs,
                                      float *reward, uint8_t *done) {
  pendulum *p = state;
  const float *a = actions;
  for (int64_t i = begin; i < end; i++) {
    float r = 0.0f;
    if (!p->done[i]) { /* a done episode stays frozen and earns nothing */
      float u = a[i] == a[i] ? fminf(fmaxf(a[i], -PENDULUM_MAX_TORQUE), PENDULUM_MAX_TORQUE) : 0.0f;
      float th = p->th[i], thdot = p->thdot[i], an = pendulum_angle_normalize(th);
      r = -(an * an + 0.1f * thdot * thdot + 0.001f * u * u);
      thdot += (3.0f * p->g / (2.0f * PENDULUM_L) * sinf(th) + 3.0f / (PENDULUM_M * PENDULUM_L * PENDULUM_L) * u) *
               PENDULUM_DT;
      thdot = fminf(fmaxf(thdot, -PENDULUM_MAX_SPEED), PENDULUM_MAX_SPEED);
      p->th[i] = th + thdot * PENDULUM_DT;
      p->thdot[i] = thdot;
      p->done[i] = ++p->t[i] >= p->max_steps;
    }
    pendulum_obs(p, i, obs);
    reward[i] = r;
    done[i] = p->done[i];
  }
  return EVO_STATUS_OK;
}

static evo_status pendulum_step(void *state, const void *actions, float *obs, float *reward, uint8_t *done) {
  return pendulum_step_range(state, 0, ((pendulum *)state)->n, actions, obs, reward, done);
}

static const evo_task_vtable pendulum_vtable = {
    .abi_version = EVO_TASK_ABI_VERSION,
    .name = "pendulum",
    .doc = "Pendulum swing-up (Gym Pendulum-v1): obs [cos, sin, theta_dot], torque [-2, 2], 200 steps",
    .create = pendulum_create,
    .spec = pendulum_spec,
    .reset = pendulum_reset,
    .step = pendulum_step,
    .descriptor = NULL,
    .destroy = pendulum_destroy,
    .step_range = pendulum_step_range,
};

__attribute__((visibility("default"))) const evo_task_vtable *evo_task_plugin_entry(void) { return &pendulum_vtable; }
