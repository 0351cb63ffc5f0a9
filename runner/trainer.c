/* The ES loop: ask -> evaluate -> tell -> log -> test -> checkpoint, and the run folder files it leaves. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "evoc/run.h"
#include "trainer_impl.h"

evo_trainer_params evo_trainer_default_params(void) { return (evo_trainer_params){0}; }

const char *evo_trainer_stop_name(evo_trainer_stop s) {
  switch (s) {
  case EVO_TRAINER_RUNNING: return "running";
  case EVO_TRAINER_MAX_ITER: return "max_iter";
  case EVO_TRAINER_TARGET: return "target";
  case EVO_TRAINER_MAX_EVALS: return "max_evals";
  case EVO_TRAINER_MAX_SECONDS: return "max_seconds";
  case EVO_TRAINER_ALGO_STOP: return "algo_stop";
  case EVO_TRAINER_INTERRUPTED: return "interrupted";
  }
  return "?";
}

double evo_trainer_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void note(const evo_trainer *t, const char *msg) {
  if (t->p.note && t->rank == 0) t->p.note(msg, t->p.user); /* one copy of each note, from rank 0 */
}

void evo_trainer_free(evo_trainer *t) {
  if (!t) return;
  evo_algo_free(t->algo);
  evo_evaluator_free(&t->ev);
  evo_tensor_free(t->pop);
  if (t->host_be != t->be) evo_backend_free(t->host_be);
  evo_backend_free(t->be);
  free(t->fitness);
  free(t->bd);
  free(t->best_params);
  free(t->test_ret), free(t->norm_xchg);
  free(t->out_dir), free(t->resume_dir);
  evo_comm_free(t->own_comm);
  free(t);
}

evo_status evo_trainer_new(evo_config *cfg, const evo_trainer_params *p, evo_trainer **out) {
  *out = NULL;
  if (!cfg) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "trainer: NULL config");
  evo_trainer *t = calloc(1, sizeof *t);
  if (!t) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
  t->cfg = cfg;
  t->p = p ? *p : evo_trainer_default_params();
  t->s = (evo_trainer_state){.best_train = NAN, .best_test = NAN, .last_test = NAN, .best_objective = INFINITY};
  evo_status st = EVO_STATUS_OK;
  if (!(t->comm = t->p.comm)) st = evo_comm_local_new(&t->own_comm), t->comm = t->own_comm;
  if (!st) t->rank = evo_comm_rank(t->comm), t->ranks = evo_comm_size(t->comm);
  /* rank 0 writes the run folder; the others only read a resumed run's checkpoint */
  char **dir = t->rank == 0 ? &t->out_dir : t->p.resume ? &t->resume_dir : NULL;
  if (!st && t->p.out_dir && dir && !(*dir = strdup(t->p.out_dir)))
    st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "out of memory");
  if (!st) st = evo_trainer_setup(t);
  if (!st && !(t->best_params = malloc(sizeof(float) * (size_t)t->ev.D)))
    st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
  if (st) {
    evo_trainer_free(t);
    return st;
  }
  *out = t;
  return EVO_STATUS_OK;
}

int64_t evo_trainer_num_params(const evo_trainer *t) { return t->ev.D; }

/* Is a better than b in the run's direction (b NaN: anything finite is)? */
static bool better(const evo_trainer *t, double a, double b) {
  if (isnan(a)) return false;
  if (isnan(b)) return true;
  return t->maximize ? a > b : a < b;
}

/* Rank 0's side of evo_trainer_open_dir. */
static evo_status open_dir_writer(evo_trainer *t) {
  if (!t->out_dir) return EVO_STATUS_OK;
  evo_status st = evo_run_dir_prepare(t->out_dir);
  if (st) return st;
  char metrics[4200];
  if ((st = evo_run_path(metrics, sizeof metrics, t->out_dir, "metrics.jsonl"))) return st;
  if (t->p.resume) {
    if ((st = evo_checkpoint_load(t))) return st;
    if ((st = evo_run_truncate(metrics, t->s.metrics_bytes))) return st;
  } else if (evo_checkpoint_exists(t->out_dir) || evo_run_file_exists(metrics)) {
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s already holds a run; continue it with --resume %s or choose "
                     "another output folder", t->out_dir, t->out_dir);
  }
  return evo_run_write_config(t->out_dir, t->cfg);
}

/* The other ranks of a resumed run restore the same checkpoint (checkpoint.c reads t->out_dir). */
static evo_status open_dir_reader(evo_trainer *t) {
  if (!t->resume_dir) return EVO_STATUS_OK;
  t->out_dir = t->resume_dir;
  evo_status st = evo_checkpoint_load(t);
  t->out_dir = NULL;
  return st;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
  return h;
}

/* Every rank must run the same config from the same state: a config file or checkpoint that differs between hosts
   would let the ranks' algorithms drift apart silently. Compares the resolved config, the iteration and the
   algorithm's recommendation of every rank with rank 0's. */
static evo_status check_same_run(evo_trainer *t) {
  if (t->ranks == 1) return EVO_STATUS_OK;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  evo_status st = f ? evo_config_write(t->cfg, f) : evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
  if (f) fclose(f);
  if (!st) st = evo_algo_best(t->algo, t->best_params);
  uint64_t mine[3] = {fnv1a(0xcbf29ce484222325ULL, text ? text : "", len), (uint64_t)t->s.iteration,
                      fnv1a(0xcbf29ce484222325ULL, t->best_params, sizeof(float) * (size_t)t->ev.D)};
  free(text);
  uint64_t *all = calloc((size_t)t->ranks * 3, sizeof *all);
  if (!st && !all) st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
  if (all) memcpy(all + 3 * t->rank, mine, sizeof mine);
  if ((st = evo_comm_agree(t->comm, st)) == EVO_STATUS_OK) st = evo_comm_allgather(t->comm, all, t->ranks, sizeof mine);
  static const char *const what[3] = {"resolved config", "iteration", "algorithm state"};
  for (int r = 1; !st && r < t->ranks; r++)
    for (int k = 0; k < 3 && !st; k++)
      if (all[3 * r + k] != all[k])
        st = evo_error(EVO_STATUS_INVALID_ARGUMENT, "rank %d's %s differs from rank 0's: every rank must read the "
                       "same config (and, resuming, the same checkpoint); are the files different on different "
                       "hosts?", r, what[k]);
  free(all);
  return st;
}

evo_status evo_trainer_open_dir(evo_trainer *t) {
  if (t->dir_open) return EVO_STATUS_OK;
  evo_status st = evo_comm_agree(t->comm, t->rank == 0 ? open_dir_writer(t) : open_dir_reader(t));
  if (!st) st = check_same_run(t);
  if (!st) t->dir_open = true;
  return st;
}

/* Buffers for a population of pop: fitness (and descriptors) of every member, parameters of this rank's share. */
static evo_status ensure_pop(evo_trainer *t, int pop) {
  if (t->pop && t->pop_cap == pop) return EVO_STATUS_OK;
  int64_t b, e;
  evo_comm_slice(pop, t->rank, t->ranks, &b, &e);
  evo_tensor_free(t->pop);
  free(t->fitness);
  free(t->bd);
  t->bd = t->ev.bd_dim > 0 ? malloc(sizeof(float) * (size_t)pop * (size_t)t->ev.bd_dim) : NULL;
  int64_t shape[2] = {e - b > 0 ? e - b : 1, t->ev.D};
  /* On the device when the strategy samples there and the rollouts read it there: the population never crosses
     the bus. Otherwise host memory, which the sim uploads once per chunk. */
  evo_backend *dev = t->ev.direct ? NULL : evo_sim_device_backend(t->ev.sim);
  t->pop = evo_tensor_new(dev && evo_algo_samples_on_device(t->algo) ? dev : t->host_be, EVO_F32, 2, shape);
  t->fitness = malloc(sizeof(float) * (size_t)pop);
  t->pop_cap = pop;
  if (!t->pop || !t->fitness || (t->ev.bd_dim > 0 && !t->bd)) {
    t->pop_cap = 0;
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory for a population of %d", pop);
  }
  return EVO_STATUS_OK;
}

/* Mean return of params over n test episodes, each rank running its share; the returns are gathered and summed in
   episode order, so the score does not depend on the number of ranks. */
static evo_status test_params(evo_trainer *t, const float *params, int n, double *score) {
  if (n > t->test_cap) {
    free(t->test_ret);
    if (!(t->test_ret = malloc(sizeof(double) * (size_t)n))) {
      t->test_cap = 0;
      return evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory for %d test returns", n);
    }
    t->test_cap = n;
  }
  int64_t b, e;
  evo_comm_slice(n, t->rank, t->ranks, &b, &e);
  evo_status st = EVO_STATUS_OK;
  if (e > b) st = evo_evaluator_test_returns(&t->ev, params, b, (int)(e - b), n, t->test_key, t->test_ret + b);
  if ((st = evo_comm_agree(t->comm, st))) return st;
  if ((st = evo_comm_allgather(t->comm, t->test_ret, n, sizeof(double)))) return st;
  double sum = 0;
  for (int j = 0; j < n; j++) sum += t->test_ret[j];
  *score = sum / n;
  return EVO_STATUS_OK;
}

/* Tests the algorithm's recommendation; keeps best.safetensors when the score improves. */
static evo_status run_test(evo_trainer *t, double *score) {
  evo_status st = evo_algo_best(t->algo, t->best_params);
  if (!st) st = test_params(t, t->best_params, (int)t->n_evaluations, score);
  if (st) return st;
  t->s.last_test = *score;
  t->s.last_test_iter = t->s.iteration;
  if (t->is_objective && -*score < t->s.best_objective) t->s.best_objective = -*score;
  if (!better(t, *score, t->s.best_test)) return EVO_STATUS_OK;
  t->s.best_test = *score;
  if (!t->out_dir) return EVO_STATUS_OK;
  char path[4200];
  if ((st = evo_run_path(path, sizeof path, t->out_dir, "best.safetensors"))) return st;
  return evo_evaluator_save_params(&t->ev, t->best_params, path, t->s.iteration, *score);
}

static double round_ms(double s) { return floor(s * 1000.0 + 0.5) / 1000.0; }

/* cJSON prints doubles only to within an epsilon; these must read back exactly (eval reproduces test scores),
   so: the shortest of %.15g..%.17g that round-trips, and null for NaN/Inf as JSON has neither. */
static void add_num(cJSON *o, const char *key, double v) {
  char buf[40];
  if (!isfinite(v)) {
    cJSON_AddNullToObject(o, key);
    return;
  }
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  cJSON_AddRawToObject(o, key, buf);
}

static char *metrics_line(const evo_trainer *t, const evo_trainer_progress *pr, bool tested) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  evo_algo_stats as;
  evo_algo_stats_get(t->algo, &as);
  add_num(o, "iter", (double)pr->iteration);
  add_num(o, "evaluations", (double)pr->evaluations);
  add_num(o, "wall_s", round_ms(pr->wall_s));
  add_num(o, "best", pr->best);
  add_num(o, "mean", pr->mean);
  add_num(o, "min", pr->min);
  add_num(o, "std", pr->std);
  if (pr->nan_members) add_num(o, "nan_members", (double)pr->nan_members);
  if (isfinite(as.sigma)) add_num(o, "sigma", as.sigma);
  evo_algo_archive ar;
  if (evo_algo_archive_get(t->algo, &ar) == EVO_STATUS_OK) { /* quality diversity: how full and how good */
    add_num(o, "coverage", ar.coverage);
    add_num(o, "qd_score", ar.qd_score);
  }
  if (tested) add_num(o, "test", pr->test);
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return s;
}

static void gen_stats(evo_trainer *t, int pop, evo_trainer_progress *pr) {
  double sum = 0, sq = 0, mx = -INFINITY, mn = INFINITY;
  int64_t n = 0, nan = 0;
  for (int i = 0; i < pop; i++) {
    double f = t->fitness[i];
    if (!isfinite(f)) {
      nan++;
      continue;
    }
    n++, sum += f, sq += f * f;
    mx = f > mx ? f : mx, mn = f < mn ? f : mn;
  }
  double mean = n ? sum / (double)n : NAN, var = n ? sq / (double)n - mean * mean : NAN;
  pr->best = n ? (t->maximize ? mx : mn) : NAN;
  pr->mean = mean, pr->min = n ? mn : NAN, pr->std = n ? sqrt(var > 0 ? var : 0) : NAN;
  pr->nan_members = nan;
  if (better(t, pr->best, t->s.best_train)) t->s.best_train = pr->best;
  if (t->is_objective && n && -mx < t->s.best_objective) t->s.best_objective = -mx;
}

static void plot(evo_trainer *t) {
  if (!t->out_dir || !t->plot) return;
  if (!evo_run_have_gnuplot()) {
    if (!t->plot_noted) note(t, "gnuplot not found in PATH: no learning_curve.png (scripts/plot_metrics.py "
                             "plots metrics.jsonl)");
    t->plot_noted = true;
    return;
  }
  char title[256];
  snprintf(title, sizeof title, "%s / %s / %s (seed %lld)", t->task_name, t->policy_name, t->algo_name,
           (long long)t->seed);
  if (evo_run_plot(t->out_dir, title, t->is_objective) && !t->plot_noted) {
    char msg[600];
    snprintf(msg, sizeof msg, "no learning curve: %s", evo_last_error());
    note(t, msg);
    t->plot_noted = true;
  }
}

static evo_trainer_stop check_budgets(const evo_trainer *t) {
  evo_algo_stats as;
  evo_algo_stats_get(t->algo, &as);
  if (t->p.interrupt && *t->p.interrupt) return EVO_TRAINER_INTERRUPTED;
  if (t->is_objective && t->s.best_objective <= t->target_objective) return EVO_TRAINER_TARGET;
  if (t->has_target && !isnan(t->s.best_test) && !better(t, t->target_score, t->s.best_test))
    return EVO_TRAINER_TARGET;
  if (t->max_evals > 0 && t->s.evaluations >= t->max_evals) return EVO_TRAINER_MAX_EVALS;
  if (t->max_seconds > 0 && t->s.wall_s >= t->max_seconds) return EVO_TRAINER_MAX_SECONDS;
  if (as.stop) return EVO_TRAINER_ALGO_STOP;
  if (t->s.iteration >= t->max_iter) return EVO_TRAINER_MAX_ITER;
  return EVO_TRAINER_RUNNING;
}

/* Rank 0 decides (its clock and its interrupt flag) and every rank follows. */
static evo_status decide_stop(evo_trainer *t) {
  int32_t stop = (int32_t)check_budgets(t);
  evo_status st = evo_comm_broadcast(t->comm, &stop, sizeof stop, 0);
  t->stop = (evo_trainer_stop)stop;
  return st;
}

/* Distributed runs: every member's observation statistics of this generation, gathered and merged in member
   order, as one rank's evaluate merges them (so the normaliser does not depend on the number of ranks). */
static evo_status exchange_normalizer(evo_trainer *t, int pop, int64_t b, int64_t e) {
  if (t->ranks == 1 || t->ev.direct || !t->ev.normalize_obs) return EVO_STATUS_OK;
  const int64_t w = 1 + 2 * evo_sim_obs_size(t->ev.sim);
  if (pop > t->norm_cap) {
    free(t->norm_xchg);
    if (!(t->norm_xchg = malloc(sizeof(double) * (size_t)(w * pop)))) {
      t->norm_cap = 0;
      return evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
    }
    t->norm_cap = pop;
  }
  if (e > b) memcpy(t->norm_xchg + b * w, evo_sim_norm_members(t->ev.sim), sizeof(double) * (size_t)((e - b) * w));
  evo_status st = evo_comm_allgather(t->comm, t->norm_xchg, pop, sizeof(double) * (size_t)w);
  if (!st) evo_sim_norm_merge_members(t->ev.sim, pop, t->norm_xchg);
  return st;
}

/* One generation: this rank asks and evaluates its share, the ranks gather fitness (and descriptors), and every
   rank tells the algorithm the whole population. */
static evo_status evaluate_generation(evo_trainer *t, int pop) {
  int64_t b, e;
  evo_comm_slice(pop, t->rank, t->ranks, &b, &e);
  const int k = t->ev.bd_dim;
  evo_key key = evo_key_fold_in(t->train_key, (uint32_t)t->s.iteration);
  evo_status st = ensure_pop(t, pop);
  if (!st && e > b) st = evo_algo_ask(t->algo, (int)b, (int)e, t->pop);
  if (!st && e > b)
    st = evo_evaluator_population(&t->ev, t->pop, (int)(e - b), b, key, t->fitness + b,
                                  k > 0 ? t->bd + b * k : NULL);
  if ((st = evo_comm_agree(t->comm, st))) return st;
  if ((st = evo_comm_allgather(t->comm, t->fitness, pop, sizeof(float)))) return st;
  if (k > 0 && (st = evo_comm_allgather(t->comm, t->bd, pop, sizeof(float) * (size_t)k))) return st;
  if ((st = exchange_normalizer(t, pop, b, e))) return st;
  return k > 0 ? evo_algo_tell_bd(t->algo, t->fitness, t->bd, k) : evo_algo_tell(t->algo, t->fitness);
}

static evo_status iterate(evo_trainer *t, double wall0) {
  int pop = evo_algo_pop_size(t->algo);
  evo_status st = evaluate_generation(t, pop);
  if (st) return st;
  t->s.iteration++;
  t->s.evaluations += (int64_t)pop * t->ev.n_repeats;
  t->s.wall_s = wall0 + (evo_trainer_now() - t->t_start);
  evo_trainer_progress pr = {.iteration = t->s.iteration, .max_iter = t->max_iter, .evaluations = t->s.evaluations,
                             .wall_s = t->s.wall_s, .test = NAN};
  gen_stats(t, pop, &pr);
  if (pr.nan_members > 0 && !t->nan_noted) { /* once: the counts follow in metrics.jsonl */
    char msg[200];
    snprintf(msg, sizeof msg, "iteration %lld: %lld of %d members had non-finite parameters, actions or returns "
             "(ranked worst; see nan_members in metrics.jsonl)", (long long)t->s.iteration, (long long)pr.nan_members,
             pop);
    note(t, msg);
    t->nan_noted = true;
  }
  if ((st = decide_stop(t))) return st;
  bool last = t->stop != EVO_TRAINER_RUNNING && t->stop != EVO_TRAINER_INTERRUPTED;
  bool tested = t->s.iteration % t->test_interval == 0 || last;
  pr.tested = tested;
  if (tested) {
    if ((st = run_test(t, &pr.test))) return st;
    if (t->stop == EVO_TRAINER_RUNNING) {
      if ((st = decide_stop(t))) return st;
      last = t->stop != EVO_TRAINER_RUNNING && t->stop != EVO_TRAINER_INTERRUPTED;
    }
  }
  pr.best_test = t->s.best_test;
  bool logged = t->s.iteration % t->log_interval == 0 || tested || last;
  char *line = logged ? metrics_line(t, &pr, tested) : NULL;
  if (logged && !line) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
  if (line && t->out_dir) st = evo_run_append_line(t->out_dir, "metrics.jsonl", line, &t->s.metrics_bytes);
  pr.metrics_line = line;
  if (!st && t->out_dir && (t->s.iteration % t->ckpt_interval == 0 || t->stop != EVO_TRAINER_RUNNING))
    st = evo_checkpoint_save(t);
  if (!st && tested) plot(t);
  if (!st && t->p.progress && t->rank == 0) t->p.progress(&pr, t->p.user);
  cJSON_free(line);
  return evo_comm_agree(t->comm, st); /* rank 0's writes can fail: nobody goes on alone */
}

static evo_status write_summary(evo_trainer *t) {
  evo_trainer_summary s;
  evo_trainer_summary_get(t, &s);
  cJSON *o = cJSON_CreateObject();
  if (!o) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
  cJSON_AddStringToObject(o, "task", s.task);
  cJSON_AddStringToObject(o, "policy", s.policy);
  cJSON_AddStringToObject(o, "algo", s.algo);
  cJSON_AddStringToObject(o, "device", s.device);
  cJSON_AddStringToObject(o, "device_note", s.device_note);
  cJSON_AddStringToObject(o, "comm", s.comm);
  add_num(o, "ranks", (double)s.ranks);
  cJSON_AddBoolToObject(o, "population_on_device", s.population_on_device);
  add_num(o, "seed", (double)s.seed);
  add_num(o, "num_params", (double)t->ev.D);
  add_num(o, "iterations", (double)s.iterations);
  add_num(o, "evaluations", (double)s.evaluations);
  add_num(o, "wall_s", round_ms(s.wall_s));
  add_num(o, "best_train_fitness", s.best_train_fitness);
  add_num(o, "test_score", s.test_score);
  add_num(o, "best_test_score", s.best_test_score);
  cJSON_AddStringToObject(o, "stopped_because", evo_trainer_stop_name(s.stopped_because));
  if (s.is_objective) {
    add_num(o, "best_objective", s.best_objective);
    add_num(o, "target_objective", t->target_objective);
    cJSON_AddBoolToObject(o, "reached_target", s.reached_target);
  }
  char *text = cJSON_Print(o);
  cJSON_Delete(o);
  if (!text) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
  evo_status st = evo_run_write_text(t->out_dir, "summary.json", text);
  cJSON_free(text);
  return st;
}

evo_status evo_trainer_run(evo_trainer *t) {
  evo_status st = evo_trainer_open_dir(t);
  if (st) return st;
  t->t_start = evo_trainer_now();
  double wall0 = t->s.wall_s;
  t->stop = EVO_TRAINER_RUNNING;
  /* A resumed run may already be past a budget (or asked for fewer iterations): nothing to iterate then. */
  if (t->s.iteration > 0) st = decide_stop(t);
  while (!st && t->stop == EVO_TRAINER_RUNNING) st = iterate(t, wall0);
  if (st) return st;
  /* Resumed with nothing left to do: make sure the final recommendation has been tested. */
  if (t->stop != EVO_TRAINER_INTERRUPTED && t->s.last_test_iter != t->s.iteration) {
    double score;
    if ((st = run_test(t, &score))) return st;
    if (t->out_dir) st = evo_checkpoint_save(t);
    if ((st = evo_comm_agree(t->comm, st))) return st;
  }
  if (t->out_dir) st = write_summary(t);
  if (!st && t->out_dir) plot(t);
  return evo_comm_agree(t->comm, st);
}

void evo_trainer_summary_get(const evo_trainer *t, evo_trainer_summary *out) {
  *out = (evo_trainer_summary){.task = t->task_name, .policy = t->policy_name, .algo = t->algo_name,
                               .device = t->device, .device_note = t->device_note,
                               .comm = evo_comm_name(t->comm), .ranks = t->ranks,
                               .population_on_device = t->pop && !evo_backend_is_host(evo_tensor_backend(t->pop)),
                               .seed = t->seed, .iterations = t->s.iteration, .evaluations = t->s.evaluations,
                               .wall_s = t->s.wall_s, .best_train_fitness = t->s.best_train,
                               .test_score = t->s.last_test, .best_test_score = t->s.best_test,
                               .stopped_because = t->stop, .is_objective = t->is_objective,
                               .best_objective = t->s.best_objective,
                               .reached_target = t->is_objective && t->s.best_objective <= t->target_objective};
}

evo_status evo_trainer_eval(evo_trainer *t, const char *params_path, int n_episodes, double *score) {
  evo_status st = evo_evaluator_load_params(&t->ev, t->best_params, params_path);
  if (st) return st;
  return test_params(t, t->best_params, n_episodes > 0 ? n_episodes : (int)t->n_evaluations, score);
}
