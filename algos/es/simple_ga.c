/* SimpleGA: truncation selection with Gaussian mutation (EvoJAX algo/simple_ga.py; the Deep GA of Such et al. 2017,
   "Deep Neuroevolution", for elitism; evosax SimpleGA for uniform crossover and sigma decay).

   tell keeps the T = max(1, floor(elite_ratio P)) best members of the generation, best first (ties: lower index);
   member i of the next generation is elite u_i (uniform over the T, from its key) plus sigma N(0, I). Options:
   elitism copies the best elite unchanged into member 0 (re-evaluated, so with a deterministic fitness the
   generation's best never gets worse); crossover_rate takes each coordinate from a second uniform elite with that
   probability (uniform crossover) before mutation. Generation 0 is init_mean + init_stdev N(0, I).

   Member i of generation g is a pure function of (key, g, i) and the elites chosen by the previous tell, so any
   slice is regenerable; tell rebuilds the selected members instead of storing the population, from the noise ask
   kept (algos/zcache.h) or drawn again. The fitness optionally carries the shared weight decay penalty (fitness
   form, algos/weight_decay.c) before selection. A generation without a finite fitness changes nothing.
   best = best-ever member (by penalised fitness). */
#include <stdlib.h>
#include <string.h>
#include "algo_impl.h"
#include "zcache.h"

#define GA_TAG_NOISE 1u
#define GA_TAG_PICK 2u
#define GA_TAG_CROSS 3u

typedef struct {
  float *elite, *next; /* T x n each: current elites (best first) and the next ones being built */
  double meta[3];      /* n_elite (0 before the first tell), sigma, best fitness (maximised, -inf: none) */
  float *best;         /* n: best-ever member */
  float *f;            /* pop scratch: penalised fitness */
  int *order;          /* pop scratch */
  evo_key *keys;       /* pop scratch: noise keys */
  int t;               /* T */
} ga_state;

static const evo_option_spec ga_options[] = {
    {"elite_ratio", 0.5, 1e-6, 1, "fraction of the population kept as parents (EvoJAX truncation_divisor = 2)", NULL},
    {"sigma", 0, 0, 1e6, "mutation stdev; 0 = init_stdev (default 0.01 = EvoJAX SimpleGA sigma)", NULL},
    {"sigma_decay", 1, 1e-6, 1, "sigma <- max(sigma * sigma_decay, sigma_min) per generation (evosax); 1 = fixed "
                                "(EvoJAX)", NULL},
    {"sigma_min", 0, 0, 1e6, "lower bound of a decaying sigma (evosax sigma_limit)", NULL},
    {"elitism", 0, 0, 1, "true: member 0 is the best elite unchanged (Such et al. 2017); false: none (EvoJAX)",
     evo_option_bool},
    {"crossover_rate", 0, 0, 1, "probability that a coordinate comes from a second elite (uniform crossover, "
                                "evosax cross_over_rate); 0 = mutation only (EvoJAX)", NULL},
    EVO_WEIGHT_DECAY_OPTION,
};

/* Index in [0, m) from word w of the tagged key's first Philox block (multiply-shift, Lemire 2019). */
static int ga_pick(evo_key k, int w, int m) {
  const uint32_t ctr[4] = {0, 0, 0, 0};
  uint32_t out[4];
  evo_philox4x32_10(ctr, k.w, out);
  return (int)(((uint64_t)out[w] * (uint32_t)m) >> 32);
}

/* Key of member i's mutation noise. */
static evo_key ga_noise_key(const evo_algo *a, int i) {
  return evo_key_fold_in(evo_algo_member_key(a, a->gen, i), GA_TAG_NOISE);
}

/* Member i of the current generation into row. noise: its normals when already drawn (ask's memo), else NULL
   (drawn here into row); memo: where to keep them when drawn (NULL: nowhere). */
static void ga_member(const evo_algo *a, int i, float *row, const float *noise, float *memo) {
  const ga_state *s = a->state;
  const int64_t n = a->n;
  const int ne = (int)s->meta[0];
  const evo_key mk = evo_algo_member_key(a, a->gen, i);
  if (ne > 0 && i == 0 && evo_algo_opt(a, "elitism") != 0) {
    memcpy(row, s->elite, sizeof(float) * (size_t)n);
    return;
  }
  if (!noise) {
    float *dst = memo ? memo : row;
    evo_algo_normals(evo_key_fold_in(mk, GA_TAG_NOISE), 0, n, dst);
    noise = dst;
  }
  if (ne == 0) {
    for (int64_t j = 0; j < n; j++) row[j] = (float)(a->init_mean[j] + a->init_stdev * noise[j]);
    return;
  }
  const evo_key pk = evo_key_fold_in(mk, GA_TAG_PICK);
  const float *pa = s->elite + (int64_t)ga_pick(pk, 0, ne) * n;
  const double sigma = s->meta[1], rate = evo_algo_opt(a, "crossover_rate");
  if (rate > 0) {
    const float *pb = s->elite + (int64_t)ga_pick(pk, 1, ne) * n;
    const evo_key ck = evo_key_fold_in(mk, GA_TAG_CROSS);
    for (int64_t j = 0; j < n; j++)
      row[j] = (float)((evo_rng_uniform01(ck.w, (uint64_t)j) < rate ? pb[j] : pa[j]) + sigma * noise[j]);
  } else {
    for (int64_t j = 0; j < n; j++) row[j] = (float)(pa[j] + sigma * noise[j]);
  }
}

static void ga_destroy(evo_algo *a) {
  ga_state *s = a->state;
  if (!s) return;
  free(s->elite);
  free(s->next);
  free(s->best);
  free(s->f);
  free(s->order);
  free(s->keys);
  free(s);
  a->state = NULL;
}

static evo_status ga_init(evo_algo *a) {
  const double el = evo_algo_opt(a, "elitism");
  if (el != 0 && el != 1) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo simple_ga: elitism must be 0 or 1");
  ga_state *s = calloc(1, sizeof *s);
  if (!s) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "simple_ga: out of memory");
  a->state = s;
  const double t = floor(evo_algo_opt(a, "elite_ratio") * a->pop);
  s->t = t < 1 ? 1 : (int)t;
  const size_t tn = (size_t)s->t * (size_t)a->n;
  s->elite = calloc(tn, sizeof(float)); /* saved before the first tell too */
  s->next = malloc(tn * sizeof(float));
  s->best = malloc((size_t)a->n * sizeof(float));
  s->f = malloc((size_t)a->pop * sizeof(float));
  s->order = malloc((size_t)a->pop * sizeof(int));
  s->keys = malloc((size_t)a->pop * sizeof(evo_key));
  if (!s->elite || !s->next || !s->best || !s->f || !s->order || !s->keys)
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "simple_ga: out of memory for %d elites of %lld parameters", s->t,
                     (long long)a->n);
  memcpy(s->best, a->init_mean, (size_t)a->n * sizeof(float));
  const double sg = evo_algo_opt(a, "sigma");
  s->meta[0] = 0, s->meta[1] = sg > 0 ? sg : a->init_stdev, s->meta[2] = -INFINITY;
  return EVO_STATUS_OK;
}

/* Keeps each member's noise in the memo (members under elitism's copy keep garbage there, which ga_member never
   reads). */
static evo_status ga_ask(evo_algo *a, int begin, int end, float *pop) {
  ga_state *s = a->state;
  float *const *memo = evo_zc_begin(a, a->pop, begin, end);
#pragma omp parallel for schedule(static) if ((int64_t)(end - begin) * a->n >= 65536)
  for (int i = begin; i < end; i++)
    ga_member(a, i, pop + (int64_t)(i - begin) * a->n, NULL, evo_zc_at(memo, i, 0, NULL));
  for (int i = begin; i < end; i++) s->keys[i - begin] = ga_noise_key(a, i);
  evo_zc_end(a, begin, end, s->keys);
  return EVO_STATUS_OK;
}

static evo_status ga_tell(evo_algo *a, const float *fitness) {
  ga_state *s = a->state;
  const int64_t n = a->n;
  const int P = a->pop;
  int finite = 0;
  for (int i = 0; i < P; i++) finite += isfinite(fitness[i]) != 0;
  if (!finite) return EVO_STATUS_OK;
  memcpy(s->f, fitness, sizeof(float) * (size_t)P);
  for (int i = 0; i < P; i++) s->keys[i] = ga_noise_key(a, i);
  const float *const *kept = evo_zc_lookup(a, NULL, s->keys, P); /* member i's noise, or NULL */
  if (evo_algo_weight_decay_coef(a) > 0) /* penalise every member: regenerate each into next[0] as scratch */
    for (int i = 0; i < P; i++)
      if (isfinite(s->f[i])) {
        ga_member(a, i, s->next, kept ? kept[i] : NULL, NULL);
        s->f[i] = (float)(s->f[i] - evo_algo_weight_decay(a, s->next, n));
      }
  evo_shape_argsort_desc(s->f, P, s->order);
  const int t = s->t < P ? s->t : P;
#pragma omp parallel for schedule(static) if ((int64_t)t * n >= 65536)
  for (int k = 0; k < t; k++)
    ga_member(a, s->order[k], s->next + (int64_t)k * n, kept ? kept[s->order[k]] : NULL, NULL);
  if (s->f[s->order[0]] > s->meta[2]) {
    s->meta[2] = s->f[s->order[0]];
    memcpy(s->best, s->next, sizeof(float) * (size_t)n);
  }
  float *tmp = s->elite;
  s->elite = s->next, s->next = tmp;
  s->meta[0] = t;
  s->meta[1] = fmax(s->meta[1] * evo_algo_opt(a, "sigma_decay"), evo_algo_opt(a, "sigma_min"));
  return EVO_STATUS_OK;
}

static evo_status ga_best(const evo_algo *a, float *params) {
  const ga_state *s = a->state;
  memcpy(params, s->best, sizeof(float) * (size_t)a->n);
  return EVO_STATUS_OK;
}

static void ga_state_list(evo_algo *a, evo_state_list *l) {
  ga_state *s = a->state;
  evo_state_add(l, "simple_ga.meta", EVO_F64, s->meta, 3);
  evo_state_add(l, "simple_ga.elite", EVO_F32, s->elite, (int64_t)s->t * a->n);
  evo_state_add(l, "simple_ga.best", EVO_F32, s->best, a->n);
}

static double ga_sigma(const evo_algo *a) { return ((const ga_state *)a->state)->meta[1]; }

/* No default in EvoJAX or evosax; 64 gives 32 parents at the default elite_ratio. */
static int ga_default_pop(int64_t n) {
  (void)n;
  return 64;
}

const evo_algo_vtable evo_es_simple_ga = {
    .info = {.name = "simple_ga",
             .doc = "SimpleGA (EvoJAX): truncation selection of the best elite_ratio (0.5) of each generation, "
                    "Gaussian mutation sigma (default init_stdev 0.01), optional elitism (Such et al. 2017) and "
                    "uniform crossover (evosax); pop_size default 64",
             .best_doc = "best-ever member",
             .options = ga_options,
             .n_options = (int)(sizeof ga_options / sizeof *ga_options)},
    .default_pop = ga_default_pop,
    .default_stdev = 0.01, /* EvoJAX SimpleGA sigma */
    .init = ga_init,
    .ask = ga_ask,
    .tell = ga_tell,
    .best = ga_best,
    .state = ga_state_list,
    .sigma = ga_sigma,
    .destroy = ga_destroy,
};
