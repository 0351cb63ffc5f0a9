/* The emulator's cuBLAS: the handle calls and the fp32 GEMMs evoc makes, column-major as cuBLAS defines them,
   with cuBLAS's argument checks (a wrong leading dimension is CUBLAS_STATUS_INVALID_VALUE, not a wrong answer).
   GEMMs are stream work like a kernel: run at once, or recorded while the stream captures. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cublas_v2.h>
#include "emu_rt.h"

struct cublasContext {
  cudaStream_t stream;
  void *workspace;
  size_t ws_bytes;
  cublasMath_t math;
};

namespace {

using evo_emu::op;

bool bad_type(cudaDataType t) { return t != CUDA_R_32F; }

/* One C = alpha op(A) op(B) + beta C, column-major, accumulated in float. Like cuBLAS's kernels (FMAs, k split
   over parallel partial sums), and unlike a sequential dot product, it rounds differently from the CPU's GEMM:
   a test that wants the host's bits from a device matmul fails here as it would on a GPU. */
void gemm1(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc) {
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++) {
      float acc[2] = {0.0f, 0.0f};
      for (int l = 0; l < k; l++) {
        const float a = ta == CUBLAS_OP_N ? A[i + (size_t)l * lda] : A[l + (size_t)i * lda];
        const float b = tb == CUBLAS_OP_N ? B[l + (size_t)j * ldb] : B[j + (size_t)l * ldb];
        acc[l & 1] = fmaf(a, b, acc[l & 1]);
      }
      const float sum = acc[0] + acc[1];
      float *c = &C[i + (size_t)j * ldc];
      *c = beta == 0.0f ? alpha * sum : alpha * sum + beta * *c; /* beta = 0: C is not read (may hold NaN) */
    }
}

cublasStatus_t check_dims(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda, int ldb,
                          int ldc) {
  const bool ok = (ta == CUBLAS_OP_N || ta == CUBLAS_OP_T) && (tb == CUBLAS_OP_N || tb == CUBLAS_OP_T) && m >= 0 &&
                  n >= 0 && k >= 0 && lda >= (ta == CUBLAS_OP_N ? (m > 1 ? m : 1) : (k > 1 ? k : 1)) &&
                  ldb >= (tb == CUBLAS_OP_N ? (k > 1 ? k : 1) : (n > 1 ? n : 1)) && ldc >= (m > 1 ? m : 1);
  if (!ok)
    fprintf(stderr, "cuda emulator: cublas gemm refused: ta %d tb %d m %d n %d k %d lda %d ldb %d ldc %d\n", (int)ta,
            (int)tb, m, n, k, lda, ldb, ldc);
  return ok ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

/* Every matrix a GEMM touches must be device memory. */
bool on_device(const void *p, size_t rows, size_t cols, size_t ld) {
  if (!rows || !cols) return true;
  return evo_emu::is_device_ptr(p, ((cols - 1) * ld + rows) * sizeof(float));
}

cublasStatus_t submit(cublasHandle_t h, std::function<cudaError_t()> f) {
  op o;
  o.kind = evo_emu::OP_GEMM;
  o.run = std::move(f);
  return evo_emu::enqueue(h->stream, std::move(o)) == cudaSuccess ? CUBLAS_STATUS_SUCCESS
                                                                  : CUBLAS_STATUS_EXECUTION_FAILED;
}

cublasStatus_t batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                       const void *alpha, const void *const *Ap, const void *A, cudaDataType at, int lda,
                       long long sa, const void *const *Bp, const void *B, cudaDataType bt, int ldb, long long sb,
                       const void *beta, void *const *Cp, void *C, cudaDataType ct, int ldc, long long sc, int batch,
                       cublasComputeType_t comp) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bad_type(at) || bad_type(bt) || bad_type(ct) ||
      (comp != CUBLAS_COMPUTE_32F && comp != CUBLAS_COMPUTE_32F_FAST_TF32))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  cublasStatus_t s = check_dims(ta, tb, m, n, k, lda, ldb, ldc);
  if (s != CUBLAS_STATUS_SUCCESS || batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (!m || !n || !batch) return CUBLAS_STATUS_SUCCESS;
  const float al = *(const float *)alpha, be = *(const float *)beta;
  const size_t ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
  const size_t br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
  if (Ap && !evo_emu::is_device_ptr(Ap, 0)) return CUBLAS_STATUS_INVALID_VALUE;
  if (!Ap)
    for (int i = 0; i < batch; i++)
      if ((k && (!on_device((const float *)A + i * sa, ar, ac, lda) ||
                 !on_device((const float *)B + i * sb, br, bc, ldb))) ||
          !on_device((float *)C + i * sc, m, n, ldc)) {
        fprintf(stderr, "cuda emulator: cublas gemm batch %d reads or writes outside device memory\n", i);
        return CUBLAS_STATUS_INVALID_VALUE;
      }
  return submit(h, [=]() {
    for (int i = 0; i < batch; i++) {
      const float *a = Ap ? (const float *)Ap[i] : (const float *)A + i * sa;
      const float *b = Bp ? (const float *)Bp[i] : (const float *)B + i * sb;
      float *c = Cp ? (float *)Cp[i] : (float *)C + i * sc;
      if (Ap && ((k && (!on_device(a, ar, ac, lda) || !on_device(b, br, bc, ldb))) || !on_device(c, m, n, ldc))) {
        fprintf(stderr, "cuda emulator: cublasGemmBatchedEx matrix %d is not device memory\n", i);
        return cudaErrorIllegalAddress;
      }
      gemm1(ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc);
    }
    return cudaSuccess;
  });
}

} // namespace

extern "C" {

cublasStatus_t cublasCreate(cublasHandle_t *h) {
  *h = new cublasContext{nullptr, nullptr, 0, CUBLAS_DEFAULT_MATH};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->stream = s;
  h->workspace = nullptr, h->ws_bytes = 0; /* as documented: back to cuBLAS's own pool */
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t *s) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  *s = h->stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t n) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (n && !evo_emu::is_device_ptr(ws, n)) return CUBLAS_STATUS_INVALID_VALUE;
  h->workspace = ws, h->ws_bytes = n;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->math = m;
  return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t s) {
  switch (s) {
  case CUBLAS_STATUS_SUCCESS: return "success";
  case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
  case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
  default: return "cublas error";
  }
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B,
                            cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType ct, int ldc,
                            cublasComputeType_t comp, cublasGemmAlgo_t algo) {
  (void)algo;
  return batched(h, ta, tb, m, n, k, alpha, nullptr, A, at, lda, 0, nullptr, B, bt, ldb, 0, beta, nullptr, C, ct,
                 ldc, 0, 1, comp);
}
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                          int k, const void *alpha, const void *A, cudaDataType at, int lda,
                                          long long sa, const void *B, cudaDataType bt, int ldb, long long sb,
                                          const void *beta, void *C, cudaDataType ct, int ldc, long long sc,
                                          int batch, cublasComputeType_t comp, cublasGemmAlgo_t algo) {
  (void)algo;
  return batched(h, ta, tb, m, n, k, alpha, nullptr, A, at, lda, sa, nullptr, B, bt, ldb, sb, beta, nullptr, C, ct,
                 ldc, sc, batch, comp);
}
cublasStatus_t cublasGemmBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                   int k, const void *alpha, const void *const Aarray[], cudaDataType at, int lda,
                                   const void *const Barray[], cudaDataType bt, int ldb, const void *beta,
                                   void *const Carray[], cudaDataType ct, int ldc, int batch,
                                   cublasComputeType_t comp, cublasGemmAlgo_t algo) {
  (void)algo;
  return batched(h, ta, tb, m, n, k, alpha, Aarray, nullptr, at, lda, 0, Barray, nullptr, bt, ldb, 0, beta, Carray,
                 nullptr, ct, ldc, 0, batch, comp);
}

} // extern "C"
