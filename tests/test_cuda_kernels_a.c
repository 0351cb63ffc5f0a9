/* Host-side checks of the CUDA kernels' index arithmetic (core/cuda/cuda_util.cuh, compiled here as plain C): the
   coalesced broadcast/permuted indices and the flat -> offset maps (32- and 64-bit) against a reference walk over
   the multi-index. Runs without a GPU; the kernels themselves are compared with the CPU by the cross-backend op
   harness on a machine that has one. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include "cuda/cuda_util.cuh"

static uint64_t rng_state;
static uint64_t next_u64(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}
static int64_t rand_in(int64_t lo, int64_t hi) { return lo + (int64_t)(next_u64() % (uint64_t)(hi - lo + 1)); }

static evo_node_t mk(int ndim, const int64_t *shape) {
  evo_node_t n;
  memset(&n, 0, sizeof n);
  n.dtype = EVO_F32;
  n.ndim = ndim;
  for (int d = 0; d < ndim; d++) n.shape[d] = shape[d];
  return n;
}

/* Offset into a right-aligned, size-1-broadcasting input of out's element `flat` (independent of cpu_loop.c). */
static int64_t ref_bcast(const evo_node_t *out, const evo_node_t *in, int64_t flat) {
  int64_t off = 0, stride = 1;
  for (int d = out->ndim - 1; d >= 0; d--) {
    const int64_t c = flat % out->shape[d];
    flat /= out->shape[d];
    const int di = d - (out->ndim - in->ndim);
    if (di < 0) continue;
    if (in->shape[di] != 1) off += c * stride;
    stride *= in->shape[di];
  }
  return off;
}

/* Checks both offset widths at `flat` against the expected offsets of every operand. */
static void check_at(const evo_cuda_index *ix, int64_t flat, const int64_t *want, uint64_t seed) {
  uint32_t o32[EVO_CUDA_MAX_OPS];
  uint64_t o64[EVO_CUDA_MAX_OPS];
  evo_cuda_offsets32(ix, (uint32_t)flat, o32);
  evo_cuda_offsets64(ix, (uint64_t)flat, o64);
  for (int k = 0; k < ix->nop; k++) {
    cr_assert_eq((int64_t)o64[k], want[k], "seed %llu: operand %d at %lld: offset %lld, want %lld",
                 (unsigned long long)seed, k, (long long)flat, (long long)o64[k], (long long)want[k]);
    cr_assert_eq((int64_t)o32[k], want[k], "seed %llu: 32-bit operand %d at %lld", (unsigned long long)seed, k,
                 (long long)flat);
  }
}

Test(cuda_index, bcast_offsets_match_reference) {
  for (uint64_t seed = 1; seed <= 300; seed++) {
    rng_state = seed * 0x9E3779B97F4A7C15ull;
    int64_t shape[EVO_MAX_DIMS];
    const int nd = (int)rand_in(0, 5);
    for (int d = 0; d < nd; d++) shape[d] = rand_in(1, 4);
    evo_node_t out = mk(nd, shape), ins[3];
    const int nin = (int)rand_in(1, 3);
    evo_kernel_args a;
    memset(&a, 0, sizeof a);
    a.node = &out;
    for (int k = 0; k < nin; k++) { /* drop some leading dims, make some dims 1 */
      const int ind = (int)rand_in(0, nd);
      int64_t s[EVO_MAX_DIMS];
      for (int d = 0; d < ind; d++) s[d] = rand_in(0, 2) == 0 ? 1 : shape[nd - ind + d];
      ins[k] = mk(ind, s);
      a.in[k] = &ins[k];
    }
    evo_cuda_index ix;
    evo_cuda_index_bcast(&ix, &a, nin);
    cr_assert_eq(ix.nop, nin + 1);
    cr_assert(ix.ndim >= 1 && ix.ndim <= (nd > 0 ? nd : 1), "seed %llu: ndim %d", (unsigned long long)seed, ix.ndim);
    const int64_t n = evo_cpu_numel(nd, shape);
    cr_assert_eq(evo_cpu_numel(ix.ndim, ix.shape), n, "seed %llu: coalescing changed the element count",
                 (unsigned long long)seed);
    int64_t span = 1;
    bool all_full = true;
    for (int k = 0; k < nin; k++) all_full = all_full && evo_cpu_numel(ins[k].ndim, ins[k].shape) == n;
    for (int64_t i = 0; i < n; i++) {
      int64_t want[EVO_CUDA_MAX_OPS] = {i};
      for (int k = 0; k < nin; k++) {
        want[k + 1] = ref_bcast(&out, &ins[k], i);
        span = want[k + 1] + 1 > span ? want[k + 1] + 1 : span;
      }
      span = i + 1 > span ? i + 1 : span;
      check_at(&ix, i, want, seed);
    }
    cr_assert_eq(evo_cuda_index_span(&ix), span, "seed %llu: span", (unsigned long long)seed);
    /* inputs of the output's element count broadcast nowhere: the index is one flat run */
    if (all_full && n > 1) cr_assert(evo_cuda_index_is_flat(&ix), "seed %llu: not flat", (unsigned long long)seed);
  }
}

Test(cuda_index, scalar_and_bias_patterns) {
  const int64_t so[3] = {3, 5, 7}, sb[1] = {7}, sr[3] = {3, 1, 7};
  evo_node_t out = mk(3, so), scalar = mk(0, NULL), bias = mk(1, sb), rowb = mk(3, sr);
  evo_kernel_args a;
  memset(&a, 0, sizeof a);
  a.node = &out;
  a.in[0] = &scalar;
  a.in[1] = &bias;
  a.in[2] = &rowb;
  evo_cuda_index ix;
  evo_cuda_index_bcast(&ix, &a, 3);
  cr_assert_not(evo_cuda_index_is_flat(&ix));
  for (int64_t i = 0; i < 105; i++) {
    const int64_t want[4] = {i, 0, i % 7, (i / 35) * 7 + i % 7};
    check_at(&ix, i, want, 0);
  }
  a.in[0] = a.in[1] = &out; /* same shapes: flat */
  evo_cuda_index_bcast(&ix, &a, 2);
  cr_assert(evo_cuda_index_is_flat(&ix));
  cr_assert_eq(ix.ndim, 1);
  cr_assert_eq(ix.shape[0], 105);
}

/* A transpose's input strides (as k_shape.cu builds them) map every output element to the permuted input. */
Test(cuda_index, permuted_strides_match_reference) {
  for (uint64_t seed = 1; seed <= 200; seed++) {
    rng_state = seed * 0xD1B54A32D192ED03ull;
    const int nd = (int)rand_in(1, 5);
    int64_t in_shape[EVO_MAX_DIMS], out_shape[EVO_MAX_DIMS], cst[EVO_MAX_DIMS], st[EVO_MAX_DIMS];
    int perm[EVO_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
      in_shape[d] = rand_in(1, 5);
      perm[d] = d;
    }
    for (int d = nd - 1; d > 0; d--) { /* Fisher-Yates */
      const int j = (int)rand_in(0, d), t = perm[d];
      perm[d] = perm[j];
      perm[j] = t;
    }
    evo_cpu_contig_strides(nd, in_shape, cst);
    for (int d = 0; d < nd; d++) {
      out_shape[d] = in_shape[perm[d]];
      st[d] = cst[perm[d]];
    }
    evo_cpu_iter it;
    evo_cpu_iter_init(&it, nd, out_shape);
    evo_cpu_iter_add_contig(&it, NULL, 1);
    evo_cpu_iter_add(&it, NULL, 1, st);
    evo_cpu_iter_coalesce(&it);
    evo_cuda_index ix;
    evo_cuda_index_from_iter(&ix, &it);
    const int64_t n = evo_cpu_numel(nd, out_shape);
    for (int64_t i = 0; i < n; i++) {
      int64_t rem = i, off = 0;
      for (int d = nd - 1; d >= 0; d--) { /* out coordinate d is input coordinate perm[d] */
        off += (rem % out_shape[d]) * cst[perm[d]];
        rem /= out_shape[d];
      }
      const int64_t want[2] = {i, off};
      check_at(&ix, i, want, seed);
    }
  }
}

/* Past 2^32 elements only the 64-bit form is used; it must stay exact there. */
Test(cuda_index, offsets64_beyond_32_bits) {
  const int64_t so[2] = {70001, 65537}, sc[2] = {70001, 1}, sr[1] = {65537};
  evo_node_t out = mk(2, so), col = mk(2, sc), row = mk(1, sr);
  evo_kernel_args a;
  memset(&a, 0, sizeof a);
  a.node = &out;
  a.in[0] = &col;
  a.in[1] = &row;
  evo_cuda_index ix;
  evo_cuda_index_bcast(&ix, &a, 2);
  const int64_t n = so[0] * so[1];
  cr_assert_not(evo_cuda_fits32(n));
  cr_assert(evo_cuda_fits32(INT32_MAX));
  cr_assert_not(evo_cuda_fits32((int64_t)INT32_MAX + 1));
  cr_assert_not(evo_cuda_fits32(-1));
  const int64_t probes[4] = {0, (int64_t)1 << 32, n / 2 + 12345, n - 1};
  for (int p = 0; p < 4; p++) {
    const int64_t i = probes[p];
    uint64_t o[EVO_CUDA_MAX_OPS];
    evo_cuda_offsets64(&ix, (uint64_t)i, o);
    cr_assert_eq((int64_t)o[0], i);
    cr_assert_eq((int64_t)o[1], i / so[1], "row of %lld", (long long)i);
    cr_assert_eq((int64_t)o[2], i % so[1], "column of %lld", (long long)i);
  }
  cr_assert_eq(evo_cuda_index_span(&ix), n);
}
