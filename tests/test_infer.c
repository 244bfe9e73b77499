/* Shape inference tests: every op of ops.def on representative shapes with
 * hand-computed result types, and rejection cases whose messages must name
 * the op and every operand with its shape. The last test checks that every
 * opcode was exercised (accepted, and rejected for non-source ops), so an op
 * added to ops.def without a shape test fails here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util_build.h"

/* Which ops a test has inferred successfully / seen rejected. */
static int covered_ok[IR_OP_COUNT], covered_reject[IR_OP_COUNT];

/* Infers n, checks its type is 'want', marks its op covered; returns its id. */
static int expect_type(ir_graph *g, ir_node *n, const char *want) {
  int id = tb_infer(g, n);
  tb_assert_type(g, id, want);
  covered_ok[n->op] = 1;
  return id;
}

/* Expects inference of n to fail with a message that names the op, every
 * operand with its shape, and contains 'why'; marks the op covered. */
static void expect_reject(const ir_graph *g, const ir_node *n, const char *why) {
  const char *m = tb_infer_error(g, n);
  char want[256];
  snprintf(want, sizeof want, "%%%d = %s(", n->id, ir_op_info_get(n->op)->name);
  tb_assert_contains(m, want);
  for (int i = 0; i < n->nin; i++) {
    char t[128];
    ir_type_format(&g->nodes[n->in[i]]->type, t, sizeof t);
    snprintf(want, sizeof want, "%%%d: %s", n->in[i], t);
    tb_assert_contains(m, want);
  }
  tb_assert_contains(m, why);
  covered_reject[n->op] = 1;
}

#define NODE(op, ...) tb_node(g, IR_OP_##op, __VA_ARGS__)

static void test_sources(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int ids[4];
  ids[0] = tb_input(g, "x", IR_F32, 4, 2, 3, 8, 8);
  ids[1] = tb_param(g, "w", IR_F64, 2, 5, 7);
  ids[2] = tb_buffer(g, "b", IR_I64, 1, 0);
  ids[3] = tb_const(g, 2.0, IR_F32);
  const char *want[4] = {"f32[2,3,8,8]", "f64[5,7]", "i64[0]", "f32[]"};
  for (int i = 0; i < 4; i++) {
    ir_node *n = g->nodes[ids[i]];
    ir_type t;
    char got[64];
    assert_int_equal(ir_infer_type(g, n, &t, NULL), 0); /* a source keeps its given type */
    ir_type_format(&t, got, sizeof got);
    assert_string_equal(got, want[i]);
    covered_ok[n->op] = 1;
  }
  ir_graph_destroy(g);
}

static void test_unary(void **state) {
  (void)state;
  static const ir_opcode float_only[] = {IR_OP_relu, IR_OP_relu6, IR_OP_sigmoid, IR_OP_tanh,
                                         IR_OP_exp,  IR_OP_log,   IR_OP_sqrt,    IR_OP_rsqrt};
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 2, 2, 3);
  int d = tb_input(g, "d", IR_F64, 3, 4, 1, 2);
  int k = tb_input(g, "k", IR_I64, 1, 5);
  for (size_t i = 0; i < sizeof float_only / sizeof *float_only; i++) {
    expect_type(g, tb_node(g, float_only[i], x), "f32[2,3]");
    expect_type(g, tb_node(g, float_only[i], d), "f64[4,1,2]");
    expect_reject(g, tb_node(g, float_only[i], k), "needs a floating-point operand");
    expect_reject(g, tb_node(g, float_only[i], x, x), "takes 1 operands, has 2");
  }
  /* neg and abs also work on integers */
  expect_type(g, NODE(neg, k), "i64[5]");
  expect_type(g, NODE(abs, k), "i64[5]");
  expect_type(g, NODE(neg, d), "f64[4,1,2]");
  expect_reject(g, NODE(neg, x, k), "takes 1 operands, has 2");
  expect_reject(g, NODE(abs, k, x), "takes 1 operands, has 2");
  ir_graph_destroy(g);
}

static void test_cast(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 2, 2, 3);
  int k = tb_input(g, "k", IR_I64, 0);
  ir_node *c = NODE(cast, x);
  tb_set_str(c, "to", "i64");
  expect_type(g, c, "i64[2,3]");
  c = NODE(cast, k);
  tb_set_str(c, "to", "f64");
  expect_type(g, c, "f64[]");
  c = NODE(cast, x);
  tb_set_str(c, "to", "f16");
  expect_reject(g, c, "unknown dtype 'f16'");
  expect_reject(g, NODE(cast, x), "attribute to is missing");
  ir_graph_destroy(g);
}

static void test_binary(void **state) {
  (void)state;
  static const ir_opcode ops[] = {IR_OP_add, IR_OP_sub, IR_OP_mul, IR_OP_div, IR_OP_maximum, IR_OP_minimum,
                                  IR_OP_eq,  IR_OP_ne,  IR_OP_lt,  IR_OP_le,  IR_OP_gt,      IR_OP_ge};
  ir_graph *g = ir_graph_create("t");
  int s = tb_const(g, 1.5, IR_F32);
  int a = tb_input(g, "a", IR_F32, 3, 4, 1, 3);
  int b = tb_input(g, "b", IR_F32, 2, 5, 1);
  int c = tb_input(g, "c", IR_F32, 1, 4);
  int d = tb_input(g, "d", IR_F64, 3, 4, 1, 3);
  int k = tb_input(g, "k", IR_I64, 2, 2, 1);
  int j = tb_input(g, "j", IR_I64, 1, 6);
  int z = tb_input(g, "z", IR_F32, 2, 0, 3);
  int o = tb_input(g, "o", IR_F32, 1, 1);
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
    expect_type(g, tb_node(g, ops[i], s, a), "f32[4,1,3]"); /* scalar x tensor */
    expect_type(g, tb_node(g, ops[i], a, s), "f32[4,1,3]");
    expect_type(g, tb_node(g, ops[i], a, b), "f32[4,5,3]");
    expect_type(g, tb_node(g, ops[i], b, a), "f32[4,5,3]");
    expect_type(g, tb_node(g, ops[i], k, j), "i64[2,6]"); /* integers allowed */
    expect_type(g, tb_node(g, ops[i], z, o), "f32[0,3]"); /* 1 broadcasts against 0 */
    expect_reject(g, tb_node(g, ops[i], a, c), "shapes do not broadcast"); /* 3 vs 4 */
    expect_reject(g, tb_node(g, ops[i], a, d), "operands have different dtypes");
    expect_reject(g, tb_node(g, ops[i], a), "takes 2 operands, has 1");
  }
  ir_graph_destroy(g);
}

static void test_broadcast_shapes(void **state) {
  (void)state;
  ir_type a = tb_type(IR_F32, 3, 4, 1, 3), b = tb_type(IR_F32, 2, 5, 1), r;
  char t[64];
  assert_int_equal(ir_broadcast_shapes(&a, &b, &r), 0);
  ir_type_format(&r, t, sizeof t);
  assert_string_equal(t, "f32[4,5,3]");
  ir_type s = tb_type(IR_F32, 0);
  assert_int_equal(ir_broadcast_shapes(&s, &s, &r), 0);
  assert_int_equal(r.rank, 0);
  ir_type c = tb_type(IR_F32, 2, 2, 3), e = tb_type(IR_F32, 2, 3, 2);
  assert_int_equal(ir_broadcast_shapes(&c, &e, &r), -1);
}

static void test_where(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int cond = tb_input(g, "cond", IR_I64, 2, 4, 1);
  int fc = tb_input(g, "fc", IR_F32, 2, 4, 1);
  int a = tb_input(g, "a", IR_F32, 2, 1, 3);
  int b = tb_const(g, 0, IR_F32);
  int d = tb_input(g, "d", IR_F64, 0);
  int w = tb_input(g, "w", IR_F32, 1, 5);
  expect_type(g, NODE(where, cond, a, b), "f32[4,3]"); /* the condition's dtype is free */
  expect_type(g, NODE(where, fc, b, a), "f32[4,3]");
  expect_type(g, NODE(where, b, b, b), "f32[]");
  expect_reject(g, NODE(where, cond, a, d), "operands have different dtypes");
  expect_reject(g, NODE(where, cond, a, w), "shapes do not broadcast");
  expect_reject(g, NODE(where, cond, a), "takes 3 operands, has 2");
  ir_graph_destroy(g);
}

static void test_reductions(void **state) {
  (void)state;
  static const ir_opcode ops[] = {IR_OP_reduce_sum, IR_OP_reduce_mean, IR_OP_reduce_max, IR_OP_reduce_min};
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 4, 2, 3, 4, 5);
  int e = tb_input(g, "e", IR_F64, 2, 3, 0);
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
    ir_node *n = tb_node(g, ops[i], x);
    tb_set_ints(n, "axes", 1, -1);
    expect_type(g, n, "f32[2,4]");
    n = tb_node(g, ops[i], x);
    tb_set_ints(n, "axes", -1, 1);
    tb_set_int(n, "keepdims", 1);
    expect_type(g, n, "f32[2,1,4,1]");
    n = tb_node(g, ops[i], x);
    tb_set_ints(n, "axes", 0, 1, 2, 3);
    expect_type(g, n, "f32[]");
    n = tb_node(g, ops[i], x);
    tb_set_ints(n, "axes", -4);
    tb_set_int(n, "keepdims", 1);
    expect_type(g, n, "f32[1,3,4,5]");
    n = tb_node(g, ops[i], e);
    tb_set_ints(n, "axes", 0);
    expect_type(g, n, "f64[0]");
    n = tb_node(g, ops[i], x);
    tb_set_ints(n, "axes", 4);
    expect_reject(g, n, "axis 4 out of range for rank 4");
    n = tb_node(g, ops[i], x);
    tb_set_ints(n, "axes", -5);
    expect_reject(g, n, "axis -5 out of range for rank 4");
    n = tb_node(g, ops[i], x);
    tb_set_ints(n, "axes", 1, -3);
    expect_reject(g, n, "axis 1 listed twice");
    n = tb_node(g, ops[i], x);
    tb_set_ints(n, "axes", 0);
    tb_set_int(n, "keepdims", 2);
    expect_reject(g, n, "keepdims must be 0 or 1");
    expect_reject(g, tb_node(g, ops[i], x), "attribute axes is missing");
  }
  /* only a sum has a value over an empty axis */
  ir_node *n = NODE(reduce_sum, e);
  tb_set_ints(n, "axes", 1);
  expect_type(g, n, "f64[3]");
  n = NODE(reduce_max, e);
  tb_set_ints(n, "axes", 1);
  expect_reject(g, n, "reduction over an empty axis 1");
  ir_graph_destroy(g);
}

static void test_softmax_family(void **state) {
  (void)state;
  static const ir_opcode ops[] = {IR_OP_softmax, IR_OP_log_softmax};
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 3, 2, 4, 5);
  int k = tb_input(g, "k", IR_I64, 2, 2, 5);
  for (size_t i = 0; i < 2; i++) {
    ir_node *n = tb_node(g, ops[i], x);
    tb_set_int(n, "axis", -1);
    expect_type(g, n, "f32[2,4,5]");
    n = tb_node(g, ops[i], x);
    tb_set_int(n, "axis", 3);
    expect_reject(g, n, "axis 3 out of range for rank 3");
    n = tb_node(g, ops[i], k);
    tb_set_int(n, "axis", 1);
    expect_reject(g, n, "needs a floating-point operand");
  }
  ir_graph_destroy(g);
}

static void test_topk_mask(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 2, 2, 5);
  const int64_t ks[] = {1, 5}, bad[] = {0, 6};
  for (int i = 0; i < 2; i++) {
    ir_node *n = NODE(topk_mask, x);
    tb_set_int(n, "axis", -1);
    tb_set_int(n, "k", ks[i]);
    expect_type(g, n, "f32[2,5]");
    n = NODE(topk_mask, x);
    tb_set_int(n, "axis", 1);
    tb_set_int(n, "k", bad[i]);
    char why[64];
    snprintf(why, sizeof why, "k = %lld outside 1..5", (long long)bad[i]);
    expect_reject(g, n, why);
  }
  ir_node *n = NODE(topk_mask, x);
  tb_set_int(n, "axis", 0);
  tb_set_int(n, "k", 3); /* axis 0 has size 2 */
  expect_reject(g, n, "k = 3 outside 1..2");
  ir_graph_destroy(g);
}

/* Appends matmul(a, b) with the given trans flags. */
static ir_node *matmul(ir_graph *g, int a, int b, int ta, int tb) {
  ir_node *n = NODE(matmul, a, b);
  tb_set_int(n, "trans_a", ta);
  tb_set_int(n, "trans_b", tb);
  return n;
}

static void test_matmul(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int a = tb_input(g, "a", IR_F32, 2, 4, 3);
  int at = tb_input(g, "at", IR_F32, 2, 3, 4);
  int b = tb_input(g, "b", IR_F32, 2, 3, 5);
  int bt = tb_input(g, "bt", IR_F32, 2, 5, 3);
  int ba = tb_input(g, "ba", IR_F32, 4, 2, 6, 4, 3);
  int bb = tb_input(g, "bb", IR_F32, 4, 2, 6, 3, 5);
  int bbt = tb_input(g, "bbt", IR_F32, 4, 2, 6, 5, 3);
  int bx = tb_input(g, "bx", IR_F32, 4, 2, 7, 3, 5);
  int v = tb_input(g, "v", IR_F32, 1, 3);
  int d = tb_input(g, "d", IR_F64, 2, 3, 5);
  int b3 = tb_input(g, "b3", IR_F32, 3, 6, 3, 5);
  expect_type(g, matmul(g, a, b, 0, 0), "f32[4,5]");
  expect_type(g, matmul(g, at, b, 1, 0), "f32[4,5]");
  expect_type(g, matmul(g, a, bt, 0, 1), "f32[4,5]");
  expect_type(g, matmul(g, at, bt, 1, 1), "f32[4,5]");
  expect_type(g, matmul(g, ba, bb, 0, 0), "f32[2,6,4,5]");
  expect_type(g, matmul(g, ba, bbt, 0, 1), "f32[2,6,4,5]");
  expect_type(g, matmul(g, ba, b, 0, 0), "f32[2,6,4,5]"); /* rank-2 b shared over the batch */
  expect_type(g, matmul(g, ba, bt, 0, 1), "f32[2,6,4,5]");
  expect_type(g, matmul(g, a, at, 0, 0), "f32[4,4]");
  expect_reject(g, matmul(g, at, b, 0, 0), "inner dimensions differ (4 vs 3)");
  expect_reject(g, matmul(g, a, b, 0, 1), "inner dimensions differ (3 vs 5)");
  expect_reject(g, matmul(g, ba, bx, 0, 0), "batch dimension 1 differs");
  expect_reject(g, matmul(g, ba, b3, 0, 0), "b must have rank 2 or the rank of a");
  expect_reject(g, matmul(g, v, b, 0, 0), "operands must have rank >= 2");
  expect_reject(g, matmul(g, a, d, 0, 0), "operands need one floating-point dtype");
  ir_graph_destroy(g);
}

/* Appends conv2d(x, w) with stride, pad and dilation pairs and groups. */
static ir_node *conv2d(ir_graph *g, int x, int w, const int64_t s[2], const int64_t p[2], const int64_t d[2],
                       int64_t groups) {
  ir_node *n = NODE(conv2d, x, w);
  tb_set_ints_n(n, "stride", s, 2);
  tb_set_ints_n(n, "pad", p, 2);
  tb_set_ints_n(n, "dilation", d, 2);
  tb_set_int(n, "groups", groups);
  return n;
}

static void test_conv2d(void **state) {
  (void)state;
  static const int64_t one[2] = {1, 1}, two[2] = {2, 2}, zero[2] = {0, 0};
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 4, 2, 4, 9, 12);
  int w = tb_param(g, "w", IR_F32, 4, 8, 4, 3, 3);
  int wg = tb_param(g, "wg", IR_F32, 4, 6, 2, 3, 3);
  int xd = tb_input(g, "xd", IR_F32, 4, 1, 8, 10, 10);
  int wd = tb_param(g, "wd", IR_F32, 4, 8, 1, 3, 3);
  int w3 = tb_param(g, "w3", IR_F32, 4, 8, 3, 3, 3);
  int tiny = tb_input(g, "tiny", IR_F32, 4, 1, 4, 2, 2);
  int x3 = tb_input(g, "x3", IR_F32, 3, 2, 4, 9);
  int w64 = tb_param(g, "w64", IR_F64, 4, 8, 4, 3, 3);
  /* H: (9+2*1-3)/2+1 = 5; W: span 2*(3-1)+1 = 5, (12-5)/1+1 = 8 */
  const int64_t s21[2] = {2, 1}, p10[2] = {1, 0}, d12[2] = {1, 2};
  expect_type(g, conv2d(g, x, w, s21, p10, d12, 1), "f32[2,8,5,8]");
  /* stride 2 pad 1: H (9+2-3)/2+1 = 5, W (12+2-3)/2+1 = 6 */
  expect_type(g, conv2d(g, x, w, two, one, one, 1), "f32[2,8,5,6]");
  /* dilation 2: span 5, H (9-5)+1 = 5, W (12-5)+1 = 8 */
  expect_type(g, conv2d(g, x, w, one, zero, two, 1), "f32[2,8,5,8]");
  expect_type(g, tb_node(g, IR_OP_conv2d, x, w), "f32[2,8,7,10]"); /* defaults */
  /* groups 2: 4 in-channels as 2 groups of 2, 6 out-channels */
  expect_type(g, conv2d(g, x, wg, one, one, one, 2), "f32[2,6,9,12]");
  /* depthwise: groups = channels = 8, stride 2 pad 1: (10+2-3)/2+1 = 5 */
  expect_type(g, conv2d(g, xd, wd, two, one, one, 8), "f32[1,8,5,5]");
  expect_reject(g, conv2d(g, x, w3, one, zero, one, 1), "input has 4 channels, weight expects 3 (groups 1)");
  expect_reject(g, conv2d(g, x, w, one, zero, one, 3), "not divisible by groups 3");
  expect_reject(g, conv2d(g, x, wg, one, zero, one, 1), "input has 4 channels, weight expects 2");
  expect_reject(g, conv2d(g, tiny, w, one, zero, one, 1), "kernel larger than padded input along axis 2");
  expect_reject(g, conv2d(g, x, w, one, zero, one, 0), "groups must be >= 1");
  expect_reject(g, conv2d(g, x, w, zero, zero, one, 1), "attribute stride[0] = 0, must be >= 1");
  ir_node *n = NODE(conv2d, x, w);
  tb_set_ints(n, "pad", 1);
  expect_reject(g, n, "attribute pad needs 2 values, has 1");
  expect_reject(g, NODE(conv2d, x3, w), "input and weight must have rank 4");
  expect_reject(g, NODE(conv2d, x, w64), "operands need one floating-point dtype");
  ir_graph_destroy(g);
}

static void test_conv1d(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  /* ECA-style conv over the channel axis: [N,1,C] with k=3 pad=1 keeps C */
  int x = tb_input(g, "x", IR_F32, 3, 4, 1, 16);
  int w = tb_param(g, "w", IR_F32, 3, 1, 1, 3);
  ir_node *n = NODE(conv1d, x, w);
  tb_set_ints(n, "pad", 1);
  expect_type(g, n, "f32[4,1,16]");
  /* stride 2, pad 2, dilation 2: span 5, (20+4-5)/2+1 = 10 */
  int y = tb_input(g, "y", IR_F32, 3, 2, 3, 20);
  int v = tb_param(g, "v", IR_F32, 3, 5, 3, 3);
  n = NODE(conv1d, y, v);
  tb_set_ints(n, "stride", 2);
  tb_set_ints(n, "pad", 2);
  tb_set_ints(n, "dilation", 2);
  expect_type(g, n, "f32[2,5,10]");
  n = NODE(conv1d, x, w);
  tb_set_ints(n, "pad", 1, 1);
  expect_reject(g, n, "attribute pad needs 1 values, has 2");
  expect_reject(g, NODE(conv1d, y, w), "input has 3 channels, weight expects 1");
  ir_graph_destroy(g);
}

static void test_batchnorm(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 4, 2, 4, 5, 5);
  int x2 = tb_input(g, "x2", IR_F32, 2, 8, 4);
  int c = tb_param(g, "c", IR_F32, 1, 4);
  int c3 = tb_param(g, "c3", IR_F32, 1, 3);
  int cd = tb_param(g, "cd", IR_F64, 1, 4);
  int v = tb_input(g, "v", IR_F32, 1, 4);
  expect_type(g, NODE(batchnorm_train, x, c, c), "f32[2,4,5,5]");
  expect_type(g, NODE(batchnorm_train, x2, c, c), "f32[8,4]");
  expect_type(g, NODE(batchnorm_eval, x, c, c, c, c), "f32[2,4,5,5]");
  expect_type(g, NODE(batchnorm_eval, x2, c, c, c, c), "f32[8,4]");
  expect_reject(g, NODE(batchnorm_train, x, c3, c), "operand 1 must be f32[4] (one value per channel)");
  expect_reject(g, NODE(batchnorm_eval, x, c, c, c, cd), "operand 4 must be f32[4]");
  expect_reject(g, NODE(batchnorm_train, v, c, c), "input must have rank >= 2");
  ir_node *n = NODE(batchnorm_eval, x, c, c, c, c);
  tb_set_float(n, "eps", -1e-5);
  expect_reject(g, n, "eps must be >= 0");
  ir_graph_destroy(g);
}

/* Appends a pooling op over x with kernel, stride and pad pairs. */
static ir_node *pool(ir_graph *g, ir_opcode op, int x, int64_t k0, int64_t k1, int64_t s0, int64_t s1, int64_t p0,
                     int64_t p1) {
  ir_node *n = tb_node(g, op, x);
  tb_set_ints(n, "kernel", k0, k1);
  tb_set_ints(n, "stride", s0, s1);
  tb_set_ints(n, "pad", p0, p1);
  return n;
}

static void test_pooling(void **state) {
  (void)state;
  static const ir_opcode ops[] = {IR_OP_max_pool2d, IR_OP_avg_pool2d};
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 4, 1, 3, 7, 7);
  int x3 = tb_input(g, "x3", IR_F32, 3, 3, 7, 7);
  int k = tb_input(g, "k", IR_I64, 4, 1, 3, 7, 7);
  for (int i = 0; i < 2; i++) {
    expect_type(g, pool(g, ops[i], x, 3, 3, 2, 2, 1, 1), "f32[1,3,4,4]"); /* (7+2-3)/2+1 */
    expect_type(g, pool(g, ops[i], x, 2, 2, 2, 2, 0, 0), "f32[1,3,3,3]"); /* (7-2)/2+1 */
    expect_type(g, pool(g, ops[i], x, 3, 2, 1, 2, 0, 1), "f32[1,3,5,4]"); /* 7-3+1; (7+2-2)/2+1 */
    expect_reject(g, pool(g, ops[i], x, 3, 3, 1, 1, 2, 0), "pad 2 is more than half the kernel 3");
    expect_reject(g, pool(g, ops[i], x, 8, 8, 1, 1, 0, 0), "kernel larger than padded input");
    expect_reject(g, pool(g, ops[i], x3, 2, 2, 2, 2, 0, 0), "input must be [N,C,H,W]");
    expect_reject(g, pool(g, ops[i], k, 2, 2, 2, 2, 0, 0), "needs a floating-point input");
    expect_reject(g, pool(g, ops[i], x, 0, 2, 2, 2, 0, 0), "attribute kernel[0] = 0, must be >= 1");
    ir_node *n = tb_node(g, ops[i], x);
    tb_set_ints(n, "kernel", 2, 2);
    expect_reject(g, n, "attribute stride is missing");
  }
  ir_graph_destroy(g);
}

static void test_concat(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int a = tb_input(g, "a", IR_F32, 3, 2, 3, 4);
  int b = tb_input(g, "b", IR_F32, 3, 2, 5, 4);
  int c = tb_input(g, "c", IR_F32, 3, 2, 1, 4);
  int d = tb_input(g, "d", IR_F32, 3, 3, 3, 4);
  int e = tb_input(g, "e", IR_F64, 3, 2, 3, 4);
  int f = tb_input(g, "f", IR_F32, 2, 2, 3);
  ir_node *n = NODE(concat, a, b, c);
  tb_set_int(n, "axis", 1);
  expect_type(g, n, "f32[2,9,4]");
  n = NODE(concat, a, a, a);
  tb_set_int(n, "axis", -1);
  expect_type(g, n, "f32[2,3,12]");
  n = NODE(concat, a);
  tb_set_int(n, "axis", 0);
  expect_type(g, n, "f32[2,3,4]");
  n = NODE(concat, a, d, c);
  tb_set_int(n, "axis", 1);
  expect_reject(g, n, "operand 1 differs along axis 0");
  n = NODE(concat, a, e);
  tb_set_int(n, "axis", 0);
  expect_reject(g, n, "operand 1 differs in rank or dtype");
  n = NODE(concat, a, f);
  tb_set_int(n, "axis", 0);
  expect_reject(g, n, "operand 1 differs in rank or dtype");
  n = NODE(concat, a, b);
  tb_set_int(n, "axis", 3);
  expect_reject(g, n, "axis out of range for rank 3");
  ir_graph_destroy(g);
}

/* Appends slice(x) along axis with start, end and step. */
static ir_node *slice(ir_graph *g, int x, int64_t axis, int64_t start, int64_t end, int64_t step) {
  ir_node *n = NODE(slice, x);
  tb_set_int(n, "axis", axis);
  tb_set_int(n, "start", start);
  tb_set_int(n, "end", end);
  tb_set_int(n, "step", step);
  return n;
}

static void test_slice(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 2, 10, 6);
  expect_type(g, slice(g, x, 0, 1, 10, 3), "f32[3,6]"); /* 1,4,7 */
  expect_type(g, slice(g, x, 0, 0, 5, 2), "f32[3,6]");  /* 0,2,4 */
  expect_type(g, slice(g, x, 0, 0, 6, 2), "f32[3,6]");  /* 0,2,4 */
  expect_type(g, slice(g, x, -1, 2, 6, 1), "f32[10,4]");
  expect_type(g, slice(g, x, 1, 5, 6, 7), "f32[10,1]");
  expect_reject(g, slice(g, x, 0, 1, 11, 1), "range [1, 11) invalid for axis 0 of size 10");
  expect_reject(g, slice(g, x, 1, 4, 4, 1), "range [4, 4) invalid for axis 1 of size 6");
  expect_reject(g, slice(g, x, 1, -1, 4, 1), "range [-1, 4) invalid");
  expect_reject(g, slice(g, x, 0, 0, 4, 0), "step must be >= 1");
  expect_reject(g, slice(g, x, 2, 0, 1, 1), "axis out of range for rank 2");
  ir_graph_destroy(g);
}

static void test_reshape_transpose_broadcast(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 3, 2, 3, 4);
  int c = tb_input(g, "c", IR_F32, 2, 3, 1);
  ir_node *n = NODE(reshape, x);
  tb_set_ints(n, "shape", 6, 4);
  expect_type(g, n, "f32[6,4]");
  n = NODE(reshape, x);
  tb_set_ints(n, "shape", 24);
  expect_type(g, n, "f32[24]");
  n = NODE(reshape, x);
  tb_set_ints(n, "shape", 5, 5);
  expect_reject(g, n, "shape has 25 elements, input 24");
  n = NODE(reshape, x);
  tb_set_ints(n, "shape", -1, 4);
  expect_reject(g, n, "negative dimension in shape");

  n = NODE(transpose, x);
  tb_set_ints(n, "perm", 2, 0, 1);
  expect_type(g, n, "f32[4,2,3]");
  n = NODE(transpose, x);
  tb_set_ints(n, "perm", 0, 0, 1);
  expect_reject(g, n, "perm is not a permutation");
  n = NODE(transpose, x);
  tb_set_ints(n, "perm", 1, 0);
  expect_reject(g, n, "perm has 2 entries for rank 3");

  n = NODE(broadcast_to, c);
  tb_set_ints(n, "shape", 2, 3, 4);
  expect_type(g, n, "f32[2,3,4]");
  n = NODE(broadcast_to, c);
  tb_set_ints(n, "shape", 3, 1);
  expect_type(g, n, "f32[3,1]");
  n = NODE(broadcast_to, c);
  tb_set_ints(n, "shape", 2, 4);
  expect_reject(g, n, "cannot broadcast to the requested shape");
  n = NODE(broadcast_to, c);
  tb_set_ints(n, "shape", 3);
  expect_reject(g, n, "cannot broadcast to the requested shape");
  n = NODE(broadcast_to, x);
  tb_set_ints(n, "shape", 2, 1, 4); /* would shrink axis 1 */
  expect_reject(g, n, "cannot broadcast to the requested shape");
  ir_graph_destroy(g);
}

static void test_pad(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 4, 1, 2, 3, 4);
  ir_node *n = NODE(pad, x);
  tb_set_ints(n, "pads", 0, 0, 0, 0, 1, 1, 2, 0);
  tb_set_float(n, "value", -1.0);
  expect_type(g, n, "f32[1,2,5,6]");
  n = NODE(pad, x);
  tb_set_ints(n, "pads", 0, 0, 1, 1, 2, 0);
  expect_reject(g, n, "pads needs 8 values, has 6");
  n = NODE(pad, x);
  tb_set_ints(n, "pads", 0, 0, 0, 0, -1, 0, 0, 0);
  expect_reject(g, n, "negative padding");
  ir_graph_destroy(g);
}

static void test_cross_entropy(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int l = tb_input(g, "l", IR_F32, 2, 8, 10);
  int ld = tb_input(g, "ld", IR_F64, 2, 8, 10);
  int y = tb_input(g, "y", IR_I64, 1, 8);
  int yf = tb_input(g, "yf", IR_F32, 1, 8);
  int y7 = tb_input(g, "y7", IR_I64, 1, 7);
  int l3 = tb_input(g, "l3", IR_F32, 3, 8, 10, 1);
  expect_type(g, NODE(cross_entropy, l, y), "f32[]");
  expect_type(g, NODE(cross_entropy, ld, y), "f64[]");
  expect_reject(g, NODE(cross_entropy, l, yf), "labels must be i64[8]");
  expect_reject(g, NODE(cross_entropy, l, y7), "labels must be i64[8]");
  expect_reject(g, NODE(cross_entropy, l3, y), "logits must be a float [N,K] tensor");
  ir_graph_destroy(g);
}

/* Backward ops (autodiff only): elementwise gradients broadcast like binaries. */
static void test_backward_elementwise(void **state) {
  (void)state;
  static const ir_opcode ops[] = {IR_OP_relu_grad, IR_OP_relu6_grad, IR_OP_sigmoid_grad, IR_OP_tanh_grad};
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 2, 2, 3);
  int dy = tb_input(g, "dy", IR_F32, 2, 2, 3);
  int t = tb_input(g, "t", IR_F32, 2, 3, 2);
  int d = tb_input(g, "d", IR_F64, 2, 2, 3);
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
    expect_type(g, tb_node(g, ops[i], x, dy), "f32[2,3]");
    expect_reject(g, tb_node(g, ops[i], x, t), "shapes do not broadcast");
    expect_reject(g, tb_node(g, ops[i], x, d), "operands have different dtypes");
  }
  ir_graph_destroy(g);
}

/* Appends a conv gradient op with stride/pad pairs (or singles for conv1d)
 * and groups; the caller sets in_shape or kernel. */
static ir_node *conv_grad(ir_graph *g, ir_opcode op, int a, int b, int sp, int64_t stride, int64_t pad,
                          int64_t groups) {
  ir_node *n = tb_node(g, op, a, b);
  const int64_t s[2] = {stride, stride}, p[2] = {pad, pad};
  tb_set_ints_n(n, "stride", s, sp);
  tb_set_ints_n(n, "pad", p, sp);
  tb_set_int(n, "groups", groups);
  return n;
}

static void test_conv_grads(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  /* forward: x[2,4,9,12] * w[8,4,3,3], stride 2 pad 1 -> y[2,8,5,6] */
  int x = tb_input(g, "x", IR_F32, 4, 2, 4, 9, 12);
  int w = tb_param(g, "w", IR_F32, 4, 8, 4, 3, 3);
  int dy = tb_input(g, "dy", IR_F32, 4, 2, 8, 5, 6);
  int dy3 = tb_input(g, "dy3", IR_F32, 4, 3, 8, 5, 6);
  int wg = tb_param(g, "wg", IR_F32, 4, 6, 2, 3, 3);
  int dyg = tb_input(g, "dyg", IR_F32, 4, 2, 6, 9, 12);
  int w2 = tb_param(g, "w2", IR_F32, 4, 8, 2, 3, 3);
  ir_node *n = conv_grad(g, IR_OP_conv2d_grad_input, dy, w, 2, 2, 1, 1);
  tb_set_ints(n, "in_shape", 2, 4, 9, 12);
  expect_type(g, n, "f32[2,4,9,12]");
  n = conv_grad(g, IR_OP_conv2d_grad_input, dy, w, 2, 2, 1, 1);
  tb_set_ints(n, "in_shape", 2, 4, 10, 12); /* (10+2-3)/2+1 = 5 too: in_shape decides */
  expect_type(g, n, "f32[2,4,10,12]");
  n = conv_grad(g, IR_OP_conv2d_grad_input, dyg, wg, 2, 1, 1, 2);
  tb_set_ints(n, "in_shape", 2, 4, 9, 12);
  expect_type(g, n, "f32[2,4,9,12]");
  n = conv_grad(g, IR_OP_conv2d_grad_input, dy, w, 2, 2, 1, 1);
  tb_set_ints(n, "in_shape", 2, 4, 9, 13); /* (13+2-3)/2+1 = 7, dy has 6 */
  expect_reject(g, n, "gradient shape 6 along spatial axis 1 does not match the forward window");
  n = conv_grad(g, IR_OP_conv2d_grad_input, dy, w2, 2, 2, 1, 1);
  tb_set_ints(n, "in_shape", 2, 4, 9, 12);
  expect_reject(g, n, "in_shape, dy and weight disagree on batch or channels");
  expect_reject(g, conv_grad(g, IR_OP_conv2d_grad_input, dy, w, 2, 2, 1, 1), "attribute in_shape is missing");

  n = conv_grad(g, IR_OP_conv2d_grad_weight, x, dy, 2, 2, 1, 1);
  tb_set_ints(n, "kernel", 3, 3);
  expect_type(g, n, "f32[8,4,3,3]");
  n = conv_grad(g, IR_OP_conv2d_grad_weight, x, dyg, 2, 1, 1, 2);
  tb_set_ints(n, "kernel", 3, 3);
  expect_type(g, n, "f32[6,2,3,3]");
  n = conv_grad(g, IR_OP_conv2d_grad_weight, x, dy, 2, 2, 1, 1);
  tb_set_ints(n, "kernel", 5, 3); /* (9+2-5)/2+1 = 4, dy has 5 */
  expect_reject(g, n, "gradient shape 5 along spatial axis 0 does not match the forward window");
  n = conv_grad(g, IR_OP_conv2d_grad_weight, x, dy3, 2, 2, 1, 1);
  tb_set_ints(n, "kernel", 3, 3);
  expect_reject(g, n, "x and dy disagree on batch");

  /* conv1d over channels: x[4,1,16] * w[1,1,3], pad 1 -> y[4,1,16] */
  int x1 = tb_input(g, "x1", IR_F32, 3, 4, 1, 16);
  int w1 = tb_param(g, "w1", IR_F32, 3, 1, 1, 3);
  n = conv_grad(g, IR_OP_conv1d_grad_input, x1, w1, 1, 1, 1, 1);
  tb_set_ints(n, "in_shape", 4, 1, 16);
  expect_type(g, n, "f32[4,1,16]");
  n = conv_grad(g, IR_OP_conv1d_grad_input, x1, w1, 1, 1, 1, 1);
  tb_set_ints(n, "in_shape", 4, 1, 17);
  expect_reject(g, n, "gradient shape 16 along spatial axis 0 does not match the forward window");
  n = conv_grad(g, IR_OP_conv1d_grad_weight, x1, x1, 1, 1, 1, 1);
  tb_set_ints(n, "kernel", 3);
  expect_type(g, n, "f32[1,1,3]");
  n = conv_grad(g, IR_OP_conv1d_grad_weight, x, dy, 1, 1, 1, 1);
  tb_set_ints(n, "kernel", 3);
  expect_reject(g, n, "operands must have rank 3");
  ir_graph_destroy(g);
}

static void test_pool_grads(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 4, 1, 3, 7, 7);
  int dy = tb_input(g, "dy", IR_F32, 4, 1, 3, 4, 4);
  int dy3 = tb_input(g, "dy3", IR_F32, 4, 1, 3, 3, 3);
  int dyd = tb_input(g, "dyd", IR_F64, 4, 1, 3, 4, 4);
  ir_node *n;
  /* max (x, dy): kernel 3 stride 2 pad 1, (7+2-3)/2+1 = 4 */
  const int ins[3][2] = {{x, dy}, {x, dy3}, {x, dyd}};
  const char *why[3] = {NULL, "gradient shape 3 along spatial axis 0 does not match the forward window",
                        "operands need one dtype"};
  for (int i = 0; i < 3; i++) {
    n = tb_node_n(g, IR_OP_max_pool2d_grad, ins[i], 2);
    tb_set_ints(n, "kernel", 3, 3);
    tb_set_ints(n, "stride", 2, 2);
    tb_set_ints(n, "pad", 1, 1);
    if (why[i])
      expect_reject(g, n, why[i]);
    else
      expect_type(g, n, "f32[1,3,7,7]");
  }
  /* avg: kernel 2 stride 2, (7-2)/2+1 = 3 = (6-2)/2+1 */
  n = pool(g, IR_OP_avg_pool2d_grad, dy3, 2, 2, 2, 2, 0, 0);
  tb_set_ints(n, "in_shape", 1, 3, 7, 7);
  expect_type(g, n, "f32[1,3,7,7]");
  n = pool(g, IR_OP_avg_pool2d_grad, dy3, 2, 2, 2, 2, 0, 0);
  tb_set_ints(n, "in_shape", 1, 3, 6, 6);
  expect_type(g, n, "f32[1,3,6,6]");
  n = pool(g, IR_OP_avg_pool2d_grad, dy3, 2, 2, 2, 2, 0, 0);
  tb_set_ints(n, "in_shape", 1, 4, 7, 7);
  expect_reject(g, n, "input and gradient must be [N,C,H,W] with the same N and C");
  n = pool(g, IR_OP_avg_pool2d_grad, dy3, 2, 2, 2, 2, 0, 0);
  tb_set_ints(n, "in_shape", 1, 3, 7);
  expect_reject(g, n, "attribute in_shape needs 4 values, has 3");
  ir_graph_destroy(g);
}

static void test_other_grads(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 4, 2, 4, 5, 5);
  int gam = tb_param(g, "gamma", IR_F32, 1, 4);
  int g3 = tb_param(g, "g3", IR_F32, 1, 3);
  int dyw = tb_input(g, "dyw", IR_F32, 4, 2, 4, 5, 4);
  expect_type(g, NODE(batchnorm_train_grad, x, gam, x), "f32[2,4,5,5]");
  expect_reject(g, NODE(batchnorm_train_grad, x, gam, dyw), "x and dy must have one type of rank >= 2");
  expect_reject(g, NODE(batchnorm_train_grad, x, g3, x), "gamma must have one value per channel");
  int gd = tb_param(g, "gd", IR_F64, 1, 4); /* regression: a gamma of another dtype was accepted */
  expect_reject(g, NODE(batchnorm_train_grad, x, gd, x), "gamma must have one value per channel");
  expect_type(g, NODE(batchnorm_stats, x), "f32[2,4]");
  int x2 = tb_input(g, "x2", IR_F64, 2, 8, 3);
  expect_type(g, NODE(batchnorm_stats, x2), "f64[2,3]");
  expect_reject(g, NODE(batchnorm_stats, g3), "x must have rank >= 2");
  expect_type(g, NODE(batchnorm_param_grad, x, x), "f32[2,4]");
  expect_reject(g, NODE(batchnorm_param_grad, x, dyw), "x and dy must have one type");
  expect_reject(g, NODE(batchnorm_param_grad, g3, g3), "x must have rank >= 2");

  int l = tb_input(g, "l", IR_F32, 2, 8, 10);
  int y = tb_input(g, "y", IR_I64, 1, 8);
  int yf = tb_input(g, "yf", IR_F32, 1, 8);
  int dl = tb_const(g, 1, IR_F32);
  int dl1 = tb_input(g, "dl1", IR_F32, 1, 1);
  expect_type(g, NODE(cross_entropy_grad, l, y, dl), "f32[8,10]");
  expect_reject(g, NODE(cross_entropy_grad, l, y, dl1), "dloss must be a scalar of the logits' dtype");
  expect_reject(g, NODE(cross_entropy_grad, l, yf, dl), "labels must be i64[8]");

  /* forward slice [1:10:3] of a [10,6] tensor gave [3,6] */
  int dy = tb_input(g, "dy", IR_F32, 2, 3, 6);
  const int64_t sizes[3] = {10, 9, 10};
  const int dys[3] = {dy, dy, l};
  const char *why[3] = {NULL, "slice [1:10:3] of size 9 does not give 3 entries",
                        "slice [1:10:3] of size 10 does not give 8 entries"};
  for (int i = 0; i < 3; i++) {
    ir_node *n = NODE(slice_grad, dys[i]);
    tb_set_int(n, "axis", 0);
    tb_set_int(n, "start", 1);
    tb_set_int(n, "end", 10);
    tb_set_int(n, "step", 3);
    tb_set_int(n, "size", sizes[i]);
    if (why[i])
      expect_reject(g, n, why[i]);
    else
      expect_type(g, n, "f32[10,6]");
  }
  ir_graph_destroy(g);
}

/* A rejected node with a location reports it first. */
static void test_error_location(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int a = tb_input(g, "a", IR_F32, 2, 4, 3);
  int b = tb_input(g, "b", IR_F32, 2, 3, 5);
  ir_node *n = NODE(matmul, b, a);
  tb_at(g, n->id, "models/x.lua", 42, "blocks.1");
  const char *m = tb_infer_error(g, n);
  const char *want = "models/x.lua:42: %2 = matmul(%1: f32[3,5], %0: f32[4,3]): inner dimensions differ (5 vs 4)";
  assert_int_equal(strncmp(m, want, strlen(want)), 0);
  ir_graph_destroy(g);
}

/* Every opcode was accepted by some test above, and every non-source opcode
 * was also seen rejected. Must run last. */
static void test_every_op_covered(void **state) {
  (void)state;
  char missing[1024] = "";
  size_t o = 0;
  for (int op = 0; op < IR_OP_COUNT; op++) {
    const ir_op_info *info = ir_op_info_get((ir_opcode)op);
    int need_reject = !(info->flags & IR_OPF_SOURCE);
    if (!covered_ok[op] || (need_reject && !covered_reject[op]))
      o += (size_t)snprintf(missing + o, sizeof missing - o, " %s(%s)", info->name,
                            !covered_ok[op] ? "no accepted case" : "no rejected case");
    if (o >= sizeof missing) break;
  }
  if (missing[0]) fail_msg("ops without shape tests:%s", missing);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sources),
      cmocka_unit_test(test_unary),
      cmocka_unit_test(test_cast),
      cmocka_unit_test(test_binary),
      cmocka_unit_test(test_broadcast_shapes),
      cmocka_unit_test(test_where),
      cmocka_unit_test(test_reductions),
      cmocka_unit_test(test_softmax_family),
      cmocka_unit_test(test_topk_mask),
      cmocka_unit_test(test_matmul),
      cmocka_unit_test(test_conv2d),
      cmocka_unit_test(test_conv1d),
      cmocka_unit_test(test_batchnorm),
      cmocka_unit_test(test_pooling),
      cmocka_unit_test(test_concat),
      cmocka_unit_test(test_slice),
      cmocka_unit_test(test_reshape_transpose_broadcast),
      cmocka_unit_test(test_pad),
      cmocka_unit_test(test_cross_entropy),
      cmocka_unit_test(test_backward_elementwise),
      cmocka_unit_test(test_conv_grads),
      cmocka_unit_test(test_pool_grads),
      cmocka_unit_test(test_other_grads),
      cmocka_unit_test(test_error_location),
      cmocka_unit_test(test_every_op_covered), /* last */
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
