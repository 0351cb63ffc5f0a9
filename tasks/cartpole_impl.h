/* Internal: the CartPole task's state, shared by the CPU path (tasks/cartpole.c) and the CUDA path
   (tasks/cartpole_cuda.cu). */
#ifndef EVOC_CARTPOLE_IMPL_H
#define EVOC_CARTPOLE_IMPL_H
#include "cartpole_physics.h"
#include "evoc/task.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  evo_cartpole_kind kind;
  int hard; /* swing-up variant */
  int64_t max_steps;
  evo_task_place place;
  evo_backend *dev; /* the CUDA backend whose memory holds the arrays below; NULL: host memory */
  void *stream;     /* dev's cudaStream_t */
  int64_t n, cap;   /* episodes of the last reset; allocated */
  evo_cartpole_state *s;
  int32_t *steps;
  uint8_t *done;
} evo_cartpole;

/* Kernels on c->stream; every pointer is device memory. Errors (launch failures) name the call. Actions of the
   balance task other than 0/1 count as 0 here: checking them would need a host sync per step. */
evo_status evo_cartpole_cuda_reset(const evo_cartpole *c, int64_t n, const evo_key *keys, float *obs);
evo_status evo_cartpole_cuda_step(const evo_cartpole *c, const void *actions, float *obs, float *reward,
                                  uint8_t *done);

#ifdef __cplusplus
}
#endif
#endif
