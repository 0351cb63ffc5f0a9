/* Internal: what one evolution strategy implements (one file per strategy in algos/es/). evo_algo_tell does the
   shared work first (maximize flip, NaN -> worst, counters), so strategies see fitness where larger is better and
   no NaN. */
#ifndef EVOC_ALGO_IMPL_H
#define EVOC_ALGO_IMPL_H
#include <math.h>
#include "evoc/algo.h"

#define EVO_ALGO_MAX_OPTIONS 32
#define EVO_ALGO_MAX_STATE 32

/* A named state array registered by a strategy; save/load use the same list, so resume is bit-identical. */
typedef struct {
  const char *name;
  evo_dtype dtype; /* EVO_F64, EVO_F32, EVO_I64, EVO_U32 */
  void *data;
  int64_t n;
} evo_state_entry;

typedef struct {
  evo_state_entry e[EVO_ALGO_MAX_STATE];
  int n;
} evo_state_list;

void evo_state_add(evo_state_list *l, const char *name, evo_dtype dtype, void *data, int64_t n);

typedef struct evo_algo_vtable {
  evo_algo_info info;
  int (*default_pop)(int64_t n);
  double default_stdev;
  evo_status (*init)(evo_algo *a); /* allocate a->state from a->n, a->pop, a->opt, a->init_mean */
  /* Rows [begin, end) of generation a->gen into pop (row-major, a->n columns). */
  evo_status (*ask)(evo_algo *a, int begin, int end, float *pop);
  /* Optional: the same rows into a tensor on a device backend, sampled there. NULL: ask on the host and copy. */
  evo_status (*ask_device)(evo_algo *a, int begin, int end, evo_tensor *pop);
  /* fitness: a->pop values, larger is better, finite or -INFINITY (NaN became -INFINITY). */
  evo_status (*tell)(evo_algo *a, const float *fitness);
  evo_status (*best)(const evo_algo *a, float *params);
  /* Registers every state array (algorithm scalars go in f64 arrays too). */
  void (*state)(evo_algo *a, evo_state_list *l);
  double (*sigma)(const evo_algo *a); /* NULL: NAN */
  void (*destroy)(evo_algo *a);
  /* Optional, for quality diversity (NULL elsewhere). A strategy with tell_bd and no tell needs descriptors. */
  int (*bd_dim)(const evo_algo *a);
  evo_status (*tell_bd)(evo_algo *a, const float *fitness, const float *bd); /* bd: [a->pop, bd_dim] */
  evo_status (*archive)(const evo_algo *a, evo_algo_archive *out);
  evo_status (*elite)(const evo_algo *a, int64_t k, int64_t *cell, float *fitness, float *bd, float *params);
  /* Optional: load found n values in the file's entry `name`, which is registered with another size (state that
     grows, like an archive). Resize so that it holds n; load then registers the list again. */
  evo_status (*state_resize)(evo_algo *a, const char *name, int64_t n);
} evo_algo_vtable;

struct evo_algo {
  const evo_algo_vtable *vt;
  int64_t n;         /* num_params */
  int pop;           /* current population size (a strategy may change it on restart) */
  double init_stdev; /* resolved */
  float *init_mean;  /* n values (copied) */
  evo_key key;
  bool maximize;
  double opt[EVO_ALGO_MAX_OPTIONS]; /* resolved options, in the order of vt->info.options */
  /* counters (saved with the state) */
  int64_t gen, evals, nan_count;
  double best_fitness; /* raw, caller's sense */
  int restarts;
  bool stop;
  float *fit_buf;      /* pop-sized scratch for tell (grown on restart) */
  int fit_cap;
  float *stage;        /* host rows for a device ask of a strategy without ask_device */
  int64_t stage_cap;
  void *state;         /* the strategy's own */
  struct evo_zcache *zc; /* noise kept from ask for tell (zcache.h); NULL until a strategy uses it */
  int64_t zc_bytes;      /* the memo's budget: EVO_ZC_MAX_BYTES (tests lower it) */
};

/* Key of member i in generation g: fold_in(fold_in(key, g), i) — regenerable on any rank. */
evo_key evo_algo_member_key(const evo_algo *a, int64_t gen, int64_t i);
/* Resolved option by name (asserts the strategy declared it). */
double evo_algo_opt(const evo_algo *a, const char *key);
/* Grows fit_buf when a restart enlarges the population. */
evo_status evo_algo_set_pop(evo_algo *a, int pop);

/* The strategies' noise stream (algos/normals.c): element j of key's standard normal vector. Philox block b of key
   (core/rng_math.h, the blocks of evo_rng_fill_normal) gives elements 4b .. 4b+3: Box-Muller with both branches on
   its word pairs (w0, w1) and (w2, w3) (algos/normal_math.h). Four normals per block and vectorised math: several
   times faster than evo_rng_fill_normal's stream (two per block, libm), which it does not reproduce. Any range
   gives the same bits for the same elements. */
#define EVO_NORMAL_GROUP 64 /* elements generated together (a multiple of 4) */
void evo_algo_normals(evo_key key, int64_t i0, int64_t i1, float *out); /* elements [i0, i1) into out[0, i1-i0) */
void evo_algo_normals_f64(evo_key key, int64_t n, double *out);          /* elements [0, n) as double */

/* Shared fitness shaping (algos/shaping.c); `f` larger is better, -INFINITY allowed. All write n values. */
/* Centered ranks in [-0.5, 0.5]: worst -> -0.5, best -> 0.5 (OpenAI-ES, EvoJAX); equal values share the mean of
   their ranks (EvoJAX breaks ties by index instead), so all-equal fitness gives zeros. */
void evo_shape_centered_ranks(const float *f, int n, double *out);
/* z-scores (f - mean) / std over the finite values (population std); -inf scores as the worst finite value, +inf
   as the best; fewer than two finite values or a constant fitness give zeros. */
void evo_shape_zscore(const float *f, int n, double *out);
/* NES utilities: u_k = max(0, ln(n/2 + 1) - ln k) / sum_j max(0, ...) - 1/n, k = rank (1 = best). */
void evo_shape_nes_utilities(const float *f, int n, double *out);
/* The `fitness_shaping` option of the antithetic strategies: its value indexes evo_shape_names. */
enum { EVO_SHAPE_CENTERED_RANKS, EVO_SHAPE_ZSCORE };
extern const char *const evo_shape_names[]; /* "centered_ranks", "z_score" */
void evo_shape(int kind, const float *f, int n, double *out);
/* order[0..n): indices sorted best first (stable: ties by index). */
void evo_shape_argsort_desc(const float *f, int n, int *order);

/* Shared weight decay (algos/weight_decay.c). A strategy declares the option "weight_decay" (c >= 0, 0 = off):
   EVO_WEIGHT_DECAY_OPTION for the fitness form, or its own row, under the same key, that names the gradient form. */
#define EVO_WEIGHT_DECAY_OPTION \
  { "weight_decay", 0, 0, 1e3, \
    "L2 coefficient c: fitness -= c mean(x^2) (estool es.py compute_weight_decay); 0 = off", \
    NULL }
/* c: the resolved "weight_decay" option, 0 when the strategy has none. */
double evo_algo_weight_decay_coef(const evo_algo *a);
/* Fitness penalty c * mean(params[0..n)^2) (estool's compute_weight_decay): subtract it from a member's fitness. */
double evo_algo_weight_decay(const evo_algo *a, const float *params, int64_t n);
/* Gradient form, for strategies that step a mean along a gradient estimate: grad[i] += c * theta[i] on a loss
   gradient (descent direction), as OpenAI-ES's optimizer.update(-g + l2coeff * theta). Not the same scale as the
   fitness form: a strategy uses one form and documents which. */
void evo_algo_weight_decay_grad(const evo_algo *a, const float *theta, int64_t n, float *grad);
/* The same on a double gradient (strategies that step without an optimizer, as ARS). */
void evo_algo_weight_decay_grad64(const evo_algo *a, const float *theta, int64_t n, double *grad);

/* Registry of built-in strategies (algos/registry.c). */
extern const evo_algo_vtable evo_es_pgpe, evo_es_openes, evo_es_cmaes, evo_es_sep_cmaes, evo_es_cholesky_cmaes,
    evo_es_ars, evo_es_snes, evo_es_cem, evo_es_xnes, evo_es_crfmnes, evo_es_lmmaes, evo_es_simple_ga,
    evo_es_map_elites;

#endif
