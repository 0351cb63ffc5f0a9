/* The antithetic strategies' kernels (contracts in antithetic_cuda.h). A thread owns one Philox block, i.e. four
   consecutive coordinates, as algos/normals.c generates them: ask spreads threads over (pair, block); the sums give
   each thread its block's coordinates and one group of directions (anti_order.h), walked in order as the host loop
   walks them, and a second kernel adds the groups' sums in group order, so nothing reorders the additions. Built
   with --fmad=false (CMakeLists.txt): a contracted a*b+c would round differently from the host. */
#include <cuda_runtime.h>
#include "anti_order.h"
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

/* Thread (quad b, group g): the group's sums of coordinates 4b .. 4b+3 from zero, into part (+ g n), or with a
   single group straight into sc and ss as 0 + sum (what the host adds it to). */
__global__ void evo_anti_sums_kernel(const uint32_t *keys, int nd, int gsize, const double *h, const double *c,
                                     bool skip_zero, int64_t n, double *pc, double *ps, bool single) {
  const int64_t nb = (n + 3) / 4, total = nb * ((nd + gsize - 1) / gsize);
  for (int64_t u = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; u < total; u += (int64_t)gridDim.x * blockDim.x) {
    const int64_t b = u % nb, g = u / nb;
    const int t0 = (int)g * gsize, t1 = t0 + gsize < nd ? t0 + gsize : nd;
    double a[4] = {0, 0, 0, 0}, q[4] = {0, 0, 0, 0};
    for (int t = t0; t < t1; t++) {
      if ((!c || skip_zero) && h[t] == 0) continue; /* adds exactly 0 on the host, which skips it too */
      float z[4];
      evo_anti_normals4(keys + 2 * t, (uint64_t)b, z);
      for (int j = 0; j < 4; j++) {
        a[j] += h[t] * z[j];
        if (c) q[j] += c[t] * ((double)z[j] * z[j] - 1);
      }
    }
    const int64_t off = single ? 0 : g * n;
    for (int j = 0; j < 4 && 4 * b + j < n; j++) {
      pc[off + 4 * b + j] = single ? 0.0 + a[j] : a[j];
      if (c) ps[off + 4 * b + j] = single ? 0.0 + q[j] : q[j];
    }
  }
}

/* sc[i] = 0 + part[0][i] + part[1][i] + ..., in group order (as the host adds them). */
__global__ void evo_anti_combine_kernel(const double *pc, const double *ps, int groups, int64_t n, double *sc,
                                        double *ss) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    double a = 0, q = 0;
    for (int g = 0; g < groups; g++) {
      a += pc[g * n + i];
      if (ps) q += ps[g * n + i];
    }
    sc[i] = a;
    if (ps) ss[i] = q;
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
                                         const double *c, bool skip_zero, int64_t n, double *sc, double *ss,
                                         double *part) {
  const int gsize = evo_anti_group_size(n, nd), groups = evo_anti_groups(n, nd);
  const bool single = groups == 1;
  const int64_t threads = (n + 3) / 4 * groups;
  double *pc = single ? sc : part, *ps = single ? ss : (c ? part + groups * n : NULL);
  evo_anti_sums_kernel<<<evo_anti_cuda_grid(threads), EVO_ANTI_CUDA_BLOCK, 0, (cudaStream_t)stream>>>(
      keys, nd, gsize, h, c, skip_zero, n, pc, ps, single);
  evo_status st = evo_anti_cuda_launched("evo_anti_sums_kernel");
  if (st || single) return st;
  evo_anti_combine_kernel<<<evo_anti_cuda_grid(n), EVO_ANTI_CUDA_BLOCK, 0, (cudaStream_t)stream>>>(pc, ps, groups,
                                                                                                   n, sc, ss);
  return evo_anti_cuda_launched("evo_anti_combine_kernel");
}
