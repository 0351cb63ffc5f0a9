/* MATMUL on the CPU, and the register-tiled SGEMM that matmul and conv share (gemm.h).
   Populations of small MLPs give many tiny GEMMs per call: those run one per OpenMP thread on the tile kernels
   below; big GEMMs go to OpenBLAS. */
#include <cblas.h>
#include <omp.h>
#include <string.h>
#include "cpu_kernels.h"
#include "gemm.h"

/* ---- register-tiled kernels ------------------------------------------------------------------------------------
   A tile keeps C[MR x NV*VW] in vector registers over the whole k loop: per p, MR broadcasts of A times one row of
   B. Plain C loops let gcc vectorize the wrong loop (it picked gathers along k), so the tiles use GCC/Clang vector
   types; "fp-contract=fast" is needed because -std=c11 disables FMA contraction. Tile heights keep MR*NV
   accumulators + NV B vectors within the register file (32 with AVX-512VL, else 16; B can be a memory operand). */
#pragma GCC optimize("fp-contract=fast", "no-version-loops-for-strides")
#define VW 8 /* floats per vector: 256-bit, so the same tiles serve AVX2 and AVX-512 machines */
typedef float vf __attribute__((vector_size(VW * sizeof(float))));
#if defined(__AVX512F__) && defined(__AVX512VL__)
#define MR4 6  /* NR = 32 */
#define MR2 12 /* NR = 16 */
#define MR1 16 /* NR = 8 */
#else
#define MR4 3
#define MR2 6
#define MR1 12
#endif
#define KC 256 /* k block: a KC x 32 panel of B (32 KiB) stays in L1/L2 while the rows of A stream past it */

/* A[i,p] = a[i*sai + po[p]]: one offset table covers row-major A (po[p] = p), transposed A (po[p] = p*lda) and
   the implicit im2col of conv (po[p] = offset of kernel tap p in the padded image). */
typedef void (*tile_fn)(int64_t k, const float *a, int64_t sai, const int64_t *po, int mr, const float *b,
                        int64_t ldb, float *c, int64_t ldc, int acc);

/* Needs k >= 1 (a do-while: a path that skips the k loop makes gcc keep the accumulators on the stack).
   Rows past mr are clamped to the last valid row: their results are computed but never stored. */
#define EVO_GEMM_TILE(MR, NV)                                                                                    \
  static void tile_##MR##x##NV(int64_t k, const float *a, int64_t sai, const int64_t *po, int mr,                \
                               const float *b, int64_t ldb, float *c, int64_t ldc, int acc) {                  \
    int64_t ro[MR];                                                                                              \
    vf t[MR][NV];                                                                                                \
    for (int i = 0; i < MR; i++) {                                                                               \
      ro[i] = (i < mr ? i : mr - 1) * sai;                                                                       \
      for (int v = 0; v < NV; v++) t[i][v] = (vf){0};                                                            \
    }                                                                                                            \
    int64_t p = 0;                                                                                               \
    do {                                                                                                         \
      const float *ap = a + po[p];                                                                               \
      vf bv[NV];                                                                                                 \
      for (int v = 0; v < NV; v++) memcpy(&bv[v], b + p * ldb + v * VW, sizeof(vf));                            \
      for (int i = 0; i < MR; i++) {                                                                             \
        const float av = ap[ro[i]];                                                                              \
        for (int v = 0; v < NV; v++) t[i][v] += av * bv[v];                                                      \
      }                                                                                                          \
    } while (++p < k);                                                                                           \
    /* Unrolled so t is only indexed by constants and stays in registers. */                                    \
    _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                                                      \
      if (i < mr) {                                                                                              \
        float *cr = c + i * ldc;                                                                                 \
        for (int v = 0; v < NV; v++) {                                                                           \
          vf o = t[i][v];                                                                                        \
          if (acc) {                                                                                             \
            vf old;                                                                                              \
            memcpy(&old, cr + v * VW, sizeof(vf));                                                               \
            o += old;                                                                                            \
          }                                                                                                      \
          memcpy(cr + v * VW, &o, sizeof(vf));                                                                   \
        }                                                                                                        \
      }                                                                                                          \
    }                                                                                                            \
  }

/* Tiles of one width, tallest first, down to 1 row. */
typedef struct {
  int mr[4];
  tile_fn fn[4];
} tile_set;

#if defined(__AVX512F__) && defined(__AVX512VL__)
EVO_GEMM_TILE(6, 4) EVO_GEMM_TILE(4, 4) EVO_GEMM_TILE(2, 4) EVO_GEMM_TILE(1, 4)
EVO_GEMM_TILE(12, 2) EVO_GEMM_TILE(6, 2) EVO_GEMM_TILE(3, 2) EVO_GEMM_TILE(1, 2)
EVO_GEMM_TILE(16, 1) EVO_GEMM_TILE(8, 1) EVO_GEMM_TILE(4, 1) EVO_GEMM_TILE(1, 1)
static const tile_set tiles4 = {{6, 4, 2, 1}, {tile_6x4, tile_4x4, tile_2x4, tile_1x4}};
static const tile_set tiles2 = {{12, 6, 3, 1}, {tile_12x2, tile_6x2, tile_3x2, tile_1x2}};
static const tile_set tiles1 = {{16, 8, 4, 1}, {tile_16x1, tile_8x1, tile_4x1, tile_1x1}};
#define TAIL_MR 16
#define tile_tail tile_16x1
#else
EVO_GEMM_TILE(3, 4) EVO_GEMM_TILE(2, 4) EVO_GEMM_TILE(1, 4)
EVO_GEMM_TILE(6, 2) EVO_GEMM_TILE(3, 2) EVO_GEMM_TILE(2, 2) EVO_GEMM_TILE(1, 2)
EVO_GEMM_TILE(12, 1) EVO_GEMM_TILE(6, 1) EVO_GEMM_TILE(3, 1) EVO_GEMM_TILE(1, 1)
static const tile_set tiles4 = {{3, 2, 1, 1}, {tile_3x4, tile_2x4, tile_1x4, tile_1x4}};
static const tile_set tiles2 = {{6, 3, 2, 1}, {tile_6x2, tile_3x2, tile_2x2, tile_1x2}};
static const tile_set tiles1 = {{12, 6, 3, 1}, {tile_12x1, tile_6x1, tile_3x1, tile_1x1}};
#define TAIL_MR 12
#define tile_tail tile_12x1
#endif

/* One column panel (NV vectors wide) over all m rows; the row tail takes the smallest tile that covers it. */
static void panel(const tile_set *ts, int64_t m, int64_t k, const float *a, int64_t sai, const int64_t *po,
                  const float *b, int64_t ldb, float *c, int64_t ldc, int acc) {
  const int big = ts->mr[0];
  int64_t i = 0;
  for (; i + big <= m; i += big) ts->fn[0](k, a + i * sai, sai, po, big, b, ldb, c + i * ldc, ldc, acc);
  if (i < m) {
    int r = (int)(m - i), s = 3;
    while (ts->mr[s] < r) s--;
    ts->fn[s](k, a + i * sai, sai, po, r, b, ldb, c + i * ldc, ldc, acc);
  }
}

/* The last n % VW columns: B is copied into a zero-padded VW-wide panel and C goes through a VW-wide buffer, so
   the tiles never touch memory past n. */
static void panel_tail(int64_t m, int64_t nt, int64_t k, const float *a, int64_t sai, const int64_t *po,
                       const float *b, int64_t ldb, float *c, int64_t ldc, int acc) {
  float bp[KC * VW], ct[TAIL_MR * VW] = {0};
  for (int64_t p = 0; p < k; p++)
    for (int j = 0; j < VW; j++) bp[p * VW + j] = j < nt ? b[p * ldb + j] : 0.0f;
  for (int64_t i = 0; i < m; i += TAIL_MR) {
    int r = m - i < TAIL_MR ? (int)(m - i) : TAIL_MR;
    if (acc)
      for (int ii = 0; ii < r; ii++)
        for (int j = 0; j < nt; j++) ct[ii * VW + j] = c[(i + ii) * ldc + j];
    tile_tail(k, a + i * sai, sai, po, r, bp, VW, ct, VW, acc);
    for (int ii = 0; ii < r; ii++)
      for (int j = 0; j < nt; j++) c[(i + ii) * ldc + j] = ct[ii * VW + j];
  }
}

/* n == 1 with contiguous rows: a dot product per row, accumulated in vector lanes. */
static void gemv_rows(int64_t m, int64_t k, const float *a, int64_t sai, const float *b, float *c, int64_t ldc,
                      int acc) {
  for (int64_t i = 0; i < m; i++) {
    const float *ai = a + i * sai;
    vf l0 = {0}, l1 = {0}, x, y;
    int64_t p = 0;
    for (; p + 2 * VW <= k; p += 2 * VW) {
      memcpy(&x, ai + p, sizeof x), memcpy(&y, b + p, sizeof y), l0 += x * y;
      memcpy(&x, ai + p + VW, sizeof x), memcpy(&y, b + p + VW, sizeof y), l1 += x * y;
    }
    l0 += l1;
    float s = 0.0f;
    for (; p < k; p++) s += ai[p] * b[p];
    for (int j = 0; j < VW; j++) s += l0[j];
    c[i * ldc] = acc ? c[i * ldc] + s : s;
  }
}

static void zero_rows(int64_t m, int64_t n, float *c, int64_t ldc) {
  for (int64_t i = 0; i < m; i++) memset(c + i * ldc, 0, sizeof(float) * (size_t)n);
}

void evo_cpu_gemm_idx(int64_t m, int64_t n, int64_t k, const float *a, int64_t sai, const int64_t *po,
                      const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate) zero_rows(m, n, c, ldc);
    return;
  }
  for (int64_t p0 = 0; p0 < k; p0 += KC) {
    int64_t kb = k - p0 < KC ? k - p0 : KC;
    int acc = accumulate || p0 > 0;
    const float *bp = b + p0 * ldb;
    const int64_t *pp = po + p0;
    int64_t j = 0;
    for (; j + 4 * VW <= n; j += 4 * VW) panel(&tiles4, m, kb, a, sai, pp, bp + j, ldb, c + j, ldc, acc);
    if (j + 2 * VW <= n) panel(&tiles2, m, kb, a, sai, pp, bp + j, ldb, c + j, ldc, acc), j += 2 * VW;
    if (j + VW <= n) panel(&tiles1, m, kb, a, sai, pp, bp + j, ldb, c + j, ldc, acc), j += VW;
    if (j < n) panel_tail(m, n - j, kb, a, sai, pp, bp + j, ldb, c + j, ldc, acc);
  }
}

void evo_cpu_gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t sai, int64_t sap, const float *b,
                  int64_t ldb, float *c, int64_t ldc, int accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate) zero_rows(m, n, c, ldc);
    return;
  }
  if (n == 1 && sap == 1 && ldb == 1) {
    gemv_rows(m, k, a, sai, b, c, ldc, accumulate);
    return;
  }
  int64_t po[KC];
  for (int64_t p0 = 0; p0 < k; p0 += KC) {
    int64_t kb = k - p0 < KC ? k - p0 : KC;
    for (int64_t p = 0; p < kb; p++) po[p] = (p0 + p) * sap;
    evo_cpu_gemm_idx(m, n, kb, a, sai, po, b + p0 * ldb, ldb, c, ldc, accumulate || p0 > 0);
  }
}

/* ---- MATMUL ------------------------------------------------------------------------------------------------- */

/* Work below this many flops is not worth waking the thread team. */
#define PAR_FLOPS ((double)(1 << 17))

/* One GEMM of row-major contiguous matrices using every thread: OpenBLAS when big, else row blocks of the tile
   kernel split across threads. */
static void gemm_all_threads(int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c) {
  double flops = 2.0 * (double)m * (double)n * (double)k;
  if (flops > EVO_CPU_BLAS_FLOPS && m > 1 && n > 1) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k, b, (int)n,
                0.0f, c, (int)n);
    return;
  }
  int nt = omp_get_max_threads();
  if (flops < PAR_FLOPS || nt < 2 || m < 24) {
    evo_cpu_gemm(m, n, k, a, k, 1, b, n, c, n, 0);
    return;
  }
  /* Row blocks in multiples of 24 (a multiple of every tile height) so no block wastes a tail tile. */
  int64_t rows = (m + nt - 1) / nt;
  rows = (rows + 23) / 24 * 24;
  int64_t nblk = (m + rows - 1) / rows;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < nblk; t++) {
    int64_t r0 = t * rows, r = m - r0 < rows ? m - r0 : rows;
    evo_cpu_gemm(r, n, k, a + r0 * k, k, 1, b, n, c + r0 * n, n, 0);
  }
}

size_t evo_cpu_matmul_scratch(const evo_node_t *node, const evo_node_t *const *in) {
  (void)node;
  (void)in;
  return 0; /* the tiles work in registers and on the stack; OpenBLAS manages its own buffers */
}

evo_status evo_cpu_matmul(const evo_kernel_args *args) {
  const evo_node_t *y = args->node, *an = args->in[0], *bn = args->in[1];
  if (y->dtype != EVO_F32 || an->dtype != EVO_F32 || bn->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cpu matmul: f32 only");
  const float *a = args->src[0], *b = args->src[1];
  float *c = args->dst;
  const int64_t m = an->shape[an->ndim - 2], k = an->shape[an->ndim - 1], n = bn->shape[bn->ndim - 1];
  if (y->shape[y->ndim - 2] != m || y->shape[y->ndim - 1] != n || bn->shape[bn->ndim - 2] != k)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cpu matmul: shapes do not match the node");

  evo_cpu_loops lp;
  const int nl[3] = {y->ndim - 2, an->ndim - 2, bn->ndim - 2};
  const int64_t *dims[3] = {y->shape, an->shape, bn->shape};
  evo_cpu_loops_init(&lp, 3, nl, dims);
  const int64_t L = lp.numel, la = evo_shape_numel(nl[1], an->shape), lb = evo_shape_numel(nl[2], bn->shape);

  /* Shared b and a batched without broadcasting ([L.., m, k] contiguous): one [L*m, k] @ [k, n] GEMM. */
  if (lb == 1 && la == L) {
    gemm_all_threads(L * m, n, k, a, b, c);
    return EVO_STATUS_OK;
  }

  const double flops = 2.0 * (double)m * (double)n * (double)k;
  const int nt = omp_get_max_threads();
  if (flops > EVO_CPU_BLAS_FLOPS && m > 1 && n > 1) {
    if (L >= nt) {
      /* OpenBLAS runs single-threaded inside a parallel region: one whole GEMM per thread. */
#pragma omp parallel for schedule(dynamic, 1)
      for (int64_t l = 0; l < L; l++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f,
                    a + evo_cpu_loops_off(&lp, 1, l) * m * k, (int)k, b + evo_cpu_loops_off(&lp, 2, l) * k * n,
                    (int)n, 0.0f, c + l * m * n, (int)n);
    } else {
      for (int64_t l = 0; l < L; l++)
        gemm_all_threads(m, n, k, a + evo_cpu_loops_off(&lp, 1, l) * m * k,
                         b + evo_cpu_loops_off(&lp, 2, l) * k * n, c + l * m * n);
    }
    return EVO_STATUS_OK;
  }
  /* Many small GEMMs (one per population member): one per thread at a time, each on the tile kernels. */
#pragma omp parallel for schedule(static) if (flops * (double)L > PAR_FLOPS)
  for (int64_t l = 0; l < L; l++)
    evo_cpu_gemm(m, n, k, a + evo_cpu_loops_off(&lp, 1, l) * m * k, k, 1, b + evo_cpu_loops_off(&lp, 2, l) * k * n,
                 n, c + l * m * n, n, 0);
  return EVO_STATUS_OK;
}
