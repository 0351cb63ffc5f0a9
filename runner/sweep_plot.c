/* sweep.png: every run's test curve in one image, the sweep's learning curves side by side (gnuplot, as each run's
   learning_curve.png). Evolution runs plot the test score by iteration (an objective on a log scale, as their own
   images do), gradient runs the test accuracy by step. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "evoc/run.h"
#include "evoc/sweep.h"
#include "run_plot.h"

/* One run's test points as a datablock; returns how many there were. x/y: the metrics keys ("iter"/"test" or
   "step"/"test_acc"); objective: fitness is -f, drawn as f (and only where f > 0, for the log scale). */
static int datablock(FILE *f, int i, const char *metrics, const char *x, const char *y, int objective) {
  FILE *in = fopen(metrics, "r");
  if (!in) return 0;
  char *line = NULL;
  size_t cap = 0;
  int n = 0;
  fprintf(f, "$r%d << EOD\n", i);
  while (getline(&line, &cap, in) > 0) {
    cJSON *o = cJSON_Parse(line);
    const cJSON *vx = cJSON_GetObjectItemCaseSensitive(o, x), *vy = cJSON_GetObjectItemCaseSensitive(o, y);
    if (cJSON_IsNumber(vx) && cJSON_IsNumber(vy) && isfinite(vy->valuedouble) && (!objective || vy->valuedouble < 0))
      fprintf(f, "%.17g %.9g\n", vx->valuedouble, objective ? -vy->valuedouble : vy->valuedouble), n++;
    cJSON_Delete(o);
  }
  fprintf(f, "EOD\n");
  free(line);
  fclose(in);
  return n;
}

evo_status evo_sweep_plot(const evo_sweep *s, const char *dir, int grad, int objective) {
  if (!evo_run_have_gnuplot()) return evo_error(EVO_STATUS_UNSUPPORTED, "gnuplot not found in PATH");
  char png[4200], tmp_png[4300], script[4300], metrics[4400];
  evo_status st = evo_run_path(png, sizeof png, dir, "sweep.png");
  if (st) return st;
  snprintf(tmp_png, sizeof tmp_png, "%s.tmp.%ld", png, (long)getpid());
  snprintf(script, sizeof script, "%s/.sweep.gp.%ld", dir, (long)getpid());
  if (strpbrk(tmp_png, "'\n") || strpbrk(evo_sweep_name(s), "'\n"))
    return evo_error(EVO_STATUS_UNSUPPORTED, "cannot plot into %s: quotes in the path or name", dir);
  FILE *f = fopen(script, "w");
  if (!f) return evo_error(EVO_STATUS_IO, "cannot write %s: %s", script, strerror(errno));
  const int n = evo_sweep_count(s);
  int *has = calloc((size_t)n, sizeof *has), drawn = 0;
  for (int i = 0; has && i < n; i++) {
    snprintf(metrics, sizeof metrics, "%s/%s/metrics.jsonl", dir, evo_sweep_run_name(s, i));
    has[i] = datablock(f, i, metrics, grad ? "step" : "iter", grad ? "test_acc" : "test", objective) > 0;
    drawn += has[i];
  }
  fprintf(f, "set terminal pngcairo size 1100,650 noenhanced font ',10'\nset output '%s'\nset title 'sweep %s: %d of %d "
          "runs'\nset xlabel '%s'\nset ylabel '%s'\nset grid\nset key %s\n%s", tmp_png, evo_sweep_name(s), drawn, n,
          grad ? "step" : "iteration", grad ? "test accuracy" : objective ? "test objective (log scale)" : "test score",
          drawn <= 24 ? "outside right" : "off", objective && !grad ? "set logscale y\n" : "");
  const char *sep = "plot ";
  for (int i = 0; has && i < n; i++)
    if (has[i]) fprintf(f, "%s$r%d using 1:2 with linespoints pt 7 ps 0.5 title '%s'", sep, i, evo_sweep_run_name(s, i)),
                   sep = ", ";
  fprintf(f, "\n");
  const int oom = !has;
  free(has);
  if (fclose(f) != 0 || oom) {
    unlink(script);
    return evo_error(oom ? EVO_STATUS_OUT_OF_MEMORY : EVO_STATUS_IO, "cannot write %s", script);
  }
  if (drawn == 0) {
    unlink(script);
    return EVO_STATUS_OK; /* no test yet */
  }
  return evo_run_gnuplot(script, tmp_png, png);
}
