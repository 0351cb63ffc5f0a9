/* Device selection ("auto" | "cpu" | "cuda" | "cuda:N") and the backend queries that do not depend on CUDA. In a
   build without the CUDA backend the CUDA entry points are stubs that say so. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend_impl.h"

#ifndef EVOC_HAVE_CUDA
evo_status evo_backend_cuda_new(int ordinal, evo_backend **out) {
  (void)ordinal;
  if (out) *out = NULL;
  return evo_error(EVO_STATUS_UNSUPPORTED,
                   "cuda: this evoc was built without the CUDA backend (configure with -DEVOC_CUDA=ON)");
}
int evo_cuda_device_count(void) { return 0; }
#endif

void *evo_backend_stream(const evo_backend *be) { return be && be->iface->stream ? be->iface->stream(be->ctx) : NULL; }
int evo_backend_device(const evo_backend *be) { return be && be->iface->device ? be->iface->device(be->ctx) : -1; }
evo_status evo_backend_use(evo_backend *be) { return be && be->iface->use ? be->iface->use(be->ctx) : EVO_STATUS_OK; }
int evo_backend_is_host(const evo_backend *be) { return be && be->iface->host_addressable; }

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void put_note(char *note, size_t size, const char *fmt, ...) {
  if (!note || !size) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(note, size, fmt, ap);
  va_end(ap);
}

/* "cuda" is device 0; "cuda:N" takes decimal digits only. Returns -1 for anything else. */
static int parse_cuda(const char *spec) {
  if (!strcmp(spec, "cuda")) return 0;
  if (strncmp(spec, "cuda:", 5) || !spec[5] || strlen(spec + 5) > 6) return -1;
  int n = 0;
  for (const char *p = spec + 5; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    n = n * 10 + (*p - '0');
  }
  return n;
}

static evo_status open_cuda(const char *spec, int ordinal, evo_backend **out, char *note, size_t note_size) {
  evo_status st = evo_backend_cuda_new(ordinal, out);
  if (st) {
    char why[400]; /* evo_error writes into the buffer evo_last_error() returns */
    snprintf(why, sizeof why, "%s", evo_last_error());
    return evo_error(st, "device %s: %s", spec, why);
  }
  put_note(note, note_size, "device %s: using cuda:%d (%s)", spec, ordinal, (*out)->iface->device_name((*out)->ctx));
  return EVO_STATUS_OK;
}

evo_status evo_device_open(const char *spec, const evo_backend_params *params, evo_backend **out, char *note,
                           size_t note_size) {
  if (note && note_size) note[0] = '\0';
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "device_open: out is NULL");
  *out = NULL;
  if (!spec) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "device_open: no device given");
  int ordinal = parse_cuda(spec);
  if (ordinal >= 0) return open_cuda(spec, ordinal, out, note, note_size);
  if (strcmp(spec, "cpu") && strcmp(spec, "auto"))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "device '%s': expected auto, cpu, cuda or cuda:N", spec);
  if (!strcmp(spec, "auto")) {
    if (evo_backend_cuda_new(0, out) == EVO_STATUS_OK) {
      put_note(note, note_size, "device auto: using cuda:0 (%s)", (*out)->iface->device_name((*out)->ctx));
      return EVO_STATUS_OK;
    }
    put_note(note, note_size, "device auto: using cpu (%s)", evo_last_error());
    evo_clear_error();
  } else {
    put_note(note, note_size, "device cpu: using cpu");
  }
  *out = evo_backend_cpu_new(params);
  return *out ? EVO_STATUS_OK : evo_error(EVO_STATUS_OUT_OF_MEMORY, "device_open: out of memory");
}
