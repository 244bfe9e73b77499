/* Reverse-mode autodiff: appends to a forward graph the gradient of a scalar
 * loss with respect to every parameter (and optionally every float input),
 * as ordinary IR. One gradient rule per differentiable op, in the table
 * 'rules' below, indexed by opcode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

typedef struct {
  ir_graph *g;
  ir_diag *d;
  int *adj;      /* adjoint node id per forward node, -1 if none yet */
  char *needs;   /* forward node depends on something differentiated */
  ir_loc loc;    /* location of the forward node being differentiated */
  int err;
} ad;

/* Appends a node of 'op' at the current location (attributes at default). */
static ir_node *node(ad *a, ir_opcode op, int nin, const int *in) {
  return ir_graph_append(a->g, op, in, nin, a->loc);
}

/* Infers the type of 'n' and returns its id, or -1 after an error. */
static int done(ad *a, ir_node *n) {
  if (ir_infer_node(a->g, n, a->d)) {
    a->err = 1;
    return -1;
  }
  return n->id;
}

static int type_rank(ad *a, int id) { return a->g->nodes[id]->type.rank; }
static const ir_type *type_of(ad *a, int id) { return &a->g->nodes[id]->type; }

static int op1(ad *a, ir_opcode op, int x) { return done(a, node(a, op, 1, &x)); }
static int op2(ad *a, ir_opcode op, int x, int y) {
  int in[2] = {x, y};
  return done(a, node(a, op, 2, in));
}

/* A scalar constant of the dtype of node 'like'. */
static int scalar(ad *a, double v, int like) {
  ir_type t = ir_type_make(type_of(a, like)->dtype, 0, NULL);
  return ir_graph_source(a->g, IR_OP_const, NULL, v, t, a->loc)->id;
}

/* A constant filled with 'v' of type 't'. */
static int filled(ad *a, double v, ir_type t) { return ir_graph_source(a->g, IR_OP_const, NULL, v, t, a->loc)->id; }

static int reshape(ad *a, int x, int rank, const int64_t *dims) {
  ir_type want = ir_type_make(type_of(a, x)->dtype, rank, dims);
  if (ir_type_equal(&want, type_of(a, x))) return x;
  ir_node *n = node(a, IR_OP_reshape, 1, &x);
  ir_set_ints(n, "shape", dims, rank);
  return done(a, n);
}

static int broadcast_to(ad *a, int x, const ir_type *t) {
  ir_type want = *t;
  want.dtype = type_of(a, x)->dtype;
  if (ir_type_equal(&want, type_of(a, x))) return x;
  ir_node *n = node(a, IR_OP_broadcast_to, 1, &x);
  ir_set_ints(n, "shape", t->dims, t->rank);
  return done(a, n);
}

static int reduce_sum(ad *a, int x, const int64_t *axes, int naxes, int keep) {
  if (naxes == 0) return x;
  ir_node *n = node(a, IR_OP_reduce_sum, 1, &x);
  ir_set_ints(n, "axes", axes, naxes);
  ir_set_int(n, "keepdims", keep);
  return done(a, n);
}

/* Sums gradient 'dy' down to the shape of 't' (undoes numpy broadcasting). */
static int unbroadcast(ad *a, int dy, const ir_type *t) {
  const ir_type *g = type_of(a, dy);
  if (g->rank == t->rank && !memcmp(g->dims, t->dims, sizeof(int64_t) * (size_t)t->rank)) return dy;
  int64_t axes[IR_MAX_RANK];
  int n = 0, lead = g->rank - t->rank;
  for (int i = 0; i < g->rank; i++)
    if (i < lead || (t->dims[i - lead] == 1 && g->dims[i] != 1)) axes[n++] = i;
  int s = reduce_sum(a, dy, axes, n, 0);
  return reshape(a, s, t->rank, t->dims);
}

/* Swaps the last two axes of x. */
static int swap_last(ad *a, int x) {
  int r = type_rank(a, x);
  int64_t perm[IR_MAX_RANK];
  for (int i = 0; i < r; i++) perm[i] = i;
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  ir_node *n = node(a, IR_OP_transpose, 1, &x);
  ir_set_ints(n, "perm", perm, r);
  return done(a, n);
}

static int matmul(ad *a, int x, int y, int ta, int tb) {
  ir_node *n = node(a, IR_OP_matmul, 2, (int[]){x, y});
  ir_set_int(n, "trans_a", ta);
  ir_set_int(n, "trans_b", tb);
  return done(a, n);
}

/* Adds gradient contribution 'g' to the adjoint of node 'id'. */
static void acc(ad *a, int id, int g) {
  if (g < 0 || !a->needs[id]) return;
  a->adj[id] = a->adj[id] < 0 ? g : op2(a, IR_OP_add, a->adj[id], g);
}

/* Copies attribute slots from one node to another of an op with the same
 * leading attributes (conv2d -> conv2d_grad_input, ...). */
static void copy_attrs(ir_node *to, const ir_node *from) {
  const ir_op_info *fi = ir_op_info_get(from->op);
  for (int i = 0; i < fi->nattrs; i++) {
    const ir_attr *at = &from->attrs[i];
    switch (fi->attrs[i].kind) {
    case IR_ATTR_INT: ir_set_int(to, fi->attrs[i].name, at->ints[0]); break;
    case IR_ATTR_INTS: ir_set_ints(to, fi->attrs[i].name, at->ints, at->n); break;
    case IR_ATTR_FLOAT: ir_set_float(to, fi->attrs[i].name, at->f); break;
    case IR_ATTR_STR: ir_set_str(to, fi->attrs[i].name, at->s); break;
    }
  }
}

/* Reshapes reduced 'dy' back to keepdims form and broadcasts it to x's shape. */
static int expand_reduced(ad *a, const ir_node *n, int dy) {
  const ir_type *x = type_of(a, n->in[0]);
  int na;
  const int64_t *axes = ir_get_ints(n, "axes", &na);
  int64_t keep[IR_MAX_RANK];
  for (int i = 0; i < x->rank; i++) keep[i] = x->dims[i];
  for (int i = 0; i < na; i++) keep[axes[i] < 0 ? axes[i] + x->rank : axes[i]] = 1;
  int r = reshape(a, dy, x->rank, keep);
  return broadcast_to(a, r, x);
}

typedef void (*grad_rule)(ad *a, const ir_node *n, int dy);

static void g_neg(ad *a, const ir_node *n, int dy) { acc(a, n->in[0], op1(a, IR_OP_neg, dy)); }

static void g_abs(ad *a, const ir_node *n, int dy) {
  int x = n->in[0], z = scalar(a, 0, x);
  int sign = op2(a, IR_OP_sub, op2(a, IR_OP_gt, x, z), op2(a, IR_OP_lt, x, z));
  acc(a, x, op2(a, IR_OP_mul, dy, sign));
}

/* The ReLU gradients read the ReLU's output, not its input: y > 0 exactly
 * when x > 0 (and 0 < relu6(x) < 6 exactly when 0 < x < 6), and the output
 * is kept for the backward anyway (the next convolution's weight gradient
 * reads it), while the input often is not: a residual block's pre-ReLU sum
 * or a batch-norm output then never has to be stored or recomputed. */
static void g_relu(ad *a, const ir_node *n, int dy) { acc(a, n->in[0], op2(a, IR_OP_relu_grad, n->id, dy)); }
static void g_relu6(ad *a, const ir_node *n, int dy) { acc(a, n->in[0], op2(a, IR_OP_relu6_grad, n->id, dy)); }
static void g_sigmoid(ad *a, const ir_node *n, int dy) { acc(a, n->in[0], op2(a, IR_OP_sigmoid_grad, n->id, dy)); }
static void g_tanh(ad *a, const ir_node *n, int dy) { acc(a, n->in[0], op2(a, IR_OP_tanh_grad, n->id, dy)); }
static void g_exp(ad *a, const ir_node *n, int dy) { acc(a, n->in[0], op2(a, IR_OP_mul, dy, n->id)); }
static void g_log(ad *a, const ir_node *n, int dy) { acc(a, n->in[0], op2(a, IR_OP_div, dy, n->in[0])); }

static void g_sqrt(ad *a, const ir_node *n, int dy) {
  int half = op2(a, IR_OP_mul, dy, scalar(a, 0.5, dy));
  acc(a, n->in[0], op2(a, IR_OP_div, half, n->id));
}

/* d/dx x^(-1/2) = -1/2 y^3 */
static void g_rsqrt(ad *a, const ir_node *n, int dy) {
  int y = n->id;
  int y3 = op2(a, IR_OP_mul, y, op2(a, IR_OP_mul, y, y));
  int s = op2(a, IR_OP_mul, y3, scalar(a, -0.5, y));
  acc(a, n->in[0], op2(a, IR_OP_mul, dy, s));
}

static void g_cast(ad *a, const ir_node *n, int dy) {
  const ir_type *x = type_of(a, n->in[0]);
  if (x->dtype == IR_I64 || n->type.dtype == IR_I64) return;
  ir_node *c = node(a, IR_OP_cast, 1, &dy);
  ir_set_str(c, "to", ir_dtype_name(x->dtype));
  acc(a, n->in[0], done(a, c));
}

static void g_add(ad *a, const ir_node *n, int dy) {
  acc(a, n->in[0], unbroadcast(a, dy, type_of(a, n->in[0])));
  acc(a, n->in[1], unbroadcast(a, dy, type_of(a, n->in[1])));
}

static void g_sub(ad *a, const ir_node *n, int dy) {
  acc(a, n->in[0], unbroadcast(a, dy, type_of(a, n->in[0])));
  if (a->needs[n->in[1]]) acc(a, n->in[1], unbroadcast(a, op1(a, IR_OP_neg, dy), type_of(a, n->in[1])));
}

static void g_mul(ad *a, const ir_node *n, int dy) {
  int x = n->in[0], y = n->in[1];
  if (a->needs[x]) acc(a, x, unbroadcast(a, op2(a, IR_OP_mul, dy, y), type_of(a, x)));
  if (a->needs[y]) acc(a, y, unbroadcast(a, op2(a, IR_OP_mul, dy, x), type_of(a, y)));
}

static void g_div(ad *a, const ir_node *n, int dy) {
  int x = n->in[0], y = n->in[1];
  if (a->needs[x]) acc(a, x, unbroadcast(a, op2(a, IR_OP_div, dy, y), type_of(a, x)));
  if (a->needs[y]) {
    int t = op2(a, IR_OP_div, op2(a, IR_OP_mul, dy, n->id), y);
    acc(a, y, unbroadcast(a, op1(a, IR_OP_neg, t), type_of(a, y)));
  }
}

/* maximum/minimum: the winner takes the gradient, ties split it evenly. */
static void g_extremum(ad *a, const ir_node *n, int dy) {
  int x = n->in[0], y = n->in[1];
  ir_opcode win = n->op == IR_OP_maximum ? IR_OP_gt : IR_OP_lt;
  int tie = op2(a, IR_OP_mul, op2(a, IR_OP_eq, x, y), scalar(a, 0.5, dy));
  int wx = op2(a, IR_OP_add, op2(a, win, x, y), tie);
  if (a->needs[x]) acc(a, x, unbroadcast(a, op2(a, IR_OP_mul, dy, wx), type_of(a, x)));
  if (a->needs[y]) {
    int wy = op2(a, IR_OP_sub, scalar(a, 1, dy), wx);
    acc(a, y, unbroadcast(a, op2(a, IR_OP_mul, dy, wy), type_of(a, y)));
  }
}

static void g_where(ad *a, const ir_node *n, int dy) {
  int c = n->in[0], z = scalar(a, 0, dy);
  if (a->needs[n->in[1]])
    acc(a, n->in[1], unbroadcast(a, done(a, node(a, IR_OP_where, 3, (int[]){c, dy, z})), type_of(a, n->in[1])));
  if (a->needs[n->in[2]])
    acc(a, n->in[2], unbroadcast(a, done(a, node(a, IR_OP_where, 3, (int[]){c, z, dy})), type_of(a, n->in[2])));
}

static void g_reduce_sum(ad *a, const ir_node *n, int dy) { acc(a, n->in[0], expand_reduced(a, n, dy)); }

static void g_reduce_mean(ad *a, const ir_node *n, int dy) {
  double count = (double)ir_type_numel(type_of(a, n->in[0])) / (double)ir_type_numel(&n->type);
  int s = op2(a, IR_OP_mul, dy, scalar(a, 1.0 / count, dy));
  acc(a, n->in[0], expand_reduced(a, n, s));
}

/* max/min reductions: the gradient is shared evenly among tied extremes. */
static void g_reduce_extremum(ad *a, const ir_node *n, int dy) {
  int x = n->in[0];
  int mask = op2(a, IR_OP_eq, x, expand_reduced(a, n, n->id));
  int na;
  const int64_t *axes = ir_get_ints(n, "axes", &na);
  int cnt = reduce_sum(a, mask, axes, na, 1);
  int share = op2(a, IR_OP_div, mask, cnt);
  acc(a, x, op2(a, IR_OP_mul, share, expand_reduced(a, n, dy)));
}

static int axis_sum_keep(ad *a, int x, int64_t axis) { return reduce_sum(a, x, &axis, 1, 1); }

static void g_softmax(ad *a, const ir_node *n, int dy) {
  int y = n->id;
  int s = axis_sum_keep(a, op2(a, IR_OP_mul, dy, y), ir_get_int(n, "axis"));
  acc(a, n->in[0], op2(a, IR_OP_mul, y, op2(a, IR_OP_sub, dy, s)));
}

static void g_log_softmax(ad *a, const ir_node *n, int dy) {
  int s = axis_sum_keep(a, dy, ir_get_int(n, "axis"));
  acc(a, n->in[0], op2(a, IR_OP_sub, dy, op2(a, IR_OP_mul, op1(a, IR_OP_exp, n->id), s)));
}

/* C = op(A) op(B): dop(A) = dC op(B)^T, dop(B) = op(A)^T dC. */
static void g_matmul(ad *a, const ir_node *n, int dy) {
  int x = n->in[0], y = n->in[1];
  int ta = (int)ir_get_int(n, "trans_a"), tb = (int)ir_get_int(n, "trans_b");
  if (a->needs[x]) {
    int d = matmul(a, dy, y, 0, !tb);
    acc(a, x, ta ? swap_last(a, d) : d);
  }
  if (a->needs[y]) {
    int d = matmul(a, x, dy, !ta, 0);
    if (tb) d = swap_last(a, d);
    acc(a, y, unbroadcast(a, d, type_of(a, y)));
  }
}

static void g_conv(ad *a, const ir_node *n, int dy, ir_opcode gin, ir_opcode gw) {
  int x = n->in[0], w = n->in[1];
  const ir_type *xt = type_of(a, x), *wt = type_of(a, w);
  if (a->needs[x]) {
    ir_node *m = node(a, gin, 2, (int[]){dy, w});
    copy_attrs(m, n);
    ir_set_ints(m, "in_shape", xt->dims, xt->rank);
    acc(a, x, done(a, m));
  }
  if (a->needs[w]) {
    ir_node *m = node(a, gw, 2, (int[]){x, dy});
    copy_attrs(m, n);
    ir_set_ints(m, "kernel", wt->dims + 2, wt->rank - 2);
    acc(a, w, done(a, m));
  }
}

static void g_conv2d(ad *a, const ir_node *n, int dy) {
  g_conv(a, n, dy, IR_OP_conv2d_grad_input, IR_OP_conv2d_grad_weight);
}
static void g_conv1d(ad *a, const ir_node *n, int dy) {
  g_conv(a, n, dy, IR_OP_conv1d_grad_input, IR_OP_conv1d_grad_weight);
}

/* Axes of an [N,C,...] tensor other than the channel axis. */
static int channel_complement(int rank, int64_t *axes) {
  int k = 0;
  for (int i = 0; i < rank; i++)
    if (i != 1) axes[k++] = i;
  return k;
}

/* Per-channel [C] vector reshaped to broadcast against [N,C,...] of 'rank'. */
static int per_channel(ad *a, int v, int rank) {
  int64_t dims[IR_MAX_RANK];
  for (int i = 0; i < rank; i++) dims[i] = 1;
  dims[1] = type_of(a, v)->dims[0];
  return reshape(a, v, rank, dims);
}

static int slice(ad *a, int x, int64_t axis, int64_t start, int64_t end);

/* dx by batchnorm_train_grad; gamma's and beta's gradients, sum(dy*xhat)
 * and sum(dy), by one batchnorm_param_grad (one pass over x and dy). */
static void g_batchnorm_train(ad *a, const ir_node *n, int dy) {
  int x = n->in[0], gamma = n->in[1], beta = n->in[2];
  if (a->needs[x]) {
    ir_node *m = node(a, IR_OP_batchnorm_train_grad, 3, (int[]){x, gamma, dy});
    copy_attrs(m, n);
    acc(a, x, done(a, m));
  }
  if (!a->needs[gamma] && !a->needs[beta]) return;
  ir_node *m = node(a, IR_OP_batchnorm_param_grad, 2, (int[]){x, dy});
  copy_attrs(m, n);
  int pg = done(a, m);
  int64_t c = type_of(a, gamma)->dims[0];
  if (a->needs[gamma]) acc(a, gamma, reshape(a, slice(a, pg, 0, 0, 1), 1, &c));
  if (a->needs[beta]) acc(a, beta, reshape(a, slice(a, pg, 0, 1, 2), 1, &c));
}

static void g_batchnorm_eval(ad *a, const ir_node *n, int dy) {
  int x = n->in[0], gamma = n->in[1], beta = n->in[2], mean = n->in[3], var = n->in[4];
  int r = type_rank(a, x);
  int64_t axes[IR_MAX_RANK];
  int na = channel_complement(r, axes);
  int rstd = op1(a, IR_OP_rsqrt, op2(a, IR_OP_add, var, scalar(a, ir_get_float(n, "eps"), var)));
  if (a->needs[x]) acc(a, x, op2(a, IR_OP_mul, dy, per_channel(a, op2(a, IR_OP_mul, gamma, rstd), r)));
  if (a->needs[gamma]) {
    int xhat = op2(a, IR_OP_mul, op2(a, IR_OP_sub, x, per_channel(a, mean, r)), per_channel(a, rstd, r));
    acc(a, gamma, reduce_sum(a, op2(a, IR_OP_mul, dy, xhat), axes, na, 0));
  }
  if (a->needs[beta]) acc(a, beta, reduce_sum(a, dy, axes, na, 0));
}

static void g_max_pool2d(ad *a, const ir_node *n, int dy) {
  ir_node *m = node(a, IR_OP_max_pool2d_grad, 2, (int[]){n->in[0], dy});
  copy_attrs(m, n);
  acc(a, n->in[0], done(a, m));
}

static void g_avg_pool2d(ad *a, const ir_node *n, int dy) {
  const ir_type *xt = type_of(a, n->in[0]);
  ir_node *m = node(a, IR_OP_avg_pool2d_grad, 1, &dy);
  copy_attrs(m, n);
  ir_set_ints(m, "in_shape", xt->dims, xt->rank);
  acc(a, n->in[0], done(a, m));
}

static int slice(ad *a, int x, int64_t axis, int64_t start, int64_t end) {
  ir_node *m = node(a, IR_OP_slice, 1, &x);
  ir_set_int(m, "axis", axis);
  ir_set_int(m, "start", start);
  ir_set_int(m, "end", end);
  return done(a, m);
}

static void g_concat(ad *a, const ir_node *n, int dy) {
  int64_t axis = ir_get_int(n, "axis");
  if (axis < 0) axis += n->type.rank;
  int64_t off = 0;
  for (int i = 0; i < n->nin; i++) {
    int64_t len = type_of(a, n->in[i])->dims[axis];
    if (a->needs[n->in[i]]) acc(a, n->in[i], slice(a, dy, axis, off, off + len));
    off += len;
  }
}

static void g_slice(ad *a, const ir_node *n, int dy) {
  const ir_type *xt = type_of(a, n->in[0]);
  int64_t axis = ir_get_int(n, "axis");
  if (axis < 0) axis += xt->rank;
  ir_node *m = node(a, IR_OP_slice_grad, 1, &dy);
  copy_attrs(m, n);
  ir_set_int(m, "axis", axis);
  ir_set_int(m, "size", xt->dims[axis]);
  acc(a, n->in[0], done(a, m));
}

static void g_reshape(ad *a, const ir_node *n, int dy) {
  const ir_type *xt = type_of(a, n->in[0]);
  acc(a, n->in[0], reshape(a, dy, xt->rank, xt->dims));
}

static void g_transpose(ad *a, const ir_node *n, int dy) {
  int np;
  const int64_t *p = ir_get_ints(n, "perm", &np);
  int64_t inv[IR_MAX_RANK];
  for (int i = 0; i < np; i++) inv[p[i]] = i;
  ir_node *m = node(a, IR_OP_transpose, 1, &dy);
  ir_set_ints(m, "perm", inv, np);
  acc(a, n->in[0], done(a, m));
}

static void g_broadcast_to(ad *a, const ir_node *n, int dy) {
  acc(a, n->in[0], unbroadcast(a, dy, type_of(a, n->in[0])));
}

static void g_pad(ad *a, const ir_node *n, int dy) {
  const ir_type *xt = type_of(a, n->in[0]);
  const int64_t *p = ir_get_ints(n, "pads", NULL);
  int g = dy;
  for (int i = 0; i < xt->rank; i++)
    if (p[2 * i] || p[2 * i + 1]) g = slice(a, g, i, p[2 * i], p[2 * i] + xt->dims[i]);
  acc(a, n->in[0], g);
}

static void g_cross_entropy(ad *a, const ir_node *n, int dy) {
  acc(a, n->in[0], done(a, node(a, IR_OP_cross_entropy_grad, 3, (int[]){n->in[0], n->in[1], dy})));
}

/* The gradient rule of each differentiable op. */
static const grad_rule rules[IR_OP_COUNT] = {
    [IR_OP_neg] = g_neg,
    [IR_OP_abs] = g_abs,
    [IR_OP_relu] = g_relu,
    [IR_OP_relu6] = g_relu6,
    [IR_OP_sigmoid] = g_sigmoid,
    [IR_OP_tanh] = g_tanh,
    [IR_OP_exp] = g_exp,
    [IR_OP_log] = g_log,
    [IR_OP_sqrt] = g_sqrt,
    [IR_OP_rsqrt] = g_rsqrt,
    [IR_OP_cast] = g_cast,
    [IR_OP_add] = g_add,
    [IR_OP_sub] = g_sub,
    [IR_OP_mul] = g_mul,
    [IR_OP_div] = g_div,
    [IR_OP_maximum] = g_extremum,
    [IR_OP_minimum] = g_extremum,
    [IR_OP_where] = g_where,
    [IR_OP_reduce_sum] = g_reduce_sum,
    [IR_OP_reduce_mean] = g_reduce_mean,
    [IR_OP_reduce_max] = g_reduce_extremum,
    [IR_OP_reduce_min] = g_reduce_extremum,
    [IR_OP_softmax] = g_softmax,
    [IR_OP_log_softmax] = g_log_softmax,
    [IR_OP_matmul] = g_matmul,
    [IR_OP_conv2d] = g_conv2d,
    [IR_OP_conv1d] = g_conv1d,
    [IR_OP_batchnorm_train] = g_batchnorm_train,
    [IR_OP_batchnorm_eval] = g_batchnorm_eval,
    [IR_OP_max_pool2d] = g_max_pool2d,
    [IR_OP_avg_pool2d] = g_avg_pool2d,
    [IR_OP_concat] = g_concat,
    [IR_OP_slice] = g_slice,
    [IR_OP_reshape] = g_reshape,
    [IR_OP_transpose] = g_transpose,
    [IR_OP_broadcast_to] = g_broadcast_to,
    [IR_OP_pad] = g_pad,
    [IR_OP_cross_entropy] = g_cross_entropy,
};

/* Returns 1 if 'op' has a gradient rule. */
int pass_autodiff_has_rule(ir_opcode op) { return op < IR_OP_COUNT && rules[op] != NULL; }

/* Marks the nodes that depend on a differentiated source. */
static void mark_needs(ad *a, int nfwd, unsigned flags) {
  for (int i = 0; i < nfwd; i++) {
    const ir_node *n = a->g->nodes[i];
    int fl = n->type.dtype != IR_I64;
    if (n->op == IR_OP_param) a->needs[i] = (char)fl;
    else if (n->op == IR_OP_input) a->needs[i] = (char)(fl && (flags & PASS_AD_INPUTS));
    else if (ir_op_info_get(n->op)->flags & IR_OPF_NOGRAD) a->needs[i] = 0;
    else
      for (int k = 0; k < n->nin; k++) a->needs[i] |= a->needs[n->in[k]];
  }
}

/* Adds output "grad.<name>" for a differentiated source (zeros if unused). */
static void add_grad_output(ad *a, const ir_node *n) {
  int g = a->adj[n->id];
  if (g < 0) g = filled(a, 0, n->type);
  char name[512];
  snprintf(name, sizeof name, "grad.%s", ir_node_name(n));
  ir_graph_add_output(a->g, name, g);
}

/* Appends the gradient of scalar output 'loss' to 'g'. */
attnc_status pass_autodiff(ir_graph *g, const char *loss, unsigned flags, ir_diag *d) {
  int lid = -1;
  for (int i = 0; i < g->noutputs; i++)
    if (!strcmp(g->outputs[i].name, loss)) lid = g->outputs[i].node;
  if (lid < 0) {
    ir_diag_error(d, NULL, 0, "autodiff: graph '%s' has no output '%s'", g->name, loss);
    return ATTNC_EINVAL;
  }
  const ir_type *lt = &g->nodes[lid]->type;
  if (lt->rank != 0 || lt->dtype == IR_I64) {
    ir_diag_error(d, NULL, 0, "autodiff: output '%s' must be a float scalar", loss);
    return ATTNC_EINVAL;
  }
  int nfwd = g->nnodes;
  ad a = {g, d, malloc((size_t)nfwd * sizeof(int)), calloc((size_t)nfwd, 1), {NULL, 0, NULL}, 0};
  if (!a.adj || !a.needs) {
    free(a.adj);
    free(a.needs);
    return ATTNC_ENOMEM;
  }
  for (int i = 0; i < nfwd; i++) a.adj[i] = -1;
  mark_needs(&a, nfwd, flags);
  if (a.needs[lid]) a.adj[lid] = scalar(&a, 1.0, lid);
  for (int i = lid; i >= 0 && !a.err; i--) {
    const ir_node *n = g->nodes[i];
    if (a.adj[i] < 0 || (ir_op_info_get(n->op)->flags & (IR_OPF_SOURCE | IR_OPF_NOGRAD))) continue;
    if (!rules[n->op]) {
      ir_diag_error(d, n->loc.file, n->loc.line, "autodiff: %%%d = %s has no gradient rule", i,
                    ir_op_info_get(n->op)->name);
      a.err = 1;
      break;
    }
    a.loc = n->loc;
    rules[n->op](&a, n, a.adj[i]);
  }
  a.loc = (ir_loc){NULL, 0, NULL};
  for (int i = 0; i < nfwd && !a.err; i++) {
    const ir_node *n = g->nodes[i];
    if ((n->op == IR_OP_param || (n->op == IR_OP_input && (flags & PASS_AD_INPUTS))) && n->type.dtype != IR_I64)
      add_grad_output(&a, n);
  }
  free(a.adj);
  free(a.needs);
  return a.err ? ATTNC_EVERIFY : ATTNC_OK;
}
