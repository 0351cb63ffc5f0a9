/* Counter-based RNG: Philox4x32-10 (Salmon et al. 2011, Random123) with JAX-like keys.
   A key is two u32 words. Streams are pure functions of (key, counter), so any rank can regenerate any member's
   noise: member i of generation t uses evo_key_fold_in(evo_key_fold_in(key, t), i). */
#ifndef EVOC_RNG_H
#define EVOC_RNG_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct { uint32_t w[2]; } evo_key;

/* The raw generator: 10 rounds of Philox4x32 on counter ctr with key k (Random123's philox4x32_R(10, ...)). */
void evo_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

evo_key evo_key_from_seed(uint64_t seed);
/* n independent keys derived from k (out[0..n)). */
void evo_key_split(evo_key k, int n, evo_key *out);
evo_key evo_key_fold_in(evo_key k, uint32_t data);

/* Element j of the stream of key k, as the graph's RNG ops compute it (so CPU, CUDA and host code agree). */
float evo_rng_uniform01(const uint32_t key[2], uint64_t j); /* in [0, 1) */
float evo_rng_normal(const uint32_t key[2], uint64_t j);
float evo_rng_truncated_normal(const uint32_t key[2], uint64_t j, float lo, float hi);

/* Fill helpers on host memory (element j = the functions above at j; fill_uniform gives lo + (hi - lo) u_j, kept
   below hi when rounding would reach it, so values lie in [lo, hi)). Streams and key derivation are defined
   in core/rng_math.h. */
void evo_rng_fill_uniform(evo_key k, float *out, int64_t n, float lo, float hi);
void evo_rng_fill_normal(evo_key k, float *out, int64_t n);
void evo_rng_fill_truncated_normal(evo_key k, float *out, int64_t n, float lo, float hi);

#ifdef __cplusplus
}
#endif
#endif
