/* CartPole on the GPU: one thread per episode, calling the same per-episode functions as the CPU loop
   (cartpole_physics.h). Compiled with --fmad=false (CMakeLists.txt), so a step gives the CPU's bits. Everything is
   enqueued on the backend's stream without a host sync, so the simulation can capture a chunk of steps as a CUDA
   Graph. */
#include <cuda_runtime.h>
#include "cartpole_impl.h"

enum { EVO_CARTPOLE_BLOCK = 256 };

__global__ void evo_cartpole_reset_kernel(evo_cartpole_kind kind, int hard, int64_t n, const evo_key *keys,
                                          evo_cartpole_state *s, int32_t *steps, uint8_t *done, float *obs, int od) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  evo_cartpole_state st = evo_cartpole_initial(kind, hard, keys[i].w[0], keys[i].w[1]);
  s[i] = st;
  steps[i] = 0;
  done[i] = 0;
  evo_cartpole_obs(kind, st, obs + i * od);
}

/* The action's type picks the task: continuous (swing-up) or discrete (balance). */
static __device__ float evo_cartpole_advance(evo_cartpole_state *s, int32_t *t, uint8_t *d, float a, int64_t max_steps,
                                             float *obs) {
  return evo_cartpole_swingup_advance(s, t, d, a, max_steps, obs);
}
static __device__ float evo_cartpole_advance(evo_cartpole_state *s, int32_t *t, uint8_t *d, int32_t a,
                                             int64_t max_steps, float *obs) {
  return evo_cartpole_balance_advance(s, t, d, a, max_steps, obs);
}

template <typename A>
__global__ void evo_cartpole_step_kernel(int64_t n, int64_t max_steps, int od, const A *actions,
                                         evo_cartpole_state *s, int32_t *steps, uint8_t *ep_done, float *obs,
                                         float *reward, uint8_t *done) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  evo_cartpole_state st = s[i];
  int32_t t = steps[i];
  uint8_t d = ep_done[i];
  reward[i] = evo_cartpole_advance(&st, &t, &d, actions[i], max_steps, obs + i * od);
  s[i] = st, steps[i] = t, ep_done[i] = d, done[i] = d;
}

/* The stream may belong to another device than the calling thread's current one. (Not cudaStreamGetDevice: it
   needs CUDA 12.8, and this runs inside recorded chunks.) */
static evo_status evo_cartpole_cuda_device(const evo_cartpole *c, const char *what) {
  evo_status st = evo_backend_use(c->dev);
  return st ? evo_error(st, "cartpole %s: %s", what, evo_last_error()) : EVO_STATUS_OK;
}

static evo_status evo_cartpole_cuda_launched(const char *what) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return evo_error(EVO_STATUS_BACKEND, "cartpole %s kernel: %s", what, cudaGetErrorString(e));
  return EVO_STATUS_OK;
}

static unsigned evo_cartpole_blocks(int64_t n) {
  return (unsigned)((n + EVO_CARTPOLE_BLOCK - 1) / EVO_CARTPOLE_BLOCK);
}

extern "C" evo_status evo_cartpole_cuda_reset(const evo_cartpole *c, int64_t n, const evo_key *keys, float *obs) {
  evo_status st = evo_cartpole_cuda_device(c, "reset");
  if (st) return st;
  const int od = c->kind == EVO_CARTPOLE_SWINGUP ? 5 : 4;
  evo_cartpole_reset_kernel<<<evo_cartpole_blocks(n), EVO_CARTPOLE_BLOCK, 0, (cudaStream_t)c->stream>>>(
      c->kind, c->hard, n, keys, c->s, c->steps, c->done, obs, od);
  return evo_cartpole_cuda_launched("reset");
}

extern "C" evo_status evo_cartpole_cuda_step(const evo_cartpole *c, const void *actions, float *obs, float *reward,
                                             uint8_t *done) {
  evo_status st = evo_cartpole_cuda_device(c, "step");
  if (st) return st;
  cudaStream_t stream = (cudaStream_t)c->stream;
  if (c->kind == EVO_CARTPOLE_SWINGUP)
    evo_cartpole_step_kernel<<<evo_cartpole_blocks(c->n), EVO_CARTPOLE_BLOCK, 0, stream>>>(
        c->n, c->max_steps, 5, (const float *)actions, c->s, c->steps, c->done, obs, reward, done);
  else
    evo_cartpole_step_kernel<<<evo_cartpole_blocks(c->n), EVO_CARTPOLE_BLOCK, 0, stream>>>(
        c->n, c->max_steps, 4, (const int32_t *)actions, c->s, c->steps, c->done, obs, reward, done);
  return evo_cartpole_cuda_launched("step");
}
