/* The cross-backend op harness: every row and case of the CPU op table (tests/op_table.inc, the rows of
   op_extra.inc) runs on the CUDA backend and is compared with the CPU backend on the same inputs. Per case:
     value    evo_eval (jit, recorded into a CUDA Graph and replayed) against the CPU;
     guard    the graph run node by node, each output and each scratch buffer in its own allocation between two
              GUARD-byte canary regions, outputs pre-filled with 0xFF bytes (NaN for f32): a kernel that writes out
              of bounds changes a canary, one that skips elements leaves NaN/-1/255 behind;
     special  when every op of the graph propagates NaN/Inf whatever the evaluation order (elementwise, sum, matmul,
              moves), NaN, +Inf and -Inf planted in the f32 inputs;
     vmap     evo_vmap'd graph, batch 3: all inputs batched; input 0 batched, the rest shared; the reverse;
     grad     evo_grad of loss = sum(op(x) * W) on both backends, every gradient compared, and its vmap
              (per-example gradients); F_GRAD2 rows (conv2d, pooling) also the gradient of a Hessian-vector
              product, i.e. second derivatives.
   Comparison of CUDA output g against CPU output c: NaN and Inf must sit at the same places (Inf with the same
   sign) whatever the tolerance; non-f32 outputs and F_EXACT rows are exact; other f32 outputs pass when the
   normalized error max|g - c| / max(max|c|, 1e-6) is at most 4 (rtol + atol) of the row (gradients: at least
   1e-5). RNG rows use the documented RNG tolerance (RNG_ATOL/RNG_RTOL below). Outside the table: a plan replays
   its CUDA Graph without allocating, out-of-memory is a status, and the RNG streams match the CPU.
   Every GPU test skips (Criterion skip with the reason) when evo_cuda_device_count() is 0. EVOC_TEST_SEED
   overrides the seed; failures print seed, op, case and check. EVOC_CUDA_OPS_QUICK=1 keeps value, guard and
   special only (for compute-sanitizer runs). */
#define OP_TABLE_ROWS_ONLY
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend_impl.h"
#include "evoc/backend.h"
#include "evoc/graph.h"
#include "evoc/jit.h"
#include "evoc/rng.h"
#include "evoc/transform.h"

#include "op_ref.inc"

#include "op_harness.inc"

#define NONE EVO_VMAP_NONE
#define BATCH 3
#define GUARD 256 /* bytes of canary on each side; keeps every payload 256-byte aligned like cudaMalloc */
#define CANARY 0xA5
#define UNWRITTEN 0xFF
#define DEFAULT_SEED 20240611ull
/* RNG: the raw Philox words are bit-identical, so uniform(0, 1) (the top 24 bits of each word) is exact;
   uniform(lo, hi) may differ by the FMA nvcc contracts lo + (hi - lo) u into; normal and truncated normal go
   through logf/cosf/erfcf/expf, whose last ulps differ between glibc and CUDA, plus FMA contraction:
   |cuda - cpu| <= RNG_ATOL + RNG_RTOL |cpu| (about 16 ulps at 1). */
#define RNG_ATOL 1e-6
#define RNG_RTOL 2e-6

static evo_backend *cpu, *gpu;
static uint64_t g_seed;
static int quick;
static char no_gpu[512];

static void setup(void) {
  cpu = evo_backend_cpu_new(NULL);
  const char *e = getenv("EVOC_TEST_SEED");
  g_seed = e && *e ? strtoull(e, NULL, 0) : DEFAULT_SEED;
  e = getenv("EVOC_CUDA_OPS_QUICK");
  quick = e && *e && strcmp(e, "0");
  evo_status st = evo_backend_cuda_new(0, &gpu);
  if (st != EVO_STATUS_OK || evo_cuda_device_count() == 0) {
    snprintf(no_gpu, sizeof no_gpu, "%s", st ? evo_last_error() : "evo_cuda_device_count() is 0");
    evo_backend_free(gpu);
    gpu = NULL;
  }
}
static void teardown(void) {
  evo_backend_free(gpu);
  evo_backend_free(cpu);
}
TestSuite(cuda_ops, .init = setup, .fini = teardown);

#define NEED_GPU()                                                                                             \
  do {                                                                                                         \
    if (!gpu) cr_skip_test("no usable CUDA device: %s", no_gpu);                                               \
  } while (0)

/* ---- failure accounting ---- */

enum { K_VALUE, K_GUARD, K_SPECIAL, K_VMAP, K_GRAD, K_COUNT };
static const char *const check_names[K_COUNT] = {"value", "guard", "special", "vmap", "grad"};

typedef struct {
  const op_row *row;
  int ci, nfail, had_grad, had_special;
  long n[K_COUNT]; /* numbers compared per check */
  char desc[200];
} xcase;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void report(xcase *cx, const char *check, const char *fmt, ...) {
  if (++cx->nfail > 30) return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "[test_cuda_ops] FAIL seed=%llu op=%s case=%d (%s) check=%s: %s\n", (unsigned long long)g_seed,
          cx->row->name, cx->ci, cx->desc, check, msg);
}

/* ---- comparison ---- */

static int is_rng_row(const op_row *R) { return !strncmp(R->name, "random_", 7) && strcmp(R->name, "random_uniform"); }

/* Normalized tolerance of a row's f32 outputs (0 = exact). */
static double row_tol(const op_row *R, int grad) {
  double t = 4 * ((R->rtol > 0 ? R->rtol : 1e-5) + (R->atol > 0 ? R->atol : 1e-6));
  if (grad) return fmax(t, 1e-5);
  return (R->flags & F_EXACT) ? 0 : t;
}

/* CUDA output `got` against CPU output `want` (see the header for the rule); returns the number compared. */
static long compare(xcase *cx, const char *check, int j, const hbuf *got, const hbuf *want, double tol) {
  if (got->nd != want->nd || hb_numel(got) != hb_numel(want) || got->dt != want->dt) {
    report(cx, check, "output %d: dtype or shape differs between the backends", j);
    return 0;
  }
  int64_t n = hb_numel(got), worst = -1;
  int rng = is_rng_row(cx->row) && got->dt == EVO_F32, exact = got->dt != EVO_F32 || (tol == 0 && !rng);
  double scale = 1e-6, err = 0;
  for (int64_t i = 0; i < n; i++)
    if (isfinite(hb_get(want, i))) scale = fmax(scale, fabs(hb_get(want, i)));
  for (int64_t i = 0; i < n; i++) {
    double g = hb_get(got, i), w = hb_get(want, i), d = fabs(g - w);
    if (isnan(w) || isnan(g) || isinf(w) || isinf(g)) {
      if (isnan(w) != isnan(g) || (isinf(w) && g != w) || (isinf(g) && g != w)) {
        report(cx, check, "output %d index %lld: cpu %.9g, cuda %.9g (NaN/Inf disagree)", j, (long long)i, w, g);
        return n;
      }
      continue;
    }
    if (exact ? d != 0 : rng ? d > RNG_ATOL + RNG_RTOL * fabs(w) : d / scale > tol) {
      if (worst < 0) worst = i;
      err = fmax(err, d);
    }
  }
  if (worst >= 0)
    report(cx, check, "output %d: index %lld cpu %.9g cuda %.9g; max |diff| %.3g, normalized %.3g, tol %s%.3g", j,
           (long long)worst, hb_get(want, worst), hb_get(got, worst), err, err / scale,
           exact ? "exact " : rng ? "rng " : "", exact ? 0.0 : tol);
  return n;
}

/* Evaluates g on both backends and compares every output; adds to the check's count. */
static void cross(xcase *cx, int k, const evo_graph *g, const hbuf *in, double tol) {
  int no = evo_graph_n_outputs(g);
  hbuf want[8], got[8];
  memset(want, 0, sizeof want);
  memset(got, 0, sizeof got);
  evo_status sc = eval_on(cpu, g, in, want), sg = sc ? sc : eval_on(gpu, g, in, got);
  if (sc) report(cx, check_names[k], "cpu eval: %s: %s", evo_status_str(sc), evo_last_error());
  else if (sg) report(cx, check_names[k], "cuda eval: %s: %s", evo_status_str(sg), evo_last_error());
  for (int j = 0; !sc && !sg && j < no; j++) cx->n[k] += compare(cx, check_names[k], j, &got[j], &want[j], tol);
  for (int j = 0; j < no; j++) hb_free(&want[j]), hb_free(&got[j]);
}

/* ---- node-by-node run with guard regions ---- */

typedef struct {
  unsigned char *base; /* [GUARD canary][payload][GUARD canary] on the device */
  size_t bytes;
} gbuf;

static void *gb_alloc(gbuf *b, size_t bytes, int fill, const void *data) {
  size_t total = bytes + 2 * GUARD;
  b->bytes = bytes;
  b->base = evo_backend_alloc(gpu, total);
  unsigned char *h = malloc(total);
  if (!b->base || !h) {
    free(h);
    return NULL;
  }
  memset(h, CANARY, total);
  if (data) memcpy(h + GUARD, data, bytes);
  else memset(h + GUARD, fill, bytes);
  evo_status st = gpu->iface->from_host(gpu->ctx, b->base, h, total);
  free(h);
  return st ? NULL : b->base + GUARD;
}

/* Guard bytes that no longer hold the canary (-1 if the buffer cannot be read back); frees the buffer. When
   `out` is given, the payload is copied into it first. */
static long gb_release(gbuf *b, void *out) {
  if (!b->base) return 0;
  size_t total = b->bytes + 2 * GUARD;
  unsigned char *h = malloc(total);
  long bad = -1;
  if (h && gpu->iface->to_host(gpu->ctx, h, b->base, total) == EVO_STATUS_OK) {
    bad = 0;
    for (size_t i = 0; i < GUARD; i++) bad += (h[i] != CANARY) + (h[GUARD + b->bytes + i] != CANARY);
    if (out) memcpy(out, h + GUARD, b->bytes);
  }
  free(h);
  evo_backend_release(gpu, b->base);
  b->base = NULL;
  return bad;
}

static size_t node_bytes(const evo_node_t *n) {
  return (size_t)shp_numel(n->ndim, n->shape) * evo_dtype_size(n->dtype);
}

static void guarded_run(xcase *cx, const evo_graph *g, const hbuf *in) {
  const int nn = g->n_nodes, no = evo_graph_n_outputs(g);
  gbuf *bufs = calloc((size_t)nn, sizeof(gbuf));
  void **ptr = calloc((size_t)nn, sizeof(void *));
  hbuf want[8], got[8];
  memset(want, 0, sizeof want);
  memset(got, 0, sizeof got);
  int ok = bufs && ptr;
  for (int i = 0; ok && i < nn; i++) {
    const evo_node_t *n = &g->nodes[i];
    const evo_node_t *ins[EVO_MAX_INPUTS] = {0};
    for (int k = 0; k < n->n_in; k++) ins[k] = &g->nodes[n->in[k]];
    const void *data = n->op == EVO_OP_CONST ? n->cdata : NULL;
    for (int j = 0; n->op == EVO_OP_INPUT && j < evo_graph_n_inputs(g); j++)
      if (evo_graph_input(g, j) == i) data = in[j].p;
    if (n->op != EVO_OP_INPUT && n->op != EVO_OP_CONST && !gpu->iface->supports_op(gpu->ctx, n, ins)) {
      report(cx, "guard", "node %d (%s): the CUDA backend refuses it", i, evo_op_name(n->op)), ok = 0;
      break;
    }
    if (!(ptr[i] = gb_alloc(&bufs[i], node_bytes(n), UNWRITTEN, data))) {
      report(cx, "guard", "node %d: cannot allocate %zu bytes: %s", i, node_bytes(n), evo_last_error()), ok = 0;
      break;
    }
    if (n->op == EVO_OP_INPUT || n->op == EVO_OP_CONST) continue;
    gbuf sb = {0};
    size_t sbytes = gpu->iface->scratch_bytes(gpu->ctx, n, ins);
    evo_kernel_args a = {.node = n, .dst = ptr[i], .scratch_bytes = sbytes};
    if (sbytes) a.scratch = gb_alloc(&sb, sbytes, UNWRITTEN, NULL);
    for (int k = 0; k < n->n_in; k++) a.in[k] = ins[k], a.src[k] = ptr[n->in[k]];
    evo_status st = sbytes && !a.scratch ? EVO_STATUS_OUT_OF_MEMORY : gpu->iface->run(gpu->ctx, &a);
    if (st) report(cx, "guard", "node %d (%s): %s: %s", i, evo_op_name(n->op), evo_status_str(st), evo_last_error());
    long bad = gb_release(&sb, NULL);
    if (bad) report(cx, "guard", "node %d (%s): %ld scratch guard bytes overwritten", i, evo_op_name(n->op), bad);
    ok &= !st && !bad;
  }
  for (int j = 0; ok && j < no; j++) {
    const evo_node_t *n = &g->nodes[evo_graph_output(g, j)];
    hb_init(&got[j], n->dtype, n->ndim, n->shape);
    long bad = gb_release(&bufs[evo_graph_output(g, j)], got[j].p);
    if (bad) report(cx, "guard", "output %d (%s): %ld guard bytes overwritten", j, evo_op_name(n->op), bad), ok = 0;
  }
  for (int i = 0; bufs && i < nn; i++) {
    long bad = gb_release(&bufs[i], NULL);
    if (bad) report(cx, "guard", "node %d (%s): %ld guard bytes overwritten", i, evo_op_name(g->nodes[i].op), bad);
  }
  evo_status st = ok ? eval_on(cpu, g, in, want) : EVO_STATUS_OK;
  if (st) report(cx, "guard", "cpu eval: %s", evo_last_error());
  for (int j = 0; ok && !st && j < no; j++)
    cx->n[K_GUARD] += compare(cx, "guard", j, &got[j], &want[j], row_tol(cx->row, 0));
  for (int j = 0; j < no; j++) hb_free(&want[j]), hb_free(&got[j]);
  free(bufs);
  free(ptr);
}

/* ---- NaN/Inf planting ---- */

/* Ops whose NaN/Inf results do not depend on the order of evaluation (sums of IEEE values are NaN, +Inf or
   -Inf whatever the order) and moves; max-reductions, softmax, pooling, conv padding and casts are left out. */
static int order_free(evo_op op) {
  switch (op) {
  case EVO_OP_INPUT: case EVO_OP_CONST: case EVO_OP_REDUCE_SUM: case EVO_OP_MATMUL: case EVO_OP_RESHAPE:
  case EVO_OP_TRANSPOSE: case EVO_OP_BROADCAST_TO: case EVO_OP_CONCAT: case EVO_OP_SLICE: case EVO_OP_PAD:
  case EVO_OP_TAKE_ALONG_AXIS:
    return 1;
  default: return op >= EVO_OP_NEG && op <= EVO_OP_CLIP; /* elementwise, compare, where, clip */
  }
}

static void special_values(xcase *cx, const evo_graph *g, const hbuf *x, int n_in) {
  for (int i = 0; i < g->n_nodes; i++)
    if (!order_free(g->nodes[i].op)) return;
  hbuf p[4];
  uint64_t r = mix(g_seed ^ hash_str("special"), (uint64_t)cx->ci);
  const float sv[3] = {NAN, INFINITY, -INFINITY};
  int planted = 0;
  for (int i = 0; i < n_in; i++) { /* one value in five, and at least one per f32 input */
    int64_t n = hb_numel(&x[i]), first = (int64_t)(splitmix(&r) % (uint64_t)(n ? n : 1));
    hb_init(&p[i], x[i].dt, x[i].nd, x[i].s);
    memcpy(p[i].p, x[i].p, (size_t)n * evo_dtype_size(x[i].dt));
    for (int64_t k = 0; x[i].dt == EVO_F32 && k < n; k++)
      if (k == first || splitmix(&r) % 5 == 0) ((float *)p[i].p)[k] = sv[planted++ % 3];
  }
  if (planted) {
    cx->had_special = 1;
    cross(cx, K_SPECIAL, g, p, row_tol(cx->row, 0));
  }
  for (int i = 0; i < n_in; i++) hb_free(&p[i]);
}

/* ---- vmap and gradients ---- */

/* vmap(g) with in_axes 0 or NONE per input; batched inputs are fresh draws of the batched shape. */
static void vmapped(xcase *cx, int check, const evo_graph *g, const hbuf *x, const int *ax, uint64_t salt, double tol) {
  const op_case *c = &cx->row->cases[cx->ci];
  int ni = evo_graph_n_inputs(g);
  uint64_t r = mix(g_seed ^ salt, (uint64_t)cx->ci);
  hbuf b[8];
  evo_graph *vg = evo_vmap(g, BATCH, ax, NULL);
  if (!vg || evo_graph_status(vg) != EVO_STATUS_OK) {
    report(cx, "vmap", "evo_vmap: %s", vg ? evo_graph_error(vg) : evo_last_error());
    evo_graph_free(vg);
    return;
  }
  for (int i = 0; i < ni; i++) {
    if (ax[i] == NONE) {
      b[i] = x[i];
      continue;
    }
    in_spec sp = c->in[i]; /* the graph's inputs are the case's, in order, for the op and for its gradient */
    sp.nd = x[i].nd + 1;
    sp.s[0] = BATCH;
    for (int d = 0; d < x[i].nd; d++) sp.s[d + 1] = x[i].s[d];
    draw(&sp, eff_dom(cx->row, &sp, i), &r, &b[i]);
  }
  cross(cx, check, vg, b, tol);
  for (int i = 0; i < ni; i++)
    if (ax[i] != NONE) hb_free(&b[i]);
  evo_graph_free(vg);
}

static void vmap_modes(xcase *cx, const evo_graph *g, const hbuf *x, int n) {
  int ax[8];
  for (int i = 0; i < n; i++) ax[i] = 0;
  vmapped(cx, K_VMAP, g, x, ax, hash_str("all"), row_tol(cx->row, 0));
  if (n < 2) return;
  for (int i = 1; i < n; i++) ax[i] = NONE;
  vmapped(cx, K_VMAP, g, x, ax, hash_str("first"), row_tol(cx->row, 0));
  for (int i = 0; i < n; i++) ax[i] = i ? 0 : NONE;
  vmapped(cx, K_VMAP, g, x, ax, hash_str("rest"), row_tol(cx->row, 0));
}

/* Second derivatives on both backends: for L = sum(tanh(op(x)) * W) (tanh, so that the upstream gradient depends
   on x too), the HVP h = sum_k sum(grad_k L * V_k) (seeded V_k) differentiated again: the rules of the gradient
   ops (conv2d_grad_*, max_pool2d_grad -> max_pool2d_gather, avg_pool2d_grad) and their kernels. */
static void second_derivatives(xcase *cx, const float *W, int nw, const int *wrt, const hbuf *x, uint64_t *r) {
  const op_case *c = &cx->row->cases[cx->ci];
  evo_graph *gl = evo_graph_new();
  evo_node yl = case_trace(cx->row, c, gl);
  evo_node w = evo_constant(gl, EVO_F32, evo_node_ndim(gl, yl), evo_node_shape(gl, yl), W);
  evo_output(gl, evo_sum(gl, evo_mul(gl, evo_tanh(gl, yl), w), 0, NULL, false));
  evo_graph *gg = evo_graph_status(gl) == EVO_STATUS_OK ? evo_grad(gl, 0, nw, wrt) : NULL;
  evo_graph_free(gl);
  if (!gg || evo_graph_status(gg) != EVO_STATUS_OK) {
    report(cx, "grad", "tanh loss gradient graph: %s", gg ? evo_graph_error(gg) : evo_last_error());
    evo_graph_free(gg);
    return;
  }
  evo_node h = EVO_NODE_INVALID;
  for (int k = 0; k < nw; k++) {
    evo_node gk = evo_graph_output(gg, k);
    int64_t n = shp_numel(evo_node_ndim(gg, gk), evo_node_shape(gg, gk));
    float *V = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t e = 0; e < n; e++) V[e] = (float)uni(r, -1.0, 1.0);
    evo_node v = evo_constant(gg, EVO_F32, evo_node_ndim(gg, gk), evo_node_shape(gg, gk), V);
    free(V);
    evo_node t = evo_sum(gg, evo_mul(gg, gk, v), 0, NULL, false);
    h = k ? evo_add(gg, h, t) : t;
  }
  evo_output(gg, h);
  evo_graph *g2 = evo_grad(gg, evo_graph_n_outputs(gg) - 1, nw, wrt);
  if (!g2 || evo_graph_status(g2) != EVO_STATUS_OK)
    report(cx, "grad", "second-derivative graph: %s", g2 ? evo_graph_error(g2) : evo_last_error());
  else
    cross(cx, K_GRAD, g2, x, row_tol(cx->row, 1));
  evo_graph_free(g2);
  evo_graph_free(gg);
}

static void gradients(xcase *cx, const evo_graph *g, evo_node y, const hbuf *x) {
  const op_row *R = cx->row;
  const op_case *c = &R->cases[cx->ci];
  int wrt[4], nw = 0;
  for (int i = 0; i < c->n_in; i++)
    if (((R->diff >> i) & 1) && c->in[i].dt == EVO_F32 && evo_node_dtype(g, y) == EVO_F32) wrt[nw++] = i;
  if (!nw) return;
  cx->had_grad = 1;
  uint64_t r = mix(g_seed ^ hash_str("W"), (uint64_t)cx->ci);
  int64_t ny = shp_numel(evo_node_ndim(g, y), evo_node_shape(g, y));
  float *W = malloc(sizeof(float) * (size_t)(ny ? ny : 1));
  for (int64_t k = 0; k < ny; k++) W[k] = (float)uni(&r, -1.0, 1.0);
  evo_graph *gl = evo_graph_new();
  evo_node yl = case_trace(R, c, gl);
  evo_node w = evo_constant(gl, EVO_F32, evo_node_ndim(g, y), evo_node_shape(g, y), W);
  evo_output(gl, evo_sum(gl, evo_mul(gl, yl, w), 0, NULL, false));
  evo_graph *gg = evo_graph_status(gl) == EVO_STATUS_OK ? evo_grad(gl, 0, nw, wrt) : NULL;
  if (!gg || evo_graph_status(gg) != EVO_STATUS_OK) {
    report(cx, "grad", "gradient graph: %s", gg ? evo_graph_error(gg) : evo_graph_error(gl));
  } else {
    cross(cx, K_GRAD, gg, x, row_tol(R, 1));
    int ax[4] = {0, 0, 0, 0}; /* per-example gradients */
    vmapped(cx, K_GRAD, gg, x, ax, hash_str("vgrad"), row_tol(R, 1));
    if (R->flags & F_GRAD2) second_derivatives(cx, W, nw, wrt, x, &r);
  }
  evo_graph_free(gg);
  evo_graph_free(gl);
  free(W);
}

/* ---- one case, one row ---- */

static void run_case(xcase *cx) {
  const op_row *R = cx->row;
  const op_case *c = &R->cases[cx->ci];
  case_desc(c, cx->desc, sizeof cx->desc);
  evo_graph *g = evo_graph_new();
  evo_node y = case_trace(R, c, g);
  if (y == EVO_NODE_INVALID || evo_output(g, y) != EVO_STATUS_OK) {
    report(cx, "build", "trace failed: %s", evo_graph_error(g));
    evo_graph_free(g);
    return;
  }
  uint64_t r = mix(g_seed ^ hash_str(R->name), (uint64_t)cx->ci);
  hbuf x[4];
  rt xd[4];
  draw_case(R, c, &r, x, xd); /* away from kinks, as the CPU harness draws them */
  for (int i = 0; i < c->n_in; i++) free(xd[i].v);
  cross(cx, K_VALUE, g, x, row_tol(R, 0));
  guarded_run(cx, g, x);
  special_values(cx, g, x, c->n_in);
  if (!quick) {
    vmap_modes(cx, g, x, c->n_in);
    gradients(cx, g, y, x);
  }
  for (int i = 0; i < c->n_in; i++) hb_free(&x[i]);
  evo_graph_free(g);
}

static void run_row(const op_row *R) {
  NEED_GPU();
  xcase cx = {.row = R};
  for (cx.ci = 0; cx.ci < R->ncases; cx.ci++) run_case(&cx);
  cr_log_info("op %-24s cases %d: %ld value, %ld guard, %ld special, %ld vmap, %ld grad numbers compared", R->name,
              R->ncases, cx.n[K_VALUE], cx.n[K_GUARD], cx.n[K_SPECIAL], cx.n[K_VMAP], cx.n[K_GRAD]);
  cr_assert_eq(cx.nfail, 0, "op %s: %d CUDA/CPU mismatches (seed %llu; rerun with EVOC_TEST_SEED=%llu), details on "
               "stderr", R->name, cx.nfail, (unsigned long long)g_seed, (unsigned long long)g_seed);
  cr_assert_gt(cx.n[K_VALUE], 0, "op %s compared no values", R->name);
  cr_assert_gt(cx.n[K_GUARD], 0, "op %s compared no guarded values", R->name);
  if (cx.had_special) cr_assert_gt(cx.n[K_SPECIAL], 0, "op %s compared no NaN/Inf cases", R->name);
  if (!quick) cr_assert_gt(cx.n[K_VMAP], 0, "op %s compared no vmap results", R->name);
  if (!quick && cx.had_grad) cr_assert_gt(cx.n[K_GRAD], 0, "op %s compared no gradients", R->name);
}

#define OP_ROW(nm, bld, rf, cs, df, ...)                                                                       \
  static const op_row row_##nm = {#nm, bld, rf, cs, (int)(sizeof cs / sizeof cs[0]), df, __VA_ARGS__};       \
  Test(cuda_ops, nm) { run_row(&row_##nm); }

#include "op_table.inc"
#include "op_extra.inc"

/* ================= outside the table ================= */

static evo_tensor *upload(evo_backend *b, int nd, const int64_t *s, const float *v) {
  evo_tensor *t = evo_tensor_from_host(b, EVO_F32, nd, s, v);
  cr_assert_not_null(t, "%s", evo_last_error());
  return t;
}

static float *random_floats(int64_t n, uint64_t salt) {
  uint64_t r = mix(g_seed, salt);
  float *v = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) v[i] = (float)uni(&r, -1.0, 1.0);
  return v;
}

/* A population MLP layer: out0 = sum_j tanh(x @ w + b), out1 = the activations. */
static evo_graph *mlp_graph(int64_t P, int64_t B, int64_t I, int64_t H, const float *bias) {
  evo_graph *g = evo_graph_new();
  evo_node x = evo_input(g, "x", EVO_F32, 3, (int64_t[]){P, B, I});
  evo_node w = evo_input(g, "w", EVO_F32, 3, (int64_t[]){P, I, H});
  evo_node b = evo_constant(g, EVO_F32, 1, &H, bias);
  evo_node h = evo_tanh(g, evo_add(g, evo_matmul(g, x, w), b));
  evo_output(g, evo_sum(g, h, 1, (int[]){2}, false));
  evo_output(g, h);
  cr_assert_eq(evo_graph_status(g), EVO_STATUS_OK, "%s", evo_graph_error(g));
  return g;
}

/* Runs the plan's outputs back to the host and compares them with a CPU evaluation of g on the same values. */
static void expect_cpu_result(const evo_graph *g, evo_tensor *const *out, const float *xv, const float *wv) {
  const evo_node_t *nx = &g->nodes[evo_graph_input(g, 0)], *nw = &g->nodes[evo_graph_input(g, 1)];
  hbuf in[2] = {{EVO_F32, nx->ndim, {0}, (void *)xv}, {EVO_F32, nw->ndim, {0}, (void *)wv}}, want[2];
  memcpy(in[0].s, nx->shape, sizeof nx->shape);
  memcpy(in[1].s, nw->shape, sizeof nw->shape);
  cr_assert_eq(eval_on(cpu, g, in, want), EVO_STATUS_OK, "%s", evo_last_error());
  for (int j = 0; j < 2; j++) {
    int64_t n = hb_numel(&want[j]);
    float *got = malloc(sizeof(float) * (size_t)n);
    cr_assert_eq(evo_tensor_copy_to_host(out[j], got, sizeof(float) * (size_t)n), EVO_STATUS_OK, "%s",
                 evo_last_error());
    for (int64_t i = 0; i < n; i++) {
      float w = ((float *)want[j].p)[i];
      cr_assert(fabsf(got[i] - w) <= 1e-5f * (1 + fabsf(w)), "output %d [%lld]: cuda %.9g, cpu %.9g", j,
                (long long)i, got[i], w);
    }
    free(got);
    hb_free(&want[j]);
  }
}

static void run_plan(evo_plan *p, int times, evo_tensor *x, evo_tensor *w, evo_tensor *const *o) {
  for (int r = 0; r < times; r++)
    cr_assert_eq(evo_plan_run(p, (evo_tensor *[]){x, w}, o), EVO_STATUS_OK, "run %d: %s", r, evo_last_error());
}

/* The first run records the plan into a CUDA Graph; later runs replay it and see new values written into the
   bound tensors; binding other tensors re-records; no run allocates. */
Test(cuda_ops, plan_replays_a_cuda_graph_without_allocating) {
  NEED_GPU();
  const int64_t P = 64, B = 16, I = 5, H = 32;
  float *bias = random_floats(H, 1), *xv = random_floats(P * B * I, 2), *wv = random_floats(P * I * H, 3),
        *xv2 = random_floats(P * B * I, 4);
  evo_graph *g = mlp_graph(P, B, I, H, bias);
  evo_plan *p;
  cr_assert_eq(evo_jit(g, gpu, &p), EVO_STATUS_OK, "%s", evo_last_error());
  evo_tensor *x = upload(gpu, 3, (int64_t[]){P, B, I}, xv), *x2 = upload(gpu, 3, (int64_t[]){P, B, I}, xv2),
             *w = upload(gpu, 3, (int64_t[]){P, I, H}, wv);
  evo_tensor *o[2] = {evo_tensor_new(gpu, EVO_F32, 2, (int64_t[]){P, B}),
                      evo_tensor_new(gpu, EVO_F32, 3, (int64_t[]){P, B, H})};
  cr_assert(o[0] && o[1], "%s", evo_last_error());
  const uint64_t allocs = evo_backend_alloc_count(gpu);
  int rec, launches;

  run_plan(p, 5, x, w, o);
  evo_plan_graph_stats(p, &rec, &launches);
  cr_assert(rec == 1 && launches == 5, "5 runs: %d recordings, %d launches (want 1, 5)", rec, launches);
  expect_cpu_result(g, o, xv, wv);

  /* new values in the same tensors: the replay reads them */
  cr_assert_eq(evo_tensor_copy_from_host(x, xv2, sizeof(float) * (size_t)(P * B * I)), EVO_STATUS_OK);
  run_plan(p, 1, x, w, o);
  expect_cpu_result(g, o, xv2, wv);
  evo_plan_graph_stats(p, &rec, NULL);
  cr_assert_eq(rec, 1, "same tensors re-recorded (%d recordings)", rec);

  /* another input tensor: re-recorded once, then replayed */
  cr_assert_eq(evo_tensor_copy_from_host(x, xv, sizeof(float) * (size_t)(P * B * I)), EVO_STATUS_OK);
  run_plan(p, 2, x2, w, o);
  evo_plan_graph_stats(p, &rec, &launches);
  cr_assert(rec == 2 && launches == 8, "after rebinding: %d recordings, %d launches (want 2, 8)", rec, launches);
  expect_cpu_result(g, o, xv2, wv);
  run_plan(p, 1, x, w, o);
  expect_cpu_result(g, o, xv, wv);

  cr_assert_eq(evo_backend_alloc_count(gpu), allocs, "plan_run allocated %llu buffers",
               (unsigned long long)(evo_backend_alloc_count(gpu) - allocs));
  cr_assert_gt(evo_plan_peak_bytes(p), 0);
  cr_log_info("plan: %d kernels, peak %zu bytes (%zu without reuse)", evo_plan_n_kernels(p), evo_plan_peak_bytes(p),
              evo_plan_naive_bytes(p));
  evo_tensor_free(o[0]), evo_tensor_free(o[1]), evo_tensor_free(x), evo_tensor_free(x2), evo_tensor_free(w);
  evo_plan_free(p);
  evo_graph_free(g);
  free(bias), free(xv), free(wv), free(xv2);
}

/* The CPU path is unchanged: no graph hooks, nothing recorded, plans run directly. Runs without a GPU too. */
Test(cuda_ops, cpu_plans_run_without_recording) {
  float *bias = random_floats(8, 5), *xv = random_floats(2 * 3 * 4, 6), *wv = random_floats(2 * 4 * 8, 7);
  evo_graph *g = mlp_graph(2, 3, 4, 8, bias);
  evo_plan *p;
  cr_assert_eq(evo_jit(g, cpu, &p), EVO_STATUS_OK, "%s", evo_last_error());
  evo_tensor *x = upload(cpu, 3, (int64_t[]){2, 3, 4}, xv), *w = upload(cpu, 3, (int64_t[]){2, 4, 8}, wv);
  evo_tensor *o[2] = {evo_tensor_new(cpu, EVO_F32, 2, (int64_t[]){2, 3}),
                      evo_tensor_new(cpu, EVO_F32, 3, (int64_t[]){2, 3, 8})};
  const uint64_t allocs = evo_backend_alloc_count(cpu);
  run_plan(p, 3, x, w, o);
  int rec = -1, launches = -1;
  evo_plan_graph_stats(p, &rec, &launches);
  cr_assert(rec == 0 && launches == 0, "cpu plan recorded %d graphs, launched %d", rec, launches);
  cr_assert_eq(evo_backend_alloc_count(cpu), allocs);
  cr_assert_null(evo_backend_stream(cpu));
  cr_assert(evo_backend_is_host(cpu));
  const float *s = evo_tensor_data_const(o[0]), *h = evo_tensor_data_const(o[1]);
  for (int i = 0; i < 2 * 3; i++) { /* output 0 is the row sum of output 1 */
    float t = 0;
    for (int k = 0; k < 8; k++) t += h[i * 8 + k];
    cr_assert(fabsf(t - s[i]) <= 1e-5f, "row %d: %g vs %g", i, t, s[i]);
  }
  evo_tensor_free(o[0]), evo_tensor_free(o[1]), evo_tensor_free(x), evo_tensor_free(w);
  evo_plan_free(p);
  evo_graph_free(g);
  free(bias), free(xv), free(wv);
}

/* Asking for more device memory than exists is a status with a message, and the backend keeps working. */
Test(cuda_ops, out_of_memory_is_a_status) {
  NEED_GPU();
  const int64_t huge[2] = {(int64_t)1 << 18, (int64_t)1 << 20}; /* 2^38 floats: 1 TiB per intermediate */
  evo_graph *g = evo_graph_new();
  evo_output(g, evo_tanh(g, evo_tanh(g, evo_input(g, "x", EVO_F32, 2, huge))));
  evo_plan *p = (evo_plan *)&p;
  evo_status st = evo_jit(g, gpu, &p);
  cr_assert_eq(st, EVO_STATUS_OUT_OF_MEMORY, "jit of a 2 TiB arena: %s (%s)", evo_status_str(st), evo_last_error());
  cr_assert_null(p);
  cr_assert(strstr(evo_last_error(), "arena"), "message: %s", evo_last_error());
  evo_graph_free(g);
  cr_assert_null(evo_tensor_new(gpu, EVO_F32, 2, huge));
  cr_assert(strstr(evo_last_error(), "cannot allocate"), "message: %s", evo_last_error());

  /* no error is left behind for the next kernel launch to report */
  float *bias = random_floats(8, 8), *xv = random_floats(4 * 2 * 3, 9), *wv = random_floats(4 * 3 * 8, 10);
  g = mlp_graph(4, 2, 3, 8, bias);
  evo_tensor *x = upload(gpu, 3, (int64_t[]){4, 2, 3}, xv), *w = upload(gpu, 3, (int64_t[]){4, 3, 8}, wv);
  evo_tensor *o[2] = {evo_tensor_new(gpu, EVO_F32, 2, (int64_t[]){4, 2}),
                      evo_tensor_new(gpu, EVO_F32, 3, (int64_t[]){4, 2, 8})};
  cr_assert_eq(evo_eval(g, gpu, (evo_tensor *[]){x, w}, o), EVO_STATUS_OK, "after OOM: %s", evo_last_error());
  expect_cpu_result(g, o, xv, wv);
  evo_tensor_free(o[0]), evo_tensor_free(o[1]), evo_tensor_free(x), evo_tensor_free(w);
  evo_graph_free(g);
  free(bias), free(xv), free(wv);
}

/* Units in the last place between two floats of the same sign (a large number when the signs differ). */
static int64_t ulps(float a, float b) {
  int32_t ia, ib;
  memcpy(&ia, &a, 4);
  memcpy(&ib, &b, 4);
  if ((ia < 0) != (ib < 0)) return a == b ? 0 : INT32_MAX;
  return llabs((long long)ia - (long long)ib);
}

/* The RNG ops on CUDA draw the CPU's streams: uniform(0, 1) bit for bit (it is the top 24 bits of each raw
   Philox word, so this checks the raw stream against the CPU and against evo_rng_uniform01), the other
   transforms within the documented tolerance; the worst differences are logged. Keys with loop dims, an odd
   count (partial Philox blocks) and a one-sided truncation. */
Test(cuda_ops, rng_streams_match_the_cpu) {
  NEED_GPU();
  const int64_t n = (1 << 16) + 3, nk = 3;
  evo_key keys[3];
  evo_key_split(evo_key_from_seed(g_seed), (int)nk, keys);
  evo_graph *g = evo_graph_new();
  evo_node k = evo_input(g, "k", EVO_U32, 2, (int64_t[]){nk, 2});
  evo_output(g, evo_random_uniform(g, k, 1, &n, 0.0f, 1.0f));
  evo_output(g, evo_random_uniform(g, k, 1, &n, -3.0f, 5.0f));
  evo_output(g, evo_random_normal(g, k, 1, &n));
  evo_output(g, evo_random_truncated_normal(g, k, 1, &n, -1.5f, 2.5f));
  evo_output(g, evo_random_truncated_normal(g, k, 1, &n, 0.5f, 3.0f));
  hbuf in = {EVO_U32, 2, {nk, 2}, keys}, want[5], got[5];
  cr_assert_eq(eval_on(cpu, g, &in, want), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(eval_on(gpu, g, &in, got), EVO_STATUS_OK, "%s", evo_last_error());
  const char *names[5] = {"uniform(0,1)", "uniform(-3,5)", "normal", "truncated(-1.5,2.5)", "truncated(0.5,3)"};
  const float lo[5] = {0, -3, -INFINITY, -1.5f, 0.5f}, hi[5] = {1, 5, INFINITY, 2.5f, 3.0f};
  for (int j = 0; j < 5; j++) {
    const float *c = want[j].p, *d = got[j].p;
    int64_t worst_ulps = 0;
    double worst_abs = 0;
    for (int64_t i = 0; i < nk * n; i++) {
      cr_assert(d[i] >= lo[j] && d[i] <= hi[j] && (j > 1 || d[i] < hi[j]), "%s [%lld] = %.9g out of range",
                names[j], (long long)i, d[i]);
      double diff = fabs((double)d[i] - c[i]);
      worst_abs = fmax(worst_abs, diff);
      if (ulps(d[i], c[i]) > worst_ulps) worst_ulps = ulps(d[i], c[i]);
      if (j == 0) {
        cr_assert_eq(d[i], c[i], "uniform(0,1) [%lld]: cuda %.9g, cpu %.9g", (long long)i, d[i], c[i]);
        float h = evo_rng_uniform01(keys[i / n].w, (uint64_t)(i % n));
        cr_assert_eq(d[i], h, "uniform(0,1) [%lld]: cuda %.9g, evo_rng_uniform01 %.9g", (long long)i, d[i], h);
      } else if (j == 1) {
        cr_assert(ulps(d[i], c[i]) <= 1 || diff <= 5.0 * FLT_EPSILON, "uniform(-3,5) [%lld]: cuda %.9g, cpu %.9g",
                  (long long)i, d[i], c[i]);
      } else {
        cr_assert(diff <= RNG_ATOL + RNG_RTOL * fabs(c[i]), "%s [%lld]: cuda %.9g, cpu %.9g (%lld ulps)", names[j],
                  (long long)i, d[i], c[i], (long long)ulps(d[i], c[i]));
      }
    }
    cr_log_info("rng %-20s %lld draws: max |cuda - cpu| %.3g, max %lld ulps", names[j], (long long)(nk * n),
                worst_abs, (long long)worst_ulps);
    hb_free(&want[j]);
    hb_free(&got[j]);
  }
  evo_graph_free(g);
}
