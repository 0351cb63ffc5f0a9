/* evoc run and evoc check. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "evoc/run.h"
#include "evoc/trainer.h"

static const char run_usage[] =
    "usage: evoc run CONFIG [--set KEY=VALUE]... [--out DIR] [--device D] [--comm C | --ranks N] [--quiet]\n"
    "       evoc run [CONFIG] --resume DIR [--set KEY=VALUE]... [--device D] [--comm C | --ranks N] [--quiet]\n"
    "\n"
    "Trains with the evolution strategy of CONFIG (see configs/ and `evoc list`) and writes a run folder:\n"
    "config.yaml (resolved), metrics.jsonl, summary.json, best.safetensors, learning_curve.png, checkpoints/.\n"
    "\n"
    "  --set KEY=VALUE  override a config value, e.g. --set algo.pop_size=128 (repeatable)\n"
    "  --out DIR        run folder (default runs/<config name>-<YYYYmmdd-HHMMSS>)\n"
    "  --resume DIR     continue the run in DIR from its latest checkpoint, bit-identically; the config is\n"
    "                   DIR/config.yaml unless CONFIG is given (e.g. --set trainer.max_iter=2000 to extend)\n"
    "  --device D       auto | cpu | cuda | cuda:N (same as --set device=D); the algorithm runs on the host,\n"
    "                   so a run may resume on another device\n"
    "  --quiet          no progress line: JSON lines on stdout (metrics, then the summary)\n"
    "  --comm C         auto | local | mpi | nccl: how processes share the population (default auto: mpi when\n"
    "                   started by mpirun or srun, else local). `mpirun -np 4 evoc run CONFIG` splits every\n"
    "                   generation and test over 4 processes; rank 0 writes the run folder and prints; on the\n"
    "                   CPU the run equals a one-process run bit for bit. nccl: the ranks exchange through\n"
    "                   their GPUs (one GPU each), under mpirun or with --ranks\n"
    "  --ranks N        N ranks inside this process, one thread each, sharing the population as MPI ranks do\n"
    "                   (with GPUs, device auto gives rank r GPU r: one process drives them all); the CPU cores\n"
    "                   are split between the ranks; add --comm nccl to exchange through NCCL\n"
    "\n"
    "Ctrl-C (SIGINT) or SIGTERM writes a checkpoint and exits with 130; resume with --resume DIR.\n"
    "Exit codes: 0 ok, 1 run failed, 2 bad usage or config, 130 interrupted.\n";

static const char check_usage[] =
    "usage: evoc check CONFIG [--set KEY=VALUE]... [--print]\n"
    "\n"
    "Validates CONFIG as `evoc run` would (every key, the task's data, the plugin, the policy's shapes, the\n"
    "algorithm's options) without running or writing anything; a gradient-training config (an optim section,\n"
    "no algo) as `evoc train` would. Exit code 0 when valid, 2 with \"file:line:col: message\" otherwise.\n"
    "\n"
    "  --set KEY=VALUE  override a config value (repeatable)\n"
    "  --print          print the resolved config (every default filled in) to stdout\n";

int evo_cli_parse(const char *cmd, const char *usage, int argc, char **argv, bool is_run, evo_cli_args *a) {
  memset(a, 0, sizeof *a);
  for (int i = 1; i < argc; i++) {
    const char *v = NULL;
    int r;
    if (evo_cli_is_help(argv[i])) {
      fputs(usage, stdout);
      return -1;
    }
    if ((r = evo_cli_opt(argc, argv, &i, "--set", &v))) {
      if (r < 0) return EVO_CLI_USAGE;
      if (a->n_sets == EVO_CLI_MAX_SETS) return evo_cli_fail(cmd, EVO_CLI_USAGE, "too many --set options");
      a->sets[a->n_sets++] = v;
    } else if (is_run && (r = evo_cli_opt(argc, argv, &i, "--out", &v))) {
      if (r < 0) return EVO_CLI_USAGE;
      a->out = v;
    } else if (is_run && (r = evo_cli_opt(argc, argv, &i, "--resume", &v))) {
      if (r < 0) return EVO_CLI_USAGE;
      a->resume = v;
    } else if (is_run && (r = evo_cli_opt(argc, argv, &i, "--device", &v))) {
      if (r < 0) return EVO_CLI_USAGE;
      a->device = v;
    } else if (is_run && (r = evo_cli_opt(argc, argv, &i, "--comm", &v))) {
      if (r < 0) return EVO_CLI_USAGE;
      a->comm = v;
    } else if (is_run && (r = evo_cli_opt(argc, argv, &i, "--ranks", &v))) {
      if (r < 0 || evo_cli_int(cmd, "--ranks", v, 1, 1024, &a->ranks)) return EVO_CLI_USAGE;
    } else if (is_run && !strcmp(argv[i], "--quiet")) {
      a->quiet = true;
    } else if (!is_run && !strcmp(argv[i], "--print")) {
      a->print = true;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      fprintf(stderr, "evoc %s: unknown option '%s'\n\n%s", cmd, argv[i], usage);
      return EVO_CLI_USAGE;
    } else if (!a->config) {
      a->config = argv[i];
    } else {
      fprintf(stderr, "evoc %s: unexpected argument '%s'\n\n%s", cmd, argv[i], usage);
      return EVO_CLI_USAGE;
    }
  }
  if (!a->config && !a->resume) {
    fprintf(stderr, "evoc %s: missing CONFIG\n\n%s", cmd, usage);
    return EVO_CLI_USAGE;
  }
  if (strcmp(cmd, "run") && (a->comm || a->ranks))
    return evo_cli_fail(cmd, EVO_CLI_USAGE, "--comm and --ranks are options of evoc run");
  if (a->resume && a->out && strcmp(a->resume, a->out))
    return evo_cli_fail(cmd, EVO_CLI_USAGE, "--resume continues in its own folder; drop --out");
  return 0;
}

/* ---------------------------------------------------------------- progress */

typedef struct {
  bool quiet, tty;
  double wall0, last_draw;
  int64_t evals0, iter0;
  bool started;
} progress_state;

static void fmt_num(char *buf, size_t cap, double v) {
  if (isnan(v)) snprintf(buf, cap, "-");
  else snprintf(buf, cap, "%.5g", v);
}

static void fmt_eta(char *buf, size_t cap, double s) {
  if (!isfinite(s) || s < 0) snprintf(buf, cap, "?");
  else if (s < 60) snprintf(buf, cap, "%.0fs", s);
  else if (s < 3600) snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
  else snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

static void on_progress(const evo_trainer_progress *p, void *user) {
  progress_state *ps = user;
  if (ps->quiet || !ps->tty) { /* scripts and logs: the metrics lines as they are written */
    if (p->metrics_line) printf("%s\n", p->metrics_line), fflush(stdout);
    return;
  }
  if (!ps->started) { /* rates count from this session's first iteration (a resumed run starts mid-way) */
    ps->started = true;
    ps->wall0 = p->wall_s, ps->evals0 = p->evaluations, ps->iter0 = p->iteration;
  }
  bool tested = p->tested;
  if (!tested && p->iteration != p->max_iter && p->wall_s - ps->last_draw < 0.1) return;
  ps->last_draw = p->wall_s;
  double dt = p->wall_s - ps->wall0;
  int64_t iters = p->iteration - ps->iter0;
  char best[32], mean[32], test[32], eta[32], rate[32];
  fmt_num(best, sizeof best, p->best);
  fmt_num(mean, sizeof mean, p->mean);
  fmt_num(test, sizeof test, p->best_test);
  fmt_eta(eta, sizeof eta, iters > 0 && dt > 0 ? dt / (double)iters * (double)(p->max_iter - p->iteration) : NAN);
  if (dt > 0) snprintf(rate, sizeof rate, "%.0f", (double)(p->evaluations - ps->evals0) / dt);
  else snprintf(rate, sizeof rate, "?");
  if (tested) { /* each test keeps its own line above the updating one */
    char t[32];
    fmt_num(t, sizeof t, p->test);
    fprintf(stderr, "\r\033[Kiter %lld: test %s (best %s)\n", (long long)p->iteration, t, test);
  }
  fprintf(stderr, "\r\033[Kiter %lld/%lld  best %s  mean %s  test %s  %s evals/s  ETA %s", (long long)p->iteration,
          (long long)p->max_iter, best, mean, test, rate, eta);
  fflush(stderr);
}

/* ,"key":value with JSON's null for NaN/Inf; %.17g reads back exactly. */
static void json_num(const char *key, double v) {
  if (isfinite(v)) printf(",\"%s\":%.17g", key, v);
  else printf(",\"%s\":null", key);
}

static void print_summary(const evo_trainer *t, const char *dir, bool quiet) {
  evo_trainer_summary s;
  evo_trainer_summary_get(t, &s);
  if (quiet) {
    printf("{\"out_dir\":\"%s\",\"iterations\":%lld,\"evaluations\":%lld,\"wall_s\":%.3f", dir,
           (long long)s.iterations, (long long)s.evaluations, s.wall_s);
    json_num("best_train_fitness", s.best_train_fitness);
    json_num("test_score", s.test_score);
    json_num("best_test_score", s.best_test_score);
    printf(",\"stopped_because\":\"%s\"", evo_trainer_stop_name(s.stopped_because));
    if (s.is_objective) {
      json_num("best_objective", s.best_objective);
      printf(",\"reached_target\":%s", s.reached_target ? "true" : "false");
    }
    printf("}\n");
    return;
  }
  printf("%s: %lld iterations, %lld evaluations, %.1f s, stopped because %s\n", dir, (long long)s.iterations,
         (long long)s.evaluations, s.wall_s, evo_trainer_stop_name(s.stopped_because));
  printf("  best train fitness %.6g, test score %.6g, best test score %.6g\n", s.best_train_fitness, s.test_score,
         s.best_test_score);
  if (s.is_objective)
    printf("  best objective %.6g (%s)\n", s.best_objective, s.reached_target ? "target reached" : "target not reached");
}

/* JSON strings need escaping only for quotes and backslashes in a path; refuse such names in quiet output. */
static const char *json_safe(const char *s) { return strpbrk(s, "\"\\") ? "(unprintable path)" : s; }

/* The run itself, on every rank; rank 0 alone prints (the trainer reports progress and notes on rank 0 only, and
   a failure on any rank reaches rank 0 through evo_comm_agree). */
static int run_with(const evo_cli_args *a, evo_comm *comm) {
  const bool lead = evo_comm_rank(comm) == 0;
  char out[4200];
  evo_config *cfg;
  int rc = evo_cli_open_run("run", a, &cfg, out, sizeof out);
  /* the default folder name has the time in it: every rank takes rank 0's */
  if (evo_comm_agree(comm, rc ? EVO_STATUS_INVALID_ARGUMENT : EVO_STATUS_OK) ||
      evo_comm_broadcast(comm, out, sizeof out, 0)) {
    if (!rc) evo_config_free(cfg);
    return rc ? rc : EVO_CLI_USAGE;
  }
  progress_state ps = {.quiet = a->quiet, .tty = isatty(STDERR_FILENO) != 0};
  evo_trainer_params tp = evo_trainer_default_params();
  tp.out_dir = out;
  tp.resume = a->resume != NULL;
  tp.progress = on_progress;
  tp.note = evo_cli_note;
  tp.user = &ps;
  tp.comm = comm;
  volatile sig_atomic_t *stop_signal = evo_cli_stop_flag();
  tp.interrupt = stop_signal;
  evo_trainer *t = NULL;
  evo_status st = evo_comm_agree(comm, evo_trainer_new(cfg, &tp, &t));
  if (!st) st = evo_trainer_open_dir(t);
  if (st) {
    rc = lead ? evo_cli_fail("run", EVO_CLI_USAGE, "%s", evo_last_error()) : EVO_CLI_USAGE;
    evo_trainer_free(t);
    evo_config_free(cfg);
    return rc;
  }
  if (!a->quiet && lead) {
    char ranks[64] = "";
    if (evo_comm_size(comm) > 1)
      snprintf(ranks, sizeof ranks, ", %d ranks over %s", evo_comm_size(comm), evo_comm_name(comm));
    fprintf(stderr, "%s %s (%lld parameters%s)\n", a->resume ? "resuming" : "run folder", out,
            (long long)evo_trainer_num_params(t), ranks);
  }
  evo_cli_catch_signals();
  st = evo_trainer_run(t);
  if (ps.tty && !a->quiet && lead) fputs("\r\033[K", stderr);
  if (st) {
    rc = lead ? evo_cli_fail("run", EVO_CLI_FAILED, "run failed: %s", evo_last_error()) : EVO_CLI_FAILED;
  } else {
    evo_trainer_summary s;
    evo_trainer_summary_get(t, &s);
    if (lead) print_summary(t, a->quiet ? json_safe(out) : out, a->quiet);
    rc = EVO_CLI_OK;
    if (s.stopped_because == EVO_TRAINER_INTERRUPTED) {
      if (lead)
        fprintf(stderr, "interrupted: checkpoint written at iteration %lld; continue with: evoc run --resume %s\n",
                (long long)s.iterations, out);
      rc = *stop_signal == SIGTERM ? 128 + SIGTERM : EVO_CLI_INTERRUPTED;
    }
  }
  evo_trainer_free(t);
  evo_config_free(cfg);
  return rc;
}

/* --ranks N: rank r > 0 on a thread of its own, rank 0 on the calling thread; each with its share of the cores. */
typedef struct {
  const evo_cli_args *a;
  evo_comm *comm;
  int threads, rc;
} rank_job;

static void *rank_main(void *p) {
  rank_job *j = p;
  omp_set_num_threads(j->threads); /* per thread: this rank's plans and task threads */
  j->rc = run_with(j->a, j->comm);
  return NULL;
}

static int run_threads(const evo_cli_args *a, bool nccl) {
  const int n = a->ranks;
  evo_comm **comms = calloc((size_t)n, sizeof *comms);
  rank_job *jobs = calloc((size_t)n, sizeof *jobs);
  pthread_t *tids = calloc((size_t)n, sizeof *tids);
  if (!comms || !jobs || !tids || (nccl ? evo_comm_nccl_threads_new(n, comms) : evo_comm_threads_new(n, comms))) {
    free(comms), free(jobs), free(tids);
    return evo_cli_fail("run", EVO_CLI_FAILED, "--ranks %d: %s", n, evo_last_error());
  }
  const int cores = omp_get_max_threads(), threads = cores > n ? cores / n : 1;
  int started = 1;
  for (int r = 0; r < n; r++) jobs[r] = (rank_job){a, comms[r], threads, EVO_CLI_FAILED};
  for (int r = 1; r < n; r++) {
    if (pthread_create(&tids[r], NULL, rank_main, &jobs[r])) {
      /* the ranks started so far wait for the others forever: nothing to do but say so and stop */
      fprintf(stderr, "evoc run: --ranks %d: cannot start the thread of rank %d\n", n, r);
      exit(EVO_CLI_FAILED);
    }
    started++;
  }
  rank_main(&jobs[0]);
  for (int r = 1; r < started; r++) pthread_join(tids[r], NULL);
  int rc = jobs[0].rc;
  for (int r = 0; r < n; r++) evo_comm_free(comms[r]);
  free(comms), free(jobs), free(tids);
  return rc;
}

int evo_cli_run(int argc, char **argv) {
  evo_cli_args a;
  int rc = evo_cli_parse("run", run_usage, argc, argv, true, &a);
  if (rc) return rc < 0 ? EVO_CLI_OK : rc;
  if (a.ranks > 0) {
    const bool nccl = a.comm && !strcmp(a.comm, "nccl");
    if ((a.comm && !nccl) || evo_comm_launched_by_mpi())
      return evo_cli_fail("run", EVO_CLI_USAGE, "--ranks runs ranks in this process: not with --comm %s or mpirun "
                          "(--comm nccl is the one that goes with it)", a.comm ? a.comm : "auto");
    return run_threads(&a, nccl);
  }
  evo_comm *comm;
  if (evo_comm_open(a.comm ? a.comm : "auto", &comm))
    return evo_cli_fail("run", EVO_CLI_USAGE, "--comm %s: %s", a.comm ? a.comm : "auto", evo_last_error());
  rc = run_with(&a, comm);
  evo_comm_free(comm);
  return rc;
}

int evo_cli_check(int argc, char **argv) {
  evo_cli_args a;
  int rc = evo_cli_parse("check", check_usage, argc, argv, false, &a);
  if (rc) return rc < 0 ? EVO_CLI_OK : rc;
  evo_config *cfg;
  if ((rc = evo_cli_load_config("check", a.config, a.sets, a.n_sets, NULL, &cfg))) return rc;
  if (evo_cli_is_train_config(cfg)) return evo_cli_train_check(&a, cfg); /* gradient training: evoc train's checks */
  evo_trainer_params tp = evo_trainer_default_params();
  tp.note = evo_cli_note;
  evo_trainer *t;
  if (evo_trainer_new(cfg, &tp, &t)) {
    rc = evo_cli_fail("check", EVO_CLI_USAGE, "%s", evo_last_error());
    evo_config_free(cfg);
    return rc;
  }
  evo_trainer_summary s;
  evo_trainer_summary_get(t, &s);
  if (a.print) {
    evo_config_write(cfg, stdout);
  } else {
    printf("%s: ok (task %s, policy %s with %lld parameters, algo %s)\n", a.config, s.task, s.policy,
           (long long)evo_trainer_num_params(t), s.algo);
  }
  evo_trainer_free(t);
  evo_config_free(cfg);
  return EVO_CLI_OK;
}
