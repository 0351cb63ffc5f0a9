/* The task wrapper: creates a task from its config section (built-in by `name`, or a plugin by `plugin`), caches
   its spec, and checks every call's arguments once here so that tasks (and user plugins) can trust them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "task_impl.h"

struct evo_task {
  const evo_task_vtable *vt;
  void *state;
  evo_task_spec spec;
  void *dl; /* plugin library, NULL for a built-in */
  int64_t n; /* episodes of the last successful reset; 0 before */
};

static const evo_task_vtable *const *evo_task_builtins(int *n) {
  static const evo_task_vtable *const all[] = {&evo_task_cartpole_swingup, &evo_task_cartpole_balance,
                                               &evo_task_mnist,
                                               &evo_task_functions,
#ifdef EVOC_HAVE_MUJOCO
                                               &evo_task_mujoco,
#endif
  };
  *n = (int)(sizeof all / sizeof *all);
  return all;
}

int evo_task_builtin_count(void) {
  int n;
  evo_task_builtins(&n);
  return n;
}

const evo_task_vtable *evo_task_builtin_at(int i) {
  int n;
  const evo_task_vtable *const *all = evo_task_builtins(&n);
  return i >= 0 && i < n ? all[i] : NULL;
}

static const evo_task_vtable *evo_task_builtin_find(const char *name) {
  for (int i = 0; i < evo_task_builtin_count(); i++)
    if (strcmp(evo_task_builtin_at(i)->name, name) == 0) return evo_task_builtin_at(i);
  return NULL;
}

int evo_task_backend_is_host(const evo_backend *be) { return !be || strcmp(evo_backend_name(be), "cpu") == 0; }

/* A plugin's spec is untrusted: a bad one must fail here, not as an out-of-bounds write in the simulation. */
static evo_status evo_task_spec_check(const evo_task_spec *s, const evo_task_vtable *vt) {
  const char *bad = NULL;
  if (s->obs_ndim < 1 || s->obs_ndim > EVO_TASK_MAX_DIMS) bad = "obs_ndim must be in [1, EVO_TASK_MAX_DIMS]";
  for (int i = 0; !bad && i < s->obs_ndim; i++)
    if (s->obs_shape[i] < 1) bad = "obs_shape entries must be >= 1";
  if (!bad && (s->act_ndim < 1 || s->act_ndim > EVO_TASK_MAX_DIMS)) bad = "act_ndim must be in [1, EVO_TASK_MAX_DIMS]";
  for (int i = 0; !bad && i < s->act_ndim; i++)
    if (s->act_shape[i] < 1) bad = "act_shape entries must be >= 1";
  if (!bad && s->action_kind != EVO_ACTION_CONTINUOUS && s->action_kind != EVO_ACTION_DISCRETE)
    bad = "action_kind is neither continuous nor discrete";
  if (!bad && s->action_kind == EVO_ACTION_DISCRETE && (s->act_ndim != 1 || s->act_shape[0] > INT32_MAX))
    bad = "a discrete task has act_ndim 1 and act_shape[0] = number of actions";
  if (!bad && s->place != EVO_TASK_HOST && s->place != EVO_TASK_DEVICE) bad = "place is neither host nor device";
  if (!bad && s->max_steps < 1) bad = "max_steps must be >= 1";
  if (!bad && s->bd_dim < 0) bad = "bd_dim must be >= 0";
  if (!bad && s->bd_dim > 0 && !vt->descriptor) bad = "bd_dim > 0 but the vtable has no descriptor";
  if (!bad && (s->flags & EVO_TASK_FLAG_STEP_RANGE) && !vt->step_range)
    bad = "flags has EVO_TASK_FLAG_STEP_RANGE but the vtable has no step_range";
  return bad ? evo_error(EVO_STATUS_FORMAT, "task '%s': invalid spec: %s", vt->name, bad) : EVO_STATUS_OK;
}

/* Takes ownership of dl (closed on failure). */
static evo_status evo_task_create(const evo_task_vtable *vt, void *dl, evo_cfg *cfg, const evo_task_args *args,
                                  evo_task **out) {
  evo_task_args defaults = {NULL, EVO_TASK_TRAIN, 0};
  evo_task *t = calloc(1, sizeof *t);
  if (!t) {
    evo_task_plugin_close(dl);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "task '%s': out of memory", vt->name);
  }
  t->vt = vt;
  t->dl = dl;
  evo_clear_error();
  evo_status st = vt->create(cfg, args ? args : &defaults, &t->state);
  if (st) {
    if (!*evo_last_error()) evo_error(st, "task '%s': create failed (%s)", vt->name, evo_status_str(st));
    t->state = NULL; /* a failed create owns nothing */
    evo_task_free(t);
    return st;
  }
  memset(&t->spec, 0, sizeof t->spec); /* fields appended to ABI 1 (flags) stay 0 for older plugins */
  vt->spec(t->state, &t->spec);
  st = evo_task_spec_check(&t->spec, vt);
  /* Every reader marks its key, so whatever is left over is a typo or an option this task does not have. */
  if (!st && cfg) st = evo_cfg_check_unused(cfg);
  if (st) {
    evo_task_free(t);
    return st;
  }
  *out = t;
  return EVO_STATUS_OK;
}

static evo_status evo_task_unknown(const char *name) {
#ifndef EVOC_HAVE_MUJOCO
  if (strcmp(name, "mujoco") == 0)
    return evo_error(EVO_STATUS_UNSUPPORTED, "task 'mujoco': this build has no MuJoCo; install libmujoco-dev "
                     "(scripts/setup.sh does) and configure again with -DEVOC_MUJOCO=AUTO or ON");
#endif
  char list[512] = "";
  for (int i = 0; i < evo_task_builtin_count(); i++) {
    size_t len = strlen(list);
    snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", evo_task_builtin_at(i)->name);
  }
  return evo_error(EVO_STATUS_NOT_FOUND, "unknown task '%s' (built-in tasks: %s; or load one with plugin: <path>)",
                   name, list);
}

evo_status evo_task_new_builtin(const char *name, evo_cfg *cfg, const evo_task_args *args, evo_task **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_task_new_builtin: NULL out");
  *out = NULL;
  if (!name) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_task_new_builtin: NULL name");
  const evo_task_vtable *vt = evo_task_builtin_find(name);
  if (!vt) return evo_task_unknown(name);
  return evo_task_create(vt, NULL, cfg, args, out);
}

evo_status evo_task_new_plugin(const char *path, evo_cfg *cfg, const evo_task_args *args, evo_task **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_task_new_plugin: NULL out");
  *out = NULL;
  void *dl;
  const evo_task_vtable *vt;
  evo_status st = evo_task_plugin_open(path, &dl, &vt);
  if (st) return st;
  return evo_task_create(vt, dl, cfg, args, out);
}

/* Prefixes the current error with a config location, so the user sees which line chose the failing task. */
static evo_status evo_task_error_at(evo_status st, evo_cfg *node) {
  char where[256], msg[512];
  snprintf(msg, sizeof msg, "%s", evo_last_error());
  return evo_error(st, "%s: %s", evo_cfg_where(node, where, sizeof where), msg);
}

evo_status evo_task_new(evo_cfg *cfg, const evo_task_args *args, evo_task **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_task_new: NULL out");
  *out = NULL;
  char where[256];
  if (!cfg || evo_cfg_kind_of(cfg) != EVO_CFG_MAP)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: the task section must be a map with `name: <built-in task>` "
                     "or `plugin: <path to .so>`", cfg ? evo_cfg_where(cfg, where, sizeof where) : "task");
  evo_cfg *name_node = evo_cfg_get(cfg, "name"), *plugin_node = evo_cfg_get(cfg, "plugin");
  if (name_node && plugin_node)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: a task has either `name` or `plugin`, not both",
                     evo_cfg_where(plugin_node, where, sizeof where));
  if (!name_node && !plugin_node)
    return evo_error(EVO_STATUS_NOT_FOUND, "%s: the task section needs `name: <built-in task>` or `plugin: <path "
                     "to .so>`", evo_cfg_where(cfg, where, sizeof where));
  const char *value;
  evo_status st = evo_cfg_string(cfg, name_node ? "name" : "plugin", NULL, NULL, &value);
  if (st) return st;
  if (!value) /* `name: ~` */
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: the task's %s is empty",
                     evo_cfg_where(name_node ? name_node : plugin_node, where, sizeof where),
                     name_node ? "name" : "plugin");
  if (name_node) {
    if (!evo_task_builtin_find(value)) return evo_task_error_at(evo_task_unknown(value), name_node);
    return evo_task_new_builtin(value, cfg, args, out);
  }
  void *dl;
  const evo_task_vtable *vt;
  if ((st = evo_task_plugin_open(value, &dl, &vt))) return evo_task_error_at(st, plugin_node);
  return evo_task_create(vt, dl, cfg, args, out);
}

void evo_task_free(evo_task *t) {
  if (!t) return;
  if (t->state) t->vt->destroy(t->state);
  evo_task_plugin_close(t->dl); /* last: the vtable and destroy's code live in the library */
  free(t);
}

const evo_task_vtable *evo_task_vtable_of(const evo_task *t) { return t ? t->vt : NULL; }
const evo_task_spec *evo_task_get_spec(const evo_task *t) { return t ? &t->spec : NULL; }

/* A task that fails without a message (a terse plugin) still leaves one naming it. */
static evo_status evo_task_call_status(const evo_task *t, evo_status st, const char *what) {
  if (st && !*evo_last_error()) evo_error(st, "task '%s': %s failed (%s)", t->vt->name, what, evo_status_str(st));
  return st;
}

evo_status evo_task_reset(evo_task *t, int64_t n, const evo_key *keys, float *obs) {
  if (!t) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_task_reset: NULL task");
  if (n <= 0 || !keys || !obs)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "task '%s': reset needs n > 0 (got %lld), keys and obs",
                     t->vt->name, (long long)n);
  t->n = 0; /* a failed reset leaves no episodes to step */
  evo_clear_error();
  evo_status st = evo_task_call_status(t, t->vt->reset(t->state, n, keys, obs), "reset");
  if (!st) t->n = n;
  return st;
}

evo_status evo_task_step(evo_task *t, const void *actions, float *obs, float *reward, uint8_t *done) {
  if (!t) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_task_step: NULL task");
  if (t->n == 0) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "task '%s': step before reset", t->vt->name);
  if (!actions || !obs || !reward || !done)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "task '%s': step needs actions, obs, reward and done",
                     t->vt->name);
  evo_clear_error();
  return evo_task_call_status(t, t->vt->step(t->state, actions, obs, reward, done), "step");
}

evo_status evo_task_step_range(evo_task *t, int64_t begin, int64_t end, const void *actions, float *obs,
                               float *reward, uint8_t *done) {
  if (!t) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_task_step_range: NULL task");
  if (!(t->spec.flags & EVO_TASK_FLAG_STEP_RANGE))
    return evo_error(EVO_STATUS_UNSUPPORTED, "task '%s' cannot step sub-ranges", t->vt->name);
  if (t->n == 0) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "task '%s': step before reset", t->vt->name);
  if (begin < 0 || begin >= end || end > t->n)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "task '%s': step range [%lld, %lld) is not inside [0, %lld)",
                     t->vt->name, (long long)begin, (long long)end, (long long)t->n);
  if (!actions || !obs || !reward || !done)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "task '%s': step needs actions, obs, reward and done",
                     t->vt->name);
  evo_clear_error();
  return evo_task_call_status(t, t->vt->step_range(t->state, begin, end, actions, obs, reward, done), "step");
}

evo_status evo_task_descriptor(evo_task *t, float *bd) {
  if (!t) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "evo_task_descriptor: NULL task");
  if (!t->vt->descriptor || t->spec.bd_dim == 0)
    return evo_error(EVO_STATUS_UNSUPPORTED, "task '%s' has no behaviour descriptor", t->vt->name);
  if (t->n == 0) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "task '%s': descriptor before reset", t->vt->name);
  if (!bd) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "task '%s': descriptor needs bd", t->vt->name);
  evo_clear_error();
  return evo_task_call_status(t, t->vt->descriptor(t->state, bd), "descriptor");
}
