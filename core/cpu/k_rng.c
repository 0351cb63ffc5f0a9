/* RNG CPU kernels: RNG_UNIFORM / NORMAL / TRUNC_NORMAL. One stream per key (the key's loop dims), element j of
   a stream exactly as evo_rng_uniform01 / normal / truncated_normal define it (rng_math.h). The loops walk Philox
   blocks rather than elements (one call gives 4 uniforms or 2 normals), as evo_rng_fill_* do, so a kernel and a
   host fill with the same key give identical floats. */
#include "../rng_math.h"
#include "cpu_util.h"

evo_status evo_cpu_rng(const evo_kernel_args *a) {
  const evo_node_t *node = a->node, *key = a->in[0];
  if (node->dtype != EVO_F32 || key->dtype != EVO_U32 || key->ndim < 1 || key->shape[key->ndim - 1] != 2)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cpu %s: needs a u32 [..., 2] key and an f32 result",
                     evo_op_name(node->op));
  const int ncore = node->p.i[0];
  if (ncore < 0 || ncore > node->ndim) return evo_error(EVO_STATUS_INTERNAL, "cpu rng: bad core rank %d", ncore);
  const int64_t nkeys = evo_cpu_numel(key->ndim - 1, key->shape);
  const int64_t core = evo_cpu_numel(ncore, node->shape + node->ndim - ncore);
  if (nkeys * core != evo_cpu_numel(node->ndim, node->shape))
    return evo_error(EVO_STATUS_INTERNAL, "cpu rng: key loop dims do not match the output");
  const uint32_t *keys = a->src[0];
  float *y = a->dst;
  const evo_op op = node->op;
  const int per = op == EVO_OP_RNG_NORMAL ? 2 : 4; /* elements per Philox block */
  const int64_t nb = (core + per - 1) / per, items = nkeys * nb;
  const float lo = node->p.f[0], hi = node->p.f[1];
  evo_rng_tn_params tn = {0};
  if (op == EVO_OP_RNG_TRUNC_NORMAL) tn = evo_rng_tn_params_init(lo, hi);
  else if (op != EVO_OP_RNG_UNIFORM && op != EVO_OP_RNG_NORMAL)
    return evo_error(EVO_STATUS_INTERNAL, "cpu rng: bad op %s", evo_op_name(op));

#pragma omp parallel for if (nkeys * core > EVO_CPU_PAR_MIN_HEAVY) schedule(static)
  for (int64_t it = 0; it < items; it++) {
    const int64_t k = it / nb, b = it % nb;
    const evo_philox_block r = evo_rng_block(keys[2 * k], keys[2 * k + 1], (uint64_t)b);
    float *out = y + k * core + b * per;
    const int64_t m = core - b * per < per ? core - b * per : per;
    switch (op) {
    case EVO_OP_RNG_UNIFORM:
      for (int64_t i = 0; i < m; i++) out[i] = evo_rng_uniform_range(evo_rng_u01(r.w[i]), lo, hi);
      break;
    case EVO_OP_RNG_NORMAL:
      for (int64_t i = 0; i < m; i++) out[i] = evo_rng_normal_from_words(r.w[2 * i], r.w[2 * i + 1]);
      break;
    default:
      for (int64_t i = 0; i < m; i++) out[i] = evo_rng_tn_from_word(r.w[i], tn);
      break;
    }
  }
  return EVO_STATUS_OK;
}
