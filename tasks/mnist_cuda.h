/* Internal: the `mnist` task's kernels on a CUDA device (tasks/mnist_cuda.cu). Every pointer is device memory;
   every call only enqueues on `stream` (a cudaStream_t) and checks the launch. */
#ifndef EVOC_MNIST_CUDA_H
#define EVOC_MNIST_CUDA_H
#include <stdbool.h>
#include <stdint.h>
#include "evoc/status.h"
#ifdef __cplusplus
extern "C" {
#endif

/* obs[i, b, :] = images[idx[i * batch + b], :] / 255 for n episodes of batch images of px pixels (the host's
   lookup table holds the same correctly rounded quotients). */
evo_status evo_mnist_cuda_gather(void *stream, const uint8_t *images, const int32_t *idx, int64_t n, int64_t batch,
                                 int64_t px, float *obs);
/* reward[i] = the mean over episode i's batch of log_softmax(act[i, b, :])[label] (train), or of argmax == label
   (test, first maximum wins), in double; done[i] = 1. act [n, batch, classes]; label = labels[idx[i * batch + b]].
   One block per episode, a fixed-order reduction: the same value on every run. */
evo_status evo_mnist_cuda_reward(void *stream, const float *act, const uint8_t *labels, const int32_t *idx,
                                 int64_t n, int64_t batch, int classes, bool test, float *reward, uint8_t *done);

#ifdef __cplusplus
}
#endif
#endif
