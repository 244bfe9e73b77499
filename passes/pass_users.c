/* The users of every node of a graph, as the passes that reorder, group or
 * recompute nodes need them. */
#include <stdlib.h>

#include "passes.h"

/* Fills *ustart (nnodes + 1 offsets) and *users so that node i is read by
 * users[ustart[i] .. ustart[i + 1]), ascending, once per operand; returns
 * 0, or -1 (both NULL) if out of memory. */
int pass_users(const ir_graph *g, int **ustart, int **users) {
  int n = g->nnodes, edges = 0;
  int *start = calloc((size_t)n + 2, sizeof *start), *list = NULL;
  if (start) {
    for (int i = 0; i < n; i++)
      for (int k = 0; k < g->nodes[i]->nin; k++) start[g->nodes[i]->in[k] + 2]++, edges++;
    for (int i = 2; i <= n + 1; i++) start[i] += start[i - 1];
    list = malloc(sizeof *list * (size_t)(edges ? edges : 1));
  }
  if (!start || !list) {
    free(start);
    *ustart = *users = NULL;
    return -1;
  }
  /* start[x + 1] moves over x's users, ending at x + 1's first */
  for (int i = 0; i < n; i++)
    for (int k = 0; k < g->nodes[i]->nin; k++) list[start[g->nodes[i]->in[k] + 1]++] = i;
  *ustart = start;
  *users = list;
  return 0;
}
