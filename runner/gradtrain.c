/* The gradient-training loop: mini-batch -> value_and_grad -> optimizer update -> log -> (epoch end) test,
   best.safetensors, checkpoint; and the run folder it leaves (run.h). */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "evoc/run.h"
#include "gradtrain_impl.h"

evo_gradtrain_params evo_gradtrain_default_params(void) { return (evo_gradtrain_params){0}; }

const char *evo_gradtrain_stop_name(evo_gradtrain_stop s) {
  switch (s) {
  case EVO_GRADTRAIN_RUNNING: return "running";
  case EVO_GRADTRAIN_EPOCHS: return "epochs";
  case EVO_GRADTRAIN_MAX_STEPS: return "max_steps";
  case EVO_GRADTRAIN_INTERRUPTED: return "interrupted";
  }
  return "?";
}

double evo_gradtrain_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void evo_gradtrain_note(const evo_gradtrain *t, const char *msg) {
  if (t->p.note) t->p.note(msg, t->p.user);
}

void evo_gradtrain_free(evo_gradtrain *t) {
  if (!t) return;
  evo_gradtrain_dev_free(t);
  evo_gradtrain_plans_free(t);
  for (int c = 0; c < t->n_chunks; c++) evo_optim_free(t->chunks[c].o);
  for (int i = 0; t->param && i < t->n_entries; i++) evo_tensor_free(t->param[i]);
  free(t->chunks), free(t->chunk_sq), free(t->gather_p), free(t->gather_g);
  free(t->param), free(t->trained), free(t->trained_idx), free(t->space_off);
  evo_policy_free(t->pol);
  evo_mnist_split_free(&t->train);
  evo_mnist_split_free(&t->test);
  evo_backend_free(t->be);
  evo_backend_free(t->dev);
  free(t->out_dir);
  free(t);
}

evo_status evo_gradtrain_new(evo_config *cfg, const evo_gradtrain_params *p, evo_gradtrain **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "gradtrain_new: out is NULL");
  *out = NULL;
  if (!cfg) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "gradtrain_new: NULL config");
  evo_gradtrain *t = calloc(1, sizeof *t);
  if (!t) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory");
  t->cfg = cfg;
  t->p = p ? *p : evo_gradtrain_default_params();
  t->s = (evo_gradtrain_state){.epoch = 1, .best_acc = NAN, .last_acc = NAN, .last_loss = NAN, .last_epoch_loss = NAN};
  evo_status st = EVO_STATUS_OK;
  if (t->p.out_dir && !(t->out_dir = strdup(t->p.out_dir))) st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "out of memory");
  if (!st) st = evo_gradtrain_setup(t);
  if (st) {
    evo_gradtrain_free(t);
    return st;
  }
  *out = t;
  return EVO_STATUS_OK;
}

static evo_status dir_file(const evo_gradtrain *t, const char *name, char *buf, size_t cap) {
  return evo_run_path(buf, cap, t->out_dir, name);
}

evo_status evo_gradtrain_open_dir(evo_gradtrain *t) {
  if (!t->out_dir || t->dir_open) return EVO_STATUS_OK;
  char metrics[4200];
  evo_status st = evo_run_dir_prepare(t->out_dir);
  if (!st) st = dir_file(t, "metrics.jsonl", metrics, sizeof metrics);
  if (st) return st;
  if (t->p.resume) {
    if ((st = evo_gradtrain_checkpoint_load(t)) || (st = evo_run_truncate(metrics, t->s.metrics_bytes))) return st;
  } else if (evo_gradtrain_checkpoint_exists(t->out_dir) || evo_run_file_exists(metrics)) {
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s already holds a run; continue it with --resume %s or choose "
                     "another output folder", t->out_dir, t->out_dir);
  }
  if ((st = evo_run_write_config(t->out_dir, t->cfg))) return st;
  t->dir_open = true;
  return EVO_STATUS_OK;
}

/* ---------------------------------------------------------------- one step */

static evo_status save_best(evo_gradtrain *t) {
  char path[4200], epoch[32], acc[40];
  snprintf(epoch, sizeof epoch, "%lld", (long long)t->s.best_epoch);
  snprintf(acc, sizeof acc, "%.17g", t->s.best_acc);
  const char *meta[] = {"format", "evoc", "policy", t->policy_name, "epoch", epoch, "test_acc", acc};
  evo_status st = dir_file(t, "best.safetensors", path, sizeof path);
  if (!st) st = evo_gradtrain_dev_sync(t);
  return st ? st : evo_gradtrain_save_params(t, path, meta, 4);
}

/* The test at an epoch end; best.safetensors when the accuracy improves. */
static evo_status run_test(evo_gradtrain *t, evo_gradtrain_progress *pr) {
  evo_status st = evo_gradtrain_evaluate(t, &pr->test_acc, &pr->test_loss);
  if (st) return st;
  t->s.last_acc = pr->test_acc, t->s.last_loss = pr->test_loss;
  if (isnan(t->s.best_acc) || pr->test_acc > t->s.best_acc) {
    t->s.best_acc = pr->test_acc;
    t->s.best_epoch = pr->epoch;
    if (t->out_dir && (st = save_best(t))) return st;
  }
  return EVO_STATUS_OK;
}

/* learning_curve.png after each epoch's test; the run goes on without it (noted once). */
static void plot_curve(evo_gradtrain *t) {
  char title[256];
  snprintf(title, sizeof title, "%s / %s / gradient training (seed %lld)", t->task_name, t->policy_name,
           (long long)t->seed);
  if (evo_run_plot_grad(t->out_dir, title) && !t->plot_noted) {
    char msg[600];
    snprintf(msg, sizeof msg, "no learning curve: %s", evo_last_error());
    evo_gradtrain_note(t, msg);
    t->plot_noted = true;
  }
}

static void add(cJSON *o, const char *key, double v) { cJSON_AddNumberToObject(o, key, isfinite(v) ? v : NAN); }

static evo_status log_line(evo_gradtrain *t, evo_gradtrain_progress *pr, double lr, double epoch_s, double eval_s,
                           char **line) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory");
  add(o, "step", (double)pr->step);
  add(o, "epoch", (double)pr->epoch);
  add(o, "loss", t->s.log_sum / (double)t->s.log_n);
  add(o, "lr", lr);
  add(o, "wall_s", floor(pr->wall_s * 1000.0 + 0.5) / 1000.0);
  if (pr->tested) {
    add(o, "test_acc", pr->test_acc);
    add(o, "test_loss", pr->test_loss);
    add(o, "epoch_s", floor(epoch_s * 1000.0 + 0.5) / 1000.0);
    add(o, "eval_s", floor(eval_s * 1000.0 + 0.5) / 1000.0);
  }
  *line = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  t->s.log_sum = 0, t->s.log_n = 0;
  if (!*line) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory");
  return t->out_dir ? evo_run_append_line(t->out_dir, "metrics.jsonl", *line, &t->s.metrics_bytes) : EVO_STATUS_OK;
}

static evo_gradtrain_stop check_stop(const evo_gradtrain *t) {
  if (t->p.interrupt && *t->p.interrupt) return EVO_GRADTRAIN_INTERRUPTED;
  if (t->s.epoch > t->epochs) return EVO_GRADTRAIN_EPOCHS;
  if (t->max_steps > 0 && t->s.step >= t->max_steps) return EVO_GRADTRAIN_MAX_STEPS;
  return EVO_GRADTRAIN_RUNNING;
}

static evo_status step_once(evo_gradtrain *t, double wall0, double *epoch_t0) {
  evo_gradtrain_state *s = &t->s;
  if (t->perm_epoch != s->epoch) evo_gradtrain_permutation(t, s->epoch);
  if (s->step_in_epoch == 0) *epoch_t0 = evo_gradtrain_now();
  int64_t start = s->step_in_epoch * t->batch, n = t->train.n - start < t->batch ? t->train.n - start : t->batch;
  double loss, lr = evo_optim_lr(t->chunks[0].o);
  evo_status st = evo_gradtrain_forward_backward(t, n, t->perm + start, &loss, false);
  if (st) return st;
  if (!isfinite(loss))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "step %lld: the training loss is %g (lower optim.lr or set "
                     "optim.clip_norm)", (long long)s->step + 1, loss);
  if ((st = evo_gradtrain_optim_step(t))) return st;
  s->step++, s->step_in_epoch++;
  s->log_sum += loss, s->log_n++;
  s->epoch_loss_sum += loss, s->epoch_loss_n++;
  evo_gradtrain_progress pr = {.step = s->step, .total_steps = t->epochs * t->steps_per_epoch, .epoch = s->epoch,
                        .epochs = t->epochs, .step_in_epoch = s->step_in_epoch,
                        .steps_per_epoch = t->steps_per_epoch, .loss = loss, .test_acc = NAN, .test_loss = NAN};
  bool epoch_end = s->step_in_epoch == t->steps_per_epoch;
  double epoch_s = 0, eval_s = 0;
  if (epoch_end) {
    double t_eval = evo_gradtrain_now();
    epoch_s = t_eval - *epoch_t0;
    pr.tested = true;
    if ((st = run_test(t, &pr))) return st;
    eval_s = evo_gradtrain_now() - t_eval;
    t->session_epoch_s += epoch_s, t->session_epochs++;
  }
  s->wall_s = wall0 + (evo_gradtrain_now() - t->t_start);
  pr.wall_s = s->wall_s;
  pr.best_test_acc = s->best_acc;
  char *line = NULL;
  if ((s->step % t->log_interval == 0 || epoch_end) && (st = log_line(t, &pr, lr, epoch_s, eval_s, &line))) {
    cJSON_free(line);
    return st;
  }
  pr.metrics_line = line;
  if (epoch_end && t->out_dir) plot_curve(t);
  if (epoch_end) {
    s->last_epoch_loss = s->epoch_loss_sum / (double)s->epoch_loss_n;
    s->epoch++, s->step_in_epoch = 0, s->epoch_loss_sum = 0, s->epoch_loss_n = 0;
  }
  t->stop = check_stop(t);
  if (t->out_dir && (epoch_end || t->stop != EVO_GRADTRAIN_RUNNING)) st = evo_gradtrain_checkpoint_save(t);
  if (!st && t->p.progress) t->p.progress(&pr, t->p.user);
  cJSON_free(line);
  return st;
}

/* ---------------------------------------------------------------- the run */

static evo_status write_summary(const evo_gradtrain *t) {
  evo_gradtrain_summary s;
  evo_gradtrain_summary_get(t, &s);
  cJSON *o = cJSON_CreateObject();
  if (!o) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory");
  cJSON_AddStringToObject(o, "task", s.task);
  cJSON_AddStringToObject(o, "policy", s.policy);
  cJSON_AddStringToObject(o, "optim", s.optim);
  cJSON_AddStringToObject(o, "device", t->device);
  const char *keys[] = {"seed", "num_params", "trainable_params", "epochs", "steps", "steps_per_epoch", "examples",
                        "wall_s", "seconds_per_epoch", "train_loss", "test_acc", "test_loss", "best_test_acc",
                        "best_epoch"};
  const double vals[] = {(double)s.seed, (double)s.num_params, (double)s.trainable_params, (double)s.epochs_done,
                         (double)s.steps, (double)s.steps_per_epoch, (double)s.examples, s.wall_s,
                         s.seconds_per_epoch, s.train_loss, s.test_acc, s.test_loss, s.best_test_acc,
                         (double)s.best_epoch};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) add(o, keys[i], vals[i]);
  cJSON_AddStringToObject(o, "stopped_because", evo_gradtrain_stop_name(s.stopped_because));
  char *text = cJSON_Print(o);
  cJSON_Delete(o);
  if (!text) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "gradtrain: out of memory");
  evo_status st = evo_run_write_text(t->out_dir, "summary.json", text);
  cJSON_free(text);
  return st;
}

evo_status evo_gradtrain_run(evo_gradtrain *t) {
  evo_status st = evo_gradtrain_open_dir(t);
  if (st) return st;
  t->t_start = evo_gradtrain_now();
  double wall0 = t->s.wall_s, epoch_t0 = t->t_start;
  /* a resumed run may have nothing left to do (or ask for fewer epochs) */
  t->stop = check_stop(t);
  if (t->stop == EVO_GRADTRAIN_INTERRUPTED && t->out_dir) st = evo_gradtrain_checkpoint_save(t);
  while (!st && t->stop == EVO_GRADTRAIN_RUNNING) st = step_once(t, wall0, &epoch_t0);
  if (!st) st = evo_gradtrain_dev_sync(t); /* the host's parameters are the run's result */
  if (!st && t->out_dir) st = write_summary(t);
  return st;
}

void evo_gradtrain_summary_get(const evo_gradtrain *t, evo_gradtrain_summary *out) {
  int64_t per_epoch = t->drop_last ? t->steps_per_epoch * t->batch : t->train.n;
  const evo_gradtrain_state *s = &t->s;
  double train_loss = s->epoch_loss_n > 0 ? s->epoch_loss_sum / (double)s->epoch_loss_n : s->last_epoch_loss;
  *out = (evo_gradtrain_summary){.task = t->task_name, .policy = t->policy_name, .optim = t->optim_name,
                          .seed = t->seed, .num_params = evo_ptree_size(evo_policy_ptree(t->pol)),
                          .trainable_params = t->trained_size, .epochs_done = s->epoch - 1, .steps = s->step,
                          .steps_per_epoch = t->steps_per_epoch,
                          .examples = (s->epoch - 1) * per_epoch + s->step_in_epoch * t->batch,
                          .wall_s = s->wall_s,
                          .seconds_per_epoch = t->session_epochs ? t->session_epoch_s / (double)t->session_epochs : NAN,
                          .train_loss = train_loss, .test_acc = s->last_acc, .test_loss = s->last_loss,
                          .best_test_acc = s->best_acc, .best_epoch = s->best_epoch, .stopped_because = t->stop};
}
