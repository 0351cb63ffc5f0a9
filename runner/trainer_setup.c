/* From a config to a ready trainer: every section read through the evo_cfg readers (so errors name file:line:col
   and unknown keys get "did you mean"), then task, policy, simulation and algorithm built. The algorithm's own
   options come from its table (evo_algo_info), so `algo` accepts exactly the options the chosen strategy has. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/ptree.h"
#include "run_device.h"
#include "trainer_impl.h"

static void note(const evo_trainer *t, const char *msg) {
  if (t->p.note && t->rank == 0) t->p.note(msg, t->p.user);
}

/* Library errors (policy shapes, algorithm arguments) get the location of the section that caused them; config
   reader errors have their own location already. */
static evo_status at_section(evo_status st, evo_cfg *sec) {
  if (!st) return st;
  char where[512], file[512], msg[1024];
  snprintf(msg, sizeof msg, "%s", evo_last_error());
  evo_cfg_where(sec, where, sizeof where);
  snprintf(file, sizeof file, "%s", where);
  char *colon = strchr(file, ':');
  if (colon) *colon = '\0';
  if (!strncmp(msg, file, strlen(file)) || !strncmp(msg, "--set", 5)) return evo_error(st, "%s", msg);
  return evo_error(st, "%s: %s", where, msg);
}

/* Will the policy be "direct" (build_policy's rule: policy.name, by default direct for the functions task)? Read
   before anything is built, so that `device: auto` does not start a GPU that nothing would use. evo_cfg_get marks
   the keys used, which changes nothing: their own readers read and validate them later. */
static bool expects_direct(evo_cfg *root) {
  evo_cfg *pol = evo_cfg_get(root, "policy"), *task = evo_cfg_get(root, "task");
  evo_cfg *name = pol && evo_cfg_kind_of(pol) == EVO_CFG_MAP ? evo_cfg_get(pol, "name") : NULL;
  const char *s = name ? evo_cfg_scalar(name) : NULL;
  if (s) return !strcmp(s, "direct");
  name = task && evo_cfg_kind_of(task) == EVO_CFG_MAP ? evo_cfg_get(task, "name") : NULL;
  s = name ? evo_cfg_scalar(name) : NULL;
  return s && !strcmp(s, "functions");
}

/* device: auto | cpu | cuda | cuda:N, opened through evo_device_open. On a CUDA backend the tasks that support it
   (CartPole), the policy plans and the rollouts live on the device; the algorithm stays on the host (t->host_be
   holds its population). auto picks the GPU when there is one, except for policy direct, which evaluates on the
   host anyway; the choice and its reason go to the note callback and to summary.json. */
static evo_status read_device(evo_trainer *t, evo_cfg *root) {
  evo_run_device d;
  /* several ranks: each takes a GPU of its host by its local rank */
  int local = evo_comm_size(t->comm) > 1 ? evo_comm_local_rank(t->comm) : -1;
  evo_status st = evo_run_device_open(root, expects_direct(root) ? "policy direct evaluates on the host" : NULL, local,
                                      &d);
  if (st) return st;
  t->be = d.be, t->host_be = d.host;
  snprintf(t->device, sizeof t->device, "%s", d.label);
  snprintf(t->device_note, sizeof t->device_note, "%s", d.note);
  if (!d.cpu_asked) note(t, d.note);
  return EVO_STATUS_OK;
}

static evo_status read_trainer(evo_trainer *t, evo_cfg *root, int64_t *n_repeats, bool *normalize, bool *crn,
                               int64_t *task_threads) {
  evo_cfg *tr;
  evo_status st = evo_cfg_section(root, "trainer", &tr);
  const int64_t big = 1000000000; /* iterations and intervals */
  if (!st) st = evo_cfg_int(tr, "max_iter", 1000, 1, big, &t->max_iter);
  if (!st) st = evo_cfg_int(tr, "log_interval", 10, 1, big, &t->log_interval);
  if (!st) st = evo_cfg_int(tr, "test_interval", 100, 1, big, &t->test_interval);
  if (!st) st = evo_cfg_int(tr, "n_evaluations", 100, 1, 1 << 24, &t->n_evaluations);
  if (!st) st = evo_cfg_int(tr, "n_repeats", 1, 1, 1 << 20, n_repeats);
  if (!st) st = evo_cfg_bool(tr, "normalize_obs", false, normalize);
  if (!st) st = evo_cfg_bool(tr, "common_random_numbers", true, crn);
  if (!st) st = evo_cfg_int(tr, "task_threads", 0, 0, 4096, task_threads);
  if (!st) st = evo_cfg_int(tr, "checkpoint_interval", 100, 1, big, &t->ckpt_interval);
  if (!st) st = evo_cfg_int(tr, "keep_checkpoints", 2, 1, 1000, &t->keep_ckpt);
  if (!st) st = evo_cfg_bool(tr, "plot", true, &t->plot);
  if (!st) st = evo_cfg_int(tr, "max_evals", 0, 0, INT64_MAX, &t->max_evals);
  if (!st) st = evo_cfg_double(tr, "max_seconds", 0, 0, INFINITY, &t->max_seconds);
  evo_cfg *ts = st ? NULL : evo_cfg_get(tr, "target_score");
  t->has_target = ts && evo_cfg_kind_of(ts) != EVO_CFG_NULL;
  if (!st && t->has_target) st = evo_cfg_double(tr, "target_score", 0, -INFINITY, INFINITY, &t->target_score);
  if (!st && t->is_objective) st = evo_cfg_double(tr, "target_objective", 1e-8, 0, INFINITY, &t->target_objective);
  return st;
}

/* The policy, or direct parameters: D = the action size, one ptree entry "x". */
static evo_status build_policy(evo_trainer *t, evo_cfg *root) {
  static const char *const names[] = {"mlp", "cnn", "lstm", "direct", NULL};
  evo_evaluator *e = &t->ev;
  evo_cfg *sec;
  const char *name;
  evo_status st = evo_cfg_section(root, "policy", &sec);
  if (!st) st = evo_cfg_string(sec, "name", t->is_objective ? "direct" : "mlp", names, &name);
  if (st) return st;
  const evo_task_spec *sp = evo_task_get_spec(e->task), *tsp = evo_task_get_spec(e->test_task);
  snprintf(t->policy_name, sizeof t->policy_name, "%s", name);
  if (!strcmp(name, "direct")) {
    if ((st = evo_cfg_check_unused(sec))) return st;
    if (sp->action_kind != EVO_ACTION_CONTINUOUS)
      return at_section(evo_error(EVO_STATUS_INVALID_ARGUMENT, "policy direct needs a task with continuous "
                                  "actions"), sec);
    /* direct episodes pass host arrays to the task: a task keeping its state on a device cannot take them */
    if ((sp->place == EVO_TASK_DEVICE || tsp->place == EVO_TASK_DEVICE) && !evo_backend_is_host(t->be))
      return at_section(evo_error(EVO_STATUS_UNSUPPORTED, "policy direct evaluates on the host, but task '%s' runs "
                                  "on the device (%s); use device: cpu", t->task_name, t->device), sec);
    if (!evo_backend_is_host(t->be)) {
      char msg[300];
      snprintf(msg, sizeof msg, "policy direct: parameters are evaluated on the host; %s stays idle", t->device);
      note(t, msg);
    }
    evo_param_spec ps = {.name = "x", .ndim = sp->act_ndim, .init = EVO_INIT_ZEROS};
    for (int d = 0; d < sp->act_ndim; d++) ps.shape[d] = sp->act_shape[d];
    e->direct = true;
    e->direct_tree = evo_ptree_new();
    if (!e->direct_tree) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
    if ((st = evo_ptree_add(e->direct_tree, &ps))) return st;
    e->D = evo_ptree_size(e->direct_tree);
    return EVO_STATUS_OK;
  }
  evo_policy_io io = {0}, tio = {0};
  const evo_task_spec *specs[2] = {sp, tsp};
  evo_policy_io *ios[2] = {&io, &tio};
  for (int k = 0; k < 2; k++) {
    ios[k]->obs_ndim = specs[k]->obs_ndim;
    ios[k]->act_ndim = specs[k]->act_ndim;
    memcpy(ios[k]->obs_shape, specs[k]->obs_shape, sizeof specs[k]->obs_shape);
    memcpy(ios[k]->act_shape, specs[k]->act_shape, sizeof specs[k]->act_shape);
    ios[k]->discrete = specs[k]->action_kind == EVO_ACTION_DISCRETE;
  }
  /* The test task may observe differently shaped batches (MNIST: the whole test set): a second policy with the
     same parameter layout serves it. */
  if ((st = at_section(evo_policy_new(sec, &io, &e->pol), sec))) return st;
  if ((st = at_section(evo_policy_new(sec, &tio, &e->test_pol), sec))) return st;
  e->D = evo_policy_num_params(e->pol);
  if (evo_policy_num_params(e->test_pol) != e->D)
    return at_section(evo_error(EVO_STATUS_INVALID_ARGUMENT, "the policy has %lld parameters for the training task "
                                "and %lld for the test task", (long long)e->D,
                                (long long)evo_policy_num_params(e->test_pol)), sec);
  return EVO_STATUS_OK;
}

static evo_status build_sims(evo_trainer *t, int64_t n_repeats, bool normalize, bool crn, int64_t task_threads) {
  evo_evaluator *e = &t->ev;
  e->n_repeats = (int)n_repeats;
  e->normalize_obs = normalize;
  e->crn = crn;
  if (e->direct) {
    if (normalize) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "trainer.normalize_obs needs a policy (policy "
                                    "direct observes nothing)");
    return EVO_STATUS_OK;
  }
  evo_sim_params sp = evo_sim_default_params();
  sp.n_repeats = (int)n_repeats;
  sp.normalize_obs = normalize;
  sp.common_random_numbers = crn;
  sp.task_threads = (int)task_threads;
  sp.external_norm_merge = t->ranks > 1; /* the trainer merges every rank's statistics in rank order */
  evo_status st = evo_sim_new(e->task, e->pol, t->be, &sp, &e->sim);
  if (!st) st = evo_sim_new(e->test_task, e->test_pol, t->be, &sp, &e->test_sim);
  if (!st && normalize && evo_sim_obs_size(e->sim) != evo_sim_obs_size(e->test_sim))
    st = evo_error(EVO_STATUS_INVALID_ARGUMENT, "trainer.normalize_obs needs the same observation size in the "
                   "training and test tasks (%lld vs %lld)", (long long)evo_sim_obs_size(e->sim),
                   (long long)evo_sim_obs_size(e->test_sim));
  return st;
}

/* An algorithm option: a number in [lo, hi], or for an option with names (evo_option_spec.choices) one of them,
   which stands for lo + its index (`optimizer: adam`; on/off options take true / false); an absent one is
   recorded by name. */
static evo_status read_algo_option(evo_cfg *sec, const evo_option_spec *o, double *out) {
  const evo_cfg *node = o->choices ? evo_cfg_get(sec, o->key) : NULL;
  const char *text = node ? evo_cfg_scalar(node) : NULL;
  char *end = NULL;
  if (text && *text) strtod(text, &end);
  if (!o->choices) return evo_cfg_double(sec, o->key, o->def, o->lo, o->hi, out);
  if (end && *end == '\0') { /* a named option given by its number: an integer */
    int64_t v = 0;
    evo_status st = evo_cfg_int(sec, o->key, (int64_t)o->def, (int64_t)o->lo, (int64_t)o->hi, &v);
    *out = (double)v;
    return st;
  }
  if (o->choices == evo_option_bool) { /* a YAML boolean, recorded as one */
    bool b = false;
    evo_status st = evo_cfg_bool(sec, o->key, o->def != 0, &b);
    *out = b;
    return st;
  }
  const char *name = NULL;
  evo_status st = evo_cfg_string(sec, o->key, o->choices[(int)(o->def - o->lo)], o->choices, &name);
  for (int k = 0; !st && o->choices[k]; k++)
    if (!strcmp(o->choices[k], name)) *out = o->lo + k;
  return st;
}

static evo_status build_algo(evo_trainer *t, evo_cfg *root) {
  evo_cfg *sec;
  evo_status st = evo_cfg_require(root, "algo");
  if (!st) st = evo_cfg_section(root, "algo", &sec);
  if (!st) st = evo_cfg_require(sec, "name");
  if (st) return st;
  int n_algos = evo_algo_count();
  const char **names = calloc((size_t)n_algos + 1, sizeof *names);
  if (!names) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
  for (int i = 0; i < n_algos; i++) names[i] = evo_algo_info_at(i)->name;
  const char *name;
  st = evo_cfg_string(sec, "name", NULL, names, &name);
  free(names);
  if (st) return st;
  const evo_algo_info *info = evo_algo_find(name);
  snprintf(t->algo_name, sizeof t->algo_name, "%s", name);
  int64_t pop = 0, D = t->ev.D;
  double stdev = 0;
  evo_algo_params ap = evo_algo_default_params();
  if (!st) st = evo_cfg_int(sec, "pop_size", 0, 0, 1 << 24, &pop);
  if (!st) st = evo_cfg_double(sec, "init_stdev", 0, 0, 1e6, &stdev);
  if (!st) st = evo_cfg_bool(sec, "maximize", true, &ap.maximize);
  if (st) return st;
  t->maximize = ap.maximize;
  float *x0 = malloc(sizeof(float) * (size_t)D);
  double *x0d = malloc(sizeof(double) * (size_t)D);
  evo_option *opts = calloc((size_t)info->n_options + 1, sizeof *opts);
  if (!x0 || !x0d || !opts) st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
  evo_cfg *x0n = st ? NULL : evo_cfg_get(sec, "x0");
  const char *x0s = x0n ? evo_cfg_scalar(x0n) : NULL;
  if (!st && x0s && !strcmp(x0s, "policy_init")) {
    if (t->ev.direct) {
      char where[256];
      st = evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: algo.x0 policy_init needs a policy (policy direct has no "
                     "initialiser); give a number or a list", evo_cfg_where(x0n, where, sizeof where));
    } else {
      st = evo_policy_init(t->ev.pol, evo_key_fold_in(t->root, 4), x0);
    }
  } else if (!st) {
    st = evo_cfg_doubles(sec, "x0", 0.0, D, x0d);
    for (int64_t i = 0; !st && i < D; i++) x0[i] = (float)x0d[i];
  }
  for (int i = 0; !st && i < info->n_options; i++) {
    const evo_option_spec *o = &info->options[i];
    opts[i].key = o->key;
    st = read_algo_option(sec, o, &opts[i].value);
  }
  if (!st) st = evo_cfg_check_unused(sec);
  if (!st) {
    ap.name = name;
    ap.num_params = D;
    ap.pop_size = (int)pop;
    ap.init_stdev = stdev;
    ap.init_mean = x0;
    ap.key = t->algo_key;
    ap.options = opts;
    ap.n_options = info->n_options;
    st = at_section(evo_algo_new(&ap, &t->algo), sec);
  }
  free(x0), free(x0d), free(opts);
  int need = st ? 0 : evo_algo_bd_dim(t->algo);
  if (need > 0) { /* quality diversity: descriptors come from the task (direct evaluator or the sim's host path) */
    const evo_task_spec *ts = evo_task_get_spec(t->ev.task);
    int have = ts->bd_dim;
    if (!t->ev.direct && ts->place != EVO_TASK_HOST)
      st = at_section(evo_error(EVO_STATUS_UNSUPPORTED, "algo %s needs behaviour descriptors, which a device task "
                                "('%s') cannot give yet", name, t->task_name), sec);
    else if (have != need)
      st = at_section(evo_error(EVO_STATUS_INVALID_ARGUMENT, "algo %s wants %d behaviour descriptor values per "
                                "member; task '%s' provides %d", name, need, t->task_name, have), sec);
    t->ev.bd_dim = need;
  }
  if (!st && pop == 0) { /* record the population the algorithm chose, so config.yaml shows it */
    char set[64];
    snprintf(set, sizeof set, "algo.pop_size=%d", evo_algo_pop_size(t->algo));
    st = evo_config_set(t->cfg, set);
  }
  return st;
}

evo_status evo_trainer_setup(evo_trainer *t) {
  evo_cfg *root = evo_config_root(t->cfg);
  if (evo_cfg_kind_of(root) != EVO_CFG_MAP)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "the config must be a map with sections task, policy, algo, "
                     "trainer");
  evo_status st = evo_cfg_int(root, "seed", 0, 0, INT64_MAX, &t->seed);
  if (!st) st = read_device(t, root);
  if (st) return st;
  t->root = evo_key_from_seed((uint64_t)t->seed);
  t->algo_key = evo_key_fold_in(t->root, 1);
  t->train_key = evo_key_fold_in(t->root, 2);
  t->test_key = evo_key_fold_in(t->root, 3);
  evo_cfg *task;
  if ((st = evo_cfg_require(root, "task")) || (st = evo_cfg_section(root, "task", &task))) return st;
  evo_task_args args = {t->be, EVO_TASK_TRAIN, (uint64_t)t->seed};
  if ((st = evo_task_new(task, &args, &t->ev.task))) return st;
  args.mode = EVO_TASK_TEST;
  if ((st = evo_task_new(task, &args, &t->ev.test_task))) return st;
  snprintf(t->task_name, sizeof t->task_name, "%s", evo_task_vtable_of(t->ev.task)->name);
  t->is_objective = !strcmp(t->task_name, "functions");
  int64_t n_repeats, task_threads;
  bool normalize, crn;
  if ((st = read_trainer(t, root, &n_repeats, &normalize, &crn, &task_threads))) return st;
  if ((st = build_policy(t, root))) return st;
  if ((st = build_sims(t, n_repeats, normalize, crn, task_threads))) return st;
  if ((st = build_algo(t, root))) return st;
  return evo_cfg_check_unused(root);
}
