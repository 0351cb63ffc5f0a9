/* Internal: the op set. Adding an op touches: this enum (+ evo_op_name row in graph.c), its builder in
   core/build_*.c, its CPU kernel in core/cpu/, its backward rule in core/autodiff.c, its vmap rule if it has axis
   parameters (core/vmap.c), and one row in tests/test_ops.c. */
#ifndef EVOC_OPS_H
#define EVOC_OPS_H
#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  EVO_OP_INPUT = 0,
  EVO_OP_CONST, /* data in node->cdata (host), dtype/shape of the node */

  /* unary f32 -> f32 */
  EVO_OP_NEG, EVO_OP_ABS, EVO_OP_EXP, EVO_OP_LOG, EVO_OP_SQRT, EVO_OP_TANH, EVO_OP_SIGMOID, EVO_OP_RELU,
  EVO_OP_SIN, EVO_OP_COS, EVO_OP_SQUARE,
  EVO_OP_SIGN,          /* -1/0/1 (used by abs backward) */
  EVO_OP_STOP_GRADIENT, /* identity */

  /* binary f32 with broadcasting */
  EVO_OP_ADD, EVO_OP_SUB, EVO_OP_MUL, EVO_OP_DIV, EVO_OP_POW, EVO_OP_MAX, EVO_OP_MIN,

  /* comparisons (f32,f32)|(i32,i32) -> u8, broadcasting */
  EVO_OP_LT, EVO_OP_LE, EVO_OP_GT, EVO_OP_GE, EVO_OP_EQ, EVO_OP_NE,
  EVO_OP_WHERE, /* (u8 cond, f32 a, f32 b) broadcasting */
  EVO_OP_CLIP,  /* f[0]=lo f[1]=hi */
  EVO_OP_CAST,  /* to node->dtype */

  /* reductions over p.axes (bitmask of input axes); p.keepdims */
  EVO_OP_REDUCE_SUM, EVO_OP_REDUCE_MAX, EVO_OP_REDUCE_MIN, EVO_OP_LOGSUMEXP,
  EVO_OP_ARGMAX, /* over p.axis, i32 out, p.keepdims */

  /* [..., m, k] @ [..., k, n] (inputs already 2-D core; 1-D handled by the builder). i[0], i[1]: trans flags,
     set only by the jit (plan nodes, never graph nodes: autodiff and vmap assume 0): i[0] = 1 means a is stored
     as [..., k, m], i[1] = 1 that b is stored as [..., n, k]; the product is of the transposes. */
  EVO_OP_MATMUL,
  /* conv2d: i[0..1] stride h,w; i[2..5] pad top,left,bottom,right; i[6..7] KH, KW (grad_kernel only).
     CONV2D:             (x [..,H,W,C], w [..,KH,KW,C,F]) -> [..,OH,OW,F]
     CONV2D_GRAD_INPUT:  (gy [..,OH,OW,F], w [..,KH,KW,C,F]) -> node shape [..,H,W,C]
     CONV2D_GRAD_KERNEL: (x [..,H,W,C], gy [..,OH,OW,F]) -> node shape [..,KH,KW,C,F]; the node's loop dims may
                         be fewer/size-1 versus the broadcast of the inputs' loop dims: the kernel sums over those. */
  EVO_OP_CONV2D, EVO_OP_CONV2D_GRAD_INPUT, EVO_OP_CONV2D_GRAD_KERNEL,
  /* pooling: i[0..1] window h,w; i[2..3] stride h,w; i[4..7] pad top,left,bottom,right.
     MAX_POOL2D_GRAD: (x, gy) -> shape of x (gradient to the first max of each window).
     AVG_POOL2D_GRAD: (gy) -> node shape (shape of the pooled input).
     MAX_POOL2D_GATHER: (x, v), v of x's shape -> shape of max_pool2d(x): v at the first max of each window of x
                      (0 for a window wholly in the padding); the adjoint of MAX_POOL2D_GRAD in gy, so the second
                      derivative of max pooling. */
  EVO_OP_MAX_POOL2D, EVO_OP_MAX_POOL2D_GRAD, EVO_OP_AVG_POOL2D, EVO_OP_AVG_POOL2D_GRAD, EVO_OP_MAX_POOL2D_GATHER,

  /* shape ops (any dtype) */
  EVO_OP_RESHAPE,      /* to node shape (same numel) */
  EVO_OP_TRANSPOSE,    /* i[0..ndim) = perm: out dim d = in dim perm[d] */
  EVO_OP_BROADCAST_TO, /* NumPy rules, to node shape */
  EVO_OP_CONCAT,       /* p.axis, n_in inputs */
  EVO_OP_SLICE,        /* p.axis, i[0]=start, i[1]=stop */
  EVO_OP_PAD,          /* p.axis, i[0]=lo, i[1]=hi, zeros */
  EVO_OP_TAKE_ALONG_AXIS, /* (x, idx i32) p.axis */
  /* (g, idx i32) p.axis -> node shape: out[..., idx[..,j,..], ...] += g[..., j, ...] (gradient of take). */
  EVO_OP_SCATTER_ADD_ALONG_AXIS,
  EVO_OP_ONE_HOT,      /* i32 [...] -> f32 [..., i[0]=depth] */

  EVO_OP_SOFTMAX, EVO_OP_LOG_SOFTMAX, /* p.axis */

  /* RNG: key u32 [..., 2] -> f32 [key loop..., core...]; i[0] = number of trailing core dims of the output.
     UNIFORM: f[0]=lo f[1]=hi. TRUNC_NORMAL: f[0]=lo f[1]=hi (in standard deviations). */
  EVO_OP_RNG_UNIFORM, EVO_OP_RNG_NORMAL, EVO_OP_RNG_TRUNC_NORMAL,

  EVO_OP_COUNT
} evo_op;

/* Plan-only ops: made by the jit's fusion passes (core/jit_fuse.c) on its copy of the nodes, never in a graph, and
   outside the enum so that switches over the op set need no case for them; a backend refuses in supports_op
   what it has no kernel for (op >= EVO_OP_COUNT, or a pair it does not cover), which makes the jit keep the
   unfused nodes.
   FUSED_BINARY_UNARY: unary op i[1] applied to binary op i[0] (ADD..MIN) of in[0], in[1], broadcasting as the
   binary; the node has the binary's shape. The CPU covers every pair, CUDA ADD/SUB/MUL with TANH/RELU/SIGMOID. */
#define EVO_OP_FUSED_BINARY_UNARY ((evo_op)(EVO_OP_COUNT + 1))
/* FUSED_MATMUL_BIAS_ACT: unary op i[2] of MATMUL(in[0], in[1]) (trans flags i[0], i[1] as MATMUL's) plus in[2], a
   bias broadcast to the product's shape and constant along its rows (second-to-last dim); the node has the
   product's shape. A layer of a population MLP in one kernel, where the backend takes it (CUDA, few rows). */
#define EVO_OP_FUSED_MATMUL_BIAS_ACT ((evo_op)(EVO_OP_COUNT + 2))

const char *evo_op_name(evo_op op);

#ifdef __cplusplus
}
#endif

#endif
