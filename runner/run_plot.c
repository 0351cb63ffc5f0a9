/* learning_curve.png from metrics.jsonl through gnuplot (the Debian gnuplot-nox package has the pngcairo terminal).
   The data go inline (datablocks) so that gnuplot needs nothing but its script; the script and the image are
   temp files until gnuplot succeeds. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "evoc/run.h"
#include "run_plot.h"

extern char **environ;

bool evo_run_have_gnuplot(void) {
  const char *path = getenv("PATH");
  if (!path) return false;
  char dir[4096];
  for (const char *p = path; *p;) {
    const char *end = strchr(p, ':');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n > 0 && n < sizeof dir - 16) {
      memcpy(dir, p, n);
      strcpy(dir + n, "/gnuplot");
      if (access(dir, X_OK) == 0) return true;
    }
    if (!end) break;
    p = end + 1;
  }
  return false;
}

static double num(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* gnuplot single-quoted strings cannot hold a quote; such names are refused rather than escaped. */
static bool plain(const char *s) { return !strchr(s, '\'') && !strchr(s, '\n'); }

/* Returns whether the point is drawable (a log scale has no place for f <= 0). */
static bool point_ok(double y, bool objective) { return isfinite(y) && (!objective || -y > 0); }

static void write_point(FILE *f, double x, double y, bool objective) {
  if (!point_ok(y, objective)) fprintf(f, "%.17g NaN\n", x);
  else fprintf(f, "%.17g %.9g\n", x, objective ? -y : y);
}

/* Writes the gnuplot script for the metrics lines of in. Returns the number of rows with a finite best (gnuplot
   refuses a plot without a single defined point). */
static int write_script(FILE *in, FILE *f, const char *png, const char *title, bool objective) {
  char *line = NULL;
  size_t cap = 0;
  int rows = 0, tests = 0;
  /* one pass per datablock keeps memory flat however long the run */
  static const char *const blocks[] = {"best", "mean", "min", "test"};
  for (int b = 0; b < 4; b++) {
    rewind(in);
    fprintf(f, "$%s << EOD\n", blocks[b]);
    while (getline(&line, &cap, in) > 0) {
      cJSON *o = cJSON_Parse(line);
      if (!o) continue;
      double it = num(o, "iter"), y = num(o, blocks[b]);
      if (b == 0 && point_ok(y, objective)) rows++;
      if (b == 3 && point_ok(y, objective)) tests++;
      if (b < 3 || point_ok(y, objective)) write_point(f, it, y, objective);
      cJSON_Delete(o);
    }
    fprintf(f, "EOD\n");
  }
  free(line);
  fprintf(f,
          "set terminal pngcairo size 960,600 noenhanced font ',10'\n"
          "set output '%s'\n"
          "set title '%s'\n"
          "set xlabel 'iteration'\nset ylabel '%s'\n"
          "set grid\nset key %s\n%s",
          png, title, objective ? "objective (log scale)" : "fitness / test score",
          objective ? "top right" : "bottom right", objective ? "set logscale y\n" : "");
  /* With the sign flipped for objectives, the training "best" is the smallest value. */
  fprintf(f,
          "plot $%s using 1:2 with lines lc rgb '#9ecae1' title '%s', "
          "$mean using 1:2 with lines lw 2 lc rgb '#3182bd' title 'mean', "
          "$best using 1:2 with lines lw 2 lc rgb '#e6550d' title '%s'%s\n",
          "min", objective ? "worst" : "min", "best (train)",
          tests > 0 ? ", $test using 1:2 with linespoints pt 7 lc rgb '#31a354' title 'test'" : "");
  return rows;
}

/* Gradient runs (evoc train): training loss per logged step, test accuracy at epoch ends on the right axis. */
static int write_script_grad(FILE *in, FILE *f, const char *png, const char *title) {
  char *line = NULL;
  size_t cap = 0;
  int rows = 0;
  static const char *const blocks[] = {"loss", "test_acc"};
  for (int b = 0; b < 2; b++) {
    rewind(in);
    fprintf(f, "$%s << EOD\n", blocks[b]);
    while (getline(&line, &cap, in) > 0) {
      cJSON *o = cJSON_Parse(line);
      if (!o) continue;
      double x = num(o, "step"), y = num(o, blocks[b]);
      if (isfinite(x) && isfinite(y)) fprintf(f, "%.17g %.9g\n", x, y), rows += b == 0;
      cJSON_Delete(o);
    }
    fprintf(f, "EOD\n");
  }
  free(line);
  fprintf(f,
          "set terminal pngcairo size 960,600 noenhanced font ',10'\n"
          "set output '%s'\nset title '%s'\nset xlabel 'step'\nset ylabel 'training loss'\n"
          "set y2label 'test accuracy'\nset ytics nomirror\nset y2tics\nset grid\nset key center right\n"
          "plot $loss using 1:2 with lines lw 2 lc rgb '#3182bd' title 'loss (train)', "
          "$test_acc using 1:2 axes x1y2 with linespoints pt 7 lc rgb '#31a354' title 'test accuracy'\n",
          png, title);
  return rows;
}

/* Runs gnuplot on script (then removes it) and, when it drew tmp_png, renames that to png. */
evo_status evo_run_gnuplot(const char *script, const char *tmp_png, const char *png) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  char *argv[] = {"gnuplot", (char *)script, NULL};
  pid_t pid;
  int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  if (rc == 0)
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  unlink(script);
  if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || evo_run_file_size(tmp_png) <= 0) {
    unlink(tmp_png);
    return evo_error(EVO_STATUS_IO, "gnuplot failed to draw %s", png);
  }
  if (rename(tmp_png, png) != 0) {
    unlink(tmp_png);
    return evo_error(EVO_STATUS_IO, "cannot rename %s to %s: %s", tmp_png, png, strerror(errno));
  }
  return EVO_STATUS_OK;
}

static evo_status plot(const char *dir, const char *title, bool objective, bool grad) {
  if (!evo_run_have_gnuplot()) return evo_error(EVO_STATUS_UNSUPPORTED, "gnuplot not found in PATH");
  char metrics[4200], png[4200], tmp_png[4300], script[4300];
  evo_status st = evo_run_path(metrics, sizeof metrics, dir, "metrics.jsonl");
  if (!st) st = evo_run_path(png, sizeof png, dir, "learning_curve.png");
  if (st) return st;
  snprintf(tmp_png, sizeof tmp_png, "%s.tmp.%ld", png, (long)getpid());
  snprintf(script, sizeof script, "%s/.learning_curve.gp.%ld", dir, (long)getpid());
  if (!plain(tmp_png) || !plain(title))
    return evo_error(EVO_STATUS_UNSUPPORTED, "cannot plot into %s: quotes in the path or title", dir);
  FILE *in = fopen(metrics, "r");
  if (!in) return evo_error(EVO_STATUS_IO, "cannot read %s: %s", metrics, strerror(errno));
  FILE *f = fopen(script, "w");
  if (!f) {
    fclose(in);
    return evo_error(EVO_STATUS_IO, "cannot write %s: %s", script, strerror(errno));
  }
  int rows = grad ? write_script_grad(in, f, tmp_png, title) : write_script(in, f, tmp_png, title, objective);
  fclose(in);
  if (fclose(f) != 0) {
    unlink(script);
    return evo_error(EVO_STATUS_IO, "cannot write %s", script);
  }
  if (rows == 0) {
    unlink(script);
    return EVO_STATUS_OK; /* nothing to draw yet */
  }
  return evo_run_gnuplot(script, tmp_png, png);
}

evo_status evo_run_plot(const char *dir, const char *title, bool objective) { return plot(dir, title, objective, false); }
evo_status evo_run_plot_grad(const char *dir, const char *title) { return plot(dir, title, false, true); }
