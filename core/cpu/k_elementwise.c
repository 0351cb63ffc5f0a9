/* Elementwise CPU kernels: unary, binary, compare, where, clip, cast, and the jit's fused binary+unary.
   Unary ops, clip and cast read one input of the node's shape: flat vectorised loops, OpenMP when large.
   Broadcasting ops go through the strided iterator (cpu_loop.c): inputs of the node's shape coalesce to one
   contiguous row (the flat fast path, split across threads by element); scalars and trailing/bias broadcasts
   ([P,16,64] + [P,1,64] or + [64], [M,5] * [5]) become contiguous-vs-broadcast rows, short ones widened through a
   stack copy; anything else runs a general strided row. */
#include <string.h>
#include "../elementwise_math.h"
#include "cpu_util.h"

/* a*b+c as one FMA in the polynomial forms (-std=c11 turns contraction off): fewer instructions, no worse error */
#if defined(__clang__)
#pragma clang fp contract(fast)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=fast")
#endif

#define PRAGMA(x) _Pragma(#x)

static int64_t node_numel(const evo_node_t *n) { return evo_cpu_numel(n->ndim, n->shape); }

/* ---- unary ---- */

#define UNARY_LOOP_(PRAG, PAR, EXPR)                                                                          \
  do {                                                                                                        \
    PRAGMA(PRAG if (n > (PAR)) schedule(static))                                                              \
    for (int64_t i = 0; i < n; i++) {                                                                         \
      float x = src[i];                                                                                       \
      dst[i] = (EXPR);                                                                                        \
    }                                                                                                         \
  } while (0)
#define UNARY_LOOP(PAR, EXPR) UNARY_LOOP_(omp parallel for simd, PAR, EXPR)
/* libm calls (log, sqrt, sin, cos) do not vectorise without -ffast-math; no simd pragma, so clang does not warn */
#define UNARY_LOOP_LIBM(PAR, EXPR) UNARY_LOOP_(omp parallel for, PAR, EXPR)

/* The unary ops as LOOP(threshold, EXPR of x) cases, shared by the unary kernel and the fused binary+unary rows. */
#define UNARY_CASES(LOOP, LOOP_LIBM)                                                                          \
  case EVO_OP_NEG: LOOP(cheap, -x); break;                                                                    \
  case EVO_OP_ABS: LOOP(cheap, fabsf(x)); break;                                                              \
  case EVO_OP_EXP: LOOP(heavy, evo_expf(x)); break;                                                           \
  case EVO_OP_LOG: LOOP_LIBM(heavy, logf(x)); break;                                                          \
  case EVO_OP_SQRT: LOOP_LIBM(cheap, sqrtf(x)); break;                                                        \
  case EVO_OP_TANH: LOOP(heavy, evo_tanhf(x)); break;                                                         \
  case EVO_OP_SIGMOID: LOOP(heavy, evo_sigmoidf(x)); break;                                                   \
  case EVO_OP_RELU: LOOP(cheap, evo_reluf(x)); break;                                                         \
  case EVO_OP_SIN: LOOP_LIBM(heavy, sinf(x)); break;                                                          \
  case EVO_OP_COS: LOOP_LIBM(heavy, cosf(x)); break;                                                          \
  case EVO_OP_SQUARE: LOOP(cheap, x * x); break;                                                              \
  case EVO_OP_SIGN: LOOP(cheap, evo_signf(x)); break;

/* Worth threads from EVO_CPU_PAR_MIN_HEAVY elements (the heavy threshold in UNARY_CASES). */
static int unary_heavy(evo_op op) {
  return op == EVO_OP_EXP || op == EVO_OP_LOG || op == EVO_OP_TANH || op == EVO_OP_SIGMOID || op == EVO_OP_SIN ||
         op == EVO_OP_COS;
}

evo_status evo_cpu_unary(const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  const int64_t n = node_numel(node);
  if (node->op == EVO_OP_STOP_GRADIENT) { /* identity of any dtype */
    if (n) memcpy(a->dst, a->src[0], (size_t)n * evo_dtype_size(node->dtype));
    return EVO_STATUS_OK;
  }
  if (node->dtype != EVO_F32 || a->in[0]->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cpu %s: f32 only", evo_op_name(node->op));
  const float *src = a->src[0];
  float *dst = a->dst;
  const int64_t cheap = EVO_CPU_PAR_MIN, heavy = EVO_CPU_PAR_MIN_HEAVY;
  switch (node->op) {
    UNARY_CASES(UNARY_LOOP, UNARY_LOOP_LIBM)
  default: return evo_error(EVO_STATUS_INTERNAL, "cpu unary: bad op %s", evo_op_name(node->op));
  }
  return EVO_STATUS_OK;
}

/* ---- binary and compare: rows of two inputs ---- */

/* One row of d[i] = EXPR(x = a[i*sa], y = b[i*sb]) with the common stride patterns as separate loops, so the
   compiler vectorises each (contiguous both, one side broadcast) and hoists the broadcast load. */
#define ROW2_(SIMD, TD, TA, TB, EXPR)                                                                         \
  do {                                                                                                        \
    TD *d = (TD *)p[0];                                                                                       \
    const TA *pa = (const TA *)p[1];                                                                          \
    const TB *pb = (const TB *)p[2];                                                                          \
    const int64_t sa = s[1], sb = s[2];                                                                       \
    if (sa == 1 && sb == 1) {                                                                                 \
      SIMD                                                                                                    \
      for (int64_t i = 0; i < n; i++) {                                                                       \
        TA x = pa[i];                                                                                         \
        TB y = pb[i];                                                                                         \
        d[i] = (EXPR);                                                                                        \
      }                                                                                                       \
    } else if (sa == 1 && sb == 0) {                                                                          \
      const TB y = pb[0];                                                                                     \
      SIMD                                                                                                    \
      for (int64_t i = 0; i < n; i++) {                                                                       \
        TA x = pa[i];                                                                                         \
        d[i] = (EXPR);                                                                                        \
      }                                                                                                       \
    } else if (sa == 0 && sb == 1) {                                                                          \
      const TA x = pa[0];                                                                                     \
      SIMD                                                                                                    \
      for (int64_t i = 0; i < n; i++) {                                                                       \
        TB y = pb[i];                                                                                         \
        d[i] = (EXPR);                                                                                        \
      }                                                                                                       \
    } else {                                                                                                  \
      for (int64_t i = 0; i < n; i++) {                                                                       \
        TA x = pa[i * sa];                                                                                    \
        TB y = pb[i * sb];                                                                                    \
        d[i] = (EXPR);                                                                                        \
      }                                                                                                       \
    }                                                                                                         \
  } while (0)

#define SIMD_ON _Pragma("omp simd")
#define SIMD_OFF /* libm calls (powf) do not vectorise; a simd pragma there only makes clang warn */
#define ROW2(TD, TA, TB, EXPR) ROW2_(SIMD_ON, TD, TA, TB, EXPR)
#define ROW2_LIBM(TD, TA, TB, EXPR) ROW2_(SIMD_OFF, TD, TA, TB, EXPR)

static void binary_row(const void *ctx, int64_t n, char *const *p, const int64_t *s) {
  switch (*(const evo_op *)ctx) {
  case EVO_OP_ADD: ROW2(float, float, float, x + y); break;
  case EVO_OP_SUB: ROW2(float, float, float, x - y); break;
  case EVO_OP_MUL: ROW2(float, float, float, x * y); break;
  case EVO_OP_DIV: ROW2(float, float, float, x / y); break;
  case EVO_OP_POW: ROW2_LIBM(float, float, float, powf(x, y)); break;
  case EVO_OP_MAX: ROW2(float, float, float, evo_maxf(x, y)); break;
  case EVO_OP_MIN: ROW2(float, float, float, evo_minf(x, y)); break;
  default: break;
  }
}

#define CMP_ROWS(T)                                                                                           \
  do {                                                                                                        \
    switch (op) {                                                                                             \
    case EVO_OP_LT: ROW2(uint8_t, T, T, (uint8_t)(x < y)); break;                                             \
    case EVO_OP_LE: ROW2(uint8_t, T, T, (uint8_t)(x <= y)); break;                                            \
    case EVO_OP_GT: ROW2(uint8_t, T, T, (uint8_t)(x > y)); break;                                             \
    case EVO_OP_GE: ROW2(uint8_t, T, T, (uint8_t)(x >= y)); break;                                            \
    case EVO_OP_EQ: ROW2(uint8_t, T, T, (uint8_t)(x == y)); break;                                            \
    case EVO_OP_NE: ROW2(uint8_t, T, T, (uint8_t)(x != y)); break;                                            \
    default: break;                                                                                           \
    }                                                                                                         \
  } while (0)

typedef struct {
  evo_op op;
  evo_dtype dtype;
} cmp_ctx;

static void compare_row(const void *ctx, int64_t n, char *const *p, const int64_t *s) {
  const cmp_ctx *c = ctx;
  const evo_op op = c->op;
  if (c->dtype == EVO_F32)
    CMP_ROWS(float);
  else
    CMP_ROWS(int32_t);
}

/* Runs a two-input row function over the node. Inputs of the node's shape coalesce to one contiguous row, which
   evo_cpu_iter_run splits across threads by element: that is the flat fast path. */
static void run2(const evo_kernel_args *a, size_t out_es, size_t in_es, evo_cpu_row_fn fn, const void *ctx,
                 int64_t par_min) {
  const evo_node_t *node = a->node;
  evo_cpu_iter it;
  evo_cpu_iter_init(&it, node->ndim, node->shape);
  evo_cpu_iter_add_contig(&it, a->dst, out_es);
  evo_cpu_iter_add_bcast(&it, a->src[0], in_es, a->in[0]->ndim, a->in[0]->shape);
  evo_cpu_iter_add_bcast(&it, a->src[1], in_es, a->in[1]->ndim, a->in[1]->shape);
  evo_cpu_iter_coalesce(&it);
  it.elementwise = true;
  evo_cpu_iter_run(&it, fn, ctx, par_min);
}

evo_status evo_cpu_binary(const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  if (node->dtype != EVO_F32 || a->in[0]->dtype != EVO_F32 || a->in[1]->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cpu %s: f32 only", evo_op_name(node->op));
  const evo_op op = node->op;
  if (op < EVO_OP_ADD || op > EVO_OP_MIN) return evo_error(EVO_STATUS_INTERNAL, "cpu binary: bad op");
  run2(a, 4, 4, binary_row, &op, op == EVO_OP_POW ? EVO_CPU_PAR_MIN_HEAVY : EVO_CPU_PAR_MIN);
  return EVO_STATUS_OK;
}

/* ---- fused binary + unary (a plan-only op, ops.h) ---- */

/* The unary runs over each row right after the binary wrote it, while it is in L1: one pass over memory instead
   of two. The thresholds are unused here (the row iterator already split the work across threads). */
#define ROW_LOOP(PAR, EXPR)                                                                                   \
  do {                                                                                                        \
    _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                                                     \
      float x = d[i];                                                                                         \
      d[i] = (EXPR);                                                                                          \
    }                                                                                                         \
  } while (0)
#define ROW_LOOP_LIBM(PAR, EXPR)                                                                              \
  do {                                                                                                        \
    for (int64_t i = 0; i < n; i++) {                                                                         \
      float x = d[i];                                                                                         \
      d[i] = (EXPR);                                                                                          \
    }                                                                                                         \
  } while (0)

static void fused_row(const void *ctx, int64_t n, char *const *p, const int64_t *s) {
  const evo_op *ops = ctx; /* binary, unary */
  binary_row(&ops[0], n, p, s);
  float *d = (float *)p[0];
  switch (ops[1]) {
    UNARY_CASES(ROW_LOOP, ROW_LOOP_LIBM)
  default: break;
  }
}

int evo_cpu_fusable_pair(evo_op binary, evo_op unary) {
  return binary >= EVO_OP_ADD && binary <= EVO_OP_MIN && unary >= EVO_OP_NEG && unary <= EVO_OP_SIGN;
}

evo_status evo_cpu_fused_binary_unary(const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  if (node->dtype != EVO_F32 || a->in[0]->dtype != EVO_F32 || a->in[1]->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cpu fused binary+unary: f32 only");
  const evo_op ops[2] = {(evo_op)node->p.i[0], (evo_op)node->p.i[1]};
  if (!evo_cpu_fusable_pair(ops[0], ops[1]))
    return evo_error(EVO_STATUS_INTERNAL, "cpu fused binary+unary: bad ops %d, %d", node->p.i[0], node->p.i[1]);
  const int heavy = ops[0] == EVO_OP_POW || unary_heavy(ops[1]);
  run2(a, 4, 4, fused_row, ops, heavy ? EVO_CPU_PAR_MIN_HEAVY : EVO_CPU_PAR_MIN);
  return EVO_STATUS_OK;
}

evo_status evo_cpu_compare(const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  const evo_dtype t = a->in[0]->dtype;
  if (node->dtype != EVO_U8 || t != a->in[1]->dtype || (t != EVO_F32 && t != EVO_I32))
    return evo_error(EVO_STATUS_UNSUPPORTED, "cpu %s: needs (f32,f32) or (i32,i32) -> u8", evo_op_name(node->op));
  if (node->op < EVO_OP_LT || node->op > EVO_OP_NE) return evo_error(EVO_STATUS_INTERNAL, "cpu compare: bad op");
  cmp_ctx c = {node->op, t};
  run2(a, 1, 4, compare_row, &c, EVO_CPU_PAR_MIN);
  return EVO_STATUS_OK;
}

/* ---- where ---- */

static void where_row(const void *ctx, int64_t n, char *const *p, const int64_t *s) {
  (void)ctx;
  float *d = (float *)p[0];
  const uint8_t *c = (const uint8_t *)p[1];
  const float *x = (const float *)p[2], *y = (const float *)p[3];
  if (s[1] == 1 && s[2] == 1 && s[3] == 1) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) d[i] = c[i] ? x[i] : y[i];
  } else if (s[1] == 1 && s[2] == 1 && s[3] == 0) { /* where(mask, g, 0) in backward rules */
    const float yv = y[0];
#pragma omp simd
    for (int64_t i = 0; i < n; i++) d[i] = c[i] ? x[i] : yv;
  } else if (s[1] == 1 && s[2] == 0 && s[3] == 1) {
    const float xv = x[0];
#pragma omp simd
    for (int64_t i = 0; i < n; i++) d[i] = c[i] ? xv : y[i];
  } else {
    for (int64_t i = 0; i < n; i++) d[i] = c[i * s[1]] ? x[i * s[2]] : y[i * s[3]];
  }
}

evo_status evo_cpu_where(const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  if (node->dtype != EVO_F32 || a->in[0]->dtype != EVO_U8 || a->in[1]->dtype != EVO_F32 ||
      a->in[2]->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cpu where: needs (u8, f32, f32)");
  evo_cpu_iter it;
  evo_cpu_iter_init(&it, node->ndim, node->shape);
  evo_cpu_iter_add_contig(&it, a->dst, 4);
  evo_cpu_iter_add_bcast(&it, a->src[0], 1, a->in[0]->ndim, a->in[0]->shape);
  evo_cpu_iter_add_bcast(&it, a->src[1], 4, a->in[1]->ndim, a->in[1]->shape);
  evo_cpu_iter_add_bcast(&it, a->src[2], 4, a->in[2]->ndim, a->in[2]->shape);
  evo_cpu_iter_coalesce(&it);
  it.elementwise = true;
  evo_cpu_iter_run(&it, where_row, NULL, EVO_CPU_PAR_MIN);
  return EVO_STATUS_OK;
}

/* ---- clip ---- */

evo_status evo_cpu_clip(const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  if (node->dtype != EVO_F32 || a->in[0]->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cpu clip: f32 only");
  const float lo = node->p.f[0], hi = node->p.f[1];
  const float *src = a->src[0];
  float *dst = a->dst;
  const int64_t n = node_numel(node);
  UNARY_LOOP(EVO_CPU_PAR_MIN, evo_clipf(x, lo, hi));
  return EVO_STATUS_OK;
}

/* ---- cast ---- */

#define CAST_LOOP(TD, TS, EXPR)                                                                               \
  do {                                                                                                        \
    TD *d = a->dst;                                                                                           \
    const TS *sp = a->src[0];                                                                                 \
    PRAGMA(omp parallel for if (n > EVO_CPU_PAR_MIN) schedule(static))                                        \
    for (int64_t i = 0; i < n; i++) {                                                                         \
      TS x = sp[i];                                                                                           \
      d[i] = (EXPR);                                                                                          \
    }                                                                                                         \
  } while (0)

/* All sources of one destination type; integer -> integer follows C's conversions (u8/u32 wrap modulo 2^k,
   i32 from a u32 above INT32_MAX wraps as two's complement), float -> integer saturates (elementwise_math.h). */
#define CAST_FROM_ANY(TD, FROM_F32)                                                                           \
  do {                                                                                                        \
    switch (from) {                                                                                           \
    case EVO_F32: CAST_LOOP(TD, float, FROM_F32); break;                                                      \
    case EVO_I32: CAST_LOOP(TD, int32_t, (TD)x); break;                                                       \
    case EVO_U8: CAST_LOOP(TD, uint8_t, (TD)x); break;                                                        \
    case EVO_U32: CAST_LOOP(TD, uint32_t, (TD)x); break;                                                      \
    default: return evo_error(EVO_STATUS_UNSUPPORTED, "cpu cast: bad source dtype");                          \
    }                                                                                                         \
  } while (0)

static inline int32_t u32_to_i32(uint32_t x) { /* two's complement wrap without implementation-defined casts */
  return x <= (uint32_t)INT32_MAX ? (int32_t)x : (int32_t)(x - 2147483648u) + INT32_MIN;
}

evo_status evo_cpu_cast(const evo_kernel_args *a) {
  const evo_node_t *node = a->node;
  const evo_dtype to = node->dtype, from = a->in[0]->dtype;
  const int64_t n = node_numel(node);
  if (to == from) {
    if (n) memcpy(a->dst, a->src[0], (size_t)n * evo_dtype_size(to));
    return EVO_STATUS_OK;
  }
  switch (to) {
  case EVO_F32: CAST_FROM_ANY(float, x); break;
  case EVO_U8: CAST_FROM_ANY(uint8_t, evo_f32_to_u8(x)); break;
  case EVO_U32: CAST_FROM_ANY(uint32_t, evo_f32_to_u32(x)); break;
  case EVO_I32:
    switch (from) {
    case EVO_F32: CAST_LOOP(int32_t, float, evo_f32_to_i32(x)); break;
    case EVO_U8: CAST_LOOP(int32_t, uint8_t, (int32_t)x); break;
    case EVO_U32: CAST_LOOP(int32_t, uint32_t, u32_to_i32(x)); break;
    default: return evo_error(EVO_STATUS_UNSUPPORTED, "cpu cast: bad source dtype");
    }
    break;
  default: return evo_error(EVO_STATUS_UNSUPPORTED, "cpu cast: bad target dtype");
  }
  return EVO_STATUS_OK;
}
