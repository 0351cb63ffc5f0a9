/* Benchmark functions for black-box optimisation (minimised): any dimension, optional random rotation and shift.
   Served to the run system as the `functions` task (issue: tasks); used directly by the algorithm tests. */
#ifndef EVOC_FUNCTIONS_H
#define EVOC_FUNCTIONS_H
#include <stdint.h>
#include "evoc/rng.h"
#include "evoc/status.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  EVO_FN_SPHERE = 0,     /* sum x^2 */
  EVO_FN_ELLIPSOID,      /* sum 10^(6 (i-1)/(n-1)) x_i^2 (condition 1e6) */
  EVO_FN_ROSENBROCK,     /* sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2; minimum 0 at 1 */
  EVO_FN_RASTRIGIN,      /* 10 n + sum x^2 - 10 cos(2 pi x) */
  EVO_FN_ACKLEY,
  EVO_FN_GRIEWANK,
  EVO_FN_STYBLINSKI_TANG, /* sum (x^4 - 16 x^2 + 5 x) / 2, shifted by +39.16616570377142 n so the minimum is 0 */
  EVO_FN_COUNT
} evo_fn_kind;

const char *evo_fn_name(evo_fn_kind k);
int evo_fn_from_name(const char *name); /* -1 if unknown */

typedef struct evo_fn evo_fn;

/* rotate: apply a random orthogonal matrix (from key); shift: random optimum offset in [-shift, shift]^n. */
evo_status evo_fn_new(evo_fn_kind kind, int64_t dim, int rotate, double shift, evo_key key, evo_fn **out);
void evo_fn_free(evo_fn *f);
int64_t evo_fn_dim(const evo_fn *f);
/* Where the minimum 0 is (dim doubles): the textbook minimiser plus the shift (rotation keeps it in place). */
void evo_fn_optimum(const evo_fn *f, double *x);
/* Value at x (n doubles or floats). */
double evo_fn_eval(const evo_fn *f, const double *x);
double evo_fn_eval_f32(const evo_fn *f, const float *x);
/* Batched: fitness[i] = f(pop[i, :]) for a row-major [n_rows, dim] population (OpenMP over rows). */
void evo_fn_eval_batch(const evo_fn *f, const float *pop, int n_rows, double *out);

#ifdef __cplusplus
}
#endif
#endif
