/* Internal: the simulation's device-path kernels (sim_cuda.cu). Every pointer is device memory, every call only
   enqueues on `stream` (a cudaStream_t) and checks the launch; errors name the kernel. */
#ifndef EVOC_SIM_CUDA_H
#define EVOC_SIM_CUDA_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "evoc/status.h"
#ifdef __cplusplus
extern "C" {
#endif

evo_status evo_sim_cuda_memset0(void *stream, void *p, size_t nbytes);
evo_status evo_sim_cuda_copy(void *stream, void *dst, const void *src, size_t nbytes);
/* alive[e] = e < n_valid, ret[e] = 0, steps[e] = 0 for e < E. */
evo_status evo_sim_cuda_begin(void *stream, int64_t E, int64_t n_valid, uint8_t *alive, double *ret,
                              int32_t *steps);
/* Adds each member's alive rows of obs [., m] to its statistics acc [members, 1 + 2m] (count, mean, M2): member
   i's rows are [i * reps, (i + 1) * reps), or [0, reps) for every member when shared; per component a two-pass
   mean/M2 over those rows in row order, merged with Chan et al.'s formula, as sim_norm.c does on the host. */
evo_status evo_sim_cuda_norm_accumulate(void *stream, const float *obs, const uint8_t *alive, int64_t members,
                                        int reps, bool shared, int64_t m, double *acc);
/* obs = clip((obs - use[0]) / use[1], -5, 5), use [2, m]. */
evo_status evo_sim_cuda_normalize(void *stream, float *obs, int64_t rows, int64_t m, const float *use);
/* Policy output act [E, k] -> task actions: a non-finite row is zeroed and, if its episode counts and is alive,
   flags its member (bad[e / reps]); dact (when not NULL) gets the argmax of each row, first maximum wins. */
evo_status evo_sim_cuda_actions(void *stream, float *act, int64_t E, int64_t k, int64_t n_valid,
                                const uint8_t *alive, uint8_t *bad, int reps, int32_t *dact);
/* Masking and returns after a step, for the alive episodes e < n_valid: a non-finite reward flags the member,
   ret += reward, steps += 1; a done episode stops being alive and its recurrent state rows (state0/state1 with
   state_size floats per episode, NULL when absent) restart at zero. */
evo_status evo_sim_cuda_mask(void *stream, const float *reward, const uint8_t *done, uint8_t *alive, double *ret,
                             int32_t *steps, uint8_t *bad, int64_t n_valid, int reps, float *state0, float *state1,
                             int64_t state_size);
/* bad[i] = 1 if row i of p [rows, cols] has a NaN or an infinity, else 0. */
evo_status evo_sim_cuda_rows_nonfinite(void *stream, const float *p, int64_t rows, int64_t cols, uint8_t *bad);
/* out[0] = number of alive episodes among n. */
evo_status evo_sim_cuda_count_alive(void *stream, const uint8_t *alive, int64_t n, int32_t *out);

#ifdef __cplusplus
}
#endif
#endif
