/* Public builders for matmul, conv2d and pooling. */
#include <string.h>
#include "graph_impl.h"

evo_node evo_matmul(evo_graph *g, evo_node a, evo_node b) {
  evo_node ids[2] = {a, b};
  if (!evo_graph_check_ids(g, 2, ids)) return EVO_NODE_INVALID;
  /* NumPy's 1-D rules: promote, multiply, then squeeze the promoted dim. */
  int a1 = g->nodes[a].ndim == 1, b1 = g->nodes[b].ndim == 1;
  if (a1) a = evo_expand_dims(g, a, 0);
  if (b1) b = evo_expand_dims(g, b, -1);
  evo_node in[2] = {a, b};
  evo_node y = evo_graph_emit(g, EVO_OP_MATMUL, EVO_F32, 2, in, NULL, 0, NULL);
  if (b1) y = evo_squeeze(g, y, -1);
  if (a1) y = evo_squeeze(g, y, -(b1 ? 1 : 2));
  return y;
}

/* TF/JAX SAME padding: out = ceil(in / stride), pad_before = total / 2. */
static void same_pad(int64_t in, int64_t k, int64_t s, int32_t *lo, int32_t *hi) {
  int64_t out = (in + s - 1) / s, total = (out - 1) * s + k - in;
  if (total < 0) total = 0;
  *lo = (int32_t)(total / 2);
  *hi = (int32_t)(total - total / 2);
}

evo_node evo_conv2d(evo_graph *g, evo_node x, evo_node w, int stride_h, int stride_w, evo_padding pad) {
  evo_node ids[2] = {x, w};
  if (!evo_graph_check_ids(g, 2, ids)) return EVO_NODE_INVALID;
  const evo_node_t *xn = &g->nodes[x], *wn = &g->nodes[w];
  if (xn->ndim < 3 || wn->ndim < 4) return evo_graph_fail(g, "conv2d: x must be [..,H,W,C] and w [..,KH,KW,C,F]");
  evo_op_params p = {.i = {stride_h, stride_w}};
  if (pad == EVO_PAD_SAME) {
    same_pad(xn->shape[xn->ndim - 3], wn->shape[wn->ndim - 4], stride_h, &p.i[2], &p.i[4]);
    same_pad(xn->shape[xn->ndim - 2], wn->shape[wn->ndim - 3], stride_w, &p.i[3], &p.i[5]);
  }
  p.i[6] = (int32_t)wn->shape[wn->ndim - 4];
  p.i[7] = (int32_t)wn->shape[wn->ndim - 3];
  return evo_graph_emit(g, EVO_OP_CONV2D, EVO_F32, 2, ids, &p, 0, NULL);
}

static evo_node pool(evo_graph *g, evo_op op, evo_node x, int wh, int ww, int sh, int sw, evo_padding pad) {
  if (!evo_graph_check_ids(g, 1, &x)) return EVO_NODE_INVALID;
  const evo_node_t *xn = &g->nodes[x];
  if (xn->ndim < 3) return evo_graph_fail(g, "%s: x must be [..,H,W,C]", evo_op_name(op));
  evo_op_params p = {.i = {wh, ww, sh, sw}};
  if (pad == EVO_PAD_SAME) {
    same_pad(xn->shape[xn->ndim - 3], wh, sh, &p.i[4], &p.i[6]);
    same_pad(xn->shape[xn->ndim - 2], ww, sw, &p.i[5], &p.i[7]);
  }
  return evo_graph_emit(g, op, EVO_F32, 1, &x, &p, 0, NULL);
}

evo_node evo_max_pool2d(evo_graph *g, evo_node x, int win_h, int win_w, int stride_h, int stride_w,
                        evo_padding pad) {
  return pool(g, EVO_OP_MAX_POOL2D, x, win_h, win_w, stride_h, stride_w, pad);
}
evo_node evo_avg_pool2d(evo_graph *g, evo_node x, int win_h, int win_w, int stride_h, int stride_w,
                        evo_padding pad) {
  return pool(g, EVO_OP_AVG_POOL2D, x, win_h, win_w, stride_h, stride_w, pad);
}
