/* The built-in strategies: one line per strategy in the table below (a strong reference, so the strategy's object
   file is linked out of the static libevoc). */
#include <string.h>
#include "algo_impl.h"

static const evo_algo_vtable *const *table(int *n) {
  static const evo_algo_vtable *const all[] = {
      &evo_es_pgpe,
      &evo_es_openes,
      &evo_es_ars,
      &evo_es_cmaes,
      &evo_es_sep_cmaes,
      &evo_es_cholesky_cmaes,
      &evo_es_snes,
      &evo_es_cem,
      &evo_es_xnes,
      &evo_es_crfmnes,
      &evo_es_lmmaes,
      &evo_es_simple_ga,
      &evo_es_map_elites,
  };
  *n = (int)(sizeof all / sizeof *all);
  return all;
}

static const evo_algo_vtable *nth(int i) {
  int n, k = 0;
  const evo_algo_vtable *const *all = table(&n);
  for (int j = 0; j < n; j++)
    if (all[j] && k++ == i) return all[j];
  return NULL;
}

int evo_algo_count(void) {
  int n, k = 0;
  const evo_algo_vtable *const *all = table(&n);
  for (int j = 0; j < n; j++) k += all[j] != NULL;
  return k;
}

const evo_algo_info *evo_algo_info_at(int i) {
  const evo_algo_vtable *v = nth(i);
  return v ? &v->info : NULL;
}

const evo_algo_vtable *evo_algo_vtable_find(const char *name) {
  for (int i = 0; i < evo_algo_count(); i++)
    if (strcmp(nth(i)->info.name, name) == 0) return nth(i);
  return NULL;
}

const evo_algo_info *evo_algo_find(const char *name) {
  const evo_algo_vtable *v = name ? evo_algo_vtable_find(name) : NULL;
  return v ? &v->info : NULL;
}
