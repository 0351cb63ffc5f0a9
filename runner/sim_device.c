/* The simulation's rollout loop on a CUDA backend for device tasks: observations, actions, rewards, done flags,
   masks and returns stay in the backend's memory, every step is enqueued on its stream (task kernels, the policy's
   plan, the masking kernels of sim_cuda.cu), and the host reads back only the number of live episodes every
   check_interval steps, plus returns, NaN flags and step counts at the end of a rollout.

   The policy's plan replays as one CUDA Graph per step (core/jit.c), with fixed input/output tensors.
   Not yet done: capturing a whole chunk of check_interval steps (normaliser, plan, task step, masking) as one
   graph. The loop has no host sync between checks; what is missing is a way to record a plan's replay inside an
   outer capture (evo_plan_run begins its own capture when its tensors change, which fails inside another), then
   one graph per plan slot and normalize/update flags, re-recorded when a plan is rebuilt. */
#include <stdlib.h>
#include <string.h>
#include "backend_impl.h"
#include "sim_impl.h"
#ifdef EVOC_HAVE_CUDA
#include "sim_cuda.h"
#endif

bool evo_sim_device_path(const evo_task_spec *spec, const evo_backend *be) {
#ifdef EVOC_HAVE_CUDA
  return spec->place == EVO_TASK_DEVICE && !evo_backend_is_host(be) && evo_backend_stream(be) != NULL;
#else
  (void)spec, (void)be;
  return false;
#endif
}

void evo_sim_device_plan_free(rollout_plan *r) {
  evo_tensor *all[] = {r->d_keys, r->d_obs_all, r->d_reward, r->d_done, r->d_alive,
                       r->d_dact, r->d_ret,     r->d_steps,  r->d_bad,  r->d_count};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) evo_tensor_free(all[i]);
}

static evo_tensor *dev_new(evo_sim *s, evo_dtype dt, int64_t d0, int64_t d1, evo_status *st) {
  evo_tensor *t = evo_tensor_new(s->be, dt, d1 ? 2 : 1, (int64_t[]){d0, d1});
  if (!t && *st == EVO_STATUS_OK) *st = evo_sim_oom();
  return t;
}

evo_status evo_sim_device_plan_alloc(evo_sim *s, rollout_plan *r) {
  const int64_t E = (int64_t)r->n * r->reps;
  evo_status st = EVO_STATUS_OK;
  r->d_keys = dev_new(s, EVO_U32, E, 2, &st);
  if (r->shared) r->d_obs_all = dev_new(s, EVO_F32, E, s->obs_numel, &st);
  r->d_reward = dev_new(s, EVO_F32, E, 0, &st);
  r->d_done = dev_new(s, EVO_U8, E, 0, &st);
  r->d_alive = dev_new(s, EVO_U8, E, 0, &st);
  if (s->discrete && !s->policy_argmax) r->d_dact = dev_new(s, EVO_I32, E, 0, &st);
  r->d_ret = dev_new(s, EVO_F64, E, 0, &st);
  r->d_steps = dev_new(s, EVO_I32, E, 0, &st);
  r->d_bad = dev_new(s, EVO_U8, r->n, 0, &st);
  r->d_count = dev_new(s, EVO_I32, 1, 0, &st);
  if (st == EVO_STATUS_OK && !(r->steps_h = malloc(sizeof(int32_t) * (size_t)E))) st = evo_sim_oom();
  return st;
}

#ifdef EVOC_HAVE_CUDA

static void *buf(const evo_tensor *t) { return t ? evo_tensor_buffer(t) : NULL; }

evo_status evo_sim_device_norm_begin(evo_sim *s, bool update) {
  const int64_t m = s->obs_numel;
  float *use = malloc(sizeof(float) * 2 * (size_t)m);
  if (!use) return evo_sim_oom();
  memcpy(use, s->use_mean, sizeof(float) * (size_t)m);
  memcpy(use + m, s->use_sd, sizeof(float) * (size_t)m);
  evo_status st = evo_tensor_copy_from_host(s->d_use, use, sizeof(float) * 2 * (size_t)m);
  free(use);
  if (st == EVO_STATUS_OK && update)
    st = evo_sim_cuda_memset0(evo_backend_stream(s->be), buf(s->d_batch), evo_tensor_nbytes(s->d_batch));
  return st;
}

evo_status evo_sim_device_norm_end(evo_sim *s) {
  const int64_t m = s->obs_numel;
  double *b = malloc(sizeof(double) * 3 * (size_t)m);
  if (!b) return evo_sim_oom();
  evo_status st = evo_tensor_copy_to_host(s->d_batch, b, evo_tensor_nbytes(s->d_batch));
  if (st == EVO_STATUS_OK) {
    s->batch_count = b[0]; /* every component counted the same rows */
    memcpy(s->batch_mean, b + m, sizeof(double) * (size_t)m);
    memcpy(s->batch_m2, b + 2 * m, sizeof(double) * (size_t)m);
  }
  free(b);
  return st;
}

/* Uploads keys and NaN flags, starts the episodes and zeroes the recurrent state. */
static evo_status begin(evo_sim *s, rollout_plan *r, void *stream, int64_t E, int64_t n_valid, float *task_obs) {
  evo_status st = evo_sim_cuda_use_stream(stream);
  if (!st) st = evo_tensor_copy_from_host(r->d_keys, r->keys, sizeof(evo_key) * (size_t)E);
  if (!st) st = evo_tensor_copy_from_host(r->d_bad, r->bad, (size_t)r->n);
  if (!st) st = evo_sim_cuda_begin(stream, E, n_valid, buf(r->d_alive), buf(r->d_ret), buf(r->d_steps));
  for (int k = 0; !st && k < s->n_state; k++)
    st = evo_sim_cuda_memset0(stream, buf(r->state[0][k]), evo_tensor_nbytes(r->state[0][k]));
  if (!st) st = evo_task_reset(s->task, E, buf(r->d_keys), task_obs);
  return st;
}

/* Returns, NaN flags and step counts back to the host (the last reads of the rollout wait for the stream). */
static evo_status finish(evo_sim *s, rollout_plan *r, int64_t E, int64_t n_valid) {
  evo_status st = evo_tensor_copy_to_host(r->d_ret, r->ret, sizeof(double) * (size_t)E);
  if (!st) st = evo_tensor_copy_to_host(r->d_bad, r->bad, (size_t)r->n);
  if (!st) st = evo_tensor_copy_to_host(r->d_steps, r->steps_h, sizeof(int32_t) * (size_t)E);
  if (st) return st;
  for (int64_t e = 0; e < n_valid; e++) s->stats.env_steps += r->steps_h[e];
  s->stats.evaluations += n_valid;
  return EVO_STATUS_OK;
}

evo_status evo_sim_rollout_device(evo_sim *s, rollout_plan *r, int64_t n_valid, bool update_norm) {
  const int64_t E = (int64_t)r->n * r->reps, m = s->obs_numel;
  const int64_t obs_rows = r->shared ? r->reps : E;
  void *stream = evo_backend_stream(s->be);
  /* The task writes all E rows; with shared observations the plan's input is the first reps of them. */
  float *task_obs = r->shared ? buf(r->d_obs_all) : buf(r->obs), *obs = buf(r->obs);
  float *reward = buf(r->d_reward);
  uint8_t *done = buf(r->d_done), *alive = buf(r->d_alive), *bad = buf(r->d_bad);
  evo_status st = begin(s, r, stream, E, n_valid, task_obs);
  int64_t n_alive = n_valid;
  /* The plan always reads state[0] and writes state[1], copied back after the run: ping-ponging the tensors
     would make the plan re-record its CUDA Graph every step. */
  evo_tensor *in[4] = {r->params, r->obs, r->state[0][0], r->state[0][1]};
  evo_tensor *outs[3] = {r->act, r->state[1][0], r->state[1][1]};
  for (int64_t t = 0; !st && t < s->max_steps && n_alive > 0; t++) {
    if (r->shared) st = evo_sim_cuda_copy(stream, obs, task_obs, sizeof(float) * (size_t)(obs_rows * m));
    if (!st && update_norm)
      st = evo_sim_cuda_norm_accumulate(stream, obs, alive, obs_rows, m,
                                        r->shared ? (double)(n_valid / r->reps) : 1.0, buf(s->d_batch));
    if (!st && s->p.normalize_obs) st = evo_sim_cuda_normalize(stream, obs, obs_rows, m, buf(s->d_use));
    if (!st) st = evo_plan_run(r->plan, in, outs);
    for (int k = 0; !st && k < s->n_state; k++)
      st = evo_sim_cuda_copy(stream, buf(r->state[0][k]), buf(r->state[1][k]), evo_tensor_nbytes(r->state[0][k]));
    const void *act = buf(r->act);
    if (!st && !s->policy_argmax) {
      st = evo_sim_cuda_actions(stream, buf(r->act), E, s->act_numel, n_valid, alive, bad, r->reps,
                                buf(r->d_dact));
      if (s->discrete) act = buf(r->d_dact);
    }
    if (!st) st = evo_task_step(s->task, act, task_obs, reward, done);
    s->stats.batch_steps++;
    if (!st)
      st = evo_sim_cuda_mask(stream, reward, done, alive, buf(r->d_ret), buf(r->d_steps), bad, n_valid, r->reps,
                             buf(r->state[0][0]), buf(r->state[0][1]), s->state_size);
    /* The only host sync of the loop: how many episodes are still alive, every check_interval steps. */
    if (!st && ((t + 1) % s->p.check_interval == 0 || t + 1 == s->max_steps)) {
      int32_t count;
      st = evo_sim_cuda_count_alive(stream, alive, n_valid, buf(r->d_count));
      if (!st) st = evo_tensor_copy_to_host(r->d_count, &count, sizeof count);
      n_alive = count;
    }
  }
  return st ? st : finish(s, r, E, n_valid);
}

#else /* without CUDA there is no device path (evo_sim_device_path is false) */

evo_status evo_sim_device_norm_begin(evo_sim *s, bool update) {
  (void)s, (void)update;
  return evo_error(EVO_STATUS_UNSUPPORTED, "sim: device path without CUDA");
}

evo_status evo_sim_device_norm_end(evo_sim *s) { return evo_sim_device_norm_begin(s, false); }

evo_status evo_sim_rollout_device(evo_sim *s, rollout_plan *r, int64_t n_valid, bool update_norm) {
  (void)r, (void)n_valid, (void)update_norm;
  return evo_sim_device_norm_begin(s, false);
}

#endif
