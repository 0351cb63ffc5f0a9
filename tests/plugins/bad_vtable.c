/* A task plugin with the right ABI version but no step function: refused as malformed. */
#include <stddef.h>
#include "evoc/task.h"

static evo_status bad_vtable_create(evo_cfg *cfg, const evo_task_args *args, void **state) {
  (void)cfg;
  (void)args;
  *state = NULL;
  return EVO_STATUS_INTERNAL;
}
static void bad_vtable_spec(const void *state, evo_task_spec *out) {
  (void)state;
  (void)out;
}
static evo_status bad_vtable_reset(void *state, int64_t n, const evo_key *keys, float *obs) {
  (void)state;
  (void)n;
  (void)keys;
  (void)obs;
  return EVO_STATUS_INTERNAL;
}
static void bad_vtable_destroy(void *state) { (void)state; }

static const evo_task_vtable bad_vtable_vtable = {
    .abi_version = EVO_TASK_ABI_VERSION,
    .name = "bad_vtable",
    .doc = "test plugin without step",
    .create = bad_vtable_create,
    .spec = bad_vtable_spec,
    .reset = bad_vtable_reset,
    .step = NULL,
    .destroy = bad_vtable_destroy,
};

const evo_task_vtable *evo_task_plugin_entry(void) { return &bad_vtable_vtable; }
