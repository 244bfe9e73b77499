/* Reference-interpreter tests of the elementwise ops: unary math, cast,
 * binary arithmetic with numpy broadcasting, comparisons, where, and the
 * f32 rounding of IR_INTERP_NATIVE against IR_INTERP_F64. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "util_build.h"
#include "util_interp.h"

/* Runs y = op(x) on f32 'xs' (n <= 16 values) in NATIVE mode and checks y
 * against 'want' within 'tol'. */
static void check_unary(ir_opcode op, const double *xs, int n, const double *want, double tol) {
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 1, n);
  ir_graph_add_output(g, "y", tb_op(g, op, x));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, xs);
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  char type[32];
  snprintf(type, sizeof type, "f32[%d]", n);
  ti_assert_output(out, "y", type, want, tol);
  ti_free(g, in, out);
}

/* check_unary against f(xs) computed here in double, rounded to float. */
static void check_unary_fn(ir_opcode op, const double *xs, int n, double (*f)(double)) {
  double want[16];
  for (int i = 0; i < n; i++) want[i] = (double)(float)f((double)(float)xs[i]);
  check_unary(op, xs, n, want, 1e-7);
}

static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double ref_rsqrt(double x) { return 1.0 / sqrt(x); }

/* neg, abs, relu, relu6 on hand values. */
static void test_piecewise_unary(void **state) {
  (void)state;
  const double xs[7] = {-2, -0.5, 0, 0.5, 3, 7, 6.25};
  check_unary(IR_OP_neg, xs, 7, (double[]){2, 0.5, 0, -0.5, -3, -7, -6.25}, 0);
  check_unary(IR_OP_abs, xs, 7, (double[]){2, 0.5, 0, 0.5, 3, 7, 6.25}, 0);
  check_unary(IR_OP_relu, xs, 7, (double[]){0, 0, 0, 0.5, 3, 7, 6.25}, 0);
  check_unary(IR_OP_relu6, xs, 7, (double[]){0, 0, 0, 0.5, 3, 6, 6}, 0);
}

/* sigmoid, tanh, exp, log, sqrt, rsqrt against libm formulas. */
static void test_math_unary(void **state) {
  (void)state;
  const double any[6] = {-3, -0.5, 0, 0.25, 1, 2.5};
  const double pos[5] = {0.25, 1, 2, 4, 9};
  check_unary_fn(IR_OP_sigmoid, any, 6, ref_sigmoid);
  check_unary_fn(IR_OP_tanh, any, 6, tanh);
  check_unary_fn(IR_OP_exp, any, 6, exp);
  check_unary_fn(IR_OP_log, pos, 5, log);
  check_unary_fn(IR_OP_sqrt, pos, 5, sqrt);
  check_unary_fn(IR_OP_rsqrt, pos, 5, ref_rsqrt);
}

/* sigmoid saturates without NaN for large |x|; log(0) = -inf; sqrt(-1) NaN. */
static void test_unary_extremes(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F64, 1, 3);
  ir_graph_add_output(g, "s", tb_op(g, IR_OP_sigmoid, x));
  int z = tb_input(g, "z", IR_F64, 1, 2);
  ir_graph_add_output(g, "l", tb_op(g, IR_OP_log, z));
  ir_graph_add_output(g, "q", tb_op(g, IR_OP_sqrt, tb_op(g, IR_OP_neg, z)));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){-800, 0, 800});
  ti_feed(in, g, z, (double[]){0, 1});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "s", "f64[3]", (double[]){0, 0.5, 1}, 0);
  ti_assert_output(out, "l", "f64[2]", (double[]){-INFINITY, 0}, 0);
  ti_assert_output(out, "q", "f64[2]", (double[]){0, NAN}, 0);
  ti_free(g, in, out);
}

/* add, sub, mul, div, maximum, minimum on equal shapes, by hand. */
static void test_binary_same_shape(void **state) {
  (void)state;
  static const struct {
    ir_opcode op;
    double want[4];
  } cases[] = {
      {IR_OP_add, {5, 1, -1, 2.5}},   {IR_OP_sub, {-3, 3, -5, 1.5}},     {IR_OP_mul, {4, -2, -6, 1}},
      {IR_OP_div, {0.25, -2, -1.5, 4}}, {IR_OP_maximum, {4, 2, 2, 2}}, {IR_OP_minimum, {1, -1, -3, 0.5}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    ir_graph *g = ir_graph_create("t");
    int a = tb_input(g, "a", IR_F64, 2, 2, 2);
    int b = tb_input(g, "b", IR_F64, 2, 2, 2);
    ir_graph_add_output(g, "y", tb_op(g, cases[c].op, a, b));
    ir_bundle *in = ir_bundle_create();
    ti_feed(in, g, a, (double[]){1, 2, -3, 2});
    ti_feed(in, g, b, (double[]){4, -1, 2, 0.5});
    ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
    ti_assert_output(out, "y", "f64[2,2]", cases[c].want, 0);
    ti_free(g, in, out);
  }
}

/* [2,1,3] + [4,1] broadcasts to [2,4,3]: y[i,j,k] = a[i,0,k] + b[j,0]; and
 * the same through sub, so operand order is checked too. */
static void test_broadcast_corner(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int a = tb_input(g, "a", IR_F32, 3, 2, 1, 3);
  int b = tb_input(g, "b", IR_F32, 2, 4, 1);
  ir_graph_add_output(g, "add", tb_op(g, IR_OP_add, a, b));
  ir_graph_add_output(g, "sub", tb_op(g, IR_OP_sub, b, a));
  double av[6] = {1, 2, 3, 10, 20, 30}, bv[4] = {100, 200, 300, 400};
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, a, av);
  ti_feed(in, g, b, bv);
  double want_add[24], want_sub[24];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++)
      for (int k = 0; k < 3; k++) {
        want_add[(i * 4 + j) * 3 + k] = av[i * 3 + k] + bv[j];
        want_sub[(i * 4 + j) * 3 + k] = bv[j] - av[i * 3 + k];
      }
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "add", "f32[2,4,3]", want_add, 0);
  ti_assert_output(out, "sub", "f32[2,4,3]", want_sub, 0);
  ti_free(g, in, out);
}

/* A scalar const combines with every element, on either side. */
static void test_scalar_broadcast(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 2, 2, 2);
  int two = tb_const(g, 2, IR_F32);
  ir_graph_add_output(g, "lhs", tb_op(g, IR_OP_div, two, x));
  ir_graph_add_output(g, "rhs", tb_op(g, IR_OP_sub, x, two));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){1, 2, 4, 8});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "lhs", "f32[2,2]", (double[]){2, 1, 0.5, 0.25}, 0);
  ti_assert_output(out, "rhs", "f32[2,2]", (double[]){-1, 0, 2, 6}, 0);
  ti_free(g, in, out);
}

/* Comparisons give 1/0 in the operands' dtype (f32 and i64). */
static void test_comparisons(void **state) {
  (void)state;
  static const struct {
    ir_opcode op;
    double want[3];
  } cases[] = {
      {IR_OP_eq, {0, 1, 0}}, {IR_OP_ne, {1, 0, 1}}, {IR_OP_lt, {1, 0, 0}},
      {IR_OP_le, {1, 1, 0}}, {IR_OP_gt, {0, 0, 1}}, {IR_OP_ge, {0, 1, 1}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int dt = 0; dt < 2; dt++) {
      ir_dtype t = dt ? IR_I64 : IR_F32;
      ir_graph *g = ir_graph_create("t");
      int a = tb_input(g, "a", t, 1, 3);
      int b = tb_input(g, "b", t, 1, 1); /* broadcast */
      ir_graph_add_output(g, "y", tb_op(g, cases[c].op, a, b));
      ir_bundle *in = ir_bundle_create();
      ti_feed(in, g, a, (double[]){1, 2, 3});
      ti_feed(in, g, b, (double[]){2});
      ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
      ti_assert_output(out, "y", dt ? "i64[3]" : "f32[3]", cases[c].want, 0);
      ti_free(g, in, out);
    }
}

/* where(cond[3,1], a[3,2], b[]) picks a's row where cond != 0 (negative
 * included), else b. */
static void test_where_broadcast(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int c = tb_input(g, "c", IR_F32, 2, 3, 1);
  int a = tb_input(g, "a", IR_F64, 2, 3, 2);
  int b = tb_const(g, -1, IR_F64);
  ir_graph_add_output(g, "y", tb_op(g, IR_OP_where, c, a, b));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, c, (double[]){-2, 0, 0.5});
  ti_feed(in, g, a, (double[]){1, 2, 3, 4, 5, 6});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "y", "f64[3,2]", (double[]){1, 2, -1, -1, 5, 6}, 0);
  ti_free(g, in, out);
}

/* cast to i64 truncates toward zero; back to f32; f64 -> f32 rounds. */
static void test_cast(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F64, 1, 5);
  ir_node *ci = tb_node(g, IR_OP_cast, x);
  tb_set_str(ci, "to", "i64");
  int i = tb_infer(g, ci);
  ir_node *cf = tb_node(g, IR_OP_cast, i);
  tb_set_str(cf, "to", "f32");
  ir_node *cr = tb_node(g, IR_OP_cast, x);
  tb_set_str(cr, "to", "f32");
  ir_graph_add_output(g, "i", i);
  ir_graph_add_output(g, "f", tb_infer(g, cf));
  ir_graph_add_output(g, "r", tb_infer(g, cr));
  ir_bundle *in = ir_bundle_create();
  const double xs[5] = {-2.7, 2.7, 0.5, -0.5, 0.1};
  ti_feed(in, g, x, xs);
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "i", "i64[5]", (double[]){-2, 2, 0, 0, 0}, 0);
  ti_assert_output(out, "f", "f32[5]", (double[]){-2, 2, 0, 0, 0}, 0);
  double rounded[5];
  for (int k = 0; k < 5; k++) rounded[k] = (double)(float)xs[k];
  ti_assert_output(out, "r", "f32[5]", rounded, 0);
  ir_bundle_destroy(out);
  /* F64 mode keeps a cast-to-f32 value in double precision. */
  out = ti_run(g, in, IR_INTERP_F64);
  ti_assert_output(out, "r", "f64[5]", xs, 0);
  ti_free(g, in, out);
}

/* Casting NaN to i64 is an error naming the node and its location. */
static void test_cast_nan_error(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 1, 2);
  ir_node *c = tb_node(g, IR_OP_cast, tb_op(g, IR_OP_log, x));
  tb_set_str(c, "to", "i64");
  int y = tb_infer(g, c);
  tb_at(g, y, "model.lua", 7, "blocks.1");
  ir_graph_add_output(g, "y", y);
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){1, -1}); /* log(-1) = NaN */
  const char *msg = ti_run_error(g, in, IR_INTERP_NATIVE, ATTNC_ERUNTIME);
  tb_assert_contains(msg, "model.lua:7");
  tb_assert_contains(msg, "%2 = cast");
  tb_assert_contains(msg, "blocks.1");
  tb_assert_contains(msg, "nan");
  ir_bundle_destroy(in);
  ir_graph_destroy(g);
}

/* i64 division truncates toward zero; division by zero is an error. */
static void test_int_div(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int a = tb_input(g, "a", IR_I64, 1, 4);
  int b = tb_input(g, "b", IR_I64, 1, 4);
  ir_graph_add_output(g, "y", tb_op(g, IR_OP_div, a, b));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, a, (double[]){7, -7, 6, -1});
  ti_feed(in, g, b, (double[]){2, 2, -4, 3});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "y", "i64[4]", (double[]){3, -3, -1, 0}, 0);
  ir_bundle_destroy(out);
  ti_feed(in, g, b, (double[]){2, 0, 1, 1});
  tb_assert_contains(ti_run_error(g, in, IR_INTERP_NATIVE, ATTNC_ERUNTIME), "division by zero");
  ir_bundle_destroy(in);
  ir_graph_destroy(g);
}

/* maximum, minimum and relu propagate NaN. */
static void test_nan_propagation(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int a = tb_input(g, "a", IR_F64, 1, 2);
  int b = tb_input(g, "b", IR_F64, 1, 2);
  ir_graph_add_output(g, "max", tb_op(g, IR_OP_maximum, a, b));
  ir_graph_add_output(g, "min", tb_op(g, IR_OP_minimum, a, b));
  ir_graph_add_output(g, "relu", tb_op(g, IR_OP_relu, a));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, a, (double[]){NAN, 1});
  ti_feed(in, g, b, (double[]){1, NAN});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "max", "f64[2]", (double[]){NAN, NAN}, 0);
  ti_assert_output(out, "min", "f64[2]", (double[]){NAN, NAN}, 0);
  ti_assert_output(out, "relu", "f64[2]", (double[]){NAN, 1}, 0);
  ti_free(g, in, out);
}

/* 1 + 1e-10 in f32: NATIVE rounds to exactly 1 (f32 output), F64 keeps the
 * increment (f64 output). */
static void test_native_vs_f64(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 0);
  int y = tb_op(g, IR_OP_add, x, tb_const(g, 1e-10, IR_F32));
  ir_graph_add_output(g, "y", y);
  ir_graph_add_output(g, "d", tb_op(g, IR_OP_sub, y, x));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){1});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "y", "f32[]", (double[]){1}, 0);
  ti_assert_output(out, "d", "f32[]", (double[]){0}, 0);
  ir_bundle_destroy(out);
  out = ti_run(g, in, IR_INTERP_F64);
  ti_assert_output(out, "y", "f64[]", (double[]){1 + 1e-10}, 0);
  ti_assert_output(out, "d", "f64[]", (double[]){(1 + 1e-10) - 1}, 0);
  ti_free(g, in, out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_piecewise_unary), cmocka_unit_test(test_math_unary),
      cmocka_unit_test(test_unary_extremes),  cmocka_unit_test(test_binary_same_shape),
      cmocka_unit_test(test_broadcast_corner), cmocka_unit_test(test_scalar_broadcast),
      cmocka_unit_test(test_comparisons),     cmocka_unit_test(test_where_broadcast),
      cmocka_unit_test(test_cast),            cmocka_unit_test(test_cast_nan_error),
      cmocka_unit_test(test_int_div),         cmocka_unit_test(test_nan_propagation),
      cmocka_unit_test(test_native_vs_f64),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
