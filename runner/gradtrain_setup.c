/* From a config to a ready gradient trainer: every section read through the evo_cfg readers (errors name
   file:line:col, unknown keys get "did you mean"), then data, policy, parameters, optimizer and plans built. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gradtrain_impl.h"
#include "run_device.h"

/* Library errors (data, policy shapes, optimizer ranges) get the location of the node that caused them; reader
   errors carry theirs already. */
static evo_status located(evo_status st, evo_cfg *node) {
  if (!st || !node) return st;
  char where[512], msg[1024];
  evo_cfg_where(node, where, sizeof where);
  snprintf(msg, sizeof msg, "%s", evo_last_error());
  size_t file_len = strcspn(where, ":");
  if (!strncmp(msg, where, file_len) || !strncmp(msg, "--set", 5)) return st;
  return evo_error(st, "%s: %s", where, msg);
}

/* device: auto | cpu | cuda | cuda:N (run_device.h). On a GPU the value_and_grad and evaluation plans run there;
   the parameters, the optimizer and the batches stay on the host and cross once per step (parameters in,
   gradients out), so CPU and GPU runs differ only by the plans' float rounding. */
static evo_status read_device(evo_gradtrain *t, evo_cfg *root) {
  evo_run_device d;
  evo_status st = evo_run_device_open(root, NULL, -1, &d);
  if (st) return st;
  t->be = d.host;
  t->dev = d.be == d.host ? NULL : d.be;
  snprintf(t->device, sizeof t->device, "%s", d.label);
  if (!d.cpu_asked) evo_gradtrain_note(t, d.note);
  return EVO_STATUS_OK;
}

/* task: the dataset. Both splits are loaded here so a missing or corrupt file fails before anything runs. */
static evo_status read_task(evo_gradtrain *t, evo_cfg *root) {
  static const char *const names[] = {"mnist", NULL};
  evo_cfg *sec;
  const char *name, *dir;
  evo_status st = evo_cfg_require(root, "task");
  if (!st) st = evo_cfg_section(root, "task", &sec);
  if (!st) st = evo_cfg_string(sec, "name", "mnist", names, &name);
  if (!st) st = evo_cfg_string(sec, "data_dir", EVO_MNIST_DEFAULT_DIR, NULL, &dir);
  if (!st) st = evo_cfg_check_unused(sec);
  if (st) return st;
  snprintf(t->task_name, sizeof t->task_name, "%s", name);
  evo_cfg *at = evo_cfg_get(sec, "data_dir");
  if ((st = located(evo_mnist_load(dir, EVO_MNIST_TRAIN, &t->train), at))) return st;
  if ((st = located(evo_mnist_load(dir, EVO_MNIST_TEST, &t->test), at))) return st;
  if (t->test.rows != t->train.rows || t->test.cols != t->train.cols)
    return located(evo_error(EVO_STATUS_FORMAT, "%s: test images are %lldx%lld, training images %lldx%lld", dir,
                             (long long)t->test.rows, (long long)t->test.cols, (long long)t->train.rows,
                             (long long)t->train.cols), at);
  for (int v = 0; v < 256; v++) t->lut[v] = (float)v / 255.0f;
  return EVO_STATUS_OK;
}

/* policy: the constructors of evolution runs; images [rows, cols, 1] -> class scores [10]. */
static evo_status read_policy(evo_gradtrain *t, evo_cfg *root) {
  static const char *const names[] = {"mlp", "cnn", NULL};
  evo_cfg *sec;
  const char *name;
  evo_status st = evo_cfg_section(root, "policy", &sec);
  if (!st) st = evo_cfg_string(sec, "name", "mlp", names, &name);
  if (st) return st;
  snprintf(t->policy_name, sizeof t->policy_name, "%s", name);
  /* the loss wants scores: an mlp's automatic head would squash them with tanh */
  if (!strcmp(name, "mlp") && !evo_cfg_get(sec, "output") && (st = evo_config_set(t->cfg, "policy.output=linear")))
    return st;
  evo_policy_io io = {.obs_ndim = 3, .obs_shape = {t->train.rows, t->train.cols, 1}, .act_ndim = 1,
                      .act_shape = {EVO_MNIST_CLASSES}};
  if ((st = located(evo_policy_new(sec, &io, &t->pol), sec))) return st;
  t->n_entries = evo_ptree_count(evo_policy_ptree(t->pol));
  return EVO_STATUS_OK;
}

static evo_status read_optim(evo_gradtrain *t, evo_cfg *root) {
  static const char *const names[] = {"sgd", "momentum", "nesterov", "adam", "adamw", "clipup", NULL};
  static const char *const schedules[] = {"constant", "exponential", "cosine", NULL};
  evo_cfg *sec;
  const char *name, *sched;
  evo_status st = evo_cfg_section(root, "optim", &sec);
  if (!st) st = evo_cfg_string(sec, "name", "adam", names, &name);
  if (st) return st;
  evo_optim_kind kind = (evo_optim_kind)evo_optim_kind_from_name(name);
  evo_optim_params *p = &t->op;
  *p = evo_optim_default_params(kind);
  snprintf(t->optim_name, sizeof t->optim_name, "%s", name);
  const int64_t big = INT64_MAX / 2;
  bool adam = kind == EVO_OPTIM_ADAM || kind == EVO_OPTIM_ADAMW;
  st = evo_cfg_double(sec, "lr", p->lr, 0, 1e6, &p->lr);
  if (!st && kind != EVO_OPTIM_SGD && !adam) st = evo_cfg_double(sec, "momentum", p->momentum, 0, 1, &p->momentum);
  if (!st && adam) st = evo_cfg_double(sec, "beta1", p->beta1, 0, 1, &p->beta1);
  if (!st && adam) st = evo_cfg_double(sec, "beta2", p->beta2, 0, 1, &p->beta2);
  if (!st && adam) st = evo_cfg_double(sec, "eps", p->eps, 0, 1, &p->eps);
  if (!st && kind == EVO_OPTIM_ADAMW)
    st = evo_cfg_double(sec, "weight_decay", p->weight_decay, 0, 1e6, &p->weight_decay);
  if (!st && kind == EVO_OPTIM_CLIPUP) st = evo_cfg_double(sec, "max_speed", p->max_speed, DBL_MIN, 1e6, &p->max_speed);
  if (!st) st = evo_cfg_double(sec, "clip_norm", 0, 0, INFINITY, &p->clip_norm);
  if (!st) st = evo_cfg_string(sec, "schedule", "constant", schedules, &sched);
  if (st) return st;
  p->schedule = !strcmp(sched, "cosine") ? EVO_SCHEDULE_COSINE
                : !strcmp(sched, "exponential") ? EVO_SCHEDULE_EXPONENTIAL : EVO_SCHEDULE_CONSTANT;
  if (p->schedule == EVO_SCHEDULE_EXPONENTIAL)
    st = evo_cfg_double(sec, "decay_rate", p->decay_rate, DBL_MIN, 1e6, &p->decay_rate);
  if (!st && p->schedule != EVO_SCHEDULE_CONSTANT)
    st = evo_cfg_int(sec, "decay_steps", 1000, 1, big, &p->decay_steps);
  if (!st && p->schedule == EVO_SCHEDULE_COSINE) st = evo_cfg_double(sec, "alpha", 0, 0, 1, &p->alpha);
  if (!st) st = evo_cfg_int(sec, "warmup_steps", 0, 0, big, &p->warmup_steps);
  if (!st) st = evo_cfg_check_unused(sec);
  if (st) return st;
  /* the optimizer's own range checks (open intervals such as beta1 < 1), placed at the section */
  evo_optim *probe;
  if ((st = located(evo_optim_new(p, 1, &probe), sec))) return st;
  evo_optim_free(probe);
  return EVO_STATUS_OK;
}

static evo_status read_data(evo_gradtrain *t, evo_cfg *root) {
  evo_cfg *sec;
  evo_status st = evo_cfg_section(root, "data", &sec);
  if (!st) st = evo_cfg_int(sec, "batch_size", 128, 1, 1 << 20, &t->batch);
  if (!st) st = evo_cfg_bool(sec, "shuffle", true, &t->shuffle);
  if (!st) st = evo_cfg_bool(sec, "drop_last", true, &t->drop_last);
  if (!st) st = evo_cfg_int(sec, "eval_batch_size", 1000, 1, 1 << 20, &t->eval_batch);
  if (!st) st = evo_cfg_check_unused(sec);
  if (st) return st;
  if (t->batch > t->train.n)
    return located(evo_error(EVO_STATUS_INVALID_ARGUMENT, "data.batch_size %lld exceeds the %lld training images",
                             (long long)t->batch, (long long)t->train.n), evo_cfg_get(sec, "batch_size"));
  t->steps_per_epoch = t->drop_last ? t->train.n / t->batch : (t->train.n + t->batch - 1) / t->batch;
  return EVO_STATUS_OK;
}

static evo_status read_trainer(evo_gradtrain *t, evo_cfg *root) {
  evo_cfg *sec;
  const int64_t big = 1000000000;
  evo_status st = evo_cfg_section(root, "trainer", &sec);
  if (!st) st = evo_cfg_int(sec, "epochs", 2, 1, big, &t->epochs);
  if (!st) st = evo_cfg_int(sec, "log_interval", 100, 1, big, &t->log_interval);
  if (!st) st = evo_cfg_int(sec, "max_steps", 0, 0, INT64_MAX / 2, &t->max_steps);
  if (!st) st = evo_cfg_int(sec, "keep_checkpoints", 2, 1, 1000, &t->keep_ckpt);
  if (!st) st = evo_cfg_check_unused(sec);
  return st;
}

/* init_from, reinit, freeze: what the parameters start from and which of them train. */
static evo_status read_transfer(evo_gradtrain *t, evo_cfg *root) {
  const char *init_from;
  evo_status st = evo_cfg_string(root, "init_from", NULL, NULL, &init_from);
  if (st) return st;
  bool *reinit = calloc((size_t)t->n_entries, sizeof *reinit);
  t->trained = calloc((size_t)t->n_entries, sizeof *t->trained);
  if (!reinit || !t->trained) st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory");
  if (!st) st = evo_gradtrain_select(t, root, "reinit", reinit);
  if (!st) st = evo_gradtrain_select(t, root, "freeze", t->trained); /* frozen for now; inverted below */
  for (int i = 0; !st && i < t->n_entries; i++) t->trained[i] = !t->trained[i];
  bool any_reinit = false, any_trained = false;
  for (int i = 0; !st && i < t->n_entries; i++) any_reinit |= reinit[i], any_trained |= t->trained[i];
  if (!st && any_reinit && !init_from)
    st = located(evo_error(EVO_STATUS_INVALID_ARGUMENT, "reinit needs init_from (without it every entry is drawn "
                           "fresh from the seed)"), evo_cfg_get(root, "reinit"));
  if (!st && !any_trained)
    st = located(evo_error(EVO_STATUS_INVALID_ARGUMENT, "freeze leaves nothing to train; list fewer layers"),
                 evo_cfg_get(root, "freeze"));
  if (!st) st = located(evo_gradtrain_params_init(t, init_from, reinit), evo_cfg_get(root, "init_from"));
  free(reinit);
  return st;
}

evo_status evo_gradtrain_setup(evo_gradtrain *t) {
  evo_cfg *root = evo_config_root(t->cfg);
  if (evo_cfg_kind_of(root) != EVO_CFG_MAP)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "the config must be a map with sections task, policy, optim, "
                     "data, trainer");
  evo_status st = evo_cfg_int(root, "seed", 0, 0, INT64_MAX, &t->seed);
  if (!st) st = read_device(t, root);
  if (st) return st;
  evo_key k = evo_key_from_seed((uint64_t)t->seed);
  t->init_key = evo_key_fold_in(k, 1);
  t->shuffle_key = evo_key_fold_in(k, 2);
  if ((st = read_task(t, root)) || (st = read_policy(t, root)) || (st = read_optim(t, root)) ||
      (st = read_data(t, root)) || (st = read_trainer(t, root)) || (st = read_transfer(t, root)))
    return st;
  if ((st = evo_gradtrain_optim_init(t)) || (st = evo_gradtrain_plans_init(t)) || (st = evo_gradtrain_dev_init(t)))
    return st;
  return evo_cfg_check_unused(root);
}
