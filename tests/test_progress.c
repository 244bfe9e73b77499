/* Tests of the progress display (plain lines every ~10% of an epoch, the
 * terminal bar) and of the metrics log (CSV header once, mismatched header
 * rejected, JSONL lines that parse as JSON, clear path errors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "rt_progress.h"
#include "util_cli.h"

/* Returns the number of occurrences of 'needle' in 's'. */
static int count_of(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

/* Not a terminal: a line at each tenth of the epoch and a last one at its end. */
static void test_plain_lines(void **state) {
  (void)state;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  rt_progress *p = rt_progress_create(f, 3, 20);
  assert_non_null(p);
  for (int b = 1; b <= 20; b++) rt_progress_update(p, 1, b, 0.5, 0.75, 1234.4);
  rt_progress_end_epoch(p);
  fflush(f);
  assert_int_equal(tc_count_lines(buf), 10);
  assert_non_null(strstr(buf, "epoch 1/3 batch 2/20 loss 0.5000 acc 75.00% 1234 img/s eta "));
  assert_non_null(strstr(buf, "epoch 1/3 batch 20/20 loss 0.5000 acc 75.00% 1234 img/s eta 0:00\n"));
  assert_null(strstr(buf, "batch 3/20"));
  assert_null(strchr(buf, '\r'));
  /* an epoch cut short: its last update is printed at the end */
  for (int b = 1; b <= 7; b++) rt_progress_update(p, 2, b, 0.25, 0.5, 10);
  rt_progress_end_epoch(p);
  fflush(f);
  assert_int_equal(tc_count_lines(buf), 14);
  assert_non_null(strstr(buf, "epoch 2/3 batch 7/20 loss 0.2500 acc 50.00% 10 img/s"));
  /* a resumed epoch starting at batch 11 prints from the next tenth on */
  for (int b = 11; b <= 20; b++) rt_progress_update(p, 3, b, 0.125, 1, 10);
  rt_progress_end_epoch(p);
  fflush(f);
  assert_int_equal(tc_count_lines(buf), 19);
  assert_int_equal(count_of(buf, "epoch 3/3"), 5);
  assert_non_null(strstr(buf, "epoch 3/3 batch 12/20"));
  rt_progress_destroy(p);
  fclose(f);
  free(buf);

  /* fewer batches than tenths: every batch prints once */
  buf = NULL;
  f = open_memstream(&buf, &len);
  assert_non_null(f);
  p = rt_progress_create(f, 1, 3);
  for (int b = 1; b <= 3; b++) rt_progress_update(p, 1, b, 1, 0, 1);
  rt_progress_end_epoch(p);
  fflush(f);
  assert_int_equal(tc_count_lines(buf), 3);
  rt_progress_destroy(p);
  fclose(f);
  free(buf);
}

/* On a terminal: the bar is redrawn with '\r' and the epoch ends with '\n'. */
static void test_tty_bar(void **state) {
  (void)state;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  rt_progress *p = rt_progress_create(f, 2, 24);
  assert_non_null(p);
  rt_progress_set_tty(p, 1);
  rt_progress_update(p, 1, 12, 0.5, 0.5, 100);
  fflush(f);
  assert_non_null(strstr(buf, "\r\033[Kepoch 1/2 [============>           ] 12/24 loss 0.5000 acc 50.00% 100 img/s eta "));
  rt_progress_update(p, 1, 24, 0.25, 0.875, 100);
  rt_progress_end_epoch(p);
  fflush(f);
  assert_non_null(strstr(buf, "\r\033[Kepoch 1/2 [========================] 24/24 loss 0.2500 acc 87.50% 100 img/s eta 0:00\n"));
  assert_int_equal(tc_count_lines(buf), 1);
  assert_int_equal(count_of(buf, "\r"), 2);
  rt_progress_destroy(p);
  fclose(f);
  free(buf);
}

static const char *const KEYS[3] = {"epoch", "loss", "top1"};

static void test_csv_log(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  assert_non_null(dir);
  char *path = tc_path(dir, "log.csv");
  ir_diag *d = ir_diag_create();
  const double r1[3] = {1, 0.5, 0.25}, r2[3] = {2, 0.1, NAN};
  assert_int_equal(rt_log_append(path, 3, KEYS, r1, d), ATTNC_OK);
  assert_int_equal(rt_log_append(path, 3, KEYS, r2, d), ATTNC_OK);
  char *text = tc_read_file(path, NULL);
  assert_non_null(text);
  assert_string_equal(text, "epoch,loss,top1\n1,0.5,0.25\n2,0.10000000000000001,nan\n");
  free(text);
  /* different columns: refused, file untouched */
  const char *const other[2] = {"epoch", "loss"};
  assert_int_equal(rt_log_append(path, 2, other, r1, d), ATTNC_EINVAL);
  const char *msg = ir_diag_text(d);
  assert_non_null(strstr(msg, path));
  assert_non_null(strstr(msg, "header 'epoch,loss,top1' does not match the columns 'epoch,loss'"));
  text = tc_read_file(path, NULL);
  assert_int_equal(tc_count_lines(text), 3);
  free(text);
  /* an existing empty file gets the header */
  assert_int_equal(tc_write_file(path, "", 0), 0);
  assert_int_equal(rt_log_append(path, 3, KEYS, r1, d), ATTNC_OK);
  text = tc_read_file(path, NULL);
  assert_string_equal(text, "epoch,loss,top1\n1,0.5,0.25\n");
  free(text);
  /* a key that would break the CSV */
  const char *const badkeys[2] = {"a,b", "c"};
  ir_diag_clear(d);
  assert_int_equal(rt_log_append(path, 2, badkeys, r1, d), ATTNC_EINVAL);
  assert_non_null(strstr(ir_diag_text(d), "'a,b'"));
  ir_diag_destroy(d);
  free(path);
  tc_rmtree(dir);
  free(dir);
}

static void test_jsonl_log(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  assert_non_null(dir);
  char *path = tc_path(dir, "log.jsonl");
  ir_diag *d = ir_diag_create();
  const double rows[2][3] = {{1, 0.1, 1.0 / 3.0}, {2, -2.5e-7, INFINITY}};
  for (int r = 0; r < 2; r++) assert_int_equal(rt_log_append(path, 3, KEYS, rows[r], d), ATTNC_OK);
  char *text = tc_read_file(path, NULL);
  assert_non_null(text);
  assert_int_equal(tc_count_lines(text), 2);
  assert_non_null(strstr(text, "{\"epoch\":1,\"loss\":0.10000000000000001,"));
  char *line = text;
  for (int r = 0; r < 2; r++) {
    char *nl = strchr(line, '\n');
    assert_non_null(nl);
    *nl = '\0';
    cJSON *j = cJSON_Parse(line);
    if (!j) fail_msg("line %d does not parse: %s", r + 1, line);
    assert_int_equal(cJSON_GetArraySize(j), 3);
    for (int k = 0; k < 3; k++) {
      cJSON *v = cJSON_GetArrayItem(j, k);
      assert_string_equal(v->string, KEYS[k]);
      if (isfinite(rows[r][k])) {
        assert_true(cJSON_IsNumber(v));
        assert_true(v->valuedouble == rows[r][k]); /* %.17g round-trips exactly */
      } else {
        assert_true(cJSON_IsNull(v));
      }
    }
    cJSON_Delete(j);
    line = nl + 1;
  }
  free(text);
  ir_diag_destroy(d);
  free(path);
  tc_rmtree(dir);
  free(dir);
}

/* A log in a directory that does not exist is an error naming the path. */
static void test_log_path_errors(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  assert_non_null(dir);
  ir_diag *d = ir_diag_create();
  const double r1[3] = {1, 2, 3};
  const char *names[2] = {"no/such/log.csv", "no/such/log.jsonl"};
  for (int i = 0; i < 2; i++) {
    char *path = tc_path(dir, names[i]);
    ir_diag_clear(d);
    assert_int_equal(rt_log_append(path, 3, KEYS, r1, d), ATTNC_EIO);
    assert_non_null(strstr(ir_diag_text(d), path));
    assert_non_null(strstr(ir_diag_text(d), "No such file"));
    free(path);
  }
  /* a directory is not a log */
  ir_diag_clear(d);
  assert_int_not_equal(rt_log_append(dir, 3, KEYS, r1, d), ATTNC_OK);
  assert_true(ir_diag_count(d) >= 1);
  assert_int_equal(rt_log_append(dir, 0, KEYS, r1, d), ATTNC_EINVAL);
  ir_diag_destroy(d);
  tc_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_lines), cmocka_unit_test(test_tty_bar),         cmocka_unit_test(test_csv_log),
      cmocka_unit_test(test_jsonl_log),   cmocka_unit_test(test_log_path_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
