/* Internal: the NES family (snes.c, xnes.c, crfmnes.c) and LM-MA-ES (lmmaes.c): default parameters as functions of
   the dimension (tests/test_nes.c checks them against the papers' formulas), the matrix exponential (expm.c), and
   per-member noise shared by the four strategies. */
#ifndef EVOC_ES_NES_H
#define EVOC_ES_NES_H
#include <stdint.h>
#include "antithetic.h"

/* lambda = 4 + floor(3 ln n) (Wierstra et al. 2014, JMLR 15, Table 1; Hansen's tutorial, Table 1). */
static inline int evo_nes_default_lambda(int64_t n) { return 4 + (int)floor(3 * log((double)n)); }

/* z of member i of generation gen in double: the member key's evo_algo_normals stream, written to z[0 .. n). */
static inline void evo_nes_member_z(const evo_algo *a, int64_t gen, int64_t i, double *z) {
  evo_algo_normals_f64(evo_algo_member_key(a, gen, i), a->n, z);
}

/* pop_size >= min_pop (and even when `even`). */
static inline evo_status evo_nes_check_pop(const evo_algo *a, int min_pop, int even) {
  if (a->pop < min_pop || (even && a->pop % 2))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo %s: pop_size must be %s>= %d, got %d", a->vt->info.name,
                     even ? "even and " : "", min_pop, a->pop);
  return EVO_STATUS_OK;
}

/* SNES (Schaul et al. 2011; Wierstra et al. 2014, Table 1): eta_sigma = (3 + ln d) / (5 sqrt d). */
double evo_snes_eta_sigma(int64_t d);
/* xNES (Glasmachers et al. 2010): eta_sigma = eta_B = (9 + 3 ln d) / (5 d sqrt d). */
double evo_xnes_eta(int64_t d);

/* CR-FM-NES (Nomura & Ono 2022; github.com/nomuramasahir0/crfmnes, crfmnes/alg.py). Quantities depending on the number
   lambda_F of feasible (finite-fitness) members are functions below. */
typedef struct {
  int64_t n;
  int lambda;
  double mu_eff; /* 1 / sum (w_rank + 1/lambda)^2 */
  double c_s, c_c, c1_cma, chi_n;
  double h_inv;  /* root of (1 + a^2) exp(a^2 / 2) / 0.24 - 10 - n (the distance-weight parameter) */
} evo_crfmnes_params;

void evo_crfmnes_params_compute(int64_t n, int lambda, evo_crfmnes_params *p);
double evo_crfmnes_c1(const evo_crfmnes_params *p, double lambda_f);
double evo_crfmnes_eta_stag_sigma(const evo_crfmnes_params *p, double lambda_f);
double evo_crfmnes_eta_conv_sigma(const evo_crfmnes_params *p, double lambda_f);
double evo_crfmnes_eta_b(const evo_crfmnes_params *p, double lambda_f);
double evo_crfmnes_alpha_dist(const evo_crfmnes_params *p, double lambda_f);
/* Tests: drop CR-FM-NES's kept columns, so tell recomputes each stage's values as it does above their memory budget
   (the two paths give the same bits). */
void evo_crfmnes_drop_kept(evo_algo *a);

/* LM-MA-ES (Loshchilov, Glasmachers & Beyer 2019, Algorithm 1). */
typedef struct {
  int64_t n;
  int lambda, mu, m; /* mu = floor(lambda / 2), m direction vectors */
  double mu_w;       /* 1 / sum w_i^2 */
  double c_sigma;
} evo_lmmaes_params;

/* w: mu weights (ln(mu + 1/2) - ln i, normalised); m = 0 takes the default 4 + floor(3 ln n). */
void evo_lmmaes_params_compute(int64_t n, int lambda, int m, evo_lmmaes_params *p, double *w);
double evo_lmmaes_c_d(const evo_lmmaes_params *p, int i); /* i = 0 .. m-1 (the paper's i - 1) */
double evo_lmmaes_c_c(const evo_lmmaes_params *p, int i);

/* Matrix exponentials (expm.c), n x n column-major. expm(t G) of a symmetric G (lower triangle read) through its
   eigendecomposition Q diag(exp(t lambda)) Q^T: exact up to rounding. */
evo_status evo_expm_sym(int64_t n, const double *G, double t, double *E);
/* expm(A) of a general A: scaling and squaring with the [13/13] Padé approximant (Higham 2005, SIAM J. Matrix
   Anal. Appl. 26(4), Algorithm 2.3). */
evo_status evo_expm(int64_t n, const double *A, double *E);

#endif
