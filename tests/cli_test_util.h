/* Shared by the CLI test suites (test_cli.c, test_sweep.c, test_distributed.c): a temp folder per test, running the evoc
   executable with its output captured, and comparisons of run folders (metrics without wall time, files byte for
   byte). */
#ifndef EVOC_CLI_TEST_UTIL_H
#define EVOC_CLI_TEST_UTIL_H
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef EVOC_CLI_PATH
#error "EVOC_CLI_PATH must name the evoc executable"
#endif

static char tmp[256];
static char out_buf[1 << 16], err_buf[1 << 16];

static inline void setup(void) {
  /* one thread: the runs are tiny, and a busy machine makes OpenBLAS threads crawl */
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  setenv("OMP_NUM_THREADS", "1", 1);
  snprintf(tmp, sizeof tmp, "/tmp/evoc_cli_XXXXXX");
  cr_assert_not_null(mkdtemp(tmp));
}

static inline void teardown(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  cr_assert_eq(system(cmd), 0);
}

static inline void slurp(const char *path, char *buf, size_t cap) {
  buf[0] = '\0';
  FILE *f = fopen(path, "rb");
  if (!f) return;
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
}

/* Runs `evoc ARGS` (a shell fragment) in the temp folder; stdout and stderr land in out_buf / err_buf. */
static inline int evoc(const char *fmt, ...) {
  char args[4096], cmd[8192], o[300], e[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(o, sizeof o, "%s/stdout.txt", tmp);
  snprintf(e, sizeof e, "%s/stderr.txt", tmp);
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s > '%s' 2> '%s'", tmp, EVOC_CLI_PATH, args, o, e);
  int rc = system(cmd);
  slurp(o, out_buf, sizeof out_buf);
  slurp(e, err_buf, sizeof err_buf);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static inline void write_file(const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmp, name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
}

static inline bool exists(const char *dir, const char *name) {
  char path[1024];
  struct stat sb;
  snprintf(path, sizeof path, "%s/%s/%s", tmp, dir, name);
  return stat(path, &sb) == 0 && sb.st_size > 0;
}

static inline cJSON *read_json(const char *dir, const char *name) {
  static char buf[1 << 16];
  char path[1024];
  snprintf(path, sizeof path, "%s/%s/%s", tmp, dir, name);
  slurp(path, buf, sizeof buf);
  cJSON *j = cJSON_Parse(buf);
  cr_assert_not_null(j, "%s is not valid JSON: %s", path, buf);
  return j;
}

static inline double jnum(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  cr_assert(cJSON_IsNumber(v), "missing number '%s'", k);
  return v->valuedouble;
}

/* metrics.jsonl with wall_s removed, one canonical JSON line per entry. */
static inline char *metrics_without_wall(const char *dir) {
  char path[1024], line[4096];
  snprintf(path, sizeof path, "%s/%s/metrics.jsonl", tmp, dir);
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "no %s", path);
  size_t cap = 1 << 20, used = 0;
  char *all = calloc(cap, 1);
  while (fgets(line, sizeof line, f)) {
    cJSON *o = cJSON_Parse(line);
    cr_assert_not_null(o, "bad metrics line in %s: %s", path, line);
    for (const char *const *k = (const char *const[]){"iter", "evaluations", "wall_s", "best", "mean", "min", "std", NULL}; *k; k++)
      cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(o, *k), "metrics line lacks '%s': %s", *k, line);
    cJSON_DeleteItemFromObject(o, "wall_s");
    char *s = cJSON_PrintUnformatted(o);
    used += (size_t)snprintf(all + used, cap - used, "%s\n", s);
    cJSON_free(s);
    cJSON_Delete(o);
  }
  fclose(f);
  return all;
}

static inline char *file_bytes(const char *dir, const char *name, long *n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s/%s", tmp, dir, name);
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "no %s", path);
  fseek(f, 0, SEEK_END);
  *n = ftell(f);
  rewind(f);
  char *b = malloc((size_t)*n + 1);
  cr_assert_eq(fread(b, 1, (size_t)*n, f), (size_t)*n);
  fclose(f);
  return b;
}

static inline void same_file(const char *a, const char *b, const char *name) {
  long na, nb;
  char *x = file_bytes(a, name, &na), *y = file_bytes(b, name, &nb);
  cr_assert(na == nb && memcmp(x, y, (size_t)na) == 0, "%s differs between %s and %s", name, a, b);
  free(x), free(y);
}

/* Starts `evoc argv[1..]` in the background with its output dropped (for tests that signal it); returns its pid. */
static inline pid_t spawn_evoc(const char *const *argv) {
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    FILE *f = freopen("/dev/null", "w", stdout);
    FILE *g = freopen("/dev/null", "w", stderr);
    (void)f, (void)g;
    execv(EVOC_CLI_PATH, (char *const *)argv);
    _exit(127);
  }
  return pid;
}

#ifdef EVOC_GRADTRAIN_TEST_UTIL_H
/* A gradient-training config on a tiny synthetic IDX dataset (tmp/data), plus extra YAML. */
static inline void write_train_config(const char *name, const char *extra) {
  char data[300], text[2048];
  snprintf(data, sizeof data, "%s/data", tmp);
  mkdir(data, 0700);
  cr_assert_eq(gt_write_dataset(data, 200, 50), 0);
  snprintf(text, sizeof text,
           "task: {name: mnist, data_dir: %s}\n"
           "policy: {name: mlp, hidden: [16], activation: relu}\n"
           "optim: {name: adam, lr: 0.01}\n"
           "data: {batch_size: 20}\n"
           "%s",
           data, extra);
  write_file(name, text);
}
#endif

#endif
