/* The simulation's observation normaliser on the host: running mean/M2 in doubles, merged once per evaluate with
   Chan et al.'s formula, normalising with the statistics frozen at the start of the evaluate (include/evoc/sim.h).
   The device path keeps the batch statistics on the device (sim_cuda.cu) and merges them here. */
#include <math.h>
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

/* Adds this step's valid observations to the evaluate's batch: a two-pass mean/M2 over the alive rows (each row
   standing for `weight` episodes), merged with Chan et al.'s formula. */
void evo_sim_norm_accumulate(evo_sim *s, const float *obs, const uint8_t *alive, int64_t rows, double weight) {
  const int64_t m = s->obs_numel;
  double k = 0, *mu = s->step_mean, *m2 = s->step_m2;
  memset(mu, 0, sizeof(double) * (size_t)m);
  memset(m2, 0, sizeof(double) * (size_t)m);
  for (int64_t e = 0; e < rows; e++)
    if (alive[e]) {
      k += 1;
      for (int64_t j = 0; j < m; j++) mu[j] += obs[e * m + j];
    }
  if (k == 0) return;
  for (int64_t j = 0; j < m; j++) mu[j] /= k;
  for (int64_t e = 0; e < rows; e++) /* row-major passes: an MNIST row is 3 MB */
    if (alive[e])
      for (int64_t j = 0; j < m; j++) {
        double d = obs[e * m + j] - mu[j];
        m2[j] += d * d;
      }
  double n0 = s->batch_count, n1 = k * weight, n = n0 + n1;
  for (int64_t j = 0; j < m; j++) {
    double d = mu[j] - s->batch_mean[j];
    s->batch_mean[j] += d * n1 / n;
    s->batch_m2[j] += m2[j] * weight + d * d * n0 * n1 / n;
  }
  s->batch_count = n;
}

void evo_sim_norm_merge_stats(evo_sim *s, double count, const double *mean, const double *m2) {
  if (count <= 0) return;
  double n0 = s->norm_count, n1 = count, n = n0 + n1;
  for (int64_t j = 0; j < s->obs_numel; j++) {
    double d = mean[j] - s->norm_mean[j];
    s->norm_mean[j] += d * n1 / n;
    s->norm_m2[j] += m2[j] + d * d * n0 * n1 / n;
  }
  s->norm_count = n;
}

void evo_sim_norm_merge_batch(evo_sim *s) { evo_sim_norm_merge_stats(s, s->batch_count, s->batch_mean, s->batch_m2); }

void evo_sim_batch_clear(evo_sim *s) {
  s->batch_count = 0;
  memset(s->batch_mean, 0, sizeof(double) * (size_t)s->obs_numel);
  memset(s->batch_m2, 0, sizeof(double) * (size_t)s->obs_numel);
}
