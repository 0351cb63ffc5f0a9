/* Benchmark functions: minimum 0 at the optimum (also shifted and rotated), textbook values at chosen points,
   rotation orthogonality, shift range and determinism, batch = loop, argument checks. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "evoc/functions.h"

#define E_CONST 2.71828182845904523536

static evo_fn *make(evo_fn_kind k, int64_t dim, int rotate, double shift, uint64_t seed) {
  evo_fn *f;
  cr_assert_eq(evo_fn_new(k, dim, rotate, shift, evo_key_from_seed(seed), &f), EVO_STATUS_OK, "%s",
               evo_last_error());
  cr_assert_eq(evo_fn_dim(f), dim);
  return f;
}

Test(functions, minimum_is_zero_at_the_optimum) {
  const int64_t dims[] = {1, 2, 10, 37};
  for (int k = 0; k < EVO_FN_COUNT; k++)
    for (int di = 0; di < 4; di++)
      for (int rot = 0; rot < 2; rot++)
        for (int sh = 0; sh < 2; sh++) {
          int64_t n = dims[di];
          if (k == EVO_FN_ROSENBROCK && n < 2) continue;
          evo_fn *f = make((evo_fn_kind)k, n, rot, sh ? 2.0 : 0.0, 11 + (uint64_t)k);
          double x[37], y[37];
          evo_fn_optimum(f, x);
          double f0 = evo_fn_eval(f, x);
          cr_assert(fabs(f0) < 1e-10, "%s n=%lld rot=%d shift=%d: f(opt) = %.17g", evo_fn_name(k), (long long)n, rot,
                    sh, f0);
          /* A strict local minimum: every nearby point is worse. */
          for (int t = 0; t < 20; t++) {
            for (int64_t i = 0; i < n; i++) y[i] = x[i] + 1e-3 * sin(3.7 * t + 1.9 * (double)i + 0.4);
            double fy = evo_fn_eval(f, y);
            cr_assert(fy > f0, "%s n=%lld rot=%d shift=%d: f(opt + d) = %.17g <= f(opt) = %.17g", evo_fn_name(k),
                      (long long)n, rot, sh, fy, f0);
          }
          evo_fn_free(f);
        }
}

static double at(evo_fn_kind k, int64_t n, const double *x) {
  evo_fn *f = make(k, n, 0, 0, 1);
  double v = evo_fn_eval(f, x);
  evo_fn_free(f);
  return v;
}

#define CHECK_AT(kind, n, want, ...)                                                                                 \
  do {                                                                                                               \
    const double x_[] = {__VA_ARGS__};                                                                               \
    double got_ = at(kind, n, x_), want_ = (want);                                                                   \
    cr_assert(fabs(got_ - want_) <= 1e-12 * (1 + fabs(want_)), "%s at line %d: %.17g want %.17g",                  \
              evo_fn_name(kind), __LINE__, got_, want_);                                                             \
  } while (0)

Test(functions, textbook_values_at_chosen_points) {
  CHECK_AT(EVO_FN_SPHERE, 3, 14.0, 1, 2, 3);
  CHECK_AT(EVO_FN_ELLIPSOID, 3, 1.0 + 1e3 + 1e6, 1, 1, 1);
  CHECK_AT(EVO_FN_ELLIPSOID, 1, 4.0, 2);
  CHECK_AT(EVO_FN_ROSENBROCK, 2, 1.0, 0, 0);
  CHECK_AT(EVO_FN_ROSENBROCK, 2, 24.2, -1.2, 1); /* the classic starting point */
  CHECK_AT(EVO_FN_ROSENBROCK, 3, 100.0 + 1.0 + 0.0 + 0.0, 0, 1, 1);
  CHECK_AT(EVO_FN_ROSENBROCK, 3, 100.0 * 9.0 + 4.0 + 100.0 + 1.0, -1, 2, 1);
  CHECK_AT(EVO_FN_RASTRIGIN, 2, 2.0, 1, 1);
  CHECK_AT(EVO_FN_RASTRIGIN, 1, 20.25, 0.5);
  CHECK_AT(EVO_FN_ACKLEY, 2, 20.0 * (1.0 - exp(-0.2)), 1, 1);
  CHECK_AT(EVO_FN_ACKLEY, 2, 20.0 + E_CONST - 20.0 * exp(-0.2 * sqrt(0.125)) - 1.0, 0.5, 0); /* cos(pi) + cos(0) = 0 */
  CHECK_AT(EVO_FN_GRIEWANK, 2, 1.0 + 1.0 / 4000.0 - cos(1.0), 1, 0);
  CHECK_AT(EVO_FN_GRIEWANK, 2, 1.0 + 8.0 / 4000.0 - cos(2.0) * cos(2.0 / sqrt(2.0)), 2, 2);
  CHECK_AT(EVO_FN_STYBLINSKI_TANG, 2, 2 * 39.16616570377142, 0, 0);
  CHECK_AT(EVO_FN_STYBLINSKI_TANG, 1, -5.0 + 39.16616570377142, 1);
}

/* Rotation is orthogonal: the rotated, shifted sphere is ||x - optimum||^2; the rotated ellipsoid differs from the
   unrotated one but keeps its spectrum (its minimum and scale stay the same). */
Test(functions, rotation_is_orthogonal) {
  const int64_t n = 40;
  evo_fn *rs = make(EVO_FN_SPHERE, n, 1, 3.0, 5), *re = make(EVO_FN_ELLIPSOID, n, 1, 0, 5),
         *e = make(EVO_FN_ELLIPSOID, n, 0, 0, 5);
  double o[40], x[40];
  evo_fn_optimum(rs, o);
  for (int t = 0; t < 10; t++) {
    double want = 0;
    for (int64_t i = 0; i < n; i++) {
      x[i] = 2.0 * sin(0.3 * t + 0.77 * (double)i);
      want += (x[i] - o[i]) * (x[i] - o[i]);
    }
    double got = evo_fn_eval(rs, x);
    cr_assert(fabs(got - want) <= 1e-12 * want, "rotated sphere: %.17g want %.17g", got, want);
    cr_assert(fabs(evo_fn_eval(re, x) - evo_fn_eval(e, x)) > 1e-3 * evo_fn_eval(e, x), "ellipsoid not rotated");
  }
  /* sum_j f_rot(e_j) = trace(R^T D R) = trace(D) when R is orthogonal. */
  double tr = 0, want = 0;
  for (int64_t j = 0; j < n; j++) {
    memset(x, 0, sizeof x);
    x[j] = 1;
    tr += evo_fn_eval(re, x);
    want += pow(10.0, 6.0 * (double)j / (double)(n - 1));
  }
  cr_assert(fabs(tr - want) <= 1e-10 * want, "trace of R^T D R = %.17g, want trace D = %.17g", tr, want);
  evo_fn_free(rs);
  evo_fn_free(re);
  evo_fn_free(e);
}

Test(functions, shift_range_and_determinism) {
  const int64_t n = 200;
  evo_fn *a = make(EVO_FN_ROSENBROCK, n, 1, 0.5, 3), *b = make(EVO_FN_ROSENBROCK, n, 1, 0.5, 3),
         *c = make(EVO_FN_ROSENBROCK, n, 1, 0.5, 4);
  double oa[200], ob[200], oc[200];
  evo_fn_optimum(a, oa);
  evo_fn_optimum(b, ob);
  evo_fn_optimum(c, oc);
  cr_assert_eq(memcmp(oa, ob, sizeof oa), 0, "same key, same shift");
  double lo = INFINITY, hi = -INFINITY;
  int same = 0;
  for (int64_t i = 0; i < n; i++) {
    cr_assert(oa[i] >= 0.5 && oa[i] <= 1.5, "shifted Rosenbrock optimum %g outside 1 +- 0.5", oa[i]);
    lo = fmin(lo, oa[i]), hi = fmax(hi, oa[i]);
    same += oa[i] == oc[i];
  }
  cr_assert(lo < 0.55 && hi > 1.45, "shift does not cover its range: [%g, %g]", lo, hi);
  cr_assert_lt(same, 5, "a different key gives a different shift");
  float x[200];
  for (int64_t i = 0; i < n; i++) x[i] = (float)(0.1 * (double)i / n);
  cr_assert_eq(evo_fn_eval_f32(a, x), evo_fn_eval_f32(b, x), "same key, same function (bit for bit)");
  cr_assert_neq(evo_fn_eval_f32(a, x), evo_fn_eval_f32(c, x));
  evo_fn_free(a);
  evo_fn_free(b);
  evo_fn_free(c);
}

/* Batch = loop, bit for bit, on a small batch (one thread) and a large one (OpenMP). */
Test(functions, batch_equals_loop) {
  const int rows_list[] = {7, 400};
  for (int k = 0; k < EVO_FN_COUNT; k++)
    for (int ri = 0; ri < 2; ri++) {
      const int rows = rows_list[ri];
      const int64_t n = 17;
      evo_fn *f = make((evo_fn_kind)k, n, 1, 1.0, 9);
      float *pop = malloc(sizeof(float) * rows * n);
      double *out = malloc(sizeof(double) * rows);
      evo_rng_fill_uniform(evo_key_from_seed(21), pop, rows * n, -3, 3);
      evo_fn_eval_batch(f, pop, rows, out);
      for (int r = 0; r < rows; r++) {
        double want = evo_fn_eval_f32(f, pop + r * n);
        cr_assert(memcmp(&out[r], &want, sizeof want) == 0, "%s row %d: batch %.17g loop %.17g", evo_fn_name(k), r,
                  out[r], want);
        double xd[17];
        for (int64_t i = 0; i < n; i++) xd[i] = pop[r * n + i];
        cr_assert_eq(evo_fn_eval(f, xd), want, "f32 and f64 entry points agree on the same point");
      }
      free(pop);
      free(out);
      evo_fn_free(f);
    }
}

/* Dimensions beyond the stack scratch size take the heap path. */
Test(functions, large_dimension) {
  const int64_t n = 1000;
  evo_fn *f = make(EVO_FN_RASTRIGIN, n, 0, 1.0, 2);
  double *x = malloc(sizeof(double) * n);
  evo_fn_optimum(f, x);
  cr_assert(fabs(evo_fn_eval(f, x)) < 1e-9);
  for (int64_t i = 0; i < n; i++) x[i] += 0.5;
  double want = 0;
  evo_fn *g = make(EVO_FN_RASTRIGIN, n, 0, 0, 2);
  double *h = malloc(sizeof(double) * n);
  for (int64_t i = 0; i < n; i++) h[i] = 0.5, want += 20.25;
  cr_assert(fabs(evo_fn_eval(f, x) - want) < 1e-9 * want && fabs(evo_fn_eval(g, h) - want) < 1e-9 * want);
  free(x);
  free(h);
  evo_fn_free(f);
  evo_fn_free(g);
}

Test(functions, names_and_argument_checks) {
  for (int k = 0; k < EVO_FN_COUNT; k++) cr_assert_eq(evo_fn_from_name(evo_fn_name((evo_fn_kind)k)), k);
  cr_assert_str_eq(evo_fn_name(EVO_FN_STYBLINSKI_TANG), "styblinski_tang");
  cr_assert_eq(evo_fn_from_name("himmelblau"), -1);
  evo_fn *f = NULL;
  cr_assert_eq(evo_fn_new(EVO_FN_ROSENBROCK, 1, 0, 0, evo_key_from_seed(0), &f), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "rosenbrock"), "%s", evo_last_error());
  cr_assert_eq(evo_fn_new(EVO_FN_SPHERE, 0, 0, 0, evo_key_from_seed(0), &f), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert_eq(evo_fn_new(EVO_FN_SPHERE, 3, 0, -1, evo_key_from_seed(0), &f), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "shift"), "%s", evo_last_error());
  cr_assert_eq(evo_fn_new(EVO_FN_COUNT, 3, 0, 0, evo_key_from_seed(0), &f), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert_null(f);
}
