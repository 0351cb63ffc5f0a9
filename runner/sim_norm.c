/* The simulation's observation normaliser on the host: running mean/M2 in doubles, merged once per evaluate with
   Chan et al.'s formula, normalising with the statistics frozen at the start of the evaluate (include/evoc/sim.h).
   The device path accumulates the same per-member statistics on the device (sim_cuda.cu) and merges them here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "sim_impl.h"

/* The statistics one evaluate normalises with (fixed during it, as EvoJAX): mean 0 and sd 1 until two
   observations have been seen; an sd below 1e-8 (a constant component) counts as 1. */
void evo_sim_norm_prepare(evo_sim *s) {
  for (int64_t j = 0; j < s->obs_numel; j++) {
    double var = s->norm_count > 1 ? s->norm_m2[j] / s->norm_count : 1.0, sd = sqrt(var);
    s->use_mean[j] = s->norm_count > 1 ? (float)s->norm_mean[j] : 0.0f;
    s->use_sd[j] = sd > 1e-8 ? (float)sd : 1.0f;
  }
}

/* obs = clip((obs - mean) / sd, -5, 5) over rows episodes. */
void evo_sim_normalize(const evo_sim *s, float *obs, int64_t rows) {
  const int64_t m = s->obs_numel;
  const float *mu = s->use_mean, *sd = s->use_sd;
  for (int64_t e = 0; e < rows; e++) {
    float *o = obs + e * m;
    for (int64_t j = 0; j < m; j++) {
      float v = (o[j] - mu[j]) / sd[j];
      o[j] = v < -5.0f ? -5.0f : v > 5.0f ? 5.0f : v;
    }
  }
}

/* (count, mean, m2) += (n1, mu1, m21): Chan et al.'s parallel merge. */
static void chan_merge(double *count, double *mean, double *m2, double n1, const double *mu1, const double *m21,
                       int64_t m) {
  if (n1 <= 0) return;
  const double n0 = *count, n = n0 + n1;
  for (int64_t j = 0; j < m; j++) {
    double d = mu1[j] - mean[j];
    mean[j] += d * n1 / n;
    m2[j] += m21[j] + d * d * n0 * n1 / n;
  }
  *count = n;
}

/* Two-pass mean and M2 of the alive rows r0 .. r0 + reps - 1; returns how many there were. */
static double rows_stats(const float *obs, const uint8_t *alive, int64_t r0, int reps, int64_t m, double *mu,
                         double *m2) {
  double k = 0;
  memset(mu, 0, sizeof(double) * (size_t)m);
  memset(m2, 0, sizeof(double) * (size_t)m);
  for (int64_t e = r0; e < r0 + reps; e++)
    if (alive[e]) {
      k += 1;
      for (int64_t j = 0; j < m; j++) mu[j] += obs[e * m + j];
    }
  if (k == 0) return 0;
  for (int64_t j = 0; j < m; j++) mu[j] /= k;
  for (int64_t e = r0; e < r0 + reps; e++)
    if (alive[e])
      for (int64_t j = 0; j < m; j++) {
        double d = obs[e * m + j] - mu[j];
        m2[j] += d * d;
      }
  return k;
}

/* Statistics are kept per member and merged in member order at the end of an evaluate, so they do not depend on
   how the population was cut into chunks or ranks (sim_cuda.cu's kernel computes the same per member). */
void evo_sim_norm_accumulate(evo_sim *s, double *acc, const float *obs, const uint8_t *alive, int64_t members,
                             int reps, bool shared) {
  const int64_t m = s->obs_numel, w = 1 + 2 * m;
  double *mu = s->step_mean, *m2 = s->step_m2, k = 0;
  for (int64_t i = 0; i < members; i++) {
    if (!shared || i == 0) k = rows_stats(obs, alive, shared ? 0 : i * reps, reps, m, mu, m2);
    double *a = acc + i * w;
    chan_merge(a, a + 1, a + 1 + m, k, mu, m2, m);
  }
}

evo_status evo_sim_norm_reserve(evo_sim *s, int64_t n) {
  if (n <= s->macc_cap) return EVO_STATUS_OK;
  double *p = realloc(s->macc, sizeof(double) * (size_t)(n * (1 + 2 * s->obs_numel)));
  if (!p) return evo_sim_oom();
  s->macc = p, s->macc_cap = n;
  return EVO_STATUS_OK;
}

const double *evo_sim_norm_members(const evo_sim *s) { return s->macc; }

void evo_sim_norm_merge_members(evo_sim *s, int64_t n, const double *stats) {
  const int64_t m = s->obs_numel, w = 1 + 2 * m;
  s->batch_count = 0;
  memset(s->batch_mean, 0, sizeof(double) * (size_t)m);
  memset(s->batch_m2, 0, sizeof(double) * (size_t)m);
  for (int64_t i = 0; i < n; i++) {
    const double *a = stats + i * w;
    chan_merge(&s->batch_count, s->batch_mean, s->batch_m2, a[0], a + 1, a + 1 + m, m);
  }
  chan_merge(&s->norm_count, s->norm_mean, s->norm_m2, s->batch_count, s->batch_mean, s->batch_m2, m);
}
