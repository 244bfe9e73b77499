/* Tests of the learning-rate schedules: rates at chosen epochs and
 * iterations against values worked out from PyTorch's formulas (StepLR,
 * MultiStepLR, CosineAnnealingLR, linear warm-up), and the parse errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rt_sched.h"

#define EPS 1e-12

/* Parses 'text' (must succeed) with base lr 'lr' and 'warmup' epochs. */
static rt_schedule parse_ok(const char *text, double lr, double warmup) {
  ir_diag *d = ir_diag_create();
  rt_schedule s;
  attnc_status st = rt_schedule_parse(text, lr, warmup, &s, d);
  if (st != ATTNC_OK) fail_msg("'%s' rejected: %s", text, ir_diag_text(d));
  assert_int_equal(ir_diag_count(d), 0);
  ir_diag_destroy(d);
  return s;
}

/* Parses 'text' (must fail) and checks that the message mentions 'needle'. */
static void parse_bad(const char *text, const char *needle) {
  ir_diag *d = ir_diag_create();
  rt_schedule s;
  attnc_status st = rt_schedule_parse(text, 0.1, 0, &s, d);
  if (st == ATTNC_OK) fail_msg("'%s' accepted", text);
  assert_true(ir_diag_count(d) >= 1);
  if (!strstr(ir_diag_text(d), needle)) fail_msg("'%s': message '%s' lacks '%s'", text, ir_diag_text(d), needle);
  ir_diag_destroy(d);
}

/* "step:60,120,160:0.2" as HAM trained: 0.1 -> 0.02 -> 0.004 -> 0.0008. */
static void test_multistep_ham(void **state) {
  (void)state;
  rt_schedule s = parse_ok("step:60,120,160:0.2", 0.1, 0);
  assert_int_equal(s.kind, RT_SCHED_MULTISTEP);
  assert_int_equal(s.nmilestones, 3);
  const int64_t epochs[] = {0, 59, 60, 119, 120, 159, 160, 199};
  const double want[] = {0.1, 0.1, 0.02, 0.02, 0.004, 0.004, 0.0008, 0.0008};
  for (int i = 0; i < 8; i++) {
    /* the iteration inside the epoch does not matter */
    assert_float_equal(rt_schedule_lr(&s, epochs[i], 0, 391, 200), want[i], EPS);
    assert_float_equal(rt_schedule_lr(&s, epochs[i], 390, 391, 200), want[i], EPS);
  }
  rt_schedule m = parse_ok("multistep:2,4:0.5", 1.0, 0);
  assert_int_equal(m.kind, RT_SCHED_MULTISTEP);
  assert_float_equal(rt_schedule_lr(&m, 1, 0, 10, 6), 1.0, EPS);
  assert_float_equal(rt_schedule_lr(&m, 2, 0, 10, 6), 0.5, EPS);
  assert_float_equal(rt_schedule_lr(&m, 5, 0, 10, 6), 0.25, EPS);
  /* one milestone under "multistep" stays multistep */
  rt_schedule one = parse_ok("multistep:3:0.1", 1.0, 0);
  assert_int_equal(one.kind, RT_SCHED_MULTISTEP);
  assert_float_equal(rt_schedule_lr(&one, 2, 0, 1, 9), 1.0, EPS);
  assert_float_equal(rt_schedule_lr(&one, 8, 0, 1, 9), 0.1, EPS);
}

/* StepLR: lr * gamma^floor(epoch / step_size). */
static void test_step(void **state) {
  (void)state;
  rt_schedule s = parse_ok("step:30:0.1", 0.1, 0);
  assert_int_equal(s.kind, RT_SCHED_STEP);
  assert_float_equal(rt_schedule_lr(&s, 0, 0, 100, 90), 0.1, EPS);
  assert_float_equal(rt_schedule_lr(&s, 29, 99, 100, 90), 0.1, EPS);
  assert_float_equal(rt_schedule_lr(&s, 30, 0, 100, 90), 0.01, EPS);
  assert_float_equal(rt_schedule_lr(&s, 65, 0, 100, 90), 0.001, EPS);
  rt_schedule c = parse_ok("const", 0.05, 0);
  assert_int_equal(c.kind, RT_SCHED_CONST);
  assert_float_equal(rt_schedule_lr(&c, 0, 0, 10, 10), 0.05, EPS);
  assert_float_equal(rt_schedule_lr(&c, 9, 9, 10, 10), 0.05, EPS);
}

/* CosineAnnealingLR with T_max = epochs:
 * eta_min + (lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2. */
static void test_cosine(void **state) {
  (void)state;
  rt_schedule s = parse_ok("cosine:0.001", 0.1, 0);
  assert_int_equal(s.kind, RT_SCHED_COSINE);
  assert_float_equal(s.eta_min, 0.001, 0);
  assert_float_equal(rt_schedule_lr(&s, 0, 0, 50, 200), 0.1, EPS);
  /* halfway: (lr + eta_min) / 2 */
  assert_float_equal(rt_schedule_lr(&s, 100, 0, 50, 200), 0.0505, EPS);
  /* values from python: 0.001 + 0.099 * (1 + math.cos(math.pi * k / 200)) / 2 */
  assert_float_equal(rt_schedule_lr(&s, 50, 7, 50, 200), 0.0855017856687341, EPS);
  assert_float_equal(rt_schedule_lr(&s, 199, 49, 50, 200), 0.001006106692157801, EPS);
  rt_schedule z = parse_ok("cosine", 0.2, 0);
  assert_float_equal(z.eta_min, 0, 0);
  assert_float_equal(rt_schedule_lr(&z, 2, 0, 10, 4), 0.1, EPS);
  assert_float_equal(rt_schedule_lr(&z, 1, 0, 10, 4), 0.2 * (1 + 0.7071067811865476) / 2, EPS);
}

/* Linear warm-up: base_lr * (g + 1) / W over W = warmup * iters global
 * iterations, then the schedule at the unshifted epoch. */
static void test_warmup(void **state) {
  (void)state;
  rt_schedule s = parse_ok("step:3,6:0.1", 0.1, 2);
  assert_float_equal(s.warmup_epochs, 2, 0);
  /* 5 iterations per epoch: W = 10 */
  assert_float_equal(rt_schedule_lr(&s, 0, 0, 5, 8), 0.01, EPS);
  assert_float_equal(rt_schedule_lr(&s, 0, 4, 5, 8), 0.05, EPS);
  assert_float_equal(rt_schedule_lr(&s, 1, 0, 5, 8), 0.06, EPS);
  assert_float_equal(rt_schedule_lr(&s, 1, 4, 5, 8), 0.1, EPS);
  assert_float_equal(rt_schedule_lr(&s, 2, 0, 5, 8), 0.1, EPS);
  assert_float_equal(rt_schedule_lr(&s, 3, 0, 5, 8), 0.01, EPS);
  assert_float_equal(rt_schedule_lr(&s, 7, 4, 5, 8), 0.001, EPS);
  /* half an epoch of 5 iterations: W = 3 */
  rt_schedule h = parse_ok("cosine", 0.3, 0.5);
  assert_float_equal(rt_schedule_lr(&h, 0, 0, 5, 2), 0.1, EPS);
  assert_float_equal(rt_schedule_lr(&h, 0, 1, 5, 2), 0.2, EPS);
  assert_float_equal(rt_schedule_lr(&h, 0, 2, 5, 2), 0.3, EPS);
  assert_float_equal(rt_schedule_lr(&h, 0, 3, 5, 2), 0.3, EPS);
  assert_float_equal(rt_schedule_lr(&h, 1, 0, 5, 2), 0.15, EPS);
}

/* Bad schedule text is rejected with a message naming the problem. */
static void test_parse_errors(void **state) {
  (void)state;
  parse_bad("", "empty");
  parse_bad("linear", "unknown kind 'linear'");
  parse_bad("step:60,50:0.2", "must increase");
  parse_bad("step:60,60:0.2", "must increase");
  parse_bad("step:-5,10:0.2", "negative");
  parse_bad("step:60,,120:0.2", "milestone '' is not a number");
  parse_bad("step:60:0", "factor 0 must be > 0");
  parse_bad("step:60:-0.5", "must be > 0");
  parse_bad("step:60:0.2x", "factor '0.2x' is not a number");
  parse_bad("step:0:0.1", "step size 0 must be > 0");
  parse_bad("step:abc:0.1", "step size 'abc'");
  parse_bad("step:60", "expected step:STEP:FACTOR");
  parse_bad("step", "expected step");
  parse_bad("multistep:10:0.1:3", "expected multistep");
  parse_bad("step:1:2:3:4:5", "too many");
  parse_bad("cosine:abc", "cosine:ETA_MIN");
  parse_bad("cosine:-1", "cosine:ETA_MIN");
  parse_bad("cosine:0.1 ", "cosine:ETA_MIN");
  parse_bad("const:1", "takes no arguments");
  parse_bad("Step:30:0.1", "unknown kind");
  ir_diag *d = ir_diag_create();
  rt_schedule s;
  assert_int_equal(rt_schedule_parse("const", 0, 0, &s, d), ATTNC_EINVAL);
  assert_non_null(strstr(ir_diag_text(d), "learning rate"));
  ir_diag_clear(d);
  assert_int_equal(rt_schedule_parse("const", 0.1, -1, &s, d), ATTNC_EINVAL);
  assert_non_null(strstr(ir_diag_text(d), "warm-up"));
  ir_diag_destroy(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_multistep_ham), cmocka_unit_test(test_step),  cmocka_unit_test(test_cosine),
      cmocka_unit_test(test_warmup),        cmocka_unit_test(test_parse_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
