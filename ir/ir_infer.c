/* Shape inference: the result type of every op from its operands and
 * attributes, with errors that name the op, its operands and their shapes. */
#include <stdio.h>
#include <string.h>

#include "ir.h"

typedef struct {
  const ir_graph *g;
  const ir_node *n;
  ir_diag *d;
} ctx;

/* Reports an error about the node of 'c', prefixed with its op and operands. */
static int fail(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ctx *c, const char *fmt, ...) {
  char msg[1024], ops[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  size_t o = 0;
  ops[0] = 0;
  for (int i = 0; i < c->n->nin && o < sizeof ops - 64; i++) {
    int id = c->n->in[i];
    char t[128] = "?";
    if (id >= 0 && id < c->g->nnodes) ir_type_format(&c->g->nodes[id]->type, t, sizeof t);
    o += (size_t)snprintf(ops + o, sizeof ops - o, "%s%%%d: %s", i ? ", " : "", id, t);
  }
  ir_diag_error(c->d, c->n->loc.file, c->n->loc.line, "%%%d = %s(%s): %s", c->n->id,
                ir_op_info_get(c->n->op)->name, ops, msg);
  return -1;
}

/* Returns the type of operand i. */
static const ir_type *arg(ctx *c, int i) { return &c->g->nodes[c->n->in[i]]->type; }

static int is_float(ir_dtype t) { return t == IR_F32 || t == IR_F64; }

/* Numpy broadcast of a and b into *out; returns 0, or -1 if incompatible. */
int ir_broadcast_shapes(const ir_type *a, const ir_type *b, ir_type *out) {
  ir_type r;
  memset(&r, 0, sizeof r);
  r.dtype = a->dtype;
  r.rank = a->rank > b->rank ? a->rank : b->rank;
  for (int i = 0; i < r.rank; i++) {
    int ia = a->rank - r.rank + i, ib = b->rank - r.rank + i;
    int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
    if (da != db && da != 1 && db != 1) return -1;
    r.dims[i] = da == 1 ? db : da;
  }
  *out = r;
  return 0;
}

/* Normalizes a possibly negative axis for 'rank'; returns -1 if out of range. */
static int norm_axis(int64_t axis, int rank) {
  if (axis < 0) axis += rank;
  return axis >= 0 && axis < rank ? (int)axis : -1;
}

static int infer_elementwise(ctx *c, ir_type *out) {
  ir_type r = *arg(c, 0);
  int first = c->n->op == IR_OP_where ? 1 : 0;
  if (first) r = *arg(c, 1);
  for (int i = 0; i < c->n->nin; i++) {
    if (i >= first && arg(c, i)->dtype != r.dtype)
      return fail(c, "operands have different dtypes");
    ir_type b;
    if (ir_broadcast_shapes(&r, arg(c, i), &b)) return fail(c, "shapes do not broadcast");
    b.dtype = r.dtype;
    r = b;
  }
  if (c->n->op == IR_OP_cast) {
    ir_dtype to;
    if (ir_dtype_parse(ir_get_str(c->n, "to") ? ir_get_str(c->n, "to") : "", &to))
      return fail(c, "cast: unknown dtype '%s'", ir_get_str(c->n, "to"));
    r.dtype = to;
  } else if (!is_float(r.dtype) && !(ir_op_info_get(c->n->op)->flags & IR_OPF_BINARY) &&
             c->n->op != IR_OP_where && c->n->op != IR_OP_neg && c->n->op != IR_OP_abs) {
    return fail(c, "needs a floating-point operand");
  }
  *out = r;
  return 0;
}

static int infer_reduction(ctx *c, ir_type *out) {
  const ir_type *x = arg(c, 0);
  int na;
  const int64_t *axes = ir_get_ints(c->n, "axes", &na);
  int keep = (int)ir_get_int(c->n, "keepdims");
  int reduced[IR_MAX_RANK] = {0};
  for (int i = 0; i < na; i++) {
    int a = norm_axis(axes[i], x->rank);
    if (a < 0) return fail(c, "axis %lld out of range for rank %d", (long long)axes[i], x->rank);
    if (reduced[a]) return fail(c, "axis %d listed twice", a);
    reduced[a] = 1;
  }
  if (keep != 0 && keep != 1) return fail(c, "keepdims must be 0 or 1");
  ir_type r;
  memset(&r, 0, sizeof r);
  r.dtype = x->dtype;
  for (int i = 0; i < x->rank; i++) {
    if (!reduced[i]) r.dims[r.rank++] = x->dims[i];
    else if (keep) r.dims[r.rank++] = 1;
    if (reduced[i] && x->dims[i] == 0 && c->n->op != IR_OP_reduce_sum)
      return fail(c, "reduction over an empty axis %d", i);
  }
  *out = r;
  return 0;
}

static int infer_axis_op(ctx *c, ir_type *out) {
  const ir_type *x = arg(c, 0);
  if (norm_axis(ir_get_int(c->n, "axis"), x->rank) < 0)
    return fail(c, "axis %lld out of range for rank %d", (long long)ir_get_int(c->n, "axis"), x->rank);
  if (!is_float(x->dtype)) return fail(c, "needs a floating-point operand");
  if (c->n->op == IR_OP_topk_mask) {
    int a = norm_axis(ir_get_int(c->n, "axis"), x->rank);
    int64_t k = ir_get_int(c->n, "k");
    if (k < 1 || k > x->dims[a])
      return fail(c, "k = %lld outside 1..%lld (size of axis %d)", (long long)k, (long long)x->dims[a], a);
  }
  *out = *x;
  return 0;
}

static int infer_matmul(ctx *c, ir_type *out) {
  const ir_type *a = arg(c, 0), *b = arg(c, 1);
  if (a->rank < 2 || b->rank < 2) return fail(c, "operands must have rank >= 2");
  if (a->dtype != b->dtype || !is_float(a->dtype)) return fail(c, "operands need one floating-point dtype");
  if (b->rank != 2 && b->rank != a->rank) return fail(c, "b must have rank 2 or the rank of a");
  if (b->rank != 2)
    for (int i = 0; i < a->rank - 2; i++)
      if (a->dims[i] != b->dims[i]) return fail(c, "batch dimension %d differs", i);
  int64_t ta = ir_get_int(c->n, "trans_a"), tb = ir_get_int(c->n, "trans_b");
  if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1)) return fail(c, "trans_a and trans_b must be 0 or 1");
  int64_t m = a->dims[a->rank - 2 + ta], ka = a->dims[a->rank - 1 - ta];
  int64_t kb = b->dims[b->rank - 2 + tb], nn = b->dims[b->rank - 1 - tb];
  if (ka != kb) return fail(c, "inner dimensions differ (%lld vs %lld)", (long long)ka, (long long)kb);
  ir_type r = *a;
  r.dims[r.rank - 2] = m;
  r.dims[r.rank - 1] = nn;
  *out = r;
  return 0;
}

/* Checks an ints attribute has 'want' entries each >= lo. */
static int check_ints(ctx *c, const char *name, int want, int64_t lo) {
  int n;
  const int64_t *v = ir_get_ints(c->n, name, &n);
  if (n != want) return fail(c, "attribute %s needs %d values, has %d", name, want, n);
  for (int i = 0; i < n; i++)
    if (v[i] < lo) return fail(c, "attribute %s[%d] = %lld, must be >= %lld", name, i, (long long)v[i], (long long)lo);
  return 0;
}

/* Output size of a sliding window. */
static int64_t window_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t dil) {
  int64_t span = dil * (k - 1) + 1;
  if (in + 2 * p < span) return 0;
  return (in + 2 * p - span) / s + 1;
}

static int infer_conv(ctx *c, ir_type *out, int sp) {
  const ir_type *x = arg(c, 0), *w = arg(c, 1);
  if (x->rank != sp + 2 || w->rank != sp + 2)
    return fail(c, "input and weight must have rank %d", sp + 2);
  if (x->dtype != w->dtype || !is_float(x->dtype)) return fail(c, "operands need one floating-point dtype");
  if (check_ints(c, "stride", sp, 1) || check_ints(c, "pad", sp, 0) || check_ints(c, "dilation", sp, 1)) return -1;
  int64_t g = ir_get_int(c->n, "groups");
  if (g < 1) return fail(c, "groups must be >= 1");
  if (x->dims[1] % g || w->dims[0] % g)
    return fail(c, "channels %lld in / %lld out not divisible by groups %lld", (long long)x->dims[1],
                (long long)w->dims[0], (long long)g);
  if (x->dims[1] / g != w->dims[1])
    return fail(c, "input has %lld channels, weight expects %lld (groups %lld)", (long long)x->dims[1],
                (long long)(w->dims[1] * g), (long long)g);
  const int64_t *st = ir_get_ints(c->n, "stride", NULL), *pd = ir_get_ints(c->n, "pad", NULL),
                *dl = ir_get_ints(c->n, "dilation", NULL);
  ir_type r = *x;
  r.dims[1] = w->dims[0];
  for (int i = 0; i < sp; i++) {
    r.dims[2 + i] = window_out(x->dims[2 + i], w->dims[2 + i], st[i], pd[i], dl[i]);
    if (r.dims[2 + i] < 1) return fail(c, "kernel larger than padded input along axis %d", 2 + i);
  }
  *out = r;
  return 0;
}

static int infer_batchnorm(ctx *c, ir_type *out) {
  const ir_type *x = arg(c, 0);
  if (x->rank < 2) return fail(c, "input must have rank >= 2");
  if (!is_float(x->dtype)) return fail(c, "needs a floating-point input");
  for (int i = 1; i < c->n->nin; i++) {
    const ir_type *p = arg(c, i);
    if (p->rank != 1 || p->dims[0] != x->dims[1] || p->dtype != x->dtype)
      return fail(c, "operand %d must be %s[%lld] (one value per channel)", i, ir_dtype_name(x->dtype),
                  (long long)x->dims[1]);
  }
  if (ir_get_float(c->n, "eps") < 0) return fail(c, "eps must be >= 0");
  *out = *x;
  return 0;
}

static int infer_pool(ctx *c, ir_type *out) {
  const ir_type *x = arg(c, 0);
  if (x->rank != 4) return fail(c, "input must be [N,C,H,W]");
  if (!is_float(x->dtype)) return fail(c, "needs a floating-point input");
  if (check_ints(c, "kernel", 2, 1) || check_ints(c, "stride", 2, 1) || check_ints(c, "pad", 2, 0)) return -1;
  const int64_t *k = ir_get_ints(c->n, "kernel", NULL), *s = ir_get_ints(c->n, "stride", NULL),
                *p = ir_get_ints(c->n, "pad", NULL);
  ir_type r = *x;
  for (int i = 0; i < 2; i++) {
    if (p[i] * 2 > k[i]) return fail(c, "pad %lld is more than half the kernel %lld", (long long)p[i], (long long)k[i]);
    r.dims[2 + i] = window_out(x->dims[2 + i], k[i], s[i], p[i], 1);
    if (r.dims[2 + i] < 1) return fail(c, "kernel larger than padded input");
  }
  *out = r;
  return 0;
}

static int infer_concat(ctx *c, ir_type *out) {
  ir_type r = *arg(c, 0);
  int a = norm_axis(ir_get_int(c->n, "axis"), r.rank);
  if (a < 0) return fail(c, "axis out of range for rank %d", r.rank);
  for (int i = 1; i < c->n->nin; i++) {
    const ir_type *t = arg(c, i);
    if (t->rank != r.rank || t->dtype != r.dtype) return fail(c, "operand %d differs in rank or dtype", i);
    for (int j = 0; j < r.rank; j++)
      if (j != a && t->dims[j] != r.dims[j]) return fail(c, "operand %d differs along axis %d", i, j);
    r.dims[a] += t->dims[a];
  }
  *out = r;
  return 0;
}

static int infer_slice(ctx *c, ir_type *out) {
  ir_type r = *arg(c, 0);
  int a = norm_axis(ir_get_int(c->n, "axis"), r.rank);
  if (a < 0) return fail(c, "axis out of range for rank %d", r.rank);
  int64_t s = ir_get_int(c->n, "start"), e = ir_get_int(c->n, "end"), st = ir_get_int(c->n, "step");
  if (st < 1) return fail(c, "step must be >= 1");
  if (s < 0 || e > r.dims[a] || s >= e)
    return fail(c, "range [%lld, %lld) invalid for axis %d of size %lld", (long long)s, (long long)e, a,
                (long long)r.dims[a]);
  r.dims[a] = (e - s + st - 1) / st;
  *out = r;
  return 0;
}

static int infer_reshape(ctx *c, ir_type *out) {
  const ir_type *x = arg(c, 0);
  int n;
  const int64_t *sh = ir_get_ints(c->n, "shape", &n);
  if (n > IR_MAX_RANK) return fail(c, "rank %d exceeds %d", n, IR_MAX_RANK);
  ir_type r = ir_type_make(x->dtype, n, sh);
  if (c->n->op == IR_OP_reshape) {
    for (int i = 0; i < n; i++)
      if (sh[i] < 0) return fail(c, "negative dimension in shape");
    if (ir_type_numel(&r) != ir_type_numel(x))
      return fail(c, "shape has %lld elements, input %lld", (long long)ir_type_numel(&r), (long long)ir_type_numel(x));
  } else {
    ir_type b;
    if (n < x->rank || ir_broadcast_shapes(x, &r, &b) || !ir_type_equal(&b, &r))
      return fail(c, "cannot broadcast to the requested shape");
  }
  *out = r;
  return 0;
}

static int infer_transpose(ctx *c, ir_type *out) {
  const ir_type *x = arg(c, 0);
  int n;
  const int64_t *p = ir_get_ints(c->n, "perm", &n);
  if (n != x->rank) return fail(c, "perm has %d entries for rank %d", n, x->rank);
  int seen[IR_MAX_RANK] = {0};
  ir_type r = *x;
  for (int i = 0; i < n; i++) {
    if (p[i] < 0 || p[i] >= n || seen[p[i]]) return fail(c, "perm is not a permutation");
    seen[p[i]] = 1;
    r.dims[i] = x->dims[p[i]];
  }
  *out = r;
  return 0;
}

static int infer_pad(ctx *c, ir_type *out) {
  const ir_type *x = arg(c, 0);
  int n;
  const int64_t *p = ir_get_ints(c->n, "pads", &n);
  if (n != 2 * x->rank) return fail(c, "pads needs %d values, has %d", 2 * x->rank, n);
  ir_type r = *x;
  for (int i = 0; i < x->rank; i++) {
    if (p[2 * i] < 0 || p[2 * i + 1] < 0) return fail(c, "negative padding");
    r.dims[i] += p[2 * i] + p[2 * i + 1];
  }
  *out = r;
  return 0;
}

static int infer_cross_entropy(ctx *c, ir_type *out) {
  const ir_type *l = arg(c, 0), *y = arg(c, 1);
  if (l->rank != 2 || !is_float(l->dtype)) return fail(c, "logits must be a float [N,K] tensor");
  if (y->rank != 1 || y->dtype != IR_I64 || y->dims[0] != l->dims[0])
    return fail(c, "labels must be i64[%lld]", (long long)l->dims[0]);
  *out = ir_type_make(l->dtype, 0, NULL);
  return 0;
}

/* Checks that the forward op of a backward op maps a tensor of dims 'x'
 * through kernel 'k' (spatial dims) to the dims 'y' (spatial part only). */
static int check_window(ctx *c, int sp, const int64_t *x, const int64_t *k, const int64_t *y, int dil) {
  const int64_t *st = ir_get_ints(c->n, "stride", NULL), *pd = ir_get_ints(c->n, "pad", NULL);
  const int64_t *dl = dil ? ir_get_ints(c->n, "dilation", NULL) : NULL;
  for (int i = 0; i < sp; i++)
    if (window_out(x[i], k[i], st[i], pd[i], dl ? dl[i] : 1) != y[i])
      return fail(c, "gradient shape %lld along spatial axis %d does not match the forward window", (long long)y[i], i);
  return 0;
}

static int infer_conv_grad(ctx *c, ir_type *out, int sp, int weight) {
  const ir_type *a = arg(c, 0), *b = arg(c, 1);
  if (a->rank != sp + 2 || b->rank != sp + 2) return fail(c, "operands must have rank %d", sp + 2);
  if (a->dtype != b->dtype || !is_float(a->dtype)) return fail(c, "operands need one floating-point dtype");
  if (check_ints(c, "stride", sp, 1) || check_ints(c, "pad", sp, 0) || check_ints(c, "dilation", sp, 1)) return -1;
  int64_t g = ir_get_int(c->n, "groups");
  if (g < 1) return fail(c, "groups must be >= 1");
  ir_type r;
  memset(&r, 0, sizeof r);
  r.dtype = a->dtype;
  r.rank = sp + 2;
  if (!weight) { /* (dy, w) -> x */
    if (check_ints(c, "in_shape", sp + 2, 1)) return -1;
    const int64_t *xs = ir_get_ints(c->n, "in_shape", NULL);
    if (xs[0] != a->dims[0] || a->dims[1] != b->dims[0] || xs[1] != b->dims[1] * g || b->dims[0] % g)
      return fail(c, "in_shape, dy and weight disagree on batch or channels");
    if (check_window(c, sp, xs + 2, b->dims + 2, a->dims + 2, 1)) return -1;
    for (int i = 0; i < sp + 2; i++) r.dims[i] = xs[i];
  } else { /* (x, dy) -> w */
    if (check_ints(c, "kernel", sp, 1)) return -1;
    const int64_t *k = ir_get_ints(c->n, "kernel", NULL);
    if (a->dims[0] != b->dims[0] || a->dims[1] % g || b->dims[1] % g)
      return fail(c, "x and dy disagree on batch, or channels not divisible by groups");
    if (check_window(c, sp, a->dims + 2, k, b->dims + 2, 1)) return -1;
    r.dims[0] = b->dims[1];
    r.dims[1] = a->dims[1] / g;
    for (int i = 0; i < sp; i++) r.dims[2 + i] = k[i];
  }
  *out = r;
  return 0;
}

static int infer_pool_grad(ctx *c, ir_type *out) {
  const ir_type *dy = arg(c, c->n->nin - 1);
  if (check_ints(c, "kernel", 2, 1) || check_ints(c, "stride", 2, 1) || check_ints(c, "pad", 2, 0)) return -1;
  ir_type r;
  if (c->n->op == IR_OP_max_pool2d_grad) {
    r = *arg(c, 0);
    if (r.dtype != dy->dtype) return fail(c, "operands need one dtype");
  } else {
    if (check_ints(c, "in_shape", 4, 1)) return -1;
    r = ir_type_make(dy->dtype, 4, ir_get_ints(c->n, "in_shape", NULL));
  }
  if (r.rank != 4 || dy->rank != 4 || r.dims[0] != dy->dims[0] || r.dims[1] != dy->dims[1])
    return fail(c, "input and gradient must be [N,C,H,W] with the same N and C");
  if (check_window(c, 2, r.dims + 2, ir_get_ints(c->n, "kernel", NULL), dy->dims + 2, 0)) return -1;
  *out = r;
  return 0;
}

static int infer_backward_misc(ctx *c, ir_type *out) {
  switch (c->n->op) {
  case IR_OP_batchnorm_train_grad: {
    const ir_type *x = arg(c, 0), *g = arg(c, 1), *dy = arg(c, 2);
    if (x->rank < 2 || !ir_type_equal(x, dy)) return fail(c, "x and dy must have one type of rank >= 2");
    if (g->rank != 1 || g->dims[0] != x->dims[1] || g->dtype != x->dtype) return fail(c, "gamma must have one value per channel");
    *out = *x;
    return 0;
  }
  case IR_OP_batchnorm_stats:
  case IR_OP_batchnorm_param_grad: {
    const ir_type *x = arg(c, 0);
    if (x->rank < 2) return fail(c, "x must have rank >= 2 (axis 1 = channels)");
    if (c->n->op == IR_OP_batchnorm_param_grad && !ir_type_equal(x, arg(c, 1)))
      return fail(c, "x and dy must have one type");
    ir_type r = {.dtype = x->dtype, .rank = 2, .dims = {2, x->dims[1]}};
    *out = r;
    return 0;
  }
  case IR_OP_cross_entropy_grad: {
    ir_type loss;
    if (infer_cross_entropy(c, &loss)) return -1;
    if (!ir_type_equal(arg(c, 2), &loss)) return fail(c, "dloss must be a scalar of the logits' dtype");
    *out = *arg(c, 0);
    return 0;
  }
  default: { /* slice_grad */
    ir_type r = *arg(c, 0);
    int a = norm_axis(ir_get_int(c->n, "axis"), r.rank);
    if (a < 0) return fail(c, "axis out of range for rank %d", r.rank);
    int64_t s = ir_get_int(c->n, "start"), e = ir_get_int(c->n, "end"), st = ir_get_int(c->n, "step"),
            size = ir_get_int(c->n, "size");
    if (st < 1 || s < 0 || e > size || s >= e || (e - s + st - 1) / st != r.dims[a])
      return fail(c, "slice [%lld:%lld:%lld] of size %lld does not give %lld entries", (long long)s, (long long)e,
                  (long long)st, (long long)size, (long long)r.dims[a]);
    r.dims[a] = size;
    *out = r;
    return 0;
  }
  }
}

/* Computes the result type of non-source node 'n'. */
int ir_infer_type(const ir_graph *g, const ir_node *n, ir_type *out, ir_diag *d) {
  ctx c = {g, n, d};
  const ir_op_info *info = ir_op_info_get(n->op);
  if (!info) {
    ir_diag_error(d, n->loc.file, n->loc.line, "%%%d: invalid opcode %d", n->id, (int)n->op);
    return -1;
  }
  if (info->flags & IR_OPF_SOURCE) {
    *out = n->type;
    return 0;
  }
  if (n->nin < info->min_in || (info->max_in >= 0 && n->nin > info->max_in))
    return fail(&c, "takes %d%s operands, has %d", info->min_in, info->max_in < 0 ? " or more" : "", n->nin);
  for (int i = 0; i < n->nin; i++)
    if (n->in[i] < 0 || n->in[i] >= g->nnodes) return fail(&c, "operand %d refers to no node", i);
  for (int i = 0; i < info->nattrs; i++)
    if (!n->attrs[i].set) return fail(&c, "attribute %s is missing", info->attrs[i].name);
  if (info->flags & (IR_OPF_UNARY | IR_OPF_BINARY | IR_OPF_ELEMENTWISE)) return infer_elementwise(&c, out);
  if (info->flags & IR_OPF_REDUCTION) return infer_reduction(&c, out);
  switch (n->op) {
  case IR_OP_softmax:
  case IR_OP_log_softmax:
  case IR_OP_topk_mask: return infer_axis_op(&c, out);
  case IR_OP_matmul: return infer_matmul(&c, out);
  case IR_OP_conv2d: return infer_conv(&c, out, 2);
  case IR_OP_conv1d: return infer_conv(&c, out, 1);
  case IR_OP_batchnorm_train:
  case IR_OP_batchnorm_eval: return infer_batchnorm(&c, out);
  case IR_OP_max_pool2d:
  case IR_OP_avg_pool2d: return infer_pool(&c, out);
  case IR_OP_concat: return infer_concat(&c, out);
  case IR_OP_slice: return infer_slice(&c, out);
  case IR_OP_reshape:
  case IR_OP_broadcast_to: return infer_reshape(&c, out);
  case IR_OP_transpose: return infer_transpose(&c, out);
  case IR_OP_pad: return infer_pad(&c, out);
  case IR_OP_cross_entropy: return infer_cross_entropy(&c, out);
  case IR_OP_conv2d_grad_input: return infer_conv_grad(&c, out, 2, 0);
  case IR_OP_conv2d_grad_weight: return infer_conv_grad(&c, out, 2, 1);
  case IR_OP_conv1d_grad_input: return infer_conv_grad(&c, out, 1, 0);
  case IR_OP_conv1d_grad_weight: return infer_conv_grad(&c, out, 1, 1);
  case IR_OP_max_pool2d_grad:
  case IR_OP_avg_pool2d_grad: return infer_pool_grad(&c, out);
  case IR_OP_batchnorm_train_grad:
  case IR_OP_batchnorm_stats:
  case IR_OP_batchnorm_param_grad:
  case IR_OP_cross_entropy_grad:
  case IR_OP_slice_grad: return infer_backward_misc(&c, out);
  default: return fail(&c, "no shape rule for this op");
  }
}

/* Infers and stores n->type. */
int ir_infer_node(ir_graph *g, ir_node *n, ir_diag *d) {
  ir_type t;
  if (ir_infer_type(g, n, &t, d)) return -1;
  n->type = t;
  return 0;
}
