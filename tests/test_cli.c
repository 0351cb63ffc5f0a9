/* The evoc command line, run as a program: help and exit codes, config errors with file:line:col and "did you
   mean", the run folder of a short run, resume bit-identical to an uninterrupted run, eval of a run folder (an
   evolution run's or a gradient-training run's), unwritable and reused output folders, missing data, bad plugin
   paths, SIGINT (exit 130, loadable checkpoint);
   the same for `evoc train` (gradient training) on a tiny synthetic dataset; the progress line on a terminal. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* forkpty */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "evoc/algo.h"
#include "evoc/backend.h"
#include "evoc/config.h"
#include "evoc/policy.h"
#include "gradtrain_test_util.h"
#include "cli_test_util.h"
#include "safetensors.h"

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 60);

#define CFG EVOC_CONFIGS_DIR

/* ---------------------------------------------------------------- usage */

Test(cli, help_and_usage_exit_codes) {
  cr_assert_eq(evoc("--help"), 0);
  cr_assert(strstr(out_buf, "usage: evoc SUBCOMMAND"));
  const char *cmds[] = {"run", "eval", "list", "check", "train"};
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(evoc("%s --help", cmds[i]), 0, "%s --help", cmds[i]);
    char want[64];
    snprintf(want, sizeof want, "usage: evoc %s", cmds[i]);
    cr_assert(strstr(out_buf, want), "%s --help printed: %s", cmds[i], out_buf);
  }
  cr_assert_eq(evoc("frobnicate"), 2);
  cr_assert(strstr(err_buf, "unknown subcommand 'frobnicate'"), "%s", err_buf);
  cr_assert_eq(evoc(""), 2);
  cr_assert_eq(evoc("run --frob %s/quick_pgpe.yaml", CFG), 2);
  cr_assert(strstr(err_buf, "unknown option '--frob'"), "%s", err_buf);
  cr_assert_eq(evoc("run"), 2);
  cr_assert(strstr(err_buf, "missing CONFIG"), "%s", err_buf);
  cr_assert_eq(evoc("run %s/quick_pgpe.yaml --set", CFG), 2);
  cr_assert(strstr(err_buf, "--set needs a value"), "%s", err_buf);
  cr_assert_eq(evoc("check a.yaml b.yaml"), 2);
  cr_assert_eq(evoc("eval"), 2);
  cr_assert_eq(evoc("eval %s --episodes zero", tmp), 2);
  cr_assert_eq(evoc("list frobs"), 2);
  if (evo_cuda_device_count() == 0) { /* with a GPU, device cuda is accepted */
    cr_assert_eq(evoc("run %s/quick_pgpe.yaml --device cuda --out d", CFG), 2);
    cr_assert(strstr(err_buf, "CUDA backend"), "%s", err_buf);
  }
  cr_assert_eq(evoc("train x.yaml"), 2);
}

Test(cli, list_shows_tasks_policies_algorithms_optimizers) {
  cr_assert_eq(evoc("list"), 0);
  const char *want[] = {"cartpole_swingup", "functions", "mnist", "mlp", "direct", "pgpe", "center_lr",
                        "EvoJAX", "openes", "adam", "clipup", "RANKS", "--ranks N"};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) cr_assert(strstr(out_buf, want[i]), "no '%s'", want[i]);
  cr_assert_eq(evoc("list algos"), 0);
  cr_assert(strstr(out_buf, "pgpe") && !strstr(out_buf, "cartpole_swingup"));
}

/* ---------------------------------------------------------------- check */

#ifndef EVOC_HAVE_MUJOCO
/* Whether configs/name contains text. */
static int mentions(const char *name, const char *text) {
  char path[1024], line[512];
  snprintf(path, sizeof path, "%s/%s", CFG, name);
  FILE *f = fopen(path, "r");
  int found = 0;
  while (f && !found && fgets(line, sizeof line, f)) found = strstr(line, text) != NULL;
  if (f) fclose(f);
  return found;
}
#endif

Test(cli, check_accepts_every_example_config) {
  DIR *d = opendir(CFG);
  cr_assert_not_null(d);
  struct dirent *de;
  int n = 0;
  while ((de = readdir(d))) {
    const char *name = de->d_name;
    size_t len = strlen(name);
    if (len < 6 || strcmp(name + len - 5, ".yaml")) continue;
    if (!strcmp(name, "mnist_pgpe.yaml")) continue; /* needs real MNIST data: tested below */
    if (!strcmp(name, "fashion_mnist_cnn_finetune.yaml")) continue; /* needs a trained run: tested below */
    if (strstr(name, "mnist") && access("/usr/share/datasets/fashion-mnist", R_OK) != 0) continue;
#ifndef EVOC_HAVE_MUJOCO
    if (mentions(name, "name: mujoco")) continue; /* not built */
#endif
    char algo[64] = "";
    if (sscanf(name, "quick_%63[a-z_].yaml", algo) == 1 && !evo_algo_find(algo)) continue; /* not landed yet */
    int rc = evoc("check %s/%s", CFG, name);
    cr_assert_eq(rc, 0, "%s: rc %d: %s", name, rc, err_buf);
    n++;
  }
  closedir(d);
  cr_assert_geq(n, 6);
}

static void check_fails(const char *name, const char *text, const char *msg) {
  write_file(name, text);
  int rc = evoc("check %s", name);
  cr_assert_eq(rc, 2, "%s: rc %d, stderr: %s", name, rc, err_buf);
  cr_assert(strstr(err_buf, msg), "%s: expected '%s' in: %s", name, msg, err_buf);
}

Test(cli, check_reports_config_errors_with_location) {
  check_fails("a.yaml", "task: {name: functions}\nalgo:\n  name: pgpe\n  pop_sze: 10\n",
              "a.yaml:4:3: unknown key 'pop_sze' in algo (did you mean 'pop_size'?)");
  check_fails("b.yaml", "task: {name: functions}\nalgo:\n  name: pgpe\n  center_lrr: 0.1\n",
              "b.yaml:4:3: unknown key 'center_lrr' in algo (did you mean 'center_lr'?)");
  check_fails("c.yaml", "task: {name: functions}\nalgo:\n  name: pgep\n", "c.yaml:3:9: algo.name must be one of");
  cr_assert(strstr(err_buf, "(did you mean 'pgpe'?)"), "%s", err_buf);
  check_fails("d.yaml", "task: {name: functions}\nalgo: {name: pgpe}\ntrainer: {max_iter: ten}\n",
              "d.yaml:3:21: trainer.max_iter must be an integer");
  check_fails("e.yaml", "task: {name: functions}\nalgo: {name: pgpe}\ntrainr: {max_iter: 3}\n",
              "e.yaml:3:1: unknown key 'trainr' at the top level (did you mean 'trainer'?)");
  check_fails("f.yaml", "task: {name: functions\nalgo: [\n", "f.yaml:2:");
  check_fails("g.yaml", "task: {name: functions}\nalgo:\n  name: pgpe\n  center_lr: -1\n",
              "g.yaml:4:14: algo.center_lr must be a number in [0, 1000]");
  check_fails("h.yaml", "task: {name: functions}\nalgoo: {name: pgpe}\n", "missing required key algo");
  check_fails("i.yaml", "task: {name: functions, dimm: 3}\nalgo: {name: pgpe}\n", "i.yaml:1:25: unknown key 'dimm'");
  if (evo_cuda_device_count() == 0) { /* with a GPU, device cuda is accepted */
    check_fails("j.yaml", "task: {name: functions}\nalgo: {name: pgpe}\ndevice: cuda\n", "j.yaml:3:9: device cuda");
    cr_assert(strstr(err_buf, "CUDA backend"), "%s", err_buf);
  }
  /* --set goes through the same validation */
  write_file("ok.yaml", "task: {name: functions}\nalgo: {name: pgpe}\n");
  cr_assert_eq(evoc("check ok.yaml"), 0, "%s", err_buf);
  cr_assert_eq(evoc("check ok.yaml --set algo.pop_size=abc"), 2);
  cr_assert(strstr(err_buf, "--set algo.pop_size: algo.pop_size must be an integer"), "%s", err_buf);
  cr_assert_eq(evoc("check ok.yaml --set algo.stdev_lrr=1"), 2);
  cr_assert(strstr(err_buf, "did you mean 'stdev_lr'?"), "%s", err_buf);
  cr_assert_eq(evoc("check missing.yaml"), 2);
  cr_assert(strstr(err_buf, "missing.yaml"), "%s", err_buf);
  /* --print shows the resolved config with the defaults filled in */
  cr_assert_eq(evoc("check ok.yaml --print"), 0);
  cr_assert(strstr(out_buf, "checkpoint_interval: 100") && strstr(out_buf, "stdev_lr: 0.1"), "%s", out_buf);
}

Test(cli, missing_data_and_bad_plugin_name_the_path) {
  cr_assert_eq(evoc("check %s/mnist_pgpe.yaml --set task.data_dir=/nonexistent/mnist_data", CFG), 2);
  cr_assert(strstr(err_buf, "/nonexistent/mnist_data/train-images-idx3-ubyte"), "%s", err_buf);
  cr_assert_eq(evoc("run %s/mnist_pgpe.yaml --set task.data_dir=/nonexistent/mnist_data --out r", CFG), 2);
  cr_assert(!exists("r", "metrics.jsonl"));
  check_fails("p.yaml", "task: {plugin: /nonexistent/libmytask.so}\nalgo: {name: pgpe}\n",
              "p.yaml:1:16: task plugin '/nonexistent/libmytask.so' not found");
}

/* ---------------------------------------------------------------- runs */

static const char *const run_files[] = {"config.yaml", "metrics.jsonl", "summary.json", "best.safetensors", NULL};

static void check_run_folder(const char *dir, const char *algo, int iterations) {
  for (int i = 0; run_files[i]; i++) cr_assert(exists(dir, run_files[i]), "%s/%s missing", dir, run_files[i]);
  if (system("command -v gnuplot > /dev/null 2>&1") == 0)
    cr_assert(exists(dir, "learning_curve.png"), "no learning curve although gnuplot is installed");
  cJSON *s = read_json(dir, "summary.json");
  const char *keys[] = {"task", "policy", "algo", "stopped_because"};
  for (int i = 0; i < 4; i++) cr_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(s, keys[i])), "%s", keys[i]);
  cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "algo")->valuestring, algo);
  cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "task")->valuestring, "functions");
  cr_assert_eq(jnum(s, "iterations"), iterations);
  cr_assert_gt(jnum(s, "evaluations"), 0);
  cr_assert_geq(jnum(s, "wall_s"), 0);
  cr_assert(isfinite(jnum(s, "best_train_fitness")) && isfinite(jnum(s, "test_score")));
  cr_assert_geq(jnum(s, "best_test_score"), jnum(s, "test_score"));
  cr_assert(isfinite(jnum(s, "best_objective")));
  cr_assert(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(s, "reached_target")));
  cJSON_Delete(s);
  free(metrics_without_wall(dir)); /* every line valid JSON with the required keys */
  /* the resolved config parses and shows defaults nobody wrote */
  char path[1024];
  snprintf(path, sizeof path, "%s/%s/config.yaml", tmp, dir);
  evo_config *c;
  cr_assert_eq(evo_config_load(path, &c), EVO_STATUS_OK, "%s", evo_last_error());
  evo_cfg *tr = evo_cfg_get(evo_config_root(c), "trainer");
  cr_assert_not_null(evo_cfg_get(tr, "checkpoint_interval"));
  evo_config_free(c);
  /* best.safetensors: the policy's entries, readable by any safetensors reader */
  snprintf(path, sizeof path, "%s/%s/best.safetensors", tmp, dir);
  evo_st_reader *r;
  cr_assert_eq(evo_st_open(path, &r), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_geq(evo_st_find(r, "x"), 0);
  evo_st_close(r);
  snprintf(path, sizeof path, "%s/%s/checkpoints", tmp, dir);
  DIR *d = opendir(path);
  cr_assert_not_null(d);
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d))) n += strstr(de->d_name, ".safetensors") != NULL;
  closedir(d);
  cr_assert_geq(n, 2);
}

Test(cli, quick_cmaes_run_writes_the_run_folder) {
  if (!evo_algo_find("cmaes")) cr_skip_test("cmaes is not built into this evoc yet");
  int rc = evoc("run %s/quick_cmaes.yaml --out r --quiet --set trainer.max_iter=60", CFG);
  cr_assert_eq(rc, 0, "rc %d: %s", rc, err_buf);
  check_run_folder("r", "cmaes", 60);
  /* --quiet: stdout is JSON lines (metrics, then the summary) */
  int lines = 0;
  for (char *p = strtok(out_buf, "\n"); p; p = strtok(NULL, "\n"), lines++) {
    cJSON *o = cJSON_Parse(p);
    cr_assert_not_null(o, "not JSON: %s", p);
    cJSON_Delete(o);
  }
  cr_assert_eq(lines, 6 + 1);
}

Test(cli, quick_pgpe_run_eval_and_reused_folder) {
  int rc = evoc("run %s/quick_pgpe.yaml --out r --quiet --set trainer.max_iter=40 --set trainer.test_interval=20", CFG);
  cr_assert_eq(rc, 0, "rc %d: %s", rc, err_buf);
  check_run_folder("r", "pgpe", 40);
  /* eval replays the run's test episodes: the best test score comes back exactly */
  cJSON *s = read_json("r", "summary.json");
  double best = jnum(s, "best_test_score");
  cJSON_Delete(s);
  cr_assert_eq(evoc("eval r --quiet"), 0, "%s", err_buf);
  cJSON *e = cJSON_Parse(out_buf);
  cr_assert_not_null(e, "%s", out_buf);
  cr_assert_eq(jnum(e, "score"), best);
  cr_assert_eq(jnum(e, "objective"), -best);
  cJSON_Delete(e);
  cr_assert_eq(evoc("eval r/best.safetensors --config %s/quick_pgpe.yaml --episodes 2", CFG), 0, "%s", err_buf);
  cr_assert(strstr(out_buf, "test score"), "%s", out_buf);
  cr_assert_eq(evoc("eval nowhere"), 2);
  /* a fresh run into a folder that holds one is refused: nothing of the old run is touched */
  long n0, n1;
  char *before = file_bytes("r", "metrics.jsonl", &n0);
  cr_assert_eq(evoc("run %s/quick_pgpe.yaml --out r", CFG), 2);
  cr_assert(strstr(err_buf, "already holds a run"), "%s", err_buf);
  char *after = file_bytes("r", "metrics.jsonl", &n1);
  cr_assert(n0 == n1 && !memcmp(before, after, (size_t)n0));
  free(before), free(after);
}

Test(cli, default_out_dir_is_runs_name_timestamp) {
  cr_assert_eq(evoc("run %s/quick_pgpe.yaml --quiet --set trainer.max_iter=2", CFG), 0, "%s", err_buf);
  char path[512];
  snprintf(path, sizeof path, "%s/runs", tmp);
  DIR *d = opendir(path);
  cr_assert_not_null(d, "no runs/ folder");
  struct dirent *de;
  int n = 0;
  while ((de = readdir(d)))
    if (!strncmp(de->d_name, "quick_pgpe-", 11)) n++;
  closedir(d);
  cr_assert_eq(n, 1);
}

Test(cli, unwritable_out_fails_before_running) {
  write_file("plain_file", "x");
  int rc = evoc("run %s/quick_pgpe.yaml --out plain_file/run", CFG);
  cr_assert_eq(rc, 2, "rc %d: %s", rc, err_buf);
  cr_assert(strstr(err_buf, "plain_file"), "%s", err_buf);
  cr_assert(!strstr(out_buf, "iter"), "it ran: %s", out_buf);
}

/* N iterations, then --resume to 2N, equals 2N at once: same best.safetensors bytes, same metrics (but wall_s),
   same final algorithm state. */
static void resume_matches_in(const char *full, const char *half, const char *cfg, const char *sets, int n) {
  int rc = evoc("run %s --out %s --quiet %s --set trainer.max_iter=%d", cfg, full, sets, 2 * n);
  cr_assert_eq(rc, 0, "%s: %s", cfg, err_buf);
  rc = evoc("run %s --out %s --quiet %s --set trainer.max_iter=%d", cfg, half, sets, n);
  cr_assert_eq(rc, 0, "%s: %s", cfg, err_buf);
  rc = evoc("run --resume %s --quiet --set trainer.max_iter=%d", half, 2 * n);
  cr_assert_eq(rc, 0, "%s: %s", cfg, err_buf);
  same_file(full, half, "best.safetensors");
  char *a = metrics_without_wall(full), *b = metrics_without_wall(half);
  cr_assert_str_eq(a, b, "%s: metrics differ", cfg);
  free(a), free(b);
  char ck[128];
  snprintf(ck, sizeof ck, "checkpoints/iter_%09d.algo.safetensors", 2 * n);
  same_file(full, half, ck);
  cJSON *s = read_json(half, "summary.json");
  cr_assert_eq(jnum(s, "iterations"), 2 * n);
  cJSON_Delete(s);
}

static void resume_matches(const char *cfg, const char *sets, int n) { resume_matches_in("full", "half", cfg, sets, n); }

Test(cli, resume_is_bit_identical_functions) {
  resume_matches(CFG "/quick_pgpe.yaml", "--set trainer.test_interval=10 --set trainer.target_objective=0", 30);
}

Test(cli, resume_is_bit_identical_policy_with_normalizer) {
  resume_matches(CFG "/cartpole_swingup_easy_pgpe.yaml",
                 "--set algo.pop_size=8 --set trainer.n_repeats=2 --set task.max_steps=40 --set trainer.log_interval=2 "
                 "--set trainer.test_interval=2 --set trainer.n_evaluations=3 --set trainer.normalize_obs=true",
                 2);
  /* eval of the run folder uses the normaliser saved with the parameters */
  cJSON *s = read_json("half", "summary.json");
  double best = jnum(s, "best_test_score");
  cJSON_Delete(s);
  cr_assert_eq(evoc("eval half --quiet"), 0, "%s", err_buf);
  cJSON *e = cJSON_Parse(out_buf);
  cr_assert_not_null(e, "%s", out_buf);
  cr_assert_eq(jnum(e, "score"), best);
  cJSON_Delete(e);
}

#ifdef EVOC_HAVE_MUJOCO
/* A MuJoCo task with ARS, observation normalisation and the training-only reward shift: the run resumes bit for bit,
   and the hopper learns something in these few iterations. */
Test(cli, resume_is_bit_identical_mujoco) {
  resume_matches_in("mj_full", "mj_half", CFG "/hopper_ars.yaml",
                    "--set task.max_steps=100 --set trainer.test_interval=3 --set trainer.log_interval=3 "
                    "--set trainer.n_evaluations=4 --set trainer.target_score=1e9", 3);
  cJSON *s = read_json("mj_half", "summary.json");
  cr_expect_gt(jnum(s, "best_test_score"), 100.0, "100 steps of standing alone score ~100");
  cJSON_Delete(s);
}

/* MAP-Elites with a policy network on a MuJoCo task: the simulation collects the feet-contact descriptors. */
Test(cli, map_elites_fills_a_mujoco_archive) {
  int rc = evoc("run %s/walker2d_map_elites.yaml --out mj_me --quiet --set task.max_steps=30 --set algo.pop_size=8 "
                "--set trainer.max_iter=4 --set trainer.log_interval=2 --set trainer.test_interval=4 "
                "--set trainer.n_evaluations=2", CFG);
  cr_assert_eq(rc, 0, "%s", err_buf);
  char *m = metrics_without_wall("mj_me");
  const char *c = strstr(m, "\"coverage\":");
  cr_assert_not_null(c, "%s", m);
  cr_expect_gt(atof(c + 11), 0.0, "%s", m);
  free(m);
}
#endif

/* Every algorithm's state (evo_algo_save/load) through the trainer: its quick config, 8 + 8 vs 16 iterations. */
Test(cli, resume_is_bit_identical_every_algorithm) {
  int n = 0;
  for (int i = 0; i < evo_algo_count(); i++) {
    const char *name = evo_algo_info_at(i)->name;
    char cfg[512], full[128], half[128];
    snprintf(cfg, sizeof cfg, "%s/quick_%s.yaml", CFG, name);
    cr_assert_eq(access(cfg, R_OK), 0, "no example config %s for algorithm %s", cfg, name);
    snprintf(full, sizeof full, "full_%s", name);
    snprintf(half, sizeof half, "half_%s", name);
    resume_matches_in(full, half, cfg,
                      "--set trainer.log_interval=4 --set trainer.test_interval=8 --set trainer.target_objective=0", 8);
    n++;
  }
  cr_assert_geq(n, 3);
}

Test(cli, nan_policy_is_reported_and_the_run_completes) {
  int rc = evoc("run %s/cartpole_balance_pgpe.yaml --out n --quiet --set algo.x0=.inf --set algo.pop_size=4 "
                "--set trainer.max_iter=4 --set trainer.test_interval=2 --set trainer.log_interval=2 "
                "--set trainer.n_repeats=1 --set task.max_steps=20", CFG);
  cr_assert_eq(rc, 0, "%s", err_buf);
  cr_assert(strstr(err_buf, "4 of 4 members had non-finite"), "%s", err_buf);
  free(metrics_without_wall("n"));
  cJSON *s = read_json("n", "summary.json");
  cr_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(s, "test_score")));
  cJSON_Delete(s);
  cr_assert_eq(evoc("eval n"), 2);
  cr_assert(strstr(err_buf, "best.safetensors"), "%s", err_buf);
}

Test(cli, resume_needs_a_checkpoint) {
  cr_assert_eq(evoc("run --resume nowhere"), 2);
  cr_assert(strstr(err_buf, "nowhere"), "%s", err_buf);
}

/* Starts `evoc CMD CONFIG --out tmp/s --quiet ARGS...`, sends SIGINT once metrics.jsonl exists and waits; the
   exit status must be 130. */
static void interrupt_run(const char *cmd, const char *cfg, const char *const *args) {
  char dir[300];
  snprintf(dir, sizeof dir, "%s/s", tmp);
  const char *argv[32] = {"evoc", cmd, cfg, "--out", dir, "--quiet"};
  int n = 6;
  while (*args && n < 31) argv[n++] = *args++;
  argv[n] = NULL;
  pid_t pid = spawn_evoc(argv);
  char metrics[400];
  snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
  struct timespec ts = {0, 20 * 1000 * 1000};
  for (int i = 0; i < 1000 && access(metrics, R_OK) != 0; i++) nanosleep(&ts, NULL);
  cr_assert_eq(access(metrics, R_OK), 0, "the run did not start");
  nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL);
  cr_assert_eq(kill(pid, SIGINT), 0);
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status), "killed by a signal");
  cr_assert_eq(WEXITSTATUS(status), 130);
}

Test(cli, sigint_writes_a_checkpoint_and_exits_130) {
  interrupt_run("run", CFG "/quick_pgpe.yaml",
                (const char *[]){"--set", "trainer.max_iter=100000000", "--set", "trainer.target_objective=0",
                                 "--set", "task.dim=100", NULL});
  cJSON *s = read_json("s", "summary.json");
  cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "stopped_because")->valuestring, "interrupted");
  int iters = (int)jnum(s, "iterations");
  cJSON_Delete(s);
  cr_assert_gt(iters, 0);
  /* the checkpoint loads: resume for 5 more iterations */
  int rc = evoc("run --resume s --quiet --set trainer.max_iter=%d", iters + 5);
  cr_assert_eq(rc, 0, "%s", err_buf);
  s = read_json("s", "summary.json");
  cr_assert_eq(jnum(s, "iterations"), iters + 5);
  cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "stopped_because")->valuestring, "max_iter");
  cJSON_Delete(s);
}

/* ---------------------------------------------------------------- evoc train */

/* A gradient-training config on the synthetic dataset in tmp/data (extra: more top-level YAML). */
Test(cli, train_writes_the_run_folder_and_resumes) {
  write_train_config("t.yaml", "trainer: {epochs: 2, log_interval: 4}\n");
  cr_assert_eq(evoc("check t.yaml"), 0, "%s", err_buf);
  cr_assert(strstr(out_buf, "gradient training"), "%s", out_buf);
  int rc = evoc("train t.yaml --out r --quiet");
  cr_assert_eq(rc, 0, "rc %d: %s", rc, err_buf);
  for (int i = 0; run_files[i]; i++) cr_assert(exists("r", run_files[i]), "r/%s missing", run_files[i]);
  cr_assert(exists("r", "checkpoints/step_000000020.gradtrain.safetensors"));
  if (system("command -v gnuplot > /dev/null 2>&1") == 0)
    cr_assert(exists("r", "learning_curve.png"), "no learning curve although gnuplot is installed");
  /* --quiet: metrics lines (steps 4, 8, 10 (epoch end), 12, 16, 20), then the summary */
  int lines = 0, tests = 0;
  for (char *p = strtok(out_buf, "\n"); p; p = strtok(NULL, "\n"), lines++) {
    cJSON *o = cJSON_Parse(p);
    cr_assert_not_null(o, "not JSON: %s", p);
    tests += cJSON_GetObjectItemCaseSensitive(o, "test_loss") != NULL; /* epoch ends (not the summary) */
    cJSON_Delete(o);
  }
  cr_assert_eq(lines, 6 + 1);
  cr_assert_eq(tests, 2);
  cJSON *s = read_json("r", "summary.json");
  cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "optim")->valuestring, "adam");
  cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "stopped_because")->valuestring, "epochs");
  cr_assert_eq(jnum(s, "steps"), 20);
  cr_assert_gt(jnum(s, "best_test_acc"), 0.3);
  const double best = jnum(s, "best_test_acc");
  cJSON_Delete(s);
  /* eval of the run folder: best.safetensors on the whole test set, the accuracy its epoch's test gave */
  cr_assert_eq(evoc("eval r --quiet"), 0, "%s", err_buf);
  cJSON *e = cJSON_Parse(out_buf);
  cr_assert_not_null(e, "%s", out_buf);
  cr_assert_eq(jnum(e, "test_acc"), best, "eval %.17g, the run's best test %.17g", jnum(e, "test_acc"), best);
  cr_assert(jnum(e, "test_loss") > 0);
  cJSON_Delete(e);
  cr_assert_eq(evoc("eval r --episodes 3"), 2);
  cr_assert(strstr(err_buf, "whole test set"), "%s", err_buf);
  /* extend to 3 epochs from the run folder's own config */
  cr_assert_eq(evoc("train --resume r --quiet --set trainer.epochs=3"), 0, "%s", err_buf);
  s = read_json("r", "summary.json");
  cr_assert_eq(jnum(s, "epochs"), 3);
  cr_assert_eq(jnum(s, "steps"), 30);
  cJSON_Delete(s);
  /* a fresh run into it is refused; nothing is touched */
  long n0, n1;
  char *before = file_bytes("r", "metrics.jsonl", &n0);
  cr_assert_eq(evoc("train t.yaml --out r"), 2);
  cr_assert(strstr(err_buf, "already holds a run"), "%s", err_buf);
  char *after = file_bytes("r", "metrics.jsonl", &n1);
  cr_assert(n0 == n1 && !memcmp(before, after, (size_t)n0));
  free(before), free(after);
}

Test(cli, train_exit_codes_for_bad_input) {
  write_train_config("k.yaml", "trainer: {epoch: 2}\n");
  cr_assert_eq(evoc("train k.yaml --out k"), 2);
  cr_assert(strstr(err_buf, "k.yaml:5:11: unknown key 'epoch' in trainer (did you mean 'epochs'?)"), "%s", err_buf);
  cr_assert(!exists("k", "config.yaml"), "a bad config wrote a run folder");
  write_train_config("m.yaml", "");
  cr_assert_eq(evoc("train m.yaml --set task.data_dir=/nonexistent/fashion --out m"), 2);
  cr_assert(strstr(err_buf, "/nonexistent/fashion/train-images-idx3-ubyte") && strstr(err_buf, "data_dir"), "%s",
            err_buf);
  write_file("plain_file", "x");
  cr_assert_eq(evoc("train m.yaml --out plain_file/run"), 2);
  cr_assert(strstr(err_buf, "plain_file"), "%s", err_buf);
  cr_assert_eq(evoc("train --resume nowhere"), 2);
  cr_assert_eq(evoc("train m.yaml --frob"), 2);
  cr_assert(strstr(err_buf, "unknown option '--frob'"), "%s", err_buf);
  cr_assert_eq(evoc("train"), 2);
  /* each command names the other for the other's configs, and writes nothing */
  cr_assert_eq(evoc("run m.yaml --out w"), 2);
  cr_assert(strstr(err_buf, "gradient-training config") && strstr(err_buf, "`evoc train m.yaml`"), "%s", err_buf);
  cr_assert_eq(evoc("train %s/quick_pgpe.yaml --out w", CFG), 2);
  cr_assert(strstr(err_buf, "evolution config") && strstr(err_buf, "`evoc run "), "%s", err_buf);
  cr_assert(!exists("w", "config.yaml"), "a config for the other command wrote a run folder");
  /* a network that computes NaN fails the run (exit 1) with the step and the fix */
  evo_policy_mlp_params mp = evo_policy_mlp_default_params();
  mp.n_hidden = 1, mp.hidden[0] = 16, mp.activation = EVO_POLICY_ACT_RELU, mp.output = EVO_POLICY_OUT_LINEAR;
  evo_policy_io io = {.obs_ndim = 3, .obs_shape = {GT_SIDE, GT_SIDE, 1}, .act_ndim = 1, .act_shape = {10}};
  evo_policy *pol;
  cr_assert_eq(evo_policy_mlp_new(&mp, &io, &pol), EVO_STATUS_OK, "%s", evo_last_error());
  int64_t D = evo_policy_num_params(pol);
  float *flat = malloc(sizeof(float) * (size_t)D);
  for (int64_t i = 0; i < D; i++) flat[i] = NAN;
  char path[400];
  snprintf(path, sizeof path, "%s/nan.safetensors", tmp);
  cr_assert_eq(evo_ptree_save(evo_policy_ptree(pol), flat, path), EVO_STATUS_OK, "%s", evo_last_error());
  free(flat);
  evo_policy_free(pol);
  int rc = evoc("train m.yaml --out d --set init_from=nan.safetensors");
  cr_assert_eq(rc, 1, "rc %d: %s", rc, err_buf);
  cr_assert(strstr(err_buf, "the training loss is") && strstr(err_buf, "optim.lr"), "%s", err_buf);
}

/* The fine-tuning example checks once its init_from exists: here a fresh seed CNN saved by the library. */
Test(cli, finetune_example_checks_with_a_trained_network) {
  if (access("/usr/share/datasets/fashion-mnist", R_OK) != 0) cr_skip_test("Fashion-MNIST is not installed");
  cr_assert_eq(evoc("check %s/fashion_mnist_cnn_finetune.yaml --set init_from=nowhere.safetensors", CFG), 2);
  cr_assert(strstr(err_buf, "nowhere.safetensors") && strstr(err_buf, "train the source run first"), "%s", err_buf);
  evo_policy_cnn_params cp;
  cr_assert_eq(evo_policy_cnn_preset("seed_cnn", &cp), EVO_STATUS_OK);
  evo_policy_io io = {.obs_ndim = 3, .obs_shape = {28, 28, 1}, .act_ndim = 1, .act_shape = {10}};
  evo_policy *pol;
  cr_assert_eq(evo_policy_cnn_new(&cp, &io, &pol), EVO_STATUS_OK, "%s", evo_last_error());
  float *flat = malloc(sizeof(float) * (size_t)evo_policy_num_params(pol));
  cr_assert_eq(evo_policy_init(pol, evo_key_from_seed(3), flat), EVO_STATUS_OK);
  char path[400];
  snprintf(path, sizeof path, "%s/net.safetensors", tmp);
  cr_assert_eq(evo_ptree_save(evo_policy_ptree(pol), flat, path), EVO_STATUS_OK, "%s", evo_last_error());
  free(flat);
  evo_policy_free(pol);
  int rc = evoc("check %s/fashion_mnist_cnn_finetune.yaml --set init_from=net.safetensors", CFG);
  cr_assert_eq(rc, 0, "rc %d: %s", rc, err_buf);
  cr_assert(strstr(out_buf, "(10250 trained)"), "%s", out_buf);
}

Test(cli, train_sigint_writes_a_checkpoint_and_exits_130) {
  write_train_config("s.yaml", "trainer: {epochs: 100000000, log_interval: 1}\n");
  char cfg[300];
  snprintf(cfg, sizeof cfg, "%s/s.yaml", tmp);
  interrupt_run("train", cfg, (const char *[]){NULL});
  cJSON *s = read_json("s", "summary.json");
  cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "stopped_because")->valuestring, "interrupted");
  int steps = (int)jnum(s, "steps");
  cJSON_Delete(s);
  cr_assert_gt(steps, 0);
  int rc = evoc("train --resume s --quiet --set trainer.max_steps=%d", steps + 3);
  cr_assert_eq(rc, 0, "%s", err_buf);
  s = read_json("s", "summary.json");
  cr_assert_eq(jnum(s, "steps"), steps + 3);
  cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "stopped_because")->valuestring, "max_steps");
  cJSON_Delete(s);
}

/* ---------------------------------------------------------------- a terminal */

/* Runs evoc with argv (NULL-terminated, argv[0] = "evoc") in tmp on a pseudo-terminal; its whole output goes to buf.
   Returns the exit status. */
static int evoc_on_tty(char *buf, size_t cap, char *const argv[]) {
  fflush(stdout), fflush(stderr);
  int master = -1;
  const pid_t pid = forkpty(&master, NULL, NULL, NULL);
  cr_assert_geq(pid, 0, "forkpty: %s", strerror(errno));
  if (pid == 0) {
    if (chdir(tmp) == 0) execv(EVOC_CLI_PATH, argv);
    _exit(127);
  }
  size_t n = 0;
  for (;;) { /* until the child closes the terminal (EIO on Linux) */
    const ssize_t k = read(master, buf + n, cap - 1 - n);
    if (k > 0) n += (size_t)k;
    else if (k < 0 && errno == EINTR) continue;
    if (k <= 0 || n == cap - 1) break;
  }
  buf[n] = '\0';
  close(master);
  int status = 0;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char tty_buf[1 << 16];

/* On a terminal `evoc run` draws a progress line that updates in place (iteration, best, mean, test, evals/s, ETA),
   keeps a line per test above it and prints a summary; the other tests run with redirected output. */
Test(cli, progress_line_on_a_terminal) {
  char cfg[512];
  snprintf(cfg, sizeof cfg, "%s/quick_pgpe.yaml", CFG);
  char *argv[] = {"evoc", "run", cfg, "--out", "r", "--set", "trainer.max_iter=120", NULL};
  const int rc = evoc_on_tty(tty_buf, sizeof tty_buf, argv);
  const char *buf = tty_buf;
  cr_assert_eq(rc, 0, "exit status %d:\n%s", rc, buf);
  cr_assert(strstr(buf, "\r\033[Kiter 120/120  best "), "no final progress line in:\n%s", buf);
  cr_assert(strstr(buf, " evals/s  ETA "), "no rate and ETA in:\n%s", buf);
  cr_assert(strstr(buf, "iter 50: test ") && strstr(buf, "iter 100: test "), "no test lines in:\n%s", buf);
  cr_assert(strstr(buf, "120 iterations, 3840 evaluations") && strstr(buf, "stopped because max_iter"),
            "no summary in:\n%s", buf);
}

/* `evoc train` on a terminal: the step line with loss, steps/s and ETA, a line per epoch's test, the summary. */
Test(cli, train_progress_line_on_a_terminal) {
  write_train_config("t.yaml", "trainer: {epochs: 2, log_interval: 4}\n");
  char *argv[] = {"evoc", "train", "t.yaml", "--out", "r", NULL};
  const int rc = evoc_on_tty(tty_buf, sizeof tty_buf, argv);
  const char *buf = tty_buf;
  cr_assert_eq(rc, 0, "exit status %d:\n%s", rc, buf);
  cr_assert(strstr(buf, "\r\033[Kepoch 2/2  step 10/10  loss "), "no final step line in:\n%s", buf);
  cr_assert(strstr(buf, " steps/s  ETA "), "no rate and ETA in:\n%s", buf);
  cr_assert(strstr(buf, "epoch 1/2: test accuracy ") && strstr(buf, "epoch 2/2: test accuracy "),
            "no test lines in:\n%s", buf);
  cr_assert(strstr(buf, "2 epochs, 20 steps") && strstr(buf, "stopped because epochs"), "no summary in:\n%s", buf);
}
