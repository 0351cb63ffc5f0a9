/* Internal: the single-threaded SGEMM shared by matmul and conv (core/cpu/k_matmul.c), and loop-dim mapping for
   the gufunc-style heavy kernels (matmul, conv, pool). */
#ifndef EVOC_CPU_GEMM_H
#define EVOC_CPU_GEMM_H
#include <stdint.h>
#include "../graph_impl.h"

/* OpenBLAS takes GEMMs with every dimension >= EVO_CPU_BLAS_MIN_DIM and more than EVO_CPU_BLAS_FLOPS flops;
   everything else runs on the register tiles (see k_matmul.c for the measurements behind this). */
#define EVO_CPU_BLAS_FLOPS ((double)(1 << 21))
#define EVO_CPU_BLAS_MIN_DIM 128

/* C[m,n] = (or += when accumulate) A @ B on one thread. A[i,p] is a[i*sai + p*sap], so a transposed A costs
   nothing (sai=1, sap=lda); B and C are row-major with leading dims ldb, ldc. No allocation. */
void evo_cpu_gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t sai, int64_t sap, const float *b,
                  int64_t ldb, float *c, int64_t ldc, int accumulate);
/* The same with A[i,p] = a[row(i) + po[p]] for a table of column offsets po[0..k) and row(i) = ro[i] (or i*sai
   when ro is NULL): conv reads its input through it without an im2col copy (rows = output pixels, po[p] = offset
   of kernel tap p). */
void evo_cpu_gemm_idx(int64_t m, int64_t n, int64_t k, const float *a, int64_t sai, const int64_t *ro,
                      const int64_t *po, const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate);

/* Loop dims shared by the operands of one op: `shape` is the broadcast of every operand's loop dims and
   stride[o][d] the step of operand o's flat loop index along dim d (0 where o broadcasts). */
typedef struct {
  int nd;
  int64_t numel;
  int64_t shape[EVO_MAX_DIMS];
  int64_t stride[4][EVO_MAX_DIMS];
} evo_cpu_loops;

/* Operand o has nl[o] loop dims, dims[o][0..nl[o]) (right-aligned against the others). */
static inline void evo_cpu_loops_init(evo_cpu_loops *lp, int nops, const int *nl, const int64_t *const *dims) {
  int nd = 0;
  for (int o = 0; o < nops; o++) nd = nl[o] > nd ? nl[o] : nd;
  lp->nd = nd;
  lp->numel = 1;
  for (int d = 0; d < nd; d++) {
    int64_t s = 1;
    for (int o = 0; o < nops; o++) {
      int od = d - (nd - nl[o]);
      if (od >= 0 && dims[o][od] > s) s = dims[o][od];
    }
    lp->shape[d] = s;
    lp->numel *= s;
  }
  for (int o = 0; o < nops; o++) {
    int64_t st = 1;
    for (int d = nd - 1; d >= 0; d--) {
      int od = d - (nd - nl[o]);
      int64_t sz = od >= 0 ? dims[o][od] : 1;
      lp->stride[o][d] = sz == 1 ? 0 : st;
      st *= sz;
    }
  }
}

/* Flat loop index of operand o at the flat index `flat` of the broadcast loop. */
static inline int64_t evo_cpu_loops_off(const evo_cpu_loops *lp, int o, int64_t flat) {
  int64_t off = 0;
  for (int d = lp->nd - 1; d >= 0 && flat; d--) {
    off += (flat % lp->shape[d]) * lp->stride[o][d];
    flat /= lp->shape[d];
  }
  return off;
}

/* Loop dims of node n when its last `core` dims are core dims. */
static inline int evo_cpu_nloop(const evo_node_t *n, int core) { return n->ndim - core; }

#endif
