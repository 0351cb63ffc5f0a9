/* The antithetic strategies' kernels (contracts in antithetic_cuda.h). A thread owns one Philox block, i.e. four
   consecutive coordinates, as algos/normals.c generates them: ask spreads threads over (pair, block); the sums give
   each thread its block's coordinates and walk the directions in order, as the host loop does, so no reduction
   reorders the additions. Built with --fmad=false (CMakeLists.txt): a contracted a*b+c would round differently
   from the host. */
#include <cuda_runtime.h>
#include "antithetic_cuda.h"
#include "normal_math.h"
#include "rng_math.h"

enum { EVO_ANTI_CUDA_BLOCK = 128 };

static evo_status evo_anti_cuda_launched(const char *kernel) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return EVO_STATUS_OK;
  return evo_error(EVO_STATUS_BACKEND, "algo: cuda %s: %s", kernel, cudaGetErrorString(e));
}

/* Normals 4b .. 4b+3 of key's stream (normal_group in algos/normals.c). */
static __device__ void evo_anti_normals4(const uint32_t *key, uint64_t b, float z[4]) {
  const evo_philox_block x = evo_rng_block(key[0], key[1], b);
  evo_nm_pair(x.w[0], x.w[1], &z[0], &z[1]);
  evo_nm_pair(x.w[2], x.w[3], &z[2], &z[3]);
}

__global__ void evo_anti_ask_kernel(const uint32_t *keys, const float *mean, const double *stdev, double sigma,
                                    int64_t n, int begin, int end, float *pop) {
  const int64_t nb = (n + 3) / 4, k0 = begin / 2;
  const int64_t pairs = (end + 1) / 2 - k0, total = pairs * nb;
  for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t kk = t / nb, b = t % nb, k = k0 + kk;
    float z[4];
    evo_anti_normals4(keys + 2 * kk, (uint64_t)b, z);
    for (int64_t r = 2 * k; r <= 2 * k + 1; r++) {
      if (r < begin || r >= end) continue;
      const double sign = (r & 1) ? -1.0 : 1.0;
      float *row = pop + (r - begin) * n;
      for (int j = 0; j < 4 && 4 * b + j < n; j++) {
        const int64_t i = 4 * b + j;
        row[i] = (float)(mean[i] + sign * ((stdev ? stdev[i] : sigma) * z[j]));
      }
    }
  }
}

__global__ void evo_anti_ask_plain_kernel(const uint32_t *keys, const double *mean, const double *sigma, int64_t n,
                                          int rows, float *pop) {
  const int64_t nb = (n + 3) / 4, total = (int64_t)rows * nb;
  for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = t / nb, b = t % nb;
    float z[4];
    evo_anti_normals4(keys + 2 * r, (uint64_t)b, z);
    float *row = pop + r * n;
    for (int j = 0; j < 4 && 4 * b + j < n; j++) {
      const int64_t i = 4 * b + j;
      row[i] = (float)(mean[i] + sigma[i] * z[j]);
    }
  }
}

__global__ void evo_anti_sums_kernel(const uint32_t *keys, int nd, const double *h, const double *c, bool skip_zero,
                                     int64_t n, double *sc, double *ss) {
  const int64_t nb = (n + 3) / 4;
  for (int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; b < nb; b += (int64_t)gridDim.x * blockDim.x) {
    double a[4] = {0, 0, 0, 0}, q[4] = {0, 0, 0, 0};
    for (int t = 0; t < nd; t++) {
      if ((!c || skip_zero) && h[t] == 0) continue; /* adds exactly 0 on the host, which skips it too */
      float z[4];
      evo_anti_normals4(keys + 2 * t, (uint64_t)b, z);
      for (int j = 0; j < 4; j++) {
        a[j] += h[t] * z[j];
        if (c) q[j] += c[t] * ((double)z[j] * z[j] - 1);
      }
    }
    for (int j = 0; j < 4 && 4 * b + j < n; j++) {
      sc[4 * b + j] = a[j];
      if (c) ss[4 * b + j] = q[j];
    }
  }
}

static unsigned evo_anti_cuda_grid(int64_t threads) {
  const int64_t g = (threads + EVO_ANTI_CUDA_BLOCK - 1) / EVO_ANTI_CUDA_BLOCK;
  return (unsigned)(g < 65535 ? (g > 0 ? g : 1) : 65535); /* grid-stride loops cover the rest */
}

extern "C" evo_status evo_anti_cuda_ask(void *stream, const uint32_t *keys, const float *mean, const double *stdev,
                                        double sigma, int64_t n, int begin, int end, float *pop) {
  const int64_t threads = (int64_t)((end + 1) / 2 - begin / 2) * ((n + 3) / 4);
  evo_anti_ask_kernel<<<evo_anti_cuda_grid(threads), EVO_ANTI_CUDA_BLOCK, 0, (cudaStream_t)stream>>>(
      keys, mean, stdev, sigma, n, begin, end, pop);
  return evo_anti_cuda_launched("evo_anti_ask_kernel");
}

extern "C" evo_status evo_anti_cuda_ask_plain(void *stream, const uint32_t *keys, const double *mean,
                                              const double *sigma, int64_t n, int begin, int end, float *pop) {
  evo_anti_ask_plain_kernel<<<evo_anti_cuda_grid((int64_t)(end - begin) * ((n + 3) / 4)), EVO_ANTI_CUDA_BLOCK, 0,
                              (cudaStream_t)stream>>>(keys, mean, sigma, n, end - begin, pop);
  return evo_anti_cuda_launched("evo_anti_ask_plain_kernel");
}

extern "C" evo_status evo_anti_cuda_sums(void *stream, const uint32_t *keys, int nd, const double *h,
                                         const double *c, bool skip_zero, int64_t n, double *sc, double *ss) {
  evo_anti_sums_kernel<<<evo_anti_cuda_grid((n + 3) / 4), EVO_ANTI_CUDA_BLOCK, 0, (cudaStream_t)stream>>>(
      keys, nd, h, c, skip_zero, n, sc, ss);
  return evo_anti_cuda_launched("evo_anti_sums_kernel");
}
