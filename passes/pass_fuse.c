/* Fusion: groups of nodes compiled into one kernel (see passes.h).
 * Placeholder while the grouping is written: no groups. */
#include <stdlib.h>
#include <string.h>
#include "passes.h"

/* Partitions 'g' into fusion groups (none yet). */
attnc_status pass_fuse(const ir_graph *g, pass_fusion *f, ir_diag *d) {
  (void)d;
  memset(f, 0, sizeof *f);
  f->nnodes = g->nnodes;
  f->group_of = malloc(sizeof *f->group_of * (size_t)(g->nnodes ? g->nnodes : 1));
  if (!f->group_of) return ATTNC_ENOMEM;
  for (int i = 0; i < g->nnodes; i++) f->group_of[i] = -1;
  return ATTNC_OK;
}

/* Frees the groups of 'f'. */
void pass_fusion_free(pass_fusion *f) {
  for (int i = 0; i < f->ngroups; i++) {
    free(f->groups[i].members);
    free(f->groups[i].step_start);
    free(f->groups[i].outs);
    free(f->groups[i].ins);
  }
  free(f->groups);
  free(f->group_of);
  memset(f, 0, sizeof *f);
}

/* Not batch-local (placeholder). */
int pass_fuse_batched(const ir_graph *g, const ir_node *n, int k, int64_t batch) {
  (void)g, (void)n, (void)k, (void)batch;
  return -1;
}

/* The graph as text (placeholder: no groups to show). */
char *pass_fusion_print(const ir_graph *g, const pass_fusion *f) {
  (void)f;
  return ir_print(g);
}
