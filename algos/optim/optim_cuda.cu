/* The optimizers' kernels (contracts in optim_cuda.h). One thread per parameter runs the rule of optim_math.h, as
   optim.c's loops do; built with --fmad=false (CMakeLists.txt), since a contracted a*b+c would round differently
   from the host. The sums of squares reduce each span, then the spans, through a fixed tree in shared memory. */
#include <cuda_runtime.h>
#include "optim_cuda.h"

enum { EVO_OPTIM_CUDA_BLOCK = 256 };

static evo_status evo_optim_cuda_launched(const char *kernel) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return EVO_STATUS_OK;
  return evo_error(EVO_STATUS_BACKEND, "optim: cuda %s: %s", kernel, cudaGetErrorString(e));
}

__global__ void evo_optim_step_kernel(evo_optim_coef c, double scale, int64_t n, float *p, const float *g,
                                      double *m, double *v) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float gi = scale != 1 ? (float)(g[i] * scale) : g[i];
    switch (c.kind) {
    case EVO_OPTIM_SGD: p[i] = evo_optim_sgd_elem(&c, p[i], gi); break;
    case EVO_OPTIM_MOMENTUM:
    case EVO_OPTIM_NESTEROV: p[i] = evo_optim_momentum_elem(&c, p[i], gi, &m[i]); break;
    default: p[i] = evo_optim_adam_elem(&c, p[i], gi, &m[i], &v[i]); break;
    }
  }
}

/* s[0] <- s[0] + ... + s[EVO_OPTIM_CUDA_BLOCK - 1], pairwise by halves (every thread of the block calls it). */
static __device__ double evo_optim_block_sum(double *s) {
  for (int h = EVO_OPTIM_CUDA_BLOCK / 2; h > 0; h /= 2) {
    __syncthreads();
    if ((int)threadIdx.x < h) s[threadIdx.x] += s[threadIdx.x + h];
  }
  __syncthreads();
  return s[0];
}

/* Block b sums span b: thread t adds elements t, t + BLOCK, ... of the span in order, then the block's tree. */
__global__ void evo_optim_sumsq_kernel(const float *g, int64_t n, double *part) {
  __shared__ double s[EVO_OPTIM_CUDA_BLOCK];
  for (int64_t b = blockIdx.x; b < evo_optim_cuda_parts(n); b += gridDim.x) {
    const int64_t end = (b + 1) * EVO_OPTIM_CUDA_SPAN < n ? (b + 1) * EVO_OPTIM_CUDA_SPAN : n;
    double a = 0;
    for (int64_t i = b * EVO_OPTIM_CUDA_SPAN + threadIdx.x; i < end; i += EVO_OPTIM_CUDA_BLOCK)
      a += (double)g[i] * g[i];
    s[threadIdx.x] = a;
    const double total = evo_optim_block_sum(s);
    if (threadIdx.x == 0) part[b] = total;
    __syncthreads(); /* s is reused by the next span */
  }
}

/* One block: thread t adds part[t], part[t + BLOCK], ... in order, then the tree. */
__global__ void evo_optim_sum_kernel(const double *part, int64_t np, double *out) {
  __shared__ double s[EVO_OPTIM_CUDA_BLOCK];
  double a = 0;
  for (int64_t i = threadIdx.x; i < np; i += EVO_OPTIM_CUDA_BLOCK) a += part[i];
  s[threadIdx.x] = a;
  const double total = evo_optim_block_sum(s);
  if (threadIdx.x == 0) *out = total;
}

static unsigned evo_optim_cuda_grid(int64_t threads) {
  const int64_t g = (threads + EVO_OPTIM_CUDA_BLOCK - 1) / EVO_OPTIM_CUDA_BLOCK;
  return (unsigned)(g < 65535 ? (g > 0 ? g : 1) : 65535); /* grid-stride loops cover the rest */
}

extern "C" evo_status evo_optim_cuda_step(void *stream, const evo_optim_coef *c, double scale, int64_t n, float *p,
                                          const float *g, double *m, double *v) {
  if (n <= 0) return EVO_STATUS_OK;
  evo_optim_step_kernel<<<evo_optim_cuda_grid(n), EVO_OPTIM_CUDA_BLOCK, 0, (cudaStream_t)stream>>>(*c, scale, n, p,
                                                                                                    g, m, v);
  return evo_optim_cuda_launched("evo_optim_step_kernel");
}

extern "C" evo_status evo_optim_cuda_sumsq_parts(void *stream, const float *g, int64_t n, double *part) {
  if (n <= 0) return EVO_STATUS_OK;
  const int64_t np = evo_optim_cuda_parts(n);
  evo_optim_sumsq_kernel<<<(unsigned)(np < 65535 ? np : 65535), EVO_OPTIM_CUDA_BLOCK, 0, (cudaStream_t)stream>>>(
      g, n, part);
  return evo_optim_cuda_launched("evo_optim_sumsq_kernel");
}

extern "C" evo_status evo_optim_cuda_sum(void *stream, const double *part, int64_t np, double *out) {
  evo_optim_sum_kernel<<<1, EVO_OPTIM_CUDA_BLOCK, 0, (cudaStream_t)stream>>>(part, np, out);
  return evo_optim_cuda_launched("evo_optim_sum_kernel");
}
