/* evoc eval: test saved parameters on the config's test task. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "evoc/gradtrain.h"
#include "evoc/ptree.h"
#include "evoc/run.h"
#include "evoc/trainer.h"

static const char eval_usage[] =
    "usage: evoc eval RUN_DIR|PARAMS.safetensors [--config CONFIG] [--episodes N] [--device D]\n"
    "                 [--set KEY=VALUE]... [--quiet]\n"
    "\n"
    "Mean test return (test accuracy for MNIST, -f for the functions task) of saved parameters over N test\n"
    "episodes, the same episodes the run's tests used (so RUN_DIR's best test score is reproduced). For a\n"
    "gradient-training run (`evoc train`: an optim section, no algo), the test-set accuracy and mean loss.\n"
    "\n"
    "  RUN_DIR          a run folder: its best.safetensors, with its config.yaml unless --config is given\n"
    "  PARAMS           a safetensors file with the policy's entries (config: --config, or config.yaml next\n"
    "                   to the file)\n"
    "  --episodes N     test episodes (default: the config's trainer.n_evaluations)\n"
    "  --device D       auto | cpu | cuda | cuda:N (same as --set device=D; parameters trained on one device\n"
    "                   evaluate on any other)\n"
    "  --set KEY=VALUE  override a config value (repeatable)\n"
    "  --quiet          print one JSON object\n";

/* A gradient-training config: the parameters' accuracy and mean loss over the whole test set, as its epochs test. */
static int eval_train(evo_config *cfg, const char *params, bool quiet) {
  evo_gradtrain *g;
  if (evo_gradtrain_new(cfg, NULL, &g)) return evo_cli_fail("eval", EVO_CLI_USAGE, "%s", evo_last_error());
  const evo_ptree *tree = evo_gradtrain_ptree(g);
  float *flat = malloc(sizeof(float) * (size_t)evo_ptree_size(tree));
  double acc = NAN, loss = NAN;
  evo_status st = flat ? evo_ptree_load(tree, flat, params) : evo_error(EVO_STATUS_OUT_OF_MEMORY, "out of memory");
  int rc = st ? evo_cli_fail("eval", EVO_CLI_USAGE, "%s", evo_last_error()) : EVO_CLI_OK;
  if (!rc && ((st = evo_gradtrain_set_params(g, flat)) || (st = evo_gradtrain_evaluate(g, &acc, &loss))))
    rc = evo_cli_fail("eval", EVO_CLI_FAILED, "%s", evo_last_error());
  if (!rc && quiet) printf("{\"test_acc\":%.17g,\"test_loss\":%.17g}\n", acc, loss);
  else if (!rc) printf("%s: test accuracy %.4f, test loss %.6g (gradient training)\n", params, acc, loss);
  free(flat);
  evo_gradtrain_free(g);
  return rc;
}

static bool is_dir(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int evo_cli_eval(int argc, char **argv) {
  const char *target = NULL, *config = NULL, *episodes_s = NULL, *device = NULL;
  const char *sets[EVO_CLI_MAX_SETS];
  int n_sets = 0;
  bool quiet = false;
  for (int i = 1; i < argc; i++) {
    const char *v;
    int r;
    if (evo_cli_is_help(argv[i])) {
      fputs(eval_usage, stdout);
      return EVO_CLI_OK;
    }
    if ((r = evo_cli_opt(argc, argv, &i, "--config", &v))) {
      if (r < 0) return EVO_CLI_USAGE;
      config = v;
    } else if ((r = evo_cli_opt(argc, argv, &i, "--episodes", &v))) {
      if (r < 0) return EVO_CLI_USAGE;
      episodes_s = v;
    } else if ((r = evo_cli_opt(argc, argv, &i, "--device", &v))) {
      if (r < 0) return EVO_CLI_USAGE;
      device = v;
    } else if ((r = evo_cli_opt(argc, argv, &i, "--set", &v))) {
      if (r < 0) return EVO_CLI_USAGE;
      if (n_sets == EVO_CLI_MAX_SETS) return evo_cli_fail("eval", EVO_CLI_USAGE, "too many --set options");
      sets[n_sets++] = v;
    } else if (!strcmp(argv[i], "--quiet")) {
      quiet = true;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      fprintf(stderr, "evoc eval: unknown option '%s'\n\n%s", argv[i], eval_usage);
      return EVO_CLI_USAGE;
    } else if (!target) {
      target = argv[i];
    } else {
      fprintf(stderr, "evoc eval: unexpected argument '%s'\n\n%s", argv[i], eval_usage);
      return EVO_CLI_USAGE;
    }
  }
  if (!target) {
    fprintf(stderr, "evoc eval: missing RUN_DIR or PARAMS\n\n%s", eval_usage);
    return EVO_CLI_USAGE;
  }
  int episodes = 0;
  if (episodes_s && evo_cli_int("eval", "--episodes", episodes_s, 1, 1 << 24, &episodes)) return EVO_CLI_USAGE;
  char params[4200], cfg_path[4200];
  if (is_dir(target)) {
    if (evo_run_path(params, sizeof params, target, "best.safetensors") ||
        evo_run_path(cfg_path, sizeof cfg_path, target, "config.yaml"))
      return evo_cli_fail("eval", EVO_CLI_USAGE, "%s", evo_last_error());
  } else {
    snprintf(params, sizeof params, "%s", target);
    const char *slash = strrchr(target, '/');
    snprintf(cfg_path, sizeof cfg_path, "%.*s%sconfig.yaml", slash ? (int)(slash - target) : 0, target,
             slash ? "/" : "");
  }
  if (config) snprintf(cfg_path, sizeof cfg_path, "%s", config);
  if (!evo_run_file_exists(params))
    return evo_cli_fail("eval", EVO_CLI_USAGE, "%s: no such parameter file%s", params,
                        is_dir(target) ? " (no test of the run has scored yet)" : "");
  if (!config && !evo_run_file_exists(cfg_path))
    return evo_cli_fail("eval", EVO_CLI_USAGE, "no config: %s does not exist; give --config CONFIG", cfg_path);
  evo_config *cfg;
  int rc = evo_cli_load_config("eval", cfg_path, sets, n_sets, device, &cfg);
  if (rc) return rc;
  if (evo_cli_is_train_config(cfg)) {
    rc = episodes_s ? evo_cli_fail("eval", EVO_CLI_USAGE, "--episodes: a gradient-training run tests on its whole "
                                   "test set") : eval_train(cfg, params, quiet);
    evo_config_free(cfg);
    return rc;
  }
  evo_trainer_params tp = evo_trainer_default_params();
  tp.note = quiet ? NULL : evo_cli_note;
  evo_trainer *t;
  if (evo_trainer_new(cfg, &tp, &t)) {
    rc = evo_cli_fail("eval", EVO_CLI_USAGE, "%s", evo_last_error());
    evo_config_free(cfg);
    return rc;
  }
  double score;
  evo_status st = evo_trainer_eval(t, params, episodes, &score);
  if (st == EVO_STATUS_IO || st == EVO_STATUS_FORMAT || st == EVO_STATUS_NOT_FOUND) {
    rc = evo_cli_fail("eval", EVO_CLI_USAGE, "%s", evo_last_error());
  } else if (st) {
    rc = evo_cli_fail("eval", EVO_CLI_FAILED, "%s", evo_last_error());
  } else {
    evo_trainer_summary s;
    evo_trainer_summary_get(t, &s);
    if (quiet) {
      if (isfinite(score)) {
        printf("{\"score\":%.17g", score);
        if (s.is_objective) printf(",\"objective\":%.17g", -score);
        printf("}\n");
      } else {
        printf("{\"score\":null}\n"); /* JSON has no NaN: a policy with non-finite actions */
      }
    } else {
      printf("%s: test score %.6g", params, score);
      if (s.is_objective) printf(" (objective %.6g)", -score);
      printf(" on %s\n", s.task);
    }
    rc = EVO_CLI_OK;
  }
  evo_trainer_free(t);
  evo_config_free(cfg);
  return rc;
}
