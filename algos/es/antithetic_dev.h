/* Internal: where a Gaussian strategy's population-sized work runs (the antithetic PGPE, OpenES and ARS, and
   SNES and CEM). Asked into a tensor on a CUDA backend, a strategy samples its members there (evo_anti_dev_ask*)
   and from then on also computes tell's noise sums there (evo_anti_dev_sums): per generation only O(n) vectors
   cross the bus (the mean, and the per-coordinate stdevs, up; the sums down), never the population. Members and
   sums are bit-identical to the host path (antithetic_cuda.h), so a run gives the same bits whichever side sampled.
   The context borrows the tensor's backend, which must outlive it. */
#ifndef EVOC_ES_ANTITHETIC_DEV_H
#define EVOC_ES_ANTITHETIC_DEV_H
#include "algo_impl.h"
#include "antithetic.h"

typedef struct evo_anti_dev evo_anti_dev;

/* Rows [begin, end) into pop (f32 [end - begin, n] on a CUDA backend), as evo_antithetic_ask; creates or (for
   another backend) replaces *d. */
evo_status evo_anti_dev_ask(evo_anti_dev **d, const evo_algo *a, const float *mean, const double *stdev,
                            double sigma, int begin, int end, evo_tensor *pop);
/* SNES's members: rows [begin, end), row r = mean + sigma (.) z_r, z_r from member r's key (no mirroring). */
evo_status evo_anti_dev_ask_plain(evo_anti_dev **d, const evo_algo *a, const double *mean, const double *sigma,
                                  int begin, int end, evo_tensor *pop);
/* Tell's sums over directions t = 0 .. nd - 1 (keys of members dirs[t] of generation gen; dirs NULL: t), the
   host's evo_anti_sums bit for bit (antithetic_cuda.h): sc = sum_t h[t] eps_t, and with c also ss = sum_t
   c[t] (eps_t^2 - 1); directions with h[t] == 0 are skipped when c is NULL or skip_zero. sc, ss: n host values. */
evo_status evo_anti_dev_sums(evo_anti_dev *d, const evo_algo *a, int64_t gen, const int *dirs, const double *h,
                            const double *c, bool skip_zero, int nd, double *sc, double *ss);
void evo_anti_dev_free(evo_anti_dev *d);

/* Tell's sums of the current generation where the members were sampled: on the device when d is set
   (evo_anti_dev_sums), else on the host (evo_anti_sums over the keys of members dirs[t], or t when dirs is NULL;
   keys: scratch for nd keys). The same bits either way. */
static inline evo_status evo_anti_tell_sums(evo_anti_dev *d, evo_algo *a, const int *dirs, const double *h,
                                            const double *c, bool skip_zero, int nd, double *sc, double *ss,
                                            evo_key *keys) {
  if (d) return evo_anti_dev_sums(d, a, a->gen, dirs, h, c, skip_zero, nd, sc, ss);
  for (int t = 0; t < nd; t++) keys[t] = evo_algo_member_key(a, a->gen, dirs ? dirs[t] : t);
  evo_anti_sums(a->n, keys, evo_zc_lookup(a, dirs, keys, nd), nd, h, c, skip_zero, sc, ss);
  return EVO_STATUS_OK;
}

#endif
