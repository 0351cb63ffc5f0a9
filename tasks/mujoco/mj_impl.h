/* Internal: the MuJoCo locomotion tasks (specs/mujoco.md). mj_task.c is the task (batched reset/step over one
   mjData per episode, sharing one const mjModel); mj_envs.c holds what differs per environment: the model file,
   frame skip, reset noise, observation, forward position, reward and health. */
#ifndef EVOC_MJ_IMPL_H
#define EVOC_MJ_IMPL_H
#include <mujoco/mujoco.h>
#include <setjmp.h>
#include <stdint.h>
#include "evoc/status.h"

/* What one step's reward needs besides the model and data. */
typedef struct {
  double velocity;  /* forward velocity (position after - before) / dt */
  double ctrl_sq;   /* sum of the squared raw actions */
  int healthy;      /* after the step */
} evo_mj_step_info;

typedef struct evo_mj_env {
  const char *name;   /* option `env` */
  const char *model;  /* embedded MJCF file */
  int frame_skip;
  int obs_dim;
  int needs_rne;      /* cfrc_ext read by the observation or the reward: mj_rnePostConstraint after the frames */
  double reset_noise; /* s: qpos = qpos0 + U(-s, s) on every coordinate; qvel = U(-s, s), or s N(0, 1) */
  int qvel_normal;
  /* Behaviour descriptor (MAP-Elites): the fraction of steps each foot geom touches the floor geom ("floor"), as
     QDax's feet-contact descriptors; an env without feet (Swimmer) gives its final (x, y) root position. */
  int n_feet;
  const char *feet[4];
  void (*observe)(const mjModel *m, const mjData *d, float *obs);
  double (*position)(const mjModel *m, const mjData *d); /* forward (x) position whose rate is rewarded */
  double (*reward)(const mjModel *m, const mjData *d, const evo_mj_step_info *s);
  int (*healthy)(const mjModel *m, const mjData *d);
} evo_mj_env;

extern const evo_mj_env *const evo_mj_envs[];  /* NULL-terminated */
const evo_mj_env *evo_mj_env_find(const char *name);

/* Fatal MuJoCo errors jump to the target set on this thread (NULL: none; the process then aborts, as MuJoCo's
   own handler would exit). Pattern: `jmp_buf jb; if (setjmp(jb)) {evo_mj_guard(NULL); ...failed...}
   evo_mj_guard(&jb); mj_...(); evo_mj_guard(NULL);`. The message of the last error on this thread stays readable. */
void evo_mj_guard(jmp_buf *target);
const char *evo_mj_guard_message(void);
void evo_mj_install_handlers(void); /* MuJoCo's warning and error hooks: done by evo_mj_model_load */

/* Loads an embedded model by file name; the error names the file and MuJoCo's message. */
evo_status evo_mj_model_load(const char *file, mjModel **out);

/* Episode i's data after a reset of the task state (tests corrupt it to provoke a divergence). */
mjData *evo_mj_task_data(void *state, int64_t i);

#endif
