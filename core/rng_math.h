/* Internal: per-element RNG math shared by the CPU code (core/rng.c, CPU kernels) and the CUDA kernels, so every
   backend draws the same numbers for the same (key, element).

   Generator: Philox4x32-10 exactly as Random123's philox4x32_R(10, ctr, key) (checked against its known-answer
   vectors in tests/test_rng.c).

   Stream definition (a key is one stream; element j is a pure function of (key, j), one Philox call per thread):
     block(key, b)       = philox4x32_10(ctr = {(u32)b, (u32)(b >> 32), 0, 0}, key)
     uniform01(key, j)   = top 24 bits of block(key, j >> 2).w[j & 3] times 2^-24, in [0, 1)
     normal(key, j)      = Box-Muller (cos branch only) on words 2*(j&1) and 2*(j&1)+1 of block(key, j >> 1):
                           u1 = 1 - uniform01(first word) in (0, 1], u2 = uniform01(second word),
                           z = sqrt(-2 ln u1) cos(2 pi u2); |z| <= 5.77 because u1 >= 2^-24
     truncnormal(key, j) = inverse CDF of the normal restricted to [lo, hi], fed uniform01(key, j) (same word as the
                           uniform stream); see evo_rng_tn_from_word for the numerics
   Uniform, normal and truncated-normal draws from the same key reuse the same blocks and are therefore dependent:
   fold a tag into the key (evo_key_fold_in) for each independent use.

   Derived keys (ctr[3] tags keep these counters disjoint from every stream counter above, whose ctr[3] is 0):
     split(k, n)[i] = words 0,1 of philox4x32_10({i, 0, 0, 'splt'}, k)
     fold_in(k, d)  = words 0,1 of philox4x32_10({d, 0, 0, 'fold'}, k)
     key_from_seed  = a 4-round Feistel network on the 64-bit seed whose round function is word 0 of
                      philox4x32_10({half, round, 0, 'seed'}, {0, 0}); a Feistel network is a bijection whatever its
                      round function, so distinct seeds always give distinct keys.

   The raw Philox words are bit-identical on CPU and GPU. The float transforms use logf/cosf/erfcf/expf, whose last
   ulp differs between libm and CUDA (and nvcc contracts to FMA), so floats agree to a few ulps, not bitwise. */
#ifndef EVOC_RNG_MATH_H
#define EVOC_RNG_MATH_H
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "hd.h"

#define EVO_PHILOX_M0 0xD2511F53u
#define EVO_PHILOX_M1 0xCD9E8D57u
#define EVO_PHILOX_W0 0x9E3779B9u /* golden ratio */
#define EVO_PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

#define EVO_RNG_TAG_SPLIT 0x73706c74u /* 'splt' */
#define EVO_RNG_TAG_FOLD 0x666f6c64u  /* 'fold' */
#define EVO_RNG_TAG_SEED 0x73656564u  /* 'seed' */

/* Passed by value so that, inlined into a GPU thread, the four words stay in registers. */
typedef struct { uint32_t w[4]; } evo_philox_block;

static inline EVO_HD uint32_t evo_mulhi32(uint32_t a, uint32_t b) {
#ifdef __CUDA_ARCH__
  return __umulhi(a, b);
#else
  return (uint32_t)(((uint64_t)a * b) >> 32);
#endif
}

/* One Philox4x32 round (Random123 _philox4x32round): two 32x32->64 multiplies, a permutation and the key xor. */
static inline EVO_HD evo_philox_block evo_philox_round(evo_philox_block c, uint32_t k0, uint32_t k1) {
  uint32_t hi0 = evo_mulhi32(EVO_PHILOX_M0, c.w[0]), lo0 = EVO_PHILOX_M0 * c.w[0];
  uint32_t hi1 = evo_mulhi32(EVO_PHILOX_M1, c.w[2]), lo1 = EVO_PHILOX_M1 * c.w[2];
  evo_philox_block r = {{hi1 ^ c.w[1] ^ k0, lo1, hi0 ^ c.w[3] ^ k1, lo0}};
  return r;
}

/* Ten rounds, the key bumped by the Weyl constants between rounds (not before the first). */
static inline EVO_HD evo_philox_block evo_philox10(evo_philox_block c, uint32_t k0, uint32_t k1) {
  for (int i = 0; i < 10; i++) {
    if (i > 0) {
      k0 += EVO_PHILOX_W0;
      k1 += EVO_PHILOX_W1;
    }
    c = evo_philox_round(c, k0, k1);
  }
  return c;
}

/* Block b of key (k0, k1)'s stream. */
static inline EVO_HD evo_philox_block evo_rng_block(uint32_t k0, uint32_t k1, uint64_t b) {
  evo_philox_block c = {{(uint32_t)b, (uint32_t)(b >> 32), 0u, 0u}};
  return evo_philox10(c, k0, k1);
}

/* Top 24 bits so every value is an exact float and the result never rounds up to 1. */
static inline EVO_HD float evo_rng_u01(uint32_t w) { return (float)(w >> 8) * 5.9604644775390625e-8f; }

/* lo + (hi - lo) u, kept below hi when rounding would land on it (assumes lo < hi; lo == hi gives lo). */
static inline EVO_HD float evo_rng_uniform_range(float u, float lo, float hi) {
  float r = lo + (hi - lo) * u;
  return r < hi ? r : (lo < hi ? nextafterf(hi, lo) : lo);
}

/* Box-Muller, cos branch: each normal consumes its own two words, so neighbouring elements stay independent. */
static inline EVO_HD float evo_rng_normal_from_words(uint32_t w0, uint32_t w1) {
  float u1 = 1.0f - evo_rng_u01(w0); /* (0, 1], exact in float: no log(0) */
  float u2 = evo_rng_u01(w1);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958648f * u2);
}

/* Inverse complementary error function for y in (0, 1] (y below FLT_MIN is treated as FLT_MIN), result >= 0.
   Start: Giles' single-precision erfinv polynomials ("Approximating the erfinv function", GPU Computing Gems,
   2011) on x = 1 - y with w = -log(y (2 - y)) computed from y itself, so small y keeps its precision; beyond the
   polynomials' range (w > 16, y < 6e-8, only reachable through erfc) the asymptotic erfc(t) ~ e^{-t^2}/(t sqrt pi).
   Then one Halley step on erfc(t) = y (cubic convergence) brings it to ~2 ulp in t over all of (0, 1]: the start
   alone is off by up to 1e-3 near y = 6e-8, one step 2e-7, a second step no better. */
static inline EVO_HD float evo_erfcinvf(float y) {
  y = fmaxf(y, FLT_MIN);
  float w = -logf(y * (2.0f - y));
  float t;
  if (w < 5.0f) {
    float v = w - 2.5f;
    float p = 2.81022636e-08f;
    p = 3.43273939e-07f + p * v;
    p = -3.5233877e-06f + p * v;
    p = -4.39150654e-06f + p * v;
    p = 0.00021858087f + p * v;
    p = -0.00125372503f + p * v;
    p = -0.00417768164f + p * v;
    p = 0.246640727f + p * v;
    p = 1.50140941f + p * v;
    t = p * (1.0f - y);
  } else if (w <= 16.0f) {
    float v = sqrtf(w) - 3.0f;
    float p = -0.000200214257f;
    p = 0.000100950558f + p * v;
    p = 0.00134934322f + p * v;
    p = -0.00367342844f + p * v;
    p = 0.00573950773f + p * v;
    p = -0.0076224613f + p * v;
    p = 0.00943887047f + p * v;
    p = 1.00167406f + p * v;
    p = 2.83297682f + p * v;
    t = p * (1.0f - y);
  } else {
    float l = -logf(y);
    t = sqrtf(l - logf(sqrtf(l) * 1.77245385f));
  }
  t = fminf(t, 9.3f); /* e^{t^2} stays finite; erfcinv(FLT_MIN) is 9.19 */
  /* Halley: f = erfc(t) - y, f' = -2/sqrt(pi) e^{-t^2}, f'' = -2 t f'; all scaled by e^{t^2}. */
  float ee = (erfcf(t) - y) * expf(t * t);
  t = t - ee / (-1.12837917f + t * ee);
  return fmaxf(t, 0.0f);
}

/* Per-call constants of the truncated normal on [lo, hi]: lower-tail masses p = Phi(.) and upper-tail masses
   q = 1 - Phi(.), each from erfc so both tails keep full relative precision. */
typedef struct {
  float lo, hi;
  float pl, pm; /* Phi(lo), Phi(hi) - Phi(lo) */
  float ql, qm; /* 1 - Phi(lo), (1 - Phi(lo)) - (1 - Phi(hi)) */
} evo_rng_tn_params;

static inline EVO_HD evo_rng_tn_params evo_rng_tn_params_init(float lo, float hi) {
  const float r2 = 0.707106781186547524f;
  evo_rng_tn_params q;
  q.lo = lo;
  q.hi = hi;
  q.pl = 0.5f * erfcf(-lo * r2);
  q.pm = 0.5f * erfcf(-hi * r2) - q.pl;
  q.ql = 0.5f * erfcf(lo * r2);
  q.qm = q.ql - 0.5f * erfcf(hi * r2);
  return q;
}

/* Inverse CDF: u uniform in [0,1) maps to P = Phi(lo) + u (Phi(hi) - Phi(lo)). Lower half (P <= 1/2):
   z = -sqrt2 erfcinv(2P); upper half: the same u as Q = 1 - P in upper-tail form, z = sqrt2 erfcinv(2Q). This is
   sqrt2 erfinv(2P - 1) without the cancellation of 2P - 1 near +-1, so [4, 6] or [-8, -7] stay exact.
   Clamped to [lo, hi] against the last-ulp overshoot. */
static inline EVO_HD float evo_rng_tn_from_word(uint32_t w, evo_rng_tn_params q) {
  float u = evo_rng_u01(w);
  float p = q.pl + u * q.pm;
  float qq = q.ql - u * q.qm;
  int lower = p <= 0.5f;
  float t = evo_erfcinvf(2.0f * (lower ? p : qq));
  float z = (lower ? -1.41421356237309505f : 1.41421356237309505f) * t;
  return fminf(fmaxf(z, q.lo), q.hi);
}

#endif
