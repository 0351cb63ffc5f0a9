/* The table-driven op harness (DESIGN.md §3, §9). One row per public op builder (tests/op_table.inc), each with a
   list of shape cases (broadcasting, leading loop dims, size-1 dims, axis lists, 1-D matmul operands, SAME/VALID
   and strided conv/pooling, ...), a value domain per input, a double-precision reference (tests/op_ref.inc) and the
   differentiable inputs. For every case the harness checks:
     value  evo_eval on the CPU backend against the double reference (relative + absolute tolerance per op);
     vmap   evo_vmap'd graph (batch 3) against a loop of unbatched runs: all inputs batched, every proper subset
            batched with the rest shared, and one in_axes/out_axes != 0 variant;
     grad   evo_grad (evo_value_and_grad on odd cases) of loss = sum(op(x) * W), W fixed random, against the central
            finite difference of the double reference loss (step 1e-6) for every differentiable f32 input; inputs
            are drawn away from kinks (relu/abs at 0, clip bounds, max/min ties, distinct values for max/argmax/
            max_pool) so the finite difference is well defined;
     vgrad  (the row's case with the largest differentiable inputs) vmap of the gradient graph against a loop of
            per-example gradients.
   Every row must compare numbers in each applicable check; a row that compared nothing fails.
   Seeded: EVOC_TEST_SEED=<n> overrides the default seed; every failure line prints the seed, op, case, check,
   index and the expected/got values. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/backend.h"
#include "evoc/graph.h"
#include "evoc/jit.h"
#include "evoc/rng.h"
#include "evoc/transform.h"

#include "op_ref.inc"
#include "op_harness.inc"

#define NONE EVO_VMAP_NONE
#define BATCH 3
#define FD_SAMPLES 48 /* finite differences on at most this many elements of a large input */
#define DEFAULT_SEED 20240611ull

static evo_backend *be;
static uint64_t g_seed;

static void setup(void) {
  be = evo_backend_cpu_new(NULL);
  const char *e = getenv("EVOC_TEST_SEED");
  g_seed = e && *e ? strtoull(e, NULL, 0) : DEFAULT_SEED;
}
static void teardown(void) { evo_backend_free(be); }
TestSuite(ops, .init = setup, .fini = teardown);

/* ---- failure accounting ---- */

typedef struct {
  const op_row *row;
  int ci;
  uint64_t seed;
  int nfail, vgrad_case; /* vgrad_case: the case whose gradient graph is also vmapped (largest inputs) */
  long n_value, n_vmap, n_grad, n_vgrad;
  char desc[200];
} ctx_t;

static void fail(ctx_t *cx, const char *check, const char *fmt, ...) {
  cx->nfail++;
  if (cx->nfail > 40) return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "[test_ops] FAIL seed=%llu op=%s case=%d (%s) check=%s: %s\n", (unsigned long long)g_seed,
          cx->row->name, cx->ci, cx->desc, check, msg);
}

/* ---- evaluation ---- */

static evo_status eval(const evo_graph *g, const hbuf *in, hbuf *out) { return eval_on(be, g, in, out); }

/* ---- comparisons ---- */

/* got vs want (same numel): |got - want| <= atol + rtol |want|, or exact for integer dtypes / exact != 0. NaN in
   want marks an entry that is not checked (finite differences on a sample). Returns the number compared. */
static long compare(ctx_t *cx, const char *check, const hbuf *got, const double *want, double rtol, double atol,
                    int exact, const char *where) {
  int64_t n = hb_numel(got);
  long compared = 0;
  int printed = 0;
  if (got->dt != EVO_F32) exact = 1;
  for (int64_t i = 0; i < n; i++) {
    double g = hb_get(got, i), w = want[i];
    if (w != w) continue; /* not sampled */
    compared++;
    int ok = exact ? (g == w) : (fabs(g - w) <= atol + rtol * fabs(w));
    if (!ok || g != g) {
      if (printed++ < 3) {
        int64_t idx[EVO_MAX_DIMS];
        char is[96];
        unravel(i, got->nd, got->s, idx);
        int k = snprintf(is, sizeof is, "[");
        for (int d = 0; d < got->nd; d++) k += snprintf(is + k, sizeof is - (size_t)k, d ? ",%lld" : "%lld", (long long)idx[d]);
        snprintf(is + k, sizeof is - (size_t)k, "]");
        fail(cx, check, "%s index %s: expected %.9g, got %.9g (|diff| %.3g, tol %s)", where, is, w, g, fabs(g - w),
             exact ? "exact" : "rel+abs");
      } else {
        cx->nfail++;
      }
    }
  }
  return compared;
}

static int same_shape(int na, const int64_t *a, int nb, const int64_t *b) {
  if (na != nb) return 0;
  for (int d = 0; d < na; d++)
    if (a[d] != b[d]) return 0;
  return 1;
}

/* ---- vmap: stack per-example buffers along an axis, and take one slice back ---- */

static void stack(const hbuf *parts, int B, int ax, hbuf *out) {
  const hbuf *p = &parts[0];
  size_t es = evo_dtype_size(p->dt);
  int64_t s[EVO_MAX_DIMS], outer = 1, inner = 1;
  for (int d = 0, k = 0; d <= p->nd; d++) s[d] = d == ax ? B : p->s[k++];
  for (int d = 0; d < ax; d++) outer *= p->s[d];
  for (int d = ax; d < p->nd; d++) inner *= p->s[d];
  hb_init(out, p->dt, p->nd + 1, s);
  for (int64_t o = 0; o < outer; o++)
    for (int b = 0; b < B; b++)
      memcpy((char *)out->p + (size_t)((o * B + b) * inner) * es, (const char *)parts[b].p + (size_t)(o * inner) * es,
             (size_t)inner * es);
}
static void unstack(const hbuf *v, int ax, int b, hbuf *out) {
  size_t es = evo_dtype_size(v->dt);
  int64_t s[EVO_MAX_DIMS], outer = 1, inner = 1, B = v->s[ax];
  for (int d = 0, k = 0; d < v->nd; d++)
    if (d != ax) s[k++] = v->s[d];
  for (int d = 0; d < ax; d++) outer *= v->s[d];
  for (int d = ax + 1; d < v->nd; d++) inner *= v->s[d];
  hb_init(out, v->dt, v->nd - 1, s);
  for (int64_t o = 0; o < outer; o++)
    memcpy((char *)out->p + (size_t)(o * inner) * es, (const char *)v->p + (size_t)((o * B + b) * inner) * es,
           (size_t)inner * es);
}

/* vmap(g) over BATCH with in_axes (NONE = shared) and every output at out_axis, against a loop of g on slices.
   x0: the case's inputs (shared inputs use them; batched inputs get BATCH fresh draws). */
static void check_vmap(ctx_t *cx, const evo_graph *g, const hbuf *x0, const int *in_axes, int out_axis,
                       const char *mode, long *counter) {
  const op_row *R = cx->row;
  const op_case *c = &R->cases[cx->ci];
  int ni = evo_graph_n_inputs(g), no = evo_graph_n_outputs(g);
  char check[96];
  snprintf(check, sizeof check, "%s %s", counter == &cx->n_vgrad ? "vgrad" : "vmap", mode);
  uint64_t r = mix(cx->seed ^ hash_str(check), (uint64_t)cx->ci);
  hbuf parts[8][BATCH], ex[8], bin[8], outs[BATCH][8], vout[8];
  memset(outs, 0, sizeof outs);
  memset(vout, 0, sizeof vout);
  int out_axes[8];
  for (int j = 0; j < no; j++) {
    int ond = evo_node_ndim(g, evo_graph_output(g, j));
    out_axes[j] = out_axis < 0 ? out_axis : (out_axis > ond ? ond : out_axis);
  }
  for (int i = 0; i < ni; i++) {
    if (in_axes[i] == NONE) continue;
    for (int b = 0; b < BATCH; b++) draw(&c->in[i], eff_dom(R, &c->in[i], i), &r, &parts[i][b]);
    int ax = in_axes[i] < 0 ? in_axes[i] + c->in[i].nd + 1 : in_axes[i];
    stack(parts[i], BATCH, ax, &bin[i]);
  }
  int ok = 1;
  for (int b = 0; b < BATCH && ok; b++) {
    for (int i = 0; i < ni; i++) ex[i] = in_axes[i] == NONE ? x0[i] : parts[i][b];
    evo_status st = eval(g, ex, outs[b]);
    if (st != EVO_STATUS_OK) fail(cx, check, "unbatched eval: %s: %s", evo_status_str(st), evo_last_error()), ok = 0;
  }
  evo_graph *vg = ok ? evo_vmap(g, BATCH, in_axes, out_axes) : NULL;
  if (ok && !vg) fail(cx, check, "evo_vmap returned NULL: %s", evo_last_error()), ok = 0;
  if (ok && evo_graph_status(vg) != EVO_STATUS_OK) fail(cx, check, "evo_vmap: %s", evo_graph_error(vg)), ok = 0;
  if (ok) {
    for (int i = 0; i < ni; i++) {
      if (in_axes[i] == NONE) bin[i] = x0[i];
      evo_node xi = evo_graph_input(vg, i);
      if (!same_shape(evo_node_ndim(vg, xi), evo_node_shape(vg, xi), bin[i].nd, bin[i].s)) {
        char a[64];
        shape_str(a, sizeof a, bin[i].dt, bin[i].nd, bin[i].s);
        fail(cx, check, "vmapped input %d does not have the batched shape %s", i, a), ok = 0;
      }
    }
  }
  evo_status st = ok ? eval(vg, bin, vout) : EVO_STATUS_OK;
  if (ok && st != EVO_STATUS_OK) fail(cx, check, "vmapped eval: %s: %s", evo_status_str(st), evo_last_error()), ok = 0;
  for (int j = 0; ok && j < no; j++) {
    int ax = out_axes[j] < 0 ? out_axes[j] + vout[j].nd : out_axes[j];
    if (vout[j].nd != outs[0][j].nd + 1 || ax < 0 || ax >= vout[j].nd || vout[j].s[ax] != BATCH) {
      fail(cx, check, "output %d: batched rank %d vs per-example rank %d", j, vout[j].nd, outs[0][j].nd);
      continue;
    }
    for (int b = 0; b < BATCH; b++) {
      hbuf sl;
      unstack(&vout[j], ax, b, &sl);
      if (!same_shape(sl.nd, sl.s, outs[b][j].nd, outs[b][j].s)) {
        fail(cx, check, "output %d: slice shape differs from the per-example shape", j);
      } else {
        int64_t n = hb_numel(&sl);
        double *want = malloc(sizeof(double) * (size_t)(n ? n : 1)), scale = 0;
        for (int64_t k = 0; k < n; k++) want[k] = hb_get(&outs[b][j], k), scale = fmax(scale, fabs(want[k]));
        char where[48];
        snprintf(where, sizeof where, "output %d member %d", j, b);
        *counter += compare(cx, check, &sl, want, 1e-5, 1e-5 * scale + 1e-6, R->flags & F_VM_EXACT, where);
        free(want);
      }
      hb_free(&sl);
    }
  }
  for (int j = 0; j < no; j++) hb_free(&vout[j]);
  evo_graph_free(vg);
  for (int i = 0; i < ni; i++) {
    if (in_axes[i] == NONE) continue;
    for (int b = 0; b < BATCH; b++) hb_free(&parts[i][b]);
    hb_free(&bin[i]);
  }
  for (int b = 0; b < BATCH; b++)
    for (int j = 0; j < no; j++) hb_free(&outs[b][j]);
}

static void vmap_modes(ctx_t *cx, const evo_graph *g, const hbuf *x) {
  const op_case *c = &cx->row->cases[cx->ci];
  int n = c->n_in, ax[8];
  char mode[64];
  for (int i = 0; i < n; i++) ax[i] = 0;
  check_vmap(cx, g, x, ax, 0, "all batched", &cx->n_vmap);
  for (unsigned m = 1; n >= 2 && m + 1 < (1u << n); m++) { /* every proper nonempty subset batched */
    int k = snprintf(mode, sizeof mode, "batched {");
    for (int i = 0; i < n; i++) {
      ax[i] = (m >> i) & 1 ? 0 : NONE;
      if (ax[i] == 0) k += snprintf(mode + k, sizeof mode - (size_t)k, " %d", i);
    }
    snprintf(mode + k, sizeof mode - (size_t)k, " }, rest shared");
    check_vmap(cx, g, x, ax, 0, mode, &cx->n_vmap);
  }
  if (c->in[0].nd >= 1) { /* batch inside input 0, batch out at a non-zero axis */
    for (int i = 0; i < n; i++) ax[i] = 0;
    ax[0] = cx->ci % 2 ? -1 : 1;
    int oa = cx->ci % 2 ? 1 : -1;
    snprintf(mode, sizeof mode, "in_axes[0]=%d out_axes=%d", ax[0], oa);
    check_vmap(cx, g, x, ax, oa, mode, &cx->n_vmap);
  }
}

/* ---- gradient ---- */

static double ref_loss(const op_row *R, const op_case *c, const rt *xd, const float *W) {
  rt y = {0};
  R->ref(c, xd, &y);
  double L = 0;
  for (int64_t i = 0; y.v && i < rt_numel(&y); i++) L += y.v[i] * (double)W[i];
  free(y.v);
  return L;
}

static void check_grad(ctx_t *cx, const hbuf *x, rt *xd, const rt *ref, evo_dtype out_dt) {
  const op_row *R = cx->row;
  const op_case *c = &R->cases[cx->ci];
  int wrt[4], nw = 0;
  for (int i = 0; i < c->n_in; i++)
    if (((R->diff >> i) & 1) && c->in[i].dt == EVO_F32 && out_dt == EVO_F32) wrt[nw++] = i;
  if (!nw) return;
  uint64_t r = mix(cx->seed, 77);
  int64_t ny = rt_numel(ref);
  float *W = malloc(sizeof(float) * (size_t)(ny ? ny : 1));
  double L0 = 0, Labs = 0;
  for (int64_t k = 0; k < ny; k++) {
    W[k] = (float)uni(&r, -1.0, 1.0);
    L0 += ref->v[k] * W[k], Labs += fabs(ref->v[k] * W[k]);
  }
  evo_graph *gl = evo_graph_new();
  evo_node y = case_trace(R, c, gl);
  evo_node w = evo_constant(gl, EVO_F32, ref->nd, ref->s, W);
  evo_output(gl, evo_sum(gl, evo_mul(gl, y, w), 0, NULL, false));
  int use_vg = cx->ci % 2;
  evo_graph *gg = evo_graph_status(gl) != EVO_STATUS_OK ? NULL
                  : use_vg                              ? evo_value_and_grad(gl, 0, nw, wrt)
                                                        : evo_grad(gl, 0, nw, wrt);
  const char *ck = use_vg ? "grad (value_and_grad)" : "grad";
  hbuf outs[8];
  memset(outs, 0, sizeof outs);
  if (evo_graph_status(gl) != EVO_STATUS_OK) {
    fail(cx, ck, "loss graph: %s", evo_graph_error(gl));
  } else if (!gg) {
    fail(cx, ck, "evo_grad returned NULL: %s", evo_last_error());
  } else if (evo_graph_status(gg) != EVO_STATUS_OK) {
    fail(cx, ck, "gradient graph: %s", evo_graph_error(gg));
  } else if (evo_graph_n_outputs(gg) != nw + use_vg || evo_graph_n_inputs(gg) != c->n_in) {
    fail(cx, ck, "gradient graph has %d inputs and %d outputs, expected %d and %d", evo_graph_n_inputs(gg),
         evo_graph_n_outputs(gg), c->n_in, nw + use_vg);
  } else {
    evo_status st = eval(gg, x, outs);
    if (st != EVO_STATUS_OK) {
      fail(cx, ck, "eval of the gradient graph: %s: %s", evo_status_str(st), evo_last_error());
    } else if (use_vg && hb_numel(&outs[0]) != 1) {
      fail(cx, ck, "value_and_grad: output 0 has %lld elements", (long long)hb_numel(&outs[0]));
    } else {
      if (use_vg) cx->n_grad += compare(cx, ck, &outs[0], &L0, 0, 1e-5 * Labs + 1e-6, 0, "loss value");
      for (int q = 0; q < nw; q++) {
        int i = wrt[q];
        const hbuf *gq = &outs[q + use_vg];
        if (!same_shape(gq->nd, gq->s, x[i].nd, x[i].s)) {
          fail(cx, ck, "gradient %d does not have the shape of input %d", q, i);
          continue;
        }
        int64_t n = rt_numel(&xd[i]);
        double *fd = malloc(sizeof(double) * (size_t)(n ? n : 1)), mx = 0, h = 1e-6;
        /* every element of small inputs; FD_SAMPLES random ones (first and last included) of large inputs */
        for (int64_t k = 0; k < n; k++) fd[k] = n <= FD_SAMPLES || k == 0 || k == n - 1 ? 0.0 : NAN;
        for (int s = 0; n > FD_SAMPLES && s < FD_SAMPLES; s++) fd[splitmix(&r) % (uint64_t)n] = 0.0;
        for (int64_t k = 0; k < n; k++) {
          if (fd[k] != fd[k]) continue;
          double v = xd[i].v[k];
          xd[i].v[k] = v + h;
          double lp = ref_loss(R, c, xd, W);
          xd[i].v[k] = v - h;
          double lm = ref_loss(R, c, xd, W);
          xd[i].v[k] = v;
          if (lp != lp || lm != lm) fail(cx, ck, "reference loss is NaN at input %d element %lld", i, (long long)k);
          fd[k] = (R->flags & F_GRAD_ZERO) ? 0.0 : (lp - lm) / (2 * h);
          mx = fmax(mx, fabs(fd[k]));
        }
        char where[48];
        snprintf(where, sizeof where, "d loss / d input %d", i);
        double grtol = R->grtol > 0 ? R->grtol : 1e-3;
        cx->n_grad += compare(cx, ck, gq, fd, 0, grtol * mx + 1e-5, 0, where);
        free(fd);
      }
      if (cx->ci == cx->vgrad_case) { /* per-example gradients: vmap of the gradient graph */
        int ax[4] = {0, 0, 0, 0};
        check_vmap(cx, gg, x, ax, 0, "grad graph, all batched", &cx->n_vgrad);
      }
    }
  }
  for (int j = 0; j < 8; j++) hb_free(&outs[j]);
  evo_graph_free(gg);
  evo_graph_free(gl);
  free(W);
}

/* ---- one case, one row ---- */

static void run_case(ctx_t *cx) {
  const op_row *R = cx->row;
  const op_case *c = &R->cases[cx->ci];
  case_desc(c, cx->desc, sizeof cx->desc);
  evo_graph *g = evo_graph_new();
  evo_node y = case_trace(R, c, g);
  if (y == EVO_NODE_INVALID || evo_graph_status(g) != EVO_STATUS_OK || evo_output(g, y) != EVO_STATUS_OK) {
    fail(cx, "build", "trace failed: %s", evo_graph_error(g));
    evo_graph_free(g);
    return;
  }
  uint64_t r = mix(cx->seed, (uint64_t)cx->ci);
  hbuf x[4];
  rt xd[4];
  draw_case(R, c, &r, x, xd);
  rt ref = {0};
  R->ref(c, xd, &ref);
  const int64_t *ys = evo_node_shape(g, y);
  int ynd = evo_node_ndim(g, y);
  char a[64], b[64];
  shape_str(a, sizeof a, evo_node_dtype(g, y), ynd, ys);
  int ref_nan = 0;
  for (int64_t i = 0; ref.v && i < rt_numel(&ref); i++) ref_nan |= ref.v[i] != ref.v[i];
  if (!ref.v) {
    fail(cx, "shape", "the reference rejects these shapes but the graph gives %s", a);
  } else if (ref_nan) {
    fail(cx, "value", "the reference produced NaN (test bug: input domain)");
  } else if (!same_shape(ynd, ys, ref.nd, ref.s)) {
    shape_str(b, sizeof b, evo_node_dtype(g, y), ref.nd, ref.s);
    fail(cx, "shape", "graph output %s, reference %s", a, b);
  } else {
    hbuf out;
    evo_status st = eval(g, x, &out);
    if (st != EVO_STATUS_OK) {
      fail(cx, "value", "evo_eval: %s: %s", evo_status_str(st), evo_last_error());
      hb_free(&out);
    } else {
      double rtol = R->rtol > 0 ? R->rtol : 1e-5, atol = R->atol > 0 ? R->atol : 1e-6, scale = 0;
      for (int64_t i = 0; i < rt_numel(&ref); i++) scale = fmax(scale, fabs(ref.v[i]));
      /* atol is relative to the output's magnitude: sums may cancel to values far below their terms */
      cx->n_value += compare(cx, "value", &out, ref.v, rtol, atol * (1 + scale), R->flags & F_EXACT, "output");
      hb_free(&out);
    }
    vmap_modes(cx, g, x);
    check_grad(cx, x, xd, &ref, evo_node_dtype(g, y));
  }
  free(ref.v);
  for (int i = 0; i < c->n_in; i++) hb_free(&x[i]), free(xd[i].v);
  evo_graph_free(g);
}

/* The case with the most differentiable input elements (f32 inputs of an op with an f32 output), or -1. */
static int largest_grad_case(const op_row *R) {
  int best = -1;
  int64_t bn = 0;
  for (int ci = 0; ci < R->ncases; ci++) {
    const op_case *c = &R->cases[ci];
    evo_graph *g = evo_graph_new();
    evo_node y = case_trace(R, c, g);
    int f32_out = y != EVO_NODE_INVALID && evo_node_dtype(g, y) == EVO_F32;
    evo_graph_free(g);
    if (!f32_out) continue;
    int64_t n = 0;
    for (int i = 0; i < c->n_in; i++)
      if (((R->diff >> i) & 1) && c->in[i].dt == EVO_F32) n += shp_numel(c->in[i].nd, c->in[i].s);
    if (n > bn) bn = n, best = ci;
  }
  return best;
}

static void run_row(const op_row *R) {
  ctx_t cx = {.row = R, .seed = mix(g_seed, hash_str(R->name)), .vgrad_case = largest_grad_case(R)};
  for (cx.ci = 0; cx.ci < R->ncases; cx.ci++) run_case(&cx);
  cr_log_info("op %-22s cases %d: %ld values, %ld vmap, %ld grad, %ld vmap-of-grad numbers compared", R->name,
              R->ncases, cx.n_value, cx.n_vmap, cx.n_grad, cx.n_vgrad);
  cr_assert_eq(cx.nfail, 0, "op %s: %d mismatches (seed %llu; rerun with EVOC_TEST_SEED=%llu), details on stderr",
               R->name, cx.nfail, (unsigned long long)g_seed, (unsigned long long)g_seed);
  cr_assert_gt(cx.n_value, 0, "op %s compared no values", R->name);
  cr_assert_gt(cx.n_vmap, 0, "op %s compared no vmap results", R->name);
  if (cx.vgrad_case >= 0) {
    cr_assert_gt(cx.n_grad, 0, "op %s compared no gradients", R->name);
    cr_assert_gt(cx.n_vgrad, 0, "op %s compared no per-example gradients", R->name);
  }
}

#define OP_ROW(nm, bld, rf, cs, df, ...)                                                                       \
  static const op_row row_##nm = {#nm, bld, rf, cs, (int)(sizeof cs / sizeof cs[0]), df, __VA_ARGS__};       \
  Test(ops, nm) { run_row(&row_##nm); }

#include "op_table.inc"
#include "op_extra.inc"
