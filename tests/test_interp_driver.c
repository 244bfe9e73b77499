/* Reference-interpreter tests of the driver: source binding (names, shapes,
 * dtype conversion, errors), outputs in both modes, freeing of values after
 * their last use (run under ASan), verification and size errors, and a
 * coverage check that every opcode has an interpreter test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util_build.h"
#include "util_interp.h"
#include "util_text.h"

static const ir_loc no_loc = {NULL, 0, NULL};

/* input, param, buffer and a non-scalar const feed an expression; a source
 * can itself be an output. */
static void test_sources(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = ir_graph_source(g, IR_OP_input, "x", 0, tb_type(IR_F32, 1, 3), no_loc)->id;
  int p = ir_graph_source(g, IR_OP_param, "p", 0, tb_type(IR_F32, 1, 3), no_loc)->id;
  int b = ir_graph_source(g, IR_OP_buffer, "b", 0, tb_type(IR_F32, 0), no_loc)->id;
  int c = ir_graph_source(g, IR_OP_const, NULL, 2.5, tb_type(IR_F32, 2, 2, 3), no_loc)->id;
  int k = ir_graph_source(g, IR_OP_const, NULL, -3, tb_type(IR_I64, 1, 2), no_loc)->id;
  int s = tb_op(g, IR_OP_add, tb_op(g, IR_OP_mul, x, p), b);
  ir_graph_add_output(g, "y", tb_op(g, IR_OP_add, s, c));
  ir_graph_add_output(g, "x", x);
  ir_graph_add_output(g, "k", k);
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){1, 2, 3});
  ti_feed(in, g, p, (double[]){10, 20, 30});
  ti_feed(in, g, b, (double[]){0.5});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "y", "f32[2,3]", (double[]){13, 43, 93, 13, 43, 93}, 0);
  ti_assert_output(out, "x", "f32[3]", (double[]){1, 2, 3}, 0);
  ti_assert_output(out, "k", "i64[2]", (double[]){-3, -3}, 0);
  assert_int_equal(out->count, 3);
  ir_bundle_destroy(out);
  /* F64 mode: float outputs become f64, i64 stays i64 */
  out = ti_run(g, in, IR_INTERP_F64);
  ti_assert_output(out, "y", "f64[2,3]", (double[]){13, 43, 93, 13, 43, 93}, 0);
  ti_assert_output(out, "k", "i64[2]", (double[]){-3, -3}, 0);
  ti_free(g, in, out);
}

/* An f64 tensor may feed an f32 input (rounded in NATIVE mode, exact in F64
 * mode) and an f32 tensor an f64 input. */
static void test_float_conversion(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 1, 2);
  int z = tb_input(g, "z", IR_F64, 1, 2);
  ir_graph_add_output(g, "x", tb_op(g, IR_OP_neg, x));
  ir_graph_add_output(g, "z", tb_op(g, IR_OP_neg, z));
  ir_bundle *in = ir_bundle_create();
  ir_bundle_put(in, "x", ti_tensor(tb_type(IR_F64, 1, 2), (double[]){0.1, 1e-50}));
  ir_bundle_put(in, "z", ti_tensor(tb_type(IR_F32, 1, 2), (double[]){0.5, 0.1}));
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "x", "f32[2]", (double[]){-(double)0.1f, 0}, 0);
  ti_assert_output(out, "z", "f64[2]", (double[]){-0.5, -(double)0.1f}, 0);
  ir_bundle_destroy(out);
  out = ti_run(g, in, IR_INTERP_F64);
  ti_assert_output(out, "x", "f64[2]", (double[]){-0.1, -1e-50}, 0);
  ti_free(g, in, out);
}

/* Missing, wrong-shaped and wrong-dtype inputs are EINVAL errors naming the
 * source and both types; no outputs are produced. */
static void test_input_errors(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 2, 4, 3);
  int y = tb_input(g, "labels", IR_I64, 1, 4);
  ir_graph_add_output(g, "y", tb_op(g, IR_OP_relu, x));
  ir_graph_add_output(g, "l", tb_op(g, IR_OP_neg, y));
  ir_bundle *in = ir_bundle_create();
  const char *msg = ti_run_error(g, in, IR_INTERP_NATIVE, ATTNC_EINVAL);
  tb_assert_contains(msg, "input 'x' (f32[4,3]) is missing");
  msg = ti_run_error(g, NULL, IR_INTERP_F64, ATTNC_EINVAL);
  tb_assert_contains(msg, "missing");
  ir_bundle_put(in, "x", ti_tensor(tb_type(IR_F32, 2, 4, 4), (double[16]){0}));
  ti_feed(in, g, y, (double[]){0, 1, 2, 3});
  msg = ti_run_error(g, in, IR_INTERP_NATIVE, ATTNC_EINVAL);
  tb_assert_contains(msg, "input 'x' expects f32[4,3], the inputs give f32[4,4]");
  ir_bundle_put(in, "x", ti_tensor(tb_type(IR_F32, 1, 12), (double[12]){0}));
  tb_assert_contains(ti_run_error(g, in, IR_INTERP_NATIVE, ATTNC_EINVAL), "expects f32[4,3], the inputs give f32[12]");
  ti_feed(in, g, x, (double[12]){0});
  ir_bundle_put(in, "labels", ti_tensor(tb_type(IR_F32, 1, 4), (double[4]){0}));
  tb_assert_contains(ti_run_error(g, in, IR_INTERP_NATIVE, ATTNC_EINVAL),
                     "input 'labels' expects i64[4], the inputs give f32[4]");
  ir_bundle_destroy(in);
  ir_graph_destroy(g);
}

/* A graph that does not verify is refused before anything runs. */
static void test_unverified_graph(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 1, 3);
  int y = tb_op(g, IR_OP_relu, x);
  g->nodes[y]->type = tb_type(IR_F32, 1, 4); /* lies about its type */
  ir_graph_add_output(g, "y", y);
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){1, 2, 3});
  ti_run_error(g, in, IR_INTERP_NATIVE, ATTNC_EVERIFY);
  ir_bundle_destroy(in);
  ir_graph_destroy(g);
}

/* A value too large to allocate is an ENOMEM error, not a crash. */
static void test_too_large(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int c = ir_graph_source(g, IR_OP_const, NULL, 1, tb_type(IR_F32, 2, 1 << 20, 1 << 20), no_loc)->id;
  ir_graph_add_output(g, "y", c);
  tb_assert_contains(ti_run_error(g, NULL, IR_INTERP_NATIVE, ATTNC_ENOMEM), "too large");
  ir_graph_destroy(g);
}

/* Values shared by distant users, used twice by one node, dead, or both an
 * output and an operand survive exactly as long as needed: a chain of 40
 * ops over x, with x reused at the end (ASan catches a premature free). */
static void test_value_lifetimes(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F64, 1, 3);
  int h = tb_op(g, IR_OP_add, x, x); /* 2x */
  tb_op(g, IR_OP_exp, h);            /* dead */
  ir_graph_add_output(g, "h", h);
  int t = h;
  for (int i = 0; i < 40; i++) t = tb_op(g, IR_OP_add, t, tb_const(g, 1, IR_F64));
  ir_graph_add_output(g, "y", tb_op(g, IR_OP_mul, t, x)); /* (2x + 40) * x */
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){1, -2, 0.5});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "h", "f64[3]", (double[]){2, -4, 1}, 0);
  ti_assert_output(out, "y", "f64[3]", (double[]){42, -72, 20.5}, 0);
  ti_free(g, in, out);
}

/* Which test file exercises each op (every opcode must have a row). */
static const struct {
  const char *op, *file;
} tested_ops[] = {
    {"input", "test_interp_driver.c"},        {"param", "test_interp_driver.c"},
    {"buffer", "test_interp_driver.c"},       {"const", "test_interp_driver.c"},
    {"neg", "test_interp_elementwise.c"},     {"abs", "test_interp_elementwise.c"},
    {"relu", "test_interp_elementwise.c"},    {"relu6", "test_interp_elementwise.c"},
    {"sigmoid", "test_interp_elementwise.c"}, {"tanh", "test_interp_elementwise.c"},
    {"exp", "test_interp_elementwise.c"},     {"log", "test_interp_elementwise.c"},
    {"sqrt", "test_interp_elementwise.c"},    {"rsqrt", "test_interp_elementwise.c"},
    {"cast", "test_interp_elementwise.c"},    {"add", "test_interp_elementwise.c"},
    {"sub", "test_interp_elementwise.c"},     {"mul", "test_interp_elementwise.c"},
    {"div", "test_interp_elementwise.c"},     {"maximum", "test_interp_elementwise.c"},
    {"minimum", "test_interp_elementwise.c"}, {"eq", "test_interp_elementwise.c"},
    {"ne", "test_interp_elementwise.c"},      {"lt", "test_interp_elementwise.c"},
    {"le", "test_interp_elementwise.c"},      {"gt", "test_interp_elementwise.c"},
    {"ge", "test_interp_elementwise.c"},      {"where", "test_interp_elementwise.c"},
    {"reduce_sum", "test_interp_reduce.c"},   {"reduce_mean", "test_interp_reduce.c"},
    {"reduce_max", "test_interp_reduce.c"},   {"reduce_min", "test_interp_reduce.c"},
    {"softmax", "test_interp_reduce.c"},      {"log_softmax", "test_interp_reduce.c"},
    {"matmul", "test_interp_nn.c"},           {"conv2d", "test_interp_nn.c"},
    {"conv1d", "test_interp_nn.c"},           {"batchnorm_train", "test_interp_nn.c"},
    {"batchnorm_eval", "test_interp_nn.c"},   {"max_pool2d", "test_interp_nn.c"},
    {"avg_pool2d", "test_interp_nn.c"},       {"concat", "test_interp_shape.c"},
    {"slice", "test_interp_shape.c"},         {"reshape", "test_interp_shape.c"},
    {"transpose", "test_interp_shape.c"},     {"broadcast_to", "test_interp_shape.c"},
    {"pad", "test_interp_shape.c"},           {"topk_mask", "test_interp_reduce.c"},
    {"cross_entropy", "test_interp_reduce.c"}, {"relu_grad", "test_interp_grad.c"},
    {"relu6_grad", "test_interp_grad.c"},     {"sigmoid_grad", "test_interp_grad.c"},
    {"tanh_grad", "test_interp_grad.c"},      {"conv2d_grad_input", "test_interp_grad.c"},
    {"conv2d_grad_weight", "test_interp_grad.c"}, {"conv1d_grad_input", "test_interp_grad.c"},
    {"conv1d_grad_weight", "test_interp_grad.c"}, {"max_pool2d_grad", "test_interp_grad.c"},
    {"avg_pool2d_grad", "test_interp_grad.c"}, {"batchnorm_train_grad", "test_interp_grad.c"},
    {"batchnorm_stats", "test_interp_nn.c"},  {"batchnorm_param_grad", "test_interp_grad.c"},
    {"cross_entropy_grad", "test_interp_grad.c"}, {"slice_grad", "test_interp_grad.c"},
};

/* Returns the contents of tests/<file> in the source tree (caller frees). */
static char *read_test_source(const char *file) {
  const char *root = getenv("ATTNC_SOURCE");
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/%s", root ? root : ".", file);
  char *text = textutil_read_file(path, NULL);
  if (!text) fail_msg("cannot read %s", path);
  return text;
}

/* Returns 1 if 'text' contains the identifier 'word' (not as a prefix of a
 * longer identifier). */
static int has_identifier(const char *text, const char *word) {
  size_t n = strlen(word);
  for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
    char next = p[n];
    if (!(next == '_' || (next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') || (next >= '0' && next <= '9')))
      return 1;
  }
  return 0;
}

/* Every opcode 0..IR_OP_COUNT-1 has a row in tested_ops, and the test file
 * named there builds that op (mentions IR_OP_<name>). */
static void test_every_op_covered(void **state) {
  (void)state;
  const size_t rows = sizeof tested_ops / sizeof tested_ops[0];
  for (int op = 0; op < IR_OP_COUNT; op++) {
    const char *name = ir_op_info_get((ir_opcode)op)->name;
    size_t r = 0;
    while (r < rows && strcmp(tested_ops[r].op, name)) r++;
    if (r == rows) fail_msg("op %s has no interpreter test (add one and a row to tested_ops)", name);
    char *text = read_test_source(tested_ops[r].file);
    char token[64];
    snprintf(token, sizeof token, "IR_OP_%s", name);
    int found = has_identifier(text, token);
    free(text);
    if (!found) fail_msg("%s does not mention %s", tested_ops[r].file, token);
  }
  assert_int_equal(rows, IR_OP_COUNT); /* no stale rows */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sources),         cmocka_unit_test(test_float_conversion),
      cmocka_unit_test(test_input_errors),    cmocka_unit_test(test_unverified_graph),
      cmocka_unit_test(test_too_large),       cmocka_unit_test(test_value_lifetimes),
      cmocka_unit_test(test_every_op_covered),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
