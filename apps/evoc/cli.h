/* The evoc command line: argument parsing and printing only; the work is in the library (trainer.h, run.h). */
#ifndef EVOC_CLI_H
#define EVOC_CLI_H
#include <stdbool.h>
#include "evoc/config.h"

/* Exit codes (DESIGN.md §7). */
enum { EVO_CLI_OK = 0, EVO_CLI_FAILED = 1, EVO_CLI_USAGE = 2, EVO_CLI_INTERRUPTED = 130 };

#define EVO_CLI_MAX_SETS 256

int evo_cli_run(int argc, char **argv);
int evo_cli_check(int argc, char **argv);
int evo_cli_eval(int argc, char **argv);
int evo_cli_list(int argc, char **argv);

/* argv[*i] is "--name VALUE" or "--name=VALUE": stores VALUE, advances *i past it and returns 1; returns 0 when
   argv[*i] is another argument; -1 (after printing the error) when the value is missing. */
int evo_cli_opt(int argc, char **argv, int *i, const char *name, const char **value);
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
/* Prints a trainer note to stderr ("note: ..."). */
void evo_cli_note(const char *msg, void *user);

#endif
