/* Shared weight decay (DESIGN.md §5: one copy, not one per strategy). Two forms, one option ("weight_decay", declared
   with EVO_WEIGHT_DECAY_OPTION):
   - fitness form, for selection-based strategies (SimpleGA, MAP-Elites) that have no gradient: f -= c mean(x^2),
     estool es.py compute_weight_decay, which its OpenES, PEPG and SimpleGA add to the rewards before ranking;
   - gradient form, for strategies that step a mean along a gradient estimate (PGPE, OpenES, ARS): grad += c theta
     on the loss gradient, as the OpenAI evolution-strategies-starter's optimizer.update(-g + l2coeff * theta); on
     a flat fitness the mean then follows the strategy's optimizer on the loss c ||theta||^2 / 2.
   Sums run in double, in index order, so the result does not depend on the thread count. */
#include <string.h>
#include "algo_impl.h"

double evo_algo_weight_decay_coef(const evo_algo *a) {
  for (int i = 0; i < a->vt->info.n_options; i++)
    if (strcmp(a->vt->info.options[i].key, "weight_decay") == 0) return a->opt[i];
  return 0;
}

double evo_algo_weight_decay(const evo_algo *a, const float *params, int64_t n) {
  const double c = evo_algo_weight_decay_coef(a);
  if (c == 0 || n < 1) return 0;
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)params[i] * params[i];
  return c * s / (double)n;
}

void evo_algo_weight_decay_grad(const evo_algo *a, const float *theta, int64_t n, float *grad) {
  const double c = evo_algo_weight_decay_coef(a);
  if (c == 0) return;
  for (int64_t i = 0; i < n; i++) grad[i] = (float)(grad[i] + c * theta[i]);
}

void evo_algo_weight_decay_grad64(const evo_algo *a, const float *theta, int64_t n, double *grad) {
  const double c = evo_algo_weight_decay_coef(a);
  if (c == 0) return;
  for (int64_t i = 0; i < n; i++) grad[i] += c * theta[i];
}
