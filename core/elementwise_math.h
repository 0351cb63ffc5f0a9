/* Internal: per-element math shared by the CPU kernels and (later) the CUDA kernels, so both backends compute the
   same formulas. Every function is branch-free (selects only) so that GCC vectorises the CPU loops that call it;
   on the device, exp/tanh map to the CUDA intrinsics instead of the polynomial forms. */
#ifndef EVOC_ELEMENTWISE_MATH_H
#define EVOC_ELEMENTWISE_MATH_H
#include <math.h>
#include <stdint.h>

#include "hd.h"

/* e^x with ~1 ulp error (Cephes expf polynomial, Cody-Waite reduction). Written branch-free because glibc's
   expf does not vectorise without -ffast-math. Overflows to inf, underflows through subnormals to 0, keeps NaN. */
static inline EVO_HD float evo_expf(float x) {
#ifdef __CUDA_ARCH__
  return expf(x);
#else
  float xc = x != x ? 0.0f : x;
  xc = xc > 89.0f ? 89.0f : xc;
  xc = xc < -110.0f ? -110.0f : xc;
  /* n = round(x / ln2) by the 1.5*2^23 trick: a float->int conversion after the clamps makes GCC branch. */
  union { float f; int32_t i; } m;
  m.f = xc * 1.44269504088896341f + 12582912.0f;
  float fn = m.f - 12582912.0f;
  int32_t n = m.i - 0x4B400000;
  float r = xc - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  /* 2^n in two normal halves so n in [-159, 129] neither wraps the exponent field nor skips subnormals. */
  int32_t n1 = n / 2, n2 = n - n1;
  union { uint32_t u; float f; } s1, s2;
  s1.u = (uint32_t)(n1 + 127) << 23;
  s2.u = (uint32_t)(n2 + 127) << 23;
  y = y * s1.f * s2.f;
  return x != x ? x : y;
#endif
}

/* tanh as the 13/6 rational minimax form XLA and Eigen use: no exp and a single divide, so the vectorised loop is not
   bound on vdivps twice. Inputs are clamped to +-9 (tanh rounds to +-1 in float beyond ~9.01) and the quotient to
   [-1, 1] (it overshoots by an ulp near 8). Max error ~5 ulp (2.9e-7 relative, checked over every positive float);
   |x| < 4e-4 returns x, which is tanh(x) rounded there and keeps -0. NaN passes through the selects. */
static inline EVO_HD float evo_tanhf(float x) {
#ifdef __CUDA_ARCH__
  return tanhf(x);
#else
  float xc = x > 9.0f ? 9.0f : x;
  xc = xc < -9.0f ? -9.0f : xc;
  float s = xc * xc;
  float p = -2.76076847742355e-16f;
  p = p * s + 2.00018790482477e-13f;
  p = p * s - 8.60467152213735e-11f;
  p = p * s + 5.12229709037114e-08f;
  p = p * s + 1.48572235717979e-05f;
  p = p * s + 6.37261928875436e-04f;
  p = p * s + 4.89352455891786e-03f;
  float q = 1.19825839466702e-06f;
  q = q * s + 1.18534705686654e-04f;
  q = q * s + 2.26843463243900e-03f;
  q = q * s + 4.89352518554385e-03f;
  float r = xc * p / q;
  r = r > 1.0f ? 1.0f : r;
  r = r < -1.0f ? -1.0f : r;
  return fabsf(x) < 4e-4f ? x : r;
#endif
}

/* Stable for any |x|: e^{-|x|} never overflows. */
static inline EVO_HD float evo_sigmoidf(float x) {
  float e = evo_expf(-fabsf(x));
  float s = 1.0f / (1.0f + e);
  return x >= 0.0f ? s : e * s;
}

/* NaN-propagating max/min (like jnp.maximum); ties return a, which the gradient rule relies on. */
static inline EVO_HD float evo_maxf(float a, float b) { return (a >= b || a != a) ? a : b; }
static inline EVO_HD float evo_minf(float a, float b) { return (a <= b || a != a) ? a : b; }

static inline EVO_HD float evo_reluf(float x) { return x < 0.0f ? 0.0f : x; } /* keeps NaN */
static inline EVO_HD float evo_signf(float x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : x); } /* 0, -0, NaN kept */
static inline EVO_HD float evo_clipf(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

/* float -> integer casts saturate and send NaN to 0 (as XLA and CUDA's cvt.rzi do); plain C conversion of an
   out-of-range float is undefined behaviour. In range they truncate toward zero like C. */
static inline EVO_HD int32_t evo_f32_to_i32(float x) {
  return x != x ? 0 : (x >= 2147483648.0f ? INT32_MAX : (x <= -2147483648.0f ? INT32_MIN : (int32_t)x));
}
static inline EVO_HD uint32_t evo_f32_to_u32(float x) {
  return x != x ? 0u : (x >= 4294967296.0f ? UINT32_MAX : (x <= 0.0f ? 0u : (uint32_t)x));
}
static inline EVO_HD uint8_t evo_f32_to_u8(float x) {
  return x != x ? 0 : (x >= 255.0f ? 255 : (x <= 0.0f ? 0 : (uint8_t)x));
}

#endif
