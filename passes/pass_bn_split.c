/* Batch-norm split, run on a training step after autodiff: each
 * batchnorm_train(x, gamma, beta) becomes batchnorm_eval(x, gamma, beta,
 * mean, var) with mean and var the rows of batchnorm_stats(x), the node the
 * running averages already read. The normalization is then batch-local:
 * fusion can run it in one loop with the ReLU or attention gate after it,
 * and x is read once for its statistics rather than twice. Gradients are
 * not touched (autodiff has run; batchnorm_train_grad still takes x), which
 * is why this must never run before autodiff: no gradient flows through
 * batchnorm_stats. */
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
    } else if (n->op == IR_OP_batchnorm_train) {
      int x = n->in[0];
      if (stats_of[x] < 0) {
        ir_node *s = ir_graph_append(ng, IR_OP_batchnorm_stats, &in[0], 1, n->loc);
        s->type = (ir_type){.dtype = n->type.dtype, .rank = 2, .dims = {2, n->type.dims[1]}};
        stats_of[x] = s->id;
      }
      int ops[5] = {in[0], in[1], in[2], stats_row(ng, stats_of[x], 0, n->loc), stats_row(ng, stats_of[x], 1, n->loc)};
      ir_node *e = ir_graph_append(ng, IR_OP_batchnorm_eval, ops, 5, n->loc);
      ir_set_float(e, "eps", ir_get_float(n, "eps"));
      e->type = n->type;
      map[i] = e->id;
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
