/* SNES, separable natural evolution strategies (Schaul, Glasmachers & Schmidhuber 2011, "High dimensions and heavy
   tails for natural evolution strategies"; Wierstra et al. 2014, JMLR 15, Algorithm 6).

   Member k of generation g: x_k = mu + sigma (.) z_k, z_k = N(0, I) from evo_algo_member_key(a, g, k). With NES
   utilities u_k (rank-based, sum 0; algos/shaping.c):
     grad_mu    = sum_k u_k z_k,  grad_sigma = sum_k u_k (z_k^2 - 1)
     mu    <- mu + eta_mu sigma (.) grad_mu
     sigma <- sigma (.) exp(eta_sigma / 2 grad_sigma)
   Defaults (Wierstra et al. 2014, Table 1): eta_mu = 1, eta_sigma = (3 + ln d) / (5 sqrt d), lambda = 4 +
   floor(3 ln d); sigma starts at init_stdev in every coordinate (pybrain's SNES starts at 1). A generation without
   any finite fitness changes nothing. best = mu. The overall sigma reported is the geometric mean of sigma.

   Work is split over blocks of EVO_ANTI_BLOCK coordinates that regenerate their part of every z_k (Philox is
   counter-based), so each coordinate sums over k in the same order whatever the thread count (antithetic.h). */
#include <stdlib.h>
#include "antithetic_dev.h"
#include "nes.h"

typedef struct {
  double *mean, *sigma; /* n each */
  double *u;            /* pop scratch: utilities */
  evo_key *keys;        /* pop scratch */
  double eta_mu, eta_sigma;
  evo_anti_dev *dev; /* set once asked on a device: tell's sums run there too */
  double *sums;      /* 2n: tell's two sums */
} snes_state;

static const evo_option_spec snes_options[] = {
    {"eta_mu", 1, 0, 10, "mean learning rate (Wierstra et al. 2014, Table 1: 1)", NULL},
    {"eta_sigma", 0, 0, 10, "step-size learning rate; 0: (3 + ln d) / (5 sqrt d) (Wierstra et al. 2014, Table 1)",
     NULL},
};

double evo_snes_eta_sigma(int64_t d) { return (3 + log((double)d)) / (5 * sqrt((double)d)); }

static void snes_destroy(evo_algo *a) {
  snes_state *s = a->state;
  if (!s) return;
  evo_anti_dev_free(s->dev);
  free(s->mean), free(s->sigma), free(s->u), free(s->keys), free(s->sums), free(s);
  a->state = NULL;
}

static evo_status snes_init(evo_algo *a) {
  evo_status st = evo_nes_check_pop(a, 2, 0);
  if (st != EVO_STATUS_OK) return st;
  const size_t n = (size_t)a->n;
  snes_state *s = calloc(1, sizeof *s);
  if (!s) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "snes: out of memory");
  a->state = s;
  s->mean = malloc(n * sizeof(double));
  s->sigma = malloc(n * sizeof(double));
  s->u = malloc((size_t)a->pop * sizeof(double));
  s->keys = malloc((size_t)a->pop * sizeof(evo_key));
  s->sums = malloc(2 * n * sizeof(double));
  if (!s->mean || !s->sigma || !s->u || !s->keys || !s->sums)
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "snes: out of memory for %lld parameters", (long long)a->n);
  for (size_t i = 0; i < n; i++) s->mean[i] = a->init_mean[i], s->sigma[i] = a->init_stdev;
  s->eta_mu = evo_algo_opt(a, "eta_mu");
  s->eta_sigma = evo_algo_opt(a, "eta_sigma") > 0 ? evo_algo_opt(a, "eta_sigma") : evo_snes_eta_sigma(a->n);
  return EVO_STATUS_OK;
}

static evo_status snes_ask(evo_algo *a, int begin, int end, float *pop) {
  const snes_state *s = a->state;
  evo_anti_ask_plain(a, s->mean, s->sigma, begin, end, pop, s->keys);
  return EVO_STATUS_OK;
}

static evo_status snes_ask_device(evo_algo *a, int begin, int end, evo_tensor *pop) {
  snes_state *s = a->state;
  return evo_anti_dev_ask_plain(&s->dev, a, s->mean, s->sigma, begin, end, pop);
}

/* Coordinate i's step from its two sums (the host and device paths share it). */
static inline void snes_coord(snes_state *s, int64_t i, double gm, double gs) {
  s->mean[i] += s->eta_mu * s->sigma[i] * gm;
  s->sigma[i] *= exp(0.5 * s->eta_sigma * gs);
}

static evo_status snes_tell(evo_algo *a, const float *fitness) {
  snes_state *s = a->state;
  const int P = a->pop;
  const int64_t n = a->n;
  if (!evo_anti_any_finite(fitness, P)) return EVO_STATUS_OK;
  evo_shape_nes_utilities(fitness, P, s->u);
  evo_status st = evo_anti_tell_sums(s->dev, a, NULL, s->u, s->u, true, P, s->sums, s->sums + n, s->keys);
  if (st) return st;
  for (int64_t i = 0; i < n; i++) snes_coord(s, i, s->sums[i], s->sums[n + i]);
  return EVO_STATUS_OK;
}

static evo_status snes_best(const evo_algo *a, float *params) {
  const snes_state *s = a->state;
  for (int64_t i = 0; i < a->n; i++) params[i] = (float)s->mean[i];
  return EVO_STATUS_OK;
}

static void snes_state_list(evo_algo *a, evo_state_list *l) {
  snes_state *s = a->state;
  evo_state_add(l, "snes.mean", EVO_F64, s->mean, a->n);
  evo_state_add(l, "snes.sigma", EVO_F64, s->sigma, a->n);
}

static double snes_sigma(const evo_algo *a) {
  const snes_state *s = a->state;
  double acc = 0;
  for (int64_t i = 0; i < a->n; i++) acc += log(s->sigma[i]);
  return exp(acc / (double)a->n);
}

static int snes_default_pop(int64_t n) { return evo_nes_default_lambda(n); }

const evo_algo_vtable evo_es_snes = {
    .info = {.name = "snes",
             .doc = "SNES (Schaul et al. 2011; Wierstra et al. 2014): separable NES with NES utilities, eta_mu 1, "
                    "eta_sigma (3 + ln d) / (5 sqrt d); pop_size default 4 + floor(3 ln d), init_stdev 1 "
                    "(pybrain); sigma reported = geometric mean of the per-coordinate stdevs",
             .best_doc = "mean",
             .options = snes_options,
             .n_options = (int)(sizeof snes_options / sizeof *snes_options)},
    .default_pop = snes_default_pop,
    .default_stdev = 1.0, /* pybrain SNES: sigmas = ones */
    .init = snes_init,
    .ask = snes_ask,
    .ask_device = snes_ask_device,
    .tell = snes_tell,
    .best = snes_best,
    .state = snes_state_list,
    .sigma = snes_sigma,
    .destroy = snes_destroy,
};
