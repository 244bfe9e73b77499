/* Training checkpoints: the state bundle written with rt_safetensors_write
 * (atomic) plus "attnc.*" metadata, read back with validation, and the
 * FNV-1a hash that identifies a model file without git. */
#include "rt_ckpt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_safetensors.h"

#define CKPT_FORMAT "1"
#define META_PREFIX "attnc."

/* Returns 1 if the NUL-terminated string in field[0..size) ends in it. */
static int fits(const char *field, size_t size) { return memchr(field, '\0', size) != NULL; }

/* Copies 'state's non-attnc metadata into 'view' and adds the info keys. */
static void fill_meta(ir_bundle *view, const ir_bundle *state, const rt_ckpt_info *info) {
  for (int i = 0; i < state->nmeta; i++)
    if (strncmp(state->meta_keys[i], META_PREFIX, strlen(META_PREFIX)) != 0)
      ir_bundle_set_meta(view, state->meta_keys[i], state->meta_values[i]);
  char num[32];
  ir_bundle_set_meta(view, "attnc.format", CKPT_FORMAT);
  snprintf(num, sizeof num, "%" PRId64, info->epoch);
  ir_bundle_set_meta(view, "attnc.epoch", num);
  snprintf(num, sizeof num, "%" PRId64, info->batch);
  ir_bundle_set_meta(view, "attnc.batch", num);
  snprintf(num, sizeof num, "%" PRId64, info->step);
  ir_bundle_set_meta(view, "attnc.step", num);
  snprintf(num, sizeof num, "%" PRIu64, info->seed);
  ir_bundle_set_meta(view, "attnc.seed", num);
  ir_bundle_set_meta(view, "attnc.model", info->model);
  ir_bundle_set_meta(view, "attnc.options", info->options);
  ir_bundle_set_meta(view, "attnc.spec_hash", info->spec_hash);
}

attnc_status rt_ckpt_save(const char *path, const ir_bundle *state, const rt_ckpt_info *info, ir_diag *d) {
  if (info->epoch < 0 || info->batch < 0 || info->step < 0) {
    ir_diag_error(d, NULL, 0, "%s: checkpoint counts must be >= 0 (epoch %" PRId64 ", batch %" PRId64
                  ", step %" PRId64 ")", path, info->epoch, info->batch, info->step);
    return ATTNC_EINVAL;
  }
  if (!fits(info->model, sizeof info->model) || !fits(info->options, sizeof info->options) ||
      !fits(info->spec_hash, sizeof info->spec_hash)) {
    ir_diag_error(d, NULL, 0, "%s: checkpoint info text is not NUL-terminated", path);
    return ATTNC_EINVAL;
  }
  /* A bundle that borrows state's tensors and has its own metadata. */
  ir_bundle *view = ir_bundle_create();
  if (!view) {
    ir_diag_error(d, NULL, 0, "%s: out of memory", path);
    return ATTNC_ENOMEM;
  }
  fill_meta(view, state, info);
  view->count = state->count;
  view->names = state->names;
  view->tensors = state->tensors;
  attnc_status st = rt_safetensors_write(path, view, d);
  view->count = 0;
  view->names = NULL;
  view->tensors = NULL;
  ir_bundle_destroy(view);
  return st;
}

/* Parses the whole of 's' as a decimal integer in [0, max] into *v. */
static int parse_count(const char *s, uint64_t max, uint64_t *v) {
  if (!*s) return -1;
  uint64_t x = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    unsigned digit = (unsigned)(*s - '0');
    if (x > (max - digit) / 10) return -1;
    x = x * 10 + digit;
  }
  *v = x;
  return 0;
}

/* Reads the required count 'key' of 'b' (at most 'max') into *v. */
static attnc_status meta_count(const ir_bundle *b, const char *path, const char *key, uint64_t max, uint64_t *v,
                               ir_diag *d) {
  const char *s = ir_bundle_get_meta(b, key);
  if (!s) {
    ir_diag_error(d, NULL, 0, "%s: checkpoint metadata lacks '%s'", path, key);
    return ATTNC_EPARSE;
  }
  if (parse_count(s, max, v)) {
    ir_diag_error(d, NULL, 0, "%s: checkpoint metadata '%s' = '%s' is not a decimal integer in [0, %" PRIu64 "]",
                  path, key, s, max);
    return ATTNC_EPARSE;
  }
  return ATTNC_OK;
}

/* Copies the optional text 'key' of 'b' into field[0..size) ("" if absent). */
static attnc_status meta_text(const ir_bundle *b, const char *path, const char *key, char *field, size_t size,
                              ir_diag *d) {
  const char *s = ir_bundle_get_meta(b, key);
  if (!s) s = "";
  if (strlen(s) >= size) {
    ir_diag_error(d, NULL, 0, "%s: checkpoint metadata '%s' is longer than %zu characters", path, key, size - 1);
    return ATTNC_EPARSE;
  }
  memcpy(field, s, strlen(s) + 1);
  return ATTNC_OK;
}

/* Fills *info from the attnc.* metadata of 'b' (a file with none: zeroed). */
static attnc_status parse_info(const ir_bundle *b, const char *path, rt_ckpt_info *info, ir_diag *d) {
  memset(info, 0, sizeof *info);
  int any = 0;
  for (int i = 0; i < b->nmeta; i++)
    if (strncmp(b->meta_keys[i], META_PREFIX, strlen(META_PREFIX)) == 0) any = 1;
  if (!any) return ATTNC_OK;
  const char *format = ir_bundle_get_meta(b, "attnc.format");
  if (!format) {
    ir_diag_error(d, NULL, 0, "%s: checkpoint metadata lacks 'attnc.format'", path);
    return ATTNC_EPARSE;
  }
  if (strcmp(format, CKPT_FORMAT) != 0) {
    ir_diag_error(d, NULL, 0, "%s: checkpoint metadata 'attnc.format' = '%s' is not supported (expected '%s')", path,
                  format, CKPT_FORMAT);
    return ATTNC_EPARSE;
  }
  uint64_t epoch, batch, step, seed;
  attnc_status st;
  if ((st = meta_count(b, path, "attnc.epoch", INT64_MAX, &epoch, d)) ||
      (st = meta_count(b, path, "attnc.batch", INT64_MAX, &batch, d)) ||
      (st = meta_count(b, path, "attnc.step", INT64_MAX, &step, d)) ||
      (st = meta_count(b, path, "attnc.seed", UINT64_MAX, &seed, d)) ||
      (st = meta_text(b, path, "attnc.model", info->model, sizeof info->model, d)) ||
      (st = meta_text(b, path, "attnc.options", info->options, sizeof info->options, d)) ||
      (st = meta_text(b, path, "attnc.spec_hash", info->spec_hash, sizeof info->spec_hash, d))) {
    memset(info, 0, sizeof *info);
    return st;
  }
  info->epoch = (int64_t)epoch;
  info->batch = (int64_t)batch;
  info->step = (int64_t)step;
  info->seed = seed;
  return ATTNC_OK;
}

attnc_status rt_ckpt_load(const char *path, ir_bundle **state, rt_ckpt_info *info, ir_diag *d) {
  *state = NULL;
  memset(info, 0, sizeof *info);
  ir_bundle *b = NULL;
  attnc_status st = rt_safetensors_read(path, &b, d);
  if (st != ATTNC_OK) return st;
  st = parse_info(b, path, info, d);
  if (st != ATTNC_OK) {
    ir_bundle_destroy(b);
    return st;
  }
  *state = b;
  return ATTNC_OK;
}

attnc_status rt_file_hash(const char *path, char out[17], ir_diag *d) {
  out[0] = '\0';
  FILE *f = fopen(path, "rb");
  if (!f) {
    ir_diag_error(d, NULL, 0, "%s: cannot open: %s", path, strerror(errno));
    return ATTNC_EIO;
  }
  uint64_t h = 0xcbf29ce484222325ull;
  unsigned char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    for (size_t i = 0; i < n; i++) {
      h ^= buf[i];
      h *= 0x100000001b3ull;
    }
  int failed = ferror(f);
  fclose(f);
  if (failed) {
    ir_diag_error(d, NULL, 0, "%s: read error", path);
    return ATTNC_EIO;
  }
  snprintf(out, 17, "%016" PRIx64, h);
  return ATTNC_OK;
}
