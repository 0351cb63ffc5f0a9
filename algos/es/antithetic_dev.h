/* Internal: where a Gaussian strategy's population-sized work runs (the antithetic PGPE, OpenES and ARS, and
   SNES). Asked into a tensor on a CUDA backend, a strategy samples its members there (evo_anti_dev_ask*) and from
   then on also computes tell's noise sums there (evo_anti_dev_*sum*): per generation only O(n) vectors cross the
   bus (the mean, and the per-coordinate stdevs, up; the sums down), never the population. Members and sums are bit-identical to the host path (antithetic_cuda.h), so a run
   gives the same bits whichever side sampled. The context borrows the tensor's backend, which must outlive it. */
#ifndef EVOC_ES_ANTITHETIC_DEV_H
#define EVOC_ES_ANTITHETIC_DEV_H
#include "algo_impl.h"

typedef struct evo_anti_dev evo_anti_dev;

/* Rows [begin, end) into pop (f32 [end - begin, n] on a CUDA backend), as evo_antithetic_ask; creates or (for
   another backend) replaces *d. */
evo_status evo_anti_dev_ask(evo_anti_dev **d, const evo_algo *a, const float *mean, const double *stdev,
                            double sigma, int begin, int end, evo_tensor *pop);
/* SNES's members: rows [begin, end), row r = mean + sigma (.) z_r, z_r from member r's key (no mirroring). */
evo_status evo_anti_dev_ask_plain(evo_anti_dev **d, const evo_algo *a, const double *mean, const double *sigma,
                                  int begin, int end, evo_tensor *pop);
/* SNES's sums over members 0 .. nd - 1, skipping u == 0: gm = sum u z, gs = sum u (z^2 - 1). */
evo_status evo_anti_dev_nes_sums(evo_anti_dev *d, const evo_algo *a, int64_t gen, const double *u, int nd,
                                 double *gm, double *gs);
/* evo_antithetic_weighted_sum on the device: out[i] = sum_t w[t] eps_{dirs[t]}[i] (dirs NULL: direction t). */
evo_status evo_anti_dev_weighted_sum(evo_anti_dev *d, const evo_algo *a, int64_t gen, const int *dirs,
                                     const double *w, int nd, double *out);
/* PGPE's two sums over directions 0 .. nd - 1 (antithetic_cuda.h): sc = sum h eps, ss = sum c (eps^2 - 1). */
evo_status evo_anti_dev_pgpe_sums(evo_anti_dev *d, const evo_algo *a, int64_t gen, const double *h, const double *c,
                                  int nd, double *sc, double *ss);
void evo_anti_dev_free(evo_anti_dev *d);

#endif
