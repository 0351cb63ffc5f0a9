/* Matrix exponentials: the general one for xNES's low-rank form of B <- B expm(eta_B / 2 G_B) (Glasmachers et al.
   2010; xnes.c), the symmetric one as the tests' reference for it.

   Symmetric G: G = Q diag(l) Q^T (LAPACK dsyevd), expm(t G) = Q diag(exp(t l)) Q^T, exact up to rounding.
   General A: Higham 2005 ("The scaling and squaring method for the matrix exponential revisited", Algorithm 2.3)
   with the [13/13] Padé approximant r13 only: s = max(0, ceil(log2(||A||_1 / theta_13))), X = r13(A / 2^s)^(2^s),
   r13 = (V - U)^-1 (V + U) with U odd and V even in A (eq. 2.3 and 10.4). Backward error below the unit roundoff
   for ||A / 2^s||_1 <= theta_13 = 5.371920351148152 (Table 2.3). */
#include <cblas.h>
#include <lapacke.h>
#include <stdlib.h>
#include <string.h>
#include "nes.h"

evo_status evo_expm_sym(int64_t n, const double *G, double t, double *E) {
  if (n < 1 || n > 46340) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "expm: n = %lld out of range", (long long)n);
  const size_t nn = (size_t)(n * n);
  double *Q = malloc(sizeof(double) * nn), *QL = malloc(sizeof(double) * nn), *l = malloc(sizeof(double) * n);
  evo_status st = EVO_STATUS_OK;
  if (!Q || !QL || !l) {
    st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "expm: out of memory for n = %lld", (long long)n);
    goto done;
  }
  memcpy(Q, G, sizeof(double) * nn);
  lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', (lapack_int)n, Q, (lapack_int)n, l);
  if (info != 0) {
    st = evo_error(EVO_STATUS_INTERNAL, "expm: dsyevd failed (info %d) at n = %lld", (int)info, (long long)n);
    goto done;
  }
  for (int64_t j = 0; j < n; j++) {
    const double e = exp(t * l[j]);
    for (int64_t i = 0; i < n; i++) QL[j * n + i] = Q[j * n + i] * e;
  }
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0, QL, (int)n, Q, (int)n, 0.0, E,
              (int)n);
  for (int64_t j = 0; j < n; j++) /* symmetric by construction: make it so bit for bit */
    for (int64_t i = j + 1; i < n; i++) E[i * n + j] = E[j * n + i];
done:
  free(Q), free(QL), free(l);
  return st;
}

/* C = A B (n x n). */
static void mm(int n, const double *A, const double *B, double *C) {
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, A, n, B, n, 0.0, C, n);
}

evo_status evo_expm(int64_t n64, const double *A, double *E) {
  if (n64 < 1 || n64 > 46340)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "expm: n = %lld out of range", (long long)n64);
  /* Padé [13/13] coefficients b_0 .. b_13 (Higham 2005, eq. 10.4 / Table 10.4 of Higham's "Functions of
     Matrices"). */
  static const double b[14] = {64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
                               129060195264000.0,   10559470521600.0,    670442572800.0,     33522128640.0,
                               1323241920.0,        40840800.0,          960960.0,           16380.0,
                               182.0,               1.0};
  const double theta13 = 5.371920351148152;
  const int n = (int)n64;
  const size_t nn = (size_t)n * (size_t)n;
  double *buf = malloc(sizeof(double) * nn * 7);
  lapack_int *ipiv = malloc(sizeof(lapack_int) * (size_t)n);
  if (!buf || !ipiv) {
    free(buf), free(ipiv);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "expm: out of memory for n = %d", n);
  }
  double *X = buf, *A2 = X + nn, *A4 = A2 + nn, *A6 = A4 + nn, *U = A6 + nn, *V = U + nn, *T = V + nn;
  double norm1 = 0; /* max column sum */
  for (int j = 0; j < n; j++) {
    double c = 0;
    for (int i = 0; i < n; i++) c += fabs(A[(size_t)j * n + i]);
    norm1 = fmax(norm1, c);
  }
  int s = norm1 > theta13 ? (int)ceil(log2(norm1 / theta13)) : 0;
  const double scale = ldexp(1.0, -s);
  for (size_t k = 0; k < nn; k++) X[k] = A[k] * scale;
  mm(n, X, X, A2);
  mm(n, A2, A2, A4);
  mm(n, A4, A2, A6);
  /* U = X [A6 (b13 A6 + b11 A4 + b9 A2) + b7 A6 + b5 A4 + b3 A2 + b1 I],
     V = A6 (b12 A6 + b10 A4 + b8 A2) + b6 A6 + b4 A4 + b2 A2 + b0 I. */
  for (size_t k = 0; k < nn; k++) T[k] = b[13] * A6[k] + b[11] * A4[k] + b[9] * A2[k];
  mm(n, A6, T, U);
  for (size_t k = 0; k < nn; k++) U[k] += b[7] * A6[k] + b[5] * A4[k] + b[3] * A2[k];
  for (int i = 0; i < n; i++) U[(size_t)i * n + i] += b[1];
  memcpy(T, U, sizeof(double) * nn);
  mm(n, X, T, U);
  for (size_t k = 0; k < nn; k++) T[k] = b[12] * A6[k] + b[10] * A4[k] + b[8] * A2[k];
  mm(n, A6, T, V);
  for (size_t k = 0; k < nn; k++) V[k] += b[6] * A6[k] + b[4] * A4[k] + b[2] * A2[k];
  for (int i = 0; i < n; i++) V[(size_t)i * n + i] += b[0];
  /* (V - U) R = V + U */
  for (size_t k = 0; k < nn; k++) {
    const double u = U[k], v = V[k];
    T[k] = v - u;
    E[k] = v + u;
  }
  lapack_int info = LAPACKE_dgesv(LAPACK_COL_MAJOR, n, n, T, n, ipiv, E, n);
  evo_status st = EVO_STATUS_OK;
  if (info != 0) {
    st = evo_error(EVO_STATUS_INTERNAL, "expm: dgesv failed (info %d) at n = %d", (int)info, n);
  } else {
    for (int k = 0; k < s; k++) { /* undo the scaling: square s times */
      mm(n, E, E, T);
      memcpy(E, T, sizeof(double) * nn);
    }
  }
  free(buf), free(ipiv);
  return st;
}
