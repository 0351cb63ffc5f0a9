/* Internal: the simulation manager's state, shared by its files: sim.c (plans, evaluate, test), sim_norm.c
   (observation normaliser), sim_host.c (the rollout loop over host memory, stepping the task in ranges on the
   OpenMP threads) and sim_device.c (the rollout loop on a CUDA backend for device tasks, kernels in sim_cuda.cu). */
#ifndef EVOC_SIM_IMPL_H
#define EVOC_SIM_IMPL_H
#include "evoc/jit.h"
#include "evoc/sim.h"

typedef struct {
  int n, reps;     /* members, episodes per member */
  bool shared;     /* obs input [reps, obs...] seen by every member (one-step tasks with CRN) */
  evo_plan *plan;
  evo_tensor *params, *obs, *act, *state[2][2]; /* state[ping][h|c] */
  /* Host-side buffers for the n * reps episodes. obs_h / act_h alias the tensors when those are host memory and
     have the task's layout; otherwise they are staging copies (host path only). */
  float *obs_h;
  void *act_h;
  bool own_obs, own_act;
  int32_t *dact;   /* argmax of scores for a discrete task whose policy emits scores */
  float *reward;
  uint8_t *done, *alive;
  double *ret;
  evo_key *keys;
  uint8_t *bad;    /* per member */
  /* Device path: the same roles in the backend's memory (NULL on the host path). ret, bad and steps come back to
     ret, bad and steps_h at the end of a rollout. */
  evo_tensor *d_keys, *d_obs_all, *d_reward, *d_done, *d_alive, *d_dact, *d_ret, *d_steps, *d_bad, *d_count;
  evo_tensor *d_macc; /* normalize_obs: per-member observation statistics [n, 1 + 2m] of the rollout */
  int32_t *steps_h;
  void *chunk_exec;        /* the recorded chunk of check_interval steps (a CUDA graph exec of the sim's backend),
                              kept across rollouts */
} rollout_plan;

struct evo_sim {
  evo_task *task;
  const evo_policy *pol;
  evo_backend *be;
  evo_sim_params p;
  evo_task_spec spec;
  bool device;     /* device task on a CUDA backend: rollouts stay on the device (sim_device.c) */
  int task_threads; /* resolved p.task_threads */
  bool ranges;               /* the task steps in task_threads ranges on OpenMP threads; false: whole, on the caller */
  evo_status *chunk_st;      /* [task_threads] status and message of each range of the last step */
  char (*chunk_msg)[256];
  int64_t obs_numel, act_numel; /* per episode; act_numel is the policy output per episode */
  int64_t max_steps, n_params;
  bool discrete, policy_argmax;
  int n_state;
  int64_t state_size;
  float *zero_row; /* state_size zeros (resetting a recurrent state row on a device) */
  rollout_plan plans[2]; /* [0] training shape, [1] test shape */
  size_t probe_bytes[2]; /* plan bytes of one member (train) / one episode (test), 0 until measured */
  /* normaliser (doubles for exact merging), the statistics used while normalising, one evaluate's batch, and its
     per-member statistics: macc [macc_cap members, 1 + 2m] rows (count, mean, M2), macc_chunk the current
     chunk's first row (sim_norm.c) */
  double norm_count, *norm_mean, *norm_m2;
  float *use_mean, *use_sd;
  double batch_count, *batch_mean, *batch_m2, *step_mean, *step_m2;
  double *macc, *macc_chunk;
  int64_t macc_cap;
  /* device copy of use_mean/use_sd, f32 [2, m] */
  evo_tensor *d_use;
  float *bd_all; /* [bd_cap] the task's descriptors of one chunk's episodes (evo_sim_evaluate_bd) */
  int64_t bd_cap;
  evo_sim_stats stats;
  evo_sim_info info;
};

evo_status evo_sim_oom(void);

/* sim_norm.c */
void evo_sim_norm_prepare(evo_sim *s);
void evo_sim_normalize(const evo_sim *s, float *obs, int64_t rows);
/* One step's valid observations into the per-member statistics acc (members rows of 1 + 2m): member i's rows are
   [i * reps, (i + 1) * reps), or with shared observations rows [0, reps) for every member. */
void evo_sim_norm_accumulate(evo_sim *s, double *acc, const float *obs, const uint8_t *alive, int64_t members,
                             int reps, bool shared);
/* Room for n members' statistics in s->macc. */
evo_status evo_sim_norm_reserve(evo_sim *s, int64_t n);

/* Runs the plan's episodes (keys already in r->keys); the first n_valid episodes count, the rest are padding of
   the last chunk. r->ret gets each episode's return, r->bad marks members with non-finite outputs or rewards. */
evo_status evo_sim_rollout_host(evo_sim *s, rollout_plan *r, int64_t n_valid, bool update_norm);
/* sim_device.c: the same on the device. Allocation of the device buffers (plan and sim level), the normaliser's
   upload before an evaluate; with update_norm a device rollout leaves its members' statistics in s->macc_chunk. */
evo_status evo_sim_rollout_device(evo_sim *s, rollout_plan *r, int64_t n_valid, bool update_norm);
evo_status evo_sim_device_plan_alloc(evo_sim *s, rollout_plan *r);
void evo_sim_device_plan_free(evo_sim *s, rollout_plan *r);
evo_status evo_sim_device_norm_begin(evo_sim *s);
/* Rows [off, off + nv) of params (a tensor on the sim's device) into r->params, the last one repeated as padding,
   and r->bad[i] = whether row i has a non-finite value, computed on the device. */
evo_status evo_sim_device_load_params(evo_sim *s, rollout_plan *r, const evo_tensor *params, int64_t off, int nv);
/* True when rollouts of this task on this backend stay on the device. */
bool evo_sim_device_path(const evo_task_spec *spec, const evo_backend *be);

#endif
