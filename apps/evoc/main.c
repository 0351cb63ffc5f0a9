/* evoc: neuroevolution from a YAML config. `evoc SUBCOMMAND --help` for each subcommand. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const char usage[] =
    "usage: evoc SUBCOMMAND [ARGS]\n"
    "\n"
    "  run CONFIG      train with an evolution strategy; writes a run folder (runs/<config>-<time>/)\n"
    "  train CONFIG    gradient training (value_and_grad + an optimizer, mini-batches, epochs); same run folder\n"
    "  eval RUN_DIR    test saved parameters (RUN_DIR/best.safetensors or a .safetensors file)\n"
    "  list            built-in tasks, policies, algorithms (options, defaults) and optimizers\n"
    "  check CONFIG    validate a config without running it\n"
    "  sweep SWEEP     many runs of one config over a grid of overrides, N at a time over devices (or one per\n"
    "                  Slurm array task); gathers results.csv\n"
    "\n"
    "`evoc SUBCOMMAND --help` describes each one. Exit codes: 0 ok, 1 run failed, 2 bad usage or config,\n"
    "130 interrupted (after writing a checkpoint).\n";

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage, stderr);
    return EVO_CLI_USAGE;
  }
  const char *cmd = argv[1];
  if (evo_cli_is_help(cmd) || !strcmp(cmd, "help")) {
    fputs(usage, stdout);
    return EVO_CLI_OK;
  }
  if (!strcmp(cmd, "--version")) {
    puts("evoc 0.1.0");
    return EVO_CLI_OK;
  }
  if (!strcmp(cmd, "run")) return evo_cli_run(argc - 1, argv + 1);
  if (!strcmp(cmd, "check")) return evo_cli_check(argc - 1, argv + 1);
  if (!strcmp(cmd, "eval")) return evo_cli_eval(argc - 1, argv + 1);
  if (!strcmp(cmd, "list")) return evo_cli_list(argc - 1, argv + 1);
  if (!strcmp(cmd, "train")) return evo_cli_train(argc - 1, argv + 1);
  if (!strcmp(cmd, "sweep")) return evo_cli_sweep(argc - 1, argv + 1);
  fprintf(stderr, "evoc: unknown subcommand '%s'\n\n%s", cmd, usage);
  return EVO_CLI_USAGE;
}
