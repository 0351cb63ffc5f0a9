/* The simulation manager: lockstep rollouts of members x repeats with masking, early exit, NaN accounting and
   observation normalisation. The population is evaluated in chunks of members so that one jitted plan (reused
   across generations) stays within a memory budget; every buffer a rollout needs belongs to that plan, so a
   generation allocates nothing. This file chooses plans and chunks; the rollout loops are in sim_host.c (host
   memory, task threads) and sim_device.c (device tasks on a CUDA backend). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "backend_impl.h"
#include "sim_impl.h"

evo_sim_params evo_sim_default_params(void) {
  return (evo_sim_params){.n_repeats = 1, .common_random_numbers = true, .normalize_obs = false,
                          .check_interval = 8, .max_steps = 0, .chunk_members = 0, .max_plan_mb = 1024,
                          .task_threads = 0, .graph_chunks = true};
}

static void plan_clear(evo_sim *s, rollout_plan *r) {
  evo_plan_free(r->plan);
  evo_tensor_free(r->params);
  evo_tensor_free(r->obs);
  evo_tensor_free(r->act);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) evo_tensor_free(r->state[i][j]);
  if (r->own_obs) free(r->obs_h);
  if (r->own_act) free(r->act_h);
  free(r->dact), free(r->reward), free(r->done), free(r->alive), free(r->ret), free(r->keys), free(r->bad);
  free(r->steps_h);
  evo_sim_device_plan_free(s, r);
  memset(r, 0, sizeof *r);
}

void evo_sim_free(evo_sim *s) {
  if (!s) return;
  plan_clear(s, &s->plans[0]);
  plan_clear(s, &s->plans[1]);
  free(s->norm_mean), free(s->norm_m2), free(s->use_mean), free(s->use_sd);
  free(s->batch_mean), free(s->batch_m2), free(s->step_mean), free(s->step_m2), free(s->zero_row), free(s->bd_all);
  free(s->macc);
  evo_tensor_free(s->d_use);
  free(s->chunk_st), free(s->chunk_msg);
  free(s);
}

evo_status evo_sim_oom(void) { return evo_error(EVO_STATUS_OUT_OF_MEMORY, "sim: out of memory"); }

evo_status evo_sim_new(evo_task *task, const evo_policy *pol, evo_backend *be, const evo_sim_params *p,
                       evo_sim **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim: out is NULL");
  *out = NULL;
  if (!task || !pol || !be) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim: task, policy and backend needed");
  evo_sim_params d = evo_sim_default_params();
  if (!p) p = &d;
  if (p->n_repeats < 1) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim: n_repeats must be >= 1");
  if (p->check_interval < 1) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim: check_interval must be >= 1");
  if (p->chunk_members < 0 || p->max_plan_mb < 0 || p->max_steps < 0 || p->task_threads < 0)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim: chunk_members, max_plan_mb, max_steps and task_threads "
                     "must be >= 0");
  const evo_task_spec *ts = evo_task_get_spec(task);
  const evo_policy_io *io = evo_policy_get_io(pol);
  /* The policy was built from the task's spec; a mismatch would read or write past the rollout buffers. */
  bool same = io->obs_ndim == ts->obs_ndim && io->discrete == (ts->action_kind == EVO_ACTION_DISCRETE);
  for (int k = 0; same && k < ts->obs_ndim; k++) same = io->obs_shape[k] == ts->obs_shape[k];
  int64_t task_act = 1, pol_act = 1;
  for (int k = 0; k < ts->act_ndim; k++) task_act *= ts->act_shape[k];
  for (int k = 0; k < io->act_ndim; k++) pol_act *= io->act_shape[k];
  if (!same || task_act != pol_act)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim: the policy's observation/action shapes differ from the "
                     "task's spec (build the policy's evo_policy_io from evo_task_get_spec)");
  evo_sim *s = calloc(1, sizeof *s);
  if (!s) return evo_sim_oom();
  s->task = task, s->pol = pol, s->be = be, s->p = *p;
  s->spec = *ts;
  s->device = evo_sim_device_path(ts, be);
  s->task_threads = p->task_threads > 0 ? p->task_threads : omp_get_max_threads(); /* OMP_NUM_THREADS or the cores */
  s->obs_numel = 1;
  for (int k = 0; k < s->spec.obs_ndim; k++) s->obs_numel *= s->spec.obs_shape[k];
  s->discrete = s->spec.action_kind == EVO_ACTION_DISCRETE;
  s->policy_argmax = evo_policy_action_dtype(pol) == EVO_I32;
  s->act_numel = s->policy_argmax ? 1 : pol_act;
  s->max_steps = p->max_steps > 0 ? p->max_steps : s->spec.max_steps;
  s->n_params = evo_policy_num_params(pol);
  s->n_state = evo_policy_state_count(pol);
  s->state_size = evo_policy_state_size(pol);
  size_t m = (size_t)s->obs_numel;
  s->norm_mean = calloc(m, sizeof(double)), s->norm_m2 = calloc(m, sizeof(double));
  s->batch_mean = calloc(m, sizeof(double)), s->batch_m2 = calloc(m, sizeof(double));
  s->step_mean = calloc(m, sizeof(double)), s->step_m2 = calloc(m, sizeof(double));
  s->use_mean = calloc(m, sizeof(float)), s->use_sd = calloc(m, sizeof(float));
  s->zero_row = calloc((size_t)s->state_size + 1, sizeof(float));
  if (!s->norm_mean || !s->norm_m2 || !s->batch_mean || !s->batch_m2 || !s->step_mean || !s->step_m2 || !s->use_mean ||
      !s->use_sd || !s->zero_row) {
    evo_sim_free(s);
    return evo_sim_oom();
  }
  /* Task threads for a host-memory task that steps sub-ranges; without them (no threads to be had) it steps whole. */
  if (!s->device && (s->spec.flags & EVO_TASK_FLAG_STEP_RANGE) && s->task_threads > 1) {
    s->chunk_st = calloc((size_t)s->task_threads, sizeof *s->chunk_st);
    s->chunk_msg = calloc((size_t)s->task_threads, sizeof *s->chunk_msg);
    if (!s->chunk_st || !s->chunk_msg) {
      evo_sim_free(s);
      return evo_sim_oom();
    }
    s->ranges = true;
  }
  if (s->device) {
    s->d_use = evo_tensor_new(be, EVO_F32, 2, (int64_t[]){2, s->obs_numel});
    if (!s->d_use) {
      evo_sim_free(s);
      return evo_sim_oom();
    }
  }
  *out = s;
  return EVO_STATUS_OK;
}

/* One-step episodes under common random numbers start from the same keys for every member, and a task's reset
   depends only on the keys, so every member sees the same observations: one copy feeds the whole population
   (for MNIST: one batch of images instead of P, and one im2col of the first layer). */
static bool use_shared_obs(const evo_sim *s) { return s->max_steps == 1 && s->p.common_random_numbers; }

static evo_status jit_population(const evo_sim *s, int n, int reps, bool shared, evo_graph **g, evo_plan **plan) {
  evo_status st = evo_policy_population_graph(s->pol, n, reps, shared, g);
  if (st != EVO_STATUS_OK) return st;
  /* The parameters (input 0) stay put for a rollout: slicing them into weights runs once per rollout. */
  evo_jit_params jp = evo_jit_default_params();
  jp.static_inputs = 1;
  if ((st = evo_jit_with(*g, s->be, &jp, plan)) != EVO_STATUS_OK) {
    evo_graph_free(*g);
    *g = NULL;
  }
  return st;
}

static size_t tensor_bytes(const evo_graph *g, evo_node x) {
  size_t b = evo_dtype_size(evo_node_dtype(g, x));
  for (int k = 0; k < evo_node_ndim(g, x); k++) b *= (size_t)evo_node_shape(g, x)[k];
  return b;
}

/* Bytes of a 1-member plan with `reps` episodes, inputs and outputs included: the unit of the memory budget. */
static evo_status probe_bytes(evo_sim *s, int slot, int reps, bool shared) {
  if (s->probe_bytes[slot]) return EVO_STATUS_OK;
  evo_graph *g;
  evo_plan *plan;
  evo_status st = jit_population(s, 1, reps, shared, &g, &plan);
  if (st != EVO_STATUS_OK) return st;
  size_t b = evo_plan_peak_bytes(plan);
  for (int i = 0; i < evo_graph_n_inputs(g); i++) b += tensor_bytes(g, evo_graph_input(g, i));
  for (int i = 0; i < evo_graph_n_outputs(g); i++) b += tensor_bytes(g, evo_graph_output(g, i));
  s->probe_bytes[slot] = b > 0 ? b : 1;
  evo_plan_free(plan);
  evo_graph_free(g);
  return EVO_STATUS_OK;
}

/* Units (members, or test episodes) per chunk: the explicit chunk size, or as many as fit in max_plan_mb; then
   evened out over the chunks so that the last one is not mostly padding. */
static int chunk_size(const evo_sim *s, int slot, int64_t total, int requested) {
  int64_t c = requested;
  if (c <= 0) {
    if (s->p.max_plan_mb <= 0) c = total;
    else c = (int64_t)((double)s->p.max_plan_mb * 1048576.0 / (double)s->probe_bytes[slot]);
  }
  c = c < 1 ? 1 : c > total ? total : c;
  int64_t chunks = (total + c - 1) / c;
  return (int)((total + chunks - 1) / chunks);
}

static evo_tensor *new_like(evo_sim *s, const evo_graph *g, evo_node x, evo_status *st) {
  evo_tensor *t = evo_tensor_new(s->be, evo_node_dtype(g, x), evo_node_ndim(g, x), evo_node_shape(g, x));
  if (!t && *st == EVO_STATUS_OK) *st = evo_sim_oom();
  return t;
}

/* The host path's buffers; observations and actions alias the plan's tensors when those are host memory. */
static evo_status host_buffers(evo_sim *s, rollout_plan *r, size_t E) {
  r->obs_h = r->shared ? NULL : evo_tensor_data(r->obs);
  r->own_obs = !r->obs_h;
  if (r->own_obs) r->obs_h = malloc(sizeof(float) * E * (size_t)s->obs_numel);
  r->act_h = evo_tensor_data(r->act);
  r->own_act = !r->act_h;
  if (r->own_act) r->act_h = malloc(evo_tensor_nbytes(r->act));
  if (s->discrete && !s->policy_argmax) r->dact = malloc(sizeof(int32_t) * E);
  r->reward = malloc(sizeof(float) * E);
  r->done = malloc(E), r->alive = malloc(E);
  if (!r->obs_h || !r->act_h || (s->discrete && !s->policy_argmax && !r->dact) || !r->reward || !r->done ||
      !r->alive)
    return evo_sim_oom();
  return EVO_STATUS_OK;
}

/* Builds (or reuses) the population plan for n members x reps episodes each, with its rollout buffers. */
static evo_status get_plan(evo_sim *s, int slot, int n, int reps, bool shared, rollout_plan **out) {
  rollout_plan *r = &s->plans[slot];
  *out = r;
  if (r->plan && r->n == n && r->reps == reps && r->shared == shared) return EVO_STATUS_OK;
  plan_clear(s, r);
  evo_graph *g;
  evo_status st = jit_population(s, n, reps, shared, &g, &r->plan);
  if (st != EVO_STATUS_OK) return st;
  r->n = n, r->reps = reps, r->shared = shared;
  r->params = new_like(s, g, evo_graph_input(g, 0), &st);
  r->obs = new_like(s, g, evo_graph_input(g, 1), &st);
  r->act = new_like(s, g, evo_graph_output(g, 0), &st);
  for (int k = 0; k < s->n_state; k++)
    for (int ping = 0; ping < 2; ping++) r->state[ping][k] = new_like(s, g, evo_graph_input(g, 2 + k), &st);
  evo_graph_free(g);
  size_t E = (size_t)n * (size_t)reps;
  if (st == EVO_STATUS_OK) { /* keys are drawn, returns and NaN flags read on the host on either path */
    r->ret = malloc(sizeof(double) * E);
    r->keys = malloc(sizeof(evo_key) * E);
    r->bad = malloc((size_t)n);
    if (!r->ret || !r->keys || !r->bad) st = evo_sim_oom();
  }
  if (st == EVO_STATUS_OK) st = s->device ? evo_sim_device_plan_alloc(s, r) : host_buffers(s, r, E);
  if (st != EVO_STATUS_OK) plan_clear(s, r);
  return st;
}

/* Where evaluate reads the parameter rows: host memory, or a tensor on the sim's device. */
typedef struct {
  const float *host;
  const evo_tensor *dev;
} param_src;

/* Copies n_valid parameter rows into the plan (padding repeats the last row) and flags non-finite ones: such a
   member's fitness is NaN whatever its outputs (an argmax head would hide the NaN). */
static evo_status load_params(evo_sim *s, rollout_plan *r, param_src src, int64_t off, int n_valid) {
  if (src.dev) {
    s->stats.device_param_rows += n_valid;
    return evo_sim_device_load_params(s, r, src.dev, off, n_valid);
  }
  const float *params = src.host + off * s->n_params;
  const size_t row = sizeof(float) * (size_t)s->n_params;
  float *dst = evo_tensor_data(r->params), *stage = NULL;
  if (!dst && !(dst = stage = malloc(row * (size_t)r->n))) return evo_sim_oom();
  memcpy(dst, params, row * (size_t)n_valid);
  for (int i = n_valid; i < r->n; i++) memcpy((char *)dst + row * (size_t)i, params + (n_valid - 1) * s->n_params, row);
  for (int i = 0; i < r->n; i++) {
    const float *p = params + (int64_t)(i < n_valid ? i : n_valid - 1) * s->n_params;
    int finite = 1;
    for (int64_t j = 0; j < s->n_params; j++) finite &= isfinite(p[j]) != 0;
    r->bad[i] = !finite;
  }
  evo_status st = stage ? evo_tensor_copy_from_host(r->params, stage, row * (size_t)r->n) : EVO_STATUS_OK;
  free(stage);
  return st;
}

static evo_status rollout(evo_sim *s, rollout_plan *r, int64_t n_valid, bool update_norm) {
  return s->device ? evo_sim_rollout_device(s, r, n_valid, update_norm) : evo_sim_rollout_host(s, r, n_valid,
                                                                                                update_norm);
}

static void set_info(evo_sim *s, const rollout_plan *r) {
  s->info.chunk_members = r->n;
  s->info.shared_obs = r->shared;
  s->info.plan_bytes = evo_plan_peak_bytes(r->plan);
  const int64_t E = (int64_t)r->n * r->reps;
  s->info.task_threads = s->ranges ? (int)(s->task_threads < E ? s->task_threads : E) : 1;
  s->info.on_device = s->device;
}

/* bd[i, :] = the mean over member i's repeats of the task's descriptor of the chunk's episodes just run. */
static evo_status chunk_descriptors(evo_sim *s, const rollout_plan *r, int nv, float *bd) {
  const int k = s->spec.bd_dim, R = r->reps;
  const int64_t need = (int64_t)r->n * R * k;
  if (need > s->bd_cap) { /* grown once: later generations allocate nothing */
    float *p = realloc(s->bd_all, sizeof(float) * (size_t)need);
    if (!p) return evo_sim_oom();
    s->bd_all = p, s->bd_cap = need;
  }
  const float *all = s->bd_all;
  evo_status st = evo_task_descriptor(s->task, s->bd_all);
  for (int i = 0; st == EVO_STATUS_OK && i < nv; i++)
    for (int j = 0; j < k; j++) {
      double sum = 0;
      for (int rep = 0; rep < R; rep++) sum += all[((int64_t)i * R + rep) * k + j];
      bd[(int64_t)i * k + j] = (float)(sum / R);
    }
  return st;
}

static evo_status evaluate(evo_sim *s, param_src params, int n, int64_t first_member, evo_key key, float *fitness,
                           float *bd) {
  if (!s || (!params.host && !params.dev) || !fitness)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim evaluate: NULL argument");
  if (n < 1) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim evaluate: n must be >= 1");
  if (first_member < 0) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim evaluate: first_member must be >= 0");
  const bool shared = use_shared_obs(s);
  const int R = s->p.n_repeats;
  evo_status st = EVO_STATUS_OK;
  if (s->p.chunk_members <= 0 && s->p.max_plan_mb > 0) st = probe_bytes(s, 0, R, shared);
  rollout_plan *r;
  if (st == EVO_STATUS_OK) st = get_plan(s, 0, chunk_size(s, 0, n, s->p.chunk_members), R, shared, &r);
  if (st != EVO_STATUS_OK) return st;
  set_info(s, r);
  const int64_t w = 1 + 2 * s->obs_numel;
  if (s->p.normalize_obs) {
    evo_sim_norm_prepare(s);
    if ((st = evo_sim_norm_reserve(s, n)) != EVO_STATUS_OK) return st;
    if (s->device && (st = evo_sim_device_norm_begin(s)) != EVO_STATUS_OK) return st;
  }
  for (int off = 0; off < n && st == EVO_STATUS_OK; off += r->n) {
    const int nv = n - off < r->n ? n - off : r->n;
    if (s->p.normalize_obs) { /* the chunk's members' statistics start empty */
      s->macc_chunk = s->macc + off * w;
      memset(s->macc_chunk, 0, sizeof(double) * (size_t)(nv * w));
    }
    if ((st = load_params(s, r, params, off, nv)) != EVO_STATUS_OK) break;
    for (int i = 0; i < r->n; i++) {
      int64_t member = first_member + off + (i < nv ? i : nv - 1);
      for (int rep = 0; rep < R; rep++) /* CRN: repeat rep of every member starts from the same key */
        r->keys[(int64_t)i * R + rep] =
            s->p.common_random_numbers ? evo_key_fold_in(key, (uint32_t)rep)
                                       : evo_key_fold_in(key, (uint32_t)(member * R + rep));
    }
    if ((st = rollout(s, r, (int64_t)nv * R, s->p.normalize_obs)) != EVO_STATUS_OK) break;
    for (int i = 0; i < nv; i++) {
      double sum = 0;
      for (int rep = 0; rep < R; rep++) sum += r->ret[(int64_t)i * R + rep];
      fitness[off + i] = r->bad[i] ? NAN : (float)(sum / R);
      s->stats.nan_members += r->bad[i];
    }
    if (bd) st = chunk_descriptors(s, r, nv, bd + (int64_t)off * s->spec.bd_dim);
  }
  /* Statistics of a failed evaluate are dropped, so a retry does not count its observations twice. */
  if (st == EVO_STATUS_OK && s->p.normalize_obs && !s->p.external_norm_merge) evo_sim_norm_merge_members(s, n, s->macc);
  return st;
}

evo_status evo_sim_evaluate(evo_sim *s, const float *params, int n, int64_t first_member, evo_key key,
                            float *fitness) {
  return evaluate(s, (param_src){.host = params}, n, first_member, key, fitness, NULL);
}

static evo_status check_bd(const evo_sim *s, const float *bd) {
  if (!s || !bd) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim evaluate_bd: NULL argument");
  if (s->spec.bd_dim < 1 || s->device || s->spec.place != EVO_TASK_HOST)
    return evo_error(EVO_STATUS_UNSUPPORTED, "sim evaluate_bd: behaviour descriptors need a host task that has one "
                     "(this task: bd_dim %d, %s)", s->spec.bd_dim, s->spec.place == EVO_TASK_HOST ? "host" : "device");
  return EVO_STATUS_OK;
}

evo_status evo_sim_evaluate_bd(evo_sim *s, const float *params, int n, int64_t first_member, evo_key key,
                               float *fitness, float *bd) {
  evo_status st = check_bd(s, bd);
  return st ? st : evaluate(s, (param_src){.host = params}, n, first_member, key, fitness, bd);
}

evo_backend *evo_sim_device_backend(const evo_sim *s) { return s && s->device ? s->be : NULL; }

evo_status evo_sim_evaluate_tensor(evo_sim *s, const evo_tensor *params, int n, int64_t first_member, evo_key key,
                                   float *fitness, float *bd) {
  if (!s || !params) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim evaluate: NULL argument");
  evo_status st = bd ? check_bd(s, bd) : EVO_STATUS_OK;
  if (st) return st;
  if (evo_tensor_dtype(params) != EVO_F32 || n < 1 || evo_tensor_numel(params) < (int64_t)n * s->n_params)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim evaluate: params must be f32 with at least %d x %lld values",
                     n, (long long)s->n_params);
  const float *host = evo_tensor_data_const(params);
  if (host) return evaluate(s, (param_src){.host = host}, n, first_member, key, fitness, bd);
  if (s->device && evo_tensor_backend(params) == s->be)
    return evaluate(s, (param_src){.dev = params}, n, first_member, key, fitness, bd);
  const size_t bytes = sizeof(float) * (size_t)n * (size_t)s->n_params; /* another device: read it back */
  float *stage = malloc(bytes);
  if (!stage) return evo_sim_oom();
  st = evo_tensor_read(params, 0, stage, bytes); /* the first n rows of a possibly longer tensor */
  if (!st) st = evaluate(s, (param_src){.host = stage}, n, first_member, key, fitness, bd);
  free(stage);
  return st;
}

/* Episodes first..first+n-1 of one parameter vector, episode e from fold_in(key, e): their sum, whether the
   parameters or the policy's outputs were not finite, and (ret != NULL) each episode's return, NaN from the first
   plan in which the policy misbehaved. Episodes are independent of the plan they share, so a range gives the same
   returns as the same episodes inside a larger one. */
static evo_status test_episodes(evo_sim *s, const float *params, int64_t first, int n_episodes, int total,
                                evo_key key, double *ret, double *sum_out, bool *bad_out) {
  if (!s || !params) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim test: NULL argument");
  if (n_episodes < 1) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim test: n_episodes must be >= 1");
  if (first < 0) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim test: first episode must be >= 0");
  if (total < first + n_episodes)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim test: episodes [%lld, %lld) lie outside a test of %d",
                     (long long)first, (long long)first + n_episodes, total);
  /* Episodes per test plan: as many as a training chunk has when chunk_members is set, else the budget's; from the
     whole test's size, so a rank's share runs in plans of the same shape as the whole test. */
  int64_t requested = (int64_t)s->p.chunk_members * s->p.n_repeats;
  evo_status st = EVO_STATUS_OK;
  if (requested <= 0 && s->p.max_plan_mb > 0) st = probe_bytes(s, 1, 1, false);
  rollout_plan *r;
  if (st == EVO_STATUS_OK)
    st = get_plan(s, 1, 1, chunk_size(s, 1, total, requested > INT32_MAX ? INT32_MAX : (int)requested), false, &r);
  if (st != EVO_STATUS_OK) return st;
  if (s->p.normalize_obs) {
    evo_sim_norm_prepare(s);
    if (s->device && (st = evo_sim_device_norm_begin(s)) != EVO_STATUS_OK) return st;
  }
  if ((st = load_params(s, r, (param_src){.host = params}, 0, 1)) != EVO_STATUS_OK) return st;
  double sum = 0;
  bool bad = r->bad[0];
  for (int off = 0; off < n_episodes && st == EVO_STATUS_OK; off += r->reps) {
    const int ne = n_episodes - off < r->reps ? n_episodes - off : r->reps;
    for (int e = 0; e < r->reps; e++)
      r->keys[e] = evo_key_fold_in(key, (uint32_t)(first + off + (e < ne ? e : ne - 1)));
    if ((st = rollout(s, r, ne, false)) != EVO_STATUS_OK) break;
    for (int e = 0; e < ne; e++) sum += r->ret[e];
    bad = bad || r->bad[0];
    for (int e = 0; ret && e < ne; e++) ret[off + e] = bad ? NAN : r->ret[e];
  }
  *sum_out = sum, *bad_out = bad;
  return st;
}

evo_status evo_sim_test(evo_sim *s, const float *params, int n_episodes, evo_key key, double *mean_return) {
  if (!mean_return) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim test: NULL argument");
  double sum;
  bool bad;
  evo_status st = test_episodes(s, params, 0, n_episodes, n_episodes, key, NULL, &sum, &bad);
  if (st == EVO_STATUS_OK) *mean_return = bad ? NAN : sum / n_episodes;
  return st;
}

evo_status evo_sim_test_returns(evo_sim *s, const float *params, int64_t first_episode, int n_episodes,
                                int total_episodes, evo_key key, double *returns) {
  if (!returns) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "sim test: NULL argument");
  double sum;
  bool bad;
  return test_episodes(s, params, first_episode, n_episodes, total_episodes, key, returns, &sum, &bad);
}

void evo_sim_stats_get(const evo_sim *s, evo_sim_stats *out) { *out = s->stats; }
void evo_sim_info_get(const evo_sim *s, evo_sim_info *out) { *out = s->info; }
int64_t evo_sim_obs_size(const evo_sim *s) { return s->obs_numel; }
void evo_sim_normalizer(evo_sim *s, double **count, double **mean, double **m2) {
  *count = &s->norm_count;
  *mean = s->norm_mean;
  *m2 = s->norm_m2;
}
