/* Communication between the ranks of a distributed run (DESIGN.md §6).
 *
 * Every rank holds the same algorithm state; rank r of R evaluates the members [r*P/R, (r+1)*P/R) of a population
 * of P (evo_comm_slice), and the ranks exchange only what the algorithm needs: P fitness values (behaviour
 * descriptors for MAP-Elites, test returns, observation statistics). Noise is never sent: member i of generation t
 * is a pure function of (key, t, i), so every rank regenerates any member it needs.
 *
 * Backends:
 *   local  one rank, no communication (what a plain `evoc run` uses)
 *   mpi    MPI_COMM_WORLD: CPU processes on one host or many (`mpirun -np 4 evoc run cfg.yaml`); built when CMake
 *          finds MPI (EVOC_MPI=AUTO|ON|OFF). The comm initialises MPI if nobody has, and finalises it when freed.
 *   threads  n ranks inside one process, one thread each (`evoc run cfg.yaml --ranks 4`): one process driving
 *          every GPU of a machine, one per rank, without MPI.
 *   nccl   NCCL over the GPUs, a GPU of its own for each rank: one process per GPU under mpirun/srun
 *          (`mpirun -np 8 evoc run cfg.yaml --comm nccl`; MPI carries NCCL's unique id), or n ranks in one process
 *          on GPUs 0..n-1 (`evoc run cfg.yaml --ranks 4 --comm nccl`). Built when CMake finds NCCL with the CUDA
 *          backend (EVOC_NCCL=AUTO|ON|OFF). Results equal the other backends': only the bytes' path differs.
 *
 * Collectives are blocking and must be called by every rank in the same order with the same sizes, as in MPI. A
 * failed MPI call becomes EVO_STATUS_BACKEND naming the call. A rank that fails between collectives must still
 * reach the next evo_comm_agree, which is how the others learn of it instead of waiting forever.
 */
#ifndef EVOC_COMM_H
#define EVOC_COMM_H
#include <stddef.h>
#include <stdint.h>
#include "evoc/status.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct evo_comm evo_comm;

/* One rank: rank 0 of 1; collectives copy nothing. */
evo_status evo_comm_local_new(evo_comm **out);
/* MPI_COMM_WORLD; UNSUPPORTED (with the CMake flag to build it) when evoc was built without MPI. */
evo_status evo_comm_mpi_new(evo_comm **out);
/* n in-process ranks: comms[r] is rank r of n, for the one thread that runs rank r (collectives block until
   every rank's thread has called them). Free every comm when the threads are done (the last frees what they
   share). */
evo_status evo_comm_threads_new(int n, evo_comm **comms);
/* NCCL: under mpirun/srun, every process one rank on GPU (local rank) of its host; otherwise one rank alone.
   UNSUPPORTED when evoc was built without NCCL or no GPU is usable; INVALID_ARGUMENT when a host has more ranks
   than GPUs. */
evo_status evo_comm_nccl_new(evo_comm **out);
/* n in-process NCCL ranks on GPUs 0..n-1 (ncclCommInitAll), used as evo_comm_threads_new's are. */
evo_status evo_comm_nccl_threads_new(int n, evo_comm **comms);
/* Is this process one of several started by mpirun/srun (the launcher's environment says so)? */
int evo_comm_launched_by_mpi(void);
/* "local", "mpi" or "nccl": evo_comm_local_new, evo_comm_mpi_new or evo_comm_nccl_new; "auto": mpi when launched
   by mpirun/srun, else local. */
evo_status evo_comm_open(const char *name, evo_comm **out);
void evo_comm_free(evo_comm *c);

const char *evo_comm_name(const evo_comm *c); /* "local" | "mpi" | "threads" | "nccl" */
int evo_comm_rank(const evo_comm *c);
int evo_comm_size(const evo_comm *c);
/* Rank among the ranks on this host (to choose a GPU), and how many share the host. */
int evo_comm_local_rank(const evo_comm *c);
int evo_comm_local_size(const evo_comm *c);

/* Rank r's share of n items: [n*r/R, n*(r+1)/R); sizes differ by at most one, the shares tile [0, n) in rank order. */
void evo_comm_slice(int64_t n, int rank, int size, int64_t *begin, int64_t *end);

/* In place: buf holds n items of item_bytes each; on entry this rank's share (evo_comm_slice) is filled, on return
   every share is, on every rank. */
evo_status evo_comm_allgather(evo_comm *c, void *buf, int64_t n, size_t item_bytes);
/* Copies root's bytes into every rank's buf. */
evo_status evo_comm_broadcast(evo_comm *c, void *buf, size_t bytes, int root);
/* Every rank passes its own status and gets the same answer: OK when all are OK, else the status of the lowest
   failing rank. A rank that was OK gets an error message naming that rank ("rank 2 of 4 failed: ..." with the
   first 200 characters of its message); a failing rank keeps its own. */
evo_status evo_comm_agree(evo_comm *c, evo_status mine);
evo_status evo_comm_barrier(evo_comm *c);

#ifdef __cplusplus
}
#endif
#endif
