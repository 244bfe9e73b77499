/* Sandbox tests: broken, hostile and runaway specs end with a clear error
 * naming the spec (and its line where there is one), a non-zero status and
 * no crash (run under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "util_build.h"
#include "util_fe.h"

#define SPECS "tests/data/specs/"

/* Lowers SPECS/file expecting status 'want' and a message containing 'needle'. */
static void expect_error(const char *file, attnc_status want, const char *needle) {
  char path[256];
  snprintf(path, sizeof path, SPECS "%s", file);
  const char *msg;
  attnc_status st = tf_lower_error(path, &msg, NULL);
  tb_assert_contains(msg, needle);
  if (st != want) fail_msg("%s: status %d, want %d (%s)", file, (int)st, (int)want, msg);
}

static void test_syntax_error(void **state) {
  (void)state;
  expect_error("bad_syntax.lua", ATTNC_EPARSE, SPECS "bad_syntax.lua:5:");
}

static void test_runtime_error(void **state) {
  (void)state;
  expect_error("bad_runtime.lua", ATTNC_EPARSE, SPECS "bad_runtime.lua:3: attempt to index a nil value");
}

static void test_no_os(void **state) {
  (void)state;
  unlink("/tmp/attnc_pwned");
  expect_error("bad_os.lua", ATTNC_EPARSE, SPECS "bad_os.lua:2: attempt to index a nil value (global 'os')");
  assert_int_not_equal(access("/tmp/attnc_pwned", F_OK), 0);
}

static void test_no_io(void **state) {
  (void)state;
  expect_error("bad_io.lua", ATTNC_EPARSE, SPECS "bad_io.lua:2: attempt to index a nil value (global 'io')");
}

/* debug, dofile, loadfile, collectgarbage, package are absent (the spec
 * asserts it, then raises its own error). */
static void test_no_debug(void **state) {
  (void)state;
  expect_error("bad_debug.lua", ATTNC_EPARSE, SPECS "bad_debug.lua:3: sandbox ok");
}

static void test_require_escape(void **state) {
  (void)state;
  expect_error("bad_require_escape.lua", ATTNC_EPARSE,
               SPECS "bad_require_escape.lua:2: require '../../etc/passwd': module names are");
  expect_error("bad_require_variants.lua", ATTNC_EPARSE, SPECS "bad_require_variants.lua:6: all rejected");
  expect_error("bad_require_missing.lua", ATTNC_EPARSE, "no module models/no_such_module.lua");
}

static void test_binary_chunk(void **state) {
  (void)state;
  expect_error("bad_binary_chunk.lua", ATTNC_EPARSE, SPECS "bad_binary_chunk.lua:3: attempt to load a binary chunk");
}

/* The budget stops an endless loop, also one run under pcall. */
static void test_budget(void **state) {
  (void)state;
  expect_error("bad_loop.lua", ATTNC_ENOMEM, SPECS "bad_loop.lua:2: instruction budget of 200000000 exceeded");
}

/* Work done in C (string.rep, pattern matching, table.move) counts against
 * the budget: each of these would run for hours inside one library call. A
 * loop under pcall at another line is reported once, at the loop. */
static void test_budget_in_c(void **state) {
  (void)state;
  expect_error("bad_rep_empty.lua", ATTNC_ENOMEM,
               SPECS "bad_rep_empty.lua:3: instruction budget of 200000000 exceeded");
  expect_error("bad_pattern.lua", ATTNC_ENOMEM, SPECS "bad_pattern.lua:5: instruction budget of 200000000 exceeded");
  expect_error("bad_move.lua", ATTNC_ENOMEM, SPECS "bad_move.lua:4: instruction budget of 200000000 exceeded");
  const char *msg;
  tf_lower_error(SPECS "bad_loop_nested.lua", &msg, NULL);
  assert_string_equal(msg, SPECS "bad_loop_nested.lua:4: instruction budget of 200000000 exceeded (runaway loop?)\n");
  expect_error("ok_strings.lua", ATTNC_EPARSE, SPECS "ok_strings.lua:13: strings ok");
}

static void test_memory_cap(void **state) {
  (void)state;
  expect_error("bad_mem_table.lua", ATTNC_ENOMEM, SPECS "bad_mem_table.lua: memory cap of 256 MiB exceeded");
  expect_error("bad_mem_string.lua", ATTNC_ENOMEM, SPECS "bad_mem_string.lua: memory cap of 256 MiB exceeded");
  expect_error("bad_mem_pcall.lua", ATTNC_ENOMEM, SPECS "bad_mem_pcall.lua: memory cap of 256 MiB exceeded");
  expect_error("bad_huge_string.lua", ATTNC_EPARSE, SPECS "bad_huge_string.lua:2: resulting string too large");
}

/* A wrong channel count is reported at the spec line of the call. */
static void test_shape_error(void **state) {
  (void)state;
  expect_error("bad_shape.lua", ATTNC_EVERIFY,
               SPECS "bad_shape.lua:12: %4 = conv2d(%3: f32[1,16,8,8], %2: f32[8,32,3,3]): input has 16 channels, "
                     "weight expects 32");
}

static void test_not_module(void **state) {
  (void)state;
  expect_error("bad_not_module.lua", ATTNC_EPARSE, SPECS "bad_not_module.lua: the spec must return an nn module");
}

static void test_missing_file(void **state) {
  (void)state;
  expect_error("no_such_spec.lua", ATTNC_EIO, SPECS "no_such_spec.lua: cannot read file");
}

static void test_unknown_option(void **state) {
  (void)state;
  const char *msg;
  assert_int_equal(tf_lower_error(SPECS "tiny.lua", &msg, "widht=8", NULL), ATTNC_EINVAL);
  tb_assert_contains(msg, SPECS "tiny.lua: unknown option -D widht (known options: act, classes, use_bn, width)");
}

static void test_bad_option_value(void **state) {
  (void)state;
  const char *msg;
  assert_int_equal(tf_lower_error(SPECS "tiny.lua", &msg, "width=abc", NULL), ATTNC_EPARSE);
  tb_assert_contains(msg, SPECS "tiny.lua:4: option -D width=abc: expected a number");
  assert_int_equal(tf_lower_error(SPECS "tiny.lua", &msg, "use_bn=maybe", NULL), ATTNC_EPARSE);
  tb_assert_contains(msg, "option -D use_bn=maybe: expected true or false");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_syntax_error),   cmocka_unit_test(test_runtime_error),
      cmocka_unit_test(test_no_os),          cmocka_unit_test(test_no_io),
      cmocka_unit_test(test_no_debug),       cmocka_unit_test(test_require_escape),
      cmocka_unit_test(test_binary_chunk),   cmocka_unit_test(test_budget),
      cmocka_unit_test(test_budget_in_c),
      cmocka_unit_test(test_memory_cap),     cmocka_unit_test(test_shape_error),
      cmocka_unit_test(test_not_module),     cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_unknown_option), cmocka_unit_test(test_bad_option_value),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
