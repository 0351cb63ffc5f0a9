/* xNES, exponential natural evolution strategies (Glasmachers, Schaul, Sun, Wierstra & Schmidhuber 2010,
   "Exponential natural evolution strategies", GECCO, Algorithm 1; Wierstra et al. 2014, JMLR 15, Algorithm 5).

   A = sigma B with det B = 1. Member k of generation g: x_k = mu + sigma B z_k, z_k = N(0, I) from
   evo_algo_member_key(a, g, k). With NES utilities u_k (rank-based, sum 0):
     G_delta = sum_k u_k z_k,  G_M = sum_k u_k (z_k z_k^T - I),  G_sigma = tr(G_M) / d,  G_B = G_M - G_sigma I
     mu    <- mu + eta_mu sigma B G_delta
     sigma <- sigma exp(eta_sigma / 2 G_sigma)
     B     <- B expm(eta_B / 2 G_B)
   G_B = Z diag(u) Z^T - c I (Z the members' z) is a scalar plus a rank <= lambda part, so its exponential is
   e^(-t c) (I + Z phi(t D K) t D Z^T) with K = Z^T Z, D = diag(u) and phi from a 2 lambda x 2 lambda Padé expm
   (expm.c): the update costs O(d^2 lambda), and G_B traceless keeps det B = 1 (tests: against B expm(t G_B) by
   eigendecomposition, and det B after 300 random tells). Defaults (Wierstra et al. 2014, Table 1): eta_mu = 1,
   eta_sigma = eta_B = (9 + 3 ln d) / (5 d sqrt d), lambda = 4 + floor(3 ln d); B starts at I and sigma at
   init_stdev (pybrain: A = I). A generation without any finite fitness changes nothing. best = mu.

   ask computes y = B z per member with a fixed-order loop, so any slice is bit-identical to a full ask. O(d^2)
   memory, O(d^2 lambda) per tell and per member asked: meant for d up to a few thousand. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include "nes.h"

typedef struct {
  double *mean;  /* n */
  double sc[1];  /* sigma */
  double *B;     /* n x n, column-major */
  double *Z, *W; /* n x pop scratch: z_k and u_k z_k */
  double *E;         /* n scratch */
  double *K, *F;     /* pop x pop scratch: Z^T Z, phi t D */
  double *Aug, *AugE; /* 2 pop x 2 pop scratch: [[t D K, I], [0, 0]] and its exponential */
  double *BZ;        /* n x pop scratch: B Z */
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
  double *d[] = {s->mean, s->B, s->Z, s->W, s->E, s->K, s->F, s->Aug, s->AugE, s->BZ, s->u, s->y};
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
  const size_t nn = (size_t)(n * n), np = (size_t)n * (size_t)a->pop, pp = (size_t)a->pop * (size_t)a->pop;
  int ok = (s->mean = malloc(sizeof(double) * (size_t)n)) && (s->B = calloc(nn, sizeof(double))) &&
           (s->Z = malloc(sizeof(double) * np)) && (s->W = malloc(sizeof(double) * np)) &&
           (s->E = malloc(sizeof(double) * (size_t)n)) && (s->BZ = malloc(sizeof(double) * np)) &&
           (s->K = malloc(sizeof(double) * pp)) && (s->F = malloc(sizeof(double) * pp)) &&
           (s->Aug = malloc(sizeof(double) * 4 * pp)) && (s->AugE = malloc(sizeof(double) * 4 * pp)) &&
           (s->u = malloc(sizeof(double) * (size_t)a->pop)) &&
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
  /* G_delta (into y); K = Z^T Z (P x P), so tr(Z diag(u) Z^T) = sum_k u_k K_kk. */
  for (int64_t i = 0; i < n; i++) {
    double g = 0;
    for (int k = 0; k < P; k++) g += s->W[(size_t)k * n + i];
    s->y[i] = g;
  }
  cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, P, P, (int)n, 1.0, s->Z, (int)n, s->Z, (int)n, 0.0, s->K, P);
  double tr = 0;
  for (int k = 0; k < P; k++) tr += s->u[k] * s->K[(size_t)k * P + k];
  const double g_sigma = (tr - (double)n * usum) / (double)n; /* tr(G_M) / d, G_M = Z diag(u) Z^T - sum(u) I */
  /* mu += eta_mu sigma B G_delta (old sigma and B). */
  apply_b(s->B, n, s->y, s->E);
  for (int64_t i = 0; i < n; i++) s->mean[i] += s->eta_mu * s->sc[0] * s->E[i];
  s->sc[0] *= exp(0.5 * s->eta_sigma * g_sigma);
  /* B <- B expm(t G_B), t = eta_B / 2, G_B = Z diag(u) Z^T - c I with c = sum(u) + G_sigma: G_B's non-scalar part has
     rank <= P, and (Z D Z^T)^k = Z (D K)^(k-1) D Z^T, so expm(t G_B) = e^(-t c) (I + Z phi(t D K) t D Z^T) with
     phi(M) = sum_k M^k / (k + 1)! = the top-right block of expm([[M, I], [0, 0]]) (a 2P x 2P Padé expm). Then
     B <- e^(-t c) (B + (B Z) phi t D Z^T): O(n^2 P) instead of the O(n^3) eigendecomposition. */
  const double t = 0.5 * s->eta_b, c = usum + g_sigma;
  const int P2 = 2 * P;
  memset(s->Aug, 0, sizeof(double) * (size_t)(P2 * P2));
  for (int j = 0; j < P; j++) {
    for (int i = 0; i < P; i++) s->Aug[(size_t)j * P2 + i] = t * s->u[i] * s->K[(size_t)j * P + i]; /* t D K */
    s->Aug[(size_t)(P + j) * P2 + j] = 1;                                                             /* I */
  }
  evo_status st = evo_expm(P2, s->Aug, s->AugE);
  if (st != EVO_STATUS_OK) return st;
  for (int j = 0; j < P; j++) /* F = phi t D: column j scaled by t u_j */
    for (int i = 0; i < P; i++) s->F[(size_t)j * P + i] = s->AugE[(size_t)(P + j) * P2 + i] * t * s->u[j];
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)n, P, (int)n, 1.0, s->B, (int)n, s->Z, (int)n, 0.0,
              s->BZ, (int)n);
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)n, P, P, 1.0, s->BZ, (int)n, s->F, P, 0.0, s->W,
              (int)n);
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, P, 1.0, s->W, (int)n, s->Z, (int)n, 1.0, s->B,
              (int)n);
  const double shrink = exp(-t * c);
  for (size_t q = 0; q < (size_t)(n * n); q++) s->B[q] *= shrink;
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
                    "(in low-rank form, O(d^2 lambda)), eta_sigma = eta_B = (9 + 3 ln d) / (5 d sqrt d); "
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
