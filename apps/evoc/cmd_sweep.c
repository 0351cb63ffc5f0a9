/* evoc sweep: the runs of a sweep file (include/evoc/sweep.h) as child `evoc run` processes, N at a time, each
   on its own device; or one run in this process (--index, for Slurm job arrays). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli.h"
#include "evoc/backend.h"
#include "evoc/gradtrain.h"
#include "evoc/run.h"
#include "evoc/sweep.h"
#include "evoc/trainer.h"

static const char sweep_usage[] =
    "usage: evoc sweep SWEEP [--out DIR] [--jobs N] [--devices D1,D2,...] [--quiet]\n"
    "       evoc sweep SWEEP --index I [--out DIR] [--device D] [--quiet]\n"
    "       evoc sweep SWEEP --list\n"
    "\n"
    "Runs every combination of a sweep file's grid (see include/evoc/sweep.h) as `evoc run` processes (`evoc\n"
    "train` ones for a gradient-training base config), each in DIR/<run name> with its log in\n"
    "DIR/logs/<run name>.log, and gathers their summaries in DIR/results.csv and their test curves in\n"
    "DIR/sweep.png (with gnuplot).\n"
    "Every run's config is checked before any starts. Running the sweep again skips finished runs and resumes\n"
    "interrupted ones from their checkpoints.\n"
    "\n"
    "  --out DIR        sweep folder (default runs/<sweep name>)\n"
    "  --jobs N         runs at a time (default: the number of --devices, else 1); on the CPU each run gets\n"
    "                   OMP_NUM_THREADS = cores / N unless OMP_NUM_THREADS is set\n"
    "  --devices LIST   devices handed to the running jobs in turn, e.g. cuda:0,cuda:1, or gpus for every GPU\n"
    "                   of this machine (default: each run's config decides)\n"
    "  --index I        only run I (0-based), in this process: one Slurm array task per run, e.g.\n"
    "                   sbatch --array=0-$(($(evoc sweep s.yaml --list | wc -l) - 1)) scripts/slurm_sweep.sh s.yaml\n"
    "  --device D       with --index: the run's device\n"
    "  --list           print each run's index, name and overrides, and exit\n"
    "  --quiet          no progress lines; JSON lines on stdout, one per finished run\n"
    "\n"
    "Ctrl-C stops starting runs and interrupts the running ones (each writes a checkpoint); exit 130.\n"
    "Exit codes: 0 every run finished, 1 a run failed, 2 bad usage or sweep file, 130 interrupted.\n";

typedef struct {
  const char *file, *out, *devices, *device;
  int jobs, index;
  bool list, quiet;
  /* from the base config: gradient training (`evoc train`) rather than evolution, the direction of "best", and
     a function to minimise (the functions task: plotted as f on a log scale) */
  bool train, maximize, objective;
} sweep_args;

static int parse(int argc, char **argv, sweep_args *a) {
  *a = (sweep_args){.index = -1};
  for (int i = 1; i < argc; i++) {
    const char *v = NULL;
    int r;
    if (evo_cli_is_help(argv[i])) {
      fputs(sweep_usage, stdout);
      return -1;
    }
    if ((r = evo_cli_opt(argc, argv, &i, "--out", &v))) {
      if (r < 0) return EVO_CLI_USAGE;
      a->out = v;
    } else if ((r = evo_cli_opt(argc, argv, &i, "--devices", &v))) {
      if (r < 0) return EVO_CLI_USAGE;
      a->devices = v;
    } else if ((r = evo_cli_opt(argc, argv, &i, "--device", &v))) {
      if (r < 0) return EVO_CLI_USAGE;
      a->device = v;
    } else if ((r = evo_cli_opt(argc, argv, &i, "--jobs", &v))) {
      if (r < 0 || evo_cli_int("sweep", "--jobs", v, 1, 100000, &a->jobs)) return EVO_CLI_USAGE;
    } else if ((r = evo_cli_opt(argc, argv, &i, "--index", &v))) {
      if (r < 0 || evo_cli_int("sweep", "--index", v, 0, 100000, &a->index)) return EVO_CLI_USAGE;
    } else if (!strcmp(argv[i], "--list")) {
      a->list = true;
    } else if (!strcmp(argv[i], "--quiet")) {
      a->quiet = true;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      fprintf(stderr, "evoc sweep: unknown option '%s'\n\n%s", argv[i], sweep_usage);
      return EVO_CLI_USAGE;
    } else if (!a->file) {
      a->file = argv[i];
    } else {
      fprintf(stderr, "evoc sweep: unexpected argument '%s'\n\n%s", argv[i], sweep_usage);
      return EVO_CLI_USAGE;
    }
  }
  if (!a->file) {
    fprintf(stderr, "evoc sweep: missing SWEEP\n\n%s", sweep_usage);
    return EVO_CLI_USAGE;
  }
  if (a->device && a->index < 0) return evo_cli_fail("sweep", EVO_CLI_USAGE, "--device goes with --index; use --devices");
  return 0;
}

/* What the base config is: gradient training (an optim section and no algo) or evolution, and whether its fitness
   is maximised (algo.maximize, default true), which decides the best run. */
static int read_kind(const evo_sweep *s, sweep_args *a) {
  evo_config *cfg;
  if (evo_config_load(evo_sweep_base(s), &cfg)) return evo_cli_fail("sweep", EVO_CLI_USAGE, "%s", evo_last_error());
  a->train = evo_cli_is_train_config(cfg);
  evo_cfg *algo = evo_cfg_get(evo_config_root(cfg), "algo");
  const char *mx = algo ? evo_cfg_scalar(evo_cfg_get(algo, "maximize")) : NULL;
  a->maximize = !(mx && (!strcmp(mx, "false") || !strcmp(mx, "False") || !strcmp(mx, "no") || !strcmp(mx, "0")));
  evo_cfg *task = evo_cfg_get(evo_config_root(cfg), "task");
  const char *tn = task ? evo_cfg_scalar(evo_cfg_get(task, "name")) : NULL;
  a->objective = !a->train && tn && !strcmp(tn, "functions");
  evo_config_free(cfg);
  return EVO_CLI_OK;
}

/* Every run that will start fresh must build: the same checks as `evoc check`, before anything runs. */
static int check_runs(const evo_sweep *s, const char *dir, int only, bool train) {
  for (int i = only < 0 ? 0 : only; i < (only < 0 ? evo_sweep_count(s) : only + 1); i++) {
    if (evo_sweep_run_state_in(s, i, dir) != EVO_SWEEP_RUN_NEW) continue;
    evo_config *cfg = NULL;
    evo_status st = evo_sweep_config(s, i, &cfg);
    if (!st && train) {
      evo_gradtrain *g = NULL;
      st = evo_gradtrain_new(cfg, NULL, &g);
      evo_gradtrain_free(g);
    } else if (!st) {
      evo_trainer *t = NULL;
      st = evo_trainer_new(cfg, NULL, &t);
      evo_trainer_free(t);
    }
    if (cfg) evo_config_free(cfg);
    if (st) return evo_cli_fail("sweep", EVO_CLI_USAGE, "run %s: %s", evo_sweep_run_name(s, i), evo_last_error());
  }
  return EVO_CLI_OK;
}

/* argv of `evoc run` for run i: a fresh run from the base config and the run's overrides, or a resume. */
typedef struct {
  char *argv[EVO_CLI_MAX_SETS * 2 + 16];
  int argc;
  char dir[4200];
} run_argv;

static int build_argv(const evo_sweep *s, int i, const sweep_args *a, const char *out, const char *device, bool quiet,
                      run_argv *r) {
  snprintf(r->dir, sizeof r->dir, "%s/%s", out, evo_sweep_run_name(s, i));
  r->argc = 0;
  r->argv[r->argc++] = a->train ? "train" : "run";
  if (evo_sweep_run_state_in(s, i, out) == EVO_SWEEP_RUN_RESUMABLE) {
    r->argv[r->argc++] = "--resume";
  } else {
    const char *sets[EVO_CLI_MAX_SETS];
    int n = evo_sweep_run_sets(s, i, sets, EVO_CLI_MAX_SETS);
    if (n > EVO_CLI_MAX_SETS) return evo_cli_fail("sweep", EVO_CLI_USAGE, "more than %d overrides", EVO_CLI_MAX_SETS);
    r->argv[r->argc++] = (char *)evo_sweep_base(s);
    for (int k = 0; k < n; k++) r->argv[r->argc++] = "--set", r->argv[r->argc++] = (char *)sets[k];
    r->argv[r->argc++] = "--out";
  }
  r->argv[r->argc++] = r->dir;
  if (quiet) r->argv[r->argc++] = "--quiet";
  if (device) r->argv[r->argc++] = "--device", r->argv[r->argc++] = (char *)device;
  r->argv[r->argc] = NULL;
  return EVO_CLI_OK;
}

/* results.csv, and the best run on stderr (or nothing when quiet). */
static void report(const evo_sweep *s, const sweep_args *a, const char *out) {
  const bool quiet = a->quiet;
  int done, best;
  if (evo_sweep_write_results(s, out, a->maximize, &done, &best)) {
    fprintf(stderr, "evoc sweep: %s\n", evo_last_error());
    return;
  }
  evo_status plotted = evo_sweep_plot(s, out, a->train, a->objective);
  if (quiet) return;
  if (plotted && plotted != EVO_STATUS_UNSUPPORTED) fprintf(stderr, "evoc sweep: no sweep.png: %s\n", evo_last_error());
  fprintf(stderr, "%s/results.csv%s: %d of %d runs finished", out, plotted ? "" : " and sweep.png", done,
          evo_sweep_count(s));
  if (best >= 0) fprintf(stderr, "; best test %s: %s", a->train ? "accuracy" : "score", evo_sweep_run_name(s, best));
  fputc('\n', stderr);
}

static int run_one(const evo_sweep *s, const sweep_args *a, const char *out) {
  if (a->index >= evo_sweep_count(s))
    return evo_cli_fail("sweep", EVO_CLI_USAGE, "--index %d: the sweep has %d runs (0..%d)", a->index,
                        evo_sweep_count(s), evo_sweep_count(s) - 1);
  if (evo_sweep_run_state_in(s, a->index, out) == EVO_SWEEP_RUN_DONE) {
    if (!a->quiet) fprintf(stderr, "%s/%s already finished\n", out, evo_sweep_run_name(s, a->index));
    return EVO_CLI_OK;
  }
  int rc = check_runs(s, out, a->index, a->train);
  run_argv r;
  if (!rc) rc = build_argv(s, a->index, a, out, a->device, a->quiet, &r);
  if (!rc) rc = a->train ? evo_cli_train(r.argc, r.argv) : evo_cli_run(r.argc, r.argv);
  report(s, a, out);
  return rc;
}

/* ---------------------------------------------------------------- the scheduler */

typedef struct {
  pid_t pid;
  int run;
  const char *device;
} job;

static pid_t launch(const char *self, const evo_sweep *s, const sweep_args *a, int i, const char *out,
                    const char *device, int threads) {
  run_argv r;
  if (build_argv(s, i, a, out, device, true, &r)) return -1;
  char log[4400];
  snprintf(log, sizeof log, "%s/logs/%s.log", out, evo_sweep_run_name(s, i));
  fflush(stdout), fflush(stderr);
  pid_t pid = fork();
  if (pid != 0) return pid;
  /* the child: its own process group, so a Ctrl-C reaches it once (forwarded by the sweep), not twice */
  setpgid(0, 0);
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0666);
  if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) _exit(EVO_CLI_FAILED);
  close(fd);
  char nt[16];
  snprintf(nt, sizeof nt, "%d", threads);
  if (!getenv("OMP_NUM_THREADS")) setenv("OMP_NUM_THREADS", nt, 1);
  char *argv[EVO_CLI_MAX_SETS * 2 + 20];
  argv[0] = "evoc";
  for (int k = 0; k <= r.argc; k++) argv[k + 1] = r.argv[k];
  execv(self, argv);
  dprintf(STDERR_FILENO, "evoc sweep: cannot start %s: %s\n", self, strerror(errno));
  _exit(EVO_CLI_FAILED);
}

static int run_all(const evo_sweep *s, const sweep_args *a, const char *out) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return evo_cli_fail("sweep", EVO_CLI_FAILED, "cannot find the evoc executable (/proc/self/exe)");
  self[n] = 0;
  char logs[4300];
  snprintf(logs, sizeof logs, "%s/logs", out);
  if (evo_run_mkdirs(logs)) return evo_cli_fail("sweep", EVO_CLI_FAILED, "%s", evo_last_error());
  /* devices, handed out in turn; jobs default to one per device */
  char devbuf[1024];
  const char *devs[64];
  int n_dev = 0;
  char gpu_names[64][16];
  if (a->devices && !strcmp(a->devices, "gpus")) { /* every usable GPU here */
    int count = evo_cuda_device_count();
    if (count < 1)
      return evo_cli_fail("sweep", EVO_CLI_USAGE, "--devices gpus: no usable GPU here; drop --devices (and use "
                          "--jobs N) to run on the CPU");
    for (; n_dev < count && n_dev < 64; n_dev++) {
      snprintf(gpu_names[n_dev], sizeof gpu_names[n_dev], "cuda:%d", n_dev);
      devs[n_dev] = gpu_names[n_dev];
    }
  } else {
    snprintf(devbuf, sizeof devbuf, "%s", a->devices ? a->devices : "");
    for (char *tok = strtok(devbuf, ","); tok && n_dev < 64; tok = strtok(NULL, ",")) devs[n_dev++] = tok;
  }
  const int jobs = a->jobs > 0 ? a->jobs : n_dev > 0 ? n_dev : 1;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  const int threads = cores > jobs ? (int)(cores / jobs) : 1;
  job *running = calloc((size_t)jobs, sizeof *running);
  if (!running) return evo_cli_fail("sweep", EVO_CLI_FAILED, "out of memory");
  volatile sig_atomic_t *stop = evo_cli_stop_flag();
  evo_cli_catch_signals();
  int next = 0, active = 0, failed = 0, forwarded = 0, started = 0;
  const int total = evo_sweep_count(s);
  for (;;) {
    while (!*stop && active < jobs && next < total) {
      int i = next++;
      if (evo_sweep_run_state_in(s, i, out) == EVO_SWEEP_RUN_DONE) continue;
      int slot = 0;
      while (running[slot].pid) slot++;
      const char *dev = n_dev ? devs[started % n_dev] : NULL;
      pid_t pid = launch(self, s, a, i, out, dev, threads);
      if (pid < 0) {
        failed++;
        continue;
      }
      running[slot] = (job){pid, i, dev};
      active++, started++;
      if (!a->quiet)
        fprintf(stderr, "[%d/%d] %s started%s%s\n", i + 1, total, evo_sweep_run_name(s, i), dev ? " on " : "",
                dev ? dev : "");
    }
    if (!active) break;
    if (*stop && !forwarded) { /* interrupt the runs: each writes a checkpoint and exits */
      for (int j = 0; j < jobs; j++)
        if (running[j].pid) kill(running[j].pid, SIGINT);
      forwarded = 1;
    }
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int j = 0; j < jobs; j++) {
      if (running[j].pid != pid) continue;
      int i = running[j].run, code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      running[j].pid = 0, active--;
      if (code != EVO_CLI_OK && code != EVO_CLI_INTERRUPTED) failed++;
      if (a->quiet)
        printf("{\"index\":%d,\"name\":\"%s\",\"exit\":%d}\n", i, evo_sweep_run_name(s, i), code), fflush(stdout);
      else if (code == EVO_CLI_OK || code == EVO_CLI_INTERRUPTED)
        fprintf(stderr, "[%d/%d] %s %s: %s/logs/%s.log\n", i + 1, total, evo_sweep_run_name(s, i),
                code == EVO_CLI_OK ? "finished" : "interrupted", out, evo_sweep_run_name(s, i));
      else
        fprintf(stderr, "[%d/%d] %s FAILED (exit %d): see %s/logs/%s.log\n", i + 1, total, evo_sweep_run_name(s, i),
                code, out, evo_sweep_run_name(s, i));
    }
  }
  free(running);
  report(s, a, out);
  if (*stop) return EVO_CLI_INTERRUPTED;
  return failed ? EVO_CLI_FAILED : EVO_CLI_OK;
}

int evo_cli_sweep(int argc, char **argv) {
  sweep_args a;
  int rc = parse(argc, argv, &a);
  if (rc) return rc < 0 ? EVO_CLI_OK : rc;
  evo_sweep *s;
  if (evo_sweep_load(a.file, &s)) return evo_cli_fail("sweep", EVO_CLI_USAGE, "%s", evo_last_error());
  if ((rc = read_kind(s, &a))) {
    evo_sweep_free(s);
    return rc;
  }
  char out[4200];
  snprintf(out, sizeof out, "%s", a.out ? a.out : "");
  if (!a.out) snprintf(out, sizeof out, "runs/%s", evo_sweep_name(s));
  if (a.list) {
    for (int i = 0; i < evo_sweep_count(s); i++) {
      const char *sets[EVO_CLI_MAX_SETS];
      int n = evo_sweep_run_sets(s, i, sets, EVO_CLI_MAX_SETS);
      printf("%d %s", i, evo_sweep_run_name(s, i));
      for (int k = 0; k < n && k < EVO_CLI_MAX_SETS; k++) printf(" %s", sets[k]);
      printf("\n");
    }
  } else if (evo_run_mkdirs(out)) {
    rc = evo_cli_fail("sweep", EVO_CLI_FAILED, "%s", evo_last_error());
  } else if (a.index >= 0) {
    rc = run_one(s, &a, out);
  } else if (!(rc = check_runs(s, out, -1, a.train))) {
    if (!a.quiet) fprintf(stderr, "sweep %s: %d runs in %s\n", evo_sweep_name(s), evo_sweep_count(s), out);
    rc = run_all(s, &a, out);
  }
  evo_sweep_free(s);
  return rc;
}
