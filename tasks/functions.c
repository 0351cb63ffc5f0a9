/* Benchmark functions (minimised, minimum 0): the usual definitions (Hansen et al., COCO/BBOB and pycma's
   cma.ff for sphere, ellipsoid, Rosenbrock, Rastrigin; Ackley 1987 with a = 20, b = 0.2, c = 2 pi; Griewank 1981;
   Styblinski & Tang 1990), any dimension.

   Transformation: with x* the base function's minimiser (0; 1 for Rosenbrock; -2.9035... for Styblinski-Tang),
   s the shift and R the rotation,
       f(x) = base(x* + R (x - x* - s)),
   so the minimum 0 sits at x* + s whatever R is, and without rotation or shift f is the textbook function.
   s is uniform in [-shift, shift]^n; R is Gram-Schmidt (QR with a positive diagonal) of an n x n matrix of
   standard normals, which makes R Haar-distributed (Mezzadri 2007, "How to generate random matrices from the
   classical compact groups"). Both come from the key alone (Philox), so every rank and every run with the same
   key sees the same function. R costs n^2 doubles and O(n^3) to build once; each evaluation then costs O(n^2). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/functions.h"

#define EVO_FN_PI 3.14159265358979323846
#define EVO_FN_E 2.71828182845904523536
/* Styblinski-Tang: the minimiser is the smallest root of 4x^3 - 32x + 5 and the minimum per coordinate is
   -39.16616570377142 (Styblinski & Tang 1990; the value in include/evoc/functions.h). */
#define EVO_FN_ST_XMIN (-2.903534027771178)
#define EVO_FN_ST_FMIN 39.16616570377142
#define EVO_FN_KEY_ROT 0x726f7461u   /* 'rota' */
#define EVO_FN_KEY_SHIFT 0x73686674u /* 'shft' */
#define EVO_FN_STACK 64              /* dimensions evaluated without a heap scratch buffer */
#define EVO_FN_OMP_MIN 65536         /* rows * dim below which one thread is faster */

struct evo_fn {
  evo_fn_kind kind;
  int64_t n;
  double xmin;    /* base minimiser, the same in every coordinate */
  double *offset; /* x* + s: where the minimum is (n) */
  double *rot;    /* n x n row-major, or NULL */
  double *scale;  /* ellipsoid coefficients (n), or NULL */
};

static const char *const fn_names[EVO_FN_COUNT] = {"sphere",    "ellipsoid", "rosenbrock",     "rastrigin",
                                                   "ackley",    "griewank",  "styblinski_tang"};

const char *evo_fn_name(evo_fn_kind k) { return (int)k >= 0 && k < EVO_FN_COUNT ? fn_names[k] : "?"; }

int evo_fn_from_name(const char *name) {
  for (int k = 0; name && k < EVO_FN_COUNT; k++)
    if (strcmp(fn_names[k], name) == 0) return k;
  return -1;
}

/* Rows of a normal matrix orthonormalised by modified Gram-Schmidt. A Gaussian matrix has condition number
   O(n), so one MGS pass loses only O(n eps) of orthogonality; a second pass over each row ("twice is enough",
   Giraud et al. 2005) brings it to machine precision for any n we can afford to store. */
static evo_status make_rotation(double *q, int64_t n, evo_key key) {
  float *row = malloc(sizeof(float) * (size_t)n);
  if (!row) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "functions: out of memory for a %lld-d rotation", (long long)n);
  for (int64_t k = 0; k < n; k++) {
    evo_rng_fill_normal(evo_key_fold_in(key, (uint32_t)k), row, n);
    double *qk = q + k * n;
    for (int64_t i = 0; i < n; i++) qk[i] = row[i];
    for (int pass = 0; pass < 2; pass++)
      for (int64_t j = 0; j < k; j++) {
        const double *qj = q + j * n;
        double d = 0;
        for (int64_t i = 0; i < n; i++) d += qk[i] * qj[i];
        for (int64_t i = 0; i < n; i++) qk[i] -= d * qj[i];
      }
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += qk[i] * qk[i];
    s = sqrt(s);
    for (int64_t i = 0; i < n; i++) qk[i] /= s;
  }
  free(row);
  return EVO_STATUS_OK;
}

void evo_fn_free(evo_fn *f) {
  if (!f) return;
  free(f->offset);
  free(f->rot);
  free(f->scale);
  free(f);
}

evo_status evo_fn_new(evo_fn_kind kind, int64_t dim, int rotate, double shift, evo_key key, evo_fn **out) {
  *out = NULL;
  if ((int)kind < 0 || kind >= EVO_FN_COUNT)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "functions: unknown function %d", (int)kind);
  if (dim < 1 || (kind == EVO_FN_ROSENBROCK && dim < 2))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "functions: %s needs dim >= %d, got %lld", fn_names[kind],
                     kind == EVO_FN_ROSENBROCK ? 2 : 1, (long long)dim);
  if (!(shift >= 0 && isfinite(shift)))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "functions: shift must be finite and >= 0, got %g", shift);
  evo_fn *f = calloc(1, sizeof *f);
  if (!f) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "functions: out of memory");
  f->kind = kind;
  f->n = dim;
  f->xmin = kind == EVO_FN_ROSENBROCK ? 1.0 : kind == EVO_FN_STYBLINSKI_TANG ? EVO_FN_ST_XMIN : 0.0;
  f->offset = malloc(sizeof(double) * (size_t)dim);
  if (kind == EVO_FN_ELLIPSOID) f->scale = malloc(sizeof(double) * (size_t)dim);
  if (rotate) f->rot = malloc(sizeof(double) * (size_t)dim * (size_t)dim);
  float *s = shift > 0 ? malloc(sizeof(float) * (size_t)dim) : NULL;
  if (!f->offset || (kind == EVO_FN_ELLIPSOID && !f->scale) || (rotate && !f->rot) || (shift > 0 && !s)) {
    free(s);
    evo_fn_free(f);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "functions: out of memory for dim %lld%s", (long long)dim,
                     rotate ? " with rotation (dim^2 doubles)" : "");
  }
  if (s) evo_rng_fill_uniform(evo_key_fold_in(key, EVO_FN_KEY_SHIFT), s, dim, (float)-shift, (float)shift);
  for (int64_t i = 0; i < dim; i++) f->offset[i] = f->xmin + (s ? s[i] : 0.0);
  free(s);
  /* Condition 1e6: coefficient 10^(6 (i - 1) / (n - 1)), i = 1..n (pycma cma.ff.elli). */
  for (int64_t i = 0; f->scale && i < dim; i++) f->scale[i] = dim > 1 ? pow(10.0, 6.0 * (double)i / (dim - 1)) : 1.0;
  evo_status st = rotate ? make_rotation(f->rot, dim, evo_key_fold_in(key, EVO_FN_KEY_ROT)) : EVO_STATUS_OK;
  if (st != EVO_STATUS_OK) {
    evo_fn_free(f);
    return st;
  }
  *out = f;
  return EVO_STATUS_OK;
}

int64_t evo_fn_dim(const evo_fn *f) { return f->n; }

void evo_fn_optimum(const evo_fn *f, double *x) { memcpy(x, f->offset, sizeof(double) * (size_t)f->n); }

/* The textbook function at z. */
static double base(const evo_fn *f, const double *z) {
  const int64_t n = f->n;
  double s = 0;
  switch (f->kind) {
  case EVO_FN_SPHERE:
    for (int64_t i = 0; i < n; i++) s += z[i] * z[i];
    return s;
  case EVO_FN_ELLIPSOID:
    for (int64_t i = 0; i < n; i++) s += f->scale[i] * z[i] * z[i];
    return s;
  case EVO_FN_ROSENBROCK:
    for (int64_t i = 0; i + 1 < n; i++) {
      double a = z[i + 1] - z[i] * z[i], b = 1 - z[i];
      s += 100 * a * a + b * b;
    }
    return s;
  case EVO_FN_RASTRIGIN:
    for (int64_t i = 0; i < n; i++) s += z[i] * z[i] - 10 * cos(2 * EVO_FN_PI * z[i]);
    return 10.0 * n + s;
  case EVO_FN_ACKLEY: {
    double c = 0;
    for (int64_t i = 0; i < n; i++) s += z[i] * z[i], c += cos(2 * EVO_FN_PI * z[i]);
    /* The two terms cancel to 0 at z = 0; the max keeps rounding from reporting a tiny negative value. */
    return fmax(0.0, 20 + EVO_FN_E - 20 * exp(-0.2 * sqrt(s / n)) - exp(c / n));
  }
  case EVO_FN_GRIEWANK: {
    double p = 1;
    for (int64_t i = 0; i < n; i++) s += z[i] * z[i], p *= cos(z[i] / sqrt((double)(i + 1)));
    return 1 + s / 4000 - p;
  }
  case EVO_FN_STYBLINSKI_TANG:
    for (int64_t i = 0; i < n; i++) {
      double z2 = z[i] * z[i];
      s += 0.5 * (z2 * z2 - 16 * z2 + 5 * z[i]) + EVO_FN_ST_FMIN;
    }
    return s;
  default: return NAN;
  }
}

/* d = x - offset (n), z (n) scratch; returns f at x. */
static double eval_shifted(const evo_fn *f, const double *d, double *z) {
  const int64_t n = f->n;
  if (!f->rot) {
    for (int64_t i = 0; i < n; i++) z[i] = f->xmin + d[i];
  } else {
    for (int64_t r = 0; r < n; r++) {
      const double *q = f->rot + r * n;
      double s = 0;
      for (int64_t i = 0; i < n; i++) s += q[i] * d[i];
      z[r] = f->xmin + s;
    }
  }
  return base(f, z);
}

/* x as doubles (xd) or floats (xf); d, z: n doubles of scratch each. */
static double eval_any(const evo_fn *f, const double *xd, const float *xf, double *d, double *z) {
  for (int64_t i = 0; i < f->n; i++) d[i] = (xd ? xd[i] : (double)xf[i]) - f->offset[i];
  return eval_shifted(f, d, z);
}

static double eval_alloc(const evo_fn *f, const double *xd, const float *xf) {
  if (f->n <= EVO_FN_STACK) {
    double d[EVO_FN_STACK], z[EVO_FN_STACK];
    return eval_any(f, xd, xf, d, z);
  }
  double *d = malloc(sizeof(double) * 2 * (size_t)f->n);
  if (!d) return NAN; /* out of memory: NaN fitness is ranked worst and counted by the algorithms */
  double v = eval_any(f, xd, xf, d, d + f->n);
  free(d);
  return v;
}

double evo_fn_eval(const evo_fn *f, const double *x) { return eval_alloc(f, x, NULL); }
double evo_fn_eval_f32(const evo_fn *f, const float *x) { return eval_alloc(f, NULL, x); }

void evo_fn_eval_batch(const evo_fn *f, const float *pop, int n_rows, double *out) {
  const int64_t n = f->n;
#pragma omp parallel if ((int64_t)n_rows * n * (f->rot ? n : 1) >= EVO_FN_OMP_MIN)
  {
    double *scratch = malloc(sizeof(double) * 2 * (size_t)n);
#pragma omp for schedule(static)
    for (int r = 0; r < n_rows; r++)
      out[r] = scratch ? eval_any(f, NULL, pop + (int64_t)r * n, scratch, scratch + n) : NAN;
    free(scratch);
  }
}
