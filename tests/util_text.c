/* Test helpers for the IR text form (see util_text.h). */
#include "util_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const ir_loc no_loc = {NULL, 0, NULL};

/* Appends a source node of 'op' and the given shape. */
static int src(ir_graph *g, ir_opcode op, const char *name, double value, ir_dtype dt, int rank,
               const int64_t *dims) {
  return ir_graph_source(g, op, name, value, ir_type_make(dt, rank, dims), no_loc)->id;
}

/* Appends a node of 'op' on operands a, b, c (-1 = absent). */
static ir_node *op3(ir_graph *g, ir_opcode op, int a, int b, int c) {
  int in[3] = {a, b, c};
  int n = a < 0 ? 0 : b < 0 ? 1 : c < 0 ? 2 : 3;
  return ir_graph_append(g, op, in, n, no_loc);
}

/* Sets an ints attribute from a literal list. */
#define SET_INTS(node, name, ...)                                                                              \
  do {                                                                                                     \
    const int64_t v_[] = {__VA_ARGS__};                                                                    \
    ir_set_ints((node), (name), v_, (int)(sizeof v_ / sizeof v_[0]));                                      \
  } while (0)

/* Adds the nodes that use x (f32[2,4,8,8]) and scalar c. */
static void add_elementwise(ir_graph *g, int x, int c) {
  for (int op = IR_OP_neg; op <= IR_OP_rsqrt; op++) op3(g, (ir_opcode)op, x, -1, -1);
  ir_set_str(op3(g, IR_OP_cast, x, -1, -1), "to", "f64");
  int cmp = -1;
  for (int op = IR_OP_add; op <= IR_OP_ge; op++) cmp = op3(g, (ir_opcode)op, x, c, -1)->id;
  op3(g, IR_OP_where, cmp, x, c);
  ir_node *n = op3(g, IR_OP_reduce_sum, x, -1, -1);
  SET_INTS(n, "axes", 2, 3);
  ir_set_int(n, "keepdims", 1);
  SET_INTS(op3(g, IR_OP_reduce_mean, x, -1, -1), "axes", 1);
  SET_INTS(op3(g, IR_OP_reduce_max, x, -1, -1), "axes", -1);
  n = op3(g, IR_OP_reduce_min, x, -1, -1);
  SET_INTS(n, "axes", 0, 2, 3);
  ir_set_int(n, "keepdims", 1);
  ir_set_int(op3(g, IR_OP_softmax, x, -1, -1), "axis", 1);
  ir_set_int(op3(g, IR_OP_log_softmax, x, -1, -1), "axis", -1);
  n = op3(g, IR_OP_topk_mask, x, -1, -1);
  ir_set_int(n, "axis", 1);
  ir_set_int(n, "k", 2);
}

/* Adds convolutions, normalizations and pooling on x (f32[2,4,8,8]). */
static void add_conv_family(ir_graph *g, int x) {
  int w = src(g, IR_OP_param, "conv.w", 0, IR_F32, 4, (int64_t[]){8, 2, 3, 3});
  ir_node *n = op3(g, IR_OP_conv2d, x, w, -1);
  SET_INTS(n, "stride", 2, 1);
  SET_INTS(n, "pad", 1, 2);
  SET_INTS(n, "dilation", 1, 2);
  ir_set_int(n, "groups", 2);
  n->loc = ir_graph_loc(g, "models/all ops.lua", 31, "layers.0.conv1");
  int x1 = src(g, IR_OP_input, "seq", 0, IR_F32, 3, (int64_t[]){2, 4, 10});
  int w1 = src(g, IR_OP_param, "conv1d.w", 0, IR_F32, 3, (int64_t[]){6, 2, 3});
  n = op3(g, IR_OP_conv1d, x1, w1, -1);
  SET_INTS(n, "stride", 2);
  SET_INTS(n, "pad", 1);
  SET_INTS(n, "dilation", 2);
  ir_set_int(n, "groups", 2);
  int gamma = src(g, IR_OP_param, "bn.weight", 0, IR_F32, 1, (int64_t[]){4});
  int beta = src(g, IR_OP_param, "bn.bias", 0, IR_F32, 1, (int64_t[]){4});
  int mean = src(g, IR_OP_buffer, "bn.running_mean", 0, IR_F32, 1, (int64_t[]){4});
  int var = src(g, IR_OP_buffer, "bn.running_var", 0, IR_F32, 1, (int64_t[]){4});
  ir_set_float(op3(g, IR_OP_batchnorm_train, x, gamma, beta), "eps", 0.001);
  int in5[5] = {x, gamma, beta, mean, var};
  n = ir_graph_append(g, IR_OP_batchnorm_eval, in5, 5, ir_graph_loc(g, NULL, 0, "layers.0.bn"));
  ir_set_float(n, "eps", 1e300);
  n = op3(g, IR_OP_max_pool2d, x, -1, -1);
  SET_INTS(n, "kernel", 3, 3);
  SET_INTS(n, "stride", 2, 2);
  SET_INTS(n, "pad", 1, 1);
  n = op3(g, IR_OP_avg_pool2d, x, -1, -1);
  SET_INTS(n, "kernel", 2, 2);
  SET_INTS(n, "stride", 2, 1);
  n->loc = ir_graph_loc(g, "m.lua", 7, NULL);
}

/* Adds matmul, data movement and the loss. */
static void add_data_movement(ir_graph *g, int x, int c) {
  int a = src(g, IR_OP_input, "a", 0, IR_F32, 3, (int64_t[]){2, 3, 5});
  int b = src(g, IR_OP_param, "b", 0, IR_F32, 2, (int64_t[]){4, 5});
  ir_set_int(op3(g, IR_OP_matmul, a, b, -1), "trans_b", 1);
  int bt = src(g, IR_OP_param, "bt", 0, IR_F32, 2, (int64_t[]){3, 7});
  ir_set_int(op3(g, IR_OP_matmul, a, bt, -1), "trans_a", 1);
  int in[3] = {x, x, x};
  ir_set_int(ir_graph_append(g, IR_OP_concat, in, 3, no_loc), "axis", 1);
  ir_node *n = op3(g, IR_OP_slice, x, -1, -1);
  ir_set_int(n, "axis", 2);
  ir_set_int(n, "start", 1);
  ir_set_int(n, "end", 7);
  ir_set_int(n, "step", 2);
  SET_INTS(op3(g, IR_OP_reshape, x, -1, -1), "shape", 2, 256);
  SET_INTS(op3(g, IR_OP_transpose, x, -1, -1), "perm", 0, 2, 3, 1);
  SET_INTS(op3(g, IR_OP_broadcast_to, c, -1, -1), "shape", 3, 4);
  n = op3(g, IR_OP_pad, x, -1, -1);
  SET_INTS(n, "pads", 0, 0, 0, 0, 1, 2, 3, 4);
  ir_set_float(n, "value", -0.0);
  int logits = src(g, IR_OP_input, "logits", 0, IR_F32, 2, (int64_t[]){2, 10});
  int labels = src(g, IR_OP_input, "labels", 0, IR_I64, 1, (int64_t[]){2});
  op3(g, IR_OP_cross_entropy, logits, labels, -1);
}

/* Appends one node of every op not yet in 'g' (ops added to ops.def after
 * this file was written, such as backward ops), with min_in operands x,
 * every attribute set to a value other than its default, and x's type. */
static void add_missing_ops(ir_graph *g, int x) {
  int seen[IR_OP_COUNT] = {0};
  for (int i = 0; i < g->nnodes; i++) seen[g->nodes[i]->op] = 1;
  int in[8] = {x, x, x, x, x, x, x, x};
  for (int op = 0; op < IR_OP_COUNT; op++) {
    const ir_op_info *info = ir_op_info_get((ir_opcode)op);
    if (seen[op] || info->min_in > 8) continue;
    ir_node *n = ir_graph_append(g, (ir_opcode)op, in, info->min_in, no_loc);
    for (int a = 0; a < info->nattrs; a++) {
      const ir_attr_spec *spec = &info->attrs[a];
      int64_t v[IR_MAX_INTS];
      int count = spec->has_default && spec->n > 0 ? spec->n : 2;
      for (int k = 0; k < count; k++) v[k] = (spec->has_default ? spec->ints[k] : 0) + k + 2;
      if (spec->kind == IR_ATTR_INT) ir_set_int(n, spec->name, (spec->has_default ? spec->ints[0] : 0) + 3);
      if (spec->kind == IR_ATTR_INTS) ir_set_ints(n, spec->name, v, count);
      if (spec->kind == IR_ATTR_FLOAT) ir_set_float(n, spec->name, spec->f == 0.25 ? 0.5 : 0.25);
      if (spec->kind == IR_ATTR_STR) ir_set_str(n, spec->name, "s\"1");
    }
    n->type = g->nodes[x]->type;
  }
}

/* Builds the every-op graph; see util_text.h. */
ir_graph *textutil_all_ops_graph(ir_diag *d) {
  ir_graph *g = ir_graph_create("all_ops.v2");
  int x = src(g, IR_OP_input, "x", 0, IR_F32, 4, (int64_t[]){2, 4, 8, 8});
  g->nodes[x]->loc = ir_graph_loc(g, "models/resnet_cifar.lua", 12, NULL);
  int c = src(g, IR_OP_const, NULL, 0.1, IR_F32, 0, NULL);
  const double values[] = {1e-05, -0.0, 1e300, INFINITY, -INFINITY, NAN, 5e-324, 1.0 / 3, 123456789.0, -2.5};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
    src(g, IR_OP_const, NULL, values[i], i % 2 ? IR_F64 : IR_F32, 0, NULL);
  src(g, IR_OP_param, "w\"q\\\n\t\x01\x7f caf\xc3\xa9 #x", 0, IR_F32, 2, (int64_t[]){0, 9223372036854775807});
  add_elementwise(g, x, c);
  add_conv_family(g, x);
  add_data_movement(g, x, c);
  for (int i = 0; i < g->nnodes; i++)
    if (ir_infer_node(g, g->nodes[i], d)) {
      ir_graph_destroy(g);
      return NULL;
    }
  add_missing_ops(g, x);
  ir_graph_add_output(g, "logits", g->nnodes - 1);
  ir_graph_add_output(g, "odd \"name\"\n", x);
  ir_graph_add_output(g, "", c);
  return g;
}

/* Returns the bytes of file 'path' NUL-terminated (caller frees), or NULL. */
char *textutil_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (n + 1 == cap) {
      char *b = realloc(buf, cap *= 2);
      if (!b) free(buf);
      buf = b;
    }
  }
  fclose(f);
  if (!buf) return NULL;
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}
