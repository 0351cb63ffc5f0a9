/* evo_comm's collectives checked from inside one rank: run by every rank at once (tests/mpi/comm_check.c under
   mpirun, test_distributed.c on threads). Returns 0, or 1 after printing the first failed check. */
#ifndef EVOC_COMM_CHECKS_H
#define EVOC_COMM_CHECKS_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/comm.h"

#define CHECK(c, ...)                                                                                                 \
  do {                                                                                                                \
    if (!(c)) {                                                                                                       \
      printf("rank %d: check failed at line %d: ", rank, __LINE__);                                                   \
      printf(__VA_ARGS__);                                                                                            \
      printf("\n");                                                                                                   \
      return 1;                                                                                                       \
    }                                                                                                                 \
  } while (0)

static int comm_checks(evo_comm *c, const char *name) {
  const int rank = evo_comm_rank(c), size = evo_comm_size(c);
  CHECK(!strcmp(evo_comm_name(c), name), "name %s", evo_comm_name(c));
  CHECK(evo_comm_local_rank(c) >= 0 && evo_comm_local_rank(c) < evo_comm_local_size(c), "local rank");
  /* allgather of shares: uneven shares, items of 1, 8 and 36 bytes, and fewer items than ranks */
  const int64_t ns[] = {0, 1, 2, 7, 64, 1001};
  const size_t items[] = {1, 8, 36};
  for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
    for (size_t b = 0; b < sizeof items / sizeof items[0]; b++) {
      const int64_t n = ns[a];
      const size_t w = items[b];
      unsigned char *buf = malloc((size_t)n * w + 1);
      memset(buf, 0xEE, (size_t)n * w + 1);
      int64_t lo, hi;
      evo_comm_slice(n, rank, size, &lo, &hi);
      for (int64_t i = lo; i < hi; i++)
        for (size_t k = 0; k < w; k++) buf[(size_t)i * w + k] = (unsigned char)(i * 31 + (int64_t)k);
      CHECK(evo_comm_allgather(c, buf, n, w) == EVO_STATUS_OK, "allgather: %s", evo_last_error());
      for (int64_t i = 0; i < n; i++)
        for (size_t k = 0; k < w; k++)
          CHECK(buf[(size_t)i * w + k] == (unsigned char)(i * 31 + (int64_t)k), "n %lld item %zu: byte %lld.%zu",
                (long long)n, w, (long long)i, k);
      CHECK(buf[(size_t)n * w] == 0xEE, "allgather wrote past the end (n %lld)", (long long)n);
      free(buf);
    }
  /* broadcast from the last rank */
  double v[3] = {rank, rank * 2.0, -1};
  CHECK(evo_comm_broadcast(c, v, sizeof v, size - 1) == EVO_STATUS_OK, "broadcast: %s", evo_last_error());
  CHECK(v[0] == size - 1 && v[1] == 2.0 * (size - 1) && v[2] == -1, "broadcast gave %g %g %g", v[0], v[1], v[2]);
  CHECK(evo_comm_broadcast(c, v, sizeof v, size) == EVO_STATUS_INVALID_ARGUMENT, "root out of range accepted");
  /* agreement: all fine; then rank 1 fails */
  CHECK(evo_comm_agree(c, EVO_STATUS_OK) == EVO_STATUS_OK, "agree on OK");
  evo_status mine = EVO_STATUS_OK;
  if (rank == 1) mine = evo_error(EVO_STATUS_IO, "cannot open /data/x on this host");
  evo_status st = evo_comm_agree(c, mine);
  CHECK(st == EVO_STATUS_IO, "agree gave %s", evo_status_str(st));
  if (rank == 1) {
    CHECK(!strcmp(evo_last_error(), "cannot open /data/x on this host"), "failing rank lost its message: %s",
          evo_last_error());
  } else {
    char want[128];
    snprintf(want, sizeof want, "rank 1 of %d failed: cannot open /data/x on this host", size);
    CHECK(!strcmp(evo_last_error(), want), "message '%s'", evo_last_error());
  }
  CHECK(evo_comm_barrier(c) == EVO_STATUS_OK, "barrier: %s", evo_last_error());
  printf("rank %d ok\n", rank);
  return 0;
}

#endif
