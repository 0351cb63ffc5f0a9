/* Shared by the harnesses: the parsers under test read files, so each input goes to one private temp file that is
   rewritten per run and removed at exit. */
#ifndef EVOC_FUZZ_UTIL_H
#define EVOC_FUZZ_UTIL_H
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_tmp_path[64];

static inline void fuzz_tmp_remove(void) {
  if (fuzz_tmp_path[0]) unlink(fuzz_tmp_path);
}

/* Path of a file holding exactly data[0..size); aborts only on a broken environment (not an input bug). */
static inline const char *fuzz_tmp_write(const uint8_t *data, size_t size) {
  if (!fuzz_tmp_path[0]) {
    snprintf(fuzz_tmp_path, sizeof fuzz_tmp_path, "/tmp/evoc_fuzz_XXXXXX");
    int fd = mkstemp(fuzz_tmp_path);
    if (fd < 0) abort();
    close(fd);
    atexit(fuzz_tmp_remove);
  }
  FILE *f = fopen(fuzz_tmp_path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) abort();
  return fuzz_tmp_path;
}

/* A failed call must leave a message that names what is wrong (the project's rule for bad input). */
#include "evoc/status.h"
static inline void fuzz_check_error(evo_status st) {
  if (st == EVO_STATUS_OK) return;
  const char *msg = evo_last_error();
  if (!msg || !msg[0]) {
    fprintf(stderr, "fuzz: status %d without a message\n", (int)st);
    abort();
  }
}

/* Runs a call that may fail and checks its message. */
#define FUZZ_CALL(call)                                                                                               \
  do {                                                                                                                \
    evo_clear_error();                                                                                                \
    fuzz_check_error(call);                                                                                           \
  } while (0)

#endif
