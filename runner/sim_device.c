/* The simulation's rollout loop on a CUDA backend for device tasks: observations, actions, rewards, done flags,
   masks and returns stay in the backend's memory, every step is enqueued on its stream (task kernels, the policy's
   plan, the masking kernels of sim_cuda.cu), and the host reads back only the number of live episodes every
   check_interval steps, plus returns, NaN flags and step counts at the end of a rollout.

   Chunks: when the task says its step can be recorded (EVO_TASK_FLAG_GRAPH_SAFE) and graph_chunks is on, the
   check_interval steps between two checks (normaliser, the policy's plan, task step, masking) are recorded once
   per rollout, after the reset, as one CUDA Graph and replayed for every full chunk; the plan's kernels go straight
   into that recording (core/jit.c). Re-recording per rollout keeps the graph right when the reset reallocated the
   task's buffers or n_valid changed; the instantiated graph is patched in place (same topology), not rebuilt. A
   last partial chunk, and tasks without the flag, run step by step (the plan then replays its own graph). */
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

void evo_sim_device_plan_free(evo_sim *s, rollout_plan *r) {
  if (r->chunk_exec) s->be->iface->graph_destroy(s->be->ctx, r->chunk_exec);
  r->chunk_exec = NULL;
  evo_tensor *all[] = {r->d_keys, r->d_obs_all, r->d_reward, r->d_done,  r->d_alive, r->d_dact,
                       r->d_ret,  r->d_steps,   r->d_bad,    r->d_count, r->d_macc};
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
  if (s->p.normalize_obs) r->d_macc = dev_new(s, EVO_F64, r->n, 1 + 2 * s->obs_numel, &st);
  if (st == EVO_STATUS_OK && !(r->steps_h = malloc(sizeof(int32_t) * (size_t)E))) st = evo_sim_oom();
  return st;
}

#ifdef EVOC_HAVE_CUDA

static void *buf(const evo_tensor *t) { return t ? evo_tensor_buffer(t) : NULL; }

evo_status evo_sim_device_norm_begin(evo_sim *s) {
  const int64_t m = s->obs_numel;
  float *use = malloc(sizeof(float) * 2 * (size_t)m);
  if (!use) return evo_sim_oom();
  memcpy(use, s->use_mean, sizeof(float) * (size_t)m);
  memcpy(use + m, s->use_sd, sizeof(float) * (size_t)m);
  evo_status st = evo_tensor_copy_from_host(s->d_use, use, sizeof(float) * 2 * (size_t)m);
  free(use);
  return st;
}

/* Uploads keys and NaN flags, starts the episodes and zeroes the recurrent state. */
static evo_status begin(evo_sim *s, rollout_plan *r, void *stream, int64_t E, int64_t n_valid, float *task_obs) {
  evo_status st = evo_backend_use(s->be);
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

/* What one step needs; fixed for a rollout. */
typedef struct {
  void *stream;
  int64_t E, obs_rows, m, n_valid;
  float *task_obs, *obs, *reward;
  uint8_t *done, *alive, *bad;
  bool update_norm;
} step_ctx;

/* Enqueues one step: copy/normalise observations, the policy's plan, actions, the task's step, masking. */
static evo_status enqueue_step(evo_sim *s, rollout_plan *r, const step_ctx *c) {
  evo_status st = EVO_STATUS_OK;
  if (r->shared) st = evo_sim_cuda_copy(c->stream, c->obs, c->task_obs, sizeof(float) * (size_t)(c->obs_rows * c->m));
  if (!st && c->update_norm)
    st = evo_sim_cuda_norm_accumulate(c->stream, c->obs, c->alive, c->n_valid / r->reps, r->reps, r->shared, c->m,
                                      buf(r->d_macc));
  if (!st && s->p.normalize_obs) st = evo_sim_cuda_normalize(c->stream, c->obs, c->obs_rows, c->m, buf(s->d_use));
  /* The plan always reads state[0] and writes state[1], copied back after the run: ping-ponging the tensors
     would make the plan re-record its CUDA Graph every step. */
  evo_tensor *in[4] = {r->params, r->obs, r->state[0][0], r->state[0][1]};
  evo_tensor *outs[3] = {r->act, r->state[1][0], r->state[1][1]};
  if (!st) st = evo_plan_run(r->plan, in, outs);
  for (int k = 0; !st && k < s->n_state; k++)
    st = evo_sim_cuda_copy(c->stream, buf(r->state[0][k]), buf(r->state[1][k]), evo_tensor_nbytes(r->state[0][k]));
  const void *act = buf(r->act);
  if (!st && !s->policy_argmax) {
    st = evo_sim_cuda_actions(c->stream, buf(r->act), c->E, s->act_numel, c->n_valid, c->alive, c->bad, r->reps,
                              buf(r->d_dact));
    if (s->discrete) act = buf(r->d_dact);
  }
  if (!st) st = evo_task_step(s->task, act, c->task_obs, c->reward, c->done);
  if (!st)
    st = evo_sim_cuda_mask(c->stream, c->reward, c->done, c->alive, buf(r->d_ret), buf(r->d_steps), c->bad,
                           c->n_valid, r->reps, buf(r->state[0][0]), buf(r->state[0][1]), s->state_size);
  return st;
}

static bool chunk_graphs(const evo_sim *s) {
  return s->p.graph_chunks && (s->spec.flags & EVO_TASK_FLAG_GRAPH_SAFE) && s->be->iface->graph_begin &&
         !(s->be->iface->capturing && s->be->iface->capturing(s->be->ctx));
}

/* Records k steps into r->chunk_exec (nothing runs while recording). */
static evo_status record_chunk(evo_sim *s, rollout_plan *r, const step_ctx *c, int64_t k) {
  const evo_backend_iface *f = s->be->iface;
  evo_status st = f->graph_begin(s->be->ctx);
  if (st) return st;
  for (int64_t j = 0; !st && j < k; j++) st = enqueue_step(s, r, c);
  evo_status end = f->graph_end(s->be->ctx, st == EVO_STATUS_OK, &r->chunk_exec);
  return st ? st : end;
}

evo_status evo_sim_rollout_device(evo_sim *s, rollout_plan *r, int64_t n_valid, bool update_norm) {
  const int64_t E = (int64_t)r->n * r->reps, K = s->p.check_interval;
  /* The task writes all E rows; with shared observations the plan's input is the first reps of them. */
  step_ctx c = {.stream = evo_backend_stream(s->be), .E = E, .obs_rows = r->shared ? r->reps : E,
                .m = s->obs_numel, .n_valid = n_valid, .task_obs = r->shared ? buf(r->d_obs_all) : buf(r->obs),
                .obs = buf(r->obs), .reward = buf(r->d_reward), .done = buf(r->d_done), .alive = buf(r->d_alive),
                .bad = buf(r->d_bad), .update_norm = update_norm};
  evo_status st = update_norm ? evo_sim_cuda_memset0(c.stream, buf(r->d_macc), evo_tensor_nbytes(r->d_macc))
                              : EVO_STATUS_OK;
  if (!st) st = begin(s, r, c.stream, E, n_valid, c.task_obs);
  /* New parameters: their slicing into weights runs once now, not in every recorded step. */
  evo_plan_static_changed(r->plan);
  evo_tensor *in[4] = {r->params, r->obs, r->state[0][0], r->state[0][1]};
  if (!st) st = evo_plan_run_static(r->plan, in);
  const bool graphs = chunk_graphs(s);
  bool recorded = false;
  int64_t n_alive = n_valid;
  for (int64_t t = 0; !st && t < s->max_steps && n_alive > 0;) {
    const int64_t k = K < s->max_steps - t ? K : s->max_steps - t;
    if (graphs && k == K) {
      if (!recorded) st = record_chunk(s, r, &c, k), recorded = true;
      if (!st) st = s->be->iface->graph_launch(s->be->ctx, r->chunk_exec);
      if (!st) s->stats.graph_launches++;
    } else {
      for (int64_t j = 0; !st && j < k; j++) st = enqueue_step(s, r, &c);
    }
    t += k;
    s->stats.batch_steps += k;
    /* The only host sync of the loop: how many episodes are still alive, after each chunk of check_interval. */
    if (!st) {
      int32_t count;
      st = evo_sim_cuda_count_alive(c.stream, c.alive, n_valid, buf(r->d_count));
      if (!st) st = evo_tensor_copy_to_host(r->d_count, &count, sizeof count);
      n_alive = count;
    }
  }
  /* The valid members' observation statistics join the evaluate's on the host: the first rows of d_macc only,
     as a padded last chunk has fewer valid members than rows. */
  if (!st && update_norm)
    st = evo_tensor_read(r->d_macc, 0, s->macc_chunk,
                         sizeof(double) * (size_t)(n_valid / r->reps * (1 + 2 * s->obs_numel)));
  return st ? st : finish(s, r, E, n_valid);
}

evo_status evo_sim_device_load_params(evo_sim *s, rollout_plan *r, const evo_tensor *params, int64_t off, int nv) {
  void *stream = evo_backend_stream(s->be);
  const size_t row = sizeof(float) * (size_t)s->n_params;
  const char *src = (const char *)evo_tensor_buffer(params) + row * (size_t)off;
  char *dst = buf(r->params);
  evo_status st = evo_backend_use(s->be);
  if (!st) st = evo_sim_cuda_copy(stream, dst, src, row * (size_t)nv);
  for (int i = nv; !st && i < r->n; i++) /* padding repeats the last row */
    st = evo_sim_cuda_copy(stream, dst + row * (size_t)i, src + row * (size_t)(nv - 1), row);
  if (!st) st = evo_sim_cuda_rows_nonfinite(stream, (const float *)dst, r->n, s->n_params, buf(r->d_bad));
  /* the flags go to the host as with host rows (begin uploads them again; results read them) */
  return st ? st : evo_tensor_copy_to_host(r->d_bad, r->bad, (size_t)r->n);
}

#else /* without CUDA there is no device path (evo_sim_device_path is false) */

evo_status evo_sim_device_load_params(evo_sim *s, rollout_plan *r, const evo_tensor *params, int64_t off, int nv) {
  (void)r, (void)params, (void)off, (void)nv;
  return evo_sim_device_norm_begin(s);
}

evo_status evo_sim_device_norm_begin(evo_sim *s) {
  (void)s;
  return evo_error(EVO_STATUS_UNSUPPORTED, "sim: device path without CUDA");
}

evo_status evo_sim_rollout_device(evo_sim *s, rollout_plan *r, int64_t n_valid, bool update_norm) {
  (void)r, (void)n_valid, (void)update_norm;
  return evo_sim_device_norm_begin(s);
}

#endif
