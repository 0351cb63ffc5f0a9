/* Run folder files: atomic replacement, fsync'd appends, the default folder name, the probe for writability. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "evoc/run.h"

evo_status evo_run_path(char *buf, size_t cap, const char *a, const char *b) {
  int n = snprintf(buf, cap, "%s/%s", a, b);
  if (n < 0 || (size_t)n >= cap) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "path too long: %s/%s", a, b);
  return EVO_STATUS_OK;
}

evo_status evo_run_mkdirs(const char *dir) {
  char p[4096];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof p) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "bad folder name '%s'", dir);
  memcpy(p, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    char c = p[i];
    p[i] = '\0';
    struct stat sb;
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
      return evo_error(EVO_STATUS_IO, "cannot create folder %s: %s", p, strerror(errno));
    if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))
      return evo_error(EVO_STATUS_IO, "cannot use %s as a folder: it exists and is not a folder", p);
    p[i] = c;
  }
  return EVO_STATUS_OK;
}

static evo_status probe(const char *dir) {
  char path[4200];
  evo_status st = evo_run_path(path, sizeof path, dir, ".evoc_write_probe");
  if (st) return st;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) return evo_error(EVO_STATUS_IO, "run folder %s is not writable: %s", dir, strerror(errno));
  close(fd);
  unlink(path);
  return EVO_STATUS_OK;
}

evo_status evo_run_dir_prepare(const char *dir) {
  if (!dir || !*dir) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "empty run folder name");
  char ck[4200];
  evo_status st = evo_run_path(ck, sizeof ck, dir, "checkpoints");
  if (!st) st = evo_run_mkdirs(dir);
  if (!st) st = probe(dir);
  if (!st) st = evo_run_mkdirs(ck);
  if (!st) st = probe(ck);
  return st;
}

evo_status evo_run_default_dir(const char *config_path, char *buf, size_t cap) {
  const char *base = config_path ? strrchr(config_path, '/') : NULL;
  base = base ? base + 1 : config_path ? config_path : "run";
  char stem[256];
  snprintf(stem, sizeof stem, "%s", *base ? base : "run");
  char *dot = strrchr(stem, '.');
  if (dot && dot != stem) *dot = '\0';
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  for (int k = 1; k < 1000; k++) {
    int n = k == 1 ? snprintf(buf, cap, "runs/%s-%s", stem, stamp) : snprintf(buf, cap, "runs/%s-%s-%d", stem, stamp, k);
    if (n < 0 || (size_t)n >= cap) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "run folder name too long");
    if (!evo_run_file_exists(buf)) return EVO_STATUS_OK;
  }
  return evo_error(EVO_STATUS_IO, "no free run folder name for runs/%s-%s", stem, stamp);
}

bool evo_run_file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

int64_t evo_run_file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

/* Makes a rename durable: the folder entry itself must reach the disk. */
static void fsync_parent(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) > 0 ? (int)(slash - path) : 1, path);
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

evo_status evo_run_write_atomic(const char *path, const void *data, size_t n) {
  char tmp[4200];
  int len = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  if (len < 0 || (size_t)len >= sizeof tmp) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "path too long: %s", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) return evo_error(EVO_STATUS_IO, "cannot create %s: %s", tmp, strerror(errno));
  const char *p = data;
  size_t left = n;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = errno;
      close(fd);
      unlink(tmp);
      return evo_error(EVO_STATUS_IO, "cannot write %s: %s", tmp, strerror(e));
    }
    p += w, left -= (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    int e = errno;
    unlink(tmp);
    return evo_error(EVO_STATUS_IO, "cannot write %s: %s", tmp, strerror(e));
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return evo_error(EVO_STATUS_IO, "cannot rename %s to %s: %s", tmp, path, strerror(e));
  }
  fsync_parent(path);
  return EVO_STATUS_OK;
}

evo_status evo_run_append(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0666);
  if (fd < 0) return evo_error(EVO_STATUS_IO, "cannot open %s: %s", path, strerror(errno));
  size_t left = strlen(text);
  while (left > 0) {
    ssize_t w = write(fd, text, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = errno;
      close(fd);
      return evo_error(EVO_STATUS_IO, "cannot append to %s: %s", path, strerror(e));
    }
    text += w, left -= (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) return evo_error(EVO_STATUS_IO, "cannot append to %s: %s", path, strerror(errno));
  return EVO_STATUS_OK;
}

evo_status evo_run_truncate(const char *path, int64_t len) {
  int64_t size = evo_run_file_size(path);
  if (size < 0 && len == 0) return EVO_STATUS_OK;
  if (size < len)
    return evo_error(EVO_STATUS_FORMAT, "%s has %lld bytes, the checkpoint expects at least %lld", path,
                     (long long)size, (long long)len);
  if (truncate(path, (off_t)len) != 0) return evo_error(EVO_STATUS_IO, "cannot truncate %s: %s", path, strerror(errno));
  return EVO_STATUS_OK;
}

evo_status evo_run_write_config(const char *dir, const evo_config *cfg) {
  char path[4200], *text = NULL;
  size_t n = 0;
  evo_status st = evo_run_path(path, sizeof path, dir, "config.yaml");
  FILE *f = st ? NULL : open_memstream(&text, &n);
  if (!st && !f) st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
  if (f) {
    st = evo_config_write(cfg, f);
    fclose(f);
  }
  if (!st) st = evo_run_write_atomic(path, text, n);
  free(text);
  return st;
}

/* text + "\n" in one buffer (NULL when out of memory). */
static char *with_newline(const char *text, size_t *n) {
  *n = strlen(text);
  char *buf = malloc(*n + 2);
  if (!buf) return NULL;
  memcpy(buf, text, *n);
  buf[(*n)++] = '\n';
  buf[*n] = '\0';
  return buf;
}

evo_status evo_run_write_text(const char *dir, const char *name, const char *text) {
  char path[4200];
  size_t n;
  evo_status st = evo_run_path(path, sizeof path, dir, name);
  char *buf = st ? NULL : with_newline(text, &n);
  if (!st && !buf) st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
  if (!st) st = evo_run_write_atomic(path, buf, n);
  free(buf);
  return st;
}

evo_status evo_run_append_line(const char *dir, const char *name, const char *line, int64_t *bytes) {
  char path[4200];
  size_t n;
  evo_status st = evo_run_path(path, sizeof path, dir, name);
  char *buf = st ? NULL : with_newline(line, &n);
  if (!st && !buf) st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
  if (!st) st = evo_run_append(path, buf);
  if (!st && bytes) *bytes += (int64_t)n;
  free(buf);
  return st;
}
