/* Internal: helpers shared by the CPU kernels (core/cpu/cpu_loop.c): shape arithmetic and a strided N-operand
   iterator in the style of NumPy's ufunc loops. */
#ifndef EVOC_CPU_UTIL_H
#define EVOC_CPU_UTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cpu_kernels.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Below this many elements a cheap elementwise loop runs on one thread: forking the OpenMP team costs more. */
#define EVO_CPU_PAR_MIN 32768
/* Threshold for loops whose per-element cost is a transcendental function (exp, tanh, pow, Philox). */
#define EVO_CPU_PAR_MIN_HEAVY 4096
#define EVO_CPU_MAX_OPS 4

int64_t evo_cpu_numel(int ndim, const int64_t *shape);
bool evo_cpu_same_shape(int na, const int64_t *a, int nb, const int64_t *b);
/* Row-major element strides of a contiguous tensor. */
void evo_cpu_contig_strides(int ndim, const int64_t *shape, int64_t *strides);
/* Element strides of an input (in_ndim <= out_ndim, right-aligned) read as if broadcast to out_shape:
   0 for missing dims and for size-1 dims that stretch. */
void evo_cpu_bcast_strides(int out_ndim, const int64_t *out_shape, int in_ndim, const int64_t *in_shape,
                           int64_t *strides);
/* Views a shape as [outer, shape[axis], inner]. */
void evo_cpu_axis_split(int ndim, const int64_t *shape, int axis, int64_t *outer, int64_t *n, int64_t *inner);
/* [lo, hi) of n items for thread t of nt, cut at multiples of `align` (to keep threads off each other's cache
   lines). */
void evo_cpu_thread_range(int64_t n, int t, int nt, int64_t align, int64_t *lo, int64_t *hi);

/* Iterates over a shape with up to EVO_CPU_MAX_OPS operands, each with its own element strides and element size.
   After coalescing (size-1 dims dropped, dims that are contiguous for every operand merged), the last dim is the
   "row": the row function gets the row length, one pointer per operand and each operand's element stride along
   the row, so it can pick a vectorised loop for the stride pattern (1 = contiguous, 0 = broadcast). */
typedef void (*evo_cpu_row_fn)(const void *ctx, int64_t n, char *const *p, const int64_t *s);

typedef struct {
  int ndim;
  int64_t shape[EVO_MAX_DIMS];
  int nop;
  size_t esize[EVO_CPU_MAX_OPS];
  char *base[EVO_CPU_MAX_OPS];
  int64_t stride[EVO_CPU_MAX_OPS][EVO_MAX_DIMS];
  /* Set by kernels whose row function touches operand k only at element i*s[k] (pure elementwise): lets the
     iterator hand it a stack copy of a repeated short row (see cpu_loop.c). Gathers and scatters leave it off. */
  bool elementwise;
} evo_cpu_iter;

void evo_cpu_iter_init(evo_cpu_iter *it, int ndim, const int64_t *shape); /* elementwise = false */
/* Adds an operand with explicit strides (ndim of the iterator); returns its index. */
int evo_cpu_iter_add(evo_cpu_iter *it, const void *data, size_t esize, const int64_t *strides);
/* Adds a contiguous operand of the iterator's shape (usually the output). */
int evo_cpu_iter_add_contig(evo_cpu_iter *it, const void *data, size_t esize);
/* Adds an operand broadcast NumPy-style to the iterator's shape. */
int evo_cpu_iter_add_bcast(evo_cpu_iter *it, const void *data, size_t esize, int ndim, const int64_t *shape);
/* Call after adding the operands; leaves ndim >= 1. */
void evo_cpu_iter_coalesce(evo_cpu_iter *it);
int64_t evo_cpu_iter_numel(const evo_cpu_iter *it);
/* Runs fn over every element; splits the elements across OpenMP threads when there are more than par_min.
   The split is by element, so one long row is shared between threads too. */
void evo_cpu_iter_run(const evo_cpu_iter *it, evo_cpu_row_fn fn, const void *ctx, int64_t par_min);

#ifdef __cplusplus
}
#endif

#endif
