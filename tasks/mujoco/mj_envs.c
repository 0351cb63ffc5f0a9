/* The six locomotion environments of specs/mujoco.md (Gymnasium v5 definitions): observation, forward position,
   reward and health of each. Body 0 is the world, so "[1:]" skips it. */
#include <math.h>
#include <string.h>
#include "mj_impl.h"

static double clip(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

/* obs = qpos[q0:nq], then qvel (clipped to +-vclip when vclip > 0): the planar walkers, swimmer and cheetah. */
static float *put_qpos_qvel(const mjModel *m, const mjData *d, int q0, double vclip, float *o) {
  for (int i = q0; i < m->nq; i++) *o++ = (float)d->qpos[i];
  for (int i = 0; i < m->nv; i++) *o++ = (float)(vclip > 0 ? clip(d->qvel[i], -vclip, vclip) : d->qvel[i]);
  return o;
}

static float *put_rows(const mjtNum *v, int rows, int cols, double vclip, float *o) {
  for (int i = 0; i < rows * cols; i++) *o++ = (float)(vclip > 0 ? clip(v[i], -vclip, vclip) : v[i]);
  return o;
}

static void obs_swimmer(const mjModel *m, const mjData *d, float *o) { put_qpos_qvel(m, d, 2, 0, o); }
static void obs_cheetah(const mjModel *m, const mjData *d, float *o) { put_qpos_qvel(m, d, 1, 0, o); }
static void obs_walker(const mjModel *m, const mjData *d, float *o) { put_qpos_qvel(m, d, 1, 10, o); }
static void obs_ant(const mjModel *m, const mjData *d, float *o) {
  o = put_qpos_qvel(m, d, 2, 0, o);
  put_rows(d->cfrc_ext + 6, m->nbody - 1, 6, 1.0, o);
}
static void obs_humanoid(const mjModel *m, const mjData *d, float *o) {
  const int nb = m->nbody - 1;
  o = put_qpos_qvel(m, d, 2, 0, o);
  o = put_rows(d->cinert + 10, nb, 10, 0, o);
  o = put_rows(d->cvel + 6, nb, 6, 0, o);
  o = put_rows(d->qfrc_actuator + 6, 1, m->nv - 6, 0, o);
  put_rows(d->cfrc_ext + 6, nb, 6, 0, o);
}

static double pos_qpos0(const mjModel *m, const mjData *d) { (void)m; return d->qpos[0]; }
static double pos_torso(const mjModel *m, const mjData *d) { (void)m; return d->xpos[3 * 1]; }
static double pos_com(const mjModel *m, const mjData *d) { /* mass-weighted xipos of every body */
  double mx = 0, ms = 0;
  for (int b = 0; b < m->nbody; b++) mx += m->body_mass[b] * d->xipos[3 * b], ms += m->body_mass[b];
  return ms > 0 ? mx / ms : 0;
}

static double sum_sq_cfrc(const mjModel *m, const mjData *d, double cl) {
  double s = 0;
  for (int i = 0; i < 6 * m->nbody; i++) {
    const double f = cl > 0 ? clip(d->cfrc_ext[i], -cl, cl) : d->cfrc_ext[i];
    s += f * f;
  }
  return s;
}

static double rew_swimmer(const mjModel *m, const mjData *d, const evo_mj_step_info *s) {
  (void)m, (void)d;
  return s->velocity - 1e-4 * s->ctrl_sq;
}
static double rew_cheetah(const mjModel *m, const mjData *d, const evo_mj_step_info *s) {
  (void)m, (void)d;
  return s->velocity - 0.1 * s->ctrl_sq;
}
static double rew_walker(const mjModel *m, const mjData *d, const evo_mj_step_info *s) {
  (void)m, (void)d;
  return s->velocity + (s->healthy ? 1.0 : 0.0) - 1e-3 * s->ctrl_sq;
}
static double rew_ant(const mjModel *m, const mjData *d, const evo_mj_step_info *s) {
  return s->velocity + (s->healthy ? 1.0 : 0.0) - 0.5 * s->ctrl_sq - 5e-4 * sum_sq_cfrc(m, d, 1.0);
}
static double rew_humanoid(const mjModel *m, const mjData *d, const evo_mj_step_info *s) {
  return 1.25 * s->velocity + (s->healthy ? 5.0 : 0.0) - 0.1 * s->ctrl_sq - fmin(5e-7 * sum_sq_cfrc(m, d, 0), 10.0);
}

static int finite_state(const mjModel *m, const mjData *d) {
  for (int i = 0; i < m->nq; i++) if (!isfinite(d->qpos[i])) return 0;
  for (int i = 0; i < m->nv; i++) if (!isfinite(d->qvel[i])) return 0;
  return 1;
}
static int healthy_hopper(const mjModel *m, const mjData *d) {
  for (int i = 2; i < m->nq; i++) if (!(fabs(d->qpos[i]) < 100)) return 0;
  for (int i = 0; i < m->nv; i++) if (!(fabs(d->qvel[i]) < 100)) return 0;
  return d->qpos[1] > 0.7 && d->qpos[2] > -0.2 && d->qpos[2] < 0.2;
}
static int healthy_walker(const mjModel *m, const mjData *d) {
  return finite_state(m, d) && d->qpos[1] > 0.8 && d->qpos[1] < 2.0 && d->qpos[2] > -1.0 && d->qpos[2] < 1.0;
}
static int healthy_ant(const mjModel *m, const mjData *d) {
  return finite_state(m, d) && d->qpos[2] >= 0.2 && d->qpos[2] <= 1.0;
}
static int healthy_humanoid(const mjModel *m, const mjData *d) {
  return finite_state(m, d) && d->qpos[2] > 1.0 && d->qpos[2] < 2.0;
}
static int healthy_always(const mjModel *m, const mjData *d) { return finite_state(m, d); }

static const evo_mj_env swimmer = {
    .name = "swimmer", .model = "swimmer.xml", .frame_skip = 4, .obs_dim = 8, .reset_noise = 0.1,
    .observe = obs_swimmer, .position = pos_qpos0, .reward = rew_swimmer, .healthy = healthy_always};
static const evo_mj_env hopper = {
    .name = "hopper", .model = "hopper.xml", .frame_skip = 4, .obs_dim = 11, .reset_noise = 0.005,
    .n_feet = 1, .feet = {"foot_geom"},
    .observe = obs_walker, .position = pos_qpos0, .reward = rew_walker, .healthy = healthy_hopper};
static const evo_mj_env halfcheetah = {
    .name = "halfcheetah", .model = "halfcheetah.xml", .frame_skip = 5, .obs_dim = 17, .reset_noise = 0.1,
    .qvel_normal = 1, .n_feet = 2, .feet = {"bfoot", "ffoot"},
    .observe = obs_cheetah, .position = pos_qpos0, .reward = rew_cheetah, .healthy = healthy_always};
static const evo_mj_env walker2d = {
    .name = "walker2d", .model = "walker2d.xml", .frame_skip = 4, .obs_dim = 17, .reset_noise = 0.005,
    .n_feet = 2, .feet = {"foot_geom", "foot_left_geom"},
    .observe = obs_walker, .position = pos_qpos0, .reward = rew_walker, .healthy = healthy_walker};
static const evo_mj_env ant = {
    .name = "ant", .model = "ant.xml", .frame_skip = 5, .obs_dim = 105, .needs_rne = 1, .reset_noise = 0.1,
    .qvel_normal = 1, .n_feet = 4,
    .feet = {"left_ankle_geom", "right_ankle_geom", "third_ankle_geom", "fourth_ankle_geom"},
    .observe = obs_ant, .position = pos_torso, .reward = rew_ant, .healthy = healthy_ant};
static const evo_mj_env humanoid = {
    .name = "humanoid", .model = "humanoid.xml", .frame_skip = 5, .obs_dim = 348, .needs_rne = 1,
    .reset_noise = 0.01, .n_feet = 2, .feet = {"right_foot", "left_foot"},
    .observe = obs_humanoid, .position = pos_com, .reward = rew_humanoid, .healthy = healthy_humanoid};

const evo_mj_env *const evo_mj_envs[] = {&swimmer, &hopper, &halfcheetah, &walker2d, &ant, &humanoid, NULL};

const evo_mj_env *evo_mj_env_find(const char *name) {
  for (int i = 0; evo_mj_envs[i]; i++)
    if (strcmp(evo_mj_envs[i]->name, name) == 0) return evo_mj_envs[i];
  return NULL;
}
