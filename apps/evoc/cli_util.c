/* Shared pieces of the subcommands: option parsing, config loading with overrides, error printing. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"

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
