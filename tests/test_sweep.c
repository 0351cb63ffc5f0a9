/* Sweeps: the file's grid expanded into runs (order, names, overrides, each run's config), its errors with
   file:line:col, and `evoc sweep` end to end: parallel jobs, results.csv and sweep.png, skipping finished runs, resuming an
   interrupted one bit-identically, one run per --index (Slurm arrays), a sweep of gradient training, and a bad
   run refused before any starts. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <time.h>
#include "gradtrain_test_util.h"
#include "cli_test_util.h"
#include "evoc/backend.h"
#include "evoc/run.h"
#include "evoc/sweep.h"

#define CFG EVOC_CONFIGS_DIR

TestSuite(sweep, .init = setup, .fini = teardown, .timeout = 120);

static evo_status load(const char *text, evo_sweep **s) {
  write_file("base.yaml", "seed: 0\ntask: {name: functions, function: sphere, dim: 3}\n"
                          "algo: {name: pgpe, pop_size: 8}\ntrainer: {max_iter: 5}\n");
  write_file("s.yaml", text);
  char path[400];
  snprintf(path, sizeof path, "%s/s.yaml", tmp);
  return evo_sweep_load(path, s);
}

Test(sweep, grid_expands_first_key_slowest) {
  evo_sweep *s;
  cr_assert_eq(load("base: base.yaml\nset: {trainer.max_iter: 7}\n"
                    "grid:\n  seed: [1, 2]\n  algo.center_lr: [0.1, 0.2, 0.3]\n  policy.hidden: [[8, 8]]\n", &s),
               EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_sweep_count(s), 6);
  cr_assert_str_eq(evo_sweep_name(s), "s");
  cr_assert(strstr(evo_sweep_base(s), "/base.yaml") && !strncmp(evo_sweep_base(s), tmp, strlen(tmp)),
            "base %s not beside the sweep file", evo_sweep_base(s));
  cr_assert_eq(evo_sweep_grid_keys(s), 3);
  cr_assert_str_eq(evo_sweep_grid_key(s, 1), "algo.center_lr");
  cr_assert_str_eq(evo_sweep_run_name(s, 0), "000-seed=1,center_lr=0.1,hidden=8x8");
  cr_assert_str_eq(evo_sweep_run_name(s, 4), "004-seed=2,center_lr=0.2,hidden=8x8");
  const char *sets[8];
  cr_assert_eq(evo_sweep_run_sets(s, 5, sets, 8), 4);
  cr_assert_str_eq(sets[0], "trainer.max_iter=7");
  cr_assert_str_eq(sets[1], "seed=2");
  cr_assert_str_eq(sets[2], "algo.center_lr=0.3");
  cr_assert_str_eq(sets[3], "policy.hidden=[8, 8]");
  cr_assert_str_eq(evo_sweep_run_value(s, 3, 0), "2");
  cr_assert_str_eq(evo_sweep_run_value(s, 3, 1), "0.1");
  /* run 5's config: the base with its overrides */
  evo_config *cfg;
  cr_assert_eq(evo_sweep_config(s, 5, &cfg), EVO_STATUS_OK, "%s", evo_last_error());
  evo_cfg *root = evo_config_root(cfg);
  int64_t seed, iters;
  double lr;
  cr_assert_eq(evo_cfg_int(root, "seed", 0, 0, 100, &seed), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_int(evo_cfg_get(root, "trainer"), "max_iter", 0, 0, 100, &iters), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_double(evo_cfg_get(root, "algo"), "center_lr", 0, 0, 1, &lr), EVO_STATUS_OK);
  cr_assert(seed == 2 && iters == 7 && lr == 0.3, "seed %lld max_iter %lld lr %g", (long long)seed,
            (long long)iters, lr);
  cr_assert_eq(evo_cfg_list_size(evo_cfg_get(evo_cfg_get(root, "policy"), "hidden")), 2);
  evo_config_free(cfg);
  cr_assert_eq(evo_sweep_config(s, 6, &cfg), EVO_STATUS_INVALID_ARGUMENT);
  evo_sweep_free(s);
  /* no grid: one run of the base */
  cr_assert_eq(load("base: base.yaml\nname: solo\n", &s), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_sweep_count(s), 1);
  cr_assert_str_eq(evo_sweep_name(s), "solo");
  cr_assert_str_eq(evo_sweep_run_name(s, 0), "000");
  evo_sweep_free(s);
}

static void load_fails(const char *text, evo_status want, const char *msg) {
  evo_sweep *s = NULL;
  evo_status st = load(text, &s);
  cr_assert_eq(st, want, "'%s' gave %s (%s)", text, evo_status_str(st), evo_last_error());
  cr_assert_null(s);
  cr_assert(strstr(evo_last_error(), msg), "'%s': message '%s' lacks '%s'", text, evo_last_error(), msg);
}

Test(sweep, bad_files_are_reported_where_they_go_wrong) {
  load_fails("grid: {seed: [1]}\n", EVO_STATUS_NOT_FOUND, "s.yaml:1:1: missing required key base");
  load_fails("base: nothere.yaml\n", EVO_STATUS_NOT_FOUND, "s.yaml:1:7: base config");
  load_fails("base: base.yaml\ngird: {seed: [1]}\n", EVO_STATUS_INVALID_ARGUMENT, "did you mean 'grid'");
  load_fails("base: base.yaml\ngrid: {seed: 3}\n", EVO_STATUS_INVALID_ARGUMENT, "s.yaml:2:14: grid.seed must be a non-empty list");
  load_fails("base: base.yaml\ngrid: {seed: []}\n", EVO_STATUS_INVALID_ARGUMENT, "grid.seed must be a non-empty list");
  load_fails("base: base.yaml\ngrid: {seed: [{a: 1}]}\n", EVO_STATUS_INVALID_ARGUMENT,
             "s.yaml:2:15: a sweep value must be");
  load_fails("base: base.yaml\ngrid: [seed]\n", EVO_STATUS_INVALID_ARGUMENT, "grid must be a map");
  load_fails("base: base.yaml\nset: [1]\n", EVO_STATUS_INVALID_ARGUMENT, "set must be a map");
  load_fails("base: base.yaml\ngrid:\n  a: [1,2,3,4,5,6,7,8,9,10]\n  b: [1,2,3,4,5,6,7,8,9,10]\n"
             "  c: [1,2,3,4,5,6,7,8,9,10]\n  d: [1,2,3,4,5,6,7,8,9,10]\n  e: [1,2,3,4,5,6,7,8,9,10]\n"
             "  f: [1,2]\n", EVO_STATUS_INVALID_ARGUMENT, "more than 100000 runs");
  load_fails("- 1\n", EVO_STATUS_FORMAT, "s.yaml:1:1: the top level must be a map");
}

/* ---------------------------------------------------------------- evoc sweep */

static int csv_rows(const char *dir, const char *state) {
  char path[600], buf[1 << 15];
  snprintf(path, sizeof path, "%s/%s/results.csv", tmp, dir);
  slurp(path, buf, sizeof buf);
  int n = 0;
  for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) n += strstr(line, state) != NULL;
  return n;
}

static const char quick[] = "base: " CFG "/quick_pgpe.yaml\nset: {trainer.max_iter: 20, trainer.test_interval: 10, "
                            "trainer.checkpoint_interval: 10, trainer.target_objective: 0}\n"
                            "grid:\n  seed: [0, 1]\n  algo.center_lr: [0.05, 0.2]\n";

Test(sweep, runs_in_parallel_then_skips_what_is_finished) {
  write_file("q.yaml", quick);
  int rc = evoc("sweep q.yaml --out sw --jobs 2");
  cr_assert_eq(rc, 0, "%s", err_buf);
  cr_assert_eq(csv_rows("sw", ",done,"), 4, "results.csv lacks 4 finished runs");
  cr_assert(exists("sw", "003-seed=1,center_lr=0.2/summary.json"));
  cr_assert(exists("sw", "logs/003-seed=1,center_lr=0.2.log"));
  cr_assert(strstr(err_buf, "4 of 4 runs finished"), "%s", err_buf);
  if (evo_run_have_gnuplot()) { /* every run's test curve in one image */
    cr_assert(exists("sw", "sweep.png"));
    cr_assert(strstr(err_buf, "results.csv and sweep.png"), "%s", err_buf);
  }
  /* each run equals the same `evoc run` by hand */
  rc = evoc("run %s/quick_pgpe.yaml --out byhand --quiet --set trainer.max_iter=20 --set trainer.test_interval=10 "
            "--set trainer.checkpoint_interval=10 --set trainer.target_objective=0 --set seed=1 "
            "--set algo.center_lr=0.2", CFG);
  cr_assert_eq(rc, 0, "%s", err_buf);
  char *a = metrics_without_wall("byhand"), *b = metrics_without_wall("sw/003-seed=1,center_lr=0.2");
  cr_assert_str_eq(a, b);
  free(a), free(b);
  /* again: nothing left to run */
  rc = evoc("sweep q.yaml --out sw --jobs 2");
  cr_assert_eq(rc, 0, "%s", err_buf);
  cr_assert_null(strstr(err_buf, "started"), "finished runs started again: %s", err_buf);
}

Test(sweep, an_interrupted_run_resumes_bit_identically) {
  write_file("q.yaml", quick);
  cr_assert_eq(evoc("sweep q.yaml --out sw --quiet"), 0, "%s", err_buf);
  cr_assert_eq(evoc("sweep q.yaml --out ref --quiet"), 0, "%s", err_buf);
  /* run 2 as if killed after its first checkpoint: no summary, no last checkpoint, metrics cut by the resume */
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "cd '%s/sw/002-seed=1,center_lr=0.05' && rm summary.json checkpoints/iter_000000020.*",
           tmp);
  cr_assert_eq(system(cmd), 0);
  cr_assert_eq(evoc("sweep q.yaml --out sw"), 0, "%s", err_buf);
  cr_assert(strstr(err_buf, "002-seed=1,center_lr=0.05 started"), "%s", err_buf);
  cr_assert_null(strstr(err_buf, "001-seed"), "a finished run started again: %s", err_buf);
  char log[600], buf[1 << 14];
  snprintf(log, sizeof log, "%s/sw/logs/002-seed=1,center_lr=0.05.log", tmp);
  slurp(log, buf, sizeof buf);
  char *a = metrics_without_wall("ref/002-seed=1,center_lr=0.05"), *b = metrics_without_wall("sw/002-seed=1,center_lr=0.05");
  cr_assert_str_eq(a, b, "the resumed run differs");
  free(a), free(b);
  same_file("ref/002-seed=1,center_lr=0.05", "sw/002-seed=1,center_lr=0.05", "best.safetensors");
}

Test(sweep, index_runs_one_and_list_names_them) {
  write_file("q.yaml", quick);
  cr_assert_eq(evoc("sweep q.yaml --list"), 0, "%s", err_buf);
  cr_assert(strstr(out_buf, "3 003-seed=1,center_lr=0.2 trainer.max_iter=20"), "%s", out_buf);
  int lines = 0;
  for (const char *p = out_buf; *p; p++) lines += *p == '\n';
  cr_assert_eq(lines, 4);
  cr_assert_eq(evoc("sweep q.yaml --out sw --index 2 --quiet"), 0, "%s", err_buf);
  cr_assert(exists("sw", "002-seed=1,center_lr=0.05/summary.json"));
  cr_assert(!exists("sw", "001-seed=0,center_lr=0.2/summary.json"));
  cr_assert_eq(csv_rows("sw", ",done,"), 1);
  cr_assert_eq(csv_rows("sw", ",new,"), 3);
  cr_assert_eq(evoc("sweep q.yaml --out sw --index 4"), 2);
  cr_assert(strstr(err_buf, "the sweep has 4 runs"), "%s", err_buf);
}

Test(sweep, a_bad_run_is_refused_before_any_starts) {
  write_file("bad.yaml", "base: " CFG "/quick_pgpe.yaml\ngrid:\n  algo.pop_size: [8, -4]\n");
  int rc = evoc("sweep bad.yaml --out sw");
  cr_assert_eq(rc, 2, "exit %d: %s", rc, err_buf);
  cr_assert(strstr(err_buf, "run 001-pop_size=-4") && strstr(err_buf, "pop_size"), "%s", err_buf);
  cr_assert(!exists("sw", "000-pop_size=8/config.yaml"), "a run started before the check");
  cr_assert_eq(evoc("sweep nothere.yaml"), 2);
  cr_assert(strstr(err_buf, "nothere.yaml"), "%s", err_buf);
  if (evo_cuda_device_count() == 0) { /* --devices gpus with none here: refused, with the way out */
    write_file("q.yaml", quick);
    cr_assert_eq(evoc("sweep q.yaml --out sw2 --devices gpus"), 2, "%s", err_buf);
    cr_assert(strstr(err_buf, "no usable GPU here"), "%s", err_buf);
  }
  cr_assert_eq(evoc("sweep bad.yaml --jobs 0"), 2);
  cr_assert(strstr(err_buf, "--jobs must be an integer in [1, 100000]"), "%s", err_buf);
}

Test(sweep, gradient_training_runs_through_evoc_train) {
  write_train_config("mnist.yaml", "trainer: {epochs: 2}\n");
  write_file("g.yaml", "base: mnist.yaml\ngrid:\n  optim.lr: [0.003, 0.03]\n");
  int rc = evoc("sweep g.yaml --out gs --jobs 2");
  cr_assert_eq(rc, 0, "%s", err_buf);
  cr_assert_eq(csv_rows("gs", ",done,"), 2, "results.csv lacks 2 finished runs");
  char path[600], buf[4096];
  snprintf(path, sizeof path, "%s/gs/results.csv", tmp);
  slurp(path, buf, sizeof buf);
  cr_assert(strstr(buf, "test_acc") && strstr(buf, "best_test_acc") && strstr(buf, "epochs"), "%s", buf);
  cr_assert(strstr(err_buf, "best test accuracy: 00"), "%s", err_buf);
  cJSON *sum = read_json("gs/001-lr=0.03", "summary.json");
  cr_assert_eq(jnum(sum, "epochs"), 2);
  cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(sum, "optim")->valuestring, "adam");
  cJSON_Delete(sum);
}

Test(sweep, ctrl_c_interrupts_every_run_and_the_next_sweep_resumes_them) {
  /* two long runs at once (each metrics line is fsync'd: some ms per iteration) */
  write_file("long.yaml", "base: " CFG "/quick_pgpe.yaml\nset: {trainer.max_iter: 4000, "
                          "trainer.target_objective: 0, trainer.log_interval: 1}\ngrid:\n  seed: [0, 1]\n");
  char dir[300], cfg[300];
  snprintf(dir, sizeof dir, "%s/sw", tmp);
  snprintf(cfg, sizeof cfg, "%s/long.yaml", tmp);
  pid_t pid = spawn_evoc((const char *[]){"evoc", "sweep", cfg, "--out", dir, "--jobs", "2", NULL});
  char m0[400], m1[400];
  snprintf(m0, sizeof m0, "%s/000-seed=0/metrics.jsonl", dir);
  snprintf(m1, sizeof m1, "%s/001-seed=1/metrics.jsonl", dir);
  struct timespec ts = {0, 20 * 1000 * 1000};
  for (int i = 0; i < 1500 && (access(m0, R_OK) || access(m1, R_OK)); i++) nanosleep(&ts, NULL);
  cr_assert(!access(m0, R_OK) && !access(m1, R_OK), "the runs did not start");
  nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL);
  cr_assert_eq(kill(pid, SIGINT), 0);
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 130, "the sweep did not exit 130");
  double stopped_at[2];
  for (int i = 0; i < 2; i++) { /* each run wrote its checkpoint and an "interrupted" summary */
    cJSON *s = read_json(i ? "sw/001-seed=1" : "sw/000-seed=0", "summary.json");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "stopped_because")->valuestring, "interrupted");
    stopped_at[i] = jnum(s, "iterations");
    cJSON_Delete(s);
  }
  cr_assert_eq(csv_rows("sw", ",resumable,"), 2, "results.csv does not list both runs as resumable");
  /* The next sweep resumes them from their folders (a fresh run there would be refused: the folder holds one), with
     their own saved config, to its max_iter (or to f = 0, the target, should f underflow first). */
  cr_assert_eq(evoc("sweep long.yaml --out sw --jobs 2"), 0, "%s", err_buf);
  cr_assert(strstr(err_buf, "000-seed=0 started") && strstr(err_buf, "2 of 2 runs finished"), "%s", err_buf);
  for (int i = 0; i < 2; i++) {
    cJSON *s = read_json(i ? "sw/001-seed=1" : "sw/000-seed=0", "summary.json");
    const char *why = cJSON_GetObjectItemCaseSensitive(s, "stopped_because")->valuestring;
    cr_assert(!strcmp(why, "max_iter") || !strcmp(why, "target"), "stopped because %s", why);
    cr_assert_gt(jnum(s, "iterations"), stopped_at[i]);
    cJSON_Delete(s);
  }
}
