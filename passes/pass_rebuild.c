/* Rebuilding a graph node by node, as the passes that replace nodes by
 * others (the batch-norm and batch-sum splits) or insert nodes before
 * them (rematerialization) do. */
#include <stdlib.h>

#include "passes.h"

/* Rebuilds 'g' in graph order into a new graph that then replaces it: each
 * node's operands are mapped to their new ids ('map' holds those of the
 * nodes before it) and 'emit' appends its replacement (or NULL emit, or
 * emit returning -2: a copy of the node, reading 'in' as emit left it).
 * 'emit' returns the new id of the node's value, or -1 after reporting
 * why in 'd'. 'what' names the pass in the out-of-memory error. */
attnc_status pass_rebuild(ir_graph *g, pass_emit emit, void *ctx, const char *what, ir_diag *d) {
  int *map = malloc(((size_t)g->nnodes + 1) * sizeof *map);
  ir_graph *ng = ir_graph_create(g->name);
  int ins[64], failed = 0, oom = !map || !ng;
  for (int i = 0; i < g->nnodes && !failed && !oom; i++) {
    const ir_node *n = g->nodes[i];
    int *in = n->nin <= 64 ? ins : malloc((size_t)n->nin * sizeof(int));
    if (!in) {
      oom = 1;
      break;
    }
    for (int k = 0; k < n->nin; k++) in[k] = map[n->in[k]];
    map[i] = emit ? emit(ng, n, in, map, ctx) : -2;
    if (map[i] == -2) map[i] = ir_graph_copy_node(ng, n, in)->id;
    failed = map[i] < 0;
    if (in != ins) free(in);
  }
  if (failed || oom) {
    if (oom) ir_diag_error(d, NULL, 0, "%s: out of memory", what);
    free(map);
    ir_graph_destroy(ng);
    return oom ? ATTNC_ENOMEM : ATTNC_EINVAL;
  }
  for (int i = 0; i < g->noutputs; i++) ir_graph_add_output(ng, g->outputs[i].name, map[g->outputs[i].node]);
  free(map);
  ir_graph_take(g, ng);
  return ATTNC_OK;
}
