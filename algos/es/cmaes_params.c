/* CMA-ES default strategy parameters. Formulas: Hansen, "The CMA Evolution Strategy: A Tutorial" (arXiv
   1604.00772), Table 1 and eq. 49-55; the pycma variants (rank-mu offset, sep-CMA rates) follow pycma 4.x
   options_parameters.py (CMAParameters.set). */
#include <math.h>
#include "cmaes_params.h"

int evo_cmaes_default_lambda(int64_t n) { return 4 + (int)floor(3.0 * log((double)n)); }

void evo_cmaes_raw_weights(int lambda, double *w, double *mu_eff, double *mu_eff_minus) {
  double base = log((lambda + 1) / 2.0), sp = 0, sp2 = 0, sn = 0, sn2 = 0;
  for (int i = 0; i < lambda; i++) {
    w[i] = base - log((double)(i + 1));
    if (w[i] > 0)
      sp += w[i], sp2 += w[i] * w[i];
    else if (w[i] < 0)
      sn += w[i], sn2 += w[i] * w[i];
  }
  *mu_eff = sp * sp / sp2;
  *mu_eff_minus = sn2 > 0 ? sn * sn / sn2 : 0;
}

double evo_cmaes_finalize_weights(int lambda, int64_t n, double c1, double cmu, int active, double *w) {
  double mu_eff, mu_eff_minus;
  evo_cmaes_raw_weights(lambda, w, &mu_eff, &mu_eff_minus);
  double sp = 0, sn = 0;
  for (int i = 0; i < lambda; i++) {
    if (w[i] > 0) sp += w[i];
    if (w[i] < 0) sn -= w[i];
  }
  double alpha = 0;
  if (active && sn > 0 && cmu > 0) {
    alpha = fmin(1 + c1 / cmu, 1 + 2 * mu_eff_minus / (mu_eff + 2));
    alpha = fmin(alpha, (1 - c1 - cmu) / ((double)n * cmu));
    if (alpha < 0) alpha = 0;
  }
  for (int i = 0; i < lambda; i++) w[i] = w[i] > 0 ? w[i] / sp : (w[i] < 0 ? alpha * w[i] / sn : 0.0);
  return alpha;
}

evo_status evo_cmaes_params_compute(int64_t n64, int lambda, int flags, evo_cmaes_params *p, double *w) {
  if (n64 < 1 || lambda < 2)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cmaes: need n >= 1 and pop_size >= 2 (got n = %lld, pop %d)",
                     (long long)n64, lambda);
  const double n = (double)n64;
  double mu_eff, mu_eff_minus;
  evo_cmaes_raw_weights(lambda, w, &mu_eff, &mu_eff_minus);
  p->n = n64;
  p->lambda = lambda;
  p->mu = lambda / 2;
  p->mu_eff = mu_eff;
  p->mu_eff_minus = mu_eff_minus;
  p->c_m = 1;
  /* Step-size control (tutorial eq. 55). */
  p->c_sigma = (mu_eff + 2) / (n + mu_eff + 5);
  p->d_sigma = 1 + 2 * fmax(0, sqrt((mu_eff - 1) / (n + 1)) - 1) + p->c_sigma;
  p->chi_n = sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));
  /* Covariance learning rates (tutorial eq. 56-58; alpha_cov = 2). */
  const double offset = (flags & EVO_CMAES_PYCMA_CMU) ? 0.25 : 0.0;
  if (flags & EVO_CMAES_SEP) {
    /* pycma: cc_sep, c1_sep = conedf(N, mueff, N), cmu_sep = cmudf(N, mueff, 0.25) (always with the offset). */
    p->c_c = (1 + 1 / n + mu_eff / n) / (sqrt(n) + 1 / n + 2 * mu_eff / n);
    p->c_1 = 1 / (n + 2 * sqrt(n) + mu_eff / n);
    p->c_mu = fmin(1 - p->c_1, (0.25 + mu_eff + 1 / mu_eff - 2) / (n + 4 * sqrt(n) + mu_eff / 2));
  } else {
    p->c_c = (4 + mu_eff / n) / (n + 4 + 2 * mu_eff / n);
    p->c_1 = 2 / ((n + 1.3) * (n + 1.3) + mu_eff);
    p->c_mu = fmin(1 - p->c_1, 2 * (offset + mu_eff - 2 + 1 / mu_eff) / ((n + 2) * (n + 2) + mu_eff));
  }
  /* sep-CMA too gets all three limits of alpha_min (pycma drops the third, pos_def=False, for CMA_diagonal): with
     it, n c_mu sum|w-| <= 1 - c_1 - c_mu keeps every diagonal entry of C positive whatever the ranking. */
  p->alpha_min = evo_cmaes_finalize_weights(lambda, n64, p->c_1, p->c_mu, flags & EVO_CMAES_ACTIVE, w);
  double s = 0;
  for (int i = 0; i < lambda; i++) s += w[i];
  p->sum_w = s;
  double gap = floor(1 / (10 * n * (p->c_1 + p->c_mu)));
  p->eigen_gap = gap < 1 ? 1 : (int64_t)gap;
  return EVO_STATUS_OK;
}
