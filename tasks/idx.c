/* IDX reader on zlib's gz* API, which reads gzip'd and plain files alike. */
#include "idx.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Reads up to n bytes; returns the count, or -1 on a zlib error (message in *err). */
static int64_t gz_read_all(gzFile f, uint8_t *buf, int64_t n, const char **err) {
  int64_t got = 0;
  while (got < n) {
    int64_t want = n - got > (1 << 30) ? (1 << 30) : n - got;
    int r = gzread(f, buf + got, (unsigned)want);
    if (r < 0) {
      int code;
      *err = gzerror(f, &code);
      return -1;
    }
    if (r == 0) break;
    got += r;
  }
  return got;
}

/* A truncated gzip stream reads short with Z_BUF_ERROR: that is a short file, not corrupt data. */
static int gz_corrupt(gzFile f, const char **msg) {
  int code = Z_OK;
  *msg = gzerror(f, &code);
  return code != Z_OK && code != Z_BUF_ERROR;
}

/* zlib's message without the "path: " prefix it adds (the caller names the path once). */
static const char *zmsg_of(const char *msg, const char *path) {
  size_t n = strlen(path);
  return msg && !strncmp(msg, path, n) && !strncmp(msg + n, ": ", 2) ? msg + n + 2 : msg ? msg : "unknown error";
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

evo_status evo_idx_read(const char *path, evo_idx *out) {
  if (!path || !out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "idx_read: path or out is NULL");
  memset(out, 0, sizeof *out);
  struct stat sb;
  if (stat(path, &sb) != 0) {
    if (errno == ENOENT) return evo_error(EVO_STATUS_NOT_FOUND, "%s: no such file", path);
    return evo_error(EVO_STATUS_IO, "%s: %s", path, strerror(errno));
  }
  if (S_ISDIR(sb.st_mode)) return evo_error(EVO_STATUS_IO, "%s: is a directory, not an IDX file", path);
  gzFile f = gzopen(path, "rb");
  if (!f) return evo_error(EVO_STATUS_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "zlib error");
  gzbuffer(f, 1 << 17);
  const char *zmsg = NULL;
  uint8_t head[4 + 4 * EVO_IDX_MAX_DIMS];
  evo_status st = EVO_STATUS_OK;
  int64_t got = gz_read_all(f, head, 4, &zmsg);
  if (got < 0 || (got < 4 && gz_corrupt(f, &zmsg))) {
    st = evo_error(EVO_STATUS_FORMAT, "%s: corrupt gzip data (zlib: %s)", path, zmsg_of(zmsg, path));
    goto done;
  }
  if (got < 4) {
    st = evo_error(EVO_STATUS_FORMAT, "%s: short file: %lld bytes, not even the 4-byte IDX magic", path,
                   (long long)got);
    goto done;
  }
  uint32_t magic = be32(head);
  int type = head[2], ndim = head[3];
  if (head[0] || head[1] || ndim < 1 || ndim > EVO_IDX_MAX_DIMS) {
    st = evo_error(EVO_STATUS_FORMAT, "%s: bad magic 0x%08x: not an IDX file (expected 0x00000801 for labels or "
                   "0x00000803 for images)", path, (unsigned)magic);
    goto done;
  }
  if (type != 0x08) {
    st = evo_error(EVO_STATUS_FORMAT, "%s: IDX element type 0x%02x is not supported (only unsigned bytes, 0x08)",
                   path, (unsigned)type);
    goto done;
  }
  got = gz_read_all(f, head + 4, 4 * ndim, &zmsg);
  if (got < 0 || (got < 4 * ndim && gz_corrupt(f, &zmsg))) {
    st = evo_error(EVO_STATUS_FORMAT, "%s: corrupt gzip data (zlib: %s)", path, zmsg_of(zmsg, path));
    goto done;
  }
  if (got < 4 * ndim) {
    st = evo_error(EVO_STATUS_FORMAT, "%s: short file: the header ends inside the %d dimension sizes", path, ndim);
    goto done;
  }
  int64_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    out->dims[d] = be32(head + 4 + 4 * d);
    if (out->dims[d] == 0) {
      st = evo_error(EVO_STATUS_FORMAT, "%s: dimension %d has size 0", path, d);
      goto done;
    }
    if (numel > ((int64_t)1 << 40) / out->dims[d]) {
      st = evo_error(EVO_STATUS_FORMAT, "%s: dimensions too large (corrupt header?)", path);
      goto done;
    }
    numel *= out->dims[d];
  }
  out->ndim = ndim;
  out->numel = numel;
  /* Grow as data arrives (from 1 MiB, doubling), so a corrupt header promising terabytes fails on the short read,
     not in malloc, and a 20-byte file never costs more than 1 MiB. */
  int64_t cap = numel < (1 << 20) ? numel : (1 << 20), have = 0;
  out->data = malloc((size_t)cap);
  while (out->data) {
    got = gz_read_all(f, out->data + have, cap - have, &zmsg);
    if (got < 0 || (have + got < cap && gz_corrupt(f, &zmsg))) {
      st = evo_error(EVO_STATUS_FORMAT, "%s: corrupt gzip data (zlib: %s)", path, zmsg_of(zmsg, path));
      goto done;
    }
    have += got;
    if (have < cap || cap == numel) break;
    cap = cap * 2 < numel ? cap * 2 : numel;
    uint8_t *p = realloc(out->data, (size_t)cap);
    if (!p) free(out->data);
    out->data = p;
  }
  if (!out->data) {
    st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory for %lld bytes", path, (long long)numel);
    goto done;
  }
  if (have < numel) {
    char dims[96];
    size_t u = 0;
    for (int d = 0; d < ndim && u < sizeof dims; d++)
      u += (size_t)snprintf(dims + u, sizeof dims - u, d ? " x %lld" : "%lld", (long long)out->dims[d]);
    st = evo_error(EVO_STATUS_FORMAT, "%s: short file: the header promises %s = %lld data bytes, the file has %lld",
                   path, dims, (long long)numel, (long long)have);
    goto done;
  }
  uint8_t extra[64];
  got = gz_read_all(f, extra, sizeof extra, &zmsg);
  if (got > 0)
    st = evo_error(EVO_STATUS_FORMAT, "%s: unexpected bytes after the %lld data bytes (wrong counts in the header?)",
                   path, (long long)numel);
  else if (got < 0)
    st = evo_error(EVO_STATUS_FORMAT, "%s: corrupt gzip data (zlib: %s)", path, zmsg_of(zmsg, path));
done:
  gzclose(f);
  if (st) evo_idx_free(out);
  return st;
}

void evo_idx_free(evo_idx *x) {
  if (!x) return;
  free(x->data);
  memset(x, 0, sizeof *x);
}
