/* The simulation's device-path kernels (contracts in sim_cuda.h): small per-episode kernels and fixed-order block
   reductions, so a rollout on the GPU is reproducible run to run. */
#include <cuda_runtime.h>
#include "sim_cuda.h"

enum { EVO_SIM_BLOCK = 256 }; /* a power of two: the reductions halve it */

static unsigned evo_sim_blocks(int64_t n) { return (unsigned)((n + EVO_SIM_BLOCK - 1) / EVO_SIM_BLOCK); }

static evo_status evo_sim_cuda_check(cudaError_t e, const char *what) {
  if (e == cudaSuccess) return EVO_STATUS_OK;
  (void)cudaGetLastError(); /* a non-sticky error must not be reported again by the next launch check */
  return evo_error(EVO_STATUS_BACKEND, "sim: cuda %s: %s", what, cudaGetErrorString(e));
}

static evo_status evo_sim_launched(const char *kernel) { return evo_sim_cuda_check(cudaGetLastError(), kernel); }

/* Sum of v over the block, in a fixed order; every thread gets it. */
template <typename T> __device__ T evo_sim_block_sum(T v, T *sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int h = EVO_SIM_BLOCK / 2; h > 0; h /= 2) {
    if ((int)threadIdx.x < h) sh[threadIdx.x] += sh[threadIdx.x + h];
    __syncthreads();
  }
  T r = sh[0];
  __syncthreads();
  return r;
}

__global__ void evo_sim_begin_kernel(int64_t E, int64_t n_valid, uint8_t *alive, double *ret, int32_t *steps) {
  int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= E) return;
  alive[e] = e < n_valid;
  ret[e] = 0.0;
  steps[e] = 0;
}

/* One block per member, its threads over the observation components; the same arithmetic as sim_norm.c. Every
   thread reads the member's count before thread 0 updates it. */
__global__ void evo_sim_norm_kernel(const float *obs, const uint8_t *alive, int reps, bool shared, int64_t m,
                                    double *acc) {
  const int64_t i = blockIdx.x, r0 = shared ? 0 : i * reps;
  double *a = acc + i * (1 + 2 * m);
  const double n0 = a[0];
  double k = 0.0;
  for (int64_t e = r0; e < r0 + reps; e++) k += alive[e] ? 1.0 : 0.0;
  __syncthreads();
  if (k == 0.0) return;
  const double n = n0 + k;
  for (int64_t j = threadIdx.x; j < m; j += blockDim.x) {
    double mu = 0.0, m2 = 0.0;
    for (int64_t e = r0; e < r0 + reps; e++)
      if (alive[e]) mu += obs[e * m + j];
    mu /= k;
    for (int64_t e = r0; e < r0 + reps; e++)
      if (alive[e]) {
        double d = obs[e * m + j] - mu;
        m2 += d * d;
      }
    double d = mu - a[1 + j];
    a[1 + j] += d * k / n;
    a[1 + m + j] += m2 + d * d * n0 * k / n;
  }
  if (threadIdx.x == 0) a[0] = n;
}

__global__ void evo_sim_normalize_kernel(float *obs, int64_t total, int64_t m, const float *use) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  int64_t j = i % m;
  float v = (obs[i] - use[j]) / use[m + j];
  obs[i] = v < -5.0f ? -5.0f : v > 5.0f ? 5.0f : v;
}

__global__ void evo_sim_actions_kernel(float *act, int64_t E, int64_t k, int64_t n_valid, const uint8_t *alive,
                                       uint8_t *bad, int reps, int32_t *dact) {
  int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= E) return;
  float *a = act + e * k;
  bool finite = true;
  for (int64_t j = 0; j < k; j++) finite = finite && isfinite(a[j]);
  if (!finite) {
    if (e < n_valid && alive[e]) bad[e / reps] = 1; /* racing writers all store 1 */
    for (int64_t j = 0; j < k; j++) a[j] = 0.0f;
  }
  if (!dact) return;
  int32_t best = 0;
  for (int64_t j = 1; j < k; j++)
    if (a[j] > a[best]) best = (int32_t)j;
  dact[e] = best;
}

__global__ void evo_sim_mask_kernel(const float *reward, const uint8_t *done, uint8_t *alive, double *ret,
                                    int32_t *steps, uint8_t *bad, int64_t n_valid, int reps, float *state0,
                                    float *state1, int64_t state_size) {
  int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= n_valid || !alive[e]) return;
  float r = reward[e];
  if (!isfinite(r)) bad[e / reps] = 1;
  ret[e] += r;
  steps[e] += 1;
  if (!done[e]) return;
  alive[e] = 0;
  for (int64_t j = 0; j < state_size; j++) {
    if (state0) state0[e * state_size + j] = 0.0f;
    if (state1) state1[e * state_size + j] = 0.0f;
  }
}

__global__ void evo_sim_count_kernel(const uint8_t *alive, int64_t n, int32_t *out) {
  __shared__ int32_t sh[EVO_SIM_BLOCK];
  int32_t c = 0;
  for (int64_t e = threadIdx.x; e < n; e += EVO_SIM_BLOCK) c += alive[e] != 0;
  c = evo_sim_block_sum(c, sh);
  if (threadIdx.x == 0) out[0] = c;
}

extern "C" evo_status evo_sim_cuda_memset0(void *stream, void *p, size_t nbytes) {
  return evo_sim_cuda_check(cudaMemsetAsync(p, 0, nbytes, (cudaStream_t)stream), "cudaMemsetAsync");
}

extern "C" evo_status evo_sim_cuda_copy(void *stream, void *dst, const void *src, size_t nbytes) {
  return evo_sim_cuda_check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, (cudaStream_t)stream),
                            "cudaMemcpyAsync");
}

extern "C" evo_status evo_sim_cuda_begin(void *stream, int64_t E, int64_t n_valid, uint8_t *alive, double *ret,
                                         int32_t *steps) {
  evo_sim_begin_kernel<<<evo_sim_blocks(E), EVO_SIM_BLOCK, 0, (cudaStream_t)stream>>>(E, n_valid, alive, ret, steps);
  return evo_sim_launched("rollout begin kernel");
}

extern "C" evo_status evo_sim_cuda_norm_accumulate(void *stream, const float *obs, const uint8_t *alive,
                                                   int64_t members, int reps, bool shared, int64_t m, double *acc) {
  if (members < 1) return EVO_STATUS_OK;
  const unsigned threads = m < 128 ? (unsigned)((m + 31) / 32 * 32) : 128u;
  evo_sim_norm_kernel<<<(unsigned)members, threads, 0, (cudaStream_t)stream>>>(obs, alive, reps, shared, m, acc);
  return evo_sim_launched("normaliser statistics kernel");
}

extern "C" evo_status evo_sim_cuda_normalize(void *stream, float *obs, int64_t rows, int64_t m, const float *use) {
  evo_sim_normalize_kernel<<<evo_sim_blocks(rows * m), EVO_SIM_BLOCK, 0, (cudaStream_t)stream>>>(obs, rows * m, m,
                                                                                                   use);
  return evo_sim_launched("normalize kernel");
}

extern "C" evo_status evo_sim_cuda_actions(void *stream, float *act, int64_t E, int64_t k, int64_t n_valid,
                                           const uint8_t *alive, uint8_t *bad, int reps, int32_t *dact) {
  evo_sim_actions_kernel<<<evo_sim_blocks(E), EVO_SIM_BLOCK, 0, (cudaStream_t)stream>>>(act, E, k, n_valid, alive,
                                                                                          bad, reps, dact);
  return evo_sim_launched("actions kernel");
}

extern "C" evo_status evo_sim_cuda_mask(void *stream, const float *reward, const uint8_t *done, uint8_t *alive,
                                        double *ret, int32_t *steps, uint8_t *bad, int64_t n_valid, int reps,
                                        float *state0, float *state1, int64_t state_size) {
  evo_sim_mask_kernel<<<evo_sim_blocks(n_valid), EVO_SIM_BLOCK, 0, (cudaStream_t)stream>>>(
      reward, done, alive, ret, steps, bad, n_valid, reps, state0, state1, state_size);
  return evo_sim_launched("mask kernel");
}

extern "C" evo_status evo_sim_cuda_count_alive(void *stream, const uint8_t *alive, int64_t n, int32_t *out) {
  evo_sim_count_kernel<<<1, EVO_SIM_BLOCK, 0, (cudaStream_t)stream>>>(alive, n, out);
  return evo_sim_launched("alive count kernel");
}

/* One block per row; any non-finite value flags it. */
__global__ void evo_sim_nonfinite_kernel(const float *p, int64_t cols, uint8_t *bad) {
  __shared__ int sh[EVO_SIM_BLOCK];
  const float *row = p + (int64_t)blockIdx.x * cols;
  int any = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) any |= !isfinite(row[j]);
  any = evo_sim_block_sum(any, sh);
  if (threadIdx.x == 0) bad[blockIdx.x] = any != 0;
}

extern "C" evo_status evo_sim_cuda_rows_nonfinite(void *stream, const float *p, int64_t rows, int64_t cols,
                                                  uint8_t *bad) {
  if (rows < 1) return EVO_STATUS_OK;
  evo_sim_nonfinite_kernel<<<(unsigned)rows, EVO_SIM_BLOCK, 0, (cudaStream_t)stream>>>(p, cols, bad);
  return evo_sim_launched("evo_sim_nonfinite_kernel");
}
