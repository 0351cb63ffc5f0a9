/* Parameter trees: layout, initializers, safetensors save/load (round trip, transfer learning, a file written by
   NumPy) and malformed files. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "evoc/ptree.h"
#include "safetensors.h"

#ifndef EVOC_TEST_DATA
#define EVOC_TEST_DATA "tests/data"
#endif

#define TN_STD 0.87962566103423978 /* std of N(0,1) truncated to [-2, 2] */

/* Unique per process so parallel test runs do not collide; removed by each test. */
static void tmp_path(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "/tmp/evoc_test_ptree_%ld_%s", (long)getpid(), name);
}

static evo_param_spec spec2(const char *name, int64_t a, int64_t b, evo_init init, float scale) {
  evo_param_spec s = {.name = name, .ndim = 2, .shape = {a, b}, .init = init, .scale = scale};
  return s;
}

static evo_param_spec spec1(const char *name, int64_t a, evo_init init, float scale) {
  evo_param_spec s = {.name = name, .ndim = 1, .shape = {a}, .init = init, .scale = scale};
  return s;
}

static evo_ptree *mlp_tree(int64_t out) {
  evo_ptree *t = evo_ptree_new();
  evo_param_spec s[4] = {spec2("dense1.kernel", 3, 4, EVO_INIT_LECUN_NORMAL, 0),
                         spec1("dense1.bias", 4, EVO_INIT_ZEROS, 0),
                         spec2("out.kernel", 4, out, EVO_INIT_GLOROT_UNIFORM, 0),
                         spec1("out.bias", out, EVO_INIT_CONSTANT, 0.5f)};
  for (int i = 0; i < 4; i++) cr_assert_eq(evo_ptree_add(t, &s[i]), EVO_STATUS_OK, "%s", evo_last_error());
  return t;
}

/* ---------------------------------------------------------------- layout */

Test(ptree, flatten_order_offsets_sizes) {
  evo_ptree *t = mlp_tree(2);
  char name[16] = "scalar";
  evo_param_spec sc = {.name = name, .ndim = 0, .init = EVO_INIT_ONES};
  const evo_param_spec *first = evo_ptree_spec(t, 0);
  cr_assert_eq(evo_ptree_add(t, &sc), EVO_STATUS_OK);
  strcpy(name, "changed"); /* the tree keeps its own copy of the name */
  cr_assert_eq(evo_ptree_count(t), 5);
  cr_assert_eq(evo_ptree_size(t), 12 + 4 + 8 + 2 + 1);
  int64_t want_off[5] = {0, 12, 16, 24, 26};
  const char *want_name[5] = {"dense1.kernel", "dense1.bias", "out.kernel", "out.bias", "scalar"};
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(evo_ptree_offset(t, i), want_off[i], "entry %d", i);
    cr_assert_str_eq(evo_ptree_spec(t, i)->name, want_name[i]);
    cr_assert_eq(evo_ptree_find(t, want_name[i]), i);
  }
  cr_assert_eq(evo_ptree_spec(t, 0), first, "spec pointers stay valid after later adds");
  cr_assert_eq(evo_ptree_spec(t, 2)->shape[1], 2);
  cr_assert_eq(evo_ptree_find(t, "changed"), -1);
  cr_assert_eq(evo_ptree_find(t, "nope"), -1);
  cr_assert_null(evo_ptree_spec(t, 5));
  cr_assert_eq(evo_ptree_offset(t, -1), -1);
  evo_ptree_free(t);
}

Test(ptree, duplicates_and_bad_specs_rejected) {
  evo_ptree *t = mlp_tree(2);
  evo_param_spec dup = spec1("dense1.bias", 7, EVO_INIT_ZEROS, 0);
  cr_assert_eq(evo_ptree_add(t, &dup), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "duplicate") && strstr(evo_last_error(), "dense1.bias"), "%s", evo_last_error());
  evo_param_spec bad[4] = {spec2("zero", 0, 3, EVO_INIT_ZEROS, 0), spec2("neg", 2, -1, EVO_INIT_ZEROS, 0),
                           spec1("badinit", 3, (evo_init)99, 0), spec1(NULL, 3, EVO_INIT_ZEROS, 0)};
  for (int i = 0; i < 4; i++) cr_assert_eq(evo_ptree_add(t, &bad[i]), EVO_STATUS_INVALID_ARGUMENT, "bad spec %d", i);
  evo_param_spec deep = {.name = "deep", .ndim = EVO_MAX_DIMS + 1, .init = EVO_INIT_ZEROS};
  cr_assert_eq(evo_ptree_add(t, &deep), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert_eq(evo_ptree_count(t), 4, "failed adds leave the tree unchanged");
  cr_assert_eq(evo_ptree_size(t), 26);
  evo_ptree_free(t);
}

/* ---------------------------------------------------------------- initializers */

typedef struct {
  evo_init init;
  float scale;
  int ndim;
  int64_t shape[4];
  double want_std; /* from the documented formula */
  double bound;    /* |x| <= bound, 0 = unbounded */
} init_case;

Test(ptree, initializer_statistics) {
  const double fi = 256, fo = 1024, cfi = 3 * 3 * 64; /* dense [256, 1024]; conv [3, 3, 64, 128] */
  const double ga = sqrt(6 / (fi + fo)), ha = sqrt(6 / fi);
  init_case cases[] = {
      {EVO_INIT_UNIFORM, 0.3f, 2, {256, 1024}, 0.3 / sqrt(3), 0.3},
      {EVO_INIT_NORMAL, 0.7f, 2, {256, 1024}, 0.7, 0},
      {EVO_INIT_TRUNCATED_NORMAL, 0.5f, 2, {256, 1024}, 0.5 * TN_STD, 1.0},
      {EVO_INIT_GLOROT_UNIFORM, 0, 2, {256, 1024}, ga / sqrt(3), ga},
      {EVO_INIT_GLOROT_NORMAL, 0, 2, {256, 1024}, sqrt(2 / (fi + fo)), 0},
      {EVO_INIT_LECUN_NORMAL, 0, 2, {256, 1024}, sqrt(1 / fi), 2 * sqrt(1 / fi) / TN_STD},
      {EVO_INIT_HE_NORMAL, 0, 2, {256, 1024}, sqrt(2 / fi), 2 * sqrt(2 / fi) / TN_STD},
      {EVO_INIT_HE_UNIFORM, 0, 2, {256, 1024}, ha / sqrt(3), ha},
      {EVO_INIT_HE_NORMAL, 0, 4, {3, 3, 64, 128}, sqrt(2 / cfi), 2 * sqrt(2 / cfi) / TN_STD},
      {EVO_INIT_LECUN_NORMAL, 0, 4, {3, 3, 64, 128}, sqrt(1 / cfi), 2 * sqrt(1 / cfi) / TN_STD},
  };
  int nc = (int)(sizeof cases / sizeof cases[0]);
  for (int c = 0; c < nc; c++) {
    evo_ptree *t = evo_ptree_new();
    evo_param_spec s = {.name = "w", .ndim = cases[c].ndim, .init = cases[c].init, .scale = cases[c].scale};
    memcpy(s.shape, cases[c].shape, sizeof cases[c].shape);
    cr_assert_eq(evo_ptree_add(t, &s), EVO_STATUS_OK);
    int64_t n = evo_ptree_size(t);
    float *x = malloc((size_t)n * sizeof *x);
    cr_assert_eq(evo_ptree_init(t, evo_key_from_seed(1234 + (uint64_t)c), x), EVO_STATUS_OK);
    double sum = 0, sq = 0, amax = 0;
    for (int64_t j = 0; j < n; j++) {
      sum += x[j];
      sq += (double)x[j] * x[j];
      if (fabs(x[j]) > amax) amax = fabs(x[j]);
    }
    double mean = sum / n, std = sqrt(sq / n - mean * mean), w = cases[c].want_std;
    cr_assert(fabs(mean) < 5 * w / sqrt((double)n), "case %d (init %d): mean %g", c, cases[c].init, mean);
    cr_assert(fabs(std / w - 1) < 0.01, "case %d (init %d): std %g, formula %g", c, cases[c].init, std, w);
    if (cases[c].bound > 0) {
      cr_assert(amax <= cases[c].bound * (1 + 1e-6), "case %d: |x| max %g > bound %g", c, amax, cases[c].bound);
      cr_assert(amax > 0.95 * cases[c].bound, "case %d: |x| max %g never nears bound %g", c, amax, cases[c].bound);
    } else {
      cr_assert(amax > 3 * w, "case %d: untruncated normal should have tails (max %g, std %g)", c, amax, w);
    }
    free(x);
    evo_ptree_free(t);
  }
}

Test(ptree, constant_initializers_exact) {
  evo_ptree *t = evo_ptree_new();
  evo_param_spec s[3] = {spec2("z", 5, 7, EVO_INIT_ZEROS, 9), spec1("o", 6, EVO_INIT_ONES, 9),
                         spec2("c", 2, 3, EVO_INIT_CONSTANT, -0.375f)};
  for (int i = 0; i < 3; i++) cr_assert_eq(evo_ptree_add(t, &s[i]), EVO_STATUS_OK);
  float x[35 + 6 + 6];
  for (int j = 0; j < 47; j++) x[j] = NAN;
  cr_assert_eq(evo_ptree_init(t, evo_key_from_seed(5), x), EVO_STATUS_OK);
  for (int j = 0; j < 35; j++) cr_assert(x[j] == 0.0f && !signbit(x[j]));
  for (int j = 35; j < 41; j++) cr_assert(x[j] == 1.0f);
  for (int j = 41; j < 47; j++) cr_assert(x[j] == -0.375f);
  evo_ptree_free(t);
}

Test(ptree, initialization_is_deterministic_per_key) {
  evo_ptree *t = mlp_tree(3);
  evo_param_spec extra = spec2("noise", 10, 10, EVO_INIT_NORMAL, 2.0f);
  cr_assert_eq(evo_ptree_add(t, &extra), EVO_STATUS_OK);
  int64_t n = evo_ptree_size(t);
  float a[256], b[256], c[256];
  cr_assert(n <= 256);
  evo_key k = evo_key_from_seed(42);
  evo_ptree_init(t, k, a);
  evo_ptree_init(t, k, b);
  evo_ptree_init(t, evo_key_from_seed(43), c);
  cr_assert_arr_eq(a, b, (size_t)n * sizeof *a, "same key, same parameters");
  cr_assert(memcmp(a, c, (size_t)n * sizeof *a) != 0, "another key, other parameters");
  /* Entry i draws from fold_in(key, i): entry 4 ("noise") is 2 * normal stream of fold_in(k, 4). */
  float ref[100];
  evo_rng_fill_normal(evo_key_fold_in(k, 4), ref, 100);
  int64_t off = evo_ptree_offset(t, 4);
  for (int j = 0; j < 100; j++) cr_assert_eq(a[off + j], (float)(ref[j] * 2.0), "element %d", j);
  /* Adding entries never changes the values of earlier ones. */
  evo_ptree *small = mlp_tree(3);
  float s[64];
  evo_ptree_init(small, k, s);
  cr_assert_arr_eq(s, a, (size_t)evo_ptree_size(small) * sizeof *s);
  evo_ptree_free(small);
  evo_ptree_free(t);
}

/* ---------------------------------------------------------------- save / load */

Test(ptree, save_load_round_trip_bit_exact) {
  char path[256], tmp[300];
  tmp_path(path, sizeof path, "roundtrip.safetensors");
  evo_ptree *t = mlp_tree(2);
  int64_t n = evo_ptree_size(t);
  float a[26], b[26];
  evo_ptree_init(t, evo_key_from_seed(7), a);
  a[0] = -0.0f; /* special values survive as bits */
  a[1] = INFINITY;
  a[2] = 1e-40f; /* subnormal */
  uint32_t qnan = 0x7fc01234u;
  memcpy(&a[3], &qnan, 4);
  memset(b, 0xab, sizeof b);
  cr_assert_eq(evo_ptree_save(t, a, path), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_ptree_load(t, b, path), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_arr_eq(a, b, (size_t)n * sizeof *a);

  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  struct stat sb;
  cr_assert_neq(stat(tmp, &sb), 0, "the temp file is renamed away");
  cr_assert_eq(stat(path, &sb), 0);
  evo_st_reader *r;
  cr_assert_eq(evo_st_open(path, &r), EVO_STATUS_OK);
  cr_assert_str_eq(evo_st_metadata(r, "format"), "evoc");
  cr_assert_eq(evo_st_count(r), 4);
  cr_assert_str_eq(evo_st_info_at(r, 2)->name, "out.kernel");
  evo_st_close(r);
  FILE *f = fopen(path, "rb");
  unsigned char len8[8];
  cr_assert_eq(fread(len8, 1, 8, f), 8);
  fclose(f);
  uint64_t hlen = 0;
  for (int i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
  cr_assert_eq(hlen % 8, 0, "header padded to a multiple of 8");
  cr_assert_eq((uint64_t)sb.st_size, 8 + hlen + (uint64_t)n * 4);

  /* Overwriting an existing file works (rename over it). */
  a[5] = 123.0f;
  cr_assert_eq(evo_ptree_save(t, a, path), EVO_STATUS_OK);
  cr_assert_eq(evo_ptree_load(t, b, path), EVO_STATUS_OK);
  cr_assert_eq(b[5], 123.0f);
  remove(path);
  evo_ptree_free(t);
}

Test(ptree, load_matching_for_transfer_learning) {
  char path[256];
  tmp_path(path, sizeof path, "transfer.safetensors");
  evo_ptree *src = mlp_tree(2), *dst = mlp_tree(5); /* same body, new head with 5 outputs */
  evo_param_spec extra = spec1("head2.bias", 3, EVO_INIT_ZEROS, 0);
  cr_assert_eq(evo_ptree_add(dst, &extra), EVO_STATUS_OK);
  float a[26], b[64];
  evo_ptree_init(src, evo_key_from_seed(1), a);
  cr_assert_eq(evo_ptree_save(src, a, path), EVO_STATUS_OK);
  int64_t nb = evo_ptree_size(dst);
  for (int64_t j = 0; j < nb; j++) b[j] = 7.0f;

  /* A strict load fails on the changed head and touches nothing. */
  cr_assert_eq(evo_ptree_load(dst, b, path), EVO_STATUS_FORMAT);
  cr_assert(strstr(evo_last_error(), path) && strstr(evo_last_error(), "out.kernel"), "%s", evo_last_error());
  for (int64_t j = 0; j < nb; j++) cr_assert_eq(b[j], 7.0f);

  int n_loaded = -1;
  cr_assert_eq(evo_ptree_load_matching(dst, b, path, &n_loaded), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(n_loaded, 2, "dense1.kernel and dense1.bias match");
  cr_assert_arr_eq(b, a, 16 * sizeof *a, "the body is loaded");
  for (int64_t j = 16; j < nb; j++) cr_assert_eq(b[j], 7.0f, "element %lld of the new head is untouched", (long long)j);

  /* Missing entries: strict load says which. */
  evo_ptree *more = mlp_tree(2);
  cr_assert_eq(evo_ptree_add(more, &extra), EVO_STATUS_OK);
  cr_assert_eq(evo_ptree_load(more, b, path), EVO_STATUS_NOT_FOUND);
  cr_assert(strstr(evo_last_error(), "head2.bias") && strstr(evo_last_error(), path), "%s", evo_last_error());
  remove(path);
  evo_ptree_free(more);
  evo_ptree_free(src);
  evo_ptree_free(dst);
}

Test(ptree, reads_file_written_by_numpy) {
  const char *path = EVOC_TEST_DATA "/numpy_params.safetensors";
  evo_ptree *t = evo_ptree_new();
  evo_param_spec s[2] = {spec2("dense1.kernel", 3, 4, EVO_INIT_ZEROS, 0), spec1("dense1.bias", 4, EVO_INIT_ZEROS, 0)};
  for (int i = 0; i < 2; i++) evo_ptree_add(t, &s[i]);
  float x[16];
  cr_assert_eq(evo_ptree_load(t, x, path), EVO_STATUS_OK, "%s", evo_last_error());
  for (int i = 0; i < 12; i++) cr_assert_eq(x[i], i * 0.5f - 1.0f, "kernel[%d] = %g", i, x[i]);
  for (int i = 0; i < 4; i++) cr_assert_eq(x[12 + i], i * 0.25f + 2.0f, "bias[%d] = %g", i, x[12 + i]);

  evo_st_reader *r;
  cr_assert_eq(evo_st_open(path, &r), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_st_count(r), 4);
  cr_assert_str_eq(evo_st_metadata(r, "source"), "numpy");
  cr_assert_null(evo_st_metadata(r, "format"));
  const evo_st_info *k = evo_st_info_at(r, evo_st_find(r, "dense1.kernel"));
  cr_assert(k && k->dtype == EVO_F32 && k->ndim == 2 && k->shape[0] == 3 && k->shape[1] == 4 && k->numel == 12);
  int is = evo_st_find(r, "step"), im = evo_st_find(r, "mask");
  const evo_st_info *si = evo_st_info_at(r, is), *mi = evo_st_info_at(r, im);
  cr_assert(si && si->dtype == EVO_I32 && !strcmp(si->dtype_name, "I32") && si->ndim == 1 && si->shape[0] == 2);
  cr_assert(mi && mi->dtype == EVO_U8 && mi->itemsize == 1 && mi->ndim == 1 && mi->shape[0] == 3);
  int32_t step[2];
  uint8_t mask[3];
  cr_assert_eq(evo_st_read(r, is, step, sizeof step), EVO_STATUS_OK);
  cr_assert_eq(evo_st_read(r, im, mask, sizeof mask), EVO_STATUS_OK);
  cr_assert(step[0] == -7 && step[1] == 123456789);
  cr_assert(mask[0] == 0 && mask[1] == 1 && mask[2] == 255);
  cr_assert_eq(evo_st_read(r, im, mask, 2), EVO_STATUS_INVALID_ARGUMENT, "short destination refused");
  evo_st_close(r);
  evo_ptree_free(t);
}

/* ---------------------------------------------------------------- malformed files */

static void write_raw(const char *path, const void *bytes, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(bytes, 1, n, f), n);
  fclose(f);
}

/* 8-byte length (hlen_field, or the header's length when 0) + header + data_len bytes of data. */
static void write_st(const char *path, const char *header, uint64_t hlen_field, size_t data_len) {
  size_t hl = strlen(header), n = 8 + hl + data_len;
  unsigned char *buf = calloc(1, n);
  uint64_t len = hlen_field ? hlen_field : hl;
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(len >> (8 * i));
  memcpy(buf + 8, header, hl);
  write_raw(path, buf, n);
  free(buf);
}

typedef struct {
  const char *what, *header;
  uint64_t hlen_field;
  size_t data_len;
  evo_status want;
  const char *msg; /* must appear in the error message, besides the path */
} bad_case;

Test(ptree, malformed_files_report_path_and_problem) {
  const bad_case cases[] = {
      {"header length beyond the file", "{}", 1000, 16, EVO_STATUS_FORMAT, "exceeds"},
      {"not JSON", "{\"w\": {\"dtype\": ", 0, 16, EVO_STATUS_FORMAT, "JSON"},
      {"not an object", "[1, 2]   ", 0, 0, EVO_STATUS_FORMAT, "'{'"},
      {"garbage after JSON", "{} x", 0, 0, EVO_STATUS_FORMAT, "after the header"},
      {"offsets outside data", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,64]}}", 0, 16,
       EVO_STATUS_FORMAT, "outside"},
      {"end before begin", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,0]}}", 0, 16,
       EVO_STATUS_FORMAT, "end before begin"},
      {"unknown dtype", "{\"w\":{\"dtype\":\"F33\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 0, 16,
       EVO_STATUS_FORMAT, "unknown dtype"},
      {"wrong dtype for the tree", "{\"w\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 0, 16,
       EVO_STATUS_FORMAT, "expected F32"},
      {"shape does not match span", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,16]}}", 0, 16,
       EVO_STATUS_FORMAT, "span"},
      {"shape differs from the tree", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, 16,
       EVO_STATUS_FORMAT, "expects [2, 2]"},
      {"negative dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2,-2],\"data_offsets\":[0,16]}}", 0, 16,
       EVO_STATUS_FORMAT, "shape[0]"},
      {"fractional offset", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,15.5]}}", 0, 16,
       EVO_STATUS_FORMAT, "data_offsets"},
      {"overlapping tensors",
       "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
       "\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
       0, 16, EVO_STATUS_FORMAT, "overlap"},
      {"gap between tensors",
       "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]},"
       "\"v\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
       0, 24, EVO_STATUS_FORMAT, "unused"},
      {"trailing data", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 0, 20,
       EVO_STATUS_FORMAT, "cover"},
      {"duplicate tensor", "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                           "\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}",
       0, 4, EVO_STATUS_FORMAT, "duplicate"},
      {"duplicate among many", "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                               "\"v\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]},"
                               "\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}",
       0, 4, EVO_STATUS_FORMAT, "duplicate tensor name 'w'"},
      /* bounded memory: a 2^40-element shape is checked against its byte span, never allocated */
      {"2^40 elements, small span", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1048576,1048576],\"data_offsets\":[0,16]}}",
       0, 16, EVO_STATUS_FORMAT, "shape needs 4398046511104 bytes of F32 but data_offsets span 16"},
      {"2^40 elements, span past the file",
       "{\"w\":{\"dtype\":\"F32\",\"shape\":[1048576,1048576],\"data_offsets\":[0,4398046511104]}}", 0, 16,
       EVO_STATUS_FORMAT, "outside the 16-byte data section"},
      {"metadata not strings", "{\"__metadata__\":{\"a\":1}}", 0, 0, EVO_STATUS_FORMAT, "metadata"},
      {"missing entry", "{\"v\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 0, 16,
       EVO_STATUS_NOT_FOUND, "'w'"},
  };
  char path[256];
  tmp_path(path, sizeof path, "bad.safetensors");
  evo_ptree *t = evo_ptree_new();
  evo_param_spec s = spec2("w", 2, 2, EVO_INIT_ZEROS, 0);
  evo_ptree_add(t, &s);
  float x[4] = {1, 2, 3, 4};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    write_st(path, cases[c].header, cases[c].hlen_field, cases[c].data_len);
    evo_status st = evo_ptree_load(t, x, path);
    const char *m = evo_last_error();
    cr_assert_eq(st, cases[c].want, "%s: got %s (%s)", cases[c].what, evo_status_str(st), m);
    cr_assert(strstr(m, path) && strstr(m, cases[c].msg), "%s: message '%s' lacks '%s'", cases[c].what, m,
              cases[c].msg);
    cr_assert(x[0] == 1 && x[3] == 4, "%s: flat untouched", cases[c].what);
  }

  /* Truncated files: shorter than the length prefix, and a valid file cut inside its data. */
  write_raw(path, "\x10\0\0\0\0", 5);
  cr_assert_eq(evo_ptree_load(t, x, path), EVO_STATUS_FORMAT);
  cr_assert(strstr(evo_last_error(), path) && strstr(evo_last_error(), "too short"), "%s", evo_last_error());
  cr_assert_eq(evo_ptree_save(t, x, path), EVO_STATUS_OK);
  cr_assert_eq(truncate(path, 8 + 8), 0);
  cr_assert_eq(evo_ptree_load(t, x, path), EVO_STATUS_FORMAT);
  cr_assert(strstr(evo_last_error(), path) && strstr(evo_last_error(), "exceeds"), "%s", evo_last_error());
  cr_assert_eq(evo_ptree_save(t, x, path), EVO_STATUS_OK);
  struct stat sb;
  stat(path, &sb);
  cr_assert_eq(truncate(path, sb.st_size - 4), 0);
  cr_assert_eq(evo_ptree_load(t, x, path), EVO_STATUS_FORMAT);
  cr_assert(strstr(evo_last_error(), path) && strstr(evo_last_error(), "outside"), "%s", evo_last_error());
  remove(path);

  /* Missing file, and an unwritable destination. */
  cr_assert_eq(evo_ptree_load(t, x, path), EVO_STATUS_IO);
  cr_assert(strstr(evo_last_error(), path) && strstr(evo_last_error(), "cannot open"), "%s", evo_last_error());
  const char *nodir = "/nonexistent_evoc_dir/params.safetensors";
  cr_assert_eq(evo_ptree_save(t, x, nodir), EVO_STATUS_IO);
  cr_assert(strstr(evo_last_error(), nodir), "%s", evo_last_error());
  evo_ptree_free(t);
}

/* Found while fuzzing core/safetensors.c: duplicate names were found by comparing every pair of entries, so a 6 MB
   header of 100k (valid, empty) tensors took a minute to open and one near the 100 MB header limit hours. */
Test(ptree, many_entries_open_in_linearithmic_time, .timeout = 20) {
  enum { N = 100000 };
  size_t cap = (size_t)N * 64 + 16, len = 0;
  char *h = malloc(cap);
  cr_assert_not_null(h);
  h[len++] = '{';
  for (int i = 0; i < N; i++)
    len += (size_t)snprintf(h + len, cap - len, "%s\"t%07d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                            i ? "," : "", i);
  snprintf(h + len, cap - len, "}");
  char path[256];
  tmp_path(path, sizeof path, "many.safetensors");
  write_st(path, h, 0, 0);
  evo_st_reader *r = NULL;
  cr_assert_eq(evo_st_open(path, &r), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_st_count(r), N);
  cr_assert_eq(evo_st_find(r, "t0099999"), N - 1);
  evo_st_close(r);
  /* the same header with the last name repeated is still refused */
  memcpy(strstr(h, "\"t0099999\""), "\"t0000000\"", 10);
  write_st(path, h, 0, 0);
  cr_assert_eq(evo_st_open(path, &r), EVO_STATUS_FORMAT);
  cr_assert(strstr(evo_last_error(), "duplicate tensor name 't0000000'"), "%s", evo_last_error());
  remove(path);
  free(h);
}

Test(ptree, writer_rejects_bad_tensor_lists) {
  char path[256];
  tmp_path(path, sizeof path, "writer.safetensors");
  float d[2] = {1, 2};
  int64_t sh[1] = {2};
  evo_st_tensor ts[2] = {{"a", EVO_F32, 1, sh, d}, {"a", EVO_F32, 1, sh, d}};
  cr_assert_eq(evo_st_write(path, ts, 2, NULL, 0), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "duplicate") && strstr(evo_last_error(), path), "%s", evo_last_error());
  ts[1].name = "__metadata__";
  cr_assert_eq(evo_st_write(path, ts, 2, NULL, 0), EVO_STATUS_INVALID_ARGUMENT);
  struct stat sb;
  cr_assert_neq(stat(path, &sb), 0, "nothing written on failure");
}
