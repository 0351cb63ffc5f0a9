/* Internal: per-element math shared by the CPU kernels and (later) the CUDA kernels, so both backends compute the
   same formulas. Every function is branch-free (selects only) so that GCC vectorises the CPU loops that call it;
   on the device, exp/tanh map to the CUDA intrinsics instead of the polynomial forms. */
#ifndef EVOC_ELEMENTWISE_MATH_H
#define EVOC_ELEMENTWISE_MATH_H
#include <math.h>
#include <stdint.h>

#ifndef EVO_HD /* core/rng_math.h defines the same macro */
#ifdef __CUDACC__
#define EVO_HD __host__ __device__
#else
#define EVO_HD
#endif
#endif

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

/* tanh: odd polynomial near 0 (Cephes tanhf), 1 - 2/(e^{2|x|}+1) elsewhere; saturates to +-1 without NaN. */
static inline EVO_HD float evo_tanhf(float x) {
#ifdef __CUDA_ARCH__
  return tanhf(x);
#else
  float ax = fabsf(x);
  float s = x * x;
  float p = -5.70498872745e-3f;
  p = p * s + 2.06390887954e-2f;
  p = p * s - 5.37397155531e-2f;
  p = p * s + 1.33314422036e-1f;
  p = p * s - 3.33332819422e-1f;
  float small = p * s * x + x;
  float big = 1.0f - 2.0f / (evo_expf(2.0f * ax) + 1.0f);
  big = x < 0.0f ? -big : big;
  return ax < 0.625f ? small : big;
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
