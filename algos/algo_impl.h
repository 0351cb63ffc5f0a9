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
  /* fitness: a->pop values, larger is better, finite or -INFINITY (NaN became -INFINITY). */
  evo_status (*tell)(evo_algo *a, const float *fitness);
  evo_status (*best)(const evo_algo *a, float *params);
  /* Registers every state array (algorithm scalars go in f64 arrays too). */
  void (*state)(evo_algo *a, evo_state_list *l);
  double (*sigma)(const evo_algo *a); /* NULL: NAN */
  void (*destroy)(evo_algo *a);
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
  void *state;         /* the strategy's own */
};

/* Key of member i in generation g: fold_in(fold_in(key, g), i) — regenerable on any rank. */
evo_key evo_algo_member_key(const evo_algo *a, int64_t gen, int64_t i);
/* Resolved option by name (asserts the strategy declared it). */
double evo_algo_opt(const evo_algo *a, const char *key);
/* Grows fit_buf when a restart enlarges the population. */
evo_status evo_algo_set_pop(evo_algo *a, int pop);

/* Shared fitness shaping (algos/shaping.c); `f` larger is better, -INFINITY allowed. All write n values. */
/* Centered ranks in [-0.5, 0.5]: worst -> -0.5, best -> 0.5 (OpenAI-ES, EvoJAX); ties broken by index. */
void evo_shape_centered_ranks(const float *f, int n, double *out);
/* z-score; constant fitness gives zeros. */
void evo_shape_zscore(const float *f, int n, double *out);
/* NES utilities: u_k = max(0, ln(n/2 + 1) - ln k) / sum_j max(0, ...) - 1/n, k = rank (1 = best). */
void evo_shape_nes_utilities(const float *f, int n, double *out);
/* order[0..n): indices sorted best first (stable: ties by index). */
void evo_shape_argsort_desc(const float *f, int n, int *order);

/* Registry of built-in strategies (algos/registry.c). */
extern const evo_algo_vtable evo_es_pgpe, evo_es_openes, evo_es_cmaes, evo_es_sep_cmaes, evo_es_ars, evo_es_snes,
    evo_es_xnes, evo_es_crfmnes, evo_es_lmmaes, evo_es_simple_ga, evo_es_map_elites;

#endif
