/* The NCCL backend of evo_comm (DESIGN.md §6), built with EVOC_HAVE_NCCL: the ranks exchange through GPU memory,
   over NVLink or InfiniBand where the GPUs have them. Two ways in: one process per GPU under mpirun/srun (MPI
   carries NCCL's unique id, and agrees on failures so no rank waits in ncclCommInitRank for one that gave up), or
   one process driving n GPUs with ncclCommInitAll (one rank per thread, as evo_comm_threads_new).
   Collectives take host buffers like the other backends (P fitness values are kilobytes): each copies into the
   comm's device staging buffer on its own stream, runs the NCCL call there and copies back before returning, on
   the comm's GPU, restoring the caller's current device after. Uneven shares (evo_comm_slice) travel as an
   allgather of equal chunks the size of the largest share. */
#include <stdlib.h>
#include <string.h>
#include "comm_impl.h"

#ifdef EVOC_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

typedef struct {
  ncclComm_t nccl;
  cudaStream_t stream;
  int device;
  unsigned char *stage; /* device memory, cap bytes */
  size_t cap;
  evo_comm *boot; /* mpirun: the MPI comm that carried the id; freed after NCCL's (it may finalise MPI) */
} nccl_ctx;

static nccl_ctx *ctx_of(const evo_comm *c) { return c->ctx; }

static evo_status nccl_fail(const char *call, ncclResult_t rc, ncclComm_t comm) {
  const char *why = ncclGetLastError(comm);
  return evo_error(EVO_STATUS_BACKEND, "comm nccl: %s failed: %s%s%s%s", call, ncclGetErrorString(rc),
                   why && *why ? " (" : "", why && *why ? why : "", why && *why ? ")" : "");
}

static evo_status cuda_fail(const char *call, cudaError_t e, int device) {
  return evo_error(e == cudaErrorMemoryAllocation ? EVO_STATUS_OUT_OF_MEMORY : EVO_STATUS_BACKEND,
                   "comm nccl: %s on GPU %d failed: %s", call, device, cudaGetErrorString(e));
}

/* The staging buffer holds at least bytes afterwards (it only grows). */
static evo_status stage_for(nccl_ctx *x, size_t bytes) {
  if (bytes <= x->cap) return EVO_STATUS_OK;
  if (x->stage) cudaFree(x->stage);
  x->stage = NULL, x->cap = 0;
  const cudaError_t e = cudaMalloc((void **)&x->stage, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return cuda_fail("cudaMalloc of the staging buffer", e, x->device);
  }
  x->cap = bytes;
  return EVO_STATUS_OK;
}

/* Collectives run with this comm's GPU current; the caller's device is put back after. */
static evo_status enter(const nccl_ctx *x, int *prev) {
  if (cudaGetDevice(prev) != cudaSuccess) *prev = x->device;
  const cudaError_t e = cudaSetDevice(x->device);
  return e == cudaSuccess ? EVO_STATUS_OK : cuda_fail("cudaSetDevice", e, x->device);
}
static evo_status leave(const nccl_ctx *x, int prev, evo_status st) {
  const cudaError_t e = cudaStreamSynchronize(x->stream);
  if (!st && e != cudaSuccess) st = cuda_fail("cudaStreamSynchronize", e, x->device);
  cudaSetDevice(prev);
  return st;
}

static evo_status copy(const nccl_ctx *x, void *dst, const void *src, size_t n, enum cudaMemcpyKind kind) {
  const cudaError_t e = n ? cudaMemcpyAsync(dst, src, n, kind, x->stream) : cudaSuccess;
  return e == cudaSuccess ? EVO_STATUS_OK : cuda_fail("cudaMemcpyAsync", e, x->device);
}

static evo_status nccl_allgatherv(evo_comm *c, void *buf, const int64_t *counts, const int64_t *displs) {
  nccl_ctx *x = ctx_of(c);
  size_t chunk = 0;
  for (int r = 0; r < c->size; r++)
    if ((size_t)counts[r] > chunk) chunk = (size_t)counts[r];
  if (!chunk) return EVO_STATUS_OK; /* every rank sees the same counts, so every rank skips */
  int prev;
  evo_status st = enter(x, &prev);
  if (st) return st;
  unsigned char *mine = NULL;
  if (!(st = stage_for(x, chunk * (size_t)c->size))) {
    mine = x->stage + chunk * (size_t)c->rank;
    st = copy(x, mine, (unsigned char *)buf + displs[c->rank], (size_t)counts[c->rank], cudaMemcpyHostToDevice);
  }
  if (!st) {
    const ncclResult_t rc = ncclAllGather(mine, x->stage, chunk, ncclUint8, x->nccl, x->stream);
    if (rc != ncclSuccess) st = nccl_fail("ncclAllGather", rc, x->nccl);
  }
  for (int r = 0; !st && r < c->size; r++)
    if (r != c->rank)
      st = copy(x, (unsigned char *)buf + displs[r], x->stage + chunk * (size_t)r, (size_t)counts[r],
                cudaMemcpyDeviceToHost);
  return leave(x, prev, st);
}

static evo_status nccl_broadcast(evo_comm *c, void *buf, size_t bytes, int root) {
  nccl_ctx *x = ctx_of(c);
  if (!bytes) return EVO_STATUS_OK;
  int prev;
  evo_status st = enter(x, &prev);
  if (st) return st;
  if (!(st = stage_for(x, bytes)) && c->rank == root) st = copy(x, x->stage, buf, bytes, cudaMemcpyHostToDevice);
  if (!st) {
    const ncclResult_t rc = ncclBroadcast(x->stage, x->stage, bytes, ncclUint8, root, x->nccl, x->stream);
    if (rc != ncclSuccess) st = nccl_fail("ncclBroadcast", rc, x->nccl);
  }
  if (!st && c->rank != root) st = copy(x, buf, x->stage, bytes, cudaMemcpyDeviceToHost);
  return leave(x, prev, st);
}

static evo_status nccl_barrier(evo_comm *c) {
  nccl_ctx *x = ctx_of(c);
  int prev;
  evo_status st = enter(x, &prev);
  if (st) return st;
  /* a one-byte sum: it completes on a rank only once every rank has contributed (the stage is >= 4 KiB) */
  const ncclResult_t rc = ncclAllReduce(x->stage, x->stage, 1, ncclUint8, ncclSum, x->nccl, x->stream);
  if (rc != ncclSuccess) st = nccl_fail("ncclAllReduce", rc, x->nccl);
  return leave(x, prev, st);
}

static void ctx_free(nccl_ctx *x) {
  if (!x) return;
  int prev;
  if (cudaGetDevice(&prev) != cudaSuccess) prev = x->device;
  cudaSetDevice(x->device);
  if (x->nccl) ncclCommDestroy(x->nccl);
  if (x->stream) cudaStreamDestroy(x->stream);
  if (x->stage) cudaFree(x->stage);
  cudaSetDevice(prev);
  evo_comm_free(x->boot);
  free(x);
}

static void nccl_destroy(evo_comm *c) { ctx_free(ctx_of(c)); }

static const evo_comm_iface nccl_iface = {nccl_allgatherv, nccl_broadcast, nccl_barrier, nccl_destroy};

/* The per-rank state on GPU device, before NCCL's comm: its stream and a first staging buffer. */
static evo_status ctx_new(int device, nccl_ctx **out) {
  *out = NULL;
  nccl_ctx *x = calloc(1, sizeof *x);
  if (!x) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "comm nccl: out of memory");
  x->device = device;
  int prev;
  evo_status st = enter(x, &prev);
  if (!st) {
    const cudaError_t e = cudaStreamCreateWithFlags(&x->stream, cudaStreamNonBlocking);
    st = e == cudaSuccess ? stage_for(x, 4096) : cuda_fail("cudaStreamCreateWithFlags", e, device);
    cudaSetDevice(prev);
  }
  if (st) ctx_free(x);
  else *out = x;
  return st;
}

static evo_status gpu_count(int *n) {
  *n = 0;
  const cudaError_t e = cudaGetDeviceCount(n);
  if (e != cudaSuccess || *n < 1) {
    cudaGetLastError();
    *n = 0;
    return evo_error(EVO_STATUS_UNSUPPORTED, "comm nccl: no usable CUDA device (%s); NCCL exchanges through GPUs "
                     "(use --comm mpi, or --ranks N without --comm nccl)",
                     e == cudaSuccess ? "none found" : cudaGetErrorString(e));
  }
  return EVO_STATUS_OK;
}

evo_status evo_comm_nccl_threads_new(int n, evo_comm **comms) {
  if (!comms || n < 1 || n > 4096) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "comm nccl: n must be in [1, 4096]");
  memset(comms, 0, sizeof *comms * (size_t)n);
  int gpus;
  evo_status st = gpu_count(&gpus);
  if (st) return st;
  if (n > gpus)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "comm nccl: %d ranks but %d GPU%s here; NCCL needs a GPU of its own "
                     "for each rank (--ranks %d without --comm nccl lets ranks share GPUs)", n, gpus,
                     gpus == 1 ? "" : "s", n);
  ncclComm_t *nc = calloc((size_t)n, sizeof *nc);
  int *devs = malloc(sizeof(int) * (size_t)n);
  if (!nc || !devs) st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "comm nccl: out of memory");
  for (int i = 0; !st && i < n; i++) devs[i] = i;
  int prev = 0;
  cudaGetDevice(&prev);
  if (!st) {
    const ncclResult_t rc = ncclCommInitAll(nc, n, devs);
    if (rc != ncclSuccess) st = nccl_fail("ncclCommInitAll", rc, NULL), memset(nc, 0, sizeof *nc * (size_t)n);
  }
  for (int i = 0; !st && i < n; i++) {
    nccl_ctx *x;
    if ((st = ctx_new(i, &x))) break;
    x->nccl = nc[i], nc[i] = NULL; /* the comm owns it from here */
    if (!(comms[i] = evo_comm_alloc(&nccl_iface, "nccl", i, n))) {
      ctx_free(x);
      st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "comm nccl: out of memory");
    } else {
      comms[i]->ctx = x;
    }
  }
  if (st) {
    for (int i = 0; i < n; i++) {
      evo_comm_free(comms[i]), comms[i] = NULL;
      if (nc && nc[i]) ncclCommDestroy(nc[i]);
    }
  }
  cudaSetDevice(prev);
  free(nc), free(devs);
  return st;
}

evo_status evo_comm_nccl_new(evo_comm **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "comm: NULL output");
  *out = NULL;
  evo_comm *boot = NULL;
  if (evo_comm_launched_by_mpi()) {
    evo_status st = evo_comm_mpi_new(&boot);
    if (st) return evo_error(st, "comm nccl: started by mpirun, so MPI carries NCCL's id: %s", evo_last_error());
  }
  const int rank = boot ? boot->rank : 0, size = boot ? boot->size : 1;
  const int lrank = boot ? boot->local_rank : 0, lsize = boot ? boot->local_size : 1;
  int gpus;
  nccl_ctx *x = NULL;
  evo_status st = gpu_count(&gpus);
  if (!st && lsize > gpus)
    st = evo_error(EVO_STATUS_INVALID_ARGUMENT, "comm nccl: %d ranks on this host but %d GPU%s; NCCL needs a GPU of "
                   "its own for each rank (--comm mpi lets ranks share GPUs)", lsize, gpus, gpus == 1 ? "" : "s");
  if (!st) st = ctx_new(lrank, &x);
  ncclUniqueId id;
  memset(&id, 0, sizeof id);
  if (!st && rank == 0) {
    const ncclResult_t rc = ncclGetUniqueId(&id);
    if (rc != ncclSuccess) st = nccl_fail("ncclGetUniqueId", rc, NULL);
  }
  /* every rank learns of a failure before any waits in ncclCommInitRank for the others */
  if (boot && !(st = evo_comm_agree(boot, st))) st = evo_comm_broadcast(boot, &id, sizeof id, 0);
  if (!st) {
    int prev;
    if (!(st = enter(x, &prev))) {
      const ncclResult_t rc = ncclCommInitRank(&x->nccl, size, id, rank);
      if (rc != ncclSuccess) st = nccl_fail("ncclCommInitRank", rc, NULL), x->nccl = NULL;
      cudaSetDevice(prev);
    }
    if (boot) st = evo_comm_agree(boot, st); /* all ranks have a working comm, or none keeps one */
  }
  evo_comm *c = NULL;
  if (!st && !(c = evo_comm_alloc(&nccl_iface, "nccl", rank, size)))
    st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "comm nccl: out of memory");
  if (st) {
    ctx_free(x);
    evo_comm_free(boot);
    return st;
  }
  c->local_rank = lrank, c->local_size = lsize;
  x->boot = boot, c->ctx = x;
  *out = c;
  return EVO_STATUS_OK;
}

#else

static evo_status no_nccl(void) {
  return evo_error(EVO_STATUS_UNSUPPORTED, "comm: this evoc was built without NCCL (it needs the CUDA backend and "
                   "NCCL's nccl.h and libnccl; reconfigure with -DEVOC_NCCL=ON to be told which is missing)");
}
evo_status evo_comm_nccl_new(evo_comm **out) {
  if (out) *out = NULL;
  return no_nccl();
}
evo_status evo_comm_nccl_threads_new(int n, evo_comm **comms) {
  if (comms && n > 0) memset(comms, 0, sizeof *comms * (size_t)n);
  return no_nccl();
}

#endif
