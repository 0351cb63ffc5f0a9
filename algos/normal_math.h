/* Internal: per-pair math of the strategies' noise stream (algos/normals.c), kept free of libm and of branches so
   that a loop over pairs vectorises (GCC: AVX-512 / AVX2 / SSE2) and the same code can run in a CUDA kernel.

   A Philox block (core/rng_math.h) gives two pairs of words; a pair (w0, w1) gives two normals by Box-Muller with
   both branches: u1 = 1 - w0[31:8] 2^-24 in (0, 1] (as evo_rng_normal_from_words), r = sqrt(-2 ln u1),
   theta = 2 pi w1[31:8] 2^-24, normals r cos theta and r sin theta (|z| <= 5.77). ln and sincos are Cephes'
   single-precision polynomials (Moshier, Cephes Math Library: logf.c, sinf.c, cosf.c) after an exact range
   reduction: the exponent for ln, and for sincos the integer angle split into a quadrant and a remainder in
   [-pi/4, pi/4). Both are within ~2 ulp of the correctly rounded value. */
#ifndef EVOC_ALGOS_NORMAL_MATH_H
#define EVOC_ALGOS_NORMAL_MATH_H
#include <stdint.h>
#include "rng_math.h" /* EVO_HD */

typedef union {
  float f;
  uint32_t u;
} evo_nm_bits;

/* ln x for a positive normal float x. */
static inline EVO_HD float evo_nm_logf(float x) {
  evo_nm_bits b = {.f = x};
  int32_t e = (int32_t)(b.u >> 23) - 127;
  b.u = (b.u & 0x007fffffu) | 0x3f800000u; /* mantissa in [1, 2) */
  const int32_t big = b.u > 0x3fb504f3u;   /* > sqrt 2: use m / 2 in [sqrt(1/2), 1) */
  b.u -= (uint32_t)big << 23;
  e += big;
  const float t = b.f - 1.0f, z = t * t, fe = (float)e;
  float p = 7.0376836292e-2f;
  p = p * t - 1.1514610310e-1f;
  p = p * t + 1.1676998740e-1f;
  p = p * t - 1.2420140846e-1f;
  p = p * t + 1.4249322787e-1f;
  p = p * t - 1.6668057665e-1f;
  p = p * t + 2.0000714765e-1f;
  p = p * t - 2.4999993993e-1f;
  p = p * t + 3.3333331174e-1f;
  float y = t * z * p;
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  return t + y + 0.693359375f * fe;
}

/* The two normals of one pair of Philox words. */
static inline EVO_HD void evo_nm_pair(uint32_t w0, uint32_t w1, float *zc, float *zs) {
  const float u1 = (float)(0x1000000u - (w0 >> 8)) * 5.9604644775390625e-8f; /* 1 - u01(w0), exact */
  const float r = sqrtf(-2.0f * evo_nm_logf(u1));
  /* theta = 2 pi m / 2^24 = (pi / 2) q + x: q the nearest quadrant, x = (m - q 2^22) 2 pi / 2^24. */
  const int32_t m = (int32_t)(w1 >> 8), q = (m + 0x200000) >> 22;
  const float x = (float)(m - (q << 22)) * 3.74507028e-7f, z = x * x;
  const float s = x + x * z * ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f);
  const float c =
      1.0f - 0.5f * z + z * z * ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f);
  /* (cos, sin)(q pi/2 + x): q = 0 (c, s), 1 (-s, c), 2 (-c, -s), 3 (s, -c) */
  const int32_t odd = q & 1;
  evo_nm_bits vc = {.f = odd ? s : c}, vs = {.f = odd ? c : s};
  vc.u ^= (uint32_t)(((q + 1) >> 1) & 1) << 31;
  vs.u ^= (uint32_t)((q >> 1) & 1) << 31;
  *zc = r * vc.f;
  *zs = r * vs.f;
}

#endif
