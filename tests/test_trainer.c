/* The trainer as a library: stop conditions (max_iter, target, budgets, interrupt), the algo section mapped onto
   the algorithm's option table, defaults recorded in the resolved config, direct and policy evaluation, the summary,
   the progress callback, and the run-folder helpers (atomic writes, fsync'd appends, truncation, names). */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "evoc/algo.h"
#include "evoc/config.h"
#include "evoc/run.h"
#include "evoc/trainer.h"
#include "safetensors.h"

static evo_config *parse(const char *text) {
  evo_config *c = NULL;
  cr_assert_eq(evo_config_parse(text, "t.yaml", &c), EVO_STATUS_OK, "%s", evo_last_error());
  return c;
}

static evo_trainer *trainer(evo_config *c, const evo_trainer_params *p) {
  evo_trainer *t = NULL;
  evo_status st = evo_trainer_new(c, p, &t);
  cr_assert_eq(st, EVO_STATUS_OK, "%s", evo_last_error());
  return t;
}

static char *written(const evo_config *c) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  cr_assert_eq(evo_config_write(c, f), EVO_STATUS_OK);
  fclose(f);
  return buf;
}

#define SPHERE "seed: 3\ntask: {name: functions, function: sphere, dim: 4}\n"

Test(trainer, sphere_reaches_its_target_and_stops) {
  evo_config *c = parse(SPHERE "algo: {name: pgpe, pop_size: 16, init_stdev: 1, x0: 2, optimizer: 1, center_lr: 0.1,"
                               " stdev_lr: 0.2}\ntrainer: {max_iter: 2000, test_interval: 25, n_evaluations: 1,"
                               " target_objective: 1.0e-4}\n");
  evo_trainer *t = trainer(c, NULL);
  cr_assert_eq(evo_trainer_num_params(t), 4);
  cr_assert_eq(evo_trainer_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_summary s;
  evo_trainer_summary_get(t, &s);
  cr_assert_eq(s.stopped_because, EVO_TRAINER_TARGET);
  cr_assert(s.is_objective && s.reached_target);
  cr_assert_leq(s.best_objective, 1e-4);
  cr_assert_lt(s.iterations, 2000);
  cr_assert_eq(s.evaluations, 16 * s.iterations);
  cr_assert_str_eq(s.task, "functions");
  cr_assert_str_eq(s.policy, "direct");
  cr_assert_str_eq(s.algo, "pgpe");
  /* the objective is -fitness; the best objective is at least as good as any test */
  cr_assert_leq(s.best_objective, -s.best_test_score);
  cr_assert_geq(s.best_test_score, s.test_score);
  evo_trainer_free(t);
  evo_config_free(c);
}

typedef struct {
  int calls, tested, logged;
  int64_t last_iter;
  volatile sig_atomic_t *flag;
  int raise_at;
} progress_log;

static void on_progress(const evo_trainer_progress *p, void *user) {
  progress_log *l = user;
  l->calls++;
  cr_assert_eq(p->iteration, l->last_iter + 1);
  l->last_iter = p->iteration;
  l->tested += p->tested;
  cr_assert_eq(p->tested, !isnan(p->test));
  l->logged += p->metrics_line != NULL;
  if (p->metrics_line) cr_assert(strstr(p->metrics_line, "\"iter\":"), "%s", p->metrics_line);
  if (l->flag && p->iteration == l->raise_at) *l->flag = 1;
}

Test(trainer, intervals_and_progress) {
  evo_config *c = parse(SPHERE "algo: {name: openes, pop_size: 8, x0: 1}\n"
                               "trainer: {max_iter: 25, log_interval: 5, test_interval: 10, n_evaluations: 2}\n");
  progress_log l = {0};
  evo_trainer_params p = evo_trainer_default_params();
  p.progress = on_progress;
  p.user = &l;
  evo_trainer *t = trainer(c, &p);
  cr_assert_eq(evo_trainer_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(l.calls, 25);
  cr_assert_eq(l.tested, 3);  /* 10, 20 and the last (25) */
  cr_assert_eq(l.logged, 5);  /* 5, 10, 15, 20, 25 */
  evo_trainer_summary s;
  evo_trainer_summary_get(t, &s);
  cr_assert_eq(s.stopped_because, EVO_TRAINER_MAX_ITER);
  cr_assert_eq(s.iterations, 25);
  evo_trainer_free(t);
  evo_config_free(c);
}

Test(trainer, interrupt_flag_stops_without_a_final_test) {
  evo_config *c = parse(SPHERE "algo: {name: pgpe, pop_size: 8}\ntrainer: {max_iter: 1000, test_interval: 100}\n");
  volatile sig_atomic_t flag = 0;
  progress_log l = {.flag = &flag, .raise_at = 7};
  evo_trainer_params p = evo_trainer_default_params();
  p.progress = on_progress;
  p.user = &l;
  p.interrupt = &flag;
  evo_trainer *t = trainer(c, &p);
  cr_assert_eq(evo_trainer_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_summary s;
  evo_trainer_summary_get(t, &s);
  cr_assert_eq(s.stopped_because, EVO_TRAINER_INTERRUPTED);
  cr_assert_eq(s.iterations, 8); /* the flag is polled after each iteration */
  cr_assert_eq(l.tested, 0);
  cr_assert(isnan(s.test_score));
  evo_trainer_free(t);
  evo_config_free(c);
}

Test(trainer, budgets_and_target_score) {
  evo_config *c = parse(SPHERE "algo: {name: pgpe, pop_size: 10}\ntrainer: {max_iter: 1000, max_evals: 95}\n");
  evo_trainer *t = trainer(c, NULL);
  cr_assert_eq(evo_trainer_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_summary s;
  evo_trainer_summary_get(t, &s);
  cr_assert_eq(s.stopped_because, EVO_TRAINER_MAX_EVALS);
  cr_assert_eq(s.evaluations, 100);
  evo_trainer_free(t);
  evo_config_free(c);
  /* target_score compares test scores (here -f, so >= -1000 holds at the first test) */
  c = parse(SPHERE "algo: {name: pgpe, pop_size: 10}\ntrainer: {max_iter: 1000, test_interval: 3,"
                   " target_score: -1000, n_evaluations: 1}\n");
  t = trainer(c, NULL);
  cr_assert_eq(evo_trainer_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_summary_get(t, &s);
  cr_assert_eq(s.stopped_because, EVO_TRAINER_TARGET);
  cr_assert_eq(s.iterations, 3);
  evo_trainer_free(t);
  evo_config_free(c);
  c = parse(SPHERE "algo: {name: pgpe, pop_size: 10, x0: 1}\ntrainer: {max_iter: 100000000, max_seconds: 0.2}\n");
  t = trainer(c, NULL);
  cr_assert_eq(evo_trainer_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_summary_get(t, &s);
  cr_assert_eq(s.stopped_because, EVO_TRAINER_MAX_SECONDS);
  cr_assert_geq(s.wall_s, 0.2);
  evo_trainer_free(t);
  evo_config_free(c);
}

Test(trainer, algo_options_and_defaults_are_recorded) {
  evo_config *c = parse(SPHERE "algo: {name: pgpe, center_lr: 0.07}\n");
  evo_trainer *t = trainer(c, NULL);
  char *text = written(c);
  /* every option of the table with its value, the chosen population, and the trainer's defaults */
  const char *want[] = {"center_lr: 0.07", "stdev_lr: 0.1", "max_speed: 0.15", "pop_size: 16", "max_iter: 1000",
                        "n_repeats: 1", "name: direct", "device: auto", "target_objective: 1e-08"};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) cr_assert(strstr(text, want[i]), "no '%s' in:\n%s", want[i], text);
  free(text);
  evo_trainer_free(t);
  evo_config_free(c);
}

/* Runs algo (a flow map's inside) for 30 iterations on the sphere; the summary and the recorded config. */
static evo_trainer_summary run_sphere(const char *algo, char **text) {
  char cfg[512];
  snprintf(cfg, sizeof cfg, SPHERE "algo: {name: %s, x0: 1}\ntrainer: {max_iter: 30, test_interval: 10}\n", algo);
  evo_config *c = parse(cfg);
  evo_trainer *t = trainer(c, NULL);
  cr_assert_eq(evo_trainer_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_summary s;
  evo_trainer_summary_get(t, &s);
  *text = written(c);
  evo_trainer_free(t);
  evo_config_free(c);
  return s;
}

/* Options with named values take the name or the number alike (same run, same bits), and a default is recorded
   by name. */
Test(trainer, named_option_values_equal_their_numbers) {
  const char *pairs[][2] = {
      {"pgpe, optimizer: adam", "pgpe, optimizer: 1"},
      {"pgpe, fitness_shaping: z_score", "pgpe, fitness_shaping: 1"},
      {"openes, fitness_shaping: z_score", "openes, fitness_shaping: 1"},
      {"cmaes, active: false, restarts: ipop", "cmaes, active: 0, restarts: 1"},
      {"simple_ga, elitism: true", "simple_ga, elitism: 1"},
      {"ars, version: v2", "ars, version: 2"},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
    char *ta, *tb;
    evo_trainer_summary a = run_sphere(pairs[i][0], &ta), b = run_sphere(pairs[i][1], &tb);
    cr_assert_eq(a.best_objective, b.best_objective, "%s: %.17g vs %.17g", pairs[i][0], a.best_objective,
                 b.best_objective);
    cr_assert_eq(a.test_score, b.test_score, "%s", pairs[i][0]);
    free(ta), free(tb);
  }
  char *text;
  run_sphere("pgpe, fitness_shaping: z_score", &text);
  cr_assert(strstr(text, "optimizer: clipup") && strstr(text, "fitness_shaping: z_score"), "%s", text);
  free(text);
  run_sphere("cmaes", &text);
  cr_assert(strstr(text, "active: true") && strstr(text, "restarts: none"), "%s", text);
  free(text);
  /* the option changes the run: z-scores are not the centered ranks */
  char *tc;
  evo_trainer_summary z = run_sphere("pgpe, fitness_shaping: z_score", &text),
                      r = run_sphere("pgpe, fitness_shaping: centered_ranks", &tc);
  cr_assert_neq(z.best_objective, r.best_objective);
  free(text), free(tc);
}

static void new_fails(const char *text, const char *msg) {
  evo_config *c = parse(text);
  evo_trainer *t = (evo_trainer *)1;
  cr_assert_neq(evo_trainer_new(c, NULL, &t), EVO_STATUS_OK, "accepted:\n%s", text);
  cr_assert_null(t);
  cr_assert(strstr(evo_last_error(), msg), "expected '%s', got '%s'", msg, evo_last_error());
  evo_config_free(c);
}

Test(trainer, config_errors) {
  new_fails(SPHERE "algo: {name: pgpe, centre_lr: 1}\n", "t.yaml:3:20: unknown key 'centre_lr' in algo (did you mean "
                                                         "'center_lr'?)");
  new_fails(SPHERE "algo: {name: pgpe, x0: [1, 2]}\n", "algo.x0 must be a number or a list of 4 numbers");
  new_fails(SPHERE "algo: {name: pgpe, x0: policy_init}\n", "policy_init needs a policy");
  new_fails(SPHERE "algo: {pop_size: 4}\n", "missing required key algo.name");
  new_fails("algo: {name: pgpe}\n", "missing required key task");
  new_fails(SPHERE "algo: {name: pgpe}\npolicy: {name: direct, hidden: [3]}\n", "unknown key 'hidden' in policy");
  new_fails(SPHERE "algo: {name: pgpe}\ntrainer: {normalize_obs: true}\n", "normalize_obs needs a policy");
  new_fails(SPHERE "algo: {name: pgpe}\ndevice: gpu\n", "t.yaml:4:9: device must be one of");
  new_fails(SPHERE "algo: {name: pgpe, optimizer: adm}\n", "t.yaml:3:31: algo.optimizer must be one of 'clipup', "
                                                           "'adam', got 'adm' (did you mean 'adam'?)");
  new_fails(SPHERE "algo: {name: cmaes, active: maybe}\n",
            "algo.active must be a boolean (true/false, yes/no, on/off), got 'maybe'");
  new_fails(SPHERE "algo: {name: pgpe, optimizer: 2}\n", "algo.optimizer must be an integer in [0, 1], got '2'");
  new_fails(SPHERE "algo: {name: pgpe, optimizer: 0.5}\n", "must be an integer in [0, 1], got '0.5'");
  new_fails(SPHERE "algo: {name: pgpe}\ntrainer: {target_objective: -1}\n", "trainer.target_objective must be");
  new_fails("task: {name: cartpole_balance}\nalgo: {name: pgpe}\ntrainer: {target_objective: 1}\n",
            "unknown key 'target_objective' in trainer");
  new_fails("task: {name: cartpole_balance}\npolicy: {name: direct}\nalgo: {name: pgpe}\n",
            "policy direct needs a task with continuous actions");
}

Test(trainer, policy_task_with_policy_init_and_eval) {
  evo_config *c = parse("seed: 1\ntask: {name: cartpole_balance, max_steps: 30}\npolicy: {name: mlp, hidden: [4]}\n"
                        "algo: {name: pgpe, pop_size: 6, x0: policy_init}\n"
                        "trainer: {max_iter: 3, test_interval: 3, n_evaluations: 4, n_repeats: 2}\n");
  evo_trainer *t = trainer(c, NULL);
  cr_assert_eq(evo_trainer_num_params(t), 4 * 4 + 4 + 4 * 2 + 2);
  cr_assert_eq(evo_trainer_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_summary s;
  evo_trainer_summary_get(t, &s);
  cr_assert_str_eq(s.policy, "mlp");
  cr_assert(!s.is_objective);
  cr_assert_eq(s.evaluations, 3 * 6 * 2);
  cr_assert(s.test_score >= 1 && s.test_score <= 30, "score %g", s.test_score);
  cr_assert_eq(evo_trainer_eval(t, "/nonexistent/best.safetensors", 2, &(double){0}), EVO_STATUS_IO);
  cr_assert(strstr(evo_last_error(), "/nonexistent/best.safetensors"), "%s", evo_last_error());
  evo_trainer_free(t);
  evo_config_free(c);
}

static void archive_progress(const evo_trainer_progress *p, void *user) {
  int *seen = user;
  if (p->metrics_line && strstr(p->metrics_line, "\"coverage\":") && strstr(p->metrics_line, "\"qd_score\":"))
    (*seen)++;
}

Test(trainer, map_elites_gets_descriptors_from_the_task) {
  if (!evo_algo_find("map_elites")) cr_skip_test("map_elites is not built in");
  evo_config *c = parse(SPHERE "algo: {name: map_elites, pop_size: 16, init_stdev: 0.3, bd_dim: 2, cells_per_dim: 5,"
                               " bd_lo: -2, bd_hi: 2}\ntrainer: {max_iter: 10, log_interval: 5, n_evaluations: 1}\n");
  int seen = 0;
  evo_trainer_params p = evo_trainer_default_params();
  p.progress = archive_progress;
  p.user = &seen;
  evo_trainer *t = trainer(c, &p);
  cr_assert_eq(evo_trainer_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(seen, 2);
  evo_trainer_free(t);
  evo_config_free(c);
  new_fails(SPHERE "algo: {name: map_elites, bd_dim: 3}\n", "provides 2");
  new_fails("task: {name: cartpole_swingup}\nalgo: {name: map_elites}\n", "a device task");
}

/* Found by tests/fuzz/fuzz_checkpoint: the trainer file's counters were cast to int64 unchecked, so a corrupt
   checkpoint (NaN, 1e300, negative) meant undefined behaviour and a nonsense iteration, budget or metrics length. */
static void resume_fails(const char *dir, double iteration, const char *msg) {
  char tpath[300];
  snprintf(tpath, sizeof tpath, "%s/checkpoints/iter_000000002.trainer.safetensors", dir);
  evo_st_reader *r;
  cr_assert_eq(evo_st_open(tpath, &r), EVO_STATUS_OK, "%s", evo_last_error());
  double v[9];
  uint32_t key[2];
  cr_assert_eq(evo_st_read(r, evo_st_find(r, "trainer.state"), v, sizeof v), EVO_STATUS_OK);
  cr_assert_eq(evo_st_read(r, evo_st_find(r, "trainer.key"), key, sizeof key), EVO_STATUS_OK);
  evo_st_close(r);
  v[0] = iteration;
  int64_t nine = 9, two = 2;
  evo_st_tensor ts[2] = {{"trainer.state", EVO_F64, 1, &nine, v}, {"trainer.key", EVO_U32, 1, &two, key}};
  const char *meta[] = {"format", "evoc-trainer", "algo", "pgpe", "task", "functions"};
  cr_assert_eq(evo_st_write(tpath, ts, 2, meta, 3), EVO_STATUS_OK, "%s", evo_last_error());
  evo_config *c = parse(SPHERE "algo: {name: pgpe, pop_size: 8}\ntrainer: {max_iter: 4, plot: false}\n");
  evo_trainer_params p = evo_trainer_default_params();
  p.out_dir = dir;
  p.resume = true;
  evo_trainer *t = trainer(c, &p);
  cr_assert_eq(evo_trainer_open_dir(t), EVO_STATUS_FORMAT, "%s", evo_last_error());
  char want[512];
  snprintf(want, sizeof want, "%s: %s", tpath, msg);
  cr_assert_str_eq(evo_last_error(), want);
  evo_trainer_free(t);
  evo_config_free(c);
}

Test(trainer, corrupt_checkpoint_counters_are_refused) {
  char dir[] = "/tmp/evoc_ckpt_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  evo_config *c = parse(SPHERE "algo: {name: pgpe, pop_size: 8}\ntrainer: {max_iter: 2, plot: false}\n");
  evo_trainer_params p = evo_trainer_default_params();
  p.out_dir = dir;
  evo_trainer *t = trainer(c, &p);
  cr_assert_eq(evo_trainer_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_free(t);
  evo_config_free(c);
  resume_fails(dir, NAN, "trainer.state iteration is nan (corrupt checkpoint?)");
  resume_fails(dir, 1e300, "trainer.state iteration is 1e+300 (corrupt checkpoint?)");
  resume_fails(dir, -2, "trainer.state iteration is -2 (corrupt checkpoint?)");
  resume_fails(dir, 2.5, "trainer.state iteration is 2.5 (corrupt checkpoint?)");
  resume_fails(dir, 7, "trainer.state says iteration 7 but the file is for iteration 2");
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

/* ---------------------------------------------------------------- run folder helpers */

Test(run_dir, atomic_write_append_truncate) {
  char dir[] = "/tmp/evoc_run_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char sub[128], path[256];
  snprintf(sub, sizeof sub, "%s/a/b", dir);
  cr_assert_eq(evo_run_dir_prepare(sub), EVO_STATUS_OK, "%s", evo_last_error());
  snprintf(path, sizeof path, "%s/checkpoints", sub);
  cr_assert(evo_run_file_exists(path));
  snprintf(path, sizeof path, "%s/f.txt", sub);
  cr_assert_eq(evo_run_file_size(path), -1);
  cr_assert_eq(evo_run_write_atomic(path, "hello", 5), EVO_STATUS_OK);
  cr_assert_eq(evo_run_write_atomic(path, "hi", 2), EVO_STATUS_OK);
  cr_assert_eq(evo_run_file_size(path), 2);
  cr_assert_eq(evo_run_append(path, "\nline\n"), EVO_STATUS_OK);
  cr_assert_eq(evo_run_file_size(path), 8);
  cr_assert_eq(evo_run_truncate(path, 3), EVO_STATUS_OK);
  cr_assert_eq(evo_run_file_size(path), 3);
  cr_assert_eq(evo_run_truncate(path, 10), EVO_STATUS_FORMAT); /* a checkpoint expecting more than is there */
  /* no temp files left behind */
  char cmd[300];
  snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s | grep tmp)\"", sub);
  cr_assert_eq(system(cmd), 0);
  /* a folder under a regular file cannot be made */
  snprintf(path, sizeof path, "%s/f.txt/run", sub);
  cr_assert_eq(evo_run_dir_prepare(path), EVO_STATUS_IO);
  cr_assert(strstr(evo_last_error(), "f.txt"), "%s", evo_last_error());
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

Test(run_dir, default_name) {
  char buf[256];
  cr_assert_eq(evo_run_default_dir("configs/quick_pgpe.yaml", buf, sizeof buf), EVO_STATUS_OK);
  cr_assert_eq(strncmp(buf, "runs/quick_pgpe-", 16), 0, "%s", buf);
  cr_assert_eq(strlen(buf), strlen("runs/quick_pgpe-20240101-120000"), "%s", buf);
  cr_assert_eq(evo_run_default_dir("x", buf, 8), EVO_STATUS_INVALID_ARGUMENT);
}
