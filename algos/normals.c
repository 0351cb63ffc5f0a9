/* The strategies' noise stream (see evo_algo_normals in algo_impl.h), generated a group of EVO_NORMAL_GROUP
   normals at a time: Philox on EVO_NORMAL_GROUP / 4 counters as four word arrays (a loop over lanes inside the
   round loop, which vectorises), then Box-Muller on the word pairs (algos/normal_math.h, branch-free). Every
   element goes through the same group code whatever range is asked, so a slice is bit-identical to the same
   elements of a longer range, and no result depends on where a vector loop would have peeled or ended.
   Built with -fno-math-errno (CMakeLists.txt): sqrtf's argument is never negative here, and without the errno
   branch GCC vectorises the pair loops (no pragma or attribute does it). */
#include <string.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif
#include "algo_impl.h"
#include "normal_math.h"
#include "rng_math.h"

#define NB (EVO_NORMAL_GROUP / 4) /* Philox blocks per group */

/* Normals [4 NB g, 4 NB (g + 1)) of key's stream into out. */
static void normal_group(evo_key key, uint64_t g, float *restrict out) {
  uint32_t x0[NB], x1[NB], x2[NB], x3[NB];
  const uint64_t b0 = g * NB;
  for (int l = 0; l < NB; l++) {
    const uint64_t b = b0 + (uint64_t)l;
    x0[l] = (uint32_t)b, x1[l] = (uint32_t)(b >> 32), x2[l] = 0, x3[l] = 0;
  }
  uint32_t k0 = key.w[0], k1 = key.w[1];
#if defined(__AVX2__)
  /* Eight counters per vector, all ten rounds in registers. Compilers widen (uint64_t)M * x to 64-bit lanes and
     shuffle back (a third of the time); two vpmuludq on the even and odd words give the same hi and lo words. */
  const __m256i m0 = _mm256_set1_epi32((int)EVO_PHILOX_M0), m1 = _mm256_set1_epi32((int)EVO_PHILOX_M1);
  for (int l = 0; l < NB; l += 8) {
    __m256i a0 = _mm256_loadu_si256((const __m256i *)(x0 + l)), a1 = _mm256_loadu_si256((const __m256i *)(x1 + l));
    __m256i a2 = _mm256_loadu_si256((const __m256i *)(x2 + l)), a3 = _mm256_loadu_si256((const __m256i *)(x3 + l));
    uint32_t kk0 = k0, kk1 = k1;
    for (int r = 0; r < 10; r++) {
      if (r > 0) kk0 += EVO_PHILOX_W0, kk1 += EVO_PHILOX_W1;
      const __m256i e0 = _mm256_mul_epu32(a0, m0), o0 = _mm256_mul_epu32(_mm256_srli_epi64(a0, 32), m0);
      const __m256i e1 = _mm256_mul_epu32(a2, m1), o1 = _mm256_mul_epu32(_mm256_srli_epi64(a2, 32), m1);
      const __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(e0, 32), o0, 0xAA);
      const __m256i lo0 = _mm256_blend_epi32(e0, _mm256_slli_epi64(o0, 32), 0xAA);
      const __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(e1, 32), o1, 0xAA);
      const __m256i lo1 = _mm256_blend_epi32(e1, _mm256_slli_epi64(o1, 32), 0xAA);
      a0 = _mm256_xor_si256(_mm256_xor_si256(hi1, a1), _mm256_set1_epi32((int)kk0));
      a1 = lo1;
      a2 = _mm256_xor_si256(_mm256_xor_si256(hi0, a3), _mm256_set1_epi32((int)kk1));
      a3 = lo0;
    }
    _mm256_storeu_si256((__m256i *)(x0 + l), a0), _mm256_storeu_si256((__m256i *)(x1 + l), a1);
    _mm256_storeu_si256((__m256i *)(x2 + l), a2), _mm256_storeu_si256((__m256i *)(x3 + l), a3);
  }
#else
  for (int r = 0; r < 10; r++) { /* Random123 philox4x32_R(10): the key bumped between rounds */
    if (r > 0) k0 += EVO_PHILOX_W0, k1 += EVO_PHILOX_W1;
    for (int l = 0; l < NB; l++) {
      const uint32_t hi0 = (uint32_t)(((uint64_t)EVO_PHILOX_M0 * x0[l]) >> 32), lo0 = EVO_PHILOX_M0 * x0[l];
      const uint32_t hi1 = (uint32_t)(((uint64_t)EVO_PHILOX_M1 * x2[l]) >> 32), lo1 = EVO_PHILOX_M1 * x2[l];
      x0[l] = hi1 ^ x1[l] ^ k0, x1[l] = lo1, x2[l] = hi0 ^ x3[l] ^ k1, x3[l] = lo0;
    }
  }
#endif
  float c0[NB], s0[NB], c1[NB], s1[NB];
  for (int l = 0; l < NB; l++) evo_nm_pair(x0[l], x1[l], &c0[l], &s0[l]);
  for (int l = 0; l < NB; l++) evo_nm_pair(x2[l], x3[l], &c1[l], &s1[l]);
  for (int l = 0; l < NB; l++)
    out[4 * l] = c0[l], out[4 * l + 1] = s0[l], out[4 * l + 2] = c1[l], out[4 * l + 3] = s1[l];
}

void evo_algo_normals(evo_key key, int64_t i0, int64_t i1, float *out) {
  float tmp[EVO_NORMAL_GROUP];
  for (int64_t j = i0; j < i1;) {
    const int64_t g = j / EVO_NORMAL_GROUP, g0 = g * EVO_NORMAL_GROUP;
    const int64_t hi = g0 + EVO_NORMAL_GROUP < i1 ? g0 + EVO_NORMAL_GROUP : i1;
    if (j == g0 && hi == g0 + EVO_NORMAL_GROUP) {
      normal_group(key, (uint64_t)g, out + (j - i0));
    } else {
      normal_group(key, (uint64_t)g, tmp);
      memcpy(out + (j - i0), tmp + (j - g0), sizeof(float) * (size_t)(hi - j));
    }
    j = hi;
  }
}

void evo_algo_normals_f64(evo_key key, int64_t n, double *out) {
  float tmp[EVO_NORMAL_GROUP];
  for (int64_t j = 0; j < n; j += EVO_NORMAL_GROUP) {
    const int64_t m = n - j < EVO_NORMAL_GROUP ? n - j : EVO_NORMAL_GROUP;
    normal_group(key, (uint64_t)(j / EVO_NORMAL_GROUP), tmp);
    for (int64_t k = 0; k < m; k++) out[j + k] = tmp[k];
  }
}
