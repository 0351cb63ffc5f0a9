/* Shared pieces of the subcommands: option parsing, config loading with overrides, the run folder, signals, error
   printing. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "evoc/run.h"

int evo_cli_int(const char *cmd, const char *opt, const char *v, long lo, long hi, int *out) {
  char *end;
  long n = strtol(v, &end, 10);
  if (!*v || *end || n < lo || n > hi)
    return evo_cli_fail(cmd, EVO_CLI_USAGE, "%s must be an integer in [%ld, %ld], got '%s'", opt, lo, hi, v);
  *out = (int)n;
  return 0;
}

int evo_cli_opt(int argc, char **argv, int *i, const char *name, const char **value) {
  const char *a = argv[*i];
  size_t n = strlen(name);
  if (strncmp(a, name, n) != 0) return 0;
  if (a[n] == '=') {
    *value = a + n + 1;
    return 1;
  }
  if (a[n] != '\0') return 0;
  if (*i + 1 >= argc) {
    fprintf(stderr, "evoc: %s needs a value\n", name);
    return -1;
  }
  *value = argv[++*i];
  return 1;
}

bool evo_cli_is_help(const char *arg) { return !strcmp(arg, "--help") || !strcmp(arg, "-h"); }

int evo_cli_fail(const char *cmd, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "evoc %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return code;
}

int evo_cli_load_config(const char *cmd, const char *path, const char *const *sets, int n_sets, const char *device,
                        evo_config **out) {
  *out = NULL;
  evo_config *c;
  if (evo_config_load(path, &c)) return evo_cli_fail(cmd, EVO_CLI_USAGE, "%s", evo_last_error());
  for (int k = 0; k < n_sets; k++)
    if (evo_config_set(c, sets[k])) {
      evo_config_free(c);
      return evo_cli_fail(cmd, EVO_CLI_USAGE, "--set %s: %s", sets[k], evo_last_error());
    }
  if (device) {
    char set[128];
    snprintf(set, sizeof set, "device=%s", device);
    if (evo_config_set(c, set)) {
      evo_config_free(c);
      return evo_cli_fail(cmd, EVO_CLI_USAGE, "--device %s: %s", device, evo_last_error());
    }
  }
  *out = c;
  return EVO_CLI_OK;
}

void evo_cli_note(const char *msg, void *user) {
  (void)user;
  fprintf(stderr, "note: %s\n", msg);
}

int evo_cli_open_run(const char *cmd, const evo_cli_args *a, evo_config **cfg, char *out, size_t cap) {
  char cfg_path[4200];
  int rc;
  *cfg = NULL;
  if (a->config) snprintf(cfg_path, sizeof cfg_path, "%s", a->config);
  else if (evo_run_path(cfg_path, sizeof cfg_path, a->resume, "config.yaml"))
    return evo_cli_fail(cmd, EVO_CLI_USAGE, "%s", evo_last_error());
  if (a->resume && !evo_run_file_exists(a->resume))
    return evo_cli_fail(cmd, EVO_CLI_USAGE, "--resume %s: no such run folder", a->resume);
  if ((rc = evo_cli_load_config(cmd, cfg_path, a->sets, a->n_sets, a->device, cfg))) return rc;
  /* the other command's config: say which command runs it (the sections' own errors would not) */
  const bool train = !strcmp(cmd, "train");
  const char *other = NULL;
  if (train && evo_cfg_get(evo_config_root(*cfg), "algo"))
    other = "an evolution config (it has an algo section): run it with `evoc run";
  else if (!train && evo_cli_is_train_config(*cfg))
    other = "a gradient-training config (an optim section and no algo): run it with `evoc train";
  if (other) {
    evo_config_free(*cfg);
    *cfg = NULL;
    return evo_cli_fail(cmd, EVO_CLI_USAGE, "%s is %s %s`", cfg_path, other, cfg_path);
  }
  if (a->resume || a->out) snprintf(out, cap, "%s", a->resume ? a->resume : a->out);
  else if (evo_run_default_dir(cfg_path, out, cap)) {
    evo_config_free(*cfg);
    *cfg = NULL;
    return evo_cli_fail(cmd, EVO_CLI_USAGE, "%s", evo_last_error());
  }
  return EVO_CLI_OK;
}

/* The signal that stopped us (0: none). A handler may only store to a volatile sig_atomic_t. */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

volatile sig_atomic_t *evo_cli_stop_flag(void) { return &stop_signal; }

void evo_cli_catch_signals(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}
