/* Tests of the graph passes: the graph before and after simplification
 * (which nodes went, which stayed), values unchanged by it, and the SGD
 * update against torch.optim.SGD's formulas computed by hand. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ir_diag.h"
#include "passes.h"
#include "util_build.h"
#include "util_interp.h"

/* Counts the nodes of 'g' with opcode 'op'. */
static int count_op(const ir_graph *g, ir_opcode op) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) n += g->nodes[i]->op == op;
  return n;
}

/* Output 'name' of 'b' as a freshly allocated array of doubles. */
static double *values_of(const ir_bundle *b, const char *name, int64_t *n) {
  const ir_tensor *t = ir_bundle_get(b, name);
  assert_non_null(t);
  *n = ir_type_numel(&t->type);
  double *v = malloc((size_t)*n * sizeof *v);
  for (int64_t i = 0; i < *n; i++) v[i] = ir_tensor_get(t, i);
  return v;
}

/* Parses IR 'text' (verified). */
static ir_graph *parse(const char *text) {
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, "<test>", d);
  if (!g || ir_verify(g, d)) fail_msg("graph: %s", ir_diag_text(d));
  ir_diag_destroy(d);
  return g;
}

/* Fails unless 'g' passes the verifier (its diagnostics in the message). */
static void assert_verifies(const ir_graph *g) {
  ir_diag *d = ir_diag_create();
  if (ir_verify(g, d) != 0) fail_msg("%s", ir_diag_text(d));
  ir_diag_destroy(d);
}

/* Runs 'g' on seeded values for every input; returns the outputs. */
static ir_bundle *run_seeded(const ir_graph *g) {
  ir_bundle *in = ir_bundle_create();
  for (int i = 0; i < g->nnodes; i++) {
    if (g->nodes[i]->op != IR_OP_input) continue;
    int64_t n = ir_type_numel(&g->nodes[i]->type);
    double *v = malloc((size_t)n * sizeof *v);
    ti_fill(v, n, 7 + (unsigned)i);
    ti_feed(in, g, i, v);
    free(v);
  }
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ir_bundle_destroy(in);
  return out;
}

/* Runs 'g' with every input, parameter and buffer set to values seeded by
 * its name (so two graphs with the same sources in any order get the same
 * values; a learning rate of 0.05); returns the outputs. */
static ir_bundle *run_named(const ir_graph *g) {
  ir_bundle *in = ir_bundle_create();
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    const char *name = ir_node_name(n);
    if ((n->op != IR_OP_input && n->op != IR_OP_param && n->op != IR_OP_buffer) || !name) continue;
    int64_t k = ir_type_numel(&n->type);
    double *v = malloc((size_t)k * sizeof *v);
    unsigned seed = 7;
    for (const char *c = name; *c; c++) seed = seed * 31 + (unsigned char)*c;
    ti_fill(v, k, seed);
    if (!strcmp(name, "lr")) v[0] = 0.05;
    ti_feed(in, g, i, v);
    free(v);
  }
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ir_bundle_destroy(in);
  return out;
}

/* Every output of 'b' equals that of 'a' (to 1e-12 relative). */
static void same_outputs(const ir_bundle *a, const ir_bundle *b) {
  for (int o = 0; o < a->count; o++) {
    int64_t n;
    double *want = values_of(a, a->names[o], &n);
    const ir_tensor *t = ir_bundle_get(b, a->names[o]);
    assert_non_null(t);
    assert_int_equal(ir_type_numel(&t->type), n);
    for (int64_t i = 0; i < n; i++) assert_true(fabs(ir_tensor_get(t, i) - want[i]) <= 1e-12 * (1 + fabs(want[i])));
    free(want);
  }
}

/* Position of the node with opcode 'op' and type numel 'numel' (the
 * first), or -1. */
static int find_op(const ir_graph *g, ir_opcode op, int64_t numel) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == op && ir_type_numel(&g->nodes[i]->type) == numel) return i;
  return -1;
}

/* A division by a smaller divisor (per-row counts, a constant) becomes a
 * multiply by its reciprocal, taken once per divisor element; a division
 * by a full-size divisor stays. Values agree to rounding. */
static void test_simplify_reciprocal(void **state) {
  (void)state;
  ir_graph *g = parse("graph @r {\n"
                      "  %x = input name=\"x\" : f64[2,3,4]\n"
                      "  %n = input name=\"n\" : f64[2,1,4]\n"
                      "  %w = input name=\"w\" : f64[2,3,4]\n"
                      "  %c = const value=4 : f64[]\n"
                      "  %a = div(%x, %n) : f64[2,3,4]\n"
                      "  %b = div(%x, %c) : f64[2,3,4]\n"
                      "  %d = div(%x, %w) : f64[2,3,4]\n"
                      "  output \"a\" = %a\n  output \"b\" = %b\n  output \"d\" = %d\n}\n");
  ir_bundle *before = run_seeded(g);
  assert_int_equal(pass_simplify(g, NULL, NULL), ATTNC_OK);
  const ir_node *a = g->nodes[g->outputs[0].node], *b = g->nodes[g->outputs[1].node];
  const ir_node *d = g->nodes[g->outputs[2].node];
  assert_int_equal(a->op, IR_OP_mul);
  const ir_node *r = g->nodes[a->in[1]]; /* 1/n: [2,1,4] */
  assert_int_equal(r->op, IR_OP_div);
  assert_int_equal(ir_type_numel(&r->type), 8);
  assert_int_equal(g->nodes[r->in[0]]->op, IR_OP_const);
  assert_true(ir_get_float(g->nodes[r->in[0]], "value") == 1.0);
  assert_int_equal(b->op, IR_OP_mul);
  assert_int_equal(g->nodes[b->in[1]]->op, IR_OP_const);
  assert_true(ir_get_float(g->nodes[b->in[1]], "value") == 0.25);
  assert_int_equal(d->op, IR_OP_div);
  ir_bundle *after = run_seeded(g);
  same_outputs(before, after);
  ir_bundle_destroy(before);
  ir_bundle_destroy(after);
  ir_graph_destroy(g);
}

/* Simplification reads a broadcast_to operand of an elementwise op
 * directly when the other operands still give the op's shape, keeps it
 * when they would not (the result would shrink) and for unary ops, and
 * leaves every value unchanged. */
static void test_simplify_broadcast_operands(void **state) {
  (void)state;
  ir_graph *g = parse("graph @b {\n"
                      "  %x = input name=\"x\" : f64[2,3,4]\n"
                      "  %s = input name=\"s\" : f64[2,3,1]\n"
                      "  %u = input name=\"u\" : f64[2,3,1]\n"
                      "  %b = broadcast_to(%s) shape=[2,3,4] : f64[2,3,4]\n"
                      "  %y = mul(%x, %b) : f64[2,3,4]\n"
                      "  %z = eq(%b, %x) : f64[2,3,4]\n"
                      "  %c = broadcast_to(%u) shape=[2,3,4] : f64[2,3,4]\n"
                      "  %k = add(%c, %u) : f64[2,3,4]\n"
                      "  %r = relu(%c) : f64[2,3,4]\n"
                      "  output \"y\" = %y\n  output \"z\" = %z\n  output \"k\" = %k\n  output \"r\" = %r\n}\n");
  ir_bundle *before = run_seeded(g);
  pass_simplify_stats st;
  assert_int_equal(pass_simplify(g, &st, NULL), ATTNC_OK);
  assert_int_equal(count_op(g, IR_OP_broadcast_to), 1); /* %b went; %c stays for add and relu */
  int y = g->outputs[0].node, z = g->outputs[1].node, k = g->outputs[2].node;
  assert_int_equal(g->nodes[g->nodes[y]->in[1]]->op, IR_OP_input);
  assert_int_equal(g->nodes[g->nodes[z]->in[0]]->op, IR_OP_input);
  assert_int_equal(g->nodes[g->nodes[k]->in[0]]->op, IR_OP_broadcast_to);
  assert_true(st.folded >= 2);
  ir_bundle *after = run_seeded(g);
  same_outputs(before, after);
  ir_bundle_destroy(before);
  ir_bundle_destroy(after);
  ir_graph_destroy(g);
}

/* Constants go up to the end of the sources, in their order, whatever
 * else is between: a fusion group numbers its inputs in graph order, so
 * where autodiff emitted a constant (right above its first user) decided
 * whether two blocks' groups were alike. Values unchanged. */
static void test_schedule_constants_first(void **state) {
  (void)state;
  ir_graph *g = parse("graph @c {\n"
                      "  %x = input name=\"x\" : f64[2,8,4,4]\n"
                      "  %g = input name=\"g\" : f64[2,8]\n"
                      "  %a = mul(%x, %x) : f64[2,8,4,4]\n"
                      "  %k = const value=0.0625 : f64[]\n"
                      "  %h = mul(%g, %k) : f64[2,8]\n"
                      "  %hr = reshape(%h) shape=[2,8,1,1] : f64[2,8,1,1]\n"
                      "  %j = const value=3 : f64[]\n"
                      "  %y = add(%a, %hr) : f64[2,8,4,4]\n"
                      "  %z = mul(%y, %j) : f64[2,8,4,4]\n"
                      "  output \"z\" = %z\n}\n");
  ir_bundle *before = run_seeded(g);
  int moved = 0;
  assert_int_equal(pass_schedule(g, &moved, NULL), ATTNC_OK);
  assert_int_equal(moved, 2);
  assert_verifies(g);
  assert_int_equal(g->nodes[2]->op, IR_OP_const);
  assert_int_equal(g->nodes[3]->op, IR_OP_const);
  assert_int_equal(g->nodes[4]->op, IR_OP_mul);
  ir_bundle *after = run_seeded(g);
  same_outputs(before, after);
  ir_bundle_destroy(before);
  ir_bundle_destroy(after);
  ir_graph_destroy(g);
}

/* A small batch reduction (the sum over the batch of a per-sample gate, as
 * a gate parameter's gradient) that autodiff emits between the gate and
 * its use by the feature map sinks below the batch-local nodes after it,
 * stopping above a node that is neither batch-local nor small (a matmul of
 * shared weights, 6400 values); fusion then has the gate and both passes over the map in
 * one group where the reduction's read of the gate had split it in two.
 * Values unchanged. */
static void test_schedule_sinks_batch_reductions(void **state) {
  (void)state;
  ir_graph *g = parse("graph @k {\n"
                      "  %x = input name=\"x\" : f64[2,8,4,4]\n"
                      "  %g = input name=\"g\" : f64[2,8]\n"
                      "  %w = input name=\"w\" : f64[80,80]\n"
                      "  %gr = reshape(%g) shape=[2,8,1,1] : f64[2,8,1,1]\n"
                      "  %a = mul(%x, %gr) : f64[2,8,4,4]\n"
                      "  %s = reduce_sum(%a) axes=[2,3] keepdims=0 : f64[2,8]\n"
                      "  %t = sigmoid(%s) : f64[2,8]\n"
                      "  %b = reduce_sum(%t) axes=[0,1] keepdims=0 : f64[]\n"
                      "  %tr = reshape(%t) shape=[2,8,1,1] : f64[2,8,1,1]\n"
                      "  %c = mul(%x, %tr) : f64[2,8,4,4]\n"
                      "  %e = add(%c, %a) : f64[2,8,4,4]\n"
                      "  %m = matmul(%w, %w) : f64[80,80]\n"
                      "  %f = mul(%m, %b) : f64[80,80]\n"
                      "  output \"e\" = %e\n  output \"f\" = %f\n}\n");
  ir_bundle *before = run_seeded(g);
  pass_fusion f0;
  assert_int_equal(pass_fuse(g, &f0, NULL), ATTNC_OK);
  int a0 = find_op(g, IR_OP_mul, 256), c0 = find_op(g, IR_OP_add, 256) - 1;
  assert_true(f0.group_of[a0] >= 0 && f0.group_of[a0] != f0.group_of[c0]); /* split by %b */
  int moved = 0;
  assert_int_equal(pass_schedule(g, &moved, NULL), ATTNC_OK);
  assert_true(moved >= 1);
  assert_verifies(g);
  int b = find_op(g, IR_OP_reduce_sum, 1), e = find_op(g, IR_OP_add, 256), m = find_op(g, IR_OP_matmul, 6400);
  assert_true(e < b && b < m); /* below the batch-local run, above the matmul */
  ir_bundle *after = run_seeded(g);
  same_outputs(before, after);
  pass_fusion f1;
  assert_int_equal(pass_fuse(g, &f1, NULL), ATTNC_OK);
  int a = find_op(g, IR_OP_mul, 256), grp = f1.group_of[a];
  assert_true(grp >= 0);
  assert_int_equal(f1.groups[grp].kind, PASS_FUSE_SAMPLE);
  assert_int_equal(f1.group_of[e], grp);
  assert_int_equal(f1.group_of[find_op(g, IR_OP_sigmoid, 16)], grp);
  pass_fusion_free(&f0);
  pass_fusion_free(&f1);
  ir_bundle_destroy(before);
  ir_bundle_destroy(after);
  ir_graph_destroy(g);
}

/* A sum over the batch and the map of a feature map (a scalar
 * parameter's gradient) and a per-channel mean over N,H,W become a
 * per-sample reduction and a sum (mean) over the batch of its results; a
 * sum of a small [N,C] operand and a sum over the batch alone stay whole.
 * Fusion then has the per-sample sums in the group that makes the map.
 * Values unchanged. */
static void test_batch_sums(void **state) {
  (void)state;
  ir_graph *g = parse("graph @s {\n"
                      "  %x = input name=\"x\" : f64[3,8,24,24]\n"
                      "  %y = input name=\"y\" : f64[3,8]\n"
                      "  %a = relu(%x) : f64[3,8,24,24]\n"
                      "  %s = reduce_sum(%a) axes=[0,1,2,3] keepdims=0 : f64[]\n"
                      "  %m = reduce_mean(%a) axes=[3,0,-2] keepdims=1 : f64[1,8,1,1]\n"
                      "  %t = reduce_sum(%y) axes=[0,1] keepdims=0 : f64[]\n"
                      "  %b = reduce_sum(%a) axes=[0] keepdims=0 : f64[8,24,24]\n"
                      "  output \"s\" = %s\n  output \"m\" = %m\n  output \"t\" = %t\n  output \"b\" = %b\n}\n");
  ir_bundle *before = run_seeded(g);
  int count = 0;
  assert_int_equal(pass_batch_sums(g, &count, NULL), ATTNC_OK);
  assert_int_equal(count, 2);
  assert_verifies(g);
  int s = tb_output(g, "s"), m = tb_output(g, "m");
  const ir_node *ps = g->nodes[g->nodes[s]->in[0]], *pm = g->nodes[g->nodes[m]->in[0]];
  assert_int_equal(ps->op, IR_OP_reduce_sum);
  assert_int_equal(pm->op, IR_OP_reduce_mean);
  int n;
  const int64_t *ax = ir_get_ints(g->nodes[s], "axes", &n);
  assert_true(n == 1 && ax[0] == 0);
  ax = ir_get_ints(ps, "axes", &n); /* per sample: the batch axis kept */
  assert_true(n == 3 && ax[0] == 1 && ax[1] == 2 && ax[2] == 3);
  assert_true(ps->type.rank == 1 && ps->type.dims[0] == 3);
  ax = ir_get_ints(pm, "axes", &n);
  assert_true(n == 2 && ax[0] == 3 && ax[1] == 2);
  assert_true(pm->type.rank == 4 && pm->type.dims[0] == 3 && pm->type.dims[1] == 8 && pm->type.dims[3] == 1);
  assert_int_equal(g->nodes[g->nodes[tb_output(g, "t")]->in[0]]->op, IR_OP_input);
  assert_int_equal(g->nodes[g->nodes[tb_output(g, "b")]->in[0]]->op, IR_OP_relu);
  ir_bundle *after = run_seeded(g);
  same_outputs(before, after);
  assert_int_equal(pass_schedule(g, NULL, NULL), ATTNC_OK); /* as the pipeline: the batch sums sink */
  int psum = g->nodes[tb_output(g, "s")]->in[0], pmean = g->nodes[tb_output(g, "m")]->in[0];
  pass_fusion f;
  assert_int_equal(pass_fuse(g, &f, NULL), ATTNC_OK);
  int grp = f.group_of[find_op(g, IR_OP_relu, 3 * 8 * 24 * 24)];
  assert_true(grp >= 0 && f.group_of[psum] == grp && f.group_of[pmean] == grp);
  pass_fusion_free(&f);
  ir_bundle_destroy(before);
  ir_bundle_destroy(after);
  ir_graph_destroy(g);
}

/* A parameter-sized node (s, of no batched operand) right after a small
 * batch reduction (bp) that reads a member of a sample group kept the
 * reduction above the batch-local nodes after it (it stops above its
 * first user), and the second pass (b) cannot hoist above them past its
 * small operand k, so the group ended there; now s and bp sink below the
 * pass and the group holds both passes. Values unchanged. */
static void test_schedule_sinks_small_nodes(void **state) {
  (void)state;
  ir_graph *g = parse("graph @s {\n"
                      "  %x = input name=\"x\" : f64[2,8,24,24]\n"
                      "  %w = input name=\"w\" : f64[1]\n"
                      "  %a = relu(%x) : f64[2,8,24,24]\n"
                      "  %r1 = reduce_sum(%a) axes=[2,3] keepdims=0 : f64[2,8]\n"
                      "  %bp = reduce_sum(%r1) axes=[0,1] keepdims=0 : f64[]\n"
                      "  %s = mul(%bp, %w) : f64[1]\n"
                      "  %k = reshape(%w) shape=[1,1,1,1] : f64[1,1,1,1]\n"
                      "  %b = mul(%a, %k) : f64[2,8,24,24]\n"
                      "  %r2 = reduce_sum(%b) axes=[2,3] keepdims=0 : f64[2,8]\n"
                      "  output \"s\" = %s\n  output \"r2\" = %r2\n}\n");
  ir_bundle *before = run_seeded(g);
  pass_fusion f0;
  assert_int_equal(pass_fuse(g, &f0, NULL), ATTNC_OK);
  int a0 = find_op(g, IR_OP_relu, 9216), b0 = find_op(g, IR_OP_mul, 9216);
  assert_true(f0.group_of[a0] != f0.group_of[b0]); /* split by bp */
  assert_int_equal(pass_schedule(g, NULL, NULL), ATTNC_OK);
  assert_verifies(g);
  int r2 = tb_output(g, "r2"), bp = find_op(g, IR_OP_reduce_sum, 1), sm = tb_output(g, "s");
  assert_true(r2 < bp && bp < sm); /* both below the second pass */
  ir_bundle *after = run_seeded(g);
  same_outputs(before, after);
  pass_fusion f1;
  assert_int_equal(pass_fuse(g, &f1, NULL), ATTNC_OK);
  int grp = f1.group_of[find_op(g, IR_OP_relu, 9216)];
  assert_true(grp >= 0);
  assert_int_equal(f1.group_of[find_op(g, IR_OP_mul, 9216)], grp);
  assert_int_equal(f1.group_of[r2], grp);
  pass_fusion_free(&f0);
  pass_fusion_free(&f1);
  ir_bundle_destroy(before);
  ir_bundle_destroy(after);
  ir_graph_destroy(g);
}

/* A batch norm's backward after the split: dy*A (t) and x - mean (xm),
 * which its dx reads after the batch sum of the per-sample sums, sit
 * before that sum, so they joined the sample group that makes the sums
 * (which stored them for dx). They settle next to their users, below the
 * sum, and that group stores dy only. Values unchanged. */
static void test_schedule_settles_maps(void **state) {
  (void)state;
  ir_graph *g = parse("graph @b {\n"
                      "  %x = input name=\"x\" : f64[2,8,24,24]\n"
                      "  %g = input name=\"g\" : f64[2,8,24,24]\n"
                      "  %a = input name=\"a\" : f64[8,1,1]\n"
                      "  %m = input name=\"m\" : f64[8,1,1]\n"
                      "  %nm = input name=\"nm\" : f64[8,1,1]\n"
                      "  %dy = relu(%g) : f64[2,8,24,24]\n"
                      "  %xc = add(%x, %nm) : f64[2,8,24,24]\n"
                      "  %p = mul(%dy, %xc) : f64[2,8,24,24]\n"
                      "  %s1 = reduce_sum(%p) axes=[2,3] keepdims=0 : f64[2,8]\n"
                      "  %s2 = reduce_sum(%dy) axes=[2,3] keepdims=0 : f64[2,8]\n"
                      "  %t = mul(%dy, %a) : f64[2,8,24,24]\n"
                      "  %xm = sub(%x, %m) : f64[2,8,24,24]\n"
                      "  %q1 = reshape(%s1) shape=[2,1,8] : f64[2,1,8]\n"
                      "  %q2 = reshape(%s2) shape=[2,1,8] : f64[2,1,8]\n"
                      "  %c = concat(%q1, %q2) axis=1 : f64[2,2,8]\n"
                      "  %bs = reduce_sum(%c) axes=[0] keepdims=0 : f64[2,8]\n"
                      "  %sl = slice(%bs) axis=0 start=0 end=1 step=1 : f64[1,8]\n"
                      "  %r = reshape(%sl) shape=[8,1,1] : f64[8,1,1]\n"
                      "  %u = mul(%xm, %r) : f64[2,8,24,24]\n"
                      "  %dx = add(%t, %u) : f64[2,8,24,24]\n"
                      "  output \"dx\" = %dx\n  output \"dy\" = %dy\n}\n");
  ir_bundle *before = run_seeded(g);
  pass_fusion f0;
  assert_int_equal(pass_fuse(g, &f0, NULL), ATTNC_OK);
  int s1 = find_op(g, IR_OP_reduce_sum, 16), t = g->nodes[tb_output(g, "dx")]->in[0];
  assert_true(f0.group_of[s1] >= 0 && f0.group_of[t] == f0.group_of[s1]); /* stored by the sums' group */
  assert_int_equal(pass_schedule(g, NULL, NULL), ATTNC_OK);
  assert_verifies(g);
  int bs = find_op(g, IR_OP_reduce_sum, 32), xm = find_op(g, IR_OP_sub, 9216), dx = tb_output(g, "dx");
  int u = g->nodes[dx]->in[1];
  t = g->nodes[dx]->in[0];
  assert_true(bs < xm && xm == u - 1); /* next to their users */
  assert_true(bs < t && t < dx);
  ir_bundle *after = run_seeded(g);
  same_outputs(before, after);
  pass_fusion f1;
  assert_int_equal(pass_fuse(g, &f1, NULL), ATTNC_OK);
  int grp = f1.group_of[find_op(g, IR_OP_reduce_sum, 16)];
  assert_true(grp >= 0 && f1.group_of[t] != grp && f1.group_of[xm] != grp);
  const pass_fuse_group *gr = &f1.groups[grp];
  for (int i = 0; i < gr->nouts; i++) /* dy and the [N,2,C] sums only */
    assert_true(gr->outs[i] == tb_output(g, "dy") || ir_type_numel(&g->nodes[gr->outs[i]]->type) == 32);
  pass_fusion_free(&f0);
  pass_fusion_free(&f1);
  ir_bundle_destroy(before);
  ir_bundle_destroy(after);
  ir_graph_destroy(g);
}

/* HAM's forward: the second masked pooling (b, r2) comes after the batch
 * statistics of the first pooled map and the normalization that reads
 * them. Scheduling hoists it above both, next to the first pooling (and so
 * the sigmoid after it, but only up to r2: a batch-local node that reads
 * no statistic is not passed), while c, whose only user reads the
 * normalization, stays by that user; fusion then has both poolings in one
 * group. Values unchanged. */
static void test_schedule_hoists_past_statistics(void **state) {
  (void)state;
  ir_graph *g = parse("graph @h {\n"
                      "  %x = input name=\"x\" : f64[2,8,4,4]\n"
                      "  %g1 = input name=\"g1\" : f64[2,8,1,1]\n"
                      "  %g2 = input name=\"g2\" : f64[2,8,1,1]\n"
                      "  %y = relu(%x) : f64[2,8,4,4]\n"
                      "  %a = mul(%y, %g1) : f64[2,8,4,4]\n"
                      "  %r1 = reduce_sum(%a) axes=[1] keepdims=1 : f64[2,1,4,4]\n"
                      "  %st = batchnorm_stats(%r1) : f64[2,1]\n"
                      "  %sl = slice(%st) axis=0 start=0 end=1 step=1 : f64[1,1]\n"
                      "  %k = const value=2 : f64[]\n"
                      "  %sk = mul(%sl, %k) : f64[1,1]\n"
                      "  %rs = reshape(%sk) shape=[1,1,1] : f64[1,1,1]\n"
                      "  %ap = add(%r1, %rs) : f64[2,1,4,4]\n"
                      "  %b = mul(%y, %g2) : f64[2,8,4,4]\n"
                      "  %r2 = reduce_max(%b) axes=[1] keepdims=1 : f64[2,1,4,4]\n"
                      "  %v = sigmoid(%x) : f64[2,8,4,4]\n"
                      "  %w = mul(%v, %x) : f64[2,8,4,4]\n"
                      "  %c = mul(%y, %g2) : f64[2,8,4,4]\n"
                      "  %cu = mul(%c, %ap) : f64[2,8,4,4]\n"
                      "  output \"ap\" = %ap\n  output \"r2\" = %r2\n  output \"w\" = %w\n"
                      "  output \"cu\" = %cu\n}\n");
  ir_bundle *before = run_seeded(g);
  pass_fusion f0;
  assert_int_equal(pass_fuse(g, &f0, NULL), ATTNC_OK);
  int a0 = find_op(g, IR_OP_mul, 256), b0 = a0 + 8;
  assert_int_equal(g->nodes[b0]->op, IR_OP_mul);
  assert_true(f0.group_of[a0] != f0.group_of[b0]); /* split by the statistics */
  int moved = 0;
  assert_int_equal(pass_schedule(g, &moved, NULL), ATTNC_OK);
  assert_true(moved >= 2);
  assert_verifies(g);
  int r1 = find_op(g, IR_OP_reduce_sum, 32), st = find_op(g, IR_OP_batchnorm_stats, 2);
  int r2 = find_op(g, IR_OP_reduce_max, 32), v = find_op(g, IR_OP_sigmoid, 256);
  int b = g->nodes[r2]->in[0];
  assert_true(r1 < b && b < r2 && r2 < st); /* both hoisted above the statistics */
  assert_true(r2 < v && v < st); /* v too, but not past r2, which reads no statistic */
  /* c, read only by cu below the statistics, stays next to cu (hoisted, it
   * would be stored for cu instead of computed in cu's loop) */
  int cu = tb_output(g, "cu");
  assert_true(cu > st);
  assert_int_equal(g->nodes[cu]->in[0], cu - 1);
  ir_bundle *after = run_seeded(g);
  same_outputs(before, after);
  pass_fusion f1;
  assert_int_equal(pass_fuse(g, &f1, NULL), ATTNC_OK);
  int grp = f1.group_of[find_op(g, IR_OP_mul, 256)];
  assert_true(grp >= 0);
  assert_int_equal(f1.group_of[b], grp);
  assert_int_equal(f1.group_of[r2], grp);
  assert_int_equal(f1.group_of[r1], grp);
  pass_fusion_free(&f0);
  pass_fusion_free(&f1);
  ir_bundle_destroy(before);
  ir_bundle_destroy(after);
  ir_graph_destroy(g);
}

/* A cluster ending in a small map read only by batch-wide nodes (k2, the
 * gradient of a spatial attention map before its batch norm's gradient)
 * that reads a member of the run before a batch-wide node (a) gathers up
 * to the end of that run, past the statistics and a feature-map op that
 * depends on them (u, which the hoist cannot pass), so that it joins the
 * run's sample group instead of reading the feature maps again in one of
 * its own. A cluster that needs the statistics (k1 reading rs) stays. */
static void test_schedule_gathers_cluster(void **state) {
  (void)state;
  for (int needs_stats = 0; needs_stats < 2; needs_stats++) {
    char text[2048];
    snprintf(text, sizeof text,
             "graph @c {\n"
             "  %%x = input name=\"x\" : f64[2,8,32,32]\n"
             "  %%y = input name=\"y\" : f64[2,8,32,32]\n"
             "  %%a = mul(%%x, %%y) : f64[2,8,32,32]\n"
             "  %%s = reduce_sum(%%a) axes=[1] keepdims=1 : f64[2,1,32,32]\n"
             "  %%st = batchnorm_stats(%%s) : f64[2,1]\n"
             "  %%sl = slice(%%st) axis=0 start=0 end=1 step=1 : f64[1,1]\n"
             "  %%rs = reshape(%%sl) shape=[1,1,1] : f64[1,1,1]\n"
             "  %%u = mul(%%x, %%rs) : f64[2,8,32,32]\n"
             "  %%k1 = mul(%%a, %%%s) : f64[2,8,32,32]\n"
             "  %%k2 = reduce_sum(%%k1) axes=[1] keepdims=1 : f64[2,1,32,32]\n"
             "  %%st2 = batchnorm_stats(%%k2) : f64[2,1]\n"
             "  output \"u\" = %%u\n  output \"st2\" = %%st2\n}\n",
             needs_stats ? "rs" : "y");
    ir_graph *g = parse(text);
    ir_bundle *before = run_seeded(g);
    pass_fusion f0;
    assert_int_equal(pass_fuse(g, &f0, NULL), ATTNC_OK);
    int k1 = -1, a0 = find_op(g, IR_OP_mul, 16384);
    for (int i = 0; i < g->nnodes; i++)
      if (g->nodes[i]->op == IR_OP_mul && g->nodes[i]->in[0] == a0) k1 = i;
    assert_true(k1 >= 0);
    assert_true(f0.group_of[k1] != f0.group_of[a0]); /* split by the statistics */
    assert_int_equal(pass_schedule(g, NULL, NULL), ATTNC_OK);
    assert_verifies(g);
    int a = find_op(g, IR_OP_mul, 16384), st = find_op(g, IR_OP_batchnorm_stats, 2);
    int k2 = -1;
    for (int i = 0; i < g->nnodes; i++)
      if (g->nodes[i]->op == IR_OP_reduce_sum && g->nodes[g->nodes[i]->in[0]]->in[0] == a) k2 = i;
    assert_true(k2 >= 0);
    k1 = g->nodes[k2]->in[0];
    pass_fusion f1;
    assert_int_equal(pass_fuse(g, &f1, NULL), ATTNC_OK);
    if (!needs_stats) {
      assert_true(k1 < st && k2 < st); /* gathered above the statistics */
      assert_int_equal(f1.group_of[k1], f1.group_of[a]);
      assert_int_equal(f1.group_of[k2], f1.group_of[a]);
    } else {
      assert_true(k1 > st); /* it reads them */
      assert_true(f1.group_of[k1] != f1.group_of[a]);
    }
    ir_bundle *after = run_seeded(g);
    same_outputs(before, after);
    pass_fusion_free(&f0);
    pass_fusion_free(&f1);
    ir_bundle_destroy(before);
    ir_bundle_destroy(after);
    ir_graph_destroy(g);
  }
}

/* Rematerialization recomputes a product of a feature map and a gate (and
 * the relu under it, whose input is a source) next to a use beyond a
 * barrier, keeps the original for its near use, refuses a sum of two maps
 * (recomputing would read two maps instead of one), and leaves every value
 * unchanged. */
static void test_remat(void **state) {
  (void)state;
  ir_graph *g = parse("graph @r {\n"
                      "  %x0 = input name=\"x\" : f64[2,8,4,4]\n"
                      "  %g = input name=\"g\" : f64[2,8,1,1]\n"
                      "  %w1 = input name=\"w1\" : f64[8,8,3,3]\n"
                      "  %w2 = input name=\"w2\" : f64[8,8,3,3]\n"
                      "  %x = relu(%x0) : f64[2,8,4,4]\n"
                      "  %f = mul(%x, %g) : f64[2,8,4,4]\n"
                      "  %r = reduce_sum(%f) axes=[1] keepdims=1 : f64[2,1,4,4]\n"
                      "  %a = conv2d(%x0, %w1) stride=[1,1] pad=[1,1] dilation=[1,1] groups=1 : f64[2,8,4,4]\n"
                      "  %b = conv2d(%x0, %w2) stride=[1,1] pad=[1,1] dilation=[1,1] groups=1 : f64[2,8,4,4]\n"
                      "  %h = add(%a, %b) : f64[2,8,4,4]\n"
                      "  %st = batchnorm_stats(%h) : f64[2,8]\n"
                      "  %u = mul(%f, %r) : f64[2,8,4,4]\n"
                      "  %v = mul(%h, %a) : f64[2,8,4,4]\n"
                      "  %w = add(%v, %b) : f64[2,8,4,4]\n"
                      "  output \"u\" = %u\n  output \"w\" = %w\n  output \"st\" = %st\n}\n");
  ir_bundle *before = run_seeded(g);
  int cloned = 0;
  assert_int_equal(pass_remat(g, &cloned, NULL), ATTNC_OK);
  assert_int_equal(cloned, 1);
  assert_verifies(g);
  assert_int_equal(count_op(g, IR_OP_relu), 2);
  assert_int_equal(count_op(g, IR_OP_mul), 4); /* f, its clone, u, v */
  assert_int_equal(count_op(g, IR_OP_add), 2); /* h not recomputed */
  const ir_node *u = g->nodes[g->outputs[0].node];
  const ir_node *fc = g->nodes[u->in[0]], *st = NULL;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == IR_OP_batchnorm_stats) st = g->nodes[i];
  assert_non_null(st);
  assert_int_equal(fc->op, IR_OP_mul);
  assert_true(fc->id > st->id); /* the clone sits after the barrier */
  assert_int_equal(g->nodes[fc->in[0]]->op, IR_OP_relu);
  assert_true(fc->in[0] > st->id);
  ir_bundle *after = run_seeded(g);
  same_outputs(before, after);
  ir_bundle_destroy(before);
  ir_bundle_destroy(after);
  ir_graph_destroy(g);
}

/* HAM's pattern: a batch norm's output yb is read near by a pooling and a
 * gate product f, and beyond a barrier by f's use u and directly by d (the
 * backward). d's use is recomputed from the convolution's output c, which
 * the end reads anyway; u's clone of f recomputes yb from c too, instead of
 * reading yb, so that nothing beyond the barrier reads yb and it needs no
 * buffer there. With a far use that cannot recompute (a convolution q), yb
 * is stored anyway and f's clone reads it, as before. Values unchanged. */
static void test_remat_through(void **state) {
  (void)state;
  for (int conv_user = 0; conv_user < 2; conv_user++) {
    char text[2048];
    snprintf(text, sizeof text,
             "graph @r {\n"
             "  %%x0 = input name=\"x\" : f64[2,8,4,4]\n"
             "  %%w1 = input name=\"w1\" : f64[8,8,3,3]\n"
             "  %%s = input name=\"s\" : f64[8,1,1]\n"
             "  %%t = input name=\"t\" : f64[8,1,1]\n"
             "  %%g = input name=\"g\" : f64[2,8,1,1]\n"
             "  %%c = conv2d(%%x0, %%w1) stride=[1,1] pad=[1,1] dilation=[1,1] groups=1 : f64[2,8,4,4]\n"
             "  %%y = mul(%%c, %%s) : f64[2,8,4,4]\n"
             "  %%yb = add(%%y, %%t) : f64[2,8,4,4]\n"
             "  %%p = reduce_sum(%%yb) axes=[2,3] keepdims=1 : f64[2,8,1,1]\n"
             "  %%f = mul(%%yb, %%p) : f64[2,8,4,4]\n"
             "  %%st = batchnorm_stats(%%f) : f64[2,8]\n"
             "  %%u = mul(%%f, %%g) : f64[2,8,4,4]\n"
             "  %%d = mul(%%u, %%yb) : f64[2,8,4,4]\n"
             "  %%k = mul(%%d, %%c) : f64[2,8,4,4]\n"
             "%s"
             "  output \"k\" = %%k\n  output \"st\" = %%st\n}\n",
             conv_user ? "  %q = conv2d(%yb, %w1) stride=[1,1] pad=[1,1] dilation=[1,1] groups=1 : f64[2,8,4,4]\n"
                         "  output \"q\" = %q\n"
                       : "");
    ir_graph *g = parse(text);
    ir_bundle *before = run_seeded(g);
    int cloned = 0;
    assert_int_equal(pass_remat(g, &cloned, NULL), ATTNC_OK);
    assert_verifies(g);
    assert_int_equal(cloned, 2); /* f for u, yb for d */
    int st = find_op(g, IR_OP_batchnorm_stats, 16), k = tb_output(g, "k"), yb = -1;
    for (int i = 0; i < g->nnodes; i++)
      if (g->nodes[i]->op == IR_OP_reduce_sum) yb = g->nodes[i]->in[0];
    const ir_node *d = g->nodes[g->nodes[k]->in[0]];
    const ir_node *u = g->nodes[d->in[0]];
    const ir_node *fc = g->nodes[u->in[0]]; /* f's clone */
    assert_int_equal(fc->op, IR_OP_mul);
    assert_true(fc->id > st);
    assert_true(d->in[1] != yb && g->nodes[d->in[1]]->op == IR_OP_add); /* d's yb recomputed */
    int last = -1; /* the last node reading yb */
    for (int i = 0; i < g->nnodes; i++)
      for (int j = 0; j < g->nodes[i]->nin; j++)
        if (g->nodes[i]->in[j] == yb) last = i;
    if (!conv_user) {
      const ir_node *ybc = g->nodes[fc->in[0]];
      assert_int_equal(ybc->op, IR_OP_add);
      assert_true(ybc->id > st); /* recomputed after the barrier */
      const ir_node *yc = g->nodes[ybc->in[0]];
      assert_int_equal(yc->op, IR_OP_mul);
      assert_true(yc->id > st);
      assert_int_equal(g->nodes[yc->in[0]]->op, IR_OP_conv2d);
      assert_true(last < st); /* nothing reads yb beyond the barrier */
    } else {
      assert_int_equal(fc->in[0], yb); /* stored for the convolution: read as it is */
      assert_true(last > st);
    }
    ir_bundle *after = run_seeded(g);
    same_outputs(before, after);
    ir_bundle_destroy(before);
    ir_bundle_destroy(after);
    ir_graph_destroy(g);
  }
}

/* Two batchnorm_train layers (one of them with its running mean read
 * through batchnorm_stats, as nn.BatchNorm2d does) and the gradients:
 * pass_bn_split leaves no batchnorm_train, one batchnorm_stats per layer
 * (the existing one reused), y and dx as elementwise ops on the stats' rows,
 * and the same values for every output. */
/* Two f64 batchnorm_train layers on input "x" [3,2,2,3] with parameters
 * g1, b1, g2, b2 [2], a relu between them, the output "loss" =
 * sum(y*sigmoid(y)) and the output "stats" = batchnorm_stats(x); ids of x
 * and the parameters in *x and p[]. */
static ir_graph *bn_net(int *x, int p[4]) {
  ir_graph *g = ir_graph_create("bn");
  *x = tb_input(g, "x", IR_F64, 4, 3, 2, 2, 3);
  const char *names[4] = {"g1", "b1", "g2", "b2"};
  for (int i = 0; i < 4; i++) p[i] = tb_param(g, names[i], IR_F64, 1, 2);
  ir_node *n1 = tb_node(g, IR_OP_batchnorm_train, *x, p[0], p[1]);
  tb_set_float(n1, "eps", 1e-3);
  int y1 = tb_op(g, IR_OP_relu, tb_infer(g, n1));
  int st = tb_op(g, IR_OP_batchnorm_stats, *x);
  ir_node *n2 = tb_node(g, IR_OP_batchnorm_train, y1, p[2], p[3]);
  tb_set_float(n2, "eps", 1e-5);
  int y2 = tb_infer(g, n2);
  ir_node *loss = tb_node(g, IR_OP_reduce_sum, tb_op(g, IR_OP_mul, y2, tb_op(g, IR_OP_sigmoid, y2)));
  tb_set_ints(loss, "axes", 0, 1, 2, 3);
  ir_graph_add_output(g, "loss", tb_infer(g, loss));
  ir_graph_add_output(g, "stats", st);
  return g;
}

static void test_bn_split(void **state) {
  (void)state;
  int x, p[4];
  ir_graph *g = bn_net(&x, p);
  int g1 = p[0], b1 = p[1], g2 = p[2], b2 = p[3];
  assert_int_equal(pass_autodiff(g, "loss", 0, NULL), ATTNC_OK);
  ir_bundle *in = ir_bundle_create();
  double xv[36], pv[2][2] = {{1.5, -0.5}, {0.2, 0.3}};
  ti_fill(xv, 36, 5);
  ti_feed(in, g, x, xv);
  ti_feed(in, g, g1, pv[0]);
  ti_feed(in, g, b1, pv[1]);
  ti_feed(in, g, g2, pv[1]);
  ti_feed(in, g, b2, pv[0]);
  ir_bundle *before = ti_run(g, in, IR_INTERP_NATIVE);
  int ntrain_grad = count_op(g, IR_OP_batchnorm_train_grad);
  assert_int_equal(ntrain_grad, 1); /* x is an input: only the second layer's dx */
  assert_int_equal(count_op(g, IR_OP_batchnorm_param_grad), 2);

  int split = 0;
  assert_int_equal(pass_bn_split(g, &split, NULL), ATTNC_OK);
  assert_int_equal(pass_simplify(g, NULL, NULL), ATTNC_OK);
  assert_int_equal(split, 2 + ntrain_grad); /* two forward layers, one dx */
  assert_int_equal(count_op(g, IR_OP_batchnorm_train), 0);
  assert_int_equal(count_op(g, IR_OP_batchnorm_eval), 0);  /* y: elementwise on the stats */
  assert_int_equal(count_op(g, IR_OP_batchnorm_stats), 2);
  assert_int_equal(count_op(g, IR_OP_batchnorm_train_grad), 0); /* dx: elementwise on the stats */
  /* gamma's and beta's sums (shared with dx) per sample, then over the
   * batch: two per-sample sums and one batch sum of their [N,2,C] per
   * layer, plus the loss */
  assert_int_equal(count_op(g, IR_OP_batchnorm_param_grad), 0);
  assert_int_equal(count_op(g, IR_OP_reduce_sum), 2 * 3 + 1);
  assert_int_equal(count_op(g, IR_OP_concat), 2);
  assert_int_equal(count_op(g, IR_OP_rsqrt), 2); /* one per layer: dx reuses y's */
  /* y's x + (-mean) reads the mean row of the stats, and is not the x - mean
   * of dx: merged, it would be kept from the forward to the backward */
  assert_int_equal(count_op(g, IR_OP_neg), 2);
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == IR_OP_neg) {
      const ir_node *m = g->nodes[g->nodes[i]->in[0]];
      assert_int_equal(m->op, IR_OP_reshape);
      assert_int_equal(g->nodes[m->in[0]]->op, IR_OP_slice);
      assert_int_equal(ir_get_int(g->nodes[m->in[0]], "start"), 0);
      assert_int_equal(g->nodes[g->nodes[m->in[0]]->in[0]]->op, IR_OP_batchnorm_stats);
    }
  /* dx's x - mean, shared neither with y nor with the per-sample sums
   * (which share y's x + (-mean)): merged, it would be stored for dx by
   * the group that makes the sums */
  assert_int_equal(count_op(g, IR_OP_sub), ntrain_grad);
  assert_verifies(g);

  ir_bundle *after = ti_run(g, in, IR_INTERP_NATIVE);
  for (int o = 0; o < before->count; o++) {
    int64_t n;
    double *want = values_of(before, before->names[o], &n);
    const ir_tensor *t = ir_bundle_get(after, before->names[o]);
    assert_non_null(t);
    for (int64_t i = 0; i < n; i++) assert_true(fabs(ir_tensor_get(t, i) - want[i]) <= 1e-12 * (1 + fabs(want[i])));
    free(want);
  }
  ir_bundle_destroy(before);
  ir_bundle_destroy(after);
  ir_bundle_destroy(in);
  ir_graph_destroy(g);
}

/* The training step built for an unfused program (fuse 0, as --no-fuse
 * does) keeps the batch-norm ops whole, since the split, remat and
 * schedule rewrites serve fusion only; for a fused one (fuse 1) the split
 * is made. Both steps compute the same values. */
static void test_train_step_unfused(void **state) {
  (void)state;
  int x, p[4];
  ir_graph *fused = bn_net(&x, p), *plain = ir_graph_clone(fused);
  assert_non_null(plain);
  pass_sgd_options o = {0.9, 5e-4, 0};
  assert_int_equal(pass_train_step(fused, &o, 1, NULL, NULL), ATTNC_OK);
  assert_int_equal(pass_train_step(plain, &o, 0, NULL, NULL), ATTNC_OK);
  assert_int_equal(count_op(fused, IR_OP_batchnorm_train), 0);
  assert_int_equal(count_op(fused, IR_OP_batchnorm_train_grad), 0);
  assert_int_equal(count_op(plain, IR_OP_batchnorm_train), 2);
  assert_int_equal(count_op(plain, IR_OP_batchnorm_train_grad), 1);
  assert_int_equal(count_op(plain, IR_OP_batchnorm_eval), 0);
  ir_bundle *a = run_named(fused), *b = run_named(plain);
  assert_true(a->count >= 2 + 4 + 4); /* loss, stats, grad.* and the updated parameters */
  assert_int_equal(a->count, b->count);
  same_outputs(a, b);
  ir_bundle_destroy(a);
  ir_bundle_destroy(b);
  ir_graph_destroy(fused);
  ir_graph_destroy(plain);
}

/* y = relu(x*w) computed twice, reshaped to its own shape, times 1, plus
 * (2+3) folded, plus a dead branch: simplify leaves one relu, no reshape,
 * no dead sigmoid, one const 5, and the same values. */
static void test_simplify_before_after(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("s");
  int x = tb_input(g, "x", IR_F32, 2, 2, 3), w = tb_param(g, "w", IR_F32, 1, 3);
  int a = tb_op(g, IR_OP_relu, tb_op(g, IR_OP_mul, x, w));
  int b = tb_op(g, IR_OP_relu, tb_op(g, IR_OP_mul, x, w));
  ir_node *r = tb_node(g, IR_OP_reshape, a);
  tb_set_ints(r, "shape", 2, 3);
  int one = tb_op(g, IR_OP_mul, tb_infer(g, r), tb_const(g, 1, IR_F32));
  int five = tb_op(g, IR_OP_add, tb_const(g, 2, IR_F32), tb_const(g, 3, IR_F32));
  tb_op(g, IR_OP_sigmoid, x); /* dead */
  int y = tb_op(g, IR_OP_add, tb_op(g, IR_OP_add, one, b), five);
  ir_graph_add_output(g, "y", y);
  assert_int_equal(count_op(g, IR_OP_relu), 2);
  assert_int_equal(count_op(g, IR_OP_reshape), 1);

  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){1, -2, 3, -4, 5, 0.5});
  ti_feed(in, g, w, (double[]){2, 1, -1});
  ir_bundle *before = ti_run(g, in, IR_INTERP_NATIVE);

  pass_simplify_stats st;
  assert_int_equal(pass_simplify(g, &st, NULL), ATTNC_OK);
  assert_int_equal(st.before, 15);
  assert_int_equal(count_op(g, IR_OP_relu), 1);
  assert_int_equal(count_op(g, IR_OP_mul), 1);
  assert_int_equal(count_op(g, IR_OP_reshape), 0);
  assert_int_equal(count_op(g, IR_OP_sigmoid), 0);
  assert_int_equal(count_op(g, IR_OP_const), 1);
  assert_int_equal(st.after, g->nnodes);
  assert_int_equal(g->nnodes, 7); /* x, w, mul, relu, add(relu,relu), const 5, add */
  assert_verifies(g);

  ir_bundle *after = ti_run(g, in, IR_INTERP_NATIVE);
  const ir_tensor *t = ir_bundle_get(before, "y");
  double want[6];
  for (int i = 0; i < 6; i++) want[i] = ir_tensor_get(t, i);
  ti_assert_output(after, "y", "f32[2,3]", want, 0);
  ir_bundle_destroy(before);
  ir_bundle_destroy(after);
  ir_bundle_destroy(in);
  ir_graph_destroy(g);
}

/* Builds loss = sum(p*p)/2 (so grad = p), the training step with 'o', and
 * runs one step from p, v with learning rate lr; checks p' and v'. */
static void sgd_case(const pass_sgd_options *o, const double *p, const double *v, double lr) {
  ir_graph *g = ir_graph_create("sgd");
  int pid = tb_param(g, "p", IR_F64, 1, 3);
  ir_node *s = tb_node(g, IR_OP_reduce_sum, tb_op(g, IR_OP_mul, pid, pid));
  tb_set_ints(s, "axes", 0);
  int loss = tb_op(g, IR_OP_mul, tb_infer(g, s), tb_const(g, 0.5, IR_F64));
  ir_graph_add_output(g, "loss", loss);
  ir_diag *d = ir_diag_create();
  assert_int_equal(pass_train_step(g, o, 1, NULL, d), ATTNC_OK);
  ir_diag_destroy(d);
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, pid, p);
  ti_feed(in, g, ir_graph_find_source(g, IR_OP_input, "lr")->id, &lr);
  if (o->momentum != 0) ti_feed(in, g, ir_graph_find_source(g, IR_OP_buffer, "optim.p.momentum")->id, v);
  ir_bundle *out = ti_run(g, in, IR_INTERP_F64);
  double np[3], nv[3];
  for (int i = 0; i < 3; i++) { /* torch.optim.SGD: d = g + wd p; v = mu v + d; step = nesterov ? d + mu v : v */
    double gr = p[i] + o->weight_decay * p[i];
    nv[i] = o->momentum * v[i] + gr;
    double step = o->momentum == 0 ? gr : (o->nesterov ? gr + o->momentum * nv[i] : nv[i]);
    np[i] = p[i] - lr * step;
  }
  ti_assert_output(out, "p", "f64[3]", np, 1e-14);
  if (o->momentum != 0) ti_assert_output(out, "optim.p.momentum", "f64[3]", nv, 1e-14);
  ti_assert_output(out, "grad.p", "f64[3]", p, 1e-14);
  ir_bundle_destroy(out);
  ir_bundle_destroy(in);
  ir_graph_destroy(g);
}

static void test_sgd_momentum_decay(void **state) {
  (void)state;
  pass_sgd_options o = {0.9, 0.01, 0};
  sgd_case(&o, (double[]){1, -2, 0.5}, (double[]){0.3, 0, -1}, 0.1);
}

static void test_sgd_nesterov(void **state) {
  (void)state;
  pass_sgd_options o = {0.9, 5e-4, 1};
  sgd_case(&o, (double[]){1, -2, 0.5}, (double[]){0.3, 0, -1}, 0.05);
}

static void test_sgd_plain(void **state) {
  (void)state;
  pass_sgd_options o = {0, 0, 0};
  sgd_case(&o, (double[]){1, -2, 0.5}, (double[]){0, 0, 0}, 0.5);
}

/* Without gradient outputs there is nothing to update: a clear error. */
static void test_sgd_needs_gradients(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("nograd");
  int p = tb_param(g, "p", IR_F32, 1, 3);
  ir_graph_add_output(g, "y", tb_op(g, IR_OP_relu, p));
  ir_diag *d = ir_diag_create();
  pass_sgd_options o = {0.9, 0, 0};
  assert_int_equal(pass_sgd(g, &o, d), ATTNC_EINVAL);
  tb_assert_contains(ir_diag_text(d), "no gradient outputs");
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_simplify_before_after),
      cmocka_unit_test(test_bn_split),
      cmocka_unit_test(test_batch_sums),
      cmocka_unit_test(test_train_step_unfused),
      cmocka_unit_test(test_simplify_broadcast_operands),
      cmocka_unit_test(test_simplify_reciprocal),
      cmocka_unit_test(test_schedule_constants_first),
      cmocka_unit_test(test_schedule_sinks_batch_reductions),
      cmocka_unit_test(test_schedule_sinks_small_nodes),
      cmocka_unit_test(test_schedule_settles_maps),
      cmocka_unit_test(test_schedule_hoists_past_statistics),
      cmocka_unit_test(test_schedule_gathers_cluster),
      cmocka_unit_test(test_remat),
      cmocka_unit_test(test_remat_through),
      cmocka_unit_test(test_sgd_momentum_decay),
      cmocka_unit_test(test_sgd_nesterov),
      cmocka_unit_test(test_sgd_plain),
      cmocka_unit_test(test_sgd_needs_gradients),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
