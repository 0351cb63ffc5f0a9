/* The simulation manager: evaluates members x repeats of a policy population on a task (EvoJAX's SimManager).
 *
 * evaluate(params [n, D]) runs n * n_repeats episodes in lockstep: one jitted population forward per step (the
 * policy vmapped over members, each member's repeats as its observation batch), one batched task step, rewards
 * masked so nothing after `done` counts, and an early exit once every episode is done (on the CPU the count of
 * live episodes is exact every step; check_interval is for the device path, where it bounds host syncs).
 * Common random numbers (default, as EvoJAX): repeat r of every member starts from the same key, so members are
 * compared on the same episodes; one-step tasks (max_steps 1, e.g. MNIST) under CRN then feed ONE copy of the
 * observations to the whole population (evo_policy_population_graph with shared_obs). A member whose parameters,
 * actions or rewards are not finite gets fitness NaN (the algorithm ranks it worst) and is counted. A recurrent
 * policy's state starts at zero and is zeroed when its episode ends.
 *
 * Memory: members are evaluated in chunks, one jitted plan per chunk shape (reused across generations), so that
 * a plan stays within max_plan_mb (the EvoJAX ConvNet on 64 x 1024 images would need ~3.3 GB in one plan); the
 * chunk size depends only on n and the budget, and results do not depend on it (a short last chunk is padded with
 * copies whose episodes do not count). Rollout buffers belong to the plan: a generation allocates nothing once the
 * plan exists.
 *
 * Where it runs: a device task (spec.place EVO_TASK_DEVICE, created with the sim's backend) on a CUDA backend
 * keeps observations, actions, rewards, done flags, masks and returns on the device: the task's kernels, the
 * policy's plan and the sim's masking/return/normaliser kernels are all enqueued on the backend's stream, and the
 * host reads back only the number of live episodes every check_interval steps (and the returns at the end); when
 * the task sets EVO_TASK_FLAG_GRAPH_SAFE, each chunk of check_interval steps is recorded once per rollout as one
 * CUDA Graph and replayed (graph_chunks; the same results as enqueuing the steps one by one). A host
 * task steps on the host with one copy of observations and actions each way per step when the backend is a device;
 * if the task sets EVO_TASK_FLAG_STEP_RANGE (task.h), its episodes step in task_threads fixed contiguous ranges at
 * once, so the results do not depend on the thread count. On the CPU backend every task's memory is host memory.
 *
 * Observation normalisation keeps running mean/variance over the valid (pre-done) observations: per member during
 * an evaluate, merged in member order at its end (Chan et al.), so a population split into chunks or ranks gives
 * the same bits, and normalises as clip((obs - mean) / sd, -5, 5) in f32 with the statistics as they were
 * when the evaluate began (mean 0, sd 1 before two observations; an sd below 1e-8 counts as 1). It is part of the
 * run's state (evo_sim_normalizer).
 */
#ifndef EVOC_SIM_H
#define EVOC_SIM_H
#include <stdbool.h>
#include <stdint.h>
#include "evoc/backend.h"
#include "evoc/policy.h"
#include "evoc/rng.h"
#include "evoc/task.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int n_repeats;          /* episodes per member (EvoJAX n_repeats), default 1 */
  bool common_random_numbers; /* default true */
  bool normalize_obs;     /* default false */
  int check_interval;     /* steps between "all done?" checks, default 8 */
  int64_t max_steps;      /* 0: the task's max_steps */
  int chunk_members;      /* members per population plan (evo_sim_test: chunk_members * n_repeats episodes per plan);
                             0 (default): as many as fit in max_plan_mb */
  int64_t max_plan_mb;    /* memory budget of one plan for chunk_members = 0 (default 1024); 0: no limit */
  int task_threads;       /* threads stepping a host-memory task that allows sub-ranges; 0 (default): OpenMP's
                             thread count (OMP_NUM_THREADS, else the number of cores); results are the same for any
                             value */
  bool graph_chunks;      /* device path, task with EVO_TASK_FLAG_GRAPH_SAFE: record check_interval steps as one
                             CUDA Graph per rollout and replay it (default true; results are the same either way) */
  bool external_norm_merge; /* distributed runs: evaluate leaves its members' observation statistics
                               (evo_sim_norm_members) unmerged, for the caller to gather every rank's members and
                               merge them all with evo_sim_norm_merge_members (default false) */
} evo_sim_params;

evo_sim_params evo_sim_default_params(void);

typedef struct evo_sim evo_sim;

/* The task and policy are borrowed (they must outlive the sim). */
evo_status evo_sim_new(evo_task *task, const evo_policy *pol, evo_backend *be, const evo_sim_params *p,
                       evo_sim **out);
void evo_sim_free(evo_sim *s);

/* fitness[i] = mean return over the repeats of member i (params row i). key: this generation's key; member rows are
   the population slice the caller owns (members are identified by their row here, so pass the same key on every
   rank and the slice's global offset as first_member for independent-noise mode). Updates the normaliser. */
evo_status evo_sim_evaluate(evo_sim *s, const float *params, int n, int64_t first_member, evo_key key,
                            float *fitness);
/* evo_sim_evaluate, and also bd[i, :] = member i's behaviour descriptor (the task's descriptor after its episodes,
   f32 [n, spec.bd_dim]) averaged over its repeats: what MAP-Elites tells. The task must have a descriptor and run
   on the host (UNSUPPORTED otherwise). */
evo_status evo_sim_evaluate_bd(evo_sim *s, const float *params, int n, int64_t first_member, evo_key key,
                               float *fitness, float *bd);
/* evo_sim_evaluate (bd NULL) or evo_sim_evaluate_bd with the rows in a tensor, f32 with at least n * num_params
   values. A tensor on the sim's backend when the rollout runs on the device (evo_sim_device_backend) is copied
   there device to device, so the population never visits the host; one on another device is read back first. */
evo_status evo_sim_evaluate_tensor(evo_sim *s, const evo_tensor *params, int n, int64_t first_member, evo_key key,
                                   float *fitness, float *bd);
/* The backend whose tensors evo_sim_evaluate_tensor reads in place on the device: the sim's, when the task runs on
   it (a device task on a CUDA backend); NULL when rollouts run through host memory. */
evo_backend *evo_sim_device_backend(const evo_sim *s);
/* Mean return of one parameter vector over n_episodes distinct episodes, episode e from fold_in(key, e) (no
   normaliser update; NaN if the parameters or the policy's outputs are not finite). */
evo_status evo_sim_test(evo_sim *s, const float *params, int n_episodes, evo_key key, double *mean_return);

/* Returns of episodes first_episode .. first_episode + n_episodes - 1 of evo_sim_test's numbering (episode e from
   fold_in(key, e)): a rank's share of a test of total_episodes (>= first_episode + n_episodes); summed in episode
   order they give evo_sim_test's mean bit for bit. Plans are sized from total_episodes, so every share runs in
   plans of the whole test's shape (a GPU may choose kernels by shape, and round differently). Episodes from the
   first plan in which the parameters or the policy's outputs were not finite are NaN. */
evo_status evo_sim_test_returns(evo_sim *s, const float *params, int64_t first_episode, int n_episodes,
                                int total_episodes, evo_key key, double *returns);

typedef struct {
  int64_t env_steps;    /* episode steps actually simulated (alive episodes only) */
  int64_t nan_members;  /* members given NaN fitness: non-finite parameters, actions or rewards */
  int64_t evaluations;  /* episodes run */
  int64_t batch_steps;  /* lockstep iterations (population forwards + batched task steps); early exit saves these */
  int64_t graph_launches; /* device path: chunks of check_interval steps replayed as one recorded CUDA Graph */
  int64_t device_param_rows; /* parameter rows taken from a device tensor without a trip to the host */
} evo_sim_stats;
void evo_sim_stats_get(const evo_sim *s, evo_sim_stats *out);

/* How the last evaluate ran (for logs and benchmarks). */
typedef struct {
  int chunk_members;  /* members per plan */
  bool shared_obs;    /* one copy of the observations fed every member */
  size_t plan_bytes;  /* the plan's peak bytes (arena, scratch, constants) */
  int task_threads;   /* threads that stepped the task (1: the whole batch on the calling thread) */
  bool on_device;     /* the rollout loop stayed on the device (device task on a CUDA backend) */
} evo_sim_info;
void evo_sim_info_get(const evo_sim *s, evo_sim_info *out);

/* Normaliser state for checkpoints: count (1), mean (obs numel), m2 (obs numel), as doubles. */
int64_t evo_sim_obs_size(const evo_sim *s);
void evo_sim_normalizer(evo_sim *s, double **count, double **mean, double **m2);
/* Per-member observation statistics of the last evaluate with normalize_obs: for each of its n members (params
   rows) one row of 1 + 2 * obs_size doubles, (count, mean, M2) over that member's valid observations. evaluate
   merges them itself, unless external_norm_merge; evo_sim_norm_merge_members merges n such rows, in member order,
   into one batch and that batch into the normaliser (Chan et al.). The result depends only on the rows, not on
   how the population was split into chunks or ranks. */
const double *evo_sim_norm_members(const evo_sim *s);
void evo_sim_norm_merge_members(evo_sim *s, int64_t n, const double *stats);

#ifdef __cplusplus
}
#endif
#endif
