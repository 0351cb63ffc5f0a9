/* MATMUL on CUDA through cuBLAS, fp32 compute (CUBLAS_COMPUTE_32F: no TF32), so results match the CPU up to fp32
   rounding. Row-major C[m,n] = A[m,k] B[k,n] is column-major C^T = B^T A^T: cuBLAS gets (n, m, k) with B first.
   An operand stored transposed (the node's trans flags p.i[0..1], ops.h) is, read column-major, the matrix
   itself: op T with its row length as leading dim.
   Loop dims are those of the CPU kernel (evo_cpu_loops), with size-1 dims dropped and dims that step alike for
   every operand merged. Then:
   - a batched contiguously against a shared b: one GEMM of L*m rows;
   - one loop dim left (equal loop dims, or one side fully broadcast): one strided-batched call, stride 0 for the
     broadcast side;
   - several (a general broadcast such as [P,1] x [1,B]): strided-batched calls along the longest dim when they are
     few, else one pointer-array batched call whose pointers a small kernel writes into scratch.
   No host<->device copies and nothing but ctx->stream, so a plan can be captured into a CUDA Graph. */
#include "cuda_util.cuh"
extern "C" {
#include "../cpu/gemm.h"
}

namespace {

/* cuBLAS takes int sizes and batch counts; long batches go in pieces of this many. */
constexpr int64_t MAX_BATCH = 65535;
/* More strided-batched calls than this and one pointer-array call is cheaper to launch. */
constexpr int64_t MAX_STRIDED_CALLS = 4;

enum mm_kind { MM_NOTHING, MM_ZERO, MM_ROWS, MM_STRIDED, MM_POINTERS };

struct mm_plan {
  int64_t m, n, k, L;
  int ta, tb;                    /* operands stored transposed ([k,m] / [n,k]) */
  int nd;                        /* coalesced loop dims */
  int64_t shape[EVO_MAX_DIMS];
  int64_t st[3][EVO_MAX_DIMS];   /* loop-index steps of y, a, b along each dim (0 = broadcast) */
  int bdim;                      /* MM_STRIDED: the dim each call batches */
  mm_kind kind;
};

/* Validates the node against its inputs (as the CPU kernel, plus loop-dim compatibility) and plans the calls.
   Returns 0 when the shapes are inconsistent. */
int mm_plan_init(mm_plan *p, const evo_node_t *y, const evo_node_t *an, const evo_node_t *bn) {
  memset(p, 0, sizeof *p);
  if (an->ndim < 2 || bn->ndim < 2 || y->ndim < 2) return 0;
  p->ta = y->p.i[0] != 0, p->tb = y->p.i[1] != 0;
  p->m = an->shape[an->ndim - 2 + p->ta], p->k = an->shape[an->ndim - 1 - p->ta];
  p->n = bn->shape[bn->ndim - 1 - p->tb];
  if (y->shape[y->ndim - 2] != p->m || y->shape[y->ndim - 1] != p->n || bn->shape[bn->ndim - 2 + p->tb] != p->k)
    return 0;
  evo_cpu_loops lp;
  const int nl[3] = {y->ndim - 2, an->ndim - 2, bn->ndim - 2};
  const int64_t *dims[3] = {y->shape, an->shape, bn->shape};
  evo_cpu_loops_init(&lp, 3, nl, dims);
  /* The output's loop dims must be the broadcast of the inputs'; each input dim 1 or the broadcast size. */
  if (nl[0] != lp.nd) return 0;
  for (int o = 0; o < 3; o++)
    for (int d = 0; d < nl[o]; d++) {
      const int64_t s = dims[o][d], full = lp.shape[d + lp.nd - nl[o]];
      if (o == 0 ? s != full : s != 1 && s != full) return 0;
    }
  p->L = lp.numel;
  p->kind = p->L == 0 || p->m == 0 || p->n == 0 ? MM_NOTHING : p->k == 0 ? MM_ZERO : MM_STRIDED;
  if (p->kind != MM_STRIDED) return 1;
  if (p->m > INT32_MAX || p->n > INT32_MAX || p->k > INT32_MAX) return 0;

  /* Coalesce: drop size-1 dims, merge a dim into the previous kept one when every operand steps through both as
     through one. */
  for (int d = 0; d < lp.nd; d++) {
    if (lp.shape[d] == 1) continue;
    const int q = p->nd - 1;
    int merge = q >= 0;
    for (int o = 0; o < 3 && merge; o++) merge = p->st[o][q] == lp.stride[o][d] * lp.shape[d];
    if (merge) {
      p->shape[q] *= lp.shape[d];
      for (int o = 0; o < 3; o++) p->st[o][q] = lp.stride[o][d];
    } else {
      p->shape[p->nd] = lp.shape[d];
      for (int o = 0; o < 3; o++) p->st[o][p->nd] = lp.stride[o][d];
      p->nd++;
    }
  }
  const int64_t la = evo_shape_numel(nl[1], an->shape), lb = evo_shape_numel(nl[2], bn->shape);
  if (lb == 1 && la == p->L && !p->ta && p->L * p->m <= INT32_MAX) {
    p->kind = MM_ROWS;
    return 1;
  }
  if (p->nd == 0) { /* a single GEMM: one dim of size 1 */
    p->nd = 1, p->shape[0] = 1;
    return 1;
  }
  for (int d = 1; d < p->nd; d++)
    if (p->shape[d] > p->shape[p->bdim]) p->bdim = d;
  p->kind = p->L / p->shape[p->bdim] <= MAX_STRIDED_CALLS ? MM_STRIDED : MM_POINTERS;
  return 1;
}

size_t pointer_bytes(const mm_plan *p) { return p->kind == MM_POINTERS ? 3 * sizeof(void *) * (size_t)p->L : 0; }

const float kOne = 1.0f, kZero = 0.0f;

/* y[i] = op(a[i]) @ op(b[i]) for i < batch, matrices sa, sb, sc floats apart (0 = the same input matrix for every
   i; an output stride of 0 only comes with batch 1). */
evo_status gemm_strided(evo_cuda_ctx *c, int ta, int tb, int64_t rows, int64_t n, int64_t k, const float *a,
                        int64_t sa, const float *b, int64_t sb, float *y, int64_t sc, int64_t batch) {
  if (sc == 0) sc = rows * n;
  for (int64_t i = 0; i < batch; i += MAX_BATCH) {
    const int nb = (int)(batch - i < MAX_BATCH ? batch - i : MAX_BATCH);
    const cublasStatus_t s = cublasGemmStridedBatchedEx(
        c->cublas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)rows, (int)k, &kOne,
        b + i * sb, CUDA_R_32F, (int)(tb ? k : n), sb, a + i * sa, CUDA_R_32F, (int)(ta ? rows : k), sa, &kZero,
        y + i * sc, CUDA_R_32F, (int)n, sc, nb, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) return evo_cublas_check(s, "matmul: cublasGemmStridedBatchedEx");
  }
  return EVO_STATUS_OK;
}

/* The loop dims as a kernel parameter. */
struct mm_loops {
  int nd;
  int64_t shape[EVO_MAX_DIMS];
  int64_t st[3][EVO_MAX_DIMS];
};

/* pa[l], pb[l], pc[l]: the matrices of flat loop index l. */
__global__ void k_mm_pointers(mm_loops lp, const float *a, const float *b, float *c, int64_t mk, int64_t kn,
                              int64_t mn, int64_t L, const float **pa, const float **pb, float **pc) {
  EVO_CUDA_FOR(int64_t, l, L) {
    int64_t rest = l, oa = 0, ob = 0, oc = 0;
    for (int d = lp.nd - 1; d >= 0; d--) {
      const int64_t i = rest % lp.shape[d];
      rest /= lp.shape[d];
      oc += i * lp.st[0][d], oa += i * lp.st[1][d], ob += i * lp.st[2][d];
    }
    pa[l] = a + oa * mk, pb[l] = b + ob * kn, pc[l] = c + oc * mn;
  }
}

evo_status gemm_pointers(evo_cuda_ctx *c, const mm_plan *p, const float *a, const float *b, float *y,
                         void *scratch) {
  const float **pa = (const float **)scratch, **pb = pa + p->L;
  float **pc = (float **)(pb + p->L);
  mm_loops lp;
  lp.nd = p->nd;
  for (int d = 0; d < p->nd; d++) {
    lp.shape[d] = p->shape[d];
    for (int o = 0; o < 3; o++) lp.st[o][d] = p->st[o][d];
  }
  k_mm_pointers<<<evo_cuda_grid(c, p->L, EVO_CUDA_BLOCK), EVO_CUDA_BLOCK, 0, c->stream>>>(
      lp, a, b, y, p->m * p->k, p->k * p->n, p->m * p->n, p->L, pa, pb, pc);
  EVO_CUDA_TRY_LAUNCH("matmul: pointer kernel");
  for (int64_t i = 0; i < p->L; i += MAX_BATCH) {
    const int nb = (int)(p->L - i < MAX_BATCH ? p->L - i : MAX_BATCH);
    const cublasStatus_t s = cublasGemmBatchedEx(
        c->cublas, p->tb ? CUBLAS_OP_T : CUBLAS_OP_N, p->ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)p->n, (int)p->m,
        (int)p->k, &kOne, (const void *const *)(pb + i), CUDA_R_32F, (int)(p->tb ? p->k : p->n),
        (const void *const *)(pa + i), CUDA_R_32F, (int)(p->ta ? p->m : p->k), &kZero, (void *const *)(pc + i),
        CUDA_R_32F, (int)p->n, nb, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) return evo_cublas_check(s, "matmul: cublasGemmBatchedEx");
  }
  return EVO_STATUS_OK;
}

/* One strided-batched call along p->bdim per position of the other dims. */
evo_status gemm_loops(evo_cuda_ctx *c, const mm_plan *p, const float *a, const float *b, float *y) {
  const int64_t mk = p->m * p->k, kn = p->k * p->n, mn = p->m * p->n, bd = p->bdim;
  const int64_t calls = p->L / p->shape[bd];
  for (int64_t t = 0; t < calls; t++) {
    int64_t rest = t, oa = 0, ob = 0, oc = 0;
    for (int d = p->nd - 1; d >= 0; d--) {
      if (d == bd) continue;
      const int64_t i = rest % p->shape[d];
      rest /= p->shape[d];
      oc += i * p->st[0][d], oa += i * p->st[1][d], ob += i * p->st[2][d];
    }
    const evo_status st = gemm_strided(c, p->ta, p->tb, p->m, p->n, p->k, a + oa * mk, p->st[1][bd] * mk,
                                       b + ob * kn, p->st[2][bd] * kn, y + oc * mn, p->st[0][bd] * mn, p->shape[bd]);
    if (st != EVO_STATUS_OK) return st;
  }
  return EVO_STATUS_OK;
}

} // namespace

extern "C" size_t evo_cuda_matmul_scratch(const evo_node_t *node, const evo_node_t *const *in) {
  mm_plan p;
  if (!mm_plan_init(&p, node, in[0], in[1])) return 0;
  return pointer_bytes(&p);
}

extern "C" evo_status evo_cuda_matmul(evo_cuda_ctx *c, const evo_kernel_args *args) {
  const evo_node_t *y = args->node, *an = args->in[0], *bn = args->in[1];
  if (y->dtype != EVO_F32 || an->dtype != EVO_F32 || bn->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda matmul: f32 only");
  mm_plan p;
  if (!mm_plan_init(&p, y, an, bn))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cuda matmul: shapes do not match the node");
  const float *a = (const float *)args->src[0], *b = (const float *)args->src[1];
  float *out = (float *)args->dst;
  /* The handle is bound to c->stream once, at backend creation (cuda_backend.c): cublasSetStream here would also
     drop the workspace that lets GEMMs be recorded into graphs. */
  cudaStream_t s = NULL;
  const cublasStatus_t cs = cublasGetStream(c->cublas, &s);
  if (cs != CUBLAS_STATUS_SUCCESS) return evo_cublas_check(cs, "matmul: cublasGetStream");
  if (s != c->stream) return evo_error(EVO_STATUS_INTERNAL, "cuda matmul: the cuBLAS handle left the backend's stream");
  switch (p.kind) {
  case MM_NOTHING: return EVO_STATUS_OK;
  case MM_ZERO:
    return evo_cuda_check(cudaMemsetAsync(out, 0, sizeof(float) * (size_t)(p.L * p.m * p.n), c->stream),
                          "matmul: cudaMemsetAsync");
  case MM_ROWS: return gemm_strided(c, 0, p.tb, p.L * p.m, p.n, p.k, a, 0, b, 0, out, 0, 1);
  case MM_STRIDED: return gemm_loops(c, &p, a, b, out);
  case MM_POINTERS:
    if (!args->scratch || args->scratch_bytes < pointer_bytes(&p))
      return evo_error(EVO_STATUS_INTERNAL, "cuda matmul: scratch of %zu bytes, needs %zu", args->scratch_bytes,
                       pointer_bytes(&p));
    return gemm_pointers(c, &p, a, b, out, args->scratch);
  }
  return evo_error(EVO_STATUS_INTERNAL, "cuda matmul: bad plan");
}
