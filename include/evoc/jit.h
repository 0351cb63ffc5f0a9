/* jit: compile a traced graph for its fixed shapes into a plan for one backend. Compilation does shape checks,
   dead-code elimination, liveness-based buffer reuse in one arena, and kernel choice. Running a plan allocates
   nothing. */
#ifndef EVOC_JIT_H
#define EVOC_JIT_H
#include <stddef.h>
#include <stdint.h>
#include "evoc/backend.h"
#include "evoc/graph.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct evo_plan evo_plan; /* opaque */

typedef struct {
  /* Bit j: graph input j (j < 64) is static: the caller rebinds or rewrites it rarely (a population's parameters
     during a rollout). The kernels that depend only on static inputs and constants (slicing the parameter vector
     into weights, say) then run once and are skipped by later runs, until a static input is bound to another
     buffer or evo_plan_static_changed says its data changed. On a device they run outside the plan's CUDA Graph
     (and outside a caller's recording, when evo_plan_run_static ran them first). Default 0. */
  uint64_t static_inputs;
} evo_jit_params;

evo_jit_params evo_jit_default_params(void);
evo_status evo_jit(const evo_graph *g, evo_backend *be, evo_plan **out); /* default params */
evo_status evo_jit_with(const evo_graph *g, evo_backend *be, const evo_jit_params *jp, evo_plan **out);
void evo_plan_free(evo_plan *p);
/* The data of a static input changed in place: the next run recomputes what depends on it. */
void evo_plan_static_changed(evo_plan *p);
/* Binds inputs (all of them, as evo_plan_run) and runs the hoisted kernels now unless their results are current;
   not while the caller records the stream (a recording made afterwards then leaves them out). */
evo_status evo_plan_run_static(evo_plan *p, evo_tensor *const *inputs);
/* Hoisted kernels, and how many runs have run them (for tests and reports). */
void evo_plan_static_stats(const evo_plan *p, int *kernels, int *runs);

/* inputs: one tensor per graph input (shapes and dtypes must match); outputs: one preallocated tensor per graph
   output. Tensors must live on the plan's backend. On a device backend (CUDA) the first run records the plan into
   a CUDA Graph and later runs replay it (binding other tensors records again); the run is queued on the backend's
   stream and may return before it finishes: reading an output back (evo_tensor_copy_to_host) waits for it.
   Called while the caller records that stream into a CUDA Graph of its own, the plan's kernels join that graph. */
evo_status evo_plan_run(evo_plan *p, evo_tensor *const *inputs, evo_tensor *const *outputs);

/* Bytes of the plan's arena (intermediates, after reuse) and of constants. */
size_t evo_plan_peak_bytes(const evo_plan *p);
/* Bytes the intermediates would need without reuse (for reporting the saving). */
size_t evo_plan_naive_bytes(const evo_plan *p);
int evo_plan_n_kernels(const evo_plan *p);
size_t evo_plan_scratch_bytes(const evo_plan *p); /* kernel scratch (part of peak) */

/* Convenience for tests and one-off calls: jit, run once, free. */
evo_status evo_eval(const evo_graph *g, evo_backend *be, evo_tensor *const *inputs, evo_tensor *const *outputs);

#ifdef __cplusplus
}
#endif
#endif
