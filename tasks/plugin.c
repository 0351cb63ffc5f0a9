/* Task plugins: a shared library exporting EVO_TASK_PLUGIN_ENTRY (include/evoc/task.h). Loaded RTLD_NOW so that a
   plugin with an unresolved symbol fails here, with the symbol named, instead of in the middle of a run; and
   RTLD_LOCAL so that two plugins may define the same helper names. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "task_impl.h"

evo_status evo_task_vtable_check(const evo_task_vtable *vt, const char *origin) {
  if (!vt) return evo_error(EVO_STATUS_FORMAT, "%s: NULL task vtable", origin);
  if (vt->abi_version != EVO_TASK_ABI_VERSION)
    return evo_error(EVO_STATUS_FORMAT,
                     "%s: task ABI version %u, but this evoc expects version %u (rebuild it against this evoc's "
                     "evoc/task.h)",
                     origin, (unsigned)vt->abi_version, (unsigned)EVO_TASK_ABI_VERSION);
  const char *missing = !vt->name      ? "name"
                        : !vt->create  ? "create"
                        : !vt->spec    ? "spec"
                        : !vt->reset   ? "reset"
                        : !vt->step    ? "step"
                        : !vt->destroy ? "destroy"
                                       : NULL;
  if (missing) return evo_error(EVO_STATUS_FORMAT, "%s: task vtable has no '%s' (required)", origin, missing);
  return EVO_STATUS_OK;
}

evo_status evo_task_plugin_open(const char *path, void **handle, const evo_task_vtable **vt) {
  *handle = NULL;
  *vt = NULL;
  if (!path || !*path) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "task plugin: empty path");
  /* dlopen searches the library path for a name without '/', never the current directory; a user writing
     `plugin: libmytask.so` next to the config means the file here. */
  char local[4096];
  const char *open_path = path;
  if (!strchr(path, '/') && access(path, F_OK) == 0) {
    if (snprintf(local, sizeof local, "./%s", path) >= (int)sizeof local)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "task plugin '%s': path too long", path);
    open_path = local;
  }
  dlerror();
  void *h = dlopen(open_path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *why = dlerror();
    why = why ? why : "unknown dlopen error";
    if (strchr(path, '/') ? access(path, F_OK) != 0 : strstr(why, "No such file") != NULL)
      return evo_error(EVO_STATUS_NOT_FOUND, "task plugin '%s' not found%s: %s", path,
                       path[0] == '/' ? "" : " (a relative path is taken from the current directory)", why);
    /* The plugin takes evo_* functions (config readers, RNG) from the program that loads it. */
    const char *hint = strstr(why, "undefined symbol")
                           ? " (the program loading a plugin must export evoc's symbols: link it with -rdynamic "
                             "(CMake ENABLE_EXPORTS) or against a shared libevoc)"
                           : "";
    return evo_error(EVO_STATUS_FORMAT, "task plugin '%s' cannot be loaded: %s%s", path, why, hint);
  }
  dlerror();
  void *sym = dlsym(h, EVO_TASK_PLUGIN_ENTRY);
  if (!sym) {
    const char *why = dlerror();
    evo_status st = evo_error(EVO_STATUS_NOT_FOUND, "task plugin '%s' does not export '%s': %s", path,
                              EVO_TASK_PLUGIN_ENTRY, why ? why : "symbol is NULL");
    dlclose(h);
    return st;
  }
  /* POSIX guarantees that a dlsym result converts to a function pointer. */
  evo_task_plugin_entry_fn entry = (evo_task_plugin_entry_fn)sym;
  const evo_task_vtable *v = entry();
  char origin[4200];
  snprintf(origin, sizeof origin, "task plugin '%s'", path);
  if (!v) {
    dlclose(h);
    return evo_error(EVO_STATUS_FORMAT, "%s: %s() returned NULL", origin, EVO_TASK_PLUGIN_ENTRY);
  }
  evo_status st = evo_task_vtable_check(v, origin);
  if (st) {
    dlclose(h);
    return st;
  }
  *handle = h;
  *vt = v;
  return EVO_STATUS_OK;
}

void evo_task_plugin_close(void *handle) {
  if (handle) dlclose(handle);
}
