/* safetensors reader and writer (the format is described in rt_safetensors.h).
 * Reading validates every size and offset against the file before touching
 * the data; writing goes through a temporary file and a rename. */
#include "rt_safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "rt_safetensors.c copies tensor data as is: it assumes a little-endian host"
#endif

#define ST_MAX_INT ((uint64_t)1 << 53) /* largest integer a JSON double holds exactly */

typedef enum { ST_COPY, ST_F16, ST_BF16, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL } st_convert;

/* A dtype of the file format: its name, element size, the bundle dtype it is
 * read as, and how its elements become that dtype. */
typedef struct {
  const char *name;
  size_t size;
  ir_dtype as;
  st_convert conv;
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F32", 4, IR_F32, ST_COPY}, {"F64", 8, IR_F64, ST_COPY}, {"I64", 8, IR_I64, ST_COPY},
    {"F16", 2, IR_F32, ST_F16},  {"BF16", 2, IR_F32, ST_BF16}, {"I32", 4, IR_I64, ST_I32},
    {"I16", 2, IR_I64, ST_I16},  {"I8", 1, IR_I64, ST_I8},     {"U8", 1, IR_I64, ST_U8},
    {"BOOL", 1, IR_I64, ST_BOOL},
};
#define ST_NDTYPES (int)(sizeof st_dtypes / sizeof st_dtypes[0])

/* One validated header entry. */
typedef struct {
  const char *name; /* points into the cJSON tree */
  const st_dtype *dt;
  ir_type type;
  uint64_t begin, end;
} st_entry;

/* Returns the file dtype called 'name', or NULL. */
static const st_dtype *dtype_lookup(const char *name) {
  for (int i = 0; i < ST_NDTYPES; i++)
    if (!strcmp(st_dtypes[i].name, name)) return &st_dtypes[i];
  return NULL;
}

/* Reads a JSON number that is an integer in [0, 2^53] into *v; returns 0 or -1. */
static int json_uint(const cJSON *j, uint64_t *v) {
  if (!cJSON_IsNumber(j)) return -1;
  double x = j->valuedouble;
  if (!(x >= 0) || x != floor(x) || x > (double)ST_MAX_INT) return -1;
  *v = (uint64_t)x;
  return 0;
}

/* Converts an IEEE half-precision value to float. */
static float half_to_float(uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0)
    v = ldexpf((float)mant, -24);
  else if (exp == 31)
    v = mant ? NAN : INFINITY;
  else
    v = ldexpf((float)(mant | 0x400), exp - 25);
  return sign ? -v : v;
}

/* Copies 'n' elements of file dtype 'dt' from 'src' into tensor 't'. */
static void convert_data(const st_dtype *dt, const unsigned char *src, int64_t n, ir_tensor *t) {
  if (dt->conv == ST_COPY) {
    memcpy(t->data, src, (size_t)n * dt->size);
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    const unsigned char *p = src + (size_t)i * dt->size;
    uint16_t u16;
    uint32_t u32;
    int32_t i32;
    int16_t i16;
    float f;
    switch (dt->conv) {
    case ST_F16:
      memcpy(&u16, p, 2);
      ((float *)t->data)[i] = half_to_float(u16);
      break;
    case ST_BF16:
      memcpy(&u16, p, 2);
      u32 = (uint32_t)u16 << 16;
      memcpy(&f, &u32, 4);
      ((float *)t->data)[i] = f;
      break;
    case ST_I32:
      memcpy(&i32, p, 4);
      ((int64_t *)t->data)[i] = i32;
      break;
    case ST_I16:
      memcpy(&i16, p, 2);
      ((int64_t *)t->data)[i] = i16;
      break;
    case ST_I8: ((int64_t *)t->data)[i] = (int8_t)p[0]; break;
    case ST_U8: ((int64_t *)t->data)[i] = p[0]; break;
    case ST_BOOL: ((int64_t *)t->data)[i] = p[0] != 0; break;
    case ST_COPY: break;
    }
  }
}

/* Validates header entry 'j' named 'name' (dtype, shape, offsets within a
 * data area of 'data_size' bytes) into *e. Returns 0, or -1 after reporting. */
static int parse_entry(const cJSON *j, const char *name, uint64_t data_size, const char *file,
                       st_entry *e, ir_diag *d) {
  e->name = name;
  if (!cJSON_IsObject(j)) {
    ir_diag_error(d, file, 0, "tensor '%s': header entry is not an object", name);
    return -1;
  }
  const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(j, "dtype");
  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
  const cJSON *offs = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
  if (!cJSON_IsString(dtype)) {
    ir_diag_error(d, file, 0, "tensor '%s': %s", name,
                  dtype ? "\"dtype\" is not a string" : "missing \"dtype\"");
    return -1;
  }
  e->dt = dtype_lookup(dtype->valuestring);
  if (!e->dt) {
    ir_diag_error(d, file, 0,
                  "tensor '%s': unsupported dtype '%s' (supported: F32 F64 I64 F16 BF16 I32 I16 "
                  "I8 U8 BOOL)",
                  name, dtype->valuestring);
    return -1;
  }
  if (!cJSON_IsArray(shape)) {
    ir_diag_error(d, file, 0, "tensor '%s': %s", name,
                  shape ? "\"shape\" is not an array" : "missing \"shape\"");
    return -1;
  }
  int rank = cJSON_GetArraySize(shape);
  if (rank > IR_MAX_RANK) {
    ir_diag_error(d, file, 0, "tensor '%s': rank %d exceeds the maximum rank %d", name, rank,
                  IR_MAX_RANK);
    return -1;
  }
  int64_t dims[IR_MAX_RANK];
  uint64_t numel = 1;
  for (int i = 0; i < rank; i++) {
    uint64_t v;
    if (json_uint(cJSON_GetArrayItem(shape, i), &v)) {
      ir_diag_error(d, file, 0, "tensor '%s': shape dimension %d is not a non-negative integer",
                    name, i);
      return -1;
    }
    dims[i] = (int64_t)v;
    if (__builtin_mul_overflow(numel, v, &numel) || numel > ST_MAX_INT) {
      ir_diag_error(d, file, 0, "tensor '%s': shape has too many elements", name);
      return -1;
    }
  }
  e->type = ir_type_make(e->dt->as, rank, dims);
  if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
      json_uint(cJSON_GetArrayItem(offs, 0), &e->begin) ||
      json_uint(cJSON_GetArrayItem(offs, 1), &e->end)) {
    ir_diag_error(d, file, 0, "tensor '%s': %s", name,
                  offs ? "\"data_offsets\" is not an array of two non-negative integers"
                       : "missing \"data_offsets\"");
    return -1;
  }
  if (e->begin > e->end || e->end > data_size) {
    ir_diag_error(d, file, 0,
                  "tensor '%s': data_offsets [%llu, %llu] lie outside the data area of %llu bytes",
                  name, (unsigned long long)e->begin, (unsigned long long)e->end,
                  (unsigned long long)data_size);
    return -1;
  }
  uint64_t bytes = numel * e->dt->size; /* numel <= 2^53, size <= 8: no overflow */
  if (e->end - e->begin != bytes) {
    ir_diag_error(d, file, 0,
                  "tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but %llu elements of %s "
                  "need %llu",
                  name, (unsigned long long)e->begin, (unsigned long long)e->end,
                  (unsigned long long)(e->end - e->begin), (unsigned long long)numel, e->dt->name,
                  (unsigned long long)bytes);
    return -1;
  }
  return 0;
}

/* Orders entries by data offset (empty tensors first at a tie). */
static int entry_cmp(const void *a, const void *b) {
  const st_entry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return (x->end > y->end) - (x->end < y->end);
}

/* Checks that the entries tile the data area exactly: no overlap, no gap, no
 * trailing bytes. Returns 0, or -1 after reporting. */
static int check_layout(const st_entry *entries, int n, uint64_t data_size, const char *file,
                        ir_diag *d) {
  st_entry *sorted = malloc((size_t)(n ? n : 1) * sizeof *sorted);
  if (!sorted) {
    ir_diag_error(d, file, 0, "out of memory");
    return -1;
  }
  memcpy(sorted, entries, (size_t)n * sizeof *sorted);
  qsort(sorted, (size_t)n, sizeof *sorted, entry_cmp);
  uint64_t at = 0;
  const char *prev = NULL;
  int rc = 0;
  for (int i = 0; i < n && !rc; i++) {
    if (sorted[i].begin < at) {
      ir_diag_error(d, file, 0, "tensor '%s': data [%llu, %llu] overlaps tensor '%s'",
                    sorted[i].name, (unsigned long long)sorted[i].begin,
                    (unsigned long long)sorted[i].end, prev);
      rc = -1;
    } else if (sorted[i].begin > at) {
      ir_diag_error(d, file, 0, "tensor '%s': %llu unused bytes in the data area before it",
                    sorted[i].name, (unsigned long long)(sorted[i].begin - at));
      rc = -1;
    }
    at = sorted[i].end;
    prev = sorted[i].name;
  }
  if (!rc && at != data_size) {
    ir_diag_error(d, file, 0, "data area is %llu bytes but the tensors cover %llu",
                  (unsigned long long)data_size, (unsigned long long)at);
    rc = -1;
  }
  free(sorted);
  return rc;
}

/* Copies the "__metadata__" object 'j' into 'b'. Returns 0, or -1 after reporting. */
static int parse_metadata(const cJSON *j, ir_bundle *b, const char *file, ir_diag *d) {
  if (!cJSON_IsObject(j)) {
    ir_diag_error(d, file, 0, "\"__metadata__\" is not an object");
    return -1;
  }
  for (const cJSON *m = j->child; m; m = m->next) {
    if (!cJSON_IsString(m)) {
      ir_diag_error(d, file, 0, "\"__metadata__\" key '%s' is not a string", m->string);
      return -1;
    }
    ir_bundle_set_meta(b, m->string, m->valuestring);
  }
  return 0;
}

/* Parses the JSON header 'hdr' of 'hlen' bytes, allowing trailing whitespace
 * (the padding). Returns the tree, or NULL after reporting. */
static cJSON *parse_header_json(const char *hdr, size_t hlen, const char *file, ir_diag *d) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(hdr, hlen, &end, 0);
  if (!root) {
    const char *at = cJSON_GetErrorPtr();
    long pos = at && at >= hdr && at <= hdr + hlen ? (long)(at - hdr) : -1;
    ir_diag_error(d, file, 0, "header is not valid JSON (error near header byte %ld)", pos);
    return NULL;
  }
  for (const char *p = end; p && p < hdr + hlen; p++)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      ir_diag_error(d, file, 0, "unexpected bytes after the JSON header at header byte %ld",
                    (long)(p - hdr));
      cJSON_Delete(root);
      return NULL;
    }
  if (!cJSON_IsObject(root)) {
    ir_diag_error(d, file, 0, "header is not a JSON object");
    cJSON_Delete(root);
    return NULL;
  }
  return root;
}

/* Validates every entry of header 'root' and fills 'b'. Returns a status. */
static attnc_status load_entries(const cJSON *root, const unsigned char *data, uint64_t data_size,
                                 const char *file, ir_bundle *b, ir_diag *d) {
  int n = 0;
  for (const cJSON *j = root->child; j; j = j->next) n++;
  st_entry *entries = calloc((size_t)(n ? n : 1), sizeof *entries);
  if (!entries) {
    ir_diag_error(d, file, 0, "out of memory");
    return ATTNC_ENOMEM;
  }
  int ne = 0;
  attnc_status st = ATTNC_OK;
  for (const cJSON *j = root->child; j && !st; j = j->next) {
    if (!strcmp(j->string, "__metadata__")) {
      if (parse_metadata(j, b, file, d)) st = ATTNC_EPARSE;
      continue;
    }
    for (int i = 0; i < ne && !st; i++)
      if (!strcmp(entries[i].name, j->string)) {
        ir_diag_error(d, file, 0, "tensor '%s' appears twice in the header", j->string);
        st = ATTNC_EPARSE;
      }
    if (!st && parse_entry(j, j->string, data_size, file, &entries[ne], d)) st = ATTNC_EPARSE;
    ne++;
  }
  if (!st && check_layout(entries, ne, data_size, file, d)) st = ATTNC_EPARSE;
  for (int i = 0; i < ne && !st; i++) {
    ir_tensor *t = ir_tensor_create(entries[i].type);
    if (!t) {
      ir_diag_error(d, file, 0, "tensor '%s': out of memory", entries[i].name);
      st = ATTNC_ENOMEM;
      break;
    }
    convert_data(entries[i].dt, data + entries[i].begin, ir_type_numel(&entries[i].type), t);
    ir_bundle_put(b, entries[i].name, t);
  }
  free(entries);
  return st;
}

/* Parses a whole safetensors file held in memory into a new bundle. */
attnc_status rt_safetensors_parse(const void *buf, size_t size, const char *name, ir_bundle **out,
                                  ir_diag *d) {
  const unsigned char *p = buf;
  *out = NULL;
  if (size < 8) {
    ir_diag_error(d, name, 0, "file is %zu bytes, too short for the 8-byte header length", size);
    return ATTNC_EPARSE;
  }
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
  if (hlen > RT_SAFETENSORS_MAX_HEADER) {
    ir_diag_error(d, name, 0, "header length %llu is larger than the limit of %u bytes",
                  (unsigned long long)hlen, RT_SAFETENSORS_MAX_HEADER);
    return ATTNC_EPARSE;
  }
  if (hlen > size - 8) {
    ir_diag_error(d, name, 0, "header length %llu exceeds the %zu bytes after it in the file",
                  (unsigned long long)hlen, size - 8);
    return ATTNC_EPARSE;
  }
  cJSON *root = parse_header_json((const char *)p + 8, (size_t)hlen, name, d);
  if (!root) return ATTNC_EPARSE;
  ir_bundle *b = ir_bundle_create();
  attnc_status st = ATTNC_ENOMEM;
  if (b) st = load_entries(root, p + 8 + hlen, size - 8 - hlen, name, b, d);
  else ir_diag_error(d, name, 0, "out of memory");
  cJSON_Delete(root);
  if (st) {
    ir_bundle_destroy(b);
    return st;
  }
  *out = b;
  return ATTNC_OK;
}

/* Reads the whole file 'path' into a malloc'd buffer. Returns a status. */
static attnc_status read_file(const char *path, unsigned char **buf, size_t *size, ir_diag *d) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ir_diag_error(d, path, 0, "cannot open: %s", strerror(errno));
    return ATTNC_EIO;
  }
  struct stat sb;
  if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
    ir_diag_error(d, path, 0, "not a regular file");
    close(fd);
    return ATTNC_EIO;
  }
  size_t n = (size_t)sb.st_size, got = 0;
  unsigned char *p = malloc(n ? n : 1);
  if (!p) {
    ir_diag_error(d, path, 0, "out of memory reading %zu bytes", n);
    close(fd);
    return ATTNC_ENOMEM;
  }
  while (got < n) {
    ssize_t r = read(fd, p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      ir_diag_error(d, path, 0, "read failed: %s", r ? strerror(errno) : "file shrank");
      free(p);
      close(fd);
      return ATTNC_EIO;
    }
    got += (size_t)r;
  }
  close(fd);
  *buf = p;
  *size = n;
  return ATTNC_OK;
}

/* Reads the safetensors file 'path' into a new bundle. */
attnc_status rt_safetensors_read(const char *path, ir_bundle **out, ir_diag *d) {
  unsigned char *buf = NULL;
  size_t size = 0;
  *out = NULL;
  attnc_status st = read_file(path, &buf, &size, d);
  if (st) return st;
  st = rt_safetensors_parse(buf, size, path, out, d);
  free(buf);
  return st;
}

/* Adds an integer as a raw JSON number (exact, no double rounding). */
static cJSON *json_int(long long v) {
  char s[32];
  snprintf(s, sizeof s, "%lld", v);
  return cJSON_CreateRaw(s);
}

/* Builds the JSON header of 'b' into *text (cJSON_free it). Returns a status. */
static attnc_status build_header(const ir_bundle *b, const char *path, char **text, ir_diag *d) {
  cJSON *root = cJSON_CreateObject();
  int ok = root != NULL;
  if (ok && b->nmeta) {
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    ok = meta != NULL;
    for (int i = 0; ok && i < b->nmeta; i++)
      ok = cJSON_AddStringToObject(meta, b->meta_keys[i], b->meta_values[i]) != NULL;
  }
  long long offset = 0;
  for (int i = 0; ok && i < b->count; i++) {
    const ir_tensor *t = b->tensors[i];
    if (!strcmp(b->names[i], "__metadata__")) {
      ir_diag_error(d, path, 0, "a tensor cannot be named \"__metadata__\"");
      cJSON_Delete(root);
      return ATTNC_EINVAL;
    }
    long long bytes = (long long)ir_type_numel(&t->type) * (long long)ir_dtype_size(t->type.dtype);
    cJSON *e = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
    ok = e && shape && offs;
    if (ok) {
      cJSON_AddItemToObject(root, b->names[i], e);
      const char *dt = t->type.dtype == IR_F32 ? "F32" : t->type.dtype == IR_F64 ? "F64" : "I64";
      ok = cJSON_AddStringToObject(e, "dtype", dt) != NULL;
      cJSON_AddItemToObject(e, "shape", shape);
      cJSON_AddItemToObject(e, "data_offsets", offs);
      for (int k = 0; ok && k < t->type.rank; k++)
        ok = cJSON_AddItemToArray(shape, json_int(t->type.dims[k]));
      ok = ok && cJSON_AddItemToArray(offs, json_int(offset)) &&
           cJSON_AddItemToArray(offs, json_int(offset + bytes));
    } else {
      cJSON_Delete(e);
      cJSON_Delete(shape);
      cJSON_Delete(offs);
    }
    offset += bytes;
  }
  *text = ok ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  if (*text) return ATTNC_OK;
  ir_diag_error(d, path, 0, "out of memory building the header");
  return ATTNC_ENOMEM;
}

/* What a safetensors file holds: the JSON header and the tensors. */
struct contents {
  char *header;
  const ir_bundle *b;
};

/* Writes the length prefix, padded header and data of a 'struct contents'
 * to 'fd' (an rt_file_fill). */
static int write_contents(int fd, void *ctx) {
  const char *header = ((struct contents *)ctx)->header;
  const ir_bundle *b = ((struct contents *)ctx)->b;
  size_t len = strlen(header), padded = (len + 7) & ~(size_t)7;
  unsigned char prefix[8];
  for (int i = 0; i < 8; i++) prefix[i] = (unsigned char)((uint64_t)padded >> (8 * i));
  char spaces[8] = "       ";
  if (rt_file_write_all(fd, prefix, 8) || rt_file_write_all(fd, header, len) ||
      rt_file_write_all(fd, spaces, padded - len))
    return -1;
  for (int i = 0; i < b->count; i++) {
    const ir_tensor *t = b->tensors[i];
    size_t bytes = (size_t)ir_type_numel(&t->type) * ir_dtype_size(t->type.dtype);
    if (rt_file_write_all(fd, t->data, bytes)) return -1;
  }
  return 0;
}

/* Writes bundle 'b' to 'path' atomically. */
attnc_status rt_safetensors_write(const char *path, const ir_bundle *b, ir_diag *d) {
  struct contents c = {NULL, b};
  attnc_status st = build_header(b, path, &c.header, d);
  if (st) return st;
  st = rt_file_write_atomic(path, write_contents, &c, d);
  cJSON_free(c.header);
  return st;
}
