/* The simulation manager: evaluates members x repeats of a policy population on a task (EvoJAX's SimManager).
 *
 * evaluate(params [n, D]) runs n * n_repeats episodes in lockstep: one jitted population forward per step (the
 * policy vmapped over members, each member's repeats as its observation batch), one batched task step, rewards
 * masked so nothing after `done` counts, and an early exit once every episode is done (checked every
 * check_interval steps). Common random numbers (default, as EvoJAX): repeat r of every member starts from the same
 * key, so members are compared on the same episodes. A member whose actions are NaN/Inf gets fitness NaN (the
 * algorithm ranks it worst) and is counted. Observation normalisation keeps running mean/variance (Welford, merged
 * once per evaluate from the valid steps only), normalises as clip((obs - mean) / std, -5, 5), and is part of the
 * run's state.
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
/* Mean return of one parameter vector over n_episodes distinct episodes (no normaliser update). */
evo_status evo_sim_test(evo_sim *s, const float *params, int n_episodes, evo_key key, double *mean_return);

typedef struct {
  int64_t env_steps;    /* episode steps actually simulated (alive episodes only) */
  int64_t nan_members;  /* members whose actions were not finite */
  int64_t evaluations;  /* episodes run */
} evo_sim_stats;
void evo_sim_stats_get(const evo_sim *s, evo_sim_stats *out);

/* Normaliser state for checkpoints: count (1), mean (obs numel), m2 (obs numel), as doubles. */
int64_t evo_sim_obs_size(const evo_sim *s);
void evo_sim_normalizer(evo_sim *s, double **count, double **mean, double **m2);

#ifdef __cplusplus
}
#endif
#endif
