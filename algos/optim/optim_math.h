/* Internal: the elementwise rules of optim.c for one parameter, shared by the host loops (optim.c) and the CUDA
   kernels (optim_cuda.cu, built without FMA contraction as the host is), so both give the same bits; and what a
   step run outside optim.c needs from an evo_optim (its coefficients, then counting the step). */
#ifndef EVOC_OPTIM_MATH_H
#define EVOC_OPTIM_MATH_H
#include <math.h>
#include <stdbool.h>
#include "evoc/optim.h"
#include "hd.h"

/* One step's coefficients, the same for every parameter. */
typedef struct {
  int kind;       /* evo_optim_kind, any but CLIPUP (its norms are global) */
  double lr;      /* the schedule's learning rate at this step */
  double gscale;  /* global-norm clipping factor, 1 without */
  double mu;      /* MOMENTUM, NESTEROV */
  double b1, b2;  /* ADAM(W) betas */
  double c1, c2;  /* ADAM(W) bias corrections 1 - beta^t */
  double eps, wd; /* ADAM(W) eps; ADAMW decoupled weight decay (0 for ADAM) */
} evo_optim_coef;

static inline EVO_HD float evo_optim_sgd_elem(const evo_optim_coef *c, float p, float grad) {
  return (float)(p - c->lr * c->gscale * grad);
}

/* m: the trace (optax.trace). */
static inline EVO_HD float evo_optim_momentum_elem(const evo_optim_coef *c, float p, float grad, double *m) {
  const double g = c->gscale * grad;
  *m = g + c->mu * *m;
  const double u = c->kind == EVO_OPTIM_NESTEROV ? g + c->mu * *m : *m;
  return (float)(p - c->lr * u);
}

/* m, v: the first and second moments. */
static inline EVO_HD float evo_optim_adam_elem(const evo_optim_coef *c, float p, float grad, double *m, double *v) {
  const double g = c->gscale * grad;
  *m = c->b1 * *m + (1 - c->b1) * g;
  *v = c->b2 * *v + (1 - c->b2) * g * g;
  const double u = (*m / c->c1) / (sqrt(*v / c->c2) + c->eps) + c->wd * p;
  return (float)(p - c->lr * u);
}

#ifdef __cplusplus
extern "C" {
#endif
/* The next step's coefficients (gscale 1). Returns false for CLIPUP, which has no elementwise rule. */
bool evo_optim_coef_next(const evo_optim *o, evo_optim_coef *c);
/* Counts a step that was applied elsewhere with evo_optim_coef_next's coefficients. */
void evo_optim_advance(evo_optim *o);
#ifdef __cplusplus
}
#endif

#endif
