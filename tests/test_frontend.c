/* Front-end tests: what a spec lowers to (sources in state_dict order,
 * options, input shape, op locations and scopes, training outputs) and the
 * CIFAR ResNets' parameters against the PyTorch reference keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ir_interp.h"
#include "util_build.h"
#include "util_fe.h"

#define TINY "tests/data/specs/tiny.lua"

/* Returns the first node of kind 'op', failing if there is none. */
static const ir_node *first(const ir_graph *g, ir_opcode op) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == op) return g->nodes[i];
  fail_msg("no %s node", ir_op_info_get(op)->name);
  return NULL;
}

static int count(const ir_graph *g, ir_opcode op) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) n += g->nodes[i]->op == op;
  return n;
}

/* Sources come in state_dict order with PyTorch names and shapes. */
static void test_tiny_sources(void **state) {
  (void)state;
  ir_graph *g = tf_lower(TINY, FE_EVAL, 0, NULL);
  static const char *const want[][2] = {
      {"input", "f32[1,3,8,8]"},    {"conv.weight", "f32[16,3,3,3]"}, {"bn.weight", "f32[16]"},
      {"bn.bias", "f32[16]"},       {"bn.running_mean", "f32[16]"},   {"bn.running_var", "f32[16]"},
      {"fc.weight", "f32[10,16]"},  {"fc.bias", "f32[10]"},
  };
  int k = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op != IR_OP_input && n->op != IR_OP_param && n->op != IR_OP_buffer) continue;
    assert_true(k < 8);
    assert_string_equal(ir_node_name(n), want[k][0]);
    tb_assert_type(g, i, want[k][1]);
    k++;
  }
  assert_int_equal(k, 8);
  assert_int_equal(ir_graph_find_source(g, IR_OP_buffer, "bn.running_var")->op, IR_OP_buffer);
  assert_int_equal(tf_count_sources(g, 0), 16 * 27 + 32 + 160 + 10);
  assert_int_equal(tf_count_sources(g, 1), 32);
  tb_assert_type(g, tb_output(g, "logits"), "f32[1,10]");
  assert_int_equal(g->noutputs, 1);
  assert_int_equal(count(g, IR_OP_batchnorm_eval), 1);
  assert_int_equal(count(g, IR_OP_batchnorm_train), 0);
  ir_graph_destroy(g);
}

/* -D options convert to the default's type and change the network. */
static void test_tiny_options(void **state) {
  (void)state;
  ir_graph *g = tf_lower(TINY, FE_EVAL, 3, "classes=5", "width=8", "use_bn=false", "act=sigmoid", NULL);
  tb_assert_type(g, tb_output(g, "logits"), "f32[3,5]");
  assert_null(ir_graph_find_source(g, IR_OP_param, "bn.weight"));
  tb_assert_type(g, ir_graph_find_source(g, IR_OP_param, "conv.weight")->id, "f32[8,3,3,3]");
  assert_int_equal(count(g, IR_OP_sigmoid), 1);
  assert_int_equal(count(g, IR_OP_relu), 0);
  ir_graph_destroy(g);
}

/* --shape overrides the spec's input_shape. */
static void test_tiny_shape(void **state) {
  (void)state;
  fe_request req;
  memset(&req, 0, sizeof req);
  req.path = TINY;
  req.shape[0] = 3, req.shape[1] = 5, req.shape[2] = 7;
  req.batch = 2;
  ir_diag *d = ir_diag_create();
  ir_graph *g = NULL;
  assert_int_equal(fe_lower(&req, &g, d), ATTNC_OK);
  tb_assert_type(g, ir_graph_find_source(g, IR_OP_input, "input")->id, "f32[2,3,5,7]");
  tb_assert_type(g, first(g, IR_OP_conv2d)->id, "f32[2,16,5,7]");
  ir_graph_destroy(g);
  /* a channel count the spec does not accept is a shape error at its line */
  req.shape[0] = 4;
  assert_int_equal(fe_lower(&req, &g, d), ATTNC_EVERIFY);
  assert_null(g);
  tb_assert_contains(ir_diag_text(d), TINY ":14: ");
  tb_assert_contains(ir_diag_text(d), "input has 4 channels, weight expects 3");
  ir_diag_destroy(d);
}

/* Ops carry the spec line that called the layer and the module scope. */
static void test_tiny_locations(void **state) {
  (void)state;
  ir_graph *g = tf_lower(TINY, FE_EVAL, 0, NULL);
  const ir_node *conv = first(g, IR_OP_conv2d), *bn = first(g, IR_OP_batchnorm_eval);
  const ir_node *relu = first(g, IR_OP_relu), *mm = first(g, IR_OP_matmul), *mean = first(g, IR_OP_reduce_mean);
  assert_string_equal(conv->loc.file, TINY);
  assert_int_equal(conv->loc.line, 14);
  assert_string_equal(conv->loc.scope, "conv");
  assert_int_equal(bn->loc.line, 15);
  assert_string_equal(bn->loc.scope, "bn");
  assert_int_equal(relu->loc.line, 16);
  assert_null(relu->loc.scope);
  assert_int_equal(mm->loc.line, 17); /* a tail call: "return self.fc(...)" */
  assert_string_equal(mm->loc.scope, "fc");
  assert_int_equal(mean->loc.line, 17);
  assert_null(mean->loc.scope);
  const ir_node *w = ir_graph_find_source(g, IR_OP_param, "fc.weight");
  assert_int_equal(w->loc.line, 11); /* where the layer was made */
  assert_string_equal(w->loc.scope, "fc");
  ir_graph_destroy(g);
}

/* Training graphs: labels, loss, batch statistics and updated buffers. */
static void test_tiny_train(void **state) {
  (void)state;
  ir_graph *g = tf_lower(TINY, FE_TRAIN, 4, NULL);
  tb_assert_type(g, ir_graph_find_source(g, IR_OP_input, "labels")->id, "i64[4]");
  assert_int_equal(g->nodes[tb_output(g, "loss")]->op, IR_OP_cross_entropy);
  tb_assert_type(g, tb_output(g, "loss"), "f32[]");
  tb_assert_type(g, tb_output(g, "bn.running_mean"), "f32[16]");
  tb_assert_type(g, tb_output(g, "bn.running_var"), "f32[16]");
  assert_int_equal(g->noutputs, 4);
  assert_int_equal(count(g, IR_OP_batchnorm_train), 1);
  assert_int_equal(count(g, IR_OP_batchnorm_eval), 0);
  ir_graph_destroy(g);
}

/* Puts a tensor of type t filled with 'v' into b under 'name'. */
static void put_fill(ir_bundle *b, const char *name, ir_type t, double v) {
  ir_tensor *x = ir_tensor_create(t);
  for (int64_t i = 0; i < ir_type_numel(&t); i++) ir_tensor_set(x, i, v);
  ir_bundle_put(b, name, x);
}

/* A batchnorm called twice updates its statistics twice, in order. With a
 * constant input c = 2 the first call's batch mean is 2 and its output is
 * beta = 0.5 everywhere; both batch variances are 0. From running stats
 * (0, 1): mean = 0.9 * (0.1 * 2) + 0.1 * 0.5 = 0.23, var = 0.9 * 0.9 = 0.81. */
static void test_shared_batchnorm(void **state) {
  (void)state;
  ir_graph *g = tf_lower("tests/data/specs/shared_bn.lua", FE_TRAIN, 2, NULL);
  assert_int_equal(count(g, IR_OP_batchnorm_train), 2);
  ir_bundle *in = ir_bundle_create(), *out = ir_bundle_create();
  int64_t c2 = 2;
  ir_type vec = ir_type_make(IR_F32, 1, &c2);
  put_fill(in, "input", g->nodes[ir_graph_find_source(g, IR_OP_input, "input")->id]->type, 2.0);
  put_fill(in, "labels", ir_type_make(IR_I64, 1, &c2), 1);
  put_fill(in, "bn.weight", vec, 1.5);
  put_fill(in, "bn.bias", vec, 0.5);
  put_fill(in, "bn.running_mean", vec, 0);
  put_fill(in, "bn.running_var", vec, 1);
  ir_diag *d = ir_diag_create();
  assert_int_equal(ir_interp_run(g, in, IR_INTERP_F64, out, d), ATTNC_OK);
  const ir_tensor *m = ir_bundle_get(out, "bn.running_mean"), *v = ir_bundle_get(out, "bn.running_var");
  assert_non_null(m);
  assert_non_null(v);
  for (int i = 0; i < 2; i++) {
    assert_float_equal(ir_tensor_get(m, i), 0.23, 1e-12);
    assert_float_equal(ir_tensor_get(v, i), 0.81, 1e-12);
  }
  ir_diag_destroy(d);
  ir_bundle_destroy(out);
  ir_bundle_destroy(in);
  ir_graph_destroy(g);
}

/* CIFAR ResNets without attention: every name, shape and the parameter
 * count equal PyTorch's state_dict (reference keys). */
static void test_resnet_keys(void **state) {
  (void)state;
  static const char *const depths[] = {"20", "32", "56", "110"};
  for (int i = 0; i < 4; i++) {
    char opt[32], keys[64];
    snprintf(opt, sizeof opt, "depth=%s", depths[i]);
    snprintf(keys, sizeof keys, "keys/resnet%s_none.json", depths[i]);
    ir_graph *g = tf_lower("models/resnet_cifar.lua", FE_EVAL, 1, opt, NULL);
    int64_t params = tf_assert_keys(g, keys);
    if (i == 0) assert_int_equal(params, 272474);
    if (i == 2) assert_int_equal(params, 855770);
    tb_assert_type(g, tb_output(g, "logits"), "f32[1,10]");
    ir_graph_destroy(g);
  }
}

/* The key comparison notices a wrong model (ResNet-56 against 20's keys). */
static void test_keys_mismatch_detected(void **state) {
  (void)state;
  ir_graph *g = tf_lower("models/resnet_cifar.lua", FE_EVAL, 1, "depth=32", NULL);
  int64_t ref = 0;
  assert_int_equal(tf_keys_differences(g, "keys/resnet32_none.json", 1, &ref), 0);
  assert_true(tf_keys_differences(g, "keys/resnet20_none.json", 0, &ref) > 0);
  assert_int_equal(ref, 272474);
  assert_true(tf_keys_differences(g, "keys/resnet32_se.json", 0, NULL) > 0);
  ir_graph_destroy(g);
}

/* A depth that is not 6n+2 is an error naming the spec line. */
static void test_resnet_bad_depth(void **state) {
  (void)state;
  const char *msg;
  tf_lower_error("models/resnet_cifar.lua", &msg, "depth=21", NULL);
  tb_assert_contains(msg, "models/resnet_cifar.lua:");
  tb_assert_contains(msg, "depth must be 6n+2");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tiny_sources),     cmocka_unit_test(test_tiny_options),
      cmocka_unit_test(test_tiny_shape),       cmocka_unit_test(test_tiny_locations),
      cmocka_unit_test(test_tiny_train),       cmocka_unit_test(test_shared_batchnorm),
      cmocka_unit_test(test_resnet_keys),      cmocka_unit_test(test_keys_mismatch_detected),
      cmocka_unit_test(test_resnet_bad_depth),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
