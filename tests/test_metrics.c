/* Tests of the classification metrics on hand-made logits: argmax ties,
 * top-5 with few and many classes, cross-entropy against values computed
 * independently (python, log-sum-exp), per-class table and confusion matrix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rt_metrics.h"

/* Four classes: one right, a tie resolved to the lowest index, all equal,
 * and logits far apart (log-sum-exp must not overflow). */
static const float LOGITS4[4 * 4] = {2, 1, 0.5f, -1, 0, 3, 3, 1, 1, 1, 1, 1, 1000, 0, -1000, 999};
static const int64_t LABELS4[4] = {0, 2, 3, 3};

static void test_four_classes(void **state) {
  (void)state;
  rt_metrics *m = rt_metrics_create(4);
  assert_non_null(m);
  assert_float_equal(rt_metrics_top1(m), 0, 0);
  rt_metrics_add(m, LOGITS4, LABELS4, 2);
  rt_metrics_add(m, LOGITS4 + 8, LABELS4 + 2, 2);
  assert_int_equal(m->count, 4);
  assert_int_equal(m->top1, 1);
  assert_float_equal(rt_metrics_top1(m), 0.25, 0);
  /* fewer than 5 classes: every sample is in the top 5 */
  assert_float_equal(rt_metrics_top5(m), 1.0, 0);
  /* python: m + log(sum(exp(v - m))) - x[label], averaged */
  assert_float_equal(rt_metrics_loss(m), 0.994102442465359, 1e-12);
  assert_float_equal(m->loss_sum, 0.495181898085856 + 0.7816718231374824 + 1.3862943611198908 + 1.3132616875182066,
                     1e-12);
  /* [true][pred]: 0->0, 2->1 (tie 1/2 goes to 1), 3->0 twice */
  const int64_t want[16] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 0};
  for (int i = 0; i < 16; i++) assert_int_equal(m->confusion[i], want[i]);
  rt_metrics_reset(m);
  assert_int_equal(m->count, 0);
  assert_int_equal(m->confusion[12], 0);
  assert_float_equal(rt_metrics_loss(m), 0, 0);
  rt_metrics_destroy(m);
  assert_null(rt_metrics_create(0));
}

/* Seven classes: the label must be among the 5 largest (ties: lower index
 * first); labels out of range are skipped. */
static void test_top5(void **state) {
  (void)state;
  rt_metrics *m = rt_metrics_create(7);
  assert_non_null(m);
  const float desc[7] = {7, 6, 5, 4, 3, 2, 1};
  const float flat[7] = {1, 1, 1, 1, 1, 1, 1};
  const float low[7] = {0, 0, 0, 0, 0, 0, 9};
  float rows[5 * 7];
  memcpy(rows, desc, sizeof desc);
  memcpy(rows + 7, desc, sizeof desc);
  memcpy(rows + 14, flat, sizeof flat);
  memcpy(rows + 21, flat, sizeof flat);
  memcpy(rows + 28, low, sizeof low);
  const int64_t labels[5] = {4, 5, 4, 5, 6};
  rt_metrics_add(m, rows, labels, 5);
  assert_int_equal(m->count, 5);
  assert_int_equal(m->top5, 3); /* rows 0, 2 and 4 */
  assert_int_equal(m->top1, 1); /* row 4 */
  assert_float_equal(rt_metrics_top5(m), 0.6, 1e-15);
  const int64_t bad[2] = {7, -1};
  rt_metrics_add(m, rows, bad, 2);
  assert_int_equal(m->count, 5);
  rt_metrics_destroy(m);
}

/* The per-class table and the confusion matrix as text. */
static void test_print(void **state) {
  (void)state;
  rt_metrics *m = rt_metrics_create(4);
  assert_non_null(m);
  rt_metrics_add(m, LOGITS4, LABELS4, 4);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  rt_metrics_print(m, f, 0);
  fflush(f);
  assert_non_null(strstr(buf, "    0        1/1       100.00%\n"));
  assert_non_null(strstr(buf, "    1        0/0             -\n"));
  assert_non_null(strstr(buf, "    3        0/2         0.00%\n"));
  assert_null(strstr(buf, "confusion"));
  fclose(f);
  free(buf);
  buf = NULL; /* with the classes' names (copied) */
  char *names[4] = {strdup("cat"), strdup("dog"), strdup("bird"), strdup("fish")};
  assert_int_equal(rt_metrics_name_classes(m, names), 0);
  for (int k = 0; k < 4; k++) free(names[k]);
  f = open_memstream(&buf, &len);
  rt_metrics_print(m, f, 0);
  fclose(f);
  assert_non_null(strstr(buf, "    0        1/1       100.00%  cat\n"));
  assert_non_null(strstr(buf, "    1        0/0             -  dog\n"));
  assert_non_null(strstr(buf, "    3        0/2         0.00%  fish\n"));
  free(buf);
  buf = NULL;
  f = open_memstream(&buf, &len);
  assert_non_null(f);
  rt_metrics_print(m, f, 1);
  fclose(f);
  const char *cm = strstr(buf, "confusion matrix");
  assert_non_null(cm);
  assert_non_null(strstr(cm, "\n        0   1   2   3\n"
                             "    0   1   0   0   0\n"
                             "    1   0   0   0   0\n"
                             "    2   0   1   0   0\n"
                             "    3   2   0   0   0\n"));
  free(buf);
  rt_metrics_destroy(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_four_classes),
      cmocka_unit_test(test_top5),
      cmocka_unit_test(test_print),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
