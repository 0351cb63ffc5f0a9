/* CR-FM-NES (Nomura & Ono 2022, "Fast moving natural evolution strategy for high-dimensional problems", IEEE CEC;
   update rules as in the authors' reference implementation github.com/nomuramasahir0/crfmnes, crfmnes/alg.py).

   Restricted covariance: x = m + sigma D (I + v v^T)^(1/2) z, i.e. Sigma = sigma^2 D (I + v v^T) D with D diagonal
   and v a vector; y = z + (sqrt(1 + |v|^2) - 1) vbar (vbar^T z), vbar = v / |v|, x = m + sigma y (.) D. Antithetic
   sampling as in the reference: with h = lambda / 2, member i < h uses z = N(0, I) from evo_algo_member_key(a, g,
   i) and member i + h uses -z (the reference's idxp / idxm halves).

   tell (z, y sorted best first; lambda_F = number of finite fitnesses; members with -inf (NaN) fitness are ranked
   after the others in order of |z| as the reference's sort_indices_by does with infeasible ones):
     p_s <- (1 - c_s) p_s + sqrt(c_s (2 - c_s) mu_eff) sum_k w_rank,k z_k
     |p_s| >= chi_n: weights w_dist,k ~ w_hat,k exp(alpha_dist |z_k|) (normalised, - 1/lambda), eta_sigma =
                     eta_move = 1, rank-one rate l_c c_1 with l_c = 1; else weights w_rank, eta_sigma = eta_stag
                     (|p_s| >= 0.1 chi_n) or eta_conv, l_c = 0
     wxm = sigma D (.) sum_k w_k y_k;  p_c <- (1 - c_c) p_c + sqrt(c_c (2 - c_c) mu_eff) wxm / sigma;  m += wxm
     natural-gradient factors s_k, t_k of the columns [y_1 .. y_lambda, p_c / D] (the reference's "calculate s,
     t" block, evaluated column by column), exw = [eta_B w, l_c c_1]:
     v <- v + (t exw) / |v|,  D <- D + (s exw) (.) D
     G_s = sum_k w_k (|z_k|^2 - n) / n,  l_s = [|p_s| >= chi_n and G_s < 0]
     sigma <- sigma exp((1 - l_s) eta_sigma / 2 G_s) detA^(1/n) / detA_old^(1/n),  D <- D / detA^(1/n),
     detA^(1/n) = exp(mean(ln D) + ln(1 + |v|^2) / (2 n)).
   Parameters (Nomura & Ono 2022; the reference's __init__; shared/specs/algorithms.md): w_rank = NES utilities, c_s =
   (mu_eff + 2) / (n + mu_eff + 5), c_c = (4 + mu_eff / n) / (n + 4 + 2 mu_eff / n), c_1 = c1_cma (n - 5) / 6
   lambda_F / lambda (clamped at 0 for n < 5, where the formula turns negative), eta_stag, eta_conv, eta_B,
   alpha_dist as in evo_crfmnes_* below. v starts at N(0, I) / sqrt(n) drawn from split(key), D at 1.
   Defaults: lambda = 4 + floor(3 ln n) rounded up to even; init_stdev 0.5 (the reference has none; as cmaes).
   best = the best-ever member (the reference's x_best), exactly the f32 vector that was asked; the initial mean
   before the first tell.

   Everything is O(n lambda): the column factors are recomputed elementwise from per-column scalars, so no n x
   lambda matrix besides the lambda / 2 noise vectors (f32) is stored. Per-column dot products run sequentially
   and per-coordinate sums in member order, so results do not depend on the thread count. */
#include <stdlib.h>
#include <string.h>
#include "nes.h"

typedef struct {
  double sigma, has_best, best_f; /* best_f: best-ever fitness, larger is better */
} crfm_scalars;

typedef struct {
  evo_crfmnes_params p;
  double *mean, *D, *v, *pc, *ps; /* n each */
  crfm_scalars sc;
  float *best_x; /* n */
  /* scratch */
  float *Zb;                /* n x h: the noise of members 0 .. h-1 */
  double *vbar, *acc1, *acc2, *acc3; /* n each */
  double *w_hat, *w_rank, *w; /* lambda each */
  double *vzb, *zn2b;       /* h each: vbar . z, |z|^2 of the base vectors */
  double *col;              /* 4 (lambda + 1): per-column scalars ip, ip_vbart, ip_s2, ip_svbarbar */
  double *cE, *cT0, *cS;    /* (lambda + 1) x n each, or NULL: the columns' e, t0 and s2 -> s kept between stages */
  int *order;               /* lambda */
  evo_key *keys;            /* h: the directions' keys (ask, tell) */
  double normv2, cv;        /* |v|^2, sqrt(1 + |v|^2) - 1 (valid after prep) */
} crfm_state;

static const evo_option_spec crfmnes_options[] = {
    {"eta_m", 1, 0, 10, "mean learning rate (Nomura & Ono 2022, eta_m = 1)", NULL},
};

/* ---- parameters ---- */

void evo_crfmnes_params_compute(int64_t n, int lambda, evo_crfmnes_params *p) {
  const double d = (double)n;
  double sw = 0, sw2 = 0;
  for (int i = 1; i <= lambda; i++) sw += fmax(0, log(lambda / 2.0 + 1) - log(i));
  for (int i = 1; i <= lambda; i++) {
    double w = fmax(0, log(lambda / 2.0 + 1) - log(i)) / sw;
    sw2 += w * w;
  }
  p->n = n, p->lambda = lambda;
  p->mu_eff = 1 / sw2;
  p->c_s = (p->mu_eff + 2) / (d + p->mu_eff + 5);
  p->c_c = (4 + p->mu_eff / d) / (d + 4 + 2 * p->mu_eff / d);
  p->c1_cma = 2 / ((d + 1.3) * (d + 1.3) + p->mu_eff);
  p->chi_n = sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d * d));
  /* h_inv: damped Newton from 1 as in the reference's get_h_inv. */
  double a = 1;
  for (int it = 0; it < 10000; it++) {
    double f = (1 + a * a) * exp(a * a / 2) / 0.24 - 10 - d;
    if (fabs(f) <= 1e-10) break;
    a -= 0.5 * f / ((1 / 0.24) * a * exp(a * a / 2) * (3 + a * a));
  }
  p->h_inv = a;
}

double evo_crfmnes_c1(const evo_crfmnes_params *p, double lf) {
  return fmax(0, p->c1_cma * ((double)p->n - 5) / 6 * (lf / p->lambda));
}
double evo_crfmnes_eta_stag_sigma(const evo_crfmnes_params *p, double lf) {
  return tanh((0.024 * lf + 0.7 * (double)p->n + 20) / ((double)p->n + 12));
}
double evo_crfmnes_eta_conv_sigma(const evo_crfmnes_params *p, double lf) {
  return 2 * tanh((0.025 * lf + 0.75 * (double)p->n + 10) / ((double)p->n + 4));
}
double evo_crfmnes_eta_b(const evo_crfmnes_params *p, double lf) {
  return tanh((fmin(0.02 * lf, 3 * log((double)p->n)) + 5) / (0.23 * (double)p->n + 25));
}
double evo_crfmnes_alpha_dist(const evo_crfmnes_params *p, double lf) {
  return p->h_inv * fmin(1, sqrt((double)p->lambda / (double)p->n)) * sqrt(lf / p->lambda);
}

/* ---- sampling ---- */

static double dot(const double *x, const double *y, int64_t n) {
  double acc = 0;
  for (int64_t i = 0; i < n; i++) acc += x[i] * y[i];
  return acc;
}

/* vbar, |v|^2 and cv from v. */
static void prep(crfm_state *s) {
  const int64_t n = s->p.n;
  s->normv2 = dot(s->v, s->v, n);
  const double nv = sqrt(s->normv2);
  for (int64_t i = 0; i < n; i++) s->vbar[i] = s->v[i] / nv;
  s->cv = sqrt(1 + s->normv2) - 1;
}

/* Member i from its base noise z (the h-vector i mod h, in double): x = m + sigma y (.) D. Used by ask and by tell
   for the best member, so both give the same bits. */
static void member_x(const crfm_state *s, int i, const double *z, float *x) {
  const int64_t n = s->p.n;
  const double sg = i < s->p.lambda / 2 ? 1.0 : -1.0, c = s->cv * (sg * dot(s->vbar, z, n));
  for (int64_t j = 0; j < n; j++) {
    const double y = sg * z[j] + c * s->vbar[j];
    x[j] = (float)(s->mean[j] + s->sc.sigma * y * s->D[j]);
  }
}

/* Members r and r + h share direction r: each direction of the slice is drawn once, into the noise memo
   (zcache.h) where tell's sums find it. The slice's directions are at most two ranges: [k0[0], k1[0]) from its
   members below h, [k0[1], k1[1]) from those at or above. */
static evo_status crfmnes_ask(evo_algo *a, int begin, int end, float *pop) {
  crfm_state *s = a->state;
  const int64_t n = a->n;
  const int h = s->p.lambda / 2;
  prep(s);
  int k0[2] = {begin, (begin > h ? begin : h) - h}, k1[2] = {end < h ? end : h, end - h}, nr = 0;
  if (k1[0] > k0[0]) nr = 1;
  if (k1[1] > k0[1]) {
    if (nr && k0[1] <= k1[0] && k0[0] <= k1[1]) /* overlapping or touching: one range */
      k0[0] = k0[0] < k0[1] ? k0[0] : k0[1], k1[0] = k1[0] > k1[1] ? k1[0] : k1[1];
    else
      k0[nr] = k0[1], k1[nr] = k1[1], nr++;
  }
  float *const *memo = NULL;
  for (int q = 0; q < nr; q++) memo = evo_zc_begin(a, h, k0[q], k1[q]);
  const int nd0 = nr > 0 ? k1[0] - k0[0] : 0, nd = nd0 + (nr > 1 ? k1[1] - k0[1] : 0);
  int fail = 0;
#pragma omp parallel for schedule(static) if ((int64_t)nd * n >= 1 << 16)
  for (int t = 0; t < nd; t++) {
    const int k = t < nd0 ? k0[0] + t : k0[1] + t - nd0;
    float *kept = evo_zc_at(memo, k, 0, NULL), *zf = kept ? kept : malloc(sizeof(float) * (size_t)n);
    double *z = malloc(sizeof(double) * (size_t)n);
    if (!zf || !z) {
#pragma omp atomic write
      fail = 1;
      if (!kept) free(zf);
      free(z);
      continue;
    }
    evo_algo_normals(evo_algo_member_key(a, a->gen, k), 0, n, zf);
    for (int64_t i = 0; i < n; i++) z[i] = zf[i]; /* evo_nes_member_z's values */
    if (k >= begin && k < end) member_x(s, k, z, pop + (int64_t)(k - begin) * n);
    if (k + h >= begin && k + h < end) member_x(s, k + h, z, pop + (int64_t)(k + h - begin) * n);
    if (!kept) free(zf);
    free(z);
  }
  for (int q = 0; !fail && memo && q < nr; q++) { /* rows of directions that failed were not written */
    for (int k = k0[q]; k < k1[q]; k++) s->keys[k - k0[q]] = evo_algo_member_key(a, a->gen, k);
    evo_zc_end(a, k0[q], k1[q], s->keys);
  }
  return fail ? evo_error(EVO_STATUS_OUT_OF_MEMORY, "crfmnes: out of memory in ask") : EVO_STATUS_OK;
}

/* ---- tell ---- */

/* Context of the s, t computation (the reference's "calculate s, t" block) for one generation. */
typedef struct {
  const crfm_state *s;
  double gam, alpha, bb, beta; /* gamma_v, alpha_vd, b, b / (1 + b sum vbarbar^2 / H) */
  const double *H;             /* n: 2 - (b + 2 alpha^2) vbarbar */
} st_ctx;

/* z_ik of sorted column k (k < lambda). */
static inline double zsorted(const crfm_state *s, int k, int64_t i) {
  const int h = s->p.lambda / 2, m = s->order[k];
  const double z = s->Zb[(int64_t)(m % h) * s->p.n + i];
  return m < h ? z : -z;
}

static inline double vz_sorted(const crfm_state *s, int k) {
  const int h = s->p.lambda / 2, m = s->order[k];
  return m < h ? s->vzb[m] : -s->vzb[m - h];
}

/* Column k's element i: e (y or p_c / D), then t0, s2, s and t given the column scalars computed so far. */
static inline __attribute__((always_inline)) void col_elem(const st_ctx *c, int k, int64_t i, int stage,
                                                            double *out_s, double *out_t) {
  const crfm_state *s = c->s;
  const int lam = s->p.lambda;
  const double *cs = s->col + 4 * k, vb = s->vbar[i], vbb = vb * vb, nv2 = s->normv2;
  const double e = k < lam ? zsorted(s, k, i) + s->cv * vb * vz_sorted(s, k) : s->pc[i] / s->D[i];
  if (stage == 0) { /* ip */
    *out_s = e;
    return;
  }
  const double ip = cs[0], t0 = e * ip - vb * (ip * ip + c->gam) / 2;
  if (stage == 1) {
    *out_t = t0;
    return;
  }
  const double s2 = e * e - nv2 / c->gam * (e * vb * ip) - 1 -
                    c->alpha / c->gam * ((2 + nv2) * (t0 * vb) - nv2 * vbb * cs[1]);
  if (stage == 2) {
    *out_s = s2;
    return;
  }
  const double ivb = vbb / c->H[i], sv = s2 / c->H[i] - c->beta * ivb * cs[2];
  *out_s = sv;
  if (stage == 3) return;
  *out_t = t0 - c->alpha * ((2 + nv2) * (sv * vb) - vb * cs[3]);
}

/* col_elem's values through the kept columns (cE, cT0, cS; element i of column k at k n + i): each stage stores its
   value and reads the earlier stages' instead of computing them again, with the same expressions (the same bits).
   Returns the stage's term of the column scalar; stage 4 returns t and leaves s in *out_s. */
static inline __attribute__((always_inline)) double kept_elem(const st_ctx *c, int k, int64_t i, int stage,
                                                              double *out_s) {
  const crfm_state *s = c->s;
  const int64_t at = (int64_t)k * s->p.n + i;
  const double *cs = s->col + 4 * k, vb = s->vbar[i], vbb = vb * vb, nv2 = s->normv2;
  if (stage == 0) {
    const double e = k < s->p.lambda ? zsorted(s, k, i) + s->cv * vb * vz_sorted(s, k) : s->pc[i] / s->D[i];
    s->cE[at] = e;
    return vb * e;
  }
  const double ip = cs[0];
  if (stage == 1) {
    const double t0 = s->cE[at] * ip - vb * (ip * ip + c->gam) / 2;
    s->cT0[at] = t0;
    return vb * t0;
  }
  if (stage == 2) {
    const double e = s->cE[at], t0 = s->cT0[at];
    const double s2 = e * e - nv2 / c->gam * (e * vb * ip) - 1 -
                      c->alpha / c->gam * ((2 + nv2) * (t0 * vb) - nv2 * vbb * cs[1]);
    s->cS[at] = s2;
    return vb * vb / c->H[i] * s2;
  }
  if (stage == 3) {
    const double ivb = vbb / c->H[i], sv = s->cS[at] / c->H[i] - c->beta * ivb * cs[2];
    s->cS[at] = sv;
    return vb * vb * sv;
  }
  *out_s = s->cS[at];
  return s->cT0[at] - c->alpha * ((2 + nv2) * (s->cS[at] * vb) - vb * cs[3]);
}

/* Per-column scalar `stage` (0: vbar.e, 1: vbar.t0, 2: (vbarbar/H).s2, 3: vbarbar.s) for every column. One loop
   per stage, each calling col_elem with a constant stage, so the loops carry no stage tests and vectorise. */
static void col_pass(const st_ctx *c, int stage) {
  const crfm_state *s = c->s;
  const int64_t n = s->p.n;
  const int cols = s->p.lambda + 1;
  const double *vbar = s->vbar, *H = c->H;
#pragma omp parallel for schedule(static) if (n * cols >= 1 << 16)
  for (int k = 0; k < cols; k++) {
    double acc = 0, sv = 0, tv = 0;
    if (s->cE) {
      switch (stage) {
      case 0: for (int64_t i = 0; i < n; i++) acc += kept_elem(c, k, i, 0, &sv); break;
      case 1: for (int64_t i = 0; i < n; i++) acc += kept_elem(c, k, i, 1, &sv); break;
      case 2: for (int64_t i = 0; i < n; i++) acc += kept_elem(c, k, i, 2, &sv); break;
      default: for (int64_t i = 0; i < n; i++) acc += kept_elem(c, k, i, 3, &sv);
      }
      s->col[4 * k + stage] = acc;
      continue;
    }
    switch (stage) {
    case 0:
      for (int64_t i = 0; i < n; i++) col_elem(c, k, i, 0, &sv, &tv), acc += vbar[i] * sv;
      break;
    case 1:
      for (int64_t i = 0; i < n; i++) col_elem(c, k, i, 1, &sv, &tv), acc += vbar[i] * tv;
      break;
    case 2:
      for (int64_t i = 0; i < n; i++) col_elem(c, k, i, 2, &sv, &tv), acc += vbar[i] * vbar[i] / H[i] * sv;
      break;
    default:
      for (int64_t i = 0; i < n; i++) col_elem(c, k, i, 3, &sv, &tv), acc += vbar[i] * vbar[i] * sv;
    }
    s->col[4 * k + stage] = acc;
  }
}

/* Ranking: best first, stable; -inf members after the finite ones by increasing |z| (the reference's
   sort_indices_by). Returns lambda_F. */
static int rank_members(crfm_state *s, const float *f) {
  const int lam = s->p.lambda, h = lam / 2;
  evo_shape_argsort_desc(f, lam, s->order);
  int nf = 0;
  while (nf < lam && isfinite(f[s->order[nf]])) nf++;
  for (int i = nf + 1; i < lam; i++) { /* stable insertion sort of the tail by |z|^2 */
    int v = s->order[i], j = i - 1;
    while (j >= nf && s->zn2b[s->order[j] % h] > s->zn2b[v % h]) s->order[j + 1] = s->order[j], j--;
    s->order[j + 1] = v;
  }
  return nf;
}

static double nthroot_det(const double *D, double normv2, int64_t n) {
  double acc = 0;
  for (int64_t i = 0; i < n; i++) acc += log(D[i]);
  return exp(acc / (double)n + log(1 + normv2) / (2 * (double)n));
}

static evo_status crfmnes_tell(evo_algo *a, const float *fitness) {
  crfm_state *s = a->state;
  const evo_crfmnes_params *p = &s->p;
  const int64_t n = p->n;
  const int lam = p->lambda, h = lam / 2;
  const double dn = (double)n;
  prep(s);
  for (int k = 0; k < h; k++) s->vzb[k] = NAN, s->keys[k] = evo_algo_member_key(a, a->gen, k);
  const float *const *kept = evo_zc_lookup(a, NULL, s->keys, h); /* what ask drew */
#pragma omp parallel for schedule(static) if (n * h >= 1 << 16)
  for (int k = 0; k < h; k++) {
    double *z = malloc(sizeof(double) * (size_t)n);
    if (!z) continue; /* caught below: vzb stays NAN */
    if (kept && kept[k])
      for (int64_t i = 0; i < n; i++) z[i] = kept[k][i];
    else
      evo_nes_member_z(a, a->gen, k, z);
    for (int64_t i = 0; i < n; i++) s->Zb[(int64_t)k * n + i] = (float)z[i]; /* exact: z is an f32 draw */
    s->vzb[k] = dot(s->vbar, z, n);
    s->zn2b[k] = dot(z, z, n);
    free(z);
  }
  for (int k = 0; k < h; k++)
    if (isnan(s->vzb[k])) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "crfmnes: out of memory in tell");
  const int nf = rank_members(s, fitness);
  const double lf = nf;
  if (nf > 0 && (!s->sc.has_best || fitness[s->order[0]] > s->sc.best_f)) {
    const int b = s->order[0];
    for (int64_t i = 0; i < n; i++) s->acc1[i] = s->Zb[(int64_t)(b % h) * n + i];
    member_x(s, b, s->acc1, s->best_x);
    s->sc.has_best = 1, s->sc.best_f = fitness[b];
  }

  /* Evolution path p_s with the rank weights. */
  const double fs = sqrt(p->c_s * (2 - p->c_s) * p->mu_eff);
  double psn = 0;
  for (int64_t i = 0; i < n; i++) {
    double acc = 0;
    for (int k = 0; k < lam; k++)
      if (s->w_rank[k] != 0) acc += s->w_rank[k] * zsorted(s, k, i);
    s->ps[i] = (1 - p->c_s) * s->ps[i] + fs * acc;
    psn += s->ps[i] * s->ps[i];
  }
  psn = sqrt(psn);
  const int moving = psn >= p->chi_n;
  /* Weights: distance weights when moving, else the rank weights. */
  if (moving) {
    const double ad = evo_crfmnes_alpha_dist(p, lf);
    double sum = 0;
    for (int k = 0; k < lam; k++) {
      const int m = s->order[k];
      s->w[k] = s->w_hat[k] * exp(ad * sqrt(s->zn2b[m % h]));
      sum += s->w[k];
    }
    for (int k = 0; k < lam; k++) s->w[k] = s->w[k] / sum - 1.0 / lam;
  } else {
    memcpy(s->w, s->w_rank, sizeof(double) * (size_t)lam);
  }
  const double eta_sigma = moving ? 1.0 /* eta_move_sigma */
                           : psn >= 0.1 * p->chi_n ? evo_crfmnes_eta_stag_sigma(p, lf)
                                                   : evo_crfmnes_eta_conv_sigma(p, lf);
  const double l_c = moving ? 1 : 0, sigma = s->sc.sigma, eta_m = evo_algo_opt(a, "eta_m");
  /* Mean and p_c: wxm = sigma D (.) sum_k w_k y_k. */
  const double fc = sqrt(p->c_c * (2 - p->c_c) * p->mu_eff);
  for (int64_t i = 0; i < n; i++) {
    double acc = 0;
    for (int k = 0; k < lam; k++) acc += s->w[k] * (zsorted(s, k, i) + s->cv * s->vbar[i] * vz_sorted(s, k));
    const double wxm = sigma * acc * s->D[i];
    s->pc[i] = (1 - p->c_c) * s->pc[i] + fc * wxm / sigma;
    s->mean[i] += eta_m * wxm;
  }

  /* s, t of the columns [y_1 .. y_lambda, p_c / D]. */
  const double nv2 = s->normv2, nv4 = nv2 * nv2, gam = 1 + nv2;
  double vbbmax = 0;
  for (int64_t i = 0; i < n; i++) vbbmax = fmax(vbbmax, s->vbar[i] * s->vbar[i]);
  st_ctx c = {.s = s, .gam = gam, .H = s->acc2};
  c.alpha = fmin(1, sqrt(nv4 + (2 * gam - sqrt(gam)) / vbbmax) / (2 + nv2));
  c.bb = -(1 - c.alpha * c.alpha) * nv4 / gam + 2 * c.alpha * c.alpha;
  double sum_vbb2h = 0;
  for (int64_t i = 0; i < n; i++) {
    const double vbb = s->vbar[i] * s->vbar[i];
    s->acc2[i] = 2 - (c.bb + 2 * c.alpha * c.alpha) * vbb;
    sum_vbb2h += vbb * vbb / s->acc2[i];
  }
  c.beta = c.bb / (1 + c.bb * sum_vbb2h);
  for (int stage = 0; stage < 4; stage++) col_pass(&c, stage);
  const double eta_b = evo_crfmnes_eta_b(p, lf), c1 = evo_crfmnes_c1(p, lf);
  const double det_old = nthroot_det(s->D, nv2, n), nv = sqrt(nv2);
  /* dv_i = sum_k ew_k t_ik and dd_i = sum_k ew_k s_ik in k order, column by column (each column's loop over i
     vectorises); acc1 holds dv, tmp dd */
  double *dd = s->acc3;
  memset(s->acc1, 0, sizeof(double) * (size_t)n);
  memset(dd, 0, sizeof(double) * (size_t)n);
  for (int k = 0; k <= lam; k++) {
    const double ew = k < lam ? eta_b * s->w[k] : l_c * c1;
    if (ew == 0) continue;
#pragma omp parallel for schedule(static) if (n >= 1 << 16)
    for (int64_t i = 0; i < n; i++) {
      double sv = 0, tv = 0;
      if (s->cE)
        tv = kept_elem(&c, k, i, 4, &sv);
      else
        col_elem(&c, k, i, 4, &sv, &tv);
      s->acc1[i] += ew * tv, dd[i] += ew * sv;
    }
  }
  for (int64_t i = 0; i < n; i++) s->D[i] += dd[i] * s->D[i];
  for (int64_t i = 0; i < n; i++) s->v[i] += s->acc1[i] / nv;
  const double det_new = nthroot_det(s->D, dot(s->v, s->v, n), n);
  /* Step size: G_s = sum_k w_k (|z_k|^2 - n) / n. */
  double g_s = 0;
  for (int k = 0; k < lam; k++) g_s += s->w[k] * (s->zn2b[s->order[k] % h] - dn);
  g_s /= dn;
  const double l_s = moving && g_s < 0 ? 1 : 0;
  s->sc.sigma = sigma * exp((1 - l_s) * eta_sigma / 2 * g_s) * det_new / det_old;
  for (int64_t i = 0; i < n; i++) s->D[i] /= det_new;
  return EVO_STATUS_OK;
}

void evo_crfmnes_drop_kept(evo_algo *a) {
  crfm_state *s = a->state;
  free(s->cE), free(s->cT0), free(s->cS);
  s->cE = s->cT0 = s->cS = NULL;
}

/* ---- lifetime ---- */

static void crfmnes_destroy(evo_algo *a) {
  crfm_state *s = a->state;
  if (!s) return;
  double *d[] = {s->mean, s->D, s->v, s->pc, s->ps, s->vbar, s->acc1, s->acc2, s->acc3, s->w_hat, s->w_rank, s->w,
                 s->vzb, s->zn2b, s->col, s->cE, s->cT0, s->cS};
  for (size_t i = 0; i < sizeof d / sizeof *d; i++) free(d[i]);
  free(s->best_x), free(s->Zb), free(s->order), free(s->keys), free(s);
  a->state = NULL;
}

static evo_status crfmnes_init(evo_algo *a) {
  evo_status st = evo_nes_check_pop(a, 2, 1);
  if (st != EVO_STATUS_OK) return st;
  const int64_t n = a->n;
  const int lam = a->pop, h = lam / 2;
  crfm_state *s = calloc(1, sizeof *s);
  if (!s) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "crfmnes: out of memory");
  a->state = s;
  const size_t nz = (size_t)n, nl = (size_t)lam;
  int ok = (s->mean = malloc(sizeof(double) * nz)) && (s->D = malloc(sizeof(double) * nz)) &&
           (s->v = malloc(sizeof(double) * nz)) && (s->pc = calloc(nz, sizeof(double))) &&
           (s->ps = calloc(nz, sizeof(double))) && (s->vbar = malloc(sizeof(double) * nz)) &&
           (s->acc1 = malloc(sizeof(double) * nz)) && (s->acc2 = malloc(sizeof(double) * nz)) &&
           (s->acc3 = malloc(sizeof(double) * nz)) &&
           (s->w_hat = malloc(sizeof(double) * nl)) && (s->w_rank = malloc(sizeof(double) * nl)) &&
           (s->w = malloc(sizeof(double) * nl)) && (s->vzb = malloc(sizeof(double) * (size_t)h)) &&
           (s->zn2b = malloc(sizeof(double) * (size_t)h)) && (s->col = malloc(sizeof(double) * 4 * (nl + 1))) &&
           (s->order = malloc(sizeof(int) * nl)) && (s->keys = malloc(sizeof(evo_key) * (size_t)h)) &&
           (s->best_x = malloc(sizeof(float) * nz)) &&
           (s->Zb = malloc(sizeof(float) * nz * (size_t)h));
  if (!ok) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "crfmnes: out of memory for n = %lld", (long long)n);
  if ((nl + 1) * nz <= ((size_t)1 << 20)) { /* kept columns (8 MiB each at most) are an optimisation: else recompute */
    s->cE = malloc(sizeof(double) * (nl + 1) * nz);
    s->cT0 = s->cE ? malloc(sizeof(double) * (nl + 1) * nz) : NULL;
    s->cS = s->cT0 ? malloc(sizeof(double) * (nl + 1) * nz) : NULL;
    if (!s->cS) free(s->cE), free(s->cT0), s->cE = s->cT0 = NULL;
  }
  evo_crfmnes_params_compute(n, lam, &s->p);
  double sw = 0;
  for (int k = 0; k < lam; k++) s->w_hat[k] = fmax(0, log(lam / 2.0 + 1) - log(k + 1.0)), sw += s->w_hat[k];
  for (int k = 0; k < lam; k++) s->w_rank[k] = s->w_hat[k] / sw - 1.0 / lam;
  /* v = N(0, I) / sqrt(n) from split(key) (disjoint from every member key, which are fold_in's). */
  evo_key kv;
  evo_key_split(a->key, 1, &kv);
  evo_rng_fill_normal(kv, s->best_x, n);
  for (int64_t i = 0; i < n; i++) {
    s->v[i] = s->best_x[i] / sqrt((double)n);
    s->mean[i] = a->init_mean[i], s->best_x[i] = a->init_mean[i], s->D[i] = 1;
  }
  s->sc = (crfm_scalars){.sigma = a->init_stdev, .has_best = 0, .best_f = -INFINITY};
  return EVO_STATUS_OK;
}

static evo_status crfmnes_best(const evo_algo *a, float *params) {
  const crfm_state *s = a->state;
  memcpy(params, s->best_x, sizeof(float) * (size_t)a->n);
  return EVO_STATUS_OK;
}

static void crfmnes_state_list(evo_algo *a, evo_state_list *l) {
  crfm_state *s = a->state;
  const int64_t n = a->n;
  evo_state_add(l, "crfmnes.scalars", EVO_F64, &s->sc, (int64_t)(sizeof s->sc / sizeof(double)));
  evo_state_add(l, "crfmnes.mean", EVO_F64, s->mean, n);
  evo_state_add(l, "crfmnes.D", EVO_F64, s->D, n);
  evo_state_add(l, "crfmnes.v", EVO_F64, s->v, n);
  evo_state_add(l, "crfmnes.p_c", EVO_F64, s->pc, n);
  evo_state_add(l, "crfmnes.p_sigma", EVO_F64, s->ps, n);
  evo_state_add(l, "crfmnes.best_x", EVO_F32, s->best_x, n);
}

static double crfmnes_sigma(const evo_algo *a) { return ((const crfm_state *)a->state)->sc.sigma; }

static int crfmnes_default_pop(int64_t n) {
  const int l = evo_nes_default_lambda(n);
  return l + (l & 1);
}

const evo_algo_vtable evo_es_crfmnes = {
    .info = {.name = "crfmnes",
             .doc = "CR-FM-NES (Nomura & Ono 2022): restricted covariance sigma^2 D (I + v v^T) D, antithetic "
                    "halves, distance weights and three step-size regimes, O(n lambda) per generation; pop_size "
                    "even, default 4 + floor(3 ln n) rounded up to even; init_stdev 0.5",
             .best_doc = "best-ever member",
             .options = crfmnes_options,
             .n_options = (int)(sizeof crfmnes_options / sizeof *crfmnes_options)},
    .default_pop = crfmnes_default_pop,
    .default_stdev = 0.5, /* the reference takes sigma from the user; as cmaes */
    .init = crfmnes_init,
    .ask = crfmnes_ask,
    .tell = crfmnes_tell,
    .best = crfmnes_best,
    .state = crfmnes_state_list,
    .sigma = crfmnes_sigma,
    .destroy = crfmnes_destroy,
};
