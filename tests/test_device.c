/* Device selection (evo_device_open) and the backend queries, on any machine: with no usable GPU (a build without
   CUDA, or the toolkit without a driver, like the development machines) "auto" falls back to the CPU and says
   why, and "cuda" is an error with the reason; with a GPU both open it. Malformed specs are rejected either way. */
#include <criterion/criterion.h>
#include <string.h>
#include "evoc/backend.h"

static int have_gpu(void) { return evo_cuda_device_count() > 0; }

Test(device, cpu_opens_the_cpu_backend) {
  char note[256];
  evo_backend *be = NULL;
  cr_assert_eq(evo_device_open("cpu", NULL, &be, note, sizeof note), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_not_null(be);
  cr_assert_str_eq(evo_backend_name(be), "cpu");
  cr_assert(evo_backend_is_host(be));
  cr_assert_null(evo_backend_stream(be));
  cr_assert_str_eq(note, "device cpu: using cpu");
  evo_backend_free(be);
  evo_backend_params p = evo_backend_default_params();
  p.n_threads = 1;
  cr_assert_eq(evo_device_open("cpu", &p, &be, NULL, 0), EVO_STATUS_OK); /* note is optional */
  evo_backend_free(be);
}

Test(device, auto_picks_cuda_or_falls_back_with_the_reason) {
  char note[256];
  evo_backend *be = NULL;
  cr_assert_eq(evo_device_open("auto", NULL, &be, note, sizeof note), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_not_null(be);
  if (have_gpu()) {
    cr_assert_str_eq(evo_backend_name(be), "cuda");
    cr_assert(!evo_backend_is_host(be));
    cr_assert_not_null(evo_backend_stream(be));
    cr_assert(!strncmp(note, "device auto: using cuda:0 (", 27), "note: %s", note);
  } else {
    cr_assert_str_eq(evo_backend_name(be), "cpu");
    /* one line naming the reason: the driver's message, no device, or a build without CUDA */
    cr_assert(!strncmp(note, "device auto: using cpu (cuda: ", 30), "note: %s", note);
    cr_assert(strlen(note) > 40 && note[strlen(note) - 1] == ')' && !strchr(note, '\n'), "note: %s", note);
  }
  evo_backend_free(be);
  /* a short buffer is truncated, never overrun */
  char small[12];
  memset(small, 'x', sizeof small);
  cr_assert_eq(evo_device_open("auto", NULL, &be, small, 8), EVO_STATUS_OK);
  cr_assert_eq(strlen(small), 7);
  cr_assert_eq(small[8], 'x');
  evo_backend_free(be);
}

Test(device, cuda_without_a_gpu_is_unsupported_with_a_message) {
  evo_backend *be = (evo_backend *)&be;
  char note[256] = "stale";
  evo_status st = evo_device_open("cuda", NULL, &be, note, sizeof note);
  if (have_gpu()) {
    cr_assert_eq(st, EVO_STATUS_OK, "%s", evo_last_error());
    cr_assert(!strncmp(note, "device cuda: using cuda:0 (", 27), "note: %s", note);
    evo_backend_free(be);
    cr_assert_eq(evo_device_open("cuda:0", NULL, &be, NULL, 0), EVO_STATUS_OK, "%s", evo_last_error());
    evo_backend_free(be);
    return;
  }
  cr_assert_eq(st, EVO_STATUS_UNSUPPORTED, "status %s", evo_status_str(st));
  cr_assert_null(be);
  cr_assert_str_eq(note, "", "no note on failure: %s", note);
  cr_assert(!strncmp(evo_last_error(), "device cuda: cuda: ", 19), "message: %s", evo_last_error());
  cr_assert_gt(strlen(evo_last_error()), 25, "message: %s", evo_last_error());
  cr_assert_eq(evo_device_open("cuda:1", NULL, &be, NULL, 0), EVO_STATUS_UNSUPPORTED);
  cr_assert(strstr(evo_last_error(), "device cuda:1: "), "message: %s", evo_last_error());
  be = (evo_backend *)&be;
  cr_assert_eq(evo_backend_cuda_new(0, &be), EVO_STATUS_UNSUPPORTED);
  cr_assert_null(be);
  cr_assert(!strncmp(evo_last_error(), "cuda: ", 6), "message: %s", evo_last_error());
  cr_assert_eq(evo_cuda_device_count(), 0);
}

Test(device, malformed_specs_are_invalid_arguments) {
  const char *bad[] = {"gpu", "cuda:x", "cuda:", "cuda:-1", "cuda:1x", "CUDA", "cpu:0", "", " cuda", "cuda:1234567"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    evo_backend *be = (evo_backend *)&be;
    evo_status st = evo_device_open(bad[i], NULL, &be, NULL, 0);
    cr_assert_eq(st, EVO_STATUS_INVALID_ARGUMENT, "'%s': %s", bad[i], evo_status_str(st));
    cr_assert_null(be, "'%s'", bad[i]);
    cr_assert(strstr(evo_last_error(), "expected auto, cpu, cuda or cuda:N"), "'%s': %s", bad[i], evo_last_error());
  }
  evo_backend *be = NULL;
  cr_assert_eq(evo_device_open(NULL, NULL, &be, NULL, 0), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert_eq(evo_device_open("cpu", NULL, NULL, NULL, 0), EVO_STATUS_INVALID_ARGUMENT);
  /* a device number past the last GPU: invalid with GPUs present, unsupported without */
  evo_status st = evo_device_open("cuda:99", NULL, &be, NULL, 0);
  cr_assert_eq(st, have_gpu() ? EVO_STATUS_INVALID_ARGUMENT : EVO_STATUS_UNSUPPORTED, "cuda:99: %s (%s)",
               evo_status_str(st), evo_last_error());
  cr_assert_null(be);
}

/* evo_tensor_copy: within one backend, between two CPU backends, host <-> device and device -> device on a GPU;
   a dtype or size mismatch is refused with a message. */
Test(device, tensor_copy_between_backends) {
  const float src[6] = {1, -2, 3.5f, 4, 5e-3f, -6};
  const int64_t s[2] = {2, 3};
  evo_backend *a = evo_backend_cpu_new(NULL), *b = evo_backend_cpu_new(NULL), *gpu = NULL;
  if (have_gpu()) cr_assert_eq(evo_backend_cuda_new(0, &gpu), EVO_STATUS_OK, "%s", evo_last_error());
  evo_backend *chain[4] = {a, b, gpu ? gpu : a, gpu ? gpu : b}; /* a -> b -> (gpu -> gpu) -> back to b */
  evo_tensor *t[5];
  t[0] = evo_tensor_from_host(a, EVO_F32, 2, s, src);
  for (int i = 0; i < 4; i++) {
    t[i + 1] = evo_tensor_new(chain[i], EVO_F32, 2, s);
    cr_assert_not_null(t[i + 1], "%s", evo_last_error());
  }
  cr_assert_eq(evo_tensor_copy(t[1], t[0]), EVO_STATUS_OK, "%s", evo_last_error()); /* cpu a -> cpu b */
  cr_assert_eq(evo_tensor_copy(t[2], t[1]), EVO_STATUS_OK, "%s", evo_last_error()); /* -> gpu (or a) */
  cr_assert_eq(evo_tensor_copy(t[3], t[2]), EVO_STATUS_OK, "%s", evo_last_error()); /* gpu -> gpu (or a -> b) */
  evo_tensor *back = evo_tensor_new(b, EVO_F32, 2, s);
  cr_assert_eq(evo_tensor_copy(back, t[3]), EVO_STATUS_OK, "%s", evo_last_error()); /* -> cpu b */
  float got[6] = {0};
  for (int i = 0; i < 4; i++) cr_assert_eq(evo_backend_sync(chain[i]), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_tensor_copy_to_host(back, got, sizeof got), EVO_STATUS_OK);
  cr_assert_arr_eq(got, src, sizeof src);
  evo_tensor *small = evo_tensor_new(a, EVO_F32, 1, (int64_t[]){5}), *ints = evo_tensor_new(a, EVO_I32, 2, s);
  cr_assert_eq(evo_tensor_copy(small, t[0]), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "dtype or size differs"), "%s", evo_last_error());
  cr_assert_eq(evo_tensor_copy(ints, t[0]), EVO_STATUS_INVALID_ARGUMENT);
  evo_tensor_free(small), evo_tensor_free(ints), evo_tensor_free(back);
  for (int i = 0; i < 5; i++) evo_tensor_free(t[i]);
  evo_backend_free(gpu), evo_backend_free(b), evo_backend_free(a);
}
