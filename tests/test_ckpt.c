/* Tests of training checkpoints: round trip of tensors and every info
 * field, plain safetensors weights, malformed attnc metadata, truncated
 * files, atomic replacement when a write fails, and the FNV-1a file hash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <dirent.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "rt_ckpt.h"
#include "rt_safetensors.h"
#include "util_cli.h"

/* Returns a tensor of 'dt' with shape dims[0..rank) holding 0.5*i - 1 at i. */
static ir_tensor *ramp(ir_dtype dt, int rank, const int64_t *dims) {
  ir_tensor *t = ir_tensor_create(ir_type_make(dt, rank, dims));
  assert_non_null(t);
  for (int64_t i = 0; i < ir_type_numel(&t->type); i++) ir_tensor_set(t, i, dt == IR_I64 ? (double)i : 0.5 * i - 1);
  return t;
}

/* A small training state: a weight, a batch-norm counter, a momentum. */
static ir_bundle *small_state(void) {
  ir_bundle *b = ir_bundle_create();
  assert_non_null(b);
  const int64_t wd[2] = {2, 3}, cd[1] = {1};
  ir_bundle_put(b, "conv.weight", ramp(IR_F32, 2, wd));
  ir_bundle_put(b, "bn.num_batches_tracked", ramp(IR_I64, 1, cd));
  ir_bundle_put(b, "optim.conv.weight.momentum", ramp(IR_F64, 2, wd));
  return b;
}

/* Checks that 'b' holds exactly the tensors of small_state(). */
static void check_small_state(const ir_bundle *b) {
  ir_bundle *want = small_state();
  assert_int_equal(b->count, want->count);
  for (int i = 0; i < want->count; i++) {
    const ir_tensor *t = ir_bundle_get(b, want->names[i]);
    assert_non_null(t);
    assert_true(ir_type_equal(&t->type, &want->tensors[i]->type));
    for (int64_t k = 0; k < ir_type_numel(&t->type); k++)
      assert_float_equal(ir_tensor_get(t, k), ir_tensor_get(want->tensors[i], k), 0);
  }
  ir_bundle_destroy(want);
}

/* Info with every field set, including the largest seed and JSON text. */
static rt_ckpt_info full_info(void) {
  rt_ckpt_info in;
  memset(&in, 0, sizeof in);
  in.epoch = 3;
  in.batch = 17;
  in.step = 12345;
  in.seed = UINT64_MAX;
  snprintf(in.model, sizeof in.model, "models/resnet_ham.lua");
  snprintf(in.options, sizeof in.options, "{\"lr\":0.1,\"D\":[\"depth=20\",\"note=\\\"q\\\"\"]}");
  snprintf(in.spec_hash, sizeof in.spec_hash, "86594da807cd0d8b");
  return in;
}

static void test_round_trip(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  assert_non_null(dir);
  char *path = tc_path(dir, "ck.safetensors");
  ir_diag *d = ir_diag_create();
  ir_bundle *b = small_state();
  ir_bundle_set_meta(b, "user.note", "kept");
  ir_bundle_set_meta(b, "attnc.epoch", "999"); /* stale: replaced by info */
  rt_ckpt_info in = full_info();
  assert_int_equal(rt_ckpt_save(path, b, &in, d), ATTNC_OK);
  ir_bundle_destroy(b);
  ir_bundle *got = NULL;
  rt_ckpt_info out;
  assert_int_equal(rt_ckpt_load(path, &got, &out, d), ATTNC_OK);
  assert_int_equal(ir_diag_count(d), 0);
  check_small_state(got);
  assert_int_equal(out.epoch, 3);
  assert_int_equal(out.batch, 17);
  assert_int_equal(out.step, 12345);
  assert_true(out.seed == UINT64_MAX);
  assert_string_equal(out.model, in.model);
  assert_string_equal(out.options, in.options);
  assert_string_equal(out.spec_hash, in.spec_hash);
  assert_string_equal(ir_bundle_get_meta(got, "user.note"), "kept");
  assert_string_equal(ir_bundle_get_meta(got, "attnc.seed"), "18446744073709551615");
  assert_string_equal(ir_bundle_get_meta(got, "attnc.format"), "1");
  ir_bundle_destroy(got);
  ir_diag_destroy(d);
  free(path);
  tc_rmtree(dir);
  free(dir);
}

/* A plain safetensors file (as PyTorch writes) loads as weights only. */
static void test_plain_weights(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  assert_non_null(dir);
  char *path = tc_path(dir, "w.safetensors");
  ir_diag *d = ir_diag_create();
  ir_bundle *b = small_state();
  ir_bundle_set_meta(b, "format", "pt");
  assert_int_equal(rt_safetensors_write(path, b, d), ATTNC_OK);
  ir_bundle_destroy(b);
  ir_bundle *got = NULL;
  rt_ckpt_info out;
  memset(&out, 0x5a, sizeof out);
  assert_int_equal(rt_ckpt_load(path, &got, &out, d), ATTNC_OK);
  check_small_state(got);
  rt_ckpt_info zero;
  memset(&zero, 0, sizeof zero);
  assert_memory_equal(&out, &zero, sizeof zero);
  ir_bundle_destroy(got);
  ir_diag_destroy(d);
  free(path);
  tc_rmtree(dir);
  free(dir);
}

/* Writes a checkpoint whose metadata is full_info()'s with 'key' set to
 * 'value' (NULL: removed), and checks that loading names file and key. */
static void expect_bad_meta(const char *dir, const char *key, const char *value, const char *needle) {
  char *path = tc_path(dir, "bad.safetensors");
  ir_diag *d = ir_diag_create();
  ir_bundle *b = small_state();
  rt_ckpt_info in = full_info();
  assert_int_equal(rt_ckpt_save(path, b, &in, d), ATTNC_OK);
  ir_bundle_destroy(b);
  assert_int_equal(rt_safetensors_read(path, &b, d), ATTNC_OK);
  if (value) {
    ir_bundle_set_meta(b, key, value);
  } else {
    for (int i = 0; i < b->nmeta; i++)
      if (strcmp(b->meta_keys[i], key) == 0) {
        free(b->meta_keys[i]);
        free(b->meta_values[i]);
        b->meta_keys[i] = b->meta_keys[b->nmeta - 1];
        b->meta_values[i] = b->meta_values[b->nmeta - 1];
        b->nmeta--;
        break;
      }
  }
  assert_int_equal(rt_safetensors_write(path, b, d), ATTNC_OK);
  ir_bundle_destroy(b);
  ir_bundle *got = (ir_bundle *)1;
  rt_ckpt_info out;
  assert_int_equal(rt_ckpt_load(path, &got, &out, d), ATTNC_EPARSE);
  assert_null(got);
  assert_int_equal(out.epoch, 0);
  const char *msg = ir_diag_text(d);
  if (!strstr(msg, path) || !strstr(msg, needle))
    fail_msg("%s=%s: message '%s' lacks the path or '%s'", key, value ? value : "(removed)", msg, needle);
  ir_diag_destroy(d);
  free(path);
}

static void test_bad_metadata(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  assert_non_null(dir);
  expect_bad_meta(dir, "attnc.epoch", "abc", "'attnc.epoch' = 'abc'");
  expect_bad_meta(dir, "attnc.epoch", "-1", "'attnc.epoch' = '-1'");
  expect_bad_meta(dir, "attnc.batch", "12x", "'attnc.batch'");
  expect_bad_meta(dir, "attnc.step", "", "'attnc.step'");
  expect_bad_meta(dir, "attnc.step", "9223372036854775808", "'attnc.step'");
  expect_bad_meta(dir, "attnc.seed", "18446744073709551616", "'attnc.seed'");
  expect_bad_meta(dir, "attnc.seed", " 1", "'attnc.seed'");
  expect_bad_meta(dir, "attnc.batch", NULL, "lacks 'attnc.batch'");
  expect_bad_meta(dir, "attnc.format", "2", "'attnc.format' = '2'");
  expect_bad_meta(dir, "attnc.format", NULL, "lacks 'attnc.format'");
  char hash[200];
  memset(hash, 'f', sizeof hash - 1);
  hash[sizeof hash - 1] = '\0';
  expect_bad_meta(dir, "attnc.spec_hash", hash, "'attnc.spec_hash' is longer");
  tc_rmtree(dir);
  free(dir);
}

/* Truncated and empty checkpoints are errors, not crashes. */
static void test_truncated(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  assert_non_null(dir);
  char *path = tc_path(dir, "ck.safetensors");
  char *cut = tc_path(dir, "cut.safetensors");
  ir_diag *d = ir_diag_create();
  ir_bundle *b = small_state();
  rt_ckpt_info in = full_info();
  assert_int_equal(rt_ckpt_save(path, b, &in, d), ATTNC_OK);
  ir_bundle_destroy(b);
  size_t n = 0;
  char *bytes = tc_read_file(path, &n);
  assert_non_null(bytes);
  const size_t keep[] = {0, 4, 8, 20, n / 2, n - 1};
  for (int i = 0; i < 6; i++) {
    assert_int_equal(tc_write_file(cut, bytes, keep[i]), 0);
    ir_bundle *got = NULL;
    rt_ckpt_info out;
    ir_diag_clear(d);
    assert_int_not_equal(rt_ckpt_load(cut, &got, &out, d), ATTNC_OK);
    assert_null(got);
    assert_non_null(strstr(ir_diag_text(d), cut));
  }
  free(bytes);
  ir_bundle *got = NULL;
  rt_ckpt_info out;
  char *missing = tc_path(dir, "missing.safetensors");
  assert_int_equal(rt_ckpt_load(missing, &got, &out, d), ATTNC_EIO);
  free(missing);
  ir_diag_destroy(d);
  free(path);
  free(cut);
  tc_rmtree(dir);
  free(dir);
}

/* Returns the number of entries of 'dir' other than . and .. */
static int count_entries(const char *dir) {
  DIR *h = opendir(dir);
  assert_non_null(h);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(h)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(h);
  return n;
}

/* Loads 'path' and checks it is still the epoch-3 checkpoint of full_info. */
static void expect_original(const char *path) {
  ir_diag *d = ir_diag_create();
  ir_bundle *got = NULL;
  rt_ckpt_info out;
  assert_int_equal(rt_ckpt_load(path, &got, &out, d), ATTNC_OK);
  check_small_state(got);
  assert_int_equal(out.epoch, 3);
  ir_bundle_destroy(got);
  ir_diag_destroy(d);
}

/* A failed write leaves the existing checkpoint intact and no temporary
 * file behind: a directory that does not exist, a file size limit hit
 * mid-write (works as root too), a read-only directory (non-root only). */
static void test_atomic(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  assert_non_null(dir);
  char *path = tc_path(dir, "ck.safetensors");
  ir_diag *d = ir_diag_create();
  ir_bundle *b = small_state();
  rt_ckpt_info in = full_info();
  assert_int_equal(rt_ckpt_save(path, b, &in, d), ATTNC_OK);
  ir_bundle_destroy(b);

  char *nodir = tc_path(dir, "no/such/dir/ck.safetensors");
  b = small_state();
  assert_int_equal(rt_ckpt_save(nodir, b, &in, d), ATTNC_EIO);
  assert_non_null(strstr(ir_diag_text(d), nodir));
  ir_bundle_destroy(b);
  free(nodir);

  /* a big state written under a 64 KiB file size limit fails with EFBIG */
  b = small_state();
  const int64_t big[1] = {1 << 18};
  ir_bundle_put(b, "big", ir_tensor_create(ir_type_make(IR_F32, 1, big)));
  rt_ckpt_info later = in;
  later.epoch = 4;
  struct rlimit old, small;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  small = old;
  small.rlim_cur = 65536;
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
  ir_diag_clear(d);
  attnc_status st = rt_ckpt_save(path, b, &later, d);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, prev);
  assert_int_equal(st, ATTNC_EIO);
  assert_true(ir_diag_count(d) >= 1);
  expect_original(path);
  assert_int_equal(count_entries(dir), 1);

  if (geteuid() != 0) {
    assert_int_equal(chmod(dir, 0500), 0);
    ir_diag_clear(d);
    st = rt_ckpt_save(path, b, &later, d);
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(st, ATTNC_EIO);
    expect_original(path);
    assert_int_equal(count_entries(dir), 1);
  }
  ir_bundle_destroy(b);
  ir_diag_destroy(d);
  free(path);
  tc_rmtree(dir);
  free(dir);
}

/* FNV-1a 64 of known bytes; expected values computed with python:
 * h = 0xcbf29ce484222325; for b in data: h = ((h ^ b) * 0x100000001b3) % 2**64 */
static void test_file_hash(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  assert_non_null(dir);
  char *path = tc_path(dir, "spec.lua");
  ir_diag *d = ir_diag_create();
  char out[17];
  assert_int_equal(tc_write_file(path, "hello attnc\n", 12), 0);
  assert_int_equal(rt_file_hash(path, out, d), ATTNC_OK);
  assert_string_equal(out, "86594da807cd0d8b");
  assert_int_equal(tc_write_file(path, "a", 1), 0);
  assert_int_equal(rt_file_hash(path, out, d), ATTNC_OK);
  assert_string_equal(out, "af63dc4c8601ec8c");
  assert_int_equal(tc_write_file(path, "", 0), 0);
  assert_int_equal(rt_file_hash(path, out, d), ATTNC_OK);
  assert_string_equal(out, "cbf29ce484222325");
  char *missing = tc_path(dir, "missing.lua");
  assert_int_equal(rt_file_hash(missing, out, d), ATTNC_EIO);
  assert_non_null(strstr(ir_diag_text(d), missing));
  free(missing);
  ir_diag_destroy(d);
  free(path);
  tc_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip), cmocka_unit_test(test_plain_weights), cmocka_unit_test(test_bad_metadata),
      cmocka_unit_test(test_truncated),  cmocka_unit_test(test_atomic),        cmocka_unit_test(test_file_hash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
