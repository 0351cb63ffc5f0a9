/* Fitness and test scores for the trainer: through the simulation manager (a policy), or "direct", where each
   parameter row is the action itself (the functions task: one step, reward -f(x)). Direct episodes are keyed like
   the simulation manager's, so both modes give the same meaning to n_repeats and common random numbers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/ptree.h"
#include "safetensors.h"
#include "trainer_impl.h"

void evo_evaluator_free(evo_evaluator *e) {
  evo_sim_free(e->sim);
  evo_sim_free(e->test_sim);
  evo_policy_free(e->pol);
  evo_policy_free(e->test_pol);
  evo_task_free(e->task);
  evo_task_free(e->test_task);
  evo_ptree_free(e->direct_tree);
  free(e->obs), free(e->reward), free(e->done), free(e->alive), free(e->keys), free(e->ret), free(e->bd);
  memset(e, 0, sizeof *e);
}

const evo_ptree *evo_evaluator_tree(const evo_evaluator *e) {
  return e->direct ? e->direct_tree : evo_policy_ptree(e->pol);
}

void evo_evaluator_normalizer(evo_evaluator *e, double **count, double **mean, double **m2, int64_t *n) {
  *n = 0;
  *count = *mean = *m2 = NULL;
  if (e->direct || !e->normalize_obs) return;
  evo_sim_normalizer(e->sim, count, mean, m2);
  *n = evo_sim_obs_size(e->sim);
}

static evo_status direct_reserve(evo_evaluator *e, const evo_task *task, int64_t E) {
  if (E <= e->cap) return EVO_STATUS_OK;
  const evo_task_spec *sp = evo_task_get_spec(task);
  int64_t obs_numel = 1;
  for (int d = 0; d < sp->obs_ndim; d++) obs_numel *= sp->obs_shape[d];
  free(e->obs), free(e->reward), free(e->done), free(e->alive), free(e->keys), free(e->ret), free(e->bd);
  e->bd = e->bd_dim > 0 ? malloc(sizeof(float) * (size_t)(E * e->bd_dim)) : NULL;
  e->obs = malloc(sizeof(float) * (size_t)(E * obs_numel));
  e->reward = malloc(sizeof(float) * (size_t)E);
  e->done = malloc((size_t)E);
  e->alive = malloc((size_t)E);
  e->keys = malloc(sizeof(evo_key) * (size_t)E);
  e->ret = malloc(sizeof(double) * (size_t)E);
  e->cap = E;
  if (!e->obs || !e->reward || !e->done || !e->alive || !e->keys || !e->ret || (e->bd_dim > 0 && !e->bd)) {
    e->cap = 0;
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory for %lld episodes", (long long)E);
  }
  return EVO_STATUS_OK;
}

/* Episodes of constant actions: episode j plays row rows[j] of params at every step until done. */
static evo_status direct_episodes(evo_evaluator *e, evo_task *task, const float *params, int n_rows, int reps,
                                  const evo_key *keys, double *ret) {
  int64_t E = (int64_t)n_rows * reps, D = e->D;
  if (E <= 0) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "trainer: no episodes to run");
  evo_status st = direct_reserve(e, task, E);
  if (st) return st;
  /* actions [E, D]: each row repeated reps times */
  float *act = malloc(sizeof(float) * (size_t)(E * D));
  if (!act) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
  for (int64_t j = 0; j < E; j++) memcpy(act + j * D, params + (j / reps) * D, sizeof(float) * (size_t)D);
  const evo_task_spec *sp = evo_task_get_spec(task);
  memset(e->alive, 1, (size_t)E);
  for (int64_t j = 0; j < E; j++) ret[j] = 0;
  st = evo_task_reset(task, E, keys, e->obs);
  for (int64_t t = 0; !st && t < sp->max_steps; t++) {
    int any = 0;
    for (int64_t j = 0; j < E && !any; j++) any = e->alive[j];
    if (!any) break;
    if ((st = evo_task_step(task, act, e->obs, e->reward, e->done))) break;
    for (int64_t j = 0; j < E; j++) {
      if (!e->alive[j]) continue;
      ret[j] += e->reward[j];
      if (e->done[j]) e->alive[j] = 0;
    }
  }
  free(act);
  return st;
}

evo_status evo_evaluator_population(evo_evaluator *e, const evo_tensor *pop, int n, int64_t first_member,
                                    evo_key key, float *fitness, float *bd) {
  int reps = e->n_repeats;
  if (!e->direct)
    return evo_sim_evaluate_tensor(e->sim, pop, n, first_member, key, fitness, e->bd_dim > 0 ? bd : NULL);
  const float *params = evo_tensor_data_const(pop);
  if (!params) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "trainer: the functions task reads host rows");
  int64_t E = (int64_t)n * reps;
  evo_status st = direct_reserve(e, e->task, E);
  if (st) return st;
  for (int i = 0; i < n; i++)
    for (int r = 0; r < reps; r++)
      e->keys[(int64_t)i * reps + r] =
          e->crn ? evo_key_fold_in(key, (uint32_t)r)
                 : evo_key_fold_in(key, (uint32_t)((first_member + i) * reps + r));
  if ((st = direct_episodes(e, e->task, params, n, reps, e->keys, e->ret))) return st;
  for (int i = 0; i < n; i++) {
    double sum = 0;
    for (int r = 0; r < reps; r++) sum += e->ret[(int64_t)i * reps + r];
    fitness[i] = (float)(sum / reps);
  }
  if (e->bd_dim > 0 && bd) { /* the descriptor of the episodes just run, averaged over each member's repeats */
    if ((st = evo_task_descriptor(e->task, e->bd))) return st;
    int k = e->bd_dim;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < k; j++) {
        double sum = 0;
        for (int r = 0; r < reps; r++) sum += e->bd[((int64_t)i * reps + r) * k + j];
        bd[(int64_t)i * k + j] = (float)(sum / reps);
      }
  }
  return EVO_STATUS_OK;
}

evo_status evo_evaluator_test_returns(evo_evaluator *e, const float *params, int64_t first, int n, int total,
                                      evo_key key, double *ret) {
  if (!e->direct) {
    if (e->normalize_obs) {
      double *c0, *m0, *v0, *c1, *m1, *v1;
      evo_sim_normalizer(e->sim, &c0, &m0, &v0);
      evo_sim_normalizer(e->test_sim, &c1, &m1, &v1);
      int64_t m = evo_sim_obs_size(e->sim);
      *c1 = *c0;
      memcpy(m1, m0, sizeof(double) * (size_t)m);
      memcpy(v1, v0, sizeof(double) * (size_t)m);
    }
    return evo_sim_test_returns(e->test_sim, params, first, n, total, key, ret);
  }
  evo_status st = direct_reserve(e, e->test_task, n);
  if (st) return st;
  for (int j = 0; j < n; j++) e->keys[j] = evo_key_fold_in(key, (uint32_t)(first + j));
  return direct_episodes(e, e->test_task, params, 1, n, e->keys, ret);
}

evo_status evo_evaluator_save_params(evo_evaluator *e, const float *params, const char *path, int64_t iteration,
                                     double score) {
  const evo_ptree *tree = evo_evaluator_tree(e);
  int n = evo_ptree_count(tree);
  evo_st_tensor *ts = malloc(sizeof *ts * (size_t)(n + 3));
  if (!ts) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
  for (int i = 0; i < n; i++) {
    const evo_param_spec *sp = evo_ptree_spec(tree, i);
    ts[i] = (evo_st_tensor){sp->name, EVO_F32, sp->ndim, sp->shape, params + evo_ptree_offset(tree, i)};
  }
  double *count, *mean, *m2;
  int64_t m, one = 1;
  evo_evaluator_normalizer(e, &count, &mean, &m2, &m);
  int k = n;
  if (m > 0) {
    ts[k++] = (evo_st_tensor){"obs_norm.count", EVO_F64, 1, &one, count};
    ts[k++] = (evo_st_tensor){"obs_norm.mean", EVO_F64, 1, &m, mean};
    ts[k++] = (evo_st_tensor){"obs_norm.m2", EVO_F64, 1, &m, m2};
  }
  char it[32], sc[40];
  snprintf(it, sizeof it, "%lld", (long long)iteration);
  snprintf(sc, sizeof sc, "%.17g", score);
  const char *meta[] = {"format", "evoc", "iteration", it, "test_score", sc};
  evo_status st = evo_st_write(path, ts, k, meta, 3);
  free(ts);
  return st;
}

evo_status evo_evaluator_load_params(evo_evaluator *e, float *params, const char *path) {
  evo_status st = evo_ptree_load(evo_evaluator_tree(e), params, path);
  if (st || e->direct || !e->normalize_obs) return st;
  /* the normaliser the parameters were trained with goes to the test side */
  evo_st_reader *r;
  if ((st = evo_st_open(path, &r))) return st;
  double *c, *mean, *m2;
  evo_sim_normalizer(e->test_sim, &c, &mean, &m2);
  int64_t m = evo_sim_obs_size(e->test_sim);
  int ic = evo_st_find(r, "obs_norm.count"), im = evo_st_find(r, "obs_norm.mean"), iv = evo_st_find(r, "obs_norm.m2");
  if (ic < 0 || im < 0 || iv < 0)
    st = evo_error(EVO_STATUS_FORMAT, "%s: normalize_obs is on but the file has no obs_norm.* statistics", path);
  if (!st) st = evo_st_read(r, ic, c, sizeof(double));
  if (!st) st = evo_st_read(r, im, mean, sizeof(double) * (size_t)m);
  if (!st) st = evo_st_read(r, iv, m2, sizeof(double) * (size_t)m);
  evo_st_close(r);
  if (!st) { /* evo_evaluator_test_returns copies the training side over the test side: keep them equal */
    double *c0, *m0, *v0;
    evo_sim_normalizer(e->sim, &c0, &m0, &v0);
    *c0 = *c;
    memcpy(m0, mean, sizeof(double) * (size_t)m);
    memcpy(v0, m2, sizeof(double) * (size_t)m);
  }
  return st;
}
