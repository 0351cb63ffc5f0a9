/* The MPI backend of evo_comm (MPI_COMM_WORLD), built with EVOC_HAVE_MPI; without it evo_comm_mpi_new says how
   to build it. Byte counts go to MPI as int, so one collective moves at most 2 GiB per rank (P fitness values are
   kilobytes). */
#include <stdlib.h>
#include "comm_impl.h"

int evo_comm_launched_by_mpi(void) {
  /* Open MPI's mpirun, MPICH/Intel's hydra and Slurm's srun (PMI or PMIx) */
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    if (getenv(vars[i])) return 1;
  return 0;
}

#ifdef EVOC_HAVE_MPI
#include <limits.h>
#include <mpi.h>

static evo_status mpi_fail(const char *call, int rc) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
  msg[len] = 0;
  return evo_error(EVO_STATUS_BACKEND, "%s failed: %s", call, len ? msg : "unknown MPI error");
}

/* The comm's own duplicate of MPI_COMM_WORLD: its error handler returns codes (so failures become statuses
   instead of aborting the job) without changing the handler of a program that uses MPI itself. */
static MPI_Comm world(const evo_comm *c) { return *(MPI_Comm *)c->ctx; }

static evo_status mpi_allgatherv(evo_comm *c, void *buf, const int64_t *counts, const int64_t *displs) {
  int *ic = malloc(sizeof(int) * (size_t)c->size), *id = malloc(sizeof(int) * (size_t)c->size);
  evo_status st = ic && id ? EVO_STATUS_OK : evo_error(EVO_STATUS_OUT_OF_MEMORY, "comm: out of memory");
  for (int r = 0; !st && r < c->size; r++) {
    if (counts[r] > INT_MAX || displs[r] > INT_MAX)
      st = evo_error(EVO_STATUS_INVALID_ARGUMENT, "comm allgather: %lld bytes exceed MPI's int counts",
                     (long long)(displs[r] + counts[r]));
    else
      ic[r] = (int)counts[r], id[r] = (int)displs[r];
  }
  int rc = st ? MPI_SUCCESS : MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, ic, id, MPI_BYTE, world(c));
  if (rc != MPI_SUCCESS) st = mpi_fail("MPI_Allgatherv", rc);
  free(ic), free(id);
  return st;
}

static evo_status mpi_broadcast(evo_comm *c, void *buf, size_t bytes, int root) {
  if (bytes > INT_MAX) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "comm broadcast: %zu bytes exceed MPI's int counts", bytes);
  int rc = MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, world(c));
  return rc == MPI_SUCCESS ? EVO_STATUS_OK : mpi_fail("MPI_Bcast", rc);
}

static evo_status mpi_barrier(evo_comm *c) {
  int rc = MPI_Barrier(world(c));
  return rc == MPI_SUCCESS ? EVO_STATUS_OK : mpi_fail("MPI_Barrier", rc);
}

static void mpi_destroy(evo_comm *c) {
  int fin = 0;
  if (c->ctx && MPI_Finalized(&fin) == MPI_SUCCESS && !fin) MPI_Comm_free((MPI_Comm *)c->ctx);
  free(c->ctx);
  if (c->owns_mpi && MPI_Finalized(&fin) == MPI_SUCCESS && !fin) MPI_Finalize();
}

static const evo_comm_iface mpi_iface = {mpi_allgatherv, mpi_broadcast, mpi_barrier, mpi_destroy};

evo_status evo_comm_mpi_new(evo_comm **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "comm: NULL output");
  *out = NULL;
  int inited = 0, fin = 0, rc;
  MPI_Initialized(&inited);
  MPI_Finalized(&fin);
  if (fin) return evo_error(EVO_STATUS_BACKEND, "comm: MPI was already finalized in this process");
  if (!inited && (rc = MPI_Init(NULL, NULL)) != MPI_SUCCESS) return mpi_fail("MPI_Init", rc);
  int rank = 0, size = 1, lrank = 0, lsize = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm node;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    MPI_Comm_rank(node, &lrank);
    MPI_Comm_size(node, &lsize);
    MPI_Comm_free(&node);
  }
  evo_comm *c = evo_comm_alloc(&mpi_iface, "mpi", rank, size);
  MPI_Comm *dup = malloc(sizeof *dup);
  if (!c || !dup) {
    free(dup), evo_comm_free(c);
    if (!inited) MPI_Finalize();
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "comm: out of memory");
  }
  c->local_rank = lrank, c->local_size = lsize;
  if ((rc = MPI_Comm_dup(MPI_COMM_WORLD, dup)) != MPI_SUCCESS) {
    free(dup), evo_comm_free(c);
    if (!inited) MPI_Finalize();
    return mpi_fail("MPI_Comm_dup", rc);
  }
  MPI_Comm_set_errhandler(*dup, MPI_ERRORS_RETURN);
  c->ctx = dup, c->owns_mpi = !inited;
  *out = c;
  return EVO_STATUS_OK;
}

#else

evo_status evo_comm_mpi_new(evo_comm **out) {
  if (out) *out = NULL;
  return evo_error(EVO_STATUS_UNSUPPORTED, "comm: this evoc was built without MPI (install libopenmpi-dev, then "
                   "reconfigure with -DEVOC_MPI=ON)");
}

#endif
