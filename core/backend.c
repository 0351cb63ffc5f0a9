/* Backend-independent allocation bookkeeping. */
#include <stdlib.h>
#include "backend_impl.h"

evo_backend_params evo_backend_default_params(void) { return (evo_backend_params){.n_threads = 0}; }

void *evo_backend_alloc(evo_backend *be, size_t nbytes) {
  void *p = be->iface->alloc(be->ctx, nbytes ? nbytes : 1);
  if (p) be->n_allocs++;
  return p;
}

void evo_backend_release(evo_backend *be, void *ptr) {
  if (ptr) be->iface->free(be->ctx, ptr);
}

uint64_t evo_backend_alloc_count(const evo_backend *be) { return be->n_allocs; }
const char *evo_backend_name(const evo_backend *be) { return be->iface->name; }

void evo_backend_free(evo_backend *be) {
  if (!be) return;
  if (be->iface->destroy) be->iface->destroy(be->ctx);
  free(be);
}

evo_status evo_backend_sync(evo_backend *be) { return be->iface->sync ? be->iface->sync(be->ctx) : EVO_STATUS_OK; }
