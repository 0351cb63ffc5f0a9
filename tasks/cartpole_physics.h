/* Internal: CartPole physics (../shared/specs/cartpole.md), one step of one episode. Shared by the CPU path
   (tasks/cartpole.c) and the CUDA kernels (tasks/cartpole_cuda.cu), so both step the same arithmetic.

   The state is float, as in EvoJAX (jnp default float32): the swing-up's reference scores were obtained in float32,
   and float keeps the device kernel cheap. Gym's CartPole-v1 steps in float64; over 500 balance steps the float
   trajectory differs from it only in the last bits and terminates at the same step except on knife-edge cases.

   CPU and GPU give the same bits: the dynamics are chaotic enough that a 1-ulp difference in one sin grows to 0.1
   within 1000 swing-up steps, so "close" would not be checkable. Hence sin/cos come from evo_cartpole_sincos below
   (IEEE double arithmetic only, no libm, whose sinf differs between glibc versions, CPUs and CUDA), and both sides
   compile without contraction into FMA (cartpole.c: -ffp-contract=off, cartpole_cuda.cu: --fmad=false). */
#ifndef EVOC_CARTPOLE_PHYSICS_H
#define EVOC_CARTPOLE_PHYSICS_H
#include <math.h>
#include <stdint.h>
#include "rng_math.h" /* core/: the counter-based RNG the resets draw from, also EVO_HD */

typedef struct {
  float x, x_dot, theta, theta_dot;
} evo_cartpole_state;

#define EVO_CARTPOLE_X_LIMIT 2.4f
#define EVO_CARTPOLE_PI 3.14159265358979323846f

/* sin and cos of a float, rounded from double: Cody-Waite reduction by pi/2 (pi/2 split in a 33-bit head, exact
   when multiplied by k < 2^20, and a tail), then fdlibm's __kernel_sin/__kernel_cos polynomials (error < 1e-16 on
   [-pi/4, pi/4]). Within 1 ulp of the true value (nearly always the correctly rounded float) for |x| < 1.6e6, which
   the states reach only when already far out of the track; NaN for non-finite x and |x| >= 1e9. rint keeps it
   exactly odd/even: sin(-x) == -sin(x), cos(-x) == cos(x). */
static inline EVO_HD void evo_cartpole_sincos(float x, float *sin_out, float *cos_out) {
  const double xd = x;
  if (!(fabs(xd) < 1e9)) {
    *sin_out = *cos_out = NAN;
    return;
  }
  const double k = rint(xd * 6.36619772367581382433e-01); /* 2/pi */
  const double r = (xd - k * 1.57079632673412561417e+00) - k * 6.07710050650619224932e-11;
  const double z = r * r;
  const double sn = r + z * r * (-1.66666666666666324348e-01 +
                                 z * (8.33333333332248946124e-03 +
                                      z * (-1.98412698298579493134e-04 +
                                           z * (2.75573137070700676789e-06 +
                                                z * (-2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)))));
  const double cs = 1.0 - 0.5 * z +
                    z * z * (4.16666666666666019037e-02 +
                             z * (-1.38888888888741095749e-03 +
                                  z * (2.48015872894767294178e-05 +
                                       z * (-2.75573143513906633035e-07 +
                                            z * (2.08757232129817482790e-09 + z * -1.13596475577881948265e-11)))));
  const int q = (int)(k - 4.0 * floor(k * 0.25)); /* k mod 4, in 0..3 */
  const double s = q == 0 ? sn : q == 1 ? cs : q == 2 ? -sn : -cs;
  const double c = q == 0 ? cs : q == 1 ? -sn : q == 2 ? -cs : sn;
  *sin_out = (float)s;
  *cos_out = (float)c;
}

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
  /* clip to [-1, 1] as fminf/fmaxf would, in a form the compiler inlines */
  float a = action == action ? (action < -1.0f ? -1.0f : action > 1.0f ? 1.0f : action) : 0.0f;
  float f = a * EVO_SWINGUP_FORCE;
  float sn, c;
  evo_cartpole_sincos(s.theta, &sn, &c);
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
  float st, ct, sx, cx;
  evo_cartpole_sincos(s.theta, &st, &ct);
  evo_cartpole_sincos((s.x / EVO_CARTPOLE_X_LIMIT) * (EVO_CARTPOLE_PI * 0.5f), &sx, &cx);
  return ((ct + 1.0f) * 0.5f) * cx;
}

static inline EVO_HD int evo_cartpole_out_of_track(evo_cartpole_state s) {
  return s.x < -EVO_CARTPOLE_X_LIMIT || s.x > EVO_CARTPOLE_X_LIMIT;
}

/* Observation (5): x, x_dot, cos theta, sin theta, theta_dot. */
static inline EVO_HD void evo_cartpole_swingup_obs(evo_cartpole_state s, float *obs) {
  obs[0] = s.x;
  obs[1] = s.x_dot;
  evo_cartpole_sincos(s.theta, &obs[3], &obs[2]);
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
  float sn, c;
  evo_cartpole_sincos(s.theta, &sn, &c);
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

/* ---- episodes: what the CPU loop and the CUDA kernels do for one episode ---- */
typedef enum { EVO_CARTPOLE_SWINGUP = 0, EVO_CARTPOLE_BALANCE = 1 } evo_cartpole_kind;

/* A normal draw from two Philox words: Box-Muller as evo_rng_normal_from_words (same words, same formula), but
   evaluated in double and rounded once, so that libm and CUDA (1-ulp double log/cos) give the same float. */
static inline EVO_HD float evo_cartpole_normal(uint32_t w0, uint32_t w1) {
  double u1 = 1.0 - (double)evo_rng_u01(w0), u2 = evo_rng_u01(w1);
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.28318530717958647692 * u2));
}

/* Episode's initial state from its key alone: element j of the key's stream perturbs state component j
   (balance and hard: uniform word j of block 0, as evo_rng_uniform01(key, j); easy: normal j from block j / 2). */
static inline EVO_HD evo_cartpole_state evo_cartpole_initial(evo_cartpole_kind kind, int hard, uint32_t k0,
                                                             uint32_t k1) {
  evo_philox_block b = evo_rng_block(k0, k1, 0);
  float v[4];
  if (kind == EVO_CARTPOLE_BALANCE) {
    for (int j = 0; j < 4; j++) v[j] = -0.05f + 0.1f * evo_rng_u01(b.w[j]);
  } else if (hard) { /* [0, 0, pi, 0] + U(-1, 1) * [2.4, 10, pi/2, 10] */
    for (int j = 0; j < 4; j++) {
      float scale = j == 0 ? EVO_CARTPOLE_X_LIMIT : j == 2 ? EVO_CARTPOLE_PI / 2.0f : 10.0f;
      v[j] = (evo_rng_u01(b.w[j]) * 2.0f - 1.0f) * scale;
    }
    v[2] += EVO_CARTPOLE_PI;
  } else { /* [0, 0, pi, 0] + 0.2 N(0, I) */
    evo_philox_block b1 = evo_rng_block(k0, k1, 1);
    v[0] = 0.2f * evo_cartpole_normal(b.w[0], b.w[1]);
    v[1] = 0.2f * evo_cartpole_normal(b.w[2], b.w[3]);
    v[2] = 0.2f * evo_cartpole_normal(b1.w[0], b1.w[1]) + EVO_CARTPOLE_PI;
    v[3] = 0.2f * evo_cartpole_normal(b1.w[2], b1.w[3]);
  }
  evo_cartpole_state s = {v[0], v[1], v[2], v[3]};
  return s;
}

/* One batched-step update of one episode (*t: its step count, *done: its flag): writes its observation and
   returns the step's reward. A finished episode stays frozen and earns 0, so nothing after done counts even
   before the simulation masks. The new state's sin/cos serve both the reward and the observation. */
static inline EVO_HD float evo_cartpole_swingup_advance(evo_cartpole_state *s, int32_t *t, uint8_t *done,
                                                        float action, int64_t max_steps, float *obs) {
  if (*done) {
    evo_cartpole_swingup_obs(*s, obs);
    return 0.0f;
  }
  evo_cartpole_state n = evo_cartpole_swingup_step(*s, action);
  *s = n;
  int32_t steps = ++*t;
  *done = evo_cartpole_out_of_track(n) || steps >= max_steps;
  float st, ct, sx, cx;
  evo_cartpole_sincos(n.theta, &st, &ct);
  evo_cartpole_sincos((n.x / EVO_CARTPOLE_X_LIMIT) * (EVO_CARTPOLE_PI * 0.5f), &sx, &cx);
  obs[0] = n.x, obs[1] = n.x_dot, obs[2] = ct, obs[3] = st, obs[4] = n.theta_dot;
  return ((ct + 1.0f) * 0.5f) * cx; /* = evo_cartpole_swingup_reward(n) */
}

/* Gym pays the terminating step too. */
static inline EVO_HD float evo_cartpole_balance_advance(evo_cartpole_state *s, int32_t *t, uint8_t *done,
                                                        int32_t action, int64_t max_steps, float *obs) {
  float r = 0.0f;
  if (!*done) {
    evo_cartpole_state n = evo_cartpole_balance_step(*s, action);
    *s = n;
    int32_t steps = ++*t;
    *done = evo_cartpole_balance_failed(n) || steps >= max_steps;
    r = 1.0f;
  }
  evo_cartpole_balance_obs(*s, obs);
  return r;
}

static inline EVO_HD void evo_cartpole_obs(evo_cartpole_kind kind, evo_cartpole_state s, float *obs) {
  if (kind == EVO_CARTPOLE_SWINGUP)
    evo_cartpole_swingup_obs(s, obs);
  else
    evo_cartpole_balance_obs(s, obs);
}

#endif
