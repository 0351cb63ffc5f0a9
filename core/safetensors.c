/* safetensors reader/writer. The reader trusts nothing in the file: every size and offset is checked against the
   file length before data is touched, and the tensors must tile the data section exactly (as the reference
   implementation requires), so overlaps, gaps and trailing bytes are reported, not silently read. */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64
#include "safetensors.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "safetensors data is little-endian; byte swapping for big-endian hosts is not implemented"
#endif

#define ST_MAX_HEADER (100u << 20)          /* same cap as the reference reader: refuse absurd headers */
#define ST_MAX_INT 9007199254740992.0       /* 2^53: JSON numbers beyond it are not exact doubles */

typedef struct {
  const char *name;
  size_t size;
  evo_dtype dtype;
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F32", 4, EVO_F32},  {"I32", 4, EVO_I32},  {"U8", 1, EVO_U8},
    {"U32", 4, EVO_U32},  {"F64", 8, EVO_F64}, {"F16", 2, EVO_DTYPE_COUNT},
    {"BF16", 2, EVO_DTYPE_COUNT}, {"I64", 8, EVO_I64}, {"I16", 2, EVO_DTYPE_COUNT},
    {"I8", 1, EVO_DTYPE_COUNT},   {"U64", 8, EVO_DTYPE_COUNT}, {"U16", 2, EVO_DTYPE_COUNT},
    {"BOOL", 1, EVO_DTYPE_COUNT}, {"F8_E4M3", 1, EVO_DTYPE_COUNT}, {"F8_E5M2", 1, EVO_DTYPE_COUNT},
};
#define ST_NDTYPES ((int)(sizeof st_dtypes / sizeof st_dtypes[0]))

static const st_dtype *st_dtype_by_name(const char *s) {
  for (int i = 0; i < ST_NDTYPES; i++)
    if (strcmp(st_dtypes[i].name, s) == 0) return &st_dtypes[i];
  return NULL;
}

static const st_dtype *st_dtype_of(evo_dtype t) {
  for (int i = 0; i < ST_NDTYPES; i++)
    if (st_dtypes[i].dtype == t && t != EVO_DTYPE_COUNT) return &st_dtypes[i];
  return NULL;
}

/* ---------------------------------------------------------------- writing */

static evo_status st_build_header(const char *path, const evo_st_tensor *ts, int n, const char *const *meta,
                                  int n_meta, char **out_json) {
  cJSON *root = cJSON_CreateObject();
  if (!root) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory building the header", path);
  evo_status st = EVO_STATUS_OK;
  char num[32];
  if (n_meta > 0) {
    cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
    for (int k = 0; m && k < n_meta; k++) {
      if (!meta[2 * k] || !meta[2 * k + 1]) {
        st = evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: metadata pair %d has a NULL key or value", path, k);
        goto done;
      }
      if (!cJSON_AddStringToObject(m, meta[2 * k], meta[2 * k + 1])) m = NULL;
    }
    if (!m) goto oom;
  }
  uint64_t off = 0;
  for (int i = 0; i < n; i++) {
    const evo_st_tensor *t = &ts[i];
    const st_dtype *dt = st_dtype_of(t->dtype);
    if (!t->name || !*t->name || strcmp(t->name, "__metadata__") == 0) {
      st = evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: tensor %d has an empty or reserved name", path, i);
      goto done;
    }
    for (int j = 0; j < i; j++)
      if (strcmp(ts[j].name, t->name) == 0) {
        st = evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: duplicate tensor name '%s'", path, t->name);
        goto done;
      }
    if (!dt || t->ndim < 0 || t->ndim > EVO_MAX_DIMS || (t->ndim > 0 && !t->shape)) {
      st = evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: tensor '%s' has a bad dtype or rank", path, t->name);
      goto done;
    }
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
      if (t->shape[d] < 0 || (t->shape[d] > 0 && numel > (uint64_t)INT64_MAX / dt->size / (uint64_t)t->shape[d])) {
        st = evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: tensor '%s' has a bad shape", path, t->name);
        goto done;
      }
      numel *= (uint64_t)t->shape[d];
    }
    uint64_t bytes = numel * dt->size;
    if (bytes > 0 && !t->data) {
      st = evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: tensor '%s' has no data", path, t->name);
      goto done;
    }
    cJSON *o = cJSON_AddObjectToObject(root, t->name);
    cJSON *shape = o ? cJSON_AddArrayToObject(o, "shape") : NULL;
    cJSON *offs = o ? cJSON_AddArrayToObject(o, "data_offsets") : NULL;
    if (!o || !cJSON_AddStringToObject(o, "dtype", dt->name) || !shape || !offs) goto oom;
    /* Raw integers: cJSON would print large doubles in exponent form, which strict readers reject. */
    for (int d = 0; d < t->ndim; d++) {
      snprintf(num, sizeof num, "%lld", (long long)t->shape[d]);
      if (!cJSON_AddItemToArray(shape, cJSON_CreateRaw(num))) goto oom;
    }
    snprintf(num, sizeof num, "%llu", (unsigned long long)off);
    if (!cJSON_AddItemToArray(offs, cJSON_CreateRaw(num))) goto oom;
    off += bytes;
    snprintf(num, sizeof num, "%llu", (unsigned long long)off);
    if (!cJSON_AddItemToArray(offs, cJSON_CreateRaw(num))) goto oom;
  }
  *out_json = cJSON_PrintUnformatted(root);
  if (!*out_json) goto oom;
  goto done;
oom:
  st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory building the header", path);
done:
  cJSON_Delete(root);
  return st;
}

evo_status evo_st_write(const char *path, const evo_st_tensor *ts, int n, const char *const *meta, int n_meta) {
  if (!path) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "safetensors write: path is NULL");
  if (n < 0 || (n > 0 && !ts) || n_meta < 0 || (n_meta > 0 && !meta))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: bad tensor or metadata list", path);
  char *json = NULL;
  evo_status st = st_build_header(path, ts, n, meta, n_meta, &json);
  if (st != EVO_STATUS_OK) return st;

  /* Pad with spaces so the data section starts 8-byte aligned (8-byte prefix + header). */
  size_t hlen = strlen(json), padded = (hlen + 7) & ~(size_t)7;
  size_t tmp_len = strlen(path) + 32;
  char *tmp = malloc(tmp_len);
  if (!tmp) {
    free(json);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  snprintf(tmp, tmp_len, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    st = evo_error(EVO_STATUS_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    free(json);
    free(tmp);
    return st;
  }
  unsigned char len8[8];
  for (int b = 0; b < 8; b++) len8[b] = (unsigned char)((uint64_t)padded >> (8 * b));
  int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(json, 1, hlen, f) == hlen;
  for (size_t p = hlen; ok && p < padded; p++) ok = fputc(' ', f) != EOF;
  for (int i = 0; ok && i < n; i++) {
    size_t bytes = st_dtype_of(ts[i].dtype)->size; /* validated by st_build_header */
    for (int d = 0; d < ts[i].ndim; d++) bytes *= (size_t)ts[i].shape[d];
    ok = bytes == 0 || fwrite(ts[i].data, 1, bytes, f) == bytes;
  }
  ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
  int err = errno;
  if (fclose(f) != 0 && ok) {
    ok = 0;
    err = errno;
  }
  if (ok && rename(tmp, path) != 0) {
    ok = 0;
    err = errno;
  }
  if (!ok) {
    remove(tmp);
    st = evo_error(EVO_STATUS_IO, "%s: write failed: %s", path, strerror(err));
  }
  free(json);
  free(tmp);
  return st;
}

/* ---------------------------------------------------------------- reading */

struct evo_st_reader {
  char *path;
  FILE *f;
  uint64_t data_start, data_size;
  cJSON *root; /* owns the name strings the infos point to */
  cJSON *meta;
  int n;
  evo_st_info *info;
};

void evo_st_close(evo_st_reader *r) {
  if (!r) return;
  if (r->f) fclose(r->f);
  cJSON_Delete(r->root);
  free(r->info);
  free(r->path);
  free(r);
}

const char *evo_st_path(const evo_st_reader *r) { return r ? r->path : NULL; }
int evo_st_count(const evo_st_reader *r) { return r ? r->n : 0; }

const evo_st_info *evo_st_info_at(const evo_st_reader *r, int i) {
  return (r && i >= 0 && i < r->n) ? &r->info[i] : NULL;
}

int evo_st_find(const evo_st_reader *r, const char *name) {
  if (!r || !name) return -1;
  for (int i = 0; i < r->n; i++)
    if (strcmp(r->info[i].name, name) == 0) return i;
  return -1;
}

const char *evo_st_metadata(const evo_st_reader *r, const char *key) {
  if (!r || !r->meta || !key) return NULL;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->meta, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A JSON number that is an exact non-negative integer. */
static int st_get_uint(const cJSON *v, uint64_t *out) {
  if (!cJSON_IsNumber(v)) return 0;
  double d = v->valuedouble;
  if (!(d >= 0.0 && d <= ST_MAX_INT) || d != (double)(uint64_t)d) return 0;
  *out = (uint64_t)d;
  return 1;
}

static evo_status st_parse_entry(const evo_st_reader *r, const cJSON *e, evo_st_info *info) {
  const char *p = r->path, *nm = e->string;
  info->name = nm;
  if (!cJSON_IsObject(e)) return evo_error(EVO_STATUS_FORMAT, "%s: tensor '%s' is not a JSON object", p, nm);
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
  const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
  const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
  if (!cJSON_IsString(dt)) return evo_error(EVO_STATUS_FORMAT, "%s: tensor '%s' has no string \"dtype\"", p, nm);
  const st_dtype *d = st_dtype_by_name(dt->valuestring);
  if (!d) return evo_error(EVO_STATUS_FORMAT, "%s: tensor '%s' has unknown dtype \"%s\"", p, nm, dt->valuestring);
  info->dtype_name = d->name;
  info->dtype = d->dtype;
  info->itemsize = d->size;
  if (!cJSON_IsArray(sh)) return evo_error(EVO_STATUS_FORMAT, "%s: tensor '%s' has no \"shape\" array", p, nm);
  int nd = cJSON_GetArraySize(sh);
  if (nd > EVO_MAX_DIMS)
    return evo_error(EVO_STATUS_FORMAT, "%s: tensor '%s' has %d dims (at most %d supported)", p, nm, nd, EVO_MAX_DIMS);
  info->ndim = nd;
  uint64_t numel = 1;
  const cJSON *v;
  int k = 0;
  cJSON_ArrayForEach(v, sh) {
    uint64_t dim;
    if (!st_get_uint(v, &dim))
      return evo_error(EVO_STATUS_FORMAT, "%s: tensor '%s' shape[%d] is not a non-negative integer", p, nm, k);
    if (dim > 0 && numel > (uint64_t)INT64_MAX / d->size / dim)
      return evo_error(EVO_STATUS_FORMAT, "%s: tensor '%s' shape overflows", p, nm);
    numel *= dim;
    info->shape[k++] = (int64_t)dim;
  }
  info->numel = (int64_t)numel;
  uint64_t be[2];
  if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || !st_get_uint(cJSON_GetArrayItem(of, 0), &be[0]) ||
      !st_get_uint(cJSON_GetArrayItem(of, 1), &be[1]))
    return evo_error(EVO_STATUS_FORMAT, "%s: tensor '%s' needs \"data_offsets\": [begin, end] of integers", p, nm);
  if (be[0] > be[1])
    return evo_error(EVO_STATUS_FORMAT, "%s: tensor '%s' data_offsets [%llu, %llu] end before begin", p, nm,
                     (unsigned long long)be[0], (unsigned long long)be[1]);
  if (be[1] > r->data_size)
    return evo_error(EVO_STATUS_FORMAT, "%s: tensor '%s' data_offsets [%llu, %llu] outside the %llu-byte data section",
                     p, nm, (unsigned long long)be[0], (unsigned long long)be[1], (unsigned long long)r->data_size);
  if (numel * d->size != be[1] - be[0])
    return evo_error(EVO_STATUS_FORMAT, "%s: tensor '%s' shape needs %llu bytes of %s but data_offsets span %llu", p,
                     nm, (unsigned long long)(numel * d->size), d->name, (unsigned long long)(be[1] - be[0]));
  info->begin = be[0];
  info->end = be[1];
  return EVO_STATUS_OK;
}

static int st_cmp_begin(const void *a, const void *b) {
  const evo_st_info *x = *(const evo_st_info *const *)a, *y = *(const evo_st_info *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return (x->end > y->end) - (x->end < y->end);
}

/* The tensors must tile [0, data_size) with no overlap and no gap. */
static evo_status st_check_layout(const evo_st_reader *r) {
  if (r->n == 0) {
    if (r->data_size != 0)
      return evo_error(EVO_STATUS_FORMAT, "%s: no tensors but %llu trailing data bytes", r->path,
                       (unsigned long long)r->data_size);
    return EVO_STATUS_OK;
  }
  const evo_st_info **order = malloc((size_t)r->n * sizeof *order);
  if (!order) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory", r->path);
  for (int i = 0; i < r->n; i++) order[i] = &r->info[i];
  qsort(order, (size_t)r->n, sizeof *order, st_cmp_begin);
  evo_status st = EVO_STATUS_OK;
  uint64_t pos = 0;
  for (int i = 0; i < r->n && st == EVO_STATUS_OK; i++) {
    if (order[i]->begin < pos)
      st = evo_error(EVO_STATUS_FORMAT, "%s: tensors '%s' and '%s' overlap in the data section", r->path,
                     order[i - 1]->name, order[i]->name);
    else if (order[i]->begin > pos)
      st = evo_error(EVO_STATUS_FORMAT, "%s: %llu unused data bytes before tensor '%s'", r->path,
                     (unsigned long long)(order[i]->begin - pos), order[i]->name);
    pos = order[i]->end;
  }
  if (st == EVO_STATUS_OK && pos != r->data_size)
    st = evo_error(EVO_STATUS_FORMAT, "%s: tensors cover %llu bytes but the data section has %llu", r->path,
                   (unsigned long long)pos, (unsigned long long)r->data_size);
  free(order);
  return st;
}

static int st_cmp_name(const void *a, const void *b) {
  return strcmp((*(const evo_st_info *const *)a)->name, (*(const evo_st_info *const *)b)->name);
}

/* Duplicate names, found by sorting: comparing every pair took a minute for a 6 MB header of 100k entries and
   hours for one near the 100 MB limit. */
static evo_status st_check_names(const evo_st_reader *r) {
  if (r->n < 2) return EVO_STATUS_OK;
  const evo_st_info **order = malloc((size_t)r->n * sizeof *order);
  if (!order) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory", r->path);
  for (int i = 0; i < r->n; i++) order[i] = &r->info[i];
  qsort(order, (size_t)r->n, sizeof *order, st_cmp_name);
  evo_status st = EVO_STATUS_OK;
  for (int i = 1; i < r->n && st == EVO_STATUS_OK; i++)
    if (strcmp(order[i - 1]->name, order[i]->name) == 0)
      st = evo_error(EVO_STATUS_FORMAT, "%s: duplicate tensor name '%s'", r->path, order[i]->name);
  free(order);
  return st;
}

static evo_status st_parse_header(evo_st_reader *r, const char *hdr, size_t len) {
  const char *p = r->path;
  if (len == 0 || hdr[0] != '{') return evo_error(EVO_STATUS_FORMAT, "%s: header does not start with '{'", p);
  const char *end = NULL;
  r->root = cJSON_ParseWithLengthOpts(hdr, len, &end, 0);
  if (!r->root)
    return evo_error(EVO_STATUS_FORMAT, "%s: header is not valid JSON (near byte %ld)", p,
                     end ? (long)(end - hdr) : -1L);
  for (const char *c = end; c < hdr + len; c++)
    if (*c != ' ' && *c != '\t' && *c != '\n' && *c != '\r')
      return evo_error(EVO_STATUS_FORMAT, "%s: unexpected bytes after the header JSON (byte %ld)", p, (long)(c - hdr));
  if (!cJSON_IsObject(r->root)) return evo_error(EVO_STATUS_FORMAT, "%s: header is not a JSON object", p);
  int n = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, r->root) {
    if (strcmp(e->string, "__metadata__") == 0) {
      if (r->meta) return evo_error(EVO_STATUS_FORMAT, "%s: duplicate \"__metadata__\"", p);
      if (!cJSON_IsObject(e)) return evo_error(EVO_STATUS_FORMAT, "%s: \"__metadata__\" is not an object", p);
      const cJSON *m;
      cJSON_ArrayForEach(m, e) {
        if (!cJSON_IsString(m))
          return evo_error(EVO_STATUS_FORMAT, "%s: metadata \"%s\" is not a string", p, m->string);
      }
      r->meta = (cJSON *)e;
    } else {
      n++;
    }
  }
  r->info = calloc(n > 0 ? (size_t)n : 1, sizeof *r->info);
  if (!r->info) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory", p);
  cJSON_ArrayForEach(e, r->root) {
    if (e == r->meta) continue;
    evo_status st = st_parse_entry(r, e, &r->info[r->n]);
    if (st != EVO_STATUS_OK) return st;
    r->n++;
  }
  evo_status st = st_check_names(r);
  return st != EVO_STATUS_OK ? st : st_check_layout(r);
}

evo_status evo_st_open(const char *path, evo_st_reader **out) {
  if (!out) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "safetensors open: out is NULL");
  *out = NULL;
  if (!path) return evo_error(EVO_STATUS_INVALID_ARGUMENT, "safetensors open: path is NULL");
  evo_st_reader *r = calloc(1, sizeof *r);
  size_t plen = strlen(path);
  if (r) r->path = malloc(plen + 1);
  if (!r || !r->path) {
    free(r);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  memcpy(r->path, path, plen + 1);
  evo_status st = EVO_STATUS_OK;
  char *hdr = NULL;
  r->f = fopen(path, "rb");
  if (!r->f) {
    st = evo_error(EVO_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    goto fail;
  }
  off_t fsize;
  if (fseeko(r->f, 0, SEEK_END) != 0 || (fsize = ftello(r->f)) < 0 || fseeko(r->f, 0, SEEK_SET) != 0) {
    st = evo_error(EVO_STATUS_IO, "%s: cannot determine the file size: %s", path, strerror(errno));
    goto fail;
  }
  unsigned char len8[8];
  if (fsize < 8) {
    st = evo_error(EVO_STATUS_FORMAT, "%s: file is %lld bytes, too short for the 8-byte header length", path,
                   (long long)fsize);
    goto fail;
  }
  if (fread(len8, 1, 8, r->f) != 8) {
    st = evo_error(EVO_STATUS_IO, "%s: cannot read the header length", path);
    goto fail;
  }
  uint64_t hlen = 0;
  for (int b = 0; b < 8; b++) hlen |= (uint64_t)len8[b] << (8 * b);
  if (hlen > (uint64_t)fsize - 8) {
    st = evo_error(EVO_STATUS_FORMAT, "%s: header length %llu exceeds the file (%lld bytes after the length)", path,
                   (unsigned long long)hlen, (long long)fsize - 8);
    goto fail;
  }
  if (hlen > ST_MAX_HEADER) {
    st = evo_error(EVO_STATUS_FORMAT, "%s: header length %llu is over the %u-byte limit", path,
                   (unsigned long long)hlen, ST_MAX_HEADER);
    goto fail;
  }
  r->data_start = 8 + hlen;
  r->data_size = (uint64_t)fsize - r->data_start;
  hdr = malloc((size_t)hlen + 1);
  if (!hdr) {
    st = evo_error(EVO_STATUS_OUT_OF_MEMORY, "%s: out of memory for a %llu-byte header", path,
                   (unsigned long long)hlen);
    goto fail;
  }
  if (fread(hdr, 1, (size_t)hlen, r->f) != (size_t)hlen) {
    st = evo_error(EVO_STATUS_IO, "%s: cannot read the %llu-byte header", path, (unsigned long long)hlen);
    goto fail;
  }
  hdr[hlen] = '\0';
  st = st_parse_header(r, hdr, (size_t)hlen);
  if (st != EVO_STATUS_OK) goto fail;
  free(hdr);
  *out = r;
  return EVO_STATUS_OK;
fail:
  free(hdr);
  evo_st_close(r);
  return st;
}

evo_status evo_st_read(evo_st_reader *r, int i, void *dst, size_t dst_bytes) {
  if (!r || i < 0 || i >= r->n)
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: tensor index %d out of range", r ? r->path : "?", i);
  const evo_st_info *in = &r->info[i];
  uint64_t bytes = in->end - in->begin;
  if (dst_bytes != bytes || (bytes > 0 && !dst))
    return evo_error(EVO_STATUS_INVALID_ARGUMENT, "%s: tensor '%s' has %llu bytes, destination has %zu", r->path,
                     in->name, (unsigned long long)bytes, dst_bytes);
  if (bytes == 0) return EVO_STATUS_OK;
  if (fseeko(r->f, (off_t)(r->data_start + in->begin), SEEK_SET) != 0 || fread(dst, 1, (size_t)bytes, r->f) != bytes)
    return evo_error(EVO_STATUS_IO, "%s: cannot read tensor '%s' (file changed or unreadable)", r->path, in->name);
  return EVO_STATUS_OK;
}
