/* Tests of the IR text form and Graphviz output: round trips of graphs built
 * with the C API (every op), exact printing of floats, strings and
 * locations, forward references, and structural checks of the dot text. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ir.h"
#include "util_text.h"

/* Parses 'text', asserting success; caller destroys. */
static ir_graph *parse_ok(const char *text) {
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, "t.ir", d);
  if (!g) fail_msg("parse failed:\n%s\ntext:\n%s", ir_diag_text(d), text);
  assert_int_equal(ir_diag_count(d), 0);
  ir_diag_destroy(d);
  return g;
}

/* Asserts print(parse(print(g))) == print(g); returns print(g) (caller frees). */
static char *assert_round_trip(const ir_graph *g) {
  char *t1 = ir_print(g);
  assert_non_null(t1);
  ir_graph *g2 = parse_ok(t1);
  char *t2 = ir_print(g2);
  assert_string_equal(t1, t2);
  ir_graph_destroy(g2);
  free(t2);
  return t1;
}

/* Asserts that two graphs hold the same nodes, attributes, types, locations
 * and outputs (NaN equals NaN, -0 differs from 0). */
static void assert_same_graph(const ir_graph *a, const ir_graph *b) {
  assert_string_equal(a->name, b->name);
  assert_int_equal(a->nnodes, b->nnodes);
  for (int i = 0; i < a->nnodes; i++) {
    const ir_node *x = a->nodes[i], *y = b->nodes[i];
    assert_int_equal(y->id, i);
    assert_int_equal(x->op, y->op);
    assert_int_equal(x->nin, y->nin);
    for (int k = 0; k < x->nin; k++) assert_int_equal(x->in[k], y->in[k]);
    assert_true(ir_type_equal(&x->type, &y->type));
    const ir_op_info *info = ir_op_info_get(x->op);
    for (int s = 0; s < info->nattrs; s++) {
      const ir_attr *p = &x->attrs[s], *q = &y->attrs[s];
      assert_int_equal(q->set, 1);
      switch (info->attrs[s].kind) {
      case IR_ATTR_INT: assert_int_equal(p->ints[0], q->ints[0]); break;
      case IR_ATTR_INTS:
        assert_int_equal(p->n, q->n);
        assert_memory_equal(p->ints, q->ints, (size_t)p->n * sizeof p->ints[0]);
        break;
      case IR_ATTR_FLOAT:
        if (isnan(p->f)) assert_true(isnan(q->f));
        else assert_memory_equal(&p->f, &q->f, sizeof p->f);
        break;
      case IR_ATTR_STR: assert_string_equal(p->s, q->s); break;
      }
    }
    assert_true((x->loc.file == NULL) == (y->loc.file == NULL));
    if (x->loc.file) {
      assert_string_equal(x->loc.file, y->loc.file);
      assert_int_equal(x->loc.line, y->loc.line);
    }
    assert_true((x->loc.scope == NULL) == (y->loc.scope == NULL));
    if (x->loc.scope) assert_string_equal(x->loc.scope, y->loc.scope);
  }
  assert_int_equal(a->noutputs, b->noutputs);
  for (int i = 0; i < a->noutputs; i++) {
    assert_string_equal(a->outputs[i].name, b->outputs[i].name);
    assert_int_equal(a->outputs[i].node, b->outputs[i].node);
  }
}

/* The every-op graph survives print -> parse unchanged, and every op of
 * ops.def appears in it. */
static void test_all_ops_round_trip(void **state) {
  (void)state;
  ir_diag *d = ir_diag_create();
  ir_graph *g = textutil_all_ops_graph(d);
  if (!g) fail_msg("%s", ir_diag_text(d));
  int seen[IR_OP_COUNT] = {0};
  for (int i = 0; i < g->nnodes; i++) seen[g->nodes[i]->op] = 1;
  for (int op = 0; op < IR_OP_COUNT; op++)
    if (!seen[op]) fail_msg("op %s is missing from the round-trip graph", ir_op_info_get((ir_opcode)op)->name);
  char *text = assert_round_trip(g);
  ir_graph *g2 = parse_ok(text);
  assert_same_graph(g, g2);
  ir_graph_destroy(g2);
  free(text);
  ir_graph_destroy(g);
  ir_diag_destroy(d);
}

/* Returns the printed line of node %i of 'text' (static buffer). */
static const char *node_line(const char *text, int i) {
  static char line[512];
  char key[32];
  snprintf(key, sizeof key, "  %%%d = ", i);
  const char *p = strstr(text, key);
  assert_non_null(p);
  size_t n = strcspn(p, "\n");
  assert_true(n < sizeof line);
  memcpy(line, p, n);
  line[n] = 0;
  return line;
}

/* Floats print in their shortest exact form, strings with escapes, and
 * locations as trailing comments; all hand-written expectations. */
static void test_print_exact_lines(void **state) {
  (void)state;
  ir_diag *d = ir_diag_create();
  ir_graph *g = textutil_all_ops_graph(d);
  assert_non_null(g);
  char *t = ir_print(g);
  assert_true(!strncmp(t, "graph @all_ops.v2 {\n", 20));
  static const char *const lines[] = {
      "  %0 = input name=\"x\" : f32[2,4,8,8]  # models/resnet_cifar.lua:12",
      "  %1 = const value=0.1 : f32[]",
      "  %2 = const value=1e-05 : f32[]",
      "  %3 = const value=-0 : f64[]",
      "  %4 = const value=1e+300 : f32[]",
      "  %5 = const value=inf : f64[]",
      "  %6 = const value=-inf : f32[]",
      "  %7 = const value=nan : f64[]",
      "  %8 = const value=5e-324 : f32[]",
      "  %9 = const value=0.3333333333333333 : f64[]",
      "  %10 = const value=123456789 : f32[]",
      "  %11 = const value=-2.5 : f64[]",
      "  %12 = param name=\"w\\\"q\\\\\\n\\t\\x01\\x7f caf\xc3\xa9 #x\" : f32[0,9223372036854775807]",
      "  %13 = neg(%0) : f32[2,4,8,8]",
  };
  for (int i = 0; i < (int)(sizeof lines / sizeof lines[0]); i++) assert_string_equal(node_line(t, i), lines[i]);
  /* the conv2d, its non-default attributes in op-table order and its location */
  const char *conv = strstr(t, "conv2d(");
  assert_non_null(conv);
  assert_true(!strncmp(conv, "conv2d(%0, %", 12));
  assert_non_null(strstr(conv, ") stride=[2,1] pad=[1,2] dilation=[1,2] groups=2 : f32[2,8,4,8]  "
                               "# models/all ops.lua:31 in layers.0.conv1\n"));
  assert_non_null(strstr(t, "batchnorm_eval(%0, %"));
  assert_non_null(strstr(t, "eps=1e+300 : f32[2,4,8,8]  # in layers.0.bn\n"));
  assert_non_null(strstr(t, " = avg_pool2d(%0) kernel=[2,2] stride=[2,1] pad=[0,0] : f32[2,4,4,7]  # m.lua:7\n"));
  assert_non_null(strstr(t, " = pad(%0) pads=[0,0,0,0,1,2,3,4] value=-0 : f32[2,4,11,15]\n"));
  assert_non_null(strstr(t, " = reduce_sum(%0) axes=[2,3] keepdims=1 : f32[2,4,1,1]\n"));
  assert_non_null(strstr(t, " = cast(%0) to=\"f64\" : f64[2,4,8,8]\n"));
  assert_non_null(strstr(t, " = cross_entropy(%"));
  /* outputs in order, with escaped names */
  char tail[128];
  snprintf(tail, sizeof tail, "  output \"logits\" = %%%d\n  output \"odd \\\"name\\\"\\n\" = %%0\n"
                              "  output \"\" = %%1\n}\n", g->nnodes - 1);
  assert_string_equal(t + strlen(t) - strlen(tail), tail);
  free(t);
  ir_graph_destroy(g);
  ir_diag_destroy(d);
}

static const char example[] =
    "graph @forward {\n"
    "  %0 = input name=\"input\" : f32[4,3,32,32]\n"
    "  %1 = param name=\"conv1.weight\" : f32[16,3,3,3]  # models/resnet_cifar.lua:12 in conv1\n"
    "  %2 = conv2d(%0, %1) stride=[1,1] pad=[1,1] dilation=[1,1] groups=1 : f32[4,16,32,32]  "
    "# models/resnet_cifar.lua:31 in layers.0.conv1\n"
    "  %3 = const value=0.5 : f32[]\n"
    "  %4 = reduce_mean(%2) axes=[2,3] keepdims=0 : f32[4,16]\n"
    "  %5 = concat(%4, %4, %4) axis=1 : f32[4,48]\n"
    "  output \"logits\" = %4\n"
    "}\n";

/* The documented example is in printed form already: it prints back byte for
 * byte, and its locations, attributes and types are read. */
static void test_example_is_canonical(void **state) {
  (void)state;
  ir_graph *g = parse_ok(example);
  char *t = ir_print(g);
  assert_string_equal(t, example);
  assert_string_equal(g->name, "forward");
  assert_int_equal(g->nnodes, 6);
  assert_int_equal(g->nodes[2]->op, IR_OP_conv2d);
  int n;
  const int64_t *pad = ir_get_ints(g->nodes[2], "pad", &n);
  assert_int_equal(n, 2);
  assert_int_equal(pad[0], 1);
  assert_string_equal(g->nodes[1]->loc.file, "models/resnet_cifar.lua");
  assert_int_equal(g->nodes[1]->loc.line, 12);
  assert_string_equal(g->nodes[1]->loc.scope, "conv1");
  assert_null(g->nodes[0]->loc.file);
  assert_int_equal(g->nodes[4]->type.rank, 2);
  assert_int_equal(g->nodes[4]->type.dims[1], 16);
  assert_int_equal(g->nodes[5]->nin, 3);
  assert_int_equal(g->outputs[0].node, 4);
  free(t);
  ir_graph_destroy(g);
}

/* Named values, forward references, attributes out of order, defaults,
 * extra blanks, comments, CRLF and a missing final newline are accepted,
 * and print in canonical form. */
static void test_lenient_input(void **state) {
  (void)state;
  const char *text = "# leading comment\r\n"
                     "\r\n"
                     "graph @g {   # header comment\r\n"
                     "\t%y = relu(%x.in)  :  f32[2]   # not a location\r\n"
                     "%x.in=input name=\"x\":f32[2]\r\n"
                     "  %s = slice( %y ) step=1 end=2 axis=0 start=1 : f32[1]  # in head\r\n"
                     "  %k = const value=1 : f32[]  #m.lua:3\r\n"
                     "  output \"out\" = %s   # trailing\r\n"
                     "}  # done";
  ir_graph *g = parse_ok(text);
  char *t = ir_print(g);
  assert_string_equal(t, "graph @g {\n"
                         "  %0 = relu(%1) : f32[2]\n"
                         "  %1 = input name=\"x\" : f32[2]\n"
                         "  %2 = slice(%0) axis=0 start=1 end=2 step=1 : f32[1]  # in head\n"
                         "  %3 = const value=1 : f32[]\n"
                         "  output \"out\" = %2\n"
                         "}\n");
  /* the forward reference is kept as a later id: the verifier's business */
  assert_int_equal(g->nodes[0]->in[0], 1);
  assert_null(g->nodes[2]->loc.file);
  assert_string_equal(g->nodes[2]->loc.scope, "head");
  assert_null(g->nodes[3]->loc.file);
  free(t);
  ir_graph_destroy(g);
}

/* Missing attributes with defaults take them: reduce_sum keepdims=0,
 * conv2d stride/pad/dilation/groups, batchnorm eps=1e-05. */
static void test_defaults_filled(void **state) {
  (void)state;
  ir_graph *g = parse_ok("graph @d {\n"
                         "  %0 = input name=\"x\" : f32[1,2,3,3]\n"
                         "  %1 = param name=\"w\" : f32[2,2,1,1]\n"
                         "  %2 = conv2d(%0, %1) : f32[1,2,3,3]\n"
                         "  %3 = reduce_sum(%2) axes=[1] : f32[1,3,3]\n"
                         "}\n");
  char *t = ir_print(g);
  assert_non_null(strstr(t, "  %2 = conv2d(%0, %1) stride=[1,1] pad=[0,0] dilation=[1,1] groups=1 : f32[1,2,3,3]\n"));
  assert_non_null(strstr(t, "  %3 = reduce_sum(%2) axes=[1] keepdims=0 : f32[1,3,3]\n"));
  free(t);
  ir_graph_destroy(g);
}

/* Graphs the API can build but the text cannot name exactly still print in
 * a form that round-trips: odd graph names, unset attributes, control bytes
 * in locations, an empty graph. */
static void test_odd_graphs_round_trip(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("my graph/β");
  char *t = assert_round_trip(g);
  assert_string_equal(t, "graph @my_graph___ {\n}\n");
  free(t);
  ir_loc loc = {NULL, 0, NULL};
  int x = ir_graph_source(g, IR_OP_input, "x", 0, ir_type_make(IR_F32, 1, (int64_t[]){3}), loc)->id;
  ir_node *r = ir_graph_append(g, IR_OP_reduce_max, &x, 1, ir_graph_loc(g, "a\nb.lua", -4, "s\tt"));
  ir_graph_append(g, IR_OP_cast, &x, 1, ir_graph_loc(g, "", 0, ""));
  ir_graph_append(g, IR_OP_relu, NULL, 0, loc);
  (void)r;
  t = assert_round_trip(g);
  assert_non_null(strstr(t, "  %1 = reduce_max(%0) axes=[] keepdims=0 : f32[]  # a?b.lua:-4 in s?t\n"));
  assert_non_null(strstr(t, "  %2 = cast(%0) to=\"\" : f32[]  # :0 in \n"));
  assert_non_null(strstr(t, "  %3 = relu : f32[]\n"));
  free(t);
  ir_graph_destroy(g);
}

/* ---- Graphviz ---- */

/* Checks 'dot' is well formed: braces balance outside quoted strings, every
 * edge endpoint is declared as a node; returns the number of edges. */
static int check_dot(const char *dot) {
  assert_true(!strncmp(dot, "digraph \"", 9));
  int depth = 0, in_str = 0;
  for (const char *p = dot; *p; p++) {
    if (in_str) {
      if (*p == '\\' && p[1]) p++;
      else if (*p == '"') in_str = 0;
      continue;
    }
    if (*p == '"') in_str = 1;
    else if (*p == '{') depth++;
    else if (*p == '}') assert_true(--depth >= 0);
  }
  assert_int_equal(in_str, 0);
  assert_int_equal(depth, 0);
  int edges = 0;
  for (const char *p = strstr(dot, " -> "); p; p = strstr(p + 4, " -> ")) {
    const char *a = p;
    while (a > dot && a[-1] != ' ') a--;
    const char *b = p + 4;
    size_t blen = strcspn(b, ";");
    char decl[64];
    snprintf(decl, sizeof decl, " %.*s [", (int)(p - a), a);
    assert_non_null(strstr(dot, decl));
    snprintf(decl, sizeof decl, " %.*s [", (int)blen, b);
    assert_non_null(strstr(dot, decl));
    edges++;
  }
  return edges;
}

/* The dot text of the example has one edge per operand plus one per output,
 * labels with op, name and shape, and nested clusters by scope. */
static void test_dot_example(void **state) {
  (void)state;
  ir_graph *g = parse_ok(example);
  char *dot = ir_dot(g);
  assert_non_null(dot);
  assert_int_equal(check_dot(dot), 2 + 1 + 3 + 1);
  assert_non_null(strstr(dot, "n0 [label=\"%0 input \\\"input\\\"\\nf32[4,3,32,32]\""));
  assert_non_null(strstr(dot, "n3 [label=\"%3 const 0.5\\nf32[]\""));
  assert_non_null(strstr(dot, "n4 [label=\"%4 reduce_mean\\nf32[4,16]\"];"));
  assert_non_null(strstr(dot, "  n2 -> n4;\n"));
  assert_non_null(strstr(dot, "  n4 -> out0;\n"));
  assert_non_null(strstr(dot, "out0 [shape=ellipse, label=\"output \\\"logits\\\"\"];"));
  /* conv1 holds %1; layers holds layers.0 which holds layers.0.conv1 with %2 */
  const char *c1 = strstr(dot, "label=\"conv1\";");
  const char *l = strstr(dot, "label=\"layers\";"), *l0 = strstr(dot, "label=\"layers.0\";"),
             *l01 = strstr(dot, "label=\"layers.0.conv1\";"), *n2 = strstr(dot, "n2 [label");
  assert_true(c1 && l && l0 && l01 && n2);
  assert_true(l < l0 && l0 < l01 && l01 < n2);
  free(dot);
  ir_graph_destroy(g);
}

/* Every-op graph: every operand edge present, names with quotes and
 * newlines escaped, still well formed; dangling operands draw no edge. */
static void test_dot_all_ops(void **state) {
  (void)state;
  ir_diag *d = ir_diag_create();
  ir_graph *g = textutil_all_ops_graph(d);
  assert_non_null(g);
  int operands = 0;
  for (int i = 0; i < g->nnodes; i++) operands += g->nodes[i]->nin;
  ir_graph_add_output(g, "dangling", 100000);
  g->nodes[g->nnodes - 1]->in[0] = -7;
  char *dot = ir_dot(g);
  assert_int_equal(check_dot(dot), operands - 1 + 3);
  assert_non_null(strstr(dot, "output \\\"odd \\\"name\\\"\\n\\\"\""));
  assert_non_null(strstr(dot, "n12 [label=\"%12 param \\\"w\\\"q\\\\\\n?\?\? caf\xc3\xa9 #x\\\"\\n"
                              "f32[0,9223372036854775807]\", style=filled"));
  free(dot);
  ir_graph_destroy(g);
  ir_diag_destroy(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_ops_round_trip),  cmocka_unit_test(test_print_exact_lines),
      cmocka_unit_test(test_example_is_canonical), cmocka_unit_test(test_lenient_input),
      cmocka_unit_test(test_defaults_filled),      cmocka_unit_test(test_odd_graphs_round_trip),
      cmocka_unit_test(test_dot_example),          cmocka_unit_test(test_dot_all_ops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
