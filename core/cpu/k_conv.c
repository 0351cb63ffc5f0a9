/* CONV2D, CONV2D_GRAD_INPUT and CONV2D_GRAD_KERNEL on the CPU (NHWC, f32).
   All three are implicit GEMMs on the shared tile kernels (gemm.h), reading a "view" of the input image through a
   table of tap offsets instead of an im2col copy (KH*KW times smaller traffic):
   - forward: one GEMM per piece of output rows: [pixels, KH*KW*C taps] @ w [KH*KW*C, F], A read from the view
     through a table of pixel offsets (ro) and one of tap offsets (po). The view is the image itself (no padding)
     or a zero-padded copy of the rows the piece needs.
   - grad_input is the forward conv of the zero-padded, stride-dilated gy with the flipped, transposed kernel
     (stride 1), so it reuses the forward path without scatter-adds or races.
   - grad_kernel: dw [KH*KW*C, F] += taps [KH*KW*C, pixels] @ gy [pixels, F] with the same tables in the other
     roles (rows = taps, columns of A = pixels), summed over every image (and broadcast loop position) that shares
     the kernel; with fewer kernels than threads the sum is split across threads into partial buffers and reduced
     at the end.
   Loop dims broadcast: images against one kernel, per-member kernels, or shared images against per-member kernels
   (then one padded view serves every member in turn). */
#include <omp.h>
#include <string.h>
#include "cpu_kernels.h"
#include "gemm.h"

#define VIEW_MAX_FLOATS ((int64_t)64 * 1024) /* a view piece (256 KiB) stays in L2 while its rows are used */

typedef struct {
  /* the engine: out[r, q, co] = sum_{a,b,ci} view[r*sh + a, q*sw + b, ci] * ker[(a,b,ci), co] */
  int64_t kh, kw, cin, cout, sh, sw, oh, ow, kkc;
  /* the view: zero-padded (grad_input: also stride-dilated) source image; src(y, x) lands at view row
     pu + y*du, column pv + x*dv */
  int64_t src_h, src_w, pu, pv, du, dv, vw;
  int direct; /* no padding: the source is read in place */
  int64_t rb; /* output rows per piece of work */
  evo_cpu_loops lp;
  int64_t img_in, img_out, ker_size; /* floats per source image, output image, kernel */
  int64_t J, S, parts;               /* grad ops: outputs, contributions to each, split of the sum */
  int nt;
  size_t view_floats, wf_floats, ro_count;
  size_t shared_bytes, thread_bytes;
} conv_plan;

static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

static int64_t view_rows(const conv_plan *p, int64_t rows) { return (rows - 1) * p->sh + p->kh; }

/* Everything but the thread split; false if the shapes are inconsistent. */
static int conv_plan_init(conv_plan *p, const evo_node_t *node, const evo_node_t *const *in, int nt) {
  memset(p, 0, sizeof *p);
  const int32_t *pi = node->p.i;
  const evo_node_t *a = in[0], *b = in[1];
  const int64_t sh = pi[0], sw = pi[1], pt = pi[2], pl = pi[3], pb = pi[4], pr = pi[5];
  if (sh < 1 || sw < 1 || pt < 0 || pl < 0 || pb < 0 || pr < 0) return 0;
  int64_t H, W, C, KH, KW, F, OH, OW;
  const int64_t *ns = node->shape + node->ndim;
  if (node->op == EVO_OP_CONV2D) { /* (x, w) -> y */
    if (a->ndim < 3 || b->ndim < 4 || node->ndim < 3) return 0;
    const int64_t *xs = a->shape + a->ndim - 3, *ws = b->shape + b->ndim - 4;
    H = xs[0], W = xs[1], C = xs[2], KH = ws[0], KW = ws[1], F = ws[3], OH = ns[-3], OW = ns[-2];
    if (ws[2] != C || ns[-1] != F) return 0;
  } else if (node->op == EVO_OP_CONV2D_GRAD_INPUT) { /* (gy, w) -> dx */
    if (a->ndim < 3 || b->ndim < 4 || node->ndim < 3) return 0;
    const int64_t *gs = a->shape + a->ndim - 3, *ws = b->shape + b->ndim - 4;
    H = ns[-3], W = ns[-2], C = ns[-1], KH = ws[0], KW = ws[1], F = ws[3], OH = gs[0], OW = gs[1];
    if (ws[2] != C || gs[2] != F) return 0;
  } else { /* (x, gy) -> dw */
    if (a->ndim < 3 || b->ndim < 3 || node->ndim < 4) return 0;
    const int64_t *xs = a->shape + a->ndim - 3, *gs = b->shape + b->ndim - 3;
    H = xs[0], W = xs[1], C = xs[2], KH = ns[-4], KW = ns[-3], F = ns[-1], OH = gs[0], OW = gs[1];
    if (ns[-2] != C || gs[2] != F) return 0;
  }
  if ((H + pt + pb - KH) / sh + 1 != OH || (W + pl + pr - KW) / sw + 1 != OW || OH < 1 || OW < 1) return 0;

  if (node->op == EVO_OP_CONV2D_GRAD_INPUT) {
    /* dx[ih] = sum_a G[ih + a] * wflip[a] with G the gy rows placed at KH-1-pt + oh*sh, zeros elsewhere. */
    p->kh = KH, p->kw = KW, p->cin = F, p->cout = C, p->sh = 1, p->sw = 1, p->oh = H, p->ow = W;
    p->src_h = OH, p->src_w = OW, p->pu = KH - 1 - pt, p->pv = KW - 1 - pl, p->du = sh, p->dv = sw;
    p->vw = W + KW - 1;
    p->wf_floats = (size_t)(KH * KW * C * F);
  } else {
    p->kh = KH, p->kw = KW, p->cin = C, p->cout = F, p->sh = sh, p->sw = sw, p->oh = OH, p->ow = OW;
    p->src_h = H, p->src_w = W, p->pu = pt, p->pv = pl, p->du = 1, p->dv = 1;
    p->direct = pt == 0 && pl == 0 && pb == 0 && pr == 0;
    p->vw = p->direct ? W : (OW - 1) * sw + KW;
  }
  p->kkc = p->kh * p->kw * p->cin;
  p->img_in = p->src_h * p->src_w * p->cin;
  p->img_out = (node->op == EVO_OP_CONV2D_GRAD_KERNEL) ? OH * OW * F : p->oh * p->ow * p->cout;
  p->ker_size = KH * KW * C * F;

  /* Operand 0 is always the node; loop dims sit in front of 3 (images) or 4 (kernels) core dims. */
  const int core_b = node->op == EVO_OP_CONV2D_GRAD_KERNEL ? 3 : 4;
  const int core_n = node->op == EVO_OP_CONV2D_GRAD_KERNEL ? 4 : 3;
  const int nl[3] = {node->ndim - core_n, a->ndim - 3, b->ndim - core_b};
  const int64_t *dims[3] = {node->shape, a->shape, b->shape};
  evo_cpu_loops_init(&p->lp, 3, nl, dims);
  p->J = evo_shape_numel(nl[0], node->shape);
  p->S = p->J ? p->lp.numel / p->J : 0;

  /* Pieces of rb output rows: a view piece fits VIEW_MAX_FLOATS, and small batches still feed every thread. */
  p->rb = p->oh;
  while (p->rb > 1 && view_rows(p, p->rb) * p->vw * p->cin > VIEW_MAX_FLOATS) p->rb = (p->rb + 1) / 2;
  int64_t units = node->op == EVO_OP_CONV2D_GRAD_KERNEL ? p->J * p->S : p->J;
  while (p->rb > 1 && units * ((p->oh + p->rb - 1) / p->rb) < 2 * (int64_t)nt) p->rb = (p->rb + 1) / 2;

  p->nt = nt;
  p->parts = 1;
  if (node->op == EVO_OP_CONV2D_GRAD_KERNEL && p->J > 0 && p->J < nt) {
    p->parts = (nt + p->J - 1) / p->J;
    if (p->parts > p->S) p->parts = p->S;
  }
  p->view_floats = p->direct ? 0 : (size_t)(view_rows(p, p->rb) * p->vw * p->cin);
  p->ro_count = (size_t)(p->rb * p->ow);
  p->shared_bytes = align64(sizeof(int64_t) * (size_t)p->kkc) + align64(sizeof(int64_t) * p->ro_count);
  if (p->parts > 1) p->shared_bytes += align64(sizeof(float) * (size_t)(p->J * p->parts * p->ker_size));
  p->thread_bytes = align64(sizeof(float) * p->view_floats) + align64(sizeof(float) * p->wf_floats);
  return 1;
}

static size_t conv_plan_bytes(const conv_plan *p) { return p->shared_bytes + (size_t)p->nt * p->thread_bytes; }

size_t evo_cpu_conv2d_scratch(const evo_node_t *node, const evo_node_t *const *in) {
  conv_plan p;
  if (!conv_plan_init(&p, node, in, omp_get_max_threads())) return 0;
  return conv_plan_bytes(&p) + 64; /* + 64: the base pointer may need aligning */
}

/* Rows [u0, u0+nrows) of the view of one source image, written densely (vw * cin floats per row). */
static void build_view(const conv_plan *p, const float *src, int64_t u0, int64_t nrows, float *out) {
  const int64_t c = p->cin, rowf = p->vw * c;
  for (int64_t u = u0; u < u0 + nrows; u++) {
    float *o = out + (u - u0) * rowf;
    int64_t t = u - p->pu, y = t / p->du;
    if (t < 0 || t % p->du || y >= p->src_h) {
      memset(o, 0, sizeof(float) * (size_t)rowf);
      continue;
    }
    const float *s = src + y * p->src_w * c;
    if (p->dv == 1) { /* the source row lands in one contiguous run */
      int64_t v0 = p->pv < 0 ? 0 : p->pv, v1 = p->pv + p->src_w < p->vw ? p->pv + p->src_w : p->vw;
      if (v0 > p->vw) v0 = p->vw; /* padding wider than the view: the row is all zeros */
      if (v1 < v0) v1 = v0;
      memset(o, 0, sizeof(float) * (size_t)(v0 * c));
      if (v1 > v0) memcpy(o + v0 * c, s + (v0 - p->pv) * c, sizeof(float) * (size_t)((v1 - v0) * c));
      memset(o + v1 * c, 0, sizeof(float) * (size_t)((p->vw - v1) * c));
    } else {
      memset(o, 0, sizeof(float) * (size_t)rowf);
      for (int64_t x = 0; x < p->src_w; x++) {
        int64_t v = p->pv + x * p->dv;
        if (v >= p->vw) break;
        if (v >= 0) memcpy(o + v * c, s + x * c, sizeof(float) * (size_t)c);
      }
    }
  }
}

/* The view rows for output rows [r0, r1) of the image at src: in place when direct, else built into buf. */
static const float *view_for(const conv_plan *p, const float *src, int64_t r0, int64_t r1, float *buf) {
  if (p->direct) return src + r0 * p->sh * p->vw * p->cin;
  build_view(p, src, r0 * p->sh, view_rows(p, r1 - r0), buf);
  return buf;
}

/* Output rows [r0, r1) of one image (out points at row r0) from the view of those rows: one GEMM whose rows are
   the pixels (ro: their offsets in the view) and whose columns of A are the kernel taps (po). */
static void engine_rows(const conv_plan *p, const float *view, const int64_t *ro, const int64_t *po,
                        const float *ker, int64_t r0, int64_t r1, float *out, int acc) {
  evo_cpu_gemm_idx((r1 - r0) * p->ow, p->cout, p->kkc, view, 0, ro, po, ker, p->cout, out, p->cout, acc);
}

/* Loop positions that share one output: the node's broadcast (stride 0) dims are summed over. */
typedef struct {
  int nk, ns;
  int64_t kshape[EVO_MAX_DIMS], kstep[EVO_MAX_DIMS], sshape[EVO_MAX_DIMS], sstep[EVO_MAX_DIMS];
} sum_map;

static void sum_map_init(sum_map *sm, const evo_cpu_loops *lp) {
  sm->nk = sm->ns = 0;
  int64_t step = 1;
  for (int d = lp->nd - 1; d >= 0; d--) {
    if (lp->shape[d] > 1) {
      if (lp->stride[0][d]) sm->kshape[sm->nk] = lp->shape[d], sm->kstep[sm->nk++] = step;
      else sm->sshape[sm->ns] = lp->shape[d], sm->sstep[sm->ns++] = step;
    }
    step *= lp->shape[d];
  }
}

/* Broadcast loop index of contribution s to output j. */
static int64_t sum_map_flat(const sum_map *sm, int64_t j, int64_t s) {
  int64_t l = 0;
  for (int d = 0; d < sm->nk; d++) l += (j % sm->kshape[d]) * sm->kstep[d], j /= sm->kshape[d];
  for (int d = 0; d < sm->ns; d++) l += (s % sm->sshape[d]) * sm->sstep[d], s /= sm->sshape[d];
  return l;
}

/* Forward: the widest suffix of loop dims over which the kernel is fixed and the image and output advance
   contiguously; a piece of work is (kernel position o, image i in that suffix, row block). */
static int64_t inner_count(const evo_cpu_loops *lp) {
  int64_t n = 1;
  for (int d = lp->nd - 1; d >= 0; d--) {
    if (lp->shape[d] == 1) continue;
    if (lp->stride[2][d] != 0 || lp->stride[1][d] != n || lp->stride[0][d] != n) break;
    n *= lp->shape[d];
  }
  return n;
}

static void conv_forward(const conv_plan *p, const float *x, const float *w, float *y, const int64_t *ro,
                         const int64_t *po, char *tscratch) {
  const int64_t I = inner_count(&p->lp), O = p->lp.numel / I, nrb = (p->oh + p->rb - 1) / p->rb;
  /* Members sharing images: order the work so each thread walks the members of one view before moving on. */
  int x_shared = 1;
  for (int d = 0; d < p->lp.nd; d++)
    if (p->lp.shape[d] > 1 && p->lp.stride[2][d] != 0 && p->lp.stride[1][d] != 0) x_shared = 0;
  const int64_t T = O * I * nrb, chunk = T / (16 * (int64_t)p->nt) + 1;
#pragma omp parallel num_threads(p->nt)
  {
    float *view = (float *)(tscratch + (size_t)omp_get_thread_num() * p->thread_bytes);
    const float *cached = NULL;
    int64_t cached_rb = -1;
#pragma omp for schedule(dynamic, chunk)
    for (int64_t t = 0; t < T; t++) {
      int64_t o, rest;
      if (x_shared) o = t % O, rest = t / O;
      else o = t / (I * nrb), rest = t % (I * nrb);
      const int64_t i = rest / nrb, rbk = rest % nrb, l0 = o * I;
      const int64_t r0 = rbk * p->rb, r1 = r0 + p->rb < p->oh ? r0 + p->rb : p->oh;
      const float *src = x + (evo_cpu_loops_off(&p->lp, 1, l0) + i) * p->img_in;
      const float *v;
      if (p->direct) v = view_for(p, src, r0, r1, NULL);
      else {
        if (src != cached || rbk != cached_rb) build_view(p, src, r0 * p->sh, view_rows(p, r1 - r0), view);
        cached = src, cached_rb = rbk, v = view;
      }
      engine_rows(p, v, ro, po, w + evo_cpu_loops_off(&p->lp, 2, l0) * p->ker_size, r0, r1,
                  y + ((l0 + i) * p->oh + r0) * p->ow * p->cout, 0);
    }
  }
}

/* wf[a, b, f, c] = w[KH-1-a, KW-1-b, c, f]: the kernel of the transposed convolution. */
static void flip_kernel(const conv_plan *p, const float *w, float *wf) {
  const int64_t KH = p->kh, KW = p->kw, F = p->cin, C = p->cout;
  for (int64_t a = 0; a < KH; a++)
    for (int64_t b = 0; b < KW; b++) {
      const float *s = w + ((KH - 1 - a) * KW + (KW - 1 - b)) * C * F;
      float *d = wf + (a * KW + b) * F * C;
      for (int64_t c = 0; c < C; c++)
        for (int64_t f = 0; f < F; f++) d[f * C + c] = s[c * F + f];
    }
}

static void conv_grad_input(const conv_plan *p, const float *gy, const float *w, float *dx, const int64_t *ro,
                            const int64_t *po, char *tscratch) {
  sum_map sm;
  sum_map_init(&sm, &p->lp);
  const int64_t nrb = (p->oh + p->rb - 1) / p->rb, T = p->J * nrb;
#pragma omp parallel num_threads(p->nt)
  {
    char *ts = tscratch + (size_t)omp_get_thread_num() * p->thread_bytes;
    float *view = (float *)ts, *wf = (float *)(ts + align64(sizeof(float) * p->view_floats));
    const float *cached_w = NULL;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < T; t++) {
      const int64_t j = t / nrb, rbk = t % nrb;
      const int64_t r0 = rbk * p->rb, r1 = r0 + p->rb < p->oh ? r0 + p->rb : p->oh;
      float *out = dx + (j * p->oh + r0) * p->ow * p->cout;
      for (int64_t s = 0; s < p->S; s++) {
        const int64_t l = sum_map_flat(&sm, j, s);
        const float *wk = w + evo_cpu_loops_off(&p->lp, 2, l) * p->ker_size;
        if (wk != cached_w) flip_kernel(p, wk, wf), cached_w = wk;
        build_view(p, gy + evo_cpu_loops_off(&p->lp, 1, l) * p->img_in, r0, view_rows(p, r1 - r0), view);
        engine_rows(p, view, ro, po, wf, r0, r1, out, s > 0);
      }
    }
  }
}

static void conv_grad_kernel(const conv_plan *p, const float *x, const float *gy, float *dw, const int64_t *ro,
                             const int64_t *po, float *partial, char *tscratch) {
  sum_map sm;
  sum_map_init(&sm, &p->lp);
  const int64_t nrb = (p->oh + p->rb - 1) / p->rb, T = p->J * p->parts, K = p->ker_size, F = p->cout;
#pragma omp parallel num_threads(p->nt)
  {
    char *ts = tscratch + (size_t)omp_get_thread_num() * p->thread_bytes;
    float *view = (float *)ts;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < T; t++) {
      const int64_t j = t / p->parts, part = t % p->parts;
      float *acc = p->parts > 1 ? partial + t * K : dw + j * K;
      memset(acc, 0, sizeof(float) * (size_t)K);
      const int64_t s0 = p->S * part / p->parts, s1 = p->S * (part + 1) / p->parts;
      for (int64_t s = s0; s < s1; s++) {
        const int64_t l = sum_map_flat(&sm, j, s);
        const float *src = x + evo_cpu_loops_off(&p->lp, 1, l) * p->img_in;
        const float *g = gy + evo_cpu_loops_off(&p->lp, 2, l) * p->img_out;
        for (int64_t rbk = 0; rbk < nrb; rbk++) {
          const int64_t r0 = rbk * p->rb, r1 = r0 + p->rb < p->oh ? r0 + p->rb : p->oh, npix = (r1 - r0) * p->ow;
          /* dw[taps, f] += A @ gy[pixels, f] with A[tap, pixel] = view[po[tap] + ro[pixel]] */
          evo_cpu_gemm_idx(p->kkc, F, npix, view_for(p, src, r0, r1, view), 0, po, ro, g + r0 * p->ow * F, F, acc,
                           F, 1);
        }
      }
    }
    if (p->parts > 1) {
      const int64_t total = p->J * K;
#pragma omp for schedule(static)
      for (int64_t e = 0; e < total; e++) {
        const int64_t j = e / K, k = e % K;
        float s = 0.0f;
        for (int64_t q = 0; q < p->parts; q++) s += partial[(j * p->parts + q) * K + k];
        dw[e] = s;
      }
    }
  }
}

evo_status evo_cpu_conv2d(const evo_kernel_args *args) {
  const evo_node_t *node = args->node;
  if (node->dtype != EVO_F32 || args->in[0]->dtype != EVO_F32 || args->in[1]->dtype != EVO_F32)
    return evo_error(EVO_STATUS_UNSUPPORTED, "cpu %s: f32 only", evo_op_name(node->op));
  conv_plan p;
  int nt = omp_get_max_threads();
  if (!conv_plan_init(&p, node, args->in, nt))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "cpu %s: inconsistent shapes", evo_op_name(node->op));
  /* The plan sized scratch for the thread count of that time; use fewer threads if it has since grown. */
  uintptr_t base = ((uintptr_t)args->scratch + 63) / 64 * 64;
  const size_t skip = (size_t)(base - (uintptr_t)args->scratch);
  const size_t avail = args->scratch && args->scratch_bytes > skip ? args->scratch_bytes - skip : 0;
  while (nt > 1 && conv_plan_bytes(&p) > avail) conv_plan_init(&p, node, args->in, --nt);
  if (conv_plan_bytes(&p) > avail)
    return evo_error(EVO_STATUS_INTERNAL, "cpu %s: scratch of %zu bytes, needs %zu", evo_op_name(node->op),
                     args->scratch_bytes, conv_plan_bytes(&p) + 64);
  char *shared = (char *)base;
  int64_t *po = (int64_t *)shared, *ro = (int64_t *)(shared + align64(sizeof(int64_t) * (size_t)p.kkc));
  float *partial = (float *)((char *)ro + align64(sizeof(int64_t) * p.ro_count));
  char *tscratch = shared + p.shared_bytes;
  /* Offsets in the view of kernel tap (a, b, ci) from a pixel's window corner, and of the window corners of the
     pixels of a piece of output rows from the piece's first view row. */
  for (int64_t a = 0, n = 0; a < p.kh; a++)
    for (int64_t b = 0; b < p.kw; b++)
      for (int64_t c = 0; c < p.cin; c++) po[n++] = (a * p.vw + b) * p.cin + c;
  for (int64_t q = 0; q < (int64_t)p.ro_count; q++) ro[q] = ((q / p.ow) * p.sh * p.vw + (q % p.ow) * p.sw) * p.cin;
  const float *s0 = args->src[0], *s1 = args->src[1];
  if (node->op == EVO_OP_CONV2D) conv_forward(&p, s0, s1, args->dst, ro, po, tscratch);
  else if (node->op == EVO_OP_CONV2D_GRAD_INPUT) conv_grad_input(&p, s0, s1, args->dst, ro, po, tscratch);
  else conv_grad_kernel(&p, s0, s1, args->dst, ro, po, partial, tscratch);
  return EVO_STATUS_OK;
}
