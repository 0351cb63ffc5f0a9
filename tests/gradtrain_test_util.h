/* A tiny synthetic image dataset in the MNIST IDX layout, for the gradient-training tests (test_gradtrain.c and
   the `evoc train` cases of test_cli.c): SIDE x SIDE images, 10 classes; class c lights the pixels p with
   (p * 7) % 10 == c over a pseudo-random background, so a small network learns it in a few epochs. */
#ifndef EVOC_GRADTRAIN_TEST_UTIL_H
#define EVOC_GRADTRAIN_TEST_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { GT_SIDE = 8, GT_PX = GT_SIDE * GT_SIDE };

static int gt_label(int64_t i, int test) { return (int)((i * 3 + (test ? 1 : 0)) % 10); }

static uint8_t gt_pixel(int64_t i, int test, int64_t p) {
  uint32_t h = (uint32_t)(i * 2654435761u) ^ (uint32_t)(p * 40503u) ^ (test ? 0x9e3779b9u : 0u);
  h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
  return (p * 7) % 10 == gt_label(i, test) ? (uint8_t)(150 + h % 100) : (uint8_t)(h % 90);
}

static void gt_put_be32(FILE *f, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  fwrite(b, 1, 4, f);
}

/* dir/<prefix>-images-idx3-ubyte and dir/<prefix>-labels-idx1-ubyte with n examples. Returns 0 on success. */
static int gt_write_split(const char *dir, const char *prefix, int64_t n, int test) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  gt_put_be32(f, 0x00000803u), gt_put_be32(f, (uint32_t)n), gt_put_be32(f, GT_SIDE), gt_put_be32(f, GT_SIDE);
  for (int64_t i = 0; i < n; i++)
    for (int64_t p = 0; p < GT_PX; p++) fputc(gt_pixel(i, test, p), f);
  if (fclose(f)) return -1;
  snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
  if (!(f = fopen(path, "wb"))) return -1;
  gt_put_be32(f, 0x00000801u), gt_put_be32(f, (uint32_t)n);
  for (int64_t i = 0; i < n; i++) fputc(gt_label(i, test), f);
  return fclose(f) ? -1 : 0;
}

/* The four files: n_train training and n_test test examples. */
static int gt_write_dataset(const char *dir, int64_t n_train, int64_t n_test) {
  return gt_write_split(dir, "train", n_train, 0) || gt_write_split(dir, "t10k", n_test, 1) ? -1 : 0;
}

#endif
