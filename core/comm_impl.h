/* Internal: a communicator is a small table of collectives over bytes plus the rank facts; comm.c holds the
   backend-independent parts and the local backend, comm_mpi.c the MPI one. */
#ifndef EVOC_COMM_IMPL_H
#define EVOC_COMM_IMPL_H
#include <stdbool.h>
#include "evoc/comm.h"

typedef struct {
  /* in place: byte ranges [displs[r], displs[r] + counts[r]) of buf, each filled by rank r on entry */
  evo_status (*allgatherv)(evo_comm *c, void *buf, const int64_t *counts, const int64_t *displs);
  evo_status (*broadcast)(evo_comm *c, void *buf, size_t bytes, int root);
  evo_status (*barrier)(evo_comm *c);
  void (*destroy)(evo_comm *c);
} evo_comm_iface;

struct evo_comm {
  const evo_comm_iface *iface;
  const char *name;
  int rank, size, local_rank, local_size;
  bool owns_mpi; /* this comm initialised MPI, so it finalises it */
  void *ctx;     /* the backend's own state (MPI: a duplicate of MPI_COMM_WORLD) */
  int64_t *counts, *displs; /* size entries each, for allgatherv */
  void *agree_buf;          /* size entries for evo_comm_agree: made once, so agreeing never allocates */
};

/* comm.c: a comm with its rank arrays, or NULL when out of memory. */
evo_comm *evo_comm_alloc(const evo_comm_iface *iface, const char *name, int rank, int size);

#endif
