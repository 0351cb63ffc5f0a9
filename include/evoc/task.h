/* The public task interface (DESIGN.md §4). A task is a versioned vtable; evoc's own tasks and user plugins use the
 * same one. A plugin is a shared library exporting
 *
 *     const evo_task_vtable *evo_task_plugin_entry(void);
 *
 * loaded by `task: {plugin: ./libmytask.so, ...}`; its abi_version must equal EVO_TASK_ABI_VERSION.
 *
 * Contract (all batched over n episodes, n fixed by reset):
 *  - create(cfg, args, &state): parse options from the task's config section with the evo_cfg_* readers (so bad
 *    options get "file:line:col" errors) and allocate state. cfg may be NULL (all defaults).
 *  - spec(state, &spec): shapes and kinds; constant after create.
 *  - reset(state, n, keys, obs): start n episodes; episode i draws its initial state only from keys[i]; writes obs
 *    [n, obs_shape...]. Resetting again starts fresh episodes (n may change).
 *  - step(state, actions, obs, reward, done): advance every episode one step. actions is f32 [n, act_shape...] for
 *    continuous tasks, i32 [n] for discrete ones. Writes obs, reward [n] and done [n] (0/1). A task may keep stepping
 *    episodes that are already done (the simulation manager masks them); it must not crash or produce NaN for them.
 *  - descriptor(state, bd): optional (NULL if none): behaviour descriptor f32 [n, bd_dim] of the episodes so far.
 *  - destroy(state).
 *  - step_range(state, begin, end, actions, obs, reward, done): optional, read only when spec.flags has
 *    EVO_TASK_FLAG_STEP_RANGE. Advances episodes [begin, end) exactly as step advances them; the pointers are
 *    step's full arrays (row i is episode i) and only rows in the range are read or written. The simulation
 *    manager then steps a host task's episodes in fixed contiguous ranges on several threads at once (evo_sim
 *    params task_threads), so ranges must be independent: per-episode state only, no shared scratch or RNG state
 *    written, and no OpenMP inside (the caller's threads are the parallelism). Results must not depend on the
 *    split: step(...) must equal step_range over any partition of [0, n). If one range fails, the others may have
 *    advanced; the simulation reports the error and starts fresh episodes next time.
 *    ABI: the flag and this entry were appended to ABI 1 without changing EVO_TASK_ABI_VERSION. A plugin built
 *    before them leaves flags 0 (evoc zeroes the spec before calling spec()), so evoc never reads past the end of
 *    its shorter vtable, and it is stepped whole, on one thread.
 * Memory: for a host task (place EVO_TASK_HOST) every pointer is host memory. A device task receives pointers in
 * the memory of args->backend (host memory for the CPU backend); on a CUDA backend it launches its kernels on
 * evo_backend_stream after evo_backend_use (one thread may drive several GPUs). Return evo_status; never exit or
 * abort.
 */
#ifndef EVOC_TASK_H
#define EVOC_TASK_H
#include <stdint.h>
#include "evoc/backend.h"
#include "evoc/config.h"
#include "evoc/rng.h"
#include "evoc/status.h"
#ifdef __cplusplus
extern "C" {
#endif

#define EVO_TASK_ABI_VERSION 1u
#define EVO_TASK_MAX_DIMS 4

typedef enum { EVO_ACTION_CONTINUOUS = 0, EVO_ACTION_DISCRETE = 1 } evo_action_kind;
typedef enum { EVO_TASK_HOST = 0, EVO_TASK_DEVICE = 1 } evo_task_place;
typedef enum { EVO_TASK_TRAIN = 0, EVO_TASK_TEST = 1 } evo_task_mode;

typedef struct {
  int obs_ndim;
  int64_t obs_shape[EVO_TASK_MAX_DIMS];
  int act_ndim;                          /* continuous: action shape; discrete: act_shape[0] = number of actions */
  int64_t act_shape[EVO_TASK_MAX_DIMS];
  evo_action_kind action_kind;
  int64_t max_steps;
  evo_task_place place;
  int bd_dim; /* behaviour descriptor size (0: none) */
  uint32_t flags; /* EVO_TASK_FLAG_* (appended to ABI 1; 0 for tasks that predate it) */
} evo_task_spec;

/* The vtable has step_range and disjoint ranges may be stepped concurrently (see the contract above). */
#define EVO_TASK_FLAG_STEP_RANGE 1u
/* A device task whose step can be recorded into a CUDA Graph and replayed: step only enqueues work on the
   backend's stream (evo_backend_stream), with no host synchronisation, no allocation, no host-side state that
   changes from step to step, and the same device pointers from one step to the next until the next reset. The
   simulation manager then records check_interval steps once after each reset and replays them as one graph. */
#define EVO_TASK_FLAG_GRAPH_SAFE 2u

typedef struct {
  evo_backend *backend;
  evo_task_mode mode; /* train or test split / settings */
  uint64_t seed;      /* task-level randomness (e.g. a rotation), not per-episode */
} evo_task_args;

typedef struct evo_task_vtable {
  uint32_t abi_version;
  const char *name;
  const char *doc;
  evo_status (*create)(evo_cfg *cfg, const evo_task_args *args, void **state);
  void (*spec)(const void *state, evo_task_spec *out);
  evo_status (*reset)(void *state, int64_t n, const evo_key *keys, float *obs);
  evo_status (*step)(void *state, const void *actions, float *obs, float *reward, uint8_t *done);
  evo_status (*descriptor)(void *state, float *bd);
  void (*destroy)(void *state);
  /* Appended to ABI 1: read only when spec.flags has EVO_TASK_FLAG_STEP_RANGE. */
  evo_status (*step_range)(void *state, int64_t begin, int64_t end, const void *actions, float *obs, float *reward,
                           uint8_t *done);
} evo_task_vtable;

typedef const evo_task_vtable *(*evo_task_plugin_entry_fn)(void);
#define EVO_TASK_PLUGIN_ENTRY "evo_task_plugin_entry"

/* A task instance: vtable + state, created by name (built-in) or from a plugin path. */
typedef struct evo_task evo_task;

/* cfg is the `task` section: `name: cartpole_swingup` or `plugin: path.so`. */
evo_status evo_task_new(evo_cfg *cfg, const evo_task_args *args, evo_task **out);
/* Built-in task by name with an optional config section. */
evo_status evo_task_new_builtin(const char *name, evo_cfg *cfg, const evo_task_args *args, evo_task **out);
/* Loads a plugin; NOT_FOUND/FORMAT errors name the path, the missing symbol or the version mismatch. */
evo_status evo_task_new_plugin(const char *path, evo_cfg *cfg, const evo_task_args *args, evo_task **out);
void evo_task_free(evo_task *t);
const evo_task_vtable *evo_task_vtable_of(const evo_task *t);
const evo_task_spec *evo_task_get_spec(const evo_task *t);
evo_status evo_task_reset(evo_task *t, int64_t n, const evo_key *keys, float *obs);
evo_status evo_task_step(evo_task *t, const void *actions, float *obs, float *reward, uint8_t *done);
evo_status evo_task_descriptor(evo_task *t, float *bd);
/* Steps episodes [begin, end) of the last reset through the task's step_range (UNSUPPORTED when its spec lacks
   EVO_TASK_FLAG_STEP_RANGE). Safe to call from several threads at once on disjoint ranges. */
evo_status evo_task_step_range(evo_task *t, int64_t begin, int64_t end, const void *actions, float *obs,
                               float *reward, uint8_t *done);

/* Built-in tasks (for `evoc list`). */
int evo_task_builtin_count(void);
const evo_task_vtable *evo_task_builtin_at(int i);

#ifdef __cplusplus
}
#endif
#endif
