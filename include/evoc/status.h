/* evoc status codes and the thread-local last-error message. */
#ifndef EVOC_STATUS_H
#define EVOC_STATUS_H
#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  EVO_STATUS_OK = 0,
  EVO_STATUS_INVALID_ARGUMENT, /* bad shape, dtype, axis, option */
  EVO_STATUS_OUT_OF_MEMORY,
  EVO_STATUS_IO,               /* file missing, unreadable, short write */
  EVO_STATUS_FORMAT,           /* file present but malformed */
  EVO_STATUS_UNSUPPORTED,      /* op/dtype not supported by a backend */
  EVO_STATUS_BACKEND,          /* CUDA/NCCL/MPI/BLAS call failed */
  EVO_STATUS_NOT_FOUND,        /* name not found (param, task, key) */
  EVO_STATUS_INTERNAL
} evo_status;

const char *evo_status_str(evo_status s);

/* Message describing the last failure on this thread ("" if none). */
const char *evo_last_error(void);

/* Sets the thread's last error message (printf-style) and returns `s`, so a failure reads
   `return evo_error(EVO_STATUS_IO, "cannot open %s", path);`. */
evo_status evo_error(evo_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void evo_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
