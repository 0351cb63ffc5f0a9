/* xNES, exponential natural evolution strategies (Glasmachers, Schaul, Sun, Wierstra & Schmidhuber 2010,
   "Exponential natural evolution strategies", GECCO, Algorithm 1; Wierstra et al. 2014, JMLR 15, Algorithm 5).

   A = sigma B with det B = 1. Member k of generation g: x_k = mu + sigma B z_k, z_k = N(0, I) from
   evo_algo_member_key(a, g, k). With NES utilities u_k (rank-based, sum 0):
     G_delta = sum_k u_k z_k,  G_M = sum_k u_k (z_k z_k^T - I),  G_sigma = tr(G_M) / d,  G_B = G_M - G_sigma I
     mu    <- mu + eta_mu sigma B G_delta
     sigma <- sigma exp(eta_sigma / 2 G_sigma)
     B     <- B expm(eta_B / 2 G_B)
   G_B is symmetric and traceless, so expm(eta_B / 2 G_B) = Q diag(exp(eta_B / 2 l)) Q^T is exact (expm.c) and
   keeps det B = 1. Defaults (Wierstra et al. 2014, Table 1): eta_mu = 1, eta_sigma = eta_B = (9 + 3 ln d) /
   (5 d sqrt d), lambda = 4 + floor(3 ln d); B starts at I and sigma at init_stdev (pybrain: A = I). A generation
   without any finite fitness changes nothing. best = mu.

   ask computes y = B z per member with a fixed-order loop, so any slice is bit-identical to a full ask. O(d^2)
   memory and O(d^3) per tell (the eigendecomposition): meant for d up to a few hundred. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include "nes.h"

typedef struct {
  double *mean;  /* n */
  double sc[1];  /* sigma */
  double *B;     /* n x n, column-major */
  double *Z, *W; /* n x pop scratch: z_k and u_k z_k */
  double *G, *E, *T; /* n x n scratch */
  double *u, *y; /* pop, n scratch */
  double eta_mu, eta_sigma, eta_b;
} xnes_state;

static const evo_option_spec xnes_options[] = {
    {"eta_mu", 1, 0, 10, "mean learning rate (Glasmachers et al. 2010; Wierstra et al. 2014, Table 1: 1)", NULL},
    {"eta_sigma", 0, 0, 10, "step-size learning rate; 0: (9 + 3 ln d) / (5 d sqrt d) (Wierstra et al. 2014, Table 1)",
     NULL},
    {"eta_b", 0, 0, 10, "shape learning rate; 0: (9 + 3 ln d) / (5 d sqrt d) (Wierstra et al. 2014, Table 1)", NULL},
};

double evo_xnes_eta(int64_t d) { return (9 + 3 * log((double)d)) / (5 * (double)d * sqrt((double)d)); }

static void xnes_destroy(evo_algo *a) {
  xnes_state *s = a->state;
  if (!s) return;
  double *d[] = {s->mean, s->B, s->Z, s->W, s->G, s->E, s->T, s->u, s->y};
  for (size_t i = 0; i < sizeof d / sizeof *d; i++) free(d[i]);
  free(s);
  a->state = NULL;
}

static evo_status xnes_init(evo_algo *a) {
  evo_status st = evo_nes_check_pop(a, 2, 0);
  if (st != EVO_STATUS_OK) return st;
  const int64_t n = a->n;
  if (n > 46340) /* n^2 must fit LAPACK's 32-bit int */
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "xnes: full covariance needs n <= 46340 (n = %lld); use snes",
                     (long long)n);
  xnes_state *s = calloc(1, sizeof *s);
  if (!s) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "xnes: out of memory");
  a->state = s;
  const size_t nn = (size_t)(n * n), np = (size_t)n * (size_t)a->pop;
  int ok = (s->mean = malloc(sizeof(double) * (size_t)n)) && (s->B = calloc(nn, sizeof(double))) &&
           (s->Z = malloc(sizeof(double) * np)) && (s->W = malloc(sizeof(double) * np)) &&
           (s->G = malloc(sizeof(double) * nn)) && (s->E = malloc(sizeof(double) * nn)) &&
           (s->T = malloc(sizeof(double) * nn)) && (s->u = malloc(sizeof(double) * (size_t)a->pop)) &&
           (s->y = malloc(sizeof(double) * (size_t)n));
  if (!ok) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "xnes: out of memory for n = %lld", (long long)n);
  for (int64_t i = 0; i < n; i++) s->mean[i] = a->init_mean[i], s->B[i * n + i] = 1;
  s->sc[0] = a->init_stdev;
  s->eta_mu = evo_algo_opt(a, "eta_mu");
  s->eta_sigma = evo_algo_opt(a, "eta_sigma") > 0 ? evo_algo_opt(a, "eta_sigma") : evo_xnes_eta(n);
  s->eta_b = evo_algo_opt(a, "eta_b") > 0 ? evo_algo_opt(a, "eta_b") : evo_xnes_eta(n);
  return EVO_STATUS_OK;
}

/* y = B z, column by column (fixed order). */
static void apply_b(const double *B, int64_t n, const double *z, double *y) {
  for (int64_t i = 0; i < n; i++) y[i] = 0;
  for (int64_t j = 0; j < n; j++) {
    const double zj = z[j], *col = B + j * n;
    for (int64_t i = 0; i < n; i++) y[i] += col[i] * zj;
  }
}

static evo_status xnes_ask(evo_algo *a, int begin, int end, float *pop) {
  const xnes_state *s = a->state;
  const int64_t n = a->n;
  int fail = 0;
#pragma omp parallel for schedule(static) if ((int64_t)(end - begin) * n * n >= 1 << 20)
  for (int r = begin; r < end; r++) {
    double *zy = malloc(sizeof(double) * (size_t)(2 * n));
    if (!zy) {
#pragma omp atomic write
      fail = 1;
      continue;
    }
    evo_nes_member_z(a, a->gen, r, zy);
    apply_b(s->B, n, zy, zy + n);
    float *row = pop + (int64_t)(r - begin) * n;
    for (int64_t i = 0; i < n; i++) row[i] = (float)(s->mean[i] + s->sc[0] * zy[n + i]);
    free(zy);
  }
  return fail ? evo_error(EVO_STATUS_OUT_OF_MEMORY, "xnes: out of memory in ask") : EVO_STATUS_OK;
}

static evo_status xnes_tell(evo_algo *a, const float *fitness) {
  xnes_state *s = a->state;
  const int P = a->pop;
  const int64_t n = a->n;
  if (!evo_anti_any_finite(fitness, P)) return EVO_STATUS_OK;
  evo_shape_nes_utilities(fitness, P, s->u);
  double usum = 0;
  for (int k = 0; k < P; k++) usum += s->u[k];
#pragma omp parallel for schedule(static) if (n * P >= 1 << 16)
  for (int k = 0; k < P; k++) {
    double *z = s->Z + (size_t)k * n;
    evo_nes_member_z(a, a->gen, k, z);
    for (int64_t i = 0; i < n; i++) s->W[(size_t)k * n + i] = s->u[k] * z[i];
  }
  /* G_delta (into y) and G_M = Z diag(u) Z^T - sum(u) I (sum(u) = 0 up to rounding). */
  for (int64_t i = 0; i < n; i++) {
    double g = 0;
    for (int k = 0; k < P; k++) g += s->W[(size_t)k * n + i];
    s->y[i] = g;
  }
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, P, 1.0, s->W, (int)n, s->Z, (int)n, 0.0, s->G,
              (int)n);
  double tr = 0;
  for (int64_t i = 0; i < n; i++) s->G[i * n + i] -= usum, tr += s->G[i * n + i];
  const double g_sigma = tr / (double)n;
  for (int64_t i = 0; i < n; i++) s->G[i * n + i] -= g_sigma;
  for (int64_t j = 0; j < n; j++) /* Z diag(u) Z^T is symmetric up to rounding: use the lower triangle */
    for (int64_t i = j + 1; i < n; i++) s->G[i * n + j] = s->G[j * n + i];
  /* mu += eta_mu sigma B G_delta (old sigma and B). */
  apply_b(s->B, n, s->y, s->E);
  for (int64_t i = 0; i < n; i++) s->mean[i] += s->eta_mu * s->sc[0] * s->E[i];
  s->sc[0] *= exp(0.5 * s->eta_sigma * g_sigma);
  evo_status st = evo_expm_sym(n, s->G, 0.5 * s->eta_b, s->E);
  if (st != EVO_STATUS_OK) return st;
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0, s->B, (int)n, s->E, (int)n, 0.0,
              s->T, (int)n);
  memcpy(s->B, s->T, sizeof(double) * (size_t)(n * n));
  return EVO_STATUS_OK;
}

static evo_status xnes_best(const evo_algo *a, float *params) {
  const xnes_state *s = a->state;
  for (int64_t i = 0; i < a->n; i++) params[i] = (float)s->mean[i];
  return EVO_STATUS_OK;
}

static void xnes_state_list(evo_algo *a, evo_state_list *l) {
  xnes_state *s = a->state;
  evo_state_add(l, "xnes.mean", EVO_F64, s->mean, a->n);
  evo_state_add(l, "xnes.sigma", EVO_F64, s->sc, 1);
  evo_state_add(l, "xnes.B", EVO_F64, s->B, a->n * a->n);
}

static double xnes_sigma(const evo_algo *a) { return ((const xnes_state *)a->state)->sc[0]; }

static int xnes_default_pop(int64_t n) { return evo_nes_default_lambda(n); }

const evo_algo_vtable evo_es_xnes = {
    .info = {.name = "xnes",
             .doc = "xNES (Glasmachers et al. 2010): full-covariance NES, A = sigma B, B <- B expm(eta_B / 2 G_B) "
                    "(exact symmetric matrix exponential), eta_sigma = eta_B = (9 + 3 ln d) / (5 d sqrt d); "
                    "pop_size default 4 + floor(3 ln d), init_stdev 1 (pybrain)",
             .best_doc = "mean",
             .options = xnes_options,
             .n_options = (int)(sizeof xnes_options / sizeof *xnes_options)},
    .default_pop = xnes_default_pop,
    .default_stdev = 1.0, /* pybrain xNES: A = I */
    .init = xnes_init,
    .ask = xnes_ask,
    .tell = xnes_tell,
    .best = xnes_best,
    .state = xnes_state_list,
    .sigma = xnes_sigma,
    .destroy = xnes_destroy,
};
