/* MNIST family: the IDX reader (plain and gzip, on small files written here), loader errors for missing and corrupt
   files (messages asserted), the installed Fashion-MNIST package when present, and the `mnist` task: batches drawn
   per key without replacement, common random numbers, reward = mean log-likelihood and accuracy against a direct
   computation. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "../tasks/idx.h"
#include "backend_impl.h" /* evo_tensor_buffer: a device task takes device pointers */
#include "cuda_test_util.h"
#include "evoc/config.h"
#include "evoc/mnist.h"
#include "evoc/trainer.h"

static char dir[256]; /* a fresh folder per test */

static void setup(void) {
  static int count;
  snprintf(dir, sizeof dir, "/tmp/evoc_test_mnist_%d_%d", (int)getpid(), count++);
  mkdir(dir, 0700);
}
static void teardown(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_expect_eq(system(cmd), 0);
}
TestSuite(mnist, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------ writing IDX files */

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Writes raw bytes to dir/name, gzip'd when gz. */
static void write_file(const char *name, const void *buf, size_t n, int gz) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (gz) {
    gzFile f = gzopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(gzwrite(f, buf, (unsigned)n), (int)n);
    cr_assert_eq(gzclose(f), Z_OK);
  } else {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, n, f), n);
    fclose(f);
  }
}

/* An IDX u8 file with the given dims; data_bytes of data (normally the product of the dims), data[i] = fill(i). */
static void write_idx(const char *name, int ndim, const uint32_t *dims, int64_t data_bytes, const uint8_t *data,
                      int gz) {
  size_t head = 4 + 4 * (size_t)ndim, n = head + (size_t)data_bytes;
  uint8_t *buf = malloc(n);
  put_be32(buf, 0x00000800u | (uint32_t)ndim);
  for (int d = 0; d < ndim; d++) put_be32(buf + 4 + 4 * d, dims[d]);
  memcpy(buf + head, data, (size_t)data_bytes);
  write_file(name, buf, n, gz);
  free(buf);
}

/* A synthetic split: image i has pixel 0 = i % 256 and pixel 1 = i / 256 (so an obs row tells its index) and
   label[i] = (i * 7 + 3) % 10. */
static void write_split(const char *prefix, int64_t n, uint32_t rows, uint32_t cols, int gz) {
  int64_t px = rows * cols;
  uint8_t *im = calloc((size_t)(n * px), 1), *lb = malloc((size_t)n);
  for (int64_t i = 0; i < n; i++) {
    im[i * px] = (uint8_t)(i % 256);
    im[i * px + 1] = (uint8_t)(i / 256);
    for (int64_t p = 2; p < px; p++) im[i * px + p] = (uint8_t)((i * 31 + p * 17) % 256);
    lb[i] = (uint8_t)((i * 7 + 3) % 10);
  }
  char name[128];
  snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", prefix, gz ? ".gz" : "");
  write_idx(name, 3, (uint32_t[]){(uint32_t)n, rows, cols}, n * px, im, gz);
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", prefix, gz ? ".gz" : "");
  write_idx(name, 1, (uint32_t[]){(uint32_t)n}, n, lb, gz);
  free(im);
  free(lb);
}

static int label_of(int64_t i) { return (int)((i * 7 + 3) % 10); }

static const char *path_of(const char *name) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

/* ------------------------------------------------------------------ IDX reader */

static void check_roundtrip(int gz) {
  uint8_t data[60];
  for (int i = 0; i < 60; i++) data[i] = (uint8_t)(i * 5 + 1);
  write_idx("a.idx", 3, (uint32_t[]){3, 4, 5}, 60, data, gz);
  evo_idx x;
  cr_assert_eq(evo_idx_read(path_of("a.idx"), &x), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect_eq(x.ndim, 3);
  cr_expect(x.dims[0] == 3 && x.dims[1] == 4 && x.dims[2] == 5);
  cr_expect_eq(x.numel, 60);
  cr_expect_eq(memcmp(x.data, data, 60), 0);
  evo_idx_free(&x);
}

Test(mnist, idx_plain) { check_roundtrip(0); }
Test(mnist, idx_gzip) { check_roundtrip(1); }

/* Expects FORMAT (or the given status) with the path and `what` in the message. */
static void expect_error(evo_status want, const char *name, const char *what) {
  evo_idx x;
  evo_status s = evo_idx_read(path_of(name), &x);
  cr_expect_eq(s, want, "%s: status %s (%s)", name, evo_status_str(s), evo_last_error());
  cr_expect(strstr(evo_last_error(), path_of(name)), "message does not name the path: %s", evo_last_error());
  cr_expect(strstr(evo_last_error(), what), "message lacks '%s': %s", what, evo_last_error());
  cr_expect_null(x.data);
}

Test(mnist, idx_errors) {
  uint8_t data[64] = {0};
  expect_error(EVO_STATUS_NOT_FOUND, "missing.idx", "no such file");
  write_file("magic.idx", (uint8_t[]){0x12, 0x34, 0x08, 0x03, 0, 0, 0, 1}, 8, 0);
  expect_error(EVO_STATUS_FORMAT, "magic.idx", "bad magic 0x12340803");
  write_file("type.idx", (uint8_t[]){0, 0, 0x0D, 0x01, 0, 0, 0, 1, 0, 0, 0, 0}, 12, 0);
  expect_error(EVO_STATUS_FORMAT, "type.idx", "type 0x0d");
  write_file("tiny.idx", (uint8_t[]){0, 0}, 2, 0);
  expect_error(EVO_STATUS_FORMAT, "tiny.idx", "short file");
  write_file("head.idx", (uint8_t[]){0, 0, 8, 3, 0, 0, 0, 2, 0, 0}, 10, 0);
  expect_error(EVO_STATUS_FORMAT, "head.idx", "short file");
  write_idx("short.idx", 3, (uint32_t[]){2, 4, 4}, 20, data, 0);
  expect_error(EVO_STATUS_FORMAT, "short.idx", "promises 2 x 4 x 4 = 32 data bytes, the file has 20");
  write_idx("short.gz", 1, (uint32_t[]){50}, 40, data, 1);
  expect_error(EVO_STATUS_FORMAT, "short.gz", "short file");
  write_idx("long.idx", 1, (uint32_t[]){10}, 12, data, 0);
  expect_error(EVO_STATUS_FORMAT, "long.idx", "unexpected bytes");
  write_idx("zero.idx", 3, (uint32_t[]){0, 28, 28}, 0, data, 0);
  expect_error(EVO_STATUS_FORMAT, "zero.idx", "size 0");
  /* bounded memory: a header promising 2^40 bytes is refused on the short read (at most 1 MiB is allocated), one
     promising more is refused outright, plain or gzip'd */
  write_idx("tera.idx", 2, (uint32_t[]){1048576, 1048576}, 16, data, 0);
  expect_error(EVO_STATUS_FORMAT, "tera.idx", "promises 1048576 x 1048576 = 1099511627776 data bytes, the file has 16");
  write_idx("tera.gz", 2, (uint32_t[]){1048576, 1048576}, 16, data, 1);
  expect_error(EVO_STATUS_FORMAT, "tera.gz", "promises 1048576 x 1048576 = 1099511627776 data bytes, the file has 16");
  write_idx("peta.idx", 3, (uint32_t[]){1024, 1048576, 1048576}, 16, data, 0);
  expect_error(EVO_STATUS_FORMAT, "peta.idx", "dimensions too large");
}

Test(mnist, idx_corrupt_gzip) {
  uint8_t data[4096];
  for (int i = 0; i < 4096; i++) data[i] = (uint8_t)(i * 131 % 251);
  write_idx("c.gz", 1, (uint32_t[]){4096}, 4096, data, 1);
  /* cut the stream short: a short file */
  FILE *f = fopen(path_of("c.gz"), "rb");
  uint8_t buf[8192];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  cr_assert_gt(n, 100u);
  write_file("cut.gz", buf, n / 2, 0);
  expect_error(EVO_STATUS_FORMAT, "cut.gz", "short file");
  /* garbage inside the deflate stream: corrupt data */
  memset(buf + 12, 0xFF, 24);
  write_file("bad.gz", buf, n, 0);
  expect_error(EVO_STATUS_FORMAT, "bad.gz", "gzip");
}

/* ------------------------------------------------------------------ loader */

Test(mnist, load_plain_and_gzip_splits) {
  write_split("train", 50, 4, 3, 0);
  write_split("t10k", 20, 4, 3, 1);
  evo_mnist_split s;
  cr_assert_eq(evo_mnist_load(dir, EVO_MNIST_TRAIN, &s), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect(s.n == 50 && s.rows == 4 && s.cols == 3);
  cr_expect_eq(s.images[12 * 7], 7);
  cr_expect_eq(s.labels[7], label_of(7));
  evo_mnist_split_free(&s);
  cr_assert_eq(evo_mnist_load(dir, EVO_MNIST_TEST, &s), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect_eq(s.n, 20);
  cr_expect_eq(s.labels[19], label_of(19));
  evo_mnist_split_free(&s);
}

Test(mnist, load_missing_names_path_and_fix) {
  evo_mnist_split s;
  cr_assert_eq(evo_mnist_load(dir, EVO_MNIST_TRAIN, &s), EVO_STATUS_NOT_FOUND);
  const char *m = evo_last_error();
  char want[512];
  snprintf(want, sizeof want, "%s/train-images-idx3-ubyte[.gz] not found", dir);
  cr_expect(strstr(m, want), "%s", m);
  cr_expect(strstr(m, "training images"), "%s", m);
  cr_expect(strstr(m, "dataset-fashion-mnist"), "%s", m);
  cr_expect(strstr(m, "task.data_dir"), "%s", m);
  write_split("train", 10, 2, 2, 0);
  unlink(path_of("train-labels-idx1-ubyte"));
  cr_assert_eq(evo_mnist_load(dir, EVO_MNIST_TRAIN, &s), EVO_STATUS_NOT_FOUND);
  cr_expect(strstr(evo_last_error(), "train-labels-idx1-ubyte[.gz] not found"), "%s", evo_last_error());
  cr_assert_eq(evo_mnist_load(dir, EVO_MNIST_TEST, &s), EVO_STATUS_NOT_FOUND);
  cr_expect(strstr(evo_last_error(), "t10k-images-idx3-ubyte"), "%s", evo_last_error());
}

Test(mnist, load_corrupt_names_path_and_defect) {
  evo_mnist_split s;
  write_split("train", 10, 2, 2, 1);
  write_idx("train-labels-idx1-ubyte.gz", 1, (uint32_t[]){9}, 9, (uint8_t[9]){0}, 1);
  cr_assert_eq(evo_mnist_load(dir, EVO_MNIST_TRAIN, &s), EVO_STATUS_FORMAT);
  cr_expect(strstr(evo_last_error(), "counts differ") && strstr(evo_last_error(), "9 labels") &&
                strstr(evo_last_error(), "10 images") && strstr(evo_last_error(), path_of("train-labels")),
            "%s", evo_last_error());
  write_idx("train-labels-idx1-ubyte.gz", 1, (uint32_t[]){10}, 10, (uint8_t[10]){1, 2, 3, 10}, 1);
  cr_assert_eq(evo_mnist_load(dir, EVO_MNIST_TRAIN, &s), EVO_STATUS_FORMAT);
  cr_expect(strstr(evo_last_error(), "label 10 at index 3"), "%s", evo_last_error());
  write_idx("train-labels-idx1-ubyte.gz", 3, (uint32_t[]){10, 1, 1}, 10, (uint8_t[10]){0}, 1);
  cr_assert_eq(evo_mnist_load(dir, EVO_MNIST_TRAIN, &s), EVO_STATUS_FORMAT);
  cr_expect(strstr(evo_last_error(), "3-D IDX file, expected the training labels"), "%s", evo_last_error());
  write_file("train-images-idx3-ubyte.gz", "not an idx file", 15, 1);
  cr_assert_eq(evo_mnist_load(dir, EVO_MNIST_TRAIN, &s), EVO_STATUS_FORMAT);
  cr_expect(strstr(evo_last_error(), "bad magic") && strstr(evo_last_error(), path_of("train-images")), "%s",
            evo_last_error());
}

/* The Debian package's files, when installed. */
Test(mnist, fashion_mnist_package) {
  struct stat sb;
  if (stat(EVO_MNIST_DEFAULT_DIR, &sb) != 0) cr_skip_test("dataset-fashion-mnist is not installed");
  evo_mnist_split tr, te;
  cr_assert_eq(evo_mnist_load(NULL, EVO_MNIST_TRAIN, &tr), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_mnist_load(NULL, EVO_MNIST_TEST, &te), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect(tr.n == 60000 && te.n == 10000, "%lld / %lld", (long long)tr.n, (long long)te.n);
  cr_expect(tr.rows == 28 && tr.cols == 28 && te.rows == 28 && te.cols == 28);
  int64_t count[10] = {0};
  for (int64_t i = 0; i < tr.n; i++) count[tr.labels[i]]++; /* every label < 10 (checked by the loader) */
  for (int k = 0; k < 10; k++) cr_expect_eq(count[k], 6000, "class %d: %lld", k, (long long)count[k]);
  int lo = 255, hi = 0;
  for (int64_t i = 0; i < te.n * 784; i++) lo = te.images[i] < lo ? te.images[i] : lo, hi = te.images[i] > hi ? te.images[i] : hi;
  cr_expect(lo == 0 && hi == 255, "pixel range %d..%d", lo, hi);
  evo_mnist_split_free(&tr);
  evo_mnist_split_free(&te);
}

/* ------------------------------------------------------------------ the task */

/* Creates the task on the synthetic folder with the given batch_size, on backend be (NULL: the host). */
static void *task_on(evo_backend *be, int64_t batch, evo_task_mode mode, evo_status want) {
  char yaml[512];
  snprintf(yaml, sizeof yaml, "data_dir: %s\nbatch_size: %lld\n", dir, (long long)batch);
  evo_config *c = NULL;
  cr_assert_eq(evo_config_parse(yaml, "task.yaml", &c), EVO_STATUS_OK, "%s", evo_last_error());
  evo_task_args args = {.backend = be, .mode = mode};
  void *st = NULL;
  evo_status s = evo_task_mnist.create(evo_config_root(c), &args, &st);
  cr_assert_eq(s, want, "create: %s (%s)", evo_status_str(s), evo_last_error());
  evo_config_free(c);
  return st;
}

static void *task_new(int64_t batch, evo_task_mode mode, evo_status want) { return task_on(NULL, batch, mode, want); }

/* log_softmax(x)[label] in double. */
static double log_lik(const float *x, int label) {
  double mx = x[0], se = 0;
  for (int k = 1; k < 10; k++) mx = fmax(mx, x[k]);
  for (int k = 0; k < 10; k++) se += exp(x[k] - mx);
  return x[label] - mx - log(se);
}

/* The index of the synthetic image in an obs row (pixels 0 and 1 encode it). */
static int64_t index_of(const float *row) { return lround(row[0] * 255.0) + 256 * lround(row[1] * 255.0); }

Test(mnist, task_train_batches_common_random_numbers_and_reward) {
  enum { N = 300, B = 64, E = 4, PX = 12 };
  write_split("train", N, 4, 3, 1);
  void *st = task_new(B, EVO_TASK_TRAIN, EVO_STATUS_OK);
  evo_task_spec spec;
  evo_task_mnist.spec(st, &spec);
  cr_expect(spec.obs_ndim == 4 && spec.obs_shape[0] == B && spec.obs_shape[1] == 4 && spec.obs_shape[2] == 3 &&
            spec.obs_shape[3] == 1);
  cr_expect(spec.act_ndim == 2 && spec.act_shape[0] == B && spec.act_shape[1] == 10);
  cr_expect(spec.action_kind == EVO_ACTION_CONTINUOUS && spec.max_steps == 1);
  evo_key k0 = evo_key_from_seed(1), k1 = evo_key_from_seed(2);
  evo_key keys[E] = {k0, k0, k1, k0};
  float *obs = malloc(sizeof *obs * E * B * PX), *obs2 = malloc(sizeof *obs2 * E * B * PX);
  cr_assert_eq(evo_task_mnist.reset(st, E, keys, obs), EVO_STATUS_OK, "%s", evo_last_error());
  for (int64_t i = 0; i < E * B * PX; i++) cr_assert(obs[i] >= 0.0f && obs[i] <= 1.0f);
  cr_expect_eq(memcmp(obs, obs + B * PX, sizeof *obs * B * PX), 0, "equal keys, equal batches");
  cr_expect_eq(memcmp(obs, obs + 3 * B * PX, sizeof *obs * B * PX), 0, "equal keys, equal batches");
  cr_expect_neq(memcmp(obs, obs + 2 * B * PX, sizeof *obs * B * PX), 0, "different keys, different batches");
  for (int e = 0; e < E; e++) { /* without replacement */
    char seen[N] = {0};
    for (int b = 0; b < B; b++) {
      int64_t i = index_of(obs + (e * B + b) * PX);
      cr_assert(i >= 0 && i < N);
      cr_expect(!seen[i], "episode %d: image %lld drawn twice", e, (long long)i);
      seen[i] = 1;
    }
  }
  /* a batch is a pure function of its key */
  cr_assert_eq(evo_task_mnist.reset(st, 1, &k1, obs2), EVO_STATUS_OK);
  cr_expect_eq(memcmp(obs2, obs + 2 * B * PX, sizeof *obs * B * PX), 0);
  cr_assert_eq(evo_task_mnist.reset(st, E, keys, obs), EVO_STATUS_OK);

  float *act = malloc(sizeof *act * E * B * 10), reward[E];
  uint8_t done[E];
  for (int64_t i = 0; i < E * B * 10; i++) act[i] = (float)((i * 37 % 101) - 50) / 10.0f;
  cr_assert_eq(evo_task_mnist.step(st, act, obs2, reward, done), EVO_STATUS_OK, "%s", evo_last_error());
  cr_expect_eq(memcmp(obs2, obs, sizeof *obs * E * B * PX), 0, "step keeps the episode's images");
  for (int e = 0; e < E; e++) {
    double ref = 0;
    for (int b = 0; b < B; b++) ref += log_lik(act + (e * B + b) * 10, label_of(index_of(obs + (e * B + b) * PX)));
    ref /= B;
    cr_expect(fabs(reward[e] - ref) <= 1e-6 * fabs(ref), "episode %d: reward %.9g, direct %.9g", e,
              (double)reward[e], ref);
    cr_expect_eq(done[e], 1);
  }
  /* log-probabilities in, same reward (log_softmax leaves them unchanged) */
  float r2[E];
  for (int64_t r = 0; r < E * B; r++) {
    double mx = -INFINITY, se = 0;
    for (int k = 0; k < 10; k++) mx = fmax(mx, act[r * 10 + k]);
    for (int k = 0; k < 10; k++) se += exp(act[r * 10 + k] - mx);
    for (int k = 0; k < 10; k++) act[r * 10 + k] = (float)(act[r * 10 + k] - mx - log(se));
  }
  cr_assert_eq(evo_task_mnist.step(st, act, obs2, r2, done), EVO_STATUS_OK);
  for (int e = 0; e < E; e++) cr_expect(fabsf(r2[e] - reward[e]) <= 1e-5f * fabsf(reward[e]), "%g vs %g", r2[e], reward[e]);
  free(act), free(obs), free(obs2);
  evo_task_mnist.destroy(st);
}

Test(mnist, task_test_mode_accuracy_on_whole_test_set) {
  enum { N = 20, PX = 12 };
  write_split("t10k", N, 4, 3, 0);
  void *st = task_new(1024, EVO_TASK_TEST, EVO_STATUS_OK); /* batch_size does not apply to the test set */
  evo_task_spec spec;
  evo_task_mnist.spec(st, &spec);
  cr_expect(spec.obs_shape[0] == N && spec.act_shape[0] == N);
  evo_key keys[2] = {evo_key_from_seed(1), evo_key_from_seed(2)};
  float obs[2 * N * PX], act[2 * N * 10] = {0}, reward[2];
  uint8_t done[2];
  cr_assert_eq(evo_task_mnist.reset(st, 2, keys, obs), EVO_STATUS_OK, "%s", evo_last_error());
  for (int e = 0; e < 2; e++)
    for (int b = 0; b < N; b++) {
      cr_expect_eq(index_of(obs + (e * N + b) * PX), b, "test images in file order");
      int want = label_of(b), pick = e == 0 && b % 4 == 0 ? (want + 1) % 10 : want;
      act[(e * N + b) * 10 + pick] = 2.0f;
    }
  cr_assert_eq(evo_task_mnist.step(st, act, obs, reward, done), EVO_STATUS_OK);
  cr_expect_float_eq(reward[0], 0.75f, 1e-7);
  cr_expect_float_eq(reward[1], 1.0f, 1e-7);
  /* ties: the first maximum wins (all zeros -> class 0) */
  memset(act, 0, sizeof act);
  cr_assert_eq(evo_task_mnist.step(st, act, obs, reward, done), EVO_STATUS_OK);
  int zeros = 0;
  for (int b = 0; b < N; b++) zeros += label_of(b) == 0;
  cr_expect_float_eq(reward[0], (float)zeros / N, 1e-7);
  evo_task_mnist.destroy(st);
}

Test(mnist, task_create_errors) {
  write_split("train", 30, 2, 2, 0);
  cr_assert_null(task_new(31, EVO_TASK_TRAIN, EVO_STATUS_INVALID_ARGUMENT));
  cr_expect(strstr(evo_last_error(), "batch_size 31 exceeds the 30 training images"), "%s", evo_last_error());
  cr_assert_null(task_new(8, EVO_TASK_TEST, EVO_STATUS_NOT_FOUND));
  cr_expect(strstr(evo_last_error(), "t10k-images-idx3-ubyte[.gz] not found"), "%s", evo_last_error());
}

/* Defaults (cfg NULL): Fashion-MNIST from the Debian package. */
Test(mnist, task_defaults_on_fashion_mnist) {
  struct stat sb;
  if (stat(EVO_MNIST_DEFAULT_DIR, &sb) != 0) cr_skip_test("dataset-fashion-mnist is not installed");
  evo_task_args args = {.mode = EVO_TASK_TRAIN};
  void *st = NULL;
  cr_assert_eq(evo_task_mnist.create(NULL, &args, &st), EVO_STATUS_OK, "%s", evo_last_error());
  evo_task_spec spec;
  evo_task_mnist.spec(st, &spec);
  cr_expect(spec.obs_shape[0] == 1024 && spec.obs_shape[1] == 28 && spec.obs_shape[2] == 28);
  evo_key keys[2] = {evo_key_from_seed(5), evo_key_from_seed(5)};
  float *obs = malloc(sizeof *obs * 2 * 1024 * 784), *act = calloc(2 * 1024 * 10, sizeof *act), reward[2];
  uint8_t done[2];
  cr_assert_eq(evo_task_mnist.reset(st, 2, keys, obs), EVO_STATUS_OK);
  cr_expect_eq(memcmp(obs, obs + 1024 * 784, sizeof *obs * 1024 * 784), 0);
  cr_assert_eq(evo_task_mnist.step(st, act, obs, reward, done), EVO_STATUS_OK);
  cr_expect_float_eq(reward[0], -logf(10.0f), 1e-6, "uniform predictions: %g", reward[0]);
  evo_task_mnist.destroy(st);
  free(obs);
  free(act);
  args.mode = EVO_TASK_TEST;
  cr_assert_eq(evo_task_mnist.create(NULL, &args, &st), EVO_STATUS_OK, "%s", evo_last_error());
  evo_task_mnist.spec(st, &spec);
  cr_expect_eq(spec.obs_shape[0], 10000);
  obs = malloc(sizeof *obs * 10000 * 784);
  act = calloc(10000 * 10, sizeof *act);
  cr_assert_eq(evo_task_mnist.reset(st, 1, keys, obs), EVO_STATUS_OK);
  cr_assert_eq(evo_task_mnist.step(st, act, obs, reward, done), EVO_STATUS_OK);
  cr_expect_float_eq(reward[0], 0.1f, 1e-6, "all-zero predictions pick class 0: %g", reward[0]); /* 1000 per class */
  evo_task_mnist.destroy(st);
  free(obs);
  free(act);
}

/* ------------------------------------------------------------------ the task on a GPU */

/* One reset and step of the host task and of the device task (tasks/mnist_cuda.cu) on the same keys and actions:
   the same batches and observations bit for bit (the indices are drawn on the host either way), rewards within
   two float ulps in train mode (the double exp and log may round differently on the GPU; a 1e-5 relative error in
   log fails) and equal in test mode. */
static void device_case(evo_backend *be, evo_task_mode mode, int64_t batch, int64_t px) {
  void *h = task_new(batch, mode, EVO_STATUS_OK), *d = task_on(be, batch, mode, EVO_STATUS_OK);
  evo_task_spec sh, sd;
  evo_task_mnist.spec(h, &sh), evo_task_mnist.spec(d, &sd);
  cr_assert(sh.place == EVO_TASK_HOST && sd.place == EVO_TASK_DEVICE);
  const int64_t B = sh.obs_shape[0], E = 5, no = E * B * px, na = E * B * 10;
  evo_key keys[5] = {evo_key_from_seed(1), evo_key_from_seed(1), evo_key_from_seed(7), evo_key_from_seed(1),
                     evo_key_from_seed(9)};
  float *obs = malloc(sizeof(float) * (size_t)no), *got = malloc(sizeof(float) * (size_t)no);
  float *act = malloc(sizeof(float) * (size_t)na), rh[5], rd[5];
  uint8_t done_h[5], done_d[5];
  cr_assert(obs && got && act);
  for (int64_t i = 0; i < na; i++) act[i] = (float)((i * 37 % 101) - 50) / 10.0f;
  for (int64_t r = 0; r < E * B; r += 3) act[r * 10 + (r % 10)] = 9.0f; /* some right answers in test mode */
  evo_tensor *dk = evo_tensor_from_host(be, EVO_U32, 2, (int64_t[]){E, 2}, keys);
  evo_tensor *dobs = evo_tensor_new(be, EVO_F32, 1, (int64_t[]){no});
  evo_tensor *dact = evo_tensor_from_host(be, EVO_F32, 1, (int64_t[]){na}, act);
  evo_tensor *drew = evo_tensor_new(be, EVO_F32, 1, (int64_t[]){E}), *ddone = evo_tensor_new(be, EVO_U8, 1, (int64_t[]){E});
  cr_assert(dk && dobs && dact && drew && ddone);
  cr_assert_eq(evo_task_mnist.reset(h, E, keys, obs), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_task_mnist.reset(d, E, evo_tensor_buffer(dk), NULL), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert_eq(evo_task_mnist.reset(d, E, evo_tensor_buffer(dk), evo_tensor_buffer(dobs)), EVO_STATUS_OK, "%s",
               evo_last_error());
  cr_assert_eq(evo_tensor_copy_to_host(dobs, got, sizeof(float) * (size_t)no), EVO_STATUS_OK);
  cr_assert_eq(memcmp(obs, got, sizeof(float) * (size_t)no), 0, "observations differ");
  cr_assert_eq(evo_task_mnist.step(h, act, obs, rh, done_h), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_task_mnist.step(d, evo_tensor_buffer(dact), evo_tensor_buffer(dobs), evo_tensor_buffer(drew),
                                   evo_tensor_buffer(ddone)), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_tensor_copy_to_host(drew, rd, sizeof rd), EVO_STATUS_OK);
  cr_assert_eq(evo_tensor_copy_to_host(ddone, done_d, sizeof done_d), EVO_STATUS_OK);
  cr_assert_eq(evo_tensor_copy_to_host(dobs, got, sizeof(float) * (size_t)no), EVO_STATUS_OK);
  cr_assert_eq(memcmp(obs, got, sizeof(float) * (size_t)no), 0, "step keeps the images on the device too");
  for (int e = 0; e < E; e++) {
    cr_assert_eq(done_d[e], 1);
    if (mode == EVO_TASK_TEST)
      cr_assert_eq(rd[e], rh[e], "episode %d: accuracy %.9g on the device, %.9g on the host", e, rd[e], rh[e]);
    else
      cr_assert(fabsf(rd[e] - rh[e]) <= 2.5e-7f * fabsf(rh[e]), "episode %d: reward %.9g on the device, %.9g on "
                "the host", e, rd[e], rh[e]);
  }
  evo_tensor_free(dk), evo_tensor_free(dobs), evo_tensor_free(dact), evo_tensor_free(drew), evo_tensor_free(ddone);
  free(obs), free(got), free(act);
  evo_task_mnist.destroy(h), evo_task_mnist.destroy(d);
}

Test(mnist, task_on_the_device_matches_the_host) {
  evo_backend *be = cuda_or_skip();
  write_split("train", 300, 4, 3, 1);
  write_split("t10k", 300, 4, 3, 0); /* more test images than a block has threads */
  device_case(be, EVO_TASK_TRAIN, 64, 12);
  device_case(be, EVO_TASK_TEST, 64, 12);
  evo_backend_free(be);
}

/* The whole EvoJAX MNIST loop on the GPU: the device task, PGPE sampling on the device, a small CNN; the same run
   with the CPU backend agrees up to the GEMMs' rounding. */
static void mnist_run(const char *device, evo_trainer_summary *s, bool *on_device) {
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "seed: 5\ndevice: %s\ntask: {name: mnist, data_dir: %s, batch_size: 32}\n"
           "policy: {name: cnn, layers: [{type: conv, features: 2, kernel: 3}, relu, flatten, "
           "{type: dense, features: 10}, log_softmax]}\n"
           "algo: {name: pgpe, pop_size: 8}\n"
           "trainer: {max_iter: 3, log_interval: 1, test_interval: 3, plot: false}\n",
           device, dir);
  evo_config *c;
  cr_assert_eq(evo_config_parse(yaml, "t.yaml", &c), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_params p = evo_trainer_default_params();
  evo_trainer *t;
  cr_assert_eq(evo_trainer_new(c, &p, &t), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_trainer_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_summary_get(t, s);
  *on_device = s->population_on_device;
  s->device = s->device_note = s->task = s->policy = s->algo = s->comm = NULL; /* they point into the trainer */
  evo_trainer_free(t);
  evo_config_free(c);
}

Test(mnist, trainer_runs_mnist_on_the_device) {
  evo_backend *be = cuda_or_skip();
  evo_backend_free(be);
  write_split("train", 300, 4, 3, 1);
  write_split("t10k", 40, 4, 3, 0);
  evo_trainer_summary g, c;
  bool dev_g, dev_c;
  mnist_run("cuda", &g, &dev_g);
  mnist_run("cpu", &c, &dev_c);
  cr_assert(dev_g && !dev_c, "population_on_device: cuda %d, cpu %d", dev_g, dev_c);
  cr_assert_eq(g.iterations, 3);
  cr_assert(fabs(g.best_train_fitness - c.best_train_fitness) <= 1e-4 * fabs(c.best_train_fitness),
            "best train fitness: cuda %.9g, cpu %.9g", g.best_train_fitness, c.best_train_fitness);
  cr_assert(fabs(g.test_score - c.test_score) <= 0.05, "test accuracy: cuda %.9g, cpu %.9g", g.test_score,
            c.test_score);
}
