/* OpenAI-ES (Salimans et al. 2017, "Evolution strategies as a scalable alternative to reinforcement learning";
   openai/evolution-strategies-starter). Antithetic pairs theta +- sigma eps_k, centered ranks u over all N = P
   evaluations, gradient estimate
       g = sum_k (u_2k - u_2k+1) eps_k / (N sigma),
   and Adam on -g + c theta (the starter's optimizer.update(-g + l2coeff * theta); c = weight_decay, the shared
   gradient form of algos/weight_decay.c, default the starter's 0.005). The 1/sigma makes g the
   estimate of the gradient of the smoothed objective (the starter code leaves it out; with Adam only the relative
   weight of the l2 term changes). sigma is fixed by default; sigma_decay / sigma_min and lr_decay give evosax's
   decaying variants; fitness_shaping: z_score replaces the centered ranks by z-scores. Equal fitnesses share
   their centered rank, so a flat fitness gives g = 0 (Adam steps on the decay alone). A generation without any
   finite fitness changes nothing. best = theta. */
#include <stdlib.h>
#include "antithetic.h"
#include "antithetic_dev.h"
#include "evoc/optim.h"

typedef struct {
  float *theta; /* n, updated by Adam */
  double sigma[1];
  evo_optim *opt;
  double *g;     /* n scratch */
  float *g32;    /* n scratch */
  double *u;     /* pop scratch: shaped fitness; then u[k] = u_2k - u_2k+1 */
  evo_key *keys; /* pop / 2 + 2 scratch */
  evo_anti_dev *dev; /* set once asked on a device: tell's sum runs there too */
} openes_state;

static const evo_option_spec openes_options[] = {
    {"lr", 0.01, 0, 1e3, "Adam step size (Salimans et al. 2017; es-starter configs stepsize 0.01)", NULL},
    {"weight_decay", 0.005, 0, 1e3,
     "L2 coefficient c, gradient form: Adam sees -g + c theta (Salimans et al. 2017; es-starter configs l2coeff "
     "0.005); 0 = off", NULL},
    {"beta1", 0.9, 0, 0.9999, "Adam beta1 (es-starter Adam default)", NULL},
    {"beta2", 0.999, 0, 0.999999, "Adam beta2 (es-starter Adam default)", NULL},
    {"sigma_decay", 1, 1e-6, 1, "sigma <- max(sigma * sigma_decay, sigma_min) per step; 1 = fixed as in the paper",
     NULL},
    {"sigma_min", 0, 0, 1e6, "lower bound for a decaying sigma (evosax OpenES sigma_limit)", NULL},
    {"lr_decay", 1, 1e-6, 1, "lr_t = lr * lr_decay^t (evosax OpenES lr_decay); 1 = constant as in the paper", NULL},
    {"fitness_shaping", 0, 0, 1, "u: centered_ranks over all N evaluations (Salimans et al. 2017) or z_score "
     "(evosax's option)", evo_shape_names},
};

static void openes_destroy(evo_algo *a) {
  openes_state *s = a->state;
  if (!s) return;
  evo_optim_free(s->opt);
  evo_anti_dev_free(s->dev);
  free(s->theta);
  free(s->keys);
  free(s->g);
  free(s->g32);
  free(s->u);
  free(s);
  a->state = NULL;
}

static evo_status openes_init(evo_algo *a) {
  evo_status st = evo_antithetic_check_pop(a);
  if (st != EVO_STATUS_OK) return st;
  const size_t n = (size_t)a->n;
  openes_state *s = calloc(1, sizeof *s);
  if (!s) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "openes: out of memory");
  a->state = s;
  s->theta = malloc(n * sizeof(float));
  s->g = malloc(n * sizeof(double));
  s->g32 = malloc(n * sizeof(float));
  s->u = malloc((size_t)a->pop * sizeof(double));
  s->keys = malloc(((size_t)a->pop / 2 + 2) * sizeof(evo_key));
  if (!s->theta || !s->keys || !s->g || !s->g32 || !s->u)
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "openes: out of memory for %lld parameters", (long long)a->n);
  for (size_t i = 0; i < n; i++) s->theta[i] = a->init_mean[i];
  s->sigma[0] = a->init_stdev;
  evo_optim_params op = evo_optim_default_params(EVO_OPTIM_ADAM);
  op.lr = evo_algo_opt(a, "lr");
  op.beta1 = evo_algo_opt(a, "beta1");
  op.beta2 = evo_algo_opt(a, "beta2");
  if (evo_algo_opt(a, "lr_decay") < 1)
    op.schedule = EVO_SCHEDULE_EXPONENTIAL, op.decay_rate = evo_algo_opt(a, "lr_decay"), op.decay_steps = 1;
  return evo_optim_new(&op, a->n, &s->opt);
}

static evo_status openes_ask(evo_algo *a, int begin, int end, float *pop) {
  openes_state *s = a->state;
  evo_antithetic_ask(a, s->theta, NULL, s->sigma[0], begin, end, pop, s->keys);
  return EVO_STATUS_OK;
}

static evo_status openes_ask_device(evo_algo *a, int begin, int end, evo_tensor *pop) {
  openes_state *s = a->state;
  return evo_anti_dev_ask(&s->dev, a, s->theta, NULL, s->sigma[0], begin, end, pop);
}

static evo_status openes_tell(evo_algo *a, const float *fitness) {
  openes_state *s = a->state;
  const int64_t n = a->n;
  if (!evo_anti_any_finite(fitness, a->pop)) return EVO_STATUS_OK;
  const int dirs = a->pop / 2;
  evo_shape((int)evo_algo_opt(a, "fitness_shaping"), fitness, a->pop, s->u);
  for (int k = 0; k < dirs; k++) s->u[k] = s->u[2 * k] - s->u[2 * k + 1]; /* in place: k <= 2k */
  evo_status st = evo_anti_tell_sums(s->dev, a, NULL, s->u, NULL, true, dirs, s->g, NULL, s->keys);
  if (st) return st;
  const double scale = 1.0 / (a->pop * s->sigma[0]);
  for (int64_t i = 0; i < n; i++) s->g32[i] = (float)(-s->g[i] * scale);
  evo_algo_weight_decay_grad(a, s->theta, n, s->g32);
  st = evo_optim_step(s->opt, s->theta, s->g32);
  s->sigma[0] = fmax(s->sigma[0] * evo_algo_opt(a, "sigma_decay"), evo_algo_opt(a, "sigma_min"));
  return st;
}

static evo_status openes_best(const evo_algo *a, float *params) {
  const openes_state *s = a->state;
  for (int64_t i = 0; i < a->n; i++) params[i] = s->theta[i];
  return EVO_STATUS_OK;
}

static void openes_state_list(evo_algo *a, evo_state_list *l) {
  openes_state *s = a->state;
  evo_state_add(l, "openes.theta", EVO_F32, s->theta, a->n);
  evo_state_add(l, "openes.sigma", EVO_F64, s->sigma, 1);
  for (int i = 0; i < evo_optim_state_count(s->opt); i++) {
    const char *name;
    double *data;
    int64_t len;
    evo_optim_state_at(s->opt, i, &name, &data, &len);
    evo_state_add(l, name, EVO_F64, data, len);
  }
}

static double openes_sigma(const evo_algo *a) { return ((const openes_state *)a->state)->sigma[0]; }

const evo_algo_vtable evo_es_openes = {
    .info = {.name = "openes",
             .doc = "OpenAI-ES (Salimans et al. 2017): antithetic sampling, centered ranks, Adam on -g + "
                    "weight_decay theta, fixed sigma (optionally decaying); pop_size even (default 2 (4 + "
                    "floor(3 ln n))), init_stdev 0.02",
             .best_doc = "mean",
             .options = openes_options,
             .n_options = (int)(sizeof openes_options / sizeof *openes_options)},
    .default_pop = evo_antithetic_default_pop,
    .default_stdev = 0.02, /* es-starter configs noise_stdev */
    .init = openes_init,
    .ask = openes_ask,
    .ask_device = openes_ask_device,
    .tell = openes_tell,
    .best = openes_best,
    .state = openes_state_list,
    .sigma = openes_sigma,
    .destroy = openes_destroy,
};
