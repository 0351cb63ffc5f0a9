/* MAP-Elites (Mouret & Clune 2015, "Illuminating search spaces by mapping elites", arXiv 1504.04909) on a grid of
   cells_per_dim^bd_dim cells over [bd_lo, bd_hi]^bd_dim; descriptors come from the task through evo_algo_tell_bd.

   Archive, stored sparsely: slots (cell, fitness, descriptor, parameters) are appended when a cell is first filled,
   and an open-addressing hash (linear probing, load <= 1/2, power-of-two table) maps cell -> slot, so memory grows
   with the filled cells and an empty grid of 10^12 cells costs nothing. Cells are never emptied.

   ask: member i of generation g draws, from its key (key, g, i), parent p uniform over the filled slots and
       x = x_p + iso_sigma N(0, I) [+ line_sigma N(0, 1) (x_q - x_p), q a second uniform slot: Iso+LineDD of
       Vassiliades & Mouret 2018, "Discovering the elite hypervolume by leveraging interspecies correlation"];
       an empty archive gives init_mean + init_stdev N(0, I).
   tell: a member goes to cell floor((bd - bd_lo) / (bd_hi - bd_lo) * cells_per_dim) per dimension, clipped to the
       grid (as EvoJAX's ravel_multi_index mode='clip'), row-major over the dimensions. Per cell the generation's
       best member (ties: lower index) replaces the elite when its fitness is strictly greater or the cell is empty;
       new cells take slots in member order. Members with a NaN fitness or descriptor are not archived. The optional
       weight decay (fitness form, algos/weight_decay.c) is applied first and is part of the stored fitness.
   best = the best elite (the first to reach the top fitness); before any elite, init_mean. */
#include <stdlib.h>
#include <string.h>
#include "algo_impl.h"

#define ME_TAG_NOISE 1u
#define ME_TAG_PICK 2u
#define ME_TAG_LINE 3u
#define ME_MAX_CELLS ((int64_t)1 << 62)

typedef struct {
  int64_t cell;
  float f; /* after weight decay */
  int i;
} me_cand;

typedef struct {
  int64_t count, cap; /* filled slots, allocated slots */
  int64_t *cell;      /* cap: cell of each slot */
  float *fit;         /* cap: fitness, maximised sense, weight decay included */
  float *bd;          /* cap x bd_dim */
  float *x;           /* cap x n */
  int64_t *index;     /* icap: slot or -1; icap = 0 or a power of two >= 2 count */
  int64_t icap;
  double best[1]; /* best slot, -1: none */
  int bd_dim, cpd;
  int64_t cells;
  me_cand *cand; /* pop scratch */
  float *xs;     /* pop x n scratch: regenerated members */
} me_state;

static const evo_option_spec me_options[] = {
    {"bd_dim", 2, 1, 16, "behaviour descriptor dimension (2 in most of Mouret & Clune 2015's maps)", NULL},
    {"cells_per_dim", 10, 1, 1e9, "grid cells per descriptor dimension (cells = cells_per_dim^bd_dim <= 2^62)", NULL},
    {"bd_lo", 0, -1e30, 1e30, "lower end of every descriptor's range (descriptors normalised to [0, 1])", NULL},
    {"bd_hi", 1, -1e30, 1e30, "upper end of every descriptor's range; outside values go to the edge cells", NULL},
    {"iso_sigma", 0, 0, 1e6, "isotropic mutation stdev; 0 = init_stdev (default 0.05 = EvoJAX MAPElites iso_sigma)",
     NULL},
    {"line_sigma", 0, 0, 1e6, "stdev along x_q - x_p (Iso+LineDD, Vassiliades & Mouret 2018 use 0.2); 0 = iso "
                              "Gaussian only (Mouret & Clune 2015)", NULL},
    {"qd_offset", 0, -1e30, 1e30, "subtracted from each elite's fitness in the QD score (pyribs qd_score_offset)",
     NULL},
    EVO_WEIGHT_DECAY_OPTION,
};

static inline double me_iso(const evo_algo *a) {
  const double s = evo_algo_opt(a, "iso_sigma");
  return s > 0 ? s : a->init_stdev;
}

/* splitmix64's finaliser (Steele et al. 2014). */
static inline uint64_t me_hash(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Slot of cell c, or -1. Bounded probing, so a damaged (loaded) table cannot loop. */
static int64_t me_find(const me_state *s, int64_t c) {
  if (!s->icap) return -1;
  const uint64_t m = (uint64_t)s->icap - 1;
  for (uint64_t h = me_hash((uint64_t)c) & m, k = 0; k < (uint64_t)s->icap; h = (h + 1) & m, k++) {
    const int64_t slot = s->index[h];
    if (slot < 0 || slot >= s->count) return -1;
    if (s->cell[slot] == c) return slot;
  }
  return -1;
}

static void me_index_put(int64_t *index, int64_t icap, int64_t c, int64_t slot) {
  const uint64_t m = (uint64_t)icap - 1;
  uint64_t h = me_hash((uint64_t)c) & m;
  while (index[h] >= 0) h = (h + 1) & m;
  index[h] = slot;
}

/* Slot arrays for at least `want` slots. */
static evo_status me_reserve(me_state *s, int64_t n, int64_t want) {
  if (want > s->cap) {
    int64_t cap = s->cap < 8 ? 8 : s->cap + s->cap / 2;
    if (cap < want) cap = want;
    int64_t *c = realloc(s->cell, sizeof(int64_t) * (size_t)cap);
    if (c) s->cell = c;
    float *f = c ? realloc(s->fit, sizeof(float) * (size_t)cap) : NULL;
    if (f) s->fit = f;
    float *b = f ? realloc(s->bd, sizeof(float) * (size_t)(cap * s->bd_dim)) : NULL;
    if (b) s->bd = b;
    float *x = b ? realloc(s->x, sizeof(float) * (size_t)cap * (size_t)n) : NULL;
    if (!x) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "map_elites: out of memory for %lld elites", (long long)cap);
    s->x = x, s->cap = cap;
  }
  return EVO_STATUS_OK;
}

/* Room for one more slot and its index entry. */
static evo_status me_grow(me_state *s, int64_t n) {
  evo_status st = me_reserve(s, n, s->count + 1);
  if (st != EVO_STATUS_OK) return st;
  if (2 * (s->count + 1) > s->icap) {
    const int64_t icap = s->icap ? 2 * s->icap : 16;
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)icap);
    if (!idx) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "map_elites: out of memory for the archive index");
    for (int64_t h = 0; h < icap; h++) idx[h] = -1;
    for (int64_t k = 0; k < s->count; k++) me_index_put(idx, icap, s->cell[k], k);
    free(s->index);
    s->index = idx, s->icap = icap;
  }
  return EVO_STATUS_OK;
}

/* Cell of descriptor d, or -1 when a value is NaN. */
static int64_t me_cell(const evo_algo *a, const me_state *s, const float *d) {
  const double lo = evo_algo_opt(a, "bd_lo"), hi = evo_algo_opt(a, "bd_hi");
  int64_t c = 0;
  for (int j = 0; j < s->bd_dim; j++) {
    if (isnan(d[j])) return -1;
    const double u = floor(((double)d[j] - lo) / (hi - lo) * s->cpd);
    const int64_t k = u < 0 ? 0 : u >= s->cpd ? s->cpd - 1 : (int64_t)u;
    c = c * s->cpd + k;
  }
  return c;
}

/* Uniform slot in [0, m) from words w, w + 1 of the tagged key's first block (53 bits, clamped for huge m). */
static int64_t me_pick(evo_key k, int w, int64_t m) {
  const uint32_t ctr[4] = {0, 0, 0, 0};
  uint32_t out[4];
  evo_philox4x32_10(ctr, k.w, out);
  const double u = (double)((((uint64_t)out[w] << 32) | out[w + 1]) >> 11) * 0x1p-53;
  const int64_t p = (int64_t)(u * (double)m);
  return p < m ? p : m - 1;
}

/* Member i of the current generation into row. */
static void me_member(const evo_algo *a, int i, float *row) {
  const me_state *s = a->state;
  const int64_t n = a->n;
  const evo_key mk = evo_algo_member_key(a, a->gen, i);
  evo_algo_normals(evo_key_fold_in(mk, ME_TAG_NOISE), 0, n, row);
  if (s->count == 0) {
    for (int64_t j = 0; j < n; j++) row[j] = (float)(a->init_mean[j] + a->init_stdev * row[j]);
    return;
  }
  const evo_key pk = evo_key_fold_in(mk, ME_TAG_PICK);
  const float *xp = s->x + me_pick(pk, 0, s->count) * n;
  const double iso = me_iso(a), line = evo_algo_opt(a, "line_sigma");
  if (line > 0) {
    const float *xq = s->x + me_pick(pk, 2, s->count) * n;
    const double z = line * evo_rng_normal(evo_key_fold_in(mk, ME_TAG_LINE).w, 0);
    for (int64_t j = 0; j < n; j++) row[j] = (float)(xp[j] + iso * row[j] + z * ((double)xq[j] - xp[j]));
  } else {
    for (int64_t j = 0; j < n; j++) row[j] = (float)(xp[j] + iso * row[j]);
  }
}

static void me_destroy(evo_algo *a) {
  me_state *s = a->state;
  if (!s) return;
  free(s->cell);
  free(s->fit);
  free(s->bd);
  free(s->x);
  free(s->index);
  free(s->cand);
  free(s->xs);
  free(s);
  a->state = NULL;
}

static evo_status me_init(evo_algo *a) {
  const double bd_dim = evo_algo_opt(a, "bd_dim"), cpd = evo_algo_opt(a, "cells_per_dim");
  if (bd_dim != floor(bd_dim) || cpd != floor(cpd))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo map_elites: bd_dim and cells_per_dim must be integers");
  if (!(evo_algo_opt(a, "bd_lo") < evo_algo_opt(a, "bd_hi")))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo map_elites: bd_lo = %g must be below bd_hi = %g",
                     evo_algo_opt(a, "bd_lo"), evo_algo_opt(a, "bd_hi"));
  int64_t cells = 1;
  for (int j = 0; j < (int)bd_dim; j++) {
    if (cells > ME_MAX_CELLS / (int64_t)cpd)
      return evo_error(EVO_STATUS_INVALID_ARGUMENT,
                       "algo map_elites: cells_per_dim^bd_dim = %g^%g exceeds 2^62 cells", cpd, bd_dim);
    cells *= (int64_t)cpd;
  }
  me_state *s = calloc(1, sizeof *s);
  if (!s) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "map_elites: out of memory");
  a->state = s;
  s->bd_dim = (int)bd_dim, s->cpd = (int)cpd, s->cells = cells, s->best[0] = -1;
  s->cand = malloc(sizeof(me_cand) * (size_t)a->pop);
  s->xs = malloc(sizeof(float) * (size_t)a->pop * (size_t)a->n);
  if (!s->cand || !s->xs)
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "map_elites: out of memory for a population of %d", a->pop);
  return EVO_STATUS_OK;
}

static evo_status me_ask(evo_algo *a, int begin, int end, float *pop) {
#pragma omp parallel for schedule(static) if ((int64_t)(end - begin) * a->n >= 65536)
  for (int i = begin; i < end; i++) me_member(a, i, pop + (int64_t)(i - begin) * a->n);
  return EVO_STATUS_OK;
}

/* By cell, then fitness (best first), then member index: the head of each cell's run is its candidate. */
static int me_cmp(const void *pa, const void *pb) {
  const me_cand *x = pa, *y = pb;
  if (x->cell != y->cell) return x->cell < y->cell ? -1 : 1;
  if (x->f != y->f) return x->f > y->f ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

static int me_cmp_member(const void *pa, const void *pb) {
  const me_cand *x = pa, *y = pb;
  return (x->i > y->i) - (x->i < y->i);
}

static evo_status me_tell_bd(evo_algo *a, const float *fitness, const float *bd) {
  me_state *s = a->state;
  const int64_t n = a->n;
  const int P = a->pop;
  const bool decay = evo_algo_weight_decay_coef(a) > 0;
  int m = 0;
  for (int i = 0; i < P; i++) {
    const int64_t c = isfinite(fitness[i]) ? me_cell(a, s, bd + (int64_t)i * s->bd_dim) : -1;
    if (c < 0) continue;
    float f = fitness[i];
    if (decay) { /* every candidate's parameters are needed for its penalty */
      me_member(a, i, s->xs + (int64_t)i * n);
      f = (float)(f - evo_algo_weight_decay(a, s->xs + (int64_t)i * n, n));
    }
    s->cand[m++] = (me_cand){c, f, i};
  }
  qsort(s->cand, (size_t)m, sizeof(me_cand), me_cmp);
  int w = 0; /* winners: each cell's best, if it beats the elite there; then compacted to the front of cand */
  for (int k = 0; k < m; k++) {
    if (k > 0 && s->cand[k - 1].cell == s->cand[k].cell) continue;
    const int64_t slot = me_find(s, s->cand[k].cell);
    if (slot < 0 || s->cand[k].f > s->fit[slot]) s->cand[w++] = s->cand[k];
  }
  /* Insert in member order, so new cells take slots in member order. */
  me_cand *c = s->cand;
  qsort(c, (size_t)w, sizeof(me_cand), me_cmp_member);
  /* Regenerate the winners from the archive as ask saw it, then insert. */
  if (!decay) {
#pragma omp parallel for schedule(static) if ((int64_t)w * n >= 65536)
    for (int k = 0; k < w; k++) me_member(a, c[k].i, s->xs + (int64_t)c[k].i * n);
  }
  for (int k = 0; k < w; k++) {
    const int i = c[k].i;
    int64_t slot = me_find(s, c[k].cell);
    if (slot < 0) {
      evo_status st = me_grow(s, n);
      if (st != EVO_STATUS_OK) return st;
      slot = s->count++;
      s->cell[slot] = c[k].cell;
      me_index_put(s->index, s->icap, c[k].cell, slot);
    }
    s->fit[slot] = c[k].f;
    memcpy(s->bd + slot * s->bd_dim, bd + (int64_t)i * s->bd_dim, sizeof(float) * (size_t)s->bd_dim);
    memcpy(s->x + slot * n, s->xs + (int64_t)i * n, sizeof(float) * (size_t)n);
    if (s->best[0] < 0 || c[k].f > s->fit[(int64_t)s->best[0]]) s->best[0] = (double)slot;
  }
  return EVO_STATUS_OK;
}

static evo_status me_best(const evo_algo *a, float *params) {
  const me_state *s = a->state;
  const float *src = s->best[0] >= 0 ? s->x + (int64_t)s->best[0] * a->n : a->init_mean;
  memcpy(params, src, sizeof(float) * (size_t)a->n);
  return EVO_STATUS_OK;
}

static evo_status me_archive(const evo_algo *a, evo_algo_archive *out) {
  const me_state *s = a->state;
  const double off = evo_algo_opt(a, "qd_offset");
  double qd = 0;
  for (int64_t k = 0; k < s->count; k++) qd += (double)s->fit[k] - off;
  *out = (evo_algo_archive){
      .cells = s->cells, .filled = s->count, .coverage = (double)s->count / (double)s->cells, .qd_score = qd,
      .bytes = (size_t)s->cap * (sizeof(int64_t) + sizeof(float) * (size_t)(1 + s->bd_dim + a->n)) +
               (size_t)s->icap * sizeof(int64_t)};
  return EVO_STATUS_OK;
}

static evo_status me_elite(const evo_algo *a, int64_t k, int64_t *cell, float *fitness, float *bd, float *params) {
  const me_state *s = a->state;
  if (k < 0 || k >= s->count)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "map_elites: elite %lld outside the %lld filled cells",
                     (long long)k, (long long)s->count);
  if (cell) *cell = s->cell[k];
  if (fitness) *fitness = a->maximize ? s->fit[k] : -s->fit[k];
  if (bd) memcpy(bd, s->bd + k * s->bd_dim, sizeof(float) * (size_t)s->bd_dim);
  if (params) memcpy(params, s->x + k * a->n, sizeof(float) * (size_t)a->n);
  return EVO_STATUS_OK;
}

/* The archive's arrays are registered at their filled size; load resizes through me_resize. */
static void me_state_list(evo_algo *a, evo_state_list *l) {
  me_state *s = a->state;
  evo_state_add(l, "map_elites.cell", EVO_I64, s->cell, s->count);
  evo_state_add(l, "map_elites.fit", EVO_F32, s->fit, s->count);
  evo_state_add(l, "map_elites.bd", EVO_F32, s->bd, s->count * s->bd_dim);
  evo_state_add(l, "map_elites.x", EVO_F32, s->x, s->count * a->n);
  evo_state_add(l, "map_elites.index", EVO_I64, s->index, s->icap);
  evo_state_add(l, "map_elites.best", EVO_F64, s->best, 1);
}

static evo_status me_resize(evo_algo *a, const char *name, int64_t n) {
  me_state *s = a->state;
  if (strcmp(name, "map_elites.cell") == 0) { /* the slots are read next, the index after them */
    evo_status st = me_reserve(s, a->n, n);
    if (st == EVO_STATUS_OK) s->count = n;
    return st;
  }
  if (strcmp(name, "map_elites.index") == 0 && n >= 2 * s->count && (n & (n - 1)) == 0) {
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!idx) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "map_elites: out of memory for the archive index");
    free(s->index);
    s->index = idx, s->icap = n;
    return EVO_STATUS_OK;
  }
  return evo_error(EVO_STATUS_FORMAT, "map_elites state: '%s' has %lld values, inconsistent with %lld elites", name,
                   (long long)n, (long long)s->count);
}

static int me_bd_dim(const evo_algo *a) { return ((const me_state *)a->state)->bd_dim; }
static double me_sigma(const evo_algo *a) { return me_iso(a); }

/* EvoJAX's MAP-Elites has no default population; 64 as SimpleGA. */
static int me_default_pop(int64_t n) {
  (void)n;
  return 64;
}

const evo_algo_vtable evo_es_map_elites = {
    .info = {.name = "map_elites",
             .doc = "MAP-Elites (Mouret & Clune 2015): grid archive over task-supplied behaviour descriptors "
                    "(evo_algo_tell_bd), stored sparsely; uniform elite selection, iso or Iso+LineDD mutation "
                    "(Vassiliades & Mouret 2018); pop_size default 64, init_stdev 0.05 (EvoJAX iso_sigma)",
             .best_doc = "best elite",
             .options = me_options,
             .n_options = (int)(sizeof me_options / sizeof *me_options)},
    .default_pop = me_default_pop,
    .default_stdev = 0.05, /* EvoJAX MAPElites iso_sigma */
    .init = me_init,
    .tell_bd = me_tell_bd,
    .ask = me_ask,
    .best = me_best,
    .state = me_state_list,
    .sigma = me_sigma,
    .destroy = me_destroy,
    .bd_dim = me_bd_dim,
    .archive = me_archive,
    .elite = me_elite,
    .state_resize = me_resize,
};
