/* Run under mpirun by test_distributed.c: checks evo_comm's collectives across real MPI ranks (tests/comm_checks.h)
   and prints "rank R ok" (exit 0) or the first failed check (exit 1). */
#include "comm_checks.h"

int main(void) {
  evo_comm *c;
  if (evo_comm_open("auto", &c) != EVO_STATUS_OK) {
    printf("comm: %s\n", evo_last_error());
    return 1;
  }
  int rc = evo_comm_size(c) >= 2 ? comm_checks(c, "mpi") : (printf("needs 2 or more ranks\n"), 1);
  fflush(stdout);
  evo_comm_free(c);
  return rc;
}
