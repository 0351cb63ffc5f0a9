/* Shared by the GPU tests: the CUDA backend on device 0, or a Criterion skip that gives the backend's reason (no
   driver, no device, a build without CUDA). */
#ifndef EVOC_TESTS_CUDA_TEST_UTIL_H
#define EVOC_TESTS_CUDA_TEST_UTIL_H
#include <criterion/criterion.h>
#include "evoc/backend.h"

static evo_backend *cuda_or_skip(void) {
  evo_backend *be = NULL;
  if (evo_cuda_device_count() == 0) {
    evo_backend_cuda_new(0, &be);
    cr_skip_test("no usable CUDA device: %s", evo_last_error());
  }
  cr_assert_eq(evo_backend_cuda_new(0, &be), EVO_STATUS_OK, "%s", evo_last_error());
  return be;
}

#endif
