/* Internal: rank-one updates of a Cholesky factor (Krause, Arbones & Igel 2016, Algorithm 1), fused over columns;
   the covariance update of Cholesky-CMA-ES (cmaes.c). */
#ifndef EVOC_ES_CHOL_UPDATE_H
#define EVOC_ES_CHOL_UPDATE_H
#include <stdint.h>

/* A (n x n column-major lower) <- the Cholesky factor of scale^2 A A^T + sum_u beta_u v_u v_u^T, the v_u being the
   columns of V (overwritten). Krause et al.'s Algorithm 1 for u = 0, 1, ... in turn: update u at column j reads only
   column j (as left by updates < u) and its own alpha and b, and its coefficients depend on the diagonal entry only,
   so all U updates run on column j before column j + 1, a piece of the column at a time kept in registers while the
   U updates pass over it: per entry the same operations in the same order as U passes. A negative beta_u is a
   downdate; beta may be changed (see the downdate guard). b and coef: scratch of U and 3 U doubles. rn2 (may be
   NULL): the squared row norms of the new A (the diagonal of the new C), n values, accumulated on the way. */
void evo_chol_update(double *A, int64_t n, double scale, double *beta, double *V, int U, double *b, double *coef,
                     double *rn2);

#endif
