/* Verifier tests: valid graphs pass; each kind of broken graph is reported
 * with a message naming the op, the values and their shapes, and several
 * problems are reported in one run without cascading. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util_build.h"

/* Builds a small valid CNN-ish graph: conv2d -> batchnorm -> relu -> pool ->
 * reshape -> matmul -> cross_entropy, with an output per stage end. */
static ir_graph *valid_graph(void) {
  ir_graph *g = ir_graph_create("valid");
  int x = tb_input(g, "x", IR_F32, 4, 2, 3, 8, 8);
  int y = tb_input(g, "y", IR_I64, 1, 2);
  int w = tb_param(g, "w", IR_F32, 4, 4, 3, 3, 3);
  int gam = tb_param(g, "gamma", IR_F32, 1, 4);
  int bet = tb_param(g, "beta", IR_F32, 1, 4);
  int fc = tb_param(g, "fc", IR_F32, 2, 64, 10);
  int rm = tb_buffer(g, "rmean", IR_F32, 1, 4);
  ir_node *c = tb_node(g, IR_OP_conv2d, x, w);
  tb_set_ints(c, "pad", 1, 1);
  int h = tb_infer(g, c);
  h = tb_op(g, IR_OP_batchnorm_train, h, gam, bet);
  h = tb_op(g, IR_OP_relu, h);
  ir_node *p = tb_node(g, IR_OP_max_pool2d, h);
  tb_set_ints(p, "kernel", 2, 2);
  tb_set_ints(p, "stride", 2, 2);
  h = tb_infer(g, p);
  ir_node *r = tb_node(g, IR_OP_reshape, h);
  tb_set_ints(r, "shape", 2, 64);
  h = tb_infer(g, r);
  int logits = tb_op(g, IR_OP_matmul, h, fc);
  int loss = tb_op(g, IR_OP_cross_entropy, logits, y);
  int half = tb_const(g, 0.5, IR_F32);
  int scaled = tb_op(g, IR_OP_mul, loss, half);
  ir_node *m = tb_node(g, IR_OP_reduce_mean, c->id);
  tb_set_ints(m, "axes", 0, -2, -1);
  int mean = tb_infer(g, m);
  int upd = tb_op(g, IR_OP_add, rm, mean);
  ir_graph_add_output(g, "loss", scaled);
  ir_graph_add_output(g, "logits", logits);
  ir_graph_add_output(g, "rmean", upd);
  return g;
}

/* Verifies g expecting 'want' errors; returns the diag for message checks. */
static ir_diag *verify_expect(const ir_graph *g, int want) {
  ir_diag *d = ir_diag_create();
  int n = ir_verify(g, d);
  if (n != want || ir_diag_count(d) != want)
    fail_msg("expected %d errors, ir_verify returned %d, diag has %d:\n%s", want, n, ir_diag_count(d), ir_diag_text(d));
  return d;
}

static void test_valid_graph(void **state) {
  (void)state;
  ir_graph *g = valid_graph();
  tb_assert_type(g, g->outputs[0].node, "f32[]");
  tb_assert_type(g, g->outputs[2].node, "f32[4]");
  ir_diag_destroy(verify_expect(g, 0));
  ir_graph *c = ir_graph_clone(g); /* a deep copy verifies too */
  ir_diag_destroy(verify_expect(c, 0));
  ir_graph_destroy(c);
  ir_graph_destroy(g);
}

/* Three unrelated problems in one graph: all three reported in one run. */
static void test_three_problems(void **state) {
  (void)state;
  ir_graph *g = valid_graph();
  g->nodes[1]->attrs[0].s[0] = 0;               /* input "y" loses its name */
  g->nodes[g->nnodes - 1]->type.dims[0] = 5;    /* rmean update: declared f32[5] */
  ir_graph_add_output(g, "ghost", g->nnodes + 3); /* output on no node */
  ir_diag *d = verify_expect(g, 3);
  const char *text = ir_diag_text(d);
  tb_assert_contains(text, "%1 = input '' i64[2]: input has an empty name");
  tb_assert_contains(text, "declared f32[5] but operands give f32[4]");
  tb_assert_contains(text, "output 3 'ghost' refers to %");
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

static void test_dominance(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("dom");
  int x = tb_input(g, "x", IR_F32, 1, 3);
  int a = tb_op(g, IR_OP_relu, x);
  int b = tb_op(g, IR_OP_exp, a);
  int c = tb_op(g, IR_OP_neg, b);
  ir_graph_add_output(g, "c", c);
  g->nodes[a]->in[0] = b; /* %1 = relu(%2): use before definition */
  ir_diag *d = verify_expect(g, 1); /* users %2, %3 are not reported again */
  tb_assert_contains(ir_diag_message(d, 0), "%1 = relu(%2: f32[3]): operand %2 of %1 is defined after its use");
  ir_diag_destroy(d);
  /* a self-reference is a dominance violation too */
  g->nodes[a]->in[0] = a;
  d = verify_expect(g, 1);
  tb_assert_contains(ir_diag_message(d, 0), "operand %1 of %1 is defined after its use");
  ir_diag_destroy(d);
  g->nodes[a]->in[0] = 99;
  d = verify_expect(g, 1);
  tb_assert_contains(ir_diag_message(d, 0), "operand %99 of %1 refers to no node");
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

static void test_wrong_declared_shape(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("shape");
  int x = tb_input(g, "x", IR_F32, 4, 2, 3, 8, 8);
  int w = tb_param(g, "w", IR_F32, 4, 16, 3, 3, 3);
  ir_node *c = tb_node(g, IR_OP_conv2d, x, w);
  tb_set_ints(c, "stride", 2, 2);
  tb_infer(g, c);
  tb_assert_type(g, c->id, "f32[2,16,3,3]");
  int r = tb_op(g, IR_OP_relu, c->id);
  ir_graph_add_output(g, "r", r);
  c->type.dims[1] = 8; /* declared f32[2,8,3,3] */
  c->type.dtype = IR_F64;
  ir_diag *d = verify_expect(g, 1); /* relu, whose operand is bad, is not reported */
  const char *m = ir_diag_message(d, 0);
  tb_assert_contains(m, "%2 = conv2d(%0: f32[2,3,8,8], %1: f32[16,3,3,3])");
  tb_assert_contains(m, "declared f64[2,8,3,3] but operands give f32[2,16,3,3]");
  ir_diag_destroy(d);
  /* a wrong type on a user of a valid node is found too */
  c->type = tb_type(IR_F32, 4, 2, 16, 3, 3);
  g->nodes[r]->type = tb_type(IR_F32, 2, 2, 16);
  d = verify_expect(g, 1);
  tb_assert_contains(ir_diag_message(d, 0), "%3 = relu(%2: f32[2,16,3,3]): declared f32[2,16] but operands give f32[2,16,3,3]");
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

static void test_inference_failure_reported_once(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("infer");
  int a = tb_input(g, "a", IR_F32, 2, 4, 3);
  int b = tb_input(g, "b", IR_F32, 1, 5);
  ir_node *s = tb_node(g, IR_OP_add, a, b); /* [4,3] + [5] does not broadcast */
  s->type = tb_type(IR_F32, 2, 4, 3);
  tb_at(g, s->id, "models/x.lua", 7, NULL);
  int r = tb_op(g, IR_OP_relu, s->id);
  g->nodes[r]->type = tb_type(IR_F32, 1, 1); /* would be a second error if checked */
  ir_graph_add_output(g, "r", r);
  ir_diag *d = verify_expect(g, 1);
  const char *m = ir_diag_message(d, 0);
  tb_assert_contains(m, "models/x.lua:7: %2 = add(%0: f32[4,3], %1: f32[5])");
  tb_assert_contains(m, "broadcast");
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

static void test_missing_attribute(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("attr");
  int x = tb_input(g, "x", IR_F32, 2, 4, 6);
  ir_node *s = tb_node(g, IR_OP_reduce_sum, x); /* axes never set */
  s->type = tb_type(IR_F32, 0);
  ir_node *sl = tb_node(g, IR_OP_slice, x);
  tb_set_int(sl, "axis", 1);
  tb_set_int(sl, "start", 0); /* end missing */
  sl->type = tb_type(IR_F32, 2, 4, 6);
  ir_graph_add_output(g, "s", s->id);
  ir_graph_add_output(g, "sl", sl->id);
  ir_diag *d = verify_expect(g, 2);
  tb_assert_contains(ir_diag_message(d, 0), "%1 = reduce_sum(%0: f32[4,6]): attribute axes (ints, no default) is missing");
  tb_assert_contains(ir_diag_message(d, 1), "%2 = slice(%0: f32[4,6]): attribute end (int, no default) is missing");
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

static void test_bad_attribute_kind(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("kind");
  int x = tb_input(g, "x", IR_F32, 2, 4, 6);
  ir_node *s = tb_node(g, IR_OP_softmax, x);
  tb_set_int(s, "axis", 1);
  tb_infer(g, s);
  ir_graph_add_output(g, "s", s->id);
  s->attrs[0].n = 3; /* an int holding 3 values */
  s->attrs[2].set = 1; /* softmax has one attribute */
  ir_diag *d = verify_expect(g, 2);
  tb_assert_contains(ir_diag_text(d), "int attribute axis holds 3 values");
  tb_assert_contains(ir_diag_text(d), "attribute slot 2 is set but softmax has 1 attributes");
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

/* matmul's trans flags index the operands' dims: only 0 and 1 are valid
 * (found by tests/fuzz/fuzz_ir_text: trans_b=2 read dims[-1]). */
static void test_matmul_trans_range(void **state) {
  (void)state;
  static const char *bad[] = {"trans_a=0 trans_b=2", "trans_a=-1 trans_b=0", "trans_a=9223372036854775807 trans_b=1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char text[512];
    snprintf(text, sizeof text,
             "graph @m {\n  %%x = input name=\"x\" : f32[2,8,16]\n  %%w = param name=\"w\" : f32[16,16]\n"
             "  %%y = matmul(%%x, %%w) %s : f32[2,8,16]\n  output \"y\" = %%y\n}\n",
             bad[i]);
    ir_diag *d = ir_diag_create();
    ir_graph *g = ir_parse(text, "m.ir", d);
    assert_non_null(g);
    assert_int_equal(ir_verify(g, d), 1);
    tb_assert_contains(ir_diag_message(d, 0), "trans_a and trans_b must be 0 or 1");
    ir_graph_destroy(g);
    ir_diag_destroy(d);
  }
}

static void test_wrong_arity(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("arity");
  int x = tb_input(g, "x", IR_F32, 1, 3);
  ir_loc none = {NULL, 0, NULL};
  int in[3] = {x, x, x};
  ir_node *a = ir_graph_append(g, IR_OP_add, in, 1, none);
  a->type = tb_type(IR_F32, 1, 3);
  ir_node *c = ir_graph_append(g, IR_OP_concat, in, 0, none);
  tb_set_int(c, "axis", 0);
  ir_node *bn = ir_graph_append(g, IR_OP_batchnorm_eval, in, 3, none);
  ir_graph_add_output(g, "a", a->id);
  ir_diag *d = verify_expect(g, 3);
  tb_assert_contains(ir_diag_message(d, 0), "%1 = add(%0: f32[3]): add takes 2 operands, has 1");
  tb_assert_contains(ir_diag_message(d, 1), "%2 = concat(): concat takes 1 or more operands, has 0");
  tb_assert_contains(ir_diag_message(d, 2), "batchnorm_eval takes 5 operands, has 3");
  (void)bn;
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

static void test_duplicate_names(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("dup");
  int x = tb_input(g, "x", IR_F32, 1, 3);
  int w1 = tb_param(g, "w", IR_F32, 1, 3);
  int w2 = tb_param(g, "w", IR_F32, 1, 3);
  int xb = tb_buffer(g, "x", IR_F32, 1, 3);
  int s = tb_op(g, IR_OP_add, x, w1);
  s = tb_op(g, IR_OP_add, s, w2);
  s = tb_op(g, IR_OP_add, s, xb);
  ir_graph_add_output(g, "s", s);
  ir_diag *d = verify_expect(g, 2);
  tb_assert_contains(ir_diag_message(d, 0), "%2 = param 'w' f32[3]: name 'w' is already used by %1 (param)");
  tb_assert_contains(ir_diag_message(d, 1), "%3 = buffer 'x' f32[3]: name 'x' is already used by %0 (input)");
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

static void test_bad_outputs(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("outs");
  int x = tb_input(g, "x", IR_F32, 1, 3);
  int r = tb_op(g, IR_OP_relu, x);
  ir_diag *d = verify_expect(g, 1);
  tb_assert_contains(ir_diag_message(d, 0), "graph 'outs' has no outputs");
  ir_diag_destroy(d);
  ir_graph_add_output(g, "y", r);
  ir_graph_add_output(g, "y", x);
  ir_graph_add_output(g, "", r);
  ir_graph_add_output(g, "z", -1);
  d = verify_expect(g, 3);
  tb_assert_contains(ir_diag_message(d, 0), "outputs 0 (%1) and 1 (%0) are both named 'y'");
  tb_assert_contains(ir_diag_message(d, 1), "output 2 (%1) has an empty name");
  tb_assert_contains(ir_diag_message(d, 2), "output 3 'z' refers to %-1, but the graph has nodes %0..%1");
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

static void test_location_prefix(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("loc");
  int x = tb_input(g, "x", IR_F32, 2, 4, 3);
  int r = tb_op(g, IR_OP_sigmoid, x);
  tb_at(g, r, "models/x.lua", 42, "layers.3.att");
  g->nodes[r]->type = tb_type(IR_F32, 2, 3, 4);
  ir_graph_add_output(g, "r", r);
  ir_diag *d = verify_expect(g, 1);
  const char *m = ir_diag_message(d, 0);
  assert_int_equal(strncmp(m, "models/x.lua:42:", 16), 0);
  tb_assert_contains(m, "%1 = sigmoid(%0: f32[4,3]): declared f32[3,4] but operands give f32[4,3] (in layers.3.att)");
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

static void test_bad_ids_and_opcodes(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("ids");
  int x = tb_input(g, "x", IR_F32, 1, 3);
  int r = tb_op(g, IR_OP_relu, x);
  int t = tb_op(g, IR_OP_tanh, r);
  ir_graph_add_output(g, "t", t);
  g->nodes[r]->id = 7;
  g->nodes[t]->op = (ir_opcode)IR_OP_COUNT;
  ir_diag *d = verify_expect(g, 2);
  tb_assert_contains(ir_diag_message(d, 0), "node at index 1 has id 7");
  tb_assert_contains(ir_diag_message(d, 1), "invalid opcode");
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

static void test_sources(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("src");
  int c1 = tb_const(g, INFINITY, IR_F32); /* inf and nan are allowed for floats */
  int c2 = tb_const(g, NAN, IR_F64);
  int c3 = tb_const(g, 3, IR_I64);
  int c4 = tb_const(g, 2.5, IR_I64);
  int p = tb_param(g, "p", IR_F32, 2, 3, -1);
  int q = tb_param(g, "q", IR_F32, 0);
  g->nodes[q]->type.rank = IR_MAX_RANK + 1;
  int s = tb_op(g, IR_OP_add, c1, c1);
  int u = tb_op(g, IR_OP_neg, c3);
  int v = tb_op(g, IR_OP_exp, c2);
  ir_node *bad = tb_node(g, IR_OP_relu, p); /* operand invalid: not type-checked */
  bad->type = tb_type(IR_F64, 0);
  ir_graph_add_output(g, "s", s);
  ir_graph_add_output(g, "u", u);
  ir_graph_add_output(g, "v", v);
  ir_graph_add_output(g, "c4", c4);
  ir_diag *d = verify_expect(g, 3);
  tb_assert_contains(ir_diag_message(d, 0), "%3 = const 2.5 i64[]: an i64 const needs an integral value, has 2.5");
  tb_assert_contains(ir_diag_message(d, 1), "%4 = param 'p' f32[3,-1]: dimension 1 is negative (-1)");
  tb_assert_contains(ir_diag_message(d, 2), "rank 9 outside 0..8");
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_graph),
      cmocka_unit_test(test_three_problems),
      cmocka_unit_test(test_dominance),
      cmocka_unit_test(test_wrong_declared_shape),
      cmocka_unit_test(test_inference_failure_reported_once),
      cmocka_unit_test(test_missing_attribute),
      cmocka_unit_test(test_bad_attribute_kind),
      cmocka_unit_test(test_matmul_trans_range),
      cmocka_unit_test(test_wrong_arity),
      cmocka_unit_test(test_duplicate_names),
      cmocka_unit_test(test_bad_outputs),
      cmocka_unit_test(test_location_prefix),
      cmocka_unit_test(test_bad_ids_and_opcodes),
      cmocka_unit_test(test_sources),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
