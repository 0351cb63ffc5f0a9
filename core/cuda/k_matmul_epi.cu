/* FUSED_MATMUL_BIAS_ACT on CUDA (ops.h): y[l] = act(op(a[l]) @ op(b[l]) + bias[l]) for every loop index l, in one
   kernel. It is a population MLP's layer — per-member weights, few rows (observations) per member — where cuBLAS's
   batched GEMM plus separate bias and activation kernels move every activation through memory three times; here
   each member's weights are read once and the activations once. One block per (member, 64 output columns): the
   K dimension in tiles of 32 through shared memory, each thread accumulating a run of M/4 rows of one column in
   registers (float, the order fixed by the shapes), then bias and activation in the epilogue. With few columns
   (N <= 16) one warp takes a whole member instead (k_mm_bias_act_small).
   Taken where M <= 64, every operand's loop dims are absent (shared) or equal to the output's, the bias is
   constant along the rows, and the activation is tanh, relu or sigmoid; otherwise the jit keeps the unfused
   nodes. */
#include "cuda_util.cuh"

namespace {

constexpr int BN = 64, BK = 32, THREADS = 256, MAX_M = 64, RG = THREADS / BN;

struct epi_args {
  const float *a, *b, *bias;
  float *y;
  int M, N, K, ntiles;
  int64_t L, sa, sb, sbl; /* per loop index: elements between matrices (0 = shared) */
  int sbn;                /* bias step along the columns: 1, or 0 for a bias broadcast along them */
};

/* a [M,K] ([K,M] when TA), b [K,N] ([N,K] when TB). Thread (col, rg) computes rows [rg*RPT, rg*RPT + RPT) of
   column col, RPT = 4 * RPT4 >= M / 4, reading its RPT A values per k as float4s (one shared-memory load each).
   Every thread of a block takes the same (member, tile) steps, so the barriers are uniform. */
template <evo_op ACT, bool TA, bool TB, int RPT4>
__global__ void __launch_bounds__(THREADS) k_mm_bias_act(const epi_args p) {
  constexpr int RPT = 4 * RPT4, MP = RG * RPT; /* rows per thread, rows held in shared memory (M padded) */
  __shared__ __align__(16) float As[BK][MP];  /* As[k][m], rows past M zero */
  __shared__ float Bs[BK][BN + 1];            /* +1: the transposed (TB) stores spread over the banks */
  const int tid = threadIdx.x, col = tid % BN, r0 = (tid / BN) * RPT;
  const evo_cuda_unary_fn<ACT> act;
  for (int64_t t = blockIdx.x; t < p.L * p.ntiles; t += gridDim.x) {
    const int64_t l = t / p.ntiles;
    const int n0 = (int)(t % p.ntiles) * BN;
    const float *a = p.a + l * p.sa, *b = p.b + l * p.sb;
    float acc[RPT];
#pragma unroll
    for (int i = 0; i < RPT; i++) acc[i] = 0.0f;
    for (int k0 = 0; k0 < p.K; k0 += BK) {
      const int kk = p.K - k0 < BK ? p.K - k0 : BK;
      __syncthreads(); /* the previous tile is no longer read */
      /* m fastest: conflict-free stores; the strided reads of an untransposed A stay in L1 across the tile */
      for (int e = tid; e < MP * BK; e += THREADS) {
        const int m = e % MP, k = e / MP;
        As[k][m] = k < kk && m < p.M ? (TA ? a[(int64_t)(k0 + k) * p.M + m] : a[(int64_t)m * p.K + k0 + k]) : 0.0f;
      }
      for (int e = tid; e < BK * BN; e += THREADS) {
        const int n = TB ? e / BK : e % BN, k = TB ? e % BK : e / BN;
        const int64_t at = TB ? (int64_t)(n0 + n) * p.K + k0 + k : (int64_t)(k0 + k) * p.N + n0 + n;
        Bs[k][n] = k < kk && n0 + n < p.N ? b[at] : 0.0f;
      }
      __syncthreads();
      for (int k = 0; k < kk; k++) {
        const float bv = Bs[k][col];
        const float4 *ar = reinterpret_cast<const float4 *>(&As[k][r0]);
#pragma unroll
        for (int q = 0; q < RPT4; q++) {
          const float4 av = ar[q];
          acc[4 * q] += av.x * bv, acc[4 * q + 1] += av.y * bv;
          acc[4 * q + 2] += av.z * bv, acc[4 * q + 3] += av.w * bv;
        }
      }
    }
    const int n = n0 + col;
    if (n < p.N) {
      const float bias = p.bias[l * p.sbl + (int64_t)n * p.sbn];
      float *y = p.y + l * p.M * p.N + n;
#pragma unroll
      for (int i = 0; i < RPT; i++)
        if (r0 + i < p.M) y[(int64_t)(r0 + i) * p.N] = act(acc[i] + bias);
    }
  }
}

/* Few columns (N <= SMALL_N, e.g. a policy's output layer): a 64-column tile would leave most threads idle, so one
   warp takes one member, each lane whole dot products (outputs lane, lane + 32, ...) read straight from global
   memory; no shared memory, no barriers. */
constexpr int SMALL_N = 16;

template <evo_op ACT>
__global__ void __launch_bounds__(THREADS) k_mm_bias_act_small(const epi_args p, int ta, int tb) {
  const int lane = threadIdx.x % 32, warps = THREADS / 32;
  const evo_cuda_unary_fn<ACT> act;
  const int64_t sak = ta ? p.M : 1, sam = ta ? 1 : p.K, sbk = tb ? 1 : p.N, sbn = tb ? p.K : 1;
  for (int64_t l = (int64_t)blockIdx.x * warps + threadIdx.x / 32; l < p.L; l += (int64_t)gridDim.x * warps) {
    const float *a = p.a + l * p.sa, *b = p.b + l * p.sb;
    for (int o = lane; o < p.M * p.N; o += 32) {
      const int m = o / p.N, n = o % p.N;
      const float *ar = a + m * sam, *bc = b + n * sbn;
      float acc = 0.0f;
      for (int k = 0; k < p.K; k++) acc += ar[k * sak] * bc[k * sbk];
      p.y[(l * p.M + m) * p.N + n] = act(acc + p.bias[l * p.sbl + (int64_t)n * p.sbn]);
    }
  }
}

/* Loop dims of operand `x` (its dims before the last `core`) against the output's `ly` loop dims: 1 when there
   are none or all are 1 (shared: step 0), 2 when they equal the output's (one matrix per loop index), else 0. */
int loop_kind(const evo_node_t *x, int core, const evo_node_t *y, int ly) {
  const int lx = x->ndim - core;
  int64_t n = 1;
  for (int d = 0; d < lx; d++) n *= x->shape[d];
  if (n == 1) return 1;
  if (lx != ly) return 0;
  for (int d = 0; d < ly; d++)
    if (x->shape[d] != y->shape[d]) return 0;
  return 2;
}

int plan(epi_args *p, const evo_node_t *y, const evo_node_t *an, const evo_node_t *bn, const evo_node_t *cn) {
  memset(p, 0, sizeof *p);
  const evo_op act = (evo_op)y->p.i[2];
  if (act != EVO_OP_TANH && act != EVO_OP_RELU && act != EVO_OP_SIGMOID) return 0;
  if (y->dtype != EVO_F32 || an->dtype != EVO_F32 || bn->dtype != EVO_F32 || cn->dtype != EVO_F32) return 0;
  if (an->ndim < 2 || bn->ndim < 2 || y->ndim < 2 || cn->ndim < 1) return 0;
  const int ta = y->p.i[0] != 0, tb = y->p.i[1] != 0, ly = y->ndim - 2;
  const int64_t M = an->shape[an->ndim - 2 + ta], K = an->shape[an->ndim - 1 - ta], N = bn->shape[bn->ndim - 1 - tb];
  if (y->shape[ly] != M || y->shape[ly + 1] != N || bn->shape[bn->ndim - 2 + tb] != K) return 0;
  if (M < 1 || M > MAX_M || N < 1 || K < 1 || N > INT32_MAX || K > INT32_MAX) return 0;
  const int ka = loop_kind(an, 2, y, ly), kb = loop_kind(bn, 2, y, ly);
  /* the bias: [..., 1 or absent, N or 1] */
  const int64_t cN = cn->shape[cn->ndim - 1];
  if (cN != N && cN != 1) return 0;
  if (cn->ndim >= 2 && cn->shape[cn->ndim - 2] != 1) return 0;
  const int kc = cn->ndim <= 2 ? 1 : loop_kind(cn, 2, y, ly);
  if (!ka || !kb || !kc) return 0;
  int64_t L = 1;
  for (int d = 0; d < ly; d++) L *= y->shape[d];
  const int64_t ntiles = (N + BN - 1) / BN;
  if (L < 1 || L > INT64_MAX / ntiles) return 0;
  p->M = (int)M, p->N = (int)N, p->K = (int)K, p->ntiles = (int)ntiles, p->L = L;
  p->sa = ka == 2 ? M * K : 0, p->sb = kb == 2 ? K * N : 0, p->sbl = kc == 2 ? cN : 0;
  p->sbn = cN == N && N > 1 ? 1 : 0;
  return 1;
}

template <evo_op ACT, bool TA, bool TB, int RPT4>
void launch_rows(evo_cuda_ctx *c, const epi_args &p, unsigned grid) {
  k_mm_bias_act<ACT, TA, TB, RPT4><<<grid, THREADS, 0, c->stream>>>(p);
}

/* Rows per thread rounded up to a multiple of 4: M <= 16, 32 or 64. */
template <evo_op ACT, bool TA, bool TB>
void launch_t(evo_cuda_ctx *c, const epi_args &p, unsigned grid) {
  if (p.M <= 16) launch_rows<ACT, TA, TB, 1>(c, p, grid);
  else if (p.M <= 32) launch_rows<ACT, TA, TB, 2>(c, p, grid);
  else launch_rows<ACT, TA, TB, 4>(c, p, grid);
}

template <evo_op ACT>
void launch(evo_cuda_ctx *c, const epi_args &p, int ta, int tb) {
  const int64_t cap = (int64_t)(c->sm_count > 0 ? c->sm_count : 108) * 16;
  if (p.N <= SMALL_N) {
    const int64_t blocks = (p.L + THREADS / 32 - 1) / (THREADS / 32);
    k_mm_bias_act_small<ACT><<<(unsigned)(blocks < cap ? blocks : cap), THREADS, 0, c->stream>>>(p, ta, tb);
    return;
  }
  const int64_t items = p.L * p.ntiles;
  const unsigned grid = (unsigned)(items < cap ? items : cap);
  if (!ta && !tb) launch_t<ACT, false, false>(c, p, grid);
  else if (!ta) launch_t<ACT, false, true>(c, p, grid);
  else if (!tb) launch_t<ACT, true, false>(c, p, grid);
  else launch_t<ACT, true, true>(c, p, grid);
}

} // namespace

extern "C" int evo_cuda_mm_bias_act_supported(const evo_node_t *node, const evo_node_t *const *in) {
  epi_args p;
  return node->n_in == 3 && in[0] && in[1] && in[2] && plan(&p, node, in[0], in[1], in[2]);
}

extern "C" evo_status evo_cuda_mm_bias_act(evo_cuda_ctx *c, const evo_kernel_args *a) {
  epi_args p;
  if (!plan(&p, a->node, a->in[0], a->in[1], a->in[2]))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cuda fused matmul+bias+activation: shapes do not match the node");
  p.a = (const float *)a->src[0], p.b = (const float *)a->src[1], p.bias = (const float *)a->src[2];
  p.y = (float *)a->dst;
  const int ta = a->node->p.i[0] != 0, tb = a->node->p.i[1] != 0;
  switch ((evo_op)a->node->p.i[2]) {
  case EVO_OP_TANH: launch<EVO_OP_TANH>(c, p, ta, tb); break;
  case EVO_OP_RELU: launch<EVO_OP_RELU>(c, p, ta, tb); break;
  default: launch<EVO_OP_SIGMOID>(c, p, ta, tb); break;
  }
  return EVO_CUDA_LAUNCHED("fused matmul+bias+activation kernel");
}
