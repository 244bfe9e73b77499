/* Tests of the safetensors reader and writer: round trips, conversions of
 * narrow dtypes, the PyTorch reference files, and rejection of corrupt files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <cmocka.h>

#include "rt_safetensors.h"
#include "util_cli.h"

/* Makes a tensor of 'dt' and shape dims[0..rank) holding vals (as doubles). */
static ir_tensor *make_tensor(ir_dtype dt, int rank, const int64_t *dims, const double *vals) {
  ir_tensor *t = ir_tensor_create(ir_type_make(dt, rank, dims));
  assert_non_null(t);
  int64_t n = ir_type_numel(&t->type);
  for (int64_t i = 0; i < n; i++) ir_tensor_set(t, i, vals[i]);
  return t;
}

/* Writes a safetensors file made of 'header' (its length prefix is 'hlen',
 * or strlen(header) when hlen is -1) followed by 'ndata' bytes 0..ndata-1. */
static void write_raw(const char *path, const char *header, long long hlen, size_t ndata) {
  size_t len = strlen(header);
  size_t total = 8 + len + ndata;
  unsigned char *buf = malloc(total);
  assert_non_null(buf);
  uint64_t h = hlen < 0 ? (uint64_t)len : (uint64_t)hlen;
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(h >> (8 * i));
  memcpy(buf + 8, header, len);
  for (size_t i = 0; i < ndata; i++) buf[8 + len + i] = (unsigned char)i;
  assert_int_equal(tc_write_file(path, buf, total), 0);
  free(buf);
}

/* Returns the number of entries of 'dir' other than . and .. */
static int count_dir_entries(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

/* f32, f64 and i64 tensors (with a scalar, an empty tensor and metadata)
 * come back identical, in order, from a file with a padded header. */
static void test_round_trip(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  char *path = tc_path(dir, "rt.safetensors");
  ir_bundle *b = ir_bundle_create();
  const int64_t d23[] = {2, 3}, d4[] = {4}, d03[] = {0, 3};
  const double v6[] = {1.5, -2.25, 3e-8, 1e30, -0.0, 7};
  const double big[] = {-9007199254740993.0, 0, 42, -1};
  const double pi = 3.141592653589793;
  ir_bundle_put(b, "zeta.w", make_tensor(IR_F32, 2, d23, v6));
  ir_bundle_put(b, "alpha", make_tensor(IR_F64, 0, NULL, &pi));
  ir_bundle_put(b, "idx", make_tensor(IR_I64, 1, d4, big));
  ir_bundle_put(b, "empty", make_tensor(IR_F32, 2, d03, NULL));
  ((int64_t *)ir_bundle_get(b, "idx")->data)[0] = INT64_MIN + 1; /* not a double */
  ir_bundle_set_meta(b, "model", "tiny \"quoted\"");
  ir_bundle_set_meta(b, "batch", "4");
  ir_diag *d = ir_diag_create();
  assert_int_equal(rt_safetensors_write(path, b, d), ATTNC_OK);

  size_t n;
  unsigned char *raw = (unsigned char *)tc_read_file(path, &n);
  assert_non_null(raw);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | raw[i];
  assert_int_equal(hlen % 8, 0);
  assert_int_equal(n, 8 + hlen + 6 * 4 + 8 + 4 * 8 + 0);
  assert_int_equal(raw[8], '{');
  free(raw);

  ir_bundle *r = NULL;
  assert_int_equal(rt_safetensors_read(path, &r, d), ATTNC_OK);
  assert_int_equal(ir_diag_count(d), 0);
  assert_int_equal(r->count, 4);
  const char *order[] = {"zeta.w", "alpha", "idx", "empty"};
  for (int i = 0; i < 4; i++) {
    assert_string_equal(r->names[i], order[i]);
    const ir_tensor *a = ir_bundle_get(b, order[i]), *c = r->tensors[i];
    assert_true(ir_type_equal(&a->type, &c->type));
    size_t bytes = (size_t)ir_type_numel(&a->type) * ir_dtype_size(a->type.dtype);
    if (bytes) assert_memory_equal(a->data, c->data, bytes);
  }
  assert_int_equal(ir_bundle_get(r, "alpha")->type.rank, 0);
  assert_int_equal(((int64_t *)ir_bundle_get(r, "idx")->data)[0], INT64_MIN + 1);
  assert_int_equal(r->nmeta, 2);
  assert_string_equal(ir_bundle_get_meta(r, "model"), "tiny \"quoted\"");
  assert_string_equal(ir_bundle_get_meta(r, "batch"), "4");
  ir_bundle_destroy(r);
  ir_bundle_destroy(b);
  ir_diag_destroy(d);
  tc_rmtree(dir);
  free(path);
  free(dir);
}

/* A write that fails leaves the existing file intact and no temporary file;
 * a successful overwrite replaces it. */
static void test_atomic_write(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  char *path = tc_path(dir, "out.safetensors");
  assert_int_equal(tc_write_file(path, "precious", 8), 0);
  ir_bundle *bad = ir_bundle_create();
  const double one = 1;
  ir_bundle_put(bad, "ok", make_tensor(IR_F32, 0, NULL, &one));
  ir_bundle_put(bad, "__metadata__", make_tensor(IR_F32, 0, NULL, &one));
  ir_diag *d = ir_diag_create();
  assert_int_equal(rt_safetensors_write(path, bad, d), ATTNC_EINVAL);
  assert_non_null(strstr(ir_diag_text(d), "__metadata__"));
  char *kept = tc_read_file(path, NULL);
  assert_string_equal(kept, "precious");
  free(kept);
  assert_int_equal(count_dir_entries(dir), 1);

  char *nodir = tc_path(dir, "missing/out.safetensors");
  ir_diag_clear(d);
  assert_int_equal(rt_safetensors_write(nodir, bad, d), ATTNC_EINVAL);
  ir_bundle_destroy(bad);
  ir_bundle *good = ir_bundle_create();
  ir_bundle_put(good, "x", make_tensor(IR_F32, 0, NULL, &one));
  ir_diag_clear(d);
  assert_int_equal(rt_safetensors_write(nodir, good, d), ATTNC_EIO);
  assert_non_null(strstr(ir_diag_text(d), "missing/out.safetensors"));
  assert_int_equal(rt_safetensors_write(path, good, d), ATTNC_OK);
  assert_int_equal(count_dir_entries(dir), 1);
  ir_bundle *r = NULL;
  assert_int_equal(rt_safetensors_read(path, &r, d), ATTNC_OK);
  assert_int_equal(r->count, 1);
  assert_true(ir_tensor_get(r->tensors[0], 0) == 1.0);
  ir_bundle_destroy(r);
  ir_bundle_destroy(good);
  ir_diag_destroy(d);
  tc_rmtree(dir);
  free(nodir);
  free(path);
  free(dir);
}

/* F16, BF16, I32, U8 and BOOL tensors are read as f32 / i64 with the values
 * their bit patterns encode. */
static void test_narrow_dtypes(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  char *path = tc_path(dir, "narrow.safetensors");
  const char *hdr = "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]},"
                    "\"i\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[12,16]},"
                    "\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[16,17]},"
                    "\"z\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[17,19]}}";
  /* 1.0, -2.0, 0.5, smallest subnormal 2^-24 | 1.0, -3.0 | -5 | 200 | 0, 1 */
  const unsigned char data[] = {0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0x01, 0x00, 0x80, 0x3F,
                                0x40, 0xC0, 0xFB, 0xFF, 0xFF, 0xFF, 200,  0,    1};
  size_t len = strlen(hdr);
  unsigned char *buf = malloc(8 + len + sizeof data);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)len >> (8 * i));
  memcpy(buf + 8, hdr, len);
  memcpy(buf + 8 + len, data, sizeof data);
  assert_int_equal(tc_write_file(path, buf, 8 + len + sizeof data), 0);
  free(buf);
  ir_diag *d = ir_diag_create();
  ir_bundle *r = NULL;
  assert_int_equal(rt_safetensors_read(path, &r, d), ATTNC_OK);
  const ir_tensor *h = ir_bundle_get(r, "h"), *b = ir_bundle_get(r, "b");
  assert_int_equal(h->type.dtype, IR_F32);
  assert_true(ir_tensor_get(h, 0) == 1.0 && ir_tensor_get(h, 1) == -2.0);
  assert_true(ir_tensor_get(h, 2) == 0.5 && ir_tensor_get(h, 3) == 1.0 / 16777216.0);
  assert_true(ir_tensor_get(b, 0) == 1.0 && ir_tensor_get(b, 1) == -3.0);
  assert_int_equal(ir_bundle_get(r, "i")->type.dtype, IR_I64);
  assert_true(ir_tensor_get(ir_bundle_get(r, "i"), 0) == -5);
  assert_true(ir_tensor_get(ir_bundle_get(r, "u"), 0) == 200);
  assert_true(ir_tensor_get(ir_bundle_get(r, "z"), 0) == 0);
  assert_true(ir_tensor_get(ir_bundle_get(r, "z"), 1) == 1);
  ir_bundle_destroy(r);
  ir_diag_destroy(d);
  tc_rmtree(dir);
  free(path);
  free(dir);
}

/* The PyTorch reference weights of ResNet-20 with HAM read with the names,
 * shapes and metadata that torch wrote. */
static void test_reference_files(void **state) {
  (void)state;
  const char *ref = getenv("ATTNC_REFERENCE");
  if (!ref) skip();
  char path[4096];
  snprintf(path, sizeof path, "%s/golden/resnet20_ham/weights.safetensors", ref);
  ir_diag *d = ir_diag_create();
  ir_bundle *w = NULL;
  assert_int_equal(rt_safetensors_read(path, &w, d), ATTNC_OK);
  assert_int_equal(w->count, 179);
  const ir_tensor *t = ir_bundle_get(w, "layers.0.conv1.weight");
  assert_non_null(t);
  char ty[64];
  ir_type_format(&t->type, ty, sizeof ty);
  assert_string_equal(ty, "f32[16,16,3,3]");
  assert_string_equal(w->names[0], "conv1.weight");
  assert_string_equal(ir_bundle_get_meta(w, "attention"), "ham");
  ir_bundle_destroy(w);
  snprintf(path, sizeof path, "%s/golden/resnet20_ham/input.safetensors", ref);
  ir_bundle *x = NULL;
  assert_int_equal(rt_safetensors_read(path, &x, d), ATTNC_OK);
  ir_type_format(&ir_bundle_get(x, "input")->type, ty, sizeof ty);
  assert_string_equal(ty, "f32[4,3,32,32]");
  ir_type_format(&ir_bundle_get(x, "labels")->type, ty, sizeof ty);
  assert_string_equal(ty, "i64[4]");
  for (int i = 0; i < 4; i++) {
    double l = ir_tensor_get(ir_bundle_get(x, "labels"), i);
    assert_true(l >= 0 && l < 10);
  }
  ir_bundle_destroy(x);
  ir_diag_destroy(d);
}

/* One corrupt file: its header (length prefix hlen, -1 = exact), data size,
 * and a piece of the message it must be rejected with. */
typedef struct {
  const char *header;
  long long hlen;
  size_t ndata;
  const char *message;
} corrupt_case;

static const corrupt_case corrupt_cases[] = {
    {"", -2, 0, "too short for the 8-byte header length"},
    {"{}", 200LL * 1024 * 1024, 0, "larger than the limit"},
    {"{}", 100, 0, "header length 100 exceeds the 2 bytes"},
    {"{\"a\":", -1, 0, "header is not valid JSON"},
    {"{} x", -1, 0, "unexpected bytes after the JSON header"},
    {"[1,2]", -1, 0, "header is not a JSON object"},
    {"{\"a\":3}", -1, 0, "tensor 'a': header entry is not an object"},
    {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 4, "tensor 'a': missing \"dtype\""},
    {"{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 4,
     "tensor 'a': \"dtype\" is not a string"},
    {"{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", -1, 1,
     "tensor 'a': unsupported dtype 'F8_E4M3'"},
    {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", -1, 4, "tensor 'a': missing \"shape\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", -1, 4,
     "tensor 'a': shape dimension 0 is not a non-negative integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,2.5],\"data_offsets\":[0,4]}}", -1, 4,
     "tensor 'a': shape dimension 1 is not a non-negative integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", -1, 4,
     "tensor 'a': rank 9 exceeds the maximum rank 8"},
    {"{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", -1, 8,
     "tensor 'a': shape has too many elements"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", -1, 8, "tensor 'a': missing \"data_offsets\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", -1, 8,
     "\"data_offsets\" is not an array of two non-negative integers"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", -1, 4,
     "tensor 'a': data_offsets [0, 4] hold 4 bytes but 2 elements of F32 need 8"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 4,
     "tensor 'a': data_offsets [0, 8] lie outside the data area of 4 bytes"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", -1, 4,
     "tensor 'a': data_offsets [4, 0] lie outside"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}",
     -1, 6, "tensor 'b': data [2, 6] overlaps tensor 'a'"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
     -1, 12, "tensor 'b': 4 unused bytes in the data area before it"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 8,
     "data area is 8 bytes but the tensors cover 4"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     -1, 8, "tensor 'a' appears twice in the header"},
    {"{\"__metadata__\":{\"k\":1}}", -1, 0, "\"__metadata__\" key 'k' is not a string"},
    {"{\"__metadata__\":[]}", -1, 0, "\"__metadata__\" is not an object"},
};

/* Every corrupt file is rejected with ATTNC_EPARSE and a message naming the
 * file and saying what is wrong; nothing is returned. */
static void test_corrupt_files(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  int n = (int)(sizeof corrupt_cases / sizeof corrupt_cases[0]);
  assert_true(n >= 12);
  for (int i = 0; i < n; i++) {
    const corrupt_case *c = &corrupt_cases[i];
    char name[32];
    snprintf(name, sizeof name, "bad%02d.safetensors", i);
    char *path = tc_path(dir, name);
    if (c->hlen == -2)
      assert_int_equal(tc_write_file(path, "\x05\0\0\0", 4), 0);
    else
      write_raw(path, c->header, c->hlen, c->ndata);
    ir_diag *d = ir_diag_create();
    ir_bundle *b = (ir_bundle *)1;
    attnc_status st = rt_safetensors_read(path, &b, d);
    const char *text = ir_diag_text(d);
    if (st != ATTNC_EPARSE || !strstr(text, c->message) || !strstr(text, name))
      fail_msg("case %d (%s): status %d, message '%s'", i, c->message, st, text);
    assert_null(b);
    ir_diag_destroy(d);
    free(path);
  }
  tc_rmtree(dir);
  free(dir);
}

/* A missing file is an I/O error naming the file. */
static void test_missing_file(void **state) {
  (void)state;
  ir_diag *d = ir_diag_create();
  ir_bundle *b = NULL;
  assert_int_equal(rt_safetensors_read("/nonexistent/x.safetensors", &b, d), ATTNC_EIO);
  assert_non_null(strstr(ir_diag_text(d), "/nonexistent/x.safetensors: cannot open"));
  assert_null(b);
  ir_diag_destroy(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_atomic_write),
      cmocka_unit_test(test_narrow_dtypes),   cmocka_unit_test(test_reference_files),
      cmocka_unit_test(test_corrupt_files),   cmocka_unit_test(test_missing_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
