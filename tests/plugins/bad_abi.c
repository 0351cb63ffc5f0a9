/* A task plugin built against a future task ABI: the loader must refuse it before calling anything. */
#include <stddef.h>
#include "evoc/task.h"

#define BAD_ABI_VERSION 999u

static evo_status bad_abi_create(evo_cfg *cfg, const evo_task_args *args, void **state) {
  (void)cfg;
  (void)args;
  *state = NULL;
  return EVO_STATUS_INTERNAL; /* never reached: the version check comes first */
}

static const evo_task_vtable bad_abi_vtable = {
    .abi_version = BAD_ABI_VERSION,
    .name = "bad_abi",
    .doc = "test plugin with a wrong ABI version",
    .create = bad_abi_create,
};

const evo_task_vtable *evo_task_plugin_entry(void) { return &bad_abi_vtable; }
