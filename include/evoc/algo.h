/* Evolution strategies driven by ask/tell (DESIGN.md §5).
 *
 * Fitness is maximised; `maximize = false` flips it in one place (evo_algo_tell). NaN fitness is ranked worst,
 * counted and reported in evo_algo_stats. Member i of generation t is a pure function of (key, t, i), so rank r of R
 * can ask only its slice [r*P/R, (r+1)*P/R) and every rank keeps identical state after tell(all P fitnesses).
 *
 * Options: each algorithm has a table of named options with defaults, bounds and sources (evo_algo_info);
 * unknown names and out-of-range values are rejected with a message naming the option.
 */
#ifndef EVOC_ALGO_H
#define EVOC_ALGO_H
#include <stdbool.h>
#include <stdint.h>
#include "evoc/rng.h"
#include "evoc/status.h"
#include "evoc/tensor.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  const char *key;
  double value;
} evo_option;

typedef struct {
  const char *key;
  double def;     /* default */
  double lo, hi;  /* inclusive bounds */
  const char *doc; /* one line, with the source of the default */
  /* NULL, or the names of the values lo, lo + 1, ..., hi (NULL-terminated; an enumeration or a switch): a config may
     give the name (`optimizer: adam`) instead of the number. */
  const char *const *choices;
} evo_option_spec;

/* choices of an on/off option: false = 0, true = 1 */
extern const char *const evo_option_bool[];

typedef struct {
  const char *name; /* "pgpe", "openes", "cmaes", "sep_cmaes", "ars", "snes", "xnes", "crfmnes", "lmmaes",
                       "simple_ga", "map_elites" */
  const char *doc;
  const char *best_doc; /* what evo_algo_best returns: "mean" or "best-ever member" */
  const evo_option_spec *options;
  int n_options;
} evo_algo_info;

int evo_algo_count(void);
const evo_algo_info *evo_algo_info_at(int i);
const evo_algo_info *evo_algo_find(const char *name); /* NULL if unknown */

typedef struct {
  const char *name;
  int64_t num_params;
  int pop_size;            /* 0: the algorithm's default (e.g. CMA-ES 4 + floor(3 ln n)) */
  double init_stdev;       /* 0: the algorithm's default */
  const float *init_mean;  /* num_params values; NULL: zeros */
  evo_key key;
  bool maximize;           /* default true */
  const evo_option *options; /* algorithm-specific; NULL/0 for all defaults */
  int n_options;
} evo_algo_params;

evo_algo_params evo_algo_default_params(void);

typedef struct evo_algo evo_algo;

evo_status evo_algo_new(const evo_algo_params *params, evo_algo **out);
void evo_algo_free(evo_algo *a);

const char *evo_algo_name(const evo_algo *a);
int evo_algo_pop_size(const evo_algo *a); /* of the current generation (restarts may change it) */
int64_t evo_algo_num_params(const evo_algo *a);
int64_t evo_algo_generation(const evo_algo *a);
/* Resolved value of an option (default or given). */
double evo_algo_option(const evo_algo *a, const char *key);

/* Writes members [begin, end) of the current generation, row-major, into pop: f32 [end-begin, num_params] on any
   backend. Asking twice in one generation gives the same members. On a CUDA backend the strategies for which
   evo_algo_samples_on_device is true (PGPE, OpenES, ARS, SNES, CEM) generate the members there, and from then on run
   tell's noise sums there too, bit-identical to the host (only O(num_params) values cross the bus per
   generation); the others sample on the host and copy. The tensor's backend must outlive the algorithm. A host
   ask keeps the noise it draws for tell (PGPE, OpenES, ARS, SNES, CEM, SimpleGA, LM-MA-ES, CR-FM-NES): host
   memory up to the population's own size (at most 1 GiB per algorithm), which halves the work of a generation,
   with the same bits. */
evo_status evo_algo_ask(evo_algo *a, int begin, int end, evo_tensor *pop);
bool evo_algo_samples_on_device(const evo_algo *a);
/* Fitness of all pop_size members of the current generation; advances the generation. */
evo_status evo_algo_tell(evo_algo *a, const float *fitness);
/* Quality diversity (MAP-Elites): tell with behaviour descriptors bd, f32 [pop_size, bd_dim] row-major, bd_dim ==
   evo_algo_bd_dim(a). An algorithm that takes descriptors rejects evo_algo_tell (INVALID_ARGUMENT); one that takes
   none ignores them here. A member whose fitness or descriptor is NaN is not archived. */
evo_status evo_algo_tell_bd(evo_algo *a, const float *fitness, const float *bd, int bd_dim);
/* Descriptor dimension the algorithm needs per member; 0 when it takes none. */
int evo_algo_bd_dim(const evo_algo *a);

typedef struct {
  int64_t cells;   /* grid cells (all of them, filled or not) */
  int64_t filled;  /* cells holding an elite */
  double coverage; /* filled / cells */
  double qd_score; /* sum over elites of (fitness - qd_offset), fitness in the maximised sense (Pugh, Soros &
                      Stanley 2016; pyribs' qd_score_offset); grows monotonically when qd_offset <= every fitness */
  size_t bytes;    /* host memory of the archive: proportional to filled, not to cells */
} evo_algo_archive;

/* Archive summary; UNSUPPORTED for algorithms without an archive. */
evo_status evo_algo_archive_get(const evo_algo *a, evo_algo_archive *out);
/* Elite k in [0, filled) (in order of first filling): its cell index (row-major over the grid), fitness in the
   caller's sense, descriptor (bd_dim values) and parameters (num_params values); NULL outputs are skipped. */
evo_status evo_algo_archive_elite(const evo_algo *a, int64_t k, int64_t *cell, float *fitness, float *bd,
                                  float *params);

/* The algorithm's recommendation (documented per algorithm in evo_algo_info.best_doc). */
evo_status evo_algo_best(const evo_algo *a, float *params);

typedef struct {
  int64_t generation;
  int64_t evaluations;
  int64_t nan_count;       /* NaN fitnesses seen so far */
  double best_fitness;     /* best ever (in the caller's sense: raw value, maximize honoured) */
  double sigma;            /* overall step size where the algorithm has one, else NAN */
  int restarts;
  bool stop;               /* the algorithm's own stop criterion fired (and no restart is left) */
} evo_algo_stats;

evo_status evo_algo_stats_get(const evo_algo *a, evo_algo_stats *s);

/* Full state (mean, step sizes, covariance/factors, paths, optimizer moments, counters, restart state) as
   safetensors, written atomically; load into an algorithm created with the same params continues bit-identically. */
evo_status evo_algo_save(const evo_algo *a, const char *path);
evo_status evo_algo_load(evo_algo *a, const char *path);

#ifdef __cplusplus
}
#endif
#endif
