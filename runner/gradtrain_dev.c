/* Gradient training with resident parameters (gradtrain_impl.h): on a device, with an elementwise optimizer, the
   trained entries and the optimizer's moments stay on the device and the step runs there (algos/optim/
   optim_cuda.cu), so a step moves only the batch up and the loss down. The host keeps the schedule and the step
   count (the chunks' evo_optim) and copies of the parameters and moments, brought up to date for checkpoints,
   best.safetensors and the API; the kernels compute each element as the host's optimizer does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "backend_impl.h"
#include "gradtrain_impl.h"
#ifdef EVOC_HAVE_CUDA
#include "optim/optim_cuda.h"
#endif

struct evo_gradtrain_resident {
  int n_state;                /* moments per parameter: 0 (sgd), 1 (trace), 2 (mu, nu) */
  evo_tensor **state[2];      /* [n_trained] each, F64 on t->dev */
  evo_tensor *part, *sumsq;   /* global-norm scratch: the spans' sums, their total */
  int64_t *part_off;          /* [n_trained] first span of each entry in part */
  bool host_stale, dev_stale; /* which side holds older parameters and moments */
};

void evo_gradtrain_dev_free(evo_gradtrain *t) {
  evo_gradtrain_resident *r = t->res;
  if (!r) return;
  for (int s = 0; s < 2; s++)
    for (int k = 0; r->state[s] && k < t->n_trained; k++) evo_tensor_free(r->state[s][k]);
  free(r->state[0]), free(r->state[1]), free(r->part_off);
  evo_tensor_free(r->part), evo_tensor_free(r->sumsq);
  free(r);
  t->res = NULL;
}

evo_status evo_gradtrain_dev_init(evo_gradtrain *t) {
#ifndef EVOC_HAVE_CUDA
  (void)t;
  return EVO_STATUS_OK;
#else
  if (!t->dev || t->op.kind == EVO_OPTIM_CLIPUP) return EVO_STATUS_OK; /* ClipUp's norms stay on the host */
  evo_gradtrain_resident *r = calloc(1, sizeof *r);
  if (!r) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory");
  t->res = r;
  r->n_state = t->op.kind == EVO_OPTIM_SGD ? 0 : t->op.kind == EVO_OPTIM_MOMENTUM || t->op.kind ==
               EVO_OPTIM_NESTEROV ? 1 : 2;
  r->part_off = malloc(sizeof(int64_t) * (size_t)t->n_trained);
  for (int s = 0; s < r->n_state; s++) r->state[s] = calloc((size_t)t->n_trained, sizeof(evo_tensor *));
  if (!r->part_off || (r->n_state > 0 && !r->state[0]) || (r->n_state > 1 && !r->state[1]))
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory");
  int64_t parts = 0;
  for (int k = 0; k < t->n_trained; k++) {
    const int64_t n = evo_tensor_numel(t->param[t->trained_idx[k]]);
    r->part_off[k] = parts, parts += evo_optim_cuda_parts(n);
    for (int s = 0; s < r->n_state; s++)
      if (!(r->state[s][k] = evo_tensor_new(t->dev, EVO_F64, 1, (int64_t[]){n})))
        return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of device memory for the optimizer's moments");
  }
  r->part = evo_tensor_new(t->dev, EVO_F64, 1, (int64_t[]){parts > 0 ? parts : 1});
  r->sumsq = evo_tensor_new(t->dev, EVO_F64, 0, NULL);
  if (!r->part || !r->sumsq) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of device memory");
  r->dev_stale = true; /* parameters and (zero) moments go up before the first step */
  return EVO_STATUS_OK;
#endif
}

/* Copies the trained entries and every chunk's moments between the host and the device (up: host -> device). */
static evo_status move(evo_gradtrain *t, bool up) {
  evo_gradtrain_resident *r = t->res;
  evo_status st = EVO_STATUS_OK;
  for (int k = 0; !st && k < t->n_trained; k++) {
    evo_tensor *h = t->param[t->trained_idx[k]], *d = t->dparam[t->trained_idx[k]];
    st = up ? evo_tensor_copy_from_host(d, evo_tensor_data(h), evo_tensor_nbytes(h))
            : evo_tensor_copy_to_host(d, evo_tensor_data(h), evo_tensor_nbytes(h));
  }
  for (int c = 0; !st && c < t->n_chunks; c++) {
    const evo_gradtrain_chunk *ch = &t->chunks[c];
    for (int s = 0; !st && s < r->n_state; s++) {
      const char *name;
      double *data;
      int64_t len;
      evo_optim_state_at(ch->o, s, &name, &data, &len); /* the moments come first, the counter last */
      const size_t off = sizeof(double) * (size_t)ch->offset, bytes = sizeof(double) * (size_t)len;
      st = up ? evo_tensor_write(r->state[s][ch->grad_k], off, data, bytes)
              : evo_tensor_read(r->state[s][ch->grad_k], off, data, bytes);
    }
  }
  return st;
}

evo_status evo_gradtrain_dev_upload(evo_gradtrain *t) {
  if (!t->res || !t->res->dev_stale) return EVO_STATUS_OK;
  evo_status st = move(t, true);
  if (!st) t->res->dev_stale = false;
  return st;
}

evo_status evo_gradtrain_dev_sync(evo_gradtrain *t) {
  if (!t->res || !t->res->host_stale) return EVO_STATUS_OK;
  evo_status st = move(t, false);
  if (!st) t->res->host_stale = false;
  return st;
}

void evo_gradtrain_dev_host_changed(evo_gradtrain *t) {
  if (t->res) t->res->dev_stale = true, t->res->host_stale = false;
}

evo_status evo_gradtrain_dev_read_params(const evo_gradtrain *t, int i, float *dst) {
  if (t->res && t->res->host_stale && t->trained[i])
    return evo_tensor_copy_to_host(t->dparam[i], dst, evo_tensor_nbytes(t->param[i]));
  memcpy(dst, evo_tensor_data(t->param[i]), evo_tensor_nbytes(t->param[i]));
  return EVO_STATUS_OK;
}

#ifdef EVOC_HAVE_CUDA
static void *buf(const evo_tensor *x) { return x ? evo_tensor_buffer(x) : NULL; }

/* optax.clip_by_global_norm's factor over every trained gradient, summed on the device in a fixed order. */
static evo_status clip_scale(evo_gradtrain *t, void *stream, double *scale) {
  evo_gradtrain_resident *r = t->res;
  *scale = 1;
  if (!(t->op.clip_norm > 0)) return EVO_STATUS_OK;
  evo_status st = EVO_STATUS_OK;
  int64_t parts = 0;
  for (int k = 0; !st && k < t->n_trained; k++) {
    const int64_t n = evo_tensor_numel(t->dgrad[k]);
    st = evo_optim_cuda_sumsq_parts(stream, buf(t->dgrad[k]), n, (double *)buf(r->part) + r->part_off[k]);
    parts = r->part_off[k] + evo_optim_cuda_parts(n);
  }
  double sq = 0;
  if (!st) st = evo_optim_cuda_sum(stream, buf(r->part), parts, buf(r->sumsq));
  if (!st) st = evo_tensor_read(r->sumsq, 0, &sq, sizeof sq);
  const double norm = sqrt(sq);
  if (!st && norm >= t->op.clip_norm) *scale = t->op.clip_norm / norm;
  return st;
}
#endif

evo_status evo_gradtrain_dev_step(evo_gradtrain *t) {
#ifndef EVOC_HAVE_CUDA
  (void)t;
  return evo_error(EVO_STATUS_UNSUPPORTED, "gradtrain: built without CUDA");
#else
  evo_gradtrain_resident *r = t->res;
  evo_status st = evo_gradtrain_dev_upload(t);
  if (!st) st = evo_backend_use(t->dev);
  if (st) return st;
  void *stream = evo_backend_stream(t->dev);
  double scale;
  if ((st = clip_scale(t, stream, &scale))) return st;
  evo_optim_coef c;
  evo_optim_coef_next(t->chunks[0].o, &c); /* every chunk is at the same step */
  for (int k = 0; !st && k < t->n_trained; k++)
    st = evo_optim_cuda_step(stream, &c, scale, evo_tensor_numel(t->dgrad[k]), buf(t->dparam[t->trained_idx[k]]),
                             buf(t->dgrad[k]), r->n_state > 0 ? buf(r->state[0][k]) : NULL,
                             r->n_state > 1 ? buf(r->state[1][k]) : NULL);
  if (st) return st;
  for (int ch = 0; ch < t->n_chunks; ch++) evo_optim_advance(t->chunks[ch].o);
  r->host_stale = true;
  return EVO_STATUS_OK;
#endif
}
