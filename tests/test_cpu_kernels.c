/* CPU kernels called directly on hand-built nodes (no builders, no jit): each kernel family against a plain
   reference loop, on shapes that take the fast paths (full shape, bias/trailing broadcast, scalar, column-blocked
   reductions, tiled transpose) and the general strided paths, small and large (OpenMP) sizes. The table-driven
   op harness (test_ops.c) covers the ops end to end; this suite pins the kernels' own paths. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cpu/cpu_kernels.h"
#include "elementwise_math.h"
#include "evoc/rng.h"

typedef evo_status (*kernel_fn)(const evo_kernel_args *);

static evo_node_t mk(evo_dtype t, int ndim, const int64_t *shape) {
  evo_node_t n;
  memset(&n, 0, sizeof n);
  n.op = EVO_OP_INPUT;
  n.dtype = t;
  n.ndim = ndim;
  for (int d = 0; d < ndim; d++) n.shape[d] = shape[d];
  return n;
}

static int64_t numel(const evo_node_t *n) {
  int64_t k = 1;
  for (int d = 0; d < n->ndim; d++) k *= n->shape[d];
  return k;
}

static void run(kernel_fn fn, const evo_node_t *node, int n_in, const evo_node_t *ins, const void *const *src,
                void *dst) {
  evo_kernel_args a;
  memset(&a, 0, sizeof a);
  a.node = node;
  for (int i = 0; i < n_in; i++) {
    a.in[i] = &ins[i];
    a.src[i] = src[i];
  }
  a.dst = dst;
  evo_status s = fn(&a);
  cr_assert_eq(s, EVO_STATUS_OK, "kernel for %s failed: %s", evo_op_name(node->op), evo_last_error());
}

/* Offset into a (right-aligned, size-1 broadcasting) input of the element at flat index `flat` of `out`. */
static int64_t ref_off(const evo_node_t *out, const evo_node_t *in, int64_t flat) {
  int64_t off = 0, stride = 1;
  for (int d = out->ndim - 1; d >= 0; d--) {
    int64_t c = flat % out->shape[d];
    flat /= out->shape[d];
    int di = d - (out->ndim - in->ndim);
    if (di < 0) continue;
    if (in->shape[di] != 1) off += c * stride;
    stride *= in->shape[di];
  }
  return off;
}

static uint64_t rs = 88172645463325252ull;
static float frand(float lo, float hi) { /* xorshift64, deterministic */
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return lo + (hi - lo) * (float)((rs >> 40) * (1.0 / 16777216.0));
}
static float *frandv(int64_t n, float lo, float hi) {
  float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) x[i] = frand(lo, hi);
  return x;
}

static void assert_close(double got, double ref, double rtol, double atol, const char *what, int64_t i) {
  if (isnan(ref)) {
    cr_assert(isnan(got), "%s[%lld]: got %g, want NaN", what, (long long)i, got);
    return;
  }
  if (isinf(ref)) {
    cr_assert_eq(got, ref, "%s[%lld]: got %g, want %g", what, (long long)i, got, ref);
    return;
  }
  cr_assert(fabs(got - ref) <= atol + rtol * fabs(ref), "%s[%lld]: got %.9g, want %.9g", what, (long long)i, got,
            ref);
}

/* ---- binary ---- */

static float ref_binary(evo_op op, float x, float y) {
  switch (op) {
  case EVO_OP_ADD: return x + y;
  case EVO_OP_SUB: return x - y;
  case EVO_OP_MUL: return x * y;
  case EVO_OP_DIV: return x / y;
  case EVO_OP_POW: return powf(x, y);
  case EVO_OP_MAX: return x >= y ? x : y;
  default: return x <= y ? x : y;
  }
}

typedef struct {
  int na;
  int64_t a[4];
  int nb;
  int64_t b[4];
} bcase;

static const bcase bcases[] = {
    {3, {3, 5, 7}, 3, {3, 5, 7}},          /* full, small */
    {2, {64, 1024}, 2, {64, 1024}},        /* full, threaded */
    {3, {8, 16, 64}, 3, {8, 1, 64}},       /* per-member bias */
    {3, {8, 16, 64}, 1, {64}},             /* shared bias */
    {3, {8, 16, 64}, 0, {0}},              /* scalar */
    {0, {0}, 3, {8, 16, 64}},              /* scalar on the left */
    {3, {8, 16, 1}, 3, {8, 16, 64}},       /* broadcast innermost */
    {3, {3, 1, 5}, 3, {1, 4, 1}},          /* both broadcast: general rows */
    {4, {2, 3, 4, 5}, 3, {3, 1, 5}},
    {3, {40, 30, 50}, 3, {40, 1, 50}},     /* threaded, split mid-row */
    {2, {300, 3}, 1, {3}},                 /* short rows */
    {1, {1}, 1, {7}},
    {2, {1, 1}, 0, {0}},
};

/* The inputs of case c and the broadcast output shape os; returns its ndim. */
static int bcase_nodes(const bcase *c, evo_node_t *in, int64_t *os) {
  in[0] = mk(EVO_F32, c->na, c->a), in[1] = mk(EVO_F32, c->nb, c->b);
  const int nd = c->na > c->nb ? c->na : c->nb;
  for (int d = 0; d < nd; d++) {
    int da = d - (nd - c->na), db = d - (nd - c->nb);
    int64_t sa = da >= 0 ? c->a[da] : 1, sb = db >= 0 ? c->b[db] : 1;
    os[d] = sa > sb ? sa : sb;
  }
  return nd;
}

Test(cpu_kernels, binary_broadcast_paths) {
  for (size_t c = 0; c < sizeof bcases / sizeof bcases[0]; c++) {
    evo_node_t in[2];
    int64_t os[4];
    const int nd = bcase_nodes(&bcases[c], in, os);
    evo_node_t node = mk(EVO_F32, nd, os);
    int64_t n = numel(&node);
    float *x = frandv(numel(&in[0]), 0.5f, 2.0f), *y = frandv(numel(&in[1]), 0.5f, 2.0f);
    float *out = malloc(sizeof(float) * (size_t)n);
    for (evo_op op = EVO_OP_ADD; op <= EVO_OP_MIN; op++) {
      node.op = op;
      run(evo_cpu_binary, &node, 2, in, (const void *[]){x, y}, out);
      for (int64_t i = 0; i < n; i++) {
        float want = ref_binary(op, x[ref_off(&node, &in[0], i)], y[ref_off(&node, &in[1], i)]);
        cr_assert_eq(out[i], want, "case %zu op %s [%lld]: %g vs %g", c, evo_op_name(op), (long long)i, out[i], want);
      }
    }
    free(x), free(y), free(out);
  }
}

/* The fused binary+unary kernel (a jit plan op) equals the binary kernel then the unary kernel bit for bit, on
   every broadcast path. */
Test(cpu_kernels, fused_binary_unary_matches_two_kernels) {
  for (size_t c = 0; c < sizeof bcases / sizeof bcases[0]; c++) {
    evo_node_t in[2];
    int64_t os[4];
    const int nd = bcase_nodes(&bcases[c], in, os);
    evo_node_t node = mk(EVO_F32, nd, os), un = mk(EVO_F32, nd, os), fused = mk(EVO_F32, nd, os);
    const int64_t n = numel(&node);
    float *x = frandv(numel(&in[0]), -2.0f, 2.0f), *y = frandv(numel(&in[1]), 0.5f, 2.0f);
    float *t = malloc(sizeof(float) * (size_t)n), *want = malloc(sizeof(float) * (size_t)n);
    float *got = malloc(sizeof(float) * (size_t)n);
    const evo_op bins[] = {EVO_OP_ADD, EVO_OP_SUB, EVO_OP_MUL, EVO_OP_MAX};
    for (size_t b = 0; b < sizeof bins / sizeof bins[0]; b++)
      for (evo_op u = EVO_OP_NEG; u <= EVO_OP_SIGN; u++) {
        node.op = bins[b], un.op = u, fused.op = EVO_OP_FUSED_BINARY_UNARY;
        fused.p.i[0] = bins[b], fused.p.i[1] = u;
        run(evo_cpu_binary, &node, 2, in, (const void *[]){x, y}, t);
        run(evo_cpu_unary, &un, 1, &node, (const void *[]){t}, want);
        run(evo_cpu_fused_binary_unary, &fused, 2, in, (const void *[]){x, y}, got);
        for (int64_t i = 0; i < n; i++)
          cr_assert(got[i] == want[i] || (isnan(got[i]) && isnan(want[i])), "case %zu %s+%s [%lld]: %g vs %g", c,
                    evo_op_name(bins[b]), evo_op_name(u), (long long)i, got[i], want[i]);
      }
    free(x), free(y), free(t), free(want), free(got);
  }
  /* a pair the kernel does not run is refused, not guessed */
  int64_t one = 1;
  evo_node_t in1[2] = {mk(EVO_F32, 1, &one), mk(EVO_F32, 1, &one)}, bad = mk(EVO_F32, 1, &one);
  bad.op = EVO_OP_FUSED_BINARY_UNARY;
  bad.p.i[0] = EVO_OP_LT, bad.p.i[1] = EVO_OP_TANH;
  float v = 1, o;
  evo_kernel_args a = {.node = &bad, .in = {&in1[0], &in1[1]}, .src = {&v, &v}, .dst = &o};
  cr_assert_neq(evo_cpu_fused_binary_unary(&a), EVO_STATUS_OK);
  cr_assert(!evo_cpu_fusable_pair(EVO_OP_ADD, EVO_OP_STOP_GRADIENT) && evo_cpu_fusable_pair(EVO_OP_ADD, EVO_OP_TANH));
}

Test(cpu_kernels, binary_nan_max_min) {
  int64_t s[1] = {4};
  evo_node_t in[2] = {mk(EVO_F32, 1, s), mk(EVO_F32, 1, s)}, node = mk(EVO_F32, 1, s);
  float x[4] = {NAN, 1, 2, 3}, y[4] = {1, NAN, 2, -3}, out[4];
  node.op = EVO_OP_MAX;
  run(evo_cpu_binary, &node, 2, in, (const void *[]){x, y}, out);
  cr_assert(isnan(out[0]) && isnan(out[1]) && out[2] == 2 && out[3] == 3);
  node.op = EVO_OP_MIN;
  run(evo_cpu_binary, &node, 2, in, (const void *[]){x, y}, out);
  cr_assert(isnan(out[0]) && isnan(out[1]) && out[2] == 2 && out[3] == -3);
}

/* ---- unary, clip ---- */

static double ref_unary(evo_op op, double x) {
  switch (op) {
  case EVO_OP_NEG: return -x;
  case EVO_OP_ABS: return fabs(x);
  case EVO_OP_EXP: return exp(x);
  case EVO_OP_LOG: return log(x);
  case EVO_OP_SQRT: return sqrt(x);
  case EVO_OP_TANH: return tanh(x);
  case EVO_OP_SIGMOID: return 1.0 / (1.0 + exp(-x));
  case EVO_OP_RELU: return x < 0 ? 0 : x; /* NaN stays NaN, as jax.nn.relu */
  case EVO_OP_SIN: return sin(x);
  case EVO_OP_COS: return cos(x);
  case EVO_OP_SQUARE: return (double)((float)x * (float)x);
  case EVO_OP_SIGN: return x > 0 ? 1 : (x < 0 ? -1 : x); /* 0, -0, NaN kept */
  default: return x;
  }
}

Test(cpu_kernels, unary_against_double) {
  const int64_t n = 100003; /* threaded, odd tail */
  evo_node_t in = mk(EVO_F32, 1, &n), node = mk(EVO_F32, 1, &n);
  float *x = frandv(n, -30.0f, 30.0f), *out = malloc(sizeof(float) * (size_t)n);
  const float edge[] = {0.0f, -0.0f, 1e-6f, -1e-6f, 0.3f, -0.624f, 0.626f, 88.0f, -87.0f, -100.0f, 100.0f, 1000.0f,
                        -1000.0f, INFINITY, -INFINITY, NAN, 1e-30f, 3e38f};
  for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) x[i] = edge[i];
  for (evo_op op = EVO_OP_NEG; op <= EVO_OP_STOP_GRADIENT; op++) {
    node.op = op;
    run(evo_cpu_unary, &node, 1, &in, (const void *[]){x}, out);
    for (int64_t i = 0; i < n; i++) {
      if ((op == EVO_OP_SIN || op == EVO_OP_COS) && fabsf(x[i]) > 1e4f) continue;
      double want = ref_unary(op, x[i]);
      if (op == EVO_OP_STOP_GRADIENT || op == EVO_OP_NEG || op == EVO_OP_ABS || op == EVO_OP_RELU ||
          op == EVO_OP_SIGN || op == EVO_OP_SQUARE) {
        if (isnan(want)) cr_assert(isnan(out[i]));
        else cr_assert_eq(out[i], (float)want, "%s(%g) = %g, want %g", evo_op_name(op), x[i], out[i], want);
      } else {
        if (isnan(x[i])) {
          cr_assert(isnan(out[i]), "%s(NaN) = %g", evo_op_name(op), out[i]);
          continue;
        }
        if (fabs(want) > 3.4028234663852886e38) want = want > 0 ? INFINITY : -INFINITY;
        assert_close(out[i], want, 4e-7, 1e-44, evo_op_name(op), i);
      }
    }
  }
  /* sigmoid saturates without NaN; tails keep relative precision */
  node.op = EVO_OP_SIGMOID;
  float xs[3] = {-1000.0f, -80.0f, 1000.0f}, ys[3];
  int64_t three = 3;
  evo_node_t in3 = mk(EVO_F32, 1, &three), node3 = mk(EVO_F32, 1, &three);
  node3.op = EVO_OP_SIGMOID;
  run(evo_cpu_unary, &node3, 1, &in3, (const void *[]){xs}, ys);
  cr_assert(ys[0] == 0.0f && ys[2] == 1.0f);
  assert_close(ys[1], exp(-80.0), 1e-6, 0, "sigmoid(-80)", 1);
  free(x), free(out);
}

/* tanh is a clamped rational form (elementwise_math.h): over a sweep of ~1M positive floats from subnormals to
   inf it stays within 6 ulp of tanh in double, never leaves [-1, 1], is exactly odd, keeps -0 and NaN. */
Test(cpu_kernels, tanh_rational_accuracy) {
  double worst = 0;
  float worst_x = 0;
  for (uint32_t bits = 1; bits < 0x7f800000u; bits += 2039) {
    float x;
    memcpy(&x, &bits, sizeof x);
    const float r = evo_tanhf(x);
    const double ref = tanh((double)x);
    const float rf = (float)ref;
    const double ulp = (double)nextafterf(rf, INFINITY) - rf;
    const double e = fabs(r - ref) / ulp;
    if (e > worst) worst = e, worst_x = x;
    cr_assert(r <= 1.0f && evo_tanhf(-x) == -r, "tanh(%g) = %.9g", x, r);
  }
  cr_expect(worst <= 6.0, "tanh: %.2f ulp at %.9g", worst, worst_x);
  cr_assert(evo_tanhf(INFINITY) == 1.0f && evo_tanhf(-INFINITY) == -1.0f && evo_tanhf(9.5f) == 1.0f);
  cr_assert(signbit(evo_tanhf(-0.0f)) && evo_tanhf(-0.0f) == 0.0f && isnan(evo_tanhf(NAN)));
}

Test(cpu_kernels, stop_gradient_any_dtype_and_clip) {
  int64_t n = 5;
  evo_node_t in = mk(EVO_I32, 1, &n), node = mk(EVO_I32, 1, &n);
  node.op = EVO_OP_STOP_GRADIENT;
  int32_t xi[5] = {1, -2, 3, 4, 5}, yi[5];
  run(evo_cpu_unary, &node, 1, &in, (const void *[]){xi}, yi);
  cr_assert_arr_eq(xi, yi, sizeof xi);

  evo_node_t inf = mk(EVO_F32, 1, &n), nc = mk(EVO_F32, 1, &n);
  nc.op = EVO_OP_CLIP;
  nc.p.f[0] = -1.0f;
  nc.p.f[1] = 2.0f;
  float x[5] = {-5, -1, 0.5f, 7, NAN}, y[5];
  run(evo_cpu_clip, &nc, 1, &inf, (const void *[]){x}, y);
  cr_assert(y[0] == -1 && y[1] == -1 && y[2] == 0.5f && y[3] == 2 && isnan(y[4]));
}

/* ---- compare, where ---- */

Test(cpu_kernels, compare_f32_i32_broadcast) {
  int64_t sa[2] = {4, 1}, sb[1] = {6}, so[2] = {4, 6};
  float xa[4] = {0, 1, 2, NAN}, xb[6] = {-1, 0, 1, 2, 3, NAN};
  int32_t ia[4] = {0, 1, 2, -7}, ib[6] = {-1, 0, 1, 2, 3, -7};
  uint8_t out[24];
  for (int t = 0; t < 2; t++) {
    evo_dtype dt = t ? EVO_I32 : EVO_F32;
    evo_node_t in[2] = {mk(dt, 2, sa), mk(dt, 1, sb)}, node = mk(EVO_U8, 2, so);
    for (evo_op op = EVO_OP_LT; op <= EVO_OP_NE; op++) {
      node.op = op;
      run(evo_cpu_compare, &node, 2, in, t ? (const void *[]){ia, ib} : (const void *[]){xa, xb}, out);
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 6; j++) {
          double x = t ? ia[i] : xa[i], y = t ? ib[j] : xb[j];
          int want = op == EVO_OP_LT ? x < y : op == EVO_OP_LE ? x <= y : op == EVO_OP_GT ? x > y
                   : op == EVO_OP_GE ? x >= y : op == EVO_OP_EQ ? x == y : x != y;
          cr_assert_eq(out[i * 6 + j], want, "%s %s (%d,%d)", evo_op_name(op), t ? "i32" : "f32", i, j);
        }
    }
  }
}

Test(cpu_kernels, where_broadcast_paths) {
  /* general: cond [4,1,6], a [5,6], b scalar; then the full/full/scalar row path at a threaded size */
  int64_t sc[3] = {4, 1, 6}, sa[2] = {5, 6}, so[3] = {4, 5, 6};
  evo_node_t in[3] = {mk(EVO_U8, 3, sc), mk(EVO_F32, 2, sa), mk(EVO_F32, 0, NULL)}, node = mk(EVO_F32, 3, so);
  node.op = EVO_OP_WHERE;
  uint8_t c[24];
  for (int i = 0; i < 24; i++) c[i] = (uint8_t)(i % 3 == 0);
  float *a = frandv(30, -1, 1), b = -9.0f, out[120];
  run(evo_cpu_where, &node, 3, in, (const void *[]){c, a, &b}, out);
  for (int64_t i = 0; i < 120; i++) {
    float want = c[ref_off(&node, &in[0], i)] ? a[ref_off(&node, &in[1], i)] : b;
    cr_assert_eq(out[i], want, "where [%lld]", (long long)i);
  }
  int64_t big[2] = {300, 200};
  evo_node_t in2[3] = {mk(EVO_U8, 2, big), mk(EVO_F32, 2, big), mk(EVO_F32, 0, NULL)}, node2 = mk(EVO_F32, 2, big);
  node2.op = EVO_OP_WHERE;
  uint8_t *c2 = malloc(60000);
  float *a2 = frandv(60000, -1, 1), *o2 = malloc(sizeof(float) * 60000);
  for (int i = 0; i < 60000; i++) c2[i] = a2[i] > 0;
  float zero = 0.0f;
  run(evo_cpu_where, &node2, 3, in2, (const void *[]){c2, a2, &zero}, o2);
  for (int i = 0; i < 60000; i++) cr_assert_eq(o2[i], a2[i] > 0 ? a2[i] : 0.0f);
  free(a), free(c2), free(a2), free(o2);
}

/* ---- cast ---- */

Test(cpu_kernels, cast_all_pairs) {
  int64_t n = 6;
  float f[6] = {-2.7f, -0.5f, 0.0f, 3.9f, 300.5f, NAN};
  int32_t i32[6] = {-2, 0, 1, 255, 256, -300};
  uint8_t u8[6] = {0, 1, 127, 128, 200, 255};
  uint32_t u32[6] = {0, 1, 255, 256, 4000000000u, 7};
  float of[6];
  int32_t oi[6];
  uint8_t ou[6];
  uint32_t ow[6];
  evo_node_t node, in;
#define CAST(FROM, TO, SRC, DST)                                                                               \
  do {                                                                                                         \
    in = mk(FROM, 1, &n);                                                                                      \
    node = mk(TO, 1, &n);                                                                                      \
    node.op = EVO_OP_CAST;                                                                                     \
    run(evo_cpu_cast, &node, 1, &in, (const void *[]){SRC}, DST);                                              \
  } while (0)
  CAST(EVO_F32, EVO_I32, f, oi); /* truncation toward zero; NaN -> 0 */
  cr_assert(oi[0] == -2 && oi[1] == 0 && oi[2] == 0 && oi[3] == 3 && oi[4] == 300 && oi[5] == 0);
  CAST(EVO_F32, EVO_U8, f, ou); /* saturating */
  cr_assert(ou[0] == 0 && ou[1] == 0 && ou[3] == 3 && ou[4] == 255 && ou[5] == 0);
  CAST(EVO_F32, EVO_U32, f, ow);
  cr_assert(ow[0] == 0 && ow[3] == 3 && ow[4] == 300);
  CAST(EVO_I32, EVO_F32, i32, of);
  for (int i = 0; i < 6; i++) cr_assert_eq(of[i], (float)i32[i]);
  CAST(EVO_I32, EVO_U8, i32, ou); /* modulo 256, as C */
  for (int i = 0; i < 6; i++) cr_assert_eq(ou[i], (uint8_t)i32[i]);
  CAST(EVO_U8, EVO_F32, u8, of);
  for (int i = 0; i < 6; i++) cr_assert_eq(of[i], (float)u8[i]);
  CAST(EVO_U8, EVO_I32, u8, oi);
  for (int i = 0; i < 6; i++) cr_assert_eq(oi[i], (int32_t)u8[i]);
  CAST(EVO_U32, EVO_I32, u32, oi); /* two's complement wrap */
  cr_assert(oi[4] == (int32_t)(4000000000u - 4294967296ull) && oi[3] == 256);
  CAST(EVO_U32, EVO_F32, u32, of);
  cr_assert_eq(of[4], 4e9f);
  CAST(EVO_F32, EVO_F32, f, of);
  cr_assert_eq(of[3], f[3]);
#undef CAST
}

/* ---- reductions ---- */

/* Double reference over the input, indexed by out-position computed from the kept coordinates. */
static void ref_reduce(evo_op op, const evo_node_t *in, uint32_t axes, const float *x, double *y, int64_t nout) {
  double *m = malloc(sizeof(double) * (size_t)nout);
  for (int64_t o = 0; o < nout; o++) {
    y[o] = op == EVO_OP_REDUCE_MAX ? -INFINITY : op == EVO_OP_REDUCE_MIN ? INFINITY : 0.0;
    m[o] = -INFINITY;
  }
  for (int pass = 0; pass < (op == EVO_OP_LOGSUMEXP ? 2 : 1); pass++) {
    for (int64_t i = 0; i < numel(in); i++) {
      int64_t rem = i, o = 0, mul = 1;
      for (int d = in->ndim - 1; d >= 0; d--) {
        int64_t c = rem % in->shape[d];
        rem /= in->shape[d];
        if (!(axes & (1u << d))) {
          o += c * mul;
          mul *= in->shape[d];
        }
      }
      double v = x[i];
      if (op == EVO_OP_REDUCE_SUM) y[o] += v;
      else if (op == EVO_OP_REDUCE_MAX) y[o] = v > y[o] ? v : y[o];
      else if (op == EVO_OP_REDUCE_MIN) y[o] = v < y[o] ? v : y[o];
      else if (pass == 0) m[o] = v > m[o] ? v : m[o];
      else y[o] += exp(v - m[o]);
    }
  }
  if (op == EVO_OP_LOGSUMEXP)
    for (int64_t o = 0; o < nout; o++) y[o] = m[o] + log(y[o]);
  free(m);
}

static void check_reduce(evo_op op, int ndim, const int64_t *shape, uint32_t axes, int keepdims, float lo,
                         float hi) {
  evo_node_t in = mk(EVO_F32, ndim, shape), node = mk(EVO_F32, 0, NULL);
  node.op = op;
  node.p.axes = axes;
  node.p.keepdims = keepdims;
  for (int d = 0; d < ndim; d++) {
    if (axes & (1u << d)) {
      if (keepdims) node.shape[node.ndim++] = 1;
    } else {
      node.shape[node.ndim++] = shape[d];
    }
  }
  int64_t nout = numel(&node);
  float *x = frandv(numel(&in), lo, hi), *y = malloc(sizeof(float) * (size_t)nout);
  double *want = malloc(sizeof(double) * (size_t)nout);
  run(evo_cpu_reduce, &node, 1, &in, (const void *[]){x}, y);
  ref_reduce(op, &in, axes, x, want, nout);
  for (int64_t o = 0; o < nout; o++) {
    char what[64];
    snprintf(what, sizeof what, "%s axes=%#x", evo_op_name(op), axes);
    assert_close(y[o], want[o], 2e-6, 1e-5, what, o);
  }
  free(x), free(y), free(want);
}

Test(cpu_kernels, reduce_every_axis_mask) {
  const int64_t s[4] = {4, 5, 6, 7};
  for (uint32_t axes = 1; axes < 16; axes++)
    for (evo_op op = EVO_OP_REDUCE_SUM; op <= EVO_OP_LOGSUMEXP; op++) check_reduce(op, 4, s, axes, axes & 1, -3, 3);
  const int64_t s1[4] = {3, 1, 4, 1}; /* size-1 dims reduced or kept */
  for (uint32_t axes = 1; axes < 16; axes++) check_reduce(EVO_OP_REDUCE_SUM, 4, s1, axes, 1, -3, 3);
}

Test(cpu_kernels, reduce_large_paths) {
  const int64_t all[1] = {1000003}, rows[2] = {3, 100000}, cols[2] = {1000, 300}, mid[3] = {7, 900, 20};
  check_reduce(EVO_OP_REDUCE_SUM, 1, all, 1, 0, 0, 1);    /* split into deterministic blocks */
  check_reduce(EVO_OP_LOGSUMEXP, 1, all, 1, 0, 990, 1000); /* would overflow without the max shift */
  check_reduce(EVO_OP_REDUCE_MAX, 1, all, 1, 0, -5, 5);
  check_reduce(EVO_OP_REDUCE_SUM, 2, rows, 2, 0, -1, 1);
  check_reduce(EVO_OP_REDUCE_SUM, 2, cols, 1, 0, -1, 1); /* column-blocked */
  check_reduce(EVO_OP_REDUCE_MIN, 2, cols, 1, 1, -1, 1);
  check_reduce(EVO_OP_LOGSUMEXP, 3, mid, 2, 0, -50, 50);
  check_reduce(EVO_OP_REDUCE_SUM, 3, mid, 5, 0, -1, 1); /* two reduced segments: general strided runs */
}

Test(cpu_kernels, reduce_nan_and_inf) {
  int64_t s[2] = {2, 3}, o[1] = {2};
  evo_node_t in = mk(EVO_F32, 2, s), node = mk(EVO_F32, 1, o);
  node.p.axes = 2;
  float x[6] = {1, NAN, 3, -INFINITY, -INFINITY, -INFINITY}, y[2];
  node.op = EVO_OP_REDUCE_MAX;
  run(evo_cpu_reduce, &node, 1, &in, (const void *[]){x}, y);
  cr_assert(isnan(y[0]) && y[1] == -INFINITY);
  node.op = EVO_OP_LOGSUMEXP;
  run(evo_cpu_reduce, &node, 1, &in, (const void *[]){x}, y);
  cr_assert(isnan(y[0]) && y[1] == -INFINITY);
  node.p.axes = 1; /* column path */
  node.shape[0] = 3;
  float y3[3];
  node.op = EVO_OP_REDUCE_MIN;
  run(evo_cpu_reduce, &node, 1, &in, (const void *[]){x}, y3);
  cr_assert(y3[0] == -INFINITY && isnan(y3[1]) && y3[2] == -INFINITY);
}

Test(cpu_kernels, argmax_first_wins) {
  int64_t s[3] = {3, 4, 300};
  evo_node_t in = mk(EVO_F32, 3, s);
  float *x = malloc(sizeof(float) * 3600);
  for (int i = 0; i < 3600; i++) x[i] = (float)((i * 7919) % 5); /* many ties */
  x[5] = NAN;
  int32_t *y = malloc(sizeof(int32_t) * 3600);
  for (int axis = 0; axis < 3; axis++) {
    evo_node_t node = mk(EVO_I32, 0, NULL);
    node.op = EVO_OP_ARGMAX;
    node.p.axis = axis;
    for (int d = 0; d < 3; d++)
      if (d != axis) node.shape[node.ndim++] = s[d];
    run(evo_cpu_argmax, &node, 1, &in, (const void *[]){x}, y);
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= s[d];
    for (int d = axis + 1; d < 3; d++) inner *= s[d];
    for (int64_t o = 0; o < outer; o++)
      for (int64_t c = 0; c < inner; c++) {
        int best = 0;
        for (int r = 1; r < s[axis]; r++) {
          float b = x[(o * s[axis] + best) * inner + c], v = x[(o * s[axis] + r) * inner + c];
          if (!isnan(b) && (v > b || isnan(v))) best = r;
        }
        cr_assert_eq(y[o * inner + c], best, "axis %d (%lld,%lld)", axis, (long long)o, (long long)c);
      }
  }
  free(x), free(y);
}

Test(cpu_kernels, softmax_and_log_softmax) {
  int64_t s[3] = {3, 40, 300};
  evo_node_t in = mk(EVO_F32, 3, s), node = mk(EVO_F32, 3, s);
  float *x = frandv(36000, -20, 20), *y = malloc(sizeof(float) * 36000);
  x[0] = 1000.0f; /* would overflow exp without the shift */
  for (int lg = 0; lg < 2; lg++)
    for (int axis = 0; axis < 3; axis++) {
      node.op = lg ? EVO_OP_LOG_SOFTMAX : EVO_OP_SOFTMAX;
      node.p.axis = axis;
      run(evo_cpu_softmax, &node, 1, &in, (const void *[]){x}, y);
      int64_t outer = 1, inner = 1, n = s[axis];
      for (int d = 0; d < axis; d++) outer *= s[d];
      for (int d = axis + 1; d < 3; d++) inner *= s[d];
      for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < inner; c++) {
          double m = -INFINITY, sum = 0;
          for (int64_t r = 0; r < n; r++) m = fmax(m, x[(o * n + r) * inner + c]);
          for (int64_t r = 0; r < n; r++) sum += exp(x[(o * n + r) * inner + c] - m);
          for (int64_t r = 0; r < n; r++) {
            int64_t i = (o * n + r) * inner + c;
            double v = x[i] - m - log(sum);
            assert_close(y[i], lg ? v : exp(v), 2e-6, lg ? 2e-5 : 1e-7, lg ? "log_softmax" : "softmax", i);
          }
        }
    }
  free(x), free(y);
}

/* ---- shape ops ---- */

static void check_transpose(evo_dtype t, int ndim, const int64_t *shape, const int *perm) {
  evo_node_t in = mk(t, ndim, shape), node = mk(t, ndim, shape);
  node.op = EVO_OP_TRANSPOSE;
  for (int d = 0; d < ndim; d++) {
    node.p.i[d] = perm[d];
    node.shape[d] = shape[perm[d]];
  }
  int64_t n = numel(&in), ist[8];
  size_t es = evo_dtype_size(t);
  for (int d = ndim - 1, s = 1; d >= 0; d--) ist[d] = s, s *= (int)shape[d];
  uint8_t *x = malloc((size_t)n * es), *y = malloc((size_t)n * es);
  for (int64_t i = 0; i < n * (int64_t)es; i++) x[i] = (uint8_t)(i * 131 + 7);
  run(evo_cpu_shape_op, &node, 1, &in, (const void *[]){x}, y);
  for (int64_t i = 0; i < n; i++) {
    int64_t rem = i, off = 0;
    for (int d = ndim - 1; d >= 0; d--) {
      off += (rem % node.shape[d]) * ist[perm[d]];
      rem /= node.shape[d];
    }
    cr_assert(memcmp(y + i * (int64_t)es, x + off * (int64_t)es, es) == 0, "transpose [%lld]", (long long)i);
  }
  free(x), free(y);
}

Test(cpu_kernels, transpose_paths) {
  check_transpose(EVO_F32, 2, (int64_t[]){67, 45}, (int[]){1, 0});                 /* tiled */
  check_transpose(EVO_F32, 2, (int64_t[]){300, 257}, (int[]){1, 0});               /* tiled, threaded */
  check_transpose(EVO_I32, 4, (int64_t[]){5, 6, 37, 41}, (int[]){0, 1, 3, 2});     /* batched tiles */
  check_transpose(EVO_U8, 3, (int64_t[]){2, 3, 4}, (int[]){2, 0, 1});
  check_transpose(EVO_U8, 3, (int64_t[]){33, 3, 40}, (int[]){2, 1, 0});
  check_transpose(EVO_F32, 4, (int64_t[]){2, 3, 4, 5}, (int[]){0, 2, 1, 3});       /* strided rows */
  check_transpose(EVO_U32, 3, (int64_t[]){1, 5, 1}, (int[]){2, 1, 0});             /* size-1 dims only */
}

Test(cpu_kernels, const_reshape_broadcast_concat_slice_pad) {
  int64_t s23[2] = {2, 3}, s6[1] = {6};
  int32_t c[6] = {1, 2, 3, 4, 5, 6}, y[64];
  evo_node_t node = mk(EVO_I32, 2, s23);
  node.op = EVO_OP_CONST;
  node.cdata = c;
  run(evo_cpu_shape_op, &node, 0, NULL, NULL, y);
  cr_assert_arr_eq(y, c, sizeof c);
  evo_node_t in = mk(EVO_I32, 2, s23), r = mk(EVO_I32, 1, s6);
  r.op = EVO_OP_RESHAPE;
  run(evo_cpu_shape_op, &r, 1, &in, (const void *[]){c}, y);
  cr_assert_arr_eq(y, c, sizeof c);

  /* broadcast_to [3,1] -> [2,3,4] (u8) */
  uint8_t b[3] = {7, 8, 9}, by[24];
  evo_node_t bin = mk(EVO_U8, 2, (int64_t[]){3, 1}), bn = mk(EVO_U8, 3, (int64_t[]){2, 3, 4});
  bn.op = EVO_OP_BROADCAST_TO;
  run(evo_cpu_shape_op, &bn, 1, &bin, (const void *[]){b}, by);
  for (int i = 0; i < 24; i++) cr_assert_eq(by[i], b[(i / 4) % 3]);

  /* concat along axis 1 of [2,k,3] for k = 1, 2, 3 */
  float c1[6], c2[12], c3[18], cy[36];
  for (int i = 0; i < 18; i++) {
    if (i < 6) c1[i] = 100 + i;
    if (i < 12) c2[i] = 200 + i;
    c3[i] = 300 + i;
  }
  evo_node_t cin[3] = {mk(EVO_F32, 3, (int64_t[]){2, 1, 3}), mk(EVO_F32, 3, (int64_t[]){2, 2, 3}),
                       mk(EVO_F32, 3, (int64_t[]){2, 3, 3})};
  evo_node_t cn = mk(EVO_F32, 3, (int64_t[]){2, 6, 3});
  cn.op = EVO_OP_CONCAT;
  cn.n_in = 3;
  cn.p.axis = 1;
  run(evo_cpu_shape_op, &cn, 3, cin, (const void *[]){c1, c2, c3}, cy);
  for (int o = 0; o < 2; o++)
    for (int j = 0; j < 6; j++)
      for (int k = 0; k < 3; k++) {
        float want = j < 1 ? c1[o * 3 + k] : j < 3 ? c2[(o * 2 + j - 1) * 3 + k] : c3[(o * 3 + j - 3) * 3 + k];
        cr_assert_eq(cy[(o * 6 + j) * 3 + k], want);
      }

  /* slice [1,4) of axis 1 of [2,5,3]; pad axis 1 with (2,1) */
  float sx[30], sy[60];
  for (int i = 0; i < 30; i++) sx[i] = (float)i;
  evo_node_t sin_ = mk(EVO_F32, 3, (int64_t[]){2, 5, 3}), sn = mk(EVO_F32, 3, (int64_t[]){2, 3, 3});
  sn.op = EVO_OP_SLICE;
  sn.p.axis = 1;
  sn.p.i[0] = 1;
  sn.p.i[1] = 4;
  run(evo_cpu_shape_op, &sn, 1, &sin_, (const void *[]){sx}, sy);
  for (int o = 0; o < 2; o++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 3; k++) cr_assert_eq(sy[(o * 3 + j) * 3 + k], sx[(o * 5 + j + 1) * 3 + k]);
  evo_node_t pn = mk(EVO_F32, 3, (int64_t[]){2, 8, 3});
  pn.op = EVO_OP_PAD;
  pn.p.axis = 1;
  pn.p.i[0] = 2;
  pn.p.i[1] = 1;
  for (int i = 0; i < 48; i++) sy[i] = -1;
  run(evo_cpu_shape_op, &pn, 1, &sin_, (const void *[]){sx}, sy);
  for (int o = 0; o < 2; o++)
    for (int j = 0; j < 8; j++)
      for (int k = 0; k < 3; k++)
        cr_assert_eq(sy[(o * 8 + j) * 3 + k], (j < 2 || j >= 7) ? 0.0f : sx[(o * 5 + j - 2) * 3 + k]);
}

Test(cpu_kernels, take_scatter_one_hot) {
  /* take along axis 1: x [1,5] broadcast against idx [3,2]; out-of-range (-1, 5) give 0 */
  float x[5] = {10, 11, 12, 13, 14}, y[6];
  int32_t idx[6] = {0, 4, -1, 2, 5, 1};
  evo_node_t tin[2] = {mk(EVO_F32, 2, (int64_t[]){1, 5}), mk(EVO_I32, 2, (int64_t[]){3, 2})};
  evo_node_t tn = mk(EVO_F32, 2, (int64_t[]){3, 2});
  tn.op = EVO_OP_TAKE_ALONG_AXIS;
  tn.p.axis = 1;
  run(evo_cpu_shape_op, &tn, 2, tin, (const void *[]){x, idx}, y);
  const float want[6] = {10, 14, 0, 12, 0, 11};
  cr_assert_arr_eq(y, want, sizeof want);

  /* take along axis 0: x [3,4], idx [2,1] broadcast over the columns */
  float x2[12];
  for (int i = 0; i < 12; i++) x2[i] = (float)i;
  int32_t idx2[2] = {2, 0};
  float y2[8];
  evo_node_t tin2[2] = {mk(EVO_F32, 2, (int64_t[]){3, 4}), mk(EVO_I32, 2, (int64_t[]){2, 1})};
  evo_node_t tn2 = mk(EVO_F32, 2, (int64_t[]){2, 4});
  tn2.op = EVO_OP_TAKE_ALONG_AXIS;
  tn2.p.axis = 0;
  run(evo_cpu_shape_op, &tn2, 2, tin2, (const void *[]){x2, idx2}, y2);
  for (int j = 0; j < 4; j++) cr_assert(y2[j] == x2[8 + j] && y2[4 + j] == x2[j]);

  /* axis 0 with a full index: x steps like a repeated row, which must not take the short-row copy path */
  int32_t idx3[8] = {2, 0, 1, 3, 1, 1, 0, 2};
  float y3[8];
  evo_node_t tin3[2] = {mk(EVO_F32, 2, (int64_t[]){3, 4}), mk(EVO_I32, 2, (int64_t[]){2, 4})};
  run(evo_cpu_shape_op, &tn2, 2, tin3, (const void *[]){x2, idx3}, y3);
  for (int i = 0; i < 8; i++) cr_assert_eq(y3[i], idx3[i] > 2 ? 0.0f : x2[idx3[i] * 4 + i % 4], "take axis 0 [%d]", i);

  /* scatter-add along axis 0 (the output steps like a repeated row there) */
  float g0[6] = {1, 2, 3, 4, 5, 6}, s0[12];
  int32_t sidx0[6] = {3, 0, 3, 3, 1, -2};
  evo_node_t sin0[2] = {mk(EVO_F32, 2, (int64_t[]){2, 3}), mk(EVO_I32, 2, (int64_t[]){2, 3})};
  evo_node_t sn0 = mk(EVO_F32, 2, (int64_t[]){4, 3});
  sn0.op = EVO_OP_SCATTER_ADD_ALONG_AXIS;
  sn0.p.axis = 0;
  run(evo_cpu_shape_op, &sn0, 2, sin0, (const void *[]){g0, sidx0}, s0);
  const float s0want[12] = {0, 2, 0, 0, 5, 0, 0, 0, 0, 1 + 4, 0, 3};
  cr_assert_arr_eq(s0, s0want, sizeof s0want);

  /* scatter-add (gradient of take): duplicates accumulate, out-of-range ignored */
  float g[6] = {1, 2, 3, 4, 5, 6}, s[15];
  int32_t sidx[6] = {0, 0, 4, -1, 2, 7};
  evo_node_t sin_[2] = {mk(EVO_F32, 2, (int64_t[]){3, 2}), mk(EVO_I32, 2, (int64_t[]){3, 2})};
  evo_node_t sn = mk(EVO_F32, 2, (int64_t[]){3, 5});
  sn.op = EVO_OP_SCATTER_ADD_ALONG_AXIS;
  sn.p.axis = 1;
  for (int i = 0; i < 15; i++) s[i] = 99;
  run(evo_cpu_shape_op, &sn, 2, sin_, (const void *[]){g, sidx}, s);
  const float swant[15] = {3, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 5, 0, 0};
  cr_assert_arr_eq(s, swant, sizeof swant);

  /* one_hot depth 3 */
  int32_t oh[4] = {0, 2, 3, -1};
  float oy[12];
  evo_node_t oin = mk(EVO_I32, 1, (int64_t[]){4}), on = mk(EVO_F32, 2, (int64_t[]){4, 3});
  on.op = EVO_OP_ONE_HOT;
  on.p.i[0] = 3;
  run(evo_cpu_shape_op, &on, 1, &oin, (const void *[]){oh}, oy);
  const float owant[12] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  cr_assert_arr_eq(oy, owant, sizeof owant);
}

/* ---- rng ---- */

Test(cpu_kernels, rng_matches_element_functions) {
  uint32_t keys[6] = {1, 2, 0xdeadbeefu, 7, 0, 0};
  evo_node_t key = mk(EVO_U32, 2, (int64_t[]){3, 2});
  evo_node_t node = mk(EVO_F32, 3, (int64_t[]){3, 3, 7}); /* core [3,7]: 21 elements, not a multiple of 4 */
  node.p.i[0] = 2;
  float y[63];
  for (evo_op op = EVO_OP_RNG_UNIFORM; op <= EVO_OP_RNG_TRUNC_NORMAL; op++) {
    node.op = op;
    node.p.f[0] = op == EVO_OP_RNG_UNIFORM ? -2.0f : -1.0f;
    node.p.f[1] = op == EVO_OP_RNG_UNIFORM ? 3.0f : 1.5f;
    run(evo_cpu_rng, &node, 1, &key, (const void *[]){keys}, y);
    for (int k = 0; k < 3; k++)
      for (int j = 0; j < 21; j++) {
        float v = y[k * 21 + j], want;
        if (op == EVO_OP_RNG_UNIFORM) want = -2.0f + 5.0f * evo_rng_uniform01(keys + 2 * k, (uint64_t)j);
        else if (op == EVO_OP_RNG_NORMAL) want = evo_rng_normal(keys + 2 * k, (uint64_t)j);
        else want = evo_rng_truncated_normal(keys + 2 * k, (uint64_t)j, -1.0f, 1.5f);
        cr_assert_float_eq(v, want, 1e-6f, "%s key %d j %d", evo_op_name(op), k, j);
      }
  }
  /* a large draw (threaded) equals the host fill of the same key */
  const int64_t n = 100001;
  evo_node_t k1 = mk(EVO_U32, 1, (int64_t[]){2}), big = mk(EVO_F32, 1, &n);
  big.op = EVO_OP_RNG_NORMAL;
  big.p.i[0] = 1;
  float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
  run(evo_cpu_rng, &big, 1, &k1, (const void *[]){keys + 2}, a);
  evo_key kk = {{keys[2], keys[3]}};
  evo_rng_fill_normal(kk, b, n);
  cr_assert_arr_eq(a, b, sizeof(float) * (size_t)n);
  free(a), free(b);
}

/* ---- loop offsets ---- */

Test(cpu_kernels, loop_offset) {
  const int64_t out[3] = {2, 3, 4}, in1[2] = {3, 1}, in2[3] = {2, 1, 4};
  for (int64_t f = 0; f < 24; f++) {
    int64_t i0 = f / 12, i1 = (f / 4) % 3, i2 = f % 4;
    cr_assert_eq(evo_cpu_loop_offset(3, out, 2, in1, f), i1);
    cr_assert_eq(evo_cpu_loop_offset(3, out, 3, in2, f), i0 * 4 + i2);
    cr_assert_eq(evo_cpu_loop_offset(3, out, 0, NULL, f), 0);
    cr_assert_eq(evo_cpu_loop_offset(3, out, 3, out, f), f);
  }
}
