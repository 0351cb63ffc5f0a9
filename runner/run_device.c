/* The `device` key: one reading for `evoc run` and `evoc train`, so both accept the same specs, word the same
   errors and label the device alike in summary.json. */
#include <stdio.h>
#include <string.h>
#include "run_device.h"

evo_status evo_run_device_open(evo_cfg *root, const char *auto_cpu_why, int local_rank, evo_run_device *out) {
  static const char *const devices[] = {"auto", "cpu", "cuda", "cuda:N", NULL};
  memset(out, 0, sizeof *out);
  const char *dev;
  evo_status st = evo_cfg_string(root, "device", "auto", NULL, &dev);
  if (!st && strncmp(dev, "cuda:", 5)) st = evo_cfg_string(root, "device", "auto", devices, &dev);
  if (st) return st;
  char where[256], msg[512];
  evo_cfg_where(evo_cfg_get(root, "device"), where, sizeof where);
  const bool auto_cpu = auto_cpu_why && !strcmp(dev, "auto");
  char spec[32];
  snprintf(spec, sizeof spec, "%s", auto_cpu ? "cpu" : dev);
  const int gpus = local_rank >= 0 && !auto_cpu && (!strcmp(dev, "auto") || !strcmp(dev, "cuda"))
                       ? evo_cuda_device_count() : 0;
  if (gpus > 0) snprintf(spec, sizeof spec, "cuda:%d", local_rank % gpus); /* this rank's GPU */
  st = evo_device_open(spec, NULL, &out->be, out->note, sizeof out->note);
  if (st) {
    snprintf(msg, sizeof msg, "%s", evo_last_error()); /* evo_error writes into evo_last_error's buffer */
    if (st == EVO_STATUS_UNSUPPORTED)
#ifdef EVOC_HAVE_CUDA
      return evo_error(st, "%s: %s (the CUDA backend has no usable GPU here); use device: cpu", where, msg);
#else
      return evo_error(st, "%s: device %s: this evoc was built without the CUDA backend (configure with "
                       "-DEVOC_CUDA=ON on a machine with nvcc); use device: cpu", where, dev);
#endif
    return evo_error(st, "%s: %s", where, msg);
  }
  if (auto_cpu) snprintf(out->note, sizeof out->note, "device auto: using cpu (%s)", auto_cpu_why);
  if (gpus > 0) { /* "device cuda:1: using cuda:1 (NAME)" -> say why this GPU */
    size_t k = strlen(out->note);
    snprintf(out->note + k, sizeof out->note - k, " (device %s: local rank %d of the host's GPUs %d)", dev,
             local_rank, gpus);
  }
  out->cpu_asked = !strcmp(dev, "cpu");
  if (evo_backend_is_host(out->be)) {
    snprintf(out->label, sizeof out->label, "cpu");
    out->host = out->be;
    return EVO_STATUS_OK;
  }
  /* "device cuda: using cuda:0 (NVIDIA H100 ...)" -> "cuda:0 (NVIDIA H100 ...)" */
  const char *u = strstr(out->note, "using ");
  snprintf(out->label, sizeof out->label, "%s", u ? u + 6 : evo_backend_name(out->be));
  if (!(out->host = evo_backend_cpu_new(NULL))) {
    evo_run_device_close(out);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "device: out of memory");
  }
  return EVO_STATUS_OK;
}

void evo_run_device_close(evo_run_device *d) {
  if (d->host != d->be) evo_backend_free(d->host);
  evo_backend_free(d->be);
  d->be = d->host = NULL;
}
