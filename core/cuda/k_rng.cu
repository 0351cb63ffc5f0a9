/* RNG CUDA kernels: RNG_UNIFORM / NORMAL / TRUNC_NORMAL, the same streams as core/cpu/k_rng.c: one stream per key
   (the key's loop dims), one thread per Philox block (4 uniforms or truncated normals, 2 normals), element j of a
   stream exactly as rng_math.h defines it.
   The generator is the shared evo_philox10 (rng_math.h), not cuRAND's curand_philox4x32_10: ours is the one the
   CPU runs and that tests/test_rng.c checks against Random123's known answers, so calling the same inline
   function on both sides is what makes the raw words bit-identical (cuRAND's device Philox keeps its own
   counter/subsequence/offset layout, which would need a mapping proof and could still drift). The float transforms
   use the device logf/cosf/erfcf, so floats agree with the CPU to a few ulps (rng_math.h). The truncated normal's
   per-call constants are computed on the host with the CPU's erfcf, so they are the CPU's exactly. */
#include "cuda_util.cuh"
#include "../rng_math.h"

namespace {

template <evo_op OP, typename I>
__global__ void k_rng(const uint32_t *__restrict__ keys, float *__restrict__ y, I items, I nb, I core, float lo,
                      float hi, evo_rng_tn_params tn) {
  constexpr I per = OP == EVO_OP_RNG_NORMAL ? 2 : 4; /* elements per Philox block */
  EVO_CUDA_FOR(I, it, items) {
    const I k = it / nb, b = it - k * nb;
    const evo_philox_block r = evo_rng_block(keys[2 * k], keys[2 * k + 1], (uint64_t)b);
    float *out = y + k * core + b * per;
    const I m = core - b * per < per ? core - b * per : per;
#pragma unroll
    for (I i = 0; i < per; i++) {
      if (i >= m) break;
      if constexpr (OP == EVO_OP_RNG_UNIFORM)
        out[i] = evo_rng_uniform_range(evo_rng_u01(r.w[i]), lo, hi);
      else if constexpr (OP == EVO_OP_RNG_NORMAL)
        out[i] = evo_rng_normal_from_words(r.w[2 * i], r.w[2 * i + 1]);
      else
        out[i] = evo_rng_tn_from_word(r.w[i], tn);
    }
  }
}

template <evo_op OP, typename I>
void launch(evo_cuda_ctx *c, const evo_kernel_args *a, int64_t items, int64_t nb, int64_t core,
            const evo_rng_tn_params &tn) {
  const float lo = a->node->p.f[0], hi = a->node->p.f[1];
  k_rng<OP, I><<<evo_cuda_grid(c, items, EVO_CUDA_BLOCK), EVO_CUDA_BLOCK, 0, c->stream>>>(
      (const uint32_t *)a->src[0], (float *)a->dst, (I)items, (I)nb, (I)core, lo, hi, tn);
}

template <evo_op OP>
void launch_op(evo_cuda_ctx *c, const evo_kernel_args *a, int64_t items, int64_t nb, int64_t core,
               const evo_rng_tn_params &tn, bool small) {
  if (small)
    launch<OP, uint32_t>(c, a, items, nb, core, tn);
  else
    launch<OP, uint64_t>(c, a, items, nb, core, tn);
}

} // namespace

extern "C" evo_status evo_cuda_rng(evo_cuda_ctx *c, const evo_kernel_args *a) {
  const evo_node_t *node = a->node, *key = a->in[0];
  if (node->dtype != EVO_F32 || key->dtype != EVO_U32 || key->ndim < 1 || key->shape[key->ndim - 1] != 2)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda %s: needs a u32 [..., 2] key and an f32 result",
                     evo_op_name(node->op));
  const int ncore = node->p.i[0];
  if (ncore < 0 || ncore > node->ndim) return evo_error(EVO_STATUS_INTERNAL, "cuda rng: bad core rank %d", ncore);
  const int64_t nkeys = evo_cpu_numel(key->ndim - 1, key->shape);
  const int64_t core = evo_cpu_numel(ncore, node->shape + node->ndim - ncore);
  if (nkeys * core != evo_cpu_numel(node->ndim, node->shape))
    return evo_error(EVO_STATUS_INTERNAL, "cuda rng: key loop dims do not match the output");
  const evo_op op = node->op;
  const int64_t per = op == EVO_OP_RNG_NORMAL ? 2 : 4, nb = (core + per - 1) / per, items = nkeys * nb;
  if (items == 0) return EVO_STATUS_OK;
  /* 32-bit indices when every output offset and key index fits */
  const bool small = evo_cuda_fits32(nkeys * nb * per) && evo_cuda_fits32(2 * nkeys);
  evo_rng_tn_params tn = {};
  switch (op) {
  case EVO_OP_RNG_UNIFORM: launch_op<EVO_OP_RNG_UNIFORM>(c, a, items, nb, core, tn, small); break;
  case EVO_OP_RNG_NORMAL: launch_op<EVO_OP_RNG_NORMAL>(c, a, items, nb, core, tn, small); break;
  case EVO_OP_RNG_TRUNC_NORMAL:
    tn = evo_rng_tn_params_init(node->p.f[0], node->p.f[1]);
    launch_op<EVO_OP_RNG_TRUNC_NORMAL>(c, a, items, nb, core, tn, small);
    break;
  default: return evo_error(EVO_STATUS_INTERNAL, "cuda rng: bad op %s", evo_op_name(op));
  }
  return EVO_CUDA_LAUNCHED("rng kernel");
}
