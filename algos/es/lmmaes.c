/* LM-MA-ES, limited-memory matrix adaptation (Loshchilov, Glasmachers & Beyer 2019, "Large scale black-box
   optimization by limited-memory matrix adaptation", IEEE TEVC 23(2), Algorithm 1).

   Member k of generation t: z_k = N(0, I) from evo_algo_member_key(a, t, k), d_k = z_k then for j = 1 .. min(t, m)
       d_k <- (1 - c_d,j) d_k + c_d,j M_j (M_j^T d_k),
   x_k = y + sigma d_k. tell, with the mu = floor(lambda / 2) best members and weights w_i:
       z_w = sum_i w_i z_i:lambda,  d_w = sum_i w_i d_i:lambda (= the same transform of z_w, it is linear)
       y <- y + sigma d_w
       p_sigma <- (1 - c_sigma) p_sigma + sqrt(mu_w c_sigma (2 - c_sigma)) z_w
       M_i <- (1 - c_c,i) M_i + sqrt(mu_w c_c,i (2 - c_c,i)) z_w          (i = 1 .. m)
       sigma <- sigma exp(c_sigma / 2 (|p_sigma|^2 / n - 1))
   Parameters (Algorithm 1): lambda = 4 + floor(3 ln n), mu = lambda / 2, w_i = (ln(mu + 1/2) - ln i) / sum_j,
   mu_w = 1 / sum w_i^2, m = 4 + floor(3 ln n), c_sigma = 2 lambda / n, c_d,i = 1 / (1.5^(i-1) n), c_c,i = lambda /
   (4^(i-1) n). For n < 2 lambda the paper's c_sigma and c_c,i leave (0, 1], where a cumulation rate is defined (it
   targets large n; pypop7 patches the same case differently): they are capped at 1. c_d,1 = 1 / n is capped at
   1/2 (only n = 1 is affected: c_d = 1 would replace d by M_1 (M_1^T d), which diverges).
   Memory: y and p_sigma in double, the m vectors M_i in float (each update computed in double, rounded once), 4 m n
   bytes; ask and tell are O(m n) per member, the transform in float (below). A generation
   without any finite fitness changes nothing. best = y (the mean). init_stdev default 0.5 (the paper takes sigma
   from the user; as cmaes).

   Dot products sum fixed chunks (a function of n only) in order, so results do not depend on the thread count;
   any slice of ask computes each member exactly as a full ask does. */
#include <stdlib.h>
#include <string.h>
#include "nes.h"

#define LM_CHUNKS 256
#define LM_PAR_MIN (1 << 16) /* coordinates below which one thread is faster */

typedef struct {
  evo_lmmaes_params p;
  double *w, *c_d, *c_c; /* mu, m, m */
  double *mean, *ps;     /* n, n */
  float *M;               /* m x n (row j = M_j+1) */
  double sc[1];           /* sigma */
  double *zw;             /* n scratch */
  float *dw;              /* n scratch */
  int *order;             /* lambda scratch */
  evo_key *keys;          /* lambda scratch */
} lm_state;

static const evo_option_spec lmmaes_options[] = {
    {"m", 0, 0, 100000, "number of direction vectors M_i; 0: 4 + floor(3 ln n) (Loshchilov et al. 2019, Alg. 1)", NULL},
};

void evo_lmmaes_params_compute(int64_t n, int lambda, int m, evo_lmmaes_params *p, double *w) {
  p->n = n, p->lambda = lambda, p->mu = lambda / 2;
  p->m = m > 0 ? m : evo_nes_default_lambda(n);
  double sw = 0, sw2 = 0;
  for (int i = 0; i < p->mu; i++) w[i] = log(p->mu + 0.5) - log(i + 1.0), sw += w[i];
  for (int i = 0; i < p->mu; i++) w[i] /= sw, sw2 += w[i] * w[i];
  p->mu_w = 1 / sw2;
  p->c_sigma = fmin(1, 2.0 * lambda / (double)n);
}

double evo_lmmaes_c_d(const evo_lmmaes_params *p, int i) { return fmin(0.5, 1 / (pow(1.5, i) * (double)p->n)); }
double evo_lmmaes_c_c(const evo_lmmaes_params *p, int i) {
  return fmin(1, p->lambda / (pow(4.0, i) * (double)p->n));
}

/* The transform runs in float (as evosax's): it reads M_j and d and nothing else, so float halves its memory
   traffic and doubles its vector width. Dot products sum sixteen interleaved float lanes (two AVX2 registers, a
   fixed order whatever the vector width) added pairwise in double at the end. */
#define LM_LANES 16
static inline double lm_sum_lanes(const float acc[LM_LANES]) {
  double h[LM_LANES / 2];
  for (int k = 0; k < LM_LANES / 2; k++) h[k] = (double)acc[k] + (double)acc[k + LM_LANES / 2];
  return ((h[0] + h[1]) + (h[2] + h[3])) + ((h[4] + h[5]) + (h[6] + h[7]));
}

static double lm_dot_range(const float *restrict x, const float *restrict y, int64_t i0, int64_t i1) {
  float acc[LM_LANES] = {0};
  int64_t i = i0;
  for (; i + LM_LANES <= i1; i += LM_LANES)
    for (int k = 0; k < LM_LANES; k++) acc[k] += x[i + k] * y[i + k];
  for (; i < i1; i++) acc[0] += x[i] * y[i];
  return lm_sum_lanes(acc);
}

/* Over [i0, i1): d <- (1 - cd) d + a Mj, and the dot product of the new d with x, in one pass (step j of the
   transform and the dot product step j + 1 needs). */
static double lm_update_dot_range(float *restrict d, float keep, float a, const float *restrict Mj,
                                  const float *restrict x, int64_t i0, int64_t i1) {
  float acc[LM_LANES] = {0};
  int64_t i = i0;
  for (; i + LM_LANES <= i1; i += LM_LANES)
    for (int k = 0; k < LM_LANES; k++) {
      const float v = keep * d[i + k] + a * Mj[i + k];
      d[i + k] = v, acc[k] += x[i + k] * v;
    }
  for (; i < i1; i++) d[i] = keep * d[i] + a * Mj[i], acc[0] += x[i] * d[i];
  return lm_sum_lanes(acc);
}

/* Mj NULL: the dot product of d and x only (d is not written). */
static double lm_step_range(float *d, float keep, float a, const float *Mj, const float *x, int64_t i0,
                            int64_t i1) {
  return Mj ? lm_update_dot_range(d, keep, a, Mj, x, i0, i1) : lm_dot_range(x, d, i0, i1);
}

static inline int64_t lm_chunk_end(int64_t c, int64_t cs, int64_t n) { return c * cs + cs < n ? c * cs + cs : n; }

/* lm_step_range over chunks whose boundaries depend on n only, the partial dot products added in chunk order: the
   same bits with or without threads. */
static double lm_step(float *d, float keep, float a, const float *Mj, const float *x, int64_t n) {
  const int64_t cs = n / LM_CHUNKS + 1 > 4096 ? n / LM_CHUNKS + 1 : 4096, nc = (n + cs - 1) / cs;
  double part[LM_CHUNKS], acc = 0;
  if (n < LM_PAR_MIN) { /* no OpenMP call overhead at small n */
    for (int64_t c = 0; c < nc; c++) part[c] = lm_step_range(d, keep, a, Mj, x, c * cs, lm_chunk_end(c, cs, n));
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nc; c++) part[c] = lm_step_range(d, keep, a, Mj, x, c * cs, lm_chunk_end(c, cs, n));
  }
  for (int64_t c = 0; c < nc; c++) acc += part[c];
  return acc;
}

/* d <- transform of d with the first min(gen, m) directions (in place):
   d <- (1 - c_d,j) d + c_d,j (M_j . d) M_j for j = 1 .. k, one pass over d per j. */
static void lm_transform(const lm_state *s, int64_t gen, float *d) {
  const int64_t n = s->p.n, k = gen < s->p.m ? gen : s->p.m;
  double dot = k > 0 ? lm_step(d, 0, 0, NULL, s->M, n) : 0;
  for (int64_t j = 0; j < k; j++) {
    const float *Mj = s->M + j * n;
    const double cd = s->c_d[j];
    /* the last step's dot product (with M_j itself, already in cache) is not used */
    dot = lm_step(d, (float)(1 - cd), (float)(cd * dot), Mj, j + 1 < k ? Mj + n : Mj, n);
  }
}

/* Each member's z also goes to the noise memo (zcache.h), where tell's z_w sum finds the mu best: 4 lambda n
   bytes, which with M in float keeps the total at what M alone took in double. */
static evo_status lmmaes_ask(evo_algo *a, int begin, int end, float *pop) {
  lm_state *s = a->state;
  const int64_t n = a->n;
  float *const *memo = evo_zc_begin(a, a->pop, begin, end);
  int fail = 0;
#pragma omp parallel for schedule(dynamic, 1) if (end - begin > 1 && n * s->p.m >= 1 << 14)
  for (int r = begin; r < end; r++) {
    float *d = malloc(sizeof(float) * (size_t)n);
    if (!d) {
#pragma omp atomic write
      fail = 1;
      continue;
    }
    float *kept = evo_zc_at(memo, r, 0, NULL);
    evo_algo_normals(evo_algo_member_key(a, a->gen, r), 0, n, kept ? kept : d); /* z */
    if (kept) memcpy(d, kept, sizeof(float) * (size_t)n);
    lm_transform(s, a->gen, d);
    float *row = pop + (int64_t)(r - begin) * n;
    for (int64_t i = 0; i < n; i++) row[i] = (float)(s->mean[i] + s->sc[0] * d[i]);
    free(d);
  }
  for (int r = begin; r < end; r++) s->keys[r - begin] = evo_algo_member_key(a, a->gen, r);
  if (!fail) evo_zc_end(a, begin, end, s->keys); /* rows of members that failed were not written */
  return fail ? evo_error(EVO_STATUS_OUT_OF_MEMORY, "lmmaes: out of memory in ask") : EVO_STATUS_OK;
}

static evo_status lmmaes_tell(evo_algo *a, const float *fitness) {
  lm_state *s = a->state;
  const evo_lmmaes_params *p = &s->p;
  const int64_t n = a->n;
  if (!evo_anti_any_finite(fitness, p->lambda)) return EVO_STATUS_OK;
  evo_shape_argsort_desc(fitness, p->lambda, s->order);
  evo_antithetic_weighted_sum(a, a->gen, s->order, s->w, p->mu, s->zw, s->keys); /* z_w */
  for (int64_t i = 0; i < n; i++) s->dw[i] = (float)s->zw[i];
  lm_transform(s, a->gen, s->dw); /* d_w with the M of this generation */
  const double sigma = s->sc[0], cs = p->c_sigma, fs = sqrt(p->mu_w * cs * (2 - cs));
#pragma omp parallel for schedule(static) if (n >= 1 << 16)
  for (int64_t i = 0; i < n; i++) {
    s->mean[i] += sigma * s->dw[i];
    s->ps[i] = (1 - cs) * s->ps[i] + fs * s->zw[i];
  }
#pragma omp parallel for schedule(static) if (n * p->m >= 1 << 16)
  for (int j = 0; j < p->m; j++) {
    const double cc = s->c_c[j], fc = sqrt(p->mu_w * cc * (2 - cc));
    float *Mj = s->M + (int64_t)j * n;
    for (int64_t i = 0; i < n; i++) Mj[i] = (float)((1 - cc) * Mj[i] + fc * s->zw[i]); /* in double, rounded once */
  }
  double acc[8] = {0}; /* |p_sigma|^2 in a fixed order */
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) acc[k] += s->ps[i + k] * s->ps[i + k];
  for (; i < n; i++) acc[0] += s->ps[i] * s->ps[i];
  const double ps2 = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  s->sc[0] = sigma * exp(cs / 2 * (ps2 / (double)n - 1));
  return EVO_STATUS_OK;
}

static void lmmaes_destroy(evo_algo *a) {
  lm_state *s = a->state;
  if (!s) return;
  double *d[] = {s->w, s->c_d, s->c_c, s->mean, s->ps, s->zw};
  for (size_t i = 0; i < sizeof d / sizeof *d; i++) free(d[i]);
  free(s->M), free(s->dw), free(s->order), free(s->keys), free(s);
  a->state = NULL;
}

static evo_status lmmaes_init(evo_algo *a) {
  evo_status st = evo_nes_check_pop(a, 2, 0);
  int m = 0;
  if (st == EVO_STATUS_OK) st = evo_es_int_option(a, "m", &m);
  if (st != EVO_STATUS_OK) return st;
  const int64_t n = a->n;
  lm_state *s = calloc(1, sizeof *s);
  if (!s) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "lmmaes: out of memory");
  a->state = s;
  const int mu = a->pop / 2, mm = m > 0 ? m : evo_nes_default_lambda(n);
  const size_t nz = (size_t)n;
  int ok = (s->w = malloc(sizeof(double) * (size_t)mu)) && (s->c_d = malloc(sizeof(double) * (size_t)mm)) &&
           (s->c_c = malloc(sizeof(double) * (size_t)mm)) && (s->mean = malloc(sizeof(double) * nz)) &&
           (s->ps = calloc(nz, sizeof(double))) && (s->M = calloc(nz * (size_t)mm, sizeof(float))) &&
           (s->zw = malloc(sizeof(double) * nz)) && (s->dw = malloc(sizeof(float) * nz)) &&
           (s->order = malloc(sizeof(int) * (size_t)a->pop)) && (s->keys = malloc(sizeof(evo_key) * (size_t)a->pop));
  if (!ok)
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "lmmaes: out of memory for n = %lld, m = %d", (long long)n, mm);
  evo_lmmaes_params_compute(n, a->pop, m, &s->p, s->w);
  for (int j = 0; j < mm; j++) s->c_d[j] = evo_lmmaes_c_d(&s->p, j), s->c_c[j] = evo_lmmaes_c_c(&s->p, j);
  for (int64_t i = 0; i < n; i++) s->mean[i] = a->init_mean[i];
  s->sc[0] = a->init_stdev;
  return EVO_STATUS_OK;
}

static evo_status lmmaes_best(const evo_algo *a, float *params) {
  const lm_state *s = a->state;
  for (int64_t i = 0; i < a->n; i++) params[i] = (float)s->mean[i];
  return EVO_STATUS_OK;
}

static void lmmaes_state_list(evo_algo *a, evo_state_list *l) {
  lm_state *s = a->state;
  evo_state_add(l, "lmmaes.sigma", EVO_F64, s->sc, 1);
  evo_state_add(l, "lmmaes.mean", EVO_F64, s->mean, a->n);
  evo_state_add(l, "lmmaes.p_sigma", EVO_F64, s->ps, a->n);
  evo_state_add(l, "lmmaes.M", EVO_F32, s->M, a->n * s->p.m);
}

static double lmmaes_sigma(const evo_algo *a) { return ((const lm_state *)a->state)->sc[0]; }

static int lmmaes_default_pop(int64_t n) { return evo_nes_default_lambda(n); }

const evo_algo_vtable evo_es_lmmaes = {
    .info = {.name = "lmmaes",
             .doc = "LM-MA-ES (Loshchilov, Glasmachers & Beyer 2019): m = 4 + floor(3 ln n) direction vectors, O(m n) "
                    "memory and time per member, for 1e4 .. 1e6+ parameters; pop_size default 4 + floor(3 ln n), "
                    "init_stdev 0.5",
             .best_doc = "mean",
             .options = lmmaes_options,
             .n_options = (int)(sizeof lmmaes_options / sizeof *lmmaes_options)},
    .default_pop = lmmaes_default_pop,
    .default_stdev = 0.5, /* the paper takes sigma from the user; as cmaes */
    .init = lmmaes_init,
    .ask = lmmaes_ask,
    .tell = lmmaes_tell,
    .best = lmmaes_best,
    .state = lmmaes_state_list,
    .sigma = lmmaes_sigma,
    .destroy = lmmaes_destroy,
};
