/* Internal: CartPole physics (../shared/specs/cartpole.md), one step of one episode. Shared by the CPU path
   (tasks/cartpole.c) and the CUDA kernel, so both step the same arithmetic.

   The state is float, as in EvoJAX (jnp default float32): the swing-up's reference scores were obtained in float32,
   and float keeps the device kernel cheap. Gym's CartPole-v1 steps in float64; over 500 balance steps the float
   trajectory differs from it only in the last bits and terminates at the same step except on knife-edge cases. */
#ifndef EVOC_CARTPOLE_PHYSICS_H
#define EVOC_CARTPOLE_PHYSICS_H
#include <math.h>

#ifndef EVO_HD /* core/rng_math.h and core/elementwise_math.h define the same macro */
#ifdef __CUDACC__
#define EVO_HD __host__ __device__
#else
#define EVO_HD
#endif
#endif

typedef struct {
  float x, x_dot, theta, theta_dot;
} evo_cartpole_state;

#define EVO_CARTPOLE_X_LIMIT 2.4f
#define EVO_CARTPOLE_PI 3.14159265358979323846f

/* ---- swing-up (EvoJAX cartpole_swingup.py): theta = 0 upright, pi hanging ---- */
#define EVO_SWINGUP_G 9.82f
#define EVO_SWINGUP_MC 0.5f
#define EVO_SWINGUP_MP 0.5f
#define EVO_SWINGUP_L 0.6f
#define EVO_SWINGUP_B 0.1f /* friction */
#define EVO_SWINGUP_FORCE 10.0f
#define EVO_SWINGUP_DT 0.01f

/* Explicit Euler: positions advance with the old velocities. A NaN action is treated as 0 so that a broken policy
   cannot poison the state (the simulation manager flags NaN outputs itself). */
static inline EVO_HD evo_cartpole_state evo_cartpole_swingup_step(evo_cartpole_state s, float action) {
  const float mp = EVO_SWINGUP_MP, l = EVO_SWINGUP_L, g = EVO_SWINGUP_G, b = EVO_SWINGUP_B;
  const float m = EVO_SWINGUP_MC + EVO_SWINGUP_MP;
  float a = action == action ? fminf(fmaxf(action, -1.0f), 1.0f) : 0.0f;
  float f = a * EVO_SWINGUP_FORCE;
  float sn = sinf(s.theta), c = cosf(s.theta);
  float td2 = s.theta_dot * s.theta_dot;
  float x_acc = (-2.0f * mp * l * td2 * sn + 3.0f * mp * g * sn * c + 4.0f * f - 4.0f * b * s.x_dot) /
                (4.0f * m - 3.0f * mp * c * c);
  float th_acc = (-3.0f * mp * l * td2 * sn * c + 6.0f * m * g * sn + 6.0f * (f - b * s.x_dot) * c) /
                 (4.0f * l * m - 3.0f * mp * l * c * c);
  evo_cartpole_state r;
  r.x = s.x + s.x_dot * EVO_SWINGUP_DT;
  r.theta = s.theta + s.theta_dot * EVO_SWINGUP_DT;
  r.x_dot = s.x_dot + x_acc * EVO_SWINGUP_DT;
  r.theta_dot = s.theta_dot + th_acc * EVO_SWINGUP_DT;
  return r;
}

/* Reward of the state reached by a step: pole height times a cart-centring factor, in [0, 1]. */
static inline EVO_HD float evo_cartpole_swingup_reward(evo_cartpole_state s) {
  float r_theta = (cosf(s.theta) + 1.0f) * 0.5f;
  float r_x = cosf((s.x / EVO_CARTPOLE_X_LIMIT) * (EVO_CARTPOLE_PI * 0.5f));
  return r_theta * r_x;
}

static inline EVO_HD int evo_cartpole_out_of_track(evo_cartpole_state s) {
  return s.x < -EVO_CARTPOLE_X_LIMIT || s.x > EVO_CARTPOLE_X_LIMIT;
}

/* Observation (5): x, x_dot, cos theta, sin theta, theta_dot. */
static inline EVO_HD void evo_cartpole_swingup_obs(evo_cartpole_state s, float *obs) {
  obs[0] = s.x;
  obs[1] = s.x_dot;
  obs[2] = cosf(s.theta);
  obs[3] = sinf(s.theta);
  obs[4] = s.theta_dot;
}

/* ---- balance (Gym CartPole-v1) ---- */
#define EVO_BALANCE_G 9.8f
#define EVO_BALANCE_MC 1.0f
#define EVO_BALANCE_MP 0.1f
#define EVO_BALANCE_HALF_L 0.5f
#define EVO_BALANCE_FORCE 10.0f
#define EVO_BALANCE_TAU 0.02f
#define EVO_BALANCE_THETA_LIMIT (12.0f * 2.0f * EVO_CARTPOLE_PI / 360.0f) /* as Gym writes it */

/* action 1 pushes right, anything else left (the caller validates 0/1). Gym's "euler" integrator. */
static inline EVO_HD evo_cartpole_state evo_cartpole_balance_step(evo_cartpole_state s, int action) {
  const float m = EVO_BALANCE_MC + EVO_BALANCE_MP, mpl = EVO_BALANCE_MP * EVO_BALANCE_HALF_L;
  float f = action == 1 ? EVO_BALANCE_FORCE : -EVO_BALANCE_FORCE;
  float c = cosf(s.theta), sn = sinf(s.theta);
  float temp = (f + mpl * s.theta_dot * s.theta_dot * sn) / m;
  float th_acc = (EVO_BALANCE_G * sn - c * temp) /
                 (EVO_BALANCE_HALF_L * (4.0f / 3.0f - EVO_BALANCE_MP * c * c / m));
  float x_acc = temp - mpl * th_acc * c / m;
  evo_cartpole_state r;
  r.x = s.x + EVO_BALANCE_TAU * s.x_dot;
  r.x_dot = s.x_dot + EVO_BALANCE_TAU * x_acc;
  r.theta = s.theta + EVO_BALANCE_TAU * s.theta_dot;
  r.theta_dot = s.theta_dot + EVO_BALANCE_TAU * th_acc;
  return r;
}

static inline EVO_HD int evo_cartpole_balance_failed(evo_cartpole_state s) {
  return evo_cartpole_out_of_track(s) || s.theta < -EVO_BALANCE_THETA_LIMIT || s.theta > EVO_BALANCE_THETA_LIMIT;
}

static inline EVO_HD void evo_cartpole_balance_obs(evo_cartpole_state s, float *obs) {
  obs[0] = s.x;
  obs[1] = s.x_dot;
  obs[2] = s.theta;
  obs[3] = s.theta_dot;
}

#endif
