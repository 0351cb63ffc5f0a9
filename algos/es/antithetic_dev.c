/* The device context of the Gaussian strategies (antithetic_dev.h): a handful of device buffers on the
   population's backend, grown when a generation needs more, and the uploads and downloads around the kernels of
   antithetic_cuda.cu. Every copy runs on the backend's stream, in order with the kernels. */
#include <stdlib.h>
#include <string.h>
#include "antithetic_dev.h"
#include "backend_impl.h"
#ifdef EVOC_HAVE_CUDA
#include "antithetic_cuda.h"
#endif

struct evo_anti_dev {
  evo_backend *be; /* borrowed */
  evo_tensor *keys, *mean, *stdev, *mean64, *h, *c, *sc, *ss, *part;
  int64_t keys_cap;
  evo_key *keys_h;
};

void evo_anti_dev_free(evo_anti_dev *d) {
  if (!d) return;
  evo_tensor *all[] = {d->keys, d->mean, d->stdev, d->mean64, d->h, d->c, d->sc, d->ss, d->part};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) evo_tensor_free(all[i]);
  free(d->keys_h);
  free(d);
}

static evo_status oom(void) { return evo_error(EVO_STATUS_OUT_OF_MEMORY, "algo: out of device memory"); }

/* *t holds at least n elements of dt (regrown, contents lost, when it does not). */
static evo_status reserve(evo_anti_dev *d, evo_tensor **t, evo_dtype dt, int64_t n) {
  if (*t && evo_tensor_numel(*t) >= n) return EVO_STATUS_OK;
  evo_tensor_free(*t);
  *t = evo_tensor_new(d->be, dt, 1, (int64_t[]){n > 0 ? n : 1});
  return *t ? EVO_STATUS_OK : oom();
}

/* *d for backend be, with its mean buffer (a failed attempt leaves *d NULL, so the next call tries again). */
static evo_status context(evo_anti_dev **d, const evo_algo *a, evo_backend *be) {
  if (*d && (*d)->be == be) return EVO_STATUS_OK;
  evo_anti_dev_free(*d);
  if (!(*d = calloc(1, sizeof **d))) return oom();
  (*d)->be = be;
  evo_status st = reserve(*d, &(*d)->mean, EVO_F32, a->n);
  if (st) evo_anti_dev_free(*d), *d = NULL;
  return st;
}

/* Uploads the keys of directions dirs[t] (t if dirs is NULL), t < nd, of generation gen, starting at k0. */
static evo_status upload_keys(evo_anti_dev *d, const evo_algo *a, int64_t gen, int k0, const int *dirs, int nd) {
  if (nd > d->keys_cap) {
    evo_key *p = realloc(d->keys_h, sizeof(evo_key) * (size_t)nd);
    if (!p) return oom();
    d->keys_h = p, d->keys_cap = nd;
  }
  for (int t = 0; t < nd; t++) d->keys_h[t] = evo_algo_member_key(a, gen, dirs ? dirs[t] : k0 + t);
  evo_status st = reserve(d, &d->keys, EVO_U32, 2 * (int64_t)nd);
  return st ? st : evo_tensor_write(d->keys, 0, d->keys_h, sizeof(evo_key) * (size_t)nd);
}

#ifdef EVOC_HAVE_CUDA

static void *buf(const evo_tensor *t) { return t ? evo_tensor_buffer(t) : NULL; }

evo_status evo_anti_dev_ask(evo_anti_dev **d, const evo_algo *a, const float *mean, const double *stdev,
                            double sigma, int begin, int end, evo_tensor *pop) {
  evo_backend *be = evo_tensor_backend(pop);
  evo_status st = context(d, a, be);
  if (st) return st;
  evo_anti_dev *c = *d;
  const int k0 = begin / 2, k1 = (end + 1) / 2;
  st = upload_keys(c, a, a->gen, k0, NULL, k1 - k0);
  if (!st) st = evo_tensor_write(c->mean, 0, mean, sizeof(float) * (size_t)a->n);
  if (!st && stdev) st = reserve(c, &c->stdev, EVO_F64, a->n);
  if (!st && stdev) st = evo_tensor_write(c->stdev, 0, stdev, sizeof(double) * (size_t)a->n);
  if (!st) st = evo_backend_use(be);
  if (!st)
    st = evo_anti_cuda_ask(evo_backend_stream(be), buf(c->keys), buf(c->mean), stdev ? buf(c->stdev) : NULL, sigma,
                           a->n, begin, end, evo_tensor_buffer(pop));
  return st;
}

evo_status evo_anti_dev_ask_plain(evo_anti_dev **d, const evo_algo *a, const double *mean, const double *sigma,
                                  int begin, int end, evo_tensor *pop) {
  evo_backend *be = evo_tensor_backend(pop);
  evo_status st = context(d, a, be);
  if (st) return st;
  evo_anti_dev *c = *d;
  st = upload_keys(c, a, a->gen, begin, NULL, end - begin);
  if (!st) st = reserve(c, &c->mean64, EVO_F64, a->n);
  if (!st) st = reserve(c, &c->stdev, EVO_F64, a->n);
  if (!st) st = evo_tensor_write(c->mean64, 0, mean, sizeof(double) * (size_t)a->n);
  if (!st) st = evo_tensor_write(c->stdev, 0, sigma, sizeof(double) * (size_t)a->n);
  if (!st) st = evo_backend_use(be);
  if (!st)
    st = evo_anti_cuda_ask_plain(evo_backend_stream(be), buf(c->keys), buf(c->mean64), buf(c->stdev), a->n, begin,
                                 end, evo_tensor_buffer(pop));
  return st;
}

evo_status evo_anti_dev_sums(evo_anti_dev *d, const evo_algo *a, int64_t gen, const int *dirs, const double *h,
                            const double *c, bool skip_zero, int nd, double *sc, double *ss) {
  const int64_t n = a->n;
  evo_status st = upload_keys(d, a, gen, 0, dirs, nd);
  if (!st) st = reserve(d, &d->h, EVO_F64, nd);
  if (!st) st = reserve(d, &d->sc, EVO_F64, n);
  if (!st && c) st = reserve(d, &d->c, EVO_F64, nd);
  if (!st && c) st = reserve(d, &d->ss, EVO_F64, n);
  const int64_t part = evo_anti_cuda_part_len(n, nd, c != NULL);
  if (!st && part) st = reserve(d, &d->part, EVO_F64, part);
  if (!st) st = evo_tensor_write(d->h, 0, h, sizeof(double) * (size_t)nd);
  if (!st && c) st = evo_tensor_write(d->c, 0, c, sizeof(double) * (size_t)nd);
  if (!st) st = evo_backend_use(d->be);
  if (!st)
    st = evo_anti_cuda_sums(evo_backend_stream(d->be), buf(d->keys), nd, buf(d->h), c ? buf(d->c) : NULL,
                            skip_zero, n, buf(d->sc), c ? buf(d->ss) : NULL, part ? buf(d->part) : NULL);
  if (!st) st = evo_tensor_read(d->sc, 0, sc, sizeof(double) * (size_t)n);
  if (!st && c) st = evo_tensor_read(d->ss, 0, ss, sizeof(double) * (size_t)n);
  return st;
}

#else /* no CUDA: no tensor lives on a device, so the strategies never get here */

evo_status evo_anti_dev_ask(evo_anti_dev **d, const evo_algo *a, const float *mean, const double *stdev,
                            double sigma, int begin, int end, evo_tensor *pop) {
  (void)d, (void)a, (void)mean, (void)stdev, (void)sigma, (void)begin, (void)end, (void)pop, (void)context;
  return evo_error(EVO_STATUS_UNSUPPORTED, "algo ask: device tensors need the CUDA backend");
}

evo_status evo_anti_dev_ask_plain(evo_anti_dev **d, const evo_algo *a, const double *mean, const double *sigma,
                                  int begin, int end, evo_tensor *pop) {
  (void)mean, (void)sigma;
  return evo_anti_dev_ask(d, a, NULL, NULL, 0, begin, end, pop);
}

evo_status evo_anti_dev_sums(evo_anti_dev *d, const evo_algo *a, int64_t gen, const int *dirs, const double *h,
                            const double *c, bool skip_zero, int nd, double *sc, double *ss) {
  (void)d, (void)a, (void)gen, (void)dirs, (void)h, (void)c, (void)skip_zero, (void)nd, (void)sc, (void)ss,
      (void)upload_keys;
  return evo_error(EVO_STATUS_UNSUPPORTED, "algo tell: device sums need the CUDA backend");
}

#endif
