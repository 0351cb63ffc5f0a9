/* The CUDA emulator's own tests (built only with -DEVOC_CUDA_EMULATE=ON): that block and warp synchronisation
   compute what they do on a GPU, and that what real CUDA refuses is refused (unsafe calls during stream capture,
   copies whose pointers do not match their kind, bad launch configurations, cuBLAS leading dimensions, NCCL
   buffers in host memory and two ranks on one GPU), so that the GPU tests passing here mean something. */
#include <criterion/criterion.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Block sum through warp shuffles, then shared memory across warps: y[block] = sum of its x. */
__global__ void block_sum(const float *x, float *y, int n) {
  __shared__ float part[32];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = i < n ? x[i] : 0.0f;
  for (int m = 16; m >= 1; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.0f;
    for (unsigned w = 0; w < blockDim.x / 32; w++) s += part[w];
    y[blockIdx.x] = s;
  }
}

/* Reverses each block's slice through shared memory: wrong without the barrier. */
__global__ void block_reverse(const int *x, int *y) {
  __shared__ int tile[256];
  const int base = blockIdx.x * blockDim.x;
  tile[threadIdx.x] = x[base + threadIdx.x];
  __syncthreads();
  y[base + threadIdx.x] = tile[blockDim.x - 1 - threadIdx.x];
}

/* y[i] = x[i - 1] (y[0] = x[0]) through shared memory, with the barrier between the store and the load missing:
   right by accident when threads run in index order, wrong in reverse. */
__global__ void racy_shift(const int *x, int *y) {
  __shared__ int t[64];
  __syncthreads(); /* a barrier-using kernel: its threads run as fibers */
  t[threadIdx.x] = x[threadIdx.x];
  y[threadIdx.x] = t[threadIdx.x ? threadIdx.x - 1 : 0];
}

/* Half the threads fill a shared tile, the barrier, then every thread reads its slot: the unwritten half is
   whatever the block's shared memory held, garbage on a GPU. */
__global__ void half_filled(int *y) {
  __shared__ int t[64];
  if (threadIdx.x < 32) t[threadIdx.x] = (int)(blockIdx.x * 100 + threadIdx.x);
  __syncthreads();
  y[blockIdx.x * 64 + threadIdx.x] = t[threadIdx.x];
}

__global__ void add_one(float *x, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) x[i] += 1.0f;
}

static void *dev(size_t n) {
  void *p = NULL;
  cr_assert_eq(cudaMalloc(&p, n), cudaSuccess);
  return p;
}

Test(cuda_emu, block_and_warp_synchronisation_compute_as_on_a_gpu) {
  enum { N = 1000, B = 128 };
  const int blocks = (N + B - 1) / B;
  float hx[N], hy[(N + B - 1) / B];
  for (int i = 0; i < N; i++) hx[i] = (float)(i % 7);
  float *x = (float *)dev(sizeof hx), *y = (float *)dev(sizeof hy);
  cr_assert_eq(cudaMemcpy(x, hx, sizeof hx, cudaMemcpyHostToDevice), cudaSuccess);
  block_sum<<<blocks, B>>>(x, y, N);
  cr_assert_eq(cudaGetLastError(), cudaSuccess);
  cr_assert_eq(cudaMemcpy(hy, y, sizeof hy, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int b = 0; b < blocks; b++) {
    float want = 0.0f;
    for (int i = b * B; i < N && i < (b + 1) * B; i++) want += hx[i];
    cr_assert_float_eq(hy[b], want, 1e-3f, "block %d: %g, want %g", b, hy[b], want);
  }
  int hi[512], ho[512];
  for (int i = 0; i < 512; i++) hi[i] = i;
  int *xi = (int *)dev(sizeof hi), *yi = (int *)dev(sizeof ho);
  cudaMemcpy(xi, hi, sizeof hi, cudaMemcpyHostToDevice);
  block_reverse<<<2, 256>>>(xi, yi);
  cudaMemcpy(ho, yi, sizeof ho, cudaMemcpyDeviceToHost);
  for (int i = 0; i < 512; i++) cr_assert_eq(ho[i], (i / 256) * 256 + 255 - i % 256, "element %d", i);
  cudaFree(x), cudaFree(y), cudaFree(xi), cudaFree(yi);
}

Test(cuda_emu, shared_memory_starts_each_block_as_garbage) {
  int h[2 * 64], *y = (int *)dev(sizeof h);
  for (int launch = 0; launch < 2; launch++) { /* a later block, or launch, does not see an earlier one's values */
    half_filled<<<2, 64>>>(y);
    cr_assert_eq(cudaGetLastError(), cudaSuccess);
    cr_assert_eq(cudaMemcpy(h, y, sizeof h, cudaMemcpyDeviceToHost), cudaSuccess);
    for (int b = 0; b < 2; b++)
      for (int i = 0; i < 64; i++)
        cr_assert_eq(h[b * 64 + i], i < 32 ? b * 100 + i : -1, "launch %d block %d slot %d: %d", launch, b, i,
                     h[b * 64 + i]);
  }
  cudaFree(y);
}

Test(cuda_emu, capture_records_and_graphs_replay) {
  enum { N = 300 };
  cudaStream_t s;
  cr_assert_eq(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  float *x = (float *)dev(N * sizeof(float));
  cr_assert_eq(cudaMemsetAsync(x, 0, N * sizeof(float), s), cudaSuccess);
  cr_assert_eq(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  add_one<<<2, 64, 0, s>>>(x, N);
  add_one<<<2, 64, 0, s>>>(x, N);
  cudaGraph_t g;
  cr_assert_eq(cudaStreamEndCapture(s, &g), cudaSuccess);
  float h[N];
  cudaMemcpy(h, x, sizeof h, cudaMemcpyDeviceToHost);
  cr_assert_eq(h[0], 0.0f, "recorded work ran during the capture");
  cudaGraphExec_t e;
  cr_assert_eq(cudaGraphInstantiate(&e, g, 0), cudaSuccess);
  for (int r = 0; r < 3; r++) cr_assert_eq(cudaGraphLaunch(e, s), cudaSuccess);
  cudaMemcpy(h, x, sizeof h, cudaMemcpyDeviceToHost);
  for (int i = 0; i < N; i++) cr_assert_eq(h[i], 6.0f, "element %d after 3 replays of 2 launches", i);
  cudaGraphExecDestroy(e), cudaGraphDestroy(g), cudaFree(x), cudaStreamDestroy(s);
}

Test(cuda_emu, unsafe_calls_during_capture_are_refused) {
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  float host[4] = {0};
  float *x = (float *)dev(sizeof host);
  void *p = NULL;
  cr_assert_eq(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  cr_assert_eq(cudaMalloc(&p, 64), cudaErrorStreamCaptureUnsupported);
  cudaGraph_t g = NULL;
  cr_assert_eq(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
  cr_assert_null(g);
  (void)cudaGetLastError();
  cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
  cr_assert_eq(cudaMemcpyAsync(host, x, sizeof host, cudaMemcpyDeviceToHost, s), cudaErrorStreamCaptureUnsupported,
               "a copy to pageable host memory cannot be captured");
  cr_assert_eq(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
  cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
  cr_assert_eq(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
  cr_assert_eq(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
  (void)cudaGetLastError();
  cudaFree(x), cudaStreamDestroy(s);
}

Test(cuda_emu, copies_check_pointer_kinds_and_launches_their_configuration) {
  float host[4] = {1, 2, 3, 4}, back[4];
  float *x = (float *)dev(sizeof host);
  cr_assert_eq(cudaMemcpy(back, host, sizeof host, cudaMemcpyHostToDevice), cudaErrorInvalidValue,
               "a host destination in a host-to-device copy");
  cr_assert_eq(cudaMemcpy(x, host, sizeof host + 4, cudaMemcpyHostToDevice), cudaErrorInvalidValue,
               "a copy past the end of the allocation");
  cr_assert_eq(cudaMemcpy(x, host, sizeof host, cudaMemcpyHostToDevice), cudaSuccess);
  (void)cudaGetLastError();
  add_one<<<0, 64>>>(x, 4);
  cr_assert_eq(cudaGetLastError(), cudaErrorInvalidConfiguration);
  add_one<<<1, 2048>>>(x, 4);
  cr_assert_eq(cudaGetLastError(), cudaErrorInvalidConfiguration);
  add_one<<<dim3(1, 70000), 32>>>(x, 4);
  cr_assert_eq(cudaGetLastError(), cudaErrorInvalidConfiguration);
  add_one<<<1, 32>>>(host, 4);
  cr_assert_eq(cudaGetLastError(), cudaErrorIllegalAddress, "a kernel given a host pointer");
  cudaMemcpy(back, x, sizeof back, cudaMemcpyDeviceToHost);
  cr_assert_eq(back[0], 1.0f, "a refused launch ran");
  cr_assert_eq(host[0], 1.0f, "a refused launch ran");
  cudaFree(x);
}

Test(cuda_emu, cublas_gemm_is_column_major_and_checks_leading_dims) {
  cublasHandle_t h;
  cr_assert_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  /* column-major A [2x3], B [3x2]: C = A B [2x2] */
  const float A[6] = {1, 4, 2, 5, 3, 6}, B[6] = {7, 9, 11, 8, 10, 12};
  float *a = (float *)dev(sizeof A), *b = (float *)dev(sizeof B), *c = (float *)dev(4 * sizeof(float));
  cudaMemcpy(a, A, sizeof A, cudaMemcpyHostToDevice);
  cudaMemcpy(b, B, sizeof B, cudaMemcpyHostToDevice);
  const float one = 1.0f, zero = 0.0f;
  cr_assert_eq(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a, CUDA_R_32F, 2, b, CUDA_R_32F, 3, &zero, c,
                            CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               CUBLAS_STATUS_SUCCESS);
  float C[4];
  cudaMemcpy(C, c, sizeof C, cudaMemcpyDeviceToHost);
  const float want[4] = {58, 139, 64, 154};
  for (int i = 0; i < 4; i++) cr_assert_float_eq(C[i], want[i], 1e-4f, "C[%d]", i);
  cr_assert_eq(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a, CUDA_R_32F, 1, b, CUDA_R_32F, 3, &zero, c,
                            CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               CUBLAS_STATUS_INVALID_VALUE, "lda 1 < m 2");
  cr_assert_eq(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, A, CUDA_R_32F, 2, b, CUDA_R_32F, 3, &zero, c,
                            CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               CUBLAS_STATUS_INVALID_VALUE, "a host matrix");
  cublasDestroy(h), cudaFree(a), cudaFree(b), cudaFree(c);
}

Test(cuda_emu, reverse_order_exposes_a_missing_barrier) {
  int hx[64], hy[64];
  int *x = (int *)dev(sizeof hx), *y = (int *)dev(sizeof hy);
  int wrong[2] = {0, 0};
  for (int rev = 0; rev < 2; rev++) {
    if (rev) setenv("EVO_EMU_ORDER", "reverse", 1);
    else unsetenv("EVO_EMU_ORDER");
    /* new values each run: shared memory keeps the last block's (a GPU's holds garbage) */
    for (int i = 0; i < 64; i++) hx[i] = 100 * (rev + 1) + i;
    cudaMemcpy(x, hx, sizeof hx, cudaMemcpyHostToDevice);
    cudaMemset(y, 0, sizeof hy);
    racy_shift<<<1, 64>>>(x, y);
    cudaMemcpy(hy, y, sizeof hy, cudaMemcpyDeviceToHost);
    for (int i = 1; i < 64; i++) wrong[rev] += hy[i] != hx[i - 1];
  }
  unsetenv("EVO_EMU_ORDER");
  cr_assert_eq(wrong[0], 0, "index order: %d wrong", wrong[0]);
  cr_assert_gt(wrong[1], 0, "reverse order did not expose the missing barrier");
  cudaFree(x), cudaFree(y);
}

#ifdef EVOC_EMU_NCCL
#include <nccl.h>
#include <unistd.h>
#include <thread>

/* The emulated NCCL: an in-place allgather and a broadcast across two ranks on two emulated GPUs (each rank a
   thread, as comm_nccl.c runs them), and the refusals real NCCL makes: host buffers, two ranks on one GPU, a
   device that does not exist, an id made by another process. */
Test(cuda_emu, nccl_collectives_and_refusals) {
  setenv("EVO_EMU_DEVICES", "2", 1);
  ncclComm_t c[2];
  const int devs[2] = {0, 1};
  cr_assert_eq(ncclCommInitAll(c, 2, devs), ncclSuccess);
  float out[2][6];
  std::thread t[2];
  for (int r = 0; r < 2; r++)
    t[r] = std::thread([&, r] {
      cudaSetDevice(r);
      float host[6] = {0, 0, 0, 0, 0, 0}, *d = (float *)dev(sizeof host);
      host[3 * r] = 10.0f * r + 1, host[3 * r + 1] = 10.0f * r + 2, host[3 * r + 2] = 10.0f * r + 3;
      cudaMemcpy(d, host, sizeof host, cudaMemcpyHostToDevice);
      ncclResult_t a = ncclAllGather(d + 3 * r, d, 3, ncclFloat32, c[r], 0);
      float b = r ? -1.0f : 42.0f, *db = (float *)dev(sizeof b);
      cudaMemcpy(db, &b, sizeof b, cudaMemcpyHostToDevice);
      ncclResult_t e = ncclBroadcast(db, db, 1, ncclFloat32, 0, c[r], 0);
      cudaMemcpy(out[r], d, sizeof host, cudaMemcpyDeviceToHost);
      cudaMemcpy(&b, db, sizeof b, cudaMemcpyDeviceToHost);
      out[r][0] = a == ncclSuccess && e == ncclSuccess && b == 42.0f ? out[r][0] : -999.0f;
      cudaFree(d), cudaFree(db);
    });
  for (int r = 0; r < 2; r++) t[r].join();
  const float want[6] = {1, 2, 3, 11, 12, 13};
  for (int r = 0; r < 2; r++)
    for (int i = 0; i < 6; i++) cr_assert_eq(out[r][i], want[i], "rank %d, element %d: %g", r, i, out[r][i]);
  float host[4] = {0};
  cr_assert_eq(ncclAllGather(host, host, 2, ncclFloat32, c[0], 0), ncclInvalidArgument, "a host buffer");
  cr_assert(strstr(ncclGetLastError(c[0]), "not device memory"), "%s", ncclGetLastError(c[0]));
  for (int r = 0; r < 2; r++) ncclCommDestroy(c[r]);
  const int same[2] = {1, 1}, missing[1] = {2};
  cr_assert_eq(ncclCommInitAll(c, 2, same), ncclInvalidUsage, "two ranks on one GPU");
  cr_assert_eq(ncclCommInitAll(c, 1, missing), ncclInvalidArgument, "a GPU that does not exist");
  ncclUniqueId id;
  cr_assert_eq(ncclGetUniqueId(&id), ncclSuccess);
  const int64_t other = (int64_t)getpid() + 1;
  memcpy(id.internal, &other, sizeof other);
  cr_assert_eq(ncclCommInitRank(&c[0], 2, id, 0), ncclInvalidUsage, "an id from another process");
}
#endif
