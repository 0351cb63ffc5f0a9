/* Internal: what the task wrapper (tasks/task.c), the plugin loader (tasks/plugin.c) and the built-in tasks share. */
#ifndef EVOC_TASK_IMPL_H
#define EVOC_TASK_IMPL_H
#include "evoc/task.h"

/* Built-in tasks, listed in tasks/task.c (strong references, so a static libevoc keeps them). */
extern const evo_task_vtable evo_task_cartpole_swingup;
extern const evo_task_vtable evo_task_cartpole_balance;
extern const evo_task_vtable evo_task_functions;
extern const evo_task_vtable evo_task_mujoco;  /* tasks/mujoco/, built when EVOC_HAVE_MUJOCO */
extern const evo_task_vtable evo_task_mnist; /* also declared in evoc/mnist.h */

/* True for NULL (no backend given) and the CPU backend: task memory is then plain host memory. */
int evo_task_backend_is_host(const evo_backend *be);

/* FORMAT naming `origin` when the ABI version differs or a required entry (name, create, spec, reset, step,
   destroy) is missing. */
evo_status evo_task_vtable_check(const evo_task_vtable *vt, const char *origin);

/* dlopen + entry symbol + vtable check; on success *handle is the library (close with evo_task_plugin_close after
   the task's destroy: the vtable and its code live in it). */
evo_status evo_task_plugin_open(const char *path, void **handle, const evo_task_vtable **vt);
void evo_task_plugin_close(void *handle);

#endif
