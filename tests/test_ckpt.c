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

/* Per-test state: a fresh directory holding "ck.safetensors", the
 * checkpoint of small_state() and full_info(), and a diagnostic context. */
typedef struct {
  char *dir, *path;
  ir_diag *d;
} ck_fixture;

static int setup(void **state) {
  ck_fixture *fx = calloc(1, sizeof *fx);
  assert_non_null(fx);
  fx->dir = tc_tempdir();
  assert_non_null(fx->dir);
  fx->path = tc_path(fx->dir, "ck.safetensors");
  fx->d = ir_diag_create();
  ir_bundle *b = small_state();
  rt_ckpt_info in = full_info();
  assert_int_equal(rt_ckpt_save(fx->path, b, &in, fx->d), ATTNC_OK);
  ir_bundle_destroy(b);
  *state = fx;
  return 0;
}

static int teardown(void **state) {
  ck_fixture *fx = *state;
  ir_diag_destroy(fx->d);
  free(fx->path);
  tc_rmtree(fx->dir);
  free(fx->dir);
  free(fx);
  return 0;
}

static void test_round_trip(void **state) {
  ck_fixture *fx = *state;
  const char *path = fx->path;
  ir_diag *d = fx->d;
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
}

/* A plain safetensors file (as PyTorch writes) loads as weights only. */
static void test_plain_weights(void **state) {
  ck_fixture *fx = *state;
  char *path = tc_path(fx->dir, "w.safetensors");
  ir_bundle *b = small_state();
  ir_bundle_set_meta(b, "format", "pt");
  assert_int_equal(rt_safetensors_write(path, b, fx->d), ATTNC_OK);
  ir_bundle_destroy(b);
  ir_bundle *got = NULL;
  rt_ckpt_info out;
  memset(&out, 0x5a, sizeof out);
  assert_int_equal(rt_ckpt_load(path, &got, &out, fx->d), ATTNC_OK);
  check_small_state(got);
  rt_ckpt_info zero;
  memset(&zero, 0, sizeof zero);
  assert_memory_equal(&out, &zero, sizeof zero);
  ir_bundle_destroy(got);
  free(path);
}

/* Rewrites the fixture's checkpoint with metadata 'key' set to 'value'
 * (NULL: removed), and checks that loading fails naming file and key. */
static void expect_bad_meta(ck_fixture *fx, const char *key, const char *value, const char *needle) {
  ir_bundle *b = NULL;
  assert_int_equal(rt_safetensors_read(fx->path, &b, fx->d), ATTNC_OK);
  for (int i = 0; i < b->nmeta; i++)
    if (strcmp(b->meta_keys[i], key) == 0) {
      free(b->meta_keys[i]);
      free(b->meta_values[i]);
      b->meta_keys[i] = b->meta_keys[b->nmeta - 1];
      b->meta_values[i] = b->meta_values[b->nmeta - 1];
      b->nmeta--;
      break;
    }
  if (value) ir_bundle_set_meta(b, key, value);
  char *bad = tc_path(fx->dir, "bad.safetensors");
  assert_int_equal(rt_safetensors_write(bad, b, fx->d), ATTNC_OK);
  ir_bundle_destroy(b);
  ir_bundle *got = (ir_bundle *)1;
  rt_ckpt_info out;
  ir_diag_clear(fx->d);
  assert_int_equal(rt_ckpt_load(bad, &got, &out, fx->d), ATTNC_EPARSE);
  assert_null(got);
  assert_int_equal(out.epoch, 0);
  const char *msg = ir_diag_text(fx->d);
  if (!strstr(msg, bad) || !strstr(msg, needle))
    fail_msg("%s=%s: message '%s' lacks the path or '%s'", key, value ? value : "(removed)", msg, needle);
  free(bad);
}

static void test_bad_metadata(void **state) {
  ck_fixture *fx = *state;
  expect_bad_meta(fx, "attnc.epoch", "abc", "'attnc.epoch' = 'abc'");
  expect_bad_meta(fx, "attnc.epoch", "-1", "'attnc.epoch' = '-1'");
  expect_bad_meta(fx, "attnc.batch", "12x", "'attnc.batch'");
  expect_bad_meta(fx, "attnc.step", "", "'attnc.step'");
  expect_bad_meta(fx, "attnc.step", "9223372036854775808", "'attnc.step'");
  expect_bad_meta(fx, "attnc.seed", "18446744073709551616", "'attnc.seed'");
  expect_bad_meta(fx, "attnc.seed", " 1", "'attnc.seed'");
  expect_bad_meta(fx, "attnc.batch", NULL, "lacks 'attnc.batch'");
  expect_bad_meta(fx, "attnc.format", "2", "'attnc.format' = '2'");
  expect_bad_meta(fx, "attnc.format", NULL, "lacks 'attnc.format'");
  char hash[200];
  memset(hash, 'f', sizeof hash - 1);
  hash[sizeof hash - 1] = '\0';
  expect_bad_meta(fx, "attnc.spec_hash", hash, "'attnc.spec_hash' is longer");
}

/* Truncated, empty and missing checkpoints are errors, not crashes. */
static void test_truncated(void **state) {
  ck_fixture *fx = *state;
  char *cut = tc_path(fx->dir, "cut.safetensors");
  size_t n = 0;
  char *bytes = tc_read_file(fx->path, &n);
  assert_non_null(bytes);
  const size_t keep[] = {0, 4, 8, 20, n / 2, n - 1};
  for (int i = 0; i < 6; i++) {
    assert_int_equal(tc_write_file(cut, bytes, keep[i]), 0);
    ir_bundle *got = NULL;
    rt_ckpt_info out;
    ir_diag_clear(fx->d);
    assert_int_not_equal(rt_ckpt_load(cut, &got, &out, fx->d), ATTNC_OK);
    assert_null(got);
    assert_non_null(strstr(ir_diag_text(fx->d), cut));
  }
  free(bytes);
  free(cut);
  ir_bundle *got = NULL;
  rt_ckpt_info out;
  char *missing = tc_path(fx->dir, "missing.safetensors");
  assert_int_equal(rt_ckpt_load(missing, &got, &out, fx->d), ATTNC_EIO);
  free(missing);
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

/* Checks that the fixture's checkpoint is still the original (epoch 3)
 * and alone in its directory (no temporary file left behind). */
static void expect_original(ck_fixture *fx) {
  ir_bundle *got = NULL;
  rt_ckpt_info out;
  assert_int_equal(rt_ckpt_load(fx->path, &got, &out, fx->d), ATTNC_OK);
  check_small_state(got);
  assert_int_equal(out.epoch, 3);
  ir_bundle_destroy(got);
  assert_int_equal(count_entries(fx->dir), 1);
}

/* A failed write leaves the existing checkpoint intact and no temporary
 * file behind: a directory that does not exist, a file size limit hit
 * mid-write (works as root too), a read-only directory (non-root only). */
static void test_atomic(void **state) {
  ck_fixture *fx = *state;
  rt_ckpt_info later = full_info();
  later.epoch = 4;
  ir_bundle *b = small_state();
  char *nodir = tc_path(fx->dir, "no/such/dir/ck.safetensors");
  assert_int_equal(rt_ckpt_save(nodir, b, &later, fx->d), ATTNC_EIO);
  assert_non_null(strstr(ir_diag_text(fx->d), nodir));
  free(nodir);

  /* a 1 MiB state written under a 64 KiB file size limit fails with EFBIG */
  const int64_t big[1] = {1 << 18};
  ir_bundle_put(b, "big", ir_tensor_create(ir_type_make(IR_F32, 1, big)));
  struct rlimit old, small;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  small = old;
  small.rlim_cur = 65536;
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
  ir_diag_clear(fx->d);
  attnc_status st = rt_ckpt_save(fx->path, b, &later, fx->d);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, prev);
  assert_int_equal(st, ATTNC_EIO);
  assert_non_null(strstr(ir_diag_text(fx->d), fx->dir));
  expect_original(fx);

  if (geteuid() != 0) {
    assert_int_equal(chmod(fx->dir, 0500), 0);
    ir_diag_clear(fx->d);
    st = rt_ckpt_save(fx->path, b, &later, fx->d);
    assert_int_equal(chmod(fx->dir, 0700), 0);
    assert_int_equal(st, ATTNC_EIO);
    expect_original(fx);
  }
  ir_bundle_destroy(b);
}

/* FNV-1a 64 of known bytes; expected values computed with python:
 * h = 0xcbf29ce484222325; for b in data: h = ((h ^ b) * 0x100000001b3) % 2**64 */
static void test_file_hash(void **state) {
  ck_fixture *fx = *state;
  char *path = tc_path(fx->dir, "spec.lua");
  const char *const data[3] = {"hello attnc\n", "a", ""};
  const char *const want[3] = {"86594da807cd0d8b", "af63dc4c8601ec8c", "cbf29ce484222325"};
  char out[17];
  for (int i = 0; i < 3; i++) {
    assert_int_equal(tc_write_file(path, data[i], strlen(data[i])), 0);
    assert_int_equal(rt_file_hash(path, out, fx->d), ATTNC_OK);
    assert_string_equal(out, want[i]);
  }
  free(path);
  char *missing = tc_path(fx->dir, "missing.lua");
  assert_int_equal(rt_file_hash(missing, out, fx->d), ATTNC_EIO);
  assert_non_null(strstr(ir_diag_text(fx->d), missing));
  free(missing);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_plain_weights, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_metadata, setup, teardown),
      cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_atomic, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_hash, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
