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
 * batchnorm_stats(x) and of batchnorm_param_grad(x, dy) (the node gamma's
 * and beta's gradients already read):
 *   dx = gamma*rstd * (dy - sum(dy)/M - (x - mean) * rstd*sum(dy*xhat)/M)
 * with rstd = 1/sqrt(var + eps) and M the count per channel, computed as
 * A*dy + B*(x - mean) + D with A, B, D per channel (one small loop). The
 * kernel no longer makes its own statistics pass over x and dy, and the
 * rest is one loop over the feature map.
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

/* dx of batchnorm_train_grad 'n' (operands x, gamma, dy already mapped in
 * 'in') as elementwise ops on the rows of 'stats' (mean, var) and of a
 * batchnorm_param_grad(x, dy) (sum(dy*xhat), sum(dy)); -1 on failure. */
static int grad_apply(ir_graph *g, const ir_node *n, const int *in, int stats) {
  ir_loc loc = n->loc;
  double eps = ir_get_float(n, "eps");
  const ir_type *xt = &g->nodes[in[0]]->type;
  int rank = xt->rank;
  ir_node *pg = ir_graph_append(g, IR_OP_batchnorm_param_grad, (int[]){in[0], in[2]}, 2, loc);
  ir_set_float(pg, "eps", eps);
  pg->type = (ir_type){.dtype = xt->dtype, .rank = 2, .dims = {2, xt->dims[1]}};
  int mean = stats_row(g, stats, 0, loc), var = stats_row(g, stats, 1, loc);
  int sxh = stats_row(g, pg->id, 0, loc), sdy = stats_row(g, pg->id, 1, loc);
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

/* Splits every batchnorm_train of 'g' (see the file comment); *split
 * (if given) counts them. */
attnc_status pass_bn_split(ir_graph *g, int *split, ir_diag *d) {
  int count = 0;
  int *map = malloc(((size_t)g->nnodes + 1) * sizeof *map);
  int *stats_of = malloc(((size_t)g->nnodes + 1) * sizeof *stats_of); /* old x -> new stats */
  if (!map || !stats_of) {
    free(map);
    free(stats_of);
    ir_diag_error(d, NULL, 0, "batch-norm split: out of memory");
    return ATTNC_ENOMEM;
  }
  ir_graph *ng = ir_graph_create(g->name);
  int ins[64];
  for (int i = 0; i < g->nnodes; i++) stats_of[i] = -1;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    int *in = n->nin <= 64 ? ins : malloc((size_t)n->nin * sizeof(int));
    if (!in) {
      ir_graph_destroy(ng);
      free(map);
      free(stats_of);
      ir_diag_error(d, NULL, 0, "batch-norm split: out of memory");
      return ATTNC_ENOMEM;
    }
    for (int k = 0; k < n->nin; k++) in[k] = map[n->in[k]];
    if (n->op == IR_OP_batchnorm_stats && stats_of[n->in[0]] >= 0) {
      map[i] = stats_of[n->in[0]];
    } else if (n->op == IR_OP_batchnorm_stats) {
      map[i] = stats_of[n->in[0]] = ir_graph_copy_node(ng, n, in)->id;
    } else if (n->op == IR_OP_batchnorm_train ||
               (n->op == IR_OP_batchnorm_train_grad && n->nin == 3 && n->type.rank >= 2 && n->type.dims[1] > 1)) {
      int x = n->in[0], fwd = n->op == IR_OP_batchnorm_train;
      if (stats_of[x] < 0) {
        ir_node *s = ir_graph_append(ng, IR_OP_batchnorm_stats, &in[0], 1, n->loc);
        s->type = (ir_type){.dtype = n->type.dtype, .rank = 2, .dims = {2, n->type.dims[1]}};
        stats_of[x] = s->id;
      }
      map[i] = fwd ? apply(ng, n, in, stats_of[x]) : grad_apply(ng, n, in, stats_of[x]);
      if (map[i] < 0) {
        if (in != ins) free(in);
        ir_graph_destroy(ng);
        free(map);
        free(stats_of);
        ir_diag_error(d, NULL, 0, "batch-norm split: the %s of %%%d does not broadcast",
                      fwd ? "normalization" : "gradient", i);
        return ATTNC_EINVAL;
      }
      count++;
    } else {
      map[i] = ir_graph_copy_node(ng, n, in)->id;
    }
    if (in != ins) free(in);
  }
  for (int i = 0; i < g->noutputs; i++) ir_graph_add_output(ng, g->outputs[i].name, map[g->outputs[i].node]);
  free(map);
  free(stats_of);
  ir_graph_take(g, ng);
  if (split) *split = count;
  return ATTNC_OK;
}
