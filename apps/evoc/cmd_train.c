/* evoc train (gradient training, gradtrain.h) and `evoc check` on a gradient-training config. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "evoc/gradtrain.h"
#include "evoc/run.h"

static const char train_usage[] =
    "usage: evoc train CONFIG [--set KEY=VALUE]... [--out DIR] [--quiet]\n"
    "       evoc train [CONFIG] --resume DIR [--set KEY=VALUE]... [--quiet]\n"
    "\n"
    "Gradient training (the JAX/Flax MNIST tutorial's workflow): the policy network of CONFIG on an IDX image\n"
    "dataset, mean softmax cross-entropy, value_and_grad, an optimizer from `evoc list optimizers`, shuffled\n"
    "mini-batches, a test-set evaluation after every epoch. Transfer learning: init_from (a .safetensors file or a\n"
    "run folder), reinit and freeze (layer names). See configs/fashion_mnist_cnn_adam.yaml. Writes a run folder:\n"
    "config.yaml, metrics.jsonl, summary.json, best.safetensors (best test accuracy), checkpoints/.\n"
    "\n"
    "  --set KEY=VALUE  override a config value, e.g. --set optim.lr=3e-4 (repeatable)\n"
    "  --out DIR        run folder (default runs/<config name>-<YYYYmmdd-HHMMSS>)\n"
    "  --resume DIR     continue the run in DIR from its latest checkpoint, bit-identically; the config is\n"
    "                   DIR/config.yaml unless CONFIG is given (e.g. --set trainer.epochs=4 to extend)\n"
    "  --device D       auto | cpu | cuda | cuda:N (same as --set device=D; on a GPU the value_and_grad plan runs\n"
    "                   there, and so do the trained parameters and the optimizer but ClipUp)\n"
    "  --quiet          no progress line: JSON lines on stdout (metrics, then the summary)\n"
    "\n"
    "Ctrl-C (SIGINT) or SIGTERM writes a checkpoint and exits with 130; resume with --resume DIR.\n"
    "Exit codes: 0 ok, 1 training failed, 2 bad usage or config, 130 interrupted.\n";

bool evo_cli_is_train_config(evo_config *cfg) {
  evo_cfg *root = evo_config_root(cfg);
  return evo_cfg_kind_of(root) == EVO_CFG_MAP && evo_cfg_map_size(root) > 0 && !evo_cfg_get(root, "algo") &&
         evo_cfg_get(root, "optim");
}

/* ---------------------------------------------------------------- progress */

typedef struct {
  bool quiet, tty;
  double wall0, last_draw;
  int64_t step0;
  bool started;
} train_progress;

static void on_progress(const evo_gradtrain_progress *p, void *user) {
  train_progress *ps = user;
  if (ps->quiet || !ps->tty) { /* scripts and logs: the metrics lines as they are written */
    if (p->metrics_line) printf("%s\n", p->metrics_line), fflush(stdout);
    return;
  }
  if (!ps->started) { /* rates count from this session's first step (a resumed run starts mid-way) */
    ps->started = true;
    ps->wall0 = p->wall_s, ps->step0 = p->step - 1;
  }
  if (!p->tested && p->step != p->total_steps && p->wall_s - ps->last_draw < 0.2) return;
  ps->last_draw = p->wall_s;
  double dt = p->wall_s - ps->wall0, rate = dt > 0 ? (double)(p->step - ps->step0) / dt : NAN;
  double eta = rate > 0 ? (double)(p->total_steps - p->step) / rate : NAN;
  if (p->tested)
    fprintf(stderr, "\r\033[Kepoch %lld/%lld: test accuracy %.4f, test loss %.4f (best %.4f)\n", (long long)p->epoch,
            (long long)p->epochs, p->test_acc, p->test_loss, p->best_test_acc);
  fprintf(stderr, "\r\033[Kepoch %lld/%lld  step %lld/%lld  loss %.4f  %.1f steps/s  ETA %.0fs",
          (long long)(p->tested && p->epoch < p->epochs ? p->epoch + 1 : p->epoch), (long long)p->epochs,
          (long long)p->step_in_epoch, (long long)p->steps_per_epoch, p->loss, rate, isfinite(eta) ? eta : 0.0);
  fflush(stderr);
}

static void json_num(const char *key, double v) {
  if (isfinite(v)) printf(",\"%s\":%.17g", key, v);
  else printf(",\"%s\":null", key);
}

static void print_summary(const evo_gradtrain *t, const char *dir, bool quiet) {
  evo_gradtrain_summary s;
  evo_gradtrain_summary_get(t, &s);
  if (quiet) {
    printf("{\"out_dir\":\"%s\",\"epochs\":%lld,\"steps\":%lld", strpbrk(dir, "\"\\") ? "(unprintable path)" : dir,
           (long long)s.epochs_done, (long long)s.steps);
    json_num("wall_s", s.wall_s);
    json_num("seconds_per_epoch", s.seconds_per_epoch);
    json_num("train_loss", s.train_loss);
    json_num("test_acc", s.test_acc);
    json_num("best_test_acc", s.best_test_acc);
    printf(",\"stopped_because\":\"%s\"}\n", evo_gradtrain_stop_name(s.stopped_because));
    return;
  }
  printf("%s: %lld epochs, %lld steps, %.1f s (%.1f s per epoch), stopped because %s\n", dir,
         (long long)s.epochs_done, (long long)s.steps, s.wall_s, s.seconds_per_epoch,
         evo_gradtrain_stop_name(s.stopped_because));
  printf("  train loss %.4f, test accuracy %.4f, best test accuracy %.4f (epoch %lld)\n", s.train_loss, s.test_acc,
         s.best_test_acc, (long long)s.best_epoch);
}

/* ---------------------------------------------------------------- commands */

static int fail_free(const char *cmd, int code, evo_gradtrain *t, evo_config *cfg) {
  int rc = evo_cli_fail(cmd, code, "%s", evo_last_error());
  evo_gradtrain_free(t);
  evo_config_free(cfg);
  return rc;
}

int evo_cli_train(int argc, char **argv) {
  evo_cli_args a;
  int rc = evo_cli_parse("train", train_usage, argc, argv, true, &a);
  if (rc) return rc < 0 ? EVO_CLI_OK : rc;
  char out[4200];
  evo_config *cfg;
  if ((rc = evo_cli_open_run("train", &a, &cfg, out, sizeof out))) return rc;
  train_progress ps = {.quiet = a.quiet, .tty = isatty(STDERR_FILENO) != 0};
  evo_gradtrain_params tp = evo_gradtrain_default_params();
  tp.out_dir = out;
  tp.resume = a.resume != NULL;
  tp.progress = on_progress;
  tp.note = evo_cli_note;
  tp.user = &ps;
  volatile sig_atomic_t *stop_signal = evo_cli_stop_flag();
  tp.interrupt = stop_signal;
  evo_gradtrain *t = NULL;
  if (evo_gradtrain_new(cfg, &tp, &t) || evo_gradtrain_open_dir(t)) return fail_free("train", EVO_CLI_USAGE, t, cfg);
  evo_gradtrain_summary s;
  evo_gradtrain_summary_get(t, &s);
  if (!a.quiet)
    fprintf(stderr, "%s %s (%lld parameters, %lld trained; %lld steps per epoch)\n",
            a.resume ? "resuming" : "run folder", out, (long long)s.num_params, (long long)s.trainable_params,
            (long long)s.steps_per_epoch);
  evo_cli_catch_signals();
  evo_status st = evo_gradtrain_run(t);
  if (ps.tty && !a.quiet) fputs("\r\033[K", stderr);
  if (st) return fail_free("train", EVO_CLI_FAILED, t, cfg);
  print_summary(t, out, a.quiet);
  evo_gradtrain_summary_get(t, &s);
  rc = EVO_CLI_OK;
  if (s.stopped_because == EVO_GRADTRAIN_INTERRUPTED) {
    fprintf(stderr, "interrupted: checkpoint written at step %lld; continue with: evoc train --resume %s\n",
            (long long)s.steps, out);
    rc = *stop_signal == SIGTERM ? 128 + SIGTERM : EVO_CLI_INTERRUPTED;
  }
  evo_gradtrain_free(t);
  evo_config_free(cfg);
  return rc;
}

int evo_cli_train_check(const evo_cli_args *a, evo_config *cfg) {
  evo_gradtrain_params tp = evo_gradtrain_default_params();
  tp.note = evo_cli_note;
  evo_gradtrain *t;
  if (evo_gradtrain_new(cfg, &tp, &t)) return fail_free("check", EVO_CLI_USAGE, NULL, cfg);
  evo_gradtrain_summary s;
  evo_gradtrain_summary_get(t, &s);
  if (a->print)
    evo_config_write(cfg, stdout);
  else
    printf("%s: ok (gradient training: task %s, policy %s with %lld parameters (%lld trained), optim %s, %lld steps "
           "per epoch)\n", a->config, s.task, s.policy, (long long)s.num_params, (long long)s.trainable_params,
           s.optim, (long long)s.steps_per_epoch);
  evo_gradtrain_free(t);
  evo_config_free(cfg);
  return EVO_CLI_OK;
}
