/* Internal: the optimizers' elementwise rules (optim_math.h) and a global sum of squares on a CUDA device, for
   parameters that stay there (gradient training, runner/gradtrain_dev.c). Every pointer is device memory; every
   call only enqueues on `stream` (a cudaStream_t) and checks the launch. */
#ifndef EVOC_OPTIM_CUDA_H
#define EVOC_OPTIM_CUDA_H
#include <stdint.h>
#include "evoc/status.h"
#include "optim_math.h"
#ifdef __cplusplus
extern "C" {
#endif

/* p[i] <- the rule of c->kind applied to p[i] and g[i] (first rounded to float as (float)(g[i] * scale) when
   scale != 1, as gradtrain's host path scales), updating m[i] and v[i] (NULL where the rule has none). The same
   bits as optim.c's loops for the same inputs. */
evo_status evo_optim_cuda_step(void *stream, const evo_optim_coef *c, double scale, int64_t n, float *p,
                               const float *g, double *m, double *v);

/* Sum of g[i]^2 in double, in a fixed order that depends only on n: part[b] for each span of
   EVO_OPTIM_CUDA_SPAN elements (evo_optim_cuda_parts(n) of them) gets its span's sum. */
#define EVO_OPTIM_CUDA_SPAN 8192
static inline EVO_HD int64_t evo_optim_cuda_parts(int64_t n) {
  return (n + EVO_OPTIM_CUDA_SPAN - 1) / EVO_OPTIM_CUDA_SPAN;
}
evo_status evo_optim_cuda_sumsq_parts(void *stream, const float *g, int64_t n, double *part);
/* *out = the sum of part[0 .. np), in a fixed order that depends only on np. */
evo_status evo_optim_cuda_sum(void *stream, const double *part, int64_t np, double *out);

#ifdef __cplusplus
}
#endif
#endif
