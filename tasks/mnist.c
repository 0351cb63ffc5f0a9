/* MNIST-family data loader and the `mnist` task (contract in include/evoc/mnist.h). */
#include "evoc/mnist.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "backend_impl.h"
#include "idx.h"
#include "task_impl.h"
#ifdef EVOC_HAVE_CUDA
#include "mnist_cuda.h"
#endif

#define MNIST_HOWTO                                                                                  \
  "install the Debian package dataset-fashion-mnist or set task.data_dir to a folder with "          \
  "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and "     \
  "t10k-labels-idx1-ubyte[.gz]"

/* Reads `base` (or base.gz) from dir as an IDX file of rank ndim. */
static evo_status read_part(const char *dir, const char *base, int ndim, const char *what, evo_idx *out,
                            char *path, size_t cap) {
  struct stat sb;
  snprintf(path, cap, "%s/%s", dir, base);
  if (stat(path, &sb) != 0) {
    snprintf(path, cap, "%s/%s.gz", dir, base);
    if (stat(path, &sb) != 0)
      return evo_error(EVO_STATUS_NOT_FOUND, "MNIST data: %s/%s[.gz] not found (expected the %s); " MNIST_HOWTO,
                       dir, base, what);
  }
  evo_status s = evo_idx_read(path, out);
  if (s) return s;
  if (out->ndim != ndim) {
    int got = out->ndim;
    evo_idx_free(out);
    return evo_error(EVO_STATUS_FORMAT, "%s: a %d-D IDX file, expected the %s (magic 0x0000080%d)", path, got,
                     what, ndim);
  }
  return EVO_STATUS_OK;
}

evo_status evo_mnist_load(const char *data_dir, evo_mnist_split_kind which, evo_mnist_split *out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "mnist_load: out is NULL");
  memset(out, 0, sizeof *out);
  const char *dir = data_dir && *data_dir ? data_dir : EVO_MNIST_DEFAULT_DIR;
  int train = which == EVO_MNIST_TRAIN;
  char ipath[1024], lpath[1024];
  evo_idx im, lb;
  evo_status s = read_part(dir, train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte", 3,
                           train ? "training images, IDX [n, rows, cols] u8" : "test images, IDX [n, rows, cols] u8",
                           &im, ipath, sizeof ipath);
  if (s) return s;
  s = read_part(dir, train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte", 1,
                train ? "training labels, IDX [n] u8" : "test labels, IDX [n] u8", &lb, lpath, sizeof lpath);
  if (s) {
    evo_idx_free(&im);
    return s;
  }
  if (lb.dims[0] != im.dims[0])
    s = evo_error(EVO_STATUS_FORMAT, "MNIST data: counts differ: %s has %lld labels but %s has %lld images", lpath,
                  (long long)lb.dims[0], ipath, (long long)im.dims[0]);
  for (int64_t i = 0; !s && i < lb.numel; i++)
    if (lb.data[i] >= EVO_MNIST_CLASSES)
      s = evo_error(EVO_STATUS_FORMAT, "%s: label %u at index %lld is outside 0..%d", lpath, (unsigned)lb.data[i],
                    (long long)i, EVO_MNIST_CLASSES - 1);
  if (s) {
    evo_idx_free(&im);
    evo_idx_free(&lb);
    return s;
  }
  *out = (evo_mnist_split){.n = im.dims[0], .rows = im.dims[1], .cols = im.dims[2], .images = im.data,
                           .labels = lb.data};
  return EVO_STATUS_OK;
}

void evo_mnist_split_free(evo_mnist_split *s) {
  if (!s) return;
  free(s->images);
  free(s->labels);
  memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- the task */

typedef struct {
  evo_mnist_split data; /* the training split in train mode, the test split in test mode */
  evo_task_mode mode;
  int64_t batch;   /* images per episode: batch_size, or the whole test set */
  int64_t n;       /* episodes of the last reset (0 before) */
  int32_t *idx;    /* [n, batch] image index of each obs row */
  int64_t idx_cap; /* entries allocated in idx */
  float lut[256];  /* pixel value -> [0, 1] */
  /* On a CUDA backend the task lives on the device: images and labels are uploaded once, each reset draws the
     batch indices on the host (the same draws as the host task) and uploads them, and kernels gather the
     observations and compute the rewards (tasks/mnist_cuda.cu). */
  evo_backend *dev; /* NULL: a host task */
  uint8_t *d_images, *d_labels;
  int32_t *d_idx;
  int64_t d_idx_cap;
  evo_key *keys_h; /* the reset's keys, read back from the device */
  int64_t keys_cap;
} mnist_state;

static evo_status device_setup(mnist_state *m, evo_backend *be);
static void mnist_destroy(void *state);

static evo_status mnist_create(evo_cfg *cfg, const evo_task_args *args, void **state) {
  *state = NULL;
  const char *dir = EVO_MNIST_DEFAULT_DIR;
  int64_t batch = 1024;
  evo_status s = EVO_STATUS_OK;
  if (cfg) {
    if ((s = evo_cfg_string(cfg, "data_dir", EVO_MNIST_DEFAULT_DIR, NULL, &dir))) return s;
    if ((s = evo_cfg_int(cfg, "batch_size", 1024, 1, 1 << 24, &batch))) return s;
  }
  mnist_state *m = calloc(1, sizeof *m);
  if (!m) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "mnist: out of memory");
  m->mode = args ? args->mode : EVO_TASK_TRAIN;
  s = evo_mnist_load(dir, m->mode == EVO_TASK_TEST ? EVO_MNIST_TEST : EVO_MNIST_TRAIN, &m->data);
  if (!s && m->mode == EVO_TASK_TRAIN && batch > m->data.n)
    s = evo_error(EVO_STATUS_INVALID_ARGUMENT, "mnist: batch_size %lld exceeds the %lld training images in %s",
                  (long long)batch, (long long)m->data.n, dir);
  if (s) {
    evo_mnist_split_free(&m->data);
    free(m);
    return s;
  }
  m->batch = m->mode == EVO_TASK_TEST ? m->data.n : batch;
  for (int v = 0; v < 256; v++) m->lut[v] = (float)v / 255.0f;
  evo_backend *be = args ? args->backend : NULL;
  if (be && !evo_task_backend_is_host(be) && evo_backend_stream(be) && (s = device_setup(m, be))) {
    mnist_destroy(m);
    return s;
  }
  *state = m;
  return EVO_STATUS_OK;
}

static void mnist_spec(const void *state, evo_task_spec *out) {
  const mnist_state *m = state;
  *out = (evo_task_spec){.obs_ndim = 4,
                         .obs_shape = {m->batch, m->data.rows, m->data.cols, 1},
                         .act_ndim = 2,
                         .act_shape = {m->batch, EVO_MNIST_CLASSES},
                         .action_kind = EVO_ACTION_CONTINUOUS,
                         .max_steps = 1,
                         .place = m->dev ? EVO_TASK_DEVICE : EVO_TASK_HOST,
                         .flags = m->dev ? EVO_TASK_FLAG_GRAPH_SAFE : 0}; /* its step only enqueues kernels */
}

/* batch distinct indices drawn uniformly without replacement (partial Fisher-Yates); a pure function of key. */
static evo_status sample_batch(const mnist_state *m, evo_key key, int32_t *idx) {
  int64_t n = m->data.n;
  int32_t *perm = malloc(sizeof *perm * (size_t)n);
  if (!perm) return EVO_STATUS_OUT_OF_MEMORY;
  for (int64_t i = 0; i < n; i++) perm[i] = (int32_t)i;
  for (int64_t b = 0; b < m->batch; b++) {
    /* double: u has 24 bits and n - b < 2^31, so the product is exact and stays below n - b */
    int64_t j = b + (int64_t)((double)evo_rng_uniform01(key.w, (uint64_t)b) * (double)(n - b));
    if (j >= n) j = n - 1;
    int32_t t = perm[b];
    perm[b] = perm[j];
    perm[j] = t;
    idx[b] = perm[b];
  }
  free(perm);
  return EVO_STATUS_OK;
}

static void fill_obs(const mnist_state *m, const int32_t *idx, float *obs) {
  int64_t px = m->data.rows * m->data.cols;
  for (int64_t b = 0; b < m->batch; b++) {
    const uint8_t *src = m->data.images + (int64_t)idx[b] * px;
    float *dst = obs + b * px;
    for (int64_t p = 0; p < px; p++) dst[p] = m->lut[src[p]];
  }
}

static int key_eq(evo_key a, evo_key b) { return a.w[0] == b.w[0] && a.w[1] == b.w[1]; }

/* m->idx for n episodes from host keys, and (obs not NULL) their observations in host memory. */
static evo_status draw(mnist_state *m, int64_t n, const evo_key *keys, float *obs) {
  if (n * m->batch > m->idx_cap) {
    int32_t *p = realloc(m->idx, sizeof *p * (size_t)(n * m->batch));
    if (!p) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "mnist: out of memory for %lld episodes", (long long)n);
    m->idx = p;
    m->idx_cap = n * m->batch;
  }
  /* src[i]: the first episode of the run of equal keys that i belongs to (common random numbers): only those
     sample and fill; the others copy. Test episodes all show the same images but are cheap to fill directly. */
  int64_t *src = malloc(sizeof *src * (size_t)n);
  if (!src) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "mnist: out of memory for %lld episodes", (long long)n);
  for (int64_t i = 0; i < n; i++)
    src[i] = i > 0 && m->mode == EVO_TASK_TRAIN && key_eq(keys[i], keys[i - 1]) ? src[i - 1] : i;
  int64_t per = m->batch * m->data.rows * m->data.cols;
  int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : failed)
  for (int64_t i = 0; i < n; i++) {
    if (src[i] != i) continue;
    int32_t *idx = m->idx + i * m->batch;
    if (m->mode == EVO_TASK_TEST) {
      for (int64_t b = 0; b < m->batch; b++) idx[b] = (int32_t)b;
    } else if (sample_batch(m, keys[i], idx)) {
      failed = 1;
      continue;
    }
    if (obs) fill_obs(m, idx, obs + i * per);
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    if (failed || src[i] == i) continue;
    memcpy(m->idx + i * m->batch, m->idx + src[i] * m->batch, sizeof *m->idx * (size_t)m->batch);
    if (obs) memcpy(obs + i * per, obs + src[i] * per, sizeof *obs * (size_t)per);
  }
  free(src);
  if (failed) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "mnist: out of memory sampling a batch");
  return EVO_STATUS_OK;
}

static evo_status device_reset(mnist_state *m, int64_t n, const evo_key *keys, float *obs);

static evo_status mnist_reset(void *state, int64_t n, const evo_key *keys, float *obs) {
  mnist_state *m = state;
  if (n < 1 || !keys || !obs) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "mnist: reset needs n >= 1, keys, obs");
  m->n = 0;
  evo_status s = m->dev ? device_reset(m, n, keys, obs) : draw(m, n, keys, obs);
  if (!s) m->n = n;
  return s;
}

static evo_status mnist_step(void *state, const void *actions, float *obs, float *reward, uint8_t *done) {
  mnist_state *m = state;
  if (m->n == 0) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "mnist: step before reset");
  if (!actions || !reward || !done) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "mnist: step needs actions, "
                                                     "reward and done");
#ifdef EVOC_HAVE_CUDA
  if (m->dev) {
    void *stream = evo_backend_stream(m->dev);
    evo_status s = evo_backend_use(m->dev);
    if (!s)
      s = evo_mnist_cuda_reward(stream, actions, m->d_labels, m->d_idx, m->n, m->batch, EVO_MNIST_CLASSES,
                                m->mode == EVO_TASK_TEST, reward, done);
    if (!s && obs) s = evo_mnist_cuda_gather(stream, m->d_images, m->d_idx, m->n, m->batch,
                                             m->data.rows * m->data.cols, obs);
    return s;
  }
#endif
  const float *act = actions;
  int64_t per = m->batch * m->data.rows * m->data.cols;
  const int K = EVO_MNIST_CLASSES;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < m->n; i++) {
    const int32_t *idx = m->idx + i * m->batch;
    double acc = 0;
    for (int64_t b = 0; b < m->batch; b++) {
      const float *x = act + (i * m->batch + b) * K;
      int label = m->data.labels[idx[b]];
      if (m->mode == EVO_TASK_TEST) {
        int best = 0;
        for (int k = 1; k < K; k++)
          if (x[k] > x[best]) best = k;
        acc += best == label;
      } else { /* log_softmax(x)[label] */
        double mx = x[0], se = 0;
        for (int k = 1; k < K; k++) mx = x[k] > mx ? x[k] : mx;
        for (int k = 0; k < K; k++) se += exp((double)x[k] - mx);
        acc += (double)x[label] - mx - log(se);
      }
    }
    reward[i] = (float)(acc / (double)m->batch);
    done[i] = 1;
    if (obs) fill_obs(m, idx, obs + i * per);
  }
  return EVO_STATUS_OK;
}

static void mnist_destroy(void *state) {
  mnist_state *m = state;
  if (!m) return;
  evo_mnist_split_free(&m->data);
  free(m->idx);
  if (m->dev) {
    evo_backend_release(m->dev, m->d_images);
    evo_backend_release(m->dev, m->d_labels);
    evo_backend_release(m->dev, m->d_idx);
  }
  free(m->keys_h);
  free(m);
}

#ifdef EVOC_HAVE_CUDA

static evo_status device_oom(const char *what) {
  return evo_error(EVO_STATUS_OUT_OF_MEMORY, "mnist: out of device memory for %s", what);
}

/* Images and labels go to the device once (the training split is ~47 MB). */
static evo_status device_setup(mnist_state *m, evo_backend *be) {
  const size_t bytes = (size_t)(m->data.n * m->data.rows * m->data.cols);
  m->dev = be;
  m->d_images = evo_backend_alloc(be, bytes);
  m->d_labels = evo_backend_alloc(be, (size_t)m->data.n);
  if (!m->d_images || !m->d_labels) return device_oom("the images");
  evo_status s = be->iface->from_host(be->ctx, m->d_images, m->data.images, bytes);
  return s ? s : be->iface->from_host(be->ctx, m->d_labels, m->data.labels, (size_t)m->data.n);
}

/* keys and obs are device memory: the keys come back (one sync per rollout), the indices are drawn as on the host
   and go up, and a kernel gathers the images. */
static evo_status device_reset(mnist_state *m, int64_t n, const evo_key *keys, float *obs) {
  evo_backend *be = m->dev;
  if (n > m->keys_cap) {
    evo_key *p = realloc(m->keys_h, sizeof *p * (size_t)n);
    if (!p) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "mnist: out of memory for %lld episodes", (long long)n);
    m->keys_h = p, m->keys_cap = n;
  }
  if (n * m->batch > m->d_idx_cap) {
    evo_backend_release(be, m->d_idx);
    m->d_idx_cap = 0;
    if (!(m->d_idx = evo_backend_alloc(be, sizeof(int32_t) * (size_t)(n * m->batch)))) return device_oom("indices");
    m->d_idx_cap = n * m->batch;
  }
  evo_status s = be->iface->to_host(be->ctx, m->keys_h, keys, sizeof(evo_key) * (size_t)n);
  if (!s) s = draw(m, n, m->keys_h, NULL);
  if (!s) s = be->iface->from_host(be->ctx, m->d_idx, m->idx, sizeof(int32_t) * (size_t)(n * m->batch));
  if (!s) s = evo_backend_use(be);
  if (!s) s = evo_mnist_cuda_gather(evo_backend_stream(be), m->d_images, m->d_idx, n, m->batch,
                                    m->data.rows * m->data.cols, obs);
  return s;
}

#else /* without CUDA every backend is a host one: the task never lives on a device */

static evo_status device_setup(mnist_state *m, evo_backend *be) {
  (void)m, (void)be;
  return evo_error(EVO_STATUS_UNSUPPORTED, "mnist: device task without CUDA");
}

static evo_status device_reset(mnist_state *m, int64_t n, const evo_key *keys, float *obs) {
  (void)m, (void)n, (void)keys, (void)obs;
  return evo_error(EVO_STATUS_UNSUPPORTED, "mnist: device task without CUDA");
}

#endif

const evo_task_vtable evo_task_mnist = {
    .abi_version = EVO_TASK_ABI_VERSION,
    .name = "mnist",
    .doc = "image classification (MNIST family, Fashion-MNIST by default): one step per episode; train reward = "
           "mean log-likelihood of a sampled batch, test reward = accuracy on the whole test set",
    .create = mnist_create,
    .spec = mnist_spec,
    .reset = mnist_reset,
    .step = mnist_step,
    .descriptor = NULL,
    .destroy = mnist_destroy,
};
