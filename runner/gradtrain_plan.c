/* The compiled computations of gradient training, traced once per batch size:
     train: (entries..., x [B, H, W, 1], labels i32 [B]) -> mean cross-entropy, d/d(trained entries)
     eval:  (entries..., x [E, H, W, 1], labels i32 [E]) -> summed cross-entropy, number of correct argmaxes
   plus the mini-batches that feed them (pixels scaled to [0, 1]) and the per-epoch shuffle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/transform.h"
#include "gradtrain_impl.h"

static evo_status loss_graph(const evo_gradtrain *t, int64_t n, bool eval, evo_graph **out) {
  const evo_ptree *tr = evo_policy_ptree(t->pol);
  evo_graph *g = evo_graph_new();
  evo_node *entries = malloc(sizeof *entries * (size_t)t->n_entries);
  *out = NULL;
  if (!g || !entries) {
    free(entries);
    evo_graph_free(g);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory");
  }
  for (int i = 0; i < t->n_entries; i++) {
    const evo_param_spec *s = evo_ptree_spec(tr, i);
    entries[i] = evo_input(g, s->name, EVO_F32, s->ndim, s->shape);
  }
  evo_node x = evo_input(g, "x", EVO_F32, 4, (int64_t[]){n, t->train.rows, t->train.cols, 1});
  evo_node y = evo_input(g, "labels", EVO_I32, 1, &n);
  evo_node logits = evo_policy_trace_entries(t->pol, g, entries, x, NULL, NULL);
  free(entries);
  if (logits == EVO_NODE_INVALID && !evo_graph_status(g)) { /* an input mismatch: the cause is in evo_last_error */
    evo_graph_free(g);
    return EVO_STATUS_INVALID_ARGUMENT;
  }
  evo_node ce = evo_softmax_cross_entropy(g, logits, y);
  if (!eval) {
    evo_output(g, evo_mean(g, ce, 0, NULL, false));
  } else {
    evo_node hit = evo_cast(g, evo_eq(g, evo_argmax(g, logits, -1, false), y), EVO_F32);
    evo_output(g, evo_sum(g, ce, 0, NULL, false));
    evo_output(g, evo_sum(g, hit, 0, NULL, false));
  }
  evo_status st = evo_graph_status(g);
  if (st) {
    evo_error(st, "gradtrain: tracing policy %s: %s", t->policy_name, evo_graph_error(g));
    evo_graph_free(g);
    return st;
  }
  *out = g;
  return EVO_STATUS_OK;
}

static void plan_free(evo_gradtrain_plan *p) {
  evo_plan_free(p->plan);
  evo_tensor_free(p->x);
  evo_tensor_free(p->y);
  evo_tensor_free(p->dx);
  evo_tensor_free(p->dy);
  *p = (evo_gradtrain_plan){0};
}

static evo_status plan_build(evo_gradtrain *t, evo_gradtrain_plan *p, int64_t n, bool eval) {
  evo_graph *g;
  evo_status st = loss_graph(t, n, eval, &g);
  if (st) return st;
  if (!eval) {
    evo_graph *vg = evo_value_and_grad(g, 0, t->n_trained, t->trained_idx);
    evo_graph_free(g);
    if (!vg) return evo_error(EVO_STATUS_INTERNAL, "gradtrain: value_and_grad: %s", evo_last_error());
    g = vg;
  }
  st = evo_jit(g, t->dev ? t->dev : t->be, &p->plan);
  evo_graph_free(g);
  if (st) return st;
  p->batch = n;
  const int64_t xs[4] = {n, t->train.rows, t->train.cols, 1};
  p->x = evo_tensor_new(t->be, EVO_F32, 4, xs);
  p->y = evo_tensor_new(t->be, EVO_I32, 1, &n);
  if (t->dev) {
    p->dx = evo_tensor_new(t->dev, EVO_F32, 4, xs);
    p->dy = evo_tensor_new(t->dev, EVO_I32, 1, &n);
  }
  if (!p->x || !p->y || (t->dev && (!p->dx || !p->dy))) {
    plan_free(p);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory for a batch of %lld", (long long)n);
  }
  return EVO_STATUS_OK;
}

/* The plan for n examples: a cached one, or a new one in a free slot (the second slot is recycled). */
static evo_status plan_get(evo_gradtrain *t, int64_t n, bool eval, evo_gradtrain_plan **out) {
  evo_gradtrain_plan *slots = eval ? t->eval_plans : t->train_plans;
  int k = slots[0].batch == n ? 0 : 1;
  if (slots[k].batch != n) {
    k = slots[0].batch == 0 ? 0 : 1;
    plan_free(&slots[k]);
    evo_status st = plan_build(t, &slots[k], n, eval);
    if (st) return st;
  }
  *out = &slots[k];
  return EVO_STATUS_OK;
}

evo_status evo_gradtrain_plans_init(evo_gradtrain *t) {
  t->grad = calloc((size_t)t->n_trained, sizeof *t->grad);
  int64_t cap = t->batch > t->eval_batch ? t->batch : t->eval_batch;
  t->idx = malloc(sizeof *t->idx * (size_t)cap);
  t->perm = malloc(sizeof *t->perm * (size_t)t->train.n);
  if (!t->grad || !t->idx || !t->perm) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory");
  for (int k = 0; k < t->n_trained; k++) {
    const evo_param_spec *s = evo_ptree_spec(evo_policy_ptree(t->pol), t->trained_idx[k]);
    if (!(t->grad[k] = evo_tensor_new(t->be, EVO_F32, s->ndim, s->shape)))
      return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory for the gradients");
  }
  t->loss_out = evo_tensor_new(t->be, EVO_F32, 0, NULL);
  t->correct_out = evo_tensor_new(t->be, EVO_F32, 0, NULL);
  if (!t->loss_out || !t->correct_out) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory");
  if (t->dev) { /* the plans' inputs and outputs on the device */
    const evo_ptree *tr = evo_policy_ptree(t->pol);
    t->dparam = calloc((size_t)t->n_entries, sizeof *t->dparam);
    t->dgrad = calloc((size_t)t->n_trained, sizeof *t->dgrad);
    if (!t->dparam || !t->dgrad) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory");
    for (int i = 0; i < t->n_entries; i++) {
      const evo_param_spec *s = evo_ptree_spec(tr, i);
      if (!(t->dparam[i] = evo_tensor_new(t->dev, EVO_F32, s->ndim, s->shape)))
        return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of device memory for the parameters");
    }
    for (int k = 0; k < t->n_trained; k++) {
      const evo_param_spec *s = evo_ptree_spec(tr, t->trained_idx[k]);
      if (!(t->dgrad[k] = evo_tensor_new(t->dev, EVO_F32, s->ndim, s->shape)))
        return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of device memory for the gradients");
    }
    t->frozen_stale = true;
    t->dloss = evo_tensor_new(t->dev, EVO_F32, 0, NULL);
    t->dcorrect = evo_tensor_new(t->dev, EVO_F32, 0, NULL);
    if (!t->dloss || !t->dcorrect) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of device memory");
  }
  /* compile the main shapes now, so a policy that does not fit the data fails before the run */
  evo_gradtrain_plan *p;
  evo_status st = plan_get(t, t->batch, false, &p);
  if (!st) st = plan_get(t, t->eval_batch < t->test.n ? t->eval_batch : t->test.n, true, &p);
  return st;
}

void evo_gradtrain_plans_free(evo_gradtrain *t) {
  for (int k = 0; k < 2; k++) plan_free(&t->train_plans[k]), plan_free(&t->eval_plans[k]);
  for (int k = 0; t->grad && k < t->n_trained; k++) evo_tensor_free(t->grad[k]);
  free(t->grad);
  evo_tensor_free(t->loss_out);
  evo_tensor_free(t->correct_out);
  for (int i = 0; t->dparam && i < t->n_entries; i++) evo_tensor_free(t->dparam[i]);
  for (int k = 0; t->dgrad && k < t->n_trained; k++) evo_tensor_free(t->dgrad[k]);
  free(t->dparam), free(t->dgrad);
  evo_tensor_free(t->dloss);
  evo_tensor_free(t->dcorrect);
  t->dparam = t->dgrad = NULL, t->dloss = t->dcorrect = NULL;
  free(t->idx);
  free(t->perm);
}

static void fill_batch(const evo_gradtrain *t, const evo_mnist_split *d, const int64_t *idx, evo_gradtrain_plan *p) {
  int64_t px = d->rows * d->cols;
  float *x = evo_tensor_data(p->x);
  int32_t *y = evo_tensor_data(p->y);
  for (int64_t b = 0; b < p->batch; b++) {
    const uint8_t *src = d->images + idx[b] * px;
    for (int64_t j = 0; j < px; j++) x[b * px + j] = t->lut[src[j]];
    y[b] = d->labels[idx[b]];
  }
}

/* Copies a host tensor into its device mirror (same shape). */
static evo_status to_dev(evo_tensor *d, const evo_tensor *h) {
  return evo_tensor_copy_from_host(d, evo_tensor_data_const(h), evo_tensor_nbytes(h));
}

/* Runs plan p on its filled batch; outputs[0] gets the (summed or mean) loss. With a device, the plan reads the
   device copies of the parameters and the batch and writes dout[], which are copied back into outputs[];
   upload_params false: the device copies of the parameters are current (later batches of one evaluation); frozen
   entries are copied only after the host changed them (t->frozen_stale), and resident trained entries only by
   evo_gradtrain_dev_upload. */
static evo_status run_plan(evo_gradtrain *t, evo_gradtrain_plan *p, evo_tensor **outputs, evo_tensor **dout,
                           int n_out, bool upload_params) {
  evo_tensor *in[EVO_POLICY_MAX_LAYERS * 2 + 2];
  if (t->n_entries + 2 > (int)(sizeof in / sizeof *in))
    return evo_error(EVO_STATUS_UNSUPPORTED, "gradtrain: %d parameter entries (at most %d)", t->n_entries,
                     (int)(sizeof in / sizeof *in) - 2);
  if (!t->dev) {
    for (int i = 0; i < t->n_entries; i++) in[i] = t->param[i];
    in[t->n_entries] = p->x, in[t->n_entries + 1] = p->y;
    return evo_plan_run(p->plan, in, outputs);
  }
  evo_status st = evo_gradtrain_dev_upload(t); /* resident: the host changed the trained entries (or not) */
  if (!st) st = to_dev(p->dx, p->x);
  if (!st) st = to_dev(p->dy, p->y);
  for (int i = 0; !st && upload_params && i < t->n_entries; i++)
    if (t->trained[i] ? !t->res : t->frozen_stale) st = to_dev(t->dparam[i], t->param[i]);
  if (!st && upload_params) t->frozen_stale = false;
  if (st) return st;
  for (int i = 0; i < t->n_entries; i++) in[i] = t->dparam[i];
  in[t->n_entries] = p->dx, in[t->n_entries + 1] = p->dy;
  st = evo_plan_run(p->plan, in, dout);
  for (int j = 0; !st && j < n_out; j++)
    st = evo_tensor_copy_to_host(dout[j], evo_tensor_data(outputs[j]), evo_tensor_nbytes(outputs[j]));
  return st;
}

evo_status evo_gradtrain_forward_backward(evo_gradtrain *t, int64_t n, const int64_t *idx, double *loss,
                                          bool grads_to_host) {
  evo_gradtrain_plan *p;
  evo_status st = plan_get(t, n, false, &p);
  if (st) return st;
  fill_batch(t, &t->train, idx, p);
  evo_tensor *out[EVO_POLICY_MAX_LAYERS * 2 + 1], *dout[EVO_POLICY_MAX_LAYERS * 2 + 1];
  out[0] = t->loss_out, dout[0] = t->dloss;
  for (int k = 0; k < t->n_trained; k++) out[k + 1] = t->grad[k], dout[k + 1] = t->dev ? t->dgrad[k] : NULL;
  if ((st = run_plan(t, p, out, dout, t->res && !grads_to_host ? 1 : t->n_trained + 1, true))) return st;
  *loss = *(const float *)evo_tensor_data(t->loss_out);
  return EVO_STATUS_OK;
}

evo_status evo_gradtrain_evaluate(evo_gradtrain *t, double *acc, double *loss) {
  double sum = 0, hits = 0;
  evo_status st = EVO_STATUS_OK;
  for (int64_t start = 0; !st && start < t->test.n; start += t->eval_batch) {
    int64_t n = t->test.n - start < t->eval_batch ? t->test.n - start : t->eval_batch;
    evo_gradtrain_plan *p;
    if ((st = plan_get(t, n, true, &p))) break;
    for (int64_t b = 0; b < n; b++) t->idx[b] = start + b;
    fill_batch(t, &t->test, t->idx, p);
    evo_tensor *out[2] = {t->loss_out, t->correct_out}, *dout[2] = {t->dloss, t->dcorrect};
    if ((st = run_plan(t, p, out, dout, 2, start == 0))) break;
    sum += *(const float *)evo_tensor_data(t->loss_out);
    hits += *(const float *)evo_tensor_data(t->correct_out);
  }
  if (st) return st;
  *acc = hits / (double)t->test.n;
  *loss = sum / (double)t->test.n;
  return EVO_STATUS_OK;
}

evo_status evo_gradtrain_loss_grad(evo_gradtrain *t, int64_t n, const int64_t *idx, double *loss, float *grad) {
  if (!t || n < 1 || !idx || !loss || !grad)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "gradtrain_loss_grad: bad arguments");
  for (int64_t b = 0; b < n; b++)
    if (idx[b] < 0 || idx[b] >= t->train.n)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT, "gradtrain_loss_grad: example %lld is outside the %lld "
                       "training images", (long long)idx[b], (long long)t->train.n);
  evo_status st = evo_gradtrain_forward_backward(t, n, idx, loss, true);
  if (st) return st;
  const evo_ptree *tr = evo_policy_ptree(t->pol);
  memset(grad, 0, sizeof(float) * (size_t)evo_ptree_size(tr));
  for (int k = 0; k < t->n_trained; k++)
    memcpy(grad + evo_ptree_offset(tr, t->trained_idx[k]), evo_tensor_data(t->grad[k]),
           evo_tensor_nbytes(t->grad[k]));
  return EVO_STATUS_OK;
}

/* Fisher-Yates from the epoch's key (as the mnist task samples batches), so epoch e always sees the same order. */
void evo_gradtrain_permutation(evo_gradtrain *t, int64_t epoch) {
  int64_t n = t->train.n;
  for (int64_t i = 0; i < n; i++) t->perm[i] = i;
  t->perm_epoch = epoch;
  if (!t->shuffle) return;
  evo_key k = evo_key_fold_in(t->shuffle_key, (uint32_t)epoch);
  for (int64_t i = 0; i + 1 < n; i++) {
    int64_t j = i + (int64_t)((double)evo_rng_uniform01(k.w, (uint64_t)i) * (double)(n - i));
    if (j >= n) j = n - 1;
    int64_t tmp = t->perm[i];
    t->perm[i] = t->perm[j], t->perm[j] = tmp;
  }
}
