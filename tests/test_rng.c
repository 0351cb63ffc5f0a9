/* RNG: Philox4x32-10 known answers, the documented stream and key definitions, distribution statistics, and
   fill helpers equal to the element functions. Statistical bounds are ~5 sigma (or a 1e-6 tail probability) around
   the exact value; the keys are fixed, so every run checks the same numbers. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "evoc/rng.h"
#include "rng_math.h"

#define PI 3.14159265358979323846

/* ---- known answers ---- */

/* Random123's kat_vectors, "philox4x32 10" lines: CTR[4] KEY[2] -> OUT[4]. Taken from
   DEShawResearch/Random123-Boost, libs/random/test/test_philox.cpp (commit 916db91a), whose comment says they are
   cut and pasted from the kat_vectors file of the original Random123 distribution. */
static const uint32_t philox_kat[3][10] = {
    {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c,
     0x9b00dbd8},
    {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
     0x6d5451fd},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
     0x24126ea1},
};

Test(rng, philox_known_answers) {
  for (int v = 0; v < 3; v++) {
    uint32_t out[4];
    evo_philox4x32_10(&philox_kat[v][0], &philox_kat[v][4], out);
    for (int i = 0; i < 4; i++)
      cr_assert_eq(out[i], philox_kat[v][6 + i], "vector %d word %d: got %08x want %08x", v, i, out[i],
                   philox_kat[v][6 + i]);
  }
}

/* ---- stream definition (rng_math.h) ---- */

static void philox_ctr(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, const uint32_t key[2], uint32_t out[4]) {
  uint32_t c[4] = {c0, c1, c2, c3};
  evo_philox4x32_10(c, key, out);
}

Test(rng, stream_definition) {
  const uint32_t key[2] = {0x01234567, 0x89abcdef};
  const uint64_t js[] = {0, 1, 2, 3, 4, 7, 1001, (1ull << 34) + 5, (1ull << 40) + 2, UINT64_MAX};
  for (size_t t = 0; t < sizeof js / sizeof js[0]; t++) {
    uint64_t j = js[t], b = j >> 2;
    uint32_t w[4];
    philox_ctr((uint32_t)b, (uint32_t)(b >> 32), 0, 0, key, w);
    float u = (float)((double)(w[j & 3] >> 8) / 16777216.0);
    cr_assert_eq(evo_rng_uniform01(key, j), u, "uniform j=%llu", (unsigned long long)j);
    /* Same word as the uniform. A few ulps of slack: inlined here, the params may contract to FMAs differently
       than in rng.c under -ffp-contract=fast; a different word would be far off. */
    float tn = evo_rng_truncated_normal(key, j, -1.5f, 2.0f);
    float tw = evo_rng_tn_from_word(w[j & 3], evo_rng_tn_params_init(-1.5f, 2.0f));
    cr_assert(fabsf(tn - tw) <= 1e-6f * (1.0f + fabsf(tw)), "truncated j=%llu: %.9g vs %.9g", (unsigned long long)j, tn,
              tw);

    /* Normal: words 2(j&1), 2(j&1)+1 of block j>>1, checked against Box-Muller in double. */
    uint64_t nb = j >> 1;
    philox_ctr((uint32_t)nb, (uint32_t)(nb >> 32), 0, 0, key, w);
    double u1 = 1.0 - (double)(w[2 * (j & 1)] >> 8) / 16777216.0;
    double u2 = (double)(w[2 * (j & 1) + 1] >> 8) / 16777216.0;
    double z = sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
    float got = evo_rng_normal(key, j);
    cr_assert(fabs(got - z) < 2e-6 * (1.0 + fabs(z)), "normal j=%llu: %.9g vs %.9g", (unsigned long long)j, got, z);
  }
}

Test(rng, word_conversions_at_the_edges) {
  cr_assert_eq(evo_rng_u01(0u), 0.0f);
  cr_assert_eq(evo_rng_u01(0xffffffffu), 1.0f - 5.9604644775390625e-8f);
  cr_assert(evo_rng_u01(0xffffffffu) < 1.0f);
  /* u1 = 1 gives exactly 0; the smallest u1 (2^-24) gives the largest |z| = sqrt(48 ln 2), still finite. */
  cr_assert_eq(evo_rng_normal_from_words(0u, 0x12345678u), 0.0f);
  float zmax = evo_rng_normal_from_words(0xffffffffu, 0u);
  cr_assert(fabs(zmax - sqrt(48.0 * log(2.0))) < 2e-6, "zmax %.9g", zmax);
  /* 1 + (1 - 2^-24) rounds to 2.0 in float: the half-open range keeps it below hi. */
  float r = evo_rng_uniform_range(evo_rng_u01(0xffffffffu), 1.0f, 2.0f);
  cr_assert(r < 2.0f && r == nextafterf(2.0f, 1.0f), "r %.9g", r);
  cr_assert_eq(evo_rng_uniform_range(0.5f, 3.0f, 3.0f), 3.0f);
}

/* ---- distributions ---- */

typedef struct { double mean, var, skew, exkurt; } moments;

static moments sample_moments(const float *x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += x[i];
  double m = s / (double)n, m2 = 0, m3 = 0, m4 = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = x[i] - m, d2 = d * d;
    m2 += d2;
    m3 += d2 * d;
    m4 += d2 * d2;
  }
  m2 /= (double)n;
  m3 /= (double)n;
  m4 /= (double)n;
  moments r = {m, m2, m3 / pow(m2, 1.5), m4 / (m2 * m2) - 3.0};
  return r;
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* sqrt(n) * sup |F_n - F| over a sorted sample; P(> 2.7) ~ 2 exp(-2 * 2.7^2) ~ 1e-6. */
static double ks_stat(float *x, int64_t n, double (*cdf)(double)) {
  qsort(x, (size_t)n, sizeof *x, cmp_float);
  double d = 0;
  for (int64_t i = 0; i < n; i++) {
    double f = cdf(x[i]);
    double a = fabs((double)(i + 1) / (double)n - f), b = fabs(f - (double)i / (double)n);
    d = fmax(d, fmax(a, b));
  }
  return sqrt((double)n) * d;
}

static double cdf_uniform(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }
static double cdf_normal(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

#define NS 1000000
#define NKS 200000

Test(rng, uniform_statistics) {
  float *x = malloc(NS * sizeof *x);
  cr_assert_not_null(x);
  evo_rng_fill_uniform(evo_key_from_seed(1), x, NS, 0.0f, 1.0f);
  long bins[64] = {0};
  for (int64_t i = 0; i < NS; i++) {
    cr_assert(x[i] >= 0.0f && x[i] < 1.0f, "x[%lld] = %.9g", (long long)i, x[i]);
    bins[(int)(x[i] * 64.0f)]++;
  }
  moments m = sample_moments(x, NS);
  double se_mean = sqrt(1.0 / 12.0 / NS), se_var = sqrt((1.0 / 80.0 - 1.0 / 144.0) / NS);
  cr_assert(fabs(m.mean - 0.5) < 5 * se_mean, "mean %.6f", m.mean);
  cr_assert(fabs(m.var - 1.0 / 12.0) < 5 * se_var, "var %.6f", m.var);
  double chi2 = 0, e = NS / 64.0;
  for (int b = 0; b < 64; b++) chi2 += (bins[b] - e) * (bins[b] - e) / e;
  /* 63 degrees of freedom: 1e-6 tails at about 23 and 131 (Wilson-Hilferty). */
  cr_assert(chi2 > 23.0 && chi2 < 131.0, "chi2 %.2f", chi2);
  double ks = ks_stat(x, NKS, cdf_uniform);
  cr_log_info("uniform: mean %.6f var %.6f chi2 %.2f KS %.3f", m.mean, m.var, chi2, ks);
  cr_assert(ks < 2.7, "KS %.3f", ks);
  free(x);
}

Test(rng, uniform_range_statistics) {
  int64_t n = 200000;
  float *x = malloc((size_t)n * sizeof *x);
  cr_assert_not_null(x);
  evo_rng_fill_uniform(evo_key_from_seed(2), x, n, -3.0f, 5.0f);
  for (int64_t i = 0; i < n; i++) cr_assert(x[i] >= -3.0f && x[i] < 5.0f);
  moments m = sample_moments(x, n);
  cr_assert(fabs(m.mean - 1.0) < 5 * sqrt(64.0 / 12.0 / (double)n), "mean %.6f", m.mean);
  cr_assert(fabs(m.var - 64.0 / 12.0) < 5 * 64.0 * sqrt((1.0 / 80 - 1.0 / 144) / (double)n), "var %.6f", m.var);
  free(x);
}

Test(rng, normal_statistics) {
  float *x = malloc(NS * sizeof *x);
  cr_assert_not_null(x);
  evo_rng_fill_normal(evo_key_from_seed(3), x, NS);
  for (int64_t i = 0; i < NS; i++) cr_assert(isfinite(x[i]) && fabsf(x[i]) <= 5.7684f, "x[%lld]", (long long)i);
  moments m = sample_moments(x, NS);
  /* Standard errors of mean, variance, skewness and excess kurtosis of N(0,1): 1, sqrt 2, sqrt 6, sqrt 24 over
     sqrt n. */
  double rn = sqrt((double)NS);
  cr_assert(fabs(m.mean) < 5 / rn, "mean %.6f", m.mean);
  cr_assert(fabs(m.var - 1.0) < 5 * sqrt(2.0) / rn, "var %.6f", m.var);
  cr_assert(fabs(m.skew) < 5 * sqrt(6.0) / rn, "skew %.6f", m.skew);
  cr_assert(fabs(m.exkurt) < 5 * sqrt(24.0) / rn, "excess kurtosis %.6f", m.exkurt);
  const double qs[] = {-3, -2, -1, -0.5, 0, 0.5, 1, 2, 3};
  for (size_t t = 0; t < sizeof qs / sizeof qs[0]; t++) {
    long below = 0;
    for (int64_t i = 0; i < NS; i++) below += x[i] <= qs[t];
    double p = cdf_normal(qs[t]), f = (double)below / NS;
    cr_assert(fabs(f - p) < 5 * sqrt(p * (1 - p) / NS), "P(z <= %g): %.6f vs %.6f", qs[t], f, p);
  }
  double ks = ks_stat(x, NKS, cdf_normal);
  cr_log_info("normal: mean %.5f var %.5f skew %.5f exkurt %.5f KS %.3f", m.mean, m.var, m.skew, m.exkurt, ks);
  cr_assert(ks < 2.7, "KS %.3f", ks);
  free(x);
}

/* erfcinv against a double-precision Newton solution of erfc(t) = y, over y from FLT_MIN to 1. */
Test(rng, erfcinv_accuracy) {
  double worst = 0;
  for (double ly = -37.9; ly <= 0.0; ly += 0.01) {
    float y = (float)pow(10.0, ly);
    double t = evo_erfcinvf(y), ref = t;
    for (int k = 0; k < 6; k++) ref -= (erfc(ref) - y) / (-2.0 / sqrt(PI) * exp(-ref * ref));
    worst = fmax(worst, fabs(t - ref) / fmax(ref, 1e-3));
  }
  cr_assert(worst < 5e-7, "worst relative error %.3g", worst);
  cr_assert_eq(evo_erfcinvf(1.0f), 0.0f);
  cr_assert(isfinite(evo_erfcinvf(0.0f)) && evo_erfcinvf(0.0f) > 9.0f);
}

/* Moments of N(0,1) restricted to [a, b]; masses from erfc on the side where they are small. */
static void truncnorm_moments(double a, double b, double *mean, double *var) {
  double pa = isinf(a) ? 0 : exp(-0.5 * a * a) / sqrt(2 * PI), pb = isinf(b) ? 0 : exp(-0.5 * b * b) / sqrt(2 * PI);
  double z = a > 0 ? 0.5 * erfc(a / sqrt(2.0)) - 0.5 * erfc(b / sqrt(2.0))
                   : 0.5 * erfc(-b / sqrt(2.0)) - 0.5 * erfc(-a / sqrt(2.0));
  double apa = isinf(a) ? 0 : a * pa, bpb = isinf(b) ? 0 : b * pb;
  *mean = (pa - pb) / z;
  *var = 1.0 + (apa - bpb) / z - *mean * *mean;
}

Test(rng, truncated_normal_statistics) {
  const float iv[][2] = {{-2, 2}, {0.5f, 3}, {-1, -0.5f}, {4, 6}, {-8, -7}, {0, INFINITY}, {-INFINITY, INFINITY}};
  int64_t n = 200000;
  float *x = malloc((size_t)n * sizeof *x);
  cr_assert_not_null(x);
  for (size_t t = 0; t < sizeof iv / sizeof iv[0]; t++) {
    float lo = iv[t][0], hi = iv[t][1];
    evo_rng_fill_truncated_normal(evo_key_fold_in(evo_key_from_seed(4), (uint32_t)t), x, n, lo, hi);
    for (int64_t i = 0; i < n; i++)
      cr_assert(x[i] >= lo && x[i] <= hi, "[%g, %g]: x[%lld] = %.9g", lo, hi, (long long)i, x[i]);
    moments m = sample_moments(x, n);
    double mu, var;
    truncnorm_moments(lo, hi, &mu, &var);
    /* SE of the variance from the sample's own fourth moment: sqrt((m4 - var^2) / n). */
    double se_mean = sqrt(var / (double)n), se_var = sqrt((m.exkurt + 2.0) * m.var * m.var / (double)n);
    cr_log_info("[%g, %g]: mean %.6f (%.6f, %.1f se) var %.6g (%.6g, %.1f se)", lo, hi, m.mean, mu,
                (m.mean - mu) / se_mean, m.var, var, (m.var - var) / se_var);
    cr_assert(fabs(m.mean - mu) < 5 * se_mean, "[%g, %g]: mean %.6f want %.6f", lo, hi, m.mean, mu);
    cr_assert(fabs(m.var - var) < 5 * se_var, "[%g, %g]: var %.6g want %.6g", lo, hi, m.var, var);
  }
  free(x);
}

/* Each truncated-normal value inverts the CDF at its uniform: Phi(z) = Phi(lo) + u (Phi(hi) - Phi(lo)). */
Test(rng, truncated_normal_is_inverse_cdf) {
  const uint32_t key[2] = {7, 11};
  const float iv[][2] = {{-2, 2}, {4, 6}, {-8, -7}};
  for (size_t t = 0; t < 3; t++) {
    double lo = iv[t][0], hi = iv[t][1];
    int upper = lo > 0; /* compare in the tail where the masses are small */
    double fl = upper ? 0.5 * erfc(lo / sqrt(2.0)) : cdf_normal(lo);
    double fh = upper ? 0.5 * erfc(hi / sqrt(2.0)) : cdf_normal(hi);
    for (uint64_t j = 0; j < 2000; j++) {
      double u = evo_rng_uniform01(key, j), z = evo_rng_truncated_normal(key, j, iv[t][0], iv[t][1]);
      double want = fl + u * (fh - fl), got = upper ? 0.5 * erfc(z / sqrt(2.0)) : cdf_normal(z);
      double dens = exp(-0.5 * z * z) / sqrt(2 * PI);
      /* the mass error a few float ulps of z allow, plus float rounding of the masses themselves */
      cr_assert(fabs(got - want) <= 4e-7 * (fabs(z) + 1) * dens + 1e-6 * fabs(fh - fl),
                "[%g, %g] j=%llu: z %.9g mass %.9g want %.9g", lo, hi, (unsigned long long)j, z, got, want);
    }
  }
}

/* ---- keys ---- */

static int cmp_key(const void *a, const void *b) {
  const evo_key *x = a, *y = b;
  uint64_t u = (uint64_t)x->w[0] << 32 | x->w[1], v = (uint64_t)y->w[0] << 32 | y->w[1];
  return (u > v) - (u < v);
}

static int key_eq(evo_key a, evo_key b) { return a.w[0] == b.w[0] && a.w[1] == b.w[1]; }

static int all_distinct(evo_key *k, int n) {
  qsort(k, (size_t)n, sizeof *k, cmp_key);
  for (int i = 1; i < n; i++)
    if (key_eq(k[i - 1], k[i])) return 0;
  return 1;
}

Test(rng, key_from_seed) {
  enum { N = 5000 };
  static evo_key k[N + 3];
  for (int i = 0; i < N; i++) k[i] = evo_key_from_seed((uint64_t)i);
  k[N] = evo_key_from_seed(1ull << 32);
  k[N + 1] = evo_key_from_seed(UINT64_MAX);
  k[N + 2] = evo_key_from_seed(0x8000000000000000ull);
  cr_assert(key_eq(evo_key_from_seed(42), evo_key_from_seed(42)));
  cr_assert(!key_eq(evo_key_from_seed(0), (evo_key){{0, 0}}), "seed 0 must not map to the all-zero key");
  cr_assert(all_distinct(k, N + 3));
}

Test(rng, split_definition_and_distinctness) {
  evo_key k = evo_key_from_seed(123);
  enum { N = 1000 };
  static evo_key s[N + 1], s2[N];
  evo_key_split(k, N, s);
  evo_key_split(k, N, s2);
  cr_assert(memcmp(s, s2, sizeof s2) == 0, "split is deterministic");
  /* split(k, n)[i] = words 0,1 of philox({i, 0, 0, 'splt'}, k): a prefix does not depend on n. */
  for (int i = 0; i < N; i += 97) {
    uint32_t w[4];
    philox_ctr((uint32_t)i, 0, 0, 0x73706c74, k.w, w);
    cr_assert(s[i].w[0] == w[0] && s[i].w[1] == w[1], "split[%d]", i);
  }
  evo_key few[3];
  evo_key_split(k, 3, few);
  cr_assert(memcmp(few, s, sizeof few) == 0);
  s[N] = k;
  cr_assert(all_distinct(s, N + 1), "1000 split keys and their parent are pairwise distinct");
}

Test(rng, fold_in_definition_and_distinctness) {
  evo_key k = evo_key_from_seed(7);
  cr_assert(key_eq(evo_key_fold_in(k, 5), evo_key_fold_in(k, 5)));
  cr_assert(!key_eq(evo_key_fold_in(k, 1), evo_key_fold_in(k, 2)));
  uint32_t w[4];
  philox_ctr(9, 0, 0, 0x666f6c64, k.w, w);
  evo_key f = evo_key_fold_in(k, 9);
  cr_assert(f.w[0] == w[0] && f.w[1] == w[1]);
  /* fold_in and split use different counter tags, so fold_in(k, i) != split(k, n)[i]. */
  enum { N = 1000 };
  static evo_key all[2 * N + 1];
  evo_key_split(k, N, all);
  for (int i = 0; i < N; i++) all[N + i] = evo_key_fold_in(k, (uint32_t)i);
  all[2 * N] = k;
  cr_assert(all_distinct(all, 2 * N + 1));
  /* The generation/member nesting of rng.h: fold_in(fold_in(k, t), i) distinct over a small grid. */
  static evo_key g[64 * 64];
  for (int t = 0; t < 64; t++)
    for (int i = 0; i < 64; i++) g[t * 64 + i] = evo_key_fold_in(evo_key_fold_in(k, (uint32_t)t), (uint32_t)i);
  cr_assert(all_distinct(g, 64 * 64));
}

/* Streams of sibling keys are uncorrelated (|r| < 5 / sqrt n). */
Test(rng, sibling_streams_uncorrelated) {
  evo_key k = evo_key_from_seed(99), s[2];
  evo_key_split(k, 2, s);
  evo_key f1 = evo_key_fold_in(k, 1), f2 = evo_key_fold_in(k, 2);
  int64_t n = 100000;
  double cs = 0, cf = 0;
  for (int64_t j = 0; j < n; j++) {
    cs += (double)evo_rng_normal(s[0].w, (uint64_t)j) * evo_rng_normal(s[1].w, (uint64_t)j);
    cf += (double)evo_rng_normal(f1.w, (uint64_t)j) * evo_rng_normal(f2.w, (uint64_t)j);
  }
  cr_assert(fabs(cs / (double)n) < 5 / sqrt((double)n), "split corr %.5f", cs / (double)n);
  cr_assert(fabs(cf / (double)n) < 5 / sqrt((double)n), "fold_in corr %.5f", cf / (double)n);
}

/* ---- fill helpers = element functions ---- */

Test(rng, fill_equals_element_functions) {
  evo_key k = evo_key_from_seed(2024);
  enum { N = 1003 }; /* not a multiple of 4: ragged last block */
  static float x[N + 1];
  const float sentinel = -12345.0f;

  x[N] = sentinel;
  evo_rng_fill_uniform(k, x, N, -0.5f, 2.0f);
  for (uint64_t j = 0; j < N; j++)
    cr_assert_eq(x[j], evo_rng_uniform_range(evo_rng_uniform01(k.w, j), -0.5f, 2.0f), "uniform %llu",
                 (unsigned long long)j);
  evo_rng_fill_uniform(k, x, N, 0.0f, 1.0f);
  for (uint64_t j = 0; j < N; j++) cr_assert_eq(x[j], evo_rng_uniform01(k.w, j));
  cr_assert_eq(x[N], sentinel);

  evo_rng_fill_normal(k, x, N);
  for (uint64_t j = 0; j < N; j++) cr_assert_eq(x[j], evo_rng_normal(k.w, j), "normal %llu", (unsigned long long)j);
  cr_assert_eq(x[N], sentinel);

  evo_rng_fill_truncated_normal(k, x, N, -2.0f, 1.5f);
  for (uint64_t j = 0; j < N; j++)
    cr_assert_eq(x[j], evo_rng_truncated_normal(k.w, j, -2.0f, 1.5f), "truncated %llu", (unsigned long long)j);
  cr_assert_eq(x[N], sentinel);

  /* n = 0 writes nothing; a prefix of a longer fill is the shorter fill. */
  x[0] = sentinel;
  evo_rng_fill_normal(k, x, 0);
  cr_assert_eq(x[0], sentinel);
  float a[5], b[7];
  evo_rng_fill_normal(k, a, 5);
  evo_rng_fill_normal(k, b, 7);
  cr_assert(memcmp(a, b, sizeof a) == 0);
}

/* Large fills go parallel over blocks; the values must not change with that. */
Test(rng, large_fill_matches_elements) {
  int64_t n = 1 << 18;
  float *x = malloc((size_t)n * sizeof *x);
  cr_assert_not_null(x);
  evo_key k = evo_key_from_seed(5);
  evo_rng_fill_normal(k, x, n);
  for (int64_t j = 0; j < n; j += 4099) cr_assert_eq(x[j], evo_rng_normal(k.w, (uint64_t)j));
  cr_assert_eq(x[n - 1], evo_rng_normal(k.w, (uint64_t)(n - 1)));
  free(x);
}
