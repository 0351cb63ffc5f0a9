/* Internal: CPU kernels, one function per op family; core/cpu/cpu_dispatch.c maps ops to them.
   Each takes the kernel arguments of backend_impl.h and returns a status (UNSUPPORTED for a dtype it lacks). */
#ifndef EVOC_CPU_KERNELS_H
#define EVOC_CPU_KERNELS_H
#include "../backend_impl.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Loop-dim iteration helper: for an output with `nloop` loop dims (out_loop), maps a flat loop index to the flat
   loop index of an input whose loop dims (in_loop, right-aligned, size 1 broadcasts) are `in_nloop` long. */
int64_t evo_cpu_loop_offset(int nloop, const int64_t *out_loop, int in_nloop, const int64_t *in_loop, int64_t flat);

/* k_elementwise.c: unary, binary, compare, where, clip, cast, stop_gradient, sign */
evo_status evo_cpu_unary(const evo_kernel_args *a);
evo_status evo_cpu_binary(const evo_kernel_args *a);
/* EVO_OP_FUSED_BINARY_UNARY (ops.h); evo_cpu_fusable_pair says which (binary, unary) pairs it runs. */
evo_status evo_cpu_fused_binary_unary(const evo_kernel_args *a);
int evo_cpu_fusable_pair(evo_op binary, evo_op unary);
evo_status evo_cpu_compare(const evo_kernel_args *a);
evo_status evo_cpu_where(const evo_kernel_args *a);
evo_status evo_cpu_clip(const evo_kernel_args *a);
evo_status evo_cpu_cast(const evo_kernel_args *a);
/* k_reduce.c: REDUCE_SUM/MAX/MIN, LOGSUMEXP, ARGMAX, SOFTMAX, LOG_SOFTMAX */
evo_status evo_cpu_reduce(const evo_kernel_args *a);
evo_status evo_cpu_argmax(const evo_kernel_args *a);
evo_status evo_cpu_softmax(const evo_kernel_args *a); /* SOFTMAX and LOG_SOFTMAX */
/* k_shape.c: RESHAPE, TRANSPOSE, BROADCAST_TO, CONCAT, SLICE, PAD, TAKE_ALONG_AXIS, SCATTER_ADD_ALONG_AXIS,
   ONE_HOT, CONST (copy of cdata) */
evo_status evo_cpu_shape_op(const evo_kernel_args *a);
/* k_rng.c: RNG_UNIFORM/NORMAL/TRUNC_NORMAL */
evo_status evo_cpu_rng(const evo_kernel_args *a);
/* k_matmul.c */
evo_status evo_cpu_matmul(const evo_kernel_args *a);
size_t evo_cpu_matmul_scratch(const evo_node_t *node, const evo_node_t *const *in);
/* k_conv.c: CONV2D, CONV2D_GRAD_INPUT, CONV2D_GRAD_KERNEL */
evo_status evo_cpu_conv2d(const evo_kernel_args *a);
size_t evo_cpu_conv2d_scratch(const evo_node_t *node, const evo_node_t *const *in);
/* k_pool.c: MAX_POOL2D(+_GRAD), AVG_POOL2D(+_GRAD) */
evo_status evo_cpu_pool2d(const evo_kernel_args *a);

#ifdef __cplusplus
}
#endif

#endif
