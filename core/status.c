/* Status strings and the thread-local last-error message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "evoc/status.h"

static _Thread_local char last_error[512];

const char *evo_status_str(evo_status s) {
  switch (s) {
  case EVO_STATUS_OK: return "ok";
  case EVO_STATUS_INVALID_ARGUMENT: return "invalid argument";
  case EVO_STATUS_OUT_OF_MEMORY: return "out of memory";
  case EVO_STATUS_IO: return "i/o error";
  case EVO_STATUS_FORMAT: return "malformed data";
  case EVO_STATUS_UNSUPPORTED: return "unsupported";
  case EVO_STATUS_BACKEND: return "backend error";
  case EVO_STATUS_NOT_FOUND: return "not found";
  case EVO_STATUS_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char *evo_last_error(void) { return last_error; }

void evo_clear_error(void) { last_error[0] = '\0'; }

/* Formats into a copy first: callers may pass evo_last_error() itself as an argument (to add context). */
evo_status evo_error(evo_status s, const char *fmt, ...) {
  char msg[sizeof last_error];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  memcpy(last_error, msg, sizeof msg);
  return s;
}
