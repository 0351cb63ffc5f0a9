/* Communicators: the backend-independent collectives (slices, allgather of shares, status agreement) and the
   local one-rank backend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "comm_impl.h"

typedef struct {
  int32_t status;
  char msg[204];
} agree_item;

evo_comm *evo_comm_alloc(const evo_comm_iface *iface, const char *name, int rank, int size) {
  evo_comm *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->counts = calloc((size_t)size, sizeof(int64_t));
  c->displs = calloc((size_t)size, sizeof(int64_t));
  c->agree_buf = calloc((size_t)size, sizeof(agree_item));
  if (!c->counts || !c->displs || !c->agree_buf) {
    free(c->counts), free(c->displs), free(c->agree_buf), free(c);
    return NULL;
  }
  *c = (evo_comm){.iface = iface, .name = name, .rank = rank, .size = size, .local_rank = rank, .local_size = size,
                  .counts = c->counts, .displs = c->displs, .agree_buf = c->agree_buf};
  return c;
}

static evo_status local_allgatherv(evo_comm *c, void *buf, const int64_t *counts, const int64_t *displs) {
  (void)c, (void)buf, (void)counts, (void)displs;
  return EVO_STATUS_OK;
}
static evo_status local_broadcast(evo_comm *c, void *buf, size_t bytes, int root) {
  (void)c, (void)buf, (void)bytes, (void)root;
  return EVO_STATUS_OK;
}
static evo_status local_barrier(evo_comm *c) {
  (void)c;
  return EVO_STATUS_OK;
}
static void local_destroy(evo_comm *c) { (void)c; }

static const evo_comm_iface local_iface = {local_allgatherv, local_broadcast, local_barrier, local_destroy};

evo_status evo_comm_local_new(evo_comm **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "comm: NULL output");
  if (!(*out = evo_comm_alloc(&local_iface, "local", 0, 1))) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "comm: out of memory");
  return EVO_STATUS_OK;
}

evo_status evo_comm_open(const char *name, evo_comm **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "comm: NULL output");
  *out = NULL;
  if (!name || !strcmp(name, "auto")) return evo_comm_launched_by_mpi() ? evo_comm_mpi_new(out) : evo_comm_local_new(out);
  if (!strcmp(name, "local")) return evo_comm_local_new(out);
  if (!strcmp(name, "mpi")) return evo_comm_mpi_new(out);
  if (!strcmp(name, "nccl")) return evo_comm_nccl_new(out);
  return evo_error(EVO_STATUS_INVALID_ARGUMENT, "comm: unknown backend '%s' (auto, local, mpi or nccl)", name);
}

void evo_comm_free(evo_comm *c) {
  if (!c) return;
  c->iface->destroy(c);
  free(c->counts), free(c->displs), free(c->agree_buf), free(c);
}

const char *evo_comm_name(const evo_comm *c) { return c->name; }
int evo_comm_rank(const evo_comm *c) { return c->rank; }
int evo_comm_size(const evo_comm *c) { return c->size; }
int evo_comm_local_rank(const evo_comm *c) { return c->local_rank; }
int evo_comm_local_size(const evo_comm *c) { return c->local_size; }

void evo_comm_slice(int64_t n, int rank, int size, int64_t *begin, int64_t *end) {
  *begin = n * rank / size;
  *end = n * (rank + 1) / size;
}

evo_status evo_comm_allgather(evo_comm *c, void *buf, int64_t n, size_t item_bytes) {
  if (!c || (!buf && n > 0) || n < 0) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "comm allgather: bad arguments");
  if (c->size == 1) return EVO_STATUS_OK;
  for (int r = 0; r < c->size; r++) {
    int64_t b, e;
    evo_comm_slice(n, r, c->size, &b, &e);
    c->counts[r] = (e - b) * (int64_t)item_bytes;
    c->displs[r] = b * (int64_t)item_bytes;
  }
  return c->iface->allgatherv(c, buf, c->counts, c->displs);
}

evo_status evo_comm_broadcast(evo_comm *c, void *buf, size_t bytes, int root) {
  if (!c || (!buf && bytes) || root < 0 || root >= c->size)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "comm broadcast: bad arguments");
  return c->size == 1 ? EVO_STATUS_OK : c->iface->broadcast(c, buf, bytes, root);
}

evo_status evo_comm_barrier(evo_comm *c) {
  if (!c) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "comm barrier: NULL comm");
  return c->size == 1 ? EVO_STATUS_OK : c->iface->barrier(c);
}

evo_status evo_comm_agree(evo_comm *c, evo_status mine) {
  if (!c) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "comm agree: NULL comm");
  if (c->size == 1) return mine;
  agree_item *all = c->agree_buf;
  all[c->rank] = (agree_item){.status = (int32_t)mine};
  if (mine) snprintf(all[c->rank].msg, sizeof all[c->rank].msg, "%.200s", evo_last_error());
  evo_status st = evo_comm_allgather(c, all, c->size, sizeof *all);
  if (st) return st;
  evo_status out = EVO_STATUS_OK;
  for (int r = 0; r < c->size && !out; r++)
    if (all[r].status) {
      out = (evo_status)all[r].status;
      if (!mine) evo_error(out, "rank %d of %d failed: %s", r, c->size, all[r].msg);
    }
  return out;
}
