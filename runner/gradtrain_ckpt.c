/* Gradient-training checkpoints: checkpoints/step_<N>.gradtrain.safetensors, one atomic file holding the parameter
   entries under their own names (so a checkpoint also serves as init_from), the optimizer state over the trained
   space ("optim.mu", "optim.nu", ..., "optim.count"), the run position (gradtrain.state) and the keys it was made
   with. Only the newest keep_checkpoints stay. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "evoc/run.h"
#include "gradtrain_impl.h"
#include "safetensors.h"

#define CKPT_SUFFIX ".gradtrain.safetensors"
#define MAX_OPT_STATE 4

static void pack(const evo_gradtrain_state *s, double *v) {
  const int64_t iv[] = {s->step, s->epoch, s->step_in_epoch, s->metrics_bytes, s->best_epoch, s->log_n,
                        s->epoch_loss_n};
  const double dv[] = {s->wall_s, s->log_sum, s->epoch_loss_sum, s->best_acc, s->last_acc, s->last_loss,
                       s->last_epoch_loss};
  for (int i = 0; i < 7; i++) v[i] = (double)iv[i], v[7 + i] = dv[i];
}

static void unpack(const double *v, evo_gradtrain_state *s) {
  *s = (evo_gradtrain_state){.step = (int64_t)v[0], .epoch = (int64_t)v[1], .step_in_epoch = (int64_t)v[2],
                      .metrics_bytes = (int64_t)v[3], .best_epoch = (int64_t)v[4], .log_n = (int64_t)v[5],
                      .epoch_loss_n = (int64_t)v[6], .wall_s = v[7], .log_sum = v[8], .epoch_loss_sum = v[9],
                      .best_acc = v[10], .last_acc = v[11], .last_loss = v[12], .last_epoch_loss = v[13]};
}

static evo_status ckpt_path(char *buf, size_t cap, const char *dir, int64_t step) {
  int n = snprintf(buf, cap, "%s/checkpoints/step_%09lld" CKPT_SUFFIX, dir, (long long)step);
  return n < 0 || (size_t)n >= cap ? evo_error(EVO_STATUS_INVALID_ARGUMENT, "checkpoint path too long") : EVO_STATUS_OK;
}

static int by_step_desc(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x < y) - (x > y);
}

/* Steps of the checkpoints in dir, newest first (*out NULL and *n 0 when there are none). */
static evo_status steps_in(const char *dir, int64_t **out, int *n) {
  char path[4200];
  *out = NULL, *n = 0;
  snprintf(path, sizeof path, "%s/checkpoints", dir);
  DIR *d = opendir(path);
  if (!d) return EVO_STATUS_OK;
  int cap = 0;
  struct dirent *de;
  evo_status st = EVO_STATUS_OK;
  while (!st && (de = readdir(d))) {
    long long step;
    int used = 0;
    if (sscanf(de->d_name, "step_%lld%n", &step, &used) != 1 || strcmp(de->d_name + used, CKPT_SUFFIX)) continue;
    if (*n == cap) {
      int64_t *grown = realloc(*out, sizeof **out * (size_t)(cap = cap ? 2 * cap : 8));
      if (!grown) st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "checkpoints: out of memory");
      else *out = grown;
    }
    if (!st) (*out)[(*n)++] = step;
  }
  closedir(d);
  if (*n > 1) qsort(*out, (size_t)*n, sizeof **out, by_step_desc);
  return st;
}

bool evo_gradtrain_checkpoint_exists(const char *dir) {
  int64_t *steps;
  int n;
  evo_status st = steps_in(dir, &steps, &n);
  free(steps);
  return !st && n > 0;
}

evo_status evo_gradtrain_checkpoint_save(evo_gradtrain *t) {
  char path[4300];
  evo_status st = ckpt_path(path, sizeof path, t->out_dir, t->s.step);
  if (!st) st = evo_gradtrain_dev_sync(t);
  if (st) return st;
  const evo_ptree *tr = evo_policy_ptree(t->pol);
  int n_opt = evo_gradtrain_optim_state(t, -1, NULL, NULL, NULL, true);
  int cap = t->n_entries + MAX_OPT_STATE + 2, k = 0;
  evo_st_tensor *ts = calloc((size_t)cap, sizeof *ts);
  double *bufs[MAX_OPT_STATE] = {0}, state[EVO_GRADTRAIN_STATE_N];
  int64_t sizes[MAX_OPT_STATE], nstate = EVO_GRADTRAIN_STATE_N, four = 4;
  uint32_t keys[4] = {t->init_key.w[0], t->init_key.w[1], t->shuffle_key.w[0], t->shuffle_key.w[1]};
  if (!ts || n_opt > MAX_OPT_STATE) st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "checkpoint: out of memory");
  for (int i = 0; !st && i < t->n_entries; i++) {
    const evo_param_spec *s = evo_ptree_spec(tr, i);
    ts[k++] = (evo_st_tensor){s->name, EVO_F32, s->ndim, s->shape, evo_tensor_data(t->param[i])};
  }
  for (int j = 0; !st && j < n_opt; j++) {
    const char *name;
    evo_gradtrain_optim_state(t, j, &name, &sizes[j], NULL, true);
    if (!(bufs[j] = malloc(sizeof(double) * (size_t)sizes[j]))) {
      st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "checkpoint: out of memory for the optimizer state");
      break;
    }
    evo_gradtrain_optim_state(t, j, &name, &sizes[j], bufs[j], true);
    ts[k++] = (evo_st_tensor){name, EVO_F64, 1, &sizes[j], bufs[j]};
  }
  pack(&t->s, state);
  ts[k++] = (evo_st_tensor){"gradtrain.state", EVO_F64, 1, &nstate, state};
  ts[k++] = (evo_st_tensor){"gradtrain.keys", EVO_U32, 1, &four, keys};
  const char *meta[] = {"format", "evoc-gradtrain", "optim", t->optim_name, "policy", t->policy_name};
  if (!st) st = evo_st_write(path, ts, k, meta, 3);
  for (int j = 0; j < MAX_OPT_STATE; j++) free(bufs[j]);
  free(ts);
  if (st) return st;
  int64_t *steps;
  int n;
  if (!steps_in(t->out_dir, &steps, &n))
    for (int i = (int)t->keep_ckpt; i < n; i++)
      if (!ckpt_path(path, sizeof path, t->out_dir, steps[i])) unlink(path);
  free(steps);
  return EVO_STATUS_OK;
}

/* Reads entry `name` of exactly n elements of dtype dt. */
static evo_status read_entry(evo_st_reader *r, const char *name, evo_dtype dt, int64_t n, void *dst) {
  int i = evo_st_find(r, name);
  const evo_st_info *in = evo_st_info_at(r, i);
  if (!in || in->dtype != dt || in->numel != n)
    return evo_error(EVO_STATUS_FORMAT, "%s: entry '%s' is missing or has the wrong type or size (was the config "
                     "changed since the checkpoint? freeze and the policy must stay the same)", evo_st_path(r), name);
  return evo_st_read(r, i, dst, (size_t)n * evo_dtype_size(dt));
}

static evo_status load_from(evo_gradtrain *t, evo_st_reader *r) {
  const char *fmt = evo_st_metadata(r, "format"), *optim = evo_st_metadata(r, "optim");
  const char *path = evo_st_path(r);
  if (!fmt || strcmp(fmt, "evoc-gradtrain"))
    return evo_error(EVO_STATUS_FORMAT, "%s is not an evoc gradient-training checkpoint", path);
  if (!optim || strcmp(optim, t->optim_name))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s was written with optimizer '%s'; the config says '%s'", path,
                     optim ? optim : "?", t->optim_name);
  uint32_t keys[4];
  evo_status st = read_entry(r, "gradtrain.keys", EVO_U32, 4, keys);
  if (!st && (keys[0] != t->init_key.w[0] || keys[1] != t->init_key.w[1] || keys[2] != t->shuffle_key.w[0] ||
              keys[3] != t->shuffle_key.w[1]))
    st = evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s was written with another seed than the config's %lld", path,
                   (long long)t->seed);
  double state[EVO_GRADTRAIN_STATE_N];
  if (!st) st = read_entry(r, "gradtrain.state", EVO_F64, EVO_GRADTRAIN_STATE_N, state);
  const evo_ptree *tr = evo_policy_ptree(t->pol);
  for (int i = 0; !st && i < t->n_entries; i++)
    st = read_entry(r, evo_ptree_spec(tr, i)->name, EVO_F32, evo_tensor_numel(t->param[i]),
                    evo_tensor_data(t->param[i]));
  t->frozen_stale = true;
  evo_gradtrain_dev_host_changed(t);
  int n_opt = evo_gradtrain_optim_state(t, -1, NULL, NULL, NULL, false);
  for (int j = 0; !st && j < n_opt; j++) {
    const char *name;
    int64_t n;
    evo_gradtrain_optim_state(t, j, &name, &n, NULL, false);
    double *buf = malloc(sizeof(double) * (size_t)n);
    st = buf ? read_entry(r, name, EVO_F64, n, buf) : evo_error(EVO_STATUS_OUT_OF_MEMORY, "checkpoint: out of memory");
    if (!st) evo_gradtrain_optim_state(t, j, &name, &n, buf, false);
    free(buf);
  }
  if (!st) unpack(state, &t->s);
  return st;
}

evo_status evo_gradtrain_checkpoint_load(evo_gradtrain *t) {
  int64_t *steps;
  int n;
  evo_status st = steps_in(t->out_dir, &steps, &n);
  if (st) return st;
  if (n == 0) {
    free(steps);
    return evo_error(EVO_STATUS_NOT_FOUND, "%s/checkpoints has no gradient-training checkpoint to resume from",
                     t->out_dir);
  }
  char path[4300];
  st = ckpt_path(path, sizeof path, t->out_dir, steps[0]);
  free(steps);
  evo_st_reader *r;
  if (!st) st = evo_st_open(path, &r);
  if (st) return st;
  st = load_from(t, r);
  evo_st_close(r);
  return st;
}
