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
   accumulators + NV B vectors within the vector registers (32 with AVX-512VL, else 16) and the MR row pointers
   within the general ones: 8-row tiles measured 40% faster than 12/16-row ones for 8/16-wide panels on Zen 4. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT ON
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=fast", "no-version-loops-for-strides")
#endif
#if defined(__AVX__)
#define VW 8 /* floats per vector: 256-bit, so the same tiles serve AVX2 and AVX-512 machines */
#else
#define VW 4 /* SSE, NEON */
#endif
typedef float vf __attribute__((vector_size(VW * sizeof(float))));
/* Unaligned view of float memory as a vector. (memcpy loads got merged into one block copy to the stack by gcc
   -march=haswell, turning every FMA operand into a stack load.) */
typedef float vfu __attribute__((vector_size(VW * sizeof(float)), aligned(sizeof(float)), may_alias));
#define KC 256 /* k block: a KC x 32 panel of B (32 KiB) stays in L1/L2 while the rows of A stream past it */

/* A[i,p] = ar[i][po[p]]: row pointers and one table of column offsets cover row-major A (po[p] = p),
   transposed A (po[p] = p*lda) and the implicit im2col of conv (rows = output pixels, po[p] = offset of kernel
   tap p). The caller fills all MR row pointers, repeating the last valid row past mr: those results are computed
   but never stored. */
typedef void (*tile_fn)(int64_t k, const float *const *rows, const int64_t *po, int mr, const float *b,
                        int64_t ldb, float *c, int64_t ldc, int acc);

/* Needs k >= 1 (a do-while: a path that skips the k loop makes gcc keep the accumulators on the stack). */
#define EVO_GEMM_TILE(MR, NV)                                                                                    \
  static void tile_##MR##x##NV(int64_t k, const float *const *rows, const int64_t *po, int mr, const float *b,   \
                               int64_t ldb, float *c, int64_t ldc, int acc) {                                  \
    const float *ar[MR];                                                                                         \
    vf t[MR][NV];                                                                                                \
    for (int i = 0; i < MR; i++) {                                                                               \
      ar[i] = rows[i];                                                                                           \
      for (int v = 0; v < NV; v++) t[i][v] = (vf){0};                                                            \
    }                                                                                                            \
    int64_t p = 0;                                                                                               \
    do {                                                                                                         \
      const int64_t o = po[p];                                                                                   \
      vf bv[NV];                                                                                                 \
      for (int v = 0; v < NV; v++) bv[v] = *(const vfu *)(b + p * ldb + v * VW);                               \
      for (int i = 0; i < MR; i++) {                                                                             \
        const float av = ar[i][o];                                                                               \
        for (int v = 0; v < NV; v++) t[i][v] += av * bv[v];                                                      \
      }                                                                                                          \
    } while (++p < k);                                                                                           \
    /* Unrolled so t is only indexed by constants and stays in registers. */                                    \
    _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                                                      \
      if (i < mr) {                                                                                              \
        float *cr = c + i * ldc;                                                                                 \
        for (int v = 0; v < NV; v++) {                                                                           \
          if (acc) t[i][v] += *(const vfu *)(cr + v * VW);                                                       \
          *(vfu *)(cr + v * VW) = t[i][v];                                                                       \
        }                                                                                                        \
      }                                                                                                          \
    }                                                                                                            \
  }

/* Tiles of one width (NV vectors), tallest first, down to 1 row. */
typedef struct {
  int mr[4];
  tile_fn fn[4];
} tile_set;

#if defined(__AVX512F__) && defined(__AVX512VL__)
EVO_GEMM_TILE(6, 4) EVO_GEMM_TILE(4, 4) EVO_GEMM_TILE(2, 4) EVO_GEMM_TILE(1, 4)
EVO_GEMM_TILE(8, 2) EVO_GEMM_TILE(4, 2) EVO_GEMM_TILE(2, 2) EVO_GEMM_TILE(1, 2)
EVO_GEMM_TILE(8, 1) EVO_GEMM_TILE(4, 1) EVO_GEMM_TILE(2, 1) EVO_GEMM_TILE(1, 1)
static const tile_set tiles4 = {{6, 4, 2, 1}, {tile_6x4, tile_4x4, tile_2x4, tile_1x4}};
static const tile_set tiles2 = {{8, 4, 2, 1}, {tile_8x2, tile_4x2, tile_2x2, tile_1x2}};
static const tile_set tiles1 = {{8, 4, 2, 1}, {tile_8x1, tile_4x1, tile_2x1, tile_1x1}};
#else /* 16 vector registers */
EVO_GEMM_TILE(2, 4) EVO_GEMM_TILE(1, 4)
EVO_GEMM_TILE(6, 2) EVO_GEMM_TILE(3, 2) EVO_GEMM_TILE(2, 2) EVO_GEMM_TILE(1, 2)
EVO_GEMM_TILE(8, 1) EVO_GEMM_TILE(4, 1) EVO_GEMM_TILE(2, 1) EVO_GEMM_TILE(1, 1)
static const tile_set tiles4 = {{2, 1, 1, 1}, {tile_2x4, tile_1x4, tile_1x4, tile_1x4}};
static const tile_set tiles2 = {{6, 3, 2, 1}, {tile_6x2, tile_3x2, tile_2x2, tile_1x2}};
static const tile_set tiles1 = {{8, 4, 2, 1}, {tile_8x1, tile_4x1, tile_2x1, tile_1x1}};
#endif

/* Row pointers of the tile at rows i0.. (mr valid, padded to MR by repeating the last). */
static void tile_rows(const float *a, int64_t sai, const int64_t *ro, int64_t i0, int mr, int MR,
                      const float **rows) {
  for (int i = 0; i < MR; i++) {
    const int64_t r = i0 + (i < mr ? i : mr - 1);
    rows[i] = a + (ro ? ro[r] : r * sai);
  }
}

/* One column panel (NV vectors wide) over all m rows; the row tail takes the smallest tile that covers it. */
static void panel(const tile_set *ts, int64_t m, int64_t k, const float *a, int64_t sai, const int64_t *ro,
                  const int64_t *po, const float *b, int64_t ldb, float *c, int64_t ldc, int acc) {
  const float *rows[16];
  const int big = ts->mr[0];
  int64_t i = 0;
  for (; i + big <= m; i += big) {
    tile_rows(a, sai, ro, i, big, big, rows);
    ts->fn[0](k, rows, po, big, b, ldb, c + i * ldc, ldc, acc);
  }
  if (i < m) {
    int r = (int)(m - i), s = 3;
    while (ts->mr[s] < r) s--;
    tile_rows(a, sai, ro, i, r, ts->mr[s], rows);
    ts->fn[s](k, rows, po, r, b, ldb, c + i * ldc, ldc, acc);
  }
}

/* The last n % 32 columns when they do not fill a panel exactly: B is copied into a zero-padded panel (8, 16 or
   32 wide: a padded 16-wide panel beats an 8-wide one plus an 8-wide tail) and C goes through a buffer of that
   width, so the tiles never touch memory past n. */
static void panel_tail(const tile_set *ts, int nr, int64_t m, int64_t nt, int64_t k, const float *a, int64_t sai,
                       const int64_t *ro, const int64_t *po, const float *b, int64_t ldb, float *c, int64_t ldc,
                       int acc) {
  float bp[KC * 4 * VW], ct[192] = {0}; /* 192 >= MR * NR of every tile set */
  const float *rows[16];
  for (int64_t p = 0; p < k; p++)
    for (int j = 0; j < nr; j++) bp[p * nr + j] = j < nt ? b[p * ldb + j] : 0.0f;
  const int big = ts->mr[0];
  for (int64_t i = 0; i < m; i += big) {
    int r = m - i < big ? (int)(m - i) : big;
    if (acc)
      for (int ii = 0; ii < r; ii++)
        for (int j = 0; j < nt; j++) ct[ii * nr + j] = c[(i + ii) * ldc + j];
    tile_rows(a, sai, ro, i, r, big, rows);
    ts->fn[0](k, rows, po, r, bp, nr, ct, nr, acc);
    for (int ii = 0; ii < r; ii++)
      for (int j = 0; j < nt; j++) c[(i + ii) * ldc + j] = ct[ii * nr + j];
  }
}

/* n == 1 with contiguous rows: a dot product per row, accumulated in vector lanes. */
static void gemv_rows(int64_t m, int64_t k, const float *a, int64_t sai, const float *b, float *c, int64_t ldc,
                      int acc) {
  for (int64_t i = 0; i < m; i++) {
    const float *ai = a + i * sai;
    vf l0 = {0}, l1 = {0};
    int64_t p = 0;
    for (; p + 2 * VW <= k; p += 2 * VW) {
      l0 += *(const vfu *)(ai + p) * *(const vfu *)(b + p);
      l1 += *(const vfu *)(ai + p + VW) * *(const vfu *)(b + p + VW);
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

void evo_cpu_gemm_idx(int64_t m, int64_t n, int64_t k, const float *a, int64_t sai, const int64_t *ro,
                      const int64_t *po, const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate) {
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
    for (; j + 4 * VW <= n; j += 4 * VW) panel(&tiles4, m, kb, a, sai, ro, pp, bp + j, ldb, c + j, ldc, acc);
    if (n - j == 2 * VW || n - j == 3 * VW) {
      panel(&tiles2, m, kb, a, sai, ro, pp, bp + j, ldb, c + j, ldc, acc);
      j += 2 * VW;
    }
    if (n - j == VW) {
      panel(&tiles1, m, kb, a, sai, ro, pp, bp + j, ldb, c + j, ldc, acc);
      j += VW;
    }
    if (j < n) {
      const int64_t t = n - j;
      const tile_set *ts = t <= VW ? &tiles1 : t <= 2 * VW ? &tiles2 : &tiles4;
      const int w = t <= VW ? VW : t <= 2 * VW ? 2 * VW : 4 * VW;
      panel_tail(ts, w, m, t, kb, a, sai, ro, pp, bp + j, ldb, c + j, ldc, acc);
    }
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
    evo_cpu_gemm_idx(m, n, kb, a, sai, NULL, po, b + p0 * ldb, ldb, c, ldc, accumulate || p0 > 0);
  }
}

/* ---- MATMUL ------------------------------------------------------------------------------------------------- */

/* Work below this many flops is not worth waking the thread team. */
#define PAR_FLOPS ((double)(1 << 17))

/* OpenBLAS's packing and cache blocking only pay off when every dimension is large; on skinny GEMMs (k or n <= 64,
   the MLP and conv shapes) the tiles measured 1.5-3x faster than OpenBLAS on 2 threads, and equal single-threaded. */
static int use_blas(int64_t m, int64_t n, int64_t k) {
  return m >= EVO_CPU_BLAS_MIN_DIM && n >= EVO_CPU_BLAS_MIN_DIM && k >= EVO_CPU_BLAS_MIN_DIM &&
         2.0 * (double)m * (double)n * (double)k > EVO_CPU_BLAS_FLOPS;
}

/* Operands may be stored transposed (MATMUL's trans flags, ops.h): A[i,p] = a[i*sai + p*sap] and B[p,j] =
   b[p*sbp + j*sbj] with unit steps for row-major, OpenBLAS takes them as CblasTrans. */
typedef struct {
  int64_t m, n, k;
  int ta, tb;
} mm_dims;

static void blas_gemm(const mm_dims *d, const float *a, const float *b, float *c) {
  cblas_sgemm(CblasRowMajor, d->ta ? CblasTrans : CblasNoTrans, d->tb ? CblasTrans : CblasNoTrans, (int)d->m,
              (int)d->n, (int)d->k, 1.0f, a, (int)(d->ta ? d->m : d->k), b, (int)(d->tb ? d->k : d->n), 0.0f, c,
              (int)d->n);
}

/* Rows [r0, r0+mr) x columns [c0, c0+nc) of C on the tiles, this thread only. The tiles read A through strides
   either way; a transposed B is packed 64 columns x KC rows at a time into a row-major block on the stack. */
static void gemm_block(const mm_dims *d, const float *a, const float *b, float *c, int64_t r0, int64_t mr,
                       int64_t c0, int64_t nc) {
  const int64_t sai = d->ta ? 1 : d->k, sap = d->ta ? d->m : 1;
  a += r0 * sai;
  c += r0 * d->n + c0;
  if (!d->tb) {
    evo_cpu_gemm(mr, nc, d->k, a, sai, sap, b + c0, d->n, c, d->n, 0);
    return;
  }
  enum { NB = 64 };
  float bp[KC * NB];
  for (int64_t j0 = 0; j0 < nc; j0 += NB) {
    const int64_t nb = nc - j0 < NB ? nc - j0 : NB;
    for (int64_t p0 = 0; p0 < d->k; p0 += KC) {
      const int64_t kb = d->k - p0 < KC ? d->k - p0 : KC;
      for (int64_t j = 0; j < nb; j++) {
        const float *bj = b + (c0 + j0 + j) * d->k + p0;
        for (int64_t p = 0; p < kb; p++) bp[p * nb + j] = bj[p];
      }
      evo_cpu_gemm(mr, nb, kb, a + p0 * sap, sai, sap, bp, nb, c + j0, d->n, p0 > 0);
    }
  }
  if (d->k == 0) zero_rows(mr, nc, c, d->n);
}

/* One GEMM on every thread: OpenBLAS (it threads itself) when big, else blocks of the tiles, rows first (in
   multiples of 48, a multiple of every tile height) then 32-column panels. Must not be called inside a parallel
   region. */
static void gemm_all_threads(const mm_dims *d, const float *a, const float *b, float *c) {
  const int64_t m = d->m, n = d->n, k = d->k;
  if (use_blas(m, n, k)) {
    blas_gemm(d, a, b, c);
    return;
  }
  const int nt = omp_get_max_threads();
  if (2.0 * (double)m * (double)n * (double)k < PAR_FLOPS || nt < 2) {
    gemm_block(d, a, b, c, 0, m, 0, n);
    return;
  }
  int64_t rt = (m + 47) / 48 < nt ? (m + 47) / 48 : nt, ct = (nt + rt - 1) / rt;
  if (ct > (n + 31) / 32) ct = (n + 31) / 32;
  const int64_t rows = ((m + rt - 1) / rt + 47) / 48 * 48, cols = ((n + ct - 1) / ct + 31) / 32 * 32;
  const int64_t nr = (m + rows - 1) / rows, nc = (n + cols - 1) / cols;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < nr * nc; t++) {
    const int64_t r0 = t / nc * rows, c0 = t % nc * cols;
    gemm_block(d, a, b, c, r0, m - r0 < rows ? m - r0 : rows, c0, n - c0 < cols ? n - c0 : cols);
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
  if (an->ndim < 2 || bn->ndim < 2 || y->ndim < 2)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cpu matmul: operands need 2 core dims");
  const float *a = args->src[0], *b = args->src[1];
  float *c = args->dst;
  mm_dims d = {.ta = y->p.i[0] != 0, .tb = y->p.i[1] != 0};
  d.m = an->shape[an->ndim - 2 + d.ta];
  d.k = an->shape[an->ndim - 1 - d.ta];
  d.n = bn->shape[bn->ndim - 1 - d.tb];
  const int64_t m = d.m, n = d.n, k = d.k;
  if (y->shape[y->ndim - 2] != m || y->shape[y->ndim - 1] != n || bn->shape[bn->ndim - 2 + d.tb] != k)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cpu matmul: shapes do not match the node");

  evo_cpu_loops lp;
  const int nl[3] = {y->ndim - 2, an->ndim - 2, bn->ndim - 2};
  const int64_t *dims[3] = {y->shape, an->shape, bn->shape};
  evo_cpu_loops_init(&lp, 3, nl, dims);
  const int64_t L = lp.numel, la = evo_shape_numel(nl[1], an->shape), lb = evo_shape_numel(nl[2], bn->shape);

  /* Shared b and a batched without broadcasting ([L.., m, k] contiguous): one [L*m, k] @ [k, n] GEMM. */
  if (lb == 1 && la == L && !d.ta) {
    mm_dims all = d;
    all.m = L * m;
    gemm_all_threads(&all, a, b, c);
    return EVO_STATUS_OK;
  }

  const double flops = 2.0 * (double)m * (double)n * (double)k;
  const int nt = omp_get_max_threads();
  if (L < nt) { /* a few GEMMs: each one on every thread */
    for (int64_t l = 0; l < L; l++)
      gemm_all_threads(&d, a + evo_cpu_loops_off(&lp, 1, l) * m * k, b + evo_cpu_loops_off(&lp, 2, l) * k * n,
                       c + l * m * n);
    return EVO_STATUS_OK;
  }
  /* Many GEMMs (one per population member): one whole GEMM per thread at a time. OpenBLAS runs single-threaded
     inside a parallel region. */
  const int blas = use_blas(m, n, k);
#pragma omp parallel for schedule(static) if (flops * (double)L > PAR_FLOPS)
  for (int64_t l = 0; l < L; l++) {
    const float *al = a + evo_cpu_loops_off(&lp, 1, l) * m * k, *bl = b + evo_cpu_loops_off(&lp, 2, l) * k * n;
    if (blas) blas_gemm(&d, al, bl, c + l * m * n);
    else gemm_block(&d, al, bl, c + l * m * n, 0, m, 0, n);
  }
  return EVO_STATUS_OK;
}
