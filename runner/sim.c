/* The simulation manager: lockstep rollouts of members x repeats with masking, early exit, NaN accounting and
   observation normalisation. One jitted population plan per (members, repeats) shape, reused across generations. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/jit.h"
#include "evoc/sim.h"

typedef struct {
  int n, reps;         /* members, episodes per member */
  evo_plan *plan;
  evo_tensor *params, *obs, *act, *state[2][2]; /* state[ping][h|c] */
} rollout_plan;

struct evo_sim {
  evo_task *task;
  const evo_policy *pol;
  evo_backend *be;
  evo_sim_params p;
  evo_task_spec spec;
  int64_t obs_numel, act_numel; /* per episode; act_numel is the policy output per episode */
  int64_t max_steps;
  bool discrete, policy_argmax;
  int n_state;
  int64_t state_size;
  rollout_plan plans[2]; /* [0] training shape, [1] test shape */
  /* normaliser (doubles for exact merging) */
  double norm_count, *norm_mean, *norm_m2;
  evo_sim_stats stats;
};

evo_sim_params evo_sim_default_params(void) {
  return (evo_sim_params){.n_repeats = 1, .common_random_numbers = true, .normalize_obs = false,
                          .check_interval = 8, .max_steps = 0};
}

static void plan_clear(rollout_plan *r) {
  evo_plan_free(r->plan);
  evo_tensor_free(r->params);
  evo_tensor_free(r->obs);
  evo_tensor_free(r->act);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) evo_tensor_free(r->state[i][j]);
  memset(r, 0, sizeof *r);
}

void evo_sim_free(evo_sim *s) {
  if (!s) return;
  plan_clear(&s->plans[0]);
  plan_clear(&s->plans[1]);
  free(s->norm_mean);
  free(s->norm_m2);
  free(s);
}

evo_status evo_sim_new(evo_task *task, const evo_policy *pol, evo_backend *be, const evo_sim_params *p,
                       evo_sim **out) {
  *out = NULL;
  evo_sim_params d = evo_sim_default_params();
  if (!p) p = &d;
  if (p->n_repeats < 1) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim: n_repeats must be >= 1");
  if (p->check_interval < 1) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim: check_interval must be >= 1");
  evo_sim *s = calloc(1, sizeof *s);
  if (!s) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "sim: out of memory");
  s->task = task, s->pol = pol, s->be = be, s->p = *p;
  s->spec = *evo_task_get_spec(task);
  s->obs_numel = 1;
  for (int d2 = 0; d2 < s->spec.obs_ndim; d2++) s->obs_numel *= s->spec.obs_shape[d2];
  s->discrete = s->spec.action_kind == EVO_ACTION_DISCRETE;
  s->policy_argmax = evo_policy_action_dtype(pol) == EVO_I32;
  if (s->policy_argmax && !s->discrete) {
    evo_sim_free(s);
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim: an argmax policy needs a discrete task");
  }
  const evo_policy_io *io = evo_policy_get_io(pol);
  s->act_numel = 1;
  if (!s->policy_argmax)
    for (int d2 = 0; d2 < io->act_ndim; d2++) s->act_numel *= io->act_shape[d2];
  s->max_steps = p->max_steps > 0 ? p->max_steps : s->spec.max_steps;
  s->n_state = evo_policy_state_count(pol);
  s->state_size = evo_policy_state_size(pol);
  s->norm_mean = calloc((size_t)s->obs_numel, sizeof(double));
  s->norm_m2 = calloc((size_t)s->obs_numel, sizeof(double));
  if (!s->norm_mean || !s->norm_m2) {
    evo_sim_free(s);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "sim: out of memory");
  }
  *out = s;
  return EVO_STATUS_OK;
}

/* Builds (or reuses) the population plan for n members x reps episodes each. */
static evo_status get_plan(evo_sim *s, int slot, int n, int reps, rollout_plan **out) {
  rollout_plan *r = &s->plans[slot];
  *out = r;
  if (r->plan && r->n == n && r->reps == reps) return EVO_STATUS_OK;
  plan_clear(r);
  evo_graph *g;
  evo_status st = evo_policy_population_graph(s->pol, n, reps, false, &g);
  if (st != EVO_STATUS_OK) return st;
  st = evo_jit(g, s->be, &r->plan);
  if (st == EVO_STATUS_OK) {
    int ni = evo_graph_n_inputs(g), no = evo_graph_n_outputs(g);
    evo_tensor **ts[4] = {&r->params, &r->obs, &r->state[0][0], &r->state[0][1]};
    for (int i = 0; i < ni && i < 4 && st == EVO_STATUS_OK; i++) {
      evo_node x = evo_graph_input(g, i);
      *ts[i] = evo_tensor_new(s->be, evo_node_dtype(g, x), evo_node_ndim(g, x), evo_node_shape(g, x));
      if (!*ts[i]) st = EVO_STATUS_OUT_OF_MEMORY;
    }
    evo_tensor **to[3] = {&r->act, &r->state[1][0], &r->state[1][1]};
    for (int i = 0; i < no && i < 3 && st == EVO_STATUS_OK; i++) {
      evo_node x = evo_graph_output(g, i);
      *to[i] = evo_tensor_new(s->be, evo_node_dtype(g, x), evo_node_ndim(g, x), evo_node_shape(g, x));
      if (!*to[i]) st = EVO_STATUS_OUT_OF_MEMORY;
    }
  }
  evo_graph_free(g);
  if (st != EVO_STATUS_OK) {
    plan_clear(r);
    return st;
  }
  r->n = n, r->reps = reps;
  return EVO_STATUS_OK;
}

static void normalize(const evo_sim *s, float *obs, int64_t n_eps) {
  int64_t m = s->obs_numel;
  for (int64_t e = 0; e < n_eps; e++)
    for (int64_t j = 0; j < m; j++) {
      double var = s->norm_count > 1 ? s->norm_m2[j] / s->norm_count : 1.0;
      double sd = sqrt(var) > 1e-8 ? sqrt(var) : 1.0;
      double v = (obs[e * m + j] - (s->norm_count > 1 ? s->norm_mean[j] : 0.0)) / sd;
      obs[e * m + j] = (float)(v < -5 ? -5 : v > 5 ? 5 : v);
    }
}

/* Runs the episodes of one plan; returns[e] gets each episode's return. */
static evo_status rollout(evo_sim *s, rollout_plan *r, const evo_key *keys, bool update_norm, double *returns,
                          uint8_t *bad_member) {
  int64_t E = (int64_t)r->n * r->reps, m = s->obs_numel;
  float *obs = evo_tensor_data(r->obs);
  float *reward = malloc(sizeof(float) * (size_t)E);
  uint8_t *done = malloc((size_t)E), *alive = malloc((size_t)E);
  int32_t *dact = s->discrete ? malloc(sizeof(int32_t) * (size_t)E) : NULL;
  /* Per-evaluate normaliser batch (Welford), merged at the end. */
  double bcount = 0, *bmean = NULL, *bm2 = NULL;
  if (update_norm) {
    bmean = calloc((size_t)m, sizeof(double));
    bm2 = calloc((size_t)m, sizeof(double));
  }
  evo_status st = EVO_STATUS_OK;
  if (!reward || !done || !alive || (s->discrete && !dact) || (update_norm && (!bmean || !bm2))) {
    st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "sim: out of memory");
    goto out;
  }
  memset(alive, 1, (size_t)E);
  for (int64_t e = 0; e < E; e++) returns[e] = 0;
  for (int k = 0; k < s->n_state; k++) memset(evo_tensor_data(r->state[0][k]), 0, evo_tensor_nbytes(r->state[0][k]));
  if ((st = evo_task_reset(s->task, E, keys, obs)) != EVO_STATUS_OK) goto out;
  int ping = 0;
  for (int64_t t = 0; t < s->max_steps; t++) {
    if (t % s->p.check_interval == 0) {
      int any = 0;
      for (int64_t e = 0; e < E && !any; e++) any = alive[e];
      if (!any) break;
    }
    if (update_norm)
      for (int64_t e = 0; e < E; e++) {
        if (!alive[e]) continue;
        bcount += 1;
        for (int64_t j = 0; j < m; j++) {
          double x = obs[e * m + j], d = x - bmean[j];
          bmean[j] += d / bcount;
          bm2[j] += d * (x - bmean[j]);
        }
      }
    if (s->p.normalize_obs) normalize(s, obs, E);
    evo_tensor *in[4] = {r->params, r->obs, r->state[ping][0], r->state[ping][1]};
    evo_tensor *outs[3] = {r->act, r->state[1 - ping][0], r->state[1 - ping][1]};
    if ((st = evo_plan_run(r->plan, in, outs)) != EVO_STATUS_OK) goto out;
    ping = s->n_state ? 1 - ping : 0;
    const void *act = evo_tensor_data(r->act);
    if (s->discrete && !s->policy_argmax) { /* scores -> argmax */
      const float *a = act;
      for (int64_t e = 0; e < E; e++) {
        int32_t best = 0;
        for (int64_t j = 1; j < s->act_numel; j++)
          if (a[e * s->act_numel + j] > a[e * s->act_numel + best]) best = (int32_t)j;
        dact[e] = best;
      }
      act = dact;
    }
    if (!s->policy_argmax) { /* a member with non-finite actions is marked and fed zeros */
      float *a = evo_tensor_data(r->act);
      for (int64_t e = 0; e < E; e++) {
        if (!alive[e]) continue;
        for (int64_t j = 0; j < s->act_numel; j++)
          if (!isfinite(a[e * s->act_numel + j])) {
            bad_member[e / r->reps] = 1;
            for (int64_t k = 0; k < s->act_numel; k++) a[e * s->act_numel + k] = 0;
            break;
          }
      }
    }
    if ((st = evo_task_step(s->task, act, obs, reward, done)) != EVO_STATUS_OK) goto out;
    for (int64_t e = 0; e < E; e++) {
      if (!alive[e]) continue;
      returns[e] += reward[e];
      s->stats.env_steps++;
      if (done[e]) alive[e] = 0;
    }
  }
  if (update_norm && bcount > 0) { /* Chan et al.'s parallel merge */
    double n0 = s->norm_count, n1 = bcount, n = n0 + n1;
    for (int64_t j = 0; j < m; j++) {
      double d = bmean[j] - s->norm_mean[j];
      s->norm_mean[j] += d * n1 / n;
      s->norm_m2[j] += bm2[j] + d * d * n0 * n1 / n;
    }
    s->norm_count = n;
  }
  s->stats.evaluations += E;
out:
  free(reward), free(done), free(alive), free(dact), free(bmean), free(bm2);
  return st;
}

evo_status evo_sim_evaluate(evo_sim *s, const float *params, int n, int64_t first_member, evo_key key,
                            float *fitness) {
  if (n < 1) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim evaluate: n must be >= 1");
  rollout_plan *r;
  evo_status st = get_plan(s, 0, n, s->p.n_repeats, &r);
  if (st != EVO_STATUS_OK) return st;
  int64_t D = evo_policy_num_params(s->pol), E = (int64_t)n * r->reps;
  memcpy(evo_tensor_data(r->params), params, sizeof(float) * (size_t)(D * n));
  evo_key *keys = malloc(sizeof(evo_key) * (size_t)E);
  double *ret = malloc(sizeof(double) * (size_t)E);
  uint8_t *bad = calloc((size_t)n, 1);
  if (!keys || !ret || !bad) {
    free(keys), free(ret), free(bad);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "sim: out of memory");
  }
  for (int i = 0; i < n; i++)
    for (int rep = 0; rep < r->reps; rep++)
      keys[(int64_t)i * r->reps + rep] =
          s->p.common_random_numbers ? evo_key_fold_in(key, (uint32_t)rep)
                                     : evo_key_fold_in(key, (uint32_t)((first_member + i) * r->reps + rep));
  st = rollout(s, r, keys, s->p.normalize_obs, ret, bad);
  if (st == EVO_STATUS_OK)
    for (int i = 0; i < n; i++) {
      double sum = 0;
      for (int rep = 0; rep < r->reps; rep++) sum += ret[(int64_t)i * r->reps + rep];
      fitness[i] = bad[i] ? NAN : (float)(sum / r->reps);
      s->stats.nan_members += bad[i];
    }
  free(keys), free(ret), free(bad);
  return st;
}

evo_status evo_sim_test(evo_sim *s, const float *params, int n_episodes, evo_key key, double *mean_return) {
  if (n_episodes < 1) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim test: n_episodes must be >= 1");
  rollout_plan *r;
  evo_status st = get_plan(s, 1, 1, n_episodes, &r);
  if (st != EVO_STATUS_OK) return st;
  memcpy(evo_tensor_data(r->params), params, sizeof(float) * (size_t)evo_policy_num_params(s->pol));
  evo_key *keys = malloc(sizeof(evo_key) * (size_t)n_episodes);
  double *ret = malloc(sizeof(double) * (size_t)n_episodes);
  uint8_t bad = 0;
  if (!keys || !ret) {
    free(keys), free(ret);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "sim: out of memory");
  }
  for (int e = 0; e < n_episodes; e++) keys[e] = evo_key_fold_in(key, (uint32_t)e);
  st = rollout(s, r, keys, false, ret, &bad);
  if (st == EVO_STATUS_OK) {
    double sum = 0;
    for (int e = 0; e < n_episodes; e++) sum += ret[e];
    *mean_return = bad ? NAN : sum / n_episodes;
  }
  free(keys), free(ret);
  return st;
}

void evo_sim_stats_get(const evo_sim *s, evo_sim_stats *out) { *out = s->stats; }
int64_t evo_sim_obs_size(const evo_sim *s) { return s->obs_numel; }
void evo_sim_normalizer(evo_sim *s, double **count, double **mean, double **m2) {
  *count = &s->norm_count;
  *mean = s->norm_mean;
  *m2 = s->norm_m2;
}
