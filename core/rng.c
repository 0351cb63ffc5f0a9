/* Philox4x32-10 keys, element draws and host fill helpers. The per-element math lives in rng_math.h, shared with the
   CPU and CUDA kernels; this file only loops over it, so a fill and an element-wise call give identical floats. */
#include "evoc/rng.h"

#include <assert.h>

#include "rng_math.h"

void evo_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  evo_philox_block c = {{ctr[0], ctr[1], ctr[2], ctr[3]}};
  c = evo_philox10(c, key[0], key[1]);
  for (int i = 0; i < 4; i++) out[i] = c.w[i];
}

static evo_key key_from_block(evo_philox_block b) {
  evo_key k = {{b.w[0], b.w[1]}};
  return k;
}

evo_key evo_key_from_seed(uint64_t seed) {
  /* Feistel rounds: bijective on 64 bits, so distinct seeds never collide, while Philox mixes every bit. */
  uint32_t l = (uint32_t)(seed >> 32), r = (uint32_t)seed;
  for (uint32_t round = 0; round < 4; round++) {
    evo_philox_block c = {{r, round, 0u, EVO_RNG_TAG_SEED}};
    uint32_t f = evo_philox10(c, 0u, 0u).w[0];
    uint32_t t = l ^ f;
    l = r;
    r = t;
  }
  evo_key k = {{l, r}};
  return k;
}

void evo_key_split(evo_key k, int n, evo_key *out) {
  assert(n <= 0 || out);
  for (int i = 0; i < n; i++) {
    evo_philox_block c = {{(uint32_t)i, 0u, 0u, EVO_RNG_TAG_SPLIT}};
    out[i] = key_from_block(evo_philox10(c, k.w[0], k.w[1]));
  }
}

evo_key evo_key_fold_in(evo_key k, uint32_t data) {
  evo_philox_block c = {{data, 0u, 0u, EVO_RNG_TAG_FOLD}};
  return key_from_block(evo_philox10(c, k.w[0], k.w[1]));
}

float evo_rng_uniform01(const uint32_t key[2], uint64_t j) {
  return evo_rng_u01(evo_rng_block(key[0], key[1], j >> 2).w[j & 3]);
}

float evo_rng_normal(const uint32_t key[2], uint64_t j) {
  evo_philox_block b = evo_rng_block(key[0], key[1], j >> 1);
  unsigned w = 2u * (unsigned)(j & 1);
  return evo_rng_normal_from_words(b.w[w], b.w[w + 1]);
}

/* Out of line on purpose: inlined, GCC's -ffp-contract=fast (its gnu11 default) may fuse the exact product
   0.5 * erfc(.) inside the params into the per-element p = pl + u * pm, rounding a different product than the fill,
   whose params are opaque loaded values; then fill and element differ in the last ulps. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static evo_rng_tn_params tn_params(float lo, float hi) {
  return evo_rng_tn_params_init(lo, hi);
}

float evo_rng_truncated_normal(const uint32_t key[2], uint64_t j, float lo, float hi) {
  evo_philox_block b = evo_rng_block(key[0], key[1], j >> 2);
  return evo_rng_tn_from_word(b.w[j & 3], tn_params(lo, hi));
}

/* The fills walk blocks, not elements: one Philox call per 4 uniforms (2 normals) instead of one per element.
   Large fills (initialising millions of parameters) split the blocks over OpenMP threads; the result does not
   depend on the thread count because every block is a pure function of its index. */
#define EVO_RNG_PAR_MIN_BLOCKS 4096

void evo_rng_fill_uniform(evo_key k, float *out, int64_t n, float lo, float hi) {
  assert(n <= 0 || out);
  int64_t nb = (n + 3) / 4;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (nb > EVO_RNG_PAR_MIN_BLOCKS)
#endif
  for (int64_t b = 0; b < nb; b++) {
    evo_philox_block r = evo_rng_block(k.w[0], k.w[1], (uint64_t)b);
    int64_t m = n - 4 * b < 4 ? n - 4 * b : 4;
    for (int64_t i = 0; i < m; i++) out[4 * b + i] = evo_rng_uniform_range(evo_rng_u01(r.w[i]), lo, hi);
  }
}

void evo_rng_fill_normal(evo_key k, float *out, int64_t n) {
  assert(n <= 0 || out);
  int64_t nb = (n + 1) / 2;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (nb > EVO_RNG_PAR_MIN_BLOCKS)
#endif
  for (int64_t b = 0; b < nb; b++) {
    evo_philox_block r = evo_rng_block(k.w[0], k.w[1], (uint64_t)b);
    out[2 * b] = evo_rng_normal_from_words(r.w[0], r.w[1]);
    if (2 * b + 1 < n) out[2 * b + 1] = evo_rng_normal_from_words(r.w[2], r.w[3]);
  }
}

void evo_rng_fill_truncated_normal(evo_key k, float *out, int64_t n, float lo, float hi) {
  assert(n <= 0 || out);
  evo_rng_tn_params q = tn_params(lo, hi);
  int64_t nb = (n + 3) / 4;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (nb > EVO_RNG_PAR_MIN_BLOCKS)
#endif
  for (int64_t b = 0; b < nb; b++) {
    evo_philox_block r = evo_rng_block(k.w[0], k.w[1], (uint64_t)b);
    int64_t m = n - 4 * b < 4 ? n - 4 * b : 4;
    for (int64_t i = 0; i < m; i++) out[4 * b + i] = evo_rng_tn_from_word(r.w[i], q);
  }
}
