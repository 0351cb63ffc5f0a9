/* The MNIST family (../shared/specs/mnist.md): the data loader (also for gradient training) and the `mnist` task.
 *
 * Data: the four IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
 * t10k-labels-idx1-ubyte, each plain or with a .gz suffix (the plain name is tried first). Default folder: the
 * Debian package dataset-fashion-mnist (Fashion-MNIST); real MNIST digits through `data_dir`. Nothing is downloaded.
 *
 * Task `mnist` (EvoJAX framing), options (task section):
 *   data_dir: /usr/share/datasets/fashion-mnist     folder with the four files
 *   batch_size: 1024                                 images per training episode
 * One step per episode (max_steps 1, continuous actions). In host memory, or, created on a CUDA backend, on that
 * device: the images and labels are uploaded once, the batches are drawn on the host exactly as the host task
 * draws them (each reset reads the keys back), and kernels gather the observations and compute the rewards
 * (tasks/mnist_cuda.cu), so the simulation's rollouts and the population stay on the GPU.
 *   train: obs [batch_size, rows, cols, 1] f32 in [0, 1]; reset draws episode i's batch without replacement from
 *          keys[i] alone, so the simulation manager gets common random numbers across the population by passing
 *          every member the same key (consecutive equal keys are filled by one copy). action f32 [batch_size, 10]:
 *          log-probabilities or logits (the reward applies log_softmax, which leaves log-probabilities unchanged).
 *          reward = mean log-likelihood of the labels (= -mean cross-entropy).
 *   test:  obs [n_test, rows, cols, 1] = the whole test set in file order (keys ignored); reward = accuracy of the
 *          argmax of the action (first maximum wins).
 * step writes done = 1 for every episode and rewrites obs with the same images (the episode state is unchanged).
 * A NaN action gives a NaN reward (the simulation manager counts it as the worst fitness).
 */
#ifndef EVOC_MNIST_H
#define EVOC_MNIST_H
#include <stdint.h>
#include "evoc/status.h"
#include "evoc/task.h"
#ifdef __cplusplus
extern "C" {
#endif

#define EVO_MNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define EVO_MNIST_CLASSES 10

typedef enum { EVO_MNIST_TRAIN = 0, EVO_MNIST_TEST = 1 } evo_mnist_split_kind;

typedef struct {
  int64_t n, rows, cols;
  uint8_t *images; /* [n, rows, cols], 0..255 */
  uint8_t *labels; /* [n], 0..9 */
} evo_mnist_split;

/* Loads one split from data_dir (NULL: the default folder). Errors: NOT_FOUND naming the missing path, what it
   should hold and how to get the data; FORMAT naming the path and the defect (bad magic, short file, image/label
   counts that differ, a label outside 0..9). */
evo_status evo_mnist_load(const char *data_dir, evo_mnist_split_kind which, evo_mnist_split *out);
void evo_mnist_split_free(evo_mnist_split *s);

/* The task's vtable (registered as the built-in `mnist`). */
extern const evo_task_vtable evo_task_mnist;

#ifdef __cplusplus
}
#endif
#endif
