/* jit: compile a graph for fixed shapes into a plan. Dead nodes are dropped, reshapes and stop_gradient alias
   their input, constants are uploaded once, and every intermediate gets an offset in one arena chosen by
   liveness (a buffer is reused as soon as its last reader has run). A transpose of the last two dims read only
   by a matmul becomes the matmul's trans flag, matmul + bias + activation can become one node, and a binary op
   read only by a unary one fuses with it, where the backend takes the result (jit_fuse.c). Running a plan
   allocates nothing. On a
   backend with graph hooks (CUDA) the first run records the kernels and output copies into a device graph and
   every run replays it; the recording holds the bound tensors' addresses, so binding other tensors re-records.
   Kernels that depend only on static inputs (evo_jit_params) run first, outside the recording, and are skipped
   while those inputs stay the same: their results keep their arena space for the plan's life. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/jit.h"
#include "backend_impl.h"
#include "jit_fuse.h"

enum { SLOT_NONE = 0, SLOT_INPUT, SLOT_CONST, SLOT_ARENA, SLOT_ALIAS };

typedef struct {
  int kind;
  int root;      /* SLOT_ALIAS: node whose storage this one shares */
  int input_idx; /* SLOT_INPUT */
  size_t offset; /* SLOT_ARENA */
  void *cbuf;    /* SLOT_CONST */
} plan_slot;

struct evo_plan {
  evo_backend *be;
  int n_nodes, n_inputs, n_outputs;
  evo_node_t *nodes; /* copy of the graph's nodes (no cdata) */
  plan_slot *slots;
  int *order; /* compute nodes in execution order */
  int n_order;
  evo_node *inputs, *outputs;
  void *arena, *scratch;
  size_t arena_bytes, scratch_bytes, const_bytes, naive_bytes;
  const void **bound; /* per input: buffer bound for the current run */
  /* device graph: the recording, the input/output buffers it was recorded with, and counts for the tests */
  void *gexec;
  const void **rec_in;
  void **rec_out;
  int n_records, n_launches;
  /* hoisting: the first n_static kernels of order depend only on static inputs and constants */
  uint64_t static_mask;
  int n_static, n_static_runs;
  bool static_valid;        /* their results are current for static_bound */
  const void **static_bound; /* per input: the buffer bound when they last ran */
};

/* First-fit allocator over [0, high) with 64-byte alignment; free blocks kept sorted by offset. */
typedef struct { size_t off, size; } block;
typedef struct {
  block *free;
  int n, cap;
  size_t high;
} arena_alloc;

static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

static int arena_take(arena_alloc *a, size_t n, size_t *off) {
  n = align64(n ? n : 1);
  for (int i = 0; i < a->n; i++) {
    if (a->free[i].size >= n) {
      *off = a->free[i].off;
      a->free[i].off += n;
      a->free[i].size -= n;
      if (!a->free[i].size) memmove(&a->free[i], &a->free[i + 1], sizeof(block) * (size_t)(a->n - i - 1)), a->n--;
      return 0;
    }
  }
  /* Grow at the top, merging with a free block that ends there. */
  if (a->n && a->free[a->n - 1].off + a->free[a->n - 1].size == a->high) {
    *off = a->free[a->n - 1].off;
    a->high = *off + n;
    a->n--;
  } else {
    *off = a->high;
    a->high += n;
  }
  return 0;
}

static int arena_give(arena_alloc *a, size_t off, size_t n) {
  n = align64(n ? n : 1);
  if (a->n + 1 > a->cap) {
    int nc = a->cap ? 2 * a->cap : 32;
    block *nb = realloc(a->free, sizeof(block) * (size_t)nc);
    if (!nb) return -1;
    a->free = nb;
    a->cap = nc;
  }
  int i = 0;
  while (i < a->n && a->free[i].off < off) i++;
  memmove(&a->free[i + 1], &a->free[i], sizeof(block) * (size_t)(a->n - i));
  a->free[i] = (block){off, n};
  a->n++;
  /* Coalesce with neighbours. */
  if (i + 1 < a->n && a->free[i].off + a->free[i].size == a->free[i + 1].off) {
    a->free[i].size += a->free[i + 1].size;
    memmove(&a->free[i + 1], &a->free[i + 2], sizeof(block) * (size_t)(a->n - i - 2));
    a->n--;
  }
  if (i > 0 && a->free[i - 1].off + a->free[i - 1].size == a->free[i].off) {
    a->free[i - 1].size += a->free[i].size;
    memmove(&a->free[i], &a->free[i + 1], sizeof(block) * (size_t)(a->n - i - 1));
    a->n--;
  }
  return 0;
}

static size_t node_bytes(const evo_node_t *n) {
  return (size_t)evo_shape_numel(n->ndim, n->shape) * evo_dtype_size(n->dtype);
}

static int root_of(const plan_slot *s, int i) {
  while (s[i].kind == SLOT_ALIAS) i = s[i].root;
  return i;
}

void evo_plan_free(evo_plan *p) {
  if (!p) return;
  if (p->slots)
    for (int i = 0; i < p->n_nodes; i++)
      if (p->slots[i].kind == SLOT_CONST) evo_backend_release(p->be, p->slots[i].cbuf);
  if (p->gexec) p->be->iface->graph_destroy(p->be->ctx, p->gexec);
  evo_backend_release(p->be, p->arena);
  evo_backend_release(p->be, p->scratch);
  free(p->nodes);
  free(p->slots);
  free(p->order);
  free(p->inputs);
  free(p->outputs);
  free(p->bound);
  free(p->rec_in);
  free(p->rec_out);
  free(p->static_bound);
  free(p);
}

static evo_status plan_fail(evo_plan *p, evo_status s) {
  evo_plan_free(p);
  return s;
}

evo_jit_params evo_jit_default_params(void) { return (evo_jit_params){.static_inputs = 0}; }

evo_status evo_jit(const evo_graph *g, evo_backend *be, evo_plan **out) {
  const evo_jit_params jp = evo_jit_default_params();
  return evo_jit_with(g, be, &jp, out);
}

/* Moves the kernels that depend only on static inputs and constants to the front of the order (a stable
   partition keeps it topological) and returns a per-node flag array (NULL: out of memory). */
static char *hoist(evo_plan *p, const char *live) {
  char *st = calloc((size_t)p->n_nodes, 1);
  int *rest = malloc(sizeof(int) * (size_t)(p->n_order + 1));
  if (!st || !rest) {
    free(st), free(rest);
    return NULL;
  }
  for (int i = 0; i < p->n_nodes; i++) {
    const evo_node_t *n = &p->nodes[i];
    if (!live[i]) continue;
    if (n->op == EVO_OP_INPUT) {
      const int j = p->slots[i].input_idx;
      st[i] = j < 64 && ((p->static_mask >> j) & 1);
    } else if (n->op == EVO_OP_CONST) {
      st[i] = 1;
    } else {
      st[i] = 1;
      for (int k = 0; k < n->n_in; k++) st[i] &= st[n->in[k]];
    }
  }
  int ns = 0, nr = 0;
  for (int oi = 0; oi < p->n_order; oi++) {
    const int i = p->order[oi];
    if (st[i]) p->order[ns++] = i;
    else rest[nr++] = i;
  }
  memcpy(p->order + ns, rest, sizeof(int) * (size_t)nr);
  free(rest);
  p->n_static = ns;
  return st;
}

evo_status evo_jit_with(const evo_graph *g, evo_backend *be, const evo_jit_params *jp, evo_plan **out) {
  *out = NULL;
  if (!g || !be) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "jit: null graph or backend");
  if (g->status != EVO_STATUS_OK) return evo_error(g->status, "jit: the graph has an error: %s", g->error);
  if (g->n_outputs < 1) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "jit: the graph has no outputs");
  int nn = g->n_nodes;
  evo_plan *p = calloc(1, sizeof *p);
  if (!p) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "jit: out of memory");
  p->be = be;
  p->n_nodes = nn;
  p->n_inputs = g->n_inputs;
  p->n_outputs = g->n_outputs;
  p->nodes = malloc(sizeof(evo_node_t) * (size_t)nn);
  p->slots = calloc((size_t)nn, sizeof(plan_slot));
  p->order = malloc(sizeof(int) * (size_t)nn);
  p->inputs = malloc(sizeof(evo_node) * (size_t)(g->n_inputs + 1));
  p->outputs = malloc(sizeof(evo_node) * (size_t)g->n_outputs);
  p->bound = calloc((size_t)g->n_inputs + 1, sizeof(void *));
  p->rec_in = calloc((size_t)g->n_inputs + 1, sizeof(void *));
  p->rec_out = calloc((size_t)g->n_outputs, sizeof(void *));
  p->static_bound = calloc((size_t)g->n_inputs + 1, sizeof(void *));
  p->static_mask = jp ? jp->static_inputs : 0;
  int *last_use = malloc(sizeof(int) * (size_t)nn);
  char *live = calloc((size_t)nn, 1);
  if (!p->nodes || !p->slots || !p->order || !p->inputs || !p->outputs || !p->bound || !p->rec_in || !p->rec_out ||
      !p->static_bound || !last_use || !live) {
    free(last_use);
    free(live);
    return plan_fail(p, evo_error(EVO_STATUS_OUT_OF_MEMORY, "jit: out of memory"));
  }
  memcpy(p->nodes, g->nodes, sizeof(evo_node_t) * (size_t)nn);
  for (int i = 0; i < nn; i++) p->nodes[i].cdata = NULL, p->nodes[i].name = NULL;
  /* a graph may have no inputs (constants only): memcpy's pointers must be valid even for 0 bytes */
  if (g->n_inputs) memcpy(p->inputs, g->inputs, sizeof(evo_node) * (size_t)g->n_inputs);
  if (g->n_outputs) memcpy(p->outputs, g->outputs, sizeof(evo_node) * (size_t)g->n_outputs);

  /* Dead-code elimination: walk back from the outputs (node ids are topologically ordered). */
  for (int j = 0; j < g->n_outputs; j++) live[g->outputs[j]] = 1;
  for (int i = nn - 1; i >= 0; i--)
    if (live[i])
      for (int k = 0; k < g->nodes[i].n_in; k++) live[g->nodes[i].in[k]] = 1;

  /* Rewrites on the plan's copy of the nodes; from here on the plan reads p->nodes (g's only for constants). */
  evo_jit_fold_transposes(p->nodes, nn, live, g->outputs, g->n_outputs, be);
  evo_jit_fuse_activations(p->nodes, nn, live, g->outputs, g->n_outputs, be);

  evo_status st = EVO_STATUS_OK;
  for (int j = 0; j < g->n_inputs; j++) {
    p->slots[g->inputs[j]].kind = SLOT_INPUT;
    p->slots[g->inputs[j]].input_idx = j;
  }
  for (int i = 0; i < nn && st == EVO_STATUS_OK; i++) {
    const evo_node_t *n = &p->nodes[i];
    last_use[i] = -1;
    if (!live[i] || n->op == EVO_OP_INPUT) continue;
    if (n->op == EVO_OP_CONST) {
      size_t b = node_bytes(n);
      p->slots[i].kind = SLOT_CONST;
      p->slots[i].cbuf = evo_backend_alloc(be, b);
      if (!p->slots[i].cbuf) {
        st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "jit: cannot allocate a %zu-byte constant", b);
        break;
      }
      st = be->iface->from_host(be->ctx, p->slots[i].cbuf, g->nodes[i].cdata, b);
      p->const_bytes += align64(b);
      continue;
    }
    if (n->op == EVO_OP_RESHAPE || n->op == EVO_OP_STOP_GRADIENT) {
      p->slots[i].kind = SLOT_ALIAS;
      p->slots[i].root = n->in[0];
      continue;
    }
    const evo_node_t *ins[EVO_MAX_INPUTS] = {0};
    for (int k = 0; k < n->n_in; k++) ins[k] = &p->nodes[n->in[k]];
    if (!be->iface->supports_op(be->ctx, n, ins)) {
      st = evo_error(EVO_STATUS_UNSUPPORTED, "jit: backend %s has no kernel for %s", be->iface->name,
                     evo_op_name(n->op));
      break;
    }
    size_t sb = be->iface->scratch_bytes(be->ctx, n, ins);
    if (sb > p->scratch_bytes) p->scratch_bytes = sb;
    p->slots[i].kind = SLOT_ARENA;
    p->order[p->n_order++] = i;
    p->naive_bytes += align64(node_bytes(n));
  }
  if (st != EVO_STATUS_OK) {
    free(last_use);
    free(live);
    return plan_fail(p, st);
  }

  /* Hoisting: the kernels on static inputs only go first. */
  char *stat = NULL;
  if (p->static_mask && !(stat = hoist(p, live))) {
    free(last_use);
    free(live);
    return plan_fail(p, evo_error(EVO_STATUS_OUT_OF_MEMORY, "jit: out of memory"));
  }

  /* Liveness on storage roots: a root lives until the last compute node reading it (or any alias of it); a
     hoisted result read by the rest lives as long as the plan. */
  for (int oi = 0; oi < p->n_order; oi++) {
    const evo_node_t *n = &p->nodes[p->order[oi]];
    for (int k = 0; k < n->n_in; k++) {
      const int r = root_of(p->slots, n->in[k]);
      last_use[r] = stat && stat[r] && oi >= p->n_static ? p->n_order : oi;
    }
  }
  free(stat);
  for (int j = 0; j < g->n_outputs; j++) last_use[root_of(p->slots, g->outputs[j])] = p->n_order;

  arena_alloc aa = {0};
  for (int oi = 0; oi < p->n_order && st == EVO_STATUS_OK; oi++) {
    int i = p->order[oi];
    size_t off;
    arena_take(&aa, node_bytes(&p->nodes[i]), &off);
    p->slots[i].offset = off;
    if (last_use[i] < 0) last_use[i] = oi; /* computed but unread: free right after */
    /* Free every arena root whose last reader is this node. */
    const evo_node_t *n = &p->nodes[i];
    for (int k = 0; k < n->n_in; k++) {
      int r = root_of(p->slots, n->in[k]);
      if (p->slots[r].kind == SLOT_ARENA && last_use[r] == oi) {
        if (arena_give(&aa, p->slots[r].offset, node_bytes(&p->nodes[r])) != 0)
          st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "jit: out of memory");
        last_use[r] = -2; /* freed once even if read twice */
      }
    }
    if (last_use[i] == oi && arena_give(&aa, off, node_bytes(n)) != 0)
      st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "jit: out of memory");
  }
  free(aa.free);
  free(last_use);
  free(live);
  if (st != EVO_STATUS_OK) return plan_fail(p, st);

  p->arena_bytes = aa.high;
  if (p->arena_bytes) {
    p->arena = evo_backend_alloc(be, p->arena_bytes);
    if (!p->arena)
      return plan_fail(p, evo_error(EVO_STATUS_OUT_OF_MEMORY, "jit: cannot allocate a %zu-byte arena",
                                    p->arena_bytes));
  }
  if (p->scratch_bytes) {
    p->scratch = evo_backend_alloc(be, p->scratch_bytes);
    if (!p->scratch)
      return plan_fail(p, evo_error(EVO_STATUS_OUT_OF_MEMORY, "jit: cannot allocate %zu bytes of scratch",
                                    p->scratch_bytes));
  }
  *out = p;
  return EVO_STATUS_OK;
}

static const void *slot_ptr(const evo_plan *p, int i) {
  i = root_of(p->slots, i);
  const plan_slot *s = &p->slots[i];
  switch (s->kind) {
  case SLOT_INPUT: return p->bound[s->input_idx];
  case SLOT_CONST: return s->cbuf;
  case SLOT_ARENA: return (const char *)p->arena + s->offset;
  default: return NULL;
  }
}

static evo_status check_tensor(const evo_node_t *n, const evo_tensor *t, evo_backend *be, const char *what, int j) {
  if (!t) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "plan_run: %s %d is NULL", what, j);
  if (evo_tensor_backend(t) != be)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "plan_run: %s %d is on another backend", what, j);
  if (evo_tensor_dtype(t) != n->dtype || evo_tensor_ndim(t) != n->ndim ||
      memcmp(evo_tensor_shape(t), n->shape, sizeof(int64_t) * (size_t)n->ndim) != 0)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "plan_run: %s %d has the wrong dtype or shape", what, j);
  return EVO_STATUS_OK;
}

/* Enqueues kernels order[from .. to). */
static evo_status run_kernels(evo_plan *p, int from, int to) {
  evo_status st;
  for (int oi = from; oi < to; oi++) {
    int i = p->order[oi];
    const evo_node_t *n = &p->nodes[i];
    evo_kernel_args a = {.node = n, .dst = (void *)slot_ptr(p, i), .scratch = p->scratch,
                         .scratch_bytes = p->scratch_bytes};
    for (int k = 0; k < n->n_in; k++) {
      a.in[k] = &p->nodes[n->in[k]];
      a.src[k] = slot_ptr(p, n->in[k]);
    }
    if ((st = p->be->iface->run(p->be->ctx, &a)) != EVO_STATUS_OK) return st;
  }
  return EVO_STATUS_OK;
}

/* Enqueues the kernels from order[from] on and the copies into the output tensors (the plan's own buffers never
   escape). */
static evo_status enqueue(evo_plan *p, evo_tensor *const *outputs, int from) {
  evo_status st = run_kernels(p, from, p->n_order);
  for (int j = 0; st == EVO_STATUS_OK && j < p->n_outputs; j++) {
    const evo_node_t *n = &p->nodes[p->outputs[j]];
    st = p->be->iface->copy(p->be->ctx, evo_tensor_buffer(outputs[j]), slot_ptr(p, p->outputs[j]), node_bytes(n));
  }
  return st;
}

/* Device backends: replay the recording of the kernels after the hoisted ones, re-recording first when it was
   made with other tensors. The run stays queued on the backend's stream; reading an output back (to_host) waits
   for it. */
static evo_status run_graph(evo_plan *p, evo_tensor *const *outputs) {
  const evo_backend_iface *f = p->be->iface;
  int same = p->gexec != NULL;
  for (int j = 0; same && j < p->n_inputs; j++) same = p->rec_in[j] == p->bound[j];
  for (int j = 0; same && j < p->n_outputs; j++) same = p->rec_out[j] == evo_tensor_buffer(outputs[j]);
  if (!same) {
    evo_status st = f->graph_begin(p->be->ctx);
    if (st != EVO_STATUS_OK) return st;
    st = enqueue(p, outputs, p->n_static);
    evo_status end = f->graph_end(p->be->ctx, st == EVO_STATUS_OK, &p->gexec);
    if (st != EVO_STATUS_OK || end != EVO_STATUS_OK) return st != EVO_STATUS_OK ? st : end;
    for (int j = 0; j < p->n_inputs; j++) p->rec_in[j] = p->bound[j];
    for (int j = 0; j < p->n_outputs; j++) p->rec_out[j] = evo_tensor_buffer(outputs[j]);
    p->n_records++;
  }
  p->n_launches++;
  return f->graph_launch(p->be->ctx, p->gexec);
}

static evo_status bind_inputs(evo_plan *p, evo_tensor *const *inputs) {
  evo_status st;
  for (int j = 0; j < p->n_inputs; j++) {
    if ((st = check_tensor(&p->nodes[p->inputs[j]], inputs[j], p->be, "input", j)) != EVO_STATUS_OK) return st;
    p->bound[j] = evo_tensor_buffer(inputs[j]);
  }
  return EVO_STATUS_OK;
}

/* Whether the hoisted kernels' results are those of the bound static inputs. */
static bool static_current(const evo_plan *p) {
  bool ok = p->static_valid;
  for (int j = 0; ok && j < p->n_inputs && j < 64; j++)
    if ((p->static_mask >> j) & 1) ok = p->static_bound[j] == p->bound[j];
  return ok;
}

/* Runs (enqueues, on a device) the hoisted kernels unless their results are current. */
static evo_status refresh_static(evo_plan *p) {
  if (!p->n_static || static_current(p)) return EVO_STATUS_OK;
  p->static_valid = false;
  evo_status st = run_kernels(p, 0, p->n_static);
  if (st != EVO_STATUS_OK) return st;
  memcpy(p->static_bound, p->bound, sizeof(void *) * (size_t)p->n_inputs);
  p->static_valid = true;
  p->n_static_runs++;
  return EVO_STATUS_OK;
}

evo_status evo_plan_run(evo_plan *p, evo_tensor *const *inputs, evo_tensor *const *outputs) {
  evo_status st = bind_inputs(p, inputs);
  if (st != EVO_STATUS_OK) return st;
  for (int j = 0; j < p->n_outputs; j++)
    if ((st = check_tensor(&p->nodes[p->outputs[j]], outputs[j], p->be, "output", j)) != EVO_STATUS_OK) return st;
  const evo_backend_iface *f = p->be->iface;
  /* Inside a recording the caller makes of its own (a simulation chunk) the kernels go straight into that one:
     the hoisted ones too unless they are current (recorded work has not run, so it makes nothing current). */
  if (f->capturing && f->capturing(p->be->ctx)) return enqueue(p, outputs, static_current(p) ? p->n_static : 0);
  if ((st = refresh_static(p)) != EVO_STATUS_OK) return st;
  if (f->graph_begin) return run_graph(p, outputs);
  if ((st = enqueue(p, outputs, p->n_static)) != EVO_STATUS_OK) return st;
  return f->sync(p->be->ctx);
}

evo_status evo_plan_run_static(evo_plan *p, evo_tensor *const *inputs) {
  evo_status st = bind_inputs(p, inputs);
  if (st != EVO_STATUS_OK) return st;
  const evo_backend_iface *f = p->be->iface;
  if (p->n_static && f->capturing && f->capturing(p->be->ctx))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "plan_run_static: called while the stream is being recorded");
  return refresh_static(p);
}

void evo_plan_static_changed(evo_plan *p) {
  if (p) p->static_valid = false;
}

void evo_plan_static_stats(const evo_plan *p, int *kernels, int *runs) {
  if (kernels) *kernels = p->n_static;
  if (runs) *runs = p->n_static_runs;
}

void evo_plan_graph_stats(const evo_plan *p, int *records, int *launches) {
  if (records) *records = p->n_records;
  if (launches) *launches = p->n_launches;
}

size_t evo_plan_peak_bytes(const evo_plan *p) { return p->arena_bytes + p->scratch_bytes + p->const_bytes; }
size_t evo_plan_naive_bytes(const evo_plan *p) { return p->naive_bytes + p->scratch_bytes + p->const_bytes; }
int evo_plan_n_kernels(const evo_plan *p) { return p->n_order; }
size_t evo_plan_scratch_bytes(const evo_plan *p) { return p->scratch_bytes; }

evo_status evo_eval(const evo_graph *g, evo_backend *be, evo_tensor *const *inputs, evo_tensor *const *outputs) {
  evo_plan *p;
  evo_status st = evo_jit(g, be, &p);
  if (st != EVO_STATUS_OK) return st;
  st = evo_plan_run(p, inputs, outputs);
  evo_plan_free(p);
  return st;
}
