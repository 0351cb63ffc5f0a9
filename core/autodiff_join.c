/* Joining the adjoints of disjoint slices (autodiff_impl.h). A model that reads its layers as slices of one flat
   parameter vector (as EvoJAX's policies and ravel_pytree'd JAX models do) gets one pad(g_i, lo_i, hi_i) per slice;
   summed, every addition would read and write the whole vector. Disjoint pads are joined into
   pad(concat(pieces), lo, hi), the gaps between the pieces filled with zeros (concats of at most EVO_MAX_INPUTS
   operands, nested when there are more pieces), so the flat gradient is written about once. */
#include <string.h>
#include "autodiff_impl.h"
#include "graph_impl.h"

typedef struct {
  int64_t start, len;
  evo_node node;
} segment;

/* A zero fill made here: broadcast_to of the scalar constant 0. */
static bool is_zero_fill(const evo_graph *g, evo_node x) {
  const evo_node_t *n = &g->nodes[x];
  if (n->op != EVO_OP_BROADCAST_TO) return false;
  const evo_node_t *c = &g->nodes[n->in[0]];
  return c->op == EVO_OP_CONST && c->dtype == EVO_F32 && c->ndim == 0 && *(const float *)c->cdata == 0.0f;
}

enum { MAX_PIECES = 256 }; /* beyond this many the adjoints are added */

/* The non-zero pieces of x, which starts at `at` along axis ax: x itself, or (concat along ax) its operands' pieces
   (nested concats flattened, zero fills skipped), appended to seg; returns the new count, -1 past MAX_PIECES. */
static int pieces_of(const evo_graph *g, evo_node x, int ax, int64_t at, segment *seg, int k) {
  const evo_node_t *n = &g->nodes[x];
  if (is_zero_fill(g, x)) return k;
  if (n->op != EVO_OP_CONCAT || n->p.axis != ax) {
    if (k == MAX_PIECES) return -1;
    seg[k++] = (segment){at, n->shape[ax], x};
    return k;
  }
  for (int j = 0; j < n->n_in && k >= 0; j++) {
    k = pieces_of(g, n->in[j], ax, at, seg, k);
    at += g->nodes[n->in[j]].shape[ax];
  }
  return k;
}

/* Pad node x's pieces (its input's, from its lo). */
static int pieces(const evo_graph *g, evo_node x, segment *seg, int k) {
  const evo_node_t *n = &g->nodes[x];
  return k < 0 ? k : pieces_of(g, n->in[0], n->p.axis, n->p.i[0], seg, k);
}

/* concat of xs[0 .. m) along ax, in groups of EVO_MAX_INPUTS (a concat takes no more). */
static evo_node concat_all(evo_graph *g, evo_node *xs, int m, int ax) {
  while (m > 1) {
    int out = 0;
    for (int i = 0; i < m; i += EVO_MAX_INPUTS) {
      const int c = m - i < EVO_MAX_INPUTS ? m - i : EVO_MAX_INPUTS;
      xs[out++] = c == 1 ? xs[i] : evo_concat(g, c, xs + i, ax);
    }
    m = out;
  }
  return xs[0];
}

static bool joinable(const evo_graph *g, evo_node a, evo_node b) {
  const evo_node_t *x = &g->nodes[a], *y = &g->nodes[b];
  return x->op == EVO_OP_PAD && y->op == EVO_OP_PAD && x->dtype == EVO_F32 && y->dtype == EVO_F32 &&
         x->p.axis == y->p.axis && x->ndim == y->ndim &&
         memcmp(x->shape, y->shape, sizeof(int64_t) * (size_t)x->ndim) == 0;
}

evo_node evo_ad_join_pads(evo_graph *g, evo_node a, evo_node b) {
  if (!joinable(g, a, b)) return EVO_NODE_INVALID;
  segment seg[MAX_PIECES];
  const int k = pieces(g, b, seg, pieces(g, a, seg, 0));
  if (k < 1) return EVO_NODE_INVALID;
  for (int i = 1; i < k; i++) /* by position (insertion: the pieces arrive nearly sorted) */
    for (int j = i; j > 0 && seg[j].start < seg[j - 1].start; j--) {
      const segment t = seg[j];
      seg[j] = seg[j - 1], seg[j - 1] = t;
    }
  for (int i = 1; i < k; i++)
    if (seg[i].start < seg[i - 1].start + seg[i - 1].len) return EVO_NODE_INVALID; /* overlap: add */
  const evo_node_t *n = &g->nodes[a];
  const int ax = n->p.axis, nd = n->ndim;
  int64_t shape[EVO_MAX_DIMS];
  memcpy(shape, n->shape, sizeof shape); /* n moves when nodes are pushed */
  evo_node cat[2 * MAX_PIECES];
  int m = 0;
  for (int i = 0; i < k; i++) {
    const int64_t gap = i > 0 ? seg[i].start - (seg[i - 1].start + seg[i - 1].len) : 0;
    if (gap > 0) {
      int64_t s[EVO_MAX_DIMS];
      memcpy(s, shape, sizeof s);
      s[ax] = gap;
      cat[m++] = evo_full(g, 0.0f, nd, s);
    }
    cat[m++] = seg[i].node;
  }
  const int64_t lo = seg[0].start, hi = shape[ax] - (seg[k - 1].start + seg[k - 1].len);
  return evo_pad(g, concat_all(g, cat, m, ax), ax, lo, hi);
}
