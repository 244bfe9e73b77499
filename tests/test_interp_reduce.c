/* Reference-interpreter tests of the reducing ops: reductions over several
 * axes with keepdims, softmax / log_softmax (stability on large inputs),
 * topk_mask with ties, and cross_entropy (values and bad labels). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "util_build.h"
#include "util_interp.h"

/* Appends op(x) over 'axes' with 'keep' and adds it as output 'name'. */
static void add_reduce(ir_graph *g, ir_opcode op, int x, const int64_t *axes, int na, int keep, const char *name) {
  ir_node *n = tb_node(g, op, x);
  tb_set_ints_n(n, "axes", axes, na);
  tb_set_int(n, "keepdims", keep);
  ir_graph_add_output(g, name, tb_infer(g, n));
}

/* Sum, mean, max and min of x[2,3,4] over axes {0, 2} (keepdims and not)
 * and over {-1}, against loops written here. */
static void test_reductions(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F64, 3, 2, 3, 4);
  const int64_t outer[2] = {0, 2}, last[1] = {-1};
  add_reduce(g, IR_OP_reduce_sum, x, outer, 2, 1, "sum_keep");
  add_reduce(g, IR_OP_reduce_sum, x, outer, 2, 0, "sum");
  add_reduce(g, IR_OP_reduce_mean, x, outer, 2, 0, "mean");
  add_reduce(g, IR_OP_reduce_max, x, outer, 2, 1, "max");
  add_reduce(g, IR_OP_reduce_min, x, outer, 2, 0, "min");
  add_reduce(g, IR_OP_reduce_sum, x, last, 1, 0, "sum_last");
  add_reduce(g, IR_OP_reduce_mean, x, last, 1, 1, "mean_last");
  double xv[24];
  ti_fill(xv, 24, 1);
  double sum[3] = {0}, mx[3], mn[3], sum_last[6] = {0}, mean_last[6];
  for (int j = 0; j < 3; j++) mx[j] = -1e300, mn[j] = 1e300;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 4; k++) {
        double v = xv[(i * 3 + j) * 4 + k];
        sum[j] += v;
        mx[j] = v > mx[j] ? v : mx[j];
        mn[j] = v < mn[j] ? v : mn[j];
        sum_last[i * 3 + j] += v;
      }
  double mean[3];
  for (int j = 0; j < 3; j++) mean[j] = sum[j] / 8;
  for (int r = 0; r < 6; r++) mean_last[r] = sum_last[r] / 4;
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, xv);
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "sum_keep", "f64[1,3,1]", sum, 1e-14);
  ti_assert_output(out, "sum", "f64[3]", sum, 1e-14);
  ti_assert_output(out, "mean", "f64[3]", mean, 1e-14);
  ti_assert_output(out, "max", "f64[1,3,1]", mx, 0);
  ti_assert_output(out, "min", "f64[3]", mn, 0);
  ti_assert_output(out, "sum_last", "f64[2,3]", sum_last, 1e-14);
  ti_assert_output(out, "mean_last", "f64[2,3,1]", mean_last, 1e-14);
  ti_free(g, in, out);
}

/* Reducing every axis gives a scalar; reducing none is the identity. */
static void test_reduce_all_and_none(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 2, 2, 2);
  const int64_t both[2] = {1, 0};
  add_reduce(g, IR_OP_reduce_mean, x, both, 2, 0, "mean");
  add_reduce(g, IR_OP_reduce_max, x, both, 2, 1, "max");
  add_reduce(g, IR_OP_reduce_sum, x, NULL, 0, 0, "none");
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){1, -2, 3.5, 0.5});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "mean", "f32[]", (double[]){0.75}, 0);
  ti_assert_output(out, "max", "f32[1,1]", (double[]){3.5}, 0);
  ti_assert_output(out, "none", "f32[2,2]", (double[]){1, -2, 3.5, 0.5}, 0);
  ti_free(g, in, out);
}

/* Appends op(x) along 'axis' as output 'name'. */
static void add_axis_op(ir_graph *g, ir_opcode op, int x, int axis, const char *name) {
  ir_node *n = tb_node(g, op, x);
  tb_set_int(n, "axis", axis);
  ir_graph_add_output(g, name, tb_infer(g, n));
}

/* softmax / log_softmax of small x[2,3] along axis 1 and axis -2 (= 0),
 * against the textbook exp(x) / sum exp(x) without max subtraction. */
static void test_softmax_small(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F64, 2, 2, 3);
  add_axis_op(g, IR_OP_softmax, x, 1, "rows");
  add_axis_op(g, IR_OP_softmax, x, -2, "cols");
  add_axis_op(g, IR_OP_log_softmax, x, 1, "log_rows");
  const double xv[6] = {0.5, -1, 2, 3, 0, -0.25};
  double rows[6], cols[6], log_rows[6];
  for (int i = 0; i < 2; i++) {
    double s = exp(xv[i * 3]) + exp(xv[i * 3 + 1]) + exp(xv[i * 3 + 2]);
    for (int j = 0; j < 3; j++) {
      rows[i * 3 + j] = exp(xv[i * 3 + j]) / s;
      log_rows[i * 3 + j] = log(rows[i * 3 + j]);
    }
  }
  for (int j = 0; j < 3; j++) {
    double s = exp(xv[j]) + exp(xv[3 + j]);
    cols[j] = exp(xv[j]) / s;
    cols[3 + j] = exp(xv[3 + j]) / s;
  }
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, xv);
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "rows", "f64[2,3]", rows, 1e-14);
  ti_assert_output(out, "cols", "f64[2,3]", cols, 1e-14);
  ti_assert_output(out, "log_rows", "f64[2,3]", log_rows, 1e-14);
  ti_free(g, in, out);
}

/* Inputs of +-1000 give finite softmax and log_softmax (no inf, no NaN). */
static void test_softmax_stable(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 2, 2, 3);
  add_axis_op(g, IR_OP_softmax, x, -1, "p");
  add_axis_op(g, IR_OP_log_softmax, x, -1, "lp");
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){1000, -1000, 0, 1000, 1000, 999});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  /* row 2: exp(0), exp(0), exp(-1) over their sum */
  double s = 2 + exp(-1.0);
  ti_assert_output(out, "p", "f32[2,3]", (double[]){1, 0, 0, 1 / s, 1 / s, exp(-1.0) / s}, 1e-6);
  ti_assert_output(out, "lp", "f32[2,3]", (double[]){0, -2000, -1000, -log(s), -log(s), -1 - log(s)}, 1e-6);
  ti_free(g, in, out);
}

/* Appends topk_mask(x, axis, k) as output 'name'. */
static void add_topk(ir_graph *g, int x, int axis, int k, const char *name) {
  ir_node *n = tb_node(g, IR_OP_topk_mask, x);
  tb_set_int(n, "axis", axis);
  tb_set_int(n, "k", k);
  ir_graph_add_output(g, name, tb_infer(g, n));
}

/* topk_mask keeps ties: [3,1,3,2] k=1 -> [1,0,1,0]; k=3 -> [1,0,1,1]; and
 * works along axis 0 of a matrix. */
static void test_topk_mask(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 1, 4);
  add_topk(g, x, 0, 1, "k1");
  add_topk(g, x, 0, 2, "k2");
  add_topk(g, x, -1, 3, "k3");
  add_topk(g, x, 0, 4, "k4");
  int m = tb_input(g, "m", IR_F32, 2, 3, 2);
  add_topk(g, m, 0, 2, "cols");
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){3, 1, 3, 2});
  ti_feed(in, g, m, (double[]){5, -1, 4, -3, 6, -2});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "k1", "f32[4]", (double[]){1, 0, 1, 0}, 0);
  ti_assert_output(out, "k2", "f32[4]", (double[]){1, 0, 1, 0}, 0);
  ti_assert_output(out, "k3", "f32[4]", (double[]){1, 0, 1, 1}, 0);
  ti_assert_output(out, "k4", "f32[4]", (double[]){1, 1, 1, 1}, 0);
  ti_assert_output(out, "cols", "f32[3,2]", (double[]){1, 1, 0, 0, 1, 1}, 0);
  ti_free(g, in, out);
}

/* Builds y = cross_entropy(logits[n,k] f64, labels i64[n]) with y located at
 * loss.lua:12. */
static ir_graph *ce_graph(int n, int k, int *logits, int *labels) {
  ir_graph *g = ir_graph_create("t");
  *logits = tb_input(g, "logits", IR_F64, 2, n, k);
  *labels = tb_input(g, "labels", IR_I64, 1, n);
  int y = tb_op(g, IR_OP_cross_entropy, *logits, *labels);
  tb_at(g, y, "loss.lua", 12, NULL);
  ir_graph_add_output(g, "y", y);
  return g;
}

/* cross_entropy = mean over rows of log(sum exp(l)) - l[label], by hand;
 * large logits stay finite. */
static void test_cross_entropy(void **state) {
  (void)state;
  int l, y;
  ir_graph *g = ce_graph(2, 3, &l, &y);
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, l, (double[]){1, 2, 3, 1, 1, 1});
  ti_feed(in, g, y, (double[]){2, 0});
  double want = ((log(exp(1) + exp(2) + exp(3)) - 3) + log(3)) / 2; /* 0.7531... */
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "y", "f64[]", &want, 1e-15);
  ir_bundle_destroy(out);
  ti_feed(in, g, l, (double[]){1000, 0, -1000, 0, 0, 1000});
  ti_feed(in, g, y, (double[]){1, 2});
  out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "y", "f64[]", (double[]){500}, 1e-15); /* (1000 + 0) / 2 */
  ti_free(g, in, out);
}

/* A label outside [0, K) is a runtime error at the node, not a crash. */
static void test_cross_entropy_bad_label(void **state) {
  (void)state;
  int l, y;
  ir_graph *g = ce_graph(2, 3, &l, &y);
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, l, (double[]){1, 2, 3, 1, 1, 1});
  ti_feed(in, g, y, (double[]){0, 3});
  const char *msg = ti_run_error(g, in, IR_INTERP_NATIVE, ATTNC_ERUNTIME);
  tb_assert_contains(msg, "loss.lua:12");
  tb_assert_contains(msg, "cross_entropy");
  tb_assert_contains(msg, "label 3 of row 1");
  ti_feed(in, g, y, (double[]){-1, 0});
  tb_assert_contains(ti_run_error(g, in, IR_INTERP_F64, ATTNC_ERUNTIME), "label -1 of row 0");
  ir_bundle_destroy(in);
  ir_graph_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reductions),    cmocka_unit_test(test_reduce_all_and_none),
      cmocka_unit_test(test_softmax_small), cmocka_unit_test(test_softmax_stable),
      cmocka_unit_test(test_topk_mask),     cmocka_unit_test(test_cross_entropy),
      cmocka_unit_test(test_cross_entropy_bad_label),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
