/* CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv 1604.00772, Table 1) with active (negative)
   weights, and sep-CMA-ES (Ros & Hansen 2008, "A simple modification in CMA-ES achieving linear time and space
   complexity"; learning rates as in pycma). State in double.

   Sampling: member i of generation g is x_i = m + sigma y_i, y_i = B D z_i, z_i ~ N(0, I) the evo_algo_normals
   stream of evo_algo_member_key(a, g, i) (sep: y_i = D z_i), rounded to f32 once (fma, so every call site agrees).
   tell regenerates z_i / y_i from the keys (or reuses the y block a full ask computed; same BLAS call, same bits).
   Members are computed in blocks of CMAES_BLOCK aligned on the member index, so any rank's slice is bit-identical to
   the same rows of a full ask.

   tell (fitness larger is better; the ranking is stable, ties by member index), with w_k the weight of rank k:
     zbar = sum_{k<=mu} w_k z_k:lambda,  ybar = B D zbar,  m <- m + c_m sigma ybar
     p_s <- (1 - c_s) p_s + sqrt(c_s (2 - c_s) mu_eff) B zbar            (B zbar = C^{-1/2} ybar)
     h_s = [ ||p_s|| / sqrt(1 - (1 - c_s)^(2 (g+1))) < (1.4 + 2/(n+1)) E||N|| ]
     p_c <- (1 - c_c) p_c + h_s sqrt(c_c (2 - c_c) mu_eff) ybar
     w°_k = w_k (w_k >= 0), w_k n / ||z_k||^2 (w_k < 0; ||C^{-1/2} y_k|| = ||z_k||)
     C <- (1 + c_1 (1 - h_s) c_c (2 - c_c) - c_1 - c_mu sum w) C + c_1 p_c p_c^T + c_mu sum_k w°_k y_k y_k^T
     sigma <- sigma exp(min(1, (c_s / d_s) (||p_s|| / E||N|| - 1)))   (the cap of 1 is pycma's max_delta_log_sigma)
   Full CMA: C's update is one dsyrk call per sign of the coefficients (per CMAES_WCOLS columns; the rank-one term
   folded into the positive one), so only the lower triangle is formed; it is the only one read, so C is symmetric by
   construction (the "symmetrize" safeguard). Every eigen_gap generations of a run (an iteration count only) C is
   decomposed with LAPACK dsyevd; a condition number above cond_limit (or a non-positive eigenvalue) is repaired
   by adding s I with cond(C + s I) = cond_limit and counts as a stop criterion. sep-CMA updates diag(C)
   elementwise (the same formula) and D = sqrt(diag C) every generation.
   Safeguards: flat fitness (f_1 == f_ceil(0.7 lambda)) multiplies sigma by exp(0.2 + c_s / d_s) (tutorial's
   cmaes.m); sigma is clamped to [sigma_min, sigma_max].
   Cholesky-CMA-ES (Krause, Arbones & Igel 2016, "CMA-ES with Optimal Covariance Update and Storage Complexity",
   NeurIPS, Algorithm 2) keeps C = A A^T as its lower-triangular factor A: y_i = A z_i (one dtrmm per block),
   ybar = A zbar, p_s sums zbar itself (A^{-1} ybar; the paper proves A may replace C^{-1/2} there), and C's update
   becomes rank-one updates of A (chol_update.h): A scaled by sqrt(max(1e-8, alpha)) (the sliver keeps updates
   possible when c_mu reaches its cap 1 - c_1), then (c_1, p_c), then (c_mu w°_k, y_k) in rank order, the negative
   weights (downdates) last so every intermediate matrix is at least the final one, positive definite by the
   weights' bound (tutorial eq. 53). O(lambda n^2) per generation and no eigendecomposition; every eigen_gap
   generations D becomes the row norms of A (sqrt C_jj, for the stop criteria) and cond(C) is bounded below by
   (max a_jj / min a_jj)^2, which counts as ConditionCov when it exceeds cond_limit (no repair: A stays exact).
   Same bits as the separate cholesky_cmaes.c of session 10 (which had no restarts or stop criteria).
   Stop criteria, IPOP / BIPOP restarts: cmaes_restart.c. best: the best-ever member over all runs (the f32 vector
   that was evaluated), the initial mean before the first tell; Cholesky-CMA-ES: the mean until a restart. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "chol_update.h"
#include "cmaes_impl.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* Below this n, BLAS/LAPACK run on the calling thread: OpenBLAS would otherwise thread even n = 5 (dsymv inside
   dsyevd), and the OpenMP barriers cost far more than the work. The rule depends on n only, so results do not
   depend on timing. */
#define CMAES_SERIAL_N 256

static int threads_push(int64_t n) {
#ifdef _OPENMP
  int prev = omp_get_max_threads();
  if (n < CMAES_SERIAL_N) omp_set_num_threads(1);
  return prev;
#else
  (void)n;
  return 1;
#endif
}

static void threads_pop(int prev) {
#ifdef _OPENMP
  omp_set_num_threads(prev);
#else
  (void)prev;
#endif
}

static const char *const cmaes_restart_names[] = {"none", "ipop", "bipop", NULL};

static const evo_option_spec cmaes_options[] = {
    {"active", 1, 0, 1, "active CMA: negative weights in the C update (Jastrebski & Arnold 2006; tutorial eq. 53)",
     evo_option_bool},
    {"pycma_cmu", 0, 0, 1,
     "true: c_mu with pycma's rank-mu offset +0.25 in the numerator (pycma 4.x); false: tutorial eq. 58",
     evo_option_bool},
    {"restarts", 0, 0, 2, "restart on a stop criterion: none, ipop (Auger & Hansen 2005), bipop (Hansen 2009)",
     cmaes_restart_names},
    {"max_restarts", 9, 0, 1000,
     "restarts before a->stop; BIPOP counts large ones only (Auger & Hansen 2005; pycma fmin restarts=9)", NULL},
    {"inc_popsize", 2, 1, 16,
     "population factor per IPOP / large BIPOP restart (Auger & Hansen 2005; pycma incpopsize)", NULL},
    {"restart_box", 0, 0, 1e30,
     "restart x0 = init_mean + U[-restart_box, restart_box]^n (IPOP paper: uniform in the "
     "box); 0: init_mean (pycma with a fixed x0)", NULL},
    {"tol_fun", 1e-12, 0, 1e300,
     "stop: range of this generation's f and of the best f of the last 10 + ceil(30 n / "
     "lambda) generations < tol_fun (tutorial B.3 TolFun)", NULL},
    {"tol_x", 1e-12, 0, 1e300, "stop: sigma max(sqrt(C_ii), |p_c,i|) < tol_x sigma0 for all i (tutorial B.3 TolX)",
     NULL},
    {"tol_upsigma", 1e20, 1, 1e300, "stop: sigma / sigma0 > tol_upsigma max sqrt(eig C) (pycma tolupsigma)", NULL},
    {"cond_limit", 1e14, 10, 1e300,
     "stop, and regularize C + s I to this condition, when cond(C) exceeds it "
     "(tutorial B.3 ConditionCov; pycma tolconditioncov)", NULL},
    {"stagnation", 1, 0, 1, "true: stop on stagnation of the best and median f medians (tutorial B.3 Stagnation)",
     evo_option_bool},
    {"flat_fitness", 1, 0, 1, "true: sigma *= exp(0.2 + c_s / d_s) when f_1 == f_ceil(0.7 lambda) (tutorial cmaes.m)",
     evo_option_bool},
    {"eigen_gap", 0, 0, 1e9,
     "generations between eigendecompositions (cholesky_cmaes: between refreshes of diag C for the stop "
     "criteria); 0: max(1, floor(1 / (10 n (c_1 + c_mu)))) (tutorial B.2; pycma lazy_update_gap)", NULL},
    {"sigma_min", 1e-300, 0, 1e300, "lower bound on sigma (safeguard)", NULL},
    {"sigma_max", 1e300, 0, 1e300, "upper bound on sigma (safeguard)", NULL},
};

/* z of member (gen, i) in double: the member key's evo_algo_normals stream. */
static void member_z(const evo_algo *a, int64_t gen, int64_t i, double *z) {
  evo_algo_normals_f64(evo_algo_member_key(a, gen, i), a->n, z);
}

static inline float member_x(double m, double sigma, double y) { return (float)fma(sigma, y, m); }

/* y (n x cnt, column k = member b0 + k) and ||z||^2 of block members [b0, b0 + cnt) of generation gen; z also
   into zc (f32, exact) when zc is not NULL. */
static void gen_block(const evo_algo *a, cmaes_state *s, int64_t gen, int b0, int cnt, double *Y, double *zn2,
                      float *zc) {
  const int64_t n = s->n;
  double *Z = s->sep ? Y : s->zb;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n * cnt >= 16384)
#endif
  for (int k = 0; k < cnt; k++) {
    double *z = Z + (size_t)k * n, acc = 0;
    float *zf = zc ? zc + (size_t)k * n : NULL;
    member_z(a, gen, b0 + k, z);
    for (int64_t j = 0; j < n; j++) {
      acc += z[j] * z[j];
      if (zf) zf[j] = (float)z[j];
      if (!s->chol) z[j] *= s->D[j];
    }
    zn2[k] = acc;
  }
  if (s->chol) {
    memcpy(Y, Z, sizeof(double) * (size_t)n * (size_t)cnt);
    cblas_dtrmm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, (int)n, cnt, 1.0, s->C, (int)n, Y,
                (int)n);
  } else if (!s->sep) {
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)n, cnt, (int)n, 1.0, s->B, (int)n, Z, (int)n, 0.0, Y,
                (int)n);
  }
}

/* Block b's y columns for generation a->gen: from the cache when ask computed them, else computed (into the
   cache when there is one). */
static const double *block_y(const evo_algo *a, cmaes_state *s, int b, int *cnt, const double **zn2) {
  int b0 = b * CMAES_BLOCK;
  *cnt = s->lambda - b0 < CMAES_BLOCK ? s->lambda - b0 : CMAES_BLOCK;
  double *Y = s->ycache ? s->ycache + (size_t)b0 * s->n : s->yb;
  if (!s->ycache || s->ycache_gen[b] != a->gen) {
    gen_block(a, s, a->gen, b0, *cnt, Y, s->znorm2 + b0, s->zcache ? s->zcache + (size_t)b0 * s->n : NULL);
    if (s->ycache) s->ycache_gen[b] = a->gen;
  }
  *zn2 = s->znorm2 + b0;
  return Y;
}

/* z of member i of the current generation: from the cache when its block was generated, else drawn again. */
static void current_z(const evo_algo *a, const cmaes_state *s, int i, double *z) {
  if (s->zcache && s->ycache_gen[i / CMAES_BLOCK] == a->gen) {
    const float *zf = s->zcache + (size_t)i * s->n;
    for (int64_t j = 0; j < s->n; j++) z[j] = zf[j];
  } else {
    member_z(a, a->gen, i, z);
  }
}

static evo_status cmaes_ask(evo_algo *a, int begin, int end, float *pop) {
  cmaes_state *s = a->state;
  const int64_t n = s->n;
  int th = threads_push(n);
  for (int b = begin / CMAES_BLOCK; b * CMAES_BLOCK < end; b++) {
    int cnt, b0 = b * CMAES_BLOCK;
    const double *zn2, *Y = block_y(a, s, b, &cnt, &zn2);
    int lo = b0 > begin ? b0 : begin, hi = b0 + cnt < end ? b0 + cnt : end;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n * (hi - lo) >= 16384)
#endif
    for (int i = lo; i < hi; i++) {
      const double *y = Y + (size_t)(i - b0) * n;
      float *x = pop + (size_t)(i - begin) * n;
      for (int64_t j = 0; j < n; j++) x[j] = member_x(s->mean[j], s->sc.sigma, y[j]);
    }
  }
  threads_pop(th);
  return EVO_STATUS_OK;
}

/* Eigendecomposition of C (full CMA) into B, D; condition limit. Returns EVO_STATUS_INTERNAL if LAPACK fails.
   dsyevd (divide and conquer) rather than dsyevr (MRRR): on the C of a sphere run (clustered eigenvalues, the
   common case) dsyevd took 0.70 ms at n = 100 and 384 ms at n = 1000 against dsyevr's 0.86 and 602 ms (one
   OpenBLAS 0.3.21 thread, median of 21 and 5 calls, shared 2-vCPU Zen 4). It is most of the cost of a generation
   at n >= 1000: about 85% of ask + tell at n = 1000 with eigen_gap 8. */
static evo_status decompose(cmaes_state *s) {
  const int64_t n = s->n;
  for (int64_t j = 0; j < n; j++) /* copy the lower triangle (the upper one of B is scratch for LAPACK) */
    memcpy(s->B + (size_t)j * n + j, s->C + (size_t)j * n + j, sizeof(double) * (size_t)(n - j));
  lapack_int info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', (lapack_int)n, s->B, (lapack_int)n, s->ev, s->work,
                                        (lapack_int)s->lwork, s->iwork, (lapack_int)s->liwork);
  if (info != 0 || !isfinite(s->ev[0]) || !isfinite(s->ev[n - 1]))
    return evo_error(EVO_STATUS_INTERNAL, "cmaes: dsyevd failed (info %d) at n = %lld", (int)info, (long long)n);
  double lo = s->ev[0], hi = s->ev[n - 1];
  if (lo <= 0 || hi > s->cond_limit * lo) {
    double add = (hi - s->cond_limit * lo) / (s->cond_limit - 1);
    for (int64_t j = 0; j < n; j++) s->C[(size_t)j * n + j] += add, s->ev[j] += add;
    s->sc.stop_flags = (double)((int)s->sc.stop_flags | CMAES_STOP_CONDITION);
  }
  for (int64_t j = 0; j < n; j++) s->D[j] = sqrt(s->ev[j]);
  s->sc.eigen_count++;
  return EVO_STATUS_OK;
}

/* sep-CMA: D = sqrt(diag C) with the same condition limit. */
static void sep_update_d(cmaes_state *s) {
  const int64_t n = s->n;
  double lo = INFINITY, hi = 0;
  for (int64_t j = 0; j < n; j++) lo = fmin(lo, s->C[j]), hi = fmax(hi, s->C[j]);
  if (lo <= 0 || hi > s->cond_limit * lo) {
    double add = (hi - s->cond_limit * lo) / (s->cond_limit - 1);
    for (int64_t j = 0; j < n; j++) s->C[j] += add;
    s->sc.stop_flags = (double)((int)s->sc.stop_flags | CMAES_STOP_CONDITION);
  }
  for (int64_t j = 0; j < n; j++) s->D[j] = sqrt(s->C[j]);
}

/* Cholesky-CMA, every eigen_gap generations (as full CMA decomposes; the stop criteria read D in between): D =
   sqrt(diag C) = the row norms of A (their squares left in D by evo_chol_update); ConditionCov when
   (max a_jj / min a_jj)^2, a lower bound of cond(C) (A's eigenvalues are its diagonal), exceeds cond_limit. */
static void chol_update_d(cmaes_state *s) {
  const int64_t n = s->n;
  double lo = INFINITY, hi = 0;
  for (int64_t j = 0; j < n; j++) {
    const double ajj = fabs(s->C[(size_t)j * n + j]);
    s->D[j] = sqrt(s->D[j]), lo = fmin(lo, ajj), hi = fmax(hi, ajj);
  }
  if (!(lo > 0) || hi / lo * (hi / lo) > s->cond_limit)
    s->sc.stop_flags = (double)((int)s->sc.stop_flags | CMAES_STOP_CONDITION);
}

/* sigma^2 C is the covariance; only the product matters. When max D leaves [2^-64, 2^64] (a run kept going after
   a stop criterion, e.g. flat fitness raising sigma while C shrinks), a power of two moves from C to sigma:
   C *= 4^e (chol: A *= 2^e), D and p_c *= 2^e, sigma /= 2^e, all exact, so the distribution is unchanged bit for bit and the
   numbers stay far from overflow and denormals. */
static void rebalance(cmaes_state *s) {
  const int64_t n = s->n;
  double dmax = 0;
  for (int64_t j = 0; j < n; j++) dmax = fmax(dmax, s->D[j]);
  if (!(dmax > 0x1p-64 && dmax < 0x1p64)) {
    if (!(dmax > 0) || !isfinite(dmax)) return;
    int e = -ilogb(dmax);
    double f = ldexp(1.0, e), f2 = ldexp(1.0, 2 * e);
    size_t nn = s->sep ? (size_t)n : (size_t)n * (size_t)n;
    for (size_t k = 0; k < nn; k++) s->C[k] *= s->chol ? f : f2;
    for (int64_t j = 0; j < n; j++) s->D[j] *= f, s->pc[j] *= f;
    s->sc.sigma = ldexp(s->sc.sigma, -e);
  }
}

/* C <- beta C + sign X X^T with X the k columns in cols (lower triangle); then beta = 1 and k = 0. */
static void syrk_flush(cmaes_state *s, const double *cols, int *k, double sign, double *beta) {
  if (*k == 0 && *beta == 1.0) return;
  cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, (int)s->n, *k, sign, cols, (int)s->n, *beta, s->C, (int)s->n);
  *beta = 1.0, *k = 0;
}

static void cmaes_tell_cov(evo_algo *a, cmaes_state *s, double alpha, double sigma_old) {
  const int64_t n = s->n;
  const evo_cmaes_params *p = &s->p;
  const int best = s->order[0];
  const int want_best = !s->sc.has_best || s->fs[0] > s->sc.best_f;
  if (s->sep) {
    for (int64_t j = 0; j < n; j++) s->tmp[j] = 0; /* sum_k c_mu w°_k y_k^2 */
  }
  /* Full CMA: the scaled columns sqrt|coef| y are collected per sign (the rank-one column sqrt(c_1) p_c first) and
     added with one dsyrk per sign and CMAES_WCOLS columns, so at lambda < CMAES_WCOLS C is read and written twice
     per generation. The first call also applies alpha (its beta). Cholesky-CMA: p_c into V's column 0 (chol_collect
     filled the others), then one fused pass of rank-one updates over A. */
  int kp = 0, kn = 0;
  double beta = alpha;
  if (s->chol) {
    memcpy(s->V, s->pc, sizeof(double) * (size_t)n);
    s->beta[0] = p->c_1;
  } else if (!s->sep) {
    const double c = sqrt(p->c_1);
    for (int64_t j = 0; j < n; j++) s->pcol[j] = c * s->pc[j];
    kp = 1;
  }
  for (int b = 0; b * CMAES_BLOCK < s->lambda; b++) {
    int cnt, b0 = b * CMAES_BLOCK;
    const double *zn2, *Y = block_y(a, s, b, &cnt, &zn2);
    if (want_best && best >= b0 && best < b0 + cnt) {
      const double *y = Y + (size_t)(best - b0) * n;
      for (int64_t j = 0; j < n; j++) s->best_x[j] = member_x(s->mold[j], sigma_old, y[j]);
      s->sc.has_best = 1, s->sc.best_f = s->fs[0];
    }
    for (int k = 0; k < cnt && !s->chol; k++) {
      double w = s->w[s->rank[b0 + k]];
      if (w == 0) continue;
      double coef = p->c_mu * (w > 0 ? w : w * (double)n / zn2[k]); /* w°: tutorial eq. 46 */
      const double *y = Y + (size_t)k * n;
      if (s->sep) {
        for (int64_t j = 0; j < n; j++) s->tmp[j] += coef * y[j] * y[j];
        continue;
      }
      double c = sqrt(fabs(coef)), *dst = coef > 0 ? s->pcol + (size_t)kp++ * n : s->ncol + (size_t)kn++ * n;
      for (int64_t j = 0; j < n; j++) dst[j] = c * y[j];
      if (kp == CMAES_WCOLS) syrk_flush(s, s->pcol, &kp, 1.0, &beta);
      if (kn == CMAES_WCOLS) syrk_flush(s, s->ncol, &kn, -1.0, &beta);
    }
  }
  if (s->chol)
    evo_chol_update(s->C, n, sqrt(fmax(1e-8, alpha)), s->beta, s->V, s->nw + 1, s->bb, s->coef,
                    s->refresh ? s->D : NULL);
  else if (!s->sep) {
    syrk_flush(s, s->pcol, &kp, 1.0, &beta);
    syrk_flush(s, s->ncol, &kn, -1.0, &beta);
  }
  if (s->sep)
    for (int64_t j = 0; j < n; j++) s->C[j] = alpha * s->C[j] + p->c_1 * s->pc[j] * s->pc[j] + s->tmp[j];
}

/* Cholesky-CMA: y_k of every rank below the last nonzero weight into V's column rank + 1 with its update
   coefficient c_mu w°_k (a zero weight gives a no-op update); then ybar = sum_k w_k y_k over the positive weights,
   in rank order. */
static void chol_collect(evo_algo *a, cmaes_state *s) {
  const int64_t n = s->n;
  s->nw = 0;
  for (int r = 0; r < s->lambda; r++)
    if (s->w[r] != 0) s->nw = r + 1;
  for (int b = 0; b * CMAES_BLOCK < s->lambda; b++) {
    int cnt, b0 = b * CMAES_BLOCK;
    const double *zn2, *Y = block_y(a, s, b, &cnt, &zn2);
    for (int k = 0; k < cnt; k++) {
      const int r = s->rank[b0 + k];
      if (r >= s->nw) continue;
      const double w = s->w[r];
      memcpy(s->V + (size_t)(r + 1) * n, Y + (size_t)k * n, sizeof(double) * (size_t)n);
      s->beta[r + 1] = s->p.c_mu * (w > 0 ? w : w * (double)n / zn2[k]); /* w°: tutorial eq. 46 */
    }
  }
  memset(s->ybar, 0, sizeof(double) * (size_t)n);
  for (int r = 0; r < s->lambda && s->w[r] > 0; r++) {
    const double *y = s->V + (size_t)(r + 1) * n;
    for (int64_t j = 0; j < n; j++) s->ybar[j] += s->w[r] * y[j];
  }
}

static evo_status tell_impl(evo_algo *a, const float *fitness) {
  cmaes_state *s = a->state;
  const int64_t n = s->n;
  const int lam = s->lambda;
  const evo_cmaes_params *p = &s->p;
  evo_shape_argsort_desc(fitness, lam, s->order);
  for (int r = 0; r < lam; r++) s->rank[s->order[r]] = r, s->fs[r] = fitness[s->order[r]];

  /* zbar over the positive weights, in rank order. */
  memset(s->zbar, 0, sizeof(double) * (size_t)n);
  for (int r = 0; r < lam && s->w[r] > 0; r++) {
    current_z(a, s, s->order[r], s->tmp);
    for (int64_t j = 0; j < n; j++) s->zbar[j] += s->w[r] * s->tmp[j];
  }
  /* ybar = B D zbar; tmp = B zbar = C^{-1/2} ybar (full CMA: one n x n x 2 product, B read once). */
  if (s->sep) {
    for (int64_t j = 0; j < n; j++) s->ybar[j] = s->D[j] * s->zbar[j];
    memcpy(s->tmp, s->zbar, sizeof(double) * (size_t)n);
  } else if (s->chol) { /* ybar = A zbar from the members' y; p_s takes zbar (Krause et al.) */
    chol_collect(a, s);
    memcpy(s->tmp, s->zbar, sizeof(double) * (size_t)n);
  } else {
    for (int64_t j = 0; j < n; j++) s->zb[j] = s->D[j] * s->zbar[j], s->zb[n + j] = s->zbar[j];
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)n, 2, (int)n, 1.0, s->B, (int)n, s->zb, (int)n, 0.0,
                s->yb, (int)n);
    memcpy(s->ybar, s->yb, sizeof(double) * (size_t)n);
    memcpy(s->tmp, s->yb + n, sizeof(double) * (size_t)n);
  }
  const double sigma_old = s->sc.sigma;
  memcpy(s->mold, s->mean, sizeof(double) * (size_t)n);
  for (int64_t j = 0; j < n; j++) s->mean[j] += p->c_m * sigma_old * s->ybar[j];

  /* Paths. */
  const double cs = p->c_sigma, cc = p->c_c;
  double fs_ = sqrt(cs * (2 - cs) * p->mu_eff), psn = 0;
  for (int64_t j = 0; j < n; j++) {
    s->ps[j] = (1 - cs) * s->ps[j] + fs_ * s->tmp[j];
    psn += s->ps[j] * s->ps[j];
  }
  psn = sqrt(psn);
  double g1 = s->sc.run_gen + 1;
  int hs = psn / sqrt(1 - pow(1 - cs, 2 * g1)) < (1.4 + 2 / ((double)n + 1)) * p->chi_n;
  double fc = hs ? sqrt(cc * (2 - cc) * p->mu_eff) : 0;
  for (int64_t j = 0; j < n; j++) s->pc[j] = (1 - cc) * s->pc[j] + fc * s->ybar[j];

  /* Covariance. */
  const int64_t gap = s->eigen_gap > 0 ? s->eigen_gap : p->eigen_gap;
  s->refresh = ((int64_t)s->sc.run_gen + 1) % gap == 0;
  double delta = (1 - hs) * cc * (2 - cc);
  double alpha = s->chol ? 1 - p->c_1 - p->c_mu * p->sum_w + p->c_1 * (1 - hs) * cc * (2 - cc) /* A's scale */
                         : 1 + p->c_1 * delta - p->c_1 - p->c_mu * p->sum_w;
  cmaes_tell_cov(a, s, alpha, sigma_old);

  /* Step size. */
  double ds = fmin(1, (cs / p->d_sigma) * (psn / p->chi_n - 1));
  s->sc.sigma *= exp(ds);
  int kflat = (int)ceil(0.7 * lam) - 1;
  if (s->flat_fitness && s->fs[0] == s->fs[kflat]) s->sc.sigma *= exp(0.2 + cs / p->d_sigma);
  s->sc.sigma = fmin(fmax(s->sc.sigma, s->sigma_min), s->sigma_max);

  s->sc.run_gen++;
  evo_status st = EVO_STATUS_OK;
  s->sc.stop_flags = 0;
  if (s->sep)
    sep_update_d(s);
  else if (s->chol && s->refresh)
    chol_update_d(s);
  else if (!s->chol && (int64_t)s->sc.run_gen % gap == 0)
    st = decompose(s);
  if (st != EVO_STATUS_OK) return st;
  rebalance(s);
  return cmaes_after_tell(a, s);
}

static evo_status cmaes_tell(evo_algo *a, const float *fitness) {
  int th = threads_push(a->n);
  evo_status st = tell_impl(a, fitness);
  threads_pop(th);
  return st;
}

/* ---- lifetime ---- */

static void free_lambda_buffers(cmaes_state *s) {
  free(s->w), free(s->order), free(s->rank), free(s->fs), free(s->znorm2), free(s->ycache), free(s->ycache_gen);
  free(s->zcache), free(s->V), free(s->beta), free(s->bb), free(s->coef);
  s->zcache = NULL;
  s->w = s->fs = s->znorm2 = s->ycache = s->V = s->beta = s->bb = s->coef = NULL;
  s->order = s->rank = NULL;
  s->ycache_gen = NULL;
}

evo_status cmaes_set_lambda(evo_algo *a, cmaes_state *s, int lambda) {
  (void)a;
  if (lambda != s->lambda || !s->w) {
    free_lambda_buffers(s);
    int nb = (lambda + CMAES_BLOCK - 1) / CMAES_BLOCK;
    s->w = malloc(sizeof(double) * (size_t)lambda);
    s->fs = malloc(sizeof(double) * (size_t)lambda);
    s->znorm2 = malloc(sizeof(double) * (size_t)lambda);
    s->order = malloc(sizeof(int) * (size_t)lambda);
    s->rank = malloc(sizeof(int) * (size_t)lambda);
    s->ycache_gen = malloc(sizeof(int64_t) * (size_t)nb);
    if (s->n * lambda <= CMAES_CACHE_MAX) {
      s->ycache = malloc(sizeof(double) * (size_t)(s->n * lambda));
      s->zcache = s->ycache ? malloc(sizeof(float) * (size_t)(s->n * lambda)) : NULL;
      if (!s->zcache) free(s->ycache), s->ycache = NULL; /* the caches are an optimisation: go without */
    }
    if (s->chol) { /* rank-one updates: p_c and every weighted member */
      const size_t u = (size_t)lambda + 1;
      s->V = malloc(sizeof(double) * (size_t)s->n * u);
      s->beta = malloc(sizeof(double) * u), s->bb = malloc(sizeof(double) * u);
      s->coef = malloc(sizeof(double) * 3 * u);
    }
    if (!s->w || !s->fs || !s->znorm2 || !s->order || !s->rank || !s->ycache_gen ||
        (s->chol && (!s->V || !s->beta || !s->bb || !s->coef))) {
      free_lambda_buffers(s);
      return evo_error(EVO_STATUS_OUT_OF_MEMORY, "cmaes: out of memory for population %d", lambda);
    }
    evo_status st = evo_cmaes_params_compute(s->n, lambda, s->flags, &s->p, s->w);
    if (st != EVO_STATUS_OK) return st;
    s->lambda = lambda;
  }
  for (int b = 0; b * CMAES_BLOCK < lambda; b++) s->ycache_gen[b] = -1;
  return EVO_STATUS_OK;
}

void cmaes_reset_run(cmaes_state *s, const double *x0, double sigma0) {
  const int64_t n = s->n;
  memcpy(s->mean, x0, sizeof(double) * (size_t)n);
  memset(s->ps, 0, sizeof(double) * (size_t)n);
  memset(s->pc, 0, sizeof(double) * (size_t)n);
  if (s->sep) {
    for (int64_t j = 0; j < n; j++) s->C[j] = 1;
  } else {
    memset(s->C, 0, sizeof(double) * (size_t)(n * n));
    for (int64_t j = 0; j < n; j++) s->C[(size_t)j * n + j] = 1;
    if (s->B) {
      memset(s->B, 0, sizeof(double) * (size_t)(n * n));
      for (int64_t j = 0; j < n; j++) s->B[(size_t)j * n + j] = 1;
    }
  }
  for (int64_t j = 0; j < n; j++) s->D[j] = 1;
  s->sc.sigma = s->sc.sigma0 = sigma0;
  s->sc.run_gen = s->sc.eigen_count = 0;
  s->sc.hist_n = s->sc.hist_pos = 0;
  s->sc.run_maxgen = 0;
}

static void cmaes_destroy(evo_algo *a) {
  cmaes_state *s = a->state;
  if (!s) return;
  free_lambda_buffers(s);
  double *d[] = {s->mean, s->ps,   s->pc,   s->C,    s->B,    s->D,    s->hist_best, s->hist_med, s->work, s->zb,
                 s->yb,   s->pcol, s->ncol, s->zbar, s->ybar, s->mold, s->tmp,       s->ev,       s->med};
  for (size_t i = 0; i < sizeof d / sizeof *d; i++) free(d[i]);
  free(s->iwork);
  free(s->best_x);
  free(s);
  a->state = NULL;
}

/* kind: 0 full CMA-ES, 1 sep-CMA-ES, 2 Cholesky-CMA-ES. */
static evo_status init_common(evo_algo *a, int kind) {
  const int64_t n = a->n;
  const int sep = kind == 1, chol = kind == 2;
  if (!sep && !chol && n > 32000) /* dsyevd's workspace, 1 + 6n + 2n^2, must fit LAPACK's 32-bit int */
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cmaes: full covariance needs n <= 32000 (n = %lld); use sep_cmaes",
                     (long long)n);
  if (chol && n > 46340) /* n^2 must fit BLAS's int leading dimensions times n, and A alone is 16 GiB there */
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo cholesky_cmaes: n = %lld is too large for a full n x n "
                     "factor; use sep_cmaes or lmmaes", (long long)n);
  cmaes_state *s = calloc(1, sizeof *s);
  if (!s) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "cmaes: out of memory");
  a->state = s;
  s->sep = sep, s->chol = chol;
  s->n = n;
  s->flags = (evo_algo_opt(a, "active") != 0 ? EVO_CMAES_ACTIVE : 0) |
             (evo_algo_opt(a, "pycma_cmu") != 0 ? EVO_CMAES_PYCMA_CMU : 0) | (sep ? EVO_CMAES_SEP : 0);
  s->restarts_mode = (int)evo_algo_opt(a, "restarts");
  s->max_restarts = (int)evo_algo_opt(a, "max_restarts");
  s->stagnation = evo_algo_opt(a, "stagnation") != 0;
  s->flat_fitness = evo_algo_opt(a, "flat_fitness") != 0;
  s->inc_popsize = evo_algo_opt(a, "inc_popsize");
  s->restart_box = evo_algo_opt(a, "restart_box");
  s->tol_fun = evo_algo_opt(a, "tol_fun");
  s->tol_x = evo_algo_opt(a, "tol_x");
  s->tol_upsigma = evo_algo_opt(a, "tol_upsigma");
  s->cond_limit = evo_algo_opt(a, "cond_limit");
  s->sigma_min = evo_algo_opt(a, "sigma_min");
  s->sigma_max = evo_algo_opt(a, "sigma_max");
  s->eigen_gap = (int64_t)evo_algo_opt(a, "eigen_gap");
  if (a->pop < 2) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cmaes: pop_size must be >= 2 (got %d)", a->pop);
  const size_t nn = sep ? (size_t)n : (size_t)n * (size_t)n, nz = (size_t)n;
  int ok = (s->mean = malloc(sizeof(double) * nz)) && (s->ps = malloc(sizeof(double) * nz)) &&
           (s->pc = malloc(sizeof(double) * nz)) && (s->C = malloc(sizeof(double) * nn)) &&
           (s->D = malloc(sizeof(double) * nz)) && (s->best_x = malloc(sizeof(float) * nz)) &&
           (s->hist_best = calloc(CMAES_HIST, sizeof(double))) && (s->hist_med = calloc(CMAES_HIST, sizeof(double))) &&
           (s->med = malloc(sizeof(double) * CMAES_HIST)) && (s->yb = malloc(sizeof(double) * nz * CMAES_BLOCK)) &&
           (s->zbar = malloc(sizeof(double) * nz)) && (s->ybar = malloc(sizeof(double) * nz)) &&
           (s->mold = malloc(sizeof(double) * nz)) && (s->tmp = malloc(sizeof(double) * nz));
  if (ok && chol) ok = (s->zb = malloc(sizeof(double) * nz * CMAES_BLOCK)) != NULL;
  if (ok && !sep && !chol) {
    s->lwork = 1 + 6 * n + 2 * n * n; /* dsyevd minimum for jobz = 'V' */
    s->liwork = 3 + 5 * n;
    ok = (s->B = malloc(sizeof(double) * nn)) && (s->work = malloc(sizeof(double) * (size_t)s->lwork)) &&
         (s->iwork = malloc(sizeof(int) * (size_t)s->liwork)) && (s->ev = malloc(sizeof(double) * nz)) &&
         (s->zb = malloc(sizeof(double) * nz * CMAES_BLOCK)) &&
         (s->pcol = malloc(sizeof(double) * nz * CMAES_WCOLS)) &&
         (s->ncol = malloc(sizeof(double) * nz * CMAES_WCOLS));
  }
  if (!ok) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "cmaes: out of memory for n = %lld", (long long)n);
  evo_status st = cmaes_set_lambda(a, s, a->pop);
  if (st != EVO_STATUS_OK) return st;
  for (int64_t j = 0; j < n; j++) s->mold[j] = a->init_mean[j], s->best_x[j] = a->init_mean[j];
  cmaes_reset_run(s, s->mold, a->init_stdev);
  s->sc.lambda_def = a->pop;
  s->sc.best_f = -INFINITY;
  return EVO_STATUS_OK;
}

static evo_status cmaes_init(evo_algo *a) { return init_common(a, 0); }
static evo_status sep_cmaes_init(evo_algo *a) { return init_common(a, 1); }
static evo_status cholesky_cmaes_init(evo_algo *a) { return init_common(a, 2); }

static evo_status cmaes_best(const evo_algo *a, float *params) {
  const cmaes_state *s = a->state;
  for (int64_t j = 0; j < s->n; j++) params[j] = s->sc.has_best ? s->best_x[j] : (float)s->mean[j];
  return EVO_STATUS_OK;
}

/* Cholesky-CMA-ES recommends its mean, as Krause et al. do, until a restart: a fresh run's mean recommends
   nothing, so from then on the best-ever member, as cmaes. */
static evo_status cholesky_cmaes_best(const evo_algo *a, float *params) {
  const cmaes_state *s = a->state;
  if (a->restarts > 0) return cmaes_best(a, params);
  for (int64_t j = 0; j < s->n; j++) params[j] = (float)s->mean[j];
  return EVO_STATUS_OK;
}

static void cmaes_state_list(evo_algo *a, evo_state_list *l) {
  cmaes_state *s = a->state;
  /* On load a->pop is the saved population (restarts change it): size the buffers and parameters for it. */
  if (cmaes_set_lambda(a, s, a->pop) != EVO_STATUS_OK) return;
  const int64_t n = s->n, nn = s->sep ? n : n * n;
  evo_state_add(l, "cmaes.scalars", EVO_F64, &s->sc, (int64_t)(sizeof s->sc / sizeof(double)));
  evo_state_add(l, "cmaes.mean", EVO_F64, s->mean, n);
  evo_state_add(l, "cmaes.p_sigma", EVO_F64, s->ps, n);
  evo_state_add(l, "cmaes.p_c", EVO_F64, s->pc, n);
  evo_state_add(l, s->chol ? "cmaes.A" : "cmaes.C", EVO_F64, s->C, nn);
  if (!s->sep && !s->chol) evo_state_add(l, "cmaes.B", EVO_F64, s->B, nn);
  evo_state_add(l, "cmaes.D", EVO_F64, s->D, n);
  evo_state_add(l, "cmaes.best_x", EVO_F32, s->best_x, n);
  evo_state_add(l, "cmaes.hist_best", EVO_F64, s->hist_best, CMAES_HIST);
  evo_state_add(l, "cmaes.hist_median", EVO_F64, s->hist_med, CMAES_HIST);
}

static double cmaes_sigma(const evo_algo *a) { return ((const cmaes_state *)a->state)->sc.sigma; }

static int cmaes_default_pop(int64_t n) { return evo_cmaes_default_lambda(n); }

const evo_algo_vtable evo_es_cmaes = {
    .info = {.name = "cmaes",
             .doc = "CMA-ES (Hansen's tutorial, arXiv 1604.00772, Table 1) with active weights, lazy dsyevd "
                    "eigendecomposition, condition limit, IPOP/BIPOP restarts; pop_size default 4 + floor(3 ln n), "
                    "init_stdev (sigma0) default 0.5",
             .best_doc = "best-ever member",
             .options = cmaes_options,
             .n_options = (int)(sizeof cmaes_options / sizeof *cmaes_options)},
    .default_pop = cmaes_default_pop,
    .default_stdev = 0.5,
    .init = cmaes_init,
    .ask = cmaes_ask,
    .tell = cmaes_tell,
    .best = cmaes_best,
    .state = cmaes_state_list,
    .sigma = cmaes_sigma,
    .destroy = cmaes_destroy,
};

const evo_algo_vtable evo_es_sep_cmaes = {
    .info = {.name = "sep_cmaes",
             .doc = "sep-CMA-ES (Ros & Hansen 2008): diagonal covariance with pycma's sep learning rates, O(n) per "
                    "member; options and restarts as cmaes; pop_size default 4 + floor(3 ln n), init_stdev 0.5",
             .best_doc = "best-ever member",
             .options = cmaes_options,
             .n_options = (int)(sizeof cmaes_options / sizeof *cmaes_options)},
    .default_pop = cmaes_default_pop,
    .default_stdev = 0.5,
    .init = sep_cmaes_init,
    .ask = cmaes_ask,
    .tell = cmaes_tell,
    .best = cmaes_best,
    .state = cmaes_state_list,
    .sigma = cmaes_sigma,
    .destroy = cmaes_destroy,
};

const evo_algo_vtable evo_es_cholesky_cmaes = {
    .info = {.name = "cholesky_cmaes",
             .doc = "Cholesky-CMA-ES (Krause, Arbones & Igel 2016): full-covariance CMA-ES with C kept as its "
                    "Cholesky factor, rank-one updates per generation, O(lambda n^2) and no eigendecomposition (at "
                    "n = 1000 a generation is 6x faster than cmaes', 10x with active: false); options and restarts "
                    "as cmaes; pop_size default 4 + floor(3 ln n), init_stdev 0.5",
             .best_doc = "mean; best-ever member once it has restarted",
             .options = cmaes_options,
             .n_options = (int)(sizeof cmaes_options / sizeof *cmaes_options)},
    .default_pop = cmaes_default_pop,
    .default_stdev = 0.5,
    .init = cholesky_cmaes_init,
    .ask = cmaes_ask,
    .tell = cmaes_tell,
    .best = cholesky_cmaes_best,
    .state = cmaes_state_list,
    .sigma = cmaes_sigma,
    .destroy = cmaes_destroy,
};
