/* CEM, the cross-entropy method for continuous search (Rubinstein 1999, "The cross-entropy method for combinatorial
   and continuous optimization"), in the diagonal-Gaussian form benchmarked by Duan et al. 2016 ("Benchmarking deep
   reinforcement learning for continuous control", rllab's CEM) and offered by EvoTorch.

   Member k of generation g: x_k = mu + sigma (.) z_k, z_k = N(0, I) from evo_algo_member_key(a, g, k) (SNES's
   sampling, so the population can be drawn on a device). tell keeps the e = max(1, floor(elite_ratio P)) best
   members, at most the finite ones (a NaN member is never an elite), and fits the Gaussian to them, per coordinate:
     mu    <- mean of the elites                    = mu + sigma (.) zbar,            zbar = mean_e z
     sigma <- sample stdev of the elites (Bessel)   = sigma (.) sqrt(e / (e - 1) (mean_e z^2 - zbar^2))
   then sigma <- sqrt(sigma^2 + extra_std^2 max(0, 1 - g / extra_decay)) (rllab's extra_std, against premature
   collapse), clipped to a relative change of at most stdev_max_change (EvoTorch's option; 0 = off) and to
   [stdev_min, stdev_max]. The two sums run over the elites in member-index order (evo_anti_sums, or its device
   twin, bit for bit), so the update depends on the elite set only. With one elite sigma is extra_std's part
   alone (or stdev_min). Plain CEM's stdev estimate from few elites drifts down (log of a chi variable), so small
   populations stall before the optimum; extra_std (Szita & Lorincz 2006's noisy CEM, rllab's default 1 over 100
   generations) counters it. A generation without any finite fitness changes nothing.
   best = mu; the sigma reported is the arithmetic mean of the per-coordinate stdevs. */
#include <stdlib.h>
#include "antithetic_dev.h"
#include "nes.h"

typedef struct {
  double *mean, *sigma; /* n each */
  double *sums;         /* 2n: mean_e z and mean_e (z^2 - 1) */
  double *w;            /* pop scratch: 1 / e per elite */
  int *order, *elite;   /* pop scratch */
  evo_key *keys;        /* pop scratch */
  evo_anti_dev *dev;    /* set once asked on a device: tell's sums run there too */
} cem_state;

static const evo_option_spec cem_options[] = {
    {"elite_ratio", 0.5, 1e-9, 1, "fraction of the population kept as elites (EvoTorch parenthood_ratio)", NULL},
    {"extra_std", 0, 0, 1e6, "stdev added in quadrature, decaying linearly to 0 (Duan et al. 2016 rllab CEM)", NULL},
    {"extra_decay", 100, 1, 1e12, "generations over which extra_std decays to 0 (rllab extra_decay_time 100)", NULL},
    {"stdev_min", 0, 0, 1e30, "lower bound of every stdev", NULL},
    {"stdev_max", 1e30, 0, 1e30, "upper bound of every stdev", NULL},
    {"stdev_max_change", 0, 0, 1, "max relative stdev change per generation (EvoTorch CEM); 0 = no limit", NULL},
};

static void cem_destroy(evo_algo *a) {
  cem_state *s = a->state;
  if (!s) return;
  evo_anti_dev_free(s->dev);
  free(s->mean), free(s->sigma), free(s->sums), free(s->w), free(s->order), free(s->elite), free(s->keys), free(s);
  a->state = NULL;
}

static evo_status cem_init(evo_algo *a) {
  evo_status st = evo_nes_check_pop(a, 2, 0);
  if (st != EVO_STATUS_OK) return st;
  if (evo_algo_opt(a, "stdev_min") > evo_algo_opt(a, "stdev_max"))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cem: stdev_min %g exceeds stdev_max %g",
                     evo_algo_opt(a, "stdev_min"), evo_algo_opt(a, "stdev_max"));
  const size_t n = (size_t)a->n, P = (size_t)a->pop;
  cem_state *s = calloc(1, sizeof *s);
  if (!s) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "cem: out of memory");
  a->state = s;
  s->mean = malloc(n * sizeof(double));
  s->sigma = malloc(n * sizeof(double));
  s->sums = malloc(2 * n * sizeof(double));
  s->w = malloc(P * sizeof(double));
  s->order = malloc(P * sizeof(int));
  s->elite = malloc(P * sizeof(int));
  s->keys = malloc(P * sizeof(evo_key));
  if (!s->mean || !s->sigma || !s->sums || !s->w || !s->order || !s->elite || !s->keys)
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "cem: out of memory for %lld parameters", (long long)a->n);
  for (size_t i = 0; i < n; i++) s->mean[i] = a->init_mean[i], s->sigma[i] = a->init_stdev;
  return EVO_STATUS_OK;
}

static evo_status cem_ask(evo_algo *a, int begin, int end, float *pop) {
  const cem_state *s = a->state;
  evo_anti_ask_plain(a, s->mean, s->sigma, begin, end, pop, s->keys);
  return EVO_STATUS_OK;
}

static evo_status cem_ask_device(evo_algo *a, int begin, int end, evo_tensor *pop) {
  cem_state *s = a->state;
  return evo_anti_dev_ask_plain(&s->dev, a, s->mean, s->sigma, begin, end, pop);
}

static int cmp_int(const void *x, const void *y) {
  const int p = *(const int *)x, q = *(const int *)y;
  return (p > q) - (p < q);
}

static evo_status cem_tell(evo_algo *a, const float *fitness) {
  cem_state *s = a->state;
  const int P = a->pop;
  const int64_t n = a->n;
  if (!evo_anti_any_finite(fitness, P)) return EVO_STATUS_OK;
  int e = (int)floor(evo_algo_opt(a, "elite_ratio") * P), finite = 0;
  for (int k = 0; k < P; k++) finite += isfinite(fitness[k]) != 0;
  e = e < 1 ? 1 : e > finite ? finite : e; /* a failed (NaN) member is never an elite */
  evo_shape_argsort_desc(fitness, P, s->order); /* stable: ties by member index */
  for (int k = 0; k < e; k++) s->elite[k] = s->order[k];
  qsort(s->elite, (size_t)e, sizeof *s->elite, cmp_int); /* sum in member order: the elite set decides */
  for (int k = 0; k < e; k++) s->w[k] = 1.0 / e;
  double *zbar = s->sums, *z2m1 = s->sums + n;
  evo_status st = evo_anti_tell_sums(s->dev, a, s->elite, s->w, s->w, true, e, zbar, z2m1, s->keys);
  if (st) return st;
  const double g = (double)a->gen, decay = fmax(0.0, 1.0 - g / evo_algo_opt(a, "extra_decay"));
  const double extra2 = evo_algo_opt(a, "extra_std") * evo_algo_opt(a, "extra_std") * decay;
  const double lo = evo_algo_opt(a, "stdev_min"), hi = evo_algo_opt(a, "stdev_max");
  const double maxc = evo_algo_opt(a, "stdev_max_change");
  const double bessel = e > 1 ? (double)e / (e - 1) : 0.0;
  for (int64_t i = 0; i < n; i++) {
    const double sd = s->sigma[i], var_z = bessel * fmax(0.0, z2m1[i] + 1.0 - zbar[i] * zbar[i]);
    double ns = sqrt(sd * sd * var_z + extra2);
    if (maxc > 0) ns = fmin(fmax(ns, sd * (1 - maxc)), sd * (1 + maxc));
    s->mean[i] += sd * zbar[i];
    s->sigma[i] = fmin(fmax(ns, lo), hi);
  }
  return EVO_STATUS_OK;
}

static evo_status cem_best(const evo_algo *a, float *params) {
  const cem_state *s = a->state;
  for (int64_t i = 0; i < a->n; i++) params[i] = (float)s->mean[i];
  return EVO_STATUS_OK;
}

static void cem_state_list(evo_algo *a, evo_state_list *l) {
  cem_state *s = a->state;
  evo_state_add(l, "cem.mean", EVO_F64, s->mean, a->n);
  evo_state_add(l, "cem.sigma", EVO_F64, s->sigma, a->n);
}

static double cem_sigma(const evo_algo *a) {
  const cem_state *s = a->state;
  double acc = 0;
  for (int64_t i = 0; i < a->n; i++) acc += s->sigma[i];
  return acc / (double)a->n;
}

/* CEM refits the stdev from e samples, so it needs more members than the NES family to keep its step size: with
   2 (4 + floor(3 ln n)) members (20 at n = 10) plain CEM stalls on the 10-d sphere (tests/test_cem.c). */
static int cem_default_pop(int64_t n) { return 4 * evo_nes_default_lambda(n); }

const evo_algo_vtable evo_es_cem = {
    .info = {.name = "cem",
             .doc = "CEM, the cross-entropy method (Rubinstein 1999; diagonal Gaussian as in Duan et al. 2016 and "
                    "EvoTorch): mean and sample stdev refit to the best elite_ratio (0.5) of each generation, optional "
                    "extra_std (rllab), stdev_max_change and bounds; pop_size default 4 (4 + floor(3 ln n)), "
                    "init_stdev 1 (rllab)",
             .best_doc = "mean",
             .options = cem_options,
             .n_options = (int)(sizeof cem_options / sizeof *cem_options)},
    .default_pop = cem_default_pop,
    .default_stdev = 1.0, /* rllab CEM init_std */
    .init = cem_init,
    .ask = cem_ask,
    .ask_device = cem_ask_device,
    .tell = cem_tell,
    .best = cem_best,
    .state = cem_state_list,
    .sigma = cem_sigma,
    .destroy = cem_destroy,
};
