/* Internal: CMA-ES strategy parameters (Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv 1604.00772,
   Table 1 and eq. 49-53; pycma 4.x options_parameters.py / recombination_weights.py for the variants), exposed so
   tests/test_cmaes.c can check them against the published values (../shared/specs/algorithms.md).

   All values are functions of (n, lambda, flags) only, so a checkpoint stores lambda and recomputes them
   bit-identically. */
#ifndef EVOC_CMAES_PARAMS_H
#define EVOC_CMAES_PARAMS_H
#include <stdint.h>
#include "evoc/status.h"

enum {
  EVO_CMAES_ACTIVE = 1,    /* negative weights (active CMA); otherwise they are zero */
  EVO_CMAES_PYCMA_CMU = 2, /* c_mu with pycma's rank-mu offset 0.25 in the numerator */
  EVO_CMAES_SEP = 4        /* sep-CMA learning rates (Ros & Hansen 2008 as set in pycma: c1_sep, cmu_sep, cc_sep) */
};

typedef struct {
  int64_t n;
  int lambda, mu; /* mu = floor(lambda / 2) = number of positive weights */
  double mu_eff, mu_eff_minus;
  double c_sigma, d_sigma; /* cumulation and damping of the step-size path */
  double c_c, c_1, c_mu, c_m;
  double chi_n;      /* E||N(0, I)|| ~ sqrt(n) (1 - 1/(4n) + 1/(21 n^2)) */
  double alpha_min;  /* sum of |negative weights| (0 when not active) */
  double sum_w;      /* sum of all weights = 1 - alpha_min */
  int64_t eigen_gap; /* generations between eigendecompositions: max(1, floor(1 / (10 n (c1 + cmu)))) */
} evo_cmaes_params;

/* 4 + floor(3 ln n). */
int evo_cmaes_default_lambda(int64_t n);

/* Raw weights w'_i = ln((lambda + 1) / 2) - ln i, i = 1..lambda (w[0] is the best), and mu_eff, mu_eff_minus. */
void evo_cmaes_raw_weights(int lambda, double *w, double *mu_eff, double *mu_eff_minus);

/* Final weights from the raw ones: positive w'_i / sum(w'+); negative alpha_min w'_i / sum|w'-| with
   alpha_min = min(1 + c1/cmu, 1 + 2 mu_eff_minus / (mu_eff + 2), (1 - c1 - cmu) / (n cmu)) (tutorial eq. 53;
   pycma RecombinationWeights.finalize_negative_weights with pos_def=True); negative ones are 0 when !active.
   Returns alpha_min (0 when !active). */
double evo_cmaes_finalize_weights(int lambda, int64_t n, double c1, double cmu, int active, double *w);

/* All parameters for dimension n and population lambda (>= 2); w gets lambda weights, best first. */
evo_status evo_cmaes_params_compute(int64_t n, int lambda, int flags, evo_cmaes_params *p, double *w);

#endif
