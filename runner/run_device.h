/* Internal: the `device` key of a run config, shared by the evolution trainer and gradient training. */
#ifndef EVOC_RUN_DEVICE_H
#define EVOC_RUN_DEVICE_H
#include <stdbool.h>
#include "evoc/backend.h"
#include "evoc/config.h"

typedef struct {
  evo_backend *be;   /* where the plans run */
  evo_backend *host; /* host memory: be itself on the CPU, else a CPU backend of its own */
  char label[192];   /* "cpu" | "cuda:0 (NAME)" */
  char note[512];    /* how it was chosen, e.g. "device auto: using cuda:0 (NAME)" */
  bool cpu_asked;    /* the config said cpu: nothing worth a note */
} evo_run_device;

/* Reads `device` (auto | cpu | cuda | cuda:N) from root and opens it through evo_device_open. auto_cpu_why: when
   not NULL and the config says auto, the CPU is opened instead, and the note gives this reason. Errors carry the
   key's file:line:col and the fix (use device: cpu). On failure nothing is left open. local_rank >= 0 (a
   distributed run): auto and cuda take GPU local_rank % (GPUs on this host), so the ranks of a host share its GPUs
   round-robin. */
evo_status evo_run_device_open(evo_cfg *root, const char *auto_cpu_why, int local_rank, evo_run_device *out);
/* Frees both backends (host only when it is not be). */
void evo_run_device_close(evo_run_device *d);

#endif
