/* ARS: augmented random search (Mania, Guy & Recht 2018, "Simple random search of static linear policies is
   competitive for reinforcement learning", Algorithm 2; modestyachts/ARS code/ars.py).

   N = P/2 directions delta_k ~ N(0, I); members 2k, 2k+1 = theta +- nu delta_k (nu = init_stdev) with rewards
   r+_k, r-_k. Keep the top b directions by max(r+_k, r-_k) (ties: lower k first), sigma_R = std (ddof 0) of their
   2b rewards, and step
       theta += alpha / (b sigma_R) sum_{top b} (r+_k - r-_k) delta_k.
   V1 and V2 share this update: V2's observation normalisation (running mean/std of the states seen) belongs to
   the run system, which reads `version`. Rewards are used raw, as in the paper; a NaN reward counts as the worst
   finite reward of the generation (the wrapper has made it -inf). A generation whose selected rewards are all equal
   (sigma_R = 0) has no reward step: every weight r+ - r- is 0 there. weight_decay c adds the shared gradient form
   (algos/weight_decay.c): theta -= alpha c theta each step, so on a flat reward theta shrinks by (1 - alpha c) per
   generation. best = theta. */
#include <stdlib.h>
#include <string.h>
#include "antithetic.h"
#include "antithetic_dev.h"

typedef struct {
  float *theta; /* n */
  double *step;  /* n scratch */
  float *rmax;   /* N scratch: max(r+, r-) */
  float *r;      /* pop scratch: rewards with -inf replaced */
  int *order;    /* N scratch */
  double *w;     /* N scratch: r+ - r- of the kept directions */
  evo_key *keys; /* N + 2 scratch */
  int b;         /* resolved number of directions kept */
  evo_anti_dev *dev; /* set once asked on a device: tell's sum runs there too */
} ars_state;

static const char *const ars_version_names[] = {"v1", "v2", NULL};

static const evo_option_spec ars_options[] = {
    {"step_size", 0.02, 0, 1e3, "alpha (Mania et al. 2018; ARS code/ars.py default step_size)", NULL},
    {"top_b", 0, 0, 1e9, "directions kept, b <= pop_size / 2; 0 = all (ARS code/ars.py default deltas_used = "
                         "n_directions)", NULL},
    {"version", 1, 1, 2, "v1 = ARS V1; v2 = V2, observations normalised by the run system (same update here)",
     ars_version_names},
    {"weight_decay", 0, 0, 1e3,
     "L2 coefficient c, gradient form: theta -= step_size c theta per step; 0 = off (the ARS paper and code have "
     "none)", NULL},
};

static void ars_destroy(evo_algo *a) {
  ars_state *s = a->state;
  if (!s) return;
  evo_anti_dev_free(s->dev);
  free(s->theta);
  free(s->keys);
  free(s->w);
  free(s->step);
  free(s->rmax);
  free(s->r);
  free(s->order);
  free(s);
  a->state = NULL;
}

static evo_status ars_init(evo_algo *a) {
  evo_status st = evo_antithetic_check_pop(a);
  int b = 0, version = 1;
  if (st == EVO_STATUS_OK) st = evo_es_int_option(a, "top_b", &b);
  if (st == EVO_STATUS_OK) st = evo_es_int_option(a, "version", &version);
  if (st != EVO_STATUS_OK) return st;
  const int dirs = a->pop / 2;
  if (b > dirs)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo ars: top_b = %d exceeds the %d directions (pop_size / 2)", b,
                     dirs);
  const size_t n = (size_t)a->n;
  ars_state *s = calloc(1, sizeof *s);
  if (!s) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "ars: out of memory");
  a->state = s;
  s->b = b ? b : dirs;
  s->theta = malloc(n * sizeof(float));
  s->keys = malloc(((size_t)dirs + 2) * sizeof(evo_key));
  s->w = malloc((size_t)dirs * sizeof(double));
  s->step = malloc(n * sizeof(double));
  s->rmax = malloc((size_t)dirs * sizeof(float));
  s->r = malloc((size_t)a->pop * sizeof(float));
  s->order = malloc((size_t)dirs * sizeof(int));
  if (!s->theta || !s->keys || !s->w || !s->step || !s->rmax || !s->r || !s->order)
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "ars: out of memory for %lld parameters", (long long)a->n);
  for (size_t i = 0; i < n; i++) s->theta[i] = a->init_mean[i];
  return EVO_STATUS_OK;
}

static evo_status ars_ask(evo_algo *a, int begin, int end, float *pop) {
  ars_state *s = a->state;
  evo_antithetic_ask(a, s->theta, NULL, a->init_stdev, begin, end, pop, s->keys);
  return EVO_STATUS_OK;
}

static evo_status ars_ask_device(evo_algo *a, int begin, int end, evo_tensor *pop) {
  ars_state *s = a->state;
  return evo_anti_dev_ask(&s->dev, a, s->theta, NULL, a->init_stdev, begin, end, pop);
}

static evo_status ars_tell(evo_algo *a, const float *fitness) {
  ars_state *s = a->state;
  const int64_t n = a->n;
  const int dirs = a->pop / 2, b = s->b;
  float worst = INFINITY;
  for (int j = 0; j < a->pop; j++)
    if (isfinite(fitness[j]) && fitness[j] < worst) worst = fitness[j];
  if (!isfinite(worst)) return EVO_STATUS_OK; /* no finite reward: nothing to learn from */
  for (int j = 0; j < a->pop; j++) s->r[j] = isfinite(fitness[j]) ? fitness[j] : worst;
  for (int k = 0; k < dirs; k++) s->rmax[k] = fmaxf(s->r[2 * k], s->r[2 * k + 1]);
  evo_shape_argsort_desc(s->rmax, dirs, s->order);
  double mean = 0, var = 0;
  for (int t = 0; t < b; t++) mean += (double)s->r[2 * s->order[t]] + s->r[2 * s->order[t] + 1];
  mean /= 2.0 * b;
  for (int t = 0; t < b; t++)
    for (int q = 0; q < 2; q++) {
      const double d = s->r[2 * s->order[t] + q] - mean;
      var += d * d;
    }
  const double sigma_r = sqrt(var / (2.0 * b)), alpha = evo_algo_opt(a, "step_size");
  /* step = the descent direction: -(1 / (b sigma_R)) sum (r+ - r-) delta (0 when the rewards do not differ),
     plus the decay c theta; theta -= alpha step. */
  if (sigma_r > 0 && isfinite(sigma_r)) {
    for (int t = 0; t < b; t++) s->w[t] = ((double)s->r[2 * s->order[t]] - s->r[2 * s->order[t] + 1]) / (b * sigma_r);
    evo_status st = evo_anti_tell_sums(s->dev, a, s->order, s->w, NULL, true, b, s->step, NULL, s->keys);
    if (st) return st;
    for (int64_t i = 0; i < n; i++) s->step[i] = -s->step[i];
  } else {
    if (evo_algo_weight_decay_coef(a) == 0) return EVO_STATUS_OK;
    memset(s->step, 0, sizeof(double) * (size_t)n);
  }
  evo_algo_weight_decay_grad64(a, s->theta, n, s->step);
  for (int64_t i = 0; i < n; i++) s->theta[i] = (float)(s->theta[i] - alpha * s->step[i]);
  return EVO_STATUS_OK;
}

static evo_status ars_best(const evo_algo *a, float *params) {
  const ars_state *s = a->state;
  for (int64_t i = 0; i < a->n; i++) params[i] = s->theta[i];
  return EVO_STATUS_OK;
}

static void ars_state_list(evo_algo *a, evo_state_list *l) {
  ars_state *s = a->state;
  evo_state_add(l, "ars.theta", EVO_F32, s->theta, a->n);
}

static double ars_sigma(const evo_algo *a) { return a->init_stdev; }

/* 8 directions (ARS code/ars.py default n_directions). */
static int ars_default_pop(int64_t n) {
  (void)n;
  return 16;
}

const evo_algo_vtable evo_es_ars = {
    .info = {.name = "ars",
             .doc = "ARS V1/V2 (Mania et al. 2018): antithetic directions, top-b by max(r+, r-), step scaled by "
                    "the std of the selected rewards; pop_size = 2 x directions (default 16: 8 directions as in "
                    "ARS code/ars.py), init_stdev = nu (default 0.03, ars.py delta_std)",
             .best_doc = "mean",
             .options = ars_options,
             .n_options = (int)(sizeof ars_options / sizeof *ars_options)},
    .default_pop = ars_default_pop,
    .default_stdev = 0.03, /* ars.py delta_std */
    .init = ars_init,
    .ask = ars_ask,
    .ask_device = ars_ask_device,
    .tell = ars_tell,
    .best = ars_best,
    .state = ars_state_list,
    .sigma = ars_sigma,
    .destroy = ars_destroy,
};
