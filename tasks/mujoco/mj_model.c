/* Loading the embedded MJCF models through a MuJoCo virtual file system, so that no data path is needed at run
   time. MuJoCo 2.2.2's mj_loadXML takes a global lock; callers load once per task and share the const model. */
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "embedded.h"
#include "mj_impl.h"

extern const evo_embedded_file evo_mj_models[];

/* MuJoCo's default warning handler appends to MUJOCO_LOG.TXT in the working directory. The task reads the warning
   counters in mjData instead (divergence ends the episode, see mj_task.c), so the text is dropped. */
static void evo_mj_quiet_warning(const char *msg) { (void)msg; }

/* MuJoCo reports fatal errors (its per-data stack exhausted, allocation failure) through mju_user_error, which
   must not return (MuJoCo's default prints and exits the process). Ours jumps back to the guarded call on this
   thread (evo_mj_guard), which turns the error into a status or a failed episode. The hook is process-wide
   because MuJoCo's is; the jump target is per thread, since task threads step episodes concurrently. */
static _Thread_local jmp_buf *evo_mj_jump;
static _Thread_local char evo_mj_msg[256];

static void evo_mj_fatal(const char *msg) {
  snprintf(evo_mj_msg, sizeof evo_mj_msg, "%s", msg);
  if (evo_mj_jump) longjmp(*evo_mj_jump, 1);
  fprintf(stderr, "evoc: MuJoCo error outside a guarded call: %s\n", msg);
  abort();
}

void evo_mj_guard(jmp_buf *target) { evo_mj_jump = target; }
const char *evo_mj_guard_message(void) { return evo_mj_msg; }

static void install_once(void) {
  mju_user_warning = evo_mj_quiet_warning;
  mju_user_error = evo_mj_fatal;
}

/* Once per process: tasks created on several threads at once (in-process ranks) must not race on the hooks. */
void evo_mj_install_handlers(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, install_once);
}

evo_status evo_mj_model_load(const char *file, mjModel **out) {
  const evo_embedded_file *f = evo_mj_models;
  while (f->name && strcmp(f->name, file) != 0) f++;
  if (!f->name) return evo_error(EVO_STATUS_NOT_FOUND, "mujoco: model '%s' is not embedded in this build", file);
  evo_mj_install_handlers();
  mjVFS *vfs = malloc(sizeof *vfs); /* ~2 MB of file-name slots: not for the stack */
  if (!vfs) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "mujoco: out of memory loading '%s'", file);
  mj_defaultVFS(vfs);
  char err[512] = "";
  mjModel *m = NULL;
  if (mj_makeEmptyFileVFS(vfs, file, f->size) == 0) {
    memcpy(vfs->filedata[mj_findFileVFS(vfs, file)], f->data, (size_t)f->size);
    m = mj_loadXML(file, vfs, err, sizeof err);
  } else {
    snprintf(err, sizeof err, "could not create the in-memory file");
  }
  mj_deleteVFS(vfs);
  free(vfs);
  if (!m) return evo_error(EVO_STATUS_FORMAT, "mujoco: cannot load embedded model '%s': %s", file, err);
  *out = m;
  return EVO_STATUS_OK;
}
