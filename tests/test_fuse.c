/* Fusion grouping (pass_fuse): the batch-locality rules op by op, the
 * legality rule, the cost rule and the caps on small hand-written graphs,
 * the fused view's text, and the groups of every attention module of the
 * zoo in the eval forward and the training step (structure per block, the
 * SGD and running-statistic loops, every invariant of the contract). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "passes.h"
#include "util_build.h"
#include "util_fe.h"
#include "util_fuse.h"
#include "util_jit.h"

/* Parses IR text that must verify; caller destroys. */
static ir_graph *parse(const char *text) {
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, "<test>", d);
  if (!g || ir_verify(g, d)) fail_msg("%s\n%s", ir_diag_text(d), text);
  ir_diag_destroy(d);
  return g;
}

/* The tiny ECA classifier of docs/examples with 'c' conv output channels. */
static ir_graph *eca_tiny(int c) {
  char text[4096];
  snprintf(text, sizeof text,
           "graph @eca_tiny {\n"
           "  %%0 = input name=\"input\" : f32[2,2,4,4]\n"
           "  %%1 = param name=\"conv.weight\" : f32[%d,2,3,3]\n"
           "  %%2 = conv2d(%%0, %%1) stride=[1,1] pad=[1,1] dilation=[1,1] groups=1 : f32[2,%d,4,4]\n"
           "  %%3 = relu(%%2) : f32[2,%d,4,4]\n"
           "  %%4 = reduce_mean(%%3) axes=[2,3] keepdims=0 : f32[2,%d]\n"
           "  %%5 = reshape(%%4) shape=[2,1,%d] : f32[2,1,%d]\n"
           "  %%6 = param name=\"att.conv1d.weight\" : f32[1,1,3]\n"
           "  %%7 = conv1d(%%5, %%6) stride=[1] pad=[1] dilation=[1] groups=1 : f32[2,1,%d]\n"
           "  %%8 = sigmoid(%%7) : f32[2,1,%d]\n"
           "  %%9 = reshape(%%8) shape=[2,%d,1,1] : f32[2,%d,1,1]\n"
           "  %%10 = mul(%%3, %%9) : f32[2,%d,4,4]\n"
           "  %%11 = reduce_mean(%%10) axes=[2,3] keepdims=0 : f32[2,%d]\n"
           "  %%12 = param name=\"fc.weight\" : f32[3,%d]\n"
           "  %%13 = param name=\"fc.bias\" : f32[3]\n"
           "  %%14 = matmul(%%11, %%12) trans_a=0 trans_b=1 : f32[2,3]\n"
           "  %%15 = add(%%14, %%13) : f32[2,3]\n"
           "  output \"logits\" = %%15\n"
           "}\n",
           c, c, c, c, c, c, c, c, c, c, c, c, c);
  return parse(text);
}

/* Returns node 'id's group index (-1 if none). */
static int group(const pass_fusion *f, int id) { return f->group_of[id]; }

/* The tiny ECA classifier is one SAMPLE group: 11 members (conv of 72
 * weights included), 9 steps (each mean over H,W summed along the rows of
 * the loop that computes its operand), 9 kernels become 1; the fused view
 * shows it. */
static void test_eca_tiny_one_group(void **state) {
  (void)state;
  ir_graph *g = eca_tiny(4);
  pass_fusion f;
  tfu_fuse(g, &f);
  assert_int_equal(f.ngroups, 1);
  const pass_fuse_group *gr = &f.groups[0];
  assert_int_equal(gr->kind, PASS_FUSE_SAMPLE);
  assert_string_equal(gr->label, "channel-attention");
  int members[] = {2, 3, 4, 5, 7, 8, 9, 10, 11, 14, 15}, ins[] = {0, 1, 6, 12, 13};
  assert_int_equal(gr->nmembers, 11);
  assert_memory_equal(gr->members, members, sizeof members);
  assert_int_equal(gr->nins, 5);
  assert_memory_equal(gr->ins, ins, sizeof ins);
  assert_int_equal(gr->nouts, 1);
  assert_int_equal(gr->outs[0], 15);
  int starts[] = {0, 1, 3, 4, 5, 6, 7, 9, 10}; /* relu + its mean, the gated product + its mean: a loop each */
  assert_int_equal(gr->nsteps, 9);
  assert_memory_equal(gr->step_start, starts, sizeof starts);
  assert_int_equal(tfu_kernels(g, NULL), 9);
  assert_int_equal(tfu_kernels(g, &f), 1);
  char *text = pass_fusion_print(g, &f);
  assert_non_null(text);
  tb_assert_contains(text, "# fused.0 sample \"channel-attention\" members=%2..%15 (11 ops, 9 steps) "
                           "ins=%0,%1,%6,%12,%13 outs=%15\n"
                           "  |0.1 %2 = conv2d(%0, %1) ");
  tb_assert_contains(text, "\n  %6 = param name=\"att.conv1d.weight\"");
  tb_assert_contains(text, "\n  |0.2 %4 = reduce_mean(%3) axes=[2,3] keepdims=0 : f32[2,4]\n");
  tb_assert_contains(text, "\n  |0.9 %15 = add(%14, %13) : f32[2,3]\n  output \"logits\" = %15\n}\n");
  tb_assert_contains(text, "# fusion summary: 1 group (1 channel-attention); 11 of 16 nodes fused; "
                           "kernels 9 without fusion, 1 with\n");
  free(text);
  pass_fusion_free(&f);
  ir_graph_destroy(g);
}

/* A conv of 576 weights is compute-bound: it stays alone, the rest fuses
 * (9 kernels become 2). */
static void test_big_conv_stays_alone(void **state) {
  (void)state;
  ir_graph *g = eca_tiny(32);
  pass_fusion f;
  tfu_fuse(g, &f);
  assert_int_equal(f.ngroups, 1);
  assert_int_equal(group(&f, 2), -1);
  assert_int_equal(f.groups[0].nmembers, 10);
  assert_int_equal(f.groups[0].members[0], 3);
  assert_int_equal(pass_fuse_batched(g, g->nodes[2], 0, 2), 1); /* batch-local all the same */
  assert_int_equal(pass_fuse_batched(g, g->nodes[2], 1, 2), 0);
  assert_int_equal(tfu_kernels(g, &f), 2);
  pass_fusion_free(&f);
  ir_graph_destroy(g);
}

/* The per-op rules of pass_fuse_batched (FUSION.md) at batch 2. */
static void test_batched_rules(void **state) {
  (void)state;
  ir_graph *g = parse("graph @rules {\n"
                      "  %0 = input name=\"x\" : f32[2,2,8,8]\n"
                      "  %1 = param name=\"s\" : f32[1,2,1,1]\n"
                      "  %2 = add(%0, %1) : f32[2,2,8,8]\n"
                      "  %3 = param name=\"v\" : f32[8]\n"
                      "  %4 = mul(%2, %3) : f32[2,2,8,8]\n"
                      "  %5 = reduce_sum(%0) axes=[0] keepdims=0 : f32[2,8,8]\n"
                      "  %6 = reduce_max(%0) axes=[1,-1] keepdims=1 : f32[2,1,8,1]\n"
                      "  %7 = param name=\"g\" : f32[2]\n"
                      "  %8 = batchnorm_train(%0, %7, %7) eps=1e-05 : f32[2,2,8,8]\n"
                      "  %9 = batchnorm_eval(%0, %7, %7, %7, %7) eps=1e-05 : f32[2,2,8,8]\n"
                      "  %10 = conv2d_grad_weight(%0, %0) stride=[1,1] pad=[1,1] dilation=[1,1] groups=1 kernel=[3,3] : f32[2,2,3,3]\n"
                      "  %11 = param name=\"w\" : f32[2,2,3,3]\n"
                      "  %12 = conv2d_grad_input(%0, %11) stride=[1,1] pad=[1,1] dilation=[1,1] groups=1 in_shape=[2,2,8,8] : f32[2,2,8,8]\n"
                      "  %13 = softmax(%0) axis=0 : f32[2,2,8,8]\n"
                      "  %14 = softmax(%0) axis=-1 : f32[2,2,8,8]\n"
                      "  %15 = reshape(%0) shape=[2,128] : f32[2,128]\n"
                      "  %16 = reshape(%0) shape=[4,64] : f32[4,64]\n"
                      "  %17 = transpose(%0) perm=[1,0,2,3] : f32[2,2,8,8]\n"
                      "  %18 = transpose(%0) perm=[0,2,3,1] : f32[2,8,8,2]\n"
                      "  %19 = slice(%0) axis=0 start=0 end=1 step=1 : f32[1,2,8,8]\n"
                      "  %20 = concat(%0, %0) axis=1 : f32[2,4,8,8]\n"
                      "  %21 = concat(%0, %0) axis=0 : f32[4,2,8,8]\n"
                      "  %22 = pad(%0) pads=[0,0,1,1,0,0,0,0] value=0 : f32[2,4,8,8]\n"
                      "  %23 = pad(%19) pads=[1,0,0,0,0,0,0,0] value=0 : f32[2,2,8,8]\n"
                      "  %24 = broadcast_to(%1) shape=[2,2,8,8] : f32[2,2,8,8]\n"
                      "  %25 = param name=\"fc\" : f32[3,128]\n"
                      "  %26 = matmul(%15, %25) trans_a=0 trans_b=1 : f32[2,3]\n"
                      "  %27 = reshape(%0) shape=[2,16,8] : f32[2,16,8]\n"
                      "  %28 = matmul(%27, %27) trans_a=0 trans_b=1 : f32[2,16,16]\n"
                      "  %29 = matmul(%27, %27) trans_a=1 trans_b=0 : f32[2,8,8]\n"
                      "  %30 = input name=\"labels\" : i64[2]\n"
                      "  %31 = cross_entropy(%15, %30) : f32[]\n"
                      "  %32 = max_pool2d(%0) kernel=[2,2] stride=[2,2] pad=[0,0] : f32[2,2,4,4]\n"
                      "  %33 = topk_mask(%0) axis=1 k=1 : f32[2,2,8,8]\n"
                      "  %34 = slice(%21) axis=0 start=2 end=4 step=1 : f32[2,2,8,8]\n"
                      "  output \"a\" = %4\n"
                      "  output \"b\" = %28\n"
                      "}\n");
  struct {
    int node, k, want;
  } cases[] = {
      {2, 0, 1},   {2, 1, 0},  {4, 0, 1},   {4, 1, 0},   /* elementwise: shared operands */
      {5, 0, -1},  {6, 0, 1},                            /* reductions over axis 0 / not */
      {8, 0, -1},  {9, 0, 1},  {9, 1, 0},  {10, 0, -1}, {10, 1, -1}, /* batchnorm_*, *_grad_weight */
      {12, 0, 1},  {12, 1, 0}, {13, 0, -1}, {14, 0, 1},  /* conv input grad, softmax */
      {15, 0, 1},  {16, 0, -1}, {17, 0, -1}, {18, 0, 1}, /* reshape, transpose */
      {19, 0, -1}, {20, 0, 1}, {20, 1, 1},  {21, 0, -1}, /* slice, concat */
      {22, 0, 1},  {23, 0, -1}, {24, 0, -1},            /* pad, broadcast_to from dims[0] 1 */
      {26, 0, 1},  {26, 1, 0}, {28, 0, 1},  {28, 1, 1},  /* matmul shared / batched b */
      {29, 0, 1},  {31, 0, -1}, {32, 0, 1}, {33, 0, 1},  /* cross_entropy, pool, topk */
      {34, 0, -1}, {1, 0, -1}, {2, 2, -1},              /* slice on axis 0, a source, no operand 2 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int got = pass_fuse_batched(g, g->nodes[cases[i].node], cases[i].k, 2);
    if (got != cases[i].want)
      fail_msg("%%%d operand %d: %d, want %d", cases[i].node, cases[i].k, got, cases[i].want);
  }
  assert_int_equal(pass_fuse_batched(g, g->nodes[2], 0, 4), -1); /* another batch size */
  pass_fusion f;
  tfu_fuse(g, &f);
  pass_fusion_free(&f);
  ir_graph_destroy(g);
}

/* relu -> %3 -> relu around a node %3 of type 't3' that is not batch-local
 * ('op' its right-hand side): no group forms. */
static void check_breaks(const char *op, const char *t3) {
  char text[2048];
  snprintf(text, sizeof text,
           "graph @neg {\n"
           "  %%0 = input name=\"x\" : f32[2,2,8,8]\n"
           "  %%1 = param name=\"g\" : f32[2]\n"
           "  %%2 = relu(%%0) : f32[2,2,8,8]\n"
           "  %%3 = %s : %s\n"
           "  %%4 = relu(%%3) : %s\n"
           "  output \"y\" = %%4\n"
           "}\n",
           op, t3, t3);
  ir_graph *g = parse(text);
  pass_fusion f;
  tfu_fuse(g, &f);
  if (f.ngroups != 0) fail_msg("'%s' joined a group", op);
  pass_fusion_free(&f);
  ir_graph_destroy(g);
}

/* Batchnorm, a reduction over the batch and a big conv stop fusion; their
 * batch-local counterparts do not. */
static void test_not_batch_local(void **state) {
  (void)state;
  check_breaks("batchnorm_train(%2, %1, %1) eps=1e-05", "f32[2,2,8,8]");
  check_breaks("reduce_mean(%2) axes=[0] keepdims=1", "f32[1,2,8,8]");
  check_breaks("conv2d_grad_weight(%2, %2) stride=[1,1] pad=[1,1] dilation=[1,1] groups=1 kernel=[3,3]",
               "f32[2,2,3,3]");
  /* conv2d with 2*16*5*5 = 800 weights */
  char text[2048];
  snprintf(text, sizeof text,
           "graph @conv {\n"
           "  %%0 = input name=\"x\" : f32[2,16,8,8]\n"
           "  %%1 = param name=\"w\" : f32[2,16,5,5]\n"
           "  %%2 = relu(%%0) : f32[2,16,8,8]\n"
           "  %%3 = conv2d(%%2, %%1) stride=[1,1] pad=[2,2] dilation=[1,1] groups=1 : f32[2,2,8,8]\n"
           "  %%4 = relu(%%3) : f32[2,2,8,8]\n"
           "  output \"y\" = %%4\n"
           "}\n");
  ir_graph *g = parse(text);
  pass_fusion f;
  tfu_fuse(g, &f);
  assert_int_equal(f.ngroups, 0);
  pass_fusion_free(&f);
  ir_graph_destroy(g);
  /* the same conv with 2*2*5*5 = 100 weights fuses with both relus */
  g = parse("graph @small {\n"
            "  %0 = input name=\"x\" : f32[2,2,8,8]\n"
            "  %1 = param name=\"w\" : f32[2,2,5,5]\n"
            "  %2 = relu(%0) : f32[2,2,8,8]\n"
            "  %3 = conv2d(%2, %1) stride=[1,1] pad=[2,2] dilation=[1,1] groups=1 : f32[2,2,8,8]\n"
            "  %4 = relu(%3) : f32[2,2,8,8]\n"
            "  %5 = reduce_mean(%4) axes=[1] keepdims=1 : f32[2,1,8,8]\n"
            "  output \"y\" = %5\n"
            "}\n");
  tfu_fuse(g, &f);
  assert_int_equal(f.ngroups, 1);
  assert_int_equal(f.groups[0].nmembers, 4);
  assert_int_equal(f.groups[0].kind, PASS_FUSE_SAMPLE);
  assert_string_equal(f.groups[0].label, "sample");
  pass_fusion_free(&f);
  ir_graph_destroy(g);
}

/* A node outside the group that uses a member blocks every later join;
 * with that user after the chain, the chain fuses. */
static void test_outside_user_blocks(void **state) {
  (void)state;
  const char *blocked = "graph @blocked {\n"
                        "  %0 = input name=\"x\" : f32[2,8]\n"
                        "  %1 = relu(%0) : f32[2,8]\n"
                        "  %2 = reduce_sum(%1) axes=[0] keepdims=0 : f32[8]\n"
                        "  %3 = sigmoid(%1) : f32[2,8]\n"
                        "  %4 = exp(%3) : f32[2,8]\n"
                        "  output \"a\" = %2\n"
                        "  output \"b\" = %4\n"
                        "}\n";
  ir_graph *g = parse(blocked);
  pass_fusion f;
  tfu_fuse(g, &f);
  assert_int_equal(f.ngroups, 1);
  assert_int_equal(group(&f, 1), -1);
  assert_int_equal(f.groups[0].nmembers, 2);
  assert_int_equal(f.groups[0].members[0], 3);
  assert_int_equal(f.groups[0].kind, PASS_FUSE_LOOP); /* one loop cluster: a loop group */
  pass_fusion_free(&f);
  ir_graph_destroy(g);
  g = parse("graph @free {\n"
            "  %0 = input name=\"x\" : f32[2,8]\n"
            "  %1 = relu(%0) : f32[2,8]\n"
            "  %2 = sigmoid(%1) : f32[2,8]\n"
            "  %3 = exp(%2) : f32[2,8]\n"
            "  %4 = reduce_sum(%1) axes=[0] keepdims=0 : f32[8]\n"
            "  output \"a\" = %4\n"
            "  output \"b\" = %3\n"
            "}\n");
  tfu_fuse(g, &f);
  assert_int_equal(f.ngroups, 1);
  assert_int_equal(f.groups[0].nmembers, 3);
  int outs[] = {1, 3};
  assert_int_equal(f.groups[0].nouts, 2);
  assert_memory_equal(f.groups[0].outs, outs, sizeof outs);
  pass_fusion_free(&f);
  ir_graph_destroy(g);
}

/* Graph of two chains {1,2} and {3,4} joined by %6 = add(%2, %4), with a
 * reduction of %2 at position 'at' (5: before the join, 8: after it). */
static ir_graph *two_chains(int at) {
  char text[1024];
  const char *red = "reduce_sum(%2) axes=[0] keepdims=0 : f32[8]";
  snprintf(text, sizeof text,
           "graph @join {\n"
           "  %%0 = input name=\"x\" : f32[2,8]\n"
           "  %%1 = relu(%%0) : f32[2,8]\n"
           "  %%2 = neg(%%1) : f32[2,8]\n"
           "  %%3 = exp(%%0) : f32[2,8]\n"
           "  %%4 = abs(%%3) : f32[2,8]\n"
           "  %%5 = %s\n"
           "  %%6 = add(%%2, %%4) : f32[2,8]\n"
           "  %%7 = sigmoid(%%6) : f32[2,8]\n"
           "  %%8 = %s\n"
           "  output \"s\" = %%%d\n"
           "  output \"y\" = %%7\n"
           "}\n",
           at == 5 ? red : "neg(%0) : f32[2,8]", at == 8 ? red : "neg(%0) : f32[2,8]", at);
  return parse(text);
}

/* Merging two groups through a node needs the rule to hold for both: a
 * user of the first before the join keeps it apart, the second merges. */
static void test_merge_needs_both(void **state) {
  (void)state;
  ir_graph *g = two_chains(5);
  pass_fusion f;
  tfu_fuse(g, &f);
  assert_int_equal(f.ngroups, 2);
  assert_int_equal(group(&f, 1), group(&f, 2));
  assert_int_not_equal(group(&f, 2), group(&f, 6));
  assert_int_equal(group(&f, 3), group(&f, 6));
  assert_int_equal(group(&f, 4), group(&f, 7));
  assert_int_equal(f.groups[group(&f, 6)].nmembers, 4);
  pass_fusion_free(&f);
  ir_graph_destroy(g);
  g = two_chains(8);
  tfu_fuse(g, &f);
  /* %5 = neg(%0) starts its own chain; %1..%4, %6, %7 form one group */
  assert_int_equal(group(&f, 1), group(&f, 7));
  assert_int_equal(group(&f, 3), group(&f, 7));
  assert_int_equal(f.groups[group(&f, 7)].nmembers, 6);
  assert_int_equal(group(&f, 8), -1);
  pass_fusion_free(&f);
  ir_graph_destroy(g);
}

/* 100 chained relus: groups of 96 and 4 (the member cap). */
static void test_member_cap(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("chain");
  int x = tb_input(g, "x", IR_F32, 2, 2, 4);
  for (int i = 0; i < 100; i++) x = tb_op(g, IR_OP_relu, x);
  ir_graph_add_output(g, "y", x);
  pass_fusion f;
  tfu_fuse(g, &f);
  assert_int_equal(f.ngroups, 2);
  assert_int_equal(f.groups[0].nmembers, 96);
  assert_int_equal(f.groups[1].nmembers, 4);
  assert_int_equal(f.groups[0].kind, PASS_FUSE_LOOP);
  assert_string_equal(f.groups[1].label, "elementwise");
  assert_int_equal(tfu_kernels(g, &f), 2);
  pass_fusion_free(&f);
  ir_graph_destroy(g);
}

/* acc = x + p1 + ... + p20: a loop cluster takes at most 16 inputs +
 * outputs, so the adds split 14 + 6 (into two LOOP groups without a batch,
 * into two steps of one SAMPLE group with input "x" of batch 2). */
static void test_argument_cap(void **state) {
  (void)state;
  for (int batched = 0; batched < 2; batched++) {
    ir_graph *g = ir_graph_create("sum");
    int acc = tb_input(g, batched ? "x" : "y", IR_F32, 2, 2, 4);
    for (int i = 0; i < 20; i++) {
      char name[16];
      snprintf(name, sizeof name, "p%d", i);
      acc = tb_op(g, IR_OP_add, acc, tb_param(g, name, IR_F32, 2, 2, 4));
    }
    ir_graph_add_output(g, "y", acc);
    pass_fusion f;
    tfu_fuse(g, &f);
    if (!batched) {
      assert_int_equal(f.ngroups, 2);
      assert_int_equal(f.groups[0].nmembers, 14);
      assert_int_equal(f.groups[0].nins + f.groups[0].nouts, 16);
      assert_int_equal(f.groups[1].nmembers, 6);
      assert_int_equal(f.groups[1].kind, PASS_FUSE_LOOP);
    } else {
      assert_int_equal(f.ngroups, 1);
      assert_int_equal(f.groups[0].kind, PASS_FUSE_SAMPLE);
      assert_int_equal(f.groups[0].nmembers, 20);
      assert_int_equal(f.groups[0].nsteps, 2);
      assert_int_equal(f.groups[0].step_start[1], 14);
      assert_string_equal(f.groups[0].label, "sample");
    }
    pass_fusion_free(&f);
    ir_graph_destroy(g);
  }
}

/* A member read whole (not per sample) by a node keeps that node out of its
 * SAMPLE group: y[2,8] * s where s = reduce over axis 1 of y is [2] and
 * broadcasts along the last axis, so it is shared, not batched. */
static void test_shared_operand_not_merged(void **state) {
  (void)state;
  ir_graph *g = parse("graph @shared {\n"
                      "  %0 = input name=\"x\" : f32[2,2]\n"
                      "  %1 = relu(%0) : f32[2,2]\n"
                      "  %2 = reduce_sum(%1) axes=[1] keepdims=0 : f32[2]\n"
                      "  %3 = mul(%1, %2) : f32[2,2]\n"
                      "  output \"y\" = %3\n"
                      "}\n");
  assert_int_equal(pass_fuse_batched(g, g->nodes[3], 1, 2), 0);
  pass_fusion f;
  tfu_fuse(g, &f);
  assert_int_equal(group(&f, 3), -1);
  assert_true(group(&f, 1) >= 0);
  assert_int_equal(group(&f, 1), group(&f, 2));
  pass_fusion_free(&f);
  ir_graph_destroy(g);
}

/* Per module of the zoo: the label of its one group per block in the
 * forward (NULL: no attention-labelled group expected) and of its one or
 * two backward groups per block. */
typedef struct {
  const char *name, *forward, *grad[2];
} zoo_case;

static const zoo_case zoo[] = {
    {"none", NULL, {NULL, NULL}},
    {"se", "channel-attention", {"channel-attention-grad", NULL}},
    {"eca", "channel-attention", {"channel-attention-grad", NULL}},
    {"cbam", "attention", {"attention-grad", NULL}},
    {"ham", "attention", {"attention-grad", NULL}},
    {"lgam", NULL, {NULL, NULL}},
    {"ssa", NULL, {NULL, NULL}},
    {"csm", "spatial-attention", {"spatial-attention-grad", NULL}},
    {"cam", NULL, {NULL, NULL}},
    {"sam", "spatial-attention", {"spatial-attention-grad", NULL}},
    {"csm_sc", "spatial-attention", {"spatial-attention-grad", NULL}},
    {"spatial_softmax", NULL, {NULL, NULL}},
};
#define NZOO ((int)(sizeof zoo / sizeof zoo[0]))
#define BLOCKS 9 /* ResNet-20 */

static const char *const attention_labels[] = {"channel-attention", "spatial-attention", "attention",
                                               "channel-attention-grad", "spatial-attention-grad",
                                               "attention-grad"};

/* ResNet-20 with module 'm' at batch 2 and input shape 'shape' (NULL: the
 * spec's 3x32x32): the eval forward, or (train) the whole training step. */
static ir_graph *resnet20_at(const char *m, int train, const int64_t *shape) {
  char opt[64];
  snprintf(opt, sizeof opt, "attention=%s", m);
  fe_mode mode = train ? FE_TRAIN : FE_EVAL;
  ir_graph *g = shape ? tf_lower_shape("models/resnet_cifar.lua", mode, 2, shape, opt, NULL)
                      : tf_lower("models/resnet_cifar.lua", mode, 2, opt, NULL);
  if (train) {
    ir_diag *d = ir_diag_create();
    pass_sgd_options o = {.momentum = 0.9, .weight_decay = 5e-4};
    if (pass_train_step(g, &o, 1, NULL, d) != ATTNC_OK) fail_msg("%s: %s", m, ir_diag_text(d));
    ir_diag_destroy(d);
  }
  return g;
}

static ir_graph *resnet20(const char *m, int train) { return resnet20_at(m, train, NULL); }

/* Fails unless the labels of 'c' are found once per block (and nowhere
 * else), and a module without them has no attention-labelled group. */
static void check_labels(const ir_graph *g, const pass_fusion *f, const zoo_case *c, int train) {
  const char *want[3] = {c->forward, train ? c->grad[0] : NULL, train ? c->grad[1] : NULL};
  for (size_t l = 0; l < sizeof attention_labels / sizeof attention_labels[0]; l++) {
    int expected = 0;
    for (int w = 0; w < 3; w++) expected += want[w] && !strcmp(want[w], attention_labels[l]) ? BLOCKS : 0;
    if (strcmp(c->name, "lgam") == 0) continue; /* four gates per block: checked below */
    if (tfu_count_label(f, attention_labels[l]) != expected)
      fail_msg("%s (%s): %d \"%s\" groups, want %d", c->name, train ? "train" : "eval",
               tfu_count_label(f, attention_labels[l]), attention_labels[l], expected);
  }
  for (int b = 0; b < BLOCKS; b++)
    for (int w = 0; w < 3; w++)
      if (want[w]) {
        const pass_fuse_group *gr = &f->groups[tfu_block_group(g, f, b, want[w])];
        assert_int_equal(gr->kind, PASS_FUSE_SAMPLE);
        assert_true(tfu_group_has_op(g, gr, strstr(want[w], "-grad") ? IR_OP_sigmoid_grad : IR_OP_sigmoid));
      }
}

/* Every sigmoid_grad of the step lies in a "*-grad" group. */
static void check_sigmoid_grads(const ir_graph *g, const pass_fusion *f, const char *m) {
  for (int i = 0; i < g->nnodes; i++) {
    if (g->nodes[i]->op != IR_OP_sigmoid_grad) continue;
    int gi = f->group_of[i];
    const char *label = gi >= 0 ? f->groups[gi].label : "";
    size_t n = strlen(label);
    if (n < 5 || strcmp(label + n - 5, "-grad") != 0) fail_msg("%s: sigmoid_grad %%%d in a \"%s\" group", m, i, label);
  }
}

/* One "sgd" LOOP group per param, holding its update chain (weight decay,
 * momentum, step: at least six ops) and writing the new param and momentum;
 * each BN running statistic of the backbone is a three-op LOOP group. */
static void check_optimizer(const ir_graph *g, const pass_fusion *f, const char *m) {
  int params = 0;
  for (int i = 0; i < g->nnodes; i++) {
    if (g->nodes[i]->op != IR_OP_param) continue;
    const char *p = ir_node_name(g->nodes[i]);
    char mom[256];
    snprintf(mom, sizeof mom, "optim.%s.momentum", p);
    int np = tb_output(g, p), nm = tb_output(g, mom), gi = f->group_of[np];
    if (gi < 0 || f->group_of[nm] != gi) fail_msg("%s: %s and its momentum are not in one group", m, p);
    const pass_fuse_group *gr = &f->groups[gi];
    assert_int_equal(gr->kind, PASS_FUSE_LOOP);
    assert_string_equal(gr->label, "sgd");
    assert_true(gr->nmembers >= 6);
    assert_true(gr->nouts >= 2 && gr->nouts <= 3); /* + grad.<p> when the gradient is a sum */
    params++;
  }
  assert_int_equal(tfu_count_label(f, "sgd"), params);
  for (int i = 0; i < g->noutputs; i++) {
    const char *name = g->outputs[i].name;
    if (strncmp(name, "layers.", 7) || (!strstr(name, ".bn1.running_") && !strstr(name, ".bn2.running_"))) continue;
    int gi = f->group_of[g->outputs[i].node];
    if (gi < 0) fail_msg("%s: %s is not fused", m, name);
    assert_int_equal(f->groups[gi].kind, PASS_FUSE_LOOP);
    assert_string_equal(f->groups[gi].label, "elementwise");
    assert_int_equal(f->groups[gi].nmembers, 3);
  }
}

/* Every module's eval forward: invariants and one labelled group per block. */
static void test_zoo_eval(void **state) {
  (void)state;
  for (int i = 0; i < NZOO; i++) {
    ir_graph *g = resnet20(zoo[i].name, 0);
    pass_fusion f;
    tfu_fuse(g, &f);
    check_labels(g, &f, &zoo[i], 0);
    if (!strcmp(zoo[i].name, "lgam")) assert_true(tfu_count_label(&f, "channel-attention") >= BLOCKS);
    assert_true(tfu_kernels(g, &f) < tfu_kernels(g, NULL));
    pass_fusion_free(&f);
    ir_graph_destroy(g);
  }
}

/* Every module's training step: invariants, forward and backward groups
 * per block, the SGD and running-statistic loops. */
static void test_zoo_train(void **state) {
  (void)state;
  for (int i = 0; i < NZOO; i++) {
    ir_graph *g = resnet20(zoo[i].name, 1);
    pass_fusion f;
    tfu_fuse(g, &f);
    check_labels(g, &f, &zoo[i], 1);
    /* HAM's spatial gates sit behind its BN: their gradients fuse apart */
    if (zoo[i].forward && strcmp(zoo[i].name, "ham") != 0) check_sigmoid_grads(g, &f, zoo[i].name);
    check_optimizer(g, &f, zoo[i].name);
    pass_fusion_free(&f);
    ir_graph_destroy(g);
  }
}

/* The spatial modules' training step at STL-10's 96x96 (stage maps 96, 48
 * and 24 pixels a side): each block's backward is still one group. The
 * pooled [N,2,H,W] pair and the [N,1,H,W] map are then larger than at
 * 32x32 but still a small part of the block's maps; taken for feature
 * maps, the 7x7 weight gradient stayed where autodiff put it and ended
 * the backward group there, leaving the rest to a second group that read
 * the block's map again. */
static void test_zoo_train_high_res(void **state) {
  (void)state;
  const int64_t stl10[3] = {3, 96, 96};
  for (int i = 0; i < NZOO; i++) {
    if (!zoo[i].forward || strstr(zoo[i].forward, "channel")) continue;
    ir_graph *g = resnet20_at(zoo[i].name, 1, stl10);
    pass_fusion f;
    tfu_fuse(g, &f);
    check_labels(g, &f, &zoo[i], 1);
    if (strcmp(zoo[i].name, "ham") != 0) check_sigmoid_grads(g, &f, zoo[i].name);
    pass_fusion_free(&f);
    ir_graph_destroy(g);
  }
}

/* ECA eval: each block's group is its bn2, GAP, conv1d, sigmoid, the
 * channel product, the residual add and relu (10 ops, 3 of them reshapes, 8
 * steps; the down-sampling blocks also hold their shortcut's bn, and
 * block 3 its 1x1 conv, one step each), the last one also the pooling (in
 * the relu's loop, a mean along its rows) and the classifier;
 * the stem's and every block's bn1 + relu are a group each (the stem's with
 * its small conv): 109 kernels lose 6 * 6 + 8 + 7 + 9 + 9 + 2. */
static void test_eca_eval_structure(void **state) {
  (void)state;
  ir_graph *g = resnet20("eca", 0);
  pass_fusion f;
  tfu_fuse(g, &f);
  assert_int_equal(f.ngroups, 2 * BLOCKS + 1);
  assert_int_equal(tfu_count_label(&f, "sample"), BLOCKS + 1);
  for (int i = 0; i < f.ngroups; i++) {
    const pass_fuse_group *gr = &f.groups[i];
    if (strcmp(gr->label, "sample")) continue; /* bn1 and its relu; the stem: its small conv too */
    int stem = i == 0;
    assert_int_equal(gr->nmembers, 2 + stem);
    if (stem) assert_int_equal(g->nodes[gr->members[0]]->op, IR_OP_conv2d); /* 3*16*9 = 432 weights */
    assert_int_equal(g->nodes[gr->members[stem]]->op, IR_OP_batchnorm_eval);
    assert_int_equal(g->nodes[gr->members[1 + stem]]->op, IR_OP_relu);
  }
  for (int b = 0; b < BLOCKS; b++) {
    const pass_fuse_group *gr = &f.groups[tfu_block_group(g, &f, b, "channel-attention")];
    /* the down-sampling blocks' shortcut bn joins; block 3's 1x1 conv too
     * (32*16 = 512 weights), block 6's (64*32) stays a kernel of its own */
    int extra = b == 3 ? 2 : b == 6 ? 1 : 0, last = b == BLOCKS - 1;
    ir_opcode ops[] = {IR_OP_batchnorm_eval, IR_OP_reduce_mean, IR_OP_reshape, IR_OP_conv1d, IR_OP_reshape,
                       IR_OP_sigmoid,        IR_OP_reshape,     IR_OP_mul,     IR_OP_add,    IR_OP_relu};
    assert_int_equal(gr->nmembers, 10 + extra + 3 * last);
    /* in execution order: the shortcut before the gated product, which
     * is computed in the loop that adds it */
    for (int k = 0; k < 7; k++) assert_int_equal(g->nodes[gr->members[k]]->op, ops[k]);
    if (extra == 2) assert_int_equal(g->nodes[gr->members[7]]->op, IR_OP_conv2d);
    if (extra) assert_int_equal(g->nodes[gr->members[6 + extra]]->op, IR_OP_batchnorm_eval);
    for (int k = 7; k < 10; k++) assert_int_equal(g->nodes[gr->members[k + extra]]->op, ops[k]);
    int nax;
    const int64_t *ax = ir_get_ints(g->nodes[gr->members[1]], "axes", &nax);
    assert_int_equal(nax, 2);
    assert_true(ax[0] == 2 && ax[1] == 3);
    /* mul, add, relu (and the last block's pooling): one loop cluster */
    assert_int_equal(gr->nsteps, 8 + extra + 2 * last);
    assert_int_equal(gr->step_start[gr->nsteps - 1 - 2 * last], gr->nmembers - 3 * last - 3);
    /* conv2, bn2's four tensors, conv1d weight, block input (block 3: + the
     * shortcut's conv weight and bn tensors; block 6: the shortcut conv's
     * output and bn tensors instead of the block input; last: + fc weight
     * and bias) */
    assert_int_equal(gr->nins, 7 + (b == 3 ? 5 : b == 6 ? 4 : 0) + 2 * last);
    if (!last) {
      assert_int_equal(gr->nouts, 1);
      assert_int_equal(g->nodes[gr->outs[0]]->op, IR_OP_relu);
    }
  }
  assert_int_equal(tfu_kernels(g, NULL), 109);
  assert_int_equal(tfu_kernels(g, &f), 109 - (6 * 6 + 8 + 7 + 9 + 9 + 2));
  pass_fusion_free(&f);
  ir_graph_destroy(g);
}

/* HAM eval: eval batch norm is batch-local, so each block's bn2, the whole
 * module (channel attention, both masked spatial branches with their conv
 * and BN) and the residual add + relu are one group; bn1 + relu another. */
static void test_ham_eval_structure(void **state) {
  (void)state;
  ir_graph *g = resnet20("ham", 0);
  pass_fusion f;
  tfu_fuse(g, &f);
  assert_int_equal(f.ngroups, 2 * BLOCKS + 1);
  for (int b = 0; b < BLOCKS; b++) {
    const pass_fuse_group *gr = &f.groups[tfu_block_group(g, &f, b, "attention")];
    assert_true(tfu_group_has_op(g, gr, IR_OP_conv1d));
    assert_true(tfu_group_has_op(g, gr, IR_OP_topk_mask));
    assert_true(tfu_group_has_op(g, gr, IR_OP_concat));
    int convs = 0, bns = 0;
    for (int k = 0; k < gr->nmembers; k++) {
      const ir_node *m = g->nodes[gr->members[k]];
      convs += m->op == IR_OP_conv2d && m->type.dims[1] == 1; /* (a 1x1 shortcut conv may join too) */
      bns += g->nodes[gr->members[k]]->op == IR_OP_batchnorm_eval;
    }
    assert_int_equal(convs, 2); /* one 7x7 conv per masked group */
    assert_int_equal(bns, 3 + (b == 3 || b == 6)); /* bn2, each group's spatial BN (+ shortcut's) */
    if (b < BLOCKS - 1) {       /* ends with the residual relu, the only output */
      assert_int_equal(gr->nouts, 1);
      assert_int_equal(g->nodes[gr->outs[0]]->op, IR_OP_relu);
    }
  }
  pass_fusion_free(&f);
  ir_graph_destroy(g);
}

/* ---- the order of a sample group's members ---- */

/* The step of group 'gr' that computes node 'id' (-1 if none); its member
 * count in *len. */
static int step_holding(const pass_fuse_group *gr, int id, int *len) {
  for (int st = 0, first, end; st < pass_fuse_nsteps(gr); st++) {
    pass_fuse_step(gr, st, &first, &end);
    for (int m = first; m < end; m++)
      if (gr->members[m] == id) {
        *len = end - first;
        return st;
      }
  }
  return -1;
}

/* Fuses IR text 'text' (nodes numbered as they appear in it) and checks
 * the fusion contract and that node 'lead' and the nodes ids[0..n) are in
 * one group and run in one loop step of 'len' members. Returns the step's
 * index; the group's step count in *nsteps. */
static int joined_step(const char *text, int lead, const int *ids, int n, int len, int *nsteps) {
  ir_graph *g = parse(text);
  pass_fusion f;
  tfu_fuse(g, &f);
  int grp = group(&f, lead), got = 0;
  assert_true(grp >= 0);
  const pass_fuse_group *gr = &f.groups[grp];
  int step = step_holding(gr, lead, &got);
  assert_true(step >= 0);
  assert_int_equal(got, len);
  for (int i = 0; i < n; i++) {
    int l = 0;
    assert_int_equal(group(&f, ids[i]), grp);
    if (step_holding(gr, ids[i], &l) != step) fail_msg("%%%d is not in the step of %%%d", ids[i], lead);
  }
  *nsteps = gr->nsteps;
  pass_fusion_free(&f);
  ir_graph_destroy(g);
  return step;
}

/* The JIT (fused, in that order) against the interpreter on 'text'. */
static void order_computes(const char *text) { tj_compare_text(text, 11, 2, 1e-12); }

/* Graph order splits the passes over the map: a [N,1,H,W] division sits
 * between the map's first ops, and the reshape of a channel sum between
 * them and the rest. Fusion runs the product a with the sum r, then the
 * small nodes (the reshape; the division with the sigmoid), then c, e and
 * f as one loop nest, computing e where it is read: 4 steps, where graph
 * order made 8. */
static void test_order_runs(void **state) {
  (void)state;
  const char *text = "graph @s {\n"
                     "  %x = input name=\"x\" : f64[2,8,4,4]\n"
                     "  %s = input name=\"s\" : f64[2,1,4,4]\n"
                     "  %k = const value=3 : f64[]\n"
                     "  %a = mul(%x, %x) : f64[2,8,4,4]\n"
                     "  %r = reduce_sum(%a) axes=[1] keepdims=0 : f64[2,4,4]\n"
                     "  %rr = reshape(%r) shape=[2,1,4,4] : f64[2,1,4,4]\n"
                     "  %c = mul(%a, %x) : f64[2,8,4,4]\n"
                     "  %d = div(%s, %k) : f64[2,1,4,4]\n"
                     "  %e = add(%c, %d) : f64[2,8,4,4]\n"
                     "  %t = sigmoid(%rr) : f64[2,1,4,4]\n"
                     "  %f = mul(%e, %t) : f64[2,8,4,4]\n"
                     "  output \"f\" = %f\n  output \"r\" = %r\n}\n";
  int nsteps, nsteps2;
  assert_int_equal(joined_step(text, 3, (int[]){4}, 1, 2, &nsteps), 0);
  assert_int_equal(joined_step(text, 6, (int[]){8, 10}, 2, 3, &nsteps2), 3);
  assert_int_equal(joined_step(text, 7, (int[]){9}, 1, 2, &nsteps2), 2);
  assert_int_equal(nsteps, 4);
  order_computes(text);
}

/* A [N,C] product and its reshape that autodiff emitted between two
 * passes over the map (the 1/HW scale of a gate gradient), with the
 * constant it reads right above it: they run first, the map's three ops
 * in one step after them. */
static void test_order_small_product(void **state) {
  (void)state;
  const char *text = "graph @c {\n"
                     "  %x = input name=\"x\" : f64[2,8,4,4]\n"
                     "  %g = input name=\"g\" : f64[2,8]\n"
                     "  %a = mul(%x, %x) : f64[2,8,4,4]\n"
                     "  %b = add(%a, %x) : f64[2,8,4,4]\n"
                     "  %k = const value=0.0625 : f64[]\n"
                     "  %h = mul(%g, %k) : f64[2,8]\n"
                     "  %hr = reshape(%h) shape=[2,8,1,1] : f64[2,8,1,1]\n"
                     "  %y = add(%b, %hr) : f64[2,8,4,4]\n"
                     "  output \"y\" = %y\n}\n";
  int nsteps;
  assert_int_equal(joined_step(text, 2, (int[]){3, 7}, 2, 3, &nsteps), 2);
  assert_int_equal(nsteps, 3);
  order_computes(text);
}

/* One channel of a small two-channel map (a spatial attention's conv
 * gradient) sliced between two ops over the map: the slice first, then
 * both ops in one step. */
static void test_order_slice(void **state) {
  (void)state;
  const char *text = "graph @s {\n"
                     "  %x = input name=\"x\" : f64[2,8,4,4]\n"
                     "  %p = input name=\"p\" : f64[2,2,4,4]\n"
                     "  %a = mul(%x, %x) : f64[2,8,4,4]\n"
                     "  %s = slice(%p) axis=1 start=1 end=2 step=1 : f64[2,1,4,4]\n"
                     "  %y = mul(%a, %s) : f64[2,8,4,4]\n"
                     "  output \"y\" = %y\n}\n";
  int nsteps;
  assert_int_equal(joined_step(text, 2, (int[]){4}, 1, 2, &nsteps), 1);
  assert_int_equal(nsteps, 2);
  order_computes(text);
}

/* Two channel sums of the same samples, the first one's small consumers
 * between them in graph order: both sums are one pass (a, r1, b, r2), the
 * small nodes after it one loop step. */
static void test_order_two_sums(void **state) {
  (void)state;
  const char *text = "graph @r {\n"
                     "  %x = input name=\"x\" : f64[2,8,4,4]\n"
                     "  %w = input name=\"w\" : f64[2,8,4,4]\n"
                     "  %a = mul(%x, %x) : f64[2,8,4,4]\n"
                     "  %r1 = reduce_sum(%a) axes=[1] keepdims=1 : f64[2,1,4,4]\n"
                     "  %s1 = sigmoid(%r1) : f64[2,1,4,4]\n"
                     "  %s2 = relu(%s1) : f64[2,1,4,4]\n"
                     "  %b = mul(%x, %w) : f64[2,8,4,4]\n"
                     "  %r2 = reduce_sum(%b) axes=[1] keepdims=1 : f64[2,1,4,4]\n"
                     "  %z = add(%s2, %r2) : f64[2,1,4,4]\n"
                     "  output \"z\" = %z\n}\n";
  int nsteps;
  assert_int_equal(joined_step(text, 2, (int[]){3, 6, 7}, 3, 4, &nsteps), 0);
  assert_int_equal(joined_step(text, 4, (int[]){5, 8}, 2, 3, &nsteps), 1);
  assert_int_equal(nsteps, 2);
  order_computes(text);
}

/* Sums along the rows: a channel's sum and mean over H,W (a BN's
 * per-sample sums, a global average pooling) are taken in the loop that
 * computes their operand; a max over H,W (no reassociation: NaN
 * propagation) is a step of its own after it. */
static void test_order_spatial_sums(void **state) {
  (void)state;
  const char *text = "graph @p {\n"
                     "  %x = input name=\"x\" : f64[2,8,4,4]\n"
                     "  %w = input name=\"w\" : f64[2,8,4,4]\n"
                     "  %a = mul(%x, %w) : f64[2,8,4,4]\n"
                     "  %s = reduce_sum(%a) axes=[2,3] keepdims=0 : f64[2,8]\n"
                     "  %m = reduce_mean(%a) axes=[2,3] keepdims=1 : f64[2,8,1,1]\n"
                     "  %mx = reduce_max(%a) axes=[2,3] keepdims=1 : f64[2,8,1,1]\n"
                     "  %b = add(%m, %mx) : f64[2,8,1,1]\n"
                     "  output \"s\" = %s\n  output \"b\" = %b\n}\n";
  int nsteps;
  assert_int_equal(joined_step(text, 2, (int[]){3, 4}, 2, 3, &nsteps), 0);
  assert_int_equal(joined_step(text, 5, NULL, 0, 1, &nsteps), 1);
  assert_int_equal(nsteps, 3);
  order_computes(text);
}

/* HAM's pooling of a masked map: the top-k mask of the gate between the
 * gated map and the masked product, and the mean's 1/C scale between the
 * channel sum and the channel max. The product, the masked product and
 * both channel reductions are one loop step, after the three small nodes
 * (the gate's reshape, the mask and its reshape). */
static void test_order_masked_pooling(void **state) {
  (void)state;
  const char *text = "graph @m {\n"
                     "  %x = input name=\"x\" : f64[2,8,4,4]\n"
                     "  %g = input name=\"g\" : f64[2,8]\n"
                     "  %gr = reshape(%g) shape=[2,8,1,1] : f64[2,8,1,1]\n"
                     "  %a = mul(%x, %gr) : f64[2,8,4,4]\n"
                     "  %m = topk_mask(%g) axis=1 k=3 : f64[2,8]\n"
                     "  %mr = reshape(%m) shape=[2,8,1,1] : f64[2,8,1,1]\n"
                     "  %b = mul(%a, %mr) : f64[2,8,4,4]\n"
                     "  %s = reduce_sum(%b) axes=[1] keepdims=1 : f64[2,1,4,4]\n"
                     "  %k = const value=0.125 : f64[]\n"
                     "  %sm = mul(%s, %k) : f64[2,1,4,4]\n"
                     "  %mx = reduce_max(%b) axes=[1] keepdims=1 : f64[2,1,4,4]\n"
                     "  %o = concat(%sm, %mx) axis=1 : f64[2,2,4,4]\n"
                     "  output \"o\" = %o\n}\n";
  int nsteps;
  assert_int_equal(joined_step(text, 3, (int[]){6, 7, 10}, 3, 4, &nsteps), 3);
  assert_int_equal(nsteps, 6);
  order_computes(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_eca_tiny_one_group),   cmocka_unit_test(test_big_conv_stays_alone),
      cmocka_unit_test(test_batched_rules),        cmocka_unit_test(test_not_batch_local),
      cmocka_unit_test(test_outside_user_blocks),  cmocka_unit_test(test_merge_needs_both),
      cmocka_unit_test(test_member_cap),           cmocka_unit_test(test_argument_cap),
      cmocka_unit_test(test_shared_operand_not_merged), cmocka_unit_test(test_eca_eval_structure),
      cmocka_unit_test(test_ham_eval_structure),        cmocka_unit_test(test_zoo_eval),
      cmocka_unit_test(test_zoo_train),            cmocka_unit_test(test_zoo_train_high_res),
      cmocka_unit_test(test_order_runs),           cmocka_unit_test(test_order_small_product),
      cmocka_unit_test(test_order_slice),          cmocka_unit_test(test_order_two_sums),
      cmocka_unit_test(test_order_spatial_sums),
      cmocka_unit_test(test_order_masked_pooling),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
