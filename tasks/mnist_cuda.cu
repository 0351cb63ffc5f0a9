/* The `mnist` task on the GPU (contracts in mnist_cuda.h): a gather of the sampled images into the observations and
   a per-episode reward. The batch indices are drawn on the host (tasks/mnist.c), exactly as the host task draws
   them, and uploaded; the images and labels stay on the device for the task's life. */
#include <cuda_runtime.h>
#include "mnist_cuda.h"

enum { EVO_MNIST_BLOCK = 256 }; /* a power of two: the reduction halves it */

static evo_status evo_mnist_cuda_launched(const char *kernel) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return EVO_STATUS_OK;
  return evo_error(EVO_STATUS_BACKEND, "mnist: cuda %s: %s", kernel, cudaGetErrorString(e));
}

__global__ void evo_mnist_gather_kernel(const uint8_t *images, const int32_t *idx, int64_t rows, int64_t px,
                                        float *obs) {
  const int64_t total = rows * px;
  for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = t / px, p = t % px;
    obs[t] = (float)images[(int64_t)idx[r] * px + p] / 255.0f;
  }
}

__global__ void evo_mnist_reward_kernel(const float *act, const uint8_t *labels, const int32_t *idx, int64_t batch,
                                        int classes, bool test, float *reward, uint8_t *done) {
  __shared__ double sh[EVO_MNIST_BLOCK];
  const int64_t i = blockIdx.x;
  double acc = 0.0;
  for (int64_t b = threadIdx.x; b < batch; b += blockDim.x) {
    const float *x = act + (i * batch + b) * classes;
    const int label = labels[idx[i * batch + b]];
    if (test) {
      int best = 0;
      for (int k = 1; k < classes; k++)
        if (x[k] > x[best]) best = k;
      acc += best == label ? 1.0 : 0.0;
    } else { /* log_softmax(x)[label] */
      double mx = x[0], se = 0.0;
      for (int k = 1; k < classes; k++) mx = x[k] > mx ? x[k] : mx;
      for (int k = 0; k < classes; k++) se += exp((double)x[k] - mx);
      acc += (double)x[label] - mx - log(se);
    }
  }
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int h = EVO_MNIST_BLOCK / 2; h > 0; h /= 2) {
    if ((int)threadIdx.x < h) sh[threadIdx.x] += sh[threadIdx.x + h];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    reward[i] = (float)(sh[0] / (double)batch);
    done[i] = 1;
  }
}

extern "C" evo_status evo_mnist_cuda_gather(void *stream, const uint8_t *images, const int32_t *idx, int64_t n,
                                            int64_t batch, int64_t px, float *obs) {
  const int64_t total = n * batch * px, want = (total + EVO_MNIST_BLOCK - 1) / EVO_MNIST_BLOCK;
  const unsigned grid = (unsigned)(want < 65535 ? (want > 0 ? want : 1) : 65535); /* grid-stride beyond */
  evo_mnist_gather_kernel<<<grid, EVO_MNIST_BLOCK, 0, (cudaStream_t)stream>>>(images, idx, n * batch, px, obs);
  return evo_mnist_cuda_launched("evo_mnist_gather_kernel");
}

extern "C" evo_status evo_mnist_cuda_reward(void *stream, const float *act, const uint8_t *labels,
                                            const int32_t *idx, int64_t n, int64_t batch, int classes, bool test,
                                            float *reward, uint8_t *done) {
  if (n < 1) return EVO_STATUS_OK;
  evo_mnist_reward_kernel<<<(unsigned)n, EVO_MNIST_BLOCK, 0, (cudaStream_t)stream>>>(act, labels, idx, batch,
                                                                                      classes, test, reward, done);
  return evo_mnist_cuda_launched("evo_mnist_reward_kernel");
}
