/* Internal: the order in which tell's noise sums add their directions, shared by the host loops (antithetic.h)
   and the CUDA kernels (antithetic_cuda.cu) so that both give the same bits. The directions are cut into groups
   of consecutive directions; each group is summed in order from zero, and the group sums are added in order. A
   GPU then runs a thread per (four coordinates, group) instead of per four coordinates, which at n ~ 5,000 would
   leave most of it idle. The groups depend on n and the direction count only (never on threads or devices); with
   one group (large n, or few directions) the sum is the plain sequential one. */
#ifndef EVOC_ES_ANTI_ORDER_H
#define EVOC_ES_ANTI_ORDER_H
#include <stdint.h>
#include "rng_math.h" /* EVO_HD */

#define EVO_ANTI_SUM_THREADS 65536 /* (coordinate quadruple, group) pairs that fill a large GPU */
#define EVO_ANTI_GROUP_MIN 16      /* fewest directions per group: each group's partial sums cost a write */

/* Directions per group for n coordinates and nd directions (nd for a single group). */
static inline EVO_HD int evo_anti_group_size(int64_t n, int nd) {
  const int64_t quads = (n + 3) / 4, want = (EVO_ANTI_SUM_THREADS + quads - 1) / quads;
  if (want <= 1 || nd <= EVO_ANTI_GROUP_MIN) return nd > 0 ? nd : 1;
  const int64_t s = (nd + want - 1) / want;
  return s < EVO_ANTI_GROUP_MIN ? EVO_ANTI_GROUP_MIN : (int)s;
}

static inline EVO_HD int evo_anti_groups(int64_t n, int nd) {
  const int s = evo_anti_group_size(n, nd);
  return nd > 0 ? (nd + s - 1) / s : 1;
}

#endif
