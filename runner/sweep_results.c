/* A sweep's runs on disk: each run's state from its files, and results.csv gathered from their summary.json. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/run.h"
#include "evoc/sweep.h"

/* dir/<run name>/<file> into buf; false when it does not fit. */
static int run_file(char *buf, size_t cap, const evo_sweep *s, int i, const char *dir, const char *file) {
  int w = snprintf(buf, cap, "%s/%s/%s", dir, evo_sweep_run_name(s, i), file);
  return w >= 0 && (size_t)w < cap;
}

/* summary.json of run i, parsed; NULL when absent or unreadable. */
static cJSON *read_summary(const evo_sweep *s, int i, const char *dir) {
  char path[4400];
  if (!run_file(path, sizeof path, s, i, dir, "summary.json")) return NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char buf[1 << 14];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return cJSON_Parse(buf);
}

static int has_checkpoint(const evo_sweep *s, int i, const char *dir) {
  char path[4400];
  if (!run_file(path, sizeof path, s, i, dir, "checkpoints")) return 0;
  DIR *d = opendir(path);
  if (!d) return 0;
  int found = 0;
  for (struct dirent *e; !found && (e = readdir(d));) found = strstr(e->d_name, ".trainer.safetensors") != NULL;
  closedir(d);
  return found;
}

static const char *stop_reason(const cJSON *sum) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(sum, "stopped_because");
  return cJSON_IsString(v) ? v->valuestring : "";
}

evo_sweep_run_state evo_sweep_run_state_in(const evo_sweep *s, int i, const char *dir) {
  cJSON *sum = read_summary(s, i, dir);
  int done = sum && strcmp(stop_reason(sum), "interrupted") != 0;
  cJSON_Delete(sum);
  if (done) return EVO_SWEEP_RUN_DONE;
  return has_checkpoint(s, i, dir) ? EVO_SWEEP_RUN_RESUMABLE : EVO_SWEEP_RUN_NEW;
}

/* CSV field: quoted when it holds a comma, a quote or a newline (RFC 4180). */
static void csv_field(FILE *f, const char *v, int first) {
  if (!first) fputc(',', f);
  if (!strpbrk(v, ",\"\n")) {
    fputs(v, f);
    return;
  }
  fputc('"', f);
  for (; *v; v++) {
    if (*v == '"') fputc('"', f);
    fputc(*v, f);
  }
  fputc('"', f);
}

static void csv_number(FILE *f, const cJSON *sum, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(sum, key);
  char buf[40] = "";
  for (int prec = 15; cJSON_IsNumber(v) && prec <= 17; prec++) { /* the shortest text that reads back exactly */
    snprintf(buf, sizeof buf, "%.*g", prec, v->valuedouble);
    if (strtod(buf, NULL) == v->valuedouble) break;
  }
  csv_field(f, buf, 0);
}

enum { MAX_COLS = 32 };

/* The numeric fields of the first finished run's summary, in its order: an evolution run's (test_score,
   iterations, ...) or a gradient run's (test_acc, epochs, ...). */
static int number_columns(const evo_sweep *s, const char *dir, char cols[MAX_COLS][48]) {
  int n = 0;
  for (int i = 0; i < evo_sweep_count(s) && n == 0; i++) {
    cJSON *sum = read_summary(s, i, dir);
    for (const cJSON *v = sum ? sum->child : NULL; v && n < MAX_COLS; v = v->next)
      if ((cJSON_IsNumber(v) || cJSON_IsNull(v)) && strlen(v->string) < 48) snprintf(cols[n++], 48, "%s", v->string);
    cJSON_Delete(sum);
  }
  return n;
}

evo_status evo_sweep_write_results(const evo_sweep *s, const char *dir, int maximize, int *done, int *best) {
  static const char *const state_names[] = {"new", "resumable", "done"};
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "sweep: out of memory");
  char cols[MAX_COLS][48];
  const int n_cols = number_columns(s, dir, cols);
  const char *rank_key = NULL; /* what "best" means: the best test score (evolution) or accuracy (gradient) */
  for (int c = 0; c < n_cols && !rank_key; c++)
    if (!strcmp(cols[c], "best_test_score") || !strcmp(cols[c], "best_test_acc")) rank_key = cols[c];
  csv_field(f, "index", 1), csv_field(f, "name", 0), csv_field(f, "state", 0);
  for (int k = 0; k < evo_sweep_grid_keys(s); k++) csv_field(f, evo_sweep_grid_key(s, k), 0);
  for (int c = 0; c < n_cols; c++) csv_field(f, cols[c], 0);
  csv_field(f, "stopped_because", 0);
  fputc('\n', f);
  *done = 0, *best = -1;
  double best_score = NAN;
  for (int i = 0; i < evo_sweep_count(s); i++) {
    evo_sweep_run_state st = evo_sweep_run_state_in(s, i, dir);
    cJSON *sum = read_summary(s, i, dir);
    char idx[16];
    snprintf(idx, sizeof idx, "%d", i);
    csv_field(f, idx, 1), csv_field(f, evo_sweep_run_name(s, i), 0), csv_field(f, state_names[st], 0);
    for (int k = 0; k < evo_sweep_grid_keys(s); k++) csv_field(f, evo_sweep_run_value(s, i, k), 0);
    for (int c = 0; c < n_cols; c++) csv_number(f, sum, cols[c]);
    csv_field(f, sum ? stop_reason(sum) : "", 0);
    fputc('\n', f);
    if (st == EVO_SWEEP_RUN_DONE) {
      (*done)++;
      const cJSON *v = rank_key ? cJSON_GetObjectItemCaseSensitive(sum, rank_key) : NULL;
      double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
      if (isfinite(x) && (isnan(best_score) || (maximize ? x > best_score : x < best_score))) best_score = x, *best = i;
    }
    cJSON_Delete(sum);
  }
  fclose(f);
  if (text && len > 0 && text[len - 1] == '\n') text[len - 1] = 0; /* evo_run_write_text ends the file */
  evo_status st = text ? evo_run_write_text(dir, "results.csv", text) : evo_error(EVO_STATUS_OUT_OF_MEMORY, "sweep: "
                                                                                  "out of memory");
  free(text);
  return st;
}
