/* PGPE: policy gradients with parameter-based exploration (Sehnke et al. 2010, "Parameter-exploring policy
   gradients", Neural Networks 23(4)), with symmetric sampling, centered ranks, per-coordinate stdev learning and
   the ClipUp optimizer for the center (Toklu et al. 2020), as in EvoJAX's evojax/algo/pgpe.py (itself from
   nnaisense/pgpelib).

   Directions k = 0..P/2-1 with scaled noise d_k = stdev * eps_k; members 2k, 2k+1 = center +- d_k. With shaped
   fitness u (centered ranks in [-0.5, 0.5]; z-scores with fitness_shaping: z_score) and baseline b = mean(u):
     grad_center = mean_k d_k (u_2k - u_2k+1) / 2
     grad_stdev  = mean_k ((u_2k + u_2k+1) / 2 - b) (d_k^2 - stdev^2) / stdev
   The optimizer (ClipUp or Adam) minimises -grad_center + c center (c = weight_decay, the shared gradient form of
   algos/weight_decay.c); stdev <- clip(stdev + stdev_lr grad_stdev, stdev (1 -+ stdev_max_change)). Equal
   fitnesses share their centered rank, so a flat fitness gives zero gradients (only the decay acts). A generation
   without any finite fitness changes nothing. best = the center. */
#include <stdlib.h>
#include "antithetic.h"
#include "antithetic_dev.h"
#include "evoc/optim.h"

typedef struct {
  float *center; /* n, updated by the optimizer */
  double *stdev; /* n */
  evo_optim *opt;
  float *g32;    /* n scratch: -grad_center for the optimizer */
  double *u;     /* pop scratch: shaped fitness */
  double *w;     /* pop scratch: per-direction weights of the two gradient sums */
  evo_key *keys; /* pop / 2 + 2 scratch */
  evo_anti_dev *dev; /* set once asked on a device: tell's sums run there too */
  double *sums;      /* 2n: tell's two sums */
} pgpe_state;

static const char *const pgpe_optimizer_names[] = {"clipup", "adam", NULL};

static const evo_option_spec pgpe_options[] = {
    {"center_lr", 0.15, 0, 1e3, "center step size: ClipUp's alpha or Adam's lr (EvoJAX PGPE center_learning_rate)",
     NULL},
    {"stdev_lr", 0.1, 0, 1e3, "stdev learning rate (EvoJAX PGPE stdev_learning_rate)", NULL},
    {"stdev_max_change", 0.2, 0, 1, "max relative stdev change per step (EvoJAX PGPE; Toklu et al. 2020)", NULL},
    {"optimizer", 0, 0, 1, "center optimizer: clipup (Toklu et al. 2020) or adam (EvoJAX PGPE option)",
     pgpe_optimizer_names},
    {"max_speed", 0.15, 1e-12, 1e6, "ClipUp max speed (EvoJAX PGPE clipup default)", NULL},
    {"momentum", 0.9, 0, 0.9999, "ClipUp momentum (Toklu et al. 2020; EvoJAX PGPE clipup default)", NULL},
    {"beta1", 0.9, 0, 0.9999, "Adam beta1 (EvoJAX PGPE adam default, Kingma & Ba 2015)", NULL},
    {"beta2", 0.999, 0, 0.999999, "Adam beta2 (EvoJAX PGPE adam default, Kingma & Ba 2015)", NULL},
    {"weight_decay", 0, 0, 1e3,
     "L2 coefficient c, gradient form: the optimizer sees -grad_center + c center; 0 = off (EvoJAX's and "
     "pgpelib's PGPE have none)", NULL},
    {"adam_count_every", 1, 1, 1e9,
     "Adam's bias-correction step advances every k generations: 1 = Kingma & Ba; 1000 = as EvoJAX's PGPE runs "
     "Adam (step t // center_lr_decay_steps), which boosts early steps ~2x and shrinks late ones to ~0.4x", NULL},
    {"fitness_shaping", 0, 0, 1, "u: centered_ranks in [-0.5, 0.5] (EvoJAX PGPE) or z_score (evosax's option)",
     evo_shape_names},
};

static void pgpe_destroy(evo_algo *a) {
  pgpe_state *s = a->state;
  if (!s) return;
  evo_optim_free(s->opt);
  evo_anti_dev_free(s->dev);
  free(s->sums);
  free(s->center);
  free(s->stdev);
  free(s->g32);
  free(s->keys);
  free(s->u);
  free(s->w);
  free(s);
  a->state = NULL;
}

static evo_status pgpe_init(evo_algo *a) {
  evo_status st = evo_antithetic_check_pop(a);
  int which = 0, count_every = 1;
  if (st == EVO_STATUS_OK) st = evo_es_int_option(a, "optimizer", &which);
  if (st == EVO_STATUS_OK) st = evo_es_int_option(a, "adam_count_every", &count_every);
  if (st != EVO_STATUS_OK) return st;
  const size_t n = (size_t)a->n;
  pgpe_state *s = calloc(1, sizeof *s);
  if (!s) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "pgpe: out of memory");
  a->state = s;
  s->center = malloc(n * sizeof(float));
  s->stdev = malloc(n * sizeof(double));
  s->g32 = malloc(n * sizeof(float));
  s->u = malloc((size_t)a->pop * sizeof(double));
  s->w = malloc((size_t)a->pop * sizeof(double));
  s->keys = malloc(((size_t)a->pop / 2 + 2) * sizeof(evo_key));
  s->sums = malloc(2 * n * sizeof(double));
  if (!s->center || !s->stdev || !s->g32 || !s->u || !s->w || !s->keys || !s->sums)
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "pgpe: out of memory for %lld parameters", (long long)a->n);
  for (size_t i = 0; i < n; i++) s->center[i] = a->init_mean[i], s->stdev[i] = a->init_stdev;
  evo_optim_params op;
  if (which == 0) {
    op = evo_optim_default_params(EVO_OPTIM_CLIPUP);
    op.max_speed = evo_algo_opt(a, "max_speed");
    op.momentum = evo_algo_opt(a, "momentum");
  } else {
    op = evo_optim_default_params(EVO_OPTIM_ADAM);
    op.beta1 = evo_algo_opt(a, "beta1");
    op.beta2 = evo_algo_opt(a, "beta2");
    op.adam_count_every = count_every;
  }
  op.lr = evo_algo_opt(a, "center_lr");
  return evo_optim_new(&op, a->n, &s->opt);
}

static evo_status pgpe_ask(evo_algo *a, int begin, int end, float *pop) {
  pgpe_state *s = a->state;
  evo_antithetic_ask(a, s->center, s->stdev, 0, begin, end, pop, s->keys);
  return EVO_STATUS_OK;
}

static evo_status pgpe_ask_device(evo_algo *a, int begin, int end, evo_tensor *pop) {
  pgpe_state *s = a->state;
  return evo_anti_dev_ask(&s->dev, a, s->center, s->stdev, 0, begin, end, pop);
}

/* Coordinate i's gradient and stdev step from its two sums (the host and device paths share it). */
static inline void pgpe_coord(pgpe_state *s, int64_t i, double sc, double ss, int dirs, double lr,
                              double max_change) {
  const double sd = s->stdev[i], allowed = fabs(sd) * max_change;
  s->g32[i] = (float)(-sd * sc / dirs);
  s->stdev[i] = fmin(fmax(sd + lr * (sd * ss / dirs), sd - allowed), sd + allowed);
}

/* With d = stdev eps: d (u+ - u-) / 2 = stdev eps (u+ - u-) / 2 and (d^2 - stdev^2) / stdev = stdev (eps^2 - 1),
   so each coordinate needs two sums over the directions, sum_k h_k eps_k and sum_k c_k (eps_k^2 - 1). */
static evo_status pgpe_tell(evo_algo *a, const float *fitness) {
  pgpe_state *s = a->state;
  const int64_t n = a->n;
  const int dirs = a->pop / 2;
  if (!evo_anti_any_finite(fitness, a->pop)) return EVO_STATUS_OK;
  double *u = s->u;
  evo_shape((int)evo_algo_opt(a, "fitness_shaping"), fitness, a->pop, u);
  double baseline = 0;
  for (int j = 0; j < a->pop; j++) baseline += u[j];
  baseline /= a->pop;
  double *h = s->w, *c = s->w + dirs;
  for (int k = 0; k < dirs; k++) {
    h[k] = 0.5 * (u[2 * k] - u[2 * k + 1]);
    c[k] = 0.5 * (u[2 * k] + u[2 * k + 1]) - baseline;
  }
  const double max_change = evo_algo_opt(a, "stdev_max_change"), lr = evo_algo_opt(a, "stdev_lr");
  evo_status st = evo_anti_tell_sums(s->dev, a, NULL, h, c, false, dirs, s->sums, s->sums + n, s->keys);
  if (st) return st;
  for (int64_t i = 0; i < n; i++) pgpe_coord(s, i, s->sums[i], s->sums[n + i], dirs, lr, max_change);
  evo_algo_weight_decay_grad(a, s->center, n, s->g32);
  return evo_optim_step(s->opt, s->center, s->g32);
}

static evo_status pgpe_best(const evo_algo *a, float *params) {
  const pgpe_state *s = a->state;
  for (int64_t i = 0; i < a->n; i++) params[i] = s->center[i];
  return EVO_STATUS_OK;
}

static void pgpe_state_list(evo_algo *a, evo_state_list *l) {
  pgpe_state *s = a->state;
  evo_state_add(l, "pgpe.center", EVO_F32, s->center, a->n);
  evo_state_add(l, "pgpe.stdev", EVO_F64, s->stdev, a->n);
  for (int i = 0; i < evo_optim_state_count(s->opt); i++) {
    const char *name;
    double *data;
    int64_t len;
    evo_optim_state_at(s->opt, i, &name, &data, &len);
    evo_state_add(l, name, EVO_F64, data, len);
  }
}

/* The root mean square of the per-coordinate stdevs. */
static double pgpe_sigma(const evo_algo *a) {
  const pgpe_state *s = a->state;
  double q = 0;
  for (int64_t i = 0; i < a->n; i++) q += s->stdev[i] * s->stdev[i];
  return sqrt(q / a->n);
}

const evo_algo_vtable evo_es_pgpe = {
    .info = {.name = "pgpe",
             .doc = "PGPE (Sehnke et al. 2010) with symmetric sampling, centered ranks, stdev learning clipped to "
                    "+-stdev_max_change per step and a ClipUp (Toklu et al. 2020) or Adam center update; defaults "
                    "of EvoJAX's PGPE; pop_size even (default 2 (4 + floor(3 ln n))), init_stdev 0.1",
             .best_doc = "mean",
             .options = pgpe_options,
             .n_options = (int)(sizeof pgpe_options / sizeof *pgpe_options)},
    .default_pop = evo_antithetic_default_pop,
    .default_stdev = 0.1, /* EvoJAX PGPE init_stdev */
    .init = pgpe_init,
    .ask = pgpe_ask,
    .ask_device = pgpe_ask_device,
    .tell = pgpe_tell,
    .best = pgpe_best,
    .state = pgpe_state_list,
    .sigma = pgpe_sigma,
    .destroy = pgpe_destroy,
};
