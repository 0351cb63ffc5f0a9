/* CONV2D, CONV2D_GRAD_INPUT and CONV2D_GRAD_KERNEL on CUDA (NHWC, f32): implicit GEMMs with shared-memory tiles,
   one kernel template for the three, differing only in how a tile of A and of B is gathered:
   - forward:     y[pixel, f]  = sum_{tap=(a,b,c)} x[pixel's window at tap] * w[tap, f]
                  M = OH*OW pixels, N = F, R = KH*KW*C taps;
   - grad_input:  dx[pixel, c] = sum_{(a,b,f)} gy[(h+pt-a)/sh, (w+pl-b)/sw, f] * w[a, b, c, f] over the taps whose
                  source row/column divides exactly by the stride (the transposed convolution the CPU computes
                  through a stride-dilated view), M = H*W, N = C, R = KH*KW*F;
   - grad_kernel: dw[tap, f]   = sum_{pixels} x[pixel's window at tap] * gy[pixel, f], M = KH*KW*C, N = F,
                  R = OH*OW pixels.
   A block computes a BM x BN tile of C for one output loop position j, reducing over R in chunks of BK (a table in
   shared memory decodes each chunk's R indices once for the whole block) and over every loop position s that
   contributes to j (the node's broadcast loop dims, as core/cpu/k_conv.c's sum_map) in a fixed order. grad_kernel
   with few outputs splits its reduction into `parts` pieces written to scratch and summed in part order by a second
   kernel: no atomics, so every result is deterministic. */
#include "cuda_util.cuh"
extern "C" {
#include "../cpu/gemm.h"
}

namespace {

enum { FWD = 0, GIN = 1, GKER = 2 };
constexpr int BK = 16;
/* grad_kernel: blocks wanted in flight (a few per SM) and the most scratch spent on partial sums. */
constexpr int64_t TARGET_BLOCKS = 1024, MAX_PARTS = 256;
constexpr int64_t MAX_PARTIAL_BYTES = (int64_t)256 << 20;

struct conv_geom { /* one image pair; every size and in-image offset fits in int (checked on the host) */
  int H, W, C, KH, KW, F, OH, OW, sh, sw, pt, pl;
  int M, N, R;
};

/* Loop positions: output j (the node's flat loop index) and its contributions s, each a mixed-radix number over
   some of the loop dims (innermost first); input o's image index is the sum over both of digit times st[o]. */
struct conv_digits {
  int n;
  int64_t shape[EVO_MAX_DIMS], st[2][EVO_MAX_DIMS];
};
struct conv_map {
  conv_digits k, s; /* k: the node's own loop dims; s: the dims it sums over */
};

struct conv_args {
  conv_geom g;
  conv_map map;
  const float *in0, *in1;
  float *out;                /* the node, or the partial sums when parts > 1 */
  int64_t img0, img1, MN;    /* floats per image of in0, in1 and per output */
  int64_t J, S, chunks;      /* outputs, contributions to each, BK-chunks of R */
  int64_t parts;
};

struct conv_plan {
  int mode, bm, bn;
  conv_args a;
  int64_t mtiles, ntiles;
};

/* Tile shapes: NT = BM threads, thread t gathers row t of the A tile and computes a TM x TN block of C, which
   needs BN / TN == TM. Narrow N (the CNNs' 8-16 filters) gets narrow tiles; small M (grad_kernel of a first
   layer: 25 taps) one-warp blocks. */
void conv_tiles(int M, int N, int *bm, int *bn) {
  *bm = M <= 64 ? 32 : 128;
  *bn = N <= 8 ? 8 : N <= 16 ? 16 : N <= 32 ? 32 : 64;
}

bool fits_int(int64_t v) { return v >= 0 && v <= INT32_MAX; }

/* Checks the shapes as core/cpu/k_conv.c does and fills the plan; returns an error message or NULL. */
const char *conv_plan_init(conv_plan *p, const evo_node_t *node, const evo_node_t *const *in) {
  memset(p, 0, sizeof *p);
  const int32_t *pi = node->p.i;
  const evo_node_t *a = in[0], *b = in[1];
  const int64_t sh = pi[0], sw = pi[1], pt = pi[2], pl = pi[3], pb = pi[4], pr = pi[5];
  if (sh < 1 || sw < 1 || pt < 0 || pl < 0 || pb < 0 || pr < 0) return "bad stride or padding";
  int64_t H, W, C, KH, KW, F, OH, OW;
  const int64_t *ns = node->shape + node->ndim;
  if (node->op == EVO_OP_CONV2D) { /* (x, w) -> y */
    if (a->ndim < 3 || b->ndim < 4 || node->ndim < 3) return "inconsistent shapes";
    const int64_t *xs = a->shape + a->ndim - 3, *ws = b->shape + b->ndim - 4;
    H = xs[0], W = xs[1], C = xs[2], KH = ws[0], KW = ws[1], F = ws[3], OH = ns[-3], OW = ns[-2];
    if (ws[2] != C || ns[-1] != F) return "inconsistent shapes";
    p->mode = FWD;
  } else if (node->op == EVO_OP_CONV2D_GRAD_INPUT) { /* (gy, w) -> dx */
    if (a->ndim < 3 || b->ndim < 4 || node->ndim < 3) return "inconsistent shapes";
    const int64_t *gs = a->shape + a->ndim - 3, *ws = b->shape + b->ndim - 4;
    H = ns[-3], W = ns[-2], C = ns[-1], KH = ws[0], KW = ws[1], F = ws[3], OH = gs[0], OW = gs[1];
    if (ws[2] != C || gs[2] != F) return "inconsistent shapes";
    p->mode = GIN;
  } else if (node->op == EVO_OP_CONV2D_GRAD_KERNEL) { /* (x, gy) -> dw */
    if (a->ndim < 3 || b->ndim < 3 || node->ndim < 4) return "inconsistent shapes";
    const int64_t *xs = a->shape + a->ndim - 3, *gs = b->shape + b->ndim - 3;
    H = xs[0], W = xs[1], C = xs[2], KH = ns[-4], KW = ns[-3], F = ns[-1], OH = gs[0], OW = gs[1];
    if (ns[-2] != C || gs[2] != F) return "inconsistent shapes";
    p->mode = GKER;
  } else {
    return "not a conv op";
  }
  if ((H + pt + pb - KH) / sh + 1 != OH || (W + pl + pr - KW) / sw + 1 != OW || OH < 1 || OW < 1)
    return "inconsistent shapes";
  const int64_t img_x = H * W * C, img_y = OH * OW * F, ker = KH * KW * C * F;
  if (!fits_int(img_x) || !fits_int(img_y) || !fits_int(ker) || !fits_int(sh) || !fits_int(sw))
    return "an image or kernel of 2^31 or more elements";

  conv_args &c = p->a;
  conv_geom &g = c.g;
  g.H = (int)H, g.W = (int)W, g.C = (int)C, g.KH = (int)KH, g.KW = (int)KW, g.F = (int)F;
  g.OH = (int)OH, g.OW = (int)OW, g.sh = (int)sh, g.sw = (int)sw, g.pt = (int)pt, g.pl = (int)pl;
  if (p->mode == FWD) g.M = (int)(OH * OW), g.N = (int)F, g.R = (int)(KH * KW * C);
  else if (p->mode == GIN) g.M = (int)(H * W), g.N = (int)C, g.R = (int)(KH * KW * F);
  else g.M = (int)(KH * KW * C), g.N = (int)F, g.R = (int)(OH * OW);
  c.img0 = p->mode == GIN ? img_y : img_x;
  c.img1 = p->mode == GKER ? img_y : ker;
  c.MN = (int64_t)g.M * g.N;

  /* Loop dims: operand 0 the node, 1 and 2 the inputs, right-aligned; each dim 1 or the broadcast size. */
  const int core_b = p->mode == GKER ? 3 : 4, core_n = p->mode == GKER ? 4 : 3;
  const int nl[3] = {node->ndim - core_n, a->ndim - 3, b->ndim - core_b};
  const int64_t *dims[3] = {node->shape, a->shape, b->shape};
  evo_cpu_loops lp;
  evo_cpu_loops_init(&lp, 3, nl, dims);
  for (int o = 0; o < 3; o++)
    for (int d = 0; d < nl[o]; d++)
      if (dims[o][d] != 1 && dims[o][d] != lp.shape[d + lp.nd - nl[o]]) return "loop dims do not broadcast";
  for (int d = lp.nd - 1; d >= 0; d--) {
    if (lp.shape[d] == 1) continue;
    conv_digits &m = lp.stride[0][d] != 0 ? c.map.k : c.map.s;
    m.shape[m.n] = lp.shape[d];
    for (int o = 0; o < 2; o++) m.st[o][m.n] = lp.stride[o + 1][d];
    m.n++;
  }
  c.J = evo_shape_numel(nl[0], node->shape);
  c.S = c.J ? lp.numel / c.J : 0;
  c.chunks = (g.R + BK - 1) / BK;

  conv_tiles(g.M, g.N, &p->bm, &p->bn);
  p->mtiles = (g.M + p->bm - 1) / p->bm, p->ntiles = (g.N + p->bn - 1) / p->bn;
  c.parts = 1;
  const int64_t blocks = c.J * p->mtiles * p->ntiles;
  if (p->mode == GKER && blocks > 0 && blocks < TARGET_BLOCKS) {
    int64_t parts = (TARGET_BLOCKS + blocks - 1) / blocks;
    const int64_t items = c.S * c.chunks, by_bytes = MAX_PARTIAL_BYTES / (int64_t)sizeof(float) / (c.J * c.MN);
    parts = parts < items ? parts : items;
    parts = parts < MAX_PARTS ? parts : MAX_PARTS;
    parts = parts < by_bytes ? parts : by_bytes;
    c.parts = parts > 1 ? parts : 1;
  }
  if (c.J * c.parts > INT32_MAX || p->mtiles > 65535 || p->ntiles > 65535) return "too many tiles for one grid";
  return NULL;
}

size_t partial_bytes(const conv_plan *p) {
  return p->a.parts > 1 ? sizeof(float) * (size_t)(p->a.parts * p->a.J * p->a.MN) : 0;
}

/* Input o's (0 or 1) share of the image index at position i of one of the maps: j of k, or s of s. */
__device__ __forceinline__ int64_t image_part(const conv_digits &m, int o, int64_t i) {
  int64_t off = 0;
  for (int d = 0; d < m.n; d++) {
    off += (i % m.shape[d]) * m.st[o][d];
    i /= m.shape[d];
  }
  return off;
}

template <int MODE, int BM, int BN, int TM, int TN>
__global__ void __launch_bounds__(BM) k_conv(const conv_args p) {
  static_assert(BN / TN == TM && BM % TM == 0, "each of the BM threads computes one TM x TN block");
  static_assert(BM >= BK, "the first BK threads decode a chunk");
  __shared__ __align__(16) float As[BK][BM + 4]; /* A tile, transposed: As[r][m] */
  __shared__ __align__(16) float Bs[BK][BN];
  __shared__ int tab[4][BK]; /* per chunk: the decoded R indices (see below) */
  const conv_geom &g = p.g;
  const int tid = threadIdx.x;
  const int64_t j = blockIdx.x / p.parts, part = blockIdx.x % p.parts;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.z * BN;

  /* The A row this thread gathers: forward a pixel (window corner ra, rb; its offset rc), grad_input a pixel
     (h + pt, w + pl), grad_kernel a tap (a, b; offset rc of (a, b, c) from a window corner). */
  const int m = m0 + tid;
  const bool mvalid = m < g.M;
  int ra = 0, rb = 0, rc = 0;
  if (mvalid) {
    if (MODE == FWD) {
      ra = m / g.OW * g.sh - g.pt, rb = m % g.OW * g.sw - g.pl, rc = (ra * g.W + rb) * g.C;
    } else if (MODE == GIN) {
      ra = m / g.W + g.pt, rb = m % g.W + g.pl;
    } else {
      const int c = m % g.C, ab = m / g.C;
      ra = ab / g.KW, rb = ab % g.KW, rc = (ra * g.W + rb) * g.C + c;
    }
  }
  const int64_t j0 = image_part(p.map.k, 0, j), j1 = image_part(p.map.k, 1, j);

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int t = 0; t < TN; t++) acc[i][t] = 0.0f;
  const int tm = tid / (BN / TN), tn = tid % (BN / TN);

  const int64_t items = p.S * p.chunks, it0 = items * part / p.parts, it1 = items * (part + 1) / p.parts;
  int64_t cur_s = -1;
  const float *src0 = p.in0, *src1 = p.in1;
  for (int64_t it = it0; it < it1; it++) {
    const int64_t s = it / p.chunks;
    const int r0 = (int)(it % p.chunks) * BK;
    if (s != cur_s) {
      cur_s = s;
      src0 = p.in0 + (j0 + image_part(p.map.s, 0, s)) * p.img0;
      src1 = p.in1 + (j1 + image_part(p.map.s, 1, s)) * p.img1;
    }
    /* tab[0..2]: forward a tap (a, b, offset from the window corner), grad_input a tap (a, b, f), grad_kernel a
       pixel (window corner row, column, offset); tab[3]: offset of B's row r. */
    if (tid < BK) {
      const int r = r0 + tid;
      int t0 = 0, t1 = 0, t2 = 0, t3 = 0;
      if (r < g.R) {
        if (MODE == FWD) {
          const int c = r % g.C, ab = r / g.C;
          t0 = ab / g.KW, t1 = ab % g.KW, t2 = (t0 * g.W + t1) * g.C + c, t3 = r * g.F;
        } else if (MODE == GIN) {
          const int f = r % g.F, ab = r / g.F;
          t0 = ab / g.KW, t1 = ab % g.KW, t2 = f, t3 = ab * g.C * g.F + f;
        } else {
          t0 = r / g.OW * g.sh - g.pt, t1 = r % g.OW * g.sw - g.pl, t2 = (t0 * g.W + t1) * g.C, t3 = r * g.F;
        }
      }
      tab[0][tid] = t0, tab[1][tid] = t1, tab[2][tid] = t2, tab[3][tid] = t3;
    }
    __syncthreads();
#pragma unroll 4
    for (int kk = 0; kk < BK; kk++) {
      float v = 0.0f;
      if (mvalid && r0 + kk < g.R) {
        if (MODE == GIN) {
          const int ty = ra - tab[0][kk], tx = rb - tab[1][kk];
          if (ty >= 0 && tx >= 0) {
            const int qy = ty / g.sh, qx = tx / g.sw;
            if (qy * g.sh == ty && qx * g.sw == tx && qy < g.OH && qx < g.OW)
              v = src0[(qy * g.OW + qx) * g.F + tab[2][kk]];
          }
        } else { /* x at row ra + t0 (or t0 + ra), column rb + t1, offset rc + t2 */
          const int iy = ra + tab[0][kk], ix = rb + tab[1][kk];
          if ((unsigned)iy < (unsigned)g.H && (unsigned)ix < (unsigned)g.W) v = src0[rc + tab[2][kk]];
        }
      }
      As[kk][tid] = v;
    }
    for (int e = tid; e < BK * BN; e += BM) {
      const int kk = e / BN, nn = e % BN, n = n0 + nn;
      float v = 0.0f;
      if (n < g.N && r0 + kk < g.R) v = src1[tab[3][kk] + (MODE == GIN ? n * g.F : n)];
      Bs[kk][nn] = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk++) {
      float av[TM], bv[TN];
#pragma unroll
      for (int i = 0; i < TM; i++) av[i] = As[kk][tm * TM + i];
#pragma unroll
      for (int t = 0; t < TN; t++) bv[t] = Bs[kk][tn * TN + t];
#pragma unroll
      for (int i = 0; i < TM; i++)
#pragma unroll
        for (int t = 0; t < TN; t++) acc[i][t] = fmaf(av[i], bv[t], acc[i][t]);
    }
    __syncthreads();
  }

  float *out = p.out + (part * p.J + j) * p.MN;
#pragma unroll
  for (int i = 0; i < TM; i++) {
    const int mm = m0 + tm * TM + i;
    if (mm >= g.M) continue;
#pragma unroll
    for (int t = 0; t < TN; t++) {
      const int nn = n0 + tn * TN + t;
      if (nn < g.N) out[(int64_t)mm * g.N + nn] = acc[i][t];
    }
  }
}

/* dw[e] = sum over parts q, in order, of partial[q][e]. */
__global__ void k_sum_parts(const float *__restrict__ partial, float *__restrict__ dw, int64_t n, int64_t parts) {
  EVO_CUDA_FOR(int64_t, e, n) {
    float s = 0.0f;
    for (int64_t q = 0; q < parts; q++) s += partial[q * n + e];
    dw[e] = s;
  }
}

template <int MODE, int BM, int BN, int TM, int TN>
evo_status launch(evo_cuda_ctx *c, const conv_plan *p) {
  const dim3 grid((unsigned)(p->a.J * p->a.parts), (unsigned)p->mtiles, (unsigned)p->ntiles);
  k_conv<MODE, BM, BN, TM, TN><<<grid, BM, 0, c->stream>>>(p->a);
  return EVO_CUDA_LAUNCHED("conv2d: implicit GEMM kernel");
}

template <int MODE, int BM>
evo_status launch_bn(evo_cuda_ctx *c, const conv_plan *p) {
  switch (p->bn) {
  case 8: return launch<MODE, BM, 8, 4, 2>(c, p);
  case 16: return launch<MODE, BM, 16, 4, 4>(c, p);
  case 32: return launch<MODE, BM, 32, 8, 4>(c, p);
  default: return launch<MODE, BM, 64, 8, 8>(c, p);
  }
}

template <int MODE>
evo_status launch_mode(evo_cuda_ctx *c, const conv_plan *p) {
  return p->bm == 32 ? launch_bn<MODE, 32>(c, p) : launch_bn<MODE, 128>(c, p);
}

} // namespace

extern "C" size_t evo_cuda_conv2d_scratch(const evo_node_t *node, const evo_node_t *const *in) {
  conv_plan p;
  if (conv_plan_init(&p, node, in)) return 0;
  return partial_bytes(&p);
}

extern "C" evo_status evo_cuda_conv2d(evo_cuda_ctx *c, const evo_kernel_args *args) {
  const evo_node_t *node = args->node;
  if (node->dtype != EVO_F32 || args->in[0]->dtype != EVO_F32 || args->in[1]->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cuda %s: f32 only", evo_op_name(node->op));
  conv_plan p;
  const char *why = conv_plan_init(&p, node, args->in);
  if (why) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cuda %s: %s", evo_op_name(node->op), why);
  if (p.a.J == 0 || p.a.MN == 0) return EVO_STATUS_OK;
  const size_t need = partial_bytes(&p);
  if (need && (!args->scratch || args->scratch_bytes < need))
    return evo_error(EVO_STATUS_INTERNAL, "cuda %s: scratch of %zu bytes, needs %zu", evo_op_name(node->op),
                     args->scratch_bytes, need);
  p.a.in0 = (const float *)args->src[0], p.a.in1 = (const float *)args->src[1];
  p.a.out = need ? (float *)args->scratch : (float *)args->dst;
  evo_status st = p.mode == FWD ? launch_mode<FWD>(c, &p) : p.mode == GIN ? launch_mode<GIN>(c, &p)
                                                                           : launch_mode<GKER>(c, &p);
  if (st != EVO_STATUS_OK || !need) return st;
  const int64_t n = p.a.J * p.a.MN;
  k_sum_parts<<<evo_cuda_grid(c, n, EVO_CUDA_BLOCK), EVO_CUDA_BLOCK, 0, c->stream>>>((const float *)args->scratch,
                                                                                     (float *)args->dst, n, p.a.parts);
  return EVO_CUDA_LAUNCHED("conv2d: partial sums");
}
