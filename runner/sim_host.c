/* The simulation's rollout loop over host memory: the task steps on the host (on several threads when it allows
   sub-ranges), the policy's plan runs on the sim's backend, with one copy of observations and actions each way per
   step when that backend is a device. Masking, returns, NaN accounting and the early exit happen here per step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend_impl.h"
#include "sim_impl.h"

/* Turns the policy's output into the task's actions; marks the member of an alive episode with non-finite output
   and feeds that episode zeros (every episode is sanitised, so a padded or finished one cannot put NaN into the
   task either). Returns the action pointer for the task. */
static const void *actions_for_task(const evo_sim *s, rollout_plan *r, int64_t E, int64_t n_valid) {
  if (s->policy_argmax) return r->act_h;
  float *a = r->act_h;
  const int64_t k = s->act_numel;
  for (int64_t e = 0; e < E; e++) {
    float *ae = a + e * k;
    int finite = 1;
    for (int64_t j = 0; j < k; j++) finite &= isfinite(ae[j]) != 0;
    if (!finite) {
      if (e < n_valid && r->alive[e]) r->bad[e / r->reps] = 1;
      memset(ae, 0, sizeof(float) * (size_t)k);
    }
  }
  if (!s->discrete) return a;
  for (int64_t e = 0; e < E; e++) { /* scores -> argmax, first maximum wins */
    const float *ae = a + e * k;
    int32_t best = 0;
    for (int64_t j = 1; j < k; j++)
      if (ae[j] > ae[best]) best = (int32_t)j;
    r->dact[e] = best;
  }
  return r->dact;
}

static evo_status zero_tensor(evo_tensor *t) {
  size_t nb = evo_tensor_nbytes(t);
  void *h = evo_tensor_data(t);
  if (h) {
    memset(h, 0, nb);
    return EVO_STATUS_OK;
  }
  if (!(h = calloc(1, nb))) return evo_sim_oom();
  evo_status st = evo_tensor_copy_from_host(t, h, nb);
  free(h);
  return st;
}

/* Zeroes episode e's row of a recurrent state, also when the state lives on a device. */
static evo_status zero_state_row(evo_sim *s, evo_tensor *t, int64_t e) {
  const size_t nb = sizeof(float) * (size_t)s->state_size;
  float *h = evo_tensor_data(t);
  if (h) {
    memset(h + e * s->state_size, 0, nb);
    return EVO_STATUS_OK;
  }
  return evo_tensor_write(t, nb * (size_t)e, s->zero_row, nb);
}

/* One step of the task, cut into fixed contiguous episode ranges for the task threads. */
typedef struct {
  evo_sim *s;
  const void *act;
  float *obs, *reward;
  uint8_t *done;
  int64_t E;
  int T;
} step_job;

static void step_chunk(const step_job *j, int c) {
  evo_sim *s = j->s;
  s->chunk_st[c] = evo_task_step_range(s->task, j->E * c / j->T, j->E * (c + 1) / j->T, j->act, j->obs, j->reward,
                                       j->done);
  if (s->chunk_st[c] != EVO_STATUS_OK) snprintf(s->chunk_msg[c], sizeof s->chunk_msg[c], "%s", evo_last_error());
}

/* Steps the task. A host-memory task that steps sub-ranges (EVO_TASK_FLAG_STEP_RANGE) is cut into task_threads
   fixed contiguous ranges run on OpenMP threads; the ranges depend only on E and the thread count, and episodes
   are independent, so results are bit-identical for any thread count. The ranges run on the same OpenMP team as
   the policy's kernels: a separate pthread pool competed with that team's spinning threads for the cores and made
   two task threads slower than one (bench_sim_cartpole --hard on 2 vCPUs: 158 ms per generation with a pool,
   141 ms this way, 147 ms with one thread). Dynamic scheduling lets a free thread take a late one's range. A
   failure reports the lowest failing range's message (evo_last_error is per thread). */
static evo_status task_step(evo_sim *s, const void *act, float *obs, float *reward, uint8_t *done, int64_t E) {
  int T = s->task_threads < E ? s->task_threads : (int)E;
  if (!s->ranges || T < 2) return evo_task_step(s->task, act, obs, reward, done);
  step_job j = {s, act, obs, reward, done, E, T};
#pragma omp parallel for num_threads(T) schedule(dynamic, 1)
  for (int c = 0; c < T; c++) step_chunk(&j, c);
  for (int c = 0; c < T; c++)
    if (s->chunk_st[c] != EVO_STATUS_OK) return evo_error(s->chunk_st[c], "%s", s->chunk_msg[c]);
  return EVO_STATUS_OK;
}

evo_status evo_sim_rollout_host(evo_sim *s, rollout_plan *r, int64_t n_valid, bool update_norm) {
  const int64_t E = (int64_t)r->n * r->reps, m = s->obs_numel;
  const int64_t obs_rows = r->shared ? r->reps : E;
  evo_status st;
  for (int64_t e = 0; e < E; e++) r->alive[e] = e < n_valid, r->ret[e] = 0;
  evo_plan_static_changed(r->plan); /* new parameters in r->params */
  for (int k = 0; k < s->n_state; k++)
    if ((st = zero_tensor(r->state[0][k])) != EVO_STATUS_OK) return st;
  if ((st = evo_task_reset(s->task, E, r->keys, r->obs_h)) != EVO_STATUS_OK) return st;
  int64_t n_alive = n_valid;
  float *obs_t = evo_tensor_data(r->obs);
  /* A recurrent state alternates between two tensors on the host; a device plan replays a recorded graph only
     with the tensors it was recorded with, so there the new state is copied back instead. */
  const bool pingpong = evo_backend_is_host(s->be);
  int ping = 0;
  for (int64_t t = 0; t < s->max_steps && n_alive > 0; t++) {
    if (update_norm) /* shared rows stand for the episodes of every valid member (all alive in a one-step task) */
      evo_sim_norm_accumulate(s, s->macc_chunk, r->obs_h, r->alive, n_valid / r->reps, r->reps, r->shared);
    if (s->p.normalize_obs) evo_sim_normalize(s, r->obs_h, obs_rows);
    if (r->shared && obs_t) memcpy(obs_t, r->obs_h, sizeof(float) * (size_t)(obs_rows * m));
    else if (!obs_t && (st = evo_tensor_copy_from_host(r->obs, r->obs_h, evo_tensor_nbytes(r->obs))))
      return st;
    evo_tensor *in[4] = {r->params, r->obs, r->state[ping][0], r->state[ping][1]};
    evo_tensor *outs[3] = {r->act, r->state[1 - ping][0], r->state[1 - ping][1]};
    if ((st = evo_plan_run(r->plan, in, outs)) != EVO_STATUS_OK) return st;
    for (int k = 0; !pingpong && k < s->n_state; k++) /* new state back into the plan's input */
      if ((st = s->be->iface->copy(s->be->ctx, evo_tensor_buffer(r->state[0][k]), evo_tensor_buffer(r->state[1][k]),
                                   evo_tensor_nbytes(r->state[0][k]))) != EVO_STATUS_OK)
        return st;
    if (r->own_act && (st = evo_tensor_copy_to_host(r->act, r->act_h, evo_tensor_nbytes(r->act)))) return st;
    const void *act = actions_for_task(s, r, E, n_valid);
    if ((st = task_step(s, act, r->obs_h, r->reward, r->done, E)) != EVO_STATUS_OK) return st;
    if (s->n_state && pingpong) ping = 1 - ping;
    s->stats.batch_steps++;
    for (int64_t e = 0; e < n_valid; e++) {
      if (!r->alive[e]) continue;
      if (!isfinite(r->reward[e])) r->bad[e / r->reps] = 1;
      r->ret[e] += r->reward[e];
      s->stats.env_steps++;
      if (!r->done[e]) continue;
      r->alive[e] = 0, n_alive--;
      for (int k = 0; k < s->n_state; k++) /* the policy's state restarts with the episode (policy.h) */
        if ((st = zero_state_row(s, r->state[ping][k], e)) != EVO_STATUS_OK) return st;
    }
  }
  s->stats.evaluations += n_valid;
  return EVO_STATUS_OK;
}
