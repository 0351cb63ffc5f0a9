/* The evoc command line: argument parsing and printing only; the work is in the library (trainer.h, run.h). */
#ifndef EVOC_CLI_H
#define EVOC_CLI_H
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include "evoc/config.h"

/* Exit codes (DESIGN.md §7). */
enum { EVO_CLI_OK = 0, EVO_CLI_FAILED = 1, EVO_CLI_USAGE = 2, EVO_CLI_INTERRUPTED = 130 };

#define EVO_CLI_MAX_SETS 256

/* Parsed arguments of run, train and check. */
typedef struct {
  const char *config, *out, *resume, *device, *comm;
  const char *sets[EVO_CLI_MAX_SETS];
  int n_sets;
  int ranks; /* run --ranks N: in-process ranks (0: not given) */
  bool quiet, print;
} evo_cli_args;

/* 0: parsed; -1: --help printed; else an exit code. is_run: the options of `run` and `train`, else those of
   `check`. */
int evo_cli_parse(const char *cmd, const char *usage, int argc, char **argv, bool is_run, evo_cli_args *a);

int evo_cli_run(int argc, char **argv);
int evo_cli_train(int argc, char **argv);
/* A gradient-training config (an `optim` section and no `algo`): `evoc check` validates it as `evoc train` would,
   taking over cfg. */
bool evo_cli_is_train_config(evo_config *cfg);
int evo_cli_train_check(const evo_cli_args *a, evo_config *cfg);
int evo_cli_check(int argc, char **argv);
int evo_cli_eval(int argc, char **argv);
int evo_cli_list(int argc, char **argv);
int evo_cli_sweep(int argc, char **argv);

/* argv[*i] is "--name VALUE" or "--name=VALUE": stores VALUE, advances *i past it and returns 1; returns 0 when
   argv[*i] is another argument; -1 (after printing the error) when the value is missing. */
int evo_cli_opt(int argc, char **argv, int *i, const char *name, const char **value);
/* An option's whole-number value in [lo, hi] into *out: 0, or the usage exit code after "evoc CMD: OPT must be an
   integer in [lo, hi], got 'v'". */
int evo_cli_int(const char *cmd, const char *opt, const char *v, long lo, long hi, int *out);
bool evo_cli_is_help(const char *arg);
/* Prints "evoc CMD: message" to stderr and returns code. */
int evo_cli_fail(const char *cmd, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Loads path and applies the --set assignments (and device when not NULL). Errors are printed; returns the exit
   code (EVO_CLI_OK on success). */
int evo_cli_load_config(const char *cmd, const char *path, const char *const *sets, int n_sets, const char *device,
                        evo_config **out);
/* run and train: loads the config (CONFIG, or DIR/config.yaml when resuming) with --set and --device applied and
   picks the run folder (--resume DIR, --out DIR or runs/<config name>-<time>) into out. Errors are printed;
   returns the exit code (EVO_CLI_OK on success). */
int evo_cli_open_run(const char *cmd, const evo_cli_args *a, evo_config **cfg, char *out, size_t cap);
/* The flag SIGINT and SIGTERM raise once caught (0, or the signal number), for the trainer to poll. */
volatile sig_atomic_t *evo_cli_stop_flag(void);
/* Catches SIGINT and SIGTERM from now on; a second one kills at once (every file is written atomically, so
   nothing is corrupted). */
void evo_cli_catch_signals(void);
/* Prints a trainer note to stderr ("note: ..."). */
void evo_cli_note(const char *msg, void *user);

#endif
