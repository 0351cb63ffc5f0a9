/* Internal: state of CMA-ES / sep-CMA-ES / Cholesky-CMA-ES (algos/es/cmaes.c) shared with the stop/restart logic
   (algos/es/cmaes_restart.c) and with tests/test_cmaes.c, which inspects it. */
#ifndef EVOC_CMAES_IMPL_H
#define EVOC_CMAES_IMPL_H
#include <stdint.h>
#include "algo_impl.h"
#include "cmaes_params.h"

/* Members are generated in blocks of CMAES_BLOCK aligned on the member index, so a member's vector is computed
   by exactly the same BLAS call (same shapes) whichever slice asks for it and in tell: bit-identical across ranks. */
#define CMAES_BLOCK 32
/* Columns per dsyrk call of the covariance update (per sign of the coefficients). */
#define CMAES_WCOLS 128
/* History ring of best / median fitness per generation (tolfun, stagnation); the tutorial caps it at 20,000. */
#define CMAES_HIST 20000
/* The y vectors of a generation are cached between ask and tell when n * lambda doubles fit in this budget. */
#define CMAES_CACHE_MAX ((int64_t)1 << 22)

/* Stop criteria (bit flags, stored in cmaes_scalars.stop_flags). */
enum {
  CMAES_STOP_TOLFUN = 1,
  CMAES_STOP_TOLX = 2,
  CMAES_STOP_NOEFFECTAXIS = 4,
  CMAES_STOP_NOEFFECTCOORD = 8,
  CMAES_STOP_CONDITION = 16,
  CMAES_STOP_STAGNATION = 32,
  CMAES_STOP_TOLUPSIGMA = 64,
  CMAES_STOP_MAXITER = 128, /* BIPOP small-population run reached its generation budget */
  CMAES_STOP_EQUALFUN = 256
};

/* Scalars saved as one f64 array (counters are exact in double below 2^53). */
typedef struct {
  double sigma;
  double sigma0;           /* sigma at the start of the current run */
  double run_gen;          /* generations told in the current run */
  double eigen_count;      /* eigendecompositions in the current run */
  double has_best, best_f; /* best-ever member (all runs), f larger is better */
  double hist_n, hist_pos;
  double stop_flags;                 /* CMAES_STOP_* criteria that fired at the last tell (0: none) */
  double last_stop;                  /* criteria of the last tell that fired any (what ended the previous run) */
  double lambda_def;                 /* population of the first run */
  double regime;                     /* BIPOP: 0 small (the first run counts as small, as in pycma), 1 large */
  double n_large;                    /* large-population restarts so far */
  double budget_small, budget_large; /* BIPOP: evaluations spent per regime by finished runs */
  double run_maxgen;                 /* 0: unbounded; BIPOP small runs: generation budget */
} cmaes_scalars;

typedef struct {
  int sep;   /* 1: sep-CMA-ES (diagonal C, B = I) */
  int chol;  /* 1: Cholesky-CMA-ES (C holds the lower Cholesky factor A of the covariance; B NULL; D = the row
                norms of A, sqrt(C_jj)) */
  int flags; /* EVO_CMAES_* for the parameter computation */
  int64_t n;
  int lambda; /* population the parameters and buffers are sized for (= a->pop) */
  int lambda_cap;
  evo_cmaes_params p;
  double *w; /* lambda weights, best first */
  cmaes_scalars sc;
  /* distribution (double) */
  double *mean, *ps, *pc;
  double *C; /* full: n x n column-major, lower triangle significant (upper never read); sep: n; chol: A, lower */
  double *B;                    /* full: n x n eigenvectors (columns); sep: NULL */
  double *D;                    /* n: sqrt of the eigenvalues (sep: sqrt(diag C)) */
  float *best_x;                /* n: best-ever member exactly as asked */
  double *hist_best, *hist_med; /* CMAES_HIST each */
  /* resolved options */
  int restarts_mode, max_restarts, stagnation, flat_fitness;
  double inc_popsize, restart_box, tol_fun, tol_x, tol_upsigma, cond_limit, sigma_min, sigma_max;
  int64_t eigen_gap; /* 0: p.eigen_gap */
  /* scratch (not state) */
  double *work;
  int *iwork;
  int64_t lwork, liwork;
  double *zb, *yb;                       /* n x CMAES_BLOCK each */
  double *pcol, *ncol;                   /* n x CMAES_WCOLS each: scaled columns for the syrk updates */
  double *zbar, *ybar, *mold, *tmp, *ev; /* n each */
  double *med;                           /* CMAES_HIST */
  int *order, *rank;                     /* lambda */
  double *fs;                            /* lambda: fitness sorted, best first */
  double *znorm2;                        /* lambda: ||z_i||^2 */
  double *ycache;                        /* n x lambda or NULL */
  float *zcache;                         /* n x lambda z (exact in f32: drawn as f32) with ycache, or NULL */
  int64_t *ycache_gen;                   /* per block: generation the cached block belongs to (-1: none) */
  double *V, *beta, *bb, *coef;          /* chol: n x (lambda + 1), lambda + 1, lambda + 1, 3 (lambda + 1) */
  int nw;                                /* chol: V's member columns this generation */
  int refresh;                           /* chol: this tell recomputes D (every eigen_gap generations) */
} cmaes_state;

/* Sizes lambda-dependent buffers for a->pop and recomputes the parameters (deterministic in n, lambda, flags). */
evo_status cmaes_set_lambda(evo_algo *a, cmaes_state *s, int lambda);
/* Resets the distribution for a new run at x0 (double, n) with step size sigma0. */
void cmaes_reset_run(cmaes_state *s, const double *x0, double sigma0);
/* Decides on stop criteria after a tell (fs: fitness sorted, best first) and restarts or sets a->stop. */
evo_status cmaes_after_tell(evo_algo *a, cmaes_state *s);
/* median of v[0..k) (k >= 1); reorders v. */
double cmaes_median(double *v, int64_t k);

#endif
