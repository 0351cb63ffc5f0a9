/* Rank-one Cholesky updates (chol_update.h). */
#include "chol_update.h"
#include <math.h>
#include <stddef.h>

#define CH_KB 16 /* column entries per piece */
/* kb entries of a column from row k0 (x = col + k0, v = V + k0): every update in turn. Inlined with kb = CH_KB, the
   piece stays in vector registers across the updates. */
static inline __attribute__((always_inline)) void chol_piece(double *restrict x, double *restrict v, int64_t n,
                                                              int kb, double scale, const double *r, const double *f1,
                                                              const double *f2, int U) {
  double c[CH_KB];
  for (int t = 0; t < kb; t++) c[t] = x[t] * scale;
  for (int u = 0; u < U; u++) {
    double *restrict al = v + (size_t)u * (size_t)n;
    const double ru = r[u], f1u = f1[u], f2u = f2[u];
    for (int t = 0; t < kb; t++) {
      const double alk = fma(-ru, c[t], al[t]);
      al[t] = alk;
      c[t] = fma(f2u, alk, f1u * c[t]);
    }
  }
  for (int t = 0; t < kb; t++) x[t] = c[t];
}

void evo_chol_update(double *restrict A, int64_t n, double scale, double *beta, double *restrict V, int U, double *b,
                     double *coef, double *restrict rn2) {
  double *r = coef, *f1 = coef + U, *f2 = coef + 2 * U;
  for (int u = 0; u < U; u++) b[u] = 1;
  for (int64_t k = 0; rn2 && k < n; k++) rn2[k] = 0;
  for (int64_t j = 0; j < n; j++) {
    double *restrict col = A + (size_t)j * (size_t)n;
    double ajj = col[j] * scale;
    for (int u = 0; u < U; u++) { /* the diagonal's path through the updates gives every coefficient */
      const double aj = V[(size_t)u * (size_t)n + (size_t)j];
      /* A downdate (beta < 0) that rounding would take past positive definiteness stops there: beta_u = 0 from this
         column on leaves the rest of A as it is (the active weights' bound keeps C positive definite exactly). */
      if (beta[u] < 0 && !(ajj * ajj + beta[u] / b[u] * aj * aj > 1e-12 * ajj * ajj)) beta[u] = 0;
      const double bu = beta[u];
      const double njj = sqrt(ajj * ajj + bu / b[u] * aj * aj), gamma = ajj * ajj * b[u] + bu * aj * aj;
      r[u] = aj / ajj, f1[u] = njj / ajj, f2[u] = njj * bu * aj / gamma;
      b[u] += bu * aj * aj / (ajj * ajj);
      ajj = njj;
    }
    col[j] = ajj;
    if (rn2) rn2[j] += ajj * ajj;
    int64_t k0 = j + 1;
    for (; k0 + CH_KB <= n; k0 += CH_KB) chol_piece(col + k0, V + k0, n, CH_KB, scale, r, f1, f2, U);
    if (k0 < n) chol_piece(col + k0, V + k0, n, (int)(n - k0), scale, r, f1, f2, U);
    if (rn2)
      for (int64_t k = j + 1; k < n; k++) rn2[k] += col[k] * col[k]; /* the column is still in L1 */
  }
}
