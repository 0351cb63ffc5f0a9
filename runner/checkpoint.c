/* Checkpoints: checkpoints/iter_<N>.algo.safetensors (evo_algo_save) then iter_<N>.trainer.safetensors (the
   trainer's counters, seed key, normaliser, metrics.jsonl length). The trainer file is written last, so its presence
   marks a complete checkpoint; both are atomic. Only the newest keep_checkpoints are kept. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "evoc/run.h"
#include "safetensors.h"
#include "trainer_impl.h"

#define STATE_N 9

static void pack(const evo_trainer_state *s, double *v) {
  v[0] = (double)s->iteration, v[1] = (double)s->evaluations, v[2] = (double)s->last_test_iter;
  v[3] = (double)s->metrics_bytes, v[4] = s->wall_s, v[5] = s->best_train, v[6] = s->best_test;
  v[7] = s->last_test, v[8] = s->best_objective;
}

static void unpack(const double *v, evo_trainer_state *s) {
  s->iteration = (int64_t)v[0], s->evaluations = (int64_t)v[1], s->last_test_iter = (int64_t)v[2];
  s->metrics_bytes = (int64_t)v[3], s->wall_s = v[4], s->best_train = v[5], s->best_test = v[6];
  s->last_test = v[7], s->best_objective = v[8];
}

static evo_status ckpt_path(char *buf, size_t cap, const char *dir, int64_t iter, const char *kind) {
  int n = snprintf(buf, cap, "%s/checkpoints/iter_%09lld.%s.safetensors", dir, (long long)iter, kind);
  return n < 0 || (size_t)n >= cap ? evo_error(EVO_STATUS_INVALID_ARGUMENT, "checkpoint path too long") : EVO_STATUS_OK;
}

/* Iterations of complete checkpoints (trainer files), newest first. */
static evo_status list_checkpoints(const char *dir, int64_t **out, int *n) {
  char path[4200];
  *out = NULL, *n = 0;
  evo_status st = evo_run_path(path, sizeof path, dir, "checkpoints");
  if (st) return st;
  DIR *d = opendir(path);
  if (!d) return EVO_STATUS_OK;
  int cap = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    long long it;
    char tail[64];
    if (sscanf(de->d_name, "iter_%lld.%63s", &it, tail) != 2 || strcmp(tail, "trainer.safetensors")) continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 16;
      int64_t *nb = realloc(*out, sizeof **out * (size_t)cap);
      if (!nb) {
        closedir(d);
        return evo_error(EVO_STATUS_OUT_OF_MEMORY, "checkpoints: out of memory");
      }
      *out = nb;
    }
    (*out)[(*n)++] = it;
  }
  closedir(d);
  for (int i = 1; i < *n; i++) /* insertion sort, descending */
    for (int j = i; j > 0 && (*out)[j] > (*out)[j - 1]; j--) {
      int64_t tmp = (*out)[j];
      (*out)[j] = (*out)[j - 1], (*out)[j - 1] = tmp;
    }
  return EVO_STATUS_OK;
}

bool evo_checkpoint_exists(const char *dir) {
  int64_t *its;
  int n;
  if (list_checkpoints(dir, &its, &n)) return false;
  free(its);
  return n > 0;
}

static void prune(const evo_trainer *t) {
  int64_t *its;
  int n;
  if (list_checkpoints(t->out_dir, &its, &n)) return;
  char path[4300];
  for (int i = (int)t->keep_ckpt; i < n; i++) {
    if (!ckpt_path(path, sizeof path, t->out_dir, its[i], "trainer")) unlink(path); /* trainer first: uncommit */
    if (!ckpt_path(path, sizeof path, t->out_dir, its[i], "algo")) unlink(path);
  }
  free(its);
}

evo_status evo_checkpoint_save(evo_trainer *t) {
  char apath[4300], tpath[4300];
  evo_status st = ckpt_path(apath, sizeof apath, t->out_dir, t->s.iteration, "algo");
  if (!st) st = ckpt_path(tpath, sizeof tpath, t->out_dir, t->s.iteration, "trainer");
  if (!st) st = evo_algo_save(t->algo, apath);
  if (st) return st;
  double v[STATE_N];
  pack(&t->s, v);
  int64_t nstate = STATE_N, two = 2, one = 1, m;
  double *count, *mean, *m2;
  evo_evaluator_normalizer(&t->ev, &count, &mean, &m2, &m);
  evo_st_tensor ts[5] = {{"trainer.state", EVO_F64, 1, &nstate, v}, {"trainer.key", EVO_U32, 1, &two, t->root.w}};
  int k = 2;
  if (m > 0) {
    ts[k++] = (evo_st_tensor){"obs_norm.count", EVO_F64, 1, &one, count};
    ts[k++] = (evo_st_tensor){"obs_norm.mean", EVO_F64, 1, &m, mean};
    ts[k++] = (evo_st_tensor){"obs_norm.m2", EVO_F64, 1, &m, m2};
  }
  const char *meta[] = {"format", "evoc-trainer", "algo", t->algo_name, "task", t->task_name};
  if ((st = evo_st_write(tpath, ts, k, meta, 3))) return st;
  prune(t);
  return EVO_STATUS_OK;
}

/* The counters come back as int64 and steer the loop, the budgets and the metrics.jsonl truncation: a corrupt file
   must not turn NaN or 1e300 into one (undefined behaviour) or a negative length. */
static evo_status check_state(const char *path, const double *v, int64_t it) {
  static const char *const names[5] = {"iteration", "evaluations", "last_test_iter", "metrics_bytes", "wall_s"};
  for (int k = 0; k < 5; k++)
    if (!(v[k] >= 0 && v[k] <= 9007199254740992.0) || (k < 4 && v[k] != floor(v[k])))
      return evo_error(EVO_STATUS_FORMAT, "%s: trainer.state %s is %g (corrupt checkpoint?)", path, names[k], v[k]);
  if (v[0] != (double)it)
    return evo_error(EVO_STATUS_FORMAT, "%s: trainer.state says iteration %.0f but the file is for iteration %lld",
                     path, v[0], (long long)it);
  return EVO_STATUS_OK;
}

static evo_status read_exact(evo_st_reader *r, const char *name, evo_dtype dt, int64_t n, void *dst) {
  int i = evo_st_find(r, name);
  const evo_st_info *in = i >= 0 ? evo_st_info_at(r, i) : NULL;
  if (!in || in->dtype != dt || in->numel != n)
    return evo_error(EVO_STATUS_FORMAT, "%s: entry '%s' is missing or has the wrong type or size", evo_st_path(r),
                     name);
  return evo_st_read(r, i, dst, (size_t)n * evo_dtype_size(dt));
}

evo_status evo_checkpoint_load(evo_trainer *t) {
  int64_t *its;
  int n;
  evo_status st = list_checkpoints(t->out_dir, &its, &n);
  if (st) return st;
  if (n == 0) return evo_error(EVO_STATUS_NOT_FOUND, "%s/checkpoints has no checkpoint to resume from", t->out_dir);
  int64_t it = its[0];
  free(its);
  char apath[4300], tpath[4300];
  if ((st = ckpt_path(apath, sizeof apath, t->out_dir, it, "algo")) ||
      (st = ckpt_path(tpath, sizeof tpath, t->out_dir, it, "trainer")))
    return st;
  evo_st_reader *r;
  if ((st = evo_st_open(tpath, &r))) return st;
  const char *fmt = evo_st_metadata(r, "format"), *algo = evo_st_metadata(r, "algo");
  double v[STATE_N];
  evo_key key;
  if (!fmt || strcmp(fmt, "evoc-trainer"))
    st = evo_error(EVO_STATUS_FORMAT, "%s is not an evoc trainer checkpoint", tpath);
  else if (!algo || strcmp(algo, t->algo_name))
    st = evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s was written by algorithm '%s'; the config says '%s'", tpath,
                   algo ? algo : "?", t->algo_name);
  if (!st) st = read_exact(r, "trainer.state", EVO_F64, STATE_N, v);
  if (!st) st = check_state(tpath, v, it);
  if (!st) st = read_exact(r, "trainer.key", EVO_U32, 2, key.w);
  if (!st && (key.w[0] != t->root.w[0] || key.w[1] != t->root.w[1]))
    st = evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s was written with another seed than the config's %lld", tpath,
                   (long long)t->seed);
  double *count, *mean, *m2;
  int64_t m;
  evo_evaluator_normalizer(&t->ev, &count, &mean, &m2, &m);
  if (!st && m > 0) st = read_exact(r, "obs_norm.count", EVO_F64, 1, count);
  if (!st && m > 0) st = read_exact(r, "obs_norm.mean", EVO_F64, m, mean);
  if (!st && m > 0) st = read_exact(r, "obs_norm.m2", EVO_F64, m, m2);
  evo_st_close(r);
  if (!st) st = evo_algo_load(t->algo, apath);
  if (!st) unpack(v, &t->s);
  return st;
}
