/* Fitness shaping shared by every strategy: ranks, centered ranks, z-scores, NES utilities. */
#include <math.h>
#include <stdlib.h>
#include "algo_impl.h"

/* Stable argsort, best (largest) first, by merge sort on indices (ties keep index order, so results never depend
   on the sort's internals). Uses a small on-stack buffer or the heap for large n. */
static void merge_sort(const float *f, int *idx, int *tmp, int n) {
  for (int width = 1; width < n; width *= 2) {
    for (int lo = 0; lo < n; lo += 2 * width) {
      int mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
      int i = lo, j = mid, k = lo;
      while (i < mid && j < hi) tmp[k++] = (f[idx[j]] > f[idx[i]]) ? idx[j++] : idx[i++];
      while (i < mid) tmp[k++] = idx[i++];
      while (j < hi) tmp[k++] = idx[j++];
    }
    for (int k = 0; k < n; k++) idx[k] = tmp[k];
  }
}

void evo_shape_argsort_desc(const float *f, int n, int *order) {
  int stack_tmp[256];
  int *tmp = n <= 256 ? stack_tmp : malloc(sizeof(int) * (size_t)n);
  for (int i = 0; i < n; i++) order[i] = i;
  if (!tmp) { /* out of memory: insertion sort, still stable */
    for (int i = 1; i < n; i++) {
      int v = order[i], j = i - 1;
      while (j >= 0 && f[order[j]] < f[v]) order[j + 1] = order[j], j--;
      order[j + 1] = v;
    }
    return;
  }
  merge_sort(f, order, tmp, n);
  if (tmp != stack_tmp) free(tmp);
}

void evo_shape_centered_ranks(const float *f, int n, double *out) {
  if (n == 1) {
    out[0] = 0;
    return;
  }
  int stack_order[256];
  int *order = n <= 256 ? stack_order : malloc(sizeof(int) * (size_t)n);
  if (!order) {
    for (int i = 0; i < n; i++) out[i] = 0;
    return;
  }
  evo_shape_argsort_desc(f, n, order);
  /* order[k] has rank n-1-k counting from the worst (0) to the best (n-1); a run of equal values [k0, k1) shares
     the mean of its ranks (scipy rankdata "average"), so the result never depends on member order and a flat
     fitness gives all zeros (no spurious gradient from index order). */
  for (int k0 = 0, k1; k0 < n; k0 = k1) {
    for (k1 = k0 + 1; k1 < n && f[order[k1]] == f[order[k0]]; k1++) {}
    const double v = ((double)(n - 1) - 0.5 * (k0 + k1 - 1)) / (double)(n - 1) - 0.5;
    for (int k = k0; k < k1; k++) out[order[k]] = v;
  }
  if (order != stack_order) free(order);
}

const char *const evo_shape_names[] = {"centered_ranks", "z_score", NULL};

void evo_shape(int kind, const float *f, int n, double *out) {
  if (kind == EVO_SHAPE_ZSCORE)
    evo_shape_zscore(f, n, out);
  else
    evo_shape_centered_ranks(f, n, out);
}

void evo_shape_zscore(const float *f, int n, double *out) {
  double mean = 0, var = 0;
  int finite = 0;
  for (int i = 0; i < n; i++)
    if (isfinite(f[i])) mean += f[i], finite++;
  mean = finite ? mean / finite : 0;
  double lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < n; i++)
    if (isfinite(f[i])) {
      var += (f[i] - mean) * (f[i] - mean);
      if (f[i] < lo) lo = f[i];
      if (f[i] > hi) hi = f[i];
    }
  double sd = finite > 1 ? sqrt(var / finite) : 0;
  for (int i = 0; i < n; i++) {
    /* -inf (a NaN fitness) scores as the worst finite member, +inf as the best: ranks stay as centered ranks
       order them, and one infinite value cannot turn every score into NaN */
    double v = isfinite(f[i]) ? f[i] : f[i] > 0 ? hi : lo;
    out[i] = sd > 0 && isfinite(v) ? (v - mean) / sd : 0;
  }
}

void evo_shape_nes_utilities(const float *f, int n, double *out) {
  int stack_order[256];
  int *order = n <= 256 ? stack_order : malloc(sizeof(int) * (size_t)n);
  if (!order) {
    for (int i = 0; i < n; i++) out[i] = 0;
    return;
  }
  evo_shape_argsort_desc(f, n, order);
  double total = 0, base = log(n / 2.0 + 1);
  for (int k = 1; k <= n; k++) total += fmax(0, base - log(k));
  for (int k = 1; k <= n; k++) out[order[k - 1]] = fmax(0, base - log(k)) / total - 1.0 / n;
  if (order != stack_order) free(order);
}
