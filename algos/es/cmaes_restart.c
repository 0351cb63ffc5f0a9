/* CMA-ES stop criteria and IPOP / BIPOP restarts.

   Stop criteria (Hansen's tutorial, arXiv 1604.00772, Appendix B.3, and pycma's defaults), checked after every
   tell of the current run:
     TolFun        range of this generation's f and of the best f of the last 10 + ceil(30 n / lambda)
                   generations both below tol_fun; EqualFunValues: the latter range is zero
     TolX          sigma max(sqrt(C_ii), |p_c,i|) < tol_x sigma0 for every i (sigma0 of the run)
     TolUpSigma    sigma / sigma0 > tol_upsigma max_i D_i (pycma)
     NoEffectAxis  m == m + 0.1 sigma D_i b_i, i = generation mod n (full CMA; Cholesky-CMA: column i of A, an
                   axis of the same distribution)
     NoEffectCoord m_j == m_j + 0.2 sigma sqrt(C_jj) for some j
     ConditionCov  cond(C) > cond_limit at an eigendecomposition (C is then regularized, see cmaes.c)
     Stagnation    over the last 20% of the run's generations (at least 120 + 30 n / lambda, at most 20,000), the
                   median of the newest 30% of both the best-f and the median-f histories is not better than the
                   median of the oldest 30%
     MaxIter       BIPOP small-population runs only: 0.5 budget_large / lambda_s generations (pycma fmin)
   When one fires: no restart strategy, or max_restarts used (BIPOP: large-population restarts only; small runs
   do not count, as in pycma's fmin) -> a->stop = true (tell keeps updating if called);
   otherwise a new run starts at x0 = init_mean (+ U[-restart_box, restart_box]^n when restart_box > 0), with
     IPOP  (Auger & Hansen 2005): lambda_r = floor(lambda_def inc_popsize^r), sigma0 unchanged;
     BIPOP (Hansen 2009, as pycma's fmin implements it): the first run counts as small; the next run is small when
           the evaluations of finished small runs are below max(1, those of large runs), else large. Large run k
           (k = 1, 2, ...): lambda_def inc^k, sigma0. Small: lambda_s = floor(lambda_def (inc^k_L)^(U1^2))
           (k_L = large runs so far; with inc 2 this is the spec's lambda_def (lambda_L / (2 lambda_def))^(U^2)
           for the next large lambda_L), sigma0 10^(-2 U2), at most 0.5 budget_large / lambda_s generations.
   U1, U2 and the restart box draw from split(key, 2)[1] folded with the restart index: deterministic. The
   best-ever member is kept across runs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cmaes_impl.h"

/* Lower median by quickselect (Hoare partition, middle pivot): O(k) on average, runs every generation. */
double cmaes_median(double *v, int64_t k) {
  int64_t lo = 0, hi = k - 1, t = (k - 1) / 2;
  while (lo < hi) {
    double pv = v[lo + (hi - lo) / 2];
    int64_t i = lo, j = hi;
    while (i <= j) {
      while (v[i] < pv) i++;
      while (v[j] > pv) j--;
      if (i <= j) {
        double x = v[i];
        v[i++] = v[j], v[j--] = x;
      }
    }
    if (t <= j)
      hi = j;
    else if (t >= i)
      lo = i;
    else
      break;
  }
  return v[t];
}

/* k-th most recent entry (k = 0: this generation). */
static double hist_at(const double *h, const cmaes_scalars *sc, int64_t k) {
  int64_t i = ((int64_t)sc->hist_pos - 1 - k) % CMAES_HIST;
  return h[i < 0 ? i + CMAES_HIST : i];
}

/* Median of history entries k in [k0, k0 + cnt). */
static double hist_median(cmaes_state *s, const double *h, int64_t k0, int64_t cnt) {
  for (int64_t k = 0; k < cnt; k++) s->med[k] = hist_at(h, &s->sc, k0 + k);
  return cmaes_median(s->med, cnt);
}

static int stop_criteria(cmaes_state *s) {
  const int64_t n = s->n;
  const int lam = s->lambda;
  cmaes_scalars *sc = &s->sc;
  int f = (int)sc->stop_flags; /* ConditionCov is set by the decomposition */
  int64_t pos = (int64_t)sc->hist_pos;
  s->hist_best[pos] = s->fs[0];
  s->hist_med[pos] = s->fs[(lam - 1) / 2];
  sc->hist_pos = (double)((pos + 1) % CMAES_HIST);
  if (sc->hist_n < CMAES_HIST) sc->hist_n++;
  const int64_t hn = (int64_t)sc->hist_n;

  int64_t wf = 10 + (int64_t)ceil(30.0 * (double)n / lam);
  if (wf > CMAES_HIST) wf = CMAES_HIST;
  if (hn >= wf) {
    double hi = -INFINITY, lo = INFINITY;
    for (int64_t k = 0; k < wf; k++) {
      double v = hist_at(s->hist_best, sc, k);
      hi = fmax(hi, v), lo = fmin(lo, v);
    }
    double cr = s->fs[0] - s->fs[lam - 1];
    if (isfinite(lo) && isfinite(hi)) {
      if (hi - lo == 0) f |= CMAES_STOP_EQUALFUN;
      if (isfinite(cr) && cr < s->tol_fun && hi - lo < s->tol_fun) f |= CMAES_STOP_TOLFUN;
    }
  }

  int small = 1;
  double thr = s->tol_x * sc->sigma0, dmax = 0;
  for (int64_t j = 0; j < n; j++) {
    double cjj = s->sep ? s->C[j] : s->chol ? s->D[j] * s->D[j] : s->C[(size_t)j * n + j];
    double sd = sc->sigma * fmax(sqrt(cjj), fabs(s->pc[j]));
    if (!(sd < thr)) small = 0;
    dmax = fmax(dmax, s->D[j]);
    if (s->mean[j] == s->mean[j] + 0.2 * sc->sigma * sqrt(cjj)) f |= CMAES_STOP_NOEFFECTCOORD;
  }
  if (small) f |= CMAES_STOP_TOLX;
  if (sc->sigma / sc->sigma0 > s->tol_upsigma * dmax) f |= CMAES_STOP_TOLUPSIGMA;
  if (s->chol) {
    int64_t i = (int64_t)sc->run_gen % n, same = 1;
    const double *acol = s->C + (size_t)i * n; /* lower: rows j >= i */
    for (int64_t j = i; j < n && same; j++) same = s->mean[j] == s->mean[j] + 0.1 * sc->sigma * acol[j];
    if (same) f |= CMAES_STOP_NOEFFECTAXIS;
  } else if (!s->sep) {
    int64_t i = (int64_t)sc->run_gen % n, same = 1;
    const double *b = s->B + (size_t)i * n;
    for (int64_t j = 0; j < n && same; j++) same = s->mean[j] == s->mean[j] + 0.1 * sc->sigma * s->D[i] * b[j];
    if (same) f |= CMAES_STOP_NOEFFECTAXIS;
  }
  if (s->stagnation) {
    double w = fmax(120 + 30.0 * (double)n / lam, 0.2 * sc->run_gen);
    int64_t wi = w > CMAES_HIST ? CMAES_HIST : (int64_t)w, k3 = (int64_t)(0.3 * (double)wi);
    if (hn >= wi && k3 >= 1) {
      double nb = hist_median(s, s->hist_best, 0, k3), ob = hist_median(s, s->hist_best, wi - k3, k3);
      double nm = hist_median(s, s->hist_med, 0, k3), om = hist_median(s, s->hist_med, wi - k3, k3);
      if (nb <= ob && nm <= om) f |= CMAES_STOP_STAGNATION;
    }
  }
  if (sc->run_maxgen > 0 && sc->run_gen >= sc->run_maxgen) f |= CMAES_STOP_MAXITER;
  return f;
}

static evo_status restart(evo_algo *a, cmaes_state *s) {
  cmaes_scalars *sc = &s->sc;
  const int64_t n = s->n;
  double evals = (double)s->lambda * sc->run_gen;
  if (sc->regime == 1)
    sc->budget_large += evals;
  else
    sc->budget_small += evals;
  int r = a->restarts + 1;
  evo_key ks[2];
  evo_key_split(a->key, 2, ks);
  evo_key kr = evo_key_fold_in(ks[1], (uint32_t)r);
  double u1 = evo_rng_uniform01(kr.w, 0), u2 = evo_rng_uniform01(kr.w, 1);
  double lam, sigma0 = a->init_stdev, maxgen = 0;
  if (s->restarts_mode == 1) {
    lam = floor(sc->lambda_def * pow(s->inc_popsize, r));
    sc->regime = 1;
  } else if (sc->budget_small < fmax(1, sc->budget_large)) {
    lam = floor(sc->lambda_def * pow(pow(s->inc_popsize, sc->n_large), u1 * u1));
    sigma0 *= pow(0.01, u2);
    sc->regime = 0;
  } else {
    sc->n_large++;
    lam = floor(sc->lambda_def * pow(s->inc_popsize, sc->n_large));
    sc->regime = 1;
  }
  if (lam < 2) lam = 2;
  if (lam > 1e8) lam = 1e8;
  if (sc->regime == 0) maxgen = fmax(1, 0.5 * sc->budget_large / lam);
  evo_key kb = evo_key_fold_in(kr, 2);
  for (int64_t j = 0; j < n; j++)
    s->mold[j] = (double)a->init_mean[j] +
                 (s->restart_box > 0 ? s->restart_box * (2.0 * evo_rng_uniform01(kb.w, (uint64_t)j) - 1.0) : 0.0);
  evo_status st = cmaes_set_lambda(a, s, (int)lam);
  if (st == EVO_STATUS_OK) st = evo_algo_set_pop(a, (int)lam);
  if (st != EVO_STATUS_OK) return st;
  cmaes_reset_run(s, s->mold, sigma0);
  sc->run_maxgen = maxgen;
  a->restarts = r;
  return EVO_STATUS_OK;
}

evo_status cmaes_after_tell(evo_algo *a, cmaes_state *s) {
  int f = stop_criteria(s);
  s->sc.stop_flags = f;
  if (!f) return EVO_STATUS_OK;
  s->sc.last_stop = f;
  /* BIPOP counts only large-population restarts against max_restarts (pycma fmin: irun - runs_with_small). */
  int left = s->restarts_mode == 1   ? a->restarts < s->max_restarts
             : s->restarts_mode == 2 ? s->sc.n_large < s->max_restarts
                                     : 0;
  if (left) return restart(a, s);
  a->stop = true;
  return EVO_STATUS_OK;
}
