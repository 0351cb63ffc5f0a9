/* In-process ranks: one evo_comm per thread, all meeting at one rendezvous (a barrier and a staging buffer), so a
   single process can drive several devices (one GPU per rank thread) without MPI, and the distributed code paths
   run under the sanitizers without MPI's noise. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "comm_impl.h"

typedef struct {
  pthread_barrier_t barrier;
  pthread_mutex_t mu;
  unsigned char *stage; /* rank 0 grows it between two barriers; every rank reads or writes its part between two */
  size_t cap;
  int refs;
} rendezvous;

static rendezvous *rv(const evo_comm *c) { return c->ctx; }
static void meet(const evo_comm *c) { pthread_barrier_wait(&rv(c)->barrier); }

/* Every rank: after it returns, the stage holds at least bytes (rank 0 grew it while the others waited). */
static evo_status stage_for(evo_comm *c, size_t bytes) {
  rendezvous *r = rv(c);
  meet(c); /* the previous collective is over everywhere */
  int ok = 1;
  if (c->rank == 0 && bytes > r->cap) {
    unsigned char *p = realloc(r->stage, bytes);
    if (p) r->stage = p, r->cap = bytes;
    else ok = 0;
  }
  meet(c);
  if (!ok || r->cap < bytes) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "comm threads: out of memory for %zu bytes", bytes);
  return EVO_STATUS_OK;
}

static evo_status threads_allgatherv(evo_comm *c, void *buf, const int64_t *counts, const int64_t *displs) {
  size_t total = 0;
  for (int r = 0; r < c->size; r++)
    if ((size_t)(displs[r] + counts[r]) > total) total = (size_t)(displs[r] + counts[r]);
  evo_status st = stage_for(c, total);
  if (st) return st;
  unsigned char *stage = rv(c)->stage; /* NULL while nothing was ever gathered: then every count is 0 */
  if (counts[c->rank] > 0)
    memcpy(stage + displs[c->rank], (unsigned char *)buf + displs[c->rank], (size_t)counts[c->rank]);
  meet(c);
  for (int r = 0; r < c->size; r++)
    if (r != c->rank && counts[r] > 0) memcpy((unsigned char *)buf + displs[r], stage + displs[r], (size_t)counts[r]);
  return EVO_STATUS_OK;
}

static evo_status threads_broadcast(evo_comm *c, void *buf, size_t bytes, int root) {
  evo_status st = stage_for(c, bytes);
  if (st) return st;
  if (c->rank == root && bytes) memcpy(rv(c)->stage, buf, bytes);
  meet(c);
  if (c->rank != root && bytes) memcpy(buf, rv(c)->stage, bytes);
  return EVO_STATUS_OK;
}

static evo_status threads_barrier(evo_comm *c) {
  meet(c);
  return EVO_STATUS_OK;
}

static void threads_destroy(evo_comm *c) {
  rendezvous *r = rv(c);
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  int last = --r->refs == 0;
  pthread_mutex_unlock(&r->mu);
  if (!last) return;
  pthread_barrier_destroy(&r->barrier);
  pthread_mutex_destroy(&r->mu);
  free(r->stage), free(r);
}

static const evo_comm_iface threads_iface = {threads_allgatherv, threads_broadcast, threads_barrier, threads_destroy};

evo_status evo_comm_threads_new(int n, evo_comm **comms) {
  if (!comms || n < 1 || n > 4096) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "comm threads: n must be in [1, 4096]");
  memset(comms, 0, sizeof *comms * (size_t)n);
  rendezvous *r = calloc(1, sizeof *r);
  if (!r) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "comm threads: out of memory");
  if (pthread_barrier_init(&r->barrier, NULL, (unsigned)n)) {
    free(r);
    return evo_error(EVO_STATUS_BACKEND, "comm threads: pthread_barrier_init failed");
  }
  pthread_mutex_init(&r->mu, NULL);
  for (int i = 0; i < n; i++) {
    if (!(comms[i] = evo_comm_alloc(&threads_iface, "threads", i, n))) {
      for (int j = 0; j < i; j++) evo_comm_free(comms[j]), comms[j] = NULL;
      if (i == 0) { /* no comm owns the rendezvous yet */
        pthread_barrier_destroy(&r->barrier), pthread_mutex_destroy(&r->mu), free(r);
      }
      return evo_error(EVO_STATUS_OUT_OF_MEMORY, "comm threads: out of memory");
    }
    comms[i]->ctx = r;
    r->refs++;
  }
  return EVO_STATUS_OK;
}
