/* Batch-norm split, run on a training step after autodiff: each
 * batchnorm_train(x, gamma, beta) becomes elementwise ops
 *   y = (x - mean) * A + beta,  A = gamma / sqrt(var + eps) per channel,
 * with mean and var the rows of batchnorm_stats(x), the node the running
 * averages already read. The normalization is then batch-local and plain
 * elementwise: fusion runs it in one loop with the ReLU or attention gate
 * after it, and x is read once for its statistics rather than twice. (As
 * one batchnorm_eval node it was a step of its own in a sample group, its
 * output stored and read back by the ReLU's loop.) This must never run
 * before autodiff: no gradient flows through batchnorm_stats.
 *
 * The backward splits the same way: batchnorm_train_grad(x, gamma, dy)
 * becomes elementwise ops on x, dy and per-channel vectors from the rows of
 * batchnorm_stats(x) and of [sum(dy*xhat); sum(dy)] (what gamma's and
 * beta's gradients, batchnorm_param_grad(x, dy), read too):
 *   dx = gamma*rstd * (dy - sum(dy)/M - (x - mean) * rstd*sum(dy*xhat)/M)
 * with rstd = 1/sqrt(var + eps) and M the count per channel, computed as
 * A*dy + B*(x - mean) + D with A, B, D per channel (one small loop). The
 * kernel no longer makes its own statistics pass over x and dy, and the
 * rest is one loop over the feature map. The two sums are taken per
 * sample, then over the batch (param_grad_sums), for every batch norm of
 * more than one channel (batchnorm_param_grad nodes included), so that
 * they fuse into the sample group that computes dy: where that group reads
 * x anyway, the pass over x and dy that batchnorm_param_grad made is gone.
 * A one-channel BN (the [N,1,H,W] map of a spatial attention) keeps its
 * gradient op: its own statistics pass is over a small map, and as a
 * kernel of its own its output can feed the conv gradient inside the
 * attention's backward group; split, the batch-norm apply and that conv
 * would form a group of their own (their output also feeds the weight
 * gradient), cutting the attention backward in two. */
#include <stdlib.h>

#include "passes.h"

/* Appends slice rows [row, row+1) of stats [2,C] reshaped to [C]. */
static int stats_row(ir_graph *g, int stats, int row, ir_loc loc) {
  const ir_type *st = &g->nodes[stats]->type;
  ir_node *s = ir_graph_append(g, IR_OP_slice, &stats, 1, loc);
  ir_set_int(s, "axis", 0);
  ir_set_int(s, "start", row);
  ir_set_int(s, "end", row + 1);
  s->type = (ir_type){.dtype = st->dtype, .rank = 2, .dims = {1, st->dims[1]}};
  int sid = s->id;
  ir_node *r = ir_graph_append(g, IR_OP_reshape, &sid, 1, loc);
  ir_set_ints(r, "shape", &st->dims[1], 1);
  r->type = (ir_type){.dtype = st->dtype, .rank = 1, .dims = {st->dims[1]}};
  return r->id;
}

/* Appends elementwise 'op' on the 'nin' operands 'in' to 'g' with its
 * inferred type; -1 if an operand is -1 or they do not broadcast. */
static int ew_node(ir_graph *g, ir_opcode op, const int *in, int nin, ir_loc loc) {
  for (int k = 0; k < nin; k++)
    if (in[k] < 0) return -1;
  ir_node *n = ir_graph_append(g, op, in, nin, loc);
  return ir_infer_node(g, n, NULL) ? -1 : n->id;
}

static int ew(ir_graph *g, ir_opcode op, int a, int b, ir_loc loc) { return ew_node(g, op, (int[]){a, b}, 2, loc); }
static int ew1(ir_graph *g, ir_opcode op, int a, ir_loc loc) { return ew_node(g, op, &a, 1, loc); }

/* Per-channel vector 'v' [C] reshaped to broadcast over axis 1 of a value
 * of rank 'rank' ([C,1,...,1]; [C] itself for rank 2). */
static int per_channel(ir_graph *g, int v, int rank, ir_loc loc) {
  if (v < 0 || rank <= 2) return v;
  const ir_type *t = &g->nodes[v]->type;
  int64_t shape[IR_MAX_RANK] = {t->dims[0]};
  for (int i = 1; i < rank - 1; i++) shape[i] = 1;
  ir_node *r = ir_graph_append(g, IR_OP_reshape, &v, 1, loc);
  ir_set_ints(r, "shape", shape, rank - 1);
  r->type = (ir_type){.dtype = t->dtype, .rank = rank - 1};
  for (int i = 0; i < rank - 1; i++) r->type.dims[i] = shape[i];
  return r->id;
}

/* y of batchnorm_train 'n' (operands x, gamma, beta already mapped in
 * 'in') as elementwise ops on the rows of 'stats' (mean, var):
 * y = (x + (-mean))*A + beta with A = gamma*rstd per channel; -1 on
 * failure. x + (-mean) is exactly x - mean, written so that it is not the
 * same node as the gradient's x - mean: merged, that map would be stored
 * from the forward to the backward, where x itself is kept anyway. */
static int apply(ir_graph *g, const ir_node *n, const int *in, int stats) {
  ir_loc loc = n->loc;
  int rank = g->nodes[in[0]]->type.rank;
  ir_type scalar = {.dtype = n->type.dtype, .rank = 0};
  int mean = stats_row(g, stats, 0, loc), var = stats_row(g, stats, 1, loc);
  int c_eps = ir_graph_source(g, IR_OP_const, NULL, ir_get_float(n, "eps"), scalar, loc)->id;
  int a = ew(g, IR_OP_mul, in[1], ew1(g, IR_OP_rsqrt, ew(g, IR_OP_add, var, c_eps, loc), loc), loc);
  int xc = ew(g, IR_OP_add, in[0], per_channel(g, ew1(g, IR_OP_neg, mean, loc), rank, loc), loc);
  return ew(g, IR_OP_add, ew(g, IR_OP_mul, xc, per_channel(g, a, rank, loc), loc), per_channel(g, in[2], rank, loc), loc);
}

/* Appends op 'op' on the 'nin' operands 'in' with its int attribute(s)
 * 'attr' ('nv' values, a list when 'list') and its inferred type; -1 on
 * failure. */
static int attr_node(ir_graph *g, ir_opcode op, const int *in, int nin, const char *attr, const int64_t *v, int nv,
                     int list, ir_loc loc) {
  for (int k = 0; k < nin; k++)
    if (in[k] < 0) return -1;
  ir_node *n = ir_graph_append(g, op, in, nin, loc);
  if (list)
    ir_set_ints(n, attr, v, nv);
  else
    ir_set_int(n, attr, v[0]);
  return ir_infer_node(g, n, NULL) ? -1 : n->id;
}

/* [sum(dy*xhat); sum(dy)] per channel of x (rank >= 3, operands already
 * mapped) as sums per sample, then over the batch: xhat = (x - mean)*rstd
 * from the rows of 'stats'. Each sample's sums are batch-local, so they
 * join the sample group that makes dy and are taken while its loop still
 * holds the sample, instead of a pass of their own over x and dy; only the
 * [N,2,C] partials are added over the batch. The centering is y's
 * x + (-mean), which pass_remat recomputes next to the sums from x, not
 * dx's x - mean: merged with that, it would be stored by the sums' group
 * for dx, which runs after the batch sum. -1 on failure. */
static int param_grad_sums(ir_graph *g, int x, int dy, int stats, double eps, ir_loc loc) {
  const ir_type *xt = &g->nodes[x]->type;
  int rank = xt->rank;
  int64_t n = xt->dims[0], c = xt->dims[1], axes[IR_MAX_RANK], row[3] = {n, 1, c}, batch = 0;
  for (int i = 2; i < rank; i++) axes[i - 2] = i;
  ir_type scalar = {.dtype = xt->dtype, .rank = 0};
  int mean = stats_row(g, stats, 0, loc), var = stats_row(g, stats, 1, loc);
  int c_eps = ir_graph_source(g, IR_OP_const, NULL, eps, scalar, loc)->id;
  int rstd = ew1(g, IR_OP_rsqrt, ew(g, IR_OP_add, var, c_eps, loc), loc);
  int xc = ew(g, IR_OP_add, x, per_channel(g, ew1(g, IR_OP_neg, mean, loc), rank, loc), loc);
  int xh = ew(g, IR_OP_mul, xc, per_channel(g, rstd, rank, loc), loc);
  int s[2];
  s[0] = attr_node(g, IR_OP_reduce_sum, (int[]){ew(g, IR_OP_mul, dy, xh, loc)}, 1, "axes", axes, rank - 2, 1, loc);
  s[1] = attr_node(g, IR_OP_reduce_sum, &dy, 1, "axes", axes, rank - 2, 1, loc);
  for (int k = 0; k < 2; k++) s[k] = attr_node(g, IR_OP_reshape, &s[k], 1, "shape", row, 3, 1, loc);
  int cat = attr_node(g, IR_OP_concat, s, 2, "axis", (int64_t[]){1}, 1, 0, loc);
  return attr_node(g, IR_OP_reduce_sum, &cat, 1, "axes", &batch, 1, 1, loc);
}

/* dx of batchnorm_train_grad 'n' (operands x, gamma, dy already mapped in
 * 'in') as elementwise ops on the rows of 'stats' (mean, var) and of
 * [sum(dy*xhat); sum(dy)] (param_grad_sums); -1 on failure. */
static int grad_apply(ir_graph *g, const ir_node *n, const int *in, int stats) {
  ir_loc loc = n->loc;
  double eps = ir_get_float(n, "eps");
  const ir_type *xt = &g->nodes[in[0]]->type;
  int rank = xt->rank;
  int pg = param_grad_sums(g, in[0], in[2], stats, eps, loc);
  if (pg < 0) return -1;
  int mean = stats_row(g, stats, 0, loc), var = stats_row(g, stats, 1, loc);
  int sxh = stats_row(g, pg, 0, loc), sdy = stats_row(g, pg, 1, loc);
  ir_type scalar = {.dtype = xt->dtype, .rank = 0};
  double m = (double)(ir_type_numel(xt) / xt->dims[1]);
  int c_eps = ir_graph_source(g, IR_OP_const, NULL, eps, scalar, loc)->id;
  int c_neg_inv_m = ir_graph_source(g, IR_OP_const, NULL, -1.0 / m, scalar, loc)->id;
  /* per channel, as one chain (one fused loop): A = gamma*rstd,
   * B = -A*rstd*sum(dy*xhat)/M, D = -A*sum(dy)/M */
  int rstd = ew1(g, IR_OP_rsqrt, ew(g, IR_OP_add, var, c_eps, loc), loc);
  int a = ew(g, IR_OP_mul, in[1], rstd, loc);
  int b = ew(g, IR_OP_mul, ew(g, IR_OP_mul, ew(g, IR_OP_mul, a, rstd, loc), sxh, loc), c_neg_inv_m, loc);
  int dd = ew(g, IR_OP_mul, ew(g, IR_OP_mul, a, sdy, loc), c_neg_inv_m, loc);
  /* per element: dx = A*dy + B*(x - mean) + D */
  int xc = ew(g, IR_OP_sub, in[0], per_channel(g, mean, rank, loc), loc);
  int t = ew(g, IR_OP_mul, in[2], per_channel(g, a, rank, loc), loc);
  int u = ew(g, IR_OP_mul, xc, per_channel(g, b, rank, loc), loc);
  return ew(g, IR_OP_add, ew(g, IR_OP_add, t, u, loc), per_channel(g, dd, rank, loc), loc);
}

/* State of the rebuild: the new batchnorm_stats of each old x (-1 if
 * none yet), the nodes split, where errors go. */
typedef struct {
  int *stats_of;
  int count;
  ir_diag *d;
} split_state;

/* pass_emit: a node's replacement (see the file comment), else a copy. */
static int emit(ir_graph *ng, const ir_node *n, int *in, const int *map, void *ctx) {
  split_state *st = ctx;
  (void)map;
  if (n->op != IR_OP_batchnorm_stats && n->op != IR_OP_batchnorm_param_grad && n->op != IR_OP_batchnorm_train &&
      n->op != IR_OP_batchnorm_train_grad)
    return -2;
  int *stats = &st->stats_of[n->in[0]]; /* of the old x */
  if (n->op == IR_OP_batchnorm_stats) {
    if (*stats < 0) *stats = ir_graph_copy_node(ng, n, in)->id;
    return *stats;
  }
  if (n->op == IR_OP_batchnorm_param_grad && *stats >= 0 && n->type.dims[1] > 1 && ng->nodes[in[0]]->type.rank >= 3) {
    int id = param_grad_sums(ng, in[0], in[1], *stats, ir_get_float(n, "eps"), n->loc);
    if (id < 0) ir_diag_error(st->d, NULL, 0, "batch-norm split: the parameter gradient of %%%d does not broadcast", n->id);
    return id;
  }
  int fwd = n->op == IR_OP_batchnorm_train;
  if (!fwd && !(n->op == IR_OP_batchnorm_train_grad && n->nin == 3 && n->type.rank >= 2 && n->type.dims[1] > 1))
    return -2;
  if (*stats < 0) {
    ir_node *s = ir_graph_append(ng, IR_OP_batchnorm_stats, &in[0], 1, n->loc);
    s->type = (ir_type){.dtype = n->type.dtype, .rank = 2, .dims = {2, n->type.dims[1]}};
    *stats = s->id;
  }
  int id = fwd ? apply(ng, n, in, *stats) : grad_apply(ng, n, in, *stats);
  if (id < 0)
    ir_diag_error(st->d, NULL, 0, "batch-norm split: the %s of %%%d does not broadcast", fwd ? "normalization" : "gradient",
                  n->id);
  st->count++;
  return id;
}

/* Splits every batchnorm_train of 'g' (see the file comment); *split
 * (if given) counts them. */
attnc_status pass_bn_split(ir_graph *g, int *split, ir_diag *d) {
  split_state st = {malloc(((size_t)g->nnodes + 1) * sizeof(int)), 0, d};
  if (!st.stats_of) {
    ir_diag_error(d, NULL, 0, "batch-norm split: out of memory");
    return ATTNC_ENOMEM;
  }
  for (int i = 0; i < g->nnodes; i++) st.stats_of[i] = -1;
  attnc_status s = pass_rebuild(g, emit, &st, "batch-norm split", d);
  free(st.stats_of);
  if (split) *split = s == ATTNC_OK ? st.count : 0;
  return s;
}
