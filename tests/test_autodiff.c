/* Gradient checks of every differentiable op: autodiff's IR, run by the
 * interpreter in float64, against central finite differences. Each case
 * builds one op on params; the loss is sum(op(...) * r) with a fixed random
 * r, so every output element carries a distinct weight. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ir_interp.h"
#include "passes.h"
#include "rt_gradcheck.h"
#include "util_build.h"
#include "util_interp.h"

typedef int (*case_fn)(ir_graph *g);

/* Param of dims given inline (rank first). */
#define P(name, rank, ...) tb_param(g, name, IR_F64, rank, __VA_ARGS__)

static int c_unary(ir_graph *g, ir_opcode op) { return tb_op(g, op, P("x", 3, 2, 3, 4)); }
static int c_neg(ir_graph *g) { return c_unary(g, IR_OP_neg); }
static int c_abs(ir_graph *g) { return c_unary(g, IR_OP_abs); }
static int c_relu(ir_graph *g) { return c_unary(g, IR_OP_relu); }
static int c_relu6(ir_graph *g) { return tb_op(g, IR_OP_relu6, tb_op(g, IR_OP_mul, P("x", 2, 4, 5), tb_const(g, 8, IR_F64))); }
static int c_sigmoid(ir_graph *g) { return c_unary(g, IR_OP_sigmoid); }
static int c_tanh(ir_graph *g) { return c_unary(g, IR_OP_tanh); }
static int c_exp(ir_graph *g) { return c_unary(g, IR_OP_exp); }
/* log, sqrt, rsqrt on x^2 + 0.5 > 0 */
static int positive(ir_graph *g) {
  int x = P("x", 2, 3, 4);
  return tb_op(g, IR_OP_add, tb_op(g, IR_OP_mul, x, x), tb_const(g, 0.5, IR_F64));
}
static int c_log(ir_graph *g) { return tb_op(g, IR_OP_log, positive(g)); }
static int c_sqrt(ir_graph *g) { return tb_op(g, IR_OP_sqrt, positive(g)); }
static int c_rsqrt(ir_graph *g) { return tb_op(g, IR_OP_rsqrt, positive(g)); }
static int c_cast(ir_graph *g) {
  ir_node *n = tb_node(g, IR_OP_cast, P("x", 2, 3, 4));
  tb_set_str(n, "to", "f32");
  ir_node *m = tb_node(g, IR_OP_cast, tb_infer(g, n));
  tb_set_str(m, "to", "f64");
  return tb_infer(g, m);
}
/* Binary ops under the broadcasting patterns that matter. */
static int bin(ir_graph *g, ir_opcode op, int pattern) {
  int a, b;
  switch (pattern) {
  case 0: a = P("a", 2, 3, 4), b = P("b", 2, 3, 4); break;          /* same shape */
  case 1: a = P("a", 3, 2, 1, 4), b = P("b", 2, 3, 1); break;       /* both broadcast */
  case 2: a = P("a", 4, 2, 3, 2, 2), b = P("b", 4, 1, 3, 1, 1); break; /* per-channel */
  default: a = P("a", 2, 3, 4), b = P("b", 0, 0); break;            /* scalar */
  }
  if (op == IR_OP_div) b = tb_op(g, IR_OP_add, tb_op(g, IR_OP_mul, b, b), tb_const(g, 0.5, IR_F64));
  return tb_op(g, op, a, b);
}
#define BIN_CASES(name, op)                                                                        \
  static int c_##name##0(ir_graph *g) { return bin(g, op, 0); }                                   \
  static int c_##name##1(ir_graph *g) { return bin(g, op, 1); }                                   \
  static int c_##name##2(ir_graph *g) { return bin(g, op, 2); }                                   \
  static int c_##name##3(ir_graph *g) { return bin(g, op, 3); }
BIN_CASES(add, IR_OP_add)
BIN_CASES(sub, IR_OP_sub)
BIN_CASES(mul, IR_OP_mul)
BIN_CASES(div, IR_OP_div)
BIN_CASES(maximum, IR_OP_maximum)
BIN_CASES(minimum, IR_OP_minimum)
static int c_where(ir_graph *g) {
  int x = P("x", 2, 3, 4), a = P("a", 2, 3, 4), b = P("b", 1, 4);
  int cond = tb_op(g, IR_OP_gt, x, tb_const(g, 0, IR_F64));
  return tb_op(g, IR_OP_where, cond, a, b);
}
static int reduce(ir_graph *g, ir_opcode op, int keep) {
  ir_node *n = tb_node(g, op, P("x", 4, 2, 3, 4, 5));
  tb_set_ints(n, "axes", 0, -1);
  tb_set_int(n, "keepdims", keep);
  return tb_infer(g, n);
}
static int c_rsum(ir_graph *g) { return reduce(g, IR_OP_reduce_sum, 0); }
static int c_rsum_keep(ir_graph *g) { return reduce(g, IR_OP_reduce_sum, 1); }
static int c_rmean(ir_graph *g) { return reduce(g, IR_OP_reduce_mean, 1); }
static int c_rmax(ir_graph *g) { return reduce(g, IR_OP_reduce_max, 0); }
static int c_rmin(ir_graph *g) { return reduce(g, IR_OP_reduce_min, 1); }
static int axis_op(ir_graph *g, ir_opcode op, int axis) {
  ir_node *n = tb_node(g, op, P("x", 3, 2, 5, 3));
  tb_set_int(n, "axis", axis);
  return tb_infer(g, n);
}
static int c_softmax(ir_graph *g) { return axis_op(g, IR_OP_softmax, 1); }
static int c_softmax_last(ir_graph *g) { return axis_op(g, IR_OP_softmax, -1); }
static int c_log_softmax(ir_graph *g) { return axis_op(g, IR_OP_log_softmax, 0); }
static int mm(ir_graph *g, int ta, int tb, int batched, int shared_b) {
  int a = batched ? (ta ? P("a", 3, 2, 4, 3) : P("a", 3, 2, 3, 4)) : (ta ? P("a", 2, 4, 3) : P("a", 2, 3, 4));
  int b = batched && !shared_b ? (tb ? P("b", 3, 2, 5, 4) : P("b", 3, 2, 4, 5)) : (tb ? P("b", 2, 5, 4) : P("b", 2, 4, 5));
  ir_node *n = tb_node(g, IR_OP_matmul, a, b);
  tb_set_int(n, "trans_a", ta);
  tb_set_int(n, "trans_b", tb);
  return tb_infer(g, n);
}
static int c_mm(ir_graph *g) { return mm(g, 0, 0, 0, 0); }
static int c_mm_ta(ir_graph *g) { return mm(g, 1, 0, 0, 0); }
static int c_mm_tb(ir_graph *g) { return mm(g, 0, 1, 0, 0); }
static int c_mm_tab(ir_graph *g) { return mm(g, 1, 1, 1, 0); }
static int c_bmm(ir_graph *g) { return mm(g, 0, 1, 1, 0); }
static int c_bmm_shared(ir_graph *g) { return mm(g, 1, 0, 1, 1); }
static int conv2d(ir_graph *g, int cin, int cout, int k, int s, int p, int dil, int groups) {
  ir_node *n = tb_node(g, IR_OP_conv2d, P("x", 4, 2, cin, 7, 6), P("w", 4, cout, cin / groups, k, k));
  tb_set_ints(n, "stride", s, s);
  tb_set_ints(n, "pad", p, p);
  tb_set_ints(n, "dilation", dil, dil);
  tb_set_int(n, "groups", groups);
  return tb_infer(g, n);
}
static int c_conv(ir_graph *g) { return conv2d(g, 3, 4, 3, 1, 1, 1, 1); }
static int c_conv_stride(ir_graph *g) { return conv2d(g, 3, 4, 3, 2, 1, 1, 1); }
static int c_conv_1x1s2(ir_graph *g) { return conv2d(g, 4, 2, 1, 2, 0, 1, 1); }
static int c_conv_dil(ir_graph *g) { return conv2d(g, 2, 3, 3, 1, 2, 2, 1); }
static int c_conv_groups(ir_graph *g) { return conv2d(g, 4, 6, 3, 1, 1, 1, 2); }
static int c_conv_dw(ir_graph *g) { return conv2d(g, 4, 4, 3, 2, 1, 1, 4); }
static int c_conv_7x7(ir_graph *g) { return conv2d(g, 2, 1, 7, 1, 3, 1, 1); }
static int c_conv1d(ir_graph *g) {
  ir_node *n = tb_node(g, IR_OP_conv1d, P("x", 3, 2, 1, 9), P("w", 3, 1, 1, 3));
  tb_set_ints(n, "pad", 1);
  return tb_infer(g, n);
}
static int c_conv1d_s2g(ir_graph *g) {
  ir_node *n = tb_node(g, IR_OP_conv1d, P("x", 3, 2, 4, 9), P("w", 3, 6, 2, 5));
  tb_set_ints(n, "pad", 2);
  tb_set_ints(n, "stride", 2);
  tb_set_int(n, "groups", 2);
  return tb_infer(g, n);
}
static int c_bn_train4(ir_graph *g) { return tb_op(g, IR_OP_batchnorm_train, P("x", 4, 3, 2, 3, 3), P("g", 1, 2), P("b", 1, 2)); }
static int c_bn_train2(ir_graph *g) { return tb_op(g, IR_OP_batchnorm_train, P("x", 2, 5, 3), P("g", 1, 3), P("b", 1, 3)); }
static int c_bn_eval(ir_graph *g) {
  int x = P("x", 4, 2, 3, 2, 2);
  int m = tb_buffer(g, "m", IR_F64, 1, 3), v = tb_buffer(g, "v", IR_F64, 1, 3);
  return tb_op(g, IR_OP_batchnorm_eval, x, P("g", 1, 3), P("b", 1, 3), m, v);
}
static int pool(ir_graph *g, ir_opcode op, int k, int s, int p) {
  ir_node *n = tb_node(g, op, P("x", 4, 2, 2, 7, 6));
  tb_set_ints(n, "kernel", k, k);
  tb_set_ints(n, "stride", s, s);
  tb_set_ints(n, "pad", p, p);
  return tb_infer(g, n);
}
static int c_maxpool(ir_graph *g) { return pool(g, IR_OP_max_pool2d, 3, 2, 1); }
static int c_maxpool2(ir_graph *g) { return pool(g, IR_OP_max_pool2d, 2, 2, 0); }
static int c_avgpool(ir_graph *g) { return pool(g, IR_OP_avg_pool2d, 3, 2, 1); }
static int c_concat(ir_graph *g) {
  ir_node *n = tb_node(g, IR_OP_concat, P("a", 3, 2, 1, 3), P("b", 3, 2, 4, 3), P("c", 3, 2, 2, 3));
  tb_set_int(n, "axis", 1);
  return tb_infer(g, n);
}
static int slice(ir_graph *g, int axis, int start, int end, int step) {
  ir_node *n = tb_node(g, IR_OP_slice, P("x", 3, 3, 7, 2));
  tb_set_int(n, "axis", axis);
  tb_set_int(n, "start", start);
  tb_set_int(n, "end", end);
  tb_set_int(n, "step", step);
  return tb_infer(g, n);
}
static int c_slice(ir_graph *g) { return slice(g, 1, 2, 6, 1); }
static int c_slice_step(ir_graph *g) { return slice(g, -2, 1, 7, 3); }
static int c_reshape(ir_graph *g) {
  ir_node *n = tb_node(g, IR_OP_reshape, P("x", 3, 2, 3, 4));
  tb_set_ints(n, "shape", 6, 4);
  return tb_infer(g, n);
}
static int c_transpose(ir_graph *g) {
  ir_node *n = tb_node(g, IR_OP_transpose, P("x", 3, 2, 3, 4));
  tb_set_ints(n, "perm", 2, 0, 1);
  return tb_infer(g, n);
}
static int c_broadcast(ir_graph *g) {
  ir_node *n = tb_node(g, IR_OP_broadcast_to, P("x", 2, 3, 1));
  tb_set_ints(n, "shape", 2, 3, 4);
  return tb_infer(g, n);
}
static int c_pad(ir_graph *g) {
  ir_node *n = tb_node(g, IR_OP_pad, P("x", 3, 2, 3, 4));
  tb_set_ints(n, "pads", 0, 0, 1, 2, 3, 0);
  tb_set_float(n, "value", 0.5);
  return tb_infer(g, n);
}
static int c_cross_entropy(ir_graph *g) {
  int l = P("l", 2, 4, 5), y = tb_input(g, "labels", IR_I64, 1, 4);
  return tb_op(g, IR_OP_cross_entropy, l, y);
}
/* The HAM mask: topk_mask carries no gradient but gates one. */
static int c_topk_gate(ir_graph *g) {
  int x = P("x", 2, 3, 6);
  ir_node *n = tb_node(g, IR_OP_topk_mask, x);
  tb_set_int(n, "axis", 1);
  tb_set_int(n, "k", 4);
  return tb_op(g, IR_OP_mul, x, tb_infer(g, n));
}
/* A small attention block: x * sigmoid(conv1d(mean_hw x)) + fan-out. */
static int c_eca_chain(ir_graph *g) {
  int x = P("x", 4, 2, 5, 3, 3), w = P("w", 3, 1, 1, 3);
  ir_node *m = tb_node(g, IR_OP_reduce_mean, x);
  tb_set_ints(m, "axes", 2, 3);
  ir_node *r = tb_node(g, IR_OP_reshape, tb_infer(g, m));
  tb_set_ints(r, "shape", 2, 1, 5);
  ir_node *c = tb_node(g, IR_OP_conv1d, tb_infer(g, r), w);
  tb_set_ints(c, "pad", 1);
  ir_node *r2 = tb_node(g, IR_OP_reshape, tb_op(g, IR_OP_sigmoid, tb_infer(g, c)));
  tb_set_ints(r2, "shape", 2, 5, 1, 1);
  return tb_op(g, IR_OP_add, tb_op(g, IR_OP_mul, x, tb_infer(g, r2)), x);
}

typedef struct {
  const char *name;
  case_fn build;
} grad_case;

static const grad_case cases[] = {
#define C(f) {#f, c_##f}
    C(neg), C(abs), C(relu), C(relu6), C(sigmoid), C(tanh), C(exp), C(log), C(sqrt), C(rsqrt), C(cast),
    C(add0), C(add1), C(add2), C(add3), C(sub0), C(sub1), C(sub2), C(sub3), C(mul0), C(mul1), C(mul2), C(mul3),
    C(div0), C(div1), C(div2), C(div3), C(maximum0), C(maximum1), C(maximum2), C(maximum3), C(minimum0),
    C(minimum1), C(minimum2), C(minimum3), C(where), C(rsum), C(rsum_keep), C(rmean), C(rmax), C(rmin),
    C(softmax), C(softmax_last), C(log_softmax), C(mm), C(mm_ta), C(mm_tb), C(mm_tab), C(bmm), C(bmm_shared),
    C(conv), C(conv_stride), C(conv_1x1s2), C(conv_dil), C(conv_groups), C(conv_dw), C(conv_7x7), C(conv1d),
    C(conv1d_s2g), C(bn_train4), C(bn_train2), C(bn_eval), C(maxpool), C(maxpool2), C(avgpool), C(concat),
    C(slice), C(slice_step), C(reshape), C(transpose), C(broadcast), C(pad), C(cross_entropy), C(topk_gate),
    C(eca_chain),
#undef C
};

/* Builds case 'c' with loss = sum(y * r) (or y itself if scalar), feeds
 * random values and returns the gradcheck's worst relative error. */
static double check_case(const grad_case *c, unsigned seed) {
  ir_graph *g = ir_graph_create(c->name);
  int y = c->build(g);
  int loss = y;
  if (g->nodes[y]->type.rank > 0) {
    ir_type rt = g->nodes[y]->type;
    int r = ir_graph_source(g, IR_OP_input, "r", 0, rt, (ir_loc){0})->id;
    ir_node *s = tb_node(g, IR_OP_reduce_sum, tb_op(g, IR_OP_mul, y, r));
    int64_t axes[IR_MAX_RANK];
    for (int i = 0; i < rt.rank; i++) axes[i] = i;
    tb_set_ints_n(s, "axes", axes, rt.rank);
    loss = tb_infer(g, s);
  }
  ir_graph_add_output(g, "loss", loss);
  ir_bundle *vals = ir_bundle_create();
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (!ir_node_name(n)) continue;
    int64_t cnt = ir_type_numel(&n->type);
    double *v = malloc((size_t)(cnt + 1) * sizeof *v);
    ti_fill(v, cnt, seed + (unsigned)i * 7919u);
    if (n->type.dtype == IR_I64)
      for (int64_t k = 0; k < cnt; k++) v[k] = (double)((k * 3 + seed) % 5);
    if (!strcmp(ir_node_name(n), "v") || !strcmp(ir_node_name(n), "g"))
      for (int64_t k = 0; k < cnt; k++) v[k] = 0.5 + fabs(v[k]);
    ti_feed(vals, g, i, v);
    free(v);
  }
  rt_gradcheck_opts o = {0, 1e-6, 0, 0, 1e-12};
  rt_gradcheck_report rep;
  ir_diag *d = ir_diag_create();
  attnc_status st = rt_gradcheck(g, "loss", vals, &o, &rep, d);
  if (st != ATTNC_OK) fail_msg("%s: %s", c->name, ir_diag_text(d));
  double worst = rep.worst;
  assert_true(rep.count > 0);
  for (int i = 0; i < rep.count; i++)
    if (rep.entries[i].rel_err > 1e-6)
      print_message("%s: grad.%s rel err %.3g (fd norm %.3g)\n", c->name, rep.entries[i].name,
                    rep.entries[i].rel_err, rep.entries[i].fd_norm);
  rt_gradcheck_report_free(&rep);
  ir_diag_destroy(d);
  ir_bundle_destroy(vals);
  ir_graph_destroy(g);
  return worst;
}

static void test_every_case(void **state) {
  (void)state;
  int bad = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (check_case(&cases[i], 11) > 1e-6) bad++;
  assert_int_equal(bad, 0);
}

/* Every op with IR_OPF_DIFF has a rule, and a case here uses it. */
static void test_rule_coverage(void **state) {
  (void)state;
  char used[IR_OP_COUNT] = {0};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ir_graph *g = ir_graph_create("cov");
    cases[i].build(g);
    for (int k = 0; k < g->nnodes; k++) used[g->nodes[k]->op] = 1;
    ir_graph_destroy(g);
  }
  for (int op = 0; op < IR_OP_COUNT; op++) {
    const ir_op_info *info = ir_op_info_get((ir_opcode)op);
    if (!(info->flags & IR_OPF_DIFF)) continue;
    if (!pass_autodiff_has_rule((ir_opcode)op)) fail_msg("op %s has no gradient rule", info->name);
    if (!used[op]) fail_msg("op %s has no gradient check case", info->name);
  }
}

/* A deliberately wrong gradient is caught: perturbing the analytic result
 * of one rule (here by scaling the loss seed) makes the check fail. */
static void test_check_is_strict(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("strict");
  int x = tb_param(g, "x", IR_F64, 2, 3, 4);
  int y = tb_op(g, IR_OP_sigmoid, x);
  ir_node *s = tb_node(g, IR_OP_reduce_sum, y);
  tb_set_ints(s, "axes", 0, 1);
  int loss = tb_infer(g, s);
  ir_graph_add_output(g, "loss", loss);
  pass_autodiff(g, "loss", 0, NULL);
  /* Replace dy*y*(1-y) by dy*y: the kind of slip a rule can make. */
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == IR_OP_sigmoid_grad) g->nodes[i]->op = IR_OP_mul;
  ir_bundle *vals = ir_bundle_create();
  double v[12];
  ti_fill(v, 12, 5);
  ti_feed(vals, g, x, v);
  ir_bundle *res = ti_run(g, vals, IR_INTERP_F64);
  const ir_tensor *gr = ir_bundle_get(res, "grad.x");
  double err = 0;
  for (int i = 0; i < 12; i++) {
    double sg = 1 / (1 + exp(-v[i]));
    err += fabs(ir_tensor_get(gr, i) - sg * (1 - sg));
  }
  assert_true(err > 0.1);
  ir_bundle_destroy(res);
  ir_bundle_destroy(vals);
  ir_graph_destroy(g);
}

/* Fan-out: a value used three times gets the sum of three adjoints. */
static void test_fanout_sums(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("fan");
  int x = tb_param(g, "x", IR_F64, 1, 3);
  int y = tb_op(g, IR_OP_add, tb_op(g, IR_OP_mul, x, x), x);
  ir_node *s = tb_node(g, IR_OP_reduce_sum, y);
  tb_set_ints(s, "axes", 0);
  ir_graph_add_output(g, "loss", tb_infer(g, s));
  assert_int_equal(pass_autodiff(g, "loss", 0, NULL), ATTNC_OK);
  ir_diag *d = ir_diag_create();
  assert_int_equal(ir_verify(g, d), 0);
  ir_diag_destroy(d);
  ir_bundle *vals = ir_bundle_create();
  ti_feed(vals, g, x, (double[]){1, -2, 0.5});
  ir_bundle *res = ti_run(g, vals, IR_INTERP_F64);
  ti_assert_output(res, "grad.x", "f64[3]", (double[]){3, -3, 2}, 1e-12);
  ir_bundle_destroy(res);
  ir_bundle_destroy(vals);
  ir_graph_destroy(g);
}

/* The ReLU gradients read the ReLU's output (kept for the backward anyway),
 * so the pre-activation is not kept alive for them; the values are those
 * of the input-based rule, including at x = 0 and at relu6's x = 6. */
static void test_relu_grad_reads_output(void **state) {
  (void)state;
  for (int six = 0; six < 2; six++) {
    ir_graph *g = ir_graph_create("relu");
    int x = tb_param(g, "x", IR_F64, 1, 6);
    int y = tb_op(g, six ? IR_OP_relu6 : IR_OP_relu, x);
    ir_node *s = tb_node(g, IR_OP_reduce_sum, tb_op(g, IR_OP_mul, y, tb_const(g, 2, IR_F64)));
    tb_set_ints(s, "axes", 0);
    ir_graph_add_output(g, "loss", tb_infer(g, s));
    assert_int_equal(pass_autodiff(g, "loss", 0, NULL), ATTNC_OK);
    int found = 0;
    for (int i = 0; i < g->nnodes; i++)
      if (g->nodes[i]->op == (six ? IR_OP_relu6_grad : IR_OP_relu_grad)) {
        assert_int_equal(g->nodes[i]->in[0], y);
        found++;
      }
    assert_int_equal(found, 1);
    ir_bundle *vals = ir_bundle_create();
    ti_feed(vals, g, x, (double[]){-1, 0, 0.5, 3, 6, 7});
    ir_bundle *res = ti_run(g, vals, IR_INTERP_F64);
    const double want[2][6] = {{0, 0, 2, 2, 2, 2}, {0, 0, 2, 2, 0, 0}};
    ti_assert_output(res, "grad.x", "f64[6]", want[six], 0);
    ir_bundle_destroy(res);
    ir_bundle_destroy(vals);
    ir_graph_destroy(g);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_case),
      cmocka_unit_test(test_rule_coverage),
      cmocka_unit_test(test_check_is_strict),
      cmocka_unit_test(test_fanout_sums),
      cmocka_unit_test(test_relu_grad_reads_output),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
