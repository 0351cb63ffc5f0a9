/* Gradient optimizers (Optax's role): used by ES updates and by gradient training. They minimise: pass -g to ascend.
   Learning-rate schedules and global-norm clipping are part of the optimizer. State (moments, step counter) is
   exposed for checkpoints. */
#ifndef EVOC_OPTIM_H
#define EVOC_OPTIM_H
#include <stdint.h>
#include "evoc/status.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  EVO_OPTIM_SGD = 0,
  EVO_OPTIM_MOMENTUM,
  EVO_OPTIM_NESTEROV,
  EVO_OPTIM_ADAM,
  EVO_OPTIM_ADAMW,
  EVO_OPTIM_CLIPUP
} evo_optim_kind;

typedef enum {
  EVO_SCHEDULE_CONSTANT = 0,
  EVO_SCHEDULE_EXPONENTIAL, /* lr * decay_rate^(step / decay_steps) */
  EVO_SCHEDULE_COSINE       /* lr * (alpha + (1 - alpha) * (1 + cos(pi * min(step, decay_steps) / decay_steps)) / 2) */
} evo_schedule_kind;

typedef struct {
  evo_optim_kind kind;
  double lr;
  double momentum;     /* MOMENTUM, NESTEROV, CLIPUP (0.9) */
  double beta1, beta2; /* ADAM(W): 0.9, 0.999 */
  double eps;          /* ADAM(W): 1e-8 */
  int64_t adam_count_every; /* ADAM(W): the step count of the bias correction advances every this many steps: 1
                               (default, Kingma & Ba); EvoJAX's PGPE passes t // center_lr_decay_steps as Adam's step,
                               i.e. 1000, which keeps the correction at step 1 for 1000 steps (0 means 1) */
  double weight_decay; /* ADAMW decoupled decay (1e-4); others: 0 */
  double max_speed;    /* CLIPUP: velocity norm bound (0.15, EvoJAX default) */
  double clip_norm;    /* > 0: clip the gradient by global norm first */
  evo_schedule_kind schedule;
  double decay_rate;   /* EXPONENTIAL */
  int64_t decay_steps; /* EXPONENTIAL, COSINE */
  double alpha;        /* COSINE: final lr fraction */
  int64_t warmup_steps; /* linear warmup from 0 before the schedule */
} evo_optim_params;

/* Defaults per kind (Optax's, ClipUp's paper/EvoJAX's for CLIPUP: lr = max_speed / 2). */
evo_optim_params evo_optim_default_params(evo_optim_kind kind);
const char *evo_optim_kind_name(evo_optim_kind kind);
/* "sgd", "momentum", "nesterov", "adam", "adamw", "clipup"; -1 if unknown. */
int evo_optim_kind_from_name(const char *name);

typedef struct evo_optim evo_optim;

evo_status evo_optim_new(const evo_optim_params *p, int64_t n, evo_optim **out);
void evo_optim_free(evo_optim *o);
/* params <- params - update(grad); advances the step counter. */
evo_status evo_optim_step(evo_optim *o, float *params, const float *grad);
int64_t evo_optim_steps(const evo_optim *o);
double evo_optim_lr(const evo_optim *o); /* the scheduled learning rate of the next step */

/* Checkpoint access: named state arrays (f64 moments, i64 counter). */
int evo_optim_state_count(const evo_optim *o);
/* i-th state array: name, pointer, number of doubles (the counter is stored as one double holding an integer). */
void evo_optim_state_at(evo_optim *o, int i, const char **name, double **data, int64_t *n);

#ifdef __cplusplus
}
#endif
#endif
